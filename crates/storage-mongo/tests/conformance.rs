//! The storage conformance suite on MongoDB. Runs when `TEST_MONGODB_URI` is
//! set (CI sets it); otherwise prints one loud skip line. Each case gets its
//! own database, dropped afterwards.

use std::sync::{Arc, Once};

use async_trait::async_trait;
use switchboard_storage::conformance::{Harness, loud};
use switchboard_storage::{Storage, conformance_tests};
use switchboard_storage_mongo::{MongoSettings, MongoStore};

struct MongoHarness {
    settings: MongoSettings,
    first: MongoStore,
}

impl MongoHarness {
    async fn connect(&self) -> MongoStore {
        let mut s = MongoStore::connect(&self.settings).await.expect("connect");
        s.probe_server_gaps().await;
        s
    }
}

#[async_trait]
impl Harness for MongoHarness {
    async fn open(&self) -> Arc<dyn Storage> {
        // A second client gets its own connection pool.
        Arc::new(self.connect().await)
    }
    async fn cleanup(&self) {
        let _ = self.first.database().drop().await;
    }
}

static SKIP: Once = Once::new();
static CAPS: Once = Once::new();

async fn mongo() -> Option<Box<dyn Harness>> {
    let Ok(uri) = std::env::var("TEST_MONGODB_URI") else {
        SKIP.call_once(|| {
            loud("!!!!! SKIPPED: MongoDB conformance suite — TEST_MONGODB_URI is not set (set it to run against a real server) !!!!!")
        });
        return None;
    };
    let db = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
    let mut settings = MongoSettings::new(uri, db);
    settings.connect_attempts = 2;
    let mut store =
        MongoStore::connect(&settings).await.expect("TEST_MONGODB_URI is set but the server is unreachable");
    let gaps = store.probe_server_gaps().await;
    CAPS.call_once(|| {
        for g in &gaps {
            loud(&format!("MongoDB server gap (probed): {g}"));
        }
    });
    store.migrate().await.expect("migrate");
    Some(Box::new(MongoHarness { settings, first: store }))
}

conformance_tests!(mongo);
