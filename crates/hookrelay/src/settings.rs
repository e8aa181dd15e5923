//! Settings: the embedded defaults (`config/default.toml`), then an optional TOML file, then
//! `HOOKRELAY_*` environment variables, layered by the `config` crate and deserialised into a
//! typed struct that refuses unknown keys. Every value is checked once, with a message naming
//! where the bad value came from (the variable, or the key in the file).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use hookrelay_core::retry::RetryPolicy;
use hookrelay_core::target::TargetPolicy;
use serde::Deserialize;

const DEFAULTS: &str = hookrelay_core::defaults::FILE;

/// Environment variables with the prefix that are not settings (clap reads them).
const NOT_SETTINGS: &[&str] = &["HOOKRELAY_CONFIG"];

/// One setting: its name in the file (the variable is `HOOKRELAY_` + the name in upper case),
/// whether its value is a secret, and one line of help.
pub struct Spec {
    pub name: &'static str,
    pub secret: bool,
    pub help: &'static str,
}

const fn spec(name: &'static str, secret: bool, help: &'static str) -> Spec {
    Spec { name, secret, help }
}

/// Every setting, in the order `hookrelay settings` and `--help` show them.
pub const SPECS: &[Spec] = &[
    spec(
        "redis_url",
        true,
        "the Redis that holds queue, webhooks and records",
    ),
    spec("key_prefix", false, "every Redis key starts with it"),
    spec(
        "redis_cluster",
        false,
        "Redis is a cluster; redis_url lists seed nodes, comma-separated",
    ),
    spec(
        "partitions",
        false,
        "queue partitions (1-1024); each is one slot of a cluster",
    ),
    spec("listen", false, "address of the REST API (serve, api)"),
    spec("api_token", true, "API token, 8+ characters (serve, api)"),
    spec(
        "concurrency",
        false,
        "deliveries in flight per worker process (1-10000)",
    ),
    spec(
        "endpoint_concurrency",
        false,
        "deliveries in flight per webhook across all workers (1-1000)",
    ),
    spec(
        "disable_after_secs",
        false,
        "a webhook failing this long is disabled (>= 1)",
    ),
    spec(
        "allowed_targets",
        false,
        "CIDRs that may be delivered to although private or loopback",
    ),
    spec(
        "retry_max_attempts",
        false,
        "attempts in all for webhooks with retry: true (1-100)",
    ),
    spec("retry_initial_interval_ms", false, "first backoff interval"),
    spec(
        "retry_max_interval_ms",
        false,
        "cap on one backoff interval",
    ),
    spec("retry_multiplier", false, "growth factor of the interval"),
    spec(
        "retry_randomization",
        false,
        "jitter of each interval (0 to below 1)",
    ),
    spec(
        "recovery_timeout_ms",
        false,
        "hand a dead worker's deliveries to another after this (300-60000)",
    ),
    spec(
        "retention_secs",
        false,
        "how long delivery records are kept",
    ),
    spec(
        "retention_succeeded_secs",
        false,
        "how long succeeded deliveries are kept (0: retention_secs)",
    ),
    spec(
        "retention_failed_secs",
        false,
        "how long failed deliveries are kept (0: retention_secs)",
    ),
    spec(
        "payload_compress_bytes",
        false,
        "stored event payloads larger than this are compressed (0: never)",
    ),
    spec("body_limit_bytes", false, "largest API request body"),
    spec(
        "max_response_body_bytes",
        false,
        "how much of a receiver's answer is kept",
    ),
    spec(
        "shutdown_timeout_ms",
        false,
        "how long a stopping worker lets deliveries finish",
    ),
    spec(
        "metrics_listen",
        false,
        "address of this process's own /metrics (empty: off)",
    ),
    spec("log_format", false, "text or json"),
];

