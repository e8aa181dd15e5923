//! Fault injection against the real thing: the release `hookrelay` binary as child processes
//! (killed with SIGKILL, stopped with SIGTERM), a real `redis-server` per test (killed and
//! restarted, or frozen with SIGSTOP), and scripted HTTP receivers on 127.0.0.1.
//!
//! Every test asserts correctness (what arrived, how often, statuses, exit codes, errors) and
//! prints what it measured (recovery time, duplicates, drain rate, resident memory); run with
//! `--nocapture` to see the figures:
//!
//! ```sh
//! cargo test -p hookrelay-tests --test faults -- --nocapture
//! ```
//!
//! Two cases are smaller by default and full-size with a variable:
//!
//! | variable | default | full size |
//! | --- | --- | --- |
//! | `HOOKRELAY_FAULT_BACKLOG` | 10,000 deliveries | 100,000, the backlog the README's Guarantees cite |
//! | `HOOKRELAY_FAULT_HANG_TIMEOUT` | 3 s | 30 s, the longest webhook timeout: SIGTERM waits it out |
//!
//! ```sh
//! HOOKRELAY_FAULT_BACKLOG=100000 HOOKRELAY_FAULT_HANG_TIMEOUT=30 \
//!   cargo test -p hookrelay-tests --test faults -- --nocapture
//! ```
//!
//! Waits are conditions with deadlines; the only fixed pauses are the moments at which a
//! fault is injected ("SIGKILL 1.5 s after the first request").

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use hookrelay_testkit::receiver::{Receiver, Reply, refused_url};
use hookrelay_tests::support::{
    create_webhooks, is_running, keys, lines_with, publish_many, queue_depths, redis_pid,
    requests_per_delivery, statuses, vm_rss_kib, wait_all_status, wait_settled,
};
use hookrelay_tests::{Api, Env, RedisServer, send_signal, wait_until, webhook};
use serde_json::{Value, json};

const PROJECT: &str = "faults";
const EVENT: &str = "deployment_request_finished";

/// Sleeps until `at` (a fault's planned moment), or not at all when it has passed.
async fn sleep_until(at: Instant) {
    tokio::time::sleep(at.saturating_duration_since(Instant::now())).await;
}

/// The delivery ids whose status is not `succeeded` (nor `failed`) among `ids`.
fn unfinished(redis: &RedisServer, ids: &[String]) -> Vec<String> {
    ids.iter()
        .cloned()
        .zip(statuses(redis, ids))
        .filter(|(_, s)| s != "succeeded" && s != "failed")
        .map(|(id, _)| id)
        .collect()
}

/// Asserts that the receiver saw each of `ids` exactly once and nothing else.
fn assert_exactly_once(receiver: &Receiver, ids: &[String]) {
    let seen = requests_per_delivery(receiver);
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "delivered more than once: {twice:?}");
    let missing: Vec<_> = ids.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert_eq!(
        receiver.count(),
        ids.len(),
        "requests beyond the published deliveries"
    );
}

/// A worker SIGKILLed with deliveries in flight. Every delivery arrives; only what
/// was in flight is delivered twice; the dead worker's jobs are taken over after the
/// recovery timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_worker_with_deliveries_in_flight() {
    const CONCURRENCY: usize = 20;
    const RECOVERY_MS: u64 = 3000;
    let redis = RedisServer::start();
    let env = Env::new(&redis)
        .set("HOOKRELAY_CONCURRENCY", &CONCURRENCY.to_string())
        .set("HOOKRELAY_RECOVERY_TIMEOUT_MS", &RECOVERY_MS.to_string());
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Slow(Duration::from_secs(1), 200)).await;
    api.create_webhook(PROJECT, webhook("hook", &rx.url("/hook"), EVENT))
        .await;
    let ids = publish_many(&api, PROJECT, EVENT, 100, 8).await;
    assert_eq!(ids.len(), 100);

    let mut first = env.spawn("worker").await;
    let got = rx
        .wait_for_requests(CONCURRENCY, Duration::from_secs(20))
        .await;
    sleep_until(got[0].at + Duration::from_millis(1500)).await;
    let killed_at = Instant::now();
    first.kill();

    // What the dead worker had sent and not settled: in flight when it died.
    let sent: Vec<String> = requests_per_delivery(&rx).into_keys().collect();
    let in_flight: HashSet<String> = unfinished(&redis, &sent).into_iter().collect();
    let held = queue_depths(&redis).holders;
    println!(
        "sigkill: {} requests before the kill, {} in flight, {held} jobs held by the dead worker",
        sent.len(),
        in_flight.len()
    );
    assert!(
        !in_flight.is_empty(),
        "the kill came when nothing was in flight"
    );

    let second = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(60)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;

    let seen = requests_per_delivery(&rx);
    for id in &ids {
        assert!(seen.contains_key(id), "delivery {id} never arrived");
    }
    let duplicates = rx.count() - ids.len();
    let twice: Vec<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    for id in &twice {
        assert!(
            in_flight.contains(*id),
            "{id} was delivered twice but was not in flight at the kill"
        );
        assert_eq!(seen[*id], 2, "{id} delivered more than twice");
    }
    assert!(
        duplicates <= CONCURRENCY,
        "{duplicates} duplicates, more than the concurrency"
    );

    // Recovery: from the kill to the second request of each delivery that was in flight.
    let mut recovered: Vec<Duration> = Vec::new();
    for id in &in_flight {
        let times: Vec<Instant> = rx
            .requests()
            .iter()
            .filter(|r| r.header("webhook-id") == Some(id.as_str()))
            .map(|r| r.at)
            .collect();
        if let Some(again) = times.get(1) {
            recovered.push(again.saturating_duration_since(killed_at));
        }
    }
    recovered.sort();
    let (first_back, last_back) = (recovered.first().copied(), recovered.last().copied());
    println!(
        "sigkill: {duplicates} duplicate(s) (in flight: {}, concurrency {CONCURRENCY}); \
         recovery after the kill: first {first_back:?}, last {last_back:?} \
         (HOOKRELAY_RECOVERY_TIMEOUT_MS={RECOVERY_MS})",
        in_flight.len()
    );
    // Every in-flight delivery was attempted again (its answer never reached the dead worker).
    assert_eq!(
        recovered.len(),
        in_flight.len(),
        "some in-flight deliveries were not re-sent"
    );
    // The lease runs out at most RECOVERY_MS after the kill; the new worker notices at its
    // next claim: within its idle wait (≤ 1 s) or when one of its own 1 s deliveries ends.
    // Generous slack for a loaded machine: this is about "handed over", not about speed.
    let bound = Duration::from_millis(RECOVERY_MS) + Duration::from_secs(6);
    assert!(
        last_back.unwrap_or_default() <= bound,
        "recovery took {last_back:?}"
    );
    assert!(is_running(second.pid()));
    let log = second.logs();
    println!(
        "sigkill: the new worker logged {} hand-back line(s)",
        lines_with(&log, "handed back jobs whose worker stopped renewing")
    );
}

