//! Commands for operators that read (or, for `recover`, requeue) straight from Redis, without
//! the API: `queue`, `recover`, `deliveries get|list`, `webhooks list`.

use std::time::Duration;

use anyhow::Context;
use hookrelay_core::delivery::DeliveryStatus;
use hookrelay_producer::{ProducerError, Publisher, Registry};
use hookrelay_queue::{DeliveryView, Queue};

use crate::settings::Settings;

/// Arguments of `hookrelay recover`.
#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    /// Project.
    #[arg(long)]
    pub project: hookrelay_core::ProjectName,
    /// Webhook name.
    #[arg(long)]
    pub webhook: String,
    /// Failed since when: a duration back from now (90s, 30m, 2h, 7d) or an RFC 3339 time.
    #[arg(long)]
    pub since: String,
}

/// Arguments of `hookrelay queue`.
#[derive(clap::Args, Debug)]
pub struct QueueArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `hookrelay deliveries …`.
#[derive(clap::Subcommand, Debug)]
pub enum DeliveriesCommand {
    /// One delivery with every attempt, as JSON.
    #[command(after_help = crate::help(crate::REDIS, "hookrelay deliveries get --project demo 48b920ec-7433-4fb2-ad2d-6cb007547770"))]
    Get {
        /// Project.
        #[arg(long)]
        project: hookrelay_core::ProjectName,
        /// Delivery id.
        id: hookrelay_core::DeliveryId,
    },
    /// A project's deliveries, newest first.
    #[command(after_help = crate::help(crate::REDIS, "hookrelay deliveries list --project demo --webhook hook-1 --status failed --limit 50"))]
    List {
        /// Project.
        #[arg(long)]
        project: hookrelay_core::ProjectName,
        /// Only this webhook's.
        #[arg(long)]
        webhook: Option<String>,
        /// Only with this status: pending, retrying, succeeded or failed.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Print one JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// `hookrelay webhooks …`.
#[derive(clap::Subcommand, Debug)]
pub enum WebhooksCommand {
    /// A project's webhooks (secrets and protected header values never shown).
    #[command(after_help = crate::help(crate::REDIS, "hookrelay webhooks list --project demo"))]
    List {
        /// Project.
        #[arg(long)]
        project: hookrelay_core::ProjectName,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Connects once, failing at once when Redis does not answer (an operator is waiting).
async fn queue(settings: &Settings) -> anyhow::Result<Queue> {
    let q = tokio::time::timeout(
        Duration::from_secs(5),
        Queue::connect(&settings.redis_url, settings.keys()),
    )
    .await
    .map_err(|_| anyhow::anyhow!("redis did not answer at HOOKRELAY_REDIS_URL within 5 s"))?
    .map_err(|e| anyhow::anyhow!("redis unavailable at HOOKRELAY_REDIS_URL: {e}"))?;
    Ok(crate::configure_queue(q, settings))
}

/// `hookrelay queue`: depth of every queue and workers alive.
pub async fn show_queue(settings: &Settings, args: QueueArgs) -> anyhow::Result<()> {
    let q = queue(settings).await?;
    let s = q.stats().await.context("reading queue depth")?;
    if args.json {
        println!("{}", serde_json::to_string(&s)?);
        return Ok(());
    }
    let p = &settings.key_prefix;
    println!("{:<18} {:>10}  key", "queue", "depth");
    println!(
        "{:<18} {:>10}  {p}:{{q0}}:ep:<webhook id>:ready",
        "ready", s.ready
    );
    println!(
        "{:<18} {:>10}  {p}:{{q0}}:ep:<webhook id>:scheduled",
        "scheduled", s.scheduled
    );
    println!(
        "{:<18} {:>10}  {p}:{{q0}}:ring",
        "webhooks served", s.endpoints_ready
    );
    println!(
        "{:<18} {:>10}  {p}:{{q0}}:timers",
        "webhooks waiting", s.endpoints_waiting
    );
    println!(
        "{:<18} {:>10}  {p}:{{q0}}:inflight",
        "in flight", s.inflight
    );
    println!("{:<18} {:>10}  {p}:{{q0}}:dead", "dead", s.dead);
    println!("{:<18} {:>10}  {p}:workers", "workers alive", s.workers);
    Ok(())
}

/// `2h` → 2 hours; `2026-12-01T10:00:00Z` → that time. Returns milliseconds since the epoch.
pub fn parse_since(since: &str, now_ms: i64) -> Result<i64, String> {
    let s = since.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.timestamp_millis());
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let unit_ms: i64 = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => 0,
    };
    match n.parse::<i64>() {
        Ok(n) if unit_ms > 0 => Ok(now_ms - n.saturating_mul(unit_ms)),
        _ => Err(format!(
            "--since: must be a duration such as 90s, 30m, 2h or 7d, or an RFC 3339 time, got {since:?}"
        )),
    }
}

/// `hookrelay recover`: attempts again every failed delivery of a webhook since a time.
pub async fn recover(settings: &Settings, args: RecoverArgs) -> anyhow::Result<()> {
    let since_ms = parse_since(&args.since, chrono::Utc::now().timestamp_millis())
        .map_err(anyhow::Error::msg)?;
    let q = queue(settings).await?;
    let publisher = Publisher::new(q.clone(), Registry::new(&q));
    let mut recovery = match publisher
        .start_recovery(&args.project, &args.webhook, since_ms)
        .await
    {
        Ok(r) => r,
        Err(ProducerError::NotFound(_)) => anyhow::bail!(
            "webhook {:?} not found in project {:?}",
            args.webhook,
            args.project
        ),
        Err(e) => anyhow::bail!("{e}"),
    };
    let bar = indicatif::ProgressBar::new(recovery.counts().total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} looked at, {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    while !recovery.is_done() {
        if let Err(e) = recovery.step().await {
            bar.abandon();
            anyhow::bail!(
                "after {} requeued: {e} (run it again to go on)",
                recovery.counts().requeued
            );
        }
        let c = recovery.counts();
        bar.set_position(c.scanned);
        bar.set_message(format!("{} requeued", c.requeued));
    }
    let requeued = recovery.counts().requeued;
    let skipped = recovery.counts().skipped;
    bar.finish_and_clear();
    let since = chrono::DateTime::from_timestamp_millis(since_ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default();
    println!(
        "requeued {requeued} failed deliveries of webhook {} in project {} since {since}{}",
        args.webhook,
        args.project,
        if skipped > 0 {
            format!(
                " ({skipped} left as they were: redelivered meanwhile, expired, or not this webhook's)"
            )
        } else {
            String::new()
        }
    );
    Ok(())
}

fn time_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// `hookrelay deliveries get|list`.
pub async fn deliveries(settings: &Settings, cmd: DeliveriesCommand) -> anyhow::Result<()> {
    let q = queue(settings).await?;
    match cmd {
        DeliveriesCommand::Get { project, id } => {
            let view = q
                .delivery(&id)
                .await?
                .filter(|v| v.project == project)
                .ok_or_else(|| {
                    anyhow::anyhow!("delivery {id:?} not found in project {project:?}")
                })?;
            println!("{}", serde_json::to_string_pretty(&view)?);
            Ok(())
        }
        DeliveriesCommand::List {
            project,
            webhook,
            status,
            limit,
            json,
        } => {
            let status = match status.as_deref() {
                None => None,
                Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--status: must be pending, retrying, succeeded or failed, got {s:?}"
                    )
                })?),
            };
            let limit = limit.clamp(1, 10_000);
            let mut found: Vec<DeliveryView> = Vec::new();
            let mut offset = 0;
            const PAGE: usize = 500;
            // A filter that matches little must not read a whole large index.
            const SCAN_LIMIT: usize = 100_000;
            while found.len() < limit {
                if offset >= SCAN_LIMIT {
                    eprintln!(
                        "(looked at the newest {SCAN_LIMIT} deliveries only; narrow the filter or use the API)"
                    );
                    break;
                }
                let ids = q.delivery_ids(&project, offset, PAGE).await?;
                if ids.is_empty() {
                    break;
                }
                offset += ids.len();
                for view in q.deliveries_by_id(&ids).await?.into_iter().flatten() {
                    let keep = webhook
                        .as_deref()
                        .is_none_or(|w| view.webhook.as_deref() == Some(w))
                        && status.is_none_or(|s| view.status == s);
                    if keep && found.len() < limit {
                        found.push(view);
                    }
                }
            }
            if json {
                for v in &found {
                    println!("{}", serde_json::to_string(v)?);
                }
                return Ok(());
            }
            println!(
                "{:<36}  {:<20}  {:<28}  {:<9}  {:>8}  {:>4}  updated",
                "id", "webhook", "event", "status", "attempts", "code"
            );
            for v in &found {
                println!(
                    "{:<36}  {:<20}  {:<28}  {:<9}  {:>8}  {:>4}  {}",
                    v.id,
                    v.webhook.as_deref().unwrap_or("(test)"),
                    v.event,
                    v.status.as_str(),
                    v.attempts.len(),
                    v.last_status_code
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "-".into()),
                    time_ms(v.updated_at_ms)
                );
            }
            Ok(())
        }
    }
}

