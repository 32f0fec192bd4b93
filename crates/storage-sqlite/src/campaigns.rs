//! Contacts, campaigns, enrollments and the dial gate on SQLite.
//!
//! Every table keeps the record as a JSON `doc` plus the columns that are
//! filtered, sorted or constrained (CHECKs play the part of MongoDB's
//! validators). Claims and the dial gate run on the single writer thread,
//! inside its transaction, so they are atomic: an `UPDATE … RETURNING` picks
//! and leases the due enrollment in one statement, and the gate counts and
//! inserts a slot row in the same transaction. `BEGIN IMMEDIATE` extends
//! that to several processes sharing the file.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::time::from_millis;
use switchboard_domain::{
    Campaign, CampaignId, CampaignStatus, Contact, ContactId, Enrollment, EnrollmentId, EnrollmentStatus,
};
use switchboard_storage::{
    BulkContacts, CampaignStore, ContactFilter, ContactSort, ContactStore, Cursor, EnrollmentStore, ImportRecord,
    ImportState, OnDuplicate, Page, PageRequest, SlotGrant, StoreError, StoreResult,
};

use crate::contact_query::{Row, Terms, created_page, decode_after, run_merged, search_cursor, search_stage};
use crate::rows::map_err;
use crate::{SqliteStore, Where};

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Other(anyhow::anyhow!("stored document does not decode: {e}"))
}

fn to_doc<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("records serialise")
}

fn decode_cursor(page: &PageRequest, sort: &str) -> StoreResult<Option<Cursor>> {
    page.cursor.as_deref().map(|c| Cursor::decode(c, sort)).transpose()
}

// ---- contacts ----

fn contact_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    r.get(0)
}

fn decode_contact(doc: String) -> StoreResult<Contact> {
    serde_json::from_str(&doc).map_err(json_err)
}

