//! Synthetic calls and events, for demos, load tests and the benchmark.
//!
//! Every call is a pure function of `(seed, index)` (plus one time anchor,
//! the current time truncated to the minute, so that the data always covers
//! "the last 30 days"):
//!
//! - Keys are derived by a bijection of `(seed, index)`, so two runs with
//!   different seeds never collide, and a rerun with the same seed collides on
//!   every key (the store refuses it with `Conflict`, nothing is duplicated).
//! - Records are built the way the webhooks build them: the Twilio status
//!   callbacks a real call would produce, then the async AMD result, then the
//!   ElevenLabs post-call webhook, each merged with [`Call::new_from`] /
//!   [`Call::apply`] at the moment it would have been received. A seeded
//!   record is therefore exactly what the real merge produces.
//! - Events are those webhooks (with Twilio-shaped form payloads), in
//!   chronological order, cycled when more events per call are asked for.
//!
//! Generation runs on a blocking thread one batch ahead of the inserts
//! (channel of depth 2), so memory stays bounded whatever the number of calls.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use switchboard_domain::time::{from_millis, now_ms};
use switchboard_domain::{
    AnsweredBy, Call, CallEvent, CallId, CallStatus, CallUpdate, CampaignId, ContactId, Direction, EventId, Source,
};
use switchboard_storage::Storage;
use switchboard_wire::elevenlabs as el;

/// Calls per `insert_calls_bulk` call (fewer when many events per call are asked for).
pub const BATCH_CALLS: usize = 5_000;
/// Upper bound of events per batch, to keep memory bounded for large `events_per_call`.
const BATCH_EVENTS: usize = 50_000;
/// Number of distinct ElevenLabs agents (`agent_1` ..= `agent_6`).
pub const AGENTS: u32 = 6;
/// The Twilio account every synthetic call belongs to.
pub const ACCOUNT_SID: &str = "AC5e3d0c1b2a4f46e8a9c7b1d2e3f40a5b";
/// Finished calls start within this window before the anchor…
const SPAN_MS: i64 = 30 * 24 * 3600 * 1000;
/// …but not in the last hour, so that even the longest call has ended before "now".
const RECENT_GAP_MS: i64 = 3600 * 1000;
/// Calls still going on started between 2 and 30 minutes before the anchor.
const ACTIVE_MIN_MS: i64 = 2 * 60 * 1000;
const ACTIVE_MAX_MS: i64 = 30 * 60 * 1000;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SeedOptions {
    /// Number of calls.
    pub calls: u64,
    /// Events stored per call.
    pub events_per_call: u32,
    /// Random seed; runs with different seeds never collide.
    pub seed: u64,
    /// Number of campaigns (`cmp_1` ..= `cmp_<campaigns>`) outbound calls are spread over.
    pub campaigns: u32,
}

impl Default for SeedOptions {
    fn default() -> Self {
        SeedOptions { calls: 10_000, events_per_call: 4, seed: 1, campaigns: 20 }
    }
}

impl SeedOptions {
    /// `calls` calls with the default events per call, seed and campaigns.
    pub fn new(calls: u64) -> Self {
        SeedOptions { calls, ..Default::default() }
    }
}

/// What [`seed`] inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct SeedReport {
    /// Calls inserted.
    pub calls: u64,
    /// Events inserted.
    pub events: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Campaign id number `n` (1-based), as seeded: a valid id whose hex digits are `n`.
pub fn campaign_id(n: u32) -> CampaignId {
    CampaignId::parse(&format!("cmp_{n:032x}")).expect("32 hex digits")
}

/// Agent id number `n` (1-based, up to [`AGENTS`]), as seeded.
pub fn agent_id(n: u32) -> String {
    format!("agent_{n}")
}

/// Contact id number `n`, as seeded: a valid id whose hex digits are `n`.
pub fn contact_id(n: u64) -> ContactId {
    ContactId::parse(&format!("con_{n:032x}")).expect("32 hex digits")
}

/// SplitMix64's finaliser: a bijection of `u64` with good avalanche.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A bijection of `(seed, index)` onto 128 bits (a three-round Feistel
/// network), so derived keys are unique across seeds and indexes by construction.
fn scramble(seed: u64, index: u64, key: u64) -> u128 {
    let mut a = seed ^ key;
    let mut b = index;
    b ^= mix64(a.wrapping_add(0x9e37_79b9_7f4a_7c15));
    a ^= mix64(b ^ key);
    b ^= mix64(a);
    ((a as u128) << 64) | b as u128
}

