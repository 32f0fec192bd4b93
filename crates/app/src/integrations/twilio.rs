//! Twilio REST client (external-apis.md A.1–A.5, A.8): create and fetch
//! calls, list and fetch recordings, recording media URLs. HTTP Basic auth
//! with the Account SID and auth token, or an API key SID and secret.

use axum::body::Bytes;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use super::retry::{Idempotency, RetryPolicy, send};
use super::{ClientOptions, UpstreamError, http_client};
use crate::secret::Secret;

const P: &str = "twilio";

/// Basic-auth credentials.
#[derive(Debug, Clone)]
pub enum TwilioAuth {
    /// Account SID + auth token.
    AuthToken(Secret),
    /// API key SID (`SK…`) + secret.
    ApiKey {
        /// Key SID.
        sid: String,
        /// Key secret.
        secret: Secret,
    },
}

/// A call placement (`POST …/Calls.json`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateCall {
    /// Destination (E.164).
    pub to: String,
    /// Caller ID.
    pub from: String,
    /// TwiML URL fetched on answer.
    pub url: Option<String>,
    /// Inline TwiML (e.g. ElevenLabs `register-call` output).
    pub twiml: Option<String>,
    /// Status callback URL.
    pub status_callback: Option<String>,
    /// Subscribed events (`initiated`, `ringing`, `answered`, `completed`).
    pub status_callback_events: Vec<String>,
    /// Record the call.
    pub record: bool,
    /// Recording status callback URL.
    pub recording_status_callback: Option<String>,
    /// `Enable` or `DetectMessageEnd`.
    pub machine_detection: Option<String>,
    /// Asynchronous AMD.
    pub async_amd: bool,
    /// AMD callback URL.
    pub async_amd_status_callback: Option<String>,
    /// Ring timeout (s).
    pub timeout_secs: Option<u32>,
    /// Maximum call length (s).
    pub time_limit_secs: Option<u32>,
}

impl CreateCall {
    /// The form body, with repeated keys for arrays.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut f = vec![("To", self.to.clone()), ("From", self.from.clone())];
        if let Some(u) = &self.url {
            f.push(("Url", u.clone()));
        }
        if let Some(t) = &self.twiml {
            f.push(("Twiml", t.clone()));
        }
        if let Some(cb) = &self.status_callback {
            f.push(("StatusCallback", cb.clone()));
            f.push(("StatusCallbackMethod", "POST".into()));
        }
        for e in &self.status_callback_events {
            f.push(("StatusCallbackEvent", e.clone()));
        }
        if self.record {
            f.push(("Record", "true".into()));
        }
        if let Some(cb) = &self.recording_status_callback {
            f.push(("RecordingStatusCallback", cb.clone()));
            f.push(("RecordingStatusCallbackEvent", "completed absent".into()));
        }
        if let Some(m) = &self.machine_detection {
            f.push(("MachineDetection", m.clone()));
        }
        if self.async_amd {
            f.push(("AsyncAmd", "true".into()));
        }
        if let Some(cb) = &self.async_amd_status_callback {
            f.push(("AsyncAmdStatusCallback", cb.clone()));
        }
        if let Some(t) = self.timeout_secs {
            f.push(("Timeout", t.to_string()));
        }
        if let Some(t) = self.time_limit_secs {
            f.push(("TimeLimit", t.to_string()));
        }
        f
    }
}

/// The Call resource (numbers arrive as strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwilioCall {
    /// `CA…`.
    pub sid: String,
    /// `AC…`.
    pub account_sid: String,
    /// Destination.
    pub to: String,
    /// Caller.
    pub from: String,
    /// queued, ringing, in-progress, completed, busy, failed, no-answer, canceled.
    pub status: String,
    /// inbound, outbound-api, …
    pub direction: Option<String>,
    /// AMD result.
    pub answered_by: Option<String>,
    /// Seconds, as a string.
    pub duration: Option<String>,
    /// RFC 2822.
    pub start_time: Option<String>,
    /// RFC 2822.
    pub end_time: Option<String>,
    /// Decimal string.
    pub price: Option<String>,
    /// Currency.
    pub price_unit: Option<String>,
    /// Milliseconds queued (CPS pacing), as a string.
    pub queue_time: Option<String>,
}

