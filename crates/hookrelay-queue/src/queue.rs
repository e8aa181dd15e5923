//! The queue's operations over one multiplexed Redis connection: enqueue, claim, ack, lease
//! renewal, hand-back, dead-lettering, redelivery and the read side of delivery records.
//!
//! Every delivery waits in its endpoint's queue (see `hookrelay_core::keys::PartitionKeys`).
//! A claim is two steps: read which endpoints are candidates (the head of the ring, due
//! timers, expired leases), then one script that claims from exactly those, so that every
//! key a script touches is passed to it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hookrelay_core::activity;
use hookrelay_core::endpoint::{
    CIRCUIT_COOLDOWN_BASE, CIRCUIT_COOLDOWN_MAX, CIRCUIT_FAILURE_THRESHOLD, Verdict,
};
use hookrelay_core::names::partition_of;
use hookrelay_core::time::now_ms;
use hookrelay_core::{AttemptRecord, DeliveryId, DeliveryKind, DeliveryStatus, Job, Keys};
use redis::ScriptInvocation;
use serde::Serialize;

use crate::conn::{RedisConn, Target};
use crate::error::QueueError;
use crate::record::{DeliveryView, attempt_summary, record_fields, view_from_fields};
use crate::scripts;

/// How many attempt records are kept per delivery (the newest).
pub const MAX_ATTEMPT_RECORDS: usize = 100;
/// Endpoints from the head of the ring that one claim considers: enough to share a batch,
/// few enough that a claim costs about the same with 10,000 endpoints as with one.
const RING_CANDIDATES: usize = 8;
/// Endpoints with due timers that one claim looks at.
const TIMER_CANDIDATES: usize = 16;
/// Expired leases one claim hands back at most.
const REAP_CHUNK: usize = 16;

/// A delivery to enqueue: its first job and the facts its record starts with.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The first attempt.
    pub job: Job,
    /// The event id it came from, if any.
    pub event_id: Option<String>,
    /// Whether the record keeps a copy of the job (webhook tests: no stored event to render
    /// it again from); deliveries of an event share the event's payload instead.
    pub keep_job: bool,
}

/// What `enqueue` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The deliveries are in Redis; here is the answer that was stored.
    Enqueued(String),
    /// The event id was seen before; here is the answer given then. Nothing was enqueued.
    Duplicate(String),
    /// The event id is being published by another call that has not answered within a few
    /// seconds (its deliveries span partitions and are not all in yet). Nothing was
    /// enqueued; try again shortly.
    InProgress,
}

/// What an event id's idempotency key holds while its deliveries are being enqueued into
/// more than one partition (answers are JSON objects, so never this).
const PENDING: &str = "pending";
/// How long a pending mark stays when its publisher dies before finishing (s).
const PENDING_SECS: u64 = 30;
/// How long a second call with the same event id waits for the first one's answer.
const PENDING_WAIT: Duration = Duration::from_secs(5);

/// One claimed job: the id Redis read from it and its raw bytes (which may turn out not to
/// be a job this build can run; the id is what the dead list needs then).
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// The delivery id, as the claim script read it.
    pub id: String,
    /// The value as it was in the queue.
    pub raw: Vec<u8>,
    /// The endpoint whose queue it came from.
    pub endpoint: String,
    /// Whether that endpoint's webhook was deleted: the job is only to be ended as failed.
    pub deleted: bool,
    /// The partition it was claimed in.
    pub partition: u32,
    /// Why it cannot be run where it is, if so: its id names another partition than the
    /// one it waits in (a job written by hand or by another producer), so its record and
    /// acks would be looked for in the wrong place.
    pub misplaced: Option<String>,
}

impl ClaimedJob {
    /// The raw value.
    pub fn as_bytes(&self) -> &[u8] {
        &self.raw
    }
}

/// Jobs taken by one claim.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The jobs, each now held by the claiming worker under a lease.
    pub jobs: Vec<ClaimedJob>,
    /// Reasons for values that were not jobs and went to the dead list.
    pub dead: Vec<String>,
    /// Jobs handed back from workers whose lease expired.
    pub recovered: usize,
    /// Endpoints in the ring after the claim (servable now).
    pub ring: usize,
    /// How long until the next timer or lease deadline, when there is one.
    pub next_due: Option<Duration>,
}

/// What step 1 of a claim found in one partition.
#[derive(Debug, Default)]
struct Candidates {
    endpoints: Vec<String>,
    expired: Vec<String>,
}

impl Candidates {
    fn is_empty(&self) -> bool {
        self.endpoints.is_empty() && self.expired.is_empty()
    }
}

/// The outcome of one attempt, to record and settle.
#[derive(Debug, Clone)]
pub struct Ack<'a> {
    /// The worker that made the attempt.
    pub worker: &'a str,
    /// The job that was attempted.
    pub job: &'a Job,
    /// What happened.
    pub attempt: &'a AttemptRecord,
    /// The delivery's status after this attempt.
    pub status: DeliveryStatus,
    /// The next attempt and when it is due (ms), when there is one.
    pub next: Option<(&'a Job, i64)>,
    /// What the attempt says about the endpoint.
    pub verdict: Option<Verdict>,
    /// The next attempt goes back to the front of the endpoint's queue (a deferral: the
    /// endpoint is paused or disabled, and runs it first when it resumes).
    pub requeue_front: bool,
    /// Take the endpoint's next job in the same call, under this lease, when no other
    /// endpoint is waiting for a turn (none: do not; never with several partitions).
    pub take_next: Option<Duration>,
}

/// What an ack did.
#[derive(Debug, Default)]
pub struct AckOutcome {
    /// Whether the worker still held the job and settled it (`false`: its lease had
    /// expired; the attempt is recorded, the queue untouched).
    pub settled: bool,
    /// The endpoint's next job, now held by the worker, when one was taken.
    pub next: Option<ClaimedJob>,
    /// Why a value taken as the next job was not one (it went to the dead list).
    pub dead: Option<String>,
}

/// An ack's keys and arguments, built from an [`Ack`] and owned, so that several can be
/// settled by one script call ([`Queue::ack_many`]).
#[derive(Debug, Clone)]
pub struct PreparedAck {
    /// The partition whose script settles it: acks go together only within one.
    pub partition: u32,
    keys: Vec<String>,
    args: Vec<Vec<u8>>,
}

/// Script arguments, each as the bytes Redis receives.
#[derive(Default)]
struct ArgList(Vec<Vec<u8>>);

