//! The load benchmark: one process starts the real server on a fresh embedded
//! SQLite store in a temporary directory, drives it over loopback HTTP and
//! reports, as a Markdown table:
//!
//! 1. the `/healthz` ceiling (closed loop): what the HTTP stack alone can do;
//! 2. signed Twilio status-callback ingest (closed loop, same concurrency),
//!    and its ratio to the ceiling;
//! 3. ingest at a fixed rate (open loop; latency is measured from each
//!    request's *scheduled* send time, so a stall is not hidden by the client
//!    waiting for it — no coordinated omission);
//! 4. `GET /api/v1/calls` latency over a mix of realistic filters after
//!    seeding the store up to each requested size.
//!
//! Request bodies and signatures are computed before each timed phase, so
//! HMAC cost is not counted. Latencies are kept in a `Vec<Duration>` and
//! sorted: at these sample counts that is exact and cheap (no HDR histogram).
//!
//! Everything targets 127.0.0.1 and is bounded: each load phase lasts
//! `duration_secs`, pre-computed requests are capped, and in-flight requests
//! of the open loop are capped.

use std::fmt;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, RequestBuilder, StatusCode};
use switchboard_domain::{CallStatus, Direction};
use switchboard_storage::Storage;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::App;
use crate::config::{Secret, SqliteDurability};
use crate::devtools::seed::{self, SeedOptions};
use crate::webhooks::verify::twilio_signature;

/// The API token of the benchmark's server (32 characters).
pub(super) const API_TOKEN: &str = "sb_bench_token_0123456789abcdefg";
/// The Twilio auth token the benchmark's server verifies callbacks with (32 characters).
pub(super) const TWILIO_TOKEN: &str = "f00dfacecafebeef0123456789abcdef";
/// The most signed requests prepared for one phase (~0.5 KB each).
const MAX_PREPARED: usize = 300_000;
/// The most requests in flight in the open loop.
const MAX_IN_FLIGHT: usize = 256;
/// Events per seeded call in the list phase.
const LIST_EVENTS_PER_CALL: u32 = 2;
/// Campaigns seeded for the list phase.
const LIST_CAMPAIGNS: u32 = 50;
/// Base seed of the list phase (one seed per size step).
const LIST_SEED: u64 = 0xbe4c_0000;
/// Page size of the list requests.
const LIST_LIMIT: u32 = 50;

/// What to run.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Seconds per load phase (healthz, closed-loop ingest, fixed-rate ingest).
    pub duration_secs: u64,
    /// Workers (connections) of the closed-loop phases.
    pub concurrency: usize,
    /// Target callbacks per second of the fixed-rate phase.
    pub rate: u64,
    /// Store sizes (calls) at which list latency is sampled.
    pub list_sizes: Vec<u64>,
    /// List requests per size.
    pub list_samples: usize,
    /// Where to create the temporary directory (default: the system temp dir).
    pub dir: Option<PathBuf>,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            duration_secs: 10,
            concurrency: 32,
            rate: 2000,
            list_sizes: vec![100_000, 1_000_000],
            list_samples: 500,
            dir: None,
        }
    }
}

/// The `p`-th percentile (0–100) of sorted latencies, by nearest rank;
/// `Duration::ZERO` when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p.clamp(0.0, 100.0) / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Latency summary of a set of requests.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Latency {
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
}

impl Latency {
    /// The summary of a set of samples.
    pub fn of(mut v: Vec<Duration>) -> Latency {
        v.sort_unstable();
        Latency { p50: percentile(&v, 50.0), p99: percentile(&v, 99.0), max: v.last().copied().unwrap_or_default() }
    }
}

/// The machine the benchmark ran on.
#[derive(Debug, Clone, PartialEq)]
pub struct Machine {
    /// Logical CPUs available to the process.
    pub nproc: usize,
    /// CPU model, when known.
    pub cpu: Option<String>,
    /// `linux`, `macos`, …
    pub os: &'static str,
    /// `x86_64`, `aarch64`, …
    pub arch: &'static str,
}

impl Machine {
    /// The machine this runs on.
    pub fn detect() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        });
        Machine {
            nproc: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            cpu,
            os: std::env::consts::OS,
            arch: std::env::consts::ARCH,
        }
    }
}

