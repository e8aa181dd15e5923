//! Fan-out: validate an event, find the webhooks it fires, render one body per webhook and
//! enqueue one delivery each, in one atomic Redis step. Also the other ways a delivery is
//! made: webhook tests, redelivery of a finished delivery, and recovery of a webhook's failed
//! deliveries. Used by the REST API and by `hookrelay publish`.
//!
//! A job is a snapshot: it carries the webhook's URL, headers, token, secrets, timeout and the
//! rendered body as they were when the event was published. Changing or deleting the webhook
//! afterwards does not change deliveries already queued.

use futures::StreamExt;
use hookrelay_core::delivery::DeliveryKind;
use hookrelay_core::formats;
use hookrelay_core::job::{JobDecodeError, JobRequest};
use hookrelay_core::time::{Timestamp, now_ms};
use hookrelay_core::webhook::validate_label;
use hookrelay_core::{
    DeliveryId, DeliveryStatus, Event, EventId, JOB_VERSION, Job, ProjectName, Webhook,
};
use hookrelay_queue::{DeliveryView, EnqueueOutcome, NewDelivery, Queue, RedeliverOutcome};
use serde::{Deserialize, Serialize};

use crate::error::ProducerError;
use crate::registry::Registry;

/// How many failed deliveries a recovery reads per round trip.
pub const RECOVER_PAGE: usize = 500;
/// Redeliveries of a page in flight at once.
const RECOVER_CONCURRENCY: usize = 64;

/// An event to publish: the body of `POST /projects/{p}/events`, and what
/// `hookrelay publish` builds from its flags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventIn {
    /// Event name, e.g. `deployment_request_finished`.
    pub event: String,
    /// Object type, e.g. `deployment`; `""` for an event about no object (what
    /// `hookrelay publish` sends without `--object-type`).
    pub object_type: String,
    /// Object name, e.g. `deployment-1`; `""` for an event about no object.
    pub object_name: String,
    /// Object version; webhooks bound to a version fire only for that version.
    #[serde(default)]
    pub version: Option<String>,
    /// Event data (any JSON).
    pub data: serde_json::Value,
    /// Result, sent only to webhooks with `include_result`.
    #[serde(default)]
    pub result: Option<serde_json::Value>,
    /// Event id. Given, it makes publishing idempotent: the same id again gets the same
    /// answer and enqueues nothing. Generated (UUID v4) when absent.
    #[serde(default)]
    pub id: Option<EventId>,
}

/// The answer to a publish: `{"id": <event id>, "deliveries": [<delivery id>, …]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishAnswer {
    /// The event id.
    pub id: String,
    /// One delivery id per webhook the event fired.
    pub deliveries: Vec<DeliveryId>,
}

/// A publish answer, and whether it is the stored answer of an earlier publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The answer.
    pub answer: PublishAnswer,
    /// True when the event id had been published before: nothing was enqueued this time.
    pub duplicate: bool,
}

/// Validates events, matches webhooks, renders bodies and enqueues deliveries.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct Publisher {
    queue: Queue,
    registry: Registry,
}

impl Publisher {
    /// A publisher over a queue and the webhook registry on the same Redis.
    pub fn new(queue: Queue, registry: Registry) -> Self {
        Self { queue, registry }
    }

    /// The queue it enqueues into.
    pub fn queue(&self) -> &Queue {
        &self.queue
    }

    /// The registry it reads webhooks from.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// A new delivery id, in the partition of `endpoint`'s queue.
    fn new_id(&self, endpoint: &str) -> DeliveryId {
        self.queue.keys().new_delivery_id(endpoint)
    }

    /// Publishes an event: one delivery per enabled webhook of `project` that matches its
    /// event, object type, object name and (when the webhook has one) version. The
    /// deliveries are in Redis when this returns.
    pub async fn publish(
        &self,
        project: &ProjectName,
        input: EventIn,
    ) -> Result<PublishAnswer, ProducerError> {
        Ok(self.publish_detailed(project, input).await?.answer)
    }

