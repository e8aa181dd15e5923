//! Rates as shares of the machine's own HTTP ceiling, measured in the same run, with the CPU
//! each process spent per event beside them; and what that CPU projects to on more cores.
//!
//! Absolute rates on a shared machine move with whatever else runs on it; a ceiling
//! measured minutes apart on the same machine moves with them, so the ratio of the two is
//! what can be compared across runs.

use std::time::Duration;

use crate::ceiling::{self, Ceiling, Generator, Target};
use crate::nginx::Nginx;
use crate::receiver::{ReceiverKind, Sink, nginx_parts};
use crate::report::{Table, thousands};
use crate::scenarios::{Opts, Setup, cores};

/// The processes a delivery's CPU is split between, in table order.
pub const KINDS: [&str; 5] = [
    "redis-server",
    "api",
    "worker",
    "receiver",
    "load generator",
];

/// Which of [`KINDS`] a CPU part belongs to.
fn kind(label: &str) -> Option<&'static str> {
    if label.starts_with("redis-server") {
        Some("redis-server")
    } else if label == "hookrelay api" {
        Some("api")
    } else if label.starts_with("hookrelay worker") {
        Some("worker")
    } else if label == "bench receiver" || label.starts_with("nginx") {
        Some("receiver")
    } else if label == "bench load" {
        Some("load generator")
    } else {
        None
    }
}

/// CPU µs per event of each of [`KINDS`] (worker processes summed), from a phase's parts.
pub fn by_kind(parts: &[(String, f64)]) -> [f64; 5] {
    let mut out = [0.0; 5];
    for (label, us) in parts {
        if let Some(k) = kind(label)
            && let Some(i) = KINDS.iter().position(|x| *x == k)
        {
            out[i] += us;
        }
    }
    out
}

/// One rate of the run, with its CPU per event.
pub struct Rate {
    /// What was measured.
    pub name: String,
    /// Per second.
    pub rate: f64,
    /// CPU µs per event of each of [`KINDS`].
    pub cpu: [f64; 5],
    /// Anything to say beside it (latency).
    pub note: String,
}

/// The ceilings of a run: into the bench's own receiver first, then into nginx (when
/// nginx is installed).
pub struct Ceilings {
    /// What was measured.
    pub runs: Vec<Ceiling>,
    /// Which of them went into the receiver the run's deliveries went to.
    pub own: Option<usize>,
}

