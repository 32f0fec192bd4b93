//! Settings: embedded defaults (`config/default.toml`), the profile section
//! (`SWITCHBOARD_ENV`), an optional file (`SWITCHBOARD_CONFIG`),
//! `SWITCHBOARD_*` variables, the names Twilio and ElevenLabs users already
//! know (`MONGODB_URI`, `TWILIO_AUTH_TOKEN`, …) and finally CLI flags.
//!
//! A bad or missing setting fails start-up with the key and the reason.
//! Secrets are [`Secret`]s: their `Debug` and `Display` never show the value.

use std::net::SocketAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Profile};
use serde::{Deserialize, Serialize};

const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// The well-known environment names and the setting each one sets.
pub const WELL_KNOWN_ENV: &[(&str, &str)] = &[
    ("MONGODB_URI", "storage.mongodb_uri"),
    ("MONGODB_DB", "storage.mongodb_db"),
    ("SWITCHBOARD_SQLITE_PATH", "storage.sqlite_path"),
    ("REDIS_URL", "redis.url"),
    ("TWILIO_ACCOUNT_SID", "twilio.account_sid"),
    ("TWILIO_AUTH_TOKEN", "twilio.auth_token"),
    ("ELEVENLABS_API_KEY", "elevenlabs.api_key"),
    ("ELEVENLABS_WEBHOOK_SECRET", "elevenlabs.webhook_secret"),
    ("PUBLIC_BASE_URL", "public_base_url"),
    ("TWILIO_API_BASE", "twilio.api_base"),
    ("ELEVENLABS_API_BASE", "elevenlabs.api_base"),
    ("GOOGLE_APPLICATION_CREDENTIALS", "google.credentials_file"),
    ("GOOGLE_SHEETS_API_BASE", "google.sheets_api_base"),
    ("GOOGLE_DRIVE_API_BASE", "google.drive_api_base"),
    ("SWITCHBOARD_LISTEN", "listen"),
    ("SWITCHBOARD_API_TOKENS", "api_tokens"),
];

pub use crate::secret::Secret;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// SQLite commit durability.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SqliteDurability {
    /// fsync every commit.
    Full,
    /// fsync at checkpoints.
    Normal,
}

/// Storage settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// MongoDB URI; `None` selects SQLite.
    pub mongodb_uri: Option<Secret>,
    /// The database every collection lives in (`MONGODB_DB`).
    pub mongodb_db: String,
    /// Most pooled connections per server; unset: the URI's `maxPoolSize`, else the driver's 10.
    pub max_pool_size: Option<u32>,
    /// Connections kept open even when idle; unset: the URI's `minPoolSize`, else 0.
    pub min_pool_size: Option<u32>,
    /// How long one TCP/TLS connect may take (ms); unset: the URI's, else the driver's.
    pub connect_timeout_ms: Option<u64>,
    /// How long an operation waits for a usable server (ms) before failing as unavailable.
    pub server_selection_timeout_ms: Option<u64>,
    /// Connection attempts at start-up, with exponential backoff, before giving up with one clear error.
    pub connect_attempts: u32,
    /// No longer read: whether the server is a replica set or mongos is
    /// detected from its `hello` answer. Accepted (and warned about) so old
    /// configurations still start.
    #[serde(default)]
    pub replica_set: Option<bool>,
    /// Forces multi-document transactions off even on a replica set (to
    /// diagnose a transaction problem; never needed for correctness).
    #[serde(default)]
    pub disable_transactions: bool,
    /// The embedded store's file when `MONGODB_URI` is unset (`SWITCHBOARD_SQLITE_PATH`).
    pub sqlite_path: PathBuf,
    /// Reader connections beside the single writer thread.
    pub sqlite_readers: usize,
    /// Whether each acknowledged write is fsynced (`full`) or survives only a process crash (`normal`).
    pub sqlite_durability: SqliteDurability,
}

fn twilio_api_base() -> String {
    "https://api.twilio.com".into()
}

fn elevenlabs_api_base() -> String {
    "https://api.elevenlabs.io".into()
}

/// Twilio settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioSettings {
    /// REST base URL (the simulator's in sandbox mode).
    #[serde(default = "twilio_api_base")]
    pub api_base: String,
    /// Account SID.
    pub account_sid: Option<String>,
    /// Auth token (signs webhooks).
    pub auth_token: Option<Secret>,
}

impl Default for TwilioSettings {
    fn default() -> Self {
        TwilioSettings { api_base: twilio_api_base(), account_sid: None, auth_token: None }
    }
}

/// ElevenLabs settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElevenLabsSettings {
    /// REST base URL (the simulator's in sandbox mode).
    #[serde(default = "elevenlabs_api_base")]
    pub api_base: String,
    /// API key.
    pub api_key: Option<Secret>,
    /// Webhook HMAC secret.
    pub webhook_secret: Option<Secret>,
}

impl Default for ElevenLabsSettings {
    fn default() -> Self {
        ElevenLabsSettings { api_base: elevenlabs_api_base(), api_key: None, webhook_secret: None }
    }
}

