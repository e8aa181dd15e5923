//! The system under measurement, as child processes: a redis-server of its own on a free
//! loopback port (`hookrelay_testkit::RedisServer`), the release `hookrelay` binary as one
//! `api` process and any number of `worker` processes, all configured through environment
//! variables as an operator would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use hookrelay_core::Keys;
use hookrelay_queue::RedisConn;
use hookrelay_testkit::{RedisCluster, RedisServer, free_port};
use redis::aio::MultiplexedConnection;

use crate::redisinfo;
use crate::worker_variant::{self, WorkerVariant};

/// The API token of every bench instance (a fixed string: the stack lives only as long as
/// the run, on loopback).
pub const TOKEN: &str = "bench-token-0123456789";
/// The key prefix of every bench instance.
pub const PREFIX: &str = "bench";
/// The project every scenario publishes into.
pub const PROJECT: &str = "bench";

fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// Builds the release `hookrelay` binary (`cargo build --release --bin hookrelay`) and
/// returns its path; `HOOKRELAY_BIN` names a binary to use instead.
pub fn build_binary() -> anyhow::Result<PathBuf> {
    if let Ok(bin) = std::env::var("HOOKRELAY_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    eprintln!("building the release hookrelay binary…");
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "hookrelay"])
        .current_dir(&root)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "cargo build --release --bin hookrelay failed"
    );
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target"));
    Ok(target.join("release").join("hookrelay"))
}

/// One `hookrelay` child process; killed when dropped.
pub struct Proc {
    child: Option<Child>,
    /// `api` or `worker`.
    pub role: String,
    /// Its process id.
    pub pid: u32,
    /// Where its log (stderr) goes.
    pub log: PathBuf,
    /// `http://127.0.0.1:<port>` (meaningful for the API).
    pub base: String,
}

impl Proc {
    /// SIGTERM, then waits up to `timeout` for it to exit (SIGKILL after that).
    pub fn terminate(&mut self, timeout: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .status();
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        // Logs are at `warn`: an empty one says nothing and goes; anything else is kept and
        // pointed at, since it may explain odd figures.
        match std::fs::metadata(&self.log) {
            Ok(m) if m.len() == 0 => {
                let _ = std::fs::remove_file(&self.log);
            }
            Ok(_) => eprintln!(
                "hookrelay {} pid {} logged warnings: {}",
                self.role,
                self.pid,
                self.log.display()
            ),
            Err(_) => {}
        }
    }
}

/// Redis plus hookrelay processes sharing one configuration.
pub struct Stack {
    bin: PathBuf,
    variant: WorkerVariant,
    vars: Vec<(String, String)>,
    /// The API process, once started.
    pub api: Option<Proc>,
    /// Worker processes started so far (running or stopped).
    pub workers: Vec<Proc>,
    /// The redis-server's pid (on a cluster: the first master's).
    pub redis_pid: u32,
    /// The pids of every master of a cluster (empty on one Redis).
    pub cluster_pids: Vec<u32>,
    /// A connection for the bench's own reads (INFO, LLEN…): on a cluster, to its first
    /// master only.
    pub conn: MultiplexedConnection,
    /// A connection that reaches every key, on one Redis or a cluster.
    pub keyed: RedisConn,
    /// A connection to each server: the one Redis, or every master of a cluster (for their
    /// own accounting, added up).
    pub node_conns: Vec<MultiplexedConnection>,
    /// The key schema of this stack.
    pub keys: Keys,
    /// Declared last so that it is dropped last, after the processes that use it.
    redis: Backing,
}

/// The Redis under a stack.
enum Backing {
    Single(RedisServer),
    Cluster(RedisCluster),
}

impl Backing {
    fn url(&self) -> String {
        match self {
            Backing::Single(r) => r.url(),
            Backing::Cluster(c) => c.url(),
        }
    }
}

