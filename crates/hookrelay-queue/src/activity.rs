//! A project's recent activity, for the console's overview: deliveries per minute by
//! outcome (counted by the ack script), latency quantiles, and the depth of its endpoints'
//! queues.

use hookrelay_core::activity::{MinuteCounts, latency_quantile};
use hookrelay_core::time::now_ms;
use serde::Serialize;

use crate::error::QueueError;
use crate::queue::Queue;

/// One minute of a project's activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityMinute {
    /// Start of the minute (ms since the epoch).
    pub minute_ms: i64,
    /// What was counted in it.
    pub counts: MinuteCounts,
}

/// A project's recent activity.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// One entry per minute, oldest first; the last one is the current minute.
    pub minutes: Vec<ActivityMinute>,
    /// Median publish → delivered latency (ms) over those minutes.
    pub p50_ms: Option<f64>,
    /// 99th percentile of the same.
    pub p99_ms: Option<f64>,
}

/// Jobs waiting or running in some endpoints' queues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Depth {
    /// Ready to run.
    pub ready: u64,
    /// Waiting for a retry's time.
    pub scheduled: u64,
    /// Being attempted now.
    pub in_flight: u64,
}

impl Queue {
    /// The last `minutes` minutes of `project`'s activity (at most 120: what is kept).
    pub async fn activity(&self, project: &str, minutes: u32) -> Result<Activity, QueueError> {
        let minutes = i64::from(minutes.clamp(1, 120));
        let now_minute = now_ms().div_euclid(60_000);
        let first = now_minute - minutes + 1;
        // Each partition counts its own deliveries: the minutes of every one, added up.
        let reads = (0..self.partitions_walked()).map(|p| {
            let part = self.keys().partition(p);
            let mut pipe = redis::pipe();
            for m in first..=now_minute {
                pipe.cmd("HGETALL").arg(part.activity(project, m));
            }
            let mut conn = self.connection();
            async move { pipe.query_async::<Vec<Vec<(String, u64)>>>(&mut conn).await }
        });
        let mut raw: Vec<Vec<(String, u64)>> = Vec::new();
        for fields in futures::future::try_join_all(reads).await? {
            if raw.is_empty() {
                raw = fields;
            } else {
                for (into, more) in raw.iter_mut().zip(fields) {
                    into.extend(more);
                }
            }
        }
        let mut total = Vec::new();
        let minutes: Vec<ActivityMinute> = (first..=now_minute)
            .zip(raw)
            .map(|(m, fields)| {
                let counts =
                    MinuteCounts::from_fields(fields.iter().map(|(k, v)| (k.as_str(), *v)));
                if total.is_empty() {
                    total = vec![0; counts.latency.len()];
                }
                for (t, n) in total.iter_mut().zip(&counts.latency) {
                    *t += n;
                }
                ActivityMinute {
                    minute_ms: m * 60_000,
                    counts,
                }
            })
            .collect();
        Ok(Activity {
            minutes,
            p50_ms: latency_quantile(&total, 0.5),
            p99_ms: latency_quantile(&total, 0.99),
        })
    }

    /// How many jobs wait and run in these endpoints' queues (each in its partition).
    pub async fn depth(&self, endpoints: &[&str]) -> Result<Depth, QueueError> {
        let mut groups: Vec<(u32, Vec<&str>)> = Vec::new();
        for e in endpoints {
            let p = self.keys().endpoint_partition(e);
            match groups.iter_mut().find(|(q, _)| *q == p) {
                Some((_, g)) => g.push(e),
                None => groups.push((p, vec![e])),
            }
        }
        let mut depth = Depth::default();
        for (p, group) in groups {
            let d = self.depth_in(p, &group).await?;
            depth.ready += d.ready;
            depth.scheduled += d.scheduled;
            depth.in_flight += d.in_flight;
        }
        Ok(depth)
    }

    /// How many jobs wait and run in these endpoints' queues in partition `p`.
    pub(crate) async fn depth_in(&self, p: u32, endpoints: &[&str]) -> Result<Depth, QueueError> {
        let part = self.keys().partition(p);
        let now = now_ms();
        let mut depth = Depth::default();
        let mut conn = self.connection();
        for chunk in endpoints.chunks(500) {
            let mut pipe = redis::pipe();
            for e in chunk {
                let k = part.endpoint(e);
                pipe.cmd("LLEN")
                    .arg(&k.ready)
                    .cmd("ZCARD")
                    .arg(&k.scheduled)
                    .cmd("ZCOUNT")
                    .arg(&k.leases)
                    .arg(now)
                    .arg("+inf");
            }
            let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
            for c in counts.chunks(3) {
                if let [ready, scheduled, in_flight] = c {
                    depth.ready += ready;
                    depth.scheduled += scheduled;
                    depth.in_flight += in_flight;
                }
            }
        }
        Ok(depth)
    }

    /// Worker processes that sent a heartbeat within the last minute.
    pub async fn workers_alive(&self) -> Result<u64, QueueError> {
        let mut conn = self.connection();
        Ok(redis::cmd("ZCOUNT")
            .arg(self.keys().workers())
            .arg(now_ms() - 60_000)
            .arg("+inf")
            .query_async(&mut conn)
            .await?)
    }
}
