//! Store-only ingest micro-benchmark: `record_webhook` throughput without HTTP.
//! `cargo run --release -p switchboard-storage-sqlite --example ingest_micro -- [N] [CONCURRENCY] [full|normal]`

use std::sync::Arc;
use std::time::Instant;

use switchboard_domain::{CallStatus, CallUpdate, EventId, Source, time::now_ms};
use switchboard_storage::{NewEvent, Storage};
use switchboard_storage_sqlite::{Durability, SqliteOptions, SqliteStore};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(40_000);
    let conc: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(32);
    let durability =
        if args.get(3).map(String::as_str) == Some("normal") { Durability::Normal } else { Durability::Full };
    let dir = std::env::temp_dir().join(format!("ingest-micro-{}", std::process::id()));
    let store =
        Arc::new(SqliteStore::open(dir.join("m.db"), SqliteOptions { durability, ..Default::default() }).unwrap());
    store.migrate().await.unwrap();
    if std::env::var("DROP_INDEXES").is_ok() {
        let c = rusqlite::Connection::open(dir.join("m.db")).unwrap();
        for ix in std::env::var("DROP_INDEXES").unwrap().split(',') {
            c.execute_batch(&format!("DROP INDEX {ix}")).unwrap();
        }
    }
    let statuses = [CallStatus::Initiated, CallStatus::Ringing, CallStatus::InProgress, CallStatus::Completed];
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..conc {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                let call = i / 4;
                let seq = (i % 4) as i64;
                let sid = format!("CA{call:032x}");
                let u = CallUpdate {
                    source: Some(Source::Twilio),
                    observed_at: Some(now_ms()),
                    call_sid: Some(sid.clone()),
                    sequence: Some(seq),
                    status: Some(statuses[i % 4]),
                    from: Some("+15005550001".into()),
                    to: Some("+15005550006".into()),
                    ..Default::default()
                };
                let e = NewEvent {
                    id: EventId::new(),
                    source: Source::Twilio,
                    event_type: "twilio.status".into(),
                    occurred_at: now_ms(),
                    received_at: now_ms(),
                    dedupe_key: format!("twilio:status:{sid}:{seq}"),
                    sequence: Some(seq),
                    payload: serde_json::json!({"CallSid": sid, "CallStatus": "ringing", "AccountSid": "AC00000000000000000000000000000001"}),
                };
                store.record_webhook(&u, e).await.unwrap();
                i += conc;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    println!("{n} webhooks in {secs:.2}s = {:.0}/s (concurrency {conc}, {durability:?})", n as f64 / secs);
    let _ = std::fs::remove_dir_all(dir);
}
