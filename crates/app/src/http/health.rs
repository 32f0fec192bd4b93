//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the store answers).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AppState;

/// Always 200 while the process serves requests.
#[utoipa::path(get, path = "/healthz", tag = "health", operation_id = "healthz",
    responses((status = 200, description = "Alive", body = super::schemas::Health)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// 200 when the store answers a ping, else 503.
#[utoipa::path(get, path = "/readyz", tag = "health", operation_id = "readyz",
    responses(
        (status = 200, description = "Store reachable", body = super::schemas::Readiness),
        (status = 503, description = "Store unreachable (`status: unavailable` with the reason), or the request timed out (problem+json)",
            headers(("Retry-After" = u32, description = "Seconds to wait, on a timeout")),
            content(
                (super::schemas::Readiness = "application/json"),
                (crate::error::Problem = "application/problem+json"),
            )),
    ))]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let backend = state.store.backend_name();
    // The cache never makes the service unready: a Redis outage is reported, reads go to the store.
    let cache = json!({
        "backend": state.cache.backend_name(),
        "status": if state.cache.degraded() { "degraded: Redis unreachable, serving from the store" } else { "ok" },
    });
    // Nor does the live feed: without Redis, other instances' events do not reach this one's clients.
    let live = json!({
        "bus": state.live.bus_name(),
        "status": if state.live.listening() { "ok" } else { "degraded: Redis unreachable, other instances' events are not delivered here" },
    });
    match tokio::time::timeout(std::time::Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => {
            (StatusCode::OK, Json(json!({ "status": "ready", "store": backend, "cache": cache, "live": live })))
        }
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": backend, "reason": e.to_string() })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "store": backend, "reason": "ping timed out" })),
        ),
    }
}

/// Health routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}
