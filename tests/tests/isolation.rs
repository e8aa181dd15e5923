//! Endpoint isolation through the release binary: one bad receiver never delays another,
//! per-webhook concurrency caps across workers, the receiver's own signals (`Retry-After`,
//! `410 Gone`), the circuit breaker, auto-disable with its operational event, ordered
//! webhooks, deleting a webhook with a backlog, and the upgrade from the old queue layout.
//! Every assertion waits for an event with a deadline or follows from causality (a slot
//! frees only after an answer), never from how long something took.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_tests::support::{keys, wait_all_status};
use hookrelay_tests::{Api, Env, Process, RedisServer, event, webhook};
use serde_json::{Value, json};

const P: &str = "iso";
const EVENT: &str = "deployment_request_finished";

async fn serve(env: &Env) -> (Process, Api) {
    let p = env.spawn("serve").await;
    let api = Api::new(&p.base);
    (p, api)
}

/// Reads a webhook (with its health).
async fn get_webhook(api: &Api, name: &str) -> Value {
    let (status, v) = api
        .call("GET", &format!("/projects/{P}/webhooks/{name}"), None)
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// Waits until `check` holds for the webhook as GET shows it; returns it.
async fn wait_webhook(api: &Api, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let w = get_webhook(api, name).await;
        if check(&w) {
            return w;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook {name} never {what}: {w}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A webhook on its own object, so events reach exactly one webhook.
fn hook(name: &str, url: &str) -> Value {
    let mut w = webhook(name, url, EVENT);
    w["object_name"] = json!(name);
    w
}

/// An event for the webhook made by [`hook`] with this name.
fn event_for(name: &str, n: usize) -> Value {
    let mut e = event(EVENT, json!({"n": n}));
    e["object_name"] = json!(name);
    e
}

async fn publish_to(api: &Api, name: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..n {
        ids.extend(api.publish(P, event_for(name, i)).await);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_holds_only_its_own_slots() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_ENDPOINT_CONCURRENCY", "4");
    let (p, api) = serve(&env).await;
    let hang = Receiver::start(Reply::Hang).await;
    let ok = Receiver::start(Reply::Status(200)).await;
    let mut bad = hook("hanging", &hang.url("/"));
    bad["timeout"] = json!(30);
    api.create_webhook(P, bad).await;
    api.create_webhook(P, hook("healthy", &ok.url("/"))).await;
    // More hanging deliveries than the worker has slots (32).
    publish_to(&api, "hanging", 60).await;
    hang.wait_for_requests(4, Duration::from_secs(10)).await;
    let good = publish_to(&api, "healthy", 20).await;
    // Every healthy delivery arrives while the hanging ones are still waiting for their
    // 30 s timeout: nothing of the healthy webhook waited behind them.
    wait_all_status(&redis, &good, "succeeded", Duration::from_secs(20)).await;
    let w = get_webhook(&api, "hanging").await;
    assert_eq!(w["health"]["in_flight"], 4, "{w}");
    assert_eq!(w["health"]["backlog"], 56, "{w}");
    assert_eq!(w["health"]["state"], "throttled", "{w}");
    assert_eq!(hang.count(), 4, "the cap was passed");
    let h = get_webhook(&api, "healthy").await;
    assert_eq!(h["health"]["state"], "healthy", "{h}");
    assert!(h["health"]["last_success_at"].is_string(), "{h}");
    // The list filter finds it by state.
    let (_, listed) = api
        .call(
            "GET",
            &format!("/projects/{P}/webhooks?health=throttled"),
            None,
        )
        .await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["hanging"]);
    // /metrics counts webhooks by state.
    let metrics = reqwest::get(format!("{}/metrics", p.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hookrelay_endpoints{state=\"throttled\"} 1\n")
            && metrics.contains("hookrelay_endpoints{state=\"healthy\"} 1\n"),
        "{metrics}"
    );
    let (status, err) = api
        .call("GET", &format!("/projects/{P}/webhooks?health=sick"), None)
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["field"], "health", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_on_one_webhook_does_not_queue_another_behind_it() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let a = Receiver::start(Reply::Status(200)).await;
    let b = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(P, hook("a", &a.url("/"))).await;
    api.create_webhook(P, hook("b", &b.url("/"))).await;
    // A backlog of 3,000 for A is waiting before any worker runs; then one event for B.
    publish_many_to(&api, "a", 3_000).await;
    let b_id = publish_to(&api, "b", 1).await;
    let _worker = env.spawn("worker").await;
    wait_all_status(&redis, &b_id, "succeeded", Duration::from_secs(30)).await;
    // B's one delivery took its turn after at most a round of A's: A was far from done.
    let a_done = a.count();
    assert!(
        a_done < 3_000,
        "B waited for A's whole backlog ({a_done} of A's first)"
    );
}

/// Publishes `n` events for webhook `name`, 8 at a time.
async fn publish_many_to(api: &Api, name: &str, n: usize) {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..8 {
        let (api, name) = (api.clone(), name.to_owned());
        tasks.spawn(async move {
            for i in (t..n).step_by(8) {
                api.publish(P, event_for(&name, i)).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_concurrency_holds_across_two_workers() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let slow = Duration::from_millis(600);
    let rx = Receiver::start(Reply::Slow(slow, 200)).await;
    let mut w = hook("capped", &rx.url("/"));
    w["max_concurrency"] = json!(3);
    let created = api.create_webhook(P, w).await;
    assert_eq!(created["max_concurrency"], 3, "{created}");
    let ids = publish_to(&api, "capped", 12).await;
    let _w1 = env.spawn("worker").await;
    let _w2 = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    let mut at: Vec<_> = rx.requests().iter().map(|r| r.at).collect();
    at.sort();
    assert_eq!(at.len(), 12);
    // A fourth request can only start once one of three earlier ones was answered, and each
    // answer comes `slow` after its request arrived.
    for i in 3..at.len() {
        let gap = at[i] - at[i - 3];
        assert!(
            gap >= slow - Duration::from_millis(20),
            "requests {} and {i} overlapped with two more between them ({gap:?} apart)",
            i - 3
        );
    }
    // Out-of-range values are refused, naming the field.
    for bad in [json!(0), json!(1001)] {
        let mut w = hook("too-many", &rx.url("/"));
        w["max_concurrency"] = bad;
        let (status, err) = api
            .call("POST", &format!("/projects/{P}/webhooks"), Some(w))
            .await;
        assert_eq!(status, 400, "{err}");
        assert_eq!(err["field"], "max_concurrency", "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_spaces_deliveries_for_all_workers() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    let mut w = hook("limited", &rx.url("/"));
    w["rate_limit"] = json!(5);
    api.create_webhook(P, w).await;
    let ids = publish_to(&api, "limited", 10).await;
    let _w1 = env.spawn("worker").await;
    let _w2 = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    let mut at: Vec<_> = rx.requests().iter().map(|r| r.at).collect();
    at.sort();
    // At 5 per second, each delivery is given its own 200 ms slot.
    let span = at[at.len() - 1] - at[0];
    assert!(
        span >= Duration::from_millis(9 * 200 - 50),
        "10 deliveries at 5/s took only {span:?}"
    );
    let (status, err) = api
        .call(
            "PATCH",
            &format!("/projects/{P}/webhooks/limited"),
            Some(json!({"rate_limit": -1})),
        )
        .await;
    assert_eq!(status, 400, "{err}");
    assert_eq!(err["field"], "rate_limit", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_pauses_the_whole_endpoint_without_using_an_attempt() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let (_p, api) = serve(&env).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    rx.queue_replies([Reply::RetryAfter(429, 2)]);
    // No retries: the pause is a deferral, not a failed attempt. One delivery at a time, so
    // that the order in which requests arrive is the queue's order (deliveries in flight
    // together run concurrently and may arrive in any order).
    let mut w = hook("throttling", &rx.url("/"));
    w["retry"] = json!(false);
    w["max_concurrency"] = json!(1);
    api.create_webhook(P, w).await;
    let first = publish_to(&api, "throttling", 1).await;
    wait_webhook(&api, "throttling", "paused", |w| {
        w["health"]["state"] == "paused"
    })
    .await;
    let rest = publish_to(&api, "throttling", 3).await;
    let w = get_webhook(&api, "throttling").await;
    assert!(w["health"]["paused_until"].is_string(), "{w}");
    // Nothing more is sent during the pause: the three later ones wait too.
    assert_eq!(rx.count(), 1);
    wait_all_status(&redis, &first, "succeeded", Duration::from_secs(20)).await;
    wait_all_status(&redis, &rest, "succeeded", Duration::from_secs(20)).await;
    let d = api.delivery(P, &first[0]).await;
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{d}");
    assert_eq!(attempts[0]["status_code"], 429, "{d}");
    assert_eq!(attempts[1]["status_code"], 200, "{d}");
    // The paused delivery went first when the pause ended.
    let order: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap_or("").to_owned())
        .collect();
    assert_eq!(order[0], first[0]);
    assert_eq!(order[1], first[0]);
}

/// A second webhook in the project that subscribes to the operational event.
async fn subscribe_to_disabled(api: &Api, rx: &Receiver) {
    let mut w = webhook("ops", &rx.url("/ops"), "hookrelay.webhook.disabled");
    w["object_type"] = json!("*");
    w["object_name"] = json!("*");
    api.create_webhook(P, w).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_webhook_keeps_its_deliveries_and_announces_it() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let (_p, api) = serve(&env).await;
    let rx = Receiver::start(Reply::Status(410)).await;
    let ops = Receiver::start(Reply::Status(200)).await;
    subscribe_to_disabled(&api, &ops).await;
    // One at a time, so that exactly one request meets the 410.
    let mut w = hook("gone", &rx.url("/"));
    w["max_concurrency"] = json!(1);
    api.create_webhook(P, w).await;
    let ids = publish_to(&api, "gone", 3).await;
    let w = wait_webhook(&api, "gone", "disabled", |w| {
        w["health"]["state"] == "disabled" && w["enabled"] == false
    })
    .await;
    assert!(
        w["health"]["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410"),
        "{w}"
    );
    let notice = ops.wait_for_requests(1, Duration::from_secs(20)).await;
    let body = notice[0].json();
    assert_eq!(body["event"], "hookrelay.webhook.disabled", "{body}");
    assert_eq!(body["data"]["webhook"], "gone", "{body}");
    assert!(body["data"]["reason"].as_str().unwrap().contains("410"));
    assert!(body["data"]["since"].is_string(), "{body}");
    // The deliveries wait, none failed, and only one request was made.
    for id in &ids {
        let d = api.delivery(P, id).await;
        assert_ne!(d["status"], "failed", "{d}");
    }
    assert_eq!(rx.count(), 1);
    assert_eq!(w["health"]["backlog"], 3, "{w}");
    // Re-enabled, with the receiver back: every delivery arrives.
    rx.set_reply(Reply::Status(200));
    let (status, v) = api
        .call(
            "PATCH",
            &format!("/projects/{P}/webhooks/gone"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(20)).await;
    let w = get_webhook(&api, "gone").await;
    assert_eq!(w["health"]["state"], "healthy", "{w}");
    assert_eq!(ops.count(), 1, "announced once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_opens_waits_then_one_probe_closes_it() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_RETRY_MAX_ATTEMPTS", "20");
    let (_p, api) = serve(&env).await;
    let rx = Receiver::start(Reply::Status(500)).await;
    let mut w = hook("flaky", &rx.url("/"));
    w["retry"] = json!(true);
    w["max_concurrency"] = json!(1);
    api.create_webhook(P, w).await;
    let ids = publish_to(&api, "flaky", 3).await;
    let w = wait_webhook(&api, "flaky", "opened its circuit", |w| {
        w["health"]["state"] == "circuit_open"
    })
    .await;
    assert!(
        w["health"]["consecutive_failures"].as_u64().unwrap() >= 5,
        "{w}"
    );
    // While open, nothing is sent.
    let sent = rx.count();
    assert_eq!(sent, 5, "failures before the circuit opened");
    rx.set_reply(Reply::Status(200));
    // After the cooldown one probe succeeds and the circuit closes; all arrive.
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    let w = get_webhook(&api, "flaky").await;
    assert_eq!(w["health"]["state"], "healthy", "{w}");
    assert_eq!(w["health"]["consecutive_failures"], 0, "{w}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_failing_too_long_is_disabled_with_notice() {
    let redis = RedisServer::start();
    let env = Env::new(&redis)
        .set("HOOKRELAY_DISABLE_AFTER_SECS", "2")
        .set("HOOKRELAY_RETRY_MAX_ATTEMPTS", "50");
    let (_p, api) = serve(&env).await;
    let rx = Receiver::start(Reply::Status(400)).await;
    let ops = Receiver::start(Reply::Status(200)).await;
    subscribe_to_disabled(&api, &ops).await;
    let mut w = hook("failing", &rx.url("/"));
    w["retry"] = json!(true);
    api.create_webhook(P, w).await;
    let ids = publish_to(&api, "failing", 1).await;
    let w = wait_webhook(&api, "failing", "disabled", |w| {
        w["health"]["state"] == "disabled" && w["enabled"] == false
    })
    .await;
    let reason = w["health"]["disabled_reason"].as_str().unwrap();
    assert!(reason.contains("no successful delivery for 2 s"), "{w}");
    let notice = ops.wait_for_requests(1, Duration::from_secs(20)).await;
    let body = notice[0].json();
    assert_eq!(body["data"]["webhook"], "failing", "{body}");
    assert_eq!(body["object_name"], "failing", "{body}");
    // Disabled is not failed: the delivery waits for the webhook to come back.
    let d = api.delivery(P, &ids[0]).await;
    assert_eq!(d["status"], "retrying", "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ordered_webhook_delivers_in_publish_order_through_retries() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_RETRY_MAX_ATTEMPTS", "5");
    let (_p, api) = serve(&env).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    // The first two requests fail: the head is retried while the rest wait behind it.
    rx.queue_replies([Reply::Status(500), Reply::Status(500)]);
    let mut w = hook("ordered", &rx.url("/"));
    w["ordered"] = json!(true);
    w["retry"] = json!(true);
    api.create_webhook(P, w).await;
    let ids = publish_to(&api, "ordered", 8).await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    let seen: Vec<String> = rx
        .requests()
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_owned())
        .collect();
    let mut expected = vec![ids[0].clone(), ids[0].clone()];
    expected.extend(ids.iter().cloned());
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_webhook_ends_its_backlog_as_failed() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(P, hook("doomed", &rx.url("/"))).await;
    let ids = publish_to(&api, "doomed", 5).await;
    let (status, _) = api
        .call("DELETE", &format!("/projects/{P}/webhooks/doomed"), None)
        .await;
    assert_eq!(status, 204);
    let _worker = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "failed", Duration::from_secs(20)).await;
    let d = api.delivery(P, &ids[0]).await;
    assert_eq!(
        d["attempts"][0]["error"], "webhook deleted; not sent",
        "{d}"
    );
    assert_eq!(rx.count(), 0, "nothing was sent");
    // Nobody can bring them back: redelivery is refused.
    let (status, err) = api
        .call(
            "POST",
            &format!("/projects/{P}/deliveries/{}/redeliver", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, 409, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_with_slots_held_gives_them_back() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Hang).await;
    let mut w = hook("held", &rx.url("/"));
    w["max_concurrency"] = json!(2);
    w["timeout"] = json!(30);
    api.create_webhook(P, w).await;
    let ids = publish_to(&api, "held", 4).await;
    let mut first = env.spawn("worker").await;
    rx.wait_for_requests(2, Duration::from_secs(10)).await;
    first.kill();
    // The receiver now answers; a new worker gets the slots back once the dead worker's
    // leases expire, and everything arrives.
    rx.set_reply(Reply::Status(200));
    let _second = env.spawn("worker").await;
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_in_the_old_queue_layout_are_delivered_after_the_upgrade() {
    if hookrelay_tests::backing::skip_on_cluster("the old layout only ever existed on one Redis") {
        return;
    }
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_proc = env.spawn("api").await;
    let api = Api::new(&api_proc.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(P, hook("old", &rx.url("/"))).await;
    // Jobs as the previous version wrote them: no endpoint, in the single ready list, the
    // scheduled set, and in flight with a worker that died.
    let job = |id: &str, attempt: u32| {
        json!({
            "v": 1, "id": id, "kind": "delivery", "project": P, "webhook": "old",
            "event": EVENT, "attempt": attempt, "retry": true,
            "request": {"url": rx.url("/"), "headers": [], "secrets": [], "timeout_secs": 5, "body": "{}"}
        })
        .to_string()
    };
    let mut c = redis.connection();
    let mut pipe = redis::pipe();
    for id in ["r1", "r2", "s1", "i1"] {
        pipe.cmd("HSET")
            .arg(keys().delivery(&hookrelay_tests::support::delivery_id(id)))
            .arg(&[
                "id", id, "project", P, "webhook", "old", "event", EVENT, "status", "pending",
            ])
            .ignore();
    }
    pipe.cmd("LPUSH")
        .arg("hr:queue:ready")
        .arg(job("r1", 1))
        .ignore();
    pipe.cmd("LPUSH")
        .arg("hr:queue:ready")
        .arg(job("r2", 1))
        .ignore();
    pipe.cmd("LPUSH")
        .arg("hr:queue:ready")
        .arg("not a job")
        .ignore();
    pipe.cmd("ZADD")
        .arg("hr:queue:scheduled")
        .arg(0)
        .arg(job("s1", 2))
        .ignore();
    pipe.cmd("HSET")
        .arg("hr:queue:inflight")
        .arg("i1")
        .arg(job("i1", 1))
        .ignore();
    pipe.cmd("HSET")
        .arg("hr:queue:holders")
        .arg("i1")
        .arg("gone-worker#1")
        .ignore();
    pipe.cmd("ZADD")
        .arg("hr:queue:leases")
        .arg(0)
        .arg("i1")
        .ignore();
    let _: () = pipe.query(&mut c).unwrap();
    let _worker = env.spawn("worker").await;
    let ids: Vec<String> = ["r1", "r2", "s1", "i1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    wait_all_status(&redis, &ids, "succeeded", Duration::from_secs(30)).await;
    let old: u64 = redis::cmd("EXISTS")
        .arg("hr:queue:ready")
        .arg("hr:queue:scheduled")
        .arg("hr:queue:inflight")
        .query(&mut c)
        .unwrap();
    assert_eq!(old, 0, "old keys left behind");
    // The value that was not a job is kept in the dead list, not dropped.
    let dead: Vec<String> = redis::cmd("LRANGE")
        .arg(keys().partition(0).dead())
        .arg(0)
        .arg(-1)
        .query(&mut c)
        .unwrap();
    assert!(dead.iter().any(|d| d.contains("not a job")), "{dead:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_test_is_one_attempt_whatever_the_receiver_asks() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let (_p, api) = serve(&env).await;
    for reply in [Reply::RetryAfter(429, 1), Reply::Status(410)] {
        let rx = Receiver::start(reply).await;
        let (status, created) = api
            .call(
                "POST",
                &format!("/projects/{P}/webhooks-tests"),
                Some(json!({"url": rx.url("/"), "object_type": "deployment", "object_name": "d1", "event": EVENT})),
            )
            .await;
        assert_eq!(status, 201, "{created}");
        let done = api
            .wait_test(P, created["id"].as_str().unwrap(), Duration::from_secs(20))
            .await;
        assert_eq!(done["status"], "failed", "{done}");
        // A later test to the same receiver is the barrier: the first was not sent again.
        let (_, again) = api
            .call(
                "POST",
                &format!("/projects/{P}/webhooks-tests"),
                Some(json!({"url": rx.url("/"), "object_type": "deployment", "object_name": "d1", "event": EVENT})),
            )
            .await;
        api.wait_test(P, again["id"].as_str().unwrap(), Duration::from_secs(20))
            .await;
        assert_eq!(rx.count(), 2, "a test was deferred and sent again");
    }
}
