//! The queue's operations over one multiplexed Redis connection: enqueue, claim, ack, lease
//! renewal, hand-back, dead-lettering, redelivery and the read side of delivery records.

use std::collections::HashMap;
use std::time::Duration;

use hookrelay_core::delivery::ResponseRecord;
use hookrelay_core::time::now_ms;
use hookrelay_core::{AttemptRecord, DeliveryKind, DeliveryStatus, Job, Keys};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Serialize;

use crate::error::QueueError;
use crate::scripts;

/// How many attempt records are kept per delivery (the newest).
pub const MAX_ATTEMPT_RECORDS: usize = 100;
/// How many due retries one claim promotes at most.
const PROMOTE_CHUNK: usize = 1000;
/// How many expired leases one claim hands back at most.
const REAP_CHUNK: usize = 200;

/// A delivery to enqueue: its first job and the facts its record starts with.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The first attempt.
    pub job: Job,
    /// The event id it came from, if any.
    pub event_id: Option<String>,
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
    /// Due retries moved to the ready list.
    pub promoted: usize,
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
}

/// A delivery record as read back.
#[derive(Debug, Clone, Serialize)]
pub struct DeliveryView {
    /// Delivery id.
    pub id: String,
    /// Project.
    pub project: String,
    /// Webhook name, if the delivery belongs to a saved webhook.
    pub webhook: Option<String>,
    /// Event name.
    pub event: String,
    /// Event id.
    pub event_id: Option<String>,
    /// Delivery or test.
    pub kind: DeliveryKind,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Every attempt, oldest first.
    pub attempts: Vec<AttemptRecord>,
    /// When it was created (ms).
    pub created_at_ms: i64,
    /// When it last changed (ms).
    pub updated_at_ms: i64,
    /// When the next attempt is due (ms), while one is.
    pub next_attempt_at_ms: Option<i64>,
    /// Error of the last attempt.
    pub last_error: Option<String>,
    /// Status code of the last attempt.
    pub last_status_code: Option<u16>,
    /// What was kept of the last answer.
    pub response: Option<ResponseRecord>,
    /// The job as first enqueued (secrets inside: never shown to clients).
    #[serde(skip)]
    pub job: Option<String>,
}

