//! The merged call record and its merge rules (architecture §3).
//!
//! One record per call, whichever provider speaks first. Every store applies
//! a [`CallUpdate`] through [`Call::apply`], so the rules live here once:
//!
//! - **Keys.** `call_sid` (Twilio) and `conversation_id` (ElevenLabs) are
//!   attached when first known and never changed afterwards.
//! - **Status lattice.** queued < initiated < ringing < in-progress <
//!   terminal. Status never moves backwards; the first terminal status is
//!   final, except that the telephony owner (Twilio) may correct a terminal
//!   status that another source inferred.
//! - **Field precedence.** Twilio owns telephony facts, ElevenLabs owns
//!   conversation facts. A source may fill an empty field of a group it does
//!   not own, but never overwrites a value written by the owner.
//! - **Ordering.** Twilio's `SequenceNumber` orders callbacks of one call: an
//!   older callback only fills empty fields.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{CallId, CampaignId, ContactId, EnrollmentId, string_enum, time::to_ms};

string_enum! {
    /// Call status, as Twilio spells it (`initiated` only exists in callbacks).
    pub enum CallStatus {
        /// Created, not yet dialled.
        Queued => "queued",
        /// Twilio started dialling.
        Initiated => "initiated",
        /// The destination is ringing.
        Ringing => "ringing",
        /// Answered and in progress.
        InProgress => "in-progress",
        /// Ended after being answered.
        Completed => "completed",
        /// Busy signal.
        Busy => "busy",
        /// Nobody answered.
        NoAnswer => "no-answer",
        /// Could not be placed.
        Failed => "failed",
        /// Cancelled before answer.
        Canceled => "canceled",
    }
}

impl CallStatus {
    /// Position on the status lattice; all terminal statuses share the top rank.
    pub fn rank(self) -> u8 {
        match self {
            CallStatus::Queued => 0,
            CallStatus::Initiated => 1,
            CallStatus::Ringing => 2,
            CallStatus::InProgress => 3,
            _ => 4,
        }
    }

    /// Whether the call is over.
    pub fn is_terminal(self) -> bool {
        self.rank() == 4
    }

    /// The statuses of calls that are still going on (used by the active-calls index).
    pub const ACTIVE: &'static [CallStatus] =
        &[CallStatus::Queued, CallStatus::Initiated, CallStatus::Ringing, CallStatus::InProgress];
}

string_enum! {
    /// Call direction, as Twilio spells it.
    pub enum Direction {
        /// Someone called one of our numbers.
        Inbound => "inbound",
        /// Placed through the REST API (campaign calls).
        OutboundApi => "outbound-api",
        /// A child leg created by `<Dial>`.
        OutboundDial => "outbound-dial",
        /// SIP trunking, terminating.
        TrunkingTerminating => "trunking-terminating",
        /// SIP trunking, originating.
        TrunkingOriginating => "trunking-originating",
    }
}

string_enum! {
    /// Answering-machine detection result (`AnsweredBy`).
    pub enum AnsweredBy {
        /// A person.
        Human => "human",
        /// A machine, detected at the greeting start.
        MachineStart => "machine_start",
        /// A machine; the greeting ended with a beep.
        MachineEndBeep => "machine_end_beep",
        /// A machine; the greeting ended in silence.
        MachineEndSilence => "machine_end_silence",
        /// A machine; the greeting ended otherwise.
        MachineEndOther => "machine_end_other",
        /// A fax machine.
        Fax => "fax",
        /// Undetermined.
        Unknown => "unknown",
    }
}

string_enum! {
    /// Who a fact or an event comes from.
    pub enum Source {
        /// Twilio webhooks and REST (telephony owner).
        Twilio => "twilio",
        /// ElevenLabs webhooks and REST (conversation owner).
        ElevenLabs => "elevenlabs",
        /// Switchboard itself (dialer, seed, operators).
        Switchboard => "switchboard",
    }
}

