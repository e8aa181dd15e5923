//! One connection type over one Redis or a Redis Cluster, so that every command and script
//! of the queue runs the same way on both.

use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::error::QueueError;

/// Where Redis is: one server, or the seed nodes of a cluster.
#[derive(Clone)]
pub(crate) enum Target {
    Single(redis::Client),
    Cluster(Vec<String>),
}

impl Target {
    /// `url` names one server, or (`cluster`) one or more comma-separated seed nodes.
    pub(crate) fn parse(url: &str, cluster: bool) -> Result<Self, QueueError> {
        if cluster {
            let seeds: Vec<String> = url
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if seeds.is_empty() {
                return Err(QueueError::Protocol(
                    "the Redis URL names no cluster node".into(),
                ));
            }
            // Checked now, so that a bad seed is named at start.
            for s in &seeds {
                redis::Client::open(s.as_str())?;
            }
            Ok(Target::Cluster(seeds))
        } else {
            Ok(Target::Single(redis::Client::open(url)?))
        }
    }

    /// A new connection whose commands give up after `response_timeout`. One server: a
    /// connection manager, which reconnects after Redis restarts; a cluster: the cluster
    /// client, which follows slots as they move (failover, resharding).
    pub(crate) async fn connect(
        &self,
        response_timeout: Duration,
    ) -> Result<RedisConn, QueueError> {
        match self {
            Target::Single(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(Duration::from_secs(2)))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_secs(1));
                Ok(RedisConn::Single(
                    client.get_connection_manager_with_config(config).await?,
                ))
            }
            Target::Cluster(seeds) => {
                let client = ClusterClient::builder(seeds.iter().map(String::as_str))
                    .connection_timeout(Duration::from_secs(2))
                    .response_timeout(response_timeout)
                    .retries(6)
                    .max_retry_wait(1_000)
                    .build()?;
                Ok(RedisConn::Cluster(client.get_async_connection().await?))
            }
        }
    }

    /// A client for one node (the first seed of a cluster), for Pub/Sub: a message
    /// published on any node of a cluster reaches every node's subscribers.
    pub(crate) fn pubsub_clients(&self) -> Vec<redis::Client> {
        match self {
            Target::Single(client) => vec![client.clone()],
            Target::Cluster(seeds) => seeds
                .iter()
                .filter_map(|s| redis::Client::open(s.as_str()).ok())
                .collect(),
        }
    }
}

/// A multiplexed connection to one Redis or to a cluster. Cheap to clone: clones share it.
#[derive(Clone)]
pub enum RedisConn {
    /// One server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl RedisConn {
    /// Connects to one Redis at `url`, or (`cluster`) to the cluster whose seed nodes `url`
    /// lists, comma-separated.
    pub async fn open(url: &str, cluster: bool) -> Result<Self, QueueError> {
        Target::parse(url, cluster)?
            .connect(Duration::from_secs(5))
            .await
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Single(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Single(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
        }
    }
}
