//! `switchboard sheets …`: Google Sheets links from the command line (the
//! same store and sync as the API's `/api/v1/sheet-links`).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;
use switchboard::config::Settings;
use switchboard::http::sheets::SheetLinkOut;
use switchboard::jobs::sheets::{SheetsSync, SyncError};
use switchboard::{integrations, jobs, store};
use switchboard_domain::sheet::{SheetLinkInput, SyncStatus};
use switchboard_domain::time::now_ms;
use switchboard_domain::{SheetLink, SheetLinkId};
use switchboard_storage::{PageRequest, Storage};

#[derive(Subcommand)]
pub(crate) enum SheetsCmd {
    /// Link a spreadsheet tab to a campaign (or to the contact list); prints the link id.
    Link {
        /// Spreadsheet id, or its `docs.google.com/spreadsheets/d/…` URL.
        #[arg(long)]
        spreadsheet: String,
        /// Tab title (default `Sheet1`).
        #[arg(long)]
        tab: Option<String>,
        /// Campaign the rows are enrolled in (`cmp_…`); omit for a contact list.
        #[arg(long)]
        campaign: Option<String>,
        /// 1-based header row (default 1).
        #[arg(long)]
        header_row: Option<u32>,
        /// Header → field mapping, `Header=field` (repeatable), e.g. `--map "Cell Phone=phone"`.
        #[arg(long = "map", value_name = "HEADER=FIELD")]
        mapping: Vec<String>,
        /// Seconds between polls of the sheet (5..=86400, default 60).
        #[arg(long)]
        poll_secs: Option<u32>,
    },
    /// One line per link: id, spreadsheet, tab, campaign, status, last sync, rows, last error.
    List,
    /// A link's settings and sync state, as JSON.
    Status {
        /// Link id (`lnk_…`).
        link: String,
    },
    /// How the link's mapping reads the real sheet (nothing is written; needs Google configured).
    Preview {
        /// Link id (`lnk_…`).
        link: String,
        /// Rows to show.
        #[arg(long, default_value_t = 10)]
        rows: usize,
    },
    /// Sync a link now, with a progress bar; exits non-zero if the link ends in `error`.
    Sync {
        /// Link id (`lnk_…`).
        link: String,
    },
    /// Delete a link (contacts, enrollments and calls stay; the sheet is not touched).
    Unlink {
        /// Link id (`lnk_…`).
        link: String,
    },
}

