//! `/projects/{project}/tokens…`: per-project API tokens. Admins only (the global token or
//! a project admin token).
//!
//! The token is shown once, in the create answer; Redis holds only its SHA-256 hash, and
//! the list shows names, roles and creation times.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use hookrelay_core::ProjectName;
use hookrelay_core::time::Timestamp;
use hookrelay_core::token::{Role, TokenRecord, generate_token, hash_token};
use hookrelay_core::webhook::validate_name;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, ApiPath};
use crate::error::ProducerError;

/// Body of `POST /projects/{p}/tokens`.
#[derive(Debug, Deserialize)]
pub(super) struct TokenIn {
    name: String,
    role: String,
}

/// A token as listed: never the token itself.
#[derive(Debug, Serialize)]
pub(super) struct TokenOut {
    name: String,
    role: Role,
    created_at: Timestamp,
}

/// The create answer: the token, this once.
#[derive(Debug, Serialize)]
pub(super) struct TokenCreatedOut {
    #[serde(flatten)]
    info: TokenOut,
    token: String,
}

impl From<&TokenRecord> for TokenOut {
    fn from(r: &TokenRecord) -> Self {
        Self {
            name: r.name.clone(),
            role: r.role,
            created_at: r.created_at,
        }
    }
}

async fn create(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectName>,
    ApiJson(input): ApiJson<TokenIn>,
) -> Result<(StatusCode, Json<TokenCreatedOut>), ProducerError> {
    validate_name("name", &input.name)?;
    let role: Role = input.role.parse()?;
    let token = generate_token();
    let record = TokenRecord {
        name: input.name,
        role,
        created_at: Timestamp::now(),
        hash: hash_token(&token),
    };
    if !state.tokens().create(&project, &record).await? {
        return Err(ProducerError::Conflict(format!(
            "a token named {:?} already exists in project {project}",
            record.name
        )));
    }
    tracing::info!(project = %project, token = %record.name, role = %role, "project token created");
    Ok((
        StatusCode::CREATED,
        Json(TokenCreatedOut {
            info: TokenOut::from(&record),
            token,
        }),
    ))
}

async fn list(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectName>,
) -> Result<Json<Vec<TokenOut>>, ProducerError> {
    let records = state.tokens().list(&project).await?;
    Ok(Json(records.iter().map(TokenOut::from).collect()))
}

async fn remove(
    State(state): State<AppState>,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
) -> Result<StatusCode, ProducerError> {
    if state.tokens().delete(&project, &name).await? {
        tracing::info!(project = %project, token = %name, "project token deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ProducerError::NotFound(format!(
            "token {name:?} not found in project {project}"
        )))
    }
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/tokens", get(list).post(create))
        .route("/projects/{project}/tokens/{name}", delete(remove))
}
