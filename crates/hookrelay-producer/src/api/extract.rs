//! Request extractors whose every rejection is a JSON `{"error": "…"}` naming what is wrong,
//! instead of axum's plain-text defaults.
//!
//! JSON bodies: any or no `Content-Type` is accepted (curl users forget it; the token header,
//! not cookies, authenticates, so this opens no cross-site door). Unknown fields are ignored,
//! everywhere. A missing or wrong-typed field is a 400 naming its path (`headers[0].key`).
//! Nesting deeper than serde_json's limit (128) is a 400, not a crash.

use axum::extract::rejection::BytesRejection;
use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use bytes::Bytes;
use hookrelay_core::{DeliveryId, ProjectName};
use serde::de::DeserializeOwned;

use crate::error::ProducerError;
use crate::publisher::delivery_not_found;

/// A JSON request body, parsed with field paths in its errors.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ProducerError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(body_rejection)?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// The error for a body that could not be read.
pub(super) fn body_rejection(rejection: BytesRejection) -> ProducerError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ProducerError::PayloadTooLarge(
            "request body is larger than the limit of this server".into(),
        )
    } else {
        ProducerError::field(
            BODY_FIELD,
            format!("could not read the request body: {}", rejection.body_text()),
        )
    }
}

/// The field named by errors about the body as a whole (empty, not JSON, not an object).
pub const BODY_FIELD: &str = "body";

/// Parses a JSON body into `T`. Every error is a 400 naming a field — the path of the
/// value at fault (`headers[0].key`), or `body` — and never quotes a value: a secret sent
/// with the wrong type must not come back in the answer or the log.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProducerError> {
    let body_error = |message: &str| ProducerError::field(BODY_FIELD, message);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(body_error("expected a JSON object, got an empty body"));
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(body_error("not valid UTF-8"));
    }
    // Every body of this API is an object; serde would otherwise also take a struct from
    // an array of its fields in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Err(e) => body_error(&format!("malformed JSON: {}", without_values(&e))),
                Ok(_) => body_error("expected a JSON object"),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        let message = without_values(&inner);
        let mut field = field_of(&path);
        if inner.classify() == serde_json::error::Category::Data {
            // "missing field `x`" at `headers[0]` is about `headers[0].x`.
            if let Some(name) = message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`'))
            {
                field = if field == BODY_FIELD {
                    name.to_owned()
                } else {
                    format!("{field}.{name}")
                };
                return ProducerError::field(field, "is required");
            }
            ProducerError::field(field, message)
        } else {
            ProducerError::field(field, format!("malformed JSON: {message}"))
        }
    })?;
    de.end()
        .map_err(|e| body_error(&format!("malformed JSON: {}", without_values(&e))))?;
    Ok(value)
}

/// The field an error at `path` names: the path itself, `body` for the root, and only the
/// first segment of a path too long to be useful (a value nested 128 levels deep).
fn field_of(path: &str) -> String {
    // `?` stands for a map key not yet read: the error is about the value holding it.
    let path = path
        .split('?')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    if path == "." || path.is_empty() {
        BODY_FIELD.to_owned()
    } else if path.len() > 100 {
        path.split(['[', '.'])
            .next()
            .unwrap_or(BODY_FIELD)
            .to_owned()
    } else {
        path.to_owned()
    }
}

/// serde_json's message without the value it quotes (`invalid type: integer `42`,
/// expected a string` → `invalid type: got an integer, expected a string`) and without
/// its position in a one-line body (kept for syntax errors, where it helps).
fn without_values(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let text = if e.classify() == serde_json::error::Category::Data {
        text.split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned()
    } else {
        text
    };
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = text.strip_prefix(prefix) {
            let (got, expected) = rest
                .split_once(", expected ")
                .unwrap_or((rest, "another value"));
            // The kind is the words before the quoted value: `integer`, `string`,
            // `floating point`, `boolean`; `null`, `map` and `sequence` quote nothing.
            let kind = got.split(['`', '"']).next().unwrap_or_default().trim();
            let kind = if kind.is_empty() { "a value" } else { kind };
            return format!("{prefix}got {kind}, expected {expected}");
        }
    }
    if text.starts_with("missing field `")
        || text.starts_with("unknown field `")
        || text.starts_with("duplicate field `")
    {
        // Names a field of ours, not a value.
        return text;
    }
    // Anything else: drop whatever it quotes.
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        if c == '`' {
            if !quoted {
                out.push_str("`…");
            } else {
                out.push('`');
            }
            quoted = !quoted;
        } else if !quoted {
            out.push(c);
        }
    }
    out
}

/// Path parameters, parsed into their types in path order (`ApiPath<ProjectName>`,
/// `ApiPath<(ProjectName, String)>`): a validated name is checked here, once, with a JSON
/// error naming it, so handlers never see an unchecked one.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

/// One path segment's type.
pub trait FromSegment: Sized {
    /// Parses the (percent-decoded) segment.
    fn from_segment(value: String) -> Result<Self, ProducerError>;
}

impl FromSegment for String {
    fn from_segment(value: String) -> Result<Self, ProducerError> {
        Ok(value)
    }
}

impl FromSegment for ProjectName {
    fn from_segment(value: String) -> Result<Self, ProducerError> {
        Ok(ProjectName::parse(value)?)
    }
}

