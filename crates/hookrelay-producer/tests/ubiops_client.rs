//! The official UbiOps Python client against the real router and a real Redis: runs
//! `tests/python/ubiops_client.py` (every call of the UbiOps webhooks API), then checks in
//! Redis what the client cannot see — the protected header kept its value through the
//! rename and the PATCHes that sent it back as `None`.
//!
//! Needs `python3` with `pip install ubiops`; the test fails, with the script's output, when
//! the script does.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{PREFIX, TOKEN, start};
use hookrelay_core::{Keys, Webhook};
use redis::Commands;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_ubiops_client_works() {
    let s = start().await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/python/ubiops_client.py")
        .canonicalize()
        .unwrap();
    let run = tokio::process::Command::new("python3")
        .arg(&script)
        .env("HOOKRELAY_URL", format!("{}/v2.1", s.base))
        .env("HOOKRELAY_TOKEN", TOKEN)
        .env("HOOKRELAY_PROJECT", "ubiops-client")
        .env("HOOKRELAY_EXPECT_TEST_STATUS", "pending")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the UbiOps client script did not finish within 120 s")
        .expect("python3 must be on PATH");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        script.display(),
        output.status
    );
    assert!(stdout.contains("checks passed"), "{stdout}");
    println!("{stdout}");

    let mut conn = s.redis();
    let raw: String = conn
        .hget(
            Keys::new(PREFIX).webhooks("ubiops-client"),
            "webhook-renamed",
        )
        .unwrap();
    let stored: Webhook = serde_json::from_str(&raw).unwrap();
    assert_eq!(stored.headers.len(), 2);
    assert_eq!(stored.headers[0].key, "Authorization");
    assert_eq!(stored.headers[0].value, "Token 123");
    assert!(stored.headers[0].protected);
    assert_eq!(stored.headers[1].value, "b");
    assert!(!stored.enabled);
}
