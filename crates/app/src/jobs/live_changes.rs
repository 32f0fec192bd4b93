//! The live feed's change-stream source (`[live] source = "change_stream"`,
//! MongoDB replica sets): one leased watcher follows every committed change
//! to calls and enrollments — ours or any other program's — reads the
//! record and publishes it (`call.updated`, `campaign.progress`). The token
//! of the last change handled is saved (at most every [`SAVE_EVERY`], and
//! when the watcher stops), so a restarted or replacement watcher resumes
//! after it: a change committed while no watcher ran is published when one
//! runs again. A crash between publishing and saving republishes a few
//! changes (at least once: clients see the same record version again).
//!
//! The record is read when its change is handled, so changes in quick
//! succession may be published as one event carrying the latest version
//! (a version already published is not published again): the feed tells
//! clients the current state, never a state older than one they were sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_storage::{Changed, Storage, StoreError};
use tokio::sync::watch;

use crate::live::LiveFeed;

/// Lease and token name.
pub const NAME: &str = "live_changes";

/// Longest time between token saves while changes flow.
pub const SAVE_EVERY: Duration = Duration::from_millis(250);

/// Follows the change feed until `stop`, an error, or the end of the
/// server's stream; returns how many changes it published.
pub async fn follow(store: Arc<dyn Storage>, live: LiveFeed, mut stop: watch::Receiver<bool>) -> anyhow::Result<u64> {
    let after = store.change_token(NAME).await?;
    let Some(mut changes) = store.watch_changes(after).await? else {
        anyhow::bail!("the store has no change feed (SQLite, or a MongoDB server that is not a replica set)");
    };
    tracing::info!("live feed following the store's change stream");
    let mut published = 0u64;
    // Versions published, per record (bounded: cleared when large; a clear only risks a repeat).
    let mut sent: std::collections::HashMap<String, i64> = std::collections::HashMap::new();
    let mut unsaved: Option<String> = None;
    let mut saved_at = Instant::now();
    let result = loop {
        let next = tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break Ok(published);
                }
                continue;
            }
            next = tokio::time::timeout(SAVE_EVERY, changes.next()) => next,
        };
        match next {
            Err(_) => {} // quiet: save what is pending
            Ok(None) => break Err(anyhow::anyhow!("the change stream ended")),
            Ok(Some(Err(e))) => break Err(e.into()),
            Ok(Some(Ok(change))) => {
                if sent.len() > 50_000 {
                    sent.clear();
                }
                let mut fresh = |key: String, version: i64| match sent.get(&key) {
                    Some(v) if *v >= version => false,
                    _ => {
                        sent.insert(key, version);
                        true
                    }
                };
                match &change.what {
                    Changed::Call(id) => match store.get_call(id).await {
                        Ok(call) => {
                            if fresh(call.id.to_string(), call.version) {
                                live.call_updated(&call).await;
                                published += 1;
                            }
                        }
                        Err(StoreError::NotFound(_)) => {} // merged away since
                        Err(e) => break Err(e.into()),
                    },
                    Changed::Enrollment(id) => match store.get_enrollment(id).await {
                        Ok(Some(e)) => {
                            if fresh(e.id.to_string(), e.version) {
                                live.enrollment_updated(&e).await;
                                published += 1;
                            }
                        }
                        Ok(None) => {}
                        Err(e) => break Err(e.into()),
                    },
                }
                unsaved = Some(change.token);
            }
        }
        if saved_at.elapsed() >= SAVE_EVERY
            && let Some(token) = unsaved.take()
        {
            store.save_change_token(NAME, &token).await?;
            saved_at = Instant::now();
        }
    };
    if let Some(token) = unsaved {
        store.save_change_token(NAME, &token).await?;
    }
    result
}
