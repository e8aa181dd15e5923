//! The outbound HTTP attempt against real receivers on 127.0.0.1: classification, the
//! request as sent, timeouts over the whole exchange, the body cap, network errors and the
//! target policy.

// A test that meets the unexpected should stop right there.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use hookrelay_core::job::JobRequest;
use hookrelay_core::target::TargetPolicy;
use hookrelay_core::{Format, Job};
use hookrelay_testkit::receiver::{Receiver, Reply, refused_url};
use hookrelay_worker::http::{AttemptOutcome, HttpDeliverer, HttpSettings, MAX_RETRY_AFTER};

const BODY: &str = r#"{"hello":"world"}"#;
const WAIT: Duration = Duration::from_secs(5);

fn job(url: &str) -> Job {
    let request = JobRequest {
        timeout_secs: 5,
        ..JobRequest::new(url, BODY)
    };
    Job {
        webhook: Some("w".into()),
        retry: true,
        ..Job::first_attempt(
            hookrelay_core::DeliveryId::parse("dlv_0123456789").unwrap(),
            hookrelay_core::ProjectName::parse("p").unwrap(),
            "ep-test",
            "model.created",
            request,
        )
    }
}

fn deliverer_with(policy: &str, max_body_kept: usize) -> HttpDeliverer {
    HttpDeliverer::new(HttpSettings {
        policy: TargetPolicy::parse(policy).unwrap(),
        max_body_kept,
        ..HttpSettings::default()
    })
    .unwrap()
}

/// Tests deliver to 127.0.0.1, which the default policy refuses.
fn loopback() -> HttpDeliverer {
    deliverer_with("127.0.0.0/8,::1/128", HttpSettings::default().max_body_kept)
}

fn default_policy() -> HttpDeliverer {
    HttpDeliverer::new(HttpSettings::default()).unwrap()
}

fn error(outcome: &AttemptOutcome) -> &str {
    outcome.record.error.as_deref().unwrap_or("")
}

