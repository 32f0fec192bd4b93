//! Row <-> domain conversion, in one place. Timestamps are Unix milliseconds.

use rusqlite::Row;
use rusqlite::types::Value;
use switchboard_domain::time::from_millis;
use switchboard_domain::{Call, CallEvent, CallId, CampaignId, ContactId, EnrollmentId, EventId, IdError};
use switchboard_storage::StoreError;

/// Column order shared by every call query (`id` first; `replace_call` relies on it).
pub(crate) const CALL_COLUMNS: &str = "id, call_sid, conversation_id, account_sid, direction, status, from_number, to_number, campaign_id, contact_id, enrollment_id, agent_id, answered_by, started_at, answered_at, ended_at, duration_secs, sip_response_code, price, price_unit, last_sequence, status_source, telephony_source, conversation_source, conversation_status, call_successful, transcript_summary, termination_reason, conversation_duration_secs, cost_credits, created_at, updated_at, version";

/// Number of columns in `CALL_COLUMNS`.
pub(crate) const CALL_COLUMN_COUNT: usize = 33;

pub(crate) const EVENT_COLUMNS: &str =
    "id, call_id, source, event_type, occurred_at, received_at, dedupe_key, sequence, payload";

fn text(v: &Option<String>) -> Value {
    v.clone().map(Value::Text).unwrap_or(Value::Null)
}

fn int(v: Option<i64>) -> Value {
    v.map(Value::Integer).unwrap_or(Value::Null)
}

fn word<T: ToString>(v: Option<T>) -> Value {
    v.map(|x| Value::Text(x.to_string())).unwrap_or(Value::Null)
}

/// Parameters in `CALL_COLUMNS` order.
pub(crate) fn call_params(c: &Call) -> Vec<Value> {
    vec![
        Value::Text(c.id.to_string()),
        text(&c.call_sid),
        text(&c.conversation_id),
        text(&c.account_sid),
        word(c.direction),
        Value::Text(c.status.as_str().into()),
        text(&c.from),
        text(&c.to),
        word(c.campaign_id.as_ref()),
        word(c.contact_id.as_ref()),
        word(c.enrollment_id.as_ref()),
        text(&c.agent_id),
        word(c.answered_by),
        Value::Integer(c.started_at.timestamp_millis()),
        int(c.answered_at.map(|t| t.timestamp_millis())),
        int(c.ended_at.map(|t| t.timestamp_millis())),
        int(c.duration_secs),
        int(c.sip_response_code),
        text(&c.price),
        text(&c.price_unit),
        int(c.last_sequence),
        word(c.status_source),
        word(c.telephony_source),
        word(c.conversation_source),
        text(&c.conversation_status),
        text(&c.call_successful),
        text(&c.transcript_summary),
        text(&c.termination_reason),
        int(c.conversation_duration_secs),
        int(c.cost_credits),
        Value::Integer(c.created_at.timestamp_millis()),
        Value::Integer(c.updated_at.timestamp_millis()),
        Value::Integer(c.version),
    ]
}

fn conv_err(i: usize, msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, msg.into())
}

