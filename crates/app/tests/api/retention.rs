//! Recording retention (`jobs::retention`, `switchboard recordings expire`)
//! against the simulator: a dry run reports and touches nothing; applied, the
//! recordings older than the cutoff are deleted at Twilio (the simulator then
//! answers 404) and marked deleted here; younger ones and ElevenLabs audio
//! (no audio-only delete) are left alone.

use std::time::Duration as StdDuration;

use chrono::Duration;
use reqwest::StatusCode;
use switchboard::config::Secret;
use switchboard::integrations::twilio::{CreateCall, TwilioAuth, TwilioClient};
use switchboard::integrations::{ClientOptions, UpstreamError};
use switchboard::jobs::retention::{self, RetentionReport};
use switchboard::sim::{OutcomeMix, Scenario, SimSettings, Simulator};
use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
use switchboard_domain::time::now_ms;
use switchboard_domain::{Recording, RecordingId};

use crate::helpers::{TestApp, refs, status_params};

async fn wait_for(mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if f().await {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    panic!("condition not reached in time");
}

/// A recorded call at the simulator, reported to Switchboard by its recording
/// callback (signed like Twilio's); returns (recording sid, our recording).
async fn recorded_call(
    app: &TestApp,
    sim: &switchboard::sim::SimHandle,
    twilio: &TwilioClient,
    to: &str,
) -> (String, Recording) {
    let call = twilio
        .create_call(&CreateCall {
            to: to.into(),
            from: "+15005550001".into(),
            url: Some("http://sb.invalid/twiml".into()),
            record: true,
            ..Default::default()
        })
        .await
        .unwrap();
    wait_for(async || sim.sim.calls().iter().any(|c| c.sid == call.sid && c.recording_sid.is_some())).await;
    let rec_sid = sim.sim.calls().into_iter().find(|c| c.sid == call.sid).unwrap().recording_sid.unwrap();
    let p = status_params(&call.sid, 0, "initiated");
    app.twilio("/webhooks/twilio/status", &refs(&p)).await;
    let form = vec![
        ("AccountSid", "AC00000000000000000000000000000001".to_string()),
        ("CallSid", call.sid.clone()),
        ("RecordingSid", rec_sid.clone()),
        (
            "RecordingUrl",
            format!("{}/2010-04-01/Accounts/AC00000000000000000000000000000001/Recordings/{rec_sid}", sim.base_url),
        ),
        ("RecordingStatus", "completed".to_string()),
        ("RecordingDuration", "35".into()),
        ("RecordingChannels", "2".into()),
        ("RecordingSource", "OutboundAPI".into()),
        ("ErrorCode", "0".into()),
    ];
    assert_eq!(app.twilio("/webhooks/twilio/recording", &refs(&form)).await.status(), StatusCode::NO_CONTENT);
    let stored = app.state.store.find_recording(RecordingProvider::Twilio, &rec_sid).await.unwrap().unwrap();
    assert_eq!(stored.status, RecordingStatus::Completed);
    (rec_sid, stored)
}

fn elevenlabs_audio(conv: &str) -> Recording {
    let now = now_ms();
    Recording {
        id: RecordingId::new(),
        provider: RecordingProvider::Elevenlabs,
        provider_id: conv.into(),
        call_id: None,
        call_sid: None,
        conversation_id: Some(conv.into()),
        status: RecordingStatus::Completed,
        duration_secs: Some(40),
        channels: None,
        source: None,
        track: None,
        started_at: None,
        media_url: None,
        format: Some("mp3".into()),
        error_code: None,
        deleted_at: None,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn retention_reports_in_a_dry_run_and_deletes_old_recordings_at_twilio_and_here_when_applied() {
    let app = TestApp::spawn().await;
    let store = app.store();
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

    // Two old Twilio recordings and old ElevenLabs audio, then the cutoff, then a young recording.
    let old1 = recorded_call(&app, &sim, &twilio, "+15005550101").await;
    let old2 = recorded_call(&app, &sim, &twilio, "+15005550102").await;
    let audio = store.upsert_recording(&elevenlabs_audio("conv_retention_old")).await.unwrap();
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    let cutoff = now_ms();
    tokio::time::sleep(StdDuration::from_millis(20)).await;
    let young = recorded_call(&app, &sim, &twilio, "+15005550103").await;
    assert!(old1.1.created_at < cutoff && old2.1.created_at < cutoff && young.1.created_at > cutoff);

    // Dry run: reported, nothing touched here or at the simulator.
    let dry = retention::expire(&*store, Some(&twilio), cutoff, true, None).await.unwrap();
    assert_eq!(
        dry,
        RetentionReport {
            dry_run: true,
            cutoff: Some(cutoff),
            due: 3,
            would_delete: 2,
            skipped: 1,
            ..Default::default()
        }
    );
    for (sid, rec) in [&old1, &old2, &young] {
        assert_eq!(twilio.fetch_recording(sid).await.unwrap().sid, *sid, "the dry run deleted nothing at Twilio");
        let one = app.get_json(&format!("/api/v1/recordings/{}", rec.id), StatusCode::OK).await;
        assert_eq!(one["status"], "completed");
        assert_eq!(one["media"], format!("/api/v1/recordings/{}/media", rec.id));
    }
    assert_eq!(store.get_recording(&audio.id).await.unwrap().unwrap().status, RecordingStatus::Completed);

    // Applied: the old Twilio recordings are deleted at the simulator and marked deleted here.
    let applied = retention::expire(&*store, Some(&twilio), cutoff, false, None).await.unwrap();
    assert_eq!(
        applied,
        RetentionReport { dry_run: false, cutoff: Some(cutoff), due: 3, deleted: 2, skipped: 1, ..Default::default() }
    );
    let http = reqwest::Client::new();
    for (sid, rec) in [&old1, &old2] {
        assert!(
            matches!(twilio.fetch_recording(sid).await, Err(UpstreamError::NotFound { .. })),
            "the simulator no longer has {sid}"
        );
        let again = http
            .delete(format!("{}/2010-04-01/Accounts/{account}/Recordings/{sid}.json", sim.base_url))
            .basic_auth(&account, Some(SimSettings::default().auth_token))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_FOUND, "a second DELETE is Twilio's 404");
        let one = app.get_json(&format!("/api/v1/recordings/{}", rec.id), StatusCode::OK).await;
        assert_eq!(one["status"], "deleted", "{one}");
        assert!(one["media"].is_null(), "no media link once deleted: {one}");
        let stored = store.get_recording(&rec.id).await.unwrap().unwrap();
        assert!(stored.deleted_at.is_some_and(|t| t > cutoff));
    }
    // The young recording and the ElevenLabs audio are untouched.
    assert_eq!(twilio.fetch_recording(&young.0).await.unwrap().sid, young.0);
    let one = app.get_json(&format!("/api/v1/recordings/{}", young.1.id), StatusCode::OK).await;
    assert_eq!((one["status"].as_str(), one["media"].is_string()), (Some("completed"), true));
    assert_eq!(store.get_recording(&audio.id).await.unwrap().unwrap().status, RecordingStatus::Completed);

    // A late callback never revives a deleted recording; a rerun finds only the skipped audio.
    let again = retention::expire(&*store, Some(&twilio), cutoff, false, None).await.unwrap();
    assert_eq!((again.due, again.deleted, again.skipped), (1, 0, 1));
}

#[tokio::test]
async fn a_dry_run_pages_through_more_than_one_batch_and_an_unreachable_twilio_fails_per_recording() {
    let app = TestApp::spawn().await;
    let store = app.store();
    let t0 = now_ms() - Duration::days(400);
    for i in 0..450i64 {
        let mut r = elevenlabs_audio(&format!("conv_{i:04}"));
        r.provider = RecordingProvider::Twilio;
        r.provider_id = format!("RE{i:032x}");
        r.created_at = t0 + Duration::minutes(i);
        r.updated_at = r.created_at;
        store.upsert_recording(&r).await.unwrap();
    }
    // Twilio where nothing listens: every delete fails, none aborts the run, nothing is marked.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://127.0.0.1:{}", l.local_addr().unwrap().port())
    };
    let mut opts = ClientOptions::default();
    opts.retry.max_attempts = 1;
    let twilio = TwilioClient::new(
        &dead,
        "AC00000000000000000000000000000001",
        TwilioAuth::AuthToken(Secret::new("0123456789abcdef0123456789abcdef")),
        &opts,
    );
    let cutoff = t0 + Duration::minutes(300);
    let dry = retention::expire(&*store, Some(&twilio), cutoff, true, None).await.unwrap();
    assert_eq!((dry.due, dry.would_delete, dry.failed, dry.more), (300, 300, 0, false));
    let failed = retention::expire(&*store, Some(&twilio), t0 + Duration::minutes(5), false, None).await.unwrap();
    assert_eq!((failed.due, failed.deleted, failed.failed), (5, 0, 5));
    assert_eq!(store.recordings_to_expire(cutoff, 1000).await.unwrap().len(), 300, "nothing was marked");
    // Without Twilio credentials, Twilio recordings are skipped with a reason.
    let none = retention::expire(&*store, None, t0 + Duration::minutes(5), false, None).await.unwrap();
    assert_eq!((none.due, none.skipped, none.deleted), (5, 5, 0));
}
