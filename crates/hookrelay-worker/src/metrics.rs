//! The worker's metrics: small recording functions called from the delivery steps, kept in
//! one registry per process ([`registry`]) that `/metrics` shows — on the worker's own
//! `HOOKRELAY_METRICS_LISTEN` address, and on the API's page when both run in `serve`.
//!
//! Every label value the worker can produce is created at zero up front, so each series exists
//! from the first scrape and a dashboard's rates never start from a missing series.

use std::sync::LazyLock;
use std::time::Duration;

use hookrelay_core::webhook::Format;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Metric, Registry};

type Labels = Vec<(&'static str, String)>;

/// How a delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx or 3xx answer (for some formats, with a body that says so).
    Succeeded,
    /// The last attempt failed, or the webhook does not retry.
    Failed,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
        }
    }
}

/// Why a claimed delivery was put off without an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferCause {
    /// The webhook already has its cap of deliveries in flight
    /// (`max_concurrency`, or `HOOKRELAY_ENDPOINT_CONCURRENCY`).
    Concurrency,
    /// The webhook's `rate_limit` is used up for now.
    RateLimit,
    /// The webhook's circuit is open after consecutive failures.
    CircuitOpen,
    /// The webhook is paused or disabled.
    Paused,
    /// An `ordered` webhook has an earlier delivery still unfinished.
    Ordered,
}

impl DeferCause {
    const ALL: [DeferCause; 5] = [
        Self::Concurrency,
        Self::RateLimit,
        Self::CircuitOpen,
        Self::Paused,
        Self::Ordered,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Self::Concurrency => "concurrency",
            Self::RateLimit => "rate_limit",
            Self::CircuitOpen => "circuit_open",
            Self::Paused => "paused",
            Self::Ordered => "ordered",
        }
    }
}

struct WorkerMetrics {
    deliveries: Family<Labels, Counter>,
    attempts: Family<Labels, Counter>,
    retries: Family<Labels, Counter>,
    deferrals: Family<Labels, Counter>,
    response_seconds: Family<Labels, Histogram>,
    delivered_seconds: Histogram,
    registry: Registry,
}

/// Receiver answer times: 5 ms to the 30 s timeout cap.
const RESPONSE_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// Publish → delivered: milliseconds on an idle worker, hours across retries.
const DELIVERED_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0, 600.0, 3600.0,
    36000.0,
];

fn format_label(format: &str) -> Labels {
    vec![("format", format.to_owned())]
}

static METRICS: LazyLock<WorkerMetrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("hookrelay");
    let mut counters =
        |name: &str, help: &str| registered(&mut registry, name, help, Family::default());
    let deliveries = counters(
        "deliveries",
        "Deliveries finished, by outcome and body format",
    );
    let attempts = counters(
        "delivery_attempts",
        "Delivery attempts made, by result and body format",
    );
    let retries = counters(
        "retries_scheduled",
        "Failed attempts followed by a scheduled retry, by body format",
    );
    let deferrals = counters(
        "deferrals",
        "Claimed deliveries put off without an attempt, by cause",
    );
    let response_seconds: Family<Labels, Histogram> = registered(
        &mut registry,
        "receiver_response_seconds",
        "Time from sending a delivery to the receiver's answer, by body format",
        Family::new_with_constructor(|| Histogram::new(RESPONSE_BUCKETS)),
    );
    let delivered_seconds = registered(
        &mut registry,
        "publish_to_delivered_seconds",
        "Time from publishing an event to its successful delivery",
        Histogram::new(DELIVERED_BUCKETS),
    );
    for format in Format::ALL {
        let f = format.as_str();
        for outcome in [Outcome::Succeeded, Outcome::Failed] {
            let _ = deliveries.get_or_create(&outcome_labels(f, outcome));
        }
        for result in ["success", "failure"] {
            let _ = attempts.get_or_create(&vec![
                ("format", f.to_owned()),
                ("result", result.to_owned()),
            ]);
        }
        let _ = retries.get_or_create(&format_label(f));
        let _ = response_seconds.get_or_create(&format_label(f));
    }
    for cause in DeferCause::ALL {
        let _ = deferrals.get_or_create(&vec![("cause", cause.as_str().to_owned())]);
    }
    WorkerMetrics {
        deliveries,
        attempts,
        retries,
        deferrals,
        response_seconds,
        delivered_seconds,
        registry,
    }
});

