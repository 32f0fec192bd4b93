//! ElevenLabs' post-call webhook bodies (external-apis.md B.5) and the
//! conversation as `GET /v1/convai/conversations/{id}` returns it (B.4),
//! built in one place for the simulator (which sends and serves them),
//! `seed` (which stores them as events) and tests.
//!
//! Every webhook is the envelope `{ "type", "event_timestamp", "data" }`.
//! The `data` of `post_call_transcription` has the GET-conversation shape
//! ([`Conversation`]). Two callers want two sizes of it: the simulator
//! plays ElevenLabs and sends everything ElevenLabs sends (the nulls and
//! empty lists included), while `seed` stores only the fields the service
//! reads, to keep seeded event payloads small. So the parts beyond those
//! fields are optional structs ([`ConversationDetails`],
//! [`AnalysisDetails`]) that are left out when `None`, rather than a second
//! builder that would drift from the first.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::{Map, Value, json};

/// The envelope all three post-call webhook types share. `event_timestamp`
/// is Unix seconds.
pub fn envelope(kind: &str, event_timestamp: i64, data: Value) -> Value {
    json!({ "type": kind, "event_timestamp": event_timestamp, "data": data })
}

/// A `post_call_transcription` webhook: the finished conversation.
#[derive(Debug, Clone)]
pub struct PostCallTranscription<'a> {
    /// Unix seconds.
    pub event_timestamp: i64,
    /// The conversation, in the GET-conversation shape.
    pub data: Conversation<'a>,
}

impl PostCallTranscription<'_> {
    /// The webhook's `type`.
    pub const TYPE: &'static str = "post_call_transcription";

    /// The webhook body.
    pub fn to_json(&self) -> Value {
        envelope(Self::TYPE, self.event_timestamp, self.data.to_json())
    }
}

/// A conversation: the `data` of `post_call_transcription` and the body of
/// `GET /v1/convai/conversations/{id}`.
#[derive(Debug, Clone)]
pub struct Conversation<'a> {
    /// `agent_…`.
    pub agent_id: &'a str,
    /// `conv_…`.
    pub conversation_id: &'a str,
    /// `initiated`, `in-progress`, `processing`, `done`, `failed`.
    pub status: &'a str,
    /// `data.metadata`.
    pub metadata: Metadata<'a>,
    /// `data.analysis`; `null` until the analysis is final.
    pub analysis: Option<Analysis<'a>>,
    /// Everything else ElevenLabs sends; `None` leaves it out.
    pub details: Option<ConversationDetails<'a>>,
}

/// `data.metadata`: the fields the service reads.
#[derive(Debug, Clone)]
pub struct Metadata<'a> {
    /// Unix seconds.
    pub start_time_unix_secs: i64,
    /// The conversation's length (not the call's).
    pub call_duration_secs: i64,
    /// Credits.
    pub cost: i64,
    /// Free-form; may be `""`.
    pub termination_reason: &'a str,
    /// `null` for a conversation that is not (yet) a phone call.
    pub phone_call: Option<PhoneCall<'a>>,
}

/// `data.metadata.phone_call` of `type: "twilio"`.
#[derive(Debug, Clone)]
pub struct PhoneCall<'a> {
    /// `inbound` / `outbound`.
    pub direction: &'a str,
    /// `CA…`: where the service finds the Twilio call first.
    pub call_sid: &'a str,
    /// The agent's number.
    pub agent_number: &'a str,
    /// The other party's number.
    pub external_number: &'a str,
    /// `phnum_…`; left out when `None`.
    pub phone_number_id: Option<&'a str>,
    /// `MZ…`; left out when `None`.
    pub stream_sid: Option<&'a str>,
}

/// `data.analysis`: the fields the service reads.
#[derive(Debug, Clone)]
pub struct Analysis<'a> {
    /// `success`, `failure` or `unknown`.
    pub call_successful: &'a str,
    /// A sentence or two.
    pub transcript_summary: &'a str,
    /// The rest of the analysis; `None` leaves it out.
    pub details: Option<AnalysisDetails<'a>>,
}

