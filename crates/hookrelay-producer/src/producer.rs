//! [`Producer`]: the smallest way for another Rust service to enqueue webhooks — connect to
//! hookrelay's Redis, publish an event, get its delivery ids, look a delivery up. No API
//! process is involved: the deliveries are in Redis (and picked up by any running worker)
//! when [`Producer::publish`] returns.
//!
//! ```no_run
//! # async fn demo() -> Result<(), hookrelay_producer::ProducerError> {
//! use hookrelay_core::ProjectName;
//! use hookrelay_producer::{EventIn, Producer};
//!
//! let project = ProjectName::parse("demo")?;
//! let producer = Producer::connect("redis://127.0.0.1:6379", "hookrelay").await?;
//! let ids = producer
//!     .publish(&project, EventIn::new("deployment_request_finished", "deployment", "deployment-1")
//!         .with_data(serde_json::json!({"request_id": "r-1"})))
//!     .await?;
//! for id in &ids {
//!     if let Some(d) = producer.delivery(id).await? {
//!         println!("{id}: {}", d.status.as_str());
//!     }
//! }
//! # Ok(())
//! # }
//! ```

use std::time::Duration;

use hookrelay_core::{DeliveryId, EventId, Keys, ProjectName};
use hookrelay_queue::{DeliveryView, Queue};

use crate::error::ProducerError;
use crate::publisher::{EventIn, PublishAnswer, Publisher};
use crate::registry::Registry;

/// A connection to hookrelay's Redis that publishes events. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Producer {
    publisher: Publisher,
}

impl Producer {
    /// Connects to the Redis at `redis_url` whose keys start with `key_prefix` (what the
    /// workers use as `HOOKRELAY_KEY_PREFIX`). Delivery records are kept as long as by default
    /// (`retention_secs` of `config/default.toml`).
    pub async fn connect(redis_url: &str, key_prefix: &str) -> Result<Self, ProducerError> {
        let retention = hookrelay_core::defaults::defaults().retention;
        Self::connect_with_retention(redis_url, key_prefix, retention).await
    }

    /// [`Producer::connect`] with records kept for `retention` (`HOOKRELAY_RETENTION_SECS`
    /// of the deployment; it must cover the retry schedule).
    pub async fn connect_with_retention(
        redis_url: &str,
        key_prefix: &str,
        retention: Duration,
    ) -> Result<Self, ProducerError> {
        Self::connect_with_keys(redis_url, Keys::new(key_prefix), retention).await
    }

    /// [`Producer::connect_with_retention`] with the deployment's whole key layout: on a
    /// Redis Cluster (`redis_url` lists seed nodes, comma-separated) or with several
    /// partitions, `Keys::new(prefix).with_layout(partitions, cluster)` as the workers use.
    pub async fn connect_with_keys(
        redis_url: &str,
        keys: Keys,
        retention: Duration,
    ) -> Result<Self, ProducerError> {
        let queue = Queue::connect(redis_url, keys)
            .await?
            .with_retention(retention);
        let registry = Registry::new(&queue);
        Ok(Self {
            publisher: Publisher::new(queue, registry),
        })
    }

    /// Publishes `event` in `project`: one delivery per matching enabled webhook. Returns
    /// the delivery ids (empty when no webhook matches).
    pub async fn publish(
        &self,
        project: &ProjectName,
        event: EventIn,
    ) -> Result<Vec<DeliveryId>, ProducerError> {
        Ok(self.publish_event(project, event).await?.deliveries)
    }

    /// [`Producer::publish`], answering the event id too (`{"id", "deliveries"}`).
    pub async fn publish_event(
        &self,
        project: &ProjectName,
        event: EventIn,
    ) -> Result<PublishAnswer, ProducerError> {
        self.publisher.publish(project, event).await
    }

    /// One delivery with its attempts, or `None` when there is none with this id.
    pub async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryView>, ProducerError> {
        Ok(self.publisher.queue().delivery(id).await?)
    }

    /// The full [`Publisher`] (webhook tests, redelivery, recovery).
    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }
}

impl EventIn {
    /// An event about `object_type`/`object_name` with empty data, no version, no id.
    pub fn new(
        event: impl Into<String>,
        object_type: impl Into<String>,
        object_name: impl Into<String>,
    ) -> Self {
        Self {
            event: event.into(),
            object_type: object_type.into(),
            object_name: object_name.into(),
            version: None,
            data: serde_json::Value::Object(serde_json::Map::new()),
            result: None,
            id: None,
        }
    }

    /// With this data.
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = data;
        self
    }

    /// With this event id: publishing the same id again enqueues nothing.
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = Some(id);
        self
    }
}
