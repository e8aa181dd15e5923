//! One outbound HTTP attempt of one delivery job, in explicit steps: prepare (URL, target
//! policy, headers, signature) → send and read the answer under one deadline → classify →
//! record.
//!
//! The request is the one the README describes ("The delivered request"). What this module
//! guarantees beyond it:
//! - one [`reqwest::Client`] per [`HttpDeliverer`], so connections are pooled per host;
//! - redirects are never followed and no proxy is used (a proxy would connect on our behalf,
//!   past the target policy);
//! - the target policy is applied to the addresses DNS returns, at connection time, by a
//!   resolver that drops refused addresses, and to literal IP URLs (which never reach a
//!   resolver) before anything is sent;
//! - the job's timeout covers the whole exchange: connect, TLS, sending, the answer's
//!   headers and the part of its body that is kept;
//! - at most [`HttpSettings::max_body_kept`] bytes of an answer are read; then the
//!   connection is dropped rather than drained, so a 1 GB answer costs 64 KiB;
//! - errors are short sentences for people ("Connection refused", "timed out after 10 s")
//!   that never carry the URL, header values, the token or signing secrets;
//! - what is kept of an answer never holds the webhook's token, signing secrets or header
//!   values either: a receiver that echoes its request gets them replaced by
//!   [`REDACTED`] before the record is stored (see [`redact`]).

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use hookrelay_core::delivery::ResponseRecord;
use hookrelay_core::target::{TargetPolicy, TargetRefused};
use hookrelay_core::{AttemptRecord, Job};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{
    AUTHORIZATION, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue,
    RETRY_AFTER, TE, TRAILER, TRANSFER_ENCODING, UPGRADE, USER_AGENT,
};
use reqwest::{StatusCode, Url};

/// Bytes of an answer's body kept by default (64 KiB).
pub const DEFAULT_MAX_BODY_KEPT: usize = 64 * 1024;

/// Longest `Retry-After` honoured; a receiver asking for more gets this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Standard Webhooks header names.
const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// How the worker's HTTP client behaves.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Which addresses may be connected to (`HOOKRELAY_ALLOWED_TARGETS`).
    pub policy: TargetPolicy,
    /// Bytes of each answer's body kept in the attempt record; the rest is never read.
    pub max_body_kept: usize,
    /// Idle keep-alive connections kept per host. Concurrency itself is capped by the
    /// worker, not here; this only decides how many connections survive between bursts.
    pub max_idle_per_host: usize,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            policy: TargetPolicy::default(),
            max_body_kept: DEFAULT_MAX_BODY_KEPT,
            max_idle_per_host: 128,
            pool_idle_timeout: Duration::from_secs(90),
        }
    }
}

/// Why the HTTP client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// reqwest refused the configuration (e.g. no TLS roots could be loaded).
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// The record to store under the delivery.
    pub record: AttemptRecord,
    /// Whether the delivery succeeded (2xx or 3xx, and no error in a format's body).
    pub success: bool,
    /// The receiver's `Retry-After` on a 429 or 503, capped at [`MAX_RETRY_AFTER`].
    pub retry_after: Option<Duration>,
}

/// Makes delivery attempts. Build one per process and share it: it holds the connection
/// pools.
#[derive(Debug, Clone)]
pub struct HttpDeliverer {
    client: reqwest::Client,
    policy: Arc<TargetPolicy>,
    max_body_kept: usize,
    /// When an allowed-target entry is limited to one port, the resolver must know the
    /// port, which reqwest does not tell it: then each port gets a client of its own.
    per_port: Option<Arc<PortClients>>,
}

/// One client per destination port, built on first use.
#[derive(Debug)]
struct PortClients {
    settings: HttpSettings,
    clients: std::sync::Mutex<std::collections::HashMap<u16, reqwest::Client>>,
}

/// Ports with a pooled client of their own, at most; past it, a client per attempt.
const MAX_PORT_CLIENTS: usize = 256;

