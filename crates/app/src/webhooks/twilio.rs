//! Twilio call-status and async-AMD callbacks (external-apis.md A.4, A.7).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use chrono::{DateTime, Utc};
use switchboard_domain::call::CallSid;
use switchboard_domain::{AnsweredBy, CallStatus, CallUpdate, Direction, Source};

use super::{ingest, verify::verify_twilio};
use crate::AppState;
use crate::error::{ApiError, FieldError};
use crate::metrics::WEBHOOK_SIGNATURE_FAILURES;

/// Form parameters of a Twilio request.
struct Form(Vec<(String, String)>);

impl Form {
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str()).filter(|v| !v.is_empty())
    }

    fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.0 {
            m.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        serde_json::Value::Object(m)
    }
}

/// Verifies the signature over `PUBLIC_BASE_URL` + path + query and the form body.
fn verified_form(state: &AppState, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Result<Form, ApiError> {
    let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    let Some(token) = state.settings.twilio.auth_token.as_ref() else {
        tracing::error!("Twilio webhook refused: TWILIO_AUTH_TOKEN is not configured, so signatures cannot be checked");
        metrics::counter!(WEBHOOK_SIGNATURE_FAILURES, "provider" => "twilio").increment(1);
        return Err(ApiError::InvalidSignature("X-Twilio-Signature (no TWILIO_AUTH_TOKEN configured)"));
    };
    let signature = headers.get("x-twilio-signature").and_then(|v| v.to_str().ok()).unwrap_or("");
    let path_and_query = uri.path_and_query().map(|p| p.as_str()).unwrap_or(uri.path());
    let url = format!("{}{}", state.settings.public_base(), path_and_query);
    if signature.is_empty() || !verify_twilio(token.expose(), &url, &params, signature) {
        metrics::counter!(WEBHOOK_SIGNATURE_FAILURES, "provider" => "twilio").increment(1);
        tracing::warn!(url = %url, "Twilio signature verification failed");
        return Err(ApiError::InvalidSignature("X-Twilio-Signature"));
    }
    Ok(Form(params))
}

use super::is_sid;

/// Collects field errors while parsing, so one response names every bad field.
#[derive(Default)]
struct Fields(Vec<FieldError>);

impl Fields {
    fn bad(&mut self, field: &str, reason: impl Into<String>) {
        self.0.push(FieldError { field: field.into(), reason: reason.into() });
    }

    fn required<'a>(&mut self, form: &'a Form, field: &str) -> Option<&'a str> {
        let v = form.get(field);
        if v.is_none() {
            self.bad(field, "required");
        }
        v
    }

    fn parse<T: std::str::FromStr<Err = String>>(&mut self, form: &Form, field: &str) -> Option<T> {
        let v = form.get(field)?;
        v.parse().map_err(|e| self.bad(field, e)).ok()
    }

    fn int(&mut self, form: &Form, field: &str, max: i64) -> Option<i64> {
        let v = form.get(field)?;
        match v.parse::<i64>() {
            Ok(n) if (0..=max).contains(&n) => Some(n),
            _ => {
                self.bad(field, format!("`{v}` is not an integer from 0 to {max}"));
                None
            }
        }
    }

    fn time(&mut self, form: &Form, field: &str) -> Option<DateTime<Utc>> {
        let v = form.get(field)?;
        match DateTime::parse_from_rfc2822(v) {
            Ok(t) => super::plausible_time(t.with_timezone(&Utc)).map_err(|reason| self.bad(field, reason)).ok(),
            Err(_) => {
                self.bad(field, format!("`{v}` is not an RFC 2822 timestamp"));
                None
            }
        }
    }

    /// Twilio never repeats a parameter in a callback; a repeated one is
    /// refused rather than read two ways (first value vs last).
    fn no_repeats(&mut self, form: &Form) {
        let mut seen = std::collections::HashSet::new();
        let mut reported = std::collections::HashSet::new();
        for (k, _) in &form.0 {
            if !seen.insert(k.as_str()) && reported.insert(k.as_str()) {
                self.bad(k, "appears more than once");
            }
        }
    }

    fn call_sid(&mut self, form: &Form) -> Option<String> {
        let sid = self.required(form, "CallSid")?;
        match CallSid::parse(sid) {
            Ok(sid) => Some(sid.into()),
            Err(reason) => {
                self.bad("CallSid", reason);
                None
            }
        }
    }

    fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() { Ok(()) } else { Err(ApiError::MalformedWebhook(self.0)) }
    }
}