/// The Twilio Call SID of synthetic call `index` of `seed` (`CA` + 32 hex).
pub fn call_sid(seed: u64, index: u64) -> String {
    format!("CA{:032x}", scramble(seed, index, 0x7711_0ca1_15d0_0001))
}

/// The ElevenLabs conversation id of synthetic call `index` of `seed` (`conv_` + 28 hex).
pub fn conversation_id(seed: u64, index: u64) -> String {
    format!("conv_{:028x}", scramble(seed, index, 0xe1e7_c0de_0000_0002) >> 16)
}

fn call_rng(seed: u64, index: u64) -> StdRng {
    StdRng::seed_from_u64(mix64(seed ^ mix64(index ^ 0x5eed_5eed_5eed_5eed)))
}

/// A time-ordered (UUIDv7) id whose timestamp is `ms` and whose random bits come from `rng`.
fn v7_hex(ms: i64, rng: &mut StdRng) -> String {
    let mut bytes = [0u8; 10];
    rng.fill(&mut bytes);
    uuid::Builder::from_unix_timestamp_millis(ms.max(0) as u64, &bytes).into_uuid().simple().to_string()
}

fn call_id_at(ms: i64, rng: &mut StdRng) -> anyhow::Result<CallId> {
    Ok(CallId::parse(&format!("{}{}", CallId::PREFIX, v7_hex(ms, rng)))?)
}

fn event_id_at(ms: i64, rng: &mut StdRng) -> anyhow::Result<EventId> {
    Ok(EventId::parse(&format!("{}{}", EventId::PREFIX, v7_hex(ms, rng)))?)
}

/// Our numbers (fictional ranges: NANP 555-01xx, Ofcom's 020 7946 0xxx).
const OUR_NUMBERS: [&str; 8] = [
    "+14155550101",
    "+14155550102",
    "+14155550103",
    "+12125550104",
    "+12125550105",
    "+13125550106",
    "+17025550107",
    "+442079460108",
];

const AREA_CODES: [u16; 16] = [212, 213, 303, 305, 312, 404, 415, 503, 512, 602, 617, 646, 702, 713, 720, 206];

/// The E.164 number of contact `n` (independent of the seed: a contact keeps its number).
pub fn contact_number(n: u64) -> String {
    let h = mix64(n ^ 0xc0de_c0de_0000_0003);
    if h % 100 < 4 {
        format!("+447{:09}", (h >> 8) % 1_000_000_000)
    } else {
        let area = AREA_CODES[((h >> 8) % AREA_CODES.len() as u64) as usize];
        let exchange = 200 + (h >> 16) % 800;
        let line = (h >> 32) % 10_000;
        format!("+1{area}{exchange:03}{line:04}")
    }
}

/// Final status mix, in percent.
const STATUS_MIX: [(CallStatus, u32); 9] = [
    (CallStatus::Completed, 55),
    (CallStatus::NoAnswer, 15),
    (CallStatus::Busy, 8),
    (CallStatus::Failed, 4),
    (CallStatus::Canceled, 2),
    (CallStatus::InProgress, 6),
    (CallStatus::Ringing, 4),
    (CallStatus::Initiated, 3),
    (CallStatus::Queued, 3),
];

fn pick<T: Copy>(rng: &mut StdRng, table: &[(T, u32)]) -> T {
    let total: u32 = table.iter().map(|(_, w)| w).sum();
    let mut r = rng.random_range(0..total);
    for (v, w) in table {
        if r < *w {
            return *v;
        }
        r -= w;
    }
    table[table.len() - 1].0
}

const AMD_MIX: [(AnsweredBy, u32); 6] = [
    (AnsweredBy::Human, 84),
    (AnsweredBy::MachineStart, 5),
    (AnsweredBy::MachineEndBeep, 6),
    (AnsweredBy::MachineEndSilence, 2),
    (AnsweredBy::MachineEndOther, 2),
    (AnsweredBy::Unknown, 1),
];

const TOPICS: [&str; 8] = [
    "renewing their policy",
    "a missed delivery",
    "booking an appointment",
    "an overdue invoice",
    "upgrading their plan",
    "a short satisfaction survey",
    "confirming an order",
    "a refund request",
];
const GOOD_OUTCOMES: [&str; 4] = [
    "agreed to the proposed next step",
    "confirmed the details and thanked the agent",
    "scheduled a follow-up for next week",
    "accepted the offer",
];
const BAD_OUTCOMES: [&str; 4] = [
    "was not interested",
    "asked to be removed from the calling list",
    "could not verify their identity",
    "asked to be called back later",
];

