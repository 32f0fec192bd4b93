//! Analytics rollups (`analytics`): time buckets × scope, each the aggregate
//! of the calls **created** in the bucket (a call never moves between
//! buckets, so a late correction to it changes its bucket's counts and adds
//! nothing).
//!
//! A bucket is rebuilt whole from raw calls by the store's own aggregation
//! ([`AnalyticsStore::rebuild_buckets`]: SQLite `GROUP BY` into an upsert,
//! MongoDB `$group` + `$merge`), so a rebuild is idempotent: replaying a
//! webhook, or rebuilding a bucket twice, cannot double-count. The rollup job
//! (`switchboard::jobs::rollups`) finds the buckets to rebuild from the calls
//! (and transcripts) updated since its watermark
//! ([`AnalyticsStore::changed_call_hours`]), and a scheduled pass rebuilds
//! recent buckets whole to repair anything missed.
//!
//! Buckets: `hour` in UTC, and `day` in a reporting time zone (`tz`; the
//! store only sees the UTC range each bucket covers, so zones and DST live
//! in the caller). Scopes: `global` (id `""`), `campaign` (campaign id),
//! `agent` (ElevenLabs agent id); the scope is a free `kind`/`id` pair, so a
//! later dimension is new rows, not a new schema.
//!
//! [`Metrics::add_call`] is the reference definition of every figure: both
//! adapters' aggregations must equal a fold of it over the bucket's calls
//! (the conformance suite checks this).

use std::collections::{BTreeMap, BTreeSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::{AnsweredBy, Call, CallStatus};

use crate::StoreResult;

/// Upper bounds (exclusive, seconds) of the connect- and talk-time histogram
/// bins; the last bin is everything at or above the last bound.
pub const HIST_BOUNDS_SECS: [i64; 9] = [5, 10, 20, 30, 60, 120, 300, 600, 1800];
/// Number of histogram bins.
pub const HIST_BINS: usize = HIST_BOUNDS_SECS.len() + 1;

/// The bin of a duration.
pub fn hist_bin(secs: i64) -> usize {
    HIST_BOUNDS_SECS.iter().position(|b| secs < *b).unwrap_or(HIST_BOUNDS_SECS.len())
}

/// Bucket width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    /// One UTC hour.
    Hour,
    /// One calendar day in the bucket's time zone.
    Day,
}

impl Interval {
    /// `hour` or `day`.
    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Hour => "hour",
            Interval::Day => "day",
        }
    }

    /// Parses `hour` or `day`.
    pub fn parse(s: &str) -> Option<Interval> {
        match s {
            "hour" => Some(Interval::Hour),
            "day" => Some(Interval::Day),
            _ => None,
        }
    }
}

/// What a rollup row aggregates over.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Scope {
    /// `global`, `campaign` or `agent` (lower-case letters and `_`).
    pub kind: String,
    /// The campaign or agent id; `""` for global.
    pub id: String,
}

impl Scope {
    /// Every call.
    pub fn global() -> Scope {
        Scope { kind: "global".into(), id: String::new() }
    }
    /// One campaign's calls.
    pub fn campaign(id: &str) -> Scope {
        Scope { kind: "campaign".into(), id: id.into() }
    }
    /// One agent's calls.
    pub fn agent(id: &str) -> Scope {
        Scope { kind: "agent".into(), id: id.into() }
    }
    /// The scopes a call counts in.
    pub fn of_call(c: &Call) -> Vec<Scope> {
        let mut s = vec![Scope::global()];
        if let Some(id) = &c.campaign_id {
            s.push(Scope::campaign(id.as_str()));
        }
        if let Some(a) = &c.agent_id {
            s.push(Scope::agent(a));
        }
        s
    }
}

/// One bucket to rebuild: its interval and zone, and the UTC range it covers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    /// Hour or day.
    pub interval: Interval,
    /// IANA zone of a day bucket (`UTC` for hours).
    pub tz: String,
    /// Start (inclusive, UTC).
    pub start: DateTime<Utc>,
    /// End (exclusive, UTC): an hour later, or the next local midnight.
    pub end: DateTime<Utc>,
}

