//! The MongoDB backend, on the official driver (target: MongoDB 7.0+).
//!
//! - Connection management: pool options from config and the URI, bounded
//!   start-up retries with backoff, one clear error naming hosts and timeout.
//! - Every collection has a `$jsonSchema` validator and the indexes its
//!   queries need ([`schema`]), created by `migrate`.
//! - Merges are optimistic: read, apply the domain rules, write back with
//!   `replace_one({_id, version})`; a lost race re-reads and re-applies. Unique
//!   partial indexes on `call_sid` / `conversation_id` make a duplicate record
//!   impossible even when two instances create the same call at once.

#![forbid(unsafe_code)]

mod campaigns;
mod docs;
pub mod schema;

use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, FindOptions};
use mongodb::{Client, Collection, Database};
use switchboard_domain::{Call, CallEvent, CallId, CallUpdate, time::now_ms};
use switchboard_storage::calls::{decode_event_cursor, event_cursor, require_key};
use switchboard_storage::{
    CallFilter, CallSort, CallStore, Capabilities, Drift, EventFilter, EventStore, MigrationReport, Page, PageRequest,
    Storage, StoreError, StoreResult, UpsertOutcome,
};

use docs::{CallDoc, EventDoc};
use schema::{CALL_EVENTS, CALLS};

/// How many optimistic-merge attempts before giving up with a conflict.
const MAX_ATTEMPTS: usize = 32;

/// Connection settings (pool and timeouts override what the URI says when set).
#[derive(Debug, Clone)]
pub struct MongoSettings {
    /// Connection string.
    pub uri: String,
    /// Database name.
    pub database: String,
    /// `maxPoolSize`.
    pub max_pool_size: Option<u32>,
    /// `minPoolSize`.
    pub min_pool_size: Option<u32>,
    /// `connectTimeoutMS`.
    pub connect_timeout: Option<Duration>,
    /// `serverSelectionTimeoutMS`.
    pub server_selection_timeout: Option<Duration>,
    /// Start-up attempts before giving up.
    pub connect_attempts: u32,
    /// The deployment is a replica set or sharded cluster (enables
    /// transactions and change streams).
    pub replica_set: bool,
}

impl MongoSettings {
    /// Defaults for a URI and database.
    pub fn new(uri: impl Into<String>, database: impl Into<String>) -> Self {
        MongoSettings {
            uri: uri.into(),
            database: database.into(),
            max_pool_size: None,
            min_pool_size: None,
            connect_timeout: None,
            server_selection_timeout: None,
            connect_attempts: 5,
            replica_set: false,
        }
    }
}

/// The MongoDB store.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    calls: Collection<CallDoc>,
    events: Collection<EventDoc>,
    replica_set: bool,
    gaps: ServerGaps,
}

/// Features a MongoDB-compatible server lacks, found by
/// [`MongoStore::probe_server_gaps`]. A real MongoDB 7.0+ has none; the
/// `nx-27017` stand-in used for offline test runs has several. Production
/// code never probes, so production behaviour never depends on this.
#[derive(Debug, Clone, Default)]
pub struct ServerGaps {
    /// Cannot build a compound index that contains `_id` (inserts then fail).
    pub no_compound_id_index: bool,
    /// Does not report validators and index names back (drift cannot be read).
    pub no_schema_introspection: bool,
    /// Accepts documents its `$jsonSchema` validator forbids.
    pub no_validation: bool,
    /// Stores a date written by an update operator (`$set`) as a string.
    pub no_dates_in_updates: bool,
}

fn is_code(e: &mongodb::error::Error, code: i32) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == code,
        ErrorKind::InsertMany(m) => m.write_errors.iter().flatten().any(|w| w.code == code),
        ErrorKind::Command(c) => c.code == code,
        _ => false,
    }
}

/// Maps a driver error to the store error, once for the whole backend.
pub fn map_err(e: mongodb::error::Error) -> StoreError {
    if is_code(&e, 11000) {
        return StoreError::conflict(format!("duplicate key: {e}"));
    }
    if is_code(&e, 121) {
        return StoreError::Invalid(format!("rejected by the collection validator: {e}"));
    }
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(anyhow::Error::new(e)),
    }
}

