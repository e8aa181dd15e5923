//! A webhook as stored in Redis (secrets included), its body format, and the field validators
//! that the API and the `publish` command share.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::event::Event;
use crate::named_enum::named_enum;
use crate::time::Timestamp;

/// Longest webhook, project, object or event name accepted.
pub const MAX_NAME_LEN: usize = 64;
/// Longest event name in `event` / `events`.
pub const MAX_EVENT_LEN: usize = 128;
/// Most entries in `events`.
pub const MAX_EVENTS: usize = 64;
/// Most headers on one webhook.
pub const MAX_HEADERS: usize = 50;
/// Longest URL accepted.
pub const MAX_URL_LEN: usize = 2048;
/// How long the previous signing secret keeps signing after a rotation.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 60 * 60 * 1000;

named_enum! {
    /// The body format of a webhook's deliveries (the name is used in the API and in Redis).
    #[derive(Default)]
    pub enum Format {
        /// UbiOps-style event envelope (the default).
        #[default]
        Json = "json",
        /// Bailo model webhooks.
        Bailo = "bailo",
        /// Comet model-registry webhooks.
        Comet = "comet",
        /// Bytebase "Custom" webhook.
        Bytebase = "bytebase",
        /// Slack incoming webhook.
        Slack = "slack",
        /// Discord webhook.
        Discord = "discord",
        /// Microsoft Teams incoming webhook.
        Teams = "teams",
        /// DingTalk robot.
        Dingtalk = "dingtalk",
        /// Feishu (Lark) bot.
        Feishu = "feishu",
        /// WeCom group robot.
        Wecom = "wecom",
    }
}

impl FromStr for Format {
    type Err = FieldError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Format::parse(s).ok_or_else(|| {
            FieldError::new(
                "format",
                format!("unknown format {s:?}; one of {}", Format::NAMES.join(", ")),
            )
        })
    }
}

/// One request header of a webhook. A `protected` header's value is never shown back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Header name.
    pub key: String,
    /// Header value.
    pub value: String,
    /// Whether the value is secret.
    #[serde(default)]
    pub protected: bool,
}

/// The signing secret that was replaced by a rotation, still used until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// The old `whsec_…` secret.
    pub secret: String,
    /// Milliseconds since the epoch after which it no longer signs.
    pub expires_at_ms: i64,
}

/// A webhook as stored: every UbiOps field plus hookrelay's own, secrets included.
/// Never serialise this to a client; the API has its own view type that leaves secrets out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Webhook {
    /// UUID.
    pub id: String,
    /// Unique within its project.
    pub name: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// Extra request headers.
    #[serde(default)]
    pub headers: Vec<Header>,
    /// Type of object it fires for (`deployment`, `pipeline`, `model`, …); `*` for any.
    pub object_type: String,
    /// Name of the object it fires for; `*` for any.
    pub object_name: String,
    /// Version it fires for; none for any.
    #[serde(default)]
    pub version: Option<String>,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Key/value labels, used by the list filter.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The event that fires it; `*` for every event.
    pub event: String,
    /// More events that fire it.
    #[serde(default)]
    pub events: Vec<String>,
    /// Seconds for the whole exchange, 1–30.
    pub timeout: u32,
    /// Disabled webhooks receive nothing.
    pub enabled: bool,
    /// Whether failed deliveries are attempted again.
    pub retry: bool,
    /// Whether the event's `result` goes into the `json` body.
    pub include_result: bool,
    /// Body format.
    #[serde(default)]
    pub format: Format,
    /// Wrap the body as a GitHub `repository_dispatch`.
    #[serde(default)]
    pub github_actions: bool,
    /// Sent as `Authorization: Bearer <token>`.
    #[serde(default)]
    pub token: Option<String>,
    /// Standard Webhooks secret, `whsec_…`.
    pub signing_secret: String,
    /// The secret before the last rotation, while it still signs.
    #[serde(default)]
    pub previous_secret: Option<PreviousSecret>,
    /// Deliveries in flight at once to this webhook, across all workers (1–1000); none for
    /// the operator's default (`HOOKRELAY_ENDPOINT_CONCURRENCY`).
    #[serde(default)]
    pub max_concurrency: Option<u32>,
    /// Deliveries per second at most, across all workers; none for no limit.
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Deliver one at a time, in publish order; a failing head holds the rest.
    #[serde(default)]
    pub ordered: bool,
    /// When it was created.
    pub creation_date: Timestamp,
    /// When it was last changed.
    pub last_updated: Timestamp,
}

impl Webhook {
    /// Whether an event fires this webhook.
    pub fn matches(&self, event: &Event) -> bool {
        self.enabled
            && self.listens_to(&event.event)
            && (self.object_type == "*" || self.object_type == event.object_type)
            && (self.object_name == "*" || self.object_name == event.object_name)
            && match &self.version {
                None => true,
                Some(v) => event.version.as_deref() == Some(v.as_str()),
            }
    }

