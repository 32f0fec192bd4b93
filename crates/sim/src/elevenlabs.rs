//! The simulator's ElevenLabs side (external-apis.md B and F.2): native
//! outbound calls, `register-call`, conversations (list/get/audio) and the
//! post-call webhooks (`post_call_transcription`, `post_call_audio`,
//! `call_initiation_failure`).

// The fake server's helpers return ready HTTP responses as their errors; their size does not matter here.
#![allow(clippy::result_large_err)]

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use switchboard_wire::elevenlabs as el;

use super::errors::el_error;
use super::{Conversation, Flavor, Outcome, SILENT_MP3, SimCall, Simulator, Step, Urls, Wants};

const AGENT_NAME: &str = "Simulated agent";

fn el_authorised(sim: &Simulator, headers: &HeaderMap) -> bool {
    let key = sim.inner.lock().expect("sim lock").settings.elevenlabs_api_key.clone();
    headers.get("xi-api-key").and_then(|v| v.to_str().ok()) == Some(key.as_str())
}

fn validation(detail: Vec<Value>) -> Response {
    (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "detail": detail }))).into_response()
}

fn missing(fields: &[&str]) -> Response {
    validation(
        fields.iter().map(|f| json!({ "loc": ["body", f], "msg": "Field required", "type": "missing" })).collect(),
    )
}

/// The JSON body, or FastAPI's 422 for a body that is not a JSON object.
fn json_body(body: &[u8]) -> Result<Value, Response> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(validation(vec![
            json!({ "loc": ["body"], "msg": "Input should be a valid dictionary", "type": "dict_type" }),
        ])),
        Err(e) => Err(validation(vec![
            json!({ "loc": ["body", 0], "msg": "JSON decode error", "type": "json_invalid", "ctx": { "error": e.to_string() } }),
        ])),
    }
}

/// A stable `phnum_…` id for an agent number that was not given one.
fn phone_number_id(number: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in number.bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
    }
    format!("phnum_sim{h:016x}")
}

struct NewConversation<'a> {
    agent: &'a str,
    direction: &'a str,
    phone_number_id: String,
    agent_number: &'a str,
    external_number: &'a str,
    client_data: Option<&'a Value>,
}

fn new_conversation(sim: &Simulator, n: NewConversation<'_>) -> String {
    let id = super::random_hex("conv_", 28);
    let mut g = sim.inner.lock().expect("sim lock");
    g.conversations.push(Conversation {
        conversation_id: id.clone(),
        agent_id: n.agent.into(),
        direction: n.direction.into(),
        phone_number_id: n.phone_number_id,
        agent_number: n.agent_number.into(),
        external_number: n.external_number.into(),
        stream_sid: super::random_hex("MZ", 32),
        call_sid: None,
        status: "initiated".into(),
        start_time_unix_secs: super::wall().timestamp(),
        call_duration_secs: 0,
        call_successful: "unknown".into(),
        user_id: n.client_data.and_then(|d| d.get("user_id")).and_then(Value::as_str).map(str::to_owned),
        dynamic_variables: n.client_data.and_then(|d| d.get("dynamic_variables")).cloned().unwrap_or(json!({})),
    });
    id
}

fn transcript(outcome: Outcome) -> Vec<el::Turn<'static>> {
    let turn = |role, message, time_in_call_secs| el::Turn { role, message, time_in_call_secs };
    match outcome {
        Outcome::Human => vec![
            turn("agent", "Hi, this is a quick call about your appointment. Is now a good time?", 0),
            turn("user", "Sure, go ahead.", 4),
            turn("agent", "Great. Can we confirm Thursday at 10am?", 7),
            turn("user", "Yes, Thursday works. Thanks!", 12),
        ],
        Outcome::Voicemail => vec![turn("agent", "Hi, sorry we missed you. We will call back later.", 0)],
        _ => vec![],
    }
}

