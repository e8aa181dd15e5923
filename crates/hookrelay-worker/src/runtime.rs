//! The worker: apalis over the Redis backend, and the delivery attempt as named steps —
//! claim (the backend) → prepare → send → judge → settle.
//!
//! - **prepare**: the job carries the request; a job whose webhook was deleted is not sent.
//! - **send**: one HTTP attempt (`http.rs`).
//! - **judge**: success, or what the failure means — for the delivery (retry later, or the
//!   end) and for its endpoint (a broken receiver, a rejection, a pause asked for with
//!   `Retry-After`, a `410 Gone`). A pause or a `410` defers the delivery without using up an
//!   attempt.
//! - **settle**: one ack script records the attempt and does all of it atomically. When no
//!   other endpoint is waiting for a turn, the same script hands the endpoint's next job to
//!   this handler, which runs it at once: a busy endpoint keeps its slots without a claim
//!   round trip per delivery, and fairness is left to the claim whenever others wait.
//!
//! Redis calls go through [`with_redis`]: a transient error (Redis restarting, unreachable,
//! busy) is retried with backoff, a permanent one is returned at once so the caller can
//! dead-letter the job and move on.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use apalis::prelude::{Data, Monitor, WorkerBuilder, WorkerBuilderExt};
use hookrelay_core::endpoint::{DisabledNotice, MAX_PAUSE, Verdict};
use hookrelay_core::retry::RetryPolicy;
use hookrelay_core::time::{Timestamp, now_ms};
use hookrelay_core::{AttemptRecord, DeliveryKind, DeliveryStatus, Job};
use hookrelay_queue::{
    Ack, AckOutcome, BackendSettings, HeldJobs, PreparedAck, Queue, QueueError, RedisBackend,
    spawn_lease_keeper,
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tracing::Instrument;

use crate::http::{AttemptOutcome, HttpDeliverer, HttpSettings};
use crate::metrics;

/// Announces that the queue disabled a webhook (the binary publishes the operational event
/// `hookrelay.webhook.disabled` and marks the stored webhook disabled). `Err` leaves the
/// notice to be announced again later.
pub type Announcer = Arc<
    dyn Fn(DisabledNotice) -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>>
        + Send
        + Sync,
>;

/// How a worker process runs.
#[derive(Clone)]
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
    /// Announces webhooks the queue disabled; none leaves the notices in Redis for a
    /// process that has one.
    pub announcer: Option<Announcer>,
}

impl std::fmt::Debug for WorkerSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerSettings")
            .field("concurrency", &self.concurrency)
            .field("recovery_timeout", &self.recovery_timeout)
            .field("shutdown_timeout", &self.shutdown_timeout)
            .finish_non_exhaustive()
    }
}