fn build_client(
    settings: &HttpSettings,
    policy: Arc<TargetPolicy>,
    port: Option<u16>,
) -> Result<reqwest::Client, HttpError> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .referer(false)
        .dns_resolver(PolicyResolver { policy, port })
        .pool_max_idle_per_host(settings.max_idle_per_host)
        .pool_idle_timeout(settings.pool_idle_timeout)
        .build()
        .map_err(|e| HttpError::Client(error_chain(&e)))
}

impl HttpDeliverer {
    /// Builds the client: no redirects, no proxy, the policy-checking resolver, pooling.
    pub fn new(settings: HttpSettings) -> Result<Self, HttpError> {
        let policy = Arc::new(settings.policy.clone());
        let client = build_client(&settings, policy.clone(), None)?;
        let per_port = policy.has_ports().then(|| {
            Arc::new(PortClients {
                settings: settings.clone(),
                clients: std::sync::Mutex::new(std::collections::HashMap::new()),
            })
        });
        Ok(Self {
            client,
            policy,
            max_body_kept: settings.max_body_kept,
            per_port,
        })
    }

    /// The client for a request to `url`.
    fn client_for(&self, url: &Url) -> Result<reqwest::Client, String> {
        let (Some(per_port), Some(port)) = (&self.per_port, url.port_or_known_default()) else {
            return Ok(self.client.clone());
        };
        let build = || {
            build_client(&per_port.settings, self.policy.clone(), Some(port))
                .map_err(|e| e.to_string())
        };
        let mut clients = match per_port.clients.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(client) = clients.get(&port) {
            return Ok(client.clone());
        }
        let client = build()?;
        if clients.len() < MAX_PORT_CLIENTS {
            clients.insert(port, client.clone());
        }
        Ok(client)
    }

    /// Makes one attempt of `job`, recording it as made by `worker`. Never panics and never
    /// fails: whatever goes wrong is in the outcome.
    pub async fn attempt(&self, job: &Job, worker: &str) -> AttemptOutcome {
        let started_at = hookrelay_core::time::Timestamp::now();
        let start = Instant::now();
        let limit = job.timeout();
        let mut answer = Answer::default();

        let result = match self.prepare(job) {
            Err(e) => Err(e),
            Ok((url, headers)) => {
                let exchange = self.exchange(url, headers, job.request.body.clone(), &mut answer);
                match tokio::time::timeout(limit, exchange).await {
                    Ok(r) => r,
                    Err(_) => {
                        // What came before the deadline (status, headers, some body) is
                        // still worth showing; the body is certainly incomplete.
                        answer.truncated = answer.status.is_some();
                        Err(format!("timed out after {} s", limit.as_secs()))
                    }
                }
            }
        };
        let duration_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);