/// The stored id, version and creation time of a phone (no document decoding).
fn contact_key(conn: &Connection, phone: &str) -> StoreResult<Option<(String, i64, i64)>> {
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

fn contact_by(conn: &Connection, column: &str, value: &str) -> StoreResult<Option<Contact>> {
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

// ---- campaigns ----

const CAMPAIGN_COLUMNS: &str = "doc, status, next_dial_at, dials, version, updated_at";

fn campaign_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> StoreResult<Campaign> {
    let doc: String = r.get(0).map_err(map_err)?;
    let mut c: Campaign = serde_json::from_str(&doc).map_err(json_err)?;
    let status: String = r.get(1).map_err(map_err)?;
    c.status = status.parse().map_err(|e: String| StoreError::Other(anyhow::anyhow!(e)))?;
    c.next_dial_at = from_millis(r.get(2).map_err(map_err)?);
    c.dials = r.get::<_, i64>(3).map_err(map_err)? as u64;
    c.version = r.get(4).map_err(map_err)?;
    c.updated_at = from_millis(r.get(5).map_err(map_err)?);
    c.inflight = conn
        .prepare_cached("SELECT key FROM dial_slots WHERE campaign_id = ?1 ORDER BY key")
        .and_then(|mut st| st.query_map([c.id.as_str()], |r| r.get(0))?.collect())
        .map_err(map_err)?;
    Ok(c)
}

fn campaign_by_id(conn: &Connection, id: &str) -> StoreResult<Option<Campaign>> {
    let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1");
    let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
    let mut rows = st.query([id]).map_err(map_err)?;
    match rows.next().map_err(map_err)? {
        Some(r) => Ok(Some(campaign_from_row(conn, r)?)),
        None => Ok(None),
    }
}

/// The settings document: the record without the gate's fields.
fn campaign_doc(c: &Campaign) -> String {
    let mut c = c.clone();
    c.inflight.clear();
    to_doc(&c)
}

#[async_trait]
impl CampaignStore for SqliteStore {
    async fn insert_campaign(&self, campaign: &Campaign) -> StoreResult<()> {
        let c = campaign.clone();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO campaigns (id, name, status, max_concurrent, interval_ms, next_dial_at, dials, created_at, updated_at, version, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut st| {
                st.execute(params![
                    c.id.as_str(),
                    c.name,
                    c.status.as_str(),
                    c.pacing.max_concurrent,
                    c.pacing.interval().num_milliseconds(),
                    c.next_dial_at.timestamp_millis(),
                    c.dials as i64,
                    c.created_at.timestamp_millis(),
                    c.updated_at.timestamp_millis(),
                    c.version,
                    campaign_doc(&c),
                ])
            })
            .map(|_| ())
            .map_err(map_err)
        })
        .await
    }

    async fn get_campaign(&self, id: &CampaignId) -> StoreResult<Option<Campaign>> {
        let id = id.clone();
        self.read(move |conn| campaign_by_id(conn, id.as_str())).await
    }

    async fn replace_campaign(&self, campaign: &Campaign) -> StoreResult<Campaign> {
        let c = campaign.clone();
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE campaigns SET name = ?3, status = ?4, max_concurrent = ?5, interval_ms = ?6, updated_at = ?7, \
                     version = version + 1, doc = ?8 WHERE id = ?1 AND version = ?2",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        c.id.as_str(),
                        c.version,
                        c.name,
                        c.status.as_str(),
                        c.pacing.max_concurrent,
                        c.pacing.interval().num_milliseconds(),
                        c.updated_at.timestamp_millis(),
                        campaign_doc(&c),
                    ])
                })
                .map_err(map_err)?;
            match (n, campaign_by_id(conn, c.id.as_str())?) {
                (1, Some(stored)) => Ok(stored),
                (_, None) => Err(StoreError::NotFound("campaign")),
                (_, Some(stored)) => Err(StoreError::stale(format!(
                    "campaign {} (now version {}, {})",
                    c.id, stored.version, stored.status
                ))),
            }
        })
        .await
    }

    async fn list_campaigns(&self, statuses: &[CampaignStatus], page: &PageRequest) -> StoreResult<Page<Campaign>> {
        const SORT: &str = "campaigns_created_desc";
        let cursor = decode_cursor(page, SORT)?;
        let limit = page.clamped_limit();
        let mut w = Where::default();
        if !statuses.is_empty() {
            let marks = vec!["?"; statuses.len()].join(",");
            w.push(&format!("status IN ({marks})"), statuses.iter().map(|s| s.as_str().to_owned().into()));
        }
        if let Some(c) = cursor {
            w.push("(created_at, id) < (?, ?)", [c.key.into(), c.id.into()]);
        }
        let sql = format!(
            "SELECT {CAMPAIGN_COLUMNS} FROM campaigns {} ORDER BY created_at DESC, id DESC LIMIT {}",
            w.sql(),
            limit + 1
        );
        let items = self
            .read(move |conn| {
                let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
                let mut rows = st.query(rusqlite::params_from_iter(w.values)).map_err(map_err)?;
                let mut out = Vec::new();
                while let Some(r) = rows.next().map_err(map_err)? {
                    out.push(campaign_from_row(conn, r)?);
                }
                Ok(out)
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |c| Cursor {
            sort: SORT.into(),
            key: c.created_at.timestamp_millis(),
            id: c.id.to_string(),
        }))
    }

    async fn acquire_dial_slot(&self, id: &CampaignId, key: &str, now: DateTime<Utc>) -> StoreResult<SlotGrant> {
        let (id, key) = (id.clone(), key.to_owned());
        let now = now.timestamp_millis();
        self.write(move |conn| {
            let row: Option<(String, i64, i64, i64)> = conn
                .prepare_cached("SELECT status, max_concurrent, interval_ms, next_dial_at FROM campaigns WHERE id = ?1")
                .and_then(|mut st| {
                    st.query_row([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).optional()
                })
                .map_err(map_err)?;
            let Some((status, max, interval, next)) = row else { return Ok(SlotGrant::NotRunning) };
            if status != "running" {
                return Ok(SlotGrant::NotRunning);
            }
            let held: bool = conn
                .prepare_cached("SELECT 1 FROM dial_slots WHERE campaign_id = ?1 AND key = ?2")
                .and_then(|mut st| st.exists([id.as_str(), &key]))
                .map_err(map_err)?;
            if held {
                return Ok(SlotGrant::Granted);
            }
            let inflight: i64 = conn
                .prepare_cached("SELECT count(*) FROM dial_slots WHERE campaign_id = ?1")
                .and_then(|mut st| st.query_row([id.as_str()], |r| r.get(0)))
                .map_err(map_err)?;
            if inflight >= max {
                return Ok(SlotGrant::Full);
            }
            if next > now {
                return Ok(SlotGrant::Paced(from_millis(next)));
            }
            conn.prepare_cached("INSERT INTO dial_slots (campaign_id, key) VALUES (?1, ?2)")
                .and_then(|mut st| st.execute([id.as_str(), &key]))
                .map_err(map_err)?;
            conn.prepare_cached("UPDATE campaigns SET next_dial_at = ?2, dials = dials + 1 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![id.as_str(), now + interval]))
                .map_err(map_err)?;
            Ok(SlotGrant::Granted)
        })
        .await
    }

    async fn delete_campaign(&self, id: &CampaignId) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| {
            let status: Option<String> = conn
                .query_row("SELECT status FROM campaigns WHERE id = ?1", [id.as_str()], |r| r.get(0))
                .optional()
                .map_err(map_err)?;
            match status.as_deref() {
                None => Ok(false),
                Some(s @ ("scheduled" | "running" | "paused")) => {
                    Err(StoreError::conflict(format!("the campaign is {s}; cancel it before deleting it")))
                }
                Some(_) => {
                    conn.execute("DELETE FROM campaign_contacts WHERE campaign_id = ?1", [id.as_str()])
                        .map_err(map_err)?;
                    conn.execute("DELETE FROM dial_slots WHERE campaign_id = ?1", [id.as_str()]).map_err(map_err)?;
                    conn.execute("DELETE FROM campaigns WHERE id = ?1", [id.as_str()]).map_err(map_err)?;
                    Ok(true)
                }
            }
        })
        .await
    }

    async fn release_dial_slot(&self, id: &CampaignId, key: &str) -> StoreResult<bool> {
        let (id, key) = (id.clone(), key.to_owned());
        self.write(move |conn| {
            conn.prepare_cached("DELETE FROM dial_slots WHERE campaign_id = ?1 AND key = ?2")
                .and_then(|mut st| st.execute([id.as_str(), &key]))
                .map(|n| n == 1)
                .map_err(map_err)
        })
        .await
    }
}

