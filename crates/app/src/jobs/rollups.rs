//! The analytics rollup jobs: they keep `analytics` equal to a recomputation
//! from raw calls (`switchboard_storage::analytics`).
//!
//! - **Incremental** (`analytics_rollups`, every `tick_ms`): reads the calls
//!   and transcripts updated since the watermark (less `overlap_secs`, for
//!   writes stamped before a run but committed after it), rebuilds the hour
//!   and day buckets they fall in, and moves the watermark. A bucket is
//!   rebuilt whole by the store's aggregation, so a replayed webhook or a run
//!   repeated after a crash cannot double-count, and a late correction moves
//!   a count rather than adding one. A crash loses nothing: the watermark is
//!   only moved after the rebuild, so the next holder redoes the batch.
//! - **Repair** (`analytics_repair`, every `repair_every_secs`): rebuilds the
//!   last `repair_hours` whole, so anything the incremental pass missed
//!   (a clock skewed past the overlap) is repaired.
//! - `switchboard analytics rebuild --since …` rebuilds a range on demand.
//!
//! Both run under leases ([`super::runner`]): one instance at a time.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeDelta, TimeZone, Utc};
use chrono_tz::Tz;
use switchboard_storage::analytics::Bucket;
use switchboard_storage::{Interval, Storage};

/// Lease name of the incremental job.
pub const NAME: &str = "analytics_rollups";
/// Lease name of the repair job.
pub const REPAIR: &str = "analytics_repair";
/// Changes read per store round trip.
const BATCH: u32 = 5_000;
/// Buckets rebuilt per store call (one writer transaction).
const REBUILD_CHUNK: usize = 48;

/// What one run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct RollupReport {
    /// Distinct hours whose calls changed.
    pub hours: u64,
    /// Buckets rebuilt (hours and days).
    pub buckets: u64,
    /// Rollup rows written.
    pub rows: u64,
}

/// The UTC instant a local calendar day starts in `tz` (the first valid
/// local time of that date: a zone whose clocks skip midnight starts the
/// day at the end of the gap).
pub fn local_midnight(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let mut t = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    for _ in 0..48 {
        if let Some(at) = tz.from_local_datetime(&t).earliest() {
            return at.with_timezone(&Utc);
        }
        t += Duration::minutes(30);
    }
    Utc.from_utc_datetime(&t)
}

/// The day bucket of `tz` holding the instant `at`.
pub fn day_bucket(tz: Tz, at: DateTime<Utc>) -> Bucket {
    let date = at.with_timezone(&tz).date_naive();
    let next = date.succ_opt().expect("dates this century have a successor");
    Bucket {
        interval: Interval::Day,
        tz: tz.name().to_owned(),
        start: local_midnight(tz, date),
        end: local_midnight(tz, next),
    }
}

/// The hour bucket (UTC) holding `at`.
pub fn hour_bucket(at: DateTime<Utc>) -> Bucket {
    let start = at.duration_trunc(TimeDelta::hours(1)).unwrap_or(at);
    Bucket { interval: Interval::Hour, tz: "UTC".into(), start, end: start + Duration::hours(1) }
}

/// The buckets holding the calls of the given UTC hours: each hour, and the
/// reporting zone's day (or two days, for an hour that a half-hour offset
/// splits at local midnight).
pub fn buckets_for_hours(hours: impl IntoIterator<Item = DateTime<Utc>>, tz: Tz) -> Vec<Bucket> {
    let mut out = BTreeSet::new();
    for h in hours {
        let hour = hour_bucket(h);
        out.insert(day_bucket(tz, hour.start));
        out.insert(day_bucket(tz, hour.end - Duration::milliseconds(1)));
        out.insert(hour);
    }
    out.into_iter().collect()
}

/// Whether a bucket starts and ends on whole UTC hours (so its rows are the
/// sums of its hour buckets' rows).
fn hour_aligned(b: &Bucket) -> bool {
    let whole = |t: DateTime<Utc>| t.duration_trunc(TimeDelta::hours(1)).is_ok_and(|h| h == t);
    whole(b.start) && whole(b.end)
}

/// Rebuilds `buckets`: hours from raw calls (the store's aggregation), then
/// days — from their (just rebuilt) hour rows when the zone's midnights fall
/// on whole hours (24 rows summed instead of a day of calls re-aggregated:
/// one pass at 1M calls went from seconds to milliseconds), else from raw calls.
async fn rebuild(store: &dyn Storage, buckets: &[Bucket], report: &mut RollupReport) -> anyhow::Result<()> {
    let (hours, days): (Vec<Bucket>, Vec<Bucket>) = buckets.iter().cloned().partition(|b| b.interval == Interval::Hour);
    for chunk in hours.chunks(REBUILD_CHUNK) {
        report.rows += store.rebuild_buckets(chunk).await?;
        report.buckets += chunk.len() as u64;
    }
    let (summed, raw): (Vec<Bucket>, Vec<Bucket>) = days.into_iter().partition(hour_aligned);
    for chunk in raw.chunks(REBUILD_CHUNK) {
        report.rows += store.rebuild_buckets(chunk).await?;
        report.buckets += chunk.len() as u64;
    }
    for day in summed {
        report.rows += sum_hours_into(store, &day).await?;
        report.buckets += 1;
    }
    Ok(())
}

