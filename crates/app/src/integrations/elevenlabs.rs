//! ElevenLabs Agents client (external-apis.md B.1–B.4): outbound call via the
//! native Twilio integration, `register-call` (TwiML), conversations (get,
//! list with cursor pagination, audio). Auth header `xi-api-key`.

use std::collections::HashMap;

use axum::body::Bytes;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::retry::{Idempotency, RetryPolicy, send};
use super::{ClientOptions, UpstreamError, http_client};
use crate::secret::Secret;

const P: &str = "elevenlabs";

/// The conversation facts of a conversation document — the body of `GET
/// /v1/convai/conversations/{id}` or the `data` of a
/// `post_call_transcription` webhook, which share one shape — written into
/// `update`. A `done` conversation implies an answered, ended call and a
/// `failed` one a failed call; Twilio's own terminal status may correct either.
pub fn conversation_facts(data: &Value, update: &mut switchboard_domain::CallUpdate) {
    let str_at = |path: &[&str]| {
        path.iter()
            .try_fold(data, |acc, k| acc.get(k))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let int_at = |path: &[&str]| path.iter().try_fold(data, |acc, k| acc.get(k)).and_then(Value::as_i64);
    update.conversation_status = str_at(&["status"]);
    update.call_successful = str_at(&["analysis", "call_successful"]);
    update.transcript_summary = str_at(&["analysis", "transcript_summary"]);
    update.termination_reason = str_at(&["metadata", "termination_reason"]);
    update.conversation_duration_secs = int_at(&["metadata", "call_duration_secs"]).filter(|d| *d >= 0);
    update.cost_credits = int_at(&["metadata", "cost"]).filter(|c| *c >= 0);
    match update.conversation_status.as_deref() {
        Some("done") => update.status = Some(switchboard_domain::CallStatus::Completed),
        Some("failed") => update.status = Some(switchboard_domain::CallStatus::Failed),
        _ => {}
    }
}

/// `conversation_initiation_client_data`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClientData {
    /// Our correlation id, echoed back in webhooks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Template variables (keys must not start with `system__`).
    #[serde(skip_serializing_if = "HashMap::is_empty", default)]
    pub dynamic_variables: HashMap<String, Value>,
    /// Agent overrides (`{"agent":{"first_message":…}}`), honoured only if enabled on the agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_config_override: Option<Value>,
}

/// `POST /v1/convai/twilio/outbound-call` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboundCall {
    /// Agent.
    pub agent_id: String,
    /// Imported Twilio number id.
    pub agent_phone_number_id: String,
    /// Destination (E.164).
    pub to_number: String,
    /// Client data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_initiation_client_data: Option<ClientData>,
}

/// Its response. Note the camelCase `callSid` on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundCallResponse {
    /// Whether the call was started.
    pub success: bool,
    /// Message.
    #[serde(default)]
    pub message: String,
    /// Conversation id.
    pub conversation_id: Option<String>,
    /// Twilio Call SID.
    #[serde(rename = "callSid")]
    pub call_sid: Option<String>,
}

/// `POST /v1/convai/twilio/register-call` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegisterCall {
    /// Agent.
    pub agent_id: String,
    /// Caller.
    pub from_number: String,
    /// Callee.
    pub to_number: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Client data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_initiation_client_data: Option<ClientData>,
}

/// One conversation in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationSummary {
    /// Agent.
    pub agent_id: String,
    /// Id.
    pub conversation_id: String,
    /// Start (unix s).
    pub start_time_unix_secs: Option<i64>,
    /// Duration (s).
    pub call_duration_secs: Option<i64>,
    /// initiated, in-progress, processing, done, failed.
    pub status: String,
    /// success, failure, unknown.
    pub call_successful: Option<String>,
    /// inbound / outbound.
    pub direction: Option<String>,
}

/// A page of conversations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversationPage {
    /// Conversations.
    pub conversations: Vec<ConversationSummary>,
    /// Cursor for the next page.
    pub next_cursor: Option<String>,
    /// More pages exist.
    #[serde(default)]
    pub has_more: bool,
}

/// Filters of the conversation list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConversationQuery {
    /// Cursor from the previous page.
    pub cursor: Option<String>,
    /// 1..=100.
    pub page_size: Option<u32>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Started after (unix s).
    pub call_start_after_unix: Option<i64>,
    /// Started before (unix s).
    pub call_start_before_unix: Option<i64>,
}

/// The ElevenLabs client.
#[derive(Clone)]
pub struct ElevenLabsClient {
    http: reqwest::Client,
    base: String,
    api_key: Secret,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ElevenLabsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ElevenLabsClient").field("base", &self.base).finish()
    }
}

