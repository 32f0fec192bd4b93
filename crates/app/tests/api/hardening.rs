//! What outside testing found (issue 7): slow clients, metrics access, error
//! bodies, media types, webhook conflicts and bounds, lost attempts, and
//! calls whose callbacks were lost while we were down.

use std::time::Duration as StdDuration;

use chrono::Duration;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::config::Secret;
use switchboard::integrations::ClientOptions;
use switchboard::integrations::elevenlabs::ElevenLabsClient;
use switchboard::integrations::twilio::{TwilioAuth, TwilioClient};
use switchboard::jobs::dialer::{Callbacks, Dialer};
use switchboard::sim::{Scenario, SimSettings, Simulator};
use switchboard_domain::campaign::{AgentSettings, Schedule};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CallUpdate, CampaignInput, CampaignStatus, ContactInput, EnrollmentStatus, Source};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{API_TOKEN, EL_SECRET, TWILIO_TOKEN, TestApp, refs, sid, status_params};

/// Reads until the peer closes; `true` when it closed within `limit`.
async fn closed_within(s: &mut TcpStream, limit: StdDuration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test]
async fn slow_header_senders_are_closed_and_health_keeps_answering() {
    let app = TestApp::spawn_with(|s| {
        s.http.header_read_timeout_secs = 1;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
        slow.push(s);
    }
    // Every partial head is cut by the header read timeout (generous bound: a loaded machine).
    for s in &mut slow {
        assert!(closed_within(s, StdDuration::from_secs(20)).await, "a slow client was never closed");
    }
    let r = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_connection_cap_holds_new_connections_until_slots_free() {
    let app = TestApp::spawn_with(|s| {
        s.http.header_read_timeout_secs = 3;
        s.http.max_connections = 4;
    })
    .await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut holders = Vec::new();
    for _ in 0..4 {
        let mut s = TcpStream::connect(&addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
        holders.push(s);
    }
    tokio::time::sleep(StdDuration::from_millis(200)).await;
    let client = reqwest::Client::new();
    let url = format!("{}/healthz", app.base);
    let fifth = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    // While the four slots are held, the fifth connection waits in the backlog…
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    assert!(!fifth.is_finished(), "the fifth connection was served past the cap of 4");
    // …and is served once the header timeout frees them.
    let status = tokio::time::timeout(StdDuration::from_secs(30), fifth).await.unwrap().unwrap().unwrap();
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn metrics_need_a_token_or_their_own_listener() {
    let app = TestApp::spawn().await;
    let r = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = app.client.get(format!("{}/metrics", app.base)).bearer_auth(API_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let app = TestApp::spawn_with(|s| s.metrics.listen = Some(format!("127.0.0.1:{port}").parse().unwrap())).await;
    let r = app.client.get(format!("{}/metrics", app.base)).bearer_auth(API_TOKEN).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not on the main listener when it has its own");
    let mut text = String::new();
    for _ in 0..50 {
        if let Ok(r) = app.client.get(format!("http://127.0.0.1:{port}/metrics")).send().await {
            assert_eq!(r.status(), StatusCode::OK);
            text = r.text().await.unwrap();
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert!(text.contains("switchboard_http_requests_total"), "{text}");
}

async fn assert_problem(r: reqwest::Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(r.status(), status);
    assert_eq!(r.headers()["content-type"], "application/problem+json", "{status}");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], code, "{b}");
    assert_eq!(b["status"], status.as_u16());
    b
}

#[tokio::test]
async fn every_error_is_problem_json() {
    let app = TestApp::spawn_with(|s| s.body_limit_bytes = 1024).await;
    let c = &app.client;
    let r = c.put(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_problem(r, StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed").await;
    let r = c.get(format!("{}/api/v1/calls/%ff", app.base)).bearer_auth(API_TOKEN).send().await.unwrap();
    assert!(r.status().is_client_error());
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let big = json!({ "phone": "+14155550100", "name": "x".repeat(4096) });
    let r = c.post(format!("{}/api/v1/contacts", app.base)).bearer_auth(API_TOKEN).json(&big).send().await.unwrap();
    assert_problem(r, StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large").await;
    let long = format!("{}/api/v1/calls?status={}", app.base, "a".repeat(10_000));
    let r = c.get(long).bearer_auth(API_TOKEN).send().await.unwrap();
    assert_problem(r, StatusCode::URI_TOO_LONG, "uri_too_long").await;
    let mut req = c.get(format!("{}/healthz", app.base));
    for i in 0..150 {
        req = req.header(format!("x-h-{i}"), "v");
    }
    assert_problem(req.send().await.unwrap(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large").await;
}

#[tokio::test]
async fn a_request_past_its_timeout_gets_a_problem_503() {
    let app = TestApp::spawn_with(|s| s.request_timeout_secs = 1).await;
    let addr = app.base.trim_start_matches("http://").to_owned();
    let mut s = TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/contacts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(StdDuration::from_secs(20), s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("application/problem+json") && text.contains("request_timeout"), "{text}");
    assert!(text.to_ascii_lowercase().contains("retry-after"), "{text}");
}

#[tokio::test]
async fn json_bodies_must_say_so_and_filters_and_caller_ids_are_checked() {
    let app = TestApp::spawn().await;
    let r = app
        .client
        .post(format!("{}/api/v1/contacts", app.base))
        .bearer_auth(API_TOKEN)
        .header("content-type", "text/plain")
        .body(r#"{"phone":"+14155550100"}"#)
        .send()
        .await
        .unwrap();
    assert_problem(r, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type").await;
    let listed = app.get_json("/api/v1/contacts", StatusCode::OK).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 0, "nothing written");

    let bad_caller = json!({ "name": "x", "agent": { "agent_id": "a", "caller_id": "not-a-number" } });
    let (s, b) = app.call(Method::POST, "/api/v1/campaigns", Some(bad_caller)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert!(b["errors"].as_array().unwrap().iter().any(|e| e["field"] == "agent.caller_id"), "{b}");

    let ok = json!({ "name": "x", "agent": { "agent_id": "a", "caller_id": "+15005550001" } });
    let (s, c) = app.call(Method::POST, "/api/v1/campaigns", Some(ok)).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let cid = c["id"].as_str().unwrap();
    for phone in ["+14155550101", "+14155550102"] {
        let (s, _) = app.call(Method::POST, "/api/v1/contacts", Some(json!({ "phone": phone }))).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let path = format!("/api/v1/campaigns/{cid}/contacts");
    let (s, b) = app.call(Method::POST, &path, Some(json!({ "filter": {} }))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    assert_eq!(b["errors"][0]["field"], "filter");
    let (s, b) = app.call(Method::POST, &path, Some(json!({ "filter": { "all": true, "tag": "x" } }))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    let progress = app.get_json(&format!("/api/v1/campaigns/{cid}/progress"), StatusCode::OK).await;
    assert_eq!(progress["enrollments"], 0, "a refused filter enrolls nobody");
    let (s, b) = app.call(Method::POST, &path, Some(json!({ "filter": { "all": true } }))).await;
    assert_eq!((s, b["added"].clone()), (StatusCode::OK, json!(2)), "{b}");
}

#[tokio::test]
async fn a_call_sid_of_another_campaign_call_is_a_conflict_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let store = app.store();
    // Two calls of different campaigns, contacts and enrollments.
    let mk = |_campaign: &str, _contact: &str| CallUpdate {
        source: Some(Source::Switchboard),
        id: Some(switchboard_domain::CallId::new()),
        campaign_id: Some(switchboard_domain::CampaignId::new()),
        contact_id: Some(switchboard_domain::ContactId::new()),
        enrollment_id: Some(switchboard_domain::EnrollmentId::new()),
        ..Default::default()
    };
    let a = store.upsert_call(&CallUpdate { call_sid: Some(sid(70)), ..mk("cmp_a", "con_a") }).await.unwrap().call;
    let b = store.upsert_call(&mk("cmp_b", "con_b")).await.unwrap().call;
    let p = status_params(&sid(70), 1, "ringing");
    let path = format!("/webhooks/twilio/status?call_id={}", b.id);
    let r = app.twilio(&path, &refs(&p)).await;
    assert_problem(r, StatusCode::CONFLICT, "conflict").await;
    assert_eq!(store.get_call(&a.id).await.unwrap(), a, "the CallSid's call is unchanged");
    assert_eq!(store.get_call(&b.id).await.unwrap(), b, "the named call is unchanged and not deleted");
    let m = app.client.get(format!("{}/metrics", app.base)).bearer_auth(API_TOKEN).send().await.unwrap();
    let m = m.text().await.unwrap();
    assert!(m.lines().any(|l| l.starts_with("switchboard_webhooks_total") && l.contains("conflict")), "{m}");
}

#[tokio::test]
async fn out_of_range_timestamps_and_repeated_keys_are_malformed() {
    let app = TestApp::spawn().await;
    for ts in ["Mon, 01 Jan 0001 00:00:00 +0000", "Fri, 31 Dec 9999 23:59:59 +0000"] {
        let mut p = status_params(&sid(71), 1, "ringing");
        p.retain(|(k, _)| *k != "Timestamp");
        p.push(("Timestamp", ts.into()));
        let b = assert_problem(
            app.twilio("/webhooks/twilio/status", &refs(&p)).await,
            StatusCode::BAD_REQUEST,
            "malformed_webhook",
        )
        .await;
        assert_eq!(b["errors"][0]["field"], "Timestamp", "{b}");
    }
    let mut p = status_params(&sid(71), 1, "ringing");
    p.push(("CallStatus", "completed".into()));
    let b = assert_problem(
        app.twilio("/webhooks/twilio/status", &refs(&p)).await,
        StatusCode::BAD_REQUEST,
        "malformed_webhook",
    )
    .await;
    assert_eq!(b["errors"][0]["field"], "CallStatus", "{b}");
    for ts in [json!(i64::MAX), json!(1_000_000_000_000_000i64), json!(-5)] {
        let body = json!({ "type": "post_call_transcription", "event_timestamp": ts,
                           "data": { "conversation_id": "conv_ts", "status": "done" } });
        let b = assert_problem(app.elevenlabs(&body).await, StatusCode::BAD_REQUEST, "malformed_webhook").await;
        assert_eq!(b["errors"][0]["field"], "event_timestamp", "{b}");
    }
    assert_eq!(app.store().count_calls().await.unwrap(), 0, "nothing written");
}

#[tokio::test]
async fn elevenlabs_details_failed_status_bad_sids_and_long_ids() {
    let app = TestApp::spawn().await;
    let failed = json!({ "type": "post_call_transcription", "event_timestamp": now_ms().timestamp(),
                         "data": { "conversation_id": "conv_failed", "status": "failed" } });
    assert_eq!(app.elevenlabs(&failed).await.status(), StatusCode::OK);
    let call = app.get_json("/api/v1/calls/conv_failed", StatusCode::OK).await;
    assert_eq!(call["status"], "failed", "a failed conversation ends the call: {call}");

    let bad_sid = json!({ "type": "post_call_transcription",
                          "data": { "conversation_id": "conv_badsid", "status": "done",
                                    "metadata": { "phone_call": { "type": "twilio", "call_sid": "not-a-sid" } } } });
    let b = assert_problem(app.elevenlabs(&bad_sid).await, StatusCode::BAD_REQUEST, "malformed_webhook").await;
    assert_eq!(b["errors"][0]["field"], "data.metadata.phone_call.call_sid");
    let long =
        json!({ "type": "post_call_transcription", "data": { "conversation_id": "c".repeat(500), "status": "done" } });
    let b = assert_problem(app.elevenlabs(&long).await, StatusCode::BAD_REQUEST, "malformed_webhook").await;
    assert_eq!(b["errors"][0]["field"], "data.conversation_id");
    assert!(!b["detail"].as_str().unwrap().contains("CHECK"), "no store text leaks: {b}");
}

#[tokio::test]
async fn a_completed_only_callback_derives_the_start_from_the_duration() {
    let app = TestApp::spawn().await;
    let p = status_params(&sid(72), 3, "completed");
    assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    let call = app.get_json(&format!("/api/v1/calls/{}", sid(72)), StatusCode::OK).await;
    assert_eq!(call["ended_at"], "2026-11-17T10:15:25.000Z");
    assert_eq!(call["started_at"], "2026-11-17T10:14:48.000Z", "37 s before the end: {call}");
}

async fn enrollments(
    store: &dyn switchboard_storage::Storage,
    id: &switchboard_domain::CampaignId,
) -> Vec<switchboard_domain::Enrollment> {
    let p = store.list_enrollments(id, &[], &switchboard_storage::PageRequest::first(200)).await.unwrap();
    p.items
}

async fn running_campaign(
    store: &dyn switchboard_storage::Storage,
    phones: &[&str],
) -> (switchboard_domain::Campaign, Vec<switchboard_domain::Contact>) {
    let now = now_ms();
    let mut c = CampaignInput {
        name: Some("hardening".into()),
        agent: Some(AgentSettings {
            agent_id: "agent_sim".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        schedule: Some(Schedule { windows: vec![], time_zone: "UTC".into(), holidays: vec![], ..Schedule::default() }),
        ..Default::default()
    }
    .apply(None, now)
    .unwrap();
    c.status = CampaignStatus::Running;
    c.pacing.calls_per_minute = 6000;
    c.pacing.max_concurrent = 10;
    store.insert_campaign(&c).await.unwrap();
    let mut contacts = Vec::new();
    for phone in phones {
        let k = ContactInput { phone: Some((*phone).into()), ..Default::default() }.validate("US", now).unwrap();
        store.insert_contact(&k).await.unwrap();
        contacts.push(k);
    }
    let ids: Vec<_> = contacts.iter().map(|k| k.id.clone()).collect();
    store.enroll(&c.id, &ids, now).await.unwrap();
    (c, contacts)
}

#[tokio::test]
async fn an_in_flight_enrollment_whose_call_is_missing_ends_and_frees_its_slot() {
    let app = TestApp::spawn().await;
    let store = app.store();
    let (c, ks) = running_campaign(&*store, &["+15005550901"]).await;
    let now = now_ms();
    // An attempt recorded and its slot taken, but its call record is gone.
    let mut e = store.claim_enrollment(&c.id, now, "owner", now + Duration::seconds(60)).await.unwrap().unwrap();
    let key = format!("{}:{}", e.id, e.attempts + 1);
    assert!(matches!(
        store.acquire_dial_slot(&c.id, &key, now).await.unwrap(),
        switchboard_storage::SlotGrant::Granted
    ));
    e.placed(switchboard_domain::CallId::new(), now);
    e.status = EnrollmentStatus::InCall;
    e.lease = None;
    store.replace_enrollment(&e).await.unwrap();
    let d = Dialer::new(store.clone(), None, None, Callbacks { public_base: app.base.clone() }, "d");
    let r = d.step(now + Duration::seconds(5)).await.unwrap();
    assert_eq!(r.reconciled, 1, "{r:?}");
    let e = store.find_enrollment(&c.id, &ks[0].id).await.unwrap().unwrap();
    assert_ne!(e.status, EnrollmentStatus::InCall, "{e:?}");
    assert!(e.reason.as_deref().unwrap_or("").contains("missing"), "{e:?}");
    assert!(store.get_campaign(&c.id).await.unwrap().unwrap().inflight.is_empty(), "slot freed");
}

#[tokio::test]
async fn calls_whose_callbacks_were_lost_are_reconciled_from_the_provider_within_minutes() {
    let app = TestApp::spawn().await;
    let store = app.store();
    // Every callback is lost: Twilio's go to a port where nothing listens (we were down), and
    // the ElevenLabs post-call webhooks are dropped.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut scenario = Scenario { time_scale: 1000.0, ..Scenario::default() };
    scenario.faults.drop_elevenlabs_rate = 1.0;
    let settings = SimSettings {
        auth_token: TWILIO_TOKEN.into(),
        elevenlabs_webhook_secret: EL_SECRET.into(),
        elevenlabs_webhook_url: Some(format!("{dead}/webhooks/elevenlabs")),
        scenario,
        ..SimSettings::default()
    };
    let (account, key) = (settings.account_sid.clone(), settings.elevenlabs_api_key.clone());
    let sim = Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut opts = ClientOptions::default();
    opts.retry.base = StdDuration::from_millis(5);
    opts.retry.max_backoff = StdDuration::from_millis(50);
    let twilio = TwilioClient::new(&sim.base_url, &account, TwilioAuth::AuthToken(Secret::new(TWILIO_TOKEN)), &opts);
    let dialer = |owner: &str| {
        Dialer::new(
            store.clone(),
            Some(twilio.clone()),
            Some(ElevenLabsClient::new(&sim.base_url, Secret::new(key.clone()), &opts)),
            Callbacks { public_base: dead.clone() },
            owner,
        )
    };
    let phones = ["+15005550911", "+15005550912", "+15005550913"];
    let (c, _) = running_campaign(&*store, &phones).await;
    let t = now_ms();
    let first = dialer("before-the-crash");
    let mut placed = 0;
    for i in 0..3 {
        placed += first.step(t + Duration::seconds(i)).await.unwrap().placed;
    }
    assert_eq!(placed, 3);
    drop(first);
    // The provider finishes every call while no callback reaches us.
    let sids: Vec<String> = {
        let mut out = Vec::new();
        for e in enrollments(&*store, &c.id).await {
            let call = store.get_call(e.current_call_id.as_ref().unwrap()).await.unwrap();
            out.push(call.call_sid.clone().expect("the create answer attached the CallSid"));
        }
        out
    };
    for s in &sids {
        let mut done = false;
        for _ in 0..200 {
            let st = twilio.fetch_call(s).await.unwrap().status;
            if ["completed", "busy", "no-answer", "failed", "canceled"].contains(&st.as_str()) {
                done = true;
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        assert!(done, "the simulator finished {s}");
    }
    // A restarted dialer: before the quiet period nothing is asked; after it, every call is.
    let second = dialer("after-the-restart");
    let r = second.step(t + Duration::minutes(1)).await.unwrap();
    assert_eq!(r.reconciled, 0, "{r:?}");
    for e in enrollments(&*store, &c.id).await {
        assert_eq!(e.status, EnrollmentStatus::InCall, "no callback arrived: {e:?}");
    }
    let r = second.step(t + Duration::minutes(11)).await.unwrap();
    assert_eq!(r.reconciled, 3, "{r:?}");
    for e in enrollments(&*store, &c.id).await {
        assert_ne!(e.status, EnrollmentStatus::InCall, "{e:?}");
        assert!(e.last_outcome.is_some(), "{e:?}");
    }
    let campaign = store.get_campaign(&c.id).await.unwrap().unwrap();
    assert!(campaign.inflight.is_empty(), "slots freed: {:?}", campaign.inflight);
    let ev = app.get_json("/api/v1/events?type=twilio.reconciled.*", StatusCode::OK).await;
    assert_eq!(ev["data"].as_array().unwrap().len(), 3, "{ev}");
}

fn csv_rows(n: u32, offset: u32) -> Vec<u8> {
    let mut csv = String::from("phone,name\n");
    for i in 0..n {
        csv.push_str(&format!("+1415{:07},P{i}\n", 3_000_000 + offset + i));
    }
    csv.into_bytes()
}

async fn contact_count(app: &TestApp) -> usize {
    let mut n = 0;
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=200&cursor={c}"),
            None => "/api/v1/contacts?limit=200".into(),
        };
        let page = app.get_json(&path, StatusCode::OK).await;
        n += page["data"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return n,
        }
    }
}

#[tokio::test]
async fn uploads_and_fields_have_limits() {
    let app = TestApp::spawn_with(|s| {
        s.import.max_upload_bytes = 4096;
        s.import.max_field_bytes = 256;
    })
    .await;
    let (s, b) = app.post_bytes("/api/v1/contacts/import", csv_rows(500, 0), "text/csv").await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{b}");
    assert_eq!(b["code"], "payload_too_large");
    assert_eq!(contact_count(&app).await, 0, "nothing written");

    let mut csv = String::from("phone,name,notes\n+14155550001,Ann,ok\n");
    csv.push_str(&format!("+14155550002,Bob,\"{}\"\n", "x".repeat(1000)));
    csv.push_str("+14155550003,Cy,ok\n");
    let (s, b) = app.post_bytes("/api/v1/contacts/import", csv.clone().into_bytes(), "text/csv").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{b}");
    assert_eq!(b["errors"][0]["line"], 3, "{b}");
    assert!(b["errors"][0]["reason"].as_str().unwrap().contains("longer than 256"), "{b}");
    let (s, b) = app.post_bytes("/api/v1/contacts/import?partial=true", csv.into_bytes(), "text/csv").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!((b["inserted"].clone(), b["invalid"].clone()), (json!(2), json!(1)), "{b}");
}

#[tokio::test]
async fn a_long_import_answers_202_and_finishes_whole_even_if_the_client_leaves() {
    let app = TestApp::spawn_with(|s| s.import.sync_wait_ms = 0).await;
    let (s, b) = app.post_bytes("/api/v1/contacts/import", csv_rows(3000, 0), "text/csv").await;
    assert_eq!(s, StatusCode::ACCEPTED, "{b}");
    let url = b["status_url"].as_str().unwrap().to_owned();
    let mut job = Value::Null;
    for _ in 0..600 {
        job = app.get_json(&url, StatusCode::OK).await;
        if job["status"] != "running" {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["report"]["inserted"], 3000, "{job}");
    assert_eq!(contact_count(&app).await, 3000);

    // A client that goes away once its upload is in: the import still lands whole.
    let client = app.client.clone();
    let req = client
        .post(format!("{}/api/v1/contacts/import", app.base))
        .bearer_auth(API_TOKEN)
        .header("content-type", "text/csv")
        .body(csv_rows(3000, 10_000))
        .send();
    let pending = tokio::spawn(req);
    for _ in 0..600 {
        if contact_count(&app).await > 3000 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    pending.abort();
    let mut n = 0;
    for _ in 0..600 {
        n = contact_count(&app).await;
        if n == 6000 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(n, 6000, "the import went on after the client left");
    let missing = app.get_json("/api/v1/imports/imp_nope", StatusCode::NOT_FOUND).await;
    assert_eq!(missing["code"], "not_found");
}
