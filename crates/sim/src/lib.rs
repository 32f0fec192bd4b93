//! The telephony simulator: a local Twilio + ElevenLabs that Switchboard's
//! clients talk to, so every feature is tested offline and users can try a
//! whole campaign without spending on calls (`switchboard sim`).
//!
//! - Twilio (`twilio.rs`): `POST …/Calls.json` (Basic auth, validation, CPS
//!   queueing and a concurrency limit), `GET …/Calls.json` (filters and
//!   Twilio's paging envelope), `GET`/`POST …/Calls/{sid}.json` (fetch, hang
//!   up), recordings and media. A placed call plays out in simulated time
//!   ([`script`]): its state follows a lifecycle independent of the
//!   subscribed callbacks, and it sends status callbacks with correct
//!   `SequenceNumber`s, async AMD and a recording callback, each signed
//!   exactly as Twilio signs (X-Twilio-Signature over the callback URL).
//! - ElevenLabs (`elevenlabs.rs`): `outbound-call`, `register-call` (TwiML
//!   that links the call to a conversation), conversations list/get/audio,
//!   and the post-call webhooks (`ElevenLabs-Signature`).
//! - Ids are random (never derived from the seed) and everything on the
//!   wire is stamped with the real clock; the seed decides outcomes, timings
//!   and faults, the scaled clock only when things are sent.
//! - Faults: REST 5xx / 429 (+`Retry-After`) / slow replies, duplicated,
//!   reordered and dropped webhooks, bad signatures. Anything not simulated
//!   gets the provider's error envelope (`errors.rs`).
//! - Control API under `/__sim`: scenario get/put, placed calls, webhook
//!   deliveries, recorded requests.
//!
//! - Google ([`google`]): the OAuth2 token endpoint (RS256 assertions
//!   checked against registered service-account keys), Sheets v4 values
//!   over in-memory grids, structural `batchUpdate` (add/delete/rename
//!   sheets), Drive `files.get` with a `version` that bumps on every change
//!   and `files.list` by name, and "human" edits through the control API.

mod elevenlabs;
mod errors;
pub mod google;
pub mod script;
mod twilio;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;

pub use script::{Faults, Outcome, OutcomeMix, Scenario, Script, Step, Wants};

use switchboard_wire::signature::{elevenlabs_signature, twilio_signature};

/// Credentials and endpoints of a simulator instance.
#[derive(Debug, Clone)]
pub struct SimSettings {
    /// Twilio account (`AC…`).
    pub account_sid: String,
    /// Twilio auth token (checks Basic auth, signs callbacks).
    pub auth_token: String,
    /// ElevenLabs API key (checked on `xi-api-key`).
    pub elevenlabs_api_key: String,
    /// ElevenLabs webhook secret (signs post-call webhooks).
    pub elevenlabs_webhook_secret: String,
    /// Where ElevenLabs post-call webhooks go (the workspace setting).
    pub elevenlabs_webhook_url: Option<String>,
    /// Initial scenario.
    pub scenario: Scenario,
}

impl Default for SimSettings {
    fn default() -> Self {
        SimSettings {
            account_sid: "AC00000000000000000000000000000001".into(),
            auth_token: "sandbox-twilio-auth-token-0000000".into(),
            elevenlabs_api_key: "sandbox-elevenlabs-api-key".into(),
            elevenlabs_webhook_secret: "sandbox-elevenlabs-webhook-secret".into(),
            elevenlabs_webhook_url: None,
            scenario: Scenario::default(),
        }
    }
}

