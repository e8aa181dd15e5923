//! `formats_render`: every payload format renders any event to a JSON object, never panics,
//! and keeps the limits its receiver documents; a webhook test's sample event renders too;
//! reading an answer body for a failure never panics.
//!
//! Input: three header bytes, then fields separated by `0xFF`:
//!
//! | header byte | meaning |
//! | --- | --- |
//! | 0 | bit 0 `include_result`, bit 1 the event has a `version`, bit 2 it has a `result`, bit 3 stretch (below) |
//! | 1, 2 | with bit 3: stretch `data.title`, `data.description` and `data.link` (or `data` itself when it is a string) to `40 × byte1 + byte2` characters, so the fuzzer reaches the receivers' length limits without huge inputs. A flag rather than always, because long texts make a run many times slower |
//!
//! Fields, in order: event name (also the webhook's `event`, and after the first `,` its
//! `events`), object type, object name, version, project, webhook name, `data`, `result`,
//! and last, everything left, the answer body given to `body_error`. `data` and `result`
//! are the JSON document when the field is one, else the field's text as a JSON string.


use hookrelay_core::formats::{body_error, render, sample_event};
use hookrelay_core::{Event, Format, Webhook, WebhookDraft};
use serde_json::Value;

use crate::input::{Input, json_or_string};

/// The most characters a failure read from an answer may have: it ends up in delivery
/// records (Bytebase's reader cuts at 500, the chat readers at 300 plus a short prefix).
const MAX_BODY_ERROR_CHARS: usize = 500;

/// Checks one fuzz input against every format.
pub fn check(data: &[u8]) {
    let mut input = Input::<3>::new(data);
    let include_result = input.flag(0, 0);
    let has_version = input.flag(0, 1);
    let has_result = input.flag(0, 2);
    let stretch_to = input
        .flag(0, 3)
        .then(|| usize::from(input.header[1]) * 40 + usize::from(input.header[2]));

    let event_name = input.text();
    let object_type = input.text();
    let object_name = input.text();
    let version = input.text();
    let project = input.text();
    let webhook_name = input.text();
    let mut event_data = json_or_string(input.bytes());
    let result = json_or_string(input.bytes());
    let answer = input.rest();
    if let Some(len) = stretch_to {
        stretch_message_fields(&mut event_data, len);
    }

    let mut events = event_name.split(',').map(str::to_string);
    let mut hook = webhook(
        events.next().unwrap_or_default(),
        events.collect(),
        &object_type,
        &object_name,
    );
    hook.name = webhook_name;
    hook.include_result = include_result;
    hook.version = has_version.then(|| version.clone());
    let event = Event {
        id: "evt-fuzz".into(),
        project: project.clone(),
        event: event_name,
        object_type,
        object_name,
        version: has_version.then_some(version),
        data: event_data,
        result: has_result.then_some(result),
        created_at: hookrelay_core::time::Timestamp::from_ms(1_737_460_800_000),
    };

    for format in Format::ALL {
        hook.format = format;
        check_render(&mut hook, &event);

        let sample = sample_event(&hook, &project);
        assert_eq!(
            sample.project, project,
            "{format}: sample of another project"
        );
        assert!(
            !sample.event.is_empty() && sample.event != "*",
            "{format}: sample event name {:?}",
            sample.event
        );
        check_render(&mut hook, &sample);

        if let Some(error) = body_error(format, &answer) {
            let chars = error.chars().count();
            assert!(chars > 0, "{format}: empty body error");
            assert!(
                chars <= MAX_BODY_ERROR_CHARS,
                "{format}: body error of {chars} characters"
            );
        }
    }
}

/// Renders `event` for `hook` plain and wrapped for GitHub Actions, and checks both.
fn check_render(hook: &mut Webhook, event: &Event) {
    let format = hook.format;
    hook.github_actions = false;
    let plain = render(hook, event);
    let body: Value = match serde_json::from_str(&plain) {
        Ok(body) => body,
        Err(e) => panic!("{format}: body is not JSON ({e}): {plain}"),
    };
    assert!(body.is_object(), "{format}: body is not an object: {plain}");
    check_format_body(hook, event, &body);

    hook.github_actions = true;
    let wrapped = render(hook, event);
    hook.github_actions = false;
    // Compared as text: re-parsing floats need not give the same bits back, the text must.
    let want = format!(
        "{{\"event_type\":{},\"client_payload\":{plain}}}",
        Value::String(event.event.clone())
    );
    assert_eq!(wrapped, want, "{format}: GitHub Actions wrapping");
}

