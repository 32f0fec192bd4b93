//! Contacts and the import journal on SQLite: the record as a JSON `doc`
//! plus the filtered and constrained columns, `tagged_contacts` kept in step
//! (migration 0004), and the journal tables (migration 0003).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::time::from_millis;
use switchboard_domain::{Contact, ContactId};
use switchboard_storage::{
    BulkContacts, ContactFilter, ContactSort, ContactStore, Cursor, ImportRecord, ImportState, OnDuplicate, Page,
    PageRequest, StoreError, StoreResult,
};

use crate::SqliteStore;
use crate::contact_query::{Row, Terms, created_page, decode_after, run_merged, search_cursor, search_stage};
use crate::rows::map_err;
use crate::rows::{json_err, to_doc};

pub(crate) fn contact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    r.get(0)
}

pub(crate) fn decode_contact(doc: String) -> StoreResult<Contact> {
    serde_json::from_str(&doc).map_err(json_err)
}

/// The stored id, version and creation time of a phone (no document decoding).
pub(crate) fn contact_key(conn: &Connection, phone: &str) -> StoreResult<Option<(String, i64, i64)>> {
    conn.prepare_cached("SELECT id, version, created_at FROM contacts WHERE phone = ?1")
        .and_then(|mut st| st.query_row([phone], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).optional())
        .map_err(map_err)
}

pub(crate) fn write_contact(conn: &Connection, c: &Contact, replace: bool) -> StoreResult<()> {
    let sql = if replace {
        "UPDATE contacts SET phone = ?2, name_lc = ?3, email_lc = ?4, dnc = ?5, source = ?6, created_at = ?7, updated_at = ?8, version = ?9, doc = ?10 WHERE id = ?1"
    } else {
        "INSERT INTO contacts (id, phone, name_lc, email_lc, dnc, source, created_at, updated_at, version, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    };
    conn.prepare_cached(sql)
        .and_then(|mut st| {
            st.execute(params![
                c.id.as_str(),
                c.phone,
                c.name.as_ref().map(|n| n.to_lowercase()),
                c.email.as_ref().map(|e| e.to_lowercase()),
                c.is_dnc() as i64,
                c.source,
                c.created_at.timestamp_millis(),
                c.updated_at.timestamp_millis(),
                c.version,
                to_doc(c),
            ])
        })
        .map_err(|e| match map_err(e) {
            StoreError::Conflict { what } if what.contains("phone") => {
                StoreError::conflict(format!("a contact with phone {} exists", c.phone))
            }
            other => other,
        })?;
    if replace {
        conn.prepare_cached("DELETE FROM tagged_contacts WHERE contact_id = ?1")
            .and_then(|mut st| st.execute([c.id.as_str()]))
            .map_err(map_err)?;
    }
    // One row per tag, with copies of the filtered columns (see `contact_query`).
    for t in &c.tags {
        conn.prepare_cached(
            "INSERT OR IGNORE INTO tagged_contacts (tag, created_at, contact_id, dnc, name_lc, email_lc, phone) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .and_then(|mut st| {
            st.execute(params![
                t,
                c.created_at.timestamp_millis(),
                c.id.as_str(),
                c.is_dnc() as i64,
                c.name.as_ref().map(|n| n.to_lowercase()),
                c.email.as_ref().map(|e| e.to_lowercase()),
                c.phone,
            ])
        })
        .map_err(map_err)?;
    }
    Ok(())
}

pub(crate) fn contact_by(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<Contact>> {
    let sql = format!("SELECT doc FROM contacts WHERE {column} = ?1");
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.query_row([value], contact_row).optional())
        .map_err(map_err)?
        .map(decode_contact)
        .transpose()
}

#[async_trait]
impl ContactStore for SqliteStore {
    async fn insert_contact(&self, contact: &Contact) -> StoreResult<()> {
        let c = contact.clone();
        self.write(move |conn| write_contact(conn, &c, false)).await
    }

