//! Call events: every webhook (and every change Switchboard makes itself) is
//! kept as one event, keyed by a dedupe key so that a replay stores nothing new.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CallId, EventId, Source};

/// One stored event of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// Our id of the event.
    pub id: EventId,
    /// The call the event belongs to.
    pub call_id: CallId,
    /// Who sent it.
    pub source: Source,
    /// Dotted type, e.g. `twilio.status.ringing`, `twilio.amd`.
    pub event_type: String,
    /// When the provider says it happened (or when we received it, if the provider gives no time).
    pub occurred_at: DateTime<Utc>,
    /// When Switchboard received it.
    pub received_at: DateTime<Utc>,
    /// Unique per logical event: a replay of the same webhook has the same key.
    pub dedupe_key: String,
    /// Provider ordering number (Twilio `SequenceNumber`), when there is one.
    pub sequence: Option<i64>,
    /// The webhook body, with secrets stripped.
    pub payload: serde_json::Value,
}
