//! The HTTP surface: `/api/v1` (bearer auth), `/webhooks/*` (signatures),
//! health, metrics, the OpenAPI document and Swagger UI.

pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod events;
pub mod health;
pub mod openapi;
pub mod query;

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use subtle::ConstantTimeEq;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Requires `Authorization: Bearer <token>` matching a configured token (constant time).
async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Result<Response, ApiError> {
    let given = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let ok = !given.is_empty()
        && state
            .api_tokens
            .iter()
            .fold(false, |acc, t| acc | bool::from(t.expose().as_bytes().ct_eq(given.as_bytes())));
    if !ok {
        return Err(ApiError::Unauthorized);
    }
    Ok(next.run(req).await)
}

/// Counts and times every request by matched route (not raw path, to bound cardinality).
async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let resp = next.run(req).await;
    let status = resp.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "method" => method, "route" => route).record(start.elapsed().as_secs_f64());
    resp
}

async fn render_metrics() -> String {
    crate::metrics::handle().render()
}

async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let _ = crate::metrics::handle();
    let api = Router::new()
        .merge(calls::router())
        .merge(contacts::router())
        .merge(campaigns::router())
        .merge(events::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(state.settings.body_limit_bytes));
    let timeout = Duration::from_secs(state.settings.request_timeout_secs);
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::webhooks::router(&state))
        .merge(health::router())
        .route("/metrics", axum::routing::get(render_metrics))
        .merge(openapi::router())
        .fallback(not_found)
        .route_layer(middleware::from_fn(track))
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(CatchPanicLayer::new())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("");
            let route = req.extensions().get::<MatchedPath>().map(|m| m.as_str()).unwrap_or(req.uri().path());
            tracing::info_span!("http", method = %req.method(), route = %route, request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            axum::http::header::AUTHORIZATION,
            HeaderName::from_static("x-twilio-signature"),
            HeaderName::from_static("elevenlabs-signature"),
        ]))
}
