//! The telephony simulator: a local Twilio + ElevenLabs that Switchboard's
//! clients talk to, so every feature is tested offline and users can try a
//! whole campaign without spending on calls (`switchboard sim`).
//!
//! - Twilio: `POST …/Calls.json` (Basic auth, validation, CPS queueing and a
//!   concurrency limit), `GET …/Calls/{sid}.json`, recordings and media.
//!   A placed call plays out in simulated time ([`script`]): status
//!   callbacks with correct `SequenceNumber`s, async AMD, a recording
//!   callback, each signed exactly as Twilio signs (X-Twilio-Signature over
//!   the callback URL).
//! - ElevenLabs: `outbound-call`, `register-call` (TwiML that links the call
//!   to a conversation), conversations list/get/audio, and the post-call
//!   webhook (`ElevenLabs-Signature`) with a transcript and analysis.
//! - Faults: REST 5xx / 429 (+`Retry-After`) / slow replies, duplicated,
//!   reordered and dropped webhooks, bad signatures.
//! - Control API under `/__sim`: scenario get/put, placed calls, webhook
//!   deliveries, recorded requests, reset.
//!
//! - Google ([`google`]): the OAuth2 token endpoint (RS256 assertions
//!   checked against registered service-account keys), Sheets v4 values
//!   over in-memory grids, Drive `files.get` with a `version` that bumps on
//!   every change, and "human" edits through the control API.

pub mod google;
pub mod script;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

pub use script::{Faults, Outcome, OutcomeMix, Scenario, Script, Step, Wants};

use crate::webhooks::verify::{elevenlabs_signature, twilio_signature};

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
    /// Order placed.
    pub index: u64,
    /// `CA…`.
    pub sid: String,
    /// Destination.
    pub to: String,
    /// Caller.
    pub from: String,
    /// Current Twilio status.
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
    /// Recording, when made.
    pub recording_sid: Option<String>,
    /// When it was created (simulated clock).
    pub created_at: DateTime<Utc>,
    /// When it started playing (after CPS/concurrency queueing).
    pub started_at: Option<DateTime<Utc>>,
    #[serde(skip)]
    urls: Urls,
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
    to_number: String,
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

fn hex_id(rng: &mut StdRng, prefix: &str) -> String {
    let mut s = String::from(prefix);
    for _ in 0..32 {
        s.push(char::from_digit(rng.random_range(0..16), 16).expect("digit"));
    }
    s
}

/// Which provider's error envelope a fault uses.
#[derive(Debug, Clone, Copy)]
enum Flavor {
    Twilio,
    ElevenLabs,
    Google,
}

