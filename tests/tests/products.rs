//! Each seed product, end to end as its users would set it up: Bailo, Comet's model
//! registry, Bytebase (Custom and chat targets), GitHub Actions, and the UbiOps envelope.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_tests::{Api, Env, RedisServer};
use serde_json::{Value, json};

async fn serve(redis: &RedisServer) -> (hookrelay_tests::Process, Api) {
    let p = Env::new(redis).spawn("serve").await;
    let api = Api::new(&p.base);
    (p, api)
}

/// Bailo's createRelease example, exactly as its documentation shows it (key order included).
const BAILO_CREATE_RELEASE: &str = r#"{"event":"createRelease","description":"A release event happened","modelId":"abc123","modelCardVersion":1,"semver":"0.0.1","notes":"Initial release","minor":false,"draft":false,"fileIds":["0123456789abcdef01234567"],"images":[{"repository":"abc123","name":"some-docker-image","tag":"1.0.0"}],"deleted":false,"createdBy":"user","createdAt":"2025-01-21T12:00:00.000Z","updatedAt":"2025-01-21T12:00:00.000Z"}"#;

/// Bailo's createAccessRequest example.
const BAILO_ACCESS_REQUEST: &str = r#"{"event":"createAccessRequest","description":"An access request was created","id":"some-access-request-mno456","modelId":"abc123","schemaId":"minimal-access-request-general-v10","metadata":{"overview":{"name":"some access request","entities":["user:user"],"endDate":"2025-01-21"}},"deleted":false,"createdBy":"user","createdAt":"2025-01-21T12:00:00.000Z","updatedAt":"2025-01-21T12:00:00.000Z"}"#;

/// The document's body minus the keys hookrelay adds: what Bailo publishes as `data`.
fn data_of(doc: &str) -> Value {
    let v: serde_json::Map<String, Value> = serde_json::from_str(doc).unwrap();
    Value::Object(
        v.into_iter()
            .filter(|(k, _)| k != "event" && k != "description")
            .collect(),
    )
}

#[tokio::test]
async fn bailo_gets_its_documented_bodies_and_bearer_token() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(
        "models",
        json!({
            "name": "bailo-hook", "url": rx.url("/bailo"), "format": "bailo", "token": "bailo-secret-token",
            "object_type": "model", "object_name": "abc123", "event": "*",
        }),
    )
    .await;
    api.create_webhook(
        "models",
        json!({
            "name": "no-token", "url": rx.url("/plain"), "format": "bailo",
            "object_type": "model", "object_name": "abc123", "event": "createRelease",
        }),
    )
    .await;
    for (event, doc) in [
        ("createRelease", BAILO_CREATE_RELEASE),
        ("createAccessRequest", BAILO_ACCESS_REQUEST),
    ] {
        let body = json!({"event": event, "object_type": "model", "object_name": "abc123", "data": data_of(doc)});
        let (s, v) = api
            .call("POST", "/projects/models/events", Some(body))
            .await;
        assert_eq!(s, 202, "{v}");
    }
    let reqs = rx.wait_for_requests(3, Duration::from_secs(10)).await;
    let bailo: Vec<_> = reqs.iter().filter(|r| r.path == "/bailo").collect();
    assert_eq!(bailo.len(), 2);
    for r in &bailo {
        assert_eq!(r.header("authorization"), Some("Bearer bailo-secret-token"));
        let want = if r.text().contains("createRelease") {
            BAILO_CREATE_RELEASE
        } else {
            BAILO_ACCESS_REQUEST
        };
        assert_eq!(
            r.text(),
            want,
            "body must equal the document's example, key for key"
        );
    }
    let plain = reqs.iter().find(|r| r.path == "/plain").unwrap();
    assert!(plain.header("authorization").is_none());
    assert_eq!(plain.text(), BAILO_CREATE_RELEASE);
}

