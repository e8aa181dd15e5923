//! Payload formats: data in, bytes out, no IO. One module per target.
//!
//! Every target is a [`Target`]: how it renders an event into a body, the sample event a
//! webhook test sends, and how it reads a 2xx answer that may still carry a failure. The one
//! `match` in [`target`] picks it, so adding a target means adding one file and one arm.
//!
//! Three kinds of target live here:
//! - the envelope `json` (UbiOps-style: the whole event);
//! - the spread formats `bailo`, `comet` and `bytebase`: the format's own key(s) first, then
//!   the event's `data` object key by key, in the order the publisher gave them (serde_json's
//!   `preserve_order` is on in this workspace for that reason). A key of `data` with the same
//!   name as the format's own key does not override it. `data` that is not an object goes
//!   under a `"data"` key instead; `null` data adds nothing;
//! - the chat targets (`slack`, `discord`, `teams`, `dingtalk`, `feishu`, `wecom`): a message
//!   built from `data.title`, `data.description`, `data.link` and `data.level`, see [`Message`].
//!
//! With `github_actions` the body is wrapped as a GitHub `repository_dispatch` request.

mod bailo;
mod bytebase;
mod comet;
mod dingtalk;
mod discord;
mod feishu;
mod json;
mod slack;
mod teams;
mod wecom;

use serde_json::{Map, Value, json};

use crate::event::Event;
use crate::webhook::{Format, Webhook};

/// What a target provides: plain functions, so a target is data, not a trait object.
#[derive(Clone, Copy)]
struct Target {
    /// The body of a delivery of an event, before any GitHub wrapping.
    body: fn(&Webhook, &Event) -> Value,
    /// The event a webhook test sends.
    sample: fn(&Webhook, &str) -> Event,
    /// The failure a 2xx answer body carries, if the target reports failures that way.
    body_error: fn(&[u8]) -> Option<String>,
}

/// The one table of targets.
fn target(format: Format) -> Target {
    match format {
        Format::Json => json::TARGET,
        Format::Bailo => bailo::TARGET,
        Format::Comet => comet::TARGET,
        Format::Bytebase => bytebase::TARGET,
        Format::Slack => slack::TARGET,
        Format::Discord => discord::TARGET,
        Format::Teams => teams::TARGET,
        Format::Dingtalk => dingtalk::TARGET,
        Format::Feishu => feishu::TARGET,
        Format::Wecom => wecom::TARGET,
    }
}

/// Renders the body of a delivery of `event` to `webhook`.
pub fn render(webhook: &Webhook, event: &Event) -> String {
    render_value(webhook, event).to_string()
}

/// The body of a delivery as a JSON value: the format's body, wrapped as a GitHub
/// `repository_dispatch` (`{"event_type", "client_payload"}`) when `github_actions` is set.
///
/// GitHub accepts at most 10 top-level keys in `client_payload` and at most 100 characters
/// in `event_type`; the body is sent as it is and GitHub's answer says when it is too big.
pub fn render_value(webhook: &Webhook, event: &Event) -> Value {
    let body = (target(webhook.format).body)(webhook, event);
    if webhook.github_actions {
        json!({ "event_type": event.event, "client_payload": body })
    } else {
        body
    }
}

/// The sample event a webhook test sends for this webhook's format.
pub fn sample_event(webhook: &Webhook, project: &str) -> Event {
    (target(webhook.format).sample)(webhook, project)
}

/// For formats whose receivers report failure inside a 2xx body (Bytebase: a non-zero
/// `code`), the error that body carries; `None` when the answer is a success.
pub fn body_error(format: Format, body: &[u8]) -> Option<String> {
    (target(format).body_error)(body)
}

/// `body_error` of the targets whose 2xx answers always mean success.
fn no_body_error(_body: &[u8]) -> Option<String> {
    None
}

