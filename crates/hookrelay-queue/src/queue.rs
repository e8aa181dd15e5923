//! The queue's operations over one multiplexed Redis connection: enqueue, claim, ack, lease
//! renewal, hand-back, dead-lettering, redelivery and the read side of delivery records.
//!
//! Every delivery waits in its endpoint's queue (see `hookrelay_core::keys::PartitionKeys`).
//! A claim is two steps: read which endpoints are candidates (the head of the ring, due
//! timers, expired leases), then one script that claims from exactly those, so that every
//! key a script touches is passed to it.

use std::collections::HashMap;
use std::time::Duration;

use hookrelay_core::activity;
use hookrelay_core::endpoint::{
    CIRCUIT_COOLDOWN_BASE, CIRCUIT_COOLDOWN_MAX, CIRCUIT_FAILURE_THRESHOLD, Verdict,
};
use hookrelay_core::time::now_ms;
use hookrelay_core::{AttemptRecord, DeliveryKind, DeliveryStatus, Job, Keys};
use redis::ScriptInvocation;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;

use crate::error::QueueError;
use crate::record::{DeliveryView, record_fields, view_from_fields};
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
}

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
    /// endpoint is waiting for a turn (none: do not).
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
    conn: ConnectionManager,
    client: redis::Client,
    keys: Keys,
    retention: Duration,
    retention_succeeded: Duration,
    retention_failed: Duration,
    endpoint_concurrency: u32,
    disable_after: Duration,
    /// Why an endpoint failing for `disable_after` is disabled (built once, not per ack).
    disable_reason: String,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue")
            .field("prefix", &self.keys.prefix())
            .field("retention", &self.retention)
            .finish()
    }
}

fn manager_config(response_timeout: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(response_timeout))
        .set_number_of_retries(1)
        .set_max_delay(Duration::from_secs(1))
}

