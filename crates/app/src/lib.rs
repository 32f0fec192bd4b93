//! Switchboard: the system of record and control plane for AI voice calling
//! on ElevenLabs Agents and Twilio. `docs/tour.md` is the map; in short:
//!
//! Production code
//! - [`config`]: settings, their layers and validation (an empty secret stops start-up).
//! - [`secret`]: strings that never print.
//! - [`state`]: [`AppState`], shared by handlers and jobs.
//! - [`store`]: opening the configured store (SQLite or MongoDB) and timing it.
//! - [`cache`]: the read cache (Redis or in-process) and the store decorator that invalidates it.
//! - [`http`]: the REST API, its extractors, the connection layer (timeouts,
//!   caps), health, metrics, OpenAPI and Swagger UI.
//! - [`webhooks`]: Twilio and ElevenLabs receivers (verify → dedupe → merge).
//! - [`live`]: the Socket.IO live feed (rooms, sequences, gap-free resume).
//! - [`outcomes`]: a finished campaign call moves its enrollment on (used by
//!   webhooks and by the dialer job).
//! - [`import`]: contact import (journalled, undoable) and export, for the API and the CLI.
//! - [`integrations`]: Twilio, ElevenLabs and Google clients.
//! - [`conversations`]: an ElevenLabs conversation becomes a transcript (and
//!   its audio a recording), for the webhook and the reconciler alike.
//! - [`analysis`]: our analysis (crate `switchboard-analysis`) applied to a transcript, versioned.
//! - [`error`]: `ApiError` and the problem+json code table.
//! - [`metrics`] and [`telemetry`]: Prometheus series and tracing.
//!
//! Jobs
//! - [`jobs`]: the leased-job runner, the dialer, the import sweeper, the
//!   Google Sheets sync, the ElevenLabs conversation reconciler, recording
//!   retention and the analytics rollups (later: archiver).
//!
//! Developer tooling
//! - [`sim`]: the simulator (crate `switchboard-sim`) and sandbox wiring.
//! - [`devtools`]: `seed` (synthetic data) and `bench` (one file per suite).
//!
//! [`App::build`] wires these into one [`AppState`]; [`App::serve`] runs the
//! HTTP server and the jobs until the shutdown future resolves, draining
//! in-flight requests.

#![forbid(unsafe_code)]

pub mod analysis;
pub mod cache;
pub mod config;
pub mod conversations;
pub mod devtools;
pub mod error;
pub mod http;
pub mod import;
pub mod integrations;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod outcomes;
pub mod secret;
pub mod sim;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod webhooks;

/// Short paths for the developer tools.
pub use devtools::{bench, seed};

/// The dialer's old path (`switchboard::dialer`), kept while callers move to [`jobs::dialer`].
pub use jobs::dialer;
pub use state::AppState;

use std::sync::Arc;

use switchboard_storage::Storage;
use tokio::net::TcpListener;

use crate::config::{Secret, Settings};

/// The assembled application.
pub struct App {
    /// Shared state.
    pub state: AppState,
}

impl App {
    /// Opens the store (migrating when configured) and assembles the state.
    /// In dev with no API token configured, generates one and prints it once.
    pub async fn build(settings: Settings) -> anyhow::Result<App> {
        let store = store::open(&settings).await?;
        Self::with_store(settings, store).await
    }

