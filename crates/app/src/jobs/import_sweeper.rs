//! Undoes imports whose writer died: every 30 s (and once at start) the
//! journal's stale `running` imports are rolled back
//! ([`crate::import::sweep_stale_imports`]). Idempotent, so several instances
//! may sweep at once.

use std::sync::Arc;

use switchboard_storage::Storage;
use tokio::sync::watch;

/// Runs the sweep every `every` until `stop` turns true.
pub async fn run(
    store: Arc<dyn Storage>,
    stale_after: chrono::Duration,
    every: std::time::Duration,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    return;
                }
            }
            _ = tick.tick() => {
                if let Err(e) = crate::import::sweep_stale_imports(&*store, stale_after, switchboard_domain::time::now_ms()).await {
                    tracing::warn!(error = %e, "import sweep failed; retrying at the next tick");
                }
            }
        }
    }
}
