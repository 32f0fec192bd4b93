//! Call records on MongoDB: lookups by key (reading a merge in progress
//! too), the optimistic merge of a webhook's facts into the record, and the
//! linking of two records of one call, in one transaction on a replica set
//! or mongos, in staged steps that never lose a key on a standalone server
//! ([`MongoStore::absorb_staged`]).

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::options::{FindOptions, ReadConcern, TransactionOptions};
use switchboard_domain::{Call, CallEvent, CallId, CallUpdate, time::now_ms};
use switchboard_storage::calls::require_key;
use switchboard_storage::{CallFilter, CallSort, CallStore, Page, PageRequest, StoreError, StoreResult, UpsertOutcome};

use crate::docs::{AbsorbingDoc, CallDoc, EventDoc, and, bson_date, keyset};
use crate::events::events_of;
use crate::{MongoStore, is_code, map_err, tx_abort, tx_err};

/// How many optimistic-merge attempts before giving up with a conflict.
const MAX_ATTEMPTS: usize = 32;

/// Where [`MongoStore::settle_absorbed`] left a merge.
enum Settled {
    /// The absorbed record is gone; the survivor as last written, and whether this call deleted it.
    Done(Box<CallDoc>, bool),
    /// Another instance moved the merge on (or finished it).
    MovedOn,
}

impl MongoStore {
    async fn find_doc(&self, filter: Document) -> StoreResult<Option<CallDoc>> {
        self.calls.find_one(filter).await.map_err(map_err)
    }

    async fn find_by(&self, field: &str, value: &str) -> StoreResult<Option<Call>> {
        self.find_doc(key_filter(field, value)).await?.map(CallDoc::presented).transpose()
    }

    /// The stored records matching any key of `update` (at most one per key).
    async fn find_all_keys(&self, update: &CallUpdate) -> StoreResult<Vec<CallDoc>> {
        let mut found: Vec<CallDoc> = Vec::new();
        for (field, value) in update_keys(update) {
            if let Some(c) = self.find_doc(key_filter(field, value)).await?
                && !found.iter().any(|f| f.id == c.id)
            {
                found.push(c);
            }
        }
        Ok(found)
    }

    /// Compare-and-swap: replaces the record only if nobody changed it since we read `version`.
    async fn replace_doc_if(&self, doc: CallDoc, version: i64) -> StoreResult<bool> {
        let r =
            self.calls.replace_one(doc! { "_id": doc.id.as_str(), "version": version }, doc).await.map_err(map_err)?;
        Ok(r.matched_count == 1)
    }

    async fn replace_if(&self, call: &Call, version: i64) -> StoreResult<bool> {
        self.replace_doc_if(CallDoc::from(call), version).await
    }

    async fn repoint_events(&self, from: &str, to: &str) -> StoreResult<()> {
        self.events.update_many(events_of(from), doc! { "$set": { "call_id": to } }).await.map_err(map_err)?;
        Ok(())
    }

    /// Merges `gone` into `keep` in one transaction (replica set / mongos):
    /// delete `gone`, write the survivor with every key of both, re-point the
    /// events. The driver retries on `TransientTransactionError` and
    /// `UnknownTransactionCommitResult`. Returns whether `gone` was absorbed here.
    async fn absorb_in_transaction(&self, keep: &Call, gone: &Call) -> StoreResult<bool> {
        let mut session = self.client.start_session().await.map_err(map_err)?;
        let calls = self.calls.clone();
        let events = self.events.clone();
        let (keep_id, gone_id) = (keep.id.to_string(), gone.id.to_string());
        let opts = TransactionOptions::builder()
            .read_concern(ReadConcern::snapshot())
            .write_concern(self.write_concern.clone())
            .build();
        session
            .start_transaction()
            .with_options(opts)
            .and_run2(async move |s| {
                let k = calls.find_one(doc! { "_id": keep_id.as_str() }).session(&mut *s).await?;
                let g = calls.find_one(doc! { "_id": gone_id.as_str() }).session(&mut *s).await?;
                let (Some(k), Some(g)) = (k, g) else { return Ok(false) };
                let keep = Call::try_from(k).map_err(tx_abort)?;
                let gone = Call::try_from(g).map_err(tx_abort)?;
                let mut merged = keep.clone();
                if !merged.absorb(&gone, now_ms()).map_err(|e| tx_abort(e.into()))? {
                    merged.version = keep.version + 1;
                }
                // Delete first: inside the transaction the survivor may then take the unique keys.
                calls.delete_one(doc! { "_id": gone_id.as_str() }).session(&mut *s).await?;
                calls
                    .replace_one(doc! { "_id": keep_id.as_str(), "version": keep.version }, CallDoc::from(&merged))
                    .session(&mut *s)
                    .await?;
                events
                    .update_many(doc! { "call_id": gone_id.as_str() }, doc! { "$set": { "call_id": keep_id.as_str() } })
                    .session(&mut *s)
                    .await?;
                Ok(true)
            })
            .await
            .map_err(tx_err)
    }