/// The figures of one bucket and scope. All counts are of calls created in
/// the bucket, as they stand now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metrics {
    /// Calls.
    pub calls: i64,
    /// Not ended yet (queued, initiated, ringing, in progress).
    pub in_flight: i64,
    /// Ended after being answered.
    pub completed: i64,
    /// Busy.
    pub busy: i64,
    /// Not answered.
    pub no_answer: i64,
    /// Could not be placed.
    pub failed: i64,
    /// Cancelled.
    pub canceled: i64,
    /// Answered (by anyone or anything): `answered_at` set or completed.
    pub answered: i64,
    /// Answered by a person (AMD `human`).
    pub human: i64,
    /// Answered by a machine or fax (voicemail).
    pub machine: i64,
    /// Seconds from start to answer, summed over answered calls.
    pub connect_secs: i64,
    /// Answered calls with a connect time.
    pub connect_count: i64,
    /// Connect times by [`HIST_BOUNDS_SECS`] bin.
    pub connect_hist: Vec<i64>,
    /// Talk time (Twilio duration of completed calls), summed.
    pub talk_secs: i64,
    /// Completed calls with a duration.
    pub talk_count: i64,
    /// Talk times by [`HIST_BOUNDS_SECS`] bin.
    pub talk_hist: Vec<i64>,
    /// Twilio price, millionths of the price unit (absolute value).
    pub cost_micros: i64,
    /// ElevenLabs credits.
    pub credits: i64,
    /// ElevenLabs judged the call successful.
    pub successful: i64,
    /// ElevenLabs judged it unsuccessful.
    pub unsuccessful: i64,
    /// Sum of the overall sentiment of the calls' transcripts (our analysis).
    pub sentiment_sum: f64,
    /// Transcripts with a sentiment.
    pub sentiment_count: i64,
    /// Calls per ElevenLabs termination reason.
    pub termination_reasons: BTreeMap<String, i64>,
}

/// The Twilio price string (`"-0.0150"`) in millionths, absolute; 0 if unparsable.
pub fn price_micros(price: Option<&str>) -> i64 {
    price
        .and_then(|p| p.trim().parse::<f64>().ok())
        .filter(|p| p.is_finite())
        .map_or(0, |p| (p.abs() * 1e6).round() as i64)
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            calls: 0,
            in_flight: 0,
            completed: 0,
            busy: 0,
            no_answer: 0,
            failed: 0,
            canceled: 0,
            answered: 0,
            human: 0,
            machine: 0,
            connect_secs: 0,
            connect_count: 0,
            connect_hist: vec![0; HIST_BINS],
            talk_secs: 0,
            talk_count: 0,
            talk_hist: vec![0; HIST_BINS],
            cost_micros: 0,
            credits: 0,
            successful: 0,
            unsuccessful: 0,
            sentiment_sum: 0.0,
            sentiment_count: 0,
            termination_reasons: BTreeMap::new(),
        }
    }
}

