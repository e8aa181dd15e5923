//! A scripted HTTP receiver: a real HTTP/1.1 server on `127.0.0.1:0` that records every
//! request and answers as the test says, for testing delivery against the real network.
//!
//! ```no_run
//! # async fn demo() {
//! use std::time::Duration;
//! use hookrelay_testkit::receiver::{Receiver, Reply};
//!
//! let r = Receiver::start(Reply::Status(200)).await;
//! r.queue_replies([Reply::Status(500), Reply::Status(500)]); // first two fail, then 200
//! let url = r.url("/hook");
//! // … deliver to `url` …
//! let got = r.wait_for_requests(3, Duration::from_secs(5)).await;
//! assert_eq!(got[0].header("content-type"), Some("application/json"));
//! # }
//! ```
//!
//! Which reply a request gets: the next queued reply if any ([`Receiver::queue_replies`]),
//! else the reply set for its path ([`Receiver::set_path_reply`]), else the default
//! ([`Receiver::set_reply`]). Every request is recorded, whatever the reply, once its body
//! has been read and before the reply starts — so a request answered with [`Reply::Hang`]
//! or [`Reply::Reset`] is counted too.
//!
//! The server runs on tasks owned by the [`Receiver`]; dropping it stops them all, including
//! connections that hang.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinHandle, JoinSet};

/// How the receiver answers one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// This status, empty body.
    Status(u16),
    /// This status with this JSON body (`content-type: application/json`).
    Json(u16, serde_json::Value),
    /// This status, these headers (in order) and this body.
    Custom {
        /// Status code.
        status: u16,
        /// Response headers.
        headers: Vec<(String, String)>,
        /// Response body.
        body: String,
    },
    /// Waits this long, then answers this status with an empty body.
    Slow(Duration, u16),
    /// `302 Found` with this `Location`.
    Redirect(String),
    /// This status (429, 503…) with `Retry-After: <seconds>`.
    RetryAfter(u16, u64),
    /// Never answers; the connection stays open until the client gives up.
    Hang,
    /// Resets the connection (TCP RST) without answering.
    Reset,
    /// Closes the connection cleanly (FIN) without answering.
    Close,
    /// `200` with a body of this many bytes, with its `content-length`, made lazily 64 KiB
    /// at a time as the client reads (1 GB costs no memory here).
    HugeBody(u64),
    /// `200` with a body of this many bytes (with its `content-length`) sent one byte per
    /// this interval; the headers go out at once.
    Trickle(Duration, u64),
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method, e.g. `POST`.
    pub method: String,
    /// Path, without the query string.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers in the order received (names lower-case).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
    /// When its body had been read.
    pub at: Instant,
}

impl Recorded {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Header names in the order received.
    pub fn header_names(&self) -> Vec<&str> {
        self.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {}", self.text()))
    }
}

#[derive(Debug)]
struct Script {
    default: Reply,
    by_path: HashMap<String, Reply>,
    queued: VecDeque<Reply>,
}

impl Script {
    fn next(&mut self, path: &str) -> Reply {
        if let Some(r) = self.queued.pop_front() {
            return r;
        }
        self.by_path.get(path).unwrap_or(&self.default).clone()
    }
}

struct State {
    script: Mutex<Script>,
    requests: Mutex<Vec<Recorded>>,
    count: watch::Sender<usize>,
    connections: AtomicUsize,
    body_bytes_sent: AtomicU64,
}

