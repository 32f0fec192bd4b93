//! Google Sheets links: a spreadsheet tab bound to a campaign (or to the
//! contact list alone), synced both ways by the `sheets` job.
//!
//! Column ownership is the heart of the conflict rules:
//! - **People own** every mapped contact column (phone, name, e-mail, tags,
//!   time zone, custom fields) and every unmapped column. The sheet wins for
//!   them: an edit there updates the contact; Switchboard never writes them.
//! - **Switchboard owns** its [`StatusField`] columns (the row identity
//!   `switchboard_id`, enrollment status, attempts, last outcome, last called
//!   at, call id, sync error). The store wins for them: a person's edit is
//!   overwritten at the next sync.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::contact::FieldError;
use crate::{CampaignId, ContactId, SheetLinkId, string_enum};

string_enum! {
    /// A column Switchboard writes.
    pub enum StatusField {
        /// The contact id: the row's identity, so rows are matched after people insert, delete or sort.
        SwitchboardId => "switchboard_id",
        /// Enrollment status (`pending`, `completed`, …).
        Status => "status",
        /// Attempts made.
        Attempts => "attempts",
        /// Outcome of the last attempt.
        LastOutcome => "last_outcome",
        /// When the last attempt started (RFC 3339, UTC).
        LastCalledAt => "last_called_at",
        /// Our id of the last call.
        CallId => "call_id",
        /// Why the row was not synced (empty when it was).
        SyncError => "sync_error",
    }
}

string_enum! {
    /// What a row deleted from the sheet does to its enrollment.
    pub enum OnRowDeleted {
        /// Cancel the enrollment if it is still waiting (never dialled or between retries).
        Cancel => "cancel",
        /// Leave the enrollment as it is.
        Keep => "keep",
    }
}

string_enum! {
    /// Where a link's sync stands.
    pub enum SyncStatus {
        /// Created, never synced.
        New => "new",
        /// The last sync succeeded.
        Ok => "ok",
        /// The last sync failed (see `last_error`); it is retried at the next poll.
        Error => "error",
        /// Paused by a user: not synced.
        Paused => "paused",
    }
}

/// One invalid row, reported in the link status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowIssue {
    /// 1-based sheet row number.
    pub row: u32,
    /// Field (or `row`).
    pub field: String,
    /// Why.
    pub reason: String,
}

/// The most row issues kept in a link's state.
pub const MAX_ROW_ISSUES: usize = 100;

/// A link's sync state (written by the sync job only).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncState {
    /// Where the sync stands.
    pub status: Option<SyncStatus>,
    /// The Drive `version` of the last read that was applied.
    pub last_version: Option<u64>,
    /// When the last sync finished.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the last sync that succeeded finished.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Why the last sync failed.
    pub last_error: Option<String>,
    /// Data rows in the sheet at the last read.
    pub rows: u64,
    /// Valid rows (contacts) at the last read.
    pub valid_rows: u64,
    /// Rows read in that changed the store (created/updated contacts, enrollments), in total.
    pub rows_in: u64,
    /// Rows whose status cells were written, in total.
    pub rows_out: u64,
    /// Status rows still to write (after the last sync).
    pub pending_writebacks: u64,
    /// Sheets and Drive requests made, in total.
    pub requests: u64,
    /// The first invalid rows of the last read.
    pub row_issues: Vec<RowIssue>,
    /// Hash of the status cells last written for the link's contacts: when
    /// neither the sheet's version nor this hash moved, a poll costs one request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_hash: Option<String>,
}

/// A spreadsheet tab bound to a campaign or to the contact list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SheetLink {
    /// Our id (`lnk_…`).
    pub id: SheetLinkId,
    /// Spreadsheet id (from its URL).
    pub spreadsheet_id: String,
    /// Tab title.
    pub tab: String,
    /// 1-based row holding the headers; data starts below it.
    pub header_row: u32,
    /// The campaign rows are enrolled in (none: contacts only).
    pub campaign_id: Option<CampaignId>,
    /// Explicit header → contact field mappings (`phone`, `name`, `email`,
    /// `tags`, `time_zone`, `custom.NAME`, `ignore`); other headers map
    /// through the CSV import's aliases.
    pub mapping: BTreeMap<String, String>,
    /// Switchboard's columns: field → header. Missing headers are added at
    /// the end of the header row on the first sync.
    pub status_columns: BTreeMap<StatusField, String>,
    /// What a deleted row does to its enrollment.
    pub on_row_deleted: OnRowDeleted,
    /// Seconds between polls of the Drive version.
    pub poll_secs: u32,
    /// Paused links are not synced.
    pub paused: bool,
    /// Sync state (written by the sync job).
    pub state: SyncState,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed (settings or state).
    pub updated_at: DateTime<Utc>,
    /// Compare-and-set version of the settings.
    pub version: i64,
}

