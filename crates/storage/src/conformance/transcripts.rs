//! Conformance cases for recordings and transcripts ([`crate::TranscriptStore`]).
//!
//! Search semantics every backend must reproduce exactly (the match set; the
//! ranking may differ), written down once as [`reference_matches`]: a term
//! *hits* a transcript when it matches ([`TextQuery::matches_text`]) one of
//! its texts — one turn's message or the summary (a phrase never spans two
//! texts). The transcript matches when every group has a term that hits and
//! no `not` term hits, and the filters hold.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
use switchboard_domain::time::now_ms;
use switchboard_domain::transcript::{CriterionResult, DataPoint, Turn};
use switchboard_domain::{CallId, CampaignId, ContactId, Recording, RecordingId, Transcript, TranscriptId};

use super::Harness;
use crate::{PageRequest, SearchHit, SearchOrder, Storage, Term, TextQuery, TranscriptFilter};

fn recording(provider: RecordingProvider, key: &str, status: RecordingStatus, at: DateTime<Utc>) -> Recording {
    Recording {
        id: RecordingId::new(),
        provider,
        provider_id: key.into(),
        call_id: None,
        call_sid: None,
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
        created_at: at,
        updated_at: at,
    }
}

fn turn(role: &str, message: &str, at: f64) -> Turn {
    Turn {
        role: role.into(),
        message: message.into(),
        time_in_call_secs: Some(at),
        tool_calls: vec![],
        tool_results: vec![],
        interrupted: false,
    }
}

pub(super) fn transcript(conversation: &str, status: &str, at: DateTime<Utc>) -> Transcript {
    Transcript {
        id: TranscriptId::new(),
        conversation_id: conversation.into(),
        call_id: None,
        campaign_id: None,
        contact_id: None,
        agent_id: None,
        status: status.into(),
        turns: vec![],
        language: None,
        duration_secs: None,
        cost: None,
        termination_reason: None,
        call_successful: None,
        summary: None,
        criteria: vec![],
        data_collection: vec![],
        has_audio: false,
        started_at: at,
        analysis: None,
        analyzer_version: None,
        sentiment: None,
        created_at: at,
        updated_at: at,
    }
}

