//! Campaigns (architecture §4): agent settings, schedule, pacing, retry
//! policy, dialling mode and the lifecycle
//! draft → scheduled → running ⇄ paused → completed | cancelled.
//!
//! [`Schedule::next_open`] answers "when may this person next be called":
//! weekly windows are evaluated in the recipient's local time zone (with
//! its DST rules), holidays are skipped, and the campaign's start and end
//! bound the answer.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::contact::FieldError;
use crate::{CampaignId, string_enum};

string_enum! {
    /// Campaign status.
    pub enum CampaignStatus {
        /// Being set up; never dialled.
        Draft => "draft",
        /// Started, waiting for its start time.
        Scheduled => "scheduled",
        /// Dialling.
        Running => "running",
        /// No new calls; calls in flight finish.
        Paused => "paused",
        /// Every enrollment is final.
        Completed => "completed",
        /// Stopped for good.
        Cancelled => "cancelled",
    }
}

string_enum! {
    /// An operator's lifecycle action.
    pub enum CampaignAction {
        /// draft → scheduled (start time ahead) or running.
        Start => "start",
        /// running → paused.
        Pause => "pause",
        /// paused → running.
        Resume => "resume",
        /// any non-final → cancelled.
        Cancel => "cancel",
    }
}

/// An action is not allowed in the current status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} a campaign that is {from}")]
pub struct TransitionError {
    /// Current status.
    pub from: CampaignStatus,
    /// Attempted action.
    pub action: CampaignAction,
}

impl CampaignStatus {
    /// Whether the status is final.
    pub fn is_final(self) -> bool {
        matches!(self, CampaignStatus::Completed | CampaignStatus::Cancelled)
    }

    /// The status an action leads to from this one. `starts_later` says
    /// whether the campaign's start time is still ahead.
    pub fn after(self, action: CampaignAction, starts_later: bool) -> Result<CampaignStatus, TransitionError> {
        use CampaignAction as A;
        use CampaignStatus as S;
        match (self, action) {
            (S::Draft, A::Start) if starts_later => Ok(S::Scheduled),
            (S::Draft, A::Start) => Ok(S::Running),
            (S::Running, A::Pause) => Ok(S::Paused),
            (S::Paused, A::Resume) => Ok(S::Running),
            (S::Draft | S::Scheduled | S::Running | S::Paused, A::Cancel) => Ok(S::Cancelled),
            (from, action) => Err(TransitionError { from, action }),
        }
    }
}

string_enum! {
    /// How calls are placed.
    pub enum DialMode {
        /// Create the call on Twilio (our callbacks, recording, AMD) and connect it to the agent with register-call TwiML.
        TwilioFirst => "twilio_first",
        /// ElevenLabs places it (`/v1/convai/twilio/outbound-call`); telephony facts come from Twilio afterwards.
        ElevenLabsNative => "elevenlabs_native",
    }
}

/// The ElevenLabs agent a campaign uses and what it is told.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSettings {
    /// ElevenLabs `agent_id`.
    pub agent_id: String,
    /// ElevenLabs imported phone number id (ElevenLabs-native mode).
    pub phone_number_id: Option<String>,
    /// Caller ID (E.164) for Twilio-first mode.
    pub caller_id: Option<String>,
    /// First-message override.
    pub first_message: Option<String>,
    /// Prompt override.
    pub prompt: Option<String>,
    /// Dynamic variables; values may use `{{contact.name}}`, `{{contact.phone}}`,
    /// `{{contact.email}}` and `{{contact.custom.KEY}}`.
    pub dynamic_variables: BTreeMap<String, String>,
}

/// A weekly calling window in the recipient's local time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallingWindow {
    /// Days (`mon` … `sun`).
    pub days: Vec<Day>,
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end (exclusive), `HH:MM`; after `start`.
    pub end: String,
}

string_enum! {
    /// A day of the week.
    pub enum Day {
        /// Monday.
        Mon => "mon",
        /// Tuesday.
        Tue => "tue",
        /// Wednesday.
        Wed => "wed",
        /// Thursday.
        Thu => "thu",
        /// Friday.
        Fri => "fri",
        /// Saturday.
        Sat => "sat",
        /// Sunday.
        Sun => "sun",
    }
}

