//! Job leases on SQLite (`job_leases`, migration 0005): each grant is one
//! `INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING` on the writer thread,
//! so it is atomic between tasks and, under `BEGIN IMMEDIATE`, between
//! processes sharing the file.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use rusqlite::{OptionalExtension, Row, params};
use switchboard_domain::time::from_millis;
use switchboard_storage::jobs::check_lease_name;
use switchboard_storage::{JobState, JobStore, Lease, RunReport, StoreResult};

use crate::SqliteStore;
use crate::rows::map_err;

const JOB_COLUMNS: &str =
    "name, owner, fence, lease_expires_at, last_started_at, last_finished_at, last_error, next_run_at, runs, failures";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<JobState> {
    let at = |i: usize| r.get::<_, Option<i64>>(i).map(|v| v.map(from_millis));
    Ok(JobState {
        name: r.get(0)?,
        owner: r.get(1)?,
        fence: r.get(2)?,
        lease_expires_at: at(3)?,
        last_started_at: at(4)?,
        last_finished_at: at(5)?,
        last_error: r.get(6)?,
        next_run_at: at(7)?,
        runs: r.get(8)?,
        failures: r.get(9)?,
    })
}

#[async_trait]
impl JobStore for SqliteStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        due_only: bool,
    ) -> StoreResult<Option<Lease>> {
        check_lease_name(name)?;
        let (name, owner) = (name.to_owned(), owner.to_owned());
        let until = now + ttl;
        self.write(move |conn| {
            let fence: Option<i64> = conn
                .prepare_cached(
                    "INSERT INTO job_leases (name, owner, fence, lease_expires_at, last_started_at) \
                     VALUES (?1, ?2, 1, ?3, ?4) \
                     ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, fence = fence + 1, \
                       lease_expires_at = excluded.lease_expires_at, last_started_at = excluded.last_started_at \
                     WHERE (lease_expires_at IS NULL OR lease_expires_at <= ?4) \
                       AND (?5 = 0 OR next_run_at IS NULL OR next_run_at <= ?4) \
                     RETURNING fence",
                )
                .and_then(|mut st| {
                    st.query_row(
                        params![name, owner, until.timestamp_millis(), now.timestamp_millis(), due_only],
                        |r| r.get(0),
                    )
                    .optional()
                })
                .map_err(map_err)?;
            Ok(fence.map(|fence| Lease { name, owner, fence, expires_at: until }))
        })
        .await
    }

    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> StoreResult<Option<Lease>> {
        let mut renewed = lease.clone();
        renewed.expires_at = now + ttl;
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE job_leases SET lease_expires_at = ?4 WHERE name = ?1 AND owner = ?2 AND fence = ?3",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        renewed.name,
                        renewed.owner,
                        renewed.fence,
                        renewed.expires_at.timestamp_millis()
                    ])
                })
                .map_err(map_err)?;
            Ok((n == 1).then_some(renewed))
        })
        .await
    }

    async fn finish_lease(&self, lease: &Lease, report: &RunReport) -> StoreResult<bool> {
        let (l, r) = (lease.clone(), report.clone());
        self.write(move |conn| {
            let n = conn
                .prepare_cached(
                    "UPDATE job_leases SET owner = NULL, lease_expires_at = NULL, last_finished_at = ?4, \
                       last_error = ?5, next_run_at = ?6, runs = runs + 1, failures = failures + ?7 \
                     WHERE name = ?1 AND owner = ?2 AND fence = ?3",
                )
                .and_then(|mut st| {
                    st.execute(params![
                        l.name,
                        l.owner,
                        l.fence,
                        r.finished_at.timestamp_millis(),
                        r.error,
                        r.next_run_at.map(|t| t.timestamp_millis()),
                        i64::from(r.error.is_some()),
                    ])
                })
                .map_err(map_err)?;
            Ok(n == 1)
        })
        .await
    }

    async fn get_job(&self, name: &str) -> StoreResult<Option<JobState>> {
        let name = name.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM job_leases WHERE name = ?1"))
                .and_then(|mut st| st.query_row([name], job_from_row).optional())
                .map_err(map_err)
        })
        .await
    }

    async fn list_jobs(&self) -> StoreResult<Vec<JobState>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {JOB_COLUMNS} FROM job_leases ORDER BY name"))
                .and_then(|mut st| st.query_map([], job_from_row)?.collect())
                .map_err(map_err)
        })
        .await
    }
}