/// The checks particular to one format: the keys it promises and its receiver's limits.
fn check_format_body(hook: &Webhook, event: &Event, body: &Value) {
    let format = hook.format;
    let first_key = body
        .as_object()
        .and_then(|o| o.keys().next())
        .map(String::as_str);
    let event_name = Some(&Value::String(event.event.clone()));
    match format {
        Format::Json => {
            assert_eq!(first_key, Some("id"), "json: first key");
            assert_eq!(body.get("event"), event_name, "json: event");
            assert_eq!(
                body.get("result").is_some(),
                hook.include_result,
                "json: result present iff include_result"
            );
        }
        Format::Bailo => {
            assert_eq!(first_key, Some("event"), "bailo: first key");
            assert_eq!(body.get("event"), event_name, "bailo: event");
            assert!(body.get("description").is_some_and(Value::is_string));
        }
        Format::Comet => {
            assert_eq!(first_key, Some("eventTrigger"), "comet: first key");
            assert_eq!(body.get("eventTrigger"), event_name, "comet: eventTrigger");
        }
        Format::Bytebase => {
            assert_eq!(first_key, Some("activity_type"), "bytebase: first key");
            assert_eq!(
                body.get("activity_type"),
                event_name,
                "bytebase: activity_type"
            );
        }
        Format::Slack => {
            let header = text_at(format, body, "/blocks/0/text/text");
            assert!(header.chars().count() <= 150, "slack: header over 150");
            for pointer in ["/text", "/blocks/1/text/text"] {
                let text = text_at(format, body, pointer);
                assert!(text.chars().count() <= 3000, "slack: {pointer} over 3000");
                assert!(
                    !text.contains(['<', '>']),
                    "slack: unescaped markup in {pointer}: {text}"
                );
            }
            let context = text_at(format, body, "/blocks/2/elements/0/text");
            assert!(context.chars().count() <= 3000, "slack: context over 3000");
            // At most the one `<link|Open>` of a web link; everything else is escaped.
            assert!(
                context.matches('<').count() <= 1 && context.matches('>').count() <= 1,
                "slack: unescaped markup in the context: {context}"
            );
        }
        Format::Discord => {
            let title = text_at(format, body, "/embeds/0/title");
            assert!(title.chars().count() <= 256, "discord: title over 256");
            let description = text_at(format, body, "/embeds/0/description");
            assert!(
                description.chars().count() <= 4096,
                "discord: description over 4096"
            );
            assert_eq!(
                body.pointer("/allowed_mentions/parse"),
                Some(&Value::Array(vec![])),
                "discord: mentions must stay off"
            );
        }
        Format::Wecom => {
            let content = text_at(format, body, "/markdown/content");
            assert!(content.len() <= 4096, "wecom: content over 4096 bytes");
        }
        Format::Teams => {
            text_at(format, body, "/attachments/0/content/body/0/text");
        }
        Format::Dingtalk => {
            text_at(format, body, "/markdown/title");
            text_at(format, body, "/markdown/text");
        }
        Format::Feishu => {
            text_at(format, body, "/card/header/title/content");
        }
    }
}

/// The string at `pointer` in `body`; a missing or non-string value is a failure.
fn text_at<'a>(format: Format, body: &'a Value, pointer: &str) -> &'a str {
    match body.pointer(pointer).and_then(Value::as_str) {
        Some(text) => text,
        None => panic!("{format}: no text at {pointer}: {body}"),
    }
}

/// Stretches the fields chat messages are made of to `len` characters, by repeating them.
fn stretch_message_fields(data: &mut Value, len: usize) {
    match data {
        Value::Object(fields) => {
            for key in ["title", "description", "link"] {
                if let Some(Value::String(s)) = fields.get_mut(key) {
                    *s = stretch(s, len);
                }
            }
        }
        Value::String(s) => *s = stretch(s, len),
        _ => {}
    }
}

/// `s` repeated and cut to `len` characters; an empty `s` stays empty.
fn stretch(s: &str, len: usize) -> String {
    s.chars().cycle().take(len).collect()
}

/// A valid webhook of the default format with the given event filter and object.
fn webhook(event: String, events: Vec<String>, object_type: &str, object_name: &str) -> Webhook {
    WebhookDraft {
        events,
        ..WebhookDraft::new(
            "",
            "https://receiver.example.com/hook",
            object_type,
            object_name,
            event,
        )
    }
    .into_webhook(
        "5f0c6a52-3f4b-4d8e-9a36-5f2f0b8f7d10".into(),
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into(),
        // 2025-01-21T12:00:00.000Z
        hookrelay_core::time::Timestamp::from_ms(1_737_460_800_000),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn stretch_cases() {
        assert_eq!(super::stretch("ab", 5), "ababa");
        assert_eq!(super::stretch("日本", 3), "日本日");
        assert_eq!(super::stretch("", 10), "");
        assert_eq!(super::stretch("abc", 0), "");
    }
}
