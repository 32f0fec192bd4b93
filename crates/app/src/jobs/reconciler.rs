//! The conversation reconciler: ElevenLabs sends each post-call webhook once
//! and never retries, so a webhook lost to our downtime (or dropped on the
//! way) would be lost forever unless we look. Every run lists the
//! conversations started in the look-back window (`GET
//! /v1/convai/conversations?call_start_after_unix=…`, cursor-paged, per
//! agent of our campaigns, or all when there are none) and fetches every one
//! we lack or hold as not final, applying it through the webhook's path:
//! transcript first ([`crate::conversations::record`]), then the call merge
//! and the event (`elevenlabs.post_call_transcription`, the webhook's own
//! dedupe key, so a late webhook is a replay).
//!
//! A leased job (`conversation_reconciler`): one instance at a time; its
//! watermark is the store itself (what is stored and final is skipped), so a
//! run cut short is simply repeated. Rate-limited by the ElevenLabs client's
//! retry/backoff and a page size; counted in `/metrics`.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use switchboard_domain::{CallUpdate, EventId, Source};
use switchboard_storage::{NewEvent, PageRequest, Storage, pages};

use crate::integrations::elevenlabs::{ConversationQuery, ElevenLabsClient};

/// Lease name of the job.
pub const NAME: &str = "conversation_reconciler";
/// Metric: conversations the reconciler recovered (were missing or not final).
pub const RECOVERED: &str = "switchboard_conversations_reconciled_total";

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ReconcileReport {
    /// Conversations listed.
    pub listed: u64,
    /// Fetched and applied (missing or not final here).
    pub recovered: u64,
    /// Already stored and final.
    pub up_to_date: u64,
    /// Could not be fetched this time (retried next run).
    pub failed: u64,
}

/// The agents of our campaigns.
async fn our_agents(store: &dyn Storage) -> anyhow::Result<BTreeSet<String>> {
    let mut agents = BTreeSet::new();
    let mut stream = std::pin::pin!(pages(200, |p: PageRequest| async move { store.list_campaigns(&[], &p).await }));
    while let Some(batch) = stream.try_next().await? {
        for c in batch {
            agents.insert(c.agent.agent_id.clone());
        }
    }
    Ok(agents)
}

/// Reconciles every conversation started at or after `since`.
pub async fn reconcile(
    store: &dyn Storage,
    client: &ElevenLabsClient,
    since: DateTime<Utc>,
    analysis: &crate::config::AnalysisSettings,
    progress: Option<&(dyn Fn(&ReconcileReport) + Send + Sync)>,
) -> anyhow::Result<ReconcileReport> {
    let mut report = ReconcileReport::default();
    let agents = our_agents(store).await?;
    let filters: Vec<Option<String>> =
        if agents.is_empty() { vec![None] } else { agents.into_iter().map(Some).collect() };
    for agent in filters {
        let mut cursor = None;
        loop {
            let q = ConversationQuery {
                cursor: cursor.clone(),
                page_size: Some(100),
                agent_id: agent.clone(),
                call_start_after_unix: Some(since.timestamp()),
                call_start_before_unix: None,
            };
            let page = client.list_conversations(&q).await?;
            for summary in &page.conversations {
                report.listed += 1;
                let stored = store.find_transcript(&summary.conversation_id).await?;
                if stored.as_ref().is_some_and(|t| t.is_final()) {
                    report.up_to_date += 1;
                    continue;
                }
                match client.get_conversation(&summary.conversation_id).await {
                    Ok(doc) => {
                        apply(store, doc, analysis).await?;
                        report.recovered += 1;
                        metrics::counter!(RECOVERED).increment(1);
                    }
                    Err(e) => {
                        tracing::warn!(conversation_id = %summary.conversation_id, error = %e, "conversation not fetched; retried next run");
                        report.failed += 1;
                    }
                }
            }
            if let Some(p) = progress {
                p(&report);
            }
            match page.next_cursor {
                Some(c) if page.has_more || !page.conversations.is_empty() => cursor = Some(c),
                _ => break,
            }
        }
    }
    Ok(report)
}

