//! The read cache: Redis when `REDIS_URL` is set, an in-process `moka`
//! cache otherwise, behind one interface ([`Cache`]).
//!
//! - **TTL per kind** (`[cache]`): dashboard summary (seconds), rollup reads
//!   (time series, campaign performance), call lookups.
//! - **Invalidation by the same events that change the data**: a call
//!   written through a webhook evicts that call's key before the webhook is
//!   acknowledged; the rollup job bumps the `rollups` generation after it
//!   rebuilds buckets, and every rollup-backed key carries the generation it
//!   was computed at, so a rebuild makes all of them unreachable at once
//!   (Redis `INCR`, shared by every instance; in-process, per instance).
//! - **Read-your-writes**: an API write evicts before it answers, so the
//!   writer's next read recomputes.
//! - **Stampede protection**: one computation per key at a time in this
//!   instance (single flight); the others wait for it and read its result.
//! - **Redis down**: every cache operation has a short timeout; a failure is
//!   logged, counted, shown in `/readyz` details, and the request is served
//!   from the store. Requests never fail because of the cache.
//!
//! Hits and misses: `switchboard_cache_requests_total{kind, result}`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::CacheSettings;

/// Metric: cache lookups by kind and result (`hit`, `miss`, `error` (Redis down), `bypass` (cache off)).
pub const REQUESTS: &str = "switchboard_cache_requests_total";

/// What is cached (its TTL and metric label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `GET /dashboard/summary`.
    Summary,
    /// Rollup reads: time series, campaign performance.
    Rollups,
    /// `GET /calls/{id}`.
    Call,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Summary => "summary",
            Kind::Rollups => "rollups",
            Kind::Call => "call",
        }
    }
}

#[derive(Clone)]
struct Entry {
    bytes: Arc<Vec<u8>>,
    expires: Instant,
}

enum Backend {
    /// Caching off (`cache.enabled = false`): every read computes.
    Off,
    Memory(moka::future::Cache<String, Entry>),
    /// Redis; `None` until the first connection (a background task retries).
    Redis(std::sync::RwLock<Option<redis::aio::ConnectionManager>>),
}

struct Inner {
    backend: Backend,
    settings: CacheSettings,
    flights: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// In-process rollup generation (the memory backend's; Redis keeps its own).
    generation: AtomicU64,
    /// The last Redis operation failed.
    degraded: AtomicBool,
}

/// The cache every handler shares.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

/// Generation key of rollup-backed entries.
const GENERATION_KEY: &str = "sb:gen:rollups";

impl Cache {
    /// No caching.
    pub fn off(settings: CacheSettings) -> Cache {
        Cache::with(Backend::Off, settings)
    }

    /// The in-process cache.
    pub fn memory(settings: CacheSettings) -> Cache {
        let m = moka::future::Cache::builder().max_capacity(settings.max_entries).build();
        Cache::with(Backend::Memory(m), settings)
    }

