//! `switchboard bench --suite analysis`: the Phase 3 figures (transcripts,
//! full-text search, our analysis, post-call ingest), measured in one run on a
//! file-backed SQLite store in a temp dir.
//!
//! 1. **Seeding**: `transcripts` conversations from a generator with a fixed
//!    seed (~20 turns each, a few hundred words of vocabulary skewed towards
//!    the common ones, phrases such as "credit card", "refund", "cancel my
//!    subscription", rare words in ~2 % of them; 20 campaigns, 6 agents, 4
//!    evaluation criteria, `started_at` spread over 90 days) go through the
//!    ElevenLabs payload ([`switchboard_wire::elevenlabs`]) →
//!    [`crate::conversations::transcript_from`] → [`crate::analysis::apply`] →
//!    `upsert_transcript`, one at a time. The rate counts the upserts only
//!    (row, criteria rows and FTS rows in one transaction).
//! 2. **Search**: p50 / p95 / p99 of one `search_transcripts` page (limit 20)
//!    per query kind (common term, rare term, phrase, prefix, OR, term +
//!    campaign + 30-day range, term + criterion) and per order (relevance,
//!    newest), terms varied per sample; target p95 ≤ 20 ms at 100k
//!    transcripts, reported as PASS/FAIL (never asserted).
//! 3. **Analysis**: transcripts per second through `analysis::apply` on one
//!    thread, over every seeded transcript (timed apart from the upserts).
//! 4. **Ingest**: sequential signed requests against the real server on the
//!    same store: 4 Twilio status callbacks for each of `webhooks` calls, then
//!    one `post_call_transcription` (transcript, ElevenLabs analysis, ours
//!    computed on ingest) per call, naming that call's CallSid (the usual
//!    order). Bodies and signatures are prepared before timing.
//!
//! Figures go to the README; nothing here asserts a speed.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use switchboard_domain::{CallStatus, Direction, Transcript};
use switchboard_storage::{PageRequest, SearchOrder, Storage, TextQuery, TranscriptFilter};
use switchboard_storage_sqlite::{SqliteOptions, SqliteStore};
use switchboard_wire::elevenlabs as el;

use super::calls::{Machine, percentile};
use crate::config::Secret;
use crate::devtools::seed;
use crate::webhooks::verify::twilio_signature;

/// The Twilio auth token of the bench's server.
const TWILIO_TOKEN: &str = "f00dfacecafebeef0123456789abcdef";
/// The ElevenLabs webhook secret of the bench's server.
const EL_SECRET: &str = "wsec_bench_0123456789abcdef01234";
/// Generator seed.
const SEED: u64 = 0x7a11_5eed;
/// Transcripts generated, analysed and stored per batch.
const BATCH: u64 = 1_000;
/// Page size of the searches.
const SEARCH_LIMIT: u32 = 20;
/// Campaigns the transcripts belong to.
const CAMPAIGNS: u32 = 20;
/// Search target (p95) from the issue, at 100k transcripts.
const TARGET_P95: Duration = Duration::from_millis(20);

/// Options.
#[derive(Debug, Clone)]
pub struct AnalysisBenchOptions {
    /// Transcripts seeded.
    pub transcripts: u64,
    /// Timed searches per query kind and order (at most).
    pub search_samples: usize,
    /// Time budget per query kind and order: sampling stops early when it is spent
    /// (the row shows how many samples it got).
    pub search_budget: Duration,
    /// Calls whose status callbacks (4 each) and post-call webhook (1 each) are sent.
    pub webhooks: usize,
    /// Show progress bars.
    pub progress: bool,
    /// Keep the store in this SQLite file; a file that exists is reused as it is
    /// (no seeding: the corpus figures are then not measured).
    pub store_path: Option<std::path::PathBuf>,
}

impl Default for AnalysisBenchOptions {
    fn default() -> Self {
        AnalysisBenchOptions {
            transcripts: 100_000,
            search_samples: 300,
            search_budget: Duration::from_secs(15),
            webhooks: 500,
            progress: true,
            store_path: None,
        }
    }
}

/// Latency summary.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lat {
    /// Mean.
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 95th percentile.
    pub p95: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Lat {
    /// The summary of a set of samples.
    pub fn of(mut v: Vec<Duration>) -> Lat {
        v.sort_unstable();
        let mean = if v.is_empty() { Duration::ZERO } else { v.iter().sum::<Duration>() / v.len() as u32 };
        Lat {
            mean,
            p50: percentile(&v, 50.0),
            p95: percentile(&v, 95.0),
            p99: percentile(&v, 99.0),
            max: v.last().copied().unwrap_or_default(),
        }
    }
}