    /// Whether `event` is one of the events this webhook listens to.
    pub fn listens_to(&self, event: &str) -> bool {
        self.event == "*"
            || self.event == event
            || self.events.iter().any(|e| e == "*" || e == event)
    }

    /// The secrets that sign a delivery made at `now_ms`: the current one, then the previous
    /// one while its overlap lasts.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<String> {
        let mut secrets = vec![self.signing_secret.clone()];
        if let Some(prev) = self
            .previous_secret
            .as_ref()
            .filter(|p| p.expires_at_ms > now_ms)
        {
            secrets.push(prev.secret.clone());
        }
        secrets
    }

    /// The headers to send: the webhook's own, in order, as (name, value) pairs.
    pub fn header_pairs(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect()
    }
}

/// A webhook before it has an id, a signing secret and dates: what a create request or a
/// test of an unsaved webhook describes. [`WebhookDraft::new`] takes what has no default;
/// every other field starts at its UbiOps default (no headers, a 10 s timeout, enabled, no
/// retry, the `json` format) and is set by name.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookDraft {
    /// Unique name within the project.
    pub name: String,
    /// Target URL.
    pub url: String,
    /// Request headers, in order.
    pub headers: Vec<Header>,
    /// Object type filter, or `*`.
    pub object_type: String,
    /// Object name filter, or `*`.
    pub object_name: String,
    /// Object version filter.
    pub version: Option<String>,
    /// Free text.
    pub description: String,
    /// Key/value labels.
    pub labels: BTreeMap<String, String>,
    /// Event filter, or `*`.
    pub event: String,
    /// More event filters.
    pub events: Vec<String>,
    /// Whole-exchange timeout, seconds.
    pub timeout: u32,
    /// Whether events fire it.
    pub enabled: bool,
    /// Whether failed deliveries are retried.
    pub retry: bool,
    /// Whether the event's result is sent.
    pub include_result: bool,
    /// Body format.
    pub format: Format,
    /// GitHub Actions `repository_dispatch` body.
    pub github_actions: bool,
    /// Bearer token.
    pub token: Option<String>,
    /// Most deliveries in flight at once; `None` for the deployment's default.
    pub max_concurrency: Option<u32>,
    /// Most deliveries per second; `None` for no limit.
    pub rate_limit: Option<f64>,
    /// One delivery at a time, in publish order.
    pub ordered: bool,
}

