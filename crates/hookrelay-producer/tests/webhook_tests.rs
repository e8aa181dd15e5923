//! UbiOps webhook tests and hookrelay's `webhooks/{name}/test`: one-attempt deliveries
//! through the real queue, read back as pending, completed or failed.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Server, start, webhook};
use hookrelay_core::delivery::ResponseRecord;
use hookrelay_core::{AttemptRecord, DeliveryKind, DeliveryStatus, Job};
use hookrelay_queue::Ack;
use reqwest::Method;
use serde_json::json;

fn test_body() -> serde_json::Value {
    json!({
        "url": "https://callback-url-webhook-1.com",
        "object_type": "deployment",
        "object_name": "deployment-1",
        "event": "deployment_request_finished",
        "retry": true
    })
}

/// Settles the one ready job as a worker would.
async fn settle(s: &Server, status: DeliveryStatus, code: Option<u16>, error: Option<&str>) {
    let claimed = s
        .queue
        .claim("w", 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claimed.jobs.len(), 1);
    let job = Job::decode(claimed.jobs[0].as_bytes()).unwrap();
    let attempt = AttemptRecord {
        attempt: 1,
        started_at: hookrelay_core::time::Timestamp::now(),
        duration_ms: 5,
        status_code: code,
        error: error.map(str::to_owned),
        response: code.map(|c| ResponseRecord {
            status_code: c,
            headers: [("x-receiver".to_owned(), "yes".to_owned())].into(),
            body: "received".into(),
            body_truncated: false,
        }),
        worker: Some("w".into()),
    };
    let ack = Ack {
        worker: "w",
        job: &job,
        attempt: &attempt,
        status,
        next: None,
        verdict: None,
        requeue_front: false,
        take_next: None,
    };
    assert!(s.queue.ack(&ack).await.unwrap().settled);
}

#[tokio::test]
async fn a_ubiops_test_is_pending_until_a_worker_runs_it() {
    let s = start().await;
    let a = s.post("/v2.1/projects/p/webhooks-tests", test_body()).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let id = a.body["id"].as_str().unwrap().to_owned();
    assert_eq!(a.body["status"], "pending");
    assert_eq!(a.body["error_message"], json!(null));

    let got = s
        .get(&format!("/v2.1/projects/p/webhooks-tests/{id}"))
        .await;
    assert_eq!(got.status, 200, "{}", got.text);
    assert_eq!(got.body["id"], id.as_str());
    assert_eq!(got.body["status"], "pending");
    assert_eq!(got.body["error_message"], json!(null));
    assert_eq!(got.body["webhook"], json!(null));

    // One attempt, whatever `retry` said; a real job in the real queue.
    let jobs = s.ready_jobs();
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, id);
    assert_eq!(jobs[0].kind, DeliveryKind::Test);
    assert!(!jobs[0].retry);
    assert_eq!(jobs[0].webhook, None);
    assert_eq!(jobs[0].request.url, "https://callback-url-webhook-1.com");
    assert!(!jobs[0].request.body.is_empty());

    settle(&s, DeliveryStatus::Succeeded, Some(200), None).await;
    let done = s
        .get(&format!("/v2.1/projects/p/webhooks-tests/{id}"))
        .await;
    assert_eq!(done.body["status"], "completed");
    assert_eq!(done.body["error_message"], json!(null));
    assert_eq!(done.body["status_code"], 200);
    assert_eq!(done.body["response"]["body"], "received");
    assert_eq!(done.body["response"]["headers"]["x-receiver"], "yes");
    assert_eq!(done.body["duration_ms"], 5);
}