    /// Redis at `url` (a malformed URL is an error). A Redis that is down at
    /// start gives a cache that reports itself degraded (reads go to the
    /// store) while a background task keeps connecting; once connected the
    /// connection manager reconnects on its own.
    pub fn redis(url: &str, settings: CacheSettings) -> anyhow::Result<Cache> {
        let client = redis::Client::open(url).map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
        let cache = Cache::with(Backend::Redis(std::sync::RwLock::new(None)), settings);
        cache.inner.degraded.store(true, Ordering::Relaxed);
        let weak = Arc::downgrade(&cache.inner);
        tokio::spawn(async move {
            let mut logged = false;
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let timeout = Duration::from_millis(inner.settings.timeout_ms.max(1));
                let cfg = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout * 4))
                    .set_response_timeout(Some(timeout))
                    .set_number_of_retries(1);
                match redis::aio::ConnectionManager::new_with_config(client.clone(), cfg).await {
                    Ok(m) => {
                        if let Backend::Redis(slot) = &inner.backend {
                            *slot.write().expect("redis slot") = Some(m);
                        }
                        inner.degraded.store(false, Ordering::Relaxed);
                        tracing::info!("cache connected to Redis");
                        return;
                    }
                    Err(e) => {
                        if !logged {
                            tracing::warn!(error = %e, "cannot connect to Redis (REDIS_URL); serving from the store and retrying");
                            logged = true;
                        }
                    }
                }
                drop(inner);
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        });
        Ok(cache)
    }

    /// The cache the settings ask for.
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Cache> {
        let c = settings.cache.clone();
        Ok(match (&settings.redis.url, c.enabled) {
            (_, false) => Cache::off(c),
            (Some(url), true) => Cache::redis(url.expose(), c)?,
            (None, true) => Cache::memory(c),
        })
    }

    fn with(backend: Backend, settings: CacheSettings) -> Cache {
        Cache {
            inner: Arc::new(Inner {
                backend,
                settings,
                flights: std::sync::Mutex::new(HashMap::new()),
                generation: AtomicU64::new(0),
                degraded: AtomicBool::new(false),
            }),
        }
    }

    fn conn(&self) -> Option<redis::aio::ConnectionManager> {
        match &self.inner.backend {
            Backend::Redis(slot) => slot.read().expect("redis slot").clone(),
            _ => None,
        }
    }

    /// `memory` or `redis`.
    pub fn backend_name(&self) -> &'static str {
        match self.inner.backend {
            Backend::Off => "off",
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    /// Whether the last Redis operation failed (serving from the store).
    pub fn degraded(&self) -> bool {
        self.inner.degraded.load(Ordering::Relaxed)
    }

    fn ttl(&self, kind: Kind) -> Duration {
        let s = &self.inner.settings;
        Duration::from_millis(match kind {
            Kind::Summary => s.summary_ttl_ms,
            Kind::Rollups => s.rollups_ttl_ms,
            Kind::Call => s.call_ttl_ms,
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.inner.settings.timeout_ms)
    }

    fn failed(&self, op: &str, e: impl std::fmt::Display) {
        if !self.inner.degraded.swap(true, Ordering::Relaxed) {
            tracing::warn!(op, error = %e, "cache (Redis) unavailable; serving from the store");
        }
    }

    fn recovered(&self) {
        if self.inner.degraded.swap(false, Ordering::Relaxed) {
            tracing::info!("cache (Redis) is back");
        }
    }

    async fn get_raw(&self, key: &str) -> Result<Option<Arc<Vec<u8>>>, ()> {
        match &self.inner.backend {
            Backend::Off => Err(()),
            Backend::Memory(m) => Ok(m.get(key).await.filter(|e| e.expires > Instant::now()).map(|e| e.bytes)),
            Backend::Redis(_) => {
                let Some(mut r) = self.conn() else { return Err(()) };
                let cmd = redis::cmd("GET").arg(key).to_owned();
                match tokio::time::timeout(self.timeout(), cmd.query_async::<Option<Vec<u8>>>(&mut r)).await {
                    Ok(Ok(v)) => {
                        self.recovered();
                        Ok(v.map(Arc::new))
                    }
                    Ok(Err(e)) => {
                        self.failed("GET", e);
                        Err(())
                    }
                    Err(_) => {
                        self.failed("GET", "timed out");
                        Err(())
                    }
                }
            }
        }
    }

    async fn set_raw(&self, key: &str, bytes: Vec<u8>, ttl: Duration) {
        match &self.inner.backend {
            Backend::Off => {}
            Backend::Memory(m) => {
                m.insert(key.to_owned(), Entry { bytes: Arc::new(bytes), expires: Instant::now() + ttl }).await;
            }
            Backend::Redis(_) => {
                let Some(mut r) = self.conn() else { return };
                let ms = ttl.as_millis().max(1) as u64;
                let cmd = redis::cmd("SET").arg(key).arg(bytes).arg("PX").arg(ms).to_owned();
                match tokio::time::timeout(self.timeout(), cmd.query_async::<()>(&mut r)).await {
                    Ok(Ok(())) => self.recovered(),
                    Ok(Err(e)) => self.failed("SET", e),
                    Err(_) => self.failed("SET", "timed out"),
                }
            }
        }
    }

    /// Removes keys (a write's read-your-writes eviction).
    pub async fn evict(&self, keys: &[String]) {
        if keys.is_empty() {
            return;
        }
        match &self.inner.backend {
            Backend::Off => {}
            Backend::Memory(m) => {
                for k in keys {
                    m.invalidate(k).await;
                }
            }
            Backend::Redis(_) => {
                let Some(mut r) = self.conn() else { return };
                let cmd = redis::cmd("DEL").arg(keys).to_owned();
                match tokio::time::timeout(self.timeout(), cmd.query_async::<i64>(&mut r)).await {
                    Ok(Ok(_)) => self.recovered(),
                    Ok(Err(e)) => self.failed("DEL", e),
                    Err(_) => self.failed("DEL", "timed out"),
                }
            }
        }
    }

    /// The current rollup generation (0 when unknown or Redis is down).
    pub async fn generation(&self) -> u64 {
        match &self.inner.backend {
            Backend::Off | Backend::Memory(_) => self.inner.generation.load(Ordering::Acquire),
            Backend::Redis(_) => match self.get_raw(GENERATION_KEY).await {
                Ok(Some(b)) => std::str::from_utf8(&b).ok().and_then(|s| s.parse().ok()).unwrap_or(0),
                _ => 0,
            },
        }
    }

    /// Makes every rollup-backed entry unreachable (after a rebuild).
    pub async fn bump_generation(&self) {
        match &self.inner.backend {
            Backend::Off | Backend::Memory(_) => {
                self.inner.generation.fetch_add(1, Ordering::AcqRel);
            }
            Backend::Redis(_) => {
                let Some(mut r) = self.conn() else { return };
                let cmd = redis::cmd("INCR").arg(GENERATION_KEY).to_owned();
                match tokio::time::timeout(self.timeout(), cmd.query_async::<i64>(&mut r)).await {
                    Ok(Ok(_)) => self.recovered(),
                    Ok(Err(e)) => self.failed("INCR", e),
                    Err(_) => self.failed("INCR", "timed out"),
                }
            }
        }
    }

    /// The cached value of `key`, or `compute`'s (stored for the kind's TTL).
    /// One computation per key at a time in this instance; a cache failure
    /// falls back to computing.
    pub async fn get_or_compute<T, E, F, Fut>(&self, kind: Kind, key: &str, compute: F) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.lookup::<T>(kind, key).await {
            return Ok(v);
        }
        let flight = {
            let mut f = self.inner.flights.lock().expect("cache flight map");
            f.entry(key.to_owned()).or_insert_with(|| Arc::new(tokio::sync::Mutex::new(()))).clone()
        };
        let guard = flight.lock().await;
        // Whoever held the flight before us may have filled it.
        let out = match self.peek::<T>(key).await {
            Some(v) => Ok(v),
            None => {
                let v = compute().await?;
                if let Ok(bytes) = serde_json::to_vec(&v) {
                    self.set_raw(key, bytes, self.ttl(kind)).await;
                }
                Ok(v)
            }
        };
        drop(guard);
        let mut f = self.inner.flights.lock().expect("cache flight map");
        if f.get(key).is_some_and(|a| Arc::strong_count(a) <= 2) {
            f.remove(key);
        }
        out
    }

    async fn peek<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        match self.get_raw(key).await {
            Ok(Some(b)) => serde_json::from_slice(&b).ok(),
            _ => None,
        }
    }

    async fn lookup<T: DeserializeOwned>(&self, kind: Kind, key: &str) -> Option<T> {
        let (result, value) = match self.get_raw(key).await {
            Ok(Some(b)) => match serde_json::from_slice(&b) {
                Ok(v) => ("hit", Some(v)),
                Err(_) => ("miss", None),
            },
            Ok(None) => ("miss", None),
            Err(()) if matches!(self.inner.backend, Backend::Off) => ("bypass", None),
            Err(()) => ("error", None),
        };
        metrics::counter!(REQUESTS, "kind" => kind.label(), "result" => result).increment(1);
        value
    }
}

