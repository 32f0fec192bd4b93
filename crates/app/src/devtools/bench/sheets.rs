//! `switchboard bench --suite sheets`: the Google Sheets sync
//! ([`crate::jobs::sheets::SheetsSync`]) against the in-process simulator's
//! Google side, on a file-backed SQLite store in a temp dir, measured in one
//! run.
//!
//! 1. **First import** of a `rows`-row sheet (`phone,name,notes`) linked to a
//!    campaign: one `sync_now` creates the contacts, enrolls them and writes
//!    `sb_id` and the status cells back. Wall time, rows/s, Sheets + Drive
//!    requests (the link's own count and the simulator's), and the process's
//!    peak RSS before and after (Linux `VmHWM`; the simulator runs in the same
//!    process, so its copy of the sheet is included).
//! 2. **Write-back**: every enrollment of the campaign changes (retry_wait,
//!    attempts + 1, last outcome no_answer, as a finished unanswered call
//!    leaves it), then one `sync_now`: wall time and requests. The point: a
//!    handful of requests, not one per row.
//! 3. **Idle poll**: after one forced sync that settles the version our own
//!    write moved, a scheduled poll (`poll_all`) with nothing changed: wall
//!    time and requests (one Drive `files.get`).
//!
//! The budget is set high (as in the end-to-end test) so it never throttles
//! the figures; every phase stays far under Google's 60 requests/minute
//! anyway. Figures go to the README; nothing here asserts a speed.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::Value;
use switchboard_domain::sheet::{SheetLinkInput, StatusField};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CampaignId, CampaignInput, EnrollmentStatus, Outcome, SheetLink, SheetLinkId};
use switchboard_storage::{PageRequest, Storage};
use switchboard_storage_sqlite::{SqliteOptions, SqliteStore};

use super::calls::Machine;
use crate::integrations::ClientOptions;
use crate::integrations::google::{ServiceAccountKey, SheetsClient, TokenSource};
use crate::jobs::runner::Runner;
use crate::jobs::sheets::{Budget, Progress, SheetsSync};
use crate::sim::google::{GoogleRequestCounts, NewSpreadsheet, NewTab, SANDBOX_ACCOUNT, SANDBOX_KEY_JSON};
use crate::sim::{SimHandle, SimSettings, Simulator};

/// Options.
#[derive(Debug, Clone)]
pub struct SheetsBenchOptions {
    /// Data rows in the sheet (and status changes written back).
    pub rows: u64,
    /// Show a progress bar during the first import.
    pub progress: bool,
}

/// Requests of one phase, as the link counted them and as the simulator received them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Requests {
    /// Sheets and Drive requests the sync counted (`link.state.requests`).
    pub link: u64,
    /// Sheets API requests the simulator received.
    pub sheets: u64,
    /// Drive API requests the simulator received.
    pub drive: u64,
    /// Token endpoint requests the simulator received (not counted by the link).
    pub token: u64,
}

/// One timed phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct Phase {
    /// Wall time of the sync call.
    pub elapsed: Duration,
    /// Requests it made.
    pub requests: Requests,
}

/// Results.
#[derive(Debug, Clone)]
pub struct SheetsBenchReport {
    /// Where it ran.
    pub machine: Machine,
    /// Data rows in the sheet.
    pub rows: u64,
    /// Size of the sheet as CSV.
    pub csv_bytes: u64,
    /// First import (one `sync_now`).
    pub import: Phase,
    /// Valid rows the first import saw.
    pub imported_valid_rows: u64,
    /// Enrollments pending after the first import.
    pub enrolled: u64,
    /// Rows whose `sb_id` and status cells the first import wrote.
    pub import_rows_written: u64,
    /// Peak RSS before the import (KiB).
    pub rss_before_kib: Option<u64>,
    /// Peak RSS after the import (KiB).
    pub rss_after_kib: Option<u64>,
    /// Enrollments changed before the write-back.
    pub changes: u64,
    /// The write-back (one `sync_now`).
    pub writeback: Phase,
    /// Rows whose status cell reads `retry_wait` after the write-back.
    pub writeback_rows_verified: u64,
    /// The forced sync after the write-back (reads once more because our own write moved the version).
    pub settle: Phase,
    /// A scheduled poll with nothing changed.
    pub idle: Phase,
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()
}

