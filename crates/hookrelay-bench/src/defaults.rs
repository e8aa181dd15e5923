//! The binary's defaults, read from the same `config/default.toml` it embeds: the bench has
//! none of its own.

/// The settings file the binary embeds.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// `concurrency`: deliveries in flight per worker process.
pub fn concurrency() -> usize {
    DEFAULTS
        .parse::<toml::Table>()
        .ok()
        .and_then(|t| t.get("concurrency").and_then(toml::Value::as_integer))
        .and_then(|n| usize::try_from(n).ok())
        .expect("config/default.toml sets concurrency")
}
