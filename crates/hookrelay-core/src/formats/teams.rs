//! `teams`: a Microsoft Teams message carrying an Adaptive Card.
//!
//! Follows Microsoft's "Send Adaptive Cards using an incoming webhook" documentation: a body
//! `{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
//! "contentUrl": null, "content": <AdaptiveCard>}]}`. The same body is what the Teams Workflows
//! template "Post to a channel when a webhook request is received" takes, which replaces the
//! retired Office 365 connectors; the legacy MessageCard is not used for that reason. The card
//! (schema version 1.2, the version of Microsoft's example) has the title, the level as a
//! coloured line (`Accent`, `Good`, `Warning`, `Attention`), the description, and an
//! `Action.OpenUrl` for the link.

use serde_json::{Value, json};

use super::{Level, Message, Target, chat_sample, no_body_error};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample: chat_sample,
    body_error: no_body_error,
};

/// The Adaptive Card text colour of a level.
fn color(level: Level) -> &'static str {
    match level {
        Level::Info => "Accent",
        Level::Success => "Good",
        Level::Warn => "Warning",
        Level::Error => "Attention",
    }
}

fn body(_webhook: &Webhook, event: &Event) -> Value {
    let m = Message::from_event(event);
    let mut blocks = vec![json!({
        "type": "TextBlock",
        "text": m.title,
        "size": "Large",
        "weight": "Bolder",
        "wrap": true,
    })];
    if let Some(level) = m.level {
        blocks.push(json!({
            "type": "TextBlock",
            "text": level.label(),
            "weight": "Bolder",
            "color": color(level),
            "spacing": "None",
        }));
    }
    blocks.push(json!({"type": "TextBlock", "text": m.description, "wrap": true}));
    if let Some(link) = m.text_link() {
        blocks.push(json!({"type": "TextBlock", "text": link, "wrap": true, "isSubtle": true}));
    }
    blocks.push(json!({
        "type": "TextBlock",
        "text": m.event,
        "size": "Small",
        "isSubtle": true,
        "wrap": true,
    }));
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.2",
        "body": blocks,
    });
    if let Some(link) = m.web_link() {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Open", "url": link}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::super::testing::{bytebase_body, parse};
    use crate::webhook::Format;

    /// Publishes `data` as event `bb.issue.create` and compares the card with a schema 1.2
    /// Adaptive Card holding `blocks`, then the event's name in small print, and, when given,
    /// `actions`.
    fn check(data: &str, blocks: &str, actions: Option<&str>) {
        let got = bytebase_body(Format::Teams, data);
        let mut blocks = parse(blocks);
        if let Some(list) = blocks.as_array_mut() {
            list.push(serde_json::json!({
                "type": "TextBlock",
                "text": "bb.issue.create",
                "size": "Small",
                "isSubtle": true,
                "wrap": true,
            }));
        }
        let mut card = serde_json::json!({
            "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard",
            "version": "1.2",
            "body": blocks,
        });
        if let Some(actions) = actions {
            card["actions"] = parse(actions);
        }
        let expected = serde_json::json!({
            "type": "message",
            "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }],
        });
        assert_eq!(got, expected, "{data}");
    }

    #[test]
    fn messages() {
        check(
            r#"{"level": "WARN", "title": "Bytebase: slow task", "description": "Task 3 is slow", "link": "https://bb.example.com/issue/1"}"#,
            r#"[
              {"type": "TextBlock", "text": "Bytebase: slow task", "size": "Large", "weight": "Bolder", "wrap": true},
              {"type": "TextBlock", "text": "WARN", "weight": "Bolder", "color": "Warning", "spacing": "None"},
              {"type": "TextBlock", "text": "Task 3 is slow", "wrap": true}
            ]"#,
            Some(
                r#"[{"type": "Action.OpenUrl", "title": "Open", "url": "https://bb.example.com/issue/1"}]"#,
            ),
        );
        check(
            r#"{"title": "Plain", "description": "no level", "link": "example link"}"#,
            r#"[
              {"type": "TextBlock", "text": "Plain", "size": "Large", "weight": "Bolder", "wrap": true},
              {"type": "TextBlock", "text": "no level", "wrap": true},
              {"type": "TextBlock", "text": "example link", "wrap": true, "isSubtle": true}
            ]"#,
            None,
        );
        check(
            r#"{"level": "ERROR"}"#,
            r#"[
              {"type": "TextBlock", "text": "bb.issue.create: model model-1", "size": "Large", "weight": "Bolder", "wrap": true},
              {"type": "TextBlock", "text": "ERROR", "weight": "Bolder", "color": "Attention", "spacing": "None"},
              {"type": "TextBlock", "text": "Event bb.issue.create for model model-1 in project proj.", "wrap": true}
            ]"#,
            None,
        );
    }
}
