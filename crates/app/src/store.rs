//! Opening the configured store, and [`Instrumented`]: a decorator that times
//! every store call into the `switchboard_store_operation_duration_seconds`
//! histogram and a tracing span, so neither backend repeats that code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use switchboard_storage::{Storage, StoreResult};
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

/// Times every call of the inner store (`switchboard_store_operation_duration_seconds`).
pub struct Instrumented(pub Arc<dyn Storage>);

impl Instrumented {
    async fn timed<T>(&self, op: &'static str, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        let start = Instant::now();
        let r = fut.await;
        let result = if r.is_ok() { "ok" } else { "error" };
        metrics::histogram!(STORE_DURATION, "op" => op, "result" => result).record(start.elapsed().as_secs_f64());
        r
    }
}

switchboard_storage::decorate_storage!(Instrumented, 0, timed);
