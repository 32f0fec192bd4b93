//! `switchboard bench --suite dashboard [--list-sizes 100000,1000000]`: the
//! dashboard endpoints at each call volume, with the cache off (cold: every
//! request reads the rollups) and on (warm), plus the cost of building the
//! rollups: a full rebuild of the 31 days the seeded calls span, and one
//! incremental pass after a single changed call.
//!
//! Two servers share one SQLite store: one with `cache.enabled = false`, one
//! with the in-process cache. The rollup jobs are off in both (the bench runs
//! the passes itself, to time them). Figures, not assertions.

use std::fmt;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Client, StatusCode};
use switchboard_domain::{CallUpdate, CampaignInput, Source};
use switchboard_storage::Storage;
use switchboard_storage_sqlite::{SqliteOptions, SqliteStore};

use super::calls::{Latency, Machine};
use crate::config::Secret;
use crate::devtools::seed::{self, SeedOptions};
use crate::jobs::rollups;

const API_TOKEN: &str = "sb_bench_token_0123456789abcdefg";
const SEED: u64 = 0xda5b_0a2d;

/// What to run.
#[derive(Debug, Clone)]
pub struct DashboardBenchOptions {
    /// Call volumes, ascending (seeded up to each in turn).
    pub sizes: Vec<u64>,
    /// Timed requests per endpoint and cache mode.
    pub samples: usize,
}

impl Default for DashboardBenchOptions {
    fn default() -> Self {
        DashboardBenchOptions { sizes: vec![100_000, 1_000_000], samples: 200 }
    }
}

/// One endpoint at one volume.
#[derive(Debug, Clone)]
pub struct EndpointRow {
    /// What was requested.
    pub name: &'static str,
    /// Cache off.
    pub cold: Latency,
    /// Cache on, after one warm-up request.
    pub warm: Latency,
}

/// One call volume.
#[derive(Debug, Clone)]
pub struct SizeRow {
    /// Calls in the store.
    pub calls: u64,
    /// Seeding time (this step's calls).
    pub seed: Duration,
    /// Full rebuild of 31 days of hours and days.
    pub rebuild: Duration,
    /// Buckets and rows that rebuild wrote.
    pub rebuild_buckets: u64,
    /// Rows written.
    pub rebuild_rows: u64,
    /// One incremental pass after one changed call (median of 20).
    pub incremental: Duration,
    /// The endpoints.
    pub endpoints: Vec<EndpointRow>,
}

/// The report.
#[derive(Debug, Clone)]
pub struct DashboardReport {
    /// Where it ran.
    pub machine: Machine,
    /// Per volume.
    pub sizes: Vec<SizeRow>,
    /// Requests per endpoint and mode.
    pub samples: usize,
}

async fn get(client: &Client, url: &str) -> anyhow::Result<Duration> {
    let t = Instant::now();
    let r = client.get(url).bearer_auth(API_TOKEN).send().await?;
    let status = r.status();
    let body = r.bytes().await?;
    let d = t.elapsed();
    anyhow::ensure!(
        status == StatusCode::OK,
        "{url}: {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(300)])
    );
    Ok(d)
}

struct Server {
    base: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

async fn serve(store: Arc<dyn Storage>, cache: bool) -> anyhow::Result<Server> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let mut settings = crate::config::embedded_defaults();
    settings.dialer.enabled = false;
    settings.analytics.enabled = false;
    settings.reconciler.enabled = false;
    settings.migrate_on_start = false;
    settings.cache.enabled = cache;
    settings.api_tokens = vec![Secret::new(API_TOKEN)];
    let app = crate::App::with_store(settings, store).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.serve(listener, async move {
        let _ = stopped.await;
    }));
    Ok(Server { base, stop, task })
}