// ---- enrollments ----

fn decode_enrollment(doc: String) -> StoreResult<Enrollment> {
    serde_json::from_str(&doc).map_err(json_err)
}

fn write_enrollment(conn: &Connection, e: &Enrollment, insert: bool) -> StoreResult<usize> {
    let sql = if insert {
        "INSERT OR IGNORE INTO campaign_contacts (id, campaign_id, contact_id, status, attempts, next_attempt_at, lease_owner, \
         lease_expires_at, lease_token, current_call_id, created_at, updated_at, version, doc) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
    } else {
        "UPDATE campaign_contacts SET status = ?4, attempts = ?5, next_attempt_at = ?6, lease_owner = ?7, lease_expires_at = ?8, \
         lease_token = ?9, current_call_id = ?10, updated_at = ?12, version = ?13, doc = ?14 \
         WHERE id = ?1 AND campaign_id = ?2 AND contact_id = ?3 AND version = ?13 - 1"
    };
    conn.prepare_cached(sql)
        .and_then(|mut st| {
            st.execute(params![
                e.id.as_str(),
                e.campaign_id.as_str(),
                e.contact_id.as_str(),
                e.status.as_str(),
                e.attempts,
                e.next_attempt_at.timestamp_millis(),
                e.lease.as_ref().map(|l| l.owner.clone()),
                e.lease.as_ref().map(|l| l.expires_at.timestamp_millis()),
                e.lease_token,
                e.current_call_id.as_ref().map(|c| c.to_string()),
                e.created_at.timestamp_millis(),
                e.updated_at.timestamp_millis(),
                e.version,
                to_doc(e),
            ])
        })
        .map_err(map_err)
}

fn enrollment_where(
    conn: &Connection,
    clause: &str,
    values: &[&dyn rusqlite::ToSql],
) -> StoreResult<Option<Enrollment>> {
    let sql = format!("SELECT doc FROM campaign_contacts WHERE {clause}");
    conn.prepare_cached(&sql)
        .and_then(|mut st| st.query_row(values, |r| r.get::<_, String>(0)).optional())
        .map_err(map_err)?
        .map(decode_enrollment)
        .transpose()
}

