//! `TestApp`: the real app on a random port with a fresh store (SQLite by
//! default; MongoDB with `.with_mongo()` when `TEST_MONGODB_URI` is set),
//! known secrets, and request helpers that sign like the providers do.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use switchboard_storage::{Storage, StoreError, StoreResult};

use reqwest::StatusCode;
use switchboard::config::{Secret, Settings};
use switchboard::webhooks::verify::{elevenlabs_signature, twilio_signature};
use switchboard::{App, AppState};
use tokio::sync::oneshot;

pub const API_TOKEN: &str = "test-token-0123456789abcdef0123";
pub const TWILIO_TOKEN: &str = "f00dfacecafebeef0123456789abcdef";
pub const EL_SECRET: &str = "wsec_test_0123456789abcdef";

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    pub server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub fn settings(dir: &std::path::Path, port: u16) -> Settings {
    let mut settings = switchboard::config::from_figment(
        switchboard::config::figment().merge(figment::providers::Serialized::default("env", "test")),
    )
    .expect("default settings load");
    settings.storage.sqlite_path = dir.join("test.db");
    settings.storage.mongodb_uri = None;
    settings.api_tokens = vec![Secret::new(API_TOKEN)];
    settings.twilio.auth_token = Some(Secret::new(TWILIO_TOKEN));
    settings.elevenlabs.webhook_secret = Some(Secret::new(EL_SECRET));
    settings.public_base_url = Some(format!("http://127.0.0.1:{port}"));
    settings.migrate_on_start = true;
    // Tests drive the dialer's steps themselves, with their own clock.
    settings.dialer.enabled = false;
    settings
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(tweak: impl FnOnce(&mut Settings)) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut s = settings(dir.path(), port);
        tweak(&mut s);
        let app = App::build(s).await.expect("app builds");
        Self::run(app, listener, dir)
    }

    /// Serves `app` on `listener` until [`TestApp::stop`] (or the end of the test).
    fn run(app: App, listener: tokio::net::TcpListener, dir: tempfile::TempDir) -> TestApp {
        let port = listener.local_addr().unwrap().port();
        let state = app.state.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let server = tokio::spawn(app.serve(listener, async move {
            let _ = rx.await;
        }));
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
            state,
            _dir: dir,
            stop: Some(tx),
            server: Some(server),
        }
    }

    /// The same app on MongoDB (`TEST_MONGODB_URI`), in a fresh database; `None`
    /// (with one loud line) when the variable is not set. Server gaps of a
    /// stand-in are probed and printed, as in the storage conformance suite.
    pub async fn spawn_mongo() -> Option<TestApp> {
        let db = format!("sb_api_{}", uuid::Uuid::new_v4().simple());
        Self::spawn_mongo_in(&db, |_| {}).await
    }

    /// The app on MongoDB database `db` (reused across calls: a restart), with `tweak` applied.
    pub async fn spawn_mongo_in(db: &str, tweak: impl FnOnce(&mut Settings)) -> Option<TestApp> {
        let Ok(uri) = std::env::var("TEST_MONGODB_URI") else {
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                switchboard_storage::conformance::loud(
                    "!!!!! SKIPPED: API tests on MongoDB — TEST_MONGODB_URI is not set !!!!!",
                )
            });
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let mut s = settings(dir.path(), port);
        let db = db.to_owned();
        s.storage.mongodb_uri = Some(Secret::new(uri.clone()));
        s.storage.mongodb_db = db.clone();
        tweak(&mut s);
        let mut m =
            switchboard_storage_mongo::MongoStore::connect(&switchboard_storage_mongo::MongoSettings::new(uri, db))
                .await
                .expect("TEST_MONGODB_URI is set but unreachable");
        for gap in m.probe_server_gaps().await {
            // Test binaries install no tracing subscriber: print it so it is seen.
            switchboard_storage::conformance::loud(&format!("MongoDB server gap (API tests on MongoDB): {gap}"));
        }
        let store: Arc<dyn Storage> = Arc::new(switchboard::store::Instrumented(Arc::new(m)));
        let app = App::with_store(s, store).await.unwrap();
        Some(Self::run(app, listener, dir))
    }

    /// A server whose store fails with `Unavailable` while the switch is on.
    pub async fn spawn_flaky() -> (TestApp, Arc<AtomicBool>) {
        let switch = Arc::new(AtomicBool::new(false));
        let dir = tempfile::tempdir().unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let s = settings(dir.path(), port);
        let inner = switchboard::store::open(&s).await.unwrap();
        let store = Arc::new(Flaky { inner, down: switch.clone() });
        let app = App::with_store(s, store).await.unwrap();
        (Self::run(app, listener, dir), switch)
    }

    /// Tells the server to stop without waiting for it.
    pub fn stop_handle(&mut self) -> oneshot::Sender<()> {
        self.stop.take().expect("not stopped yet")
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            h.await.unwrap().unwrap();
        }
    }

    pub fn store(&self) -> Arc<dyn switchboard_storage::Storage> {
        self.state.store.clone()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(format!("{}{path}", self.base)).bearer_auth(API_TOKEN).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str, expect: StatusCode) -> serde_json::Value {
        let r = self.get(path).await;
        let status = r.status();
        let body: serde_json::Value = r.json().await.unwrap_or(serde_json::Value::Null);
        assert_eq!(status, expect, "GET {path} -> {body}");
        body
    }

    /// Sends `method path` with a JSON body (or none) and the API token; returns status and JSON.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (StatusCode, serde_json::Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(API_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
    }

    /// POSTs raw bytes with the API token.
    pub async fn post_bytes(&self, path: &str, body: Vec<u8>, content_type: &str) -> (StatusCode, serde_json::Value) {
        let r = self
            .client
            .post(format!("{}{path}", self.base))
            .bearer_auth(API_TOKEN)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    /// POSTs a Twilio callback signed over PUBLIC_BASE_URL + path.
    pub async fn twilio(&self, path: &str, params: &[(&str, &str)]) -> reqwest::Response {
        let owned: Vec<(String, String)> = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let sig = twilio_signature(TWILIO_TOKEN, &format!("{}{path}", self.base), &owned);
        self.twilio_signed(path, params, &sig).await
    }

    pub async fn twilio_signed(&self, path: &str, params: &[(&str, &str)], sig: &str) -> reqwest::Response {
        let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
        self.client
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", sig)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    /// POSTs an ElevenLabs webhook signed now.
    pub async fn elevenlabs(&self, body: &serde_json::Value) -> reqwest::Response {
        let raw = serde_json::to_vec(body).unwrap();
        let sig = elevenlabs_signature(EL_SECRET, chrono::Utc::now().timestamp(), &raw);
        self.client
            .post(format!("{}/webhooks/elevenlabs", self.base))
            .header("content-type", "application/json")
            .header("elevenlabs-signature", sig)
            .body(raw)
            .send()
            .await
            .unwrap()
    }
}

/// A status callback for `sid` as Twilio sends it.
pub fn status_params(sid: &str, seq: u32, status: &str) -> Vec<(&'static str, String)> {
    let mut p = vec![
        ("AccountSid", "AC00000000000000000000000000000001".to_string()),
        ("ApiVersion", "2010-04-01".into()),
        ("CallSid", sid.to_string()),
        ("CallStatus", status.to_string()),
        ("CallbackSource", "call-progress-events".into()),
        ("Called", "+15005550006".into()),
        ("Caller", "+15005550001".into()),
        ("Direction", "outbound-api".into()),
        ("From", "+15005550001".into()),
        ("To", "+15005550006".into()),
        ("SequenceNumber", seq.to_string()),
        ("Timestamp", format!("Tue, 17 Nov 2026 10:15:{:02} +0000", 10 + seq * 5)),
    ];
    if ["completed", "busy", "no-answer", "failed", "canceled"].contains(&status) {
        p.push(("CallDuration", "37".into()));
        p.push(("SipResponseCode", "200".into()));
    }
    p
}

pub fn refs<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

pub fn sid(n: u32) -> String {
    format!("CA{n:032x}")
}

/// A store that answers `Unavailable` while `down` is set (a database outage
/// of the call and event operations; contacts, campaigns, schema and counts
/// are not part of the outage these tests simulate).
pub struct Flaky {
    inner: Arc<dyn Storage>,
    down: Arc<AtomicBool>,
}

impl Flaky {
    async fn outage<T>(&self, op: &'static str, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        const DOWN: &[&str] = &[
            "upsert_call",
            "get_call",
            "find_call_by_sid",
            "find_call_by_conversation",
            "list_calls",
            "insert_calls_bulk",
            "insert_event",
            "event_exists",
            "list_call_events",
            "list_events",
            "record_webhook",
            "ping",
        ];
        if DOWN.contains(&op) && self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("simulated outage".into()));
        }
        fut.await
    }
}

switchboard_storage::decorate_storage!(Flaky, inner, outage);
