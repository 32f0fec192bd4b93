//! `ApiError`: every failure a client can see, as `application/problem+json`
//! with a stable `code` from one table ([`CODES`]). Internal detail goes to
//! the log, never to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use switchboard_storage::StoreError;
use utoipa::ToSchema;

/// One field-level problem.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field, query parameter or form key.
    pub field: String,
    /// Why it was rejected.
    pub reason: String,
}

/// The problem+json body (RFC 9457) with our `code` and field errors.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// `/problems/{code}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short title for the code.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code (see the table in the README).
    pub code: String,
    /// Human-readable detail.
    pub detail: String,
    /// Field-level problems.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// Every client-visible code: (code, status, title). One table, documented in the README.
pub const CODES: &[(&str, u16, &str)] = &[
    ("validation_failed", 400, "The request is invalid"),
    ("malformed_webhook", 400, "The webhook body is malformed"),
    ("unauthorized", 401, "Missing or invalid bearer token"),
    ("invalid_signature", 403, "Webhook signature verification failed"),
    ("call_not_found", 404, "No such call"),
    ("not_found", 404, "No such resource"),
    ("conflict", 409, "The request conflicts with stored data"),
    ("method_not_allowed", 405, "The route does not take this method"),
    ("payload_too_large", 413, "The body is too large"),
    ("uri_too_long", 414, "The request URI is too long"),
    ("unsupported_media_type", 415, "The body's content type is not accepted here"),
    ("headers_too_large", 431, "The request headers are too large"),
    ("request_timeout", 503, "The request took too long; retry later"),
    ("store_unavailable", 503, "The database is unavailable; retry later"),
    ("upstream_error", 502, "A provider (Google, Twilio, ElevenLabs) refused or failed"),
    ("not_configured", 503, "The integration this needs is not configured"),
    ("internal_error", 500, "Internal error"),
];

/// A client-visible error.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Bad input; names each field.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A webhook body that cannot be used.
    #[error("malformed webhook")]
    MalformedWebhook(Vec<FieldError>),
    /// No or wrong bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// Webhook signature mismatch.
    #[error("invalid signature: {0}")]
    InvalidSignature(&'static str),
    /// Missing resource, by code.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Conflict with stored state.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A compare-and-set lost to a concurrent write; [`retry_on_stale`]
    /// retries it, and a client that still sees it gets a 409.
    #[error("stale: {0}")]
    Stale(String),
    /// The body is not in a media type the route takes.
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    /// The body is over the configured limit.
    #[error("payload too large: {0}")]
    PayloadTooLarge(String),
    /// Store down or timing out.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A provider refused or failed; the detail says why and what to do.
    #[error("upstream: {0}")]
    Upstream(String),
    /// The integration the request needs is not configured; the detail names the setting.
    #[error("not configured: {0}")]
    NotConfigured(String),
    /// Anything else (logged, not shown).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// One field error.
    pub fn field(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::Validation(vec![FieldError { field: field.into(), reason: reason.into() }])
    }

    /// One malformed webhook field.
    pub fn webhook_field(field: impl Into<String>, reason: impl Into<String>) -> ApiError {
        ApiError::MalformedWebhook(vec![FieldError { field: field.into(), reason: reason.into() }])
    }

    fn code(&self) -> &'static str {
        match self {
            ApiError::Validation(_) => "validation_failed",
            ApiError::MalformedWebhook(_) => "malformed_webhook",
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidSignature(_) => "invalid_signature",
            ApiError::NotFound("call") => "call_not_found",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) | ApiError::Stale(_) => "conflict",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::Unavailable(_) => "store_unavailable",
            ApiError::Upstream(_) => "upstream_error",
            ApiError::NotConfigured(_) => "not_configured",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn detail(&self) -> String {
        match self {
            ApiError::Validation(errs) | ApiError::MalformedWebhook(errs) => {
                errs.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ")
            }
            ApiError::Unauthorized => "send `Authorization: Bearer <token>` with a configured API token".into(),
            ApiError::InvalidSignature(what) => format!("{what} does not match the request"),
            ApiError::NotFound(what) => format!("no {what} with this id"),
            ApiError::Conflict(what) | ApiError::Stale(what) => what.clone(),
            ApiError::UnsupportedMediaType(what) | ApiError::PayloadTooLarge(what) => what.clone(),
            ApiError::Upstream(what) | ApiError::NotConfigured(what) => what.clone(),
            ApiError::Unavailable(_) => "the database did not answer in time; the request was not applied".into(),
            ApiError::Internal(_) => "an internal error occurred; it has been logged".into(),
        }
    }
}

/// The optimistic-concurrency loop of a handler in one place: `attempt`
/// re-reads, checks and writes with compare-and-set; when the write loses to
/// a concurrent one ([`ApiError::Stale`]) it runs again, up to five times.
pub async fn retry_on_stale<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, ApiError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ApiError>>,
{
    for _ in 0..5 {
        match attempt().await {
            Err(ApiError::Stale(_)) => continue,
            other => return other,
        }
    }
    Err(ApiError::Conflict(format!("the {what} kept changing; try again")))
}

/// The code for a bare status (a response some layer made without a body of ours).
pub fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "validation_failed",
        401 => "unauthorized",
        404 => "not_found",
        405 => "method_not_allowed",
        409 => "conflict",
        413 => "payload_too_large",
        414 => "uri_too_long",
        415 => "unsupported_media_type",
        431 => "headers_too_large",
        503 => "request_timeout",
        _ => "internal_error",
    }
}

/// Builds a problem response for a code from the table.
pub fn problem(code: &str, detail: String, errors: Vec<FieldError>) -> Response {
    let (code, status, title) =
        CODES.iter().copied().find(|(c, _, _)| *c == code).unwrap_or(("internal_error", 500, "Internal error"));
    let body =
        Problem { kind: format!("/problems/{code}"), title: title.into(), status, code: code.into(), detail, errors };
    let mut resp =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response();
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    resp
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Internal(e) => tracing::error!(error = ?e, "internal error"),
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "store unavailable"),
            _ => {}
        }
        let errors = match &self {
            ApiError::Validation(e) | ApiError::MalformedWebhook(e) => e.clone(),
            _ => vec![],
        };
        let mut resp = problem(self.code(), self.detail(), errors);
        if matches!(self, ApiError::Unauthorized) {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_)) {
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => ApiError::NotFound(what),
            StoreError::Conflict { what } => ApiError::Conflict(what),
            StoreError::Stale(what) => ApiError::Stale(what),
            StoreError::Invalid(reason) => ApiError::field("request", reason),
            StoreError::Unavailable(why) => ApiError::Unavailable(why),
            StoreError::Other(e) => ApiError::Internal(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_in_the_table_is_unique_and_every_variant_has_one() {
        let mut seen = std::collections::HashSet::new();
        for (c, _, _) in CODES {
            assert!(seen.insert(*c), "duplicate code {c}");
        }
        let variants = [
            ApiError::field("a", "b"),
            ApiError::webhook_field("a", "b"),
            ApiError::Unauthorized,
            ApiError::InvalidSignature("x"),
            ApiError::NotFound("call"),
            ApiError::NotFound("thing"),
            ApiError::Conflict("x".into()),
            ApiError::Stale("x".into()),
            ApiError::UnsupportedMediaType("x".into()),
            ApiError::PayloadTooLarge("x".into()),
            ApiError::Unavailable("x".into()),
            ApiError::Internal(anyhow::anyhow!("x")),
        ];
        for v in variants {
            assert!(seen.contains(v.code()), "{} missing from CODES", v.code());
        }
    }
}