/// Key of a call lookup.
pub fn call_key(id: &str) -> String {
    format!("sb:call:{id}")
}

/// A store decorator turning writes into domain events: a call written
/// (merged webhook, dialer update) evicts that call's key (and the key of a
/// record a merge absorbed) before the write returns and is published to the
/// live feed (`call.updated`); a rollup rebuild bumps the rollup generation
/// and ticks the dashboard. Every writer goes through it (webhooks, dialer,
/// jobs), so no write path can forget to invalidate or to notify.
pub struct Evicting {
    inner: Arc<dyn switchboard_storage::Storage>,
    cache: Cache,
    live: crate::live::LiveFeed,
}

impl Evicting {
    /// Wraps `inner`; writes evict from `cache` and publish to `live`.
    pub fn new(inner: Arc<dyn switchboard_storage::Storage>, cache: Cache, live: crate::live::LiveFeed) -> Evicting {
        Evicting { inner, cache, live }
    }

    async fn evicting<T: 'static>(
        &self,
        op: &'static str,
        fut: impl Future<Output = switchboard_storage::StoreResult<T>>,
    ) -> switchboard_storage::StoreResult<T> {
        let r = fut.await;
        if let Ok(v) = &r {
            let any = v as &dyn std::any::Any;
            let outcome = any.downcast_ref::<switchboard_storage::UpsertOutcome>().or_else(|| {
                match any.downcast_ref::<switchboard_storage::WebhookOutcome>() {
                    Some(switchboard_storage::WebhookOutcome::Applied(o)) => Some(&**o),
                    _ => None,
                }
            });
            let enrollment = match op {
                "replace_enrollment" => any.downcast_ref::<switchboard_domain::Enrollment>(),
                "claim_enrollment" => {
                    any.downcast_ref::<Option<switchboard_domain::Enrollment>>().and_then(Option::as_ref)
                }
                _ => None,
            }
            .cloned();
            if let Some(o) = outcome {
                let mut keys = vec![call_key(o.call.id.as_str())];
                keys.extend(o.absorbed.as_ref().map(|a| call_key(a.as_str())));
                self.cache.evict(&keys).await;
                if (o.changed || o.created) && self.live.publishes_writes() {
                    self.live.call_updated(&o.call).await;
                }
            }
            // Campaign progress: every enrollment change a writer makes (claim, attempt, outcome).
            if let Some(e) = enrollment.as_ref().filter(|_| self.live.publishes_writes()) {
                self.live.enrollment_updated(e).await;
            }
            if op == "rebuild_buckets" {
                self.cache.bump_generation().await;
                self.live.dashboard_tick().await;
            }
        }
        r
    }
}

