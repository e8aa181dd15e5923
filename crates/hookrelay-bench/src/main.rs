//! hookrelay-bench: measures hookrelay end to end and prints the figures.
//!
//! ```text
//! cargo run --release -p hookrelay-bench -- <scenario> [options]
//! ```
//!
//! Each scenario starts its own redis-server on a free loopback port, the release
//! `hookrelay` binary as `api` and `worker` child processes, and a local receiver that
//! answers 200; it prints a few Markdown tables and stops by itself. Nothing asserts on
//! speed: the figures are for people (see BENCHMARKS.md for how they were taken).
//!
//! Scenarios: `e2e` (publish rate, delivery rate, end-to-end latency, then the machine's own
//! HTTP ceiling measured with wrk and every rate as a ratio of it), `backlog` (a large
//! backlog drains as fast as a small one), `pickup` (an idle worker picks an event up in
//! milliseconds), `redis` (Redis commands per delivery), `memory` (worker RSS), `all`.

mod ceiling;
mod defaults;
mod load;
mod monitor;
mod nginx;
mod procstat;
mod receiver;
mod redisinfo;
mod report;
mod scenarios;
mod stack;
mod worker_variant;

use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// What to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Publish rate through the API, delivery rate, end-to-end latency (saturated and paced).
    E2e,
    /// Drain rate and claim latency with a large backlog against a small one.
    Backlog,
    /// Publish → received latency of single events to an idle worker.
    Pickup,
    /// Redis commands per published event and per delivery.
    Redis,
    /// Worker, API and Redis resident memory at start, under load and after.
    Memory,
    /// A hanging receiver and a burst beside a healthy webhook; claim cost with 10,000
    /// endpoints holding work.
    Isolation,
    /// Every scenario above, one after the other, with the given options.
    All,
}

/// hookrelay's benchmark harness: prints throughput, latency, Redis commands and memory.
#[derive(Parser, Debug)]
#[command(name = "hookrelay-bench", version)]
struct Cli {
    /// The scenario to run.
    #[arg(value_enum)]
    scenario: Scenario,
    #[command(flatten)]
    opts: scenarios::Opts,
}

fn main() -> ExitCode {
    // Re-executed as a worker process (`--worker-variant inline|spawned`).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(worker_variant::ARG) {
        return worker_variant::main(args.get(2).map_or("", String::as_str));
    }
    let cli = Cli::parse();
    let bin = match stack::build_binary() {
        Ok(b) => b,
        Err(e) => {
            eprintln!("hookrelay-bench: {e:#}");
            return ExitCode::from(2);
        }
    };
    // The load generator's threads are named so their CPU can be told apart from the
    // receiver's (`bench-recv`).
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cli.opts.load_threads.max(1))
        .thread_name("bench-load")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookrelay-bench: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let scenarios: Vec<Scenario> = match cli.scenario {
        Scenario::All => vec![
            Scenario::E2e,
            Scenario::Backlog,
            Scenario::Pickup,
            Scenario::Redis,
            Scenario::Memory,
            Scenario::Isolation,
        ],
        one => vec![one],
    };
    let result = runtime.block_on(async {
        scenarios::print_machine(&cli.opts);
        for s in scenarios {
            match s {
                Scenario::E2e => scenarios::e2e::run(&cli.opts, &bin).await?,
                Scenario::Backlog => scenarios::backlog::run(&cli.opts, &bin).await?,
                Scenario::Pickup => scenarios::pickup::run(&cli.opts, &bin).await?,
                Scenario::Redis => scenarios::redis_cmds::run(&cli.opts, &bin).await?,
                Scenario::Memory => scenarios::memory::run(&cli.opts, &bin).await?,
                Scenario::Isolation => scenarios::isolation::run(&cli.opts, &bin).await?,
                Scenario::All => {}
            }
        }
        anyhow::Ok(())
    });
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrelay-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}
