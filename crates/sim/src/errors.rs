//! Error envelopes: every error the simulator answers is its provider's own
//! JSON body, never a bare status — Twilio `{code, message, more_info,
//! status}`, ElevenLabs `{"detail": …}`, Google `{"error": {code, message,
//! status}}` (the token endpoint: OAuth's `{error, error_description}`),
//! including 404 for unknown paths, 405 for wrong methods and the framework's
//! own rejections (unparsable path or query).

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub(super) fn twilio_error(status: u16, code: u32, message: &str) -> Response {
    let body = json!({ "code": code, "message": message, "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status });
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

pub(super) fn el_error(status: u16, code: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({ "detail": { "status": code, "message": message } })),
    )
        .into_response()
}

/// Google's canonical status name for an HTTP status.
fn google_status(status: u16) -> &'static str {
    match status {
        400 | 411 | 413 | 415 | 422 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        405 | 501 => "UNIMPLEMENTED",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    }
}

/// The error of the provider that owns `path`.
fn provider_error(method: &Method, path: &str, status: StatusCode, detail: &str) -> Response {
    let code = status.as_u16();
    let reason = status.canonical_reason().unwrap_or("Error");
    let detail = if detail.trim().is_empty() { reason.to_owned() } else { detail.trim().to_owned() };
    let mut resp = if path.starts_with("/2010-04-01") {
        match code {
            404 => twilio_error(404, 20404, &format!("The requested resource {path} was not found")),
            405 => twilio_error(405, 20004, &format!("Method not allowed: {method} {path}")),
            401 => twilio_error(401, 20003, "Authenticate"),
            c if c < 500 => twilio_error(c, 20001, &detail),
            c => twilio_error(c, 20500, &detail),
        }
    } else if path.starts_with("/v1/") {
        // FastAPI: routing errors carry a string detail.
        let detail = match code {
            404 => "Not Found".to_owned(),
            405 => "Method Not Allowed".to_owned(),
            _ => detail,
        };
        (status, Json(json!({ "detail": detail }))).into_response()
    } else if path == "/token" {
        let error = if code == 405 || code == 404 { "invalid_request" } else { "server_error" };
        (status, Json(json!({ "error": error, "error_description": format!("{detail}: {method} {path}") })))
            .into_response()
    } else if path.starts_with("/__sim") {
        (status, Json(json!({ "error": format!("{detail}: {method} {path}") }))).into_response()
    } else {
        let message = match code {
            404 => format!("Requested entity was not found: {method} {path}"),
            405 => format!("Method not allowed: {method} {path}"),
            _ => detail,
        };
        super::google::g_error(code, google_status(code), &message)
    };
    *resp.status_mut() = status;
    resp
}

pub(super) async fn not_found(method: Method, uri: Uri) -> Response {
    provider_error(&method, uri.path(), StatusCode::NOT_FOUND, "")
}

pub(super) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    provider_error(&method, uri.path(), StatusCode::METHOD_NOT_ALLOWED, "")
}

/// Wraps any error that is not already JSON (framework rejections) in the provider's envelope.
pub(super) async fn envelope(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let resp = next.run(req).await;
    let status = resp.status();
    let is_json = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let text = axum::body::to_bytes(body, 64 * 1024).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let mut out = provider_error(&method, &path, status, &text.unwrap_or_default());
    for (k, v) in &parts.headers {
        if k != header::CONTENT_TYPE && k != header::CONTENT_LENGTH {
            out.headers_mut().insert(k.clone(), v.clone());
        }
    }
    out
}
