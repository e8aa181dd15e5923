//! `wecom`: a WeCom (WeChat Work) group robot message.
//!
//! Follows WeCom's group robot documentation, message type `markdown`:
//! `{"msgtype": "markdown", "markdown": {"content"}}`, content at most 4096 bytes of UTF-8, in
//! the Markdown subset WeCom documents (headings, bold, links, quotes, and `<font color>` with
//! its three colours `info` green, `comment` grey, `warning` orange-red). The level is shown
//! in its colour: INFO grey, SUCCESS green, WARN and ERROR orange-red.

use serde_json::{Value, json};

use super::dingtalk::markdown_url;
use super::{Level, Message, Target, chat_code_error, chat_sample, truncate_bytes};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample: chat_sample,
    body_error: |body| chat_code_error(body, "errcode", "errmsg"),
};

/// WeCom's limit on markdown content, in bytes.
const MAX_CONTENT_BYTES: usize = 4096;

fn color(level: Level) -> &'static str {
    match level {
        Level::Info => "comment",
        Level::Success => "info",
        Level::Warn | Level::Error => "warning",
    }
}

fn body(_webhook: &Webhook, event: &Event) -> Value {
    let m = Message::from_event(event);
    let mut head = vec![format!("### {}", m.title)];
    if let Some(level) = m.level {
        head.push(format!(
            "<font color=\"{}\">{}</font>",
            color(level),
            level.label()
        ));
    }
    let mut tail = Vec::new();
    if let Some(link) = m.web_link() {
        tail.push(format!("[Open]({})", markdown_url(link)));
    } else if let Some(link) = m.text_link() {
        tail.push(link.to_string());
    }
    tail.push(format!("<font color=\"comment\">{}</font>", m.event));
    let head = head.join("\n");
    let tail = tail.join("\n");
    // The description gives way first, so title, level and link fit when they can.
    let room = MAX_CONTENT_BYTES.saturating_sub(head.len() + tail.len() + 2);
    let content = format!("{head}\n{}\n{tail}", truncate_bytes(&m.description, room));
    json!({
        "msgtype": "markdown",
        "markdown": {"content": truncate_bytes(&content, MAX_CONTENT_BYTES)},
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::super::testing::{body, check_message, event};
    use crate::webhook::Format;

    /// Publishes `data` as event `bb.issue.create` and compares the whole message.
    fn check(data: &str, expected: &str) {
        check_message(Format::Wecom, data, expected);
    }

    #[test]
    fn messages() {
        check(
            r#"{"level": "ERROR", "title": "Bytebase: issue failed", "description": "Task 3 failed", "link": "https://bb.example.com/issue/1"}"#,
            r####"{"msgtype": "markdown", "markdown": {"content": "### Bytebase: issue failed\n<font color=\"warning\">ERROR</font>\nTask 3 failed\n[Open](https://bb.example.com/issue/1)\n<font color=\"comment\">bb.issue.create</font>"}}"####,
        );
        check(
            r#"{"level": "SUCCESS", "title": "Done", "description": "ok"}"#,
            r####"{"msgtype": "markdown", "markdown": {"content": "### Done\n<font color=\"info\">SUCCESS</font>\nok\n<font color=\"comment\">bb.issue.create</font>"}}"####,
        );
        check(
            r#"{"level": "INFO", "title": "Note", "description": "fyi", "link": "example link"}"#,
            r####"{"msgtype": "markdown", "markdown": {"content": "### Note\n<font color=\"comment\">INFO</font>\nfyi\nexample link\n<font color=\"comment\">bb.issue.create</font>"}}"####,
        );
        check(
            "true",
            r####"{"msgtype": "markdown", "markdown": {"content": "### bb.issue.create: model model-1\ntrue\n<font color=\"comment\">bb.issue.create</font>"}}"####,
        );
    }

    #[test]
    fn content_fits_in_4096_bytes_keeping_title_and_link() {
        let data = serde_json::json!({
            "level": "WARN",
            "title": "Keyword title",
            "description": "中".repeat(5000),
            "link": "https://example.com/x",
        });
        let got = body(Format::Wecom, &event("e", data));
        let content = got["markdown"]["content"].as_str().unwrap();
        assert!(content.len() <= 4096, "{}", content.len());
        assert!(content.starts_with("### Keyword title\n<font color=\"warning\">WARN</font>\n中"));
        assert!(
            content.ends_with("…\n[Open](https://example.com/x)\n<font color=\"comment\">e</font>")
        );
    }
}
