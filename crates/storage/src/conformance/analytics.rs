//! Conformance cases for the `analytics` rollups: every stored figure equals
//! a fold of the reference [`Metrics::add_call`] over the bucket's calls,
//! before and after corrections, and rebuilding is idempotent.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, DurationRound, TimeDelta, Utc};
use switchboard_domain::time::now_ms;
use switchboard_domain::{AnsweredBy, Call, CallId, CallStatus, CallUpdate, CampaignId, Source};

use super::Harness;
use super::transcripts::transcript;
use crate::Storage;
use crate::analytics::{Bucket, Interval, Metrics, RollupQuery, Scope};

struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 33) % n as u64) as usize
    }
}

fn hour0() -> DateTime<Utc> {
    (now_ms() - Duration::days(3)).duration_trunc(TimeDelta::hours(1)).unwrap()
}

fn calls(campaigns: &[CampaignId]) -> Vec<Call> {
    let mut g = Lcg(0xa11a_1171c5);
    let h0 = hour0();
    let statuses = CallStatus::ALL;
    let amd = [
        None,
        Some(AnsweredBy::Human),
        Some(AnsweredBy::MachineStart),
        Some(AnsweredBy::MachineEndBeep),
        Some(AnsweredBy::Fax),
        Some(AnsweredBy::Unknown),
    ];
    (0..160)
        .map(|i| {
            // Three hours, plus one call on each edge (first and last millisecond).
            let created = match i {
                0 => h0,
                1 => h0 + Duration::hours(3) - Duration::milliseconds(1),
                _ => h0 + Duration::seconds(g.below(3 * 3600) as i64),
            };
            let u = CallUpdate {
                source: Some(Source::Twilio),
                observed_at: Some(created),
                call_sid: Some(format!("CA{:032x}", 0xa11_0000 + i)),
                status: Some(statuses[g.below(statuses.len())]),
                ..Default::default()
            };
            let mut c = Call::new_from(&u, created).unwrap();
            c.started_at = created + Duration::milliseconds(g.below(4000) as i64);
            c.campaign_id = (g.below(4) != 0).then(|| campaigns[g.below(campaigns.len())].clone());
            c.agent_id = (g.below(3) != 0).then(|| format!("agent_{}", g.below(3)));
            c.answered_by = amd[g.below(amd.len())];
            if g.below(2) == 0 {
                c.answered_at = Some(c.started_at + Duration::milliseconds(g.below(70_000) as i64));
            }
            if g.below(3) != 0 {
                c.duration_secs = Some([0, 4, 5, 29, 30, 61, 299, 1800, 4000][g.below(9)]);
            }
            c.price = [None, Some("-0.0150".to_owned()), Some("-0.30".to_owned()), Some("n/a".to_owned())][g.below(4)]
                .clone();
            c.cost_credits = (g.below(2) == 0).then(|| g.below(900) as i64);
            c.call_successful = [None, Some("success"), Some("failure"), Some("unknown")][g.below(4)].map(Into::into);
            c.termination_reason = [None, Some("client disconnected"), Some("end_call tool"), Some("max duration")]
                [g.below(4)]
            .map(Into::into);
            c
        })
        .collect()
}

