//! The `switchboard` binary: parse the CLI, load settings, run a subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::{App, config, shutdown_signal, store, telemetry};

mod cli_analytics;
mod cli_conversations;
mod cli_recordings;
mod cli_sheets;

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "System of record and control plane for AI voice calling on ElevenLabs Agents and Twilio"
)]
struct Cli {
    /// Bind address (overrides SWITCHBOARD_LISTEN).
    #[arg(long, global = true)]
    listen: Option<String>,
    /// SQLite file (overrides SWITCHBOARD_SQLITE_PATH; ignored when MONGODB_URI is set).
    #[arg(long, global = true)]
    sqlite_path: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the HTTP service (migrates first unless --no-migrate).
    Serve {
        /// Do not migrate on start.
        #[arg(long)]
        no_migrate: bool,
        /// Start the telephony simulator in-process and point every provider client at it.
        #[arg(long)]
        sandbox: bool,
    },
    /// Run the telephony simulator (fake Twilio + ElevenLabs) on its own.
    Sim {
        /// Bind address.
        #[arg(long, default_value = "127.0.0.1:8090")]
        addr: std::net::SocketAddr,
        /// Scenario JSON file (see the README); defaults otherwise.
        #[arg(long)]
        scenario: Option<std::path::PathBuf>,
        /// Where ElevenLabs post-call webhooks go, e.g. http://127.0.0.1:8080/webhooks/elevenlabs.
        #[arg(long)]
        elevenlabs_webhook_url: Option<String>,
        /// Seed a spreadsheet from a CSV file: `SPREADSHEET_ID=path.csv` (the tab is named after the file). Repeatable.
        #[arg(long = "sheet", value_name = "ID=CSV")]
        sheets: Vec<String>,
    },
    /// Import records from a file (`import contacts leads.csv`).
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Export records to a file or stdout (`export contacts --out all.csv`).
    Export {
        #[command(subcommand)]
        what: ExportWhat,
    },
    /// Fetch ElevenLabs conversations started since a date that we lack or hold as not final (backfill).
    Reconcile {
        /// `YYYY-MM-DD` or an RFC 3339 time.
        #[arg(long)]
        since: String,
    },
    /// Re-run the conversation analyser over stored transcripts started since a date.
    Analyze {
        /// `YYYY-MM-DD` or an RFC 3339 time.
        #[arg(long)]
        since: String,
        /// Re-analyse every transcript, not only those missing analysis or from an older analyser.
        #[arg(long)]
        all: bool,
    },
    /// Google Sheets links: link, list, status, preview, sync, unlink.
    Sheets {
        #[command(subcommand)]
        what: cli_sheets::SheetsCmd,
    },
    /// Analytics rollups: `rebuild --since …` from raw calls.
    Analytics {
        #[command(subcommand)]
        what: cli_analytics::AnalyticsCmd,
    },
    /// Recordings: `expire` (retention; a dry run unless --apply).
    Recordings {
        #[command(subcommand)]
        what: cli_recordings::RecordingsCmd,
    },
    /// Create or update collections/tables, validators and indexes (idempotent).
    Migrate {
        /// Only report drift; exit non-zero if there is any.
        #[arg(long)]
        check: bool,
    },
    /// Insert synthetic calls and events.
    Seed {
        /// Number of calls.
        #[arg(long, default_value_t = 10_000)]
        calls: u64,
        /// Events per call.
        #[arg(long, default_value_t = 4)]
        events_per_call: u32,
        /// Random seed (runs with different seeds never collide).
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Load benchmark against a fresh in-process server on the embedded store.
    Bench {
        /// Seconds per throughput phase.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Concurrent client connections for the closed-loop phases.
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Fixed callback rate (per second) for the latency phase.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        /// Store sizes for the list-latency phase (comma-separated).
        #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
        list_sizes: Vec<u64>,
        /// List requests per size.
        #[arg(long, default_value_t = 500)]
        list_samples: usize,
        /// `calls` (webhooks and lists), `campaigns` (import, claims, dialer), `sheets` (Sheets sync), `analysis` (transcripts, search, analysis) `dashboard` (dashboard endpoints, rollups; sizes from --list-sizes) or `live` (Socket.IO fan-out to --clients).
        #[arg(long, default_value = "calls")]
        suite: String,
        /// Campaigns suite: CSV rows to import.
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Campaigns suite: enrollments claimed and dialled.
        #[arg(long, default_value_t = 100_000)]
        contacts: u64,
        /// Campaigns suite: timed pages per contact filter combination (on the `rows` imported contacts).
        #[arg(long, default_value_t = 400)]
        filter_samples: usize,
        /// Sheets suite: data rows in the linked sheet (and status changes written back).
        #[arg(long, default_value_t = 10_000)]
        sheet_rows: u64,
        /// Analysis suite: transcripts seeded (searched, analysed).
        #[arg(long, default_value_t = 100_000)]
        transcripts: u64,
        /// Analysis suite: keep the seeded store in this SQLite file, and reuse it when it exists
        /// (seeding skipped; the ingest phase replays the same conversations, so it does not grow).
        #[arg(long)]
        transcripts_db: Option<std::path::PathBuf>,
        /// Live suite: Socket.IO clients connected (official client, node).
        #[arg(long, default_value_t = 1000)]
        clients: usize,
    },
}

/// `ID=path.csv` → a spreadsheet `ID` with one tab named after the file.
fn seed_sheet(sim: &switchboard::sim::Simulator, spec: &str) -> anyhow::Result<String> {
    use switchboard::sim::google::{NewSpreadsheet, NewTab};
    let (id, path) = spec
        .split_once('=')
        .filter(|(id, path)| !id.is_empty() && !path.is_empty())
        .ok_or_else(|| anyhow::anyhow!("--sheet {spec}: expected SPREADSHEET_ID=path.csv"))?;
    let path = std::path::Path::new(path);
    let csv = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("--sheet {spec}: cannot read {}: {e}", path.display()))?;
    let title = path.file_stem().and_then(|s| s.to_str()).unwrap_or("Sheet1").to_owned();
    sim.create_spreadsheet(NewSpreadsheet {
        spreadsheet_id: Some(id.to_owned()),
        title: Some(title.clone()),
        sheets: vec![NewTab { title, csv: Some(csv), values: None }],
        ..Default::default()
    })
    .map_err(|e| anyhow::anyhow!("--sheet {spec}: {e}"))
}

