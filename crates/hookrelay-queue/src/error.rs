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

    /// Whether trying again later may succeed: Redis unreachable, restarting, loading its
    /// data, busy with a script, failing over. Anything else (a script error, an answer this
    /// build does not understand) fails the same way every time.
    pub fn is_transient(&self) -> bool {
        self.is_unavailable()
            || match self {
                QueueError::Redis(e) => matches!(
                    e.code(),
                    Some(
                        "LOADING" | "TRYAGAIN" | "CLUSTERDOWN" | "MASTERDOWN" | "READONLY" | "BUSY"
                    )
                ),
                QueueError::Protocol(_) => false,
            }
    }
}
