//! `/projects/{project}/stats`: the project's recent activity for dashboards (the console's
//! overview): deliveries per minute by outcome, publish → delivered latency, the depth of
//! its webhooks' queues and the workers alive.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use hookrelay_core::ProjectName;
use hookrelay_core::time::Timestamp;
use hookrelay_queue::Depth;
use serde::Serialize;

use super::AppState;
use super::extract::{ApiPath, ApiQuery};
use crate::error::ProducerError;

/// Minutes answered when `minutes` is not given.
const DEFAULT_MINUTES: u32 = 60;
/// Most minutes answered (what Redis keeps).
const MAX_MINUTES: u32 = 120;

#[derive(Debug, Serialize)]
struct StatsOut {
    /// One entry per minute, oldest first; the last is the current minute.
    minutes: Vec<MinuteOut>,
    latency_ms: LatencyOut,
    queue: Depth,
    workers: u64,
}

#[derive(Debug, Serialize)]
struct MinuteOut {
    minute: Timestamp,
    succeeded: u64,
    failed: u64,
    retried: u64,
}

#[derive(Debug, Serialize)]
struct LatencyOut {
    p50: Option<f64>,
    p99: Option<f64>,
}

async fn stats(
    State(state): State<AppState>,
    ApiPath(project): ApiPath<ProjectName>,
    ApiQuery(query): ApiQuery,
) -> Result<Json<StatsOut>, ProducerError> {
    let minutes = match query.get("minutes") {
        None => DEFAULT_MINUTES,
        Some(m) => m
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_MINUTES).contains(n))
            .ok_or_else(|| {
                ProducerError::field(
                    "minutes",
                    format!("must be a whole number from 1 to {MAX_MINUTES}; got {m:?}"),
                )
            })?,
    };
    let hooks = state.registry().list(&project).await?;
    let endpoints: Vec<&str> = hooks.iter().map(|w| w.id.as_str()).collect();
    let queue = state.queue();
    let (activity, depth, workers) = tokio::try_join!(
        queue.activity(&project, minutes),
        queue.depth(&endpoints),
        queue.workers_alive(),
    )?;
    let round = |v: Option<f64>| v.map(|ms| (ms * 100.0).round() / 100.0);
    Ok(Json(StatsOut {
        minutes: activity
            .minutes
            .into_iter()
            .map(|m| MinuteOut {
                minute: Timestamp::from_ms(m.minute_ms),
                succeeded: m.counts.succeeded,
                failed: m.counts.failed,
                retried: m.counts.retried,
            })
            .collect(),
        latency_ms: LatencyOut {
            p50: round(activity.p50_ms),
            p99: round(activity.p99_ms),
        },
        queue: depth,
        workers,
    }))
}

pub(super) fn router() -> Router<AppState> {
    Router::new().route("/projects/{project}/stats", get(stats))
}
