//! `slack`: a Slack incoming-webhook message.
//!
//! Follows Slack's "Sending messages using incoming webhooks" documentation: a JSON body with
//! `text` (the notification and fallback text, mrkdwn) and `blocks` (Block Kit layout
//! blocks). The blocks are a `header` (plain text, at most 150 characters) with the title, a
//! `section` (mrkdwn, at most 3000 characters) with the description, and a `context` line
//! with the level (as a coloured circle, since blocks have no colour), the link and the event.
//!
//! Slack reads `&`, `<` and `>` as markup in mrkdwn (`<!channel>` notifies a whole channel),
//! so event text is escaped before it goes in.

use serde_json::{Value, json};

use super::{Level, Message, Target, chat_sample, no_body_error, truncate_chars};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample: chat_sample,
    body_error: no_body_error,
};

/// Slack's limit on a header block's text.
const MAX_HEADER_CHARS: usize = 150;
/// Slack's limit on a section block's text.
const MAX_SECTION_CHARS: usize = 3000;

/// Escapes the three characters Slack's mrkdwn treats as markup.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A URL made safe inside `<url|label>`: the characters that would end it are
/// percent-encoded.
fn escape_url(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('|', "%7C")
        .replace('<', "%3C")
        .replace('>', "%3E")
}

fn emoji(level: Level) -> &'static str {
    match level {
        Level::Info => ":large_blue_circle:",
        Level::Success => ":large_green_circle:",
        Level::Warn => ":large_orange_circle:",
        Level::Error => ":red_circle:",
    }
}

fn body(_webhook: &Webhook, event: &Event) -> Value {
    let m = Message::from_event(event);
    let mut context = Vec::new();
    if let Some(level) = m.level {
        context.push(format!("{} *{}*", emoji(level), level.label()));
    }
    if let Some(link) = m.web_link() {
        context.push(format!("<{}|Open>", escape_url(link)));
    } else if let Some(link) = m.text_link() {
        context.push(escape(link));
    }
    context.push(format!("`{}`", escape(&m.event)));
    json!({
        "text": truncate_chars(&escape(&format!("{}: {}", m.title, m.description)), MAX_SECTION_CHARS),
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": truncate_chars(&m.title, MAX_HEADER_CHARS)}
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": truncate_chars(&escape(&m.description), MAX_SECTION_CHARS)}
            },
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": truncate_chars(&context.join("  |  "), MAX_SECTION_CHARS)}]
            }
        ]
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use serde_json::Value;

    use super::super::testing::{body, check_message, event};
    use crate::webhook::Format;

    /// Publishes `data` as event `bb.issue.create` and compares the whole message.
    fn check(data: &str, expected: &str) {
        check_message(Format::Slack, data, expected);
    }

    #[test]
    fn messages() {
        check(
            r#"{"level": "ERROR", "title": "Bytebase: issue failed", "description": "Task 3 <failed> & stopped", "link": "https://bb.example.com/issue/1?a=1&b=2"}"#,
            r#"{
              "text": "Bytebase: issue failed: Task 3 &lt;failed&gt; &amp; stopped",
              "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Bytebase: issue failed"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "Task 3 &lt;failed&gt; &amp; stopped"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": ":red_circle: *ERROR*  |  <https://bb.example.com/issue/1?a=1&amp;b=2|Open>  |  `bb.issue.create`"}]}
              ]
            }"#,
        );
        check(
            r#"{"title": "Deployed", "description": "All good", "link": "example link"}"#,
            r#"{
              "text": "Deployed: All good",
              "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Deployed"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "All good"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "example link  |  `bb.issue.create`"}]}
              ]
            }"#,
        );
        check(
            r#"{"level": "SUCCESS"}"#,
            r#"{
              "text": "bb.issue.create: model model-1: Event bb.issue.create for model model-1 in project proj.",
              "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "bb.issue.create: model model-1"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "Event bb.issue.create for model model-1 in project proj."}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": ":large_green_circle: *SUCCESS*  |  `bb.issue.create`"}]}
              ]
            }"#,
        );
        check(
            r#""<!channel> hello""#,
            r#"{
              "text": "bb.issue.create: model model-1: &lt;!channel&gt; hello",
              "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "bb.issue.create: model model-1"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "&lt;!channel&gt; hello"}},
                {"type": "context", "elements": [{"type": "mrkdwn", "text": "`bb.issue.create`"}]}
              ]
            }"#,
        );
    }

    #[test]
    fn long_text_is_cut_to_slacks_limits() {
        let data = serde_json::json!({"title": "T".repeat(500), "description": "d".repeat(10_000)});
        let got = body(Format::Slack, &event("e", data));
        let text = |v: &Value| v.as_str().unwrap().chars().count();
        assert_eq!(text(&got["blocks"][0]["text"]["text"]), 150);
        assert_eq!(text(&got["blocks"][1]["text"]["text"]), 3000);
        assert!(text(&got["text"]) <= 3000);
    }

    #[test]
    fn sample_message() {
        let hook = super::super::testing::webhook(Format::Slack);
        let got = body(Format::Slack, &super::super::sample_event(&hook, "proj"));
        assert_eq!(got["blocks"][0]["text"]["text"], "hookrelay test message");
        assert!(
            got["blocks"][2]["elements"][0]["text"]
                .as_str()
                .unwrap()
                .contains("<https://example.com/hookrelay/test|Open>")
        );
    }
}
