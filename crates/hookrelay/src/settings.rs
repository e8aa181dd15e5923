//! Settings: the embedded defaults (`config/default.toml`), then an optional TOML file, then
//! `HOOKRELAY_*` environment variables. Validated once, with errors naming the setting.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use hookrelay_core::retry::RetryPolicy;
use hookrelay_core::target::TargetPolicy;

const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// Every setting, parsed and checked.
#[derive(Debug, Clone)]
pub struct Settings {
    pub redis_url: String,
    pub key_prefix: String,
    pub listen: SocketAddr,
    pub api_token: Option<String>,
    pub concurrency: usize,
    pub endpoint_concurrency: u32,
    pub disable_after: Duration,
    pub allowed_targets: TargetPolicy,
    pub retry: RetryPolicy,
    pub recovery_timeout: Duration,
    pub retention: Duration,
    pub body_limit: usize,
    pub max_response_body: usize,
    pub shutdown_timeout: Duration,
    pub log_json: bool,
}

/// A setting with a bad value, or a config file that cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SettingsError(String);

fn bad(name: &str, msg: impl std::fmt::Display) -> SettingsError {
    SettingsError(format!("HOOKRELAY_{}: {msg}", name.to_ascii_uppercase()))
}

impl Settings {
    /// Loads the settings from defaults, `file` and the environment.
    pub fn load(file: Option<&str>) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(path) = file {
            if !std::path::Path::new(path).is_file() {
                return Err(SettingsError(format!(
                    "config file {path:?} does not exist"
                )));
            }
            builder = builder.add_source(config::File::new(path, config::FileFormat::Toml));
        }
        builder =
            builder.add_source(config::Environment::with_prefix("HOOKRELAY").prefix_separator("_"));
        let raw = builder
            .build()
            .map_err(|e| SettingsError(format!("reading settings: {e}")))?;
        let mut map: HashMap<String, String> = HashMap::new();
        let table = raw
            .try_deserialize::<HashMap<String, config::Value>>()
            .map_err(|e| SettingsError(format!("reading settings: {e}")))?;
        for (k, v) in table {
            let s = v
                .into_string()
                .map_err(|e| bad(&k, format!("must be a plain value: {e}")))?;
            map.insert(k.to_ascii_lowercase(), s);
        }
        Self::from_map(&map)
    }

    fn from_map(map: &HashMap<String, String>) -> Result<Self, SettingsError> {
        let get = |name: &str| {
            map.get(name)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, SettingsError> {
            v.parse::<T>()
                .map_err(|_| bad(name, format!("must be a number, got {v:?}")))
        }
        let listen_raw = get("listen");
        let listen: SocketAddr = listen_raw.parse().map_err(|_| {
            bad(
                "listen",
                format!("must be an address such as 127.0.0.1:8080, got {listen_raw:?}"),
            )
        })?;
        let redis_url = get("redis_url");
        if !(redis_url.starts_with("redis://")
            || redis_url.starts_with("rediss://")
            || redis_url.starts_with("unix://"))
        {
            return Err(bad(
                "redis_url",
                "must start with redis://, rediss:// or unix://",
            ));
        }
        let key_prefix = get("key_prefix");
        if key_prefix.is_empty()
            || key_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("key_prefix", "must be non-empty without spaces"));
        }
        let api_token = Some(get("api_token")).filter(|t| !t.is_empty());
        if api_token.as_ref().is_some_and(|t| t.len() < 8) {
            return Err(bad("api_token", "must be at least 8 characters"));
        }
        let concurrency: usize = num("concurrency", &get("concurrency"))?;
        if !(1..=10_000).contains(&concurrency) {
            return Err(bad(
                "concurrency",
                format!("must be 1 to 10000, got {concurrency}"),
            ));
        }
        let endpoint_concurrency: u32 = num("endpoint_concurrency", &get("endpoint_concurrency"))?;
        if !(1..=1000).contains(&endpoint_concurrency) {
            return Err(bad(
                "endpoint_concurrency",
                format!("must be 1 to 1000, got {endpoint_concurrency}"),
            ));
        }
        let disable_after_secs: u64 = num("disable_after_secs", &get("disable_after_secs"))?;
        if disable_after_secs < 1 {
            return Err(bad("disable_after_secs", "must be at least 1"));
        }
        let allowed_targets = TargetPolicy::parse(&get("allowed_targets"))
            .map_err(|e| SettingsError(e.to_string()))?;
        let retry = RetryPolicy {
            max_attempts: num("retry_max_attempts", &get("retry_max_attempts"))?,
            initial_interval: Duration::from_millis(num(
                "retry_initial_interval_ms",
                &get("retry_initial_interval_ms"),
            )?),
            max_interval: Duration::from_millis(num(
                "retry_max_interval_ms",
                &get("retry_max_interval_ms"),
            )?),
            multiplier: num("retry_multiplier", &get("retry_multiplier"))?,
            randomization_factor: num("retry_randomization", &get("retry_randomization"))?,
        };
        retry.validate().map_err(|e| SettingsError(e.to_string()))?;
        let recovery_ms: u64 = num("recovery_timeout_ms", &get("recovery_timeout_ms"))?;
        if !(300..=60_000).contains(&recovery_ms) {
            return Err(bad(
                "recovery_timeout_ms",
                format!("must be 300 to 60000, got {recovery_ms}"),
            ));
        }
        let retention_secs: u64 = num("retention_secs", &get("retention_secs"))?;
        if retention_secs < 60 {
            return Err(bad("retention_secs", "must be at least 60"));
        }
        // A record must outlive its retries, or a late attempt would find it gone.
        let ladder: f64 = retry
            .ladder()
            .iter()
            .map(Duration::as_secs_f64)
            .sum::<f64>()
            * (1.0 + retry.randomization_factor);
        if (retention_secs as f64) < ladder {
            return Err(bad(
                "retention_secs",
                format!(
                    "must cover the retry schedule: at least {} s with these retry settings, got {retention_secs}",
                    ladder.ceil() as u64
                ),
            ));
        }
        let body_limit: usize = num("body_limit_bytes", &get("body_limit_bytes"))?;
        if !(1024..=64 * 1024 * 1024).contains(&body_limit) {
            return Err(bad("body_limit_bytes", "must be 1024 to 67108864"));
        }
        let max_response_body: usize =
            num("max_response_body_bytes", &get("max_response_body_bytes"))?;
        if max_response_body > 16 * 1024 * 1024 {
            return Err(bad("max_response_body_bytes", "must be at most 16777216"));
        }
        let shutdown_ms: u64 = num("shutdown_timeout_ms", &get("shutdown_timeout_ms"))?;
        let log_json = match get("log_format").as_str() {
            "text" | "" => false,
            "json" => true,
            other => {
                return Err(bad(
                    "log_format",
                    format!("must be text or json, got {other:?}"),
                ));
            }
        };
        Ok(Self {
            redis_url,
            key_prefix,
            listen,
            api_token,
            concurrency,
            endpoint_concurrency,
            disable_after: Duration::from_secs(disable_after_secs),
            allowed_targets,
            retry,
            recovery_timeout: Duration::from_millis(recovery_ms),
            retention: Duration::from_secs(retention_secs),
            body_limit,
            max_response_body,
            shutdown_timeout: Duration::from_millis(shutdown_ms),
            log_json,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defaults() -> HashMap<String, String> {
        let table: HashMap<String, config::Value> = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
            .build()
            .and_then(|c| c.try_deserialize())
            .unwrap_or_default();
        table
            .into_iter()
            .filter_map(|(k, v)| v.into_string().ok().map(|s| (k, s)))
            .collect()
    }

    fn check(name: &str, value: &str, want: &str) {
        let mut m = defaults();
        m.insert(name.into(), value.into());
        let err = Settings::from_map(&m)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains(want),
            "{name}={value:?} gave {err:?}, wanted {want:?}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        let s = Settings::from_map(&defaults()).map_err(|e| e.to_string());
        assert!(s.is_ok(), "{s:?}");
    }

    #[test]
    fn bad_values_name_the_setting() {
        check(
            "retry_multiplier",
            "abc",
            "HOOKRELAY_RETRY_MULTIPLIER: must be a number",
        );
        check("retry_multiplier", "0.5", "HOOKRELAY_RETRY_MULTIPLIER");
        check("listen", "nowhere", "HOOKRELAY_LISTEN: must be an address");
        check("concurrency", "0", "HOOKRELAY_CONCURRENCY");
        check(
            "recovery_timeout_ms",
            "120000",
            "HOOKRELAY_RECOVERY_TIMEOUT_MS",
        );
        check(
            "allowed_targets",
            "10.0.0.0/8,bogus",
            "HOOKRELAY_ALLOWED_TARGETS",
        );
        check("redis_url", "http://x", "HOOKRELAY_REDIS_URL");
        check("log_format", "xml", "HOOKRELAY_LOG_FORMAT");
        check("api_token", "short", "HOOKRELAY_API_TOKEN");
        check(
            "retention_secs",
            "3600",
            "HOOKRELAY_RETENTION_SECS: must cover the retry schedule: at least 87753 s",
        );
    }
}