async fn classify(status: StatusCode, resp: reqwest::Response) -> UpstreamError {
    let text = resp.text().await.unwrap_or_default();
    let body: Option<Value> = serde_json::from_str(&text).ok();
    let detail = body.as_ref().and_then(|b| b.get("detail"));
    // `{"detail":{"status","message"}}` or `{"detail":[{"loc","msg","type"}]}`.
    let message = match detail {
        Some(Value::Object(d)) => format!(
            "{}: {}",
            d.get("status").and_then(Value::as_str).unwrap_or(""),
            d.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                let loc = i.get("loc").and_then(Value::as_array).map(|l| {
                    l.iter()
                        .map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string()))
                        .collect::<Vec<_>>()
                        .join(".")
                });
                format!("{}: {}", loc.unwrap_or_default(), i.get("msg").and_then(Value::as_str).unwrap_or(""))
            })
            .collect::<Vec<_>>()
            .join("; "),
        _ => text.chars().take(200).collect(),
    };
    UpstreamError::from_status(P, status.as_u16(), message)
}

async fn json<T: serde::de::DeserializeOwned>(resp: reqwest::Response) -> Result<T, UpstreamError> {
    let text = resp.text().await.map_err(|e| UpstreamError::BadResponse { provider: P, message: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| UpstreamError::BadResponse {
        provider: P,
        message: format!("{e}: {}", text.chars().take(200).collect::<String>()),
    })
}

impl ElevenLabsClient {
    /// A client for `base` (e.g. `https://api.elevenlabs.io` or the simulator).
    pub fn new(base: impl Into<String>, api_key: Secret, opts: &ClientOptions) -> Self {
        ElevenLabsClient {
            http: http_client(opts.timeout),
            base: base.into().trim_end_matches('/').to_owned(),
            api_key,
            retry: opts.retry.clone(),
        }
    }

    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base)).header("xi-api-key", self.api_key.expose())
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base)).header("xi-api-key", self.api_key.expose())
    }

    /// Starts an outbound call through ElevenLabs' Twilio integration. Not
    /// repeated after a possibly-processed failure (it would dial twice).
    #[tracing::instrument(skip_all, fields(agent_id = %req.agent_id))]
    pub async fn outbound_call(&self, req: &OutboundCall) -> Result<OutboundCallResponse, UpstreamError> {
        let resp = send(
            P,
            &self.retry,
            Idempotency::NotIdempotent,
            || self.post("/v1/convai/twilio/outbound-call").json(req),
            classify,
        )
        .await?;
        let out: OutboundCallResponse = json(resp).await?;
        if !out.success {
            return Err(UpstreamError::Rejected { provider: P, status: 200, code: None, message: out.message });
        }
        Ok(out)
    }

    /// TwiML that connects a call we created on Twilio to the agent.
    pub async fn register_call(&self, req: &RegisterCall) -> Result<String, UpstreamError> {
        let resp = send(
            P,
            &self.retry,
            Idempotency::NotIdempotent,
            || self.post("/v1/convai/twilio/register-call").json(req),
            classify,
        )
        .await?;
        let twiml =
            resp.text().await.map_err(|e| UpstreamError::BadResponse { provider: P, message: e.to_string() })?;
        if !twiml.trim_start().starts_with('<') {
            return Err(UpstreamError::BadResponse {
                provider: P,
                message: "register-call did not return TwiML".into(),
            });
        }
        Ok(twiml)
    }

    /// A conversation, in the post-call webhook's `data` shape.
    pub async fn get_conversation(&self, conversation_id: &str) -> Result<Value, UpstreamError> {
        let path = format!("/v1/convai/conversations/{conversation_id}");
        let resp = send(P, &self.retry, Idempotency::Idempotent, || self.get(&path), classify).await?;
        json(resp).await
    }

    /// One page of conversations.
    pub async fn list_conversations(&self, q: &ConversationQuery) -> Result<ConversationPage, UpstreamError> {
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(c) = &q.cursor {
            params.push(("cursor", c.clone()));
        }
        if let Some(n) = q.page_size {
            params.push(("page_size", n.to_string()));
        }
        if let Some(a) = &q.agent_id {
            params.push(("agent_id", a.clone()));
        }
        if let Some(t) = q.call_start_after_unix {
            params.push(("call_start_after_unix", t.to_string()));
        }
        if let Some(t) = q.call_start_before_unix {
            params.push(("call_start_before_unix", t.to_string()));
        }
        let resp = send(
            P,
            &self.retry,
            Idempotency::Idempotent,
            || self.get("/v1/convai/conversations").query(&params),
            classify,
        )
        .await?;
        json(resp).await
    }

    /// Opens a conversation's MP3 audio for streaming, passing `Range` through.
    pub async fn open_conversation_audio(
        &self,
        conversation_id: &str,
        range: Option<&str>,
    ) -> Result<reqwest::Response, UpstreamError> {
        let path = format!("/v1/convai/conversations/{conversation_id}/audio");
        send(
            P,
            &self.retry,
            Idempotency::Idempotent,
            || {
                let rb = self.get(&path);
                match range {
                    Some(r) => rb.header(reqwest::header::RANGE, r),
                    None => rb,
                }
            },
            classify,
        )
        .await
    }

    /// The conversation's MP3 audio.
    pub async fn get_conversation_audio(&self, conversation_id: &str) -> Result<Bytes, UpstreamError> {
        let path = format!("/v1/convai/conversations/{conversation_id}/audio");
        let resp = send(P, &self.retry, Idempotency::Idempotent, || self.get(&path), classify).await?;
        resp.bytes().await.map_err(|e| UpstreamError::BadResponse { provider: P, message: e.to_string() })
    }
}