fn parse_opt<T: std::str::FromStr<Err = String>>(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<T>> {
    row.get::<_, Option<String>>(i)?.map(|s| s.parse::<T>().map_err(|e| conv_err(i, e))).transpose()
}

/// A stored id of another record; a corrupt value fails the read (a `StoreError` via [`map_err`]).
fn link<T>(row: &Row<'_>, i: usize, parse: fn(&str) -> Result<T, IdError>) -> rusqlite::Result<Option<T>> {
    row.get::<_, Option<String>>(i)?.map(|s| parse(&s).map_err(|e| conv_err(i, e.to_string()))).transpose()
}

fn ts_opt(row: &Row<'_>, i: usize) -> rusqlite::Result<Option<chrono::DateTime<chrono::Utc>>> {
    Ok(row.get::<_, Option<i64>>(i)?.map(from_millis))
}

pub(crate) fn call_from_row(row: &Row<'_>) -> rusqlite::Result<Call> {
    let id: String = row.get(0)?;
    Ok(Call {
        id: CallId::parse(&id).map_err(|e| conv_err(0, e.to_string()))?,
        call_sid: row.get(1)?,
        conversation_id: row.get(2)?,
        account_sid: row.get(3)?,
        direction: parse_opt(row, 4)?,
        status: parse_opt(row, 5)?.ok_or_else(|| conv_err(5, "status is NULL".into()))?,
        from: row.get(6)?,
        to: row.get(7)?,
        campaign_id: link(row, 8, CampaignId::parse)?,
        contact_id: link(row, 9, ContactId::parse)?,
        enrollment_id: link(row, 10, EnrollmentId::parse)?,
        agent_id: row.get(11)?,
        answered_by: parse_opt(row, 12)?,
        started_at: from_millis(row.get(13)?),
        answered_at: ts_opt(row, 14)?,
        ended_at: ts_opt(row, 15)?,
        duration_secs: row.get(16)?,
        sip_response_code: row.get(17)?,
        price: row.get(18)?,
        price_unit: row.get(19)?,
        last_sequence: row.get(20)?,
        status_source: parse_opt(row, 21)?,
        telephony_source: parse_opt(row, 22)?,
        conversation_source: parse_opt(row, 23)?,
        conversation_status: row.get(24)?,
        call_successful: row.get(25)?,
        transcript_summary: row.get(26)?,
        termination_reason: row.get(27)?,
        conversation_duration_secs: row.get(28)?,
        cost_credits: row.get(29)?,
        created_at: from_millis(row.get(30)?),
        updated_at: from_millis(row.get(31)?),
        version: row.get(32)?,
    })
}

pub(crate) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<CallEvent> {
    let id: String = row.get(0)?;
    let call_id: String = row.get(1)?;
    let payload: String = row.get(8)?;
    Ok(CallEvent {
        id: EventId::parse(&id).map_err(|e| conv_err(0, e.to_string()))?,
        call_id: CallId::parse(&call_id).map_err(|e| conv_err(1, e.to_string()))?,
        source: parse_opt(row, 2)?.ok_or_else(|| conv_err(2, "source is NULL".into()))?,
        event_type: row.get(3)?,
        occurred_at: from_millis(row.get(4)?),
        received_at: from_millis(row.get(5)?),
        dedupe_key: row.get(6)?,
        sequence: row.get(7)?,
        payload: serde_json::from_str(&payload).map_err(|e| conv_err(8, e.to_string()))?,
    })
}

/// Maps a SQLite error to the store error: UNIQUE violations are conflicts,
/// CHECK violations invalid input, BUSY/LOCKED/IO unavailability.
pub(crate) fn map_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, msg) = &e {
        let detail = msg.clone().unwrap_or_else(|| f.to_string());
        return match f.code {
            C::ConstraintViolation if detail.contains("UNIQUE") || detail.contains("PRIMARY KEY") => {
                // "UNIQUE constraint failed: contacts.phone" → name the field, not the engine's text.
                let field =
                    detail.rsplit(": ").next().and_then(|c| c.split(", ").next()).and_then(|c| c.rsplit('.').next());
                StoreError::conflict(match field {
                    Some(f) if !f.is_empty() => format!("a record with this {f} exists"),
                    _ => "a record with this key exists".to_owned(),
                })
            }
            C::ConstraintViolation => StoreError::Invalid(format!("rejected by schema: {detail}")),
            C::DatabaseBusy | C::DatabaseLocked | C::SystemIoFailure | C::DiskFull | C::CannotOpen => {
                StoreError::Unavailable(detail)
            }
            _ => StoreError::Other(anyhow::Error::new(e)),
        };
    }
    StoreError::Other(anyhow::Error::new(e))
}

// ---- shared by every area ----

/// Builds `WHERE` clauses and their parameters.
#[derive(Default)]
pub(crate) struct Where {
    clauses: Vec<String>,
    pub(crate) values: Vec<rusqlite::types::Value>,
}

impl Where {
    pub(crate) fn push(&mut self, clause: &str, vals: impl IntoIterator<Item = rusqlite::types::Value>) {
        let mut vals = vals.into_iter();
        let mut c = String::with_capacity(clause.len() + 8);
        for ch in clause.chars() {
            if ch == '?' {
                self.values.push(vals.next().expect("one value per placeholder"));
                c.push_str(&format!("?{}", self.values.len()));
            } else {
                c.push(ch);
            }
        }
        self.clauses.push(c);
    }
    pub(crate) fn eq(&mut self, column: &str, v: Option<&str>) {
        if let Some(v) = v {
            self.push(&format!("{column} = ?"), [v.to_owned().into()]);
        }
    }
    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() { String::new() } else { format!("WHERE {}", self.clauses.join(" AND ")) }
    }
}

use switchboard_storage::{Cursor, PageRequest, StoreResult};

pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Other(anyhow::anyhow!("stored document does not decode: {e}"))
}

pub(crate) fn to_doc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialise")
}

pub(crate) fn decode_cursor(page: &PageRequest, sort: &str) -> StoreResult<Option<Cursor>> {
    page.cursor.as_deref().map(|c| Cursor::decode(c, sort)).transpose()
}

pub(crate) fn to_rfc3339(ms: i64) -> String {
    // The same form serde gives chrono timestamps, so the document decodes identically.
    serde_json::to_value(from_millis(ms)).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