/// Every setting, parsed and checked.
#[derive(Clone)]
pub struct Settings {
    pub redis_url: String,
    pub key_prefix: String,
    /// Whether Redis is a cluster (`redis_url` then lists seed nodes).
    pub redis_cluster: bool,
    /// How many partitions the queue spreads endpoints over.
    pub partitions: u32,
    pub listen: SocketAddr,
    pub api_token: Option<String>,
    pub concurrency: usize,
    /// Per-webhook cap of deliveries in flight across all workers, for webhooks without
    /// their own `max_concurrency`.
    pub endpoint_concurrency: u32,
    /// A webhook whose deliveries have failed for this long is disabled.
    pub disable_after: Duration,
    pub allowed_targets: TargetPolicy,
    pub retry: RetryPolicy,
    pub recovery_timeout: Duration,
    pub retention: Duration,
    /// How long a delivery that succeeded is kept.
    pub retention_succeeded: Duration,
    /// How long a delivery that failed is kept.
    pub retention_failed: Duration,
    /// Stored event payloads larger than this are compressed (0: never).
    pub payload_compress: usize,
    pub body_limit: usize,
    pub max_response_body: usize,
    pub shutdown_timeout: Duration,
    /// Where this process serves its own metrics, if anywhere.
    pub metrics_listen: Option<SocketAddr>,
    pub log_json: bool,
    /// What `hookrelay settings` prints: each setting's effective value (secrets masked)
    /// and where it came from.
    pub effective: Vec<(&'static str, String, String)>,
    /// Environment variables with the prefix that are no setting, each with a suggestion;
    /// logged once logging is set up.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Settings {
    // Secrets never appear, not even in a debug dump.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Settings");
        for (name, value, _) in &self.effective {
            d.field(name, value);
        }
        d.finish()
    }
}

/// What is wrong with the settings.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// A setting has a bad value; `setting` names where it came from (the variable, or the
    /// key in the file).
    #[error("{setting}: {message}")]
    Invalid { setting: String, message: String },
    /// The retry settings do not make a policy together.
    #[error("retry settings: {0}")]
    Retry(hookrelay_core::FieldError),
    /// The config file named does not exist.
    #[error("config file {path:?} does not exist")]
    NoFile { path: String },
    /// The config file is not TOML, or holds a key that is no setting.
    #[error("config file {path:?}: {message}")]
    File { path: String, message: String },
    /// The layered sources could not be read.
    #[error("reading settings: {0}")]
    Read(String),
}

impl SettingsError {
    fn invalid(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// The file's shape: exactly the known keys, nothing else.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    redis_url: String,
    key_prefix: String,
    redis_cluster: bool,
    partitions: i64,
    listen: String,
    #[serde(default)]
    api_token: Option<String>,
    concurrency: i64,
    endpoint_concurrency: i64,
    disable_after_secs: i64,
    allowed_targets: String,
    retry_max_attempts: i64,
    retry_initial_interval_ms: i64,
    retry_max_interval_ms: i64,
    retry_multiplier: f64,
    retry_randomization: f64,
    recovery_timeout_ms: i64,
    retention_secs: i64,
    retention_succeeded_secs: i64,
    retention_failed_secs: i64,
    payload_compress_bytes: i64,
    body_limit_bytes: i64,
    max_response_body_bytes: i64,
    shutdown_timeout_ms: i64,
    #[serde(default)]
    metrics_listen: String,
    log_format: String,
}

/// The settings whose values are whole numbers.
const INTEGER_KEYS: &[&str] = &[
    "partitions",
    "concurrency",
    "endpoint_concurrency",
    "disable_after_secs",
    "retry_max_attempts",
    "retry_initial_interval_ms",
    "retry_max_interval_ms",
    "recovery_timeout_ms",
    "retention_secs",
    "retention_succeeded_secs",
    "retention_failed_secs",
    "payload_compress_bytes",
    "body_limit_bytes",
    "max_response_body_bytes",
    "shutdown_timeout_ms",
];

/// Where each setting's value came from, to name it in messages.
struct Origins {
    file: Option<String>,
    from_file: Vec<String>,
    from_env: Vec<String>,
}

impl Origins {
    fn name(&self, key: &str) -> String {
        if self.from_env.iter().any(|k| k == key) {
            env_name(key)
        } else if let (Some(file), true) = (&self.file, self.from_file.iter().any(|k| k == key)) {
            format!("{key} in {file}")
        } else {
            format!("{key} (built-in default)")
        }
    }

