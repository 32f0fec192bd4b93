//! Job leases (`job_leases`): how background work stays safe with any number
//! of instances on one store.
//!
//! A lease is a named row/document. [`JobStore::acquire_lease`] grants it to
//! one owner until a deadline, atomically: of several instances asking at
//! once exactly one gets it, and the others get `None`. Every grant
//! increments the lease's **fence** (a fencing token), so a holder that
//! stalled past its deadline and lost the lease cannot renew or finish it,
//! and writes guarded by the fence are refused.
//!
//! A lease never waits forever: when its holder dies, the deadline passes
//! and the next `acquire_lease` takes it over. The same record keeps the
//! job's visible state — last start and finish, last error, run and failure
//! counts, next run — which `GET /api/v1/jobs` and `/metrics` show.
//!
//! Names are free-form: one per singleton job (`import_sweeper`), or one per
//! unit of work (`sheets:lnk_…` leases one Sheets link).

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::StoreResult;

/// The longest lease name.
pub const MAX_LEASE_NAME: usize = 128;

/// A granted lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    /// The lease (job) name.
    pub name: String,
    /// Who holds it (an instance id).
    pub owner: String,
    /// Fencing token of this grant: grows by one with every grant.
    pub fence: i64,
    /// When the lease lapses unless renewed.
    pub expires_at: DateTime<Utc>,
}

/// What a finished run reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// When the run ended.
    pub finished_at: DateTime<Utc>,
    /// Why it failed (None: it succeeded).
    pub error: Option<String>,
    /// When the job should run next (None: whenever asked).
    pub next_run_at: Option<DateTime<Utc>>,
}

/// A job's visible state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JobState {
    /// Lease (job) name.
    pub name: String,
    /// Current holder, while a lease is held (it may have expired: compare `lease_expires_at`).
    pub owner: Option<String>,
    /// Fencing token of the latest grant.
    pub fence: i64,
    /// Deadline of the current lease.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the latest run started.
    pub last_started_at: Option<DateTime<Utc>>,
    /// When the latest run finished.
    pub last_finished_at: Option<DateTime<Utc>>,
    /// The latest run's error (None after a success).
    pub last_error: Option<String>,
    /// When the next run is due.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Finished runs.
    pub runs: i64,
    /// Finished runs that failed.
    pub failures: i64,
}

/// Leases and job state.
#[async_trait]
pub trait JobStore: Send + Sync {
    /// Grants the lease `name` to `owner` until `now + ttl` when nobody holds
    /// it or the holder's lease lapsed (`expires_at <= now`) and, with
    /// `due_only`, the job's `next_run_at` is unset or `<= now`. Creates the
    /// record on first use. Atomic: concurrent callers get at most one grant.
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        due_only: bool,
    ) -> StoreResult<Option<Lease>>;
    /// Extends a lease still held under the same grant (owner and fence);
    /// `None` when it was lost (taken over or finished).
    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> StoreResult<Option<Lease>>;
    /// Releases a lease still held under the same grant and records the run;
    /// `false` (and nothing written) when the lease was lost.
    async fn finish_lease(&self, lease: &Lease, report: &RunReport) -> StoreResult<bool>;
    /// One job's state.
    async fn get_job(&self, name: &str) -> StoreResult<Option<JobState>>;
    /// Every job's state, by name.
    async fn list_jobs(&self) -> StoreResult<Vec<JobState>>;
}

/// Checks a lease name (both backends call it before writing).
pub fn check_lease_name(name: &str) -> StoreResult<()> {
    if name.is_empty() || name.len() > MAX_LEASE_NAME || name.chars().any(char::is_control) {
        return Err(crate::StoreError::Invalid(format!(
            "lease name must be 1..={MAX_LEASE_NAME} bytes without control characters"
        )));
    }
    Ok(())
}
