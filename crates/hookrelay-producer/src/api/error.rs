//! How a [`ProducerError`] answers over HTTP: its status code, a JSON `{"error": "…"}` body
//! (with `field` for a validation error), a log line at the level it deserves, and
//! `WWW-Authenticate` on a 401. The only place that maps errors to HTTP.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ProducerError;

/// The HTTP status `error` answers with.
fn status_of(error: &ProducerError) -> StatusCode {
    match error {
        ProducerError::Invalid(_) | ProducerError::BadRequest(_) => StatusCode::BAD_REQUEST,
        ProducerError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        ProducerError::Forbidden(_) => StatusCode::FORBIDDEN,
        ProducerError::NotFound(_) => StatusCode::NOT_FOUND,
        ProducerError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        ProducerError::Conflict(_) => StatusCode::CONFLICT,
        ProducerError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        ProducerError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        ProducerError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        ProducerError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ProducerError {
    fn into_response(self) -> Response {
        let status = status_of(&self);
        // Logged here, once, where the error turns into an answer. Client mistakes are not
        // worth more than debug; a Redis outage or an internal fault is.
        match &self {
            ProducerError::Internal(msg) => tracing::error!(error = %msg, "internal error"),
            ProducerError::Unavailable(msg) => tracing::warn!(error = %msg, "redis unavailable"),
            other => tracing::debug!(status = status.as_u16(), error = %other, "request refused"),
        }
        let mut body = serde_json::json!({ "error": self.to_string() });
        if let ProducerError::Invalid(f) = &self {
            body["field"] = serde_json::Value::String(f.field.clone());
        }
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Token, Bearer"),
            );
        }
        response
    }
}
