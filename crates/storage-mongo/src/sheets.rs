//! Sheet links (`sheet_links`) and row states (`sheet_rows`) on MongoDB, as
//! typed documents (every instant a BSON date). The unique index
//! `spreadsheet_tab_uq` keeps one link per tab; row states are keyed
//! `{link_id}/{contact_id}` so a put is an idempotent upsert.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{self, DateTime as BsonDate, Document, doc};
use mongodb::options::FindOptions;
use serde::{Deserialize, Serialize};
use switchboard_domain::sheet::{OnRowDeleted, RowIssue, StatusField, SyncState, SyncStatus};
use switchboard_domain::{CampaignId, ContactId, SheetLink, SheetLinkId, SheetRow};
use switchboard_storage::{Cursor, Page, PageRequest, SheetStore, StoreError, StoreResult};

use crate::docs::{and, bson_date, chrono_date, keyset};
use crate::schema::{SHEET_LINKS, SHEET_ROWS};
use crate::{MongoStore, map_err};

fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("sheet document does not convert: {e}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct SyncStateDoc {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    status: Option<SyncStatus>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    last_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    last_sync_at: Option<BsonDate>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    last_success_at: Option<BsonDate>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    last_error: Option<String>,
    rows: i64,
    valid_rows: i64,
    rows_in: i64,
    rows_out: i64,
    pending_writebacks: i64,
    requests: i64,
    row_issues: Vec<RowIssue>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    written_hash: Option<String>,
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

impl From<&SyncState> for SyncStateDoc {
    fn from(s: &SyncState) -> Self {
        SyncStateDoc {
            status: s.status,
            last_version: s.last_version.map(n),
            last_sync_at: s.last_sync_at.map(bson_date),
            last_success_at: s.last_success_at.map(bson_date),
            last_error: s.last_error.clone(),
            rows: n(s.rows),
            valid_rows: n(s.valid_rows),
            rows_in: n(s.rows_in),
            rows_out: n(s.rows_out),
            pending_writebacks: n(s.pending_writebacks),
            requests: n(s.requests),
            row_issues: s.row_issues.clone(),
            written_hash: s.written_hash.clone(),
        }
    }
}

impl From<SyncStateDoc> for SyncState {
    fn from(d: SyncStateDoc) -> Self {
        SyncState {
            status: d.status,
            last_version: d.last_version.map(u),
            last_sync_at: d.last_sync_at.map(chrono_date),
            last_success_at: d.last_success_at.map(chrono_date),
            last_error: d.last_error,
            rows: u(d.rows),
            valid_rows: u(d.valid_rows),
            rows_in: u(d.rows_in),
            rows_out: u(d.rows_out),
            pending_writebacks: u(d.pending_writebacks),
            requests: u(d.requests),
            row_issues: d.row_issues,
            written_hash: d.written_hash,
        }
    }
}

/// A document of `sheet_links`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SheetLinkDoc {
    #[serde(rename = "_id")]
    id: String,
    spreadsheet_id: String,
    tab: String,
    header_row: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    campaign_id: Option<String>,
    mapping: BTreeMap<String, String>,
    status_columns: BTreeMap<StatusField, String>,
    on_row_deleted: OnRowDeleted,
    poll_secs: i64,
    paused: bool,
    state: SyncStateDoc,
    created_at: BsonDate,
    updated_at: BsonDate,
    version: i64,
}

fn link_doc(l: &SheetLink) -> StoreResult<Document> {
    let d = SheetLinkDoc {
        id: l.id.to_string(),
        spreadsheet_id: l.spreadsheet_id.clone(),
        tab: l.tab.clone(),
        header_row: i64::from(l.header_row),
        campaign_id: l.campaign_id.as_ref().map(|c| c.to_string()),
        mapping: l.mapping.clone(),
        status_columns: l.status_columns.clone(),
        on_row_deleted: l.on_row_deleted,
        poll_secs: i64::from(l.poll_secs),
        paused: l.paused,
        state: (&l.state).into(),
        created_at: bson_date(l.created_at),
        updated_at: bson_date(l.updated_at),
        version: l.version,
    };
    bson::serialize_to_document(&d).map_err(bad)
}

