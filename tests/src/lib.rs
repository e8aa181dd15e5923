//! Harness for hookrelay's end-to-end and fault-injection tests: the real `hookrelay`
//! binary as child processes (killed with real signals), a real redis-server per test, and
//! a small API client.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::OnceLock;
use std::time::Duration;

pub use backing::RedisServer;
pub use hookrelay_testkit::{free_port, wait_until};
pub mod backing;
pub mod support;
use serde_json::Value;

/// The API token every test instance uses.
pub const TOKEN: &str = "test-token-0123456789";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The release `hookrelay` binary the tests run: built once, before the tests, by
/// `scripts/test.sh` (or `cargo build --release --bin hookrelay`). A test never builds it:
/// it fails at once, saying what to run, when the binary is missing or older than the
/// sources it is built from.
pub fn binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = workspace_root();
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| root.join("target"));
        let bin = target.join("release").join("hookrelay");
        let built = std::fs::metadata(&bin)
            .and_then(|m| m.modified())
            .unwrap_or_else(|_| {
                panic!(
                    "{} is missing: run `cargo build --release --bin hookrelay` (scripts/test.sh does) before these tests",
                    bin.display()
                )
            });
        if let Some(newer) = newer_source(&root, built) {
            panic!(
                "{} is older than {}: run `cargo build --release --bin hookrelay` (scripts/test.sh does) before these tests",
                bin.display(),
                newer.display()
            );
        }
        bin
    })
    .clone()
}

/// A source file of the binary (the `src/` of the crates it is built from, and its embedded
/// defaults) changed after `built`: cargo relinks the binary whenever one of them changes.
fn newer_source(root: &Path, built: std::time::SystemTime) -> Option<PathBuf> {
    fn walk(dir: &Path, built: std::time::SystemTime) -> Option<PathBuf> {
        for entry in std::fs::read_dir(dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if let Some(p) = walk(&path, built) {
                    return Some(p);
                }
            } else if entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|m| m > built)
            {
                return Some(path);
            }
        }
        None
    }
    [
        "crates/hookrelay/src",
        "crates/hookrelay-core/src",
        "crates/hookrelay-queue/src",
        "crates/hookrelay-producer/src",
        "crates/hookrelay-worker/src",
        "config",
    ]
    .iter()
    .find_map(|dir| walk(&root.join(dir), built))
}

/// One `hookrelay` process.
pub struct Process {
    child: Option<Child>,
    /// Its log file (stderr).
    pub log: PathBuf,
    /// API base URL when it serves the API.
    pub base: String,
}

/// Environment shared by the processes of one test.
#[derive(Clone, Debug)]
pub struct Env {
    pub vars: Vec<(String, String)>,
}

impl Env {
    /// Settings for a test against `redis`: fast retries, a short recovery timeout, loopback
    /// allowed as a target.
    pub fn new(redis: &RedisServer) -> Self {
        let env = Self::for_url(&redis.url());
        if redis.is_cluster() {
            env.set("HOOKRELAY_REDIS_CLUSTER", "true").set(
                "HOOKRELAY_PARTITIONS",
                &backing::CLUSTER_PARTITIONS.to_string(),
            )
        } else {
            env
        }
    }

