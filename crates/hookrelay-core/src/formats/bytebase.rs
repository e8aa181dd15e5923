//! `bytebase`: Bytebase's "Custom" project webhook, `{"activity_type": <event>, ...data}`.
//!
//! Bytebase documents the request body (`level`, `activity_type`, `title`, `description`,
//! `link`, `creator_id`, `creator_name`, `created_ts`, `issue`, `project`) and the answer: a
//! 2xx whose JSON body has a non-zero `code` is a failure, with `message` saying why.

use serde_json::{Value, json};

use super::{Target, sample_with, spread, truncate_chars};
use crate::event::Event;
use crate::webhook::Webhook;

pub(super) const TARGET: Target = Target {
    body,
    sample,
    body_error,
};

/// Longest error taken from an answer, in characters: it ends up in delivery records.
const MAX_ERROR_CHARS: usize = 500;

fn body(_webhook: &Webhook, event: &Event) -> Value {
    spread(vec![("activity_type", json!(event.event))], &event.data)
}

/// Bytebase's example request, with the current time and the project's name.
fn sample(webhook: &Webhook, project: &str) -> Event {
    let data = json!({
        "level": "INFO",
        "title": "example webhook",
        "description": "example description",
        "link": "example link",
        "creator_id": 1,
        "creator_name": "Bytebase",
        "created_ts": chrono::Utc::now().timestamp(),
        "issue": {
            "id": 1,
            "name": "example issue",
            "status": "OPEN",
            "type": "bb.issue.database.create"
        },
        "project": {"id": 1, "name": project},
    });
    // The documented example's own activity type, spelled as the example spells it.
    sample_with(webhook, project, "bb.issue.created".to_string(), data)
}

/// The failure a 2xx answer carries: a JSON object whose `code` is not zero. The error is
/// its `message`, or "code N" when the message is missing or empty. `code` may be a number
/// or a string (the documentation types it as a string); anything else is no failure.
///
/// Bytebase's own failure example is not valid JSON (a comma is missing), so a receiver
/// written from it may answer the same way: a body that does not parse is scanned for a
/// `"code": N` and `"message": "…"` pair instead. A body with neither is no failure.
fn body_error(body: &[u8]) -> Option<String> {
    let (code, message) = match serde_json::from_slice::<Value>(body) {
        Ok(answer) => (answer.get("code").cloned()?, answer.get("message").cloned()),
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            (scan_value(&text, "code")?, scan_value(&text, "message"))
        }
    };
    let failed = match &code {
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => {
            let s = s.trim();
            match s.parse::<f64>() {
                Ok(f) => f != 0.0,
                Err(_) => !s.is_empty(),
            }
        }
        _ => false,
    };
    if !failed {
        return None;
    }
    let message = message
        .as_ref()
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let error = match (message, &code) {
        (Some(m), _) => m.to_string(),
        (None, Value::String(s)) => format!("code {}", s.trim()),
        (None, other) => format!("code {other}"),
    };
    Some(truncate_chars(&error, MAX_ERROR_CHARS))
}

