//! The live feed: a Socket.IO server (protocol v5, `socketioxide`) at
//! `/socket.io/`, beside the HTTP API on the same listener.
//!
//! - **Auth at connect**: the handshake's `auth: { token }` must be an API
//!   token; otherwise the connection is refused (`connect_error`,
//!   "unauthorized").
//! - **Streams and rooms**: `dashboard`, `call:{call_id}`,
//!   `campaign:{campaign_id}`. A client that has subscribed to nothing is in
//!   `dashboard`; `subscribe` (`{room, after?}`, acknowledged) joins a room
//!   and `unsubscribe` leaves it.
//! - **Events** (`event`): `{stream, seq, kind, at, data}` with kinds
//!   `call.updated` (status changes and merged fields: to the call, its
//!   campaign and the dashboard), `dashboard.tick` (rollups rebuilt: refetch
//!   the figures).
//! - **Gap-free resume**: `seq` grows by one per stream. A client that
//!   reconnects passes `auth.after = {"dashboard": <last seq>}` and receives
//!   the events it missed, in order, before any live one (joining and
//!   publishing take the stream's lock, so nothing slips between the replay
//!   and the join); for other rooms it subscribes with `after`, and gets the
//!   missed events (possibly after live ones it already had: reassemble by
//!   `seq`), never one twice. If they are older than the stream's buffer
//!   ([`BUFFER`] events) — or this instance restarted, which resets the
//!   sequences — the answer says `refetch: true` and the client reloads from
//!   the API.
//!
//! Sources: every write that merges a call goes through the store decorator
//! [`crate::cache::Evicting`], which publishes here (webhooks, dialer,
//! reconciler alike); the rollup job's rebuilds publish `dashboard.tick`.
//!
//! Limits (issue 11 is open): one instance — the sequences and buffers live
//! in this process, so clients of several instances need sticky sessions;
//! the Redis adapter and MongoDB change streams as sources are not built.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use socketioxide::SocketIo;
use socketioxide::extract::{AckSender, Data, SocketRef, State, TryData};
use socketioxide::handler::ConnectHandler;
use socketioxide::layer::SocketIoLayer;
use switchboard_domain::time::now_ms;
use switchboard_domain::{Call, CallId, CampaignId};

use subtle::ConstantTimeEq;

use crate::config::Secret;

/// One event of one stream.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LiveEvent {
    /// `dashboard`, `call:{id}` or `campaign:{id}`.
    pub stream: String,
    /// Position in the stream (1, 2, …).
    pub seq: u64,
    /// `call.updated`, `dashboard.tick`.
    pub kind: String,
    /// When published.
    pub at: DateTime<Utc>,
    /// The payload.
    pub data: Value,
}

/// Events kept per stream for resumes.
pub const BUFFER: usize = 1000;

#[derive(Default)]
struct Stream {
    seq: u64,
    log: VecDeque<LiveEvent>,
}

struct Inner {
    /// The server of the current router (replaced if a router is built again).
    io: RwLock<Option<SocketIo>>,
    streams: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Stream>>>>,
    buffer: usize,
}

/// The feed every writer publishes to.
#[derive(Clone)]
pub struct LiveFeed {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Tokens(Arc<Vec<Secret>>);

#[derive(Debug)]
struct Unauthorized;

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("unauthorized: pass an API token as auth.token")
    }
}

impl std::error::Error for Unauthorized {}

/// What `subscribe` asks for.
#[derive(Debug, Deserialize)]
struct Subscribe {
    room: String,
    #[serde(default)]
    after: Option<u64>,
}

/// The acknowledgement of `subscribe`.
#[derive(Debug, Serialize)]
struct Subscribed {
    room: String,
    ok: bool,
    /// The stream's sequence now (the last event sent to this client).
    seq: u64,
    /// Events replayed before this acknowledgement.
    replayed: usize,
    /// The missed events are gone (too old, or the instance restarted): reload from the API.
    refetch: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// A room name a client may join.
fn valid_room(room: &str) -> bool {
    room == "dashboard"
        || room.strip_prefix("call:").is_some_and(|id| CallId::parse(id).is_ok())
        || room.strip_prefix("campaign:").is_some_and(|id| CampaignId::parse(id).is_ok())
}

impl LiveFeed {
    /// A feed keeping the last `buffer` events of each stream for resumes.
    pub fn new(buffer: usize) -> LiveFeed {
        LiveFeed {
            inner: Arc::new(Inner {
                io: RwLock::new(None),
                streams: std::sync::Mutex::new(HashMap::new()),
                buffer: buffer.max(1),
            }),
        }
    }

