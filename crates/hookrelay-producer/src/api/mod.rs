//! The REST API: `app(state)` builds the whole router.
//!
//! - `/v2.1/…` — the UbiOps-compatible webhook API and hookrelay's own endpoints, behind
//!   `Authorization: Token <t>` or `Bearer <t>`;
//! - `/health` — no auth; 200 when Redis answers PING, 503 otherwise;
//! - `/metrics` — Prometheus text, no auth (scrapers rarely carry tokens; it shows counts
//!   only, never names, URLs or secrets);
//! - `/openapi.json` — the OpenAPI 3 description of the API, no auth;
//! - `/ui` — the web console (a static page; it asks for the token and sends it itself).
//!
//! Every answer that is not a success is JSON `{"error": "…"}`.

mod deliveries;
mod events;
pub mod extract;
mod webhook_tests;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use hookrelay_core::target::TargetPolicy;
use hookrelay_queue::Queue;
use subtle::ConstantTimeEq;
use tower_http::trace::TraceLayer;

use crate::error::ProducerError;
use crate::metrics::Metrics;
use crate::publisher::Publisher;
use crate::registry::Registry;

/// Default largest request body: 1 MiB.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;
/// A `/v2.1` request that has no answer after this long gets a 503: every handler only
/// talks to Redis, so a request this slow means Redis is not answering.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(10);
/// How long `/health` and `/metrics` wait for Redis.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

const OPENAPI: &str = include_str!("openapi.json");
const UI: &str = include_str!("ui.html");

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
    settings: ApiSettings,
    metrics: Metrics,
}

impl AppState {
    /// State over a connected queue; the registry and publisher share its connection.
    pub fn new(queue: Queue, settings: ApiSettings) -> Self {
        let registry = Registry::new(&queue);
        let publisher = Publisher::new(queue.clone(), registry.clone());
        Self {
            inner: Arc::new(Inner {
                queue,
                registry,
                publisher,
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
        // Layers added later run first: the token is checked before anything else, and
        // before the body is read.
        .route_layer(from_fn(deadline))
        .route_layer(from_fn_with_state(state.clone(), require_token));
    Router::new()
        .nest("/v2.1", api)
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/ui", get(ui))
        .route("/ui/", get(ui))
        .route("/", get(|| async { Redirect::temporary("/ui") }))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.settings().body_limit))
        .layer(from_fn_with_state(state.clone(), count_responses))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Checks `Authorization: Token <t>` / `Bearer <t>` in constant time. A wrong token is
/// logged without the token.
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let header = req.headers().get(header::AUTHORIZATION);
    match authorize(&state.settings().api_token, header) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            if header.is_some() {
                tracing::warn!(method = %req.method(), path = %req.uri().path(), "request refused: wrong API token or malformed Authorization header");
            }
            e.into_response()
        }
    }
}

fn authorize(expected: &str, header: Option<&HeaderValue>) -> Result<(), ProducerError> {
    const USAGE: &str = "send 'Authorization: Token <token>' or 'Authorization: Bearer <token>'";
    let Some(value) = header else {
        return Err(ProducerError::Unauthorized(format!(
            "missing Authorization header; {USAGE}"
        )));
    };
    let malformed =
        || ProducerError::Unauthorized(format!("malformed Authorization header; {USAGE}"));
    let value = value.to_str().map_err(|_| malformed())?;
    let (scheme, token) = value.trim().split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("token") && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed());
    }
    let token = token.trim();
    let matches: bool = token.as_bytes().ct_eq(expected.as_bytes()).into();
    if expected.is_empty() || !matches {
        return Err(ProducerError::Unauthorized("invalid API token".into()));
    }
    Ok(())
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

async fn ui() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; \
                 frame-ancestors 'none'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        UI,
    )
        .into_response()
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

/// Checks the `{project}` path segment.
fn check_project(project: &str) -> Result<(), ProducerError> {
    hookrelay_core::webhook::validate_name("project", project).map_err(ProducerError::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(expected: &str, header: Option<&str>, ok: bool) {
        let value = header.map(|h| HeaderValue::from_str(h).expect("header"));
        assert_eq!(
            authorize(expected, value.as_ref()).is_ok(),
            ok,
            "{header:?}"
        );
    }

    #[test]
    fn token_schemes() {
        check("s3cret", Some("Token s3cret"), true);
        check("s3cret", Some("Bearer s3cret"), true);
        check("s3cret", Some("bearer s3cret"), true);
        check("s3cret", Some("TOKEN  s3cret "), true);
        check("s3cret", Some("Basic s3cret"), false);
        check("s3cret", Some("s3cret"), false);
        check("s3cret", Some("Token s3cre"), false);
        check("s3cret", Some("Token s3cret2"), false);
        check("s3cret", None, false);
        check("", Some("Token "), false);
        check("", Some("Token x"), false);
    }

    #[test]
    fn openapi_is_json() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json parses");
        assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    }
}
