//! Sheet links and row states on SQLite (migration 0006): the link as a JSON
//! `doc` (settings) plus a JSON `state` written by the sync job alone, with
//! the unique (spreadsheet, tab) and the keyset columns as real columns.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, params};
use switchboard_domain::sheet::SyncState;
use switchboard_domain::time::from_millis;
use switchboard_domain::{ContactId, SheetLink, SheetLinkId, SheetRow};
use switchboard_storage::{Cursor, Page, PageRequest, SheetStore, StoreError, StoreResult};

use crate::SqliteStore;
use crate::rows::{decode_cursor, json_err, map_err, to_doc};

const LINK_COLUMNS: &str = "doc, state, version, updated_at";

fn link_from_row(r: &rusqlite::Row<'_>) -> StoreResult<SheetLink> {
    let doc: String = r.get(0).map_err(map_err)?;
    let state: String = r.get(1).map_err(map_err)?;
    let mut link: SheetLink = serde_json::from_str(&doc).map_err(json_err)?;
    link.state = serde_json::from_str(&state).map_err(json_err)?;
    link.version = r.get(2).map_err(map_err)?;
    link.updated_at = from_millis(r.get(3).map_err(map_err)?);
    Ok(link)
}

fn link_by_id(conn: &Connection, id: &str) -> StoreResult<Option<SheetLink>> {
    let sql = format!("SELECT {LINK_COLUMNS} FROM sheet_links WHERE id = ?1");
    let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
    let mut rows = st.query([id]).map_err(map_err)?;
    match rows.next().map_err(map_err)? {
        Some(r) => Ok(Some(link_from_row(r)?)),
        None => Ok(None),
    }
}

/// The settings document: the link without its sync state.
fn settings_doc(l: &SheetLink) -> String {
    let mut l = l.clone();
    l.state = SyncState::default();
    to_doc(&l)
}

/// The unique (spreadsheet, tab) refused `l`: name the tab (a duplicate id keeps its own message).
fn tab_conflict(l: &SheetLink, e: StoreError) -> StoreError {
    match e {
        StoreError::Conflict { what } if what != "a record with this id exists" => {
            StoreError::conflict(format!("a link for tab \"{}\" of spreadsheet {} exists", l.tab, l.spreadsheet_id))
        }
        other => other,
    }
}

