//! Per-project tokens with roles, over real HTTP against a real redis-server: what each
//! role may do, that a project token reaches no other project, that the token is shown once
//! and stored only as a hash, and that a deleted token stops working in every API process.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{PREFIX, Server, start, webhook};
use hookrelay_core::Keys;
use hookrelay_producer::{ApiSettings, AppState, app};
use hookrelay_queue::Queue;
use reqwest::Method;
use serde_json::{Value, json};

/// Status and body of a request made with `token`.
async fn call(
    s: &Server,
    base: &str,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = s
        .client
        .request(method, format!("{base}{path}"))
        .header("Authorization", format!("Bearer {token}"));
    if let Some(b) = body {
        req = req
            .header("Content-Type", "application/json")
            .body(serde_json::to_vec(&b).unwrap());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn new_token(s: &Server, project: &str, name: &str, role: &str) -> String {
    let a = s
        .post(
            &format!("/v2.1/projects/{project}/tokens"),
            json!({"name": name, "role": role}),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.body["name"], name);
    assert_eq!(a.body["role"], role);
    a.body["token"].as_str().unwrap().to_owned()
}

fn event() -> Value {
    json!({"event": "deployment_request_finished", "object_type": "deployment",
           "object_name": "deployment-1", "data": {}})
}

#[tokio::test]
async fn tokens_are_shown_once_and_stored_hashed() {
    let s = start().await;
    let viewer = new_token(&s, "p", "ci-viewer", "viewer").await;
    assert!(viewer.starts_with("hrt_") && viewer.len() > 40, "{viewer}");

    let a = s.get("/v2.1/projects/p/tokens").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(a.body.as_array().unwrap().len(), 1);
    assert_eq!(a.body[0]["name"], "ci-viewer");
    assert_eq!(a.body[0]["role"], "viewer");
    assert!(a.body[0]["created_at"].is_string());
    assert!(
        a.body[0].get("token").is_none() && a.body[0].get("hash").is_none(),
        "{}",
        a.text
    );

    // Nothing in Redis holds the token itself.
    let mut conn = s.redis();
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("{PREFIX}:tokens:p"))),
        "{keys:?}"
    );
    for k in &keys {
        assert!(!k.contains(&viewer), "{k}");
        let dump: Vec<u8> = redis::cmd("DUMP").arg(k).query(&mut conn).unwrap();
        let text = String::from_utf8_lossy(&dump);
        assert!(!text.contains(&viewer), "the token is stored in {k}");
    }

    // Names and roles are checked, naming the field; a name is unique in its project.
    let bad = [
        (json!({"name": "..", "role": "viewer"}), "name"),
        (json!({"name": "a/b", "role": "viewer"}), "name"),
        (json!({"name": "x", "role": "root"}), "role"),
        (json!({"name": "x", "role": 3}), "role"),
        (json!({"role": "viewer"}), "name"),
    ];
    for (body, field) in bad {
        let a = s.post("/v2.1/projects/p/tokens", body.clone()).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        assert_eq!(a.body["field"], field, "{body}: {}", a.text);
    }
    let a = s
        .post(
            "/v2.1/projects/p/tokens",
            json!({"name": "ci-viewer", "role": "admin"}),
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.text);

    // Unknown names 404; a token is deleted once.
    assert_eq!(s.delete("/v2.1/projects/p/tokens/nope").await.status, 404);
    assert_eq!(
        s.delete("/v2.1/projects/p/tokens/ci-viewer").await.status,
        204
    );
    assert_eq!(
        s.delete("/v2.1/projects/p/tokens/ci-viewer").await.status,
        404
    );
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{PREFIX}:token*"))
        .query(&mut conn)
        .unwrap();
    assert!(keys.is_empty(), "left behind: {keys:?}");
}