    fn stream(&self, name: &str) -> Arc<tokio::sync::Mutex<Stream>> {
        self.inner.streams.lock().expect("live streams").entry(name.to_owned()).or_default().clone()
    }

    /// The Socket.IO layer (mounted on the HTTP router), accepting `tokens`.
    pub fn layer(&self, tokens: Arc<Vec<Secret>>) -> SocketIoLayer {
        let (layer, io) = SocketIo::builder().with_state(Tokens(tokens)).with_state(self.clone()).build_layer();
        io.ns("/", on_connect.with(authenticate));
        *self.inner.io.write().expect("live io") = Some(io);
        layer
    }

    /// Publishes one event to a stream (and its room).
    pub async fn publish(&self, stream: &str, kind: &str, data: Value) {
        let st = self.stream(stream);
        let mut g = st.lock().await;
        g.seq += 1;
        let ev = LiveEvent { stream: stream.to_owned(), seq: g.seq, kind: kind.to_owned(), at: now_ms(), data };
        g.log.push_back(ev.clone());
        while g.log.len() > self.inner.buffer {
            g.log.pop_front();
        }
        let io = self.inner.io.read().expect("live io").clone();
        if let Some(io) = io
            && let Err(e) = io.to(stream.to_owned()).emit("event", &ev).await
        {
            tracing::debug!(stream, error = %e, "live emit failed");
        }
    }

    /// A call changed: to its stream, its campaign's and the dashboard.
    pub async fn call_updated(&self, call: &Call) {
        let data = json!({
            "id": call.id,
            "status": call.status,
            "campaign_id": call.campaign_id,
            "agent_id": call.agent_id,
            "to": call.to,
            "answered_by": call.answered_by,
            "duration_secs": call.duration_secs,
            "call_successful": call.call_successful,
            "conversation_id": call.conversation_id,
            "updated_at": call.updated_at,
            "version": call.version,
        });
        self.publish(&format!("call:{}", call.id), "call.updated", data.clone()).await;
        if let Some(c) = &call.campaign_id {
            self.publish(&format!("campaign:{c}"), "call.updated", data.clone()).await;
        }
        self.publish("dashboard", "call.updated", data).await;
    }

    /// Rollups were rebuilt: dashboards refetch their figures.
    pub async fn dashboard_tick(&self) {
        self.publish("dashboard", "dashboard.tick", json!({})).await;
    }

