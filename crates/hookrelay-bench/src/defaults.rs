//! The binary's defaults, read from the same `config/default.toml` it embeds (through
//! `hookrelay_core::defaults`): the bench has none of its own.

/// `concurrency`: deliveries in flight per worker process.
pub fn concurrency() -> usize {
    hookrelay_core::defaults::defaults().concurrency
}

/// `endpoint_concurrency`: deliveries in flight to one webhook across all workers, for
/// webhooks without `max_concurrency` (the bench's).
pub fn endpoint_concurrency() -> usize {
    hookrelay_core::defaults::defaults().endpoint_concurrency as usize
}
