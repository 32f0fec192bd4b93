//! Collections, `$jsonSchema` validators and indexes, in one place. `migrate`
//! creates what is missing and updates a validator that differs; drift
//! checking compares the live server with these definitions.
//!
//! Index design (equality, sort, range): every list filter is an equality
//! field followed by the sort key (`started_at`, `_id` tie-breaker); the
//! `started_after`/`started_before` range is on the sort key itself, so one
//! index serves filter, sort and range without an in-memory sort.

use mongodb::IndexModel;
use mongodb::bson::{self, Document, doc};
use mongodb::options::IndexOptions;
use switchboard_domain::campaign::DialMode;
use switchboard_domain::enrollment::HISTORY;
use switchboard_domain::{AnsweredBy, CallStatus, CampaignStatus, Direction, EnrollmentStatus, Outcome, Source};

/// Collection names.
pub(crate) const CALLS: &str = "calls";
/// Collection names.
pub(crate) const CALL_EVENTS: &str = "call_events";
/// Collection names.
pub(crate) const CONTACTS: &str = "contacts";
/// Collection names.
pub(crate) const CAMPAIGNS: &str = "campaigns";
/// Collection names.
pub(crate) const ENROLLMENTS: &str = "campaign_contacts";
/// Collection names: the import journal and the before-images it keeps.
pub(crate) const IMPORTS: &str = "imports";
/// Collection names.
pub(crate) const IMPORT_UNDO: &str = "import_undo";
/// Collection names: leases and visible state of background jobs.
pub(crate) const JOB_LEASES: &str = "job_leases";
/// Collection names: Google Sheets links and their per-row sync state.
pub(crate) const SHEET_LINKS: &str = "sheet_links";
/// Collection names.
pub(crate) const SHEET_ROWS: &str = "sheet_rows";
/// Collection names: recordings (Twilio recordings, ElevenLabs audio).
pub(crate) const RECORDINGS: &str = "recordings";
/// Collection names: transcripts (turns, analysis, criteria) with their text index.
pub(crate) const TRANSCRIPTS: &str = "transcripts";
/// Name of the text index over `turns.message` and `summary`.
pub const TRANSCRIPT_TEXT_INDEX: &str = "text_search";
/// Collection names: rollup rows, one per bucket and scope.
pub(crate) const ANALYTICS: &str = "analytics";
/// Collection names: the rollup job's watermark (`_id: "rollups"`).
pub(crate) const ANALYTICS_STATE: &str = "analytics_state";
/// Collection names: the live feed's change-stream resume token (`_id: "live_changes"`).
pub(crate) const LIVE_STATE: &str = "live_state";
/// Name of the unique index of `analytics` (the `$merge` key).
pub const ANALYTICS_KEY_INDEX: &str = "scope_bucket_uq";
/// The fields of [`ANALYTICS_KEY_INDEX`], in order: what `$merge` matches on.
pub(crate) const ANALYTICS_KEY: [&str; 5] = ["scope_kind", "scope_id", "interval", "tz", "bucket_start"];

fn strings<T: Copy>(all: &[T], f: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    all.iter().map(|x| f(*x)).collect()
}

fn date() -> Document {
    doc! { "bsonType": "date" }
}

fn string() -> Document {
    doc! { "bsonType": "string" }
}

