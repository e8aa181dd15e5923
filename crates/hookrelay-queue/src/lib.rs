//! hookrelay's durable Redis queue, and the apalis backend over it.
//!
//! Each endpoint (webhook) has a queue of its own; workers serve the endpoints that may be
//! served now in turn. Layout (see `hookrelay_core::keys::PartitionKeys` and the README's
//! Redis table), every key of a partition under its hash tag (`{q<n>}`):
//! - `ring` ZSET of endpoints with ready jobs that may be served now, by turn;
//! - `timers` ZSET of endpoints to look at again at a time (retry due, pause or cooldown
//!   over, rate-limit slot, lease deadline at the cap);
//! - per endpoint: `ep:<id>` HASH (settings and health), `ep:<id>:ready` LIST,
//!   `ep:<id>:scheduled` ZSET (retries by due time), `ep:<id>:leases` ZSET (in flight);
//! - `inflight` HASH id → job JSON, `holders` HASH id → `<worker>#<attempt>` and `leases`
//!   ZSET `<endpoint>|<id>` → deadline: a claimed job stays in Redis until its outcome is
//!   recorded;
//! - `dead` LIST of values that are not runnable jobs, with the reason; `outbox` LIST of
//!   notices of webhooks the queue disabled; `signal` LIST that wakes idle workers.
//!
//! Every state change that touches more than one key is one Lua script (with every key it
//! touches passed in `KEYS`), so a crash at any point leaves each job in exactly one place.

mod activity;
mod backend;
mod conn;
mod endpoints;
mod error;
mod migrate;
mod queue;
mod record;
mod recovery;
mod scripts;
mod tokens;
mod webhooks;

pub use activity::{Activity, ActivityMinute, Depth};
pub use backend::{BackendSettings, HeldJobs, RedisBackend, spawn_lease_keeper};
pub use conn::RedisConn;
pub use endpoints::{EndpointChange, EndpointConfig};
pub use error::QueueError;
pub use queue::{
    Ack, AckOutcome, Claimed, ClaimedJob, EnqueueOutcome, NewDelivery, PreparedAck, Queue,
    QueueStats, RedeliverOutcome,
};
pub use record::DeliveryView;
pub use recovery::{RECOVERY_RETENTION_SECS, RecoveryProgress};
pub use tokens::TokenStore;
pub use webhooks::{Replaced, StoredWebhooks};
