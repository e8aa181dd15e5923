//! Delivery records: the status of a delivery and the record of each attempt, as kept in
//! Redis and shown by the API.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::named_enum::named_enum;
use crate::time::Timestamp;

named_enum! {
    /// What a delivery is for.
    #[derive(Default)]
    pub enum DeliveryKind {
        /// An event delivered to a webhook.
        #[default]
        Delivery = "delivery",
        /// A webhook test (`webhooks-tests` or `webhooks/{name}/test`).
        Test = "test",
    }
}

named_enum! {
    /// Where a delivery stands: `pending` → (`retrying` →)* `succeeded` or `failed`.
    pub enum DeliveryStatus {
        /// Waiting for its first attempt.
        Pending = "pending",
        /// An attempt failed; another is scheduled.
        Retrying = "retrying",
        /// An attempt got a 2xx or 3xx.
        Succeeded = "succeeded",
        /// Attempts ran out, or the webhook does not retry.
        Failed = "failed",
    }
}

impl DeliveryStatus {
    /// The UbiOps webhook-test status: `pending`, `completed` or `failed`.
    pub fn test_status(self) -> &'static str {
        match self {
            DeliveryStatus::Pending | DeliveryStatus::Retrying => "pending",
            DeliveryStatus::Succeeded => "completed",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// The part of a receiver's answer that is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseRecord {
    /// HTTP status code.
    pub status_code: u16,
    /// Response headers (values joined by `, ` when repeated).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The body, as far as kept (lossy UTF-8).
    #[serde(default)]
    pub body: String,
    /// Whether the body was cut.
    #[serde(default)]
    pub body_truncated: bool,
}

/// One attempt, as recorded under the delivery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// 1-based attempt number.
    pub attempt: u32,
    /// When the request started.
    pub started_at: Timestamp,
    /// Whole exchange, in milliseconds.
    pub duration_ms: u64,
    /// HTTP status, when an answer came.
    pub status_code: Option<u16>,
    /// Why the attempt failed; none on success.
    pub error: Option<String>,
    /// What was kept of the answer.
    #[serde(default)]
    pub response: Option<ResponseRecord>,
    /// The worker that made the attempt.
    #[serde(default)]
    pub worker: Option<String>,
}