    /// Merges `gone` into `keep` without a transaction (standalone server), in
    /// steps ordered so that every provider key is on some record at every
    /// moment, and any later upsert or lookup that meets the half-done merge
    /// finishes it ([`MongoStore::finish_absorb`]):
    ///
    /// 1. the survivor gets the merged facts and, in `absorbing`, the absorbed
    ///    record's id and keys (the unique fields cannot take them while the
    ///    absorbed record still holds them; lookups by key read `absorbing` too);
    /// 2. the absorbed record's events are re-pointed;
    /// 3. the absorbed record is deleted (compare-and-swap on its version; a
    ///    change made to it meanwhile is folded into the survivor first);
    /// 4. the events are re-pointed again (events stored meanwhile);
    /// 5. the keys move from `absorbing` to the unique fields.
    ///
    /// Returns whether `gone` was absorbed here.
    async fn absorb_staged(&self, keep: &Call, gone: &Call) -> StoreResult<bool> {
        let mut merged = keep.clone();
        if !merged.absorb(gone, now_ms())? {
            merged.version = keep.version + 1;
        }
        merged.call_sid.clone_from(&keep.call_sid);
        merged.conversation_id.clone_from(&keep.conversation_id);
        let mut doc = CallDoc::from(&merged);
        doc.absorbing = Some(AbsorbingDoc {
            id: gone.id.to_string(),
            call_sid: gone.call_sid.clone(),
            conversation_id: gone.conversation_id.clone(),
        });
        if !self.replace_doc_if(doc.clone(), keep.version).await? {
            return Ok(false);
        }
        self.finish_absorb(doc).await
    }

    /// Steps 2–5 of [`MongoStore::absorb_staged`] for a survivor whose
    /// `absorbing` is set. Idempotent; safe to run from several instances at once.
    async fn finish_absorb(&self, mut keep: CallDoc) -> StoreResult<bool> {
        let mut deleted = false;
        for _ in 0..MAX_ATTEMPTS {
            let Some(pending) = keep.absorbing.clone() else { return Ok(deleted) };
            match self.settle_absorbed(keep, &pending).await? {
                Settled::Done(k, d) => {
                    keep = *k;
                    deleted |= d;
                }
                Settled::MovedOn => return Ok(deleted),
            }
            match self.promote_keys(&keep, &pending).await {
                Ok(()) => return Ok(deleted),
                // A record was created under a held key meanwhile (a lookup raced with steps 1–3):
                // it is the same call, so the survivor absorbs it next.
                Err(e) if is_code(&e, 11000) => match self.retarget(&keep, &pending).await? {
                    Some(k) => keep = k,
                    None => return Ok(deleted),
                },
                Err(e) => return Err(map_err(e)),
            }
        }
        Err(StoreError::conflict("the call records of one call kept changing; gave up merging them"))
    }

    /// Steps 2–4: re-point the events, delete the absorbed record (folding
    /// in any change made to it meanwhile), re-point again.
    async fn settle_absorbed(&self, mut keep: CallDoc, pending: &AbsorbingDoc) -> StoreResult<Settled> {
        let mut deleted = false;
        let mut settled = false;
        for _ in 0..MAX_ATTEMPTS {
            self.repoint_events(&pending.id, &keep.id).await?;
            let Some(gone_doc) = self.find_doc(doc! { "_id": pending.id.as_str() }).await? else {
                settled = true;
                break;
            };
            let gone = Call::try_from(gone_doc)?;
            let current = Call::try_from(keep.clone())?;
            let mut merged = current.clone();
            if merged.absorb(&gone, now_ms())? {
                merged.call_sid.clone_from(&current.call_sid);
                merged.conversation_id.clone_from(&current.conversation_id);
                let mut doc = CallDoc::from(&merged);
                doc.absorbing = Some(pending.clone());
                if !self.replace_doc_if(doc.clone(), current.version).await? {
                    // Someone else moved the merge on: continue from what is stored.
                    match self.find_doc(doc! { "_id": keep.id.as_str() }).await? {
                        Some(k) if k.absorbing.as_ref() == Some(pending) => {
                            keep = k;
                            continue;
                        }
                        _ => return Ok(Settled::MovedOn),
                    }
                }
                keep = doc;
            }
            let del = self
                .calls
                .delete_one(doc! { "_id": pending.id.as_str(), "version": gone.version })
                .await
                .map_err(map_err)?;
            if del.deleted_count == 1 {
                deleted = true;
                settled = true;
                break;
            }
        }
        if !settled {
            return Err(StoreError::conflict("the absorbed call record kept changing; gave up"));
        }
        // Events stored for the absorbed record after the first move.
        self.repoint_events(&pending.id, &keep.id).await?;
        Ok(Settled::Done(Box::new(keep), deleted))
    }