        let error = match (result, answer.status) {
            (Err(e), _) => Some(e),
            (Ok(()), Some(status)) => classify(job, status, &answer.body),
            (Ok(()), None) => Some("no answer".to_owned()),
        };
        let success = error.is_none();
        let status_code = answer.status.map(|s| s.as_u16());
        tracing::debug!(
            delivery_id = %job.id,
            attempt = job.attempt,
            status = status_code,
            duration_ms,
            success,
            error = error.as_deref(),
            "delivery attempt"
        );
        let response = answer.status.map(|status| {
            let mut headers = answer.headers;
            let mut body = String::from_utf8_lossy(&answer.body).into_owned();
            redact(job, &mut headers, &mut body, answer.truncated);
            ResponseRecord {
                status_code: status.as_u16(),
                headers,
                body,
                body_truncated: answer.truncated,
            }
        });
        AttemptOutcome {
            record: AttemptRecord {
                attempt: job.attempt,
                started_at,
                duration_ms,
                status_code,
                error,
                response,
                worker: Some(worker.to_owned()),
            },
            success,
            retry_after: answer.retry_after,
        }
    }

    /// Step 1: the URL (checked against the policy when it is a literal address) and the
    /// request headers.
    fn prepare(&self, job: &Job) -> Result<(Url, HeaderMap), String> {
        let url = Url::parse(&job.request.url).map_err(|e| format!("invalid URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "unsupported URL scheme {:?} (http or https only)",
                url.scheme()
            ));
        }
        // Literal addresses never reach the resolver, so they are checked here.
        self.policy.check_url(&url).map_err(|e| e.to_string())?;
        Ok((url, request_headers(job)?))
    }

    /// Step 2: send, then read the answer into `answer` as far as it is kept. Written into
    /// `answer` as it goes so that a deadline in the middle still leaves what arrived.
    async fn exchange(
        &self,
        url: Url,
        headers: HeaderMap,
        body: String,
        answer: &mut Answer,
    ) -> Result<(), String> {
        let tls = url.scheme() == "https";
        let client = self.client_for(&url)?;
        let mut response = client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|e| describe_error(&e, tls))?;
        let status = response.status();
        answer.status = Some(status);
        answer.headers = kept_headers(response.headers());
        answer.retry_after = retry_after(status, response.headers());

        let max = self.max_body_kept;
        let declared = response.content_length();
        loop {
            if answer.body.len() >= max {
                answer.truncated = match declared {
                    Some(len) => len > answer.body.len() as u64,
                    // Unknown length: look without waiting whether the end is already
                    // there; if it is not, there may be more, and we will not wait for it.
                    None => !matches!(response.chunk().now_or_never(), Some(Ok(None))),
                };
                break;
            }
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = max - answer.body.len();
                    if chunk.len() > room {
                        answer.body.extend_from_slice(&chunk[..room]);
                        answer.truncated = true;
                        break;
                    }
                    answer.body.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => {
                    answer.truncated = true;
                    return Err(format!(
                        "{} while reading the answer",
                        describe_error(&e, tls)
                    ));
                }
            }
        }
        // Dropping an unfinished response closes its connection instead of draining it.
        drop(response);
        Ok(())
    }
}

/// What arrived of an answer.
#[derive(Debug, Default)]
struct Answer {
    status: Option<StatusCode>,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
    truncated: bool,
    retry_after: Option<Duration>,
}

/// Step 3: success or the error, for an answer that fully arrived.
fn classify(job: &Job, status: StatusCode, body: &[u8]) -> Option<String> {
    if status.is_success() {
        // Some receivers (Bytebase) answer 2xx and report failure in the body.
        hookrelay_core::formats::body_error(job.request.format, body)
            .map(|message| format!("HTTP {} but the answer says: {message}", status.as_u16()))
    } else if status.is_redirection() {
        None
    } else {
        Some(match status.canonical_reason() {
            Some(reason) => format!("HTTP {} {reason}", status.as_u16()),
            None => format!("HTTP {}", status.as_u16()),
        })
    }
}

/// The request headers, in this order: `content-type` and `user-agent` (unless the webhook
/// sets its own), the webhook's headers as given, `authorization` for a token, then the
/// Standard Webhooks headers, which the webhook's headers cannot override.
fn request_headers(job: &Job) -> Result<HeaderMap, String> {
    let req = &job.request;
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(
        USER_AGENT,
        HeaderValue::from_static(hookrelay_core::USER_AGENT),
    );
    let mut overridden: Vec<HeaderName> = Vec::new();
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| format!("invalid header name {:?}", name.trim()))?;
        // The value is not quoted: it may be a protected one.
        let mut value = HeaderValue::from_str(value)
            .map_err(|_| format!("header {name} has a value that is not a valid header value"))?;
        value.set_sensitive(true);
        // Framing and hop-by-hop headers belong to the connection, not to the webhook.
        if [
            CONTENT_LENGTH,
            TRANSFER_ENCODING,
            CONNECTION,
            KEEP_ALIVE,
            UPGRADE,
            TE,
            TRAILER,
        ]
        .contains(&name)
        {
            continue;
        }
        if (name == CONTENT_TYPE || name == USER_AGENT) && !overridden.contains(&name) {
            headers.remove(&name);
            overridden.push(name.clone());
        }
        headers.append(name, value);
    }
    if let Some(token) = &req.token {
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the token is not a valid header value".to_owned())?;
        value.set_sensitive(true);
        headers.insert(AUTHORIZATION, value);
    }
    headers.insert(
        WEBHOOK_ID,
        HeaderValue::from_str(&job.id)
            .map_err(|_| "the delivery id is not a valid header value".to_owned())?,
    );
    let timestamp = chrono::Utc::now().timestamp();
    headers.insert(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp));
    // A webhook header of that name must not pass for a signature, so it goes either way.
    headers.remove(WEBHOOK_SIGNATURE);
    if !req.secrets.is_empty() {
        let signature = hookrelay_core::signing::signature_header(
            &req.secrets,
            &job.id,
            timestamp,
            req.body.as_bytes(),
        );
        // Empty only if no stored secret could sign: send no header rather than an empty one.
        if !signature.is_empty() {
            let value = HeaderValue::from_str(&signature)
                .map_err(|_| "the signature is not a valid header value".to_owned())?;
            headers.insert(WEBHOOK_SIGNATURE, value);
        }
    }
    Ok(headers)
}

