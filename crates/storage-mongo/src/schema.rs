//! Collections, `$jsonSchema` validators and indexes, in one place. `migrate`
//! creates what is missing and updates a validator that differs; drift
//! checking compares the live server with these definitions.
//!
//! Index design (equality, sort, range): every list filter is an equality
//! field followed by the sort key (`started_at`, `_id` tie-breaker); the
//! `started_after`/`started_before` range is on the sort key itself, so one
//! index serves filter, sort and range without an in-memory sort.

use mongodb::IndexModel;
use mongodb::bson::{Document, doc};
use mongodb::options::IndexOptions;
use switchboard_domain::{AnsweredBy, CallStatus, Direction, Source};

/// Collection names.
pub(crate) const CALLS: &str = "calls";
/// Collection names.
pub(crate) const CALL_EVENTS: &str = "call_events";

fn strings<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|x| f(*x)).collect()
}

fn date() -> Document {
    doc! { "bsonType": "date" }
}

fn long(min: i64) -> Document {
    doc! { "bsonType": ["int", "long"], "minimum": min }
}

fn text(max: i32) -> Document {
    doc! { "bsonType": "string", "maxLength": max }
}

/// Validators per collection.
pub(crate) fn validators() -> Vec<(&'static str, Document)> {
    let statuses = strings(CallStatus::ALL, CallStatus::as_str);
    let directions = strings(Direction::ALL, Direction::as_str);
    let amd = strings(AnsweredBy::ALL, AnsweredBy::as_str);
    let sources = strings(Source::ALL, Source::as_str);
    let calls = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "status", "started_at", "created_at", "updated_at", "version"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
            "call_sid": { "bsonType": "string", "minLength": 2, "maxLength": 64 },
            "conversation_id": { "bsonType": "string", "minLength": 1, "maxLength": 128 },
            "account_sid": text(64),
            "direction": { "enum": directions },
            "status": { "enum": statuses },
            "from": text(256),
            "to": text(256),
            "campaign_id": text(64),
            "contact_id": text(64),
            "enrollment_id": text(64),
            "agent_id": text(128),
            "answered_by": { "enum": amd },
            "started_at": date(),
            "answered_at": date(),
            "ended_at": date(),
            "duration_secs": long(0),
            "sip_response_code": long(0),
            "price": text(32),
            "price_unit": text(8),
            "last_sequence": long(0),
            "status_source": { "enum": sources.clone() },
            "telephony_source": { "enum": sources.clone() },
            "conversation_source": { "enum": sources.clone() },
            "conversation_status": text(32),
            "call_successful": text(32),
            "transcript_summary": { "bsonType": "string" },
            "termination_reason": { "bsonType": "string" },
            "conversation_duration_secs": long(0),
            "cost_credits": long(0),
            "created_at": date(),
            "updated_at": date(),
            "version": long(1),
        }
    }};
    let events = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "call_id", "source", "event_type", "occurred_at", "received_at", "dedupe_key", "payload"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^evt_[0-9a-f]{32}$" },
            "call_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
            "source": { "enum": sources },
            "event_type": { "bsonType": "string", "minLength": 1, "maxLength": 128 },
            "occurred_at": date(),
            "received_at": date(),
            "dedupe_key": { "bsonType": "string", "minLength": 1, "maxLength": 512 },
            "sequence": long(0),
            "payload": { "bsonType": "object" },
        }
    }};
    vec![(CALLS, calls), (CALL_EVENTS, events)]
}

fn index(name: &str, keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build()
}

fn unique_present(name: &str, field: &str) -> IndexModel {
    IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .unique(true)
                .partial_filter_expression(doc! { field: { "$type": "string" } })
                .build(),
        )
        .build()
}

fn by_started(name: &str, field: &str) -> IndexModel {
    index(name, doc! { field: 1, "started_at": -1, "_id": -1 })
}

/// Indexes per collection (by name; `_id_` is implicit).
pub(crate) fn indexes() -> Vec<(&'static str, IndexModel)> {
    let active: Vec<&str> = strings(CallStatus::ACTIVE, CallStatus::as_str);
    vec![
        (CALLS, unique_present("call_sid_uq", "call_sid")),
        (CALLS, unique_present("conversation_id_uq", "conversation_id")),
        (CALLS, index("started", doc! { "started_at": -1, "_id": -1 })),
        (CALLS, index("created", doc! { "created_at": -1, "_id": -1 })),
        (CALLS, by_started("status_started", "status")),
        (CALLS, by_started("direction_started", "direction")),
        (CALLS, by_started("campaign_started", "campaign_id")),
        (CALLS, index("campaign_status_started", doc! { "campaign_id": 1, "status": 1, "started_at": -1, "_id": -1 })),
        (CALLS, by_started("contact_started", "contact_id")),
        (CALLS, by_started("agent_started", "agent_id")),
        (CALLS, by_started("from_started", "from")),
        (CALLS, by_started("to_started", "to")),
        (CALLS, by_started("answered_by_started", "answered_by")),
        (
            CALLS,
            IndexModel::builder()
                .keys(doc! { "status": 1, "updated_at": 1 })
                .options(
                    IndexOptions::builder()
                        .name("active".to_owned())
                        .partial_filter_expression(doc! { "status": { "$in": active } })
                        .build(),
                )
                .build(),
        ),
        (
            CALL_EVENTS,
            IndexModel::builder()
                .keys(doc! { "dedupe_key": 1 })
                .options(IndexOptions::builder().name("dedupe_uq".to_owned()).unique(true).build())
                .build(),
        ),
        (CALL_EVENTS, index("call_occurred", doc! { "call_id": 1, "occurred_at": 1, "_id": 1 })),
        (CALL_EVENTS, index("occurred", doc! { "occurred_at": 1, "_id": 1 })),
        (CALL_EVENTS, index("type_occurred", doc! { "event_type": 1, "occurred_at": 1, "_id": 1 })),
        (CALL_EVENTS, index("source_occurred", doc! { "source": 1, "occurred_at": 1, "_id": 1 })),
    ]
}