    /// [`Publisher::publish`], also telling whether the event id was a duplicate.
    pub async fn publish_detailed(
        &self,
        project: &ProjectName,
        input: EventIn,
    ) -> Result<Published, ProducerError> {
        check_event(&input)?;
        let now = now_ms();
        let given_id = input.id.clone();
        let event = Event {
            id: input
                .id
                .map(EventId::into_string)
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
            project: project.to_string(),
            event: input.event,
            object_type: input.object_type,
            object_name: input.object_name,
            version: input.version,
            data: input.data,
            result: input.result,
            created_at: Timestamp::from_ms(now),
        };
        let webhooks = self.registry.list(project).await?;
        let deliveries: Vec<NewDelivery> = webhooks
            .iter()
            .filter(|w| w.matches(&event))
            .map(|w| NewDelivery {
                job: build_job(
                    self.new_id(&w.id),
                    DeliveryKind::Delivery,
                    project,
                    w,
                    &event,
                    now,
                ),
                event_id: Some(event.id.clone()),
                keep_job: false,
            })
            .collect();
        let answer = PublishAnswer {
            id: event.id.clone(),
            deliveries: deliveries.iter().map(|d| d.job.id.clone()).collect(),
        };
        if given_id.is_none() && deliveries.is_empty() {
            // Nothing to store: no delivery, and no id to remember for idempotency.
            return Ok(Published {
                answer,
                duplicate: false,
            });
        }
        let answer_json = serde_json::to_string(&answer)
            .map_err(|e| ProducerError::Internal(format!("cannot encode answer: {e}")))?;
        // The event itself, once for all its deliveries: what a redelivery renders from.
        let payload = if deliveries.is_empty() {
            None
        } else {
            Some(
                serde_json::to_string(&event)
                    .map_err(|e| ProducerError::Internal(format!("cannot encode event: {e}")))?,
            )
        };
        match self
            .queue
            .enqueue(
                project,
                given_id.as_deref(),
                &answer_json,
                payload.as_deref().map(|p| (event.id.as_str(), p)),
                &deliveries,
            )
            .await?
        {
            EnqueueOutcome::Enqueued(_) => {
                tracing::debug!(project = %project, event_id = %answer.id, deliveries = answer.deliveries.len(), "event published");
                Ok(Published {
                    answer,
                    duplicate: false,
                })
            }
            EnqueueOutcome::InProgress => Err(ProducerError::Conflict(format!(
                "event {} is being published by another request right now; retry in a moment",
                answer.id
            ))),
            EnqueueOutcome::Duplicate(stored) => {
                let answer = serde_json::from_str(&stored).map_err(|e| {
                    ProducerError::Internal(format!("stored answer of event does not decode: {e}"))
                })?;
                Ok(Published {
                    answer,
                    duplicate: true,
                })
            }
        }
    }

    /// Enqueues a one-attempt test delivery of `webhook`'s sample payload; returns the test
    /// (delivery) id. `saved` is false for a UbiOps test of a webhook that is not stored:
    /// its delivery record then has no webhook name.
    pub async fn test(
        &self,
        project: &ProjectName,
        webhook: &Webhook,
        saved: bool,
    ) -> Result<DeliveryId, ProducerError> {
        let now = now_ms();
        let event = formats::sample_event(webhook, project);
        let mut job = build_job(
            self.new_id(&webhook.id),
            DeliveryKind::Test,
            project,
            webhook,
            &event,
            now,
        );
        // A test is one attempt, whatever the webhook's retry setting, in a queue of its
        // own: the webhook's backlog, pause or open circuit never hold it back.
        job.retry = false;
        job.endpoint = hookrelay_core::job::test_endpoint(&job.id);
        if !saved {
            job.webhook = None;
        }
        let id = job.id.clone();
        // A test keeps its job: the sample event is not stored.
        let delivery = NewDelivery {
            job,
            event_id: Some(event.id),
            keep_job: true,
        };
        self.queue
            .enqueue(project, None, "", None, &[delivery])
            .await?;
        Ok(id)
    }

