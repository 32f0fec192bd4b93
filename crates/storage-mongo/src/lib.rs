//! The MongoDB backend, on the official driver (target: MongoDB 7.0+).
//!
//! - Connection management: pool options from config and the URI, bounded
//!   start-up retries with backoff, one clear error naming hosts and timeout.
//! - Every collection has a `$jsonSchema` validator and the indexes its
//!   queries need ([`schema`]), created by `migrate`.
//! - Every write is acknowledged with `w: "majority", j: true` (pinned on the
//!   client and database; [`MongoSettings::write_concern`] overrides it only
//!   deliberately). Step-downs, timeouts, write-concern failures and retry
//!   labels map to `StoreError::Unavailable` ([`map_err`]).
//! - Updates are optimistic: read, apply the domain rules, write back with
//!   `replace_one({_id, version})`; a lost race re-reads and re-applies. Unique
//!   partial indexes (`$exists: true`, which an equality implies, so lookups
//!   are index scans) on `call_sid` / `conversation_id` make a duplicate record
//!   impossible even when two instances create the same call at once.
//! - Linking two records of one call: one transaction on a replica set or
//!   mongos (detected from `hello` at connect time); staged steps that never
//!   lose a key on a standalone server (`MongoStore::absorb_staged`).
//!
//! Files, one per storage area:
//! - `lib.rs` (this file): settings, connecting, driver-error mapping, the
//!   server-gap probe, the hot query shapes and the [`Storage`] impl
//!   (migrate, schema drift, `record_webhook`);
//! - `calls.rs`: [`CallStore`](switchboard_storage::CallStore) (lookups by key, merges, lists);
//! - `events.rs`: [`EventStore`](switchboard_storage::EventStore) (replay-protected inserts, lists);
//! - `contacts.rs`, `campaigns.rs`, `enrollments.rs`: the campaign side;
//! - `analytics.rs`: [`AnalyticsStore`](switchboard_storage::AnalyticsStore) (rollups by `$group` + `$merge`);
//! - `docs.rs`: call and event documents, and the helpers every area's queries
//!   share (BSON dates, keyset filters); `records.rs`: the campaign side's documents;
//! - [`schema`]: validators and indexes.

#![forbid(unsafe_code)]

mod analytics;
mod calls;
mod campaigns;
mod changes;
mod contacts;
mod docs;
mod enrollments;
mod events;
mod leases;
mod records;
pub mod schema;
mod sheets;
mod transcripts;

use std::time::Duration;

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, ClientOptions, DatabaseOptions, WriteConcern};
use mongodb::{Client, Collection, Database};
use switchboard_domain::{CallId, CallUpdate};
use switchboard_storage::{
    CallStore, Capabilities, Drift, EventStore, MigrationReport, NewEvent, Storage, StoreError, StoreResult,
    WebhookOutcome,
};

use calls::key_filter;
use docs::{CallDoc, EventDoc};
use events::{dedupe_filter, event_sort, events_of};
use schema::{CALL_EVENTS, CALLS};

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
    /// Ignored. Whether the deployment is a replica set or a sharded cluster
    /// is a fact read from the server's `hello` reply at connect time
    /// (`setName`, or `msg: "isdbgrid"`), not something configuration can
    /// promise: a wrong `true` made every merge fail, a wrong `false` gave up
    /// transactions a replica set has. Kept only so existing callers compile;
    /// use [`MongoSettings::disable_transactions`] to force transactions off.
    pub replica_set: bool,
    /// Forces transactions off even on a replica set or mongos (the
    /// standalone code paths are then used). Meant for diagnosing a
    /// transaction problem, never needed for correctness.
    pub disable_transactions: bool,
    /// Write concern of every write. `None` (the default, and what production
    /// should use) pins `w: "majority", j: true`, whatever the URI says: a
    /// webhook is acknowledged only once its write is durable (architecture
    /// §3). Set it only deliberately, e.g. `w: 1` on a throw-away dev server.
    pub write_concern: Option<WriteConcern>,
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
            disable_transactions: false,
            write_concern: None,
        }
    }
}