    async fn insert_contacts(&self, contacts: &[Contact], on_duplicate: OnDuplicate) -> StoreResult<BulkContacts> {
        let contacts = contacts.to_vec();
        // One savepoint on the writer: with `Fail`, any duplicate rolls the whole batch back.
        self.write(move |conn| {
            let mut out = BulkContacts::default();
            for (i, c) in contacts.iter().enumerate() {
                match contact_key(conn, &c.phone)? {
                    None => {
                        write_contact(conn, c, false)?;
                        out.inserted += 1;
                    }
                    Some((id, version, created)) => match on_duplicate {
                        OnDuplicate::Skip => out.skipped.push(i),
                        OnDuplicate::Fail => {
                            return Err(StoreError::conflict(format!("a contact with phone {} exists", c.phone)));
                        }
                        OnDuplicate::Update => {
                            let mut merged = c.clone();
                            merged.id = ContactId::parse(&id).map_err(|e| StoreError::Other(anyhow::anyhow!(e)))?;
                            merged.created_at = from_millis(created);
                            merged.version = version + 1;
                            write_contact(conn, &merged, true)?;
                            out.updated += 1;
                        }
                    },
                }
            }
            Ok(out)
        })
        .await
    }

    async fn get_contact(&self, id: &ContactId) -> StoreResult<Option<Contact>> {
        let id = id.clone();
        self.read(move |conn| contact_by(conn, "id", id.as_str())).await
    }

    async fn find_contact_by_phone(&self, phone: &str) -> StoreResult<Option<Contact>> {
        let phone = phone.to_owned();
        self.read(move |conn| contact_by(conn, "phone", &phone)).await
    }

    async fn existing_phones(&self, phones: &[String]) -> StoreResult<Vec<String>> {
        let phones = phones.to_vec();
        self.read(move |conn| {
            let mut out = Vec::new();
            for chunk in phones.chunks(500) {
                let marks = vec!["?"; chunk.len()].join(",");
                let sql = format!("SELECT phone FROM contacts WHERE phone IN ({marks})");
                let mut st = conn.prepare(&sql).map_err(map_err)?;
                let rows = st
                    .query_map(rusqlite::params_from_iter(chunk), |r| r.get::<_, String>(0))
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(map_err)?;
                out.extend(rows);
            }
            Ok(out)
        })
        .await
    }

    async fn replace_contact(&self, contact: &Contact) -> StoreResult<Contact> {
        let mut c = contact.clone();
        self.write(move |conn| {
            let stored: Option<i64> = conn
                .query_row("SELECT version FROM contacts WHERE id = ?1", [c.id.as_str()], |r| r.get(0))
                .optional()
                .map_err(map_err)?;
            match stored {
                None => return Err(StoreError::NotFound("contact")),
                Some(v) if v != c.version => {
                    return Err(StoreError::stale(format!("contact {} (now version {v})", c.id)));
                }
                Some(_) => {}
            }
            c.version += 1;
            write_contact(conn, &c, true)?;
            Ok(c)
        })
        .await
    }

