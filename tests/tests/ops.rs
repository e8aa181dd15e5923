//! The first hour of an operator, through the release binary against real redis-servers:
//! settings (unknown names, bad values named by their source, `hookrelay settings`, `--help`),
//! `hookrelay receive` seeing a signed delivery, start-up without Redis, metrics and the
//! deploy/ dashboard, the operator commands, `scripts/serve.sh`, and the compose file.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use hookrelay_testkit::receiver::{Receiver, Reply};
use hookrelay_tests::{Api, Env, RedisServer, binary, event, free_port, wait_until, webhook};
use serde_json::{Value, json};

const P: &str = "ops";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Runs `hookrelay <args>` to completion with exactly `vars` in its environment.
fn run(vars: &[(String, String)], args: &[&str]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run hookrelay")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A child process whose stdout and stderr go to files, killed when dropped.
struct Bg {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl Bg {
    fn start(program: &Path, args: &[&str], vars: &[(String, String)]) -> Self {
        let tag = format!("{}-{}", std::process::id(), free_port());
        let out = std::env::temp_dir().join(format!("hookrelay-ops-{tag}.out"));
        let err = std::env::temp_dir().join(format!("hookrelay-ops-{tag}.err"));
        let mut cmd = Command::new(program);
        cmd.args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", std::env::var("HOME").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        for (k, v) in vars {
            cmd.env(k, v);
        }
        Self {
            child: Some(cmd.spawn().expect("spawn")),
            out,
            err,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    async fn wait_stdout(&self, needle: &str, timeout: Duration) -> String {
        wait_until(timeout, &format!("{needle:?} on stdout"), || async {
            self.stdout().contains(needle)
        })
        .await;
        self.stdout()
    }

    /// SIGTERM, then the exit code (None if it had to be killed after `timeout`).
    async fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = hookrelay_tests::send_signal(c.id() as i32, "TERM");
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if tokio::time::Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Bg {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn http_status(url: &str) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.unwrap_or_default()))
}

async fn wait_http(url: &str, want: u16, timeout: Duration) -> String {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = http_status(url).await;
        match got {
            Some((s, body)) if s == want => return body,
            _ => assert!(
                tokio::time::Instant::now() < deadline,
                "no {want} from {url} within {timeout:?}; last: {got:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn vars(env: &Env) -> Vec<(String, String)> {
    env.vars.clone()
}

#[test]
fn a_typo_in_the_settings_file_stops_start_up_naming_the_key_and_the_closest_name() {
    let dir = std::env::temp_dir().join(format!("hookrelay-ops-cfg-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hookrelay.toml");
    std::fs::write(&file, "concurency = 8\n").unwrap();
    let out = run(&[], &["--config", file.to_str().unwrap(), "settings"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown setting `concurency`") && err.contains("did you mean `concurrency`?"),
        "{err}"
    );

    // A bad value in the file is named by its key and file, not by a variable.
    std::fs::write(&file, "concurrency = 0\n").unwrap();
    let out = run(&[], &["--config", file.to_str().unwrap(), "settings"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "concurrency in {}: must be 1 to 10000, got 0",
            file.display()
        )),
        "{err}"
    );
    assert!(!err.contains("HOOKRELAY_CONCURRENCY"), "{err}");

    // A fraction where a whole number is wanted, and a [section], are refused too.
    std::fs::write(&file, "concurrency = 1.5\n").unwrap();
    let out = run(&[], &["--config", file.to_str().unwrap(), "settings"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "concurrency in {}: must be an integer, got 1.5",
            file.display()
        )),
        "{err}"
    );
    std::fs::write(&file, "[retry]\nmax_attempts = 3\n").unwrap();
    let out = run(&[], &["--config", file.to_str().unwrap(), "settings"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown setting `retry` (settings are top-level")
            && err.contains("did you mean `retry_"),
        "{err}"
    );

    // The same through the environment is named by the variable, and beats the file.
    std::fs::write(&file, "concurrency = 12\n").unwrap();
    let env = [(
        "HOOKRELAY_ENDPOINT_CONCURRENCY".to_string(),
        "0".to_string(),
    )];
    let out = run(&env, &["--config", file.to_str().unwrap(), "settings"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("HOOKRELAY_ENDPOINT_CONCURRENCY: must be 1 to 1000, got 0"),
        "{}",
        text(&out.stderr)
    );
    let env = [("HOOKRELAY_CONCURRENCY".to_string(), "many".to_string())];
    let out = run(&env, &["--config", file.to_str().unwrap(), "settings"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("HOOKRELAY_CONCURRENCY: must be an integer"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn settings_prints_effective_values_masks_secrets_and_warns_about_unknown_variables() {
    let dir = std::env::temp_dir().join(format!("hookrelay-ops-cfg-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("hookrelay.toml");
    std::fs::write(&file, "concurrency = 12\nkey_prefix = \"filepfx\"\n").unwrap();
    let env: Vec<(String, String)> = [
        ("HOOKRELAY_API_TOKEN", "very-secret-token-42"),
        (
            "HOOKRELAY_REDIS_URL",
            "redis://:redis-pass-77@db.internal:6380/2",
        ),
        ("HOOKRELAY_KEY_PREFIX", "envpfx"),
        ("HOOKRELAY_RETRY_MAX_ATEMPTS", "5"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let out = run(&env, &["--config", file.to_str().unwrap(), "settings"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let err = text(&out.stderr);
    for secret in ["very-secret-token-42", "redis-pass-77"] {
        assert!(
            !table.contains(secret) && !err.contains(secret),
            "{secret} shown"
        );
    }
    let line = |var: &str| {
        table
            .lines()
            .find(|l| l.starts_with(&format!("{var} ")))
            .unwrap_or_else(|| panic!("{var} missing in {table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
    };
    assert_eq!(
        line("HOOKRELAY_REDIS_URL")[1..],
        ["redis://:***@db.internal:6380/2", "environment"]
    );
    assert_eq!(line("HOOKRELAY_API_TOKEN")[1..], ["***", "environment"]);
    assert_eq!(line("HOOKRELAY_KEY_PREFIX")[1..], ["envpfx", "environment"]);
    assert_eq!(
        line("HOOKRELAY_CONCURRENCY")[1..],
        ["12", file.to_str().unwrap()]
    );
    assert_eq!(
        line("HOOKRELAY_ENDPOINT_CONCURRENCY")[1..],
        ["64", "default"]
    );
    assert_eq!(
        line("HOOKRELAY_DISABLE_AFTER_SECS")[1..],
        ["432000", "default"]
    );
    assert!(
        err.contains("HOOKRELAY_RETRY_MAX_ATEMPTS is not a hookrelay setting")
            && err.contains("did you mean HOOKRELAY_RETRY_MAX_ATTEMPTS?"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn help_of_every_command_lists_its_settings_and_an_example() {
    let commands: &[(&[&str], &[&str])] = &[
        (
            &["serve"],
            &[
                "HOOKRELAY_API_TOKEN",
                "HOOKRELAY_ENDPOINT_CONCURRENCY",
                "HOOKRELAY_METRICS_LISTEN",
            ],
        ),
        (
            &["api"],
            &["HOOKRELAY_LISTEN", "HOOKRELAY_BODY_LIMIT_BYTES"],
        ),
        (
            &["worker"],
            &["HOOKRELAY_CONCURRENCY", "HOOKRELAY_DISABLE_AFTER_SECS"],
        ),
        (&["publish"], &["HOOKRELAY_REDIS_URL"]),
        (&["receive"], &["--secret", "Settings: none"]),
        (&["settings"], &["HOOKRELAY_LOG_FORMAT"]),
        (&["queue"], &["HOOKRELAY_REDIS_URL", "HOOKRELAY_KEY_PREFIX"]),
        (&["recover"], &["HOOKRELAY_REDIS_URL", "--since 2h"]),
        (&["deliveries"], &["HOOKRELAY_REDIS_URL"]),
        (&["webhooks"], &["HOOKRELAY_REDIS_URL"]),
        (&["deliveries", "get"], &["HOOKRELAY_REDIS_URL"]),
        (
            &["deliveries", "list"],
            &["HOOKRELAY_KEY_PREFIX", "--status failed"],
        ),
        (&["webhooks", "list"], &["HOOKRELAY_REDIS_URL"]),
    ];
    for (args, wanted) in commands {
        let mut a = args.to_vec();
        a.push("--help");
        let out = run(&[], &a);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        let help = text(&out.stdout);
        let example = help
            .split("Example:\n  ")
            .nth(1)
            .unwrap_or_else(|| panic!("{args:?} --help has no example: {help}"));
        assert!(
            example.contains(&format!("hookrelay {}", args.join(" ")))
                || example.contains(&format!("hookrelay --config hookrelay.toml {}", args[0])),
            "{args:?}: {example}"
        );
        for w in *wanted {
            assert!(help.contains(w), "{args:?} --help lacks {w}: {help}");
        }
    }
}

#[tokio::test]
async fn receive_prints_a_signed_delivery_and_verifies_it() {
    let redis = RedisServer::start();
    let serve = Env::new(&redis).spawn("serve").await;
    let api = Api::new(&serve.base);
    let secret = hookrelay_core::signing::generate_secret();
    let port = free_port();
    let port_s = port.to_string();
    let rx = Bg::start(
        &binary(),
        &["receive", "--port", &port_s, "--secret", &secret],
        &[],
    );
    rx.wait_stdout("listening on", Duration::from_secs(10))
        .await;
    let mut w = webhook(
        "local",
        &format!("http://127.0.0.1:{port}/hook"),
        "deploy_done",
    );
    w["signing_secret"] = json!(secret);
    w["token"] = json!("bearer-token-for-receiver");
    api.create_webhook(P, w).await;
    let ids = api
        .publish(P, event("deploy_done", json!({"request_id": "r-42"})))
        .await;
    assert_eq!(ids.len(), 1);
    api.wait_status(P, &ids[0], "succeeded", Duration::from_secs(20))
        .await;
    let out = rx
        .wait_stdout("signature: verified", Duration::from_secs(10))
        .await;
    assert!(out.contains("POST /hook"), "{out}");
    assert!(out.contains(&format!("webhook-id: {}", ids[0])), "{out}");
    assert!(
        out.contains("\"request_id\": \"r-42\""),
        "pretty body: {out}"
    );
    assert!(out.contains("authorization: Bearer ***"), "{out}");
    assert!(!out.contains("bearer-token-for-receiver") && !out.contains(&secret));

    // A receiver started with another secret refuses the same kind of delivery with a 401.
    let port2 = free_port();
    let port2_s = port2.to_string();
    let other = hookrelay_core::signing::generate_secret();
    let rx2 = Bg::start(
        &binary(),
        &[
            "receive", "--port", &port2_s, "--secret", &other, "--status", "202",
        ],
        &[],
    );
    rx2.wait_stdout("listening on", Duration::from_secs(10))
        .await;
    let mut w = webhook(
        "wrong",
        &format!("http://127.0.0.1:{port2}/x"),
        "deploy_done",
    );
    w["signing_secret"] = json!(secret);
    w["object_name"] = json!("d2");
    api.create_webhook(P, w).await;
    let mut e = event("deploy_done", json!({}));
    e["object_name"] = json!("d2");
    let ids = api.publish(P, e).await;
    let d = api
        .wait_status(P, &ids[0], "failed", Duration::from_secs(20))
        .await;
    assert_eq!(d["attempts"][0]["status_code"], 401, "{d}");
    let out = rx2
        .wait_stdout("signature: INVALID", Duration::from_secs(10))
        .await;
    assert!(out.contains("answered: 401"), "{out}");
}

#[tokio::test]
async fn receive_answers_the_status_asked_for() {
    let port = free_port();
    let port_s = port.to_string();
    let rx = Bg::start(
        &binary(),
        &["receive", "--port", &port_s, "--status", "503"],
        &[],
    );
    rx.wait_stdout("listening on", Duration::from_secs(10))
        .await;
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/any"))
        .body("not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let out = rx
        .wait_stdout("answered: 503", Duration::from_secs(5))
        .await;
    assert!(
        out.contains("not json") && out.contains("signature: not checked"),
        "{out}"
    );
}

#[tokio::test]
async fn without_redis_serve_listens_at_once_answers_503_then_recovers() {
    let mut redis = RedisServer::start();
    redis.kill();
    let env = Env::new(&redis);
    let port = free_port();
    let mut vars = vars(&env);
    vars.push(("HOOKRELAY_LISTEN".into(), format!("127.0.0.1:{port}")));
    let mut serve = Bg::start(&binary(), &["serve"], &vars);
    let base = format!("http://127.0.0.1:{port}");
    let health = wait_http(&format!("{base}/health"), 503, Duration::from_secs(10)).await;
    assert!(health.contains("redis unavailable"), "{health}");
    let api = Api::new(&base);
    let (status, body) = api.call("GET", "/projects/p/webhooks", None).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .starts_with("redis unavailable")
    );

    redis.restart();
    wait_http(&format!("{base}/health"), 200, Duration::from_secs(20)).await;
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(P, webhook("w", &rx.url("/w"), "e"))
        .await;
    let ids = api.publish(P, event("e", json!({}))).await;
    api.wait_status(P, &ids[0], "succeeded", Duration::from_secs(20))
        .await;
    assert_eq!(serve.terminate(Duration::from_secs(40)).await, Some(0));
}

#[tokio::test]
async fn sigterm_while_waiting_for_redis_exits_0() {
    let mut redis = RedisServer::start();
    redis.kill();
    for role in ["serve", "api", "worker"] {
        let port = free_port();
        let mut vars = vars(&Env::new(&redis));
        vars.push(("HOOKRELAY_LISTEN".into(), format!("127.0.0.1:{port}")));
        let mut p = Bg::start(&binary(), &[role], &vars);
        let p_ref = &p;
        wait_until(Duration::from_secs(10), "a redis warning", || async move {
            p_ref.stderr().contains("redis is not reachable yet")
        })
        .await;
        assert_eq!(
            p.terminate(Duration::from_secs(10)).await,
            Some(0),
            "{role}: {}",
            p.stderr()
        );
    }
}

/// Metric names a PromQL expression uses.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(pos) = expr[i..].find("hookrelay_") {
        let start = i + pos;
        let mut end = start;
        while end < bytes.len() && (bytes[end].is_ascii_alphanumeric() || bytes[end] == b'_') {
            end += 1;
        }
        names.insert(expr[start..end].to_owned());
        i = end;
    }
    names
}

/// Every `expr` in a Grafana dashboard.
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(s)) => out.push(s.clone()),
                    _ => dashboard_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

/// Sample names of an exposition (without labels).
fn exposed(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_queries_exists_after_a_real_delivery() {
    let redis = RedisServer::start();
    let metrics_port = free_port();
    let env = Env::new(&redis).set(
        "HOOKRELAY_METRICS_LISTEN",
        &format!("127.0.0.1:{metrics_port}"),
    );
    let serve = env.spawn("serve").await;
    let api = Api::new(&serve.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(P, webhook("w", &rx.url("/w"), "e"))
        .await;
    let ids = api.publish(P, event("e", json!({}))).await;
    api.wait_status(P, &ids[0], "succeeded", Duration::from_secs(20))
        .await;

    let page = wait_http(
        &format!("{}/metrics", serve.base),
        200,
        Duration::from_secs(5),
    )
    .await;
    let names = exposed(&page);
    let content_type = reqwest::get(format!("{}/metrics", serve.base))
        .await
        .unwrap()
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    assert_eq!(
        content_type.as_deref(),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("deploy/grafana/dashboards/hookrelay.json")).unwrap(),
    )
    .expect("dashboard is JSON");
    let mut exprs = Vec::new();
    dashboard_exprs(&dashboard, &mut exprs);
    assert!(exprs.len() >= 10, "{exprs:?}");
    let queried: BTreeSet<String> = exprs.iter().flat_map(|e| metric_names(e)).collect();
    let missing: Vec<&String> = queried.iter().filter(|n| !names.contains(*n)).collect();
    assert!(
        missing.is_empty(),
        "dashboard queries missing metrics {missing:?}; page:\n{page}"
    );
    assert!(
        page.contains("hookrelay_events_published_total 1\n"),
        "{page}"
    );
    assert!(
        page.contains("hookrelay_deliveries_enqueued_total 1\n"),
        "{page}"
    );
    assert!(page.contains("hookrelay_redis_up 1\n"), "{page}");
    // The same page on HOOKRELAY_METRICS_LISTEN.
    let own = wait_http(
        &format!("http://127.0.0.1:{metrics_port}/metrics"),
        200,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        own.contains("hookrelay_events_published_total 1\n"),
        "{own}"
    );

    // The scrape config is YAML that names the API and the workers' metrics port.
    let scrape: Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("deploy/prometheus.yml")).unwrap(),
    )
    .expect("deploy/prometheus.yml parses");
    let jobs: Vec<&str> = scrape["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["job_name"].as_str().unwrap())
        .collect();
    assert_eq!(jobs, ["hookrelay-api", "hookrelay-worker"]);
    assert_eq!(
        scrape["scrape_configs"][0]["static_configs"][0]["targets"][0],
        "api:8080"
    );
    assert_eq!(
        scrape["scrape_configs"][1]["dns_sd_configs"][0]["port"],
        9090
    );
}

#[tokio::test]
async fn a_worker_serves_its_own_metrics_only_when_asked() {
    let redis = RedisServer::start();
    let port = free_port();
    let env = Env::new(&redis).set("HOOKRELAY_METRICS_LISTEN", &format!("127.0.0.1:{port}"));
    let _worker = env.spawn("worker").await;
    let page = wait_http(
        &format!("http://127.0.0.1:{port}/metrics"),
        200,
        Duration::from_secs(10),
    )
    .await;
    for name in [
        "hookrelay_deliveries_total",
        "hookrelay_delivery_attempts_total",
        "hookrelay_retries_scheduled_total",
        "hookrelay_deferrals_total",
        "hookrelay_receiver_response_seconds_bucket",
        "hookrelay_publish_to_delivered_seconds_bucket",
    ] {
        assert!(exposed(&page).contains(name), "{name} missing:\n{page}");
    }
    // Off by default: a worker without the setting opens no port.
    let out = run(&vars(&Env::new(&redis)), &["settings"]);
    assert!(
        text(&out.stdout)
            .lines()
            .any(|l| l.starts_with("HOOKRELAY_METRICS_LISTEN") && l.contains("(empty)")),
        "{}",
        text(&out.stdout)
    );
}

#[tokio::test]
async fn operator_commands_show_the_queue_deliveries_webhooks_and_recover() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    // An API without a worker: what is published stays in the ready queue.
    let api_p = env.spawn("api").await;
    let api = Api::new(&api_p.base);
    let rx = Receiver::start(Reply::Status(500)).await;
    api.create_webhook(P, webhook("hook-1", &rx.url("/1"), "e"))
        .await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.extend(api.publish(P, event("e", json!({"n": 1}))).await);
    }
    let v = vars(&env);
    let out = run(&v, &["queue"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    let ready: Vec<&str> = table
        .lines()
        .find(|l| l.starts_with("ready"))
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(ready[1], "3", "{table}");
    let out = run(&v, &["queue", "--json"]);
    let stats: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(stats["ready"], 3);
    assert_eq!(stats["workers"], 0);

    let out = run(&v, &["webhooks", "list", "--project", P]);
    assert!(
        text(&out.stdout).contains("hook-1"),
        "{}",
        text(&out.stdout)
    );
    assert!(text(&out.stdout).contains(&rx.url("/1")));

    // A worker fails them all (500, no retry).
    let worker = env.spawn("worker").await;
    for id in &ids {
        api.wait_status(P, id, "failed", Duration::from_secs(20))
            .await;
    }
    let out = run(
        &v,
        &["deliveries", "list", "--project", P, "--status", "failed"],
    );
    let list = text(&out.stdout);
    assert_eq!(list.lines().count(), 4, "header and 3 rows: {list}");
    assert!(ids.iter().all(|id| list.contains(id.as_str())), "{list}");
    let out = run(&v, &["deliveries", "get", "--project", P, &ids[0]]);
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["status"], "failed");
    assert_eq!(d["attempts"][0]["status_code"], 500);
    let out = run(&v, &["deliveries", "get", "--project", P, "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not found"));

    // The receiver is fixed; recover the last hour.
    rx.set_reply(Reply::Status(200));
    let out = run(
        &v,
        &[
            "recover",
            "--project",
            P,
            "--webhook",
            "hook-1",
            "--since",
            "1h",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("requeued 3 failed deliveries of webhook hook-1"),
        "{}",
        text(&out.stdout)
    );
    for id in &ids {
        api.wait_status(P, id, "succeeded", Duration::from_secs(20))
            .await;
    }
    let out = run(
        &v,
        &[
            "recover",
            "--project",
            P,
            "--webhook",
            "nobody",
            "--since",
            "1h",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not found"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &v,
        &[
            "recover",
            "--project",
            P,
            "--webhook",
            "hook-1",
            "--since",
            "soon",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--since"),
        "{}",
        text(&out.stderr)
    );
    drop(worker);
}

#[tokio::test]
async fn serve_sh_names_the_redis_it_uses_and_warns_when_persistence_is_off() {
    // The test Redis runs without AOF or snapshots.
    let redis = RedisServer::start();
    let port = free_port();
    let mut v = vars(&Env::new(&redis));
    v.push(("HOOKRELAY_LISTEN".into(), format!("127.0.0.1:{port}")));
    // What cargo needs to find its toolchain and caches.
    for var in [
        "CARGO_HOME",
        "RUSTUP_HOME",
        "RUSTUP_TOOLCHAIN",
        "CARGO_TARGET_DIR",
    ] {
        if let Ok(value) = std::env::var(var) {
            v.push((var.into(), value));
        }
    }
    let mut p = Bg::start(&root().join("scripts/serve.sh"), &[], &v);
    wait_http(
        &format!("http://127.0.0.1:{port}/health"),
        200,
        Duration::from_secs(300),
    )
    .await;
    assert!(
        p.stdout()
            .contains(&format!("using the Redis that answers at {}", redis.url())),
        "{}",
        p.stdout()
    );
    assert!(p.stderr().contains("persistence OFF"), "{}", p.stderr());
    assert_eq!(p.terminate(Duration::from_secs(40)).await, Some(0));
}

#[test]
fn docker_compose_config_is_valid() {
    let has_compose = Command::new("docker")
        .args(["compose", "version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_compose {
        println!(
            "skipped: no docker CLI with the compose plugin on this machine; docker-compose.yml not checked"
        );
        return;
    }
    let out = Command::new("docker")
        .args(["compose", "--profile", "metrics", "config", "--quiet"])
        .env("HOOKRELAY_API_TOKEN", "compose-check-token")
        .current_dir(root())
        .output()
        .expect("docker compose config");
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[test]
fn dockerignore_and_dockerfile_cover_the_workspace() {
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    let lines: Vec<&str> = ignore.lines().map(str::trim).collect();
    assert!(lines.contains(&"**/target"), "{ignore}");
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("--locked"), "{dockerfile}");
    assert!(
        dockerfile.contains("strip target/release/hookrelay"),
        "{dockerfile}"
    );
    // The dependency layer is built from every member's manifest: a member missing there
    // would fail the image build.
    let manifest = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let members: Vec<&str> = manifest
        .split("members = [")
        .nth(1)
        .and_then(|rest| rest.split(']').next())
        .unwrap()
        .split(',')
        .map(|m| m.trim().trim_matches('"'))
        .filter(|m| !m.is_empty())
        .collect();
    assert!(members.len() >= 7, "{members:?}");
    for m in members {
        assert!(
            dockerfile.contains(&format!("COPY {m}/Cargo.toml {m}/")),
            "Dockerfile does not copy {m}/Cargo.toml"
        );
    }
}

#[tokio::test]
async fn the_publish_example_enqueues_without_the_api() {
    let redis = RedisServer::start();
    let env = Env::new(&redis);
    let serve = env.spawn("serve").await;
    let api = Api::new(&serve.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    api.create_webhook(P, webhook("from-rust", &rx.url("/r"), "built"))
        .await;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "run",
            "--quiet",
            "-p",
            "hookrelay-producer",
            "--example",
            "publish",
            "--",
            P,
            "built",
            "deployment",
            "d1",
        ])
        .current_dir(root())
        .env("HOOKRELAY_REDIS_URL", redis.url())
        .env("HOOKRELAY_KEY_PREFIX", "hr")
        .output()
        .expect("cargo run --example publish");
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let answer: Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    let ids = answer["deliveries"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "{stdout}");
    let id = ids[0].as_str().unwrap();
    assert!(stdout.contains(&format!("{id} ")), "{stdout}");
    api.wait_status(P, id, "succeeded", Duration::from_secs(20))
        .await;
    let got = rx.wait_for_requests(1, Duration::from_secs(5)).await;
    assert_eq!(got[0].json()["data"]["request_id"], "r-1");
}

/// The first fenced block of `lang` after `marker` in the README.
fn readme_block(marker: &str, lang: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let after = readme
        .split(marker)
        .nth(1)
        .unwrap_or_else(|| panic!("README has no {marker:?}"));
    let start = after
        .find(&format!("```{lang}\n"))
        .unwrap_or_else(|| panic!("no {lang} block after {marker:?}"));
    let body = &after[start + lang.len() + 4..];
    body[..body.find("```").unwrap()].to_owned()
}

#[tokio::test]
async fn the_readme_snippets_for_curl_and_python_work_as_written() {
    let redis = RedisServer::start();
    let serve = Env::new(&redis).spawn("serve").await;
    let api = Api::new(&serve.base);
    let rx = Receiver::start(Reply::Status(200)).await;
    let mut w = webhook("readme", &rx.url("/r"), "deployment_request_finished");
    w["object_name"] = json!("deployment-1");
    api.create_webhook("demo", w).await;
    let host = |code: String| code.replace("http://hookrelay:8080", &serve.base);

    let curl = host(readme_block(
        "Through the API, from a shell (`curl`):",
        "sh",
    ));
    let (publish, lookup) = curl.split_once("# →").unwrap();
    let run_sh = |script: &str| {
        let out = Command::new("bash")
            .args(["-euo", "pipefail", "-c", script])
            .env("HOOKRELAY_API_TOKEN", hookrelay_tests::TOKEN)
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}\n{}", text(&out.stderr));
        text(&out.stdout)
    };
    let answer: Value = serde_json::from_str(&run_sh(publish)).unwrap();
    assert_eq!(answer["id"], "evt-r-1", "{answer}");
    let id = answer["deliveries"][0].as_str().unwrap().to_owned();
    let lookup = lookup
        .split_once('\n')
        .map(|(_, rest)| rest)
        .unwrap()
        .replace("<delivery id>", &id);
    let d: Value = serde_json::from_str(&run_sh(&lookup)).unwrap();
    assert_eq!(d["id"], id.as_str(), "{d}");
    api.wait_status("demo", &id, "succeeded", Duration::from_secs(20))
        .await;

    // The Python snippet publishes the same event id: the same delivery, nothing new queued.
    let python = host(readme_block("From Python (`requests`):", "python"));
    let out = Command::new("python3")
        .args(["-c", &python])
        .env("HOOKRELAY_API_TOKEN", hookrelay_tests::TOKEN)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "succeeded");
    assert_eq!(rx.count(), 1, "the id made the second publish a duplicate");
}

/// The README quick start, run as written but on free ports, with the test's Redis and a
/// token given (so nothing is written under `.data/`): a signed delivery must show in
/// `hookrelay receive` within the first minute.
#[tokio::test]
async fn the_readme_quick_start_shows_a_signed_delivery_in_receive() {
    let redis = RedisServer::start();
    let block = readme_block("three terminals, each at the repository's root:", "sh");
    let parts: Vec<&str> = block.trim().split("\n\n").collect();
    assert_eq!(parts.len(), 3, "three terminals: {block}");
    let commands = |part: &str| -> Vec<String> {
        // Comment lines out; continued lines joined.
        part.replace("\\\n", " ")
            .lines()
            .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    };
    let (api_port, rx_port) = (free_port(), free_port());
    let dir = std::env::temp_dir().join(format!("hookrelay-ops-qs-{api_port}"));
    std::fs::create_dir_all(&dir).unwrap();
    let secret_file = dir.join("hook-secret");
    let bin = binary();
    let local = |c: &str| {
        c.replace("localhost:8080", &format!("127.0.0.1:{api_port}"))
            .replace("9000", &rx_port.to_string())
            .replace("/tmp/hook-secret", secret_file.to_str().unwrap())
            .replace("$(cat .data/api-token)", hookrelay_tests::TOKEN)
            .replace("hookrelay receive", &format!("{} receive", bin.display()))
            .replace("hookrelay publish", &format!("{} publish", bin.display()))
    };
    let mut vars = vec![
        ("HOOKRELAY_REDIS_URL".to_string(), redis.url()),
        (
            "HOOKRELAY_API_TOKEN".to_string(),
            hookrelay_tests::TOKEN.to_string(),
        ),
        (
            "HOOKRELAY_LISTEN".to_string(),
            format!("127.0.0.1:{api_port}"),
        ),
    ];
    for var in ["CARGO_HOME", "RUSTUP_HOME", "RUSTUP_TOOLCHAIN"] {
        if let Ok(value) = std::env::var(var) {
            vars.push((var.into(), value));
        }
    }
    let started = std::time::Instant::now();

    // Terminal 1.
    let serve_cmd = commands(parts[0]);
    assert_eq!(serve_cmd.len(), 1, "{serve_cmd:?}");
    let serve_script = format!(
        "cd {} && exec env {}",
        root().display(),
        local(&serve_cmd[0])
    );
    let mut serve = Bg::start(Path::new("bash"), &["-c", &serve_script], &vars);

    // Terminal 2.
    let rx_cmds = commands(parts[1]);
    assert_eq!(rx_cmds.len(), 2, "{rx_cmds:?}");
    let out = Command::new("bash")
        .args(["-c", &local(&rx_cmds[0])])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let receive = Bg::start(
        Path::new("bash"),
        &["-c", &format!("exec {}", local(&rx_cmds[1]))],
        &[],
    );
    receive
        .wait_stdout("listening on", Duration::from_secs(10))
        .await;
    wait_http(
        &format!("http://127.0.0.1:{api_port}/health"),
        200,
        Duration::from_secs(300),
    )
    .await;

    // Terminal 3.
    let script = commands(parts[2])
        .iter()
        .map(|c| local(c))
        .collect::<Vec<_>>()
        .join("\n");
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .envs(vars.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .unwrap();
    assert!(out.status.success(), "{script}\n{}", text(&out.stderr));
    let printed = text(&out.stdout);
    let answer: Value = serde_json::from_str(printed.lines().last().unwrap()).unwrap();
    let id = answer["deliveries"][0].as_str().unwrap().to_owned();

    let shown = receive
        .wait_stdout("signature: verified", Duration::from_secs(60))
        .await;
    assert!(shown.contains(&format!("webhook-id: {id}")), "{shown}");
    assert!(shown.contains("\"request_id\": \"r-1\""), "{shown}");
    println!(
        "README quick start: signed delivery shown {:?} after start (binary already built)",
        started.elapsed()
    );
    assert_eq!(serve.terminate(Duration::from_secs(40)).await, Some(0));
    let _ = std::fs::remove_dir_all(&dir);
}

/// What can be checked of docker-compose.yml without docker: every hookrelay service restarts
/// by itself, workers serve their metrics where deploy/prometheus.yml scrapes them, the
/// metrics services are behind a profile, and every file they mount exists.
#[test]
fn the_compose_file_wires_restarts_metrics_and_deploy_files() {
    let mut compose: serde_norway::Value = serde_norway::from_str(
        &std::fs::read_to_string(root().join("docker-compose.yml")).unwrap(),
    )
    .expect("docker-compose.yml is YAML");
    compose.apply_merge().expect("merge keys");
    let compose: Value = serde_json::to_value(&compose).unwrap();
    let services = compose["services"].as_object().unwrap();
    for name in ["redis", "api", "worker", "prometheus", "grafana"] {
        let s = &services[name];
        assert_eq!(s["restart"], "unless-stopped", "{name}: {s}");
    }
    assert_eq!(services["api"]["command"], json!(["api"]));
    assert_eq!(services["worker"]["command"], json!(["worker"]));
    assert_eq!(
        services["worker"]["environment"]["HOOKRELAY_METRICS_LISTEN"],
        "0.0.0.0:9090"
    );
    assert_eq!(
        services["api"]["environment"]["HOOKRELAY_LISTEN"],
        "0.0.0.0:8080"
    );
    for name in ["prometheus", "grafana"] {
        assert_eq!(services[name]["profiles"], json!(["metrics"]), "{name}");
        for volume in services[name]["volumes"].as_array().unwrap() {
            let host = volume.as_str().unwrap().split(':').next().unwrap();
            assert!(root().join(host).exists(), "{name} mounts missing {host}");
        }
    }
    let redis_cmd = services["redis"]["command"].to_string();
    assert!(redis_cmd.contains("appendonly") && redis_cmd.contains("noeviction"));
}
