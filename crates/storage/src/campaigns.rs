//! Campaigns and the dial gate: the contract both backends implement
//! (architecture §4). Contacts are in [`crate::contacts`], enrollments in
//! [`crate::enrollments`].
//!
//! Guarantees every backend gives (the conformance suite checks them):
//! - A contact's E.164 phone is unique; an enrollment is unique per
//!   (campaign, contact).
//! - `replace_*` is compare-and-set on `version`: it fails with
//!   [`StoreError::Stale`](crate::StoreError::Stale) if the stored version is not the one given,
//!   and stores the record with `version + 1`.
//! - [`EnrollmentStore::claim_enrollment`](crate::EnrollmentStore::claim_enrollment) is atomic: concurrent claimers,
//!   in one process or many, never receive the same enrollment; each claim
//!   increments the enrollment's fencing token (`lease_token`) and version.
//! - The dial gate ([`CampaignStore::acquire_dial_slot`]) is atomic across
//!   instances: at most `max_concurrent` keys are held at once, one call
//!   start per pacing interval, and only while the campaign is running.
//!   Releasing a key is idempotent.
//! - `replace_campaign` never touches the gate's fields (`inflight`,
//!   `next_dial_at`, `dials`), so settings edits and dialling do not collide.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::{Campaign, CampaignId, CampaignStatus};

use crate::{Page, PageRequest, StoreResult};

/// The answer of the dial gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotGrant {
    /// The key holds a slot; the next start is paced after it.
    Granted,
    /// `max_concurrent` calls are in flight.
    Full,
    /// The pacing interval has not passed; try at this time.
    Paced(DateTime<Utc>),
    /// The campaign is not running (or does not exist).
    NotRunning,
}

/// Campaigns and the dial gate.
#[async_trait]
pub trait CampaignStore: Send + Sync {
    /// Inserts a campaign.
    async fn insert_campaign(&self, campaign: &Campaign) -> StoreResult<()>;
    /// A campaign by id (with the gate's current fields).
    async fn get_campaign(&self, id: &CampaignId) -> StoreResult<Option<Campaign>>;
    /// Compare-and-set of settings and status on `campaign.version`; the gate's fields are left alone.
    async fn replace_campaign(&self, campaign: &Campaign) -> StoreResult<Campaign>;
    /// Campaigns, newest first, optionally of some statuses.
    async fn list_campaigns(&self, statuses: &[CampaignStatus], page: &PageRequest) -> StoreResult<Page<Campaign>>;
    /// Takes a slot for `key` if the campaign is running, fewer than its
    /// `max_concurrent` keys are held and `next_dial_at <= now`; then
    /// `next_dial_at = now + interval` and `dials += 1`. Holding `key` already is `Granted`.
    async fn acquire_dial_slot(&self, id: &CampaignId, key: &str, now: DateTime<Utc>) -> StoreResult<SlotGrant>;
    /// Releases `key` (idempotent); returns whether it was held.
    async fn release_dial_slot(&self, id: &CampaignId, key: &str) -> StoreResult<bool>;
    /// Deletes a campaign that is draft, completed or cancelled, with its
    /// enrollments (its calls stay: they are history). Any other status is a `Conflict`.
    async fn delete_campaign(&self, id: &CampaignId) -> StoreResult<bool>;
}
