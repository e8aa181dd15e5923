//! The Redis a test runs against: one `redis-server`, or, with `HOOKRELAY_TEST_REDIS=cluster`,
//! a local Redis Cluster of three masters (and `HOOKRELAY_PARTITIONS` 8), so that the same
//! end-to-end tests run in both modes. Tests that kill or restart Redis need one server and
//! say so.

use hookrelay_core::Keys;
use redis::{ConnectionLike, RedisResult, Value};

/// Queue partitions of the hookrelay processes a test starts on a cluster.
pub const CLUSTER_PARTITIONS: u32 = 8;

/// Whether the tests run on a Redis Cluster (`HOOKRELAY_TEST_REDIS=cluster`).
pub fn cluster_mode() -> bool {
    std::env::var("HOOKRELAY_TEST_REDIS").is_ok_and(|v| v == "cluster")
}

/// The key layout of the test instances (prefix `hr`) in the mode the tests run in.
pub fn keys() -> Keys {
    let keys = Keys::new("hr");
    if cluster_mode() {
        keys.with_layout(CLUSTER_PARTITIONS, true)
    } else {
        keys
    }
}

/// One redis-server or a cluster, owned by a test and stopped when dropped.
pub enum RedisServer {
    /// One server.
    Single(hookrelay_testkit::RedisServer),
    /// Three masters.
    Cluster(hookrelay_testkit::RedisCluster),
}

impl RedisServer {
    /// A Redis in the mode the tests run in.
    pub fn start() -> Self {
        if cluster_mode() {
            Self::Cluster(hookrelay_testkit::RedisCluster::start())
        } else {
            Self::Single(hookrelay_testkit::RedisServer::start())
        }
    }

    /// One server with `appendonly yes` (for tests that kill and restart it).
    pub fn start_aof() -> Self {
        Self::Single(hookrelay_testkit::RedisServer::start_aof())
    }

    /// Whether it is a cluster.
    pub fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    /// `HOOKRELAY_REDIS_URL` for it (a cluster's seed nodes, comma-separated).
    pub fn url(&self) -> String {
        match self {
            Self::Single(s) => s.url(),
            Self::Cluster(c) => c.url(),
        }
    }

    fn single(&mut self) -> &mut hookrelay_testkit::RedisServer {
        match self {
            Self::Single(s) => s,
            Self::Cluster(_) => {
                panic!("this test kills or restarts Redis: it runs on one redis-server only")
            }
        }
    }

    /// The port of the one server.
    pub fn port(&self) -> u16 {
        match self {
            Self::Single(s) => s.port(),
            Self::Cluster(_) => panic!("a cluster has no one port"),
        }
    }

    /// SIGKILLs the one server.
    pub fn kill(&mut self) {
        self.single().kill();
    }

    /// Starts the one server again, same port and data.
    pub fn restart(&mut self) {
        self.single().restart();
    }

    /// A blocking connection for test assertions; on a cluster, one that routes each
    /// command (of a pipeline too) to the node holding its key.
    pub fn connection(&self) -> Conn {
        match self {
            Self::Single(s) => Conn::Single(s.connection()),
            Self::Cluster(c) => {
                let seeds: Vec<String> = c.url().split(',').map(str::to_owned).collect();
                let client = redis::cluster::ClusterClient::new(seeds).expect("cluster client");
                Conn::Cluster(Box::new(
                    client.get_connection().expect("connect to test cluster"),
                ))
            }
        }
    }
}

/// A connection to one server or to a cluster.
pub enum Conn {
    /// One server.
    Single(redis::Connection),
    /// A cluster.
    Cluster(Box<redis::cluster::ClusterConnection>),
}

impl ConnectionLike for Conn {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands(
        &mut self,
        cmd: &[u8],
        offset: usize,
        count: usize,
    ) -> RedisResult<Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            // A test's pipeline may touch keys of several slots: one command at a time.
            Conn::Cluster(c) => {
                let mut out = Vec::new();
                for args in split_commands(cmd) {
                    let mut one = redis::cmd(&String::from_utf8_lossy(&args[0]));
                    for a in &args[1..] {
                        one.arg(a.as_slice());
                    }
                    out.push(c.req_command(&one)?);
                }
                Ok(out.into_iter().skip(offset).take(count).collect())
            }
        }
    }

    fn get_db(&self) -> i64 {
        0
    }

    fn check_connection(&mut self) -> bool {
        match self {
            Conn::Single(c) => c.check_connection(),
            Conn::Cluster(c) => c.check_connection(),
        }
    }

    fn is_open(&self) -> bool {
        match self {
            Conn::Single(c) => c.is_open(),
            Conn::Cluster(c) => c.is_open(),
        }
    }
}

/// The commands of a packed pipeline (`*<n>\r\n$<len>\r\n<arg>\r\n…`, one after another),
/// each as its arguments.
fn split_commands(mut bytes: &[u8]) -> Vec<Vec<Vec<u8>>> {
    fn line(bytes: &mut &[u8]) -> Option<usize> {
        let end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let n = std::str::from_utf8(&bytes[1..end]).ok()?.parse().ok()?;
        *bytes = &bytes[end + 2..];
        Some(n)
    }
    let mut commands = Vec::new();
    while bytes.first() == Some(&b'*') {
        let Some(n) = line(&mut bytes) else { break };
        let mut args = Vec::with_capacity(n);
        for _ in 0..n {
            let Some(len) = line(&mut bytes) else {
                return commands;
            };
            args.push(bytes[..len].to_vec());
            bytes = &bytes[len + 2..];
        }
        commands.push(args);
    }
    commands
}

/// For a test that needs one redis-server (it kills or restarts it, or writes the layout of
/// earlier versions): true, after saying so, when the tests run on a cluster. Such a test
/// runs in the one-server pass.
pub fn skip_on_cluster(why: &str) -> bool {
    if cluster_mode() {
        println!("skipped on a cluster: {why}");
    }
    cluster_mode()
}
