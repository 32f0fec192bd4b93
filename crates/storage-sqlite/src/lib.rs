//! The embedded SQLite backend: the default store when no MongoDB is configured.
//!
//! Layout of the connection handling (why it is not a plain pool):
//! - **One writer thread** owns the only write connection. Writes are sent to
//!   it as closures; it drains whatever is queued (up to [`MAX_BATCH`]) and
//!   runs the batch in one transaction, each write in its own savepoint so a
//!   failing write rolls back alone, then commits once and only then answers
//!   every caller. This is group commit: with `synchronous=FULL` every
//!   acknowledged write is on disk, yet the fsync cost is shared by all
//!   writes that arrived together, so throughput grows with concurrency.
//! - **Reader connections** (WAL lets them run beside the writer) serve
//!   queries on tokio's blocking pool. An in-memory database has no second
//!   connection, so there reads go through the writer too.
//!
//! Merges run inside the writer's transaction, so an upsert reads and writes
//! a call atomically; `BEGIN IMMEDIATE` also serialises several processes
//! sharing one file.
//!
//! Files, one per storage area:
//! - `lib.rs` (this file): the store, opening and the writer/reader plumbing,
//!   migrations and the [`Storage`] impl (with the one-transaction `record_webhook`);
//! - `calls.rs`: [`CallStore`](switchboard_storage::CallStore) (lookups, merge, lists);
//! - `events.rs`: [`EventStore`](switchboard_storage::EventStore) (replay-protected inserts, lists);
//! - `contacts.rs` (+ `contact_query.rs`), `campaigns.rs`, `enrollments.rs`: the campaign side;
//! - `rows.rs`: row <-> domain conversion and the helpers every area shares
//!   (`Where`, error mapping, cursors, JSON documents, timestamps);
//! - `sheets.rs`, `transcripts.rs` (recordings, transcripts, FTS5 search);
//! - `schema.rs`: the versioned migrations.

#![forbid(unsafe_code)]

mod analytics;
mod calls;
mod campaigns;
mod contact_query;
mod contacts;
mod enrollments;
mod events;
mod fts_tiers;
mod leases;
mod rows;
mod schema;
mod sheets;
mod transcripts;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, OpenFlags};
use switchboard_domain::CallUpdate;
use switchboard_storage::calls::require_key;
use switchboard_storage::{
    Capabilities, Drift, MigrationReport, NewEvent, Storage, StoreError, StoreResult, WebhookOutcome,
};
use tokio::sync::{Semaphore, oneshot};

use calls::upsert_in_tx;
use events::insert_event_in_tx;
use rows::map_err;

/// The most writes committed together.
pub const MAX_BATCH: usize = 256;

/// How durable a commit is (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// fsync on every commit: an acknowledged write survives power loss.
    #[default]
    Full,
    /// fsync at checkpoints only: survives a process crash, not power loss.
    Normal,
}

/// Options of [`SqliteStore::open`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Reader connections (0 routes reads through the writer).
    pub readers: usize,
    /// How long a statement waits for a lock held by another process.
    pub busy_timeout: Duration,
    /// Commit durability.
    pub durability: Durability,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions { readers: 4, busy_timeout: Duration::from_secs(5), durability: Durability::Full }
    }
}