/// Recordings are unique per (provider, provider id) and merged: a late
/// in-progress never undoes completed, fields fill and never blank, replays
/// change nothing; a call's recordings come oldest first.
pub async fn recordings_merge_by_provider_key_and_list_by_call(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "recordings_merge_by_provider_key_and_list_by_call") {
        return;
    }
    s.migrate().await.unwrap();
    let t0 = now_ms();
    let call = CallId::new();
    let mut r1 = recording(RecordingProvider::Twilio, "RE0001", RecordingStatus::InProgress, t0);
    r1.call_sid = Some("CA0001".into());
    r1.call_id = Some(call.clone());
    r1.channels = Some(2);
    r1.started_at = Some(t0 - Duration::seconds(3));
    assert_eq!(s.upsert_recording(&r1).await.unwrap(), r1, "a new recording is stored as given");

    // The completed callback arrives with another id of ours: merged into the first.
    let mut r2 = recording(RecordingProvider::Twilio, "RE0001", RecordingStatus::Completed, t0 + Duration::seconds(40));
    r2.duration_secs = Some(35);
    r2.media_url = Some("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE0001".into());
    r2.format = Some("mp3".into());
    r2.source = Some("OutboundAPI".into());
    let mut want = r1.clone();
    want.merge(&r2);
    let got = s.upsert_recording(&r2).await.unwrap();
    assert_eq!(got, want);
    assert_eq!(
        (got.id.clone(), got.status, got.call_sid.as_deref()),
        (r1.id.clone(), RecordingStatus::Completed, Some("CA0001"))
    );

    // A late in-progress (older report) never undoes completed, and blanks nothing.
    let mut late =
        recording(RecordingProvider::Twilio, "RE0001", RecordingStatus::InProgress, t0 + Duration::seconds(1));
    late.track = Some("both".into());
    want.merge(&late);
    let got = s.upsert_recording(&late).await.unwrap();
    assert_eq!(got, want);
    assert_eq!(
        (got.status, got.duration_secs, got.track.as_deref()),
        (RecordingStatus::Completed, Some(35), Some("both"))
    );
    // Replays change nothing.
    assert_eq!(s.upsert_recording(&r2).await.unwrap(), want, "replay");
    assert_eq!(s.upsert_recording(&late).await.unwrap(), want, "replay");
    assert_eq!(s.get_recording(&r1.id).await.unwrap().as_ref(), Some(&want));
    assert_eq!(s.get_recording(&r2.id).await.unwrap(), None, "the merged report's id is not stored");
    assert_eq!(s.find_recording(RecordingProvider::Twilio, "RE0001").await.unwrap().as_ref(), Some(&want));
    assert_eq!(s.find_recording(RecordingProvider::Elevenlabs, "RE0001").await.unwrap(), None);
    assert_eq!(s.find_recording(RecordingProvider::Twilio, "RE0002").await.unwrap(), None);

    // The same key at the other provider is another recording; deleted is final.
    let mut audio =
        recording(RecordingProvider::Elevenlabs, "RE0001", RecordingStatus::Completed, t0 + Duration::seconds(5));
    audio.call_id = Some(call.clone());
    audio.conversation_id = Some("conv_0001".into());
    assert_eq!(s.upsert_recording(&audio).await.unwrap(), audio);
    let mut gone = audio.clone();
    gone.id = RecordingId::new();
    gone.status = RecordingStatus::Deleted;
    gone.deleted_at = Some(t0 + Duration::days(30));
    gone.updated_at = t0 + Duration::days(30);
    let mut audio_want = audio.clone();
    audio_want.merge(&gone);
    assert_eq!(s.upsert_recording(&gone).await.unwrap(), audio_want);
    let mut revived = audio.clone();
    revived.id = RecordingId::new();
    revived.updated_at = t0 + Duration::days(31);
    audio_want.merge(&revived);
    let got = s.upsert_recording(&revived).await.unwrap();
    assert_eq!(got.status, RecordingStatus::Deleted, "deleted is final");
    assert_eq!(got, audio_want);

    // Another call's recording is not listed.
    let mut other = recording(RecordingProvider::Twilio, "RE0003", RecordingStatus::Absent, t0 - Duration::seconds(60));
    other.call_id = Some(CallId::new());
    other.error_code = Some("13617".into());
    assert_eq!(s.upsert_recording(&other).await.unwrap(), other);
    let listed = s.recordings_of_call(&call).await.unwrap();
    assert_eq!(listed, vec![want.clone(), audio_want.clone()], "oldest first");
    assert_eq!(s.recordings_of_call(&CallId::new()).await.unwrap(), vec![]);
}

/// `recordings_to_expire` lists exactly the completed recordings created
/// before the cutoff, oldest first (then by id), at most `limit`, checked
/// against a reference computed from everything stored; a recording marked
/// deleted leaves the list.
pub async fn recordings_to_expire_are_completed_older_than_the_cutoff_oldest_first(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "recordings_to_expire_are_completed_older_than_the_cutoff_oldest_first") {
        return;
    }
    s.migrate().await.unwrap();
    let t0 = now_ms() - Duration::days(100);
    let statuses = [
        RecordingStatus::Completed,
        RecordingStatus::InProgress,
        RecordingStatus::Completed,
        RecordingStatus::Absent,
        RecordingStatus::Failed,
        RecordingStatus::Completed,
        RecordingStatus::Deleted,
    ];
    let mut all = Vec::new();
    for i in 0..28i64 {
        let provider = if i % 3 == 0 { RecordingProvider::Elevenlabs } else { RecordingProvider::Twilio };
        // Shuffled creation times, with ties (ordered by id).
        let at = t0 + Duration::days((i * 7) % 20);
        let r = recording(provider, &format!("RE{i:04}"), statuses[i as usize % statuses.len()], at);
        all.push(s.upsert_recording(&r).await.unwrap());
    }
    let reference = |all: &[Recording], before: DateTime<Utc>, limit: usize| {
        let mut want: Vec<Recording> =
            all.iter().filter(|r| r.status == RecordingStatus::Completed && r.created_at < before).cloned().collect();
        want.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        want.truncate(limit);
        want
    };
    for (days, limit) in [(0, 100), (5, 100), (10, 3), (14, 100), (25, 100), (25, 4), (25, 1)] {
        let before = t0 + Duration::days(days);
        let got = s.recordings_to_expire(before, limit).await.unwrap();
        assert_eq!(got, reference(&all, before, limit as usize), "before t0+{days}d, limit {limit}");
    }
    let before = t0 + Duration::days(25);
    assert!(!reference(&all, before, 100).is_empty());

    // Marking the oldest deleted (what retention does) takes it off the list.
    let oldest = s.recordings_to_expire(before, 1).await.unwrap().remove(0);
    let mut gone = oldest.clone();
    gone.status = RecordingStatus::Deleted;
    gone.deleted_at = Some(now_ms());
    gone.updated_at = now_ms();
    let stored = s.upsert_recording(&gone).await.unwrap();
    assert_eq!((stored.status, stored.deleted_at), (RecordingStatus::Deleted, gone.deleted_at));
    for r in all.iter_mut() {
        if r.id == oldest.id {
            *r = stored.clone();
        }
    }
    let got = s.recordings_to_expire(before, 100).await.unwrap();
    assert!(got.iter().all(|r| r.id != oldest.id));
    assert_eq!(got, reference(&all, before, 100));
}

