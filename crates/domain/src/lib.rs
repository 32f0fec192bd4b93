//! Switchboard domain: the types and rules every other crate shares, with no I/O.
//!
//! Layout:
//! - [`ids`]: typed, prefixed identifiers (`call_…`, `evt_…`).
//! - [`time`]: the millisecond timestamp discipline both stores keep.
//! - [`call`]: the merged call record, its status lattice and the merge rules
//!   (architecture §3) applied by every store in the same way.
//! - [`event`]: call events — every provider webhook is kept as one.
//! - [`contact`], [`campaign`], [`enrollment`]: campaigns and the dialling
//!   rules (architecture §4): validation, lifecycle, recipient-local calling
//!   windows, retry policy and eligibility.
//! - [`recording`], [`transcript`]: Phase 3 — recordings (Twilio, ElevenLabs
//!   audio; media stays at the provider) and conversation transcripts with
//!   ElevenLabs' analysis and our own (versioned, recomputable).
//! - [`sheet`]: Google Sheets links (a tab bound to a campaign or the
//!   contact list), their column ownership, sync state and per-row state.
//!
//! Storage backends convert these types to their own rows and documents; the
//! domain never derives a driver trait.

#![forbid(unsafe_code)]

pub mod call;
pub mod campaign;
pub mod contact;
pub mod enrollment;
pub mod event;
pub mod ids;
mod macros;
pub mod recording;
pub mod sheet;
pub mod time;
pub mod transcript;

pub use call::{AnsweredBy, Call, CallStatus, CallUpdate, Direction, MergeError, Source};
pub use campaign::{Campaign, CampaignAction, CampaignInput, CampaignStatus, DialMode};
pub use contact::{Contact, ContactInput, FieldError};
pub use enrollment::{Eligibility, Enrollment, EnrollmentStatus, Outcome};
pub use event::CallEvent;
pub use ids::{CallId, CampaignId, ContactId, EnrollmentId, EventId, IdError, RecordingId, SheetLinkId, TranscriptId};
pub use recording::Recording;
pub use sheet::{SheetLink, SheetRow};
pub use transcript::Transcript;
