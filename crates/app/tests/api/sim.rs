//! The simulator end to end: Switchboard's own clients place calls on it, it
//! plays them out in simulated time and its signed webhooks land in
//! Switchboard as one merged record per call.

use std::time::Duration;

use switchboard::config::Secret;
use switchboard::integrations::ClientOptions;
use switchboard::integrations::elevenlabs::{ElevenLabsClient, RegisterCall};
use switchboard::integrations::twilio::{CreateCall, TwilioAuth, TwilioClient};
use switchboard::sim::{OutcomeMix, Scenario, SimSettings, Simulator};

use crate::helpers::{EL_SECRET, TWILIO_TOKEN, TestApp};

async fn wait_for(mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..300 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("condition not reached in 15 s");
}

#[tokio::test]
async fn calls_placed_on_the_simulator_come_back_as_merged_records() {
    let app = TestApp::spawn().await;
    let settings = SimSettings {
        auth_token: TWILIO_TOKEN.into(),
        elevenlabs_webhook_secret: EL_SECRET.into(),
        elevenlabs_webhook_url: Some(format!("{}/webhooks/elevenlabs", app.base)),
        scenario: Scenario {
            seed: 42,
            time_scale: 2000.0,
            cps: 5.0,
            outcomes: OutcomeMix { human: 1.0, voicemail: 1.0, busy: 1.0, no_answer: 1.0, failed: 0.0 },
            ..Scenario::default()
        },
        ..SimSettings::default()
    };
    let account = settings.account_sid.clone();
    let api_key = settings.elevenlabs_api_key.clone();
    let sim = Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let twilio = TwilioClient::new(
        &sim.base_url,
        &account,
        TwilioAuth::AuthToken(Secret::new(TWILIO_TOKEN)),
        &ClientOptions::default(),
    );
    let eleven = ElevenLabsClient::new(&sim.base_url, Secret::new(api_key), &ClientOptions::default());

    let n = 8;
    for i in 0..n {
        let to = format!("+1500555{i:04}");
        let twiml = eleven
            .register_call(&RegisterCall {
                agent_id: "agent_sim".into(),
                from_number: "+15005550001".into(),
                to_number: to.clone(),
                direction: "outbound".into(),
                conversation_initiation_client_data: None,
            })
            .await
            .unwrap();
        twilio
            .create_call(&CreateCall {
                to,
                from: "+15005550001".into(),
                twiml: Some(twiml),
                status_callback: Some(format!("{}/webhooks/twilio/status", app.base)),
                status_callback_events: vec![
                    "initiated".into(),
                    "ringing".into(),
                    "answered".into(),
                    "completed".into(),
                ],
                machine_detection: Some("Enable".into()),
                async_amd: true,
                async_amd_status_callback: Some(format!("{}/webhooks/twilio/amd", app.base)),
                ..Default::default()
            })
            .await
            .unwrap();
    }
    let expected: usize = sim.sim.calls().iter().map(|c| c.script.steps.len()).sum();
    wait_for(async || sim.sim.deliveries().len() == expected).await;

    // Every webhook was accepted, and each call is exactly one record with both keys.
    for d in sim.sim.deliveries() {
        assert!(matches!(d.response_status, Some(200) | Some(204)), "{d:?}");
    }
    assert_eq!(app.store().count_calls().await.unwrap(), n);
    for c in sim.sim.calls() {
        let rec = app.store().find_call_by_sid(&c.sid).await.unwrap().expect("recorded");
        assert_eq!(rec.conversation_id, c.conversation_id, "one merged record per call");
        assert_eq!(rec.status.as_str(), c.status, "the record ends where the simulated call ended");
        if c.answered_by.is_some() {
            assert_eq!(rec.answered_by.map(|a| a.as_str().to_owned()), c.answered_by);
        }
        let fetched = twilio.fetch_call(&c.sid).await.unwrap();
        assert_eq!(fetched.status, c.status);
    }
}

#[tokio::test]
async fn the_simulator_refuses_bad_credentials_and_injects_rest_faults() {
    let mut scenario = Scenario::default();
    scenario.faults.api_429_rate = 1.0;
    scenario.faults.retry_after_secs = Some(0.01);
    let settings = SimSettings { scenario, ..SimSettings::default() };
    let account = settings.account_sid.clone();
    let sim = Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let bad = TwilioClient::new(
        &sim.base_url,
        &account,
        TwilioAuth::AuthToken(Secret::new("nope")),
        &ClientOptions::default(),
    );
    let call = CreateCall {
        to: "+15005550006".into(),
        from: "+15005550001".into(),
        url: Some("http://x/twiml".into()),
        ..Default::default()
    };
    assert!(matches!(bad.create_call(&call).await.unwrap_err(), switchboard::integrations::UpstreamError::Auth { .. }));
    let mut opts = ClientOptions::default();
    opts.retry.max_attempts = 2;
    let good = TwilioClient::new(
        &sim.base_url,
        &account,
        TwilioAuth::AuthToken(Secret::new(SimSettings::default().auth_token)),
        &opts,
    );
    let err = good.create_call(&call).await.unwrap_err();
    assert!(matches!(err, switchboard::integrations::UpstreamError::RateLimited { .. }), "{err:?}");
    assert!(sim.sim.calls().is_empty(), "a refused placement creates nothing");
}