/// A call the simulator placed.
#[derive(Debug, Clone, Serialize)]
pub struct SimCall {
    /// Order placed (decides the scripted outcome together with the seed).
    pub index: u64,
    /// `CA…` (random: unique across runs and simulators).
    pub sid: String,
    /// Destination.
    pub to: String,
    /// Caller.
    pub from: String,
    /// Current Twilio status (`queued`, `ringing`, `in-progress`, then terminal).
    pub status: String,
    /// AMD result, once known.
    pub answered_by: Option<String>,
    /// Seconds, when finished.
    pub duration: Option<u64>,
    /// What the script decided.
    pub script: Script,
    /// Linked conversation.
    pub conversation_id: Option<String>,
    /// Agent of the conversation.
    pub agent_id: Option<String>,
    /// Recording, once complete.
    pub recording_sid: Option<String>,
    /// `Record=true` was asked.
    pub record: bool,
    /// When it was created (real clock, like every time the simulator reports).
    pub created_at: DateTime<Utc>,
    /// When it started playing (after CPS/concurrency queueing; real clock).
    pub started_at: Option<DateTime<Utc>>,
    /// When it was answered (real clock).
    pub answered_at: Option<DateTime<Utc>>,
    /// When it ended (real clock).
    pub ended_at: Option<DateTime<Utc>>,
    /// Last change (real clock).
    pub updated_at: DateTime<Utc>,
    #[serde(skip)]
    urls: Urls,
    #[serde(skip)]
    wants: Wants,
    #[serde(skip)]
    pending_recording: Option<String>,
    /// Hung up or canceled through the REST API: the playout stops.
    #[serde(skip)]
    hung_up: bool,
    /// The next status callback's `SequenceNumber`.
    #[serde(skip)]
    next_sequence: u32,
}

#[derive(Debug, Clone, Default)]
struct Urls {
    status: Option<String>,
    amd: Option<String>,
    recording: Option<String>,
}

/// One webhook the simulator sent.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// The call.
    pub call_sid: String,
    /// `status`, `amd`, `recording`, `elevenlabs`.
    pub kind: String,
    /// Status / AnsweredBy / webhook type.
    pub value: String,
    /// SequenceNumber for status callbacks.
    pub sequence: Option<u32>,
    /// Target URL.
    pub url: String,
    /// HTTP status the receiver answered (None: unreachable).
    pub response_status: Option<u16>,
    /// Signed with a wrong key on purpose.
    pub bad_signature: bool,
    /// When it was sent (real clock).
    pub sent_at: DateTime<Utc>,
}

/// A REST request the simulator received.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    /// Method and path.
    pub what: String,
    /// Status answered.
    pub status: u16,
}

#[derive(Debug, Clone, Serialize)]
struct Conversation {
    conversation_id: String,
    agent_id: String,
    /// `inbound` / `outbound`.
    direction: String,
    phone_number_id: String,
    agent_number: String,
    external_number: String,
    stream_sid: String,
    call_sid: Option<String>,
    status: String,
    start_time_unix_secs: i64,
    call_duration_secs: i64,
    call_successful: String,
    user_id: Option<String>,
    dynamic_variables: Value,
}

struct Inner {
    settings: SimSettings,
    scenario: Scenario,
    calls: Vec<SimCall>,
    by_sid: HashMap<String, usize>,
    conversations: Vec<Conversation>,
    deliveries: Vec<Delivery>,
    requests: Vec<Recorded>,
    fault_rng: StdRng,
    next_slot: Instant,
    slots: Arc<Semaphore>,
}

/// A running simulator (cheap to clone).
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Mutex<Inner>>,
    google: Arc<Mutex<google::GoogleState>>,
    http: reqwest::Client,
    epoch: DateTime<Utc>,
    started: Instant,
}

/// A simulator bound to a port.
pub struct SimHandle {
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// The simulator (for inspection from tests).
    pub sim: Simulator,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fresh random id: `prefix` and `len` lowercase hex digits. Ids are never
/// derived from the seed, so a restarted or second simulator never reissues
/// one (the seed decides outcomes, timings and faults only).
fn random_hex(prefix: &str, len: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::from(prefix);
    for _ in 0..len {
        s.push(char::from_digit(rng.random_range(0..16), 16).expect("digit"));
    }
    s
}

/// The real clock, to the millisecond: every time the simulator puts on the wire.
fn wall() -> DateTime<Utc> {
    switchboard_domain::time::now_ms()
}

/// Which provider's error envelope a fault uses.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    Twilio,
    ElevenLabs,
    Google,
}

