//! `POST /projects/{project}/events`: publish an event. 202 once its deliveries are in
//! Redis; nothing else is awaited.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use hookrelay_core::ProjectName;

use super::AppState;
use super::extract::{ApiJson, ApiPath};
use crate::error::ProducerError;
use crate::publisher::{EventIn, PublishAnswer};

async fn publish(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectName>,
    ApiJson(input): ApiJson<EventIn>,
) -> Result<(StatusCode, Json<PublishAnswer>), ProducerError> {
    let published = state.publisher().publish_detailed(&project, input).await?;
    if published.duplicate {
        state.metrics().duplicate();
    } else {
        state.metrics().published(published.answer.deliveries.len());
    }
    Ok((StatusCode::ACCEPTED, Json(published.answer)))
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/projects/{project}/events", post(publish))
}