/// The error in a chat service's 2xx answer of the form `{"<code>": N, "<message>": "…"}`
/// with a non-zero N (DingTalk and WeCom: `errcode`/`errmsg`; Feishu: `code`/`msg`), e.g. a
/// missing security keyword. Answers that are not such JSON are taken as success.
fn chat_code_error(body: &[u8], code: &str, message: &str) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    let n = value.get(code)?.as_i64()?;
    if n == 0 {
        return None;
    }
    let text = value.get(message).and_then(Value::as_str).unwrap_or("");
    let text: String = text.chars().take(300).collect();
    Some(if text.is_empty() {
        format!("HTTP 200 but the answer says {code} {n}")
    } else {
        format!("HTTP 200 but the answer says {code} {n}: {text}")
    })
}

/// A body of a spread format: `own` keys first, then `data`'s keys in their order, skipping
/// any that `own` already has. Non-object `data` goes under `"data"`; `null` adds nothing.
fn spread(own: Vec<(&str, Value)>, data: &Value) -> Value {
    let mut body = Map::new();
    for (key, value) in own {
        body.insert(key.to_string(), value);
    }
    match data {
        Value::Object(fields) => {
            for (key, value) in fields {
                if !body.contains_key(key) {
                    body.insert(key.clone(), value.clone());
                }
            }
        }
        Value::Null => {}
        other => {
            if !body.contains_key("data") {
                body.insert("data".to_string(), other.clone());
            }
        }
    }
    Value::Object(body)
}

/// The event name a sample sends: the webhook's own event, or its first named one when it
/// listens to `*`, or `webhook_test` when it names none.
fn sample_event_name(webhook: &Webhook) -> String {
    std::iter::once(&webhook.event)
        .chain(webhook.events.iter())
        .find(|e| e.as_str() != "*" && !e.is_empty())
        .cloned()
        .unwrap_or_else(|| "webhook_test".to_string())
}

/// A sample event with the webhook's object and the given name and data.
fn sample_with(webhook: &Webhook, project: &str, event: String, data: Value) -> Event {
    Event {
        id: uuid::Uuid::new_v4().to_string(),
        project: project.to_string(),
        event,
        object_type: webhook.object_type.clone(),
        object_name: webhook.object_name.clone(),
        version: webhook.version.clone(),
        data,
        result: None,
        created_at: crate::time::Timestamp::now(),
    }
}

/// The sample of every chat target: a titled message with a description and a link. The
/// title holds "hookrelay" so a DingTalk or Feishu robot whose keyword is "hookrelay" takes it.
fn chat_sample(webhook: &Webhook, project: &str) -> Event {
    let data = json!({
        "level": "INFO",
        "title": "hookrelay test message",
        "description": format!(
            "Test delivery of webhook {} in project {project}. If you can read this, the webhook works.",
            webhook.name
        ),
        "link": "https://example.com/hookrelay/test",
    });
    sample_with(webhook, project, sample_event_name(webhook), data)
}

/// Severity of a chat message, from `data.level` (Bytebase's INFO / SUCCESS / WARN / ERROR).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Info,
    Success,
    Warn,
    Error,
}

impl Level {
    /// Reads a level name, case-insensitively; `WARNING` is taken for `WARN`.
    fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_uppercase().as_str() {
            "INFO" => Some(Level::Info),
            "SUCCESS" => Some(Level::Success),
            "WARN" | "WARNING" => Some(Level::Warn),
            "ERROR" => Some(Level::Error),
            _ => None,
        }
    }

    /// The name shown in messages.
    fn label(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Success => "SUCCESS",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// What a chat target shows, taken from an event with fallbacks so that any event gives a
/// readable message: no title → event name and object; no description → a sentence about
/// the event (or the data itself when it is not an object).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Message {
    /// Never empty; `data.title` verbatim when given, so a keyword in it survives.
    title: String,
    /// Never empty.
    description: String,
    /// `data.link` when given; see [`Message::web_link`].
    link: Option<String>,
    /// `data.level` when given and known.
    level: Option<Level>,
    /// The event name, for footers.
    event: String,
}