/// Any 32- or 64-bit integer (the domain's `i64`).
fn int() -> Document {
    doc! { "bsonType": ["int", "long"] }
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
    let absorbing = doc! { "bsonType": "object", "required": ["id"], "properties": {
        "id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
        "call_sid": string(),
        "conversation_id": string(),
    } };
    // Bounds are the domain's own (crates/domain): `Call` puts no length limit
    // on any of its strings and no sign on its integers, so neither does the
    // validator (a stricter one made MongoDB reject writes SQLite accepts).
    let calls = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "status", "started_at", "created_at", "updated_at", "version"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
            "call_sid": string(),
            "conversation_id": string(),
            "account_sid": string(),
            "direction": { "enum": directions },
            "status": { "enum": statuses },
            "from": string(),
            "to": string(),
            "campaign_id": string(),
            "contact_id": string(),
            "enrollment_id": string(),
            "agent_id": string(),
            "answered_by": { "enum": amd },
            "started_at": date(),
            "answered_at": date(),
            "ended_at": date(),
            "duration_secs": int(),
            "sip_response_code": int(),
            "price": string(),
            "price_unit": string(),
            "last_sequence": int(),
            "status_source": { "enum": sources.clone() },
            "telephony_source": { "enum": sources.clone() },
            "conversation_source": { "enum": sources.clone() },
            "conversation_status": string(),
            "call_successful": string(),
            "transcript_summary": string(),
            "termination_reason": string(),
            "conversation_duration_secs": int(),
            "cost_credits": int(),
            "created_at": date(),
            "updated_at": date(),
            "version": long(1),
            "absorbing": absorbing,
        }
    }};
    let events = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "call_id", "source", "event_type", "occurred_at", "received_at", "dedupe_key", "payload"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^evt_[0-9a-f]{32}$" },
            "call_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
            "source": { "enum": sources },
            "event_type": string(),
            "occurred_at": date(),
            "received_at": date(),
            "dedupe_key": string(),
            "sequence": int(),
            "payload": { "bsonType": "object" },
        }
    }};
    let contacts = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "phone", "tags", "custom", "dnc", "created_at", "updated_at", "version"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^con_[0-9a-f]{32}$" },
            "phone": { "bsonType": "string", "pattern": "^\\+[1-9][0-9]{6,14}$" },
            "region": string(),
            // The domain: a name is at most 200 characters; its lower-case copy can be longer
            // (lower-casing may add characters), so it has no bound of its own.
            "name": text(200),
            "name_lc": string(),
            // The domain: at most 254 bytes, hence at most 254 characters.
            "email": text(254),
            "email_lc": { "bsonType": "string", "pattern": "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$" },
            // The domain: 1..=64 bytes, hence at most 64 characters.
            "tags": { "bsonType": "array", "items": text(64) },
            "custom": { "bsonType": "object" },
            "time_zone": string(),
            "location": { "bsonType": "object", "required": ["type", "coordinates"], "properties": {
                "type": { "enum": ["Point"] },
                "coordinates": { "bsonType": "array", "minItems": 2, "maxItems": 2, "items": { "bsonType": "double" } } } },
            "dnc": { "bsonType": "bool" },
            "do_not_call": { "bsonType": "object", "required": ["reason", "since"], "properties": {
                "reason": string(), "since": date() } },
            "source": string(),
            "created_at": date(),
            "updated_at": date(),
            "version": long(1),
        }
    }};
    let campaign_statuses = strings(CampaignStatus::ALL, CampaignStatus::as_str);
    let modes = strings(DialMode::ALL, DialMode::as_str);
    let campaigns = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "name", "status", "agent", "schedule", "pacing", "retry", "dial_mode", "inflight",
                     "max_concurrent", "interval_ms", "next_dial_at", "dials", "created_at", "updated_at", "version"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^cmp_[0-9a-f]{32}$" },
            "name": { "bsonType": "string", "minLength": 1, "maxLength": 200 },
            "status": { "enum": campaign_statuses },
            "agent": { "bsonType": "object", "required": ["agent_id"] },
            "schedule": { "bsonType": "object", "required": ["windows", "holidays", "time_zone"], "properties": {
                "start_at": date(), "end_at": date() } },
            "pacing": { "bsonType": "object", "required": ["max_concurrent", "calls_per_minute"] },
            "retry": { "bsonType": "object", "required": ["max_attempts", "daily_cap"] },
            "dial_mode": { "enum": modes },
            "inflight": { "bsonType": "array", "items": { "bsonType": "string" } },
            "max_concurrent": { "bsonType": ["int", "long"], "minimum": 1, "maximum": 1000 },
            "interval_ms": long(0),
            "next_dial_at": date(),
            "dials": long(0),
            "created_at": date(),
            "updated_at": date(),
            "version": long(1),
        }
    }};
    let enrollment_statuses = strings(EnrollmentStatus::ALL, EnrollmentStatus::as_str);
    let outcomes = strings(Outcome::ALL, Outcome::as_str);
    // `maxItems` is the domain's `enrollment::HISTORY`.
    let history = doc! { "bsonType": "object", "required": ["n", "call_id", "at"], "properties": {
        "n": long(1),
        "call_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
        "at": date(),
        "outcome": { "enum": outcomes.clone() },
    } };
    let enrollments = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "campaign_id", "contact_id", "status", "attempts", "history", "next_attempt_at",
                     "lease_token", "created_at", "updated_at", "version"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^enr_[0-9a-f]{32}$" },
            "campaign_id": { "bsonType": "string", "pattern": "^cmp_[0-9a-f]{32}$" },
            "contact_id": { "bsonType": "string", "pattern": "^con_[0-9a-f]{32}$" },
            "status": { "enum": enrollment_statuses },
            "attempts": long(0),
            "history": { "bsonType": "array", "maxItems": HISTORY as i64, "items": history },
            "next_attempt_at": date(),
            "last_outcome": { "enum": outcomes },
            "lease": { "bsonType": "object", "required": ["owner", "expires_at"], "properties": {
                "owner": string(), "expires_at": date() } },
            "lease_token": long(0),
            "current_call_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
            "created_at": date(),
            "updated_at": date(),
            "version": long(1),
        }
    }};
    let imports = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "source", "state", "owner", "started_at", "heartbeat_at"],
        "properties": {
            "_id": { "bsonType": "string", "minLength": 1, "maxLength": 64 },
            "source": { "bsonType": "string", "minLength": 1, "maxLength": 256 },
            "state": { "enum": ["running", "committed", "rolled_back"] },
            "owner": string(),
            "started_at": date(),
            "heartbeat_at": date(),
        }
    }};
    let import_undo = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "import_id", "contact_id", "contact"],
        "properties": {
            "_id": string(),
            "import_id": { "bsonType": "string", "minLength": 1, "maxLength": 64 },
            "contact_id": { "bsonType": "string", "pattern": "^con_[0-9a-f]{32}$" },
            "contact": { "bsonType": "object" },
        }
    }};
    let nullable_date = || doc! { "bsonType": ["date", "null"] };
    let job_leases = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "fence"],
        "properties": {
            "_id": { "bsonType": "string", "minLength": 1, "maxLength": 128 },
            "owner": { "bsonType": ["string", "null"], "maxLength": 256 },
            "fence": long(1),
            "lease_expires_at": nullable_date(),
            "last_started_at": nullable_date(),
            "last_finished_at": nullable_date(),
            "last_error": { "bsonType": ["string", "null"] },
            "next_run_at": nullable_date(),
            "runs": long(0),
            "failures": long(0),
        }
    }};
    let status_fields = strings(switchboard_domain::sheet::StatusField::ALL, |f| f.as_str());
    let sheet_links = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "spreadsheet_id", "tab", "header_row", "mapping", "status_columns", "on_row_deleted",
            "poll_secs", "paused", "state", "created_at", "updated_at", "version"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^lnk_[0-9a-f]{32}$" },
            "spreadsheet_id": { "bsonType": "string", "pattern": "^[A-Za-z0-9_-]{10,128}$" },
            "tab": { "bsonType": "string", "minLength": 1, "maxLength": 100 },
            "header_row": { "bsonType": ["int", "long"], "minimum": 1, "maximum": 1000 },
            "campaign_id": { "bsonType": "string", "pattern": "^cmp_[0-9a-f]{32}$" },
            "mapping": { "bsonType": "object", "additionalProperties": { "bsonType": "string" } },
            "status_columns": { "bsonType": "object", "propertyNames": { "enum": status_fields },
                "additionalProperties": { "bsonType": "string", "minLength": 1 } },
            "on_row_deleted": { "enum": ["cancel", "keep"] },
            "poll_secs": { "bsonType": ["int", "long"], "minimum": 5, "maximum": 86400 },
            "paused": { "bsonType": "bool" },
            "state": { "bsonType": "object", "required": ["rows", "valid_rows", "rows_in", "rows_out", "pending_writebacks", "requests", "row_issues"],
                "properties": {
                    "status": { "enum": ["new", "ok", "error", "paused"] },
                    "last_version": long(0),
                    "last_sync_at": date(),
                    "last_success_at": date(),
                    "last_error": string(),
                    "rows": long(0), "valid_rows": long(0), "rows_in": long(0), "rows_out": long(0),
                    "pending_writebacks": long(0), "requests": long(0),
                    "row_issues": { "bsonType": "array", "maxItems": 100 },
                } },
            "created_at": date(),
            "updated_at": date(),
            "version": long(1),
        }
    }};
    let sheet_rows = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "link_id", "contact_id", "fingerprint", "row_hint", "seen_at"],
        "properties": {
            "_id": string(),
            "link_id": { "bsonType": "string", "pattern": "^lnk_[0-9a-f]{32}$" },
            "contact_id": { "bsonType": "string", "pattern": "^con_[0-9a-f]{32}$" },
            "fingerprint": { "bsonType": "string", "minLength": 1, "maxLength": 128 },
            "row_hint": long(1),
            "seen_at": date(),
        }
    }};
    let (recordings, transcripts) = transcript_validators();
    let (analytics, analytics_state) = analytics_validators();
    vec![
        (CALLS, calls),
        (CALL_EVENTS, events),
        (CONTACTS, contacts),
        (CAMPAIGNS, campaigns),
        (ENROLLMENTS, enrollments),
        (IMPORTS, imports),
        (IMPORT_UNDO, import_undo),
        (JOB_LEASES, job_leases),
        (SHEET_LINKS, sheet_links),
        (SHEET_ROWS, sheet_rows),
        (RECORDINGS, recordings),
        (TRANSCRIPTS, transcripts),
        (ANALYTICS, analytics),
        (ANALYTICS_STATE, analytics_state),
        (
            LIVE_STATE,
            doc! { "$jsonSchema": {
                "bsonType": "object",
                "required": ["_id", "token", "at"],
                "properties": {
                    "_id": { "bsonType": "string", "minLength": 1, "maxLength": 64 },
                    "token": { "bsonType": "string", "minLength": 1 },
                    "at": date(),
                }
            }},
        ),
    ]
}

