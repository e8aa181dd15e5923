//! A webhook's signing secret: who may set it, reading it, and rotating it with an overlap
//! during which the previous one still signs.

use axum::Json;
use axum::extract::State;
use hookrelay_core::signing::{generate_secret, validate_secret};
use hookrelay_core::time::{Timestamp, now_ms};
use hookrelay_core::webhook::{PreviousSecret, ROTATION_OVERLAP_MS};
use hookrelay_core::{FieldError, ProjectName};
use serde::Serialize;

use super::stored;
use crate::api::AppState;
use crate::api::auth::Caller;
use crate::api::extract::ApiPath;
use crate::error::ProducerError;

/// Only admins see or set signing secrets.
pub(super) fn check_may_set_secret(
    caller: &Caller,
    secret: Option<&String>,
) -> Result<(), ProducerError> {
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
pub(crate) struct SecretOut {
    signing_secret: String,
    /// When the previous secret stops signing, while it still does.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<Timestamp>,
}

pub(super) fn check_secret(secret: &str) -> Result<(), FieldError> {
    validate_secret(secret).map_err(|e| FieldError::new("signing_secret", e.message))
}

pub(super) async fn secret(
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
            .map(|p| Timestamp::from_ms(p.expires_at_ms)),
        signing_secret: webhook.signing_secret,
    }))
}

pub(super) async fn rotate(
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
            w.last_updated = Timestamp::from_ms(now);
            Ok(w)
        })
        .await?;
    tracing::info!(project = %project, webhook = %name, "signing secret rotated");
    Ok(Json(SecretOut {
        previous_secret_expires_at: updated
            .previous_secret
            .as_ref()
            .map(|p| Timestamp::from_ms(p.expires_at_ms)),
        signing_secret: updated.signing_secret,
    }))
}
