//! ElevenLabs post-call webhooks (external-apis.md B.5, B.6):
//! `post_call_transcription`, `call_initiation_failure`, `post_call_audio`.
//! ElevenLabs sends each once and never retries, so a 2xx must mean stored.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;
use switchboard_domain::{CallStatus, CallUpdate, Source, time::from_millis};

use super::{
    ingest,
    verify::{ElevenLabsSigError, verify_elevenlabs},
};
use crate::AppState;
use crate::error::ApiError;
use crate::metrics::WEBHOOK_SIGNATURE_FAILURES;

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
    let event_ts = payload.get("event_timestamp").and_then(Value::as_i64);
    let data = payload
        .get("data")
        .filter(|d| d.is_object())
        .ok_or_else(|| ApiError::webhook_field("data", "required object"))?;
    let conversation_id = str_at(data, &["conversation_id"])
        .map(str::to_owned)
        .ok_or_else(|| ApiError::webhook_field("data.conversation_id", "required"))?;
    tracing::Span::current().record("conversation_id", conversation_id.as_str());
    let mut update = CallUpdate {
        source: Some(Source::ElevenLabs),
        observed_at: event_ts.map(|t| from_millis(t * 1000)),
        conversation_id: Some(conversation_id.clone()),
        call_sid: call_sid_of(data),
        agent_id: str_at(data, &["agent_id"]).map(str::to_owned),
        ..Default::default()
    };
    match kind.as_str() {
        "post_call_transcription" => {
            update.observed_at = int_at(data, &["metadata", "start_time_unix_secs"])
                .map(|t| from_millis(t * 1000))
                .or(update.observed_at);
            update.conversation_status = str_at(data, &["status"]).map(str::to_owned);
            update.call_successful = str_at(data, &["analysis", "call_successful"]).map(str::to_owned);
            update.transcript_summary = str_at(data, &["analysis", "transcript_summary"]).map(str::to_owned);
            update.termination_reason = str_at(data, &["metadata", "termination_reason"]).map(str::to_owned);
            update.conversation_duration_secs = int_at(data, &["metadata", "call_duration_secs"]);
            update.cost_credits = int_at(data, &["metadata", "cost"]);
            // A finished conversation implies an answered, ended call; Twilio may still correct it.
            if update.conversation_status.as_deref() == Some("done") {
                update.status = Some(CallStatus::Completed);
            }
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
            return Err(ApiError::webhook_field("type", format!("`{other}` is not a known post-call webhook type")));
        }
    }
    let key = format!("elevenlabs:{kind}:{conversation_id}");
    ingest(&state, update, format!("elevenlabs.{kind}"), key, None, payload).await?;
    Ok(StatusCode::OK)
}
