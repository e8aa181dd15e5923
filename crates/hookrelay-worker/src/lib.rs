//! hookrelay's delivery worker: apalis over the Redis backend, one reqwest client for every
//! attempt, and the steps of an attempt — send, classify, record, reschedule or finish.

pub mod http;
pub mod metrics;
mod runtime;

pub use runtime::{Announcer, WorkerError, WorkerSettings, run, with_redis, worker_name};