#[tokio::test]
async fn comet_triggers_tests_and_github_actions() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    let created = api
        .create_webhook(
            "ws",
            json!({
                "name": "registry", "url": rx.url("/comet"), "format": "comet", "token": "comet-token",
                "object_type": "model", "object_name": "my-model",
                "event": "MODEL_VERSION_CREATED", "events": ["MODEL_TAG_CHANGED"],
            }),
        )
        .await;
    assert_eq!(created["events"], json!(["MODEL_TAG_CHANGED"]));
    api.create_webhook(
        "ws",
        json!({
            "name": "actions", "url": rx.url("/dispatch"), "format": "comet", "github_actions": true,
            "object_type": "model", "object_name": "my-model", "event": "*",
        }),
    )
    .await;
    let data = json!({
        "workspaceName": "ws", "registryModelName": "my-model", "version": "1.0.0",
        "tags": ["prod"], "deletedTags": [], "status": "Production", "oldStatus": null,
        "createdAt": 1700000000, "sourceExperimentKey": null,
    });
    for trigger in [
        "MODEL_VERSION_CREATED",
        "MODEL_VERSION_DELETED",
        "MODEL_TAG_CHANGED",
        "MODEL_STATUS_CHANGED",
    ] {
        let body = json!({"event": trigger, "object_type": "model", "object_name": "my-model", "data": data});
        let (s, _) = api.call("POST", "/projects/ws/events", Some(body)).await;
        assert_eq!(s, 202);
    }
    // registry: 2 of 4 triggers; actions: all 4.
    let reqs = rx.wait_for_requests(6, Duration::from_secs(10)).await;
    let registry: Vec<Value> = reqs
        .iter()
        .filter(|r| r.path == "/comet")
        .map(|r| r.json())
        .collect();
    assert_eq!(registry.len(), 2);
    let mut triggers: Vec<&str> = registry
        .iter()
        .map(|b| b["eventTrigger"].as_str().unwrap())
        .collect();
    triggers.sort();
    assert_eq!(triggers, ["MODEL_TAG_CHANGED", "MODEL_VERSION_CREATED"]);
    let first = reqs.iter().find(|r| r.path == "/comet").unwrap();
    assert!(
        first.text().starts_with("{\"eventTrigger\":"),
        "{}",
        first.text()
    );
    assert_eq!(first.header("authorization"), Some("Bearer comet-token"));
    assert_eq!(registry[0]["registryModelName"], "my-model");
    let dispatch: Vec<Value> = reqs
        .iter()
        .filter(|r| r.path == "/dispatch")
        .map(|r| r.json())
        .collect();
    assert_eq!(dispatch.len(), 4);
    for d in &dispatch {
        assert!(d["event_type"].is_string());
        assert_eq!(d["client_payload"]["eventTrigger"], d["event_type"]);
        assert_eq!(d.as_object().unwrap().len(), 2);
    }

    // "Test Webhook": the TEST payload, and the full response in the test record.
    rx.set_path_reply(
        "/comet",
        Reply::Custom {
            status: 418,
            headers: vec![("x-why".into(), "teapot".into())],
            body: "no coffee here".into(),
        },
    );
    let (s, test) = api
        .call("POST", "/projects/ws/webhooks/registry/test", None)
        .await;
    assert_eq!(s, 202, "{test}");
    let id = test["id"].as_str().unwrap().to_owned();
    let record = api.wait_test("ws", &id, Duration::from_secs(10)).await;
    assert_eq!(record["status"], "failed");
    assert!(
        record["error_message"].as_str().unwrap().contains("418"),
        "{record}"
    );
    let text = record.to_string();
    assert!(
        text.contains("teapot") && text.contains("no coffee here"),
        "full response kept: {record}"
    );
    let sent = rx
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/comet")
        .unwrap()
        .json();
    assert_eq!(sent["eventTrigger"], "TEST");
    assert_eq!(sent["version"], "1.2.3");
    assert_eq!(sent["tags"], json!(["addedTag", "marketing"]));
    assert_eq!(sent["deletedTags"], json!(["deletedTag"]));
    assert_eq!(sent["status"], "Staging");
    assert_eq!(sent["oldStatus"], "Development");
    assert_eq!(
        sent["sourceExperimentKey"],
        "711e50b9e477498b91d32c024ffc802e"
    );
    assert_eq!(sent["workspaceName"], "ws");
    assert_eq!(sent["registryModelName"], "my-model");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let created_at = sent["createdAt"].as_i64().unwrap();
    assert!(
        (now - 3600 - created_at).abs() < 60,
        "createdAt = now - 1 h"
    );
}

