//! The API process's own counters, and the Prometheus text of `/metrics`: these counters plus
//! the queue depth read from Redis at scrape time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use hookrelay_queue::QueueStats;

/// Counters kept by one API process since it started.
#[derive(Debug, Default)]
pub struct Metrics {
    events_published: AtomicU64,
    events_duplicate: AtomicU64,
    deliveries_enqueued: AtomicU64,
    tests_enqueued: AtomicU64,
    redeliveries: AtomicU64,
    /// HTTP answers by status class: index 0 = 1xx … 4 = 5xx.
    responses: [AtomicU64; 5],
}

impl Metrics {
    /// An event was published (not a duplicate) with `deliveries` deliveries.
    pub fn published(&self, deliveries: usize) {
        self.events_published.fetch_add(1, Ordering::Relaxed);
        self.deliveries_enqueued
            .fetch_add(deliveries as u64, Ordering::Relaxed);
    }

    /// An event id was published again; nothing was enqueued.
    pub fn duplicate(&self) {
        self.events_duplicate.fetch_add(1, Ordering::Relaxed);
    }

    /// A webhook test was enqueued.
    pub fn test(&self) {
        self.tests_enqueued.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` finished deliveries were queued again (redeliver or recover).
    pub fn redelivered(&self, n: usize) {
        self.redeliveries.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// An HTTP answer with this status code was sent.
    pub fn response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition: counters, then the queue gauges when Redis answered.
    pub fn render(&self, stats: Option<QueueStats>) -> String {
        let mut out = String::with_capacity(2048);
        let mut counter = |name: &str, help: &str, value: &AtomicU64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        };
        counter(
            "hookrelay_events_published_total",
            "Events published through this process (duplicates excluded).",
            &self.events_published,
        );
        counter(
            "hookrelay_events_duplicate_total",
            "Events whose id had been published before; nothing was enqueued.",
            &self.events_duplicate,
        );
        counter(
            "hookrelay_deliveries_enqueued_total",
            "Deliveries enqueued by event fan-out in this process.",
            &self.deliveries_enqueued,
        );
        counter(
            "hookrelay_tests_enqueued_total",
            "Webhook test deliveries enqueued by this process.",
            &self.tests_enqueued,
        );
        counter(
            "hookrelay_redeliveries_total",
            "Finished deliveries queued again (redeliver and recover).",
            &self.redeliveries,
        );
        let _ = writeln!(
            out,
            "# HELP hookrelay_http_responses_total HTTP answers of this process by status class."
        );
        let _ = writeln!(out, "# TYPE hookrelay_http_responses_total counter");
        for (i, n) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "hookrelay_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                n.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP hookrelay_redis_up Whether Redis answered this scrape."
        );
        let _ = writeln!(out, "# TYPE hookrelay_redis_up gauge");
        let _ = writeln!(out, "hookrelay_redis_up {}", u8::from(stats.is_some()));
        if let Some(s) = stats {
            let gauges: [(&str, &str, u64); 5] = [
                ("hookrelay_queue_ready", "Deliveries ready to run.", s.ready),
                (
                    "hookrelay_queue_scheduled",
                    "Retries waiting for their time.",
                    s.scheduled,
                ),
                (
                    "hookrelay_queue_inflight",
                    "Deliveries held by workers.",
                    s.inflight,
                ),
                (
                    "hookrelay_queue_dead",
                    "Queue values that were not runnable jobs.",
                    s.dead,
                ),
                (
                    "hookrelay_workers",
                    "Workers with a heartbeat in the last minute.",
                    s.workers,
                ),
            ];
            for (name, help, value) in gauges {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} gauge");
                let _ = writeln!(out, "{name} {value}");
            }
        }
        out
    }
}

/// `hookrelay_endpoints{state="…"}`: webhooks by health state.
pub fn render_endpoint_states(states: &[(hookrelay_core::HealthState, u64)]) -> String {
    let mut out = String::from(
        "# HELP hookrelay_endpoints Webhooks by the health state of their endpoint.\n# TYPE hookrelay_endpoints gauge\n",
    );
    for (state, n) in states {
        let _ = writeln!(
            out,
            "hookrelay_endpoints{{state=\"{}\"}} {n}",
            state.as_str()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_gauges() {
        let m = Metrics::default();
        m.published(3);
        m.response(200);
        m.response(404);
        m.response(503);
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
        assert!(text.contains("hookrelay_queue_ready 7\n"));
        assert!(text.contains("hookrelay_redis_up 1\n"));
        let down = m.render(None);
        assert!(down.contains("hookrelay_redis_up 0\n"));
        assert!(!down.contains("hookrelay_queue_ready"));
    }
}
