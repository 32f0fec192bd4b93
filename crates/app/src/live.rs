//! The live feed: a Socket.IO server (protocol v5, `socketioxide`) at
//! `/socket.io/`, beside the HTTP API on the same listener.
//!
//! - **Auth at connect**: the handshake's `auth: { token }` must be an API
//!   token; otherwise the connection is refused (`connect_error`,
//!   "unauthorized").
//! - **Streams and rooms**: `dashboard`, `jobs`, `call:{call_id}`,
//!   `campaign:{campaign_id}`. A client that has subscribed to nothing is in
//!   `dashboard`; `subscribe` (`{room, after?}`, acknowledged) joins a room
//!   and `unsubscribe` leaves it.
//! - **Events** (`event`): `{stream, seq, kind, at, data}` with kinds
//!   `call.updated` (status changes and merged fields: to the call, its
//!   campaign and the dashboard), `campaign.progress` (an enrollment
//!   changed), `dashboard.tick` (rollups rebuilt: refetch the figures),
//!   `job.status` (a job run finished) and `feed.resync` (events were lost:
//!   reload).
//! - **Gap-free resume**: `seq` grows by one per stream (from the time in
//!   µs when the stream starts, so a recreated stream never reuses numbers).
//!   A client that reconnects passes `auth.after = {"dashboard": <last seq>}`
//!   and receives the events it missed, in order, before any live one
//!   (joining and delivering take the stream's lock, so nothing slips
//!   between the replay and the join); for other rooms it subscribes with
//!   `after`, and gets the missed events (possibly after live ones it already
//!   had: reassemble by `seq`), never one twice. If they are older than the
//!   stream's buffer ([`BUFFER`] events) or from an earlier life of the
//!   stream, the answer says `refetch: true` and the client reloads from the
//!   API.
//! - **Bus**: in-process, or Redis between instances (`REDIS_URL`): a Lua
//!   script numbers, buffers and publishes each event; every instance
//!   delivers what it hears, in order, filling gaps from Redis's buffer.
//!
//! Sources: every write that merges a call or changes an enrollment goes
//! through the store decorator [`crate::cache::Evicting`], which publishes
//! here (webhooks, dialer, reconciler alike) — or, with `[live] source =
//! "change_stream"`, the watcher in [`crate::jobs::live_changes`] does; the
//! rollup job's rebuilds publish `dashboard.tick`, the job runner `job.status`.

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

/// A stream with no room members and no event for this long is dropped
/// from memory (its next event starts a new, higher sequence; with Redis
/// the sequence lives on there).
const IDLE: std::time::Duration = std::time::Duration::from_secs(600);

/// The Redis channel every instance publishes to and listens on.
const CHANNEL: &str = "sb:live:events";

/// Redis keeps a stream's sequence and buffer this long after its last event.
const REDIS_TTL_SECS: u64 = 7 * 24 * 3600;

/// A stream's first sequence: the current time in microseconds. Sequences
/// then grow by one per event, so a stream that is recreated (after a
/// restart, an idle drop, or a Redis flush) numbers above anything it issued
/// before — a client resuming from an older life gets `refetch`, never a
/// silent hole. (Stays below 2^53 — exact in JavaScript — until the 2200s.)
fn first_seq() -> u64 {
    u64::try_from(Utc::now().timestamp_micros()).unwrap_or(1).max(1)
}

struct Stream {
    /// The last sequence delivered to this instance's room.
    seq: u64,
    log: VecDeque<LiveEvent>,
    touched: std::time::Instant,
}

impl Stream {
    fn new() -> Stream {
        Stream { seq: first_seq() - 1, log: VecDeque::new(), touched: std::time::Instant::now() }
    }

    /// A stream known to this instance only from Redis: nothing delivered yet.
    fn unseen() -> Stream {
        Stream { seq: 0, log: VecDeque::new(), touched: std::time::Instant::now() }
    }
}

/// Where sequences come from and how events reach every instance.
enum Bus {
    /// This process numbers and delivers its own events.
    Local,
    /// Redis numbers them (one Lua script: sequence, buffer, publish) and
    /// every instance delivers what it hears on [`CHANNEL`].
    Redis(Box<RedisBus>),
}

struct RedisBus {
    client: redis::Client,
    conn: tokio::sync::RwLock<Option<redis::aio::ConnectionManager>>,
    script: redis::Script,
    tail: redis::Script,
    /// Streams whose events could not be published (Redis unreachable):
    /// told to refetch (`feed.resync`) once Redis answers again.
    failed: std::sync::Mutex<std::collections::BTreeSet<String>>,
    /// The listener is subscribed.
    listening: std::sync::atomic::AtomicBool,
}

