//! Test support: a real redis-server and the real router served on 127.0.0.1:0, and a small
//! JSON client over reqwest.

#![allow(dead_code, clippy::unwrap_used)]

use hookrelay_core::Keys;
use hookrelay_core::target::TargetPolicy;
use hookrelay_producer::{ApiSettings, AppState, app};
use hookrelay_queue::Queue;
use hookrelay_testkit::RedisServer;
use reqwest::Method;
use serde_json::Value;

/// The API token of every test server.
pub const TOKEN: &str = "test-token-0123456789";
/// The key prefix of every test server.
pub const PREFIX: &str = "hookrelay";

/// A running API over its own redis-server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub redis: RedisServer,
    pub queue: Queue,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An answer: status and parsed JSON (`Value::Null` for an empty body, the text as a string
/// when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Answer {
    /// The `error` message of an error answer.
    pub fn error(&self) -> &str {
        self.body["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field in {} {}", self.status, self.text))
    }
}

/// Starts a server with the default settings (body limit 1 MiB, default target policy).
pub async fn start() -> Server {
    start_with(|_| {}).await
}

/// Starts a server whose settings `tweak` adjusts.
pub async fn start_with(tweak: impl FnOnce(&mut ApiSettings)) -> Server {
    let redis = RedisServer::start();
    let queue = Queue::connect(&redis.url(), Keys::new(PREFIX))
        .await
        .unwrap();
    let mut settings = ApiSettings::new(TOKEN);
    settings.policy = TargetPolicy::default();
    tweak(&mut settings);
    let state = AppState::new(queue.clone(), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app(state)).await.unwrap();
    });
    Server {
        base: format!("http://{addr}"),
        redis,
        queue,
        client: reqwest::Client::new(),
        task,
    }
}

impl Server {
    /// Every job waiting in an endpoint queue, decoded.
    #[allow(dead_code)]
    pub fn ready_jobs(&self) -> Vec<hookrelay_core::Job> {
        let mut conn = self.redis();
        let pattern = Keys::new(PREFIX).partition(0).endpoint("*").ready;
        let lists: Vec<String> = redis::cmd("KEYS").arg(pattern).query(&mut conn).unwrap();
        let mut jobs = Vec::new();
        for list in lists {
            let raw: Vec<String> = redis::cmd("LRANGE")
                .arg(list)
                .arg(0)
                .arg(-1)
                .query(&mut conn)
                .unwrap();
            jobs.extend(
                raw.iter()
                    .map(|r| hookrelay_core::Job::decode(r.as_bytes()).unwrap()),
            );
        }
        jobs
    }

    /// Sends a request with the right token and an optional JSON body.
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Authorization", format!("Token {TOKEN}"));
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(serde_json::to_vec(&b).unwrap());
        }
        answer(req.send().await.unwrap()).await
    }

    /// Sends raw bytes with the given Authorization header (none when `None`).
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        auth: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        answer(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> Answer {
        self.call(Method::PATCH, path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.call(Method::DELETE, path, None).await
    }

    /// Creates a webhook in project `p`, asserting a 201; returns the answer body.
    pub async fn create_webhook(&self, body: Value) -> Value {
        let a = self.post("/v2.1/projects/p/webhooks", body).await;
        assert_eq!(a.status, 201, "{}", a.text);
        a.body
    }

    /// A blocking Redis connection for assertions on what is stored.
    pub fn redis(&self) -> redis::Connection {
        self.redis.connection()
    }
}

async fn answer(resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text.clone()))
    };
    Answer {
        status,
        body,
        text,
        headers,
    }
}

/// A minimal valid webhook body named `name`.
pub fn webhook(name: &str) -> Value {
    serde_json::json!({
        "name": name,
        "url": "https://hooks.example.com/in",
        "object_type": "deployment",
        "object_name": "deployment-1",
        "event": "deployment_request_finished",
    })
}
