//! Twilio status and AMD callbacks end to end.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, refs, sid, status_params};

#[tokio::test]
async fn a_signed_status_sequence_builds_one_merged_call_with_every_event() {
    status_sequence_scenario(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn a_signed_status_sequence_builds_one_merged_call_on_mongodb() {
    if let Some(app) = TestApp::spawn_mongo().await {
        status_sequence_scenario(&app).await;
    }
}

pub async fn status_sequence_scenario(app: &TestApp) {
    // Arrange
    let s = sid(1);
    // Act: out of order, with a duplicate.
    for (seq, st) in [(0, "initiated"), (2, "in-progress"), (1, "ringing"), (3, "completed"), (2, "in-progress")] {
        let p = status_params(&s, seq, st);
        let r = app.twilio("/webhooks/twilio/status", &refs(&p)).await;
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
    }
    // Assert
    let call = app.get_json(&format!("/api/v1/calls/{s}"), StatusCode::OK).await;
    assert_eq!(call["status"], "completed");
    assert_eq!(call["last_sequence"], 3);
    assert_eq!(call["duration_secs"], 37);
    assert_eq!(call["direction"], "outbound-api");
    assert_eq!(call["started_at"], "2026-11-17T10:15:10.000Z");
    assert_eq!(call["answered_at"], "2026-11-17T10:15:20.000Z");
    assert_eq!(call["ended_at"], "2026-11-17T10:15:25.000Z");
    let id = call["id"].as_str().unwrap();
    let events = app.get_json(&format!("/api/v1/calls/{id}/events"), StatusCode::OK).await;
    let types: Vec<&str> = events["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        ["twilio.status.initiated", "twilio.status.ringing", "twilio.status.in-progress", "twilio.status.completed"]
    );
    assert_eq!(events["data"][3]["payload"]["CallDuration"], "37");
    assert_eq!(app.store().count_calls().await.unwrap(), 1);
}

#[tokio::test]
async fn a_replayed_callback_is_a_no_op_2xx() {
    let app = TestApp::spawn().await;
    let p = status_params(&sid(2), 1, "ringing");
    assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    let before = app.get_json(&format!("/api/v1/calls/{}", sid(2)), StatusCode::OK).await;
    assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    let after = app.get_json(&format!("/api/v1/calls/{}", sid(2)), StatusCode::OK).await;
    assert_eq!(before, after, "a replay changes nothing, not even updated_at");
    let events = app.get_json("/api/v1/events?type=twilio.status.*", StatusCode::OK).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_bad_signature_is_403_and_writes_nothing() {
    let app = TestApp::spawn().await;
    let p = status_params(&sid(3), 0, "initiated");
    let r = app.twilio_signed("/webhooks/twilio/status", &refs(&p), "S0I9fQxzz16nUUPx1OvKZiGiRGw=").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "invalid_signature");
    let r = app.twilio_signed("/webhooks/twilio/status", &refs(&p), "").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Signed for another URL (e.g. a different path) does not verify here.
    let owned: Vec<(String, String)> = p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let other = switchboard::webhooks::verify::twilio_signature(
        crate::helpers::TWILIO_TOKEN,
        &format!("{}/webhooks/twilio/amd", app.base),
        &owned,
    );
    assert_eq!(app.twilio_signed("/webhooks/twilio/status", &refs(&p), &other).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.store().count_calls().await.unwrap(), 0);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("switchboard_webhook_signature_failures_total"), "{metrics}");
}

#[tokio::test]
async fn a_malformed_callback_is_400_naming_each_field() {
    let app = TestApp::spawn().await;
    let r = app
        .twilio(
            "/webhooks/twilio/status",
            &[("CallSid", "CA123"), ("CallStatus", "exploded"), ("SequenceNumber", "-1"), ("Timestamp", "yesterday")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "malformed_webhook");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["CallSid", "CallStatus", "SequenceNumber", "Timestamp"]);
    let r = app.twilio("/webhooks/twilio/status", &[("CallStatus", "ringing")]).await;
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "CallSid");
    assert_eq!(body["errors"][0]["reason"], "required");
    assert_eq!(app.store().count_calls().await.unwrap(), 0);
}

