//! `discord`: a Discord "Execute Webhook" request.
//!
//! Follows Discord's Webhook resource documentation (Execute Webhook, JSON params): one
//! `embeds` entry (Message resource, embed object) with `title` (at most 256 characters),
//! `description` (at most 4096), `url` (the link, when it is an http(s) URL), `color` (the
//! level) and a `footer` with level and event; and `allowed_mentions` with no parse types,
//! so an `@everyone` in event data notifies nobody.

use serde_json::{Value, json};

use super::{Level, Message, Target, chat_sample, no_body_error, truncate_chars};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample: chat_sample,
    body_error: no_body_error,
};

/// Discord's limit on an embed title.
const MAX_TITLE_CHARS: usize = 256;
/// Discord's limit on an embed description.
const MAX_DESCRIPTION_CHARS: usize = 4096;

/// Embed colour, as the integer Discord expects: blue, green, orange, red.
fn color(level: Option<Level>) -> u32 {
    match level.unwrap_or(Level::Info) {
        Level::Info => 0x3498DB,
        Level::Success => 0x2ECC71,
        Level::Warn => 0xE67E22,
        Level::Error => 0xE74C3C,
    }
}

fn body(_webhook: &Webhook, event: &Event) -> Value {
    let m = Message::from_event(event);
    let mut description = m.description.clone();
    if let Some(link) = m.text_link() {
        description = format!("{description}\n{link}");
    }
    let mut embed = json!({
        "title": truncate_chars(&m.title, MAX_TITLE_CHARS),
        "description": truncate_chars(&description, MAX_DESCRIPTION_CHARS),
        "color": color(m.level),
        "footer": {"text": m.footer()},
    });
    if let Some(link) = m.web_link() {
        embed["url"] = json!(link);
    }
    json!({
        "embeds": [embed],
        "allowed_mentions": {"parse": []},
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::super::testing::{body, check_message, event};
    use crate::webhook::Format;

    /// Publishes `data` as event `bb.issue.create` and compares the whole message.
    fn check(data: &str, expected: &str) {
        check_message(Format::Discord, data, expected);
    }

    #[test]
    fn messages() {
        check(
            r#"{"level": "ERROR", "title": "Bytebase: issue failed", "description": "Task 3 failed @everyone", "link": "https://bb.example.com/issue/1"}"#,
            r#"{"embeds": [{"title": "Bytebase: issue failed", "description": "Task 3 failed @everyone", "url": "https://bb.example.com/issue/1", "color": 15158332, "footer": {"text": "ERROR · bb.issue.create"}}], "allowed_mentions": {"parse": []}}"#,
        );
        check(
            r#"{"level": "success", "title": "Done", "description": "ok"}"#,
            r#"{"embeds": [{"title": "Done", "description": "ok", "color": 3066993, "footer": {"text": "SUCCESS · bb.issue.create"}}], "allowed_mentions": {"parse": []}}"#,
        );
        check(
            r#"{"level": "WARN", "title": "Slow", "description": "took long", "link": "example link"}"#,
            r#"{"embeds": [{"title": "Slow", "description": "took long\nexample link", "color": 15105570, "footer": {"text": "WARN · bb.issue.create"}}], "allowed_mentions": {"parse": []}}"#,
        );
        check(
            "null",
            r#"{"embeds": [{"title": "bb.issue.create: model model-1", "description": "Event bb.issue.create for model model-1 in project proj.", "color": 3447003, "footer": {"text": "bb.issue.create"}}], "allowed_mentions": {"parse": []}}"#,
        );
    }

    #[test]
    fn long_text_is_cut_to_discords_limits() {
        let data = serde_json::json!({"title": "T".repeat(500), "description": "d".repeat(10_000)});
        let got = body(Format::Discord, &event("e", data));
        let embed = &got["embeds"][0];
        assert_eq!(embed["title"].as_str().unwrap().chars().count(), 256);
        assert!(embed["description"].as_str().unwrap().chars().count() <= 4096);
    }
}
