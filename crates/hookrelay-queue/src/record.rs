//! The delivery record: one HASH per delivery (`Keys::delivery(id)`) and a LIST of attempt
//! JSON (`Keys::attempts(id)`), kept for the retention. Its fields are defined here, once:
//! [`record_fields`] writes a new record, [`view_from_fields`] reads one back; the Lua
//! scripts update them by these names.
//!
//! | field | meaning |
//! | --- | --- |
//! | `id`, `project`, `webhook`, `endpoint`, `event`, `event_id`, `kind` | what it is (set at enqueue) |
//! | `status` | `pending`, `retrying`, `succeeded` or `failed` |
//! | `attempts` | the number of the last attempt made |
//! | `created_at`, `updated_at`, `next_attempt_at` | ms since the epoch (`next_attempt_at` empty when none is due) |
//! | `last_error`, `last_status_code` | of the last attempt |
//! | `response` | the last answer, for webhook tests only (deliveries keep answers in their attempts) |
//! | `job` | webhook tests only: the job as first enqueued (secrets inside: never shown); a delivery of an event is rendered again from the event's payload (`PartitionKeys::payload`), stored once per event. Records written before that have it too |
//!
//! Status transitions, and the script that makes each:
//!
//! | from → to | by |
//! | --- | --- |
//! | (none) → `pending` | `enqueue.lua` |
//! | `pending`/`retrying` → `retrying` | `ack.lua`: a failed attempt with a retry scheduled, or a deferral (`Retry-After`, `410`, a disabled webhook) |
//! | `pending`/`retrying` → `succeeded` | `ack.lua` |
//! | `pending`/`retrying` → `failed` | `ack.lua` (attempts ran out, no retry, webhook deleted); `dead_letter.lua` (not runnable) |
//! | `succeeded`/`failed` → `pending` | `redeliver.lua` (redeliver and recover) |

use std::collections::HashMap;

use hookrelay_core::delivery::ResponseRecord;
use hookrelay_core::{AttemptRecord, DeliveryKind, DeliveryStatus, Job};
use serde::Serialize;

/// A delivery record as read back.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    /// Delivery id.
    pub id: String,
    /// Project.
    pub project: String,
    /// Webhook name, if the delivery belongs to a saved webhook.
    pub webhook: Option<String>,
    /// The endpoint whose queue it waits in (none in records written before endpoints).
    pub endpoint: Option<String>,
    /// Event name.
    pub event: String,
    /// Event id.
    pub event_id: Option<String>,
    /// Delivery or test.
    pub kind: DeliveryKind,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// When it was created (ms).
    pub created_at_ms: i64,
    /// When it last changed (ms).
    pub updated_at_ms: i64,
    /// When the next attempt is due (ms), while one is.
    pub next_attempt_at_ms: Option<i64>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Status code of the last attempt.
    pub last_status_code: Option<u16>,
    /// What was kept of the last answer.
    pub response: Option<ResponseRecord>,
    /// The job as first enqueued (secrets inside: never shown to clients): webhook tests,
    /// and deliveries recorded before payloads were shared.
    #[serde(skip)]
    pub job: Option<String>,
}

/// The fields a delivery record starts with (see `DeliveryView` for reading them back).
pub(crate) fn record_fields(
    job: &Job,
    event_id: Option<&str>,
    now: i64,
    raw: Option<&str>,
) -> serde_json::Value {
    let mut fields = serde_json::json!([
        "id",
        job.id,
        "project",
        job.project,
        "webhook",
        job.webhook.clone().unwrap_or_default(),
        "endpoint",
        job.endpoint,
        "event",
        job.event,
        "event_id",
        event_id.unwrap_or_default(),
        "kind",
        job.kind.as_str(),
        "status",
        DeliveryStatus::Pending.as_str(),
        "attempts",
        "0",
        "created_at",
        now.to_string(),
        "updated_at",
        now.to_string(),
        "next_attempt_at",
        now.to_string(),
        "last_error",
        "",
        "last_status_code",
        "",
        "response",
        "",
    ]);
    if let (Some(raw), Some(list)) = (raw, fields.as_array_mut()) {
        list.push("job".into());
        list.push(raw.into());
    }
    fields
}

fn non_empty(fields: &HashMap<String, String>, name: &str) -> Option<String> {
    fields.get(name).filter(|v| !v.is_empty()).cloned()
}

pub(crate) fn view_from_fields(
    fields: HashMap<String, String>,
    attempts: &[String],
) -> Option<DeliveryView> {
    let id = non_empty(&fields, "id")?;
    let num = |name: &str| non_empty(&fields, name).and_then(|v| v.parse::<i64>().ok());
    Some(DeliveryView {
        project: non_empty(&fields, "project").unwrap_or_default(),
        webhook: non_empty(&fields, "webhook"),
        endpoint: non_empty(&fields, "endpoint"),
        event: non_empty(&fields, "event").unwrap_or_default(),
        event_id: non_empty(&fields, "event_id"),
        kind: match fields.get("kind").map(String::as_str) {
            Some("test") => DeliveryKind::Test,
            _ => DeliveryKind::Delivery,
        },
        status: fields
            .get("status")
            .and_then(|s| DeliveryStatus::parse(s))
            .unwrap_or(DeliveryStatus::Pending),
        attempts: attempts
            .iter()
            .filter_map(|a| serde_json::from_str(a).ok())
            .collect(),
        created_at_ms: num("created_at").unwrap_or_default(),
        updated_at_ms: num("updated_at").unwrap_or_default(),
        next_attempt_at_ms: num("next_attempt_at"),
        last_error: non_empty(&fields, "last_error"),
        last_status_code: num("last_status_code").and_then(|c| u16::try_from(c).ok()),
        response: non_empty(&fields, "response").and_then(|r| serde_json::from_str(&r).ok()),
        job: non_empty(&fields, "job"),
        id,
    })
}
