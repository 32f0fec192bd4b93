//! `switchboard analytics rebuild --since …`: rebuilds the `analytics`
//! rollups of every hour from a date to now (and the reporting zone's days
//! they touch) from raw calls — a backfill, or a repair after changing
//! `analytics.reporting_tz`. Safe to re-run and to run beside `serve`
//! (a bucket rebuild replaces the bucket whole).

use std::process::ExitCode;

use switchboard::config::Settings;
use switchboard::store;

/// What `analytics` does.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum AnalyticsCmd {
    /// Rebuild the rollups from raw calls.
    Rebuild {
        /// `YYYY-MM-DD` or an RFC 3339 time.
        #[arg(long)]
        since: String,
    },
}

pub(crate) async fn run(settings: &Settings, cmd: AnalyticsCmd) -> anyhow::Result<ExitCode> {
    let AnalyticsCmd::Rebuild { since } = cmd;
    let since = crate::cli_conversations::parse_since(&since)?;
    let store = store::open(settings).await?;
    store.migrate().await?;
    let tz = settings.analytics.tz();
    let to = chrono::Utc::now() + chrono::Duration::hours(1);
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} hours ({per_sec}) {elapsed}")
            .expect("static template is valid"),
    );
    let show = |done: u64, total: u64| {
        bar.set_length(total);
        bar.set_position(done);
    };
    let report = switchboard::jobs::rollups::rebuild_range(&*store, tz, since, to, Some(&show)).await?;
    bar.finish_and_clear();
    println!(
        "analytics rebuilt since {since} ({}): {} hours, {} buckets, {} rollup rows",
        tz.name(),
        report.hours,
        report.buckets,
        report.rows
    );
    Ok(ExitCode::SUCCESS)
}
