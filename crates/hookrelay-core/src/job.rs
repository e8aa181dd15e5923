//! The queue job: one attempt of one delivery, self-contained, as JSON in Redis.
//!
//! A job carries everything the worker needs to make the request (a snapshot of the webhook
//! taken at publish time, and the rendered body), so that delivering never needs another
//! look-up. Once written to Redis a version is never changed incompatibly: new fields get
//! `#[serde(default)]`; an incompatible change bumps [`JOB_VERSION`] and keeps a decoder for
//! the old one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delivery::DeliveryKind;
use crate::names::{DeliveryId, ProjectName};
use crate::webhook::Format;

/// The job version this build writes and reads.
pub const JOB_VERSION: u32 = 1;

/// The request a job makes, fixed when the delivery was created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRequest {
    /// Target URL.
    pub url: String,
    /// Webhook headers, as (name, value).
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// Bearer token, if the webhook has one.
    #[serde(default)]
    pub token: Option<String>,
    /// Signing secrets (`whsec_…`); each signs the request.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Whole-exchange timeout in seconds; cut to 30 when larger.
    pub timeout_secs: u32,
    /// The rendered body.
    pub body: String,
    /// The body format, which also decides how an answer is classified.
    #[serde(default)]
    pub format: Format,
}

/// One attempt of one delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// Job schema version, [`JOB_VERSION`].
    pub v: u32,
    /// The delivery id (stable across attempts; the `webhook-id` header).
    pub id: DeliveryId,
    /// A webhook delivery or a webhook test.
    #[serde(default)]
    pub kind: DeliveryKind,
    /// Project.
    pub project: ProjectName,
    /// Webhook name; none for a test of an unsaved webhook.
    #[serde(default)]
    pub webhook: Option<String>,
    /// Event name.
    pub event: String,
    /// The endpoint whose queue the job waits in: the webhook's id, or `t-<delivery id>` for
    /// a webhook test (tests get a queue of their own, untouched by the webhook's health).
    /// Empty in jobs written before endpoints existed; the queue fills it in when claiming.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub endpoint: String,
    /// The 1-based number of this attempt.
    pub attempt: u32,
    /// How many of the attempts so far did not count against the retry budget (the receiver
    /// asked to wait with `Retry-After`, or the webhook was disabled while it ran).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deferred: u32,
    /// When the event was published (ms since the epoch; 0 in jobs written without it), for
    /// the publish → delivered latency.
    #[serde(default, skip_serializing_if = "is_zero_ms")]
    pub created_at_ms: i64,
    /// Whether a failed attempt is tried again.
    #[serde(default)]
    pub retry: bool,
    /// The request to make.
    pub request: JobRequest,
}

/// Why a value taken from the queue is not a job this build can run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobDecodeError {
    /// Not JSON at all, or cut short.
    #[error("not valid JSON: {0}")]
    NotJson(String),
    /// JSON, but with a version this build does not know.
    #[error("unknown job version {0} (this build reads version {JOB_VERSION})")]
    UnknownVersion(u64),
    /// JSON without a version.
    #[error("no job version field \"v\"")]
    NoVersion,
    /// The right version with missing or wrong-typed fields.
    #[error("invalid job: {0}")]
    Invalid(String),
}

/// serde's message, unless it could quote a value from the job (jobs carry secrets): then
/// only what kind of problem it is and where.
fn describe(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    if e.is_syntax()
        || e.is_eof()
        || msg.starts_with("missing field")
        || msg.starts_with("duplicate field")
    {
        msg
    } else {
        format!(
            "a field has the wrong type or value at line {} column {}",
            e.line(),
            e.column()
        )
    }
}

#[derive(Deserialize)]
struct VersionOnly {
    v: Option<serde_json::Value>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn is_zero_ms(n: &i64) -> bool {
    *n == 0
}

/// The endpoint of a webhook test: a queue of its own, one per test.
pub fn test_endpoint(delivery_id: &str) -> String {
    format!("t-{delivery_id}")
}

impl JobRequest {
    /// A POST of `body` to `url` with no headers, token or secrets, the default timeout and
    /// the `json` format; set the other fields by name.
    pub fn new(url: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            headers: Vec::new(),
            token: None,
            secrets: Vec::new(),
            timeout_secs: crate::DEFAULT_TIMEOUT_SECS,
            body: body.into(),
            format: Format::default(),
        }
    }
}

impl Job {
    /// The first attempt of delivery `id` of `event` in `project`, waiting in `endpoint`'s
    /// queue: a webhook delivery, not retried, with no webhook name and no publish time; set
    /// the other fields by name.
    pub fn first_attempt(
        id: DeliveryId,
        project: ProjectName,
        endpoint: impl Into<String>,
        event: impl Into<String>,
        request: JobRequest,
    ) -> Self {
        Self {
            v: JOB_VERSION,
            id,
            kind: DeliveryKind::default(),
            project,
            webhook: None,
            event: event.into(),
            endpoint: endpoint.into(),
            attempt: 1,
            deferred: 0,
            created_at_ms: 0,
            retry: false,
            request,
        }
    }

