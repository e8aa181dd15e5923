//! End to end: the release binary, a real redis-server, real HTTP receivers, and the API as
//! a user calls it. Each test has its own Redis, so they run in parallel.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookrelay_testkit::receiver::{Receiver, Reply, refused_url};
use hookrelay_tests::{Api, Env, RedisServer, event, webhook};
use serde_json::json;

const P: &str = "demo";

async fn serve(redis: &RedisServer) -> (hookrelay_tests::Process, Api) {
    let p = Env::new(redis).spawn("serve").await;
    let api = Api::new(&p.base);
    (p, api)
}

#[tokio::test]
async fn an_event_reaches_every_matching_webhook_signed_and_recorded() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    let mut w = webhook("h1", &rx.url("/a"), "deployment_request_finished");
    w["headers"] = json!([{"key": "X-Team", "value": "blue", "protected": false}]);
    let created = api.create_webhook(P, w).await;
    let secret = created["signing_secret"].as_str().unwrap().to_owned();
    api.create_webhook(P, webhook("h2", &rx.url("/b"), "*"))
        .await;
    let mut other = webhook("h3", &rx.url("/c"), "deployment_request_finished");
    other["object_name"] = json!("another");
    api.create_webhook(P, other).await;
    let mut disabled = webhook("h4", &rx.url("/d"), "deployment_request_finished");
    disabled["enabled"] = json!(false);
    api.create_webhook(P, disabled).await;

    let ids = api
        .publish(
            P,
            event("deployment_request_finished", json!({"request_id": "r-1"})),
        )
        .await;
    assert_eq!(ids.len(), 2, "only h1 and h2 match");
    for id in &ids {
        let d = api
            .wait_status(P, id, "succeeded", Duration::from_secs(10))
            .await;
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["status_code"], 200);
        assert!(attempts[0]["started_at"].is_string());
        assert!(attempts[0]["duration_ms"].is_u64());
    }
    let reqs = rx.wait_for_requests(2, Duration::from_secs(5)).await;
    let a = reqs.iter().find(|r| r.path == "/a").expect("h1 delivery");
    assert_eq!(a.method, "POST");
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert!(a.header("user-agent").unwrap().starts_with("hookrelay/"));
    assert_eq!(a.header("x-team"), Some("blue"));
    assert!(a.header("authorization").is_none());
    let body = a.json();
    assert_eq!(body["event"], "deployment_request_finished");
    assert_eq!(body["project"], P);
    assert_eq!(body["object_type"], "deployment");
    assert_eq!(body["object_name"], "d1");
    assert_eq!(body["data"]["request_id"], "r-1");
    assert!(body.get("result").is_none());
    assert!(ids.contains(&a.header("webhook-id").unwrap().to_owned()));
    // The signature verifies with the webhook's secret.
    let ts: i64 = a.header("webhook-timestamp").unwrap().parse().unwrap();
    let expected = hookrelay_core::signing::signature_header(
        &[secret],
        a.header("webhook-id").unwrap(),
        ts,
        &a.body,
    );
    assert_eq!(a.header("webhook-signature"), Some(expected.as_str()));
    // Nothing is left in the queue keys.
    let mut c = redis.connection();
    for key in [
        "hr:queue:ready",
        "hr:queue:inflight",
        "hr:queue:scheduled",
        "hr:queue:leases",
    ] {
        let n: usize = redis::cmd("EXISTS").arg(key).query(&mut c).unwrap();
        assert_eq!(n, 0, "{key} left behind");
    }
}