/// A transcript is unique per conversation; a non-final one never
/// overwrites a final one; the stored analysis is kept when the new one has
/// none; lookups by id, conversation and call.
pub async fn transcripts_upsert_keeps_final_and_analysis(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "transcripts_upsert_keeps_final_and_analysis") {
        return;
    }
    s.migrate().await.unwrap();
    let t0 = now_ms();
    let call = CallId::new();
    let mut first = transcript("conv_up_1", "processing", t0);
    first.call_id = Some(call.clone());
    first.campaign_id = Some(CampaignId::new());
    first.contact_id = Some(ContactId::new());
    first.agent_id = Some("agent_1".into());
    first.turns = vec![turn("agent", "Hello, this is Acme.", 0.5)];
    assert_eq!(s.upsert_transcript(&first).await.unwrap(), first);

    // Done, with our analysis: replaces (keeping our id and creation time).
    let mut done = first.clone();
    done.id = TranscriptId::new();
    done.status = "done".into();
    done.created_at = t0 + Duration::seconds(90);
    done.updated_at = t0 + Duration::seconds(90);
    done.turns.push(turn("user", "I want a refund on my credit card.", 2.25));
    done.turns.push(Turn {
        tool_calls: vec![json!({"tool_name": "lookup_order", "params_as_json": "{\"id\":42}"})],
        tool_results: vec![json!({"result_value": "shipped", "is_error": false})],
        interrupted: true,
        ..turn("agent", "", 3.0)
    });
    done.summary = Some("The caller asked for a refund.".into());
    done.language = Some("en".into());
    done.duration_secs = Some(95);
    done.cost = Some(412);
    done.termination_reason = Some("end_call tool".into());
    done.call_successful = Some("success".into());
    done.criteria = vec![
        CriterionResult { id: "politeness".into(), result: "success".into(), rationale: Some("Polite.".into()) },
        CriterionResult { id: "resolved".into(), result: "failure".into(), rationale: None },
    ];
    done.data_collection = vec![
        DataPoint { id: "order_id".into(), value: json!("A-42"), rationale: None },
        DataPoint { id: "callback".into(), value: serde_json::Value::Null, rationale: Some("Not asked.".into()) },
    ];
    done.has_audio = true;
    done.analysis = Some(json!({"sentiment": {"overall": 0.25}, "keywords": ["refund", "credit card"]}));
    done.analyzer_version = Some(1);
    done.sentiment = Some(0.25);
    let mut want = done.clone();
    want.id = first.id.clone();
    want.created_at = first.created_at;
    assert_eq!(s.upsert_transcript(&done).await.unwrap(), want);

    // A late "processing" never overwrites "done".
    let mut late = first.clone();
    late.id = TranscriptId::new();
    late.updated_at = t0 + Duration::seconds(120);
    assert_eq!(s.upsert_transcript(&late).await.unwrap(), want, "a non-final report is ignored");

    // A final re-fetch without analysis keeps the stored analysis.
    let mut again = done.clone();
    again.id = TranscriptId::new();
    again.summary = Some("The caller asked for a refund; escalated.".into());
    again.analysis = None;
    again.analyzer_version = None;
    again.sentiment = None;
    again.updated_at = t0 + Duration::seconds(150);
    let mut want2 = again.clone();
    want2.id = first.id.clone();
    want2.created_at = first.created_at;
    want2.analysis = want.analysis.clone();
    want2.analyzer_version = want.analyzer_version;
    want2.sentiment = want.sentiment;
    assert_eq!(s.upsert_transcript(&again).await.unwrap(), want2);

    assert_eq!(s.get_transcript(&first.id).await.unwrap().as_ref(), Some(&want2));
    assert_eq!(s.get_transcript(&done.id).await.unwrap(), None);
    assert_eq!(s.find_transcript("conv_up_1").await.unwrap().as_ref(), Some(&want2));
    assert_eq!(s.find_transcript("conv_nope").await.unwrap(), None);
    assert_eq!(s.transcript_of_call(&call).await.unwrap().as_ref(), Some(&want2));
    assert_eq!(s.transcript_of_call(&CallId::new()).await.unwrap(), None);

    // Search sees the replaced text, not the old one (the index is kept in step).
    let q = TextQuery::parse("escalated").unwrap();
    let hits = search_all(&*s, &q, &TranscriptFilter::default(), SearchOrder::Relevance).await;
    assert_eq!(hits.iter().map(|h| h.transcript.id.clone()).collect::<Vec<_>>(), vec![first.id.clone()]);
    assert_eq!(hits[0].turn, None, "the summary matched");
    assert_eq!(hits[0].transcript, want2);
    let q = TextQuery::parse("hello").unwrap();
    let hits = search_all(&*s, &q, &TranscriptFilter::default(), SearchOrder::Newest).await;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].turn, Some(0));
    let mut shorter = again.clone();
    shorter.turns.truncate(1);
    shorter.turns[0].message = "Goodbye.".into();
    shorter.summary = None;
    s.upsert_transcript(&shorter).await.unwrap();
    for gone in ["hello", "escalated", "refund"] {
        let q = TextQuery::parse(gone).unwrap();
        assert!(search_all(&*s, &q, &TranscriptFilter::default(), SearchOrder::Relevance).await.is_empty(), "{gone}");
    }
    let q = TextQuery::parse("goodbye").unwrap();
    assert_eq!(search_all(&*s, &q, &TranscriptFilter::default(), SearchOrder::Relevance).await.len(), 1);
}