/// Campaign sizes are skewed: a few campaigns place most calls.
fn pick_campaign(rng: &mut StdRng, campaigns: u32) -> u32 {
    let u: f64 = rng.random();
    ((u.powf(1.6) * campaigns as f64) as u32).min(campaigns - 1) + 1
}

/// Talk time in seconds: log-normal (median ~75 s), clamped to 8 s .. 30 min.
fn talk_secs(rng: &mut StdRng) -> i64 {
    let u1: f64 = rng.random::<f64>().max(1e-12);
    let u2: f64 = rng.random();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    ((4.3 + 0.9 * z).exp() as i64).clamp(8, 1800)
}

/// Twilio's form parameters of one status callback (the one builder in
/// `switchboard_wire::twilio`, which the simulator uses too).
#[allow(clippy::too_many_arguments)]
pub fn twilio_status_params(
    account_sid: &str,
    call_sid: &str,
    status: CallStatus,
    sequence: i64,
    at: DateTime<Utc>,
    direction: Direction,
    from: &str,
    to: &str,
    terminal: Option<(i64, i64)>,
) -> Vec<(String, String)> {
    let timestamp = at.format("%a, %d %b %Y %H:%M:%S +0000").to_string();
    switchboard_wire::twilio::StatusCallback {
        account_sid,
        call_sid,
        status: status.as_str(),
        sequence,
        timestamp: &timestamp,
        direction: direction.as_str(),
        from,
        to,
        ended: terminal.map(|(secs, sip)| (secs.max(0) as u64, sip.clamp(0, 999) as u16)),
    }
    .params()
}

fn form_json(params: &[(String, String)]) -> Value {
    Value::Object(params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect())
}

/// Whole seconds, as Twilio's RFC 2822 timestamps and ElevenLabs' Unix seconds carry them.
fn secs(ms: i64) -> i64 {
    ms.div_euclid(1000) * 1000
}

/// One webhook as it would have been received.
struct Step {
    update: CallUpdate,
    received_ms: i64,
    event_type: &'static str,
    sequence: Option<i64>,
    payload: Value,
}

/// Everything fixed for one run.
struct Ctx {
    seed: u64,
    calls: u64,
    campaigns: u32,
    contacts: u64,
    events_per_call: u32,
    anchor_ms: i64,
}

impl Ctx {
    fn new(opts: &SeedOptions, now: DateTime<Utc>) -> Ctx {
        let minute = 60_000;
        Ctx {
            seed: opts.seed,
            calls: opts.calls,
            campaigns: opts.campaigns,
            contacts: (opts.calls / 3).max(1),
            events_per_call: opts.events_per_call,
            anchor_ms: now.timestamp_millis().div_euclid(minute) * minute,
        }
    }
}

/// One batch, ready for `insert_calls_bulk`.
struct Batch {
    calls: Vec<Call>,
    events: Vec<CallEvent>,
}

fn generate_batch(ctx: &Ctx, range: std::ops::Range<u64>) -> anyhow::Result<Batch> {
    let n = (range.end - range.start) as usize;
    let mut batch =
        Batch { calls: Vec::with_capacity(n), events: Vec::with_capacity(n * ctx.events_per_call as usize) };
    for i in range {
        let call = generate_call(ctx, i, &mut batch.events)?;
        batch.calls.push(call);
    }
    Ok(batch)
}