/// The reference: a fold of `Metrics::add_call` over the calls of the range, per scope.
fn reference(
    calls: &[Call],
    sentiment: &BTreeMap<CallId, f64>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> BTreeMap<Scope, Metrics> {
    let mut out: BTreeMap<Scope, Metrics> = BTreeMap::new();
    for c in calls.iter().filter(|c| c.created_at >= start && c.created_at < end) {
        for scope in Scope::of_call(c) {
            out.entry(scope).or_default().add_call(c, sentiment.get(&c.id).copied());
        }
    }
    out
}

/// Float sums may be added in another order: compared to 1e-9, the rest exactly.
fn same(a: &Metrics, b: &Metrics) -> bool {
    let (mut a, mut b) = (a.clone(), b.clone());
    let close = (a.sentiment_sum - b.sentiment_sum).abs() < 1e-9;
    a.sentiment_sum = 0.0;
    b.sentiment_sum = 0.0;
    close && a == b
}

async fn stored(s: &dyn Storage, b: &Bucket, scopes: &[Scope]) -> BTreeMap<Scope, Metrics> {
    let mut out = BTreeMap::new();
    for scope in scopes {
        let q = RollupQuery {
            interval: b.interval,
            tz: b.tz.clone(),
            scope: scope.clone(),
            from: b.start,
            to: b.start + Duration::milliseconds(1),
        };
        let rows = s.rollups(&q).await.unwrap();
        assert!(rows.len() <= 1, "one row per bucket and scope");
        if let Some(r) = rows.into_iter().next() {
            assert_eq!((r.interval, &r.tz, r.bucket_start, &r.scope), (b.interval, &b.tz, b.start, scope));
            out.insert(scope.clone(), r.metrics);
        }
    }
    out
}

async fn assert_matches(
    s: &dyn Storage,
    all: &[Call],
    sentiment: &BTreeMap<CallId, f64>,
    buckets: &[Bucket],
    scopes: &[Scope],
    when: &str,
) {
    for b in buckets {
        let want = reference(all, sentiment, b.start, b.end);
        let got = stored(s, b, scopes).await;
        assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{when}: scopes of {b:?}");
        for (scope, w) in &want {
            assert!(same(&got[scope], w), "{when}: {b:?} / {scope:?}\n got {:?}\nwant {w:?}", got[scope]);
        }
    }
}

/// Rollups equal a recomputation from raw calls, per hour and day bucket and
/// per scope; after corrections (a status Twilio fixes, a new sentiment) the
/// changed hours are reported and a rebuild moves the counts; rebuilding
/// twice changes nothing; the watermark only moves forward.
pub async fn analytics_rollups_equal_a_recomputation(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "analytics_rollups_equal_a_recomputation") {
        return;
    }
    s.migrate().await.unwrap();
    let campaigns = vec![CampaignId::new(), CampaignId::new()];
    let mut all = calls(&campaigns);
    s.insert_calls_bulk(&all, &[]).await.unwrap();
    let mut sentiment = BTreeMap::new();
    for (k, c) in all.iter().enumerate().filter(|(k, _)| k % 3 == 0) {
        let mut t = transcript(&format!("conv_an_{k}"), "done", c.started_at);
        t.call_id = Some(c.id.clone());
        t.sentiment = Some([-0.8, -0.1, 0.0, 0.35, 0.9][k % 5]);
        s.upsert_transcript(&t).await.unwrap();
        sentiment.insert(c.id.clone(), t.sentiment.unwrap());
    }
    let h0 = hour0();
    let mut buckets: Vec<Bucket> = (0..4)
        .map(|k| Bucket {
            interval: Interval::Hour,
            tz: "UTC".into(),
            start: h0 + Duration::hours(k),
            end: h0 + Duration::hours(k + 1),
        })
        .collect();
    // A "day" in some zone: the store only sees its UTC range.
    buckets.push(Bucket {
        interval: Interval::Day,
        tz: "America/New_York".into(),
        start: h0 - Duration::hours(20),
        end: h0 + Duration::hours(4),
    });
    let mut scopes = vec![Scope::global(), Scope::agent("agent_0"), Scope::agent("agent_1"), Scope::agent("agent_2")];
    scopes.extend(campaigns.iter().map(|c| Scope::campaign(c.as_str())));
    scopes.push(Scope::campaign(CampaignId::new().as_str()));

    assert!(
        s.rollups(&RollupQuery {
            interval: Interval::Hour,
            tz: "UTC".into(),
            scope: Scope::global(),
            from: h0,
            to: h0 + Duration::hours(4)
        })
        .await
        .unwrap()
        .is_empty()
    );
    let written = s.rebuild_buckets(&buckets).await.unwrap();
    assert!(written >= 10, "rows written ({written})");
    assert_matches(&*s, &all, &sentiment, &buckets, &scopes, "first build").await;
    assert_eq!(s.rebuild_buckets(&buckets).await.unwrap(), written, "a rebuild writes the same rows");
    assert_matches(&*s, &all, &sentiment, &buckets, &scopes, "rebuilt").await;
    // The empty fourth hour has no rows; a range read returns the hours in order.
    let hours = s
        .rollups(&RollupQuery {
            interval: Interval::Hour,
            tz: "UTC".into(),
            scope: Scope::global(),
            from: h0,
            to: h0 + Duration::hours(4),
        })
        .await
        .unwrap();
    assert_eq!(
        hours.iter().map(|r| r.bucket_start).collect::<Vec<_>>(),
        (0..3).map(|k| h0 + Duration::hours(k)).collect::<Vec<_>>()
    );

    // Corrections: in-flight calls end, one transcript's sentiment changes.
    let since = now_ms() - Duration::seconds(1);
    let changed: Vec<usize> = all
        .iter()
        .enumerate()
        .filter(|(_, c)| matches!(c.status, CallStatus::Queued | CallStatus::Ringing | CallStatus::InProgress))
        .map(|(k, _)| k)
        .take(6)
        .collect();
    assert!(changed.len() >= 3, "the dataset has in-flight calls to correct");
    for (n, k) in changed.iter().enumerate() {
        let u = CallUpdate {
            source: Some(Source::Twilio),
            observed_at: Some(now_ms()),
            call_sid: all[*k].call_sid.clone(),
            sequence: Some(100),
            status: Some(if n % 2 == 0 { CallStatus::Completed } else { CallStatus::NoAnswer }),
            duration_secs: (n % 2 == 0).then_some(42),
            ..Default::default()
        };
        all[*k] = s.upsert_call(&u).await.unwrap().call;
    }
    let first = &all[0];
    let mut t = s.transcript_of_call(&first.id).await.unwrap().expect("call 0 has a transcript");
    // A re-analysis (sentiment travels with its analysis).
    t.analysis = Some(serde_json::json!({"sentiment": {"overall": -0.5}}));
    t.analyzer_version = Some(2);
    t.sentiment = Some(-0.5);
    t.updated_at = now_ms();
    s.upsert_transcript(&t).await.unwrap();
    sentiment.insert(first.id.clone(), -0.5);

    let changes = s.changed_call_hours(since, 1000).await.unwrap();
    assert!(!changes.more);
    let mut want_hours: Vec<DateTime<Utc>> =
        changed.iter().chain([&0]).map(|k| all[*k].created_at.duration_trunc(TimeDelta::hours(1)).unwrap()).collect();
    want_hours.sort();
    want_hours.dedup();
    assert_eq!(
        changes.hours.iter().copied().collect::<Vec<_>>(),
        want_hours,
        "hours of the changed calls and transcript"
    );
    assert!(changes.newest.is_some_and(|n| n >= since));
    // Paged reads: one change at a time still covers every hour.
    let mut seen = std::collections::BTreeSet::new();
    let mut at = since;
    for _ in 0..50 {
        let c = s.changed_call_hours(at, 1).await.unwrap();
        seen.extend(c.hours.iter().copied());
        match (c.more, c.newest) {
            (true, Some(n)) => at = n + Duration::milliseconds(1),
            _ => break,
        }
    }
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), want_hours, "paged change reads cover the same hours");

    s.rebuild_buckets(&buckets).await.unwrap();
    assert_matches(&*s, &all, &sentiment, &buckets, &scopes, "after corrections").await;
    let day = &buckets[4];
    let total = stored(&*s, day, &[Scope::global()]).await;
    assert_eq!(total[&Scope::global()].calls, 160, "every call counted once in the day");

    assert_eq!(s.rollup_watermark().await.unwrap(), None);
    s.advance_rollup_watermark(h0 + Duration::hours(2)).await.unwrap();
    s.advance_rollup_watermark(h0).await.unwrap();
    assert_eq!(s.rollup_watermark().await.unwrap(), Some(h0 + Duration::hours(2)), "the watermark never moves back");
}