/// The header of each status column when a link does not name it.
pub fn default_status_columns(with_campaign: bool) -> BTreeMap<StatusField, String> {
    let fields: &[StatusField] = if with_campaign {
        &[
            StatusField::SwitchboardId,
            StatusField::Status,
            StatusField::Attempts,
            StatusField::LastOutcome,
            StatusField::LastCalledAt,
            StatusField::CallId,
            StatusField::SyncError,
        ]
    } else {
        &[StatusField::SwitchboardId, StatusField::SyncError]
    };
    fields.iter().map(|f| (*f, format!("sb_{}", f.as_str().trim_start_matches("switchboard_")))).collect()
}

/// What a user gives to create a link (validated by [`SheetLink::create`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SheetLinkInput {
    /// Spreadsheet id, or its full URL.
    pub spreadsheet: Option<String>,
    /// Tab title (default `Sheet1`).
    pub tab: Option<String>,
    /// Header row (default 1).
    pub header_row: Option<u32>,
    /// Campaign.
    pub campaign_id: Option<String>,
    /// Header → field.
    pub mapping: Option<BTreeMap<String, String>>,
    /// Status field → header.
    pub status_columns: Option<BTreeMap<String, String>>,
    /// `cancel` (default) or `keep`.
    pub on_row_deleted: Option<String>,
    /// Poll interval in seconds (default 60, at least 5).
    pub poll_secs: Option<u32>,
    /// Paused.
    pub paused: Option<bool>,
}

/// Extracts the spreadsheet id from an id or a `docs.google.com/spreadsheets/d/{id}/…` URL.
pub fn spreadsheet_id_of(s: &str) -> Option<String> {
    let s = s.trim();
    let id = match s.split_once("/spreadsheets/d/") {
        Some((_, rest)) => rest.split(['/', '?', '#']).next().unwrap_or(""),
        None => s,
    };
    let ok = (10..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| id.to_owned())
}

/// Contact fields a mapping may name (besides `custom.NAME` and `ignore`).
pub const CONTACT_FIELDS: &[&str] = &[
    "phone",
    "name",
    "first_name",
    "last_name",
    "email",
    "tags",
    "time_zone",
    "do_not_call",
    "do_not_call_reason",
    "lat",
    "lon",
];

impl SheetLink {
    /// A new link from user input.
    pub fn create(input: SheetLinkInput, now: DateTime<Utc>) -> Result<SheetLink, Vec<FieldError>> {
        let mut link = SheetLink {
            id: SheetLinkId::new(),
            spreadsheet_id: String::new(),
            tab: "Sheet1".into(),
            header_row: 1,
            campaign_id: None,
            mapping: BTreeMap::new(),
            status_columns: BTreeMap::new(),
            on_row_deleted: OnRowDeleted::Cancel,
            poll_secs: 60,
            paused: false,
            state: SyncState { status: Some(SyncStatus::New), ..Default::default() },
            created_at: now,
            updated_at: now,
            version: 1,
        };
        let mut errors = Vec::new();
        match input.spreadsheet.as_deref().map(spreadsheet_id_of) {
            Some(Some(id)) => link.spreadsheet_id = id,
            Some(None) => errors.push(FieldError::new("spreadsheet", "not a spreadsheet id or URL")),
            None => errors.push(FieldError::new("spreadsheet", "required")),
        }
        let with_campaign = input.campaign_id.is_some();
        link.status_columns = default_status_columns(with_campaign);
        link.apply(input, &mut errors);
        if errors.is_empty() { Ok(link) } else { Err(errors) }
    }

    /// Applies an update (`spreadsheet` and `campaign_id` cannot change: make a new link).
    pub fn update(&mut self, input: SheetLinkInput, now: DateTime<Utc>) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        if input.spreadsheet.is_some() {
            errors.push(FieldError::new("spreadsheet", "cannot be changed; create a new link"));
        }
        if input.campaign_id.is_some() {
            errors.push(FieldError::new("campaign_id", "cannot be changed; create a new link"));
        }
        let mut next = self.clone();
        next.apply(SheetLinkInput { spreadsheet: None, campaign_id: None, ..input }, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        next.updated_at = now;
        if next.paused {
            next.state.status = Some(SyncStatus::Paused);
        } else if next.state.status == Some(SyncStatus::Paused) {
            next.state.status = Some(SyncStatus::New);
        }
        *self = next;
        Ok(())
    }

