//! Contacts, campaigns, enrollments and the dial gate on MongoDB.
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
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::{FindOneAndUpdateOptions, FindOptions, ReturnDocument};
use switchboard_domain::{
    Campaign, CampaignId, CampaignStatus, Contact, ContactId, Enrollment, EnrollmentId, EnrollmentStatus,
};
use switchboard_storage::{
    BulkContacts, CampaignStore, ContactFilter, ContactSort, ContactStore, Cursor, EnrollmentStore, ImportRecord,
    ImportState, OnDuplicate, Page, PageRequest, SlotGrant, StoreError, StoreResult,
};

use crate::records::{campaign_doc, campaign_from, contact_doc, contact_from, enrollment_doc, enrollment_from};
use crate::schema::{CAMPAIGNS, CONTACTS, ContactAfter, ENROLLMENTS, IMPORT_UNDO, IMPORTS, contact_page_queries};
use crate::{MongoStore, and, is_code, keyset, map_err};

const WAITING: [&str; 2] = ["pending", "retry_wait"];
const IN_FLIGHT: [&str; 2] = ["dialing", "in_call"];

fn ms(t: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(t.timestamp_millis())
}

// ---- contacts ----

/// The cursor sort name of search pages (match order, whatever the sort).
const SEARCH_SORT: &str = "contacts_search";

/// Decodes a contacts page cursor (a search cursor's `id` is the contact id
/// followed by the matched key; its `key` is the stage).
fn contact_after(cursor: Option<&str>, search: bool, sort: ContactSort) -> StoreResult<Option<ContactAfter>> {
    let Some(c) = cursor else { return Ok(None) };
    if !search {
        let c = Cursor::decode(c, sort.name())?;
        return Ok(Some(ContactAfter::Created(c.key, c.id)));
    }
    let c = Cursor::decode(c, SEARCH_SORT)?;
    let bad = || StoreError::Invalid("cursor is not a cursor this API issued".into());
    let split = "con_".len() + 32;
    if !(0..=2).contains(&c.key) || c.id.len() < split || !c.id.is_char_boundary(split) {
        return Err(bad());
    }
    let (id, key) = c.id.split_at(split);
    ContactId::parse(id).map_err(|_| bad())?;
    Ok(Some(ContactAfter::Matched(c.key as u8, key.to_owned(), id.to_owned())))
}

impl MongoStore {
    fn contacts(&self) -> mongodb::Collection<Document> {
        self.db.collection(CONTACTS)
    }
    fn campaigns(&self) -> mongodb::Collection<Document> {
        self.db.collection(CAMPAIGNS)
    }
    fn enrollments(&self) -> mongodb::Collection<Document> {
        self.db.collection(ENROLLMENTS)
    }

    async fn contact_where(&self, q: Document) -> StoreResult<Option<Contact>> {
        self.contacts().find_one(q).await.map_err(map_err)?.map(contact_from).transpose()
    }
}

