//! The binary's defaults, read from the same `config/default.toml` it embeds: the bench has
//! none of its own.

/// The settings file the binary embeds.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// An integer setting of the embedded defaults.
fn integer(name: &str) -> usize {
    DEFAULTS
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get(name).and_then(toml::Value::as_integer))
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or_else(|| panic!("config/default.toml sets {name}"))
}

/// `concurrency`: deliveries in flight per worker process.
pub fn concurrency() -> usize {
    integer("concurrency")
}

/// `endpoint_concurrency`: deliveries in flight to one webhook across all workers, for
/// webhooks without `max_concurrency` (the bench's).
pub fn endpoint_concurrency() -> usize {
    integer("endpoint_concurrency")
}
