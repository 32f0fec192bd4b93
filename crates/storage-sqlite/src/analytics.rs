//! Rollups on SQLite (migration 0010, `analytics`): a bucket is rebuilt by
//! one `GROUP BY` over the calls created in its range (each call counted
//! once per scope it belongs to: global, its campaign, its agent), plus one
//! for the termination reasons, and its rows replaced in one transaction on
//! the writer: readers see the old rows or the new ones, never a gap.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::time::{from_millis, now_ms};
use switchboard_storage::analytics::{Changes, HIST_BINS, HIST_BOUNDS_SECS};
use switchboard_storage::{AnalyticsStore, Bucket, Interval, Metrics, Rollup, RollupQuery, Scope, StoreResult};

use crate::SqliteStore;
use crate::rows::{json_err, map_err, to_doc};

/// `count(CASE …)` per histogram bin of `col` (NULLs count nowhere).
fn hist_sql(col: &str) -> String {
    let mut parts = Vec::with_capacity(HIST_BINS);
    let mut lo: Option<i64> = None;
    for hi in HIST_BOUNDS_SECS.iter().copied().map(Some).chain([None]) {
        let cond = match (lo, hi) {
            (None, Some(h)) => format!("{col} < {h}"),
            (Some(l), Some(h)) => format!("{col} >= {l} AND {col} < {h}"),
            (Some(l), None) => format!("{col} >= {l}"),
            (None, None) => unreachable!(),
        };
        parts.push(format!("count(CASE WHEN {cond} THEN 1 END)"));
        lo = hi;
    }
    parts.join(", ")
}

/// The calls of one range with the figures `Metrics::add_call` reads,
/// repeated once per scope (`kind`, `sid`).
const SCOPED_CALLS: &str = "
WITH c AS (
    SELECT calls.*,
           (SELECT t.sentiment FROM transcripts t WHERE t.call_id = calls.id
             ORDER BY t.started_at DESC, t.id DESC LIMIT 1) AS sentiment,
           CASE WHEN answered_at IS NOT NULL THEN max(0, answered_at - started_at) / 1000 END AS connect,
           CASE WHEN status = 'completed' THEN duration_secs END AS talk
      FROM calls WHERE created_at >= ?1 AND created_at < ?2
), s AS (
    SELECT 'global' AS kind, '' AS sid, * FROM c
    UNION ALL SELECT 'campaign', campaign_id, * FROM c WHERE campaign_id IS NOT NULL
    UNION ALL SELECT 'agent', agent_id, * FROM c WHERE agent_id IS NOT NULL
)";

fn aggregate_sql() -> String {
    format!(
        "{SCOPED_CALLS}
SELECT kind, sid, count(*),
       count(CASE WHEN status IN ('queued','initiated','ringing','in-progress') THEN 1 END),
       count(CASE WHEN status = 'completed' THEN 1 END),
       count(CASE WHEN status = 'busy' THEN 1 END),
       count(CASE WHEN status = 'no-answer' THEN 1 END),
       count(CASE WHEN status = 'failed' THEN 1 END),
       count(CASE WHEN status = 'canceled' THEN 1 END),
       count(CASE WHEN answered_at IS NOT NULL OR status = 'completed' THEN 1 END),
       count(CASE WHEN answered_by = 'human' THEN 1 END),
       count(CASE WHEN answered_by GLOB 'machine_*' OR answered_by = 'fax' THEN 1 END),
       coalesce(sum(connect), 0), count(connect),
       coalesce(sum(talk), 0), count(talk),
       coalesce(sum(CAST(round(abs(CAST(price AS REAL)) * 1000000) AS INTEGER)), 0),
       coalesce(sum(cost_credits), 0),
       count(CASE WHEN call_successful = 'success' THEN 1 END),
       count(CASE WHEN call_successful = 'failure' THEN 1 END),
       total(sentiment), count(sentiment),
       {}, {}
  FROM s GROUP BY kind, sid",
        hist_sql("connect"),
        hist_sql("talk")
    )
}

fn reasons_sql() -> String {
    format!(
        "{SCOPED_CALLS}
SELECT kind, sid, termination_reason, count(*) FROM s
 WHERE termination_reason IS NOT NULL GROUP BY kind, sid, termination_reason"
    )
}