    /// Queues one more attempt of a finished delivery. 404 when it does not exist in
    /// `project`, 409 while it is still pending or retrying. Returns the attempt number.
    pub async fn redeliver(
        &self,
        project: &ProjectName,
        id: &DeliveryId,
    ) -> Result<u32, ProducerError> {
        let view = self
            .queue
            .delivery(id)
            .await?
            .filter(|v| v.project == *project)
            .ok_or_else(|| delivery_not_found(id))?;
        let current = match &view.webhook {
            Some(name) => self.registry.get(project, name).await?,
            None => None,
        };
        self.redeliver_view(project, &view, current.as_ref()).await
    }

    /// Starts recovering `name`'s failed deliveries since `since_ms`: checks the webhook
    /// and counts what there is to look at. Run it with [`Recovery::step`] until it says
    /// it is done.
    pub async fn start_recovery(
        &self,
        project: &ProjectName,
        name: &str,
        since_ms: i64,
    ) -> Result<Recovery, ProducerError> {
        let current = self
            .registry
            .get(project, name)
            .await?
            .ok_or_else(|| crate::registry::not_found(project, name))?;
        let (own, legacy) = self.queue.failed_counts(&current.id, since_ms).await?;
        Ok(Recovery {
            publisher: self.clone(),
            project: project.clone(),
            webhook: current,
            counts: RecoverCounts {
                total: own + legacy,
                ..RecoverCounts::default()
            },
            phase: RecoverPhase::Own(0),
            since_ms,
            from_ms: since_ms,
            skip: 0,
        })
    }

    /// Queues the next attempt of `view`, a delivery of `project` (checked by the caller).
    async fn redeliver_view(
        &self,
        project: &ProjectName,
        view: &DeliveryView,
        current: Option<&Webhook>,
    ) -> Result<u32, ProducerError> {
        if matches!(
            view.status,
            DeliveryStatus::Pending | DeliveryStatus::Retrying
        ) {
            return Err(still_queued(&view.id, view.status));
        }
        let (job, payload) = match &view.job {
            Some(_) => (next_job(view, current, now_ms())?, None),
            None => (
                self.render_again(project, view, current).await?,
                view.event_id.as_deref(),
            ),
        };
        let attempt = job.attempt;
        match self.queue.redeliver(&job, payload).await? {
            RedeliverOutcome::Queued => Ok(attempt),
            RedeliverOutcome::StillQueued => Err(still_queued(&view.id, DeliveryStatus::Pending)),
            RedeliverOutcome::NotFound => Err(delivery_not_found(&view.id)),
            RedeliverOutcome::WebhookDeleted => Err(ProducerError::Conflict(format!(
                "delivery {:?} cannot be delivered again: its webhook was deleted",
                view.id
            ))),
        }
    }
}

impl Publisher {
    /// The next attempt of a delivery whose record keeps no job: rendered again from its
    /// event's stored payload with its webhook's current settings (URL, headers, format,
    /// token, signing secrets).
    async fn render_again(
        &self,
        project: &ProjectName,
        view: &DeliveryView,
        current: Option<&Webhook>,
    ) -> Result<Job, ProducerError> {
        let deleted = || {
            ProducerError::Conflict(format!(
                "delivery {:?} cannot be delivered again: its webhook was deleted",
                view.id
            ))
        };
        let webhook = current
            .filter(|w| view.webhook.as_deref() == Some(w.name.as_str()))
            .ok_or_else(deleted)?;
        let gone = || {
            ProducerError::NotFound(format!(
                "delivery {:?} cannot be delivered again: its event is no longer kept",
                view.id
            ))
        };
        let event_id = view.event_id.as_deref().ok_or_else(gone)?;
        let raw = self
            .queue
            .payload(&view.project, event_id)
            .await?
            .ok_or_else(gone)?;
        let event: Event = serde_json::from_str(&raw).map_err(|_| {
            ProducerError::Internal(format!(
                "the stored event of delivery {:?} does not decode",
                view.id
            ))
        })?;
        let now = now_ms();
        let mut job = build_job(view.id.clone(), view.kind, project, webhook, &event, now);
        job.attempt = view.attempts.iter().map(|a| a.attempt).max().unwrap_or(0) + 1;
        // Publish → delivered is about the event's first delivery, not a redelivery.
        job.created_at_ms = 0;
        Ok(job)
    }
}

