//! Rollups on MongoDB (`analytics`, `analytics_state`).
//!
//! A bucket is rebuilt by one aggregation on `calls` ([`rollup_pipeline`]):
//! `$match` the calls created in its range, `$lookup` each call's latest
//! transcript (its sentiment), compute each call's figures as
//! [`Metrics::add_call`] defines them, `$unwind` the call into its scopes
//! (global, its campaign, its agent), `$group` per scope and termination
//! reason, then per scope, and `$merge` the rows into `analytics` on the
//! bucket key (replace or insert). Nothing is computed in Rust.
//!
//! Every row a build writes carries its `built_at` (a fresh `ObjectId`, which
//! orders builds by start time); once the merge is done, the bucket's rows of
//! *older* builds (scopes no call backs any more) are deleted. A reader sees
//! the old row or the new one, never a missing bucket. Two rebuilds of one
//! bucket can overlap (the incremental and repair jobs hold different leases,
//! and `analytics rebuild` runs beside `serve`): neither deletes the other's
//! newer rows, and if the older one merges last its rows are at most one
//! rebuild stale (the next change or repair run rebuilds the bucket).
//!
//! The watermark is `{_id: "rollups", watermark}` in `analytics_state`,
//! moved with `$max` (never back).

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use futures::TryStreamExt;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::{Bson, DateTime as BsonDate, Document, doc};
use mongodb::options::{FindOptions, IndexOptions};
use mongodb::{Collection, IndexModel};
use switchboard_domain::time::{from_millis, now_ms};
use switchboard_domain::{AnsweredBy, CallStatus};
use switchboard_storage::analytics::{Changes, HIST_BINS, HIST_BOUNDS_SECS};
use switchboard_storage::{
    AnalyticsStore, Bucket, Interval, Metrics, Rollup, RollupQuery, Scope, StoreError, StoreResult,
};

use crate::docs::{CallDoc, bson_date, chrono_date};
use crate::schema::{ANALYTICS, ANALYTICS_KEY, ANALYTICS_STATE, CALLS, TRANSCRIPTS};
use crate::{MongoStore, is_code, map_err};

const WATERMARK: &str = "rollups";

fn statuses(all: &[CallStatus]) -> Vec<&'static str> {
    all.iter().map(|s| s.as_str()).collect()
}

/// `{$sum: {$cond: [cond, 1, 0]}}`: calls for which `cond` holds.
fn count_if(cond: Bson) -> Bson {
    Bson::Document(doc! { "$sum": { "$cond": [cond, 1, 0] } })
}

/// Whether the field holds a value of BSON type `ty` (absent fields are `missing`).
fn has_type(field: &str, ty: &str) -> Bson {
    Bson::Document(doc! { "$eq": [ { "$type": field }, ty ] })
}

/// The Twilio price in millionths, absolute, as [`price_micros`](switchboard_storage::analytics::price_micros):
/// unparsable, missing, NaN or infinite is 0; rounding is half away from zero;
/// beyond `i64` saturates.
fn cost_micros_expr() -> Document {
    let price = doc! { "$convert": {
    "input": { "$trim": { "input": "$price" } }, "to": "double", "onError": 0.0, "onNull": 0.0 } };
    doc! { "$let": {
        "vars": { "m": { "$multiply": [ { "$abs": price }, 1_000_000.0 ] } },
        "in": { "$switch": {
            "branches": [
                // NaN sorts below every number.
                { "case": { "$not": [ { "$gte": ["$$m", 0.0] } ] }, "then": 0_i64 },
                { "case": { "$eq": ["$$m", f64::INFINITY] }, "then": 0_i64 },
                { "case": { "$gte": ["$$m", 9_223_372_036_854_775_807.0] }, "then": i64::MAX },
            ],
            "default": { "$toLong": { "$add": [
                { "$trunc": "$$m" },
                { "$cond": [ { "$gte": [ { "$subtract": ["$$m", { "$trunc": "$$m" }] }, 0.5 ] }, 1, 0 ] },
            ] } },
        } },
    } }
}

/// The histogram bin of a number of seconds in `field` (null stays null):
/// how many bounds are at or below it.
fn bin_expr(field: &str) -> Document {
    doc! { "$cond": [
        { "$eq": [field, Bson::Null] },
        Bson::Null,
        { "$size": { "$filter": { "input": HIST_BOUNDS_SECS.to_vec(), "cond": { "$gte": [field, "$$this"] } } } },
    ] }
}

