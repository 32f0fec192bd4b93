//! BSON documents of each collection, converted to and from domain types here
//! and only here. Optional fields are left out of the document when empty
//! (never stored as null), which is what the partial unique indexes on
//! `call_sid` / `conversation_id` and the `$jsonSchema` validators expect.
//!
//! Also the helpers every area's queries share: instants as BSON dates
//! ([`bson_date`], [`chrono_date`]) and keyset-cursor filters ([`keyset`], [`and`]).

use mongodb::bson::{Bson, DateTime as BsonDate, Document, doc};
use serde::{Deserialize, Serialize};
use switchboard_domain::time::from_millis;
use switchboard_domain::{Call, CallEvent, CallId, CampaignId, ContactId, EnrollmentId, EventId, IdError};
use switchboard_storage::StoreError;

/// An instant as stored: a BSON date (milliseconds), never a string.
pub(crate) fn bson_date(t: chrono::DateTime<chrono::Utc>) -> BsonDate {
    BsonDate::from_millis(t.timestamp_millis())
}

/// A stored BSON date as an instant.
pub(crate) fn chrono_date(t: BsonDate) -> chrono::DateTime<chrono::Utc> {
    from_millis(t.timestamp_millis())
}

/// `(key, _id) > / < (k, id)` as a query: `{$or: [{key: {$gt: k}}, {key: k, _id: {$gt: id}}]}`.
pub(crate) fn keyset(key: &str, op: &str, k: i64, id: &str) -> Document {
    let k = BsonDate::from_millis(k);
    doc! { "$or": [ { key: { op: k } }, { key: k, "_id": { op: id } } ] }
}

/// `base AND extra` (just `extra` when `base` is empty).
pub(crate) fn and(mut base: Document, extra: Document) -> Document {
    if base.is_empty() {
        return extra;
    }
    let prior = std::mem::take(&mut base);
    doc! { "$and": [prior, extra] }
}

fn word<T: ToString>(v: Option<T>) -> Option<String> {
    v.map(|x| x.to_string())
}

fn parse<T: std::str::FromStr<Err = String>>(field: &str, v: Option<String>) -> Result<Option<T>, StoreError> {
    v.map(|s| s.parse::<T>().map_err(|e| StoreError::Other(anyhow::anyhow!("stored `{field}` is invalid: {e}"))))
        .transpose()
}

/// A stored id of another record: a corrupt value is a store error, not a panic or a silent `None`.
fn link<T>(field: &str, v: Option<String>, parse: fn(&str) -> Result<T, IdError>) -> Result<Option<T>, StoreError> {
    v.map(|s| parse(&s).map_err(|e| StoreError::Other(anyhow::anyhow!("stored `{field}` is invalid: {e}")))).transpose()
}

/// A document of `calls`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CallDoc {
    #[serde(rename = "_id")]
    pub(crate) id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) call_sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) conversation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    account_sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    direction: Option<String>,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    from: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    campaign_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    enrollment_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    agent_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    answered_by: Option<String>,
    started_at: BsonDate,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    answered_at: Option<BsonDate>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    ended_at: Option<BsonDate>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    duration_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sip_response_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    price: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    price_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    last_sequence: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    status_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    telephony_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    conversation_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    conversation_status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    call_successful: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    transcript_summary: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    termination_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    conversation_duration_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    cost_credits: Option<i64>,
    created_at: BsonDate,
    updated_at: BsonDate,
    pub(crate) version: i64,
    /// A merge in progress without a transaction (standalone server): the
    /// record being absorbed and its provider keys, held here (not unique)
    /// until the absorbed record is deleted and the keys move to the unique
    /// fields. Lookups by key also look here, so the keys are never lost.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) absorbing: Option<AbsorbingDoc>,
}

/// See [`CallDoc::absorbing`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct AbsorbingDoc {
    /// The absorbed record's id.
    pub(crate) id: String,
    /// Its Call SID, when it had one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) call_sid: Option<String>,
    /// Its conversation id, when it had one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub(crate) conversation_id: Option<String>,
}

impl CallDoc {
    /// The record as readers see it: with the keys of a merge in progress.
    pub(crate) fn presented(self) -> Result<Call, StoreError> {
        let pending = self.absorbing.clone();
        let mut call = Call::try_from(self)?;
        if let Some(p) = pending {
            if call.call_sid.is_none() {
                call.call_sid = p.call_sid;
            }
            if call.conversation_id.is_none() {
                call.conversation_id = p.conversation_id;
            }
        }
        Ok(call)
    }
}