impl MongoStore {
    /// `OnDuplicate::Fail`: the whole batch or nothing.
    ///
    /// - Replica set / mongos: check and insert in one transaction (the
    ///   driver retries on its transient labels).
    /// - Standalone: check, then insert; if a phone was stored concurrently
    ///   (duplicate key), delete exactly the documents this call inserted
    ///   (the ordered insert stops at the first failure, so those before it)
    ///   and answer `Conflict`. Residual window: between
    ///   the insert and that delete, readers can see part of the batch (and
    ///   could, e.g., enroll one of those contacts); a crash inside it leaves
    ///   the part that was inserted.
    async fn insert_contacts_all_or_nothing(&self, contacts: &[Contact]) -> StoreResult<BulkContacts> {
        if contacts.is_empty() {
            return Ok(BulkContacts::default());
        }
        let docs = contacts.iter().map(contact_doc).collect::<StoreResult<Vec<_>>>()?;
        let phones: Vec<String> = contacts.iter().map(|c| c.phone.clone()).collect();
        let exists = |p: &str| StoreError::conflict(format!("a contact with phone {p} exists"));
        if self.transactions {
            let coll = self.contacts();
            let mut session = self.client.start_session().await.map_err(map_err)?;
            let opts = mongodb::options::TransactionOptions::builder()
                .read_concern(mongodb::options::ReadConcern::snapshot())
                .write_concern(self.write_concern.clone())
                .build();
            session
                .start_transaction()
                .with_options(opts)
                .and_run2(async move |s| {
                    for chunk in phones.chunks(1000) {
                        let hit = coll.find_one(doc! { "phone": { "$in": chunk } }).session(&mut *s).await?;
                        if let Some(p) = hit.as_ref().and_then(|d| d.get_str("phone").ok()) {
                            return Err(crate::tx_abort(exists(p)));
                        }
                    }
                    coll.insert_many(docs.clone()).session(&mut *s).await?;
                    Ok(())
                })
                .await
                .map_err(|e| if is_code(&e, 11000) { exists("of the batch") } else { crate::tx_err(e) })?;
            return Ok(BulkContacts { inserted: contacts.len() as u64, ..Default::default() });
        }
        if let Some(p) = self.existing_phones(&phones).await?.first() {
            return Err(exists(p));
        }
        let ids: Vec<&str> = contacts.iter().map(|c| c.id.as_str()).collect();
        match self.contacts().insert_many(docs).await {
            Ok(_) => Ok(BulkContacts { inserted: contacts.len() as u64, ..Default::default() }),
            Err(e) if is_code(&e, 11000) => {
                // Ordered insert: exactly the documents before the first failed one were inserted.
                let upto = match e.kind.as_ref() {
                    mongodb::error::ErrorKind::InsertMany(m) => {
                        m.write_errors.iter().flatten().map(|w| w.index).min().unwrap_or(0)
                    }
                    _ => 0,
                };
                for chunk in ids[..upto.min(ids.len())].chunks(1000) {
                    self.contacts().delete_many(doc! { "_id": { "$in": chunk } }).await.map_err(map_err)?;
                }
                tracing::debug!(error = %e, "duplicate phone in an all-or-nothing batch");
                Err(StoreError::conflict("a phone of the batch was stored concurrently; nothing was kept"))
            }
            Err(e) => Err(map_err(e)),
        }
    }
}

fn phone_conflict(e: mongodb::error::Error, phone: &str) -> StoreError {
    if is_code(&e, 11000) { StoreError::conflict(format!("a contact with phone {phone} exists")) } else { map_err(e) }
}

#[async_trait]
impl ContactStore for MongoStore {
    async fn insert_contact(&self, contact: &Contact) -> StoreResult<()> {
        self.contacts().insert_one(contact_doc(contact)?).await.map_err(|e| phone_conflict(e, &contact.phone))?;
        Ok(())
    }

    async fn insert_contacts(&self, contacts: &[Contact], on_duplicate: OnDuplicate) -> StoreResult<BulkContacts> {
        if on_duplicate == OnDuplicate::Fail {
            return self.insert_contacts_all_or_nothing(contacts).await;
        }
        let phones: Vec<String> = contacts.iter().map(|c| c.phone.clone()).collect();
        let existing = self.existing_phones(&phones).await?;
        let mut out = BulkContacts::default();
        let mut fresh = Vec::new();
        for (i, c) in contacts.iter().enumerate() {
            if !existing.contains(&c.phone) {
                fresh.push(contact_doc(c)?);
                continue;
            }
            match on_duplicate {
                OnDuplicate::Skip | OnDuplicate::Fail => out.skipped.push(i),
                OnDuplicate::Update => {
                    let Some(stored) = self.find_contact_by_phone(&c.phone).await? else { continue };
                    let mut merged = c.clone();
                    merged.id = stored.id.clone();
                    merged.created_at = stored.created_at;
                    merged.version = stored.version;
                    self.replace_contact(&merged).await?;
                    out.updated += 1;
                }
            }
        }
        if !fresh.is_empty() {
            let n = fresh.len() as u64;
            self.contacts().insert_many(fresh).await.map_err(|e| {
                if is_code(&e, 11000) {
                    StoreError::conflict("a phone of the batch was stored concurrently")
                } else {
                    map_err(e)
                }
            })?;
            out.inserted = n;
        }
        Ok(out)
    }

