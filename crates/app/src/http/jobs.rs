//! `GET /api/v1/jobs`: the state of every leased background job (who holds
//! it, last run, last error, next run), read from the store, so it shows
//! every instance's runs.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use switchboard_storage::JobState;
use utoipa::ToSchema;

use crate::AppState;
use crate::error::ApiError;

/// One job's state.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobOut {
    /// Job (lease) name: `import_sweeper`, `sheets:lnk_…`.
    pub name: String,
    /// Whether an instance holds the lease now (the job is running).
    pub running: bool,
    /// The instance holding the lease, while it runs.
    pub owner: Option<String>,
    /// When the current lease lapses unless renewed.
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// When the latest run started.
    pub last_started_at: Option<DateTime<Utc>>,
    /// When the latest run finished.
    pub last_finished_at: Option<DateTime<Utc>>,
    /// The latest run's error; `null` after a success.
    pub last_error: Option<String>,
    /// When the next run is due.
    pub next_run_at: Option<DateTime<Utc>>,
    /// Finished runs.
    pub runs: i64,
    /// Finished runs that failed.
    pub failures: i64,
}

impl JobOut {
    fn from_state(j: JobState, now: DateTime<Utc>) -> JobOut {
        let running = j.lease_expires_at.is_some_and(|t| t > now);
        JobOut {
            name: j.name,
            running,
            owner: j.owner.filter(|_| running),
            lease_expires_at: j.lease_expires_at.filter(|_| running),
            last_started_at: j.last_started_at,
            last_finished_at: j.last_finished_at,
            last_error: j.last_error,
            next_run_at: j.next_run_at,
            runs: j.runs,
            failures: j.failures,
        }
    }
}

/// Every job.
#[derive(Debug, Serialize, ToSchema)]
pub struct JobList {
    /// Jobs by name.
    pub data: Vec<JobOut>,
}

/// List background jobs and their state.
#[utoipa::path(get, path = "/api/v1/jobs", tag = "jobs", operation_id = "list_jobs",
    responses((status = 200, description = "Every job that has run at least once", body = JobList)),
    security(("bearer" = [])))]
pub async fn list_jobs(State(state): State<AppState>) -> Result<Json<JobList>, ApiError> {
    let now = switchboard_domain::time::now_ms();
    let jobs = state.store.list_jobs().await?;
    Ok(Json(JobList { data: jobs.into_iter().map(|j| JobOut::from_state(j, now)).collect() }))
}

/// Routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/jobs", get(list_jobs))
}
