//! The Google Sheets sync: each link ([`switchboard_domain::SheetLink`]) is
//! synced both ways under its own lease (`sheets:lnk_…`, [`super::runner`]),
//! so with any number of instances one syncs a given link at a time.
//!
//! One cycle:
//! 1. Drive `files.get(version)` — one cheap request. If the version is the
//!    one last applied and the status cells the store wants equal the ones
//!    last written (a hash kept in the link's state), the cycle ends there.
//! 2. Otherwise the tab is read whole (`values.get`, one request), rows are
//!    matched to contacts by identity ([`grid`]: `sb_id` column, then phone),
//!    and changed rows update or create contacts and enroll them; rows gone
//!    from the sheet cancel their waiting enrollment (if the link says so).
//!    Contacts, enrollments and calls are never deleted by a sync.
//! 3. The owned cells (status columns, `sb_id`, `sb_sync_error`) that differ
//!    from what the store wants are written in one `values.batchUpdate`
//!    (`RAW`), coalesced into ranges. Right before writing the version is
//!    checked again; if a person changed the sheet since the read, the cycle
//!    reads again (positions are re-resolved, never written blind).
//! 4. The link's state (versions, counts, issues with row numbers, last
//!    error) is saved; per-row fingerprints are saved as rows are applied,
//!    so a restart neither redoes nor loses work.
//!
//! Every request goes through a per-instance budget (requests per minute);
//! 429 and 5xx are retried with backoff by the client; a 401/403 or a
//! revoked service account puts the link in `error` with the reason, and
//! the next poll tries again, so a fixed sharing or key resumes by itself.

pub mod grid;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::Utc;
use futures::TryStreamExt;
use serde::Serialize;
use sha2::{Digest, Sha256};
use switchboard_domain::sheet::{MAX_ROW_ISSUES, RowIssue, SyncState, SyncStatus};
use switchboard_domain::time::now_ms;
use switchboard_domain::{ContactId, Enrollment, FieldError, SheetLink, SheetLinkId, SheetRow};
use switchboard_storage::{PageRequest, Storage, StoreError, pages, retry_stale};
use tokio::sync::{Mutex, watch};

use self::grid::{Known, Match};
use super::runner::{RunOutcome, Runner, Schedule};
use crate::import::ImportOptions;
use crate::integrations::UpstreamError;
use crate::integrations::google::{SheetsClient, ValueInput, ValueRange, ValueRender};

/// Requests per minute one instance may send to Google (Sheets allows about
/// 60 per minute per user). A sliding window: a request waits for a slot.
#[derive(Debug)]
pub struct Budget {
    per_minute: u32,
    sent: Mutex<VecDeque<Instant>>,
}

impl Budget {
    /// A budget of `per_minute` requests.
    pub fn new(per_minute: u32) -> Budget {
        Budget { per_minute: per_minute.max(1), sent: Mutex::new(VecDeque::new()) }
    }

    /// Waits for a slot and takes it.
    pub async fn take(&self) {
        loop {
            let wait = {
                let mut sent = self.sent.lock().await;
                let now = Instant::now();
                while sent.front().is_some_and(|t| now.duration_since(*t) >= StdDuration::from_secs(60)) {
                    sent.pop_front();
                }
                if sent.len() < self.per_minute as usize {
                    sent.push_back(now);
                    return;
                }
                StdDuration::from_secs(60).saturating_sub(now.duration_since(sent[0]))
            };
            tokio::time::sleep(wait.max(StdDuration::from_millis(5))).await;
        }
    }
}

/// What one sync did.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SyncReport {
    /// Whether the tab was read (the version moved, or status cells were due).
    pub read: bool,
    /// Data rows in the sheet.
    pub rows: u64,
    /// Valid rows.
    pub valid_rows: u64,
    /// Contacts created.
    pub created: u64,
    /// Contacts updated from the sheet.
    pub updated: u64,
    /// Contacts enrolled in the campaign.
    pub enrolled: u64,
    /// Enrollments cancelled because their row was deleted.
    pub cancelled: u64,
    /// Rows whose owned cells were written.
    pub rows_written: u64,
    /// Ranges written.
    pub ranges_written: u64,
    /// Sheets and Drive requests made.
    pub requests: u64,
    /// Invalid rows.
    pub issues: Vec<RowIssue>,
}

