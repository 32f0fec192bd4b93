//! ElevenLabs post-call webhooks (external-apis.md B.5, B.6):
//! `post_call_transcription`, `call_initiation_failure`, `post_call_audio`.
//! ElevenLabs sends each once and never retries, so a 2xx must mean stored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use switchboard_domain::{CallStatus, CallUpdate, Source};

use super::{
    ingest,
    verify::{ElevenLabsSigError, verify_elevenlabs},
};
use crate::AppState;
use crate::error::ApiError;
use crate::metrics::WEBHOOK_SIGNATURE_FAILURES;

/// The types this release understands; others are kept raw.
const KNOWN_TYPES: &[&str] = &["post_call_transcription", "call_initiation_failure", "post_call_audio"];

fn str_at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(v, |acc, k| acc.get(k)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn int_at(v: &Value, path: &[&str]) -> Option<i64> {
    path.iter().try_fold(v, |acc, k| acc.get(k)).and_then(Value::as_i64)
}

/// The Twilio Call SID, in the order of precedence the reference gives.
fn call_sid_of(data: &Value) -> Option<String> {
    let from_phone = (str_at(data, &["metadata", "phone_call", "type"]) == Some("twilio"))
        .then(|| str_at(data, &["metadata", "phone_call", "call_sid"]))
        .flatten();
    from_phone
        .or_else(|| str_at(data, &["conversation_initiation_client_data", "dynamic_variables", "system__call_sid"]))
        .or_else(|| str_at(data, &["metadata", "body", "CallSid"]))
        .or_else(|| str_at(data, &["metadata", "body", "call_sid"]))
        .map(str::to_owned)
}

/// An id we store as a key: 1..=128 characters of letters, digits, `_` and `-`.
fn checked_id(v: &str, field: &str) -> Result<String, ApiError> {
    if v.is_empty() || v.len() > 128 || !v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(ApiError::webhook_field(field, "must be 1 to 128 letters, digits, `_` or `-`"));
    }
    Ok(v.to_owned())
}

/// Unix seconds → a timestamp within [`super::plausible_time`], or a field error.
fn unix_secs(v: i64, field: &str) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
    let t = v
        .checked_mul(1000)
        .and_then(chrono::DateTime::from_timestamp_millis)
        .ok_or_else(|| ApiError::webhook_field(field, format!("{v} is not a Unix time in seconds")))?;
    super::plausible_time(t).map_err(|reason| ApiError::webhook_field(field, reason))
}

