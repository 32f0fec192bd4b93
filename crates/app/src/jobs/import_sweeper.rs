//! Undoes imports whose writer died: every 30 s (and once at start) the
//! journal's stale `running` imports are rolled back
//! ([`crate::import::sweep_stale_imports`]). A leased job (`import_sweeper`,
//! [`super::runner`]): one instance sweeps at a time; the sweep is also
//! idempotent, so a run cut short by a lost lease is simply repeated.

use std::sync::Arc;

use switchboard_storage::Storage;
use tokio::sync::watch;

use super::runner::{Runner, Schedule};

/// Lease name of the job.
pub const NAME: &str = "import_sweeper";

/// Runs the sweep every `every` until `stop` turns true.
pub async fn run(
    store: Arc<dyn Storage>,
    runner: Runner,
    stale_after: chrono::Duration,
    every: std::time::Duration,
    stop: watch::Receiver<bool>,
) {
    let schedule = Schedule {
        name: NAME.into(),
        every: chrono::Duration::from_std(every).unwrap_or(chrono::Duration::seconds(30)),
        lease: chrono::Duration::seconds(60),
    };
    runner
        .run_every(schedule, every, stop, |_lease| {
            let store = store.clone();
            async move {
                let swept =
                    crate::import::sweep_stale_imports(&*store, stale_after, switchboard_domain::time::now_ms())
                        .await?;
                Ok(swept)
            }
        })
        .await;
}
