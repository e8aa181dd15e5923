//! The apalis backend over [`Queue`]: a worker's stream of claimed jobs.
//!
//! - Jobs are claimed in batches sized to the worker's free slots, each under a lease.
//! - An idle worker blocks on `BLMOVE signal signal` (which moves nothing: it only returns
//!   when the signal list has its element, which is there while any endpoint has work), so
//!   an enqueue wakes it within milliseconds; the block ends at the next timer the claim
//!   reported (a due retry, a pause's end) and at most every `idle_wait`. With several
//!   partitions there is one signal list each, and no command blocks on many lists that
//!   live on different nodes: the worker subscribes to the signal channels instead (the
//!   scripts publish when a partition's ring gets its first endpoint), and waits for a
//!   message or the same deadline.
//! - A Redis error never ends the stream: it is logged, and the stream backs off and
//!   carries on, so the worker survives Redis restarts.
//! - Values that decode in Lua but are not jobs this build can run go to the dead list.
//! - At shutdown, jobs claimed but not started are handed back.
//!
//! Leases of held jobs are renewed by [`spawn_lease_keeper`] while the worker lives, so a
//! busy worker is never mistaken for a dead one, whatever its handlers are doing.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use apalis_core::backend::finalize::Ephemeral;
use apalis_core::backend::{Backend, BackendConfig};
use apalis_core::task::Task;
use apalis_core::task::task_id::RandomId;
use apalis_core::worker::context::WorkerContext;
use futures::Stream;
use futures::StreamExt;
use futures::stream::BoxStream;
use hookrelay_core::Job;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tower_layer::Identity;

use crate::conn::RedisConn;
use crate::error::QueueError;
use crate::queue::{ClaimedJob, Queue};

/// Most jobs taken by one claim.
const MAX_CLAIM: usize = 256;

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    endpoint: String,
    deleted: bool,
}

/// The jobs a worker holds: claimed and not yet settled, running or waiting to start, each
/// with its endpoint.
#[derive(Debug, Clone, Default)]
pub struct HeldJobs(Arc<Mutex<HashMap<String, Held>>>);

impl HeldJobs {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// How many jobs are held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Marks a job held; `deleted` when its webhook was deleted (the job only ends).
    pub fn insert(&self, id: &str, endpoint: &str, deleted: bool) {
        self.lock().insert(
            id.to_owned(),
            Held {
                endpoint: endpoint.to_owned(),
                deleted,
            },
        );
    }

    /// Takes a claimed job on: decodes it and marks it held. `Err` with the reason when this
    /// build cannot run it (bytes that are not UTF-8 JSON, an unknown version, missing
    /// fields, an id that does not read the same in Lua and in Rust, an id that names another
    /// partition than the one it waits in): the caller moves it to the dead list.
    pub fn accept(&self, claimed: &ClaimedJob) -> Result<Job, String> {
        match Job::decode(&claimed.raw) {
            Ok(job) if *job.id != *claimed.id => Err(format!(
                "ambiguous id: read as {:?} by the queue and {:?} by the worker",
                claimed.id, job.id
            )),
            Ok(_) if claimed.misplaced.is_some() => {
                Err(claimed.misplaced.clone().unwrap_or_default())
            }
            Ok(mut job) => {
                job.endpoint.clone_from(&claimed.endpoint);
                self.insert(&job.id, &claimed.endpoint, claimed.deleted);
                Ok(job)
            }
            Err(e) => Err(e.to_string()),
        }
    }

    /// Marks a job settled.
    pub fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Whether the held job's webhook was deleted when it was claimed.
    pub fn webhook_deleted(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|h| h.deleted)
    }

    /// The held jobs as `(delivery id, endpoint)` pairs.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|(id, h)| (id.clone(), h.endpoint.clone()))
            .collect()
    }
}

