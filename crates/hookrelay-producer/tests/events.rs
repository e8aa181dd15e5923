//! Publishing, fan-out, idempotency, delivery records, redelivery and recovery, over real
//! HTTP and a real Redis. Where a test needs a finished delivery, it settles the job through
//! the real queue the way a worker does (claim, then ack).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{PREFIX, Server, start, webhook};
use hookrelay_core::delivery::ResponseRecord;
use hookrelay_core::{AttemptRecord, DeliveryStatus, Job, Keys};
use hookrelay_queue::Ack;
use redis::Commands;
use reqwest::Method;
use serde_json::{Value, json};

fn event() -> Value {
    json!({
        "event": "deployment_request_finished",
        "object_type": "deployment",
        "object_name": "deployment-1",
        "data": {"request_id": "r-1", "status": "completed"}
    })
}

async fn publish(s: &Server, body: Value) -> Value {
    let a = s.post("/v2.1/projects/p/events", body).await;
    assert_eq!(a.status, 202, "{}", a.text);
    a.body
}

#[tokio::test]
async fn fan_out_reaches_enabled_matching_webhooks_only() {
    let s = start().await;
    let mut a = webhook("a-match");
    a["headers"] = json!([{"key": "X-Secret", "value": "hidden", "protected": true}]);
    a["token"] = json!("bearer-token");
    a["retry"] = json!(true);
    s.create_webhook(a).await;
    let mut b = webhook("b-wildcard");
    b["object_name"] = json!("*");
    b["event"] = json!("something_else");
    b["events"] = json!(["deployment_request_finished"]);
    s.create_webhook(b).await;
    let mut c = webhook("c-disabled");
    c["enabled"] = json!(false);
    s.create_webhook(c).await;
    let mut d = webhook("d-other-object");
    d["object_name"] = json!("deployment-2");
    s.create_webhook(d).await;
    let mut e = webhook("e-other-version");
    e["version"] = json!("v9");
    s.create_webhook(e).await;

    let answer = publish(&s, event()).await;
    let id = answer["id"].as_str().unwrap();
    let deliveries: Vec<hookrelay_core::DeliveryId> = answer["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(deliveries.len(), 2, "{answer}");

    // Records are in Redis, pending, before the 202.
    let keys = Keys::new(PREFIX);
    let mut conn = s.redis();
    let mut webhooks = Vec::new();
    for d in &deliveries {
        let status: String = conn.hget(keys.delivery(d), "status").unwrap();
        assert_eq!(status, "pending");
        let got = s.get(&format!("/v2.1/projects/p/deliveries/{d}")).await;
        assert_eq!(got.status, 200, "{}", got.text);
        assert_eq!(got.body["status"], "pending");
        assert_eq!(got.body["event"], "deployment_request_finished");
        assert_eq!(got.body["event_id"], id);
        assert_eq!(got.body["attempts"], json!([]));
        assert!(got.body["next_attempt_at"].is_string());
        assert!(!got.text.contains("hidden") && !got.text.contains("bearer-token"));
        webhooks.push(got.body["webhook"].as_str().unwrap().to_owned());
    }
    webhooks.sort();
    assert_eq!(webhooks, ["a-match", "b-wildcard"]);

    // The jobs snapshot the webhook: URL, headers, token, secrets, retry, rendered body.
    let jobs = s.ready_jobs();
    assert_eq!(jobs.len(), 2);
    let job = jobs
        .iter()
        .find(|j| j.webhook.as_deref() == Some("a-match"))
        .unwrap();
    assert_eq!(job.attempt, 1);
    assert!(job.retry);
    assert_eq!(job.project, "p");
    assert_eq!(job.request.url, "https://hooks.example.com/in");
    assert_eq!(
        job.request.headers,
        vec![("X-Secret".to_owned(), "hidden".to_owned())]
    );
    assert_eq!(job.request.token.as_deref(), Some("bearer-token"));
    assert_eq!(job.request.secrets.len(), 1);
    assert!(job.request.secrets[0].starts_with("whsec_"));
    assert_eq!(job.request.timeout_secs, 10);
    let body: Value = serde_json::from_str(&job.request.body).unwrap();
    assert_eq!(body["event"], "deployment_request_finished");
    assert_eq!(body["data"]["request_id"], "r-1");
}

#[tokio::test]
async fn the_same_event_id_is_published_once() {
    let s = start().await;
    s.create_webhook(webhook("w")).await;
    let mut e = event();
    e["id"] = json!("evt-42");
    let first = publish(&s, e.clone()).await;
    assert_eq!(first["id"], "evt-42");
    assert_eq!(first["deliveries"].as_array().unwrap().len(), 1);
    let again = publish(&s, e.clone()).await;
    assert_eq!(again, first);
    assert_eq!(s.ready_jobs().len(), 1, "nothing enqueued the second time");
    // Even when more webhooks match by now.
    s.create_webhook(webhook("w2")).await;
    assert_eq!(publish(&s, e).await, first);
    assert_eq!(s.ready_jobs().len(), 1);

    // An id with no matching webhook is remembered too.
    let mut none = event();
    none["id"] = json!("evt-none");
    none["object_name"] = json!("nobody");
    let a = publish(&s, none.clone()).await;
    assert_eq!(a, json!({"id": "evt-none", "deliveries": []}));
    assert_eq!(publish(&s, none).await, a);

    let metrics = s.get("/metrics").await.text;
    assert!(
        metrics.contains("hookrelay_events_duplicate_total 3\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("hookrelay_deliveries_enqueued_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn event_fields_are_checked() {
    let s = start().await;
    let check = |body: Value, field: &'static str| {
        let s = &s;
        async move {
            let a = s.post("/v2.1/projects/p/events", body.clone()).await;
            assert_eq!(a.status, 400, "{body}: {}", a.text);
            assert!(a.error().contains(field), "{body}: {}", a.text);
        }
    };
    let without = |k: &str| {
        let mut e = event();
        e.as_object_mut().unwrap().remove(k);
        e
    };
    let with = |k: &str, v: Value| {
        let mut e = event();
        e[k] = v;
        e
    };
    check(without("data"), "data").await;
    check(without("event"), "event").await;
    check(without("object_type"), "object_type").await;
    check(with("object_name", json!(3)), "object_name").await;
    check(with("event", json!("")), "event").await;
    check(with("version", json!(["v1"])), "version").await;
    check(with("id", json!("x".repeat(200))), "id").await;
    let a = s
        .post(
            "/v2.1/projects/p/events",
            with("unknown_field", json!({"ignored": true})),
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
}

#[tokio::test]
async fn deliveries_list_newest_first_with_filters() {
    let s = start().await;
    s.create_webhook(webhook("one")).await;
    let mut two = webhook("two");
    two["object_name"] = json!("*");
    s.create_webhook(two).await;
    let mut published = Vec::new();
    for _ in 0..3 {
        published.push(publish(&s, event()).await);
        // Distinct creation milliseconds make "newest first" observable.
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    let all = s.get("/v2.1/projects/p/deliveries").await;
    assert_eq!(all.status, 200, "{}", all.text);
    let list = all.body.as_array().unwrap();
    assert_eq!(list.len(), 6);
    let created: Vec<&str> = list
        .iter()
        .map(|d| d["created_at"].as_str().unwrap())
        .collect();
    let mut sorted = created.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(created, sorted, "newest first");
    let last_event = published[2]["id"].as_str().unwrap();
    assert_eq!(list[0]["event_id"], last_event);

    let one = s.get("/v2.1/projects/p/deliveries?webhook=one").await;
    assert_eq!(one.body.as_array().unwrap().len(), 3);
    assert!(
        one.body
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["webhook"] == "one")
    );
    let limited = s
        .get("/v2.1/projects/p/deliveries?webhook=two&limit=2")
        .await;
    assert_eq!(limited.body.as_array().unwrap().len(), 2);
    let pending = s
        .get("/v2.1/projects/p/deliveries?status=pending&limit=1000")
        .await;
    assert_eq!(pending.body.as_array().unwrap().len(), 6);
    let failed = s.get("/v2.1/projects/p/deliveries?status=failed").await;
    assert_eq!(failed.body, json!([]));
    assert_eq!(s.get("/v2.1/projects/q/deliveries").await.body, json!([]));

    for (query, field) in [
        ("status=done", "status"),
        ("limit=0", "limit"),
        ("limit=1001", "limit"),
        ("limit=x", "limit"),
        ("kind=other", "kind"),
    ] {
        let a = s.get(&format!("/v2.1/projects/p/deliveries?{query}")).await;
        assert_eq!(a.status, 400, "{query}: {}", a.text);
        assert!(a.error().starts_with(field), "{query}: {}", a.text);
    }
    assert_eq!(s.get("/v2.1/projects/p/deliveries/nope").await.status, 404);
    // A delivery of project p is not visible from project q.
    let id = list[0]["id"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/v2.1/projects/q/deliveries/{id}"))
            .await
            .status,
        404
    );
}

/// Claims every ready job and settles each as a worker would with `status`.
async fn settle_all(s: &Server, status: DeliveryStatus, error: Option<&str>) -> Vec<Job> {
    let claimed = s
        .queue
        .claim("test-worker", 100, Duration::from_secs(30))
        .await
        .unwrap();
    let mut jobs = Vec::new();
    for raw in claimed.jobs {
        let job = Job::decode(raw.as_bytes()).unwrap();
        let attempt = AttemptRecord {
            attempt: job.attempt,
            started_at: hookrelay_core::time::Timestamp::now(),
            duration_ms: 12,
            status_code: error.is_none().then_some(200),
            error: error.map(str::to_owned),
            response: error.is_none().then(|| ResponseRecord {
                status_code: 200,
                headers: [("content-type".to_owned(), "text/plain".to_owned())].into(),
                body: "thanks".into(),
                body_truncated: false,
            }),
            worker: Some("test-worker".into()),
        };
        let settled = s
            .queue
            .ack(&Ack {
                worker: "test-worker",
                job: &job,
                attempt: &attempt,
                status,
                next: None,
                verdict: None,
                requeue_front: false,
                take_next: None,
            })
            .await
            .unwrap();
        assert!(settled.settled);
        jobs.push(job);
    }
    jobs
}

#[tokio::test]
async fn redeliver_is_refused_while_queued_and_requeues_once_finished() {
    let s = start().await;
    s.create_webhook(webhook("w")).await;
    let answer = publish(&s, event()).await;
    let id = answer["deliveries"][0].as_str().unwrap().to_owned();
    let path = format!("/v2.1/projects/p/deliveries/{id}/redeliver");

    let busy = s.call(Method::POST, &path, None).await;
    assert_eq!(busy.status, 409, "{}", busy.text);
    assert!(busy.error().contains("pending"));
    assert_eq!(
        s.call(
            Method::POST,
            "/v2.1/projects/p/deliveries/nope/redeliver",
            None
        )
        .await
        .status,
        404
    );

    settle_all(&s, DeliveryStatus::Failed, Some("Connection refused")).await;
    let failed = s.get(&format!("/v2.1/projects/p/deliveries/{id}")).await;
    assert_eq!(failed.body["status"], "failed");
    assert_eq!(failed.body["attempts"][0]["error"], "Connection refused");
    assert_eq!(failed.body["attempts"][0]["attempt"], 1);
    assert_eq!(failed.body["next_attempt_at"], json!(null));

    // Rotate the secret first: the redelivery signs with the current secrets.
    let rotated = s
        .call(
            Method::POST,
            "/v2.1/projects/p/webhooks/w/secret/rotate",
            None,
        )
        .await;
    let new_secret = rotated.body["signing_secret"].as_str().unwrap().to_owned();

    let again = s.call(Method::POST, &path, None).await;
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.body["attempt"], 2);
    assert_eq!(again.body["status"], "pending");
    let jobs = s.ready_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, id);
    assert_eq!(jobs[0].attempt, 2);
    assert_eq!(jobs[0].request.secrets[0], new_secret);
    let pending = s.get(&format!("/v2.1/projects/p/deliveries/{id}")).await;
    assert_eq!(pending.body["status"], "pending");
    assert_eq!(s.call(Method::POST, &path, None).await.status, 409);

    settle_all(&s, DeliveryStatus::Succeeded, None).await;
    let done = s.get(&format!("/v2.1/projects/p/deliveries/{id}")).await;
    assert_eq!(done.body["status"], "succeeded");
    assert_eq!(done.body["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(done.body["attempts"][1]["status_code"], 200);
    assert_eq!(done.body["response"]["body"], "thanks");
    // A succeeded delivery may be sent again too.
    let third = s.call(Method::POST, &path, None).await;
    assert_eq!(third.status, 202);
    assert_eq!(third.body["attempt"], 3);
}

#[tokio::test]
async fn recover_requeues_the_failed_deliveries_of_one_webhook_since_a_time() {
    let s = start().await;
    s.create_webhook(webhook("w")).await;
    let mut other = webhook("other");
    other["object_name"] = json!("*");
    s.create_webhook(other).await;
    let since = hookrelay_core::time::Timestamp::now().to_string();
    for _ in 0..3 {
        publish(&s, event()).await;
    }
    settle_all(&s, DeliveryStatus::Failed, Some("HTTP 500")).await;

    let path = "/v2.1/projects/p/webhooks/w/recover";
    let a = s.post(path, json!({"since": since})).await;
    assert_eq!(a.status, 202, "{}", a.text);
    // Only w's own failed index is read: the other webhook's 3 failures are not looked at.
    assert_eq!(
        (
            &a.body["state"],
            &a.body["requeued"],
            &a.body["total"],
            &a.body["scanned"]
        ),
        (&json!("done"), &json!(3), &json!(3), &json!(3)),
        "{}",
        a.text
    );
    assert_eq!(a.body["webhook"], "w");
    let id = a.body["id"].as_str().unwrap();
    let progress = s
        .get(&format!("/v2.1/projects/p/webhooks/w/recoveries/{id}"))
        .await;
    assert_eq!(progress.status, 200, "{}", progress.text);
    assert_eq!(progress.body["requeued"], 3);
    assert_eq!(progress.body["state"], "done");
    for wrong in [
        format!("/v2.1/projects/p/webhooks/other/recoveries/{id}"),
        "/v2.1/projects/p/webhooks/w/recoveries/3f1c6a52-0000-4000-8000-000000000000".to_owned(),
        "/v2.1/projects/p/webhooks/w/recoveries/not-an-id".to_owned(),
    ] {
        assert_eq!(s.get(&wrong).await.status, 404, "{wrong}");
    }
    let jobs = s.ready_jobs();
    assert_eq!(jobs.len(), 3);
    assert!(
        jobs.iter()
            .all(|j| j.webhook.as_deref() == Some("w") && j.attempt == 2)
    );
    // Nothing left to recover for w; the future holds nothing either.
    let again = s.post(path, json!({"since": since})).await;
    assert_eq!(
        (&again.body["requeued"], &again.body["total"]),
        (&json!(0), &json!(0)),
        "{}",
        again.text
    );
    let future = s
        .post(
            "/v2.1/projects/p/webhooks/other/recover",
            json!({"since": "2999-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(future.body["requeued"], 0, "{}", future.text);
    assert_eq!(future.body["state"], "done");
    let bad = s.post(path, json!({"since": "yesterday"})).await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().starts_with("since:"), "{}", bad.text);
    let missing = s.post(path, json!({})).await;
    assert_eq!(missing.status, 400);
    assert!(missing.error().contains("since"), "{}", missing.text);
    assert_eq!(
        s.post(
            "/v2.1/projects/p/webhooks/nope/recover",
            json!({"since": since})
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn an_event_about_no_object_fires_only_webhooks_for_any_object() {
    let s = start().await;
    s.create_webhook(webhook("specific")).await;
    let mut any = webhook("any");
    any["object_type"] = json!("*");
    any["object_name"] = json!("*");
    s.create_webhook(any).await;
    let body = json!({
        "event": "deployment_request_finished", "object_type": "", "object_name": "", "data": {}
    });
    let a = publish(&s, body).await;
    assert_eq!(a["deliveries"].as_array().unwrap().len(), 1);
    // A typed event fires both.
    let a = publish(&s, event()).await;
    assert_eq!(a["deliveries"].as_array().unwrap().len(), 2);
}