type Finisher = Box<dyn FnOnce(Option<String>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Finisher + Send>;

struct Readers {
    conns: Mutex<Vec<Connection>>,
    permits: Semaphore,
}

/// The SQLite store. Cheap to clone (all handles share the writer and readers).
#[derive(Clone)]
pub struct SqliteStore {
    writer: mpsc::Sender<Job>,
    readers: Option<Arc<Readers>>,
    path: Option<PathBuf>,
    /// Keeps the checkpointer thread alive while any handle exists.
    _alive: Arc<()>,
}

/// Size the WAL file is truncated back to after it has been rewound.
const WAL_LIMIT_BYTES: u64 = 64 * 1024 * 1024;

/// Runs WAL checkpoints on their own connection, off the commit path.
///
/// SQLite's automatic checkpoint runs inside whichever commit crosses the
/// threshold (1,000 pages), so that commit pays for copying the WAL into the
/// database. This thread runs a PASSIVE checkpoint (never blocks the writer or
/// readers) every 250 ms, so by the time the writer's automatic checkpoint
/// fires most frames are already copied and its pause is short. The writer's
/// own checkpoint is kept because only a checkpoint that completes with no
/// frames appended meanwhile lets the WAL rewind; a PASSIVE pass alone never
/// gets there under continuous writes, and the WAL would grow without bound.
/// The thread exits when the last store handle is dropped.
fn spawn_checkpointer(path: PathBuf, alive: std::sync::Weak<()>, opts: &SqliteOptions) -> StoreResult<()> {
    let conn = Connection::open(&path).map_err(map_err)?;
    configure(&conn, opts).map_err(map_err)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            while alive.upgrade().is_some() {
                std::thread::sleep(Duration::from_millis(250));
                if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
                }
            }
            // Last handle gone: fold the WAL back into the database file.
            let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        })
        .map_err(|e| StoreError::Other(anyhow::anyhow!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

/// Runs `f` inside `SAVEPOINT name`: released when it succeeds, rolled back
/// when it fails. Outside a transaction a savepoint begins one (deferred:
/// for reads, one snapshot); inside one it nests.
pub(crate) fn in_savepoint<T>(
    conn: &Connection,
    name: &str,
    f: impl FnOnce(&Connection) -> StoreResult<T>,
) -> StoreResult<T> {
    conn.execute_batch(&format!("SAVEPOINT {name}")).map_err(map_err)?;
    let r = f(conn);
    let end = if r.is_ok() { format!("RELEASE {name}") } else { format!("ROLLBACK TO {name}; RELEASE {name}") };
    conn.execute_batch(&end).map_err(map_err)?;
    r
}

fn configure(conn: &Connection, opts: &SqliteOptions) -> rusqlite::Result<()> {
    conn.busy_timeout(opts.busy_timeout)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    let sync = match opts.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -64_000)?;
    // Memory-mapped reads save a syscall per page read (the WAL is still written with write()).
    conn.pragma_update(None, "mmap_size", 1i64 << 30)?;
    // Partial UPDATEs produce a handful of distinct statements; keep them all prepared.
    conn.set_prepared_statement_cache_capacity(256);
    // Relevance ranking with our own idf (src/transcripts.rs).
    switchboard_fts5_rank::register(conn)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` in WAL mode.
    pub fn open(path: impl AsRef<Path>, opts: SqliteOptions) -> StoreResult<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Unavailable(format!(
                    "cannot create directory {} for the SQLite database: {e}",
                    dir.display()
                ))
            })?;
        }
        let conn = Connection::open(&path)
            .map_err(|e| StoreError::Unavailable(format!("cannot open SQLite database {}: {e}", path.display())))?;
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).map_err(map_err)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Unavailable(format!("{} does not support WAL mode (got {mode})", path.display())));
        }
        configure(&conn, &opts).map_err(map_err)?;
        conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES as i64).map_err(map_err)?;
        let mut readers = Vec::new();
        for _ in 0..opts.readers {
            let r =
                Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                    .map_err(map_err)?;
            configure(&r, &opts).map_err(map_err)?;
            readers.push(r);
        }
        let readers = (!readers.is_empty())
            .then(|| Arc::new(Readers { permits: Semaphore::new(readers.len()), conns: Mutex::new(readers) }));
        let alive = Arc::new(());
        spawn_checkpointer(path.clone(), Arc::downgrade(&alive), &opts)?;
        Ok(SqliteStore { writer: spawn_writer(conn), readers, path: Some(path), _alive: alive })
    }

    /// A private in-memory database (tests, benchmarks of the logic alone).
    pub fn open_in_memory() -> StoreResult<SqliteStore> {
        let conn = Connection::open_in_memory().map_err(map_err)?;
        configure(&conn, &SqliteOptions::default()).map_err(map_err)?;
        Ok(SqliteStore { writer: spawn_writer(conn), readers: None, path: None, _alive: Arc::new(()) })
    }

    /// The database file, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Runs `f` in the writer's transaction; answers after the commit.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel::<StoreResult<T>>();
        let job: Job = Box::new(move |conn| {
            let r = in_savepoint(conn, "w", f);
            Box::new(move |commit_err| {
                let _ = tx.send(match commit_err {
                    None => r,
                    Some(e) => Err(StoreError::Unavailable(format!("commit failed: {e}"))),
                });
            })
        });
        self.writer.send(job).map_err(|_| StoreError::Unavailable("SQLite writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("SQLite writer has stopped".into()))?
    }

    /// Runs a read-only `f` on a reader connection (or the writer for in-memory).
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let Some(readers) = self.readers.clone() else {
            return self.write(f).await;
        };
        let _permit = readers.permits.acquire().await.map_err(|_| StoreError::Unavailable("store closed".into()))?;
        let conn = readers.conns.lock().expect("reader pool lock").pop().expect("a permit guarantees a connection");
        let readers2 = readers.clone();
        let (r, conn) = tokio::task::spawn_blocking(move || {
            let r = f(&conn);
            (r, conn)
        })
        .await
        .map_err(|e| StoreError::Other(anyhow::anyhow!("reader task failed: {e}")))?;
        readers2.conns.lock().expect("reader pool lock").push(conn);
        r
    }
}

fn spawn_writer(conn: Connection) -> mpsc::Sender<Job> {
    let (tx, rx) = mpsc::channel::<Job>();
    std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(j) => batch.push(j),
                        Err(_) => break,
                    }
                }
                if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
                    let msg = e.to_string();
                    for job in batch {
                        // Not run: answer with the error without touching the connection.
                        drop(job);
                        tracing::error!(error = %msg, "SQLite BEGIN failed");
                    }
                    continue;
                }
                let finishers: Vec<Finisher> = batch.into_iter().map(|job| job(&conn)).collect();
                let commit_err = conn.execute_batch("COMMIT").err().map(|e| {
                    let _ = conn.execute_batch("ROLLBACK");
                    e.to_string()
                });
                for f in finishers {
                    f(commit_err.clone());
                }
            }
        })
        .expect("spawn SQLite writer thread");
    tx
}

fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<(String, String)>> {
    let mut st = conn.prepare(
        "SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )?;
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
}

fn migrate_conn(conn: &Connection) -> StoreResult<Vec<String>> {
    let current: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(map_err)?;
    let mut applied = Vec::new();
    for (i, (name, sql)) in schema::MIGRATIONS.iter().enumerate() {
        let version = i as i64 + 1;
        if version <= current {
            continue;
        }
        conn.execute_batch(sql).map_err(map_err)?;
        // The index is refilled from the stored transcripts by the last
        // migration that rebuilds it (0012, which adds the token counts the
        // refill writes; earlier refills wrote what later ones replaced, so
        // a database upgraded past several is filled once).
        if *name == schema::TRANSCRIPT_TOKEN_ROWS {
            transcripts::fill_fts(conn)?;
        }
        conn.pragma_update(None, "user_version", version).map_err(map_err)?;
        applied.push(format!("sqlite migration {name}"));
    }
    Ok(applied)
}

#[async_trait]
impl Storage for SqliteStore {
    fn backend_name(&self) -> &'static str {
        "sqlite"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            transactions: true,
            schema_validation: true,
            schema_introspection: true,
            dates_in_updates: true,
            rollup_aggregation: true,
            notes: vec![],
        }
    }

    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(map_err)).await
    }

    async fn maintain_search_index(&self, pages: u32) -> StoreResult<bool> {
        let pages = i64::from(pages.max(1));
        self.write(move |conn| transcripts::merge_fts(conn, pages)).await
    }

    async fn migrate(&self) -> StoreResult<MigrationReport> {
        // Runs on the writer: one transaction, so a failed migration leaves nothing behind.
        let applied = self.write(migrate_conn).await?;
        Ok(MigrationReport { applied })
    }

    /// Replay check, merge and event in one transaction: one trip to the
    /// writer and one commit per webhook (shared with concurrent webhooks).
    async fn record_webhook(&self, update: &CallUpdate, event: NewEvent) -> StoreResult<WebhookOutcome> {
        require_key(update)?;
        let update = update.clone();
        self.write(move |conn| {
            let seen = conn
                .prepare_cached("SELECT 1 FROM call_events WHERE dedupe_key = ?1")
                .and_then(|mut st| st.exists([&event.dedupe_key]))
                .map_err(map_err)?;
            if seen {
                return Ok(WebhookOutcome::Replay);
            }
            let outcome = upsert_in_tx(conn, &update)?;
            if insert_event_in_tx(conn, &event.for_call(outcome.call.id.clone()))? {
                Ok(WebhookOutcome::Applied(Box::new(outcome)))
            } else {
                Ok(WebhookOutcome::Replay)
            }
        })
        .await
    }

    async fn check_schema(&self) -> StoreResult<Vec<Drift>> {
        let live = self.read(|conn| schema_objects(conn).map_err(map_err)).await?;
        let scratch = Connection::open_in_memory().map_err(map_err)?;
        migrate_conn(&scratch)?;
        let want = schema_objects(&scratch).map_err(map_err)?;
        let mut drift = Vec::new();
        for (name, sql) in &want {
            match live.iter().find(|(n, _)| n == name) {
                None => drift.push(Drift { object: name.clone(), detail: "missing".into() }),
                Some((_, live_sql)) if live_sql != sql => {
                    drift.push(Drift { object: name.clone(), detail: "definition differs from the migrations".into() })
                }
                _ => {}
            }
        }
        for (name, _) in &live {
            if !want.iter().any(|(n, _)| n == name) {
                drift.push(Drift { object: name.clone(), detail: "not created by any migration".into() });
            }
        }
        Ok(drift)
    }
}