/// How a worker's backend claims and waits.
#[derive(Debug, Clone)]
pub struct BackendSettings {
    /// Deliveries in flight at once (the worker's concurrency).
    pub concurrency: usize,
    /// Lease of a claimed job; renewed every third of it while held.
    pub lease: Duration,
    /// Longest idle block before timers and expired leases are looked at again.
    pub idle_wait: Duration,
    /// How often to look for jobs of the old queue layout while any remain.
    pub legacy_check: Duration,
}

/// The apalis backend of one worker.
pub struct RedisBackend {
    queue: Queue,
    worker: String,
    held: HeldJobs,
    buffer: Arc<Mutex<VecDeque<Job>>>,
    settings: BackendSettings,
    stream: Option<BoxStream<'static, Result<Task<Job>, QueueError>>>,
    closing: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    closed: bool,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("worker", &self.worker)
            .field("settings", &self.settings)
            .finish()
    }
}

impl RedisBackend {
    /// A backend for `worker` (a name unique among live workers) that records what it holds
    /// in `held`.
    pub fn new(queue: Queue, worker: String, held: HeldJobs, settings: BackendSettings) -> Self {
        Self {
            queue,
            worker,
            held,
            buffer: Arc::new(Mutex::new(VecDeque::new())),
            settings,
            stream: None,
            closing: None,
            closed: false,
        }
    }
}

struct Fetcher {
    queue: Queue,
    worker: String,
    held: HeldJobs,
    buffer: Arc<Mutex<VecDeque<Job>>>,
    settings: BackendSettings,
    waiter: Option<RedisConn>,
    wakeups: Option<Wakeups>,
    failures: u32,
    legacy_at: Option<tokio::time::Instant>,
}

fn lock_buffer(buffer: &Mutex<VecDeque<Job>>) -> MutexGuard<'_, VecDeque<Job>> {
    buffer.lock().unwrap_or_else(|p| p.into_inner())
}

impl Fetcher {
    async fn next_job(&mut self) -> Job {
        loop {
            if let Some(job) = lock_buffer(&self.buffer).pop_front() {
                return job;
            }
            self.migrate_legacy().await;
            let free = self
                .settings
                .concurrency
                .saturating_sub(self.held.len())
                .clamp(1, MAX_CLAIM);
            match self
                .queue
                .claim(&self.worker, free, self.settings.lease)
                .await
            {
                Ok(claimed) => {
                    if self.failures > 0 {
                        tracing::info!(worker = %self.worker, "redis is reachable again; claiming resumes");
                    }
                    self.failures = 0;
                    for reason in &claimed.dead {
                        tracing::error!(worker = %self.worker, %reason, "a value in an endpoint queue is not a job; moved to the dead list");
                    }
                    if claimed.recovered > 0 {
                        tracing::warn!(worker = %self.worker, recovered = claimed.recovered, "handed back jobs whose worker stopped renewing its lease");
                    }
                    let got_any = !claimed.jobs.is_empty() || !claimed.dead.is_empty();
                    for c in claimed.jobs {
                        self.take(c).await;
                    }
                    if !got_any {
                        let wait = claimed
                            .next_due
                            .map_or(self.settings.idle_wait, |d| d.min(self.settings.idle_wait))
                            .max(Duration::from_millis(2));
                        if claimed.ring > 0 {
                            // Another worker took what this claim saw: look again shortly.
                            tokio::time::sleep(wait.min(Duration::from_millis(10))).await;
                        } else {
                            self.wait_for_work(wait).await;
                        }
                    }
                }
                Err(e) => self.back_off("claim", &e).await,
            }
        }
    }

