//! The worker: apalis over the Redis backend, and the delivery attempt as explicit steps —
//! prepare (the job carries it) → send → classify → record → reschedule or finish.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use hookrelay_core::retry::RetryPolicy;
use hookrelay_core::time::now_ms;
use hookrelay_core::{DeliveryStatus, Job};
use hookrelay_queue::{Ack, BackendSettings, HeldJobs, Queue, RedisBackend, spawn_lease_keeper};

use crate::http::{AttemptOutcome, HttpDeliverer, HttpSettings};

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Deliveries in flight at once (`HOOKRELAY_CONCURRENCY`).
    pub concurrency: usize,
    /// After this, a delivery held by a worker that died is handed to another
    /// (`HOOKRELAY_RECOVERY_TIMEOUT_MS`); leases are renewed every third of it.
    pub recovery_timeout: Duration,
    /// The retry schedule.
    pub retry: RetryPolicy,
    /// Outbound HTTP.
    pub http: HttpSettings,
    /// How long a graceful stop may take before held jobs are left to their leases.
    pub shutdown_timeout: Duration,
}

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(String),
    /// apalis' monitor failed.
    #[error("worker runtime: {0}")]
    Runtime(String),
}

/// A unique name for this worker process: host, pid and a random suffix.
pub fn worker_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    let host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '.')
        .take(40)
        .collect();
    format!("{host}-{}-{:08x}", std::process::id(), rand_u32())
}

fn rand_u32() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// What each delivery handler shares.
struct Deliverer {
    queue: Queue,
    http: HttpDeliverer,
    retry: RetryPolicy,
    worker: String,
    held: HeldJobs,
}

impl Deliverer {
    /// One attempt of one job, from send to settle. Never fails: every outcome is recorded.
    async fn process(&self, job: Job) {
        // Whatever happens below (even a panic caught by apalis), the job stops being held by
        // this worker: its lease is no longer renewed, and another claim takes it back.
        let _held = HeldGuard {
            held: &self.held,
            id: &job.id,
        };
        let outcome = self.http.attempt(&job, &self.worker).await;
        let (status, next) = self.classify(&job, &outcome);
        let next_ref = next.as_ref().map(|(j, due)| (j, *due));
        let ack = Ack {
            worker: &self.worker,
            job: &job,
            attempt: &outcome.record,
            status,
            next: next_ref,
        };
        let mut failures = 0u32;
        loop {
            match self.queue.ack(&ack).await {
                Ok(settled) => {
                    if !settled {
                        tracing::warn!(delivery_id = %job.id, attempt = job.attempt, "lease was lost before the outcome was recorded; another worker may attempt this delivery again");
                    }
                    break;
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    if failures == 1 || failures.is_multiple_of(20) {
                        tracing::warn!(delivery_id = %job.id, error = %e, failures, "could not record the attempt; retrying");
                    }
                    let delay = Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)))
                        .min(Duration::from_secs(5));
                    tokio::time::sleep(delay).await;
                }
            }
        }
        let r = &outcome.record;
        match status {
            DeliveryStatus::Succeeded => {
                tracing::debug!(delivery_id = %job.id, webhook = job.webhook.as_deref().unwrap_or(""), attempt = job.attempt, status_code = r.status_code, duration_ms = r.duration_ms, "delivered")
            }
            DeliveryStatus::Retrying => {
                tracing::info!(delivery_id = %job.id, webhook = job.webhook.as_deref().unwrap_or(""), attempt = job.attempt, error = r.error.as_deref().unwrap_or(""), next_attempt_in_ms = next.as_ref().map(|(_, due)| due - now_ms()).unwrap_or(0), "attempt failed; retry scheduled")
            }
            _ => {
                tracing::warn!(delivery_id = %job.id, webhook = job.webhook.as_deref().unwrap_or(""), attempt = job.attempt, error = r.error.as_deref().unwrap_or(""), "delivery failed")
            }
        }
    }

    /// Success, a scheduled retry, or the end.
    fn classify(
        &self,
        job: &Job,
        outcome: &AttemptOutcome,
    ) -> (DeliveryStatus, Option<(Job, i64)>) {
        if outcome.success {
            return (DeliveryStatus::Succeeded, None);
        }
        if !job.retry {
            return (DeliveryStatus::Failed, None);
        }
        match self.retry.next_delay(job.attempt) {
            Some(delay) => {
                let delay = outcome.retry_after.map_or(delay, |ra| delay.max(ra));
                let next = Job {
                    attempt: job.attempt + 1,
                    ..job.clone()
                };
                let due = now_ms() + delay.as_millis() as i64;
                (DeliveryStatus::Retrying, Some((next, due)))
            }
            None => (DeliveryStatus::Failed, None),
        }
    }
}

/// Marks a job no longer held when dropped.
struct HeldGuard<'a> {
    held: &'a HeldJobs,
    id: &'a str,
}

impl Drop for HeldGuard<'_> {
    fn drop(&mut self) {
        self.held.remove(self.id);
    }
}

async fn deliver(
    job: Job,
    deliverer: Data<Arc<Deliverer>>,
) -> Result<(), std::convert::Infallible> {
    deliverer.process(job).await;
    Ok(())
}

/// Runs a worker until `shutdown` completes, then stops taking jobs, lets running deliveries
/// finish (up to `shutdown_timeout`), hands back the ones not started, and returns.
pub async fn run(
    queue: Queue,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let http =
        HttpDeliverer::new(settings.http.clone()).map_err(|e| WorkerError::Http(e.to_string()))?;
    let worker = worker_name();
    let held = HeldJobs::default();
    let lease = settings.recovery_timeout;
    let deliverer = Arc::new(Deliverer {
        queue: queue.clone(),
        http,
        retry: settings.retry.clone(),
        worker: worker.clone(),
        held: held.clone(),
    });
    let backend_settings = BackendSettings {
        concurrency: settings.concurrency.max(1),
        lease,
        idle_wait: (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
    };
    let keeper = spawn_lease_keeper(queue.clone(), worker.clone(), held.clone(), lease);
    tracing::info!(%worker, concurrency = backend_settings.concurrency, recovery_timeout_ms = lease.as_millis() as u64, "worker started");

    let name = worker.clone();
    let result = Monitor::new()
        .register(move |_restarts| {
            let backend = RedisBackend::new(
                queue.clone(),
                name.clone(),
                held.clone(),
                backend_settings.clone(),
            );
            WorkerBuilder::new(name.clone())
                .backend(backend)
                .catch_panic()
                .concurrency(backend_settings.concurrency)
                .data(deliverer.clone())
                .build(deliver)
        })
        .shutdown_timeout(settings.shutdown_timeout)
        .run_with_signal(async move {
            shutdown.await;
            Ok(())
        })
        .await;
    keeper.abort();
    tracing::info!(%worker, "worker stopped");
    result.map_err(|e| WorkerError::Runtime(e.to_string()))
}