impl Simulator {
    fn conversation_by_id(&self, id: &str) -> Option<Conversation> {
        self.inner.lock().expect("sim lock").conversations.iter().find(|c| c.conversation_id == id).cloned()
    }

    /// The conversation as `GET /v1/convai/conversations/{id}` returns it (and
    /// the `data` of `post_call_transcription`), in full: the transcript and
    /// analysis once it is `done`. The JSON comes from
    /// `switchboard_wire::elevenlabs`, which `seed` uses too.
    fn conversation<'c>(&self, conv: &'c Conversation) -> el::Conversation<'c> {
        let call = conv.call_sid.as_deref().and_then(|s| self.call(s));
        let done = conv.status == "done";
        let outcome = call.as_ref().map(|c| c.script.outcome);
        let human = outcome == Some(Outcome::Human);
        let turns = match outcome {
            Some(o) if done => transcript(o),
            _ => vec![],
        };
        let phone_call = conv.call_sid.as_deref().map(|sid| el::PhoneCall {
            direction: &conv.direction,
            call_sid: sid,
            agent_number: &conv.agent_number,
            external_number: &conv.external_number,
            phone_number_id: Some(&conv.phone_number_id),
            stream_sid: Some(&conv.stream_sid),
        });
        let analysis = done.then(|| el::Analysis {
            call_successful: &conv.call_successful,
            transcript_summary: if human {
                "The contact confirmed the Thursday 10am appointment."
            } else {
                "Reached voicemail; no conversation."
            },
            details: Some(el::AnalysisDetails {
                call_summary_title: if human { "Appointment confirmed" } else { "Voicemail" },
                evaluation_criteria_results: vec![el::CriterionResult {
                    criteria_id: "confirmed",
                    result: if human { "success" } else { "failure" },
                    rationale: "Simulated.",
                }],
                data_collection_results: vec![el::DataCollectionResult {
                    data_collection_id: "slot",
                    value: if human { json!("Thursday 10am") } else { Value::Null },
                    rationale: "Simulated.",
                }],
            }),
        });
        let termination_reason = match (conv.status.as_str(), human) {
            ("done", true) => "end_call tool was called.",
            ("done", false) => "voicemail detected",
            ("failed", _) => "call initiation failed",
            _ => "",
        };
        let audio = done;
        el::Conversation {
            agent_id: &conv.agent_id,
            conversation_id: &conv.conversation_id,
            status: &conv.status,
            metadata: el::Metadata {
                start_time_unix_secs: conv.start_time_unix_secs,
                call_duration_secs: conv.call_duration_secs,
                cost: 10 * conv.call_duration_secs,
                termination_reason,
                phone_call,
            },
            analysis,
            details: Some(el::ConversationDetails {
                agent_name: AGENT_NAME,
                user_id: conv.user_id.as_deref(),
                transcript: turns,
                accepted_time_unix_secs: conv.start_time_unix_secs,
                main_language: "en",
                conversation_initiation_source: "twilio",
                authorization_method: "authorization_header",
                dynamic_variables: conv.dynamic_variables.as_object().cloned().unwrap_or_default(),
                caller_id: &conv.agent_number,
                called_number: &conv.external_number,
                has_audio: audio,
                has_user_audio: audio && human,
                has_response_audio: audio,
            }),
        }
    }

    fn conversation_summary(&self, conv: &Conversation, with_summary: bool) -> Value {
        let data = self.conversation(conv).to_json();
        let mut s = json!({
            "agent_id": conv.agent_id, "agent_name": AGENT_NAME, "conversation_id": conv.conversation_id,
            "start_time_unix_secs": conv.start_time_unix_secs, "call_duration_secs": conv.call_duration_secs,
            "message_count": data["transcript"].as_array().map(Vec::len).unwrap_or(0),
            "status": conv.status, "call_successful": conv.call_successful,
            "termination_reason": data["metadata"]["termination_reason"],
            "call_summary_title": data["analysis"]["call_summary_title"],
            "direction": conv.direction, "main_language": "en", "conversation_initiation_source": "twilio",
            "tool_names": [], "rating": null, "branch_id": null, "version_id": null,
        });
        if with_summary {
            s["transcript_summary"] = data["analysis"]["transcript_summary"].clone();
        }
        s
    }

    /// A post-call webhook body (`post_call_transcription`, `post_call_audio`
    /// or `call_initiation_failure`), stamped with the real time.
    pub(super) fn elevenlabs_body(&self, call: &SimCall, kind: &str) -> Value {
        let conversation_id = call.conversation_id.as_deref().unwrap_or_default();
        let agent_id = call.agent_id.as_deref().unwrap_or_default();
        let event_timestamp = super::wall().timestamp();
        match kind {
            el::CallInitiationFailure::TYPE => {
                let (failure_reason, status, sequence) = match call.script.outcome {
                    Outcome::Busy => ("busy", "busy", 2),
                    Outcome::NoAnswer => ("no-answer", "no-answer", 2),
                    _ => ("unknown", "failed", 1),
                };
                // The body is Twilio's terminal status callback, as ElevenLabs received it.
                let step = Step {
                    at_secs: 0.0,
                    kind: "status".into(),
                    value: status.into(),
                    sequence: Some(sequence),
                    bad_signature: false,
                };
                let twilio_body = self.twilio_params(call, &step);
                el::CallInitiationFailure {
                    event_timestamp,
                    agent_id,
                    conversation_id,
                    failure_reason,
                    twilio_body: &twilio_body,
                }
                .to_json()
            }
            el::PostCallAudio::TYPE => {
                el::PostCallAudio { event_timestamp, agent_id, conversation_id, mp3: SILENT_MP3 }.to_json()
            }
            _ => match self.conversation_by_id(conversation_id) {
                Some(conv) => el::PostCallTranscription { event_timestamp, data: self.conversation(&conv) }.to_json(),
                // Not reached (a call with a conversation id has its conversation); kept as it always was.
                None => el::envelope(el::PostCallTranscription::TYPE, event_timestamp, Value::Null),
            },
        }
    }
}