/// Told (rows done, rows in all) while a sheet is applied.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// The sync of every link, for one instance.
#[derive(Clone)]
pub struct SheetsSync {
    store: Arc<dyn Storage>,
    client: SheetsClient,
    budget: Arc<Budget>,
    runner: Runner,
    default_region: String,
    /// The service account's e-mail, named in "share the sheet with …" errors.
    account: String,
    /// Lease lifetime of one link's sync.
    lease: chrono::Duration,
}

/// Why a sync did not happen.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// No such link.
    #[error("sheet link not found")]
    NotFound,
    /// Another instance (or task) is syncing this link now.
    #[error("a sync of this link is running; try again when it ends")]
    Busy,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The default lease of a link sync (`sheets.lease_secs`): renewed every
/// third while a sync runs; a crashed holder's link waits this long.
pub const DEFAULT_LEASE: chrono::Duration = chrono::Duration::seconds(120);
/// Read/check/write attempts in one cycle before the writes wait for the next poll.
const WRITE_TRIES: usize = 3;
/// Ranges per `values.batchUpdate`.
const RANGES_PER_REQUEST: usize = 2000;

impl SheetsSync {
    /// A sync for this instance.
    pub fn new(
        store: Arc<dyn Storage>,
        client: SheetsClient,
        budget: Arc<Budget>,
        runner: Runner,
        default_region: impl Into<String>,
        account: impl Into<String>,
    ) -> SheetsSync {
        SheetsSync {
            store,
            client,
            budget,
            runner,
            default_region: default_region.into(),
            account: account.into(),
            lease: DEFAULT_LEASE,
        }
    }

    /// Sets the lease lifetime of a link's sync.
    pub fn with_lease(mut self, lease: chrono::Duration) -> SheetsSync {
        self.lease = lease.max(chrono::Duration::seconds(1));
        self
    }

    fn schedule(&self, link: &SheetLink) -> Schedule {
        Schedule {
            name: link.lease_name(),
            every: chrono::Duration::seconds(i64::from(link.poll_secs)),
            lease: self.lease,
        }
    }

    /// Syncs one link now (reading the sheet even if its version did not
    /// move), under its lease. `Busy` when another sync of it is running.
    pub async fn sync_now(&self, id: &SheetLinkId, progress: Option<Progress>) -> Result<SheetLink, SyncError> {
        let link = self.store.get_sheet_link(id).await?.ok_or(SyncError::NotFound)?;
        match self.runner.run_once(&self.schedule(&link), true, |_| self.cycle(id.clone(), true, progress)).await? {
            RunOutcome::Skipped => Err(SyncError::Busy),
            _ => Ok(self.store.get_sheet_link(id).await?.ok_or(SyncError::NotFound)?),
        }
    }

