//! hookrelay's durable Redis queue, and the apalis backend over it.
//!
//! Layout (see `hookrelay_core::keys` and the README's redis-cli guide):
//! - `queue:ready` LIST of job JSON, LPUSH in, RPOP out;
//! - `queue:scheduled` ZSET of job JSON scored by due time, promoted in bounded chunks;
//! - `queue:inflight` HASH id → job JSON, `queue:holders` HASH id → `<worker>#<attempt>` and
//!   `queue:leases` ZSET id → lease deadline: a claimed job stays in Redis until its outcome
//!   is recorded;
//! - `queue:dead` LIST of values that are not runnable jobs, with the reason.
//!
//! Every state change that touches more than one key is one Lua script, so a crash at any
//! point leaves each job in exactly one place.

mod backend;
mod error;
mod queue;
mod scripts;
mod tokens;

pub use backend::{BackendSettings, HeldJobs, RedisBackend, spawn_lease_keeper};
pub use error::QueueError;
pub use queue::{
    Ack, Claimed, ClaimedJob, DeliveryView, EnqueueOutcome, NewDelivery, Queue, QueueStats,
    RedeliverOutcome,
};
pub use tokens::TokenStore;