pub(super) async fn outbound_call(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    if let Some(r) = sim.api_fault("POST outbound-call", Flavor::ElevenLabs).await {
        return r;
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let absent: Vec<&str> =
        ["agent_id", "agent_phone_number_id", "to_number"].into_iter().filter(|k| field(k).is_none()).collect();
    if !absent.is_empty() {
        return missing(&absent);
    }
    let (agent, to) = (field("agent_id").unwrap_or_default(), field("to_number").unwrap_or_default());
    let from = "+15005550001";
    let conv = new_conversation(
        &sim,
        NewConversation {
            agent: &agent,
            direction: "outbound",
            phone_number_id: field("agent_phone_number_id").unwrap_or_default(),
            agent_number: from,
            external_number: &to,
            client_data: body.get("conversation_initiation_client_data"),
        },
    );
    // Native mode: ElevenLabs creates the Twilio call and receives its status callbacks itself.
    let wants = Wants { conversation: true, ..Default::default() };
    let call = sim.place(to, from.into(), wants, Urls::default(), Some((conv.clone(), agent)));
    sim.record("POST outbound-call".into(), 200);
    Json(json!({ "success": true, "message": "Success", "conversation_id": conv, "callSid": call.sid })).into_response()
}

pub(super) async fn register_call(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    let body = match json_body(&body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let field = |k: &str| body.get(k).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let absent: Vec<&str> =
        ["agent_id", "from_number", "to_number"].into_iter().filter(|k| field(k).is_none()).collect();
    if !absent.is_empty() {
        return missing(&absent);
    }
    // `direction` is optional and defaults to inbound, as in the real API.
    let direction = field("direction").unwrap_or_else(|| "inbound".into());
    if direction != "inbound" && direction != "outbound" {
        return validation(vec![
            json!({ "loc": ["body", "direction"], "msg": "Input should be 'inbound' or 'outbound'",
                                        "type": "enum", "input": direction }),
        ]);
    }
    let agent = field("agent_id").unwrap_or_default();
    let (from, to) = (field("from_number").unwrap_or_default(), field("to_number").unwrap_or_default());
    // The agent's number is the one it calls from (outbound) or is called on (inbound).
    let (agent_number, external) = if direction == "outbound" { (&from, &to) } else { (&to, &from) };
    let conv = new_conversation(
        &sim,
        NewConversation {
            agent: &agent,
            direction: &direction,
            phone_number_id: phone_number_id(agent_number),
            agent_number,
            external_number: external,
            client_data: body.get("conversation_initiation_client_data"),
        },
    );
    sim.record("POST register-call".into(), 200);
    let twiml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="wss://sim.invalid/v1/convai/conversation?agent_id={agent}"><Parameter name="conversation_id" value="{conv}"/></Stream></Connect></Response>"#
    );
    ([("content-type", "text/xml")], twiml).into_response()
}

/// `GET /v1/convai/conversations`: newest first, filters `agent_id`,
/// `call_successful`, `call_start_after_unix`, `call_start_before_unix`,
/// `user_id`, `summary_mode`; cursor paging.
pub(super) async fn list_conversations(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    if let Some(r) = sim.api_fault("GET conversations", Flavor::ElevenLabs).await {
        return r;
    }
    let q: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let int = |k: &str| -> Result<Option<i64>, Response> {
        match get(k) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                validation(vec![json!({ "loc": ["query", k], "msg": "Input should be a valid integer", "type": "int_parsing", "input": v })])
            }),
        }
    };
    let (after, before, page_size, cursor) =
        match (int("call_start_after_unix"), int("call_start_before_unix"), int("page_size"), int("cursor")) {
            (Ok(a), Ok(b), Ok(p), Ok(c)) => (a, b, p, c),
            (Err(r), ..) | (_, Err(r), ..) | (_, _, Err(r), _) | (.., Err(r)) => return r,
        };
    let size = page_size.unwrap_or(30).clamp(1, 100) as usize;
    let with_summary = get("summary_mode") == Some("include");
    let convs = sim.inner.lock().expect("sim lock").conversations.clone();
    // The cursor is the position (in creation order) below which the next page starts.
    let matching: Vec<(usize, &Conversation)> = convs
        .iter()
        .enumerate()
        .rev()
        .filter(|(i, _)| cursor.is_none_or(|c| (*i as i64) < c))
        .filter(|(_, c)| get("agent_id").is_none_or(|a| c.agent_id == a))
        .filter(|(_, c)| get("call_successful").is_none_or(|s| c.call_successful == s))
        .filter(|(_, c)| get("user_id").is_none_or(|u| c.user_id.as_deref() == Some(u)))
        .filter(|(_, c)| after.is_none_or(|t| c.start_time_unix_secs > t))
        .filter(|(_, c)| before.is_none_or(|t| c.start_time_unix_secs < t))
        .collect();
    let page: Vec<Value> = matching.iter().take(size).map(|(_, c)| sim.conversation_summary(c, with_summary)).collect();
    let more = matching.len() > size;
    let next = more.then(|| matching[size - 1].0.to_string());
    Json(json!({ "conversations": page, "next_cursor": next, "has_more": more })).into_response()
}

pub(super) async fn get_conversation(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    match sim.conversation_by_id(&id) {
        Some(conv) => Json(sim.conversation(&conv).to_json()).into_response(),
        None => el_error(404, "conversation_not_found", "Conversation not found"),
    }
}

pub(super) async fn conversation_audio(
    State(sim): State<Simulator>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !el_authorised(&sim, &headers) {
        return el_error(401, "invalid_api_key", "Invalid API key");
    }
    if sim.conversation_by_id(&id).is_some() {
        ([("content-type", "audio/mpeg")], SILENT_MP3).into_response()
    } else {
        el_error(404, "conversation_not_found", "Conversation not found")
    }
}
