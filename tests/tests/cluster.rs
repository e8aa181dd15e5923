//! The queue on a Redis Cluster: a local cluster of `redis-server` processes (three masters,
//! and three replicas for the failover test), the release binary against it with
//! `HOOKRELAY_REDIS_CLUSTER=true` and 16 partitions, and real receivers. The same flows as on
//! one Redis: publish → deliver → status → retry → recover → isolation, idempotent publish,
//! the deliveries list, then a master killed under load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hookrelay_testkit::RedisCluster;
use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_tests::support::publish_many;
use hookrelay_tests::{Api, Env, event, webhook};
use serde_json::json;

const P: &str = "clustered";

fn cluster_env(cluster: &RedisCluster) -> Env {
    Env::for_url(&cluster.url())
        .set("HOOKRELAY_REDIS_CLUSTER", "true")
        .set("HOOKRELAY_PARTITIONS", "16")
}

/// Waits until every delivery in `ids` has `status`, reading them through the API.
async fn wait_all(api: &Api, ids: &[String], status: &str, timeout: Duration) {
    let left = wait_for(api, ids, status, timeout).await;
    assert!(
        left.is_empty(),
        "{} of {} deliveries never reached {status}, e.g. {}",
        left.len(),
        ids.len(),
        left[0]
    );
}

/// Waits until every delivery in `ids` has `status`, or `timeout`; returns those that do
/// not.
async fn wait_for(api: &Api, ids: &[String], status: &str, timeout: Duration) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    let mut left: Vec<String> = ids.to_vec();
    while !left.is_empty() {
        let mut still = Vec::new();
        for id in &left {
            let (code, v) = api
                .call("GET", &format!("/projects/{P}/deliveries/{id}"), None)
                .await;
            if code != 200 || v["status"] != status {
                still.push(id.clone());
            }
        }
        left = still;
        if left.is_empty() || Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    left
}