#[tokio::test]
async fn an_inbound_call_and_its_amd_result_are_recorded() {
    let app = TestApp::spawn().await;
    let s = sid(4);
    let mut p = status_params(&s, 0, "ringing");
    for (k, v) in p.iter_mut() {
        if *k == "Direction" {
            *v = "inbound".into();
        }
    }
    assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    let amd = [
        ("CallSid", s.as_str()),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("AnsweredBy", "machine_end_beep"),
        ("MachineDetectionDuration", "2400"),
    ];
    assert_eq!(app.twilio("/webhooks/twilio/amd", &amd).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.twilio("/webhooks/twilio/amd", &amd).await.status(), StatusCode::NO_CONTENT);
    let call = app.get_json(&format!("/api/v1/calls/{s}"), StatusCode::OK).await;
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["answered_by"], "machine_end_beep");
    let list = app.get_json("/api/v1/calls?answered_by=machine_end_beep&direction=inbound", StatusCode::OK).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let events = app.get_json("/api/v1/events?type=twilio.amd", StatusCode::OK).await;
    assert_eq!(events["data"].as_array().unwrap().len(), 1, "AMD replay stored once");
    let bad = app.twilio("/webhooks/twilio/amd", &[("CallSid", s.as_str()), ("AnsweredBy", "robot")]).await;
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_store_outage_answers_503_so_twilio_retries_and_the_retry_lands() {
    let (app, switch) = TestApp::spawn_flaky().await;
    let p = status_params(&sid(5), 0, "initiated");
    switch.store(true, std::sync::atomic::Ordering::SeqCst);
    let r = app.twilio("/webhooks/twilio/status", &refs(&p)).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(r.headers().contains_key("retry-after"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["code"], "store_unavailable");
    let ready = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    // The provider retries once the store is back: nothing was lost.
    switch.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    let call = app.get_json(&format!("/api/v1/calls/{}", sid(5)), StatusCode::OK).await;
    assert_eq!(call["status"], "initiated");
}

#[tokio::test]
async fn an_unreachable_sqlite_path_fails_start_up_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let mut s = crate::helpers::settings(dir.path(), 1);
    s.storage.sqlite_path = blocker.join("db.sqlite");
    let err = switchboard::store::open(&s).await.err().expect("must fail");
    let msg = format!("{err:#}");
    assert!(msg.contains("cannot create directory"), "{msg}");
}

#[tokio::test]
async fn a_call_id_in_the_callback_url_links_the_callback_to_the_dialled_record() {
    let app = TestApp::spawn().await;
    // The dialer recorded the call before placing it; the placement's answer (with the CallSid) was lost.
    let id = switchboard_domain::CallId::new();
    let placed = switchboard_domain::CallUpdate {
        id: Some(id.clone()),
        source: Some(switchboard_domain::Source::Switchboard),
        status: Some(switchboard_domain::CallStatus::Queued),
        campaign_id: Some(switchboard_domain::CampaignId::parse("cmp_00000000000000000000000000000001").unwrap()),
        enrollment_id: Some(switchboard_domain::EnrollmentId::parse("enr_00000000000000000000000000000001").unwrap()),
        ..Default::default()
    };
    app.store().upsert_call(&placed).await.unwrap();
    let p = status_params(&sid(77), 0, "initiated");
    let r = app.twilio(&format!("/webhooks/twilio/status?call_id={id}"), &refs(&p)).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let p = status_params(&sid(77), 1, "ringing");
    assert_eq!(
        app.twilio(&format!("/webhooks/twilio/status?call_id={id}"), &refs(&p)).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.store().count_calls().await.unwrap(), 1, "one record, not one per key");
    let rec = app.store().get_call(&id).await.unwrap();
    assert_eq!(rec.call_sid.as_deref(), Some(sid(77).as_str()));
    assert_eq!(rec.status.as_str(), "ringing");
    assert_eq!(rec.enrollment_id.as_ref().map(|e| e.as_str()), Some("enr_00000000000000000000000000000001"));
    // A call_id that is not one of ours is a malformed webhook.
    let r = app.twilio("/webhooks/twilio/status?call_id=nope", &refs(&status_params(&sid(78), 0, "initiated"))).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["errors"][0]["field"], "call_id");
}