/// Several healthy workers on one Redis deliver each delivery exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_workers_deliver_each_delivery_once() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_CONCURRENCY", "8");
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    create_webhooks(&api, PROJECT, 3, &rx.url("/hook"), EVENT, json!({})).await;
    let workers = [
        env.spawn("worker").await,
        env.spawn("worker").await,
        env.spawn("worker").await,
    ];
    // Published while the workers run, so they race on every wake-up.
    let ids = publish_many(&api, PROJECT, EVENT, 100, 8).await;
    assert_eq!(ids.len(), 300);
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(60)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;
    assert_exactly_once(&rx, &ids);

    // Which worker made each attempt, from the attempt records (a successful attempt is the
    // record's `a<n>` field: `<started>,<duration>,<status>,<worker>,…`).
    let mut c = redis.connection();
    let mut pipe = redis::pipe();
    for id in &ids {
        pipe.cmd("HGET")
            .arg(keys().delivery(&hookrelay_tests::support::delivery_id(id)))
            .arg("a1");
    }
    let firsts: Vec<String> = pipe.query(&mut c).unwrap();
    let mut per_worker: HashMap<String, usize> = HashMap::new();
    for a in firsts {
        let worker = a.split(',').nth(3).unwrap_or("?").to_owned();
        *per_worker.entry(worker).or_default() += 1;
    }
    let mut spread: Vec<usize> = per_worker.values().copied().collect();
    spread.sort_unstable();
    println!("several workers: 300 deliveries, exactly once; per worker {spread:?}");
    for w in &workers {
        assert!(is_running(w.pid()));
    }
}

/// Several workers, busy: deliveries that take longer than the recovery timeout are not
/// mistaken for a dead worker's: still exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_workers_are_not_taken_for_dead_ones() {
    let redis = RedisServer::start();
    let env = Env::new(&redis)
        .set("HOOKRELAY_CONCURRENCY", "10")
        .set("HOOKRELAY_RECOVERY_TIMEOUT_MS", "2000");
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    // Each answer takes 5 s, 2.5 times the recovery timeout.
    let rx = Receiver::start(Reply::Slow(Duration::from_secs(5), 200)).await;
    api.create_webhook(PROJECT, webhook("slow", &rx.url("/slow"), EVENT))
        .await;
    let workers = [env.spawn("worker").await, env.spawn("worker").await];
    let started = Instant::now();
    let ids = publish_many(&api, PROJECT, EVENT, 20, 4).await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(60)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;
    assert_exactly_once(&rx, &ids);
    for w in &workers {
        let log = w.logs();
        assert_eq!(
            lines_with(&log, "held by another worker now"),
            0,
            "a busy worker lost leases:\n{log}"
        );
        assert_eq!(
            lines_with(&log, "stopped renewing its lease"),
            0,
            "jobs were taken from a busy worker:\n{log}"
        );
    }
    println!(
        "busy workers: 20 deliveries of 5 s each with a 2 s recovery timeout, exactly once, in {:?}",
        started.elapsed()
    );
}

