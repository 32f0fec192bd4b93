//! Enrollments: one contact in one campaign, and the dialling rules that
//! apply to it (architecture §4).
//!
//! - [`evaluate`] answers "may this enrollment be dialled at `now`, and if
//!   not, every reason why and when it next can be". The dialer calls it
//!   again at claim time, so nothing stale is ever dialled.
//! - [`Enrollment::record_outcome`] applies a call's outcome with the
//!   campaign's retry policy: retry later or finish.

use chrono::{DateTime, Duration, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::campaign::{Campaign, CampaignStatus};
use crate::contact::Contact;
use crate::{AnsweredBy, Call, CallId, CallStatus, CampaignId, ContactId, EnrollmentId, string_enum};

string_enum! {
    /// Where an enrollment stands.
    pub enum EnrollmentStatus {
        /// Waiting for its first attempt.
        Pending => "pending",
        /// Claimed by a dialer; the call is being placed.
        Dialing => "dialing",
        /// A call is in progress.
        InCall => "in_call",
        /// Waiting for a retry.
        RetryWait => "retry_wait",
        /// Reached (answered by a person).
        Completed => "completed",
        /// Attempts used up or a final failure.
        Failed => "failed",
        /// Never dialled and never will be (do-not-call, no window).
        Skipped => "skipped",
        /// Removed by its campaign's cancellation.
        Cancelled => "cancelled",
    }
}

impl EnrollmentStatus {
    /// Whether it will never be dialled again.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Skipped | Self::Cancelled)
    }

    /// Whether a call is being placed or in progress.
    pub fn is_in_flight(self) -> bool {
        matches!(self, Self::Dialing | Self::InCall)
    }

    /// Whether the dialer may pick it up (time permitting).
    pub fn is_waiting(self) -> bool {
        matches!(self, Self::Pending | Self::RetryWait)
    }
}

string_enum! {
    /// What one attempt came to.
    pub enum Outcome {
        /// A person answered.
        Answered => "answered",
        /// A machine answered.
        Voicemail => "voicemail",
        /// Busy.
        Busy => "busy",
        /// Nobody answered.
        NoAnswer => "no_answer",
        /// The call failed or was cancelled.
        Failed => "failed",
    }
}

impl Outcome {
    /// The outcome of a finished call, or `None` while it is still going on.
    pub fn of_call(call: &Call) -> Option<Outcome> {
        if !call.status.is_terminal() {
            return None;
        }
        Some(match call.status {
            CallStatus::Busy => Outcome::Busy,
            CallStatus::NoAnswer => Outcome::NoAnswer,
            CallStatus::Failed | CallStatus::Canceled => Outcome::Failed,
            _ => match call.answered_by {
                Some(
                    AnsweredBy::MachineStart
                    | AnsweredBy::MachineEndBeep
                    | AnsweredBy::MachineEndSilence
                    | AnsweredBy::MachineEndOther
                    | AnsweredBy::Fax,
                ) => Outcome::Voicemail,
                _ => Outcome::Answered,
            },
        })
    }
}

/// One attempt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    /// 1-based.
    pub n: u32,
    /// The call placed.
    pub call_id: CallId,
    /// When it was placed.
    pub at: DateTime<Utc>,
    /// How it ended (None while in progress).
    pub outcome: Option<Outcome>,
}

/// A dialer's hold on an enrollment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// Dialer instance.
    pub owner: String,
    /// Expiry; an expired lease may be recovered.
    pub expires_at: DateTime<Utc>,
}

/// Attempts kept in the history (the daily cap is at most this).
pub const HISTORY: usize = 10;