    /// Moves what the old queue layout still holds, at start and then every
    /// `legacy_check` while anything was found.
    async fn migrate_legacy(&mut self) {
        let now = tokio::time::Instant::now();
        if self.legacy_at.is_some_and(|at| now < at) {
            return;
        }
        self.legacy_at = Some(now + self.settings.legacy_check);
        if let Err(e) = self.queue.age_legacy_failed().await {
            tracing::debug!(worker = %self.worker, error = %e, "could not set the old failed index's expiry");
        }
        match self.queue.has_legacy().await {
            Ok(false) => {}
            Ok(true) => match self.queue.migrate_legacy().await {
                Ok(0) => {}
                Ok(moved) => {
                    tracing::info!(worker = %self.worker, moved, "moved jobs of the old queue layout into endpoint queues")
                }
                Err(e) => {
                    tracing::warn!(worker = %self.worker, error = %e, "moving jobs of the old queue layout failed; trying again later")
                }
            },
            Err(e) => {
                tracing::debug!(worker = %self.worker, error = %e, "could not look for the old queue layout")
            }
        }
    }

    /// Buffers a claimed job, or moves it to the dead list when this build cannot run it
    /// (bytes that are not UTF-8 JSON, an unknown version, missing fields, an id that does
    /// not read the same in Lua and in Rust, an id that names another partition).
    async fn take(&mut self, claimed: ClaimedJob) {
        let reason = match self.held.accept(&claimed) {
            Ok(job) => {
                lock_buffer(&self.buffer).push_back(job);
                return;
            }
            Err(reason) => reason,
        };
        tracing::error!(worker = %self.worker, delivery_id = %claimed.id, %reason, "job cannot be run by this build; moved to the dead list");
        loop {
            match self
                .queue
                .dead_letter_claimed(&self.worker, &claimed, &reason)
                .await
            {
                Ok(true) => break,
                Ok(false) => {
                    tracing::warn!(worker = %self.worker, delivery_id = %claimed.id, "job to dead-letter is no longer held by this worker");
                    break;
                }
                Err(e) => self.back_off("dead-letter", &e).await,
            }
        }
    }

    /// Blocks until an endpoint has work or `wait` passes.
    async fn wait_for_work(&mut self, wait: Duration) {
        if self.queue.partitions_walked() > 1 {
            let wakeups = self
                .wakeups
                .get_or_insert_with(|| Wakeups::spawn(&self.queue, &self.worker));
            let _ = tokio::time::timeout(wait, wakeups.notify.notified()).await;
            return;
        }
        if self.waiter.is_none() {
            match self
                .queue
                .dedicated_connection(self.settings.idle_wait + Duration::from_secs(5))
                .await
            {
                Ok(c) => self.waiter = Some(c),
                Err(e) => {
                    self.back_off("connect", &e).await;
                    return;
                }
            }
        }
        let Some(conn) = self.waiter.as_mut() else {
            return;
        };
        if let Err(e) = self.queue.wait_for_work(conn, wait).await {
            self.back_off("wait", &e).await;
        }
    }

    async fn back_off(&mut self, what: &str, e: &QueueError) {
        self.failures = self.failures.saturating_add(1);
        let delay = Duration::from_millis(100u64.saturating_mul(1 << self.failures.min(6)))
            .min(Duration::from_secs(5));
        if self.failures == 1 || self.failures.is_multiple_of(20) {
            tracing::warn!(worker = %self.worker, error = %e, failures = self.failures, retry_in_ms = delay.as_millis() as u64, "redis {what} failed; retrying");
        }
        tokio::time::sleep(delay).await;
    }
}

