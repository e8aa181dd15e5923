//! The queue's error type.

/// What can go wrong talking to the queue.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// Redis did not answer, or answered with an error.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// Redis answered something this build does not understand.
    #[error("unexpected answer from redis: {0}")]
    Protocol(String),
}

impl QueueError {
    /// Whether the error means Redis is unreachable (as opposed to a bad command).
    pub fn is_unavailable(&self) -> bool {
        match self {
            QueueError::Redis(e) => {
                e.is_io_error()
                    || e.is_connection_dropped()
                    || e.is_connection_refusal()
                    || e.is_timeout()
                    || e.is_unrecoverable_error()
            }
            QueueError::Protocol(_) => false,
        }
    }
}
