//! Client tests against the scripted fake: every endpoint and every error class.

use std::time::Duration;

use base64::Engine;
use serde_json::json;

use super::elevenlabs::{ConversationQuery, ElevenLabsClient, OutboundCall, RegisterCall};
use super::fake::{Fake, Reply};
use super::retry::RetryPolicy;
use super::twilio::{CreateCall, TwilioAuth, TwilioClient};
use super::{ClientOptions, UpstreamError};
use crate::secret::Secret;

const AC: &str = "AC00000000000000000000000000000001";

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_millis(500),
        retry: RetryPolicy { max_attempts: 3, base: Duration::from_millis(5), max_backoff: Duration::from_millis(50) },
    }
}

fn twilio(fake: &Fake) -> TwilioClient {
    TwilioClient::new(&fake.base, AC, TwilioAuth::AuthToken(Secret::new("tok")), &opts())
}

fn call_json(status: &str) -> serde_json::Value {
    json!({ "sid": "CA11111111111111111111111111111111", "account_sid": AC, "to": "+15005550006",
            "from": "+15005550001", "status": status, "direction": "outbound-api", "answered_by": null,
            "duration": null, "start_time": null, "end_time": null, "price": null, "price_unit": "USD", "queue_time": "0" })
}

fn placement() -> CreateCall {
    CreateCall {
        to: "+15005550006".into(),
        from: "+15005550001".into(),
        url: Some("https://sb.example/twiml".into()),
        status_callback: Some("https://sb.example/webhooks/twilio/status".into()),
        status_callback_events: vec!["initiated".into(), "ringing".into(), "answered".into(), "completed".into()],
        record: true,
        machine_detection: Some("Enable".into()),
        async_amd: true,
        async_amd_status_callback: Some("https://sb.example/webhooks/twilio/amd".into()),
        ..Default::default()
    }
}

#[tokio::test]
async fn create_call_posts_the_form_with_basic_auth_and_repeated_events() {
    let fake = Fake::start(vec![Reply::json(201, call_json("queued"))]).await;
    let call = twilio(&fake).create_call(&placement()).await.unwrap();
    assert_eq!(call.status, "queued");
    let seen = fake.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, axum::http::Method::POST);
    assert_eq!(seen[0].uri, format!("/2010-04-01/Accounts/{AC}/Calls.json"));
    let auth = seen[0].headers["authorization"].to_str().unwrap().to_owned();
    let expected = base64::engine::general_purpose::STANDARD.encode(format!("{AC}:tok"));
    assert_eq!(auth, format!("Basic {expected}"));
    let form: Vec<(String, String)> = form_urlencoded::parse(&seen[0].body).into_owned().collect();
    let events: Vec<&str> = form.iter().filter(|(k, _)| k == "StatusCallbackEvent").map(|(_, v)| v.as_str()).collect();
    assert_eq!(events, ["initiated", "ringing", "answered", "completed"]);
    assert!(form.contains(&("AsyncAmd".into(), "true".into())));
    assert!(form.contains(&("Record".into(), "true".into())));
}

#[tokio::test]
async fn api_key_auth_uses_the_key_sid_as_username() {
    let fake = Fake::start(vec![Reply::json(200, call_json("completed"))]).await;
    let c =
        TwilioClient::new(&fake.base, AC, TwilioAuth::ApiKey { sid: "SK1".into(), secret: Secret::new("s") }, &opts());
    c.fetch_call("CA11111111111111111111111111111111").await.unwrap();
    let auth = fake.seen()[0].headers["authorization"].to_str().unwrap().to_owned();
    assert_eq!(auth, format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("SK1:s")));
}

#[tokio::test]
async fn a_429_is_retried_honouring_retry_after_then_succeeds() {
    let busy = json!({"code": 20429, "message": "Too Many Requests", "status": 429});
    let fake =
        Fake::start(vec![Reply::json(429, busy).header("retry-after", "0.02"), Reply::json(201, call_json("queued"))])
            .await;
    let call = twilio(&fake).create_call(&placement()).await.unwrap();
    assert_eq!(call.sid, "CA11111111111111111111111111111111");
    assert_eq!(fake.seen().len(), 2);
}

#[tokio::test]
async fn a_5xx_on_call_creation_is_not_retried_because_it_may_have_dialled() {
    let fake =
        Fake::start(vec![Reply::json(500, json!({"message": "oops"})), Reply::json(201, call_json("queued"))]).await;
    let err = twilio(&fake).create_call(&placement()).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Upstream5xx { status: 500, .. }), "{err:?}");
    assert!(err.is_transient());
    assert_eq!(fake.seen().len(), 1, "never a second placement");
}

