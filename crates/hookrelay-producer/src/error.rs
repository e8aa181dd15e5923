//! The producer's one error type. Every failure of the registry, the publisher and the API
//! ends up here, each variant saying what kind of thing failed; `api/error.rs` alone turns
//! one into an HTTP answer.

use hookrelay_core::FieldError;
use hookrelay_queue::QueueError;

/// What can go wrong when managing webhooks, publishing events or answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ProducerError {
    /// A field failed validation; names the field (400).
    #[error("{0}")]
    Invalid(#[from] FieldError),
    /// The request could not be understood: malformed JSON, a bad query string (400).
    #[error("{0}")]
    BadRequest(String),
    /// No or a wrong API token (401).
    #[error("{0}")]
    Unauthorized(String),
    /// A project token whose role does not allow the operation (403).
    #[error("{0}")]
    Forbidden(String),
    /// No such webhook, delivery, test or route (404).
    #[error("{0}")]
    NotFound(String),
    /// The route exists but not with this method (405).
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A name already taken, or a delivery that is still queued (409).
    #[error("{0}")]
    Conflict(String),
    /// The request body is larger than the configured limit (413).
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The request body did not arrive in time (408).
    #[error("{0}")]
    RequestTimeout(String),
    /// Redis did not answer (503).
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Something that should not happen, such as a stored value that no longer decodes (500).
    #[error("{0}")]
    Internal(String),
}

impl ProducerError {
    /// A field error, for the common case of building one in place.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        ProducerError::Invalid(FieldError::new(field, message))
    }
}

impl From<QueueError> for ProducerError {
    fn from(e: QueueError) -> Self {
        if e.is_unavailable() {
            ProducerError::Unavailable(e.to_string())
        } else {
            ProducerError::Internal(e.to_string())
        }
    }
}

impl From<redis::RedisError> for ProducerError {
    fn from(e: redis::RedisError) -> Self {
        ProducerError::from(QueueError::Redis(e))
    }
}
