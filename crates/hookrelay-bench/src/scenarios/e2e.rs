//! `e2e`: events through the REST API to one webhook, delivered by worker processes to a
//! local receiver that answers 200. Four phases on one stack:
//!
//! 1. publish N events through the API while no worker runs (the API's own rate);
//! 2. start W workers and let them drain those N (delivery rate from a standing queue);
//! 3. publish N more through the API while the workers run (both at once, saturated);
//! 4. paced load at a fixed rate below saturation: end-to-end latency as users see it.
//!
//! Then the machine's own HTTP ceiling (see [`crate::ceiling`]) into the bench's receiver
//! and into nginx, every rate above as a ratio of it with each process's CPU per event, and
//! what that CPU projects to on 8 and 16 cores.

use std::path::Path;
use std::time::Duration;

use crate::load::{PublishRun, publish_closed, publish_paced};
use crate::procstat::{CpuSnapshot, RssSampler, rss_bytes};
use crate::report::{Table, mib, ms, rate, secs};
use crate::scenarios::ratios::{self, Rate};
use crate::scenarios::{CpuTable, Deliveries, Opts, count, load_average, setup, wait_delivered};

/// Events per second of a publishing run.
fn per_sec(n: u64, span: Duration) -> f64 {
    let s = span.as_secs_f64();
    if s > 0.0 { n as f64 / s } else { 0.0 }
}

fn publish_rows(t: &mut Table, run: &PublishRun) {
    t.pair("events accepted (202)", count(run.accepted));
    if run.failed > 0 {
        t.row([
            "events refused or failed".to_owned(),
            format!(
                "{} (first: {})",
                count(run.failed),
                run.first_error.as_deref().unwrap_or("")
            ),
        ]);
    }
    t.pair("publish time", secs(run.span));
    t.pair("publish rate", rate(run.accepted, run.span));
    t.pair("202 latency", run.latency.summary_ms());
}

