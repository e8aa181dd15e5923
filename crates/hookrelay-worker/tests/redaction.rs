//! What is kept of an answer never holds the webhook's secrets, and an overflowing
//! `Retry-After` is capped rather than ignored: real receivers on 127.0.0.1.

#![allow(clippy::unwrap_used)]

use hookrelay_core::Job;
use hookrelay_core::job::JobRequest;
use hookrelay_core::target::TargetPolicy;
use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_worker::http::{HttpDeliverer, HttpSettings, MAX_RETRY_AFTER, REDACTED};

const TOKEN: &str = "hook-token-SECRET-7d2e9b";
const HEADER: &str = "header-value-SECRET-a81c3f";
const KEY: &str = "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn job(url: &str) -> Job {
    let request = JobRequest {
        headers: vec![
            ("X-Api-Key".into(), HEADER.into()),
            ("X-Short".into(), "1".into()),
        ],
        token: Some(TOKEN.into()),
        secrets: vec![format!("whsec_{KEY}")],
        timeout_secs: 5,
        ..JobRequest::new(url, "{}")
    };
    Job {
        webhook: Some("w".into()),
        ..Job::first_attempt(
            hookrelay_core::DeliveryId::parse("dlv_redaction").unwrap(),
            hookrelay_core::ProjectName::parse("p").unwrap(),
            "ep-test",
            "e",
            request,
        )
    }
}

fn deliverer(max_body_kept: usize) -> HttpDeliverer {
    HttpDeliverer::new(HttpSettings {
        policy: TargetPolicy::parse("127.0.0.0/8").unwrap(),
        max_body_kept,
        ..HttpSettings::default()
    })
    .unwrap()
}

#[tokio::test]
async fn echoed_secrets_are_redacted_before_they_are_kept() {
    // A receiver that echoes what it got, in headers and body, JSON-escaped or not.
    let body = format!(
        "{{\"authorization\":\"Bearer {TOKEN}\",\"x-api-key\":\"{HEADER}\",\"secret\":\"whsec_{KEY}\",\"key\":\"{KEY}\",\"n\":1}}"
    );
    let r = Receiver::start(Reply::Custom {
        status: 200,
        headers: vec![
            ("X-Echo-Authorization".into(), format!("Bearer {TOKEN}")),
            ("X-Echo-Key".into(), HEADER.into()),
        ],
        body,
    })
    .await;
    let out = deliverer(64 * 1024).attempt(&job(&r.url("/")), "w").await;
    assert!(out.success, "{out:?}");
    let resp = out.record.response.unwrap();
    let kept = format!("{:?} {}", resp.headers, resp.body);
    for secret in [TOKEN, HEADER, KEY] {
        assert!(!kept.contains(secret), "{secret} kept in {kept}");
    }
    assert_eq!(
        resp.headers["x-echo-authorization"],
        format!("Bearer {REDACTED}")
    );
    assert_eq!(resp.headers["x-echo-key"], REDACTED);
    // Values too short to be secrets are left alone.
    assert!(resp.body.ends_with("\"n\":1}"), "{}", resp.body);
    assert_eq!(resp.body.matches(REDACTED).count(), 4, "{}", resp.body);
}

#[tokio::test]
async fn a_secret_cut_by_the_body_cap_is_redacted_too() {
    let body = format!("xx{TOKEN}");
    let r = Receiver::start(Reply::Custom {
        status: 200,
        headers: vec![],
        body,
    })
    .await;
    // Keep all but the last 5 bytes of the token.
    let out = deliverer(2 + TOKEN.len() - 5)
        .attempt(&job(&r.url("/")), "w")
        .await;
    let resp = out.record.response.unwrap();
    assert!(resp.body_truncated);
    assert_eq!(resp.body, format!("xx{REDACTED}"));
}

#[tokio::test]
async fn an_overflowing_retry_after_is_capped() {
    let r = Receiver::start(Reply::Custom {
        status: 429,
        headers: vec![("Retry-After".into(), "99999999999999999999999999".into())],
        body: String::new(),
    })
    .await;
    let out = deliverer(1024).attempt(&job(&r.url("/")), "w").await;
    assert_eq!(out.retry_after, Some(MAX_RETRY_AFTER));
}
