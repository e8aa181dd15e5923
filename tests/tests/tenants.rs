//! The findings of a security review, closed, with the release binary and a real
//! redis-server: per-project tokens through the binary (roles, other projects, revocation
//! across two API processes), no secret echoed in an answer or the debug log, query strings
//! kept out of the log, echoed secrets redacted in stored answers, special-purpose targets
//! refused, `.`/`..` refused as names, and every 400 naming its field.
//!
//! ```sh
//! cargo test -p hookrelay-tests --test tenants -- --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_tests::support::{auth_json, leaked, raw_call, raw_http};
use hookrelay_tests::{Api, Env, RedisServer, TOKEN, event, webhook};
use serde_json::{Value, json};

const PROJECT: &str = "tenants";
const EVENT: &str = "deployment_request_finished";

/// Sends `body` (any bytes) with `token`; returns status and JSON.
async fn call_as(
    base: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, Value) {
    let headers = vec![
        ("authorization".to_owned(), format!("Bearer {token}")),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    let a = raw_call(method, &format!("{base}/v2.1{path}"), &headers, body)
        .await
        .unwrap();
    (a.status, a.json())
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    Some(serde_json::to_vec(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_tokens_through_the_binary() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let serve = env.spawn("serve").await;
    let other_api = env.spawn("api").await;
    let api = Api::new(&serve.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook("elsewhere", webhook("theirs", &rx.url("/x"), EVENT))
        .await;

    let mut tokens = std::collections::HashMap::new();
    for role in ["viewer", "editor", "admin"] {
        let (status, t) = api
            .call(
                "POST",
                &format!("/projects/{PROJECT}/tokens"),
                Some(json!({"name": role, "role": role})),
            )
            .await;
        assert_eq!(status, 201, "{t}");
        tokens.insert(role, t["token"].as_str().unwrap().to_owned());
    }
    let (_, list) = api
        .call("GET", &format!("/projects/{PROJECT}/tokens"), None)
        .await;
    assert_eq!(list.as_array().unwrap().len(), 3);
    let secrets: Vec<&str> = tokens.values().map(String::as_str).collect();
    assert_eq!(
        leaked(&list.to_string(), &secrets),
        Vec::<&str>::new(),
        "{list}"
    );

    // The editor creates a webhook and publishes; the delivery goes out.
    let editor = &tokens["editor"];
    let (status, created) = call_as(
        &serve.base,
        editor,
        "POST",
        &format!("/projects/{PROJECT}/webhooks"),
        bytes(&webhook("w", &rx.url("/hook"), EVENT)),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert!(created.get("signing_secret").is_none(), "{created}");
    let (status, published) = call_as(
        &serve.base,
        editor,
        "POST",
        &format!("/projects/{PROJECT}/events"),
        bytes(&event(EVENT, json!({}))),
    )
    .await;
    assert_eq!(status, 202, "{published}");
    let id = published["deliveries"][0].as_str().unwrap().to_owned();

    // The viewer reads it, and may not change anything or read the secret.
    let viewer = &tokens["viewer"];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, d) = call_as(
            &serve.base,
            viewer,
            "GET",
            &format!("/projects/{PROJECT}/deliveries/{id}"),
            None,
        )
        .await;
        assert_eq!(status, 200, "{d}");
        if d["status"] == "succeeded" {
            break;
        }
        assert!(Instant::now() < deadline, "never delivered: {d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (method, path, want) in [
        ("GET", format!("/projects/{PROJECT}/webhooks/w/secret"), 403),
        ("DELETE", format!("/projects/{PROJECT}/webhooks/w"), 403),
        (
            "POST",
            format!("/projects/{PROJECT}/deliveries/{id}/redeliver"),
            403,
        ),
        ("GET", "/projects/elsewhere/webhooks".to_owned(), 404),
        ("GET", "/projects/elsewhere/webhooks/theirs".to_owned(), 404),
    ] {
        let (status, a) = call_as(&serve.base, viewer, method, &path, None).await;
        assert_eq!(status, want, "viewer {method} {path}: {a}");
    }
    // The admin token reads the secret of its own project only.
    let admin = &tokens["admin"];
    let (status, s) = call_as(
        &serve.base,
        admin,
        "GET",
        &format!("/projects/{PROJECT}/webhooks/w/secret"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{s}");
    let (status, _) = call_as(
        &serve.base,
        admin,
        "GET",
        "/projects/elsewhere/webhooks/theirs/secret",
        None,
    )
    .await;
    assert_eq!(status, 404);

    // Revoked through one process, refused by both within a second.
    for base in [&serve.base, &other_api.base] {
        let (status, _) = call_as(
            base,
            editor,
            "GET",
            &format!("/projects/{PROJECT}/webhooks"),
            None,
        )
        .await;
        assert_eq!(status, 200);
    }
    let (status, _) = call_as(
        &serve.base,
        admin,
        "DELETE",
        &format!("/projects/{PROJECT}/tokens/editor"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let revoked = Instant::now();
    for base in [&serve.base, &other_api.base] {
        loop {
            let (status, _) = call_as(
                base,
                editor,
                "GET",
                &format!("/projects/{PROJECT}/webhooks"),
                None,
            )
            .await;
            if status == 401 {
                break;
            }
            assert!(
                revoked.elapsed() < Duration::from_secs(1),
                "{base} still takes a revoked token"
            );
        }
    }
    let log = format!("{}{}", serve.logs(), other_api.logs());
    assert_eq!(
        leaked(&log, &secrets),
        Vec::<&str>::new(),
        "a project token is in the log"
    );
    println!(
        "tenants: 3 roles checked through the binary; revocation seen by 2 processes within {:?}",
        revoked.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_is_echoed_or_logged_and_stored_answers_are_redacted() {
    const HOOK_TOKEN: &str = "hook-token-SECRET-31c9aa";
    const HEADER_VALUE: &str = "header-value-SECRET-0be4d2";
    const NUMERIC: &str = "987654321012";
    const IN_QUERY: &str = "query-token-SECRET-77f0c1";
    let redis = RedisServer::start();
    let serve = Env::new(&redis)
        .set("RUST_LOG", "debug")
        .spawn("serve")
        .await;
    let api = Api::new(&serve.base);
    let url = |path: &str| format!("{}/v2.1{path}", serve.base);

    // Secrets with the wrong type: the answer names the field and the expected type, never
    // the value — for the token, a protected header value and the signing secret.
    let wrong_types = [
        ("token", json!(987654321012u64), "token"),
        ("signing_secret", json!(987654321012u64), "signing_secret"),
        (
            "headers",
            json!([{"key": "X-Api-Key", "value": 987654321012u64, "protected": true}]),
            "headers[0].value",
        ),
        (
            "headers",
            json!([{"key": "X-Api-Key", "value": [987654321012u64], "protected": true}]),
            "headers[0].value",
        ),
        ("token", json!({"k": NUMERIC}), "token"),
    ];
    for (field, value, named) in wrong_types {
        let mut hook = webhook("typed", "https://example.com/", EVENT);
        hook[field] = value;
        let a = raw_call(
            "POST",
            &url(&format!("/projects/{PROJECT}/webhooks")),
            &auth_json(),
            bytes(&hook),
        )
        .await
        .unwrap();
        assert_eq!(a.status, 400, "{field}: {}", a.text);
        assert_eq!(a.json()["field"], named, "{}", a.text);
        assert!(a.error().contains("expected"), "{}", a.text);
        assert!(!a.text.contains(NUMERIC), "the value is echoed: {}", a.text);
    }

    // A token in the query string is refused and kept out of the log.
    let a = raw_call(
        "GET",
        &url(&format!("/projects/{PROJECT}/webhooks?token={IN_QUERY}")),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 401);
    let a = raw_call(
        "GET",
        &url(&format!("/projects/{PROJECT}/webhooks?token={IN_QUERY}")),
        &auth_json(),
        None,
    )
    .await
    .unwrap();
    assert_eq!(a.status, 200);

    // A receiver that echoes the request's secrets: stored answers show [redacted]. It
    // answers 500, because the whole answer is kept for an attempt that failed (of a
    // success only a summary is).
    let rx = Receiver::start(Reply::Custom {
        status: 500,
        headers: vec![
            (
                "X-Echo-Authorization".into(),
                format!("Bearer {HOOK_TOKEN}"),
            ),
            ("X-Echo-Key".into(), HEADER_VALUE.into()),
        ],
        body: format!(
            "{{\"authorization\":\"Bearer {HOOK_TOKEN}\",\"x-api-key\":\"{HEADER_VALUE}\"}}"
        ),
    })
    .await;
    let mut hook = webhook("echoed", &rx.url("/hook"), EVENT);
    hook["token"] = json!(HOOK_TOKEN);
    hook["headers"] = json!([{"key": "X-Api-Key", "value": HEADER_VALUE, "protected": true}]);
    api.create_webhook(PROJECT, hook).await;
    let ids = api.publish(PROJECT, event(EVENT, json!({}))).await;
    let d = api
        .wait_status(PROJECT, &ids[0], "failed", Duration::from_secs(20))
        .await;
    let (status, test) = api
        .call(
            "POST",
            &format!("/projects/{PROJECT}/webhooks/echoed/test"),
            None,
        )
        .await;
    assert_eq!(status, 202, "{test}");
    let t = api
        .wait_test(
            PROJECT,
            test["id"].as_str().unwrap(),
            Duration::from_secs(20),
        )
        .await;
    for shown in [&d, &t] {
        assert_eq!(
            leaked(&shown.to_string(), &[HOOK_TOKEN, HEADER_VALUE]),
            Vec::<&str>::new(),
            "{shown}"
        );
        assert!(shown.to_string().contains("[redacted]"), "{shown}");
    }
    // Not in Redis either: the kept answers (the hash's `response`, the attempts list).
    // The queued job itself carries the secrets, as it must to make the request.
    let mut conn = redis.connection();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("hr:delivery:*")
        .query(&mut conn)
        .unwrap();
    let mut looked = 0;
    for k in keys {
        let text = if k.ends_with(":attempts") {
            redis::cmd("LRANGE")
                .arg(&k)
                .arg(0)
                .arg(-1)
                .query::<Vec<String>>(&mut conn)
                .unwrap()
                .join("\n")
        } else {
            redis::cmd("HGET")
                .arg(&k)
                .arg("response")
                .query::<Option<String>>(&mut conn)
                .unwrap()
                .unwrap_or_default()
        };
        looked += usize::from(text.contains("[redacted]"));
        assert_eq!(
            leaked(&text, &[HOOK_TOKEN, HEADER_VALUE]),
            Vec::<&str>::new(),
            "{k}: {text}"
        );
    }
    assert!(looked >= 2, "no redacted answer found in Redis");
    let log = serve.logs();
    assert_eq!(
        leaked(&log, &[NUMERIC, IN_QUERY, HOOK_TOKEN, HEADER_VALUE, TOKEN]),
        Vec::<&str>::new(),
        "a secret is in the debug log"
    );
    assert!(
        log.contains("request refused"),
        "refusals are not logged at debug:\n{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_names_and_fields() {
    let redis = RedisServer::start();
    let serve = Env::new(&redis)
        .set("HOOKRELAY_ALLOWED_TARGETS", "")
        .spawn("api")
        .await;
    let url = |path: &str| format!("{}/v2.1{path}", serve.base);
    let post = |path: String, body: Vec<u8>| {
        let u = url(&path);
        async move {
            raw_call("POST", &u, &auth_json(), Some(body))
                .await
                .unwrap()
        }
    };

    // Special-purpose addresses that are not globally reachable are refused at creation.
    for (target, class) in [
        ("http://[::ffff:0:7f00:1]/", "reserved"),
        ("http://[100::1]/", "reserved"),
        ("http://[2001:db8::1]/", "reserved"),
        ("http://[3fff::1]/", "reserved"),
        ("http://[5f00::1]/", "reserved"),
        ("http://[2001:2::1]/", "reserved"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
    ] {
        let body = serde_json::to_vec(&webhook("t", target, EVENT)).unwrap();
        let a = post(format!("/projects/{PROJECT}/webhooks"), body).await;
        assert_eq!(a.status, 400, "{target}: {}", a.text);
        assert_eq!(a.json()["field"], "url", "{target}: {}", a.text);
        assert!(a.error().contains(class), "{target}: {}", a.text);
    }

    // `.` and `..` are no names.
    for name in [".", ".."] {
        let body = serde_json::to_vec(&webhook(name, "https://example.com/", EVENT)).unwrap();
        let a = post(format!("/projects/{PROJECT}/webhooks"), body).await;
        assert_eq!(a.status, 400, "{name}: {}", a.text);
        assert_eq!(a.json()["field"], "name", "{}", a.text);
        let body = serde_json::to_vec(&json!({"name": name, "role": "viewer"})).unwrap();
        let a = post(format!("/projects/{PROJECT}/tokens"), body).await;
        assert_eq!(a.json()["field"], "name", "{}", a.text);
    }
    // As a project, `..` is resolved away by HTTP clients; percent-encoded, it reaches us.
    // (Sent raw: URL parsers resolve `%2E%2E` too.)
    let addr = serve.base.trim_start_matches("http://").to_owned();
    for project in ["%2E%2E", "%2e"] {
        let (status, body) = raw_http(
            &addr,
            format!("GET /v2.1/projects/{project}/webhooks HTTP/1.1\r\nHost: x\r\nAuthorization: Token {TOKEN}\r\n\r\n"),
            Vec::new(),
        )
        .await
        .unwrap();
        assert_eq!(status, 400, "{project}: {body}");
        assert!(body.contains("\"field\":\"project\""), "{project}: {body}");
    }

    // Every 400 names its field.
    let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (br#"{"name":"a","url":"https://e.com/","object_type":"t","object_name":"n","event":"e","timeout":1e309}"#.to_vec(), "timeout"),
        (format!(r#"{{"event":"e","object_type":"t","object_name":"n","data":{deep}}}"#).into_bytes(), "data"),
        (br#"{"name":"a","url":"https://e.com/","object_type":"t","object_name":"n","event":"e","timeout":"10"}"#.to_vec(), "timeout"),
        (br#"{"name":"a","url":"https://e.com/","object_type":"t","object_name":"n"}"#.to_vec(), "event"),
        (b"{".to_vec(), "body"),
        (b"[]".to_vec(), "body"),
    ];
    for (body, field) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        let path = if field == "data" {
            "events"
        } else {
            "webhooks"
        };
        let a = post(format!("/projects/{PROJECT}/{path}"), body).await;
        assert_eq!(a.status, 400, "{shown}: {}", a.text);
        assert_eq!(a.json()["field"], field, "{shown}: {}", a.text);
    }
}
