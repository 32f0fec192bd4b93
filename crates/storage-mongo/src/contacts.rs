//! Contacts and the import journal on MongoDB: typed documents with the
//! derived index fields, index-served pages, all-or-nothing `fail` batches,
//! conditional deletes.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::FindOptions;
use switchboard_domain::{Contact, ContactId};
use switchboard_storage::{
    BulkContacts, ContactFilter, ContactSort, ContactStore, Cursor, ImportRecord, ImportState, OnDuplicate, Page,
    PageRequest, StoreError, StoreResult,
};

use crate::records::{contact_doc, contact_from};
use crate::schema::{ContactAfter, IMPORT_UNDO, IMPORTS, contact_page_queries};
use crate::{MongoStore, is_code, map_err};

use crate::campaigns::IN_FLIGHT;

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