// ---- the generated corpus and the reference ----

const VOCAB: &[&str] = &[
    "refund",
    "refunds",
    "refunded",
    "return",
    "credit",
    "card",
    "cancel",
    "cancellation",
    "cancelled",
    "angry",
    "manager",
    "billing",
    "invoice",
    "delivery",
    "late",
    "thanks",
    "please",
    "order",
    "account",
    "café",
    "cafe",
    "or",
    "and",
    "near",
    "not",
    "the",
];

const TOPICS: &[&str] = &[
    "I want a refund on my credit card.",
    "Please cancel the order, it is late!",
    "Send it by e-mail, not by post.",
    "The manager was angry about the invoice.",
    "Late delivery again; thanks for nothing.",
    "Can you return the card? CREDIT limits apply.",
    "Billing: invoice #4471 is wrong (refunded twice).",
    "Meet me at the Café near the station.",
    "and or not near: just words here",
    "Your re_fund™ request: ÜBER-fast, naïve co-op (x² = 4)!",
];

/// A deterministic generator (no dependency, same corpus on every backend).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn sentence(g: &mut Lcg) -> String {
    if g.below(3) == 0 {
        return TOPICS[g.below(TOPICS.len())].to_owned();
    }
    let n = 2 + g.below(7);
    let mut words: Vec<String> = (0..n).map(|_| VOCAB[g.below(VOCAB.len())].to_owned()).collect();
    if g.below(4) == 0 {
        words[0] = words[0].to_uppercase();
    }
    format!("{}.", words.join(if g.below(2) == 0 { " " } else { ", " }))
}