    /// Step 5: the held keys move to the unique fields.
    async fn promote_keys(&self, keep: &CallDoc, pending: &AbsorbingDoc) -> Result<(), mongodb::error::Error> {
        let mut set = Document::new();
        if let (None, Some(sid)) = (&keep.call_sid, &pending.call_sid) {
            set.insert("call_sid", sid.as_str());
        }
        if let (None, Some(conv)) = (&keep.conversation_id, &pending.conversation_id) {
            set.insert("conversation_id", conv.as_str());
        }
        let mut update = doc! { "$unset": { "absorbing": "" }, "$inc": { "version": 1_i64 } };
        if !set.is_empty() {
            update.insert("$set", set);
        }
        self.calls.update_one(doc! { "_id": keep.id.as_str(), "absorbing.id": pending.id.as_str() }, update).await?;
        Ok(())
    }

    /// The record holding one of `pending`'s keys in its unique field becomes
    /// the next record to absorb: `absorbing` now names it, with the keys of
    /// both. Returns the survivor as written, or `None` if someone else moved on.
    async fn retarget(&self, keep: &CallDoc, pending: &AbsorbingDoc) -> StoreResult<Option<CallDoc>> {
        let mut holders = Vec::new();
        for (field, value) in [("call_sid", &pending.call_sid), ("conversation_id", &pending.conversation_id)] {
            if let Some(v) = value
                && let Some(d) = self.find_doc(doc! { field: v.as_str(), "_id": { "$ne": keep.id.as_str() } }).await?
            {
                holders.push(d);
            }
        }
        let Some(holder) = holders.into_iter().next() else {
            // Gone meanwhile: the next promotion attempt will tell.
            return Ok(Some(keep.clone()));
        };
        let other = Call::try_from(holder)?;
        let mismatch = |key: &'static str, a: &Option<String>, b: &Option<String>| match (a, b) {
            (Some(x), Some(y)) if x != y => Err(StoreError::conflict(format!(
                "call {} holds {key} `{y}` while the merge into {} holds `{x}`",
                other.id, keep.id
            ))),
            _ => Ok(()),
        };
        mismatch("call_sid", &pending.call_sid, &other.call_sid)?;
        mismatch("conversation_id", &pending.conversation_id, &other.conversation_id)?;
        let current = Call::try_from(keep.clone())?;
        let mut merged = current.clone();
        if !merged.absorb(&other, now_ms())? {
            merged.version = current.version + 1;
        }
        merged.call_sid.clone_from(&current.call_sid);
        merged.conversation_id.clone_from(&current.conversation_id);
        let mut doc = CallDoc::from(&merged);
        doc.absorbing = Some(AbsorbingDoc {
            id: other.id.to_string(),
            call_sid: pending.call_sid.clone().or(other.call_sid.clone()),
            conversation_id: pending.conversation_id.clone().or(other.conversation_id.clone()),
        });
        if self.replace_doc_if(doc.clone(), current.version).await? {
            return Ok(Some(doc));
        }
        Ok(self.find_doc(doc! { "_id": keep.id.as_str() }).await?.filter(|k| k.absorbing.is_some()))
    }

    /// After an event is stored: if its call was absorbed meanwhile (the
    /// merge re-pointed the events before this one existed), the event is
    /// moved to the survivor, found by the update's keys. Returns the
    /// survivor when the event was moved.
    pub(crate) async fn repoint_if_absorbed(
        &self,
        event: &CallEvent,
        update: &CallUpdate,
    ) -> StoreResult<Option<Call>> {
        let mut target = event.call_id.to_string();
        let mut moved = None;
        for _ in 0..MAX_ATTEMPTS {
            // The event was inserted before this read: if the call still exists, any later
            // absorption of it re-points the event in its step 4 (or its transaction).
            if let Some(current) = self.find_doc(doc! { "_id": target.as_str() }).await? {
                return match moved {
                    Some(()) => current.presented().map(Some),
                    None => Ok(None),
                };
            }
            let survivor = self.find_all_keys(update).await?.into_iter().find(|d| d.id != target);
            let Some(survivor) = survivor else { return Ok(None) };
            self.events
                .update_one(doc! { "_id": event.id.as_str() }, doc! { "$set": { "call_id": survivor.id.as_str() } })
                .await
                .map_err(map_err)?;
            target = survivor.id;
            moved = Some(());
        }
        Err(StoreError::conflict("the call of a new event kept being merged; gave up"))
    }
}

