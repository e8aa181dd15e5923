//! `POST /projects/{project}/webhooks/{name}/recover` and
//! `GET …/webhooks/{name}/recoveries/{id}`: requeue a webhook's failed deliveries since a
//! time. A recovery runs in the background, a page at a time, with its progress in Redis;
//! the POST answers when it is done, or after [`ANSWER_WITHIN`] with its progress so far.

use hookrelay_core::ProjectName;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use hookrelay_core::time::{Timestamp, now_ms};
use hookrelay_queue::RecoveryProgress;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, ApiPath};
use crate::error::ProducerError;
use crate::publisher::Recovery;

/// How long the POST waits for a recovery to finish before answering with its progress.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(2);
/// How often a running recovery writes its progress.
const SAVE_EVERY: Duration = Duration::from_millis(500);
/// A recovery still `running` whose progress is older than this was cut short (its process
/// stopped): it answers `interrupted`, and running the recovery again goes on from there.
const STALE_AFTER_MS: i64 = 30_000;

/// Body of `POST …/recover`.
#[derive(Debug, Deserialize)]
struct RecoverIn {
    since: String,
}

/// A recovery as shown.
#[derive(Debug, Serialize)]
struct RecoveryOut {
    id: String,
    webhook: String,
    /// `running`, `done`, `failed` or `interrupted`.
    state: String,
    since: Timestamp,
    /// Failed deliveries to look at, counted when it started.
    total: u64,
    scanned: u64,
    requeued: u64,
    skipped: u64,
    started_at: Timestamp,
    updated_at: Timestamp,
    error: Option<String>,
}

impl RecoveryOut {
    fn new(id: String, p: RecoveryProgress, now: i64) -> Self {
        let state = if p.state == "running" && now - p.updated_at_ms > STALE_AFTER_MS {
            "interrupted".to_owned()
        } else {
            p.state
        };
        Self {
            id,
            webhook: p.webhook,
            state,
            since: Timestamp::from_ms(p.since_ms),
            total: p.total,
            scanned: p.scanned,
            requeued: p.requeued,
            skipped: p.skipped,
            started_at: Timestamp::from_ms(p.started_at_ms),
            updated_at: Timestamp::from_ms(p.updated_at_ms),
            error: p.error,
        }
    }
}

async fn recover(
    State(state): State<AppState>,
    ApiPath((project, name)): ApiPath<(ProjectName, String)>,
    ApiJson(input): ApiJson<RecoverIn>,
) -> Result<(StatusCode, Json<RecoveryOut>), ProducerError> {
    let since = Timestamp::parse(&input.since)
        .map(Timestamp::as_ms)
        .ok_or_else(|| {
            ProducerError::field(
                "since",
                format!(
                    "must be an RFC 3339 time such as 2024-05-01T12:00:00Z, got {:?}",
                    input.since
                ),
            )
        })?;
    let recovery = state
        .publisher()
        .start_recovery(&project, &name, since)
        .await?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = now_ms();
    let mut progress = RecoveryProgress {
        project: project.into_string(),
        webhook: name,
        since_ms: since,
        state: "running".to_owned(),
        total: recovery.counts().total,
        started_at_ms: now,
        updated_at_ms: now,
        ..RecoveryProgress::default()
    };
    state.queue().save_recovery(&id, &progress).await?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (task_state, task_id, task_progress) = (state.clone(), id.clone(), progress.clone());
    tokio::spawn(async move {
        let done = run(&task_state, &task_id, recovery, task_progress).await;
        // The POST may have answered already.
        let _ = tx.send(done);
    });
    match tokio::time::timeout(ANSWER_WITHIN, rx).await {
        Ok(Ok(done)) => progress = done,
        _ => {
            if let Some(p) = state.queue().recovery(&id).await? {
                progress = p;
            }
        }
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(RecoveryOut::new(id, progress, now_ms())),
    ))
}

/// Runs a recovery to its end, writing its progress as it goes.
async fn run(
    state: &AppState,
    id: &str,
    mut recovery: Recovery,
    mut progress: RecoveryProgress,
) -> RecoveryProgress {
    let mut saved = Instant::now();
    while !recovery.is_done() {
        if let Err(e) = recovery.step().await {
            progress.state = "failed".to_owned();
            progress.error = Some(e.to_string());
            break;
        }
        if saved.elapsed() >= SAVE_EVERY {
            copy_counts(&recovery, &mut progress);
            if let Err(e) = state.queue().save_recovery(id, &progress).await {
                tracing::warn!(recovery = id, error = %e, "recovery progress not saved");
            }
            saved = Instant::now();
        }
    }
    if recovery.is_done() {
        progress.state = "done".to_owned();
    }
    copy_counts(&recovery, &mut progress);
    if let Err(e) = state.queue().save_recovery(id, &progress).await {
        tracing::warn!(recovery = id, error = %e, "recovery progress not saved");
    }
    state.metrics().redelivered(progress.requeued as usize);
    tracing::info!(
        recovery = id,
        project = %progress.project,
        webhook = %progress.webhook,
        state = %progress.state,
        requeued = progress.requeued,
        scanned = progress.scanned,
        "failed deliveries recovered"
    );
    progress
}

fn copy_counts(recovery: &Recovery, progress: &mut RecoveryProgress) {
    let c = recovery.counts();
    progress.scanned = c.scanned;
    progress.requeued = c.requeued;
    progress.skipped = c.skipped;
}

async fn get_one(
    State(state): State<AppState>,
    ApiPath((project, name, id)): ApiPath<(ProjectName, String, String)>,
) -> Result<Json<RecoveryOut>, ProducerError> {
    let not_found = || ProducerError::NotFound(format!("recovery {id:?} not found"));
    // Only ids this service could have made are looked up.
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(not_found());
    }
    match state.queue().recovery(&id).await? {
        Some(p) if p.project == project && p.webhook == name => {
            Ok(Json(RecoveryOut::new(id, p, now_ms())))
        }
        _ => Err(not_found()),
    }
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/projects/{project}/webhooks/{name}/recover", post(recover))
        .route(
            "/projects/{project}/webhooks/{name}/recoveries/{id}",
            get(get_one),
        )
}
