//! The Redis key schema: every key hookrelay reads or writes is built here, under one prefix.
//! The README's redis-cli guide documents each of them.

/// Builds every Redis key from the configured prefix (`HOOKRELAY_KEY_PREFIX`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// HASH: webhook name → webhook JSON (secrets included), one per project.
    pub fn webhooks(&self, project: &str) -> String {
        format!("{}:webhooks:{project}", self.prefix)
    }

    /// STRING: a token that changes with every change to a project's webhooks; lets API
    /// processes keep parsed webhooks in memory and know when to read them again.
    pub fn webhooks_version(&self, project: &str) -> String {
        format!("{}:webhooks-version:{project}", self.prefix)
    }

    /// SET of projects that have webhooks.
    pub fn projects(&self) -> String {
        format!("{}:projects", self.prefix)
    }

    /// The queue's partition keys. Every key of one partition carries the same hash tag
    /// (`{q0}`), so each queue script touches a single Redis Cluster slot; hookrelay runs
    /// one partition today.
    pub fn partition(&self) -> PartitionKeys {
        PartitionKeys {
            base: format!("{}:{{q0}}", self.prefix),
        }
    }

    /// The pre-endpoint queue layout (one ready LIST, one scheduled ZSET, one in-flight
    /// HASH), read only to move what it still holds into the endpoint queues.
    pub fn legacy(&self) -> LegacyKeys {
        LegacyKeys {
            ready: format!("{}:queue:ready", self.prefix),
            scheduled: format!("{}:queue:scheduled", self.prefix),
            inflight: format!("{}:queue:inflight", self.prefix),
            holders: format!("{}:queue:holders", self.prefix),
            leases: format!("{}:queue:leases", self.prefix),
            dead: format!("{}:queue:dead", self.prefix),
        }
    }

    /// ZSET: worker name → last heartbeat (ms).
    pub fn workers(&self) -> String {
        format!("{}:workers", self.prefix)
    }

    /// HASH: one delivery's record (status, webhook, event, attempts count, …).
    pub fn delivery(&self, id: &str) -> String {
        format!("{}:delivery:{id}", self.prefix)
    }

    /// LIST of attempt JSON of one delivery, oldest first.
    pub fn attempts(&self, id: &str) -> String {
        format!("{}:delivery:{id}:attempts", self.prefix)
    }

    /// ZSET: delivery id → creation time (ms), per project; the deliveries list.
    pub fn deliveries(&self, project: &str) -> String {
        format!("{}:deliveries:{project}", self.prefix)
    }

    /// ZSET: delivery id → time it failed for good (ms), of every webhook: the failed index
    /// of versions before per-webhook indexes, read by `recover` until it expires.
    pub fn failed(&self) -> String {
        format!("{}:failed", self.prefix)
    }

    /// STRING: the answer given to an event id already published (idempotency).
    pub fn event(&self, project: &str, event_id: &str) -> String {
        format!("{}:event:{project}:{event_id}", self.prefix)
    }

    /// HASH: token name → token record JSON (`name`, `role`, `created_at`, `hash`; never
    /// the token), one per project.
    pub fn tokens(&self, project: &str) -> String {
        format!("{}:tokens:{project}", self.prefix)
    }

    /// STRING: what the token with this SHA-256 hash grants (`project`, `name`, `role`).
    pub fn token(&self, hash: &str) -> String {
        format!("{}:token:{hash}", self.prefix)
    }
}

/// The keys of the queue's partition: the ring of endpoints that can be served, their
/// timers, the leases of claimed jobs, and each endpoint's own queue and state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionKeys {
    base: String,
}

/// The keys of one endpoint's queue, in the order every queue script takes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointKeys {
    /// HASH: the endpoint's settings and health (see the README's Redis table).
    pub state: String,
    /// LIST of job JSON ready to run (LPUSH in, RPOP out: oldest first).
    pub ready: String,
    /// ZSET of job JSON waiting for a retry, scored by due time (ms).
    pub scheduled: String,
    /// ZSET: delivery id → lease deadline (ms) of the endpoint's jobs in flight; counting
    /// the unexpired ones is the endpoint's concurrency, so a dead worker's slots come back
    /// by themselves.
    pub leases: String,
}

