//! Recording retention: recordings older than `[recordings] retention_days`
//! are deleted at the provider and marked `deleted` here (status `deleted`,
//! `deleted_at` set; the domain merge keeps `deleted` final, and the API then
//! shows no media link). Off unless `retention_days` is set; a dry run (the
//! default) only counts and logs what would be deleted.
//!
//! - Twilio recordings: `DELETE …/Recordings/{sid}.json` (a 404 counts as
//!   deleted: someone deleted it already).
//! - ElevenLabs audio: skipped with a logged reason. ElevenLabs has no
//!   audio-only delete (`DELETE /v1/convai/conversations/{id}` deletes the
//!   whole conversation, transcript included) and our simulator does not
//!   model that route, so we do not call it.
//!
//! A leased job (`recording_retention`): one instance at a time. Errors are
//! per recording (logged, counted, retried next run: the recording stays
//! `completed`, so the next run lists it again); they never abort the run.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
use switchboard_domain::{Recording, RecordingId};
use switchboard_storage::Storage;

use crate::integrations::twilio::TwilioClient;

/// Lease name of the job.
pub const NAME: &str = "recording_retention";
/// Metric: recordings deleted by retention (at the provider and here).
pub const DELETED: &str = "switchboard_recordings_expired_total";
/// Recordings read per store query.
const PAGE: u32 = 200;
/// Most recordings one run looks at without deleting them (dry run, skipped,
/// failed): past this the run stops and says so (`more`); the next run goes on.
pub const MAX_KEPT_PER_RUN: usize = 20_000;

/// What one run did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RetentionReport {
    /// Only counted, nothing deleted.
    pub dry_run: bool,
    /// Recordings created before this were due.
    pub cutoff: Option<DateTime<Utc>>,
    /// Completed recordings older than the cutoff that were looked at.
    pub due: u64,
    /// Dry run: would be deleted (at the provider and here).
    pub would_delete: u64,
    /// Deleted at the provider and marked deleted here.
    pub deleted: u64,
    /// Not deletable by this job (ElevenLabs audio: no audio-only delete; Twilio without credentials).
    pub skipped: u64,
    /// Failed this time (provider or store error); retried next run.
    pub failed: u64,
    /// The run stopped at [`MAX_KEPT_PER_RUN`]; more due recordings remain.
    pub more: bool,
}

/// What happened to one due recording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Dry run: would be deleted.
    WouldDelete,
    /// Deleted at the provider and marked here.
    Deleted,
    /// Not deletable by this job (the reason).
    Skipped(String),
    /// Failed (the error); retried next run.
    Failed(String),
}

/// Called after each due recording with what happened to it and the counts so far.
pub type Progress<'a> = dyn Fn(&Recording, &Verdict, &RetentionReport) + Send + Sync + 'a;

/// Why a recording of `provider` cannot be deleted by this job (`None`: it can).
fn skip_reason(r: &Recording, twilio: Option<&TwilioClient>) -> Option<String> {
    match r.provider {
        RecordingProvider::Twilio if twilio.is_none() => {
            Some("no Twilio credentials configured: cannot delete Twilio recordings".into())
        }
        RecordingProvider::Twilio => None,
        RecordingProvider::Elevenlabs => Some(
            "ElevenLabs has no audio-only delete (deleting the conversation would delete its transcript too); \
             not deleted"
                .into(),
        ),
    }
}

/// Deletes (or, in a dry run, reports) every completed recording created
/// before `cutoff`, oldest first. `progress` is called after each recording.
pub async fn expire(
    store: &dyn Storage,
    twilio: Option<&TwilioClient>,
    cutoff: DateTime<Utc>,
    dry_run: bool,
    progress: Option<&Progress<'_>>,
) -> anyhow::Result<RetentionReport> {
    let mut report = RetentionReport { dry_run, cutoff: Some(cutoff), ..Default::default() };
    // Recordings looked at and still listed (dry run, skipped, failed): the
    // list is "what is still due", so these are read past on the next query.
    let mut kept: HashSet<RecordingId> = HashSet::new();
    loop {
        if kept.len() >= MAX_KEPT_PER_RUN {
            report.more = true;
            break;
        }
        let limit = PAGE.saturating_add(kept.len() as u32);
        let batch = store.recordings_to_expire(cutoff, limit).await?;
        let full = batch.len() as u32 >= limit;
        let fresh: Vec<Recording> = batch.into_iter().filter(|r| !kept.contains(&r.id)).collect();
        if fresh.is_empty() {
            break;
        }
        for r in fresh {
            report.due += 1;
            let verdict = expire_one(store, twilio, &r, dry_run).await;
            match &verdict {
                Verdict::WouldDelete => {
                    tracing::info!(recording_id = %r.id, provider = %r.provider.as_str(), provider_id = %r.provider_id,
                        created_at = %r.created_at, "retention (dry run): would delete recording");
                    report.would_delete += 1;
                }
                Verdict::Deleted => {
                    tracing::info!(recording_id = %r.id, provider = %r.provider.as_str(), provider_id = %r.provider_id,
                        "retention: recording deleted");
                    metrics::counter!(DELETED).increment(1);
                    report.deleted += 1;
                }
                Verdict::Skipped(why) => {
                    tracing::info!(recording_id = %r.id, provider = %r.provider.as_str(), provider_id = %r.provider_id,
                        reason = %why, "retention: recording skipped");
                    report.skipped += 1;
                }
                Verdict::Failed(e) => {
                    tracing::warn!(recording_id = %r.id, provider = %r.provider.as_str(), provider_id = %r.provider_id,
                        error = %e, "retention: recording not deleted; retried next run");
                    report.failed += 1;
                }
            }
            if verdict != Verdict::Deleted {
                kept.insert(r.id.clone());
            }
            if let Some(p) = progress {
                p(&r, &verdict, &report);
            }
        }
        if !full {
            // Everything due was in this batch; what was deleted left the list, the rest is kept.
            break;
        }
    }
    Ok(report)
}

/// One due recording: deleted at the provider, then marked deleted here.
pub async fn expire_one(store: &dyn Storage, twilio: Option<&TwilioClient>, r: &Recording, dry_run: bool) -> Verdict {
    if let Some(why) = skip_reason(r, twilio) {
        return Verdict::Skipped(why);
    }
    if dry_run {
        return Verdict::WouldDelete;
    }
    if let (RecordingProvider::Twilio, Some(client)) = (r.provider, twilio)
        && let Err(e) = client.delete_recording(&r.provider_id).await
    {
        return Verdict::Failed(format!("Twilio: {e}"));
    }
    let now = switchboard_domain::time::now_ms();
    let mut gone = r.clone();
    gone.status = RecordingStatus::Deleted;
    gone.deleted_at = Some(now);
    gone.updated_at = now;
    match store.upsert_recording(&gone).await {
        Ok(_) => Verdict::Deleted,
        Err(e) => Verdict::Failed(format!("deleted at the provider but not marked here: {e}")),
    }
}
