//! Endpoints: the unit of isolation. Each webhook is an endpoint with a queue of its own;
//! what the queue knows of its health, and the rules that move it between states.
//!
//! States, most severe first (the README documents each transition):
//! - `disabled`: the webhook is off (by a user, by a `410 Gone`, or after failing without a
//!   success for `HOOKRELAY_DISABLE_AFTER_SECS`); its deliveries wait until it is enabled.
//! - `circuit_open`: consecutive failures opened the circuit; deliveries wait out a cooldown,
//!   then one probe decides whether it closes.
//! - `paused`: the receiver answered 429 or 503 with `Retry-After`; nothing is sent until then.
//! - `throttled`: deliveries wait for a free slot under `max_concurrency` or `rate_limit`.
//! - `healthy`: none of the above.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::named_enum::named_enum;
use crate::time::Timestamp;

/// Consecutive failures (timeouts, connection errors, 5xx) that open an endpoint's circuit.
pub const CIRCUIT_FAILURE_THRESHOLD: u32 = 5;
/// The first cooldown of an open circuit; each failed probe doubles it.
pub const CIRCUIT_COOLDOWN_BASE: Duration = Duration::from_secs(5);
/// The longest cooldown of an open circuit.
pub const CIRCUIT_COOLDOWN_MAX: Duration = Duration::from_secs(10 * 60);
/// The longest pause a receiver's `Retry-After` can ask for.
pub const MAX_PAUSE: Duration = Duration::from_secs(3600);

named_enum! {
    /// Where an endpoint stands (the name is used in the API and in metrics).
    pub enum HealthState {
        /// Delivering normally.
        Healthy = "healthy",
        /// Waiting for a slot under its concurrency cap or rate limit.
        Throttled = "throttled",
        /// Failing; deliveries wait for the cooldown and a successful probe.
        CircuitOpen = "circuit_open",
        /// The receiver asked to wait (`Retry-After`).
        Paused = "paused",
        /// Off; deliveries wait until it is enabled again.
        Disabled = "disabled",
    }
}

/// An endpoint's health, as shown in a webhook's `health` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Health {
    /// Where it stands.
    pub state: HealthState,
    /// Deliveries being attempted now.
    pub in_flight: u64,
    /// Deliveries waiting: ready and scheduled.
    pub backlog: u64,
    /// Failures (timeouts, connection errors, 5xx) since the last success.
    pub consecutive_failures: u32,
    /// The end of a pause asked for by the receiver, while it lasts.
    pub paused_until: Option<Timestamp>,
    /// When the last successful delivery was made.
    pub last_success_at: Option<Timestamp>,
    /// When the last failed attempt was made.
    pub last_failure_at: Option<Timestamp>,
    /// Why the webhook was disabled, while it is.
    pub disabled_reason: Option<String>,
}

/// What one attempt says about its endpoint, for the ack to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx or 3xx: the endpoint works.
    Success,
    /// A timeout, a connection error or a 5xx: counts towards opening the circuit.
    Broken,
    /// Any other failure (a 4xx, a failure reported in the body): the receiver answers, so
    /// the circuit stays closed, but it is not a success either.
    Rejected,
    /// 429 or 503 with `Retry-After`: pause the endpoint until then (capped at [`MAX_PAUSE`]).
    Pause(Duration),
    /// `410 Gone`: disable the webhook.
    Gone,
}

impl Verdict {
    /// The name passed to the ack script.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Success => "success",
            Verdict::Broken => "broken",
            Verdict::Rejected => "rejected",
            Verdict::Pause(_) => "pause",
            Verdict::Gone => "gone",
        }
    }

    /// Whether the attempt leaves the delivery waiting without using up an attempt.
    pub fn defers(self) -> bool {
        matches!(self, Verdict::Pause(_) | Verdict::Gone)
    }
}

/// Announced when the queue disabled a webhook, for the operational event
/// `hookrelay.webhook.disabled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisabledNotice {
    /// The endpoint (webhook id).
    pub endpoint: String,
    /// Project.
    pub project: String,
    /// Webhook name when it was disabled.
    pub webhook: String,
    /// Why.
    pub reason: String,
    /// When it was disabled (ms).
    pub at: i64,
    /// Since when it had been failing without a success (ms), when that is the reason.
    #[serde(default)]
    pub failing_since: Option<i64>,
}

/// The name of the operational event published into a project when one of its webhooks is
/// disabled.
pub const WEBHOOK_DISABLED_EVENT: &str = "hookrelay.webhook.disabled";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_names_round_trip() {
        for s in HealthState::ALL {
            assert_eq!(HealthState::parse(s.as_str()), Some(s));
            let json = serde_json::to_string(&s).expect("serialises");
            assert_eq!(json, format!("\"{}\"", s.as_str()));
        }
        assert_eq!(HealthState::parse("open"), None);
    }
}
