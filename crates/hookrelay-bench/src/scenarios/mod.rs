//! The scenarios, and what they share: the options, the machine description, a running
//! stack with its webhook and receiver, waiting for deliveries with a deadline, and the
//! CPU split table.

pub mod backlog;
pub mod e2e;
pub mod isolation;
pub mod memory;
pub mod pickup;
pub mod ratios;
pub mod redis_cmds;

use std::path::Path;
use std::time::Duration;

use crate::load::Api;
use crate::procstat::{CpuSnapshot, CpuUse};
use crate::receiver::{Hit, ReceiverKind, Sink};
use crate::report::{Percentiles, Table, rate, thousands};
use crate::stack::Stack;
use crate::worker_variant::WorkerVariant;

/// Options shared by the scenarios (each uses the ones that concern it).
#[derive(clap::Args, Debug, Clone)]
pub struct Opts {
    /// Run on a local Redis Cluster of three masters instead of one Redis (e2e and redis
    /// scenarios; the others read one server's accounting).
    #[arg(long)]
    pub cluster: bool,
    /// Queue partitions on the cluster (`HOOKRELAY_PARTITIONS`).
    #[arg(long, default_value_t = 16)]
    pub partitions: u32,
    /// Events per run (e2e: per phase; redis and memory: per run).
    #[arg(long, default_value_t = 20_000)]
    pub events: u64,
    /// Worker processes.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Deliveries in flight per worker process (HOOKRELAY_CONCURRENCY; without it, the
    /// binary's default from config/default.toml).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Concurrent API clients publishing as fast as they are answered (16 leave the API
    /// idle between requests on 2 cores; 64 keep it busy).
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Paced load (e2e), events/s; 0 = half the delivery rate measured in the same run.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// How long the paced load lasts, seconds.
    #[arg(long, default_value_t = 5)]
    pub paced_secs: u64,
    /// Jobs in the backlog (backlog scenario); 1000000 for the full-size claim.
    #[arg(long, default_value_t = 100_000)]
    pub jobs: u64,
    /// Events published one at a time (pickup).
    #[arg(long, default_value_t = 200)]
    pub samples: u64,
    /// Which receiver the worker delivers to: `nginx` runs it as a process of its own, so
    /// its CPU shows apart from the bench's (rates only: nginx cannot see the publish time,
    /// so no end-to-end latency).
    #[arg(long, value_enum, default_value_t = ReceiverKind::Fast)]
    pub receiver: ReceiverKind,
    /// Runtime threads of the receiver (for nginx: worker processes).
    #[arg(long, default_value_t = 1)]
    pub receiver_threads: usize,
    /// Runtime threads of the load generator (API clients, direct enqueue).
    #[arg(long, default_value_t = 2)]
    pub load_threads: usize,
    /// Filler bytes added to each event's data (the delivered body grows by as much).
    #[arg(long, default_value_t = 0)]
    pub pad_bytes: usize,
    /// Webhooks in the project besides the bench one, none matching the bench events (every
    /// publish reads and matches all of a project's webhooks).
    #[arg(long, default_value_t = 0)]
    pub extra_webhooks: usize,
    /// Events enqueued at once when a backlog is built without the API.
    #[arg(long, default_value_t = 64)]
    pub enqueue_concurrency: usize,
    /// What runs as a worker process: the `hookrelay worker` binary, or hookrelay's worker
    /// code hosted by this binary, driven by `block_on` (as the binary does) or inside
    /// `tokio::spawn` (see BENCHMARKS.md).
    #[arg(long, value_enum, default_value_t = WorkerVariant::Binary)]
    pub worker_variant: WorkerVariant,
    /// Extra environment for the hookrelay processes, `NAME=VALUE` (repeatable), e.g.
    /// `TOKIO_WORKER_THREADS=1` or `HOOKRELAY_RETENTION_SECS=3600`.
    #[arg(long = "hookrelay-env", value_name = "NAME=VALUE", value_parser = parse_env)]
    pub hookrelay_env: Vec<(String, String)>,
    /// How long each HTTP ceiling measurement (e2e) lasts, seconds; 0 skips them.
    #[arg(long, default_value_t = 5)]
    pub ceiling_secs: u64,
    /// Connections of the ceiling's load generator; without it, as many as the workers
    /// hold open to the bench webhook (workers × concurrency, capped by the per-webhook
    /// limit `HOOKRELAY_ENDPOINT_CONCURRENCY`).
    #[arg(long)]
    pub ceiling_connections: Option<usize>,
    /// The ceiling's load generator: wrk when installed (`auto`), or the bare hyper client
    /// in the bench process (`hyper`; also what `auto` falls back to).
    #[arg(long, value_enum, default_value_t = crate::ceiling::Choice::Auto)]
    pub ceiling_client: crate::ceiling::Choice,
}

impl Opts {
    /// Deliveries in flight per worker process: the option, or the binary's default.
    pub fn concurrency(&self) -> usize {
        self.concurrency
            .unwrap_or_else(crate::defaults::concurrency)
    }