fn link_from(d: Document) -> StoreResult<SheetLink> {
    let d: SheetLinkDoc = bson::deserialize_from_document(d).map_err(bad)?;
    Ok(SheetLink {
        id: SheetLinkId::parse(&d.id).map_err(bad)?,
        spreadsheet_id: d.spreadsheet_id,
        tab: d.tab,
        header_row: u32::try_from(d.header_row).map_err(bad)?,
        campaign_id: d.campaign_id.as_deref().map(CampaignId::parse).transpose().map_err(bad)?,
        mapping: d.mapping,
        status_columns: d.status_columns,
        on_row_deleted: d.on_row_deleted,
        poll_secs: u32::try_from(d.poll_secs).map_err(bad)?,
        paused: d.paused,
        state: d.state.into(),
        created_at: chrono_date(d.created_at),
        updated_at: chrono_date(d.updated_at),
        version: d.version,
    })
}

/// A document of `sheet_rows`.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SheetRowDoc {
    #[serde(rename = "_id")]
    id: String,
    link_id: String,
    contact_id: String,
    fingerprint: String,
    row_hint: i64,
    seen_at: BsonDate,
}

fn row_key(link: &SheetLinkId, contact: &ContactId) -> String {
    format!("{link}/{contact}")
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

impl MongoStore {
    fn sheet_links(&self) -> mongodb::Collection<Document> {
        self.db.collection(SHEET_LINKS)
    }
    fn sheet_rows_coll(&self) -> mongodb::Collection<Document> {
        self.db.collection(SHEET_ROWS)
    }
}

#[async_trait]
impl SheetStore for MongoStore {
    async fn insert_sheet_link(&self, link: &SheetLink) -> StoreResult<()> {
        self.sheet_links().insert_one(link_doc(link)?).await.map_err(|e| tab_conflict(link, map_err(e)))?;
        Ok(())
    }

    async fn get_sheet_link(&self, id: &SheetLinkId) -> StoreResult<Option<SheetLink>> {
        self.sheet_links().find_one(doc! { "_id": id.as_str() }).await.map_err(map_err)?.map(link_from).transpose()
    }

    async fn list_sheet_links(&self, page: &PageRequest) -> StoreResult<Page<SheetLink>> {
        const SORT: &str = "sheet_links_created_desc";
        let cursor = page.cursor.as_deref().map(|c| Cursor::decode(c, SORT)).transpose()?;
        let limit = page.clamped_limit();
        let mut q = Document::new();
        if let Some(c) = cursor {
            q = and(q, keyset("created_at", "$lt", c.key, &c.id));
        }
        let opts =
            FindOptions::builder().sort(doc! { "created_at": -1, "_id": -1 }).limit(i64::from(limit) + 1).build();
        let docs: Vec<Document> = self
            .sheet_links()
            .find(q)
            .with_options(opts)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let items = docs.into_iter().map(link_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |l| Cursor {
            sort: SORT.into(),
            key: l.created_at.timestamp_millis(),
            id: l.id.to_string(),
        }))
    }

    async fn replace_sheet_link(&self, link: &SheetLink) -> StoreResult<SheetLink> {
        let mut set = link_doc(link)?;
        // Settings only: the state belongs to the sync job; identity fields never change.
        for k in ["_id", "state", "version", "created_at", "spreadsheet_id", "campaign_id"] {
            set.remove(k);
        }
        let r = self
            .sheet_links()
            .update_one(
                doc! { "_id": link.id.as_str(), "version": link.version },
                doc! { "$set": set, "$inc": { "version": 1_i64 } },
            )
            .await
            .map_err(|e| tab_conflict(link, map_err(e)))?;
        match (r.matched_count, self.get_sheet_link(&link.id).await?) {
            (1, Some(stored)) => Ok(stored),
            (_, None) => Err(StoreError::NotFound("sheet link")),
            (_, Some(stored)) => {
                Err(StoreError::stale(format!("sheet link {} (now version {})", link.id, stored.version)))
            }
        }
    }

    async fn set_sheet_state(&self, id: &SheetLinkId, state: &SyncState, now: DateTime<Utc>) -> StoreResult<()> {
        let state = bson::serialize_to_document(&SyncStateDoc::from(state)).map_err(bad)?;
        let r = self
            .sheet_links()
            .update_one(doc! { "_id": id.as_str() }, doc! { "$set": { "state": state, "updated_at": bson_date(now) } })
            .await
            .map_err(map_err)?;
        if r.matched_count == 1 { Ok(()) } else { Err(StoreError::NotFound("sheet link")) }
    }

    async fn delete_sheet_link(&self, id: &SheetLinkId) -> StoreResult<bool> {
        self.sheet_rows_coll().delete_many(doc! { "link_id": id.as_str() }).await.map_err(map_err)?;
        let r = self.sheet_links().delete_one(doc! { "_id": id.as_str() }).await.map_err(map_err)?;
        Ok(r.deleted_count == 1)
    }

    async fn sheet_rows(&self, link: &SheetLinkId) -> StoreResult<Vec<SheetRow>> {
        let opts = FindOptions::builder().sort(doc! { "link_id": 1, "contact_id": 1 }).build();
        let docs: Vec<Document> = self
            .sheet_rows_coll()
            .find(doc! { "link_id": link.as_str() })
            .with_options(opts)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter()
            .map(|d| {
                let d: SheetRowDoc = bson::deserialize_from_document(d).map_err(bad)?;
                Ok(SheetRow {
                    link_id: SheetLinkId::parse(&d.link_id).map_err(bad)?,
                    contact_id: ContactId::parse(&d.contact_id).map_err(bad)?,
                    fingerprint: d.fingerprint,
                    row_hint: u32::try_from(d.row_hint).map_err(bad)?,
                    seen_at: chrono_date(d.seen_at),
                })
            })
            .collect()
    }

    async fn put_sheet_rows(&self, rows: &[SheetRow]) -> StoreResult<()> {
        // Replace = delete the keys, then insert: two round trips per 1,000
        // rows instead of one per row (the client-level `bulkWrite` needs
        // MongoDB 8). A crash between the two loses only fingerprints, which
        // makes the next sync re-apply those rows: idempotent, not lost.
        for chunk in rows.chunks(1000) {
            let mut docs = Vec::with_capacity(chunk.len());
            for r in chunk {
                let d = SheetRowDoc {
                    id: row_key(&r.link_id, &r.contact_id),
                    link_id: r.link_id.to_string(),
                    contact_id: r.contact_id.to_string(),
                    fingerprint: r.fingerprint.clone(),
                    row_hint: i64::from(r.row_hint),
                    seen_at: bson_date(r.seen_at),
                };
                docs.push(bson::serialize_to_document(&d).map_err(bad)?);
            }
            let ids: Vec<bson::Bson> = docs.iter().filter_map(|d| d.get("_id").cloned()).collect();
            self.sheet_rows_coll().delete_many(doc! { "_id": { "$in": ids } }).await.map_err(map_err)?;
            self.sheet_rows_coll().insert_many(docs).ordered(false).await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn delete_sheet_rows(&self, link: &SheetLinkId, contacts: &[ContactId]) -> StoreResult<u64> {
        let ids: Vec<String> = contacts.iter().map(|c| row_key(link, c)).collect();
        let r = self.sheet_rows_coll().delete_many(doc! { "_id": { "$in": ids } }).await.map_err(map_err)?;
        Ok(r.deleted_count)
    }
}
