//! Store-only contact write micro-benchmark: `insert_contacts` in batches of
//! 1,000 (as the importer writes), about 1.4 tags per contact.
//! `cargo run --release -p switchboard-storage-sqlite --example contacts_write_micro -- [N]`
//! `DROP_INDEXES=a,b` drops indexes after migrating (to price them).

use std::time::Instant;

use switchboard_domain::{ContactInput, time::now_ms};
use switchboard_storage::{ContactStore, OnDuplicate, Storage};
use switchboard_storage_sqlite::{SqliteOptions, SqliteStore};

#[tokio::main]
async fn main() {
    let n: u64 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let dir = std::env::temp_dir().join(format!("contacts-micro-{}", std::process::id()));
    let store = SqliteStore::open(dir.join("m.db"), SqliteOptions::default()).unwrap();
    store.migrate().await.unwrap();
    if let Ok(list) = std::env::var("DROP_INDEXES") {
        let c = rusqlite::Connection::open(dir.join("m.db")).unwrap();
        for ix in list.split(',').filter(|s| !s.is_empty()) {
            c.execute_batch(&format!("DROP INDEX {ix}")).unwrap();
        }
    }
    let names = ["Maria", "James", "John", "Mary", "Robert", "Patricia", "Michael", "Linda"];
    let start = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        let first = names[(i % 8) as usize];
        let mut tags = vec![format!("wave{}", i % 10)];
        if i % 5 == 0 {
            tags.push("spanish".into());
        }
        if i % 20 == 0 {
            tags.push("vip".into());
        }
        batch.push(
            ContactInput {
                phone: Some(format!("+1415{:07}", 2_000_000 + i)),
                name: Some(format!("{first} Smith")),
                email: Some(format!("{}.smith{i}@example.com", first.to_lowercase())),
                tags: Some(tags),
                do_not_call: Some(i % 33 == 0),
                ..Default::default()
            }
            .validate("US", now_ms())
            .unwrap(),
        );
        if batch.len() == 1000 || i + 1 == n {
            store.insert_contacts(&batch, OnDuplicate::Skip).await.unwrap();
            batch.clear();
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{n} contacts in {secs:.1} s: {:.0} contacts/s", n as f64 / secs);
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}