fn sheets_api_base() -> String {
    "https://sheets.googleapis.com".into()
}

fn drive_api_base() -> String {
    "https://www.googleapis.com".into()
}

/// Google (Sheets sync) settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GoogleSettings {
    /// Sheets REST base URL (the simulator's in sandbox mode).
    #[serde(default = "sheets_api_base")]
    pub sheets_api_base: String,
    /// Drive REST base URL.
    #[serde(default = "drive_api_base")]
    pub drive_api_base: String,
    /// Service-account key file (GOOGLE_APPLICATION_CREDENTIALS).
    pub credentials_file: Option<PathBuf>,
    /// The key file's JSON inline (for secret stores that hand out values, not files).
    pub credentials_json: Option<Secret>,
}

impl Default for GoogleSettings {
    fn default() -> Self {
        GoogleSettings {
            sheets_api_base: sheets_api_base(),
            drive_api_base: drive_api_base(),
            credentials_file: None,
            credentials_json: None,
        }
    }
}

impl GoogleSettings {
    /// The Sheets client these settings configure, or `None` when no service
    /// account is configured. (Here, not in the client: the client knows
    /// nothing of settings, and settings use the client's key parser.)
    pub fn sheets_client(
        &self,
        opts: &crate::integrations::ClientOptions,
    ) -> Result<Option<crate::integrations::google::SheetsClient>, ConfigError> {
        use crate::integrations::google::{SCOPE_DRIVE_READONLY, SCOPE_SPREADSHEETS, SheetsClient, TokenSource};
        let Some(key) = self.service_account()? else { return Ok(None) };
        let tokens = TokenSource::new(key, &[SCOPE_SPREADSHEETS, SCOPE_DRIVE_READONLY], opts)
            .map_err(|e| err("google.credentials_file", e.to_string()))?;
        Ok(Some(SheetsClient::new(&self.sheets_api_base, &self.drive_api_base, std::sync::Arc::new(tokens), opts)))
    }

    /// The service-account key, if one is configured; a bad file fails with the key name and reason.
    pub fn service_account(&self) -> Result<Option<crate::integrations::google::ServiceAccountKey>, ConfigError> {
        use crate::integrations::google::ServiceAccountKey;
        match (&self.credentials_file, &self.credentials_json) {
            (Some(_), Some(_)) => {
                Err(err("google.credentials_json", "set either credentials_file or credentials_json, not both"))
            }
            (Some(path), None) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| err("google.credentials_file", format!("cannot read {}: {e}", path.display())))?;
                ServiceAccountKey::from_json(&text)
                    .map(Some)
                    .map_err(|e| err("google.credentials_file", format!("{}: {e}", path.display())))
            }
            (None, Some(json)) => {
                ServiceAccountKey::from_json(json.expose()).map(Some).map_err(|e| err("google.credentials_json", e))
            }
            (None, None) => Ok(None),
        }
    }
}

fn default_region() -> String {
    "US".into()
}

/// Contact settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactSettings {
    /// ISO region for phone numbers written without a country code.
    #[serde(default = "default_region")]
    pub default_region: String,
}

impl Default for ContactSettings {
    fn default() -> Self {
        ContactSettings { default_region: default_region() }
    }
}

/// Dialer settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DialerSettings {
    /// Run the dialer in `serve`.
    pub enabled: bool,
    /// Time between steps.
    pub interval_ms: u64,
    /// How long a claim is held before another instance may recover it.
    pub lease_secs: i64,
    /// An in-flight call not heard from for this long is looked up at its
    /// provider (Twilio `GET Calls/{sid}`, ElevenLabs `GET conversations/{id}`).
    pub call_quiet_secs: i64,
}

impl Default for DialerSettings {
    fn default() -> Self {
        DialerSettings { enabled: true, interval_ms: 1000, lease_secs: 60, call_quiet_secs: 600 }
    }
}

/// Connection limits of the HTTP listener (see `http::server`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Seconds a client has to send a complete request head (also the keep-alive idle limit).
    pub header_read_timeout_secs: u64,
    /// Seconds with no byte moving, while the server waits on the client, before the connection is closed.
    pub idle_timeout_secs: u64,
    /// Connections served at once; more wait in the accept backlog.
    pub max_connections: usize,
    /// Longest request URI (path and query) answered; longer gets 414.
    pub max_uri_bytes: usize,
    /// Largest request head (all header names and values); larger gets 431.
    pub max_header_bytes: usize,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            header_read_timeout_secs: 15,
            idle_timeout_secs: 60,
            max_connections: 1024,
            max_uri_bytes: 8192,
            max_header_bytes: 32768,
        }
    }
}

/// Where `/metrics` is served.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsSettings {
    /// A separate address for `/metrics` without a token (e.g. a private
    /// interface Prometheus scrapes). Unset: `/metrics` is on the main
    /// listener and needs an API bearer token like `/api/v1`.
    pub listen: Option<SocketAddr>,
}

