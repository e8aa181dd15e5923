//! The Redis key schema: every key hookrelay reads or writes is built here, under one prefix.
//! The README's redis-cli guide documents each of them.

use crate::names::DeliveryId;

/// Builds every Redis key from the configured prefix (`HOOKRELAY_KEY_PREFIX`), the number
/// of queue partitions (`HOOKRELAY_PARTITIONS`) and whether Redis is a cluster.
///
/// The layout on one Redis with one partition is the layout of earlier versions, so an
/// upgrade finds everything where it was. On a cluster, every key a script or pipeline
/// touches together carries the same hash tag: a partition's (`{q<n>}`: its endpoints'
/// queues, their delivery records, attempts, indexes and events), a project's webhook
/// registry (`{<project>}`), or the tokens' (`{tokens}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
    partitions: u32,
    cluster: bool,
}

/// The most partitions a queue may have.
pub const MAX_PARTITIONS: u32 = 1024;

impl Keys {
    /// Keys under `prefix`, one partition, on one Redis.
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            partitions: 1,
            cluster: false,
        }
    }

    /// The same keys with `partitions` queue partitions (1..=[`MAX_PARTITIONS`]), on a
    /// Redis Cluster when `cluster`.
    pub fn with_layout(mut self, partitions: u32, cluster: bool) -> Self {
        self.partitions = partitions.clamp(1, MAX_PARTITIONS);
        self.cluster = cluster;
        self
    }

    /// The prefix itself.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// How many partitions new deliveries are spread over.
    pub fn partitions(&self) -> u32 {
        self.partitions
    }

    /// Whether the keys are laid out for a Redis Cluster.
    pub fn cluster(&self) -> bool {
        self.cluster
    }

    /// The partition an endpoint's new deliveries go to: a hash of its id.
    pub fn endpoint_partition(&self, endpoint: &str) -> u32 {
        spread(endpoint.as_bytes(), &[], self.partitions)
    }

    /// A new delivery id in the partition of `endpoint`. With one partition on one Redis it
    /// is a bare UUID, as in earlier versions; otherwise `<partition>.<uuid>`.
    pub fn new_delivery_id(&self, endpoint: &str) -> DeliveryId {
        let partitioned = self.partitions > 1 || self.cluster;
        DeliveryId::generate(partitioned.then(|| self.endpoint_partition(endpoint)))
    }

    /// The hash tag (`{q<n>}`) of an event's idempotency answer and payload on a cluster: a
    /// hash of the project and event id over [`MAX_PARTITIONS`], so that a retry finds them
    /// whichever webhooks match by then and however many partitions there are. On one Redis
    /// they stay under `{q0}`, where earlier versions put them.
    pub fn event_partition(&self, project: &str, event_id: &str) -> u32 {
        if self.cluster {
            spread(project.as_bytes(), event_id.as_bytes(), MAX_PARTITIONS)
        } else {
            0
        }
    }

    /// The base of a key a cluster needs in `partition`'s slot, or the plain prefix of one
    /// that keeps its earlier name on one Redis.
    fn placed(&self, partition: u32) -> String {
        if self.cluster {
            format!("{}:{{q{partition}}}", self.prefix)
        } else {
            self.prefix.clone()
        }
    }

    /// The tag of a project's registry keys on a cluster (`{<project>}`).
    fn project_tag(&self, project: &str) -> String {
        if self.cluster {
            format!("{{{project}}}")
        } else {
            project.to_owned()
        }
    }

    /// HASH: webhook name → webhook JSON (secrets included), one per project.
    pub fn webhooks(&self, project: &str) -> String {
        format!("{}:webhooks:{}", self.prefix, self.project_tag(project))
    }

    /// STRING: a token that changes with every change to a project's webhooks; lets API
    /// processes keep parsed webhooks in memory and know when to read them again.
    pub fn webhooks_version(&self, project: &str) -> String {
        format!(
            "{}:webhooks-version:{}",
            self.prefix,
            self.project_tag(project)
        )
    }

    /// STRING: the most partitions any process of this queue has used, so that workers
    /// keep serving partitions that a smaller count no longer fills.
    pub fn partitions_used(&self) -> String {
        format!("{}:partitions", self.prefix)
    }

    /// SET of projects that have webhooks.
    pub fn projects(&self) -> String {
        format!("{}:projects", self.prefix)
    }

    /// The Pub/Sub pattern of every partition's signal channel (the signal list's name,
    /// which the scripts publish to when an endpoint joins a ring that was empty).
    pub fn signal_pattern(&self) -> String {
        let mut escaped = String::with_capacity(self.prefix.len());
        for c in self.prefix.chars() {
            if matches!(c, '*' | '?' | '[' | ']' | '\\') {
                escaped.push('\\');
            }
            escaped.push(c);
        }
        format!("{escaped}:{{q*}}:signal")
    }

    /// The keys of queue partition `n`. Every key of one partition carries the same hash
    /// tag (`{q<n>}`), so each queue script touches a single Redis Cluster slot.
    pub fn partition(&self, n: u32) -> PartitionKeys {
        PartitionKeys {
            base: format!("{}:{{q{n}}}", self.prefix),
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

    /// HASH: one delivery's record (status, webhook, event, attempts count, …), in its
    /// partition's slot on a cluster.
    pub fn delivery(&self, id: &DeliveryId) -> String {
        format!("{}:delivery:{id}", self.placed(id.partition()))
    }

    /// LIST of attempt JSON of one delivery, oldest first.
    pub fn attempts(&self, id: &DeliveryId) -> String {
        format!("{}:attempts", self.delivery(id))
    }

    /// ZSET: delivery id → creation time (ms), per project; the deliveries list. On one
    /// Redis one index holds the deliveries of every partition; on a cluster each partition
    /// has its own, and a listing merges them.
    pub fn deliveries(&self, project: &str, partition: u32) -> String {
        format!("{}:deliveries:{project}", self.placed(partition))
    }

    /// ZSET: delivery id → time it failed for good (ms), of every webhook: the failed index
    /// of versions before per-webhook indexes, read by `recover` until it expires.
    pub fn failed(&self) -> String {
        format!("{}:failed", self.prefix)
    }

    /// STRING: the answer given to an event id already published (idempotency), in the
    /// event's partition on a cluster.
    pub fn event(&self, project: &str, event_id: &str) -> String {
        format!(
            "{}:event:{project}:{event_id}",
            self.placed(self.event_partition(project, event_id))
        )
    }

    /// STRING: one published event (JSON: id, project, event, object, data, result,
    /// created_at), stored once and shared by its deliveries, which are rendered again from
    /// it when redelivered. Kept as long as the longest retention.
    pub fn payload(&self, project: &str, event_id: &str) -> String {
        format!(
            "{}:payload:{project}:{event_id}",
            self.partition(self.event_partition(project, event_id)).base
        )
    }

    /// HASH: token name → token record JSON (`name`, `role`, `created_at`, `hash`; never
    /// the token), one per project.
    pub fn tokens(&self, project: &str) -> String {
        format!("{}:tokens:{project}", self.tokens_base())
    }

    /// STRING: what the token with this SHA-256 hash grants (`project`, `name`, `role`).
    pub fn token(&self, hash: &str) -> String {
        format!("{}:token:{hash}", self.tokens_base())
    }

    fn tokens_base(&self) -> String {
        if self.cluster {
            format!("{}:{{tokens}}", self.prefix)
        } else {
            self.prefix.clone()
        }
    }
}

/// A stable hash (FNV-1a) of `a` and `b`, modulo `n`.
fn spread(a: &[u8], b: &[u8], n: u32) -> u32 {
    if n <= 1 {
        return 0;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in a.iter().chain([0u8].iter()).chain(b) {
        h ^= u64::from(*byte);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h % u64::from(n)) as u32
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_partition_on_one_redis_keeps_the_names_of_earlier_versions() {
        let k = Keys::new("hr");
        let id = k.new_delivery_id("ep1");
        assert_eq!(id.len(), 36, "a bare UUID: {id}");
        assert_eq!(k.delivery(&id), format!("hr:delivery:{id}"));
        assert_eq!(k.attempts(&id), format!("hr:delivery:{id}:attempts"));
        assert_eq!(k.deliveries("demo", 0), "hr:deliveries:demo");
        assert_eq!(k.event("demo", "e1"), "hr:event:demo:e1");
        assert_eq!(k.payload("demo", "e1"), "hr:{q0}:payload:demo:e1");
        assert_eq!(k.webhooks("demo"), "hr:webhooks:demo");
        assert_eq!(k.token("abc"), "hr:token:abc");
        assert_eq!(k.partition(0).ring(), "hr:{q0}:ring");
    }

    #[test]
    fn on_a_cluster_what_a_script_touches_shares_a_hash_tag() {
        let k = Keys::new("hr").with_layout(16, true);
        let id = k.new_delivery_id("ep1");
        let p = k.endpoint_partition("ep1");
        assert!(id.starts_with(&format!("{p}.")), "{id}");
        assert_eq!(id.partition(), p);
        let tag = format!("{{q{p}}}");
        for key in [
            k.delivery(&id),
            k.attempts(&id),
            k.deliveries("demo", p),
            k.partition(p).ring(),
            k.partition(p).endpoint("ep1").ready,
        ] {
            assert!(key.contains(&tag), "{key} has {tag}");
        }
        let event_tag = format!("{{q{}}}", k.event_partition("demo", "e1"));
        assert!(k.event("demo", "e1").contains(&event_tag));
        assert!(k.payload("demo", "e1").contains(&event_tag));
        assert_eq!(k.webhooks("demo"), "hr:webhooks:{demo}");
        assert_eq!(k.webhooks_version("demo"), "hr:webhooks-version:{demo}");
        assert_eq!(k.tokens("demo"), "hr:{tokens}:tokens:demo");
        assert_eq!(k.token("abc"), "hr:{tokens}:token:abc");
    }

    #[test]
    fn partitions_spread_endpoints() {
        let k = Keys::new("hr").with_layout(8, false);
        let used: std::collections::HashSet<u32> = (0..200)
            .map(|i| k.endpoint_partition(&format!("endpoint-{i}")))
            .collect();
        assert_eq!(used.len(), 8);
        assert_eq!(Keys::new("a*b").signal_pattern(), "a\\*b:{q*}:signal");
    }
}