/// Synthetic call `i`: its record (merged from its webhooks) and its events (appended to `events`).
fn generate_call(ctx: &Ctx, i: u64, events: &mut Vec<CallEvent>) -> anyhow::Result<Call> {
    use CallStatus as S;
    let mut rng = call_rng(ctx.seed, i);
    let status = pick(&mut rng, &STATUS_MIX);
    let inbound = rng.random_bool(0.15);
    let direction = if inbound { Direction::Inbound } else { Direction::OutboundApi };
    let contact = rng.random_range(0..ctx.contacts);
    let contact_no = contact_number(contact);
    let our_no = OUR_NUMBERS[rng.random_range(0..OUR_NUMBERS.len())].to_owned();
    let (from, to) = if inbound { (contact_no, our_no) } else { (our_no, contact_no) };
    let campaign = (!inbound && ctx.campaigns > 0).then(|| pick_campaign(&mut rng, ctx.campaigns));
    let agent = match campaign {
        Some(k) => 1 + (k - 1) % AGENTS,
        None => rng.random_range(1..=AGENTS),
    };
    let sid = call_sid(ctx.seed, i);

    // Timeline (Unix ms). Finished calls are spread evenly (with jitter) over
    // the window, in index order; calls still going on are recent.
    let t0 = if status.is_terminal() {
        let u: f64 = rng.random();
        let window = (SPAN_MS - RECENT_GAP_MS) as f64;
        ctx.anchor_ms - SPAN_MS + ((i as f64 + u) / ctx.calls.max(1) as f64 * window) as i64
    } else {
        ctx.anchor_ms - rng.random_range(ACTIVE_MIN_MS..ACTIVE_MAX_MS)
    };
    let t0 = secs(t0);
    let ring = t0 + rng.random_range(1..=3) * 1000;
    let answer = ring + rng.random_range(3..=25) * 1000;
    let talk = talk_secs(&mut rng);
    let end = match status {
        S::Completed => answer + talk * 1000,
        S::NoAnswer => ring + rng.random_range(15..=60) * 1000,
        S::Busy => ring + rng.random_range(1..=6) * 1000,
        S::Failed => t0 + rng.random_range(1..=4) * 1000,
        S::Canceled => ring + rng.random_range(2..=20) * 1000,
        _ => answer,
    };
    let callbacks: Vec<(CallStatus, i64)> = match status {
        S::Queued => vec![(S::Queued, t0)],
        S::Initiated => vec![(S::Initiated, t0)],
        S::Ringing => vec![(S::Initiated, t0), (S::Ringing, ring)],
        S::InProgress => vec![(S::Initiated, t0), (S::Ringing, ring), (S::InProgress, answer)],
        S::Completed => vec![(S::Initiated, t0), (S::Ringing, ring), (S::InProgress, answer), (S::Completed, end)],
        S::Failed => vec![(S::Initiated, t0), (S::Failed, end)],
        S::Busy | S::NoAnswer | S::Canceled => vec![(S::Initiated, t0), (S::Ringing, ring), (status, end)],
    };

    let mut steps: Vec<Step> = Vec::with_capacity(6);
    for (seq, (st, at)) in callbacks.into_iter().enumerate() {
        let seq = seq as i64;
        let terminal = st.is_terminal().then(|| {
            let (duration, sip) = match st {
                S::Completed => ((end - answer) / 1000, 200),
                S::Busy => (0, 486),
                S::NoAnswer | S::Canceled => (0, 487),
                _ => (0, [404, 480, 500, 503, 603][rng.random_range(0..5)]),
            };
            (duration, sip)
        });
        let at_t = from_millis(at);
        let params = twilio_status_params(ACCOUNT_SID, &sid, st, seq, at_t, direction, &from, &to, terminal);
        let first = seq == 0;
        let update = CallUpdate {
            source: Some(Source::Twilio),
            observed_at: Some(at_t),
            call_sid: Some(sid.clone()),
            sequence: Some(seq),
            status: Some(st),
            account_sid: Some(ACCOUNT_SID.into()),
            direction: Some(direction),
            from: Some(from.clone()),
            to: Some(to.clone()),
            duration_secs: terminal.map(|t| t.0),
            sip_response_code: terminal.map(|t| t.1),
            campaign_id: if first { campaign.map(campaign_id) } else { None },
            contact_id: if first { Some(contact_id(contact)) } else { None },
            ..Default::default()
        };
        let received_ms = at + rng.random_range(40..400);
        let event_type = match st {
            S::Queued => "twilio.status.queued",
            S::Initiated => "twilio.status.initiated",
            S::Ringing => "twilio.status.ringing",
            S::InProgress => "twilio.status.in-progress",
            S::Completed => "twilio.status.completed",
            S::Busy => "twilio.status.busy",
            S::NoAnswer => "twilio.status.no-answer",
            S::Failed => "twilio.status.failed",
            S::Canceled => "twilio.status.canceled",
        };
        steps.push(Step { update, received_ms, event_type, sequence: Some(seq), payload: form_json(&params) });
    }

    // Async answering-machine detection on answered outbound calls.
    let answered = matches!(status, S::Completed | S::InProgress);
    let answered_by = (answered && !inbound).then(|| pick(&mut rng, &AMD_MIX));
    if let Some(amd) = answered_by {
        let at = answer + rng.random_range(2000..5000);
        let detection_ms = at - answer;
        let update = CallUpdate {
            source: Some(Source::Twilio),
            call_sid: Some(sid.clone()),
            answered_by: Some(amd),
            account_sid: Some(ACCOUNT_SID.into()),
            ..Default::default()
        };
        let payload = json!({
            "AccountSid": ACCOUNT_SID,
            "CallSid": sid,
            "AnsweredBy": amd.as_str(),
            "MachineDetectionDuration": detection_ms.to_string(),
        });
        steps.push(Step { update, received_ms: at, event_type: "twilio.amd", sequence: None, payload });
    }

    // ElevenLabs: a transcript for nearly every completed call, an initiation
    // failure for some unanswered ones; ~60% of all calls get a conversation.
    let conversation = match status {
        S::Completed => rng.random_bool(0.97),
        S::NoAnswer | S::Busy | S::Failed => rng.random_bool(0.25),
        _ => false,
    };
    if conversation {
        let conv = conversation_id(ctx.seed, i);
        let agent = agent_id(agent);
        if status == S::Completed {
            let start_secs = secs(answer) / 1000 + 1;
            let conv_secs = (talk - 1 - rng.random_range(0..=2)).max(1);
            let machine = answered_by.is_some_and(|a| a != AnsweredBy::Human);
            let verdict = if machine {
                if rng.random_bool(0.8) { "failure" } else { "unknown" }
            } else {
                pick(&mut rng, &[("success", 70), ("failure", 20), ("unknown", 10)])
            };
            let topic = TOPICS[rng.random_range(0..TOPICS.len())];
            let summary = if machine {
                format!("The call reached voicemail; the agent left a short message about {topic}.")
            } else {
                let outcomes = if verdict == "success" { &GOOD_OUTCOMES } else { &BAD_OUTCOMES };
                let outcome = outcomes[rng.random_range(0..outcomes.len())];
                format!("The agent spoke with the customer about {topic}. The customer {outcome}.")
            };
            let termination = if verdict == "success" {
                "end_call tool was called."
            } else {
                ["Call ended by remote party", "Client disconnected: 1000"][rng.random_range(0..2)]
            };
            let cost = conv_secs * rng.random_range(9..=12);
            let received_ms = end + rng.random_range(3_000..30_000);
            let update = CallUpdate {
                source: Some(Source::ElevenLabs),
                observed_at: Some(from_millis(start_secs * 1000)),
                conversation_id: Some(conv.clone()),
                call_sid: Some(sid.clone()),
                agent_id: Some(agent.clone()),
                conversation_status: Some("done".into()),
                call_successful: Some(verdict.into()),
                transcript_summary: Some(summary.clone()),
                termination_reason: Some(termination.into()),
                conversation_duration_secs: Some(conv_secs),
                cost_credits: Some(cost),
                status: Some(S::Completed),
                ..Default::default()
            };
            let (agent_number, external_number) = if inbound { (&to, &from) } else { (&from, &to) };
            let phone_call = el::PhoneCall {
                direction: if inbound { "inbound" } else { "outbound" },
                call_sid: &sid,
                agent_number,
                external_number,
                phone_number_id: None,
                stream_sid: None,
            };
            // Only the fields the service reads: seeded events stay small.
            let payload = el::PostCallTranscription {
                event_timestamp: received_ms / 1000,
                data: el::Conversation {
                    agent_id: &agent,
                    conversation_id: &conv,
                    status: "done",
                    metadata: el::Metadata {
                        start_time_unix_secs: start_secs,
                        call_duration_secs: conv_secs,
                        cost,
                        termination_reason: termination,
                        phone_call: Some(phone_call),
                    },
                    analysis: Some(el::Analysis {
                        call_successful: verdict,
                        transcript_summary: &summary,
                        details: None,
                    }),
                    details: None,
                },
            }
            .to_json();
            steps.push(Step {
                update,
                received_ms,
                event_type: "elevenlabs.post_call_transcription",
                sequence: None,
                payload,
            });
        } else {
            let received_ms = end + rng.random_range(1_000..5_000);
            let reason = match status {
                S::Busy => "busy",
                S::NoAnswer => "no-answer",
                _ => "unknown",
            };
            let update = CallUpdate {
                source: Some(Source::ElevenLabs),
                observed_at: Some(from_millis(secs(received_ms))),
                conversation_id: Some(conv.clone()),
                call_sid: Some(sid.clone()),
                agent_id: Some(agent.clone()),
                status: Some(match reason {
                    "busy" => S::Busy,
                    "no-answer" => S::NoAnswer,
                    _ => S::Failed,
                }),
                ..Default::default()
            };
            let twilio_body =
                [("CallSid".to_owned(), sid.clone()), ("CallStatus".to_owned(), status.as_str().to_owned())];
            let payload = el::CallInitiationFailure {
                event_timestamp: received_ms / 1000,
                agent_id: &agent,
                conversation_id: &conv,
                failure_reason: reason,
                twilio_body: &twilio_body,
            }
            .to_json();
            steps.push(Step {
                update,
                received_ms,
                event_type: "elevenlabs.call_initiation_failure",
                sequence: None,
                payload,
            });
        }
    }

    // Merge in arrival order, exactly as the webhooks would.
    steps.sort_by_key(|s| s.received_ms);
    let created_ms = steps[0].received_ms;
    let mut call = Call::new_from(&steps[0].update, from_millis(created_ms))?;
    call.id = call_id_at(created_ms, &mut rng)?;
    for s in &steps[1..] {
        call.apply(&s.update, from_millis(s.received_ms))?;
    }

    // Events, chronological by when they happened (as `ingest` records them).
    let mut natural: Vec<CallEvent> = Vec::with_capacity(steps.len());
    for s in steps {
        let occurred = s.update.observed_at.unwrap_or(from_millis(s.received_ms));
        natural.push(CallEvent {
            id: event_id_at(s.received_ms, &mut rng)?,
            call_id: call.id.clone(),
            source: s.update.source.unwrap_or(Source::Switchboard),
            event_type: s.event_type.to_owned(),
            occurred_at: occurred,
            received_at: from_millis(s.received_ms),
            dedupe_key: String::new(),
            sequence: s.sequence,
            payload: s.payload,
        });
    }
    natural.sort_by_key(|e| e.occurred_at);
    let mut last: Option<DateTime<Utc>> = None;
    for k in 0..ctx.events_per_call as usize {
        let base = &natural[k % natural.len()];
        let mut e = if k < natural.len() {
            base.clone()
        } else {
            // Cycling: a later copy of an earlier webhook, with its own id and key.
            let prev = last.unwrap_or(base.occurred_at);
            let occurred = from_millis(prev.timestamp_millis() + rng.random_range(1_000..10_000));
            let received = from_millis(occurred.timestamp_millis() + rng.random_range(40..400));
            CallEvent {
                id: event_id_at(received.timestamp_millis(), &mut rng)?,
                occurred_at: occurred,
                received_at: received,
                ..base.clone()
            }
        };
        if let Some(prev) = last
            && e.occurred_at <= prev
        {
            e.occurred_at = from_millis(prev.timestamp_millis() + 1);
        }
        e.dedupe_key = format!("seed:{}:{}:{}", ctx.seed, i, k);
        last = Some(e.occurred_at);
        events.push(e);
    }
    Ok(call)
}