/// The keys an update names, as `(field, value)`.
fn update_keys(update: &CallUpdate) -> Vec<(&'static str, &str)> {
    let mut keys = Vec::new();
    if let Some(id) = &update.id {
        keys.push(("_id", id.as_str()));
    }
    if let Some(sid) = &update.call_sid {
        keys.push(("call_sid", sid.as_str()));
    }
    if let Some(conv) = &update.conversation_id {
        keys.push(("conversation_id", conv.as_str()));
    }
    keys
}

/// The lookup of a call by one key: `_id`, or a provider key in its unique
/// field or in the `absorbing` part of a merge in progress. Both branches are
/// equalities on a field whose partial index is `{field: {$exists: true}}`,
/// which an equality implies, so each is an index scan.
pub(crate) fn key_filter(field: &str, value: &str) -> Document {
    if field == "_id" {
        return doc! { "_id": value };
    }
    doc! { "$or": [ { field: value }, { format!("absorbing.{field}"): value } ] }
}

fn call_filter_doc(filter: &CallFilter) -> Document {
    let mut d = Document::new();
    if !filter.statuses.is_empty() {
        let v: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        d.insert("status", doc! { "$in": v });
    }
    let eq = |d: &mut Document, k: &str, v: Option<&str>| {
        if let Some(v) = v {
            d.insert(k, v);
        }
    };
    eq(&mut d, "direction", filter.direction.map(|x| x.as_str()));
    eq(&mut d, "campaign_id", filter.campaign_id.as_ref().map(|c| c.as_str()));
    eq(&mut d, "contact_id", filter.contact_id.as_ref().map(|c| c.as_str()));
    eq(&mut d, "agent_id", filter.agent_id.as_deref());
    eq(&mut d, "from", filter.from.as_deref());
    eq(&mut d, "to", filter.to.as_deref());
    eq(&mut d, "answered_by", filter.answered_by.map(|x| x.as_str()));
    let mut range = Document::new();
    if let Some(t) = filter.started_after {
        range.insert("$gte", bson_date(t));
    }
    if let Some(t) = filter.started_before {
        range.insert("$lt", bson_date(t));
    }
    if !range.is_empty() {
        d.insert("started_at", range);
    }
    d
}

#[async_trait]
impl CallStore for MongoStore {
    async fn upsert_call(&self, update: &CallUpdate) -> StoreResult<UpsertOutcome> {
        require_key(update)?;
        let mut absorbed = None;
        for _ in 0..MAX_ATTEMPTS {
            let found = self.find_all_keys(update).await?;
            // A merge left half-done (crash, or still running elsewhere): finish it first.
            if let Some(pending) = found.iter().find(|d| d.absorbing.is_some()) {
                if let Some(p) = &pending.absorbing
                    && self.finish_absorb(pending.clone()).await?
                {
                    absorbed = Some(CallId::parse(&p.id).map_err(|e| StoreError::Other(e.into()))?);
                }
                continue;
            }
            let mut found = found.into_iter().map(Call::try_from).collect::<StoreResult<Vec<_>>>()?;
            match found.len() {
                0 => {
                    let call = Call::new_from(update, now_ms())?;
                    match self.calls.insert_one(CallDoc::from(&call)).await {
                        Ok(_) => return Ok(UpsertOutcome { call, created: true, changed: true, absorbed }),
                        // Someone created it meanwhile: merge into theirs.
                        Err(e) if is_code(&e, 11000) => continue,
                        Err(e) => return Err(map_err(e)),
                    }
                }
                1 => {
                    let mut call = found.pop().expect("one");
                    let version = call.version;
                    let changed = call.apply(update, now_ms())?;
                    if !changed {
                        return Ok(UpsertOutcome { call, created: false, changed: absorbed.is_some(), absorbed });
                    }
                    match self.replace_if(&call, version).await {
                        Ok(true) => return Ok(UpsertOutcome { call, created: false, changed, absorbed }),
                        Ok(false) | Err(StoreError::Conflict { .. } | StoreError::Stale(_)) => continue,
                        Err(e) => return Err(e),
                    }
                }
                _ => {
                    let (keep, gone) = Call::survivor_first(&found[0], &found[1]);
                    let done = if self.transactions {
                        self.absorb_in_transaction(keep, gone).await?
                    } else {
                        self.absorb_staged(keep, gone).await?
                    };
                    if done {
                        absorbed = Some(gone.id.clone());
                    }
                }
            }
        }
        Err(StoreError::conflict("call record kept changing; gave up after repeated merge attempts"))
    }

