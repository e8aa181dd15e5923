//! `/projects/{project}/deliveries…`: delivery records with their attempts, the filtered
//! list (newest first), and redelivery of a finished delivery.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_core::ProjectName;
use hookrelay_core::delivery::ResponseRecord;
use hookrelay_core::time::Timestamp;
use hookrelay_core::{AttemptRecord, DeliveryId, DeliveryKind, DeliveryStatus};
use hookrelay_queue::DeliveryView;
use serde::Serialize;

use super::AppState;
use super::extract::{ApiPath, ApiQuery};
use crate::error::ProducerError;
use crate::publisher::delivery_not_found;

/// Deliveries listed when no `limit` is given.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Largest `limit`.
pub const MAX_LIST_LIMIT: usize = 1000;
/// A filtered list looks at most at this many of the newest deliveries, so that a filter
/// that matches nothing cannot make one request read a whole week of records.
pub const MAX_LIST_SCAN: usize = 10_000;
/// Records read per round trip while listing.
const LIST_PAGE: usize = 200;

/// A delivery as shown.
#[derive(Debug, Clone, Serialize)]
pub(super) struct DeliveryOut {
    id: DeliveryId,
    project: String,
    /// Null for a test of an unsaved webhook.
    webhook: Option<String>,
    event: String,
    event_id: Option<String>,
    kind: DeliveryKind,
    status: DeliveryStatus,
    /// Oldest first.
    attempts: Vec<AttemptRecord>,
    /// RFC 3339, while an attempt is due; null once the delivery has finished.
    next_attempt_at: Option<Timestamp>,
    created_at: Timestamp,
    updated_at: Timestamp,
    last_error: Option<String>,
    last_status_code: Option<u16>,
    /// What was kept of the last answer.
    response: Option<ResponseRecord>,
}

impl From<DeliveryView> for DeliveryOut {
    fn from(v: DeliveryView) -> Self {
        let queued = matches!(v.status, DeliveryStatus::Pending | DeliveryStatus::Retrying);
        // The last answer: kept in the record for tests, in the last attempt otherwise.
        let response = v
            .response
            .or_else(|| v.attempts.last().and_then(|a| a.response.clone()));
        Self {
            next_attempt_at: v
                .next_attempt_at_ms
                .filter(|_| queued)
                .map(Timestamp::from_ms),
            created_at: Timestamp::from_ms(v.created_at_ms),
            updated_at: Timestamp::from_ms(v.updated_at_ms),
            id: v.id,
            project: v.project,
            webhook: v.webhook,
            event: v.event,
            event_id: v.event_id,
            kind: v.kind,
            status: v.status,
            attempts: v.attempts,
            last_error: v.last_error,
            last_status_code: v.last_status_code,
            response,
        }
    }
}

/// Answer of a redelivery.
#[derive(Debug, Serialize)]
pub(super) struct RedeliverOut {
    id: DeliveryId,
    status: DeliveryStatus,
    /// The number of the attempt just queued.
    attempt: u32,
}

async fn get_one(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(ProjectName, DeliveryId)>,
) -> Result<Json<DeliveryOut>, ProducerError> {
    let view = state
        .queue()
        .delivery(&id)
        .await?
        .filter(|v| v.project == project)
        .ok_or_else(|| delivery_not_found(&id))?;
    Ok(Json(DeliveryOut::from(view)))
}

/// The list's filters, parsed from the query string.
struct ListFilter {
    webhook: Option<String>,
    status: Option<DeliveryStatus>,
    kind: Option<DeliveryKind>,
    limit: usize,
}

impl ListFilter {
    fn parse(query: &std::collections::HashMap<String, String>) -> Result<Self, ProducerError> {
        let non_empty = |name: &str| query.get(name).filter(|v| !v.is_empty());
        // `status`, `kind` and `limit`, when given, must hold a value (the API description
        // says which); only `webhook` treats an empty value as no filter.
        let status = query
            .get("status")
            .map(|s| {
                DeliveryStatus::parse(s).ok_or_else(|| one_of("status", DeliveryStatus::NAMES, s))
            })
            .transpose()?;
        let kind = query
            .get("kind")
            .map(|k| DeliveryKind::parse(k).ok_or_else(|| one_of("kind", DeliveryKind::NAMES, k)))
            .transpose()?;
        let limit = match query.get("limit") {
            None => DEFAULT_LIST_LIMIT,
            Some(l) => l
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_LIST_LIMIT).contains(n))
                .ok_or_else(|| {
                    ProducerError::field(
                        "limit",
                        format!("must be a whole number from 1 to {MAX_LIST_LIMIT}; got {l:?}"),
                    )
                })?,
        };
        Ok(Self {
            webhook: non_empty("webhook").cloned(),
            status,
            kind,
            limit,
        })
    }

    fn is_empty(&self) -> bool {
        self.webhook.is_none() && self.status.is_none() && self.kind.is_none()
    }

    fn accepts(&self, v: &DeliveryView) -> bool {
        self.webhook
            .as_deref()
            .is_none_or(|w| v.webhook.as_deref() == Some(w))
            && self.status.is_none_or(|s| v.status == s)
            && self.kind.is_none_or(|k| v.kind == k)
    }
}

async fn list(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectName>,
    ApiQuery(query): ApiQuery,
) -> Result<Json<Vec<DeliveryOut>>, ProducerError> {
    let filter = ListFilter::parse(&query)?;
    let page = if filter.is_empty() {
        filter.limit
    } else {
        LIST_PAGE.max(filter.limit)
    };
    let mut out = Vec::with_capacity(filter.limit.min(LIST_PAGE));
    let mut offset = 0;
    while out.len() < filter.limit && offset < MAX_LIST_SCAN {
        let ids = state.queue().delivery_ids(&project, offset, page).await?;
        if ids.is_empty() {
            break;
        }
        offset += ids.len();
        let done = ids.len() < page;
        // A record past its retention is gone while its index entry lingers: skip it.
        for view in state
            .queue()
            .deliveries_by_id(&ids)
            .await?
            .into_iter()
            .flatten()
        {
            if filter.accepts(&view) && out.len() < filter.limit {
                out.push(DeliveryOut::from(view));
            }
        }
        if done {
            break;
        }
    }
    Ok(Json(out))
}

async fn redeliver(
    State(state): State<AppState>,
    ApiPath((project, id)): ApiPath<(ProjectName, DeliveryId)>,
) -> Result<(StatusCode, Json<RedeliverOut>), ProducerError> {
    let attempt = state.publisher().redeliver(&project, &id).await?;
    state.metrics().redelivered(1);
    tracing::info!(project = %project, delivery_id = %id, attempt, "delivery queued again");
    Ok((
        StatusCode::ACCEPTED,
        Json(RedeliverOut {
            id,
            status: DeliveryStatus::Pending,
            attempt,
        }),
    ))
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/deliveries", get(list))
        .route("/projects/{project}/deliveries/{id}", get(get_one))
        .route(
            "/projects/{project}/deliveries/{id}/redeliver",
            post(redeliver),
        )
}

/// The error for a query parameter that is none of `names`.
fn one_of(field: &str, names: &[&str], got: &str) -> ProducerError {
    ProducerError::field(
        field,
        format!("must be one of {}; got {got:?}", names.join(", ")),
    )
}
