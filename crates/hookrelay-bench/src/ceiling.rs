//! The machine's own HTTP ceiling: how many POSTs per second a load generator that is not
//! hookrelay gets into a receiver, with the request the worker delivers (same headers, a
//! body of the same size) and as many connections as the worker keeps open to one webhook.
//! Every rate of a run can then be read as a share of what the same machine does, at the
//! same moment, with plain HTTP alone.
//!
//! The load generator is `wrk` with a small Lua script when it is installed, otherwise a
//! bare hyper client in the bench process (the run says which). Its CPU is measured as well:
//! wrk's from the bench's reaped-children time (`cutime + cstime` of `/proc/self/stat`),
//! the hyper client's from the bench's own threads.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::task::JoinSet;

use crate::procstat::{CpuSnapshot, Parts, children_cpu_secs};
use crate::report::Percentiles;

/// One request as the worker sent it, to replay.
#[derive(Debug, Clone)]
pub struct Sample {
    /// The body.
    pub body: Vec<u8>,
    /// Its headers (name, value).
    pub headers: Vec<(String, String)>,
}

/// Headers the load generator sets itself, or that describe one connection only.
const NOT_REPLAYED: &[&str] = &[
    "host",
    "content-length",
    "connection",
    "transfer-encoding",
    "te",
    "upgrade",
];

impl Sample {
    /// A JSON body of exactly `len` bytes (`{"pad":"xxx…"}`), for when only the size of the
    /// delivered body is known.
    pub fn filler(len: usize) -> Vec<u8> {
        const FRAME: usize = r#"{"pad":""}"#.len();
        if len < FRAME {
            return vec![b' '; len];
        }
        format!(r#"{{"pad":"{}"}}"#, "x".repeat(len - FRAME)).into_bytes()
    }

    /// The headers to replay.
    pub fn replayed_headers(&self) -> impl Iterator<Item = &(String, String)> {
        self.headers
            .iter()
            .filter(|(k, _)| !NOT_REPLAYED.contains(&k.to_ascii_lowercase().as_str()))
    }
}

/// `name` found in a directory of `PATH`.
pub fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// What generates the ceiling's load.
#[derive(Debug, Clone)]
pub enum Generator {
    /// `wrk` at this path.
    Wrk(PathBuf),
    /// A bare hyper client in the bench process.
    Hyper,
}

/// The load generator asked for on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    /// wrk when installed, else the hyper client.
    Auto,
    /// wrk; an error when it is not installed.
    Wrk,
    /// The hyper client in the bench process.
    Hyper,
}

impl Generator {
    /// The generator `choice` asks for.
    pub fn pick(choice: Choice) -> anyhow::Result<Self> {
        let wrk = on_path("wrk");
        Ok(match choice {
            Choice::Auto => wrk.map_or(Generator::Hyper, Generator::Wrk),
            Choice::Wrk => Generator::Wrk(wrk.ok_or_else(|| {
                anyhow::anyhow!("wrk is not installed (scripts/bench-deps.sh installs it)")
            })?),
            Choice::Hyper => Generator::Hyper,
        })
    }

    /// A short name for tables.
    pub fn name(&self) -> &'static str {
        match self {
            Generator::Wrk(_) => "wrk",
            Generator::Hyper => "hyper client in the bench process",
        }
    }
}

/// A receiver to measure the ceiling into.
pub struct Target {
    /// For tables: `bench receiver (fast)`, `nginx`.
    pub name: String,
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    /// Its processes, when it is not the bench process.
    pub parts: Parts,
    /// Whether it is the bench's own receiver (its CPU is the `bench-recv` threads).
    pub in_bench: bool,
}

/// One ceiling measurement.
#[derive(Debug, Clone)]
pub struct Ceiling {
    /// Which receiver.
    pub target: String,
    /// Which load generator.
    pub generator: &'static str,
    /// Connections and threads of the load generator.
    pub connections: usize,
    /// Threads of the load generator.
    pub threads: usize,
    /// Requests answered 2xx.
    pub ok: u64,
    /// Requests answered otherwise, or failed.
    pub failed: u64,
    /// How long the load lasted.
    pub secs: f64,
    /// Request → answer, µs.
    pub p50_us: u64,
    /// Request → answer, µs.
    pub p99_us: u64,
    /// Receiver CPU seconds over the run.
    pub receiver_cpu: f64,
    /// Load generator CPU seconds over the run.
    pub load_cpu: f64,
}