impl Metrics {
    /// Empty figures (histograms sized).
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Counts one call (with its transcript's overall sentiment): the
    /// reference definition every store's aggregation must equal.
    pub fn add_call(&mut self, c: &Call, sentiment: Option<f64>) {
        if self.connect_hist.len() != HIST_BINS {
            self.connect_hist.resize(HIST_BINS, 0);
        }
        if self.talk_hist.len() != HIST_BINS {
            self.talk_hist.resize(HIST_BINS, 0);
        }
        self.calls += 1;
        match c.status {
            CallStatus::Queued | CallStatus::Initiated | CallStatus::Ringing | CallStatus::InProgress => {
                self.in_flight += 1
            }
            CallStatus::Completed => self.completed += 1,
            CallStatus::Busy => self.busy += 1,
            CallStatus::NoAnswer => self.no_answer += 1,
            CallStatus::Failed => self.failed += 1,
            CallStatus::Canceled => self.canceled += 1,
        }
        if c.answered_at.is_some() || c.status == CallStatus::Completed {
            self.answered += 1;
        }
        match c.answered_by {
            Some(AnsweredBy::Human) => self.human += 1,
            Some(
                AnsweredBy::MachineStart
                | AnsweredBy::MachineEndBeep
                | AnsweredBy::MachineEndSilence
                | AnsweredBy::MachineEndOther
                | AnsweredBy::Fax,
            ) => self.machine += 1,
            _ => {}
        }
        if let Some(a) = c.answered_at {
            let secs = (a.timestamp_millis() - c.started_at.timestamp_millis()).max(0) / 1000;
            self.connect_secs += secs;
            self.connect_count += 1;
            self.connect_hist[hist_bin(secs)] += 1;
        }
        if c.status == CallStatus::Completed
            && let Some(d) = c.duration_secs
        {
            self.talk_secs += d;
            self.talk_count += 1;
            self.talk_hist[hist_bin(d)] += 1;
        }
        self.cost_micros += price_micros(c.price.as_deref());
        self.credits += c.cost_credits.unwrap_or(0);
        match c.call_successful.as_deref() {
            Some("success") => self.successful += 1,
            Some("failure") => self.unsuccessful += 1,
            _ => {}
        }
        if let Some(s) = sentiment {
            self.sentiment_sum += s;
            self.sentiment_count += 1;
        }
        if let Some(r) = &c.termination_reason {
            *self.termination_reasons.entry(r.clone()).or_default() += 1;
        }
    }

    /// Adds another bucket's figures (e.g. hours into a day, days into a range).
    pub fn merge(&mut self, o: &Metrics) {
        macro_rules! add {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        add!(
            calls,
            in_flight,
            completed,
            busy,
            no_answer,
            failed,
            canceled,
            answered,
            human,
            machine,
            connect_secs,
            connect_count,
            talk_secs,
            talk_count,
            cost_micros,
            credits,
            successful,
            unsuccessful,
            sentiment_sum,
            sentiment_count
        );
        for (mine, theirs) in [(&mut self.connect_hist, &o.connect_hist), (&mut self.talk_hist, &o.talk_hist)] {
            if mine.len() < theirs.len() {
                mine.resize(theirs.len(), 0);
            }
            for (m, t) in mine.iter_mut().zip(theirs) {
                *m += t;
            }
        }
        for (k, v) in &o.termination_reasons {
            *self.termination_reasons.entry(k.clone()).or_default() += v;
        }
    }

    /// Calls that ended (not in flight).
    pub fn ended(&self) -> i64 {
        self.calls - self.in_flight
    }

    /// Answered / ended (`None` before any call ended).
    pub fn answer_rate(&self) -> Option<f64> {
        (self.ended() > 0).then(|| self.answered as f64 / self.ended() as f64)
    }

    /// Mean of the sentiment (`None` without any).
    pub fn sentiment_mean(&self) -> Option<f64> {
        (self.sentiment_count > 0).then(|| self.sentiment_sum / self.sentiment_count as f64)
    }

    /// The upper bound of the bin holding the `p`-quantile (0..1) of a
    /// histogram: a percentile to the histogram's resolution (`None` when
    /// empty; the open last bin reports its lower bound).
    pub fn hist_quantile(hist: &[i64], p: f64) -> Option<i64> {
        let total: i64 = hist.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((p.clamp(0.0, 1.0) * total as f64).ceil() as i64).max(1);
        let mut seen = 0;
        for (i, n) in hist.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(HIST_BOUNDS_SECS.get(i).copied().unwrap_or(HIST_BOUNDS_SECS[HIST_BOUNDS_SECS.len() - 1]));
            }
        }
        None
    }
}

/// One stored rollup row.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollup {
    /// Hour or day.
    pub interval: Interval,
    /// Zone of the bucket (`UTC` for hours).
    pub tz: String,
    /// Bucket start (UTC instant).
    pub bucket_start: DateTime<Utc>,
    /// What it aggregates over.
    pub scope: Scope,
    /// The figures.
    pub metrics: Metrics,
    /// When it was last rebuilt.
    pub updated_at: DateTime<Utc>,
}