impl TwilioCall {
    /// What the Call resource says about the call, as a merge update from
    /// Twilio (reconciliation applies it like a status callback). Values it
    /// cannot read are left out rather than guessed.
    pub fn to_update(&self) -> switchboard_domain::CallUpdate {
        use chrono::{DateTime, Utc};
        use switchboard_domain::{CallUpdate, Source, time::to_ms};
        let time = |t: &Option<String>| {
            t.as_deref().and_then(|t| DateTime::parse_from_rfc2822(t).ok()).map(|t| to_ms(t.with_timezone(&Utc)))
        };
        let status = self.status.parse::<switchboard_domain::CallStatus>().ok();
        let ended = time(&self.end_time);
        CallUpdate {
            source: Some(Source::Twilio),
            call_sid: Some(self.sid.clone()),
            status,
            observed_at: ended.or_else(|| time(&self.start_time)),
            account_sid: Some(self.account_sid.clone()).filter(|a| !a.is_empty()),
            direction: self.direction.as_deref().and_then(|d| d.parse().ok()),
            from: Some(self.from.clone()).filter(|f| !f.is_empty()),
            to: Some(self.to.clone()).filter(|t| !t.is_empty()),
            answered_by: self.answered_by.as_deref().and_then(|a| a.parse().ok()),
            duration_secs: self
                .duration
                .as_deref()
                .and_then(|d| d.parse::<i64>().ok())
                .filter(|d| (0..=7 * 86_400).contains(d)),
            price: self.price.clone(),
            price_unit: self.price_unit.clone(),
            ..Default::default()
        }
    }
}

/// A Recording resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TwilioRecording {
    /// `RE…`.
    pub sid: String,
    /// Parent call.
    pub call_sid: String,
    /// Seconds, as a string.
    pub duration: Option<String>,
    /// in-progress, paused, stopped, processing, completed, absent.
    pub status: String,
    /// 1 or 2.
    pub channels: Option<u32>,
    /// OutboundAPI, …
    pub source: Option<String>,
    /// RFC 2822.
    pub date_created: Option<String>,
    /// Error code for `absent`.
    pub error_code: Option<i64>,
}

#[derive(Deserialize)]
struct RecordingList {
    recordings: Vec<TwilioRecording>,
    next_page_uri: Option<String>,
}

#[derive(Deserialize)]
struct TwilioErrorBody {
    code: Option<i64>,
    message: Option<String>,
}

/// The Twilio client.
#[derive(Clone)]
pub struct TwilioClient {
    http: reqwest::Client,
    base: String,
    account_sid: String,
    auth: TwilioAuth,
    retry: RetryPolicy,
}

impl std::fmt::Debug for TwilioClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioClient").field("base", &self.base).field("account_sid", &self.account_sid).finish()
    }
}

async fn classify(status: StatusCode, resp: reqwest::Response) -> UpstreamError {
    let text = resp.text().await.unwrap_or_default();
    let body: Option<TwilioErrorBody> = serde_json::from_str(&text).ok();
    let message = body.as_ref().and_then(|b| b.message.clone()).unwrap_or_else(|| text.chars().take(200).collect());
    let code = body.and_then(|b| b.code);
    match status.as_u16() {
        401 | 403 => UpstreamError::Auth { provider: P, status: status.as_u16(), message },
        404 => UpstreamError::NotFound { provider: P, message },
        429 => UpstreamError::RateLimited { provider: P, retry_after: None },
        s if s >= 500 => UpstreamError::Upstream5xx { provider: P, status: s, message },
        s => UpstreamError::Rejected { provider: P, status: s, code, message },
    }
}

