//! The queue's properties, each against a real redis-server of its own.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use hookrelay_core::job::JobRequest;
use hookrelay_core::time::Timestamp;
use hookrelay_core::{AttemptRecord, DeliveryId, DeliveryStatus, Job, Keys};
use hookrelay_queue::{Ack, EnqueueOutcome, NewDelivery, Queue};
use hookrelay_testkit::RedisServer;
use redis::Commands;

/// A delivery id of a test.
fn did(id: &str) -> DeliveryId {
    DeliveryId::parse(id).unwrap()
}

fn job(id: &str) -> Job {
    Job {
        webhook: Some("w".into()),
        retry: true,
        ..Job::first_attempt(
            hookrelay_core::DeliveryId::parse(id).unwrap(),
            hookrelay_core::ProjectName::parse("p").unwrap(),
            "ep-test",
            "e",
            JobRequest::new("http://127.0.0.1:9/", "{}"),
        )
    }
}

/// The endpoint queue of every job these tests make.
const READY: &str = "t:{q0}:ep:ep-test:ready";
const SCHEDULED: &str = "t:{q0}:ep:ep-test:scheduled";
const ENDPOINT_LEASES: &str = "t:{q0}:ep:ep-test:leases";
const RING: &str = "t:{q0}:ring";

fn attempt(n: u32, error: Option<&str>) -> AttemptRecord {
    AttemptRecord {
        attempt: n,
        started_at: Timestamp::now(),
        duration_ms: 3,
        status_code: if error.is_some() {
            Some(500)
        } else {
            Some(200)
        },
        error: error.map(str::to_owned),
        response: None,
        worker: Some("w1".into()),
    }
}

/// Acks attempt `job.attempt` as `worker` would after a success; whether it settled.
async fn ack_success(queue: &Queue, worker: &str, job: &Job) -> bool {
    let a = attempt(job.attempt, None);
    let ack = Ack {
        worker,
        job,
        attempt: &a,
        status: DeliveryStatus::Succeeded,
        next: None,
        verdict: None,
        requeue_front: false,
        take_next: None,
    };
    queue.ack(&ack).await.unwrap().settled
}