#[async_trait]
impl EnrollmentStore for SqliteStore {
    async fn enroll(&self, campaign_id: &CampaignId, contacts: &[ContactId], now: DateTime<Utc>) -> StoreResult<u64> {
        let campaign_id = campaign_id.clone();
        let contacts = contacts.to_vec();
        self.write(move |conn| {
            if campaign_by_id(conn, campaign_id.as_str())?.is_none() {
                return Err(StoreError::NotFound("campaign"));
            }
            let mut added = 0;
            for c in &contacts {
                let exists: bool = conn
                    .prepare_cached("SELECT 1 FROM contacts WHERE id = ?1")
                    .and_then(|mut st| st.exists([c.as_str()]))
                    .map_err(map_err)?;
                if !exists {
                    return Err(StoreError::Invalid(format!("contact {c} does not exist")));
                }
                added += write_enrollment(conn, &Enrollment::new(campaign_id.clone(), c.clone(), now), true)? as u64;
            }
            Ok(added)
        })
        .await
    }

    async fn get_enrollment(&self, id: &EnrollmentId) -> StoreResult<Option<Enrollment>> {
        let id = id.clone();
        self.read(move |conn| enrollment_where(conn, "id = ?1", &[&id.as_str()])).await
    }

    async fn find_enrollment(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
    ) -> StoreResult<Option<Enrollment>> {
        let (a, b) = (campaign_id.clone(), contact_id.clone());
        self.read(move |conn| {
            enrollment_where(conn, "campaign_id = ?1 AND contact_id = ?2", &[&a.as_str(), &b.as_str()])
        })
        .await
    }

