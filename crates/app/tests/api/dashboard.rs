//! Phase 4: the analytics rollups against raw calls, and the dashboard API
//! that reads them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use reqwest::{Method, StatusCode};
use serde_json::json;
use switchboard::jobs::rollups::{buckets_for_hours, catch_up};
use switchboard_domain::time::now_ms;
use switchboard_domain::{Call, CallId, CallStatus, CallUpdate, Source};
use switchboard_storage::{CallFilter, CallSort, Metrics, PageRequest, RollupQuery, Scope, Storage};

use crate::helpers::{TestApp, sid, status_params};

async fn all_calls(store: &dyn Storage) -> Vec<Call> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let p = store.list_calls(&CallFilter::default(), CallSort::CreatedAtDesc, &page).await.unwrap();
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
}

/// Differences between the stored rollups and a recomputation from the raw
/// calls (every hour and reporting-zone day bucket holding a call, every scope).
pub async fn rollup_mismatches(app: &TestApp) -> Vec<String> {
    let store = app.store();
    let tz = app.state.settings.analytics.tz();
    let calls = all_calls(&*store).await;
    let mut sentiment: BTreeMap<CallId, f64> = BTreeMap::new();
    for c in &calls {
        if let Some(s) = store.transcript_of_call(&c.id).await.unwrap().and_then(|t| t.sentiment) {
            sentiment.insert(c.id.clone(), s);
        }
    }
    let hours = calls.iter().map(|c| c.created_at.duration_trunc(TimeDelta::hours(1)).unwrap());
    let mut out = Vec::new();
    for b in buckets_for_hours(hours, tz) {
        let mut want: BTreeMap<Scope, Metrics> = BTreeMap::new();
        for c in calls.iter().filter(|c| c.created_at >= b.start && c.created_at < b.end) {
            for s in Scope::of_call(c) {
                want.entry(s).or_default().add_call(c, sentiment.get(&c.id).copied());
            }
        }
        for (scope, w) in want {
            let q = RollupQuery {
                interval: b.interval,
                tz: b.tz.clone(),
                scope: scope.clone(),
                from: b.start,
                to: b.start + Duration::milliseconds(1),
            };
            let got = store.rollups(&q).await.unwrap().into_iter().next().map(|r| r.metrics);
            let same = got.as_ref().is_some_and(|g| {
                let (mut g, mut w) = (g.clone(), w.clone());
                let close = (g.sentiment_sum - w.sentiment_sum).abs() < 1e-9;
                g.sentiment_sum = 0.0;
                w.sentiment_sum = 0.0;
                close && g == w
            });
            if !same {
                out.push(format!("{:?} {} / {scope:?}: stored {got:?}, recomputed {w:?}", b.interval, b.start));
            }
        }
    }
    out
}

/// Waits (running the incremental pass itself, beside the app's own job)
/// until every rollup equals the recomputation; panics with the differences
/// after 10 s.
pub async fn assert_rollups_converge(app: &TestApp) {
    let tz = app.state.settings.analytics.tz();
    let mut last = Vec::new();
    for _ in 0..40 {
        catch_up(&*app.store(), tz, Duration::seconds(5)).await.unwrap();
        last = rollup_mismatches(app).await;
        if last.is_empty() {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    panic!("rollups differ from a recomputation from raw calls:\n{}", last.join("\n"));
}

fn post_call(conv: &str, call_sid: &str, result: &str, reason: &str) -> serde_json::Value {
    json!({
        "type": "post_call_transcription",
        "event_timestamp": Utc::now().timestamp(),
        "data": {
            "agent_id": "agent_dash",
            "conversation_id": conv,
            "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hello, calling about your appointment.", "time_in_call_secs": 0},
                {"role": "user", "message": "Great, thank you so much!", "time_in_call_secs": 3}
            ],
            "metadata": {"start_time_unix_secs": Utc::now().timestamp() - 40, "call_duration_secs": 30, "cost": 300,
                "termination_reason": reason,
                "phone_call": {"type": "twilio", "direction": "outbound", "call_sid": call_sid}},
            "analysis": {"call_successful": result, "transcript_summary": "Appointment confirmed."},
            "has_audio": false
        }
    })
}