struct Corpus {
    transcripts: Vec<Transcript>,
    campaigns: Vec<CampaignId>,
    contacts: Vec<ContactId>,
    t0: DateTime<Utc>,
}

fn corpus() -> Corpus {
    let mut g = Lcg(0x5eed_cafe);
    let t0 = now_ms() - Duration::days(1);
    let campaigns = vec![CampaignId::new(), CampaignId::new()];
    let contacts: Vec<ContactId> = (0..5).map(|_| ContactId::new()).collect();
    let mut transcripts = Vec::new();
    for i in 0..42 {
        // Every third shares its start with the previous one (ties break on id).
        let minute = i64::from(i) - i64::from(i % 3 == 2);
        let at = t0 + Duration::minutes(minute);
        let mut t = transcript(&format!("conv_gen_{i:02}"), if i % 7 == 6 { "processing" } else { "done" }, at);
        t.call_id = Some(CallId::new());
        t.campaign_id = (i % 5 != 4).then(|| campaigns[g.below(2)].clone());
        t.contact_id = Some(contacts[g.below(contacts.len())].clone());
        t.agent_id = Some(format!("agent_{}", g.below(3)));
        t.call_successful = match g.below(4) {
            0 => None,
            1 => Some("failure".into()),
            2 => Some("unknown".into()),
            _ => Some("success".into()),
        };
        t.sentiment = match g.below(5) {
            0 => None,
            k => Some([-0.75, -0.25, 0.0, 0.5][k - 1]),
        };
        if t.sentiment.is_some() {
            t.analysis = Some(json!({"sentiment": {"overall": t.sentiment}}));
            t.analyzer_version = Some(1);
        }
        let turns = g.below(6);
        t.turns = (0..turns)
            .map(|k| turn(if k % 2 == 0 { "agent" } else { "user" }, &sentence(&mut g), k as f64 * 2.5))
            .collect();
        if g.below(3) != 0 {
            t.summary = Some(sentence(&mut g));
        }
        let results = ["success", "failure", "unknown"];
        t.criteria = (0..g.below(3))
            .map(|k| CriterionResult {
                id: ["politeness", "resolved"][k].into(),
                result: results[g.below(3)].into(),
                rationale: None,
            })
            .collect();
        transcripts.push(t);
    }
    // A phrase split across two turns (and across a turn and the summary) is
    // not a phrase match: each text is matched on its own.
    let mut split = transcript("conv_gen_split", "done", t0 - Duration::minutes(5));
    split.turns =
        vec![turn("agent", "Your refund goes back to the credit", 1.0), turn("user", "card on file? Thanks for", 3.0)];
    split.summary = Some("nothing else was needed; late".into());
    transcripts.push(split);
    Corpus { transcripts, campaigns, contacts, t0 }
}

fn term_hits(term: &Term, t: &Transcript) -> bool {
    let one = TextQuery { all: vec![vec![term.clone()]], not: vec![] };
    t.turns.iter().any(|x| one.matches_text(&x.message)) || t.summary.as_deref().is_some_and(|s| one.matches_text(s))
}

/// The reference search predicate (see the module doc).
pub fn reference_matches(q: &TextQuery, t: &Transcript) -> bool {
    q.all.iter().all(|g| g.iter().any(|term| term_hits(term, t))) && !q.not.iter().any(|term| term_hits(term, t))
}

/// The reference filter predicate.
pub fn reference_filter(f: &TranscriptFilter, t: &Transcript) -> bool {
    f.campaign_id.as_ref().is_none_or(|c| t.campaign_id.as_ref() == Some(c))
        && f.agent_id.as_ref().is_none_or(|a| t.agent_id.as_ref() == Some(a))
        && f.contact_id.as_ref().is_none_or(|c| t.contact_id.as_ref() == Some(c))
        && f.started_after.is_none_or(|a| t.started_at >= a)
        && f.started_before.is_none_or(|b| t.started_at < b)
        && f.call_successful.as_ref().is_none_or(|v| t.call_successful.as_ref() == Some(v))
        && f.sentiment_min.is_none_or(|m| t.sentiment.is_some_and(|x| x >= m))
        && f.sentiment_max.is_none_or(|m| t.sentiment.is_some_and(|x| x <= m))
        && f.criterion.as_ref().is_none_or(|(id, r)| t.criteria.iter().any(|c| &c.id == id && &c.result == r))
}

