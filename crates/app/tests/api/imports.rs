//! Imports that fail or die part-way leave the store exactly as it was:
//! inserted contacts removed, overwritten ones restored, in every duplicate
//! mode; a killed import is undone by the sweeper once its heartbeat is stale.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use chrono::Duration;
use switchboard::import::{ImportOptions, import_file, sweep_stale_imports};
use switchboard_domain::time::now_ms;
use switchboard_domain::{Contact, ContactInput};
use switchboard_storage::{ContactFilter, ContactSort, OnDuplicate, PageRequest, Storage, StoreError, StoreResult};

/// `insert_contacts` calls left before the fault; negative: no fault.
static CALLS_LEFT: AtomicI64 = AtomicI64::new(-1);
/// Hang (a killed process) instead of failing.
static HANG: AtomicBool = AtomicBool::new(false);
/// Set when the hang is reached.
static HUNG: AtomicBool = AtomicBool::new(false);
/// These tests share the statics above: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn faulty<T>(op: &'static str, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    if op == "insert_contacts"
        && CALLS_LEFT.load(Ordering::SeqCst) >= 0
        && CALLS_LEFT.fetch_sub(1, Ordering::SeqCst) == 0
    {
        if HANG.load(Ordering::SeqCst) {
            HUNG.store(true, Ordering::SeqCst);
            std::future::pending::<()>().await;
        }
        return Err(StoreError::Unavailable("injected failure of a batch".into()));
    }
    fut.await
}

/// A store whose N-th contact batch fails (or hangs forever).
struct Faulty {
    inner: Arc<dyn Storage>,
}

impl Faulty {
    async fn around<T>(&self, op: &'static str, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
        faulty(op, fut).await
    }
}

switchboard_storage::decorate_storage!(Faulty, inner, around);

async fn fresh_store(dir: &std::path::Path) -> Arc<dyn Storage> {
    let s = crate::helpers::settings(dir, 0);
    let inner = switchboard::store::open(&s).await.unwrap();
    inner.migrate().await.unwrap();
    Arc::new(Faulty { inner })
}

fn phone(i: u32) -> String {
    format!("+1415{:07}", 4_000_000 + i)
}

/// Every contact, by id, without the CAS counter (an undo is a write).
async fn snapshot(store: &dyn Storage) -> Vec<Contact> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let p = store.list_contacts(&ContactFilter::default(), ContactSort::CreatedAsc, &page).await.unwrap();
        out.extend(p.items.into_iter().map(|mut c| {
            c.version = 0;
            c
        }));
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    out.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    out
}

/// 1,500 stored contacts, and a 3,000-row file: with `overlap`, its first
/// 1,000 rows are stored phones with new names; otherwise all new.
async fn arrange(store: &dyn Storage, dir: &std::path::Path, overlap: bool) -> std::path::PathBuf {
    let now = now_ms();
    for i in 0..1500 {
        let c = ContactInput {
            phone: Some(phone(i)),
            name: Some(format!("Old {i}")),
            source: Some("seed".into()),
            ..Default::default()
        }
        .validate("US", now)
        .unwrap();
        store.insert_contact(&c).await.unwrap();
    }
    let start = if overlap { 500 } else { 10_000 };
    let mut csv = String::from("phone,name\n");
    for i in start..start + 3000 {
        csv.push_str(&format!("{},New {i}\n", phone(i)));
    }
    let path = dir.join("import.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn arm(calls_before_fault: i64, hang: bool) {
    HANG.store(hang, Ordering::SeqCst);
    HUNG.store(false, Ordering::SeqCst);
    CALLS_LEFT.store(calls_before_fault, Ordering::SeqCst);
}

#[tokio::test]
async fn a_batch_failing_mid_import_leaves_the_store_as_it_was_in_every_mode() {
    let _one = SERIAL.lock().await;
    for (mode, overlap) in [(OnDuplicate::Update, true), (OnDuplicate::Skip, true), (OnDuplicate::Fail, false)] {
        let dir = tempfile::tempdir().unwrap();
        let store = fresh_store(dir.path()).await;
        let file = arrange(&*store, dir.path(), overlap).await;
        let before = snapshot(&*store).await;
        // The second batch of 1,000 fails, after the first was written.
        arm(1, false);
        let opts = ImportOptions { on_duplicate: mode, ..ImportOptions::default() };
        let err = import_file(store.clone(), &file, opts, None).await.unwrap_err();
        arm(-1, false);
        assert!(err.to_string().contains("injected"), "{mode:?}: {err}");
        let after = snapshot(&*store).await;
        assert_eq!(after.len(), before.len(), "{mode:?}: inserted contacts removed");
        assert!(after == before, "{mode:?}: every contact as it was (names, sources, timestamps)");
        assert!(
            store.stale_imports(now_ms() + Duration::days(1)).await.unwrap().is_empty(),
            "{mode:?}: journal closed"
        );
    }
}

#[tokio::test]
async fn an_import_killed_mid_write_is_undone_by_the_sweeper() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let store = fresh_store(dir.path()).await;
    let file = arrange(&*store, dir.path(), true).await;
    let before = snapshot(&*store).await;
    arm(1, true);
    let opts = ImportOptions { on_duplicate: OnDuplicate::Update, ..ImportOptions::default() };
    let task = tokio::spawn({
        let store = store.clone();
        async move { import_file(store, &file, opts, None).await }
    });
    for _ in 0..600 {
        if HUNG.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(HUNG.load(Ordering::SeqCst), "the import reached its second batch");
    // The process dies here: nothing of the import's code runs again.
    task.abort();
    let _ = task.await;
    arm(-1, false);
    let half = snapshot(&*store).await;
    assert_ne!(half, before, "the first batch was written (overwrites and inserts)");
    // Within its stale period the journal is left alone (the writer may be alive).
    assert_eq!(sweep_stale_imports(&*store, Duration::seconds(60), now_ms()).await.unwrap(), 0);
    // Past it, the sweeper (any instance's `serve`) undoes it.
    let later = now_ms() + Duration::seconds(61);
    assert_eq!(sweep_stale_imports(&*store, Duration::seconds(60), later).await.unwrap(), 1);
    assert!(snapshot(&*store).await == before, "the store is as before the import");
    assert_eq!(sweep_stale_imports(&*store, Duration::seconds(60), later).await.unwrap(), 0, "undone once");
}