fn progress_bar(total: u64, visible: bool) -> ProgressBar {
    let target = if visible { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
    let pb = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner:.green} [{elapsed_precise}] [{wide_bar:.cyan/blue}] {human_pos}/{human_len} calls ({per_sec}, ETA {eta})",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// Inserts `opts.calls` synthetic calls (and `opts.events_per_call` events
/// each) in batches of up to [`BATCH_CALLS`], generating the next batch while
/// the previous one is being inserted.
///
/// Seeding the same seed twice into one store fails with
/// [`StoreError::Conflict`](switchboard_storage::StoreError::Conflict) on the
/// first batch (downcast the error to see it); batches inserted before a
/// failure stay inserted.
pub async fn seed(store: Arc<dyn Storage>, opts: &SeedOptions, progress: bool) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let pb = progress_bar(opts.calls, progress);
    let ctx = Arc::new(Ctx::new(opts, now_ms()));
    let batch_calls = BATCH_CALLS.min((BATCH_EVENTS / opts.events_per_call.max(1) as usize).max(1)) as u64;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<Batch>>(2);
    let gen_ctx = ctx.clone();
    let generator = tokio::task::spawn_blocking(move || {
        let mut start = 0;
        while start < gen_ctx.calls {
            let end = (start + batch_calls).min(gen_ctx.calls);
            let batch = generate_batch(&gen_ctx, start..end)
                .with_context(|| format!("generating synthetic calls {start}..{end}"));
            let failed = batch.is_err();
            // The receiver is gone when an insert failed: stop quietly.
            if tx.blocking_send(batch).is_err() || failed {
                return;
            }
            start = end;
        }
    });

    let (mut calls, mut events) = (0u64, 0u64);
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        let (first, n) = (calls, batch.calls.len() as u64);
        store
            .insert_calls_bulk(&batch.calls, &batch.events)
            .await
            .with_context(|| format!("inserting synthetic calls {first}..{} (seed {})", first + n, ctx.seed))?;
        calls += n;
        events += batch.events.len() as u64;
        pb.inc(n);
        // Without a bar (not a terminal), say how far we are every 10% of a large run.
        let tenth = (opts.calls / 10).max(1);
        if !progress && opts.calls >= 100_000 && (calls / tenth) != (first / tenth) {
            let rate = calls as f64 / started.elapsed().as_secs_f64().max(1e-9);
            let eta = (opts.calls - calls) as f64 / rate.max(1e-9);
            tracing::info!(
                calls,
                total = opts.calls,
                rate = format!("{rate:.0} calls/s"),
                eta = format!("{eta:.0} s"),
                "seeding"
            );
        }
    }
    generator.await.context("the seed generator panicked")?;
    pb.finish_and_clear();
    anyhow::ensure!(calls == opts.calls, "generated {calls} of {} calls", opts.calls);
    Ok(SeedReport { calls, events, elapsed: started.elapsed() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_storage::{CallFilter, CallSort, PageRequest, StoreError};
    use switchboard_storage_sqlite::SqliteStore;

    async fn memory_store() -> Arc<dyn Storage> {
        let store = SqliteStore::open_in_memory().unwrap();
        store.migrate().await.unwrap();
        Arc::new(store)
    }

    fn opts(calls: u64, events_per_call: u32, seed: u64) -> SeedOptions {
        SeedOptions { calls, events_per_call, seed, campaigns: 7 }
    }

    async fn all_calls(store: &Arc<dyn Storage>) -> Vec<Call> {
        let mut out = Vec::new();
        let mut page = PageRequest::first(200);
        loop {
            let p = store.list_calls(&CallFilter::default(), CallSort::StartedAtDesc, &page).await.unwrap();
            out.extend(p.items);
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => return out,
            }
        }
    }

    #[tokio::test]
    async fn seeds_a_thousand_calls_with_three_events_each() {
        let store = memory_store().await;
        let report = seed(store.clone(), &opts(1_000, 3, 7), false).await.unwrap();
        assert_eq!(report.calls, 1_000);
        assert_eq!(report.events, 3_000);
        assert_eq!(store.count_calls().await.unwrap(), 1_000);

        let calls = all_calls(&store).await;
        assert_eq!(calls.len(), 1_000);
        let now = now_ms();
        let month_ago = now - chrono::Duration::days(30) - chrono::Duration::minutes(1);
        let count = |f: &dyn Fn(&Call) -> bool| calls.iter().filter(|c| f(c)).count();
        for c in &calls {
            let sid = c.call_sid.as_deref().unwrap();
            assert!(sid.len() == 34 && sid.starts_with("CA") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
            assert!(c.started_at >= month_ago && c.started_at <= now, "{}", c.started_at);
            assert!(c.ended_at.is_none_or(|e| e <= now && e >= c.started_at));
            assert!(c.from.as_deref().unwrap().starts_with('+') && c.to.as_deref().unwrap().starts_with('+'));
            assert!(c.contact_id.as_ref().unwrap().as_str().starts_with("con_"));
            assert_eq!(c.direction == Some(Direction::Inbound), c.campaign_id.is_none());
            if c.status == CallStatus::Completed {
                assert!(c.duration_secs.unwrap() >= 8 && c.answered_at.is_some());
            }
            if let Some(conv) = &c.conversation_id {
                assert!(conv.len() == 33 && conv.starts_with("conv_"));
                assert!(c.agent_id.is_some());
            }
            if c.status == CallStatus::Completed && c.conversation_id.is_some() {
                assert!(c.call_successful.is_some() && c.transcript_summary.is_some());
            }
            assert_eq!(c.telephony_source, Some(Source::Twilio));
        }
        let pct = |n: usize| n as f64 / calls.len() as f64;
        let completed = pct(count(&|c| c.status == CallStatus::Completed));
        assert!((0.48..0.62).contains(&completed), "completed {completed}");
        let conv = pct(count(&|c| c.conversation_id.is_some()));
        assert!((0.52..0.68).contains(&conv), "conversations {conv}");
        let inbound = pct(count(&|c| c.direction == Some(Direction::Inbound)));
        assert!((0.10..0.20).contains(&inbound), "inbound {inbound}");
        assert!(count(&|c| c.answered_by == Some(AnsweredBy::Human)) > 300);
        assert!(
            count(&|c| c.from.as_deref().unwrap().starts_with("+44") || c.to.as_deref().unwrap().starts_with("+44"))
                > 0
        );
        let campaigns: std::collections::BTreeSet<_> = calls.iter().filter_map(|c| c.campaign_id.clone()).collect();
        assert_eq!(campaigns.len(), 7);

        // Events of one call: three, chronological, with the seed's keys.
        let c = calls.iter().find(|c| c.status == CallStatus::Completed).unwrap();
        let ev = store.list_call_events(&c.id, &PageRequest::first(10)).await.unwrap().items;
        assert_eq!(ev.len(), 3);
        assert!(ev.windows(2).all(|w| w[0].occurred_at < w[1].occurred_at));
        assert!(ev.iter().all(|e| e.dedupe_key.starts_with("seed:7:")));
        assert_eq!(ev[0].event_type, "twilio.status.initiated");
        assert_eq!(ev[0].payload["CallSid"], c.call_sid.clone().unwrap());
    }

    #[tokio::test]
    async fn the_same_seed_twice_conflicts_and_another_seed_does_not() {
        let store = memory_store().await;
        seed(store.clone(), &opts(1_000, 3, 11), false).await.unwrap();
        let err = seed(store.clone(), &opts(1_000, 3, 11), false).await.unwrap_err();
        assert!(
            matches!(err.downcast_ref::<StoreError>(), Some(StoreError::Conflict { .. })),
            "expected a conflict, got {err:#}"
        );
        assert_eq!(store.count_calls().await.unwrap(), 1_000, "nothing duplicated");
        seed(store.clone(), &opts(1_000, 3, 12), false).await.unwrap();
        assert_eq!(store.count_calls().await.unwrap(), 2_000);
    }

    #[test]
    fn generation_is_deterministic_and_keys_are_unique() {
        let now = now_ms();
        let ctx = Ctx::new(&opts(500, 9, 3), now);
        let a = generate_batch(&ctx, 0..500).unwrap();
        let b = generate_batch(&ctx, 0..500).unwrap();
        assert_eq!(a.calls, b.calls);
        assert_eq!(a.events, b.events);
        assert_eq!(a.events.len(), 500 * 9, "events cycle when more are asked for than a call has");
        // Batch boundaries do not change the data.
        let c = generate_batch(&ctx, 250..500).unwrap();
        assert_eq!(a.calls[250..], c.calls[..]);
        for e in a.events.chunks(9) {
            assert!(e.windows(2).all(|w| w[0].occurred_at < w[1].occurred_at));
        }
        let mut sids: Vec<String> = (0..20_000).flat_map(|i| [call_sid(1, i), call_sid(2, i)]).collect();
        sids.sort();
        sids.dedup();
        assert_eq!(sids.len(), 40_000);
        assert_eq!(ACCOUNT_SID.len(), 34);
        let ids: std::collections::BTreeSet<_> = a.calls.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids.len(), 500);
    }

    #[test]
    fn records_match_what_the_webhooks_would_merge() {
        let ctx = Ctx::new(&opts(2_000, 4, 5), now_ms());
        let batch = generate_batch(&ctx, 0..2_000).unwrap();
        let done = batch
            .calls
            .iter()
            .find(|c| c.status == CallStatus::Completed && c.conversation_id.is_some() && c.answered_by.is_some())
            .unwrap();
        assert_eq!(done.status_source, Some(Source::Twilio));
        assert_eq!(done.conversation_source, Some(Source::ElevenLabs));
        assert_eq!(done.last_sequence, Some(3));
        assert!(done.started_at < done.answered_at.unwrap() && done.answered_at < done.ended_at);
        assert!(done.version >= 5, "one version per webhook that changed something");
        assert!(done.created_at > done.started_at && done.updated_at > done.ended_at.unwrap());
        assert_eq!(done.sip_response_code, Some(200));
        let queued = batch.calls.iter().find(|c| c.status == CallStatus::Queued).unwrap();
        assert!(queued.ended_at.is_none() && queued.duration_secs.is_none());
    }
}
