//! `feishu`: a Feishu (Lark) custom bot message card.
//!
//! Follows Feishu's custom bot guide, message type `interactive`:
//! `{"msg_type": "interactive", "card": {...}}` with a message card whose `header` has the
//! title (plain text) and a `template` colour for the level (`blue`, `green`, `orange`,
//! `red`), a `div` with the description (`lark_md`), an `action` with a button opening the
//! link, and a `note` with level and event. A card is used rather than `post` because only a
//! card can show the level as a colour.
//!
//! A bot protected by keywords only takes messages that contain one; the title goes into the
//! header verbatim, so a keyword the publisher put in the title is there.

use serde_json::{Value, json};

use super::{Level, Message, Target, chat_code_error, chat_sample};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample: chat_sample,
    body_error: |body| chat_code_error(body, "code", "msg"),
};

/// The card header colour of a level; a message without one is blue.
fn template(level: Option<Level>) -> &'static str {
    match level.unwrap_or(Level::Info) {
        Level::Info => "blue",
        Level::Success => "green",
        Level::Warn => "orange",
        Level::Error => "red",
    }
}

fn body(_webhook: &Webhook, event: &Event) -> Value {
    let m = Message::from_event(event);
    let mut elements = vec![json!({
        "tag": "div",
        "text": {"tag": "lark_md", "content": m.description},
    })];
    if let Some(link) = m.web_link() {
        elements.push(json!({
            "tag": "action",
            "actions": [{
                "tag": "button",
                "text": {"tag": "plain_text", "content": "Open"},
                "type": "primary",
                "url": link,
            }],
        }));
    } else if let Some(link) = m.text_link() {
        elements.push(json!({"tag": "div", "text": {"tag": "plain_text", "content": link}}));
    }
    elements.push(json!({
        "tag": "note",
        "elements": [{"tag": "plain_text", "content": m.footer()}],
    }));
    json!({
        "msg_type": "interactive",
        "card": {
            "config": {"wide_screen_mode": true},
            "header": {
                "template": template(m.level),
                "title": {"tag": "plain_text", "content": m.title},
            },
            "elements": elements,
        },
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::super::testing::{bytebase_body, parse};
    use crate::webhook::Format;

    /// Publishes `data` as event `bb.issue.create` and compares the whole message with an
    /// interactive card of header colour `template`, header title `title` and `elements`.
    fn check(data: &str, template: &str, title: &str, elements: &str) {
        let got = bytebase_body(Format::Feishu, data);
        let expected = serde_json::json!({
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": true},
                "header": {
                    "template": template,
                    "title": {"tag": "plain_text", "content": title},
                },
                "elements": parse(elements),
            },
        });
        assert_eq!(got, expected, "{data}");
    }

    #[test]
    fn messages() {
        check(
            r#"{"level": "ERROR", "title": "Bytebase: issue failed", "description": "Task **3** failed", "link": "https://bb.example.com/issue/1"}"#,
            "red",
            "Bytebase: issue failed",
            r#"[
              {"tag": "div", "text": {"tag": "lark_md", "content": "Task **3** failed"}},
              {"tag": "action", "actions": [{"tag": "button", "text": {"tag": "plain_text", "content": "Open"}, "type": "primary", "url": "https://bb.example.com/issue/1"}]},
              {"tag": "note", "elements": [{"tag": "plain_text", "content": "ERROR · bb.issue.create"}]}
            ]"#,
        );
        check(
            r#"{"level": "WARN", "title": "Slow", "description": "took long", "link": "example link"}"#,
            "orange",
            "Slow",
            r#"[
              {"tag": "div", "text": {"tag": "lark_md", "content": "took long"}},
              {"tag": "div", "text": {"tag": "plain_text", "content": "example link"}},
              {"tag": "note", "elements": [{"tag": "plain_text", "content": "WARN · bb.issue.create"}]}
            ]"#,
        );
        check(
            "{}",
            "blue",
            "bb.issue.create: model model-1",
            r#"[
              {"tag": "div", "text": {"tag": "lark_md", "content": "Event bb.issue.create for model model-1 in project proj."}},
              {"tag": "note", "elements": [{"tag": "plain_text", "content": "bb.issue.create"}]}
            ]"#,
        );
        check(
            r#"{"level": "SUCCESS", "title": "ok", "description": "d"}"#,
            "green",
            "ok",
            r#"[
              {"tag": "div", "text": {"tag": "lark_md", "content": "d"}},
              {"tag": "note", "elements": [{"tag": "plain_text", "content": "SUCCESS · bb.issue.create"}]}
            ]"#,
        );
    }
}
