//! Phase 3 end to end: post-call transcripts (with ElevenLabs' analysis and
//! ours), recording status callbacks, the reconciler recovering webhooks the
//! simulator dropped, and transcript search through the API.

use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use serde_json::{Value, json};
use switchboard::config::Secret;
use switchboard::integrations::ClientOptions;
use switchboard::integrations::elevenlabs::{ElevenLabsClient, OutboundCall};
use switchboard::sim::{Scenario, SimSettings, Simulator};

use crate::helpers::{EL_SECRET, TWILIO_TOKEN, TestApp, status_params};

fn refs<'a>(p: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    p.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

fn sid(n: u32) -> String {
    format!("CA{n:032x}")
}

fn transcription(conv: &str, call_sid: &str, user_says: &str, result: &str) -> Value {
    json!({
        "type": "post_call_transcription",
        "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {
            "agent_id": "agent_7801kabc0000000000000000test",
            "conversation_id": conv,
            "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hi, this is a quick reminder call.", "time_in_call_secs": 0, "tool_calls": null},
                {"role": "user", "message": user_says, "time_in_call_secs": 4},
                {"role": "agent", "message": null, "time_in_call_secs": 9,
                 "tool_calls": [{"type": "webhook", "request_id": "req_1", "tool_name": "book_slot", "params_as_json": "{}"}],
                 "tool_results": [{"type": "webhook", "request_id": "req_1", "tool_name": "book_slot", "result_value": "{\"ok\":true}", "is_error": false}]}
            ],
            "metadata": {"start_time_unix_secs": chrono::Utc::now().timestamp() - 60, "call_duration_secs": 37, "cost": 412,
                "termination_reason": "end_call tool was called.",
                "phone_call": {"type": "twilio", "direction": "outbound", "call_sid": call_sid}},
            "analysis": {
                "evaluation_criteria_results": {"booked": {"criteria_id": "booked", "result": result, "rationale": "r"}},
                "data_collection_results": {"slot": {"data_collection_id": "slot", "value": "2026-11-20T10:00", "rationale": "x"}},
                "call_successful": result, "transcript_summary": "Agent reminded the lead."},
            "has_audio": true
        }
    })
}