async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, UpstreamError> {
    let text = resp.text().await.map_err(|e| UpstreamError::BadResponse { provider: P, message: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| UpstreamError::BadResponse {
        provider: P,
        message: format!("{e}: {}", text.chars().take(200).collect::<String>()),
    })
}

impl TwilioClient {
    /// A client for `base` (e.g. `https://api.twilio.com` or the simulator).
    pub fn new(
        base: impl Into<String>,
        account_sid: impl Into<String>,
        auth: TwilioAuth,
        opts: &ClientOptions,
    ) -> Self {
        TwilioClient {
            http: http_client(opts.timeout),
            base: base.into().trim_end_matches('/').to_owned(),
            account_sid: account_sid.into(),
            auth,
            retry: opts.retry.clone(),
        }
    }

    fn url(&self, rest: &str) -> String {
        format!("{}/2010-04-01/Accounts/{}/{rest}", self.base, self.account_sid)
    }

    fn authed(&self, rb: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.auth {
            TwilioAuth::AuthToken(t) => rb.basic_auth(&self.account_sid, Some(t.expose())),
            TwilioAuth::ApiKey { sid, secret } => rb.basic_auth(sid, Some(secret.expose())),
        }
    }

    /// Places a call. Retried only when Twilio certainly did not process it
    /// (429, or the connection never carried the request), so a retry never dials twice.
    #[tracing::instrument(skip_all, fields(to = %req.to))]
    pub async fn create_call(&self, req: &CreateCall) -> Result<TwilioCall, UpstreamError> {
        if req.url.is_none() && req.twiml.is_none() {
            return Err(UpstreamError::Rejected {
                provider: P,
                status: 400,
                code: None,
                message: "one of Url or Twiml is required".into(),
            });
        }
        let url = self.url("Calls.json");
        let form = req.form();
        let resp = send(
            P,
            &self.retry,
            Idempotency::NotIdempotent,
            || self.authed(self.http.post(&url)).form(&form),
            classify,
        )
        .await?;
        json(resp).await
    }

    /// Fetches a call.
    pub async fn fetch_call(&self, call_sid: &str) -> Result<TwilioCall, UpstreamError> {
        let url = self.url(&format!("Calls/{call_sid}.json"));
        let resp = send(P, &self.retry, Idempotency::Idempotent, || self.authed(self.http.get(&url)), classify).await?;
        json(resp).await
    }

    /// All recordings of a call (follows `next_page_uri`).
    pub async fn list_recordings(&self, call_sid: &str) -> Result<Vec<TwilioRecording>, UpstreamError> {
        let mut url = self.url(&format!("Calls/{call_sid}/Recordings.json"));
        let mut out = Vec::new();
        loop {
            let resp =
                send(P, &self.retry, Idempotency::Idempotent, || self.authed(self.http.get(&url)), classify).await?;
            let page: RecordingList = json(resp).await?;
            out.extend(page.recordings);
            match page.next_page_uri {
                Some(next) if !next.is_empty() => url = format!("{}{next}", self.base),
                _ => return Ok(out),
            }
        }
    }

    /// The account's recordings created on or after `since` (UTC day; follows
    /// `next_page_uri`): what the reconciler compares with the stored ones.
    pub async fn list_account_recordings(
        &self,
        since: chrono::NaiveDate,
    ) -> Result<Vec<TwilioRecording>, UpstreamError> {
        let mut url =
            format!("{}?DateCreated%3E={}&PageSize=1000", self.url("Recordings.json"), since.format("%Y-%m-%d"));
        let mut out = Vec::new();
        loop {
            let resp =
                send(P, &self.retry, Idempotency::Idempotent, || self.authed(self.http.get(&url)), classify).await?;
            let page: RecordingList = json(resp).await?;
            out.extend(page.recordings);
            match page.next_page_uri {
                Some(next) if !next.is_empty() => url = format!("{}{next}", self.base),
                _ => return Ok(out),
            }
        }
    }

    /// One recording's metadata.
    pub async fn fetch_recording(&self, recording_sid: &str) -> Result<TwilioRecording, UpstreamError> {
        let url = self.url(&format!("Recordings/{recording_sid}.json"));
        let resp = send(P, &self.retry, Idempotency::Idempotent, || self.authed(self.http.get(&url)), classify).await?;
        json(resp).await
    }

    /// The media URL of a recording (`mp3` or `wav`); fetch it with the same Basic auth.
    pub fn recording_media_url(&self, recording_sid: &str, format: &str) -> String {
        self.url(&format!("Recordings/{recording_sid}.{format}"))
    }

    /// Opens recording media for streaming, passing a `Range` header through
    /// (the response may be 206); the caller streams the body.
    pub async fn open_recording_media(
        &self,
        recording_sid: &str,
        format: &str,
        range: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.recording_media_url(recording_sid, format);
        send(
            P,
            &self.retry,
            Idempotency::Idempotent,
            || {
                let rb = self.authed(self.http.get(&url));
                match range {
                    Some(r) => rb.header(reqwest::header::RANGE, r),
                    None => rb,
                }
            },
            classify,
        )
        .await
    }

    /// Deletes a recording at Twilio (retention); a missing one counts as deleted.
    pub async fn delete_recording(&self, recording_sid: &str) -> Result<(), UpstreamError> {
        let url = self.url(&format!("Recordings/{recording_sid}.json"));
        match send(P, &self.retry, Idempotency::Idempotent, || self.authed(self.http.delete(&url)), classify).await {
            Ok(_) | Err(UpstreamError::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Downloads recording media.
    pub async fn fetch_recording_media(&self, recording_sid: &str, format: &str) -> Result<Bytes, UpstreamError> {
        let url = self.recording_media_url(recording_sid, format);
        let resp = send(P, &self.retry, Idempotency::Idempotent, || self.authed(self.http.get(&url)), classify).await?;
        resp.bytes().await.map_err(|e| UpstreamError::BadResponse { provider: P, message: e.to_string() })
    }
}
