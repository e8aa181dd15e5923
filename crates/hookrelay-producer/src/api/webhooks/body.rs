//! The bodies of the webhook endpoints: what a client sends (create, PATCH, headers with a
//! kept value), what it is shown (never a secret), and how a PATCH applies.

use std::collections::BTreeMap;

use hookrelay_core::time::Timestamp;
use hookrelay_core::webhook::{validate_max_concurrency, validate_rate_limit, validate_timeout};
use hookrelay_core::{
    DEFAULT_TIMEOUT_SECS, FieldError, Format, Header, Health, Webhook, WebhookName,
};
use serde::{Deserialize, Deserializer, Serialize};

/// A header as sent by a client. `value` may be null (or absent) for a header whose key the
/// webhook already has: the stored value is kept (UbiOps: "use value None to not update the
/// values of protected headers").
#[derive(Debug, Clone, Deserialize)]
pub(in crate::api) struct HeaderIn {
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    protected: bool,
}

/// A header as shown: a protected header's value is `null`.
#[derive(Debug, Clone, Serialize)]
pub(in crate::api) struct HeaderOut {
    key: String,
    value: Option<String>,
    protected: bool,
}

/// Body of `POST /projects/{p}/webhooks` and `PATCH /projects/{p}/webhooks/{name}`.
///
/// A PATCH may leave out any field; `null` keeps a field as it is, except `version` and
/// `token`, where `null` clears it. A create must have the fields that
/// [`WebhookIn::required`] takes; for it, `null` is the same as absent.
#[derive(Debug, Default, Deserialize)]
pub(in crate::api) struct WebhookIn {
    pub(super) name: Option<WebhookName>,
    pub(super) url: Option<String>,
    pub(super) headers: Option<Vec<HeaderIn>>,
    pub(super) object_type: Option<String>,
    pub(super) object_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) version: Option<Option<String>>,
    pub(super) description: Option<String>,
    pub(super) labels: Option<BTreeMap<String, String>>,
    pub(super) event: Option<String>,
    pub(super) events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "whole_number")]
    pub(super) timeout: Option<i64>,
    pub(super) enabled: Option<bool>,
    pub(super) retry: Option<bool>,
    pub(super) include_result: Option<bool>,
    pub(super) format: Option<String>,
    pub(super) github_actions: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    pub(super) token: Option<Option<String>>,
    pub(super) signing_secret: Option<String>,
    /// `null` returns to the default.
    #[serde(default, deserialize_with = "nullable_whole_number")]
    pub(super) max_concurrency: Option<Option<i64>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    pub(super) rate_limit: Option<Option<f64>>,
    pub(super) ordered: Option<bool>,
}

/// What a new webhook cannot do without.
pub(super) struct RequiredIn {
    pub(super) name: WebhookName,
    pub(super) url: String,
    pub(super) object_type: String,
    pub(super) object_name: String,
    pub(super) event: String,
}

impl WebhookIn {
    /// Takes the fields a create requires, naming the first one missing in the order of
    /// the body's fields.
    pub(super) fn required(&mut self) -> Result<RequiredIn, FieldError> {
        fn take<T>(value: &mut Option<T>, field: &str) -> Result<T, FieldError> {
            value
                .take()
                .ok_or_else(|| FieldError::new(field, "is required"))
        }
        Ok(RequiredIn {
            name: take(&mut self.name, "name")?,
            url: take(&mut self.url, "url")?,
            object_type: take(&mut self.object_type, "object_type")?,
            object_name: take(&mut self.object_name, "object_name")?,
            event: take(&mut self.event, "event")?,
        })
    }
}

/// A whole number, also when written with a fraction of zero (`10.0`): JSON does not tell
/// the two apart, and JSON Schema's `integer` accepts both. `null` is `None`.
pub(in crate::api) fn whole_number<'de, D>(d: D) -> Result<Option<i64>, D::Error>
where
    D: Deserializer<'de>,
{
    use serde::de::Error;
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(i) = n.as_i64() {
        return Ok(Some(i));
    }
    if n.as_u64().is_some() {
        return Ok(Some(i64::MAX));
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.is_finite() => {
            Ok(Some(f.clamp(i64::MIN as f64, i64::MAX as f64) as i64))
        }
        _ => Err(D::Error::custom("expected a whole number")),
    }
}