impl Source {
    fn telephony_rank(self) -> u8 {
        if self == Source::Twilio { 2 } else { 1 }
    }
    fn conversation_rank(self) -> u8 {
        if self == Source::ElevenLabs { 2 } else { 1 }
    }
}

/// A Twilio Call SID: `CA` followed by 32 hex digits (external-apis.md,
/// "SID shapes"). Parsed once where a SID enters (the webhook door); the
/// record still stores the key as a string (`Call::call_sid`), see the
/// renovation notes in docs/tour.md.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CallSid(String);

impl CallSid {
    /// Parses and validates a Call SID.
    pub fn parse(s: &str) -> Result<CallSid, String> {
        let ok = s.len() == 34 && s.starts_with("CA") && s[2..].bytes().all(|b| b.is_ascii_hexdigit());
        if ok { Ok(CallSid(s.to_owned())) } else { Err("must be `CA` followed by 32 hex digits".to_owned()) }
    }

    /// The SID as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for CallSid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for CallSid {
    type Error = String;
    fn try_from(s: String) -> Result<CallSid, String> {
        CallSid::parse(&s)
    }
}

impl From<CallSid> for String {
    fn from(sid: CallSid) -> String {
        sid.0
    }
}

/// The one merged record of a call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Call {
    /// Our id.
    pub id: CallId,
    /// Twilio Call SID (`CA…`), unique when present.
    pub call_sid: Option<String>,
    /// ElevenLabs conversation id, unique when present.
    pub conversation_id: Option<String>,
    /// Twilio account (`AC…`).
    pub account_sid: Option<String>,
    /// Direction.
    pub direction: Option<Direction>,
    /// Current status (lattice).
    pub status: CallStatus,
    /// Caller number.
    pub from: Option<String>,
    /// Called number.
    pub to: Option<String>,
    /// Campaign that placed the call.
    pub campaign_id: Option<CampaignId>,
    /// Contact called.
    pub contact_id: Option<ContactId>,
    /// Campaign enrollment the call belongs to.
    pub enrollment_id: Option<EnrollmentId>,
    /// ElevenLabs agent.
    pub agent_id: Option<String>,
    /// AMD result.
    pub answered_by: Option<AnsweredBy>,
    /// Earliest known moment of the call (placement or first callback). Always set; the list sort key.
    pub started_at: DateTime<Utc>,
    /// When the call was answered.
    pub answered_at: Option<DateTime<Utc>>,
    /// When the call ended.
    pub ended_at: Option<DateTime<Utc>>,
    /// Telephony duration in seconds (Twilio `CallDuration`).
    pub duration_secs: Option<i64>,
    /// SIP response code of the terminal event.
    pub sip_response_code: Option<i64>,
    /// Price as Twilio reports it (a decimal string).
    pub price: Option<String>,
    /// Currency of `price`.
    pub price_unit: Option<String>,
    /// Highest Twilio `SequenceNumber` applied.
    pub last_sequence: Option<i64>,
    /// Who set the current status (the owner may correct an inferred terminal status).
    pub status_source: Option<Source>,
    /// Best source that wrote telephony facts.
    pub telephony_source: Option<Source>,
    /// Best source that wrote conversation facts.
    pub conversation_source: Option<Source>,
    /// ElevenLabs conversation status (`done`, `failed`, …).
    pub conversation_status: Option<String>,
    /// ElevenLabs `analysis.call_successful`.
    pub call_successful: Option<String>,
    /// ElevenLabs `analysis.transcript_summary`.
    pub transcript_summary: Option<String>,
    /// ElevenLabs `metadata.termination_reason`.
    pub termination_reason: Option<String>,
    /// ElevenLabs `metadata.call_duration_secs`.
    pub conversation_duration_secs: Option<i64>,
    /// ElevenLabs cost in credits.
    pub cost_credits: Option<i64>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version, bumped on every change.
    pub version: i64,
}

