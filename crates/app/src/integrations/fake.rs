//! A scripted HTTP fake for client tests: answers queued responses in order
//! (then a default) and records every request it saw. Bound to 127.0.0.1.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One scripted answer.
#[derive(Debug, Clone)]
pub(super) struct Reply {
    /// Status.
    pub(super) status: StatusCode,
    /// Extra headers.
    pub(super) headers: Vec<(&'static str, String)>,
    /// Body.
    pub(super) body: String,
    /// Delay before answering.
    pub(super) delay: Duration,
}

impl Reply {
    /// A JSON answer.
    pub(super) fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("valid status"),
            headers: vec![("content-type", "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
        }
    }

    /// A text answer.
    pub(super) fn text(status: u16, body: &str) -> Reply {
        Reply {
            status: StatusCode::from_u16(status).expect("valid status"),
            headers: vec![],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// Adds a header.
    pub(super) fn header(mut self, k: &'static str, v: &str) -> Reply {
        self.headers.push((k, v.into()));
        self
    }

    /// Answers after `d`.
    pub(super) fn delayed(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

/// A request the fake received.
#[derive(Debug, Clone)]
pub(super) struct Seen {
    /// Method.
    pub(super) method: Method,
    /// Path and query.
    pub(super) uri: String,
    /// Headers.
    pub(super) headers: HeaderMap,
    /// Body.
    pub(super) body: Bytes,
}

#[derive(Default)]
struct Inner {
    queue: VecDeque<Reply>,
    seen: Vec<Seen>,
}

/// The fake server.
#[derive(Clone)]
pub(super) struct Fake {
    inner: Arc<Mutex<Inner>>,
    /// `http://127.0.0.1:PORT`.
    pub(super) base: String,
}

async fn answer(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut g = inner.lock().expect("fake lock");
        g.seen.push(Seen { method, uri: uri.to_string(), headers, body });
        g.queue.pop_front()
    };
    let reply = reply.unwrap_or_else(|| Reply::text(599, "no scripted reply left"));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut resp = (reply.status, reply.body).into_response();
    for (k, v) in reply.headers {
        resp.headers_mut().insert(k, v.parse().expect("valid header value"));
    }
    resp
}

impl Fake {
    /// Starts a fake that answers `replies` in order.
    pub(super) async fn start(replies: Vec<Reply>) -> Fake {
        let inner = Arc::new(Mutex::new(Inner { queue: replies.into(), seen: vec![] }));
        let app = axum::Router::new().fallback(answer).with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Fake { inner, base }
    }

    /// Requests seen so far.
    pub(super) fn seen(&self) -> Vec<Seen> {
        self.inner.lock().expect("fake lock").seen.clone()
    }
}