/// The rest of `data.analysis` (`call_success_score` is written as `null`).
#[derive(Debug, Clone)]
pub struct AnalysisDetails<'a> {
    /// A few words.
    pub call_summary_title: &'a str,
    /// `evaluation_criteria_results`, keyed by criteria id.
    pub evaluation_criteria_results: Vec<CriterionResult<'a>>,
    /// `data_collection_results`, keyed by data collection id.
    pub data_collection_results: Vec<DataCollectionResult<'a>>,
}

/// One `evaluation_criteria_results` entry.
#[derive(Debug, Clone)]
pub struct CriterionResult<'a> {
    /// `criteria_id`, also the map key.
    pub criteria_id: &'a str,
    /// `success`, `failure` or `unknown`.
    pub result: &'a str,
    /// Why.
    pub rationale: &'a str,
}

/// One `data_collection_results` entry.
#[derive(Debug, Clone)]
pub struct DataCollectionResult<'a> {
    /// `data_collection_id`, also the map key.
    pub data_collection_id: &'a str,
    /// Any JSON, or `null` when nothing was collected.
    pub value: Value,
    /// Why.
    pub rationale: &'a str,
}

/// The part of a conversation beyond what the service reads, as ElevenLabs
/// sends it for a call through its native Twilio integration. The fields
/// with nothing to report (`branch_id`, `version_id`, `metadata.error`,
/// `metadata.batch_call`, `tag_ids`, …) are written empty or `null`.
#[derive(Debug, Clone)]
pub struct ConversationDetails<'a> {
    /// `agent_name`.
    pub agent_name: &'a str,
    /// `user_id`, as the caller sent it in `conversation_initiation_client_data`.
    pub user_id: Option<&'a str>,
    /// `transcript`.
    pub transcript: Vec<Turn<'a>>,
    /// `metadata.accepted_time_unix_secs`.
    pub accepted_time_unix_secs: i64,
    /// `metadata.main_language`, e.g. `en`.
    pub main_language: &'a str,
    /// `metadata.conversation_initiation_source`, e.g. `twilio`.
    pub conversation_initiation_source: &'a str,
    /// `metadata.authorization_method`, e.g. `authorization_header`.
    pub authorization_method: &'a str,
    /// The dynamic variables the caller sent. ElevenLabs adds its own
    /// (`system__conversation_id`, `system__agent_id`, `system__call_sid`
    /// from `metadata.phone_call`, `system__caller_id`,
    /// `system__called_number`), replacing any of the same name.
    pub dynamic_variables: Map<String, Value>,
    /// `system__caller_id`: the agent's number.
    pub caller_id: &'a str,
    /// `system__called_number`: the other party's number.
    pub called_number: &'a str,
    /// `has_audio`.
    pub has_audio: bool,
    /// `has_user_audio`.
    pub has_user_audio: bool,
    /// `has_response_audio`.
    pub has_response_audio: bool,
}

/// One `transcript` turn. The tool, feedback and metrics fields are written
/// empty or `null`; `source_medium` is `audio`.
#[derive(Debug, Clone)]
pub struct Turn<'a> {
    /// `agent` or `user`.
    pub role: &'a str,
    /// What was said.
    pub message: &'a str,
    /// Seconds from the start of the conversation.
    pub time_in_call_secs: u64,
}

impl Turn<'_> {
    fn to_json(&self) -> Value {
        json!({ "role": self.role, "message": self.message, "time_in_call_secs": self.time_in_call_secs,
                "tool_calls": [], "tool_results": [], "feedback": null, "llm_override": null,
                "conversation_turn_metrics": null, "rag_retrieval_info": null, "llm_usage": null,
                "interrupted": false, "original_message": null, "source_medium": "audio" })
    }
}

