//! `/health`, `/metrics`, `/openapi.json`, `/ui`, and what the API answers when Redis dies:
//! a 503 within seconds, never a hang and never a success.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{start, webhook};
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn health_metrics_openapi_and_ui_need_no_token() {
    let s = start().await;
    for path in [
        "/health",
        "/metrics",
        "/openapi.json",
        "/ui",
        "/ui/ui.js",
        "/ui/ui.css",
        "/favicon.ico",
    ] {
        let a = s.raw(Method::GET, path, None, Vec::new()).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
    }
    let h = s.raw(Method::GET, "/health", None, Vec::new()).await;
    assert_eq!(h.body, json!({"status": "ok"}));

    s.create_webhook(webhook("w")).await;
    let published = s
        .post(
            "/v2.1/projects/p/events",
            json!({"event": "deployment_request_finished", "object_type": "deployment",
                   "object_name": "deployment-1", "data": {}}),
        )
        .await;
    assert_eq!(published.status, 202);
    let m = s.raw(Method::GET, "/metrics", None, Vec::new()).await;
    assert!(
        m.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    for line in [
        "hookrelay_events_published_total 1\n",
        "hookrelay_deliveries_enqueued_total 1\n",
        "hookrelay_queue_ready 1\n",
        "hookrelay_queue_inflight 0\n",
        "hookrelay_redis_up 1\n",
        "# TYPE hookrelay_queue_ready gauge\n",
        "hookrelay_http_responses_total{class=\"2xx\"}",
    ] {
        assert!(m.text.contains(line), "missing {line:?} in\n{}", m.text);
    }

    let doc: serde_json::Value = s.get("/openapi.json").await.body;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/projects/{project_name}/webhooks",
        "/projects/{project_name}/webhooks/{webhook_name}",
        "/projects/{project_name}/webhooks-tests",
        "/projects/{project_name}/webhooks-tests/{test_id}",
        "/projects/{project_name}/events",
        "/projects/{project_name}/deliveries",
        "/projects/{project_name}/deliveries/{delivery_id}",
        "/projects/{project_name}/deliveries/{delivery_id}/redeliver",
        "/projects/{project_name}/webhooks/{webhook_name}/test",
        "/projects/{project_name}/webhooks/{webhook_name}/secret",
        "/projects/{project_name}/webhooks/{webhook_name}/secret/rotate",
        "/projects/{project_name}/webhooks/{webhook_name}/recover",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "openapi.json lacks {path}"
        );
    }

    let ui = s.raw(Method::GET, "/ui", None, Vec::new()).await;
    assert!(
        ui.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(ui.headers.contains_key("content-security-policy"));
    assert!(ui.text.contains(r#"<script src="/ui/ui.js""#));
    let js = s.raw(Method::GET, "/ui/ui.js", None, Vec::new()).await;
    assert!(js.text.contains("/v2.1/projects/"));
    let css = s.raw(Method::GET, "/ui/ui.css", None, Vec::new()).await;
    // Every asset comes from this server: nothing loaded from elsewhere.
    for (name, text) in [("ui", &ui.text), ("ui.js", &js.text), ("ui.css", &css.text)] {
        for external in [
            "src=\"http",
            "href=\"http",
            "url(http",
            "@import",
            "fetch(\"http",
        ] {
            assert!(!text.contains(external), "{name} loads {external}…");
        }
    }
    let icon = s.raw(Method::GET, "/favicon.ico", None, Vec::new()).await;
    assert_eq!(icon.headers["content-type"], "image/x-icon");
}

#[tokio::test]
async fn a_dead_redis_gives_503_quickly() {
    let mut s = start().await;
    s.create_webhook(webhook("w")).await;
    s.redis.kill();

    let started = Instant::now();
    let h = s.raw(Method::GET, "/health", None, Vec::new()).await;
    assert_eq!(h.status, 503, "{}", h.text);
    assert!(
        h.body["error"]
            .as_str()
            .unwrap()
            .starts_with("redis unavailable"),
        "{}",
        h.text
    );

    let checks = [
        (Method::GET, "/v2.1/projects/p/webhooks", None),
        (Method::GET, "/v2.1/projects/p/webhooks/w", None),
        (
            Method::POST,
            "/v2.1/projects/p/webhooks",
            Some(webhook("x")),
        ),
        (
            Method::POST,
            "/v2.1/projects/p/events",
            Some(json!({"event": "e", "object_type": "t", "object_name": "n", "data": {}})),
        ),
        (Method::GET, "/v2.1/projects/p/deliveries", None),
        (Method::GET, "/v2.1/projects/p/webhooks-tests/x", None),
    ];
    for (method, path, body) in checks {
        let a = s.call(method.clone(), path, body).await;
        assert_eq!(a.status, 503, "{method} {path}: {}", a.text);
        assert!(
            a.error().starts_with("redis unavailable: "),
            "{path}: {}",
            a.text
        );
    }
    let m = s.raw(Method::GET, "/metrics", None, Vec::new()).await;
    assert_eq!(m.status, 200);
    assert!(m.text.contains("hookrelay_redis_up 0\n"));
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
    println!("all answers with redis dead took {elapsed:?}");

    // Back again: the connection heals and the data (no persistence here) is gone, but
    // the API answers.
    s.redis.restart();
    hookrelay_testkit::wait_until(Duration::from_secs(10), "health back to 200", || {
        let s = &s;
        async move { s.raw(Method::GET, "/health", None, Vec::new()).await.status == 200 }
    })
    .await;
}

#[tokio::test]
async fn a_redis_that_stops_answering_gives_503_not_a_hang() {
    let s = start().await;
    s.create_webhook(webhook("w")).await;
    // Every client's commands now wait: Redis is there but answers nothing for 12 s, longer
    // than the API's probe (2 s) and Redis response (5 s) timeouts.
    let mut conn = s.redis();
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(12_000)
        .arg("ALL")
        .query(&mut conn)
        .unwrap();

    let started = Instant::now();
    let (h, a) = tokio::join!(
        s.raw(Method::GET, "/health", None, Vec::new()),
        s.get("/v2.1/projects/p/webhooks/w")
    );
    assert_eq!(h.status, 503, "{}", h.text);
    assert_eq!(a.status, 503, "{}", a.text);
    assert!(a.error().starts_with("redis unavailable: "), "{}", a.text);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(11), "took {elapsed:?}");
    println!("answers with redis paused took {elapsed:?}");
}