/// Validators of `analytics` (one row per bucket and scope; `metrics` is the
/// serde form of `Metrics`, `built_at` the rebuild that wrote the row) and
/// `analytics_state` (the rollup watermark).
fn analytics_validators() -> (Document, Document) {
    use switchboard_storage::Interval;
    let analytics = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "scope_kind", "scope_id", "interval", "tz", "bucket_start", "calls", "metrics",
            "updated_at", "built_at"],
        "properties": {
            "scope_kind": { "bsonType": "string", "pattern": "^[a-z_]+$" },
            "scope_id": string(),
            "interval": { "enum": strings(&[Interval::Hour, Interval::Day], Interval::as_str) },
            "tz": { "bsonType": "string", "minLength": 1 },
            "bucket_start": date(),
            "calls": long(1),
            "metrics": { "bsonType": "object", "required": ["calls"] },
            "updated_at": date(),
            "built_at": { "bsonType": "objectId" },
        }
    }};
    let analytics_state = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "watermark"],
        "properties": {
            "_id": { "bsonType": "string", "minLength": 1, "maxLength": 64 },
            "watermark": date(),
        }
    }};
    (analytics, analytics_state)
}

/// Validators of `recordings` and `transcripts` (bounds are the domain's own).
fn transcript_validators() -> (Document, Document) {
    use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
    let nullable = |t: &str| doc! { "bsonType": [t, "null"] };
    let recordings = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "provider", "provider_id", "status", "created_at", "updated_at", "v"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^rec_[0-9a-f]{32}$" },
            "provider": { "enum": strings(RecordingProvider::ALL, RecordingProvider::as_str) },
            "provider_id": { "bsonType": "string", "minLength": 1, "maxLength": 256 },
            "call_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
            "call_sid": string(),
            "conversation_id": string(),
            "status": { "enum": strings(RecordingStatus::ALL, RecordingStatus::as_str) },
            "duration_secs": int(),
            "channels": int(),
            "source": string(),
            "track": string(),
            "started_at": date(),
            "media_url": string(),
            "format": string(),
            "error_code": string(),
            "deleted_at": date(),
            "created_at": date(),
            "updated_at": date(),
            "v": long(1),
        }
    }};
    let transcripts = doc! { "$jsonSchema": {
        "bsonType": "object",
        "required": ["_id", "conversation_id", "status", "turns", "criteria", "data_collection", "has_audio",
            "started_at", "created_at", "updated_at", "v"],
        "properties": {
            "_id": { "bsonType": "string", "pattern": "^trn_[0-9a-f]{32}$" },
            "conversation_id": { "bsonType": "string", "minLength": 1, "maxLength": 128 },
            "call_id": { "bsonType": "string", "pattern": "^call_[0-9a-f]{32}$" },
            "campaign_id": { "bsonType": "string", "pattern": "^cmp_[0-9a-f]{32}$" },
            "contact_id": { "bsonType": "string", "pattern": "^con_[0-9a-f]{32}$" },
            "agent_id": string(),
            "status": string(),
            "turns": { "bsonType": "array", "items": { "bsonType": "object", "required": ["role", "message"],
                "properties": { "role": string(), "message": string(), "time_in_call_secs": nullable("double"),
                    "interrupted": { "bsonType": "bool" } } } },
            "language": string(),
            "duration_secs": int(),
            "cost": int(),
            "termination_reason": string(),
            "call_successful": string(),
            "summary": string(),
            "criteria": { "bsonType": "array", "items": { "bsonType": "object", "required": ["id", "result"],
                "properties": { "id": string(), "result": string(), "rationale": nullable("string") } } },
            "data_collection": { "bsonType": "array", "items": { "bsonType": "object", "required": ["id"],
                "properties": { "id": string(), "rationale": nullable("string") } } },
            "has_audio": { "bsonType": "bool" },
            "started_at": date(),
            "analyzer_version": long(0),
            "sentiment": { "bsonType": ["double", "int", "long"] },
            "created_at": date(),
            "updated_at": date(),
            "v": long(1),
            "fts_turns": { "bsonType": "array", "items": string() },
            "fts_summary": string(),
        }
    }};
    (recordings, transcripts)
}