/// [`whole_number`] where `null` means something: absent → `None` (through `default`),
/// `null` → `Some(None)`, a number → `Some(Some(n))`.
fn nullable_whole_number<'de, D>(d: D) -> Result<Option<Option<i64>>, D::Error>
where
    D: Deserializer<'de>,
{
    whole_number(d).map(Some)
}

/// Absent → `None` (through `default`), `null` → `Some(None)`, a value → `Some(Some(v))`.
fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A webhook as shown by GET, list and PATCH: every UbiOps field plus hookrelay's, without
/// secrets.
#[derive(Debug, Clone, Serialize)]
pub(in crate::api) struct WebhookOut {
    id: String,
    name: String,
    url: String,
    headers: Vec<HeaderOut>,
    object_type: String,
    object_name: String,
    version: Option<String>,
    description: String,
    labels: BTreeMap<String, String>,
    event: String,
    events: Vec<String>,
    timeout: u32,
    enabled: bool,
    retry: bool,
    include_result: bool,
    format: Format,
    github_actions: bool,
    max_concurrency: Option<u32>,
    rate_limit: Option<f64>,
    ordered: bool,
    creation_date: Timestamp,
    last_updated: Timestamp,
    /// Read-only: whether a `token` is set (the token itself is never shown), so that a
    /// client can say "set" or "not set".
    token_set: bool,
    /// Read-only: the endpoint's health, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<Health>,
}

impl WebhookOut {
    pub(super) fn with_health(mut self, health: Health) -> Self {
        self.health = Some(health);
        self
    }
}

impl From<&Webhook> for WebhookOut {
    fn from(w: &Webhook) -> Self {
        Self {
            id: w.id.clone(),
            name: w.name.clone(),
            url: w.url.clone(),
            headers: w
                .headers
                .iter()
                .map(|h| HeaderOut {
                    key: h.key.clone(),
                    value: (!h.protected).then(|| h.value.clone()),
                    protected: h.protected,
                })
                .collect(),
            object_type: w.object_type.clone(),
            object_name: w.object_name.clone(),
            version: w.version.clone(),
            description: w.description.clone(),
            labels: w.labels.clone(),
            event: w.event.clone(),
            events: w.events.clone(),
            timeout: w.timeout,
            enabled: w.enabled,
            retry: w.retry,
            include_result: w.include_result,
            format: w.format,
            github_actions: w.github_actions,
            max_concurrency: w.max_concurrency,
            rate_limit: w.rate_limit,
            ordered: w.ordered,
            creation_date: w.creation_date,
            last_updated: w.last_updated,
            token_set: w.token.is_some(),
            health: None,
        }
    }
}

/// The create answer: the webhook and, this once, its signing secret (for admins only:
/// an editor's answer leaves it out).
#[derive(Debug, Serialize)]
pub(in crate::api) struct WebhookCreatedOut {
    #[serde(flatten)]
    pub(super) webhook: WebhookOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) signing_secret: Option<String>,
}

/// Resolves the headers a client sent against the stored ones: a null value keeps the
/// stored value of the header with the same key (exact match first, then ignoring case),
/// and keeps it protected when it was.
pub(in crate::api) fn resolve_headers(
    input: Vec<HeaderIn>,
    stored: &[Header],
) -> Result<Vec<Header>, FieldError> {
    input
        .into_iter()
        .enumerate()
        .map(|(i, h)| {
            // A kept value stays protected if it was: a PATCH can never reveal it.
            let (value, protected) = match h.value {
                Some(v) => (v, h.protected),
                None => stored
                    .iter()
                    .find(|s| s.key == h.key)
                    .or_else(|| stored.iter().find(|s| s.key.eq_ignore_ascii_case(&h.key)))
                    .map(|s| (s.value.clone(), h.protected || s.protected))
                    .ok_or_else(|| {
                        FieldError::new(
                            format!("headers[{i}].value"),
                            "is required; null keeps the stored value only of a header the webhook already has",
                        )
                    })?,
            };
            Ok(Header {
                key: h.key,
                value,
                protected,
            })
        })
        .collect()
}