    fn source(&self, key: &str) -> String {
        if self.from_env.iter().any(|k| k == key) {
            "environment".into()
        } else if let (Some(file), true) = (&self.file, self.from_file.iter().any(|k| k == key)) {
            file.clone()
        } else {
            "default".into()
        }
    }
}

/// `redis_url` → `HOOKRELAY_REDIS_URL`.
pub fn env_name(key: &str) -> String {
    format!("HOOKRELAY_{}", key.to_ascii_uppercase())
}

/// The known name closest to `unknown`, for "did you mean": the shortest name that contains
/// it (`retry` → a `retry_…` setting), else the one at the smallest edit distance.
fn closest(unknown: &str) -> &'static str {
    let unknown = unknown.to_ascii_lowercase();
    if unknown.len() >= 3
        && let Some(name) = SPECS
            .iter()
            .map(|s| s.name)
            .filter(|name| name.contains(unknown.as_str()))
            .min_by_key(|name| name.len())
    {
        return name;
    }
    SPECS
        .iter()
        .map(|s| s.name)
        .min_by_key(|name| strsim::levenshtein(&unknown, name))
        .unwrap_or("redis_url")
}

/// The variables of `env` that carry settings (lower-case key → value), and a warning for
/// each `HOOKRELAY_*` variable that is none.
fn settings_from_env(
    env: impl IntoIterator<Item = (String, String)>,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut found = BTreeMap::new();
    let mut warnings = Vec::new();
    for (var, value) in env {
        let Some(rest) = var.strip_prefix("HOOKRELAY_") else {
            continue;
        };
        if NOT_SETTINGS.contains(&var.as_str()) {
            continue;
        }
        let key = rest.to_ascii_lowercase();
        if SPECS.iter().any(|s| s.name == key) {
            // An empty variable means "not set", as in most shells' `VAR= cmd`.
            if !value.trim().is_empty() {
                found.insert(key, value);
            }
        } else {
            warnings.push(format!(
                "{var} is not a hookrelay setting and is ignored; did you mean {}?",
                env_name(closest(&key))
            ));
        }
    }
    (found, warnings)
}

/// A number as the setting wants it, or a message naming the setting.
fn in_range(o: &Origins, key: &str, v: i64, min: i64, max: i64) -> Result<i64, SettingsError> {
    if v < min || v > max {
        let range = if max == i64::MAX {
            format!("at least {min}")
        } else {
            format!("{min} to {max}")
        };
        return Err(SettingsError::invalid(
            o.name(key),
            format!("must be {range}, got {v}"),
        ));
    }
    Ok(v)
}