/// A subscription to every partition's signal channel, kept by a task of its own, that
/// wakes the worker's fetcher. A message that arrives while the fetcher is busy is kept
/// (one permit), so a wake-up between a claim and the wait is not lost.
struct Wakeups {
    notify: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Wakeups {
    fn spawn(queue: &Queue, worker: &str) -> Self {
        let notify = Arc::new(Notify::new());
        let clients = queue.pubsub_clients();
        let pattern = queue.keys().signal_pattern();
        let (n, worker) = (notify.clone(), worker.to_owned());
        let task = tokio::spawn(async move {
            let mut failures = 0u32;
            for client in clients.iter().cycle() {
                match subscribe(client, &pattern).await {
                    Ok(mut messages) => {
                        failures = 0;
                        // Work may have arrived while there was no subscription.
                        n.notify_one();
                        while messages.next().await.is_some() {
                            n.notify_one();
                        }
                        tracing::debug!(%worker, "signal subscription ended; subscribing again");
                    }
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        if failures == 1 || failures.is_multiple_of(20) {
                            tracing::warn!(%worker, error = %e, "cannot subscribe to the queue's signal; idle workers look for work every idle wait meanwhile");
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { notify, task }
    }
}

impl Drop for Wakeups {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn subscribe(
    client: &redis::Client,
    pattern: &str,
) -> Result<redis::aio::PubSubStream, QueueError> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.psubscribe(pattern).await?;
    Ok(pubsub.into_on_message())
}

impl Backend for RedisBackend {
    type Task = Task<Job>;
    type Error = QueueError;

    fn poll_ready(
        &mut self,
        _: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Option<Result<Self::Task, Self::Error>>> {
        let stream = self.stream.get_or_insert_with(|| {
            let fetcher = Fetcher {
                queue: self.queue.clone(),
                worker: self.worker.clone(),
                held: self.held.clone(),
                buffer: self.buffer.clone(),
                settings: self.settings.clone(),
                waiter: None,
                wakeups: None,
                failures: 0,
                legacy_at: None,
            };
            Box::pin(futures::stream::unfold(fetcher, |mut f| async move {
                let job = f.next_job().await;
                Some((Ok(Task::new(job)), f))
            }))
        });
        Pin::new(stream).poll_next(cx)
    }

    fn poll_close(
        &mut self,
        cx: &mut Context<'_>,
        _: &WorkerContext,
    ) -> Poll<Result<(), Self::Error>> {
        if self.closed {
            return Poll::Ready(Ok(()));
        }
        // Stop claiming: drop the stream (and any blocked wait) first.
        self.stream = None;
        let closing = self.closing.get_or_insert_with(|| {
            let queue = self.queue.clone();
            let worker = self.worker.clone();
            let held = self.held.clone();
            let unstarted: Vec<(String, String)> = lock_buffer(&self.buffer)
                .drain(..)
                .map(|j| (j.id.into_string(), j.endpoint))
                .collect();
            Box::pin(async move {
                if !unstarted.is_empty() {
                    match queue.release(&worker, &unstarted).await {
                        Ok(n) => tracing::info!(%worker, released = n, "handed back jobs not started before shutdown"),
                        Err(e) => tracing::warn!(%worker, error = %e, "could not hand back unstarted jobs; their leases will expire and another worker takes them"),
                    }
                }
                for (id, _) in &unstarted {
                    held.remove(id);
                }
                if let Err(e) = queue.unregister(&worker).await {
                    tracing::debug!(%worker, error = %e, "could not unregister worker");
                }
            })
        });
        match closing.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.closed = true;
                self.closing = None;
                Poll::Ready(Ok(()))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl BackendConfig for RedisBackend {
    type Args = Job;
    type Id = RandomId;
    type Kind = Ephemeral;
    type Config = BackendSettings;
    type Layer = Identity;

    fn config(&self) -> &Self::Config {
        &self.settings
    }

    fn middleware(&mut self, _: &mut WorkerContext) -> Self::Layer {
        Identity::new()
    }
}

/// Renews the leases of `held` jobs every third of `lease` until aborted, and records the
/// worker's heartbeat. Redis errors are logged and retried at the next tick.
pub fn spawn_lease_keeper(
    queue: Queue,
    worker: String,
    held: HeldJobs,
    lease: Duration,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let held_now = held.pairs();
            match queue.renew(&worker, &held_now, lease).await {
                Ok(lost) if !lost.is_empty() => {
                    tracing::warn!(%worker, lost = lost.len(), "jobs this worker still runs are held by another worker now (their leases expired before renewal); those deliveries may be made twice");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(%worker, error = %e, "lease renewal failed; retrying"),
            }
        }
    })
}
