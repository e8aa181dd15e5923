//! `/projects/{project}/webhooks-tests…`: UbiOps webhook tests. A test is one real delivery
//! attempt (never retried) of the format's sample payload, through the same queue and worker
//! as every other delivery; its record is read back as
//! `{"id", "status": pending|completed|failed, "error_message", …}`.

use hookrelay_core::ProjectName;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_core::delivery::ResponseRecord;
use hookrelay_core::signing::generate_secret;
use hookrelay_core::time::Timestamp;
use hookrelay_core::{DeliveryId, DeliveryKind, DeliveryStatus, WebhookDraft};
use hookrelay_queue::DeliveryView;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, ApiPath, FromSegment};
use super::webhooks::{HeaderIn, parse_request_fields};
use crate::error::ProducerError;
use crate::registry::check_webhook;

/// The name given to the unsaved webhook of a UbiOps test (its record shows no webhook).
const UNSAVED_NAME: &str = "webhooks-test";

/// Body of `POST /projects/{p}/webhooks-tests`: a webhook that need not exist.
/// `retry` is accepted and ignored like any unknown field: a test is one attempt.
#[derive(Debug, Deserialize)]
pub(super) struct WebhookTestCreateIn {
    url: String,
    object_type: String,
    object_name: String,
    event: String,
    headers: Option<Vec<HeaderIn>>,
    version: Option<String>,
    #[serde(default, deserialize_with = "super::webhooks::whole_number")]
    timeout: Option<i64>,
    include_result: Option<bool>,
    format: Option<String>,
    github_actions: Option<bool>,
    token: Option<String>,
}

/// A webhook test as shown: UbiOps' `id`, `status`, `error_message`, plus what was kept of
/// the receiver's answer.
#[derive(Debug, Clone, Serialize)]
pub(super) struct TestOut {
    id: DeliveryId,
    /// `pending`, `completed` or `failed`.
    status: &'static str,
    /// Why the test failed; null unless it did.
    error_message: Option<String>,
    /// The webhook tested; null for a test of an unsaved webhook.
    webhook: Option<String>,
    /// RFC 3339.
    created_at: Timestamp,
    /// When the attempt started, once it has.
    attempted_at: Option<Timestamp>,
    /// How long the attempt took, once it has run.
    duration_ms: Option<u64>,
    /// HTTP status of the answer, when one came.
    status_code: Option<u16>,
    /// Headers, body (as far as kept) of the answer.
    response: Option<ResponseRecord>,
}

impl TestOut {
    /// A test just enqueued.
    pub(super) fn pending(id: DeliveryId, webhook: Option<String>) -> Self {
        Self {
            id,
            status: "pending",
            error_message: None,
            webhook,
            created_at: Timestamp::now(),
            attempted_at: None,
            duration_ms: None,
            status_code: None,
            response: None,
        }
    }

    fn from_view(view: DeliveryView) -> Self {
        let status = view.status.test_status();
        let last = view.attempts.last();
        let error_message = (view.status == DeliveryStatus::Failed).then(|| {
            view.last_error
                .clone()
                .or_else(|| last.and_then(|a| a.error.clone()))
                .or_else(|| view.last_status_code.map(|c| format!("HTTP {c}")))
                .unwrap_or_else(|| "failed".to_owned())
        });
        Self {
            status,
            error_message,
            webhook: view.webhook,
            created_at: Timestamp::from_ms(view.created_at_ms),
            attempted_at: last.map(|a| a.started_at),
            duration_ms: last.map(|a| a.duration_ms),
            status_code: view
                .last_status_code
                .or_else(|| last.and_then(|a| a.status_code)),
            response: view
                .response
                .or_else(|| last.and_then(|a| a.response.clone())),
            id: view.id,
        }
    }
}

async fn create(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectName>,
    ApiJson(input): ApiJson<WebhookTestCreateIn>,
) -> Result<(StatusCode, Json<TestOut>), ProducerError> {
    let (timeout, format, headers) =
        parse_request_fields(input.timeout, input.format, input.headers)?;
    let draft = WebhookDraft {
        headers,
        version: input.version,
        timeout,
        include_result: input.include_result.unwrap_or(false),
        format,
        github_actions: input.github_actions.unwrap_or(false),
        token: input.token,
        ..WebhookDraft::new(
            UNSAVED_NAME,
            input.url,
            input.object_type,
            input.object_name,
            input.event,
        )
    };
    // A throwaway secret: the test request is signed like any other, though nobody can know
    // this secret to verify it.
    let webhook = draft.into_new_webhook(generate_secret());
    check_webhook(&webhook, &state.settings().policy)?;
    let id = state.publisher().test(&project, &webhook, false).await?;
    state.metrics().test();
    Ok((StatusCode::CREATED, Json(TestOut::pending(id, None))))
}

/// A webhook test's id in a path: one that cannot be a delivery id names no test.
struct TestId(DeliveryId);

impl FromSegment for TestId {
    fn from_segment(value: String) -> Result<Self, ProducerError> {
        DeliveryId::parse(value.as_str())
            .map(TestId)
            .map_err(|_| test_not_found(&value))
    }
}

fn test_not_found(id: &str) -> ProducerError {
    ProducerError::NotFound(format!("webhook test {id:?} not found"))
}

async fn get_one(
    State(state): State<AppState>,
    ApiPath((project, TestId(id))): ApiPath<(ProjectName, TestId)>,
) -> Result<Json<TestOut>, ProducerError> {
    let view = state
        .queue()
        .delivery(&id)
        .await?
        .filter(|v| v.project == project && v.kind == DeliveryKind::Test)
        .ok_or_else(|| test_not_found(&id))?;
    Ok(Json(TestOut::from_view(view)))
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/webhooks-tests", post(create))
        .route("/projects/{project}/webhooks-tests/{id}", get(get_one))
}