/// Contact import limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImportSettings {
    /// Largest upload accepted by `POST /contacts/import` (bytes); larger gets 413.
    pub max_upload_bytes: u64,
    /// Largest single CSV field or JSON line (bytes); a larger one is a row error naming its line.
    pub max_field_bytes: usize,
    /// How long the request waits for an import to finish before answering
    /// `202 Accepted` with the import's id (the import goes on either way).
    pub sync_wait_ms: u64,
    /// An import whose heartbeat is older than this is taken as dead (its
    /// process crashed) and rolled back.
    pub stale_after_secs: i64,
}

impl Default for ImportSettings {
    fn default() -> Self {
        ImportSettings {
            max_upload_bytes: 256 * 1024 * 1024,
            max_field_bytes: 64 * 1024,
            sync_wait_ms: 10_000,
            stale_after_secs: 60,
        }
    }
}

/// Google Sheets sync (runs in `serve` when a Google service account is configured).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SheetsSettings {
    /// Run the sync job in `serve` (`SWITCHBOARD_SHEETS__ENABLED`).
    pub enabled: bool,
    /// How often the job looks for links whose poll is due (seconds); each
    /// link's own `poll_secs` decides how often it is synced.
    pub tick_secs: u64,
    /// Sheets and Drive requests this instance may send per minute (Google
    /// allows about 60 per user; with several instances, divide it).
    pub requests_per_minute: u32,
    /// Lifetime of a link's sync lease (seconds), renewed every third while a
    /// sync runs: how long a crashed instance's link waits before another
    /// instance takes it over.
    pub lease_secs: u64,
}

impl Default for SheetsSettings {
    fn default() -> Self {
        SheetsSettings { enabled: true, tick_secs: 5, requests_per_minute: 50, lease_secs: 120 }
    }
}

/// The ElevenLabs conversation reconciler (runs in `serve` when an ElevenLabs API key is configured).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReconcilerSettings {
    /// Run it (`SWITCHBOARD_RECONCILER__ENABLED`).
    pub enabled: bool,
    /// Seconds between runs.
    pub every_secs: u64,
    /// How far back each run looks (seconds): conversations started since then
    /// that we lack or hold as not final are fetched.
    pub lookback_secs: u64,
}

impl Default for ReconcilerSettings {
    fn default() -> Self {
        ReconcilerSettings { enabled: true, every_secs: 300, lookback_secs: 86_400 }
    }
}

/// The read cache (`[cache]`): Redis when `REDIS_URL` is set, in-process otherwise.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Cache reads at all (`SWITCHBOARD_CACHE__ENABLED`).
    pub enabled: bool,
    /// Dashboard summary TTL (ms).
    pub summary_ttl_ms: u64,
    /// Rollup reads (time series, campaign performance) TTL (ms); a rollup rebuild invalidates them sooner.
    pub rollups_ttl_ms: u64,
    /// Call lookups TTL (ms); a webhook for the call evicts it sooner.
    pub call_ttl_ms: u64,
    /// Entries the in-process cache holds.
    pub max_entries: u64,
    /// Longest wait for Redis per operation (ms) before serving from the store.
    pub timeout_ms: u64,
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            enabled: true,
            summary_ttl_ms: 2_000,
            rollups_ttl_ms: 60_000,
            call_ttl_ms: 30_000,
            max_entries: 10_000,
            timeout_ms: 250,
        }
    }
}

/// Where the live feed's call and enrollment events come from (`[live] source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LiveSource {
    /// Our own writes, through the store decorator (every backend).
    #[default]
    Writes,
    /// The store's change feed (MongoDB replica set): every committed
    /// change, whoever wrote it, followed by one leased watcher that resumes
    /// from its saved token. Several instances then need `REDIS_URL` (the
    /// watcher publishes through Redis to every instance).
    ChangeStream,
}

/// The live feed (`[live]`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LiveSettings {
    /// `writes` (default) or `change_stream` (`SWITCHBOARD_LIVE__SOURCE`).
    pub source: LiveSource,
}

/// Search-index upkeep (`[search_index]`): the leased job that merges the
/// SQLite full-text index's segments (a no-op on MongoDB).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchIndexSettings {
    /// Seconds between runs (`SWITCHBOARD_SEARCH_INDEX__EVERY_SECS`).
    pub every_secs: u64,
    /// Lease of the job (seconds; renewed while a run lasts): how long the
    /// upkeep waits after an instance dies mid-run before another takes over.
    pub lease_secs: u64,
    /// FTS5 pages merged per step, one short write each (webhooks interleave).
    pub pages_per_step: u32,
    /// Milliseconds between steps (0: none), to leave writers more room.
    pub pause_ms: u64,
}

impl Default for SearchIndexSettings {
    fn default() -> Self {
        SearchIndexSettings { every_secs: 60, lease_secs: 600, pages_per_step: 200, pause_ms: 0 }
    }
}

