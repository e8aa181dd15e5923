//! The delivery record: one HASH per delivery (`Keys::delivery(id)`) and, when an attempt
//! failed, a LIST of attempt JSON (`Keys::attempts(id)`), kept for the retention. Its fields
//! are defined here, once: [`record_fields`] writes a new record, [`view_from_fields`] reads
//! one back; the Lua scripts update them by these names.
//!
//! The hash stays small so that Redis keeps it in its compact encoding (every value under
//! 64 bytes): fields without a value are left out, and a successful attempt is a summary
//! field of its own (`a<n>`, below) that keeps of its answer the status code and as much of
//! the body as fits (a short acknowledgement such as `{"received":true}` fits); an attempt
//! that failed, with the answer it got (capped at `HOOKRELAY_MAX_RESPONSE_BODY_BYTES`), goes
//! to the attempts list.
//!
//! | field | meaning |
//! | --- | --- |
//! | `project`, `webhook`, `event`, `event_id`, `kind` | what it is (set at enqueue; `kind` only for a webhook test; `id`, `endpoint` and `attempts` too in records of earlier versions: the endpoint is the webhook's id, or the test's own) |
//! | `status` | `pending`, `retrying`, `succeeded` or `failed` |
//! | `created_at`, `updated_at`, `next_attempt_at` | ms since the epoch (`next_attempt_at` absent when none is due) |
//! | `last_error`, `last_status_code` | of the last attempt (no status code when it succeeded: its summary has it) |
//! | `a<n>` | attempt n, when it succeeded: `<started ms>,<duration ms>,<status code>,<worker>,<body cut: 0/1>,<body>` |
//! | `response` | the last answer, for webhook tests only (deliveries keep answers of failed attempts in their attempts list) |
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
use hookrelay_core::time::Timestamp;
use hookrelay_core::{AttemptRecord, DeliveryId, DeliveryKind, DeliveryStatus, Job};
use serde::Serialize;

/// A delivery record as read back.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    /// Delivery id.
    pub id: DeliveryId,
    /// Project.
    pub project: String,
    /// Webhook name, if the delivery belongs to a saved webhook.
    pub webhook: Option<String>,
    /// The endpoint whose queue it waits in, as records of earlier versions kept it (none
    /// now: a delivery's endpoint is its webhook's id, a test's its own).
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
        "project",
        job.project,
        "event",
        job.event,
        "status",
        DeliveryStatus::Pending.as_str(),
        "created_at",
        now.to_string(),
        "updated_at",
        now.to_string(),
        "next_attempt_at",
        now.to_string(),
    ]);
    if let Some(list) = fields.as_array_mut() {
        // A delivery is the kind a record without `kind` has.
        let kind = (job.kind != DeliveryKind::Delivery).then_some(job.kind.as_str());
        let optional = [
            ("kind", kind),
            ("webhook", job.webhook.as_deref()),
            ("event_id", event_id),
            ("job", raw),
        ];
        for (name, value) in optional {
            if let Some(v) = value.filter(|v| !v.is_empty()) {
                list.push(name.into());
                list.push(v.into());
            }
        }
    }
    fields
}

/// The summary field of a successful attempt (`a<n>`, see the module's table), when it fits
/// the hash's compact encoding (under 64 bytes); `None`: the attempt goes to the list.
pub(crate) fn attempt_summary(a: &AttemptRecord) -> Option<String> {
    let code = a.status_code.filter(|c| (200..400).contains(c))?;
    if a.error.is_some() {
        return None;
    }
    let started = a.started_at.as_ms();
    let worker = a.worker.as_deref().unwrap_or("");
    if worker.contains(',') {
        return None;
    }
    let head = format!("{started},{},{code},{worker},", a.duration_ms);
    let body = a.response.as_ref().map_or("", |r| r.body.as_str());
    let room = 63usize.checked_sub(head.len() + 2)?;
    let (kept, cut) = if body.len() <= room {
        (body, a.response.as_ref().is_some_and(|r| r.body_truncated))
    } else {
        let mut end = room;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        (&body[..end], true)
    };
    Some(format!("{head}{},{kept}", u8::from(cut)))
}

fn attempt_from_summary(n: u32, summary: &str) -> Option<AttemptRecord> {
    let mut parts = summary.splitn(6, ',');
    let started: i64 = parts.next()?.parse().ok()?;
    let duration_ms: u64 = parts.next()?.parse().ok()?;
    let code: u16 = parts.next()?.parse().ok()?;
    let worker = parts.next().filter(|w| !w.is_empty()).map(str::to_owned);
    let cut = parts.next() == Some("1");
    let body = parts.next().unwrap_or("").to_owned();
    Some(AttemptRecord {
        attempt: n,
        started_at: Timestamp::from_ms(started),
        duration_ms,
        status_code: Some(code),
        error: None,
        response: Some(ResponseRecord {
            status_code: code,
            headers: Default::default(),
            body,
            body_truncated: cut,
        }),
        worker,
    })
}

