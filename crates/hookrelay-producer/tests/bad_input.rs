//! Bad input over real HTTP: every answer is a JSON error with the right status, never a
//! 500 and never a crash.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TOKEN, start, start_with, webhook};
use reqwest::Method;

const AUTH: &str = concat!("Token ", "test-token-0123456789");

#[tokio::test]
async fn malformed_bodies_are_400_with_a_json_error() {
    let s = start().await;
    assert_eq!(AUTH, format!("Token {TOKEN}"));
    let path = "/v2.1/projects/p/webhooks";
    let deep_data = format!(
        "{{\"event\":\"e\",\"object_type\":\"t\",\"object_name\":\"n\",\"data\":{}{}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let mut trailing = serde_json::to_vec(&webhook("a")).unwrap();
    trailing.extend_from_slice(b" {}");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (path, b"{\"name\": ".to_vec(), "malformed JSON"),
        (path, b"not json at all".to_vec(), "malformed JSON"),
        (path, Vec::new(), "empty body"),
        (path, b"[1,2,3]".to_vec(), "expected a JSON object"),
        (path, b"{\"name\":\"\xff\xfe\"}".to_vec(), "UTF-8"),
        (
            path,
            format!("{}{}", "{\"a\":".repeat(10_000), "1").into_bytes(),
            "JSON",
        ),
        (
            "/v2.1/projects/p/events",
            deep_data.into_bytes(),
            "recursion limit",
        ),
        (path, trailing, "malformed JSON"),
    ];
    for (path, body, want) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let a = s.raw(Method::POST, path, Some(AUTH), body).await;
        assert_eq!(a.status, 400, "{shown}: {}", a.text);
        assert!(a.error().contains(want), "{shown}: {}", a.text);
        assert!(
            a.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{shown}"
        );
    }
    // The server is still there.
    assert_eq!(s.get("/health").await.status, 200);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413() {
    let s = start_with(|settings| settings.body_limit = 4096).await;
    let mut w = webhook("big");
    w["description"] = serde_json::json!("x".repeat(5000));
    let a = s.post("/v2.1/projects/p/webhooks", w).await;
    assert_eq!(a.status, 413, "{}", a.text);
    assert!(a.error().contains("larger than"), "{}", a.text);
    let ok = s.post("/v2.1/projects/p/webhooks", webhook("small")).await;
    assert_eq!(ok.status, 201, "{}", ok.text);

    // The default limit is 1 MiB.
    let d = start().await;
    let mut e = serde_json::json!({"event": "e", "object_type": "t", "object_name": "n"});
    e["data"] = serde_json::json!("y".repeat(1024 * 1024 + 10));
    let a = d.post("/v2.1/projects/p/events", e).await;
    assert_eq!(a.status, 413, "{}", &a.text[..a.text.len().min(200)]);
    let mut e = serde_json::json!({"event": "e", "object_type": "t", "object_name": "n"});
    e["data"] = serde_json::json!("y".repeat(1000 * 1000));
    assert_eq!(d.post("/v2.1/projects/p/events", e).await.status, 202);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let s = start().await;
    let a = s.get("/v2.1/projects/p/nothing-here").await;
    assert_eq!(a.status, 404, "{}", a.text);
    assert!(a.error().contains("no route"));
    let a = s.get("/nope").await;
    assert_eq!(a.status, 404);
    assert!(!a.error().is_empty());
    let a = s.call(Method::PUT, "/v2.1/projects/p/webhooks", None).await;
    assert_eq!(a.status, 405, "{}", a.text);
    assert!(a.error().contains("PUT"));
    let a = s.call(Method::DELETE, "/health", None).await;
    assert_eq!(a.status, 405, "{}", a.text);
}

