//! The webhook receiver the worker delivers to: a real HTTP/1.1 server on `127.0.0.1:0`
//! that answers `200` to everything, on a tokio runtime of its own whose threads are named
//! `bench-recv` (so its CPU can be told apart from the load generator's).
//!
//! Two implementations, to check that the receiver is not what limits a run:
//! - `fast`: a bare hyper server that keeps only what the figures need per request — when it
//!   arrived, the publish time carried in the event (`"t_us":…` in the body), and a hash of
//!   `webhook-id` to count duplicate deliveries;
//! - `testkit`: the test suite's scripted receiver (`hookrelay_testkit::receiver`), which
//!   records every request whole (headers and body), so it costs more per request and holds
//!   every body in memory;
//! - `nginx`: nginx in a process of its own (see [`crate::nginx`]), so that the receiver's CPU
//!   is a process of its own too; it counts requests from its access log and cannot see the
//!   publish time in the body, so it gives rates but no end-to-end latency.
//!
//! Each keeps the first request it received (headers and body, or for nginx its size and
//! webhook headers), which the ceiling measurement replays.

use std::collections::HashSet;
use std::convert::Infallible;
use std::hash::{BuildHasher, RandomState};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use hookrelay_testkit::receiver::{Receiver, Reply};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::runtime::Runtime;

use crate::ceiling::Sample;
use crate::nginx::Nginx;
use crate::report::{now_us, us_at};

/// Which receiver to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReceiverKind {
    /// A bare hyper server keeping a few numbers per request.
    Fast,
    /// The test suite's recording receiver.
    Testkit,
    /// nginx in a process of its own, answering `200 {"received":true}` (rates only: no
    /// end-to-end latency).
    Nginx,
}

impl ReceiverKind {
    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ReceiverKind::Fast => "fast",
            ReceiverKind::Testkit => "testkit",
            ReceiverKind::Nginx => "nginx",
        }
    }
}

/// One request as the figures need it.
#[derive(Debug, Clone, Copy)]
pub struct Hit {
    /// When it was received (µs since the start of the run).
    pub at_us: u64,
    /// When its event was published (µs since the start of the run), if the body said.
    pub sent_us: Option<u64>,
}

impl Hit {
    /// Publish → received, when known.
    pub fn latency_us(&self) -> Option<u64> {
        self.sent_us.map(|s| self.at_us.saturating_sub(s))
    }
}

