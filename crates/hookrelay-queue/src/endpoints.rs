//! Endpoints seen from outside the claim loop: their settings (from their webhook), their
//! health, the notices of webhooks the queue disabled, and the wake-up of idle workers.

use std::collections::HashMap;
use std::time::Duration;

use hookrelay_core::endpoint::{DisabledNotice, Health, HealthState};
use hookrelay_core::time::{Timestamp, now_ms};

use crate::conn::RedisConn;
use crate::error::QueueError;
use crate::queue::Queue;
use crate::scripts;

/// An endpoint's settings, from its webhook.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig<'a> {
    /// The endpoint (the webhook's id).
    pub endpoint: &'a str,
    /// Project.
    pub project: &'a str,
    /// Webhook name.
    pub webhook: &'a str,
    /// `max_concurrency`, or none for the default.
    pub max_concurrency: Option<u32>,
    /// `rate_limit` (deliveries per second), or none.
    pub rate_limit: Option<f64>,
    /// `ordered`.
    pub ordered: bool,
    /// Whether the webhook is enabled.
    pub enabled: bool,
}

/// What to do with an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointChange<'a> {
    /// Store its settings; enabling one that was disabled resumes its backlog.
    Set {
        /// When it is disabled now, why.
        disabled_reason: &'a str,
    },
    /// Its webhook is gone: what waits in its queue ends as failed.
    Delete,
}

/// The state fields the health view reads, in order.
const HEALTH_FIELDS: [&str; 10] = [
    "enabled",
    "deleted",
    "cap",
    "rate",
    "circuit",
    "paused_until",
    "tat",
    "failures",
    "last_success_at",
    "last_failure_at",
];

impl Queue {
    /// Stores an endpoint's settings (or marks it deleted) and brings its place in the
    /// ring up to date: in the partition its new deliveries go to, and in any other
    /// partition that still holds a queue of it (the partition count changed since).
    pub async fn configure_endpoint(
        &self,
        config: &EndpointConfig<'_>,
        change: EndpointChange<'_>,
    ) -> Result<(), QueueError> {
        let home = self.keys().endpoint_partition(config.endpoint);
        let mut partitions = vec![home];
        if self.partitions_walked() > 1 {
            let others: Vec<u32> = (0..self.partitions_walked())
                .filter(|p| *p != home)
                .collect();
            let exists = futures::future::try_join_all(others.iter().map(|p| {
                let key = self.keys().partition(*p).endpoint(config.endpoint).state;
                let mut conn = self.connection();
                async move {
                    redis::cmd("EXISTS")
                        .arg(key)
                        .query_async::<bool>(&mut conn)
                        .await
                }
            }))
            .await?;
            partitions.extend(
                others
                    .into_iter()
                    .zip(exists)
                    .filter(|(_, e)| *e)
                    .map(|(p, _)| p),
            );
        }
        for p in partitions {
            self.configure_in(p, config, change).await?;
        }
        Ok(())
    }

    async fn configure_in(
        &self,
        p: u32,
        config: &EndpointConfig<'_>,
        change: EndpointChange<'_>,
    ) -> Result<(), QueueError> {
        let mut inv = self.invocation(&scripts::CONFIGURE, p);
        self.endpoint_keys(&mut inv, p, config.endpoint);
        let (state, reason) = match change {
            EndpointChange::Delete => ("deleted", ""),
            EndpointChange::Set { disabled_reason } if !config.enabled => ("0", disabled_reason),
            EndpointChange::Set { .. } => ("1", ""),
        };
        inv.arg(config.endpoint)
            .arg(config.project)
            .arg(config.webhook)
            .arg(
                config
                    .max_concurrency
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
            )
            .arg(config.rate_limit.map(|r| r.to_string()).unwrap_or_default())
            .arg(if config.ordered { "1" } else { "" })
            .arg(state)
            .arg(self.endpoint_concurrency())
            .arg(reason)
            .arg(self.retention().as_secs().max(1));
        let mut conn = self.connection();
        let _: i64 = inv.invoke_async(&mut conn).await?;
        Ok(())
    }

