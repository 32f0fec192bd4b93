//! The HTTP surface: `/api/v1` (bearer auth), `/webhooks/*` (signatures),
//! health, metrics, the OpenAPI document and Swagger UI.

pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod dashboard;
pub mod events;
pub mod extract;
pub mod health;
pub mod insights;
pub mod jobs;
pub mod openapi;
pub mod query;
pub mod schemas;
pub mod server;
pub mod sheets;
pub mod transcripts;

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

/// Most headers a request may carry (hyper is set to read twice as many, so
/// the excess gets our 431 problem rather than a bare one).
pub const MAX_HEADER_COUNT: usize = 100;

/// Answers an over-long URI (414) or an oversized header set (431) with a
/// problem body. Requests past hyper's own buffer are cut by hyper itself.
async fn head_limits(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let limits = &state.settings.http;
    let uri_len = req.uri().path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
    if uri_len > limits.max_uri_bytes {
        return crate::error::problem(
            "uri_too_long",
            format!("the URI is {uri_len} bytes; at most {} are accepted", limits.max_uri_bytes),
            vec![],
        );
    }
    let headers = req.headers();
    let bytes: usize = headers.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
    if headers.len() > MAX_HEADER_COUNT || bytes > limits.max_header_bytes {
        return crate::error::problem(
            "headers_too_large",
            format!(
                "{} headers, {bytes} bytes; at most {MAX_HEADER_COUNT} headers and {} bytes are accepted",
                headers.len(),
                limits.max_header_bytes
            ),
            vec![],
        );
    }
    next.run(req).await
}

/// Every error a client sees is problem+json: a response some layer made
/// with no body of ours (axum's 405, a path or length rejection in plain
/// text, the timeout's empty 503, a caught panic) is rewritten, keeping a
/// short plain-text reason as the detail.
async fn problem_for_bare_errors(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp.headers().get(axum::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    // Bodies of ours (problem+json, or a JSON report such as an import's 422) stay as they are.
    if ct.starts_with("application/problem+json") || ct.starts_with("application/json") {
        return resp;
    }
    let is_text = ct.starts_with("text/plain");
    let (parts, body) = resp.into_parts();
    let text = if is_text {
        axum::body::to_bytes(body, 2048)
            .await
            .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let code = crate::error::code_for_status(status.as_u16());
    let detail = if !text.is_empty() {
        text
    } else {
        match status.as_u16() {
            405 => "this route does not take this method".into(),
            503 => "the request did not finish in time; it may or may not have been applied".into(),
            _ => status.canonical_reason().unwrap_or("error").to_owned(),
        }
    };
    let mut out = crate::error::problem(code, detail, vec![]);
    *out.status_mut() = status;
    for name in [axum::http::header::ALLOW, axum::http::header::RETRY_AFTER, axum::http::header::WWW_AUTHENTICATE] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE && !out.headers().contains_key(axum::http::header::RETRY_AFTER) {
        out.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("5"));
    }
    out
}

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

/// `/metrics` alone, without a token: for `metrics.listen`.
pub fn metrics_router() -> Router {
    let _ = crate::metrics::handle();
    Router::new()
        .route("/metrics", axum::routing::get(render_metrics))
        .layer(middleware::from_fn(problem_for_bare_errors))
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let _ = crate::metrics::handle();
    // On the main listener `/metrics` needs a token; with `metrics.listen` set it is served only there.
    let metrics = if state.settings.metrics.listen.is_none() {
        Router::new()
            .route("/metrics", axum::routing::get(render_metrics))
            .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
    } else {
        Router::new()
    };
    let api = Router::new()
        .merge(calls::router())
        .merge(contacts::router())
        .merge(campaigns::router())
        .merge(events::router())
        .merge(jobs::router())
        .merge(sheets::router())
        .merge(transcripts::router())
        .merge(insights::router())
        .merge(dashboard::router())
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(state.settings.body_limit_bytes));
    let timeout = Duration::from_secs(state.settings.request_timeout_secs);
    let live = state.live.layer(state.api_tokens.clone());
    Router::new()
        .nest("/api/v1", api)
        .merge(crate::webhooks::router(&state))
        .merge(health::router())
        .merge(dashboard::page_router())
        .merge(metrics)
        .merge(openapi::router())
        .fallback(not_found)
        .route_layer(middleware::from_fn(track))
        .layer(middleware::from_fn_with_state(state.clone(), head_limits))
        .with_state(state)
        .layer(TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, timeout))
        .layer(CatchPanicLayer::new())
        .layer(middleware::from_fn(problem_for_bare_errors))
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
        // Outermost: `/socket.io/` (long polling and websocket) bypasses the request timeout.
        .layer(live)
}
