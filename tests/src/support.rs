//! More helpers for the fault-injection and security tests: looking at processes (alive,
//! resident memory, logs), at the queue in Redis, at what a receiver got, and raw HTTP calls
//! that the API client would refuse to make (no token, bytes that are not UTF-8, thousands of
//! headers).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hookrelay_core::{DeliveryId, Keys};
use hookrelay_testkit::receiver::Receiver;
use serde_json::Value;

use crate::{Api, Env, Process, RedisServer, binary, wait_until};

/// The key schema of every test instance (`Env::new` sets the prefix `hr`), in the mode the
/// tests run in (one Redis or a cluster).
pub fn keys() -> Keys {
    crate::backing::keys()
}

/// Whether a process runs: it exists and is not a zombie waiting to be reaped.
pub fn is_running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name, which is in parentheses and may hold spaces.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Resident memory of a process in KiB (`VmRSS` in `/proc/<pid>/status`).
pub fn vm_rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Waits until the process log holds `needle`; returns the whole log.
pub async fn wait_for_log(p: &Process, needle: &str, timeout: Duration) -> String {
    let what = format!("{needle:?} in {}", p.log.display());
    wait_until(timeout, &what, || async { p.logs().contains(needle) }).await;
    p.logs()
}

/// How many lines of `text` contain `needle`.
pub fn lines_with(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// Which of `secrets` occur in `text`.
pub fn leaked<'a>(text: &str, secrets: &[&'a str]) -> Vec<&'a str> {
    secrets
        .iter()
        .copied()
        .filter(|s| text.contains(s))
        .collect()
}

/// The process id of a running redis-server (from `INFO server`), to send it signals.
pub fn redis_pid(redis: &RedisServer) -> i32 {
    let mut c = redis.connection();
    let info: String = redis::cmd("INFO").arg("server").query(&mut c).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("process_id in INFO server")
}

/// Sizes of the queue's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepths {
    /// `queue:ready` (LIST).
    pub ready: usize,
    /// `queue:scheduled` (ZSET).
    pub scheduled: usize,
    /// `queue:inflight` (HASH).
    pub inflight: usize,
    /// `queue:holders` (HASH).
    pub holders: usize,
    /// `queue:leases` (ZSET).
    pub leases: usize,
    /// `queue:dead` (LIST).
    pub dead: usize,
}

impl QueueDepths {
    /// Nothing waiting, scheduled or held (the dead list is not looked at).
    pub fn settled(&self) -> bool {
        self.ready == 0
            && self.scheduled == 0
            && self.inflight == 0
            && self.holders == 0
            && self.leases == 0
    }
}

/// Reads the sizes of the queue's keys: ready and scheduled jobs summed over every
/// endpoint queue.
pub fn queue_depths(redis: &RedisServer) -> QueueDepths {
    let mut c = redis.connection();
    let sum = |c: &mut crate::backing::Conn, pattern: String, cmd: &str| -> usize {
        let found: Vec<String> = redis::cmd("KEYS").arg(pattern).query(c).unwrap();
        found
            .iter()
            .map(|k| redis::cmd(cmd).arg(k).query::<usize>(c).unwrap())
            .sum()
    };
    let mut total = QueueDepths::default();
    for p in 0..keys().partitions() {
        let part = keys().partition(p);
        let endpoint_keys = part.endpoint("*");
        total.ready += sum(&mut c, endpoint_keys.ready, "LLEN");
        total.scheduled += sum(&mut c, endpoint_keys.scheduled, "ZCARD");
        let (inflight, holders, leases, dead): (usize, usize, usize, usize) = redis::pipe()
            .cmd("HLEN")
            .arg(part.inflight())
            .cmd("HLEN")
            .arg(part.holders())
            .cmd("ZCARD")
            .arg(part.leases())
            .cmd("LLEN")
            .arg(part.dead())
            .query(&mut c)
            .unwrap();
        total.inflight += inflight;
        total.holders += holders;
        total.leases += leases;
        total.dead += dead;
    }
    total
}