/// Redis SIGKILLed and restarted with AOF while clients keep publishing. Every event
/// answered 202 — before, during and after the outage — is delivered; the API and the worker
/// reconnect by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_and_restarted_with_aof() {
    if hookrelay_tests::backing::skip_on_cluster("it kills and restarts Redis") {
        return;
    }
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let mut redis = RedisServer::start_aof();
    let env = Env::new(&redis).set("HOOKRELAY_CONCURRENCY", "16");
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let worker = env.spawn("worker").await;
    let rx = Receiver::start(Reply::Slow(Duration::from_millis(50), 200)).await;
    api.create_webhook(PROJECT, webhook("hook", &rx.url("/hook"), EVENT))
        .await;

    // Two clients publishing all along, each keeping what was accepted.
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..2 {
        let (api, stop) = (api.clone(), stop.clone());
        clients.spawn(async move {
            let path = format!("/projects/{PROJECT}/events");
            let (mut accepted, mut refused, mut n) = (Vec::new(), 0usize, 0usize);
            while !stop.load(Ordering::SeqCst) {
                let ev = hookrelay_tests::event(EVENT, json!({"client": c, "n": n}));
                n += 1;
                let (status, body) = api.call("POST", &path, Some(ev)).await;
                match status {
                    202 => accepted.extend(
                        body["deliveries"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| d.as_str().unwrap().to_owned()),
                    ),
                    503 => refused += 1,
                    _ => panic!("publish answered {status}: {body}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (accepted, refused)
        });
    }

    rx.wait_for_requests(30, Duration::from_secs(20)).await;
    let before = rx.count();
    let killed_at = Instant::now();
    redis.kill();
    let health = reqwest::get(format!("{}/health", api_proc.base))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 503);
    // Down for 1.5 s: long enough for every client to notice and back off.
    sleep_until(killed_at + Duration::from_millis(1500)).await;
    redis.restart();
    let restarted_at = Instant::now();
    // The API reconnects without a restart of hookrelay: /health answers 200 again.
    let client = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let health_url = format!("{}/health", api_proc.base);
    wait_until(
        Duration::from_secs(20),
        "API healthy after the Redis restart",
        || {
            let (client, url) = (client.clone(), health_url.clone());
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success())
            }
        },
    )
    .await;
    let api_back = restarted_at.elapsed();
    // Publishing goes on for a second after the API is back, then stops.
    sleep_until(Instant::now() + Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut accepted, mut refused) = (Vec::new(), 0);
    while let Some(r) = clients.join_next().await {
        let (a, n) = r.unwrap();
        accepted.extend(a);
        refused += n;
    }

    wait_all_status(&redis, &accepted, "succeeded", Duration::from_secs(90)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;
    let seen = requests_per_delivery(&rx);
    for id in &accepted {
        assert!(
            seen.contains_key(id),
            "accepted delivery {id} never arrived"
        );
    }
    let duplicates = seen.values().map(|n| n - 1).sum::<usize>();
    assert!(is_running(api_proc.pid()), "the API process died");
    assert!(is_running(worker.pid()), "the worker process died");
    println!(
        "redis restart: {before} requests delivered before the kill, Redis down for {:?}, \
         API healthy {api_back:?} after the restart; {} accepted (202) deliveries all arrived, \
         {refused} publish(es) answered 503 meanwhile, {duplicates} duplicate(s), \
         {} delivered in all (refused ones included, if Redis ran them); \
         worker logged {} retry line(s)",
        restarted_at - killed_at,
        accepted.len(),
        seen.len(),
        lines_with(&worker.logs(), "retrying")
    );
}