/// The figures summed in both `$group` stages (per call, then per partial group).
const SUMMED: [&str; 20] = [
    "calls",
    "in_flight",
    "completed",
    "busy",
    "no_answer",
    "failed",
    "canceled",
    "answered",
    "human",
    "machine",
    "connect_secs",
    "connect_count",
    "talk_secs",
    "talk_count",
    "cost_micros",
    "credits",
    "successful",
    "unsuccessful",
    "sentiment_sum",
    "sentiment_count",
];

/// The aggregation on `calls` that rebuilds bucket `b` into `into`: one row
/// per scope with calls, each stamped `built_at: build` and `updated_at: now`.
/// `transcripts` and `into` are parameters so the server probe can run the
/// very same pipeline on scratch collections.
pub(crate) fn rollup_pipeline(
    b: &Bucket,
    transcripts: &str,
    into: &str,
    build: ObjectId,
    now: BsonDate,
) -> Vec<Document> {
    let status = |s: CallStatus| Bson::Document(doc! { "$eq": ["$status", s.as_str()] });
    let machine: Vec<&str> = [
        AnsweredBy::MachineStart,
        AnsweredBy::MachineEndBeep,
        AnsweredBy::MachineEndSilence,
        AnsweredBy::MachineEndOther,
        AnsweredBy::Fax,
    ]
    .iter()
    .map(|a| a.as_str())
    .collect();

    // Per call, grouped by (scope, termination reason).
    let mut per_call = doc! {
        "_id": { "kind": "$scope.kind", "id": "$scope.id", "reason": "$termination_reason" },
        "calls": { "$sum": 1 },
        "in_flight": count_if(Bson::Document(doc! { "$in": ["$status", statuses(CallStatus::ACTIVE)] })),
        "completed": count_if(status(CallStatus::Completed)),
        "busy": count_if(status(CallStatus::Busy)),
        "no_answer": count_if(status(CallStatus::NoAnswer)),
        "failed": count_if(status(CallStatus::Failed)),
        "canceled": count_if(status(CallStatus::Canceled)),
        "answered": count_if(Bson::Document(doc! { "$or": [has_type("$answered_at", "date"), status(CallStatus::Completed)] })),
        "human": count_if(Bson::Document(doc! { "$eq": ["$answered_by", AnsweredBy::Human.as_str()] })),
        "machine": count_if(Bson::Document(doc! { "$in": ["$answered_by", machine] })),
        "connect_secs": { "$sum": "$connect" },
        "connect_count": count_if(Bson::Document(doc! { "$ne": ["$connect", Bson::Null] })),
        "talk_secs": { "$sum": "$talk" },
        "talk_count": count_if(Bson::Document(doc! { "$ne": ["$talk", Bson::Null] })),
        "cost_micros": { "$sum": "$cost_micros" },
        "credits": { "$sum": { "$ifNull": ["$cost_credits", 0] } },
        "successful": count_if(Bson::Document(doc! { "$eq": ["$call_successful", "success"] })),
        "unsuccessful": count_if(Bson::Document(doc! { "$eq": ["$call_successful", "failure"] })),
        "sentiment_sum": { "$sum": { "$toDouble": { "$ifNull": ["$sentiment", 0.0] } } },
        "sentiment_count": count_if(Bson::Document(doc! { "$isNumber": "$sentiment" })),
    };
    // Per (scope, reason) group, grouped by scope.
    let mut per_scope = doc! {
        "_id": { "kind": "$_id.kind", "id": "$_id.id" },
        "reasons": { "$push": { "k": "$_id.reason", "v": "$calls" } },
    };
    for f in SUMMED {
        per_scope.insert(f, doc! { "$sum": format!("${f}") });
    }
    let mut metrics = Document::new();
    for f in SUMMED {
        metrics.insert(f, format!("${f}"));
    }
    metrics.insert("sentiment_sum", doc! { "$toDouble": "$sentiment_sum" });
    for (hist, bin) in [("connect_hist", "$connect_bin"), ("talk_hist", "$talk_bin")] {
        let mut bins = Vec::with_capacity(HIST_BINS);
        for i in 0..HIST_BINS {
            let name = format!("{}{i}", &hist[..1]);
            per_call.insert(name.clone(), count_if(Bson::Document(doc! { "$eq": [bin, i as i32] })));
            per_scope.insert(name.clone(), doc! { "$sum": format!("${name}") });
            bins.push(Bson::String(format!("${name}")));
        }
        metrics.insert(hist, bins);
    }
    metrics.insert(
        "termination_reasons",
        doc! { "$arrayToObject": { "$filter": {
        "input": "$reasons", "cond": { "$eq": [ { "$type": "$$this.k" }, "string" ] } } } },
    );

    vec![
        doc! { "$match": { "created_at": { "$gte": bson_date(b.start), "$lt": bson_date(b.end) } } },
        // The call's latest transcript (by start, then id), as SQLite's correlated subquery.
        doc! { "$lookup": {
            "from": transcripts,
            "localField": "_id",
            "foreignField": "call_id",
            "pipeline": [
                { "$sort": { "started_at": -1, "_id": -1 } },
                { "$limit": 1 },
                { "$project": { "_id": 0, "sentiment": 1 } },
            ],
            "as": "latest",
        } },
        doc! { "$set": {
            "sentiment": { "$first": "$latest.sentiment" },
            // Whole seconds from start to answer (never negative), only when answered.
            "connect": { "$cond": [
                has_type("$answered_at", "date"),
                { "$toLong": { "$trunc": { "$divide": [
                    { "$max": [0, { "$subtract": ["$answered_at", "$started_at"] }] }, 1000 ] } } },
                Bson::Null,
            ] },
            // Twilio's duration of a completed call.
            "talk": { "$cond": [
                { "$and": [status(CallStatus::Completed), { "$isNumber": "$duration_secs" }] },
                "$duration_secs",
                Bson::Null,
            ] },
            "cost_micros": cost_micros_expr(),
            "scope": { "$concatArrays": [
                [ { "kind": "global", "id": "" } ],
                { "$cond": [has_type("$campaign_id", "string"), [ { "kind": "campaign", "id": "$campaign_id" } ], []] },
                { "$cond": [has_type("$agent_id", "string"), [ { "kind": "agent", "id": "$agent_id" } ], []] },
            ] },
        } },
        doc! { "$set": { "connect_bin": bin_expr("$connect"), "talk_bin": bin_expr("$talk") } },
        doc! { "$unwind": "$scope" },
        doc! { "$group": per_call },
        doc! { "$group": per_scope },
        doc! { "$project": {
            "_id": 0,
            "scope_kind": "$_id.kind",
            "scope_id": "$_id.id",
            "interval": { "$literal": b.interval.as_str() },
            "tz": { "$literal": b.tz.as_str() },
            "bucket_start": { "$literal": bson_date(b.start) },
            "calls": "$calls",
            "metrics": metrics,
            "updated_at": { "$literal": now },
            "built_at": { "$literal": build },
        } },
        doc! { "$merge": {
            "into": into,
            "on": ANALYTICS_KEY.to_vec(),
            "whenMatched": "replace",
            "whenNotMatched": "insert",
        } },
    ]
}