impl EndpointKeys {
    /// The four keys, in script order.
    pub fn all(&self) -> [&str; 4] {
        [&self.state, &self.ready, &self.scheduled, &self.leases]
    }
}

impl PartitionKeys {
    /// The partition's keys every queue script takes first, in this order: ring, timers,
    /// leases, inflight, holders, signal, dead, outbox, meta.
    pub fn all(&self) -> [String; 9] {
        [
            self.ring(),
            self.timers(),
            self.leases(),
            self.inflight(),
            self.holders(),
            self.signal(),
            self.dead(),
            self.outbox(),
            self.meta(),
        ]
    }

    /// ZSET: endpoint → turn. The endpoints that have ready jobs and may be served now
    /// (enabled, under their concurrency cap and rate limit, not paused, circuit not open),
    /// served lowest turn first; a served endpoint goes to the back.
    pub fn ring(&self) -> String {
        format!("{}:ring", self.base)
    }

    /// ZSET: endpoint → time (ms) it must be looked at again: a due retry, the end of a
    /// pause or circuit cooldown, a freed rate-limit slot, a lease deadline at its cap.
    pub fn timers(&self) -> String {
        format!("{}:timers", self.base)
    }

    /// ZSET: `<endpoint>|<delivery id>` → lease deadline (ms) of every claimed job.
    pub fn leases(&self) -> String {
        format!("{}:leases", self.base)
    }

    /// HASH: delivery id → job JSON, for jobs a worker holds.
    pub fn inflight(&self) -> String {
        format!("{}:inflight", self.base)
    }

    /// HASH: delivery id → `<worker>#<attempt>` holding it.
    pub fn holders(&self) -> String {
        format!("{}:holders", self.base)
    }

    /// LIST with at most one element while the ring has endpoints: idle workers block on
    /// it (`BLMOVE signal signal`) and wake when work arrives.
    pub fn signal(&self) -> String {
        format!("{}:signal", self.base)
    }

    /// LIST of `{"reason","at","raw"}`: values found in the queue that are not runnable jobs.
    pub fn dead(&self) -> String {
        format!("{}:dead", self.base)
    }

    /// LIST of notices (JSON) of webhooks the queue disabled, waiting to be announced.
    pub fn outbox(&self) -> String {
        format!("{}:outbox", self.base)
    }

    /// HASH of the partition's counters (`seq`, the last turn given in the ring).
    pub fn meta(&self) -> String {
        format!("{}:meta", self.base)
    }

    /// HASH: one project's activity in one minute (`minute` = ms since the epoch / 60,000):
    /// outcome counters and latency buckets (see `activity`), kept two hours.
    pub fn activity(&self, project: &str, minute: i64) -> String {
        format!("{}:activity:{project}:{minute}", self.base)
    }

    /// ZSET: delivery id → time it failed for good (ms), of one endpoint: what `recover`
    /// reads, so that failures of other webhooks cost it nothing.
    pub fn endpoint_failed(&self, endpoint: &str) -> String {
        format!("{}:ep:{endpoint}:failed", self.base)
    }

    /// HASH: one recovery's progress (`project`, `webhook`, `since`, `state`, `total`,
    /// `scanned`, `requeued`, `skipped`, `started_at`, `updated_at`, `error`), kept a day.
    pub fn recovery(&self, id: &str) -> String {
        format!("{}:recovery:{id}", self.base)
    }

    /// The keys of one endpoint's queue.
    pub fn endpoint(&self, endpoint: &str) -> EndpointKeys {
        let base = format!("{}:ep:{endpoint}", self.base);
        EndpointKeys {
            ready: format!("{base}:ready"),
            scheduled: format!("{base}:scheduled"),
            leases: format!("{base}:leases"),
            state: base,
        }
    }
}

/// The keys of the pre-endpoint queue layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyKeys {
    /// LIST of job JSON.
    pub ready: String,
    /// ZSET of job JSON by due time.
    pub scheduled: String,
    /// HASH id → job JSON.
    pub inflight: String,
    /// HASH id → holder.
    pub holders: String,
    /// ZSET id → lease deadline.
    pub leases: String,
    /// LIST of dead values.
    pub dead: String,
}