    async fn get_contact(&self, id: &ContactId) -> StoreResult<Option<Contact>> {
        self.contact_where(doc! { "_id": id.as_str() }).await
    }

    async fn find_contact_by_phone(&self, phone: &str) -> StoreResult<Option<Contact>> {
        self.contact_where(doc! { "phone": phone }).await
    }

    async fn existing_phones(&self, phones: &[String]) -> StoreResult<Vec<String>> {
        let mut out = Vec::new();
        for chunk in phones.chunks(1000) {
            let opts = FindOptions::builder().projection(doc! { "phone": 1, "_id": 0 }).build();
            let docs: Vec<Document> = self
                .contacts()
                .find(doc! { "phone": { "$in": chunk } })
                .with_options(opts)
                .await
                .map_err(map_err)?
                .try_collect()
                .await
                .map_err(map_err)?;
            out.extend(docs.into_iter().filter_map(|d| d.get_str("phone").ok().map(str::to_owned)));
        }
        Ok(out)
    }

    async fn replace_contact(&self, contact: &Contact) -> StoreResult<Contact> {
        let mut c = contact.clone();
        c.version += 1;
        let r = self
            .contacts()
            .replace_one(doc! { "_id": c.id.as_str(), "version": contact.version }, contact_doc(&c)?)
            .await
            .map_err(|e| phone_conflict(e, &c.phone))?;
        if r.matched_count == 1 {
            return Ok(c);
        }
        match self.get_contact(&c.id).await? {
            None => Err(StoreError::NotFound("contact")),
            Some(s) => Err(StoreError::stale(format!("contact {} (now version {})", c.id, s.version))),
        }
    }