/// The value after `"key":` in a text that is almost JSON: a quoted string or a number.
fn scan_value(text: &str, key: &str) -> Option<Value> {
    let quoted_key = format!("\"{key}\"");
    let after_key = &text[text.find(&quoted_key)? + quoted_key.len()..];
    let value = after_key.trim_start().strip_prefix(':')?.trim_start();
    if let Some(rest) = value.strip_prefix('"') {
        // Up to the first quote that is not escaped, then JSON-unescaped.
        let mut escaped = false;
        let end = rest.char_indices().find_map(|(i, c)| {
            let end_here = c == '"' && !escaped;
            escaped = c == '\\' && !escaped;
            end_here.then_some(i)
        })?;
        serde_json::from_str(&format!("\"{}\"", &rest[..end])).ok()
    } else {
        let end = value
            .find(|c: char| !(c.is_ascii_digit() || matches!(c, '-' | '+' | '.' | 'e' | 'E')))
            .unwrap_or(value.len());
        serde_json::from_str(&value[..end]).ok()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap: a panic is a failed test
mod tests {
    use super::super::testing::{event, keys, parse, webhook};
    use crate::webhook::Format;

    /// Bytebase's example request body.
    const EXAMPLE: &str = r#"{
      "level": "INFO",
      "activity_type": "bb.issue.created",
      "title": "example webhook",
      "description": "example description",
      "link": "example link",
      "creator_id": 1,
      "creator_name": "Bytebase",
      "created_ts": 1651212107,
      "issue": {
        "id": 1,
        "name": "example issue",
        "status": "OPEN",
        "type": "bb.issue.database.create"
      },
      "project": {
        "id": 1,
        "name": "demo"
      }
    }"#;

    /// Publishes `event` with `data` and compares the body with `expected` (as JSON values)
    /// and checks `activity_type` comes first.
    fn check(event_name: &str, data: &str, expected: &str) {
        let got = parse(&super::super::render(
            &webhook(Format::Bytebase),
            &event(event_name, parse(data)),
        ));
        assert_eq!(got, parse(expected), "{event_name}");
        assert_eq!(keys(&got)[0], "activity_type");
    }

    #[test]
    fn documented_request() {
        let mut data = parse(EXAMPLE);
        data.as_object_mut()
            .unwrap()
            .retain(|k, _| k != "activity_type");
        check("bb.issue.created", &data.to_string(), EXAMPLE);
        check(
            "bb.issue.status.update",
            r#"{"level": "SUCCESS", "title": "Issue done", "issue": {"id": 7, "status": "DONE"}}"#,
            r#"{"activity_type": "bb.issue.status.update", "level": "SUCCESS", "title": "Issue done", "issue": {"id": 7, "status": "DONE"}}"#,
        );
    }

    #[test]
    fn edge_cases() {
        check(
            "bb.issue.create",
            r#"{"activity_type": "spoofed", "level": "WARN"}"#,
            r#"{"activity_type": "bb.issue.create", "level": "WARN"}"#,
        );
        check(
            "bb.issue.create",
            "42",
            r#"{"activity_type": "bb.issue.create", "data": 42}"#,
        );
        check(
            "bb.issue.create",
            "null",
            r#"{"activity_type": "bb.issue.create"}"#,
        );
    }

    #[test]
    fn sample_is_the_documented_example() {
        let hook = webhook(Format::Bytebase);
        let ev = super::super::sample_event(&hook, "demo");
        let mut got = parse(&super::super::render(&hook, &ev));
        assert!(got["created_ts"].as_i64().unwrap() > 1_700_000_000);
        got["created_ts"] = 1651212107.into();
        assert_eq!(got, parse(EXAMPLE));
    }

    /// One answer body and the error it carries.
    fn check_answer(body: &str, expected: Option<&str>) {
        assert_eq!(
            super::body_error(body.as_bytes()).as_deref(),
            expected,
            "{body}"
        );
    }

    #[test]
    fn answer_cases() {
        check_answer(r#"{"code": 0, "message": ""}"#, None);
        check_answer(r#"{"code": "0", "message": ""}"#, None);
        check_answer(r#"{"code": 0.0}"#, None);
        check_answer(r#"{"message": "no code at all"}"#, None);
        check_answer(r#"{"code": null, "message": "x"}"#, None);
        check_answer(r#"{"code": false}"#, None);
        check_answer("", None);
        check_answer("OK", None);
        check_answer("<html>code: 5</html>", None);
        check_answer("[1, 2]", None);
        check_answer(
            r#"{"code": 400, "message": "Ops, some error occured!"}"#,
            Some("Ops, some error occured!"),
        );
        check_answer(r#"{"code": "500", "message": "broken"}"#, Some("broken"));
        check_answer(r#"{"code": -1, "message": "  "}"#, Some("code -1"));
        check_answer(r#"{"code": 7}"#, Some("code 7"));
        check_answer(r#"{"code": "E_AUTH"}"#, Some("code E_AUTH"));
        check_answer(r#"{"code": 1, "message": 5}"#, Some("code 1"));
        // Bytebase's own failure example, comma missing as in the documentation.
        check_answer(
            "{\n    \"code\": 400\n    \"message\": \"Ops, some error occured!\"\n}",
            Some("Ops, some error occured!"),
        );
        check_answer(r#"{"code": 0 "message": "fine"}"#, None);
        check_answer(
            r#"{"code": 3 "message": "say \"hi\""}"#,
            Some(r#"say "hi""#),
        );
        check_answer(r#"{"code": "9" "msg": "x"}"#, Some("code 9"));
        let long = format!(r#"{{"code": 1, "message": "{}"}}"#, "x".repeat(2000));
        assert_eq!(
            super::body_error(long.as_bytes()).unwrap().chars().count(),
            500
        );
    }
}
