//! The storage contract of Switchboard: one set of traits, two adapters
//! (SQLite, MongoDB), one conformance suite (architecture §2).
//!
//! Handlers and jobs only ever see `Arc<dyn Storage>`. Each backend maps its
//! driver errors to [`StoreError`] once, inside the backend.
//!
//! Layout:
//! - [`error`]: `StoreError`, the one error type of every store method.
//! - [`page`]: cursor pagination shared by both backends.
//! - [`calls`]: `CallStore` and `EventStore`, their filters and guarantees.
//! - [`campaigns`]: `ContactStore`, `CampaignStore` (with the dial gate) and
//!   `EnrollmentStore` (with atomic claims).
//! - [`jobs`]: `JobStore`, fenced leases and visible state of background jobs.
//! - [`sheets`]: `SheetStore`, Google Sheets links and per-row sync state.
//! - [`transcripts`]: `TranscriptStore`, recordings, transcripts and their search.
//! - [`analytics`]: `AnalyticsStore`, time-bucketed rollups rebuilt from raw calls.
//! - `conformance` (feature `conformance`): the suite, expanded per backend
//!   by [`conformance_tests!`](crate::conformance_tests).

#![forbid(unsafe_code)]

pub mod analytics;
pub mod calls;
pub mod campaigns;
pub mod contacts;
pub mod decorate;
pub mod enrollments;
pub mod error;
pub mod events;
pub mod jobs;
pub mod page;
pub mod sheets;
pub mod transcripts;

#[cfg(feature = "conformance")]
pub mod conformance;

use async_trait::async_trait;

pub use analytics::{AnalyticsStore, Bucket, Interval, Metrics, Rollup, RollupQuery, Scope};
pub use calls::{CallFilter, CallSort, CallStore, UpsertOutcome, WebhookOutcome};
pub use campaigns::{CampaignStore, SlotGrant};
pub use contacts::{BulkContacts, ContactFilter, ContactSort, ContactStore, ImportRecord, ImportState, OnDuplicate};
pub use enrollments::EnrollmentStore;
pub use error::{StoreError, StoreResult, retry_stale};
pub use events::{EventFilter, EventStore, NewEvent};
pub use jobs::{JobState, JobStore, Lease, RunReport};
pub use page::{Cursor, Page, PageRequest, pages};
pub use sheets::SheetStore;
pub use transcripts::{SearchHit, SearchOrder, Term, TextQuery, TranscriptFilter, TranscriptStore};

/// What a backend can and cannot do; the conformance suite prints a skip
/// line, with the reason, for every case a backend declares it cannot run.
#[derive(Debug, Clone, Default)]
pub struct Capabilities {
    /// Multi-document / multi-statement transactions.
    pub transactions: bool,
    /// Server-side schema validation rejects a malformed write.
    pub schema_validation: bool,
    /// The live schema (validators, index names) can be read back, so drift is detectable.
    pub schema_introspection: bool,
    /// A date written by an update operator (`$set`) is stored as a date (MongoDB always; a stand-in may not).
    pub dates_in_updates: bool,
    /// The store's own aggregation can rebuild analytics buckets
    /// ([`AnalyticsStore::rebuild_buckets`]; MongoDB: `$lookup` with a
    /// sub-pipeline, `$group`, `$merge`; a stand-in may lack them).
    pub rollup_aggregation: bool,
    /// Free-form notes on other differences.
    pub notes: Vec<String>,
}

/// One difference between the schema a backend has and the one `migrate` would create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// Collection or table.
    pub object: String,
    /// What differs.
    pub detail: String,
}

/// What `migrate` did.
#[derive(Debug, Clone, Default)]
pub struct MigrationReport {
    /// Human-readable steps taken (empty when already up to date).
    pub applied: Vec<String>,
}

/// What a committed change touched (the live feed reads the record and announces it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// A call was created or merged.
    Call(switchboard_domain::CallId),
    /// An enrollment was created or changed.
    Enrollment(switchboard_domain::EnrollmentId),
}

/// One committed change, and the token to resume the feed after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed.
    pub what: Changed,
    /// Opaque; pass it back to [`Storage::watch_changes`] to resume after this change.
    pub token: String,
}

/// Committed changes in commit order (ends or errs when the server's stream does).
pub type ChangeStream = futures::stream::BoxStream<'static, StoreResult<Change>>;

/// Everything Switchboard stores, behind one object-safe trait.
#[async_trait]
pub trait Storage:
    CallStore
    + EventStore
    + ContactStore
    + CampaignStore
    + EnrollmentStore
    + JobStore
    + SheetStore
    + TranscriptStore
    + AnalyticsStore
    + Send
    + Sync
    + 'static
{
    /// `sqlite` or `mongodb`.
    fn backend_name(&self) -> &'static str;
    /// Declared capability differences.
    fn capabilities(&self) -> Capabilities;
    /// Cheap round trip to the store (readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// Creates or updates collections/tables, validators and indexes. Idempotent.
    async fn migrate(&self) -> StoreResult<MigrationReport>;
    /// Lists how the live schema differs from what `migrate` would create.
    async fn check_schema(&self) -> StoreResult<Vec<Drift>>;

    /// Every committed change to calls and enrollments — whoever wrote it —
    /// after `after` (a [`Change::token`]), or from now on. `Ok(None)` when
    /// the backend or deployment has no change feed (SQLite; a MongoDB
    /// server that is not a replica set).
    async fn watch_changes(&self, after: Option<String>) -> StoreResult<Option<ChangeStream>> {
        let _ = after;
        Ok(None)
    }
    /// The resume token saved under `name` ([`Storage::save_change_token`]).
    async fn change_token(&self, name: &str) -> StoreResult<Option<String>> {
        let _ = name;
        Ok(None)
    }
    /// Saves the token of the last change handled under `name`.
    async fn save_change_token(&self, name: &str, token: &str) -> StoreResult<()> {
        let _ = (name, token);
        Ok(())
    }

    /// One step of search-index upkeep (SQLite: merging FTS5 segments, which
    /// every write adds and every lookup must visit), doing at most about
    /// `pages` pages of work in one short write. `Ok(false)` when there was
    /// nothing to do (the default: the backend's index needs no upkeep).
    async fn maintain_search_index(&self, pages: u32) -> StoreResult<bool> {
        let _ = pages;
        Ok(false)
    }

    /// Records one provider webhook: if an event with its dedupe key is
    /// stored, nothing is written ([`WebhookOutcome::Replay`]); otherwise the
    /// update is merged into its call and the event stored with it.
    ///
    /// The default runs the three steps in order — merge before event, so a
    /// crash between them is repaired by the provider's retry (the merge is
    /// idempotent and the event is not yet there to mark a replay). A backend
    /// with cheap local transactions overrides it to do all three at once.
    async fn record_webhook(
        &self,
        update: &switchboard_domain::CallUpdate,
        event: NewEvent,
    ) -> StoreResult<WebhookOutcome> {
        if self.event_exists(&event.dedupe_key).await? {
            return Ok(WebhookOutcome::Replay);
        }
        let outcome = self.upsert_call(update).await?;
        if self.insert_event(&event.for_call(outcome.call.id.clone())).await? {
            Ok(WebhookOutcome::Applied(Box::new(outcome)))
        } else {
            Ok(WebhookOutcome::Replay)
        }
    }
}