pub(crate) async fn run(settings: &Settings, cmd: SheetsCmd) -> anyhow::Result<ExitCode> {
    let store = store::open(settings).await?;
    store.migrate().await?;
    match cmd {
        SheetsCmd::Link { spreadsheet, tab, campaign, header_row, mapping, poll_secs } => {
            let mut map = BTreeMap::new();
            let mut bad = Vec::new();
            for m in &mapping {
                match m.split_once('=') {
                    Some((h, f)) if !h.trim().is_empty() && !f.trim().is_empty() => {
                        map.insert(h.trim().to_owned(), f.trim().to_owned());
                    }
                    _ => bad.push(format!("  map: `{m}`: expected Header=field")),
                }
            }
            let input = SheetLinkInput {
                spreadsheet: Some(spreadsheet),
                tab,
                header_row,
                campaign_id: campaign,
                mapping: (!map.is_empty()).then_some(map),
                status_columns: None,
                on_row_deleted: None,
                poll_secs,
                paused: None,
            };
            let link = match SheetLink::create(input, now_ms()) {
                Ok(link) if bad.is_empty() => link,
                Ok(_) => return invalid(bad),
                Err(errors) => {
                    bad.extend(errors.into_iter().map(|e| format!("  {}: {}", e.field, e.reason)));
                    return invalid(bad);
                }
            };
            if let Some(c) = &link.campaign_id
                && store.get_campaign(c).await?.is_none()
            {
                return invalid(vec![format!("  campaign_id: no such campaign {c}")]);
            }
            store.insert_sheet_link(&link).await?;
            println!("{}", link.id);
        }
        SheetsCmd::List => {
            let mut page = PageRequest { limit: 200, cursor: None };
            let mut any = false;
            loop {
                let p = store.list_sheet_links(&page).await?;
                for l in p.items {
                    any = true;
                    let o = SheetLinkOut::from(l);
                    println!(
                        "{}  {}  tab={}  campaign={}  status={}  last_sync={}  rows={}  last_error={}",
                        o.id,
                        o.spreadsheet_id,
                        o.tab,
                        o.campaign_id.as_deref().unwrap_or("-"),
                        o.state.status.as_deref().unwrap_or("-"),
                        o.state.last_sync_at.map(|t| t.to_rfc3339()).unwrap_or_else(|| "never".into()),
                        o.state.rows,
                        o.state.last_error.as_deref().unwrap_or("-"),
                    );
                }
                match p.next_cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            if !any {
                eprintln!("no sheet links");
            }
        }
        SheetsCmd::Status { link } => {
            let link = load(&*store, &link).await?;
            println!("{}", serde_json::to_string_pretty(&SheetLinkOut::from(link))?);
        }
        SheetsCmd::Preview { link, rows } => {
            let link = load(&*store, &link).await?;
            let sync = sync_of(settings, store.clone())?;
            let p = sync.preview(&link, rows.clamp(1, 100)).await.map_err(|e| anyhow::anyhow!("preview: {e:#}"))?;
            println!("{} data rows in {} / {}", p.rows, link.spreadsheet_id, link.tab);
            println!("columns:");
            for (header, field) in &p.columns {
                println!("  {header} -> {field}");
            }
            if !p.new_headers.is_empty() {
                println!("status headers the first sync adds: {}", p.new_headers.join(", "));
            }
            println!("preview:");
            for (row, c) in &p.preview {
                println!("  row {row}: {} {}", c.phone, c.name.as_deref().unwrap_or(""));
            }
            println!("errors: {}", p.errors.len());
            for e in &p.errors {
                println!("  row {}: {}: {}", e.row, e.field, e.reason);
            }
        }
        SheetsCmd::Sync { link } => {
            let id = link_id(&link)?;
            let sync = sync_of(settings, store.clone())?;
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} rows ({per_sec}) {elapsed}")
                    .expect("valid template"),
            );
            let b = bar.clone();
            let progress: jobs::sheets::Progress = Arc::new(move |done: u64, total: u64| {
                b.set_length(total);
                b.set_position(done);
            });
            let result = sync.sync_now(&id, Some(progress)).await;
            bar.finish_and_clear();
            let link = match result {
                Ok(link) => link,
                Err(SyncError::NotFound) => anyhow::bail!("no sheet link {id}"),
                Err(SyncError::Busy) => anyhow::bail!("a sync of {id} is running; try again when it ends"),
                Err(SyncError::Store(e)) => return Err(e.into()),
            };
            let failed = link.state.status == Some(SyncStatus::Error);
            let o = SheetLinkOut::from(link);
            let s = &o.state;
            println!(
                "{}: status {}: {} rows, {} valid, {} issues, {} requests (in total: {} row changes applied, {} rows written back)",
                o.id,
                s.status.as_deref().unwrap_or("-"),
                s.rows,
                s.valid_rows,
                s.row_issues.len(),
                s.requests,
                s.rows_in,
                s.rows_out
            );
            for i in s.row_issues.iter().take(20) {
                println!("  row {}: {}: {}", i.row, i.field, i.reason);
            }
            if let Some(e) = &s.last_error {
                println!("last_error: {e}");
            }
            if failed {
                return Ok(ExitCode::from(1));
            }
        }
        SheetsCmd::Unlink { link } => {
            let id = link_id(&link)?;
            if !store.delete_sheet_link(&id).await? {
                anyhow::bail!("no sheet link {id}");
            }
            println!("unlinked {id}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn invalid(lines: Vec<String>) -> anyhow::Result<ExitCode> {
    eprintln!("invalid sheet link:");
    for l in lines {
        eprintln!("{l}");
    }
    Ok(ExitCode::from(1))
}

fn link_id(id: &str) -> anyhow::Result<SheetLinkId> {
    SheetLinkId::parse(id).map_err(|e| anyhow::anyhow!("{id}: {e}"))
}

async fn load(store: &dyn Storage, id: &str) -> anyhow::Result<SheetLink> {
    let id = link_id(id)?;
    store.get_sheet_link(&id).await?.ok_or_else(|| anyhow::anyhow!("no sheet link {id}"))
}

/// The sync, built as `App::build` builds it (without starting any job).
fn sync_of(settings: &Settings, store: Arc<dyn Storage>) -> anyhow::Result<SheetsSync> {
    let opts = integrations::ClientOptions { retry: integrations::google::default_retry(), ..Default::default() };
    let Some(client) = settings.google.sheets_client(&opts)? else {
        anyhow::bail!(
            "no Google service account is configured: set SWITCHBOARD_GOOGLE__CREDENTIALS_FILE (or GOOGLE_APPLICATION_CREDENTIALS) to a service-account key file"
        );
    };
    let account = settings.google.service_account()?.map(|k| k.client_email).unwrap_or_default();
    let owner = format!("cli-{}", uuid::Uuid::new_v4().simple());
    Ok(SheetsSync::new(
        store.clone(),
        client,
        Arc::new(jobs::sheets::Budget::new(settings.sheets.requests_per_minute)),
        jobs::runner::Runner::new(store, owner),
        settings.contacts.default_region.clone(),
        account,
    )
    .with_lease(chrono::Duration::seconds(settings.sheets.lease_secs as i64)))
}