    /// Assembles the state around an already opened store.
    pub async fn with_store(settings: Settings, store: Arc<dyn Storage>) -> anyhow::Result<App> {
        if settings.migrate_on_start {
            let report = store.migrate().await?;
            for step in &report.applied {
                tracing::info!(step = %step, "migrated");
            }
        }
        if settings.live.source == config::LiveSource::ChangeStream && store.watch_changes(None).await?.is_none() {
            anyhow::bail!(
                "SWITCHBOARD_LIVE__SOURCE=change_stream: the store has no change feed (SQLite, or a MongoDB server that is not a replica set); use `writes`"
            );
        }
        if settings.live.source == config::LiveSource::ChangeStream && settings.redis.url.is_none() {
            tracing::warn!(
                "live feed from the change stream without REDIS_URL: only the instance holding the watcher's lease delivers events; run one instance or set REDIS_URL"
            );
        }
        // Every writer goes through the evicting decorator, so a write invalidates what it changed.
        let cache = cache::Cache::from_settings(&settings)?;
        let live = live::LiveFeed::from_settings(&settings)?;
        let store: Arc<dyn Storage> = Arc::new(cache::Evicting::new(store, cache.clone(), live.clone()));
        let mut tokens = settings.api_tokens.clone();
        if tokens.is_empty() && settings.env == "dev" {
            let token = format!("sb_dev_{}", uuid::Uuid::new_v4().simple());
            // Printed once to the terminal, never logged.
            println!("No SWITCHBOARD_API_TOKENS configured; generated a dev API token for this run:\n  {token}");
            tokens.push(Secret::new(token));
        }
        let sheets = match settings.google.sheets_client(&integrations::ClientOptions {
            retry: integrations::google::default_retry(),
            ..Default::default()
        })? {
            Some(client) => {
                let account = settings.google.service_account()?.map(|k| k.client_email).unwrap_or_default();
                Some(
                    jobs::sheets::SheetsSync::new(
                        store.clone(),
                        client,
                        Arc::new(jobs::sheets::Budget::new(settings.sheets.requests_per_minute)),
                        jobs::runner::Runner::new(store.clone(), instance_id()).with_live(live.clone()),
                        settings.contacts.default_region.clone(),
                        account,
                    )
                    .with_lease(chrono::Duration::seconds(settings.sheets.lease_secs as i64)),
                )
            }
            None => None,
        };
        let state = AppState {
            store,
            settings: Arc::new(settings),
            api_tokens: Arc::new(tokens),
            imports: Arc::default(),
            sheets,
            cache,
            live,
        };
        Ok(App { state })
    }

    /// The provider clients the settings configure (either may be absent).
    pub fn provider_clients(
        settings: &Settings,
    ) -> (Option<integrations::twilio::TwilioClient>, Option<integrations::elevenlabs::ElevenLabsClient>) {
        let opts = integrations::ClientOptions::default();
        let twilio = match (&settings.twilio.account_sid, &settings.twilio.auth_token) {
            (Some(sid), Some(token)) => Some(integrations::twilio::TwilioClient::new(
                &settings.twilio.api_base,
                sid,
                integrations::twilio::TwilioAuth::AuthToken(token.clone()),
                &opts,
            )),
            _ => None,
        };
        let elevenlabs =
            settings.elevenlabs.api_key.as_ref().map(|k| {
                integrations::elevenlabs::ElevenLabsClient::new(&settings.elevenlabs.api_base, k.clone(), &opts)
            });
        (twilio, elevenlabs)
    }

    /// The dialer of this instance, placing calls through the configured providers.
    pub fn dialer(&self) -> jobs::dialer::Dialer {
        let s = &self.state.settings;
        let (twilio, elevenlabs) = Self::provider_clients(s);
        let owner = instance_id();
        jobs::dialer::Dialer::new(
            self.state.store.clone(),
            twilio,
            elevenlabs,
            jobs::dialer::Callbacks { public_base: s.public_base() },
            owner,
        )
        .with_lease(chrono::Duration::seconds(s.dialer.lease_secs))
        .with_quiet_period(chrono::Duration::seconds(s.dialer.call_quiet_secs))
    }