#[tokio::test]
async fn native_outbound_calls_recordings_conversations_and_the_control_api_work() {
    let app = TestApp::spawn().await;
    let settings = SimSettings {
        elevenlabs_webhook_secret: EL_SECRET.into(),
        elevenlabs_webhook_url: Some(format!("{}/webhooks/elevenlabs", app.base)),
        scenario: Scenario {
            time_scale: 5000.0,
            cps: 50.0,
            outcomes: OutcomeMix { human: 1.0, voicemail: 0.0, busy: 0.0, no_answer: 0.0, failed: 0.0 },
            ..Scenario::default()
        },
        ..SimSettings::default()
    };
    let (account, token, key) =
        (settings.account_sid.clone(), settings.auth_token.clone(), settings.elevenlabs_api_key.clone());
    let sim = Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let eleven = ElevenLabsClient::new(&sim.base_url, Secret::new(key), &ClientOptions::default());
    let twilio = TwilioClient::new(
        &sim.base_url,
        &account,
        TwilioAuth::AuthToken(Secret::new(token)),
        &ClientOptions::default(),
    );

    // Native ElevenLabs outbound call: the post-call webhook reaches Switchboard.
    let out = eleven
        .outbound_call(&switchboard::integrations::elevenlabs::OutboundCall {
            agent_id: "agent_native".into(),
            agent_phone_number_id: "phnum_1".into(),
            to_number: "+15005550099".into(),
            conversation_initiation_client_data: None,
        })
        .await
        .unwrap();
    let conv = out.conversation_id.clone().unwrap();
    let sid = out.call_sid.clone().unwrap();
    wait_for(async || app.store().find_call_by_conversation(&conv).await.unwrap().is_some()).await;
    let rec = app.store().find_call_by_conversation(&conv).await.unwrap().unwrap();
    assert_eq!(rec.call_sid.as_deref(), Some(sid.as_str()), "linked through metadata.phone_call.call_sid");
    assert_eq!(rec.call_successful.as_deref(), Some("success"));
    let page = eleven.list_conversations(&Default::default()).await.unwrap();
    assert_eq!(page.conversations[0].conversation_id, conv);
    assert_eq!(page.conversations[0].status, "done");
    let full = eleven.get_conversation(&conv).await.unwrap();
    assert_eq!(full["metadata"]["phone_call"]["call_sid"], sid);
    assert!(!eleven.get_conversation_audio(&conv).await.unwrap().is_empty());
    assert!(eleven.get_conversation("conv_missing").await.is_err());

    // A recorded Twilio call: recording metadata and media.
    let call = twilio
        .create_call(&CreateCall {
            to: "+15005550098".into(),
            from: "+15005550001".into(),
            url: Some("http://sb.invalid/twiml".into()),
            record: true,
            recording_status_callback: Some(format!("{}/webhooks/twilio/recording", app.base)),
            ..Default::default()
        })
        .await
        .unwrap();
    wait_for(async || sim.sim.calls().iter().any(|c| c.sid == call.sid && c.recording_sid.is_some())).await;
    let recs = twilio.list_recordings(&call.sid).await.unwrap();
    assert_eq!(recs.len(), 1);
    assert_eq!(twilio.fetch_recording(&recs[0].sid).await.unwrap().call_sid, call.sid);
    assert!(!twilio.fetch_recording_media(&recs[0].sid, "mp3").await.unwrap().is_empty());
    assert!(matches!(
        twilio.fetch_call("CA00000000000000000000000000000000").await,
        Err(switchboard::integrations::UpstreamError::NotFound { .. })
    ));

    // Control API.
    let http = reqwest::Client::new();
    let scenario: serde_json::Value =
        http.get(format!("{}/__sim/scenario", sim.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(scenario["time_scale"], 5000.0);
    let mut changed = scenario.clone();
    changed["seed"] = 9.into();
    let put: serde_json::Value =
        http.put(format!("{}/__sim/scenario", sim.base_url)).json(&changed).send().await.unwrap().json().await.unwrap();
    assert_eq!(put["seed"], 9);
    let calls: Vec<serde_json::Value> =
        http.get(format!("{}/__sim/calls", sim.base_url)).send().await.unwrap().json().await.unwrap();
    assert_eq!(calls.len(), 2);
    let requests: Vec<serde_json::Value> =
        http.get(format!("{}/__sim/requests", sim.base_url)).send().await.unwrap().json().await.unwrap();
    assert!(requests.iter().any(|r| r["what"] == "POST outbound-call" && r["status"] == 200));
    let deliveries: Vec<serde_json::Value> =
        http.get(format!("{}/__sim/deliveries", sim.base_url)).send().await.unwrap().json().await.unwrap();
    assert!(deliveries.iter().any(|d| d["kind"] == "elevenlabs" && d["response_status"] == 200));
    // Validation errors look like the real services'.
    let bad = eleven
        .outbound_call(&switchboard::integrations::elevenlabs::OutboundCall {
            agent_id: "a".into(),
            agent_phone_number_id: "p".into(),
            to_number: String::new(),
            conversation_initiation_client_data: None,
        })
        .await;
    assert!(bad.is_err());
    let invalid_to = twilio
        .create_call(&CreateCall {
            to: "12".into(),
            from: "+1500".into(),
            url: Some("http://x".into()),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(invalid_to, Err(switchboard::integrations::UpstreamError::Rejected { code: Some(21211), .. })),
        "{invalid_to:?}"
    );
}

// ---- ids, wire clock, resource fidelity, lists, envelopes ----

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// A webhook receiver that keeps every request (path, body, when it arrived).
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

/// Path, body, and when it arrived.
type Captured = (String, String, DateTime<Utc>);
/// A form body and when it arrived.
type Form = (Vec<(String, String)>, DateTime<Utc>);

impl Capture {
    async fn spawn() -> (Capture, String) {
        let cap = Capture::default();
        let c = cap.clone();
        let app = axum::Router::new().fallback(move |uri: axum::http::Uri, body: String| {
            let c = c.clone();
            async move {
                c.0.lock().unwrap().push((uri.path().to_owned(), body, Utc::now()));
                axum::http::StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (cap, base)
    }

    fn forms(&self, path: &str) -> Vec<Form> {
        let all = self.0.lock().unwrap().clone();
        all.into_iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, b, at)| (form_urlencoded::parse(b.as_bytes()).into_owned().collect(), at))
            .collect()
    }

    fn json(&self, path: &str) -> Vec<(Value, DateTime<Utc>)> {
        let all = self.0.lock().unwrap().clone();
        all.into_iter()
            .filter(|(p, _, _)| p == path)
            .map(|(_, b, at)| (serde_json::from_str(&b).unwrap(), at))
            .collect()
    }
}

fn param<'a>(form: &'a [(String, String)], k: &str) -> Option<&'a str> {
    form.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
}

fn only(outcome: &str) -> OutcomeMix {
    let mut m = OutcomeMix { human: 0.0, voicemail: 0.0, busy: 0.0, no_answer: 0.0, failed: 0.0 };
    match outcome {
        "human" => m.human = 1.0,
        "busy" => m.busy = 1.0,
        "no_answer" => m.no_answer = 1.0,
        _ => m.failed = 1.0,
    }
    m
}

struct Raw {
    http: reqwest::Client,
    base: String,
    account: String,
    token: String,
    key: String,
}

impl Raw {
    fn new(sim: &switchboard::sim::SimHandle) -> Raw {
        let d = SimSettings::default();
        Raw {
            http: reqwest::Client::new(),
            base: sim.base_url.clone(),
            account: d.account_sid,
            token: d.auth_token,
            key: d.elevenlabs_api_key,
        }
    }

    async fn twilio(&self, method: reqwest::Method, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        let url = if path.starts_with('/') {
            format!("{}{path}", self.base)
        } else {
            format!("{}/2010-04-01/Accounts/{}/{path}", self.base, self.account)
        };
        let mut req = self.http.request(method, url).basic_auth(&self.account, Some(&self.token));
        if !form.is_empty() {
            req = req.form(form);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
    }

    async fn create(&self, form: &[(&str, &str)]) -> Value {
        let (status, body) = self.twilio(reqwest::Method::POST, "Calls.json", form).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    async fn call(&self, sid: &str) -> Value {
        self.twilio(reqwest::Method::GET, &format!("Calls/{sid}.json"), &[]).await.1
    }

    async fn eleven(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, String) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).header("xi-api-key", &self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    async fn register(&self, body: Value) -> String {
        let (status, twiml) = self.eleven(reqwest::Method::POST, "/v1/convai/twilio/register-call", Some(body)).await;
        assert_eq!(status, 200, "{twiml}");
        twiml
    }

    async fn conversation(&self, id: &str) -> Value {
        let (status, body) = self.eleven(reqwest::Method::GET, &format!("/v1/convai/conversations/{id}"), None).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

fn conversation_of(twiml: &str) -> String {
    twiml.split("name=\"conversation_id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned()
}

async fn sim_with(scenario: Scenario, webhook: Option<String>) -> switchboard::sim::SimHandle {
    let settings = SimSettings { elevenlabs_webhook_url: webhook, scenario, ..SimSettings::default() };
    Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn fast(outcomes: OutcomeMix) -> Scenario {
    Scenario { time_scale: 5000.0, cps: 1000.0, outcomes, ..Scenario::default() }
}

#[tokio::test]
async fn two_simulators_with_one_seed_issue_disjoint_ids_but_the_same_outcomes() {
    let scenario = Scenario { seed: 7, time_scale: 5000.0, cps: 1000.0, ..Scenario::default() };
    let (a, b) = (sim_with(scenario.clone(), None).await, sim_with(scenario, None).await);
    let mut ids = Vec::new();
    for sim in [&a, &b] {
        let raw = Raw::new(sim);
        let mut mine = Vec::new();
        for i in 0..6 {
            let to = format!("+1500555{i:04}");
            let twiml = raw
                .register(serde_json::json!({ "agent_id": "agent_x", "from_number": "+15005550001", "to_number": to, "direction": "outbound" }))
                .await;
            mine.push(conversation_of(&twiml));
            let call =
                raw.create(&[("To", &to), ("From", "+15005550001"), ("Twiml", &twiml), ("Record", "true")]).await;
            mine.push(call["sid"].as_str().unwrap().to_owned());
        }
        ids.push(mine);
    }
    let (ia, ib): (std::collections::HashSet<_>, std::collections::HashSet<_>) =
        (ids[0].iter().collect(), ids[1].iter().collect());
    assert_eq!(ia.len(), 12);
    assert!(ia.is_disjoint(&ib), "a second run must not reissue ids: {ia:?} / {ib:?}");
    assert!(ids[0].iter().filter(|s| s.starts_with("CA")).all(|s| s.len() == 34));
    let scripts = |s: &switchboard::sim::SimHandle| {
        s.sim.calls().iter().map(|c| (c.script.outcome, c.script.ring_secs, c.script.talk_secs)).collect::<Vec<_>>()
    };
    assert_eq!(scripts(&a), scripts(&b), "the seed still decides outcomes and timings");
    // Recordings get fresh ids as well.
    wait_for(async || {
        a.sim.calls().iter().chain(b.sim.calls().iter()).all(|c| c.status != "queued" && c.ended_at.is_some())
    })
    .await;
    let recs = |s: &switchboard::sim::SimHandle| {
        s.sim.calls().iter().filter_map(|c| c.recording_sid.clone()).collect::<std::collections::HashSet<_>>()
    };
    assert!(!recs(&a).is_empty());
    assert!(recs(&a).is_disjoint(&recs(&b)));
}

fn rfc2822(v: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc2822(v).unwrap_or_else(|e| panic!("{v}: {e}")).with_timezone(&Utc)
}

fn near(t: DateTime<Utc>, real: DateTime<Utc>, what: &str) {
    let skew = (t - real).num_milliseconds().abs();
    assert!(skew <= 3_000, "{what}: {t} is {skew} ms away from real time {real}");
}

#[tokio::test]
async fn everything_on_the_wire_is_stamped_with_real_time_even_at_time_scale_60() {
    let (cap, hooks) = Capture::spawn().await;
    let scenario = Scenario {
        time_scale: 60.0,
        cps: 100.0,
        outcomes: only("human"),
        ring_secs: [3.0, 3.0],
        talk_secs: [120.0, 120.0],
        ..Scenario::default()
    };
    let began = Utc::now();
    let sim = sim_with(scenario, Some(format!("{hooks}/el"))).await;
    let raw = Raw::new(&sim);
    let twiml = raw
        .register(serde_json::json!({ "agent_id": "agent_t", "from_number": "+15005550001", "to_number": "+15005550006", "direction": "outbound" }))
        .await;
    let status_cb = format!("{hooks}/status");
    let (amd_cb, rec_cb) = (format!("{hooks}/amd"), format!("{hooks}/rec"));
    let call = raw
        .create(&[
            ("To", "+15005550006"),
            ("From", "+15005550001"),
            ("Twiml", &twiml),
            ("StatusCallback", &status_cb),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("MachineDetection", "Enable"),
            ("AsyncAmd", "True"),
            ("AsyncAmdStatusCallback", &amd_cb),
            ("Record", "true"),
            ("RecordingStatusCallback", &rec_cb),
        ])
        .await;
    let sid = call["sid"].as_str().unwrap().to_owned();
    let steps = sim.sim.calls()[0].script.steps.len();
    assert_eq!(steps, 7, "4 status, amd (AsyncAmd=True), recording, transcription");
    wait_for(async || sim.sim.deliveries().len() == steps).await;

    let statuses = cap.forms("/status");
    assert_eq!(statuses.len(), 4);
    for (form, at) in &statuses {
        near(rfc2822(param(form, "Timestamp").unwrap()), *at, "Twilio Timestamp");
    }
    // The recording started when the call was answered (real clock, second resolution).
    let answered = sim.sim.calls()[0].answered_at.expect("answered");
    let (rec, _) = &cap.forms("/rec")[0];
    assert_eq!(rfc2822(param(rec, "RecordingStartTime").unwrap()).timestamp(), answered.timestamp());
    let (el, at) = &cap.json("/el")[0];
    assert_eq!(el["type"], "post_call_transcription");
    near(DateTime::from_timestamp(el["event_timestamp"].as_i64().unwrap(), 0).unwrap(), *at, "event_timestamp");
    // The conversation started when the call was answered, by the wall clock (before the webhook, never after).
    let start = el["data"]["metadata"]["start_time_unix_secs"].as_i64().unwrap();
    assert_eq!(start, answered.timestamp(), "metadata.start_time_unix_secs is the real answer time");
    near(
        answered,
        *at - chrono::Duration::milliseconds(2_100),
        "the real answer time (~125 s / 60 before the webhook)",
    );

    // The resource agrees with the callbacks and carries real times.
    let res = raw.call(&sid).await;
    let last = &statuses.iter().find(|(f, _)| param(f, "CallStatus") == Some("completed")).unwrap().0;
    assert_eq!(res["status"], "completed");
    assert_eq!(res["duration"].as_str(), param(last, "CallDuration"));
    assert_eq!(res["answered_by"].as_str(), param(&cap.forms("/amd")[0].0, "AnsweredBy"));
    let now = Utc::now();
    for f in ["date_created", "date_updated", "start_time", "end_time"] {
        let t = rfc2822(res[f].as_str().unwrap_or_else(|| panic!("{f} missing: {res}")));
        assert!(t <= now, "{f} {t} is in the future (now {now})");
        assert!(t >= began - chrono::Duration::seconds(1), "{f} {t} is before the test began ({began})");
    }
    assert!(rfc2822(res["end_time"].as_str().unwrap()) >= rfc2822(res["start_time"].as_str().unwrap()));
}

#[tokio::test]
async fn the_call_resource_follows_the_call_even_when_no_callback_is_subscribed() {
    let sim = sim_with(fast(only("human")), None).await;
    let raw = Raw::new(&sim);
    // Sync AMD, and Record=true without a RecordingStatusCallback.
    let call = raw
        .create(&[
            ("To", "+15005550006"),
            ("From", "+15005550001"),
            ("Url", "http://sb.invalid/twiml"),
            ("MachineDetection", "Enable"),
            ("Record", "True"),
        ])
        .await;
    for (k, want) in
        [("to_formatted", "(500) 555-0006"), ("from_formatted", "(500) 555-0001"), ("api_version", "2010-04-01")]
    {
        assert_eq!(call[k], want, "{k}");
    }
    assert!(call["end_time"].is_null() && call["date_updated"].is_string());
    assert!(call["subresource_uris"]["recordings"].as_str().unwrap().ends_with("/Recordings.json"));
    let sid = call["sid"].as_str().unwrap().to_owned();
    wait_for(async || sim.sim.calls()[0].recording_sid.is_some()).await;
    let done = raw.call(&sid).await;
    let talk = sim.sim.calls()[0].script.talk_secs as u64;
    assert_eq!(done["status"], "completed");
    assert_eq!(done["duration"], talk.to_string());
    assert_eq!(done["answered_by"], "human", "sync AMD shows on the resource");
    assert!(done["end_time"].is_string(), "{done}");
    let (status, recs) = raw.twilio(reqwest::Method::GET, &format!("Calls/{sid}/Recordings.json"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(recs["recordings"].as_array().unwrap().len(), 1, "recorded without a callback: {recs}");
    assert_eq!(recs["recordings"][0]["call_sid"], sid.as_str());
    let (status, all) = raw.twilio(reqwest::Method::GET, &format!("Recordings.json?CallSid={sid}"), &[]).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["recordings"][0]["sid"], recs["recordings"][0]["sid"], "also listed on the account");
    assert!(all["uri"].as_str().unwrap().contains("CallSid="));

    // A busy call, and a native ElevenLabs call (no Twilio callbacks at all), also end on the resource.
    let busy = sim_with(fast(only("busy")), None).await;
    let raw_busy = Raw::new(&busy);
    let b = raw_busy.create(&[("To", "+15005550007"), ("From", "+15005550001"), ("Url", "http://x/t")]).await;
    let (_, native) = raw_busy
        .eleven(
            reqwest::Method::POST,
            "/v1/convai/twilio/outbound-call",
            Some(
                serde_json::json!({ "agent_id": "a", "agent_phone_number_id": "phnum_1", "to_number": "+15005550008" }),
            ),
        )
        .await;
    let native: Value = serde_json::from_str(&native).unwrap();
    wait_for(async || busy.sim.calls().iter().all(|c| c.ended_at.is_some())).await;
    for s in [b["sid"].as_str().unwrap(), native["callSid"].as_str().unwrap()] {
        let r = raw_busy.call(s).await;
        assert_eq!(r["status"], "busy", "{r}");
        assert_eq!(r["duration"], "0");
        assert!(r["end_time"].is_string() && r["answered_by"].is_null());
    }
}

#[tokio::test]
async fn the_calls_list_filters_and_pages_like_twilio() {
    let sim = sim_with(fast(only("human")), None).await;
    let raw = Raw::new(&sim);
    let mut sids = Vec::new();
    for i in 0..5 {
        let to = if i < 2 { "+15005550010".to_owned() } else { format!("+1500555002{i}") };
        sids.push(raw.create(&[("To", &to), ("From", "+15005550001"), ("Url", "http://x/t")]).await["sid"].clone());
    }
    wait_for(async || sim.sim.calls().iter().all(|c| c.status == "completed")).await;

    let (status, page) = raw.twilio(reqwest::Method::GET, "Calls.json?PageSize=2", &[]).await;
    assert_eq!(status, 200, "{page}");
    let mut keys: Vec<&str> = page.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        ["calls", "end", "first_page_uri", "next_page_uri", "page", "page_size", "previous_page_uri", "start", "uri"]
    );
    assert_eq!(
        (page["page"].as_u64(), page["page_size"].as_u64(), page["start"].as_u64(), page["end"].as_u64()),
        (Some(0), Some(2), Some(0), Some(1))
    );
    assert!(page["previous_page_uri"].is_null());
    assert_eq!(page["calls"][0]["sid"], sids[4], "newest first");
    let mut seen: Vec<Value> = page["calls"].as_array().unwrap().iter().map(|c| c["sid"].clone()).collect();
    let mut next = page["next_page_uri"].as_str().map(str::to_owned);
    let mut pages = 1;
    while let Some(uri) = next {
        let (status, p) = raw.twilio(reqwest::Method::GET, &uri, &[]).await;
        assert_eq!(status, 200, "{p}");
        assert!(p["previous_page_uri"].is_string());
        seen.extend(p["calls"].as_array().unwrap().iter().map(|c| c["sid"].clone()));
        next = p["next_page_uri"].as_str().map(str::to_owned);
        pages += 1;
    }
    assert_eq!(pages, 3);
    sids.reverse();
    assert_eq!(seen, sids, "every call once, newest first");

    let count = |q: String| {
        let raw = &raw;
        async move {
            let (status, p) = raw.twilio(reqwest::Method::GET, &format!("Calls.json?{q}"), &[]).await;
            assert_eq!(status, 200, "{q}: {p}");
            p["calls"].as_array().unwrap().len()
        }
    };
    let today = Utc::now().format("%Y-%m-%d").to_string();
    let yesterday = (Utc::now() - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    assert_eq!(count("To=%2B15005550010".into()).await, 2);
    assert_eq!(count("From=%2B15005550001&Status=completed".into()).await, 5);
    assert_eq!(count("Status=busy".into()).await, 0);
    assert_eq!(count(format!("StartTime={today}")).await, 5);
    assert_eq!(count(format!("StartTime%3E={yesterday}")).await, 5);
    assert_eq!(count(format!("StartTime%3C={yesterday}")).await, 0);
    assert_eq!(
        count(format!("EndTime%3E={}", (Utc::now() - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ"))).await,
        5
    );
    let (status, err) = raw.twilio(reqwest::Method::GET, "Calls.json?StartTime=yesterday", &[]).await;
    assert_eq!((status, err["code"].as_u64()), (400, Some(20001)), "{err}");
}

#[tokio::test]
async fn conversations_carry_the_fields_of_the_real_api() {
    let (cap, hooks) = Capture::spawn().await;
    let sim = sim_with(Scenario { post_call_audio: true, ..fast(only("human")) }, Some(format!("{hooks}/el"))).await;
    let raw = Raw::new(&sim);
    // `direction` is optional (inbound by default).
    let twiml = raw
        .register(
            serde_json::json!({ "agent_id": "agent_f", "from_number": "+15005550006", "to_number": "+15005550001" }),
        )
        .await;
    let conv = conversation_of(&twiml);
    let call = raw.create(&[("To", "+15005550006"), ("From", "+15005550001"), ("Twiml", &twiml)]).await;
    wait_for(async || cap.json("/el").len() == 2).await;
    let full = raw.conversation(&conv).await;
    assert_eq!(full["status"], "done");
    let pc = &full["metadata"]["phone_call"];
    assert_eq!(pc["direction"], "inbound");
    assert_eq!(pc["call_sid"], call["sid"]);
    assert!(pc["phone_number_id"].is_string() && pc["stream_sid"].as_str().unwrap().starts_with("MZ"), "{pc}");
    for f in ["has_audio", "has_user_audio", "has_response_audio", "has_auxiliary_audio"] {
        assert!(full[f].is_boolean(), "{f}: {full}");
    }
    assert_eq!(full["has_user_audio"], true);
    assert_eq!(full["analysis"]["call_successful"], "success");
    let (_, list) = raw.eleven(reqwest::Method::GET, "/v1/convai/conversations", None).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    let item = &list["conversations"][0];
    assert_eq!(item["conversation_id"], conv.as_str());
    assert_eq!(item["message_count"].as_u64(), full["transcript"].as_array().map(|t| t.len() as u64));
    assert!(item["message_count"].as_u64().unwrap() > 0);
    assert_eq!(item["call_successful"], "success", "analysed once done");
    assert_eq!(item["direction"], "inbound");
    // The webhook carries the same document, then the audio (the scenario asked for it).
    let hooks_seen = cap.json("/el");
    assert_eq!(hooks_seen[0].0["data"]["metadata"]["phone_call"]["stream_sid"], pc["stream_sid"]);
    assert_eq!(hooks_seen[1].0["type"], "post_call_audio");
    assert_eq!(hooks_seen[1].0["data"]["conversation_id"], conv.as_str());
    let audio = hooks_seen[1].0["data"]["full_audio"].as_str().unwrap();
    assert!(!base64::Engine::decode(&base64::engine::general_purpose::STANDARD, audio).unwrap().is_empty());

    // Off by default; a failed call's failure webhook carries Twilio's real status.
    sim.sim.set_scenario(fast(only("busy")));
    let (status, out) = raw
        .eleven(
            reqwest::Method::POST,
            "/v1/convai/twilio/outbound-call",
            Some(
                serde_json::json!({ "agent_id": "a", "agent_phone_number_id": "phnum_7", "to_number": "+15005550009" }),
            ),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    wait_for(async || cap.json("/el").len() == 3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let all = cap.json("/el");
    assert_eq!(all.len(), 3, "no audio webhook for an unanswered call");
    let failure = &all[2].0;
    assert_eq!(failure["type"], "call_initiation_failure");
    assert_eq!(failure["data"]["failure_reason"], "busy");
    assert_eq!(failure["data"]["metadata"]["body"]["CallStatus"], "busy");
    assert_eq!(failure["data"]["metadata"]["body"]["SipResponseCode"], "486");
    let id = serde_json::from_str::<Value>(&out).unwrap()["conversation_id"].as_str().unwrap().to_owned();
    let failed = raw.conversation(&id).await;
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["metadata"]["phone_call"]["phone_number_id"], "phnum_7");

    let audio_off = Scenario::default();
    assert!(!audio_off.post_call_audio);
    let (status, bad) = raw
        .eleven(
            reqwest::Method::POST,
            "/v1/convai/twilio/register-call",
            Some(
                serde_json::json!({ "agent_id": "a", "from_number": "+1", "to_number": "+2", "direction": "sideways" }),
            ),
        )
        .await;
    assert_eq!(status, 422, "{bad}");
}

#[tokio::test]
async fn anything_not_simulated_gets_the_providers_error_envelope() {
    let sim = sim_with(Scenario::default(), None).await;
    let raw = Raw::new(&sim);
    let http = reqwest::Client::new();
    let send = |method: reqwest::Method, path: &str, body: Option<&str>| {
        let mut req = http
            .request(method, format!("{}{path}", sim.base_url))
            .basic_auth(&raw.account, Some(&raw.token))
            .header("xi-api-key", &raw.key);
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b.to_owned());
        }
        let path = path.to_owned();
        async move {
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            let text = resp.text().await.unwrap();
            assert!(ct.starts_with("application/json"), "{path}: {status} {ct} {text:?}");
            (status, serde_json::from_str::<Value>(&text).unwrap())
        }
    };
    let acct = format!("/2010-04-01/Accounts/{}", raw.account);
    use reqwest::Method as M;
    let (s, b) = send(M::GET, &format!("{acct}/Conferences.json"), None).await;
    assert_eq!((s, b["code"].as_u64(), b["status"].as_u64()), (404, Some(20404), Some(404)), "{b}");
    assert!(b["message"].is_string() && b["more_info"].is_string());
    let (s, b) = send(M::DELETE, &format!("{acct}/Calls.json"), None).await;
    assert_eq!((s, b["code"].as_u64(), b["status"].as_u64()), (405, Some(20004), Some(405)), "{b}");
    let (s, b) = send(M::GET, "/v1/convai/agents/nope", None).await;
    assert_eq!((s, b["detail"].is_null()), (404, false), "{b}");
    let (s, b) = send(M::GET, "/v1/convai/twilio/outbound-call", None).await;
    assert_eq!((s, b["detail"].is_null()), (405, false), "{b}");
    let (s, b) = send(M::POST, "/v1/convai/twilio/register-call", Some("{not json")).await;
    assert_eq!((s, b["detail"][0]["type"].as_str()), (422, Some("json_invalid")), "{b}");
    let (s, b) = send(M::GET, "/v1/convai/conversations?page_size=many", None).await;
    assert_eq!((s, b["detail"][0]["loc"][1].as_str()), (422, Some("page_size")), "{b}");
    for (m, path, want) in [
        (M::GET, "/v4/spreadsheets/x/developerMetadata", 404),
        (M::DELETE, "/v4/spreadsheets/x", 405),
        (M::GET, "/drive/v3/about", 404),
        (M::GET, "/upload/drive/v3/files", 404),
    ] {
        let (s, b) = send(m, path, None).await;
        assert_eq!(s, want, "{path}: {b}");
        assert_eq!(b["error"]["code"].as_u64(), Some(want as u64), "{path}: {b}");
        assert!(b["error"]["message"].is_string() && b["error"]["status"].is_string(), "{path}: {b}");
    }
    let (s, b) = send(M::GET, "/token", None).await;
    assert_eq!((s, b["error"].is_string()), (405, true), "{b}");
}

#[tokio::test]
async fn hanging_up_through_the_api_ends_the_call_and_stops_its_playout() {
    let (cap, hooks) = Capture::spawn().await;
    let scenario = Scenario {
        time_scale: 60.0,
        cps: 100.0,
        outcomes: only("human"),
        ring_secs: [3.0, 3.0],
        talk_secs: [900.0, 900.0],
        ..Scenario::default()
    };
    let sim = sim_with(scenario, Some(format!("{hooks}/el"))).await;
    let raw = Raw::new(&sim);
    let cb = format!("{hooks}/status");
    let all = [
        ("StatusCallbackEvent", "initiated"),
        ("StatusCallbackEvent", "ringing"),
        ("StatusCallbackEvent", "answered"),
        ("StatusCallbackEvent", "completed"),
    ];
    let mut form =
        vec![("To", "+15005550006"), ("From", "+15005550001"), ("Url", "http://x/t"), ("StatusCallback", cb.as_str())];
    form.extend(all);
    let sid = raw.create(&form).await["sid"].as_str().unwrap().to_owned();
    wait_for(async || raw.call(&sid).await["status"] == "in-progress").await;
    wait_for(async || cap.forms("/status").len() == 3).await;
    let (status, ended) =
        raw.twilio(reqwest::Method::POST, &format!("Calls/{sid}.json"), &[("Status", "completed")]).await;
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["status"], "completed");
    assert!(ended["end_time"].is_string() && ended["duration"].is_string(), "{ended}");
    wait_for(async || cap.forms("/status").len() == 4).await;
    let last = cap.forms("/status").pop().unwrap().0;
    assert_eq!((param(&last, "CallStatus"), param(&last, "SequenceNumber")), (Some("completed"), Some("3")));
    assert_eq!(param(&last, "CallDuration"), ended["duration"].as_str());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cap.forms("/status").len(), 4, "the scripted completion is not sent any more");
    let (status, same) =
        raw.twilio(reqwest::Method::POST, &format!("Calls/{sid}.json"), &[("Status", "canceled")]).await;
    assert_eq!((status, same["status"].as_str()), (200, Some("completed")), "a finished call stays finished");

    // A call canceled while queued sends nothing. At this CPS the first call takes the
    // free slot and the next one waits minutes in the queue.
    sim.sim.set_scenario(Scenario { cps: 0.0001, ..sim.sim.scenario() });
    raw.create(&[("To", "+15005550030"), ("From", "+15005550001"), ("Url", "http://x/t")]).await;
    let mut form =
        vec![("To", "+15005550007"), ("From", "+15005550001"), ("Url", "http://x/t"), ("StatusCallback", cb.as_str())];
    form.extend(all);
    let queued = raw.create(&form).await["sid"].as_str().unwrap().to_owned();
    let (status, canceled) =
        raw.twilio(reqwest::Method::POST, &format!("Calls/{queued}.json"), &[("Status", "canceled")]).await;
    assert_eq!(
        (status, canceled["status"].as_str(), canceled["duration"].as_str()),
        (200, Some("canceled"), Some("0"))
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(cap.forms("/status").len(), 4);
    let (status, bad) =
        raw.twilio(reqwest::Method::POST, &format!("Calls/{queued}.json"), &[("Status", "paused")]).await;
    assert_eq!((status, bad["code"].as_u64()), (400, Some(20001)));
}

/// The official Python SDKs (twilio, elevenlabs, gspread) against a fresh
/// simulator: `tests/sdk/check_sdks.py`. Skipped with one line when the
/// packages are not importable (`TEST_SDK_PYTHON` picks the interpreter).
#[tokio::test]
async fn the_official_python_sdks_work_against_the_simulator() {
    let python = std::env::var("TEST_SDK_PYTHON").unwrap_or_else(|_| "python3".into());
    let probe = tokio::process::Command::new(&python).args(["-c", "import twilio, elevenlabs, gspread"]).output().await;
    if !probe.is_ok_and(|o| o.status.success()) {
        println!(
            "SKIPPED official SDK check: `{python}` cannot import twilio, elevenlabs and gspread (pip install twilio elevenlabs gspread, or set TEST_SDK_PYTHON)"
        );
        return;
    }
    let sim = sim_with(Scenario::default(), None).await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new(&python)
        .arg(dir.join("tests/sdk/check_sdks.py"))
        .arg(&sim.base_url)
        .arg(dir.join("../sim/src/keys/sandbox-service-account.json"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "SDK check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn lost_twilio_callbacks_leave_the_resource_to_tell_the_outcome() {
    let (cap, hooks) = Capture::spawn().await;
    let mut scenario = fast(only("human"));
    scenario.faults.drop_twilio_rate = 1.0;
    let sim = sim_with(scenario, None).await;
    let raw = Raw::new(&sim);
    let cb = format!("{hooks}/status");
    let sid = raw
        .create(&[
            ("To", "+15005550006"),
            ("From", "+15005550001"),
            ("Url", "http://x/t"),
            ("StatusCallback", &cb),
            ("StatusCallbackEvent", "completed"),
        ])
        .await["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    wait_for(async || raw.call(&sid).await["status"] == "completed").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(cap.forms("/status").is_empty() && sim.sim.deliveries().is_empty(), "every callback was lost");
    let r = raw.call(&sid).await;
    assert_eq!(r["duration"], (sim.sim.calls()[0].script.talk_secs as u64).to_string());
    assert!(r["end_time"].is_string());
}