/// `redis://user:secret@host` → `redis://user:***@host`.
fn mask_url(url: &str) -> String {
    url.split(',')
        .map(|node| match url::Url::parse(node.trim()) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                u.to_string()
            }
            _ => node.trim().to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

impl Settings {
    /// The Redis key layout: prefix, partitions, one Redis or a cluster.
    pub fn keys(&self) -> hookrelay_core::Keys {
        hookrelay_core::Keys::new(self.key_prefix.clone())
            .with_layout(self.partitions, self.redis_cluster)
    }

    /// Loads the settings from defaults, `file` and the process environment.
    pub fn load(file: Option<&str>) -> Result<Self, SettingsError> {
        Self::load_from(file, std::env::vars())
    }

    fn load_from(
        file: Option<&str>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        let mut from_file = Vec::new();
        if let Some(path) = file {
            if !Path::new(path).is_file() {
                return Err(SettingsError::NoFile {
                    path: path.to_owned(),
                });
            }
            let only_file = config::Config::builder()
                .add_source(config::File::new(path, config::FileFormat::Toml))
                .build()
                .map_err(|e| file_error(path, &e))?;
            let table = only_file
                .try_deserialize::<HashMap<String, config::Value>>()
                .map_err(|e| file_error(path, &e))?;
            let mut keys: Vec<String> = table.keys().cloned().collect();
            keys.sort();
            for key in &keys {
                if !SPECS.iter().any(|s| s.name == key) {
                    let section = if table
                        .get(key)
                        .is_some_and(|v| matches!(v.kind, config::ValueKind::Table(_)))
                    {
                        " (settings are top-level `name = value` lines, without [sections])"
                    } else {
                        ""
                    };
                    return Err(SettingsError::File {
                        path: path.to_owned(),
                        message: format!(
                            "unknown setting `{key}`{section}; did you mean `{}`?",
                            closest(key)
                        ),
                    });
                }
            }
            from_file = keys;
            builder = builder.add_source(config::File::new(path, config::FileFormat::Toml));
        }
        let (env_values, warnings) = settings_from_env(env);
        for (key, value) in &env_values {
            builder = builder
                .set_override(key.as_str(), value.as_str())
                .map_err(|e| SettingsError::invalid(env_name(key), e.to_string()))?;
        }
        let origins = Origins {
            file: file.map(str::to_owned),
            from_file,
            from_env: env_values.keys().cloned().collect(),
        };
        let built = builder
            .build()
            .map_err(|e| SettingsError::Read(e.to_string()))?;
        // config would round 1.5 to 2 for an integer setting; a fraction is a mistake.
        for key in INTEGER_KEYS {
            if let Ok(v) = built.get::<config::Value>(key)
                && let config::ValueKind::Float(f) = v.kind
            {
                return Err(SettingsError::invalid(
                    origins.name(key),
                    format!("must be an integer, got {f}"),
                ));
            }
        }
        let raw: Raw = built
            .try_deserialize()
            .map_err(|e| type_error(&origins, e))?;
        let mut s = Self::check(raw, &origins)?;
        s.warnings = warnings;
        Ok(s)
    }

    fn check(raw: Raw, o: &Origins) -> Result<Self, SettingsError> {
        let bad = |key: &str, msg: String| SettingsError::invalid(o.name(key), msg);
        let listen: SocketAddr = raw.listen.trim().parse().map_err(|_| {
            bad(
                "listen",
                format!(
                    "must be an address such as 127.0.0.1:8080, got {:?}",
                    raw.listen
                ),
            )
        })?;
        let redis_url = raw.redis_url.trim().to_owned();
        let nodes: Vec<&str> = redis_url.split(',').map(str::trim).collect();
        if nodes.len() > 1 && !raw.redis_cluster {
            return Err(bad(
                "redis_url",
                "lists several nodes, which only a cluster has (set HOOKRELAY_REDIS_CLUSTER=true)"
                    .into(),
            ));
        }
        if let Some(i) = nodes.iter().position(|u| {
            !(u.starts_with("redis://") || u.starts_with("rediss://") || u.starts_with("unix://"))
        }) {
            // The value is not echoed: it may hold a password.
            return Err(bad(
                "redis_url",
                format!(
                    "{} must start with redis://, rediss:// or unix://",
                    if nodes.len() > 1 {
                        format!("node {} of {}", i + 1, nodes.len())
                    } else {
                        "it".to_owned()
                    }
                ),
            ));
        }
        let partitions = in_range(
            o,
            "partitions",
            raw.partitions,
            1,
            i64::from(hookrelay_core::keys::MAX_PARTITIONS),
        )? as u32;
        let key_prefix = raw.key_prefix.trim().to_owned();
        if key_prefix.is_empty()
            || key_prefix
                .chars()
                .any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(bad("key_prefix", "must be non-empty without spaces".into()));
        }
        let api_token = raw
            .api_token
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty());
        if api_token.as_ref().is_some_and(|t| t.len() < 8) {
            return Err(bad("api_token", "must be at least 8 characters".into()));
        }
        let concurrency = in_range(o, "concurrency", raw.concurrency, 1, 10_000)? as usize;
        let endpoint_concurrency =
            in_range(o, "endpoint_concurrency", raw.endpoint_concurrency, 1, 1000)? as u32;
        let disable_after_secs =
            in_range(o, "disable_after_secs", raw.disable_after_secs, 1, i64::MAX)? as u64;
        let allowed_targets = TargetPolicy::parse(&raw.allowed_targets)
            .map_err(|e| bad("allowed_targets", e.to_string()))?;
        let max_attempts = in_range(o, "retry_max_attempts", raw.retry_max_attempts, 1, 100)?;
        let initial = in_range(
            o,
            "retry_initial_interval_ms",
            raw.retry_initial_interval_ms,
            1,
            i64::MAX,
        )?;
        let max_interval = in_range(
            o,
            "retry_max_interval_ms",
            raw.retry_max_interval_ms,
            1,
            i64::MAX,
        )?;
        if max_interval < initial {
            return Err(bad(
                "retry_max_interval_ms",
                format!(
                    "must not be less than retry_initial_interval_ms ({initial}), got {max_interval}"
                ),
            ));
        }
        if !(1.0..=1000.0).contains(&raw.retry_multiplier) {
            return Err(bad(
                "retry_multiplier",
                format!("must be 1 to 1000, got {}", raw.retry_multiplier),
            ));
        }
        if !(0.0..1.0).contains(&raw.retry_randomization) {
            return Err(bad(
                "retry_randomization",
                format!(
                    "must be at least 0 and less than 1, got {}",
                    raw.retry_randomization
                ),
            ));
        }
        let retry = RetryPolicy {
            max_attempts: max_attempts as u32,
            initial_interval: Duration::from_millis(initial as u64),
            max_interval: Duration::from_millis(max_interval as u64),
            multiplier: raw.retry_multiplier,
            randomization_factor: raw.retry_randomization,
        };
        retry.validate().map_err(SettingsError::Retry)?;
        let recovery_ms = in_range(
            o,
            "recovery_timeout_ms",
            raw.recovery_timeout_ms,
            300,
            60_000,
        )?;
        let retention_secs = in_range(o, "retention_secs", raw.retention_secs, 60, i64::MAX)?;
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
        // 0: as long as every delivery record.
        let outcome_retention = |key: &str, v: i64| -> Result<u64, SettingsError> {
            if v == 0 {
                Ok(retention_secs as u64)
            } else {
                Ok(in_range(o, key, v, 60, i64::MAX)? as u64)
            }
        };
        let retention_succeeded =
            outcome_retention("retention_succeeded_secs", raw.retention_succeeded_secs)?;
        let retention_failed =
            outcome_retention("retention_failed_secs", raw.retention_failed_secs)?;
        let payload_compress = in_range(
            o,
            "payload_compress_bytes",
            raw.payload_compress_bytes,
            0,
            64 * 1024 * 1024,
        )? as usize;
        let body_limit = in_range(
            o,
            "body_limit_bytes",
            raw.body_limit_bytes,
            1024,
            64 * 1024 * 1024,
        )?;
        let max_response_body = in_range(
            o,
            "max_response_body_bytes",
            raw.max_response_body_bytes,
            0,
            16 * 1024 * 1024,
        )?;
        let shutdown_ms = in_range(
            o,
            "shutdown_timeout_ms",
            raw.shutdown_timeout_ms,
            0,
            3_600_000,
        )?;
        let metrics_listen = match raw.metrics_listen.trim() {
            "" => None,
            addr => Some(addr.parse::<SocketAddr>().map_err(|_| {
                bad(
                    "metrics_listen",
                    format!(
                        "must be empty (off) or an address such as 127.0.0.1:9090, got {addr:?}"
                    ),
                )
            })?),
        };
        let log_json = match raw.log_format.trim() {
            "text" | "" => false,
            "json" => true,
            other => {
                return Err(bad(
                    "log_format",
                    format!("must be text or json, got {other:?}"),
                ));
            }
        };
        let shown = |key: &'static str, value: String| {
            let secret = SPECS.iter().any(|s| s.name == key && s.secret);
            let value = match (key, secret) {
                ("redis_url", _) => mask_url(&value),
                (_, true) if value.is_empty() => "(not set)".to_owned(),
                (_, true) => "***".to_owned(),
                _ => value,
            };
            (key, value, o.source(key))
        };
        let effective = vec![
            shown("redis_url", redis_url.clone()),
            shown("key_prefix", key_prefix.clone()),
            shown("redis_cluster", raw.redis_cluster.to_string()),
            shown("partitions", partitions.to_string()),
            shown("listen", listen.to_string()),
            shown("api_token", api_token.clone().unwrap_or_default()),
            shown("concurrency", concurrency.to_string()),
            shown("endpoint_concurrency", endpoint_concurrency.to_string()),
            shown("disable_after_secs", disable_after_secs.to_string()),
            shown("allowed_targets", raw.allowed_targets.trim().to_owned()),
            shown("retry_max_attempts", max_attempts.to_string()),
            shown("retry_initial_interval_ms", initial.to_string()),
            shown("retry_max_interval_ms", max_interval.to_string()),
            shown("retry_multiplier", raw.retry_multiplier.to_string()),
            shown("retry_randomization", raw.retry_randomization.to_string()),
            shown("recovery_timeout_ms", recovery_ms.to_string()),
            shown("retention_secs", retention_secs.to_string()),
            shown("retention_succeeded_secs", retention_succeeded.to_string()),
            shown("retention_failed_secs", retention_failed.to_string()),
            shown("payload_compress_bytes", payload_compress.to_string()),
            shown("body_limit_bytes", body_limit.to_string()),
            shown("max_response_body_bytes", max_response_body.to_string()),
            shown("shutdown_timeout_ms", shutdown_ms.to_string()),
            shown(
                "metrics_listen",
                metrics_listen.map(|a| a.to_string()).unwrap_or_default(),
            ),
            shown("log_format", raw.log_format.trim().to_owned()),
        ];
        Ok(Self {
            redis_url,
            key_prefix,
            redis_cluster: raw.redis_cluster,
            partitions,
            listen,
            api_token,
            concurrency,
            endpoint_concurrency,
            disable_after: Duration::from_secs(disable_after_secs),
            allowed_targets,
            retry,
            recovery_timeout: Duration::from_millis(recovery_ms as u64),
            retention: Duration::from_secs(retention_secs as u64),
            retention_succeeded: Duration::from_secs(retention_succeeded),
            retention_failed: Duration::from_secs(retention_failed),
            payload_compress,
            body_limit: body_limit as usize,
            max_response_body: max_response_body as usize,
            shutdown_timeout: Duration::from_millis(shutdown_ms as u64),
            metrics_listen,
            log_json,
            effective,
            warnings: Vec::new(),
        })
    }

    /// The table `hookrelay settings` prints.
    pub fn table(&self) -> String {
        let width = SPECS.iter().map(|s| s.name.len() + 10).max().unwrap_or(30);
        let vwidth = self
            .effective
            .iter()
            .map(|(_, v, _)| v.len())
            .max()
            .unwrap_or(10)
            .clamp(10, 40);
        let mut out = format!("{:width$}  {:vwidth$}  source\n", "variable", "value");
        for (key, value, source) in &self.effective {
            let value = if value.is_empty() { "(empty)" } else { value };
            out.push_str(&format!(
                "{:width$}  {value:vwidth$}  {source}\n",
                env_name(key)
            ));
        }
        out
    }
}

