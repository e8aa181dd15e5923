//! The web console in a real browser: Debian's `chromium`, driven by `playwright-core`
//! (`tests/browser/console.mjs`), against the release binary, a real redis-server and real
//! receivers (one answering 200, one 500, one rejecting with 422, one that never answers).
//! The script signs in, creates, edits, tests, disables and deletes webhooks, follows a
//! delivery and redelivers it, watches an endpoint's circuit open in the overview, checks
//! the layout at 375 and 420 px, signs in again with a viewer token (which is shown its role
//! and offered no control that changes anything, neither on screen nor by the keyboard, where
//! the admin was offered them all), and saves a screenshot of each page in
//! `target/screenshots/` (`docs/screenshots/`, which the README shows, with
//! `HOOKRELAY_UPDATE_SCREENSHOTS=1`). Any failed step or browser console error fails it.
//!
//! Needs `chromium` (Debian: `apt-get install chromium`), Node.js 20+ and the npm packages
//! of `tests/browser` (`cd tests/browser && npm ci`); without them it fails, saying so.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_tests::{Api, Env, RedisServer, TOKEN, event, webhook};
use serde_json::json;

const P: &str = "demo";
/// The browser run's budget; it takes about a minute.
const BROWSER_TIMEOUT: Duration = Duration::from_secs(150);

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The browser, `node` and the npm packages, or a message saying how to install them.
fn prerequisites(browser_dir: &Path) -> String {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let mut missing = Vec::new();
    if !Path::new(&chromium).exists() {
        missing.push(format!(
            "{chromium} is missing: install Debian's browser with `apt-get install chromium` \
             (or set CHROMIUM to another Chromium binary)"
        ));
    }
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|s| s.success()) {
        missing.push(
            "node is missing: install Node.js 20 or newer (`apt-get install nodejs npm`)".into(),
        );
    }
    if !browser_dir.join("node_modules/playwright-core").is_dir() {
        missing.push(format!(
            "the npm packages are missing: run `npm ci` in {}",
            browser_dir.display()
        ));
    }
    assert!(
        missing.is_empty(),
        "the browser test cannot run:\n  {}\n(.ci/run installs all of these)",
        missing.join("\n  ")
    );
    chromium
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_a_real_browser() {
    let browser_dir = root().join("tests/browser");
    let chromium = prerequisites(&browser_dir);

    let redis = RedisServer::start();
    let server = Env::new(&redis).spawn("serve").await;
    let api = Api::new(&server.base);
    let ok = Receiver::start(Reply::Json(200, json!({"received": true}))).await;
    let fail = Receiver::start(Reply::Json(500, json!({"error": "database is down"}))).await;
    let reject = Receiver::start(Reply::Json(422, json!({"error": "unknown sku"}))).await;
    let hang = Receiver::start(Reply::Hang).await;

    // Something for the overview to show: deliveries that succeed, are retried and fail,
    // and an endpoint that never answers, whose circuit opens after five timeouts.
    api.create_webhook(
        P,
        webhook("inventory", &ok.url("/inventory"), "stock_changed"),
    )
    .await;
    let mut reports = webhook("reports", &reject.url("/reports"), "stock_changed");
    reports["retry"] = json!(true);
    api.create_webhook(P, reports).await;
    let hanging = "legacy-crm";
    let mut slow = webhook(hanging, &hang.url("/crm"), "stock_changed");
    slow["timeout"] = json!(1);
    api.create_webhook(P, slow).await;
    for i in 0..6 {
        api.publish(
            P,
            event("stock_changed", json!({"sku": format!("sku-{i}")})),
        )
        .await;
    }

    let (status, viewer) = api
        .call(
            "POST",
            &format!("/projects/{P}/tokens"),
            Some(json!({"name": "dashboard", "role": "viewer"})),
        )
        .await;
    assert_eq!(status, 201, "viewer token: {viewer}");
    let viewer = viewer["token"].as_str().unwrap().to_owned();

    // Every run saves its screenshots under target/; the README's copies in docs/screenshots
    // are refreshed on purpose, with HOOKRELAY_UPDATE_SCREENSHOTS=1.
    let shots = if std::env::var_os("HOOKRELAY_UPDATE_SCREENSHOTS").is_some() {
        root().join("docs/screenshots")
    } else {
        root().join("target/screenshots")
    };
    std::fs::create_dir_all(&shots).expect("screenshot directory");
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg("console.mjs")
        .current_dir(&browser_dir)
        .env("HOOKRELAY_BASE", &server.base)
        .env("HOOKRELAY_ADMIN", TOKEN)
        .env("HOOKRELAY_VIEWER", &viewer)
        .env("RECEIVER_OK", ok.url("/hook"))
        .env("RECEIVER_FAIL", fail.url("/hook"))
        .env("HANGING_WEBHOOK", hanging)
        .env("SCREENSHOTS", &shots)
        .env("CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    // Read the output on threads so that a full pipe never stalls the script.
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = pipe.read_to_string(&mut s);
            s
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > BROWSER_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    println!("{out}");
    eprintln!("{err}");
    let status = status.unwrap_or_else(|| {
        panic!("the browser run took more than {BROWSER_TIMEOUT:?}:\n{out}\n{err}")
    });
    if !status.success() {
        let log = server.logs();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        panic!(
            "the browser run failed ({status}): its steps and what went wrong are above\n\
             end of the server log:\n{}",
            tail.join("\n")
        );
    }
    assert!(
        !server.logs().contains(TOKEN) && !server.logs().contains(&viewer),
        "a token reached the server log"
    );
}