/// The answer's headers: lower-case names, repeated values joined with `, `.
fn kept_headers(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut kept = BTreeMap::new();
    for name in headers.keys() {
        let joined = headers
            .get_all(name)
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .collect::<Vec<_>>()
            .join(", ");
        kept.insert(name.as_str().to_owned(), joined);
    }
    kept
}

/// `Retry-After` of a 429 or 503, in seconds or as an HTTP date, capped at
/// [`MAX_RETRY_AFTER`].
fn retry_after(status: StatusCode, headers: &HeaderMap) -> Option<Duration> {
    if status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::SERVICE_UNAVAILABLE {
        return None;
    }
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let secs = match value.parse::<u64>() {
        Ok(secs) => secs,
        // More seconds than a u64 holds: a very long wait, capped like any other.
        Err(_) if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => u64::MAX,
        Err(_) => {
            let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
            let wait = at.timestamp() - chrono::Utc::now().timestamp();
            u64::try_from(wait).unwrap_or(0)
        }
    };
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// What replaces a secret in a stored answer.
pub const REDACTED: &str = "[redacted]";

/// Webhook header values shorter than this are not looked for in answers: they cannot be
/// secrets worth the name, and replacing every `1` or `yes` would garble the body.
const MIN_REDACTED_LEN: usize = 4;

/// Replaces, in the answer's header values and body, every occurrence of the job's token,
/// signing secrets (whole, and their key part after `whsec_`) and webhook header values
/// (the job does not say which headers were protected, so all of them), as sent and as
/// escaped inside a JSON string. When the body was cut short, a secret cut at its end is
/// replaced too.
fn redact(job: &Job, headers: &mut BTreeMap<String, String>, body: &mut String, truncated: bool) {
    let req = &job.request;
    let mut secrets: Vec<String> = Vec::new();
    secrets.extend(req.token.iter().cloned());
    for secret in &req.secrets {
        secrets.push(secret.clone());
        if let Some(key) = secret.strip_prefix("whsec_") {
            secrets.push(key.to_owned());
        }
    }
    secrets.extend(req.headers.iter().map(|(_, v)| v.clone()));
    secrets.retain(|s| s.len() >= MIN_REDACTED_LEN);
    let escaped: Vec<String> = secrets
        .iter()
        .filter_map(|s| serde_json::to_string(s).ok())
        .map(|quoted| quoted[1..quoted.len() - 1].to_owned())
        .collect();
    secrets.extend(escaped);
    // Longest first, so that a secret containing another is replaced whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets.dedup();
    if secrets.is_empty() {
        return;
    }
    for value in headers.values_mut() {
        for secret in &secrets {
            if value.contains(secret.as_str()) {
                *value = value.replace(secret.as_str(), REDACTED);
            }
        }
    }
    for secret in &secrets {
        if body.contains(secret.as_str()) {
            *body = body.replace(secret.as_str(), REDACTED);
        }
    }
    if truncated {
        for secret in &secrets {
            let cut = (MIN_REDACTED_LEN..secret.len())
                .rev()
                .filter(|&n| secret.is_char_boundary(n))
                .find(|&n| body.ends_with(&secret[..n]));
            if let Some(n) = cut {
                body.truncate(body.len() - n);
                body.push_str(REDACTED);
                break;
            }
        }
    }
}

/// Resolves names with the system resolver and keeps only the addresses the policy allows
/// (on `port`, when the client is for one port; on any port otherwise).
struct PolicyResolver {
    policy: Arc<TargetPolicy>,
    port: Option<u16>,
}

/// Why a name gave no address to connect to. Found again in the error chain by
/// [`describe_error`], so its message becomes the attempt's error as it is.
#[derive(Debug, thiserror::Error)]
enum ResolveError {
    #[error("DNS lookup failed for {host}: {reason}")]
    Lookup { host: String, reason: String },
    #[error("DNS lookup for {0} returned no address")]
    NoAddress(String),
    #[error(transparent)]
    Refused(TargetRefused),
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let port = self.port;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| ResolveError::Lookup {
                    host: host.clone(),
                    reason: lookup_reason(&e),
                })?;
            let mut allowed = Vec::new();
            let mut refused = None;
            for addr in found {
                match policy.check_port(addr.ip(), port) {
                    Ok(()) => allowed.push(addr),
                    Err(e) => {
                        refused.get_or_insert(e);
                    }
                }
            }
            if allowed.is_empty() {
                let err = match refused {
                    Some(r) => ResolveError::Refused(r),
                    None => ResolveError::NoAddress(host),
                };
                return Err(err.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// getaddrinfo's message without its boilerplate prefix.
fn lookup_reason(e: &io::Error) -> String {
    let text = e.to_string();
    match text.strip_prefix("failed to lookup address information: ") {
        Some(rest) => rest.to_owned(),
        None => text,
    }
}

/// A short sentence for a failed request, from the most telling error in its chain.
fn describe_error(err: &reqwest::Error, tls: bool) -> String {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(r) = e.downcast_ref::<ResolveError>() {
            return r.to_string();
        }
        if let Some(h) = e.downcast_ref::<hyper::Error>() {
            if h.is_incomplete_message() {
                return "connection closed before an answer came".to_owned();
            }
            if h.is_parse() || h.is_parse_status() {
                return format!("invalid HTTP answer: {h}");
            }
        }
        if let Some(io) = e.downcast_ref::<io::Error>()
            && let Some(text) = describe_io(io, tls && err.is_connect())
        {
            return text;
        }
        current = e.source();
    }
    if err.is_builder() {
        return format!("invalid request: {}", innermost(err));
    }
    if tls && err.is_connect() {
        return format!("TLS handshake failed: {}", innermost(err));
    }
    if err.is_connect() {
        return format!("connection failed: {}", innermost(err));
    }
    format!("request failed: {}", innermost(err))
}

fn describe_io(e: &io::Error, during_tls_connect: bool) -> Option<String> {
    use io::ErrorKind::*;
    let text = match e.kind() {
        ConnectionRefused => "Connection refused",
        ConnectionReset => "connection reset",
        ConnectionAborted => "connection aborted",
        BrokenPipe => "connection closed while sending the request",
        UnexpectedEof => "connection closed before an answer came",
        TimedOut => "connection timed out",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        AddrNotAvailable => "local address not available",
        // rustls reports a failed handshake as invalid data carrying its own error.
        InvalidData | Other if during_tls_connect => {
            return Some(match e.get_ref() {
                Some(inner) => format!("TLS handshake failed: {inner}"),
                None => format!("TLS handshake failed: {e}"),
            });
        }
        _ => return None,
    };
    Some(text.to_owned())
}

/// The last error of a chain: usually the most specific, and never carrying the URL.
fn innermost(err: &(dyn StdError + 'static)) -> String {
    let mut last = err;
    while let Some(next) = last.source() {
        last = next;
    }
    last.to_string()
}

/// Every message of a chain, for setup errors where completeness beats brevity.
fn error_chain(err: &(dyn StdError + 'static)) -> String {
    let mut parts = vec![err.to_string()];
    let mut current = err.source();
    while let Some(e) = current {
        parts.push(e.to_string());
        current = e.source();
    }
    parts.join(": ")
}
