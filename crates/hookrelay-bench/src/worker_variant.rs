//! Worker processes hosted by the bench binary itself, to measure how the way the worker's
//! future is driven changes throughput, with hookrelay's own worker code unchanged
//! (`hookrelay_worker::run`):
//!
//! - `inline`: `runtime.block_on(run(…))`, as the `hookrelay` binary does. The apalis
//!   monitor polls its workers, and a worker polls every delivery in flight, inside that one
//!   future, so all of it runs on the thread that called `block_on` (the main thread, which is
//!   not one of the runtime's worker threads);
//! - `spawned`: the same future inside `tokio::spawn`, so it runs on a runtime worker thread,
//!   next to the IO driver that wakes it.
//!
//! `inline` is the control: it should match the `hookrelay worker` binary.
//! Settings come from the same environment variables as `hookrelay worker`
//! (`HOOKRELAY_REDIS_URL`, `HOOKRELAY_KEY_PREFIX`, `HOOKRELAY_CONCURRENCY`,
//! `HOOKRELAY_ALLOWED_TARGETS`); everything else is the binary's default.

use std::process::ExitCode;
use std::time::Duration;

use hookrelay_core::Keys;
use hookrelay_core::retry::RetryPolicy;
use hookrelay_core::target::TargetPolicy;
use hookrelay_queue::Queue;
use hookrelay_worker::WorkerSettings;
use hookrelay_worker::http::HttpSettings;

/// The first argument that turns the bench binary into a worker process.
pub const ARG: &str = "__worker";

/// How the bench starts worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum WorkerVariant {
    /// The release `hookrelay worker` binary.
    Binary,
    /// hookrelay's worker code driven by `block_on`, as in the binary (the control).
    Inline,
    /// hookrelay's worker code inside `tokio::spawn`.
    Spawned,
}

impl WorkerVariant {
    /// The argument naming the variant after [`ARG`].
    pub fn arg(self) -> &'static str {
        match self {
            WorkerVariant::Binary => "binary",
            WorkerVariant::Inline => "inline",
            WorkerVariant::Spawned => "spawned",
        }
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

async fn worker() -> anyhow::Result<()> {
    let url = env("HOOKRELAY_REDIS_URL", "redis://127.0.0.1:6379");
    let prefix = env("HOOKRELAY_KEY_PREFIX", "hookrelay");
    let concurrency: usize = match std::env::var("HOOKRELAY_CONCURRENCY") {
        Ok(v) => v.parse()?,
        Err(_) => crate::defaults::concurrency(),
    };
    let policy = TargetPolicy::parse(&env("HOOKRELAY_ALLOWED_TARGETS", ""))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let queue = Queue::connect(&url, Keys::new(prefix)).await?;
    let settings = WorkerSettings {
        concurrency,
        recovery_timeout: Duration::from_secs(15),
        retry: RetryPolicy::default(),
        http: HttpSettings {
            policy,
            ..HttpSettings::default()
        },
        shutdown_timeout: Duration::from_secs(35),
        announcer: None,
    };
    let shutdown = async {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            term.recv().await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    hookrelay_worker::run(queue, settings, shutdown).await?;
    Ok(())
}

/// Runs a worker process of `variant` until SIGTERM.
pub fn main(variant: &str) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("worker: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = match variant {
        "inline" => runtime.block_on(worker()),
        "spawned" => runtime.block_on(async {
            tokio::spawn(worker())
                .await
                .map_err(|e| anyhow::anyhow!("worker task: {e}"))?
        }),
        other => Err(anyhow::anyhow!("unknown worker variant {other:?}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker: {e:#}");
            ExitCode::from(1)
        }
    }
}