impl MongoStore {
    /// Connects with bounded retries and backoff. An unreachable server gives
    /// one error naming the hosts and the selection timeout, not a panic.
    pub async fn connect(settings: &MongoSettings) -> StoreResult<MongoStore> {
        let mut opts = ClientOptions::parse(&settings.uri)
            .await
            .map_err(|e| StoreError::Invalid(format!("MONGODB_URI is not a valid MongoDB connection string: {e}")))?;
        if settings.max_pool_size.is_some() {
            opts.max_pool_size = settings.max_pool_size;
        }
        if settings.min_pool_size.is_some() {
            opts.min_pool_size = settings.min_pool_size;
        }
        if settings.connect_timeout.is_some() {
            opts.connect_timeout = settings.connect_timeout;
        }
        if settings.server_selection_timeout.is_some() {
            opts.server_selection_timeout = settings.server_selection_timeout;
        }
        opts.app_name.get_or_insert_with(|| "switchboard".to_owned());
        let hosts = opts.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");
        let timeout = opts.server_selection_timeout.unwrap_or(Duration::from_secs(30));
        let client = Client::with_options(opts).map_err(map_err)?;
        let db = client.database(&settings.database);
        let store = MongoStore {
            calls: db.collection(CALLS),
            events: db.collection(CALL_EVENTS),
            db,
            client,
            replica_set: settings.replica_set,
            gaps: ServerGaps::default(),
        };
        let attempts = settings.connect_attempts.max(1);
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=attempts {
            match store.ping().await {
                Ok(()) => return Ok(store),
                Err(e) if attempt < attempts => {
                    tracing::warn!(attempt, attempts, hosts = %hosts, error = %e, "MongoDB not reachable yet; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    return Err(StoreError::Unavailable(format!(
                        "cannot reach MongoDB at {hosts} after {attempts} attempts (server selection timeout {timeout:?}): {e}"
                    )));
                }
            }
        }
        unreachable!("the loop returns on the last attempt")
    }

    /// The client (sessions, transactions and change streams start here).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database handle (tests drop it).
    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn find_by(&self, field: &str, value: &str) -> StoreResult<Option<Call>> {
        self.calls.find_one(doc! { field: value }).await.map_err(map_err)?.map(Call::try_from).transpose()
    }

    async fn find_all_keys(&self, update: &CallUpdate) -> StoreResult<Vec<Call>> {
        let mut found: Vec<Call> = Vec::new();
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
        for (field, value) in keys {
            if let Some(c) = self.find_by(field, value).await?
                && !found.iter().any(|f| f.id == c.id)
            {
                found.push(c);
            }
        }
        Ok(found)
    }

    /// Compare-and-swap: replaces the record only if nobody changed it since we read `version`.
    async fn replace_if(&self, call: &Call, version: i64) -> StoreResult<bool> {
        let doc = CallDoc::from(call);
        let r =
            self.calls.replace_one(doc! { "_id": call.id.as_str(), "version": version }, doc).await.map_err(map_err)?;
        Ok(r.matched_count == 1)
    }

    /// One step of linking two records of the same call; see [`CallStore::upsert_call`].
    /// Each step is idempotent, so a crash or a lost race part-way is repaired
    /// by the next attempt (or the provider's retry of the webhook).
    async fn absorb_step(&self, keep: &Call, gone: &Call) -> StoreResult<bool> {
        let mut merged = keep.clone();
        merged.absorb(gone, now_ms())?;
        // The absorbed record still holds its unique keys; the survivor takes
        // them over after the delete (next attempt), so leave them out now.
        if keep.call_sid.is_none() {
            merged.call_sid = None;
        }
        if keep.conversation_id.is_none() {
            merged.conversation_id = None;
        }
        if merged != *keep && !self.replace_if(&merged, keep.version).await? {
            return Ok(false);
        }
        self.events
            .update_many(doc! { "call_id": gone.id.as_str() }, doc! { "$set": { "call_id": keep.id.as_str() } })
            .await
            .map_err(map_err)?;
        let del =
            self.calls.delete_one(doc! { "_id": gone.id.as_str(), "version": gone.version }).await.map_err(map_err)?;
        Ok(del.deleted_count == 1)
    }

    /// Probes the connected server for the gaps in [`ServerGaps`], remembers
    /// them (migrate leaves out what the server cannot build; capabilities say
    /// what cannot be checked) and returns one printable reason per gap.
    /// For test harnesses running against a stand-in; never called in production.
    pub async fn probe_server_gaps(&mut self) -> Vec<String> {
        let name = format!("_probe_{}", CallId::new());
        let coll = self.db.collection::<Document>(&name);
        let mut gaps = ServerGaps::default();
        let validated = self
            .db
            .create_collection(&name)
            .validator(doc! { "$jsonSchema": { "bsonType": "object", "required": ["x"] } })
            .await
            .is_ok();
        gaps.no_validation = !validated || coll.insert_one(doc! { "_id": "a", "y": 1 }).await.is_ok();
        let specs = self.live_validators().await.unwrap_or_default();
        let reported = specs.iter().any(|(n, v)| n == &name && v.is_some());
        let named = mongodb::IndexModel::builder()
            .keys(doc! { "x": 1 })
            .options(mongodb::options::IndexOptions::builder().name("probe_name".to_owned()).build())
            .build();
        let _ = coll.create_index(named).await;
        let names_kept =
            self.live_indexes(&name).await.unwrap_or_default().iter().any(|m| index_name(m) == "probe_name");
        gaps.no_schema_introspection = !reported || !names_kept;
        let _ = coll.drop().await;
        let fresh = self.db.collection::<Document>(&format!("{name}_c"));
        let built = fresh
            .create_index(
                mongodb::IndexModel::builder()
                    .keys(doc! { "t": -1, "_id": -1 })
                    .options(mongodb::options::IndexOptions::builder().name("t_id".to_owned()).build())
                    .build(),
            )
            .await;
        gaps.no_compound_id_index = built.is_err() || fresh.insert_one(doc! { "_id": "b", "t": 1 }).await.is_err();
        let _ = fresh.drop().await;
        let dated = self.db.collection::<Document>(&format!("{name}_d"));
        let when = mongodb::bson::DateTime::from_millis(1_794_916_542_123);
        let _ = dated.insert_one(doc! { "_id": "d" }).await;
        let _ = dated.update_one(doc! { "_id": "d" }, doc! { "$set": { "at": when } }).await;
        let stored = dated.find_one(doc! { "_id": "d" }).await.ok().flatten();
        gaps.no_dates_in_updates =
            !matches!(stored.as_ref().and_then(|d| d.get("at")), Some(Bson::DateTime(t)) if *t == when);
        let _ = dated.drop().await;
        let mut reasons = Vec::new();
        if gaps.no_validation {
            reasons.push(
                "server accepts documents its $jsonSchema validator forbids: validator rejections are not asserted"
                    .to_owned(),
            );
        }
        if gaps.no_schema_introspection {
            reasons.push(
                "server does not report validators / index names back: migrate idempotency and drift are not asserted"
                    .to_owned(),
            );
        }
        if gaps.no_dates_in_updates {
            reasons.push("server stores dates written by $set as strings: the claim, lease and dial-gate cases (which update dates in place) are not run".to_owned());
        }
        if gaps.no_compound_id_index {
            reasons.push("server cannot build compound indexes containing _id: the keyset-pagination indexes are left out (they change speed, not results)".to_owned());
        }
        self.gaps = gaps;
        reasons
    }
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
    eq(&mut d, "campaign_id", filter.campaign_id.as_deref());
    eq(&mut d, "contact_id", filter.contact_id.as_deref());
    eq(&mut d, "agent_id", filter.agent_id.as_deref());
    eq(&mut d, "from", filter.from.as_deref());
    eq(&mut d, "to", filter.to.as_deref());
    eq(&mut d, "answered_by", filter.answered_by.map(|x| x.as_str()));
    let mut range = Document::new();
    if let Some(t) = filter.started_after {
        range.insert("$gte", mongodb::bson::DateTime::from_millis(t.timestamp_millis()));
    }
    if let Some(t) = filter.started_before {
        range.insert("$lt", mongodb::bson::DateTime::from_millis(t.timestamp_millis()));
    }
    if !range.is_empty() {
        d.insert("started_at", range);
    }
    d
}

