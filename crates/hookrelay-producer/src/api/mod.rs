//! The REST API: `app(state)` builds the whole router.
//!
//! - `/v2.1/…` — the UbiOps-compatible webhook API and hookrelay's own endpoints, behind
//!   `Authorization: Token <t>` or `Bearer <t>`: the global admin token or a project token
//!   with a role (see [`auth`]);
//! - `/health` — no auth; 200 when Redis answers PING, 503 otherwise;
//! - `/metrics` — Prometheus text, no auth (scrapers rarely carry tokens; it shows counts
//!   only, never names, URLs or secrets);
//! - `/openapi.json` — the OpenAPI 3 description of the API, no auth;
//! - `/ui` — the web console (embedded assets; it asks for the token and sends it itself)
//!   and `/favicon.ico`.
//!
//! Every answer that is not a success is JSON `{"error": "…"}`.

pub mod auth;
mod caller;
mod deliveries;
mod error;
mod events;
pub mod extract;
mod recoveries;
mod stats;
mod tokens;
mod ui;
mod webhook_tests;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use bytes::Bytes;
use hookrelay_core::target::TargetPolicy;
use hookrelay_queue::{Queue, TokenStore};
use tower_http::trace::TraceLayer;

use crate::error::ProducerError;
use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::registry::Registry;

/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// A `/v2.1` request that has no answer after this long gets a 503: every handler only
/// talks to Redis, so a request this slow means Redis is not answering. The body has been
/// read before this starts.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// A request body that has not fully arrived this long after its headers gets a 408.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `/health` and `/metrics` wait for Redis.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

const OPENAPI: &str = include_str!("openapi.json");

/// What the API needs beyond the queue.
#[derive(Clone)]
pub struct ApiSettings {
    /// The API token (`HOOKRELAY_API_TOKEN`). Empty refuses every request to `/v2.1`.
    pub api_token: String,
    /// Largest request body in bytes; larger ones get a 413. Default 1 MiB.
    pub body_limit: usize,
    /// Which literal addresses webhook URLs may point at.
    pub policy: TargetPolicy,
}

impl ApiSettings {
    /// Settings with the given token, the default body limit and the default target policy.
    pub fn new(api_token: impl Into<String>) -> Self {
        Self {
            api_token: api_token.into(),
            body_limit: DEFAULT_BODY_LIMIT,
            policy: TargetPolicy::default(),
        }
    }
}

impl std::fmt::Debug for ApiSettings {
    // The token never appears in logs, not even in a debug dump of the settings.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiSettings")
            .field("api_token", &"<redacted>")
            .field("body_limit", &self.body_limit)
            .field("policy", &self.policy)
            .finish()
    }
}

/// The state every handler shares. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Queue,
    registry: Registry,
    publisher: Publisher,
    tokens: TokenStore,
    settings: ApiSettings,
    metrics: Metrics,
}

impl AppState {
    /// State over a connected queue; the registry and publisher share its connection.
    pub fn new(queue: Queue, settings: ApiSettings) -> Self {
        let registry = Registry::new(&queue);
        let publisher = Publisher::new(queue.clone(), registry.clone());
        let tokens = TokenStore::new(&queue);
        Self {
            inner: Arc::new(Inner {
                queue,
                registry,
                publisher,
                tokens,
                settings,
                metrics: Metrics::default(),
            }),
        }
    }

    /// The queue.
    pub fn queue(&self) -> &Queue {
        &self.inner.queue
    }

    /// The webhook registry.
    pub fn registry(&self) -> &Registry {
        &self.inner.registry
    }

    /// The publisher.
    pub fn publisher(&self) -> &Publisher {
        &self.inner.publisher
    }

    /// The project tokens.
    pub fn tokens(&self) -> &TokenStore {
        &self.inner.tokens
    }

    /// The settings.
    pub fn settings(&self) -> &ApiSettings {
        &self.inner.settings
    }

    /// This process's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }
}

/// The whole HTTP application: `/v2.1/…`, `/health`, `/metrics`, `/openapi.json`, `/ui`.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .merge(webhooks::router())
        .merge(webhook_tests::router())
        .merge(events::router())
        .merge(deliveries::router())
        .merge(tokens::router())
        .merge(stats::router())
        .merge(recoveries::router())
        .merge(caller::router())
        // Layers added later run first: the token and the caller's role are checked before
        // anything else; then the body is read, under its own timeout; only then does the
        // deadline for the handler (which waits only for Redis) start.
        .route_layer(from_fn(deadline))
        .route_layer(from_fn_with_state(state.clone(), read_body))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .nest("/v2.1", api)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(ui::router())
        .route("/", get(|| async { Redirect::temporary("/ui") }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings().body_limit))
        .layer(from_fn_with_state(state.clone(), count_responses))
        // The request line is logged without its query string: a client may put a secret
        // there (`?token=…`) even though it is never read from there.
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
        }))
        .with_state(state)
}

/// Reads the whole body before the handler runs: a `Content-Length` over the limit is a
/// 413 at once, without reading; a body that stalls is a 408 after [`BODY_READ_TIMEOUT`]
/// (a slow client, not a slow Redis).
async fn read_body(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limit = state.settings().body_limit;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return ProducerError::PayloadTooLarge(format!(
            "request body is larger than the limit of this server ({limit} bytes)"
        ))
        .into_response();
    }
    let (parts, body) = req.into_parts();
    let whole = Request::from_parts(parts.clone(), body);
    let bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, Bytes::from_request(whole, &())).await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(rejection)) => return extract::body_rejection(rejection).into_response(),
        Err(_) => {
            return ProducerError::RequestTimeout(format!(
                "the request body did not arrive within {} s",
                BODY_READ_TIMEOUT.as_secs()
            ))
            .into_response();
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Gives up on a request that Redis leaves unanswered, with a 503 rather than a hang.
async fn deadline(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_DEADLINE, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            ProducerError::Unavailable(format!("no answer within {} s", REQUEST_DEADLINE.as_secs()))
                .into_response()
        }
    }
}

async fn count_responses(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    state.metrics().response(response.status().as_u16());
    response
}

async fn health(State(state): State<AppState>) -> Response {
    let error = match tokio::time::timeout(PROBE_TIMEOUT, state.queue().ping()).await {
        Ok(Ok(())) => {
            return (
                StatusCode::OK,
                axum::Json(serde_json::json!({"status": "ok"})),
            )
                .into_response();
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no answer to PING within {} s", PROBE_TIMEOUT.as_secs()),
    };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "status": "unavailable",
            "error": format!("redis unavailable: {error}"),
        })),
    )
        .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    let stats = match tokio::time::timeout(PROBE_TIMEOUT, state.queue().stats()).await {
        Ok(Ok(stats)) => Some(stats),
        _ => None,
    };
    let endpoints = match stats {
        Some(_) => tokio::time::timeout(PROBE_TIMEOUT, state.queue().endpoints_by_state())
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let body = state.metrics().render_with_endpoints(stats, &endpoints);
    ([(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn not_found(req: Request) -> ProducerError {
    ProducerError::NotFound(format!(
        "no route for {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn method_not_allowed(req: Request) -> ProducerError {
    ProducerError::MethodNotAllowed(format!(
        "method {} is not allowed on {}",
        req.method(),
        req.uri().path()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openapi_is_json() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    }
}
