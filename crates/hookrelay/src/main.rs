//! hookrelay: durable webhook delivery on Redis.
//!
//! One binary for every role: `serve` (API and a worker in one process), `api`, `worker`,
//! `publish` (enqueue one event from a shell), `receive` (a local receiver for development),
//! and commands for operators (`settings`, `queue`, `recover`, `deliveries`, `webhooks`).
//! Settings come from `config/default.toml` (embedded), an optional TOML file, and
//! `HOOKRELAY_*` environment variables.

mod ops;
mod receive;
mod settings;

use std::process::ExitCode;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use clap::{Parser, Subcommand};
use hookrelay_queue::Queue;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::settings::Settings;

/// Settings that every command reading Redis uses.
const REDIS: &[&str] = &["redis_url", "key_prefix"];

fn help(keys: &[&str], example: &str) -> String {
    let mut out = if keys.is_empty() {
        "Settings: none (only the options above).\n".to_owned()
    } else {
        settings::help_text_for(keys)
    };
    out.push_str("\nExample:\n  ");
    out.push_str(example);
    out.push('\n');
    out
}

#[derive(Parser, Debug)]
#[command(
    name = "hookrelay",
    version,
    about = "Durable webhook delivery on Redis",
    after_help = "Each command's --help lists the HOOKRELAY_* settings it reads, with defaults, and an example.\n\nExample:\n  HOOKRELAY_API_TOKEN=change-me-please hookrelay serve"
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
    #[command(after_help = help(settings::ALL, "HOOKRELAY_API_TOKEN=change-me-please hookrelay serve"))]
    Serve,
    /// REST API only: enqueues, never delivers.
    #[command(after_help = help(settings::ALL, "HOOKRELAY_API_TOKEN=change-me-please HOOKRELAY_LISTEN=0.0.0.0:8080 hookrelay api"))]
    Api,
    /// Worker only: run as many as you like against one Redis.
    #[command(after_help = help(settings::ALL, "HOOKRELAY_CONCURRENCY=128 HOOKRELAY_METRICS_LISTEN=0.0.0.0:9090 hookrelay worker"))]
    Worker,
    /// Enqueue one event; prints the event id and delivery ids as JSON.
    #[command(after_help = help(&["redis_url", "key_prefix", "retention_secs"], "hookrelay publish --project demo --event deployment_request_finished --object-type deployment --object-name deployment-1 --data '{\"request_id\": \"r-1\"}'"))]
    Publish(PublishArgs),
    /// A local webhook receiver: prints every request and checks its signature.
    #[command(after_help = help(&[], "hookrelay receive --port 9000 --secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))]
    Receive(receive::ReceiveArgs),
    /// Print the effective settings (secrets masked) and where each came from.
    #[command(after_help = help(settings::ALL, "HOOKRELAY_CONCURRENCY=8 hookrelay --config hookrelay.toml settings"))]
    Settings,
    /// Depth of every queue and the number of workers alive.
    #[command(after_help = help(REDIS, "hookrelay queue"))]
    Queue(ops::QueueArgs),
    /// Attempt again a webhook's deliveries that failed since a time.
    #[command(after_help = help(REDIS, "hookrelay recover --project demo --webhook hook-1 --since 2h"))]
    Recover(ops::RecoverArgs),
    /// Look at deliveries.
    #[command(subcommand, after_help = help(REDIS, "hookrelay deliveries list --project demo --status failed"))]
    Deliveries(ops::DeliveriesCommand),
    /// Look at webhooks.
    #[command(subcommand, after_help = help(REDIS, "hookrelay webhooks list --project demo"))]
    Webhooks(ops::WebhooksCommand),
}

