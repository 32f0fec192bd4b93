//! Campaigns and the dial gate on SQLite (contacts: `contacts.rs`; enrollments: `enrollments.rs`).
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
use switchboard_domain::{Campaign, CampaignId, CampaignStatus};
use switchboard_storage::{CampaignStore, Cursor, Page, PageRequest, SlotGrant, StoreError, StoreResult};

use crate::SqliteStore;
use crate::rows::Where;
use crate::rows::map_err;
use crate::rows::{decode_cursor, json_err, to_doc};

const CAMPAIGN_COLUMNS: &str = "doc, status, next_dial_at, dials, version, updated_at";

pub(crate) fn campaign_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> StoreResult<Campaign> {
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

pub(crate) fn campaign_by_id(conn: &Connection, id: &str) -> StoreResult<Option<Campaign>> {
    let sql = format!("SELECT {CAMPAIGN_COLUMNS} FROM campaigns WHERE id = ?1");
    let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
    let mut rows = st.query([id]).map_err(map_err)?;
    match rows.next().map_err(map_err)? {
        Some(r) => Ok(Some(campaign_from_row(conn, r)?)),
        None => Ok(None),
    }
}

/// The settings document: the record without the gate's fields.
pub(crate) fn campaign_doc(c: &Campaign) -> String {
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
