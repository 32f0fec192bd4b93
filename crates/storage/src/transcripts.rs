//! Recordings and transcripts (Phase 3): the contract both backends implement.
//!
//! - A recording is unique per (provider, provider_id); `upsert_recording`
//!   merges a newer report into the stored one ([`Recording::merge`]: status
//!   only moves forward, fields are filled, never blanked), so replays and
//!   out-of-order callbacks are harmless.
//! - A transcript is unique per `conversation_id`; `upsert_transcript`
//!   replaces the stored one unless the stored one is final and the new one
//!   is not (a late "processing" never overwrites "done"). It keeps the stored
//!   analysis when the new one has none.
//! - Search: [`TranscriptQuery`] full text over turn messages and summaries
//!   with filters; which documents match is the same on every backend
//!   (ranking may differ).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::recording::RecordingProvider;
use switchboard_domain::{CallId, CampaignId, ContactId, Recording, RecordingId, Transcript, TranscriptId};

use crate::{Page, PageRequest, StoreResult};

/// Filters of a transcript search or list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptFilter {
    /// Campaign.
    pub campaign_id: Option<CampaignId>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Contact.
    pub contact_id: Option<ContactId>,
    /// Started at or after.
    pub started_after: Option<DateTime<Utc>>,
    /// Started before.
    pub started_before: Option<DateTime<Utc>>,
    /// ElevenLabs' verdict.
    pub call_successful: Option<String>,
    /// Overall sentiment at least.
    pub sentiment_min: Option<f64>,
    /// Overall sentiment at most.
    pub sentiment_max: Option<f64>,
    /// A criterion with this id had this result: (id, result).
    pub criterion: Option<(String, String)>,
}

/// A parsed full-text query: every group must match (AND); a group matches
/// when any of its terms does (OR); `not` terms must not match. A term is a
/// word, a `prefix*`, or a "quoted phrase".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextQuery {
    /// AND of ORs.
    pub all: Vec<Vec<Term>>,
    /// None of these.
    pub not: Vec<Term>,
}

/// One search term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word (case-insensitive).
    Word(String),
    /// Words starting with this.
    Prefix(String),
    /// Consecutive words.
    Phrase(Vec<String>),
}

/// How to order search hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchOrder {
    /// Best match first (BM25 on SQLite, `textScore` on MongoDB).
    #[default]
    Relevance,
    /// Newest first.
    Newest,
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The transcript (turns included).
    pub transcript: Transcript,
    /// Relevance (higher is better; backend-specific scale).
    pub score: f64,
    /// Index of the best matching turn (`None`: the summary matched).
    pub turn: Option<usize>,
}

/// Recordings and transcripts.
#[async_trait]
pub trait TranscriptStore: Send + Sync {
    /// Inserts or merges a recording (by provider and provider id); returns the stored one.
    async fn upsert_recording(&self, r: &Recording) -> StoreResult<Recording>;
    /// A recording by id.
    async fn get_recording(&self, id: &RecordingId) -> StoreResult<Option<Recording>>;
    /// A recording by provider key.
    async fn find_recording(&self, provider: RecordingProvider, provider_id: &str) -> StoreResult<Option<Recording>>;
    /// The recordings of a call, oldest first.
    async fn recordings_of_call(&self, call: &CallId) -> StoreResult<Vec<Recording>>;
    /// Inserts or replaces a transcript (by conversation id, rules above); returns the stored one.
    async fn upsert_transcript(&self, t: &Transcript) -> StoreResult<Transcript>;
    /// A transcript by id.
    async fn get_transcript(&self, id: &TranscriptId) -> StoreResult<Option<Transcript>>;
    /// A transcript by conversation.
    async fn find_transcript(&self, conversation_id: &str) -> StoreResult<Option<Transcript>>;
    /// The transcript of a call.
    async fn transcript_of_call(&self, call: &CallId) -> StoreResult<Option<Transcript>>;
    /// Transcripts matching `filter`, newest first.
    async fn list_transcripts(&self, filter: &TranscriptFilter, page: &PageRequest) -> StoreResult<Page<Transcript>>;
    /// Full-text search with filters.
    async fn search_transcripts(
        &self,
        q: &TextQuery,
        filter: &TranscriptFilter,
        order: SearchOrder,
        page: &PageRequest,
    ) -> StoreResult<Page<SearchHit>>;
}
