//! Calls (one merged record per call): the contract both backends
//! implement. Events are in [`crate::events`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::{
    AnsweredBy, Call, CallEvent, CallId, CallStatus, CallUpdate, CampaignId, ContactId, Direction,
};

use crate::{Cursor, Page, PageRequest, StoreError, StoreResult};

/// Filters of `GET /calls`. Empty fields do not filter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CallFilter {
    /// Any of these statuses.
    pub statuses: Vec<CallStatus>,
    /// Direction.
    pub direction: Option<Direction>,
    /// Campaign.
    pub campaign_id: Option<CampaignId>,
    /// Contact.
    pub contact_id: Option<ContactId>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Caller number (exact).
    pub from: Option<String>,
    /// Called number (exact).
    pub to: Option<String>,
    /// AMD result.
    pub answered_by: Option<AnsweredBy>,
    /// `started_at >= this`.
    pub started_after: Option<DateTime<Utc>>,
    /// `started_at < this`.
    pub started_before: Option<DateTime<Utc>>,
}

impl CallFilter {
    /// Whether `call` passes the filter (the reference semantics both
    /// backends must match; the conformance suite compares against it).
    pub fn matches(&self, call: &Call) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&call.status))
            && self.direction.is_none_or(|d| call.direction == Some(d))
            && self.campaign_id.as_ref().is_none_or(|v| call.campaign_id.as_ref() == Some(v))
            && self.contact_id.as_ref().is_none_or(|v| call.contact_id.as_ref() == Some(v))
            && self.agent_id.as_ref().is_none_or(|v| call.agent_id.as_ref() == Some(v))
            && self.from.as_ref().is_none_or(|v| call.from.as_ref() == Some(v))
            && self.to.as_ref().is_none_or(|v| call.to.as_ref() == Some(v))
            && self.answered_by.is_none_or(|a| call.answered_by == Some(a))
            && self.started_after.is_none_or(|t| call.started_at >= t)
            && self.started_before.is_none_or(|t| call.started_at < t)
    }
}

/// Sort orders of `GET /calls`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CallSort {
    /// Newest first (default).
    #[default]
    StartedAtDesc,
    /// Oldest first.
    StartedAtAsc,
    /// Most recently created record first.
    CreatedAtDesc,
}

impl CallSort {
    /// Wire name (`-started_at`, `started_at`, `-created_at`).
    pub fn as_str(self) -> &'static str {
        match self {
            CallSort::StartedAtDesc => "-started_at",
            CallSort::StartedAtAsc => "started_at",
            CallSort::CreatedAtDesc => "-created_at",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<CallSort> {
        [CallSort::StartedAtDesc, CallSort::StartedAtAsc, CallSort::CreatedAtDesc].into_iter().find(|c| c.as_str() == s)
    }

    /// Whether the order is descending.
    pub fn descending(self) -> bool {
        !matches!(self, CallSort::StartedAtAsc)
    }

    /// The sort key of a call, in Unix milliseconds.
    pub fn key_of(self, call: &Call) -> i64 {
        match self {
            CallSort::StartedAtDesc | CallSort::StartedAtAsc => call.started_at.timestamp_millis(),
            CallSort::CreatedAtDesc => call.created_at.timestamp_millis(),
        }
    }

    /// The cursor pointing after `call`.
    pub fn cursor_of(self, call: &Call) -> Cursor {
        Cursor { sort: self.as_str().into(), key: self.key_of(call), id: call.id.to_string() }
    }

    /// Decodes a page request's cursor for this sort.
    pub fn decode(self, page: &PageRequest) -> StoreResult<Option<Cursor>> {
        page.cursor.as_deref().map(|c| Cursor::decode(c, self.as_str())).transpose()
    }
}

/// Result of [`CallStore::upsert_call`].
#[derive(Debug, Clone, PartialEq)]
pub struct UpsertOutcome {
    /// The record after the merge.
    pub call: Call,
    /// The record did not exist before.
    pub created: bool,
    /// Anything changed (false for a replay).
    pub changed: bool,
    /// Another record was merged into this one and removed (the two provider
    /// keys had first been seen on two records).
    pub absorbed: Option<CallId>,
}

/// Result of [`crate::Storage::record_webhook`].
#[derive(Debug, Clone, PartialEq)]
pub enum WebhookOutcome {
    /// The event was stored before: nothing was written.
    Replay,
    /// The call was merged and the event stored.
    Applied(Box<UpsertOutcome>),
}

/// Calls: one merged record per call.
#[async_trait]
pub trait CallStore: Send + Sync {
    /// Finds the call by any key in `update` (id, `call_sid`, `conversation_id`),
    /// creates it if none matches, and merges `update` into it by
    /// [`Call::apply`].
    ///
    /// Guarantees:
    /// - **Idempotent**: the same update twice leaves the record unchanged.
    /// - **One record per call**: concurrent upserts for the same key never
    ///   create two records; if the keys of `update` match two records (one
    ///   created from each provider before they were linked), the younger is
    ///   merged into the older, its events re-pointed, and it is removed.
    /// - **Atomic**: a record is never half-written; a concurrent writer's
    ///   change is never lost (compare-and-swap on `version`).
    async fn upsert_call(&self, update: &CallUpdate) -> StoreResult<UpsertOutcome>;

    /// A call by our id.
    async fn get_call(&self, id: &CallId) -> StoreResult<Call>;

    /// A call by Twilio Call SID.
    async fn find_call_by_sid(&self, call_sid: &str) -> StoreResult<Option<Call>>;

    /// A call by ElevenLabs conversation id.
    async fn find_call_by_conversation(&self, conversation_id: &str) -> StoreResult<Option<Call>>;

    /// Filtered, sorted, keyset-paginated list.
    async fn list_calls(&self, filter: &CallFilter, sort: CallSort, page: &PageRequest) -> StoreResult<Page<Call>>;

    /// Bulk insert for seeding and imports of synthetic data. All-or-nothing
    /// per call on SQLite (one transaction); on MongoDB unordered bulk inserts,
    /// where a duplicate key fails the batch with `Conflict`.
    async fn insert_calls_bulk(&self, calls: &[Call], events: &[CallEvent]) -> StoreResult<()>;

    /// Number of calls (for reports and benchmarks).
    async fn count_calls(&self) -> StoreResult<u64>;
}

/// Rejects an update that names no key, before any backend work.
pub fn require_key(update: &CallUpdate) -> StoreResult<()> {
    if update.has_key() {
        Ok(())
    } else {
        Err(StoreError::Invalid("a call update needs an id, a call_sid or a conversation_id".into()))
    }
}