    /// The attempts that count against the retry budget, this one included.
    pub fn counted_attempt(&self) -> u32 {
        self.attempt.saturating_sub(self.deferred).max(1)
    }

    /// Decodes a raw queue value, saying precisely why it is not a job when it is not.
    pub fn decode(raw: &[u8]) -> Result<Job, JobDecodeError> {
        // One parse on the hot path; the slower look at what is wrong only on failure.
        let job: Job = match serde_json::from_slice(raw) {
            Ok(job) => job,
            Err(full) => return Err(Self::diagnose(raw, &full)),
        };
        if job.v != JOB_VERSION {
            return Err(JobDecodeError::UnknownVersion(u64::from(job.v)));
        }
        if job.id.is_empty() {
            return Err(JobDecodeError::Invalid("empty \"id\"".into()));
        }
        if job.attempt == 0 {
            return Err(JobDecodeError::Invalid("\"attempt\" starts at 1".into()));
        }
        Ok(job)
    }

    /// Why a value that did not parse as a job is not one: not JSON, no or another version,
    /// or wrong fields.
    fn diagnose(raw: &[u8], full: &serde_json::Error) -> JobDecodeError {
        let head: VersionOnly = match serde_json::from_slice(raw) {
            Ok(head) => head,
            Err(e) => {
                return match serde_json::from_slice::<serde::de::IgnoredAny>(raw) {
                    Ok(_) => JobDecodeError::Invalid(format!("not a job object: {}", describe(&e))),
                    Err(syntax) => JobDecodeError::NotJson(describe(&syntax)),
                };
            }
        };
        match head.v {
            None => JobDecodeError::NoVersion,
            Some(serde_json::Value::Number(n)) if n.as_u64() == Some(u64::from(JOB_VERSION)) => {
                JobDecodeError::Invalid(describe(full))
            }
            Some(serde_json::Value::Number(n)) => {
                JobDecodeError::UnknownVersion(n.as_u64().unwrap_or(u64::MAX))
            }
            Some(_) => JobDecodeError::Invalid("\"v\" must be a number".into()),
        }
    }

    /// Encodes the job as the JSON stored in Redis.
    pub fn encode(&self) -> String {
        // Serialising a struct of strings, numbers and vectors cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The whole-exchange timeout: the job's, cut to 1–30 s.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs(u64::from(
            self.request.timeout_secs.clamp(1, crate::MAX_TIMEOUT_SECS),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        Job {
            v: JOB_VERSION,
            id: DeliveryId::parse("d1").expect("a delivery id"),
            kind: DeliveryKind::Delivery,
            project: ProjectName::parse("p").expect("a valid project"),
            webhook: Some("w".into()),
            event: "e".into(),
            endpoint: "ep".into(),
            attempt: 1,
            deferred: 0,
            created_at_ms: 0,
            retry: true,
            request: JobRequest {
                url: "http://example.com/".into(),
                headers: vec![("X-A".into(), "1".into())],
                token: None,
                secrets: vec![],
                timeout_secs: 99,
                body: "{}".into(),
                format: Format::Json,
            },
        }
    }

    #[test]
    fn round_trip_and_timeout_cap() {
        let j = job();
        let back = Job::decode(j.encode().as_bytes()).expect("decodes");
        assert_eq!(back, j);
        assert_eq!(back.timeout(), Duration::from_secs(30));
    }

    #[test]
    fn a_job_with_an_invalid_project_does_not_decode() {
        let mut value = serde_json::to_value(job()).expect("serialises");
        value["project"] = serde_json::json!("../other");
        let raw = serde_json::to_vec(&value).expect("serialises");
        assert!(matches!(Job::decode(&raw), Err(JobDecodeError::Invalid(_))));
    }

    #[test]
    fn decode_errors_name_the_problem() {
        let check = |raw: &str, want: &str| {
            let err = Job::decode(raw.as_bytes()).expect_err(raw).to_string();
            assert!(err.contains(want), "{raw:?} gave {err:?}, wanted {want:?}");
        };
        check("garbage", "not valid JSON");
        check("{\"v\":1,\"id\":\"x\"", "not valid JSON");
        check("{\"v\":7,\"id\":\"x\"}", "unknown job version 7");
        check("{\"id\":\"x\"}", "no job version");
        check("{\"v\":\"1\"}", "must be a number");
        check("{\"v\":1,\"id\":\"x\"}", "invalid job");
        check("[1,2]", "invalid job");
        // A secret in a wrong-typed field is never quoted back.
        let secret = r#"{"v":1,"id":"x","project":"p","event":"e","attempt":1,"request":{"url":"u","timeout_secs":1,"body":"","secrets":"whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}}"#;
        let err = Job::decode(secret.as_bytes())
            .expect_err("wrong type")
            .to_string();
        assert!(!err.contains("whsec_"), "{err}");
        assert!(err.contains("line 1 column"), "{err}");
    }
}