/// Analytics rollups (`[analytics]`): the job that keeps `analytics` in step
/// with the calls, and the time zone of day buckets.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalyticsSettings {
    /// Run the rollup jobs in `serve` (`SWITCHBOARD_ANALYTICS__ENABLED`).
    pub enabled: bool,
    /// IANA zone of day buckets (`SWITCHBOARD_ANALYTICS__REPORTING_TZ`), e.g. `America/New_York`.
    pub reporting_tz: String,
    /// Milliseconds between incremental runs (changed calls since the watermark).
    pub tick_ms: u64,
    /// Seconds re-read behind the watermark on every run (writes stamped just
    /// before a run but committed after it, clock skew between instances).
    pub overlap_secs: u64,
    /// Seconds between repair runs, which rebuild recent buckets whole.
    pub repair_every_secs: u64,
    /// Hours back a repair run rebuilds.
    pub repair_hours: u32,
    /// Lease of both rollup jobs (seconds; renewed while a run lasts): how
    /// long rollups wait after an instance dies mid-run before another takes over.
    pub lease_secs: u64,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        AnalyticsSettings {
            enabled: true,
            reporting_tz: "UTC".into(),
            tick_ms: 1000,
            overlap_secs: 5,
            repair_every_secs: 600,
            repair_hours: 48,
            lease_secs: 30,
        }
    }
}

impl AnalyticsSettings {
    /// The reporting zone (checked by `Settings::validate`).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.reporting_tz.parse().unwrap_or(chrono_tz::UTC)
    }
}

/// Recording retention (`[recordings]`): completed recordings older than
/// `retention_days` are deleted at the provider and marked deleted here.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordingsSettings {
    /// Days after which a recording is deleted (`SWITCHBOARD_RECORDINGS__RETENTION_DAYS`); unset: never (the default).
    pub retention_days: Option<u32>,
    /// Only report what would be deleted (the default); set false after reading the report.
    pub dry_run: bool,
    /// Seconds between runs.
    pub every_secs: u64,
}

impl Default for RecordingsSettings {
    fn default() -> Self {
        RecordingsSettings { retention_days: None, dry_run: true, every_secs: 3600 }
    }
}

/// Conversation analysis: product and competitor names to spot, per ElevenLabs
/// agent (`[analysis.gazetteers.agent_…]`) and for every agent (`"*"`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnalysisSettings {
    /// Agent id (or `*`) → names.
    pub gazetteers: std::collections::BTreeMap<String, GazetteerSettings>,
}

/// Names the analyser marks as entities (whole words, case-insensitive).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GazetteerSettings {
    /// Our products, plans and offers.
    pub products: Vec<String>,
    /// Competitors and their products.
    pub competitors: Vec<String>,
}

impl AnalysisSettings {
    /// The gazetteers of `agent`: its own names plus the `*` ones.
    pub fn gazetteers_for(&self, agent: Option<&str>) -> switchboard_analysis::Gazetteers {
        let mut g = switchboard_analysis::Gazetteers::default();
        for key in ["*"].into_iter().chain(agent) {
            if let Some(s) = self.gazetteers.get(key) {
                g.products.extend(s.products.iter().cloned());
                g.competitors.extend(s.competitors.iter().cloned());
            }
        }
        g
    }
}

/// Redis settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisSettings {
    /// URL (may carry a password).
    pub url: Option<Secret>,
}

/// All settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Profile name (`dev`, `test`, `prod`).
    #[serde(default)]
    pub env: String,
    /// The address the HTTP server binds (`SWITCHBOARD_LISTEN`).
    pub listen: SocketAddr,
    /// Public base URL (what Twilio signs).
    pub public_base_url: Option<String>,
    /// API bearer tokens.
    pub api_tokens: Vec<Secret>,
    /// Human-readable lines or one JSON object per line (prod).
    pub log_format: LogFormat,
    /// Migrate on `serve`.
    pub migrate_on_start: bool,
    /// Seconds a request may run before it is answered 503 `request_timeout`.
    pub request_timeout_secs: u64,
    /// Largest JSON body of the API (bytes; 413 past it). Imports have their own limit.
    pub body_limit_bytes: usize,
    /// Largest provider webhook body (bytes); ElevenLabs audio webhooks are large.
    pub webhook_body_limit_bytes: usize,
    /// ElevenLabs signature age tolerance.
    pub elevenlabs_signature_tolerance_secs: i64,
    /// Which store, and how it is reached.
    pub storage: StorageSettings,
    /// Twilio credentials (the auth token verifies callbacks) and REST base URL.
    #[serde(default)]
    pub twilio: TwilioSettings,
    /// ElevenLabs API key, webhook secret and REST base URL.
    #[serde(default)]
    pub elevenlabs: ElevenLabsSettings,
    /// Redis, for cache and cross-instance fan-out (later phases).
    #[serde(default)]
    pub redis: RedisSettings,
    /// The Google service account and Sheets/Drive base URLs.
    #[serde(default)]
    pub google: GoogleSettings,
    /// How contact phone numbers are read.
    #[serde(default)]
    pub contacts: ContactSettings,
    /// Whether this instance dials, how often, and its leases and quiet period.
    #[serde(default)]
    pub dialer: DialerSettings,
    /// HTTP connection limits.
    #[serde(default)]
    pub http: HttpSettings,
    /// Metrics endpoint.
    #[serde(default)]
    pub metrics: MetricsSettings,
    /// Contact import.
    #[serde(default)]
    pub import: ImportSettings,
    /// Google Sheets sync.
    #[serde(default)]
    pub sheets: SheetsSettings,
    /// ElevenLabs conversation reconciler.
    #[serde(default)]
    pub reconciler: ReconcilerSettings,
    /// Conversation analysis (gazetteers per agent).
    #[serde(default)]
    pub analysis: AnalysisSettings,
    /// Recording retention (off unless `retention_days` is set; dry run first).
    #[serde(default)]
    pub recordings: RecordingsSettings,
    /// Analytics rollups and their reporting time zone.
    #[serde(default)]
    pub analytics: AnalyticsSettings,
    /// Search-index upkeep.
    #[serde(default)]
    pub search_index: SearchIndexSettings,
    /// The read cache.
    #[serde(default)]
    pub cache: CacheSettings,
    /// The live feed.
    #[serde(default)]
    pub live: LiveSettings,
}