/// Locks a mutex, ignoring poisoning: a panicking test thread must not hide the data.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running scripted receiver. Stops when dropped.
pub struct Receiver {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Receiver {
    /// Starts a receiver on `127.0.0.1:<free port>` answering every request with `default`.
    pub async fn start(default: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver on 127.0.0.1:0");
        let addr = listener.local_addr().expect("receiver address");
        let state = Arc::new(State {
            script: Mutex::new(Script {
                default,
                by_path: HashMap::new(),
                queued: VecDeque::new(),
            }),
            requests: Mutex::new(Vec::new()),
            count: watch::Sender::new(0),
            connections: AtomicUsize::new(0),
            body_bytes_sent: AtomicU64::new(0),
        });
        let task = tokio::spawn(accept_loop(listener, state.clone()));
        Self { addr, state, task }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port><path>`; `path` should start with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Changes the default reply.
    pub fn set_reply(&self, reply: Reply) {
        lock(&self.state.script).default = reply;
    }

    /// Sets the reply for one path (exact match, without query), overriding the default.
    pub fn set_path_reply(&self, path: &str, reply: Reply) {
        lock(&self.state.script)
            .by_path
            .insert(path.to_owned(), reply);
    }

    /// Queues replies for the next requests, whatever their path, in order; once used up,
    /// path replies and the default apply again. E.g. `[Status(500), Status(500)]` makes
    /// the next two requests fail.
    pub fn queue_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.state.script).queued.extend(replies);
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        lock(&self.state.requests).clone()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        *self.state.count.borrow()
    }

    /// How many TCP connections were accepted (to check keep-alive, or that a refused
    /// target was never even connected to).
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Body bytes handed to the network by [`Reply::HugeBody`] and [`Reply::Trickle`]
    /// answers so far: shows how much of a huge answer a client actually pulled.
    pub fn body_bytes_sent(&self) -> u64 {
        self.state.body_bytes_sent.load(Ordering::SeqCst)
    }

    /// Waits until at least `n` requests have arrived and returns all of them; panics after
    /// `timeout` saying how many came.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> Vec<Recorded> {
        let mut rx = self.state.count.subscribe();
        let reached = tokio::time::timeout(timeout, rx.wait_for(|c| *c >= n)).await;
        if !matches!(reached, Ok(Ok(_))) {
            panic!(
                "receiver got {} request(s) within {timeout:?}, wanted {n}",
                self.count()
            );
        }
        self.requests()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.task.abort();
    }
}

/// A URL on 127.0.0.1 where nothing listens, so connecting is refused: a port is bound and
/// released at once (another process taking it in between is unlikely enough for tests).
pub fn refused_url(path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", crate::free_port())
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    state.connections.fetch_add(1, Ordering::SeqCst);
                    conns.spawn(serve_connection(stream, state.clone()));
                }
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow without bound.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// How a handler asks its connection to end without an answer.
#[derive(Debug, PartialEq)]
enum Kill {
    Reset,
    Close,
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) {
    // A second handle on the same socket, kept out of hyper's hands, so that a Reset can set
    // SO_LINGER to zero (close sends RST) just before the connection is dropped.
    let Ok(std_stream) = stream.into_std() else {
        return;
    };
    let twin = std_stream.try_clone().and_then(TcpStream::from_std);
    let (Ok(stream), Ok(twin)) = (TcpStream::from_std(std_stream), twin) else {
        return;
    };
    let (kill_tx, mut kill_rx) = mpsc::unbounded_channel();
    let service =
        hyper::service::service_fn(move |req| handle(state.clone(), kill_tx.clone(), req));
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::select! {
        _ = conn => {}
        kill = kill_rx.recv() => {
            if kill == Some(Kill::Reset) {
                let _ = twin.set_zero_linger();
            }
        }
    }
}

type Body = BoxBody<Bytes, Infallible>;

/// 64 KiB of filler for huge answers, shared by every chunk.
static FILLER: [u8; 64 * 1024] = [b'x'; 64 * 1024];

async fn handle(
    state: Arc<State>,
    kill: mpsc::UnboundedSender<Kill>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
        at: Instant::now(),
    };
    lock(&state.requests).push(recorded);
    state.count.send_modify(|c| *c += 1);

    let reply = lock(&state.script).next(&path);
    let response = match reply {
        Reply::Status(code) => respond(code, Vec::new(), empty()),
        Reply::Json(code, value) => respond(
            code,
            vec![(
                CONTENT_TYPE.as_str().to_owned(),
                "application/json".to_owned(),
            )],
            full(serde_json::to_vec(&value).unwrap_or_default()),
        ),
        Reply::Custom {
            status,
            headers,
            body,
        } => respond(status, headers, full(body.into_bytes())),
        Reply::Slow(delay, code) => {
            tokio::time::sleep(delay).await;
            respond(code, Vec::new(), empty())
        }
        Reply::Redirect(location) => {
            respond(302, vec![(LOCATION.as_str().to_owned(), location)], empty())
        }
        Reply::RetryAfter(code, secs) => respond(
            code,
            vec![(RETRY_AFTER.as_str().to_owned(), secs.to_string())],
            empty(),
        ),
        Reply::Hang => return std::future::pending().await,
        Reply::Reset | Reply::Close => {
            let _ = kill.send(if reply == Reply::Reset {
                Kill::Reset
            } else {
                Kill::Close
            });
            // The connection task drops this future with the connection.
            return std::future::pending().await;
        }
        Reply::HugeBody(len) => sized(len, huge_body(state.clone(), len)),
        Reply::Trickle(interval, len) => sized(len, trickle_body(state.clone(), interval, len)),
    };
    Ok(response)
}

fn empty() -> Body {
    Empty::new().boxed()
}

fn full(bytes: Vec<u8>) -> Body {
    Full::new(Bytes::from(bytes)).boxed()
}

fn respond(code: u16, headers: Vec<(String, String)>, body: Body) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() =
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

/// A 200 whose streamed body declares its length up front.
fn sized(len: u64, body: Body) -> Response<Body> {
    let mut response = respond(200, Vec::new(), body);
    response
        .headers_mut()
        .insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

fn huge_body(state: Arc<State>, len: u64) -> Body {
    let chunks = futures::stream::unfold(len, move |left| {
        let state = state.clone();
        async move {
            if left == 0 {
                return None;
            }
            let take = left.min(FILLER.len() as u64);
            state.body_bytes_sent.fetch_add(take, Ordering::SeqCst);
            let chunk = Bytes::from_static(&FILLER[..take as usize]);
            Some((Ok(Frame::data(chunk)), left - take))
        }
    });
    StreamBody::new(chunks).boxed()
}

fn trickle_body(state: Arc<State>, interval: Duration, len: u64) -> Body {
    let bytes = futures::stream::unfold(len, move |left| {
        let state = state.clone();
        async move {
            if left == 0 {
                return None;
            }
            tokio::time::sleep(interval).await;
            state.body_bytes_sent.fetch_add(1, Ordering::SeqCst);
            Some((Ok(Frame::data(Bytes::from_static(b"x"))), left - 1))
        }
    });
    StreamBody::new(bytes).boxed()
}
