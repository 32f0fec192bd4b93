//! Extractors and helpers shared by the API handlers: JSON bodies that must
//! say they are JSON, and domain field errors turned into API field errors.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;

use crate::error::{ApiError, FieldError};

/// A JSON request body: `Content-Type` must be `application/json` (or a
/// `+json` type), else **415**; the body must parse into `T`, else **400**
/// naming the field. Unknown fields are refused by the `T`s themselves.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if !ct.as_deref().is_some_and(is_json_media_type) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "send the body as `Content-Type: application/json` (got {})",
                ct.as_deref().map(|c| format!("`{c}`")).unwrap_or_else(|| "none".into())
            )));
        }
        let body = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(e.body_text())
            } else {
                ApiError::field("body", e.body_text())
            }
        })?;
        json_body(&body).map(JsonBody)
    }
}

/// `application/json`, `application/problem+json`, … with any parameters.
pub fn is_json_media_type(ct: &str) -> bool {
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Parses a JSON body, naming the field a problem is at.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError::field("body", "a JSON body is required"));
    }
    serde_json::from_slice(body).map_err(|e| ApiError::field("body", e.to_string()))
}

/// Domain field errors → API field errors.
pub fn field_errors(errs: Vec<switchboard_domain::FieldError>) -> ApiError {
    ApiError::Validation(errs.into_iter().map(|e| FieldError { field: e.field, reason: e.reason }).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_types_are_recognised_with_parameters() {
        assert!(is_json_media_type("application/json"));
        assert!(is_json_media_type("Application/JSON; charset=utf-8"));
        assert!(is_json_media_type("application/merge-patch+json"));
        assert!(!is_json_media_type("text/plain"));
        assert!(!is_json_media_type("application/jsonp"));
        assert!(!is_json_media_type(""));
    }
}
