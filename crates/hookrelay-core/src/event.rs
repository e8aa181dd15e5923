//! A published event: what happened to which object, with its data. One event fans out into
//! one delivery per matching webhook.

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// An event as accepted by `POST /projects/{p}/events` or `hookrelay publish`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Event id: given by the publisher (idempotency key) or generated.
    pub id: String,
    /// Project the event belongs to.
    pub project: String,
    /// Event name, e.g. `deployment_request_finished`, `createRelease`, `MODEL_VERSION_CREATED`.
    pub event: String,
    /// Object type, e.g. `deployment`.
    pub object_type: String,
    /// Object name, e.g. `deployment-1`.
    pub object_name: String,
    /// Object version, if any.
    #[serde(default)]
    pub version: Option<String>,
    /// Event data.
    #[serde(default)]
    pub data: serde_json::Value,
    /// Result, sent only to webhooks with `include_result`.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// When it was published.
    pub created_at: Timestamp,
}