/// The merge input of a status callback.
fn status_update(form: &Form) -> Result<(CallUpdate, Option<i64>), ApiError> {
    let mut f = Fields::default();
    f.no_repeats(form);
    let call_sid = f.call_sid(form);
    let status = match f.required(form, "CallStatus") {
        Some(_) => f.parse::<CallStatus>(form, "CallStatus"),
        None => None,
    };
    let sequence = f.int(form, "SequenceNumber", i64::from(i32::MAX));
    let observed_at = f.time(form, "Timestamp");
    let direction = f.parse::<Direction>(form, "Direction");
    let answered_by = f.parse::<AnsweredBy>(form, "AnsweredBy");
    // Twilio caps a call at 24 hours (`TimeLimit`); a week leaves room and bounds the arithmetic.
    let duration_secs = f.int(form, "CallDuration", 7 * 86_400);
    let sip_response_code = f.int(form, "SipResponseCode", 999);
    if let Some(acc) = form.get("AccountSid")
        && !is_sid(acc, "AC")
    {
        f.bad("AccountSid", "must be `AC` followed by 32 characters");
    }
    f.finish()?;
    let update = CallUpdate {
        source: Some(Source::Twilio),
        observed_at,
        call_sid,
        sequence,
        status,
        account_sid: form.get("AccountSid").map(str::to_owned),
        direction,
        from: form.get("From").map(str::to_owned),
        to: form.get("To").map(str::to_owned),
        answered_by,
        duration_secs,
        sip_response_code,
        price: form.get("Price").map(str::to_owned),
        price_unit: form.get("PriceUnit").map(str::to_owned),
        ..Default::default()
    };
    Ok((update, sequence))
}

/// Our call id when the callback URL carries it (`?call_id=call_…`, set by the
/// dialer). The query is covered by the signature, so it is trusted once
/// verified; it links the callback to the record created before placement
/// even if the placement's answer (with the CallSid) was lost.
fn our_call_id(uri: &Uri) -> Result<Option<switchboard_domain::CallId>, ApiError> {
    let Some(q) = uri.query() else { return Ok(None) };
    match form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "call_id") {
        None => Ok(None),
        Some((_, v)) => switchboard_domain::CallId::parse(&v)
            .map(Some)
            .map_err(|e| ApiError::webhook_field("call_id", e.to_string())),
    }
}

