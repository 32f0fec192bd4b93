//! Campaigns over the API (lifecycle, enrollments, eligibility, preflight),
//! and the dialer end to end against the simulator.

use std::collections::{HashMap, HashSet};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use switchboard::config::Secret;
use switchboard::integrations::ClientOptions;
use switchboard::integrations::elevenlabs::ElevenLabsClient;
use switchboard::integrations::twilio::{TwilioAuth, TwilioClient};
use switchboard::jobs::dialer::{Callbacks, Dialer};
use switchboard::sim::{Faults, OutcomeMix, Scenario, SimSettings, Simulator};
use switchboard_domain::campaign::{AgentSettings, CallingWindow, Day, Pacing, Schedule};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CampaignInput, CampaignStatus, ContactInput, EnrollmentStatus};
use switchboard_storage::{PageRequest, Storage};

use crate::helpers::{EL_SECRET, TWILIO_TOKEN, TestApp};

fn campaign_body(name: &str) -> Value {
    json!({
        "name": name,
        "agent": { "agent_id": "agent_sim", "caller_id": "+15005550001",
                   "dynamic_variables": { "customer": "{{contact.name}}" } },
        "schedule": { "windows": [ { "days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "00:00", "end": "23:59" } ],
                      "holidays": [], "time_zone": "America/New_York" },
        "pacing": { "max_concurrent": 2, "calls_per_minute": 60 },
    })
}

#[tokio::test]
async fn the_lifecycle_allows_only_legal_moves_and_names_the_state() {
    let app = TestApp::spawn().await;
    let (s, body) = app.call(Method::POST, "/api/v1/campaigns", Some(json!({ "name": "" }))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["name", "agent.agent_id", "agent.caller_id"]);
    let (s, c) = app.call(Method::POST, "/api/v1/campaigns", Some(campaign_body("Renewals"))).await;
    assert_eq!(s, StatusCode::CREATED, "{c}");
    assert_eq!(c["status"], "draft");
    let id = c["id"].as_str().unwrap().to_owned();
    let act = |a: &'static str| {
        let id = id.clone();
        let app = &app;
        async move { app.call(Method::POST, &format!("/api/v1/campaigns/{id}/{a}"), None).await }
    };
    let (s, body) = act("resume").await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert_eq!(body["detail"], "cannot resume a campaign that is draft");
    let (s, body) = act("start").await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("running")));
    let (s, body) = act("start").await;
    assert_eq!((s, body["detail"].as_str()), (StatusCode::CONFLICT, Some("cannot start a campaign that is running")));
    // Live: only name/description/pacing may change.
    let (s, _) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/campaigns/{id}"),
            Some(json!({ "pacing": { "max_concurrent": 3, "calls_per_minute": 30 } })),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, body) = app
        .call(Method::PATCH, &format!("/api/v1/campaigns/{id}"), Some(json!({ "dial_mode": "elevenlabs_native" })))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert_eq!(act("pause").await.1["status"], "paused");
    assert_eq!(act("pause").await.0, StatusCode::CONFLICT);
    assert_eq!(act("resume").await.1["status"], "running");
    assert_eq!(act("cancel").await.1["status"], "cancelled");
    let (s, body) = act("start").await;
    assert_eq!((s, body["detail"].as_str()), (StatusCode::CONFLICT, Some("cannot start a campaign that is cancelled")));
    let (s, _) = app.call(Method::PATCH, &format!("/api/v1/campaigns/{id}"), Some(json!({ "name": "x" }))).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, _) = app.call(Method::DELETE, &format!("/api/v1/campaigns/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    app.get_json(&format!("/api/v1/campaigns/{id}"), StatusCode::NOT_FOUND).await;

    // A start time ahead makes it scheduled.
    let mut later = campaign_body("Later");
    later["schedule"]["start_at"] = json!((Utc::now() + Duration::days(2)).to_rfc3339());
    let (_, c2) = app.call(Method::POST, "/api/v1/campaigns", Some(later)).await;
    let (s, body) =
        app.call(Method::POST, &format!("/api/v1/campaigns/{}/start", c2["id"].as_str().unwrap()), None).await;
    assert_eq!((s, body["status"].as_str()), (StatusCode::OK, Some("scheduled")));
    let list = app.get_json("/api/v1/campaigns?status=scheduled", StatusCode::OK).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    let (s, body) = app.call(Method::DELETE, &format!("/api/v1/campaigns/{}", c2["id"].as_str().unwrap()), None).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    app.get_json("/api/v1/campaigns?status=bogus", StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn enrollments_eligibility_and_preflight_explain_who_is_called_when() {
    let app = TestApp::spawn().await;
    let mut body = campaign_body("Windows");
    body["schedule"]["windows"] =
        json!([{ "days": ["mon","tue","wed","thu","fri","sat","sun"], "start": "09:00", "end": "17:00" }]);
    let (_, c) = app.call(Method::POST, "/api/v1/campaigns", Some(body)).await;
    let cid = c["id"].as_str().unwrap().to_owned();
    // One contact per zone around the world, so some are inside the window now and some not; one DNC.
    let zones = [
        "Pacific/Auckland",
        "Asia/Tokyo",
        "Europe/London",
        "America/New_York",
        "America/Los_Angeles",
        "Pacific/Honolulu",
    ];
    let mut ids = Vec::new();
    for (i, z) in zones.iter().enumerate() {
        let (s, k) = app
            .call(
                Method::POST,
                "/api/v1/contacts",
                Some(json!({ "phone": format!("+1415555{:04}", 300 + i), "time_zone": z, "tags": ["wave"] })),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED);
        ids.push(k["id"].as_str().unwrap().to_owned());
    }
    let (_, dnc) = app
        .call(Method::POST, "/api/v1/contacts", Some(json!({ "phone": "+14155559999", "do_not_call": true, "do_not_call_reason": "asked", "tags": ["wave"] })))
        .await;
    let (s, r) = app
        .call(Method::POST, &format!("/api/v1/campaigns/{cid}/contacts"), Some(json!({ "filter": { "tag": "wave" } })))
        .await;
    assert_eq!((s, r["added"].as_u64()), (StatusCode::OK, Some(7)), "{r}");
    let (_, r) = app
        .call(Method::POST, &format!("/api/v1/campaigns/{cid}/contacts"), Some(json!({ "contact_ids": [ids[0]] })))
        .await;
    assert_eq!((r["added"].as_u64(), r["already_enrolled"].as_u64()), (Some(0), Some(1)));
    let (s, _) = app
        .call(Method::POST, &format!("/api/v1/campaigns/{cid}/contacts"), Some(json!({ "contact_ids": ["con_bad"] })))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Eligibility: the draft campaign is a reason; DNC is permanent.
    let el = app
        .get_json(
            &format!("/api/v1/campaigns/{cid}/contacts/{}/eligibility", dnc["id"].as_str().unwrap()),
            StatusCode::OK,
        )
        .await;
    assert_eq!(el["dialable"], false);
    let codes: Vec<&str> = el["reasons"].as_array().unwrap().iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"campaign_not_running") && codes.contains(&"do_not_call"), "{el}");
    assert_eq!(el["next_dialable_at"], Value::Null);
    let mut inside = 0;
    for (i, z) in zones.iter().enumerate() {
        let el =
            app.get_json(&format!("/api/v1/campaigns/{cid}/contacts/{}/eligibility", ids[i]), StatusCode::OK).await;
        assert_eq!(el["time_zone"], *z);
        let tz: chrono_tz::Tz = z.parse().unwrap();
        let local = Utc::now().with_timezone(&tz).time();
        let open = local >= chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap()
            && local < chrono::NaiveTime::from_hms_opt(16, 59, 0).unwrap();
        let has_window = el["reasons"].as_array().unwrap().iter().any(|r| r["code"] == "outside_calling_window");
        if open {
            inside += 1;
            assert!(!has_window, "{z} is open now: {el}");
        } else if local < chrono::NaiveTime::from_hms_opt(8, 59, 0).unwrap()
            || local > chrono::NaiveTime::from_hms_opt(17, 1, 0).unwrap()
        {
            assert!(has_window, "{z} is closed now: {el}");
            let next: chrono::DateTime<Utc> = el["next_dialable_at"].as_str().unwrap().parse().unwrap();
            assert_eq!(next.with_timezone(&tz).time(), chrono::NaiveTime::from_hms_opt(9, 0, 0).unwrap(), "{el}");
        }
    }
    // Preflight forecasts as if running: the ones inside their window now, DNC skipped.
    let (s, pf) = app.call(Method::POST, &format!("/api/v1/campaigns/{cid}/preflight"), None).await;
    assert_eq!(s, StatusCode::OK, "{pf}");
    assert_eq!(pf["enrollments"], 7);
    let now_count = pf["eligible_now"].as_u64().unwrap();
    assert!(now_count.abs_diff(inside) <= 1, "{pf} vs {inside}");
    assert_eq!(pf["skipped_by_reason"]["do_not_call"], 1);
    assert_eq!(pf["skipped"][0]["contact_id"], dnc["id"]);
    assert!(pf["eta"].is_string());
    let listed =
        app.get_json(&format!("/api/v1/campaigns/{cid}/contacts?status=pending&limit=3"), StatusCode::OK).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 3);
    let (s, _) = app.call(Method::DELETE, &format!("/api/v1/campaigns/{cid}/contacts/{}", ids[0]), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let progress = app.get_json(&format!("/api/v1/campaigns/{cid}/progress"), StatusCode::OK).await;
    assert_eq!(progress["enrollments"], 6);
    assert_eq!(progress["by_status"]["pending"], 6);
}

/// Simulator and two dialers on one store.
struct Rig {
    app: TestApp,
    sim: switchboard::sim::SimHandle,
    dialers: Vec<Dialer>,
}

async fn rig(scenario: Scenario) -> Rig {
    let app = TestApp::spawn().await;
    let settings = SimSettings {
        auth_token: TWILIO_TOKEN.into(),
        elevenlabs_webhook_secret: EL_SECRET.into(),
        elevenlabs_webhook_url: Some(format!("{}/webhooks/elevenlabs", app.base)),
        scenario,
        ..SimSettings::default()
    };
    let account = settings.account_sid.clone();
    let key = settings.elevenlabs_api_key.clone();
    let sim = Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let mut opts = ClientOptions::default();
    opts.retry.base = StdDuration::from_millis(5);
    opts.retry.max_backoff = StdDuration::from_millis(50);
    let dialers = ["dialer-a", "dialer-b"]
        .iter()
        .map(|owner| {
            Dialer::new(
                app.store(),
                Some(TwilioClient::new(
                    &sim.base_url,
                    &account,
                    TwilioAuth::AuthToken(Secret::new(TWILIO_TOKEN)),
                    &opts,
                )),
                Some(ElevenLabsClient::new(&sim.base_url, Secret::new(key.clone()), &opts)),
                Callbacks { public_base: app.base.clone() },
                *owner,
            )
            .with_lease(Duration::seconds(2))
        })
        .collect();
    Rig { app, sim, dialers }
}

async fn all_enrollments(
    store: &dyn Storage,
    id: &switchboard_domain::CampaignId,
) -> Vec<switchboard_domain::Enrollment> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let p = store.list_enrollments(id, &[], &page).await.unwrap();
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_dialers_run_a_campaign_without_duplicate_or_out_of_window_dials() {
    let scenario = Scenario {
        seed: 7,
        time_scale: 3000.0,
        cps: 100_000.0,
        ring_secs: [2.0, 10.0],
        talk_secs: [10.0, 60.0],
        outcomes: OutcomeMix { human: 0.4, voicemail: 0.2, busy: 0.2, no_answer: 0.2, failed: 0.0 },
        faults: Faults {
            api_429_rate: 0.1,
            retry_after_secs: Some(0.01),
            duplicate_rate: 0.2,
            reorder_rate: 0.2,
            ..Faults::default()
        },
        ..Scenario::default()
    };
    let Rig { app, sim, dialers } = rig(scenario).await;
    let store = app.store();
    let now = now_ms();
    // 1,000 contacts; a third in a zone where today is a holiday. The others live at UTC−12:
    // 26 hours from Kiritimati, their date is never one of its two holidays, at any hour.
    let mut campaign = CampaignInput {
        name: Some("E2E".into()),
        agent: Some(AgentSettings {
            agent_id: "agent_sim".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        pacing: Some(Pacing { max_concurrent: 8, calls_per_minute: 6000 }),
        schedule: Some(Schedule {
            windows: vec![CallingWindow { days: Day::ALL.to_vec(), start: "00:00".into(), end: "23:59".into() }],
            time_zone: "UTC".into(),
            holidays: vec![],
            ..Schedule::default()
        }),
        retry: Some(switchboard_domain::campaign::RetryPolicy {
            busy: switchboard_domain::campaign::RetryRule { retry: true, delay_secs: 0 },
            no_answer: switchboard_domain::campaign::RetryRule { retry: true, delay_secs: 0 },
            voicemail: switchboard_domain::campaign::RetryRule { retry: false, delay_secs: 0 },
            failed: switchboard_domain::campaign::RetryRule { retry: false, delay_secs: 0 },
            max_attempts: 2,
            daily_cap: 2,
        }),
        ..Default::default()
    }
    .apply(None, now)
    .unwrap();
    // Holidays in the recipient's zone: today and tomorrow in "Pacific/Kiritimati" (UTC+14) are off.
    let kiri: chrono_tz::Tz = "Pacific/Kiritimati".parse().unwrap();
    let today_kiri = now.with_timezone(&kiri).date_naive();
    campaign.schedule.holidays = vec![today_kiri, today_kiri + Duration::days(1)];
    campaign.status = CampaignStatus::Running;
    // Faster than the API allows (the cap is what is under test, not the pace): starts 1 ms apart.
    campaign.pacing.calls_per_minute = 60_000;
    store.insert_campaign(&campaign).await.unwrap();
    let mut contacts = Vec::new();
    for i in 0..1000u32 {
        let tz = if i % 3 == 0 { Some("Pacific/Kiritimati".to_owned()) } else { Some("Etc/GMT+12".to_owned()) };
        let k = ContactInput {
            phone: Some(format!("+1500555{i:04}")),
            name: Some(format!("P{i}")),
            time_zone: tz,
            ..Default::default()
        }
        .validate("US", now)
        .unwrap();
        store.insert_contact(&k).await.unwrap();
        contacts.push(k);
    }
    let ids: Vec<_> = contacts.iter().map(|k| k.id.clone()).collect();
    store.enroll(&campaign.id, &ids, now).await.unwrap();
    let off_day: HashSet<String> = contacts
        .iter()
        .filter(|k| k.time_zone.as_deref() == Some("Pacific/Kiritimati"))
        .map(|k| k.phone.clone())
        .collect();

    // A dialer that "crashes" right after claiming: its claim must be recovered, not lost or doubled.
    let crashed =
        store.claim_enrollment(&campaign.id, now, "crashed", now + Duration::seconds(1)).await.unwrap().unwrap();

    let mut max_in_flight = 0usize;
    let mut paused_checked = false;
    for round in 0..3000 {
        let t = now_ms();
        let (a, b) = (dialers[0].clone(), dialers[1].clone());
        let (ra, rb) = tokio::join!(a.step(t), b.step(t));
        ra.unwrap();
        rb.unwrap();
        let c = store.get_campaign(&campaign.id).await.unwrap().unwrap();
        max_in_flight = max_in_flight.max(c.inflight.len());
        assert!(c.inflight.len() <= 8, "gate exceeded: {:?}", c.inflight);
        if round == 10 {
            // Pause: no new placements while paused, calls in flight finish.
            let mut p = c.clone();
            p.status = CampaignStatus::Paused;
            store.replace_campaign(&p).await.unwrap();
            let placed_before = sim.sim.calls().len();
            for _ in 0..5 {
                let t = now_ms();
                dialers[0].step(t).await.unwrap();
                dialers[1].step(t).await.unwrap();
                tokio::time::sleep(StdDuration::from_millis(20)).await;
            }
            assert_eq!(sim.sim.calls().len(), placed_before, "nothing placed while paused");
            let mut r = store.get_campaign(&campaign.id).await.unwrap().unwrap();
            r.status = CampaignStatus::Running;
            store.replace_campaign(&r).await.unwrap();
            paused_checked = true;
        }
        if c.status == CampaignStatus::Completed {
            break;
        }
        // Done when only the holiday contacts are left, all pending.
        let counts = store.count_enrollments(&campaign.id).await.unwrap();
        let open: u64 = counts.iter().filter(|(s, _)| !s.is_final()).map(|(_, n)| n).sum();
        let pending = counts.iter().find(|(s, _)| *s == EnrollmentStatus::Pending).map_or(0, |(_, n)| *n);
        let open = if open == pending && pending as usize == off_day.len() { 0 } else { open };
        if open == 0 {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(5)).await;
    }
    assert!(paused_checked);
    assert!(max_in_flight >= 2, "the run was concurrent (max in flight {max_in_flight})");

    // Zero duplicate dials: every provider call belongs to exactly one recorded attempt.
    let calls = sim.sim.calls();
    let enrollments = all_enrollments(&*store, &campaign.id).await;
    let attempts: u32 = enrollments.iter().map(|e| e.attempts).sum();
    assert_eq!(calls.len() as u32, attempts, "one provider call per attempt");
    let mut per_number: HashMap<&str, usize> = HashMap::new();
    for c in &calls {
        *per_number.entry(c.to.as_str()).or_default() += 1;
        // No dial outside the recipient's calling days.
        assert!(!off_day.contains(&c.to), "dialled {} on a holiday in its zone", c.to);
    }
    assert!(per_number.values().all(|n| *n <= 2), "max_attempts respected: {per_number:?}");
    let recovered = enrollments.iter().find(|e| e.id == crashed.id).unwrap();
    assert!(recovered.lease_token >= 2 && recovered.status != EnrollmentStatus::Dialing, "recovered: {recovered:?}");
    let crashed_phone = &contacts.iter().find(|k| k.id == crashed.contact_id).unwrap().phone;
    if !off_day.contains(crashed_phone) {
        assert!(recovered.attempts >= 1, "the crashed claim was dialled after recovery: {recovered:?}");
    }

    // Every enrollment is final, or waiting for its window with a reason.
    for e in &enrollments {
        let phone = &contacts.iter().find(|k| k.id == e.contact_id).unwrap().phone;
        if off_day.contains(phone) {
            assert_eq!(e.status, EnrollmentStatus::Pending, "{e:?}");
            assert!(e.next_attempt_at > now, "deferred to its next window: {e:?}");
            assert!(e.reason.as_deref().unwrap_or("").contains("outside_calling_window"), "{e:?}");
        } else {
            assert!(e.status.is_final(), "{e:?}");
            assert!(e.last_outcome.is_some(), "{e:?}");
        }
    }
    // Every call of the campaign is one merged record with its enrollment link.
    for c in &calls {
        let rec = store.find_call_by_sid(&c.sid).await.unwrap().expect("recorded");
        assert!(
            rec.enrollment_id.is_some() && rec.campaign_id.as_ref().map(|c| c.as_str()) == Some(campaign.id.as_str())
        );
        assert_eq!(rec.conversation_id, c.conversation_id);
    }
    let c = store.get_campaign(&campaign.id).await.unwrap().unwrap();
    assert!(c.inflight.is_empty(), "no slot leaked: {:?}", c.inflight);
    // The analytics rollups, kept by the app's own job through duplicates,
    // reorders and late corrections, equal a recomputation from the raw calls.
    crate::dashboard::assert_rollups_converge(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dialer_follows_the_recipients_window_across_a_dst_change() {
    let Rig { app, sim, dialers } = rig(Scenario { time_scale: 1000.0, ..Scenario::default() }).await;
    let store = app.store();
    let d = &dialers[0];
    let utc = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // New York 09:00–10:00 every day; the campaign starts on 2026-03-07 (EST), DST begins 2026-03-08.
    let start = utc("2026-03-07T00:00:00Z");
    let mut c = CampaignInput {
        name: Some("DST".into()),
        agent: Some(AgentSettings {
            agent_id: "agent_sim".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        schedule: Some(Schedule {
            start_at: Some(start),
            windows: vec![CallingWindow { days: Day::ALL.to_vec(), start: "09:00".into(), end: "10:00".into() }],
            time_zone: "America/New_York".into(),
            holidays: vec![],
            end_at: None,
        }),
        pacing: Some(Pacing { max_concurrent: 10, calls_per_minute: 6000 }),
        ..Default::default()
    }
    .apply(None, utc("2026-03-01T00:00:00Z"))
    .unwrap();
    c.status = CampaignStatus::Scheduled;
    store.insert_campaign(&c).await.unwrap();
    let mut ks = Vec::new();
    for i in 0..3u32 {
        let k = ContactInput { phone: Some(format!("+1500555{:04}", 700 + i)), ..Default::default() }
            .validate("US", start)
            .unwrap();
        store.insert_contact(&k).await.unwrap();
        ks.push(k);
    }
    let placed = || sim.sim.calls().len();
    // Before the start: still scheduled, nothing dialled.
    d.step(utc("2026-03-06T14:30:00Z")).await.unwrap();
    assert_eq!(store.get_campaign(&c.id).await.unwrap().unwrap().status, CampaignStatus::Scheduled);
    // Sat 2026-03-07 14:30Z = 09:30 EST: inside. The scheduled campaign starts and dials contact 0.
    store.enroll(&c.id, &[ks[0].id.clone()], utc("2026-03-07T14:00:00Z")).await.unwrap();
    let r = d.step(utc("2026-03-07T14:30:00Z")).await.unwrap();
    assert_eq!((r.started, r.placed), (1, 1), "{r:?}");
    let settle = || tokio::time::sleep(StdDuration::from_millis(600));
    settle().await;
    // Sun 2026-03-08 13:30Z = 09:30 EDT: inside (an hour earlier in UTC than the day before).
    store.enroll(&c.id, &[ks[2].id.clone()], utc("2026-03-08T13:00:00Z")).await.unwrap();
    let r = d.step(utc("2026-03-08T13:30:00Z")).await.unwrap();
    assert_eq!(r.placed, 1, "{r:?}");
    settle().await;
    // Sun 2026-03-08 14:30Z = 10:30 EDT: the UTC time that was inside yesterday is outside today.
    store.enroll(&c.id, &[ks[1].id.clone()], utc("2026-03-08T14:00:00Z")).await.unwrap();
    let r = d.step(utc("2026-03-08T14:30:00Z")).await.unwrap();
    assert_eq!((r.placed, r.deferred), (0, 1), "{r:?}");
    let e1 = store.find_enrollment(&c.id, &ks[1].id).await.unwrap().unwrap();
    assert_eq!(e1.next_attempt_at, utc("2026-03-09T13:00:00Z"), "next window: 09:00 EDT on Monday");
    assert!(e1.status.is_waiting());
    settle().await;
    let r = d.step(utc("2026-03-09T13:05:00Z")).await.unwrap();
    assert_eq!(r.placed, 1, "{r:?}");
    assert_eq!(placed(), 3);
}

async fn one_contact_campaign(
    store: &dyn Storage,
    mode: switchboard_domain::DialMode,
    phone: &str,
) -> (switchboard_domain::Campaign, switchboard_domain::Contact) {
    let now = now_ms();
    let mut c = CampaignInput {
        name: Some(format!("{mode}")),
        agent: Some(AgentSettings {
            agent_id: "agent_sim".into(),
            caller_id: Some("+15005550001".into()),
            phone_number_id: Some("phnum_sim".into()),
            first_message: Some("Hi {{contact.name}}".into()),
            ..Default::default()
        }),
        dial_mode: Some(mode),
        schedule: Some(Schedule { windows: vec![], time_zone: "UTC".into(), holidays: vec![], ..Schedule::default() }),
        ..Default::default()
    }
    .apply(None, now)
    .unwrap();
    c.status = CampaignStatus::Running;
    store.insert_campaign(&c).await.unwrap();
    let k = ContactInput { phone: Some(phone.into()), name: Some("Dana".into()), ..Default::default() }
        .validate("US", now)
        .unwrap();
    store.insert_contact(&k).await.unwrap();
    store.enroll(&c.id, std::slice::from_ref(&k.id), now).await.unwrap();
    (c, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_native_calls_and_placement_failures_follow_the_rules() {
    let Rig { app, sim, dialers } = rig(Scenario { time_scale: 1000.0, ..Scenario::default() }).await;
    let store = app.store();
    let d = &dialers[0];

    // ElevenLabs-native: outbound-call places it; the post-call webhook ends it.
    let (c, k) = one_contact_campaign(&*store, switchboard_domain::DialMode::ElevenLabsNative, "+15005550801").await;
    let r = d.step(now_ms()).await.unwrap();
    assert_eq!(r.placed, 1, "{r:?}");
    let e = store.find_enrollment(&c.id, &k.id).await.unwrap().unwrap();
    let call = store.get_call(e.current_call_id.as_ref().unwrap()).await.unwrap();
    assert!(call.call_sid.is_some() && call.conversation_id.is_some(), "keys attached from the answer: {call:?}");
    for _ in 0..100 {
        if store.find_enrollment(&c.id, &k.id).await.unwrap().unwrap().status != EnrollmentStatus::InCall {
            break;
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let e = store.find_enrollment(&c.id, &k.id).await.unwrap().unwrap();
    assert_ne!(e.status, EnrollmentStatus::InCall, "the ElevenLabs webhook applied the outcome: {e:?}");
    assert_eq!(sim.sim.calls().len(), 1);
    let mut done = store.get_campaign(&c.id).await.unwrap().unwrap();
    done.status = CampaignStatus::Cancelled;
    store.replace_campaign(&done).await.unwrap();

    // Twilio-first with Twilio answering 503: the call may exist, so it is not re-dialled;
    // with no final status after 3 h it is failed (the default policy does not retry failures).
    let mut s = sim.sim.scenario();
    s.faults.api_5xx_rate = 1.0;
    sim.sim.set_scenario(s);
    let (c2, k2) = one_contact_campaign(&*store, switchboard_domain::DialMode::TwilioFirst, "+15005550802").await;
    let t = now_ms();
    let r = d.step(t).await.unwrap();
    assert_eq!((r.placed, r.placement_failures), (0, 1), "{r:?}");
    let e = store.find_enrollment(&c2.id, &k2.id).await.unwrap().unwrap();
    assert_eq!((e.status, e.attempts), (EnrollmentStatus::InCall, 1), "kept in flight: {e:?}");
    let r = d.step(t + Duration::minutes(5)).await.unwrap();
    assert_eq!(r.placed, 0, "never re-dialled while it may exist");
    let r = d.step(t + Duration::hours(4)).await.unwrap();
    assert_eq!(r.reconciled, 1, "{r:?}");
    let e = store.find_enrollment(&c2.id, &k2.id).await.unwrap().unwrap();
    assert_eq!(
        (e.status, e.last_outcome),
        (EnrollmentStatus::Failed, Some(switchboard_domain::Outcome::Failed)),
        "{e:?}"
    );
    assert!(store.get_campaign(&c2.id).await.unwrap().unwrap().inflight.is_empty());

    // No Twilio client configured: refused before anything is sent, a failed outcome with the reason.
    let bare = Dialer::new(store.clone(), None, None, Callbacks { public_base: app.base.clone() }, "bare");
    let (c3, k3) = one_contact_campaign(&*store, switchboard_domain::DialMode::TwilioFirst, "+15005550803").await;
    let r = bare.step(t + Duration::hours(5)).await.unwrap();
    assert_eq!(r.placement_failures, 1, "{r:?}");
    let e = store.find_enrollment(&c3.id, &k3.id).await.unwrap().unwrap();
    assert_eq!(e.status, EnrollmentStatus::Failed);
    assert!(e.reason.as_deref().unwrap_or("").contains("not configured"), "{e:?}");

    // Twilio answering 429 only: the attempt is undone and retried a minute later.
    let mut s = sim.sim.scenario();
    s.faults.api_5xx_rate = 0.0;
    s.faults.api_429_rate = 1.0;
    s.faults.retry_after_secs = Some(0.0);
    sim.sim.set_scenario(s);
    let (c4, k4) = one_contact_campaign(&*store, switchboard_domain::DialMode::TwilioFirst, "+15005550804").await;
    let t4 = t + Duration::hours(6);
    d.step(t4).await.unwrap();
    let e = store.find_enrollment(&c4.id, &k4.id).await.unwrap().unwrap();
    assert_eq!((e.status, e.attempts), (EnrollmentStatus::Pending, 0), "{e:?}");
    assert_eq!(e.next_attempt_at, t4 + Duration::seconds(60));
    assert!(store.get_campaign(&c4.id).await.unwrap().unwrap().inflight.is_empty());
}
