//! `switchboard bench --suite campaigns`: the Phase 2 figures, measured in
//! one run on a fresh embedded store.
//!
//! 1. **Import**: a generated CSV of `rows` contacts through the real
//!    importer (validate pass + write pass); rows/s and the process's peak
//!    resident memory before and after (Linux `VmHWM`).
//!    The rows have realistic names (skewed first and last names), e-mails,
//!    tags (ten `wave*` of 10 % each, `spanish` 20 %, `vip` 5 %, rare
//!    `churned` 0.5 % and `partner` 0.05 %) and 3 % on do-not-call.
//! 1. (b) **Contact filters**: p50 / p99 of one `list_contacts` page (limit 50)
//!    for each filter combination (none, tag, search, dnc and every mix) on the
//!    `rows` contacts just imported, values and sorts varied per sample, every
//!    other sample a second page (with a cursor); target p99 ≤ 10 ms per filter.
//! 2. **Claims**: `contacts` enrollments claimed by 8 concurrent tasks; the
//!    latency of each atomic claim (p50 / p99 / max) and claims/s.
//! 3. **Dialer decisions**: the real dialer (`Dialer::run` on the real
//!    clock) against an in-process simulator at a high time scale, with
//!    Switchboard's webhook receivers on the same store (so outcomes come
//!    back and gate slots free up), over a campaign of `contacts`
//!    enrollments of which half are on a holiday in their zone (deferred)
//!    and half are dialled; decisions/s (claim → eligibility → place or
//!    defer) for `secs` seconds.
//!
//! Figures go to the README; nothing here asserts a speed.

use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use switchboard_domain::campaign::{AgentSettings, CallingWindow, Day, Pacing, Schedule};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CampaignInput, CampaignStatus, ContactId};
use switchboard_storage::{ContactFilter, ContactSort, PageRequest, Storage};
use switchboard_storage_sqlite::{SqliteOptions, SqliteStore};

use super::calls::{Latency, Machine};
use crate::config::Secret;
use crate::dialer::{Callbacks, Dialer};
use crate::import::{ImportOptions, import_file};
use crate::integrations::ClientOptions;
use crate::integrations::elevenlabs::ElevenLabsClient;
use crate::integrations::twilio::{TwilioAuth, TwilioClient};
use crate::sim::{Scenario, SimSettings, Simulator};

/// Options.
#[derive(Debug, Clone)]
pub struct CampaignBenchOptions {
    /// CSV rows to import.
    pub rows: u64,
    /// Enrollments for the claim and dialer phases.
    pub contacts: u64,
    /// Seconds the dialer runs.
    pub secs: u64,
    /// Timed pages per contact filter combination.
    pub filter_samples: usize,
}

/// The contact-filter target: p99 of one page, per filter combination.
pub const FILTER_P99_TARGET: Duration = Duration::from_millis(10);

/// Page latency of one contact filter combination.
#[derive(Debug, Clone)]
pub struct FilterLatency {
    /// The combination (`tag+search`, …).
    pub filter: &'static str,
    /// The values sampled, e.g. `tag=vip|churned`.
    pub values: String,
    /// Pages timed.
    pub samples: usize,
    /// Latency of one page.
    pub latency: Latency,
}

impl FilterLatency {
    /// p99 within [`FILTER_P99_TARGET`].
    pub fn meets_target(&self) -> bool {
        self.latency.p99 <= FILTER_P99_TARGET
    }
}

/// Results.
#[derive(Debug, Clone)]
pub struct CampaignBenchReport {
    /// Where it ran.
    pub machine: Machine,
    /// Rows imported.
    pub rows: u64,
    /// CSV size.
    pub csv_bytes: u64,
    /// Import wall time (both passes).
    pub import_elapsed: Duration,
    /// Peak RSS before the import (KiB).
    pub rss_before_kib: Option<u64>,
    /// Peak RSS after the import (KiB).
    pub rss_after_kib: Option<u64>,
    /// Anonymous (heap) RSS right after the import (KiB): excludes the memory-mapped database file.
    pub anon_after_kib: Option<u64>,
    /// Contacts in the store during the filter phase.
    pub filter_contacts: u64,
    /// Page latency per contact filter combination.
    pub filters: Vec<FilterLatency>,
    /// Claims made.
    pub claims: u64,
    /// Claim phase wall time.
    pub claim_elapsed: Duration,
    /// Claim latency.
    pub claim_latency: Latency,
    /// Dialer decisions.
    pub decisions: u64,
    /// Of which placed calls.
    pub placed: u64,
    /// Dialer wall time.
    pub dialer_elapsed: Duration,
}

fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find(|l| l.starts_with(field))?.split_whitespace().nth(1)?.parse().ok()
}

fn peak_rss_kib() -> Option<u64> {
    status_kib("VmHWM:")
}

async fn all_ids(store: &dyn Storage) -> anyhow::Result<Vec<ContactId>> {
    let mut ids = Vec::new();
    let mut page = PageRequest::first(200);
    loop {
        let p = store.list_contacts(&ContactFilter::default(), ContactSort::CreatedAsc, &page).await?;
        ids.extend(p.items.into_iter().map(|c| c.id));
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok(ids),
        }
    }
}

fn campaign(name: &str, holiday_zone_today: Option<chrono::NaiveDate>) -> switchboard_domain::Campaign {
    let mut c = CampaignInput {
        name: Some(name.into()),
        agent: Some(AgentSettings {
            agent_id: "agent_bench".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        schedule: Some(Schedule {
            windows: vec![CallingWindow { days: Day::ALL.to_vec(), start: "00:00".into(), end: "23:59".into() }],
            time_zone: "UTC".into(),
            ..Schedule::default()
        }),
        pacing: Some(Pacing { max_concurrent: 1000, calls_per_minute: 6000 }),
        ..Default::default()
    }
    .apply(None, now_ms())
    .expect("valid bench campaign");
    if let Some(d) = holiday_zone_today {
        c.schedule.holidays = vec![d, d + chrono::Duration::days(1)];
    }
    c.status = CampaignStatus::Running;
    c
}

/// Runs the three phases.
pub async fn run(opts: CampaignBenchOptions) -> anyhow::Result<CampaignBenchReport> {
    anyhow::ensure!(opts.contacts >= 10 && opts.rows >= opts.contacts, "need rows >= contacts >= 10");
    let tmp = tempfile::Builder::new().prefix("switchboard-bench-campaigns-").tempdir()?;
    let store: Arc<dyn Storage> = Arc::new(SqliteStore::open(tmp.path().join("bench.db"), SqliteOptions::default())?);
    store.migrate().await?;

    // 1. Import. Every third contact lives in Pacific/Kiritimati (used as the holiday zone in phase 3).
    let csv = tmp.path().join("contacts.csv");
    {
        let mut w = std::io::BufWriter::new(std::fs::File::create(&csv)?);
        writeln!(w, "phone,first_name,last_name,email,tags,dnc,time_zone,plan")?;
        for i in 0..opts.rows {
            // UTC−12 is 26 hours from Kiritimati: its date is never one of the two holidays.
            let tz = if i % 2 == 0 { "Pacific/Kiritimati" } else { "Etc/GMT+12" };
            let p = Person::of(i);
            writeln!(
                w,
                "+1415{:07},{},{},{},{},{},{tz},\"gold, annual\"",
                2_000_000 + i,
                p.first,
                p.last,
                p.email,
                p.tags,
                p.dnc
            )?;
        }
        w.flush()?;
    }
    let csv_bytes = std::fs::metadata(&csv)?.len();
    tracing::info!(rows = opts.rows, bytes = csv_bytes, "importing the generated CSV");
    let rss_before_kib = peak_rss_kib();
    let started = Instant::now();
    let report = import_file(store.clone(), &csv, ImportOptions::default(), None)
        .await
        .map_err(|e| anyhow::anyhow!("import failed: {e:?}"))?;
    let import_elapsed = started.elapsed();
    let rss_after_kib = peak_rss_kib();
    let anon_after_kib = status_kib("RssAnon:");
    anyhow::ensure!(
        report.applied && report.inserted == opts.rows,
        "import wrote {} of {} rows",
        report.inserted,
        opts.rows
    );

    // 1b. Contact filters on the imported contacts.
    tracing::info!(contacts = opts.rows, samples = opts.filter_samples, "timing contact filter pages");
    let filters = filter_phase(&*store, opts.filter_samples).await?;

    let ids: Vec<ContactId> = all_ids(&*store).await?.into_iter().take(opts.contacts as usize).collect();

    // 2. Claims: 8 tasks claim every enrollment of a campaign.
    let c1 = campaign("claims", None);
    store.insert_campaign(&c1).await?;
    for chunk in ids.chunks(1000) {
        store.enroll(&c1.id, chunk, now_ms()).await?;
    }
    tracing::info!(enrollments = ids.len(), "claiming");
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let store = store.clone();
            let id = c1.id.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let now = now_ms();
                    let s = Instant::now();
                    let got = store
                        .claim_enrollment(&id, now, &format!("bench-{t}"), now + chrono::Duration::minutes(5))
                        .await?;
                    lat.push(s.elapsed());
                    if got.is_none() {
                        return Ok::<_, anyhow::Error>(lat);
                    }
                }
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        let mut l = t.await??;
        l.pop(); // the final empty claim
        lat.extend(l);
    }
    let claim_elapsed = started.elapsed();
    let claims = lat.len() as u64;
    let claim_latency = Latency::of(lat);

    // 3. The dialer against the simulator: half deferred (holiday in their zone), half placed.
    let kiri: chrono_tz::Tz = "Pacific/Kiritimati".parse().expect("zone");
    let c2 = campaign("dialer", Some(now_ms().with_timezone(&kiri).date_naive()));
    store.insert_campaign(&c2).await?;
    for chunk in ids.chunks(1000) {
        store.enroll(&c2.id, chunk, now_ms()).await?;
    }
    // Switchboard's own webhook receivers on the same store, so outcomes come back and slots free up.
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let base = format!("http://{}", listener.local_addr()?);
    let defaults = SimSettings::default();
    let mut settings = crate::config::embedded_defaults();
    settings.dialer.enabled = false;
    settings.migrate_on_start = false;
    settings.public_base_url = Some(base.clone());
    settings.twilio.auth_token = Some(Secret::new(defaults.auth_token.clone()));
    settings.elevenlabs.webhook_secret = Some(Secret::new(defaults.elevenlabs_webhook_secret.clone()));
    let app = crate::App::with_store(settings, store.clone()).await?;
    let (srv_stop, srv_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async move {
        let _ = srv_stopped.await;
    }));
    let sim_settings = SimSettings {
        elevenlabs_webhook_url: Some(format!("{base}/webhooks/elevenlabs")),
        scenario: Scenario { time_scale: 100_000.0, cps: 1_000_000.0, max_concurrency: 100_000, ..Scenario::default() },
        ..defaults
    };
    let (account, token, key) =
        (sim_settings.account_sid.clone(), sim_settings.auth_token.clone(), sim_settings.elevenlabs_api_key.clone());
    let sim = Simulator::spawn(sim_settings, "127.0.0.1:0".parse().expect("address")).await?;
    let copts = ClientOptions::default();
    let dialer = Dialer::new(
        store.clone(),
        Some(TwilioClient::new(&sim.base_url, &account, TwilioAuth::AuthToken(Secret::new(token)), &copts)),
        Some(ElevenLabsClient::new(&sim.base_url, Secret::new(key), &copts)),
        Callbacks { public_base: base.clone() },
        "bench-dialer",
    );
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let started = Instant::now();
    let runner = tokio::spawn(dialer.run(Duration::from_millis(1000), async move {
        let _ = stop_rx.await;
    }));
    tokio::time::sleep(Duration::from_secs(opts.secs)).await;
    let _ = stop_tx.send(());
    runner.await.context("dialer task")?;
    let dialer_elapsed = started.elapsed();
    let _ = srv_stop.send(());
    let _ = server.await;
    let counts = store.count_enrollments(&c2.id).await?;
    let stored = store.get_campaign(&c2.id).await?.context("campaign")?;
    let placed = stored.dials;
    // Decisions: every enrollment that left "due now" (placed, or deferred to its next window).
    let pending_due = count_due(&*store, &c2.id).await?;
    let decisions = ids.len() as u64 - pending_due;
    tracing::info!(?counts, placed, decisions, "dialer phase done");
    Ok(CampaignBenchReport {
        machine: Machine::detect(),
        rows: opts.rows,
        csv_bytes,
        import_elapsed,
        rss_before_kib,
        rss_after_kib,
        anon_after_kib,
        filter_contacts: opts.rows,
        filters,
        claims,
        claim_elapsed,
        claim_latency,
        decisions,
        placed,
        dialer_elapsed,
    })
}

