//! The API description tells the truth: schemathesis (PyPI) runs against the release
//! binary and a real redis-server, generating requests from `GET /openapi.json`, and the
//! test fails on any server error, any answer that does not match the document (status,
//! content type, headers, body schema), and any request valid by the document that the
//! server refuses. Requests the document calls invalid may still be accepted (unknown fields
//! are ignored, `null` means "not given", URLs are checked by their scheme, host and target
//! policy rather than by the pattern that describes host names), so that check is left out.
//!
//! Needs `st` (schemathesis) on PATH; `scripts/test.sh` installs it. Bounded in time:
//! about a minute of generation.
//!
//! ```sh
//! cargo test -p hookrelay-tests --test openapi -- --nocapture
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use hookrelay_tests::{Env, RedisServer, TOKEN};

/// Seconds of generation; the run as a whole is cut at three times this.
const MAX_TIME_SECS: u64 = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing() {
    let redis = RedisServer::start();
    // Loopback allowed as a target, as in every test; warnings only, the run is long.
    let api = Env::new(&redis).set("RUST_LOG", "warn").spawn("api").await;
    let run = tokio::process::Command::new("st")
        .args([
            "--no-color",
            "run",
            &format!("{}/openapi.json", api.base),
            "--url",
            &format!("{}/v2.1", api.base),
            "-H",
            &format!("Authorization: Token {TOKEN}"),
            "--checks",
            "all",
            "--exclude-checks",
            "negative_data_rejection",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-time",
            &MAX_TIME_SECS.to_string(),
            // Several workers trip a CPython 3.11 bug in hypothesis' lambda printing.
            "--workers",
            "1",
            "--max-failures",
            "20",
            "--generation-database",
            "none",
        ])
        // Its crash cache goes to a scratch directory, not into the repository.
        .current_dir(std::env::temp_dir())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(3 * MAX_TIME_SECS + 60), run)
        .await
        .expect("schemathesis did not finish in time")
        .expect("schemathesis must be installed: pip install schemathesis (scripts/test.sh does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.contains("SUMMARY"))
        .collect();
    println!("{}", summary.join("\n"));
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(" passed"), "{stdout}");
}
