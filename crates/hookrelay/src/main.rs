//! hookrelay: durable webhook delivery on Redis.
//!
//! One binary, four roles: `serve` (API and a worker in one process), `api`, `worker`, and
//! `publish` (enqueue one event from a shell). Settings come from `config/default.toml`
//! (embedded), an optional TOML file, and `HOOKRELAY_*` environment variables.

mod settings;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hookrelay_core::Keys;
use hookrelay_queue::Queue;
use tokio::sync::watch;

use crate::settings::Settings;

#[derive(Parser, Debug)]
#[command(
    name = "hookrelay",
    version,
    about = "Durable webhook delivery on Redis"
)]
struct Cli {
    /// A TOML settings file (names as in config/default.toml). Also HOOKRELAY_CONFIG.
    #[arg(long, global = true, env = "HOOKRELAY_CONFIG")]
    config: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// REST API and a worker in one process (the one-machine default).
    Serve,
    /// REST API only: enqueues, never delivers.
    Api,
    /// Worker only: run as many as you like against one Redis.
    Worker,
    /// Enqueue one event; prints the event id and delivery ids as JSON.
    Publish(PublishArgs),
}

#[derive(clap::Args, Debug)]
struct PublishArgs {
    /// Project.
    #[arg(long)]
    project: String,
    /// Event name.
    #[arg(long)]
    event: String,
    /// Object type.
    #[arg(long = "object-type", default_value = "")]
    object_type: String,
    /// Object name.
    #[arg(long = "object-name", default_value = "")]
    object_name: String,
    /// Object version.
    #[arg(long)]
    version: Option<String>,
    /// Event data, JSON.
    #[arg(long)]
    data: String,
    /// Result, JSON (sent to webhooks with include_result).
    #[arg(long)]
    result: Option<String>,
    /// Event id: publishing the same id twice enqueues once.
    #[arg(long)]
    id: Option<String>,
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}

/// A shutdown signal that several tasks can wait on: SIGINT or SIGTERM, or a role that
/// failed (so `serve` never keeps a worker running without its API, or the reverse).
fn shutdown_channel() -> (watch::Sender<bool>, watch::Receiver<bool>) {
    let (tx, rx) = watch::channel(false);
    let signal_tx = tx.clone();
    tokio::spawn(async move {
        let tx = signal_tx;
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("shutdown requested");
        let _ = tx.send(true);
    });
    (tx, rx)
}

async fn wait_for(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Connects to Redis, waiting (with a log line now and then) until it answers or shutdown.
async fn connect(settings: &Settings, shutdown: &watch::Receiver<bool>) -> anyhow::Result<Queue> {
    let keys = Keys::new(settings.key_prefix.clone());
    let mut tries = 0u32;
    loop {
        match Queue::connect(&settings.redis_url, keys.clone()).await {
            Ok(q) => return Ok(q.with_retention(settings.retention)),
            Err(e) => {
                tries += 1;
                if tries == 1 || tries.is_multiple_of(30) {
                    tracing::warn!(error = %e, "redis is not reachable yet; retrying");
                }
                if *shutdown.borrow() {
                    anyhow::bail!("stopped before redis was reachable");
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

fn worker_settings(s: &Settings) -> hookrelay_worker::WorkerSettings {
    hookrelay_worker::WorkerSettings {
        concurrency: s.concurrency,
        recovery_timeout: s.recovery_timeout,
        retry: s.retry.clone(),
        http: hookrelay_worker::http::HttpSettings {
            policy: s.allowed_targets.clone(),
            max_body_kept: s.max_response_body,
            ..hookrelay_worker::http::HttpSettings::default()
        },
        shutdown_timeout: s.shutdown_timeout,
    }
}

fn api_settings(s: &Settings) -> anyhow::Result<hookrelay_producer::ApiSettings> {
    let token = s.api_token.clone().context(
        "HOOKRELAY_API_TOKEN is not set: the API has no anonymous access; set a token of at least 8 characters",
    )?;
    Ok(hookrelay_producer::ApiSettings {
        api_token: token,
        body_limit: s.body_limit,
        policy: s.allowed_targets.clone(),
    })
}

async fn run_api(
    settings: &Settings,
    queue: Queue,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let state = hookrelay_producer::AppState::new(queue, api_settings(settings)?);
    let app = hookrelay_producer::app(state);
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("HOOKRELAY_LISTEN: cannot listen on {}", settings.listen))?;
    tracing::info!(listen = %settings.listen, "API listening");
    hookrelay_producer::server::serve(listener, app, Default::default(), wait_for(shutdown))
        .await
        .context("API server")?;
    Ok(())
}

async fn run_worker(
    settings: &Settings,
    queue: Queue,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    hookrelay_worker::run(queue, worker_settings(settings), wait_for(shutdown))
        .await
        .context("worker")
}

async fn publish(settings: &Settings, args: PublishArgs) -> anyhow::Result<()> {
    let data: serde_json::Value = serde_json::from_str(&args.data)
        .map_err(|e| anyhow::anyhow!("--data is not valid JSON: {e}"))?;
    let result = match &args.result {
        Some(r) => Some(
            serde_json::from_str::<serde_json::Value>(r)
                .map_err(|e| anyhow::anyhow!("--result is not valid JSON: {e}"))?,
        ),
        None => None,
    };
    let queue = Queue::connect(&settings.redis_url, Keys::new(settings.key_prefix.clone()))
        .await
        .map_err(|e| anyhow::anyhow!("redis unavailable at HOOKRELAY_REDIS_URL: {e}"))?
        .with_retention(settings.retention);
    let registry = hookrelay_producer::Registry::new(&queue);
    let publisher = hookrelay_producer::Publisher::new(queue, registry);
    let input = hookrelay_producer::EventIn {
        id: args.id,
        event: args.event,
        object_type: args.object_type,
        object_name: args.object_name,
        version: args.version,
        data,
        result,
    };
    let answer = publisher
        .publish(&args.project, input)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("{}", serde_json::to_string(&answer)?);
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let settings = Settings::load(cli.config.as_deref())?;
    init_logging(settings.log_json);
    match cli.command {
        Command::Publish(args) => publish(&settings, args).await,
        Command::Api => {
            let (_tx, shutdown) = shutdown_channel();
            api_settings(&settings)?;
            let queue = connect(&settings, &shutdown).await?;
            run_api(&settings, queue, shutdown).await
        }
        Command::Worker => {
            let (_tx, shutdown) = shutdown_channel();
            let queue = connect(&settings, &shutdown).await?;
            run_worker(&settings, queue, shutdown).await
        }
        Command::Serve => {
            let (tx, shutdown) = shutdown_channel();
            api_settings(&settings)?;
            let queue = connect(&settings, &shutdown).await?;
            let stop_all = |r: anyhow::Result<()>| {
                if r.is_err() {
                    let _ = tx.send(true);
                }
                r
            };
            let api_queue = queue.clone();
            let (api, worker) = tokio::join!(
                async { stop_all(run_api(&settings, api_queue, shutdown.clone()).await) },
                async { stop_all(run_worker(&settings, queue, shutdown.clone()).await) }
            );
            api.and(worker)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hookrelay: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookrelay: {e:#}");
            ExitCode::from(2)
        }
    }
}
