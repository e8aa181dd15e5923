//! `redis`: Redis commands per published event and per delivery, from `INFO
//! commandstats` read before publishing, after publishing (no worker running), after the
//! workers drained everything, and after a few idle seconds. `INFO commandstats` counts
//! commands run inside Lua scripts too; a short second run under `MONITOR` tells which
//! commands are round trips from a client and which run inside a script.

use std::path::Path;
use std::time::Duration;

use crate::load::publish_closed;
use crate::monitor::{Monitor, Seen};
use crate::procstat::cpu_secs;
use crate::redisinfo::{CommandStats, command_stats_all, diff};
use crate::report::Table;
use crate::scenarios::{Opts, count, setup, wait_delivered};

/// Idle time measured after the drain, to see what idle workers cost Redis.
const IDLE: Duration = Duration::from_secs(5);

/// Commands only the bench itself sends during these runs (reading stats, waiting for
/// worker heartbeats, the MONITOR end mark); hookrelay's API and worker send none of them
/// on these paths, so they are left out of the figures.
const BENCH_OWN: [&str; 4] = ["info", "zcard", "echo", "llen"];

fn without_bench(mut d: CommandStats) -> CommandStats {
    d.retain(|name, _| !BENCH_OWN.contains(&name.as_str()));
    d
}

fn seen_without_bench(mut s: Seen) -> Seen {
    s.retain(|name, _| !BENCH_OWN.contains(&name.as_str()));
    s
}

fn per(calls: u64, n: u64) -> String {
    if calls == 0 {
        String::new()
    } else {
        format!("{:.2}", calls as f64 / n.max(1) as f64)
    }
}

fn origin(seen: &Seen, name: &str) -> &'static str {
    match seen.get(name) {
        Some((c, l)) if *c > 0 && *l > 0 => "both",
        Some((c, _)) if *c > 0 => "client",
        Some((_, l)) if *l > 0 => "script",
        _ => "",
    }
}

fn round_trips(seen: &Seen) -> u64 {
    seen.values().map(|(c, _)| *c).sum()
}

fn inner(seen: &Seen) -> u64 {
    seen.values().map(|(_, l)| *l).sum()
}