impl Day {
    fn of(w: Weekday) -> Day {
        match w {
            Weekday::Mon => Day::Mon,
            Weekday::Tue => Day::Tue,
            Weekday::Wed => Day::Wed,
            Weekday::Thu => Day::Thu,
            Weekday::Fri => Day::Fri,
            Weekday::Sat => Day::Sat,
            Weekday::Sun => Day::Sun,
        }
    }
}

fn hhmm(s: &str) -> Option<NaiveTime> {
    NaiveTime::parse_from_str(s, "%H:%M").ok()
}

/// When a campaign may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Schedule {
    /// No call before this.
    pub start_at: Option<DateTime<Utc>>,
    /// No call from this on.
    pub end_at: Option<DateTime<Utc>>,
    /// Weekly windows (recipient-local); none means any time.
    pub windows: Vec<CallingWindow>,
    /// Local dates with no calls.
    pub holidays: Vec<NaiveDate>,
    /// IANA zone for contacts whose zone is unknown.
    pub time_zone: String,
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            start_at: None,
            end_at: None,
            windows: vec![CallingWindow {
                days: vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
                start: "09:00".into(),
                end: "20:00".into(),
            }],
            holidays: vec![],
            time_zone: "America/New_York".into(),
        }
    }
}

/// Converts a local wall-clock time to UTC. In a DST gap the wall clock
/// jumps, so the first instant after the gap is used; in an overlap, the earlier.
fn local_to_utc(tz: Tz, ndt: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&ndt) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, _) => a.with_timezone(&Utc),
        LocalResult::None => {
            // Walk forward minute by minute to the end of the gap (gaps are at most a few hours).
            let mut probe = ndt;
            for _ in 0..(24 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = tz.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            Utc.from_utc_datetime(&ndt)
        }
    }
}

impl Schedule {
    /// Validates the schedule; every problem is reported.
    pub fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.time_zone.parse::<Tz>().is_err() {
            errors
                .push(FieldError::new("schedule.time_zone", format!("`{}` is not an IANA time zone", self.time_zone)));
        }
        if let (Some(s), Some(e)) = (self.start_at, self.end_at)
            && e <= s
        {
            errors.push(FieldError::new("schedule.end_at", "must be after start_at"));
        }
        for (i, w) in self.windows.iter().enumerate() {
            match (hhmm(&w.start), hhmm(&w.end)) {
                (Some(s), Some(e)) if s < e => {}
                (None, _) => errors.push(FieldError::new(format!("schedule.windows[{i}].start"), "must be HH:MM")),
                (_, None) => errors.push(FieldError::new(format!("schedule.windows[{i}].end"), "must be HH:MM")),
                _ => errors.push(FieldError::new(format!("schedule.windows[{i}].end"), "must be after start")),
            }
            if w.days.is_empty() {
                errors.push(FieldError::new(format!("schedule.windows[{i}].days"), "needs at least one day"));
            }
        }
    }

    /// The first instant at or after `from` at which a call to someone in
    /// `tz` is allowed, or `None` if there is none (the campaign has ended,
    /// or no window opens within a year).
    pub fn next_open(&self, tz: Tz, from: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let from = match self.start_at {
            Some(s) if s > from => s,
            _ => from,
        };
        let before_end = |t: DateTime<Utc>| self.end_at.is_none_or(|e| t < e);
        let local_from = from.with_timezone(&tz).date_naive();
        for offset in 0..=370 {
            let date = local_from + Duration::days(offset);
            if self.holidays.contains(&date) {
                continue;
            }
            if self.windows.is_empty() {
                let t = if offset == 0 { from } else { local_to_utc(tz, date.and_time(NaiveTime::MIN)) };
                return before_end(t).then_some(t);
            }
            let mut best: Option<DateTime<Utc>> = None;
            for w in &self.windows {
                if !w.days.contains(&Day::of(date.weekday())) {
                    continue;
                }
                let (Some(s), Some(e)) = (hhmm(&w.start), hhmm(&w.end)) else { continue };
                let start = local_to_utc(tz, date.and_time(s));
                let end = local_to_utc(tz, date.and_time(e));
                let candidate = if from >= end {
                    continue;
                } else if from >= start {
                    from
                } else {
                    start
                };
                best = Some(best.map_or(candidate, |b| b.min(candidate)));
            }
            if let Some(t) = best {
                return before_end(t).then_some(t);
            }
            if self.end_at.is_some_and(|e| local_to_utc(tz, date.and_time(NaiveTime::MIN)) >= e) {
                return None;
            }
        }
        None
    }
}

