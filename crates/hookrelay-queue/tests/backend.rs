//! The apalis backend under a real apalis worker: idle pickup is a wake-up, not a poll; a
//! Redis restart does not end the worker; unstarted jobs go back at shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use apalis::prelude::{Data, WorkerBuilder, WorkerBuilderExt};
use hookrelay_core::job::JobRequest;
use hookrelay_core::{Job, Keys};
use hookrelay_queue::{BackendSettings, HeldJobs, NewDelivery, Queue, RedisBackend};
use hookrelay_testkit::RedisServer;
use tokio::sync::mpsc;

fn job(id: &str) -> Job {
    let request = JobRequest {
        timeout_secs: 1,
        ..JobRequest::new("http://127.0.0.1:9/", "{}")
    };
    Job::first_attempt(
        hookrelay_core::DeliveryId::parse(id).unwrap(),
        hookrelay_core::ProjectName::parse("p").unwrap(),
        "ep-test",
        "e",
        request,
    )
}

async fn push(queue: &Queue, id: &str) {
    let d = vec![NewDelivery {
        job: job(id),
        event_id: None,
        keep_job: true,
    }];
    queue.enqueue("p", None, "{}", None, &d).await.unwrap();
}

async fn handler(
    job: Job,
    seen: Data<mpsc::UnboundedSender<(String, Instant)>>,
) -> Result<(), std::convert::Infallible> {
    let _ = seen.send((job.id.into_string(), Instant::now()));
    Ok(())
}

/// Starts an apalis worker over the backend; returns the channel of handled job ids.
fn start_worker(
    queue: &Queue,
    idle_wait: Duration,
) -> (
    mpsc::UnboundedReceiver<(String, Instant)>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let backend = RedisBackend::new(
        queue.clone(),
        "test-worker".into(),
        HeldJobs::default(),
        BackendSettings {
            concurrency: 4,
            lease: Duration::from_secs(30),
            idle_wait,
            legacy_check: Duration::from_secs(5),
        },
    );
    let worker = WorkerBuilder::new("test-worker")
        .backend(backend)
        .concurrency(4)
        .data(tx)
        .build(handler);
    let handle = tokio::spawn(async move {
        let _ = worker.run().await;
    });
    (rx, handle)
}

/// Waits until the worker is idle: blocked in its wait for work (a blocked Redis client).
async fn until_the_worker_waits(server: &RedisServer) {
    let mut c = server.connection();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let info: String = redis::cmd("INFO").arg("clients").query(&mut c).unwrap();
        let blocked = info
            .lines()
            .find_map(|l| l.strip_prefix("blocked_clients:"))
            .and_then(|n| n.trim().parse::<u32>().ok())
            .unwrap_or(0);
        if blocked > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the worker never went idle");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn an_idle_worker_is_woken_by_a_push_not_by_a_poll() {
    let server = RedisServer::start();
    let queue = Queue::connect(&server.url(), Keys::new("b")).await.unwrap();
    // The idle wait is 10 s: a pickup faster than that can only come from the wake-up.
    let (mut seen, handle) = start_worker(&queue, Duration::from_secs(10));
    until_the_worker_waits(&server).await;
    let mut latencies = Vec::new();
    for i in 0..5 {
        let pushed = Instant::now();
        push(&queue, &format!("j{i}")).await;
        let (id, at) = tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(id, format!("j{i}"));
        latencies.push(at - pushed);
        until_the_worker_waits(&server).await;
    }
    println!("idle pickup latencies: {latencies:?}");
    assert!(
        latencies.iter().all(|l| *l < Duration::from_secs(2)),
        "{latencies:?}"
    );
    handle.abort();
}

#[tokio::test]
async fn a_redis_restart_does_not_end_the_worker() {
    let mut server = RedisServer::start_aof();
    let queue = Queue::connect(&server.url(), Keys::new("b")).await.unwrap();
    let (mut seen, handle) = start_worker(&queue, Duration::from_millis(200));
    push(&queue, "before").await;
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), seen.recv())
            .await
            .unwrap()
            .unwrap()
            .0,
        "before"
    );
    server.kill();
    tokio::time::sleep(Duration::from_secs(1)).await;
    server.restart();
    assert!(!handle.is_finished(), "the worker ended on a Redis error");
    // Pushes may fail for a moment while the connection re-establishes itself.
    let deadline = Instant::now() + Duration::from_secs(10);
    while queue.ping().await.is_err() {
        assert!(Instant::now() < deadline, "queue never reconnected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    push(&queue, "after").await;
    let (id, _) = tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id, "after");
    assert!(!handle.is_finished());
    handle.abort();
}