#[derive(Default)]
struct FastState {
    count: AtomicU64,
    hits: Mutex<Vec<Hit>>,
    seen: Mutex<HashSet<u64>>,
    duplicates: AtomicU64,
    connections: AtomicU64,
    hasher: RandomState,
    first: OnceLock<Sample>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

enum Inner {
    Fast(Arc<FastState>),
    Testkit(Receiver),
    Nginx(Box<Nginx>),
}

/// A running receiver. Stops with its runtime when dropped.
pub struct Sink {
    addr: SocketAddr,
    inner: Inner,
    runtime: Option<Runtime>,
}

/// Finds `"t_us":<digits>` in a delivered body: the publish time the load generator put in
/// the event's data. A byte search, so the receiver does not parse JSON per request.
pub fn sent_us(body: &[u8]) -> Option<u64> {
    const NEEDLE: &[u8] = b"\"t_us\":";
    let at = body.windows(NEEDLE.len()).position(|w| w == NEEDLE)? + NEEDLE.len();
    let digits = &body[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

impl Sink {
    /// Starts a receiver of `kind` with `threads` runtime threads of its own.
    pub async fn start(kind: ReceiverKind, threads: usize) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads.max(1))
            .thread_name("bench-recv")
            .enable_all()
            .build()?;
        // The in-process receivers are started on their own runtime (so their connections
        // are served by its threads); this runtime only awaits the start. nginx leaves it
        // idle.
        let (addr, inner) = match kind {
            ReceiverKind::Fast => {
                let state = Arc::new(FastState::default());
                let listener = runtime.spawn(TcpListener::bind("127.0.0.1:0")).await??;
                let addr = listener.local_addr()?;
                runtime.spawn(accept_loop(listener, state.clone()));
                (addr, Inner::Fast(state))
            }
            ReceiverKind::Testkit => {
                let r = runtime.spawn(Receiver::start(Reply::Status(200))).await?;
                (r.addr(), Inner::Testkit(r))
            }
            ReceiverKind::Nginx => {
                let n = Nginx::start(threads).await?;
                let addr = n.url("").trim_start_matches("http://").parse()?;
                (addr, Inner::Nginx(Box::new(n)))
            }
        };
        Ok(Self {
            addr,
            inner,
            runtime: Some(runtime),
        })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests received so far.
    pub fn count(&self) -> u64 {
        match &self.inner {
            Inner::Fast(s) => s.count.load(Ordering::Relaxed),
            Inner::Testkit(r) => r.count() as u64,
            Inner::Nginx(n) => n.count(),
        }
    }

    /// TCP connections accepted so far (how well the worker reuses connections).
    pub fn connections(&self) -> u64 {
        match &self.inner {
            Inner::Fast(s) => s.connections.load(Ordering::Relaxed),
            Inner::Testkit(r) => r.connections() as u64,
            Inner::Nginx(n) => n.connections(),
        }
    }

    /// Requests whose `webhook-id` had been received before.
    pub fn duplicates(&self) -> u64 {
        match &self.inner {
            Inner::Fast(s) => s.duplicates.load(Ordering::Relaxed),
            Inner::Testkit(r) => {
                let mut seen = HashSet::new();
                r.requests()
                    .iter()
                    .filter(|q| !seen.insert(q.header("webhook-id").unwrap_or("").to_owned()))
                    .count() as u64
            }
            Inner::Nginx(n) => n.duplicates(),
        }
    }

    /// Every request from the `from`-th on (0-based, in arrival order).
    pub fn hits_since(&self, from: usize) -> Vec<Hit> {
        match &self.inner {
            Inner::Fast(s) => lock(&s.hits)
                .get(from..)
                .map(<[Hit]>::to_vec)
                .unwrap_or_default(),
            Inner::Testkit(r) => r
                .requests()
                .get(from..)
                .unwrap_or_default()
                .iter()
                .map(|q| Hit {
                    at_us: us_at(q.at),
                    sent_us: sent_us(&q.body),
                })
                .collect(),
            Inner::Nginx(n) => n.hits_since(from),
        }
    }

    /// The first request received, to replay: its headers and body (for nginx, which logs
    /// no body, a body of the same length).
    pub fn sample(&self) -> Option<Sample> {
        match &self.inner {
            Inner::Fast(s) => s.first.get().cloned(),
            Inner::Testkit(r) => r.requests().first().map(|q| Sample {
                body: q.body.to_vec(),
                headers: q.headers.clone(),
            }),
            Inner::Nginx(n) => n.first_request().map(|(len, headers)| Sample {
                body: Sample::filler(usize::try_from(len).unwrap_or(0)),
                headers,
            }),
        }
    }

    /// Processes of its own (nginx's master and workers), as CPU parts; none for the
    /// receivers that run in the bench's process.
    pub fn processes(&self) -> crate::procstat::Parts {
        match &self.inner {
            Inner::Nginx(n) => nginx_parts(n),
            _ => Vec::new(),
        }
    }

    /// Waits until `n` requests have arrived in all, or `timeout` passes; returns whether
    /// they did. Polls every 2 ms: the figures come from the recorded arrival times, not
    /// from when this notices.
    pub async fn wait_for(&self, n: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// nginx's master and worker processes, as CPU parts.
pub fn nginx_parts(n: &Nginx) -> crate::procstat::Parts {
    let mut parts = vec![("nginx master".to_owned(), n.pid())];
    for (i, pid) in n.worker_pids().into_iter().enumerate() {
        parts.push((format!("nginx worker {}", i + 1), pid));
    }
    parts
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<FastState>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                state.connections.fetch_add(1, Ordering::Relaxed);
                let state = state.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| handle(state.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn handle(
    state: Arc<FastState>,
    req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let id_hash = req
        .headers()
        .get("webhook-id")
        .map(|v| state.hasher.hash_one(v.as_bytes()));
    let headers = state.first.get().is_none().then(|| {
        req.headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect::<Vec<_>>()
    });
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    if let Some(headers) = headers {
        let _ = state.first.set(Sample {
            body: body.to_vec(),
            headers,
        });
    }
    let hit = Hit {
        at_us: now_us(),
        sent_us: sent_us(&body),
    };
    if let Some(h) = id_hash
        && !lock(&state.seen).insert(h)
    {
        state.duplicates.fetch_add(1, Ordering::Relaxed);
    }
    lock(&state.hits).push(hit);
    state.count.fetch_add(1, Ordering::Relaxed);
    Ok(Response::new(Empty::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_time_is_found_in_a_body() {
        let body = br#"{"id":"e","data":{"seq":3,"t_us":123456},"result":null}"#;
        assert_eq!(sent_us(body), Some(123456));
        assert_eq!(sent_us(b"{}"), None);
        assert_eq!(sent_us(br#"{"t_us":}"#), None);
    }
}
