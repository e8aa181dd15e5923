//! `isolation`: one bad receiver must never delay anyone else. With one worker at the
//! default settings:
//!
//! 1. calm: the bench webhook alone at 50 events/s — its publish → received latency;
//! 2. hanging: a second webhook whose receiver never answers (10 s timeout) gets 20
//!    events/s while the bench webhook keeps its 50/s — the bench webhook's latency again,
//!    and whether every one of its deliveries arrived;
//! 3. burst: 100,000 events for the bench webhook wait (enqueued while no worker runs), then
//!    the worker starts and a third webhook (its own receiver) gets 50 events/s while that
//!    backlog drains — its latency.
//!
//! Then the claim's cost with many endpoints holding ready work: one claim script round
//! trip with 1 endpoint against 10,000 (each endpoint a webhook with waiting jobs).

use std::path::Path;
use std::time::Duration;

use hookrelay_queue::Queue;
use hookrelay_testkit::receiver::{Receiver, Reply};

use crate::load::{enqueue_direct, publish_paced, publish_paced_to};
use crate::receiver::Sink;
use crate::report::{Table, ms, thousands};
use crate::scenarios::{Deliveries, Opts, count, setup, wait_delivered};

/// How long the calm and hanging phases publish.
const CALM: Duration = Duration::from_secs(10);
const HANGING: Duration = Duration::from_secs(30);
/// Events for the burst's backlog.
const BURST: u64 = 100_000;
/// How long the third webhook publishes while the burst drains.
const DURING_BURST: Duration = Duration::from_secs(5);

/// Runs the scenario and prints its tables.
pub async fn run(opts: &Opts, bin: &Path) -> anyhow::Result<()> {
    println!("\n## isolation: a hanging receiver and a burst beside a healthy webhook");
    let mut s = setup(opts, bin).await?;
    let hang = Receiver::start(Reply::Hang).await;
    s.api
        .create_other_webhook("hanging", &hang.url("/hang"))
        .await?;
    let other = Sink::start(opts.receiver, opts.receiver_threads).await?;
    s.api.create_other_webhook("b", &other.url("/b")).await?;
    s.stack.start_workers(opts.workers).await?;

    // 1. calm
    let base = s.sink.count();
    let calm = publish_paced(&s.api, 50.0, CALM, 64).await;
    wait_delivered(&s.sink, base + calm.accepted).await;
    let calm_d = Deliveries::of(&s.sink.hits_since(base as usize));

    // 2. hanging receiver beside the healthy webhook
    let base = s.sink.count();
    let (healthy, bad) = tokio::join!(
        publish_paced(&s.api, 50.0, HANGING, 64),
        publish_paced_to(&s.api, Some("hanging"), 20.0, HANGING, 256),
    );
    wait_delivered(&s.sink, base + healthy.accepted).await;
    let hanging_d = Deliveries::of(&s.sink.hits_since(base as usize));
    let arrived = s.sink.count() - base;

    let mut t = Table::new(
        "healthy webhook at 50 events/s, publish → received",
        &["phase", "events", "arrived", "p50", "p99", "max"],
    );
    for (name, run, d, got) in [
        ("calm (alone)", &calm, &calm_d, calm_d.count),
        (
            "beside a hanging receiver at 20 events/s",
            &healthy,
            &hanging_d,
            arrived,
        ),
    ] {
        t.row([
            name.to_owned(),
            count(run.accepted),
            count(got),
            ms(d.latency.at(50.0)),
            ms(d.latency.at(99.0)),
            ms(d.latency.max()),
        ]);
    }
    t.print();
    let target = (3 * calm_d.latency.at(99.0)).max(50_000);
    println!(
        "target: p99 beside the hanging receiver ≤ max(3 × calm p99, 50 ms) = {}; measured {} ({}). The hanging webhook: {} events published, {} requests reached its receiver (the rest wait in its own queue: concurrency cap, then open circuit).\n",
        ms(target),
        ms(hanging_d.latency.at(99.0)),
        if hanging_d.latency.at(99.0) <= target {
            "met"
        } else {
            "missed"
        },
        count(bad.accepted),
        count(hang.count() as u64),
    );

    // 3. burst on the bench webhook (built while no worker runs), then the worker starts and
    // another webhook publishes meanwhile
    s.stack.stop_workers();
    let url = s.stack.redis_url();
    let (enqueued, took) =
        enqueue_direct(&url, BURST, opts.enqueue_concurrency, opts.pad_bytes).await?;
    let waiting = s.stack.ready_len().await?;
    s.stack.start_workers(opts.workers).await?;
    let b_base = other.count();
    let b = publish_paced_to(&s.api, Some("b"), 50.0, DURING_BURST, 64).await;
    let still = s.stack.ready_len().await?;
    wait_delivered(&other, b_base + b.accepted).await;
    let b_d = Deliveries::of(&other.hits_since(b_base as usize));
    let mut t = Table::new(
        "a burst on one webhook, another webhook at 50 events/s meanwhile",
        &["", ""],
    );
    t.pair(
        "burst enqueued for webhook A",
        format!("{} in {:.1} s", count(enqueued), took.as_secs_f64()),
    );
    t.pair(
        "A's jobs waiting when B started / when B's last was published",
        format!("{} / {}", thousands(waiting), thousands(still)),
    );
    t.pair("B's events", count(b.accepted));
    t.row([
        "B publish → received p50 / p99 / max".to_owned(),
        format!(
            "{} / {} / {}",
            ms(b_d.latency.at(50.0)),
            ms(b_d.latency.at(99.0)),
            ms(b_d.latency.max())
        ),
    ]);
    t.print();
    println!(
        "target: B's p99 ≤ 50 ms while A drains; measured {} ({}).\n",
        ms(b_d.latency.at(99.0)),
        if b_d.latency.at(99.0) <= 50_000 && still > 0 {
            "met"
        } else if still == 0 {
            "A had drained before B's last event: run again with a larger burst"
        } else {
            "missed"
        }
    );
    s.stack.stop_workers();

    many_endpoints(&s.stack.redis_url()).await
}