#[tokio::test]
async fn bad_paths_and_query_strings_are_400_or_no_match() {
    let s = start().await;
    let a = s.get("/v2.1/projects/%FF%FE/webhooks").await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(!a.error().is_empty());
    let a = s
        .get(&format!("/v2.1/projects/{}/webhooks", "p".repeat(65)))
        .await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(a.error().starts_with("project:"), "{}", a.text);
    for query in [
        "labels=%FF",
        "labels=%",
        "event=%E2%82",
        "object_type=&labels=",
    ] {
        let a = s.get(&format!("/v2.1/projects/p/webhooks?{query}")).await;
        assert!(
            a.status == 200 || a.status == 400,
            "{query}: {} {}",
            a.status,
            a.text
        );
        assert!(
            a.body.is_array() || a.body["error"].is_string(),
            "{query}: {}",
            a.text
        );
    }
}

#[tokio::test]
async fn an_invalid_project_in_the_path_is_a_400_naming_it() {
    let s = start().await;
    for (method, path) in [
        (Method::GET, "/v2.1/projects/bad%20name/webhooks"),
        (Method::GET, "/v2.1/projects/a%2Fb/webhooks/w1"),
        (Method::POST, "/v2.1/projects/bad%20name/events"),
        (Method::GET, "/v2.1/projects/bad%20name/deliveries"),
        (
            Method::GET,
            "/v2.1/projects/bad%20name/webhooks/w1/recoveries/r1",
        ),
    ] {
        let a = s
            .raw(method.clone(), path, Some(AUTH), b"{}".to_vec())
            .await;
        assert_eq!(a.status, 400, "{method} {path}: {}", a.text);
        assert_eq!(a.body["field"], "project", "{method} {path}: {}", a.text);
        assert!(
            a.error().contains("may contain only letters"),
            "{method} {path}: {}",
            a.text
        );
    }
}

#[tokio::test]
async fn a_create_names_the_first_missing_field_and_a_wrong_type_before_it() {
    let s = start().await;
    let path = "/v2.1/projects/p/webhooks";
    let without = |fields: &[&str]| {
        let mut body = webhook("a");
        for f in fields {
            body.as_object_mut().unwrap().remove(*f);
        }
        body
    };
    let mut wrong_type = without(&["name"]);
    wrong_type["timeout"] = serde_json::json!("ten");
    let mut nulls = without(&[]);
    for f in ["version", "token", "max_concurrency", "rate_limit"] {
        nulls[f] = serde_json::Value::Null;
    }
    for (body, field) in [
        (serde_json::json!({}), "name"),
        (without(&["url", "event"]), "url"),
        (without(&["object_type", "object_name"]), "object_type"),
        (without(&["object_name"]), "object_name"),
        (without(&["event"]), "event"),
        (wrong_type, "timeout"),
    ] {
        let a = s.post(path, body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert!(
            a.error().starts_with(&format!("{field}: ")),
            "{body}: {}",
            a.text
        );
        if field != "timeout" {
            assert_eq!(a.error(), format!("{field}: is required"), "{body}");
        }
    }
    // For a create, null is the same as absent: no token, no limits, any version.
    let a = s.post(path, nulls).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let got = s.get("/v2.1/projects/p/webhooks/a").await;
    assert_eq!(got.body["version"], serde_json::Value::Null, "{}", got.text);
    assert_eq!(
        got.body["rate_limit"],
        serde_json::Value::Null,
        "{}",
        got.text
    );
}

#[tokio::test]
async fn an_id_that_cannot_be_a_delivery_id_is_not_found() {
    let s = start().await;
    for (path, want) in [
        (
            "/v2.1/projects/p/deliveries/d1:attempts",
            "delivery \"d1:attempts\" not found",
        ),
        (
            "/v2.1/projects/p/webhooks-tests/d1:attempts",
            "webhook test \"d1:attempts\" not found",
        ),
        (
            "/v2.1/projects/p/deliveries/d1",
            "delivery \"d1\" not found",
        ),
    ] {
        let a = s.get(path).await;
        assert_eq!(a.status, 404, "{path}: {}", a.text);
        assert_eq!(a.error(), want, "{path}");
    }
    let a = s
        .post(
            "/v2.1/projects/p/deliveries/d1:attempts/redeliver",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(a.status, 404, "{}", a.text);
}