    async fn list_enrollments(
        &self,
        campaign_id: &CampaignId,
        statuses: &[EnrollmentStatus],
        page: &PageRequest,
    ) -> StoreResult<Page<Enrollment>> {
        const SORT: &str = "enrollments_created_asc";
        let cursor = decode_cursor(page, SORT)?;
        let limit = page.clamped_limit();
        let mut w = Where::default();
        w.eq("campaign_id", Some(campaign_id.as_str()));
        if !statuses.is_empty() {
            let marks = vec!["?"; statuses.len()].join(",");
            w.push(&format!("status IN ({marks})"), statuses.iter().map(|s| s.as_str().to_owned().into()));
        }
        if let Some(c) = cursor {
            w.push("(created_at, id) > (?, ?)", [c.key.into(), c.id.into()]);
        }
        let sql = format!("SELECT doc FROM campaign_contacts {} ORDER BY created_at, id LIMIT {}", w.sql(), limit + 1);
        let docs = self
            .read(move |conn| {
                let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
                st.query_map(rusqlite::params_from_iter(w.values), |r| r.get::<_, String>(0))
                    .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                    .map_err(map_err)
            })
            .await?;
        let items = docs.into_iter().map(decode_enrollment).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |e| Cursor {
            sort: SORT.into(),
            key: e.created_at.timestamp_millis(),
            id: e.id.to_string(),
        }))
    }

    async fn count_enrollments(&self, campaign_id: &CampaignId) -> StoreResult<Vec<(EnrollmentStatus, u64)>> {
        let id = campaign_id.clone();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached("SELECT status, count(*) FROM campaign_contacts WHERE campaign_id = ?1 GROUP BY status")
                .map_err(map_err)?;
            let rows: Vec<(String, i64)> = st
                .query_map([id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|it| it.collect())
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(s, n)| {
                    s.parse::<EnrollmentStatus>()
                        .map(|s| (s, n as u64))
                        .map_err(|e| StoreError::Other(anyhow::anyhow!(e)))
                })
                .collect()
        })
        .await
    }

    async fn claim_enrollment(
        &self,
        campaign_id: &CampaignId,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Enrollment>> {
        let (id, owner) = (campaign_id.clone(), owner.to_owned());
        let (now, until) = (now.timestamp_millis(), lease_until.timestamp_millis());
        self.write(move |conn| {
            // Pick and lease in one statement on the writer: no two claimers can get the same row.
            let picked: Option<String> = conn
                .prepare_cached(
                    "UPDATE campaign_contacts SET status = 'dialing', lease_owner = ?3, lease_expires_at = ?4, \
                     lease_token = lease_token + 1, version = version + 1, updated_at = ?2 \
                     WHERE id = (SELECT id FROM campaign_contacts WHERE campaign_id = ?1 AND status IN ('pending','retry_wait') \
                                 AND next_attempt_at <= ?2 ORDER BY next_attempt_at, id LIMIT 1) \
                     RETURNING id",
                )
                .and_then(|mut st| st.query_row(params![id.as_str(), now, owner, until], |r| r.get(0)).optional())
                .map_err(map_err)?;
            let Some(eid) = picked else { return Ok(None) };
            // Bring the document in line with the columns just set.
            let mut e = enrollment_where(conn, "id = ?1", &[&eid.as_str()])?.ok_or(StoreError::NotFound("enrollment"))?;
            let (token, version): (i64, i64) = conn
                .query_row("SELECT lease_token, version FROM campaign_contacts WHERE id = ?1", [&eid], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(map_err)?;
            e.status = EnrollmentStatus::Dialing;
            e.lease = Some(switchboard_domain::enrollment::Lease { owner, expires_at: from_millis(until) });
            e.lease_token = token;
            e.version = version;
            e.updated_at = from_millis(now);
            conn.prepare_cached("UPDATE campaign_contacts SET doc = ?2 WHERE id = ?1")
                .and_then(|mut st| st.execute(params![eid, to_doc(&e)]))
                .map_err(map_err)?;
            Ok(Some(e))
        })
        .await
    }

    async fn replace_enrollment(&self, enrollment: &Enrollment) -> StoreResult<Enrollment> {
        let mut e = enrollment.clone();
        e.version += 1;
        self.write(move |conn| {
            if write_enrollment(conn, &e, false)? == 1 {
                return Ok(e);
            }
            match enrollment_where(conn, "id = ?1", &[&e.id.as_str()])? {
                None => Err(StoreError::NotFound("enrollment")),
                Some(now) => {
                    Err(StoreError::stale(format!("enrollment {} (now version {}, {})", e.id, now.version, now.status)))
                }
            }
        })
        .await
    }

    async fn expired_leases(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Enrollment>> {
        let now = now.timestamp_millis();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT doc FROM campaign_contacts WHERE status = 'dialing' AND lease_expires_at < ?1 \
                     ORDER BY lease_expires_at LIMIT ?2",
                )
                .map_err(map_err)?;
            let docs: Vec<String> =
                st.query_map(params![now, limit], |r| r.get(0)).and_then(|it| it.collect()).map_err(map_err)?;
            docs.into_iter().map(decode_enrollment).collect()
        })
        .await
    }

    async fn remove_enrollment(&self, id: &EnrollmentId) -> StoreResult<bool> {
        let id = id.clone();
        self.write(move |conn| {
            let status: Option<String> = conn
                .query_row("SELECT status FROM campaign_contacts WHERE id = ?1", [id.as_str()], |r| r.get(0))
                .optional()
                .map_err(map_err)?;
            match status.as_deref() {
                None => Ok(false),
                Some("dialing" | "in_call") => {
                    Err(StoreError::conflict(format!("enrollment {id} has a call in flight")))
                }
                Some(_) => {
                    conn.execute("DELETE FROM campaign_contacts WHERE id = ?1", [id.as_str()]).map_err(map_err)?;
                    Ok(true)
                }
            }
        })
        .await
    }

    async fn cancel_waiting(&self, campaign_id: &CampaignId, now: DateTime<Utc>) -> StoreResult<u64> {
        let id = campaign_id.clone();
        let now = now.timestamp_millis();
        self.write(move |conn| {
            let n = conn
                .execute(
                    "UPDATE campaign_contacts SET status = 'cancelled', version = version + 1, updated_at = ?2, \
                     doc = json_set(doc, '$.status', 'cancelled', '$.version', version + 1, '$.reason', 'campaign cancelled', \
                                    '$.updated_at', ?3) \
                     WHERE campaign_id = ?1 AND status IN ('pending','retry_wait')",
                    params![id.as_str(), now, to_rfc3339(now)],
                )
                .map_err(map_err)?;
            Ok(n as u64)
        })
        .await
    }
}

fn to_rfc3339(ms: i64) -> String {
    // The same form serde gives chrono timestamps, so the document decodes identically.
    serde_json::to_value(from_millis(ms)).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}
