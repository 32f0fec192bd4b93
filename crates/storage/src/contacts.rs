//! Contacts and the import journal: the contract both backends implement.
//!
//! - A contact's E.164 phone is unique.
//! - `replace_contact` is compare-and-set on `version` ([`StoreError::Stale`](crate::StoreError::Stale)
//!   when another write came first).
//! - An import that writes keeps a journal (heartbeat, before-images of what
//!   it overwrote) so that it can be undone after a failure or a crash.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::{Contact, ContactId};

use crate::{Page, PageRequest, StoreResult};

/// Filters of `GET /contacts`. Every combination is served by an index, a
/// bounded range per page (the backends' query-plan tests check each one).
///
/// Page order: without `search`, the [`ContactSort`] (created order). With
/// `search`, *match order* whatever the sort: the contacts whose name starts
/// with the query, by (lower-cased name, id); then those whose e-mail does
/// (and name does not), by (lower-cased e-mail, id); then those whose phone
/// does (and neither name nor e-mail), by phone. A created-order page over a
/// prefix of three columns cannot be read from an index in bounded time; a
/// prefix range in key order can. The set of contacts is the same either way.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContactFilter {
    /// Case-insensitive prefix of the name, the phone (E.164, with or without `+`) or the e-mail.
    pub search: Option<String>,
    /// Has this tag.
    pub tag: Option<String>,
    /// Do-not-call flag.
    pub dnc: Option<bool>,
}

impl ContactFilter {
    /// The reference semantics both backends must match.
    pub fn matches(&self, c: &Contact) -> bool {
        let search_ok = self.search.as_ref().is_none_or(|q| {
            let q = q.trim().to_lowercase();
            let digits = q.trim_start_matches('+');
            c.name.as_ref().is_some_and(|n| n.to_lowercase().starts_with(&q))
                || c.email.as_ref().is_some_and(|e| e.to_lowercase().starts_with(&q))
                || (!digits.is_empty() && c.phone.trim_start_matches('+').starts_with(digits))
        });
        search_ok
            && self.tag.as_ref().is_none_or(|t| c.tags.iter().any(|x| x == &t.to_lowercase()))
            && self.dnc.is_none_or(|d| c.is_dnc() == d)
    }
}

/// Sort orders of contact lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContactSort {
    /// Newest first (default).
    #[default]
    CreatedDesc,
    /// Oldest first (exports).
    CreatedAsc,
}

impl ContactSort {
    /// Name used in cursors.
    pub fn name(self) -> &'static str {
        match self {
            ContactSort::CreatedDesc => "contacts_created_desc",
            ContactSort::CreatedAsc => "contacts_created_asc",
        }
    }
}

/// What to do when an imported contact's phone is already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDuplicate {
    /// Keep the stored contact.
    Skip,
    /// Overwrite the stored contact's fields (keeping its id and creation time).
    Update,
    /// Refuse the whole batch.
    Fail,
}

/// What a bulk contact write did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkContacts {
    /// New contacts.
    pub inserted: u64,
    /// Existing contacts overwritten.
    pub updated: u64,
    /// Indexes (in the batch) of contacts skipped as duplicates.
    pub skipped: Vec<usize>,
}

/// Contacts.
#[async_trait]
pub trait ContactStore: Send + Sync {
    /// Inserts one contact; a stored phone is a `Conflict`.
    async fn insert_contact(&self, contact: &Contact) -> StoreResult<()>;
    /// Writes a batch of contacts. With [`OnDuplicate::Fail`] nothing is written
    /// if any phone is already stored (the error names it); the batch is
    /// written at once where the backend has transactions.
    async fn insert_contacts(&self, contacts: &[Contact], on_duplicate: OnDuplicate) -> StoreResult<BulkContacts>;
    /// A contact by id.
    async fn get_contact(&self, id: &ContactId) -> StoreResult<Option<Contact>>;
    /// A contact by E.164 phone.
    async fn find_contact_by_phone(&self, phone: &str) -> StoreResult<Option<Contact>>;
    /// Which of these phones are stored (for import dedupe).
    async fn existing_phones(&self, phones: &[String]) -> StoreResult<Vec<String>>;
    /// Compare-and-set on `contact.version`; returns the stored record.
    async fn replace_contact(&self, contact: &Contact) -> StoreResult<Contact>;
    /// Deletes a contact and its enrollments; a contact with a call in flight is a `Conflict`.
    async fn delete_contact(&self, id: &ContactId) -> StoreResult<bool>;
    /// A filtered page, in the order [`ContactFilter`] describes (cursors of
    /// search pages are bound to match order, not to `sort`).
    async fn list_contacts(
        &self,
        filter: &ContactFilter,
        sort: ContactSort,
        page: &PageRequest,
    ) -> StoreResult<Page<Contact>>;
    /// Deletes the contacts of one import (`source`), e.g. to undo a failed import.
    async fn delete_contacts_by_source(&self, source: &str) -> StoreResult<u64>;

    /// Opens an import's journal (`running`, heartbeat now). An import that
    /// writes keeps one, so that after a crash its writes can be undone.
    async fn begin_import(&self, import: &ImportRecord) -> StoreResult<()>;
    /// Keeps contacts as they were before the import overwrote them; the
    /// first image saved for a contact wins (a retried batch keeps the true
    /// original).
    async fn save_before_images(&self, import_id: &str, before: &[Contact]) -> StoreResult<()>;
    /// The import is alive.
    async fn heartbeat_import(&self, import_id: &str, now: DateTime<Utc>) -> StoreResult<()>;
    /// Before-images of an import, in contact-id order after `after`.
    async fn before_images(&self, import_id: &str, after: Option<&ContactId>, limit: u32) -> StoreResult<Vec<Contact>>;
    /// Closes an import's journal with its final state and drops its before-images.
    async fn end_import(&self, import_id: &str, state: ImportState) -> StoreResult<()>;
    /// Imports still `running` whose heartbeat is older than `before` (their process died).
    async fn stale_imports(&self, before: DateTime<Utc>) -> StoreResult<Vec<ImportRecord>>;
}

/// Where an import's journal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportState {
    /// Writing (or its process died while writing).
    Running,
    /// Every batch written.
    Committed,
    /// Undone: inserted contacts deleted, updated ones restored.
    RolledBack,
}

impl ImportState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Running => "running",
            ImportState::Committed => "committed",
            ImportState::RolledBack => "rolled_back",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<ImportState> {
        match s {
            "running" => Some(ImportState::Running),
            "committed" => Some(ImportState::Committed),
            "rolled_back" => Some(ImportState::RolledBack),
            _ => None,
        }
    }
}

/// An import's journal entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRecord {
    /// The import's id.
    pub id: String,
    /// The `source` its inserted contacts carry (`import:<id>`).
    pub source: String,
    /// State.
    pub state: ImportState,
    /// The instance writing it.
    pub owner: String,
    /// Opened.
    pub started_at: DateTime<Utc>,
    /// Last sign of life.
    pub heartbeat_at: DateTime<Utc>,
}
