//! `/projects/{project}/webhooks…`: the UbiOps webhook CRUD, plus hookrelay's test, secret
//! and rotation endpoints of one webhook (recovery: `recoveries.rs`).
//!
//! Never shown back: `token`, `signing_secret` (except in the create answer and by the
//! `secret` endpoint) and the values of protected headers, which read as `null` — the value
//! the official UbiOps client accepts, and the one that, sent back in a PATCH, keeps the
//! stored value.

use hookrelay_core::ProjectName;
use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_core::signing::{generate_secret, validate_secret};
use hookrelay_core::time::{now_ms, now_rfc3339, rfc3339_ms};
use hookrelay_core::webhook::{
    PreviousSecret, ROTATION_OVERLAP_MS, validate_max_concurrency, validate_rate_limit,
    validate_timeout,
};
use hookrelay_core::{
    DEFAULT_TIMEOUT_SECS, FieldError, Format, Header, Health, HealthState, Webhook, WebhookDraft,
};
use serde::{Deserialize, Deserializer, Serialize};

use super::AppState;
use super::auth::Caller;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::webhook_tests::TestOut;
use crate::error::ProducerError;
use crate::registry::{check_webhook, not_found};

/// A header as sent by a client. `value` may be null (or absent) for a header whose key the
/// webhook already has: the stored value is kept (UbiOps: "use value None to not update the
/// values of protected headers").
#[derive(Debug, Clone, Deserialize)]
pub(super) struct HeaderIn {
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    protected: bool,
}

/// A header as shown: a protected header's value is `null`.
#[derive(Debug, Clone, Serialize)]
pub(super) struct HeaderOut {
    key: String,
    value: Option<String>,
    protected: bool,
}

/// Body of `POST /projects/{p}/webhooks`.
#[derive(Debug, Deserialize)]
pub(super) struct WebhookCreateIn {
    name: String,
    url: String,
    headers: Option<Vec<HeaderIn>>,
    object_type: String,
    object_name: String,
    version: Option<String>,
    description: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    event: String,
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "whole_number")]
    timeout: Option<i64>,
    enabled: Option<bool>,
    retry: Option<bool>,
    include_result: Option<bool>,
    format: Option<String>,
    github_actions: Option<bool>,
    token: Option<String>,
    signing_secret: Option<String>,
    #[serde(default, deserialize_with = "whole_number")]
    max_concurrency: Option<i64>,
    rate_limit: Option<f64>,
    ordered: Option<bool>,
}

/// Body of `PATCH /projects/{p}/webhooks/{name}`: every field optional. `null` keeps a
/// field as it is, except `version` and `token`, where `null` clears it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WebhookPatchIn {
    name: Option<String>,
    url: Option<String>,
    headers: Option<Vec<HeaderIn>>,
    object_type: Option<String>,
    object_name: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    version: Option<Option<String>>,
    description: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    event: Option<String>,
    events: Option<Vec<String>>,
    #[serde(default, deserialize_with = "whole_number")]
    timeout: Option<i64>,
    enabled: Option<bool>,
    retry: Option<bool>,
    include_result: Option<bool>,
    format: Option<String>,
    github_actions: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    token: Option<Option<String>>,
    signing_secret: Option<String>,
    /// `null` returns to the default.
    #[serde(default, deserialize_with = "nullable_whole_number")]
    max_concurrency: Option<Option<i64>>,
    /// `null` removes the limit.
    #[serde(default, deserialize_with = "nullable")]
    rate_limit: Option<Option<f64>>,
    ordered: Option<bool>,
}

/// A whole number, also when written with a fraction of zero (`10.0`): JSON does not tell
/// the two apart, and JSON Schema's `integer` accepts both. `null` is `None`.
pub(super) fn whole_number<'de, D>(d: D) -> Result<Option<i64>, D::Error>
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
pub(super) struct WebhookOut {
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
    creation_date: String,
    last_updated: String,
    /// Read-only: whether a `token` is set (the token itself is never shown), so that a
    /// client can say "set" or "not set".
    token_set: bool,
    /// Read-only: the endpoint's health, when it was read.
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<Health>,
}

