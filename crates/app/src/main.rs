//! The `switchboard` binary: parse the CLI, load settings, run a subcommand.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use switchboard::{App, config, shutdown_signal, store, telemetry};

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

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let mut overrides = Vec::new();
    if let Some(l) = cli.listen {
        overrides.push(("listen", l));
    }
    if let Some(p) = cli.sqlite_path {
        overrides.push(("storage.sqlite_path", p));
    }
    if let Command::Serve { no_migrate: true, .. } = cli.command {
        overrides.push(("migrate_on_start", "false".into()));
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
                "Google: service account {} (key: crates/app/src/sim/keys/sandbox-service-account.json, set token_uri to {}/token)",
                switchboard::sim::google::SANDBOX_ACCOUNT,
                handle.base_url
            );
            shutdown_signal().await;
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
        Command::Bench { duration, concurrency, rate, list_sizes, list_samples } => {
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