    /// The health of each endpoint, in the order given, in one round trip.
    pub async fn health(&self, endpoints: &[&str]) -> Result<Vec<Health>, QueueError> {
        if endpoints.is_empty() {
            return Ok(Vec::new());
        }
        let now = now_ms();
        if self.keys().cluster() {
            // A pipeline stays in one slot on a cluster: one endpoint at a time, all at once.
            let each = endpoints.iter().map(|e| async move {
                Ok::<_, QueueError>(self.health_single(e, now).await?.pop())
            });
            return Ok(futures::future::try_join_all(each)
                .await?
                .into_iter()
                .flatten()
                .collect());
        }
        self.health_of_many(endpoints, now).await
    }

    async fn health_single(&self, endpoint: &str, now: i64) -> Result<Vec<Health>, QueueError> {
        self.health_of_many(&[endpoint], now).await
    }

    async fn health_of_many(
        &self,
        endpoints: &[&str],
        now: i64,
    ) -> Result<Vec<Health>, QueueError> {
        let mut pipe = redis::pipe();
        for e in endpoints {
            let k = self
                .keys()
                .partition(self.keys().endpoint_partition(e))
                .endpoint(e);
            pipe.cmd("HMGET").arg(&k.state).arg(&HEALTH_FIELDS[..]);
            pipe.cmd("HGET").arg(&k.state).arg("disabled_reason");
            pipe.cmd("ZCOUNT").arg(&k.leases).arg(now).arg("+inf");
            pipe.cmd("LLEN").arg(&k.ready);
            pipe.cmd("ZCARD").arg(&k.scheduled);
        }
        let mut conn = self.connection();
        let answers: Vec<redis::Value> = pipe.query_async(&mut conn).await?;
        let mut out = Vec::with_capacity(endpoints.len());
        for five in answers.chunks(5) {
            let get = |i: usize| five.get(i).cloned().unwrap_or(redis::Value::Nil);
            let fields: Vec<Option<String>> =
                redis::from_redis_value(get(0)).map_err(|e| QueueError::Protocol(e.to_string()))?;
            let reason: Option<String> =
                redis::from_redis_value(get(1)).map_err(|e| QueueError::Protocol(e.to_string()))?;
            let count = |i: usize| -> Result<u64, QueueError> {
                redis::from_redis_value(get(i)).map_err(|e| QueueError::Protocol(e.to_string()))
            };
            let (in_flight, ready, scheduled) = (count(2)?, count(3)?, count(4)?);
            let f: HashMap<&str, String> = HEALTH_FIELDS
                .iter()
                .zip(fields)
                .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (*k, v)))
                .collect();
            out.push(health_of(
                &f,
                reason,
                in_flight,
                ready + scheduled,
                now,
                self.endpoint_concurrency(),
            ));
        }
        Ok(out)
    }

    /// How many webhooks are in each health state, over every project (for `/metrics`).
    /// Reads each project's webhooks and their endpoints' health: a pipelined pass over
    /// all webhooks.
    pub async fn endpoints_by_state(&self) -> Result<Vec<(HealthState, u64)>, QueueError> {
        let mut conn = self.connection();
        let projects: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.keys().projects())
            .query_async(&mut conn)
            .await?;
        let mut counts: HashMap<HealthState, u64> = HashMap::new();
        for project in projects {
            let raws: Vec<String> = redis::cmd("HVALS")
                .arg(self.keys().webhooks(&project))
                .query_async(&mut conn)
                .await?;
            let hooks: Vec<(String, bool)> = raws
                .iter()
                .filter_map(|r| serde_json::from_str::<serde_json::Value>(r).ok())
                .filter_map(|v| {
                    let id = v.get("id")?.as_str()?.to_owned();
                    let enabled = v.get("enabled").and_then(|e| e.as_bool()).unwrap_or(true);
                    Some((id, enabled))
                })
                .collect();
            let ids: Vec<&str> = hooks.iter().map(|(id, _)| id.as_str()).collect();
            for (h, (_, enabled)) in self.health(&ids).await?.into_iter().zip(&hooks) {
                let state = if *enabled {
                    h.state
                } else {
                    HealthState::Disabled
                };
                *counts.entry(state).or_default() += 1;
            }
        }
        Ok(HealthState::ALL
            .into_iter()
            .map(|s| (s, counts.get(&s).copied().unwrap_or(0)))
            .collect())
    }

    /// The oldest notice of a webhook the queue disabled (in the first partition that has
    /// one), with its raw value (to pass to [`Queue::notice_done`] once it has been
    /// announced).
    pub async fn next_notice(&self) -> Result<Option<(String, DisabledNotice)>, QueueError> {
        for p in 0..self.partitions_walked() {
            if let Some(found) = self.next_notice_in(p).await? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }

    async fn next_notice_in(&self, p: u32) -> Result<Option<(String, DisabledNotice)>, QueueError> {
        let mut conn = self.connection();
        let outbox = self.keys().partition(p).outbox();
        loop {
            let raw: Option<String> = redis::cmd("LINDEX")
                .arg(&outbox)
                .arg(-1)
                .query_async(&mut conn)
                .await?;
            let Some(raw) = raw else { return Ok(None) };
            match serde_json::from_str::<DisabledNotice>(&raw) {
                Ok(n) => return Ok(Some((raw, n))),
                Err(e) => {
                    tracing::error!(error = %e, "a notice in the outbox does not decode; dropped");
                    self.notice_done(&raw).await?;
                }
            }
        }
    }

    /// Removes an announced notice from the outbox (of whichever partition holds it).
    pub async fn notice_done(&self, raw: &str) -> Result<(), QueueError> {
        let mut conn = self.connection();
        for p in 0..self.partitions_walked() {
            let removed: i64 = redis::cmd("LREM")
                .arg(self.keys().partition(p).outbox())
                .arg(-1)
                .arg(raw)
                .query_async(&mut conn)
                .await?;
            if removed > 0 {
                break;
            }
        }
        Ok(())
    }

    /// Blocks on `conn` (a connection of its own) until an endpoint has work or `wait`
    /// passes. `BLMOVE signal signal` moves nothing: it only returns when the signal list
    /// has its element, which enqueues and acks put there while the ring has endpoints.
    pub async fn wait_for_work(
        &self,
        conn: &mut RedisConn,
        wait: Duration,
    ) -> Result<(), QueueError> {
        let signal = self.keys().partition(0).signal();
        let _: Option<String> = redis::cmd("BLMOVE")
            .arg(&signal)
            .arg(&signal)
            .arg("RIGHT")
            .arg("RIGHT")
            .arg(wait.as_secs_f64().max(0.001))
            .query_async(conn)
            .await?;
        Ok(())
    }
}