/// `w: "majority", j: true`: acknowledged once journaled on a majority.
pub fn durable_write_concern() -> WriteConcern {
    WriteConcern::builder().w(Acknowledgment::Majority).journal(true).build()
}

/// What the server said it is in its `hello` reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deployment {
    /// A replica-set member (`setName`).
    ReplicaSet(String),
    /// A `mongos` router (`msg: "isdbgrid"`).
    Sharded,
    /// Anything else: a standalone `mongod` (no multi-document transactions).
    Standalone,
}

impl Deployment {
    /// Reads a `hello` reply.
    pub fn from_hello(hello: &Document) -> Deployment {
        if let Ok(name) = hello.get_str("setName") {
            return Deployment::ReplicaSet(name.to_owned());
        }
        if hello.get_str("msg").is_ok_and(|m| m == "isdbgrid") {
            return Deployment::Sharded;
        }
        Deployment::Standalone
    }

    /// Whether multi-document transactions are available.
    pub fn has_transactions(&self) -> bool {
        !matches!(self, Deployment::Standalone)
    }
}
/// The MongoDB store.
#[derive(Clone)]
pub struct MongoStore {
    client: Client,
    db: Database,
    calls: Collection<CallDoc>,
    events: Collection<EventDoc>,
    deployment: Deployment,
    /// Multi-document transactions are used (replica set or mongos, not disabled).
    transactions: bool,
    write_concern: WriteConcern,
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
    /// `explain` does not return a `queryPlanner.winningPlan` document with stages.
    pub no_explain_plans: bool,
    /// `$text` is missing or does not OR its terms: transcript search scans
    /// the filtered candidates in Rust instead (same match set, no text index).
    pub no_text_search: bool,
    /// Cannot run the rollup aggregation (`$lookup` with a sub-pipeline,
    /// `$group`, `$merge` on the bucket key) or computes other figures than
    /// `Metrics::add_call`: analytics buckets cannot be rebuilt.
    pub no_rollup_aggregation: bool,
}

/// Server error codes that mean "not now, try again": NotWritablePrimary
/// (10107), InterruptedDueToReplStateChange (11602), PrimarySteppedDown (189),
/// ShutdownInProgress (91), NotPrimaryNoSecondaryOk (13435),
/// NotPrimaryOrSecondary (13436), NetworkTimeout (89), ExceededTimeLimit (262)
/// and MaxTimeMSExpired (50).
pub const UNAVAILABLE_CODES: &[i32] = &[10107, 11602, 189, 91, 13435, 13436, 89, 262, 50];

/// Error labels the driver or server put on errors a retry can cure.
pub const RETRY_LABELS: &[&str] =
    &["RetryableWriteError", "TransientTransactionError", "UnknownTransactionCommitResult"];

/// Every server error code carried by `e` (command, write, write-concern and bulk errors).
fn codes(e: &mongodb::error::Error) -> Vec<i32> {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => vec![w.code],
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => vec![w.code],
        ErrorKind::InsertMany(m) => m
            .write_errors
            .iter()
            .flatten()
            .map(|w| w.code)
            .chain(m.write_concern_error.iter().map(|w| w.code))
            .collect(),
        ErrorKind::Command(c) => vec![c.code],
        _ => vec![],
    }
}

fn is_code(e: &mongodb::error::Error, code: i32) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == code,
        ErrorKind::InsertMany(m) => m.write_errors.iter().flatten().any(|w| w.code == code),
        ErrorKind::Command(c) => c.code == code,
        _ => false,
    }
}

fn write_concern_failed(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteConcernError(_)) => true,
        ErrorKind::InsertMany(m) => m.write_concern_error.is_some(),
        _ => false,
    }
}