#[async_trait]
impl SheetStore for SqliteStore {
    async fn insert_sheet_link(&self, link: &SheetLink) -> StoreResult<()> {
        let l = link.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO sheet_links (id, spreadsheet_id, tab, campaign_id, created_at, updated_at, version, doc, state) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    l.id.as_str(),
                    l.spreadsheet_id,
                    l.tab,
                    l.campaign_id.as_ref().map(|c| c.as_str().to_owned()),
                    l.created_at.timestamp_millis(),
                    l.updated_at.timestamp_millis(),
                    l.version,
                    settings_doc(&l),
                    to_doc(&l.state),
                ])
            })
            .map(|_| ())
            .map_err(|e| tab_conflict(&l, map_err(e)))
        })
        .await
    }

    async fn get_sheet_link(&self, id: &SheetLinkId) -> StoreResult<Option<SheetLink>> {
        let id = id.clone();
        self.read(move |conn| link_by_id(conn, id.as_str())).await
    }

    async fn list_sheet_links(&self, page: &PageRequest) -> StoreResult<Page<SheetLink>> {
        const SORT: &str = "sheet_links_created_desc";
        let cursor = decode_cursor(page, SORT)?;
        let limit = page.clamped_limit();
        let items = self
            .read(move |conn| {
                let (key, id) = cursor.map(|c| (c.key, c.id)).unwrap_or((i64::MAX, String::new()));
                let sql = format!(
                    "SELECT {LINK_COLUMNS} FROM sheet_links WHERE (created_at, id) < (?1, ?2) OR ?3 \
                     ORDER BY created_at DESC, id DESC LIMIT {}",
                    limit + 1
                );
                let first = key == i64::MAX;
                let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
                let mut rows = st.query(params![key, id, first]).map_err(map_err)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(map_err)? {
                    out.push(link_from_row(r)?);
                }
                Ok(out)
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |l| Cursor {
            sort: SORT.into(),
            key: l.created_at.timestamp_millis(),
            id: l.id.to_string(),
        }))
    }

    async fn replace_sheet_link(&self, link: &SheetLink) -> StoreResult<SheetLink> {
        let l = link.clone();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE sheet_links SET tab = ?3, updated_at = ?4, version = version + 1, doc = ?5 \
                     WHERE id = ?1 AND version = ?2",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        l.id.as_str(),
                        l.version,
                        l.tab,
                        l.updated_at.timestamp_millis(),
                        settings_doc(&l)
                    ])
                })
                .map_err(|e| tab_conflict(&l, map_err(e)))?;
            match (n, link_by_id(conn, l.id.as_str())?) {
                (1, Some(stored)) => Ok(stored),
                (_, None) => Err(StoreError::NotFound("sheet link")),
                (_, Some(stored)) => {
                    Err(StoreError::stale(format!("sheet link {} (now version {})", l.id, stored.version)))
                }
            }
        })
        .await
    }

    async fn set_sheet_state(&self, id: &SheetLinkId, state: &SyncState, now: DateTime<Utc>) -> StoreResult<()> {
        let (id, state) = (id.clone(), to_doc(state));
        self.write(move |conn| {
            let n = conn
                .prepare_cached("UPDATE sheet_links SET state = ?2, updated_at = ?3 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![id.as_str(), state, now.timestamp_millis()]))
                .map_err(map_err)?;
            if n == 1 { Ok(()) } else { Err(StoreError::NotFound("sheet link")) }
        })
        .await
    }

    async fn delete_sheet_link(&self, id: &SheetLinkId) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM sheet_rows WHERE link_id = ?1")
                .and_then(|mut st| st.execute([id.as_str()]))
                .map_err(map_err)?;
            let n = conn
                .prepare_cached("DELETE FROM sheet_links WHERE id = ?1")
                .and_then(|mut st| st.execute([id.as_str()]))
                .map_err(map_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn sheet_rows(&self, link: &SheetLinkId) -> StoreResult<Vec<SheetRow>> {
        let link = link.clone();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT contact_id, fingerprint, row_hint, seen_at FROM sheet_rows WHERE link_id = ?1 ORDER BY contact_id",
                )
                .map_err(map_err)?;
            let raw: Vec<(String, String, i64, i64)> = st
                .query_map([link.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                .and_then(|rows| rows.collect())
                .map_err(map_err)?;
            raw.into_iter()
                .map(|(c, fingerprint, hint, seen)| {
                    Ok(SheetRow {
                        link_id: link.clone(),
                        contact_id: ContactId::parse(&c).map_err(|e| StoreError::Other(anyhow::anyhow!(e)))?,
                        fingerprint,
                        row_hint: u32::try_from(hint).unwrap_or(u32::MAX),
                        seen_at: from_millis(seen),
                    })
                })
                .collect()
        })
        .await
    }

    async fn put_sheet_rows(&self, rows: &[SheetRow]) -> StoreResult<()> {
        let rows = rows.to_vec();
        self.write(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "INSERT INTO sheet_rows (link_id, contact_id, fingerprint, row_hint, seen_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                     ON CONFLICT (link_id, contact_id) DO UPDATE SET fingerprint = excluded.fingerprint, \
                       row_hint = excluded.row_hint, seen_at = excluded.seen_at",
                )
                .map_err(map_err)?;
            for r in &rows {
                st.execute(params![
                    r.link_id.as_str(),
                    r.contact_id.as_str(),
                    r.fingerprint,
                    i64::from(r.row_hint),
                    r.seen_at.timestamp_millis()
                ])
                .map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn delete_sheet_rows(&self, link: &SheetLinkId, contacts: &[ContactId]) -> StoreResult<u64> {
        let (link, contacts) = (link.clone(), contacts.to_vec());
        self.write(move |conn| {
            let mut st = conn
                .prepare_cached("DELETE FROM sheet_rows WHERE link_id = ?1 AND contact_id = ?2")
                .map_err(map_err)?;
            let mut n = 0;
            for c in &contacts {
                n += st.execute([link.as_str(), c.as_str()]).map_err(map_err)? as u64;
            }
            Ok(n)
        })
        .await
    }
}
