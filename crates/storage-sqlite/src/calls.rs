//! Call records on SQLite: lookups by key, the merge of a webhook's facts
//! into the record (`upsert_in_tx`, run inside the writer's transaction so it
//! reads and writes a call atomically), keyset-paged lists, bulk loads.

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension};
use switchboard_domain::{Call, CallEvent, CallId, CallUpdate, time::now_ms};
use switchboard_storage::calls::require_key;
use switchboard_storage::{CallFilter, CallSort, CallStore, Page, PageRequest, StoreError, StoreResult, UpsertOutcome};

use crate::SqliteStore;
use crate::events::insert_event_in_tx;
use crate::rows::{CALL_COLUMN_COUNT, CALL_COLUMNS, Where, call_from_row, call_params, map_err};

fn find_one(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<Call>> {
    let sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE {column} = ?1");
    conn.prepare_cached(&sql).and_then(|mut st| st.query_row([value], call_from_row).optional()).map_err(map_err)
}

fn insert_call(conn: &Connection, call: &Call) -> StoreResult<()> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        let placeholders = (1..=CALL_COLUMN_COUNT).map(|i| format!("?{i}")).collect::<Vec<_>>().join(",");
        format!("INSERT INTO calls ({CALL_COLUMNS}) VALUES ({placeholders})")
    });
    conn.prepare_cached(&SQL)
        .and_then(|mut st| st.execute(rusqlite::params_from_iter(call_params(call))))
        .map(|_| ())
        .map_err(map_err)
}

/// Writes the columns of `after` that differ from `before`, if `before.version`
/// is still the stored version. Setting only changed columns keeps SQLite from
/// rewriting the entries of every index on `calls` for each callback.
fn update_call(conn: &Connection, before: &Call, after: &Call) -> StoreResult<()> {
    let old = call_params(before);
    let new = call_params(after);
    let columns: Vec<&str> = CALL_COLUMNS.split(", ").collect();
    let mut sets = Vec::new();
    let mut values = vec![new[0].clone(), rusqlite::types::Value::Integer(before.version)];
    for (i, (o, n)) in old.iter().zip(&new).enumerate().skip(1) {
        if o != n {
            values.push(n.clone());
            sets.push(format!("{} = ?{}", columns[i], values.len()));
        }
    }
    if sets.is_empty() {
        return Ok(());
    }
    let sql = format!("UPDATE calls SET {} WHERE id = ?1 AND version = ?2", sets.join(", "));
    let n =
        conn.prepare_cached(&sql).and_then(|mut st| st.execute(rusqlite::params_from_iter(values))).map_err(map_err)?;
    if n == 1 { Ok(()) } else { Err(StoreError::stale(format!("call {}", after.id))) }
}

pub(crate) fn upsert_in_tx(conn: &Connection, update: &CallUpdate) -> StoreResult<UpsertOutcome> {
    let now = now_ms();
    let mut found: Vec<Call> = Vec::new();
    let mut push = |c: Option<Call>| {
        if let Some(c) = c
            && !found.iter().any(|f| f.id == c.id)
        {
            found.push(c);
        }
    };
    if let Some(id) = &update.id {
        push(find_one(conn, "id", id.as_str())?);
    }
    if let Some(sid) = &update.call_sid {
        push(find_one(conn, "call_sid", sid)?);
    }
    if let Some(conv) = &update.conversation_id {
        push(find_one(conn, "conversation_id", conv)?);
    }
    match found.len() {
        0 => {
            let call = Call::new_from(update, now)?;
            insert_call(conn, &call)?;
            Ok(UpsertOutcome { call, created: true, changed: true, absorbed: None })
        }
        1 => {
            let before = found.pop().expect("one");
            let mut call = before.clone();
            let changed = call.apply(update, now)?;
            if changed {
                update_call(conn, &before, &call)?;
            }
            Ok(UpsertOutcome { call, created: false, changed, absorbed: None })
        }
        _ => {
            let (keep, gone) = Call::survivor_first(&found[0], &found[1]);
            let (before, gone) = (keep.clone(), gone.clone());
            let mut keep = before.clone();
            keep.absorb(&gone, now)?;
            keep.apply(update, now)?;
            // Delete first: the survivor takes over the absorbed record's unique keys.
            conn.execute("DELETE FROM calls WHERE id = ?1", [gone.id.as_str()]).map_err(map_err)?;
            update_call(conn, &before, &keep)?;
            conn.execute(
                "UPDATE call_events SET call_id = ?1 WHERE call_id = ?2",
                [keep.id.as_str(), gone.id.as_str()],
            )
            .map_err(map_err)?;
            Ok(UpsertOutcome { call: keep, created: false, changed: true, absorbed: Some(gone.id) })
        }
    }
}