/// Longest description a chat message carries before it is cut, in characters. Each target
/// cuts further where its own limit is smaller.
const MAX_DESCRIPTION_CHARS: usize = 4000;

impl Message {
    fn from_event(event: &Event) -> Message {
        let field = |name: &str| {
            event
                .data
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_string)
        };
        let object = match &event.version {
            Some(v) => format!("{} {} (version {v})", event.object_type, event.object_name),
            None => format!("{} {}", event.object_type, event.object_name),
        };
        let title = field("title").unwrap_or_else(|| format!("{}: {object}", event.event));
        let description = field("description").unwrap_or_else(|| match &event.data {
            Value::Object(_) | Value::Null => format!(
                "Event {} for {object} in project {}.",
                event.event, event.project
            ),
            Value::String(s) if !s.trim().is_empty() => s.clone(),
            other => other.to_string(),
        });
        Message {
            title,
            description: truncate_chars(&description, MAX_DESCRIPTION_CHARS),
            link: field("link"),
            level: field("level").as_deref().and_then(Level::parse),
            event: event.event.clone(),
        }
    }

    /// The link when it is an http(s) URL, which every target can make clickable. Other links
    /// (Bytebase's own example has "example link") are shown as text instead, because some
    /// receivers refuse a message whose link field is not a URL.
    fn web_link(&self) -> Option<&str> {
        self.link.as_deref().filter(|l| is_web_link(l))
    }

    /// The link when it is not an http(s) URL, to be shown as text.
    fn text_link(&self) -> Option<&str> {
        self.link.as_deref().filter(|l| !is_web_link(l))
    }

    /// Plain-text footer: level (if given) and event name.
    fn footer(&self) -> String {
        match self.level {
            Some(level) => format!("{} · {}", level.label(), self.event),
            None => self.event.clone(),
        }
    }
}

fn is_web_link(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    (lower.starts_with("https://") || lower.starts_with("http://"))
        && !s.contains(char::is_whitespace)
}