/// splitmix64: a deterministic spread of row numbers.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const FIRST: [&str; 24] = [
    "Maria",
    "James",
    "John",
    "Mary",
    "Robert",
    "Patricia",
    "Michael",
    "Jennifer",
    "William",
    "Linda",
    "David",
    "Elizabeth",
    "Jose",
    "Barbara",
    "Richard",
    "Susan",
    "Joseph",
    "Jessica",
    "Thomas",
    "Sarah",
    "Charles",
    "Karen",
    "Daniel",
    "Nancy",
];
const LAST: [&str; 20] = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
];

/// One generated contact row.
struct Person {
    first: &'static str,
    last: &'static str,
    email: String,
    tags: String,
    dnc: bool,
}

impl Person {
    fn of(i: u64) -> Person {
        let r = mix(i);
        // Skewed: the square of a uniform pick favours the head of each list.
        let skew = |bits: u64, n: usize| {
            let u = (bits % 1000) as f64 / 1000.0;
            ((u * u) * n as f64) as usize % n
        };
        let first = FIRST[skew(r, FIRST.len())];
        let last = LAST[skew(r >> 10, LAST.len())];
        let email = match (r >> 20) % 10 {
            0..=5 => format!("{}.{}{i}@example.com", first.to_lowercase(), last.to_lowercase()),
            6..=8 => format!("{}{}{i}@mail.test", &first[..1].to_lowercase(), last.to_lowercase()),
            _ => String::new(),
        };
        let mut tags = vec![format!("wave{}", i % 10)];
        let t = (r >> 32) % 10_000;
        if t < 2_000 {
            tags.push("spanish".into());
        }
        if (r >> 48) % 100 < 5 {
            tags.push("vip".into());
        }
        if t % 200 == 7 {
            tags.push("churned".into());
        }
        if t % 2_000 == 11 {
            tags.push("partner".into());
        }
        Person { first, last, email, tags: tags.join(";"), dnc: (r >> 56) % 100 < 3 }
    }
}