    /// Deliveries in flight to the bench webhook at most: every worker's slots, capped by
    /// the per-webhook limit (from `--hookrelay-env`, else the binary's default).
    pub fn deliveries_in_flight(&self) -> usize {
        let cap = self
            .hookrelay_env
            .iter()
            .rev()
            .find(|(k, _)| k == "HOOKRELAY_ENDPOINT_CONCURRENCY")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or_else(crate::defaults::endpoint_concurrency);
        (self.workers.max(1) * self.concurrency()).min(cap)
    }

    /// Connections of the ceiling's load generator.
    pub fn ceiling_connections(&self) -> usize {
        self.ceiling_connections
            .unwrap_or_else(|| self.deliveries_in_flight())
            .max(1)
    }
}

/// `NAME=VALUE` → `(NAME, VALUE)`.
fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("expected NAME=VALUE, got {s:?}")),
    }
}

/// A stack with the API up, one webhook pointing at the receiver, and no worker yet.
pub struct Setup {
    /// Redis and the hookrelay processes.
    pub stack: Stack,
    /// A client for the API.
    pub api: Api,
    /// The receiver (dropped after the stack's processes: declared last).
    pub sink: Sink,
}

impl Setup {
    /// The processes whose CPU a scenario splits out: the stack's, and the receiver's when
    /// it runs in a process of its own (nginx).
    pub fn parts(&self) -> crate::procstat::Parts {
        let mut parts = self.stack.parts();
        parts.extend(self.sink.processes());
        parts
    }
}

/// Starts the receiver, Redis and the API, and creates the bench webhook.
pub async fn setup(opts: &Opts, bin: &Path) -> anyhow::Result<Setup> {
    let sink = Sink::start(opts.receiver, opts.receiver_threads).await?;
    let mut stack = Stack::start(
        bin.to_path_buf(),
        opts.concurrency(),
        &opts.hookrelay_env,
        opts.worker_variant,
        opts.cluster.then_some(opts.partitions),
    )
    .await?;
    let base = stack.start_api().await?;
    let api = Api::new(&base, opts.pad_bytes)?;
    api.create_webhook("bench", &sink.url("/hook")).await?;
    for i in 0..opts.extra_webhooks {
        api.create_other_webhook(&format!("other-{i}"), &sink.url("/other"))
            .await?;
    }
    Ok(Setup { stack, api, sink })
}

/// How long to wait for `n` deliveries before giving up: generous (200/s at worst, at
/// least a minute), so a run always ends.
pub fn deadline_for(n: u64) -> Duration {
    Duration::from_secs((n / 200).max(60))
}

/// Waits for `total` deliveries in all; says on stderr when they did not all come.
pub async fn wait_delivered(sink: &Sink, total: u64) -> bool {
    let ok = sink.wait_for(total, deadline_for(total)).await;
    if !ok {
        eprintln!(
            "warning: only {} of {} deliveries arrived before the deadline",
            sink.count(),
            total
        );
    }
    ok
}

/// Figures of a set of deliveries: how many, first to last arrival, and latencies.
pub struct Deliveries {
    /// How many arrived.
    pub count: u64,
    /// First arrival (µs since the start of the run).
    pub first_us: u64,
    /// Last arrival.
    pub last_us: u64,
    /// Publish → received of each (µs).
    pub latency: Percentiles,
}

impl Deliveries {
    /// Figures of `hits`.
    pub fn of(hits: &[Hit]) -> Self {
        Self {
            count: hits.len() as u64,
            first_us: hits.iter().map(|h| h.at_us).min().unwrap_or(0),
            last_us: hits.iter().map(|h| h.at_us).max().unwrap_or(0),
            latency: Percentiles::new(hits.iter().filter_map(Hit::latency_us).collect()),
        }
    }

    /// From the first arrival to the last.
    pub fn span(&self) -> Duration {
        Duration::from_micros(self.last_us.saturating_sub(self.first_us))
    }

    /// Deliveries per second from the first arrival to the last (the first one opens the
    /// interval, so `count - 1` deliveries fall inside it).
    pub fn rate(&self) -> String {
        rate(self.count.saturating_sub(1), self.span())
    }

    /// Deliveries per second from the first to the last arrival, as a number.
    pub fn rate_value(&self) -> f64 {
        let s = self.span().as_secs_f64();
        if s > 0.0 {
            self.count.saturating_sub(1) as f64 / s
        } else {
            0.0
        }
    }
}

/// One phase of a CPU table: its name, each part's use, and how many events went
/// through it (to show CPU per event).
struct CpuPhase {
    name: String,
    rows: Vec<CpuUse>,
    events: u64,
}

/// One row per part of the system, one column per phase: share of a core, and CPU time
/// per event.
pub struct CpuTable {
    phases: Vec<CpuPhase>,
}

impl CpuTable {
    /// An empty table.
    pub fn new() -> Self {
        Self { phases: Vec::new() }
    }

    /// Adds the CPU used between `before` and `after`, while `events` events went through
    /// (published or delivered), as one phase.
    pub fn phase(&mut self, name: &str, before: &CpuSnapshot, after: &CpuSnapshot, events: u64) {
        self.phases.push(CpuPhase {
            name: name.to_owned(),
            rows: after.since(before),
            events,
        });
    }