/// A closed-loop phase.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadResult {
    /// What was driven.
    pub name: String,
    /// Successful responses.
    pub ok: u64,
    /// Failed requests (transport errors or an unexpected status).
    pub errors: u64,
    /// Wall time of the phase.
    pub elapsed: Duration,
    /// Successful responses per second.
    pub throughput: f64,
    /// Latency of the successful requests.
    pub latency: Latency,
    /// The pre-computed requests ran out before the phase's time was up.
    pub exhausted: bool,
}

/// The open-loop phase.
#[derive(Debug, Clone, PartialEq)]
pub struct FixedRateResult {
    /// Target rate (requests/s).
    pub target_rate: u64,
    /// Requests sent.
    pub sent: u64,
    /// Successful responses.
    pub ok: u64,
    /// Failed requests.
    pub errors: u64,
    /// Successful responses per second, from the first scheduled send to the last response.
    pub achieved_rate: f64,
    /// Latency from the scheduled send time to the full response.
    pub latency: Latency,
}

/// List latency at one store size.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResult {
    /// The size asked for.
    pub target_size: u64,
    /// Calls in the store when sampled.
    pub calls: u64,
    /// Calls seeded for this step.
    pub seeded: u64,
    /// Time the seeding took.
    pub seed_elapsed: Duration,
    /// Size of the database files (main file and WAL) when sampled.
    pub db_bytes: u64,
    /// Timed requests.
    pub samples: u64,
    /// Failed requests.
    pub errors: u64,
    /// Over all filters.
    pub latency: Latency,
    /// Per filter, in [`LIST_KINDS`] order.
    pub by_filter: Vec<(&'static str, Latency)>,
}