/// `POST /webhooks/twilio/status`: call status callbacks (outbound and inbound).
#[tracing::instrument(skip_all, fields(call_sid))]
pub async fn status_callback(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let form = verified_form(&state, &uri, &headers, &body)?;
    let (mut update, sequence) = status_update(&form)?;
    update.id = our_call_id(&uri)?;
    let sid = update.call_sid.clone().unwrap_or_default();
    tracing::Span::current().record("call_sid", sid.as_str());
    let status = update.status.map(|s| s.as_str()).unwrap_or("unknown");
    // One event per (call, sequence, status): a replay has the same key.
    let seq = sequence.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
    let key = format!("twilio:status:{sid}:{seq}:{status}");
    ingest(&state, update, format!("twilio.status.{status}"), key, sequence, form.to_json()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /webhooks/twilio/amd`: asynchronous answering-machine detection result.
#[tracing::instrument(skip_all, fields(call_sid))]
pub async fn amd_callback(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let form = verified_form(&state, &uri, &headers, &body)?;
    let mut f = Fields::default();
    f.no_repeats(&form);
    let call_sid = f.call_sid(&form);
    let answered_by = match f.required(&form, "AnsweredBy") {
        Some(_) => f.parse::<AnsweredBy>(&form, "AnsweredBy"),
        None => None,
    };
    f.int(&form, "MachineDetectionDuration", 3_600_000);
    f.finish()?;
    let sid = call_sid.clone().unwrap_or_default();
    tracing::Span::current().record("call_sid", sid.as_str());
    let amd = answered_by.map(|a| a.as_str()).unwrap_or("unknown");
    let update = CallUpdate {
        source: Some(Source::Twilio),
        id: our_call_id(&uri)?,
        call_sid,
        answered_by,
        account_sid: form.get("AccountSid").map(str::to_owned),
        ..Default::default()
    };
    let key = format!("twilio:amd:{sid}:{amd}");
    ingest(&state, update, "twilio.amd".into(), key, None, form.to_json()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The recording a `RecordingStatusCallback` reports (external-apis.md A.6).
fn recording_of(form: &Form) -> Result<switchboard_domain::Recording, ApiError> {
    use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
    let mut f = Fields::default();
    f.no_repeats(form);
    let call_sid = f.call_sid(form);
    let sid = f.required(form, "RecordingSid").map(str::to_owned);
    if let Some(s) = &sid
        && !is_sid(s, "RE")
    {
        f.bad("RecordingSid", "must be `RE` followed by 32 characters");
    }
    let status = match f.required(form, "RecordingStatus") {
        Some(s) => match s {
            "in-progress" => Some(RecordingStatus::InProgress),
            "completed" => Some(RecordingStatus::Completed),
            "absent" => Some(RecordingStatus::Absent),
            "failed" => Some(RecordingStatus::Failed),
            other => {
                f.bad("RecordingStatus", format!("`{other}` is not in-progress, completed, absent or failed"));
                None
            }
        },
        None => None,
    };
    let duration = f.int(form, "RecordingDuration", 7 * 86_400);
    let channels = f.int(form, "RecordingChannels", 2);
    let started_at = f.time(form, "RecordingStartTime");
    let media_url = form.get("RecordingUrl").map(str::to_owned);
    if let Some(u) = &media_url
        && !(u.starts_with("https://") || u.starts_with("http://"))
    {
        f.bad("RecordingUrl", "must be an http(s) URL");
    }
    f.finish()?;
    let now = switchboard_domain::time::now_ms();
    Ok(switchboard_domain::Recording {
        id: switchboard_domain::RecordingId::new(),
        provider: RecordingProvider::Twilio,
        provider_id: sid.unwrap_or_default(),
        call_id: None,
        call_sid,
        conversation_id: None,
        status: status.unwrap_or(RecordingStatus::InProgress),
        duration_secs: duration,
        channels,
        source: form.get("RecordingSource").map(str::to_owned),
        track: form.get("RecordingTrack").map(str::to_owned),
        started_at,
        media_url,
        format: Some("mp3".into()),
        error_code: form.get("ErrorCode").filter(|c| *c != "0").map(str::to_owned),
        deleted_at: None,
        created_at: now,
        updated_at: now,
    })
}

/// `POST /webhooks/twilio/recording`: recording status callbacks. The
/// recording is written first (idempotent merge), then the raw event through
/// `ingest` (which marks replays), so a crash between them loses nothing.
#[tracing::instrument(skip_all, fields(call_sid, recording_sid))]
pub async fn recording_callback(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let form = verified_form(&state, &uri, &headers, &body)?;
    let mut rec = recording_of(&form)?;
    let sid = rec.call_sid.clone().unwrap_or_default();
    tracing::Span::current().record("call_sid", sid.as_str());
    tracing::Span::current().record("recording_sid", rec.provider_id.as_str());
    let our_id = our_call_id(&uri)?;
    rec.call_id = match our_id.clone() {
        Some(id) => Some(id),
        None => state.store.find_call_by_sid(&sid).await?.map(|c| c.id),
    };
    state.store.upsert_recording(&rec).await?;
    let update = CallUpdate {
        source: Some(Source::Twilio),
        id: our_id,
        call_sid: rec.call_sid.clone(),
        account_sid: form.get("AccountSid").map(str::to_owned),
        ..Default::default()
    };
    let status = rec.status.as_str();
    let key = format!("twilio:recording:{}:{status}", rec.provider_id);
    ingest(&state, update, format!("twilio.recording.{status}"), key, None, form.to_json()).await?;
    if rec.call_id.is_none() {
        // The callback came before any call record: link it now that ingest made one.
        if let Some(call) = state.store.find_call_by_sid(&sid).await? {
            rec.call_id = Some(call.id);
            state.store.upsert_recording(&rec).await?;
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
