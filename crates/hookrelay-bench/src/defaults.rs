//! The binary's defaults, read from the same `config/default.toml` it embeds (through
//! `hookrelay_core::defaults`): the bench has none of its own.

/// `concurrency`: deliveries in flight per worker process.
pub fn concurrency() -> usize {
    hookrelay_core::defaults::defaults().concurrency
}