#[tokio::test]
async fn failures_are_retried_with_growing_delays_until_success() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    rx.queue_replies([Reply::Status(500), Reply::Status(503)]);
    let mut w = webhook("h", &rx.url("/"), "e");
    w["retry"] = json!(true);
    api.create_webhook(P, w).await;
    let ids = api.publish(P, event("e", json!({}))).await;
    let d = api
        .wait_status(P, &ids[0], "succeeded", Duration::from_secs(15))
        .await;
    let attempts = d["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{d}");
    assert_eq!(attempts[0]["status_code"], 500);
    assert!(attempts[0]["error"].as_str().unwrap().contains("HTTP 500"));
    assert_eq!(attempts[1]["status_code"], 503);
    assert_eq!(attempts[2]["status_code"], 200);
    assert!(attempts[2]["error"].is_null());
    let reqs = rx.requests();
    assert_eq!(reqs.len(), 3);
    // The same webhook-id on every attempt.
    assert!(
        reqs.iter()
            .all(|r| r.header("webhook-id") == Some(ids[0].as_str()))
    );
    // Exponential: initial 200 ms, then 400 ms (±10 %), so the second gap is longer.
    let gap1 = reqs[1].at - reqs[0].at;
    let gap2 = reqs[2].at - reqs[1].at;
    println!("retry gaps: {gap1:?}, {gap2:?}");
    assert!(gap1 >= Duration::from_millis(170), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(340), "{gap2:?}");
}

#[tokio::test]
async fn attempts_run_out_and_without_retry_there_is_one() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(500)).await;
    let mut w = webhook("retrying", &rx.url("/r"), "e");
    w["retry"] = json!(true);
    api.create_webhook(P, w).await;
    api.create_webhook(P, webhook("once", &rx.url("/o"), "e"))
        .await;
    let ids = api.publish(P, event("e", json!({}))).await;
    for id in &ids {
        let d = api
            .wait_status(P, id, "failed", Duration::from_secs(15))
            .await;
        let n = d["attempts"].as_array().unwrap().len();
        match d["webhook"].as_str().unwrap() {
            "retrying" => assert_eq!(n, 3, "HOOKRELAY_RETRY_MAX_ATTEMPTS=3: {d}"),
            _ => assert_eq!(n, 1, "retry false: {d}"),
        }
        assert!(d["next_attempt_at"].is_null());
    }
    // A failed delivery can be delivered again by hand.
    rx.set_reply(Reply::Status(200));
    let (status, _) = api
        .call(
            "POST",
            &format!("/projects/{P}/deliveries/{}/redeliver", ids[0]),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let d = api
        .wait_status(P, &ids[0], "succeeded", Duration::from_secs(10))
        .await;
    assert!(d["attempts"].as_array().unwrap().len() >= 2);
}

