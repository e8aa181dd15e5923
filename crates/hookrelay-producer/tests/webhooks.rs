//! Webhook CRUD over real HTTP and a real Redis: defaults, filters, rename, protected
//! headers, secrets, and the 401/404/409/400 answers.

#![allow(clippy::unwrap_used)]

mod common;

use common::{PREFIX, TOKEN, start, webhook};
use hookrelay_core::{Keys, Webhook};
use redis::Commands;
use reqwest::Method;
use serde_json::json;

#[tokio::test]
async fn create_applies_ubiops_defaults_and_shows_the_secret_once() {
    let s = start().await;
    let created = s.create_webhook(webhook("webhook-1")).await;
    assert_eq!(created["name"], "webhook-1");
    assert!(uuid_like(created["id"].as_str().unwrap()), "{created}");
    assert_eq!(created["headers"], json!([]));
    assert_eq!(created["description"], "");
    assert_eq!(created["labels"], json!({}));
    assert_eq!(created["version"], json!(null));
    assert_eq!(created["timeout"], 10);
    assert_eq!(created["enabled"], true);
    assert_eq!(created["retry"], false);
    assert_eq!(created["include_result"], false);
    assert_eq!(created["format"], "json");
    assert_eq!(created["github_actions"], false);
    assert_eq!(created["events"], json!([]));
    assert!(created["creation_date"].as_str().unwrap().ends_with('Z'));
    let secret = created["signing_secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");

    let got = s.get("/v2.1/projects/p/webhooks/webhook-1").await;
    assert_eq!(got.status, 200);
    assert!(got.body.get("signing_secret").is_none());
    assert!(!got.text.contains(secret));
    assert_eq!(got.body["id"], created["id"]);

    let secret_answer = s.get("/v2.1/projects/p/webhooks/webhook-1/secret").await;
    assert_eq!(secret_answer.status, 200);
    assert_eq!(secret_answer.body["signing_secret"], secret);

    // Stored as the core Webhook JSON in the project's hash, and the project is known.
    let keys = Keys::new(PREFIX);
    let mut conn = s.redis();
    let raw: String = conn.hget(keys.webhooks("p"), "webhook-1").unwrap();
    let stored: Webhook = serde_json::from_str(&raw).unwrap();
    assert_eq!(stored.signing_secret, secret);
    let projects: Vec<String> = conn.smembers(keys.projects()).unwrap();
    assert_eq!(projects, vec!["p".to_owned()]);
}

#[tokio::test]
async fn secrets_are_never_shown_by_get_or_list() {
    let s = start().await;
    let created = s
        .create_webhook(json!({
            "name": "secretive",
            "url": "https://hooks.example.com/in",
            "object_type": "model",
            "object_name": "m",
            "event": "createRelease",
            "token": "tok-VERY-SECRET",
            "signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "headers": [
                {"key": "Authorization", "value": "Token prot-VERY-SECRET", "protected": true},
                {"key": "X-Plain", "value": "plain-value", "protected": false}
            ]
        }))
        .await;
    assert_eq!(
        created["signing_secret"],
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    );
    let created_text = created.to_string();
    assert!(!created_text.contains("tok-VERY-SECRET"));
    assert!(!created_text.contains("prot-VERY-SECRET"));
    assert_eq!(created["headers"][0]["value"], json!(null));
    assert_eq!(created["headers"][0]["protected"], true);
    assert_eq!(created["headers"][1]["value"], "plain-value");

    for path in [
        "/v2.1/projects/p/webhooks/secretive",
        "/v2.1/projects/p/webhooks",
    ] {
        let a = s.get(path).await;
        assert_eq!(a.status, 200, "{}", a.text);
        for secret in [
            "tok-VERY-SECRET",
            "prot-VERY-SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert!(
                !a.text.contains(secret),
                "{path} shows {secret}: {}",
                a.text
            );
        }
        assert!(a.text.contains("plain-value"));
    }
    let patched = s
        .patch(
            "/v2.1/projects/p/webhooks/secretive",
            json!({"description": "d"}),
        )
        .await;
    assert_eq!(patched.status, 200);
    assert!(!patched.text.contains("VERY-SECRET"), "{}", patched.text);
    assert!(patched.body.get("signing_secret").is_none());

    // Whether a token is set is shown (the console says "set" or "not set"); the token never.
    assert_eq!(created["token_set"], true);
    assert_eq!(patched.body["token_set"], true);
    let cleared = s
        .patch(
            "/v2.1/projects/p/webhooks/secretive",
            json!({"token": null}),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.text);
    assert_eq!(cleared.body["token_set"], false);
    let listed = s.get("/v2.1/projects/p/webhooks").await;
    assert_eq!(listed.body[0]["token_set"], false);
}