/// Runs the scenario and prints its tables.
pub async fn run(opts: &Opts, bin: &Path) -> anyhow::Result<()> {
    let n = opts.events;
    println!(
        "\n## redis: commands per event and per delivery ({} events)",
        count(n)
    );
    let mut s = setup(opts, bin).await?;
    let conn = &mut s.stack.conn.clone();
    // On a cluster: every master's counters, added up.
    let mut nodes = s.stack.node_conns.clone();
    let redis_pids: Vec<u32> = if s.stack.cluster_pids.is_empty() {
        vec![s.stack.redis_pid]
    } else {
        s.stack.cluster_pids.clone()
    };
    let redis_cpu = || redis_pids.iter().map(|p| cpu_secs(*p)).sum::<f64>();

    let s0 = command_stats_all(&mut nodes).await?;
    let published = publish_closed(&s.api, n, opts.clients).await;
    let s1 = command_stats_all(&mut nodes).await?;
    let redis_cpu0 = redis_cpu();
    s.stack.start_workers(opts.workers).await?;
    wait_delivered(&s.sink, published.accepted).await;
    let s2 = command_stats_all(&mut nodes).await?;
    let redis_cpu1 = redis_cpu();
    tokio::time::sleep(IDLE).await;
    let s3 = command_stats_all(&mut nodes).await?;

    // The MONITOR sample: a tenth of the events (at most 1,000), publish and drain apart,
    // in the same shape as the measured run (one server: MONITOR sees one node only, so a
    // cluster is not sampled).
    let m = (n / 10).clamp(10, 1_000);
    s.stack.stop_workers();
    let (seen_publish, seen_deliver, sampled) = if opts.cluster {
        (Seen::default(), Seen::default(), 0)
    } else {
        let port = redis_port(&s.stack.redis_url());
        let mon = Monitor::start(port).await?;
        let sample = publish_closed(&s.api, m, opts.clients).await;
        let seen_publish = seen_without_bench(mon.finish(conn).await?);
        let mon = Monitor::start(port).await?;
        let base = s.sink.count();
        s.stack.start_workers(opts.workers).await?;
        wait_delivered(&s.sink, base + sample.accepted).await;
        let seen_deliver = seen_without_bench(mon.finish(conn).await?);
        (seen_publish, seen_deliver, sample.accepted)
    };

    let publish = without_bench(diff(&s0, &s1));
    let deliver = without_bench(diff(&s1, &s2));
    let idle = without_bench(diff(&s2, &s3));
    let delivered = published.accepted;
    print_commands(
        &publish,
        &deliver,
        &seen_publish,
        &seen_deliver,
        n,
        delivered,
    );

    let claims = deliver.get("rpop").map_or(0, |c| c.calls);
    let evalsha = |d: &CommandStats| d.get("evalsha").map_or(0, |c| c.calls);
    let total = |d: &CommandStats| d.values().map(|c| c.calls).sum::<u64>();
    let mut t = Table::new("summary", &["", "per published event", "per delivery"]);
    t.row([
        "commands executed (INFO commandstats, script commands included)".to_owned(),
        per(total(&publish), n),
        per(total(&deliver), delivered),
    ]);
    t.row([
        "round trips (commands sent by a client, MONITOR sample)".to_owned(),
        per(round_trips(&seen_publish), sampled),
        per(round_trips(&seen_deliver), sampled),
    ]);
    t.row([
        "commands run inside scripts (MONITOR sample)".to_owned(),
        per(inner(&seen_publish), sampled),
        per(inner(&seen_deliver), sampled),
    ]);
    t.row([
        "script calls (EVALSHA)".to_owned(),
        per(evalsha(&publish), n),
        per(evalsha(&deliver), delivered),
    ]);
    t.row([
        "Redis time inside scripts (EVALSHA µs)".to_owned(),
        per(publish.get("evalsha").map_or(0, |c| c.usec), n),
        per(deliver.get("evalsha").map_or(0, |c| c.usec), delivered),
    ]);
    t.row([
        "redis-server CPU per delivery (/proc, µs)".to_owned(),
        String::new(),
        format!(
            "{:.1}",
            (redis_cpu1 - redis_cpu0) * 1e6 / delivered.max(1) as f64
        ),
    ]);
    t.row([
        "jobs per claim (deliveries ÷ claim scripts)".to_owned(),
        String::new(),
        if claims > 0 {
            format!("{:.1}", delivered as f64 / claims as f64)
        } else {
            String::new()
        },
    ]);
    t.print();

    let mut t = Table::new(
        &format!(
            "idle: {} worker(s) with nothing to do, {} s",
            opts.workers,
            IDLE.as_secs()
        ),
        &["command", "calls per second"],
    );
    for (name, c) in &idle {
        t.row([
            name.clone(),
            format!("{:.1}", c.calls as f64 / IDLE.as_secs_f64()),
        ]);
    }
    t.print();
    s.stack.stop_workers();
    Ok(())
}

fn redis_port(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or(6379)
}

fn print_commands(
    publish: &CommandStats,
    deliver: &CommandStats,
    seen_publish: &Seen,
    seen_deliver: &Seen,
    events: u64,
    delivered: u64,
) {
    let mut names: Vec<&String> = publish.keys().chain(deliver.keys()).collect();
    names.sort();
    names.dedup();
    let mut t = Table::new(
        "commands by name (INFO commandstats)",
        &[
            "command",
            "per event published",
            "sent by",
            "per delivery",
            "sent by",
            "µs per call",
        ],
    );
    for name in names {
        let p = publish.get(name).copied().unwrap_or_default();
        let d = deliver.get(name).copied().unwrap_or_default();
        let calls = p.calls + d.calls;
        let usec = p.usec + d.usec;
        t.row([
            name.clone(),
            per(p.calls, events),
            origin(seen_publish, name).to_owned(),
            per(d.calls, delivered),
            origin(seen_deliver, name).to_owned(),
            format!("{:.2}", usec as f64 / calls.max(1) as f64),
        ]);
    }
    t.print();
    println!(
        "\n(\"sent by\": client = a round trip of its own, script = run inside a Lua script; \
         EVALSHA time includes the commands its script runs)"
    );
}
