//! A local Redis Cluster of `redis-server` child processes on free loopback ports: three
//! masters, optionally with one replica each, made a cluster by `redis-cli --cluster
//! create`. A test can kill a master (SIGKILL) and wait for its replica to take over.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A node's cluster timeout: how long a master may be unreachable before its replica is
/// promoted. Short, so that a failover test is quick.
const NODE_TIMEOUT_MS: u64 = 1000;

struct Node {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl Node {
    fn start(port: u16, root: &std::path::Path) -> Self {
        let dir = root.join(port.to_string());
        std::fs::create_dir_all(&dir).expect("create cluster node dir");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .args(["--cluster-enabled", "yes"])
            .args(["--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", &NODE_TIMEOUT_MS.to_string()])
            .args(["--appendonly", "yes", "--appendfsync", "everysec"])
            .args(["--save", "", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be on PATH (apt-get install redis-server)");
        let node = Self {
            port,
            dir,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while node.query::<String>(&["PING"]).is_err() {
            assert!(
                Instant::now() < deadline,
                "cluster node {port} did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        node
    }

    fn query<T: redis::FromRedisValue>(&self, args: &[&str]) -> redis::RedisResult<T> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}", self.port))?;
        let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
        let mut cmd = redis::cmd(args[0]);
        for a in &args[1..] {
            cmd.arg(*a);
        }
        cmd.query(&mut conn)
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }
}

/// A Redis Cluster owned by a test. Every node is killed when it is dropped.
pub struct RedisCluster {
    nodes: Vec<Node>,
    root: PathBuf,
}

impl RedisCluster {
    /// Three masters, no replicas.
    pub fn start() -> Self {
        Self::start_with(0)
    }

    /// Three masters with one replica each (for failover).
    pub fn start_with_replicas() -> Self {
        Self::start_with(1)
    }

    fn start_with(replicas: usize) -> Self {
        let count = 3 * (1 + replicas);
        let ports = cluster_ports(count);
        let root = std::env::temp_dir().join(format!(
            "hookrelay-test-cluster-{}-{}",
            std::process::id(),
            ports[0]
        ));
        let _ = std::fs::remove_dir_all(&root);
        let nodes: Vec<Node> = ports.iter().map(|p| Node::start(*p, &root)).collect();
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for p in &ports {
            create.arg(format!("127.0.0.1:{p}"));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .output()
            .expect("redis-cli must be on PATH (apt-get install redis-tools)");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let cluster = Self { nodes, root };
        cluster.wait_until_ok(Duration::from_secs(30));
        if replicas > 0 {
            cluster.wait_for_replicas(Duration::from_secs(30));
        }
        cluster
    }

    /// The seed nodes as `HOOKRELAY_REDIS_URL` takes them: `redis://…,redis://…`.
    pub fn url(&self) -> String {
        self.nodes
            .iter()
            .filter(|n| n.alive())
            .map(|n| format!("redis://127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The ports of the masters now.
    pub fn master_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.alive())
            .filter(|n| {
                n.query::<String>(&["INFO", "replication"])
                    .is_ok_and(|info| info.contains("role:master"))
            })
            .map(|n| n.port)
            .collect()
    }

    /// SIGKILLs the master on `port`.
    pub fn kill(&mut self, port: u16) {
        if let Some(n) = self.nodes.iter_mut().find(|n| n.port == port) {
            n.kill();
        }
    }

    /// Waits until a replica has taken over from the killed masters: as many masters alive
    /// as at the start (three), and the cluster ok on every live node.
    pub fn wait_for_failover(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.master_ports().len() < 3 {
            assert!(Instant::now() < deadline, "no replica took over");
            std::thread::sleep(Duration::from_millis(100));
        }
        self.wait_until_ok(deadline.saturating_duration_since(Instant::now()));
    }

    /// Waits until every live node reports the cluster ok with every slot served.
    pub fn wait_until_ok(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let ok = self.nodes.iter().filter(|n| n.alive()).all(|n| {
                n.query::<String>(&["CLUSTER", "INFO"]).is_ok_and(|info| {
                    info.contains("cluster_state:ok") && info.contains("cluster_slots_ok:16384")
                })
            });
            if ok {
                return;
            }
            assert!(Instant::now() < deadline, "the cluster did not become ok");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_for_replicas(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let linked = self.nodes.iter().all(|n| {
                n.query::<String>(&["INFO", "replication"])
                    .is_ok_and(|info| {
                        info.contains("role:master") && !info.contains("connected_slaves:0")
                            || info.contains("master_link_status:up")
                    })
            });
            if linked {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replicas did not link to their masters"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        for n in &self.nodes {
            let _ = std::fs::remove_dir_all(&n.dir);
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// `count` free loopback ports whose cluster bus ports (+10,000) are free too.
fn cluster_ports(count: usize) -> Vec<u16> {
    let mut out: Vec<u16> = Vec::with_capacity(count);
    let mut tries = 0;
    while out.len() < count {
        tries += 1;
        assert!(tries < 10_000, "no free ports for a cluster");
        let p = crate::free_port();
        if p > 55_000 || out.contains(&p) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", p + 10_000)).is_ok() {
            out.push(p);
        }
    }
    out
}
