//! Recordings: one per Twilio recording (`RE…`) and one per ElevenLabs
//! conversation audio. Media is never copied into our database: the API
//! streams it from the provider with our credentials.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CallId, RecordingId, string_enum};

string_enum! {
    /// Who holds the media.
    pub enum RecordingProvider {
        /// A Twilio recording (`RecordingSid`).
        Twilio => "twilio",
        /// ElevenLabs conversation audio (keyed by conversation id).
        Elevenlabs => "elevenlabs",
    }
}

string_enum! {
    /// Where a recording stands (Twilio's statuses, plus `deleted` by our retention).
    pub enum RecordingStatus {
        /// Recording.
        InProgress => "in-progress",
        /// Media available.
        Completed => "completed",
        /// No media (nothing was recorded).
        Absent => "absent",
        /// Failed at the provider.
        Failed => "failed",
        /// Deleted at the provider by retention.
        Deleted => "deleted",
    }
}

impl RecordingStatus {
    /// Rank on the lattice: a status never moves back (a late `in-progress`
    /// after `completed` is ignored); `deleted` is final.
    pub fn rank(self) -> u8 {
        match self {
            RecordingStatus::InProgress => 0,
            RecordingStatus::Completed | RecordingStatus::Absent | RecordingStatus::Failed => 1,
            RecordingStatus::Deleted => 2,
        }
    }
}

/// One recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Our id (`rec_…`).
    pub id: RecordingId,
    /// Who holds the media.
    pub provider: RecordingProvider,
    /// The provider's key: `RecordingSid` for Twilio, the conversation id for ElevenLabs. Unique per provider.
    pub provider_id: String,
    /// Our call, once known.
    pub call_id: Option<CallId>,
    /// Twilio `CallSid`.
    pub call_sid: Option<String>,
    /// ElevenLabs conversation.
    pub conversation_id: Option<String>,
    /// Status.
    pub status: RecordingStatus,
    /// Seconds.
    pub duration_secs: Option<i64>,
    /// 1 or 2.
    pub channels: Option<i64>,
    /// Twilio `RecordingSource` (`OutboundAPI`, …).
    pub source: Option<String>,
    /// `inbound`, `outbound` or `both`.
    pub track: Option<String>,
    /// When recording started.
    pub started_at: Option<DateTime<Utc>>,
    /// The provider's media URL (without credentials; Twilio's has no extension).
    pub media_url: Option<String>,
    /// Media format (`mp3`, `wav`).
    pub format: Option<String>,
    /// Provider error code for `absent`/`failed`.
    pub error_code: Option<String>,
    /// When retention deleted it at the provider.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl Recording {
    /// Merges a newer report of the same recording: status only moves
    /// forward on its lattice; known fields are filled, never blanked.
    pub fn merge(&mut self, other: &Recording) {
        if other.status.rank() >= self.status.rank() && self.status != RecordingStatus::Deleted {
            self.status = other.status;
        }
        macro_rules! fill {
            ($($f:ident),*) => { $( if other.$f.is_some() { self.$f = other.$f.clone(); } )* };
        }
        fill!(
            call_id,
            call_sid,
            conversation_id,
            duration_secs,
            channels,
            source,
            track,
            started_at,
            media_url,
            format,
            error_code,
            deleted_at
        );
        self.updated_at = self.updated_at.max(other.updated_at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(status: RecordingStatus) -> Recording {
        let now = crate::time::now_ms();
        Recording {
            id: RecordingId::new(),
            provider: RecordingProvider::Twilio,
            provider_id: "RE1".into(),
            call_id: None,
            call_sid: Some("CA1".into()),
            conversation_id: None,
            status,
            duration_secs: None,
            channels: None,
            source: None,
            track: None,
            started_at: None,
            media_url: None,
            format: None,
            error_code: None,
            deleted_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    #[test]
    fn a_late_in_progress_never_undoes_completed_and_fields_are_filled_not_blanked() {
        let mut r = rec(RecordingStatus::InProgress);
        let mut done = rec(RecordingStatus::Completed);
        done.duration_secs = Some(35);
        r.merge(&done);
        assert_eq!((r.status, r.duration_secs), (RecordingStatus::Completed, Some(35)));
        r.merge(&rec(RecordingStatus::InProgress));
        assert_eq!((r.status, r.duration_secs), (RecordingStatus::Completed, Some(35)));
    }
}