#[derive(Subcommand)]
enum ImportWhat {
    /// Contacts from CSV, a JSON array or NDJSON (by extension, or --format).
    Contacts {
        /// The file.
        file: std::path::PathBuf,
        /// csv, json or ndjson (default: from the extension).
        #[arg(long)]
        format: Option<String>,
        /// When a phone is already stored: skip, update or fail.
        #[arg(long, default_value = "skip")]
        on_duplicate: String,
        /// Validate and report only.
        #[arg(long)]
        dry_run: bool,
        /// Import the valid rows even if some rows are invalid.
        #[arg(long)]
        partial: bool,
        /// Explicit column mapping, `COLUMN=field` (repeatable), e.g. `--map "Cell Phone=phone"`.
        #[arg(long = "map")]
        mapping: Vec<String>,
        /// Also enroll every contact of the file in this campaign (`cmp_…`).
        #[arg(long)]
        campaign: Option<String>,
    },
}

#[derive(Subcommand)]
enum ExportWhat {
    /// Contacts as CSV or NDJSON, oldest first, with the list filters.
    Contacts {
        /// csv or ndjson.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Name / phone / e-mail prefix.
        #[arg(long)]
        search: Option<String>,
        /// Tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only do-not-call (true) or only callable (false) contacts.
        #[arg(long)]
        dnc: Option<bool>,
    },
}