const TAB: &str = "Leads";

fn phone(i: u64) -> String {
    format!("+1415{:07}", 3_000_000 + i)
}

fn client(sim: &SimHandle) -> anyhow::Result<SheetsClient> {
    let mut key: Value = serde_json::from_str(SANDBOX_KEY_JSON)?;
    key["token_uri"] = format!("{}/token", sim.base_url).into();
    let key = ServiceAccountKey::from_json(&key.to_string()).map_err(|e| anyhow::anyhow!("sandbox key: {e}"))?;
    let opts = ClientOptions::default();
    let tokens = TokenSource::new(key, &["https://www.googleapis.com/auth/spreadsheets"], &opts)?;
    Ok(SheetsClient::new(&sim.base_url, &sim.base_url, Arc::new(tokens), &opts))
}

/// Requests since `before`, with the link's count since `link_before`.
fn requests_since(sim: &SimHandle, before: GoogleRequestCounts, link: &SheetLink, link_before: u64) -> Requests {
    let now = sim.sim.google_requests();
    Requests {
        link: link.state.requests - link_before,
        sheets: now.sheets - before.sheets,
        drive: now.drive - before.drive,
        token: now.token - before.token,
    }
}

/// Marks every waiting enrollment of the campaign as called once, unanswered.
async fn change_every_enrollment(store: &dyn Storage, campaign: &CampaignId) -> anyhow::Result<u64> {
    let mut all = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let p = store.list_enrollments(campaign, &[], &page).await?;
        all.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let mut n = 0;
    for mut e in all.into_iter().filter(|e| e.status.is_waiting()) {
        e.status = EnrollmentStatus::RetryWait;
        e.attempts += 1;
        e.last_outcome = Some(Outcome::NoAnswer);
        e.updated_at = now_ms();
        store.replace_enrollment(&e).await?;
        n += 1;
    }
    Ok(n)
}

/// Data rows of the tab whose status cell reads `status`.
fn rows_with_status(sim: &SimHandle, sheet: &str, header: &str, status: &str) -> anyhow::Result<u64> {
    let values = sim.sim.spreadsheet_values(sheet, TAB).context("reading the tab")?;
    let col = values
        .first()
        .and_then(|h| h.iter().position(|v| v.as_str() == Some(header)))
        .with_context(|| format!("no `{header}` column in the tab"))?;
    Ok(values.iter().skip(1).filter(|r| r.get(col).and_then(Value::as_str) == Some(status)).count() as u64)
}