    /// Serves HTTP on `listener` until `shutdown` resolves, then drains
    /// in-flight requests. The dialer runs beside it when enabled and stops first.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let dialer = self.state.settings.dialer.enabled.then(|| {
            let d = self.dialer();
            let every = std::time::Duration::from_millis(self.state.settings.dialer.interval_ms);
            let mut rx = stop_rx.clone();
            tokio::spawn(d.run(every, async move {
                let _ = rx.wait_for(|s| *s).await;
            }))
        });
        // Undo imports whose writer died (this instance's last run, or another's), now and every 30 s.
        let runner =
            jobs::runner::Runner::new(self.state.store.clone(), instance_id()).with_live(self.state.live.clone());
        let sweeper = tokio::spawn(jobs::import_sweeper::run(
            self.state.store.clone(),
            runner.clone(),
            chrono::Duration::seconds(self.state.settings.import.stale_after_secs),
            std::time::Duration::from_secs(30),
            stop_rx.clone(),
        ));
        // Google Sheets links, each synced under its own lease.
        let sheets = match (&self.state.sheets, self.state.settings.sheets.enabled) {
            (Some(sync), true) => Some(tokio::spawn(
                sync.clone()
                    .run(std::time::Duration::from_secs(self.state.settings.sheets.tick_secs.max(1)), stop_rx.clone()),
            )),
            _ => None,
        };
        // ElevenLabs conversations whose webhook was lost: fetched and applied (leased job).
        // Also Twilio recordings whose RecordingStatusCallback never came (when Twilio is configured).
        let (twilio_client, elevenlabs_client) = Self::provider_clients(&self.state.settings);
        let reconciler = match (elevenlabs_client, self.state.settings.reconciler.enabled) {
            (el, true) if el.is_some() || twilio_client.is_some() => {
                let twilio = twilio_client.clone();
                let store = self.state.store.clone();
                let r = self.state.settings.reconciler.clone();
                let analysis = self.state.settings.analysis.clone();
                let runner = runner.clone();
                let stop = stop_rx.clone();
                Some(tokio::spawn(async move {
                    let schedule = jobs::runner::Schedule {
                        name: jobs::reconciler::NAME.into(),
                        every: chrono::Duration::seconds(r.every_secs.max(1) as i64),
                        lease: chrono::Duration::minutes(10),
                    };
                    let poll = std::time::Duration::from_secs(r.every_secs.clamp(1, 30));
                    runner
                        .run_every(schedule, poll, stop, |_| {
                            let (store, el, twilio, analysis) =
                                (store.clone(), el.clone(), twilio.clone(), analysis.clone());
                            async move {
                                let since = chrono::Utc::now() - chrono::Duration::seconds(r.lookback_secs as i64);
                                if let Some(client) = &el {
                                    jobs::reconciler::reconcile(&*store, client, since, &analysis, None).await?;
                                }
                                if let Some(t) = &twilio {
                                    jobs::reconciler::reconcile_recordings(&*store, t, since).await?;
                                }
                                anyhow::Ok(())
                            }
                        })
                        .await;
                }))
            }
            _ => None,
        };
        // Recording retention (off unless `[recordings] retention_days` is set; dry run by default).
        let retention = self.state.settings.recordings.retention_days.map(|days| {
            let store = self.state.store.clone();
            let twilio = Self::provider_clients(&self.state.settings).0;
            let r = self.state.settings.recordings.clone();
            let runner = runner.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                let schedule = jobs::runner::Schedule {
                    name: jobs::retention::NAME.into(),
                    every: chrono::Duration::seconds(r.every_secs.max(1) as i64),
                    lease: chrono::Duration::minutes(10),
                };
                let poll = std::time::Duration::from_secs(r.every_secs.clamp(1, 30));
                runner
                    .run_every(schedule, poll, stop, |_| {
                        let (store, twilio) = (store.clone(), twilio.clone());
                        async move {
                            let cutoff = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
                            let report =
                                jobs::retention::expire(&*store, twilio.as_ref(), cutoff, r.dry_run, None).await?;
                            tracing::info!(?report, "recording retention run");
                            Ok::<_, anyhow::Error>(report)
                        }
                    })
                    .await;
            })
        });
        // Search-index upkeep (SQLite: FTS5 segment merging; a no-op on MongoDB).
        let search_index = {
            let store = self.state.store.clone();
            let runner = runner.clone();
            let stop = stop_rx.clone();
            let si = self.state.settings.search_index.clone();
            tokio::spawn(async move {
                let schedule = jobs::runner::Schedule {
                    name: jobs::search_index::NAME.into(),
                    every: chrono::Duration::seconds(si.every_secs as i64),
                    lease: chrono::Duration::seconds(si.lease_secs as i64),
                };
                let poll = std::time::Duration::from_secs(si.every_secs.clamp(1, 30));
                let (pages, pause) = (si.pages_per_step, std::time::Duration::from_millis(si.pause_ms));
                runner
                    .run_every(schedule, poll, stop, |_| {
                        let store = store.clone();
                        async move {
                            let max = jobs::search_index::MAX_STEPS;
                            let steps = jobs::search_index::compact(&*store, max, pages, pause).await?;
                            if steps > 0 {
                                tracing::info!(steps, "search index merged");
                            }
                            Ok::<_, anyhow::Error>(steps)
                        }
                    })
                    .await;
            })
        };
        // The live feed's change-stream source: one leased watcher (any instance), resuming from its saved token.
        let live_changes = (self.state.settings.live.source == config::LiveSource::ChangeStream).then(|| {
            let store = self.state.store.clone();
            let live = self.state.live.clone();
            let runner = runner.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                let schedule = jobs::runner::Schedule {
                    name: jobs::live_changes::NAME.into(),
                    every: chrono::Duration::seconds(1),
                    lease: chrono::Duration::seconds(30),
                };
                let inner_stop = stop.clone();
                runner
                    .run_every(schedule, std::time::Duration::from_secs(1), stop, |_| {
                        jobs::live_changes::follow(store.clone(), live.clone(), inner_stop.clone())
                    })
                    .await;
            })
        });
        // Analytics rollups: incremental (changed calls since the watermark) and repair (recent buckets whole).
        let rollups = self.state.settings.analytics.enabled.then(|| {
            let store = self.state.store.clone();
            let a = self.state.settings.analytics.clone();
            let runner = runner.clone();
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                let tz = a.tz();
                let tick = jobs::runner::Schedule {
                    name: jobs::rollups::NAME.into(),
                    every: chrono::Duration::milliseconds(a.tick_ms as i64),
                    lease: chrono::Duration::seconds(a.lease_secs as i64),
                };
                let repair = jobs::runner::Schedule {
                    name: jobs::rollups::REPAIR.into(),
                    every: chrono::Duration::seconds(a.repair_every_secs as i64),
                    lease: chrono::Duration::seconds(a.lease_secs as i64),
                };
                let overlap = chrono::Duration::seconds(a.overlap_secs as i64);
                let poll = std::time::Duration::from_millis(a.tick_ms.clamp(50, 30_000));
                let incremental = runner.run_every(tick, poll, stop.clone(), |_| {
                    let store = store.clone();
                    async move { jobs::rollups::catch_up(&*store, tz, overlap).await }
                });
                let repairing = runner.run_every(repair, std::time::Duration::from_secs(5), stop, |_| {
                    let store = store.clone();
                    async move {
                        let to = chrono::Utc::now() + chrono::Duration::hours(1);
                        let from = to - chrono::Duration::hours(i64::from(a.repair_hours) + 1);
                        jobs::rollups::rebuild_range(&*store, tz, from, to, None).await
                    }
                });
                tokio::join!(incremental, repairing);
            })
        });
        let s = &self.state.settings;
        let limits = http::server::ConnLimits {
            header_read_timeout: std::time::Duration::from_secs(s.http.header_read_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(s.http.idle_timeout_secs),
            max_connections: s.http.max_connections,
        };
        let metrics = match s.metrics.listen {
            Some(addr) => {
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot bind SWITCHBOARD_METRICS__LISTEN {addr}: {e}"))?;
                tracing::info!(addr = %addr, "metrics listening");
                let mut rx = stop_rx.clone();
                Some(tokio::spawn(http::server::serve(l, http::metrics_router(), limits, async move {
                    let _ = rx.wait_for(|s| *s).await;
                })))
            }
            None => None,
        };
        let router = http::router(self.state);
        let served = http::server::serve(listener, router, limits, async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
        if let Some(d) = dialer {
            let _ = d.await;
        }
        if let Some(m) = metrics {
            let _ = m.await;
        }
        let _ = sweeper.await;
        if let Some(s) = sheets {
            let _ = s.await;
        }
        if let Some(r) = reconciler {
            let _ = r.await;
        }
        if let Some(r) = retention {
            let _ = r.await;
        }
        let _ = search_index.await;
        if let Some(r) = rollups {
            let _ = r.await;
        }
        if let Some(w) = live_changes {
            let _ = w.await;
        }
        served?;
        Ok(())
    }
}

/// A fresh owner id for this instance's leases (host name + random suffix:
/// a restarted process is a new owner, so it never inherits a dead one's lease).
pub(crate) fn instance_id() -> String {
    format!("{}-{}", hostname(), uuid::Uuid::new_v4().simple())
}

pub(crate) fn hostname() -> String {
    std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()).unwrap_or_else(|| "switchboard".into())
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received; draining in-flight requests");
}