/// Claims for `worker` until `done` says the claim is the one expected, or panics after a
/// few seconds: waits for a lease or a retry to come due on Redis's clock, not for a fixed
/// time.
async fn claim_until(
    queue: &Queue,
    worker: &str,
    lease: Duration,
    what: &str,
    done: impl Fn(&hookrelay_queue::Claimed) -> bool,
) -> hookrelay_queue::Claimed {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let c = queue.claim(worker, 10, lease).await.unwrap();
        if done(&c) {
            return c;
        }
        assert!(c.jobs.is_empty(), "{what}: claimed something else first");
        assert!(Instant::now() < deadline, "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until every lease of the test endpoint is past its deadline on Redis's clock.
async fn until_leases_lapse(server: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut c = server.connection();
    loop {
        let (secs, micros): (i64, i64) = redis::cmd("TIME").query(&mut c).unwrap();
        let now_ms = secs * 1000 + micros / 1000;
        let live: usize = c.zcount(ENDPOINT_LEASES, now_ms, "+inf").unwrap();
        if live == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "leases did not lapse within 5 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn setup() -> (RedisServer, Queue) {
    let server = RedisServer::start();
    let queue = Queue::connect(&server.url(), Keys::new("t")).await.unwrap();
    (server, queue)
}

async fn enqueue(queue: &Queue, ids: &[&str]) {
    let ds: Vec<NewDelivery> = ids
        .iter()
        .map(|id| NewDelivery {
            job: job(id),
            event_id: None,
            keep_job: true,
        })
        .collect();
    queue.enqueue("p", None, "{}", None, &ds).await.unwrap();
}

#[tokio::test]
async fn a_job_leaves_the_queue_only_with_its_outcome_recorded() {
    let (server, queue) = setup().await;
    enqueue(&queue, &["d1"]).await;
    let view = queue.delivery(&did("d1")).await.unwrap().unwrap();
    assert_eq!(view.status, DeliveryStatus::Pending);

    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let mut c = server.connection();
    let inflight: Vec<String> = c.hkeys("t:{q0}:inflight").unwrap();
    assert_eq!(inflight, vec!["d1".to_string()]);

    let j = Job::decode(claimed.jobs[0].as_bytes()).unwrap();
    assert!(ack_success(&queue, "w1", &j).await);
    let view = queue.delivery(&did("d1")).await.unwrap().unwrap();
    assert_eq!(view.status, DeliveryStatus::Succeeded);
    assert_eq!(view.attempts.len(), 1);
    assert_eq!(view.attempts[0].status_code, Some(200));
    // Nothing is left behind in the queue keys.
    for key in [
        READY,
        SCHEDULED,
        ENDPOINT_LEASES,
        RING,
        "t:{q0}:timers",
        "t:{q0}:inflight",
        "t:{q0}:holders",
        "t:{q0}:leases",
    ] {
        let exists: bool = c.exists(key).unwrap();
        assert!(!exists, "{key} left behind");
    }
    // The record expires after the retention.
    let ttl: i64 = c.ttl("t:delivery:d1").unwrap();
    assert!(ttl > 0);
}

#[tokio::test]
async fn a_retry_waits_in_the_scheduled_set_then_runs() {
    let (server, queue) = setup().await;
    enqueue(&queue, &["d1"]).await;
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let j = Job::decode(claimed.jobs[0].as_bytes()).unwrap();
    let next = Job {
        attempt: 2,
        ..j.clone()
    };
    let due = hookrelay_core::time::now_ms() + 300;
    let a = attempt(1, Some("HTTP 500"));
    queue
        .ack(&Ack {
            worker: "w1",
            job: &j,
            attempt: &a,
            status: DeliveryStatus::Retrying,
            next: Some((&next, due)),
            verdict: None,
            requeue_front: false,
            take_next: None,
        })
        .await
        .unwrap();
    let view = queue.delivery(&did("d1")).await.unwrap().unwrap();
    assert_eq!(view.status, DeliveryStatus::Retrying);
    assert_eq!(view.next_attempt_at_ms, Some(due));
    assert_eq!(view.last_error.as_deref(), Some("HTTP 500"));
    let mut c = server.connection();
    let scheduled: usize = c.zcard(SCHEDULED).unwrap();
    assert_eq!(scheduled, 1);
    // Not due yet.
    assert!(
        queue
            .claim("w1", 10, Duration::from_secs(30))
            .await
            .unwrap()
            .jobs
            .is_empty()
    );
    let claimed = claim_until(
        &queue,
        "w1",
        Duration::from_secs(30),
        "the due retry",
        |c| !c.jobs.is_empty(),
    )
    .await;
    assert_eq!(claimed.jobs.len(), 1);
    assert_eq!(Job::decode(claimed.jobs[0].as_bytes()).unwrap().attempt, 2);
}

#[tokio::test]
async fn a_dead_workers_jobs_go_back_after_the_lease() {
    let (_server, queue) = setup().await;
    enqueue(&queue, &["d1", "d2"]).await;
    let lease = Duration::from_millis(300);
    let first = queue.claim("dead-worker", 10, lease).await.unwrap();
    assert_eq!(first.jobs.len(), 2);
    // Another worker sees nothing while the lease runs.
    assert!(queue.claim("w2", 10, lease).await.unwrap().jobs.is_empty());
    let second = claim_until(&queue, "w2", lease, "the dead worker's jobs", |c| {
        c.recovered > 0
    })
    .await;
    assert_eq!(second.recovered, 2);
    assert_eq!(second.jobs.len(), 2);
    // The first worker's late ack records its attempt but does not settle the job it lost.
    let j = Job::decode(first.jobs[0].as_bytes()).unwrap();
    assert!(!ack_success(&queue, "dead-worker", &j).await);
}

#[tokio::test]
async fn a_busy_worker_renewing_its_leases_keeps_its_jobs() {
    let (_server, queue) = setup().await;
    enqueue(&queue, &["d1"]).await;
    let lease = Duration::from_millis(300);
    let held = queue.claim("busy", 10, lease).await.unwrap();
    assert_eq!(held.jobs.len(), 1);
    let ids = vec![("d1".to_string(), "ep-test".to_string())];
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        let lost = queue.renew("busy", &ids, lease).await.unwrap();
        assert!(lost.is_empty());
        let other = queue.claim("other", 10, lease).await.unwrap();
        assert!(
            other.jobs.is_empty() && other.recovered == 0,
            "busy worker's job taken"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn garbage_in_the_ready_list_goes_to_the_dead_list_with_its_reason() {
    let (server, queue) = setup().await;
    let mut c = server.connection();
    let _: () = c.lpush(READY, "not json at all").unwrap();
    let _: () = c.lpush(READY, "{\"v\":1,\"id\":\"half").unwrap();
    let _: () = c.lpush(READY, "\"just a string\"").unwrap();
    let _: () = c.lpush(READY, "{\"v\":1}").unwrap();
    enqueue(&queue, &["good"]).await;
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    assert_eq!(claimed.dead.len(), 4);
    let dead: Vec<String> = c.lrange("t:{q0}:dead", 0, -1).unwrap();
    assert_eq!(dead.len(), 4);
    let reasons: Vec<String> = dead
        .iter()
        .map(|d| {
            serde_json::from_str::<serde_json::Value>(d).unwrap()["reason"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert!(
        reasons.contains(&"not valid JSON".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"not a JSON object".to_string()),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"no string \"id\" field".to_string()),
        "{reasons:?}"
    );
    // A JSON job of an unknown version is moved aside by the worker through dead_letter.
    let _: () = c.lpush(READY, "{\"v\":99,\"id\":\"future\"}").unwrap();
    // Written by hand, so put the endpoint in the ring by hand too.
    let _: () = c.zadd(RING, "ep-test", 0).unwrap();
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let err = Job::decode(claimed.jobs[0].as_bytes())
        .unwrap_err()
        .to_string();
    assert!(
        queue
            .dead_letter("w1", &did("future"), "ep-test", &err)
            .await
            .unwrap()
    );
    let last: String = c.lindex("t:{q0}:dead", 0).unwrap();
    assert!(last.contains("unknown job version 99"), "{last}");
    let inflight: usize = c.hlen("t:{q0}:inflight").unwrap();
    assert_eq!(inflight, 1, "only the good job stays in flight");
}

#[tokio::test]
async fn a_backlog_far_past_lua_unpack_limits_drains_in_bounded_chunks() {
    let (server, queue) = setup().await;
    let queue = queue.with_endpoint_concurrency(1000);
    let mut c = server.connection();
    // 50,000 due retries and 50,000 ready jobs, written directly.
    let now = hookrelay_core::time::now_ms();
    for chunk in 0..50 {
        let mut pipe = redis::pipe();
        for i in 0..1000 {
            let n = chunk * 1000 + i;
            pipe.zadd(SCHEDULED, job(&format!("s{n}")).encode(), now - 1000)
                .ignore();
            pipe.lpush(READY, job(&format!("r{n}")).encode()).ignore();
        }
        let _: () = pipe.query(&mut c).unwrap();
    }
    let _: () = c.zadd(RING, "ep-test", 0).unwrap();
    let mut total = 0;
    loop {
        let claimed = queue
            .claim("w1", 256, Duration::from_secs(60))
            .await
            .unwrap();
        if claimed.jobs.is_empty() {
            break;
        }
        total += claimed.jobs.len();
        // Settle in bulk, as a worker would, to keep in-flight bounded.
        let ids: Vec<String> = claimed
            .jobs
            .iter()
            .map(|r| Job::decode(r.as_bytes()).unwrap().id.into_string())
            .collect();
        let mut pipe = redis::pipe();
        for id in &ids {
            pipe.hdel("t:{q0}:inflight", id).ignore();
            pipe.hdel("t:{q0}:holders", id).ignore();
            pipe.zrem("t:{q0}:leases", format!("ep-test|{id}")).ignore();
            pipe.zrem(ENDPOINT_LEASES, id).ignore();
        }
        let _: () = pipe.query(&mut c).unwrap();
    }
    assert_eq!(total, 100_000);
}

#[tokio::test]
async fn an_event_id_enqueues_once() {
    let (server, queue) = setup().await;
    let key = "evt-1";
    let ds = vec![NewDelivery {
        job: job("d1"),
        event_id: Some("evt-1".into()),
        keep_job: true,
    }];
    let first = queue
        .enqueue(
            "p",
            Some(key),
            "{\"id\":\"evt-1\",\"deliveries\":[\"d1\"]}",
            None,
            &ds,
        )
        .await
        .unwrap();
    assert!(matches!(first, EnqueueOutcome::Enqueued(_)));
    let ds2 = vec![NewDelivery {
        job: job("d2"),
        event_id: Some("evt-1".into()),
        keep_job: true,
    }];
    let second = queue
        .enqueue(
            "p",
            Some(key),
            "{\"id\":\"evt-1\",\"deliveries\":[\"d2\"]}",
            None,
            &ds2,
        )
        .await
        .unwrap();
    assert_eq!(
        second,
        EnqueueOutcome::Duplicate("{\"id\":\"evt-1\",\"deliveries\":[\"d1\"]}".into())
    );
    let mut c = server.connection();
    let ready: usize = c.llen(READY).unwrap();
    assert_eq!(ready, 1);
}

#[tokio::test]
async fn unstarted_jobs_are_handed_back_to_the_front() {
    let (server, queue) = setup().await;
    enqueue(&queue, &["d1", "d2", "d3"]).await;
    let claimed = queue.claim("w1", 2, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.jobs.len(), 2);
    let ids: Vec<String> = claimed
        .jobs
        .iter()
        .map(|r| Job::decode(r.as_bytes()).unwrap().id.into_string())
        .collect();
    let held: Vec<(String, String)> = ids
        .iter()
        .map(|id| (id.clone(), "ep-test".to_string()))
        .collect();
    assert_eq!(queue.release("w1", &held).await.unwrap(), 2);
    // Another worker's release of jobs it does not hold does nothing.
    assert_eq!(queue.release("w2", &held).await.unwrap(), 0);
    let mut c = server.connection();
    let ready: usize = c.llen(READY).unwrap();
    assert_eq!(ready, 3);
    let next = queue.claim("w2", 1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(
        Job::decode(next.jobs[0].as_bytes()).unwrap().id,
        ids[ids.len() - 1]
    );
}

#[tokio::test]
async fn workers_silent_for_an_hour_are_forgotten() {
    let (server, queue) = setup().await;
    let mut c = server.connection();
    let long_ago = hookrelay_core::time::now_ms() - 2 * 3600 * 1000;
    let _: () = c.zadd("t:workers", "killed-worker", long_ago).unwrap();
    queue
        .renew("alive", &[], Duration::from_secs(10))
        .await
        .unwrap();
    let workers: Vec<String> = c.zrange("t:workers", 0, -1).unwrap();
    assert_eq!(workers, vec!["alive".to_string()]);
}

#[tokio::test]
async fn a_worker_back_from_a_redis_outage_keeps_its_own_lapsed_jobs() {
    let (server, queue) = setup().await;
    enqueue(&queue, &["d1"]).await;
    let lease = Duration::from_millis(200);
    assert_eq!(queue.claim("w1", 10, lease).await.unwrap().jobs.len(), 1);
    // Its renewals could not reach Redis: the lease lapsed.
    until_leases_lapse(&server).await;
    // Its own next claim extends the lease instead of handing the job back.
    let again = queue.claim("w1", 10, lease).await.unwrap();
    assert_eq!(again.recovered, 0);
    assert!(again.jobs.is_empty());
    let other = queue.claim("w2", 10, lease).await.unwrap();
    assert_eq!(other.recovered, 0, "a live worker's job was taken");
    assert!(other.jobs.is_empty());
}

#[tokio::test]
async fn an_ack_settles_only_the_attempt_it_ran() {
    let (server, queue) = setup().await;
    enqueue(&queue, &["d1"]).await;
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let first = Job::decode(claimed.jobs[0].as_bytes()).unwrap();
    let second = Job {
        attempt: 2,
        ..first.clone()
    };
    let a1 = attempt(1, Some("HTTP 500"));
    let ack = Ack {
        worker: "w1",
        job: &first,
        attempt: &a1,
        status: DeliveryStatus::Retrying,
        next: Some((&second, 0)),
        verdict: None,
        requeue_front: false,
        take_next: None,
    };
    assert!(queue.ack(&ack).await.unwrap().settled);
    // Attempt 2 is claimed by the same worker…
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(Job::decode(claimed.jobs[0].as_bytes()).unwrap().attempt, 2);
    // …and a repeated ack of attempt 1 (its first answer was lost) settles nothing.
    assert!(!queue.ack(&ack).await.unwrap().settled);
    let mut c = server.connection();
    let inflight: usize = c.hlen("t:{q0}:inflight").unwrap();
    assert_eq!(inflight, 1, "attempt 2 must stay in flight");
    let scheduled: usize = c.zcard(SCHEDULED).unwrap();
    assert_eq!(scheduled, 0, "no second copy of attempt 2");
}

#[tokio::test]
async fn acks_settled_together_each_settle_as_alone() {
    let (server, queue) = setup().await;
    enqueue(&queue, &["d1", "d2", "d3", "d4"]).await;
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let jobs: Vec<Job> = claimed
        .jobs
        .iter()
        .map(|c| Job::decode(c.as_bytes()).unwrap())
        .collect();
    let by_id = |id: &str| jobs.iter().find(|j| j.id == id).unwrap().clone();
    let (j1, j2, j3, j4) = (by_id("d1"), by_id("d2"), by_id("d3"), by_id("d4"));
    let next2 = Job {
        attempt: 2,
        ..j2.clone()
    };
    let (ok, failed) = (attempt(1, None), attempt(1, Some("HTTP 500")));
    fn ack<'a>(
        worker: &'a str,
        job: &'a Job,
        attempt: &'a AttemptRecord,
        status: DeliveryStatus,
        next: Option<(&'a Job, i64)>,
    ) -> Ack<'a> {
        Ack {
            worker,
            job,
            attempt,
            status,
            next,
            verdict: None,
            requeue_front: false,
            take_next: None,
        }
    }
    let due = hookrelay_core::time::now_ms() + 60_000;
    let acks = [
        ack("w1", &j1, &ok, DeliveryStatus::Succeeded, None),
        ack(
            "w1",
            &j2,
            &failed,
            DeliveryStatus::Retrying,
            Some((&next2, due)),
        ),
        // Not the holder: recorded, not settled.
        ack("w2", &j3, &ok, DeliveryStatus::Succeeded, None),
        ack("w1", &j4, &ok, DeliveryStatus::Succeeded, None),
    ];
    // d4's record is not a hash: its ack fails in the script, and only its own.
    let mut c = server.connection();
    let _: () = c.del("t:delivery:d4").unwrap();
    let _: () = c.rpush("t:delivery:d4", "not a record").unwrap();
    let prepared: Vec<_> = acks.iter().map(|a| queue.prepare_ack(a).unwrap()).collect();
    let results = queue.ack_many(&prepared).await.unwrap();
    assert_eq!(results.len(), 4);
    let settled: Vec<Option<bool>> = results
        .iter()
        .map(|r| r.as_ref().ok().map(|o| o.settled))
        .collect();
    assert_eq!(settled, vec![Some(true), Some(true), Some(false), None]);
    let d1 = queue.delivery(&did("d1")).await.unwrap().unwrap();
    assert_eq!(d1.status, DeliveryStatus::Succeeded);
    let d2 = queue.delivery(&did("d2")).await.unwrap().unwrap();
    assert_eq!(d2.status, DeliveryStatus::Retrying);
    assert_eq!(d2.next_attempt_at_ms, Some(due));
    let d3 = queue.delivery(&did("d3")).await.unwrap().unwrap();
    assert_eq!(d3.status, DeliveryStatus::Pending);
    let scheduled: usize = c.zcard(SCHEDULED).unwrap();
    assert_eq!(scheduled, 1);
    // d3 (not settled) and d4 (failed in the script) are still held by w1.
    let mut inflight: Vec<String> = c.hkeys("t:{q0}:inflight").unwrap();
    inflight.sort();
    assert_eq!(inflight, vec!["d3".to_string(), "d4".to_string()]);
    // The same acks one by one settle nothing more: each was settled once.
    for a in &acks[..2] {
        assert!(!queue.ack(a).await.unwrap().settled);
    }
}

#[tokio::test]
async fn bytes_that_are_not_utf8_do_not_hold_up_the_jobs_claimed_with_them() {
    let (server, queue) = setup().await;
    let mut c = server.connection();
    enqueue(&queue, &["a", "b"]).await;
    let bad: &[u8] = b"{\"v\":1,\"id\":\"bad\",\"x\":\"\xff\"}";
    let _: () = c.lpush(READY, bad).unwrap();
    enqueue(&queue, &["c"]).await;
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.jobs.len(), 4);
    let mut good = 0;
    for j in &claimed.jobs {
        match Job::decode(j.as_bytes()) {
            Ok(job) => {
                assert_eq!(job.id, j.id);
                good += 1;
            }
            Err(e) => {
                assert_eq!(j.id, "bad");
                assert!(
                    queue
                        .dead_letter("w1", &did(&j.id), &j.endpoint, &e.to_string())
                        .await
                        .unwrap()
                );
            }
        }
    }
    assert_eq!(good, 3);
    let dead: usize = c.llen("t:{q0}:dead").unwrap();
    assert_eq!(dead, 1);
}

#[tokio::test]
async fn a_delivery_id_naming_another_key_is_simply_not_found() {
    let (_server, queue) = setup().await;
    enqueue(&queue, &["d1"]).await;
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    let j = Job::decode(claimed.jobs[0].as_bytes()).unwrap();
    assert!(ack_success(&queue, "w1", &j).await);
    assert!(queue.delivery(&did("d1")).await.unwrap().is_some());
    // Such an id is no delivery id: read from an index, it names no delivery.
    assert!(DeliveryId::parse("d1:attempts").is_err());
    let both = queue
        .deliveries_by_id(&["d1:attempts".into(), "d1".into(), String::new()])
        .await
        .unwrap();
    assert!(both[0].is_none() && both[1].is_some() && both[2].is_none());
}

#[tokio::test]
async fn a_large_payload_is_stored_compressed_and_read_back_whole() {
    let (server, queue) = setup().await;
    let queue = queue.with_payload_compression(1024);
    let small = r#"{"id":"e-small","data":{"n":1}}"#.to_owned();
    let large = format!(
        r#"{{"id":"e-large","data":{{"text":"{}"}}}}"#,
        "a model version was released for review; ".repeat(100)
    );
    for (id, json) in [("e-small", &small), ("e-large", &large)] {
        let ds = vec![NewDelivery {
            job: job(&format!("d-{id}")),
            event_id: Some(id.into()),
            keep_job: false,
        }];
        queue
            .enqueue("p", None, "{}", Some((id, json.as_str())), &ds)
            .await
            .unwrap();
    }
    let mut c = server.connection();
    let keys = Keys::new("t");
    let raw_small: Vec<u8> = c.get(keys.payload("p", "e-small")).unwrap();
    let raw_large: Vec<u8> = c.get(keys.payload("p", "e-large")).unwrap();
    assert_eq!(
        raw_small,
        small.as_bytes(),
        "small payloads stay plain JSON"
    );
    assert_eq!(&raw_large[..4], &[0x28, 0xb5, 0x2f, 0xfd], "a zstd frame");
    assert!(
        raw_large.len() * 4 < large.len(),
        "{} B stored for {} B",
        raw_large.len(),
        large.len()
    );
    assert_eq!(queue.payload("p", "e-small").await.unwrap(), Some(small));
    assert_eq!(queue.payload("p", "e-large").await.unwrap(), Some(large));
    assert_eq!(queue.payload("p", "none").await.unwrap(), None);
}

#[tokio::test]
async fn a_record_of_the_earlier_format_is_read_and_settled() {
    let (server, queue) = setup().await;
    // What earlier versions wrote: every field, empty ones too, the attempts list with each
    // attempt's whole answer, and the job waiting in its endpoint's queue.
    let j = job("old-1");
    let mut c = server.connection();
    let _: () = redis::cmd("HSET")
        .arg("t:delivery:old-1")
        .arg(&[
            ("id", "old-1"),
            ("project", "p"),
            ("webhook", "w"),
            ("endpoint", "ep-test"),
            ("event", "e"),
            ("event_id", ""),
            ("kind", "delivery"),
            ("status", "retrying"),
            ("attempts", "1"),
            ("created_at", "1796187110000"),
            ("updated_at", "1796187110100"),
            ("next_attempt_at", "1796187110100"),
            ("last_error", "HTTP 500"),
            ("last_status_code", "500"),
            ("response", ""),
        ])
        .query(&mut c)
        .unwrap();
    let old_attempt = serde_json::json!({"attempt": 1, "started_at": "2026-12-02T04:51:50.100Z",
        "duration_ms": 4, "status_code": 500, "error": "HTTP 500",
        "response": {"status_code": 500, "headers": {"x": "y"}, "body": "busy", "body_truncated": false},
        "worker": "old-worker"});
    let _: () = c
        .rpush("t:delivery:old-1:attempts", old_attempt.to_string())
        .unwrap();
    let mut second = j.clone();
    second.attempt = 2;
    let _: () = c.lpush(READY, second.encode()).unwrap();
    let _: () = c.zadd(RING, "ep-test", 1).unwrap();

    let before = queue
        .delivery(&did("old-1"))
        .await
        .unwrap()
        .expect("read back");
    assert_eq!(before.status, DeliveryStatus::Retrying);
    assert_eq!(before.attempts.len(), 1);
    assert_eq!(before.attempts[0].response.as_ref().unwrap().body, "busy");
    assert_eq!(before.endpoint.as_deref(), Some("ep-test"));

    let claimed = queue
        .claim("w2", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    assert!(ack_success(&queue, "w2", &second).await);
    let after = queue
        .delivery(&did("old-1"))
        .await
        .unwrap()
        .expect("read back");
    assert_eq!(after.status, DeliveryStatus::Succeeded);
    let codes: Vec<Option<u16>> = after.attempts.iter().map(|a| a.status_code).collect();
    assert_eq!(codes, [Some(500), Some(200)], "{after:?}");
    assert_eq!(after.last_status_code, Some(200));
    assert_eq!(after.last_error, None);
    // The fields the new format leaves out are gone; the record stays compact.
    let fields: Vec<String> = c.hkeys("t:delivery:old-1").unwrap();
    assert!(!fields.contains(&"attempts".to_owned()), "{fields:?}");
    let encoding: String = redis::cmd("OBJECT")
        .arg("ENCODING")
        .arg("t:delivery:old-1")
        .query(&mut c)
        .unwrap();
    assert_eq!(encoding, "listpack");
}

#[tokio::test]
async fn a_job_whose_id_names_another_partition_goes_to_the_dead_list_where_it_waits() {
    let server = RedisServer::start();
    let keys = Keys::new("t").with_layout(4, false);
    let queue = Queue::connect(&server.url(), keys.clone()).await.unwrap();
    // A job written by hand into partition 2 whose id (no partition) names partition 0.
    let part = keys.partition(2);
    let mut c = server.connection();
    let _: () = c
        .lpush(part.endpoint("ep-test").ready, job("by-hand").encode())
        .unwrap();
    let _: () = c.zadd(part.ring(), "ep-test", 1).unwrap();
    let claimed = queue
        .claim("w1", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let j = &claimed.jobs[0];
    assert_eq!(j.partition, 2);
    let reason = j.misplaced.clone().expect("misplaced");
    assert!(
        reason.contains("partition 0") && reason.contains("partition 2"),
        "{reason}"
    );
    assert!(queue.dead_letter_claimed("w1", j, &reason).await.unwrap());
    let dead: Vec<String> = c.lrange(part.dead(), 0, -1).unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let inflight: usize = c.hlen(part.inflight()).unwrap();
    assert_eq!(inflight, 0);
}
