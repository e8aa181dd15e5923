//! Recoveries: the progress of a `recover` (requeueing one webhook's failed deliveries),
//! kept in Redis so that any API process can answer for it while it runs in the background.

use std::collections::HashMap;

use hookrelay_core::time::now_ms;

use crate::error::QueueError;
use crate::queue::Queue;

/// How long a recovery's progress is kept (s).
pub const RECOVERY_RETENTION_SECS: u64 = 24 * 3600;

/// Where a recovery stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryProgress {
    /// Project.
    pub project: String,
    /// Webhook name.
    pub webhook: String,
    /// Failed since (ms).
    pub since_ms: i64,
    /// `running`, `done` or `failed`.
    pub state: String,
    /// Failed deliveries to look at (counted when it started).
    pub total: u64,
    /// Looked at so far.
    pub scanned: u64,
    /// Queued again so far.
    pub requeued: u64,
    /// Looked at but not queued (redelivered meanwhile, expired, another webhook's).
    pub skipped: u64,
    /// When it started (ms).
    pub started_at_ms: i64,
    /// Its last progress (ms).
    pub updated_at_ms: i64,
    /// Why it stopped, when it failed.
    pub error: Option<String>,
}

impl Queue {
    /// Stores a recovery's progress (kept a day from its last change).
    pub async fn save_recovery(&self, id: &str, p: &RecoveryProgress) -> Result<(), QueueError> {
        let key = self.keys().partition(0).recovery(id);
        let mut conn = self.connection();
        redis::pipe()
            .cmd("HSET")
            .arg(&key)
            .arg("project")
            .arg(&p.project)
            .arg("webhook")
            .arg(&p.webhook)
            .arg("since")
            .arg(p.since_ms)
            .arg("state")
            .arg(&p.state)
            .arg("total")
            .arg(p.total)
            .arg("scanned")
            .arg(p.scanned)
            .arg("requeued")
            .arg(p.requeued)
            .arg("skipped")
            .arg(p.skipped)
            .arg("started_at")
            .arg(p.started_at_ms)
            .arg("updated_at")
            .arg(now_ms())
            .arg("error")
            .arg(p.error.as_deref().unwrap_or(""))
            .ignore()
            .cmd("EXPIRE")
            .arg(&key)
            .arg(RECOVERY_RETENTION_SECS)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// A recovery's progress, if it is known.
    pub async fn recovery(&self, id: &str) -> Result<Option<RecoveryProgress>, QueueError> {
        let mut conn = self.connection();
        let f: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys().partition(0).recovery(id))
            .query_async(&mut conn)
            .await?;
        if f.is_empty() {
            return Ok(None);
        }
        let text = |k: &str| f.get(k).cloned().unwrap_or_default();
        let num = |k: &str| f.get(k).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let ms = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        Ok(Some(RecoveryProgress {
            project: text("project"),
            webhook: text("webhook"),
            since_ms: ms("since"),
            state: text("state"),
            total: num("total"),
            scanned: num("scanned"),
            requeued: num("requeued"),
            skipped: num("skipped"),
            started_at_ms: ms("started_at"),
            updated_at_ms: ms("updated_at"),
            error: f.get("error").filter(|e| !e.is_empty()).cloned(),
        }))
    }
}