/// A setting is missing or invalid.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {key}: {reason}")]
pub struct ConfigError {
    /// The setting (and the variable that sets it, where there is one).
    pub key: String,
    /// What is wrong.
    pub reason: String,
}

fn err(key: &str, reason: impl Into<String>) -> ConfigError {
    let env = WELL_KNOWN_ENV.iter().find(|(_, k)| *k == key).map(|(e, _)| *e);
    let key = match env {
        Some(e) => format!("{e} ({key})"),
        None => format!("SWITCHBOARD_{} ({key})", key.to_uppercase().replace('.', "__")),
    };
    ConfigError { key, reason: reason.into() }
}

/// The shortest accepted HMAC secret or API token. Twilio auth tokens are 32
/// hex characters and ElevenLabs webhook secrets longer; anything shorter than
/// this is a placeholder or a truncated paste.
pub const MIN_SECRET_LEN: usize = 16;

fn check_secret(key: &str, value: &str, min: usize) -> Result<(), ConfigError> {
    if value.trim().is_empty() {
        return Err(err(key, "is set but empty; unset it or give the real value"));
    }
    if value.trim() != value {
        return Err(err(key, "has leading or trailing whitespace"));
    }
    if value.chars().count() < min {
        return Err(err(key, format!("must be at least {min} characters")));
    }
    Ok(())
}

/// The figment for a profile, without CLI overrides (exposed for tests).
pub fn figment() -> Figment {
    let profile = std::env::var("SWITCHBOARD_ENV").unwrap_or_else(|_| "dev".into());
    let mut f = Figment::from(Toml::string(DEFAULTS).nested()).select(Profile::new(&profile));
    if let Ok(path) = std::env::var("SWITCHBOARD_CONFIG") {
        f = f.merge(Toml::file_exact(path).nested());
    }
    let well_known: Vec<&str> = WELL_KNOWN_ENV.iter().map(|(e, _)| *e).collect();
    // Variables read elsewhere (profile, file path) or through the well-known table are not settings keys.
    let not_settings = ["env", "config", "sqlite_path"];
    f.merge(
        Env::prefixed("SWITCHBOARD_")
            .split("__")
            .filter(move |k| !not_settings.iter().any(|n| k.as_str().eq_ignore_ascii_case(n))),
    )
    .merge(Env::raw().only(&well_known).map(|k| {
        WELL_KNOWN_ENV
            .iter()
            .find(|(e, _)| k.as_str().eq_ignore_ascii_case(e))
            .map(|(_, key)| (*key).into())
            .unwrap_or_else(|| k.into())
    }))
    .merge(Serialized::default("env", profile))
}

/// The embedded defaults of the `test` profile, read from no file and no environment variable.
pub fn embedded_defaults() -> Settings {
    let f = Figment::from(Toml::string(DEFAULTS).nested())
        .select(Profile::new("test"))
        .merge(Serialized::default("env", "test"));
    from_figment(f).expect("the embedded defaults are valid")
}

/// Loads and validates settings; `overrides` are CLI flags as `key = value` pairs.
pub fn load(overrides: &[(&str, serde_json::Value)]) -> Result<Settings, ConfigError> {
    let mut f = figment();
    // Typed values: `--no-migrate` sets a boolean, not the string "false".
    for (k, v) in overrides {
        f = f.merge(Serialized::default(k, v.clone()));
    }
    from_figment(f)
}

/// Extracts and validates settings from a figment.
pub fn from_figment(f: Figment) -> Result<Settings, ConfigError> {
    // SWITCHBOARD_API_TOKENS is a comma-separated list; figment would read it as one string.
    let f = match f.find_value("api_tokens") {
        Ok(figment::value::Value::String(_, s)) => {
            let list: Vec<String> = s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
            f.merge(Serialized::default("api_tokens", list))
        }
        _ => f,
    };
    let settings: Settings = f.extract().map_err(|e| {
        let key = e.path.join(".");
        let mut reason = e.kind.to_string();
        if let Some(md) = &e.metadata {
            reason = format!("{reason} (from {})", md.name);
        }
        err(if key.is_empty() { "settings" } else { &key }, reason)
    })?;
    settings.validate()?;
    Ok(settings)
}