/// The id of a delivery as a test read it (from an answer or a job), checked.
pub fn delivery_id(id: &str) -> DeliveryId {
    DeliveryId::parse(id).unwrap_or_else(|e| panic!("{id:?} is not a delivery id: {e}"))
}

/// The `status` field of each delivery record, in one pipelined round trip (missing → "").
pub fn statuses(redis: &RedisServer, ids: &[String]) -> Vec<String> {
    let k = keys();
    let mut c = redis.connection();
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(5000) {
        let mut pipe = redis::pipe();
        for id in chunk {
            pipe.cmd("HGET")
                .arg(k.delivery(&delivery_id(id)))
                .arg("status");
        }
        let got: Vec<Option<String>> = pipe.query(&mut c).unwrap();
        out.extend(got.into_iter().map(Option::unwrap_or_default));
    }
    out
}

/// Waits until every delivery of `ids` has status `status` in Redis.
pub async fn wait_all_status(redis: &RedisServer, ids: &[String], status: &str, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let got = statuses(redis, ids);
        let off: Vec<(&String, &String)> =
            ids.iter().zip(&got).filter(|(_, s)| *s != status).collect();
        if off.is_empty() {
            return;
        }
        if Instant::now() >= deadline {
            let sample: Vec<String> = off
                .iter()
                .take(5)
                .map(|(id, s)| format!("{id}={s:?}"))
                .collect();
            panic!(
                "{} of {} deliveries never reached {status} within {timeout:?}, e.g. {}",
                off.len(),
                ids.len(),
                sample.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the queue holds nothing waiting, scheduled or in flight.
pub async fn wait_settled(redis: &RedisServer, timeout: Duration) -> QueueDepths {
    let deadline = Instant::now() + timeout;
    loop {
        let d = queue_depths(redis);
        if d.settled() {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "queue never settled within {timeout:?}: {d:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many requests a receiver got per `webhook-id` (the delivery id).
pub fn requests_per_delivery(receiver: &Receiver) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for r in receiver.requests() {
        let id = r.header("webhook-id").unwrap_or("").to_owned();
        *seen.entry(id).or_insert(0) += 1;
    }
    seen
}

/// Creates `n` webhooks `hook-0` … in `project`, all firing on `event` for deployment `d1`,
/// delivering to `url`; `extra` fields are merged into each body.
pub async fn create_webhooks(
    api: &Api,
    project: &str,
    n: usize,
    url: &str,
    event: &str,
    extra: Value,
) {
    for i in 0..n {
        let mut body = crate::webhook(&format!("hook-{i}"), url, event);
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                b.insert(k.clone(), v.clone());
            }
        }
        api.create_webhook(project, body).await;
    }
}

/// Publishes `n` events (`data: {"n": i}`) with up to `parallel` requests at once; returns
/// every delivery id, in no particular order. Panics unless each answer is 202.
pub async fn publish_many(
    api: &Api,
    project: &str,
    event: &str,
    n: usize,
    parallel: usize,
) -> Vec<String> {
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..parallel.max(1) {
        let (api, project, event, next) = (
            api.clone(),
            project.to_owned(),
            event.to_owned(),
            next.clone(),
        );
        tasks.spawn(async move {
            let mut ids = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if i >= n {
                    return ids;
                }
                ids.extend(
                    api.publish(&project, crate::event(&event, serde_json::json!({"n": i})))
                        .await,
                );
            }
        });
    }
    let mut all = Vec::new();
    while let Some(ids) = tasks.join_next().await {
        all.extend(ids.expect("publishing task"));
    }
    all
}

/// An HTTP answer as it came.
#[derive(Debug, Clone)]
pub struct RawAnswer {
    /// Status code.
    pub status: u16,
    /// Headers (names lower-case).
    pub headers: HashMap<String, String>,
    /// The body as text (lossy UTF-8).
    pub text: String,
}

impl RawAnswer {
    /// The body as JSON, or `Null` when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }

    /// The `error` field of a JSON error body ("" when absent).
    pub fn error(&self) -> String {
        self.json()["error"].as_str().unwrap_or("").to_owned()
    }
}

/// Sends one request to `url` exactly as given: any headers (or none), any body bytes.
/// `Err` carries the client's error when no answer came at all.
pub async fn raw_call(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> Result<RawAnswer, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = client.request(method, url);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    if let Some(b) = body {
        req = req.body(b);
    }
    let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let text = resp.text().await.map_err(|e| format!("{e:?}"))?;
    Ok(RawAnswer {
        status,
        headers,
        text,
    })
}

/// `Authorization: Token <the test token>` and `Content-Type: application/json`.
pub fn auth_json() -> Vec<(String, String)> {
    vec![
        ("authorization".into(), format!("Token {}", crate::TOKEN)),
        ("content-type".into(), "application/json".into()),
    ]
}

/// Runs the binary with `args` and exactly the variables of `env` (plus `extra`), and no
/// API port of its own; kills it after `timeout`. Returns (exit code, stdout, stderr); the
/// code is `None` when it had to be killed.
pub fn run_binary(
    env: &Env,
    args: &[&str],
    extra: &[(&str, &str)],
    timeout: Duration,
) -> (Option<i32>, String, String) {
    let dir = std::env::temp_dir();
    let tag = format!("{}-{}", std::process::id(), crate::free_port());
    let out_path = dir.join(format!("hookrelay-run-{tag}.out"));
    let err_path = dir.join(format!("hookrelay-run-{tag}.err"));
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (k, v) in &env.vars {
        cmd.env(k, v);
    }
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn hookrelay");
    let deadline = Instant::now() + timeout;
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let read = |p: &std::path::Path| {
        let s = std::fs::read_to_string(p).unwrap_or_default();
        let _ = std::fs::remove_file(p);
        s
    };
    (code, read(&out_path), read(&err_path))
}

/// Every key of the test instance with its type and TTL in seconds (-1: none).
pub fn keys_with_ttl(redis: &RedisServer) -> Vec<(String, String, i64)> {
    let mut c = redis.connection();
    let names: Vec<String> = redis::cmd("KEYS").arg("hr:*").query(&mut c).unwrap();
    let mut out = Vec::new();
    for name in names {
        let (kind, ttl): (String, i64) = redis::pipe()
            .cmd("TYPE")
            .arg(&name)
            .cmd("TTL")
            .arg(&name)
            .query(&mut c)
            .unwrap();
        out.push((name, kind, ttl));
    }
    out.sort();
    out
}

/// Sends `head` (request line and headers, ending with an empty line) and `body` over a raw
/// TCP connection to `addr`, reading the answer while still writing: a server that answers
/// early (a 413 before the body has been read) and closes is seen answering, where a client
/// that first writes everything would only see its write fail. Returns (status, body) of
/// the answer, or what went wrong when none came.
pub async fn raw_http(addr: &str, head: String, body: Vec<u8>) -> Result<(u16, String), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut rd, mut wr) = stream.into_split();
    let writer = tokio::spawn(async move {
        // Errors here are expected once the server has answered and closed.
        if wr.write_all(head.as_bytes()).await.is_ok() && wr.write_all(&body).await.is_ok() {
            let _ = wr.shutdown().await;
        }
    });
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let read = async {
        loop {
            match rd.read(&mut buf).await {
                Ok(0) => return Ok(()),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    if answer_complete(&got) {
                        return Ok(());
                    }
                }
                Err(e) if got.is_empty() => return Err(e.to_string()),
                Err(_) => return Ok(()),
            }
        }
    };
    let outcome = tokio::time::timeout(Duration::from_secs(30), read).await;
    writer.abort();
    match outcome {
        Err(_) => return Err("no answer within 30 s".into()),
        Ok(Err(e)) => return Err(e),
        Ok(Ok(())) => {}
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an HTTP answer: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Whether `got` holds a whole HTTP/1.1 answer with a `content-length`.
fn answer_complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .is_some_and(|len| body.len() >= len)
}