/// `hookrelay webhooks list`.
pub async fn webhooks(settings: &Settings, cmd: WebhooksCommand) -> anyhow::Result<()> {
    let WebhooksCommand::List { project, json } = cmd;
    let q = queue(settings).await?;
    let registry = Registry::new(&q);
    let list = registry
        .list(&project)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if json {
        let shown: Vec<serde_json::Value> = list
            .iter()
            .map(|w| {
                serde_json::json!({
                    "name": w.name, "url": w.url, "event": w.event, "events": w.events,
                    "object_type": w.object_type, "object_name": w.object_name,
                    "enabled": w.enabled, "retry": w.retry, "format": w.format.as_str(),
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&shown)?);
        return Ok(());
    }
    println!(
        "{:<24}  {:<7}  {:<5}  {:<8}  {:<32}  url",
        "name", "enabled", "retry", "format", "events"
    );
    for w in list.iter() {
        let mut events = vec![w.event.clone()];
        events.extend(w.events.iter().cloned());
        println!(
            "{:<24}  {:<7}  {:<5}  {:<8}  {:<32}  {}",
            w.name,
            w.enabled,
            w.retry,
            w.format.as_str(),
            events.join(","),
            w.url
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since() {
        let now = 10_000_000_000;
        assert_eq!(parse_since("2h", now), Ok(now - 7_200_000));
        assert_eq!(parse_since("90s", now), Ok(now - 90_000));
        assert_eq!(parse_since("7d", now), Ok(now - 604_800_000));
        assert_eq!(
            parse_since("2026-12-01T00:00:00Z", now),
            Ok(1_796_083_200_000)
        );
        assert!(parse_since("2 weeks", now).is_err());
        assert!(parse_since("h", now).is_err());
    }
}