    /// Each step is conditional on the state it checked, and the order makes
    /// it resumable: (1) refuse if an enrollment is in flight; (2) delete the
    /// enrollments that are *not* in flight (one claimed meanwhile is not
    /// touched); (3) if one was claimed meanwhile, refuse — the contact stays,
    /// with only that enrollment, and a later retry finishes; (4) delete the
    /// contact. A crash at any point leaves the contact and what a retry
    /// needs. On a replica set the steps run in one transaction.
    async fn delete_contact(&self, id: &ContactId) -> StoreResult<bool> {
        let in_flight = doc! { "contact_id": id.as_str(), "status": { "$in": IN_FLIGHT.to_vec() } };
        let idle = doc! { "contact_id": id.as_str(), "status": { "$nin": IN_FLIGHT.to_vec() } };
        let busy = || StoreError::conflict(format!("contact {id} has a call in flight"));
        if self.transactions {
            let (contacts, enrollments) = (self.contacts(), self.enrollments());
            let mut session = self.client.start_session().await.map_err(map_err)?;
            let opts = mongodb::options::TransactionOptions::builder()
                .read_concern(mongodb::options::ReadConcern::snapshot())
                .write_concern(self.write_concern.clone())
                .build();
            let contact_id = id.as_str().to_owned();
            let conflict = busy();
            return session
                .start_transaction()
                .with_options(opts)
                .and_run2(async move |s| {
                    if enrollments.find_one(in_flight.clone()).session(&mut *s).await?.is_some() {
                        return Err(crate::tx_abort(StoreError::conflict(conflict.to_string())));
                    }
                    enrollments.delete_many(idle.clone()).session(&mut *s).await?;
                    let r = contacts.delete_one(doc! { "_id": &contact_id }).session(&mut *s).await?;
                    Ok(r.deleted_count == 1)
                })
                .await
                .map_err(crate::tx_err);
        }
        if self.enrollments().find_one(in_flight.clone()).await.map_err(map_err)?.is_some() {
            return Err(busy());
        }
        self.enrollments().delete_many(idle).await.map_err(map_err)?;
        if self.enrollments().find_one(in_flight).await.map_err(map_err)?.is_some() {
            return Err(busy());
        }
        let r = self.contacts().delete_one(doc! { "_id": id.as_str() }).await.map_err(map_err)?;
        Ok(r.deleted_count == 1)
    }

    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        sort: ContactSort,
        page: &PageRequest,
    ) -> StoreResult<Page<Contact>> {
        let limit = page.clamped_limit();
        let search = filter.search.as_ref().is_some_and(|q| !q.trim().is_empty());
        let after = contact_after(page.cursor.as_deref(), search, sort)?;
        // One find per stage (one in all without `search`), until the page plus one is full.
        let mut rows: Vec<(Option<u8>, Contact)> = Vec::new();
        for q in contact_page_queries(filter, sort, after.as_ref()) {
            let want = i64::from(limit) + 1 - rows.len() as i64;
            if want <= 0 {
                break;
            }
            let opts = FindOptions::builder().sort(q.sort).limit(want).build();
            let docs: Vec<Document> = self
                .contacts()
                .find(q.filter)
                .with_options(opts)
                .await
                .map_err(map_err)?
                .try_collect()
                .await
                .map_err(map_err)?;
            for d in docs {
                rows.push((q.stage, contact_from(d)?));
            }
        }
        let page = Page::from_overfetch(rows, limit, |(stage, c)| match stage {
            None => Cursor { sort: sort.name().into(), key: c.created_at.timestamp_millis(), id: c.id.to_string() },
            Some(s) => {
                let key = match s {
                    0 => c.name.as_ref().map(|n| n.to_lowercase()),
                    1 => c.email.as_ref().map(|e| e.to_lowercase()),
                    _ => Some(c.phone.clone()),
                };
                Cursor {
                    sort: SEARCH_SORT.into(),
                    key: i64::from(*s),
                    id: format!("{}{}", c.id, key.unwrap_or_default()),
                }
            }
        });
        Ok(Page { items: page.items.into_iter().map(|(_, c)| c).collect(), next_cursor: page.next_cursor })
    }

    async fn delete_contacts_by_source(&self, source: &str) -> StoreResult<u64> {
        let ids: Vec<Document> = self
            .contacts()
            .find(doc! { "source": source })
            .with_options(FindOptions::builder().projection(doc! { "_id": 1 }).build())
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let ids: Vec<Bson> = ids.into_iter().filter_map(|d| d.get("_id").cloned()).collect();
        for chunk in ids.chunks(1000) {
            self.enrollments().delete_many(doc! { "contact_id": { "$in": chunk } }).await.map_err(map_err)?;
        }
        let r = self.contacts().delete_many(doc! { "source": source }).await.map_err(map_err)?;
        Ok(r.deleted_count)
    }

    async fn begin_import(&self, r: &ImportRecord) -> StoreResult<()> {
        let d = |t: DateTime<Utc>| bson::DateTime::from_millis(t.timestamp_millis());
        self.db
            .collection::<Document>(IMPORTS)
            .insert_one(doc! {
                "_id": &r.id, "source": &r.source, "state": r.state.as_str(), "owner": &r.owner,
                "started_at": d(r.started_at), "heartbeat_at": d(r.heartbeat_at),
            })
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn save_before_images(&self, import_id: &str, before: &[Contact]) -> StoreResult<()> {
        let coll = self.db.collection::<Document>(IMPORT_UNDO);
        for c in before {
            // The first image of a contact wins: a retried batch keeps the true original.
            let key = format!("{import_id}:{}", c.id);
            coll.update_one(
                doc! { "_id": &key },
                doc! { "$setOnInsert": {
                    "import_id": import_id, "contact_id": c.id.as_str(), "contact": contact_doc(c)?,
                } },
            )
            .upsert(true)
            .await
            .map_err(map_err)?;
        }
        Ok(())
    }

    async fn heartbeat_import(&self, import_id: &str, now: DateTime<Utc>) -> StoreResult<()> {
        self.db
            .collection::<Document>(IMPORTS)
            .update_one(
                doc! { "_id": import_id },
                doc! { "$set": { "heartbeat_at": bson::DateTime::from_millis(now.timestamp_millis()) } },
            )
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn before_images(&self, import_id: &str, after: Option<&ContactId>, limit: u32) -> StoreResult<Vec<Contact>> {
        let mut q = doc! { "import_id": import_id };
        if let Some(a) = after {
            q.insert("contact_id", doc! { "$gt": a.as_str() });
        }
        let docs: Vec<Document> = self
            .db
            .collection::<Document>(IMPORT_UNDO)
            .find(q)
            .sort(doc! { "contact_id": 1 })
            .limit(i64::from(limit))
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter()
            .map(|mut d| match d.remove("contact") {
                Some(Bson::Document(c)) => contact_from(c),
                _ => Err(StoreError::Other(anyhow::anyhow!("import_undo document without a contact"))),
            })
            .collect()
    }

    async fn end_import(&self, import_id: &str, state: ImportState) -> StoreResult<()> {
        self.db
            .collection::<Document>(IMPORT_UNDO)
            .delete_many(doc! { "import_id": import_id })
            .await
            .map_err(map_err)?;
        self.db
            .collection::<Document>(IMPORTS)
            .update_one(doc! { "_id": import_id }, doc! { "$set": { "state": state.as_str() } })
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn stale_imports(&self, before: DateTime<Utc>) -> StoreResult<Vec<ImportRecord>> {
        let docs: Vec<Document> = self
            .db
            .collection::<Document>(IMPORTS)
            .find(doc! { "state": "running", "heartbeat_at": { "$lt": bson::DateTime::from_millis(before.timestamp_millis()) } })
            .sort(doc! { "heartbeat_at": 1 })
            .limit(100)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        let date = |d: &Document, k: &str| -> StoreResult<DateTime<Utc>> {
            match d.get(k) {
                Some(Bson::DateTime(t)) => Ok(switchboard_domain::time::from_millis(t.timestamp_millis())),
                other => Err(StoreError::Other(anyhow::anyhow!("imports.{k} is not a date: {other:?}"))),
            }
        };
        docs.iter()
            .map(|d| {
                Ok(ImportRecord {
                    id: d.get_str("_id").map_err(|e| StoreError::Other(e.into()))?.to_owned(),
                    source: d.get_str("source").map_err(|e| StoreError::Other(e.into()))?.to_owned(),
                    state: ImportState::parse(d.get_str("state").unwrap_or("running")).unwrap_or(ImportState::Running),
                    owner: d.get_str("owner").unwrap_or_default().to_owned(),
                    started_at: date(d, "started_at")?,
                    heartbeat_at: date(d, "heartbeat_at")?,
                })
            })
            .collect()
    }
}

// ---- campaigns ----

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

// ---- enrollments ----

/// The claim: equality on campaign, `$in` on the waiting statuses, range on
/// `next_attempt_at`, sorted by it (the `due` index, ESR).
pub(crate) fn claim_filter(campaign_id: &str, now: DateTime<Utc>) -> Document {
    doc! { "campaign_id": campaign_id, "status": { "$in": WAITING.to_vec() }, "next_attempt_at": { "$lte": ms(now) } }
}

pub(crate) fn claim_sort() -> Document {
    doc! { "next_attempt_at": 1, "_id": 1 }
}

/// Lease recovery (the `leases` index).
pub(crate) fn expired_filter(now: DateTime<Utc>) -> Document {
    doc! { "status": "dialing", "lease.expires_at": { "$lt": ms(now) } }
}

pub(crate) fn expired_sort() -> Document {
    doc! { "lease.expires_at": 1 }
}

/// One contact's enrollment in one campaign (the `campaign_contact_uq` index).
pub(crate) fn enrollment_of(campaign_id: &str, contact_id: &str) -> Document {
    doc! { "campaign_id": campaign_id, "contact_id": contact_id }
}

/// The compare-and-set filter of a dialer's write: the version it read, the
/// fencing token of the claim it holds (every claim increments it, so a stale
/// holder's token never matches a newer holder's document) and, while the
/// written record names a lease holder, that holder as the stored
/// `lease.owner` (or no stored lease: a write may take a free enrollment, never
/// one another holder has). The dialer clears the lease when it places, hands
/// back or recovers an enrollment; the token still fences those writes.
pub(crate) fn enrollment_cas_filter(read: &Enrollment) -> Document {
    let mut f = doc! { "_id": read.id.as_str(), "version": read.version, "lease_token": read.lease_token };
    if let Some(lease) = &read.lease {
        f.insert("$or", vec![doc! { "lease": { "$exists": false } }, doc! { "lease.owner": lease.owner.as_str() }]);
    }
    f
}

async fn collect(cursor: mongodb::Cursor<Document>) -> StoreResult<Vec<Enrollment>> {
    let docs: Vec<Document> = cursor.try_collect().await.map_err(map_err)?;
    docs.into_iter().map(enrollment_from).collect()
}

#[async_trait]
impl EnrollmentStore for MongoStore {
    async fn enroll(&self, campaign_id: &CampaignId, contacts: &[ContactId], now: DateTime<Utc>) -> StoreResult<u64> {
        if self.get_campaign(campaign_id).await?.is_none() {
            return Err(StoreError::NotFound("campaign"));
        }
        let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
        let mut known = 0usize;
        for chunk in ids.chunks(1000) {
            known += self.contacts().count_documents(doc! { "_id": { "$in": chunk } }).await.map_err(map_err)? as usize;
        }
        if known != ids.len() {
            for c in contacts {
                if self.get_contact(c).await?.is_none() {
                    return Err(StoreError::Invalid(format!("contact {c} does not exist")));
                }
            }
        }
        let mut added = 0;
        for c in contacts {
            let e = Enrollment::new(campaign_id.clone(), c.clone(), now);
            match self.enrollments().insert_one(enrollment_doc(&e)?).await {
                Ok(_) => added += 1,
                Err(err) if is_code(&err, 11000) => {}
                Err(err) => return Err(map_err(err)),
            }
        }
        Ok(added)
    }

    async fn get_enrollment(&self, id: &EnrollmentId) -> StoreResult<Option<Enrollment>> {
        self.enrollments()
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?
            .map(enrollment_from)
            .transpose()
    }

    async fn find_enrollment(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
    ) -> StoreResult<Option<Enrollment>> {
        self.enrollments()
            .find_one(enrollment_of(campaign_id.as_str(), contact_id.as_str()))
            .await
            .map_err(map_err)?
            .map(enrollment_from)
            .transpose()
    }

    async fn list_enrollments(
        &self,
        campaign_id: &CampaignId,
        statuses: &[EnrollmentStatus],
        page: &PageRequest,
    ) -> StoreResult<Page<Enrollment>> {
        const SORT: &str = "enrollments_created_asc";
        let cursor = page.cursor.as_deref().map(|c| Cursor::decode(c, SORT)).transpose()?;
        let limit = page.clamped_limit();
        let mut q = doc! { "campaign_id": campaign_id.as_str() };
        if !statuses.is_empty() {
            q.insert("status", doc! { "$in": statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>() });
        }
        if let Some(c) = cursor {
            q = and(q, keyset("created_at", "$gt", c.key, &c.id));
        }
        let opts = FindOptions::builder().sort(doc! { "created_at": 1, "_id": 1 }).limit(i64::from(limit) + 1).build();
        let items = collect(self.enrollments().find(q).with_options(opts).await.map_err(map_err)?).await?;
        Ok(Page::from_overfetch(items, limit, |e| Cursor {
            sort: SORT.into(),
            key: e.created_at.timestamp_millis(),
            id: e.id.to_string(),
        }))
    }

    async fn count_enrollments(&self, campaign_id: &CampaignId) -> StoreResult<Vec<(EnrollmentStatus, u64)>> {
        let mut out = Vec::new();
        // One count per status on the (campaign_id, status, …) index; a $group would scan the campaign.
        for s in EnrollmentStatus::ALL {
            let n = self
                .enrollments()
                .count_documents(doc! { "campaign_id": campaign_id.as_str(), "status": s.as_str() })
                .await
                .map_err(map_err)?;
            if n > 0 {
                out.push((*s, n));
            }
        }
        Ok(out)
    }

    async fn claim_enrollment(
        &self,
        campaign_id: &CampaignId,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Enrollment>> {
        let filter = claim_filter(campaign_id.as_str(), now);
        let update = doc! {
            "$set": { "status": "dialing", "lease": { "owner": owner, "expires_at": ms(lease_until) }, "updated_at": ms(now) },
            "$inc": { "lease_token": 1_i64, "version": 1_i64 },
        };
        let opts = FindOneAndUpdateOptions::builder().sort(claim_sort()).return_document(ReturnDocument::After).build();
        self.enrollments()
            .find_one_and_update(filter, update)
            .with_options(opts)
            .await
            .map_err(map_err)?
            .map(enrollment_from)
            .transpose()
    }

    async fn replace_enrollment(&self, enrollment: &Enrollment) -> StoreResult<Enrollment> {
        let mut e = enrollment.clone();
        e.version += 1;
        let r = self
            .enrollments()
            .replace_one(enrollment_cas_filter(enrollment), enrollment_doc(&e)?)
            .await
            .map_err(map_err)?;
        if r.matched_count == 1 {
            return Ok(e);
        }
        match self.get_enrollment(&e.id).await? {
            None => Err(StoreError::NotFound("enrollment")),
            Some(now) => {
                Err(StoreError::stale(format!("enrollment {} (now version {}, {})", e.id, now.version, now.status)))
            }
        }
    }

    async fn expired_leases(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Enrollment>> {
        let opts = FindOptions::builder().sort(expired_sort()).limit(i64::from(limit)).build();
        let q = expired_filter(now);
        collect(self.enrollments().find(q).with_options(opts).await.map_err(map_err)?).await
    }

    async fn remove_enrollment(&self, id: &EnrollmentId) -> StoreResult<bool> {
        let r = self
            .enrollments()
            .delete_one(doc! { "_id": id.as_str(), "status": { "$nin": IN_FLIGHT.to_vec() } })
            .await
            .map_err(map_err)?;
        if r.deleted_count == 1 {
            return Ok(true);
        }
        match self.get_enrollment(id).await? {
            Some(_) => Err(StoreError::conflict(format!("enrollment {id} has a call in flight"))),
            None => Ok(false),
        }
    }

    async fn cancel_waiting(&self, campaign_id: &CampaignId, now: DateTime<Utc>) -> StoreResult<u64> {
        let r = self
            .enrollments()
            .update_many(
                doc! { "campaign_id": campaign_id.as_str(), "status": { "$in": WAITING.to_vec() } },
                doc! {
                    "$set": { "status": "cancelled", "reason": "campaign cancelled", "updated_at": ms(now) },
                    "$inc": { "version": 1_i64 },
                },
            )
            .await
            .map_err(map_err)?;
        Ok(r.modified_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_domain::campaign::AgentSettings;
    use switchboard_domain::time::now_ms;
    use switchboard_domain::{CampaignInput, ContactInput};

    #[test]
    fn records_round_trip_through_bson() {
        let mut c = CampaignInput {
            name: Some("c".into()),
            agent: Some(AgentSettings {
                agent_id: "a".into(),
                caller_id: Some("+15005550001".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .apply(None, now_ms())
        .unwrap();
        c.schedule.start_at = Some(now_ms());
        c.schedule.holidays = vec![chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()];
        c.inflight = vec!["k".into()];
        let d = campaign_doc(&c).unwrap();
        assert!(matches!(d.get("next_dial_at"), Some(Bson::DateTime(_))), "{d:?}");
        assert_eq!(campaign_from(d).unwrap(), c);
        let k = ContactInput {
            phone: Some("+14155552671".into()),
            location: Some(switchboard_domain::contact::GeoPoint { lon: -122.4, lat: 37.8 }),
            custom: Some([("plan".to_owned(), serde_json::json!(3))].into()),
            ..Default::default()
        }
        .validate("US", now_ms())
        .unwrap();
        let d = contact_doc(&k).unwrap();
        assert_eq!(d.get_document("location").unwrap().get_str("type").unwrap(), "Point");
        assert_eq!(contact_from(d).unwrap(), k);
        let mut e = Enrollment::new(c.id.clone(), k.id.clone(), now_ms());
        e.placed(switchboard_domain::CallId::new(), now_ms());
        e.lease = Some(switchboard_domain::enrollment::Lease { owner: "w".into(), expires_at: now_ms() });
        let d = enrollment_doc(&e).unwrap();
        assert!(matches!(d.get_document("lease").unwrap().get("expires_at"), Some(Bson::DateTime(_))));
        assert_eq!(enrollment_from(d).unwrap(), e);
    }
}