/// What one webhook (or the dialer) knows about a call. `None` means "not said".
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CallUpdate {
    /// Who says it.
    pub source: Option<Source>,
    /// When the provider says it happened.
    pub observed_at: Option<DateTime<Utc>>,
    /// Our id, when the caller already knows it (dialer).
    pub id: Option<CallId>,
    /// Twilio key.
    pub call_sid: Option<String>,
    /// ElevenLabs key.
    pub conversation_id: Option<String>,
    /// Twilio `SequenceNumber`.
    pub sequence: Option<i64>,
    /// Status.
    pub status: Option<CallStatus>,
    /// Telephony: account.
    pub account_sid: Option<String>,
    /// Telephony: direction.
    pub direction: Option<Direction>,
    /// Telephony: from.
    pub from: Option<String>,
    /// Telephony: to.
    pub to: Option<String>,
    /// Telephony: AMD result.
    pub answered_by: Option<AnsweredBy>,
    /// Telephony: duration seconds.
    pub duration_secs: Option<i64>,
    /// Telephony: SIP code.
    pub sip_response_code: Option<i64>,
    /// Telephony: price.
    pub price: Option<String>,
    /// Telephony: price unit.
    pub price_unit: Option<String>,
    /// Link: campaign.
    pub campaign_id: Option<CampaignId>,
    /// Link: contact.
    pub contact_id: Option<ContactId>,
    /// Link: enrollment.
    pub enrollment_id: Option<EnrollmentId>,
    /// Link / conversation: agent.
    pub agent_id: Option<String>,
    /// Conversation: status.
    pub conversation_status: Option<String>,
    /// Conversation: success verdict.
    pub call_successful: Option<String>,
    /// Conversation: summary.
    pub transcript_summary: Option<String>,
    /// Conversation: termination reason.
    pub termination_reason: Option<String>,
    /// Conversation: duration seconds.
    pub conversation_duration_secs: Option<i64>,
    /// Conversation: cost in credits.
    pub cost_credits: Option<i64>,
}

/// An update cannot be merged into the record it was matched with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// The record already carries a different provider key.
    #[error("call {id} already has {key} `{existing}`, update says `{incoming}`")]
    KeyMismatch {
        /// The record.
        id: CallId,
        /// `call_sid` or `conversation_id`.
        key: &'static str,
        /// The stored value.
        existing: String,
        /// The value in the update.
        incoming: String,
    },
    /// Two records would be merged, but they belong to different campaign
    /// calls (a provider key names a call that is linked elsewhere).
    #[error("call {id} is linked to {link} `{existing}`, call {other} to `{incoming}`: they are different calls")]
    LinkMismatch {
        /// The surviving record.
        id: CallId,
        /// The record that would be absorbed.
        other: CallId,
        /// `campaign_id`, `contact_id` or `enrollment_id`.
        link: &'static str,
        /// The survivor's value.
        existing: String,
        /// The other record's value.
        incoming: String,
    },
    /// The update names no key at all.
    #[error("a call update needs an id, a call_sid or a conversation_id")]
    NoKey,
}

impl CallUpdate {
    /// Whether the update names at least one key.
    pub fn has_key(&self) -> bool {
        self.id.is_some() || self.call_sid.is_some() || self.conversation_id.is_some()
    }

    fn source(&self) -> Source {
        self.source.unwrap_or(Source::Switchboard)
    }
}

/// Sets `slot` from `value` when `allowed` (the writer outranks or equals the
/// current writer, and is not replaying an older event) or when `slot` is empty.
fn set<T: Clone + PartialEq>(slot: &mut Option<T>, value: &Option<T>, allowed: bool) {
    if let Some(v) = value
        && (slot.is_none() || allowed)
    {
        *slot = Some(v.clone());
    }
}

fn fill<T: Clone>(slot: &mut Option<T>, value: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(value);
    }
}