impl ArgList {
    fn arg<T: redis::ToRedisArgs>(&mut self, value: T) -> &mut Self {
        value.write_redis_args(&mut self.0);
        self
    }
}

/// What `redeliver` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedeliverOutcome {
    /// Queued again.
    Queued,
    /// Still pending or retrying: nothing done.
    StillQueued,
    /// No such delivery.
    NotFound,
    /// Its webhook was deleted: nothing delivers it any more.
    WebhookDeleted,
}

/// Queue depth, for `/metrics` and operators.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueStats {
    /// Jobs ready to run, in the endpoints that have work or timers.
    pub ready: u64,
    /// Retries waiting for their time, in the same endpoints.
    pub scheduled: u64,
    /// Endpoints that may be served now (the ring).
    pub endpoints_ready: u64,
    /// Endpoints waiting for a timer (retry, pause, cooldown, rate, free slot).
    pub endpoints_waiting: u64,
    /// Jobs held by workers.
    pub inflight: u64,
    /// Values that were not runnable jobs.
    pub dead: u64,
    /// Live workers (heartbeat within the last minute).
    pub workers: u64,
}

/// The Redis queue and delivery store. Cheap to clone: clones share one connection.
#[derive(Clone)]
pub struct Queue {
    conn: RedisConn,
    target: Target,
    keys: Keys,
    /// The partitions workers serve: the most any process of this queue has used.
    walk: u32,
    /// Where the next claim starts its walk over the partitions.
    cursor: Arc<AtomicU32>,
    retention: Duration,
    retention_succeeded: Duration,
    retention_failed: Duration,
    endpoint_concurrency: u32,
    disable_after: Duration,
    /// Why an endpoint failing for `disable_after` is disabled (built once, not per ack).
    disable_reason: String,
    /// Event payloads larger than this are stored compressed (0: never).
    compress_above: usize,
}

/// The first bytes of every zstd frame: a stored payload that starts with them is
/// compressed (JSON never starts with them).
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
/// The most a compressed payload may expand to when read back.
const MAX_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("prefix", &self.keys.prefix())
            .field("retention", &self.retention)
            .finish()
    }
}

impl Queue {
    /// Connects to Redis at `url` (on a cluster, `keys.cluster()`: one or more
    /// comma-separated seed nodes). Fails when Redis cannot be reached now; once connected,
    /// the connection re-establishes itself after Redis restarts or fails over.
    pub async fn connect(url: &str, keys: Keys) -> Result<Self, QueueError> {
        let target = Target::parse(url, keys.cluster())?;
        let mut conn = target.connect(Duration::from_secs(5)).await?;
        let walk = register_partitions(&mut conn, &keys).await?;
        // Until the caller says otherwise, what a deployment without settings does.
        let defaults = hookrelay_core::defaults::defaults();
        Ok(Self {
            conn,
            target,
            keys,
            walk,
            cursor: Arc::new(AtomicU32::new(0)),
            retention: defaults.retention,
            retention_succeeded: defaults.retention,
            retention_failed: defaults.retention,
            endpoint_concurrency: defaults.endpoint_concurrency,
            disable_after: Duration::ZERO,
            disable_reason: String::new(),
            compress_above: defaults.payload_compress_bytes,
        }
        .with_disable_after(defaults.disable_after))
    }

    /// Deliveries in flight at once per endpoint whose webhook sets no `max_concurrency`.
    pub fn with_endpoint_concurrency(mut self, n: u32) -> Self {
        self.endpoint_concurrency = n.max(1);
        self
    }

    /// How long an endpoint may fail without a single success before it is disabled.
    pub fn with_disable_after(mut self, d: Duration) -> Self {
        self.disable_after = d.max(Duration::from_secs(1));
        self.disable_reason = format!(
            "no successful delivery for {} while it kept failing",
            human_duration(self.disable_after)
        );
        self
    }

    /// Event payloads larger than `bytes` are stored compressed (zstd); 0: never.
    pub fn with_payload_compression(mut self, bytes: usize) -> Self {
        self.compress_above = bytes;
        self
    }