/// Numbers, buffers and publishes one event atomically.
const PUBLISH_LUA: &str = r"
local seq
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('INCR', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[2])
end
seq = redis.call('GET', KEYS[1])
local msg = seq .. '|' .. ARGV[1]
redis.call('RPUSH', KEYS[2], msg)
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[3]), -1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[4])
redis.call('PUBLISH', ARGV[5], msg)
return seq
";

/// The events after `ARGV[1]` (all of the buffer when it is 0), at most `ARGV[2]`, atomically.
const TAIL_LUA: &str = r"
local top = redis.call('GET', KEYS[1])
if not top then return {} end
local have = tonumber(ARGV[1])
local n = tonumber(top) - have
if n <= 0 then return {} end
if have == 0 or n > tonumber(ARGV[2]) then n = tonumber(ARGV[2]) end
return redis.call('LRANGE', KEYS[2], -n, -1)
";

fn seq_key(stream: &str) -> String {
    format!("sb:live:seq:{stream}")
}

fn log_key(stream: &str) -> String {
    format!("sb:live:log:{stream}")
}

/// An event as it travels through Redis: `"<seq>|<json without seq>"`.
#[derive(Serialize, Deserialize)]
struct Wire {
    stream: String,
    kind: String,
    at: DateTime<Utc>,
    data: Value,
}

fn decode(msg: &str) -> Option<LiveEvent> {
    let (seq, json) = msg.split_once('|')?;
    let w: Wire = serde_json::from_str(json).ok()?;
    Some(LiveEvent { stream: w.stream, seq: seq.parse().ok()?, kind: w.kind, at: w.at, data: w.data })
}

struct Inner {
    /// The server of the current router (replaced if a router is built again).
    io: RwLock<Option<SocketIo>>,
    streams: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<Stream>>>>,
    buffer: usize,
    bus: Bus,
    last_sweep: std::sync::Mutex<std::time::Instant>,
    /// Call and enrollment events come from our writes (else from the store's change feed).
    from_writes: std::sync::atomic::AtomicBool,
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
        || room == "jobs"
        || room.strip_prefix("call:").is_some_and(|id| CallId::parse(id).is_ok())
        || room.strip_prefix("campaign:").is_some_and(|id| CampaignId::parse(id).is_ok())
}

impl LiveFeed {
    /// A feed of this process alone, keeping the last `buffer` events of each stream for resumes.
    pub fn new(buffer: usize) -> LiveFeed {
        LiveFeed::with_bus(buffer, Bus::Local)
    }

    fn with_bus(buffer: usize, bus: Bus) -> LiveFeed {
        LiveFeed {
            inner: Arc::new(Inner {
                io: RwLock::new(None),
                streams: std::sync::Mutex::new(HashMap::new()),
                buffer: buffer.max(1),
                bus,
                last_sweep: std::sync::Mutex::new(std::time::Instant::now()),
                from_writes: true.into(),
            }),
        }
    }