    /// The same settings against the Redis at `url` (a Redis Cluster's seed nodes too).
    pub fn for_url(url: &str) -> Self {
        let vars = [
            ("HOOKRELAY_REDIS_URL", url.to_owned()),
            ("HOOKRELAY_KEY_PREFIX", "hr".to_string()),
            ("HOOKRELAY_API_TOKEN", TOKEN.to_string()),
            (
                "HOOKRELAY_ALLOWED_TARGETS",
                "127.0.0.0/8,::1/128".to_string(),
            ),
            ("HOOKRELAY_RECOVERY_TIMEOUT_MS", "3000".to_string()),
            ("HOOKRELAY_RETRY_INITIAL_INTERVAL_MS", "200".to_string()),
            ("HOOKRELAY_RETRY_MAX_INTERVAL_MS", "1000".to_string()),
            ("HOOKRELAY_RETRY_MULTIPLIER", "2".to_string()),
            ("HOOKRELAY_RETRY_MAX_ATTEMPTS", "3".to_string()),
            ("HOOKRELAY_CONCURRENCY", "32".to_string()),
            ("RUST_LOG", "info".to_string()),
        ];
        Self {
            vars: vars.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    /// Sets (or replaces) one variable.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.vars.retain(|(k, _)| k != key);
        self.vars.push((key.into(), value.into()));
        self
    }

    /// Starts `hookrelay <role>`; for `serve` and `api`, waits until `/health` answers.
    pub async fn spawn(&self, role: &str) -> Process {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "hookrelay-{role}-{}-{port}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let mut cmd = Command::new(binary());
        cmd.arg(role);
        hookrelay_testkit::isolate_hookrelay(&mut cmd, port, &self.vars, file);
        let child = cmd.spawn().expect("spawn hookrelay");
        let p = Process {
            child: Some(child),
            log,
            base: format!("http://127.0.0.1:{port}"),
        };
        if role == "serve" || role == "api" {
            let url = format!("{}/health", p.base);
            let client = reqwest::Client::new();
            wait_until(Duration::from_secs(20), "hookrelay /health", || {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    client
                        .get(&url)
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false)
                }
            })
            .await;
        }
        p
    }

    /// Runs `hookrelay publish …` and returns (exit code, stdout, stderr).
    pub fn publish(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = Command::new(binary());
        cmd.arg("publish")
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default());
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run publish");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Process {
    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).unwrap_or(0)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then waits up to `timeout` for the exit; returns the exit code.
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = send_signal(c.id() as i32, "TERM");
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Everything the process logged so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Sends a signal by name (`TERM`, `KILL`, `STOP`, `CONT`) with the system's `kill`.
pub fn send_signal(pid: i32, sig: &str) -> std::io::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other("kill failed"))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A small client for hookrelay's API.
#[derive(Clone)]
pub struct Api {
    pub base: String,
    client: reqwest::Client,
}

impl Api {
    /// A client for the API at `base` (e.g. `Process::base`).
    pub fn new(base: &str) -> Self {
        Self {
            base: format!("{base}/v2.1"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                // Shorter than the server's 10 s keep-alive idle timeout, so a pooled
                // connection is never reused just as the server closes it.
                .pool_idle_timeout(Duration::from_secs(5))
                .build()
                .unwrap(),
        }
    }

    /// Sends a request with the test token; returns (status, JSON body or Null).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .client
            .request(method, &url)
            .header("Authorization", format!("Token {TOKEN}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("API request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Creates a webhook in `project` (201 expected).
    pub async fn create_webhook(&self, project: &str, body: Value) -> Value {
        let (status, v) = self
            .call("POST", &format!("/projects/{project}/webhooks"), Some(body))
            .await;
        assert_eq!(status, 201, "create webhook: {v}");
        v
    }

    /// Publishes an event (202 expected); returns the delivery ids.
    pub async fn publish(&self, project: &str, body: Value) -> Vec<String> {
        let (status, v) = self
            .call("POST", &format!("/projects/{project}/events"), Some(body))
            .await;
        assert_eq!(status, 202, "publish: {v}");
        v["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_str().unwrap().to_owned())
            .collect()
    }

    /// Reads one delivery.
    pub async fn delivery(&self, project: &str, id: &str) -> Value {
        let (status, v) = self
            .call("GET", &format!("/projects/{project}/deliveries/{id}"), None)
            .await;
        assert_eq!(status, 200, "delivery {id}: {v}");
        v
    }

    /// Waits until a delivery reaches `status`.
    pub async fn wait_status(
        &self,
        project: &str,
        id: &str,
        status: &str,
        timeout: Duration,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.delivery(project, id).await;
            if v["status"] == status {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "delivery {id} never reached {status}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Api {
    /// Waits until a webhook test leaves `pending`; returns its record.
    pub async fn wait_test(&self, project: &str, id: &str, timeout: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let (status, v) = self
                .call(
                    "GET",
                    &format!("/projects/{project}/webhooks-tests/{id}"),
                    None,
                )
                .await;
            assert_eq!(status, 200, "webhook test {id}: {v}");
            if v["status"] != "pending" {
                return v;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "webhook test {id} stuck: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A webhook body for `url` that fires on `event` for deployment `d1`.
pub fn webhook(name: &str, url: &str, event: &str) -> Value {
    serde_json::json!({
        "name": name,
        "url": url,
        "object_type": "deployment",
        "object_name": "d1",
        "event": event,
    })
}

/// An event for deployment `d1`.
pub fn event(event: &str, data: Value) -> Value {
    serde_json::json!({
        "event": event,
        "object_type": "deployment",
        "object_name": "d1",
        "data": data,
    })
}
