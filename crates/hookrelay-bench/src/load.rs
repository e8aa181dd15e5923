//! Load: events published through hookrelay's REST API by concurrent clients (as fast as
//! the API accepts them, or paced at a fixed rate), or enqueued directly with the same
//! `Publisher` code `hookrelay publish` runs.
//!
//! Every event carries its publish time (`"t_us"`, µs since the start of the run) in its
//! data, so the receiver can compute publish → received without any bookkeeping by id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use hookrelay_producer::{EventIn, Publisher, Registry};
use hookrelay_queue::Queue;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use tokio::task::JoinSet;

use crate::report::{Percentiles, now_us};
use crate::stack::{PREFIX, PROJECT, TOKEN};

/// The event name, object type and object name every bench event and webhook use.
pub const EVENT: &str = "bench_event";
const OBJECT_TYPE: &str = "deployment";
const OBJECT_NAME: &str = "bench-deployment";

/// A client for hookrelay's API, with a keep-alive pool shared by its clones.
#[derive(Clone)]
pub struct Api {
    base: String,
    client: reqwest::Client,
    auth: HeaderValue,
    pad: Arc<str>,
}

impl Api {
    /// `host:port` of the API.
    pub fn addr(&self) -> &str {
        let host = self.base.trim_start_matches("http://");
        host.strip_suffix("/v2.1").unwrap_or(host)
    }

    /// A client for the API at `base` (`http://127.0.0.1:<port>`); each event carries
    /// `pad_bytes` of filler in its data.
    pub fn new(base: &str, pad_bytes: usize) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            // Under the API's 10 s keep-alive idle timeout, so no pooled connection is
            // reused as the server closes it between phases.
            .pool_idle_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1024)
            .build()?;
        Ok(Self {
            base: format!("{base}/v2.1"),
            client,
            auth: HeaderValue::from_str(&format!("Token {TOKEN}"))?,
            pad: "x".repeat(pad_bytes).into(),
        })
    }

    /// Creates the bench webhook, delivering every bench event to `url`.
    pub async fn create_webhook(&self, name: &str, url: &str) -> anyhow::Result<()> {
        self.create(name, url, OBJECT_NAME).await
    }

    /// Creates a webhook of the same project and event for another object, which the bench
    /// events never match: it only costs the publisher a look.
    pub async fn create_other_webhook(&self, name: &str, url: &str) -> anyhow::Result<()> {
        self.create(name, url, &format!("{OBJECT_NAME}-{name}"))
            .await
    }

    async fn create(&self, name: &str, url: &str, object_name: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "name": name,
            "url": url,
            "object_type": OBJECT_TYPE,
            "object_name": object_name,
            "event": EVENT,
        });
        let resp = self
            .client
            .post(format!("{}/projects/{PROJECT}/webhooks", self.base))
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string())
            .send()
            .await?;
        let status = resp.status();
        anyhow::ensure!(
            status.as_u16() == 201,
            "creating the webhook answered {status}: {}",
            resp.text().await.unwrap_or_default()
        );
        Ok(())
    }

    /// Publishes event number `seq` stamped with publish time `t_us`; returns the status.
    pub async fn publish(&self, seq: u64, t_us: u64) -> Result<u16, String> {
        self.publish_for(OBJECT_NAME, seq, t_us).await
    }

    /// Publishes an event for the webhook made by [`Api::create_other_webhook`] named
    /// `other` (or the bench webhook for [`OBJECT_NAME`]).
    pub async fn publish_other(&self, other: &str, seq: u64, t_us: u64) -> Result<u16, String> {
        self.publish_for(&format!("{OBJECT_NAME}-{other}"), seq, t_us)
            .await
    }

    async fn publish_for(&self, object_name: &str, seq: u64, t_us: u64) -> Result<u16, String> {
        let body = format!(
            r#"{{"event":"{EVENT}","object_type":"{OBJECT_TYPE}","object_name":"{object_name}","data":{{"seq":{seq},"t_us":{t_us},"pad":"{}"}}}}"#,
            self.pad
        );
        let resp = self
            .client
            .post(format!("{}/projects/{PROJECT}/events", self.base))
            .header(AUTHORIZATION, self.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        // Read the answer to the end so the connection goes back to the pool.
        let _ = resp.bytes().await;
        Ok(status)
    }
}

/// What a publishing run achieved.
#[derive(Debug, Default)]
pub struct PublishRun {
    /// Events answered 202.
    pub accepted: u64,
    /// Events answered otherwise, or not answered.
    pub failed: u64,
    /// The first failure, for the report.
    pub first_error: Option<String>,
    /// From the first request sent to the last answer.
    pub span: Duration,
    /// Time to the 202 of each accepted event (µs).
    pub latency: Percentiles,
}

#[derive(Default)]
struct Tally {
    accepted: u64,
    failed: u64,
    first_error: Option<String>,
    latency: Vec<u64>,
}