/// A file that is not valid TOML. The parser's message quotes the offending line, which may
/// hold a secret (a token with its closing quote missing): only where and what is kept.
fn file_error(path: &str, e: &config::ConfigError) -> SettingsError {
    let text = e.to_string();
    let kept: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.contains('|') && !l.starts_with("in "))
        .collect();
    SettingsError::File {
        path: path.to_owned(),
        message: kept.join(": "),
    }
}

/// A value of the wrong type, named by where it came from.
fn type_error(o: &Origins, e: config::ConfigError) -> SettingsError {
    match e {
        config::ConfigError::Type {
            unexpected,
            expected,
            key: Some(key),
            ..
        } => {
            // A string from the environment is quoted as given; anything else is shown as
            // config read it. Secrets are never of a numeric type, so nothing secret is echoed.
            let expected = match expected {
                "a floating point" => "a number",
                other => other,
            };
            SettingsError::invalid(
                o.name(&key),
                format!("must be {expected}, got {unexpected}"),
            )
        }
        other => SettingsError::Read(other.to_string()),
    }
}

/// Stands for every setting in [`help_text_for`].
pub const ALL: &[&str] = &["*"];

/// The settings section of `--help`: the variables named by `keys` (file names; [`ALL`] for
/// every one), each with its default.
pub fn help_text_for(keys: &[&str]) -> String {
    let defaults: HashMap<String, config::Value> = config::Config::builder()
        .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml))
        .build()
        .and_then(|c| c.try_deserialize())
        .unwrap_or_default();
    let mut out = String::from(
        "Settings (environment beats --config FILE beats defaults; in the file, the name in lower case without HOOKRELAY_):\n",
    );
    for s in SPECS
        .iter()
        .filter(|s| keys == ALL || keys.contains(&s.name))
    {
        let default = defaults
            .get(s.name)
            .and_then(|v| v.clone().into_string().ok())
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "none".to_owned());
        out.push_str(&format!(
            "  {:36} {} [default: {default}]\n",
            env_name(s.name),
            s.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(env: &[(&str, &str)]) -> Result<Settings, String> {
        Settings::load_from(
            None,
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
        .map_err(|e| e.to_string())
    }

    fn check(var: &str, value: &str, want: &str) {
        let err = load(&[(var, value)]).err().unwrap_or_default();
        assert!(
            err.contains(want),
            "{var}={value:?} gave {err:?}, wanted {want:?}"
        );
    }

    #[test]
    fn defaults_are_valid() {
        let s = load(&[]);
        assert!(s.is_ok(), "{:?}", s.err());
        let s = s.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.endpoint_concurrency, 64);
        assert_eq!(s.disable_after, Duration::from_secs(432_000));
        assert_eq!(s.metrics_listen, None);
        assert_eq!(s.effective.len(), SPECS.len());
    }

    #[test]
    fn every_spec_is_in_the_defaults_file() {
        for s in SPECS {
            assert!(
                DEFAULTS.contains(&format!("{} =", s.name)),
                "{} is not in config/default.toml",
                s.name
            );
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        #[rustfmt::skip]
        let cases = [
            ("HOOKRELAY_RETRY_MULTIPLIER", "abc", "HOOKRELAY_RETRY_MULTIPLIER: must be a number, got string \"abc\""),
            ("HOOKRELAY_RETRY_MULTIPLIER", "0.5", "HOOKRELAY_RETRY_MULTIPLIER: must be 1 to 1000"),
            ("HOOKRELAY_LISTEN", "nowhere", "HOOKRELAY_LISTEN: must be an address"),
            ("HOOKRELAY_CONCURRENCY", "0", "HOOKRELAY_CONCURRENCY: must be 1 to 10000, got 0"),
            ("HOOKRELAY_CONCURRENCY", "many", "HOOKRELAY_CONCURRENCY: must be"),
            ("HOOKRELAY_ENDPOINT_CONCURRENCY", "1001", "HOOKRELAY_ENDPOINT_CONCURRENCY: must be 1 to 1000"),
            ("HOOKRELAY_DISABLE_AFTER_SECS", "0", "HOOKRELAY_DISABLE_AFTER_SECS: must be at least 1"),
            ("HOOKRELAY_RECOVERY_TIMEOUT_MS", "120000", "HOOKRELAY_RECOVERY_TIMEOUT_MS"),
            ("HOOKRELAY_ALLOWED_TARGETS", "10.0.0.0/8,bogus", "HOOKRELAY_ALLOWED_TARGETS"),
            ("HOOKRELAY_REDIS_URL", "http://x", "HOOKRELAY_REDIS_URL"),
            ("HOOKRELAY_LOG_FORMAT", "xml", "HOOKRELAY_LOG_FORMAT"),
            ("HOOKRELAY_API_TOKEN", "short", "HOOKRELAY_API_TOKEN"),
            ("HOOKRELAY_METRICS_LISTEN", "9090", "HOOKRELAY_METRICS_LISTEN: must be empty"),
            ("HOOKRELAY_RETENTION_SECS", "3600", "HOOKRELAY_RETENTION_SECS: must cover the retry schedule: at least 87753 s"),
        ];
        for (variable, value, want) in cases {
            check(variable, value, want);
        }
    }

    #[test]
    fn unknown_variables_are_warnings_with_the_closest_name() {
        let s = load(&[("HOOKRELAY_CONCURENCY", "8"), ("HOOKRELAY_CONFIG", "x")])
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(
            s.warnings[0].contains("HOOKRELAY_CONCURENCY")
                && s.warnings[0].contains("did you mean HOOKRELAY_CONCURRENCY?"),
            "{:?}",
            s.warnings
        );
        assert_eq!(s.concurrency, 256);
    }

    #[test]
    fn a_file_that_is_not_toml_is_reported_without_its_lines() {
        let dir = std::env::temp_dir().join(format!("hookrelay-settings-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let file = dir.join("broken.toml");
        let _ = std::fs::write(&file, "api_token = \"abc-secret-token\n");
        let path = file.to_string_lossy().into_owned();
        let err = Settings::load_from(Some(&path), Vec::new())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(err.contains("TOML parse error at line 1"), "{err}");
        assert!(!err.contains("abc-secret-token"), "{err}");
    }

    #[test]
    fn suggestions() {
        for (unknown, want) in [
            ("concurency", "concurrency"),
            ("CONCURRENCY_", "concurrency"),
            ("retry", "retry_multiplier"),
            ("redis", "redis_url"),
            ("prefix", "key_prefix"),
            ("metrics_port", "metrics_listen"),
            ("token", "api_token"),
        ] {
            assert_eq!(closest(unknown), want, "{unknown}");
        }
    }

    #[test]
    fn secrets_are_masked() {
        let s = load(&[
            ("HOOKRELAY_API_TOKEN", "sup3r-s3cret-token"),
            ("HOOKRELAY_REDIS_URL", "redis://:hunter2pass@db:6379/0"),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        let table = s.table();
        assert!(!table.contains("sup3r-s3cret-token"), "{table}");
        assert!(!table.contains("hunter2pass"), "{table}");
        assert!(!format!("{s:?}").contains("hunter2pass"));
        assert!(table.contains("redis://:***@db:6379/0"), "{table}");
    }
}