pub(in crate::api) fn parse_format(format: Option<String>) -> Result<Format, FieldError> {
    format.map_or(Ok(Format::default()), |f| f.parse())
}

/// The request settings a new webhook and a test of an unsaved one share: the timeout
/// (default 10 s), the format (default `json`) and the headers (none stored to keep).
pub(in crate::api) fn parse_request_fields(
    timeout: Option<i64>,
    format: Option<String>,
    headers: Option<Vec<HeaderIn>>,
) -> Result<(u32, Format, Vec<Header>), FieldError> {
    let timeout = match timeout {
        Some(t) => validate_timeout(t)?,
        None => DEFAULT_TIMEOUT_SECS,
    };
    let format = parse_format(format)?;
    let headers = resolve_headers(headers.unwrap_or_default(), &[])?;
    Ok((timeout, format, headers))
}

/// Applies a PATCH to a stored webhook. Pure, so that the registry can run it again when
/// another writer got there first.
pub(super) fn apply_patch(
    current: &Webhook,
    patch: &WebhookIn,
    format: Option<Format>,
    timeout: Option<u32>,
) -> Result<Webhook, FieldError> {
    let mut w = current.clone();
    if let Some(name) = &patch.name {
        w.name = name.to_string();
    }
    set_given(&mut w.url, &patch.url);
    if let Some(headers) = &patch.headers {
        w.headers = resolve_headers(headers.clone(), &current.headers)?;
    }
    set_given(&mut w.object_type, &patch.object_type);
    set_given(&mut w.object_name, &patch.object_name);
    set_given(&mut w.version, &patch.version);
    set_given(&mut w.description, &patch.description);
    set_given(&mut w.labels, &patch.labels);
    set_given(&mut w.event, &patch.event);
    set_given(&mut w.events, &patch.events);
    if let Some(v) = timeout {
        w.timeout = v;
    }
    if let Some(v) = patch.enabled {
        w.enabled = v;
    }
    if let Some(v) = patch.retry {
        w.retry = v;
    }
    if let Some(v) = patch.include_result {
        w.include_result = v;
    }
    if let Some(v) = format {
        w.format = v;
    }
    if let Some(v) = patch.github_actions {
        w.github_actions = v;
    }
    set_given(&mut w.token, &patch.token);
    if let Some(v) = patch.max_concurrency {
        w.max_concurrency = v.map(validate_max_concurrency).transpose()?;
    }
    if let Some(v) = patch.rate_limit {
        w.rate_limit = v.map(validate_rate_limit).transpose()?;
    }
    if let Some(v) = patch.ordered {
        w.ordered = v;
    }
    if let Some(v) = &patch.signing_secret {
        w.signing_secret.clone_from(v);
        // An explicitly set secret replaces the old one at once.
        w.previous_secret = None;
    }
    w.last_updated = Timestamp::now();
    Ok(w)
}

/// A PATCH field that was given replaces the stored value; an absent one keeps it.
fn set_given<T: Clone>(stored: &mut T, given: &Option<T>) {
    if let Some(v) = given {
        stored.clone_from(v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(key: &str, value: Option<&str>, protected: bool) -> HeaderIn {
        HeaderIn {
            key: key.into(),
            value: value.map(Into::into),
            protected,
        }
    }

    #[test]
    fn null_header_values_keep_the_stored_value() {
        let stored = vec![Header {
            key: "Authorization".into(),
            value: "Token 123".into(),
            protected: true,
        }];
        let got = resolve_headers(
            vec![
                header("Authorization", None, true),
                header("X-New", Some("1"), false),
            ],
            &stored,
        )
        .expect("resolves");
        assert_eq!(got[0].value, "Token 123");
        assert_eq!(got[1].value, "1");
        let got = resolve_headers(vec![header("authorization", None, true)], &stored)
            .expect("case-insensitive");
        assert_eq!(got[0].value, "Token 123");
        let e = resolve_headers(vec![header("X-Other", None, true)], &stored).expect_err("new");
        assert_eq!(e.field, "headers[0].value");
    }
}
