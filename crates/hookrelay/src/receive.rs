//! `hookrelay receive`: a local webhook receiver for development and demos. It prints every
//! request it gets (method, path, headers, pretty body) and, given the webhook's signing
//! secret, says whether the Standard Webhooks signature verifies.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hookrelay_core::signing;
use tokio::sync::watch;

/// Arguments of `hookrelay receive`.
#[derive(clap::Args, Debug)]
pub struct ReceiveArgs {
    /// Port to listen on.
    #[arg(long)]
    pub port: u16,
    /// The webhook's signing secret (whsec_…): check each request's signature with it.
    #[arg(long)]
    pub secret: Option<String>,
    /// Status code to answer with (a request whose signature does not verify gets 401).
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
}

/// How far a `webhook-timestamp` may be from now, as Standard Webhooks receivers allow.
const TOLERANCE_SECS: i64 = 5 * 60;
/// Largest body printed in full.
const BODY_LIMIT: usize = 16 * 1024 * 1024;

struct Receiver {
    secret: Option<String>,
    status: StatusCode,
}

/// What the signature check found.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Verified,
    NotChecked,
    Invalid(&'static str),
}

/// Checks the Standard Webhooks headers of one request against `secret` at time `now`.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> Verdict {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(ts), Some(sig)) = (
        get("webhook-id"),
        get("webhook-timestamp"),
        get("webhook-signature"),
    ) else {
        return Verdict::Invalid("webhook-id, webhook-timestamp or webhook-signature is missing");
    };
    let Ok(ts) = ts.trim().parse::<i64>() else {
        return Verdict::Invalid("webhook-timestamp is not a number");
    };
    if (now - ts).abs() > TOLERANCE_SECS {
        return Verdict::Invalid("webhook-timestamp is more than 5 minutes away from now");
    }
    if signing::verify(secret, id, ts, body, sig) {
        Verdict::Verified
    } else {
        Verdict::Invalid("no signature matches the secret")
    }
}

/// Header values that carry credentials are shown masked.
fn shown_header(name: &str, value: &str) -> String {
    match name {
        "authorization" | "proxy-authorization" => match value.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} ***"),
            None => "***".into(),
        },
        "cookie" | "x-api-key" => "***".into(),
        _ => value.to_owned(),
    }
}

fn pretty_body(body: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(v) => serde_json::to_string_pretty(&v).unwrap_or_default(),
        Err(_) if body.is_empty() => "(empty body)".into(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    }
}

async fn handle(
    State(rx): State<Arc<Receiver>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = chrono::Utc::now();
    let verdict = match &rx.secret {
        Some(secret) => verify(secret, &headers, &body, now.timestamp()),
        None => Verdict::NotChecked,
    };
    let mut out = format!(
        "── {method} {uri}  at {}  ({} bytes)\n",
        now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        body.len()
    );
    for (name, value) in &headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        out.push_str(&format!(
            "{}: {}\n",
            name.as_str(),
            shown_header(name.as_str(), &value)
        ));
    }
    out.push('\n');
    out.push_str(&pretty_body(&body));
    out.push('\n');
    let status = match &verdict {
        Verdict::Verified => {
            out.push_str("signature: verified\n");
            rx.status
        }
        Verdict::NotChecked => {
            out.push_str("signature: not checked (start with --secret whsec_… to check it)\n");
            rx.status
        }
        Verdict::Invalid(why) => {
            out.push_str(&format!("signature: INVALID: {why}\n"));
            StatusCode::UNAUTHORIZED
        }
    };
    out.push_str(&format!("answered: {}\n\n", status.as_u16()));
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
    (status, axum::Json(serde_json::json!({"received": true}))).into_response()
}

/// Runs the receiver until `shutdown`.
pub async fn run(args: ReceiveArgs, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
    let status = StatusCode::from_u16(args.status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .ok_or_else(|| anyhow::anyhow!("--status: must be 200 to 599, got {}", args.status))?;
    if let Some(secret) = &args.secret {
        // The secret itself is never printed, not even when it is malformed.
        signing::validate_secret(secret).map_err(|e| anyhow::anyhow!("--secret: {}", e.message))?;
    }
    let addr = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("--port: cannot listen on {addr}: {e}"))?;
    let checking = if args.secret.is_some() {
        "signatures checked with the given secret"
    } else {
        "signatures not checked (no --secret)"
    };
    println!(
        "hookrelay receive: listening on http://{addr}/ (any path), answering {}; {checking}; Ctrl-C to stop\n",
        status.as_u16()
    );
    let state = Arc::new(Receiver {
        secret: args.secret,
        status,
    });
    let app = Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let mut rx = shutdown;
            let _ = rx.wait_for(|stop| *stop).await;
        })
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(id: &str, ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "webhook-id",
            HeaderValue::from_str(id).unwrap_or(HeaderValue::from_static("")),
        );
        h.insert("webhook-timestamp", HeaderValue::from(ts));
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(sig).unwrap_or(HeaderValue::from_static("")),
        );
        h
    }

    #[test]
    fn verdicts() {
        let secret = signing::generate_secret();
        let other = signing::generate_secret();
        let body = br#"{"a":1}"#;
        let sig = signing::sign(&secret, "msg_1", 1000, body).unwrap_or_default();
        let check = |h: &HeaderMap, body: &[u8], now: i64| verify(&secret, h, body, now);
        assert_eq!(
            check(&headers("msg_1", 1000, &sig), body, 1010),
            Verdict::Verified
        );
        let both = format!(
            "{} {sig}",
            signing::sign(&other, "msg_1", 1000, body).unwrap_or_default()
        );
        assert_eq!(
            check(&headers("msg_1", 1000, &both), body, 1000),
            Verdict::Verified
        );
        assert!(matches!(
            check(&headers("msg_1", 1000, &sig), b"{}", 1000),
            Verdict::Invalid(_)
        ));
        assert!(matches!(
            check(&headers("msg_2", 1000, &sig), body, 1000),
            Verdict::Invalid(_)
        ));
        assert!(matches!(
            check(&headers("msg_1", 1000, &sig), body, 2000),
            Verdict::Invalid(_)
        ));
        assert!(matches!(
            check(&HeaderMap::new(), body, 1000),
            Verdict::Invalid(_)
        ));
    }

    #[test]
    fn credentials_are_masked() {
        assert_eq!(shown_header("authorization", "Bearer abc"), "Bearer ***");
        assert_eq!(shown_header("x-team", "blue"), "blue");
    }
}