impl Call {
    /// A fresh record from the first update seen for a call.
    pub fn new_from(update: &CallUpdate, now: DateTime<Utc>) -> Result<Call, MergeError> {
        if !update.has_key() {
            return Err(MergeError::NoKey);
        }
        let now = to_ms(now);
        let started = to_ms(update.observed_at.unwrap_or(now));
        let mut call = Call {
            id: update.id.clone().unwrap_or_default(),
            call_sid: None,
            conversation_id: None,
            account_sid: None,
            direction: None,
            status: CallStatus::Queued,
            from: None,
            to: None,
            campaign_id: None,
            contact_id: None,
            enrollment_id: None,
            agent_id: None,
            answered_by: None,
            started_at: started,
            answered_at: None,
            ended_at: None,
            duration_secs: None,
            sip_response_code: None,
            price: None,
            price_unit: None,
            last_sequence: None,
            status_source: None,
            telephony_source: None,
            conversation_source: None,
            conversation_status: None,
            call_successful: None,
            transcript_summary: None,
            termination_reason: None,
            conversation_duration_secs: None,
            cost_credits: None,
            created_at: now,
            updated_at: now,
            version: 0,
        };
        call.apply(update, now)?;
        call.version = 1;
        call.updated_at = now;
        Ok(call)
    }

    /// Attaches provider keys the record lacks. Keys never change: a different
    /// value is a mismatch, and then nothing is attached.
    fn attach_keys(&mut self, call_sid: &Option<String>, conversation_id: &Option<String>) -> Result<(), MergeError> {
        for (key, existing, incoming) in
            [("call_sid", &self.call_sid, call_sid), ("conversation_id", &self.conversation_id, conversation_id)]
        {
            if let (Some(existing), Some(inc)) = (existing, incoming)
                && existing != inc
            {
                return Err(MergeError::KeyMismatch {
                    id: self.id.clone(),
                    key,
                    existing: existing.clone(),
                    incoming: inc.clone(),
                });
            }
        }
        fill(&mut self.call_sid, call_sid);
        fill(&mut self.conversation_id, conversation_id);
        Ok(())
    }

    /// Merges `update` into the record. Returns whether anything changed; when
    /// it did, `updated_at` and `version` are bumped. Applying the same update
    /// twice changes nothing the second time.
    pub fn apply(&mut self, update: &CallUpdate, now: DateTime<Utc>) -> Result<bool, MergeError> {
        let before = self.clone();
        let source = update.source();
        let observed = to_ms(update.observed_at.unwrap_or(now));

        self.attach_keys(&update.call_sid, &update.conversation_id)?;

        // Telephony group: owner outranks; an older Twilio callback only fills gaps.
        let current_tel = self.telephony_source.map(Source::telephony_rank).unwrap_or(0);
        let stale = matches!((update.sequence, self.last_sequence), (Some(s), Some(l)) if s < l);
        let tel_allowed = source.telephony_rank() >= current_tel && !stale;
        let writes_telephony = update.status.is_some()
            || update.account_sid.is_some()
            || update.direction.is_some()
            || update.from.is_some()
            || update.to.is_some()
            || update.answered_by.is_some()
            || update.duration_secs.is_some()
            || update.sip_response_code.is_some()
            || update.price.is_some();
        set(&mut self.account_sid, &update.account_sid, tel_allowed);
        set(&mut self.direction, &update.direction, tel_allowed);
        set(&mut self.from, &update.from, tel_allowed);
        set(&mut self.to, &update.to, tel_allowed);
        set(&mut self.answered_by, &update.answered_by, tel_allowed);
        set(&mut self.duration_secs, &update.duration_secs, tel_allowed);
        set(&mut self.sip_response_code, &update.sip_response_code, tel_allowed);
        set(&mut self.price, &update.price, tel_allowed);
        set(&mut self.price_unit, &update.price_unit, tel_allowed);
        if let Some(seq) = update.sequence {
            self.last_sequence = Some(self.last_sequence.map_or(seq, |l| l.max(seq)));
        }
        if let Some(new) = update.status {
            self.apply_status(new, source, observed);
        }
        if writes_telephony && source.telephony_rank() > current_tel {
            self.telephony_source = Some(source);
        }

        // Links: fill once.
        fill(&mut self.campaign_id, &update.campaign_id);
        fill(&mut self.contact_id, &update.contact_id);
        fill(&mut self.enrollment_id, &update.enrollment_id);

        // Conversation group.
        let current_conv = self.conversation_source.map(Source::conversation_rank).unwrap_or(0);
        let conv_allowed = source.conversation_rank() >= current_conv;
        let writes_conversation = update.conversation_status.is_some()
            || update.call_successful.is_some()
            || update.transcript_summary.is_some()
            || update.termination_reason.is_some()
            || update.conversation_duration_secs.is_some()
            || update.cost_credits.is_some();
        set(&mut self.agent_id, &update.agent_id, conv_allowed && source == Source::ElevenLabs);
        set(&mut self.conversation_status, &update.conversation_status, conv_allowed);
        set(&mut self.call_successful, &update.call_successful, conv_allowed);
        set(&mut self.transcript_summary, &update.transcript_summary, conv_allowed);
        set(&mut self.termination_reason, &update.termination_reason, conv_allowed);
        set(&mut self.conversation_duration_secs, &update.conversation_duration_secs, conv_allowed);
        set(&mut self.cost_credits, &update.cost_credits, conv_allowed);
        if writes_conversation && source.conversation_rank() > current_conv {
            self.conversation_source = Some(source);
        }

        // The earliest moment we know of is when the call started. A final
        // status with a duration (Twilio's `completed` carries `CallDuration`)
        // says the call began that many seconds before it ended: used when no
        // earlier evidence exists (only `completed` was subscribed).
        let nothing_earlier = self.started_at >= observed;
        if observed < self.started_at {
            self.started_at = observed;
        }
        if let (Some(d), Some(st)) = (update.duration_secs, update.status)
            && nothing_earlier
            && st.is_terminal()
            && let Some(begun) = chrono::TimeDelta::try_seconds(d).and_then(|d| observed.checked_sub_signed(d))
            && begun < self.started_at
        {
            self.started_at = begun;
        }

        let changed = *self != before;
        if changed {
            self.updated_at = to_ms(now).max(before.updated_at);
            self.version = before.version + 1;
        }
        Ok(changed)
    }

