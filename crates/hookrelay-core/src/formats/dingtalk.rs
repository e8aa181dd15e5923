//! `dingtalk`: a DingTalk custom robot (group webhook) message.
//!
//! Follows DingTalk's custom robot documentation, message type `markdown`:
//! `{"msgtype": "markdown", "markdown": {"title", "text"}}`. `title` is what the chat list
//! shows; `text` is the message, in the Markdown subset DingTalk documents (headings, bold,
//! links, quotes, paragraphs separated by a blank line). DingTalk's markdown has no
//! documented colour, so the level is a coloured emoji and its name in bold.
//!
//! A robot protected by keywords only takes messages that contain one; the title is kept
//! verbatim in both `title` and `text`, so a keyword the publisher put in the title is there.

use serde_json::{Value, json};

use super::{Level, Message, Target, chat_code_error, chat_sample};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample: chat_sample,
    body_error: |body| chat_code_error(body, "errcode", "errmsg"),
};

fn emoji(level: Level) -> &'static str {
    match level {
        Level::Info => "🔵",
        Level::Success => "🟢",
        Level::Warn => "🟠",
        Level::Error => "🔴",
    }
}

/// A URL made safe as a Markdown link target: the parentheses that would end it are
/// percent-encoded.
pub(super) fn markdown_url(link: &str) -> String {
    link.replace('(', "%28").replace(')', "%29")
}

fn body(_webhook: &Webhook, event: &Event) -> Value {
    let m = Message::from_event(event);
    let mut paragraphs = vec![format!("### {}", m.title)];
    if let Some(level) = m.level {
        paragraphs.push(format!("{} **{}**", emoji(level), level.label()));
    }
    paragraphs.push(m.description.clone());
    if let Some(link) = m.web_link() {
        paragraphs.push(format!("[Open]({})", markdown_url(link)));
    } else if let Some(link) = m.text_link() {
        paragraphs.push(link.to_string());
    }
    paragraphs.push(format!("> {}", m.event));
    json!({
        "msgtype": "markdown",
        "markdown": {"title": m.title, "text": paragraphs.join("\n\n")},
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::super::testing::{body, check_message, event};
    use crate::webhook::Format;

    /// Publishes `data` as event `bb.issue.create` and compares the whole message.
    fn check(data: &str, expected: &str) {
        check_message(Format::Dingtalk, data, expected);
    }

    #[test]
    fn messages() {
        check(
            r#"{"level": "ERROR", "title": "Bytebase: issue failed", "description": "Task 3 failed", "link": "https://bb.example.com/issue/(1)"}"#,
            r####"{"msgtype": "markdown", "markdown": {"title": "Bytebase: issue failed", "text": "### Bytebase: issue failed\n\n🔴 **ERROR**\n\nTask 3 failed\n\n[Open](https://bb.example.com/issue/%281%29)\n\n> bb.issue.create"}}"####,
        );
        check(
            r#"{"level": "SUCCESS", "title": "Done", "description": "ok", "link": "example link"}"#,
            r####"{"msgtype": "markdown", "markdown": {"title": "Done", "text": "### Done\n\n🟢 **SUCCESS**\n\nok\n\nexample link\n\n> bb.issue.create"}}"####,
        );
        check(
            "[1]",
            r####"{"msgtype": "markdown", "markdown": {"title": "bb.issue.create: model model-1", "text": "### bb.issue.create: model model-1\n\n[1]\n\n> bb.issue.create"}}"####,
        );
    }

    #[test]
    fn keyword_in_title_survives() {
        let data = serde_json::json!({"title": "[Bytebase] **odd** <title>", "description": "d"});
        let got = body(Format::Dingtalk, &event("e", data));
        assert_eq!(got["markdown"]["title"], "[Bytebase] **odd** <title>");
        assert!(
            got["markdown"]["text"]
                .as_str()
                .unwrap()
                .contains("[Bytebase] **odd** <title>")
        );
    }
}