/// Calls at once and per minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Pacing {
    /// Calls in flight at once, across all instances.
    pub max_concurrent: u32,
    /// Calls started per minute, across all instances (spaced evenly).
    pub calls_per_minute: u32,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing { max_concurrent: 5, calls_per_minute: 30 }
    }
}

impl Pacing {
    /// Spacing between two call starts.
    pub fn interval(&self) -> Duration {
        Duration::milliseconds(60_000 / i64::from(self.calls_per_minute.max(1)))
    }
}

/// What to do after one outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    /// Try again.
    pub retry: bool,
    /// After this long.
    pub delay_secs: u64,
}

/// Retries per outcome and caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    /// Busy signal.
    pub busy: RetryRule,
    /// No answer.
    pub no_answer: RetryRule,
    /// Answered by a machine.
    pub voicemail: RetryRule,
    /// Could not be placed / carrier failure.
    pub failed: RetryRule,
    /// Attempts in all.
    pub max_attempts: u32,
    /// Attempts per contact per local day.
    pub daily_cap: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            busy: RetryRule { retry: true, delay_secs: 30 * 60 },
            no_answer: RetryRule { retry: true, delay_secs: 2 * 3600 },
            voicemail: RetryRule { retry: true, delay_secs: 4 * 3600 },
            failed: RetryRule { retry: false, delay_secs: 3600 },
            max_attempts: 3,
            daily_cap: 2,
        }
    }
}

/// A stored campaign.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Campaign {
    /// Our id.
    pub id: CampaignId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Status.
    pub status: CampaignStatus,
    /// Agent.
    pub agent: AgentSettings,
    /// Schedule.
    pub schedule: Schedule,
    /// Pacing.
    pub pacing: Pacing,
    /// Retries.
    pub retry: RetryPolicy,
    /// Dialling mode.
    pub dial_mode: DialMode,
    /// Earliest next call start (pacing, maintained by the store's dial gate).
    pub next_dial_at: DateTime<Utc>,
    /// Keys of calls in flight (`enrollment:attempt`), at most `max_concurrent` (the store's dial gate).
    pub inflight: Vec<String>,
    /// Calls placed so far.
    pub dials: u64,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A campaign as the API receives it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignInput {
    /// Name (required on create).
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Agent settings.
    pub agent: Option<AgentSettings>,
    /// Schedule.
    pub schedule: Option<Schedule>,
    /// Pacing.
    pub pacing: Option<Pacing>,
    /// Retries.
    pub retry: Option<RetryPolicy>,
    /// Dialling mode (default Twilio-first).
    pub dial_mode: Option<DialMode>,
}

impl CampaignInput {
    /// Applies the given fields to `c` (or a new draft) and validates the result.
    pub fn apply(&self, base: Option<&Campaign>, now: DateTime<Utc>) -> Result<Campaign, Vec<FieldError>> {
        let now = crate::time::to_ms(now);
        let mut c = base.cloned().unwrap_or_else(|| Campaign {
            id: CampaignId::new(),
            name: String::new(),
            description: None,
            status: CampaignStatus::Draft,
            agent: AgentSettings::default(),
            schedule: Schedule::default(),
            pacing: Pacing::default(),
            retry: RetryPolicy::default(),
            dial_mode: DialMode::TwilioFirst,
            next_dial_at: now,
            inflight: vec![],
            dials: 0,
            created_at: now,
            updated_at: now,
            version: 1,
        });
        if let Some(n) = &self.name {
            c.name = n.trim().to_owned();
        }
        if let Some(d) = &self.description {
            c.description = (!d.trim().is_empty()).then(|| d.trim().to_owned());
        }
        if let Some(a) = &self.agent {
            c.agent = a.clone();
        }
        if let Some(s) = &self.schedule {
            c.schedule = s.clone();
        }
        if let Some(p) = self.pacing {
            c.pacing = p;
        }
        if let Some(r) = self.retry {
            c.retry = r;
        }
        if let Some(m) = self.dial_mode {
            c.dial_mode = m;
        }
        c.updated_at = now;
        let errors = c.problems();
        if errors.is_empty() { Ok(c) } else { Err(errors) }
    }

