//! Campaigns and the dial gate on MongoDB, and what the contact, campaign
//! and enrollment files share (collections, status sets). Contacts:
//! `contacts.rs`; enrollments: `enrollments.rs`.
//!
//! Records are stored as their serde form with the queried timestamps as
//! BSON dates, `_id` for the id, and a few derived fields for indexes
//! (`name_lc`, `email_lc`, `dnc`, a GeoJSON `location`; on campaigns the
//! gate's `max_concurrent` / `interval_ms` copies).
//!
//! Atomicity without transactions:
//! - A claim is one `findOneAndUpdate` on the `due` index (ESR: campaign,
//!   status, then `next_attempt_at`), so concurrent claimers never get the
//!   same enrollment.
//! - The dial gate is one conditional `findOneAndUpdate` on the campaign:
//!   `status: running`, `next_dial_at <= now`, and `inflight.{max-1}` absent
//!   (the array has fewer than `max_concurrent` keys) — then `$push` the key.
//!   Releasing is `$pull`, idempotent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::options::FindOptions;
use switchboard_domain::{Campaign, CampaignId, CampaignStatus, Contact};
use switchboard_storage::{CampaignStore, Cursor, Page, PageRequest, SlotGrant, StoreError, StoreResult};

use crate::docs::{and, keyset};
use crate::records::{campaign_doc, campaign_from, contact_from};
use crate::schema::{CAMPAIGNS, CONTACTS, ENROLLMENTS};
use crate::{MongoStore, map_err};

pub(crate) const WAITING: [&str; 2] = ["pending", "retry_wait"];
pub(crate) const IN_FLIGHT: [&str; 2] = ["dialing", "in_call"];

/// `leases.rs` imports the date helper from here under this name.
pub(crate) use crate::docs::bson_date as ms;

impl MongoStore {
    pub(crate) fn contacts(&self) -> mongodb::Collection<Document> {
        self.db.collection(CONTACTS)
    }
    pub(crate) fn campaigns(&self) -> mongodb::Collection<Document> {
        self.db.collection(CAMPAIGNS)
    }
    pub(crate) fn enrollments(&self) -> mongodb::Collection<Document> {
        self.db.collection(ENROLLMENTS)
    }

    pub(crate) async fn contact_where(&self, q: Document) -> StoreResult<Option<Contact>> {
        self.contacts().find_one(q).await.map_err(map_err)?.map(contact_from).transpose()
    }
}

#[async_trait]
impl CampaignStore for MongoStore {
    async fn insert_campaign(&self, campaign: &Campaign) -> StoreResult<()> {
        self.campaigns().insert_one(campaign_doc(campaign)?).await.map_err(map_err)?;
        Ok(())
    }

    async fn get_campaign(&self, id: &CampaignId) -> StoreResult<Option<Campaign>> {
        self.campaigns().find_one(doc! { "_id": id.as_str() }).await.map_err(map_err)?.map(campaign_from).transpose()
    }

    async fn replace_campaign(&self, campaign: &Campaign) -> StoreResult<Campaign> {
        let full = campaign_doc(campaign)?;
        // Settings and status only: the gate's fields belong to the gate.
        let mut set = Document::new();
        for k in [
            "name",
            "description",
            "status",
            "agent",
            "schedule",
            "pacing",
            "retry",
            "dial_mode",
            "updated_at",
            "max_concurrent",
            "interval_ms",
        ] {
            match full.get(k) {
                Some(v) => set.insert(k, v.clone()),
                None => None,
            };
        }
        let r = self
            .campaigns()
            .update_one(
                doc! { "_id": campaign.id.as_str(), "version": campaign.version },
                doc! { "$set": set, "$inc": { "version": 1 } },
            )
            .await
            .map_err(map_err)?;
        match (r.matched_count, self.get_campaign(&campaign.id).await?) {
            (1, Some(stored)) => Ok(stored),
            (_, None) => Err(StoreError::NotFound("campaign")),
            (_, Some(stored)) => Err(StoreError::stale(format!(
                "campaign {} (now version {}, {})",
                campaign.id, stored.version, stored.status
            ))),
        }
    }

