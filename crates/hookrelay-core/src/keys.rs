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

    /// LIST of job JSON ready to run (LPUSH in, RPOP out: oldest first).
    pub fn ready(&self) -> String {
        format!("{}:queue:ready", self.prefix)
    }

    /// ZSET of job JSON waiting for a retry, scored by due time (ms).
    pub fn scheduled(&self) -> String {
        format!("{}:queue:scheduled", self.prefix)
    }

    /// HASH: delivery id → job JSON, for jobs a worker holds.
    pub fn inflight(&self) -> String {
        format!("{}:queue:inflight", self.prefix)
    }

    /// HASH: delivery id → name of the worker holding it.
    pub fn holders(&self) -> String {
        format!("{}:queue:holders", self.prefix)
    }

    /// ZSET: delivery id → lease deadline (ms) of each in-flight job.
    pub fn leases(&self) -> String {
        format!("{}:queue:leases", self.prefix)
    }

    /// LIST of `{"reason","at","raw"}`: values found in the queue that are not runnable jobs.
    pub fn dead(&self) -> String {
        format!("{}:queue:dead", self.prefix)
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

    /// ZSET: delivery id → time it failed for good (ms); what `recover` requeues.
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