    /// A feed shared by every instance through the Redis at `url`: Redis
    /// numbers the events and keeps each stream's buffer; each instance
    /// delivers what it hears to its own clients, so a client connected to
    /// one instance sees calls updated through another, and may resume on
    /// any instance. Connects (and reconnects) in the background.
    pub fn redis(url: &str, buffer: usize) -> anyhow::Result<LiveFeed> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let feed = LiveFeed::with_bus(
            buffer,
            Bus::Redis(Box::new(RedisBus {
                client,
                conn: tokio::sync::RwLock::new(None),
                script: redis::Script::new(PUBLISH_LUA),
                tail: redis::Script::new(TAIL_LUA),
                failed: std::sync::Mutex::new(Default::default()),
                listening: false.into(),
            })),
        );
        let weak = Arc::downgrade(&feed.inner);
        tokio::spawn(listen(weak));
        Ok(feed)
    }

    /// The feed the settings ask for: Redis when `REDIS_URL` is set; call
    /// and enrollment events from our writes unless `[live] source =
    /// "change_stream"`.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<LiveFeed> {
        let feed = match &settings.redis.url {
            Some(url) => LiveFeed::redis(url.expose(), BUFFER)?,
            None => LiveFeed::new(BUFFER),
        };
        let from_writes = settings.live.source == crate::config::LiveSource::Writes;
        feed.inner.from_writes.store(from_writes, std::sync::atomic::Ordering::Relaxed);
        Ok(feed)
    }

    /// Call and enrollment events are published by the writes themselves
    /// (the store decorator); `false` when the change-stream watcher does it.
    pub fn publishes_writes(&self) -> bool {
        self.inner.from_writes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The events this instance holds for `stream`, oldest first (diagnostics and tests).
    pub async fn recent(&self, stream: &str) -> Vec<LiveEvent> {
        let exists = self.inner.streams.lock().expect("live streams").contains_key(stream);
        if !exists {
            return vec![];
        }
        self.stream(stream).lock().await.log.iter().cloned().collect()
    }

    /// Holds `stream`'s lock until the guard is dropped, as a publisher does
    /// while it emits (tests: a connect handler kept busy).
    #[doc(hidden)]
    pub async fn hold(&self, stream: &str) -> impl Drop + Send + use<> {
        self.stream(stream).lock_owned().await
    }

    /// `local` or `redis`.
    pub fn bus_name(&self) -> &'static str {
        match self.inner.bus {
            Bus::Local => "local",
            Bus::Redis(_) => "redis",
        }
    }

    /// With Redis: subscribed to the channel (events from other instances arrive).
    pub fn listening(&self) -> bool {
        match &self.inner.bus {
            Bus::Local => true,
            Bus::Redis(r) => r.listening.load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    fn stream(&self, name: &str) -> Arc<tokio::sync::Mutex<Stream>> {
        let fresh = || match self.inner.bus {
            Bus::Local => Stream::new(),
            Bus::Redis(_) => Stream::unseen(),
        };
        self.inner
            .streams
            .lock()
            .expect("live streams")
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(fresh().into()))
            .clone()
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
        match &self.inner.bus {
            Bus::Local => {
                let st = self.stream(stream);
                let mut g = st.lock().await;
                let ev =
                    LiveEvent { stream: stream.to_owned(), seq: g.seq + 1, kind: kind.to_owned(), at: now_ms(), data };
                self.deliver(&mut g, ev).await;
            }
            Bus::Redis(r) => {
                let wire = Wire { stream: stream.to_owned(), kind: kind.to_owned(), at: now_ms(), data };
                if let Err(e) = r.publish(&wire, self.inner.buffer).await {
                    metrics::counter!(crate::metrics::LIVE_PUBLISH_FAILURES).increment(1);
                    tracing::warn!(stream, error = %e, "live event not published (Redis unreachable); its subscribers will be told to refetch");
                    let mut failed = r.failed.lock().expect("live failed set");
                    // Bounded: past this many, the dashboard's resync stands for them.
                    if failed.len() < 10_000 {
                        failed.insert(stream.to_owned());
                    }
                    failed.insert("dashboard".to_owned());
                }
                // Delivered (here too) when the listener hears it.
            }
        }
        self.sweep().await;
    }

    /// Appends `ev` (the stream's next event) to the buffer and emits it to the room.
    async fn deliver(&self, g: &mut Stream, ev: LiveEvent) {
        g.seq = ev.seq;
        g.touched = std::time::Instant::now();
        g.log.push_back(ev.clone());
        while g.log.len() > self.inner.buffer {
            g.log.pop_front();
        }
        let io = self.inner.io.read().expect("live io").clone();
        if let Some(io) = io
            && let Err(e) = io.to(ev.stream.clone()).emit("event", &ev).await
        {
            tracing::debug!(stream = %ev.stream, error = %e, "live emit failed");
        }
        metrics::counter!(crate::metrics::LIVE_EVENTS).increment(1);
    }

    /// An event heard from Redis: delivered once, in order. A gap (messages
    /// lost while the listener reconnected) is filled from the stream's
    /// buffer in Redis first.
    async fn heard(&self, ev: LiveEvent) {
        let st = self.stream(&ev.stream);
        let mut g = st.lock().await;
        if ev.seq <= g.seq {
            return; // already delivered (by a catch-up)
        }
        if g.seq != 0 && ev.seq > g.seq + 1 {
            self.catch_up(&mut g, &ev.stream).await;
            if ev.seq <= g.seq {
                return;
            }
        }
        self.deliver(&mut g, ev).await;
    }

    /// With Redis: delivers, in order, every event Redis has for `stream`
    /// that this instance has not (a stream first seen here starts with
    /// Redis's buffer and emits nothing old). Without Redis, or when it does
    /// not answer: nothing.
    async fn catch_up(&self, g: &mut Stream, stream: &str) {
        let Bus::Redis(r) = &self.inner.bus else { return };
        let Some(mut conn) = r.conn.read().await.clone() else { return };
        let entries: Vec<String> = match r
            .tail
            .key(seq_key(stream))
            .key(log_key(stream))
            .arg(g.seq)
            .arg(self.inner.buffer)
            .invoke_async(&mut conn)
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(stream, error = %e, "live catch-up failed");
                return;
            }
        };
        let fresh = g.seq == 0;
        let mut hole = false;
        for ev in entries.iter().filter_map(|m| decode(m)) {
            if ev.seq <= g.seq {
                continue;
            }
            if fresh {
                g.seq = ev.seq;
                g.log.push_back(ev);
            } else {
                // More was missed than Redis buffers: this room skips some events.
                hole |= ev.seq > g.seq + 1;
                self.deliver(g, ev).await;
            }
        }
        if hole {
            // Tell its clients to reload (published through Redis: it comes back in order).
            tracing::warn!(stream, "live feed missed more events than Redis buffers; telling the room to refetch");
            let feed = self.clone();
            let stream = stream.to_owned();
            tokio::spawn(async move {
                let data =
                    json!({"reason": "events were lost while this instance was not listening: reload from the API"});
                feed.publish(&stream, "feed.resync", data).await;
            });
        }
    }

    /// Drops streams nobody is in and nothing was published to for [`IDLE`] (at most once a minute).
    async fn sweep(&self) {
        {
            let mut last = self.inner.last_sweep.lock().expect("live sweep");
            if last.elapsed() < std::time::Duration::from_secs(60) {
                return;
            }
            *last = std::time::Instant::now();
        }
        let io = self.inner.io.read().expect("live io").clone();
        let occupied: std::collections::HashSet<String> = match io {
            Some(io) => match io.rooms().await {
                Ok(rooms) => rooms.into_iter().map(|r| r.to_string()).collect(),
                Err(_) => return,
            },
            None => Default::default(),
        };
        let mut streams = self.inner.streams.lock().expect("live streams");
        // A stream someone holds (a subscribe in progress) or locks is kept.
        streams.retain(|name, st| {
            occupied.contains(name)
                || Arc::strong_count(st) > 1
                || st.try_lock().map_or(true, |g| g.touched.elapsed() < IDLE)
        });
    }

    /// A call changed: to its stream, its campaign's and the dashboard.
    pub async fn call_updated(&self, call: &Call) {
        let data = json!({
            "id": call.id,
            "call_sid": call.call_sid,
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

    /// An enrollment moved (claimed, attempted, finished): to its campaign's stream.
    pub async fn enrollment_updated(&self, e: &switchboard_domain::Enrollment) {
        let data = json!({
            "campaign_id": e.campaign_id,
            "enrollment_id": e.id,
            "contact_id": e.contact_id,
            "status": e.status,
            "attempts": e.attempts,
            "last_outcome": e.last_outcome,
            "next_attempt_at": e.next_attempt_at,
            "updated_at": e.updated_at,
            "version": e.version,
        });
        self.publish(&format!("campaign:{}", e.campaign_id), "campaign.progress", data).await;
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
        let mut g = st.lock().await;
        // With Redis, first take this instance up to Redis's sequence (what
        // other instances published and the listener has not heard yet).
        self.catch_up(&mut g, room).await;
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
            // A sequence this stream never issued (an earlier life, or Redis unreachable here).
            out.refetch = true;
        }
        map.insert(room.to_owned(), now_covered);
        drop(map);
        s.extensions.insert(covered);
        out
    }
}

impl Inner {
    /// With Redis: the command connection is up.
    #[cfg(test)]
    async fn bus_connected(&self) -> bool {
        match &self.bus {
            Bus::Local => true,
            Bus::Redis(r) => r.conn.read().await.is_some(),
        }
    }
}

impl RedisBus {
    async fn publish(&self, w: &Wire, buffer: usize) -> anyhow::Result<u64> {
        let Some(mut conn) = self.conn.read().await.clone() else {
            anyhow::bail!("not connected to Redis");
        };
        let json = serde_json::to_string(w)?;
        Ok(self
            .script
            .key(seq_key(&w.stream))
            .key(log_key(&w.stream))
            .arg(json)
            .arg(first_seq())
            .arg(buffer)
            .arg(REDIS_TTL_SECS)
            .arg(CHANNEL)
            .invoke_async(&mut conn)
            .await?)
    }
}

/// The Redis side of a feed: connects, subscribes to [`CHANNEL`], delivers
/// what it hears; after every (re)subscription takes each stream it knows
/// up to Redis (events published while it was not listening) and tells the
/// streams whose events it failed to publish to refetch. Ends when the feed
/// is dropped.
async fn listen(weak: std::sync::Weak<Inner>) {
    use futures::StreamExt;
    use std::sync::atomic::Ordering;
    let mut warned = false;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let Bus::Redis(r) = &inner.bus else { return };
        if r.conn.read().await.is_none() {
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(std::time::Duration::from_secs(2)))
                .set_response_timeout(Some(std::time::Duration::from_secs(2)))
                .set_number_of_retries(1);
            match redis::aio::ConnectionManager::new_with_config(r.client.clone(), cfg).await {
                Ok(m) => *r.conn.write().await = Some(m),
                Err(e) => {
                    if !warned {
                        tracing::warn!(error = %e, "live feed cannot reach Redis (REDIS_URL); retrying");
                        warned = true;
                    }
                    drop(inner);
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let pubsub = match r.client.get_async_pubsub().await {
            Ok(mut ps) => ps.subscribe(CHANNEL).await.map(|()| ps),
            Err(e) => Err(e),
        };
        let mut messages = match pubsub {
            Ok(ps) => ps.into_on_message(),
            Err(e) => {
                if !warned {
                    tracing::warn!(error = %e, "live feed cannot subscribe on Redis; retrying");
                    warned = true;
                }
                drop(inner);
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                continue;
            }
        };
        r.listening.store(true, Ordering::Relaxed);
        warned = false;
        tracing::info!("live feed listening on Redis");
        let feed = LiveFeed { inner };
        feed.resync().await;
        drop(feed);
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(5), messages.next()).await {
                Ok(Some(msg)) => {
                    let Some(inner) = weak.upgrade() else { return };
                    let feed = LiveFeed { inner };
                    match msg.get_payload::<String>().ok().as_deref().and_then(decode) {
                        Some(ev) => feed.heard(ev).await,
                        None => tracing::warn!("live feed: an undecodable message on {CHANNEL}"),
                    }
                }
                Ok(None) => break,
                Err(_) => {
                    if weak.strong_count() == 0 {
                        return;
                    }
                }
            }
        }
        let Some(inner) = weak.upgrade() else { return };
        if let Bus::Redis(r) = &inner.bus {
            r.listening.store(false, Ordering::Relaxed);
        }
        tracing::warn!("live feed lost its Redis subscription; reconnecting");
        drop(inner);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

impl LiveFeed {
    /// After (re)subscribing: catch every known stream up, then tell the
    /// streams whose events were lost while Redis was unreachable to refetch.
    async fn resync(&self) {
        let names: Vec<String> = self.inner.streams.lock().expect("live streams").keys().cloned().collect();
        for name in names {
            let st = self.stream(&name);
            let mut g = st.lock().await;
            self.catch_up(&mut g, &name).await;
        }
        let Bus::Redis(r) = &self.inner.bus else { return };
        let failed = std::mem::take(&mut *r.failed.lock().expect("live failed set"));
        for stream in failed {
            let data = json!({"reason": "events were lost while Redis was unreachable: reload from the API"});
            self.publish(&stream, "feed.resync", data).await;
        }
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

/// Per socket: held while the socket's default subscription (the dashboard)
/// is made, and by each `subscribe`/`unsubscribe` handler, so a request that
/// arrives while the connect handler still runs waits for it instead of
/// racing it.
#[derive(Clone, Default)]
struct Setup(Arc<tokio::sync::Mutex<()>>);

impl Setup {
    async fn of(s: &SocketRef) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match s.extensions.get::<Setup>() {
            Some(setup) => Some(setup.0.lock_owned().await),
            None => None,
        }
    }
}

async fn on_connect(s: SocketRef, TryData(auth): TryData<Value>, State(feed): State<LiveFeed>) {
    // socketioxide sends the client its CONNECT before running this handler,
    // so a client may emit `subscribe` at once: the handlers are registered
    // first (an event with no handler yet would be dropped, its ack never
    // sent), and wait on `Setup` until the default subscription is made.
    let setup = Setup::default();
    let making = setup.0.clone().lock_owned().await;
    s.extensions.insert(setup);
    s.on(
        "subscribe",
        async |s: SocketRef, Data(req): Data<Subscribe>, ack: AckSender, State(feed): State<LiveFeed>| {
            let _setup = Setup::of(&s).await;
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
                    error: Some("room must be dashboard, jobs, call:{call_id} or campaign:{campaign_id}".into()),
                }
            };
            let _ = ack.send(&out);
        },
    );
    s.on("unsubscribe", async |s: SocketRef, Data(room): Data<String>| {
        let _setup = Setup::of(&s).await;
        if let Some(c) = s.extensions.get::<Covered>() {
            c.0.lock().expect("covered map").remove(&room);
        }
        s.leave(room);
    });
    // Subscribed to nothing yet: the dashboard. A reconnecting client passes
    // `auth.after = {"dashboard": <last seq>}` and gets what it missed first,
    // in order, before any live event (the result comes as `subscribed`).
    let after = auth.ok().and_then(|a| a.get("after").and_then(|m| m.get("dashboard")).and_then(Value::as_u64));
    let out = feed.subscribe(&s, "dashboard", after).await;
    if after.is_some() {
        let _ = s.emit("subscribed", &out);
    }
    drop(making);
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
        let first = g.seq - 4;
        assert!(first > 1_700_000_000_000_000, "a stream starts at the time in microseconds: {first}");
        assert_eq!(g.log.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![first + 2, first + 3, first + 4]);
        drop(g);
        // A stream dropped and recreated (idle sweep, restart) numbers above its earlier life.
        let last = feed.stream("call:x").lock().await.seq;
        feed.inner.streams.lock().unwrap().remove("call:x");
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        feed.publish("call:x", "call.updated", json!({})).await;
        let again = feed.stream("call:x").lock().await.seq;
        assert!(again > last + 1, "recreated at {again}, earlier life ended at {last}");
    }

    /// Two feeds on one Redis (two instances): one numbering, both buffers
    /// equal and contiguous whoever published; a feed that starts later
    /// catches a stream up from Redis's buffer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn feeds_sharing_redis_number_and_deliver_every_event_once() {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            switchboard_storage::conformance::loud(
                "SKIPPED feeds_sharing_redis_number_and_deliver_every_event_once: TEST_REDIS_URL is not set",
            );
            return;
        };
        let a = LiveFeed::redis(&url, 100).unwrap();
        let b = LiveFeed::redis(&url, 100).unwrap();
        for f in [&a, &b] {
            for _ in 0..200 {
                if f.listening() && f.inner.bus_connected().await {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            assert!(f.listening(), "the feed subscribes on Redis");
        }
        let stream = format!("call:{}", CallId::new());
        for i in 0..10 {
            let f = if i % 3 == 0 { &b } else { &a };
            f.publish(&stream, "call.updated", json!({ "i": i })).await;
        }
        let logs = async |f: &LiveFeed| {
            let st = f.stream(&stream);
            let g = st.lock().await;
            g.log.iter().map(|e| (e.seq, e.data["i"].as_u64().unwrap())).collect::<Vec<_>>()
        };
        for _ in 0..200 {
            if logs(&a).await.len() == 10 && logs(&b).await.len() == 10 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let (la, lb) = (logs(&a).await, logs(&b).await);
        assert_eq!(la.len(), 10, "{la:?}");
        assert_eq!(la, lb, "both instances hold the same stream");
        assert!(la.windows(2).all(|w| w[1].0 == w[0].0 + 1), "contiguous: {la:?}");
        assert_eq!(la.iter().map(|e| e.1).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>(), "in publish order");

        // An instance started later catches the stream up from Redis.
        let c = LiveFeed::redis(&url, 100).unwrap();
        for _ in 0..200 {
            if c.inner.bus_connected().await {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        let st = c.stream(&stream);
        let mut g = st.lock().await;
        c.catch_up(&mut g, &stream).await;
        assert_eq!(g.log.iter().map(|e| (e.seq, e.data["i"].as_u64().unwrap())).collect::<Vec<_>>(), la);
        drop(g);

        // An instance that missed more than Redis still holds: its room is told to refetch.
        {
            let st = b.stream(&stream);
            let mut g = st.lock().await;
            g.seq = la[0].0 - 5;
            b.catch_up(&mut g, &stream).await;
        }
        let mut told = false;
        for _ in 0..200 {
            told = b.recent(&stream).await.iter().any(|e| e.kind == "feed.resync");
            if told {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(told, "feed.resync published after a hole");
    }
}