/// The rows of one bucket as the aggregation computes them.
fn aggregate(conn: &Connection, b: &Bucket) -> StoreResult<BTreeMap<Scope, Metrics>> {
    let range = params![b.start.timestamp_millis(), b.end.timestamp_millis()];
    let mut out = BTreeMap::new();
    let mut st = conn.prepare_cached(&aggregate_sql()).map_err(map_err)?;
    let mut rows = st.query(range).map_err(map_err)?;
    while let Some(r) = rows.next().map_err(map_err)? {
        let n = |i: usize| r.get::<_, i64>(i).map_err(map_err);
        let hist = |from: usize| (from..from + HIST_BINS).map(n).collect::<StoreResult<Vec<i64>>>();
        let m = Metrics {
            calls: n(2)?,
            in_flight: n(3)?,
            completed: n(4)?,
            busy: n(5)?,
            no_answer: n(6)?,
            failed: n(7)?,
            canceled: n(8)?,
            answered: n(9)?,
            human: n(10)?,
            machine: n(11)?,
            connect_secs: n(12)?,
            connect_count: n(13)?,
            talk_secs: n(14)?,
            talk_count: n(15)?,
            cost_micros: n(16)?,
            credits: n(17)?,
            successful: n(18)?,
            unsuccessful: n(19)?,
            sentiment_sum: r.get(20).map_err(map_err)?,
            sentiment_count: n(21)?,
            connect_hist: hist(22)?,
            talk_hist: hist(22 + HIST_BINS)?,
            termination_reasons: BTreeMap::new(),
        };
        out.insert(Scope { kind: r.get(0).map_err(map_err)?, id: r.get(1).map_err(map_err)? }, m);
    }
    let mut st = conn.prepare_cached(&reasons_sql()).map_err(map_err)?;
    let mut rows = st.query(range).map_err(map_err)?;
    while let Some(r) = rows.next().map_err(map_err)? {
        let scope = Scope { kind: r.get(0).map_err(map_err)?, id: r.get(1).map_err(map_err)? };
        if let Some(m) = out.get_mut(&scope) {
            m.termination_reasons.insert(r.get(2).map_err(map_err)?, r.get(3).map_err(map_err)?);
        }
    }
    Ok(out)
}