/// `POST /webhooks/elevenlabs`.
#[tracing::instrument(skip_all, fields(conversation_id))]
pub async fn post_call(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<StatusCode, ApiError> {
    let Some(secret) = state.settings.elevenlabs.webhook_secret.as_ref() else {
        tracing::error!("ElevenLabs webhook refused: ELEVENLABS_WEBHOOK_SECRET is not configured");
        metrics::counter!(WEBHOOK_SIGNATURE_FAILURES, "provider" => "elevenlabs").increment(1);
        return Err(ApiError::InvalidSignature("ElevenLabs-Signature (no ELEVENLABS_WEBHOOK_SECRET configured)"));
    };
    let header = headers.get("elevenlabs-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let now = chrono::Utc::now().timestamp();
    if let Err(e) =
        verify_elevenlabs(secret.expose(), header, &body, now, state.settings.elevenlabs_signature_tolerance_secs)
    {
        metrics::counter!(WEBHOOK_SIGNATURE_FAILURES, "provider" => "elevenlabs").increment(1);
        return Err(ApiError::InvalidSignature(match e {
            ElevenLabsSigError::Malformed => "ElevenLabs-Signature (missing or not `t=…,v0=…`)",
            ElevenLabsSigError::Expired => "ElevenLabs-Signature timestamp (outside the accepted window)",
            ElevenLabsSigError::Mismatch => "ElevenLabs-Signature",
        }));
    }
    let mut payload: Value =
        serde_json::from_slice(&body).map_err(|e| ApiError::webhook_field("body", format!("not valid JSON: {e}")))?;
    let kind =
        str_at(&payload, &["type"]).map(str::to_owned).ok_or_else(|| ApiError::webhook_field("type", "required"))?;
    if kind.len() > 64 || !kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(ApiError::webhook_field("type", "must be at most 64 lower-case letters, digits or `_`"));
    }
    let event_ts = match payload.get("event_timestamp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(unix_secs(
            v.as_i64().ok_or_else(|| ApiError::webhook_field("event_timestamp", "must be an integer"))?,
            "event_timestamp",
        )?),
    };
    let data = payload
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| ApiError::webhook_field("data", "required object"))?;
    let Some(conversation_id) = str_at(data, &["conversation_id"]) else {
        if !KNOWN_TYPES.contains(&kind.as_str()) {
            // Nothing to attach it to; a 4xx would count towards ElevenLabs disabling the webhook.
            tracing::warn!(r#type = %kind, "unknown ElevenLabs webhook type without a conversation_id acknowledged, not stored");
            metrics::counter!(crate::metrics::WEBHOOKS, "provider" => "elevenlabs", "outcome" => "unknown_type_dropped").increment(1);
            return Ok(StatusCode::OK);
        }
        return Err(ApiError::webhook_field("data.conversation_id", "required"));
    };
    let conversation_id = checked_id(conversation_id, "data.conversation_id")?;
    tracing::Span::current().record("conversation_id", conversation_id.as_str());
    let call_sid = match call_sid_of(data) {
        Some(sid) => Some(String::from(
            switchboard_domain::call::CallSid::parse(&sid)
                .map_err(|reason| ApiError::webhook_field("data.metadata.phone_call.call_sid", reason))?,
        )),
        None => None,
    };
    let agent_id = match str_at(data, &["agent_id"]) {
        Some(a) => Some(checked_id(a, "data.agent_id")?),
        None => None,
    };
    let mut update = CallUpdate {
        source: Some(Source::ElevenLabs),
        observed_at: event_ts,
        conversation_id: Some(conversation_id.clone()),
        call_sid,
        agent_id,
        ..Default::default()
    };
    match kind.as_str() {
        "post_call_transcription" => {
            if let Some(t) = int_at(data, &["metadata", "start_time_unix_secs"]) {
                update.observed_at = Some(unix_secs(t, "data.metadata.start_time_unix_secs")?);
            }
            crate::integrations::elevenlabs::conversation_facts(data, &mut update);
        }
        "call_initiation_failure" => {
            update.status = Some(match str_at(data, &["failure_reason"]) {
                Some("busy") => CallStatus::Busy,
                Some("no-answer") => CallStatus::NoAnswer,
                _ => CallStatus::Failed,
            });
        }
        "post_call_audio" => {
            // Keep the event, not the megabytes: the audio itself is fetched on demand.
            if let Some(audio) = payload.get_mut("data").and_then(|d| d.get_mut("full_audio")) {
                let len = audio.as_str().map(str::len).unwrap_or(0);
                *audio = Value::String(format!("<{len} base64 characters omitted>"));
            }
        }
        other => {
            // A type added after this release: acknowledged (a 4xx counts towards ElevenLabs
            // disabling the webhook) and kept as a raw event of its conversation.
            tracing::warn!(r#type = %other, "unknown ElevenLabs webhook type stored as a raw event");
        }
    }
    // The transcript and audio record first (idempotent), the event last (it marks a replay).
    match kind.as_str() {
        "post_call_transcription" => {
            if let Some(data) = payload.get("data") {
                crate::conversations::record(&*state.store, data, &state.settings.analysis).await?;
            }
        }
        "post_call_audio" => {
            crate::conversations::record_audio(&*state.store, &conversation_id, update.call_sid.as_deref()).await?;
        }
        _ => {}
    }
    let key = format!("elevenlabs:{kind}:{conversation_id}");
    ingest(&state, update, format!("elevenlabs.{kind}"), key, None, payload).await?;
    Ok(StatusCode::OK)
}