/// A scheduled poll of the link once it is due (polls that find it not yet due cost nothing).
async fn idle_poll(sync: &SheetsSync, wait_up_to: Duration) -> anyhow::Result<Duration> {
    let deadline = Instant::now() + wait_up_to;
    loop {
        let started = Instant::now();
        if sync.poll_all().await? == 1 {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(Instant::now() < deadline, "the link never came due for a poll");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the three phases.
pub async fn run(opts: SheetsBenchOptions) -> anyhow::Result<SheetsBenchReport> {
    anyhow::ensure!(opts.rows >= 1 && opts.rows <= 9_000_000, "rows must be 1-9,000,000");
    let tmp = tempfile::Builder::new().prefix("switchboard-bench-sheets-").tempdir()?;
    let store: Arc<dyn Storage> = Arc::new(SqliteStore::open(tmp.path().join("bench.db"), SqliteOptions::default())?);
    store.migrate().await?;
    let sim = Simulator::spawn(SimSettings::default(), "127.0.0.1:0".parse().expect("address")).await?;

    let mut csv = String::from("phone,name,notes\n");
    for i in 0..opts.rows {
        csv.push_str(&format!("{},Person {i},note {i}\n", phone(i)));
    }
    let csv_bytes = csv.len() as u64;
    let sheet = sim
        .sim
        .create_spreadsheet(NewSpreadsheet {
            sheets: vec![NewTab { title: TAB.into(), csv: Some(csv), values: None }],
            ..Default::default()
        })
        .map_err(|e| anyhow::anyhow!("creating the spreadsheet: {e}"))?;

    let campaign = CampaignInput {
        name: Some("Sheet leads".into()),
        agent: Some(switchboard_domain::campaign::AgentSettings {
            agent_id: "agent_bench".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
    .apply(None, now_ms())
    .map_err(|e| anyhow::anyhow!("bench campaign: {e:?}"))?;
    store.insert_campaign(&campaign).await?;
    let input: SheetLinkInput = serde_json::from_value(serde_json::json!({
        "spreadsheet": sheet, "tab": TAB, "campaign_id": campaign.id.to_string(), "poll_secs": 5,
    }))?;
    let link = SheetLink::create(input, now_ms()).map_err(|e| anyhow::anyhow!("bench link: {e:?}"))?;
    let id: SheetLinkId = link.id.clone();
    let status_header = link.status_columns.get(&StatusField::Status).cloned().context("status column")?;
    store.insert_sheet_link(&link).await?;
    let sync = SheetsSync::new(
        store.clone(),
        client(&sim)?,
        Arc::new(Budget::new(100_000)),
        Runner::new(store.clone(), "bench-sheets"),
        "US",
        SANDBOX_ACCOUNT,
    );

    // 1. First import.
    let bar = if opts.progress {
        indicatif::ProgressBar::new(opts.rows).with_style(
            indicatif::ProgressStyle::with_template("first import {bar:30} {pos}/{len} rows ({per_sec}) {elapsed}")
                .expect("template"),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let progress: Progress = {
        let bar = bar.clone();
        Arc::new(move |done, total| {
            bar.set_length(total);
            bar.set_position(done);
        })
    };
    tracing::info!(rows = opts.rows, "first import");
    let rss_before_kib = peak_rss_kib();
    let counts = sim.sim.google_requests();
    let started = Instant::now();
    let l = sync.sync_now(&id, Some(progress)).await?;
    let import_elapsed = started.elapsed();
    bar.finish_and_clear();
    let rss_after_kib = peak_rss_kib();
    anyhow::ensure!(l.state.last_error.is_none(), "first import failed: {:?}", l.state.last_error);
    let import = Phase { elapsed: import_elapsed, requests: requests_since(&sim, counts, &l, 0) };
    let enrolled = store
        .count_enrollments(&campaign.id)
        .await?
        .into_iter()
        .filter(|(s, _)| *s == EnrollmentStatus::Pending)
        .map(|(_, n)| n)
        .sum();
    let (imported_valid_rows, import_rows_written) = (l.state.valid_rows, l.state.rows_out);

    // 2. Write-back of a status change on every enrollment.
    tracing::info!(rows = opts.rows, "changing every enrollment");
    let changes = change_every_enrollment(&*store, &campaign.id).await?;
    tracing::info!(changes, "write-back");
    let (counts, before) = (sim.sim.google_requests(), l.state.requests);
    let started = Instant::now();
    let l = sync.sync_now(&id, None).await?;
    let writeback = Phase { elapsed: started.elapsed(), requests: requests_since(&sim, counts, &l, before) };
    anyhow::ensure!(l.state.last_error.is_none(), "write-back failed: {:?}", l.state.last_error);
    let writeback_rows_verified = rows_with_status(&sim, &sheet, &status_header, "retry_wait")?;

    // 3. Settle (our own write moved the version), then an idle scheduled poll.
    let (counts, before) = (sim.sim.google_requests(), l.state.requests);
    let started = Instant::now();
    let l = sync.sync_now(&id, None).await?;
    let settle = Phase { elapsed: started.elapsed(), requests: requests_since(&sim, counts, &l, before) };
    tracing::info!("waiting for the link's next poll ({} s)", l.poll_secs);
    let (counts, before) = (sim.sim.google_requests(), l.state.requests);
    let elapsed = idle_poll(&sync, Duration::from_secs(u64::from(l.poll_secs) + 30)).await?;
    let l = store.get_sheet_link(&id).await?.context("link")?;
    anyhow::ensure!(l.state.last_error.is_none(), "idle poll failed: {:?}", l.state.last_error);
    let idle = Phase { elapsed, requests: requests_since(&sim, counts, &l, before) };

    Ok(SheetsBenchReport {
        machine: Machine::detect(),
        rows: opts.rows,
        csv_bytes,
        import,
        imported_valid_rows,
        enrolled,
        import_rows_written,
        rss_before_kib,
        rss_after_kib,
        changes,
        writeback,
        writeback_rows_verified,
        settle,
        idle,
    })
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn per_thousand(requests: u64, rows: u64) -> f64 {
    requests as f64 * 1000.0 / rows.max(1) as f64
}

impl fmt::Display for Requests {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({} Sheets + {} Drive", self.link, self.sheets, self.drive)?;
        if self.token > 0 {
            write!(f, "; + {} token", self.token)?;
        }
        write!(f, ")")
    }
}

impl fmt::Display for SheetsBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(
            f,
            "Machine: {} CPUs, {}, {} {}; embedded SQLite (file, temp dir); in-process simulator (Google side, no faults)",
            m.nproc,
            m.cpu.as_deref().unwrap_or("unknown CPU"),
            m.os,
            m.arch
        )?;
        writeln!(f)?;
        writeln!(f, "| Phase | Wall time | Requests (Sheets + Drive) | Requests per 1,000 rows |")?;
        writeln!(f, "| --- | --- | --- | --- |")?;
        writeln!(
            f,
            "| First import of {} rows ({:.2} MB as CSV): {} contacts enrolled, {} rows written back | {:.2} s, **{:.0} rows/s** | {} | {:.2} |",
            self.rows,
            self.csv_bytes as f64 / 1e6,
            self.enrolled,
            self.import_rows_written,
            self.import.elapsed.as_secs_f64(),
            per_sec(self.rows, self.import.elapsed),
            self.import.requests,
            per_thousand(self.import.requests.link, self.rows)
        )?;
        writeln!(
            f,
            "| Write-back of {} status changes ({} rows read back as retry_wait) | {:.2} s | **{}** | {:.2} |",
            self.changes,
            self.writeback_rows_verified,
            self.writeback.elapsed.as_secs_f64(),
            self.writeback.requests,
            per_thousand(self.writeback.requests.link, self.changes)
        )?;
        writeln!(
            f,
            "| Next sync (reads once more: our own write moved the version) | {:.3} s | {} | {:.2} |",
            self.settle.elapsed.as_secs_f64(),
            self.settle.requests,
            per_thousand(self.settle.requests.link, self.rows)
        )?;
        writeln!(
            f,
            "| Idle poll (nothing changed) | {:.3} s | **{}** | {:.2} |",
            self.idle.elapsed.as_secs_f64(),
            self.idle.requests,
            per_thousand(self.idle.requests.link, self.rows)
        )?;
        if let (Some(a), Some(b)) = (self.rss_before_kib, self.rss_after_kib) {
            writeln!(
                f,
                "| Peak RSS before → after the first import (simulator in the same process) | {:.1} MB → {:.1} MB (+{:.1} MB) | | |",
                a as f64 / 1024.0,
                b as f64 / 1024.0,
                b.saturating_sub(a) as f64 / 1024.0
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Structural facts only (never timings): every row is imported, a
    /// write-back of every row is a handful of requests, an idle poll is one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_sheet_imports_every_row_writes_back_in_a_handful_of_requests_and_idles_on_one() {
        let r = run(SheetsBenchOptions { rows: 200, progress: false }).await.unwrap();
        assert_eq!((r.imported_valid_rows, r.enrolled, r.import_rows_written), (200, 200, 200), "{r:#?}");
        assert_eq!(r.import.requests.link, r.import.requests.sheets + r.import.requests.drive, "{r:#?}");
        assert_eq!((r.changes, r.writeback_rows_verified), (200, 200), "{r:#?}");
        assert!(r.writeback.requests.link <= 5, "write-back took {:?}", r.writeback.requests);
        assert_eq!(r.writeback.requests.link, r.writeback.requests.sheets + r.writeback.requests.drive);
        assert_eq!(r.idle.requests, Requests { link: 1, sheets: 0, drive: 1, token: 0 }, "{r:#?}");
        let shown = r.to_string();
        assert!(shown.contains("Idle poll") && shown.contains("Write-back of 200"), "{shown}");
    }
}
