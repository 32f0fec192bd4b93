//! ElevenLabs post-call webhooks and the cross-provider merge.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, refs, sid, status_params};

fn transcription(conv: &str, call_sid: Option<&str>) -> Value {
    json!({
        "type": "post_call_transcription",
        "event_timestamp": 1794916542,
        "data": {
            "agent_id": "agent_7801kabc0000000000000000test",
            "conversation_id": conv,
            "status": "done",
            "transcript": [{ "role": "agent", "message": "Hi Dana", "time_in_call_secs": 0 }],
            "metadata": {
                "start_time_unix_secs": 1794916460, "call_duration_secs": 37, "cost": 412,
                "termination_reason": "end_call tool was called.",
                "phone_call": call_sid.map(|s| json!({ "type": "twilio", "direction": "outbound", "call_sid": s }))
            },
            "analysis": { "call_successful": "success", "transcript_summary": "Booked a slot." }
        }
    })
}

#[tokio::test]
async fn twilio_then_elevenlabs_gives_one_record_with_both_providers_facts() {
    let app = TestApp::spawn().await;
    let s = sid(10);
    for (seq, st) in [(0, "initiated"), (3, "busy")] {
        let p = status_params(&s, seq, st);
        assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    }
    let r = app.elevenlabs(&transcription("conv_a1", Some(&s))).await;
    assert_eq!(r.status(), StatusCode::OK);
    let by_conv = app.get_json("/api/v1/calls/conv_a1", StatusCode::OK).await;
    let by_sid = app.get_json(&format!("/api/v1/calls/{s}"), StatusCode::OK).await;
    assert_eq!(by_conv, by_sid);
    assert_eq!(by_sid["status"], "busy", "Twilio owns the telephony outcome");
    assert_eq!(by_sid["call_successful"], "success");
    assert_eq!(by_sid["cost_credits"], 412);
    assert_eq!(by_sid["agent_id"], "agent_7801kabc0000000000000000test");
    assert_eq!(app.store().count_calls().await.unwrap(), 1);
    // ElevenLabs sends once, but a replay must still be harmless.
    assert_eq!(app.elevenlabs(&transcription("conv_a1", Some(&s))).await.status(), StatusCode::OK);
    let ev = app.get_json("/api/v1/events?source=elevenlabs", StatusCode::OK).await;
    assert_eq!(ev["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn elevenlabs_first_without_a_sid_then_linked_later_stays_one_record() {
    link_scenario(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn elevenlabs_first_then_linked_later_stays_one_record_on_mongodb() {
    if let Some(app) = TestApp::spawn_mongo().await {
        link_scenario(&app).await;
    }
}

async fn link_scenario(app: &TestApp) {
    let s = sid(11);
    assert_eq!(app.elevenlabs(&transcription("conv_b1", None)).await.status(), StatusCode::OK);
    let p = status_params(&s, 3, "completed");
    assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.store().count_calls().await.unwrap(), 2, "not linked yet: nothing says they are one call");
    let failure = json!({
        "type": "call_initiation_failure", "event_timestamp": 1794916600,
        "data": { "agent_id": "agent_x", "conversation_id": "conv_b1", "failure_reason": "busy",
                  "metadata": { "type": "twilio", "body": { "CallSid": s, "CallStatus": "busy" } } }
    });
    assert_eq!(app.elevenlabs(&failure).await.status(), StatusCode::OK);
    assert_eq!(app.store().count_calls().await.unwrap(), 1, "linked: merged into one record");
    let call = app.get_json(&format!("/api/v1/calls/{s}"), StatusCode::OK).await;
    assert_eq!(call["conversation_id"], "conv_b1");
    assert_eq!(call["status"], "completed", "Twilio's own terminal status wins over the inferred one");
    let events = app.get_json(&format!("/api/v1/calls/{s}/events"), StatusCode::OK).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 3, "events of both records are kept");
}

#[tokio::test]
async fn bad_elevenlabs_signatures_and_bodies_are_refused() {
    let app = TestApp::spawn().await;
    let body = serde_json::to_vec(&transcription("conv_c1", None)).unwrap();
    let send = |sig: String, body: Vec<u8>| {
        app.client
            .post(format!("{}/webhooks/elevenlabs", app.base))
            .header("elevenlabs-signature", sig)
            .body(body)
            .send()
    };
    let now = chrono::Utc::now().timestamp();
    let stale = switchboard::webhooks::verify::elevenlabs_signature(crate::helpers::EL_SECRET, now - 3600, &body);
    assert_eq!(send(stale, body.clone()).await.unwrap().status(), StatusCode::FORBIDDEN);
    let wrong = switchboard::webhooks::verify::elevenlabs_signature("other-secret", now, &body);
    assert_eq!(send(wrong, body.clone()).await.unwrap().status(), StatusCode::FORBIDDEN);
    let no_conv = json!({ "type": "post_call_transcription", "data": { "status": "done" } });
    let r = app.elevenlabs(&no_conv).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["errors"][0]["field"], "data.conversation_id");
    assert_eq!(app.store().count_calls().await.unwrap(), 0);
    // A type added after this release is acknowledged (a 4xx counts towards ElevenLabs
    // disabling the webhook) and kept as a raw event of its conversation.
    let unknown = json!({ "type": "mystery", "data": { "conversation_id": "c" } });
    assert_eq!(app.elevenlabs(&unknown).await.status(), StatusCode::OK);
    let ev = app.get_json("/api/v1/events?type=elevenlabs.mystery", StatusCode::OK).await;
    assert_eq!(ev["data"].as_array().unwrap().len(), 1, "{ev}");
    assert_eq!(ev["data"][0]["payload"]["type"], "mystery");
}