    async fn delete_contact(&self, id: &ContactId) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| {
            let busy: bool = conn
                .prepare_cached(
                    "SELECT 1 FROM campaign_contacts WHERE contact_id = ?1 AND status IN ('dialing','in_call')",
                )
                .and_then(|mut st| st.exists([id.as_str()]))
                .map_err(map_err)?;
            if busy {
                return Err(StoreError::conflict(format!("contact {id} has a call in flight")));
            }
            conn.execute("DELETE FROM campaign_contacts WHERE contact_id = ?1", [id.as_str()]).map_err(map_err)?;
            let n = conn.execute("DELETE FROM contacts WHERE id = ?1", [id.as_str()]).map_err(map_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        sort: ContactSort,
        page: &PageRequest,
    ) -> StoreResult<Page<Contact>> {
        let limit = page.clamped_limit();
        let terms = Terms::of(filter);
        let after = decode_after(page.cursor.as_deref(), terms.is_some(), sort)?;
        let Some(terms) = terms else {
            let stmts = created_page(filter, sort, after.as_ref(), limit + 1);
            let rows = self.read(move |conn| run_merged(conn, &stmts, Some(sort), limit + 1).map_err(map_err)).await?;
            let items = rows.into_iter().map(|r| decode_contact(r.doc)).collect::<StoreResult<Vec<_>>>()?;
            return Ok(Page::from_overfetch(items, limit, |c| Cursor {
                sort: sort.name().into(),
                key: c.created_at.timestamp_millis(),
                id: c.id.to_string(),
            }));
        };
        // Match order: the stages in turn until the page (plus one) is full.
        let filter = filter.clone();
        let rows = self
            .read(move |conn| {
                let mut rows: Vec<(u8, Row)> = Vec::new();
                for stage in terms.stages() {
                    let want = limit + 1 - rows.len() as u32;
                    if want == 0 {
                        break;
                    }
                    let stmts = search_stage(&filter, &terms, stage, after.as_ref(), want);
                    rows.extend(run_merged(conn, &stmts, None, want).map_err(map_err)?.into_iter().map(|r| (stage, r)));
                }
                Ok(rows)
            })
            .await?;
        let items = rows
            .into_iter()
            .map(|(stage, r)| Ok((stage, r.key.unwrap_or_default(), decode_contact(r.doc)?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let page = Page::from_overfetch(items, limit, |(stage, key, c)| search_cursor(*stage, key, &c.id));
        Ok(Page { items: page.items.into_iter().map(|(_, _, c)| c).collect(), next_cursor: page.next_cursor })
    }

    async fn delete_contacts_by_source(&self, source: &str) -> StoreResult<u64> {
        let source = source.to_owned();
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM campaign_contacts WHERE contact_id IN (SELECT id FROM contacts WHERE source = ?1)",
                [&source],
            )
            .map_err(map_err)?;
            let n = conn.execute("DELETE FROM contacts WHERE source = ?1", [&source]).map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }

    async fn begin_import(&self, r: &ImportRecord) -> StoreResult<()> {
        let r = r.clone();
        self.write(move |conn| {
            conn.execute(
                "INSERT INTO imports (id, source, state, owner, started_at, heartbeat_at) VALUES (?1,?2,?3,?4,?5,?6)",
                params![
                    r.id,
                    r.source,
                    r.state.as_str(),
                    r.owner,
                    r.started_at.timestamp_millis(),
                    r.heartbeat_at.timestamp_millis()
                ],
            )
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn save_before_images(&self, import_id: &str, before: &[Contact]) -> StoreResult<()> {
        let (id, before) = (import_id.to_owned(), before.to_vec());
        self.write(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "INSERT INTO import_undo (import_id, contact_id, contact) VALUES (?1,?2,?3) ON CONFLICT DO NOTHING",
                )
                .map_err(map_err)?;
            for c in &before {
                st.execute(params![id, c.id.as_str(), to_doc(c)]).map_err(map_err)?;
            }
            Ok(())
        })
        .await
    }

    async fn heartbeat_import(&self, import_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        let id = import_id.to_owned();
        self.write(move |conn| {
            conn.execute("UPDATE imports SET heartbeat_at = ?2 WHERE id = ?1", params![id, now.timestamp_millis()])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn before_images(&self, import_id: &str, after: Option<&ContactId>, limit: u32) -> StoreResult<Vec<Contact>> {
        let (id, after) = (import_id.to_owned(), after.map(|a| a.as_str().to_owned()).unwrap_or_default());
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT contact FROM import_undo WHERE import_id = ?1 AND contact_id > ?2 ORDER BY contact_id LIMIT ?3",
                )
                .map_err(map_err)?;
            let docs = st
                .query_map(params![id, after, limit], |r| r.get::<_, String>(0))
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(map_err)?;
            docs.into_iter().map(decode_contact).collect()
        })
        .await
    }

    async fn end_import(&self, import_id: &str, state: ImportState) -> StoreResult<()> {
        let id = import_id.to_owned();
        self.write(move |conn| {
            conn.execute("DELETE FROM import_undo WHERE import_id = ?1", [&id]).map_err(map_err)?;
            conn.execute("UPDATE imports SET state = ?2 WHERE id = ?1", params![id, state.as_str()])
                .map_err(map_err)?;
            Ok(())
        })
        .await
    }

    async fn stale_imports(&self, before: DateTime<Utc>) -> StoreResult<Vec<ImportRecord>> {
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT id, source, state, owner, started_at, heartbeat_at FROM imports \
                     WHERE state = 'running' AND heartbeat_at < ?1 ORDER BY heartbeat_at LIMIT 100",
                )
                .map_err(map_err)?;
            st.query_map([before.timestamp_millis()], |r| {
                Ok(ImportRecord {
                    id: r.get(0)?,
                    source: r.get(1)?,
                    state: ImportState::parse(&r.get::<_, String>(2)?).unwrap_or(ImportState::Running),
                    owner: r.get(3)?,
                    started_at: from_millis(r.get(4)?),
                    heartbeat_at: from_millis(r.get(5)?),
                })
            })
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(map_err)
        })
        .await
    }
}