/// Measures the HTTP ceiling into the bench's receiver and into nginx, replaying the first
/// delivery of the run, and prints it. Empty when `--ceiling-secs 0` or nothing was
/// delivered.
pub async fn measure(opts: &Opts, s: &Setup) -> anyhow::Result<Ceilings> {
    let mut out = Ceilings {
        runs: Vec::new(),
        own: None,
    };
    if opts.ceiling_secs == 0 {
        return Ok(out);
    }
    let Some(sample) = s.sink.sample() else {
        println!("\n(no delivery was recorded, so there is no request to replay: no ceiling)");
        return Ok(out);
    };
    let generator = Generator::pick(opts.ceiling_client)?;
    let connections = opts.ceiling_connections();
    let threads = opts.load_threads.max(1);
    let duration = Duration::from_secs(opts.ceiling_secs);

    // The bench's own receiver: the run's one, or a fast one started for this. A ceiling
    // that cannot be measured is reported and left out; the rates stand without it.
    let mut notes: Vec<String> = Vec::new();
    let started_sink = if opts.receiver == ReceiverKind::Nginx {
        match Sink::start(ReceiverKind::Fast, opts.receiver_threads).await {
            Ok(sink) => Some(sink),
            Err(e) => {
                notes.push(format!("the bench receiver could not be started: {e:#}"));
                None
            }
        }
    } else {
        None
    };
    let bench_target = match &started_sink {
        Some(sink) => Some(Target {
            name: "bench receiver (fast)".to_owned(),
            url: sink.url("/hook"),
            parts: Vec::new(),
            in_bench: true,
        }),
        None if opts.receiver != ReceiverKind::Nginx => Some(Target {
            name: format!("bench receiver ({})", opts.receiver.name()),
            url: s.sink.url("/hook"),
            parts: Vec::new(),
            in_bench: true,
        }),
        None => None,
    };

    // nginx: the run's receiver, or one started for this when installed.
    let mut started_nginx = None;
    let nginx_target = if opts.receiver == ReceiverKind::Nginx {
        Some(Target {
            name: "nginx".to_owned(),
            url: s.sink.url("/hook"),
            parts: s.sink.processes(),
            in_bench: false,
        })
    } else if crate::nginx::find().is_none() {
        notes.push(
            "nginx is not installed: no ceiling into nginx (scripts/bench-deps.sh installs it)"
                .to_owned(),
        );
        None
    } else {
        match Nginx::start(opts.receiver_threads).await {
            Ok(n) => {
                let t = Target {
                    name: "nginx".to_owned(),
                    url: n.url("/hook"),
                    parts: nginx_parts(&n),
                    in_bench: false,
                };
                started_nginx = Some(n);
                Some(t)
            }
            Err(e) => {
                notes.push(format!("nginx could not be started: {e:#}"));
                None
            }
        }
    };

    for t in [bench_target, nginx_target].into_iter().flatten() {
        match ceiling::measure(&generator, &t, &sample, connections, threads, duration).await {
            Ok(c) => {
                out.runs.push(c);
                if (t.name == "nginx") == (opts.receiver == ReceiverKind::Nginx) {
                    out.own = Some(out.runs.len() - 1);
                }
            }
            Err(e) => notes.push(format!("the ceiling into {} failed: {e:#}", t.name)),
        }
    }
    drop(started_nginx);
    drop(started_sink);

    let mut t = Table::new(
        &format!(
            "HTTP ceiling of this machine: POSTs/s of the delivered request, {connections} connections, {} s each",
            opts.ceiling_secs
        ),
        &[
            "load generator → receiver",
            "POSTs/s",
            "answered 2xx",
            "failed",
            "latency p50 / p99",
            "receiver CPU µs per request",
            "load generator CPU µs per request",
        ],
    );
    for c in &out.runs {
        t.row([
            format!(
                "{} ({} threads, {} connections) → {}",
                c.generator, c.threads, c.connections, c.target
            ),
            thousands(c.rate().round() as u64) + "/s",
            thousands(c.ok),
            thousands(c.failed),
            format!(
                "{} / {}",
                crate::report::ms(c.p50_us),
                crate::report::ms(c.p99_us)
            ),
            format!("{:.1}", c.receiver_us()),
            format!("{:.1}", c.load_us()),
        ]);
    }
    t.print();
    let headers: Vec<&str> = sample.replayed_headers().map(|(k, _)| k.as_str()).collect();
    println!(
        "\n(the request replayed is the run's first delivery: a {} B body with the headers {}{})",
        sample.body.len(),
        headers.join(", "),
        if opts.receiver == ReceiverKind::Nginx {
            "; nginx logs no body, so the body is filler of the same length"
        } else {
            ""
        }
    );
    if matches!(generator, Generator::Hyper) && crate::ceiling::on_path("wrk").is_none() {
        println!(
            "(wrk is not installed, so the load came from a hyper client in the bench process; \
             scripts/bench-deps.sh installs wrk)"
        );
    }
    for n in &notes {
        println!("({n})");
    }
    Ok(out)
}

fn us(v: f64) -> String {
    if v < 0.05 {
        "0".to_owned()
    } else if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// Prints each rate, its ratio to each ceiling, and the CPU per event of each process.
pub fn print_ratios(ceilings: &Ceilings, rates: &[Rate]) {
    let mut header: Vec<String> = vec!["figure".to_owned(), "rate".to_owned()];
    for (i, c) in ceilings.runs.iter().enumerate() {
        header.push(format!(
            "÷ ceiling into {}{}",
            c.target,
            if ceilings.own == Some(i) {
                " (this run's receiver)"
            } else {
                ""
            }
        ));
    }
    header.extend(KINDS.iter().map(|k| format!("{k} µs")));
    header.push("total µs".to_owned());
    header.push("note".to_owned());
    let header_refs: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "rates as a share of this machine's HTTP ceiling, and CPU µs per event (per request for a ceiling) by process",
        &header_refs,
    );
    let ratio = |rate: f64, c: &Ceiling| {
        let ceil = c.rate();
        if ceil > 0.0 {
            format!("{:.2}", rate / ceil)
        } else {
            "n/a".to_owned()
        }
    };
    for c in &ceilings.runs {
        let mut row = vec![
            format!("ceiling: {} → {}", c.generator, c.target),
            thousands(c.rate().round() as u64) + "/s",
        ];
        row.extend(ceilings.runs.iter().map(|d| ratio(c.rate(), d)));
        let (r, l) = (c.receiver_us(), c.load_us());
        row.extend([
            String::new(),
            String::new(),
            String::new(),
            us(r),
            us(l),
            us(r + l),
            String::new(),
        ]);
        t.row(row);
    }
    for r in rates {
        let mut row = vec![r.name.clone(), thousands(r.rate.round() as u64) + "/s"];
        row.extend(ceilings.runs.iter().map(|c| ratio(r.rate, c)));
        row.extend(r.cpu.iter().map(|v| us(*v)));
        row.push(us(r.cpu.iter().sum()));
        row.push(r.note.clone());
        t.row(row);
    }
    t.print();
    println!(
        "\n(ratio = the rate ÷ the ceiling's POSTs/s, both measured in this run on this machine; \
         \"receiver\" is the bench's receiver threads or nginx's processes, \"load generator\" \
         the API clients, or wrk / the hyper client for a ceiling)"
    );
}