/// Why the worker could not run.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The HTTP client could not be built.
    #[error("http client: {0}")]
    Http(#[from] crate::http::HttpError),
    /// apalis' monitor failed.
    #[error("worker runtime: {0}")]
    Runtime(#[source] apalis::prelude::MonitorError),
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

/// Runs a Redis call until it succeeds or fails for good: transient errors are retried
/// with backoff (100 ms doubling to 5 s), logged on the first failure and every 20th.
pub async fn with_redis<T, F, Fut>(
    what: &str,
    delivery_id: &str,
    mut call: F,
) -> Result<T, QueueError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, QueueError>>,
{
    let mut failures = 0u32;
    loop {
        match call().await {
            Ok(v) => return Ok(v),
            Err(e) if e.is_transient() => {
                failures = failures.saturating_add(1);
                if failures == 1 || failures.is_multiple_of(20) {
                    tracing::warn!(delivery_id, error = %e, failures, "redis {what} failed; retrying");
                }
                let delay = Duration::from_millis(100u64.saturating_mul(1 << failures.min(6)))
                    .min(Duration::from_secs(5));
                tokio::time::sleep(delay).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// What an attempt means, for the delivery and for its endpoint.
#[derive(Debug)]
struct Judgement {
    status: DeliveryStatus,
    /// The next attempt and when it is due (ms).
    next: Option<(Job, i64)>,
    verdict: Option<Verdict>,
    /// The next attempt waits at the front of the endpoint's queue (a deferral).
    front: bool,
}

/// Most acks settled by one script call: about a millisecond of Redis's time, as long as a
/// claim of 64 jobs, so that a batch never holds Redis up for long.
const MAX_ACK_BATCH: usize = 32;
/// Ack script calls in flight at once.
const ACK_CALLS: usize = 2;

/// Where an ack's result goes: `None` asks its handler to settle it alone (the batch call
/// failed as a whole).
type AckReply = oneshot::Sender<Option<Result<AckOutcome, QueueError>>>;

/// Settles the acks of deliveries that finish at about the same time with one script call:
/// while a call is in flight (at most [`ACK_CALLS`]), the acks that come in wait and go
/// together in the next one. Each is settled exactly as a call of its own would settle it;
/// a quiet worker's ack goes alone and at once.
#[derive(Clone)]
struct Acks {
    tx: mpsc::UnboundedSender<(PreparedAck, AckReply)>,
}

impl Acks {
    /// Starts the task that makes the calls; it ends when every handle is dropped.
    fn spawn(queue: Queue) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::unbounded_channel::<(PreparedAck, AckReply)>();
        let task = tokio::spawn(async move {
            let calls = Arc::new(Semaphore::new(ACK_CALLS));
            let mut batch = Vec::with_capacity(MAX_ACK_BATCH);
            loop {
                let Ok(permit) = calls.clone().acquire_owned().await else {
                    break;
                };
                if rx.recv_many(&mut batch, MAX_ACK_BATCH).await == 0 {
                    break;
                }
                let acks = std::mem::replace(&mut batch, Vec::with_capacity(MAX_ACK_BATCH));
                let queue = queue.clone();
                tokio::spawn(async move {
                    settle_batch(&queue, acks).await;
                    drop(permit);
                });
            }
        });
        (Self { tx }, task)
    }

    /// Settles one ack with others. `None` when it has to be settled alone: the batch call
    /// failed as a whole (Redis unreachable, say), or the batching task is gone.
    async fn ack(&self, prepared: PreparedAck) -> Option<Result<AckOutcome, QueueError>> {
        let (tx, rx) = oneshot::channel();
        self.tx.send((prepared, tx)).ok()?;
        rx.await.ok().flatten()
    }
}

/// One script call per partition for the acks of `acks`, in the order they came.
async fn settle_batch(queue: &Queue, acks: Vec<(PreparedAck, AckReply)>) {
    let mut groups: Vec<(Vec<PreparedAck>, Vec<AckReply>)> = Vec::with_capacity(1);
    for (prepared, reply) in acks {
        let p = prepared.partition;
        match groups
            .iter_mut()
            .find(|(g, _)| g.first().is_some_and(|a| a.partition == p))
        {
            Some((g, replies)) => {
                g.push(prepared);
                replies.push(reply);
            }
            None => groups.push((vec![prepared], vec![reply])),
        }
    }
    for (prepared, replies) in groups {
        match queue.ack_many(&prepared).await {
            Ok(results) => {
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(Some(result));
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, acks = prepared.len(), "batched ack call failed; each ack is settled alone");
                for reply in replies {
                    let _ = reply.send(None);
                }
            }
        }
    }
}

/// What each delivery handler shares.
struct Deliverer {
    queue: Queue,
    acks: Acks,
    http: HttpDeliverer,
    retry: RetryPolicy,
    worker: String,
    held: HeldJobs,
    lease: Duration,
    /// Set when the worker is stopping: handlers no longer take the next job.
    stopping: Arc<AtomicBool>,
}

impl Deliverer {
    /// Runs a job, then the next ones its acks hand over, until an ack hands none.
    async fn process(&self, job: Job) {
        let mut next = Some(job);
        while let Some(job) = next.take() {
            next = self.process_one(job).await;
        }
    }

    /// One attempt of one job, from prepare to settle. Never fails: every outcome is
    /// recorded, or the job is dead-lettered when recording it fails for good. Returns the
    /// endpoint's next job when the ack handed one over.
    async fn process_one(&self, job: Job) -> Option<Job> {
        let span = tracing::info_span!("delivery", delivery_id = %job.id, project = %job.project, webhook = job.webhook.as_deref().unwrap_or(""), attempt = job.attempt);
        async {
            // Whatever happens below (even a panic caught by apalis), the job stops being
            // held by this worker: its lease is no longer renewed, and another claim takes
            // it back.
            let _held = HeldGuard {
                held: &self.held,
                id: &job.id,
            };
            let outcome = match self.prepare(&job) {
                Some(ended) => ended,
                None => self.send(&job).await,
            };
            let judgement = self.judge(&job, &outcome);
            let next = self.settle(&job, &outcome, &judgement).await;
            log_outcome(&job, &outcome, &judgement);
            record_metrics(&job, &outcome, &judgement);
            next
        }
        .instrument(span)
        .await
    }

    /// prepare: the job carries its request; a job whose webhook was deleted is not sent,
    /// and ends with that reason.
    fn prepare(&self, job: &Job) -> Option<AttemptOutcome> {
        if !self.held.webhook_deleted(&job.id) {
            return None;
        }
        Some(AttemptOutcome {
            record: AttemptRecord {
                attempt: job.attempt,
                started_at: Timestamp::now(),
                duration_ms: 0,
                status_code: None,
                error: Some("webhook deleted; not sent".into()),
                response: None,
                worker: Some(self.worker.clone()),
            },
            success: false,
            retry_after: None,
        })
    }

    /// send: one HTTP attempt.
    async fn send(&self, job: &Job) -> AttemptOutcome {
        self.http.attempt(job, &self.worker).await
    }

    /// judge: success, a retry, a deferral, or the end; and what it says of the endpoint.
    fn judge(&self, job: &Job, outcome: &AttemptOutcome) -> Judgement {
        if outcome.success {
            return Judgement {
                status: DeliveryStatus::Succeeded,
                next: None,
                verdict: Some(Verdict::Success),
                front: false,
            };
        }
        let code = outcome.record.status_code;
        // A webhook test is one attempt, whatever the answer: it is never deferred.
        let deferral = match (code, outcome.retry_after) {
            _ if job.kind == DeliveryKind::Test => None,
            (Some(410), _) => Some(Verdict::Gone),
            (Some(429 | 503), Some(wait)) => Some(Verdict::Pause(wait.min(MAX_PAUSE))),
            _ => None,
        };
        if let Some(verdict) = deferral.filter(|_| !self.held.webhook_deleted(&job.id)) {
            // The receiver asked to wait, or is gone: the delivery waits at the front of its
            // endpoint's queue, and this attempt does not count against its budget.
            let next = Job {
                attempt: job.attempt + 1,
                deferred: job.deferred + 1,
                ..job.clone()
            };
            let due = match verdict {
                Verdict::Pause(d) => now_ms() + d.as_millis() as i64,
                _ => now_ms(),
            };
            return Judgement {
                status: DeliveryStatus::Retrying,
                next: Some((next, due)),
                verdict: Some(verdict),
                front: true,
            };
        }
        let verdict = match code {
            None => Verdict::Broken,
            Some(c) if c >= 500 => Verdict::Broken,
            Some(_) => Verdict::Rejected,
        };
        let next = job
            .retry
            .then(|| self.retry.next_delay(job.counted_attempt()))
            .flatten()
            .map(|delay| {
                let delay = outcome.retry_after.map_or(delay, |ra| delay.max(ra));
                let next = Job {
                    attempt: job.attempt + 1,
                    ..job.clone()
                };
                (next, now_ms() + delay.as_millis() as i64)
            });
        Judgement {
            status: if next.is_some() {
                DeliveryStatus::Retrying
            } else {
                DeliveryStatus::Failed
            },
            next,
            verdict: Some(verdict),
            front: false,
        }
    }

    /// settle: record the attempt and apply the judgement in one ack script, which may hand
    /// over the endpoint's next job. A permanent Redis error dead-letters the job, so
    /// nothing loops forever on it.
    async fn settle(
        &self,
        job: &Job,
        outcome: &AttemptOutcome,
        judgement: &Judgement,
    ) -> Option<Job> {
        let take_next = (!self.stopping.load(Ordering::Relaxed)).then_some(self.lease);
        let ack = Ack {
            worker: &self.worker,
            job,
            attempt: &outcome.record,
            status: judgement.status,
            next: judgement.next.as_ref().map(|(j, due)| (j, *due)),
            verdict: judgement.verdict,
            requeue_front: judgement.front,
            take_next,
        };
        let batched = match self.queue.prepare_ack(&ack) {
            Ok(prepared) => self.acks.ack(prepared).await,
            Err(_) => None,
        };
        let result = match batched {
            Some(result) => result,
            // Alone, as the batch would have done, retried while Redis is unreachable; an
            // ack that cannot even be built fails here the same way.
            None => with_redis("ack", &job.id, || self.queue.ack(&ack)).await,
        };
        match result {
            Ok(done) => {
                if !done.settled {
                    tracing::warn!(
                        "lease was lost before the outcome was recorded; another worker may attempt this delivery again"
                    );
                }
                if let Some(reason) = done.dead {
                    tracing::error!(%reason, "a value in an endpoint queue is not a job; moved to the dead list");
                }
                let claimed = done.next?;
                match self.held.accept(&claimed) {
                    Ok(next) => return Some(next),
                    Err(reason) => {
                        tracing::error!(next_delivery_id = %claimed.id, %reason, "job cannot be run by this build; moved to the dead list");
                        let dead = with_redis("dead-letter", &claimed.id, || {
                            self.queue
                                .dead_letter_claimed(&self.worker, &claimed, &reason)
                        })
                        .await;
                        if let Err(e) = dead {
                            tracing::error!(error = %e, "dead-lettering failed; the job's lease will expire and another worker takes it");
                        }
                    }
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "recording the outcome failed for good; moving the job to the dead list");
                let reason = format!("its outcome could not be recorded: {e}");
                let dead = with_redis("dead-letter", &job.id, || {
                    self.queue
                        .dead_letter(&self.worker, &job.id, &job.endpoint, &reason)
                })
                .await;
                if let Err(e) = dead {
                    tracing::error!(error = %e, "dead-lettering failed too; the job's lease will expire and another worker takes it");
                }
            }
        }
        None
    }
}

fn log_outcome(job: &Job, outcome: &AttemptOutcome, judgement: &Judgement) {
    let r = &outcome.record;
    let error = r.error.as_deref().unwrap_or("");
    match (judgement.status, judgement.verdict) {
        (DeliveryStatus::Succeeded, _) => {
            tracing::debug!(
                status_code = r.status_code,
                duration_ms = r.duration_ms,
                "delivered"
            )
        }
        (DeliveryStatus::Retrying, Some(Verdict::Pause(d))) => {
            tracing::info!(
                error,
                pause_ms = d.as_millis() as u64,
                "receiver asked to wait; endpoint paused, delivery deferred"
            )
        }
        (DeliveryStatus::Retrying, Some(Verdict::Gone)) => {
            tracing::warn!(
                "receiver answered 410 Gone; webhook disabled, delivery kept until it is enabled again"
            )
        }
        (DeliveryStatus::Retrying, _) => {
            let due = judgement.next.as_ref().map_or(0, |(_, due)| due - now_ms());
            tracing::info!(
                error,
                next_attempt_in_ms = due,
                "attempt failed; retry scheduled"
            )
        }
        _ => tracing::warn!(error, endpoint = %job.endpoint, "delivery failed"),
    }
}

/// Counts the attempt and, when it ended the delivery, how.
fn record_metrics(job: &Job, outcome: &AttemptOutcome, judgement: &Judgement) {
    let format = job.request.format.as_str();
    metrics::attempt_made(format, outcome.success);
    if outcome.record.status_code.is_some() {
        metrics::response_time(format, Duration::from_millis(outcome.record.duration_ms));
    }
    match (judgement.status, judgement.verdict) {
        (DeliveryStatus::Succeeded, _) => {
            metrics::delivery_finished(format, metrics::Outcome::Succeeded);
            if job.created_at_ms > 0 {
                let since = now_ms().saturating_sub(job.created_at_ms).max(0);
                metrics::delivered_after(Duration::from_millis(since as u64));
            }
        }
        (DeliveryStatus::Retrying, Some(Verdict::Pause(_) | Verdict::Gone)) => {
            metrics::deferred(metrics::DeferCause::Paused)
        }
        (DeliveryStatus::Retrying, _) => metrics::retry_scheduled(format),
        _ => metrics::delivery_finished(format, metrics::Outcome::Failed),
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

/// Announces the queue's notices of disabled webhooks until aborted: each is passed to the
/// announcer and removed only once announced, so a crash announces it again (the announcer
/// publishes with an idempotent event id).
fn spawn_announcer(queue: Queue, announcer: Announcer) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            loop {
                let (raw, notice) = match queue.next_notice().await {
                    Ok(Some(n)) => n,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "could not read disabled-webhook notices");
                        break;
                    }
                };
                let (project, webhook) = (notice.project.clone(), notice.webhook.clone());
                match announcer(notice).await {
                    Ok(()) => {
                        tracing::warn!(
                            project,
                            webhook,
                            "webhook disabled by the queue; operational event published"
                        );
                        if let Err(e) = queue.notice_done(&raw).await {
                            tracing::warn!(error = %e, "could not remove an announced notice; it will be announced again (idempotently)");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(project, webhook, error = %e, "could not announce a disabled webhook; trying again");
                        break;
                    }
                }
            }
        }
    })
}

/// apalis' handler. apalis polls every delivery in flight inside one future, on the thread
/// that drives the worker; so each delivery runs as a task of its own, which the runtime
/// spreads over all its threads, and the handler only waits for it. A panic inside is
/// raised again here, where apalis catches it; when apalis drops the handler (a shutdown
/// that outlasted its timeout), the task is aborted with it, as the delivery itself was
/// dropped before.
async fn deliver(
    job: Job,
    deliverer: Data<Arc<Deliverer>>,
) -> Result<(), std::convert::Infallible> {
    let deliverer = Arc::clone(&deliverer);
    let mut task = AbortOnDrop(tokio::spawn(async move { deliverer.process(job).await }));
    if let Err(e) = (&mut task.0).await
        && e.is_panic()
    {
        std::panic::resume_unwind(e.into_panic());
    }
    Ok(())
}

/// Aborts a task when its handle is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs a worker until `shutdown` completes, then stops taking jobs, lets running deliveries
/// finish (up to `shutdown_timeout`), hands back the ones not started, and returns.
pub async fn run(
    queue: Queue,
    settings: WorkerSettings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), WorkerError> {
    let http = HttpDeliverer::new(settings.http.clone())?;
    let worker = worker_name();
    let held = HeldJobs::default();
    let lease = settings.recovery_timeout;
    let stopping = Arc::new(AtomicBool::new(false));
    let (acks, ack_task) = Acks::spawn(queue.clone());
    let deliverer = Arc::new(Deliverer {
        queue: queue.clone(),
        acks,
        http,
        retry: settings.retry.clone(),
        worker: worker.clone(),
        held: held.clone(),
        lease,
        stopping: stopping.clone(),
    });
    let backend_settings = BackendSettings {
        concurrency: settings.concurrency.max(1),
        lease,
        idle_wait: (lease / 4).clamp(Duration::from_millis(100), Duration::from_secs(1)),
        legacy_check: Duration::from_secs(5),
    };
    let keeper = spawn_lease_keeper(queue.clone(), worker.clone(), held.clone(), lease);
    let announcer = settings
        .announcer
        .clone()
        .map(|a| spawn_announcer(queue.clone(), a));
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
            stopping.store(true, Ordering::Relaxed);
            Ok(())
        })
        .await;
    keeper.abort();
    ack_task.abort();
    if let Some(a) = announcer {
        a.abort();
    }
    tracing::info!(%worker, "worker stopped");
    result.map_err(WorkerError::Runtime)
}
