//! Enrollments on MongoDB: claims as one `findOneAndUpdate` on the `due`
//! index, compare-and-set replaces fenced by version, token and owner.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::options::{FindOneAndUpdateOptions, FindOptions, ReturnDocument};
use switchboard_domain::{CampaignId, ContactId, Enrollment, EnrollmentId, EnrollmentStatus};
use switchboard_storage::{
    CampaignStore, ContactStore, Cursor, EnrollmentStore, Page, PageRequest, StoreError, StoreResult,
};

use crate::docs::{and, keyset};
use crate::records::{enrollment_doc, enrollment_from};
use crate::{MongoStore, is_code, map_err};

use crate::campaigns::{IN_FLIGHT, WAITING, ms};

/// The claim: equality on campaign, `$in` on the waiting statuses, range on
/// `next_attempt_at`, sorted by it (the `due` index, ESR).
pub(crate) fn claim_filter(campaign_id: &str, now: DateTime<Utc>) -> Document {
    doc! { "campaign_id": campaign_id, "status": { "$in": WAITING.to_vec() }, "next_attempt_at": { "$lte": ms(now) } }
}

pub(crate) fn claim_sort() -> Document {
    doc! { "next_attempt_at": 1, "_id": 1 }
}

/// Lease recovery (the `leases` index).
pub(crate) fn expired_filter(now: DateTime<Utc>) -> Document {
    doc! { "status": "dialing", "lease.expires_at": { "$lt": ms(now) } }
}

pub(crate) fn expired_sort() -> Document {
    doc! { "lease.expires_at": 1 }
}

/// One contact's enrollment in one campaign (the `campaign_contact_uq` index).
pub(crate) fn enrollment_of(campaign_id: &str, contact_id: &str) -> Document {
    doc! { "campaign_id": campaign_id, "contact_id": contact_id }
}

/// The compare-and-set filter of a dialer's write: the version it read, the
/// fencing token of the claim it holds (every claim increments it, so a stale
/// holder's token never matches a newer holder's document) and, while the
/// written record names a lease holder, that holder as the stored
/// `lease.owner` (or no stored lease: a write may take a free enrollment, never
/// one another holder has). The dialer clears the lease when it places, hands
/// back or recovers an enrollment; the token still fences those writes.
pub(crate) fn enrollment_cas_filter(read: &Enrollment) -> Document {
    let mut f = doc! { "_id": read.id.as_str(), "version": read.version, "lease_token": read.lease_token };
    if let Some(lease) = &read.lease {
        f.insert("$or", vec![doc! { "lease": { "$exists": false } }, doc! { "lease.owner": lease.owner.as_str() }]);
    }
    f
}

async fn collect(cursor: mongodb::Cursor<Document>) -> StoreResult<Vec<Enrollment>> {
    let docs: Vec<Document> = cursor.try_collect().await.map_err(map_err)?;
    docs.into_iter().map(enrollment_from).collect()
}

#[async_trait]
impl EnrollmentStore for MongoStore {
    async fn enroll(&self, campaign_id: &CampaignId, contacts: &[ContactId], now: DateTime<Utc>) -> StoreResult<u64> {
        if self.get_campaign(campaign_id).await?.is_none() {
            return Err(StoreError::NotFound("campaign"));
        }
        let ids: Vec<&str> = contacts.iter().map(|c| c.as_str()).collect();
        let mut known = 0usize;
        for chunk in ids.chunks(1000) {
            known += self.contacts().count_documents(doc! { "_id": { "$in": chunk } }).await.map_err(map_err)? as usize;
        }
        if known != ids.len() {
            for c in contacts {
                if self.get_contact(c).await?.is_none() {
                    return Err(StoreError::Invalid(format!("contact {c} does not exist")));
                }
            }
        }
        let mut added = 0;
        for c in contacts {
            let e = Enrollment::new(campaign_id.clone(), c.clone(), now);
            match self.enrollments().insert_one(enrollment_doc(&e)?).await {
                Ok(_) => added += 1,
                Err(err) if is_code(&err, 11000) => {}
                Err(err) => return Err(map_err(err)),
            }
        }
        Ok(added)
    }

    async fn get_enrollment(&self, id: &EnrollmentId) -> StoreResult<Option<Enrollment>> {
        self.enrollments()
            .find_one(doc! { "_id": id.as_str() })
            .await
            .map_err(map_err)?
            .map(enrollment_from)
            .transpose()
    }

    async fn find_enrollment(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
    ) -> StoreResult<Option<Enrollment>> {
        self.enrollments()
            .find_one(enrollment_of(campaign_id.as_str(), contact_id.as_str()))
            .await
            .map_err(map_err)?
            .map(enrollment_from)
            .transpose()
    }

    async fn list_enrollments(
        &self,
        campaign_id: &CampaignId,
        statuses: &[EnrollmentStatus],
        page: &PageRequest,
    ) -> StoreResult<Page<Enrollment>> {
        const SORT: &str = "enrollments_created_asc";
        let cursor = page.cursor.as_deref().map(|c| Cursor::decode(c, SORT)).transpose()?;
        let limit = page.clamped_limit();
        let mut q = doc! { "campaign_id": campaign_id.as_str() };
        if !statuses.is_empty() {
            q.insert("status", doc! { "$in": statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>() });
        }
        if let Some(c) = cursor {
            q = and(q, keyset("created_at", "$gt", c.key, &c.id));
        }
        let opts = FindOptions::builder().sort(doc! { "created_at": 1, "_id": 1 }).limit(i64::from(limit) + 1).build();
        let items = collect(self.enrollments().find(q).with_options(opts).await.map_err(map_err)?).await?;
        Ok(Page::from_overfetch(items, limit, |e| Cursor {
            sort: SORT.into(),
            key: e.created_at.timestamp_millis(),
            id: e.id.to_string(),
        }))
    }