/// Applies one fetched conversation exactly as the post-call webhook would.
pub async fn apply(
    store: &dyn Storage,
    doc: serde_json::Value,
    analysis: &crate::config::AnalysisSettings,
) -> anyhow::Result<()> {
    let Some(conversation_id) = doc.get("conversation_id").and_then(|v| v.as_str()).map(str::to_owned) else {
        anyhow::bail!("ElevenLabs returned a conversation without conversation_id");
    };
    crate::conversations::record(store, &doc, analysis).await?;
    let now = switchboard_domain::time::now_ms();
    let mut update = CallUpdate {
        source: Some(Source::ElevenLabs),
        conversation_id: Some(conversation_id.clone()),
        call_sid: crate::conversations::call_sid_of(&doc)
            .filter(|s| switchboard_domain::call::CallSid::parse(s).is_ok()),
        agent_id: doc.get("agent_id").and_then(|v| v.as_str()).map(str::to_owned),
        observed_at: doc
            .pointer("/metadata/start_time_unix_secs")
            .and_then(|v| v.as_i64())
            .and_then(|t| DateTime::from_timestamp(t, 0)),
        ..Default::default()
    };
    crate::integrations::elevenlabs::conversation_facts(&doc, &mut update);
    let done = matches!(doc.get("status").and_then(|v| v.as_str()), Some("done" | "failed"));
    // A final conversation uses the webhook's own key: a webhook arriving later is a replay.
    let dedupe_key = if done {
        format!("elevenlabs:post_call_transcription:{conversation_id}")
    } else {
        format!("elevenlabs:reconciled:{conversation_id}:{}", doc.get("status").and_then(|v| v.as_str()).unwrap_or("?"))
    };
    let event = NewEvent {
        id: EventId::new(),
        source: Source::ElevenLabs,
        event_type: "elevenlabs.post_call_transcription.reconciled".into(),
        occurred_at: update.observed_at.unwrap_or(now),
        received_at: now,
        dedupe_key,
        sequence: None,
        payload: doc,
    };
    match store.record_webhook(&update, event).await {
        Ok(_) => Ok(()),
        // The conversation names a call that conflicts with stored ones: keep the transcript, log.
        Err(switchboard_storage::StoreError::Conflict { what }) => {
            tracing::warn!(conversation_id = %conversation_id, conflict = %what, "reconciled conversation conflicts with stored calls; call not merged");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// What a recordings pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RecordingsReport {
    /// Recordings Twilio listed.
    pub listed: u64,
    /// Stored or moved forward here (their callback never came, or came before they finished).
    pub recovered: u64,
    /// Already stored as Twilio has them.
    pub up_to_date: u64,
}

/// Twilio recordings created since `since` whose `RecordingStatusCallback`
/// never arrived (or arrived before they completed): listed from the
/// account's Recordings API (one request per 1,000) and merged in, linked to
/// their call by CallSid.
pub async fn reconcile_recordings(
    store: &dyn Storage,
    twilio: &crate::integrations::twilio::TwilioClient,
    since: DateTime<Utc>,
) -> anyhow::Result<RecordingsReport> {
    use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
    let mut report = RecordingsReport::default();
    for r in twilio.list_account_recordings(since.date_naive()).await? {
        report.listed += 1;
        let status = match r.status.as_str() {
            "completed" => RecordingStatus::Completed,
            "absent" => RecordingStatus::Absent,
            "failed" => RecordingStatus::Failed,
            _ => RecordingStatus::InProgress,
        };
        let stored = store.find_recording(RecordingProvider::Twilio, &r.sid).await?;
        if stored.as_ref().is_some_and(|s| s.status.rank() >= status.rank()) {
            report.up_to_date += 1;
            continue;
        }
        let now = switchboard_domain::time::now_ms();
        let call_id = store.find_call_by_sid(&r.call_sid).await?.map(|c| c.id);
        let rec = switchboard_domain::Recording {
            id: switchboard_domain::RecordingId::new(),
            provider: RecordingProvider::Twilio,
            provider_id: r.sid.clone(),
            call_id,
            call_sid: Some(r.call_sid.clone()),
            conversation_id: None,
            status,
            duration_secs: r.duration.as_deref().and_then(|d| d.parse().ok()),
            channels: r.channels.map(i64::from),
            source: r.source.clone(),
            track: None,
            started_at: r
                .date_created
                .as_deref()
                .and_then(|d| DateTime::parse_from_rfc2822(d).ok())
                .map(|t| t.with_timezone(&Utc)),
            media_url: None,
            format: Some("mp3".into()),
            error_code: r.error_code.filter(|c| *c != 0).map(|c| c.to_string()),
            deleted_at: None,
            created_at: now,
            updated_at: now,
        };
        store.upsert_recording(&rec).await?;
        report.recovered += 1;
        metrics::counter!(RECORDINGS_RECOVERED).increment(1);
    }
    Ok(report)
}

/// Metric: Twilio recordings the reconciler stored because their callback never came.
pub const RECORDINGS_RECOVERED: &str = "switchboard_recordings_reconciled_total";
