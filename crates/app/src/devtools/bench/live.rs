//! `switchboard bench --suite live [--clients 1000]`: the live feed's
//! fan-out. One server (embedded SQLite, rollup jobs off so the dashboard
//! stream carries exactly the call updates); signed Twilio status callbacks
//! sent at a fixed rate, first with no client connected (ingest alone), then
//! with `clients` official Socket.IO clients in the dashboard room
//! (`crates/app/tests/live/fanout.mjs`, one node process). Reported: the
//! webhook acknowledgement latency in both phases, the delivery latency
//! from a webhook's acknowledgement to each client receiving its
//! `call.updated` over every (event, client) pair (with its ratio to the
//! ingest latency), and events delivered per second against webhooks
//! ingested per second.
//! Figures, not assertions. Needs `node` and `npm ci` in `crates/app/tests/live`.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use chrono::Utc;
use reqwest::{Client, StatusCode};
use switchboard_domain::{CallStatus, Direction};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::calls::{API_TOKEN, Latency, Machine, TWILIO_TOKEN};
use crate::devtools::seed;
use crate::webhooks::verify::twilio_signature;

const STATUSES: [CallStatus; 4] =
    [CallStatus::Initiated, CallStatus::Ringing, CallStatus::InProgress, CallStatus::Completed];

/// What to run.
#[derive(Debug, Clone)]
pub struct LiveBenchOptions {
    /// Socket.IO clients in the second phase.
    pub clients: usize,
    /// Calls per phase (four status callbacks each, each one event).
    pub calls: usize,
    /// Callback rates (per second), one phase pair each.
    pub rates: Vec<u64>,
    /// Where `fanout.mjs` and its `node_modules` are.
    pub script_dir: PathBuf,
}

impl Default for LiveBenchOptions {
    fn default() -> Self {
        LiveBenchOptions {
            clients: 1000,
            calls: 100,
            rates: vec![10, 50],
            script_dir: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/live"),
        }
    }
}

/// The figures.
#[derive(Debug, Clone)]
pub struct LiveReport {
    /// The machine.
    pub machine: Machine,
    /// The options.
    pub opts: LiveBenchOptions,
    /// One row per rate.
    pub rows: Vec<RateRow>,
    /// Time to connect every client.
    pub connect: Duration,
}

/// The figures at one callback rate.
#[derive(Debug, Clone)]
pub struct RateRow {
    /// Callbacks per second.
    pub rate: u64,
    /// Webhook acknowledgement latency, no client connected.
    pub ingest_alone: Latency,
    /// Webhook acknowledgement latency with the clients connected.
    pub ingest_with_clients: Latency,
    /// Webhook acknowledged → client received, every (event, client) pair.
    pub delivery: Latency,
    /// Events delivered per second to all clients together.
    pub delivered_per_sec: f64,
    /// Webhooks ingested per second in the same phase.
    pub ingest_per_sec: f64,
    /// Deliveries expected (events × clients).
    pub expected: u64,
    /// Received.
    pub received: u64,
}

fn unix_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_secs_f64() * 1000.0
}

struct Signed {
    key: String,
    body: String,
    signature: String,
}

fn callbacks(url: &str, first_call: u64, calls: usize) -> Vec<Signed> {
    let base = Utc::now() - chrono::Duration::minutes(5);
    // Interleaved (every call's first status, then every call's second, …):
    // a call's next callback goes out `calls / rate` seconds after the last,
    // so no two callbacks of one call race (a reordered one would be stale
    // and publish nothing).
    (0..calls * 4)
        .map(|i| {
            let call = first_call + (i % calls) as u64;
            let seq = i / calls;
            let sid = format!("CAf0a7{call:028x}");
            let at = base + chrono::Duration::seconds(seq as i64 * 3);
            let params = seed::twilio_status_params(
                seed::ACCOUNT_SID,
                &sid,
                STATUSES[seq],
                seq as i64,
                at,
                Direction::OutboundApi,
                "+14155550101",
                &seed::contact_number(call),
                (seq == 3).then_some((42, 200)),
            );
            let signature = twilio_signature(TWILIO_TOKEN, url, &params);
            let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(&params).finish();
            Signed { key: format!("{sid}|{}", STATUSES[seq].as_str()), body, signature }
        })
        .collect()
}