/// The text index: turn messages and summaries as the contract's words
/// (`fts_turns`, `fts_summary`, written beside `turns` and `summary`), no
/// language (no stemming, no stop words: `$text` only pre-selects, the exact
/// predicate runs after); a summary hit weighs twice a turn hit.
pub(crate) fn transcript_text_index() -> IndexModel {
    IndexModel::builder()
        .keys(doc! { "fts_turns": "text", "fts_summary": "text" })
        .options(
            IndexOptions::builder()
                .name(TRANSCRIPT_TEXT_INDEX.to_owned())
                .weights(doc! { "fts_summary": 2, "fts_turns": 1 })
                .default_language("none".to_owned())
                .build(),
        )
        .build()
}

fn index(name: &str, keys: Document) -> IndexModel {
    IndexModel::builder().keys(keys).options(IndexOptions::builder().name(name.to_owned()).build()).build()
}

/// A unique index over the documents that have `field`. The filter is
/// `$exists: true` because the planner uses a partial index only for a query
/// that provably implies its filter, and an equality `{field: "CA…"}` implies
/// `$exists: true` (it does not imply a `$type` filter: the old
/// `{$type: "string"}` indexes were never used and every webhook scanned the
/// collection). Documents never store these fields as null (absent instead),
/// so the index covers exactly the records that carry the key.
fn unique_present(name: &str, field: &str) -> IndexModel {
    present(name, field, true)
}