/// One contact in one campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Enrollment {
    /// Our id.
    pub id: EnrollmentId,
    /// Campaign.
    pub campaign_id: CampaignId,
    /// Contact.
    pub contact_id: ContactId,
    /// Status.
    pub status: EnrollmentStatus,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempts, oldest first.
    pub history: Vec<Attempt>,
    /// Not before this (retry delay, next window).
    pub next_attempt_at: DateTime<Utc>,
    /// Outcome of the last finished attempt.
    pub last_outcome: Option<Outcome>,
    /// Why it is where it is (skip reason, failure reason).
    pub reason: Option<String>,
    /// The claim, while dialling.
    pub lease: Option<Lease>,
    /// Fencing token: incremented by every claim.
    pub lease_token: i64,
    /// The call of the current attempt, once placed.
    pub current_call_id: Option<CallId>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Enrollment {
    /// A new pending enrollment, due at once.
    pub fn new(campaign_id: CampaignId, contact_id: ContactId, now: DateTime<Utc>) -> Enrollment {
        let now = crate::time::to_ms(now);
        Enrollment {
            id: EnrollmentId::new(),
            campaign_id,
            contact_id,
            status: EnrollmentStatus::Pending,
            attempts: 0,
            history: vec![],
            next_attempt_at: now,
            last_outcome: None,
            reason: None,
            lease: None,
            lease_token: 0,
            current_call_id: None,
            created_at: now,
            updated_at: now,
            version: 1,
        }
    }

    /// The key of the current attempt's call: the placement's idempotency key and its dial-gate slot.
    pub fn attempt_key(&self) -> AttemptKey {
        AttemptKey { enrollment: self.id.clone(), attempt: self.attempts }
    }

    /// The key the next attempt will have (a claim takes its gate slot before placing).
    pub fn next_attempt_key(&self) -> AttemptKey {
        AttemptKey { enrollment: self.id.clone(), attempt: self.attempts + 1 }
    }

    /// The key of attempt `n`.
    pub fn key_of_attempt(&self, n: u32) -> AttemptKey {
        AttemptKey { enrollment: self.id.clone(), attempt: n }
    }

    /// Attempts started on the local calendar day of `now` in `tz`.
    pub fn attempts_on_day(&self, tz: Tz, now: DateTime<Utc>) -> u32 {
        let day = now.with_timezone(&tz).date_naive();
        self.history.iter().filter(|a| a.at.with_timezone(&tz).date_naive() == day).count() as u32
    }

    /// Records the placed call of a new attempt (status `in_call`).
    pub fn placed(&mut self, call_id: CallId, now: DateTime<Utc>) {
        self.attempts += 1;
        self.history.push(Attempt {
            n: self.attempts,
            call_id: call_id.clone(),
            at: crate::time::to_ms(now),
            outcome: None,
        });
        if self.history.len() > HISTORY {
            self.history.remove(0);
        }
        self.current_call_id = Some(call_id);
        self.status = EnrollmentStatus::InCall;
        self.lease = None;
        self.reason = None;
        self.updated_at = crate::time::to_ms(now);
    }

    /// Applies the outcome of the call `call_id` with the campaign's retry
    /// policy. Returns false (and changes nothing) when the call is not the
    /// current attempt's or its outcome was already applied.
    pub fn record_outcome(
        &mut self,
        call_id: &CallId,
        outcome: Outcome,
        campaign: &Campaign,
        now: DateTime<Utc>,
    ) -> bool {
        if self.current_call_id.as_ref() != Some(call_id) || !self.status.is_in_flight() {
            return false;
        }
        if let Some(a) = self.history.iter_mut().rev().find(|a| &a.call_id == call_id) {
            a.outcome = Some(outcome);
        }
        self.settle(outcome, campaign, now);
        true
    }

    /// Cancels a waiting enrollment (never dialled, or between retries)
    /// with `why`; returns false, changing nothing, when it is dialling, in a
    /// call or already final.
    pub fn cancel_waiting(&mut self, why: &str, now: DateTime<Utc>) -> bool {
        if !self.status.is_waiting() {
            return false;
        }
        self.status = EnrollmentStatus::Cancelled;
        self.reason = Some(why.to_owned());
        self.updated_at = crate::time::to_ms(now);
        true
    }

    /// Ends an in-call attempt whose call record is gone (or was never
    /// linked) as `failed`, with `why` in front of the retry rule's reason,
    /// so it frees its slot and the campaign can finish. Returns whether it
    /// changed anything.
    pub fn end_lost_attempt(&mut self, why: &str, campaign: &Campaign, now: DateTime<Utc>) -> bool {
        if self.status != EnrollmentStatus::InCall {
            return false;
        }
        if let Some(cid) = self.current_call_id.clone()
            && let Some(a) = self.history.iter_mut().rev().find(|a| a.call_id == cid)
        {
            a.outcome = Some(Outcome::Failed);
        }
        self.settle(Outcome::Failed, campaign, now);
        self.reason = Some(format!("{why}; {}", self.reason.as_deref().unwrap_or("attempt ended")));
        true
    }

    /// The waiting status it returns to when a claim or attempt is undone:
    /// `pending` before its first attempt, `retry_wait` after one.
    pub fn waiting_status(&self) -> EnrollmentStatus {
        if self.attempts == 0 { EnrollmentStatus::Pending } else { EnrollmentStatus::RetryWait }
    }

    /// A copy as it would stand without the dialer's claim (its
    /// [`waiting_status`](Self::waiting_status), nothing else changed), for
    /// re-running [`evaluate`] at claim time. Not a transition: never stored.
    pub fn as_unclaimed(&self) -> Enrollment {
        let mut e = self.clone();
        e.status = self.waiting_status();
        e
    }

    /// Puts a claimed enrollment that will not be dialled now back to
    /// waiting, with `reason`: when a dialer's lease expired before a call
    /// was placed, or the claim-time check found it not dialable yet (or its
    /// campaign paused or stopped). Afterwards it has no lease, its
    /// [`waiting_status`](Self::waiting_status), `reason`, and
    /// `updated_at = now`; with `next_at` it is not due before
    /// `max(next_at, now)`, without it its due time is kept.
    pub fn release_claim(&mut self, next_at: Option<DateTime<Utc>>, reason: String, now: DateTime<Utc>) {
        self.status = self.waiting_status();
        self.lease = None;
        if let Some(next) = next_at {
            self.next_attempt_at = next.max(now);
        }
        self.reason = Some(reason);
        self.updated_at = now;
    }

    /// Hands a claimed enrollment back untouched when the campaign's dial
    /// gate has no capacity for it now: it returns to its
    /// [`waiting_status`](Self::waiting_status) without a lease, and keeps
    /// its due time, reason and `updated_at`, so it is still due at once.
    pub fn hand_back(&mut self) {
        self.status = self.waiting_status();
        self.lease = None;
    }

    /// Finishes a claimed enrollment as `skipped` with `reason`, whatever
    /// its attempts, when it cannot be dialled at all (its contact is gone).
    /// Afterwards it has no lease and `updated_at = now`.
    pub fn skip(&mut self, reason: String, now: DateTime<Utc>) {
        self.status = EnrollmentStatus::Skipped;
        self.lease = None;
        self.reason = Some(reason);
        self.updated_at = now;
    }

    /// Finishes a claimed enrollment that can never be dialled again
    /// (do-not-call, attempts used, schedule closed) with `reason`:
    /// `skipped` if it was never dialled, `failed` if it was. Afterwards it
    /// has no lease and `updated_at = now`; its due time is kept.
    pub fn finish_without_call(&mut self, reason: String, now: DateTime<Utc>) {
        self.status = if self.attempts > 0 { EnrollmentStatus::Failed } else { EnrollmentStatus::Skipped };
        self.lease = None;
        self.reason = Some(reason);
        self.updated_at = now;
    }

    /// Undoes the attempt of `call_id` recorded by [`placed`](Self::placed)
    /// when the provider surely never received the call (rate-limited,
    /// transport error): one attempt fewer, that attempt gone from the
    /// history, no current call, back to its
    /// [`waiting_status`](Self::waiting_status), due again at `retry_at`,
    /// with `reason`. `updated_at` is kept.
    pub fn undo_placement(&mut self, call_id: &CallId, retry_at: DateTime<Utc>, reason: String) {
        self.attempts = self.attempts.saturating_sub(1);
        self.history.retain(|a| &a.call_id != call_id);
        self.current_call_id = None;
        self.status = self.waiting_status();
        self.next_attempt_at = retry_at;
        self.reason = Some(reason);
    }

    /// Replaces the reason of an enrollment whose placement the provider
    /// refused for good, once the failed call's outcome has been applied
    /// (by [`record_outcome`](Self::record_outcome)), so it shows the
    /// refusal. Changes nothing else.
    pub fn placement_refused(&mut self, reason: String) {
        self.reason = Some(reason);
    }

    /// Moves an in-flight enrollment on after `outcome`, by the retry policy.
    fn settle(&mut self, outcome: Outcome, campaign: &Campaign, now: DateTime<Utc>) {
        let now = crate::time::to_ms(now);
        self.last_outcome = Some(outcome);
        self.current_call_id = None;
        self.lease = None;
        self.updated_at = now;
        let rule = match outcome {
            Outcome::Answered => {
                self.status = EnrollmentStatus::Completed;
                self.reason = None;
                return;
            }
            Outcome::Voicemail => campaign.retry.voicemail,
            Outcome::Busy => campaign.retry.busy,
            Outcome::NoAnswer => campaign.retry.no_answer,
            Outcome::Failed => campaign.retry.failed,
        };
        if !rule.retry {
            self.status = EnrollmentStatus::Failed;
            self.reason = Some(format!("{outcome}: the retry policy does not retry it"));
        } else if self.attempts >= campaign.retry.max_attempts {
            self.status = EnrollmentStatus::Failed;
            self.reason = Some(format!("{outcome}: all {} attempts used", campaign.retry.max_attempts));
        } else {
            self.status = EnrollmentStatus::RetryWait;
            self.next_attempt_at = now + Duration::seconds(rule.delay_secs as i64);
            self.reason = Some(format!("{outcome}: retry after {} s", rule.delay_secs));
        }
    }
}

