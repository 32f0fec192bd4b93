//! The calls and events API: filters, pagination, lookups, errors, auth.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{TestApp, refs, sid, status_params};

async fn seed_calls(app: &TestApp) {
    let statuses = ["completed", "busy", "no-answer", "completed", "failed", "ringing"];
    for i in 0..30u32 {
        let st = statuses[i as usize % statuses.len()];
        let mut p = status_params(&sid(100 + i), 3, st);
        for (k, v) in p.iter_mut() {
            if *k == "Timestamp" {
                *v = format!("Tue, 17 Nov 2026 1{}:{:02}:00 +0000", i % 3, i);
            }
            if *k == "Direction" && i % 5 == 0 {
                *v = "inbound".into();
            }
        }
        assert_eq!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status(), StatusCode::NO_CONTENT);
    }
}

fn ids(page: &Value) -> Vec<String> {
    page["data"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn list_filters_combine_and_pages_cover_everything_once() {
    let app = TestApp::spawn().await;
    seed_calls(&app).await;
    let all = app.get_json("/api/v1/calls?limit=200", StatusCode::OK).await;
    assert_eq!(all["data"].as_array().unwrap().len(), 30);
    assert!(all["next_cursor"].is_null());
    // Newest first by default.
    let starts: Vec<&str> = all["data"].as_array().unwrap().iter().map(|c| c["started_at"].as_str().unwrap()).collect();
    let mut sorted = starts.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(starts, sorted);
    // Paging with limit 7 returns the same list.
    let mut paged = Vec::new();
    let mut url = "/api/v1/calls?limit=7".to_string();
    loop {
        let p = app.get_json(&url, StatusCode::OK).await;
        paged.extend(ids(&p));
        match p["next_cursor"].as_str() {
            Some(c) => url = format!("/api/v1/calls?limit=7&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged, ids(&all));
    // Repeated and comma-separated statuses.
    let r = app.get_json("/api/v1/calls?status=busy&status=no-answer&limit=200", StatusCode::OK).await;
    assert_eq!(r["data"].as_array().unwrap().len(), 10);
    let r2 = app.get_json("/api/v1/calls?status=busy,no-answer&limit=200", StatusCode::OK).await;
    assert_eq!(ids(&r), ids(&r2));
    let inbound = app.get_json("/api/v1/calls?direction=inbound&status=completed", StatusCode::OK).await;
    for c in inbound["data"].as_array().unwrap() {
        assert_eq!(c["direction"], "inbound");
        assert_eq!(c["status"], "completed");
    }
    let window = app
        .get_json("/api/v1/calls?started_after=2026-11-17T11:00:00Z&started_before=2026-11-17T12:00:00Z&sort=started_at&limit=200", StatusCode::OK)
        .await;
    let w = window["data"].as_array().unwrap();
    assert_eq!(w.len(), 10);
    assert!(w.iter().all(|c| c["started_at"].as_str().unwrap().starts_with("2026-11-17T11:")));
    let by_from = app.get_json("/api/v1/calls?from=%2B15005550001&to=%2B15005550006&limit=1", StatusCode::OK).await;
    assert_eq!(by_from["data"].as_array().unwrap().len(), 1);
    assert!(by_from["next_cursor"].is_string());
    let none = app.get_json("/api/v1/calls?campaign_id=cmp_x&contact_id=con_x&agent_id=a", StatusCode::OK).await;
    assert!(none["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_query_parameters_are_400_naming_each_one() {
    let app = TestApp::spawn().await;
    let r = app.get("/api/v1/calls?status=bogus&limit=500&sort=name&started_after=yesterday&colour=red").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "validation_failed");
    let mut fields: Vec<&str> = b["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    fields.sort();
    assert_eq!(fields, ["colour", "limit", "sort", "started_after", "status"]);
    let r = app.get("/api/v1/calls?cursor=not-a-cursor").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["errors"][0]["field"], "cursor");
    let r = app.get("/api/v1/events?source=carrier-pigeon").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn calls_are_found_by_any_id_and_missing_ones_are_404() {
    let app = TestApp::spawn().await;
    let p = status_params(&sid(7), 0, "initiated");
    app.twilio("/webhooks/twilio/status", &refs(&p)).await;
    let by_sid = app.get_json(&format!("/api/v1/calls/{}", sid(7)), StatusCode::OK).await;
    let id = by_sid["id"].as_str().unwrap();
    let by_id = app.get_json(&format!("/api/v1/calls/{id}"), StatusCode::OK).await;
    assert_eq!(by_sid, by_id);
    let missing = app.get_json("/api/v1/calls/call_0123456789abcdef0123456789abcdef", StatusCode::NOT_FOUND).await;
    assert_eq!(missing["code"], "call_not_found");
    app.get_json(&format!("/api/v1/calls/{}", sid(8)), StatusCode::NOT_FOUND).await;
    app.get_json("/api/v1/calls/conv_nope/events", StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn the_api_requires_a_valid_bearer_token() {
    let app = TestApp::spawn().await;
    let r = app.client.get(format!("{}/api/v1/calls", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = app
        .client
        .get(format!("{}/api/v1/calls", app.base))
        .bearer_auth("wrong-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["code"], "unauthorized");
}

#[tokio::test]
async fn events_are_filtered_by_type_source_and_time() {
    let app = TestApp::spawn().await;
    for (seq, st) in [(0, "initiated"), (1, "ringing"), (2, "in-progress"), (3, "completed")] {
        let p = status_params(&sid(9), seq, st);
        app.twilio("/webhooks/twilio/status", &refs(&p)).await;
    }
    let ringing = app.get_json("/api/v1/events?type=twilio.status.ringing", StatusCode::OK).await;
    assert_eq!(ringing["data"].as_array().unwrap().len(), 1);
    let window = app
        .get_json(
            "/api/v1/events?source=twilio&occurred_after=2026-11-17T10:15:15Z&occurred_before=2026-11-17T10:15:25Z",
            StatusCode::OK,
        )
        .await;
    let types: Vec<&str> = window["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["twilio.status.ringing", "twilio.status.in-progress"]);
    let page = app.get_json("/api/v1/events?limit=3", StatusCode::OK).await;
    let next = page["next_cursor"].as_str().unwrap();
    let rest = app.get_json(&format!("/api/v1/events?limit=3&cursor={next}"), StatusCode::OK).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["data"][0]["type"], "twilio.status.completed");
}