impl Tally {
    fn record(&mut self, result: Result<u16, String>, took_us: u64) {
        match result {
            Ok(202) => {
                self.accepted += 1;
                self.latency.push(took_us);
            }
            Ok(status) => {
                self.failed += 1;
                self.first_error
                    .get_or_insert_with(|| format!("answered {status}"));
            }
            Err(e) => {
                self.failed += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: Tally) {
        self.accepted += other.accepted;
        self.failed += other.failed;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency.extend(other.latency);
    }

    fn finish(self, span: Duration) -> PublishRun {
        PublishRun {
            accepted: self.accepted,
            failed: self.failed,
            first_error: self.first_error,
            span,
            latency: Percentiles::new(self.latency),
        }
    }
}

/// Publishes `n` events through the API from `clients` concurrent clients, each sending
/// its next event as soon as the previous one is answered (closed loop).
pub async fn publish_closed(api: &Api, n: u64, clients: usize) -> PublishRun {
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for _ in 0..clients.max(1) {
        let (api, next) = (api.clone(), next.clone());
        tasks.spawn(async move {
            let mut tally = Tally::default();
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= n {
                    return tally;
                }
                let sent = now_us();
                let result = api.publish(seq, sent).await;
                tally.record(result, now_us().saturating_sub(sent));
            }
        });
    }
    let mut total = Tally::default();
    while let Some(t) = tasks.join_next().await {
        if let Ok(t) = t {
            total.merge(t);
        }
    }
    total.finish(start.elapsed())
}

/// Publishes through the API at `rate` events/s for `duration` (open loop: an event is
/// sent at its time whether or not earlier ones were answered, at most `max_in_flight`
/// at once). Each event is stamped with the time it was due, not the time it went out,
/// so a publisher that falls behind shows up in the latency instead of hiding it.
pub async fn publish_paced(
    api: &Api,
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
) -> PublishRun {
    publish_paced_to(api, None, rate, duration, max_in_flight).await
}

/// [`publish_paced`] for the bench webhook (`None`) or another one (`Some(name)`).
pub async fn publish_paced_to(
    api: &Api,
    other: Option<&str>,
    rate: f64,
    duration: Duration,
    max_in_flight: usize,
) -> PublishRun {
    let n = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
    let start = Instant::now();
    let start_us = now_us();
    let mut tasks = JoinSet::new();
    let mut total = Tally::default();
    for seq in 0..n {
        let due_us = start_us + (seq as f64 * 1e6 / rate) as u64;
        let wait = due_us.saturating_sub(now_us());
        if wait > 0 {
            tokio::time::sleep(Duration::from_micros(wait)).await;
        }
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let api = api.clone();
        let other = other.map(str::to_owned);
        tasks.spawn(async move {
            let result = match other {
                Some(o) => api.publish_other(&o, seq, due_us).await,
                None => api.publish(seq, due_us).await,
            };
            let took = now_us().saturating_sub(due_us);
            drop(permit);
            (result, took)
        });
        // Reap finished requests as we go so the set stays small.
        while let Some(r) = tasks.try_join_next() {
            if let Ok((result, took)) = r {
                total.record(result, took);
            }
        }
    }
    while let Some(r) = tasks.join_next().await {
        if let Ok((result, took)) = r {
            total.record(result, took);
        }
    }
    total.finish(start.elapsed())
}

/// Enqueues `n` events straight into Redis with `Publisher` (what `hookrelay publish`
/// does), `concurrency` at a time over one multiplexed connection. Returns how many were
/// enqueued and how long it took.
pub async fn enqueue_direct(
    redis_url: &str,
    n: u64,
    concurrency: usize,
    pad_bytes: usize,
) -> anyhow::Result<(u64, Duration)> {
    let queue = Queue::connect(redis_url, hookrelay_core::Keys::new(PREFIX)).await?;
    let registry = Registry::new(&queue);
    let publisher = Publisher::new(queue, registry);
    let pad = "x".repeat(pad_bytes);
    let project = hookrelay_core::ProjectName::parse(PROJECT)?;
    let start = Instant::now();
    let mut done = 0u64;
    let mut first_error = None;
    let mut results = futures::stream::iter(0..n)
        .map(|seq| {
            let publisher = publisher.clone();
            let project = project.clone();
            let input = EventIn {
                event: EVENT.to_owned(),
                object_type: OBJECT_TYPE.to_owned(),
                object_name: OBJECT_NAME.to_owned(),
                version: None,
                data: serde_json::json!({ "seq": seq, "t_us": now_us(), "pad": pad }),
                result: None,
                id: None,
            };
            async move { publisher.publish(&project, input).await }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(r) = results.next().await {
        match r {
            Ok(answer) if !answer.deliveries.is_empty() => done += 1,
            Ok(_) => {
                first_error.get_or_insert_with(|| "the event matched no webhook".to_owned());
            }
            Err(e) => {
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if let Some(e) = first_error {
        anyhow::bail!("enqueue failed after {done} events: {e}");
    }
    Ok((done, start.elapsed()))
}