/// A delivery id that cannot be one names no delivery: 404, as for an id that is not there.
impl FromSegment for DeliveryId {
    fn from_segment(value: String) -> Result<Self, ProducerError> {
        DeliveryId::parse(value.as_str()).map_err(|_| delivery_not_found(&value))
    }
}

/// The types a route's path parameters parse into: one segment, or a tuple of them.
pub trait PathParams: Sized {
    /// Parses the values in path order.
    fn from_values(values: Vec<String>) -> Result<Self, ProducerError>;
}

fn wrong_count(want: usize, got: usize) -> ProducerError {
    ProducerError::Internal(format!(
        "the route has {got} path parameters where its handler takes {want}"
    ))
}

impl<A: FromSegment> PathParams for A {
    fn from_values(values: Vec<String>) -> Result<Self, ProducerError> {
        let got = values.len();
        let [a]: [String; 1] = values.try_into().map_err(|_| wrong_count(1, got))?;
        A::from_segment(a)
    }
}

impl<A: FromSegment, B: FromSegment> PathParams for (A, B) {
    fn from_values(values: Vec<String>) -> Result<Self, ProducerError> {
        let got = values.len();
        let [a, b]: [String; 2] = values.try_into().map_err(|_| wrong_count(2, got))?;
        Ok((A::from_segment(a)?, B::from_segment(b)?))
    }
}

impl<A: FromSegment, B: FromSegment, C: FromSegment> PathParams for (A, B, C) {
    fn from_values(values: Vec<String>) -> Result<Self, ProducerError> {
        let got = values.len();
        let [a, b, c]: [String; 3] = values.try_into().map_err(|_| wrong_count(3, got))?;
        Ok((
            A::from_segment(a)?,
            B::from_segment(b)?,
            C::from_segment(c)?,
        ))
    }
}

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: PathParams + Send,
    S: Send + Sync,
{
    type Rejection = ProducerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(pairs) = Path::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map_err(|r| ProducerError::field("path", r.body_text()))?;
        T::from_values(pairs.into_iter().map(|(_, value)| value).collect()).map(ApiPath)
    }
}

/// The query string as name → value, for handlers that parse and validate each parameter
/// themselves so that errors name it.
#[derive(Debug, Clone, Default)]
pub struct ApiQuery(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for ApiQuery {
    type Rejection = ProducerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| ApiQuery(q))
            .map_err(|r| ProducerError::field("query", r.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Sample {
        name: String,
        timeout: Option<u32>,
        #[serde(default)]
        headers: Vec<Header>,
        data: Option<serde_json::Value>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Header {
        key: String,
    }

    fn check(body: &str, field: &str, want: &str) {
        let err = parse_json::<Sample>(body.as_bytes()).expect_err(body);
        let ProducerError::Invalid(e) = &err else {
            panic!("{body:?} gave {err:?}, not a field error");
        };
        assert_eq!(e.field, field, "{body:?} gave {err}");
        let text = err.to_string();
        assert!(
            text.contains(want),
            "{body:?} gave {text:?}, wanted {want:?}"
        );
    }

    #[test]
    fn errors_name_the_field() {
        #[rustfmt::skip]
        let cases = [
            ("", "body", "empty body"),
            ("{", "body", "malformed JSON"),
            (r#"{"name":"a"} x"#, "body", "malformed JSON"),
            ("{}", "name", "name: is required"),
            (r#"{"name":1}"#, "name", "name: invalid type: got integer, expected a string"),
            (r#"{"name":"a","timeout":"x"}"#, "timeout", "timeout: invalid type: got string, expected u32"),
            (r#"{"name":"a","headers":[{}]}"#, "headers[0].key", "headers[0].key: is required"),
            (r#"{"name":"a","timeout":1e309}"#, "timeout", "number out of range"),
            (r#"{"name":"a","timeout":-1}"#, "timeout", "invalid value: got integer, expected u32"),
            ("[]", "body", "expected a JSON object"),
            (r#"["a", 1, []]"#, "body", "expected a JSON object"),
            ("nul", "body", "malformed JSON"),
        ];
        for (body, field, want) in cases {
            check(body, field, want);
        }
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let too_deep = format!("{{\"name\":\"a\",\"data\":{deep}}}");
        check(&too_deep, "data", "recursion limit");
        // An unknown field is skipped without recursion, however deep.
        let ignored = format!("{{\"name\":\"a\",\"x\":{deep}}}");
        assert!(parse_json::<Sample>(ignored.as_bytes()).is_ok());
        assert!(parse_json::<Sample>(b"{\"name\":\"a\",\"unknown\":[1]}").is_ok());
    }

    #[test]
    fn values_are_never_quoted() {
        let secret = "987654321012";
        for body in [
            format!("{{\"name\":{secret}}}"),
            format!("{{\"name\":\"a\",\"timeout\":\"{secret}\"}}"),
            format!("{{\"name\":\"a\",\"timeout\":{secret}.5}}"),
            format!("{{\"name\":\"a\",\"timeout\":-{secret}}}"),
            format!("{{\"name\":[{secret}]}}"),
            format!("{{\"name\":{{\"k\":\"{secret}\"}}}}"),
        ] {
            let err = parse_json::<Sample>(body.as_bytes())
                .expect_err(&body)
                .to_string();
            assert!(!err.contains(secret), "{body} gave {err}");
        }
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let err = parse_json::<Sample>(b"{\"name\":\"\xff\"}").expect_err("utf-8");
        assert!(err.to_string().contains("UTF-8"));
    }
}