#[tokio::test]
async fn bytebase_custom_answers_with_a_code_and_chat_targets_get_their_formats() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Json(200, json!({"code": 0, "message": ""}))).await;
    rx.set_path_reply(
        "/refuses",
        Reply::Json(
            200,
            json!({"code": 400, "message": "Ops, some error occured!"}),
        ),
    );
    for (name, format, path) in [
        ("custom", "bytebase", "/custom"),
        ("custom-refuses", "bytebase", "/refuses"),
        ("slack", "slack", "/slack"),
        ("discord", "discord", "/discord"),
        ("teams", "teams", "/teams"),
        ("dingtalk", "dingtalk", "/dingtalk"),
        ("feishu", "feishu", "/feishu"),
        ("wecom", "wecom", "/wecom"),
    ] {
        api.create_webhook(
            "bb",
            json!({
                "name": name, "url": rx.url(path), "format": format,
                "object_type": "project", "object_name": "demo", "event": "*",
            }),
        )
        .await;
    }
    let data = json!({
        "level": "WARN", "title": "Bytebase issue created", "description": "example description",
        "link": "https://bytebase.example/issue/1", "creator_id": 1, "creator_name": "Bytebase",
        "created_ts": 1651212107,
        "issue": {"id": 1, "name": "example issue", "status": "OPEN", "type": "bb.issue.database.create"},
        "project": {"id": 1, "name": "demo"},
    });
    let ids = api
        .publish("bb", json!({"event": "bb.issue.create", "object_type": "project", "object_name": "demo", "data": data}))
        .await;
    assert_eq!(ids.len(), 8);
    let mut failed = 0;
    for id in &ids {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        let d = loop {
            let d = api.delivery("bb", id).await;
            if d["status"] == "succeeded" || d["status"] == "failed" {
                break d;
            }
            assert!(tokio::time::Instant::now() < deadline, "{d}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        if d["webhook"] == "custom-refuses" {
            assert_eq!(d["status"], "failed");
            assert!(
                d["attempts"][0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("Ops, some error occured!"),
                "{d}"
            );
            failed += 1;
        } else {
            assert_eq!(d["status"], "succeeded", "{d}");
        }
    }
    assert_eq!(failed, 1);
    let reqs = rx.requests();
    let body = |path: &str| reqs.iter().find(|r| r.path == path).unwrap().json();
    let custom = body("/custom");
    assert_eq!(custom["activity_type"], "bb.issue.create");
    assert_eq!(custom["level"], "WARN");
    assert_eq!(custom["issue"]["name"], "example issue");
    assert_eq!(custom["project"]["name"], "demo");
    assert!(
        body("/slack")["text"]
            .as_str()
            .unwrap()
            .contains("Bytebase issue created")
    );
    assert!(body("/slack")["blocks"].is_array());
    assert!(
        body("/discord")["embeds"][0]["title"]
            .as_str()
            .unwrap()
            .contains("Bytebase issue created")
    );
    assert!(body("/teams").to_string().contains("AdaptiveCard"));
    assert_eq!(body("/dingtalk")["msgtype"], "markdown");
    assert!(
        body("/dingtalk")["markdown"]["title"]
            .as_str()
            .unwrap()
            .contains("Bytebase issue created")
    );
    assert!(body("/feishu")["msg_type"].is_string());
    assert!(
        body("/feishu")
            .to_string()
            .contains("Bytebase issue created")
    );
    assert_eq!(body("/wecom")["msgtype"], "markdown");
    assert!(
        body("/wecom")["markdown"]["content"]
            .as_str()
            .unwrap()
            .contains("Bytebase issue created")
    );
}

#[tokio::test]
async fn ubiops_envelope_carries_the_result_only_when_asked() {
    let redis = RedisServer::start();
    let (_p, api) = serve(&redis).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    for (name, include) in [("with", true), ("without", false)] {
        api.create_webhook(
            "ub",
            json!({
                "name": name, "url": rx.url(&format!("/{name}")), "object_type": "deployment",
                "object_name": "deployment-1", "version": "v1", "event": "deployment_request_finished",
                "include_result": include,
            }),
        )
        .await;
    }
    let body = json!({
        "event": "deployment_request_finished", "object_type": "deployment", "object_name": "deployment-1",
        "version": "v1", "data": {"request_id": "r1"}, "result": {"prediction": 0.93}, "id": "evt-1",
    });
    api.publish("ub", body.clone()).await;
    // Another version does not match either webhook.
    let mut other = body.clone();
    other["version"] = json!("v2");
    other["id"] = json!("evt-2");
    assert!(api.publish("ub", other).await.is_empty());
    let reqs = rx.wait_for_requests(2, Duration::from_secs(10)).await;
    let with = reqs.iter().find(|r| r.path == "/with").unwrap().json();
    let without = reqs.iter().find(|r| r.path == "/without").unwrap().json();
    for b in [&with, &without] {
        assert_eq!(b["id"], "evt-1");
        assert_eq!(b["event"], "deployment_request_finished");
        assert_eq!(b["project"], "ub");
        assert_eq!(b["version"], "v1");
        assert_eq!(b["data"]["request_id"], "r1");
        assert!(b["created_at"].is_string());
    }
    assert_eq!(with["result"]["prediction"], 0.93);
    assert!(without.get("result").is_none());
}