impl Conversation<'_> {
    /// The conversation as JSON (the webhook's `data`, the GET body).
    pub fn to_json(&self) -> Value {
        let m = &self.metadata;
        let phone_call = m.phone_call.as_ref().map(|p| {
            let mut o = json!({ "type": "twilio", "direction": p.direction, "agent_number": p.agent_number,
                                "external_number": p.external_number, "call_sid": p.call_sid });
            if let Some(id) = p.phone_number_id {
                o["phone_number_id"] = json!(id);
            }
            if let Some(sid) = p.stream_sid {
                o["stream_sid"] = json!(sid);
            }
            o
        });
        let mut metadata = json!({
            "start_time_unix_secs": m.start_time_unix_secs, "call_duration_secs": m.call_duration_secs,
            "cost": m.cost, "termination_reason": m.termination_reason, "phone_call": phone_call,
        });
        let analysis = self.analysis.as_ref().map(|a| {
            let mut o = json!({ "call_successful": a.call_successful, "transcript_summary": a.transcript_summary });
            if let Some(d) = &a.details {
                o["call_success_score"] = Value::Null;
                o["call_summary_title"] = json!(d.call_summary_title);
                o["evaluation_criteria_results"] = d
                    .evaluation_criteria_results
                    .iter()
                    .map(|c| {
                        let v = json!({ "criteria_id": c.criteria_id, "result": c.result, "rationale": c.rationale });
                        (c.criteria_id.to_owned(), v)
                    })
                    .collect::<Map<_, _>>()
                    .into();
                o["data_collection_results"] = d
                    .data_collection_results
                    .iter()
                    .map(|c| {
                        let v = json!({ "data_collection_id": c.data_collection_id, "value": c.value,
                                        "rationale": c.rationale });
                        (c.data_collection_id.to_owned(), v)
                    })
                    .collect::<Map<_, _>>()
                    .into();
            }
            o
        });
        let Some(d) = &self.details else {
            return json!({
                "agent_id": self.agent_id, "conversation_id": self.conversation_id, "status": self.status,
                "metadata": metadata, "analysis": analysis,
            });
        };
        for (k, v) in [
            ("accepted_time_unix_secs", json!(d.accepted_time_unix_secs)),
            ("main_language", json!(d.main_language)),
            ("text_only", json!(false)),
            ("conversation_initiation_source", json!(d.conversation_initiation_source)),
            ("authorization_method", json!(d.authorization_method)),
            ("feedback", json!({ "overall_score": null, "likes": 0, "dislikes": 0 })),
            ("batch_call", Value::Null),
            ("error", Value::Null),
            ("warnings", json!([])),
            ("timezone", Value::Null),
        ] {
            metadata[k] = v;
        }
        let mut dynamic = d.dynamic_variables.clone();
        dynamic.insert("system__call_sid".into(), json!(m.phone_call.as_ref().map(|p| p.call_sid)));
        dynamic.insert("system__conversation_id".into(), json!(self.conversation_id));
        dynamic.insert("system__agent_id".into(), json!(self.agent_id));
        dynamic.insert("system__caller_id".into(), json!(d.caller_id));
        dynamic.insert("system__called_number".into(), json!(d.called_number));
        json!({
            "agent_id": self.agent_id, "agent_name": d.agent_name, "conversation_id": self.conversation_id,
            "status": self.status, "user_id": d.user_id, "branch_id": null, "version_id": null,
            "transcript": d.transcript.iter().map(Turn::to_json).collect::<Vec<_>>(),
            "metadata": metadata,
            "analysis": analysis,
            "conversation_initiation_client_data": {
                "conversation_config_override": null, "custom_llm_extra_body": {}, "user_id": d.user_id,
                "dynamic_variables": dynamic,
            },
            "has_audio": d.has_audio, "has_user_audio": d.has_user_audio, "has_response_audio": d.has_response_audio,
            "has_auxiliary_audio": false, "tag_ids": [], "visited_agents": [],
        })
    }
}

/// A `post_call_audio` webhook: `data` is the ids and the whole recording,
/// nothing else.
#[derive(Debug, Clone)]
pub struct PostCallAudio<'a> {
    /// Unix seconds.
    pub event_timestamp: i64,
    /// `agent_…`.
    pub agent_id: &'a str,
    /// `conv_…`.
    pub conversation_id: &'a str,
    /// The MP3 bytes; sent base64-encoded as `full_audio`.
    pub mp3: &'a [u8],
}