impl WebhookOut {
    fn with_health(mut self, health: Health) -> Self {
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
            creation_date: w.creation_date.clone(),
            last_updated: w.last_updated.clone(),
            token_set: w.token.is_some(),
            health: None,
        }
    }
}

/// The create answer: the webhook and, this once, its signing secret (for admins only:
/// an editor's answer leaves it out).
#[derive(Debug, Serialize)]
pub(super) struct WebhookCreatedOut {
    #[serde(flatten)]
    webhook: WebhookOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
}

/// Only admins see or set signing secrets.
fn check_may_set_secret(caller: &Caller, secret: Option<&String>) -> Result<(), ProducerError> {
    if secret.is_some() && !caller.is_admin() {
        return Err(ProducerError::Forbidden(format!(
            "signing_secret: only an admin may set it; this token's role is {}",
            caller.role()
        )));
    }
    Ok(())
}

/// `GET …/secret`.
#[derive(Debug, Serialize)]
pub(super) struct SecretOut {
    signing_secret: String,
    /// When the previous secret stops signing, while it still does.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<String>,
}

/// Resolves the headers a client sent against the stored ones: a null value keeps the
/// stored value of the header with the same key (exact match first, then ignoring case),
/// and keeps it protected when it was.
pub(super) fn resolve_headers(
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

pub(super) fn parse_format(format: Option<String>) -> Result<Format, FieldError> {
    format.map_or(Ok(Format::default()), |f| f.parse())
}

/// The request settings a new webhook and a test of an unsaved one share: the timeout
/// (default 10 s), the format (default `json`) and the headers (none stored to keep).
pub(super) fn parse_request_fields(
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

fn check_secret(secret: &str) -> Result<(), FieldError> {
    validate_secret(secret).map_err(|e| FieldError::new("signing_secret", e.message))
}

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project): ApiPath<ProjectName>,
    ApiJson(input): ApiJson<WebhookCreateIn>,
) -> Result<(StatusCode, Json<WebhookCreatedOut>), ProducerError> {
    check_may_set_secret(&caller, input.signing_secret.as_ref())?;
    let (timeout, format, headers) =
        parse_request_fields(input.timeout, input.format, input.headers)?;
    let signing_secret = match input.signing_secret {
        Some(s) => {
            check_secret(&s)?;
            s
        }
        None => generate_secret(),
    };
    let draft = WebhookDraft {
        headers,
        version: input.version,
        description: input.description.unwrap_or_default(),
        labels: input.labels.unwrap_or_default(),
        events: input.events.unwrap_or_default(),
        timeout,
        enabled: input.enabled.unwrap_or(true),
        retry: input.retry.unwrap_or(false),
        include_result: input.include_result.unwrap_or(false),
        format,
        github_actions: input.github_actions.unwrap_or(false),
        token: input.token,
        max_concurrency: input
            .max_concurrency
            .map(validate_max_concurrency)
            .transpose()?,
        rate_limit: input.rate_limit.map(validate_rate_limit).transpose()?,
        ordered: input.ordered.unwrap_or(false),
        ..WebhookDraft::new(
            input.name,
            input.url,
            input.object_type,
            input.object_name,
            input.event,
        )
    };
    let webhook = draft.into_webhook(
        uuid::Uuid::new_v4().to_string(),
        signing_secret,
        &now_rfc3339(),
    );
    check_webhook(&webhook, &state.settings().policy)?;
    state.registry().create(&project, &webhook).await?;
    tracing::info!(project = %project, webhook = %webhook.name, "webhook created");
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreatedOut {
            webhook: WebhookOut::from(&webhook),
            signing_secret: caller.is_admin().then_some(webhook.signing_secret),
        }),
    ))
}

