//! `bailo`: Bailo model webhooks, `{"event": <event>, "description": <Bailo's sentence>, ...data}`.
//!
//! Bailo's documentation gives one body per event (`createRelease`, `updateRelease`,
//! `createReviewResponse`, `createAccessRequest`): the event, a fixed sentence, then the
//! release, review or access request itself. Publishing an event whose `data` holds those
//! other fields gives the documented body, key for key and in the same order.

use serde_json::{Value, json};

use super::{Target, no_body_error, sample_with, spread};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample,
    body_error: no_body_error,
};

/// Bailo's `description` for an event; a sentence of the same shape for events it does not
/// document.
fn description(event: &str) -> String {
    match event {
        "createRelease" | "updateRelease" => "A release event happened".to_string(),
        "createReviewResponse" => "A review response was created".to_string(),
        "createAccessRequest" => "An access request was created".to_string(),
        other => format!("A {other} event happened"),
    }
}

fn body(_webhook: &Webhook, event: &Event) -> Value {
    spread(
        vec![
            ("event", json!(event.event)),
            ("description", json!(description(&event.event))),
        ],
        &event.data,
    )
}

/// A `createRelease` shaped like the documented example, for the webhook's model.
fn sample(webhook: &Webhook, project: &str) -> Event {
    let model_id = if webhook.object_name == "*" {
        "abc123"
    } else {
        webhook.object_name.as_str()
    };
    let now = crate::time::Timestamp::now().to_string();
    let data = json!({
        "modelId": model_id,
        "modelCardVersion": 1,
        "semver": "0.0.1",
        "notes": "Initial release",
        "minor": false,
        "draft": false,
        "fileIds": ["0123456789abcdef01234567"],
        "images": [{"repository": model_id, "name": "some-docker-image", "tag": "1.0.0"}],
        "deleted": false,
        "createdBy": "user",
        "createdAt": now,
        "updatedAt": now,
    });
    let mut event = sample_with(webhook, project, "createRelease".to_string(), data);
    event.version = Some("0.0.1".to_string());
    event
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use serde_json::{Map, Value};

    use super::super::testing::{event, keys, parse, webhook};
    use crate::webhook::Format;

    // The four bodies of Bailo's webhook documentation (createRelease serves for
    // updateRelease too). The createReviewResponse example there lacks the comma after
    // "kind"; it is restored in the file.
    const CREATE_RELEASE: &str = include_str!("examples/bailo-create-release.json");
    const REVIEW_RESPONSE: &str = include_str!("examples/bailo-review-response.json");
    const ACCESS_REQUEST: &str = include_str!("examples/bailo-access-request.json");

    /// The document's body with `event` set, and the `data` a publisher sends for it: every
    /// field but `event` and `description`, in the document's order.
    fn example(text: &str, event: &str) -> (Value, Value) {
        let mut doc = parse(text);
        doc["event"] = Value::String(event.into());
        let data: Map<String, Value> = doc
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| *k != "event" && *k != "description")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (doc, Value::Object(data))
    }

    /// Publishes `event` with `data` and compares the body's text with `expected`'s: same
    /// keys, values and key order.
    fn check(event_name: &str, data: Value, expected: &Value) {
        let got = super::super::render(&webhook(Format::Bailo), &event(event_name, data));
        assert_eq!(got, expected.to_string(), "{event_name}");
    }

    #[test]
    fn documented_bodies() {
        for (text, name) in [
            (CREATE_RELEASE, "createRelease"),
            (CREATE_RELEASE, "updateRelease"),
            (REVIEW_RESPONSE, "createReviewResponse"),
            (ACCESS_REQUEST, "createAccessRequest"),
        ] {
            let (doc, data) = example(text, name);
            check(name, data, &doc);
        }
    }

    #[test]
    fn create_release_text_is_the_documents_key_order() {
        // Spelled out, so the order is pinned whatever serde_json's map does.
        let (_, data) = example(CREATE_RELEASE, "createRelease");
        let got = super::super::render(&webhook(Format::Bailo), &event("createRelease", data));
        assert_eq!(
            got,
            concat!(
                r#"{"event":"createRelease","description":"A release event happened","#,
                r#""modelId":"abc123","modelCardVersion":1,"semver":"0.0.1","notes":"Initial release","#,
                r#""minor":false,"draft":false,"fileIds":["0123456789abcdef01234567"],"#,
                r#""images":[{"repository":"abc123","name":"some-docker-image","tag":"1.0.0"}],"#,
                r#""deleted":false,"createdBy":"user","createdAt":"2025-01-21T12:00:00.000Z","#,
                r#""updatedAt":"2025-01-21T12:00:00.000Z"}"#
            )
        );
    }

    #[test]
    fn edge_cases() {
        // Unknown event: a sentence of Bailo's shape.
        check(
            "deleteModel",
            parse(r#"{"modelId": "abc123"}"#),
            &parse(
                r#"{"event": "deleteModel", "description": "A deleteModel event happened", "modelId": "abc123"}"#,
            ),
        );
        // The format's own keys are not overridden by data.
        check(
            "createRelease",
            parse(r#"{"event": "x", "description": "y", "semver": "1.0.0"}"#),
            &parse(
                r#"{"event": "createRelease", "description": "A release event happened", "semver": "1.0.0"}"#,
            ),
        );
        // Data that is not an object goes under "data"; null adds nothing.
        check(
            "createRelease",
            parse(r#"["a", "b"]"#),
            &parse(
                r#"{"event": "createRelease", "description": "A release event happened", "data": ["a", "b"]}"#,
            ),
        );
        check(
            "createRelease",
            Value::Null,
            &parse(r#"{"event": "createRelease", "description": "A release event happened"}"#),
        );
    }

    #[test]
    fn sample_is_a_create_release_for_the_model() {
        let hook = webhook(Format::Bailo);
        let ev = super::super::sample_event(&hook, "proj");
        assert_eq!(ev.event, "createRelease");
        let body = parse(&super::super::render(&hook, &ev));
        let (doc, _) = example(CREATE_RELEASE, "createRelease");
        assert_eq!(keys(&body), keys(&doc));
        assert_eq!(body["modelId"], "model-1");
        assert_eq!(body["description"], "A release event happened");
    }
}