/// The filter combinations and the values sampled for each.
const TAGS: [&str; 5] = ["wave3", "spanish", "vip", "churned", "partner"];
const SEARCHES: [&str; 9] = ["m", "ma", "maria", "john", "j", "wil", "tgarcia", "+14152", "1415250"];

fn sample_filter(kind: &str, n: usize) -> ContactFilter {
    let tag = kind.contains("tag").then(|| TAGS[n % TAGS.len()].to_owned());
    let search = kind.contains("search").then(|| SEARCHES[(n / 2) % SEARCHES.len()].to_owned());
    let dnc = kind.contains("dnc").then_some(n.is_multiple_of(3));
    ContactFilter { search, tag, dnc }
}

const FILTER_KINDS: [&str; 8] =
    ["none", "tag", "search", "dnc", "tag+search", "tag+dnc", "search+dnc", "tag+search+dnc"];

/// Times `samples` pages of each filter combination (varied values and sorts;
/// every other sample a second page).
async fn filter_phase(store: &dyn Storage, samples: usize) -> anyhow::Result<Vec<FilterLatency>> {
    let mut out = Vec::new();
    for kind in FILTER_KINDS {
        let mut lat = Vec::with_capacity(samples);
        for n in 0..samples {
            let f = sample_filter(kind, n);
            let sort = if n % 2 == 0 { ContactSort::CreatedDesc } else { ContactSort::CreatedAsc };
            let mut page = PageRequest::first(50);
            if n % 4 >= 2 {
                page.cursor = store.list_contacts(&f, sort, &page).await?.next_cursor;
            }
            let s = Instant::now();
            store.list_contacts(&f, sort, &page).await?;
            lat.push(s.elapsed());
        }
        let mut values = Vec::new();
        if kind.contains("tag") {
            values.push(format!("tag={}", TAGS.join("|")));
        }
        if kind.contains("search") {
            values.push(format!("search={}", SEARCHES.join("|")));
        }
        if kind.contains("dnc") {
            values.push("dnc=true|false".into());
        }
        out.push(FilterLatency { filter: kind, values: values.join(", "), samples, latency: Latency::of(lat) });
    }
    Ok(out)
}

/// Enrollments still due now (never looked at by the dialer).
async fn count_due(store: &dyn Storage, id: &switchboard_domain::CampaignId) -> anyhow::Result<u64> {
    let now = now_ms();
    let mut n = 0;
    let mut page = PageRequest::first(200);
    loop {
        let p = store.list_enrollments(id, &[switchboard_domain::EnrollmentStatus::Pending], &page).await?;
        n += p.items.iter().filter(|e| e.next_attempt_at <= now && e.lease_token == 0).count() as u64;
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok(n),
        }
    }
}