impl WebhookDraft {
    /// A draft named `name` posting to `url` for `event` on `object_type`/`object_name`,
    /// with every other field at its default.
    pub fn new(
        name: impl Into<String>,
        url: impl Into<String>,
        object_type: impl Into<String>,
        object_name: impl Into<String>,
        event: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            url: url.into(),
            headers: Vec::new(),
            object_type: object_type.into(),
            object_name: object_name.into(),
            version: None,
            description: String::new(),
            labels: BTreeMap::new(),
            event: event.into(),
            events: Vec::new(),
            timeout: crate::DEFAULT_TIMEOUT_SECS,
            enabled: true,
            retry: false,
            include_result: false,
            format: Format::default(),
            github_actions: false,
            token: None,
            max_concurrency: None,
            rate_limit: None,
            ordered: false,
        }
    }

    /// A new webhook: this draft with a fresh id (UUID v4), `signing_secret`, and the
    /// current time as its creation and update time.
    pub fn into_new_webhook(self, signing_secret: String) -> Webhook {
        let now = Timestamp::now();
        self.into_webhook(uuid::Uuid::new_v4().to_string(), signing_secret, now)
    }

    /// The webhook: this draft with `id`, `signing_secret`, and `now` (RFC 3339) as its
    /// creation and update time.
    pub fn into_webhook(self, id: String, signing_secret: String, now: Timestamp) -> Webhook {
        Webhook {
            id,
            name: self.name,
            url: self.url,
            headers: self.headers,
            object_type: self.object_type,
            object_name: self.object_name,
            version: self.version,
            description: self.description,
            labels: self.labels,
            event: self.event,
            events: self.events,
            timeout: self.timeout,
            enabled: self.enabled,
            retry: self.retry,
            include_result: self.include_result,
            format: self.format,
            github_actions: self.github_actions,
            token: self.token,
            signing_secret,
            previous_secret: None,
            max_concurrency: self.max_concurrency,
            rate_limit: self.rate_limit,
            ordered: self.ordered,
            creation_date: now,
            last_updated: now,
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

/// Validates a name used in paths and Redis keys (project, webhook, token): 1–64 characters
/// of letters, digits, `-`, `_` and `.`, and neither `.` nor `..`.
pub fn validate_name(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_NAME_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if !value.chars().all(is_name_char) {
        return Err(FieldError::new(
            field,
            "may contain only letters, digits, '-', '_' and '.'",
        ));
    }
    // Path segments that mean "this" and "parent": clients and browsers rewrite URLs
    // holding them, so an object named so could never be reached again.
    if value == "." || value == ".." {
        return Err(FieldError::new(field, "must not be '.' or '..'"));
    }
    Ok(())
}

/// Validates a free-form label such as an object type, object name or version: 1–128
/// characters, no control characters.
pub fn validate_label(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > MAX_EVENT_LEN {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_EVENT_LEN} characters"),
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Validates the `events` list: at most 64 names, each a valid label.
pub fn validate_events(events: &[String]) -> Result<(), FieldError> {
    if events.len() > MAX_EVENTS {
        return Err(FieldError::new(
            "events",
            format!("at most {MAX_EVENTS} events"),
        ));
    }
    for (i, e) in events.iter().enumerate() {
        validate_label(&format!("events[{i}]"), e)?;
    }
    Ok(())
}

/// Validates a timeout in seconds: 1–30.
pub fn validate_timeout(timeout: i64) -> Result<u32, FieldError> {
    if (1..=i64::from(crate::MAX_TIMEOUT_SECS)).contains(&timeout) {
        Ok(timeout as u32)
    } else {
        Err(FieldError::new(
            "timeout",
            format!(
                "must be between 1 and {} seconds, got {timeout}",
                crate::MAX_TIMEOUT_SECS
            ),
        ))
    }
}

/// Validates a delivery URL: absolute http(s) with a host, at most 2048 characters.
/// Returns the host, so the caller can apply the target policy to a literal address.
pub fn validate_url(value: &str) -> Result<url::Url, FieldError> {
    if value.len() > MAX_URL_LEN {
        return Err(FieldError::new(
            "url",
            format!("must be at most {MAX_URL_LEN} characters"),
        ));
    }
    let url = url::Url::parse(value)
        .map_err(|e| FieldError::new("url", format!("is not a valid URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FieldError::new(
            "url",
            format!("scheme must be http or https, got {:?}", url.scheme()),
        ));
    }
    if url.host().is_none() {
        return Err(FieldError::new("url", "must have a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(FieldError::new(
            "url",
            "must not carry credentials; use headers or token",
        ));
    }
    Ok(url)
}

/// Most deliveries in flight to one webhook that `max_concurrency` may ask for.
pub const MAX_ENDPOINT_CONCURRENCY: u32 = 1000;
/// Highest `rate_limit` accepted, in deliveries per second.
pub const MAX_RATE_LIMIT: f64 = 100_000.0;
/// Lowest `rate_limit` accepted: one delivery an hour.
pub const MIN_RATE_LIMIT: f64 = 1.0 / 3600.0;

/// Validates `max_concurrency`: 1–1000.
pub fn validate_max_concurrency(value: i64) -> Result<u32, FieldError> {
    if (1..=i64::from(MAX_ENDPOINT_CONCURRENCY)).contains(&value) {
        Ok(value as u32)
    } else {
        Err(FieldError::new(
            "max_concurrency",
            format!("must be between 1 and {MAX_ENDPOINT_CONCURRENCY}, got {value}"),
        ))
    }
}

/// Validates `rate_limit` (deliveries per second): more than 0 (at least one an hour), at
/// most 100,000.
pub fn validate_rate_limit(value: f64) -> Result<f64, FieldError> {
    if value.is_finite() && (MIN_RATE_LIMIT..=MAX_RATE_LIMIT).contains(&value) {
        Ok(value)
    } else {
        Err(FieldError::new(
            "rate_limit",
            format!(
                "must be a number of deliveries per second from {MIN_RATE_LIMIT:.6} (one an hour) to {MAX_RATE_LIMIT}, got {value}"
            ),
        ))
    }
}

/// Headers that hookrelay sets itself and a webhook may not override.
pub const RESERVED_HEADERS: [&str; 8] = [
    "content-type",
    "content-length",
    "host",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "transfer-encoding",
];

/// Validates a webhook's headers: names are HTTP tokens and not reserved, values are
/// visible ASCII or spaces.
pub fn validate_headers(headers: &[Header]) -> Result<(), FieldError> {
    if headers.len() > MAX_HEADERS {
        return Err(FieldError::new(
            "headers",
            format!("at most {MAX_HEADERS} headers"),
        ));
    }
    for (i, h) in headers.iter().enumerate() {
        let is_token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if h.key.is_empty() || h.key.len() > 256 || !h.key.chars().all(is_token) {
            return Err(FieldError::new(
                format!("headers[{i}].key"),
                "must be a valid HTTP header name",
            ));
        }
        if RESERVED_HEADERS.contains(&h.key.to_ascii_lowercase().as_str()) {
            return Err(FieldError::new(
                format!("headers[{i}].key"),
                format!("{:?} is set by hookrelay and cannot be overridden", h.key),
            ));
        }
        if h.value.len() > 8192
            || !h
                .value
                .chars()
                .all(|c| c == '\t' || (' '..='~').contains(&c))
        {
            return Err(FieldError::new(
                format!("headers[{i}].value"),
                "must be printable ASCII, at most 8192 characters",
            ));
        }
    }
    Ok(())
}