fn present(name: &str, field: &str, unique: bool) -> IndexModel {
    IndexModel::builder()
        .keys(doc! { field: 1 })
        .options(
            IndexOptions::builder()
                .name(name.to_owned())
                .unique(unique)
                .partial_filter_expression(doc! { field: { "$exists": true } })
                .build(),
        )
        .build()
}

/// Indexes `migrate` drops once their replacement exists: `(collection, name)`.
pub(crate) const REPLACED_INDEXES: &[(&str, &str)] = &[
    (CALLS, "call_sid_uq"),
    (CALLS, "conversation_id_uq"),
    // Prefix search now reads `dnc_name` / `dnc_email` (all of `dnc` is two points).
    (CONTACTS, "name_lc"),
    (CONTACTS, "email_lc"),
];

/// Index names of the key lookups (used by the query-plan test).
pub const CALL_SID_INDEX: &str = "call_sid_present_uq";
/// See [`CALL_SID_INDEX`].
pub const CONVERSATION_ID_INDEX: &str = "conversation_id_present_uq";
/// See [`CALL_SID_INDEX`].
pub const ABSORBING_CALL_SID_INDEX: &str = "absorbing_call_sid";
/// See [`CALL_SID_INDEX`].
pub const ABSORBING_CONVERSATION_ID_INDEX: &str = "absorbing_conversation_id";

fn by_started(name: &str, field: &str) -> IndexModel {
    index(name, doc! { field: 1, "started_at": -1, "_id": -1 })
}

