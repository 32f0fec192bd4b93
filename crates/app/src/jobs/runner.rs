//! The leased-job runner every singleton job shares: a run happens only
//! under a store lease ([`switchboard_storage::JobStore`]), so with any
//! number of instances each job (or each unit of a job, such as one Sheets
//! link) runs in one place at a time.
//!
//! - The lease is renewed every third of its lifetime while the work runs;
//!   if a renewal finds it lost (this instance stalled past the deadline and
//!   another took over), the work is dropped at its next await point and the
//!   run counts as `lost`. Work must therefore be idempotent per step, which
//!   every job here is (and writes that must not race carry the fence).
//! - A crashed holder's lease lapses at its deadline and the next instance
//!   takes over: nothing waits forever.
//! - Each run records start, finish, error and the next due time in the
//!   store (`GET /api/v1/jobs`), and counts in `/metrics`.

use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use switchboard_domain::time::now_ms;
use switchboard_storage::{Lease, RunReport, Storage, StoreResult};
use tokio::sync::watch;

use crate::metrics::{JOB_LAST_SUCCESS, JOB_RUNS};

/// How one job is scheduled.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Lease name (`import_sweeper`, `sheets:lnk_…`).
    pub name: String,
    /// Time between runs (from the start of one to the start of the next).
    pub every: Duration,
    /// Lease lifetime; renewed while the work runs.
    pub lease: Duration,
}

/// How a run went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome<T> {
    /// Another instance holds the lease, or the job is not due.
    Skipped,
    /// The work finished.
    Ran(T),
    /// The work failed (the error is recorded in the job state).
    Failed(String),
    /// The lease was lost mid-run; the work was dropped.
    Lost,
}

/// Runs jobs under leases for one instance (`owner`).
#[derive(Clone)]
pub struct Runner {
    store: Arc<dyn Storage>,
    owner: String,
    /// Where finished runs are announced (`job.status` in the `jobs` room).
    live: Option<crate::live::LiveFeed>,
}

impl Runner {
    /// A runner for this instance.
    pub fn new(store: Arc<dyn Storage>, owner: impl Into<String>) -> Runner {
        Runner { store, owner: owner.into(), live: None }
    }

    /// Announces every finished run on `live` (`job.status`, room `jobs`).
    pub fn with_live(mut self, live: crate::live::LiveFeed) -> Runner {
        self.live = Some(live);
        self
    }

    /// This instance's owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs `work` once under the lease of `schedule` if the lease is free
    /// and the job is due (or `force`: free is enough — "sync now").
    pub async fn run_once<T, F, Fut>(&self, schedule: &Schedule, force: bool, work: F) -> StoreResult<RunOutcome<T>>
    where
        F: FnOnce(Lease) -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let started = now_ms();
        let Some(lease) =
            self.store.acquire_lease(&schedule.name, &self.owner, started, schedule.lease, !force).await?
        else {
            return Ok(RunOutcome::Skipped);
        };
        let outcome = tokio::select! {
            r = work(lease.clone()) => match r {
                Ok(v) => RunOutcome::Ran(v),
                Err(e) => RunOutcome::Failed(format!("{e:#}")),
            },
            () = self.keep_alive(&lease, schedule.lease) => RunOutcome::Lost,
        };
        let kind = match &outcome {
            RunOutcome::Ran(_) => "ok",
            RunOutcome::Failed(_) => "error",
            RunOutcome::Lost => "lost",
            RunOutcome::Skipped => unreachable!("a run that took the lease is not skipped"),
        };
        metrics::counter!(JOB_RUNS, "job" => job_label(&schedule.name), "outcome" => kind).increment(1);
        if kind == "lost" {
            tracing::warn!(job = %schedule.name, "job lease lost mid-run; the work was dropped");
            return Ok(outcome);
        }
        let finished = now_ms();
        let error = match &outcome {
            RunOutcome::Failed(e) => {
                tracing::warn!(job = %schedule.name, error = %e, "job run failed");
                Some(e.clone())
            }
            _ => {
                metrics::gauge!(JOB_LAST_SUCCESS, "job" => job_label(&schedule.name)).set(finished.timestamp() as f64);
                None
            }
        };
        let report =
            RunReport { finished_at: finished, error, next_run_at: Some(next_run(started, finished, schedule.every)) };
        if !self.store.finish_lease(&lease, &report).await? {
            tracing::warn!(job = %schedule.name, "job lease lapsed before the run was recorded");
        }
        if let Some(live) = &self.live {
            let data = serde_json::json!({
                "name": schedule.name,
                "outcome": kind,
                "owner": self.owner,
                "started_at": started,
                "finished_at": report.finished_at,
                "error": report.error,
                "next_run_at": report.next_run_at,
            });
            live.publish("jobs", "job.status", data).await;
        }
        Ok(outcome)
    }

    /// Renews `lease` every third of `ttl`; returns when it is lost. A
    /// failed renewal (store down) is retried until the deadline passes.
    async fn keep_alive(&self, lease: &Lease, ttl: Duration) {
        let every =
            (ttl / 3).to_std().unwrap_or(std::time::Duration::from_secs(1)).max(std::time::Duration::from_millis(10));
        let mut deadline = lease.expires_at;
        loop {
            tokio::time::sleep(every).await;
            let now = now_ms();
            match self.store.renew_lease(lease, now, ttl).await {
                Ok(Some(l)) => deadline = l.expires_at,
                Ok(None) => return,
                Err(e) if now < deadline => {
                    tracing::warn!(job = %lease.name, error = %e, "lease renewal failed; retrying")
                }
                Err(_) => return,
            }
        }
    }

    /// Runs the job whenever it is due, checking every `poll`, until `stop`
    /// turns true. `work` builds a fresh future per run.
    pub async fn run_every<T, F, Fut>(
        &self,
        schedule: Schedule,
        poll: std::time::Duration,
        mut stop: watch::Receiver<bool>,
        work: F,
    ) where
        F: Fn(Lease) -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
                _ = tick.tick() => {
                    if let Err(e) = self.run_once(&schedule, false, &work).await {
                        tracing::warn!(job = %schedule.name, error = %e, "job lease unavailable; retrying at the next tick");
                    }
                }
            }
        }
    }
}