impl From<&Call> for CallDoc {
    fn from(x: &Call) -> Self {
        CallDoc {
            id: x.id.to_string(),
            call_sid: x.call_sid.clone(),
            conversation_id: x.conversation_id.clone(),
            account_sid: x.account_sid.clone(),
            direction: word(x.direction),
            status: x.status.as_str().into(),
            from: x.from.clone(),
            to: x.to.clone(),
            campaign_id: word(x.campaign_id.as_ref()),
            contact_id: word(x.contact_id.as_ref()),
            enrollment_id: word(x.enrollment_id.as_ref()),
            agent_id: x.agent_id.clone(),
            answered_by: word(x.answered_by),
            started_at: bson_date(x.started_at),
            answered_at: x.answered_at.map(bson_date),
            ended_at: x.ended_at.map(bson_date),
            duration_secs: x.duration_secs,
            sip_response_code: x.sip_response_code,
            price: x.price.clone(),
            price_unit: x.price_unit.clone(),
            last_sequence: x.last_sequence,
            status_source: word(x.status_source),
            telephony_source: word(x.telephony_source),
            conversation_source: word(x.conversation_source),
            conversation_status: x.conversation_status.clone(),
            call_successful: x.call_successful.clone(),
            transcript_summary: x.transcript_summary.clone(),
            termination_reason: x.termination_reason.clone(),
            conversation_duration_secs: x.conversation_duration_secs,
            cost_credits: x.cost_credits,
            created_at: bson_date(x.created_at),
            updated_at: bson_date(x.updated_at),
            version: x.version,
            absorbing: None,
        }
    }
}

impl TryFrom<CallDoc> for Call {
    type Error = StoreError;
    fn try_from(x: CallDoc) -> Result<Call, StoreError> {
        Ok(Call {
            id: CallId::parse(&x.id).map_err(|e| StoreError::Other(e.into()))?,
            call_sid: x.call_sid,
            conversation_id: x.conversation_id,
            account_sid: x.account_sid,
            direction: parse("direction", x.direction)?,
            status: parse("status", Some(x.status))?.expect("Some in, Some out"),
            from: x.from,
            to: x.to,
            campaign_id: link("campaign_id", x.campaign_id, CampaignId::parse)?,
            contact_id: link("contact_id", x.contact_id, ContactId::parse)?,
            enrollment_id: link("enrollment_id", x.enrollment_id, EnrollmentId::parse)?,
            agent_id: x.agent_id,
            answered_by: parse("answered_by", x.answered_by)?,
            started_at: chrono_date(x.started_at),
            answered_at: x.answered_at.map(chrono_date),
            ended_at: x.ended_at.map(chrono_date),
            duration_secs: x.duration_secs,
            sip_response_code: x.sip_response_code,
            price: x.price,
            price_unit: x.price_unit,
            last_sequence: x.last_sequence,
            status_source: parse("status_source", x.status_source)?,
            telephony_source: parse("telephony_source", x.telephony_source)?,
            conversation_source: parse("conversation_source", x.conversation_source)?,
            conversation_status: x.conversation_status,
            call_successful: x.call_successful,
            transcript_summary: x.transcript_summary,
            termination_reason: x.termination_reason,
            conversation_duration_secs: x.conversation_duration_secs,
            cost_credits: x.cost_credits,
            created_at: chrono_date(x.created_at),
            updated_at: chrono_date(x.updated_at),
            version: x.version,
        })
    }
}

/// A document of `call_events`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EventDoc {
    #[serde(rename = "_id")]
    id: String,
    call_id: String,
    source: String,
    event_type: String,
    occurred_at: BsonDate,
    received_at: BsonDate,
    dedupe_key: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sequence: Option<i64>,
    payload: Bson,
}

impl TryFrom<&CallEvent> for EventDoc {
    type Error = StoreError;
    fn try_from(e: &CallEvent) -> Result<EventDoc, StoreError> {
        Ok(EventDoc {
            id: e.id.to_string(),
            call_id: e.call_id.to_string(),
            source: e.source.as_str().into(),
            event_type: e.event_type.clone(),
            occurred_at: bson_date(e.occurred_at),
            received_at: bson_date(e.received_at),
            dedupe_key: e.dedupe_key.clone(),
            sequence: e.sequence,
            payload: Bson::try_from(e.payload.clone())
                .map_err(|err| StoreError::Invalid(format!("event payload cannot be stored as BSON: {err}")))?,
        })
    }
}

impl TryFrom<EventDoc> for CallEvent {
    type Error = StoreError;
    fn try_from(x: EventDoc) -> Result<CallEvent, StoreError> {
        Ok(CallEvent {
            id: EventId::parse(&x.id).map_err(|e| StoreError::Other(e.into()))?,
            call_id: CallId::parse(&x.call_id).map_err(|e| StoreError::Other(e.into()))?,
            source: parse("source", Some(x.source))?.expect("Some in, Some out"),
            event_type: x.event_type,
            occurred_at: chrono_date(x.occurred_at),
            received_at: chrono_date(x.received_at),
            dedupe_key: x.dedupe_key,
            sequence: x.sequence,
            payload: x.payload.into_relaxed_extjson(),
        })
    }
}
