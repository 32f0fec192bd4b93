//! The read cache seen from outside: a webhook's write is visible on the next
//! read (the store decorator evicts), and a Redis that dies mid-run costs
//! nothing but the cache (requests keep answering from the store, `/readyz`
//! says so), and is used again once it is back.

use std::process::{Child, Command, Stdio};
use std::time::Duration as StdDuration;

use reqwest::StatusCode;
use switchboard::config::Secret;

use crate::helpers::{TestApp, refs, sid, status_params};

async fn call_status(app: &TestApp, id: &str) -> String {
    app.get_json(&format!("/api/v1/calls/{id}"), StatusCode::OK).await["status"].as_str().unwrap().to_owned()
}

/// The writer (a webhook) reads its write back at once, though the call's
/// lookup is cached for 60 s.
async fn read_your_writes(app: &TestApp, n: u32) {
    let s = sid(n);
    assert!(app.twilio("/webhooks/twilio/status", &refs(&status_params(&s, 1, "ringing"))).await.status().is_success());
    let id = app.get_json(&format!("/api/v1/calls/{s}"), StatusCode::OK).await["id"].as_str().unwrap().to_owned();
    assert_eq!(call_status(app, &id).await, "ringing");
    assert_eq!(call_status(app, &id).await, "ringing", "(a cache hit)");
    assert!(
        app.twilio("/webhooks/twilio/status", &refs(&status_params(&s, 2, "in-progress"))).await.status().is_success()
    );
    assert_eq!(call_status(app, &id).await, "in-progress", "the webhook's write evicted the cached call");
}

#[tokio::test]
async fn a_cached_call_is_evicted_by_the_webhook_that_changes_it() {
    let app = TestApp::spawn_with(|s| s.cache.call_ttl_ms = 60_000).await;
    assert_eq!(app.state.cache.backend_name(), "memory");
    read_your_writes(&app, 0xca01).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn redis_server(port: u16) -> Child {
    Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server runs")
}

async fn wait_until(what: &str, mut f: impl AsyncFnMut() -> bool) {
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(25)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_killed_mid_run_degrades_the_cache_not_the_service() {
    if std::env::var("TEST_REDIS_URL").is_err() {
        switchboard_storage::conformance::loud(
            "SKIPPED redis_killed_mid_run_degrades_the_cache_not_the_service: TEST_REDIS_URL is not set",
        );
        return;
    }
    // A private Redis, so killing it does not disturb other tests.
    let port = free_port();
    let mut redis = redis_server(port);
    let url = format!("redis://127.0.0.1:{port}");
    let app = TestApp::spawn_with(|s| {
        s.redis.url = Some(Secret::new(url.clone()));
        s.cache.call_ttl_ms = 60_000;
    })
    .await;
    assert_eq!(app.state.cache.backend_name(), "redis");
    wait_until("the cache to connect", async || !app.state.cache.degraded()).await;
    read_your_writes(&app, 0xca02).await;
    let ready = app.get_json("/readyz", StatusCode::OK).await;
    assert_eq!(ready["cache"]["status"], "ok", "{ready}");

    redis.kill().unwrap();
    redis.wait().unwrap();
    // Everything still answers, from the store, with fresh data.
    read_your_writes(&app, 0xca03).await;
    let summary = app.get_json("/api/v1/dashboard/summary", StatusCode::OK).await;
    assert!(summary["today"]["calls"].is_i64(), "{summary}");
    assert!(app.state.cache.degraded());
    let ready = app.get_json("/readyz", StatusCode::OK).await;
    assert_eq!(ready["status"], "ready", "Redis down does not make the service unready: {ready}");
    assert!(ready["cache"]["status"].as_str().unwrap().starts_with("degraded"), "{ready}");

    // Back on the same port: the connection manager reconnects and the cache is used again.
    let mut redis = redis_server(port);
    wait_until("the cache to recover", async || {
        let _ = app.get("/api/v1/dashboard/summary").await;
        !app.state.cache.degraded()
    })
    .await;
    read_your_writes(&app, 0xca04).await;
    redis.kill().unwrap();
    let _ = redis.wait();
}