#[tokio::test]
async fn a_5xx_on_a_read_is_retried_until_the_policy_runs_out() {
    let fake = Fake::start(vec![Reply::text(503, "down"), Reply::text(502, "down"), Reply::text(503, "down")]).await;
    let err = twilio(&fake).fetch_call("CA1").await.unwrap_err();
    assert!(matches!(err, UpstreamError::Upstream5xx { status: 503, .. }), "{err:?}");
    assert_eq!(fake.seen().len(), 3);
}

#[tokio::test]
async fn error_classes_map_from_twilio_bodies() {
    let fake = Fake::start(vec![
        Reply::json(401, json!({"code": 20003, "message": "Authenticate"})),
        Reply::json(404, json!({"code": 20404, "message": "not found"})),
        Reply::json(400, json!({"code": 21211, "message": "Invalid 'To' Phone Number"})),
        Reply::text(200, "not json"),
    ])
    .await;
    let c = twilio(&fake);
    assert!(matches!(c.fetch_call("CA1").await.unwrap_err(), UpstreamError::Auth { status: 401, .. }));
    assert!(matches!(c.fetch_call("CA1").await.unwrap_err(), UpstreamError::NotFound { .. }));
    let e = c.create_call(&placement()).await.unwrap_err();
    assert!(matches!(&e, UpstreamError::Rejected { code: Some(21211), .. }), "{e:?}");
    assert!(e.to_string().contains("21211") && !e.is_transient());
    assert!(matches!(c.fetch_call("CA1").await.unwrap_err(), UpstreamError::BadResponse { .. }));
    let no_url = CreateCall { url: None, twiml: None, ..placement() };
    assert!(matches!(c.create_call(&no_url).await.unwrap_err(), UpstreamError::Rejected { status: 400, .. }));
}

#[tokio::test]
async fn slow_and_unreachable_upstreams_are_timeouts_and_transport_errors() {
    let slow = Fake::start(vec![Reply::json(201, call_json("queued")).delayed(Duration::from_secs(2))]).await;
    let e = twilio(&slow).create_call(&placement()).await.unwrap_err();
    assert_eq!(e, UpstreamError::Timeout { provider: "twilio" });
    assert!(!e.certainly_not_processed(), "a timed-out placement may have dialled");
    assert_eq!(slow.seen().len(), 1, "a timed-out placement is not repeated");
    // Nothing listens on this port: the request never left, so even a placement may be retried.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let c = TwilioClient::new(dead, AC, TwilioAuth::AuthToken(Secret::new("t")), &opts());
    let e = c.create_call(&placement()).await.unwrap_err();
    assert!(matches!(e, UpstreamError::Transport { .. }), "{e:?}");
    assert!(e.certainly_not_processed(), "{e:?}");
    assert!(UpstreamError::RateLimited { provider: "twilio", retry_after: None }.certainly_not_processed());
    assert!(
        !UpstreamError::Transport { provider: "twilio", message: "connection reset".into() }.certainly_not_processed()
    );
}

#[tokio::test]
async fn recordings_are_listed_across_pages_and_media_is_downloaded() {
    let rec = |sid: &str| json!({ "sid": sid, "call_sid": "CA1", "duration": "35", "status": "completed", "channels": 2, "source": "OutboundAPI" });
    let fake = Fake::start(vec![
        Reply::json(200, json!({ "recordings": [rec("RE1")], "next_page_uri": format!("/2010-04-01/Accounts/{AC}/Calls/CA1/Recordings.json?Page=1&PageToken=x") })),
        Reply::json(200, json!({ "recordings": [rec("RE2")], "next_page_uri": null })),
        Reply::json(200, rec("RE2")),
        Reply::text(200, "ID3-mp3-bytes"),
    ])
    .await;
    let c = twilio(&fake);
    let all = c.list_recordings("CA1").await.unwrap();
    assert_eq!(all.iter().map(|r| r.sid.as_str()).collect::<Vec<_>>(), ["RE1", "RE2"]);
    assert!(fake.seen()[1].uri.contains("PageToken=x"));
    assert_eq!(c.fetch_recording("RE2").await.unwrap().channels, Some(2));
    assert_eq!(&c.fetch_recording_media("RE2", "mp3").await.unwrap()[..], b"ID3-mp3-bytes");
    assert!(c.recording_media_url("RE2", "wav").ends_with("/Recordings/RE2.wav"));
    assert!(!format!("{c:?}").contains("tok"), "credentials never in Debug");
}

fn eleven(fake: &Fake) -> ElevenLabsClient {
    ElevenLabsClient::new(&fake.base, Secret::new("xi-key"), &opts())
}

