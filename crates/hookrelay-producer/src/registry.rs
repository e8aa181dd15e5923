//! The webhook registry: validation, the in-memory copy of parsed webhooks, and the link to
//! each webhook's endpoint queue. Storage (one HASH per project, compare-and-set changes) is
//! the queue crate's (`hookrelay_queue::Queue::webhook_*`), which owns every Redis key.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hookrelay_core::ProjectName;
use hookrelay_core::target::TargetPolicy;
use hookrelay_core::webhook::{
    validate_events, validate_headers, validate_label, validate_name, validate_url,
};
use hookrelay_core::{FieldError, Webhook};
use hookrelay_queue::{EndpointChange, EndpointConfig, Queue, Replaced};

use crate::error::ProducerError;

/// How long a project's parsed webhooks are used without asking Redis whether they changed
/// at all. Changes made through hookrelay are seen at once (they change the version token);
/// this only bounds how long a hand edit with redis-cli goes unnoticed.
const CACHE_MAX_AGE: Duration = Duration::from_secs(5);
/// Most projects whose webhooks are kept in memory.
const CACHE_MAX_PROJECTS: usize = 10_000;

/// How often an update is retried when another writer changed the webhook in between.
const UPDATE_TRIES: usize = 5;
/// Why a webhook is disabled when a user turned it off.
const DISABLED_BY_USER: &str = "disabled by a user";
/// Longest webhook description (UbiOps' limit).
pub const MAX_DESCRIPTION_LEN: usize = 400;
/// Most labels on one webhook.
pub const MAX_LABELS: usize = 50;
/// Longest label key or value.
pub const MAX_LABEL_LEN: usize = 64;
/// Longest bearer token.
pub const MAX_TOKEN_LEN: usize = 4096;

/// A project's webhooks as last read, with the version token they were read at.
struct Cached {
    version: String,
    read_at: Instant,
    hooks: Arc<Vec<Webhook>>,
}

/// Webhook CRUD in Redis. Cheap to clone: clones share the queue's connection and the
/// in-memory copy of parsed webhooks.
#[derive(Clone)]
pub struct Registry {
    queue: Queue,
    cache: Arc<Mutex<HashMap<ProjectName, Cached>>>,
}

fn new_version() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("prefix", &self.queue.keys().prefix())
            .finish()
    }
}

impl Registry {
    /// A registry on the queue's Redis connection and key prefix.
    pub fn new(queue: &Queue) -> Self {
        Self {
            queue: queue.clone(),
            cache: Arc::default(),
        }
    }

    /// Stores a new webhook. 409 when the name is taken in the project.
    pub async fn create(
        &self,
        project: &ProjectName,
        webhook: &Webhook,
    ) -> Result<(), ProducerError> {
        let json = encode(webhook)?;
        let created = self
            .queue
            .webhook_create(project, &webhook.name, &json, &new_version())
            .await?;
        if !created {
            return Err(name_taken(&webhook.name));
        }
        self.configure(
            project,
            webhook,
            EndpointChange::Set {
                disabled_reason: DISABLED_BY_USER,
            },
        )
        .await
    }

    /// Gives the webhook's endpoint queue its settings (concurrency, rate limit, order,
    /// enabled), or tells it the webhook is gone.
    async fn configure(
        &self,
        project: &ProjectName,
        webhook: &Webhook,
        change: EndpointChange<'_>,
    ) -> Result<(), ProducerError> {
        let config = EndpointConfig {
            endpoint: &webhook.id,
            project,
            webhook: &webhook.name,
            max_concurrency: webhook.max_concurrency,
            rate_limit: webhook.rate_limit,
            ordered: webhook.ordered,
            enabled: webhook.enabled,
        };
        Ok(self.queue.configure_endpoint(&config, change).await?)
    }

