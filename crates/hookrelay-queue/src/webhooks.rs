//! The webhook registry's storage: one HASH per project (`Keys::webhooks(project)`: field =
//! webhook name, value = the webhook's JSON, secrets included), the SET of projects that have
//! webhooks, and a version token per project that every change replaces. Creation is
//! `HSETNX`; every change is a compare-and-set script on the JSON as read, so a rename is
//! atomic and two concurrent updates never silently lose one another. What a webhook is and
//! how it is validated lives in the producer; this is only where it is kept.

use std::sync::LazyLock;

use redis::Script;

use crate::error::QueueError;
use crate::queue::Queue;

static CREATE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/webhook_create.lua")));
static REPLACE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/webhook_replace.lua")));
static DELETE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("lua/webhook_delete.lua")));
static LIST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("lua/webhook_list.lua")));

/// What a compare-and-set replacement did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replaced {
    /// Stored.
    Done,
    /// The new name is taken by another webhook.
    NameTaken,
    /// No webhook of that name.
    Gone,
    /// Another writer changed it since it was read.
    ChangedMeanwhile,
}

/// A project's webhooks as stored: the version token, and the `(name, JSON)` pairs unless
/// the caller's copy is current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWebhooks {
    /// The project's version token ("" when there is none).
    pub version: String,
    /// `None` when the caller's version is current; else every webhook.
    pub webhooks: Option<Vec<(String, String)>>,
}

impl Queue {
    /// Stores a new webhook's JSON under `name`; `false` when the name is taken.
    pub async fn webhook_create(
        &self,
        project: &str,
        name: &str,
        json: &str,
        version: &str,
    ) -> Result<bool, QueueError> {
        let keys = self.keys();
        let mut conn = self.connection();
        let created: i64 = CREATE
            .key(keys.webhooks(project))
            .key(keys.webhooks_version(project))
            .arg(name)
            .arg(json)
            .arg(version)
            .invoke_async(&mut conn)
            .await?;
        if created == 1 {
            self.remember_project(project).await?;
        }
        Ok(created == 1)
    }

    /// Adds `project` to the projects set. The set is in a slot of its own on a cluster, so
    /// the webhook scripts cannot update it: it is updated apart, after them.
    async fn remember_project(&self, project: &str) -> Result<(), QueueError> {
        let mut conn = self.connection();
        let _: i64 = redis::cmd("SADD")
            .arg(self.keys().projects())
            .arg(project)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    /// One webhook's stored JSON.
    pub async fn webhook_get(
        &self,
        project: &str,
        name: &str,
    ) -> Result<Option<String>, QueueError> {
        let mut conn = self.connection();
        Ok(redis::cmd("HGET")
            .arg(self.keys().webhooks(project))
            .arg(name)
            .query_async(&mut conn)
            .await?)
    }

    /// A project's webhooks, unless `known_version` (the caller's copy) is current.
    pub async fn webhook_list(
        &self,
        project: &str,
        known_version: &str,
    ) -> Result<StoredWebhooks, QueueError> {
        let keys = self.keys();
        let mut conn = self.connection();
        let mut answer: Vec<String> = LIST
            .key(keys.webhooks(project))
            .key(keys.webhooks_version(project))
            .arg(known_version)
            .invoke_async(&mut conn)
            .await?;
        if answer.is_empty() {
            return Err(QueueError::Protocol("empty answer listing webhooks".into()));
        }
        let version = answer.remove(0);
        if answer.is_empty() && !version.is_empty() && version == known_version {
            return Ok(StoredWebhooks {
                version,
                webhooks: None,
            });
        }
        let mut pairs = Vec::with_capacity(answer.len() / 2);
        let mut fields = answer.into_iter();
        while let (Some(name), Some(raw)) = (fields.next(), fields.next()) {
            pairs.push((name, raw));
        }
        Ok(StoredWebhooks {
            version,
            webhooks: Some(pairs),
        })
    }

    /// Replaces webhook `name`, whose JSON was read as `expected`, by `json` under `new_name`.
    pub async fn webhook_replace(
        &self,
        project: &str,
        name: &str,
        expected: &str,
        new_name: &str,
        json: &str,
        version: &str,
    ) -> Result<Replaced, QueueError> {
        let keys = self.keys();
        let mut conn = self.connection();
        let r: i64 = REPLACE
            .key(keys.webhooks(project))
            .key(keys.webhooks_version(project))
            .arg(name)
            .arg(expected)
            .arg(new_name)
            .arg(json)
            .arg(version)
            .invoke_async(&mut conn)
            .await?;
        Ok(match r {
            1 => Replaced::Done,
            0 => Replaced::NameTaken,
            -1 => Replaced::Gone,
            _ => Replaced::ChangedMeanwhile,
        })
    }

    /// Deletes webhook `name`; `false` when there was none.
    pub async fn webhook_delete(
        &self,
        project: &str,
        name: &str,
        version: &str,
    ) -> Result<bool, QueueError> {
        let keys = self.keys();
        let mut conn = self.connection();
        let deleted: i64 = DELETE
            .key(keys.webhooks(project))
            .key(keys.webhooks_version(project))
            .arg(name)
            .arg(version)
            .invoke_async(&mut conn)
            .await?;
        if deleted == 2 {
            // It was the project's last webhook: forget the project, unless one was
            // created meanwhile (then it is remembered again).
            let _: i64 = redis::cmd("SREM")
                .arg(keys.projects())
                .arg(project)
                .query_async(&mut conn)
                .await?;
            let left: i64 = redis::cmd("HLEN")
                .arg(keys.webhooks(project))
                .query_async(&mut conn)
                .await?;
            if left > 0 {
                self.remember_project(project).await?;
            }
        }
        Ok(deleted >= 1)
    }
}