/// `s` cut to at most `max` characters, ending in "…" when cut.
fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// `s` cut to at most `max` bytes of UTF-8 on a character boundary, ending in "…" when cut.
fn truncate_bytes(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let ellipsis = '…';
    let budget = max.saturating_sub(ellipsis.len_utf8());
    let mut end = 0;
    for (i, c) in s.char_indices() {
        if i + c.len_utf8() > budget {
            break;
        }
        end = i + c.len_utf8();
    }
    let mut out = s[..end].to_string();
    out.push(ellipsis);
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod testing {
    //! Shared fixtures of the format tests.

    use serde_json::Value;

    use crate::event::Event;
    use crate::webhook::{Format, Webhook, WebhookDraft};

    /// A webhook of `format` for model `model-1`.
    pub fn webhook(format: Format) -> Webhook {
        WebhookDraft {
            format,
            ..WebhookDraft::new(
                "hook-1",
                "https://receiver.example.com/hook",
                "model",
                "model-1",
                "*",
            )
        }
        .into_webhook(
            "5f0c6a52-3f4b-4d8e-9a36-5f2f0b8f7d10".into(),
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
            "2025-01-21T12:00:00.000Z".parse().unwrap(),
        )
    }

    /// An event `name` on model `model-1` of project `proj` with `data`.
    pub fn event(name: &str, data: Value) -> Event {
        Event {
            id: "evt-1".into(),
            project: "proj".into(),
            event: name.into(),
            object_type: "model".into(),
            object_name: "model-1".into(),
            version: None,
            data,
            result: None,
            created_at: "2025-01-21T12:00:00.000Z".parse().unwrap(),
        }
    }

    /// Parses a JSON text of a test fixture.
    pub fn parse(text: &str) -> Value {
        serde_json::from_str(text).unwrap()
    }

    /// The rendered body of `event` for a default webhook of `format`, parsed back.
    pub fn body(format: Format, event: &Event) -> Value {
        parse(&super::render(&webhook(format), event))
    }

    /// The body `format` renders for the Bytebase event `bb.issue.create` with `data`.
    pub fn bytebase_body(format: Format, data: &str) -> Value {
        body(format, &event("bb.issue.create", parse(data)))
    }

    /// Checks that `format` renders `bb.issue.create` with `data` as `expected`, whole.
    pub fn check_message(format: Format, data: &str, expected: &str) {
        assert_eq!(bytebase_body(format, data), parse(expected), "{data}");
    }

    /// The keys of a JSON object, in order.
    pub fn keys(v: &Value) -> Vec<String> {
        v.as_object().unwrap().keys().cloned().collect()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::testing::{body, event, keys, parse, webhook};
    use super::*;

    #[test]
    fn json_maps_keep_insertion_order() {
        // The spread formats promise the publisher's key order; that needs serde_json's
        // `preserve_order` feature (workspace Cargo.toml). Without it this fails first.
        let v = parse(r#"{"zeta": 1, "alpha": 2, "mid": 3}"#);
        assert_eq!(v.to_string(), r#"{"zeta":1,"alpha":2,"mid":3}"#);
    }

    #[test]
    fn github_actions_wraps_every_format() {
        for format in Format::ALL {
            let mut hook = webhook(format);
            let ev = event(
                "MODEL_VERSION_CREATED",
                json!({"title": "t", "version": "1"}),
            );
            let plain = parse(&render(&hook, &ev));
            hook.github_actions = true;
            let wrapped = parse(&render(&hook, &ev));
            assert_eq!(
                wrapped,
                json!({"event_type": "MODEL_VERSION_CREATED", "client_payload": plain}),
                "{format}"
            );
            assert_eq!(keys(&wrapped), ["event_type", "client_payload"], "{format}");
        }
    }

    #[test]
    fn every_format_renders_any_data_without_panicking() {
        let datas = [
            Value::Null,
            json!(true),
            json!(42),
            json!("just a string"),
            json!(["a", 1]),
            json!({}),
            json!({"title": 5, "description": null, "link": ["x"], "level": {}}),
            json!({"title": "", "description": "   ", "link": "", "level": "loud"}),
            json!({"title": "t".repeat(20_000), "description": "d".repeat(100_000)}),
            json!({"title": "é€😀".repeat(3000), "description": "中".repeat(50_000), "link": "https://example.com/😀"}),
        ];
        for format in Format::ALL {
            for data in &datas {
                let ev = event("some_event", data.clone());
                let text = render(&webhook(format), &ev);
                let v: Value = serde_json::from_str(&text).unwrap();
                assert!(v.is_object(), "{format}: {text}");
            }
        }
    }

    #[test]
    fn every_sample_renders() {
        for format in Format::ALL {
            let hook = webhook(format);
            let ev = sample_event(&hook, "proj");
            assert_eq!(ev.project, "proj");
            assert!(!ev.event.is_empty() && ev.event != "*", "{format}");
            assert!(uuid::Uuid::parse_str(&ev.id).is_ok(), "{format}");
            let v = body(format, &ev);
            assert!(v.is_object(), "{format}");
        }
    }

    #[test]
    fn body_error_is_read_where_the_service_reports_failure_in_a_2xx() {
        let failing = br#"{"code": 400, "message": "Ops"}"#;
        for format in Format::ALL {
            let got = body_error(format, failing);
            match format {
                Format::Bytebase => assert_eq!(got.as_deref(), Some("Ops")),
                Format::Feishu => assert_eq!(
                    got.as_deref(),
                    Some("HTTP 200 but the answer says code 400")
                ),
                _ => assert_eq!(got, None, "{format}"),
            }
        }
        let check = |format: Format, body: &str, want: Option<&str>| {
            assert_eq!(
                body_error(format, body.as_bytes()).as_deref(),
                want,
                "{format} {body}"
            );
        };
        check(Format::Dingtalk, r#"{"errcode":0,"errmsg":"ok"}"#, None);
        check(
            Format::Dingtalk,
            r#"{"errcode":310000,"errmsg":"keywords not in content"}"#,
            Some("HTTP 200 but the answer says errcode 310000: keywords not in content"),
        );
        check(Format::Wecom, r#"{"errcode":0,"errmsg":"ok"}"#, None);
        check(
            Format::Wecom,
            r#"{"errcode":93000,"errmsg":"invalid webhook url"}"#,
            Some("HTTP 200 but the answer says errcode 93000: invalid webhook url"),
        );
        check(Format::Feishu, r#"{"code":0,"msg":"success"}"#, None);
        check(
            Format::Feishu,
            r#"{"code":19024,"msg":"Key Words Not Found"}"#,
            Some("HTTP 200 but the answer says code 19024: Key Words Not Found"),
        );
        check(Format::Feishu, "not json", None);
        check(Format::Slack, r#"{"errcode":1}"#, None);
    }

    #[test]
    fn sample_event_name_cases() {
        let check = |event: &str, events: &[&str], expected: &str| {
            let mut hook = webhook(Format::Json);
            hook.event = event.into();
            hook.events = events.iter().map(|e| e.to_string()).collect();
            assert_eq!(sample_event_name(&hook), expected, "{event} {events:?}");
        };
        check(
            "deployment_request_finished",
            &[],
            "deployment_request_finished",
        );
        check("*", &["createRelease", "updateRelease"], "createRelease");
        check("*", &["*", "x"], "x");
        check("*", &[], "webhook_test");
    }

    #[test]
    fn message_fallbacks() {
        let check = |data: Value, title: &str, description: &str| {
            let mut ev = event("deployment_request_finished", data);
            ev.object_type = "deployment".into();
            ev.object_name = "deployment-1".into();
            ev.version = Some("v1".into());
            let m = Message::from_event(&ev);
            assert_eq!(m.title, title);
            assert_eq!(m.description, description);
        };
        let t = "deployment_request_finished: deployment deployment-1 (version v1)";
        let d = "Event deployment_request_finished for deployment deployment-1 (version v1) in project proj.";
        check(json!({}), t, d);
        check(Value::Null, t, d);
        check(json!({"title": "  ", "description": 7}), t, d);
        check(json!({"title": "T", "description": "D"}), "T", "D");
        check(json!("a plain string"), t, "a plain string");
        check(json!([1, 2]), t, "[1,2]");
        check(json!(3.5), t, "3.5");
    }

    #[test]
    fn level_cases() {
        let check = |s: &str, want: Option<Level>| assert_eq!(Level::parse(s), want, "{s}");
        check("INFO", Some(Level::Info));
        check("success", Some(Level::Success));
        check(" Warn ", Some(Level::Warn));
        check("WARNING", Some(Level::Warn));
        check("ERROR", Some(Level::Error));
        check("FATAL", None);
        check("", None);
    }

    #[test]
    fn truncation_cases() {
        let chars = |s: &str, max: usize, want: &str| assert_eq!(truncate_chars(s, max), want);
        chars("hello", 5, "hello");
        chars("hello!", 5, "hell…");
        chars("日本語テキスト", 4, "日本語…");
        let bytes = |s: &str, max: usize, want: &str| {
            let got = truncate_bytes(s, max);
            assert!(got.len() <= max, "{got:?}");
            assert_eq!(got, want);
        };
        bytes("hello", 5, "hello");
        bytes("hello world", 8, "hello…");
        bytes("日本語テキスト", 10, "日本…");
        bytes("😀😀", 7, "😀…");
        bytes("😀😀", 6, "…");
    }

    #[test]
    fn web_link_cases() {
        let check = |s: &str, want: bool| assert_eq!(is_web_link(s), want, "{s}");
        check("https://example.com/x", true);
        check("HTTP://example.com", true);
        check("example link", false);
        check("ftp://example.com", false);
        check("javascript:alert(1)", false);
        check("https://exa mple.com", false);
    }
}