    /// Polls every link whose time has come, every `tick`, until `stop`.
    pub async fn run(self, tick: StdDuration, mut stop: watch::Receiver<bool>) {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        return;
                    }
                }
                _ = interval.tick() => {
                    if let Err(e) = self.poll_all().await {
                        tracing::warn!(error = %e, "sheet links could not be listed; retrying at the next tick");
                    }
                }
            }
        }
    }

    /// One pass over every link: each due, unpaused link is synced once (where its lease is free).
    pub async fn poll_all(&self) -> Result<u64, StoreError> {
        let store = self.store.clone();
        let mut stream = std::pin::pin!(pages(200, move |page: PageRequest| {
            let store = store.clone();
            async move { store.list_sheet_links(&page).await }
        }));
        let mut ran = 0;
        while let Some(links) = stream.try_next().await? {
            for link in links.into_iter().filter(|l| !l.paused) {
                let id = link.id.clone();
                if let RunOutcome::Ran(_) =
                    self.runner.run_once(&self.schedule(&link), false, |_| self.cycle(id, false, None)).await?
                {
                    ran += 1;
                }
            }
        }
        Ok(ran)
    }

    /// One sync of a link, recording its outcome in the link's state.
    async fn cycle(&self, id: SheetLinkId, force: bool, progress: Option<Progress>) -> anyhow::Result<SyncReport> {
        let link =
            self.store.get_sheet_link(&id).await?.ok_or_else(|| anyhow::anyhow!("sheet link {id} was deleted"))?;
        if link.paused {
            return Ok(SyncReport::default());
        }
        let mut state = link.state.clone();
        let mut report = SyncReport::default();
        let result = self.sync_inner(&link, &mut state, &mut report, force, progress).await;
        let now = now_ms();
        state.last_sync_at = Some(now);
        state.requests += report.requests;
        match &result {
            Ok(()) => {
                state.status = Some(SyncStatus::Ok);
                state.last_error = None;
                state.last_success_at = Some(now);
            }
            Err(e) => {
                state.status = Some(SyncStatus::Error);
                state.last_error = Some(self.explain(&link, e));
            }
        }
        self.store.set_sheet_state(&link.id, &state, now).await?;
        match result {
            Ok(()) => Ok(report),
            Err(e) => Err(anyhow::anyhow!(state.last_error.unwrap_or_else(|| e.to_string()))),
        }
    }

    /// A sentence a person can act on.
    fn explain(&self, link: &SheetLink, e: &anyhow::Error) -> String {
        match e.downcast_ref::<UpstreamError>() {
            Some(UpstreamError::Auth { status: 403, message, .. }) => format!(
                "Google refused access to spreadsheet {} (403: {message}); share it with {} as an editor",
                link.spreadsheet_id, self.account
            ),
            Some(UpstreamError::Auth { status, message, .. }) => format!(
                "Google refused the service account's credentials ({status}: {message}); check the key of {} or re-enable it",
                self.account
            ),
            Some(UpstreamError::NotFound { message, .. }) => {
                format!("spreadsheet {} or tab `{}` not found ({message})", link.spreadsheet_id, link.tab)
            }
            _ => format!("{e:#}"),
        }
    }

    async fn version(&self, link: &SheetLink, report: &mut SyncReport) -> Result<u64, UpstreamError> {
        self.budget.take().await;
        report.requests += 1;
        Ok(self.client.file_version(&link.spreadsheet_id).await?.version)
    }

    /// The enrollments of the link's campaign, by contact.
    async fn enrollments(&self, link: &SheetLink) -> Result<HashMap<ContactId, Enrollment>, StoreError> {
        let Some(campaign) = link.campaign_id.clone() else { return Ok(HashMap::new()) };
        let store = self.store.clone();
        let mut out = HashMap::new();
        let mut stream = std::pin::pin!(pages(200, move |page: PageRequest| {
            let (store, campaign) = (store.clone(), campaign.clone());
            async move { store.list_enrollments(&campaign, &[], &page).await }
        }));
        while let Some(batch) = stream.try_next().await? {
            for e in batch {
                out.insert(e.contact_id.clone(), e);
            }
        }
        Ok(out)
    }

    fn wanted_hash(link: &SheetLink, members: &[ContactId], enrollments: &HashMap<ContactId, Enrollment>) -> String {
        let mut sorted: Vec<&ContactId> = members.iter().collect();
        sorted.sort();
        let mut h = Sha256::new();
        for id in sorted {
            for (f, v) in grid::desired_cells(link, Some(id), enrollments.get(id), &[]) {
                h.update(f.as_str().as_bytes());
                h.update([0]);
                h.update(v.as_bytes());
                h.update([0]);
            }
        }
        hex::encode(&h.finalize()[..16])
    }

    async fn sync_inner(
        &self,
        link: &SheetLink,
        state: &mut SyncState,
        report: &mut SyncReport,
        force: bool,
        progress: Option<Progress>,
    ) -> anyhow::Result<()> {
        let mut version = self.version(link, report).await?;
        if !force && Some(version) == state.last_version {
            let members: Vec<ContactId> =
                self.store.sheet_rows(&link.id).await?.into_iter().map(|r| r.contact_id).collect();
            let enrollments = self.enrollments(link).await?;
            if state.written_hash.as_deref() == Some(Self::wanted_hash(link, &members, &enrollments).as_str()) {
                state.pending_writebacks = 0;
                return Ok(());
            }
        }
        for attempt in 1..=WRITE_TRIES {
            report.read = true;
            self.budget.take().await;
            report.requests += 1;
            let tab = format!("'{}'", link.tab.replace('\'', "''"));
            let values = self.client.get_values(&link.spreadsheet_id, &tab, ValueRender::Formatted).await?.values;
            let plan = self.apply(link, &values, state, report, progress.clone()).await?;
            state.last_version = Some(version);
            state.rows = report.rows;
            state.valid_rows = report.valid_rows;
            state.row_issues = report.issues.iter().take(MAX_ROW_ISSUES).cloned().collect();
            if plan.writes.is_empty() {
                state.written_hash = Some(plan.hash);
                state.pending_writebacks = 0;
                return Ok(());
            }
            // Positions come from the read just made; write only if nobody changed the sheet since.
            let now_version = self.version(link, report).await?;
            if now_version != version {
                tracing::info!(link = %link.id, attempt, "the sheet changed since it was read; reading it again before writing");
                version = now_version;
                state.pending_writebacks = plan.rows;
                continue;
            }
            let ranges = grid::coalesce(&link.tab, plan.writes);
            for chunk in ranges.chunks(RANGES_PER_REQUEST) {
                let data: Vec<ValueRange> = chunk.iter().map(|(r, v)| ValueRange::new(r.clone(), v.clone())).collect();
                self.budget.take().await;
                report.requests += 1;
                self.client.batch_update_values(&link.spreadsheet_id, data, ValueInput::Raw).await?;
                report.ranges_written += chunk.len() as u64;
            }
            report.rows_written += plan.rows;
            state.rows_out += plan.rows;
            state.written_hash = Some(plan.hash);
            state.pending_writebacks = 0;
            // `last_version` stays the version read: our own write moved it, so the
            // next poll reads once more and finds nothing to do (or a person's edit).
            return Ok(());
        }
        tracing::warn!(link = %link.id, "the sheet kept changing during the sync; status cells wait for the next poll");
        Ok(())
    }

    /// Applies a read of the tab to the store; returns the cells to write.
    async fn apply(
        &self,
        link: &SheetLink,
        values: &[Vec<serde_json::Value>],
        state: &mut SyncState,
        report: &mut SyncReport,
        progress: Option<Progress>,
    ) -> anyhow::Result<Plan> {
        let h = link.header_row as usize;
        let header = values.get(h - 1).cloned().unwrap_or_default();
        let layout = grid::layout(&header, link).map_err(|e| anyhow::anyhow!("header row {h}: {e}"))?;
        let data = values.get(h..).unwrap_or_default();
        let opts = ImportOptions { default_region: self.default_region.clone(), ..Default::default() };
        let source = format!("sheet:{}", link.id);
        let rows = grid::parse_rows(data, link.header_row + 1, &layout, &opts, &source);
        *report = SyncReport { requests: report.requests, read: true, ..Default::default() };
        report.rows = rows.len() as u64;

        let stored_rows = self.store.sheet_rows(&link.id).await?;
        let mut known = Known::default();
        for r in &stored_rows {
            known.fingerprints.insert(r.contact_id.clone(), r.fingerprint.clone());
        }
        for id in grid::needs_phone(&rows, &known) {
            if let Some(c) = self.store.get_contact(&id).await? {
                known.phones.insert(id, c.phone);
            }
        }
        let matches = grid::match_rows(&rows, &known);

        let now = now_ms();
        let total = rows.len() as u64;
        let mut row_contact: Vec<Option<ContactId>> = vec![None; rows.len()];
        let mut row_issues: Vec<Vec<FieldError>> = vec![vec![]; rows.len()];
        let mut changed_rows: Vec<SheetRow> = Vec::new();
        let mut to_enroll: Vec<ContactId> = Vec::new();
        let mut present: HashSet<ContactId> = HashSet::new();
        for (i, (row, m)) in rows.iter().zip(matches).enumerate() {
            if i % 250 == 0
                && let Some(p) = &progress
            {
                p(i as u64, total);
            }
            let outcome = match m {
                Match::Unchanged(id) => Ok(id),
                Match::Invalid(errs, keeps) => {
                    if let Some(id) = keeps {
                        present.insert(id);
                    }
                    Err(errs)
                }
                Match::Changed(id) => self.apply_changed(row, &layout, &id, report).await?,
                Match::ByPhone => self.apply_by_phone(row, &layout, report).await?,
            };
            match outcome {
                Ok(id) => {
                    let unchanged = known.fingerprints.get(&id) == Some(&row.fingerprint);
                    if !unchanged {
                        changed_rows.push(SheetRow {
                            link_id: link.id.clone(),
                            contact_id: id.clone(),
                            fingerprint: row.fingerprint.clone(),
                            row_hint: row.row,
                            seen_at: now,
                        });
                        if !known.fingerprints.contains_key(&id) {
                            to_enroll.push(id.clone());
                        }
                    }
                    present.insert(id.clone());
                    row_contact[i] = Some(id);
                }
                Err(errs) => {
                    for e in &errs {
                        report.issues.push(RowIssue { row: row.row, field: e.field.clone(), reason: e.reason.clone() });
                    }
                    row_issues[i] = errs;
                }
            }
            // Save as we go, so a crash mid-sheet does not redo the rows already applied.
            if changed_rows.len() >= 500 {
                self.flush(link, &mut changed_rows, &mut to_enroll, report, now).await?;
            }
        }
        self.flush(link, &mut changed_rows, &mut to_enroll, report, now).await?;
        if let Some(p) = &progress {
            p(total, total);
        }
        report.valid_rows = row_contact.iter().filter(|c| c.is_some()).count() as u64;
        state.rows_in += report.created + report.updated + report.enrolled;

        // Rows gone from the sheet.
        let gone: Vec<ContactId> =
            stored_rows.iter().map(|r| r.contact_id.clone()).filter(|id| !present.contains(id)).collect();
        if !gone.is_empty() {
            if let (Some(campaign), switchboard_domain::sheet::OnRowDeleted::Cancel) =
                (&link.campaign_id, link.on_row_deleted)
            {
                for id in &gone {
                    let store = self.store.clone();
                    let cancelled = retry_stale(5, || {
                        let store = store.clone();
                        async move {
                            let Some(mut e) = store.find_enrollment(campaign, id).await? else { return Ok(false) };
                            if !e.cancel_waiting("row deleted from the sheet", now_ms()) {
                                return Ok(false);
                            }
                            store.replace_enrollment(&e).await.map(|_| true)
                        }
                    })
                    .await?;
                    report.cancelled += u64::from(cancelled);
                }
            }
            self.store.delete_sheet_rows(&link.id, &gone).await?;
        }

        // The owned cells to write.
        let enrollments = self.enrollments(link).await?;
        let mut writes = Vec::new();
        let mut rows_out = 0;
        for (c, name) in &layout.new_headers {
            writes.push((link.header_row - 1, *c, name.clone()));
        }
        for (i, row) in rows.iter().enumerate() {
            let id = row_contact[i].as_ref();
            let want = grid::desired_cells(link, id, id.and_then(|id| enrollments.get(id)), &row_issues[i]);
            let mut wrote = false;
            for (field, value) in want {
                if row.owned.get(&field).map(String::as_str).unwrap_or("") != value {
                    writes.push((row.row - 1, layout.owned[&field], value));
                    wrote = true;
                }
            }
            rows_out += u64::from(wrote);
        }
        let members: Vec<ContactId> = present.into_iter().collect();
        Ok(Plan { writes, rows: rows_out, hash: Self::wanted_hash(link, &members, &enrollments) })
    }

    async fn flush(
        &self,
        link: &SheetLink,
        rows: &mut Vec<SheetRow>,
        to_enroll: &mut Vec<ContactId>,
        report: &mut SyncReport,
        now: chrono::DateTime<Utc>,
    ) -> anyhow::Result<()> {
        if let Some(campaign) = &link.campaign_id
            && !to_enroll.is_empty()
        {
            report.enrolled += self.store.enroll(campaign, to_enroll, now).await?;
        }
        to_enroll.clear();
        if !rows.is_empty() {
            self.store.put_sheet_rows(rows).await?;
            rows.clear();
        }
        Ok(())
    }

    /// A link contact's row changed: the sheet's fields win.
    async fn apply_changed(
        &self,
        row: &grid::ParsedRow,
        layout: &grid::Layout,
        id: &ContactId,
        report: &mut SyncReport,
    ) -> anyhow::Result<Result<ContactId, Vec<FieldError>>> {
        let parsed = row.contact.as_ref().expect("changed rows are valid");
        let store = self.store.clone();
        let r = retry_stale(5, || {
            let store = store.clone();
            async move {
                let Some(stored) = store.get_contact(id).await? else { return Ok(None) };
                let mut next = grid::apply_row(&stored, parsed, &layout.fields);
                next.updated_at = stored.updated_at;
                if next == stored {
                    return Ok(Some(false));
                }
                next.updated_at = now_ms();
                store.replace_contact(&next).await.map(|_| Some(true))
            }
        })
        .await;
        match r {
            Ok(Some(changed)) => {
                report.updated += u64::from(changed);
                Ok(Ok(id.clone()))
            }
            // The contact was deleted through the API: the row makes a new one.
            Ok(None) => self.apply_by_phone(row, layout, report).await,
            Err(StoreError::Conflict { .. }) => Ok(Err(vec![FieldError::new(
                "phone",
                format!("{} belongs to another contact; fix the phone or clear sb_id", parsed.phone),
            )])),
            Err(e) => Err(e.into()),
        }
    }

    /// A row that is no link contact yet: adopt the stored contact with its phone, or create one.
    async fn apply_by_phone(
        &self,
        row: &grid::ParsedRow,
        layout: &grid::Layout,
        report: &mut SyncReport,
    ) -> anyhow::Result<Result<ContactId, Vec<FieldError>>> {
        let parsed = row.contact.as_ref().expect("matched rows are valid");
        for _ in 0..3 {
            match self.store.find_contact_by_phone(&parsed.phone).await? {
                Some(stored) => {
                    let mut next = grid::apply_row(&stored, parsed, &layout.fields);
                    next.updated_at = stored.updated_at;
                    if next != stored {
                        next.updated_at = now_ms();
                        match self.store.replace_contact(&next).await {
                            Ok(_) => report.updated += 1,
                            Err(StoreError::Stale(_)) => continue,
                            Err(e) => return Err(e.into()),
                        }
                    }
                    return Ok(Ok(stored.id));
                }
                None => match self.store.insert_contact(parsed).await {
                    Ok(()) => {
                        report.created += 1;
                        return Ok(Ok(parsed.id.clone()));
                    }
                    // Created by someone else meanwhile: adopt it on the next turn.
                    Err(StoreError::Conflict { .. }) => continue,
                    Err(e) => return Err(e.into()),
                },
            }
        }
        Ok(Err(vec![FieldError::new(
            "phone",
            "the contact kept changing while the row was applied; retried at the next sync",
        )]))
    }
}

