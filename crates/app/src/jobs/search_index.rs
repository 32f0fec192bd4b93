//! Search-index upkeep (`search_index`, leased; every 60 s in `serve`,
//! `[search_index]` settings).
//!
//! On SQLite every transcript write adds an FTS5 segment and every lookup
//! visits each segment: FTS5's own automerge (on writes) keeps a dozen or more
//! of them at 100,000 transcripts, and a newest-first search, which probes
//! transcripts one by one, pays for each (14 of 14 bench rows within target
//! with 4 segments, 12 with 16: README, analysis suite). The job merges them
//! in small steps (`Storage::maintain_search_index`, ~`PAGES_PER_STEP` pages,
//! one short write each, so webhooks interleave) until there is nothing left
//! to merge or `MAX_STEPS` steps ran. MongoDB's text index needs no upkeep
//! (the default does nothing).
//!
//! Nothing here holds state between steps: a crash mid-run leaves a merged
//! index part way, which the next run (after the lease lapses) continues.

use std::time::Duration;

use switchboard_storage::{Storage, StoreResult};

/// Lease name of the job.
pub const NAME: &str = "search_index";
/// Pages merged per step by default (one write; ~20 ms at 100,000
/// transcripts; `search_index.pages_per_step`).
pub const PAGES_PER_STEP: u32 = 200;
/// Most steps one run takes (the next run goes on).
pub const MAX_STEPS: u32 = 5_000;

/// Merges, `pages` per step and `pause` between steps, until there is
/// nothing to merge or `max_steps` steps ran; the number of steps that did
/// work.
pub async fn compact(store: &dyn Storage, max_steps: u32, pages: u32, pause: Duration) -> StoreResult<u32> {
    let mut steps = 0;
    while steps < max_steps && store.maintain_search_index(pages).await? {
        steps += 1;
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_storage::{PageRequest, SearchOrder, TextQuery, TranscriptFilter, TranscriptStore};
    use switchboard_storage_sqlite::SqliteStore;

    /// Many small writes leave segments to merge; a run merges them, the
    /// next finds nothing, and search finds the same transcripts.
    #[tokio::test]
    async fn a_run_merges_what_writes_left_and_search_is_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("s.db"), Default::default()).unwrap();
        store.migrate().await.unwrap();
        for k in 0..400 {
            let mut t = crate::conversations::transcript_from(&serde_json::json!({
                "conversation_id": format!("conv_{k}"), "agent_id": "agent_1", "status": "done",
                "transcript": [{"role": "user", "message": format!("refund number {k} please"), "time_in_call_secs": 1}],
                "metadata": {"start_time_unix_secs": 1_764_000_000 + k},
            }))
            .unwrap();
            t.summary = Some(if k % 2 == 0 { "even refund".into() } else { "odd".into() });
            store.upsert_transcript(&t).await.unwrap();
        }
        let search = || async {
            let q = TextQuery::parse("refund even").unwrap();
            let page = PageRequest { limit: 200, ..Default::default() };
            let hits = store.search_transcripts(&q, &TranscriptFilter::default(), SearchOrder::Newest, &page).await;
            let mut ids: Vec<String> = hits.unwrap().items.into_iter().map(|h| h.transcript.id.to_string()).collect();
            ids.sort();
            ids
        };
        let before = search().await;
        assert_eq!(before.len(), 200);
        let steps = compact(&store, MAX_STEPS, PAGES_PER_STEP, Duration::ZERO).await.unwrap();
        assert!(steps > 0, "400 single-transcript writes leave segments to merge");
        assert_eq!(compact(&store, MAX_STEPS, PAGES_PER_STEP, Duration::ZERO).await.unwrap(), 0, "nothing left");
        assert_eq!(search().await, before);
        // A budget stops a run part way; the next goes on.
        assert_eq!(compact(&store, 0, PAGES_PER_STEP, Duration::ZERO).await.unwrap(), 0);
    }
}