/// Parses the `labels` filter: `key:value` pairs separated by commas.
fn parse_label_filter(s: &str) -> Result<Vec<(String, String)>, FieldError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|pair| {
            pair.split_once(':')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    FieldError::new(
                        "labels",
                        format!("expected key:value pairs separated by commas (e.g. env:prod,team:a), got {pair:?}"),
                    )
                })
        })
        .collect()
}

async fn list(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectName>,
    ApiQuery(query): ApiQuery,
) -> Result<Json<Vec<WebhookOut>>, ProducerError> {
    let labels = match query.get("labels") {
        Some(l) => parse_label_filter(l)?,
        None => Vec::new(),
    };
    let object_type = query.get("object_type").filter(|v| !v.is_empty());
    let event = query.get("event").filter(|v| !v.is_empty());
    let wanted_health = match query.get("health").filter(|v| !v.is_empty()) {
        Some(h) => Some(parse_health_filter(h)?),
        None => None,
    };
    let hooks = state.registry().list(&project).await?;
    let matching: Vec<&Webhook> = hooks
        .iter()
        .filter(|w| {
            labels
                .iter()
                .all(|(k, v)| w.labels.get(k).is_some_and(|have| have == v))
        })
        .filter(|w| object_type.is_none_or(|t| &w.object_type == t))
        .filter(|w| event.is_none_or(|e| &w.event == e || w.events.iter().any(|x| x == e)))
        .collect();
    let ids: Vec<&str> = matching.iter().map(|w| w.id.as_str()).collect();
    let health = state.queue().health(&ids).await?;
    let out = matching
        .into_iter()
        .zip(health)
        .map(|(w, h)| (w, webhook_health(w, h)))
        .filter(|(_, h)| {
            wanted_health
                .as_ref()
                .is_none_or(|want| want.contains(&h.state))
        })
        .map(|(w, h)| WebhookOut::from(w).with_health(h))
        .collect();
    Ok(Json(out))
}

/// Parses the `health` filter: state names separated by commas.
fn parse_health_filter(s: &str) -> Result<Vec<HealthState>, FieldError> {
    s.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|name| {
            HealthState::parse(name).ok_or_else(|| {
                let names: Vec<&str> = HealthState::ALL.iter().map(|h| h.as_str()).collect();
                FieldError::new(
                    "health",
                    format!("unknown state {name:?}; one of {}", names.join(", ")),
                )
            })
        })
        .collect()
}

/// A webhook's health: the endpoint's, except that a webhook switched off is disabled
/// whatever its queue says.
fn webhook_health(w: &Webhook, mut h: Health) -> Health {
    if !w.enabled && h.state != HealthState::Disabled {
        h.state = HealthState::Disabled;
    }
    h
}

/// One webhook with its health.
async fn with_health(state: &AppState, w: &Webhook) -> Result<WebhookOut, ProducerError> {
    let health = state.queue().health(&[w.id.as_str()]).await?;
    let out = WebhookOut::from(w);
    Ok(match health.into_iter().next() {
        Some(h) => out.with_health(webhook_health(w, h)),
        None => out,
    })
}

async fn get_one(
    State(state): State<AppState>,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
) -> Result<Json<WebhookOut>, ProducerError> {
    let webhook = stored(&state, &project, &name).await?;
    Ok(Json(with_health(&state, &webhook).await?))
}