    /// Whether the update touches only what may change while a campaign is live (name, description, pacing).
    pub fn live_safe(&self) -> bool {
        self.agent.is_none() && self.schedule.is_none() && self.retry.is_none() && self.dial_mode.is_none()
    }
}

impl Campaign {
    /// Everything wrong with the campaign's settings.
    pub fn problems(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        if self.name.is_empty() || self.name.chars().count() > 200 {
            errors.push(FieldError::new("name", "is required, at most 200 characters"));
        }
        if self.agent.agent_id.trim().is_empty() {
            errors.push(FieldError::new("agent.agent_id", "is required"));
        }
        for key in self.agent.dynamic_variables.keys() {
            if key.starts_with("system__") {
                errors
                    .push(FieldError::new(format!("agent.dynamic_variables.{key}"), "the system__ prefix is reserved"));
            }
        }
        match self.dial_mode {
            DialMode::ElevenLabsNative if self.agent.phone_number_id.is_none() => {
                errors.push(FieldError::new("agent.phone_number_id", "is required in elevenlabs_native mode"))
            }
            DialMode::TwilioFirst if self.agent.caller_id.is_none() => {
                errors.push(FieldError::new("agent.caller_id", "is required in twilio_first mode"))
            }
            _ => {}
        }
        if let Some(c) = &self.agent.caller_id
            && !crate::contact::is_e164(c)
        {
            errors.push(FieldError::new("agent.caller_id", "must be an E.164 number such as +15005550001"));
        }
        self.schedule.validate(&mut errors);
        if self.pacing.max_concurrent == 0 || self.pacing.max_concurrent > 1000 {
            errors.push(FieldError::new("pacing.max_concurrent", "must be 1..=1000"));
        }
        if self.pacing.calls_per_minute == 0 || self.pacing.calls_per_minute > 6000 {
            errors.push(FieldError::new("pacing.calls_per_minute", "must be 1..=6000"));
        }
        if self.retry.max_attempts == 0 || self.retry.max_attempts > 20 {
            errors.push(FieldError::new("retry.max_attempts", "must be 1..=20"));
        }
        if self.retry.daily_cap == 0 || self.retry.daily_cap > 10 {
            errors.push(FieldError::new("retry.daily_cap", "must be 1..=10"));
        }
        errors
    }