fn hour_of(ms: i64) -> DateTime<Utc> {
    let t = from_millis(ms);
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// Changes since `since` (see [`AnalyticsStore::changed_call_hours`]). A
/// read that hits `limit` also reads every other change at its last instant,
/// so it is complete up to that instant (its edge); the result stops at the
/// earliest edge (`more`), and the next read starts just after it.
fn changes_of(conn: &Connection, since: i64, limit: u32) -> StoreResult<Changes> {
    let mut rows: Vec<(i64, i64)> = Vec::new();
    let mut edge: Option<i64> = None;
    for (from, at_instant) in [
        (
            "SELECT updated_at, created_at FROM calls WHERE updated_at >= ?1 ORDER BY updated_at LIMIT ?2",
            "SELECT updated_at, created_at FROM calls WHERE updated_at = ?1",
        ),
        (
            "SELECT t.updated_at, c.created_at FROM transcripts t JOIN calls c ON c.id = t.call_id \
             WHERE t.updated_at >= ?1 ORDER BY t.updated_at LIMIT ?2",
            "SELECT t.updated_at, c.created_at FROM transcripts t JOIN calls c ON c.id = t.call_id \
             WHERE t.updated_at = ?1",
        ),
    ] {
        let read = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> StoreResult<Vec<(i64, i64)>> {
            conn.prepare_cached(sql)
                .and_then(|mut st| st.query_map(p, |r| Ok((r.get(0)?, r.get(1)?))).and_then(|rows| rows.collect()))
                .map_err(map_err)
        };
        let mut got = read(from, &[&since, &limit])?;
        if got.len() as u32 >= limit
            && let Some(&(last, _)) = got.last()
        {
            got.retain(|(u, _)| *u < last);
            got.extend(read(at_instant, &[&last])?);
            edge = Some(edge.map_or(last, |e: i64| e.min(last)));
        }
        rows.extend(got);
    }
    if let Some(e) = edge {
        rows.retain(|(u, _)| *u <= e);
    }
    Ok(Changes {
        hours: rows.iter().map(|(_, c)| hour_of(*c)).collect(),
        newest: edge.or_else(|| rows.iter().map(|r| r.0).max()).map(from_millis),
        more: edge.is_some(),
    })
}

/// Replaces a bucket's rows (inside the caller's write transaction).
fn replace_rows(conn: &Connection, b: &Bucket, rows: &[(Scope, Metrics)]) -> StoreResult<u64> {
    let now = now_ms().timestamp_millis();
    conn.prepare_cached("DELETE FROM analytics WHERE interval = ?1 AND tz = ?2 AND bucket_start = ?3")
        .and_then(|mut st| st.execute(params![b.interval.as_str(), b.tz, b.start.timestamp_millis()]))
        .map_err(map_err)?;
    let mut ins = conn
        .prepare_cached(
            "INSERT INTO analytics (scope_kind, scope_id, interval, tz, bucket_start, calls, metrics, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .map_err(map_err)?;
    let mut written = 0;
    for (scope, m) in rows.iter().filter(|(_, m)| m.calls > 0) {
        ins.execute(params![
            scope.kind,
            scope.id,
            b.interval.as_str(),
            b.tz,
            b.start.timestamp_millis(),
            m.calls,
            to_doc(m),
            now
        ])
        .map_err(map_err)?;
        written += 1;
    }
    Ok(written)
}

const WATERMARK: &str = "rollups";

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn rebuild_buckets(&self, buckets: &[Bucket]) -> StoreResult<u64> {
        let buckets = buckets.to_vec();
        self.write(move |conn| {
            let mut written = 0;
            for b in &buckets {
                let rows: Vec<(Scope, Metrics)> = aggregate(conn, b)?.into_iter().collect();
                written += replace_rows(conn, b, &rows)?;
            }
            Ok(written)
        })
        .await
    }

    async fn rollup_rows(
        &self,
        interval: Interval,
        tz: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Rollup>> {
        let tz = tz.to_owned();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT scope_kind, scope_id, bucket_start, metrics, updated_at FROM analytics \
                     WHERE interval = ?1 AND tz = ?2 AND bucket_start >= ?3 AND bucket_start < ?4 \
                     ORDER BY bucket_start, scope_kind, scope_id",
                )
                .map_err(map_err)?;
            let rows = st
                .query_map(params![interval.as_str(), tz, from.timestamp_millis(), to.timestamp_millis()], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(kind, id, start, doc, updated)| {
                    Ok(Rollup {
                        interval,
                        tz: tz.clone(),
                        bucket_start: from_millis(start),
                        scope: Scope { kind, id },
                        metrics: serde_json::from_str(&doc).map_err(json_err)?,
                        updated_at: from_millis(updated),
                    })
                })
                .collect()
        })
        .await
    }

    async fn replace_bucket(&self, bucket: &Bucket, rows: &[(Scope, Metrics)]) -> StoreResult<u64> {
        let (b, rows) = (bucket.clone(), rows.to_vec());
        self.write(move |conn| replace_rows(conn, &b, &rows)).await
    }

    async fn rollups(&self, q: &RollupQuery) -> StoreResult<Vec<Rollup>> {
        let q = q.clone();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT bucket_start, metrics, updated_at FROM analytics WHERE scope_kind = ?1 AND scope_id = ?2 \
                     AND interval = ?3 AND tz = ?4 AND bucket_start >= ?5 AND bucket_start < ?6 ORDER BY bucket_start",
                )
                .map_err(map_err)?;
            let rows = st
                .query_map(
                    params![
                        q.scope.kind,
                        q.scope.id,
                        q.interval.as_str(),
                        q.tz,
                        q.from.timestamp_millis(),
                        q.to.timestamp_millis()
                    ],
                    |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?)),
                )
                .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                .map_err(map_err)?;
            rows.into_iter()
                .map(|(start, doc, updated)| {
                    Ok(Rollup {
                        interval: q.interval,
                        tz: q.tz.clone(),
                        bucket_start: from_millis(start),
                        scope: q.scope.clone(),
                        metrics: serde_json::from_str(&doc).map_err(json_err)?,
                        updated_at: from_millis(updated),
                    })
                })
                .collect()
        })
        .await
    }

    async fn changed_call_hours(&self, since: DateTime<Utc>, limit: u32) -> StoreResult<Changes> {
        let since = since.timestamp_millis();
        self.read(move |conn| changes_of(conn, since, limit.max(1))).await
    }

    async fn rollup_watermark(&self) -> StoreResult<Option<DateTime<Utc>>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT watermark FROM analytics_state WHERE name = ?1")
                .and_then(|mut st| st.query_row([WATERMARK], |r| r.get::<_, i64>(0)).optional())
                .map(|v| v.map(from_millis))
                .map_err(map_err)
        })
        .await
    }

    async fn advance_rollup_watermark(&self, to: DateTime<Utc>) -> StoreResult<()> {
        let to = to.timestamp_millis();
        self.write(move |conn| {
            conn.prepare_cached(
                "INSERT INTO analytics_state (name, watermark) VALUES (?1, ?2) \
                 ON CONFLICT (name) DO UPDATE SET watermark = max(watermark, excluded.watermark)",
            )
            .and_then(|mut st| st.execute(params![WATERMARK, to]))
            .map_err(map_err)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_sql_covers_every_bin_once() {
        let s = hist_sql("x");
        assert_eq!(s.matches("count(").count(), HIST_BINS);
        assert!(s.starts_with("count(CASE WHEN x < 5 THEN 1 END)"));
        assert!(s.ends_with("count(CASE WHEN x >= 1800 THEN 1 END)"));
    }
}