/// Applies a PATCH to a stored webhook. Pure, so that the registry can run it again when
/// another writer got there first.
fn apply_patch(
    current: &Webhook,
    patch: &WebhookPatchIn,
    format: Option<Format>,
    timeout: Option<u32>,
) -> Result<Webhook, FieldError> {
    let mut w = current.clone();
    set_given(&mut w.name, &patch.name);
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
    w.last_updated = now_rfc3339();
    Ok(w)
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
    ApiJson(patch): ApiJson<WebhookPatchIn>,
) -> Result<Json<WebhookOut>, ProducerError> {
    check_may_set_secret(&caller, patch.signing_secret.as_ref())?;
    // What can be checked without the stored webhook is checked once, up front.
    let timeout = patch.timeout.map(validate_timeout).transpose()?;
    let format = patch
        .format
        .clone()
        .map(|f| f.parse::<Format>())
        .transpose()?;
    if let Some(s) = &patch.signing_secret {
        check_secret(s)?;
    }
    let policy = state.settings().policy.clone();
    let updated = state
        .registry()
        .update(&project, &name, |current| {
            let w = apply_patch(current, &patch, format, timeout)?;
            check_webhook(&w, &policy)?;
            Ok(w)
        })
        .await?;
    tracing::info!(project = %project, webhook = %updated.name, previous_name = %name, "webhook updated");
    Ok(Json(with_health(&state, &updated).await?))
}

async fn delete(
    State(state): State<AppState>,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
) -> Result<StatusCode, ProducerError> {
    if state.registry().delete(&project, &name).await? {
        tracing::info!(project = %project, webhook = %name, "webhook deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(&project, &name))
    }
}

async fn test(
    State(state): State<AppState>,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
) -> Result<(StatusCode, Json<TestOut>), ProducerError> {
    let webhook = stored(&state, &project, &name).await?;
    let id = state.publisher().test(&project, &webhook, true).await?;
    state.metrics().test();
    Ok((
        StatusCode::ACCEPTED,
        Json(TestOut::pending(id, Some(webhook.name))),
    ))
}

async fn secret(
    State(state): State<AppState>,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
) -> Result<Json<SecretOut>, ProducerError> {
    let webhook = stored(&state, &project, &name).await?;
    let now = now_ms();
    Ok(Json(SecretOut {
        previous_secret_expires_at: webhook
            .previous_secret
            .as_ref()
            .filter(|p| p.expires_at_ms > now)
            .map(|p| rfc3339_ms(p.expires_at_ms)),
        signing_secret: webhook.signing_secret,
    }))
}

async fn rotate(
    State(state): State<AppState>,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
) -> Result<Json<SecretOut>, ProducerError> {
    let updated = state
        .registry()
        .update(&project, &name, |current| {
            let now = now_ms();
            let mut w = current.clone();
            w.previous_secret = Some(PreviousSecret {
                secret: current.signing_secret.clone(),
                expires_at_ms: now + ROTATION_OVERLAP_MS,
            });
            w.signing_secret = generate_secret();
            w.last_updated = rfc3339_ms(now);
            Ok(w)
        })
        .await?;
    tracing::info!(project = %project, webhook = %name, "signing secret rotated");
    Ok(Json(SecretOut {
        previous_secret_expires_at: updated
            .previous_secret
            .as_ref()
            .map(|p| rfc3339_ms(p.expires_at_ms)),
        signing_secret: updated.signing_secret,
    }))
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/webhooks", post(create).get(list))
        .route(
            "/projects/{project}/webhooks/{name}",
            get(get_one).patch(update).delete(delete),
        )
        .route("/projects/{project}/webhooks/{name}/test", post(test))
        .route("/projects/{project}/webhooks/{name}/secret", get(secret))
        .route(
            "/projects/{project}/webhooks/{name}/secret/rotate",
            post(rotate),
        )
}

/// The stored webhook `name` of `project`, or the 404.
async fn stored(
    state: &AppState,
    project: &ProjectName,
    name: &str,
) -> Result<Webhook, ProducerError> {
    state
        .registry()
        .get(project, name)
        .await?
        .ok_or_else(|| not_found(project, name))
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

    #[test]
    fn label_filter_parses() {
        assert_eq!(
            parse_label_filter("a:1, b:2").expect("parses"),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert_eq!(
            parse_label_filter("url:http://x").expect("first colon splits"),
            vec![("url".into(), "http://x".into())]
        );
        assert_eq!(parse_label_filter("").expect("empty"), vec![]);
        assert_eq!(
            parse_label_filter("nocolon").expect_err("bad").field,
            "labels"
        );
    }
}
