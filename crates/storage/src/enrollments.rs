//! Enrollments (`campaign_contacts`): the contract both backends implement.
//!
//! - An enrollment is unique per (campaign, contact).
//! - [`EnrollmentStore::claim_enrollment`] is atomic: concurrent claimers,
//!   in one process or many, never receive the same enrollment; each claim
//!   increments the enrollment's fencing token (`lease_token`) and version.
//! - `replace_enrollment` is compare-and-set on `version` (and, on MongoDB,
//!   the fencing token and lease owner).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::{CampaignId, ContactId, Enrollment, EnrollmentId, EnrollmentStatus};

use crate::{Page, PageRequest, StoreResult};

/// Enrollments.
#[async_trait]
pub trait EnrollmentStore: Send + Sync {
    /// Enrolls contacts (pending, due at `now`); already-enrolled ones are left as they are.
    /// Returns how many were added.
    async fn enroll(&self, campaign_id: &CampaignId, contacts: &[ContactId], now: DateTime<Utc>) -> StoreResult<u64>;
    /// An enrollment by id.
    async fn get_enrollment(&self, id: &EnrollmentId) -> StoreResult<Option<Enrollment>>;
    /// The enrollment of a contact in a campaign.
    async fn find_enrollment(
        &self,
        campaign_id: &CampaignId,
        contact_id: &ContactId,
    ) -> StoreResult<Option<Enrollment>>;
    /// Enrollments of a campaign in enrollment order, optionally of some statuses.
    async fn list_enrollments(
        &self,
        campaign_id: &CampaignId,
        statuses: &[EnrollmentStatus],
        page: &PageRequest,
    ) -> StoreResult<Page<Enrollment>>;
    /// Count per status (statuses with none are omitted).
    async fn count_enrollments(&self, campaign_id: &CampaignId) -> StoreResult<Vec<(EnrollmentStatus, u64)>>;
    /// Atomically claims the waiting enrollment of `campaign_id` that is due
    /// first (`next_attempt_at <= now`): status `dialing`, lease to `owner`
    /// until `lease_until`, `lease_token + 1`, `version + 1`.
    async fn claim_enrollment(
        &self,
        campaign_id: &CampaignId,
        now: DateTime<Utc>,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<Option<Enrollment>>;
    /// Compare-and-set on `enrollment.version`; returns the stored record.
    async fn replace_enrollment(&self, enrollment: &Enrollment) -> StoreResult<Enrollment>;
    /// Enrollments in `dialing` whose lease expired before `now` (any campaign).
    async fn expired_leases(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Enrollment>>;
    /// Deletes an enrollment that has no call in flight (`Conflict` otherwise).
    async fn remove_enrollment(&self, id: &EnrollmentId) -> StoreResult<bool>;
    /// Moves every waiting enrollment of a campaign to `cancelled`; returns how many.
    async fn cancel_waiting(&self, campaign_id: &CampaignId, now: DateTime<Utc>) -> StoreResult<u64>;
}
