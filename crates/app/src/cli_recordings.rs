//! `switchboard recordings expire [--older-than-days N] [--apply]`: recording
//! retention by hand. A dry run by default (prints what would be deleted);
//! `--apply` deletes at the provider and marks the recordings deleted here.
//! Same rules as the `recording_retention` job (`jobs::retention`); safe to
//! re-run (what failed is retried, what was deleted is no longer due).

use std::process::ExitCode;

use clap::Subcommand;
use switchboard::config::Settings;
use switchboard::jobs::retention::{self, RetentionReport, Verdict};
use switchboard::{App, store};
use switchboard_domain::Recording;

#[derive(Subcommand)]
pub(crate) enum RecordingsCmd {
    /// Delete completed recordings older than N days (a dry run unless --apply).
    Expire {
        /// Age in days (default: `[recordings] retention_days`).
        #[arg(long)]
        older_than_days: Option<u32>,
        /// Delete at the provider and mark deleted here (default: only print what would be deleted).
        #[arg(long)]
        apply: bool,
    },
}

pub(crate) async fn run(settings: &Settings, cmd: RecordingsCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        RecordingsCmd::Expire { older_than_days, apply } => expire(settings, older_than_days, apply).await,
    }
}

async fn expire(settings: &Settings, older_than_days: Option<u32>, apply: bool) -> anyhow::Result<ExitCode> {
    let Some(days) = older_than_days.or(settings.recordings.retention_days) else {
        anyhow::bail!("--older-than-days is required when [recordings] retention_days is not set");
    };
    if days == 0 {
        anyhow::bail!("--older-than-days must be at least 1");
    }
    let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
    let twilio = App::provider_clients(settings).0;
    let store = store::open(settings).await?;
    store.migrate().await?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} recordings ({per_sec}) {elapsed} {msg}")
            .expect("static template is valid"),
    );
    let show = |r: &Recording, v: &Verdict, report: &RetentionReport| {
        let line = match v {
            Verdict::WouldDelete => {
                format!("would delete {} ({} {}, created {})", r.id, r.provider.as_str(), r.provider_id, r.created_at)
            }
            Verdict::Deleted => format!("deleted {} ({} {})", r.id, r.provider.as_str(), r.provider_id),
            Verdict::Skipped(why) => format!("skipped {} ({} {}): {why}", r.id, r.provider.as_str(), r.provider_id),
            Verdict::Failed(e) => format!("failed {} ({} {}): {e}", r.id, r.provider.as_str(), r.provider_id),
        };
        bar.println(line);
        bar.inc(1);
        bar.set_message(format!(
            "{} deleted, {} would be, {} skipped, {} failed",
            report.deleted, report.would_delete, report.skipped, report.failed
        ));
    };
    let report = retention::expire(&*store, twilio.as_ref(), cutoff, !apply, Some(&show)).await?;
    bar.finish_and_clear();
    if apply {
        println!(
            "recordings created before {cutoff}: {} deleted, {} skipped, {} failed (retry by running again)",
            report.deleted, report.skipped, report.failed
        );
    } else {
        println!(
            "dry run: recordings created before {cutoff}: {} would be deleted, {} would be skipped; run with --apply to delete",
            report.would_delete, report.skipped
        );
    }
    if report.more {
        println!("stopped after {} recordings kept this run; run again for the rest", retention::MAX_KEPT_PER_RUN);
    }
    Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