/// One search row: a query kind in one order.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchRow {
    /// Query kind.
    pub kind: &'static str,
    /// An example query of the kind (the first sampled).
    pub example: String,
    /// Relevance or newest.
    pub order: SearchOrder,
    /// Timed searches.
    pub samples: usize,
    /// Mean hits on the page (≤ the limit).
    pub mean_hits: f64,
    /// Latency.
    pub latency: Lat,
}

/// One webhook kind.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRow {
    /// What was sent.
    pub name: &'static str,
    /// Requests (all answered with the expected status).
    pub requests: usize,
    /// Mean body size.
    pub mean_body_bytes: usize,
    /// Latency to the full response.
    pub latency: Lat,
}

/// Results.
#[derive(Debug, Clone)]
pub struct AnalysisBenchReport {
    /// Where it ran.
    pub machine: Machine,
    /// Transcripts seeded.
    pub transcripts: u64,
    /// Turns in them.
    pub turns: u64,
    /// Words in the turn messages.
    pub words: u64,
    /// Time spent in `upsert_transcript`.
    pub seed_elapsed: Duration,
    /// Time spent in `analysis::apply`.
    pub analysis_elapsed: Duration,
    /// Wall time of the seeding phase (generation, analysis and upserts).
    pub seed_wall: Duration,
    /// The store was reused (`--transcripts-db`): no seeding figures.
    pub reused: bool,
    /// Search-index upkeep after seeding (the `search_index` job run to
    /// completion, as it runs every minute in `serve`): time and steps.
    pub merge_elapsed: Duration,
    /// Merge steps that did work.
    pub merge_steps: u32,
    /// Database files (main + WAL) after seeding.
    pub db_bytes: u64,
    /// Search rows, kinds in order, relevance then newest.
    pub searches: Vec<SearchRow>,
    /// Twilio status callbacks, then post-call transcriptions.
    pub status: IngestRow,
    /// Post-call transcription webhooks.
    pub post_call: IngestRow,
    /// Transcripts in the store after the webhooks (seeded + one per post-call).
    pub transcripts_after: u64,
}

// ---------------------------------------------------------------------------
// The generator.

/// Words of everyday speech (skewed: earlier ones come up more).
const COMMON: &str = "i you the to a and it is that of for we my your this in on be can have do me \
    so not just what with yes no okay right well like know get about if all at but are was will \
    there here they would could one time now today call help need want thank thanks sure let see \
    go going please sorry hi hello good great really think back again also how when then some any \
    just more than out up them our which who much very maybe actually yeah alright understand \
    make take give tell said say look still next last day week month morning afternoon evening \
    number name check moment minute second wait hold line phone speak talk listen question answer";

/// Words of customer calls.
const DOMAIN: &str = "account payment billing invoice charge charged balance due plan subscription \
    appointment schedule reschedule booking confirm confirmation delivery order package shipping \
    address email password login verify verification security code service support technician \
    insurance policy claim coverage premium deductible doctor clinic prescription pharmacy \
    renewal contract upgrade downgrade discount offer promotion price fee late statement receipt \
    transfer deposit withdrawal loan mortgage rate interest application approved declined \
    warranty repair replacement return exchange tracking estimate quote survey feedback \
    manager supervisor agent representative department office branch store location hours \
    internet outage router signal connection modem installation cable bill autopay";

/// Names and places (entities for the analyser).
const NAMES: &str = "Maria James Robert Linda Michael Sarah David Jennifer Carlos Aisha Wei Priya \
    Chicago Houston Phoenix Denver Seattle Boston Miami Atlanta Dallas Portland Austin Tampa \
    Monday Tuesday Wednesday Thursday Friday Saturday";

/// Rare words: one of them in ~2 % of transcripts.
const RARE: &str = "zeppelin quixotic marzipan obsidian kumquat xylophone gazebo walrus \
    periwinkle tambourine yodel zucchini harpsichord origami labyrinth sarsaparilla \
    chrysanthemum narwhal platypus ukulele";

/// Phrases (searched as phrases, also feeding the keyword extractor).
const PHRASES: [&str; 14] = [
    "credit card",
    "refund",
    "cancel my subscription",
    "speak to a manager",
    "call me back",
    "wrong number",
    "not interested",
    "late fee",
    "billing error",
    "direct deposit",
    "customer service",
    "next week",
    "account number",
    "really appreciate it",
];

const CRITERIA: [&str; 4] = ["resolved_issue", "verified_identity", "followed_script", "offered_upsell"];