/// Redis down (refusing connections, then frozen) while a client publishes: a 503
/// with a JSON error within seconds, never a hang or a 202; the worker backs off and resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_while_publishing() {
    if hookrelay_tests::backing::skip_on_cluster("it stops Redis") {
        return;
    }
    let mut redis = RedisServer::start_aof();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let worker = env.spawn("worker").await;
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(PROJECT, webhook("hook", &rx.url("/hook"), EVENT))
        .await;
    let events = format!("/projects/{PROJECT}/events");
    let ev = |tag: &str| hookrelay_tests::event(EVENT, json!({ "tag": tag }));
    let first = api.publish(PROJECT, ev("before")).await;
    wait_all_status(&redis, &first, "succeeded", Duration::from_secs(20)).await;

    // Down: connections refused.
    redis.kill();
    let t = Instant::now();
    let (status, body) = api.call("POST", &events, Some(ev("refused"))).await;
    let refused_latency = t.elapsed();
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap_or("");
    assert!(error.contains("redis unavailable"), "unclear error: {body}");
    assert!(
        refused_latency < Duration::from_secs(12),
        "503 took {refused_latency:?}"
    );
    let health = reqwest::get(format!("{}/health", api_proc.base))
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 503);
    let health: Value = health.json().await.unwrap();
    assert!(
        health["error"].as_str().unwrap_or("").contains("redis"),
        "{health}"
    );
    // The shell publisher fails too, with a message, not a hang.
    let env2 = env.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        env2.publish(&[
            "--project",
            PROJECT,
            "--event",
            EVENT,
            "--object-type",
            "deployment",
            "--object-name",
            "d1",
            "--data",
            "{}",
        ])
    })
    .await
    .unwrap();
    assert_ne!(code, 0, "publish succeeded while redis was down: {out}");
    assert!(
        err.contains("redis"),
        "publish error does not name redis: {err}"
    );

    redis.restart();
    let back = wait_published(&api, &events, ev("after-restart")).await;
    wait_all_status(&redis, &back, "succeeded", Duration::from_secs(30)).await;

    // Down: frozen (SIGSTOP), so connections hang instead of being refused.
    let pid = redis_pid(&redis);
    send_signal(pid, "STOP").unwrap();
    let t = Instant::now();
    let (status, body) = api.call("POST", &events, Some(ev("frozen"))).await;
    let frozen_latency = t.elapsed();
    send_signal(pid, "CONT").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap_or("").contains("redis"),
        "unclear error: {body}"
    );
    assert!(
        frozen_latency < Duration::from_secs(12),
        "503 took {frozen_latency:?}"
    );
    // The frozen publish was refused; had Redis run its script anyway, that delivery arrives
    // too, which is allowed (never a 202 for something lost, not the other way round).
    let again = wait_published(&api, &events, ev("after-freeze")).await;
    wait_all_status(&redis, &again, "succeeded", Duration::from_secs(30)).await;

    assert!(is_running(worker.pid()) && is_running(api_proc.pid()));
    let log = worker.logs();
    println!(
        "redis down: 503 after {refused_latency:?} (refused) and {frozen_latency:?} (frozen): {error:?}; \
         `hookrelay publish` exit {code}: {}; worker logged {} retry line(s) and resumed",
        err.trim(),
        lines_with(&log, "retrying")
    );
}