async fn import_contacts(settings: &config::Settings, what: ImportWhat) -> anyhow::Result<ExitCode> {
    let ImportWhat::Contacts { file, format, on_duplicate, dry_run, partial, mapping, campaign } = what;
    use switchboard::import::{ImportFormat, ImportOptions};
    use switchboard_storage::OnDuplicate;
    let format = match format.as_deref() {
        None => ImportFormat::from_path(&file),
        Some("csv") => ImportFormat::Csv,
        Some("json") => ImportFormat::Json,
        Some("ndjson") => ImportFormat::Ndjson,
        Some(f) => anyhow::bail!("--format {f}: expected csv, json or ndjson"),
    };
    let on_duplicate = match on_duplicate.as_str() {
        "skip" => OnDuplicate::Skip,
        "update" => OnDuplicate::Update,
        "fail" => OnDuplicate::Fail,
        o => anyhow::bail!("--on-duplicate {o}: expected skip, update or fail"),
    };
    let mut map = Vec::new();
    for m in mapping {
        let (c, f) = m.split_once('=').ok_or_else(|| anyhow::anyhow!("--map {m}: expected COLUMN=field"))?;
        map.push((c.trim().to_owned(), f.trim().to_owned()));
    }
    let enroll_in = campaign
        .map(|c| switchboard_domain::CampaignId::parse(&c).map_err(|e| anyhow::anyhow!("--campaign: {e}")))
        .transpose()?;
    let store = store::open(settings).await?;
    store.migrate().await?;
    let total = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {pos} rows ({per_sec}) {elapsed}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let b = bar.clone();
    let progress: switchboard::import::Progress = std::sync::Arc::new(move |stage: &str, n: u64| {
        b.set_message(stage.to_owned());
        b.set_position(n);
    });
    let opts = ImportOptions {
        format,
        on_duplicate,
        dry_run,
        partial,
        default_region: settings.contacts.default_region.clone(),
        mapping: map,
        enroll_in,
        ..ImportOptions::default()
    };
    // An earlier import killed part-way (this CLI, or a server) is undone first.
    let stale = chrono::Duration::seconds(settings.import.stale_after_secs);
    let undone = switchboard::import::sweep_stale_imports(&*store, stale, switchboard_domain::time::now_ms()).await?;
    if undone > 0 {
        eprintln!("undid {undone} earlier import(s) that stopped part-way");
    }
    let opts = ImportOptions { max_field_bytes: settings.import.max_field_bytes, ..opts };
    let report = switchboard::import::import_file(store, &file, opts, Some(progress))
        .await
        .map_err(|e| anyhow::anyhow!("{}: {e:?}", file.display()))?;
    bar.finish_and_clear();
    println!(
        "{}: {} rows ({} bytes): {} valid, {} invalid, {} duplicates in the file, {} already stored",
        file.display(),
        report.rows,
        total,
        report.valid,
        report.invalid,
        report.duplicates_in_file,
        report.duplicates_in_store
    );
    for e in report.errors.iter().take(20) {
        println!("  line {}: {}: {}", e.line, e.field, e.reason);
    }
    if report.errors.len() > 20 {
        println!("  … {} more errors (first 1,000 kept)", report.errors.len() - 20);
    }
    if report.applied {
        println!(
            "imported: {} inserted, {} updated, {} skipped (source {}){}",
            report.inserted,
            report.updated,
            report.skipped,
            report.source,
            if report.enrolled > 0 { format!("; {} enrolled", report.enrolled) } else { String::new() }
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{}", report.message.unwrap_or_else(|| "nothing imported".into()));
        Ok(if dry_run { ExitCode::SUCCESS } else { ExitCode::from(1) })
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut overrides = Vec::new();
    if let Some(l) = cli.listen {
        overrides.push(("listen", l.into()));
    }
    if let Some(p) = cli.sqlite_path {
        overrides.push(("storage.sqlite_path", p.into()));
    }
    if let Command::Serve { no_migrate: true, .. } = cli.command {
        overrides.push(("migrate_on_start", false.into()));
    }
    let settings = config::load(&overrides)?;
    telemetry::init(settings.log_format);
    match cli.command {
        Command::Serve { sandbox, .. } => {
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .map_err(|e| anyhow::anyhow!("cannot bind SWITCHBOARD_LISTEN {}: {e}", settings.listen))?;
            let mut settings = settings;
            let _sim = if sandbox {
                let (sim, wired) = switchboard::sim::sandbox(settings).await?;
                settings = wired;
                tracing::info!(simulator = %sim.base_url, "sandbox mode: provider clients point at the local simulator");
                Some(sim)
            } else {
                None
            };
            let app = App::build(settings).await?;
            if let Some(sim) = &_sim {
                switchboard::sim::sandbox_sheet_link(&app.state, sim).await?;
            }
            tracing::info!(addr = %listener.local_addr()?, store = app.state.store.backend_name(), "switchboard listening");
            app.serve(listener, shutdown_signal()).await?;
            tracing::info!("stopped cleanly");
        }
        Command::Sim { addr, scenario, elevenlabs_webhook_url, sheets } => {
            let mut sim = switchboard::sim::SimSettings { elevenlabs_webhook_url, ..Default::default() };
            if let Some(path) = scenario {
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                sim.scenario = serde_json::from_str(&text)
                    .map_err(|e| anyhow::anyhow!("{}: invalid scenario: {e}", path.display()))?;
            }
            println!(
                "simulator credentials: TWILIO_ACCOUNT_SID={} TWILIO_AUTH_TOKEN={} ELEVENLABS_API_KEY={} ELEVENLABS_WEBHOOK_SECRET={}",
                sim.account_sid, sim.auth_token, sim.elevenlabs_api_key, sim.elevenlabs_webhook_secret
            );
            let handle = switchboard::sim::Simulator::spawn(sim, addr).await?;
            for spec in &sheets {
                let id = seed_sheet(&handle.sim, spec)?;
                println!("spreadsheet {id} seeded from {spec}");
            }
            println!("simulator listening on {} (control API under /__sim)", handle.base_url);
            println!(
                "Google: service account {} (key: crates/sim/src/keys/sandbox-service-account.json, set token_uri to {}/token)",
                switchboard::sim::google::SANDBOX_ACCOUNT,
                handle.base_url
            );
            shutdown_signal().await;
        }
        Command::Import { what } => {
            return import_contacts(&settings, what).await;
        }
        Command::Sheets { what } => {
            return cli_sheets::run(&settings, what).await;
        }
        Command::Analytics { what } => {
            return cli_analytics::run(&settings, what).await;
        }
        Command::Recordings { what } => {
            return cli_recordings::run(&settings, what).await;
        }
        Command::Reconcile { since } => {
            return cli_conversations::reconcile(&settings, &since).await;
        }
        Command::Analyze { since, all } => {
            return cli_conversations::analyze(&settings, &since, all).await;
        }
        Command::Export { what: ExportWhat::Contacts { format, out, search, tag, dnc } } => {
            use std::io::Write;
            let format = match format.as_str() {
                "csv" => switchboard::import::ExportFormat::Csv,
                "ndjson" | "json" => switchboard::import::ExportFormat::Ndjson,
                f => anyhow::bail!("--format {f}: expected csv or ndjson"),
            };
            let store = store::open(&settings).await?;
            let filter = switchboard_storage::ContactFilter { search, tag, dnc };
            let sink: std::sync::Mutex<Box<dyn Write + Send>> = std::sync::Mutex::new(match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            });
            let n = switchboard::import::export_chunks(&*store, &filter, format, |chunk| {
                let ok = sink.lock().expect("sink lock").write_all(&chunk).is_ok();
                async move { ok }
            })
            .await?;
            sink.lock().expect("sink lock").flush()?;
            if let Some(p) = out {
                eprintln!("exported {n} contacts to {}", p.display());
            }
        }
        Command::Migrate { check } => {
            let store = store::open(&settings).await?;
            if check {
                let drift = store.check_schema().await?;
                if drift.is_empty() {
                    println!("schema is up to date ({})", store.backend_name());
                } else {
                    for d in &drift {
                        println!("drift: {}: {}", d.object, d.detail);
                    }
                    return Ok(ExitCode::from(1));
                }
            } else {
                let report = store.migrate().await?;
                if report.applied.is_empty() {
                    println!("already up to date ({})", store.backend_name());
                }
                for step in report.applied {
                    println!("applied: {step}");
                }
            }
        }
        Command::Seed { calls, events_per_call, seed } => {
            let store = store::open(&settings).await?;
            store.migrate().await?;
            let opts = switchboard::seed::SeedOptions { calls, events_per_call, seed, ..Default::default() };
            let report = switchboard::seed::seed(store, &opts, true).await?;
            println!(
                "seeded {} calls and {} events in {:.1}s ({:.0} calls/s)",
                report.calls,
                report.events,
                report.elapsed.as_secs_f64(),
                report.calls as f64 / report.elapsed.as_secs_f64().max(1e-9)
            );
        }
        Command::Bench { suite, rows, contacts, duration, filter_samples, .. } if suite == "campaigns" => {
            let opts =
                switchboard::bench::campaigns::CampaignBenchOptions { rows, contacts, secs: duration, filter_samples };
            let report = switchboard::bench::campaigns::run(opts).await?;
            println!("{report}");
        }
        Command::Bench { suite, sheet_rows, .. } if suite == "sheets" => {
            let opts = switchboard::bench::sheets::SheetsBenchOptions { rows: sheet_rows, progress: true };
            let report = switchboard::bench::sheets::run(opts).await?;
            println!("{report}");
        }
        Command::Bench { suite, transcripts, transcripts_db, .. } if suite == "analysis" => {
            let opts = switchboard::bench::analysis::AnalysisBenchOptions {
                transcripts,
                store_path: transcripts_db,
                ..Default::default()
            };
            let report = switchboard::bench::analysis::run(opts).await?;
            println!("{report}");
        }
        Command::Bench { suite, list_sizes, list_samples, .. } if suite == "dashboard" => {
            // Sizes as for the list phase; samples per endpoint and cache mode (a fifth of --list-samples, at least 50).
            let opts = switchboard::bench::dashboard::DashboardBenchOptions {
                sizes: list_sizes,
                samples: (list_samples / 5).max(50),
            };
            let report = switchboard::bench::dashboard::run(opts).await?;
            println!("{report}");
            // The live feed's fan-out belongs to the dashboard too (also alone: `--suite live`).
            let live = switchboard::bench::live::LiveBenchOptions::default();
            if live.script_dir.join("node_modules/socket.io-client").exists() {
                println!("{}", switchboard::bench::live::run(live).await?);
            } else {
                println!("live-feed fan-out skipped: run `npm ci` in {}", live.script_dir.display());
            }
        }
        Command::Bench { suite, clients, .. } if suite == "live" => {
            let opts = switchboard::bench::live::LiveBenchOptions { clients, ..Default::default() };
            let report = switchboard::bench::live::run(opts).await?;
            println!("{report}");
        }
        Command::Bench { suite, .. } if suite != "calls" => {
            anyhow::bail!("--suite {suite}: expected calls, campaigns, sheets, analysis, dashboard or live")
        }
        Command::Bench { duration, concurrency, rate, list_sizes, list_samples, .. } => {
            let opts = switchboard::bench::BenchOptions {
                duration_secs: duration,
                concurrency,
                rate,
                list_sizes,
                list_samples,
                dir: None,
            };
            let report = switchboard::bench::run(opts).await?;
            println!("{report}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