#[tokio::test]
async fn a_transcript_before_twilios_first_callback_lands_on_one_call_with_its_analysis() {
    let app = TestApp::spawn().await;
    let call_sid = sid(0x301);
    // ElevenLabs first (twice: a replay), Twilio afterwards.
    let body = transcription(
        "conv_301",
        &call_sid,
        "I am really happy with this, thank you! Call me at 415 555 2671.",
        "success",
    );
    assert_eq!(app.elevenlabs(&body).await.status(), StatusCode::OK);
    assert_eq!(app.elevenlabs(&body).await.status(), StatusCode::OK);
    for (seq, st) in ["initiated", "ringing", "in-progress", "completed"].iter().enumerate() {
        let p = status_params(&call_sid, seq as u32, st);
        assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    }
    assert_eq!(app.state.store.count_calls().await.unwrap(), 1, "one merged record");
    let call = app.state.store.find_call_by_sid(&call_sid).await.unwrap().unwrap();
    let t = app.get_json(&format!("/api/v1/calls/{}/transcript", call.id), StatusCode::OK).await;
    assert_eq!(t["conversation_id"], "conv_301");
    assert_eq!(t["turns"].as_array().unwrap().len(), 3);
    assert_eq!(t["turns"][2]["tool_calls"][0]["tool_name"], "book_slot");
    assert_eq!(
        (t["criteria"][0]["id"].as_str(), t["criteria"][0]["result"].as_str()),
        (Some("booked"), Some("success"))
    );
    assert_eq!(t["data_collection"][0]["value"], "2026-11-20T10:00");
    assert_eq!(t["summary"], "Agent reminded the lead.");
    assert!(t["sentiment"].as_f64().unwrap() > 0.5, "{t}");
    assert_eq!(t["analyzer_version"], switchboard_analysis::ANALYZER_VERSION);
    let entities = t["analysis"]["entities"].as_array().unwrap();
    assert!(entities.iter().any(|e| e["kind"] == "phone" && e["normalized"] == "+14155552671"), "{entities:?}");
    let by_id = app.get_json(&format!("/api/v1/transcripts/{}", t["id"].as_str().unwrap()), StatusCode::OK).await;
    assert_eq!(by_id["id"], t["id"]);
    // ElevenLabs holds audio for it: one recording, served through us.
    let recs = app.get_json(&format!("/api/v1/calls/{}/recordings", call.id), StatusCode::OK).await;
    assert_eq!(recs["data"][0]["provider"], "elevenlabs");
    assert_eq!(recs["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn recording_callbacks_are_verified_merged_forward_and_listed_on_their_call() {
    let app = TestApp::spawn().await;
    let call_sid = sid(0x302);
    let rec_sid = format!("RE{:032x}", 0x302);
    let p = status_params(&call_sid, 0, "initiated");
    app.twilio("/webhooks/twilio/status", &refs(&p)).await;
    let form = |status: &str| {
        vec![
            ("AccountSid", "AC00000000000000000000000000000001".to_string()),
            ("CallSid", call_sid.clone()),
            ("RecordingSid", rec_sid.clone()),
            (
                "RecordingUrl",
                format!(
                    "https://api.twilio.com/2010-04-01/Accounts/AC00000000000000000000000000000001/Recordings/{rec_sid}"
                ),
            ),
            ("RecordingStatus", status.to_string()),
            ("RecordingDuration", "35".into()),
            ("RecordingChannels", "2".into()),
            ("RecordingSource", "OutboundAPI".into()),
            ("RecordingStartTime", "Mon, 30 Nov 2026 10:00:00 +0000".into()),
            ("ErrorCode", "0".into()),
        ]
    };
    for status in ["completed", "in-progress", "completed"] {
        let f = form(status);
        assert_eq!(app.twilio("/webhooks/twilio/recording", &refs(&f)).await.status(), StatusCode::NO_CONTENT);
    }
    let bad = app.twilio_signed("/webhooks/twilio/recording", &refs(&form("completed")), "bad").await;
    assert_eq!(bad.status(), StatusCode::FORBIDDEN);
    let mut broken = form("completed");
    broken.retain(|(k, _)| *k != "RecordingSid");
    let r = app.twilio("/webhooks/twilio/recording", &refs(&broken)).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let call = app.state.store.find_call_by_sid(&call_sid).await.unwrap().unwrap();
    let recs = app.get_json(&format!("/api/v1/calls/{}/recordings", call.id), StatusCode::OK).await;
    let list = recs["data"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{recs}");
    assert_eq!(
        (list[0]["status"].as_str(), list[0]["duration_secs"].as_i64()),
        (Some("completed"), Some(35)),
        "a late in-progress never undoes completed"
    );
    assert_eq!(list[0]["media"], format!("/api/v1/recordings/{}/media", list[0]["id"].as_str().unwrap()));
    let one = app.get_json(&format!("/api/v1/recordings/{}", list[0]["id"].as_str().unwrap()), StatusCode::OK).await;
    assert_eq!(one["provider_id"], rec_sid.as_str());
    let ev = app.get_json("/api/v1/events?type=twilio.recording.*", StatusCode::OK).await;
    assert_eq!(ev["data"].as_array().unwrap().len(), 2, "completed and in-progress, the replay deduplicated: {ev}");
}

#[tokio::test]
async fn search_finds_words_phrases_and_prefixes_with_filters_and_refuses_bad_syntax() {
    let app = TestApp::spawn().await;
    let texts = [
        ("conv_401", "I want a refund on my credit card please", "failure"),
        ("conv_402", "The card was declined, can you call back tomorrow", "success"),
        ("conv_403", "I am cancelling my subscription today", "failure"),
        ("conv_404", "Great service, refunds are not needed", "success"),
    ];
    for (i, (conv, says, result)) in texts.iter().enumerate() {
        let body = transcription(conv, &sid(0x400 + i as u32), says, result);
        assert_eq!(app.elevenlabs(&body).await.status(), StatusCode::OK);
    }
    let ids = |v: &Value| -> Vec<String> {
        let mut out: Vec<String> =
            v["data"].as_array().unwrap().iter().map(|h| h["conversation_id"].as_str().unwrap().to_owned()).collect();
        out.sort();
        out
    };
    let q = |s: &str| format!("/api/v1/transcripts/search?q={}", urlencoding(s));
    assert_eq!(ids(&app.get_json(&q("refund"), StatusCode::OK).await), vec!["conv_401"]);
    assert_eq!(ids(&app.get_json(&q("refund*"), StatusCode::OK).await), vec!["conv_401", "conv_404"]);
    assert_eq!(ids(&app.get_json(&q("\"credit card\""), StatusCode::OK).await), vec!["conv_401"]);
    assert_eq!(ids(&app.get_json(&q("card -declined"), StatusCode::OK).await), vec!["conv_401"]);
    assert_eq!(ids(&app.get_json(&q("cancelling OR declined"), StatusCode::OK).await), vec!["conv_402", "conv_403"]);
    let filtered = app.get_json(&format!("{}&call_successful=success", q("card")), StatusCode::OK).await;
    assert_eq!(ids(&filtered), vec!["conv_402"]);
    let crit = app.get_json(&format!("{}&criterion=booked:failure", q("refund* OR cancelling")), StatusCode::OK).await;
    assert_eq!(ids(&crit), vec!["conv_401", "conv_403"]);
    let hit = &app.get_json(&q("refund"), StatusCode::OK).await["data"][0];
    assert_eq!(
        (hit["speaker"].as_str(), hit["turn"].as_u64(), hit["time_in_call_secs"].as_f64()),
        (Some("user"), Some(1), Some(4.0))
    );
    assert!(hit["snippet"].as_str().unwrap().contains("[refund]"), "{hit}");
    let all = app.get_json("/api/v1/analytics/conversations", StatusCode::OK).await;
    let g = &all["groups"][0];
    assert_eq!((all["groups"].as_array().unwrap().len(), g["conversations"].as_u64()), (1, Some(4)), "{all}");
    assert_eq!(
        (g["criteria"]["booked"]["success"].as_u64(), g["criteria"]["booked"]["pass_rate"].as_f64()),
        (Some(2), Some(0.5))
    );
    assert_eq!(g["data_collection"]["slot"]["fill_rate"], 1.0);
    assert_eq!(g["avg_turns"], 3.0);
    assert_eq!(g["call_successful"]["failure"], 2);
    let sentiments: u64 = g["sentiment"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(sentiments, 4, "every transcript analysed: {g}");
    let by_day = app.get_json("/api/v1/analytics/conversations?group_by=day", StatusCode::OK).await;
    assert_eq!(by_day["groups"][0]["key"].as_str().map(str::len), Some(10));
    let (s, body) = app.call(reqwest::Method::GET, "/api/v1/analytics/conversations?group_by=month", None).await;
    assert_eq!((s, body["errors"][0]["field"].as_str()), (StatusCode::BAD_REQUEST, Some("group_by")));
    for (bad, needle) in [("\"credit card", "quote"), ("OR refund", "OR"), ("-refund", "excluded")] {
        let (s, body) = app.call(reqwest::Method::GET, &q(bad), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["errors"][0]["field"], "q");
        assert!(body["errors"][0]["reason"].as_str().unwrap().contains(needle), "{body}");
    }
}

fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_reconciler_recovers_every_conversation_whose_webhook_was_dropped() {
    let app = TestApp::spawn().await;
    let mut scenario = Scenario { time_scale: 1000.0, ..Scenario::default() };
    scenario.faults.drop_elevenlabs_rate = 0.34;
    let settings = SimSettings {
        auth_token: TWILIO_TOKEN.into(),
        elevenlabs_webhook_secret: EL_SECRET.into(),
        elevenlabs_webhook_url: Some(format!("{}/webhooks/elevenlabs", app.base)),
        scenario,
        ..SimSettings::default()
    };
    let key = settings.elevenlabs_api_key.clone();
    let sim = Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut opts = ClientOptions::default();
    opts.retry.base = StdDuration::from_millis(5);
    opts.retry.max_backoff = StdDuration::from_millis(50);
    let el = ElevenLabsClient::new(&sim.base_url, Secret::new(key), &opts);
    let n = 12;
    let mut convs = Vec::new();
    for i in 0..n {
        let r = el
            .outbound_call(&OutboundCall {
                agent_id: "agent_7801kabc0000000000000000test".into(),
                agent_phone_number_id: "phnum_0101kxyz000000000000000test".into(),
                to_number: format!("+1500555{:04}", 1000 + i),
                conversation_initiation_client_data: None,
            })
            .await
            .unwrap();
        convs.push(r.conversation_id.unwrap());
    }
    // Wait until the simulator has finished every conversation (and sent, or dropped, its webhook).
    for c in &convs {
        let mut done = false;
        for _ in 0..400 {
            let doc = el.get_conversation(c).await.unwrap();
            if matches!(doc["status"].as_str(), Some("done" | "failed")) {
                done = true;
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
        assert!(done, "the simulator finished {c}");
    }
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let mut before = 0;
    for c in &convs {
        before += usize::from(app.state.store.find_transcript(c).await.unwrap().is_some());
    }
    assert!(before < n, "some webhooks were dropped ({before} of {n} arrived)");
    let since = chrono::Utc::now() - chrono::Duration::hours(1);
    let report =
        switchboard::jobs::reconciler::reconcile(&*app.state.store, &el, since, &app.state.settings.analysis, None)
            .await
            .unwrap();
    assert_eq!(report.recovered as usize, n - before, "{report:?}");
    for c in &convs {
        let t = app.state.store.find_transcript(c).await.unwrap().unwrap_or_else(|| panic!("{c} recovered"));
        assert!(t.is_final());
    }
    // A second run finds everything up to date; a late webhook would be a replay.
    let again =
        switchboard::jobs::reconciler::reconcile(&*app.state.store, &el, since, &app.state.settings.analysis, None)
            .await
            .unwrap();
    assert_eq!((again.recovered, again.up_to_date as usize), (0, n), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twilio_recordings_whose_callback_never_came_are_reconciled_from_the_recordings_api() {
    use switchboard::integrations::twilio::{CreateCall, TwilioAuth, TwilioClient};
    use switchboard::sim::OutcomeMix;
    use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
    let app = TestApp::spawn().await;
    let settings = SimSettings {
        scenario: Scenario {
            time_scale: 5000.0,
            cps: 50.0,
            outcomes: OutcomeMix { human: 1.0, voicemail: 0.0, busy: 0.0, no_answer: 0.0, failed: 0.0 },
            ..Scenario::default()
        },
        ..SimSettings::default()
    };
    let (account, token) = (settings.account_sid.clone(), settings.auth_token.clone());
    let sim = Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut opts = ClientOptions::default();
    opts.retry.base = StdDuration::from_millis(5);
    opts.retry.max_backoff = StdDuration::from_millis(50);
    let twilio = TwilioClient::new(&sim.base_url, &account, TwilioAuth::AuthToken(Secret::new(token)), &opts);
    // Three recorded calls whose recording callbacks go nowhere (we were down).
    let mut sids = Vec::new();
    for i in 0..3 {
        let call = twilio
            .create_call(&CreateCall {
                to: format!("+1500555{:04}", 2000 + i),
                from: "+15005550001".into(),
                url: Some("http://sb.invalid/twiml".into()),
                record: true,
                recording_status_callback: Some("http://127.0.0.1:9/webhooks/twilio/recording".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        // Our record of the call exists (its status callbacks did arrive).
        let p = status_params(&call.sid, 0, "initiated");
        app.twilio("/webhooks/twilio/status", &refs(&p)).await;
        sids.push(call.sid);
    }
    for s in &sids {
        let mut ok = false;
        for _ in 0..400 {
            if sim.sim.calls().iter().any(|c| &c.sid == s && c.recording_sid.is_some()) {
                ok = true;
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(25)).await;
        }
        assert!(ok, "the simulator recorded {s}");
    }
    let since = chrono::Utc::now() - chrono::Duration::days(1);
    let r = switchboard::jobs::reconciler::reconcile_recordings(&*app.state.store, &twilio, since).await.unwrap();
    assert_eq!((r.listed, r.recovered), (3, 3), "{r:?}");
    for s in &sids {
        let call = app.state.store.find_call_by_sid(s).await.unwrap().unwrap();
        let recs = app.state.store.recordings_of_call(&call.id).await.unwrap();
        assert_eq!(recs.len(), 1, "{s}");
        assert_eq!((recs[0].provider, recs[0].status), (RecordingProvider::Twilio, RecordingStatus::Completed));
    }
    let again = switchboard::jobs::reconciler::reconcile_recordings(&*app.state.store, &twilio, since).await.unwrap();
    assert_eq!((again.recovered, again.up_to_date), (0, 3), "{again:?}");
    // Only recordings created since the day asked for are listed.
    let later = chrono::Utc::now() + chrono::Duration::days(2);
    let none = switchboard::jobs::reconciler::reconcile_recordings(&*app.state.store, &twilio, later).await.unwrap();
    assert_eq!(none.listed, 0, "{none:?}");
}

#[tokio::test]
async fn gazetteers_configured_per_agent_mark_products_and_competitors() {
    let app = TestApp::spawn_with(|s| {
        s.analysis.gazetteers.insert(
            "agent_7801kabc0000000000000000test".into(),
            switchboard::config::GazetteerSettings { products: vec!["Acme Pro".into()], competitors: vec![] },
        );
        s.analysis.gazetteers.insert(
            "*".into(),
            switchboard::config::GazetteerSettings { products: vec![], competitors: vec!["Globex".into()] },
        );
    })
    .await;
    let body = transcription("conv_501", &sid(0x501), "We use Globex today but acme pro looks better.", "success");
    assert_eq!(app.elevenlabs(&body).await.status(), StatusCode::OK);
    let t = app.state.store.find_transcript("conv_501").await.unwrap().unwrap();
    let entities = t.analysis.unwrap()["entities"].as_array().unwrap().clone();
    let kinds: Vec<(String, String)> = entities
        .iter()
        .map(|e| (e["kind"].as_str().unwrap().to_owned(), e["text"].as_str().unwrap().to_owned()))
        .collect();
    assert!(kinds.contains(&("competitor".into(), "Globex".into())), "{kinds:?}");
    assert!(kinds.contains(&("product".into(), "acme pro".into())), "{kinds:?}");
}
