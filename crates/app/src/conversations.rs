//! ElevenLabs conversations as first-class records: the post-call webhook
//! and the reconciler both hand a conversation (`data` of the webhook, the
//! same shape as `GET /v1/convai/conversations/{id}`) to [`record`], which
//! writes its transcript (with ElevenLabs' analysis and ours) idempotently.
//!
//! Crash safety: the transcript is written **before** the webhook's event is
//! stored (the event is what marks a replay), so a crash between the two is
//! repaired by the provider's retry or by the reconciler, and the transcript
//! upsert is idempotent. The call link is resolved from the stored call when
//! there is one; `GET /calls/{id}/transcript` also finds a transcript by the
//! call's conversation id, so a transcript that arrived before Twilio's first
//! callback is found all the same.

use serde_json::Value;
use switchboard_domain::time::now_ms;
use switchboard_domain::transcript::{CriterionResult, DataPoint, Turn};
use switchboard_domain::{Transcript, TranscriptId};
use switchboard_storage::{Storage, StoreResult};

fn s(v: &Value, path: &[&str]) -> Option<String> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_str().map(str::to_owned)
}

fn i(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(*p)?;
    }
    cur.as_i64().or_else(|| cur.as_f64().map(|f| f as i64))
}

fn list(v: Option<&Value>) -> Vec<Value> {
    v.and_then(Value::as_array).cloned().unwrap_or_default()
}

/// A transcript from a conversation payload (`None`: no `conversation_id`).
pub fn transcript_from(data: &Value) -> Option<Transcript> {
    let conversation_id = s(data, &["conversation_id"])?;
    let now = now_ms();
    let turns = data
        .get("transcript")
        .and_then(Value::as_array)
        .map(|ts| {
            ts.iter()
                .map(|t| Turn {
                    role: s(t, &["role"]).unwrap_or_else(|| "agent".into()),
                    message: s(t, &["message"]).unwrap_or_default(),
                    time_in_call_secs: t.get("time_in_call_secs").and_then(Value::as_f64),
                    tool_calls: list(t.get("tool_calls")),
                    tool_results: list(t.get("tool_results")),
                    interrupted: t.get("interrupted").and_then(Value::as_bool).unwrap_or(false),
                })
                .collect()
        })
        .unwrap_or_default();
    let analysis = data.get("analysis").filter(|a| a.is_object());
    let mut criteria: Vec<CriterionResult> = analysis
        .and_then(|a| a.get("evaluation_criteria_results"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(id, r)| CriterionResult {
                    id: s(r, &["criteria_id"]).unwrap_or_else(|| id.clone()),
                    result: s(r, &["result"]).unwrap_or_else(|| "unknown".into()),
                    rationale: s(r, &["rationale"]),
                })
                .collect()
        })
        .unwrap_or_default();
    criteria.sort_by(|a, b| a.id.cmp(&b.id));
    let mut data_collection: Vec<DataPoint> = analysis
        .and_then(|a| a.get("data_collection_results"))
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(id, r)| DataPoint {
                    id: s(r, &["data_collection_id"]).unwrap_or_else(|| id.clone()),
                    value: r.get("value").cloned().unwrap_or(Value::Null),
                    rationale: s(r, &["rationale"]),
                })
                .collect()
        })
        .unwrap_or_default();
    data_collection.sort_by(|a, b| a.id.cmp(&b.id));
    let started_at = i(data, &["metadata", "start_time_unix_secs"])
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .unwrap_or(now);
    Some(Transcript {
        id: TranscriptId::new(),
        conversation_id,
        call_id: None,
        campaign_id: None,
        contact_id: None,
        agent_id: s(data, &["agent_id"]),
        status: s(data, &["status"]).unwrap_or_else(|| "done".into()),
        turns,
        language: s(data, &["metadata", "main_language"]),
        duration_secs: i(data, &["metadata", "call_duration_secs"]),
        cost: i(data, &["metadata", "cost"]),
        termination_reason: s(data, &["metadata", "termination_reason"]).filter(|r| !r.is_empty()),
        call_successful: analysis.and_then(|a| s(a, &["call_successful"])),
        summary: analysis.and_then(|a| s(a, &["transcript_summary"])).filter(|r| !r.is_empty()),
        criteria,
        data_collection,
        has_audio: data.get("has_audio").and_then(Value::as_bool).unwrap_or(false),
        started_at: switchboard_domain::time::to_ms(started_at),
        analysis: None,
        analyzer_version: None,
        sentiment: None,
        created_at: now,
        updated_at: now,
    })
}

/// Links a transcript to its stored call (by conversation, then CallSid), if there is one.
pub async fn link(store: &dyn Storage, t: &mut Transcript, call_sid: Option<&str>) -> StoreResult<()> {
    let call = match store.find_call_by_conversation(&t.conversation_id).await? {
        Some(c) => Some(c),
        None => match call_sid {
            Some(sid) => store.find_call_by_sid(sid).await?,
            None => None,
        },
    };
    if let Some(c) = call {
        t.call_id = Some(c.id);
        t.campaign_id = c.campaign_id;
        t.contact_id = c.contact_id;
        if t.agent_id.is_none() {
            t.agent_id = c.agent_id;
        }
    }
    Ok(())
}

