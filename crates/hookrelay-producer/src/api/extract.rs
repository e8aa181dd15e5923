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
use serde::de::DeserializeOwned;

use crate::error::ProducerError;

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

fn body_rejection(rejection: BytesRejection) -> ProducerError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ProducerError::PayloadTooLarge(
            "request body is larger than the limit of this server".into(),
        )
    } else {
        ProducerError::BadRequest(format!(
            "could not read the request body: {}",
            rejection.body_text()
        ))
    }
}

/// Parses a JSON body into `T`; errors name the field path and the problem.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProducerError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ProducerError::BadRequest(
            "request body: expected a JSON object, got an empty body".into(),
        ));
    }
    if std::str::from_utf8(bytes).is_err() {
        return Err(ProducerError::BadRequest(
            "request body: not valid UTF-8".into(),
        ));
    }
    // Every body of this API is an object; serde would otherwise also take a struct from
    // an array of its fields in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                Err(e) => ProducerError::BadRequest(format!("malformed JSON: {e}")),
                Ok(_) => ProducerError::BadRequest("request body: expected a JSON object".into()),
            },
        );
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data if path != "." => {
                ProducerError::BadRequest(format!("{path}: {inner}"))
            }
            serde_json::error::Category::Data => {
                ProducerError::BadRequest(format!("request body: {inner}"))
            }
            _ => ProducerError::BadRequest(format!("malformed JSON: {inner}")),
        }
    })?;
    de.end()
        .map_err(|e| ProducerError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// Path parameters, with a JSON error when they do not decode.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ProducerError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|r| ProducerError::BadRequest(format!("path: {}", r.body_text())))
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
            .map_err(|r| ProducerError::BadRequest(format!("query string: {}", r.body_text())))
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

    fn check(body: &str, want: &str) {
        let err = parse_json::<Sample>(body.as_bytes())
            .expect_err(body)
            .to_string();
        assert!(err.contains(want), "{body:?} gave {err:?}, wanted {want:?}");
    }

    #[test]
    fn errors_name_the_field() {
        check("", "empty body");
        check("{", "malformed JSON");
        check("{\"name\":\"a\"} x", "malformed JSON");
        check("{}", "missing field `name`");
        check("{\"name\":1}", "name: invalid type");
        check(
            "{\"name\":\"a\",\"timeout\":\"x\"}",
            "timeout: invalid type",
        );
        check(
            "{\"name\":\"a\",\"headers\":[{}]}",
            "headers[0]: missing field `key`",
        );
        check("[]", "request body: expected a JSON object");
        check("[\"a\", 1, []]", "expected a JSON object");
        check("nul", "malformed JSON");
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let too_deep = format!("{{\"name\":\"a\",\"data\":{deep}}}");
        let err = parse_json::<Sample>(too_deep.as_bytes()).expect_err("too deep");
        assert!(err.to_string().contains("recursion limit"), "{err}");
        // An unknown field is skipped without recursion, however deep.
        let ignored = format!("{{\"name\":\"a\",\"x\":{deep}}}");
        assert!(parse_json::<Sample>(ignored.as_bytes()).is_ok());
        assert!(parse_json::<Sample>(b"{\"name\":\"a\",\"unknown\":[1]}").is_ok());
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let err = parse_json::<Sample>(b"{\"name\":\"\xff\"}").expect_err("utf-8");
        assert!(err.to_string().contains("UTF-8"));
    }
}