impl Queue {
    /// Connects to Redis at `url`. Fails when Redis cannot be reached now; once connected,
    /// the connection re-establishes itself after Redis restarts.
    pub async fn connect(url: &str, keys: Keys) -> Result<Self, QueueError> {
        let client = redis::Client::open(url)?;
        let conn = client
            .get_connection_manager_with_config(manager_config(Duration::from_secs(5)))
            .await?;
        Ok(Self {
            conn,
            client,
            keys,
            retention: Duration::from_secs(7 * 24 * 3600),
            retention_succeeded: Duration::from_secs(7 * 24 * 3600),
            retention_failed: Duration::from_secs(7 * 24 * 3600),
            endpoint_concurrency: 64,
            disable_after: Duration::ZERO,
            disable_reason: String::new(),
        }
        .with_disable_after(Duration::from_secs(5 * 24 * 3600)))
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

    /// A script invocation with the partition's keys first.
    pub(crate) fn invocation(&self, script: &'static redis::Script) -> ScriptInvocation<'static> {
        let mut inv = script.prepare_invoke();
        for k in self.keys.partition().all() {
            inv.key(k);
        }
        inv
    }

    /// Adds an endpoint's four keys to an invocation.
    pub(crate) fn endpoint_keys(&self, inv: &mut ScriptInvocation<'_>, endpoint: &str) {
        for k in self.keys.partition().endpoint(endpoint).all() {
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
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// A new connection of its own, for a blocking command that must not stall the shared one.
    pub async fn dedicated_connection(
        &self,
        response_timeout: Duration,
    ) -> Result<ConnectionManager, QueueError> {
        Ok(self
            .client
            .get_connection_manager_with_config(manager_config(response_timeout))
            .await?)
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
        Ok(redis::cmd("GET")
            .arg(self.keys.partition().payload(project, event_id))
            .query_async(&mut conn)
            .await?)
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

    /// Enqueues the deliveries of one event in one atomic step, each into its endpoint's
    /// queue (`job.endpoint`). With an `event_id`, a second call with the same id in the
    /// project enqueues nothing and returns the first `answer`.
    /// `payload` is the event (`(event id, JSON)`) its deliveries are rendered from, stored
    /// once for all of them.
    pub async fn enqueue(
        &self,
        project: &str,
        event_id: Option<&str>,
        answer: &str,
        payload: Option<(&str, &str)>,
        deliveries: &[NewDelivery],
    ) -> Result<EnqueueOutcome, QueueError> {
        let now = now_ms();
        let idempotency_key = event_id.map(|id| self.keys.event(project, id));
        let mut inv = self.invocation(&scripts::ENQUEUE);
        inv.key(idempotency_key.as_deref().unwrap_or(""))
            .key(self.keys.deliveries(project))
            .key(
                payload
                    .map(|(id, _)| self.keys.partition().payload(project, id))
                    .unwrap_or_default(),
            );
        inv.arg(if idempotency_key.is_some() { "1" } else { "0" })
            .arg(answer)
            .arg(self.retention_secs())
            .arg(now)
            .arg(self.endpoint_concurrency)
            .arg(payload.map(|(_, json)| json).unwrap_or(""))
            .arg(self.longest_retention_secs());
        for d in deliveries {
            let job = &d.job;
            if job.endpoint.is_empty() {
                return Err(QueueError::Protocol(format!(
                    "delivery {} has no endpoint",
                    job.id
                )));
            }
            let raw = job.encode();
            let fields = record_fields(
                job,
                d.event_id.as_deref(),
                now,
                d.keep_job.then_some(raw.as_str()),
            );
            inv.key(self.keys.delivery(&job.id));
            self.endpoint_keys(&mut inv, &job.endpoint);
            inv.arg(fields.to_string())
                .arg(raw)
                .arg(&job.id)
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
    pub async fn claim(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Claimed, QueueError> {
        let part = self.keys.partition();
        let mut conn = self.conn.clone();
        // Step 1: which endpoints to look at. A timer read a little early is harmless: the
        // script checks every time against Redis's clock.
        let soon = now_ms() + 500;
        let (ring, timers, expired): (Vec<String>, Vec<String>, Vec<String>) = redis::pipe()
            .cmd("ZRANGE")
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
            .arg(REAP_CHUNK)
            .query_async(&mut conn)
            .await?;
        let mut candidates: Vec<&str> = Vec::with_capacity(ring.len() + timers.len());
        let lease_endpoints = expired
            .iter()
            .filter_map(|m| m.split_once('|').map(|(e, _)| e));
        for e in ring
            .iter()
            .map(String::as_str)
            .chain(timers.iter().map(String::as_str))
            .chain(lease_endpoints)
        {
            if !candidates.contains(&e) {
                candidates.push(e);
            }
        }
        // Step 2: claim from exactly those.
        let mut inv = self.invocation(&scripts::CLAIM);
        for e in &candidates {
            self.endpoint_keys(&mut inv, e);
        }
        inv.arg(worker)
            .arg(max)
            .arg(lease.as_millis() as u64)
            .arg(self.endpoint_concurrency)
            .arg(candidates.len());
        for e in &candidates {
            inv.arg(*e);
        }
        for m in &expired {
            inv.arg(m);
        }
        let (flat, dead, recovered, ring, wait): (Vec<Vec<u8>>, Vec<Vec<u8>>, usize, usize, i64) =
            inv.invoke_async(&mut conn).await?;
        let mut jobs = Vec::with_capacity(flat.len() / 4);
        let mut it = flat.into_iter();
        while let (Some(id), Some(raw), Some(endpoint), Some(deleted)) =
            (it.next(), it.next(), it.next(), it.next())
        {
            jobs.push(ClaimedJob {
                id: String::from_utf8_lossy(&id).into_owned(),
                raw,
                endpoint: String::from_utf8_lossy(&endpoint).into_owned(),
                deleted: deleted == b"1",
            });
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
        let id = &ack.job.id;
        let attempt_json =
            serde_json::to_string(ack.attempt).map_err(|e| QueueError::Protocol(e.to_string()))?;
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
        let mut inv = self.invocation(&scripts::ACK);
        inv.key(self.keys.delivery(id))
            .key(self.keys.attempts(id))
            .key(self.keys.partition().endpoint_failed(&ack.job.endpoint));
        self.endpoint_keys(&mut inv, &ack.job.endpoint);
        inv.key(
            self.keys
                .partition()
                .activity(&ack.job.project, now.div_euclid(60_000)),
        );
        inv.arg(ack.worker)
            .arg(id)
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
            .arg(&ack.job.project)
            .arg(ack.job.webhook.as_deref().unwrap_or(""))
            .arg(
                ack.take_next
                    .map(|l| l.as_millis().to_string())
                    .unwrap_or_default(),
            )
            .arg(activity_field)
            .arg(activity::ACTIVITY_RETENTION_SECS)
            .arg(self.retention_succeeded.as_secs().max(1))
            .arg(self.retention_failed.as_secs().max(1));
        let mut conn = self.conn.clone();
        let (settled, next, dead): (i64, Vec<Vec<u8>>, String) =
            inv.invoke_async(&mut conn).await?;
        let next = match <[Vec<u8>; 4]>::try_from(next) {
            Ok([id, raw, endpoint, deleted]) => Some(ClaimedJob {
                id: String::from_utf8_lossy(&id).into_owned(),
                raw,
                endpoint: String::from_utf8_lossy(&endpoint).into_owned(),
                deleted: deleted == b"1",
            }),
            Err(_) => None,
        };
        Ok(AckOutcome {
            settled: settled == 1,
            next,
            dead: (!dead.is_empty()).then_some(dead),
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
        if held.is_empty() {
            return Ok(Vec::new());
        }
        let mut inv = self.held_invocation(&scripts::RENEW, held);
        inv.arg(worker).arg(lease.as_millis() as u64);
        self.held_args(&mut inv, held);
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// An invocation with the keys of the endpoints of `held` after the partition's.
    fn held_invocation(
        &self,
        script: &'static redis::Script,
        held: &[(String, String)],
    ) -> ScriptInvocation<'static> {
        let mut inv = self.invocation(script);
        for e in distinct_endpoints(held) {
            self.endpoint_keys(&mut inv, e);
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
        if held.is_empty() {
            return Ok(0);
        }
        let mut inv = self.held_invocation(&scripts::RELEASE, held);
        inv.arg(worker).arg(self.endpoint_concurrency);
        self.held_args(&mut inv, held);
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Moves a held job this build cannot run to the dead list, with the reason, and marks
    /// its delivery record failed (recoverable). `false` when `worker` does not hold it.
    pub async fn dead_letter(
        &self,
        worker: &str,
        id: &str,
        endpoint: &str,
        reason: &str,
    ) -> Result<bool, QueueError> {
        let mut inv = self.invocation(&scripts::DEAD_LETTER);
        inv.key(self.keys.delivery(id))
            .key(self.keys.partition().endpoint_failed(endpoint));
        self.endpoint_keys(&mut inv, endpoint);
        inv.arg(worker)
            .arg(id)
            .arg(reason)
            .arg(endpoint)
            .arg(self.endpoint_concurrency)
            .arg(self.retention_failed.as_secs().max(1));
        let mut conn = self.conn.clone();
        let moved: i64 = inv.invoke_async(&mut conn).await?;
        Ok(moved == 1)
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
    pub async fn delivery(&self, id: &str) -> Result<Option<DeliveryView>, QueueError> {
        Ok(self
            .deliveries_by_id(&[id.to_owned()])
            .await?
            .pop()
            .flatten())
    }

    /// Reads several delivery records in one round trip, in the order given.
    pub async fn deliveries_by_id(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<DeliveryView>>, QueueError> {
        // An id with a ':' could name another kind of key (`<id>:attempts`): no such delivery.
        let plain = |id: &str| !id.is_empty() && id.len() <= 200 && !id.contains(':');
        let wanted: Vec<&String> = ids.iter().filter(|id| plain(id)).collect();
        if wanted.is_empty() {
            return Ok(ids.iter().map(|_| None).collect());
        }
        let mut pipe = redis::pipe();
        for id in &wanted {
            pipe.cmd("HGETALL").arg(self.keys.delivery(id));
            pipe.cmd("LRANGE")
                .arg(self.keys.attempts(id))
                .arg(0)
                .arg(-1);
        }
        let mut conn = self.conn.clone();
        let answers: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let mut found = Vec::with_capacity(wanted.len());
        for pair in answers.chunks(2) {
            let fields: HashMap<String, String> = redis::from_redis_value_ref(&pair[0])
                .map_err(|e| QueueError::Protocol(e.to_string()))?;
            let attempts: Vec<String> = match pair.get(1) {
                Some(v) => redis::from_redis_value_ref(v)
                    .map_err(|e| QueueError::Protocol(e.to_string()))?,
                None => Vec::new(),
            };
            found.push(view_from_fields(fields, &attempts));
        }
        let mut found = found.into_iter();
        Ok(ids
            .iter()
            .map(|id| {
                if plain(id) {
                    found.next().flatten()
                } else {
                    None
                }
            })
            .collect())
    }

    /// The ids of a project's deliveries, newest first, `offset`..`offset+limit`.
    pub async fn delivery_ids(
        &self,
        project: &str,
        offset: usize,
        limit: usize,
    ) -> Result<Vec<String>, QueueError> {
        let mut conn = self.conn.clone();
        let stop = (offset + limit.max(1) - 1) as isize;
        Ok(redis::cmd("ZREVRANGE")
            .arg(self.keys.deliveries(project))
            .arg(offset)
            .arg(stop)
            .query_async(&mut conn)
            .await?)
    }

    /// Queues one more attempt of a finished delivery (`job` is that attempt) at the back
    /// of its endpoint's queue. `payload`: the event id of the payload it was rendered from,
    /// which is kept at least as long as the delivery now.
    pub async fn redeliver(
        &self,
        job: &Job,
        payload: Option<&str>,
    ) -> Result<RedeliverOutcome, QueueError> {
        let mut inv = self.invocation(&scripts::REDELIVER);
        inv.key(self.keys.delivery(&job.id))
            .key(self.keys.partition().endpoint_failed(&job.endpoint));
        self.endpoint_keys(&mut inv, &job.endpoint);
        inv.key(
            payload
                .map(|id| self.keys.partition().payload(&job.project, id))
                .unwrap_or_default(),
        );
        inv.arg(job.encode())
            .arg(now_ms())
            .arg(&job.endpoint)
            .arg(self.endpoint_concurrency)
            .arg(self.retention_secs())
            .arg(self.longest_retention_secs());
        let mut conn = self.conn.clone();
        let r: i64 = inv.invoke_async(&mut conn).await?;
        Ok(match r {
            1 => RedeliverOutcome::Queued,
            0 => RedeliverOutcome::StillQueued,
            -2 => RedeliverOutcome::WebhookDeleted,
            _ => RedeliverOutcome::NotFound,
        })
    }

    /// A page of one endpoint's failed deliveries (`(id, failed at ms)`, oldest first) that
    /// failed at or after `from_ms`, skipping the first `skip` of them.
    pub async fn failed_page(
        &self,
        endpoint: &str,
        from_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, QueueError> {
        self.failed_page_of(
            &self.keys.partition().endpoint_failed(endpoint),
            from_ms,
            skip,
            limit,
        )
        .await
    }

    /// The same, from the failed index of every webhook that versions before per-webhook
    /// indexes wrote (empty once it expired).
    pub async fn legacy_failed_page(
        &self,
        from_ms: i64,
        skip: usize,
        limit: usize,
    ) -> Result<Vec<(String, i64)>, QueueError> {
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
        let mut conn = self.conn.clone();
        Ok(redis::pipe()
            .cmd("ZCOUNT")
            .arg(self.keys.partition().endpoint_failed(endpoint))
            .arg(since_ms)
            .arg("+inf")
            .cmd("ZCOUNT")
            .arg(self.keys.failed())
            .arg(since_ms)
            .arg("+inf")
            .query_async(&mut conn)
            .await?)
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
        let part = self.keys.partition();
        let mut conn = self.conn.clone();
        let (ring, timers, inflight, dead, workers): (Vec<String>, Vec<String>, u64, u64, u64) =
            redis::pipe()
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
                .cmd("ZCOUNT")
                .arg(self.keys.workers())
                .arg(now_ms() - 60_000)
                .arg("+inf")
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
        let depth = self.depth(&names).await?;
        let (ready, scheduled) = (depth.ready, depth.scheduled);
        Ok(QueueStats {
            ready,
            scheduled,
            endpoints_ready,
            endpoints_waiting,
            inflight,
            dead,
            workers,
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