impl Settings {
    /// Checks what types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["dev", "test", "prod"].contains(&self.env.as_str()) {
            return Err(ConfigError {
                key: "SWITCHBOARD_ENV".into(),
                reason: format!("`{}` is not one of dev, test, prod", self.env),
            });
        }
        if let Some(uri) = &self.storage.mongodb_uri {
            let u = uri.expose();
            if !(u.starts_with("mongodb://") || u.starts_with("mongodb+srv://")) {
                return Err(err("storage.mongodb_uri", "must start with mongodb:// or mongodb+srv://"));
            }
        }
        if self.storage.mongodb_db.is_empty() || self.storage.mongodb_db.contains(['/', '\\', '.', ' ', '"', '$']) {
            return Err(err("storage.mongodb_db", "must be a non-empty name without / \\ . space \" $"));
        }
        if let (Some(min), Some(max)) = (self.storage.min_pool_size, self.storage.max_pool_size)
            && min > max
        {
            return Err(err("storage.min_pool_size", format!("{min} is larger than max_pool_size {max}")));
        }
        if self.storage.max_pool_size == Some(0) {
            return Err(err("storage.max_pool_size", "must be at least 1"));
        }
        if self.analytics.reporting_tz.parse::<chrono_tz::Tz>().is_err() {
            return Err(err(
                "analytics.reporting_tz",
                format!("`{}` is not an IANA time zone (e.g. UTC, America/New_York)", self.analytics.reporting_tz),
            ));
        }
        if self.analytics.tick_ms == 0
            || self.analytics.repair_every_secs == 0
            || self.analytics.repair_hours == 0
            || self.analytics.lease_secs == 0
        {
            return Err(err("analytics", "tick_ms, repair_every_secs, repair_hours and lease_secs must be at least 1"));
        }
        let si = &self.search_index;
        // Upper bounds: the seconds become chrono durations (a day is plenty).
        if !(1..=86_400).contains(&si.every_secs)
            || !(5..=86_400).contains(&si.lease_secs)
            || !(1..=100_000).contains(&si.pages_per_step)
            || si.pause_ms > 60_000
        {
            return Err(err(
                "search_index",
                "every_secs must be 1 to 86400, lease_secs 5 to 86400, pages_per_step 1 to 100000 and pause_ms at most 60000",
            ));
        }
        if self.recordings.retention_days == Some(0) {
            return Err(err("recordings.retention_days", "must be at least 1 (unset it to keep recordings forever)"));
        }
        if let Some(url) = &self.public_base_url {
            let ok = (url.starts_with("https://") || url.starts_with("http://"))
                && url.split("://").nth(1).is_some_and(|rest| !rest.is_empty() && !rest.contains(['?', '#']));
            if !ok {
                return Err(err("public_base_url", format!("`{url}` is not an http(s) URL without query or fragment")));
            }
        }
        if let Some(sid) = &self.twilio.account_sid
            && !(sid.starts_with("AC") && sid.len() == 34)
        {
            return Err(err("twilio.account_sid", "must be `AC` followed by 32 characters"));
        }
        self.validate_secrets()?;
        if self.env == "prod" {
            if self.api_tokens.is_empty() {
                return Err(err("api_tokens", "at least one API token is required in prod"));
            }
            if self.public_base_url.is_none() {
                return Err(err("public_base_url", "required in prod: Twilio signatures are computed over it"));
            }
            if self.twilio.auth_token.is_none() {
                return Err(err("twilio.auth_token", "required in prod to verify Twilio webhooks"));
            }
        }
        for (key, url) in [
            ("google.sheets_api_base", &self.google.sheets_api_base),
            ("google.drive_api_base", &self.google.drive_api_base),
            ("twilio.api_base", &self.twilio.api_base),
            ("elevenlabs.api_base", &self.elevenlabs.api_base),
        ] {
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(err(key, format!("`{url}` is not an http(s) URL")));
            }
        }
        self.google.service_account()?;
        if self.contacts.default_region.parse::<phonenumber::country::Id>().is_err() {
            return Err(err(
                "contacts.default_region",
                format!("`{}` is not an ISO region code such as US or GB", self.contacts.default_region),
            ));
        }
        if self.http.header_read_timeout_secs == 0 || self.http.idle_timeout_secs == 0 {
            return Err(err(
                "http.header_read_timeout_secs",
                "header_read_timeout_secs and idle_timeout_secs must be positive",
            ));
        }
        if self.http.idle_timeout_secs <= self.request_timeout_secs {
            return Err(err(
                "http.idle_timeout_secs",
                format!(
                    "must be longer than request_timeout_secs ({}), so a working handler is never cut",
                    self.request_timeout_secs
                ),
            ));
        }
        if self.http.max_connections == 0 {
            return Err(err("http.max_connections", "must be at least 1"));
        }
        if self.import.sync_wait_ms >= self.request_timeout_secs.saturating_mul(1000) {
            return Err(err(
                "import.sync_wait_ms",
                "must be shorter than request_timeout_secs, so a long import answers 202, not a timeout",
            ));
        }
        if self.import.max_field_bytes < 256 || self.import.max_upload_bytes < 1024 {
            return Err(err(
                "import.max_field_bytes",
                "max_field_bytes must be at least 256 and max_upload_bytes at least 1024",
            ));
        }
        if self.metrics.listen.is_some_and(|m| m == self.listen) {
            return Err(err(
                "metrics.listen",
                "must differ from listen (leave it unset to serve /metrics there behind the token)",
            ));
        }
        if self.dialer.call_quiet_secs < 30 {
            return Err(err("dialer.call_quiet_secs", "must be at least 30 seconds"));
        }
        if self.dialer.interval_ms == 0 || self.dialer.lease_secs < 5 {
            return Err(err("dialer.interval_ms", "interval_ms must be positive and lease_secs at least 5"));
        }
        Ok(())
    }

    /// An empty secret is no secret: every secret that is set must be non-empty,
    /// free of surrounding whitespace (a paste mistake that would make every
    /// signature fail or, trimmed to nothing, verify an empty HMAC key) and, for
    /// the ones that key an HMAC or guard the API, at least [`MIN_SECRET_LEN`]
    /// characters. Checked in every profile.
    fn validate_secrets(&self) -> Result<(), ConfigError> {
        let keyed: [(&str, Option<&Secret>, usize); 6] = [
            ("twilio.auth_token", self.twilio.auth_token.as_ref(), MIN_SECRET_LEN),
            ("elevenlabs.webhook_secret", self.elevenlabs.webhook_secret.as_ref(), MIN_SECRET_LEN),
            ("elevenlabs.api_key", self.elevenlabs.api_key.as_ref(), 1),
            ("storage.mongodb_uri", self.storage.mongodb_uri.as_ref(), 1),
            ("redis.url", self.redis.url.as_ref(), 1),
            ("google.credentials_json", self.google.credentials_json.as_ref(), 1),
        ];
        for (key, secret, min) in keyed {
            if let Some(s) = secret {
                check_secret(key, s.expose(), min)?;
            }
        }
        for t in &self.api_tokens {
            check_secret("api_tokens", t.expose(), MIN_SECRET_LEN)?;
        }
        Ok(())
    }

    /// The base URL Twilio signs: `PUBLIC_BASE_URL`, or `http://{listen}` in dev.
    pub fn public_base(&self) -> String {
        self.public_base_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.listen))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