const SUMMARIES: [&str; 6] = [
    "The customer asked about a charge on their bill and the agent explained the fee.",
    "The caller wanted to cancel their subscription; the agent offered a discount.",
    "The agent confirmed the appointment and sent a confirmation email.",
    "The customer requested a refund for a damaged package; a replacement was arranged.",
    "The caller was not interested and asked to be removed from the list.",
    "The agent verified the account and updated the payment method to a new credit card.",
];

fn words(s: &'static str) -> Vec<&'static str> {
    s.split_whitespace().collect()
}

/// One generated conversation (owned; [`Conv::to_json`] builds the ElevenLabs payload).
#[derive(Debug, Clone)]
struct Conv {
    conversation_id: String,
    agent_id: String,
    start_secs: i64,
    duration_secs: i64,
    turns: Vec<(&'static str, String, u64)>,
    summary: &'static str,
    successful: &'static str,
    criteria: Vec<(&'static str, &'static str)>,
}

impl Conv {
    fn to_json(&self, call: Option<(&str, &str)>) -> Value {
        el::Conversation {
            agent_id: &self.agent_id,
            conversation_id: &self.conversation_id,
            status: "done",
            metadata: el::Metadata {
                start_time_unix_secs: self.start_secs,
                call_duration_secs: self.duration_secs,
                cost: self.duration_secs * 10,
                termination_reason: "Call ended by remote party",
                phone_call: call.map(|(sid, to)| el::PhoneCall {
                    direction: "outbound",
                    call_sid: sid,
                    agent_number: "+14155550101",
                    external_number: to,
                    phone_number_id: None,
                    stream_sid: None,
                }),
            },
            analysis: Some(el::Analysis {
                call_successful: self.successful,
                transcript_summary: self.summary,
                details: Some(el::AnalysisDetails {
                    call_summary_title: "Customer call",
                    evaluation_criteria_results: self
                        .criteria
                        .iter()
                        .map(|(id, r)| el::CriterionResult { criteria_id: id, result: r, rationale: "As observed." })
                        .collect(),
                    data_collection_results: vec![],
                }),
            }),
            details: Some(el::ConversationDetails {
                agent_name: "Bench agent",
                user_id: None,
                transcript: self
                    .turns
                    .iter()
                    .map(|(role, m, t)| el::Turn { role, message: m, time_in_call_secs: *t })
                    .collect(),
                accepted_time_unix_secs: self.start_secs,
                main_language: "en",
                conversation_initiation_source: "twilio",
                authorization_method: "authorization_header",
                dynamic_variables: Default::default(),
                caller_id: "+14155550101",
                called_number: call.map(|(_, to)| to).unwrap_or("+14155550199"),
                has_audio: true,
                has_user_audio: true,
                has_response_audio: true,
            }),
        }
        .to_json()
    }
}

/// The fixed-seed conversation generator.
struct Gen {
    rng: StdRng,
    common: Vec<&'static str>,
    domain: Vec<&'static str>,
    names: Vec<&'static str>,
    rare: Vec<&'static str>,
    now_secs: i64,
}

impl Gen {
    fn new(seed: u64) -> Gen {
        Gen {
            rng: StdRng::seed_from_u64(seed),
            common: words(COMMON),
            domain: words(DOMAIN),
            names: words(NAMES),
            rare: words(RARE),
            now_secs: Utc::now().timestamp(),
        }
    }

    /// A word of `list`, skewed towards the front (roughly Zipf-like).
    fn skewed(&mut self, len: usize) -> usize {
        let x: f64 = self.rng.random();
        ((x * x * x) * len as f64) as usize % len
    }

    fn sentence(&mut self, rare: Option<&'static str>) -> String {
        let n = self.rng.random_range(5..=18);
        let mut out: Vec<&str> = Vec::with_capacity(n + 4);
        for _ in 0..n {
            let r: f64 = self.rng.random();
            let w = if r < 0.68 {
                let k = self.skewed(self.common.len());
                self.common[k]
            } else if r < 0.95 {
                let k = self.skewed(self.domain.len());
                self.domain[k]
            } else {
                self.names[self.rng.random_range(0..self.names.len())]
            };
            out.push(w);
        }
        if self.rng.random_bool(0.22) {
            let at = self.rng.random_range(0..=out.len());
            out.insert(at, PHRASES[self.rng.random_range(0..PHRASES.len())]);
        }
        if let Some(w) = rare {
            let at = self.rng.random_range(0..=out.len());
            out.insert(at, w);
        }
        let mut s = out.join(" ");
        if let Some(first) = s.get_mut(0..1) {
            first.make_ascii_uppercase();
        }
        s.push(if self.rng.random_bool(0.2) { '?' } else { '.' });
        s
    }

    fn conversation(&mut self, id: String, recent: bool) -> Conv {
        let turns_n = self.rng.random_range(14..=26);
        let rare_turn = self.rng.random_bool(0.02).then(|| self.rng.random_range(0..turns_n));
        let mut t = 0;
        let turns = (0..turns_n)
            .map(|k| {
                let rare = if rare_turn == Some(k) {
                    Some(self.rare[self.rng.random_range(0..self.rare.len())])
                } else {
                    None
                };
                let parts = self.rng.random_range(1..=2);
                let msg = (0..parts).map(|p| self.sentence(rare.filter(|_| p == 0))).collect::<Vec<_>>().join(" ");
                t += self.rng.random_range(2..=12);
                (if k % 2 == 0 { "agent" } else { "user" }, msg, t)
            })
            .collect();
        let age = if recent { self.rng.random_range(60..600) } else { self.rng.random_range(60..90 * 86_400) };
        let mut criteria = Vec::new();
        for c in CRITERIA {
            if self.rng.random_bool(0.75) {
                let r: f64 = self.rng.random();
                criteria.push((
                    c,
                    if r < 0.6 {
                        "success"
                    } else if r < 0.9 {
                        "failure"
                    } else {
                        "unknown"
                    },
                ));
            }
        }
        let r: f64 = self.rng.random();
        Conv {
            conversation_id: id,
            agent_id: seed::agent_id(self.rng.random_range(1..=seed::AGENTS)),
            start_secs: self.now_secs - age,
            duration_secs: t as i64 + 5,
            turns,
            summary: SUMMARIES[self.rng.random_range(0..SUMMARIES.len())],
            successful: if r < 0.55 {
                "success"
            } else if r < 0.85 {
                "failure"
            } else {
                "unknown"
            },
            criteria,
        }
    }
}

// ---------------------------------------------------------------------------
// Search queries.

const KINDS: [&str; 7] =
    ["common term", "rare term", "phrase", "prefix", "OR", "term + campaign + 30 days", "term + criterion"];

const COMMON_TERMS: [&str; 8] = ["account", "payment", "appointment", "billing", "order", "service", "plan", "help"];
const PHRASE_TERMS: [&str; 5] =
    ["\"credit card\"", "\"cancel my subscription\"", "\"speak to a manager\"", "\"late fee\"", "\"wrong number\""];
const PREFIX_TERMS: [&str; 6] = ["refund*", "appoint*", "cancel*", "bill*", "verif*", "insur*"];
const OR_TERMS: [&str; 4] =
    ["refund OR replacement", "invoice | receipt", "doctor OR pharmacy", "outage OR router OR modem"];

fn query(kind: usize, rng: &mut StdRng, rare: &[&str], now: chrono::DateTime<Utc>) -> (String, TranscriptFilter) {
    let mut f = TranscriptFilter::default();
    let pick = |rng: &mut StdRng, l: &[&str]| l[rng.random_range(0..l.len())].to_owned();
    let q = match kind {
        0 => pick(rng, &COMMON_TERMS),
        1 => pick(rng, rare),
        2 => pick(rng, &PHRASE_TERMS),
        3 => pick(rng, &PREFIX_TERMS),
        4 => pick(rng, &OR_TERMS),
        5 => {
            f.campaign_id = Some(seed::campaign_id(rng.random_range(1..=CAMPAIGNS)));
            let end = now - chrono::Duration::days(rng.random_range(0..60));
            f.started_after = Some(end - chrono::Duration::days(30));
            f.started_before = Some(end);
            pick(rng, &COMMON_TERMS)
        }
        _ => {
            let result = if rng.random_bool(0.5) { "success" } else { "failure" };
            f.criterion = Some((pick(rng, &CRITERIA), result.to_owned()));
            pick(rng, &["refund", "payment", "subscription", "manager", "appointment"])
        }
    };
    (q, f)
}

async fn search_once(
    store: &dyn Storage,
    q: &str,
    f: &TranscriptFilter,
    order: SearchOrder,
) -> anyhow::Result<(Duration, usize)> {
    let tq = TextQuery::parse(q).map_err(|e| anyhow::anyhow!("query {q:?}: {e}"))?;
    let page = PageRequest::first(SEARCH_LIMIT);
    let t = Instant::now();
    let p = store.search_transcripts(&tq, f, order, &page).await?;
    Ok((t.elapsed(), p.items.len()))
}

// ---------------------------------------------------------------------------
// Webhooks.

struct Prepared {
    body: String,
    header: (&'static str, String),
    content_type: &'static str,
}

fn status_callbacks(url: &str, calls: usize) -> Vec<Prepared> {
    let base = Utc::now() - chrono::Duration::minutes(5);
    let statuses = [CallStatus::Initiated, CallStatus::Ringing, CallStatus::InProgress, CallStatus::Completed];
    (0..calls * 4)
        .map(|i| {
            let call = (i / 4) as u64;
            let seq = i % 4;
            let params = seed::twilio_status_params(
                seed::ACCOUNT_SID,
                &bench_call_sid(call),
                statuses[seq],
                seq as i64,
                base + chrono::Duration::seconds(seq as i64 * 3),
                Direction::OutboundApi,
                "+14155550101",
                &seed::contact_number(call),
                (seq == 3).then_some((120, 200)),
            );
            let signature = twilio_signature(TWILIO_TOKEN, url, &params);
            Prepared {
                body: form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish(),
                header: ("X-Twilio-Signature", signature),
                content_type: "application/x-www-form-urlencoded",
            }
        })
        .collect()
}

fn bench_call_sid(call: u64) -> String {
    format!("CAa7a1{call:028x}")
}

fn post_calls(generator: &mut Gen, calls: usize) -> Vec<Prepared> {
    let now = Utc::now().timestamp();
    (0..calls)
        .map(|i| {
            let conv = generator.conversation(format!("conv_benchwh{i:020x}"), true);
            let (sid, to) = (bench_call_sid(i as u64), seed::contact_number(i as u64));
            let body = el::envelope(el::PostCallTranscription::TYPE, now, conv.to_json(Some((&sid, &to)))).to_string();
            let header = switchboard_wire::signature::elevenlabs_signature(EL_SECRET, now, body.as_bytes());
            Prepared { body, header: ("ElevenLabs-Signature", header), content_type: "application/json" }
        })
        .collect()
}

async fn send_all(
    client: &Client,
    url: &str,
    reqs: Vec<Prepared>,
    want: StatusCode,
    name: &'static str,
    progress: bool,
) -> anyhow::Result<IngestRow> {
    let bar = bar(progress, reqs.len() as u64, name);
    let mean_body_bytes = reqs.iter().map(|r| r.body.len()).sum::<usize>() / reqs.len().max(1);
    let mut lat = Vec::with_capacity(reqs.len());
    let requests = reqs.len();
    for r in reqs {
        let req = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, r.content_type)
            .header(r.header.0, r.header.1)
            .body(r.body);
        let t = Instant::now();
        let resp = req.send().await?;
        let status = resp.status();
        let body = resp.bytes().await?;
        lat.push(t.elapsed());
        anyhow::ensure!(status == want, "{name}: {status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(IngestRow { name, requests, mean_body_bytes, latency: Lat::of(lat) })
}

// ---------------------------------------------------------------------------

fn bar(progress: bool, len: u64, what: &str) -> indicatif::ProgressBar {
    if !progress {
        return indicatif::ProgressBar::hidden();
    }
    indicatif::ProgressBar::new(len).with_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:30}} {{pos}}/{{len}} ({{per_sec}}) {{elapsed}}"
        ))
        .expect("template"),
    )
}

