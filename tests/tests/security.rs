//! hookrelay at its edges, with the release binary, a real redis-server per test and real
//! HTTP: which targets it refuses, that the API has no anonymous access, that secrets never
//! show up in logs or answers, that bad input of every kind gets a clear 4xx (never a 500,
//! never a crash), that bad settings stop start-up naming the setting, and that records
//! expire while finished jobs leave nothing in the queue.
//!
//! ```sh
//! cargo test -p hookrelay-tests --test security -- --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_tests::support::{
    RawAnswer, auth_json, is_running, keys, keys_with_ttl, leaked, lines_with, queue_depths,
    raw_call, raw_http, run_binary, wait_settled,
};
use hookrelay_tests::{Api, Env, RedisServer, TOKEN, event, webhook};
use serde_json::{Value, json};

const PROJECT: &str = "edge";
const EVENT: &str = "deployment_request_finished";

/// The message of a refused loopback target, as the README documents it.
const LOOPBACK_REFUSED: &str =
    "target 127.0.0.1 is a loopback address; allow it with HOOKRELAY_ALLOWED_TARGETS";

/// With no allowed targets: a hostname that resolves to loopback is refused at delivery (the
/// receiver never even sees a connection), and literal internal addresses at creation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_targets_are_refused() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_ALLOWED_TARGETS", "");
    let serve = env.spawn("serve").await;
    let api = Api::new(&serve.base);
    let rx = Receiver::start(Reply::Status(200)).await;

    let by_name = format!("http://localhost:{}/hook", rx.port());
    api.create_webhook(PROJECT, webhook("by-name", &by_name, EVENT))
        .await;
    let ids = api.publish(PROJECT, event(EVENT, json!({}))).await;
    let d = api
        .wait_status(PROJECT, &ids[0], "failed", Duration::from_secs(20))
        .await;
    assert_eq!(d["attempts"][0]["error"], LOOPBACK_REFUSED, "{d}");
    assert_eq!(d["attempts"][0]["status_code"], Value::Null);

    // A UbiOps webhook test to the same name is refused the same way.
    let (status, t) = api
        .call(
            "POST",
            &format!("/projects/{PROJECT}/webhooks-tests"),
            Some(json!({"url": by_name, "object_type": "deployment", "object_name": "d1", "event": EVENT})),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    let test_path = format!(
        "/projects/{PROJECT}/webhooks-tests/{}",
        t["id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let t = loop {
        let (_, t) = api.call("GET", &test_path, None).await;
        if t["status"] != "pending" {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "test never ran: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(t["status"], "failed", "{t}");
    assert_eq!(t["error_message"], LOOPBACK_REFUSED, "{t}");
    assert_eq!(rx.count(), 0);
    assert_eq!(rx.connections(), 0, "a refused target was connected to");

    // Literal internal addresses: refused when the webhook is created or changed. The last
    // ones are other spellings of 127.0.0.1 and ::1 that URL parsing normalises.
    let literals = [
        "http://127.0.0.1:9/",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://192.168.1.10/",
        "http://0.0.0.0/",
        "http://[fe80::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://2130706433/",
        "http://0x7f.0.0.1/",
    ];
    for (i, url) in literals.iter().enumerate() {
        let (status, body) = api
            .call(
                "POST",
                &format!("/projects/{PROJECT}/webhooks"),
                Some(webhook(&format!("literal-{i}"), url, EVENT)),
            )
            .await;
        assert_eq!(status, 400, "{url} was accepted: {body}");
        assert_eq!(body["field"], "url", "{url}: {body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap_or("")
                .contains("HOOKRELAY_ALLOWED_TARGETS"),
            "{url}: {body}"
        );
        println!("targets: {url:45} → {status} {}", body["error"]);
    }
    let (status, body) = api
        .call(
            "PATCH",
            &format!("/projects/{PROJECT}/webhooks/by-name"),
            Some(json!({"url": "http://169.254.169.254/"})),
        )
        .await;
    assert_eq!(status, 400, "PATCH to a metadata address: {body}");
    println!("targets: localhost → {LOOPBACK_REFUSED:?} at delivery; receiver connections: 0");
}

/// No anonymous access: no header, another scheme, a wrong token → 401, on every route; a
/// wrong token is logged, without the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_has_no_anonymous_access() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("RUST_LOG", "debug");
    let serve = env.spawn("serve").await;
    const WRONG: &str = "wrong-token-SECRET-4f9a1c";
    let routes = [
        ("GET", format!("/v2.1/projects/{PROJECT}/webhooks")),
        ("POST", format!("/v2.1/projects/{PROJECT}/webhooks")),
        ("GET", format!("/v2.1/projects/{PROJECT}/webhooks/w")),
        ("GET", format!("/v2.1/projects/{PROJECT}/webhooks/w/secret")),
        ("POST", format!("/v2.1/projects/{PROJECT}/events")),
        ("GET", format!("/v2.1/projects/{PROJECT}/deliveries")),
        ("POST", format!("/v2.1/projects/{PROJECT}/webhooks-tests")),
    ];
    let headers: [Option<String>; 6] = [
        None,
        Some(format!("Basic {TOKEN}")),
        Some(TOKEN.to_owned()),
        Some(format!("Token {WRONG}")),
        Some(format!("Bearer {TOKEN}x")),
        Some("Token ".to_owned()),
    ];
    let body = serde_json::to_vec(&webhook("w", "https://example.com/", EVENT)).unwrap();
    let mut refused = 0;
    for (method, path) in &routes {
        for h in &headers {
            let mut hs = vec![("content-type".to_owned(), "application/json".to_owned())];
            if let Some(v) = h {
                hs.push(("authorization".to_owned(), v.clone()));
            }
            let a = raw_call(
                method,
                &format!("{}{path}", serve.base),
                &hs,
                Some(body.clone()),
            )
            .await
            .unwrap();
            assert_eq!(a.status, 401, "{method} {path} with {h:?}: {}", a.text);
            assert!(!a.error().is_empty(), "no JSON error: {}", a.text);
            assert!(a.headers.contains_key("www-authenticate"));
            assert!(
                !a.text.contains(WRONG) && !a.text.contains(TOKEN),
                "the answer echoes a token"
            );
            refused += 1;
        }
    }
    // Nothing was created by any of them.
    let api = Api::new(&serve.base);
    let (status, list) = api
        .call("GET", &format!("/projects/{PROJECT}/webhooks"), None)
        .await;
    assert_eq!((status, list), (200, json!([])));
    let log = serve.logs();
    assert!(
        lines_with(&log, "request refused") > 0,
        "wrong tokens are not logged:\n{log}"
    );
    assert_eq!(
        leaked(&log, &[WRONG, TOKEN]),
        Vec::<&str>::new(),
        "a token is in the log"
    );
    println!(
        "auth: {refused} anonymous or wrong-token requests → 401; {} refusal line(s) logged, no token in them",
        lines_with(&log, "request refused")
    );
}

/// Secrets (API token, webhook token, protected header value, signing secret, a wrong token
/// tried) never appear in the trace-level log, nor in any GET or list answer; the signing
/// secret only in the create answer and from `…/secret`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_or_answers() {
    const HOOK_TOKEN: &str = "hook-token-SECRET-7d2e9b";
    const HEADER_VALUE: &str = "header-value-SECRET-a81c3f";
    // whsec_ + base64 of the 32 bytes "signing-key-SECRET-0123456789abc".
    const SIGNING: &str = "whsec_c2lnbmluZy1rZXktU0VDUkVULTAxMjM0NTY3ODlhYmM=";
    const SIGNING_KEY: &str = "c2lnbmluZy1rZXktU0VDUkVULTAxMjM0NTY3ODlhYmM=";
    const WRONG: &str = "wrong-token-SECRET-55e0d4";
    let secrets = [TOKEN, HOOK_TOKEN, HEADER_VALUE, SIGNING, SIGNING_KEY, WRONG];

    let redis = RedisServer::start();
    let env = Env::new(&redis).set("RUST_LOG", "trace");
    let mut serve = env.spawn("serve").await;
    let api = Api::new(&serve.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    rx.queue_replies([Reply::Status(500)]);

    let mut hook = webhook("secret-hook", &rx.url("/hook"), EVENT);
    hook["token"] = json!(HOOK_TOKEN);
    hook["signing_secret"] = json!(SIGNING);
    hook["retry"] = json!(true);
    hook["headers"] = json!([
        {"key": "X-Api-Key", "value": HEADER_VALUE, "protected": true},
        {"key": "X-Plain", "value": "plain-visible", "protected": false},
    ]);
    let created = api.create_webhook(PROJECT, hook).await;
    assert_eq!(
        created["signing_secret"], SIGNING,
        "the create answer shows the secret once"
    );
    let mut without_secret = created.clone();
    without_secret
        .as_object_mut()
        .unwrap()
        .remove("signing_secret");
    assert_eq!(
        leaked(&without_secret.to_string(), &secrets),
        Vec::<&str>::new(),
        "{created}"
    );
    assert_eq!(created["headers"][0]["value"], Value::Null);
    assert_eq!(created["headers"][1]["value"], "plain-visible");

    // A delivery that fails once, then succeeds.
    let ids = api.publish(PROJECT, event(EVENT, json!({"n": 1}))).await;
    let d = api
        .wait_status(PROJECT, &ids[0], "succeeded", Duration::from_secs(20))
        .await;
    assert_eq!(d["attempts"].as_array().map(Vec::len), Some(2), "{d}");
    let got = rx.requests();
    assert_eq!(got.len(), 2);
    // The secrets did their job on the wire.
    let r = &got[1];
    assert_eq!(
        r.header("authorization"),
        Some(format!("Bearer {HOOK_TOKEN}").as_str())
    );
    assert_eq!(r.header("x-api-key"), Some(HEADER_VALUE));
    let ts: i64 = r.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(hookrelay_core::signing::verify(
        SIGNING,
        r.header("webhook-id").unwrap(),
        ts,
        &r.body,
        r.header("webhook-signature").unwrap()
    ));

    // Every read: none may show a secret.
    let test = api
        .call(
            "POST",
            &format!("/projects/{PROJECT}/webhooks/secret-hook/test"),
            None,
        )
        .await;
    assert!(test.0 == 202 || test.0 == 201, "{test:?}");
    let wrong = raw_call(
        "GET",
        &format!("{}/v2.1/projects/{PROJECT}/webhooks", serve.base),
        &[("authorization".into(), format!("Token {WRONG}"))],
        None,
    )
    .await
    .unwrap();
    assert_eq!(wrong.status, 401);
    let reads = [
        format!("/projects/{PROJECT}/webhooks"),
        format!("/projects/{PROJECT}/webhooks?event={EVENT}"),
        format!("/projects/{PROJECT}/webhooks/secret-hook"),
        format!("/projects/{PROJECT}/deliveries"),
        format!("/projects/{PROJECT}/deliveries/{}", ids[0]),
        format!(
            "/projects/{PROJECT}/webhooks-tests/{}",
            test.1["id"].as_str().unwrap_or("")
        ),
    ];
    for path in &reads {
        let (status, body) = api.call("GET", path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(
            leaked(&body.to_string(), &secrets),
            Vec::<&str>::new(),
            "GET {path}: {body}"
        );
    }
    for path in ["/metrics", "/openapi.json"] {
        let text = reqwest::get(format!("{}{path}", serve.base))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert_eq!(leaked(&text, &secrets), Vec::<&str>::new(), "{path}");
    }
    // A PATCH that keeps the protected value (null) answers without it.
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/projects/{PROJECT}/webhooks/secret-hook"),
            Some(json!({"headers": [{"key": "X-Api-Key", "value": null, "protected": true}], "description": "patched"})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!(
        leaked(&patched.to_string(), &secrets),
        Vec::<&str>::new(),
        "{patched}"
    );
    // The secret endpoint is the one place the signing secret is shown.
    let (status, s) = api
        .call(
            "GET",
            &format!("/projects/{PROJECT}/webhooks/secret-hook/secret"),
            None,
        )
        .await;
    assert_eq!((status, s["signing_secret"].as_str()), (200, Some(SIGNING)));

    // More secrets: a rotated signing secret, a token set by PATCH, a test of an unsaved
    // webhook with a token and a protected header.
    const PATCHED_TOKEN: &str = "patched-token-SECRET-0b7c11";
    const TEST_TOKEN: &str = "test-token-SECRET-e3f2aa";
    const TEST_HEADER: &str = "test-header-SECRET-91d0c4";
    let (status, rotated) = api
        .call(
            "POST",
            &format!("/projects/{PROJECT}/webhooks/secret-hook/secret/rotate"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["signing_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, SIGNING);
    let new_key = new_secret.trim_start_matches("whsec_").to_owned();
    let (status, patched) = api
        .call(
            "PATCH",
            &format!("/projects/{PROJECT}/webhooks/secret-hook"),
            Some(json!({"token": PATCHED_TOKEN})),
        )
        .await;
    assert_eq!(status, 200, "{patched}");
    let (status, test) = api
        .call(
            "POST",
            &format!("/projects/{PROJECT}/webhooks-tests"),
            Some(json!({
                "url": rx.url("/test"), "object_type": "deployment", "object_name": "d1",
                "event": EVENT, "token": TEST_TOKEN,
                "headers": [{"key": "X-Test", "value": TEST_HEADER, "protected": true}],
            })),
        )
        .await;
    assert_eq!(status, 201, "{test}");
    let test_path = format!(
        "/projects/{PROJECT}/webhooks-tests/{}",
        test["id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let test_record = loop {
        let (_, t) = api.call("GET", &test_path, None).await;
        if t["status"] != "pending" {
            break t;
        }
        assert!(std::time::Instant::now() < deadline, "test never ran: {t}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let all_secrets: Vec<&str> = secrets
        .iter()
        .copied()
        .chain([
            PATCHED_TOKEN,
            TEST_TOKEN,
            TEST_HEADER,
            &new_secret,
            &new_key,
        ])
        .collect();
    let (_, one) = api
        .call(
            "GET",
            &format!("/projects/{PROJECT}/webhooks/secret-hook"),
            None,
        )
        .await;
    let (_, list) = api
        .call("GET", &format!("/projects/{PROJECT}/webhooks"), None)
        .await;
    for answer in [&patched, &test, &test_record, &one, &list] {
        assert_eq!(
            leaked(&answer.to_string(), &all_secrets),
            Vec::<&str>::new(),
            "{answer}"
        );
    }
    let (_, s) = api
        .call(
            "GET",
            &format!("/projects/{PROJECT}/webhooks/secret-hook/secret"),
            None,
        )
        .await;
    assert_eq!(s["signing_secret"].as_str(), Some(new_secret.as_str()));

    // Refused secrets are not echoed in the error either.
    let refused: [(&str, Value, &str); 4] = [
        (
            "signing_secret",
            json!("whsec_not-base64-SECRET-77!!"),
            "not-base64-SECRET-77",
        ),
        (
            "token",
            json!(format!("long-SECRET-{}", "t".repeat(5000))),
            "long-SECRET-",
        ),
        (
            "headers",
            json!([{"key": "X-K", "value": "bad\nvalue-SECRET-3c", "protected": true}]),
            "value-SECRET-3c",
        ),
        (
            "url",
            json!("https://user:pw-SECRET-5d@example.com/"),
            "pw-SECRET-5d",
        ),
    ];
    for (field, value, secret) in refused {
        let mut w = webhook("refused", "https://example.com/", EVENT);
        w[field] = value;
        let (status, body) = api
            .call("POST", &format!("/projects/{PROJECT}/webhooks"), Some(w))
            .await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(
            !body.to_string().contains(secret),
            "{field}: the error echoes the secret: {body}"
        );
    }

    // The whole trace-level log, once the process has stopped and flushed.
    let code = serve.terminate(Duration::from_secs(40));
    assert_eq!(code, Some(0));
    let log = serve.logs();
    assert!(
        log.lines().count() > 50,
        "expected a trace-level log, got:\n{log}"
    );
    let found = leaked(&log, &all_secrets);
    if !found.is_empty() {
        for line in log
            .lines()
            .filter(|l| found.iter().any(|s| l.contains(s)))
            .take(10)
        {
            println!("LEAK: {line}");
        }
    }
    assert_eq!(found, Vec::<&str>::new(), "secrets in the trace-level log");
    println!(
        "secrets: {} log lines at trace level, {} answers read, 4 refusals: none shows any of {} secrets",
        log.lines().count(),
        reads.len() + 10,
        all_secrets.len()
    );
}

/// One bad request: what it is, and what came back.
async fn bad(
    base: &str,
    label: &str,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> RawAnswer {
    let a = raw_call(method, &format!("{base}{path}"), headers, body)
        .await
        .unwrap_or_else(|e| panic!("{label}: no answer: {e}"));
    let shown: String = a.text.chars().take(140).collect();
    println!("bad input: {label:28} → {} {shown}", a.status);
    assert!(a.status < 500, "{label}: {} {}", a.status, a.text);
    a
}

/// Asserts a 4xx JSON error that contains `needle`.
fn assert_error(a: &RawAnswer, status: u16, needle: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    let error = a.error();
    assert!(
        error.contains(needle),
        "wanted {needle:?} in the error, got {:?}",
        a.text
    );
}

/// Bad input at the API edge: each a clear 4xx naming what is wrong, never a 500, and the
/// server stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let serve = env.spawn("serve").await;
    let base = serve.base.clone();
    let hooks = format!("/v2.1/projects/{PROJECT}/webhooks");
    let events = format!("/v2.1/projects/{PROJECT}/events");
    let auth = auth_json();
    let good = || webhook("good", "https://example.com/hook", EVENT);
    let with = |field: &str, value: Value| {
        let mut w = good();
        w[field] = value;
        serde_json::to_vec(&w).unwrap()
    };

    // (what, path, body, what the error must name): each a 400.
    let event_body = |v: Value| serde_json::to_vec(&v).unwrap();
    let cases: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            "malformed JSON",
            &hooks,
            b"{\"name\": ".to_vec(),
            "malformed JSON",
        ),
        (
            "trailing garbage",
            &hooks,
            [serde_json::to_vec(&good()).unwrap(), b" x".to_vec()].concat(),
            "malformed JSON",
        ),
        ("empty body", &hooks, Vec::new(), "empty body"),
        (
            "an array, not an object",
            &hooks,
            b"[1,2]".to_vec(),
            "JSON object",
        ),
        ("name is a number", &hooks, with("name", json!(1)), "name"),
        (
            "timeout is a string",
            &hooks,
            with("timeout", json!("x")),
            "timeout",
        ),
        (
            "timeout out of range",
            &hooks,
            with("timeout", json!(99)),
            "timeout",
        ),
        (
            "headers not a list",
            &hooks,
            with("headers", json!("x")),
            "headers",
        ),
        (
            "header without key",
            &hooks,
            with("headers", json!([{"value": "v"}])),
            "headers[0]",
        ),
        (
            "labels not an object",
            &hooks,
            with("labels", json!([1])),
            "labels",
        ),
        (
            "url not a URL",
            &hooks,
            with("url", json!("not a url")),
            "url",
        ),
        (
            "name of 65 characters",
            &hooks,
            with("name", json!("n".repeat(65))),
            "name",
        ),
        (
            "format unknown",
            &hooks,
            with("format", json!("xml")),
            "format",
        ),
        (
            "signing secret malformed",
            &hooks,
            with("signing_secret", json!("whsec_!!")),
            "signing_secret",
        ),
        (
            "invalid UTF-8",
            &hooks,
            b"{\"name\":\"\xff\xfe\"}".to_vec(),
            "UTF-8",
        ),
        (
            "event without data",
            &events,
            event_body(json!({"event": EVENT, "object_type": "deployment", "object_name": "d1"})),
            "data",
        ),
        (
            "event name is a list",
            &events,
            event_body(
                json!({"event": [1], "object_type": "deployment", "object_name": "d1", "data": {}}),
            ),
            "event",
        ),
    ];
    for (label, path, body, needle) in cases {
        let a = bad(&base, label, "POST", path, &auth, Some(body)).await;
        assert_error(&a, 400, needle);
    }

    // 10,000-deep nesting where the data is read: refused, no stack overflow.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let body = format!(
        r#"{{"event":"{EVENT}","object_type":"deployment","object_name":"d1","data":{deep}}}"#
    );
    let a = bad(
        &base,
        "10,000-deep data",
        "POST",
        &events,
        &auth,
        Some(body.into_bytes()),
    )
    .await;
    assert_error(&a, 400, "recursion limit");
    let deep_obj = format!("{}1{}", "{\"a\":".repeat(10_000), "}".repeat(10_000));
    let body = format!(
        r#"{{"event":"{EVENT}","object_type":"deployment","object_name":"d1","data":{deep_obj}}}"#
    );
    let a = bad(
        &base,
        "10,000-deep objects",
        "POST",
        &events,
        &auth,
        Some(body.into_bytes()),
    )
    .await;
    assert_error(&a, 400, "recursion limit");

    // Unknown fields are ignored (the UbiOps client may send fields of newer API versions),
    // never echoed back, however deep.
    let mut w = good();
    w["no_such_field"] = json!({"nested": deep});
    let a = bad(
        &base,
        "unknown fields",
        "POST",
        &hooks,
        &auth,
        Some(serde_json::to_vec(&w).unwrap()),
    )
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert!(a.json().get("no_such_field").is_none());

    // 20 MB: 413 with a JSON error (the limit is 1 MiB). The server answers as soon as the
    // limit is passed and closes, so the answer is read while the body is still being sent.
    let huge = format!(
        r#"{{"event":"{EVENT}","object_type":"deployment","object_name":"d1","data":"{}"}}"#,
        "x".repeat(20 * 1024 * 1024)
    );
    let head = format!(
        "POST {events} HTTP/1.1\r\nhost: {host}\r\nauthorization: Token {TOKEN}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        huge.len(),
        host = base.trim_start_matches("http://"),
    );
    let (status, text) = raw_http(base.trim_start_matches("http://"), head, huge.into_bytes())
        .await
        .expect("an answer to a 20 MB body");
    println!("bad input: {:28} → {status} {text}", "20 MB body");
    let error: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    assert_eq!(status, 413, "{text}");
    assert!(
        error["error"]
            .as_str()
            .unwrap_or("")
            .contains("larger than the limit"),
        "{text}"
    );

    // Thousands of headers, and one enormous header: refused by the HTTP layer with a 4xx.
    let mut many = auth.clone();
    many.extend((0..2000).map(|i| (format!("x-filler-{i}"), "v".to_owned())));
    let a = bad(&base, "2,000 headers", "GET", &hooks, &many, None).await;
    assert!(
        (400..500).contains(&a.status),
        "2,000 headers: {}",
        a.status
    );
    let mut fat = auth.clone();
    fat.push(("x-fat".to_owned(), "v".repeat(1024 * 1024)));
    match raw_call("GET", &format!("{base}{hooks}"), &fat, None).await {
        Ok(a) => {
            println!("bad input: {:28} → {}", "a 1 MiB header", a.status);
            assert!((400..500).contains(&a.status), "1 MiB header: {}", a.status);
        }
        // Closing the connection on a header this size is an acceptable answer too.
        Err(e) => println!(
            "bad input: {:28} → connection closed ({})",
            "a 1 MiB header",
            e.chars().take(80).collect::<String>()
        ),
    }

    // Paths and query strings.
    let a = bad(
        &base,
        "unknown route",
        "GET",
        "/v2.1/nothing/here",
        &auth,
        None,
    )
    .await;
    assert_error(&a, 404, "no route");
    let a = bad(&base, "wrong method", "DELETE", &events, &auth, None).await;
    assert_eq!(a.status, 405, "{}", a.text);
    assert!(!a.error().is_empty());
    let a = bad(
        &base,
        "bad project name",
        "GET",
        "/v2.1/projects/bad%20name%0A/webhooks",
        &auth,
        None,
    )
    .await;
    assert_error(&a, 400, "project");
    let a = bad(
        &base,
        "limit not a number",
        "GET",
        &format!("/v2.1/projects/{PROJECT}/deliveries?limit=abc"),
        &auth,
        None,
    )
    .await;
    assert_error(&a, 400, "limit");
    let a = bad(
        &base,
        "unknown status filter",
        "GET",
        &format!("/v2.1/projects/{PROJECT}/deliveries?status=bogus"),
        &auth,
        None,
    )
    .await;
    assert_error(&a, 400, "status");
    let addr = base.trim_start_matches("http://");
    let head = format!(
        "GET /v2.1/projects/{}/webhooks HTTP/1.1\r\nhost: {addr}\r\nauthorization: Token {TOKEN}\r\n\r\n",
        "p".repeat(100_000)
    );
    let (status, text) = raw_http(addr, head, Vec::new())
        .await
        .expect("an answer to a 100 KB path");
    println!(
        "bad input: {:28} → {status} {}",
        "a 100 KB path",
        text.chars().take(140).collect::<String>()
    );
    assert!((400..500).contains(&status), "100 KB path: {status}");

    // Still up, and never crashed.
    let health = reqwest::get(format!("{base}/health")).await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert!(is_running(serve.pid()));
    let log = serve.logs();
    assert_eq!(lines_with(&log, "panicked"), 0, "{log}");
}

/// `hookrelay publish` with bad arguments, and the binary with bad settings: a non-zero exit
/// and a message naming what is wrong, never a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_settings_stop_with_a_message() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let base_args = [
        "--project",
        PROJECT,
        "--event",
        EVENT,
        "--object-type",
        "deployment",
        "--object-name",
        "d1",
    ];
    let cases: [(&str, Vec<&str>, &str); 4] = [
        (
            "bad --data",
            [&base_args[..], &["--data", "{not json"]].concat(),
            "--data is not valid JSON",
        ),
        (
            "bad --result",
            [&base_args[..], &["--data", "{}", "--result", "[1,"]].concat(),
            "--result is not valid JSON",
        ),
        ("missing --data", base_args.to_vec(), "--data"),
        (
            "missing --event",
            vec!["--project", PROJECT, "--data", "{}"],
            "--event",
        ),
    ];
    for (label, args, needle) in cases {
        let env = env.clone();
        let (code, out, err) = tokio::task::spawn_blocking(move || env.publish(&args))
            .await
            .unwrap();
        println!(
            "publish {label:16} → exit {code}: {}",
            err.lines().next().unwrap_or("")
        );
        assert_ne!(code, 0, "{label}: {out}");
        assert!(err.contains(needle), "{label}: {err}");
        assert!(out.is_empty(), "{label} printed an answer: {out}");
    }

    let settings: [(&str, &str, &str, &str); 6] = [
        (
            "serve",
            "HOOKRELAY_RETRY_MULTIPLIER",
            "abc",
            "HOOKRELAY_RETRY_MULTIPLIER: must be a number",
        ),
        ("serve", "HOOKRELAY_LISTEN", "nowhere", "HOOKRELAY_LISTEN"),
        (
            "worker",
            "HOOKRELAY_RECOVERY_TIMEOUT_MS",
            "120000",
            "HOOKRELAY_RECOVERY_TIMEOUT_MS",
        ),
        (
            "worker",
            "HOOKRELAY_ALLOWED_TARGETS",
            "10.0.0.0/8,bogus",
            "HOOKRELAY_ALLOWED_TARGETS",
        ),
        ("api", "HOOKRELAY_API_TOKEN", "", "HOOKRELAY_API_TOKEN"),
        (
            "worker",
            "HOOKRELAY_CONCURRENCY",
            "-1",
            "HOOKRELAY_CONCURRENCY",
        ),
    ];
    for (role, name, value, needle) in settings {
        let env = env.clone().set(name, value);
        let (code, _, err) = tokio::task::spawn_blocking(move || {
            run_binary(&env, &[role], &[], Duration::from_secs(20))
        })
        .await
        .unwrap();
        println!(
            "{role} with {name}={value:?} → exit {code:?}: {}",
            err.trim()
        );
        assert_eq!(code, Some(2), "{role} {name}={value}: {err}");
        assert!(err.contains(needle), "{name}: {err}");
    }
}

/// Retention: delivery records, attempt lists, test records and event ids expire after
/// `HOOKRELAY_RETENTION_SECS`; finished jobs leave nothing in the `queue:*` keys; every key
/// without an expiry is one of the few that are kept on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_expire_and_the_queue_leaves_nothing() {
    let redis = RedisServer::start();
    let env = Env::new(&redis).set("HOOKRELAY_RETENTION_SECS", "60");
    let serve = env.spawn("serve").await;
    let api = Api::new(&serve.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    rx.set_path_reply("/broken", Reply::Status(500));
    rx.queue_replies([Reply::Status(503)]);
    let mut ok = webhook("ok", &rx.url("/ok"), EVENT);
    ok["retry"] = json!(true);
    api.create_webhook(PROJECT, ok).await;
    api.create_webhook(PROJECT, webhook("broken", &rx.url("/broken"), EVENT))
        .await;

    let mut ev = event(EVENT, json!({}));
    ev["id"] = json!("evt-retained");
    let ids = api.publish(PROJECT, ev).await;
    let (status, test) = api
        .call(
            "POST",
            &format!("/projects/{PROJECT}/webhooks/ok/test"),
            None,
        )
        .await;
    assert!(status == 202 || status == 201, "{test}");
    let (status, ubi) = api
        .call(
            "POST",
            &format!("/projects/{PROJECT}/webhooks-tests"),
            Some(json!({"url": rx.url("/ok"), "object_type": "deployment", "object_name": "d1", "event": EVENT})),
        )
        .await;
    assert_eq!(status, 201, "{ubi}");
    let mut all = ids.clone();
    all.push(test["id"].as_str().unwrap().to_owned());
    all.push(ubi["id"].as_str().unwrap().to_owned());

    wait_settled(&redis, Duration::from_secs(30)).await;
    let finished = hookrelay_tests::support::statuses(&redis, &all);
    assert!(
        finished.iter().all(|s| s == "succeeded" || s == "failed"),
        "{finished:?}"
    );

    let mut c = redis.connection();
    let k = keys();
    let mut ttl_keys = vec![
        k.event(PROJECT, "evt-retained"),
        k.payload(PROJECT, "evt-retained"),
    ];
    for id in &all {
        ttl_keys.push(k.delivery(&hookrelay_tests::support::delivery_id(id)));
        ttl_keys.push(k.attempts(&hookrelay_tests::support::delivery_id(id)));
    }
    for key in &ttl_keys {
        let ttl: i64 = redis::cmd("TTL").arg(key).query(&mut c).unwrap();
        if ttl == -2 && key.ends_with(":attempts") {
            // A delivery whose attempts all succeeded keeps them in its record: no list.
            continue;
        }
        assert!((1..=60).contains(&ttl), "{key}: TTL {ttl}, wanted 1..=60");
    }
    // Each webhook's endpoint state and the partition's turn counter stay; nothing else of
    // the queue does once the work is done.
    let part = k.partition(0);
    let mut endpoint_states = Vec::new();
    let mut failed_indexes = Vec::new();
    for name in ["ok", "broken"] {
        let (_, w) = api
            .call("GET", &format!("/projects/{PROJECT}/webhooks/{name}"), None)
            .await;
        let id = w["id"].as_str().unwrap();
        endpoint_states.push(part.endpoint(id).state);
        failed_indexes.push(part.endpoint_failed(id));
    }
    // History under the queue's tag, each with its expiry: the event's shared payload, the
    // failed deliveries' index, the project's activity counters.
    let payload = k.payload(PROJECT, "evt-retained");
    let minute_zero = part.activity(PROJECT, 0);
    let activity_prefix = minute_zero
        .strip_suffix('0')
        .unwrap_or(&minute_zero)
        .to_owned();
    let queue_keys: Vec<String> = redis::cmd("KEYS").arg("hr:{q0}:*").query(&mut c).unwrap();
    let left: Vec<&String> = queue_keys
        .iter()
        .filter(|k| {
            !endpoint_states.contains(k)
                && **k != part.meta()
                && **k != payload
                && !failed_indexes.contains(k)
                && !k.starts_with(&activity_prefix)
        })
        .collect();
    assert!(left.is_empty(), "finished jobs left {left:?}");
    assert_eq!(queue_depths(&redis).dead, 0);

    // Kept on purpose, without expiry: the webhooks and their version token, the project set,
    // the worker heartbeats, the failed index and the project's delivery index (both trimmed
    // to the retention), each webhook's endpoint state and the partition's turn counter.
    let mut kept = vec![
        part.meta(),
        k.webhooks(PROJECT),
        k.webhooks_version(PROJECT),
        k.projects(),
        k.workers(),
        k.failed(),
        k.deliveries(PROJECT, 0),
    ];
    kept.extend(endpoint_states);
    let listing = keys_with_ttl(&redis);
    for (name, kind, ttl) in &listing {
        println!("retention: {name:70} {kind:6} TTL {ttl}");
        if *ttl < 0 {
            assert!(kept.contains(name), "{name} ({kind}) never expires");
        } else if name.starts_with(&activity_prefix) {
            let most = hookrelay_core::activity::ACTIVITY_RETENTION_SECS as i64;
            assert!(*ttl <= most, "{name}: TTL {ttl} beyond two hours");
        } else {
            assert!(*ttl <= 60, "{name}: TTL {ttl} beyond the retention");
        }
    }
    println!(
        "retention: {} records with TTL ≤ 60 s; queue keys after the work: none",
        ttl_keys.len()
    );
}