/// A dry run of a link's mapping on the real sheet.
#[derive(Debug, Clone)]
pub struct Preview {
    /// Data rows.
    pub rows: u64,
    /// Header → contact field, for the people-owned columns.
    pub columns: Vec<(String, String)>,
    /// Status headers the first sync adds to the header row.
    pub new_headers: Vec<String>,
    /// The first rows as they would be stored: (sheet row, contact).
    pub preview: Vec<(u32, switchboard_domain::Contact)>,
    /// Invalid rows (first 100), with sheet row numbers.
    pub errors: Vec<RowIssue>,
}

impl SheetsSync {
    /// Reads the tab and shows how its rows would be stored, writing nothing.
    pub async fn preview(&self, link: &SheetLink, first: usize) -> anyhow::Result<Preview> {
        self.budget.take().await;
        let tab = format!("'{}'", link.tab.replace('\'', "''"));
        let values = self
            .client
            .get_values(&link.spreadsheet_id, &tab, ValueRender::Formatted)
            .await
            .map_err(|e| anyhow::anyhow!(self.explain(link, &anyhow::Error::new(e))))?
            .values;
        let h = link.header_row as usize;
        let header = values.get(h - 1).cloned().unwrap_or_default();
        let layout = grid::layout(&header, link).map_err(|e| anyhow::anyhow!("header row {h}: {e}"))?;
        let opts = ImportOptions { default_region: self.default_region.clone(), ..Default::default() };
        let rows =
            grid::parse_rows(values.get(h..).unwrap_or_default(), link.header_row + 1, &layout, &opts, "preview");
        let mut errors = Vec::new();
        let mut preview = Vec::new();
        for r in &rows {
            match &r.contact {
                Ok(c) if preview.len() < first => preview.push((r.row, c.clone())),
                Ok(_) => {}
                Err(errs) => errors.extend(errs.iter().map(|e| RowIssue {
                    row: r.row,
                    field: e.field.clone(),
                    reason: e.reason.clone(),
                })),
            }
        }
        errors.truncate(MAX_ROW_ISSUES);
        let columns = layout.fields.iter().map(|(c, f)| (grid::cell_text(header.get(*c)), f.clone())).collect();
        Ok(Preview {
            rows: rows.len() as u64,
            columns,
            new_headers: layout.new_headers.into_iter().map(|(_, h)| h).collect(),
            preview,
            errors,
        })
    }
}

/// The cells a cycle writes.
struct Plan {
    writes: Vec<grid::CellWrite>,
    /// Rows with at least one cell to write.
    rows: u64,
    /// [`SheetsSync::wanted_hash`] of the link's contacts after the cycle.
    hash: String,
}