/// The database file and its WAL.
fn db_bytes(db: &Path) -> u64 {
    let wal = std::path::PathBuf::from(format!("{}-wal", db.display()));
    [db, wal.as_path()].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum()
}

async fn count_transcripts(store: &dyn Storage) -> anyhow::Result<u64> {
    let mut n = 0;
    let mut page = PageRequest::first(500);
    loop {
        let p = store.list_transcripts(&TranscriptFilter::default(), &page).await?;
        n += p.items.len() as u64;
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok(n),
        }
    }
}

/// Runs the four phases.
pub async fn run(opts: AnalysisBenchOptions) -> anyhow::Result<AnalysisBenchReport> {
    anyhow::ensure!((1..=10_000_000).contains(&opts.transcripts), "transcripts must be 1-10,000,000");
    anyhow::ensure!(opts.search_samples >= 1 && opts.webhooks >= 1, "samples and webhooks must be at least 1");
    let machine = Machine::detect();
    let tmp = tempfile::Builder::new().prefix("switchboard-bench-analysis-").tempdir()?;
    let db = opts.store_path.clone().unwrap_or_else(|| tmp.path().join("bench.db"));
    let reuse = opts.store_path.as_ref().is_some_and(|p| p.exists());
    let store: Arc<dyn Storage> = Arc::new(SqliteStore::open(&db, SqliteOptions::default())?);
    store.migrate().await?;

    // 1 + 3. Seeding, with the analysis timed apart.
    let mut generator = Gen::new(SEED);
    let campaigns: Vec<_> = (1..=CAMPAIGNS).map(seed::campaign_id).collect();
    let (mut seed_elapsed, mut analysis_elapsed) = (Duration::ZERO, Duration::ZERO);
    let (mut turns, mut words) = (0u64, 0u64);
    let progress = bar(opts.progress, opts.transcripts, "seeding transcripts");
    tracing::info!(transcripts = opts.transcripts, "seeding transcripts");
    let wall = Instant::now();
    let mut i = if reuse {
        tracing::info!(path = %db.display(), "reusing the seeded store: seeding skipped");
        opts.transcripts
    } else {
        0
    };
    while i < opts.transcripts {
        let n = BATCH.min(opts.transcripts - i);
        let mut batch: Vec<Transcript> = (i..i + n)
            .map(|k| {
                let conv = generator.conversation(format!("conv_bench{k:024x}"), false);
                let mut t = crate::conversations::transcript_from(&conv.to_json(None)).expect("conversation id");
                t.campaign_id = Some(campaigns[(k % campaigns.len() as u64) as usize].clone());
                t
            })
            .collect();
        for t in &batch {
            turns += t.turns.len() as u64;
            words += t.turns.iter().map(|x| x.message.split_whitespace().count() as u64).sum::<u64>();
        }
        let started = Instant::now();
        for t in &mut batch {
            crate::analysis::apply(t);
        }
        analysis_elapsed += started.elapsed();
        let started = Instant::now();
        for t in &batch {
            store.upsert_transcript(t).await?;
        }
        seed_elapsed += started.elapsed();
        i += n;
        progress.set_position(i);
    }
    progress.finish_and_clear();
    let seed_wall = wall.elapsed();
    tracing::info!(secs = format!("{:.1}", seed_wall.as_secs_f64()), "seeded");
    let started = Instant::now();
    let merge_steps = crate::jobs::search_index::compact(
        &*store,
        u32::MAX,
        crate::jobs::search_index::PAGES_PER_STEP,
        Duration::ZERO,
    )
    .await?;
    let merge_elapsed = started.elapsed();
    tracing::info!(steps = merge_steps, secs = format!("{:.1}", merge_elapsed.as_secs_f64()), "search index merged");
    let db_bytes = db_bytes(&db);

    // 2. Search.
    let rare: Vec<&str> = RARE.split_whitespace().collect();
    let now = Utc::now();
    let mut rng = StdRng::seed_from_u64(SEED ^ 0x5ea2c4);
    for kind in 0..KINDS.len() {
        for order in [SearchOrder::Relevance, SearchOrder::Newest] {
            for _ in 0..3 {
                let (q, f) = query(kind, &mut rng, &rare, now);
                search_once(&*store, &q, &f, order).await?;
            }
        }
    }
    let mut searches = Vec::new();
    let progress = bar(opts.progress, (KINDS.len() * 2 * opts.search_samples) as u64, "searching");
    for (kind, name) in KINDS.iter().enumerate() {
        for order in [SearchOrder::Relevance, SearchOrder::Newest] {
            let (mut lat, mut hits, mut example) = (Vec::with_capacity(opts.search_samples), 0usize, String::new());
            let row_started = Instant::now();
            for s in 0..opts.search_samples {
                if s > 0 && row_started.elapsed() > opts.search_budget {
                    progress.inc((opts.search_samples - s) as u64);
                    break;
                }
                let (q, f) = query(kind, &mut rng, &rare, now);
                if s == 0 {
                    example = describe(&q, &f);
                }
                let (d, n) = search_once(&*store, &q, &f, order).await?;
                lat.push(d);
                hits += n;
                progress.inc(1);
            }
            searches.push(SearchRow {
                kind: name,
                example,
                order,
                samples: lat.len(),
                mean_hits: hits as f64 / lat.len().max(1) as f64,
                latency: Lat::of(lat),
            });
        }
    }
    progress.finish_and_clear();

    // 4. Ingest through the real server on the same store.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut settings = crate::config::embedded_defaults();
    settings.dialer.enabled = false;
    settings.migrate_on_start = false;
    settings.public_base_url = Some(base.clone());
    settings.twilio.auth_token = Some(Secret::new(TWILIO_TOKEN));
    settings.elevenlabs.webhook_secret = Some(Secret::new(EL_SECRET));
    let app = crate::App::with_store(settings, store.clone()).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client =
        Client::builder().no_proxy().http1_only().tcp_nodelay(true).timeout(Duration::from_secs(30)).build()?;
    let result = async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match client.get(format!("{base}/readyz")).send().await {
                Ok(r) if r.status().is_success() => break,
                _ if Instant::now() > deadline => anyhow::bail!("the benchmark server did not become ready"),
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        let status_url = format!("{base}/webhooks/twilio/status");
        let reqs = status_callbacks(&status_url, opts.webhooks);
        let status =
            send_all(&client, &status_url, reqs, StatusCode::NO_CONTENT, "POST /webhooks/twilio/status", opts.progress)
                .await?;
        let mut generator = Gen::new(SEED ^ 0x00ee_11ab);
        let reqs = post_calls(&mut generator, opts.webhooks);
        let el_url = format!("{base}/webhooks/elevenlabs");
        let post_call = send_all(
            &client,
            &el_url,
            reqs,
            StatusCode::OK,
            "POST /webhooks/elevenlabs (post_call_transcription)",
            opts.progress,
        )
        .await?;
        Ok((status, post_call))
    }
    .await;
    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Err(e))) => tracing::warn!("benchmark server stopped with an error: {e:#}"),
        Ok(Err(e)) => tracing::warn!("benchmark server task failed: {e}"),
        Err(_) => tracing::warn!("benchmark server did not stop within 10 s"),
        Ok(Ok(Ok(()))) => {}
    }
    let (status, post_call) = result?;
    let transcripts_after = count_transcripts(&*store).await.context("counting transcripts")?;

    Ok(AnalysisBenchReport {
        machine,
        transcripts: opts.transcripts,
        turns,
        words,
        seed_elapsed,
        analysis_elapsed,
        seed_wall,
        reused: reuse,
        merge_elapsed,
        merge_steps,
        db_bytes,
        searches,
        status,
        post_call,
        transcripts_after,
    })
}

