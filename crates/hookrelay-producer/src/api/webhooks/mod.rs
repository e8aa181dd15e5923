//! `/projects/{project}/webhooks…`: the UbiOps webhook CRUD, plus hookrelay's test, secret
//! and rotation endpoints of one webhook (recovery: `recoveries.rs`).
//!
//! Never shown back: `token`, `signing_secret` (except in the create answer and by the
//! `secret` endpoint) and the values of protected headers, which read as `null` — the value
//! the official UbiOps client accepts, and the one that, sent back in a PATCH, keeps the
//! stored value.
//!
//! Here: the handlers and the router. `body.rs`: the request and answer bodies and how a
//! PATCH applies. `secret.rs`: reading and rotating the signing secret.

mod body;
mod secret;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_core::signing::generate_secret;
use hookrelay_core::webhook::{validate_max_concurrency, validate_rate_limit, validate_timeout};
use hookrelay_core::{FieldError, Format, Health, HealthState, ProjectName, Webhook, WebhookDraft};

pub(super) use body::{HeaderIn, parse_request_fields, whole_number};
use body::{WebhookCreatedOut, WebhookIn, WebhookOut, apply_patch};
use secret::{check_may_set_secret, check_secret, rotate, secret};

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery};
use super::webhook_tests::TestOut;
use crate::api::auth::Caller;
use crate::error::ProducerError;
use crate::registry::{check_webhook, not_found};

async fn create(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(project): ApiPath<ProjectName>,
    ApiJson(mut input): ApiJson<WebhookIn>,
) -> Result<(StatusCode, Json<WebhookCreatedOut>), ProducerError> {
    let required = input.required()?;
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
        version: input.version.flatten(),
        description: input.description.unwrap_or_default(),
        labels: input.labels.unwrap_or_default(),
        events: input.events.unwrap_or_default(),
        timeout,
        enabled: input.enabled.unwrap_or(true),
        retry: input.retry.unwrap_or(false),
        include_result: input.include_result.unwrap_or(false),
        format,
        github_actions: input.github_actions.unwrap_or(false),
        token: input.token.flatten(),
        max_concurrency: input
            .max_concurrency
            .flatten()
            .map(validate_max_concurrency)
            .transpose()?,
        rate_limit: input
            .rate_limit
            .flatten()
            .map(validate_rate_limit)
            .transpose()?,
        ordered: input.ordered.unwrap_or(false),
        ..WebhookDraft::new(
            required.name.into_string(),
            required.url,
            required.object_type,
            required.object_name,
            required.event,
        )
    };
    let webhook = draft.into_new_webhook(signing_secret);
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

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
    ApiJson(patch): ApiJson<WebhookIn>,
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

#[cfg(test)]
mod tests {
    use super::*;

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