#[tokio::test]
async fn project_stats_count_outcomes_per_minute_with_latency_depth_and_workers() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let ok = Receiver::start(Reply::Status(200)).await;
    // 4xx: retried, but not counted towards opening the circuit (which would hold the
    // retries back for its cooldown).
    let bad = Receiver::start(Reply::Status(400)).await;
    api.create_webhook(P, webhook("ok", &ok.url("/"), "e"))
        .await;
    let mut w = webhook("bad", &bad.url("/"), "e");
    w["retry"] = json!(true);
    api.create_webhook(P, w).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.extend(api.publish(P, event("e", json!({}))).await);
    }
    for id in &ids {
        let d = api.delivery(P, id).await;
        let want = if d["webhook"] == "ok" {
            "succeeded"
        } else {
            "failed"
        };
        api.wait_status(P, id, want, Duration::from_secs(15)).await;
    }
    // A webhook test is not a delivery: it counts in nothing.
    let (status, _) = api
        .call("POST", &format!("/projects/{P}/webhooks/ok/test"), None)
        .await;
    assert_eq!(status, 202);
    ok.wait_for_requests(4, Duration::from_secs(10)).await;

    let (status, stats) = api.call("GET", &format!("/projects/{P}/stats"), None).await;
    assert_eq!(status, 200, "{stats}");
    let minutes = stats["minutes"].as_array().unwrap();
    assert_eq!(minutes.len(), 60);
    let sum = |field: &str| -> u64 { minutes.iter().map(|m| m[field].as_u64().unwrap()).sum() };
    // HOOKRELAY_RETRY_MAX_ATTEMPTS=3: each bad delivery fails twice with a retry, then ends.
    assert_eq!(
        (sum("succeeded"), sum("failed"), sum("retried")),
        (3, 3, 6),
        "{stats}"
    );
    assert!(
        minutes[59]["minute"]
            .as_str()
            .unwrap()
            .ends_with(":00.000Z"),
        "{stats}"
    );
    let p50 = stats["latency_ms"]["p50"].as_f64().unwrap();
    let p99 = stats["latency_ms"]["p99"].as_f64().unwrap();
    assert!(p50 > 0.0 && p50 <= p99 && p99 < 10_000.0, "{stats}");
    assert_eq!(
        stats["queue"],
        json!({"ready": 0, "scheduled": 0, "in_flight": 0})
    );
    assert_eq!(stats["workers"], 1);

    let (status, short) = api
        .call("GET", &format!("/projects/{P}/stats?minutes=5"), None)
        .await;
    assert_eq!(status, 200);
    assert_eq!(short["minutes"].as_array().unwrap().len(), 5);
    let (status, err) = api
        .call("GET", &format!("/projects/{P}/stats?minutes=0"), None)
        .await;
    assert_eq!(
        (status, err["field"].as_str()),
        (400, Some("minutes")),
        "{err}"
    );
    let (status, other) = api.call("GET", "/projects/other/stats", None).await;
    assert_eq!(status, 200);
    assert!(other["latency_ms"]["p50"].is_null(), "{other}");
    assert!(
        other["minutes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["succeeded"] == 0)
    );
}

#[tokio::test]
async fn redirects_count_as_success_and_are_not_followed() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let target = Receiver::start(Reply::Status(200)).await;
    let rx = Receiver::start(Reply::Redirect(target.url("/elsewhere"))).await;
    api.create_webhook(P, webhook("h", &rx.url("/"), "e")).await;
    let ids = api.publish(P, event("e", json!({}))).await;
    let d = api
        .wait_status(P, &ids[0], "succeeded", Duration::from_secs(10))
        .await;
    assert_eq!(d["attempts"][0]["status_code"], 302);
    assert_eq!(target.count(), 0, "the redirect was followed");
}

#[tokio::test]
async fn the_default_timeout_is_ten_seconds() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Slow(Duration::from_secs(14), 200)).await;
    api.create_webhook(P, webhook("h", &rx.url("/"), "e")).await;
    let ids = api.publish(P, event("e", json!({}))).await;
    let d = api
        .wait_status(P, &ids[0], "failed", Duration::from_secs(20))
        .await;
    let a = &d["attempts"][0];
    assert_eq!(a["error"], "timed out after 10 s", "{d}");
    let ms = a["duration_ms"].as_u64().unwrap();
    assert!((9_900..12_000).contains(&ms), "{ms}");
}

#[tokio::test]
async fn a_job_carrying_more_than_thirty_seconds_is_cut_to_thirty() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Slow(Duration::from_secs(34), 200)).await;
    // The API refuses such a webhook; a job written by another producer can still carry it.
    let mut w = webhook("h", &rx.url("/"), "e");
    w["timeout"] = json!(45);
    let (status, err) = api
        .call("POST", &format!("/projects/{P}/webhooks"), Some(w))
        .await;
    assert_eq!(status, 400);
    assert!(err["error"].as_str().unwrap().contains("timeout"), "{err}");
    let job = json!({
        "v": 1, "id": "hand-made", "kind": "delivery", "project": P, "webhook": null,
        "event": "e", "attempt": 1, "retry": false,
        "request": {"url": rx.url("/"), "headers": [], "secrets": [], "timeout_secs": 45, "body": "{}"}
    });
    let mut c = redis.connection();
    let k = hookrelay_tests::support::keys();
    // An id without a partition is in partition 0.
    let part = k.partition(0);
    let _: () = redis::cmd("HSET")
        .arg(k.delivery(&hookrelay_tests::support::delivery_id("hand-made")))
        .arg(&[
            "id",
            "hand-made",
            "project",
            P,
            "event",
            "e",
            "status",
            "pending",
        ])
        .query(&mut c)
        .unwrap();
    let _: () = redis::pipe()
        .cmd("LPUSH")
        .arg(part.endpoint("hand-made-endpoint").ready)
        .arg(job.to_string())
        .cmd("ZADD")
        .arg(part.ring())
        .arg(0)
        .arg("hand-made-endpoint")
        .query(&mut c)
        .unwrap();
    let d = api
        .wait_status(P, "hand-made", "failed", Duration::from_secs(40))
        .await;
    assert_eq!(d["attempts"][0]["error"], "timed out after 30 s", "{d}");
}