    /// What is stored of an event payload: the JSON, or its zstd frame when it is larger
    /// than the threshold and compressing makes it smaller.
    fn stored_payload<'a>(&self, json: &'a str) -> std::borrow::Cow<'a, [u8]> {
        if self.compress_above > 0
            && json.len() > self.compress_above
            && let Ok(packed) = zstd::bulk::compress(json.as_bytes(), 3)
            && packed.len() < json.len()
        {
            return std::borrow::Cow::Owned(packed);
        }
        std::borrow::Cow::Borrowed(json.as_bytes())
    }

    /// How long records are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// How long a failed delivery is kept.
    pub fn retention_failed(&self) -> Duration {
        self.retention_failed
    }

    /// The default per-endpoint concurrency.
    pub fn endpoint_concurrency(&self) -> u32 {
        self.endpoint_concurrency
    }

    /// The partitions workers serve (`0..walk`): the most any process has used.
    pub fn partitions_walked(&self) -> u32 {
        self.walk
    }

    /// A script invocation with partition `p`'s keys first.
    pub(crate) fn invocation(
        &self,
        script: &'static redis::Script,
        p: u32,
    ) -> ScriptInvocation<'static> {
        let mut inv = script.prepare_invoke();
        for k in self.keys.partition(p).all() {
            inv.key(k);
        }
        inv
    }

    /// Adds the four keys of an endpoint's queue in partition `p` to an invocation.
    pub(crate) fn endpoint_keys(&self, inv: &mut ScriptInvocation<'_>, p: u32, endpoint: &str) {
        for k in self.keys.partition(p).endpoint(endpoint).all() {
            inv.key(k);
        }
    }

    /// How long delivery records, test records and idempotency answers are kept.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention.max(Duration::from_secs(1));
        self.retention_succeeded = self.retention;
        self.retention_failed = self.retention;
        self
    }

    /// How long finished deliveries are kept: succeeded ones, failed ones (by default, the
    /// retention of [`Queue::with_retention`]). Call after it.
    pub fn with_outcome_retentions(mut self, succeeded: Duration, failed: Duration) -> Self {
        self.retention_succeeded = succeeded.max(Duration::from_secs(1));
        self.retention_failed = failed.max(Duration::from_secs(1));
        self
    }

    /// The key schema.
    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A handle on the shared connection, for the webhook registry's own commands.
    pub fn connection(&self) -> RedisConn {
        self.conn.clone()
    }

    /// A new connection of its own, for a blocking command that must not stall the shared one.
    pub async fn dedicated_connection(
        &self,
        response_timeout: Duration,
    ) -> Result<RedisConn, QueueError> {
        self.target.connect(response_timeout).await
    }

    /// Clients for Pub/Sub on one node (one of the seed nodes of a cluster, in order).
    pub(crate) fn pubsub_clients(&self) -> Vec<redis::Client> {
        self.target.pubsub_clients()
    }

    /// The longest of the retentions: how long a shared event payload is kept.
    fn longest_retention_secs(&self) -> u64 {
        self.retention
            .max(self.retention_succeeded)
            .max(self.retention_failed)
            .as_secs()
            .max(1)
    }

    /// The stored payload (event JSON) of `event_id` in `project`, while it is kept.
    pub async fn payload(
        &self,
        project: &str,
        event_id: &str,
    ) -> Result<Option<String>, QueueError> {
        let mut conn = self.conn.clone();
        let stored: Option<Vec<u8>> = redis::cmd("GET")
            .arg(self.keys.payload(project, event_id))
            .query_async(&mut conn)
            .await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let bytes = if stored.starts_with(&ZSTD_MAGIC) {
            zstd::bulk::decompress(&stored, MAX_PAYLOAD_BYTES).map_err(|e| {
                QueueError::Protocol(format!("stored payload does not decompress: {e}"))
            })?
        } else {
            stored
        };
        String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| QueueError::Protocol("stored payload is not UTF-8".into()))
    }

    fn retention_secs(&self) -> u64 {
        self.retention.as_secs().max(1)
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Enqueues the deliveries of one event, each into its endpoint's queue
    /// (`job.endpoint`) in the partition its id names. With an `event_id`, a second call
    /// with the same id in the project enqueues nothing and returns the first `answer`.
    /// `payload` is the event (`(event id, JSON)`) its deliveries are rendered from, stored
    /// once for all of them.
    ///
    /// When every delivery is in one partition (always, with one partition on one Redis),
    /// it is one atomic script. Otherwise (a cluster, or deliveries spread over partitions)
    /// the event id is first marked pending in its own slot, then each partition's
    /// deliveries go in atomically, then the answer replaces the mark: a call that fails
    /// half-way leaves nothing accepted (the caller got an error) and a retry enqueues the
    /// event again.
    pub async fn enqueue(
        &self,
        project: &str,
        event_id: Option<&str>,
        answer: &str,
        payload: Option<(&str, &str)>,
        deliveries: &[NewDelivery],
    ) -> Result<EnqueueOutcome, QueueError> {
        let mut groups: Vec<(u32, Vec<&NewDelivery>)> = Vec::new();
        for d in deliveries {
            if d.job.endpoint.is_empty() {
                return Err(QueueError::Protocol(format!(
                    "delivery {} has no endpoint",
                    d.job.id
                )));
            }
            let p = d.job.id.partition();
            match groups.iter_mut().find(|(q, _)| *q == p) {
                Some((_, g)) => g.push(d),
                None => groups.push((p, vec![d])),
            }
        }
        if groups.len() <= 1 && !self.keys.cluster() {
            let (p, group) = groups.pop().unwrap_or((0, Vec::new()));
            let outcome = self
                .enqueue_in(p, project, event_id, answer, payload, &group)
                .await?;
            return Ok(match outcome {
                EnqueueOutcome::Duplicate(stored) if stored == PENDING => {
                    EnqueueOutcome::InProgress
                }
                other => other,
            });
        }
        let mut conn = self.conn.clone();
        let event_key = event_id.map(|id| self.keys.event(project, id));
        if let Some(key) = &event_key {
            // Mark the event id pending. Another call holding the mark is waited for (a
            // few seconds): its answer is the answer; if it gave up, this call goes on.
            let deadline = tokio::time::Instant::now() + PENDING_WAIT;
            loop {
                let (set, existing): (Option<String>, Option<String>) = redis::pipe()
                    .cmd("SET")
                    .arg(key)
                    .arg(PENDING)
                    .arg("NX")
                    .arg("EX")
                    .arg(PENDING_SECS)
                    .cmd("GET")
                    .arg(key)
                    .query_async(&mut conn)
                    .await?;
                match existing {
                    _ if set.is_some() => break,
                    Some(stored) if stored != PENDING => {
                        return Ok(EnqueueOutcome::Duplicate(stored));
                    }
                    _ if tokio::time::Instant::now() >= deadline => {
                        return Ok(EnqueueOutcome::InProgress);
                    }
                    _ => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        }
        let result = async {
            if let Some((id, json)) = payload {
                let _: () = redis::cmd("SET")
                    .arg(self.keys.payload(project, id))
                    .arg(self.stored_payload(json).as_ref())
                    .arg("EX")
                    .arg(self.longest_retention_secs())
                    .query_async(&mut conn)
                    .await?;
            }
            let parts = groups
                .iter()
                .map(|(p, group)| self.enqueue_in(*p, project, None, answer, None, group));
            futures::future::try_join_all(parts).await?;
            if let Some(key) = &event_key {
                let _: () = redis::cmd("SET")
                    .arg(key)
                    .arg(answer)
                    .arg("EX")
                    .arg(self.retention_secs())
                    .query_async(&mut conn)
                    .await?;
            }
            Ok::<_, QueueError>(())
        }
        .await;
        if let Err(e) = result {
            if let Some(key) = &event_key {
                // Let a retry start over at once rather than wait for the mark to expire.
                let _: Result<i64, _> = redis::cmd("DEL").arg(key).query_async(&mut conn).await;
            }
            return Err(e);
        }
        Ok(EnqueueOutcome::Enqueued(answer.to_owned()))
    }

    /// One atomic script: the deliveries of one partition, with the idempotency answer and
    /// the payload when given.
    async fn enqueue_in(
        &self,
        p: u32,
        project: &str,
        event_id: Option<&str>,
        answer: &str,
        payload: Option<(&str, &str)>,
        deliveries: &[&NewDelivery],
    ) -> Result<EnqueueOutcome, QueueError> {
        let now = now_ms();
        let part = self.keys.partition(p);
        // Unused key slots name a key of the partition, so that a cluster sees one slot.
        let idempotency_key = event_id.map(|id| self.keys.event(project, id));
        let mut inv = self.invocation(&scripts::ENQUEUE, p);
        inv.key(idempotency_key.clone().unwrap_or_else(|| part.meta()))
            .key(self.keys.deliveries(project, p))
            .key(
                payload
                    .map(|(id, _)| self.keys.payload(project, id))
                    .unwrap_or_else(|| part.meta()),
            );
        inv.arg(if idempotency_key.is_some() { "1" } else { "0" })
            .arg(answer)
            .arg(self.retention_secs())
            .arg(now)
            .arg(self.endpoint_concurrency)
            .arg(
                payload
                    .map(|(_, json)| self.stored_payload(json))
                    .unwrap_or_default()
                    .as_ref(),
            )
            .arg(self.longest_retention_secs());
        for d in deliveries {
            let job = &d.job;
            let raw = job.encode();
            let fields = record_fields(
                job,
                d.event_id.as_deref(),
                now,
                d.keep_job.then_some(raw.as_str()),
            );
            inv.key(self.keys.delivery(&job.id));
            self.endpoint_keys(&mut inv, p, &job.endpoint);
            inv.arg(fields.to_string())
                .arg(raw)
                .arg(job.id.as_str())
                .arg(&job.endpoint);
        }
        let mut conn = self.conn.clone();
        let (fresh, stored): (i64, String) = inv.invoke_async(&mut conn).await?;
        Ok(if fresh == 1 {
            EnqueueOutcome::Enqueued(stored)
        } else {
            EnqueueOutcome::Duplicate(stored)
        })
    }

    /// Claims up to `max` jobs for `worker`, round-robin over the endpoints that may be
    /// served, each job under a lease of `lease`. On the way it hands back jobs whose lease
    /// expired and brings endpoints with due timers up to date (retries promoted, pauses and
    /// cooldowns ended).
    ///
    /// With several partitions, every partition's candidates are read at once, then the
    /// partitions that have any are claimed from in turn, starting one further along at
    /// each claim, so that none is missed or starved.
    pub async fn claim(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Claimed, QueueError> {
        if self.walk <= 1 {
            let found = self.candidates(0).await?;
            return self.claim_in(0, found, worker, max, lease).await;
        }
        let start = self.cursor.fetch_add(1, Ordering::Relaxed) % self.walk;
        let order: Vec<u32> = (0..self.walk).map(|i| (start + i) % self.walk).collect();
        let found =
            futures::future::try_join_all(order.iter().map(|p| self.candidates(*p))).await?;
        let mut total = Claimed::default();
        for (p, found) in order.into_iter().zip(found) {
            if found.is_empty() {
                continue;
            }
            let left = max.saturating_sub(total.jobs.len());
            // With no slot left, a partition is still looked at for its timers and dead
            // workers' leases (the claim script takes no job then).
            let c = self.claim_in(p, found, worker, left, lease).await?;
            total.jobs.extend(c.jobs);
            total.dead.extend(c.dead);
            total.recovered += c.recovered;
            total.ring += c.ring;
            total.next_due = match (total.next_due, c.next_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        Ok(total)
    }

    /// Step 1 of a claim in partition `p`: the endpoints to look at (the head of the ring,
    /// due timers) and the expired leases. A timer read a little early is harmless: the
    /// script checks every time against Redis's clock.
    async fn candidates(&self, p: u32) -> Result<Candidates, QueueError> {
        let part = self.keys.partition(p);
        let mut conn = self.conn.clone();
        let soon = now_ms() + 500;
        let mut pipe = redis::pipe();
        pipe.cmd("ZRANGE")
            .arg(part.ring())
            .arg(0)
            .arg(RING_CANDIDATES - 1)
            .cmd("ZRANGEBYSCORE")
            .arg(part.timers())
            .arg("-inf")
            .arg(soon)
            .arg("LIMIT")
            .arg(0)
            .arg(TIMER_CANDIDATES)
            .cmd("ZRANGEBYSCORE")
            .arg(part.leases())
            .arg("-inf")
            .arg(soon)
            .arg("LIMIT")
            .arg(0)
            .arg(REAP_CHUNK);
        if self.walk > 1 {
            pipe.cmd("EXISTS").arg(part.signal());
        }
        let answers: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let list = |i: usize| -> Result<Vec<String>, QueueError> {
            match answers.get(i) {
                Some(v) => {
                    redis::from_redis_value_ref(v).map_err(|e| QueueError::Protocol(e.to_string()))
                }
                None => Ok(Vec::new()),
            }
        };
        let (ring, timers, expired) = (list(0)?, list(1)?, list(2)?);
        let signalled = answers
            .get(3)
            .is_some_and(|v| matches!(v, redis::Value::Int(n) if *n > 0));
        let mut ring = ring;
        if ring.is_empty() && signalled && self.walk > 1 {
            // The ring emptied outside a claim: clear the signal, so that the next endpoint
            // to join publishes the wake-up again; atomically, so that an endpoint that
            // joined since the read (and published nothing) is claimed from instead.
            ring = scripts::QUIET
                .key(part.ring())
                .key(part.signal())
                .arg(RING_CANDIDATES)
                .invoke_async(&mut conn)
                .await?;
        }
        let mut endpoints: Vec<String> = Vec::with_capacity(ring.len() + timers.len());
        let lease_endpoints = expired
            .iter()
            .filter_map(|m| m.split_once('|').map(|(e, _)| e.to_owned()));
        for e in ring.into_iter().chain(timers).chain(lease_endpoints) {
            if !endpoints.contains(&e) {
                endpoints.push(e);
            }
        }
        Ok(Candidates { endpoints, expired })
    }

    /// Step 2 of a claim in partition `p`: one script that claims from exactly the
    /// candidates.
    async fn claim_in(
        &self,
        p: u32,
        found: Candidates,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Claimed, QueueError> {
        let candidates = &found.endpoints;
        let mut inv = self.invocation(&scripts::CLAIM, p);
        for e in candidates {
            self.endpoint_keys(&mut inv, p, e);
        }
        inv.arg(worker)
            .arg(max)
            .arg(lease.as_millis() as u64)
            .arg(self.endpoint_concurrency)
            .arg(candidates.len());
        for e in candidates {
            inv.arg(e);
        }
        for m in &found.expired {
            inv.arg(m);
        }
        let mut conn = self.conn.clone();
        let (flat, dead, recovered, ring, wait): (Vec<Vec<u8>>, Vec<Vec<u8>>, usize, usize, i64) =
            inv.invoke_async(&mut conn).await?;
        let mut jobs = Vec::with_capacity(flat.len() / 4);
        let mut it = flat.into_iter();
        while let (Some(id), Some(raw), Some(endpoint), Some(deleted)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            jobs.push(self.claimed_job(p, [id, raw, endpoint, deleted]));
        }
        Ok(Claimed {
            jobs,
            dead: dead
                .iter()
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .collect(),
            recovered,
            ring,
            next_due: u64::try_from(wait).ok().map(Duration::from_millis),
        })
    }

    /// Records an attempt and settles its job, and with `take_next` takes the endpoint's
    /// next job when no other endpoint waits.
    pub async fn ack(&self, ack: &Ack<'_>) -> Result<AckOutcome, QueueError> {
        let prepared = self.prepare_ack(ack)?;
        let mut inv = self.invocation(&scripts::ACK, prepared.partition);
        for k in &prepared.keys {
            inv.key(k);
        }
        for a in &prepared.args {
            inv.arg(a);
        }
        let mut conn = self.conn.clone();
        let answer: (i64, Vec<Vec<u8>>, String) = inv.invoke_async(&mut conn).await?;
        self.ack_outcome(prepared.partition, answer)
    }

    /// Settles several attempts of one partition (see [`PreparedAck::partition`]) in one
    /// script call, each exactly as [`Queue::ack`] would, in order. One result per attempt:
    /// an attempt whose settling failed in the script does not stop the others. `Err` when
    /// the call itself failed (then none, some or all may have been settled, as when a
    /// single ack's answer is lost).
    pub async fn ack_many(
        &self,
        acks: &[PreparedAck],
    ) -> Result<Vec<Result<AckOutcome, QueueError>>, QueueError> {
        let Some(first) = acks.first() else {
            return Ok(Vec::new());
        };
        let p = first.partition;
        if acks.iter().any(|a| a.partition != p) {
            return Err(QueueError::Protocol(
                "acks of several partitions in one call".into(),
            ));
        }
        let mut inv = self.invocation(&scripts::ACK_MANY, p);
        for a in acks {
            for k in &a.keys {
                inv.key(k);
            }
        }
        inv.arg(acks.len());
        for a in acks {
            for arg in &a.args {
                inv.arg(arg);
            }
        }
        let mut conn = self.conn.clone();
        let answers: Vec<(i64, Vec<Vec<u8>>, String)> = inv.invoke_async(&mut conn).await?;
        if answers.len() != acks.len() {
            return Err(QueueError::Protocol(format!(
                "{} answers to {} acks",
                answers.len(),
                acks.len()
            )));
        }
        Ok(answers
            .into_iter()
            .map(|answer| match answer {
                (-1, _, error) => Err(QueueError::Protocol(format!("ack script: {error}"))),
                answer => self.ack_outcome(p, answer),
            })
            .collect())
    }

    fn ack_outcome(
        &self,
        p: u32,
        (settled, next, dead): (i64, Vec<Vec<u8>>, String),
    ) -> Result<AckOutcome, QueueError> {
        let next = match <[Vec<u8>; 4]>::try_from(next) {
            Ok(fields) => Some(self.claimed_job(p, fields)),
            Err(_) => None,
        };
        Ok(AckOutcome {
            settled: settled == 1,
            next,
            dead: (!dead.is_empty()).then_some(dead),
        })
    }

    /// The keys and arguments of an ack, owned, to be settled later by [`Queue::ack_many`].
    pub fn prepare_ack(&self, ack: &Ack<'_>) -> Result<PreparedAck, QueueError> {
        let id = &ack.job.id;
        // A successful delivery attempt is a small field of the record; any other goes,
        // with the answer it got, to the attempts list.
        let summary = match ack.job.kind {
            DeliveryKind::Test => None,
            _ => attempt_summary(ack.attempt),
        };
        let attempt_json = match summary {
            Some(_) => String::new(),
            None => serde_json::to_string(ack.attempt)
                .map_err(|e| QueueError::Protocol(e.to_string()))?,
        };
        // The last answer goes into the record itself only for webhook tests (what their
        // GET shows); for deliveries it is in the attempt list already.
        let response_json = match (&ack.attempt.response, ack.job.kind) {
            (Some(r), DeliveryKind::Test) => {
                serde_json::to_string(r).map_err(|e| QueueError::Protocol(e.to_string()))?
            }
            _ => String::new(),
        };
        let (next_at, next_raw) = match ack.next {
            Some((job, due)) => (due.to_string(), job.encode()),
            None => (String::new(), String::new()),
        };
        let (verdict, pause_until) = match ack.verdict {
            // Tests have a queue of their own and say nothing about the webhook's health.
            _ if ack.job.kind == DeliveryKind::Test => ("none", 0),
            None => ("none", 0),
            Some(Verdict::Pause(d)) => ("pause", now_ms() + d.as_millis() as i64),
            Some(v) => (v.as_str(), 0),
        };
        let now = now_ms();
        // Webhook tests are not deliveries: they count in no activity.
        let activity_field = match ack.job.kind {
            DeliveryKind::Test => String::new(),
            _ => activity::success_field(
                (ack.job.created_at_ms > 0).then(|| now - ack.job.created_at_ms),
            ),
        };
        let p = id.partition();
        let part = self.keys.partition(p);
        let mut keys = Vec::with_capacity(8);
        keys.push(self.keys.delivery(id));
        keys.push(self.keys.attempts(id));
        keys.push(part.endpoint_failed(&ack.job.endpoint));
        keys.extend(part.endpoint(&ack.job.endpoint).all().map(str::to_owned));
        keys.push(part.activity(&ack.job.project, now.div_euclid(60_000)));
        let mut args = ArgList::default();
        args.arg(ack.worker)
            .arg(id.as_str())
            .arg(&ack.job.endpoint)
            .arg(ack.status.as_str())
            .arg(attempt_json)
            .arg(ack.job.attempt)
            .arg(next_at)
            .arg(next_raw)
            .arg(if ack.requeue_front {
                "front"
            } else {
                "scheduled"
            })
            .arg(self.retention_secs())
            .arg(ack.attempt.error.clone().unwrap_or_default())
            .arg(
                ack.attempt
                    .status_code
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            )
            .arg(response_json)
            .arg(MAX_ATTEMPT_RECORDS)
            .arg(verdict)
            .arg(pause_until)
            .arg(self.endpoint_concurrency)
            .arg(self.disable_after.as_millis() as u64)
            .arg(&self.disable_reason)
            .arg(CIRCUIT_FAILURE_THRESHOLD)
            .arg(CIRCUIT_COOLDOWN_BASE.as_millis() as u64)
            .arg(CIRCUIT_COOLDOWN_MAX.as_millis() as u64)
            .arg(ack.job.project.as_str())
            .arg(ack.job.webhook.as_deref().unwrap_or(""))
            .arg(
                // The script sees only its own partition's ring: with several partitions a
                // busy endpoint would keep the slot while others elsewhere wait, so the slot
                // goes back through a claim, which walks every partition.
                ack.take_next
                    .filter(|_| self.walk <= 1)
                    .map(|l| l.as_millis().to_string())
                    .unwrap_or_default(),
            )
            .arg(activity_field)
            .arg(activity::ACTIVITY_RETENTION_SECS)
            .arg(self.retention_succeeded.as_secs().max(1))
            .arg(self.retention_failed.as_secs().max(1))
            .arg(summary.unwrap_or_default());
        Ok(PreparedAck {
            partition: p,
            keys,
            args: args.0,
        })
    }

    /// Extends the leases of the jobs `worker` holds (`(delivery id, endpoint)` pairs) and
    /// records its heartbeat. Returns the ids another worker holds now (settled ones are
    /// simply skipped).
    pub async fn renew(
        &self,
        worker: &str,
        held: &[(String, String)],
        lease: Duration,
    ) -> Result<Vec<String>, QueueError> {
        let mut conn = self.conn.clone();
        let _: () = redis::pipe()
            .cmd("ZADD")
            .arg(self.keys.workers())
            .arg(now_ms())
            .arg(worker)
            .ignore()
            // Forget workers silent for an hour (killed without a clean stop).
            .cmd("ZREMRANGEBYSCORE")
            .arg(self.keys.workers())
            .arg("-inf")
            .arg(now_ms() - 3_600_000)
            .ignore()
            .query_async(&mut conn)
            .await?;
        let mut lost = Vec::new();
        for (p, held) in self.by_partition(held) {
            let mut inv = self.held_invocation(&scripts::RENEW, p, &held);
            inv.arg(worker).arg(lease.as_millis() as u64);
            self.held_args(&mut inv, &held);
            let more: Vec<String> = inv.invoke_async(&mut conn).await?;
            lost.extend(more);
        }
        Ok(lost)
    }

    /// `(delivery id, endpoint)` pairs grouped by the partition of each delivery.
    fn by_partition(&self, held: &[(String, String)]) -> Vec<(u32, Vec<(String, String)>)> {
        let mut groups: Vec<(u32, Vec<(String, String)>)> = Vec::new();
        for pair in held {
            let p = partition_of(&pair.0);
            match groups.iter_mut().find(|(q, _)| *q == p) {
                Some((_, g)) => g.push(pair.clone()),
                None => groups.push((p, vec![pair.clone()])),
            }
        }
        groups
    }

    /// An invocation in partition `p` with the keys of the endpoints of `held` after the
    /// partition's.
    fn held_invocation(
        &self,
        script: &'static redis::Script,
        p: u32,
        held: &[(String, String)],
    ) -> ScriptInvocation<'static> {
        let mut inv = self.invocation(script, p);
        for e in distinct_endpoints(held) {
            self.endpoint_keys(&mut inv, p, e);
        }
        inv
    }

    /// The endpoint count, endpoint ids and (id, endpoint index) pairs of `held`.
    fn held_args(&self, inv: &mut ScriptInvocation<'_>, held: &[(String, String)]) {
        let endpoints = distinct_endpoints(held);
        inv.arg(endpoints.len());
        for e in &endpoints {
            inv.arg(*e);
        }
        for (id, e) in held {
            let index = endpoints.iter().position(|x| *x == e.as_str()).unwrap_or(0) + 1;
            inv.arg(id).arg(index);
        }
    }

    /// Hands jobs that `worker` holds but never started (`(delivery id, endpoint)` pairs)
    /// back to the front of their endpoints' queues.
    pub async fn release(
        &self,
        worker: &str,
        held: &[(String, String)],
    ) -> Result<usize, QueueError> {
        let mut released = 0;
        let mut conn = self.conn.clone();
        for (p, held) in self.by_partition(held) {
            let mut inv = self.held_invocation(&scripts::RELEASE, p, &held);
            inv.arg(worker).arg(self.endpoint_concurrency);
            self.held_args(&mut inv, &held);
            let n: usize = inv.invoke_async(&mut conn).await?;
            released += n;
        }
        Ok(released)
    }

    /// Moves a held job this build cannot run to the dead list, with the reason, and marks
    /// its delivery record failed (recoverable). `false` when `worker` does not hold it.
    pub async fn dead_letter(
        &self,
        worker: &str,
        id: &DeliveryId,
        endpoint: &str,
        reason: &str,
    ) -> Result<bool, QueueError> {
        self.dead_letter_in(id.partition(), worker, id, endpoint, reason)
            .await
    }

    /// [`Queue::dead_letter`] for a job as claimed, in the partition it was claimed in
    /// (which its id may not name: then its record, elsewhere, is left alone).
    pub async fn dead_letter_claimed(
        &self,
        worker: &str,
        claimed: &ClaimedJob,
        reason: &str,
    ) -> Result<bool, QueueError> {
        self.dead_letter_in(
            claimed.partition,
            worker,
            &claimed.id,
            &claimed.endpoint,
            reason,
        )
        .await
    }

    async fn dead_letter_in(
        &self,
        p: u32,
        worker: &str,
        id: &str,
        endpoint: &str,
        reason: &str,
    ) -> Result<bool, QueueError> {
        let part = self.keys.partition(p);
        // A job whose id is not a delivery id, or names another partition, has no record
        // here to mark: the partition's meta key stands in the slot.
        let record = DeliveryId::parse(id)
            .ok()
            .filter(|_| self.misplaced(id, p).is_none());
        let mut inv = self.invocation(&scripts::DEAD_LETTER, p);
        inv.key(match &record {
            Some(id) => self.keys.delivery(id),
            None => part.meta(),
        })
        .key(part.endpoint_failed(endpoint));
        self.endpoint_keys(&mut inv, p, endpoint);
        inv.arg(worker)
            .arg(id)
            .arg(reason)
            .arg(endpoint)
            .arg(self.endpoint_concurrency)
            .arg(self.retention_failed.as_secs().max(1))
            .arg(if record.is_some() { "1" } else { "0" });
        let mut conn = self.conn.clone();
        let moved: i64 = inv.invoke_async(&mut conn).await?;
        Ok(moved == 1)
    }

    /// A job a script claimed in partition `p`, from the script's `id, raw, endpoint,
    /// deleted` fields.
    fn claimed_job(&self, p: u32, [id, raw, endpoint, deleted]: [Vec<u8>; 4]) -> ClaimedJob {
        let id = String::from_utf8_lossy(&id).into_owned();
        ClaimedJob {
            misplaced: self.misplaced(&id, p),
            id,
            raw,
            endpoint: String::from_utf8_lossy(&endpoint).into_owned(),
            deleted: deleted == b"1",
            partition: p,
        }
    }

    /// Why a job with this id cannot run in partition `p`, when its id names another one.
    fn misplaced(&self, id: &str, p: u32) -> Option<String> {
        let named = partition_of(id);
        (named != p)
            .then(|| format!("its id names partition {named}, but it waits in partition {p}"))
    }

    /// Removes a worker from the heartbeat set (graceful exit).
    pub async fn unregister(&self, worker: &str) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("ZREM")
            .arg(self.keys.workers())
            .arg(worker)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Reads one delivery record with its attempts.
    pub async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryView>, QueueError> {
        Ok(self
            .deliveries_by_id(&[id.to_string()])
            .await?
            .pop()
            .flatten())
    }

    /// Reads several delivery records in one round trip, in the order given: ids as read
    /// from an index, where one that is not a [`DeliveryId`] names no delivery.
    pub async fn deliveries_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<DeliveryView>>, QueueError> {
        let parsed: Vec<Option<DeliveryId>> = ids
            .iter()
            .map(|id| DeliveryId::parse(id.as_str()).ok())
            .collect();
        let wanted: Vec<&DeliveryId> = parsed.iter().flatten().collect();
        if wanted.is_empty() {
            return Ok(ids.iter().map(|_| None).collect());
        }
        // On a cluster a pipeline stays in one slot: one per partition, all at once.
        let mut slots: Vec<(u32, Vec<usize>)> = Vec::new();
        for (i, id) in wanted.iter().enumerate() {
            let p = if self.keys.cluster() {
                id.partition()
            } else {
                0
            };
            match slots.iter_mut().find(|(q, _)| *q == p) {
                Some((_, g)) => g.push(i),
                None => slots.push((p, vec![i])),
            }
        }
        let reads = slots.iter().map(|(_, members)| {
            let mut pipe = redis::pipe();
            for i in members {
                let id = wanted[*i];
                pipe.cmd("HGETALL").arg(self.keys.delivery(id));
                pipe.cmd("LRANGE")
                    .arg(self.keys.attempts(id))
                    .arg(0)
                    .arg(-1);
            }
            let mut conn = self.conn.clone();
            async move { pipe.query_async::<Vec<redis::Value>>(&mut conn).await }
        });
        let answers = futures::future::try_join_all(reads).await?;
        let mut found: Vec<Option<DeliveryView>> = vec![None; wanted.len()];
        for ((_, members), answers) in slots.iter().zip(answers) {
            for (i, pair) in members.iter().zip(answers.chunks(2)) {
                let fields: HashMap<String, String> = redis::from_redis_value_ref(&pair[0])
                    .map_err(|e| QueueError::Protocol(e.to_string()))?;
                let attempts: Vec<String> = match pair.get(1) {
                    Some(v) => redis::from_redis_value_ref(v)
                        .map_err(|e| QueueError::Protocol(e.to_string()))?,
                    None => Vec::new(),
                };
                found[*i] = view_from_fields(wanted[*i], fields, &attempts);
            }
        }
        let mut found = found.into_iter();
        Ok(parsed
            .iter()
            .map(|id| id.as_ref().and_then(|_| found.next().flatten()))
            .collect())
    }

    /// The ids of a project's deliveries, newest first, `offset`..`offset+limit`.
    pub async fn delivery_ids(
        &self,
        project: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<String>, QueueError> {
        let stop = (offset + limit.max(1) - 1) as isize;
        if !self.keys.cluster() {
            let mut conn = self.conn.clone();
            return Ok(redis::cmd("ZREVRANGE")
                .arg(self.keys.deliveries(project, 0))
                .arg(offset)
                .arg(stop)
                .query_async(&mut conn)
                .await?);
        }
        // One index per partition: the newest `stop + 1` of each, merged.
        let reads = (0..self.walk).map(|p| {
            let mut conn = self.conn.clone();
            let key = self.keys.deliveries(project, p);
            async move {
                redis::cmd("ZREVRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(stop)
                    .arg("WITHSCORES")
                    .query_async::<Vec<(String, f64)>>(&mut conn)
                    .await
            }
        });
        let mut all: Vec<(String, f64)> = futures::future::try_join_all(reads)
            .await?
            .into_iter()
            .flatten()
            .collect();
        all.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
        Ok(all
            .into_iter()
            .skip(offset)
            .take(limit.max(1))
            .map(|(id, _)| id)
            .collect())
    }

    /// Queues one more attempt of a finished delivery (`job` is that attempt) at the back
    /// of its endpoint's queue. `payload`: the event id of the payload it was rendered from,
    /// which is kept at least as long as the delivery now.
    pub async fn redeliver(
        &self,
        job: &Job,
        payload: Option<&str>,
    ) -> Result<RedeliverOutcome, QueueError> {
        let p = job.id.partition();
        let part = self.keys.partition(p);
        let mut conn = self.conn.clone();
        let payload_key = payload.map(|id| self.keys.payload(&job.project, id));
        // The payload is in the event's slot: on a cluster it is kept longer first, apart.
        let separate = self.keys.cluster() && payload_key.is_some();
        if let (true, Some(key)) = (separate, &payload_key) {
            let _: i64 = redis::cmd("EXPIRE")
                .arg(key)
                .arg(self.longest_retention_secs())
                .arg("GT")
                .query_async(&mut conn)
                .await?;
        }
        let mut inv = self.invocation(&scripts::REDELIVER, p);
        inv.key(self.keys.delivery(&job.id))
            .key(part.endpoint_failed(&job.endpoint));
        self.endpoint_keys(&mut inv, p, &job.endpoint);
        let in_script = payload_key.filter(|_| !separate);
        inv.key(in_script.clone().unwrap_or_else(|| part.meta()));
        inv.arg(job.encode())
            .arg(now_ms())
            .arg(&job.endpoint)
            .arg(self.endpoint_concurrency)
            .arg(self.retention_secs())
            .arg(self.longest_retention_secs())
            .arg(if in_script.is_some() { "1" } else { "0" })
            .arg(job.id.as_str());
        let r: i64 = inv.invoke_async(&mut conn).await?;
        Ok(match r {
            1 => RedeliverOutcome::Queued,
            0 => RedeliverOutcome::StillQueued,
            -2 => RedeliverOutcome::WebhookDeleted,
            _ => RedeliverOutcome::NotFound,
        })
    }

    /// A page of one endpoint's failed deliveries in partition `p` (`(id, failed at ms)`,
    /// oldest first) that failed at or after `from_ms`, skipping the first `skip` of them.
    pub async fn failed_page(
        &self,
        p: u32,
        endpoint: &str,
        from_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, QueueError> {
        self.failed_page_of(
            &self.keys.partition(p).endpoint_failed(endpoint),
            from_ms,
            skip,
            limit,
        )
        .await
    }

    /// The same, from the failed index of every webhook that versions before per-webhook
    /// indexes wrote (empty once it expired; none on a cluster, which they did not run on).
    pub async fn legacy_failed_page(
        &self,
        from_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, QueueError> {
        if self.keys.cluster() {
            return Ok(Vec::new());
        }
        self.failed_page_of(&self.keys.failed(), from_ms, skip, limit)
            .await
    }

    /// How many of one endpoint's deliveries failed at or after `since_ms`, and how many the
    /// failed index of earlier versions holds since then.
    pub async fn failed_counts(
        &self,
        endpoint: &str,
        since_ms: i64,
    ) -> Result<(u64, u64), QueueError> {
        let count = |key: String| {
            let mut conn = self.conn.clone();
            async move {
                redis::cmd("ZCOUNT")
                    .arg(key)
                    .arg(since_ms)
                    .arg("+inf")
                    .query_async::<u64>(&mut conn)
                    .await
            }
        };
        let own = futures::future::try_join_all(
            (0..self.walk).map(|p| count(self.keys.partition(p).endpoint_failed(endpoint))),
        )
        .await?
        .into_iter()
        .sum();
        let legacy = if self.keys.cluster() {
            0
        } else {
            count(self.keys.failed()).await?
        };
        Ok((own, legacy))
    }

    async fn failed_page_of(
        &self,
        key: &str,
        from_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, QueueError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("ZRANGE")
            .arg(key)
            .arg(from_ms)
            .arg("+inf")
            .arg("BYSCORE")
            .arg("LIMIT")
            .arg(skip)
            .arg(limit)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?)
    }

    /// Queue depth. Ready and scheduled jobs are counted in the endpoints that are in the
    /// ring or have a timer (at most 10,000 of them); a disabled webhook's backlog shows in
    /// its health instead.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let parts =
            futures::future::try_join_all((0..self.walk).map(|p| self.partition_stats(p))).await?;
        let mut conn = self.conn.clone();
        let workers: u64 = redis::cmd("ZCOUNT")
            .arg(self.keys.workers())
            .arg(now_ms() - 60_000)
            .arg("+inf")
            .query_async(&mut conn)
            .await?;
        let mut total = QueueStats {
            workers,
            ..QueueStats::default()
        };
        for s in parts {
            total.ready += s.ready;
            total.scheduled += s.scheduled;
            total.endpoints_ready += s.endpoints_ready;
            total.endpoints_waiting += s.endpoints_waiting;
            total.inflight += s.inflight;
            total.dead += s.dead;
        }
        Ok(total)
    }

    /// The depth of partition `p` (without the workers).
    async fn partition_stats(&self, p: u32) -> Result<QueueStats, QueueError> {
        let part = self.keys.partition(p);
        let mut conn = self.conn.clone();
        let (ring, timers, inflight, dead): (Vec<String>, Vec<String>, u64, u64) = redis::pipe()
            .cmd("ZRANGE")
            .arg(part.ring())
            .arg(0)
            .arg(9_999)
            .cmd("ZRANGE")
            .arg(part.timers())
            .arg(0)
            .arg(9_999)
            .cmd("HLEN")
            .arg(part.inflight())
            .cmd("LLEN")
            .arg(part.dead())
            .query_async(&mut conn)
            .await?;
        let (endpoints_ready, endpoints_waiting) = (ring.len() as u64, timers.len() as u64);
        let mut endpoints = ring;
        for t in timers {
            if !endpoints.contains(&t) {
                endpoints.push(t);
            }
        }
        let names: Vec<&str> = endpoints.iter().map(String::as_str).collect();
        let depth = self.depth_in(p, &names).await?;
        Ok(QueueStats {
            ready: depth.ready,
            scheduled: depth.scheduled,
            endpoints_ready,
            endpoints_waiting,
            inflight,
            dead,
            workers: 0,
        })
    }
}

/// The distinct endpoints of `(id, endpoint)` pairs, in first-seen order.
fn distinct_endpoints(held: &[(String, String)]) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for (_, e) in held {
        if !out.contains(&e.as_str()) {
            out.push(e);
        }
    }
    out
}

/// "5 days", "2 h", "30 s": a setting's duration for people.
pub(crate) fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 86_400 && s.is_multiple_of(86_400) => format!("{} days", s / 86_400),
        _ if s >= 3_600 && s.is_multiple_of(3_600) => format!("{} h", s / 3_600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{} min", s / 60),
        _ => format!("{s} s"),
    }
}

/// Records that this process uses `keys.partitions()` partitions, and returns how many
/// partitions workers must serve: the most any process has used, so that deliveries
/// already in partitions that a smaller count no longer fills are still served.
async fn register_partitions(conn: &mut RedisConn, keys: &Keys) -> Result<u32, QueueError> {
    let key = keys.partitions_used();
    let used: Option<String> = redis::cmd("GET").arg(&key).query_async(conn).await?;
    let used = used.and_then(|u| u.parse::<u32>().ok());
    let mine = keys.partitions();
    // One partition, as ever: nothing to remember.
    if used.is_none_or(|u| u < mine) && mine > 1 {
        let _: () = redis::cmd("SET")
            .arg(&key)
            .arg(mine)
            .query_async(conn)
            .await?;
    }
    Ok(used.unwrap_or(0).max(mine))
}