    async fn count_enrollments(&self, campaign_id: &CampaignId) -> StoreResult<Vec<(EnrollmentStatus, u64)>> {
        let mut out = Vec::new();
        // One count per status on the (campaign_id, status, …) index; a $group would scan the campaign.
        for s in EnrollmentStatus::ALL {
            let n = self
                .enrollments()
                .count_documents(doc! { "campaign_id": campaign_id.as_str(), "status": s.as_str() })
                .await
                .map_err(map_err)?;
            if n > 0 {
                out.push((*s, n));
            }
        }
        Ok(out)
    }

    async fn claim_enrollment(
        &self,
        campaign_id: &CampaignId,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Enrollment>> {
        let filter = claim_filter(campaign_id.as_str(), now);
        let update = doc! {
            "$set": { "status": "dialing", "lease": { "owner": owner, "expires_at": ms(lease_until) }, "updated_at": ms(now) },
            "$inc": { "lease_token": 1_i64, "version": 1_i64 },
        };
        let opts = FindOneAndUpdateOptions::builder().sort(claim_sort()).return_document(ReturnDocument::After).build();
        self.enrollments()
            .find_one_and_update(filter, update)
            .with_options(opts)
            .await
            .map_err(map_err)?
            .map(enrollment_from)
            .transpose()
    }

    async fn replace_enrollment(&self, enrollment: &Enrollment) -> StoreResult<Enrollment> {
        let mut e = enrollment.clone();
        e.version += 1;
        let r = self
            .enrollments()
            .replace_one(enrollment_cas_filter(enrollment), enrollment_doc(&e)?)
            .await
            .map_err(map_err)?;
        if r.matched_count == 1 {
            return Ok(e);
        }
        match self.get_enrollment(&e.id).await? {
            None => Err(StoreError::NotFound("enrollment")),
            Some(now) => {
                Err(StoreError::stale(format!("enrollment {} (now version {}, {})", e.id, now.version, now.status)))
            }
        }
    }

    async fn expired_leases(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Enrollment>> {
        let opts = FindOptions::builder().sort(expired_sort()).limit(i64::from(limit)).build();
        let q = expired_filter(now);
        collect(self.enrollments().find(q).with_options(opts).await.map_err(map_err)?).await
    }

    async fn remove_enrollment(&self, id: &EnrollmentId) -> StoreResult<bool> {
        let r = self
            .enrollments()
            .delete_one(doc! { "_id": id.as_str(), "status": { "$nin": IN_FLIGHT.to_vec() } })
            .await
            .map_err(map_err)?;
        if r.deleted_count == 1 {
            return Ok(true);
        }
        match self.get_enrollment(id).await? {
            Some(_) => Err(StoreError::conflict(format!("enrollment {id} has a call in flight"))),
            None => Ok(false),
        }
    }

    async fn cancel_waiting(&self, campaign_id: &CampaignId, now: DateTime<Utc>) -> StoreResult<u64> {
        let r = self
            .enrollments()
            .update_many(
                doc! { "campaign_id": campaign_id.as_str(), "status": { "$in": WAITING.to_vec() } },
                doc! {
                    "$set": { "status": "cancelled", "reason": "campaign cancelled", "updated_at": ms(now) },
                    "$inc": { "version": 1_i64 },
                },
            )
            .await
            .map_err(map_err)?;
        Ok(r.modified_count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{campaign_doc, campaign_from, contact_doc, contact_from};
    use mongodb::bson::Bson;
    use switchboard_domain::campaign::AgentSettings;
    use switchboard_domain::time::now_ms;
    use switchboard_domain::{CampaignInput, ContactInput};

    #[test]
    fn records_round_trip_through_bson() {
        let mut c = CampaignInput {
            name: Some("c".into()),
            agent: Some(AgentSettings {
                agent_id: "a".into(),
                caller_id: Some("+15005550001".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .apply(None, now_ms())
        .unwrap();
        c.schedule.start_at = Some(now_ms());
        c.schedule.holidays = vec![chrono::NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()];
        c.inflight = vec!["k".into()];
        let d = campaign_doc(&c).unwrap();
        assert!(matches!(d.get("next_dial_at"), Some(Bson::DateTime(_))), "{d:?}");
        assert_eq!(campaign_from(d).unwrap(), c);
        let k = ContactInput {
            phone: Some("+14155552671".into()),
            location: Some(switchboard_domain::contact::GeoPoint { lon: -122.4, lat: 37.8 }),
            custom: Some([("plan".to_owned(), serde_json::json!(3))].into()),
            ..Default::default()
        }
        .validate("US", now_ms())
        .unwrap();
        let d = contact_doc(&k).unwrap();
        assert_eq!(d.get_document("location").unwrap().get_str("type").unwrap(), "Point");
        assert_eq!(contact_from(d).unwrap(), k);
        let mut e = Enrollment::new(c.id.clone(), k.id.clone(), now_ms());
        e.placed(switchboard_domain::CallId::new(), now_ms());
        e.lease = Some(switchboard_domain::enrollment::Lease { owner: "w".into(), expires_at: now_ms() });
        let d = enrollment_doc(&e).unwrap();
        assert!(matches!(d.get_document("lease").unwrap().get("expires_at"), Some(Bson::DateTime(_))));
        assert_eq!(enrollment_from(d).unwrap(), e);
    }
}