/// Runs the suite.
pub async fn run(opts: DashboardBenchOptions) -> anyhow::Result<DashboardReport> {
    let machine = Machine::detect();
    let tmp = tempfile::Builder::new().prefix("switchboard-bench-dashboard-").tempdir()?;
    let store: Arc<dyn Storage> = Arc::new(SqliteStore::open(tmp.path().join("bench.db"), SqliteOptions::default())?);
    store.migrate().await?;
    // The campaign `performance` reads (seeded calls link to cmp_1 … by id).
    let now = switchboard_domain::time::now_ms();
    let mut campaign = CampaignInput {
        name: Some("Bench".into()),
        agent: Some(switchboard_domain::campaign::AgentSettings {
            agent_id: "agent_bench".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
    .apply(None, now - chrono::Duration::days(40))
    .map_err(|e| anyhow::anyhow!("bench campaign: {e:?}"))?;
    campaign.id = seed::campaign_id(1);
    store.insert_campaign(&campaign).await?;
    let cold = serve(store.clone(), false).await?;
    let warm = serve(store.clone(), true).await?;
    let client =
        Client::builder().no_proxy().http1_only().tcp_nodelay(true).timeout(Duration::from_secs(60)).build()?;
    let endpoints: Vec<(&'static str, String)> = vec![
        ("summary", "/api/v1/dashboard/summary".into()),
        ("timeseries calls, hour, 24 h", "/api/v1/dashboard/timeseries?metric=calls".into()),
        ("timeseries answer_rate, day, 30 d", "/api/v1/dashboard/timeseries?metric=answer_rate&interval=day".into()),
        (
            "timeseries talk_time, day, 30 d, other zone (hours summed)",
            "/api/v1/dashboard/timeseries?metric=talk_time&interval=day&tz=America/New_York".into(),
        ),
        (
            "timeseries calls, hour, 24 h, one campaign",
            format!("/api/v1/dashboard/timeseries?metric=calls&campaign_id={}", seed::campaign_id(1)),
        ),
        ("campaign performance (31 days)", format!("/api/v1/campaigns/{}/performance", seed::campaign_id(1))),
    ];
    let mut sizes = Vec::new();
    let mut step = 0u64;
    for &target in &opts.sizes {
        step += 1;
        let have = store.count_calls().await?;
        let mut seed_time = Duration::ZERO;
        if have < target {
            let so = SeedOptions { calls: target - have, events_per_call: 0, seed: SEED + step, campaigns: 20 };
            tracing::info!(calls = so.calls, target, "seeding");
            let r = seed::seed(store.clone(), &so, std::io::stderr().is_terminal()).await?;
            seed_time = r.elapsed;
        }
        let calls = store.count_calls().await?;
        tracing::info!(calls, "rebuilding 31 days of rollups");
        let to = switchboard_domain::time::now_ms() + chrono::Duration::hours(1);
        let t = Instant::now();
        let report = rollups::rebuild_range(&*store, chrono_tz::UTC, to - chrono::Duration::days(31), to, None).await?;
        let rebuild = t.elapsed();
        // Incremental: one call changes, one pass (the watermark is set by the first).
        rollups::catch_up(&*store, chrono_tz::UTC, chrono::Duration::seconds(5)).await?;
        let mut inc = Vec::new();
        for k in 0..20u32 {
            let u = CallUpdate {
                source: Some(Source::Twilio),
                observed_at: Some(switchboard_domain::time::now_ms()),
                call_sid: Some(format!("CAbe0c{:028x}", u64::from(k) + step * 1000)),
                status: Some(switchboard_domain::CallStatus::Ringing),
                ..Default::default()
            };
            store.upsert_call(&u).await?;
            let t = Instant::now();
            rollups::catch_up(&*store, chrono_tz::UTC, chrono::Duration::seconds(5)).await?;
            inc.push(t.elapsed());
        }
        inc.sort();
        let mut rows = Vec::new();
        for (name, path) in &endpoints {
            tracing::info!(calls, endpoint = name, "sampling");
            let mut c = Vec::with_capacity(opts.samples);
            for _ in 0..opts.samples {
                c.push(get(&client, &format!("{}{path}", cold.base)).await?);
            }
            get(&client, &format!("{}{path}", warm.base)).await?;
            let mut w = Vec::with_capacity(opts.samples);
            for _ in 0..opts.samples {
                w.push(get(&client, &format!("{}{path}", warm.base)).await?);
            }
            rows.push(EndpointRow { name, cold: Latency::of(c), warm: Latency::of(w) });
        }
        sizes.push(SizeRow {
            calls,
            seed: seed_time,
            rebuild,
            rebuild_buckets: report.buckets,
            rebuild_rows: report.rows,
            incremental: inc[inc.len() / 2],
            endpoints: rows,
        });
    }
    for s in [cold, warm] {
        let _ = s.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(10), s.task).await;
    }
    Ok(DashboardReport { machine, sizes, samples: opts.samples })
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

impl fmt::Display for DashboardReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(
            f,
            "Machine: {} CPUs, {}, {} {}; embedded SQLite (file, temp dir, default options)\n",
            m.nproc,
            m.cpu.as_deref().unwrap_or("unknown CPU"),
            m.os,
            m.arch
        )?;
        writeln!(f, "| Calls | Seeding | Full rebuild (31 days) | Buckets / rows | One incremental pass |")?;
        writeln!(f, "| ---: | ---: | ---: | ---: | ---: |")?;
        for s in &self.sizes {
            writeln!(
                f,
                "| {} | {:.1} s | {:.2} s | {} / {} | {} |",
                s.calls,
                s.seed.as_secs_f64(),
                s.rebuild.as_secs_f64(),
                s.rebuild_buckets,
                s.rebuild_rows,
                ms(s.incremental)
            )?;
        }
        writeln!(
            f,
            "\nDashboard endpoints, {} sequential requests each; cold = cache off (reads the rollups), warm = in-process cache; target p99 ≤ 20 ms at 1,000,000 calls:\n",
            self.samples
        )?;
        writeln!(f, "| Calls | Endpoint | cold p50 | cold p99 | warm p50 | warm p99 | p99 ≤ 20 ms (cold) |")?;
        writeln!(f, "| ---: | --- | ---: | ---: | ---: | ---: | --- |")?;
        for s in &self.sizes {
            for e in &s.endpoints {
                let ok = if e.cold.p99 <= Duration::from_millis(20) { "PASS" } else { "**FAIL**" };
                writeln!(
                    f,
                    "| {} | {} | {} | {} | {} | {} | {ok} |",
                    s.calls,
                    e.name,
                    ms(e.cold.p50),
                    ms(e.cold.p99),
                    ms(e.warm.p50),
                    ms(e.warm.p99)
                )?;
            }
        }
        Ok(())
    }
}