/// Prints what `cpu` (µs per delivery of each of [`KINDS`], publish and delivery together)
/// projects to on 8 and 16 cores, against `measured` deliveries/s on this machine.
pub fn print_projection(cpu: &[f64; 5], measured: f64) {
    let [redis, api, worker, receiver, load] = *cpu;
    let hookrelay = api + worker;
    let everything: f64 = cpu.iter().sum();
    println!(
        "\n### projection to more cores (arithmetic from the CPU per delivery of phase 3, not a measurement)"
    );
    println!(
        "\nInputs, CPU µs per delivery (publish through the API and delivery together): \
         redis-server {}, api {}, worker {}, receiver {}, load generator {}. Model: Redis \
         is single-threaded, so one core of Redis ÷ its µs per delivery is a limit however \
         many cores there are; the API and the workers scale out as processes (one worker \
         process per core: one process drives its deliveries from about one core) on the \
         remaining cores, split in proportion to their CPU; receivers and publishers run on \
         other machines. It ignores contention, memory bandwidth, the network and Redis's own \
         I/O threads, and takes the µs measured here, where every process shares {} cores, \
         as they are: with a core of its own, Redis may find more or fewer commands queued \
         per wake-up, which changes its system-call cost per delivery.",
        us(redis),
        us(api),
        us(worker),
        us(receiver),
        us(load),
        cores()
    );
    if redis <= 0.0 || hookrelay <= 0.0 {
        println!("\n(no CPU was measured: no projection)");
        return;
    }
    let redis_limit = 1e6 / redis;
    let mut t = Table::new(
        "projected deliveries/s",
        &[
            "cores",
            "Redis limit (1 core ÷ Redis µs)",
            "api + workers limit ((cores − 1) ÷ (api + worker µs))",
            "cores for api : workers",
            "processes: api, worker",
            "projected deliveries/s",
            "saturates first",
        ],
    );
    for n in [8u32, 16] {
        let rest = f64::from(n - 1);
        let hr_limit = rest * 1e6 / hookrelay;
        let api_cores = rest * api / hookrelay;
        let worker_cores = rest * worker / hookrelay;
        let first = if redis_limit < hr_limit {
            format!(
                "redis-server (its one core; the api and workers would use {:.0} % of theirs)",
                100.0 * redis_limit / hr_limit
            )
        } else {
            "the api and worker processes (all their cores busy before Redis's)".to_owned()
        };
        t.row([
            n.to_string(),
            thousands(redis_limit.round() as u64) + "/s",
            thousands(hr_limit.round() as u64) + "/s",
            format!("{api_cores:.1} : {worker_cores:.1}"),
            format!(
                "{}, {}",
                api_cores.round().max(1.0),
                worker_cores.round().max(1.0)
            ),
            thousands(redis_limit.min(hr_limit).round() as u64) + "/s",
            first,
        ]);
    }
    t.print();
    let here = cores() as f64;
    let model_here = here * 1e6 / everything;
    println!(
        "\n(check of the model on this machine, where everything shares {here:.0} cores: \
         {here:.0} cores ÷ {} µs in all = {}/s; measured {}/s, {:.0} % of it)",
        us(everything),
        thousands(model_here.round() as u64),
        thousands(measured.round() as u64),
        100.0 * measured / model_here
    );
}