    async fn get_call(&self, id: &CallId) -> StoreResult<Call> {
        self.find_by("_id", id.as_str()).await?.ok_or(StoreError::NotFound("call"))
    }

    async fn find_call_by_sid(&self, call_sid: &str) -> StoreResult<Option<Call>> {
        self.find_by("call_sid", call_sid).await
    }

    async fn find_call_by_conversation(&self, conversation_id: &str) -> StoreResult<Option<Call>> {
        self.find_by("conversation_id", conversation_id).await
    }

    async fn list_calls(&self, filter: &CallFilter, sort: CallSort, page: &PageRequest) -> StoreResult<Page<Call>> {
        let cursor = sort.decode(page)?;
        let limit = page.clamped_limit();
        let key = match sort {
            CallSort::CreatedAtDesc => "created_at",
            _ => "started_at",
        };
        let (op, dir) = if sort.descending() { ("$lt", -1) } else { ("$gt", 1) };
        let mut q = call_filter_doc(filter);
        if let Some(c) = cursor {
            q = and(q, keyset(key, op, c.key, &c.id));
        }
        let opts = FindOptions::builder().sort(doc! { key: dir, "_id": dir }).limit(i64::from(limit) + 1).build();
        let docs: Vec<CallDoc> =
            self.calls.find(q).with_options(opts).await.map_err(map_err)?.try_collect().await.map_err(map_err)?;
        let calls = docs.into_iter().map(CallDoc::presented).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(calls, limit, |c| sort.cursor_of(c)))
    }

    async fn insert_calls_bulk(&self, calls: &[Call], events: &[CallEvent]) -> StoreResult<()> {
        if !calls.is_empty() {
            let docs: Vec<CallDoc> = calls.iter().map(CallDoc::from).collect();
            self.calls.insert_many(docs).ordered(false).await.map_err(map_err)?;
        }
        if !events.is_empty() {
            let docs = events.iter().map(EventDoc::try_from).collect::<StoreResult<Vec<_>>>()?;
            self.events.insert_many(docs).ordered(false).await.map_err(map_err)?;
        }
        Ok(())
    }

    async fn count_calls(&self) -> StoreResult<u64> {
        self.calls.count_documents(doc! {}).await.map_err(map_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema;
    use mongodb::bson::Bson;

    #[test]
    fn absent_provider_keys_are_left_out_never_null() {
        // `$exists: true` partial indexes would index a null: the keys must be absent instead.
        let placed = CallUpdate { id: Some(CallId::new()), ..Default::default() };
        let call = Call::new_from(&placed, now_ms()).unwrap();
        let d = mongodb::bson::serialize_to_document(&CallDoc::from(&call)).unwrap();
        for k in ["call_sid", "conversation_id", "absorbing"] {
            assert!(!d.contains_key(k), "{k} written for a call without it: {d}");
        }
        assert!(!d.values().any(|v| matches!(v, Bson::Null)), "a null was written: {d}");
        let mut doc = CallDoc::from(&call);
        doc.absorbing =
            Some(AbsorbingDoc { id: call.id.to_string(), call_sid: Some("CA1".into()), conversation_id: None });
        let d = mongodb::bson::serialize_to_document(&doc).unwrap();
        assert!(!d.get_document("absorbing").unwrap().contains_key("conversation_id"), "{d}");
    }

    #[test]
    fn provider_key_lookups_use_the_partial_indexes_filters() {
        // Equalities only (an equality implies the indexes' `$exists: true`).
        assert_eq!(
            key_filter("call_sid", "CA1"),
            doc! { "$or": [ { "call_sid": "CA1" }, { "absorbing.call_sid": "CA1" } ] }
        );
        assert_eq!(key_filter("_id", "call_1"), doc! { "_id": "call_1" });
        for (_, model) in schema::indexes() {
            if let Some(filter) = model.options.as_ref().and_then(|o| o.partial_filter_expression.as_ref()) {
                assert!(!filter.to_string().contains("$type"), "a $type partial filter is never used by equalities");
            }
        }
    }
}