fn filters(c: &Corpus) -> Vec<(&'static str, TranscriptFilter)> {
    let none = TranscriptFilter::default();
    vec![
        ("none", none.clone()),
        ("campaign", TranscriptFilter { campaign_id: Some(c.campaigns[0].clone()), ..none.clone() }),
        ("agent", TranscriptFilter { agent_id: Some("agent_1".into()), ..none.clone() }),
        ("contact", TranscriptFilter { contact_id: Some(c.contacts[2].clone()), ..none.clone() }),
        ("after", TranscriptFilter { started_after: Some(c.t0 + Duration::minutes(20)), ..none.clone() }),
        ("before", TranscriptFilter { started_before: Some(c.t0 + Duration::minutes(13)), ..none.clone() }),
        (
            "between",
            TranscriptFilter {
                started_after: Some(c.t0 + Duration::minutes(8)),
                started_before: Some(c.t0 + Duration::minutes(30)),
                ..none.clone()
            },
        ),
        ("successful", TranscriptFilter { call_successful: Some("success".into()), ..none.clone() }),
        ("sentiment_min", TranscriptFilter { sentiment_min: Some(0.0), ..none.clone() }),
        ("sentiment_range", TranscriptFilter { sentiment_min: Some(-0.5), sentiment_max: Some(0.25), ..none.clone() }),
        ("criterion", TranscriptFilter { criterion: Some(("politeness".into(), "success".into())), ..none.clone() }),
        (
            "combined",
            TranscriptFilter {
                campaign_id: Some(c.campaigns[1].clone()),
                criterion: Some(("politeness".into(), "failure".into())),
                started_before: Some(c.t0 + Duration::minutes(40)),
                ..none.clone()
            },
        ),
    ]
}

async fn seed(s: &dyn Storage) -> Corpus {
    let c = corpus();
    for t in &c.transcripts {
        assert_eq!(&s.upsert_transcript(t).await.unwrap(), t);
    }
    c
}

async fn search_all(s: &dyn Storage, q: &TextQuery, f: &TranscriptFilter, order: SearchOrder) -> Vec<SearchHit> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(7);
    loop {
        let p = s.search_transcripts(q, f, order, &page).await.unwrap();
        assert!(p.items.len() <= 7);
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
}

fn newest_first(mut ts: Vec<&Transcript>) -> Vec<TranscriptId> {
    ts.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    ts.into_iter().map(|t| t.id.clone()).collect()
}

/// `list_transcripts` with each filter returns exactly the reference's
/// transcripts, newest first (ties by id), across cursor pages; criteria are
/// queryable per (id, result).
pub async fn transcript_lists_match_every_filter(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "transcript_lists_match_every_filter") {
        return;
    }
    s.migrate().await.unwrap();
    let c = seed(&*s).await;
    for (name, f) in filters(&c) {
        let want = newest_first(c.transcripts.iter().filter(|t| reference_filter(&f, t)).collect());
        let mut got = Vec::new();
        let mut page = PageRequest::first(5);
        loop {
            let p = s.list_transcripts(&f, &page).await.unwrap();
            got.extend(p.items);
            match p.next_cursor {
                Some(cur) => page.cursor = Some(cur),
                None => break,
            }
        }
        assert_eq!(got.iter().map(|t| t.id.clone()).collect::<Vec<_>>(), want, "filter {name}");
        for t in &got {
            let orig = c.transcripts.iter().find(|o| o.id == t.id).unwrap();
            assert_eq!(t, orig, "filter {name}: listed transcripts are whole");
        }
        if name == "criterion" {
            assert!(!want.is_empty(), "the corpus exercises the {name} filter");
        }
    }
    let bad = PageRequest { limit: 5, cursor: Some("not-a-cursor".into()) };
    assert!(s.list_transcripts(&TranscriptFilter::default(), &bad).await.is_err());
}