fn outbound() -> OutboundCall {
    OutboundCall {
        agent_id: "agent_1".into(),
        agent_phone_number_id: "phnum_1".into(),
        to_number: "+15005550006".into(),
        conversation_initiation_client_data: None,
    }
}

#[tokio::test]
async fn outbound_call_reads_the_camel_case_call_sid_and_sends_the_api_key() {
    let fake = Fake::start(vec![Reply::json(
        200,
        json!({"success": true, "message": "Success", "conversation_id": "conv_1", "callSid": "CA44444444444444444444444444444444"}),
    )])
    .await;
    let r = eleven(&fake).outbound_call(&outbound()).await.unwrap();
    assert_eq!(r.call_sid.as_deref(), Some("CA44444444444444444444444444444444"));
    assert_eq!(r.conversation_id.as_deref(), Some("conv_1"));
    let seen = &fake.seen()[0];
    assert_eq!(seen.headers["xi-api-key"], "xi-key");
    let body: serde_json::Value = serde_json::from_slice(&seen.body).unwrap();
    assert_eq!(body["to_number"], "+15005550006");
}

#[tokio::test]
async fn elevenlabs_errors_are_typed() {
    let fake = Fake::start(vec![
        Reply::json(
            422,
            json!({"detail": [{"loc": ["body", "to_number"], "msg": "Field required", "type": "missing"}]}),
        ),
        Reply::json(401, json!({"detail": {"status": "invalid_api_key", "message": "Invalid API key"}})),
        Reply::json(200, json!({"success": false, "message": "No capacity", "conversation_id": null, "callSid": null})),
        Reply::json(429, json!({"detail": {"status": "system_busy", "message": "busy"}})),
        Reply::json(429, json!({"detail": {"status": "system_busy", "message": "busy"}})),
        Reply::json(429, json!({"detail": {"status": "system_busy", "message": "busy"}})),
    ])
    .await;
    let c = eleven(&fake);
    let e = c.outbound_call(&outbound()).await.unwrap_err();
    assert!(
        matches!(&e, UpstreamError::Rejected { status: 422, .. }) && e.to_string().contains("body.to_number"),
        "{e}"
    );
    let e = c.outbound_call(&outbound()).await.unwrap_err();
    assert!(matches!(&e, UpstreamError::Auth { .. }) && e.to_string().contains("invalid_api_key"), "{e}");
    assert!(matches!(c.outbound_call(&outbound()).await.unwrap_err(), UpstreamError::Rejected { status: 200, .. }));
    assert!(matches!(c.get_conversation("conv_1").await.unwrap_err(), UpstreamError::RateLimited { .. }));
    assert_eq!(fake.seen().len(), 6, "the read was retried three times");
}

#[tokio::test]
async fn register_call_returns_twiml_and_conversations_page_with_cursors() {
    let twiml = r#"<?xml version="1.0"?><Response><Connect><Stream url="wss://x"/></Connect></Response>"#;
    let fake = Fake::start(vec![
        Reply::text(200, twiml),
        Reply::json(200, json!({"conversations": [{"agent_id": "a", "conversation_id": "c1", "status": "done", "start_time_unix_secs": 1, "call_duration_secs": 3, "call_successful": "success"}], "next_cursor": "n1", "has_more": true})),
        Reply::json(200, json!({"agent_id": "a", "conversation_id": "c1", "status": "done"})),
        Reply::text(200, "mp3"),
        Reply::text(200, "{}"),
    ])
    .await;
    let c = eleven(&fake);
    let req = RegisterCall {
        agent_id: "a".into(),
        from_number: "+1".into(),
        to_number: "+2".into(),
        direction: "outbound".into(),
        conversation_initiation_client_data: None,
    };
    assert_eq!(c.register_call(&req).await.unwrap(), twiml);
    let page = c
        .list_conversations(&ConversationQuery {
            cursor: Some("n0".into()),
            page_size: Some(100),
            agent_id: Some("a".into()),
            call_start_after_unix: Some(10),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.next_cursor.as_deref(), Some("n1"));
    assert!(page.has_more);
    let uri = &fake.seen()[1].uri;
    assert!(
        uri.contains("cursor=n0") && uri.contains("page_size=100") && uri.contains("call_start_after_unix=10"),
        "{uri}"
    );
    assert_eq!(c.get_conversation("c1").await.unwrap()["status"], "done");
    assert_eq!(&c.get_conversation_audio("c1").await.unwrap()[..], b"mp3");
    assert!(matches!(c.register_call(&req).await.unwrap_err(), UpstreamError::BadResponse { .. }));
}