#[derive(clap::Args, Debug)]
struct PublishArgs {
    /// Project.
    #[arg(long)]
    project: hookrelay_core::ProjectName,
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
    id: Option<hookrelay_core::EventId>,
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

/// Connects to Redis, waiting (with a log line now and then) until it answers. `None` when
/// shutdown came first: stopping before Redis was ever reachable is a clean exit.
async fn connect(settings: &Settings, shutdown: &watch::Receiver<bool>) -> Option<Queue> {
    let keys = settings.keys();
    let mut tries = 0u32;
    let mut stop = shutdown.clone();
    loop {
        if *stop.borrow() {
            return None;
        }
        let attempt = tokio::select! {
            r = Queue::connect(&settings.redis_url, keys.clone()) => r,
            _ = stop.wait_for(|s| *s) => return None,
        };
        match attempt {
            Ok(q) => {
                if tries > 0 {
                    tracing::info!("redis is reachable");
                }
                return Some(configure_queue(q, settings));
            }
            Err(e) => {
                tries += 1;
                if tries == 1 || tries.is_multiple_of(30) {
                    tracing::warn!(error = %e, "redis is not reachable yet; retrying");
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                    _ = stop.wait_for(|s| *s) => return None,
                }
            }
        }
    }
}

/// The queue's settings: retention, per-endpoint concurrency, auto-disable.
pub(crate) fn configure_queue(queue: Queue, s: &Settings) -> Queue {
    queue
        .with_retention(s.retention)
        .with_outcome_retentions(s.retention_succeeded, s.retention_failed)
        .with_payload_compression(s.payload_compress)
        .with_endpoint_concurrency(s.endpoint_concurrency)
        .with_disable_after(s.disable_after)
}

/// Publishes `hookrelay.webhook.disabled` into the project of a webhook the queue disabled,
/// after marking the stored webhook disabled. The event id is derived from the notice, so
/// announcing twice publishes once.
fn announcer(queue: &Queue) -> hookrelay_worker::Announcer {
    let registry = hookrelay_producer::Registry::new(queue);
    let publisher = hookrelay_producer::Publisher::new(queue.clone(), registry.clone());
    std::sync::Arc::new(move |notice: hookrelay_core::endpoint::DisabledNotice| {
        let registry = registry.clone();
        let publisher = publisher.clone();
        Box::pin(async move {
            // A notice of a job without a project or webhook (a test) has nothing to mark.
            let Ok(project) = hookrelay_core::ProjectName::parse(notice.project.as_str()) else {
                return Ok(());
            };
            if notice.webhook.is_empty() {
                return Ok(());
            }
            let Some(webhook) = registry
                .mark_disabled(&project, &notice.webhook, &notice.endpoint)
                .await
                .map_err(|e| e.to_string())?
            else {
                return Ok(());
            };
            let since = notice.failing_since.unwrap_or(notice.at);
            let event = hookrelay_producer::EventIn {
                id: Some(
                    hookrelay_core::EventId::parse(format!(
                        "webhook-disabled-{}-{}",
                        notice.endpoint, notice.at
                    ))
                    .map_err(|e| e.to_string())?,
                ),
                event: hookrelay_core::endpoint::WEBHOOK_DISABLED_EVENT.to_owned(),
                object_type: "webhook".to_owned(),
                object_name: webhook.name.clone(),
                version: None,
                data: serde_json::json!({
                    "webhook": webhook.name,
                    "reason": notice.reason,
                    "since": hookrelay_core::time::Timestamp::from_ms(since),
                    "disabled_at": hookrelay_core::time::Timestamp::from_ms(notice.at),
                }),
                result: None,
            };
            publisher
                .publish(&project, event)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
            as std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send>>
    })
}

fn worker_settings(s: &Settings, queue: &Queue) -> hookrelay_worker::WorkerSettings {
    hookrelay_worker::WorkerSettings {
        announcer: Some(announcer(queue)),
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

/// The HTTP application before and after Redis first answered: until then, `/health` and
/// every API call answer 503, so a load balancer or a user sees the process is up but not
/// ready; afterwards every request goes to the real application.
#[derive(Clone, Default)]
struct Gate {
    app: Arc<OnceLock<Router>>,
}

async fn gated(State(gate): State<Gate>, req: Request) -> Response {
    if let Some(app) = gate.app.get() {
        let metrics = req.uri().path() == "/metrics";
        let mut response = match app.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        if metrics && response.status().is_success() {
            // The page is OpenMetrics text (what prometheus-client writes); say so, so that
            // Prometheus reads counters' `_total` samples with their declared type.
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static(hookrelay_producer::METRICS_CONTENT_TYPE),
            );
        }
        return response;
    }
    let error = "redis unavailable: not connected yet";
    let body = if req.uri().path() == "/health" {
        serde_json::json!({"status": "unavailable", "error": error})
    } else {
        serde_json::json!({"error": error})
    };
    (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
}

/// Binds `addr` for `what` (the setting named in the error), with a long accept queue: a
/// burst of connections waits there for the server's connection cap instead of being
/// dropped half-open by the kernel.
async fn bind(addr: std::net::SocketAddr, what: &str) -> anyhow::Result<tokio::net::TcpListener> {
    let listen = || -> std::io::Result<tokio::net::TcpListener> {
        let socket = if addr.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        socket.set_reuseaddr(true)?;
        socket.bind(addr)?;
        socket.listen(ACCEPT_BACKLOG)
    };
    listen().with_context(|| format!("{what}: cannot listen on {addr}"))
}

/// Connections the kernel queues for `accept` (capped by `net.core.somaxconn`).
const ACCEPT_BACKLOG: u32 = 8192;

/// Serves `app` on `listener` until shutdown.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    hookrelay_producer::server::serve(listener, app, Default::default(), wait_for(shutdown))
        .await
        .context("HTTP server")
}

/// The worker's own `/metrics` (HOOKRELAY_METRICS_LISTEN), for processes without the API.
fn worker_metrics_app() -> Router {
    Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            (
                [(
                    header::CONTENT_TYPE,
                    hookrelay_producer::METRICS_CONTENT_TYPE,
                )],
                hookrelay_worker::metrics::render(),
            )
        }),
    )
}

/// `serve` and `api`: listen at once; connect to Redis in the background; then answer for
/// real and (for `serve`) run the worker beside the API.
async fn run_http_roles(settings: &Settings, with_worker: bool) -> anyhow::Result<()> {
    let (tx, shutdown) = shutdown_channel();
    let api = api_settings(settings)?;
    let gate = Gate::default();
    let listener = bind(settings.listen, "HOOKRELAY_LISTEN").await?;
    tracing::info!(listen = %settings.listen, "API listening");
    let app = Router::new().fallback(gated).with_state(gate.clone());
    let metrics_listener = match settings.metrics_listen {
        Some(addr) => Some(bind(addr, "HOOKRELAY_METRICS_LISTEN").await?),
        None => None,
    };
    let stop_all = |r: anyhow::Result<()>| {
        if r.is_err() {
            let _ = tx.send(true);
        }
        r
    };
    let http = async { stop_all(serve_http(listener, app, shutdown.clone()).await) };
    let metrics = async {
        let Some(l) = metrics_listener else {
            return Ok(());
        };
        tracing::info!(listen = ?settings.metrics_listen, "metrics listening");
        // Only /metrics of the whole application, before and after Redis answers.
        let only_metrics = Router::new()
            .route("/metrics", axum::routing::get(gated))
            .with_state(gate.clone());
        stop_all(serve_http(l, only_metrics, shutdown.clone()).await)
    };
    let work = async {
        let Some(queue) = connect(settings, &shutdown).await else {
            return Ok(());
        };
        let state = hookrelay_producer::AppState::new(queue.clone(), api);
        if with_worker {
            state
                .metrics()
                .include(hookrelay_worker::metrics::registry());
        }
        let _ = gate.app.set(hookrelay_producer::app(state));
        tracing::info!("API ready");
        if with_worker {
            stop_all(run_worker(settings, queue, shutdown.clone()).await)
        } else {
            Ok(())
        }
    };
    let (h, m, w) = tokio::join!(http, metrics, work);
    h.and(m).and(w)
}

/// `worker`: its own metrics on HOOKRELAY_METRICS_LISTEN (when set), then deliver.
async fn run_worker_role(settings: &Settings) -> anyhow::Result<()> {
    let (tx, shutdown) = shutdown_channel();
    let metrics_listener = match settings.metrics_listen {
        Some(addr) => Some(bind(addr, "HOOKRELAY_METRICS_LISTEN").await?),
        None => None,
    };
    let metrics = async {
        let Some(l) = metrics_listener else {
            return Ok(());
        };
        tracing::info!(listen = ?settings.metrics_listen, "metrics listening");
        let r = serve_http(l, worker_metrics_app(), shutdown.clone()).await;
        if r.is_err() {
            let _ = tx.send(true);
        }
        r
    };
    let work = async {
        let Some(queue) = connect(settings, &shutdown).await else {
            return Ok(());
        };
        let r = run_worker(settings, queue, shutdown.clone()).await;
        // The metrics server stops with the worker.
        let _ = tx.send(true);
        r
    };
    let (m, w) = tokio::join!(metrics, work);
    w.and(m)
}

async fn run_worker(
    settings: &Settings,
    queue: Queue,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let worker = worker_settings(settings, &queue);
    // On a runtime thread rather than the thread that called `block_on`: the worker's own
    // future (apalis' monitor, the claim stream) then runs beside its deliveries' tasks and
    // the IO driver that wakes them, on the runtime's threads only.
    tokio::spawn(hookrelay_worker::run(queue, worker, wait_for(shutdown)))
        .await
        .context("worker task")?
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
    let queue = Queue::connect(&settings.redis_url, settings.keys())
        .await
        .map_err(|e| anyhow::anyhow!("redis unavailable at HOOKRELAY_REDIS_URL: {e}"))?;
    let queue = configure_queue(queue, settings);
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
    for warning in &settings.warnings {
        tracing::warn!("{warning}");
    }
    match cli.command {
        Command::Publish(args) => publish(&settings, args).await,
        Command::Api => run_http_roles(&settings, false).await,
        Command::Serve => run_http_roles(&settings, true).await,
        Command::Worker => run_worker_role(&settings).await,
        Command::Receive(args) => {
            let (_tx, shutdown) = shutdown_channel();
            receive::run(args, shutdown).await
        }
        Command::Settings => {
            print!("{}", settings.table());
            Ok(())
        }
        Command::Queue(args) => ops::show_queue(&settings, args).await,
        Command::Recover(args) => ops::recover(&settings, args).await,
        Command::Deliveries(cmd) => ops::deliveries(&settings, cmd).await,
        Command::Webhooks(cmd) => ops::webhooks(&settings, cmd).await,
    }
}

/// jemalloc: with its background thread, pages freed after a burst (thousands of
/// connections, a large backlog) go back to the system after its decay time (10 s), even
/// when the process is idle; glibc's allocator kept them.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = tikv_jemalloc_ctl::background_thread::write(true) {
        eprintln!(
            "hookrelay: jemalloc's background thread did not start ({e}); freed memory is returned only while the process allocates"
        );
    }
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