/// How many keys of the queue's partitions each master holds.
fn keys_per_master(cluster: &RedisCluster) -> Vec<(u16, usize)> {
    cluster
        .master_ports()
        .into_iter()
        .map(|port| {
            let mut c = redis::Client::open(format!("redis://127.0.0.1:{port}"))
                .unwrap()
                .get_connection()
                .unwrap();
            let keys: Vec<String> = redis::cmd("KEYS").arg("hr:{q*").query(&mut c).unwrap();
            (port, keys.len())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_events_are_delivered_retried_recovered_and_isolated() {
    let cluster = RedisCluster::start();
    let env = cluster_env(&cluster);
    let api_process = env.spawn("api").await;
    let _w1 = env.spawn("worker").await;
    let _w2 = env.spawn("worker").await;
    let api = Api::new(&api_process.base);

    // Twelve webhooks on one event: each event fans out over several partitions.
    let ok = Receiver::start(Reply::Status(200)).await;
    for i in 0..12 {
        api.create_webhook(
            P,
            webhook(&format!("ok{i}"), &ok.url(&format!("/ok{i}")), "e"),
        )
        .await;
    }
    let ids = publish_many(&api, P, "e", 50, 8).await;
    assert_eq!(ids.len(), 600);
    wait_all(&api, &ids, "succeeded", Duration::from_secs(60)).await;
    assert_eq!(ok.count(), 600, "one request per delivery");
    // The ids name their partition, and the deliveries are spread over several.
    let mut partitions: HashMap<&str, usize> = HashMap::new();
    for id in &ids {
        let (p, _) = id
            .split_once('.')
            .expect("a delivery id names its partition");
        *partitions.entry(p).or_default() += 1;
    }
    assert!(partitions.len() >= 4, "partitions used: {partitions:?}");
    let spread = keys_per_master(&cluster);
    println!("queue keys per master: {spread:?}");
    assert!(
        spread.iter().filter(|(_, n)| *n > 0).count() >= 2,
        "the queue is spread over the masters: {spread:?}"
    );

    // The deliveries list merges the partitions' indexes, newest first.
    let (code, list) = api
        .call("GET", &format!("/projects/{P}/deliveries?limit=30"), None)
        .await;
    assert_eq!(code, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 30);
    let times: Vec<&str> = list
        .iter()
        .map(|d| d["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );

    // Idempotent publish: the same event id answers the same deliveries, once.
    let mut with_id = event("e", json!({"n": "again"}));
    with_id["id"] = json!("evt-cluster-1");
    let (c1, first) = api
        .call(
            "POST",
            &format!("/projects/{P}/events"),
            Some(with_id.clone()),
        )
        .await;
    let (c2, second) = api
        .call("POST", &format!("/projects/{P}/events"), Some(with_id))
        .await;
    assert_eq!(c1, 202, "{first}");
    assert!(c2 == 200 || c2 == 202, "{c2} {second}");
    assert_eq!(first["deliveries"], second["deliveries"]);
    let again: Vec<String> = first["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    wait_all(&api, &again, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(ok.count(), 612, "a repeated event id delivers nothing more");

    // Retries: two 500s, then success.
    let flaky = Receiver::start(Reply::Status(200)).await;
    flaky.queue_replies([Reply::Status(500), Reply::Status(500)]);
    let mut hook = webhook("flaky", &flaky.url("/flaky"), "f");
    hook["retry"] = json!(true);
    api.create_webhook(P, hook).await;
    let id = api.publish(P, event("f", json!({}))).await.remove(0);
    let done = api
        .wait_status(P, &id, "succeeded", Duration::from_secs(30))
        .await;
    assert_eq!(done["attempts"].as_array().unwrap().len(), 3, "{done}");

    // Failed for good, then recovered once the receiver is fixed.
    let bad = Receiver::start(Reply::Status(400)).await;
    api.create_webhook(P, webhook("bad", &bad.url("/bad"), "b"))
        .await;
    let since = hookrelay_core::time::Timestamp::now().to_string();
    let failed = publish_many(&api, P, "b", 20, 4).await;
    wait_all(&api, &failed, "failed", Duration::from_secs(30)).await;
    bad.set_reply(Reply::Status(200));
    let (code, started) = api
        .call(
            "POST",
            &format!("/projects/{P}/webhooks/bad/recover"),
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(code, 202, "{started}");
    assert_eq!(started["total"], 20, "{started}");
    wait_all(&api, &failed, "succeeded", Duration::from_secs(30)).await;

    // Isolation: a receiver that takes 4 s per answer has a backlog; other webhooks'
    // deliveries are not held behind it.
    let slow = Receiver::start(Reply::Slow(Duration::from_secs(4), 200)).await;
    api.create_webhook(P, webhook("slow", &slow.url("/slow"), "s"))
        .await;
    let slow_ids = publish_many(&api, P, "s", 40, 8).await;
    let started = Instant::now();
    let fast = publish_many(&api, P, "e", 5, 4).await;
    wait_all(&api, &fast, "succeeded", Duration::from_secs(10)).await;
    let took = started.elapsed();
    let mut slow_pending = 0;
    for id in &slow_ids {
        if api.delivery(P, id).await["status"] != "succeeded" {
            slow_pending += 1;
        }
    }
    println!(
        "60 deliveries beside a slow receiver's backlog: {took:?}; {slow_pending} of its 40 still waiting"
    );
    assert!(slow_pending > 0, "the slow receiver still had a backlog");
    assert!(
        took < Duration::from_secs(4),
        "held behind the slow receiver: {took:?}"
    );

    // Queue depth and activity read every partition.
    let (code, stats) = api
        .call("GET", &format!("/projects/{P}/stats?minutes=5"), None)
        .await;
    assert_eq!(code, 200, "{stats}");
    let succeeded: u64 = stats["minutes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["succeeded"].as_u64().unwrap_or(0))
        .sum();
    assert!(succeeded >= 600 + 12 + 1 + 20 + 60, "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_master_fails_over_and_deliveries_continue() {
    let mut cluster = RedisCluster::start_with_replicas();
    let env = cluster_env(&cluster);
    let api_process = env.spawn("api").await;
    let _worker = env.spawn("worker").await;
    let api = Api::new(&api_process.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    for i in 0..6 {
        api.create_webhook(
            P,
            webhook(&format!("w{i}"), &rx.url(&format!("/w{i}")), "e"),
        )
        .await;
    }

    // Publish under load, one event at a time, each retried until accepted (a publisher
    // that gets a 5xx tries again), recording when each was accepted.
    let killed = Arc::new(AtomicBool::new(false));
    let publisher = {
        let (api, killed) = (api.clone(), killed.clone());
        tokio::spawn(async move {
            let mut accepted: Vec<(Instant, Vec<String>)> = Vec::new();
            let mut refused = 0;
            for n in 0..300 {
                if n == 250 {
                    assert!(
                        killed.load(Ordering::SeqCst),
                        "the master was killed by now"
                    );
                }
                loop {
                    let (code, v) = api
                        .call(
                            "POST",
                            &format!("/projects/{P}/events"),
                            Some(event("e", json!({"n": n}))),
                        )
                        .await;
                    if code == 202 {
                        let ids = v["deliveries"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|d| d.as_str().unwrap().to_owned())
                            .collect();
                        accepted.push((Instant::now(), ids));
                        break;
                    }
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (accepted, refused)
        })
    };
    // Kill a master once deliveries are flowing.
    let deadline = Instant::now() + Duration::from_secs(30);
    while rx.count() < 200 {
        assert!(Instant::now() < deadline, "deliveries did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let victim = cluster.master_ports()[0];
    cluster.kill(victim);
    let killed_at = Instant::now();
    killed.store(true, Ordering::SeqCst);
    cluster.wait_for_failover(Duration::from_secs(30));
    let failed_over = killed_at.elapsed();
    let (accepted, refused) = publisher.await.unwrap();
    let all: Vec<String> = accepted.iter().flat_map(|(_, ids)| ids.clone()).collect();
    assert_eq!(all.len(), 300 * 6);
    println!(
        "master {victim} killed; failover took {failed_over:?}; {refused} publish calls refused meanwhile"
    );

    // Every accepted delivery is delivered (some maybe twice: at least once), except what
    // asynchronous replication may lose: writes the master acknowledged in the moment
    // before it died that had not reached its replica yet.
    let left = wait_for(&api, &all, "succeeded", Duration::from_secs(120)).await;
    let window = killed_at
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(killed_at);
    let at_risk: Vec<&String> = accepted
        .iter()
        .filter(|(at, _)| *at >= window && *at <= killed_at)
        .flat_map(|(_, ids)| ids)
        .collect();
    let outside: Vec<&String> = left.iter().filter(|id| !at_risk.contains(id)).collect();
    println!(
        "{} requests for {} deliveries; {} not delivered, all accepted in the second before the kill",
        rx.count(),
        all.len(),
        left.len()
    );
    assert!(
        outside.is_empty(),
        "lost outside the replication window: {outside:?}"
    );
    assert!(rx.count() >= all.len() - left.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_raised_later_still_serve_what_was_queued_before() {
    if hookrelay_tests::backing::skip_on_cluster("it starts from the layout of one Redis") {
        return;
    }
    let redis = hookrelay_tests::RedisServer::start();
    let rx = Receiver::start(Reply::Status(200)).await;
    // One partition (the layout of earlier versions), no worker yet: deliveries wait.
    let one = Env::new(&redis).spawn("api").await;
    let api = Api::new(&one.base);
    for i in 0..4 {
        api.create_webhook(
            P,
            webhook(&format!("w{i}"), &rx.url(&format!("/w{i}")), "e"),
        )
        .await;
    }
    let before = publish_many(&api, P, "e", 10, 4).await;
    assert!(before.iter().all(|id| !id.contains('.')), "{before:?}");
    drop(one);
    // Four partitions on the same Redis: new deliveries spread, the old ones are served.
    let four = Env::new(&redis).set("HOOKRELAY_PARTITIONS", "4");
    let api_process = four.spawn("api").await;
    let _worker = four.spawn("worker").await;
    let api = Api::new(&api_process.base);
    let after = publish_many(&api, P, "e", 10, 4).await;
    assert!(after.iter().all(|id| id.contains('.')), "{after:?}");
    wait_all(&api, &before, "succeeded", Duration::from_secs(30)).await;
    wait_all(&api, &after, "succeeded", Duration::from_secs(30)).await;
    assert_eq!(rx.count(), 80);
    let (code, list) = api
        .call("GET", &format!("/projects/{P}/deliveries?limit=80"), None)
        .await;
    assert_eq!(code, 200, "{list}");
    assert_eq!(list.as_array().unwrap().len(), 80, "both layouts listed");
}
