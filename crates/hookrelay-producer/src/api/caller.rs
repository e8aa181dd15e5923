//! `/projects/{project}/caller`: who the caller is in the project — the role of the token
//! and its name (none for the global admin token), so that a client such as the console
//! offers only what the caller may do. The token itself is never part of the answer.

use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::ProjectName;
use hookrelay_core::token::Role;
use serde::Serialize;

use super::AppState;
use super::auth::Caller;
use super::extract::ApiPath;
use crate::error::ProducerError;

#[derive(Debug, Serialize)]
struct CallerOut {
    project: ProjectName,
    role: Role,
    /// The project token's name; `None` for the global admin token.
    token: Option<String>,
}

async fn caller(
    ApiPath(project): ApiPath<ProjectName>,
    caller: Caller,
) -> Result<Json<CallerOut>, ProducerError> {
    let role = caller.role();
    let token = match caller {
        Caller::Global => None,
        Caller::Project { name, .. } => Some(name),
    };
    Ok(Json(CallerOut {
        project,
        role,
        token,
    }))
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/projects/{project}/caller", get(caller))
}