/// The rows of one bucket, by scope.
fn bucket_filter(b: &Bucket) -> Document {
    doc! { "interval": b.interval.as_str(), "tz": b.tz.as_str(), "bucket_start": bson_date(b.start) }
}

fn bad(what: &str) -> StoreError {
    StoreError::Other(anyhow::anyhow!("analytics: stored {what} is invalid"))
}

fn metrics_of(d: &Document) -> StoreResult<Metrics> {
    let m = d.get_document("metrics").map_err(|_| bad("`metrics`"))?;
    mongodb::bson::deserialize_from_document(m.clone())
        .map_err(|e| StoreError::Other(anyhow::anyhow!("analytics: stored `metrics` is invalid: {e}")))
}

fn hour_of(t: BsonDate) -> DateTime<Utc> {
    let t = chrono_date(t);
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

impl MongoStore {
    fn analytics(&self) -> Collection<Document> {
        self.db.collection(ANALYTICS)
    }

    fn analytics_state(&self) -> Collection<Document> {
        self.db.collection(ANALYTICS_STATE)
    }

    async fn rebuild_bucket(&self, b: &Bucket) -> StoreResult<u64> {
        let build = ObjectId::new();
        let pipeline = rollup_pipeline(b, TRANSCRIPTS, ANALYTICS, build, bson_date(now_ms()));
        let calls = self.db.collection::<Document>(CALLS);
        // `$merge` returns no documents; draining the cursor runs it.
        calls
            .aggregate(pipeline)
            .write_concern(self.write_concern.clone())
            .await
            .map_err(map_err)?
            .try_collect::<Vec<Document>>()
            .await
            .map_err(map_err)?;
        let mut mine = bucket_filter(b);
        mine.insert("built_at", build);
        let written = self.analytics().count_documents(mine).await.map_err(map_err)?;
        let mut stale = bucket_filter(b);
        stale.insert("built_at", doc! { "$lt": build });
        self.analytics().delete_many(stale).await.map_err(map_err)?;
        Ok(written)
    }

    /// `(updated_at, created_at hour)` of the changes of one kind since
    /// `since`, and the edge (last instant) when the read hit `limit`.
    async fn changes_of(
        &self,
        coll: &str,
        extra: Document,
        since: BsonDate,
        limit: u32,
    ) -> StoreResult<(Vec<(i64, Document)>, Option<i64>)> {
        let c = self.db.collection::<Document>(coll);
        let mut filter = extra.clone();
        filter.insert("updated_at", doc! { "$gte": since });
        let opts = FindOptions::builder()
            .sort(doc! { "updated_at": 1 })
            .limit(i64::from(limit))
            .projection(doc! { "updated_at": 1, "created_at": 1, "call_id": 1 })
            .build();
        let rows: Vec<Document> =
            c.find(filter).with_options(opts).await.map_err(map_err)?.try_collect().await.map_err(map_err)?;
        let at =
            |d: &Document| d.get_datetime("updated_at").map(|t| t.timestamp_millis()).map_err(|_| bad("`updated_at`"));
        let mut got = rows.into_iter().map(|d| Ok((at(&d)?, d))).collect::<StoreResult<Vec<_>>>()?;
        let mut edge = None;
        if got.len() as u64 >= u64::from(limit)
            && let Some(&(last, _)) = got.last()
        {
            // Every other change at that instant too, so no instant is split between reads.
            got.retain(|(u, _)| *u < last);
            let mut filter = extra;
            filter.insert("updated_at", BsonDate::from_millis(last));
            let opts =
                FindOptions::builder().projection(doc! { "updated_at": 1, "created_at": 1, "call_id": 1 }).build();
            let same: Vec<Document> =
                c.find(filter).with_options(opts).await.map_err(map_err)?.try_collect().await.map_err(map_err)?;
            for d in same {
                got.push((at(&d)?, d));
            }
            edge = Some(last);
        }
        Ok((got, edge))
    }

    /// Runs [`rollup_pipeline`] on scratch collections named from `prefix`
    /// and compares the rows with a fold of [`Metrics::add_call`]; `Err`
    /// says what the server could not do. For the server-gap probe only.
    pub(crate) async fn rollup_aggregation_works(&self, prefix: &str) -> Result<(), String> {
        let calls_name = format!("{prefix}_calls");
        let tr_name = format!("{prefix}_tr");
        let an_name = format!("{prefix}_an");
        let r = self.rollup_probe(&calls_name, &tr_name, &an_name).await;
        for n in [&calls_name, &tr_name, &an_name] {
            let _ = self.db.collection::<Document>(n).drop().await;
        }
        r
    }

    async fn rollup_probe(&self, calls_name: &str, tr_name: &str, an_name: &str) -> Result<(), String> {
        use switchboard_domain::{Call, CallUpdate, Source};
        let h0 = from_millis(1_794_916_800_000);
        let mk = |n: u32, status: CallStatus, created: DateTime<Utc>| {
            let u = CallUpdate {
                source: Some(Source::Twilio),
                observed_at: Some(created),
                call_sid: Some(format!("CA{:032x}", 0xabc0 + n)),
                status: Some(status),
                ..Default::default()
            };
            Call::new_from(&u, created).map_err(|e| format!("probe data: {e}"))
        };
        let mut a = mk(1, CallStatus::Completed, h0 + TimeDelta::seconds(10))?;
        a.campaign_id = Some(switchboard_domain::CampaignId::new());
        a.agent_id = Some("agent_probe".into());
        a.answered_at = Some(a.started_at + TimeDelta::milliseconds(7_500));
        a.answered_by = Some(AnsweredBy::Human);
        a.duration_secs = Some(42);
        a.price = Some("-0.0150".into());
        a.cost_credits = Some(12);
        a.call_successful = Some("success".into());
        a.termination_reason = Some("end_call tool".into());
        let mut b = mk(2, CallStatus::Busy, h0 + TimeDelta::seconds(20))?;
        b.agent_id = Some("agent_probe".into());
        b.answered_by = Some(AnsweredBy::MachineEndBeep);
        b.price = Some("n/a".into());
        b.call_successful = Some("failure".into());
        let mut c = mk(3, CallStatus::InProgress, h0 + TimeDelta::seconds(30))?;
        c.answered_at = Some(c.started_at + TimeDelta::seconds(61));
        c.price = Some(" 0.25 ".into());
        let outside = mk(4, CallStatus::Completed, h0 + TimeDelta::hours(1))?;
        let calls = [a, b, c, outside];
        let docs: Vec<CallDoc> = calls.iter().map(CallDoc::from).collect();
        let step = |what: &'static str| move |e: mongodb::error::Error| format!("{what}: {e}");
        self.db.collection::<CallDoc>(calls_name).insert_many(docs).await.map_err(step("insert calls"))?;
        // Call a: an older transcript and the latest one, whose sentiment counts.
        let tr = self.db.collection::<Document>(tr_name);
        tr.insert_many([
            doc! { "_id": "t1", "call_id": calls[0].id.as_str(), "started_at": bson_date(h0), "sentiment": 0.5 },
            doc! { "_id": "t2", "call_id": calls[0].id.as_str(), "started_at": bson_date(h0 + TimeDelta::seconds(1)),
            "sentiment": -0.25 },
        ])
        .await
        .map_err(step("insert transcripts"))?;
        let an = self.db.collection::<Document>(an_name);
        let key: Document = ANALYTICS_KEY.iter().map(|k| (k.to_string(), Bson::Int32(1))).collect();
        an.create_index(IndexModel::builder().keys(key).options(IndexOptions::builder().unique(true).build()).build())
            .await
            .map_err(step("create the merge key index"))?;
        let bucket = Bucket {
            interval: switchboard_storage::Interval::Hour,
            tz: "UTC".into(),
            start: h0,
            end: h0 + TimeDelta::hours(1),
        };
        let pipeline = rollup_pipeline(&bucket, tr_name, an_name, ObjectId::new(), bson_date(now_ms()));
        let source = self.db.collection::<Document>(calls_name);
        let run = |stages: Vec<Document>| {
            let source = source.clone();
            async move { source.aggregate(stages).await?.try_collect::<Vec<Document>>().await }
        };
        if let Err(e) = run(pipeline.clone()).await {
            // Name the first stage the server cannot run (the prefixes before `$merge` return rows).
            let mut failing = pipeline.len() - 1;
            for n in 1..pipeline.len() {
                if run(pipeline[..n].to_vec()).await.is_err() {
                    failing = n - 1;
                    break;
                }
            }
            let stage = pipeline[failing].keys().next().cloned().unwrap_or_default();
            let mut e = e.to_string();
            if e.len() > 160 {
                let cut = (0..=160).rev().find(|i| e.is_char_boundary(*i)).unwrap_or(0);
                e.truncate(cut);
                e.push('…');
            }
            return Err(format!("stage {} of {} ({stage}) fails: {e}", failing + 1, pipeline.len()));
        }
        let rows: Vec<Document> =
            an.find(doc! {}).await.map_err(step("read rows"))?.try_collect().await.map_err(step("read rows"))?;
        let mut want: BTreeMap<Scope, Metrics> = BTreeMap::new();
        for call in calls.iter().filter(|x| x.created_at < bucket.end) {
            let s = (call.id == calls[0].id).then_some(-0.25);
            for scope in Scope::of_call(call) {
                want.entry(scope).or_default().add_call(call, s);
            }
        }
        let mut got = BTreeMap::new();
        for d in &rows {
            let scope = Scope {
                kind: d.get_str("scope_kind").map_err(|e| format!("row without scope_kind: {e}"))?.to_owned(),
                id: d.get_str("scope_id").map_err(|e| format!("row without scope_id: {e}"))?.to_owned(),
            };
            if !matches!(d.get("bucket_start"), Some(Bson::DateTime(t)) if *t == bson_date(h0)) {
                return Err(format!("row with a wrong bucket_start: {d}"));
            }
            got.insert(scope, metrics_of(d).map_err(|e| e.to_string())?);
        }
        if got != want {
            return Err(format!("rows differ from Metrics::add_call: got {got:?}, want {want:?}"));
        }
        Ok(())
    }
}

/// One stored row as a `Rollup`.
fn rollup_of(d: &Document) -> StoreResult<Rollup> {
    let text = |k: &str| d.get_str(k).map(str::to_owned).map_err(|_| bad(&format!("`{k}`")));
    let date = |k: &str| d.get_datetime(k).map(|t| chrono_date(*t)).map_err(|_| bad(&format!("`{k}`")));
    Ok(Rollup {
        interval: Interval::parse(&text("interval")?).ok_or_else(|| bad("`interval`"))?,
        tz: text("tz")?,
        bucket_start: date("bucket_start")?,
        scope: Scope { kind: text("scope_kind")?, id: text("scope_id")? },
        metrics: metrics_of(d)?,
        updated_at: date("updated_at")?,
    })
}

impl MongoStore {
    async fn find_rollups(&self, filter: Document, sort: Document) -> StoreResult<Vec<Rollup>> {
        let rows: Vec<Document> =
            self.analytics().find(filter).sort(sort).await.map_err(map_err)?.try_collect().await.map_err(map_err)?;
        rows.iter().map(rollup_of).collect()
    }
}

#[async_trait]
impl AnalyticsStore for MongoStore {
    async fn rebuild_buckets(&self, buckets: &[Bucket]) -> StoreResult<u64> {
        let mut written = 0;
        for b in buckets {
            written += self.rebuild_bucket(b).await?;
        }
        Ok(written)
    }

    async fn rollup_rows(
        &self,
        interval: Interval,
        tz: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<Rollup>> {
        let filter = doc! {
            "interval": interval.as_str(),
            "tz": tz,
            "bucket_start": { "$gte": bson_date(from), "$lt": bson_date(to) },
        };
        self.find_rollups(filter, doc! { "bucket_start": 1, "scope_kind": 1, "scope_id": 1 }).await
    }

    /// Each row upserted on the bucket key stamped with this build, then the
    /// bucket's rows of older builds removed (as `rebuild_buckets` does).
    async fn replace_bucket(&self, bucket: &Bucket, rows: &[(Scope, Metrics)]) -> StoreResult<u64> {
        let build = ObjectId::new();
        let now = bson_date(now_ms());
        let mut written = 0;
        for (scope, m) in rows.iter().filter(|(_, m)| m.calls > 0) {
            let mut key = bucket_filter(bucket);
            key.insert("scope_kind", scope.kind.as_str());
            key.insert("scope_id", scope.id.as_str());
            let metrics = mongodb::bson::serialize_to_document(m)
                .map_err(|e| StoreError::Other(anyhow::anyhow!("analytics: metrics: {e}")))?;
            let mut row = key.clone();
            row.insert("calls", m.calls);
            row.insert("metrics", metrics);
            row.insert("updated_at", now);
            row.insert("built_at", build);
            self.analytics()
                .replace_one(key, row)
                .upsert(true)
                .write_concern(self.write_concern.clone())
                .await
                .map_err(map_err)?;
            written += 1;
        }
        let mut stale = bucket_filter(bucket);
        stale.insert("built_at", doc! { "$lt": build });
        self.analytics().delete_many(stale).await.map_err(map_err)?;
        Ok(written)
    }

    async fn rollups(&self, q: &RollupQuery) -> StoreResult<Vec<Rollup>> {
        let filter = doc! {
            "scope_kind": q.scope.kind.as_str(),
            "scope_id": q.scope.id.as_str(),
            "interval": q.interval.as_str(),
            "tz": q.tz.as_str(),
            "bucket_start": { "$gte": bson_date(q.from), "$lt": bson_date(q.to) },
        };
        self.find_rollups(filter, doc! { "bucket_start": 1 }).await
    }

    async fn changed_call_hours(&self, since: DateTime<Utc>, limit: u32) -> StoreResult<Changes> {
        let since = bson_date(since);
        let limit = limit.max(1);
        let (calls, call_edge) = self.changes_of(CALLS, Document::new(), since, limit).await?;
        let (transcripts, tr_edge) =
            self.changes_of(TRANSCRIPTS, doc! { "call_id": { "$exists": true } }, since, limit).await?;
        let edge = match (call_edge, tr_edge) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut rows: Vec<(i64, DateTime<Utc>)> = Vec::new();
        for (u, d) in calls {
            rows.push((u, hour_of(*d.get_datetime("created_at").map_err(|_| bad("call `created_at`"))?)));
        }
        // A transcript's change is its call's hour (a transcript without a stored call has none).
        let ids: Vec<&str> = transcripts.iter().filter_map(|(_, d)| d.get_str("call_id").ok()).collect();
        let created: HashMap<String, BsonDate> = if ids.is_empty() {
            HashMap::new()
        } else {
            let found: Vec<Document> = self
                .db
                .collection::<Document>(CALLS)
                .find(doc! { "_id": { "$in": ids.clone() } })
                .projection(doc! { "created_at": 1 })
                .await
                .map_err(map_err)?
                .try_collect()
                .await
                .map_err(map_err)?;
            found
                .iter()
                .filter_map(|d| Some((d.get_str("_id").ok()?.to_owned(), *d.get_datetime("created_at").ok()?)))
                .collect()
        };
        for (u, d) in &transcripts {
            if let Some(c) = d.get_str("call_id").ok().and_then(|id| created.get(id)) {
                rows.push((*u, hour_of(*c)));
            }
        }
        if let Some(e) = edge {
            rows.retain(|(u, _)| *u <= e);
        }
        Ok(Changes {
            hours: rows.iter().map(|(_, h)| *h).collect(),
            newest: edge.or_else(|| rows.iter().map(|r| r.0).max()).map(from_millis),
            more: edge.is_some(),
        })
    }

    async fn rollup_watermark(&self) -> StoreResult<Option<DateTime<Utc>>> {
        let d = self.analytics_state().find_one(doc! { "_id": WATERMARK }).await.map_err(map_err)?;
        d.map(|d| d.get_datetime("watermark").map(|t| chrono_date(*t)).map_err(|_| bad("`watermark`"))).transpose()
    }

    async fn advance_rollup_watermark(&self, to: DateTime<Utc>) -> StoreResult<()> {
        let update = doc! { "$max": { "watermark": bson_date(to) } };
        for attempt in 0..2 {
            match self.analytics_state().update_one(doc! { "_id": WATERMARK }, update.clone()).upsert(true).await {
                Ok(_) => return Ok(()),
                // Two first writers raced on the upsert: the document exists now; `$max` again.
                Err(e) if attempt == 0 && is_code(&e, 11000) => continue,
                Err(e) => return Err(map_err(e)),
            }
        }
        unreachable!("the loop returns on its last attempt")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pipeline_groups_every_figure_and_merges_on_the_key() {
        let b = Bucket {
            interval: switchboard_storage::Interval::Day,
            tz: "America/New_York".into(),
            start: from_millis(1_794_916_800_000),
            end: from_millis(1_795_003_200_000),
        };
        let p = rollup_pipeline(&b, TRANSCRIPTS, ANALYTICS, ObjectId::new(), BsonDate::from_millis(0));
        let stages: Vec<&str> = p.iter().map(|s| s.keys().next().unwrap().as_str()).collect();
        assert_eq!(stages, ["$match", "$lookup", "$set", "$set", "$unwind", "$group", "$group", "$project", "$merge"]);
        let metrics = p[7].get_document("$project").unwrap().get_document("metrics").unwrap();
        // Every field of `Metrics` is written (a new figure cannot be forgotten here).
        let fields = mongodb::bson::serialize_to_document(&Metrics::new()).unwrap();
        let mut want: Vec<&str> = fields.keys().map(String::as_str).collect();
        let mut got: Vec<&str> = metrics.keys().map(String::as_str).collect();
        want.sort();
        got.sort();
        assert_eq!(got, want);
        assert_eq!(metrics.get_array("connect_hist").unwrap().len(), HIST_BINS);
        let merge = p[8].get_document("$merge").unwrap();
        assert_eq!(merge.get_str("whenMatched").ok(), Some("replace"));
    }
}