fn non_empty(fields: &HashMap<String, String>, name: &str) -> Option<String> {
    fields.get(name).filter(|v| !v.is_empty()).cloned()
}

/// Reads back the record of delivery `id` (`None` when there is none: no `status`).
pub(crate) fn view_from_fields(
    id: &DeliveryId,
    fields: HashMap<String, String>,
    attempts: &[String],
) -> Option<DeliveryView> {
    fields.get("status")?;
    let mut all: Vec<AttemptRecord> = attempts
        .iter()
        .filter_map(|a| serde_json::from_str(a).ok())
        .collect();
    for (name, value) in &fields {
        let n = name
            .strip_prefix('a')
            .and_then(|n| n.parse::<u32>().ok())
            .filter(|n| *n > 0);
        if let Some(a) = n.and_then(|n| attempt_from_summary(n, value)) {
            all.push(a);
        }
    }
    all.sort_by_key(|a| a.attempt);
    // A successful last attempt has its status code in its summary only.
    let last_status_code = non_empty(&fields, "last_status_code")
        .and_then(|c| c.parse::<u16>().ok())
        .or_else(|| all.last().and_then(|a| a.status_code));
    let num = |name: &str| non_empty(&fields, name).and_then(|v| v.parse::<i64>().ok());
    Some(DeliveryView {
        project: non_empty(&fields, "project").unwrap_or_default(),
        webhook: non_empty(&fields, "webhook"),
        endpoint: non_empty(&fields, "endpoint"),
        event: non_empty(&fields, "event").unwrap_or_default(),
        event_id: non_empty(&fields, "event_id"),
        kind: fields
            .get("kind")
            .and_then(|k| DeliveryKind::parse(k))
            .unwrap_or_default(),
        status: fields
            .get("status")
            .and_then(|s| DeliveryStatus::parse(s))
            .unwrap_or(DeliveryStatus::Pending),
        attempts: all,
        created_at_ms: num("created_at").unwrap_or_default(),
        updated_at_ms: num("updated_at").unwrap_or_default(),
        next_attempt_at_ms: num("next_attempt_at"),
        last_error: non_empty(&fields, "last_error"),
        last_status_code,
        response: non_empty(&fields, "response").and_then(|r| serde_json::from_str(&r).ok()),
        job: non_empty(&fields, "job"),
        id: id.clone(),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn attempt(body: &str, truncated: bool) -> AttemptRecord {
        AttemptRecord {
            attempt: 2,
            started_at: "2026-12-02T04:51:50.101Z".parse().unwrap(),
            duration_ms: 12,
            status_code: Some(200),
            error: None,
            response: Some(ResponseRecord {
                status_code: 200,
                headers: [("date".to_owned(), "today".to_owned())].into(),
                body: body.into(),
                body_truncated: truncated,
            }),
            worker: Some("vm-30515-d756a414".into()),
        }
    }

    #[test]
    fn a_successful_attempt_is_a_summary_under_64_bytes_with_what_fits_of_its_body() {
        let short = attempt_summary(&attempt("{\"received\":true}", false)).unwrap();
        assert!(short.len() < 64, "{short}");
        let back = attempt_from_summary(2, &short).unwrap();
        let r = back.response.unwrap();
        assert_eq!(
            (r.body.as_str(), r.body_truncated),
            ("{\"received\":true}", false)
        );
        assert_eq!(back.started_at.to_string(), "2026-12-02T04:51:50.101Z");
        assert_eq!((back.duration_ms, back.status_code), (12, Some(200)));
        assert_eq!(back.worker.as_deref(), Some("vm-30515-d756a414"));

        let long = attempt_summary(&attempt(&"é,x".repeat(40), false)).unwrap();
        assert!(long.len() < 64, "{long}");
        let r = attempt_from_summary(2, &long).unwrap().response.unwrap();
        assert!(r.body_truncated && r.body.starts_with("é,x"), "{r:?}");
    }

    #[test]
    fn failures_and_odd_workers_go_to_the_attempts_list() {
        let mut failed = attempt("", false);
        failed.status_code = Some(500);
        assert!(attempt_summary(&failed).is_none());
        let mut error = attempt("", false);
        error.error = Some("timed out".into());
        assert!(attempt_summary(&error).is_none());
        let mut comma = attempt("", false);
        comma.worker = Some("a,b".into());
        assert!(attempt_summary(&comma).is_none());
    }
}
