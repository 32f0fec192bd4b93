//! Call events (every provider webhook, kept once): the contract both
//! backends implement, the event filter and its cursor.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::{CallEvent, CallId, Source};

use crate::{Cursor, Page, PageRequest, StoreResult};

/// Filters of `GET /events`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventFilter {
    /// Exact event type, or a prefix when it ends with `.*` (e.g. `twilio.status.*`).
    pub event_type: Option<String>,
    /// Source.
    pub source: Option<Source>,
    /// `occurred_at >= this`.
    pub occurred_after: Option<DateTime<Utc>>,
    /// `occurred_at < this`.
    pub occurred_before: Option<DateTime<Utc>>,
}

impl EventFilter {
    /// The event-type prefix when the filter is a wildcard.
    pub fn type_prefix(&self) -> Option<&str> {
        self.event_type.as_deref().and_then(|t| t.strip_suffix('*'))
    }

    /// Reference semantics.
    pub fn matches(&self, e: &CallEvent) -> bool {
        let type_ok = match (&self.event_type, self.type_prefix()) {
            (None, _) => true,
            (Some(_), Some(prefix)) => e.event_type.starts_with(prefix),
            (Some(t), None) => &e.event_type == t,
        };
        type_ok
            && self.source.is_none_or(|s| e.source == s)
            && self.occurred_after.is_none_or(|t| e.occurred_at >= t)
            && self.occurred_before.is_none_or(|t| e.occurred_at < t)
    }
}

/// Sort name of event lists (chronological).
pub const EVENT_SORT: &str = "occurred_at";

/// The cursor pointing after `event` in chronological order.
pub fn event_cursor(e: &CallEvent) -> Cursor {
    Cursor { sort: EVENT_SORT.into(), key: e.occurred_at.timestamp_millis(), id: e.id.to_string() }
}

/// A webhook's event before we know which call it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Our id of the event.
    pub id: switchboard_domain::EventId,
    /// Who sent it.
    pub source: Source,
    /// Dotted type.
    pub event_type: String,
    /// Provider time.
    pub occurred_at: DateTime<Utc>,
    /// Receipt time.
    pub received_at: DateTime<Utc>,
    /// Unique per logical event.
    pub dedupe_key: String,
    /// Provider ordering number.
    pub sequence: Option<i64>,
    /// Body, secrets stripped.
    pub payload: serde_json::Value,
}

impl NewEvent {
    /// The stored event, attached to `call_id`.
    pub fn for_call(self, call_id: CallId) -> CallEvent {
        CallEvent {
            id: self.id,
            call_id,
            source: self.source,
            event_type: self.event_type,
            occurred_at: self.occurred_at,
            received_at: self.received_at,
            dedupe_key: self.dedupe_key,
            sequence: self.sequence,
            payload: self.payload,
        }
    }
}

/// Call events: every webhook kept once.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Inserts the event unless one with the same `dedupe_key` exists.
    /// Returns `true` if inserted, `false` for a duplicate (not an error).
    async fn insert_event(&self, event: &CallEvent) -> StoreResult<bool>;

    /// Whether an event with this dedupe key is stored.
    async fn event_exists(&self, dedupe_key: &str) -> StoreResult<bool>;

    /// Events of one call, chronological (`occurred_at`, then id).
    async fn list_call_events(&self, call_id: &CallId, page: &PageRequest) -> StoreResult<Page<CallEvent>>;

    /// Events across calls, chronological, filtered.
    async fn list_events(&self, filter: &EventFilter, page: &PageRequest) -> StoreResult<Page<CallEvent>>;
}

/// Decodes an event-list cursor.
pub fn decode_event_cursor(page: &PageRequest) -> StoreResult<Option<Cursor>> {
    page.cursor.as_deref().map(|c| Cursor::decode(c, EVENT_SORT)).transpose()
}