/// One attempt of one enrollment: `enr_…:n`. It is the placement's
/// idempotency key (sent to ElevenLabs as `user_id`) and the attempt's slot
/// in the campaign's dial gate.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttemptKey {
    /// The enrollment.
    pub enrollment: EnrollmentId,
    /// The attempt number (1 for the first call).
    pub attempt: u32,
}

impl std::fmt::Display for AttemptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.enrollment, self.attempt)
    }
}

impl std::str::FromStr for AttemptKey {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (e, n) = s.rsplit_once(':').ok_or_else(|| format!("`{s}` is not `enrollment:attempt`"))?;
        Ok(AttemptKey {
            enrollment: EnrollmentId::parse(e).map_err(|err| err.to_string())?,
            attempt: n.parse().map_err(|_| format!("`{n}` is not an attempt number"))?,
        })
    }
}

/// One reason an enrollment cannot be dialled now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Blocker {
    /// The campaign is not running.
    CampaignNotRunning {
        /// Its status.
        status: CampaignStatus,
    },
    /// The enrollment is finished or a call is in flight.
    EnrollmentStatus {
        /// Its status.
        status: EnrollmentStatus,
    },
    /// The contact is on the do-not-call list.
    DoNotCall {
        /// Why.
        reason: String,
    },
    /// Every attempt is used.
    MaxAttemptsReached {
        /// The cap.
        max_attempts: u32,
    },
    /// Today's attempts are used (recipient-local day).
    DailyCapReached {
        /// The cap.
        daily_cap: u32,
    },
    /// Waiting out a retry delay.
    RetryDelay {
        /// Until when.
        until: DateTime<Utc>,
    },
    /// Outside the calling windows, before the start, or on a holiday (recipient-local).
    OutsideCallingWindow {
        /// The recipient's zone.
        time_zone: String,
        /// The recipient's local time now.
        local_time: String,
    },
    /// The schedule never opens again (ended, or no window within a year).
    ScheduleClosed,
}