    /// The campaign's default zone.
    pub fn default_tz(&self) -> Tz {
        self.schedule.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn weekdays_9_to_5() -> Schedule {
        Schedule {
            windows: vec![CallingWindow {
                days: vec![Day::Mon, Day::Tue, Day::Wed, Day::Thu, Day::Fri],
                start: "09:00".into(),
                end: "17:00".into(),
            }],
            time_zone: "America/New_York".into(),
            ..Schedule::default()
        }
    }

    #[test]
    fn lifecycle_allows_only_the_documented_moves() {
        use CampaignAction as A;
        use CampaignStatus as S;
        assert_eq!(S::Draft.after(A::Start, false), Ok(S::Running));
        assert_eq!(S::Draft.after(A::Start, true), Ok(S::Scheduled));
        assert_eq!(S::Running.after(A::Pause, false), Ok(S::Paused));
        assert_eq!(S::Paused.after(A::Resume, false), Ok(S::Running));
        assert_eq!(S::Scheduled.after(A::Cancel, false), Ok(S::Cancelled));
        let e = S::Completed.after(A::Resume, false).unwrap_err();
        assert_eq!(e.to_string(), "cannot resume a campaign that is completed");
        assert!(S::Running.after(A::Start, false).is_err());
        assert!(S::Paused.after(A::Pause, false).is_err());
        assert!(S::Cancelled.after(A::Cancel, false).is_err());
    }

    #[test]
    fn windows_are_local_to_the_recipient() {
        let s = weekdays_9_to_5();
        let ny: Tz = "America/New_York".parse().unwrap();
        let la: Tz = "America/Los_Angeles".parse().unwrap();
        // Thu 2026-11-26 14:00Z = 09:00 in New York, 06:00 in Los Angeles.
        let t = utc("2026-11-26T14:00:00Z");
        assert_eq!(s.next_open(ny, t), Some(t));
        assert_eq!(s.next_open(la, t), Some(utc("2026-11-26T17:00:00Z")));
        // Friday 17:00 New York → Monday 09:00.
        assert_eq!(s.next_open(ny, utc("2026-11-27T22:00:00Z")), Some(utc("2026-11-30T14:00:00Z")));
    }

    #[test]
    fn dst_changes_move_the_utc_window() {
        let s = Schedule {
            windows: vec![CallingWindow { days: Day::ALL.to_vec(), start: "09:00".into(), end: "10:00".into() }],
            ..weekdays_9_to_5()
        };
        let ny: Tz = "America/New_York".parse().unwrap();
        // Before the 2026-03-08 spring-forward, 09:00 EST = 14:00Z; after it, 09:00 EDT = 13:00Z.
        assert_eq!(s.next_open(ny, utc("2026-03-07T15:00:00Z")), Some(utc("2026-03-08T13:00:00Z")));
        assert_eq!(s.next_open(ny, utc("2026-03-07T12:00:00Z")), Some(utc("2026-03-07T14:00:00Z")));
        // A window starting inside the gap (02:30 does not exist that day) opens when the gap ends.
        let gap = Schedule {
            windows: vec![CallingWindow { days: Day::ALL.to_vec(), start: "02:30".into(), end: "04:00".into() }],
            ..s
        };
        assert_eq!(gap.next_open(ny, utc("2026-03-08T05:00:00Z")), Some(utc("2026-03-08T07:00:00Z")));
    }

    #[test]
    fn holidays_start_and_end_bound_the_answer() {
        let mut s = weekdays_9_to_5();
        let ny: Tz = "America/New_York".parse().unwrap();
        s.holidays = vec![NaiveDate::from_ymd_opt(2026, 11, 26).unwrap()];
        assert_eq!(s.next_open(ny, utc("2026-11-26T15:00:00Z")), Some(utc("2026-11-27T14:00:00Z")));
        s.start_at = Some(utc("2026-12-01T00:00:00Z"));
        assert_eq!(s.next_open(ny, utc("2026-11-26T15:00:00Z")), Some(utc("2026-12-01T14:00:00Z")));
        s.end_at = Some(utc("2026-12-01T12:00:00Z"));
        assert_eq!(s.next_open(ny, utc("2026-11-26T15:00:00Z")), None);
        let no_days = Schedule { windows: vec![], ..weekdays_9_to_5() };
        let t = utc("2026-11-28T03:00:00Z");
        assert_eq!(no_days.next_open(ny, t), Some(t), "no windows: any time");
    }

    #[test]
    fn campaign_settings_are_validated_field_by_field() {
        let now = utc("2026-11-26T14:00:00Z");
        let errs = CampaignInput {
            name: Some(" ".into()),
            pacing: Some(Pacing { max_concurrent: 0, calls_per_minute: 10 }),
            schedule: Some(Schedule {
                time_zone: "Nowhere/Land".into(),
                windows: vec![CallingWindow { days: vec![], start: "18:00".into(), end: "09:00".into() }],
                ..Schedule::default()
            }),
            ..Default::default()
        }
        .apply(None, now)
        .unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "name",
                "agent.agent_id",
                "agent.caller_id",
                "schedule.time_zone",
                "schedule.windows[0].end",
                "schedule.windows[0].days",
                "pacing.max_concurrent"
            ]
        );
        let ok = CampaignInput {
            name: Some("Renewals".into()),
            agent: Some(AgentSettings {
                agent_id: "agent_1".into(),
                caller_id: Some("+15005550001".into()),
                ..Default::default()
            }),
            ..Default::default()
        }
        .apply(None, now)
        .unwrap();
        assert_eq!(ok.status, CampaignStatus::Draft);
        assert_eq!(ok.pacing.interval(), Duration::seconds(2));
    }
}