/// `(key, _id) > / < (k, id)` as a query: `{$or: [{key: {$gt: k}}, {key: k, _id: {$gt: id}}]}`.
fn keyset(key: &str, op: &str, k: i64, id: &str) -> Document {
    let k = mongodb::bson::DateTime::from_millis(k);
    doc! { "$or": [ { key: { op: k } }, { key: k, "_id": { op: id } } ] }
}

fn and(mut base: Document, extra: Document) -> Document {
    if base.is_empty() {
        return extra;
    }
    let prior = std::mem::take(&mut base);
    doc! { "$and": [prior, extra] }
}

#[async_trait]
impl CallStore for MongoStore {
    async fn upsert_call(&self, update: &CallUpdate) -> StoreResult<UpsertOutcome> {
        require_key(update)?;
        let mut absorbed = None;
        for _ in 0..MAX_ATTEMPTS {
            let mut found = self.find_all_keys(update).await?;
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
                        Ok(false) | Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => return Err(e),
                    }
                }
                _ => {
                    let (keep, gone) = Call::survivor_first(&found[0], &found[1]);
                    if self.absorb_step(keep, gone).await? {
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
        let calls = docs.into_iter().map(Call::try_from).collect::<StoreResult<Vec<_>>>()?;
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

#[async_trait]
impl EventStore for MongoStore {
    async fn insert_event(&self, event: &CallEvent) -> StoreResult<bool> {
        match self.events.insert_one(EventDoc::try_from(event)?).await {
            Ok(_) => Ok(true),
            Err(e) if is_code(&e, 11000) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn event_exists(&self, dedupe_key: &str) -> StoreResult<bool> {
        let n = self.events.count_documents(doc! { "dedupe_key": dedupe_key }).limit(1).await.map_err(map_err)?;
        Ok(n > 0)
    }

    async fn list_call_events(&self, call_id: &CallId, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        self.events_page(doc! { "call_id": call_id.as_str() }, page).await
    }

    async fn list_events(&self, filter: &EventFilter, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        let mut q = Document::new();
        match (filter.type_prefix(), &filter.event_type) {
            (Some(prefix), _) => {
                // Anchored prefix regex: served by the (event_type, occurred_at) index.
                q.insert("event_type", doc! { "$regex": format!("^{}", regex_escape(prefix)) });
            }
            (None, Some(t)) => {
                q.insert("event_type", t.as_str());
            }
            (None, None) => {}
        }
        if let Some(s) = filter.source {
            q.insert("source", s.as_str());
        }
        let mut range = Document::new();
        if let Some(t) = filter.occurred_after {
            range.insert("$gte", mongodb::bson::DateTime::from_millis(t.timestamp_millis()));
        }
        if let Some(t) = filter.occurred_before {
            range.insert("$lt", mongodb::bson::DateTime::from_millis(t.timestamp_millis()));
        }
        if !range.is_empty() {
            q.insert("occurred_at", range);
        }
        self.events_page(q, page).await
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\^$.|?*+()[]{}".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

impl MongoStore {
    async fn events_page(&self, q: Document, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        let cursor = decode_event_cursor(page)?;
        let limit = page.clamped_limit();
        let q = match cursor {
            Some(c) => and(q, keyset("occurred_at", "$gt", c.key, &c.id)),
            None => q,
        };
        let opts = FindOptions::builder().sort(doc! { "occurred_at": 1, "_id": 1 }).limit(i64::from(limit) + 1).build();
        let docs: Vec<EventDoc> =
            self.events.find(q).with_options(opts).await.map_err(map_err)?.try_collect().await.map_err(map_err)?;
        let events = docs.into_iter().map(CallEvent::try_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(events, limit, event_cursor))
    }

    /// Names and validators of the live collections. Reads `listCollections`
    /// directly and takes only the two fields it needs, so servers that add
    /// or type other fields differently (e.g. `info.uuid`) do not break it.
    async fn live_validators(&self) -> StoreResult<Vec<(String, Option<Document>)>> {
        let reply = self.db.run_command(doc! { "listCollections": 1, "nameOnly": false }).await.map_err(map_err)?;
        let batch = reply
            .get_document("cursor")
            .and_then(|c| c.get_array("firstBatch"))
            .map_err(|e| StoreError::Other(anyhow::anyhow!("unexpected listCollections reply: {e}")))?;
        Ok(batch
            .iter()
            .filter_map(|b| b.as_document())
            .filter_map(|d| {
                let name = d.get_str("name").ok()?.to_owned();
                let validator = d.get_document("options").ok().and_then(|o| o.get_document("validator").ok()).cloned();
                Some((name, validator))
            })
            .collect())
    }

    async fn live_indexes(&self, coll: &str) -> StoreResult<Vec<mongodb::IndexModel>> {
        let c = self.db.collection::<Document>(coll);
        match c.list_indexes().await {
            Ok(cur) => cur.try_collect().await.map_err(map_err),
            // NamespaceNotFound: the collection does not exist yet.
            Err(e) if is_code(&e, 26) => Ok(vec![]),
            Err(e) => Err(map_err(e)),
        }
    }
}

fn index_name(m: &mongodb::IndexModel) -> String {
    m.options.as_ref().and_then(|o| o.name.clone()).unwrap_or_default()
}

#[async_trait]
impl Storage for MongoStore {
    fn backend_name(&self) -> &'static str {
        "mongodb"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactions: self.replica_set,
            schema_validation: !self.gaps.no_validation,
            schema_introspection: !self.gaps.no_schema_introspection,
            dates_in_updates: !self.gaps.no_dates_in_updates,
            notes: vec![],
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db.run_command(doc! { "ping": 1 }).await.map_err(map_err).map(|_| ())
    }

    async fn migrate(&self) -> StoreResult<MigrationReport> {
        let mut applied = Vec::new();
        let live = self.live_validators().await?;
        for (name, validator) in schema::validators() {
            match live.iter().find(|(n, _)| n == name) {
                None => {
                    match self.db.create_collection(name).validator(validator).await {
                        Ok(()) => applied.push(format!("created collection {name} with its validator")),
                        // NamespaceExists: created concurrently by another instance; collMod on the next run.
                        Err(e) if is_code(&e, 48) => {}
                        Err(e) => return Err(map_err(e)),
                    }
                }
                Some((_, current)) if current.as_ref() != Some(&validator) => {
                    self.db
                        .run_command(doc! {
                            "collMod": name,
                            "validator": validator,
                            "validationLevel": "strict",
                            "validationAction": "error",
                        })
                        .await
                        .map_err(map_err)?;
                    applied.push(format!("updated the validator of {name}"));
                }
                Some(_) => {}
            }
        }
        for (coll, model) in schema::indexes() {
            let name = index_name(&model);
            if self.gaps.no_compound_id_index && model.keys.contains_key("_id") {
                tracing::warn!(index = %name, "server cannot build this index (compound key with _id); left out");
                continue;
            }
            let live = self.live_indexes(coll).await?;
            if !live.iter().any(|m| index_name(m) == name) {
                self.db.collection::<Document>(coll).create_index(model).await.map_err(map_err)?;
                applied.push(format!("created index {coll}.{name}"));
            }
        }
        Ok(MigrationReport { applied })
    }

    async fn check_schema(&self) -> StoreResult<Vec<Drift>> {
        let mut drift = Vec::new();
        let live = self.live_validators().await?;
        for (name, validator) in schema::validators() {
            match live.iter().find(|(n, _)| n == name) {
                None => drift.push(Drift { object: name.into(), detail: "collection missing".into() }),
                Some((_, current)) if current.as_ref() != Some(&validator) => {
                    drift.push(Drift { object: name.into(), detail: "validator differs from the schema".into() })
                }
                _ => {}
            }
        }
        for (coll, model) in schema::indexes() {
            let name = index_name(&model);
            let live = self.live_indexes(coll).await?;
            match live.iter().find(|m| index_name(m) == name) {
                None => drift.push(Drift { object: format!("{coll}.{name}"), detail: "index missing".into() }),
                Some(m) if Bson::Document(m.keys.clone()) != Bson::Document(model.keys.clone()) => drift.push(Drift {
                    object: format!("{coll}.{name}"),
                    detail: format!("index keys are {} instead of {}", m.keys, model.keys),
                }),
                _ => {}
            }
        }
        Ok(drift)
    }
}