/// Writes a day bucket as the sum of its hour rows, per scope.
async fn sum_hours_into(store: &dyn Storage, day: &Bucket) -> anyhow::Result<u64> {
    let mut by_scope: std::collections::BTreeMap<switchboard_storage::Scope, switchboard_storage::Metrics> =
        std::collections::BTreeMap::new();
    for r in store.rollup_rows(Interval::Hour, "UTC", day.start, day.end).await? {
        by_scope.entry(r.scope).or_default().merge(&r.metrics);
    }
    let rows: Vec<_> = by_scope.into_iter().collect();
    Ok(store.replace_bucket(day, &rows).await?)
}

/// One incremental run: every change since the watermark (less `overlap`)
/// rebuilt, the watermark moved to the newest change read. The first run
/// (no watermark) starts from the beginning: a backfill of every call.
pub async fn catch_up(store: &dyn Storage, tz: Tz, overlap: Duration) -> anyhow::Result<RollupReport> {
    let mut report = RollupReport::default();
    let mut since = match store.rollup_watermark().await? {
        Some(w) => w - overlap,
        None => DateTime::<Utc>::UNIX_EPOCH,
    };
    loop {
        let t = std::time::Instant::now();
        let changes = store.changed_call_hours(since, BATCH).await?;
        let read = t.elapsed();
        report.hours += changes.hours.len() as u64;
        rebuild(store, &buckets_for_hours(changes.hours.iter().copied(), tz), &mut report).await?;
        tracing::debug!(
            hours = changes.hours.len(),
            more = changes.more,
            read_ms = read.as_millis() as u64,
            total_ms = t.elapsed().as_millis() as u64,
            "rollup catch-up batch"
        );
        let Some(newest) = changes.newest else { break };
        store.advance_rollup_watermark(newest).await?;
        if !changes.more {
            break;
        }
        since = newest + Duration::milliseconds(1);
    }
    Ok(report)
}

/// Rebuilds every bucket of `[from, to)` (whole hours and the reporting
/// zone's days they touch), reporting progress in hours done.
pub async fn rebuild_range(
    store: &dyn Storage,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    progress: Option<&(dyn Fn(u64, u64) + Send + Sync)>,
) -> anyhow::Result<RollupReport> {
    let mut report = RollupReport::default();
    let first = hour_bucket(from).start;
    let total = ((to - first).num_hours().max(0) + 1) as u64;
    let mut at = first;
    let mut done = 0;
    while at < to {
        let hours: Vec<DateTime<Utc>> = (0..24).map(|k| at + Duration::hours(k)).take_while(|h| *h < to).collect();
        done += hours.len() as u64;
        report.hours += hours.len() as u64;
        at += Duration::hours(hours.len() as i64);
        rebuild(store, &buckets_for_hours(hours, tz), &mut report).await?;
        if let Some(p) = progress {
            p(done.min(total), total);
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn day_buckets_follow_the_zone_across_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08: clocks spring forward, the local day is 23 hours long.
        let d = day_bucket(ny, utc("2026-03-08T12:00:00Z"));
        assert_eq!((d.start, d.end), (utc("2026-03-08T05:00:00Z"), utc("2026-03-09T04:00:00Z")));
        // 2026-11-01: clocks fall back, 25 hours.
        let d = day_bucket(ny, utc("2026-11-01T12:00:00Z"));
        assert_eq!(d.end - d.start, Duration::hours(25));
        // An instant just before local midnight belongs to the earlier day.
        assert_eq!(day_bucket(ny, utc("2026-11-30T04:59:59Z")).start, utc("2026-11-29T05:00:00Z"));
    }

    #[test]
    fn an_hour_split_by_a_half_hour_zone_touches_two_days() {
        let india: Tz = "Asia/Kolkata".parse().unwrap(); // UTC+05:30: local midnight is 18:30 UTC
        let b = buckets_for_hours([utc("2026-11-30T18:10:00Z")], india);
        let days: Vec<_> = b.iter().filter(|b| b.interval == Interval::Day).collect();
        assert_eq!(days.len(), 2);
        assert_eq!(days[0].end, utc("2026-11-30T18:30:00Z"));
        assert_eq!(b.iter().filter(|b| b.interval == Interval::Hour).count(), 1);
        // Whole-hour zone: one day.
        assert_eq!(buckets_for_hours([utc("2026-11-30T18:10:00Z")], chrono_tz::UTC).len(), 2);
    }

    #[test]
    fn a_zone_skipping_midnight_starts_its_day_after_the_gap() {
        // America/Santiago springs forward at local midnight (2026-09-06 00:00 → 01:00).
        let cl: Tz = "America/Santiago".parse().unwrap();
        let start = local_midnight(cl, NaiveDate::from_ymd_opt(2026, 9, 6).unwrap());
        assert_eq!(start.with_timezone(&cl).format("%H:%M").to_string(), "01:00");
    }
}