#[tokio::test]
async fn webhook_tests_are_real_deliveries_with_ubiops_statuses() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let ok = Receiver::start(Reply::Status(200)).await;
    let bad = Receiver::start(Reply::Status(500)).await;
    let slow = Receiver::start(Reply::Hang).await;
    let cases = [
        (ok.url("/"), "completed", None, 1),
        (bad.url("/"), "failed", Some("HTTP 500"), 1),
        (refused_url("/"), "failed", Some("Connection refused"), 1),
        (slow.url("/"), "failed", Some("timed out after 1 s"), 1),
    ];
    for (url, want, err, timeout) in cases {
        let body = json!({
            "url": url, "object_type": "deployment", "object_name": "d1",
            "event": "deployment_request_finished", "timeout": timeout,
        });
        let (status, created) = api
            .call("POST", &format!("/projects/{P}/webhooks-tests"), Some(body))
            .await;
        assert_eq!(status, 201, "{created}");
        assert_eq!(created["status"], "pending");
        assert!(created["error_message"].is_null());
        let id = created["id"].as_str().unwrap().to_owned();
        let got = api.wait_test(P, &id, Duration::from_secs(10)).await;
        assert_eq!(got["status"], want, "{url}: {got}");
        match err {
            None => assert!(got["error_message"].is_null(), "{got}"),
            Some(e) => assert!(
                got["error_message"].as_str().unwrap().contains(e),
                "{url}: {got}"
            ),
        }
    }
    assert_eq!(ok.count(), 1);
    let (s, _) = api
        .call(
            "GET",
            &format!("/projects/{P}/webhooks-tests/no-such-test"),
            None,
        )
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_publish_command_enqueues_from_a_shell() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(204)).await;
    api.create_webhook(P, webhook("h", &rx.url("/"), "e")).await;
    let env = Env::new(&redis);
    let args = &[
        "--project",
        P,
        "--event",
        "e",
        "--object-type",
        "deployment",
        "--object-name",
        "d1",
        "--data",
        "{\"k\":1}",
        "--id",
        "evt-42",
    ];
    let (code, out, err) = env.publish(args);
    assert_eq!(code, 0, "{err}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(answer["id"], "evt-42");
    let id = answer["deliveries"][0].as_str().unwrap().to_owned();
    api.wait_status(P, &id, "succeeded", Duration::from_secs(10))
        .await;
    assert_eq!(rx.requests()[0].json()["data"]["k"], 1);
    // The same id again enqueues nothing and answers the same.
    let (code, out2, _) = env.publish(args);
    assert_eq!(code, 0);
    assert_eq!(out2, out);
    // A later event through the same webhook is the barrier: once it has arrived, a
    // duplicate enqueued before it would have arrived too.
    let barrier = api.publish(P, event("e", json!({"k": 2}))).await;
    api.wait_status(P, &barrier[0], "succeeded", Duration::from_secs(10))
        .await;
    assert_eq!(rx.count(), 2, "the repeated event id was delivered again");
    // Bad input is named.
    let (code, _, err) = env.publish(&["--project", P, "--event", "e", "--data", "{oops"]);
    assert_ne!(code, 0);
    assert!(err.contains("--data"), "{err}");
}