impl Stack {
    /// Starts redis-server and prepares the environment of hookrelay processes: loopback
    /// targets allowed, worker concurrency `concurrency`, logs at `warn` (one line per
    /// delivery would measure the logger), then `extra` (which may override any of these).
    pub async fn start(
        bin: PathBuf,
        concurrency: usize,
        extra: &[(String, String)],
        variant: WorkerVariant,
        cluster: Option<u32>,
    ) -> anyhow::Result<Self> {
        let redis = match cluster {
            Some(_) => Backing::Cluster(RedisCluster::start()),
            None => Backing::Single(RedisServer::start()),
        };
        let url = redis.url();
        let first = url.split(',').next().unwrap_or_default().to_owned();
        let client = redis::Client::open(first)?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        let redis_pid = redisinfo::server_pid(&mut conn).await?;
        let mut cluster_pids = Vec::new();
        let mut node_conns = vec![conn.clone()];
        if let Backing::Cluster(c) = &redis {
            node_conns.clear();
            for port in c.master_ports() {
                let client = redis::Client::open(format!("redis://127.0.0.1:{port}"))?;
                let mut node = client.get_multiplexed_async_connection().await?;
                cluster_pids.push(redisinfo::server_pid(&mut node).await?);
                node_conns.push(node);
            }
        }
        let keyed = RedisConn::open(&url, cluster.is_some()).await?;
        let keys = match cluster {
            Some(partitions) => Keys::new(PREFIX).with_layout(partitions, true),
            None => Keys::new(PREFIX),
        };
        let mut vars: Vec<(String, String)> = [
            ("HOOKRELAY_REDIS_URL", url.clone()),
            ("HOOKRELAY_KEY_PREFIX", PREFIX.to_owned()),
            ("HOOKRELAY_API_TOKEN", TOKEN.to_owned()),
            ("HOOKRELAY_ALLOWED_TARGETS", "127.0.0.0/8".to_owned()),
            ("HOOKRELAY_CONCURRENCY", concurrency.to_string()),
            ("RUST_LOG", "warn".to_owned()),
            ("HOOKRELAY_REDIS_CLUSTER", cluster.is_some().to_string()),
            ("HOOKRELAY_PARTITIONS", keys.partitions().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        for (k, v) in extra {
            vars.retain(|(name, _)| name != k);
            vars.push((k.clone(), v.clone()));
        }
        Ok(Self {
            bin,
            variant,
            vars,
            api: None,
            workers: Vec::new(),
            redis_pid,
            cluster_pids,
            conn,
            keyed,
            node_conns,
            keys,
            redis,
        })
    }

    /// `redis://127.0.0.1:<port>` of the stack's Redis (a cluster's seed nodes,
    /// comma-separated).
    pub fn redis_url(&self) -> String {
        self.redis.url()
    }

    fn spawn(&self, role: &str) -> anyhow::Result<Proc> {
        let port = free_port();
        let log = std::env::temp_dir().join(format!(
            "hookrelay-bench-{role}-{}-{port}.log",
            std::process::id()
        ));
        let file = std::fs::File::create(&log)?;
        let mut cmd = if role == "worker" && self.variant != WorkerVariant::Binary {
            let mut c = Command::new(std::env::current_exe()?);
            c.arg(worker_variant::ARG).arg(self.variant.arg());
            c
        } else {
            let mut c = Command::new(&self.bin);
            c.arg(role);
            c
        };
        hookrelay_testkit::isolate_hookrelay(&mut cmd, port, &self.vars, file);
        let child = cmd
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", self.bin.display()))?;
        Ok(Proc {
            role: role.to_owned(),
            pid: child.id(),
            child: Some(child),
            log,
            base: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Starts `hookrelay api` and waits (up to 20 s) until `/health` answers 200.
    pub async fn start_api(&mut self) -> anyhow::Result<String> {
        let mut p = self.spawn("api")?;
        let health = format!("{}/health", p.base);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ok = client
                .get(&health)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ok {
                break;
            }
            anyhow::ensure!(
                p.running() && Instant::now() < deadline,
                "hookrelay api did not become healthy; see {}",
                p.log.display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let base = p.base.clone();
        self.api = Some(p);
        Ok(base)
    }

    /// Starts `n` more `hookrelay worker` processes and waits (up to 20 s) until each has
    /// sent its first heartbeat, i.e. is ready to claim. Returns their pids.
    pub async fn start_workers(&mut self, n: usize) -> anyhow::Result<Vec<u32>> {
        let before = self.live_workers().await?;
        let mut pids = Vec::new();
        for _ in 0..n {
            let p = self.spawn("worker")?;
            pids.push(p.pid);
            self.workers.push(p);
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.live_workers().await? < before + n as u64 {
            anyhow::ensure!(
                Instant::now() < deadline,
                "workers did not start; see {}",
                self.workers
                    .last()
                    .map(|w| w.log.display().to_string())
                    .unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(pids)
    }

    /// Workers with a heartbeat in the last minute.
    pub async fn live_workers(&mut self) -> anyhow::Result<u64> {
        let n: u64 = redis::cmd("ZCARD")
            .arg(self.keys.workers())
            .query_async(&mut self.keyed)
            .await?;
        Ok(n)
    }

    /// Stops every running worker gracefully (SIGTERM, up to 40 s each).
    pub fn stop_workers(&mut self) {
        for w in &mut self.workers {
            w.terminate(Duration::from_secs(40));
        }
        self.workers.clear();
    }

    /// The API's pid, once started.
    pub fn api_pid(&self) -> Option<u32> {
        self.api.as_ref().map(|a| a.pid)
    }

    /// The ready list of the first endpoint in the ring (the bench's one webhook).
    pub async fn ready_key(&mut self) -> anyhow::Result<String> {
        let part = self.keys.partition(0);
        let first: Vec<String> = redis::cmd("ZRANGE")
            .arg(part.ring())
            .arg(0)
            .arg(0)
            .query_async(&mut self.conn)
            .await?;
        let endpoint = first
            .first()
            .ok_or_else(|| anyhow::anyhow!("no endpoint has ready jobs"))?;
        Ok(part.endpoint(endpoint).ready)
    }

    /// Jobs waiting, summed over the endpoint queues.
    pub async fn ready_len(&mut self) -> anyhow::Result<u64> {
        let mut n = 0;
        for p in 0..self.keys.partitions() {
            let part = self.keys.partition(p);
            let endpoints: Vec<String> = redis::cmd("ZRANGE")
                .arg(part.ring())
                .arg(0)
                .arg(-1)
                .query_async(&mut self.keyed)
                .await?;
            for e in endpoints {
                let len: u64 = redis::cmd("LLEN")
                    .arg(part.endpoint(&e).ready)
                    .query_async(&mut self.keyed)
                    .await?;
                n += len;
            }
        }
        Ok(n)
    }

    /// The processes whose CPU a scenario splits out: redis, the API and each worker.
    pub fn parts(&self) -> crate::procstat::Parts {
        let mut parts = if self.cluster_pids.is_empty() {
            vec![("redis-server".to_owned(), self.redis_pid)]
        } else {
            self.cluster_pids
                .iter()
                .enumerate()
                .map(|(i, pid)| (format!("redis-server master {}", i + 1), *pid))
                .collect()
        };
        if let Some(pid) = self.api_pid() {
            parts.push(("hookrelay api".to_owned(), pid));
        }
        for (i, w) in self.workers.iter().enumerate() {
            parts.push((format!("hookrelay worker {}", i + 1), w.pid));
        }
        parts
    }

    /// One line naming every process, for attaching `perf` by pid during a run.
    pub fn describe(&self) -> String {
        let mut s = format!("redis-server pid {}", self.redis_pid);
        if let Some(pid) = self.api_pid() {
            s.push_str(&format!(", hookrelay api pid {pid}"));
        }
        for w in &self.workers {
            s.push_str(&format!(", hookrelay worker pid {}", w.pid));
        }
        s.push_str(&format!(", bench pid {}", std::process::id()));
        s
    }
}