/// Queue depth, for `/metrics` and operators.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueStats {
    /// Jobs ready to run.
    pub ready: u64,
    /// Retries waiting for their time.
    pub scheduled: u64,
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
        })
    }

    /// How long delivery records, test records and idempotency answers are kept.
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = retention.max(Duration::from_secs(1));
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

    fn retention_secs(&self) -> u64 {
        self.retention.as_secs().max(1)
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), QueueError> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }

    /// Enqueues the deliveries of one event in one atomic step. With `idempotency_key`, a
    /// second call with the same key enqueues nothing and returns the first `answer`.
    pub async fn enqueue(
        &self,
        project: &str,
        idempotency_key: Option<&str>,
        answer: &str,
        deliveries: &[NewDelivery],
    ) -> Result<EnqueueOutcome, QueueError> {
        let now = now_ms();
        let mut inv = scripts::ENQUEUE.prepare_invoke();
        inv.key(idempotency_key.unwrap_or(""))
            .key(self.keys.ready())
            .key(self.keys.deliveries(project));
        inv.arg(if idempotency_key.is_some() { "1" } else { "0" })
            .arg(answer)
            .arg(self.retention_secs())
            .arg(now);
        for d in deliveries {
            let job = &d.job;
            let raw = job.encode();
            let fields = serde_json::json!([
                "id",
                job.id,
                "project",
                job.project,
                "webhook",
                job.webhook.clone().unwrap_or_default(),
                "event",
                job.event,
                "event_id",
                d.event_id.clone().unwrap_or_default(),
                "kind",
                job.kind.as_str(),
                "status",
                DeliveryStatus::Pending.as_str(),
                "attempts",
                "0",
                "created_at",
                now.to_string(),
                "updated_at",
                now.to_string(),
                "next_attempt_at",
                now.to_string(),
                "last_error",
                "",
                "last_status_code",
                "",
                "response",
                "",
                "job",
                raw,
            ]);
            inv.key(self.keys.delivery(&job.id));
            inv.arg(fields.to_string()).arg(raw).arg(&job.id);
        }
        let mut conn = self.conn.clone();
        let (fresh, stored): (i64, String) = inv.invoke_async(&mut conn).await?;
        Ok(if fresh == 1 {
            EnqueueOutcome::Enqueued(stored)
        } else {
            EnqueueOutcome::Duplicate(stored)
        })
    }

    /// Claims up to `max` ready jobs for `worker`, each under a lease of `lease`. On the way
    /// it hands back jobs whose lease expired and promotes due retries.
    pub async fn claim(
        &self,
        worker: &str,
        max: usize,
        lease: Duration,
    ) -> Result<Claimed, QueueError> {
        let mut conn = self.conn.clone();
        let (flat, dead, recovered, promoted): (Vec<Vec<u8>>, Vec<Vec<u8>>, usize, usize) =
            scripts::CLAIM
                .key(self.keys.ready())
                .key(self.keys.scheduled())
                .key(self.keys.inflight())
                .key(self.keys.holders())
                .key(self.keys.leases())
                .key(self.keys.dead())
                .arg(worker)
                .arg(max)
                .arg(lease.as_millis() as u64)
                .arg(PROMOTE_CHUNK)
                .arg(REAP_CHUNK)
                .invoke_async(&mut conn)
                .await?;
        let mut jobs = Vec::with_capacity(flat.len() / 2);
        let mut it = flat.into_iter();
        while let (Some(id), Some(raw)) = (it.next(), it.next()) {
            jobs.push(ClaimedJob {
                id: String::from_utf8_lossy(&id).into_owned(),
                raw,
            });
        }
        Ok(Claimed {
            jobs,
            dead: dead
                .iter()
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .collect(),
            recovered,
            promoted,
        })
    }

    /// Records an attempt and settles its job. Returns `false` when the worker no longer
    /// held the job (its lease had expired): the attempt is recorded, the queue untouched.
    pub async fn ack(&self, ack: &Ack<'_>) -> Result<bool, QueueError> {
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
        let mut conn = self.conn.clone();
        let settled: i64 = scripts::ACK
            .key(self.keys.inflight())
            .key(self.keys.holders())
            .key(self.keys.leases())
            .key(self.keys.scheduled())
            .key(self.keys.delivery(id))
            .key(self.keys.attempts(id))
            .key(self.keys.failed())
            .arg(ack.worker)
            .arg(id)
            .arg(now_ms())
            .arg(ack.status.as_str())
            .arg(attempt_json)
            .arg(ack.job.attempt)
            .arg(next_at)
            .arg(next_raw)
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
            .invoke_async(&mut conn)
            .await?;
        Ok(settled == 1)
    }

    /// Extends the leases of the jobs `worker` holds and records its heartbeat. Returns the
    /// ids another worker holds now (settled ones are simply skipped).
    pub async fn renew(
        &self,
        worker: &str,
        ids: &[String],
        lease: Duration,
    ) -> Result<Vec<String>, QueueError> {
        let mut inv = scripts::RENEW.prepare_invoke();
        inv.key(self.keys.holders())
            .key(self.keys.leases())
            .key(self.keys.workers());
        inv.arg(worker).arg(lease.as_millis() as u64);
        for id in ids {
            inv.arg(id);
        }
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Hands jobs that `worker` holds but never started back to the front of the queue.
    pub async fn release(&self, worker: &str, ids: &[String]) -> Result<usize, QueueError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let mut inv = scripts::RELEASE.prepare_invoke();
        inv.key(self.keys.inflight())
            .key(self.keys.holders())
            .key(self.keys.leases())
            .key(self.keys.ready());
        inv.arg(worker);
        for id in ids {
            inv.arg(id);
        }
        let mut conn = self.conn.clone();
        Ok(inv.invoke_async(&mut conn).await?)
    }

    /// Moves a held job this build cannot run to the dead list, with the reason, and marks
    /// its delivery record failed. `false` when `worker` does not hold it.
    pub async fn dead_letter(
        &self,
        worker: &str,
        id: &str,
        reason: &str,
    ) -> Result<bool, QueueError> {
        let mut conn = self.conn.clone();
        let moved: i64 = scripts::DEAD_LETTER
            .key(self.keys.inflight())
            .key(self.keys.holders())
            .key(self.keys.leases())
            .key(self.keys.dead())
            .key(self.keys.delivery(id))
            .arg(worker)
            .arg(id)
            .arg(reason)
            .arg(now_ms())
            .invoke_async(&mut conn)
            .await?;
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

    /// Queues one more attempt of a finished delivery (`job` is that attempt).
    pub async fn redeliver(&self, job: &Job) -> Result<RedeliverOutcome, QueueError> {
        let mut conn = self.conn.clone();
        let r: i64 = scripts::REDELIVER
            .key(self.keys.delivery(&job.id))
            .key(self.keys.ready())
            .key(self.keys.failed())
            .arg(job.encode())
            .arg(now_ms())
            .invoke_async(&mut conn)
            .await?;
        Ok(match r {
            1 => RedeliverOutcome::Queued,
            0 => RedeliverOutcome::StillQueued,
            _ => RedeliverOutcome::NotFound,
        })
    }

    /// Ids of deliveries that failed for good at or after `since_ms`, oldest first.
    pub async fn failed_since(&self, since_ms: i64) -> Result<Vec<String>, QueueError> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("ZRANGEBYSCORE")
            .arg(self.keys.failed())
            .arg(since_ms)
            .arg("+inf")
            .query_async(&mut conn)
            .await?)
    }

    /// Queue depth.
    pub async fn stats(&self) -> Result<QueueStats, QueueError> {
        let mut conn = self.conn.clone();
        let (ready, scheduled, inflight, dead, workers): (u64, u64, u64, u64, u64) = redis::pipe()
            .cmd("LLEN")
            .arg(self.keys.ready())
            .cmd("ZCARD")
            .arg(self.keys.scheduled())
            .cmd("HLEN")
            .arg(self.keys.inflight())
            .cmd("LLEN")
            .arg(self.keys.dead())
            .cmd("ZCOUNT")
            .arg(self.keys.workers())
            .arg(now_ms() - 60_000)
            .arg("+inf")
            .query_async(&mut conn)
            .await?;
        Ok(QueueStats {
            ready,
            scheduled,
            inflight,
            dead,
            workers,
        })
    }
}

