//! `comet`: Comet model-registry webhooks, `{"eventTrigger": <event>, ...data}`.
//!
//! Comet documents one payload shape for `MODEL_VERSION_CREATED`, `MODEL_VERSION_DELETED`,
//! `MODEL_TAG_CHANGED` and `MODEL_STATUS_CHANGED` (`workspaceName`, `registryModelName`,
//! `version`, `tags`, `deletedTags`, `status`, `oldStatus`, `createdAt`,
//! `sourceExperimentKey`) and a `TEST` payload that its "Test Webhook" button sends; the
//! sample event here is that `TEST` payload.

use serde_json::{Value, json};

use super::{Target, no_body_error, sample_with, spread};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample,
    body_error: no_body_error,
};

/// The event name of Comet's test payload.
const TEST_TRIGGER: &str = "TEST";
/// The `sourceExperimentKey` of Comet's test payload.
const TEST_EXPERIMENT_KEY: &str = "711e50b9e477498b91d32c024ffc802e";
/// The model version of Comet's test payload.
const TEST_VERSION: &str = "1.2.3";

fn body(_webhook: &Webhook, event: &Event) -> Value {
    spread(vec![("eventTrigger", json!(event.event))], &event.data)
}

/// Comet's `TEST` payload: fixed tags and statuses, the project as workspace, the webhook's
/// object as model, and `createdAt` one hour ago in UTC seconds.
fn sample(webhook: &Webhook, project: &str) -> Event {
    let created_at = chrono::Utc::now().timestamp() - 3600;
    let data = json!({
        "workspaceName": project,
        "registryModelName": webhook.object_name,
        "version": TEST_VERSION,
        "tags": ["addedTag", "marketing"],
        "deletedTags": ["deletedTag"],
        "status": "Staging",
        "oldStatus": "Development",
        "createdAt": created_at,
        "sourceExperimentKey": TEST_EXPERIMENT_KEY,
    });
    let mut event = sample_with(webhook, project, TEST_TRIGGER.to_string(), data);
    event.version = Some(TEST_VERSION.to_string());
    event
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use serde_json::Value;

    use super::super::testing::{event, keys, parse, webhook};
    use crate::webhook::Format;

    /// Publishes `event` with `data` (a JSON text) and compares the body's text with
    /// `expected`'s: same keys, values and key order.
    fn check(event_name: &str, data: &str, expected: &str) {
        let got = super::super::render(&webhook(Format::Comet), &event(event_name, parse(data)));
        assert_eq!(got, parse(expected).to_string(), "{event_name}");
    }

    #[test]
    fn documented_triggers() {
        check(
            "MODEL_VERSION_CREATED",
            r#"{"workspaceName": "ws", "registryModelName": "churn", "version": "1.0.0", "tags": ["prod"], "deletedTags": [], "status": "Development", "oldStatus": null, "createdAt": 1709100000, "sourceExperimentKey": "abc"}"#,
            r#"{"eventTrigger": "MODEL_VERSION_CREATED", "workspaceName": "ws", "registryModelName": "churn", "version": "1.0.0", "tags": ["prod"], "deletedTags": [], "status": "Development", "oldStatus": null, "createdAt": 1709100000, "sourceExperimentKey": "abc"}"#,
        );
        check(
            "MODEL_VERSION_DELETED",
            r#"{"workspaceName": "ws", "registryModelName": "churn", "version": "1.0.0", "tags": [], "deletedTags": [], "status": null, "oldStatus": null, "createdAt": 1709100000, "sourceExperimentKey": null}"#,
            r#"{"eventTrigger": "MODEL_VERSION_DELETED", "workspaceName": "ws", "registryModelName": "churn", "version": "1.0.0", "tags": [], "deletedTags": [], "status": null, "oldStatus": null, "createdAt": 1709100000, "sourceExperimentKey": null}"#,
        );
        check(
            "MODEL_TAG_CHANGED",
            r#"{"workspaceName": "ws", "registryModelName": "churn", "version": "1.0.1", "tags": ["new"], "deletedTags": ["old"], "status": "Staging", "oldStatus": "Development", "createdAt": 1709100000, "sourceExperimentKey": "abc"}"#,
            r#"{"eventTrigger": "MODEL_TAG_CHANGED", "workspaceName": "ws", "registryModelName": "churn", "version": "1.0.1", "tags": ["new"], "deletedTags": ["old"], "status": "Staging", "oldStatus": "Development", "createdAt": 1709100000, "sourceExperimentKey": "abc"}"#,
        );
        check(
            "MODEL_STATUS_CHANGED",
            r#"{"workspaceName": "ws", "registryModelName": "churn", "version": "1.0.1", "tags": [], "deletedTags": [], "status": "Production", "oldStatus": null, "createdAt": 1709100000, "sourceExperimentKey": "abc"}"#,
            r#"{"eventTrigger": "MODEL_STATUS_CHANGED", "workspaceName": "ws", "registryModelName": "churn", "version": "1.0.1", "tags": [], "deletedTags": [], "status": "Production", "oldStatus": null, "createdAt": 1709100000, "sourceExperimentKey": "abc"}"#,
        );
    }

    #[test]
    fn edge_cases() {
        check(
            "MODEL_VERSION_CREATED",
            r#"{"eventTrigger": "SPOOFED", "version": "2"}"#,
            r#"{"eventTrigger": "MODEL_VERSION_CREATED", "version": "2"}"#,
        );
        check(
            "MODEL_VERSION_CREATED",
            r#""v2""#,
            r#"{"eventTrigger": "MODEL_VERSION_CREATED", "data": "v2"}"#,
        );
        check(
            "MODEL_VERSION_CREATED",
            "null",
            r#"{"eventTrigger": "MODEL_VERSION_CREATED"}"#,
        );
        check(
            "MODEL_VERSION_CREATED",
            "{}",
            r#"{"eventTrigger": "MODEL_VERSION_CREATED"}"#,
        );
    }

    #[test]
    fn sample_is_the_documented_test_payload() {
        let mut hook = webhook(Format::Comet);
        hook.object_name = "churn-model".into();
        let before = chrono::Utc::now().timestamp() - 3600;
        let ev = super::super::sample_event(&hook, "my-workspace");
        let after = chrono::Utc::now().timestamp() - 3600;
        let body = parse(&super::super::render(&hook, &ev));
        assert_eq!(
            keys(&body),
            [
                "eventTrigger",
                "workspaceName",
                "registryModelName",
                "version",
                "tags",
                "deletedTags",
                "status",
                "oldStatus",
                "createdAt",
                "sourceExperimentKey"
            ]
        );
        let created_at = body["createdAt"].as_i64().unwrap();
        assert!((before..=after).contains(&created_at), "{created_at}");
        let mut rest = body.clone();
        rest["createdAt"] = Value::Null;
        assert_eq!(
            rest,
            parse(
                r#"{"eventTrigger": "TEST", "workspaceName": "my-workspace", "registryModelName": "churn-model",
                    "version": "1.2.3", "tags": ["addedTag", "marketing"], "deletedTags": ["deletedTag"],
                    "status": "Staging", "oldStatus": "Development", "createdAt": null,
                    "sourceExperimentKey": "711e50b9e477498b91d32c024ffc802e"}"#
            )
        );
    }
}