fn still_queued(id: &str, status: DeliveryStatus) -> ProducerError {
    ProducerError::Conflict(format!(
        "delivery {id:?} is still {}; redeliver it once it has succeeded or failed",
        status.as_str()
    ))
}

/// The 404 of a delivery that does not exist (or belongs to another project).
pub fn delivery_not_found(id: &str) -> ProducerError {
    ProducerError::NotFound(format!("delivery {id:?} not found"))
}

/// The job of a redelivery: the stored first job, numbered after the attempts made so far.
/// When the webhook still exists under the same name and URL, its current signing secrets
/// replace the snapshot's, so a redelivery after a secret rotation verifies with the new one.
fn next_job(
    view: &DeliveryView,
    current: Option<&Webhook>,
    now_ms: i64,
) -> Result<Job, ProducerError> {
    let raw = view.job.as_deref().ok_or_else(|| {
        ProducerError::Internal(format!("delivery {:?} has no stored job", view.id))
    })?;
    let mut job = Job::decode(raw.as_bytes()).map_err(|e| {
        // The detailed decode messages may quote values of a job, which holds secrets.
        let why = match e {
            JobDecodeError::UnknownVersion(_) | JobDecodeError::NoVersion => e.to_string(),
            JobDecodeError::NotJson(_) | JobDecodeError::Invalid(_) => "not a valid job".into(),
        };
        ProducerError::Internal(format!("stored job of delivery {:?}: {why}", view.id))
    })?;
    let made = view.attempts.iter().map(|a| a.attempt).max().unwrap_or(0);
    job.attempt = made + 1;
    // Publish → delivered is about the event's first delivery, not a redelivery.
    job.created_at_ms = 0;
    if job.endpoint.is_empty() {
        // Written before endpoints: the queue of the webhook it was made for, if that
        // webhook still exists under its name; a queue of its own otherwise.
        job.endpoint = match (current, job.kind) {
            (Some(w), DeliveryKind::Delivery)
                if job.webhook.as_deref() == Some(w.name.as_str()) =>
            {
                w.id.clone()
            }
            _ => hookrelay_core::job::test_endpoint(&job.id),
        };
    }
    if let Some(w) = current
        && job.webhook.as_deref() == Some(w.name.as_str())
        && job.request.url == w.url
    {
        job.request.secrets = w.signing_secrets(now_ms);
    }
    Ok(job)
}

/// One delivery `id` of `event` to `webhook`, first attempt.
fn build_job(
    id: DeliveryId,
    kind: DeliveryKind,
    project: &ProjectName,
    webhook: &Webhook,
    event: &Event,
    now_ms: i64,
) -> Job {
    Job {
        v: JOB_VERSION,
        id,
        kind,
        project: project.clone(),
        webhook: Some(webhook.name.clone()),
        event: event.event.clone(),
        endpoint: webhook.id.clone(),
        attempt: 1,
        deferred: 0,
        created_at_ms: now_ms,
        retry: webhook.retry,
        request: JobRequest {
            url: webhook.url.clone(),
            headers: webhook.header_pairs(),
            token: webhook.token.clone(),
            secrets: webhook.signing_secrets(now_ms),
            timeout_secs: webhook.timeout,
            body: formats::render(webhook, event),
            format: webhook.format,
        },
    }
}

/// Checks the fields of an event, naming the one at fault.
fn check_event(input: &EventIn) -> Result<(), ProducerError> {
    validate_label("event", &input.event)?;
    // An event may be about no particular object: then only webhooks for any object
    // (`object_type` and `object_name` `*`) fire.
    if !input.object_type.is_empty() {
        validate_label("object_type", &input.object_type)?;
    }
    if !input.object_name.is_empty() {
        validate_label("object_name", &input.object_name)?;
    }
    if let Some(v) = &input.version {
        validate_label("version", v)?;
    }
    Ok(())
}

/// What a recovery has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RecoverCounts {
    /// Failed deliveries to look at, counted when it started.
    pub total: u64,
    /// Looked at so far.
    pub scanned: u64,
    /// Queued again.
    pub requeued: u64,
    /// Looked at and left: redelivered meanwhile, expired, or (in the index of earlier
    /// versions) another webhook's.
    pub skipped: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RecoverPhase {
    /// The webhook's own failed index in one partition (every partition in turn).
    Own(u32),
    /// The failed index of every webhook that earlier versions wrote, until it expires.
    Legacy,
    Done,
}