fn non_empty(fields: &HashMap<String, String>, name: &str) -> Option<String> {
    fields.get(name).filter(|v| !v.is_empty()).cloned()
}

fn view_from_fields(fields: HashMap<String, String>, attempts: &[String]) -> Option<DeliveryView> {
    let id = non_empty(&fields, "id")?;
    let num = |name: &str| non_empty(&fields, name).and_then(|v| v.parse::<i64>().ok());
    Some(DeliveryView {
        project: non_empty(&fields, "project").unwrap_or_default(),
        webhook: non_empty(&fields, "webhook"),
        event: non_empty(&fields, "event").unwrap_or_default(),
        event_id: non_empty(&fields, "event_id"),
        kind: match fields.get("kind").map(String::as_str) {
            Some("test") => DeliveryKind::Test,
            _ => DeliveryKind::Delivery,
        },
        status: fields
            .get("status")
            .and_then(|s| DeliveryStatus::parse(s))
            .unwrap_or(DeliveryStatus::Pending),
        attempts: attempts
            .iter()
            .filter_map(|a| serde_json::from_str(a).ok())
            .collect(),
        created_at_ms: num("created_at").unwrap_or_default(),
        updated_at_ms: num("updated_at").unwrap_or_default(),
        next_attempt_at_ms: num("next_attempt_at"),
        last_error: non_empty(&fields, "last_error"),
        last_status_code: num("last_status_code").and_then(|c| u16::try_from(c).ok()),
        response: non_empty(&fields, "response").and_then(|r| serde_json::from_str(&r).ok()),
        job: non_empty(&fields, "job"),
        id,
    })
}