/// Indexes per collection (by name; `_id_` is implicit).
pub(crate) fn indexes() -> Vec<(&'static str, IndexModel)> {
    let active: Vec<&str> = strings(CallStatus::ACTIVE, CallStatus::as_str);
    vec![
        (IMPORTS, index("state_heartbeat", doc! { "state": 1, "heartbeat_at": 1 })),
        (IMPORT_UNDO, index("import_contact", doc! { "import_id": 1, "contact_id": 1 })),
        (CALLS, unique_present(CALL_SID_INDEX, "call_sid")),
        (CALLS, unique_present(CONVERSATION_ID_INDEX, "conversation_id")),
        // Keys of a merge in progress on a standalone server (see `absorb_staged`); almost always empty.
        (CALLS, present(ABSORBING_CALL_SID_INDEX, "absorbing.call_sid", false)),
        (CALLS, present(ABSORBING_CONVERSATION_ID_INDEX, "absorbing.conversation_id", false)),
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
        (
            CONTACTS,
            IndexModel::builder()
                .keys(doc! { "phone": 1 })
                .options(IndexOptions::builder().name("phone_uq".to_owned()).unique(true).build())
                .build(),
        ),
        // Contact pages (see `contact_page_queries`): equality (`tags`, `dnc`),
        // then the page order; a search prefix is a range of the ordered key.
        (CONTACTS, index(CONTACTS_CREATED, doc! { "created_at": -1, "_id": -1 })),
        (CONTACTS, index(CONTACTS_TAGS_CREATED, doc! { "tags": 1, "created_at": -1, "_id": -1 })),
        (CONTACTS, index(CONTACTS_DNC_CREATED, doc! { "dnc": 1, "created_at": -1, "_id": -1 })),
        (CONTACTS, index(CONTACTS_TAGS_DNC_CREATED, doc! { "tags": 1, "dnc": 1, "created_at": -1, "_id": -1 })),
        (CONTACTS, index(CONTACTS_DNC_NAME, doc! { "dnc": 1, "name_lc": 1, "_id": 1 })),
        (CONTACTS, index(CONTACTS_TAGS_DNC_NAME, doc! { "tags": 1, "dnc": 1, "name_lc": 1, "_id": 1 })),
        // `name_lc` last: the e-mail stage skips name matches without fetching them.
        (CONTACTS, index(CONTACTS_DNC_EMAIL, doc! { "dnc": 1, "email_lc": 1, "_id": 1, "name_lc": 1 })),
        (CONTACTS, index(CONTACTS_TAGS_DNC_EMAIL, doc! { "tags": 1, "dnc": 1, "email_lc": 1, "_id": 1, "name_lc": 1 })),
        (CONTACTS, index(CONTACTS_DNC_PHONE, doc! { "dnc": 1, "phone": 1, "_id": 1 })),
        (CONTACTS, index(CONTACTS_TAGS_DNC_PHONE, doc! { "tags": 1, "dnc": 1, "phone": 1, "_id": 1 })),
        (CONTACTS, index("source", doc! { "source": 1 })),
        (CAMPAIGNS, index("created", doc! { "created_at": -1, "_id": -1 })),
        (CAMPAIGNS, index("status_created", doc! { "status": 1, "created_at": -1, "_id": -1 })),
        (
            ENROLLMENTS,
            IndexModel::builder()
                .keys(doc! { "campaign_id": 1, "contact_id": 1 })
                .options(IndexOptions::builder().name("campaign_contact_uq".to_owned()).unique(true).build())
                .build(),
        ),
        // The claim: equality on campaign and status, sort on next_attempt_at (ESR).
        (ENROLLMENTS, index("due", doc! { "campaign_id": 1, "status": 1, "next_attempt_at": 1, "_id": 1 })),
        (ENROLLMENTS, index("campaign_created", doc! { "campaign_id": 1, "created_at": 1, "_id": 1 })),
        (
            ENROLLMENTS,
            index("campaign_status_created", doc! { "campaign_id": 1, "status": 1, "created_at": 1, "_id": 1 }),
        ),
        (ENROLLMENTS, index("leases", doc! { "status": 1, "lease.expires_at": 1 })),
        (ENROLLMENTS, index("contact", doc! { "contact_id": 1 })),
        (
            SHEET_LINKS,
            IndexModel::builder()
                .keys(doc! { "spreadsheet_id": 1, "tab": 1 })
                .options(IndexOptions::builder().name("spreadsheet_tab_uq".to_owned()).unique(true).build())
                .build(),
        ),
        (SHEET_LINKS, index("created", doc! { "created_at": -1, "_id": -1 })),
        (SHEET_ROWS, index("link_contact", doc! { "link_id": 1, "contact_id": 1 })),
        (
            RECORDINGS,
            IndexModel::builder()
                .keys(doc! { "provider": 1, "provider_id": 1 })
                .options(IndexOptions::builder().name("provider_key_uq".to_owned()).unique(true).build())
                .build(),
        ),
        (RECORDINGS, index("call_created", doc! { "call_id": 1, "created_at": 1, "_id": 1 })),
        // Retention (`recordings_to_expire`): completed recordings, oldest first.
        (RECORDINGS, index("status_created", doc! { "status": 1, "created_at": 1, "_id": 1 })),
        (
            TRANSCRIPTS,
            IndexModel::builder()
                .keys(doc! { "conversation_id": 1 })
                .options(IndexOptions::builder().name("conversation_id_uq".to_owned()).unique(true).build())
                .build(),
        ),
        (TRANSCRIPTS, index("call", doc! { "call_id": 1 })),
        (TRANSCRIPTS, index("started", doc! { "started_at": -1, "_id": -1 })),
        (TRANSCRIPTS, by_started("campaign_started", "campaign_id")),
        (TRANSCRIPTS, by_started("agent_started", "agent_id")),
        (TRANSCRIPTS, by_started("contact_started", "contact_id")),
        // "Pass rate of criterion X per campaign per week": multikey on the criteria array.
        (
            TRANSCRIPTS,
            index(
                "criteria_campaign_started",
                doc! { "criteria.id": 1, "criteria.result": 1, "campaign_id": 1, "started_at": -1 },
            ),
        ),
        (TRANSCRIPTS, transcript_text_index()),
        // Changed-call reads of the rollup job (`changed_call_hours`): oldest update first.
        (CALLS, index("updated", doc! { "updated_at": 1 })),
        (TRANSCRIPTS, index("updated", doc! { "updated_at": 1 })),
        // The `$merge` key (one row per bucket and scope), which also serves a scope's range read.
        (
            ANALYTICS,
            IndexModel::builder()
                .keys(ANALYTICS_KEY.iter().map(|k| (k.to_string(), bson::Bson::Int32(1))).collect::<Document>())
                .options(IndexOptions::builder().name(ANALYTICS_KEY_INDEX.to_owned()).unique(true).build())
                .build(),
        ),
        // A bucket's rows across scopes (removing rows a rebuild did not write).
        (ANALYTICS, index("bucket", doc! { "interval": 1, "tz": 1, "bucket_start": 1 })),
    ]
}