impl Simulator {
    /// A simulator with these settings (not yet listening).
    pub fn new(settings: SimSettings) -> Simulator {
        let scenario = settings.scenario.clone();
        let slots = Arc::new(Semaphore::new(scenario.max_concurrency.max(1)));
        Simulator {
            google: Arc::new(Mutex::new(google::GoogleState::new(&scenario.google))),
            inner: Arc::new(Mutex::new(Inner {
                fault_rng: StdRng::seed_from_u64(scenario.seed.wrapping_add(7)),
                settings,
                scenario,
                calls: vec![],
                by_sid: HashMap::new(),
                conversations: vec![],
                deliveries: vec![],
                requests: vec![],
                next_slot: Instant::now(),
                slots,
            })),
            http: reqwest::Client::builder().timeout(Duration::from_secs(15)).build().expect("client builds"),
            epoch: wall(),
            started: Instant::now(),
        }
    }

    /// Listens on `addr` (use port 0 for a random port) and serves until dropped.
    pub async fn spawn(settings: SimSettings, addr: std::net::SocketAddr) -> anyhow::Result<SimHandle> {
        let sim = Simulator::new(settings);
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let base_url = format!("http://{}", listener.local_addr()?);
        let router = sim.router();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Ok(SimHandle { base_url, sim, task })
    }

    /// The simulated clock: real time since start, scaled. It only decides
    /// *when* things happen; nothing sent on the wire is stamped with it.
    pub fn now(&self) -> DateTime<Utc> {
        let scale = self.inner.lock().expect("sim lock").scenario.time_scale.max(0.001);
        let elapsed = self.started.elapsed().as_secs_f64() * scale;
        self.epoch + chrono::Duration::milliseconds((elapsed * 1000.0) as i64)
    }