    fn apply_status(&mut self, new: CallStatus, source: Source, observed: DateTime<Utc>) {
        let cur = self.status;
        let forward = new.rank() > cur.rank();
        // The telephony owner may correct a terminal status another source inferred.
        let setter_rank = self.status_source.map(Source::telephony_rank).unwrap_or(0);
        let correction = cur.is_terminal() && new.is_terminal() && new != cur && source.telephony_rank() > setter_rank;
        if forward || correction {
            self.status = new;
            self.status_source = Some(source);
        } else if new == cur && source.telephony_rank() > setter_rank {
            // The owner confirms what another source inferred.
            self.status_source = Some(source);
        }
        if new == CallStatus::InProgress {
            // Keep the earliest evidence of the answer, whatever the arrival order.
            self.answered_at = Some(self.answered_at.map_or(observed, |a| a.min(observed)));
        }
        if new.is_terminal() && (forward || correction || self.ended_at.is_none()) {
            self.ended_at = Some(match self.ended_at {
                Some(e) if !correction => e.min(observed),
                _ => observed,
            });
        }
    }

    /// Merges `other` — a second record of the same call, created before the
    /// two provider keys were linked — into `self`, by the same precedence
    /// rules as [`Call::apply`]. `self` keeps its id and creation time.
    /// Returns an error if the two records carry different values of a key.
    pub fn absorb(&mut self, other: &Call, now: DateTime<Utc>) -> Result<bool, MergeError> {
        // Two records linked to different campaign calls are two calls, whatever
        // key an update claims they share: refuse before changing anything.
        let text = |id: Option<&str>| id.map(str::to_owned);
        for (link, mine, theirs) in [
            (
                "campaign_id",
                text(self.campaign_id.as_ref().map(CampaignId::as_str)),
                text(other.campaign_id.as_ref().map(CampaignId::as_str)),
            ),
            (
                "contact_id",
                text(self.contact_id.as_ref().map(ContactId::as_str)),
                text(other.contact_id.as_ref().map(ContactId::as_str)),
            ),
            (
                "enrollment_id",
                text(self.enrollment_id.as_ref().map(EnrollmentId::as_str)),
                text(other.enrollment_id.as_ref().map(EnrollmentId::as_str)),
            ),
        ] {
            if let (Some(a), Some(b)) = (mine, theirs)
                && a != b
            {
                return Err(MergeError::LinkMismatch {
                    id: self.id.clone(),
                    other: other.id.clone(),
                    link,
                    existing: a,
                    incoming: b,
                });
            }
        }
        let before = self.clone();
        self.attach_keys(&other.call_sid, &other.conversation_id)?;
        let rank = |s: Option<Source>, f: fn(Source) -> u8| s.map(f).unwrap_or(0);

        // Status: the lattice, with owner corrections, exactly as for an update.
        let (mine, theirs) =
            (rank(self.status_source, Source::telephony_rank), rank(other.status_source, Source::telephony_rank));
        let forward = other.status.rank() > self.status.rank();
        let correction =
            self.status.is_terminal() && other.status.is_terminal() && other.status != self.status && theirs > mine;
        if forward || correction {
            self.status = other.status;
            self.status_source = other.status_source;
            self.ended_at = other.ended_at.or(self.ended_at);
        } else if other.status == self.status && theirs > mine {
            self.status_source = other.status_source;
        }
        self.answered_at = match (self.answered_at, other.answered_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.ended_at = self.ended_at.or(other.ended_at);

        // Telephony group.
        let over =
            rank(other.telephony_source, Source::telephony_rank) > rank(self.telephony_source, Source::telephony_rank);
        set(&mut self.account_sid, &other.account_sid, over);
        set(&mut self.direction, &other.direction, over);
        set(&mut self.from, &other.from, over);
        set(&mut self.to, &other.to, over);
        set(&mut self.answered_by, &other.answered_by, over);
        set(&mut self.duration_secs, &other.duration_secs, over);
        set(&mut self.sip_response_code, &other.sip_response_code, over);
        set(&mut self.price, &other.price, over);
        set(&mut self.price_unit, &other.price_unit, over);
        if over {
            self.telephony_source = other.telephony_source;
        }
        self.last_sequence = match (self.last_sequence, other.last_sequence) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };

        // Links.
        fill(&mut self.campaign_id, &other.campaign_id);
        fill(&mut self.contact_id, &other.contact_id);
        fill(&mut self.enrollment_id, &other.enrollment_id);

        // Conversation group.
        let over = rank(other.conversation_source, Source::conversation_rank)
            > rank(self.conversation_source, Source::conversation_rank);
        set(&mut self.agent_id, &other.agent_id, over);
        set(&mut self.conversation_status, &other.conversation_status, over);
        set(&mut self.call_successful, &other.call_successful, over);
        set(&mut self.transcript_summary, &other.transcript_summary, over);
        set(&mut self.termination_reason, &other.termination_reason, over);
        set(&mut self.conversation_duration_secs, &other.conversation_duration_secs, over);
        set(&mut self.cost_credits, &other.cost_credits, over);
        if over {
            self.conversation_source = other.conversation_source;
        }

        self.started_at = self.started_at.min(other.started_at);
        let changed = *self != before;
        if changed {
            self.updated_at = to_ms(now).max(before.updated_at);
            self.version = before.version + 1;
        }
        Ok(changed)
    }