    /// Joins `room` (if this socket is not in it yet) and sends what the
    /// client missed after `after`, without sending anything twice.
    ///
    /// Per socket and stream the feed remembers `covered`: the socket has
    /// (or will get live) every event after it. Joining under the stream's
    /// lock at sequence `J` makes `covered = J` (every later event is
    /// broadcast to the room after the join). A resume with `after < covered`
    /// replays `(after, covered]` and lowers `covered` to `after`; a resume
    /// at or above it sends nothing.
    async fn subscribe(&self, s: &SocketRef, room: &str, after: Option<u64>) -> Subscribed {
        let st = self.stream(room);
        let g = st.lock().await;
        let covered = s.extensions.get::<Covered>().unwrap_or_default();
        let mut map = covered.0.lock().expect("covered map");
        let c = match map.get(room) {
            Some(c) => *c,
            None => {
                s.join(room.to_owned());
                g.seq
            }
        };
        let mut out =
            Subscribed { room: room.to_owned(), ok: true, seq: g.seq, replayed: 0, refetch: false, error: None };
        let mut now_covered = c;
        if let Some(last) = after
            && last < c
        {
            let oldest = g.log.front().map_or(g.seq + 1, |e| e.seq);
            if last + 1 < oldest {
                out.refetch = true;
            } else {
                for e in g.log.iter().filter(|e| e.seq > last && e.seq <= c) {
                    if s.emit("event", e).is_ok() {
                        out.replayed += 1;
                    }
                }
                now_covered = last;
            }
        }
        if after.is_some_and(|last| last > g.seq) {
            // A sequence this instance never issued: it restarted (sequences restart at 1).
            out.refetch = true;
        }
        map.insert(room.to_owned(), now_covered);
        drop(map);
        s.extensions.insert(covered);
        out
    }
}

/// Per socket: stream → every event after this one is (or will be) delivered.
#[derive(Clone, Default)]
struct Covered(Arc<std::sync::Mutex<HashMap<String, u64>>>);

async fn authenticate(TryData(auth): TryData<Value>, State(Tokens(tokens)): State<Tokens>) -> Result<(), Unauthorized> {
    let given = auth.ok().and_then(|a| a.get("token").and_then(|t| t.as_str()).map(str::to_owned));
    match given {
        Some(t) if tokens.iter().fold(false, |acc, s| acc | bool::from(s.expose().as_bytes().ct_eq(t.as_bytes()))) => {
            Ok(())
        }
        _ => Err(Unauthorized),
    }
}

async fn on_connect(s: SocketRef, TryData(auth): TryData<Value>, State(feed): State<LiveFeed>) {
    // Subscribed to nothing yet: the dashboard. A reconnecting client passes
    // `auth.after = {"dashboard": <last seq>}` and gets what it missed first,
    // in order, before any live event (the result comes as `subscribed`).
    let after = auth.ok().and_then(|a| a.get("after").and_then(|m| m.get("dashboard")).and_then(Value::as_u64));
    let out = feed.subscribe(&s, "dashboard", after).await;
    if after.is_some() {
        let _ = s.emit("subscribed", &out);
    }
    s.on(
        "subscribe",
        async |s: SocketRef, Data(req): Data<Subscribe>, ack: AckSender, State(feed): State<LiveFeed>| {
            let out = if valid_room(&req.room) {
                if req.room != "dashboard" && !s.extensions.get::<Explicit>().is_some_and(|e| e.0) {
                    s.leave("dashboard");
                    if let Some(c) = s.extensions.get::<Covered>() {
                        c.0.lock().expect("covered map").remove("dashboard");
                    }
                }
                if req.room == "dashboard" {
                    s.extensions.insert(Explicit(true));
                }
                feed.subscribe(&s, &req.room, req.after).await
            } else {
                Subscribed {
                    room: req.room.clone(),
                    ok: false,
                    seq: 0,
                    replayed: 0,
                    refetch: false,
                    error: Some("room must be dashboard, call:{call_id} or campaign:{campaign_id}".into()),
                }
            };
            let _ = ack.send(&out);
        },
    );
    s.on("unsubscribe", async |s: SocketRef, Data(room): Data<String>| {
        if let Some(c) = s.extensions.get::<Covered>() {
            c.0.lock().expect("covered map").remove(&room);
        }
        s.leave(room);
    });
}

/// The client subscribed to `dashboard` itself (so joining another room keeps it).
#[derive(Clone)]
struct Explicit(bool);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rooms_are_validated() {
        assert!(valid_room("dashboard"));
        assert!(valid_room(&format!("call:{}", CallId::new())));
        assert!(valid_room(&format!("campaign:{}", CampaignId::new())));
        assert!(!valid_room("call:nope"));
        assert!(!valid_room("admin"));
    }

    #[tokio::test]
    async fn sequences_grow_per_stream_and_the_buffer_is_bounded() {
        let feed = LiveFeed::new(3);
        for _ in 0..5 {
            feed.publish("dashboard", "dashboard.tick", json!({})).await;
        }
        feed.publish("call:x", "call.updated", json!({})).await;
        let d = feed.stream("dashboard");
        let g = d.lock().await;
        assert_eq!(g.seq, 5);
        assert_eq!(g.log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(feed.stream("call:x").lock().await.seq, 1);
    }
}