/// A bucket written as given (a day summed from its hours) replaces the
/// bucket's rows, skips empty scopes, and reads back with every scope.
pub async fn analytics_buckets_replace_and_read_back_by_range(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "analytics_buckets_replace_and_read_back_by_range") {
        return;
    }
    s.migrate().await.unwrap();
    let day0 = hour0();
    let day =
        Bucket { interval: Interval::Day, tz: "Europe/Paris".into(), start: day0, end: day0 + Duration::hours(24) };
    let mut m = Metrics::new();
    m.calls = 3;
    m.answered = 2;
    m.talk_hist[3] = 1;
    m.termination_reasons.insert("end_call tool".into(), 2);
    let other = Metrics { calls: 1, ..Metrics::new() };
    let rows = vec![
        (Scope::global(), m.clone()),
        (Scope::agent("agent_x"), other.clone()),
        (Scope::campaign("c"), Metrics::new()),
    ];
    assert_eq!(s.replace_bucket(&day, &rows).await.unwrap(), 2, "an empty scope is not written");
    let back = s.rollup_rows(Interval::Day, "Europe/Paris", day0, day0 + Duration::milliseconds(1)).await.unwrap();
    let got: Vec<(Scope, Metrics)> = back.iter().map(|r| (r.scope.clone(), r.metrics.clone())).collect();
    assert_eq!(got, vec![(Scope::agent("agent_x"), other.clone()), (Scope::global(), m.clone())]);
    assert!(back.iter().all(|r| r.bucket_start == day0 && r.interval == Interval::Day && r.tz == "Europe/Paris"));
    // Replaced: the agent's row goes, the global one changes.
    let mut m2 = m.clone();
    m2.calls = 4;
    assert_eq!(s.replace_bucket(&day, &[(Scope::global(), m2.clone())]).await.unwrap(), 1);
    let back =
        s.rollup_rows(Interval::Day, "Europe/Paris", day0 - Duration::days(1), day0 + Duration::days(1)).await.unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!((back[0].scope.clone(), back[0].metrics.clone()), (Scope::global(), m2));
    // Another zone's and interval's rows are apart.
    assert!(s.rollup_rows(Interval::Day, "UTC", day0, day0 + Duration::days(1)).await.unwrap().is_empty());
    assert!(s.rollup_rows(Interval::Hour, "Europe/Paris", day0, day0 + Duration::days(1)).await.unwrap().is_empty());
}
