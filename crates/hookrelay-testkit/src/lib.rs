//! Test support shared by hookrelay's crates: a real `redis-server` per test on a free
//! loopback port, and scripted HTTP receivers. Never a mock: these are the real things.

#![allow(clippy::unwrap_used)]

pub mod receiver;
pub mod redis_cluster;
pub mod redis_server;

pub use redis_cluster::RedisCluster;
pub use redis_server::RedisServer;

/// Prepares `cmd` (a `hookrelay <role>` command) the way every test and benchmark runs the
/// binary: an environment of `PATH`, `HOOKRELAY_LISTEN` on `port` and `vars` alone (nothing
/// inherited can change a setting), no input, output discarded, and its log (stderr) to `log`.
pub fn isolate_hookrelay(
    cmd: &mut std::process::Command,
    port: u16,
    vars: &[(String, String)],
    log: std::fs::File,
) {
    use std::process::Stdio;
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOOKRELAY_LISTEN", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    for (k, v) in vars {
        cmd.env(k, v);
    }
}

/// Waits until `cond` holds, polling every 20 ms, or panics after `timeout` with `what`.
pub async fn wait_until<F, Fut>(timeout: std::time::Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if cond().await {
            return;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}