/// A post-call transcription for `call_sid` (the page test opens it).
pub fn post_call_for(conv: &str, call_sid: &str) -> serde_json::Value {
    post_call(conv, call_sid, "success", "end_call tool")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webhooks_replayed_reordered_and_corrected_leave_rollups_equal_to_the_raw_calls() {
    let app = TestApp::spawn_with(|s| s.analytics.tick_ms = 100).await;
    let day0 = now_ms().date_naive();
    let seqs: [&[&str]; 5] = [
        &["initiated", "ringing", "in-progress", "completed"],
        &["initiated", "ringing", "busy"],
        &["ringing", "no-answer"],
        &["initiated", "failed"],
        &["initiated", "ringing", "in-progress"],
    ];
    for i in 0..30u32 {
        let s = sid(0xd000 + i);
        let seq = seqs[i as usize % seqs.len()];
        let mut sends: Vec<(u32, &str)> = seq.iter().enumerate().map(|(k, st)| (k as u32 + 1, *st)).collect();
        if i % 3 == 0 {
            sends.reverse(); // out of order
        }
        if i % 4 == 0 {
            let again = sends.clone();
            sends.extend(again); // every callback twice
        }
        for (n, st) in sends {
            let p = status_params(&s, n, st);
            let r = app.twilio("/webhooks/twilio/status", &crate::helpers::refs(&p)).await;
            assert!(r.status().is_success(), "{}", r.status());
        }
        if i % 5 == 0 {
            let body = post_call(
                &format!("conv_dash_{i}"),
                &s,
                if i % 2 == 0 { "success" } else { "failure" },
                "end_call tool",
            );
            assert!(app.elevenlabs(&body).await.status().is_success());
            assert!(app.elevenlabs(&body).await.status().is_success(), "a replay is acknowledged");
        }
    }
    assert_rollups_converge(&app).await;
    let before = rollup_mismatches(&app).await;
    assert!(before.is_empty());
    // A late correction: the in-flight calls end; the counts move, nothing is added.
    let summary = app.get_json("/api/v1/dashboard/summary", StatusCode::OK).await;
    // (Unless the test straddled midnight UTC: then some calls are yesterday's.)
    let one_day = now_ms().date_naive() == day0;
    if one_day {
        assert_eq!(summary["today"]["calls"].as_i64().unwrap(), 30, "{summary}");
    }
    let in_flight_before = summary["calls_in_flight"].as_i64().unwrap();
    assert_eq!(in_flight_before, 6, "{summary}");
    for i in (4..30u32).step_by(5) {
        let p = status_params(&sid(0xd000 + i), 9, "completed");
        assert!(app.twilio("/webhooks/twilio/status", &crate::helpers::refs(&p)).await.status().is_success());
    }
    assert_rollups_converge(&app).await;
    let after = app.get_json("/api/v1/dashboard/summary", StatusCode::OK).await;
    assert_eq!(after["calls_in_flight"], 0, "{after}");
    assert_eq!(
        after["today"]["calls"], summary["today"]["calls"],
        "a correction moves counts, it adds no call: {after}"
    );
    if one_day && now_ms().date_naive() == day0 {
        // The six were answered (in progress) already: answered stays, they now count as ended.
        assert_eq!(after["today"]["answered"], summary["today"]["answered"], "{after}");
        assert_eq!(summary["today"]["answer_rate"].as_f64().unwrap(), 12.0 / 24.0, "{summary}");
        assert_eq!(after["today"]["answer_rate"].as_f64().unwrap(), 12.0 / 30.0, "{after}");
    }
}

/// Inserts calls with chosen creation times and fields, then lets the rollups catch up.
async fn seeded(app: &TestApp, calls: &[Call]) {
    app.store().insert_calls_bulk(calls, &[]).await.unwrap();
    catch_up(&*app.store(), app.state.settings.analytics.tz(), Duration::seconds(5)).await.unwrap();
}

fn call_at(n: u32, at: DateTime<Utc>, status: CallStatus) -> Call {
    let u = CallUpdate {
        source: Some(Source::Twilio),
        observed_at: Some(at),
        call_sid: Some(sid(0xe000 + n)),
        status: Some(status),
        ..Default::default()
    };
    let mut c = Call::new_from(&u, at).unwrap();
    c.updated_at = now_ms();
    c
}

#[tokio::test]
async fn timeseries_fill_gaps_follow_the_zone_and_name_bad_parameters() {
    let app = TestApp::spawn_with(|s| s.analytics.enabled = false).await;
    let h0 = (now_ms() - Duration::hours(5)).duration_trunc(TimeDelta::hours(1)).unwrap();
    let mut calls = Vec::new();
    for k in 0..6u32 {
        let mut c =
            call_at(k, h0 + Duration::minutes(10), if k < 4 { CallStatus::Completed } else { CallStatus::Busy });
        if k < 4 {
            c.answered_at = Some(c.started_at + Duration::seconds(3));
            c.duration_secs = Some(60);
            c.price = Some("-0.0200".into());
        }
        calls.push(c);
    }
    for k in 6..8u32 {
        let mut c = call_at(k, h0 + Duration::hours(3) + Duration::minutes(1), CallStatus::NoAnswer);
        c.agent_id = Some("agent_ts".into());
        calls.push(c);
    }
    seeded(&app, &calls).await;
    let from = h0.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (h0 + Duration::hours(5)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let ts = app
        .get_json(
            &format!("/api/v1/dashboard/timeseries?metric=calls&interval=hour&from={from}&to={to}"),
            StatusCode::OK,
        )
        .await;
    let values: Vec<f64> = ts["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).collect();
    assert_eq!(values, vec![6.0, 0.0, 0.0, 2.0, 0.0], "{ts}");
    let rate = app
        .get_json(&format!("/api/v1/dashboard/timeseries?metric=answer_rate&from={from}&to={to}"), StatusCode::OK)
        .await;
    assert_eq!(rate["points"][0]["value"].as_f64().unwrap(), 4.0 / 6.0);
    assert!(rate["points"][1]["value"].is_null(), "a rate with nothing to divide is null: {rate}");
    let cost =
        app.get_json(&format!("/api/v1/dashboard/timeseries?metric=cost&from={from}&to={to}"), StatusCode::OK).await;
    assert!((cost["points"][0]["value"].as_f64().unwrap() - 0.08).abs() < 1e-9, "{cost}");
    let agent = app
        .get_json(
            &format!("/api/v1/dashboard/timeseries?metric=calls&from={from}&to={to}&agent_id=agent_ts"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(agent["scope"], "agent");
    assert_eq!(agent["points"][3]["value"].as_f64().unwrap(), 2.0);
    // Days: in the reporting zone (day rollups) and in another whole-hour zone (hours summed) agree on the total.
    let dfrom = (h0 - Duration::days(2)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let dto = (now_ms() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for tz in ["UTC", "America/New_York", "Pacific/Kiritimati"] {
        let d = app
            .get_json(
                &format!("/api/v1/dashboard/timeseries?metric=calls&interval=day&from={dfrom}&to={dto}&tz={tz}"),
                StatusCode::OK,
            )
            .await;
        let sum: f64 = d["points"].as_array().unwrap().iter().map(|p| p["value"].as_f64().unwrap()).sum();
        assert_eq!(sum, 8.0, "{tz}: {d}");
        assert_eq!(d["tz"], tz);
    }
    for (query, field) in [
        ("metric=nope", "metric"),
        ("metric=calls&interval=week", "interval"),
        ("metric=calls&interval=", "interval"),
        ("metric=", "metric"),
        ("metric=calls&tz=Mars/Olympus", "tz"),
        ("metric=calls&campaign_id=cmp_x&agent_id=a", "agent_id"),
        ("metric=calls&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("metric=calls&from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("metric=calls&interval=day&tz=Asia/Kolkata", "tz"),
        ("metric=calls&bogus=1", "bogus"),
    ] {
        let (s, body) = app.call(Method::GET, &format!("/api/v1/dashboard/timeseries?{query}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {body}");
        assert!(body["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{query}: {body}");
    }
}

#[tokio::test]
async fn campaign_performance_is_a_funnel_outcomes_and_quality_from_rollups() {
    let app = TestApp::spawn_with(|s| s.analytics.enabled = false).await;
    let (s, c) = app
        .call(
            Method::POST,
            "/api/v1/campaigns",
            Some(json!({"name": "Perf", "agent": {"agent_id": "agent_perf", "caller_id": "+15005550001"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let cid = switchboard_domain::CampaignId::parse(c["id"].as_str().unwrap()).unwrap();
    let at = now_ms(); // after the campaign was created (its creation starts the default range)
    let mut calls = Vec::new();
    for k in 0..10u32 {
        let status = match k {
            0..=5 => CallStatus::Completed,
            6 | 7 => CallStatus::NoAnswer,
            _ => CallStatus::Busy,
        };
        let mut call = call_at(100 + k, at, status);
        call.campaign_id = Some(cid.clone());
        if k <= 5 {
            call.answered_at = Some(call.started_at + Duration::seconds(4));
            call.duration_secs = Some(if k < 3 { 25 } else { 90 });
            call.answered_by = Some(if k < 4 {
                switchboard_domain::AnsweredBy::Human
            } else {
                switchboard_domain::AnsweredBy::MachineEndBeep
            });
            call.call_successful = Some(if k < 3 { "success" } else { "failure" }.into());
            call.termination_reason = Some("end_call tool".into());
        }
        calls.push(call);
    }
    seeded(&app, &calls).await;
    let p = app.get_json(&format!("/api/v1/campaigns/{cid}/performance"), StatusCode::OK).await;
    let steps: Vec<(String, i64)> = p["funnel"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap().to_owned(), s["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        steps,
        vec![
            ("enrolled".into(), 0),
            ("attempted".into(), 10),
            ("connected".into(), 6),
            ("answered_by_person".into(), 4),
            ("successful".into(), 3)
        ],
        "{p}"
    );
    assert_eq!(p["funnel"][2]["rate"].as_f64().unwrap(), 0.6);
    assert_eq!(p["outcomes"]["no_answer"], 2);
    assert_eq!(p["outcomes"]["voicemail"], 2);
    assert_eq!(p["quality"]["success_rate"].as_f64().unwrap(), 0.5);
    assert_eq!(p["quality"]["avg_talk_secs"].as_f64().unwrap(), (3.0 * 25.0 + 3.0 * 90.0) / 6.0);
    assert_eq!(p["quality"]["talk_p50_secs"], 30, "median bin upper bound: {p}");
    assert_eq!(p["quality"]["termination_reasons"]["end_call tool"], 6);
    assert_eq!(p["totals"]["calls"], 10);
    let (s, body) = app.call(Method::GET, "/api/v1/campaigns/cmp_nope/performance", None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let (s, _) = app
        .call(Method::GET, &format!("/api/v1/campaigns/{}/performance", switchboard_domain::CampaignId::new()), None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

/// By attempt number and call pattern: each attempt of each enrollment's
/// history counted under its number, and placed in its recipient's local
/// hour and weekday (the contact's zone, else the campaign's).
#[tokio::test]
async fn campaign_performance_breaks_attempts_down_by_number_and_recipient_local_time() {
    use switchboard_domain::enrollment::{Attempt, Outcome};
    let app = TestApp::spawn_with(|s| s.analytics.enabled = false).await;
    let (s, c) = app
        .call(
            Method::POST,
            "/api/v1/campaigns",
            Some(json!({"name": "Pattern", "agent": {"agent_id": "agent_pat", "caller_id": "+15005550001"},
                        "schedule": {"time_zone": "America/New_York"}})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    let cid = switchboard_domain::CampaignId::parse(c["id"].as_str().unwrap()).unwrap();
    let mut contacts = Vec::new();
    for (phone, tz) in
        [("+14155550201", Some("Europe/Berlin")), ("+14155550202", Some("Asia/Tokyo")), ("+14155550203", None)]
    {
        let mut body = json!({ "phone": phone });
        if let Some(tz) = tz {
            body["time_zone"] = json!(tz);
        }
        let (s, k) = app.call(Method::POST, "/api/v1/contacts", Some(body)).await;
        assert_eq!(s, StatusCode::CREATED, "{k}");
        contacts.push(switchboard_domain::ContactId::parse(k["id"].as_str().unwrap()).unwrap());
    }
    let store = &app.state.store;
    store.enroll(&cid, &contacts, now_ms()).await.unwrap();
    let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
    // Monday 30 November 2026.
    let histories = [
        // Berlin: 09:30 no answer, then 18:10 answered.
        vec![
            (1, "2026-11-30T08:30:00Z", Some(Outcome::NoAnswer)),
            (2, "2026-11-30T17:10:00Z", Some(Outcome::Answered)),
        ],
        // Tokyo: 10:00 voicemail.
        vec![(1, "2026-11-30T01:00:00Z", Some(Outcome::Voicemail))],
        // No zone of its own: the campaign's (New York): 09:00 answered; a second attempt still going on.
        vec![(1, "2026-11-30T14:00:00Z", Some(Outcome::Answered)), (2, "2026-11-30T19:00:00Z", None)],
    ];
    for (contact, history) in contacts.iter().zip(histories) {
        let mut e = store.find_enrollment(&cid, contact).await.unwrap().unwrap();
        e.history = history
            .into_iter()
            .map(|(n, at, outcome)| Attempt { n, call_id: CallId::new(), at: t(at), outcome })
            .collect();
        e.attempts = e.history.len() as u32;
        store.replace_enrollment(&e).await.unwrap();
    }
    let p = app
        .get_json(
            &format!("/api/v1/campaigns/{cid}/performance?from=2026-11-29T00:00:00Z&to=2026-12-02T00:00:00Z"),
            StatusCode::OK,
        )
        .await;
    let by: Vec<(u64, u64, u64, u64, u64)> = p["by_attempt"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let n = |k: &str| a[k].as_u64().unwrap();
            (n("attempt"), n("attempts"), n("answered"), n("voicemail"), n("no_answer"))
        })
        .collect();
    assert_eq!(by, vec![(1, 3, 1, 1, 1), (2, 1, 1, 0, 0)], "{p}");
    assert_eq!(p["by_attempt"][0]["answer_rate"].as_f64().unwrap(), 1.0 / 3.0);
    let hours = p["call_pattern"]["by_hour"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let slot = |h: usize| (hours[h]["attempts"].as_u64().unwrap(), hours[h]["answered"].as_u64().unwrap());
    assert_eq!(slot(9), (2, 1), "Berlin 09:30 and New York 09:00: {p}");
    assert_eq!(slot(10), (1, 0), "Tokyo 10:00");
    assert_eq!(slot(18), (1, 1), "Berlin 18:10");
    assert_eq!(
        hours.iter().map(|h| h["attempts"].as_u64().unwrap()).sum::<u64>(),
        4,
        "the call in progress is not counted"
    );
    let days = p["call_pattern"]["by_weekday"].as_array().unwrap();
    assert_eq!((days[0]["slot"].as_u64().unwrap(), days[0]["attempts"].as_u64().unwrap()), (1, 4), "all on Monday");
    // A period that excludes them counts none.
    let p = app
        .get_json(
            &format!("/api/v1/campaigns/{cid}/performance?from=2026-12-01T00:00:00Z&to=2026-12-02T00:00:00Z"),
            StatusCode::OK,
        )
        .await;
    assert_eq!(p["by_attempt"], json!([]), "{p}");
}