    fn apply(&mut self, input: SheetLinkInput, errors: &mut Vec<FieldError>) {
        if let Some(tab) = input.tab {
            if tab.trim().is_empty() || tab.len() > 100 {
                errors.push(FieldError::new("tab", "must be 1-100 characters"));
            } else {
                self.tab = tab;
            }
        }
        if let Some(h) = input.header_row {
            if (1..=1000).contains(&h) {
                self.header_row = h;
            } else {
                errors.push(FieldError::new("header_row", "must be 1-1000"));
            }
        }
        if let Some(c) = input.campaign_id {
            match CampaignId::parse(&c) {
                Ok(id) => self.campaign_id = Some(id),
                Err(e) => errors.push(FieldError::new("campaign_id", e.to_string())),
            }
        }
        if let Some(m) = input.mapping {
            for (header, field) in &m {
                let ok = CONTACT_FIELDS.contains(&field.as_str())
                    || field == "ignore"
                    || field.strip_prefix("custom.").is_some_and(|n| !n.is_empty() && n.len() <= 64);
                if header.trim().is_empty() {
                    errors.push(FieldError::new("mapping", "a header is empty"));
                } else if !ok {
                    errors.push(FieldError::new(
                        format!("mapping.{header}"),
                        format!("`{field}` is not a field ({}, custom.NAME, ignore)", CONTACT_FIELDS.join(", ")),
                    ));
                }
            }
            self.mapping = m;
        }
        if let Some(cols) = input.status_columns {
            let mut out = BTreeMap::new();
            for (field, header) in cols {
                match field.parse::<StatusField>() {
                    Ok(f) if !header.trim().is_empty() => {
                        out.insert(f, header.trim().to_owned());
                    }
                    Ok(_) => errors.push(FieldError::new(format!("status_columns.{field}"), "empty header")),
                    Err(_) => errors.push(FieldError::new(
                        format!("status_columns.{field}"),
                        format!(
                            "not a status field ({})",
                            StatusField::ALL.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", ")
                        ),
                    )),
                }
            }
            out.entry(StatusField::SwitchboardId).or_insert_with(|| "sb_id".into());
            let mut seen = std::collections::BTreeSet::new();
            for h in out.values() {
                if !seen.insert(h.to_lowercase()) {
                    errors.push(FieldError::new("status_columns", format!("header `{h}` is used twice")));
                }
            }
            self.status_columns = out;
        }
        for header in self.mapping.keys() {
            if self.status_columns.values().any(|h| h.eq_ignore_ascii_case(header)) {
                errors.push(FieldError::new(
                    format!("mapping.{header}"),
                    "is a status column: Switchboard owns it and people own mapped columns",
                ));
            }
        }
        if let Some(d) = input.on_row_deleted {
            match d.parse() {
                Ok(v) => self.on_row_deleted = v,
                Err(_) => errors.push(FieldError::new("on_row_deleted", "must be `cancel` or `keep`")),
            }
        }
        if let Some(p) = input.poll_secs {
            if (5..=86_400).contains(&p) {
                self.poll_secs = p;
            } else {
                errors.push(FieldError::new("poll_secs", "must be 5-86400"));
            }
        }
        if let Some(p) = input.paused {
            self.paused = p;
            if p {
                self.state.status = Some(SyncStatus::Paused);
            }
        }
    }

    /// The lease (job) name that syncs this link.
    pub fn lease_name(&self) -> String {
        format!("sheets:{}", self.id)
    }
}

/// What the sync remembers of one row (one contact) of a link, so a restart
/// neither redoes nor loses work.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SheetRow {
    /// The link.
    pub link_id: SheetLinkId,
    /// The contact the row is.
    pub contact_id: ContactId,
    /// Hash of the people-owned cells last applied to the contact (unchanged: nothing to write).
    pub fingerprint: String,
    /// Sheet row number at the last read (a hint only; rows are found by identity before every write).
    pub row_hint: u32,
    /// Last seen.
    pub seen_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(v: serde_json::Value) -> SheetLinkInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn links_take_an_id_or_url_and_default_their_columns() {
        let now = crate::time::now_ms();
        let l = SheetLink::create(
            input(serde_json::json!({"spreadsheet": "https://docs.google.com/spreadsheets/d/1AbC-dEf_ghIJKlmnop/edit#gid=0",
                "campaign_id": CampaignId::new().to_string()})),
            now,
        )
        .unwrap();
        assert_eq!(l.spreadsheet_id, "1AbC-dEf_ghIJKlmnop");
        assert_eq!(l.status_columns[&StatusField::SwitchboardId], "sb_id");
        assert_eq!(l.status_columns[&StatusField::Status], "sb_status");
        assert_eq!(l.status_columns.len(), 7);
        let contacts_only =
            SheetLink::create(input(serde_json::json!({"spreadsheet": "1AbC-dEf_ghIJKlmnop"})), now).unwrap();
        assert_eq!(contacts_only.status_columns.len(), 2);
    }

    #[test]
    fn bad_input_names_every_field() {
        let now = crate::time::now_ms();
        let errs = SheetLink::create(
            input(serde_json::json!({"spreadsheet": "x", "header_row": 0, "mapping": {"Phone": "telephone", "sb_status": "name"},
                "status_columns": {"mood": "Mood"}, "on_row_deleted": "delete", "poll_secs": 1, "campaign_id": "cmp_1"})),
            now,
        )
        .unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        for f in [
            "spreadsheet",
            "header_row",
            "mapping.Phone",
            "status_columns.mood",
            "on_row_deleted",
            "poll_secs",
            "campaign_id",
        ] {
            assert!(fields.contains(&f), "{f} missing from {fields:?}");
        }
    }

    #[test]
    fn a_mapped_column_cannot_be_a_status_column() {
        let now = crate::time::now_ms();
        let errs = SheetLink::create(
            input(serde_json::json!({"spreadsheet": "1AbC-dEf_ghIJKlmnop", "mapping": {"sb_id": "phone"}})),
            now,
        )
        .unwrap_err();
        assert_eq!(errs[0].field, "mapping.sb_id");
    }
}