switchboard_storage::decorate_storage!(Evicting, inner, evicting);

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    fn settings() -> CacheSettings {
        CacheSettings { summary_ttl_ms: 200, rollups_ttl_ms: 60_000, call_ttl_ms: 60_000, ..CacheSettings::default() }
    }

    async fn exercise(cache: &Cache) {
        let computed = Arc::new(AtomicUsize::new(0));
        let compute = |v: u32| {
            let computed = computed.clone();
            move || async move {
                computed.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(50)).await;
                Ok::<u32, std::convert::Infallible>(v)
            }
        };
        let key = format!("sb:test:{}", uuid::Uuid::new_v4().simple());
        // Ten concurrent misses: one computation (single flight), ten answers.
        let all =
            futures::future::join_all((0..10).map(|_| cache.get_or_compute(Kind::Rollups, &key, compute(7)))).await;
        assert!(all.iter().all(|r| *r.as_ref().unwrap() == 7));
        assert_eq!(computed.load(Ordering::SeqCst), 1, "one computation per key at a time");
        // A hit does not compute; an eviction does.
        assert_eq!(cache.get_or_compute(Kind::Rollups, &key, compute(8)).await.unwrap(), 7);
        assert_eq!(computed.load(Ordering::SeqCst), 1);
        cache.evict(std::slice::from_ref(&key)).await;
        assert_eq!(cache.get_or_compute(Kind::Rollups, &key, compute(8)).await.unwrap(), 8);
        assert_eq!(computed.load(Ordering::SeqCst), 2);
        // TTL per kind: the summary's 200 ms lapse.
        let short = format!("{key}:summary");
        assert_eq!(cache.get_or_compute(Kind::Summary, &short, compute(1)).await.unwrap(), 1);
        assert_eq!(cache.get_or_compute(Kind::Summary, &short, compute(2)).await.unwrap(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(cache.get_or_compute(Kind::Summary, &short, compute(2)).await.unwrap(), 2);
        // The generation moves forward on a bump.
        let g = cache.generation().await;
        cache.bump_generation().await;
        assert!(cache.generation().await > g);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory_cache_hits_misses_expires_evicts_and_computes_once_per_key() {
        exercise(&Cache::memory(settings())).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_cache_behaves_the_same() {
        let Ok(url) = std::env::var("TEST_REDIS_URL") else {
            switchboard_storage::conformance::loud("SKIPPED redis_cache_behaves_the_same: TEST_REDIS_URL is not set");
            return;
        };
        let cache = Cache::redis(&url, settings()).unwrap();
        for _ in 0..100 {
            if !cache.degraded() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!cache.degraded(), "connected to {url}");
        exercise(&cache).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn off_cache_always_computes() {
        let cache = Cache::off(settings());
        let n = AtomicUsize::new(0);
        for _ in 0..3 {
            let v = cache
                .get_or_compute(Kind::Call, "k", || async {
                    n.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::convert::Infallible>(1)
                })
                .await
                .unwrap();
            assert_eq!(v, 1);
        }
        assert_eq!(n.load(Ordering::SeqCst), 3);
        assert!(!cache.degraded());
    }
}
