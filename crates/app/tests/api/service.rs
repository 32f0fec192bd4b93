//! Health, metrics, OpenAPI drift, Swagger UI, request ids, graceful shutdown.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::TestApp;

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = TestApp::spawn().await;
    let r = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers().contains_key("x-request-id"), "request ids are propagated");
    let ready: Value = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"], "sqlite");
}

#[tokio::test]
async fn metrics_expose_http_and_store_series() {
    let app = TestApp::spawn().await;
    app.get("/api/v1/calls").await;
    let m = app
        .client
        .get(format!("{}/metrics", app.base))
        .bearer_auth(crate::helpers::API_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("switchboard_http_requests_total"), "{m}");
    assert!(m.contains("route=\"/api/v1/calls\""), "{m}");
    assert!(m.contains("switchboard_store_operation_duration_seconds"), "{m}");
}

#[tokio::test]
async fn the_committed_openapi_document_matches_the_code() {
    let generated = switchboard::http::openapi::document();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p switchboard --test api openapi` and commit it"
    );
    let app = TestApp::spawn().await;
    let served: Value =
        app.client.get(format!("{}/api/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
    let committed: Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(served, committed);
    for p in ["/api/v1/calls", "/api/v1/calls/{id}", "/api/v1/calls/{id}/events", "/api/v1/events"] {
        assert!(served["paths"][p].is_object(), "{p} documented");
    }
    let docs = app.client.get(format!("{}/docs/", app.base)).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().to_lowercase().contains("swagger"));
}

#[tokio::test]
async fn unknown_routes_are_problem_json_404() {
    let app = TestApp::spawn().await;
    let r = app.client.get(format!("{}/nope", app.base)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn shutdown_drains_an_in_flight_request() {
    let mut app = TestApp::spawn().await;
    // A request whose body is still arriving when the server is told to stop:
    // the server must finish it (not drop it) before exiting.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let body = reqwest::Body::wrap_stream(tokio_stream_from(rx));
    let req = app
        .client
        .post(format!("{}/api/v1/contacts", app.base))
        .bearer_auth(crate::helpers::API_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send();
    let inflight = tokio::spawn(req);
    tx.send(Ok(br#"{"phone": "+1415555"#.to_vec())).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let stop_tx = app.stop_handle();
    let _ = stop_tx.send(());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tx.send(Ok(br#"0177"}"#.to_vec())).await.unwrap();
    drop(tx);
    let r = inflight.await.unwrap().expect("the in-flight request was answered, not dropped");
    assert_eq!(r.status(), StatusCode::CREATED);
    app.stop().await;
    let fresh = reqwest::Client::new().get(format!("{}/healthz", app.base)).send().await;
    assert!(fresh.is_err(), "the server stopped after draining");
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}
