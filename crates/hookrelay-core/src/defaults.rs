//! The deployment's defaults, from `config/default.toml` and nowhere else: the binary layers
//! its settings over this file, and the library entry points (`Queue::connect`, the producer
//! library, the retry policy), the benchmark and the tests read their defaults from here.

use std::sync::LazyLock;
use std::time::Duration;

use crate::retry::RetryPolicy;

/// The defaults file, as embedded in every build.
pub const FILE: &str = include_str!("../../../config/default.toml");

/// The defaults that code outside the binary's settings needs, parsed once from [`FILE`].
#[derive(Debug, Clone)]
pub struct Defaults {
    /// `concurrency`: deliveries in flight per worker process.
    pub concurrency: usize,
    /// `endpoint_concurrency`: deliveries in flight per webhook across all workers.
    pub endpoint_concurrency: u32,
    /// `disable_after_secs`: how long a webhook may fail before it is disabled.
    pub disable_after: Duration,
    /// `retention_secs`: how long delivery records are kept.
    pub retention: Duration,
    /// `payload_compress_bytes`: event payloads larger than this are stored compressed.
    pub payload_compress_bytes: usize,
    /// The `retry_*` settings.
    pub retry: RetryPolicy,
}

static DEFAULTS: LazyLock<Defaults> = LazyLock::new(|| {
    // The file is part of the build and a unit test parses it: a failure here is a broken
    // build, not a runtime condition.
    parse(FILE).unwrap_or_else(|e| panic!("config/default.toml: {e}"))
});

/// The defaults of this build.
pub fn defaults() -> &'static Defaults {
    &DEFAULTS
}

fn parse(text: &str) -> Result<Defaults, String> {
    let table: toml::Table = text.parse().map_err(|e| format!("{e}"))?;
    let int = |name: &str| -> Result<u64, String> {
        table
            .get(name)
            .and_then(toml::Value::as_integer)
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| format!("{name} is missing or not a whole number >= 0"))
    };
    let float = |name: &str| -> Result<f64, String> {
        table
            .get(name)
            .and_then(toml::Value::as_float)
            .ok_or_else(|| format!("{name} is missing or not a number"))
    };
    let small = |name: &str| -> Result<u32, String> {
        u32::try_from(int(name)?).map_err(|_| format!("{name} is too large"))
    };
    let size = |name: &str| -> Result<usize, String> {
        usize::try_from(int(name)?).map_err(|_| format!("{name} is too large"))
    };
    Ok(Defaults {
        concurrency: size("concurrency")?,
        endpoint_concurrency: small("endpoint_concurrency")?,
        disable_after: Duration::from_secs(int("disable_after_secs")?),
        retention: Duration::from_secs(int("retention_secs")?),
        payload_compress_bytes: size("payload_compress_bytes")?,
        retry: RetryPolicy {
            max_attempts: small("retry_max_attempts")?,
            initial_interval: Duration::from_millis(int("retry_initial_interval_ms")?),
            max_interval: Duration::from_millis(int("retry_max_interval_ms")?),
            multiplier: float("retry_multiplier")?,
            randomization_factor: float("retry_randomization")?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_file_parses() {
        let d = parse(FILE).expect("config/default.toml parses");
        assert!(d.concurrency >= 1);
        assert!(d.endpoint_concurrency >= 1);
        assert!(d.retention >= Duration::from_secs(1));
        d.retry
            .validate()
            .expect("the default retry policy is valid");
    }

    #[test]
    fn a_missing_value_is_named() {
        let err = parse("concurrency = 1").expect_err("incomplete");
        assert!(err.contains("endpoint_concurrency"), "{err}");
    }
}
