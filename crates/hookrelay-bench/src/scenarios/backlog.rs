//! `backlog`: does a large backlog cost more per job than a small one? Jobs are enqueued
//! while no worker runs (with the `Publisher` code `hookrelay publish` uses), then:
//!
//! - the claim script is timed directly (claim a batch, hand it back, repeat) with 10 jobs
//!   waiting and again with the whole backlog waiting;
//! - one worker drains the backlog, and the delivery rate is printed per tenth of the
//!   backlog: the first tenth is delivered with the whole backlog waiting, the last with
//!   almost nothing waiting.

use std::path::Path;
use std::time::Duration;

use hookrelay_queue::Queue;

use crate::load::enqueue_direct;
use crate::procstat::RssSampler;
use crate::redisinfo::used_memory;
use crate::report::{Percentiles, Table, mib, ms, rate, secs};
use crate::scenarios::{Deliveries, Opts, count, load_average, setup, wait_delivered};
use crate::stack::Stack;

/// The small backlog the large one is compared with: enough for a full batch of 64.
const SMALL: u64 = 100;
/// Claim rounds per probe.
const PROBE_ROUNDS: usize = 300;

/// Claims `batch` jobs and hands them back, `PROBE_ROUNDS` times; returns the round-trip
/// time of each claim (µs) and how many jobs the claims took on average.
async fn probe_claims(stack: &Stack, batch: usize) -> anyhow::Result<(Percentiles, f64)> {
    let queue = Queue::connect(&stack.redis_url(), stack.keys.clone()).await?;
    super::probe_claims(&queue, batch, PROBE_ROUNDS).await
}

/// Where the memory of a waiting delivery goes.
struct Sizes {
    job_json: u64,
    ready_per_job: u64,
    record: u64,
    index_per_delivery: u64,
}

async fn job_sizes(stack: &mut Stack, waiting: u64) -> anyhow::Result<Sizes> {
    let keys = stack.keys.clone();
    let ready_key = stack.ready_key().await?;
    let conn = &mut stack.conn;
    let raw: String = redis::cmd("LINDEX")
        .arg(&ready_key)
        .arg(0)
        .query_async(conn)
        .await?;
    let id = serde_json::from_str::<serde_json::Value>(&raw)?["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let usage = |key: String| {
        let mut c = redis::cmd("MEMORY");
        c.arg("USAGE").arg(key).arg("SAMPLES").arg(0);
        c
    };
    let ready: u64 = usage(ready_key).query_async(conn).await?;
    let id = hookrelay_core::DeliveryId::parse(id)?;
    let record: Option<u64> = usage(keys.delivery(&id)).query_async(conn).await?;
    let index: u64 = usage(keys.deliveries(crate::stack::PROJECT, 0))
        .query_async(conn)
        .await?;
    Ok(Sizes {
        job_json: raw.len() as u64,
        ready_per_job: ready / waiting.max(1),
        record: record.unwrap_or(0),
        index_per_delivery: index / waiting.max(1),
    })
}