/// Maps a driver error to the store error, once for the whole backend.
///
/// - duplicate key (11000) → `Conflict` (409);
/// - failed document validation (121) → `Other` (500): the adapter wrote a
///   document its own schema forbids, which is our bug, not the sender's;
/// - a write-concern failure, a step-down / shutdown / timeout code
///   ([`UNAVAILABLE_CODES`]), a retry label ([`RETRY_LABELS`]), or no
///   reachable server → `Unavailable` (503 + Retry-After, the provider retries);
/// - anything else → `Other`.
pub fn map_err(e: mongodb::error::Error) -> StoreError {
    let labelled = RETRY_LABELS.iter().any(|l| e.contains_label(l));
    map_err_labelled(e, labelled)
}

/// "E11000 duplicate key error collection: db.calls index: call_sid_present_uq dup key: …"
/// → "a record with this call_sid exists": the field, never the driver's text.
fn duplicate_key_message(e: &mongodb::error::Error) -> String {
    let text = e.to_string();
    let index = text.split("index: ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap_or("");
    let field = match index {
        "_id_" => "id",
        i if i.starts_with("call_sid") || i.starts_with("absorbing_call_sid") => "call_sid",
        i if i.starts_with("conversation_id") || i.starts_with("absorbing_conversation_id") => "conversation_id",
        i if i.starts_with("phone") => "phone",
        i if i.starts_with("dedupe") => "dedupe_key",
        i if i.starts_with("campaign_contact") => "campaign and contact",
        _ => "key",
    };
    format!("a record with this {field} exists")
}

fn map_err_labelled(e: mongodb::error::Error, labelled: bool) -> StoreError {
    if is_code(&e, 11000) {
        return StoreError::conflict(duplicate_key_message(&e));
    }
    if is_code(&e, 121) {
        return StoreError::Other(anyhow::anyhow!(
            "MongoDB rejected a document the adapter wrote (failed validation, code 121): {e}"
        ));
    }
    if labelled || write_concern_failed(&e) || codes(&e).iter().any(|c| UNAVAILABLE_CODES.contains(c)) {
        return StoreError::Unavailable(e.to_string());
    }
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. } | ErrorKind::Io(_) | ErrorKind::ConnectionPoolCleared { .. } => {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Other(anyhow::Error::new(e)),
    }
}

/// A store error raised inside a transaction callback, carried through the
/// driver (which only retries on its own labels) and turned back afterwards.
#[derive(Debug, Clone)]
struct TxAbort {
    conflict: bool,
    message: String,
}

fn tx_abort(e: StoreError) -> mongodb::error::Error {
    let conflict = matches!(e, StoreError::Conflict { .. });
    mongodb::error::Error::custom(TxAbort { conflict, message: e.to_string() })
}