/// What one phase sent: per key, when it was acknowledged (Unix ms); the
/// acknowledgement latencies; how long the phase took.
struct Sent {
    acked: HashMap<String, f64>,
    latencies: Vec<Duration>,
    took: Duration,
}

/// Sends `reqs` at `rate` per second (each on its own task).
async fn send_at_rate(client: &Client, url: &str, reqs: Vec<Signed>, rate: u64) -> anyhow::Result<Sent> {
    let began = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::with_capacity(reqs.len());
    for r in reqs {
        tick.tick().await;
        let key = r.key.clone();
        let req = client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", r.signature.as_str())
            .body(r.body);
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let resp = req.send().await?;
            anyhow::ensure!(resp.status() == StatusCode::NO_CONTENT, "callback answered {}", resp.status());
            Ok((key, t.elapsed(), unix_ms()))
        }));
    }
    let mut out = Sent { acked: HashMap::new(), latencies: Vec::with_capacity(tasks.len()), took: Duration::ZERO };
    for t in tasks {
        let (key, latency, acked) = t.await.context("callback task")??;
        out.latencies.push(latency);
        out.acked.insert(key, acked);
    }
    out.took = began.elapsed();
    Ok(out)
}

/// Runs the suite.
pub async fn run(opts: LiveBenchOptions) -> anyhow::Result<LiveReport> {
    anyhow::ensure!(
        opts.clients >= 1 && opts.calls >= 1 && !opts.rates.is_empty() && opts.rates.iter().all(|r| *r >= 1),
        "clients, calls and every rate must be ≥ 1"
    );
    anyhow::ensure!(
        opts.script_dir.join("node_modules/socket.io-client").exists(),
        "socket.io-client is not installed: run `npm ci` in {}",
        opts.script_dir.display()
    );
    let machine = Machine::detect();
    let tmp = tempfile::Builder::new().prefix("switchboard-bench-live-").tempdir()?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let addr = listener.local_addr()?;
    let base = format!("http://{addr}");
    let mut settings = crate::config::load(&[])?;
    super::calls::server_settings(&mut settings, addr, tmp.path());
    settings.analytics.enabled = false;
    settings.dialer.enabled = false;
    settings.validate()?;
    let app = crate::App::build(settings).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    let client = Client::builder().pool_max_idle_per_host(64).build()?;
    let url = format!("{base}/webhooks/twilio/status");

    // Warm-up (not measured), then ingest alone at each rate.
    send_at_rate(&client, &url, callbacks(&url, 1_000_000, 10), 200).await?;
    let mut alone = Vec::new();
    for (k, rate) in opts.rates.iter().enumerate() {
        tracing::info!(callbacks = opts.calls * 4, rate, "ingest with no client connected");
        let first = (k as u64) * 10_000;
        alone.push(send_at_rate(&client, &url, callbacks(&url, first, opts.calls), *rate).await?.latencies);
    }

    // The clients.
    let each = opts.calls * 4 * opts.rates.len();
    tracing::info!(clients = opts.clients, "connecting the Socket.IO clients");
    let connect_started = Instant::now();
    let mut child = tokio::process::Command::new("node")
        .arg(opts.script_dir.join("fanout.mjs"))
        .args([&base, API_TOKEN, &opts.clients.to_string(), &each.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("running node (is it installed?)")?;
    let mut lines = BufReader::new(child.stdout.take().context("node stdout")?).lines();
    let mut next = async || -> anyhow::Result<serde_json::Value> {
        let line = tokio::time::timeout(Duration::from_secs(300), lines.next_line())
            .await
            .context("the clients did not answer within 300 s")??
            .context("the clients exited")?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        anyhow::ensure!(v.get("error").is_none(), "clients: {}", v["error"]);
        Ok(v)
    };
    next().await?;
    let connect = connect_started.elapsed();
    let mut phases = Vec::new();
    for (k, rate) in opts.rates.iter().enumerate() {
        tracing::info!(callbacks = opts.calls * 4, rate, "ingest with the clients connected");
        let first = 500_000 + (k as u64) * 10_000;
        phases.push(send_at_rate(&client, &url, callbacks(&url, first, opts.calls), *rate).await?);
        // Let this rate's deliveries drain before the next phase.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let result = next().await?;
    let _ = child.wait().await;

    let mut rows = Vec::new();
    for ((rate, alone), sent) in opts.rates.iter().zip(alone).zip(phases) {
        let mut delivery = Vec::new();
        let (mut first, mut last) = (f64::MAX, 0f64);
        if let Some(events) = result["events"].as_object() {
            for (key, times) in events {
                let Some(t0) = sent.acked.get(key) else { continue };
                for t in times.as_array().into_iter().flatten().filter_map(serde_json::Value::as_f64) {
                    // A client may hear of a change before the sender has its acknowledgement: 0.
                    delivery.push(Duration::from_secs_f64(((t - t0).max(0.0)) / 1000.0));
                    first = first.min(t);
                    last = last.max(t);
                }
            }
        }
        let span = ((last - first) / 1000.0).max(sent.took.as_secs_f64()).max(1e-3);
        rows.push(RateRow {
            rate: *rate,
            expected: (sent.acked.len() * opts.clients) as u64,
            received: delivery.len() as u64,
            delivered_per_sec: delivery.len() as f64 / span,
            ingest_per_sec: sent.acked.len() as f64 / sent.took.as_secs_f64().max(1e-3),
            ingest_alone: Latency::of(alone),
            ingest_with_clients: Latency::of(sent.latencies),
            delivery: Latency::of(delivery),
        });
    }
    let _ = stop.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    Ok(LiveReport { machine, rows, connect, opts })
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

impl fmt::Display for LiveReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = &self.opts;
        writeln!(f, "## Live feed fan-out ({} clients, {} callbacks per phase)", o.clients, o.calls * 4)?;
        writeln!(f, "machine: {} CPUs, {} {}", self.machine.nproc, self.machine.os, self.machine.arch)?;
        writeln!(f, "clients connected in {:.2} s (one node process on the same machine)", self.connect.as_secs_f64())?;
        writeln!(f, "| rate | what | p50 | p99 | max |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64().max(1e-9);
        for r in &self.rows {
            for (name, l) in [
                ("webhook acknowledged, no client", &r.ingest_alone),
                ("webhook acknowledged, clients connected", &r.ingest_with_clients),
                ("webhook acknowledged → client received (every event × client)", &r.delivery),
            ] {
                writeln!(f, "| {}/s | {name} | {} | {} | {} |", r.rate, ms(l.p50), ms(l.p99), ms(l.max))?;
            }
        }
        for r in &self.rows {
            writeln!(
                f,
                "{}/s: delivered {} of {} = {:.0} events/s to the clients for {:.1} webhooks/s ingested ({:.0}×); delivery p99 / ingest p99 (no client) = {:.1}×; ingest p99 with / without clients = {:.2}×",
                r.rate,
                r.received,
                r.expected,
                r.delivered_per_sec,
                r.ingest_per_sec,
                r.delivered_per_sec / r.ingest_per_sec.max(1e-9),
                ratio(r.delivery.p99, r.ingest_alone.p99),
                ratio(r.ingest_with_clients.p99, r.ingest_alone.p99),
            )?;
        }
        Ok(())
    }
}
