//! Upgrade from the layout before endpoint queues (one ready LIST, one scheduled ZSET, one
//! in-flight HASH): what those keys still hold moves, in chunks, into the endpoint queues.
//! Workers run this at start and keep looking while old keys exist, so jobs that an older
//! worker still held when the upgrade began arrive too (its ack scheduled them in the old
//! keys, or its lease expired). Nothing is dropped: a value that is not a job goes to the
//! dead list with the reason.

use std::collections::HashMap;

use hookrelay_core::job::test_endpoint;
use hookrelay_core::{DeliveryKind, Job};

use crate::error::QueueError;
use crate::queue::Queue;
use crate::scripts;

/// Values moved per script call.
const CHUNK: usize = 200;

/// One chunk of each old key: ready jobs, scheduled jobs with their due time, in-flight ids.
type OldChunk = (Vec<Vec<u8>>, Vec<(Vec<u8>, f64)>, Vec<String>);

enum Item {
    Ready(Vec<u8>),
    Scheduled(Vec<u8>, f64),
    Inflight(String),
}

impl Queue {
    /// Whether keys of the old layout still hold anything.
    pub async fn has_legacy(&self) -> Result<bool, QueueError> {
        // Versions with the old layout did not run on a cluster.
        if self.keys().cluster() {
            return Ok(false);
        }
        let old = self.keys().legacy();
        let mut conn = self.connection();
        let n: u64 = redis::cmd("EXISTS")
            .arg(&old.ready)
            .arg(&old.scheduled)
            .arg(&old.inflight)
            .arg(&old.dead)
            .query_async(&mut conn)
            .await?;
        Ok(n > 0)
    }

    /// Moves one chunk of each old key into the endpoint queues; returns how many values
    /// moved (0 when nothing is left that can move now).
    pub async fn migrate_legacy_chunk(&self) -> Result<usize, QueueError> {
        let old = self.keys().legacy();
        let mut conn = self.connection();
        let (ready, scheduled, leased): OldChunk = redis::pipe()
            .cmd("LRANGE")
            .arg(&old.ready)
            .arg(-(CHUNK as i64))
            .arg(-1)
            .cmd("ZRANGE")
            .arg(&old.scheduled)
            .arg(0)
            .arg(CHUNK - 1)
            .arg("WITHSCORES")
            .cmd("HKEYS")
            .arg(&old.inflight)
            .query_async(&mut conn)
            .await?;
        let mut items: Vec<Item> = Vec::new();
        // The list's tail is its oldest end: move oldest first.
        items.extend(ready.into_iter().rev().map(Item::Ready));
        items.extend(scheduled.into_iter().map(|(r, s)| Item::Scheduled(r, s)));
        let inflight: Vec<Option<Vec<u8>>> = if leased.is_empty() {
            Vec::new()
        } else {
            redis::cmd("HMGET")
                .arg(&old.inflight)
                .arg(&leased[..leased.len().min(CHUNK)])
                .query_async(&mut conn)
                .await?
        };
        let mut raws: HashMap<String, Vec<u8>> = HashMap::new();
        for (id, raw) in leased.iter().zip(inflight) {
            if let Some(raw) = raw {
                raws.insert(id.clone(), raw);
                items.push(Item::Inflight(id.clone()));
            }
        }
        // Each job's endpoint: its webhook's id, read from the registry.
        let mut endpoints: Vec<String> = Vec::new();
        let mut placed: Vec<(String, Vec<u8>, usize, f64)> = Vec::new();
        let mut ids: HashMap<(String, String), Option<String>> = HashMap::new();
        for item in items {
            let (kind, value, raw, score) = match item {
                Item::Ready(raw) => ("r", raw.clone(), raw, 0.0),
                Item::Scheduled(raw, s) => ("s", raw.clone(), raw, s),
                Item::Inflight(id) => {
                    let raw = raws.remove(&id).unwrap_or_default();
                    ("i", id.into_bytes(), raw, 0.0)
                }
            };
            let endpoint = match Job::decode(&raw) {
                Ok(job) => Some(self.legacy_endpoint(&job, &mut ids).await?),
                Err(_) => None,
            };
            let index = match endpoint {
                Some(e) => match endpoints.iter().position(|x| *x == e) {
                    Some(i) => i + 1,
                    None => {
                        endpoints.push(e);
                        endpoints.len()
                    }
                },
                None => 0,
            };
            placed.push((kind.to_owned(), value, index, score));
        }
        let old_dead_waiting: u64 = redis::cmd("LLEN")
            .arg(&old.dead)
            .query_async(&mut conn)
            .await?;
        if placed.is_empty() && old_dead_waiting == 0 {
            return Ok(0);
        }
        // Old jobs have ids without a partition: they belong in partition 0.
        let mut inv = self.invocation(&scripts::MIGRATE, 0);
        inv.key(&old.ready)
            .key(&old.scheduled)
            .key(&old.inflight)
            .key(&old.holders)
            .key(&old.leases)
            .key(&old.dead);
        for e in &endpoints {
            self.endpoint_keys(&mut inv, 0, e);
        }
        inv.arg(self.endpoint_concurrency()).arg(endpoints.len());
        for e in &endpoints {
            inv.arg(e);
        }
        for (kind, value, index, score) in &placed {
            inv.arg(kind).arg(value.as_slice()).arg(*index).arg(*score);
        }
        let moved: usize = inv.invoke_async(&mut conn).await?;
        Ok(moved)
    }

    /// The failed index of every webhook (before per-webhook indexes) stays, for
    /// `recover`, until it expires: this gives it the failed retention as its expiry, once.
    pub async fn age_legacy_failed(&self) -> Result<(), QueueError> {
        if self.keys().cluster() {
            return Ok(());
        }
        let mut conn = self.connection();
        let _: i64 = redis::cmd("EXPIRE")
            .arg(self.keys().failed())
            .arg(self.retention_failed().as_secs().max(1))
            .arg("NX")
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// Moves everything the old layout holds that can move now; returns the count.
    pub async fn migrate_legacy(&self) -> Result<usize, QueueError> {
        let mut total = 0;
        loop {
            let moved = self.migrate_legacy_chunk().await?;
            total += moved;
            if moved == 0 {
                return Ok(total);
            }
        }
    }

    /// The endpoint of a job written before endpoints: its webhook's id, or a queue of its
    /// own when it is a test or its webhook no longer exists.
    async fn legacy_endpoint(
        &self,
        job: &Job,
        known: &mut HashMap<(String, String), Option<String>>,
    ) -> Result<String, QueueError> {
        if !job.endpoint.is_empty() {
            return Ok(job.endpoint.clone());
        }
        let Some(name) = job
            .webhook
            .as_deref()
            .filter(|_| job.kind != DeliveryKind::Test)
        else {
            return Ok(test_endpoint(&job.id));
        };
        let key = (job.project.to_string(), name.to_owned());
        if !known.contains_key(&key) {
            let mut conn = self.connection();
            let raw: Option<String> = redis::cmd("HGET")
                .arg(self.keys().webhooks(&job.project))
                .arg(name)
                .query_async(&mut conn)
                .await?;
            let id = raw
                .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok())
                .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned));
            known.insert(key.clone(), id);
        }
        Ok(known
            .get(&key)
            .cloned()
            .flatten()
            .unwrap_or_else(|| test_endpoint(&job.id)))
    }
}