fn twilio_time(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = json!({ "code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status });
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

fn el_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({ "detail": { "status": code, "message": message } })),
    )
        .into_response()
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
            epoch: switchboard_domain::time::now_ms(),
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

    /// The simulated clock: real time since start, scaled.
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
                Flavor::Twilio => twilio_error(429, 20429, "Too Many Requests"),
                Flavor::ElevenLabs => el_error(429, "too_many_concurrent_requests", "Too many concurrent requests"),
                Flavor::Google => google::quota_error(60_000),
            };
            if let Some(s) = f.retry_after_secs {
                r.headers_mut().insert("retry-after", s.to_string().parse().expect("number header"));
            }
            r
        } else if roll5xx {
            match flavor {
                Flavor::Twilio => twilio_error(503, 20500, "Service Unavailable"),
                Flavor::ElevenLabs => el_error(503, "system_busy", "System busy"),
                Flavor::Google => google::g_error(503, "UNAVAILABLE", "The service is currently unavailable."),
            }
        } else {
            return None;
        };
        self.record(what.to_owned(), resp.status().as_u16());
        Some(resp)
    }

    fn twilio_authorised(&self, account: &str, headers: &HeaderMap) -> bool {
        let g = self.inner.lock().expect("sim lock");
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", g.settings.account_sid, g.settings.auth_token))
        );
        account == g.settings.account_sid
            && headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }

    fn call_json(&self, c: &SimCall) -> Value {
        let account = self.inner.lock().expect("sim lock").settings.account_sid.clone();
        let terminal = ["completed", "busy", "no-answer", "failed", "canceled"].contains(&c.status.as_str());
        json!({
            "sid": c.sid, "account_sid": account, "to": c.to, "from": c.from, "status": c.status,
            "direction": "outbound-api", "answered_by": c.answered_by,
            "duration": if terminal { c.duration.map(|d| d.to_string()) } else { None },
            "start_time": c.started_at.map(twilio_time), "end_time": null, "price": null, "price_unit": "USD",
            "queue_time": "0", "date_created": twilio_time(c.created_at),
            "uri": format!("/2010-04-01/Accounts/{account}/Calls/{}.json", c.sid),
        })
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
        let mut rng = StdRng::seed_from_u64(g.scenario.seed.wrapping_mul(31).wrapping_add(index));
        let sid = hex_id(&mut rng, "CA");
        let script = script::script(&g.scenario, index, &wants);
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
            created_at: switchboard_domain::time::now_ms(),
            started_at: None,
            urls,
        };
        let at = g.calls.len();
        g.by_sid.insert(sid, at);
        g.calls.push(call.clone());
        drop(g);
        let sim = self.clone();
        let sid = call.sid.clone();
        tokio::spawn(async move { sim.play(sid).await });
        call
    }

    fn update_call(&self, sid: &str, f: impl FnOnce(&mut SimCall)) -> Option<SimCall> {
        let mut g = self.inner.lock().expect("sim lock");
        let i = *g.by_sid.get(sid)?;
        f(&mut g.calls[i]);
        Some(g.calls[i].clone())
    }

    /// Plays a call: waits for a CPS slot and a concurrency permit, then sends its script.
    async fn play(&self, sid: String) {
        let (slots, wait) = {
            let mut g = self.inner.lock().expect("sim lock");
            let cps = g.scenario.cps.max(0.001) * g.scenario.time_scale.max(0.001);
            let now = Instant::now();
            let slot = g.next_slot.max(now);
            g.next_slot = slot + Duration::from_secs_f64(1.0 / cps);
            (g.slots.clone(), slot - now)
        };
        tokio::time::sleep(wait).await;
        let Ok(_permit) = slots.acquire_owned().await else { return };
        let now = self.now();
        let Some(call) = self.update_call(&sid, |c| c.started_at = Some(now)) else { return };
        let mut elapsed = 0.0;
        for step in call.script.steps.clone() {
            self.sleep_sim(step.at_secs - elapsed).await;
            elapsed = step.at_secs.max(elapsed);
            self.apply_step(&call, &step);
            self.deliver(&call, &step).await;
        }
        if call.script.steps.is_empty() {
            // No callbacks subscribed: the call still ends.
            self.sleep_sim(call.script.ring_secs + call.script.talk_secs).await;
            let end = match call.script.outcome {
                Outcome::Human | Outcome::Voicemail => "completed",
                Outcome::Busy => "busy",
                Outcome::NoAnswer => "no-answer",
                Outcome::Failed => "failed",
            };
            self.update_call(&sid, |c| c.status = end.into());
        }
    }

    fn apply_step(&self, call: &SimCall, step: &Step) {
        let talk = call.script.talk_secs as u64;
        let mut rng = StdRng::seed_from_u64(call.index.wrapping_mul(977));
        let rec = hex_id(&mut rng, "RE");
        self.update_call(&call.sid, |c| match step.kind.as_str() {
            "status" => {
                let rank = |s: &str| match s {
                    "queued" => 0,
                    "initiated" => 1,
                    "ringing" => 2,
                    "in-progress" => 3,
                    _ => 4,
                };
                if rank(&step.value) > rank(&c.status) {
                    c.status = step.value.clone();
                    if rank(&step.value) == 4 {
                        c.duration = Some(if step.value == "completed" { talk } else { 0 });
                    }
                }
            }
            "amd" => c.answered_by = Some(step.value.clone()),
            "recording" => c.recording_sid = Some(rec.clone()),
            _ => {}
        });
        if step.kind == "elevenlabs" {
            let mut g = self.inner.lock().expect("sim lock");
            if let Some(conv) =
                g.conversations.iter_mut().find(|v| Some(&v.conversation_id) == call.conversation_id.as_ref())
            {
                conv.status = if step.value == "post_call_transcription" { "done".into() } else { "failed".into() };
                conv.call_duration_secs = talk as i64;
                conv.call_sid = Some(call.sid.clone());
            }
        }
    }

    fn twilio_params(&self, call: &SimCall, step: &Step) -> Vec<(String, String)> {
        let account = self.inner.lock().expect("sim lock").settings.account_sid.clone();
        let now = twilio_time(self.now());
        let mut p: Vec<(String, String)> = vec![("AccountSid".into(), account), ("CallSid".into(), call.sid.clone())];
        match step.kind.as_str() {
            "status" => {
                p.extend([
                    ("ApiVersion".into(), "2010-04-01".into()),
                    ("CallStatus".into(), step.value.clone()),
                    ("CallbackSource".into(), "call-progress-events".into()),
                    ("Called".into(), call.to.clone()),
                    ("Caller".into(), call.from.clone()),
                    ("Direction".into(), "outbound-api".into()),
                    ("From".into(), call.from.clone()),
                    ("To".into(), call.to.clone()),
                    ("SequenceNumber".into(), step.sequence.unwrap_or(0).to_string()),
                    ("Timestamp".into(), now),
                ]);
                let sip = match step.value.as_str() {
                    "completed" => Some("200"),
                    "busy" => Some("486"),
                    "no-answer" => Some("487"),
                    "failed" => Some("404"),
                    _ => None,
                };
                if let Some(sip) = sip {
                    let secs = if step.value == "completed" { call.script.talk_secs as u64 } else { 0 };
                    p.push(("CallDuration".into(), secs.to_string()));
                    p.push(("SipResponseCode".into(), sip.into()));
                    if step.value == "completed" {
                        p.push(("Duration".into(), secs.div_ceil(60).max(1).to_string()));
                    }
                }
            }
            "amd" => {
                p.push(("AnsweredBy".into(), step.value.clone()));
                p.push(("MachineDetectionDuration".into(), "2400".into()));
            }
            _ => {
                let rec = self
                    .calls()
                    .into_iter()
                    .find(|c| c.sid == call.sid)
                    .and_then(|c| c.recording_sid)
                    .unwrap_or_default();
                let account = p[0].1.clone();
                p.extend([
                    ("RecordingSid".into(), rec.clone()),
                    (
                        "RecordingUrl".into(),
                        format!("https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{rec}"),
                    ),
                    ("RecordingStatus".into(), "completed".into()),
                    ("RecordingDuration".into(), (call.script.talk_secs as u64).to_string()),
                    ("RecordingChannels".into(), "2".into()),
                    ("RecordingSource".into(), "OutboundAPI".into()),
                    ("RecordingStartTime".into(), now),
                    ("ErrorCode".into(), "0".into()),
                ]);
            }
        }
        p
    }

    fn elevenlabs_body(&self, call: &SimCall, step: &Step) -> Value {
        let conv = call.conversation_id.clone().unwrap_or_default();
        let agent = call.agent_id.clone().unwrap_or_default();
        let now = self.now().timestamp();
        if step.value == "call_initiation_failure" {
            let reason = match call.script.outcome {
                Outcome::Busy => "busy",
                Outcome::NoAnswer => "no-answer",
                _ => "unknown",
            };
            return json!({ "type": "call_initiation_failure", "event_timestamp": now,
                "data": { "agent_id": agent, "conversation_id": conv, "failure_reason": reason,
                          "metadata": { "type": "twilio", "body": { "CallSid": call.sid, "CallStatus": reason } } } });
        }
        let talk = call.script.talk_secs as i64;
        let human = call.script.outcome == Outcome::Human;
        let transcript = if human {
            json!([
                { "role": "agent", "message": "Hi, this is a quick call about your appointment. Is now a good time?", "time_in_call_secs": 0 },
                { "role": "user", "message": "Sure, go ahead.", "time_in_call_secs": 4 },
                { "role": "agent", "message": "Great. Can we confirm Thursday at 10am?", "time_in_call_secs": 7 },
                { "role": "user", "message": "Yes, Thursday works. Thanks!", "time_in_call_secs": 12 }
            ])
        } else {
            json!([{ "role": "agent", "message": "Hi, sorry we missed you. We will call back later.", "time_in_call_secs": 0 }])
        };
        let dynamic = self
            .inner
            .lock()
            .expect("sim lock")
            .conversations
            .iter()
            .find(|c| c.conversation_id == conv)
            .map(|c| c.dynamic_variables.clone())
            .unwrap_or(json!({}));
        let mut dynamic = dynamic.as_object().cloned().unwrap_or_default();
        dynamic.insert("system__call_sid".into(), json!(call.sid));
        dynamic.insert("system__conversation_id".into(), json!(conv));
        json!({
            "type": "post_call_transcription", "event_timestamp": now,
            "data": {
                "agent_id": agent, "conversation_id": conv, "status": "done",
                "transcript": transcript,
                "metadata": { "start_time_unix_secs": now - talk, "call_duration_secs": talk, "cost": 10 * talk,
                    "termination_reason": if human { "end_call tool was called." } else { "voicemail detected" },
                    "phone_call": { "type": "twilio", "direction": "outbound", "agent_number": call.from, "external_number": call.to, "call_sid": call.sid } },
                "analysis": {
                    "call_successful": if human { "success" } else { "failure" },
                    "transcript_summary": if human { "The contact confirmed the Thursday 10am appointment." } else { "Reached voicemail; no conversation." },
                    "evaluation_criteria_results": { "confirmed": { "criteria_id": "confirmed", "result": if human { "success" } else { "failure" }, "rationale": "Simulated." } },
                    "data_collection_results": { "slot": { "data_collection_id": "slot", "value": if human { json!("Thursday 10am") } else { Value::Null }, "rationale": "Simulated." } }
                },
                "conversation_initiation_client_data": { "dynamic_variables": dynamic },
                "has_audio": true
            }
        })
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
            let body = serde_json::to_vec(&self.elevenlabs_body(call, step)).expect("json");
            let sig = elevenlabs_signature(&key, switchboard_domain::time::now_ms().timestamp(), &body);
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
        let status = req.send().await.ok().map(|r| r.status().as_u16());
        self.inner.lock().expect("sim lock").deliveries.push(Delivery {
            call_sid: call.sid.clone(),
            kind: step.kind.clone(),
            value: step.value.clone(),
            sequence: step.sequence,
            url,
            response_status: status,
            bad_signature: step.bad_signature,
        });
    }

    /// The simulator's routes.
    pub fn router(&self) -> axum::Router {
        axum::Router::new()
            .route("/2010-04-01/Accounts/{account}/Calls.json", post(create_call))
            .route("/2010-04-01/Accounts/{account}/Calls/{file}", get(fetch_call))
            .route("/2010-04-01/Accounts/{account}/Calls/{sid}/Recordings.json", get(list_recordings))
            .route("/2010-04-01/Accounts/{account}/Recordings/{file}", get(fetch_recording))
            .route("/v1/convai/twilio/outbound-call", post(outbound_call))
            .route("/v1/convai/twilio/register-call", post(register_call))
            .route("/v1/convai/conversations", get(list_conversations))
            .route("/v1/convai/conversations/{id}", get(get_conversation))
            .route("/v1/convai/conversations/{id}/audio", get(conversation_audio))
            .route("/token", post(google::token))
            .route("/v4/spreadsheets/{id}", get(google::get_spreadsheet))
            .route("/v4/spreadsheets/{id}/values:batchGet", get(google::batch_get))
            .route("/v4/spreadsheets/{id}/values:batchUpdate", post(google::batch_update))
            .route(
                "/v4/spreadsheets/{id}/values/{range}",
                get(google::get_values).put(google::update_values).post(google::range_action),
            )
            .route("/drive/v3/files/{id}", get(google::drive_file))
            .route("/__sim/google/spreadsheets", post(google::control_create))
            .route("/__sim/google/spreadsheets/{id}", get(google::control_get))
            .route("/__sim/google/spreadsheets/{id}/edits", post(google::control_edit))
            .route("/__sim/google/accounts", post(google::control_account))
            .route("/__sim/google/revoke-tokens", post(google::control_revoke))
            .route("/__sim/scenario", get(get_scenario).put(put_scenario))
            .route("/__sim/calls", get(list_sim_calls))
            .route("/__sim/deliveries", get(list_deliveries))
            .route("/__sim/requests", get(list_requests))
            .with_state(self.clone())
    }
}