/// Runs the scenario and prints its tables.
pub async fn run(opts: &Opts, bin: &Path) -> anyhow::Result<()> {
    println!("\n## e2e: API → Redis → worker → receiver");
    let mut s = setup(opts, bin).await?;
    println!("\n{}", s.stack.describe());
    let n = opts.events;
    let mut cpu = CpuTable::new();

    // 1. Publish with no worker running.
    let c0 = CpuSnapshot::take(&s.parts());
    let pre = publish_closed(&s.api, n, opts.clients).await;
    let c1 = CpuSnapshot::take(&s.parts());
    cpu.phase("1 publish only", &c0, &c1, pre.accepted);
    let mut rates = vec![Rate {
        name: format!("1. publish only, events/s ({} clients)", opts.clients),
        rate: per_sec(pre.accepted, pre.span),
        cpu: ratios::by_kind(&cpu.per_event("1 publish only")),
        note: format!("202 p50 {}", ms(pre.latency.at(50.0))),
    }];
    let waiting = s.stack.ready_len().await?;
    let mut t = Table::new(
        &format!(
            "1. publish through the API, no worker running ({} clients)",
            opts.clients
        ),
        &["", ""],
    );
    publish_rows(&mut t, &pre);
    t.pair("jobs waiting afterwards", count(waiting));
    t.print();

    // 2. Start the workers and drain what is waiting.
    let spawned_us = crate::report::now_us();
    let pids = s.stack.start_workers(opts.workers).await?;
    let ready_us = crate::report::now_us();
    let rss_start: Vec<u64> = pids.iter().map(|p| rss_bytes(*p).unwrap_or(0)).collect();
    let sampler = RssSampler::start(&pids);
    let c2 = CpuSnapshot::take(&s.parts());
    wait_delivered(&s.sink, pre.accepted).await;
    let c3 = CpuSnapshot::take(&s.parts());
    cpu.phase("2 drain", &c2, &c3, pre.accepted);
    let peak_drain = sampler.finish();
    let drained = Deliveries::of(&s.sink.hits_since(0));
    rates.push(Rate {
        name: format!(
            "2. drain, deliveries/s ({} worker(s) × {})",
            opts.workers,
            opts.concurrency()
        ),
        rate: drained.rate_value(),
        cpu: ratios::by_kind(&cpu.per_event("2 drain")),
        note: String::new(),
    });
    let mut t = Table::new(
        &format!(
            "2. drain the {} waiting jobs: {} worker(s) × concurrency {}",
            count(pre.accepted),
            opts.workers,
            opts.concurrency()
        ),
        &["", ""],
    );
    t.pair("deliveries", count(drained.count));
    t.pair(
        "worker start-up (spawn → first heartbeat)",
        ms(ready_us - spawned_us),
    );
    t.pair(
        "worker spawn → first delivery",
        ms(drained.first_us.saturating_sub(spawned_us)),
    );
    t.pair("first → last delivery", secs(drained.span()));
    t.pair("delivery rate (first → last)", drained.rate());
    t.row([
        "delivery rate (worker spawn → last)".to_owned(),
        rate(
            drained.count,
            Duration::from_micros(drained.last_us.saturating_sub(spawned_us)),
        ),
    ]);
    t.print();

    // 3. Publish through the API while the workers deliver.
    let base = s.sink.count();
    let sampler = RssSampler::start(&pids);
    let c4 = CpuSnapshot::take(&s.parts());
    let live = publish_closed(&s.api, n, opts.clients).await;
    wait_delivered(&s.sink, base + live.accepted).await;
    let c5 = CpuSnapshot::take(&s.parts());
    cpu.phase("3 publish + deliver", &c4, &c5, live.accepted);
    let peak_live = sampler.finish();
    let d = Deliveries::of(&s.sink.hits_since(base as usize));
    let live_cpu = ratios::by_kind(&cpu.per_event("3 publish + deliver"));
    let live_rate = d.rate_value();
    rates.push(Rate {
        name: "3. publish + deliver at once, deliveries/s".to_owned(),
        rate: live_rate,
        cpu: live_cpu,
        note: if d.latency.is_empty() {
            String::new()
        } else {
            format!("e2e p50 {}", ms(d.latency.at(50.0)))
        },
    });
    let mut t = Table::new(
        &format!(
            "3. publish through the API while {} worker(s) deliver ({} clients, as fast as answered)",
            opts.workers, opts.clients
        ),
        &["", ""],
    );
    publish_rows(&mut t, &live);
    t.pair("deliveries", count(d.count));
    t.pair("delivery rate (first → last)", d.rate());
    t.pair(
        "end-to-end latency (publish → received), saturated",
        d.latency.summary_ms(),
    );
    t.print();

    // 4. Paced load below saturation.
    let paced_rate = if opts.rate > 0.0 {
        opts.rate
    } else {
        // Half the saturated rate, rounded down to a hundred (at least 100/s).
        ((d.rate_value().min(drained.rate_value()) / 2.0 / 100.0).floor() * 100.0).max(100.0)
    };
    let base = s.sink.count();
    let c6 = CpuSnapshot::take(&s.parts());
    let paced = publish_paced(
        &s.api,
        paced_rate,
        Duration::from_secs(opts.paced_secs),
        1024,
    )
    .await;
    wait_delivered(&s.sink, base + paced.accepted).await;
    let c7 = CpuSnapshot::take(&s.parts());
    let paced_name = format!("4 paced {paced_rate:.0}/s");
    cpu.phase(&paced_name, &c6, &c7, paced.accepted);
    let d = Deliveries::of(&s.sink.hits_since(base as usize));
    rates.push(Rate {
        name: "4. paced, events/s (fixed rate)".to_owned(),
        rate: paced_rate,
        cpu: ratios::by_kind(&cpu.per_event(&paced_name)),
        note: if d.latency.is_empty() {
            "no latency (nginx sees no publish time)".to_owned()
        } else {
            format!(
                "e2e p50 {} / p99 {}",
                ms(d.latency.at(50.0)),
                ms(d.latency.at(99.0))
            )
        },
    });
    let mut t = Table::new(
        &format!(
            "4. paced load: {paced_rate:.0} events/s for {} s through the API",
            opts.paced_secs
        ),
        &["", ""],
    );
    publish_rows(&mut t, &paced);
    t.pair("deliveries", count(d.count));
    t.pair(
        "end-to-end latency (publish → received)",
        d.latency.summary_ms(),
    );
    t.pair("latency p90", ms(d.latency.at(90.0)));
    t.print();

    cpu.print("CPU by process, per phase");

    let rss_after: Vec<u64> = pids.iter().map(|p| rss_bytes(*p).unwrap_or(0)).collect();
    let mut t = Table::new(
        "worker memory (VmRSS)",
        &[
            "worker",
            "ready",
            "peak while draining",
            "peak while publishing",
            "after",
        ],
    );
    for (i, pid) in pids.iter().enumerate() {
        let peak = |v: &[(u32, u64)]| v.iter().find(|(p, _)| p == pid).map_or(0, |(_, r)| *r);
        t.row([
            format!("{} (pid {pid})", i + 1),
            mib(rss_start[i]),
            mib(peak(&peak_drain)),
            mib(peak(&peak_live)),
            mib(rss_after[i]),
        ]);
    }
    t.print();

    let mut t = Table::new("receiver", &["", ""]);
    t.pair("requests", count(s.sink.count()));
    t.pair("TCP connections opened", count(s.sink.connections()));
    t.pair("duplicate webhook-id", count(s.sink.duplicates()));
    t.pair("load average at end", load_average());
    t.print();

    s.stack.stop_workers();

    // The machine's own HTTP ceiling, now that the worker's request is known, and every
    // rate as a share of it.
    let ceilings = ratios::measure(opts, &s).await?;
    ratios::print_ratios(&ceilings, &rates);
    ratios::print_projection(&live_cpu, live_rate);
    Ok(())
}