/// Search: for words, prefixes, phrases, OR, NOT and every filter, the set of
/// matched transcripts equals the reference predicate's, in both orders and
/// across cursor pages; `turn` names a text that the query hits; user text is
/// never FTS or `$text` syntax.
pub async fn transcript_search_matches_the_reference(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "transcript_search_matches_the_reference") {
        return;
    }
    s.migrate().await.unwrap();
    let c = seed(&*s).await;
    let queries = [
        "refund",
        "REFUND*",
        "cancel*",
        "ca*",
        "\"credit card\"",
        "refund OR return",
        "refund -angry",
        "card NOT manager",
        "e-mail",
        "café",
        "cafe",
        "billing invoice",
        "refund OR cancel* credit",
        "\"late delivery\" OR invoice -thanks",
        "order | account -\"credit card\"",
        "or",
        "\"and or\"",
        "near",
        "not*",
        "the",
        "NEAR(late delivery)",
        "col:card ^angry",
        "4471",
        "nothing*",
        "zebra",
        "refund -refund",
        "\"thanks for nothing\"",
        "fund",
        "über",
        "naïve OR naive",
        "co-op",
        "re* fast",
        "x²",
    ];
    let mut matched_any = 0;
    for qs in queries {
        let q = TextQuery::parse(qs).unwrap_or_else(|e| panic!("{qs}: {e}"));
        for (name, f) in filters(&c) {
            let want: BTreeSet<TranscriptId> = c
                .transcripts
                .iter()
                .filter(|t| reference_filter(&f, t) && reference_matches(&q, t))
                .map(|t| t.id.clone())
                .collect();
            if !want.is_empty() {
                matched_any += 1;
            }
            for order in [SearchOrder::Relevance, SearchOrder::Newest] {
                // Combined filters × both orders are many searches: the full filter list on one order.
                if order == SearchOrder::Newest && !matches!(name, "none" | "campaign" | "between" | "criterion") {
                    continue;
                }
                let hits = search_all(&*s, &q, &f, order).await;
                let ids: Vec<TranscriptId> = hits.iter().map(|h| h.transcript.id.clone()).collect();
                let got: BTreeSet<TranscriptId> = ids.iter().cloned().collect();
                assert_eq!(got.len(), ids.len(), "{qs:?} / {name} / {order:?}: a transcript on two pages");
                assert_eq!(got, want, "{qs:?} / {name} / {order:?}: match set differs from the reference");
                if order == SearchOrder::Newest {
                    let refs: Vec<&Transcript> = hits.iter().map(|h| &h.transcript).collect();
                    assert_eq!(ids, newest_first(refs), "{qs:?} / {name}: newest first");
                } else {
                    for w in hits.windows(2) {
                        assert!(
                            w[0].score >= w[1].score,
                            "{qs:?} / {name}: best first ({} < {})",
                            w[0].score,
                            w[1].score
                        );
                    }
                }
                for hit in &hits {
                    let orig = c.transcripts.iter().find(|t| t.id == hit.transcript.id).unwrap();
                    assert_eq!(&hit.transcript, orig, "{qs:?}: hits carry the whole transcript");
                    let positive: Vec<&Term> = q.all.iter().flatten().collect();
                    let one = |text: &str| {
                        positive
                            .iter()
                            .any(|t| TextQuery { all: vec![vec![(*t).clone()]], not: vec![] }.matches_text(text))
                    };
                    match hit.turn {
                        Some(i) => assert!(
                            orig.turns.get(i).is_some_and(|t| one(&t.message)),
                            "{qs:?}: turn {i} of {} does not match",
                            orig.id
                        ),
                        None => assert!(
                            orig.summary.as_deref().is_some_and(one),
                            "{qs:?}: `turn: None` but the summary of {} does not match",
                            orig.id
                        ),
                    }
                }
            }
        }
    }
    assert!(matched_any > 40, "the corpus exercises the queries ({matched_any} non-empty searches)");
    let bad = PageRequest { limit: 5, cursor: Some("not-a-cursor".into()) };
    let q = TextQuery::parse("refund").unwrap();
    assert!(s.search_transcripts(&q, &TranscriptFilter::default(), SearchOrder::Newest, &bad).await.is_err());
}