    /// Marks a webhook disabled because its endpoint queue disabled it (a `410 Gone`, or
    /// failing for too long), if it is still the webhook of that endpoint. Returns the
    /// webhook as it is now, or `None` when it no longer exists.
    pub async fn mark_disabled(
        &self,
        project: &ProjectName,
        name: &str,
        endpoint: &str,
    ) -> Result<Option<Webhook>, ProducerError> {
        match self
            .update(project, name, |w| {
                let mut w = w.clone();
                if w.id == endpoint {
                    w.enabled = false;
                }
                Ok(w)
            })
            .await
        {
            Ok(w) => Ok(Some(w)),
            Err(ProducerError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One webhook, or `None`.
    pub async fn get(
        &self,
        project: &ProjectName,
        name: &str,
    ) -> Result<Option<Webhook>, ProducerError> {
        Ok(self.get_raw(project, name).await?.map(|(w, _)| w))
    }

    async fn get_raw(
        &self,
        project: &ProjectName,
        name: &str,
    ) -> Result<Option<(Webhook, String)>, ProducerError> {
        match self.queue.webhook_get(project, name).await? {
            None => Ok(None),
            Some(raw) => {
                let webhook = serde_json::from_str(&raw).map_err(|e| {
                    ProducerError::Internal(format!(
                        "stored webhook {name:?} of project {project:?} does not decode: {}",
                        decode_error(&e)
                    ))
                })?;
                Ok(Some((webhook, raw)))
            }
        }
    }

    /// Every webhook of a project, sorted by name. A stored value that does not decode is
    /// logged and left out rather than failing the whole list (or the whole fan-out).
    ///
    /// Parsed webhooks are kept in memory per project and read again only when their version
    /// token in Redis changed (every create, update and delete changes it), so a publish
    /// costs one small script call whatever the number of webhooks.
    pub async fn list(&self, project: &ProjectName) -> Result<Arc<Vec<Webhook>>, ProducerError> {
        let known = {
            let cache = self.lock_cache();
            cache.get(project).map(|c| {
                (
                    c.version.clone(),
                    c.read_at.elapsed() < CACHE_MAX_AGE,
                    c.hooks.clone(),
                )
            })
        };
        let (asked_version, fresh_hooks) = match &known {
            Some((version, true, hooks)) => (version.as_str(), Some(hooks.clone())),
            _ => ("", None),
        };
        let stored = self.queue.webhook_list(project, asked_version).await?;
        let version = stored.version;
        let pairs = match (stored.webhooks, fresh_hooks) {
            (None, Some(hooks)) => return Ok(hooks),
            (Some(pairs), _) => pairs,
            (None, None) => Vec::new(),
        };
        let mut hooks: Vec<Webhook> = Vec::with_capacity(pairs.len());
        for (name, raw) in pairs {
            match serde_json::from_str::<Webhook>(&raw) {
                Ok(w) => hooks.push(w),
                Err(e) => {
                    tracing::error!(project = %project, webhook = %name, error = %decode_error(&e), "stored webhook does not decode; skipped");
                }
            }
        }
        hooks.sort_by(|a, b| a.name.cmp(&b.name));
        let hooks = Arc::new(hooks);
        // Without a version token (webhooks written by hand, or data lost), nothing is kept.
        if !version.is_empty() {
            let mut cache = self.lock_cache();
            if cache.len() >= CACHE_MAX_PROJECTS && !cache.contains_key(project) {
                cache.clear();
            }
            cache.insert(
                project.to_owned(),
                Cached {
                    version,
                    read_at: Instant::now(),
                    hooks: hooks.clone(),
                },
            );
        }
        Ok(hooks)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<ProjectName, Cached>> {
        // The map is only ever replaced whole per entry: a panic elsewhere cannot corrupt it.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes a webhook with `change`, atomically: `change` sees the stored webhook and
    /// returns the new one (possibly under a new name). When another writer changed the
    /// webhook in between, `change` runs again on the fresh value. 404 when there is no such
    /// webhook, 409 when the new name is taken.
    pub async fn update<F>(
        &self,
        project: &ProjectName,
        name: &str,
        mut change: F,
    ) -> Result<Webhook, ProducerError>
    where
        F: FnMut(&Webhook) -> Result<Webhook, ProducerError>,
    {
        for _ in 0..UPDATE_TRIES {
            let Some((current, raw)) = self.get_raw(project, name).await? else {
                return Err(not_found(project, name));
            };
            let new = change(&current)?;
            match self.replace(project, name, &raw, &new).await? {
                Replaced::Done => {
                    self.configure(
                        project,
                        &new,
                        EndpointChange::Set {
                            disabled_reason: DISABLED_BY_USER,
                        },
                    )
                    .await?;
                    return Ok(new);
                }
                Replaced::NameTaken => return Err(name_taken(&new.name)),
                Replaced::Gone => return Err(not_found(project, name)),
                Replaced::ChangedMeanwhile => continue,
            }
        }
        Err(ProducerError::Conflict(format!(
            "webhook {name:?} is being changed by other requests; try again"
        )))
    }

    async fn replace(
        &self,
        project: &ProjectName,
        name: &str,
        expected: &str,
        new: &Webhook,
    ) -> Result<Replaced, ProducerError> {
        let json = encode(new)?;
        Ok(self
            .queue
            .webhook_replace(project, name, expected, &new.name, &json, &new_version())
            .await?)
    }

    /// Deletes a webhook; `false` when there was none. What waits in its queue ends as
    /// failed ("webhook deleted").
    pub async fn delete(&self, project: &ProjectName, name: &str) -> Result<bool, ProducerError> {
        let existing = self.get(project, name).await?;
        let deleted = self
            .queue
            .webhook_delete(project, name, &new_version())
            .await?;
        if let Some(w) = existing.filter(|_| deleted) {
            self.configure(project, &w, EndpointChange::Delete).await?;
        }
        Ok(deleted)
    }
}

/// Where and how a stored value failed to decode, without serde's message: that message may
/// quote a value, and a stored webhook holds secrets.
pub(crate) fn decode_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

fn encode(webhook: &Webhook) -> Result<String, ProducerError> {
    serde_json::to_string(webhook)
        .map_err(|e| ProducerError::Internal(format!("cannot encode webhook: {e}")))
}

/// The 404 of a webhook that does not exist.
pub fn not_found(project: &ProjectName, name: &str) -> ProducerError {
    ProducerError::NotFound(format!("webhook {name:?} not found in project {project:?}"))
}

fn name_taken(name: &str) -> ProducerError {
    ProducerError::Conflict(format!(
        "name: a webhook named {name:?} already exists in this project"
    ))
}

/// Checks every field of a webhook about to be stored (or tested), naming the one at fault.
/// The URL must be http(s), and a literal IP address in it must pass the target policy;
/// host names are checked by the worker on the addresses DNS gives.
pub fn check_webhook(webhook: &Webhook, policy: &TargetPolicy) -> Result<(), FieldError> {
    validate_name("name", &webhook.name)?;
    let url = validate_url(&webhook.url)?;
    policy
        .check_url(&url)
        .map_err(|refused| FieldError::new("url", refused.to_string()))?;
    validate_headers(&webhook.headers)?;
    validate_label("object_type", &webhook.object_type)?;
    validate_label("object_name", &webhook.object_name)?;
    if let Some(version) = &webhook.version {
        validate_label("version", version)?;
    }
    if webhook.description.chars().count() > MAX_DESCRIPTION_LEN {
        return Err(FieldError::new(
            "description",
            format!("must be at most {MAX_DESCRIPTION_LEN} characters"),
        ));
    }
    check_labels(&webhook.labels)?;
    validate_label("event", &webhook.event)?;
    validate_events(&webhook.events)?;
    hookrelay_core::webhook::validate_timeout(i64::from(webhook.timeout))?;
    if let Some(token) = &webhook.token {
        check_token(token)?;
    }
    Ok(())
}

/// Labels: at most 50; keys 1–64 characters without `:` or `,` (the list filter's
/// separators); values at most 64 characters without `,`; no control characters.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), FieldError> {
    if labels.len() > MAX_LABELS {
        return Err(FieldError::new(
            "labels",
            format!("at most {MAX_LABELS} labels"),
        ));
    }
    for (k, v) in labels {
        let field = format!("labels.{k}");
        if k.is_empty() || k.chars().count() > MAX_LABEL_LEN {
            return Err(FieldError::new(
                field,
                format!("label keys must be 1 to {MAX_LABEL_LEN} characters"),
            ));
        }
        if k.chars().any(|c| c == ':' || c == ',' || c.is_control()) {
            return Err(FieldError::new(
                field,
                "label keys must not contain ':', ',' or control characters",
            ));
        }
        if v.chars().count() > MAX_LABEL_LEN {
            return Err(FieldError::new(
                field,
                format!("label values must be at most {MAX_LABEL_LEN} characters"),
            ));
        }
        if v.chars().any(|c| c == ',' || c.is_control()) {
            return Err(FieldError::new(
                field,
                "label values must not contain ',' or control characters",
            ));
        }
    }
    Ok(())
}

/// A bearer token goes into a header: visible ASCII, 1–4096 characters.
fn check_token(token: &str) -> Result<(), FieldError> {
    if token.is_empty() || token.len() > MAX_TOKEN_LEN {
        return Err(FieldError::new(
            "token",
            format!("must be 1 to {MAX_TOKEN_LEN} characters"),
        ));
    }
    if !token.chars().all(|c| c.is_ascii_graphic()) {
        return Err(FieldError::new(
            "token",
            "must be visible ASCII characters without spaces",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookrelay_core::WebhookDraft;

    fn webhook() -> Webhook {
        WebhookDraft::new(
            "hook-1",
            "https://example.com/hook",
            "deployment",
            "deployment-1",
            "deployment_request_finished",
        )
        .into_webhook(
            "00000000-0000-4000-8000-000000000000".into(),
            "whsec_x".into(),
            hookrelay_core::time::Timestamp::now(),
        )
    }

    fn check(change: impl FnOnce(&mut Webhook), field: Option<&str>) {
        let mut w = webhook();
        change(&mut w);
        let got = check_webhook(&w, &TargetPolicy::default());
        match (got, field) {
            (Ok(()), None) => {}
            (Err(e), Some(f)) => assert_eq!(e.field, f, "{e}"),
            (got, want) => panic!("got {got:?}, wanted an error on {want:?}"),
        }
    }

    #[test]
    fn fields_are_checked_by_name() {
        check(|_| {}, None);
        check(|w| w.name = "x".repeat(65), Some("name"));
        check(|w| w.name = "a b".into(), Some("name"));
        check(|w| w.url = "ftp://example.com".into(), Some("url"));
        check(|w| w.url = "http://127.0.0.1:9/x".into(), Some("url"));
        check(|w| w.url = "http://[::1]/x".into(), Some("url"));
        check(|w| w.url = "http://169.254.169.254/".into(), Some("url"));
        check(|w| w.url = "http://localhost/x".into(), None);
        check(|w| w.object_type = String::new(), Some("object_type"));
        check(|w| w.version = Some(String::new()), Some("version"));
        check(|w| w.description = "d".repeat(401), Some("description"));
        check(|w| w.timeout = 31, Some("timeout"));
        check(|w| w.timeout = 0, Some("timeout"));
        check(|w| w.token = Some("a b".into()), Some("token"));
        check(
            |w| {
                w.labels.insert("a:b".into(), "v".into());
            },
            Some("labels.a:b"),
        );
        check(
            |w| {
                w.labels.insert("k".into(), "v,w".into());
            },
            Some("labels.k"),
        );
        check(|w| w.events = vec![String::new()], Some("events[0]"));
    }

    #[test]
    fn allowed_targets_open_literal_addresses() {
        let mut w = webhook();
        w.url = "http://127.0.0.1:8080/hook".into();
        let policy = TargetPolicy::parse("127.0.0.0/8").expect("policy");
        assert!(check_webhook(&w, &policy).is_ok());
        let e = check_webhook(&w, &TargetPolicy::default()).expect_err("refused");
        assert!(e.message.contains("loopback"), "{e}");
    }
}