/// Runs the scenario and prints its tables.
pub async fn run(opts: &Opts, bin: &Path) -> anyhow::Result<()> {
    let n = opts.jobs.max(SMALL * 10);
    println!(
        "\n## backlog: {} jobs waiting, then one worker drains them",
        count(n)
    );
    let mut s = setup(opts, bin).await?;
    let url = s.stack.redis_url();
    let mem_empty = used_memory(&mut s.stack.conn).await?;

    // A small backlog, probed.
    enqueue_direct(&url, SMALL, opts.enqueue_concurrency, opts.pad_bytes).await?;
    let small = vec![
        (10, probe_claims(&s.stack, 10).await?),
        (64, probe_claims(&s.stack, 64).await?),
    ];

    // The rest of the backlog, then probed again.
    let (done, took) =
        enqueue_direct(&url, n - SMALL, opts.enqueue_concurrency, opts.pad_bytes).await?;
    let waiting = s.stack.ready_len().await?;
    let mem_full = used_memory(&mut s.stack.conn).await?;
    let mut t = Table::new(
        "building the backlog (Publisher, no worker running)",
        &["", ""],
    );
    t.pair("events enqueued", count(done + SMALL));
    t.pair("time", secs(took));
    t.row([
        format!("enqueue rate ({} at once)", opts.enqueue_concurrency),
        rate(done, took),
    ]);
    t.pair("jobs waiting (LLEN ready)", count(waiting));
    t.pair("Redis used_memory", mib(mem_full));
    t.row([
        "Redis memory per waiting delivery (job + record + index)".to_owned(),
        format!(
            "{} B",
            count(mem_full.saturating_sub(mem_empty) / waiting.max(1))
        ),
    ]);
    let sizes = job_sizes(&mut s.stack, waiting).await?;
    t.pair("one job's JSON", format!("{} B", count(sizes.job_json)));
    t.pair(
        "ready list, per job (MEMORY USAGE)",
        format!("{} B", count(sizes.ready_per_job)),
    );
    t.pair(
        "one delivery record (MEMORY USAGE; it holds the job again)",
        format!("{} B", count(sizes.record)),
    );
    t.pair(
        "deliveries index, per delivery (MEMORY USAGE)",
        format!("{} B", count(sizes.index_per_delivery)),
    );
    t.print();

    let large = vec![
        (10, probe_claims(&s.stack, 10).await?),
        (64, probe_claims(&s.stack, 64).await?),
    ];
    let mut t = Table::new(
        &format!("claim script round trip ({PROBE_ROUNDS} claims each, handed back after each)"),
        &[
            "jobs waiting",
            "batch asked",
            "jobs per claim",
            "p50",
            "p99",
            "max",
            "p50 per job",
        ],
    );
    for (backlog, rows) in [(SMALL, &small), (waiting, &large)] {
        for (batch, (p, per_claim)) in rows {
            t.row([
                count(backlog),
                batch.to_string(),
                format!("{per_claim:.0}"),
                ms(p.at(50.0)),
                ms(p.at(99.0)),
                ms(p.max()),
                format!("{:.1} µs", p.at(50.0) as f64 / per_claim.max(1.0)),
            ]);
        }
    }
    t.print();

    // Drain with one worker.
    let pids = s.stack.start_workers(1).await?;
    let ready_us = crate::report::now_us();
    let sampler = RssSampler::start(&pids);
    wait_delivered(&s.sink, waiting).await;
    let peak = sampler.finish();
    let mut hits = s.sink.hits_since(0);
    hits.sort_by_key(|h| h.at_us);
    let all = Deliveries::of(&hits);
    let mut t = Table::new(
        &format!(
            "drain with 1 worker × concurrency {} (per tenth of the backlog)",
            opts.concurrency()
        ),
        &[
            "deliveries",
            "jobs waiting at start",
            "time",
            "deliveries/s",
        ],
    );
    let total = hits.len();
    let mut prev_end_us = ready_us;
    for k in 0..10 {
        let (a, b) = (k * total / 10, (k + 1) * total / 10);
        if b <= a {
            continue;
        }
        let end = hits[b - 1].at_us;
        let span = Duration::from_micros(end.saturating_sub(prev_end_us));
        t.row([
            format!("{}–{}", count(a as u64 + 1), count(b as u64)),
            count(total as u64 - a as u64),
            secs(span),
            rate((b - a) as u64, span),
        ]);
        prev_end_us = end;
    }
    t.print();
    let window = (total / 10).clamp(1, 10_000);
    let rate_of = |slice: &[crate::receiver::Hit]| Deliveries::of(slice).rate();
    let mut t = Table::new("first against last deliveries", &["", ""]);
    t.row([
        format!(
            "first {} deliveries ({} waiting)",
            count(window as u64),
            count(total as u64)
        ),
        rate_of(&hits[..window]),
    ]);
    t.row([
        format!(
            "last {} deliveries ({} waiting)",
            count(window as u64),
            count(window as u64)
        ),
        rate_of(&hits[total - window..]),
    ]);
    t.pair("whole drain (first → last)", all.rate());
    t.pair("worker peak VmRSS", mib(peak.first().map_or(0, |p| p.1)));
    t.pair("duplicate webhook-id", count(s.sink.duplicates()));
    t.pair("load average at end", load_average());
    t.print();

    s.stack.stop_workers();
    Ok(())
}
