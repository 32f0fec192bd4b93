//! The storage conformance suite on SQLite: always runs, file-backed (WAL,
//! writer + readers) and in-memory (single connection).

use std::sync::Arc;

use async_trait::async_trait;
use switchboard_storage::conformance::Harness;
use switchboard_storage::{Storage, conformance_tests};
use switchboard_storage_sqlite::{SqliteOptions, SqliteStore};

struct FileHarness {
    dir: tempfile::TempDir,
}

#[async_trait]
impl Harness for FileHarness {
    /// A new store (its own writer connection and readers) on the same file,
    /// so concurrency cases race two independent handles.
    async fn open(&self) -> Arc<dyn Storage> {
        Arc::new(SqliteStore::open(self.dir.path().join("t.db"), SqliteOptions::default()).unwrap())
    }
    async fn cleanup(&self) {}
}

async fn file_store() -> Option<Box<dyn Harness>> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("t.db"), SqliteOptions::default()).unwrap();
    store.migrate().await.unwrap();
    drop(store);
    Some(Box::new(FileHarness { dir }))
}

struct MemHarness(SqliteStore);

#[async_trait]
impl Harness for MemHarness {
    async fn open(&self) -> Arc<dyn Storage> {
        Arc::new(self.0.clone())
    }
    async fn cleanup(&self) {}
}

async fn memory_store() -> Option<Box<dyn Harness>> {
    let store = SqliteStore::open_in_memory().unwrap();
    store.migrate().await.unwrap();
    Some(Box::new(MemHarness(store)))
}

mod file {
    use super::*;
    conformance_tests!(file_store);
}

mod memory {
    use super::*;
    conformance_tests!(memory_store);
}