    /// Which of two records of one call survives a merge: the older one.
    pub fn survivor_first<'a>(a: &'a Call, b: &'a Call) -> (&'a Call, &'a Call) {
        if (a.created_at, &a.id) <= (b.created_at, &b.id) { (a, b) } else { (b, a) }
    }

    /// Whether the call is still going on.
    pub fn is_active(&self) -> bool {
        !self.status.is_terminal()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::from_millis;

    fn twilio(seq: i64, status: CallStatus, at_ms: i64) -> CallUpdate {
        CallUpdate {
            source: Some(Source::Twilio),
            observed_at: Some(from_millis(at_ms)),
            call_sid: Some("CA1".into()),
            sequence: Some(seq),
            status: Some(status),
            from: Some("+15005550001".into()),
            to: Some("+15005550006".into()),
            ..Default::default()
        }
    }

    fn eleven(at_ms: i64) -> CallUpdate {
        CallUpdate {
            source: Some(Source::ElevenLabs),
            observed_at: Some(from_millis(at_ms)),
            conversation_id: Some("conv_1".into()),
            call_sid: Some("CA1".into()),
            status: Some(CallStatus::Completed),
            agent_id: Some("agent_1".into()),
            call_successful: Some("success".into()),
            from: Some("+1999".into()),
            ..Default::default()
        }
    }

    #[test]
    fn status_never_moves_backwards_whatever_the_arrival_order() {
        let now = from_millis(10_000);
        let mut call = Call::new_from(&twilio(3, CallStatus::Completed, 4000), now).unwrap();
        for (seq, st) in [(0, CallStatus::Initiated), (2, CallStatus::InProgress), (1, CallStatus::Ringing)] {
            call.apply(&twilio(seq, st, 1000 + seq * 1000), now).unwrap();
            assert_eq!(call.status, CallStatus::Completed);
        }
        assert_eq!(call.last_sequence, Some(3));
        assert_eq!(call.started_at, from_millis(1000), "started_at is the earliest evidence");
        assert_eq!(call.answered_at, Some(from_millis(3000)));
        assert_eq!(call.ended_at, Some(from_millis(4000)));
    }

    #[test]
    fn applying_the_same_update_twice_changes_nothing() {
        let now = from_millis(10_000);
        let u = twilio(1, CallStatus::Ringing, 2000);
        let mut call = Call::new_from(&u, now).unwrap();
        let v = call.version;
        assert!(!call.apply(&u, from_millis(20_000)).unwrap());
        assert_eq!(call.version, v);
        assert_eq!(call.updated_at, now);
    }

    #[test]
    fn elevenlabs_cannot_overwrite_twilio_telephony_but_fills_gaps() {
        let now = from_millis(10_000);
        let mut call = Call::new_from(&twilio(2, CallStatus::InProgress, 3000), now).unwrap();
        call.apply(&eleven(5000), now).unwrap();
        assert_eq!(call.from.as_deref(), Some("+15005550001"), "Twilio owns `from`");
        assert_eq!(call.conversation_id.as_deref(), Some("conv_1"));
        assert_eq!(call.status, CallStatus::Completed, "status may move forward from any source");
        assert_eq!(call.agent_id.as_deref(), Some("agent_1"));
        // Twilio's own terminal status corrects the inferred one.
        call.apply(&twilio(3, CallStatus::Failed, 5000), now).unwrap();
        assert_eq!(call.status, CallStatus::Failed);
        // …and once the owner wrote a terminal status, nobody else changes it.
        let mut other = eleven(6000);
        other.status = Some(CallStatus::Canceled);
        call.apply(&other, now).unwrap();
        assert_eq!(call.status, CallStatus::Failed);
    }

    #[test]
    fn twilio_overwrites_what_elevenlabs_wrote_first() {
        let now = from_millis(10_000);
        let mut call = Call::new_from(&eleven(5000), now).unwrap();
        assert_eq!(call.from.as_deref(), Some("+1999"));
        call.apply(&twilio(3, CallStatus::Completed, 4000), now).unwrap();
        assert_eq!(call.from.as_deref(), Some("+15005550001"));
        assert_eq!(call.telephony_source, Some(Source::Twilio));
        // Conversation facts from a non-owner never replace ElevenLabs' own.
        let mut sb =
            CallUpdate { source: Some(Source::Switchboard), call_sid: Some("CA1".into()), ..Default::default() };
        sb.call_successful = Some("failure".into());
        call.apply(&sb, now).unwrap();
        assert_eq!(call.call_successful.as_deref(), Some("success"));
    }

    #[test]
    fn an_older_callback_only_fills_empty_fields() {
        let now = from_millis(10_000);
        let mut newer = twilio(3, CallStatus::Completed, 4000);
        newer.duration_secs = Some(37);
        let mut call = Call::new_from(&newer, now).unwrap();
        let mut older = twilio(1, CallStatus::Ringing, 2000);
        older.to = Some("+1000".into());
        older.account_sid = Some("AC1".into());
        call.apply(&older, now).unwrap();
        assert_eq!(call.to.as_deref(), Some("+15005550006"));
        assert_eq!(call.account_sid.as_deref(), Some("AC1"));
        assert_eq!(call.duration_secs, Some(37));
    }

    #[test]
    fn a_different_key_is_a_mismatch_not_a_silent_overwrite() {
        let now = from_millis(0);
        let mut call = Call::new_from(&twilio(0, CallStatus::Initiated, 0), now).unwrap();
        let mut other = twilio(1, CallStatus::Ringing, 0);
        other.call_sid = Some("CA2".into());
        assert!(matches!(call.apply(&other, now), Err(MergeError::KeyMismatch { key: "call_sid", .. })));
        assert!(matches!(Call::new_from(&CallUpdate::default(), now), Err(MergeError::NoKey)));
    }

    #[test]
    fn absorbing_a_twilio_record_into_an_elevenlabs_record_keeps_each_owners_facts() {
        let now = from_millis(10_000);
        let mut conv_only = eleven(5000);
        conv_only.call_sid = None;
        let mut a = Call::new_from(&conv_only, from_millis(1)).unwrap();
        let b = Call::new_from(&twilio(3, CallStatus::Busy, 4000), from_millis(2)).unwrap();
        let (first, _) = Call::survivor_first(&a, &b);
        assert_eq!(first.id, a.id);
        assert!(a.absorb(&b, now).unwrap());
        assert_eq!(a.call_sid.as_deref(), Some("CA1"));
        assert_eq!(a.status, CallStatus::Busy, "Twilio's terminal status corrects ElevenLabs' inferred one");
        assert_eq!(a.from.as_deref(), Some("+15005550001"));
        assert_eq!(a.call_successful.as_deref(), Some("success"));
        assert_eq!(a.started_at, from_millis(4000));
        assert!(!a.clone().absorb(&b, now).unwrap(), "absorbing twice changes nothing");
    }

    #[test]
    fn a_mismatched_key_attaches_nothing() {
        let now = from_millis(0);
        let mut conv_only = eleven(0);
        conv_only.call_sid = None;
        let mut call = Call::new_from(&conv_only, now).unwrap();
        let before = call.clone();
        let mut other = eleven(1);
        other.conversation_id = Some("conv_other".into());
        assert!(call.apply(&other, now).is_err());
        assert_eq!(call, before, "the SID of the refused update is not attached");
    }

    #[test]
    fn status_strings_round_trip() {
        for s in CallStatus::ALL {
            assert_eq!(s.as_str().parse::<CallStatus>().unwrap(), *s);
        }
        assert!("bogus".parse::<CallStatus>().unwrap_err().contains("in-progress"));
        assert_eq!(serde_json::to_string(&AnsweredBy::MachineEndBeep).unwrap(), "\"machine_end_beep\"");
    }

    #[test]
    fn a_call_sid_is_ca_and_32_hex_digits() {
        let ok = "CA0123456789abcdef0123456789ABCDEF";
        assert_eq!(CallSid::parse(ok).unwrap().as_str(), ok);
        for bad in [
            "",
            "CA1",
            "AC0123456789abcdef0123456789abcdef",
            "CA0123456789abcdef0123456789abcdeg",
            "CA0123456789abcdef0123456789abcdef0",
        ] {
            assert!(CallSid::parse(bad).is_err(), "{bad}");
        }
        let json = serde_json::to_string(&CallSid::parse(ok).unwrap()).unwrap();
        assert_eq!(json, format!("\"{ok}\""));
        assert!(serde_json::from_str::<CallSid>("\"CA1\"").is_err());
    }
}