/// The Twilio CallSid a conversation names, if any.
pub fn call_sid_of(data: &Value) -> Option<String> {
    s(data, &["metadata", "phone_call", "call_sid"])
        .or_else(|| s(data, &["conversation_initiation_client_data", "dynamic_variables", "system__call_sid"]))
}

/// Writes a conversation's transcript (linked and analysed) and, when
/// ElevenLabs holds audio for it, its recording; idempotent.
pub async fn record(
    store: &dyn Storage,
    data: &Value,
    analysis: &crate::config::AnalysisSettings,
) -> StoreResult<Option<Transcript>> {
    let Some(mut t) = transcript_from(data) else { return Ok(None) };
    let call_sid = call_sid_of(data);
    link(store, &mut t, call_sid.as_deref()).await?;
    let gazetteers = analysis.gazetteers_for(t.agent_id.as_deref());
    crate::analysis::apply_with(&mut t, &gazetteers);
    let stored = store.upsert_transcript(&t).await?;
    if stored.has_audio {
        record_audio(store, &stored.conversation_id, call_sid.as_deref()).await?;
    }
    Ok(Some(stored))
}

/// Records that ElevenLabs holds audio for a conversation (the media stays
/// there; `GET /recordings/{id}/media` streams it).
pub async fn record_audio(
    store: &dyn Storage,
    conversation_id: &str,
    call_sid: Option<&str>,
) -> StoreResult<switchboard_domain::Recording> {
    use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
    let now = now_ms();
    let call = match store.find_call_by_conversation(conversation_id).await? {
        Some(c) => Some(c),
        None => match call_sid {
            Some(sid) => store.find_call_by_sid(sid).await?,
            None => None,
        },
    };
    let rec = switchboard_domain::Recording {
        id: switchboard_domain::RecordingId::new(),
        provider: RecordingProvider::Elevenlabs,
        provider_id: conversation_id.to_owned(),
        call_id: call.as_ref().map(|c| c.id.clone()),
        call_sid: call_sid.map(str::to_owned).or_else(|| call.as_ref().and_then(|c| c.call_sid.clone())),
        conversation_id: Some(conversation_id.to_owned()),
        status: RecordingStatus::Completed,
        duration_secs: None,
        channels: None,
        source: Some("elevenlabs".into()),
        track: Some("both".into()),
        started_at: None,
        media_url: None,
        format: Some("mp3".into()),
        error_code: None,
        deleted_at: None,
        created_at: now,
        updated_at: now,
    };
    store.upsert_recording(&rec).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_example_becomes_a_transcript() {
        let data = serde_json::json!({
            "agent_id": "agent_1", "conversation_id": "conv_1", "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hi Dana", "time_in_call_secs": 0, "tool_calls": null},
                {"role": "user", "message": "Sure, go ahead.", "time_in_call_secs": 3},
                {"role": "agent", "message": null, "time_in_call_secs": 9,
                 "tool_calls": [{"tool_name": "book_slot"}], "tool_results": [{"result_value": "{\"ok\":true}"}]}
            ],
            "metadata": {"start_time_unix_secs": 1794916460, "call_duration_secs": 37, "cost": 412,
                "termination_reason": "end_call tool was called.",
                "phone_call": {"type": "twilio", "call_sid": "CA44444444444444444444444444444444"}},
            "analysis": {
                "evaluation_criteria_results": {"booked": {"criteria_id": "booked", "result": "success", "rationale": "A slot was booked."}},
                "data_collection_results": {"preferred_slot": {"data_collection_id": "preferred_slot", "value": "2026-11-20T10:00", "rationale": "x"}},
                "call_successful": "success", "transcript_summary": "Agent booked a slot."},
            "has_audio": true
        });
        let t = transcript_from(&data).unwrap();
        assert_eq!((t.conversation_id.as_str(), t.status.as_str(), t.turns.len()), ("conv_1", "done", 3));
        assert_eq!(t.turns[2].message, "");
        assert_eq!(t.turns[2].tool_calls.len(), 1);
        assert_eq!(t.turns[1].time_in_call_secs, Some(3.0));
        assert_eq!((t.duration_secs, t.cost), (Some(37), Some(412)));
        assert_eq!(t.criteria[0].result, "success");
        assert_eq!(t.data_collection[0].value, "2026-11-20T10:00");
        assert_eq!(t.call_successful.as_deref(), Some("success"));
        assert_eq!(t.started_at.timestamp(), 1794916460);
        assert!(t.has_audio);
        assert_eq!(call_sid_of(&data).as_deref(), Some("CA44444444444444444444444444444444"));
        assert!(transcript_from(&serde_json::json!({"status": "done"})).is_none());
    }
}