/// Registers `metric` in `registry` under `name` with `help`, and returns it for recording:
/// the registry keeps a clone, which shares its values.
fn registered<M: Metric + Clone>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M {
    registry.register(name, help, metric.clone());
    metric
}

fn outcome_labels(format: &str, outcome: Outcome) -> Labels {
    vec![
        ("format", format.to_owned()),
        ("outcome", outcome.as_str().to_owned()),
    ]
}

/// The worker's registry, to encode or to show beside other metrics.
pub fn registry() -> &'static Registry {
    &METRICS.registry
}

/// A delivery finished for good (`format` as in [`Format::as_str`]).
pub fn delivery_finished(format: &str, outcome: Outcome) {
    METRICS
        .deliveries
        .get_or_create(&outcome_labels(format, outcome))
        .inc();
}

/// One attempt was made; `succeeded` as classified (2xx/3xx and the format's own check).
pub fn attempt_made(format: &str, succeeded: bool) {
    let result = if succeeded { "success" } else { "failure" };
    METRICS
        .attempts
        .get_or_create(&vec![
            ("format", format.to_owned()),
            ("result", result.to_owned()),
        ])
        .inc();
}

/// A failed attempt was followed by a retry in the scheduled set.
pub fn retry_scheduled(format: &str) {
    METRICS.retries.get_or_create(&format_label(format)).inc();
}

/// A claimed delivery was put off without an attempt.
pub fn deferred(cause: DeferCause) {
    METRICS
        .deferrals
        .get_or_create(&vec![("cause", cause.as_str().to_owned())])
        .inc();
}

/// How long the receiver took to answer one attempt (whatever the answer).
pub fn response_time(format: &str, elapsed: Duration) {
    METRICS
        .response_seconds
        .get_or_create(&format_label(format))
        .observe(elapsed.as_secs_f64());
}

/// A delivery succeeded `since_publish` after its event was published (retries included).
pub fn delivered_after(since_publish: Duration) {
    METRICS
        .delivered_seconds
        .observe(since_publish.as_secs_f64());
}

/// The exposition of the worker's registry alone, for a worker's own `/metrics`.
pub fn render() -> String {
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, registry()).is_err() {
        tracing::warn!("worker metrics exposition could not be written in full");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_and_records() {
        let before = render();
        assert!(
            before.contains("hookrelay_deliveries_total{format=\"wecom\",outcome=\"failed\"}"),
            "{before}"
        );
        assert!(before.contains("hookrelay_deferrals_total{cause=\"circuit_open\"} 0"));
        assert!(before.contains("hookrelay_publish_to_delivered_seconds_bucket"));
        delivery_finished("bailo", Outcome::Succeeded);
        attempt_made("bailo", true);
        retry_scheduled("bailo");
        deferred(DeferCause::RateLimit);
        response_time("bailo", Duration::from_millis(30));
        delivered_after(Duration::from_millis(3));
        let after = render();
        for line in [
            "hookrelay_deliveries_total{format=\"bailo\",outcome=\"succeeded\"} 1",
            "hookrelay_delivery_attempts_total{format=\"bailo\",result=\"success\"} 1",
            "hookrelay_retries_scheduled_total{format=\"bailo\"} 1",
            "hookrelay_deferrals_total{cause=\"rate_limit\"} 1",
            "hookrelay_receiver_response_seconds_count{format=\"bailo\"} 1",
            "hookrelay_publish_to_delivered_seconds_count 1",
        ] {
            assert!(after.contains(line), "{line} missing in {after}");
        }
    }
}