#[tokio::test]
async fn list_filters_by_labels_object_type_and_event() {
    let s = start().await;
    let mut a = webhook("a");
    a["labels"] = json!({"env": "prod", "team": "x"});
    let mut b = webhook("b");
    b["labels"] = json!({"env": "prod", "team": "y"});
    b["object_type"] = json!("pipeline");
    b["event"] = json!("pipeline_request_finished");
    b["events"] = json!(["pipeline_request_failed"]);
    let mut c = webhook("c");
    c["labels"] = json!({"env": "dev"});
    for w in [c, a, b] {
        s.create_webhook(w).await;
    }
    let names = |path: &'static str| {
        let s = &s;
        async move {
            let a = s.get(path).await;
            assert_eq!(a.status, 200, "{}", a.text);
            a.body
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(names("/v2.1/projects/p/webhooks").await, ["a", "b", "c"]);
    assert_eq!(
        names("/v2.1/projects/p/webhooks?labels=env:prod").await,
        ["a", "b"]
    );
    assert_eq!(
        names("/v2.1/projects/p/webhooks?labels=env:prod,team:y").await,
        ["b"]
    );
    assert_eq!(
        names("/v2.1/projects/p/webhooks?labels=env%3Aprod%2Cteam%3Ax").await,
        ["a"]
    );
    assert!(
        names("/v2.1/projects/p/webhooks?labels=env:staging")
            .await
            .is_empty()
    );
    assert_eq!(
        names("/v2.1/projects/p/webhooks?object_type=deployment").await,
        ["a", "c"]
    );
    assert_eq!(
        names("/v2.1/projects/p/webhooks?event=pipeline_request_failed").await,
        ["b"]
    );
    assert_eq!(
        names("/v2.1/projects/p/webhooks?event=deployment_request_finished&labels=env:dev").await,
        ["c"]
    );
    assert!(names("/v2.1/projects/other/webhooks").await.is_empty());
    let bad = s.get("/v2.1/projects/p/webhooks?labels=nocolon").await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().starts_with("labels:"), "{}", bad.text);
}