/// Contact page indexes (names; used by `contact_page_queries` and the query-plan test).
pub const CONTACTS_CREATED: &str = "created";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_TAGS_CREATED: &str = "tags_created";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_DNC_CREATED: &str = "dnc_created";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_TAGS_DNC_CREATED: &str = "tags_dnc_created";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_DNC_NAME: &str = "dnc_name";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_TAGS_DNC_NAME: &str = "tags_dnc_name";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_DNC_EMAIL: &str = "dnc_email";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_TAGS_DNC_EMAIL: &str = "tags_dnc_email";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_DNC_PHONE: &str = "dnc_phone";
/// See [`CONTACTS_CREATED`].
pub const CONTACTS_TAGS_DNC_PHONE: &str = "tags_dnc_phone";

/// Where a contacts page starts (decoded from its cursor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContactAfter {
    /// Created order: after (created_at in ms, id).
    Created(i64, String),
    /// Search match order: after (stage, key, id); stage 0 name, 1 e-mail, 2 phone.
    Matched(u8, String, String),
}

/// One `find` of a contacts page: run in order with the room left on the
/// page as limit, until the page (plus one) is full.
#[derive(Debug, Clone)]
pub struct ContactPageQuery {
    /// The filter.
    pub filter: Document,
    /// The sort (the order of `index` after its equality fields).
    pub sort: Document,
    /// The index that serves it.
    pub index: &'static str,
    /// Search stage (`None`: created order).
    pub stage: Option<u8>,
}

/// Upper end of a prefix range: `q <= key < q + U+10FFFF` (simple binary string order).
const PREFIX_END: char = '\u{10FFFF}';