#[tokio::test]
async fn ok_is_success_with_the_answer_kept() {
    let r = Receiver::start(Reply::Json(200, serde_json::json!({"ok": true}))).await;
    let out = loopback().attempt(&job(&r.url("/hook")), "worker-1").await;

    assert!(out.success, "{out:?}");
    let rec = &out.record;
    assert_eq!(rec.attempt, 1);
    assert_eq!(rec.status_code, Some(200));
    assert_eq!(rec.error, None);
    assert_eq!(rec.worker.as_deref(), Some("worker-1"));
    assert!((hookrelay_core::time::now_ms() - rec.started_at.as_ms()).abs() < 60_000);
    let resp = rec.response.as_ref().unwrap();
    assert_eq!(resp.status_code, 200);
    assert_eq!(resp.body, r#"{"ok":true}"#);
    assert!(!resp.body_truncated);
    assert_eq!(resp.headers["content-type"], "application/json");
    assert_eq!(resp.headers["content-length"], "11");
    assert_eq!(out.retry_after, None);
}

#[tokio::test]
async fn other_statuses_fail_with_the_code() {
    let r = Receiver::start(Reply::Status(500)).await;
    let d = loopback();
    let out = d.attempt(&job(&r.url("/")), "w").await;
    assert!(!out.success);
    assert_eq!(error(&out), "HTTP 500 Internal Server Error");
    assert_eq!(out.record.status_code, Some(500));
    assert_eq!(out.record.response.as_ref().unwrap().status_code, 500);

    for (code, want) in [
        (404, "HTTP 404 Not Found"),
        (400, "HTTP 400 Bad Request"),
        (599, "HTTP 599"),
    ] {
        r.set_reply(Reply::Status(code));
        let out = d.attempt(&job(&r.url("/")), "w").await;
        assert!(!out.success);
        assert_eq!(error(&out), want);
    }
    for code in [201, 204, 299, 301, 304, 307, 308] {
        r.set_reply(Reply::Status(code));
        let out = d.attempt(&job(&r.url("/")), "w").await;
        assert!(out.success, "{code} should be a success: {out:?}");
        assert_eq!(out.record.status_code, Some(code));
    }
}

#[tokio::test]
async fn redirects_succeed_and_are_not_followed() {
    let elsewhere = Receiver::start(Reply::Status(200)).await;
    let r = Receiver::start(Reply::Redirect(elsewhere.url("/elsewhere"))).await;
    let out = loopback().attempt(&job(&r.url("/hook")), "w").await;

    assert!(out.success, "{out:?}");
    assert_eq!(out.record.status_code, Some(302));
    let resp = out.record.response.unwrap();
    assert_eq!(resp.headers["location"], elsewhere.url("/elsewhere"));
    assert_eq!(r.count(), 1);
    assert_eq!(elsewhere.connections(), 0, "the redirect was followed");
}

#[tokio::test]
async fn connection_refused() {
    let out = loopback().attempt(&job(&refused_url("/hook")), "w").await;
    assert!(!out.success);
    assert_eq!(error(&out), "Connection refused");
    assert_eq!(out.record.status_code, None);
    assert_eq!(out.record.response, None);
}

#[tokio::test]
async fn a_slow_receiver_times_out_after_the_job_timeout() {
    let r = Receiver::start(Reply::Slow(Duration::from_secs(4), 200)).await;
    let mut j = job(&r.url("/"));
    j.request.timeout_secs = 1;
    let out = loopback().attempt(&j, "w").await;
    assert!(!out.success);
    assert_eq!(error(&out), "timed out after 1 s");
    assert_eq!(out.record.status_code, None);
    let ms = out.record.duration_ms;
    assert!((1000..1800).contains(&ms), "took {ms} ms");
}

#[tokio::test]
async fn a_hanging_receiver_times_out_after_two_seconds() {
    let r = Receiver::start(Reply::Hang).await;
    let mut j = job(&r.url("/"));
    j.request.timeout_secs = 2;
    let out = loopback().attempt(&j, "w").await;
    assert_eq!(error(&out), "timed out after 2 s");
    let ms = out.record.duration_ms;
    assert!((2000..2800).contains(&ms), "took {ms} ms");
    assert_eq!(r.count(), 1, "the request did arrive");
}

#[tokio::test]
async fn the_default_timeout_is_ten_seconds_and_the_cap_thirty() {
    // What `attempt` applies is `Job::timeout()`: the default is 10 s, 31 and more are cut
    // to 30 s, and 0 becomes 1 s.
    let mut j = job("http://127.0.0.1:1/");
    for (secs, want) in [
        (hookrelay_core::DEFAULT_TIMEOUT_SECS, 10),
        (30, 30),
        (31, 30),
        (3600, 30),
        (0, 1),
    ] {
        j.request.timeout_secs = secs;
        assert_eq!(
            j.timeout(),
            Duration::from_secs(want),
            "timeout_secs {secs}"
        );
    }

    // And one real attempt with the default against a receiver that never answers.
    let r = Receiver::start(Reply::Hang).await;
    let mut j = job(&r.url("/"));
    j.request.timeout_secs = hookrelay_core::DEFAULT_TIMEOUT_SECS;
    let out = loopback().attempt(&j, "w").await;
    assert_eq!(error(&out), "timed out after 10 s");
    let ms = out.record.duration_ms;
    assert!((10_000..11_000).contains(&ms), "took {ms} ms");
}

#[tokio::test]
async fn the_request_carries_body_and_headers() {
    let r = Receiver::start(Reply::Status(204)).await;
    let mut j = job(&r.url("/hooks/in?source=hookrelay"));
    j.request.headers = vec![
        ("X-First".into(), "1".into()),
        ("X-Second".into(), "two".into()),
        ("X-Third".into(), "3".into()),
        ("X-First".into(), "again".into()),
    ];
    let before = chrono::Utc::now().timestamp();
    let out = loopback().attempt(&j, "w").await;
    assert!(out.success, "{out:?}");

    let got = r.wait_for_requests(1, WAIT).await;
    let req = &got[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/hooks/in");
    assert_eq!(req.query.as_deref(), Some("source=hookrelay"));
    assert_eq!(req.text(), BODY);
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("user-agent"), Some(hookrelay_core::USER_AGENT));
    assert!(hookrelay_core::USER_AGENT.starts_with("hookrelay/"));
    assert_eq!(req.header_all("x-first"), ["1", "again"]);
    assert_eq!(req.header("x-second"), Some("two"));
    let custom: Vec<&str> = req
        .header_names()
        .into_iter()
        .filter(|n| n.starts_with("x-"))
        .collect();
    assert_eq!(custom, ["x-first", "x-first", "x-second", "x-third"]);
    assert_eq!(
        req.header("authorization"),
        None,
        "no token, no Authorization"
    );
    assert_eq!(req.header("webhook-id"), Some("dlv_0123456789"));
    let ts: i64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(ts >= before && ts <= chrono::Utc::now().timestamp());
    assert_eq!(
        req.header("webhook-signature"),
        None,
        "no secrets, no signature"
    );
}

#[tokio::test]
async fn a_token_becomes_a_bearer_and_the_webhook_id_stays_across_retries() {
    let r = Receiver::start(Reply::Status(500)).await;
    let d = loopback();
    let mut j = job(&r.url("/"));
    j.request.token = Some("tok-123".into());
    d.attempt(&j, "w").await;
    j.attempt = 2;
    let out = d.attempt(&j, "w").await;
    assert_eq!(out.record.attempt, 2);

    let got = r.wait_for_requests(2, WAIT).await;
    for req in &got {
        assert_eq!(req.header("authorization"), Some("Bearer tok-123"));
        assert_eq!(req.header("webhook-id"), Some("dlv_0123456789"));
    }
}

#[tokio::test]
async fn every_secret_signs_the_request() {
    use hookrelay_core::signing;
    let r = Receiver::start(Reply::Status(200)).await;
    let (current, previous) = (signing::generate_secret(), signing::generate_secret());
    let mut j = job(&r.url("/"));
    j.request.secrets = vec![current.clone(), previous.clone()];
    j.request.headers = vec![("webhook-signature".into(), "v1,forged".into())];
    assert!(loopback().attempt(&j, "w").await.success);

    let req = &r.wait_for_requests(1, WAIT).await[0];
    let id = req.header("webhook-id").unwrap();
    let ts: i64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
    let sigs = req.header_all("webhook-signature");
    assert_eq!(sigs.len(), 1, "{sigs:?}");
    assert_eq!(sigs[0].split(' ').count(), 2, "one signature per secret");
    for secret in [&current, &previous] {
        assert!(signing::verify(secret, id, ts, &req.body, sigs[0]));
    }
    assert!(!signing::verify(
        &signing::generate_secret(),
        id,
        ts,
        &req.body,
        sigs[0]
    ));
}

#[tokio::test]
async fn a_bytebase_2xx_with_a_nonzero_code_fails() {
    let r = Receiver::start(Reply::Json(
        200,
        serde_json::json!({"code": 400, "message": "Ops"}),
    ))
    .await;
    let d = loopback();
    let mut j = job(&r.url("/"));
    j.request.format = Format::Bytebase;
    let out = d.attempt(&j, "w").await;
    assert!(!out.success);
    assert_eq!(error(&out), "HTTP 200 but the answer says: Ops");
    assert_eq!(out.record.status_code, Some(200));

    r.set_reply(Reply::Json(200, serde_json::json!({"code": 0})));
    assert!(d.attempt(&j, "w").await.success);

    // Other formats do not read the body.
    r.set_reply(Reply::Json(200, serde_json::json!({"code": 400})));
    j.request.format = Format::Json;
    assert!(d.attempt(&j, "w").await.success);
}

#[tokio::test]
async fn webhook_headers_override_defaults_but_not_protocol_headers() {
    let r = Receiver::start(Reply::Status(200)).await;
    let mut j = job(&r.url("/"));
    j.request.headers = vec![
        ("Content-Type".into(), "application/cloudevents+json".into()),
        ("webhook-id".into(), "forged".into()),
        ("Content-Length".into(), "999".into()),
        ("Authorization".into(), "Basic abc".into()),
    ];
    j.request.token = Some("tok".into());
    let out = loopback().attempt(&j, "w").await;
    assert!(out.success, "{out:?}");

    let req = &r.wait_for_requests(1, WAIT).await[0];
    assert_eq!(
        req.header_all("content-type"),
        ["application/cloudevents+json"]
    );
    assert_eq!(req.header_all("webhook-id"), ["dlv_0123456789"]);
    assert_eq!(req.header_all("content-length"), [BODY.len().to_string()]);
    assert_eq!(req.header_all("authorization"), ["Bearer tok"]);
    assert_eq!(req.text(), BODY);
}

#[tokio::test]
async fn bad_headers_are_refused_without_showing_their_value() {
    let d = loopback();
    let mut j = job(&refused_url("/"));
    j.request.headers = vec![("X-Secret".into(), "line\nbreak-secret".into())];
    let out = d.attempt(&j, "w").await;
    assert_eq!(
        error(&out),
        "header x-secret has a value that is not a valid header value"
    );

    j.request.headers = vec![("bad name".into(), "v".into())];
    let out = d.attempt(&j, "w").await;
    assert_eq!(error(&out), "invalid header name \"bad name\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_answer_is_cut_at_the_cap_and_not_drained() {
    const GIB: u64 = 1 << 30;
    let r = Receiver::start(Reply::HugeBody(GIB)).await;
    let d = loopback();
    let started = Instant::now();
    let out = d.attempt(&job(&r.url("/")), "w").await;
    let elapsed = started.elapsed();

    assert!(out.success, "{out:?}");
    let resp = out.record.response.as_ref().unwrap();
    assert_eq!(resp.body.len(), 64 * 1024);
    assert!(resp.body_truncated);
    assert_eq!(resp.headers["content-length"], GIB.to_string());
    // The server streams only as fast as the client reads: what it managed to hand to the
    // kernel before the connection went away shows the answer was not drained.
    let sent = r.body_bytes_sent();
    assert!(sent < 64 << 20, "{sent} bytes were pulled");
    println!(
        "1 GiB answer: attempt took {} ms (wall {:?}), receiver handed out {} KiB, peak RSS {}",
        out.record.duration_ms,
        elapsed,
        sent / 1024,
        peak_rss()
    );

    // An exact cap keeps a body of exactly that size whole.
    let d = deliverer_with("127.0.0.0/8", 11);
    r.set_reply(Reply::Json(200, serde_json::json!({"ok": true})));
    let out = d.attempt(&job(&r.url("/")), "w").await;
    let resp = out.record.response.unwrap();
    assert_eq!(
        (resp.body.as_str(), resp.body_truncated),
        (r#"{"ok":true}"#, false)
    );
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".into())
}

#[tokio::test]
async fn a_reset_is_a_connection_error() {
    let r = Receiver::start(Reply::Reset).await;
    let out = loopback().attempt(&job(&r.url("/")), "w").await;
    assert!(!out.success);
    assert_eq!(error(&out), "connection reset");
    assert_eq!(out.record.status_code, None);
    assert_eq!(r.count(), 1);

    r.set_reply(Reply::Close);
    let out = loopback().attempt(&job(&r.url("/")), "w").await;
    assert_eq!(error(&out), "connection closed before an answer came");
}

#[tokio::test]
async fn a_trickled_answer_is_read_within_the_deadline() {
    let r = Receiver::start(Reply::Trickle(Duration::from_millis(20), 10)).await;
    let mut j = job(&r.url("/"));
    j.request.timeout_secs = 2;
    let out = loopback().attempt(&j, "w").await;
    assert!(out.success, "{out:?}");
    assert_eq!(out.record.response.unwrap().body, "xxxxxxxxxx");
}

#[tokio::test]
async fn a_trickle_past_the_deadline_times_out_keeping_what_came() {
    let r = Receiver::start(Reply::Trickle(Duration::from_millis(100), 1000)).await;
    let mut j = job(&r.url("/"));
    j.request.timeout_secs = 1;
    let out = loopback().attempt(&j, "w").await;
    assert!(!out.success);
    assert_eq!(error(&out), "timed out after 1 s");
    // The headers had come: the record says so, with the part of the body that came.
    assert_eq!(out.record.status_code, Some(200));
    let resp = out.record.response.unwrap();
    assert!(resp.body_truncated);
    assert!(resp.body.len() < 20, "{} bytes", resp.body.len());
}

#[tokio::test]
async fn a_trickle_past_the_cap_stops_at_the_cap() {
    let r = Receiver::start(Reply::Trickle(Duration::from_millis(10), 100_000)).await;
    let d = deliverer_with("127.0.0.0/8", 5);
    let out = d.attempt(&job(&r.url("/")), "w").await;
    assert!(out.success, "{out:?}");
    let resp = out.record.response.unwrap();
    assert_eq!((resp.body.as_str(), resp.body_truncated), ("xxxxx", true));
    assert!(
        out.record.duration_ms < 2000,
        "{} ms",
        out.record.duration_ms
    );
}

#[tokio::test]
async fn retry_after_is_read_on_429_and_503_and_capped() {
    let r = Receiver::start(Reply::RetryAfter(429, 7)).await;
    let d = loopback();
    let out = d.attempt(&job(&r.url("/")), "w").await;
    assert!(!out.success);
    assert_eq!(error(&out), "HTTP 429 Too Many Requests");
    assert_eq!(out.retry_after, Some(Duration::from_secs(7)));

    let check = |reply: Reply, want: Option<Duration>| {
        r.set_reply(reply.clone());
        let d = &d;
        let url = r.url("/");
        async move {
            let out = d.attempt(&job(&url), "w").await;
            assert_eq!(out.retry_after, want, "{reply:?}");
        }
    };
    check(Reply::RetryAfter(503, 99_999), Some(MAX_RETRY_AFTER)).await;
    check(Reply::RetryAfter(503, 0), Some(Duration::ZERO)).await;
    check(Reply::RetryAfter(500, 5), None).await;
    check(Reply::RetryAfter(200, 5), None).await;
    let in_a_minute = (chrono::Utc::now() + chrono::Duration::seconds(62)).to_rfc2822();
    let got = {
        r.set_reply(Reply::Custom {
            status: 503,
            headers: vec![("Retry-After".into(), in_a_minute.replace("+0000", "GMT"))],
            body: String::new(),
        });
        d.attempt(&job(&r.url("/")), "w").await.retry_after
    };
    let secs = got.unwrap().as_secs();
    assert!((55..=62).contains(&secs), "{secs}");
}

#[tokio::test]
async fn connections_are_kept_alive_and_reused() {
    let r = Receiver::start(Reply::Status(200)).await;
    let d = loopback();
    for _ in 0..3 {
        assert!(d.attempt(&job(&r.url("/")), "w").await.success);
    }
    assert_eq!(r.count(), 3);
    assert_eq!(r.connections(), 1);
}

#[tokio::test]
async fn loopback_is_refused_by_default_without_connecting() {
    let r = Receiver::start(Reply::Status(200)).await;
    let d = default_policy();
    let out = d.attempt(&job(&r.url("/")), "w").await;
    assert!(!out.success);
    assert_eq!(
        error(&out),
        "target 127.0.0.1 is a loopback address; allow it with HOOKRELAY_ALLOWED_TARGETS"
    );
    assert_eq!(out.record.status_code, None);
    assert_eq!(out.record.response, None);

    // The same host by name goes through the resolver, which refuses what DNS returns.
    let out = d
        .attempt(&job(&format!("http://localhost:{}/", r.port())), "w")
        .await;
    assert_eq!(
        error(&out),
        "target 127.0.0.1 is a loopback address; allow it with HOOKRELAY_ALLOWED_TARGETS"
    );

    // Other spellings of loopback.
    for url in [
        format!("http://2130706433:{}/", r.port()),
        format!("http://[::ffff:127.0.0.1]:{}/", r.port()),
        format!("http://127.1:{}/", r.port()),
    ] {
        let out = d.attempt(&job(&url), "w").await;
        assert!(
            error(&out).ends_with("is a loopback address; allow it with HOOKRELAY_ALLOWED_TARGETS"),
            "{url}: {out:?}"
        );
    }
    assert_eq!(r.connections(), 0);
}

#[tokio::test]
async fn allowed_networks_go_through_by_address_and_by_name() {
    let r = Receiver::start(Reply::Status(200)).await;
    let d = deliverer_with("127.0.0.0/8", 1024);
    assert!(d.attempt(&job(&r.url("/")), "w").await.success);
    let by_name = format!("http://localhost:{}/", r.port());
    let out = d.attempt(&job(&by_name), "w").await;
    assert!(out.success, "{out:?}");
    assert_eq!(r.count(), 2);

    // 127.0.0.0/8 says nothing about ::1.
    let out = d
        .attempt(&job(&format!("http://[::1]:{}/", r.port())), "w")
        .await;
    assert_eq!(
        error(&out),
        "target ::1 is a loopback address; allow it with HOOKRELAY_ALLOWED_TARGETS"
    );
}

#[tokio::test]
async fn ipv6_loopback_is_refused_by_default() {
    let out = default_policy().attempt(&job("http://[::1]:9/"), "w").await;
    assert_eq!(
        error(&out),
        "target ::1 is a loopback address; allow it with HOOKRELAY_ALLOWED_TARGETS"
    );
}

#[tokio::test]
async fn cloud_metadata_is_refused_without_a_connection_attempt() {
    // 169.254.169.254 does not answer here: a connection attempt would hang until the
    // timeout, so a prompt answer shows none was made.
    let mut j = job("http://169.254.169.254/latest/meta-data/");
    j.request.timeout_secs = 5;
    for d in [default_policy(), loopback()] {
        let out = d.attempt(&j, "w").await;
        assert_eq!(
            error(&out),
            "target 169.254.169.254 is a link-local address; allow it with HOOKRELAY_ALLOWED_TARGETS"
        );
        assert!(
            out.record.duration_ms < 500,
            "{} ms",
            out.record.duration_ms
        );
        assert!(!out.success);
    }
}

#[tokio::test]
async fn unresolvable_names_and_bad_urls_get_clear_errors() {
    let d = loopback();
    let out = d.attempt(&job("http://no-such-host.invalid/"), "w").await;
    assert!(
        error(&out).starts_with("DNS lookup failed for no-such-host.invalid: "),
        "{out:?}"
    );

    let out = d.attempt(&job("ftp://example.com/"), "w").await;
    assert_eq!(
        error(&out),
        "unsupported URL scheme \"ftp\" (http or https only)"
    );
    let out = d.attempt(&job("not a url"), "w").await;
    assert_eq!(error(&out), "invalid URL: relative URL without a base");
}

#[tokio::test]
async fn https_to_a_plain_http_receiver_is_a_tls_error() {
    let r = Receiver::start(Reply::Status(200)).await;
    let url = format!("https://127.0.0.1:{}/", r.port());
    let out = loopback().attempt(&job(&url), "w").await;
    assert!(!out.success);
    assert!(error(&out).starts_with("TLS handshake failed: "), "{out:?}");
}

#[tokio::test]
async fn errors_never_show_secrets() {
    let mut j = job(&format!("{}?api_key=query-secret", refused_url("/")));
    j.request.token = Some("token-secret".into());
    j.request.headers = vec![("X-Api-Key".into(), "header-secret".into())];
    let out = loopback().attempt(&j, "w").await;
    let shown = format!("{out:?}");
    for secret in ["query-secret", "token-secret", "header-secret"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
}
