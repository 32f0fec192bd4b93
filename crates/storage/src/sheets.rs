//! Google Sheets links (`sheet_links`) and the per-row sync state
//! (`sheet_rows`): the contract both backends implement.
//!
//! - A link is unique per (spreadsheet, tab): two links writing one tab
//!   would fight over its columns (`Conflict` naming the tab).
//! - `replace_sheet_link` is compare-and-set on `version` and changes the
//!   settings only; the sync state is written by the sync job alone, with
//!   `set_sheet_state` (no version change, so a user's edit and a sync never
//!   make each other stale).
//! - Deleting a link deletes its rows; contacts, enrollments and calls stay.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::sheet::SyncState;
use switchboard_domain::{ContactId, SheetLink, SheetLinkId, SheetRow};

use crate::{Page, PageRequest, StoreResult};

/// Sheet links and their row state.
#[async_trait]
pub trait SheetStore: Send + Sync {
    /// Stores a new link.
    async fn insert_sheet_link(&self, link: &SheetLink) -> StoreResult<()>;
    /// A link by id.
    async fn get_sheet_link(&self, id: &SheetLinkId) -> StoreResult<Option<SheetLink>>;
    /// Links, newest first.
    async fn list_sheet_links(&self, page: &PageRequest) -> StoreResult<Page<SheetLink>>;
    /// Compare-and-set of the settings on `link.version`; returns the stored link.
    async fn replace_sheet_link(&self, link: &SheetLink) -> StoreResult<SheetLink>;
    /// Writes the sync state (and `updated_at`) of a link.
    async fn set_sheet_state(&self, id: &SheetLinkId, state: &SyncState, now: DateTime<Utc>) -> StoreResult<()>;
    /// Deletes a link and its rows.
    async fn delete_sheet_link(&self, id: &SheetLinkId) -> StoreResult<bool>;
    /// Every row state of a link, by contact id.
    async fn sheet_rows(&self, link: &SheetLinkId) -> StoreResult<Vec<SheetRow>>;
    /// Inserts or replaces row states (keyed by link and contact).
    async fn put_sheet_rows(&self, rows: &[SheetRow]) -> StoreResult<()>;
    /// Deletes row states; returns how many existed.
    async fn delete_sheet_rows(&self, link: &SheetLinkId, contacts: &[ContactId]) -> StoreResult<u64>;
}
