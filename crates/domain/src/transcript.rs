//! Transcripts: one per ElevenLabs conversation, linked to its call (and
//! campaign, contact, agent), with the turns, ElevenLabs' own analysis, and
//! our analysis (versioned: a newer analyser re-runs over old transcripts).
//!
//! Every evaluation criterion and data-collection field is its own element
//! ([`CriterionResult`], [`DataPoint`]) so "pass rate of criterion X per
//! campaign per week" is one indexed query in either store.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{CallId, CampaignId, ContactId, TranscriptId};

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// `agent` or `user`.
    pub role: String,
    /// What was said (may be empty for a tool-only turn).
    pub message: String,
    /// Seconds since the conversation started.
    pub time_in_call_secs: Option<f64>,
    /// Tool calls made in this turn, as ElevenLabs reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<Value>,
    /// Tool results, as ElevenLabs reports them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_results: Vec<Value>,
    /// The user interrupted this (agent) turn.
    #[serde(default)]
    pub interrupted: bool,
}

/// One evaluation criterion's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriterionResult {
    /// Criterion id.
    pub id: String,
    /// `success`, `failure` or `unknown`.
    pub result: String,
    /// The evaluator's rationale.
    pub rationale: Option<String>,
}

/// One data-collection field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataPoint {
    /// Field id.
    pub id: String,
    /// The value collected (null when not collected).
    pub value: Value,
    /// The evaluator's rationale.
    pub rationale: Option<String>,
}

/// One conversation's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// Our id (`trn_…`).
    pub id: TranscriptId,
    /// ElevenLabs conversation id (unique).
    pub conversation_id: String,
    /// Our call, once known.
    pub call_id: Option<CallId>,
    /// Campaign of the call.
    pub campaign_id: Option<CampaignId>,
    /// Contact called.
    pub contact_id: Option<ContactId>,
    /// ElevenLabs agent.
    pub agent_id: Option<String>,
    /// ElevenLabs conversation status (`done`, `failed`, `processing`, …).
    pub status: String,
    /// The turns, in order.
    pub turns: Vec<Turn>,
    /// Detected or configured language.
    pub language: Option<String>,
    /// Seconds.
    pub duration_secs: Option<i64>,
    /// Cost in ElevenLabs credits.
    pub cost: Option<i64>,
    /// Why the conversation ended.
    pub termination_reason: Option<String>,
    /// ElevenLabs' verdict: `success`, `failure` or `unknown`.
    pub call_successful: Option<String>,
    /// ElevenLabs' summary.
    pub summary: Option<String>,
    /// Evaluation criteria results.
    pub criteria: Vec<CriterionResult>,
    /// Data collection results.
    pub data_collection: Vec<DataPoint>,
    /// ElevenLabs reported audio for it.
    pub has_audio: bool,
    /// When the conversation started.
    pub started_at: DateTime<Utc>,
    /// Our analysis (sentiment, keywords, entities) as stored; `None` until analysed.
    pub analysis: Option<Value>,
    /// Version of the analyser that produced `analysis`.
    pub analyzer_version: Option<u32>,
    /// Overall sentiment (compound, −1..1), copied out of `analysis` for filters.
    pub sentiment: Option<f64>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Transcript {
    /// Whether ElevenLabs will not change it any more.
    pub fn is_final(&self) -> bool {
        matches!(self.status.as_str(), "done" | "failed")
    }

    /// All the users' words (what keywords and search read first).
    pub fn user_text(&self) -> String {
        self.turns.iter().filter(|t| t.role == "user").map(|t| t.message.as_str()).collect::<Vec<_>>().join("\n")
    }
}