#[tokio::test]
async fn separate_api_and_worker_processes_share_one_redis() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let api_p = env.spawn("api").await;
    let api = Api::new(&api_p.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(P, webhook("h", &rx.url("/"), "e")).await;
    let ids = api.publish(P, event("e", json!({}))).await;
    // The API alone never delivers: the job waits in its endpoint's queue, unclaimed.
    let depths = hookrelay_tests::support::queue_depths(&redis);
    assert_eq!((depths.ready, depths.inflight), (1, 0), "{depths:?}");
    assert_eq!(rx.count(), 0);
    assert_eq!(api.delivery(P, &ids[0]).await["status"], "pending");
    let _w1 = env.spawn("worker").await;
    let _w2 = env.spawn("worker").await;
    api.wait_status(P, &ids[0], "succeeded", Duration::from_secs(10))
        .await;
    let more: Vec<String> = {
        let mut all = Vec::new();
        for _ in 0..50 {
            all.extend(api.publish(P, event("e", json!({}))).await);
        }
        all
    };
    for id in &more {
        api.wait_status(P, id, "succeeded", Duration::from_secs(10))
            .await;
    }
    assert_eq!(rx.count(), 51, "each delivery exactly once");
}

#[tokio::test]
async fn the_official_standard_webhooks_verifier_accepts_every_delivery() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    rx.queue_replies([Reply::Status(500)]);
    let mut w = webhook("h", &rx.url("/"), "e");
    w["retry"] = json!(true);
    let created = api.create_webhook(P, w).await;
    let old_secret = created["signing_secret"].as_str().unwrap().to_owned();
    let ids = api.publish(P, event("e", json!({"n": "ünïcode ✓"}))).await;
    api.wait_status(P, &ids[0], "succeeded", Duration::from_secs(10))
        .await;
    // Rotate: from now on both secrets sign.
    let (s, rotated) = api
        .call(
            "POST",
            &format!("/projects/{P}/webhooks/h/secret/rotate"),
            None,
        )
        .await;
    assert_eq!(s, 200, "{rotated}");
    let new_secret = rotated["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, old_secret);
    let (s, shown) = api
        .call("GET", &format!("/projects/{P}/webhooks/h/secret"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(shown["signing_secret"], new_secret.as_str());
    let ids = api
        .publish(P, event("e", json!({"after": "rotation"})))
        .await;
    api.wait_status(P, &ids[0], "succeeded", Duration::from_secs(10))
        .await;
    let reqs = rx.requests();
    assert_eq!(
        reqs.len(),
        3,
        "first attempt, its retry, and one after the rotation"
    );
    assert_eq!(
        reqs[2]
            .header("webhook-signature")
            .unwrap()
            .split(' ')
            .count(),
        2
    );

    let dir = std::env::temp_dir().join(format!("hookrelay-sig-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cases: Vec<serde_json::Value> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| {
            json!({
                "secrets": if i < 2 { vec![old_secret.clone()] } else { vec![old_secret.clone(), new_secret.clone()] },
                "headers": {
                    "webhook-id": r.header("webhook-id"),
                    "webhook-timestamp": r.header("webhook-timestamp"),
                    "webhook-signature": r.header("webhook-signature"),
                },
                "body": r.text(),
            })
        })
        .collect();
    let file = dir.join("cases.json");
    std::fs::write(&file, serde_json::to_vec(&cases).unwrap()).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/verify_standardwebhooks.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "standardwebhooks verifier refused a delivery:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
}

#[tokio::test]
async fn the_official_ubiops_client_works_against_the_binary() {
    let redis = RedisServer::start();
    let (p, _api) = serve(&redis).await;
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/ubiops_client.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("HOOKRELAY_URL", format!("{}/v2.1", p.base))
        .env("HOOKRELAY_TOKEN", hookrelay_tests::TOKEN)
        .env("HOOKRELAY_PROJECT", "ubiops-e2e")
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "UbiOps client script failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn recover_reads_only_its_webhooks_failures_in_pages_and_reports_progress() {
    use hookrelay_tests::support::{publish_many, wait_all_status};
    let redis = RedisServer::start();
    let p = Env::new(&redis)
        .set("HOOKRELAY_RETENTION_SUCCEEDED_SECS", "60")
        .set("HOOKRELAY_RETENTION_FAILED_SECS", "600")
        .spawn("serve")
        .await;
    let api = Api::new(&p.base);
    // 4xx: failed at once (retry false), and not a reason to open the circuit.
    let rx = Receiver::start(Reply::Status(400)).await;
    let mut mine = webhook("mine", &rx.url("/mine"), "e");
    mine["events"] = json!(["only-mine"]);
    api.create_webhook(P, mine).await;
    api.create_webhook(P, webhook("other", &rx.url("/other"), "e"))
        .await;
    let since = hookrelay_core::time::Timestamp::now().to_string();
    // 1,200 failures of "mine" (more than two pages of 500), 300 of "other".
    let mut ids = publish_many(&api, P, "only-mine", 900, 8).await;
    ids.extend(publish_many(&api, P, "e", 300, 8).await);
    assert_eq!(ids.len(), 1_500);
    wait_all_status(&redis, &ids, "failed", Duration::from_secs(60)).await;

    // Finished deliveries are kept for their outcome's retention.
    let ttl = |id: &str| -> i64 {
        let mut c = redis.connection();
        redis::cmd("TTL")
            .arg(
                hookrelay_tests::support::keys()
                    .delivery(&hookrelay_tests::support::delivery_id(id)),
            )
            .query(&mut c)
            .unwrap()
    };
    let failed_ttl = ttl(&ids[0]);
    assert!((61..=600).contains(&failed_ttl), "failed TTL {failed_ttl}");

    rx.set_reply(Reply::Status(200));
    let (status, started) = api
        .call(
            "POST",
            &format!("/projects/{P}/webhooks/mine/recover"),
            Some(json!({"since": since})),
        )
        .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["total"], 1_200, "{started}");
    let id = started["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let done = loop {
        let (status, now) = api
            .call(
                "GET",
                &format!("/projects/{P}/webhooks/mine/recoveries/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{now}");
        if now["state"] == "done" {
            break now;
        }
        assert_eq!(now["state"], "running", "{now}");
        assert!(std::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = |field: &str| {
        done[field]
            .as_str()
            .and_then(hookrelay_core::time::Timestamp::parse)
            .map(hookrelay_core::time::Timestamp::as_ms)
            .unwrap()
    };
    let took = at("updated_at") - at("started_at");
    println!("recovery of 1,200 failed deliveries: {took} ms");
    // The other webhook's failures were never looked at.
    assert_eq!(
        (&done["requeued"], &done["scanned"], &done["skipped"]),
        (&json!(1_200), &json!(1_200), &json!(0)),
        "{done}"
    );
    let (recovered, others): (Vec<String>, Vec<String>) = {
        let mut c = redis.connection();
        ids.iter().cloned().partition(|id| {
            let w: String = redis::cmd("HGET")
                .arg(
                    hookrelay_tests::support::keys()
                        .delivery(&hookrelay_tests::support::delivery_id(id)),
                )
                .arg("webhook")
                .query(&mut c)
                .unwrap();
            w == "mine"
        })
    };
    assert_eq!((recovered.len(), others.len()), (1_200, 300));
    wait_all_status(&redis, &recovered, "succeeded", Duration::from_secs(60)).await;
    wait_all_status(&redis, &others, "failed", Duration::from_secs(1)).await;
    let succeeded_ttl = ttl(&recovered[0]);
    assert!(
        (1..=60).contains(&succeeded_ttl),
        "succeeded TTL {succeeded_ttl}"
    );
}