fn tx_err(e: mongodb::error::Error) -> StoreError {
    match e.get_custom::<TxAbort>() {
        Some(a) if a.conflict => StoreError::conflict(a.message.clone()),
        Some(a) => StoreError::Other(anyhow::anyhow!("{}", a.message)),
        None => map_err(e),
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
        // Durability is not negotiable by a URI parameter: pinned here, on the
        // client, the database and (by inheritance) every collection.
        let write_concern = settings.write_concern.clone().unwrap_or_else(durable_write_concern);
        if settings.write_concern.is_none() && opts.write_concern.as_ref().is_some_and(|w| *w != write_concern) {
            tracing::warn!(uri_write_concern = ?opts.write_concern, "the write concern in MONGODB_URI is ignored: writes use w: majority, j: true");
        }
        opts.write_concern = Some(write_concern.clone());
        let hosts = opts.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(",");
        let timeout = opts.server_selection_timeout.unwrap_or(Duration::from_secs(30));
        let client = Client::with_options(opts).map_err(map_err)?;
        let db = client.database_with_options(
            &settings.database,
            DatabaseOptions::builder().write_concern(write_concern.clone()).build(),
        );
        let mut store = MongoStore {
            calls: db.collection(CALLS),
            events: db.collection(CALL_EVENTS),
            db,
            client,
            deployment: Deployment::Standalone,
            transactions: false,
            write_concern,
            gaps: ServerGaps::default(),
        };
        let attempts = settings.connect_attempts.max(1);
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=attempts {
            let reached = match store.ping().await {
                Ok(()) => store.hello().await,
                Err(e) => Err(e),
            };
            match reached {
                Ok(hello) => {
                    store.deployment = Deployment::from_hello(&hello);
                    store.transactions = store.deployment.has_transactions() && !settings.disable_transactions;
                    tracing::info!(deployment = ?store.deployment, transactions = store.transactions, "connected to MongoDB");
                    return Ok(store);
                }
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

    async fn hello(&self) -> StoreResult<Document> {
        self.client.database("admin").run_command(doc! { "hello": 1 }).await.map_err(map_err)
    }

    /// What the server said it is at connect time.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// Whether multi-document transactions are used.
    pub fn uses_transactions(&self) -> bool {
        self.transactions
    }

    /// The write concern every write uses.
    pub fn write_concern(&self) -> &WriteConcern {
        &self.write_concern
    }

    /// The gaps found by [`MongoStore::probe_server_gaps`] (none unless probed).
    pub fn gaps(&self) -> &ServerGaps {
        &self.gaps
    }

    /// Runs `explain` (verbosity `queryPlanner`) of a `find` on `coll`.
    async fn explain(
        &self,
        coll: &Collection<Document>,
        filter: Document,
        sort: Option<Document>,
    ) -> StoreResult<Document> {
        let mut find = doc! { "find": coll.name(), "filter": filter };
        if let Some(sort) = sort {
            find.insert("sort", sort);
        }
        self.db.run_command(doc! { "explain": find, "verbosity": "queryPlanner" }).await.map_err(map_err)
    }

    /// The `explain` reply of a hot query shape.
    #[doc(hidden)]
    pub async fn explain_hot_query(&self, q: &HotQuery) -> StoreResult<Document> {
        self.explain(&self.db.collection::<Document>(q.collection), q.filter.clone(), q.sort.clone()).await
    }

    /// The client (sessions, transactions and change streams start here).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The database handle (tests drop it).
    pub fn database(&self) -> &Database {
        &self.db
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
        gaps.no_explain_plans =
            match self.explain(&self.db.collection::<Document>(&format!("{name}_e")), doc! { "x": 1 }, None).await {
                Ok(reply) => winning_plan(&reply).is_none(),
                Err(_) => true,
            };
        let _ = self.db.collection::<Document>(&format!("{name}_e")).drop().await;
        gaps.no_text_search = !self.text_search_works(&format!("{name}_t")).await;
        let rollups = self.rollup_aggregation_works(&format!("{name}_r")).await;
        gaps.no_rollup_aggregation = rollups.is_err();
        let mut reasons = Vec::new();
        if let Err(why) = rollups {
            reasons.push(format!("server cannot run the rollup aggregation ($lookup with a sub-pipeline, $group, $merge) as MongoDB does ({why}): analytics buckets are not rebuilt and the rollup case is not run"));
        }
        if gaps.no_text_search {
            reasons.push("server's $text does not OR its terms (or is missing): transcript search leaves out the text index and scans the filtered candidates in Rust (same match set, unranked by textScore)".to_owned());
        }
        if gaps.no_explain_plans {
            reasons.push(
                "server's explain has no queryPlanner.winningPlan document: query plans are not asserted".to_owned(),
            );
        }
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

/// A query shape on a hot path (webhooks, the dialer) and the indexes that
/// must serve it; the query-plan test explains each one against the server.
#[doc(hidden)]
#[derive(Debug, Clone)]
pub struct HotQuery {
    /// What it is.
    pub name: &'static str,
    /// Collection.
    pub collection: &'static str,
    /// The filter, built by the same function the adapter uses.
    pub filter: Document,
    /// The sort, if any.
    pub sort: Option<Document>,
    /// Index names the winning plan must scan (every branch of an `$or`); `_id_` may be served by `IDHACK`.
    pub indexes: Vec<&'static str>,
}

/// The campaign the sample hot queries name (a test seeds data under it, so
/// the planner chooses between real candidates, not empty ones).
#[doc(hidden)]
pub const HOT_CAMPAIGN: &str = "cmp_00000000000000000000000000000001";
/// The contact the sample hot queries name.
#[doc(hidden)]
pub const HOT_CONTACT: &str = "con_00000000000000000000000000000001";
/// The call the sample hot queries name.
#[doc(hidden)]
pub const HOT_CALL: &str = "call_00000000000000000000000000000001";

/// Every hot query shape, with sample values.
#[doc(hidden)]
pub fn hot_queries() -> Vec<HotQuery> {
    use schema::*;
    let sid = "CA0123456789abcdef0123456789abcdef";
    let now = switchboard_domain::time::from_millis(1_794_916_542_123);
    let call = CallId::parse(HOT_CALL).expect("valid id");
    let mut held = switchboard_domain::Enrollment::new(
        switchboard_domain::CampaignId::parse(HOT_CAMPAIGN).expect("valid id"),
        switchboard_domain::ContactId::parse(HOT_CONTACT).expect("valid id"),
        now,
    );
    held.lease = Some(switchboard_domain::enrollment::Lease { owner: "dialer-1".into(), expires_at: now });
    let q = |name, collection, filter, sort, indexes| HotQuery { name, collection, filter, sort, indexes };
    vec![
        q(
            "call by call_sid (Twilio webhooks)",
            CALLS,
            key_filter("call_sid", sid),
            None,
            vec![CALL_SID_INDEX, ABSORBING_CALL_SID_INDEX],
        ),
        q(
            "call by conversation_id (ElevenLabs webhooks)",
            CALLS,
            key_filter("conversation_id", "conv_01jabc"),
            None,
            vec![CONVERSATION_ID_INDEX, ABSORBING_CONVERSATION_ID_INDEX],
        ),
        q("call by id (dialer, callback URLs)", CALLS, key_filter("_id", call.as_str()), None, vec!["_id_"]),
        q(
            "event by dedupe key (webhook replay check)",
            CALL_EVENTS,
            dedupe_filter("twilio:CA1:3"),
            None,
            vec!["dedupe_uq"],
        ),
        q(
            "events of a call (merge re-point, event list)",
            CALL_EVENTS,
            events_of(call.as_str()),
            Some(event_sort()),
            vec!["call_occurred"],
        ),
        q("contact by phone", CONTACTS, doc! { "phone": "+14155552671" }, None, vec!["phone_uq"]),
        q(
            "enrollment claim",
            ENROLLMENTS,
            enrollments::claim_filter(held.campaign_id.as_str(), now),
            Some(enrollments::claim_sort()),
            vec!["due"],
        ),
        q(
            "expired leases",
            ENROLLMENTS,
            enrollments::expired_filter(now),
            Some(enrollments::expired_sort()),
            vec!["leases"],
        ),
        q("enrollment compare-and-set", ENROLLMENTS, enrollments::enrollment_cas_filter(&held), None, vec!["_id_"]),
        q(
            "enrollment of a contact in a campaign",
            ENROLLMENTS,
            enrollments::enrollment_of(held.campaign_id.as_str(), held.contact_id.as_str()),
            None,
            vec!["campaign_contact_uq"],
        ),
    ]
}

/// The `queryPlanner.winningPlan` document of an `explain` reply, if the server gives one.
#[doc(hidden)]
pub fn winning_plan(explain: &Document) -> Option<&Document> {
    explain.get_document("queryPlanner").ok()?.get_document("winningPlan").ok()
}

/// Every `(stage, indexName)` in a plan tree (classic `inputStage(s)` and
/// slot-based `queryPlan` shapes alike).
#[doc(hidden)]
pub fn plan_stages(plan: &Document) -> Vec<(String, Option<String>)> {
    fn walk(b: &Bson, out: &mut Vec<(String, Option<String>)>) {
        match b {
            Bson::Document(d) => {
                if let Ok(stage) = d.get_str("stage") {
                    out.push((stage.to_owned(), d.get_str("indexName").ok().map(str::to_owned)));
                }
                for (_, v) in d {
                    walk(v, out);
                }
            }
            Bson::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&Bson::Document(plan.clone()), &mut out);
    out
}
impl MongoStore {
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

impl MongoStore {
    async fn drop_index_if_present(&self, coll: &str, name: &str, applied: &mut Vec<String>) -> StoreResult<()> {
        if self.live_indexes(coll).await?.iter().any(|m| index_name(m) == name) {
            match self.db.collection::<Document>(coll).drop_index(name).await {
                Ok(()) => applied.push(format!("dropped index {coll}.{name} (replaced)")),
                // IndexNotFound: dropped concurrently by another instance.
                Err(e) if is_code(&e, 27) => {}
                Err(e) => return Err(map_err(e)),
            }
        }
        Ok(())
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
            transactions: self.transactions,
            schema_validation: !self.gaps.no_validation,
            schema_introspection: !self.gaps.no_schema_introspection,
            dates_in_updates: !self.gaps.no_dates_in_updates,
            rollup_aggregation: !self.gaps.no_rollup_aggregation,
            notes: vec![],
        }
    }

    async fn record_webhook(&self, update: &CallUpdate, event: NewEvent) -> StoreResult<WebhookOutcome> {
        if self.event_exists(&event.dedupe_key).await? {
            return Ok(WebhookOutcome::Replay);
        }
        let mut outcome = self.upsert_call(update).await?;
        let event = event.for_call(outcome.call.id.clone());
        if !self.insert_event(&event).await? {
            return Ok(WebhookOutcome::Replay);
        }
        // The call may have been absorbed by a merge between the upsert and the insert.
        if let Some(survivor) = self.repoint_if_absorbed(&event, update).await? {
            outcome.call = survivor;
        }
        Ok(WebhookOutcome::Applied(Box::new(outcome)))
    }

    async fn ping(&self) -> StoreResult<()> {
        self.db.run_command(doc! { "ping": 1 }).await.map_err(map_err).map(|_| ())
    }

    async fn watch_changes(&self, after: Option<String>) -> StoreResult<Option<switchboard_storage::ChangeStream>> {
        self.open_changes(after).await
    }

    async fn change_token(&self, name: &str) -> StoreResult<Option<String>> {
        self.load_change_token(name).await
    }

    async fn save_change_token(&self, name: &str, token: &str) -> StoreResult<()> {
        self.store_change_token(name, token).await
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
            if self.gaps.no_text_search && name == schema::TRANSCRIPT_TEXT_INDEX {
                applied.push(format!("left out index {coll}.{name}: the server's $text search is not usable"));
                continue;
            }
            if self.gaps.no_compound_id_index && model.keys.contains_key("_id") {
                applied.push(format!("left out index {coll}.{name}: the server cannot build a compound key with _id"));
                continue;
            }
            let live = self.live_indexes(coll).await?;
            if !live.iter().any(|m| index_name(m) == name) {
                let c = self.db.collection::<Document>(coll);
                match c.create_index(model.clone()).await {
                    Ok(_) => {}
                    // IndexOptionsConflict / IndexKeySpecsConflict: an index this one replaces
                    // is in the way; drop the replaced ones first, then build it.
                    Err(e) if is_code(&e, 85) || is_code(&e, 86) => {
                        for (_, old) in schema::REPLACED_INDEXES.iter().filter(|(c, _)| *c == coll) {
                            self.drop_index_if_present(coll, old, &mut applied).await?;
                        }
                        c.create_index(model).await.map_err(map_err)?;
                    }
                    Err(e) => return Err(map_err(e)),
                }
                applied.push(format!("created index {coll}.{name}"));
            }
        }
        // Replaced indexes go only after their successors exist, so a unique key is never unguarded.
        for (coll, old) in schema::REPLACED_INDEXES {
            self.drop_index_if_present(coll, old, &mut applied).await?;
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
                // A text index reports its keys as `{_fts: "text", _ftsx: 1}`, not as declared.
                Some(m) if m.keys.contains_key("_fts") && model.keys.values().any(|v| v.as_str() == Some("text")) => {}
                Some(m) if Bson::Document(m.keys.clone()) != Bson::Document(model.keys.clone()) => drift.push(Drift {
                    object: format!("{coll}.{name}"),
                    detail: format!("index keys are {} instead of {}", m.keys, model.keys),
                }),
                _ => {}
            }
        }
        for (coll, old) in schema::REPLACED_INDEXES {
            if self.live_indexes(coll).await?.iter().any(|m| index_name(m) == *old) {
                drift.push(Drift { object: format!("{coll}.{old}"), detail: "replaced index still present".into() });
            }
        }
        Ok(drift)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::deserialize_from_document;
    use mongodb::error::{CommandError, Error, InsertManyError, WriteConcernError, WriteError};

    fn write_error(code: i32) -> Error {
        let w: WriteError = deserialize_from_document(doc! { "code": code, "errmsg": "x" }).unwrap();
        Error::from(ErrorKind::Write(WriteFailure::WriteError(w)))
    }

    fn write_concern_error(code: i32, labels: &[&str]) -> Error {
        let w: WriteConcernError =
            deserialize_from_document(doc! { "code": code, "codeName": "x", "errmsg": "x", "errorLabels": labels })
                .unwrap();
        Error::from(ErrorKind::Write(WriteFailure::WriteConcernError(w)))
    }

    fn command_error(code: i32) -> Error {
        let c: CommandError = deserialize_from_document(doc! { "code": code, "codeName": "x", "errmsg": "x" }).unwrap();
        Error::from(ErrorKind::Command(c))
    }

    fn insert_many_error(body: Document) -> Error {
        let m: InsertManyError = deserialize_from_document(body).unwrap();
        Error::from(ErrorKind::InsertMany(m))
    }

    #[test]
    fn duplicate_keys_are_conflicts() {
        assert!(matches!(map_err(write_error(11000)), StoreError::Conflict { .. }));
        assert!(matches!(map_err(command_error(11000)), StoreError::Conflict { .. }));
        let bulk = insert_many_error(doc! { "writeErrors": [ { "index": 3, "code": 11000, "errmsg": "dup" } ] });
        assert!(matches!(map_err(bulk), StoreError::Conflict { .. }));
    }

    #[test]
    fn a_validator_rejection_is_our_bug_not_the_senders() {
        // `Other` becomes a 500 in crates/app (`Invalid` would be a 400 blaming the sender).
        for e in [
            write_error(121),
            command_error(121),
            insert_many_error(doc! { "writeErrors": [ { "index": 0, "code": 121, "errmsg": "failed validation" } ] }),
        ] {
            let mapped = map_err(e);
            assert!(matches!(mapped, StoreError::Other(_)), "{mapped:?}");
            assert!(mapped.to_string().contains("121"), "{mapped}");
        }
    }

    #[test]
    fn step_downs_timeouts_and_write_concern_failures_are_unavailable() {
        for code in UNAVAILABLE_CODES {
            assert!(matches!(map_err(command_error(*code)), StoreError::Unavailable(_)), "command error {code}");
            assert!(matches!(map_err(write_error(*code)), StoreError::Unavailable(_)), "write error {code}");
        }
        // A write-concern error (e.g. 64 WriteConcernFailed: wtimeout) means durability is not confirmed.
        assert!(matches!(map_err(write_concern_error(64, &[])), StoreError::Unavailable(_)));
        let bulk = insert_many_error(doc! { "writeConcernError": { "code": 64, "codeName": "x", "errmsg": "x" } });
        assert!(matches!(map_err(bulk), StoreError::Unavailable(_)));
        let io = Error::from(ErrorKind::Io(std::sync::Arc::new(std::io::Error::other("reset"))));
        assert!(matches!(map_err(io), StoreError::Unavailable(_)));
    }

    #[test]
    fn retry_labels_are_unavailable() {
        // Labels carried by a write-concern error reach the top-level error (the driver copies them).
        let labelled = write_concern_error(100, &["RetryableWriteError"]);
        assert!(labelled.contains_label("RetryableWriteError"));
        assert!(matches!(map_err(labelled), StoreError::Unavailable(_)));
        // A server-labelled command error (labels cannot be attached from outside the driver).
        assert!(matches!(map_err_labelled(command_error(112), true), StoreError::Unavailable(_)));
        assert!(matches!(map_err_labelled(command_error(112), false), StoreError::Other(_)));
    }

    #[test]
    fn other_errors_stay_other() {
        assert!(matches!(map_err(command_error(2)), StoreError::Other(_)));
        assert!(matches!(map_err(write_error(2)), StoreError::Other(_)));
    }

    #[test]
    fn the_deployment_comes_from_hello() {
        let rs = doc! { "isWritablePrimary": true, "setName": "rs0", "maxWireVersion": 21 };
        assert_eq!(Deployment::from_hello(&rs), Deployment::ReplicaSet("rs0".into()));
        assert!(Deployment::from_hello(&rs).has_transactions());
        let mongos = doc! { "isWritablePrimary": true, "msg": "isdbgrid" };
        assert_eq!(Deployment::from_hello(&mongos), Deployment::Sharded);
        assert!(Deployment::from_hello(&mongos).has_transactions());
        let standalone = doc! { "isWritablePrimary": true, "maxWireVersion": 21 };
        assert_eq!(Deployment::from_hello(&standalone), Deployment::Standalone);
        assert!(!Deployment::from_hello(&standalone).has_transactions());
    }

    #[test]
    fn plan_stages_read_classic_and_slot_based_explain_shapes() {
        // MongoDB 7.0, slot-based engine: the tree sits under `queryPlan`.
        let sbe = doc! { "queryPlanner": { "winningPlan": {
        "queryPlan": { "stage": "SUBPLAN", "inputStage": { "stage": "FETCH", "inputStage": { "stage": "OR", "inputStages": [
            { "stage": "IXSCAN", "indexName": "call_sid_present_uq" },
            { "stage": "IXSCAN", "indexName": "absorbing_call_sid" } ] } } },
        "slotBasedPlan": { "slots": "...", "stages": "..." } } } };
        let stages = plan_stages(winning_plan(&sbe).unwrap());
        assert_eq!(stages.iter().filter(|(s, _)| s == "IXSCAN").count(), 2);
        assert!(stages.contains(&("IXSCAN".into(), Some("absorbing_call_sid".into()))));
        let classic = doc! { "queryPlanner": { "winningPlan": { "stage": "COLLSCAN", "direction": "forward" } } };
        assert_eq!(plan_stages(winning_plan(&classic).unwrap()), vec![("COLLSCAN".to_owned(), None)]);
        // The stand-in answers with an array: no plan document.
        let stand_in = doc! { "queryPlanner": { "winningPlan": [ { "detail": "SEARCH t USING INDEX x" } ] } };
        assert!(winning_plan(&stand_in).is_none());
    }

    #[test]
    fn writes_are_durable_by_default() {
        let wc = durable_write_concern();
        assert_eq!(wc.w, Some(Acknowledgment::Majority));
        assert_eq!(wc.journal, Some(true));
    }
}
