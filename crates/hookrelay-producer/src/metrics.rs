//! The API process's own metrics, and the Prometheus exposition of `/metrics`, written by the
//! `prometheus-client` library: these counters, any registry the binary adds (the worker's,
//! when API and worker share a process), and the queue depth read from Redis at scrape time.

use std::sync::Mutex;

use hookrelay_queue::QueueStats;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Metric, Registry};

/// The content type of the exposition (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Label of the HTTP answers counter: the status class, `2xx` …
type ClassLabel = Vec<(&'static str, &'static str)>;

const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Metrics kept by one API process since it started.
#[derive(Debug)]
pub struct Metrics {
    events_published: Counter,
    events_duplicate: Counter,
    deliveries_enqueued: Counter,
    tests_enqueued: Counter,
    redeliveries: Counter,
    responses: Family<ClassLabel, Counter>,
    registry: Registry,
    /// More registries shown on the same page (the worker's, in `serve`).
    extra: Mutex<Vec<&'static Registry>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hookrelay");
        let mut counter =
            |name: &str, help: &str| registered(&mut registry, name, help, Counter::default());
        let events_published = counter(
            "events_published",
            "Events published through this process (duplicates excluded)",
        );
        let events_duplicate = counter(
            "events_duplicate",
            "Events whose id had been published before; nothing was enqueued",
        );
        let deliveries_enqueued = counter(
            "deliveries_enqueued",
            "Deliveries enqueued by event fan-out in this process",
        );
        let tests_enqueued = counter(
            "tests_enqueued",
            "Webhook test deliveries enqueued by this process",
        );
        let redeliveries = counter(
            "redeliveries",
            "Finished deliveries queued again (redeliver and recover)",
        );
        let responses: Family<ClassLabel, Counter> = Family::default();
        // Every class shows from the start, so a rate over it never starts from nothing.
        for class in CLASSES {
            let _ = responses.get_or_create(&vec![("class", class)]);
        }
        let responses = registered(
            &mut registry,
            "http_responses",
            "HTTP answers of this process by status class",
            responses,
        );
        Self {
            events_published,
            events_duplicate,
            deliveries_enqueued,
            tests_enqueued,
            redeliveries,
            responses,
            registry,
            extra: Mutex::new(Vec::new()),
        }
    }
}

/// Registers `metric` in `registry` under `name` with `help`, and returns it for recording:
/// the registry keeps a clone, which shares its values.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

impl Metrics {
    /// An event was published (not a duplicate) with `deliveries` deliveries.
    pub fn published(&self, deliveries: usize) {
        self.events_published.inc();
        self.deliveries_enqueued.inc_by(deliveries as u64);
    }

    /// An event id was published again; nothing was enqueued.
    pub fn duplicate(&self) {
        self.events_duplicate.inc();
    }

    /// A webhook test was enqueued.
    pub fn test(&self) {
        self.tests_enqueued.inc();
    }

    /// `n` finished deliveries were queued again (redeliver or recover).
    pub fn redelivered(&self, n: usize) {
        self.redeliveries.inc_by(n as u64);
    }

    /// An HTTP answer with this status code was sent.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses
            .get_or_create(&vec![("class", CLASSES[class])])
            .inc();
    }

    /// Shows `registry` on the same page, after this process's own metrics. The binary adds
    /// the worker's registry this way when API and worker run in one process.
    pub fn include(&self, registry: &'static Registry) {
        if let Ok(mut extra) = self.extra.lock()
            && !extra.iter().any(|r| std::ptr::eq(*r, registry))
        {
            extra.push(registry);
        }
    }

    /// The exposition: this process's metrics, the included registries, then the queue gauges
    /// when Redis answered (`hookrelay_redis_up` says whether it did).
    pub fn render(&self, stats: Option<QueueStats>) -> String {
        self.render_with_endpoints(stats, &[])
    }

    /// [`Metrics::render`] with `hookrelay_endpoints{state}`: webhooks by health state.
    pub fn render_with_endpoints(
        &self,
        stats: Option<QueueStats>,
        endpoints: &[(hookrelay_core::HealthState, u64)],
    ) -> String {
        let mut out = String::with_capacity(4096);
        let mut scrape = queue_registry(stats);
        if !endpoints.is_empty() {
            let family: Family<Vec<(String, String)>, Gauge> = Family::default();
            for (state, n) in endpoints {
                family
                    .get_or_create(&vec![("state".to_owned(), state.as_str().to_owned())])
                    .set(i64::try_from(*n).unwrap_or(i64::MAX));
            }
            scrape.register(
                "endpoints",
                "Webhooks by the health state of their endpoint",
                family,
            );
        }
        // Writing into a String cannot fail; the results are checked all the same.
        let mut ok = encode_registry(&mut out, &self.registry).is_ok();
        if let Ok(extra) = self.extra.lock() {
            for r in extra.iter() {
                ok &= encode_registry(&mut out, r).is_ok();
            }
        }
        ok &= encode_registry(&mut out, &scrape).is_ok();
        ok &= encode_eof(&mut out).is_ok();
        if !ok {
            tracing::warn!("metrics exposition could not be written in full");
        }
        out
    }
}

/// Gauges measured at scrape time: whether Redis answered, and the queue depth when it did.
fn queue_registry(stats: Option<QueueStats>) -> Registry {
    let mut r = Registry::with_prefix("hookrelay");
    let gauge = |v: u64| {
        let g: Gauge = Gauge::default();
        g.set(i64::try_from(v).unwrap_or(i64::MAX));
        g
    };
    r.register(
        "redis_up",
        "Whether Redis answered this scrape",
        gauge(u64::from(stats.is_some())),
    );
    if let Some(s) = stats {
        r.register("queue_ready", "Deliveries ready to run", gauge(s.ready));
        r.register(
            "queue_scheduled",
            "Retries waiting for their time",
            gauge(s.scheduled),
        );
        r.register(
            "queue_inflight",
            "Deliveries held by workers",
            gauge(s.inflight),
        );
        r.register(
            "queue_dead",
            "Queue values that were not runnable jobs",
            gauge(s.dead),
        );
        r.register(
            "workers",
            "Workers with a heartbeat in the last minute",
            gauge(s.workers),
        );
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static EXTRA: LazyLock<Registry> = LazyLock::new(|| {
        let mut r = Registry::with_prefix("hookrelay");
        let c: Counter = Counter::default();
        c.inc_by(4);
        r.register("extra_things", "A counter of another part", c);
        r
    });

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::default();
        m.published(3);
        m.response(200);
        m.response(404);
        m.response(503);
        m.include(&EXTRA);
        m.include(&EXTRA);
        let text = m.render(Some(QueueStats {
            ready: 7,
            ..Default::default()
        }));
        assert!(
            text.contains("hookrelay_events_published_total 1\n"),
            "{text}"
        );
        assert!(text.contains("hookrelay_deliveries_enqueued_total 3\n"));
        assert!(text.contains("hookrelay_http_responses_total{class=\"4xx\"} 1\n"));
        assert!(text.contains("hookrelay_http_responses_total{class=\"5xx\"} 1\n"));
        assert!(text.contains("hookrelay_http_responses_total{class=\"1xx\"} 0\n"));
        assert!(text.contains("hookrelay_queue_ready 7\n"));
        assert!(text.contains("hookrelay_redis_up 1\n"));
        assert_eq!(text.matches("hookrelay_extra_things_total 4\n").count(), 1);
        assert!(text.ends_with("# EOF\n"));
        let down = m.render(None);
        assert!(down.contains("hookrelay_redis_up 0\n"));
        assert!(!down.contains("hookrelay_queue_ready"));
    }
}