#[async_trait]
impl CallStore for SqliteStore {
    async fn upsert_call(&self, update: &CallUpdate) -> StoreResult<UpsertOutcome> {
        require_key(update)?;
        let update = update.clone();
        self.write(move |conn| upsert_in_tx(conn, &update)).await
    }

    async fn get_call(&self, id: &CallId) -> StoreResult<Call> {
        let id = id.clone();
        self.read(move |conn| find_one(conn, "id", id.as_str())).await?.ok_or(StoreError::NotFound("call"))
    }

    async fn find_call_by_sid(&self, call_sid: &str) -> StoreResult<Option<Call>> {
        let sid = call_sid.to_owned();
        self.read(move |conn| find_one(conn, "call_sid", &sid)).await
    }

    async fn find_call_by_conversation(&self, conversation_id: &str) -> StoreResult<Option<Call>> {
        let conv = conversation_id.to_owned();
        self.read(move |conn| find_one(conn, "conversation_id", &conv)).await
    }

    async fn list_calls(&self, filter: &CallFilter, sort: CallSort, page: &PageRequest) -> StoreResult<Page<Call>> {
        let cursor = sort.decode(page)?;
        let limit = page.clamped_limit();
        let mut w = Where::default();
        if !filter.statuses.is_empty() {
            let marks = vec!["?"; filter.statuses.len()].join(",");
            w.push(&format!("status IN ({marks})"), filter.statuses.iter().map(|s| s.as_str().to_owned().into()));
        }
        w.eq("direction", filter.direction.map(|d| d.as_str()));
        w.eq("campaign_id", filter.campaign_id.as_ref().map(|c| c.as_str()));
        w.eq("contact_id", filter.contact_id.as_ref().map(|c| c.as_str()));
        w.eq("agent_id", filter.agent_id.as_deref());
        w.eq("from_number", filter.from.as_deref());
        w.eq("to_number", filter.to.as_deref());
        w.eq("answered_by", filter.answered_by.map(|a| a.as_str()));
        if let Some(t) = filter.started_after {
            w.push("started_at >= ?", [t.timestamp_millis().into()]);
        }
        if let Some(t) = filter.started_before {
            w.push("started_at < ?", [t.timestamp_millis().into()]);
        }
        let key = match sort {
            CallSort::CreatedAtDesc => "created_at",
            _ => "started_at",
        };
        let (cmp, dir) = if sort.descending() { ("<", "DESC") } else { (">", "ASC") };
        if let Some(c) = cursor {
            w.push(&format!("({key}, id) {cmp} (?, ?)"), [c.key.into(), c.id.into()]);
        }
        let sql =
            format!("SELECT {CALL_COLUMNS} FROM calls {} ORDER BY {key} {dir}, id {dir} LIMIT {}", w.sql(), limit + 1);
        let rows = self
            .read(move |conn| {
                let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
                let rows = st
                    .query_map(rusqlite::params_from_iter(w.values), call_from_row)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(map_err)?;
                Ok(rows)
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, |c| sort.cursor_of(c)))
    }

    async fn insert_calls_bulk(&self, calls: &[Call], events: &[CallEvent]) -> StoreResult<()> {
        let calls = calls.to_vec();
        let events = events.to_vec();
        self.write(move |conn| {
            for c in &calls {
                insert_call(conn, c)?;
            }
            for e in &events {
                if !insert_event_in_tx(conn, e)? {
                    return Err(StoreError::conflict(format!("event dedupe key {} exists", e.dedupe_key)));
                }
            }
            Ok(())
        })
        .await
    }

    async fn count_calls(&self) -> StoreResult<u64> {
        self.read(|conn| conn.query_row("SELECT count(*) FROM calls", [], |r| r.get::<_, i64>(0)).map_err(map_err))
            .await
            .map(|n| n as u64)
    }
}
