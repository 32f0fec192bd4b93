//! `switchboard reconcile --since …` (backfill conversations whose webhook
//! never arrived) and `switchboard analyze --since …` (re-run the analyser
//! over stored transcripts whose analysis is missing or from an older
//! analyser version). Both show progress and can be re-run safely.

use std::process::ExitCode;

use chrono::{DateTime, NaiveDate, Utc};
use futures::TryStreamExt;
use switchboard::config::Settings;
use switchboard::{App, store};
use switchboard_storage::{PageRequest, TranscriptFilter, pages};

/// `2026-11-01` or an RFC 3339 instant.
pub(crate) fn parse_since(s: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|_| anyhow::anyhow!("--since {s}: expected YYYY-MM-DD or an RFC 3339 time"))?;
    Ok(d.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc())
}

pub(crate) async fn reconcile(settings: &Settings, since: &str) -> anyhow::Result<ExitCode> {
    let since = parse_since(since)?;
    let Some(client) = App::provider_clients(settings).1 else {
        anyhow::bail!("ELEVENLABS_API_KEY is not configured: the reconciler asks ElevenLabs for conversations");
    };
    let store = store::open(settings).await?;
    store.migrate().await?;
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("static template is valid"),
    );
    let show = |r: &switchboard::jobs::reconciler::ReconcileReport| {
        bar.set_message(format!(
            "{} listed, {} recovered, {} up to date, {} failed",
            r.listed, r.recovered, r.up_to_date, r.failed
        ));
        bar.tick();
    };
    let report =
        switchboard::jobs::reconciler::reconcile(&*store, &client, since, &settings.analysis, Some(&show)).await?;
    bar.finish_and_clear();
    println!(
        "conversations since {since}: {} listed, {} recovered, {} already up to date, {} not fetched",
        report.listed, report.recovered, report.up_to_date, report.failed
    );
    Ok(if report.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

pub(crate) async fn analyze(settings: &Settings, since: &str, all: bool) -> anyhow::Result<ExitCode> {
    let since = parse_since(since)?;
    let store = store::open(settings).await?;
    store.migrate().await?;
    let filter = TranscriptFilter { started_after: Some(since), ..Default::default() };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} analysed {pos} transcripts ({per_sec}) {elapsed} {msg}")
            .expect("static template is valid"),
    );
    let (mut seen, mut analysed) = (0u64, 0u64);
    let s = store.clone();
    let f = filter.clone();
    let mut stream = std::pin::pin!(pages(200, move |p: PageRequest| {
        let (s, f) = (s.clone(), f.clone());
        async move { s.list_transcripts(&f, &p).await }
    }));
    while let Some(batch) = stream.try_next().await? {
        for mut t in batch {
            seen += 1;
            if all || switchboard::analysis::stale(&t) {
                t.analysis = None;
                t.analyzer_version = None;
                let gazetteers = settings.analysis.gazetteers_for(t.agent_id.as_deref());
                switchboard::analysis::apply_with(&mut t, &gazetteers);
                t.updated_at = switchboard_domain::time::now_ms();
                store.upsert_transcript(&t).await?;
                analysed += 1;
                bar.inc(1);
            }
        }
        bar.set_message(format!("({seen} read)"));
    }
    bar.finish_and_clear();
    println!(
        "transcripts since {since}: {seen} read, {analysed} analysed with analyser version {}",
        switchboard_analysis::ANALYZER_VERSION
    );
    Ok(ExitCode::SUCCESS)
}