impl Ceiling {
    /// Requests answered 2xx per second.
    pub fn rate(&self) -> f64 {
        if self.secs > 0.0 {
            self.ok as f64 / self.secs
        } else {
            0.0
        }
    }

    /// Receiver CPU µs per request.
    pub fn receiver_us(&self) -> f64 {
        self.receiver_cpu * 1e6 / self.ok.max(1) as f64
    }

    /// Load generator CPU µs per request.
    pub fn load_us(&self) -> f64 {
        self.load_cpu * 1e6 / self.ok.max(1) as f64
    }
}

/// Measures POSTs/s of `sample` into `target` from `connections` connections for
/// `duration`.
pub async fn measure(
    generator: &Generator,
    target: &Target,
    sample: &Sample,
    connections: usize,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<Ceiling> {
    let connections = connections.max(1);
    let threads = threads.clamp(1, connections);
    let before = CpuSnapshot::take(&target.parts);
    let children_before = children_cpu_secs();
    let (ok, failed, secs, latency) = match generator {
        Generator::Wrk(bin) => {
            run_wrk(bin, &target.url, sample, connections, threads, duration).await?
        }
        Generator::Hyper => run_hyper(&target.url, sample, connections, duration).await?,
    };
    let after = CpuSnapshot::take(&target.parts);
    let children = (children_cpu_secs() - children_before).max(0.0);
    let used = after.since(&before);
    let row = |label: &str| {
        used.iter()
            .filter(|u| u.label == label)
            .map(|u| u.secs)
            .sum::<f64>()
    };
    let own: f64 = used
        .iter()
        .filter(|u| u.label != "bench load" && u.label != "bench receiver")
        .map(|u| u.secs)
        .sum();
    let receiver_cpu = if target.in_bench {
        row("bench receiver")
    } else {
        own
    };
    let load_cpu = match generator {
        Generator::Wrk(_) => children,
        Generator::Hyper => row("bench load"),
    };
    Ok(Ceiling {
        target: target.name.clone(),
        generator: generator.name(),
        connections,
        threads,
        ok,
        failed,
        secs,
        p50_us: latency.0,
        p99_us: latency.1,
        receiver_cpu,
        load_cpu,
    })
}

/// A Lua string literal of `s`.
fn lua_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The wrk script: POST the body read from `body_path` with the sample's headers, and print
/// one line of results at the end.
fn wrk_script(sample: &Sample, body_path: &Path) -> String {
    let mut s = String::new();
    s.push_str("-- Generated by hookrelay-bench: POST one recorded delivery, over and over.\n");
    s.push_str(&format!(
        "local f = assert(io.open({}, \"rb\"))\nwrk.body = f:read(\"*a\")\nf:close()\n",
        lua_str(&body_path.display().to_string())
    ));
    s.push_str("wrk.method = \"POST\"\n");
    for (k, v) in sample.replayed_headers() {
        s.push_str(&format!("wrk.headers[{}] = {}\n", lua_str(k), lua_str(v)));
    }
    s.push_str(
        r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("ceiling-result %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#,
    );
    s
}

/// Parses wrk's `ceiling-result` line: (ok, failed, secs, (p50, p99)).
fn parse_wrk(out: &str) -> Option<(u64, u64, f64, (u64, u64))> {
    let line = out
        .lines()
        .find_map(|l| l.trim().strip_prefix("ceiling-result "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let [
        requests,
        duration_us,
        connect,
        read,
        write,
        status,
        timeout,
        p50,
        p99,
    ] = v[..]
    else {
        return None;
    };
    // `status` counts answers other than 2xx/3xx among `requests`; the others are requests
    // that never got an answer.
    let failed = status + connect + read + write + timeout;
    let ok = requests.saturating_sub(status);
    Some((ok, failed, duration_us as f64 / 1e6, (p50, p99)))
}

async fn run_wrk(
    bin: &Path,
    url: &str,
    sample: &Sample,
    connections: usize,
    threads: usize,
    duration: Duration,
) -> anyhow::Result<(u64, u64, f64, (u64, u64))> {
    let dir = std::env::temp_dir().join(format!(
        "hookrelay-bench-wrk-{}-{}",
        std::process::id(),
        crate::report::now_us()
    ));
    std::fs::create_dir_all(&dir)?;
    let body_path = dir.join("body.json");
    std::fs::write(&body_path, &sample.body)?;
    let script = dir.join("post.lua");
    std::fs::write(&script, wrk_script(sample, &body_path))?;
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("-t")
        .arg(threads.to_string())
        .arg("-c")
        .arg(connections.to_string())
        .arg("-d")
        .arg(format!("{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(&script)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd.output().await;
    let _ = std::fs::remove_dir_all(&dir);
    let out = out.map_err(|e| anyhow::anyhow!("cannot run {}: {e}", bin.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "wrk failed ({}): {}{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&stdout).ok_or_else(|| anyhow::anyhow!("wrk printed no result: {stdout}"))
}

/// The hyper client: `connections` keep-alive HTTP/1.1 connections, each sending its next
/// request as soon as the previous one is answered, until `duration` has passed.
async fn run_hyper(
    url: &str,
    sample: &Sample,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<(u64, u64, f64, (u64, u64))> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("not an http:// URL: {url}"))?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: SocketAddr = host.parse()?;
    let path = if path.is_empty() { "/" } else { path }.to_owned();
    let host = host.to_owned();
    let body = Bytes::from(sample.body.clone());
    let headers: Arc<Vec<(String, String)>> =
        Arc::new(sample.replayed_headers().cloned().collect());
    let start = Instant::now();
    let end = start + duration;
    let mut tasks = JoinSet::new();
    for _ in 0..connections {
        let (host, path, body, headers) =
            (host.clone(), path.clone(), body.clone(), headers.clone());
        tasks.spawn(async move {
            let mut ok = 0u64;
            let mut failed = 0u64;
            let mut latency = Vec::new();
            let Ok(stream) = tokio::net::TcpStream::connect(addr).await else {
                return (0, 1, latency);
            };
            let _ = stream.set_nodelay(true);
            let Ok((mut sender, conn)) =
                hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
            else {
                return (0, 1, latency);
            };
            tokio::spawn(conn);
            while Instant::now() < end {
                let mut req = Request::post(path.as_str()).header("host", host.as_str());
                for (k, v) in headers.iter() {
                    req = req.header(k.as_str(), v.as_str());
                }
                let Ok(req) = req.body(Full::new(body.clone())) else {
                    return (ok, failed + 1, latency);
                };
                let sent = Instant::now();
                match sender.send_request(req).await {
                    Ok(resp) => {
                        let good = resp.status().is_success();
                        let read = resp.into_body().collect().await.is_ok();
                        if good && read {
                            ok += 1;
                            latency.push(
                                u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX),
                            );
                        } else {
                            failed += 1;
                        }
                    }
                    Err(_) => return (ok, failed + 1, latency),
                }
            }
            (ok, failed, latency)
        });
    }
    let (mut ok, mut failed, mut all) = (0, 0, Vec::new());
    while let Some(r) = tasks.join_next().await {
        if let Ok((o, f, l)) = r {
            ok += o;
            failed += f;
            all.extend(l);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let p = Percentiles::new(all);
    Ok((ok, failed, secs, (p.at(50.0), p.at(99.0))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_has_the_exact_length() {
        for len in [0, 5, 10, 11, 600, 4096] {
            assert_eq!(Sample::filler(len).len(), len);
        }
        assert_eq!(Sample::filler(12), br#"{"pad":"xx"}"#.to_vec());
    }

    #[test]
    fn wrk_result_line_parses() {
        let out = "Running 5s test\nceiling-result 1000 2000000 0 0 0 3 0 150 900\n";
        assert_eq!(parse_wrk(out), Some((997, 3, 2.0, (150, 900))));
        assert_eq!(parse_wrk("nothing"), None);
    }

    #[test]
    fn script_replays_headers_but_not_per_connection_ones() {
        let sample = Sample {
            body: b"{}".to_vec(),
            headers: vec![
                ("host".into(), "127.0.0.1:1".into()),
                ("content-length".into(), "2".into()),
                ("webhook-id".into(), "a\"b".into()),
            ],
        };
        let s = wrk_script(&sample, Path::new("/x/body.json"));
        assert!(s.contains(r#"wrk.headers["webhook-id"] = "a\"b""#));
        assert!(!s.contains("content-length"));
        assert!(!s.contains("\"host\""));
        assert!(s.contains("wrk.method = \"POST\""));
    }
}
