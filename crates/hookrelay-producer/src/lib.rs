//! hookrelay's producer side: the webhook registry in Redis, event fan-out into the queue,
//! and the REST API (axum) on top of both.
//!
//! - [`Registry`]: webhook CRUD (one Redis HASH per project);
//! - [`Publisher`]: validate an event, match webhooks, render bodies, enqueue one delivery
//!   per match; also webhook tests, redelivery and recovery. The API and
//!   `hookrelay publish` both use it;
//! - [`Producer`]: the thin facade for other Rust services: connect, `publish(event)` →
//!   delivery ids, look a delivery up (`cargo run -p hookrelay-producer --example publish`);
//! - [`app`]: the HTTP router, `/v2.1/…` plus `/health`, `/metrics`, `/openapi.json`, `/ui`;
//! - [`server::serve`]: the HTTP server under it, with timeouts and a connection cap.

pub mod api;
mod error;
mod metrics;
mod producer;
mod publisher;
mod registry;
pub mod server;

pub use api::{ApiSettings, AppState, DEFAULT_BODY_LIMIT, app};
pub use error::ProducerError;
pub use metrics::{CONTENT_TYPE as METRICS_CONTENT_TYPE, Metrics};
pub use producer::Producer;
pub use publisher::{EventIn, PublishAnswer, Published, Publisher};
pub use registry::{Registry, check_webhook};