fn health_of(
    f: &HashMap<&str, String>,
    disabled_reason: Option<String>,
    in_flight: u64,
    backlog: u64,
    now: i64,
    default_cap: u32,
) -> Health {
    let num = |k: &str| f.get(k).and_then(|v| v.parse::<f64>().ok());
    let time = |k: &str| num(k).map(|ms| Timestamp::from_ms(ms as i64));
    let paused_until = num("paused_until").filter(|t| *t as i64 > now);
    let cap = num("cap").map_or(u64::from(default_cap), |c| c as u64);
    let rate_waiting = num("rate").is_some() && num("tat").is_some_and(|t| t as i64 > now);
    let state = if f.get("enabled").map(String::as_str) == Some("0") || f.contains_key("deleted") {
        HealthState::Disabled
    } else if f.contains_key("circuit") {
        HealthState::CircuitOpen
    } else if paused_until.is_some() {
        HealthState::Paused
    } else if backlog > 0 && (in_flight >= cap || rate_waiting) {
        HealthState::Throttled
    } else {
        HealthState::Healthy
    };
    Health {
        state,
        in_flight,
        backlog,
        consecutive_failures: num("failures").map_or(0, |n| n as u32),
        paused_until: paused_until.map(|t| Timestamp::from_ms(t as i64)),
        last_success_at: time("last_success_at"),
        last_failure_at: time("last_failure_at"),
        disabled_reason: disabled_reason
            .filter(|r| !r.is_empty())
            .filter(|_| state == HealthState::Disabled),
    }
}