fn per_sec(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

impl fmt::Display for CampaignBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.machine;
        writeln!(
            f,
            "Machine: {} CPUs, {}, {} {}; embedded SQLite (synchronous=FULL)",
            m.nproc,
            m.cpu.as_deref().unwrap_or("unknown CPU"),
            m.os,
            m.arch
        )?;
        writeln!(f)?;
        writeln!(f, "| Phase | Figure |")?;
        writeln!(f, "| --- | --- |")?;
        let import_rate = per_sec(self.rows, self.import_elapsed);
        writeln!(
            f,
            "| Import {} rows ({:.1} MB CSV), validate + write | {:.1} s, **{:.0} rows/s** |",
            self.rows,
            self.csv_bytes as f64 / 1e6,
            self.import_elapsed.as_secs_f64(),
            import_rate
        )?;
        if let (Some(a), Some(b)) = (self.rss_before_kib, self.rss_after_kib) {
            writeln!(
                f,
                "| Peak RSS before → after the import (includes the memory-mapped database) | {:.1} MB → {:.1} MB |",
                a as f64 / 1024.0,
                b as f64 / 1024.0
            )?;
        }
        if let Some(a) = self.anon_after_kib {
            writeln!(
                f,
                "| Anonymous RSS right after the import (heap + SQLite page caches) | {:.1} MB |",
                a as f64 / 1024.0
            )?;
        }
        if !self.filters.is_empty() {
            writeln!(
                f,
                "| Contact filter pages at {} contacts (limit 50; p50 / p99 / max below) | {} of {} filters within p99 ≤ {} ms |",
                self.filter_contacts,
                self.filters.iter().filter(|x| x.meets_target()).count(),
                self.filters.len(),
                FILTER_P99_TARGET.as_millis()
            )?;
        }
        let claim_rate = per_sec(self.claims, self.claim_elapsed);
        writeln!(
            f,
            "| Claims ({} enrollments, 8 tasks) | **{:.0} claims/s**, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms |",
            self.claims,
            claim_rate,
            self.claim_latency.p50.as_secs_f64() * 1e3,
            self.claim_latency.p99.as_secs_f64() * 1e3,
            self.claim_latency.max.as_secs_f64() * 1e3
        )?;
        let decision_rate = per_sec(self.decisions, self.dialer_elapsed);
        writeln!(
            f,
            "| Dialer decisions in {:.0} s (half deferred, half placed on the simulator) | **{:.0} decisions/s** ({} decisions, {} calls placed) |",
            self.dialer_elapsed.as_secs_f64(),
            decision_rate,
            self.decisions,
            self.placed
        )?;
        if !self.filters.is_empty() {
            writeln!(f)?;
            writeln!(
                f,
                "Contact filters at {} contacts, one page (limit 50) per sample, both sorts, half of them second pages. Target: p99 ≤ {} ms per filter.",
                self.filter_contacts,
                FILTER_P99_TARGET.as_millis()
            )?;
            writeln!(f)?;
            writeln!(
                f,
                "| Filter | Values sampled | Samples | p50 | p99 | max | p99 ≤ {} ms |",
                FILTER_P99_TARGET.as_millis()
            )?;
            writeln!(f, "| --- | --- | ---: | ---: | ---: | ---: | --- |")?;
            for x in &self.filters {
                writeln!(
                    f,
                    "| `{}` | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {} |",
                    x.filter,
                    if x.values.is_empty() { "—" } else { &x.values },
                    x.samples,
                    x.latency.p50.as_secs_f64() * 1e3,
                    x.latency.p99.as_secs_f64() * 1e3,
                    x.latency.max.as_secs_f64() * 1e3,
                    if x.meets_target() { "pass" } else { "**FAIL**" }
                )?;
            }
        }
        writeln!(f)?;
        writeln!(
            f,
            "Ratios in this run: decisions/s ÷ claims/s = {:.2}; import rows/s ÷ claims/s = {:.2}.",
            decision_rate / claim_rate.max(1e-9),
            import_rate / claim_rate.max(1e-9)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small run: every phase works and reports; no speed is asserted.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_small_run_reports_every_phase() {
        let r = run(CampaignBenchOptions { rows: 300, contacts: 100, secs: 1, filter_samples: 8 }).await.unwrap();
        assert_eq!(r.rows, 300);
        assert_eq!(r.filters.len(), FILTER_KINDS.len());
        assert!(r.filters.iter().all(|x| x.samples == 8), "{r:?}");
        assert!(r.to_string().contains("tag+search+dnc"));
        assert_eq!(r.claims, 100);
        assert!(r.decisions > 0 && r.decisions <= 100, "{r:?}");
        assert!(r.placed > 0, "{r:?}");
        assert!(r.to_string().contains("decisions/s"));
    }
}