/// Which rollups to read.
#[derive(Debug, Clone, PartialEq)]
pub struct RollupQuery {
    /// Hour or day.
    pub interval: Interval,
    /// Zone (`UTC` for hours).
    pub tz: String,
    /// One scope.
    pub scope: Scope,
    /// First bucket start (inclusive).
    pub from: DateTime<Utc>,
    /// Last bucket start (exclusive).
    pub to: DateTime<Utc>,
}

/// Calls (and transcripts) updated since a watermark.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Changes {
    /// UTC hour starts of the changed calls' `created_at`.
    pub hours: BTreeSet<DateTime<Utc>>,
    /// The latest `updated_at` read (the next watermark).
    pub newest: Option<DateTime<Utc>>,
    /// A read hit its limit: changes after `newest` may follow (read on
    /// from `newest` + 1 ms). Every change at or before `newest` is in `hours`.
    pub more: bool,
}

/// The `analytics` collection and the rollup job's watermark.
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Recomputes each bucket from the calls created in `[start, end)` with
    /// the store's aggregation: one row per scope with calls (global, each
    /// campaign, each agent), written over the stored ones; rows of the
    /// bucket that no call backs any more are removed. Returns rows written.
    async fn rebuild_buckets(&self, buckets: &[Bucket]) -> StoreResult<u64>;

    /// Stored rollups of one scope, interval and zone with `from <= bucket_start < to`, oldest first.
    async fn rollups(&self, q: &RollupQuery) -> StoreResult<Vec<Rollup>>;

    /// Every stored row of `interval` and `tz` with `from <= bucket_start < to`,
    /// all scopes (a day is summed from its hours with it).
    async fn rollup_rows(
        &self,
        interval: Interval,
        tz: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Rollup>>;

    /// Writes a bucket's rows as given (scopes without calls are skipped)
    /// over the stored ones, removing the bucket's other rows, as
    /// [`AnalyticsStore::rebuild_buckets`] does. Returns rows written.
    async fn replace_bucket(&self, bucket: &Bucket, rows: &[(Scope, Metrics)]) -> StoreResult<u64>;

    /// The UTC hours (of `created_at`) of calls updated at or after `since`,
    /// and of calls whose transcript was, oldest update first: about `limit`
    /// changes of each kind (plus the others at the last instant read, so an
    /// instant is never split between reads).
    async fn changed_call_hours(&self, since: DateTime<Utc>, limit: u32) -> StoreResult<Changes>;

    /// The rollup job's watermark (`None` before its first run).
    async fn rollup_watermark(&self) -> StoreResult<Option<DateTime<Utc>>>;

    /// Moves the watermark forward to `to` (never back: a stale writer's
    /// older value is ignored).
    async fn advance_rollup_watermark(&self, to: DateTime<Utc>) -> StoreResult<()>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_and_quantiles() {
        assert_eq!(hist_bin(0), 0);
        assert_eq!(hist_bin(5), 1);
        assert_eq!(hist_bin(1799), 8);
        assert_eq!(hist_bin(1800), 9);
        let mut h = vec![0; HIST_BINS];
        h[0] = 50; // < 5 s
        h[4] = 49; // 30..60 s
        h[9] = 1; // ≥ 1800 s
        assert_eq!(Metrics::hist_quantile(&h, 0.5), Some(5));
        assert_eq!(Metrics::hist_quantile(&h, 0.99), Some(60));
        assert_eq!(Metrics::hist_quantile(&h, 1.0), Some(1800));
        assert_eq!(Metrics::hist_quantile(&[0; HIST_BINS], 0.5), None);
    }

    #[test]
    fn prices_are_absolute_micros() {
        assert_eq!(price_micros(Some("-0.0150")), 15_000);
        assert_eq!(price_micros(Some("0.25")), 250_000);
        assert_eq!(price_micros(Some("n/a")), 0);
        assert_eq!(price_micros(None), 0);
    }
}