/// The finds of one contacts page, each a bounded index range (ESR):
/// - without `search`, one find in created order on `created`, `dnc_created`,
///   `tags_created` or `tags_dnc_created`;
/// - with `search`, in *match order* (see [`switchboard_storage::ContactFilter`]):
///   the name stage on `(dnc, name_lc, _id)`, the e-mail stage on
///   `(dnc, email_lc, _id, name_lc)` skipping name matches, the phone stage on
///   `(dnc, phone, _id)` skipping both (each with a leading `tags` when a tag
///   is given). Without a `dnc` filter the query says `dnc: {$in: [false,
///   true]}` (the validator makes `dnc` a boolean), two points the planner
///   merges in key order (`SORT_MERGE`) instead of sorting; the prefix is an
///   anchored `$gte`/`$lt` range on the lower-cased key, starting at the
///   cursor's key when there is one.
pub fn contact_page_queries(
    filter: &switchboard_storage::ContactFilter,
    sort: switchboard_storage::ContactSort,
    after: Option<&ContactAfter>,
) -> Vec<ContactPageQuery> {
    let tag = filter.tag.as_ref().map(|t| t.to_lowercase());
    let mut base = Document::new();
    if let Some(t) = &tag {
        base.insert("tags", t.clone());
    }
    let q = filter.search.as_ref().map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty());
    let Some(q) = q else {
        if let Some(d) = filter.dnc {
            base.insert("dnc", d);
        }
        let index = match (tag.is_some(), filter.dnc.is_some()) {
            (false, false) => CONTACTS_CREATED,
            (false, true) => CONTACTS_DNC_CREATED,
            (true, false) => CONTACTS_TAGS_CREATED,
            (true, true) => CONTACTS_TAGS_DNC_CREATED,
        };
        let (op, dir) = match sort {
            switchboard_storage::ContactSort::CreatedDesc => ("$lt", -1),
            switchboard_storage::ContactSort::CreatedAsc => ("$gt", 1),
        };
        let mut f = base;
        if let Some(ContactAfter::Created(k, id)) = after {
            // The inclusive bound makes the index range start at the cursor
            // whether or not the planner pushes the keyset `$or` into the scan.
            let incl = if op == "$lt" { "$lte" } else { "$gte" };
            f.insert("created_at", doc! { incl: bson::DateTime::from_millis(*k) });
            f = crate::docs::and(f, crate::docs::keyset("created_at", op, *k, id));
        }
        return vec![ContactPageQuery { filter: f, sort: doc! { "created_at": dir, "_id": dir }, index, stage: None }];
    };
    match filter.dnc {
        Some(d) => base.insert("dnc", d),
        None => base.insert("dnc", doc! { "$in": [false, true] }),
    };
    let digits = q.trim_start_matches('+');
    let phone = (!digits.is_empty()).then(|| format!("+{digits}"));
    let range = |p: &str| doc! { "$gte": p, "$lt": format!("{p}{PREFIX_END}") };
    let mut out = Vec::new();
    for stage in 0..=2u8 {
        let (field, p, index) = match stage {
            0 => ("name_lc", q.as_str(), if tag.is_some() { CONTACTS_TAGS_DNC_NAME } else { CONTACTS_DNC_NAME }),
            1 => ("email_lc", q.as_str(), if tag.is_some() { CONTACTS_TAGS_DNC_EMAIL } else { CONTACTS_DNC_EMAIL }),
            _ => match &phone {
                Some(p) => {
                    ("phone", p.as_str(), if tag.is_some() { CONTACTS_TAGS_DNC_PHONE } else { CONTACTS_DNC_PHONE })
                }
                None => break,
            },
        };
        let mut f = base.clone();
        let mut key = range(p);
        // Excluded: earlier stages' matches, and the cursor's ties up to its id.
        let mut nor = Vec::new();
        match after {
            Some(ContactAfter::Matched(s, _, _)) if *s > stage => continue,
            // The range starts at the cursor's key (inside the prefix).
            Some(ContactAfter::Matched(s, k, id)) if *s == stage && k.as_str() >= p => {
                key.insert("$gte", k.clone());
                nor.push(doc! { field: k.clone(), "_id": { "$lte": id.clone() } });
            }
            _ => {}
        }
        f.insert(field, key);
        if stage >= 1 {
            nor.push(doc! { "name_lc": range(&q) });
        }
        if stage >= 2 {
            nor.push(doc! { "email_lc": range(&q) });
        }
        if !nor.is_empty() {
            f.insert("$nor", nor);
        }
        out.push(ContactPageQuery { filter: f, sort: doc! { field: 1, "_id": 1 }, index, stage: Some(stage) });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn properties(coll: &str) -> Document {
        let (_, v) = validators().into_iter().find(|(c, _)| *c == coll).unwrap();
        v.get_document("$jsonSchema").unwrap().get_document("properties").unwrap().clone()
    }

    fn bound(props: &Document, field: &str, key: &str) -> Option<i64> {
        let p = props.get_document(field).unwrap();
        p.get_i32(key).map(i64::from).or_else(|_| p.get_i64(key)).ok()
    }

    /// No bound the domain does not have: `Call` and `CallEvent` limit no
    /// string length and no integer sign, so neither may the validator.
    #[test]
    fn validator_bounds_are_the_domains() {
        let calls = properties(CALLS);
        for (field, _) in &calls {
            if field == "version" {
                continue;
            }
            for key in ["maxLength", "minLength", "minimum", "maximum"] {
                assert_eq!(bound(&calls, field, key), None, "calls.{field} has an invented {key}");
            }
        }
        let events = properties(CALL_EVENTS);
        for field in ["event_type", "dedupe_key", "sequence"] {
            for key in ["maxLength", "minLength", "minimum"] {
                assert_eq!(bound(&events, field, key), None, "call_events.{field} has an invented {key}");
            }
        }
        let contacts = properties(CONTACTS);
        assert_eq!(bound(&contacts, "name", "maxLength"), Some(200), "ContactInput: name ≤ 200 characters");
        for field in ["name_lc", "source", "time_zone", "region"] {
            assert_eq!(bound(&contacts, field, "maxLength"), None, "contacts.{field} has an invented maxLength");
        }
        let campaigns = properties(CAMPAIGNS);
        assert_eq!(bound(&campaigns, "name", "maxLength"), Some(200), "Campaign::problems: name ≤ 200 characters");
        assert_eq!(bound(&campaigns, "max_concurrent", "maximum"), Some(1000), "Campaign::problems: 1..=1000");
        let enrollments = properties(ENROLLMENTS);
        assert_eq!(bound(&enrollments, "history", "maxItems"), Some(HISTORY as i64));
        let lease = enrollments.get_document("lease").unwrap().get_document("properties").unwrap().clone();
        assert_eq!(bound(&lease, "owner", "maxLength"), None);
    }
}
