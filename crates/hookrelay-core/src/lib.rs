//! hookrelay's core: the types every other crate speaks, with no IO at all.
//!
//! Webhooks, events, queue jobs and delivery records; their validation; the Redis key
//! schema; the payload formats; Standard Webhooks signing; retry maths; the target policy.
//! Nothing here touches the network, Redis or the clock beyond `chrono::Utc::now()`.

pub mod activity;
pub mod defaults;
pub mod delivery;
pub mod endpoint;
pub mod error;
pub mod event;
pub mod formats;
pub mod job;
pub mod keys;
mod named_enum;
pub mod names;
pub mod retry;
pub mod signing;
pub mod target;
pub mod time;
pub mod token;
pub mod webhook;

pub use delivery::{AttemptRecord, DeliveryKind, DeliveryStatus};
pub use endpoint::{Health, HealthState, Verdict};
pub use error::FieldError;
pub use event::Event;
pub use job::{JOB_VERSION, Job};
pub use keys::Keys;
pub use names::{DeliveryId, EventId, ProjectName, WebhookName};
pub use webhook::{Format, Header, Webhook, WebhookDraft};

/// `User-Agent` of every delivered request.
pub const USER_AGENT: &str = concat!("hookrelay/", env!("CARGO_PKG_VERSION"));

/// Largest accepted webhook timeout, in seconds (UbiOps' maximum).
pub const MAX_TIMEOUT_SECS: u32 = 30;
/// Webhook timeout when none is given, in seconds (UbiOps' default).
pub const DEFAULT_TIMEOUT_SECS: u32 = 10;