/// A recovery of one webhook's failed deliveries, a page at a time: its own failed index
/// only (failures of other webhooks cost it nothing), oldest first.
pub struct Recovery {
    publisher: Publisher,
    project: ProjectName,
    webhook: Webhook,
    counts: RecoverCounts,
    phase: RecoverPhase,
    since_ms: i64,
    /// The page starts at this failure time…
    from_ms: i64,
    /// …after this many entries still in the index at exactly that time.
    skip: usize,
}

impl Recovery {
    /// What it has done so far.
    pub fn counts(&self) -> RecoverCounts {
        self.counts
    }

    /// Whether it has looked at everything.
    pub fn is_done(&self) -> bool {
        self.phase == RecoverPhase::Done
    }

    /// Requeues one page of failed deliveries.
    pub async fn step(&mut self) -> Result<(), ProducerError> {
        let queue = &self.publisher.queue;
        let page = match self.phase {
            RecoverPhase::Own(p) => {
                queue
                    .failed_page(p, &self.webhook.id, self.from_ms, self.skip, RECOVER_PAGE)
                    .await?
            }
            RecoverPhase::Legacy => {
                queue
                    .legacy_failed_page(self.from_ms, self.skip, RECOVER_PAGE)
                    .await?
            }
            RecoverPhase::Done => return Ok(()),
        };
        let ids: Vec<String> = page.iter().map(|(id, _)| id.clone()).collect();
        let views = queue.deliveries_by_id(&ids).await?;
        // Entries left in the index at the page's last failure time: the next page skips
        // them (a requeued delivery leaves its webhook's index; the old index keeps all).
        let last_ms = page.last().map(|(_, ms)| *ms);
        // The page's redeliveries run concurrently: their scripts share the multiplexed
        // connection, so a page costs a few round trips, not one per delivery.
        let (publisher, project, webhook) = (&self.publisher, &self.project, &self.webhook);
        let outcomes: Vec<Result<bool, ProducerError>> =
            futures::stream::iter(views.into_iter().map(|view| async move {
                match view {
                    Some(view)
                        if view.project == *project
                            && view.webhook.as_deref() == Some(webhook.name.as_str())
                            && view.kind == DeliveryKind::Delivery
                            && view.status == DeliveryStatus::Failed =>
                    {
                        match publisher
                            .redeliver_view(project, &view, Some(webhook))
                            .await
                        {
                            Ok(_) => Ok(true),
                            // Redelivered by someone else meanwhile, or expired.
                            Err(ProducerError::Conflict(_) | ProducerError::NotFound(_)) => {
                                Ok(false)
                            }
                            Err(e) => Err(e),
                        }
                    }
                    _ => Ok(false),
                }
            }))
            .buffered(RECOVER_CONCURRENCY)
            .collect()
            .await;
        let mut left_at_last = 0;
        for ((_, failed_ms), outcome) in page.iter().zip(outcomes) {
            let requeued = outcome?;
            self.counts.scanned += 1;
            if requeued {
                self.counts.requeued += 1;
            } else {
                self.counts.skipped += 1;
            }
            let stays = !requeued || self.phase == RecoverPhase::Legacy;
            if stays && Some(*failed_ms) == last_ms {
                left_at_last += 1;
            }
        }
        match last_ms {
            Some(ms) if page.len() == RECOVER_PAGE => {
                self.skip = if ms == self.from_ms {
                    self.skip + left_at_last
                } else {
                    left_at_last
                };
                self.from_ms = ms;
            }
            _ => {
                self.phase = match self.phase {
                    RecoverPhase::Own(p) if p + 1 < queue.partitions_walked() => {
                        RecoverPhase::Own(p + 1)
                    }
                    RecoverPhase::Own(_) => RecoverPhase::Legacy,
                    _ => RecoverPhase::Done,
                };
                // The next index is read from the recovery's start time.
                self.from_ms = self.since_ms;
                self.skip = 0;
            }
        }
        Ok(())
    }
}
