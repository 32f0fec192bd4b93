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