// figment's Jail closures return figment::Error, which is large by design.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn embedded_defaults_ignore_the_environment() {
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_LISTEN", "not-an-address");
            let s = embedded_defaults();
            assert_eq!(s.env, "test");
            assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn defaults_select_sqlite_and_the_dev_profile() {
        Jail::expect_with(|_| {
            let s = load(&[]).unwrap();
            assert_eq!(s.env, "dev");
            assert!(s.storage.mongodb_uri.is_none());
            assert_eq!(s.storage.sqlite_path, PathBuf::from("./data/switchboard.db"));
            assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
            Ok(())
        });
    }

    #[test]
    fn well_known_names_and_prefixed_nesting_work() {
        Jail::expect_with(|j| {
            j.set_env("MONGODB_URI", "mongodb://db1:27017,db2:27017/?replicaSet=rs0");
            j.set_env("MONGODB_DB", "calls");
            j.set_env("TWILIO_AUTH_TOKEN", "f00dfacecafebeef0123456789abcdef");
            j.set_env("SWITCHBOARD_API_TOKENS", "token-aaaaaaaaaaaaaaaa, token-bbbbbbbbbbbbbbbb");
            j.set_env("SWITCHBOARD_STORAGE__MAX_POOL_SIZE", "64");
            j.set_env("SWITCHBOARD_LISTEN", "0.0.0.0:9000");
            let s = load(&[]).unwrap();
            assert_eq!(s.storage.mongodb_db, "calls");
            assert_eq!(s.storage.max_pool_size, Some(64));
            assert_eq!(s.api_tokens.len(), 2);
            assert_eq!(s.listen.port(), 9000);
            assert_eq!(s.twilio.auth_token.as_ref().unwrap().expose(), "f00dfacecafebeef0123456789abcdef");
            Ok(())
        });
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        Jail::expect_with(|j| {
            j.set_env("TWILIO_AUTH_TOKEN", "supersecretvalue123");
            j.set_env("MONGODB_URI", "mongodb://user:hunter2pass@db:27017");
            let s = load(&[]).unwrap();
            let dbg = format!("{s:?}");
            assert!(!dbg.contains("supersecretvalue123") && !dbg.contains("hunter2pass"), "{dbg}");
            Ok(())
        });
    }

    #[test]
    fn search_index_settings_are_read_and_checked() {
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_SEARCH_INDEX__PAGES_PER_STEP", "1");
            j.set_env("SWITCHBOARD_SEARCH_INDEX__PAUSE_MS", "20");
            let s = load(&[]).unwrap();
            assert_eq!((s.search_index.every_secs, s.search_index.lease_secs), (60, 600));
            assert_eq!((s.search_index.pages_per_step, s.search_index.pause_ms), (1, 20));
            j.set_env("SWITCHBOARD_SEARCH_INDEX__PAGES_PER_STEP", "0");
            let e = load(&[]).unwrap_err();
            assert!(e.key.contains("search_index") && e.reason.contains("pages_per_step"), "{e}");
            j.set_env("SWITCHBOARD_SEARCH_INDEX__PAGES_PER_STEP", "200");
            j.set_env("SWITCHBOARD_SEARCH_INDEX__LEASE_SECS", "2");
            assert!(load(&[]).unwrap_err().reason.contains("lease_secs"));
            // Past what a chrono duration holds once in milliseconds: refused, not a panic.
            j.set_env("SWITCHBOARD_SEARCH_INDEX__LEASE_SECS", "600");
            j.set_env("SWITCHBOARD_SEARCH_INDEX__EVERY_SECS", "18446744073709551615");
            assert!(load(&[]).unwrap_err().key.contains("search_index"));
            Ok(())
        });
    }

    #[test]
    fn bad_settings_name_the_key_and_the_reason() {
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_LISTEN", "not-an-address");
            let e = load(&[]).unwrap_err();
            assert!(e.key.contains("SWITCHBOARD_LISTEN") && e.key.contains("listen"), "{e}");
            Ok(())
        });
        Jail::expect_with(|j| {
            j.set_env("MONGODB_URI", "postgres://x");
            let e = load(&[]).unwrap_err();
            assert!(e.key.starts_with("MONGODB_URI") && e.reason.contains("mongodb://"), "{e}");
            Ok(())
        });
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_ENV", "prod");
            let e = load(&[]).unwrap_err();
            assert!(e.key.contains("SWITCHBOARD_API_TOKENS"), "{e}");
            Ok(())
        });
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_ENV", "staging");
            let e = load(&[]).unwrap_err();
            assert!(e.to_string().contains("SWITCHBOARD_ENV") && e.reason.contains("staging"), "{e}");
            Ok(())
        });
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_STORAGE__MIN_POOL_SIZE", "10");
            j.set_env("SWITCHBOARD_STORAGE__MAX_POOL_SIZE", "5");
            let e = load(&[]).unwrap_err();
            assert!(e.key.contains("min_pool_size"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn empty_or_padded_secrets_are_refused_in_every_profile() {
        for profile in ["dev", "test", "prod"] {
            for (var, value) in [
                ("TWILIO_AUTH_TOKEN", ""),
                ("TWILIO_AUTH_TOKEN", "   "),
                ("TWILIO_AUTH_TOKEN", "short"),
                ("ELEVENLABS_WEBHOOK_SECRET", ""),
                ("ELEVENLABS_WEBHOOK_SECRET", "\t"),
                ("ELEVENLABS_API_KEY", " "),
                ("MONGODB_URI", ""),
            ] {
                Jail::expect_with(|j| {
                    j.set_env("SWITCHBOARD_ENV", profile);
                    if profile == "prod" {
                        j.set_env("SWITCHBOARD_API_TOKENS", "token-aaaaaaaaaaaaaaaa");
                        j.set_env("PUBLIC_BASE_URL", "https://sb.example.com");
                        if var != "TWILIO_AUTH_TOKEN" {
                            j.set_env("TWILIO_AUTH_TOKEN", "f00dfacecafebeef0123456789abcdef");
                        }
                    }
                    j.set_env(var, value);
                    let e = load(&[]).expect_err(&format!("{profile}: {var}={value:?} must be refused"));
                    assert!(e.key.starts_with(var), "{profile}: {e}");
                    Ok(())
                });
            }
        }
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_ENV", "prod");
            j.set_env("SWITCHBOARD_API_TOKENS", " , ");
            j.set_env("PUBLIC_BASE_URL", "https://sb.example.com");
            j.set_env("TWILIO_AUTH_TOKEN", "f00dfacecafebeef0123456789abcdef");
            let e = load(&[]).unwrap_err();
            assert!(e.key.contains("SWITCHBOARD_API_TOKENS"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn a_padded_secret_in_a_file_is_refused() {
        Jail::expect_with(|j| {
            j.create_file("sb.toml", "[default.elevenlabs]\nwebhook_secret = \" wsec_0123456789abcdef \"\n")?;
            j.set_env("SWITCHBOARD_CONFIG", "sb.toml");
            let e = load(&[]).unwrap_err();
            assert!(e.key.starts_with("ELEVENLABS_WEBHOOK_SECRET") && e.reason.contains("whitespace"), "{e}");
            Ok(())
        });
    }

    #[test]
    fn cli_overrides_win() {
        Jail::expect_with(|j| {
            j.set_env("SWITCHBOARD_LISTEN", "127.0.0.1:9000");
            let s = load(&[("listen", "127.0.0.1:9100".into())]).unwrap();
            assert_eq!(s.listen.port(), 9100);
            // `serve --no-migrate` sets a boolean, not the string "false".
            let s = load(&[("migrate_on_start", false.into())]).unwrap();
            assert!(!s.migrate_on_start);
            Ok(())
        });
    }
}