    async fn list_campaigns(&self, statuses: &[CampaignStatus], page: &PageRequest) -> StoreResult<Page<Campaign>> {
        const SORT: &str = "campaigns_created_desc";
        let cursor = page.cursor.as_deref().map(|c| Cursor::decode(c, SORT)).transpose()?;
        let limit = page.clamped_limit();
        let mut q = Document::new();
        if !statuses.is_empty() {
            q.insert("status", doc! { "$in": statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>() });
        }
        if let Some(c) = cursor {
            q = and(q, keyset("created_at", "$lt", c.key, &c.id));
        }
        let opts =
            FindOptions::builder().sort(doc! { "created_at": -1, "_id": -1 }).limit(i64::from(limit) + 1).build();
        let docs: Vec<Document> =
            self.campaigns().find(q).with_options(opts).await.map_err(map_err)?.try_collect().await.map_err(map_err)?;
        let items = docs.into_iter().map(campaign_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(items, limit, |c| Cursor {
            sort: SORT.into(),
            key: c.created_at.timestamp_millis(),
            id: c.id.to_string(),
        }))
    }

    async fn acquire_dial_slot(&self, id: &CampaignId, key: &str, now: DateTime<Utc>) -> StoreResult<SlotGrant> {
        for _ in 0..16 {
            let Some(c) = self.get_campaign(id).await? else { return Ok(SlotGrant::NotRunning) };
            if c.status != CampaignStatus::Running {
                return Ok(SlotGrant::NotRunning);
            }
            if c.inflight.iter().any(|k| k == key) {
                return Ok(SlotGrant::Granted);
            }
            let max = c.pacing.max_concurrent.max(1);
            if c.inflight.len() as u32 >= max {
                return Ok(SlotGrant::Full);
            }
            if c.next_dial_at > now {
                return Ok(SlotGrant::Paced(c.next_dial_at));
            }
            let filter = doc! {
                "_id": id.as_str(),
                "status": "running",
                "max_concurrent": i64::from(max),
                "next_dial_at": { "$lte": ms(now) },
                format!("inflight.{}", max - 1): { "$exists": false },
                "inflight": { "$ne": key },
            };
            let update = doc! {
                "$push": { "inflight": key },
                "$set": { "next_dial_at": ms(now + c.pacing.interval()) },
                "$inc": { "dials": 1_i64 },
            };
            if self.campaigns().find_one_and_update(filter, update).await.map_err(map_err)?.is_some() {
                return Ok(SlotGrant::Granted);
            }
            // Lost a race: re-read and decide again.
        }
        Err(StoreError::conflict("the dial gate kept changing; gave up"))
    }

    async fn delete_campaign(&self, id: &CampaignId) -> StoreResult<bool> {
        // Only a campaign that cannot dial any more; the status filter makes the check and the delete one step.
        let r = self
            .campaigns()
            .delete_one(doc! { "_id": id.as_str(), "status": { "$in": ["draft", "completed", "cancelled"] } })
            .await
            .map_err(map_err)?;
        if r.deleted_count == 1 {
            self.enrollments().delete_many(doc! { "campaign_id": id.as_str() }).await.map_err(map_err)?;
            return Ok(true);
        }
        match self.get_campaign(id).await? {
            Some(c) => Err(StoreError::conflict(format!("the campaign is {}; cancel it before deleting it", c.status))),
            None => {
                // Resumable: a delete that stopped between its two steps left the campaign's
                // enrollments behind (invisible: nothing lists or dials a missing campaign's);
                // deleting it again removes them.
                self.enrollments().delete_many(doc! { "campaign_id": id.as_str() }).await.map_err(map_err)?;
                Ok(false)
            }
        }
    }

    async fn release_dial_slot(&self, id: &CampaignId, key: &str) -> StoreResult<bool> {
        let r = self
            .campaigns()
            .update_one(doc! { "_id": id.as_str(), "inflight": key }, doc! { "$pull": { "inflight": key } })
            .await
            .map_err(map_err)?;
        Ok(r.modified_count == 1)
    }
}
