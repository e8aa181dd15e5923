//! `json`, the default: the UbiOps-style event envelope
//! `{"id", "event", "project", "object_type", "object_name", "version", "created_at", "data", "result"}`,
//! with `result` only for webhooks with `include_result`.

use serde_json::{Map, Value, json};

use super::{Target, no_body_error, sample_event_name, sample_with};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample,
    body_error: no_body_error,
};

fn body(webhook: &Webhook, event: &Event) -> Value {
    let mut body = Map::new();
    body.insert("id".into(), json!(event.id));
    body.insert("event".into(), json!(event.event));
    body.insert("project".into(), json!(event.project));
    body.insert("object_type".into(), json!(event.object_type));
    body.insert("object_name".into(), json!(event.object_name));
    body.insert("version".into(), json!(event.version));
    body.insert("created_at".into(), json!(event.created_at));
    body.insert("data".into(), event.data.clone());
    if webhook.include_result {
        body.insert("result".into(), event.result.clone().unwrap_or(Value::Null));
    }
    Value::Object(body)
}

/// The webhook's own event on its own object, with small data and a result.
fn sample(webhook: &Webhook, project: &str) -> Event {
    let data = json!({
        "message": format!("Test delivery of webhook {} in project {project}", webhook.name),
        "test": true,
    });
    let mut event = sample_with(webhook, project, sample_event_name(webhook), data);
    event.result = Some(json!({ "test": true }));
    event
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use serde_json::{Value, json};

    use super::super::testing::{keys, parse, webhook};
    use crate::event::Event;
    use crate::webhook::Format;

    /// Renders `event` for a json webhook and compares the text: keys, values and key order.
    fn check(event: Value, include_result: bool, expected: &str) {
        let event: Event = serde_json::from_value(event).unwrap();
        let mut hook = webhook(Format::Json);
        hook.include_result = include_result;
        assert_eq!(super::super::render(&hook, &event), expected);
    }

    fn ubiops_event() -> Value {
        json!({
            "id": "6b6a7c2e-1111-4a5b-9c3d-000000000001",
            "project": "proj",
            "event": "deployment_request_finished",
            "object_type": "deployment",
            "object_name": "deployment-1",
            "version": "v1",
            "data": {"request_id": "r-1", "status": "completed"},
            "result": {"prediction": 0.93},
            "created_at": "2025-01-21T12:00:00.000Z"
        })
    }

    #[test]
    fn envelope_cases() {
        check(
            ubiops_event(),
            false,
            r#"{"id":"6b6a7c2e-1111-4a5b-9c3d-000000000001","event":"deployment_request_finished","project":"proj","object_type":"deployment","object_name":"deployment-1","version":"v1","created_at":"2025-01-21T12:00:00.000Z","data":{"request_id":"r-1","status":"completed"}}"#,
        );
        check(
            ubiops_event(),
            true,
            r#"{"id":"6b6a7c2e-1111-4a5b-9c3d-000000000001","event":"deployment_request_finished","project":"proj","object_type":"deployment","object_name":"deployment-1","version":"v1","created_at":"2025-01-21T12:00:00.000Z","data":{"request_id":"r-1","status":"completed"},"result":{"prediction":0.93}}"#,
        );
        let mut bare = ubiops_event();
        bare["version"] = Value::Null;
        bare["result"] = Value::Null;
        bare["data"] = json!("text data");
        check(
            bare.clone(),
            true,
            r#"{"id":"6b6a7c2e-1111-4a5b-9c3d-000000000001","event":"deployment_request_finished","project":"proj","object_type":"deployment","object_name":"deployment-1","version":null,"created_at":"2025-01-21T12:00:00.000Z","data":"text data","result":null}"#,
        );
        check(
            bare,
            false,
            r#"{"id":"6b6a7c2e-1111-4a5b-9c3d-000000000001","event":"deployment_request_finished","project":"proj","object_type":"deployment","object_name":"deployment-1","version":null,"created_at":"2025-01-21T12:00:00.000Z","data":"text data"}"#,
        );
    }

    #[test]
    fn sample_uses_the_webhooks_event_and_object() {
        let mut hook = webhook(Format::Json);
        hook.event = "deployment_request_finished".into();
        hook.object_type = "deployment".into();
        hook.object_name = "deployment-1".into();
        hook.version = Some("v2".into());
        hook.include_result = true;
        let event = super::super::sample_event(&hook, "proj");
        let body = parse(&super::super::render(&hook, &event));
        assert_eq!(
            keys(&body),
            [
                "id",
                "event",
                "project",
                "object_type",
                "object_name",
                "version",
                "created_at",
                "data",
                "result"
            ]
        );
        assert_eq!(body["event"], "deployment_request_finished");
        assert_eq!(body["project"], "proj");
        assert_eq!(body["object_type"], "deployment");
        assert_eq!(body["object_name"], "deployment-1");
        assert_eq!(body["version"], "v2");
        assert_eq!(body["result"], json!({"test": true}));
        assert!(crate::time::Timestamp::parse(body["created_at"].as_str().unwrap()).is_some());
    }
}