/// The answer to "can this enrollment be dialled now, and if not, why and when".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Eligibility {
    /// Dialable at `now`.
    pub dialable: bool,
    /// Every reason it is not.
    pub reasons: Vec<Blocker>,
    /// When it next becomes dialable (ignoring a paused campaign), or `None` if never.
    pub next_dialable_at: Option<DateTime<Utc>>,
    /// The zone its windows are evaluated in.
    pub time_zone: String,
}

/// Evaluates an enrollment at `now` (pure; the dialer re-runs it at claim time).
pub fn evaluate(campaign: &Campaign, contact: &Contact, e: &Enrollment, now: DateTime<Utc>) -> Eligibility {
    let tz_name = contact.effective_time_zone(&campaign.schedule.time_zone).to_owned();
    let tz: Tz = tz_name.parse().unwrap_or_else(|_| campaign.default_tz());
    let mut reasons = Vec::new();
    let mut permanent = false;
    match campaign.status {
        CampaignStatus::Running => {}
        CampaignStatus::Completed | CampaignStatus::Cancelled => {
            reasons.push(Blocker::CampaignNotRunning { status: campaign.status });
            permanent = true;
        }
        // Draft, scheduled and paused campaigns may run later: report it, keep computing when.
        s => reasons.push(Blocker::CampaignNotRunning { status: s }),
    }
    if !e.status.is_waiting() {
        reasons.push(Blocker::EnrollmentStatus { status: e.status });
        permanent |= e.status.is_final();
    }
    if let Some(d) = &contact.do_not_call {
        reasons.push(Blocker::DoNotCall { reason: d.reason.clone() });
        permanent = true;
    }
    if e.attempts >= campaign.retry.max_attempts {
        reasons.push(Blocker::MaxAttemptsReached { max_attempts: campaign.retry.max_attempts });
        permanent = true;
    }
    // The earliest moment the time-based rules allow, then the first window from there.
    // (A pending enrollment's `next_attempt_at` is only the dialer's scheduling hint.)
    let mut earliest = now;
    if e.status == EnrollmentStatus::RetryWait && e.next_attempt_at > now {
        reasons.push(Blocker::RetryDelay { until: e.next_attempt_at });
        earliest = e.next_attempt_at;
    }
    if e.attempts_on_day(tz, now) >= campaign.retry.daily_cap {
        reasons.push(Blocker::DailyCapReached { daily_cap: campaign.retry.daily_cap });
        let tomorrow = (now.with_timezone(&tz).date_naive() + Duration::days(1)).and_time(NaiveTime::MIN);
        let midnight = tomorrow.and_local_timezone(tz).earliest().map(|t| t.with_timezone(&Utc)).unwrap_or(now);
        earliest = earliest.max(midnight);
    }
    let open = campaign.schedule.next_open(tz, earliest);
    match open {
        None => {
            reasons.push(Blocker::ScheduleClosed);
            permanent = true;
        }
        Some(t) if t > earliest => reasons.push(Blocker::OutsideCallingWindow {
            time_zone: tz_name.clone(),
            local_time: now.with_timezone(&tz).format("%a %Y-%m-%d %H:%M").to_string(),
        }),
        Some(_) => {}
    }
    let next = if permanent { None } else { open };
    let dialable = reasons.is_empty();
    Eligibility { dialable, reasons, next_dialable_at: next, time_zone: tz_name }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::campaign::{AgentSettings, CampaignInput};
    use crate::contact::ContactInput;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn campaign(now: DateTime<Utc>) -> Campaign {
        let mut c = CampaignInput {
            name: Some("c".into()),
            agent: Some(AgentSettings {
                agent_id: "a".into(),
                caller_id: Some("+15005550001".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .apply(None, now)
        .unwrap();
        c.status = CampaignStatus::Running;
        c
    }

    fn contact(tz: Option<&str>, now: DateTime<Utc>) -> Contact {
        ContactInput { phone: Some("+14155552671".into()), time_zone: tz.map(str::to_owned), ..Default::default() }
            .validate("US", now)
            .unwrap()
    }

    #[test]
    fn a_due_contact_inside_its_window_is_dialable() {
        // Thu 2026-11-26 15:00Z = 10:00 in New York (the campaign default).
        let now = utc("2026-11-26T15:00:00Z");
        let (c, k) = (campaign(now), contact(None, now));
        let e = Enrollment::new(c.id.clone(), k.id.clone(), now);
        let el = evaluate(&c, &k, &e, now);
        assert!(el.dialable, "{el:?}");
        assert_eq!(el.next_dialable_at, Some(now));
        assert_eq!(el.time_zone, "America/New_York");
    }

    #[test]
    fn every_reason_is_listed_with_the_next_dialable_time() {
        let now = utc("2026-11-26T15:00:00Z");
        let mut c = campaign(now);
        c.status = CampaignStatus::Paused;
        // 07:00 in Los Angeles: before the 09:00 window.
        let k = contact(Some("America/Los_Angeles"), now);
        let e = Enrollment::new(c.id.clone(), k.id.clone(), now);
        let el = evaluate(&c, &k, &e, now);
        assert!(!el.dialable);
        assert_eq!(el.reasons.len(), 2, "{:?}", el.reasons);
        assert!(matches!(el.reasons[0], Blocker::CampaignNotRunning { status: CampaignStatus::Paused }));
        assert!(
            matches!(&el.reasons[1], Blocker::OutsideCallingWindow { local_time, .. } if local_time == "Thu 2026-11-26 07:00")
        );
        assert_eq!(el.next_dialable_at, Some(utc("2026-11-26T17:00:00Z")));
    }

    /// The holiday set-up of the end-to-end dialer test and the campaigns
    /// bench ("today and tomorrow in Kiritimati are off"), checked at every
    /// hour of a day: the Kiritimati contacts are always on holiday and the
    /// UTC−12 ones never (26 hours apart, their dates always differ), so the
    /// test holds whatever hour CI runs it.
    #[test]
    fn kiritimati_holidays_never_touch_utc_minus_12_at_any_hour() {
        use chrono::TimeZone;
        let kiri: chrono_tz::Tz = "Pacific/Kiritimati".parse().unwrap();
        for hour in 0..24 {
            for minute in [0, 30] {
                let now = chrono::Utc.with_ymd_and_hms(2026, 11, 30, hour, minute, 0).unwrap();
                let mut c = campaign(now);
                c.schedule.windows = vec![crate::campaign::CallingWindow {
                    days: crate::campaign::Day::ALL.to_vec(),
                    start: "00:00".into(),
                    end: "23:59".into(),
                }];
                let today = now.with_timezone(&kiri).date_naive();
                c.schedule.holidays = vec![today, today + Duration::days(1)];
                let off = contact(Some("Pacific/Kiritimati"), now);
                let on = contact(Some("Etc/GMT+12"), now);
                let (e_off, e_on) = (
                    Enrollment::new(c.id.clone(), off.id.clone(), now),
                    Enrollment::new(c.id.clone(), on.id.clone(), now),
                );
                let el = evaluate(&c, &off, &e_off, now);
                assert!(!el.dialable, "{now}: Kiritimati is on holiday: {el:?}");
                let el = evaluate(&c, &on, &e_on, now);
                assert!(el.dialable, "{now}: UTC-12 is never on holiday: {el:?}");
            }
        }
    }

    #[test]
    fn attempt_keys_round_trip_and_refuse_garbage() {
        let now = utc("2026-11-26T15:00:00Z");
        let c = campaign(now);
        let k = contact(None, now);
        let mut e = Enrollment::new(c.id.clone(), k.id.clone(), now);
        assert_eq!(e.next_attempt_key().attempt, 1);
        e.placed(CallId::new(), now);
        let key = e.attempt_key();
        assert_eq!(key, e.key_of_attempt(1));
        assert_eq!(key.to_string(), format!("{}:1", e.id));
        assert_eq!(key.to_string().parse::<AttemptKey>().unwrap(), key);
        assert!("nope".parse::<AttemptKey>().is_err());
        assert!(format!("{}:x", e.id).parse::<AttemptKey>().is_err());
        assert!("enr_bad:1".parse::<AttemptKey>().is_err());
    }

    #[test]
    fn dnc_and_used_attempts_are_permanent() {
        let now = utc("2026-11-26T15:00:00Z");
        let c = campaign(now);
        let mut k = contact(None, now);
        k.do_not_call = Some(crate::contact::DoNotCall { reason: "asked".into(), since: now });
        let mut e = Enrollment::new(c.id.clone(), k.id.clone(), now);
        e.attempts = 3;
        let el = evaluate(&c, &k, &e, now);
        assert_eq!(el.next_dialable_at, None);
        assert!(el.reasons.iter().any(|r| matches!(r, Blocker::DoNotCall { .. })));
        assert!(el.reasons.iter().any(|r| matches!(r, Blocker::MaxAttemptsReached { max_attempts: 3 })));
    }

    #[test]
    fn outcomes_follow_the_retry_policy_and_caps() {
        let now = utc("2026-11-26T15:00:00Z");
        let c = campaign(now);
        let k = contact(None, now);
        let mut e = Enrollment::new(c.id.clone(), k.id.clone(), now);
        let call1 = CallId::new();
        e.placed(call1.clone(), now);
        assert!(!e.record_outcome(&CallId::new(), Outcome::Busy, &c, now), "another call's outcome is ignored");
        assert!(e.record_outcome(&call1, Outcome::Busy, &c, now));
        assert!(!e.record_outcome(&call1, Outcome::Busy, &c, now), "applied once");
        assert_eq!(e.status, EnrollmentStatus::RetryWait);
        assert_eq!(e.next_attempt_at, now + Duration::minutes(30));
        let el = evaluate(&c, &k, &e, now + Duration::minutes(10));
        assert!(matches!(el.reasons[..], [Blocker::RetryDelay { .. }]), "{:?}", el.reasons);
        assert_eq!(el.next_dialable_at, Some(now + Duration::minutes(30)));

        // Second attempt the same day: the daily cap (2) is reached; next is tomorrow 09:00 local.
        let t2 = now + Duration::minutes(31);
        let call2 = CallId::new();
        e.status = EnrollmentStatus::Dialing;
        e.placed(call2.clone(), t2);
        e.record_outcome(&call2, Outcome::NoAnswer, &c, t2);
        let el = evaluate(&c, &k, &e, t2 + Duration::hours(3));
        assert!(el.reasons.iter().any(|r| matches!(r, Blocker::DailyCapReached { daily_cap: 2 })), "{:?}", el.reasons);
        assert_eq!(el.next_dialable_at, Some(utc("2026-11-27T14:00:00Z")));

        // Third attempt answered by a machine with max_attempts 3: failed for good.
        let t3 = utc("2026-11-27T14:00:00Z");
        let call3 = CallId::new();
        e.status = EnrollmentStatus::Dialing;
        e.placed(call3.clone(), t3);
        e.record_outcome(&call3, Outcome::Voicemail, &c, t3);
        assert_eq!(e.status, EnrollmentStatus::Failed);
        assert_eq!(e.reason.as_deref(), Some("voicemail: all 3 attempts used"));

        let mut won = Enrollment::new(c.id.clone(), k.id.clone(), now);
        let call = CallId::new();
        won.placed(call.clone(), now);
        won.record_outcome(&call, Outcome::Answered, &c, now);
        assert_eq!(won.status, EnrollmentStatus::Completed);
    }

    /// A claimed (dialling, leased) enrollment, as `claim_enrollment` returns it.
    fn claimed(attempts: u32, now: DateTime<Utc>) -> Enrollment {
        let c = campaign(now);
        let k = contact(None, now);
        let mut e = Enrollment::new(c.id.clone(), k.id.clone(), now);
        e.attempts = attempts;
        e.status = EnrollmentStatus::Dialing;
        e.lease = Some(Lease { owner: "d1".into(), expires_at: now + Duration::minutes(2) });
        e.lease_token = 1;
        e
    }

    #[test]
    fn waiting_status_and_unclaimed_view_follow_attempts() {
        let now = utc("2026-11-26T15:00:00Z");
        let e = claimed(0, now);
        assert_eq!(e.waiting_status(), EnrollmentStatus::Pending);
        let view = e.as_unclaimed();
        assert_eq!(view.status, EnrollmentStatus::Pending);
        assert_eq!(Enrollment { status: e.status, ..view }, e, "nothing else changes");
        assert_eq!(claimed(2, now).waiting_status(), EnrollmentStatus::RetryWait);
        assert_eq!(claimed(2, now).as_unclaimed().status, EnrollmentStatus::RetryWait);
    }

    #[test]
    fn release_claim_returns_to_waiting_without_a_lease() {
        let now = utc("2026-11-26T15:00:00Z");
        let later = now + Duration::minutes(5);
        let mut e = claimed(0, now);
        let due = e.next_attempt_at;
        e.release_claim(None, "lease expired".into(), later);
        assert_eq!(e.status, EnrollmentStatus::Pending);
        assert_eq!(e.lease, None);
        assert_eq!(e.next_attempt_at, due, "due time kept without next_at");
        assert_eq!(e.reason.as_deref(), Some("lease expired"));
        assert_eq!(e.updated_at, later);
        assert_eq!(e.lease_token, 1);

        let mut e = claimed(1, now);
        e.release_claim(Some(now + Duration::hours(2)), "outside window".into(), now);
        assert_eq!(e.status, EnrollmentStatus::RetryWait);
        assert_eq!(e.next_attempt_at, now + Duration::hours(2));
        let mut e = claimed(1, now);
        e.release_claim(Some(now - Duration::hours(2)), "late".into(), now);
        assert_eq!(e.next_attempt_at, now, "never due in the past");
    }

    #[test]
    fn hand_back_changes_only_status_and_lease() {
        let now = utc("2026-11-26T15:00:00Z");
        let mut e = claimed(1, now);
        e.reason = Some("earlier".into());
        let before = e.clone();
        e.hand_back();
        assert_eq!(e.status, EnrollmentStatus::RetryWait);
        assert_eq!(e.lease, None);
        assert_eq!(Enrollment { status: before.status, lease: before.lease.clone(), ..e }, before);
    }

    #[test]
    fn skip_and_finish_without_call_are_final_without_a_lease() {
        let now = utc("2026-11-26T15:00:00Z");
        let later = now + Duration::minutes(1);
        let mut e = claimed(2, now);
        e.skip("contact deleted".into(), later);
        assert_eq!(e.status, EnrollmentStatus::Skipped, "skipped whatever its attempts");
        assert_eq!(e.lease, None);
        assert_eq!(e.reason.as_deref(), Some("contact deleted"));
        assert_eq!(e.updated_at, later);

        let mut never = claimed(0, now);
        let due = never.next_attempt_at;
        never.finish_without_call("dnc".into(), later);
        assert_eq!(never.status, EnrollmentStatus::Skipped);
        assert_eq!(never.lease, None);
        assert_eq!(never.reason.as_deref(), Some("dnc"));
        assert_eq!(never.updated_at, later);
        assert_eq!(never.next_attempt_at, due);
        let mut tried = claimed(1, now);
        tried.finish_without_call("schedule closed".into(), later);
        assert_eq!(tried.status, EnrollmentStatus::Failed);
        assert_eq!(tried.lease, None);
        assert!(tried.status.is_final() && never.status.is_final());
    }

    #[test]
    fn undo_placement_restores_the_attempt_before_it() {
        let now = utc("2026-11-26T15:00:00Z");
        let mut e = claimed(0, now);
        let first = CallId::new();
        e.placed(first.clone(), now);
        e.record_outcome(&first, Outcome::Busy, &campaign(now), now);
        e.status = EnrollmentStatus::Dialing;
        let call = CallId::new();
        e.placed(call.clone(), now + Duration::minutes(31));
        let stamped = e.updated_at;
        e.undo_placement(&call, now + Duration::minutes(32), "placement not accepted".into());
        assert_eq!(e.attempts, 1);
        assert_eq!(e.history.len(), 1);
        assert_eq!(e.history[0].call_id, first);
        assert_eq!(e.current_call_id, None);
        assert_eq!(e.status, EnrollmentStatus::RetryWait);
        assert_eq!(e.next_attempt_at, now + Duration::minutes(32));
        assert_eq!(e.reason.as_deref(), Some("placement not accepted"));
        assert_eq!(e.updated_at, stamped);

        let mut fresh = claimed(0, now);
        let call = CallId::new();
        fresh.placed(call.clone(), now);
        fresh.undo_placement(&call, now + Duration::minutes(1), "retry".into());
        assert_eq!((fresh.attempts, fresh.history.len()), (0, 0));
        assert_eq!(fresh.status, EnrollmentStatus::Pending);
    }

    #[test]
    fn placement_refused_replaces_only_the_reason() {
        let now = utc("2026-11-26T15:00:00Z");
        let c = campaign(now);
        let mut e = claimed(0, now);
        let call = CallId::new();
        e.placed(call.clone(), now);
        e.record_outcome(&call, Outcome::Failed, &c, now);
        let before = e.clone();
        e.placement_refused("placement refused: bad number".into());
        assert_eq!(e.reason.as_deref(), Some("placement refused: bad number"));
        assert_eq!(Enrollment { reason: before.reason.clone(), ..e }, before);
    }
}
