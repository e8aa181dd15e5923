//! `memory`: resident memory (`VmRSS`) of the worker processes, the API and Redis — when
//! the workers are ready, at the peak while events come through the API, at the peak while
//! a standing queue is drained, and after some idle seconds.

use std::path::Path;
use std::time::Duration;

use crate::load::{enqueue_direct, publish_closed};
use crate::procstat::{RssSampler, rss_bytes};
use crate::redisinfo::used_memory;
use crate::report::{Table, mib};
use crate::scenarios::{Opts, count, setup, wait_delivered};

/// How long the processes idle before the last reading.
const IDLE: Duration = Duration::from_secs(5);
/// Half-open connections held against the API in the connections phase.
const HELD: usize = 3_000;
/// How long after they close the API's memory is read again.
const AFTER_CLOSE: Duration = Duration::from_secs(15);

/// Runs the scenario and prints its table.
pub async fn run(opts: &Opts, bin: &Path) -> anyhow::Result<()> {
    let n = opts.events;
    println!(
        "\n## memory: VmRSS with {} worker(s) × concurrency {}, {} events per phase",
        opts.workers,
        opts.concurrency(),
        count(n)
    );
    let mut s = setup(opts, bin).await?;
    let workers = s.stack.start_workers(opts.workers).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut procs: Vec<(String, u32)> = workers
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("hookrelay worker {}", i + 1), *p))
        .collect();
    if let Some(api) = s.stack.api_pid() {
        procs.push(("hookrelay api".to_owned(), api));
    }
    procs.push(("redis-server".to_owned(), s.stack.redis_pid));
    let pids: Vec<u32> = procs.iter().map(|(_, p)| *p).collect();
    let read =
        |pids: &[u32]| -> Vec<u64> { pids.iter().map(|p| rss_bytes(*p).unwrap_or(0)).collect() };

    let ready = read(&pids);
    let redis_before = used_memory(&mut s.stack.conn).await?;

    let sampler = RssSampler::start(&pids);
    let run = publish_closed(&s.api, n, opts.clients).await;
    wait_delivered(&s.sink, run.accepted).await;
    let peak_api: Vec<u64> = sampler.finish().into_iter().map(|(_, r)| r).collect();

    let sampler = RssSampler::start(&pids);
    let base = s.sink.count();
    let (enqueued, _) = enqueue_direct(
        &s.stack.redis_url(),
        n,
        opts.enqueue_concurrency,
        opts.pad_bytes,
    )
    .await?;
    wait_delivered(&s.sink, base + enqueued).await;
    let peak_backlog: Vec<u64> = sampler.finish().into_iter().map(|(_, r)| r).collect();

    tokio::time::sleep(IDLE).await;
    let after = read(&pids);
    let redis_after = used_memory(&mut s.stack.conn).await?;
    let delivered = s.sink.count();

    let mut t = Table::new(
        "resident memory (VmRSS)",
        &[
            "process",
            "ready",
            "peak, events through the API",
            "peak, draining a standing queue",
            &format!("after {} s idle", IDLE.as_secs()),
        ],
    );
    for (i, (name, pid)) in procs.iter().enumerate() {
        t.row([
            format!("{name} (pid {pid})"),
            mib(ready[i]),
            mib(peak_api[i]),
            mib(peak_backlog[i]),
            mib(after[i]),
        ]);
    }
    t.print();
    let per = redis_after.saturating_sub(redis_before) / delivered.max(1);
    let (payloads, payload_bytes) = payload_usage(&mut s.stack.conn).await?;
    let history = redis_after
        .saturating_sub(redis_before)
        .saturating_sub(payload_bytes)
        / delivered.max(1);
    let mut t = Table::new("Redis memory kept per delivery made", &["", ""]);
    t.pair("deliveries made", count(delivered));
    t.pair(
        "used_memory growth per delivery (record + attempts + index + payload)",
        format!("{} B", count(per)),
    );
    t.row([
        "of which the history: record + attempts + index (growth less the payloads' MEMORY USAGE)"
            .to_owned(),
        format!("{} B", count(history)),
    ]);
    t.row([
        format!(
            "the event payloads ({} of them, one per event)",
            count(payloads)
        ),
        format!("{} B each", count(payload_bytes / payloads.max(1))),
    ]);
    t.row([
        "kept for HOOKRELAY_RETENTION_SECS (default 7 days): at 1,000 deliveries/s".to_owned(),
        format!(
            "{:.0} GiB",
            per as f64 * 1000.0 * 7.0 * 86400.0 / (1u64 << 30) as f64
        ),
    ]);
    t.print();
    if let Some(api) = s.stack.api_pid() {
        connections(s.api.addr(), api).await?;
    }
    s.stack.stop_workers();
    Ok(())
}

/// The API's memory while thousands of clients hold half-sent requests, and after they
/// close: what a burst of connections leaves behind.
async fn connections(addr: &str, pid: u32) -> anyhow::Result<()> {
    use tokio::io::AsyncWriteExt;
    let before = rss_bytes(pid).unwrap_or(0);
    let mut held = Vec::with_capacity(HELD);
    for i in 0..HELD {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        let head: &[u8] = if i % 2 == 0 {
            b"GET /health HTTP/1.1\r\nHost: x\r\n"
        } else {
            b"POST /v2.1/projects/p/events HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"
        };
        s.write_all(head).await?;
        held.push(s);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let with = rss_bytes(pid).unwrap_or(0);
    drop(held);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let just_after = rss_bytes(pid).unwrap_or(0);
    tokio::time::sleep(AFTER_CLOSE.saturating_sub(Duration::from_secs(1))).await;
    let later = rss_bytes(pid).unwrap_or(0);
    let mut t = Table::new(
        &format!(
            "API memory around {} half-open connections",
            count(HELD as u64)
        ),
        &[
            "before",
            "held",
            "1 s after they closed",
            &format!("{} s after", AFTER_CLOSE.as_secs()),
        ],
    );
    t.row([mib(before), mib(with), mib(just_after), mib(later)]);
    t.print();
    Ok(())
}

/// How many event payloads Redis holds and their `MEMORY USAGE` in all.
async fn payload_usage(conn: &mut redis::aio::MultiplexedConnection) -> anyhow::Result<(u64, u64)> {
    let mut cursor: u64 = 0;
    let (mut n, mut bytes) = (0u64, 0u64);
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg("*:payload:*")
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await?;
        if !keys.is_empty() {
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("MEMORY").arg("USAGE").arg(k).arg("SAMPLES").arg(0);
            }
            let sizes: Vec<Option<u64>> = pipe.query_async(conn).await?;
            n += keys.len() as u64;
            bytes += sizes.into_iter().flatten().sum::<u64>();
        }
        cursor = next;
        if cursor == 0 {
            return Ok((n, bytes));
        }
    }
}