#[tokio::test]
async fn patch_renames_atomically_and_refuses_taken_names() {
    let s = start().await;
    let created = s.create_webhook(webhook("old")).await;
    s.create_webhook(webhook("taken")).await;

    let taken = s
        .patch("/v2.1/projects/p/webhooks/old", json!({"name": "taken"}))
        .await;
    assert_eq!(taken.status, 409, "{}", taken.text);
    assert!(taken.error().contains("taken"));
    assert_eq!(s.get("/v2.1/projects/p/webhooks/old").await.status, 200);

    let renamed = s
        .patch(
            "/v2.1/projects/p/webhooks/old",
            json!({"name": "new", "timeout": 30, "enabled": false, "labels": {"k": "v"},
                   "version": "v2", "format": "comet", "events": ["e2"]}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "new");
    assert_eq!(renamed.body["id"], created["id"]);
    assert_eq!(renamed.body["timeout"], 30);
    assert_eq!(renamed.body["enabled"], false);
    assert_eq!(renamed.body["labels"], json!({"k": "v"}));
    assert_eq!(renamed.body["version"], "v2");
    assert_eq!(renamed.body["format"], "comet");
    assert_eq!(renamed.body["events"], json!(["e2"]));
    assert_eq!(renamed.body["creation_date"], created["creation_date"]);
    assert_eq!(s.get("/v2.1/projects/p/webhooks/old").await.status, 404);
    assert_eq!(s.get("/v2.1/projects/p/webhooks/new").await.status, 200);

    // null clears a nullable field; absent keeps it.
    let cleared = s
        .patch("/v2.1/projects/p/webhooks/new", json!({"version": null}))
        .await;
    assert_eq!(cleared.body["version"], json!(null));
    assert_eq!(cleared.body["timeout"], 30);

    let bad = s
        .patch("/v2.1/projects/p/webhooks/new", json!({"timeout": 31}))
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.error().starts_with("timeout:"), "{}", bad.text);
    let missing = s
        .patch("/v2.1/projects/p/webhooks/nope", json!({"timeout": 3}))
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn concurrent_renames_to_one_name_leave_exactly_one_winner() {
    let s = start().await;
    for i in 0..8 {
        s.create_webhook(webhook(&format!("w{i}"))).await;
    }
    let results = futures::future::join_all((0..8).map(|i| {
        let s = &s;
        async move {
            s.patch(
                &format!("/v2.1/projects/p/webhooks/w{i}"),
                json!({"name": "winner"}),
            )
            .await
            .status
        }
    }))
    .await;
    assert_eq!(
        results.iter().filter(|&&c| c == 200).count(),
        1,
        "{results:?}"
    );
    assert_eq!(
        results.iter().filter(|&&c| c == 409).count(),
        7,
        "{results:?}"
    );
    let list = s.get("/v2.1/projects/p/webhooks").await;
    assert_eq!(list.body.as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn a_protected_header_sent_as_null_keeps_its_value() {
    let s = start().await;
    let mut w = webhook("h");
    w["headers"] = json!([
        {"key": "Authorization", "value": "Token 123", "protected": true},
        {"key": "X-Team", "value": "a", "protected": false}
    ]);
    s.create_webhook(w).await;
    // What the UbiOps client sends for value=None: the value left out, or null.
    for header in [
        json!({"key": "Authorization", "protected": true}),
        json!({"key": "Authorization", "value": null, "protected": true}),
    ] {
        let a = s
            .patch(
                "/v2.1/projects/p/webhooks/h",
                json!({"headers": [header, {"key": "X-Team", "value": "b", "protected": false}]}),
            )
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        assert_eq!(a.body["headers"][0]["value"], json!(null));
        assert_eq!(a.body["headers"][1]["value"], "b");
        let stored = stored_webhook(&s, "h");
        assert_eq!(stored.headers[0].value, "Token 123");
        assert!(stored.headers[0].protected);
        assert_eq!(stored.headers[1].value, "b");
    }
    // A kept value cannot be revealed by dropping the protection in the same PATCH.
    let a = s
        .patch(
            "/v2.1/projects/p/webhooks/h",
            json!({"headers": [{"key": "Authorization", "value": null, "protected": false}]}),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body["headers"][0]["value"], json!(null));
    assert!(!a.text.contains("Token 123"));
    assert!(stored_webhook(&s, "h").headers[0].protected);
    // A new value replaces it.
    let a = s
        .patch(
            "/v2.1/projects/p/webhooks/h",
            json!({"headers": [{"key": "Authorization", "value": "Token 456", "protected": true}]}),
        )
        .await;
    assert_eq!(a.status, 200);
    let stored = stored_webhook(&s, "h");
    assert_eq!(stored.headers.len(), 1);
    assert_eq!(stored.headers[0].value, "Token 456");
    // A null value for a header the webhook does not have is an error naming it.
    let a = s
        .patch(
            "/v2.1/projects/p/webhooks/h",
            json!({"headers": [{"key": "X-New", "value": null, "protected": true}]}),
        )
        .await;
    assert_eq!(a.status, 400);
    assert!(a.error().starts_with("headers[0].value:"), "{}", a.text);
}

#[tokio::test]
async fn rotation_keeps_the_old_secret_signing_for_a_day() {
    let s = start().await;
    let created = s.create_webhook(webhook("r")).await;
    let old = created["signing_secret"].as_str().unwrap().to_owned();
    let rotated = s
        .call(
            Method::POST,
            "/v2.1/projects/p/webhooks/r/secret/rotate",
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let new = rotated.body["signing_secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert!(rotated.body["previous_secret_expires_at"].is_string());
    let stored = stored_webhook(&s, "r");
    assert_eq!(stored.signing_secret, new);
    let prev = stored.previous_secret.clone().unwrap();
    assert_eq!(prev.secret, old);
    let now = hookrelay_core::time::now_ms();
    let day = 24 * 3600 * 1000;
    assert!((prev.expires_at_ms - now - day).abs() < 60_000);
    assert_eq!(stored.signing_secrets(now), vec![new.clone(), old]);
    assert_eq!(
        s.get("/v2.1/projects/p/webhooks/r/secret").await.body["signing_secret"],
        new
    );
    let missing = s
        .call(
            Method::POST,
            "/v2.1/projects/p/webhooks/x/secret/rotate",
            None,
        )
        .await;
    assert_eq!(missing.status, 404);
}

#[tokio::test]
async fn delete_answers_204_then_404() {
    let s = start().await;
    s.create_webhook(webhook("d")).await;
    let a = s.delete("/v2.1/projects/p/webhooks/d").await;
    assert_eq!(a.status, 204);
    assert!(a.text.is_empty());
    assert_eq!(s.delete("/v2.1/projects/p/webhooks/d").await.status, 404);
    assert_eq!(s.get("/v2.1/projects/p/webhooks/d").await.status, 404);
    let mut conn = s.redis();
    let projects: Vec<String> = conn.smembers(Keys::new(PREFIX).projects()).unwrap();
    assert!(
        projects.is_empty(),
        "the last webhook gone, the project is forgotten"
    );
}

#[tokio::test]
async fn field_errors_name_the_field() {
    let s = start().await;
    s.create_webhook(webhook("dup")).await;
    let check = |body: serde_json::Value, status: u16, field: &'static str| {
        let s = &s;
        async move {
            let a = s.post("/v2.1/projects/p/webhooks", body.clone()).await;
            assert_eq!(a.status, status, "{body}: {}", a.text);
            assert!(
                a.error().contains(field),
                "{body}: error {:?} does not name {field}",
                a.error()
            );
        }
    };
    let with = |k: &str, v: serde_json::Value| {
        let mut w = webhook("fresh");
        w[k] = v;
        w
    };
    check(webhook("dup"), 409, "dup").await;
    check(with("timeout", json!(31)), 400, "timeout").await;
    check(with("timeout", json!(0)), 400, "timeout").await;
    check(with("timeout", json!("ten")), 400, "timeout").await;
    check(with("url", json!("ftp://example.com/x")), 400, "url").await;
    check(with("url", json!("not a url")), 400, "url").await;
    check(
        with("url", json!("http://127.0.0.1:9000/x")),
        400,
        "loopback",
    )
    .await;
    check(
        with("url", json!("http://169.254.169.254/latest")),
        400,
        "link-local",
    )
    .await;
    check(
        with("url", json!("http://10.1.2.3/x")),
        400,
        "HOOKRELAY_ALLOWED_TARGETS",
    )
    .await;
    check(with("name", json!("n".repeat(65))), 400, "name").await;
    check(with("name", json!(7)), 400, "name").await;
    check(with("format", json!("xml")), 400, "format").await;
    check(with("enabled", json!("yes")), 400, "enabled").await;
    check(with("labels", json!({"k": 1})), 400, "labels").await;
    check(
        with("headers", json!([{"key": "X"}])),
        400,
        "headers[0].value",
    )
    .await;
    check(with("headers", json!([{"value": "v"}])), 400, "headers[0]").await;
    check(
        with("headers", json!([{"key": "Content-Type", "value": "x"}])),
        400,
        "headers[0].key",
    )
    .await;
    check(with("signing_secret", json!("nope")), 400, "signing_secret").await;
    check(with("token", json!("has space")), 400, "token").await;
    check(
        with("description", json!("d".repeat(401))),
        400,
        "description",
    )
    .await;
    let mut missing = webhook("m");
    missing.as_object_mut().unwrap().remove("url");
    check(missing, 400, "url").await;
    // Unknown fields are ignored.
    let a = s
        .post(
            "/v2.1/projects/p/webhooks",
            with("no_such_field", json!([1, 2])),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    // A bad project name in the path.
    let a = s
        .post("/v2.1/projects/bad%20name/webhooks", webhook("x"))
        .await;
    assert_eq!(a.status, 400);
    assert!(a.error().starts_with("project:"), "{}", a.text);
}

#[tokio::test]
async fn allowed_targets_accept_literal_private_addresses() {
    let s = common::start_with(|settings| {
        settings.policy = hookrelay_core::target::TargetPolicy::parse("127.0.0.0/8").unwrap();
    })
    .await;
    let mut w = webhook("local");
    w["url"] = json!("http://127.0.0.1:9000/hook");
    s.create_webhook(w).await;
    let mut w = webhook("private");
    w["url"] = json!("http://10.0.0.1/hook");
    let a = s.post("/v2.1/projects/p/webhooks", w).await;
    assert_eq!(a.status, 400);
}

#[tokio::test]
async fn missing_or_wrong_token_is_401() {
    let s = start().await;
    let path = "/v2.1/projects/p/webhooks";
    for auth in [
        None,
        Some("Token wrong"),
        Some("Bearer wrong"),
        Some(TOKEN),
        Some("Basic dXNlcjpwYXNz"),
        Some(&format!("Token {TOKEN}x") as &str),
    ] {
        let a = s.raw(Method::GET, path, auth, Vec::new()).await;
        assert_eq!(a.status, 401, "{auth:?}: {}", a.text);
        assert!(!a.error().is_empty());
        assert!(!a.text.contains("wrong"), "the token is not echoed");
    }
    let bearer = s
        .raw(
            Method::GET,
            path,
            Some(&format!("Bearer {TOKEN}")),
            Vec::new(),
        )
        .await;
    assert_eq!(bearer.status, 200);
    // A bad token is refused before the body is even looked at.
    let a = s
        .raw(
            Method::POST,
            path,
            Some("Token nope"),
            b"{not json".to_vec(),
        )
        .await;
    assert_eq!(a.status, 401);
}

fn stored_webhook(s: &common::Server, name: &str) -> Webhook {
    let mut conn = s.redis();
    let raw: String = conn.hget(Keys::new(PREFIX).webhooks("p"), name).unwrap();
    serde_json::from_str(&raw).unwrap()
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|&c| c == '-').count() == 4
}

#[tokio::test]
async fn a_corrupted_stored_webhook_is_a_500_that_quotes_nothing() {
    let s = start().await;
    s.create_webhook(webhook("good")).await;
    let mut conn = s.redis();
    let _: () = conn
        .hset(
            Keys::new(PREFIX).webhooks("p"),
            "broken",
            r#"{"token": "tok-SECRET", "timeout": "whsec_SECRET"}"#,
        )
        .unwrap();
    let a = s.get("/v2.1/projects/p/webhooks/broken").await;
    assert_eq!(a.status, 500, "{}", a.text);
    assert!(!a.text.contains("SECRET"), "{}", a.text);
    assert!(a.error().contains("does not decode"), "{}", a.text);
    // The list and the fan-out leave it out and go on.
    let list = s.get("/v2.1/projects/p/webhooks").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    let published = s
        .post(
            "/v2.1/projects/p/events",
            json!({"event": "deployment_request_finished", "object_type": "deployment",
                   "object_name": "deployment-1", "data": {}}),
        )
        .await;
    assert_eq!(published.status, 202);
    assert_eq!(published.body["deliveries"].as_array().unwrap().len(), 1);
}