/// The next due time: one period after the start, but never in the past.
fn next_run(started: DateTime<Utc>, finished: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    (started + every).max(finished)
}

/// Metric label of a job: per-unit leases (`sheets:lnk_…`) collapse to their family (`sheets`).
fn job_label(name: &str) -> String {
    name.split(':').next().unwrap_or(name).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Arc<dyn Storage> {
        let s = switchboard_storage_sqlite::SqliteStore::open_in_memory().unwrap();
        s.migrate().await.unwrap();
        Arc::new(s)
    }

    fn sched(name: &str) -> Schedule {
        Schedule { name: name.into(), every: Duration::minutes(5), lease: Duration::seconds(30) }
    }

    #[tokio::test]
    async fn a_run_records_its_outcome_and_next_due_time() {
        let s = store().await;
        let r = Runner::new(s.clone(), "a");
        assert_eq!(r.run_once(&sched("j"), false, |_| async { Ok(7) }).await.unwrap(), RunOutcome::Ran(7));
        let st = s.get_job("j").await.unwrap().unwrap();
        assert_eq!((st.runs, st.failures, st.owner), (1, 0, None));
        let next = st.next_run_at.unwrap();
        assert!(next > now_ms() + Duration::minutes(4), "next run one period later: {next}");
        // Not due yet: skipped; forced: runs.
        assert_eq!(r.run_once(&sched("j"), false, |_| async { Ok(8) }).await.unwrap(), RunOutcome::Skipped);
        let failed =
            r.run_once(&sched("j"), true, |_| async { anyhow::bail!("sheet unshared") as anyhow::Result<()> }).await;
        assert_eq!(failed.unwrap(), RunOutcome::Failed("sheet unshared".into()));
        let st = s.get_job("j").await.unwrap().unwrap();
        assert_eq!((st.runs, st.failures, st.last_error.as_deref()), (2, 1, Some("sheet unshared")));
    }

    #[tokio::test]
    async fn a_held_lease_skips_other_instances() {
        let s = store().await;
        let (a, b) = (Runner::new(s.clone(), "a"), Runner::new(s.clone(), "b"));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let sc = sched("j");
        let held = a.run_once(&sc, false, |_| async move {
            let _ = rx.await;
            Ok(())
        });
        let other = async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let r = b.run_once(&sc, true, |_| async { Ok(()) }).await.unwrap();
            let _ = tx.send(());
            r
        };
        let (first, second) = tokio::join!(held, other);
        assert_eq!(first.unwrap(), RunOutcome::Ran(()));
        assert_eq!(second, RunOutcome::Skipped, "b must not run while a holds the lease");
    }

    #[tokio::test]
    async fn a_run_that_loses_its_lease_is_dropped() {
        let s = store().await;
        let r = Runner::new(s.clone(), "a");
        let sc = Schedule { name: "j".into(), every: Duration::minutes(5), lease: Duration::milliseconds(90) };
        let s2 = s.clone();
        let out = r
            .run_once(&sc, false, |lease| async move {
                // Another instance takes the lease over after it lapsed (simulating a stall).
                let later = lease.expires_at + Duration::milliseconds(1);
                s2.acquire_lease("j", "b", later, Duration::seconds(30), false).await?.expect("lapsed lease is free");
                std::future::pending::<()>().await;
                Ok(())
            })
            .await
            .unwrap();
        assert_eq!(out, RunOutcome::Lost);
        assert_eq!(s.get_job("j").await.unwrap().unwrap().owner.as_deref(), Some("b"));
    }
}