async fn create_call(
    State(sim): State<Simulator>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let what = "POST Calls.json".to_owned();
    if !sim.twilio_authorised(&account, &headers) {
        sim.record(what, 401);
        return twilio_error(401, 20003, "Authenticate");
    }
    if let Some(r) = sim.api_fault(&what, Flavor::Twilio).await {
        return r;
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let (Some(to), Some(from)) = (one("To"), one("From")) else {
        sim.record(what, 400);
        return twilio_error(400, 21201, "No 'To' or 'From' number is specified");
    };
    if !to.starts_with('+') || to.len() < 8 || !to[1..].chars().all(|c| c.is_ascii_digit()) {
        sim.record(what, 400);
        return twilio_error(400, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    let twiml = one("Twiml");
    if one("Url").is_none() && twiml.is_none() && one("ApplicationSid").is_none() {
        sim.record(what, 400);
        return twilio_error(400, 21205, "Url, Twiml or ApplicationSid is required");
    }
    let events: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let urls = Urls {
        status: one("StatusCallback"),
        amd: one("AsyncAmdStatusCallback"),
        recording: one("RecordingStatusCallback"),
    };
    // register-call TwiML carries the conversation it belongs to.
    let conversation = twiml.as_deref().and_then(|t| {
        let id = t.split("name=\"conversation_id\" value=\"").nth(1)?.split('"').next()?.to_owned();
        let g = sim.inner.lock().expect("sim lock");
        g.conversations
            .iter()
            .find(|c| c.conversation_id == id)
            .map(|c| (c.conversation_id.clone(), c.agent_id.clone()))
    });
    let wants = Wants {
        events,
        status_callback: urls.status.is_some(),
        amd: one("AsyncAmd").as_deref() == Some("true") && urls.amd.is_some(),
        recording: one("Record").as_deref() == Some("true") && urls.recording.is_some(),
        conversation: conversation.is_some(),
    };
    let call = sim.place(to, from, wants, urls, conversation);
    sim.record(what, 201);
    (StatusCode::CREATED, Json(sim.call_json(&call))).into_response()
}

async fn fetch_call(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    if let Some(r) = sim.api_fault("GET Calls/{sid}.json", Flavor::Twilio).await {
        return r;
    }
    let sid = file.trim_end_matches(".json");
    match sim.calls().into_iter().find(|c| c.sid == sid) {
        Some(c) => Json(sim.call_json(&c)).into_response(),
        None => twilio_error(404, 20404, &format!("The requested resource /Calls/{sid}.json was not found")),
    }
}

fn recording_json(sim: &Simulator, c: &SimCall) -> Option<Value> {
    let rec = c.recording_sid.clone()?;
    let account = sim.inner.lock().expect("sim lock").settings.account_sid.clone();
    Some(
        json!({ "sid": rec, "account_sid": account, "call_sid": c.sid, "duration": (c.script.talk_secs as u64).to_string(),
                 "status": "completed", "channels": 2, "source": "OutboundAPI", "date_created": c.started_at.map(twilio_time) }),
    )
}

async fn list_recordings(
    State(sim): State<Simulator>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let recs: Vec<Value> =
        sim.calls().iter().filter(|c| c.sid == sid).filter_map(|c| recording_json(&sim, c)).collect();
    Json(json!({ "recordings": recs, "next_page_uri": null, "page": 0, "page_size": 50 })).into_response()
}

/// A tiny valid MP3 frame header followed by silence, served as recording and conversation audio.
const SILENT_MP3: &[u8] = &[0xFF, 0xFB, 0x90, 0x64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

async fn fetch_recording(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let (sid, ext) = file.rsplit_once('.').unwrap_or((file.as_str(), "wav"));
    let Some(call) = sim.calls().into_iter().find(|c| c.recording_sid.as_deref() == Some(sid)) else {
        return twilio_error(404, 20404, "Recording not found");
    };
    match ext {
        "json" => Json(recording_json(&sim, &call)).into_response(),
        "mp3" => ([("content-type", "audio/mpeg")], SILENT_MP3).into_response(),
        _ => ([("content-type", "audio/x-wav")], SILENT_MP3).into_response(),
    }
}

fn el_authorised(sim: &Simulator, headers: &HeaderMap) -> bool {
    let key = sim.inner.lock().expect("sim lock").settings.elevenlabs_api_key.clone();
    headers.get("xi-api-key").and_then(|v| v.to_str().ok()) == Some(key.as_str())
}

fn missing(fields: &[&str]) -> Response {
    let detail: Vec<Value> =
        fields.iter().map(|f| json!({ "loc": ["body", f], "msg": "Field required", "type": "missing" })).collect();
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": detail }))).into_response()
}

fn new_conversation(sim: &Simulator, agent: &str, to: &str, client_data: Option<&Value>) -> String {
    let mut g = sim.inner.lock().expect("sim lock");
    let n = g.conversations.len() as u64;
    let mut rng = StdRng::seed_from_u64(g.scenario.seed.wrapping_mul(131).wrapping_add(n));
    let id = format!("conv_{}", &hex_id(&mut rng, "")[..28]);
    g.conversations.push(Conversation {
        conversation_id: id.clone(),
        agent_id: agent.into(),
        to_number: to.into(),
        call_sid: None,
        status: "initiated".into(),
        start_time_unix_secs: switchboard_domain::time::now_ms().timestamp(),
        call_duration_secs: 0,
        call_successful: "unknown".into(),
        user_id: client_data.and_then(|d| d.get("user_id")).and_then(Value::as_str).map(str::to_owned),
        dynamic_variables: client_data.and_then(|d| d.get("dynamic_variables")).cloned().unwrap_or(json!({})),
    });
    id
}

async fn outbound_call(State(sim): State<Simulator>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    if let Some(r) = sim.api_fault("POST outbound-call", Flavor::ElevenLabs).await {
        return r;
    }
    let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let absent: Vec<&str> =
        ["agent_id", "agent_phone_number_id", "to_number"].into_iter().filter(|k| field(k).is_none()).collect();
    if !absent.is_empty() {
        return missing(&absent);
    }
    let (agent, to) = (field("agent_id").unwrap_or_default(), field("to_number").unwrap_or_default());
    let conv = new_conversation(&sim, &agent, &to, body.get("conversation_initiation_client_data"));
    // Native mode: ElevenLabs creates the Twilio call and receives its status callbacks itself.
    let wants = Wants { conversation: true, ..Default::default() };
    let call = sim.place(to, "+15005550001".into(), wants, Urls::default(), Some((conv.clone(), agent)));
    sim.record("POST outbound-call".into(), 200);
    Json(json!({ "success": true, "message": "Success", "conversation_id": conv, "callSid": call.sid })).into_response()
}

async fn register_call(State(sim): State<Simulator>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let absent: Vec<&str> =
        ["agent_id", "from_number", "to_number", "direction"].into_iter().filter(|k| field(k).is_none()).collect();
    if !absent.is_empty() {
        return missing(&absent);
    }
    let agent = field("agent_id").unwrap_or_default();
    let conv = new_conversation(
        &sim,
        &agent,
        &field("to_number").unwrap_or_default(),
        body.get("conversation_initiation_client_data"),
    );
    sim.record("POST register-call".into(), 200);
    let twiml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://sim.invalid/v1/convai/conversation?agent_id={agent}"><Parameter name="conversation_id" value="{conv}"/></Stream></Connect></Response>"#
    );
    ([("content-type", "text/xml")], twiml).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    cursor: Option<String>,
    page_size: Option<usize>,
    agent_id: Option<String>,
}

fn conversation_summary(c: &Conversation) -> Value {
    json!({ "agent_id": c.agent_id, "conversation_id": c.conversation_id, "start_time_unix_secs": c.start_time_unix_secs,
            "call_duration_secs": c.call_duration_secs, "status": c.status, "call_successful": c.call_successful,
            "direction": "outbound" })
}

async fn list_conversations(State(sim): State<Simulator>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    if let Some(r) = sim.api_fault("GET conversations", Flavor::ElevenLabs).await {
        return r;
    }
    let all: Vec<Value> = {
        let g = sim.inner.lock().expect("sim lock");
        g.conversations
            .iter()
            .rev()
            .filter(|c| q.agent_id.as_ref().is_none_or(|a| &c.agent_id == a))
            .map(conversation_summary)
            .collect()
    };
    let start: usize = q.cursor.as_deref().and_then(|c| c.parse().ok()).unwrap_or(0);
    let size = q.page_size.unwrap_or(30).clamp(1, 100);
    let page: Vec<Value> = all.iter().skip(start).take(size).cloned().collect();
    let more = start + size < all.len();
    Json(json!({ "conversations": page, "next_cursor": if more { Some((start + size).to_string()) } else { None }, "has_more": more }))
        .into_response()
}

async fn get_conversation(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    let call = sim.calls().into_iter().find(|c| c.conversation_id.as_deref() == Some(id.as_str()));
    let conv = sim.inner.lock().expect("sim lock").conversations.iter().find(|c| c.conversation_id == id).cloned();
    match (conv, call) {
        (Some(conv), Some(call)) if conv.status == "done" => {
            let step = Step { at_secs: 0.0, kind: "elevenlabs".into(), value: "post_call_transcription".into(), sequence: None, bad_signature: false };
            let mut data = sim.elevenlabs_body(&call, &step)["data"].clone();
            data["has_audio"] = json!(true);
            Json(data).into_response()
        }
        (Some(conv), _) => Json(json!({ "agent_id": conv.agent_id, "conversation_id": conv.conversation_id, "status": conv.status, "transcript": [], "metadata": {}, "analysis": null })).into_response(),
        _ => el_error(404, "conversation_not_found", "Conversation not found"),
    }
}

async fn conversation_audio(State(sim): State<Simulator>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    let exists = sim.inner.lock().expect("sim lock").conversations.iter().any(|c| c.conversation_id == id);
    if exists {
        ([("content-type", "audio/mpeg")], SILENT_MP3).into_response()
    } else {
        el_error(404, "conversation_not_found", "Conversation not found")
    }
}

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

/// Starts a simulator on a random loopback port and returns settings wired to
/// it: provider base URLs, the simulator's credentials (so its signatures
/// verify) and the ElevenLabs webhook pointed at this server.
pub async fn sandbox(mut settings: crate::config::Settings) -> anyhow::Result<(SimHandle, crate::config::Settings)> {
    use crate::config::Secret;
    let sim = SimSettings {
        elevenlabs_webhook_url: Some(format!("{}/webhooks/elevenlabs", settings.public_base())),
        ..SimSettings::default()
    };
    settings.twilio.account_sid = Some(sim.account_sid.clone());
    settings.twilio.auth_token = Some(Secret::new(sim.auth_token.clone()));
    settings.elevenlabs.api_key = Some(Secret::new(sim.elevenlabs_api_key.clone()));
    settings.elevenlabs.webhook_secret = Some(Secret::new(sim.elevenlabs_webhook_secret.clone()));
    let handle = Simulator::spawn(sim, "127.0.0.1:0".parse().expect("literal address")).await?;
    settings.twilio.api_base = handle.base_url.clone();
    settings.elevenlabs.api_base = handle.base_url.clone();
    settings.google.sheets_api_base = handle.base_url.clone();
    settings.google.drive_api_base = handle.base_url.clone();
    let mut key: serde_json::Value = serde_json::from_str(google::SANDBOX_KEY_JSON).expect("the sandbox key is JSON");
    key["token_uri"] = format!("{}/token", handle.base_url).into();
    settings.google.credentials_json = Some(Secret::new(key.to_string()));
    settings.google.credentials_file = None;
    Ok((handle, settings))
}