impl PostCallAudio<'_> {
    /// The webhook's `type`.
    pub const TYPE: &'static str = "post_call_audio";

    /// The webhook body.
    pub fn to_json(&self) -> Value {
        let data = json!({ "agent_id": self.agent_id, "conversation_id": self.conversation_id,
                           "full_audio": STANDARD.encode(self.mp3) });
        envelope(Self::TYPE, self.event_timestamp, data)
    }
}

/// A `call_initiation_failure` webhook for a Twilio call that was never
/// answered (`metadata.type: "twilio"`; the `sip` variant is not built).
#[derive(Debug, Clone)]
pub struct CallInitiationFailure<'a> {
    /// Unix seconds.
    pub event_timestamp: i64,
    /// `agent_…`.
    pub agent_id: &'a str,
    /// `conv_…`.
    pub conversation_id: &'a str,
    /// `busy`, `no-answer` or `unknown`.
    pub failure_reason: &'a str,
    /// Twilio's status-callback parameters as ElevenLabs received them
    /// (`metadata.body`, an object of strings).
    pub twilio_body: &'a [(String, String)],
}

impl CallInitiationFailure<'_> {
    /// The webhook's `type`.
    pub const TYPE: &'static str = "call_initiation_failure";

    /// The webhook body.
    pub fn to_json(&self) -> Value {
        let body: Map<String, Value> =
            self.twilio_body.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        let data = json!({ "agent_id": self.agent_id, "conversation_id": self.conversation_id,
                           "failure_reason": self.failure_reason,
                           "metadata": { "type": "twilio", "body": body } });
        envelope(Self::TYPE, self.event_timestamp, data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// external-apis.md B.5, "Constructed transcription example", verbatim.
    const REFERENCE_TRANSCRIPTION: &str = r#"{
  "type": "post_call_transcription",
  "event_timestamp": 1794916542,
  "data": {
    "agent_id": "agent_7801kabc0000000000000000test",
    "agent_name": "Renewal reminder",
    "conversation_id": "conv_4401kaaa000000000000000test",
    "status": "done",
    "user_id": "lead-000123",
    "transcript": [
      { "role": "agent", "message": "Hi Dana, this is a quick reminder call.", "time_in_call_secs": 0,
        "tool_calls": null, "tool_results": null, "feedback": null, "conversation_turn_metrics": null },
      { "role": "user", "message": "Sure, go ahead.", "time_in_call_secs": 3,
        "tool_calls": null, "tool_results": null, "feedback": null, "conversation_turn_metrics": null },
      { "role": "agent", "message": null, "time_in_call_secs": 9,
        "tool_calls": [ { "type": "webhook", "request_id": "req_1", "tool_name": "book_slot",
                          "params_as_json": "{\"slot\":\"2026-11-20T10:00\"}", "tool_has_been_called": true,
                          "tool_details": null } ],
        "tool_results": [ { "type": "webhook", "request_id": "req_1", "tool_name": "book_slot",
                            "result_value": "{\"ok\":true}", "is_error": false, "tool_has_been_called": true,
                            "tool_latency_secs": 0.41 } ],
        "feedback": null, "conversation_turn_metrics": null }
    ],
    "metadata": {
      "start_time_unix_secs": 1794916460, "call_duration_secs": 37, "cost": 412,
      "termination_reason": "end_call tool was called.",
      "phone_call": { "type": "twilio", "direction": "outbound",
                      "phone_number_id": "phnum_0101kxyz000000000000000test",
                      "agent_number": "+15005550001", "external_number": "+15005550006",
                      "stream_sid": "MZ55555555555555555555555555555555",
                      "call_sid": "CA44444444444444444444444444444444" },
      "batch_call": null
    },
    "analysis": {
      "evaluation_criteria_results": {
        "booked": { "criteria_id": "booked", "result": "success", "rationale": "A slot was booked." } },
      "data_collection_results": {
        "preferred_slot": { "data_collection_id": "preferred_slot", "value": "2026-11-20T10:00",
                            "rationale": "Caller chose the first offered slot." } },
      "call_successful": "success",
      "transcript_summary": "Agent reminded the lead and booked a slot."
    },
    "conversation_initiation_client_data": {
      "conversation_config_override": null,
      "custom_llm_extra_body": {},
      "dynamic_variables": {
        "lead_id": "000123", "first_name": "Dana", "campaign_id": 42,
        "system__conversation_id": "conv_4401kaaa000000000000000test",
        "system__call_sid": "CA44444444444444444444444444444444",
        "system__caller_id": "+15005550001", "system__called_number": "+15005550006" } },
    "has_audio": true, "has_user_audio": true, "has_response_audio": true
  }
}"#;

    fn reference_metadata() -> Metadata<'static> {
        Metadata {
            start_time_unix_secs: 1794916460,
            call_duration_secs: 37,
            cost: 412,
            termination_reason: "end_call tool was called.",
            phone_call: Some(PhoneCall {
                direction: "outbound",
                call_sid: "CA44444444444444444444444444444444",
                agent_number: "+15005550001",
                external_number: "+15005550006",
                phone_number_id: Some("phnum_0101kxyz000000000000000test"),
                stream_sid: Some("MZ55555555555555555555555555555555"),
            }),
        }
    }

    /// Every field of `expected` is in `actual` with the same value (objects
    /// may have more keys; arrays and scalars must be equal).
    fn assert_within(expected: &Value, actual: &Value, path: &str) {
        match (expected, actual) {
            (Value::Object(e), Value::Object(a)) => {
                for (k, v) in e {
                    let at = format!("{path}.{k}");
                    let got = a.get(k).unwrap_or_else(|| panic!("{at} missing in {actual}"));
                    assert_within(v, got, &at);
                }
            }
            _ => assert_eq!(expected, actual, "at {path}"),
        }
    }

    #[test]
    fn the_full_transcription_carries_every_field_of_the_reference_example() {
        let mut dynamic = Map::new();
        dynamic.insert("lead_id".into(), json!("000123"));
        dynamic.insert("first_name".into(), json!("Dana"));
        dynamic.insert("campaign_id".into(), json!(42));
        // Whatever the caller sent under a system name, ElevenLabs' value wins.
        dynamic.insert("system__caller_id".into(), json!("spoofed"));
        let body = PostCallTranscription {
            event_timestamp: 1794916542,
            data: Conversation {
                agent_id: "agent_7801kabc0000000000000000test",
                conversation_id: "conv_4401kaaa000000000000000test",
                status: "done",
                metadata: reference_metadata(),
                analysis: Some(Analysis {
                    call_successful: "success",
                    transcript_summary: "Agent reminded the lead and booked a slot.",
                    details: Some(AnalysisDetails {
                        call_summary_title: "Slot booked",
                        evaluation_criteria_results: vec![CriterionResult {
                            criteria_id: "booked",
                            result: "success",
                            rationale: "A slot was booked.",
                        }],
                        data_collection_results: vec![DataCollectionResult {
                            data_collection_id: "preferred_slot",
                            value: json!("2026-11-20T10:00"),
                            rationale: "Caller chose the first offered slot.",
                        }],
                    }),
                }),
                details: Some(ConversationDetails {
                    agent_name: "Renewal reminder",
                    user_id: Some("lead-000123"),
                    transcript: vec![
                        Turn {
                            role: "agent",
                            message: "Hi Dana, this is a quick reminder call.",
                            time_in_call_secs: 0,
                        },
                        Turn { role: "user", message: "Sure, go ahead.", time_in_call_secs: 3 },
                    ],
                    accepted_time_unix_secs: 1794916460,
                    main_language: "en",
                    conversation_initiation_source: "twilio",
                    authorization_method: "authorization_header",
                    dynamic_variables: dynamic,
                    caller_id: "+15005550001",
                    called_number: "+15005550006",
                    has_audio: true,
                    has_user_audio: true,
                    has_response_audio: true,
                }),
            },
        }
        .to_json();

        let mut reference: Value = serde_json::from_str(REFERENCE_TRANSCRIPTION).unwrap();
        // Turns: the builder writes no tool calls (it writes `[]`, the
        // reference `null`; both are documented), so compare what it models.
        let turns = reference["data"].as_object_mut().unwrap().remove("transcript").unwrap();
        let built = body["data"]["transcript"].as_array().unwrap();
        assert_eq!(built.len(), 2);
        for (want, got) in turns.as_array().unwrap().iter().zip(built) {
            for k in ["role", "message", "time_in_call_secs"] {
                assert_eq!(want[k], got[k], "transcript {k}");
            }
        }
        assert_within(&reference, &body, "");
        let vars = &body["data"]["conversation_initiation_client_data"]["dynamic_variables"];
        assert_eq!(vars["system__agent_id"], "agent_7801kabc0000000000000000test");
        // The GET-conversation extras (B.4).
        assert_eq!(body["data"]["has_auxiliary_audio"], false);
        assert_eq!(body["data"]["tag_ids"], json!([]));
        assert_eq!(body["data"]["analysis"]["call_summary_title"], "Slot booked");
    }

    #[test]
    fn the_short_transcription_has_only_the_fields_the_service_reads() {
        let mut metadata = reference_metadata();
        let phone = metadata.phone_call.as_mut().unwrap();
        (phone.phone_number_id, phone.stream_sid) = (None, None);
        let body = PostCallTranscription {
            event_timestamp: 1794916542,
            data: Conversation {
                agent_id: "agent_7801kabc0000000000000000test",
                conversation_id: "conv_4401kaaa000000000000000test",
                status: "done",
                metadata,
                analysis: Some(Analysis {
                    call_successful: "success",
                    transcript_summary: "Agent reminded the lead and booked a slot.",
                    details: None,
                }),
                details: None,
            },
        };
        assert_eq!(
            body.to_json(),
            json!({
                "type": "post_call_transcription", "event_timestamp": 1794916542,
                "data": {
                    "agent_id": "agent_7801kabc0000000000000000test",
                    "conversation_id": "conv_4401kaaa000000000000000test",
                    "status": "done",
                    "metadata": {
                        "start_time_unix_secs": 1794916460, "call_duration_secs": 37, "cost": 412,
                        "termination_reason": "end_call tool was called.",
                        "phone_call": { "type": "twilio", "direction": "outbound", "call_sid": "CA44444444444444444444444444444444",
                                        "agent_number": "+15005550001", "external_number": "+15005550006" },
                    },
                    "analysis": { "call_successful": "success",
                                  "transcript_summary": "Agent reminded the lead and booked a slot." },
                }
            })
        );
        // Before the analysis and the phone call exist, both are `null`.
        let early = Conversation {
            status: "initiated",
            analysis: None,
            metadata: Metadata { phone_call: None, ..body.data.metadata },
            ..body.data
        };
        let v = early.to_json();
        assert_eq!((&v["analysis"], &v["metadata"]["phone_call"]), (&Value::Null, &Value::Null));
    }

    #[test]
    fn a_failure_carries_twilios_callback_and_audio_is_base64() {
        let params = [
            ("CallSid".to_owned(), "CA44444444444444444444444444444444".to_owned()),
            ("CallStatus".into(), "busy".into()),
        ];
        let failure = CallInitiationFailure {
            event_timestamp: 1794916600,
            agent_id: "agent_x",
            conversation_id: "conv_x",
            failure_reason: "busy",
            twilio_body: &params,
        };
        assert_eq!(
            failure.to_json(),
            json!({ "type": "call_initiation_failure", "event_timestamp": 1794916600,
                    "data": { "agent_id": "agent_x", "conversation_id": "conv_x", "failure_reason": "busy",
                              "metadata": { "type": "twilio",
                                            "body": { "CallSid": "CA44444444444444444444444444444444", "CallStatus": "busy" } } } })
        );
        let audio =
            PostCallAudio { event_timestamp: 1794916601, agent_id: "agent_x", conversation_id: "conv_x", mp3: b"ID3" };
        assert_eq!(
            audio.to_json(),
            json!({ "type": "post_call_audio", "event_timestamp": 1794916601,
                    "data": { "agent_id": "agent_x", "conversation_id": "conv_x", "full_audio": "SUQz" } })
        );
    }
}