    /// CPU µs per event of each part in the phase named `name`.
    pub fn per_event(&self, name: &str) -> Vec<(String, f64)> {
        self.phases
            .iter()
            .find(|p| p.name == name)
            .map(|p| {
                p.rows
                    .iter()
                    .map(|r| (r.label.clone(), r.secs * 1e6 / p.events.max(1) as f64))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Prints two tables, parts by phase: "% of one core", then "CPU µs per event". Parts
    /// missing from a phase (a worker not started yet) are left blank.
    pub fn print(&self, title: &str) {
        let mut header = vec!["process"];
        header.extend(self.phases.iter().map(|p| p.name.as_str()));
        let mut parts: Vec<String> = Vec::new();
        for p in &self.phases {
            for r in &p.rows {
                if !parts.contains(&r.label) {
                    parts.push(r.label.clone());
                }
            }
        }
        let total = "total".to_owned();
        let cell = |p: &CpuPhase, part: &str, f: &dyn Fn(&CpuUse) -> f64| -> Option<f64> {
            if part == "total" {
                Some(p.rows.iter().map(f).sum())
            } else {
                p.rows.iter().find(|r| r.label == part).map(f)
            }
        };
        let mut share = Table::new(&format!("{title}: share of one core"), &header);
        let mut per_event = Table::new(&format!("{title}: CPU µs per event"), &header);
        for part in parts.iter().chain(std::iter::once(&total)) {
            let mut a = vec![part.clone()];
            let mut b = vec![part.clone()];
            for p in &self.phases {
                a.push(
                    cell(p, part, &|r| r.percent)
                        .map(|v| format!("{v:.0} %"))
                        .unwrap_or_default(),
                );
                b.push(
                    cell(p, part, &|r| r.secs)
                        .map(|v| format!("{:.0}", v * 1e6 / p.events.max(1) as f64))
                        .unwrap_or_default(),
                );
            }
            share.row(a);
            per_event.row(b);
        }
        share.print();
        println!(
            "\n(100 % = one core fully busy; the machine has {} cores)",
            cores()
        );
        per_event.print();
    }
}

/// Logical CPUs available.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `/proc/loadavg`'s three averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Prints the machine and the options in force.
pub fn print_machine(opts: &Opts) {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kib: u64 = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let redis = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|v| {
            v.split_whitespace()
                .find_map(|w| w.strip_prefix("v=").map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let mut t = Table::new("machine", &["", ""]);
    t.pair("cores", cores().to_string());
    t.pair("cpu", model);
    t.pair(
        "memory",
        format!("{:.1} GiB", mem_kib as f64 / (1024.0 * 1024.0)),
    );
    t.pair("redis-server", redis);
    t.pair("load average at start", load_average());
    t.row([
        "options".to_owned(),
        format!(
            "workers {} × concurrency {}, {} API clients, receiver {} ({} thread), pad {} B",
            opts.workers,
            opts.concurrency(),
            opts.clients,
            opts.receiver.name(),
            opts.receiver_threads,
            opts.pad_bytes
        ),
    ]);
    t.row([
        "redis".to_owned(),
        if opts.cluster {
            format!(
                "Redis Cluster, 3 masters on this machine, {} partitions",
                opts.partitions
            )
        } else {
            "one redis-server".to_owned()
        },
    ]);
    if opts.extra_webhooks > 0 {
        t.pair(
            "other webhooks in the project",
            opts.extra_webhooks.to_string(),
        );
    }
    if opts.worker_variant != WorkerVariant::Binary {
        t.row([
            "worker processes".to_owned(),
            format!(
                "hookrelay's worker code in this binary, variant {}",
                opts.worker_variant.arg()
            ),
        ]);
    }
    if !opts.hookrelay_env.is_empty() {
        let env: Vec<String> = opts
            .hookrelay_env
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        t.pair("hookrelay environment", env.join(" "));
    }
    t.print();
}

/// `n` with thousands separators, for table cells.
pub fn count(n: u64) -> String {
    thousands(n)
}

/// Claims `batch` jobs and hands them back at once, `rounds` times; returns the round-trip
/// time of each claim (µs) and how many jobs a claim took on average.
pub async fn probe_claims(
    queue: &hookrelay_queue::Queue,
    batch: usize,
    rounds: usize,
) -> anyhow::Result<(Percentiles, f64)> {
    let mut times = Vec::with_capacity(rounds);
    let mut taken = 0usize;
    for _ in 0..rounds {
        let start = std::time::Instant::now();
        let claimed = queue
            .claim("bench-probe", batch, Duration::from_secs(60))
            .await?;
        times.push(start.elapsed().as_micros() as u64);
        taken += claimed.jobs.len();
        let held: Vec<(String, String)> = claimed
            .jobs
            .iter()
            .map(|j| (j.id.clone(), j.endpoint.clone()))
            .collect();
        queue.release("bench-probe", &held).await?;
    }
    Ok((Percentiles::new(times), taken as f64 / rounds.max(1) as f64))
}
