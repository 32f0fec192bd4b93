//! Opening the configured store, and [`Instrumented`]: a decorator that times
//! every store call into the `switchboard_store_operation_duration_seconds`
//! histogram and a tracing span, so neither backend repeats that code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchboard_domain::{Call, CallEvent, CallId, CallUpdate};
use switchboard_storage::{
    CallFilter, CallSort, CallStore, Capabilities, Drift, EventFilter, EventStore, MigrationReport, NewEvent, Page,
    PageRequest, Storage, StoreResult, UpsertOutcome, WebhookOutcome,
};
use switchboard_storage_mongo::{MongoSettings, MongoStore};
use switchboard_storage_sqlite::{Durability, SqliteOptions, SqliteStore};

use crate::config::{Settings, SqliteDurability};
use crate::metrics::STORE_DURATION;

/// Opens MongoDB when `MONGODB_URI` is set, else the SQLite file.
pub async fn open(settings: &Settings) -> anyhow::Result<Arc<dyn Storage>> {
    let s = &settings.storage;
    let store: Arc<dyn Storage> = match &s.mongodb_uri {
        Some(uri) => {
            let mut m = MongoSettings::new(uri.expose(), &s.mongodb_db);
            m.max_pool_size = s.max_pool_size;
            m.min_pool_size = s.min_pool_size;
            m.connect_timeout = s.connect_timeout_ms.map(Duration::from_millis);
            m.server_selection_timeout = s.server_selection_timeout_ms.map(Duration::from_millis);
            m.connect_attempts = s.connect_attempts;
            m.disable_transactions = s.disable_transactions;
            if s.replica_set.is_some() {
                tracing::warn!(
                    "storage.replica_set is ignored: replica sets and mongos are detected from the server's hello answer"
                );
            }
            tracing::info!(database = %s.mongodb_db, "connecting to MongoDB");
            Arc::new(MongoStore::connect(&m).await?)
        }
        None => {
            let opts = SqliteOptions {
                readers: s.sqlite_readers,
                durability: match s.sqlite_durability {
                    SqliteDurability::Full => Durability::Full,
                    SqliteDurability::Normal => Durability::Normal,
                },
                ..Default::default()
            };
            tracing::info!(path = %s.sqlite_path.display(), "opening embedded SQLite store");
            Arc::new(SqliteStore::open(&s.sqlite_path, opts)?)
        }
    };
    Ok(Arc::new(Instrumented(store)))
}

/// Times every call of the inner store.
pub struct Instrumented(pub Arc<dyn Storage>);

async fn timed<T>(op: &'static str, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    let start = Instant::now();
    let r = fut.await;
    let result = if r.is_ok() { "ok" } else { "error" };
    metrics::histogram!(STORE_DURATION, "op" => op, "result" => result).record(start.elapsed().as_secs_f64());
    r
}

#[async_trait]
impl CallStore for Instrumented {
    async fn upsert_call(&self, update: &CallUpdate) -> StoreResult<UpsertOutcome> {
        timed("upsert_call", self.0.upsert_call(update)).await
    }
    async fn get_call(&self, id: &CallId) -> StoreResult<Call> {
        timed("get_call", self.0.get_call(id)).await
    }
    async fn find_call_by_sid(&self, call_sid: &str) -> StoreResult<Option<Call>> {
        timed("find_call_by_sid", self.0.find_call_by_sid(call_sid)).await
    }
    async fn find_call_by_conversation(&self, conversation_id: &str) -> StoreResult<Option<Call>> {
        timed("find_call_by_conversation", self.0.find_call_by_conversation(conversation_id)).await
    }
    async fn list_calls(&self, filter: &CallFilter, sort: CallSort, page: &PageRequest) -> StoreResult<Page<Call>> {
        timed("list_calls", self.0.list_calls(filter, sort, page)).await
    }
    async fn insert_calls_bulk(&self, calls: &[Call], events: &[CallEvent]) -> StoreResult<()> {
        timed("insert_calls_bulk", self.0.insert_calls_bulk(calls, events)).await
    }
    async fn count_calls(&self) -> StoreResult<u64> {
        timed("count_calls", self.0.count_calls()).await
    }
}

#[async_trait]
impl EventStore for Instrumented {
    async fn insert_event(&self, event: &CallEvent) -> StoreResult<bool> {
        timed("insert_event", self.0.insert_event(event)).await
    }
    async fn event_exists(&self, dedupe_key: &str) -> StoreResult<bool> {
        timed("event_exists", self.0.event_exists(dedupe_key)).await
    }
    async fn list_call_events(&self, call_id: &CallId, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        timed("list_call_events", self.0.list_call_events(call_id, page)).await
    }
    async fn list_events(&self, filter: &EventFilter, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        timed("list_events", self.0.list_events(filter, page)).await
    }
}

switchboard_storage::forward_campaign_stores!(Instrumented, 0, timed);

#[async_trait]
impl Storage for Instrumented {
    fn backend_name(&self) -> &'static str {
        self.0.backend_name()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn ping(&self) -> StoreResult<()> {
        timed("ping", self.0.ping()).await
    }
    async fn migrate(&self) -> StoreResult<MigrationReport> {
        self.0.migrate().await
    }
    async fn check_schema(&self) -> StoreResult<Vec<Drift>> {
        self.0.check_schema().await
    }
    async fn record_webhook(&self, update: &CallUpdate, event: NewEvent) -> StoreResult<WebhookOutcome> {
        timed("record_webhook", self.0.record_webhook(update, event)).await
    }
}