#[tokio::test]
async fn each_role_does_what_it_may_and_nothing_more() {
    let s = start().await;
    let b = s.base.clone();
    s.create_webhook(webhook("hook")).await;
    let viewer = new_token(&s, "p", "v", "viewer").await;
    let editor = new_token(&s, "p", "e", "editor").await;
    let admin = new_token(&s, "p", "a", "admin").await;
    let g = Method::GET;
    let post = Method::POST;

    // (token, method, path, body, expected status) — one line per rule.
    let cases: Vec<(&str, Method, &str, Option<Value>, u16)> = vec![
        (&viewer, g.clone(), "/v2.1/projects/p/webhooks", None, 200),
        (
            &viewer,
            g.clone(),
            "/v2.1/projects/p/webhooks/hook",
            None,
            200,
        ),
        (&viewer, g.clone(), "/v2.1/projects/p/deliveries", None, 200),
        (
            &viewer,
            g.clone(),
            "/v2.1/projects/p/webhooks/hook/secret",
            None,
            403,
        ),
        (
            &viewer,
            post.clone(),
            "/v2.1/projects/p/webhooks/hook/secret/rotate",
            None,
            403,
        ),
        (
            &viewer,
            post.clone(),
            "/v2.1/projects/p/webhooks",
            Some(webhook("v1")),
            403,
        ),
        (
            &viewer,
            Method::PATCH,
            "/v2.1/projects/p/webhooks/hook",
            Some(json!({"description": "x"})),
            403,
        ),
        (
            &viewer,
            Method::DELETE,
            "/v2.1/projects/p/webhooks/hook",
            None,
            403,
        ),
        (
            &viewer,
            post.clone(),
            "/v2.1/projects/p/events",
            Some(event()),
            403,
        ),
        (
            &viewer,
            post.clone(),
            "/v2.1/projects/p/webhooks/hook/test",
            None,
            403,
        ),
        (&viewer, g.clone(), "/v2.1/projects/p/tokens", None, 403),
        (
            &viewer,
            post.clone(),
            "/v2.1/projects/p/tokens",
            Some(json!({"name": "x", "role": "admin"})),
            403,
        ),
        (&editor, g.clone(), "/v2.1/projects/p/webhooks", None, 200),
        (
            &editor,
            post.clone(),
            "/v2.1/projects/p/webhooks",
            Some(webhook("e1")),
            201,
        ),
        (
            &editor,
            Method::PATCH,
            "/v2.1/projects/p/webhooks/e1",
            Some(json!({"description": "x"})),
            200,
        ),
        (
            &editor,
            post.clone(),
            "/v2.1/projects/p/events",
            Some(event()),
            202,
        ),
        (
            &editor,
            post.clone(),
            "/v2.1/projects/p/webhooks/hook/test",
            None,
            202,
        ),
        (
            &editor,
            Method::DELETE,
            "/v2.1/projects/p/webhooks/e1",
            None,
            204,
        ),
        (
            &editor,
            g.clone(),
            "/v2.1/projects/p/webhooks/hook/secret",
            None,
            403,
        ),
        (
            &editor,
            post.clone(),
            "/v2.1/projects/p/webhooks/hook/secret/rotate",
            None,
            403,
        ),
        (
            &editor,
            Method::PATCH,
            "/v2.1/projects/p/webhooks/hook",
            Some(json!({"signing_secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})),
            403,
        ),
        (&editor, g.clone(), "/v2.1/projects/p/tokens", None, 403),
        (
            &editor,
            Method::DELETE,
            "/v2.1/projects/p/tokens/v",
            None,
            403,
        ),
        (
            &admin,
            g.clone(),
            "/v2.1/projects/p/webhooks/hook/secret",
            None,
            200,
        ),
        (
            &admin,
            post.clone(),
            "/v2.1/projects/p/webhooks/hook/secret/rotate",
            None,
            200,
        ),
        (&admin, g.clone(), "/v2.1/projects/p/tokens", None, 200),
        (
            &admin,
            post.clone(),
            "/v2.1/projects/p/tokens",
            Some(json!({"name": "x", "role": "viewer"})),
            201,
        ),
        (
            &admin,
            Method::DELETE,
            "/v2.1/projects/p/tokens/x",
            None,
            204,
        ),
        (
            &admin,
            post.clone(),
            "/v2.1/projects/p/events",
            Some(event()),
            202,
        ),
    ];
    for (token, method, path, body, want) in cases {
        let role = if token == viewer {
            "viewer"
        } else if token == editor {
            "editor"
        } else {
            "admin"
        };
        let (status, answer) = call(&s, &b, token, method.clone(), path, body).await;
        assert_eq!(status, want, "{role} {method} {path}: {answer}");
        if status == 403 {
            assert!(answer["error"].as_str().unwrap().contains(role), "{answer}");
        }
    }

    // What a viewer reads holds no secret; an editor's create answer has no signing secret,
    // an admin's has.
    let (_, hooks) = call(
        &s,
        &b,
        &viewer,
        Method::GET,
        "/v2.1/projects/p/webhooks",
        None,
    )
    .await;
    assert!(
        hooks[0].get("signing_secret").is_none() && hooks[0].get("token").is_none(),
        "{hooks}"
    );
    let (status, created) = call(
        &s,
        &b,
        &editor,
        Method::POST,
        "/v2.1/projects/p/webhooks",
        Some(webhook("e2")),
    )
    .await;
    assert_eq!(status, 201);
    assert!(created.get("signing_secret").is_none(), "{created}");
    let (status, created) = call(
        &s,
        &b,
        &admin,
        Method::POST,
        "/v2.1/projects/p/webhooks",
        Some(webhook("a2")),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        created["signing_secret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_"),
        "{created}"
    );

    // A wrong token is a 401, not a 403.
    let (status, _) = call(
        &s,
        &b,
        "hrt_not-a-token",
        Method::GET,
        "/v2.1/projects/p/webhooks",
        None,
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_project_token_reaches_no_other_project() {
    let s = start().await;
    let b = s.base.clone();
    // Project q exists (it has a webhook); project r does not.
    let a = s
        .post("/v2.1/projects/q/webhooks", webhook("secret-hook"))
        .await;
    assert_eq!(a.status, 201);
    let admin = new_token(&s, "p", "a", "admin").await;
    let paths = [
        (Method::GET, "/webhooks", None),
        (Method::GET, "/webhooks/secret-hook", None),
        (Method::GET, "/webhooks/secret-hook/secret", None),
        (Method::POST, "/webhooks/secret-hook/secret/rotate", None),
        (Method::DELETE, "/webhooks/secret-hook", None),
        (Method::GET, "/deliveries", None),
        (Method::POST, "/events", Some(event())),
        (Method::GET, "/tokens", None),
        (
            Method::POST,
            "/tokens",
            Some(json!({"name": "x", "role": "admin"})),
        ),
    ];
    for (method, tail, body) in paths {
        let (sq, aq) = call(
            &s,
            &b,
            &admin,
            method.clone(),
            &format!("/v2.1/projects/q{tail}"),
            body.clone(),
        )
        .await;
        let (sr, ar) = call(
            &s,
            &b,
            &admin,
            method.clone(),
            &format!("/v2.1/projects/r{tail}"),
            body,
        )
        .await;
        assert_eq!(sq, 404, "{method} q{tail}: {aq}");
        assert_eq!(sr, 404, "{method} r{tail}: {ar}");
        // The same answer whether the project exists or not, apart from its name.
        assert_eq!(
            aq["error"].as_str().unwrap().replace("\"q\"", "\"r\""),
            ar["error"].as_str().unwrap(),
        );
    }
    // Nothing was changed in q.
    let a = s.get("/v2.1/projects/q/webhooks/secret-hook").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(s.get("/v2.1/projects/q/tokens").await.body, json!([]));
}

#[tokio::test]
async fn a_deleted_token_stops_working_in_every_process() {
    let s = start().await;
    // A second API process over the same Redis.
    let queue = Queue::connect(&s.redis.url(), Keys::new(PREFIX))
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other = format!("http://{}", listener.local_addr().unwrap());
    let state = AppState::new(queue, ApiSettings::new(common::TOKEN));
    let task = tokio::spawn(async move {
        axum::serve(listener, app(state)).await.unwrap();
    });

    let editor = new_token(&s, "p", "e", "editor").await;
    for base in [&s.base, &other] {
        let (status, _) = call(
            &s,
            base,
            &editor,
            Method::GET,
            "/v2.1/projects/p/webhooks",
            None,
        )
        .await;
        assert_eq!(status, 200, "{base}");
    }
    assert_eq!(s.delete("/v2.1/projects/p/tokens/e").await.status, 204);
    let deleted_at = Instant::now();
    for base in [&s.base, &other] {
        loop {
            let (status, _) = call(
                &s,
                base,
                &editor,
                Method::GET,
                "/v2.1/projects/p/webhooks",
                None,
            )
            .await;
            if status == 401 {
                break;
            }
            assert_eq!(status, 200);
            assert!(
                deleted_at.elapsed() < Duration::from_secs(1),
                "{base} still takes a deleted token"
            );
        }
    }
    task.abort();
}

#[tokio::test]
async fn the_caller_learns_its_role_and_nothing_secret() {
    let s = start().await;
    let b = s.base.clone();
    let viewer = new_token(&s, "p", "v", "viewer").await;
    let editor = new_token(&s, "p", "e", "editor").await;
    let admin = new_token(&s, "p", "a", "admin").await;
    let other = new_token(&s, "q", "q-admin", "admin").await;

    let a = s.get("/v2.1/projects/p/caller").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.body,
        json!({"project": "p", "role": "admin", "token": null})
    );

    for (token, name, role) in [
        (&viewer, "v", "viewer"),
        (&editor, "e", "editor"),
        (&admin, "a", "admin"),
    ] {
        let (status, body) =
            call(&s, &b, token, Method::GET, "/v2.1/projects/p/caller", None).await;
        assert_eq!(status, 200, "{role}: {body}");
        assert_eq!(
            body,
            json!({"project": "p", "role": role, "token": name}),
            "{role}"
        );
        assert!(!body.to_string().contains(token.as_str()), "{role}: {body}");
    }

    // Another project's token learns nothing about this one.
    let (status, body) = call(&s, &b, &other, Method::GET, "/v2.1/projects/p/caller", None).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = call(&s, &b, &other, Method::GET, "/v2.1/projects/q/caller", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], "admin");

    // No token or a wrong one is a 401; a bad project name a 400.
    let (status, _) = call(
        &s,
        &b,
        "wrong",
        Method::GET,
        "/v2.1/projects/p/caller",
        None,
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(s.get("/v2.1/projects/bad!name/caller").await.status, 400);
}