/// Everything measured.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchReport {
    /// The machine.
    pub machine: Machine,
    /// Store backend and commit durability.
    pub store: String,
    /// Seconds per load phase.
    pub duration_secs: u64,
    /// Closed-loop workers.
    pub concurrency: usize,
    /// `GET /healthz`, closed loop.
    pub healthz: LoadResult,
    /// Signed status callbacks, closed loop.
    pub ingest: LoadResult,
    /// Ingest throughput / healthz throughput.
    pub ingest_ratio: f64,
    /// Signed status callbacks at a fixed rate.
    pub fixed_rate: FixedRateResult,
    /// List latency per size, ascending.
    pub lists: Vec<ListResult>,
    /// p99 at the largest size / p99 at the smallest (when two sizes or more were sampled).
    pub list_p99_ratio: Option<f64>,
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(f, "## Switchboard benchmark\n")?;
        write!(f, "Machine: {} logical CPUs, {}/{}", m.nproc, m.os, m.arch)?;
        if let Some(cpu) = &m.cpu {
            write!(f, " ({cpu})")?;
        }
        writeln!(f, ". Store: {}. Client and server share the machine, over loopback HTTP/1.1.", self.store)?;
        writeln!(f, "Load phases: {} s each; closed loops use {} workers.\n", self.duration_secs, self.concurrency)?;
        writeln!(f, "| Scenario | OK | Errors | Throughput (req/s) | p50 | p99 | max |")?;
        writeln!(f, "|---|---:|---:|---:|---:|---:|---:|")?;
        for r in [&self.healthz, &self.ingest] {
            let note = if r.exhausted { " ¹" } else { "" };
            writeln!(
                f,
                "| {}{note} | {} | {} | {:.0} | {} | {} | {} |",
                r.name,
                count(r.ok),
                count(r.errors),
                r.throughput,
                ms(r.latency.p50),
                ms(r.latency.p99),
                ms(r.latency.max)
            )?;
        }
        let x = &self.fixed_rate;
        writeln!(
            f,
            "| POST /webhooks/twilio/status, open loop at {}/s ² | {} | {} | {:.0} | {} | {} | {} |",
            x.target_rate,
            count(x.ok),
            count(x.errors),
            x.achieved_rate,
            ms(x.latency.p50),
            ms(x.latency.p99),
            ms(x.latency.max)
        )?;
        writeln!(f, "\nIngest / healthz throughput: **{:.3}**", self.ingest_ratio)?;
        if self.healthz.exhausted || self.ingest.exhausted {
            writeln!(
                f,
                "\n¹ The pre-computed requests ran out before the time was up; throughput is over the shorter window."
            )?;
        }
        writeln!(
            f,
            "\n² Latency from each request's scheduled send time (no coordinated omission); {} sent.",
            count(x.sent)
        )?;

        if self.lists.is_empty() {
            return Ok(());
        }
        writeln!(f, "\n### GET /api/v1/calls (limit={LIST_LIMIT}, one request at a time)\n")?;
        writeln!(
            f,
            "The store is topped up with synthetic calls ({LIST_EVENTS_PER_CALL} events each, {LIST_CAMPAIGNS} campaigns) \
             before each size is sampled; filters are sampled round-robin.\n"
        )?;
        writeln!(f, "| Calls in store | Database | Seeded | Seeding time | Samples | Errors | p50 | p99 | max |")?;
        writeln!(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        for l in &self.lists {
            writeln!(
                f,
                "| {} | {:.0} MB | {} | {:.1} s | {} | {} | {} | {} | {} |",
                count(l.calls),
                l.db_bytes as f64 / 1e6,
                count(l.seeded),
                l.seed_elapsed.as_secs_f64(),
                count(l.samples),
                count(l.errors),
                ms(l.latency.p50),
                ms(l.latency.p99),
                ms(l.latency.max)
            )?;
        }
        if let (Some(ratio), Some(first), Some(last)) = (self.list_p99_ratio, self.lists.first(), self.lists.last()) {
            writeln!(f, "\np99({}) / p99({}): **{ratio:.2}**", count(last.calls), count(first.calls))?;
        }
        writeln!(f, "\nBy filter (p50 / p99):\n")?;
        write!(f, "| Filter |")?;
        for l in &self.lists {
            write!(f, " {} calls |", count(l.calls))?;
        }
        write!(f, "\n|---|")?;
        for _ in &self.lists {
            write!(f, "---:|")?;
        }
        writeln!(f)?;
        for (i, (name, _)) in LIST_KINDS.iter().enumerate() {
            write!(f, "| `{name}` |")?;
            for l in &self.lists {
                match l.by_filter.get(i) {
                    Some((_, lat)) => write!(f, " {} / {} |", ms(lat.p50), ms(lat.p99))?,
                    None => write!(f, " – |")?,
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A signed status callback, ready to send.
struct Signed {
    body: String,
    signature: String,
}

/// `count` status callbacks (initiated, ringing, in-progress, completed per
/// call, SequenceNumber 0..=3) for fresh call SIDs numbered from `first_call`.
fn prepare_callbacks(url: &str, first_call: u64, count: usize) -> Vec<Signed> {
    let base = Utc::now() - chrono::Duration::minutes(5);
    let statuses = [CallStatus::Initiated, CallStatus::Ringing, CallStatus::InProgress, CallStatus::Completed];
    (0..count)
        .map(|i| {
            let call = first_call + (i / 4) as u64;
            let seq = i % 4;
            let sid = format!("CAbe4c{call:028x}");
            let at = base + chrono::Duration::seconds(seq as i64 * 3);
            let terminal = (seq == 3).then_some((42, 200));
            let params = seed::twilio_status_params(
                seed::ACCOUNT_SID,
                &sid,
                statuses[seq],
                seq as i64,
                at,
                Direction::OutboundApi,
                "+14155550101",
                &seed::contact_number(call),
                terminal,
            );
            let signature = twilio_signature(TWILIO_TOKEN, url, &params);
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
            Signed { body, signature }
        })
        .collect()
}

async fn prepare(url: &str, first_call: u64, count: usize) -> anyhow::Result<Vec<Signed>> {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || prepare_callbacks(&url, first_call, count))
        .await
        .context("preparing signed callbacks")
}

/// What the closed-loop workers send.
#[derive(Clone)]
enum Work {
    Healthz { url: String },
    Ingest { url: String, reqs: Arc<Vec<Signed>>, next: Arc<AtomicUsize> },
}

impl Work {
    /// The next request and the status it must get, or `None` when the prepared requests ran out.
    fn next(&self, client: &Client) -> Option<(RequestBuilder, StatusCode)> {
        match self {
            Work::Healthz { url } => Some((client.get(url), StatusCode::OK)),
            Work::Ingest { url, reqs, next } => {
                let r = reqs.get(next.fetch_add(1, Ordering::Relaxed))?;
                Some((signed_request(client, url, r), StatusCode::NO_CONTENT))
            }
        }
    }
}

fn signed_request(client: &Client, url: &str, r: &Signed) -> RequestBuilder {
    client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("X-Twilio-Signature", r.signature.as_str())
        .body(r.body.clone())
}

/// Logs the first few failures of a phase, so a broken run says why.
#[derive(Clone, Default)]
struct ErrorLog(Arc<AtomicU64>);

impl ErrorLog {
    fn record(&self, what: &str, detail: impl fmt::Display) {
        if self.0.fetch_add(1, Ordering::Relaxed) < 5 {
            tracing::warn!(phase = what, "request failed: {detail}");
        }
    }
}

/// Sends one request; `Ok(latency from `since`)` when the status is `expect` and the body arrived.
async fn send(req: RequestBuilder, expect: StatusCode, since: Instant, log: &ErrorLog, what: &str) -> Option<Duration> {
    match req.send().await {
        Ok(resp) => {
            let status = resp.status();
            match resp.bytes().await {
                Ok(_) if status == expect => Some(since.elapsed()),
                Ok(body) => {
                    log.record(what, format!("{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)])));
                    None
                }
                Err(e) => {
                    log.record(what, e);
                    None
                }
            }
        }
        Err(e) => {
            log.record(what, e);
            None
        }
    }
}

async fn closed_loop(client: &Client, name: String, work: Work, concurrency: usize, duration: Duration) -> LoadResult {
    tracing::info!(phase = %name, concurrency, secs = duration.as_secs_f64(), "closed loop starting");
    let log = ErrorLog::default();
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for _ in 0..concurrency {
        let (client, work, log, name) = (client.clone(), work.clone(), log.clone(), name.clone());
        set.spawn(async move {
            let (mut lat, mut errors, mut exhausted) = (Vec::new(), 0u64, false);
            while Instant::now() < deadline {
                let Some((req, expect)) = work.next(&client) else {
                    exhausted = true;
                    break;
                };
                let t = Instant::now();
                match send(req, expect, t, &log, &name).await {
                    Some(d) => lat.push(d),
                    None => errors += 1,
                }
            }
            (lat, errors, exhausted)
        });
    }
    let (mut all, mut errors, mut exhausted) = (Vec::new(), 0u64, false);
    while let Some(r) = set.join_next().await {
        match r {
            Ok((lat, e, x)) => {
                all.extend(lat);
                errors += e;
                exhausted |= x;
            }
            Err(e) => {
                tracing::error!("benchmark worker failed: {e}");
                errors += 1;
            }
        }
    }
    let elapsed = start.elapsed();
    let ok = all.len() as u64;
    let r = LoadResult {
        name,
        ok,
        errors,
        elapsed,
        throughput: ok as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: Latency::of(all),
        exhausted,
    };
    tracing::info!(
        phase = %r.name, ok = r.ok, errors = r.errors, throughput = format!("{:.0}/s", r.throughput),
        p50 = %ms(r.latency.p50), p99 = %ms(r.latency.p99), "closed loop done"
    );
    r
}

async fn open_loop(client: &Client, url: &str, reqs: Vec<Signed>, rate: u64) -> anyhow::Result<FixedRateResult> {
    tracing::info!(rate, requests = reqs.len(), "fixed-rate phase starting");
    let log = ErrorLog::default();
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let start = Instant::now() + Duration::from_millis(20);
    let mut set: JoinSet<Option<Duration>> = JoinSet::new();
    let (mut lat, mut errors) = (Vec::with_capacity(reqs.len()), 0u64);
    let mut collect = |r: Result<Option<Duration>, tokio::task::JoinError>| match r {
        Ok(Some(d)) => lat.push(d),
        _ => errors += 1,
    };
    let sent = reqs.len() as u64;
    for (i, r) in reqs.into_iter().enumerate() {
        let scheduled = start + Duration::from_nanos((i as u128 * 1_000_000_000 / rate as u128) as u64);
        tokio::time::sleep_until(scheduled.into()).await;
        // Waiting for a permit delays the send, and that delay is counted: latency runs from `scheduled`.
        let permit = permits.clone().acquire_owned().await?;
        let (req, log) = (signed_request(client, url, &r), log.clone());
        set.spawn(async move {
            let _permit = permit;
            send(req, StatusCode::NO_CONTENT, scheduled, &log, "fixed-rate ingest").await
        });
        while let Some(done) = set.try_join_next() {
            collect(done);
        }
    }
    while let Some(done) = set.join_next().await {
        collect(done);
    }
    let elapsed = start.elapsed();
    let ok = lat.len() as u64;
    let r = FixedRateResult {
        target_rate: rate,
        sent,
        ok,
        errors,
        achieved_rate: ok as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: Latency::of(lat),
    };
    tracing::info!(
        target = rate, achieved = format!("{:.0}/s", r.achieved_rate), errors = r.errors,
        p50 = %ms(r.latency.p50), p99 = %ms(r.latency.p99), "fixed-rate phase done"
    );
    Ok(r)
}

/// The filters of the list phase, sampled round-robin.
pub const LIST_KINDS: &[(&str, &str)] = &[
    ("(none)", "no filter, newest first"),
    ("status=completed", "one status"),
    ("campaign_id=…", "one campaign"),
    ("campaign_id=…&status=completed", "campaign and status"),
    ("direction=inbound", "direction"),
    ("status=busy&status=no-answer", "two statuses"),
    ("started_after=<7 days ago>", "time window"),
    ("agent_id=…", "one agent"),
    ("status=completed, page 2", "second page by next_cursor"),
];

fn list_query(kind: usize, rng: &mut StdRng, week_ago: &str) -> Vec<(&'static str, String)> {
    let mut q: Vec<(&'static str, String)> = match kind {
        0 => vec![],
        1 | 8 => vec![("status", "completed".into())],
        2 => vec![("campaign_id", seed::campaign_id(rng.random_range(1..=LIST_CAMPAIGNS)).to_string())],
        3 => vec![
            ("campaign_id", seed::campaign_id(rng.random_range(1..=LIST_CAMPAIGNS)).to_string()),
            ("status", "completed".into()),
        ],
        4 => vec![("direction", "inbound".into())],
        5 => vec![("status", "busy".into()), ("status", "no-answer".into())],
        6 => vec![("started_after", week_ago.to_owned())],
        _ => vec![("agent_id", seed::agent_id(rng.random_range(1..=seed::AGENTS)))],
    };
    q.push(("limit", LIST_LIMIT.to_string()));
    q
}

fn list_url(base: &str, q: &[(&str, String)], cursor: Option<&str>) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    s.extend_pairs(q.iter().map(|(k, v)| (*k, v.as_str())));
    if let Some(c) = cursor {
        s.append_pair("cursor", c);
    }
    format!("{base}/api/v1/calls?{}", s.finish())
}

/// One timed list request: latency to the full body, and the body.
async fn list_once(client: &Client, url: &str) -> anyhow::Result<(Duration, Vec<u8>)> {
    let t = Instant::now();
    let resp = client.get(url).bearer_auth(API_TOKEN).send().await?;
    let status = resp.status();
    let body = resp.bytes().await?;
    let d = t.elapsed();
    anyhow::ensure!(status == StatusCode::OK, "{status}: {}", String::from_utf8_lossy(&body[..body.len().min(300)]));
    Ok((d, body.to_vec()))
}

fn next_cursor(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("next_cursor").and_then(|c| c.as_str()).map(str::to_owned)
}

/// Total size of the files directly in `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

async fn list_phase(
    client: &Client,
    base: &str,
    store: &Arc<dyn Storage>,
    db_dir: &Path,
    step: usize,
    target: u64,
    samples: usize,
) -> anyhow::Result<ListResult> {
    let have = store.count_calls().await?;
    let (mut seeded, mut seed_elapsed) = (0, Duration::ZERO);
    if have < target {
        let opts = SeedOptions {
            calls: target - have,
            events_per_call: LIST_EVENTS_PER_CALL,
            seed: LIST_SEED + step as u64,
            campaigns: LIST_CAMPAIGNS,
        };
        tracing::info!(calls = opts.calls, target, "seeding for the list phase");
        let r = seed::seed(store.clone(), &opts, std::io::stderr().is_terminal()).await?;
        tracing::info!(
            calls = r.calls,
            events = r.events,
            secs = format!("{:.1}", r.elapsed.as_secs_f64()),
            rate = format!("{:.0} calls/s", r.calls as f64 / r.elapsed.as_secs_f64().max(1e-9)),
            "seeded"
        );
        (seeded, seed_elapsed) = (r.calls, r.elapsed);
    }
    let calls = store.count_calls().await?;
    let db_bytes = dir_bytes(db_dir);
    let week_ago = (Utc::now() - chrono::Duration::days(7)).to_rfc3339_opts(SecondsFormat::Secs, true);
    let mut rng = StdRng::seed_from_u64(LIST_SEED ^ target);
    let log = ErrorLog::default();

    // Warm-up: every filter twice, untimed.
    for kind in (0..LIST_KINDS.len()).chain(0..LIST_KINDS.len()) {
        let _ = list_once(client, &list_url(base, &list_query(kind, &mut rng, &week_ago), None)).await;
    }
    tracing::info!(calls, samples, "sampling list latency");
    let mut by_kind: Vec<Vec<Duration>> = vec![Vec::new(); LIST_KINDS.len()];
    let mut errors = 0u64;
    for i in 0..samples {
        let kind = i % LIST_KINDS.len();
        let q = list_query(kind, &mut rng, &week_ago);
        let cursor = if kind == 8 {
            // Page 2: fetch page 1 untimed, then time the page its cursor points to.
            match list_once(client, &list_url(base, &q, None)).await {
                Ok((_, body)) => next_cursor(&body),
                Err(e) => {
                    log.record("list", e);
                    errors += 1;
                    continue;
                }
            }
        } else {
            None
        };
        match list_once(client, &list_url(base, &q, cursor.as_deref())).await {
            Ok((d, _)) => by_kind[kind].push(d),
            Err(e) => {
                log.record("list", e);
                errors += 1;
            }
        }
    }
    let all: Vec<Duration> = by_kind.iter().flatten().copied().collect();
    let r = ListResult {
        target_size: target,
        calls,
        seeded,
        seed_elapsed,
        db_bytes,
        samples: all.len() as u64,
        errors,
        latency: Latency::of(all),
        by_filter: LIST_KINDS.iter().zip(by_kind).map(|((name, _), v)| (*name, Latency::of(v))).collect(),
    };
    tracing::info!(
        calls, errors, p50 = %ms(r.latency.p50), p99 = %ms(r.latency.p99), "list latency sampled"
    );
    Ok(r)
}

/// Runs the benchmark and returns the report (print it with `{}` for Markdown).
///
/// Storage tuning (SQLite readers, durability) comes from the usual configuration sources.
/// A bench server's settings: listening on `addr` (whose URL Twilio
/// signatures cover), the bench's API and Twilio tokens, a fresh SQLite
/// store in `dir`, migrated at start.
pub(super) fn server_settings(settings: &mut crate::config::Settings, addr: std::net::SocketAddr, dir: &Path) {
    settings.env = "test".into();
    settings.listen = addr;
    settings.public_base_url = Some(format!("http://{addr}"));
    settings.api_tokens = vec![Secret::new(API_TOKEN)];
    settings.twilio.auth_token = Some(Secret::new(TWILIO_TOKEN));
    settings.storage.mongodb_uri = None;
    settings.storage.sqlite_path = dir.join("bench.db");
    settings.migrate_on_start = true;
}

pub async fn run(opts: BenchOptions) -> anyhow::Result<BenchReport> {
    run_with(opts, crate::config::load(&[])?).await
}

/// Runs the benchmark on top of `settings`; the listener, tokens and store location are the bench's own.
pub async fn run_with(opts: BenchOptions, mut settings: crate::config::Settings) -> anyhow::Result<BenchReport> {
    anyhow::ensure!(opts.duration_secs >= 1, "duration must be at least 1 second");
    anyhow::ensure!((1..=4096).contains(&opts.concurrency), "concurrency must be 1..=4096");
    anyhow::ensure!(opts.rate >= 1, "rate must be at least 1 per second");
    let fixed_total = opts.rate.saturating_mul(opts.duration_secs);
    anyhow::ensure!(
        fixed_total <= MAX_PREPARED as u64,
        "rate × duration is {fixed_total} requests; at most {MAX_PREPARED} are pre-computed"
    );
    let duration = Duration::from_secs(opts.duration_secs);
    let machine = Machine::detect();

    // A fresh store in a temporary directory, removed on return.
    let tmp = match &opts.dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            tempfile::Builder::new().prefix("switchboard-bench-").tempdir_in(d)?
        }
        None => tempfile::Builder::new().prefix("switchboard-bench-").tempdir()?,
    };
    // Bind first: the port is part of the URL Twilio signatures cover.
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.context("binding 127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    server_settings(&mut settings, addr, tmp.path());
    settings.validate()?;
    let store_desc = format!(
        "embedded SQLite ({} readers, synchronous={}) in {}",
        settings.storage.sqlite_readers,
        match settings.storage.sqlite_durability {
            SqliteDurability::Full => "FULL",
            SqliteDurability::Normal => "NORMAL",
        },
        tmp.path().display()
    );
    tracing::info!(store = %store_desc, %addr, "starting the benchmark server");
    let store = crate::store::open(&settings).await?;
    let app = App::with_store(settings, store.clone()).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));

    let result = measure(&opts, duration, &base, &store, tmp.path(), machine, store_desc).await;

    let _ = stop.send(());
    match tokio::time::timeout(Duration::from_secs(10), server).await {
        Ok(Ok(Err(e))) => tracing::warn!("benchmark server stopped with an error: {e:#}"),
        Ok(Err(e)) => tracing::warn!("benchmark server task failed: {e}"),
        Err(_) => tracing::warn!("benchmark server did not stop within 10 s"),
        Ok(Ok(Ok(()))) => {}
    }
    drop(store);
    drop(tmp);
    result
}

async fn measure(
    opts: &BenchOptions,
    duration: Duration,
    base: &str,
    store: &Arc<dyn Storage>,
    db_dir: &Path,
    machine: Machine,
    store_desc: String,
) -> anyhow::Result<BenchReport> {
    let client = Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .pool_max_idle_per_host(opts.concurrency.max(MAX_IN_FLIGHT))
        .timeout(Duration::from_secs(30))
        .build()?;

    // Ready?
    let ready = format!("{base}/readyz");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.get(&ready).send().await {
            Ok(r) if r.status().is_success() => break,
            _ if Instant::now() > deadline => anyhow::bail!("the benchmark server did not become ready"),
            _ => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }

    // 1. The HTTP ceiling (after a one-second warm-up that opens the connections).
    let healthz = Work::Healthz { url: format!("{base}/healthz") };
    closed_loop(&client, "warm-up".into(), healthz.clone(), opts.concurrency, Duration::from_secs(1)).await;
    let c = opts.concurrency;
    let healthz = closed_loop(&client, format!("GET /healthz, closed loop ×{c}"), healthz, c, duration).await;

    // 2. Closed-loop ingest. It cannot outrun /healthz, so that bounds what to prepare.
    let status_url = format!("{base}/webhooks/twilio/status");
    let want = (healthz.throughput * duration.as_secs_f64() * 1.25) as usize;
    let n = want.clamp(c * 8, MAX_PREPARED) / 4 * 4;
    tracing::info!(requests = n, "signing status callbacks");
    let reqs = Arc::new(prepare(&status_url, 0, n).await?);
    let work = Work::Ingest { url: status_url.clone(), reqs, next: Arc::new(AtomicUsize::new(0)) };
    let ingest =
        closed_loop(&client, format!("POST /webhooks/twilio/status, closed loop ×{c}"), work, c, duration).await;
    let ingest_ratio = ingest.throughput / healthz.throughput.max(1e-9);

    // 3. Fixed-rate ingest, on fresh call SIDs.
    let fixed_n = (opts.rate * opts.duration_secs) as usize;
    let reqs = prepare(&status_url, (n / 4) as u64 + 1, fixed_n).await?;
    let fixed_rate = open_loop(&client, &status_url, reqs, opts.rate).await?;

    // 4. List latency per size.
    let mut sizes = opts.list_sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut lists = Vec::new();
    for (step, size) in sizes.into_iter().enumerate() {
        lists.push(list_phase(&client, base, store, db_dir, step, size, opts.list_samples).await?);
    }
    let list_p99_ratio = match (lists.first(), lists.last()) {
        (Some(a), Some(b)) if lists.len() > 1 => {
            Some(b.latency.p99.as_secs_f64() / a.latency.p99.as_secs_f64().max(1e-9))
        }
        _ => None,
    };

    Ok(BenchReport {
        machine,
        store: store_desc,
        duration_secs: opts.duration_secs,
        concurrency: opts.concurrency,
        healthz,
        ingest,
        ingest_ratio,
        fixed_rate,
        lists,
        list_p99_ratio,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&v, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&v, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&v, 100.0), Duration::from_millis(100));
        assert_eq!(percentile(&v, 0.0), Duration::from_millis(1));
        assert_eq!(percentile(&v, 99.9), Duration::from_millis(100));
        let one = [Duration::from_millis(7)];
        assert_eq!(percentile(&one, 50.0), Duration::from_millis(7));
        assert_eq!(percentile(&one, 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        let ten: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ten, 50.0), Duration::from_millis(5));
        assert_eq!(percentile(&ten, 99.0), Duration::from_millis(10));
    }

    /// A short end-to-end run (a few seconds): every phase works and reports, with no errors.
    /// It asserts what the run did, never how fast it was.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_run_reports_every_phase_without_errors() {
        let opts = BenchOptions {
            duration_secs: 1,
            concurrency: 4,
            rate: 200,
            list_sizes: vec![500, 1_500],
            list_samples: 45,
            dir: None,
        };
        // The embedded defaults only: other tests in this process set variables under figment::Jail.
        let report = run_with(opts, crate::config::embedded_defaults()).await.unwrap();
        println!("{report}");
        assert!(report.healthz.ok > 0 && report.healthz.errors == 0);
        assert!(report.ingest.ok > 0 && report.ingest.errors == 0, "{:?}", report.ingest);
        assert_eq!(report.fixed_rate.errors, 0);
        assert_eq!(report.fixed_rate.ok, 200);
        assert_eq!(report.lists.len(), 2);
        for l in &report.lists {
            assert_eq!(l.errors, 0);
            assert!(l.calls >= l.target_size);
            assert_eq!(l.samples, 45);
            assert!(l.by_filter.iter().all(|(_, lat)| lat.p50 > Duration::ZERO));
        }
        assert!(report.list_p99_ratio.is_some());
        assert!(report.to_string().contains("| Scenario |"));
    }

    #[test]
    fn tokens_have_the_documented_length_and_numbers_format() {
        assert_eq!(API_TOKEN.len(), 32);
        assert_eq!(TWILIO_TOKEN.len(), 32);
        assert_eq!(count(1_000_000), "1,000,000");
        assert_eq!(count(999), "999");
    }

    #[test]
    fn prepared_callbacks_verify_and_carry_four_statuses_per_call() {
        let url = "http://127.0.0.1:4000/webhooks/twilio/status";
        let reqs = prepare_callbacks(url, 10, 8);
        assert_eq!(reqs.len(), 8);
        for (i, r) in reqs.iter().enumerate() {
            let params: Vec<(String, String)> = form_urlencoded::parse(r.body.as_bytes()).into_owned().collect();
            assert!(crate::webhooks::verify::verify_twilio(TWILIO_TOKEN, url, &params, &r.signature));
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap();
            assert_eq!(get("SequenceNumber"), (i % 4).to_string());
            assert_eq!(get("CallSid").len(), 34);
            assert!(chrono::DateTime::parse_from_rfc2822(&get("Timestamp")).is_ok());
        }
        let last: Vec<(String, String)> = form_urlencoded::parse(reqs[3].body.as_bytes()).into_owned().collect();
        assert!(last.iter().any(|(k, v)| k == "CallStatus" && v == "completed"));
        assert!(last.iter().any(|(k, _)| k == "CallDuration"));
        assert!(last.iter().any(|(k, _)| k == "SipResponseCode"));
    }
}
