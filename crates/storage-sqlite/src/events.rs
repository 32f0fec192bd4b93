//! Call events on SQLite: insert with replay protection (`dedupe_key` is
//! unique, a repeat is a no-op), and keyset-paged lists in `occurred_at` order.

use std::sync::LazyLock;

use async_trait::async_trait;
use rusqlite::{Connection, params};
use switchboard_domain::{CallEvent, CallId};
use switchboard_storage::events::{decode_event_cursor, event_cursor};
use switchboard_storage::{EventFilter, EventStore, Page, PageRequest, StoreResult};

use crate::SqliteStore;
use crate::rows::{EVENT_COLUMNS, Where, event_from_row, map_err};

pub(crate) fn insert_event_in_tx(conn: &Connection, e: &CallEvent) -> StoreResult<bool> {
    static SQL: LazyLock<String> = LazyLock::new(|| {
        format!(
            "INSERT INTO call_events ({EVENT_COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT (dedupe_key) DO NOTHING"
        )
    });
    let n = conn
        .prepare_cached(&SQL)
        .and_then(|mut st| {
            st.execute(params![
                e.id.as_str(),
                e.call_id.as_str(),
                e.source.as_str(),
                e.event_type,
                e.occurred_at.timestamp_millis(),
                e.received_at.timestamp_millis(),
                e.dedupe_key,
                e.sequence,
                e.payload.to_string(),
            ])
        })
        .map_err(map_err)?;
    Ok(n == 1)
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn insert_event(&self, event: &CallEvent) -> StoreResult<bool> {
        let e = event.clone();
        self.write(move |conn| insert_event_in_tx(conn, &e)).await
    }

    async fn event_exists(&self, dedupe_key: &str) -> StoreResult<bool> {
        let key = dedupe_key.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT 1 FROM call_events WHERE dedupe_key = ?1")
                .and_then(|mut st| st.exists([key]))
                .map_err(map_err)
        })
        .await
    }

    async fn list_call_events(&self, call_id: &CallId, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        let mut w = Where::default();
        w.eq("call_id", Some(call_id.as_str()));
        self.events_page(w, page).await
    }

    async fn list_events(&self, filter: &EventFilter, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        let mut w = Where::default();
        match (filter.type_prefix(), &filter.event_type) {
            (Some(prefix), _) => {
                // Range scan instead of LIKE so the (event_type, occurred_at) index serves it.
                let mut upper = prefix.to_owned();
                upper.push(char::MAX);
                w.push("event_type >= ? AND event_type < ?", [prefix.to_owned().into(), upper.into()]);
            }
            (None, t) => w.eq("event_type", t.as_deref()),
        }
        w.eq("source", filter.source.map(|s| s.as_str()));
        if let Some(t) = filter.occurred_after {
            w.push("occurred_at >= ?", [t.timestamp_millis().into()]);
        }
        if let Some(t) = filter.occurred_before {
            w.push("occurred_at < ?", [t.timestamp_millis().into()]);
        }
        self.events_page(w, page).await
    }
}

impl SqliteStore {
    async fn events_page(&self, mut w: Where, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        let cursor = decode_event_cursor(page)?;
        let limit = page.clamped_limit();
        if let Some(c) = cursor {
            w.push("(occurred_at, id) > (?, ?)", [c.key.into(), c.id.into()]);
        }
        let sql =
            format!("SELECT {EVENT_COLUMNS} FROM call_events {} ORDER BY occurred_at, id LIMIT {}", w.sql(), limit + 1);
        let rows = self
            .read(move |conn| {
                let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
                st.query_map(rusqlite::params_from_iter(w.values), event_from_row)
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(map_err)
            })
            .await?;
        Ok(Page::from_overfetch(rows, limit, event_cursor))
    }
}