fn describe(q: &str, f: &TranscriptFilter) -> String {
    let mut s = format!("`{q}`");
    if f.campaign_id.is_some() {
        s.push_str(" + campaign");
    }
    if f.started_after.is_some() {
        s.push_str(" + 30-day range");
    }
    if let Some((id, r)) = &f.criterion {
        s.push_str(&format!(" + {id}={r}"));
    }
    s
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

impl fmt::Display for AnalysisBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(
            f,
            "Machine: {} CPUs, {}, {} {}; embedded SQLite (file, temp dir, default options)",
            m.nproc,
            m.cpu.as_deref().unwrap_or("unknown CPU"),
            m.os,
            m.arch
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "Corpus: {} transcripts, {} turns ({:.1} per transcript), {} words ({:.0} per transcript); database {:.0} MB",
            self.transcripts,
            self.turns,
            self.turns as f64 / self.transcripts.max(1) as f64,
            self.words,
            self.words as f64 / self.transcripts.max(1) as f64,
            self.db_bytes as f64 / 1e6
        )?;
        writeln!(f)?;
        writeln!(f, "| Phase | Time | Rate |")?;
        writeln!(f, "| --- | --- | --- |")?;
        if self.reused {
            writeln!(f, "| Seeding | skipped | the store was reused (`--transcripts-db`) |")?;
        } else {
            writeln!(
                f,
                "| Seeding: `upsert_transcript` one at a time (row, criteria, FTS rows) | {:.1} s | **{:.0} transcripts/s** |",
                self.seed_elapsed.as_secs_f64(),
                per_sec(self.transcripts, self.seed_elapsed)
            )?;
            writeln!(
                f,
                "| Analysis: `analysis::apply` (sentiment, keywords, entities), one thread | {:.1} s | **{:.0} transcripts/s** ({:.2} ms each) |",
                self.analysis_elapsed.as_secs_f64(),
                per_sec(self.transcripts, self.analysis_elapsed),
                self.analysis_elapsed.as_secs_f64() * 1e3 / self.transcripts.max(1) as f64
            )?;
            writeln!(
                f,
                "| Seeding wall time (generation + analysis + upserts) | {:.1} s | {:.0} transcripts/s |",
                self.seed_wall.as_secs_f64(),
                per_sec(self.transcripts, self.seed_wall)
            )?;
        }
        writeln!(
            f,
            "| Search-index merge (`search_index` job to completion) | {:.1} s | {} steps of {} pages |",
            self.merge_elapsed.as_secs_f64(),
            self.merge_steps,
            crate::jobs::search_index::PAGES_PER_STEP
        )?;
        writeln!(f)?;
        let samples = self.searches.iter().map(|s| s.samples).max().unwrap_or(0);
        writeln!(
            f,
            "Search: one `search_transcripts` page (limit {SEARCH_LIMIT}), up to {samples} samples per row \
             (fewer when a row's time budget ran out), terms varied per sample; \
             target p95 ≤ {} ms at 100,000 transcripts{}:",
            TARGET_P95.as_millis(),
            if self.transcripts == 100_000 { String::new() } else { format!(" (this run: {})", self.transcripts) }
        )?;
        writeln!(f)?;
        writeln!(f, "| Query | Example | Order | Samples | Mean hits | p50 | p95 | p99 | max | p95 ≤ 20 ms |")?;
        writeln!(f, "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")?;
        for s in &self.searches {
            let order = match s.order {
                SearchOrder::Relevance => "relevance",
                SearchOrder::Newest => "newest",
            };
            writeln!(
                f,
                "| {} | {} | {order} | {} | {:.1} | {} | {} | {} | {} | {} |",
                s.kind,
                s.example,
                s.samples,
                s.mean_hits,
                ms(s.latency.p50),
                ms(s.latency.p95),
                ms(s.latency.p99),
                ms(s.latency.max),
                if s.latency.p95 <= TARGET_P95 { "PASS" } else { "**FAIL**" }
            )?;
        }
        let failed = self.searches.iter().filter(|s| s.latency.p95 > TARGET_P95).count();
        writeln!(f)?;
        writeln!(
            f,
            "Search target: **{}** ({} of {} rows within p95 ≤ 20 ms)",
            if failed == 0 { "PASS" } else { "FAIL" },
            self.searches.len() - failed,
            self.searches.len()
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "Ingest, sequential signed requests against the in-process server on the same store \
             ({} transcripts in it after):",
            self.transcripts_after
        )?;
        writeln!(f)?;
        writeln!(f, "| Webhook | Requests | Mean body | Mean | p50 | p99 | max |")?;
        writeln!(f, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |")?;
        for r in [&self.status, &self.post_call] {
            writeln!(
                f,
                "| {} | {} | {:.1} KB | {} | {} | {} | {} |",
                r.name,
                r.requests,
                r.mean_body_bytes as f64 / 1e3,
                ms(r.latency.mean),
                ms(r.latency.p50),
                ms(r.latency.p99),
                ms(r.latency.max)
            )?;
        }
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        writeln!(f)?;
        writeln!(
            f,
            "Post-call (transcript + analysis) / status callback: **{:.1}×** mean, {:.1}× p50, {:.1}× p99",
            ratio(self.post_call.latency.mean, self.status.latency.mean),
            ratio(self.post_call.latency.p50, self.status.latency.p50),
            ratio(self.post_call.latency.p99, self.status.latency.p99)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Structural facts only (never timings): every transcript is stored and
    /// analysed, every search row is sampled, every webhook is accepted and
    /// each post-call adds a transcript.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_tiny_run_seeds_searches_analyses_and_ingests() {
        let opts = AnalysisBenchOptions {
            transcripts: 300,
            search_samples: 5,
            search_budget: Duration::from_secs(600),
            webhooks: 6,
            progress: false,
            store_path: None,
        };
        let r = run(opts.clone()).await.unwrap();
        assert_eq!(r.transcripts, 300);
        assert!(r.turns >= 300 * 14 && r.turns <= 300 * 26, "{r:#?}");
        assert_eq!(r.searches.len(), KINDS.len() * 2);
        assert!(r.searches.iter().all(|s| s.samples == 5 && s.mean_hits <= f64::from(SEARCH_LIMIT)));
        let common = &r.searches[0];
        assert_eq!(common.kind, "common term");
        assert!(common.mean_hits > 0.0, "{common:?}");
        assert_eq!((r.status.requests, r.post_call.requests), (24, 6));
        assert_eq!(r.transcripts_after, 306);
        let shown = r.to_string();
        assert!(shown.contains("Search target") && shown.contains("post_call_transcription"), "{shown}");

        // A kept store is seeded once and reused as it is.
        let dir = tempfile::tempdir().unwrap();
        let kept = AnalysisBenchOptions { store_path: Some(dir.path().join("kept.db")), search_samples: 2, ..opts };
        let first = run(kept.clone()).await.unwrap();
        assert_eq!(first.transcripts_after, 306);
        let again = run(kept).await.unwrap();
        assert_eq!(again.seed_elapsed, Duration::ZERO, "seeding skipped");
        // The ingest phase replays the same conversations: idempotent, the store does not grow.
        assert_eq!(again.transcripts_after, 306);
    }

    #[test]
    fn the_generator_is_deterministic_and_uses_the_phrases() {
        let a = Gen::new(1).conversation("conv_a".into(), false);
        let b = Gen::new(1).conversation("conv_a".into(), false);
        assert_eq!(a.turns, b.turns);
        let mut g = Gen::new(2);
        let text: String = (0..50)
            .flat_map(|i| g.conversation(format!("conv_{i}"), false).turns.into_iter().map(|t| t.1))
            .collect::<Vec<_>>()
            .join(" ");
        assert!(text.contains("credit card") || text.contains("refund"));
        let t = crate::conversations::transcript_from(&a.to_json(None)).unwrap();
        assert_eq!(t.turns.len(), a.turns.len());
        assert!(!t.criteria.is_empty() || a.criteria.is_empty());
    }
}
