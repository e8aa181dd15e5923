//! The HTTP server under the API, with limits that keep slow or idle clients from taking it
//! down: a tokio accept loop over hyper's HTTP/1 connections.
//!
//! - **Header-read timeout** ([`ServerLimits::header_read_timeout`], 10 s): a connection
//!   whose request head has not fully arrived by then is closed. This also bounds how long
//!   an idle keep-alive connection (or one that never sends a byte) is kept.
//! - **Body-read timeout** (the router's `BODY_READ_TIMEOUT`, 10 s): a body that stalls gets
//!   408; a `Content-Length` over the body limit gets 413 before anything is read.
//! - **Connection cap** ([`ServerLimits::max_connections`]): at most this many connections
//!   are open at once; past it, new connections wait in the kernel's accept queue (using no
//!   file descriptor of this process) until one closes, and a warning says so. By default
//!   10,000, and never more than half the process's open-file limit, so that Redis and
//!   delivery connections always find a descriptor. While more than half the cap is in use,
//!   new connections get 1 s to send their head instead of 10, so that a flood of slow
//!   clients makes room fast.
//!
//! The HTTP/1 server only: HTTP/2 (prior knowledge) clients are not a use case of this API.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Request;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

/// Connections open at once, at most, unless the open-file limit is lower.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Time a client has to send a request head, from the connection's start or the end of its
/// previous request.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// The header-read timeout of connections accepted while more than half the cap is in
/// use: under a flood of slow clients, slots come free quickly, so a real client waiting
/// in the accept queue gets its turn within seconds.
pub const PRESSURE_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a stopping server lets open requests finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// At most one "limit reached" warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The limits [`serve`] applies.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections open at once, at most.
    pub max_connections: usize,
    /// Time a client has to send a request head.
    pub header_read_timeout: Duration,
}

impl Default for ServerLimits {
    /// [`DEFAULT_MAX_CONNECTIONS`] (or half the open-file limit, if lower) and
    /// [`DEFAULT_HEADER_READ_TIMEOUT`].
    fn default() -> Self {
        let by_files = open_file_limit().map_or(DEFAULT_MAX_CONNECTIONS, |n| (n / 2).max(16));
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS.min(by_files),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
        }
    }
}

/// The soft limit on open files of this process, from `/proc/self/limits` (Linux).
fn open_file_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Serves `router` on `listener` under `limits` until `shutdown` completes; then stops
/// accepting, lets open requests finish for up to [`SHUTDOWN_GRACE`], and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut last_warning: Option<Instant> = None;
    tracing::info!(
        max_connections = max,
        header_read_timeout_s = limits.header_read_timeout.as_secs(),
        "HTTP limits"
    );
    tokio::pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if last_warning.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                    last_warning = Some(Instant::now());
                    tracing::warn!(
                        max_connections = max,
                        "connection limit reached: {max} connections open; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before it was accepted:
                    // neither is fatal. Wait a little rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let mut closing = closing_rx.clone();
        let header_read_timeout = if slots.available_permits() < max / 2 {
            limits.header_read_timeout.min(PRESSURE_HEADER_READ_TIMEOUT)
        } else {
            limits.header_read_timeout
        };
        tokio::spawn(async move {
            // Whether a request has begun on this connection: a connection that never sends
            // one is closed after the header-read timeout even if hyper's timer, which runs
            // per request head, has not started.
            let spoke = Arc::new(AtomicBool::new(false));
            let heard = spoke.clone();
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                heard.store(true, Ordering::Relaxed);
                let router = router.clone();
                async move {
                    Ok::<_, Infallible>(
                        router
                            .oneshot(req.map(axum::body::Body::new))
                            .await
                            .unwrap_or_else(|e| match e {}),
                    )
                }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_read_timeout)
                // A client may shut down its sending side once its request is out and
                // still wait for the answer (`nc -N`, some proxies).
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let closed = async move {
                let _ = closing.wait_for(|c| *c).await;
            };
            let silent = async move {
                tokio::time::sleep(header_read_timeout).await;
                if spoke.load(Ordering::Relaxed) {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = conn.as_mut() => {}
                // Dropping the connection closes its socket.
                () = silent => {}
                () = closed => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    let _ = closing_tx.send(true);
    // Every connection gives its slot back when it ends.
    let all = u32::try_from(max).unwrap_or(u32::MAX);
    if tokio::time::timeout(SHUTDOWN_GRACE, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open after {} s; closing them",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    Ok(())
}