/// Claim round trips with ready work in 1 endpoint and in 10,000.
async fn many_endpoints(url: &str) -> anyhow::Result<()> {
    let mut t = Table::new(
        "claim script round trip (64 asked, handed back after each, 300 claims)",
        &["endpoints with ready work", "p50", "p99", "jobs per claim"],
    );
    for endpoints in [1usize, 10_000] {
        let keys = hookrelay_core::Keys::new(format!("claimbench{endpoints}"));
        let queue = Queue::connect(url, keys).await?;
        fill(&queue, endpoints, 20_000.max(endpoints * 2)).await?;
        let (p, per) = super::probe_claims(&queue, 64, 300).await?;
        t.row([
            thousands(endpoints as u64),
            ms(p.at(50.0)),
            ms(p.at(99.0)),
            format!("{per:.1}"),
        ]);
    }
    t.print();
    Ok(())
}

/// Enqueues `jobs` deliveries spread evenly over `endpoints` endpoints.
async fn fill(queue: &Queue, endpoints: usize, jobs: usize) -> anyhow::Result<()> {
    use hookrelay_core::job::JobRequest;
    use hookrelay_core::{DeliveryId, Job, ProjectName};
    use hookrelay_queue::NewDelivery;
    let project = ProjectName::parse("claim")?;
    for chunk in (0..jobs).collect::<Vec<_>>().chunks(500) {
        let ds: Vec<NewDelivery> = chunk
            .iter()
            .map(|i| NewDelivery {
                job: Job {
                    webhook: Some(format!("w{}", i % endpoints)),
                    ..Job::first_attempt(
                        DeliveryId::generate(None),
                        project.clone(),
                        format!("ep{}", i % endpoints),
                        "e",
                        JobRequest::new("http://127.0.0.1:9/", "{}"),
                    )
                },
                event_id: None,
                keep_job: true,
            })
            .collect();
        // One event per endpoint per call (an event fans out to distinct webhooks).
        for d in ds {
            queue.enqueue("claim", None, "", None, &[d]).await?;
        }
    }
    Ok(())
}
