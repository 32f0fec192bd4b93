//! Job leases on MongoDB (`job_leases`, `_id` = the lease name).
//!
//! A grant is one `findOneAndUpdate` with `upsert`: the filter matches the
//! lease only when it is free or lapsed (and, with `due_only`, due); when it
//! matches nothing because someone else holds it, the upsert's insert hits
//! the `_id` unique index (E11000), which means "not granted". So of any
//! number of racing instances exactly one wins, with no transaction.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{FindOptions, ReturnDocument};
use switchboard_storage::jobs::check_lease_name;
use switchboard_storage::{JobState, JobStore, Lease, RunReport, StoreError, StoreResult};

use crate::campaigns::ms;
use crate::schema::JOB_LEASES;
use crate::{MongoStore, is_code, map_err};

impl MongoStore {
    fn job_leases(&self) -> mongodb::Collection<Document> {
        self.db.collection(JOB_LEASES)
    }
}

fn job_from(d: Document) -> StoreResult<JobState> {
    let bad = |f: &str| StoreError::Other(anyhow::anyhow!("job_leases document has a bad `{f}`"));
    let at = |f: &str| match d.get(f) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::DateTime(t)) => Ok(DateTime::<Utc>::from_timestamp_millis(t.timestamp_millis())),
        Some(_) => Err(bad(f)),
    };
    let text = |f: &str| match d.get(f) {
        None | Some(Bson::Null) => Ok(None),
        Some(Bson::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(f)),
    };
    let int = |f: &str| match d.get(f) {
        None => Ok(0),
        Some(Bson::Int32(n)) => Ok(i64::from(*n)),
        Some(Bson::Int64(n)) => Ok(*n),
        Some(_) => Err(bad(f)),
    };
    Ok(JobState {
        name: text("_id")?.ok_or_else(|| bad("_id"))?,
        owner: text("owner")?,
        fence: int("fence")?,
        lease_expires_at: at("lease_expires_at")?,
        last_started_at: at("last_started_at")?,
        last_finished_at: at("last_finished_at")?,
        last_error: text("last_error")?,
        next_run_at: at("next_run_at")?,
        runs: int("runs")?,
        failures: int("failures")?,
    })
}

#[async_trait]
impl JobStore for MongoStore {
    async fn acquire_lease(
        &self,
        name: &str,
        owner: &str,
        now: DateTime<Utc>,
        ttl: Duration,
        due_only: bool,
    ) -> StoreResult<Option<Lease>> {
        check_lease_name(name)?;
        let until = now + ttl;
        let mut filter = doc! {
            "_id": name,
            "$or": [{ "lease_expires_at": null }, { "lease_expires_at": { "$lte": ms(now) } }],
        };
        if due_only {
            filter.insert(
                "$and",
                vec![doc! { "$or": [{ "next_run_at": null }, { "next_run_at": { "$lte": ms(now) } }] }],
            );
        }
        let update = doc! {
            "$set": { "owner": owner, "lease_expires_at": ms(until), "last_started_at": ms(now) },
            "$inc": { "fence": 1_i64 },
            "$setOnInsert": { "runs": 0_i64, "failures": 0_i64 },
        };
        let r = self
            .job_leases()
            .find_one_and_update(filter, update)
            .upsert(true)
            .return_document(ReturnDocument::After)
            .await;
        match r {
            Ok(Some(d)) => {
                let fence = job_from(d)?.fence;
                Ok(Some(Lease { name: name.to_owned(), owner: owner.to_owned(), fence, expires_at: until }))
            }
            Ok(None) => Ok(None),
            // Held by someone else: the upsert's insert collided with the existing `_id`.
            Err(e) if is_code(&e, 11000) => Ok(None),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn renew_lease(&self, lease: &Lease, now: DateTime<Utc>, ttl: Duration) -> StoreResult<Option<Lease>> {
        let mut renewed = lease.clone();
        renewed.expires_at = now + ttl;
        let r = self
            .job_leases()
            .update_one(
                doc! { "_id": &lease.name, "owner": &lease.owner, "fence": lease.fence },
                doc! { "$set": { "lease_expires_at": ms(renewed.expires_at) } },
            )
            .await
            .map_err(map_err)?;
        Ok((r.matched_count == 1).then_some(renewed))
    }

    async fn finish_lease(&self, lease: &Lease, report: &RunReport) -> StoreResult<bool> {
        let r = self
            .job_leases()
            .update_one(
                doc! { "_id": &lease.name, "owner": &lease.owner, "fence": lease.fence },
                doc! {
                    "$set": {
                        "owner": Bson::Null,
                        "lease_expires_at": Bson::Null,
                        "last_finished_at": ms(report.finished_at),
                        "last_error": report.error.clone().map_or(Bson::Null, Bson::String),
                        "next_run_at": report.next_run_at.map_or(Bson::Null, |t| Bson::DateTime(ms(t))),
                    },
                    "$inc": { "runs": 1_i64, "failures": i64::from(report.error.is_some()) },
                },
            )
            .await
            .map_err(map_err)?;
        Ok(r.matched_count == 1)
    }

    async fn get_job(&self, name: &str) -> StoreResult<Option<JobState>> {
        self.job_leases().find_one(doc! { "_id": name }).await.map_err(map_err)?.map(job_from).transpose()
    }

    async fn list_jobs(&self) -> StoreResult<Vec<JobState>> {
        let opts = FindOptions::builder().sort(doc! { "_id": 1 }).build();
        let docs: Vec<Document> = self
            .job_leases()
            .find(doc! {})
            .with_options(opts)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(job_from).collect()
    }
}