    async fn sleep_sim(&self, secs: f64) {
        let scale = self.inner.lock().expect("sim lock").scenario.time_scale.max(0.001);
        if secs > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(secs / scale)).await;
        }
    }

    /// Calls placed so far.
    pub fn calls(&self) -> Vec<SimCall> {
        self.inner.lock().expect("sim lock").calls.clone()
    }

    fn call(&self, sid: &str) -> Option<SimCall> {
        let g = self.inner.lock().expect("sim lock");
        g.by_sid.get(sid).map(|i| g.calls[*i].clone())
    }

    /// Webhooks sent so far, in send order.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inner.lock().expect("sim lock").deliveries.clone()
    }

    /// REST requests received so far (method and operation, status answered).
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().expect("sim lock").requests.clone()
    }

    /// The current scenario.
    pub fn scenario(&self) -> Scenario {
        self.inner.lock().expect("sim lock").scenario.clone()
    }

    /// Replaces the scenario (applies to calls placed afterwards).
    pub fn set_scenario(&self, scenario: Scenario) {
        self.google.lock().expect("google lock").set_token_failures(scenario.google.token_failures);
        let mut g = self.inner.lock().expect("sim lock");
        g.slots = Arc::new(Semaphore::new(scenario.max_concurrency.max(1)));
        g.fault_rng = StdRng::seed_from_u64(scenario.seed.wrapping_add(7));
        g.scenario = scenario;
    }

    fn record(&self, what: String, status: u16) {
        self.inner.lock().expect("sim lock").requests.push(Recorded { what, status });
    }

    fn account_sid(&self) -> String {
        self.inner.lock().expect("sim lock").settings.account_sid.clone()
    }

    /// REST faults: 5xx, 429 (+Retry-After), slow replies.
    async fn api_fault(&self, what: &str, flavor: Flavor) -> Option<Response> {
        let (slow, roll429, roll5xx, f) = {
            let mut g = self.inner.lock().expect("sim lock");
            let f = g.scenario.faults.clone();
            let a: f64 = g.fault_rng.random();
            let b: f64 = g.fault_rng.random();
            (f.slow_ms, a < f.api_429_rate, b < f.api_5xx_rate, f)
        };
        if slow > 0 {
            tokio::time::sleep(Duration::from_millis(slow)).await;
        }
        let resp = if roll429 {
            let mut r = match flavor {
                Flavor::Twilio => errors::twilio_error(429, 20429, "Too Many Requests"),
                Flavor::ElevenLabs => {
                    errors::el_error(429, "too_many_concurrent_requests", "Too many concurrent requests")
                }
                Flavor::Google => google::quota_error(60_000),
            };
            if let Some(s) = f.retry_after_secs {
                r.headers_mut().insert("retry-after", s.to_string().parse().expect("number header"));
            }
            r
        } else if roll5xx {
            match flavor {
                Flavor::Twilio => errors::twilio_error(503, 20500, "Service Unavailable"),
                Flavor::ElevenLabs => errors::el_error(503, "system_busy", "System busy"),
                Flavor::Google => google::g_error(503, "UNAVAILABLE", "The service is currently unavailable."),
            }
        } else {
            return None;
        };
        self.record(what.to_owned(), resp.status().as_u16());
        Some(resp)
    }

    /// Creates a call and starts its playout.
    fn place(
        &self,
        to: String,
        from: String,
        wants: Wants,
        urls: Urls,
        conversation: Option<(String, String)>,
    ) -> SimCall {
        let mut g = self.inner.lock().expect("sim lock");
        let index = g.calls.len() as u64;
        let sid = random_hex("CA", 32);
        let script = script::script(&g.scenario, index, &wants);
        let now = wall();
        let call = SimCall {
            index,
            sid: sid.clone(),
            to,
            from,
            status: "queued".into(),
            answered_by: None,
            duration: None,
            script,
            conversation_id: conversation.as_ref().map(|c| c.0.clone()),
            agent_id: conversation.map(|c| c.1),
            recording_sid: None,
            record: wants.record,
            created_at: now,
            started_at: None,
            answered_at: None,
            ended_at: None,
            updated_at: now,
            urls,
            pending_recording: wants.record.then(|| random_hex("RE", 32)),
            hung_up: false,
            next_sequence: 0,
            wants,
        };
        if let Some(conv) =
            g.conversations.iter_mut().find(|v| Some(&v.conversation_id) == call.conversation_id.as_ref())
        {
            conv.call_sid = Some(sid.clone());
        }
        let at = g.calls.len();
        g.by_sid.insert(sid, at);
        g.calls.push(call.clone());
        // The CPS slot is taken now, so calls leave the queue in the order they were created.
        let cps = g.scenario.cps.max(0.001) * g.scenario.time_scale.max(0.001);
        let slot = g.next_slot.max(Instant::now());
        g.next_slot = slot + Duration::from_secs_f64(1.0 / cps);
        drop(g);
        let sim = self.clone();
        let sid = call.sid.clone();
        tokio::spawn(async move { sim.play(sid, slot).await });
        call
    }

    fn update_call(&self, sid: &str, f: impl FnOnce(&mut SimCall)) -> Option<SimCall> {
        let mut g = self.inner.lock().expect("sim lock");
        let i = *g.by_sid.get(sid)?;
        f(&mut g.calls[i]);
        Some(g.calls[i].clone())
    }

    /// Deletes a recording (Twilio `DELETE …/Recordings/{sid}.json`, retention):
    /// its call keeps no recording. False when no call has that recording.
    pub(crate) fn delete_recording(&self, sid: &str) -> bool {
        let mut g = self.inner.lock().expect("sim lock");
        match g.calls.iter_mut().find(|c| c.recording_sid.as_deref() == Some(sid)) {
            Some(c) => {
                c.recording_sid = None;
                c.pending_recording = None;
                true
            }
            None => false,
        }
    }

    fn update_conversation(&self, id: Option<&String>, f: impl FnOnce(&mut Conversation)) {
        let mut g = self.inner.lock().expect("sim lock");
        if let Some(conv) = g.conversations.iter_mut().find(|v| Some(&v.conversation_id) == id) {
            f(conv);
        }
    }

    /// Plays a call: waits for its CPS slot and a concurrency permit, then runs
    /// its lifecycle (the state `GET Calls/{sid}` shows) and sends its webhooks,
    /// in simulated time.
    async fn play(&self, sid: String, slot: Instant) {
        let slots = self.inner.lock().expect("sim lock").slots.clone();
        tokio::time::sleep_until(slot.into()).await;
        let Ok(_permit) = slots.acquire_owned().await else { return };
        let Some(call) = self.update_call(&sid, |c| {
            if !c.hung_up {
                c.started_at = Some(wall());
                c.updated_at = wall();
            }
        }) else {
            return;
        };
        enum Ev {
            Life(script::Phase),
            Hook(Step),
        }
        // State changes first at equal times, so a callback never announces
        // something `GET Calls/{sid}` does not show yet.
        let mut events: Vec<(f64, u8, Ev)> =
            call.script.lifecycle(&call.wants).into_iter().map(|(at, p)| (at, 0, Ev::Life(p))).collect();
        events.extend(call.script.steps.iter().cloned().map(|s| (s.at_secs, 1, Ev::Hook(s))));
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut elapsed = 0.0;
        for (at, _, ev) in events {
            if call.hung_up {
                break;
            }
            self.sleep_sim(at - elapsed).await;
            elapsed = at.max(elapsed);
            if self.call(&sid).is_none_or(|c| c.hung_up) {
                break; // hung up through the API: nothing scripted happens any more
            }
            match ev {
                Ev::Life(phase) => self.apply_phase(&sid, phase),
                Ev::Hook(step) => {
                    if let Some(now) = self.call(&sid) {
                        self.deliver(&now, &step).await;
                    }
                }
            }
        }
    }

    fn apply_phase(&self, sid: &str, phase: script::Phase) {
        use script::Phase;
        let now = wall();
        let Some(call) = self.update_call(sid, |c| {
            c.updated_at = now;
            match &phase {
                Phase::Ringing => c.status = "ringing".into(),
                Phase::Answered => {
                    c.status = "in-progress".into();
                    c.answered_at = Some(now);
                }
                Phase::AnsweredBy(v) => c.answered_by = Some((*v).into()),
                Phase::Ended(s) => {
                    c.status = (*s).into();
                    c.ended_at = Some(now);
                    c.duration = Some(if *s == "completed" { c.script.talk_secs as u64 } else { 0 });
                }
                Phase::Recorded => c.recording_sid = c.pending_recording.clone(),
                Phase::ConversationFinal => {}
            }
        }) else {
            return;
        };
        let answered = matches!(call.script.outcome, Outcome::Human | Outcome::Voicemail);
        let talk = call.script.talk_secs as i64;
        match phase {
            Phase::Answered => self.update_conversation(call.conversation_id.as_ref(), |v| {
                v.status = "in-progress".into();
                v.start_time_unix_secs = now.timestamp();
            }),
            Phase::Ended(_) if answered => self.update_conversation(call.conversation_id.as_ref(), |v| {
                v.status = "processing".into();
                v.call_duration_secs = talk;
            }),
            Phase::ConversationFinal => self.update_conversation(call.conversation_id.as_ref(), |v| {
                if answered {
                    v.status = "done".into();
                    v.call_successful =
                        if call.script.outcome == Outcome::Human { "success" } else { "failure" }.into();
                } else {
                    v.status = "failed".into();
                }
            }),
            _ => {}
        }
    }

    async fn deliver(&self, call: &SimCall, step: &Step) {
        let (url, signer) = {
            let g = self.inner.lock().expect("sim lock");
            let s = &g.settings;
            match step.kind.as_str() {
                "status" => (call.urls.status.clone(), s.auth_token.clone()),
                "amd" => (call.urls.amd.clone(), s.auth_token.clone()),
                "recording" => (call.urls.recording.clone(), s.auth_token.clone()),
                _ => (s.elevenlabs_webhook_url.clone(), s.elevenlabs_webhook_secret.clone()),
            }
        };
        let Some(url) = url else { return };
        let key = if step.bad_signature { format!("{signer}-wrong") } else { signer };
        let req = if step.kind == "elevenlabs" {
            let body = serde_json::to_vec(&self.elevenlabs_body(call, &step.value)).expect("json");
            let sig = elevenlabs_signature(&key, wall().timestamp(), &body);
            self.http
                .post(&url)
                .header("content-type", "application/json")
                .header("elevenlabs-signature", sig)
                .body(body)
        } else {
            let params = self.twilio_params(call, step);
            let sig = twilio_signature(&key, &url, &params);
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
            self.http
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .header("x-twilio-signature", sig)
                .body(body)
        };
        let sent_at = wall();
        if let Some(n) = step.sequence {
            self.update_call(&call.sid, |c| c.next_sequence = c.next_sequence.max(n + 1));
        }
        let status = req.send().await.ok().map(|r| r.status().as_u16());
        self.inner.lock().expect("sim lock").deliveries.push(Delivery {
            call_sid: call.sid.clone(),
            kind: step.kind.clone(),
            value: step.value.clone(),
            sequence: step.sequence,
            url,
            response_status: status,
            bad_signature: step.bad_signature,
            sent_at,
        });
    }

    /// The simulator's routes. Anything it does not simulate under a
    /// provider's prefix is answered with that provider's error envelope
    /// (404 for unknown paths, 405 for wrong methods).
    pub fn router(&self) -> axum::Router {
        let t = "/2010-04-01/Accounts/{account}";
        axum::Router::new()
            .route(&format!("{t}/Calls.json"), post(twilio::create_call).get(twilio::list_calls))
            .route(&format!("{t}/Calls/{{file}}"), get(twilio::fetch_call).post(twilio::update_call))
            .route(&format!("{t}/Calls/{{sid}}/Recordings.json"), get(twilio::list_recordings))
            .route(&format!("{t}/Recordings.json"), get(twilio::list_all_recordings))
            .route(&format!("{t}/Recordings/{{file}}"), get(twilio::fetch_recording).delete(twilio::delete_recording))
            .route("/v1/convai/twilio/outbound-call", post(elevenlabs::outbound_call))
            .route("/v1/convai/twilio/register-call", post(elevenlabs::register_call))
            .route("/v1/convai/conversations", get(elevenlabs::list_conversations))
            .route("/v1/convai/conversations/{id}", get(elevenlabs::get_conversation))
            .route("/v1/convai/conversations/{id}/audio", get(elevenlabs::conversation_audio))
            .route("/token", post(google::token))
            .route("/v4/spreadsheets/{id}", get(google::get_spreadsheet).post(google::spreadsheet_action))
            .route("/v4/spreadsheets/{id}/values:batchGet", get(google::batch_get))
            .route("/v4/spreadsheets/{id}/values:batchUpdate", post(google::batch_update))
            .route("/v4/spreadsheets/{id}/values:batchClear", post(google::batch_clear))
            .route(
                "/v4/spreadsheets/{id}/values/{range}",
                get(google::get_values).put(google::update_values).post(google::range_action),
            )
            .route("/drive/v3/files", get(google::drive_list))
            .route("/drive/v3/files/{id}", get(google::drive_file))
            .route("/__sim/google/spreadsheets", post(google::control_create))
            .route("/__sim/google/spreadsheets/{id}", get(google::control_get))
            .route("/__sim/google/spreadsheets/{id}/edits", post(google::control_edit))
            .route("/__sim/google/spreadsheets/{id}/sharing", post(google::control_share))
            .route("/__sim/google/requests", get(google::control_requests))
            .route("/__sim/google/accounts", post(google::control_account))
            .route("/__sim/google/revoke-tokens", post(google::control_revoke))
            .route("/__sim/scenario", get(get_scenario).put(put_scenario))
            .route("/__sim/calls", get(list_sim_calls))
            .route("/__sim/deliveries", get(list_deliveries))
            .route("/__sim/requests", get(list_requests))
            .fallback(errors::not_found)
            .method_not_allowed_fallback(errors::method_not_allowed)
            .layer(axum::middleware::from_fn(errors::envelope))
            .with_state(self.clone())
    }
}

/// A tiny valid MP3 frame header followed by silence, served as recording and conversation audio.
const SILENT_MP3: &[u8] = &[0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

async fn get_scenario(State(sim): State<Simulator>) -> Json<Scenario> {
    Json(sim.inner.lock().expect("sim lock").scenario.clone())
}

async fn put_scenario(State(sim): State<Simulator>, Json(s): Json<Scenario>) -> Json<Scenario> {
    sim.set_scenario(s.clone());
    Json(s)
}

async fn list_sim_calls(State(sim): State<Simulator>) -> Json<Vec<SimCall>> {
    Json(sim.calls())
}

async fn list_deliveries(State(sim): State<Simulator>) -> Json<Vec<Delivery>> {
    Json(sim.deliveries())
}

async fn list_requests(State(sim): State<Simulator>) -> Json<Vec<Recorded>> {
    Json(sim.inner.lock().expect("sim lock").requests.clone())
}