#[tokio::test]
async fn a_failed_test_carries_the_error_message() {
    let s = start().await;
    let a = s.post("/v2.1/projects/p/webhooks-tests", test_body()).await;
    let id = a.body["id"].as_str().unwrap().to_owned();
    settle(&s, DeliveryStatus::Failed, None, Some("Connection refused")).await;
    let got = s
        .get(&format!("/v2.1/projects/p/webhooks-tests/{id}"))
        .await;
    assert_eq!(got.body["status"], "failed");
    assert_eq!(got.body["error_message"], "Connection refused");
    assert_eq!(got.body["status_code"], json!(null));

    let b = s.post("/v2.1/projects/p/webhooks-tests", test_body()).await;
    let id = b.body["id"].as_str().unwrap().to_owned();
    settle(&s, DeliveryStatus::Failed, Some(500), Some("HTTP 500")).await;
    let got = s
        .get(&format!("/v2.1/projects/p/webhooks-tests/{id}"))
        .await;
    assert_eq!(got.body["status"], "failed");
    assert_eq!(got.body["error_message"], "HTTP 500");
    assert_eq!(got.body["status_code"], 500);
}

#[tokio::test]
async fn unknown_tests_and_non_tests_are_404() {
    let s = start().await;
    assert_eq!(
        s.get("/v2.1/projects/p/webhooks-tests/nope").await.status,
        404
    );
    s.create_webhook(webhook("w")).await;
    let published = s
        .post(
            "/v2.1/projects/p/events",
            json!({"event": "deployment_request_finished", "object_type": "deployment",
                   "object_name": "deployment-1", "data": {}}),
        )
        .await;
    let delivery = published.body["deliveries"][0].as_str().unwrap();
    let a = s
        .get(&format!("/v2.1/projects/p/webhooks-tests/{delivery}"))
        .await;
    assert_eq!(a.status, 404, "a delivery is not a test");
    let t = s.post("/v2.1/projects/p/webhooks-tests", test_body()).await;
    let id = t.body["id"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/v2.1/projects/q/webhooks-tests/{id}"))
            .await
            .status,
        404,
        "another project's test"
    );
}

#[tokio::test]
async fn ubiops_test_fields_are_checked() {
    let s = start().await;
    for (k, v, field) in [
        ("url", json!("ftp://x"), "url"),
        ("url", json!("http://192.168.1.1/"), "url"),
        ("timeout", json!(60), "timeout"),
        ("object_type", json!(null), "object_type"),
        (
            "headers",
            json!([{"key": "X-A", "protected": true}]),
            "headers[0].value",
        ),
    ] {
        let mut body = test_body();
        body[k] = v;
        let a = s.post("/v2.1/projects/p/webhooks-tests", body).await;
        assert_eq!(a.status, 400, "{k}: {}", a.text);
        assert!(a.error().contains(field), "{k}: {}", a.text);
    }
    assert!(s.ready_jobs().is_empty());
}

#[tokio::test]
async fn testing_a_saved_webhook_sends_its_format_sample_once() {
    let s = start().await;
    let mut w = webhook("comet-hook");
    w["format"] = json!("comet");
    w["retry"] = json!(true);
    w["headers"] = json!([{"key": "X-Key", "value": "k", "protected": true}]);
    s.create_webhook(w).await;
    let a = s
        .call(
            Method::POST,
            "/v2.1/projects/p/webhooks/comet-hook/test",
            None,
        )
        .await;
    assert_eq!(a.status, 202, "{}", a.text);
    assert_eq!(a.body["status"], "pending");
    assert_eq!(a.body["error_message"], json!(null));
    assert_eq!(a.body["webhook"], "comet-hook");
    let id = a.body["id"].as_str().unwrap();
    let jobs = s.ready_jobs();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0];
    assert_eq!(job.id, id);
    assert_eq!(job.kind, DeliveryKind::Test);
    assert!(!job.retry);
    assert_eq!(job.webhook.as_deref(), Some("comet-hook"));
    assert_eq!(
        job.request.headers,
        vec![("X-Key".to_owned(), "k".to_owned())]
    );
    let body: serde_json::Value = serde_json::from_str(&job.request.body).unwrap();
    assert!(body.get("eventTrigger").is_some(), "comet sample: {body}");
    // Its record reads back as a test, and shows among the deliveries as kind "test".
    let got = s
        .get(&format!("/v2.1/projects/p/webhooks-tests/{id}"))
        .await;
    assert_eq!(got.body["status"], "pending");
    let listed = s.get("/v2.1/projects/p/deliveries?kind=test").await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);
    assert_eq!(
        s.call(Method::POST, "/v2.1/projects/p/webhooks/none/test", None)
            .await
            .status,
        404
    );
}