/// Publishes until the API accepts again (after a Redis outage); panics after 20 s.
async fn wait_published(api: &Api, path: &str, event: Value) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = api.call("POST", path, Some(event.clone())).await;
        if status == 202 {
            return body["deliveries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap().to_owned())
                .collect();
        }
        assert_eq!(status, 503, "{body}");
        println!("redis down: publish while reconnecting → 503 {body}");
        assert!(
            Instant::now() < deadline,
            "the API never accepted again: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Values in the ready list that are not runnable jobs go to the dead list with the
/// reason, are logged once each, and the worker delivers the rest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_in_the_queue_goes_to_the_dead_list() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    let created = api
        .create_webhook(PROJECT, webhook("hook", &rx.url("/hook"), EVENT))
        .await;
    // The endpoint's queue in the partition its deliveries go to.
    let endpoint_id = created["id"].as_str().unwrap();
    let partition = keys().partition(keys().endpoint_partition(endpoint_id));
    let endpoint = partition.endpoint(endpoint_id);
    let mut ids = publish_many(&api, PROJECT, EVENT, 5, 1).await;
    let garbage: [(&str, &str); 8] = [
        ("scheduled garbage", "not valid JSON"),
        ("this is not json", "not valid JSON"),
        (r#"{"v":1,"id":"half"#, "not valid JSON"),
        (r#"{"v":99,"id":"x"}"#, "unknown job version 99"),
        ("[1,2,3]", "\"id\""),
        (r#"{"id":42}"#, "\"id\""),
        (r#"{"v":1,"id":"no-fields"}"#, "invalid job"),
        ("", "not valid JSON"),
    ];
    let mut c = redis.connection();
    for (raw, _) in &garbage[1..] {
        let _: () = redis::cmd("LPUSH")
            .arg(&endpoint.ready)
            .arg(*raw)
            .query(&mut c)
            .unwrap();
    }
    // A due "retry" that is garbage too: promoted, then dead-lettered like the rest.
    let _: () = redis::cmd("ZADD")
        .arg(&endpoint.scheduled)
        .arg(0)
        .arg("scheduled garbage")
        .query(&mut c)
        .unwrap();
    ids.extend(publish_many(&api, PROJECT, EVENT, 5, 1).await);

    let worker = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    let depths = wait_settled(&redis, Duration::from_secs(10)).await;
    assert_exactly_once(&rx, &ids);
    assert_eq!(depths.dead, garbage.len(), "dead list: {depths:?}");

    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg(partition.dead())
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    let dead: Vec<Value> = dead
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect();
    for (raw, reason) in &garbage {
        let entry = dead
            .iter()
            .find(|d| d["raw"] == *raw)
            .unwrap_or_else(|| panic!("{raw:?} not in the dead list: {dead:?}"));
        let why = entry["reason"].as_str().unwrap_or("");
        assert!(
            why.contains(reason),
            "{raw:?} dead for {why:?}, wanted {reason:?}"
        );
        assert!(entry["at"].as_i64().is_some(), "no time on {entry}");
    }
    // Logged once each, and the worker is still there.
    let log = worker.logs();
    assert_eq!(
        lines_with(&log, "moved to the dead list"),
        garbage.len(),
        "{log}"
    );
    assert_eq!(lines_with(&log, "unknown job version 99"), 1, "{log}");
    assert!(is_running(worker.pid()));
    // And it keeps delivering.
    let more = api
        .publish(
            PROJECT,
            hookrelay_tests::event(EVENT, json!({"after": "garbage"})),
        )
        .await;
    wait_all_status(&redis, &more, "succeeded", Duration::from_secs(20)).await;
    let reasons: Vec<&str> = dead.iter().filter_map(|d| d["reason"].as_str()).collect();
    println!(
        "garbage: {} values dead-lettered with reasons {reasons:?}; 11 deliveries made",
        garbage.len()
    );
}

/// SIGTERM to a busy worker: it stops taking jobs, finishes what runs, exits 0, and
/// with another worker after it every delivery is made exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_or_hands_back_and_exits_zero() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_CONCURRENCY", "10");
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Slow(Duration::from_secs(2), 200)).await;
    api.create_webhook(PROJECT, webhook("hook", &rx.url("/hook"), EVENT))
        .await;
    let ids = publish_many(&api, PROJECT, EVENT, 50, 4).await;

    let mut first = env.spawn("worker").await;
    let got = rx.wait_for_requests(1, Duration::from_secs(20)).await;
    sleep_until(got[0].at + Duration::from_secs(1)).await;
    let t = Instant::now();
    let code = tokio::task::spawn_blocking(move || {
        let code = first.terminate(Duration::from_secs(40));
        (code, first)
    })
    .await
    .unwrap();
    let (code, first) = code;
    let stop_time = t.elapsed();
    assert_eq!(
        code,
        Some(0),
        "worker exit after SIGTERM; log:\n{}",
        first.logs()
    );
    // Nothing stays held by the stopped worker: finished or handed back.
    let depths = queue_depths(&redis);
    assert_eq!(
        (depths.inflight, depths.holders, depths.leases),
        (0, 0, 0),
        "{depths:?}"
    );
    let done_by_first = ids.len() - unfinished(&redis, &ids).len();
    let sent_by_first = rx.count();
    assert_eq!(
        done_by_first, sent_by_first,
        "every request the first worker sent was settled"
    );

    let second = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(60)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;
    assert_exactly_once(&rx, &ids);
    assert!(is_running(second.pid()));
    println!(
        "sigterm: exit 0 after {stop_time:?}; the stopping worker finished {done_by_first} delivery(ies), \
         the next one the other {}; each of 50 exactly once",
        ids.len() - done_by_first
    );
}

/// SIGTERM, the bound: a SIGTERM while a delivery hangs waits for its timeout, records the
/// attempt, schedules the retry, and exits 0. The timeout: `HOOKRELAY_FAULT_HANG_TIMEOUT`
/// (default 3 s; 30 s is the longest a webhook may have, well within the 35 s shutdown).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_waits_for_a_hanging_delivery_to_time_out() {
    let timeout: u64 = std::env::var("HOOKRELAY_FAULT_HANG_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Hang).await;
    let mut hook = webhook("hang", &rx.url("/hang"), EVENT);
    hook["timeout"] = json!(timeout);
    hook["retry"] = json!(true);
    api.create_webhook(PROJECT, hook).await;
    let ids = api
        .publish(PROJECT, hookrelay_tests::event(EVENT, json!({})))
        .await;
    let mut worker = env.spawn("worker").await;
    rx.wait_for_requests(1, Duration::from_secs(20)).await;
    let t = Instant::now();
    let (code, worker) =
        tokio::task::spawn_blocking(move || (worker.terminate(Duration::from_secs(40)), worker))
            .await
            .unwrap();
    let stop_time = t.elapsed();
    assert_eq!(code, Some(0), "log:\n{}", worker.logs());
    let d = api.delivery(PROJECT, &ids[0]).await;
    assert_eq!(d["status"], "retrying", "{d}");
    assert_eq!(
        d["attempts"][0]["error"],
        format!("timed out after {timeout} s"),
        "{d}"
    );
    let depths = queue_depths(&redis);
    assert_eq!((depths.scheduled, depths.inflight), (1, 0), "{depths:?}");
    println!(
        "sigterm with a hanging delivery (timeout {timeout} s): exit 0 after {stop_time:?}, retry scheduled"
    );
}

/// A backlog built while no worker runs drains completely once one starts.
/// Size: `HOOKRELAY_FAULT_BACKLOG` (default 10,000; the Guarantees in the README cite 100,000).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backlog_drains_completely() {
    const WEBHOOKS: usize = 50;
    let wanted: usize = std::env::var("HOOKRELAY_FAULT_BACKLOG")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let events = wanted.div_ceil(WEBHOOKS);
    let total = events * WEBHOOKS;
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_CONCURRENCY", "64");
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    // Each event fans out to every webhook: the backlog builds fast.
    create_webhooks(&api, PROJECT, WEBHOOKS, &rx.url("/hook"), EVENT, json!({})).await;
    let t = Instant::now();
    let ids = publish_many(&api, PROJECT, EVENT, events, 8).await;
    let build = t.elapsed();
    assert_eq!(ids.len(), total);
    assert_eq!(queue_depths(&redis).ready, total);

    let t = Instant::now();
    let worker = env.spawn("worker").await;
    let limit = Duration::from_secs(60 + (total / 250) as u64);
    rx.wait_for_requests(total, limit).await;
    let drained = t.elapsed();
    wait_settled(&redis, Duration::from_secs(30)).await;
    let off: Vec<String> = statuses(&redis, &ids)
        .into_iter()
        .filter(|s| s != "succeeded")
        .collect();
    assert!(
        off.is_empty(),
        "{} deliveries not succeeded, e.g. {:?}",
        off.len(),
        off.first()
    );
    assert_exactly_once(&rx, &ids);
    assert!(is_running(worker.pid()));
    println!(
        "backlog: {total} deliveries built in {build:?} ({:.0}/s), drained by one worker \
         (concurrency 64) in {drained:?} ({:.0}/s)",
        total as f64 / build.as_secs_f64(),
        total as f64 / drained.as_secs_f64()
    );
}

/// Receivers that never answer, answer 1 GB, reset, trickle, redirect, close or
/// refuse: each a recorded attempt with a clear error (or, for a redirect, the 3xx, not
/// followed); memory stays flat and the worker keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_receivers() {
    const GIB: u64 = 1 << 30;
    const HUGE: usize = 3;
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let worker = env.spawn("worker").await;
    let rx = Receiver::start(Reply::Status(200)).await;
    rx.set_path_reply("/hang", Reply::Hang);
    rx.set_path_reply("/reset", Reply::Reset);
    rx.set_path_reply("/close", Reply::Close);
    rx.set_path_reply("/trickle", Reply::Trickle(Duration::from_millis(250), 1000));
    rx.set_path_reply("/redirect", Reply::Redirect(rx.url("/internal")));
    rx.set_path_reply(
        "/metadata",
        Reply::Redirect("http://169.254.169.254/latest/meta-data/".into()),
    );
    for i in 0..HUGE {
        rx.set_path_reply(&format!("/huge{i}"), Reply::HugeBody(GIB));
    }
    let mut hooks: Vec<(String, String)> =
        ["hang", "reset", "close", "trickle", "redirect", "metadata"]
            .iter()
            .map(|p| (p.to_string(), rx.url(&format!("/{p}"))))
            .collect();
    hooks.push(("refused".into(), refused_url("/refused")));
    hooks.extend((0..HUGE).map(|i| (format!("huge{i}"), rx.url(&format!("/huge{i}")))));
    for (name, url) in &hooks {
        let mut h = webhook(name, url, EVENT);
        h["timeout"] = json!(2);
        api.create_webhook(PROJECT, h).await;
    }
    api.create_webhook(PROJECT, webhook("ok", &rx.url("/ok"), "after"))
        .await;

    // Warm the worker up with one ordinary delivery, then take its memory.
    let warm = api
        .publish(PROJECT, hookrelay_tests::event("after", json!({})))
        .await;
    wait_all_status(&redis, &warm, "succeeded", Duration::from_secs(20)).await;
    let rss_before = vm_rss_kib(worker.pid()).unwrap();

    let ids = api
        .publish(PROJECT, hookrelay_tests::event(EVENT, json!({})))
        .await;
    assert_eq!(ids.len(), hooks.len());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !unfinished(&redis, &ids).is_empty() {
        assert!(
            Instant::now() < deadline,
            "deliveries never finished: {:?}",
            unfinished(&redis, &ids)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rss_after = vm_rss_kib(worker.pid()).unwrap();

    let mut by_hook: HashMap<String, Value> = HashMap::new();
    for id in &ids {
        let d = api.delivery(PROJECT, id).await;
        by_hook.insert(d["webhook"].as_str().unwrap().to_owned(), d);
    }
    let attempt = |name: &str| -> Value {
        let d = &by_hook[name];
        assert_eq!(
            d["attempts"].as_array().map(Vec::len),
            Some(1),
            "{name}: {d}"
        );
        d["attempts"][0].clone()
    };
    let error = |name: &str| attempt(name)["error"].as_str().unwrap_or("").to_owned();
    let status = |name: &str| by_hook[name]["status"].as_str().unwrap_or("").to_owned();

    assert_eq!(error("hang"), "timed out after 2 s");
    assert_eq!(status("hang"), "failed");
    let reset = error("reset");
    assert!(
        reset.contains("reset") || reset.contains("closed"),
        "reset: {reset:?}"
    );
    assert_eq!(status("reset"), "failed");
    assert_eq!(error("close"), "connection closed before an answer came");
    assert_eq!(error("trickle"), "timed out after 2 s");
    assert_eq!(
        attempt("trickle")["status_code"],
        200,
        "the trickle's headers came in time"
    );
    assert!(
        error("refused").contains("refused"),
        "refused: {:?}",
        error("refused")
    );
    // Redirects: a 3xx is a success, and never followed.
    for name in ["redirect", "metadata"] {
        assert_eq!(status(name), "succeeded", "{}", by_hook[name]);
        assert_eq!(attempt(name)["status_code"], 302);
    }
    assert!(
        rx.requests().iter().all(|r| r.path != "/internal"),
        "a redirect was followed"
    );
    // A 1 GB answer: a 200 whose kept body is capped, the rest never read.
    for i in 0..HUGE {
        let name = format!("huge{i}");
        assert_eq!(status(&name), "succeeded", "{}", by_hook[&name]);
        let response = &attempt(&name)["response"];
        let kept = response["body"].as_str().unwrap_or("").len();
        assert!(kept > 0 && kept <= 65536, "{name}: kept {kept} bytes");
        assert_eq!(response["body_truncated"], true);
    }
    let pulled = rx.body_bytes_sent();
    let grown_kib = rss_after.saturating_sub(rss_before);
    println!(
        "misbehaving receivers: worker VmRSS {rss_before} KiB before, {rss_after} KiB after {HUGE} answers \
         of 1 GiB (+{grown_kib} KiB); the receiver produced {} KiB of those bodies in all",
        pulled / 1024
    );
    assert!(
        pulled < HUGE as u64 * 64 * 1024 * 1024,
        "the worker read {pulled} bytes of huge answers"
    );
    assert!(
        grown_kib < 128 * 1024,
        "worker memory grew by {grown_kib} KiB"
    );
    for (name, _) in &hooks {
        let a = attempt(name);
        let kept = a["response"]["body"].as_str().map_or(0, str::len);
        println!(
            "  {name:9} → {:9} status code {:4} error {:45} body kept {kept} B",
            status(name),
            a["status_code"].to_string(),
            a["error"].to_string()
        );
    }

    // The worker keeps working.
    let after = api
        .publish(PROJECT, hookrelay_tests::event("after", json!({})))
        .await;
    wait_all_status(&redis, &after, "succeeded", Duration::from_secs(20)).await;
    assert!(is_running(worker.pid()));
}

/// Idempotency: the same event id twice enqueues once and answers the same delivery ids;
/// the receiver sees one request per delivery, and the same `webhook-id` on every retry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_publish_and_stable_webhook_id() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let steady = Receiver::start(Reply::Status(200)).await;
    let flaky = Receiver::start(Reply::Status(200)).await;
    flaky.queue_replies([Reply::Status(500), Reply::Status(503)]);
    api.create_webhook(PROJECT, webhook("steady", &steady.url("/s"), EVENT))
        .await;
    let mut f = webhook("flaky", &flaky.url("/f"), EVENT);
    f["retry"] = json!(true);
    api.create_webhook(PROJECT, f).await;

    let mut ev = hookrelay_tests::event(EVENT, json!({"k": 1}));
    ev["id"] = json!("evt-1");
    let path = format!("/projects/{PROJECT}/events");
    let (s1, a1) = api.call("POST", &path, Some(ev.clone())).await;
    let (s2, a2) = api.call("POST", &path, Some(ev.clone())).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(a1, a2, "the same id must get the same answer");
    assert_eq!(a1["id"], "evt-1");
    // The shell publisher with the same id, and other data, gets the same answer too.
    let env2 = env.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        env2.publish(&[
            "--project",
            PROJECT,
            "--event",
            EVENT,
            "--object-type",
            "deployment",
            "--object-name",
            "d1",
            "--data",
            r#"{"k":2}"#,
            "--id",
            "evt-1",
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    let a3: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(a3, a1);
    let ids: Vec<String> = a1["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(queue_depths(&redis).ready, 2, "enqueued once");

    let _worker = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;
    assert_eq!(steady.count(), 1);
    assert_eq!(flaky.count(), 3, "two failures, then the success");
    let steady_id = steady.requests()[0]
        .header("webhook-id")
        .unwrap()
        .to_owned();
    let flaky_ids: Vec<String> = flaky
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    assert!(ids.contains(&steady_id));
    assert!(ids.contains(&flaky_ids[0]));
    assert!(
        flaky_ids.iter().all(|i| *i == flaky_ids[0]),
        "webhook-id changed across retries: {flaky_ids:?}"
    );
    assert_ne!(steady_id, flaky_ids[0]);
    let d = api.delivery(PROJECT, &flaky_ids[0]).await;
    assert_eq!(d["attempts"].as_array().map(Vec::len), Some(3), "{d}");
    println!(
        "idempotency: 3 publishes of evt-1 → 1 event, 2 deliveries; flaky receiver saw webhook-id {} three times",
        flaky_ids[0]
    );
}

/// A worker frozen (SIGSTOP) with deliveries in flight stops renewing its leases: another
/// worker takes its deliveries over after the recovery timeout. Thawed (SIGCONT), the frozen
/// worker finds its leases lost, records its late attempts without settling anything twice,
/// and carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frozen_worker_is_taken_over_and_recovers() {
    let redis = RedisServer::start();
    let env = Env::new(&redis)
        .set("HOOKRELAY_CONCURRENCY", "10")
        .set("HOOKRELAY_RECOVERY_TIMEOUT_MS", "2000");
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Slow(Duration::from_millis(500), 200)).await;
    api.create_webhook(PROJECT, webhook("hook", &rx.url("/hook"), EVENT))
        .await;
    let ids = publish_many(&api, PROJECT, EVENT, 10, 4).await;

    let frozen = env.spawn("worker").await;
    rx.wait_for_requests(10, Duration::from_secs(20)).await;
    // Frozen while its ten requests wait for their answers.
    send_signal(frozen.pid(), "STOP").unwrap();
    let stopped_at = Instant::now();
    let other = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    let taken_over = stopped_at.elapsed();
    send_signal(frozen.pid(), "CONT").unwrap();

    // Thawed, it keeps working alongside the other one.
    let more = publish_many(&api, PROJECT, EVENT, 20, 4).await;
    wait_all_status(&redis, &more, "succeeded", Duration::from_secs(30)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;
    let seen = requests_per_delivery(&rx);
    for id in ids.iter().chain(&more) {
        assert!(seen.contains_key(id), "{id} never arrived");
    }
    let twice = seen.values().filter(|n| **n > 1).count();
    assert!(
        seen.values().all(|n| *n <= 2),
        "delivered more than twice: {seen:?}"
    );
    assert!(
        twice <= 10,
        "{twice} duplicates, more than the frozen worker held"
    );
    // The ten taken over were settled once: by whoever held them at the time.
    for id in &ids {
        let d = api.delivery(PROJECT, id).await;
        assert_eq!(d["status"], "succeeded");
    }
    assert!(is_running(frozen.pid()) && is_running(other.pid()));
    let log = frozen.logs();
    println!(
        "frozen worker: its 10 deliveries were made by another worker {taken_over:?} after SIGSTOP \
         (recovery timeout 2 s); {twice} duplicate(s); after SIGCONT it logged {} lost-lease line(s) and went on",
        lines_with(&log, "lease")
    );
}

/// SIGTERM while Redis is down: the worker cannot record its outcomes, so it stops after
/// `HOOKRELAY_SHUTDOWN_TIMEOUT_MS` instead of hanging; what it held is delivered by the next
/// worker once Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_redis_is_down() {
    if hookrelay_tests::backing::skip_on_cluster("it stops Redis") {
        return;
    }
    let mut redis = RedisServer::start_aof();
    let env = Env::new(&redis)
        .set("HOOKRELAY_CONCURRENCY", "4")
        .set("HOOKRELAY_SHUTDOWN_TIMEOUT_MS", "3000");
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Slow(Duration::from_secs(1), 200)).await;
    api.create_webhook(PROJECT, webhook("hook", &rx.url("/hook"), EVENT))
        .await;
    let ids = publish_many(&api, PROJECT, EVENT, 8, 4).await;
    let worker = env.spawn("worker").await;
    rx.wait_for_requests(4, Duration::from_secs(20)).await;
    redis.kill();
    let t = Instant::now();
    let (code, worker) = tokio::task::spawn_blocking(move || {
        let mut worker = worker;
        (worker.terminate(Duration::from_secs(40)), worker)
    })
    .await
    .unwrap();
    let stop_time = t.elapsed();
    assert!(
        code.is_some(),
        "the worker did not stop; log:\n{}",
        worker.logs()
    );
    // Within the shutdown timeout and the time to give up on Redis at the end.
    assert!(
        stop_time < Duration::from_secs(20),
        "stopping took {stop_time:?}"
    );

    redis.restart();
    let _next = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    wait_settled(&redis, Duration::from_secs(10)).await;
    let seen = requests_per_delivery(&rx);
    for id in &ids {
        assert!(seen.contains_key(id), "{id} never arrived");
    }
    assert!(seen.values().all(|n| *n <= 2), "{seen:?}");
    println!(
        "sigterm with redis down: exit {code:?} after {stop_time:?} (shutdown timeout 3 s); \
         all 8 delivered after the restart, {} duplicate(s)",
        rx.count() - ids.len()
    );
}

/// Many concurrent publishes of one event id: one set of deliveries, one answer for all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_of_one_event_id_enqueue_once() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    create_webhooks(
        &api,
        PROJECT,
        3,
        "https://example.com/hook",
        EVENT,
        json!({}),
    )
    .await;
    let mut ev = hookrelay_tests::event(EVENT, json!({}));
    ev["id"] = json!("evt-race");
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (api, ev) = (api.clone(), ev.clone());
        tasks.spawn(async move {
            api.call("POST", &format!("/projects/{PROJECT}/events"), Some(ev))
                .await
        });
    }
    let mut answers = Vec::new();
    while let Some(a) = tasks.join_next().await {
        let (status, body) = a.unwrap();
        assert_eq!(status, 202, "{body}");
        answers.push(body);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    assert_eq!(answers[0]["deliveries"].as_array().map(Vec::len), Some(3));
    assert_eq!(queue_depths(&redis).ready, 3, "enqueued more than once");
    let mut c = redis.connection();
    // One index on one Redis, one per partition on a cluster.
    let indexed: usize = (0..keys().partitions())
        .map(|p| {
            redis::cmd("ZCARD")
                .arg(keys().deliveries(PROJECT, p))
                .query::<usize>(&mut c)
                .unwrap()
        })
        .sum();
    assert_eq!(indexed, 3);
    println!("idempotency race: 20 concurrent publishes of evt-race → 3 deliveries, one answer");
}
