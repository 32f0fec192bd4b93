//! The dashboard API: `GET /api/v1/dashboard/summary`,
//! `GET /api/v1/dashboard/timeseries` and `GET /api/v1/campaigns/{id}/performance`.
//!
//! Everything here reads the `analytics` rollups (hour buckets in UTC, day
//! buckets in the reporting zone), never raw calls, so a request costs a
//! handful of index reads whatever the call volume. Figures lag the calls by
//! at most one rollup tick (`analytics.tick_ms`, 1 s by default).
//!
//! Responses are cached (`crate::cache`): the summary for
//! `cache.summary_ttl_ms`, series and performance for `cache.rollups_ttl_ms`,
//! each keyed by the rollup generation, which every rebuild bumps. Default
//! ranges end at a bucket boundary (the end of the current hour or local
//! day), so repeated default requests share a key.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::routing::get;
use chrono::{DateTime, Duration, DurationRound, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CampaignId, CampaignStatus};
use switchboard_storage::{Interval, Metrics, RollupQuery, Scope};
use utoipa::ToSchema;

use super::query::Query;
use crate::AppState;
use crate::cache::Kind;
use crate::error::ApiError;
use crate::jobs::rollups::local_midnight;

/// Most points one timeseries returns (a longer range is a 400 naming `from`).
pub const MAX_POINTS: i64 = 2_000;
/// How far back `calls_in_flight` looks: calls still in flight after this
/// long are ended by the reconciler's deadlines, not counted as live.
const IN_FLIGHT_HOURS: i64 = 48;

/// Headline figures of a period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PeriodFigures {
    /// Calls created in the period.
    pub calls: i64,
    /// Answered (by a person or a machine).
    pub answered: i64,
    /// Answered by a person.
    pub answered_by_person: i64,
    /// Voicemail / machine.
    pub voicemail: i64,
    /// answered / ended calls; null before any call ended.
    #[schema(required = true)]
    pub answer_rate: Option<f64>,
    /// Talk time (seconds).
    pub talk_secs: i64,
    /// Twilio cost in the price unit.
    pub cost: f64,
    /// ElevenLabs judged successful.
    pub successful: i64,
}

impl PeriodFigures {
    fn of(m: &Metrics) -> PeriodFigures {
        PeriodFigures {
            calls: m.calls,
            answered: m.answered,
            answered_by_person: m.human,
            voicemail: m.machine,
            answer_rate: m.answer_rate(),
            talk_secs: m.talk_secs,
            cost: m.cost_micros as f64 / 1e6,
            successful: m.successful,
        }
    }
}

/// Change of today against the same hours of the previous day.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Change {
    /// Relative change of calls ((today − previous) / previous); null when previous is 0.
    #[schema(required = true)]
    pub calls: Option<f64>,
    /// Answer rate today minus previous (absolute); null when either is null.
    #[schema(required = true)]
    pub answer_rate: Option<f64>,
    /// Relative change of talk time; null when previous is 0.
    #[schema(required = true)]
    pub talk_secs: Option<f64>,
}

/// The dashboard headline.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Summary {
    /// When computed.
    pub as_of: DateTime<Utc>,
    /// The zone "today" is in.
    pub tz: String,
    /// Calls not ended yet (created in the last 48 hours).
    pub calls_in_flight: i64,
    /// Campaigns running.
    pub active_campaigns: u64,
    /// Today so far (local midnight to now).
    pub today: PeriodFigures,
    /// The same hours of the previous day.
    pub previous: PeriodFigures,
    /// Today against the previous period.
    pub change: Change,
}

fn rel(now: i64, before: i64) -> Option<f64> {
    (before != 0).then(|| (now - before) as f64 / before as f64)
}

fn parse_tz(q: &mut Query, state: &AppState) -> Tz {
    match q.one("tz") {
        None => state.settings.analytics.tz(),
        Some(z) => z.parse::<Tz>().unwrap_or_else(|_| {
            q.bad("tz", format!("`{z}` is not an IANA time zone (e.g. UTC, America/New_York)"));
            chrono_tz::UTC
        }),
    }
}

fn scope_of(q: &mut Query) -> Scope {
    let campaign = q.one("campaign_id");
    let agent = q.one("agent_id");
    match (campaign, agent) {
        (Some(_), Some(_)) => {
            q.bad("agent_id", "give campaign_id or agent_id, not both");
            Scope::global()
        }
        (Some(c), None) => match CampaignId::parse(&c) {
            Ok(c) => Scope::campaign(c.as_str()),
            Err(e) => {
                q.bad("campaign_id", e.to_string());
                Scope::global()
            }
        },
        (None, Some(a)) => {
            if a.is_empty() || a.len() > 128 {
                q.bad("agent_id", "must be 1 to 128 characters");
            }
            Scope::agent(&a)
        }
        (None, None) => Scope::global(),
    }
}

fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::hours(1)).unwrap_or(t)
}

/// The hour rollups of `scope` with `from <= start < to`, summed.
async fn sum_hours(
    state: &AppState,
    scope: &Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Metrics, ApiError> {
    let rows = state
        .store
        .rollups(&RollupQuery { interval: Interval::Hour, tz: "UTC".into(), scope: scope.clone(), from, to })
        .await?;
    let mut m = Metrics::new();
    for r in rows {
        m.merge(&r.metrics);
    }
    Ok(m)
}

/// Now, today and the same hours of yesterday (from hour buckets: a zone
/// with a half-hour offset starts "today" at the hour holding its midnight).
#[utoipa::path(get, path = "/api/v1/dashboard/summary", tag = "dashboard", operation_id = "dashboard_summary",
    params(("tz" = Option<String>, Query, description = "IANA zone of \"today\"; default `analytics.reporting_tz`")),
    responses(
        (status = 200, description = "The headline figures", body = Summary),
        (status = 400, description = "A bad parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn summary(State(state): State<AppState>, uri: Uri) -> Result<Json<Summary>, ApiError> {
    let mut q = Query::parse(uri.query(), &["tz"]);
    let tz = parse_tz(&mut q, &state);
    q.finish()?;
    let key = format!("sb:dash:summary:{}:{}", state.cache.generation().await, tz.name());
    let out = state.cache.get_or_compute(Kind::Summary, &key, || compute_summary(&state, tz)).await?;
    Ok(Json(out))
}

async fn compute_summary(state: &AppState, tz: Tz) -> Result<Summary, ApiError> {
    let state = state.clone();
    let now = now_ms();
    let today_start = hour_start(local_midnight(tz, now.with_timezone(&tz).date_naive()));
    let end = hour_start(now) + Duration::hours(1);
    let global = Scope::global();
    let today = sum_hours(&state, &global, today_start, end).await?;
    let previous = sum_hours(&state, &global, today_start - Duration::days(1), end - Duration::days(1)).await?;
    let recent = sum_hours(&state, &global, end - Duration::hours(IN_FLIGHT_HOURS), end).await?;
    let active =
        state.store.list_campaigns(&[CampaignStatus::Running], &switchboard_storage::PageRequest::first(200)).await?;
    let (t, p) = (PeriodFigures::of(&today), PeriodFigures::of(&previous));
    Ok(Summary {
        as_of: now,
        tz: tz.name().to_owned(),
        calls_in_flight: recent.in_flight,
        active_campaigns: active.items.len() as u64 + if active.next_cursor.is_some() { 1 } else { 0 },
        change: Change {
            calls: rel(t.calls, p.calls),
            answer_rate: t.answer_rate.zip(p.answer_rate).map(|(a, b)| a - b),
            talk_secs: rel(t.talk_secs, p.talk_secs),
        },
        today: t,
        previous: p,
    })
}

/// The metrics a timeseries can plot.
pub const METRICS: &[&str] = &[
    "calls",
    "answered",
    "answered_by_person",
    "voicemail",
    "busy",
    "no_answer",
    "failed",
    "in_flight",
    "answer_rate",
    "talk_time",
    "avg_talk_time",
    "avg_connect_time",
    "cost",
    "credits",
    "successful",
    "success_rate",
    "sentiment",
];

/// The metric of a time series (OpenAPI; `METRICS` is the list the handler checks).
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum MetricParam {
    /// Calls created.
    Calls,
    /// Answered by anyone or anything.
    Answered,
    /// Answered by a person.
    AnsweredByPerson,
    /// Voicemail / machine.
    Voicemail,
    /// Busy.
    Busy,
    /// Not answered.
    NoAnswer,
    /// Could not be placed.
    Failed,
    /// Not ended yet.
    InFlight,
    /// answered / ended.
    AnswerRate,
    /// Talk time (s).
    TalkTime,
    /// Mean talk time (s).
    AvgTalkTime,
    /// Mean time to answer (s).
    AvgConnectTime,
    /// Twilio cost.
    Cost,
    /// ElevenLabs credits.
    Credits,
    /// Judged successful.
    Successful,
    /// successful / judged.
    SuccessRate,
    /// Mean sentiment.
    Sentiment,
}

/// Bucket width of a time series.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
pub enum IntervalParam {
    /// One UTC hour.
    Hour,
    /// One local day.
    Day,
}

/// One metric of one bucket (`None`: a rate or mean with nothing to divide).
pub fn metric_value(m: &Metrics, metric: &str) -> Option<f64> {
    let ratio = |a: i64, b: i64| (b > 0).then(|| a as f64 / b as f64);
    Some(match metric {
        "calls" => m.calls as f64,
        "answered" => m.answered as f64,
        "answered_by_person" => m.human as f64,
        "voicemail" => m.machine as f64,
        "busy" => m.busy as f64,
        "no_answer" => m.no_answer as f64,
        "failed" => m.failed as f64,
        "in_flight" => m.in_flight as f64,
        "answer_rate" => return m.answer_rate(),
        "talk_time" => m.talk_secs as f64,
        "avg_talk_time" => return ratio(m.talk_secs, m.talk_count),
        "avg_connect_time" => return ratio(m.connect_secs, m.connect_count),
        "cost" => m.cost_micros as f64 / 1e6,
        "credits" => m.credits as f64,
        "successful" => m.successful as f64,
        "success_rate" => return ratio(m.successful, m.successful + m.unsuccessful),
        "sentiment" => return m.sentiment_mean(),
        _ => return None,
    })
}

/// One point.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Point {
    /// Bucket start (UTC instant; local midnight for days).
    pub t: DateTime<Utc>,
    /// The value; 0 for a bucket without calls, null for a rate with nothing to divide.
    #[schema(required = true)]
    pub value: Option<f64>,
}

/// A time series.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimeSeries {
    /// The metric.
    pub metric: String,
    /// `hour` or `day`.
    pub interval: String,
    /// Zone of day buckets.
    pub tz: String,
    /// `global`, `campaign` or `agent`.
    pub scope: String,
    /// Campaign or agent id; empty for global.
    pub scope_id: String,
    /// Every bucket of the range, oldest first (gaps filled).
    pub points: Vec<Point>,
}

/// A zone whose local midnights over `[from, to)` all fall on whole UTC
/// hours (so its days are sums of hour buckets).
fn whole_hour_days(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> bool {
    local_days(tz, from, to).iter().all(|(s, e)| *s == hour_start(*s) && *e == hour_start(*e))
}

/// A metric per hour or per day, gaps filled with zeros, for everything or one campaign or agent.
#[utoipa::path(get, path = "/api/v1/dashboard/timeseries", tag = "dashboard", operation_id = "dashboard_timeseries",
    params(
        ("metric" = MetricParam, Query, description = "What to plot"),
        ("interval" = Option<IntervalParam>, Query, description = "`hour` (default) or `day`"),
        ("from" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "First bucket holding this instant (RFC 3339); default 24 hours (hour) or 30 days (day) ago"),
        ("to" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "End (exclusive, RFC 3339); default now"),
        ("tz" = Option<String>, Query, description = "IANA zone of day buckets; default `analytics.reporting_tz` (another zone must have whole-hour offsets)"),
        ("campaign_id" = Option<String>, Query, description = "One campaign (`cmp_…`)"),
        ("agent_id" = Option<String>, Query, description = "One ElevenLabs agent"),
    ),
    responses(
        (status = 200, description = "The series", body = TimeSeries),
        (status = 400, description = "A bad parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn timeseries(State(state): State<AppState>, uri: Uri) -> Result<Json<TimeSeries>, ApiError> {
    let mut q = Query::parse(uri.query(), &["metric", "interval", "from", "to", "tz", "campaign_id", "agent_id"]);
    let metric = q.one("metric").unwrap_or_default();
    if !METRICS.contains(&metric.as_str()) {
        q.bad("metric", format!("must be one of {}", METRICS.join(", ")));
    }
    // Typed: `interval=` is an invalid value, not an absent one.
    let interval = match q.raw("interval").as_deref() {
        None | Some("hour") => Interval::Hour,
        Some("day") => Interval::Day,
        Some(other) => {
            q.bad("interval", format!("`{other}` is not hour or day"));
            Interval::Hour
        }
    };
    let tz = parse_tz(&mut q, &state);
    let scope = scope_of(&mut q);
    let now = now_ms();
    // Defaults end at the current bucket's end (same points as "now", and a shared cache key).
    let to = q.time("to").unwrap_or_else(|| match interval {
        Interval::Hour => hour_start(now) + Duration::hours(1),
        Interval::Day => day_end(tz, now),
    });
    let from = q.time("from").unwrap_or(match interval {
        Interval::Hour => to - Duration::hours(24),
        Interval::Day => to - Duration::days(30),
    });
    let reporting = state.settings.analytics.tz();
    if from >= to {
        q.bad("from", "must be before `to`");
    } else {
        let span = match interval {
            Interval::Hour => (to - from).num_hours(),
            Interval::Day => (to - from).num_days(),
        };
        if span > MAX_POINTS {
            q.bad("from", format!("the range holds more than {MAX_POINTS} {}s", interval.as_str()));
        } else if interval == Interval::Day && tz != reporting && !whole_hour_days(tz, from, to) {
            q.bad(
                "tz",
                format!(
                    "day buckets in {} need whole-hour offsets, or analytics.reporting_tz = {} (it is {})",
                    tz.name(),
                    tz.name(),
                    reporting.name()
                ),
            );
        }
    }
    q.finish()?;
    let key = format!(
        "sb:dash:ts:{}:{metric}:{}:{}:{}:{}:{}:{}",
        state.cache.generation().await,
        interval.as_str(),
        tz.name(),
        scope.kind,
        scope.id,
        from.timestamp_millis(),
        to.timestamp_millis()
    );
    let out = state
        .cache
        .get_or_compute(Kind::Rollups, &key, || series(&state, metric, interval, tz, scope, from, to))
        .await?;
    Ok(Json(out))
}

async fn series(
    state: &AppState,
    metric: String,
    interval: Interval,
    tz: Tz,
    scope: Scope,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<TimeSeries, ApiError> {
    let reporting = state.settings.analytics.tz();
    let mut points = Vec::new();
    match interval {
        Interval::Hour => {
            let first = hour_start(from);
            let rows = state
                .store
                .rollups(&RollupQuery { interval, tz: "UTC".into(), scope: scope.clone(), from: first, to })
                .await?;
            let by: BTreeMap<DateTime<Utc>, Metrics> = rows.into_iter().map(|r| (r.bucket_start, r.metrics)).collect();
            let mut t = first;
            let empty = Metrics::new();
            while t < to {
                points.push(Point { t, value: metric_value(by.get(&t).unwrap_or(&empty), &metric) });
                t += Duration::hours(1);
            }
        }
        Interval::Day => {
            let days = local_days(tz, from, to);
            let mut by: BTreeMap<DateTime<Utc>, Metrics> = BTreeMap::new();
            let (Some(first), Some(last)) = (days.first(), days.last()) else { unreachable!("from < to") };
            if tz == reporting {
                let rows = state
                    .store
                    .rollups(&RollupQuery {
                        interval,
                        tz: tz.name().to_owned(),
                        scope: scope.clone(),
                        from: first.0,
                        to: last.0 + Duration::milliseconds(1),
                    })
                    .await?;
                by.extend(rows.into_iter().map(|r| (r.bucket_start, r.metrics)));
            } else {
                let rows = state
                    .store
                    .rollups(&RollupQuery {
                        interval: Interval::Hour,
                        tz: "UTC".into(),
                        scope: scope.clone(),
                        from: first.0,
                        to: last.1,
                    })
                    .await?;
                let mut k = 0;
                for r in rows {
                    while k + 1 < days.len() && r.bucket_start >= days[k].1 {
                        k += 1;
                    }
                    by.entry(days[k].0).or_default().merge(&r.metrics);
                }
            }
            let empty = Metrics::new();
            for (start, _) in days {
                points.push(Point { t: start, value: metric_value(by.get(&start).unwrap_or(&empty), &metric) });
            }
        }
    }
    Ok(TimeSeries {
        metric,
        interval: interval.as_str().to_owned(),
        tz: tz.name().to_owned(),
        scope: scope.kind,
        scope_id: scope.id,
        points,
    })
}

/// The end of the local day holding `at`.
fn day_end(tz: Tz, at: DateTime<Utc>) -> DateTime<Utc> {
    let d = at.with_timezone(&tz).date_naive();
    local_midnight(tz, d.succ_opt().unwrap_or(d))
}

/// The local days of `tz` touching `[from, to)`: (start, end) in UTC.
fn local_days(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(DateTime<Utc>, DateTime<Utc>)> {
    let mut out = Vec::new();
    let mut d: NaiveDate = from.with_timezone(&tz).date_naive();
    while let Some(next) = d.succ_opt() {
        let (s, e) = (local_midnight(tz, d), local_midnight(tz, next));
        if s >= to {
            break;
        }
        out.push((s, e));
        d = next;
    }
    out
}

/// One funnel step.
#[derive(Debug, Serialize, ToSchema)]
pub struct FunnelStep {
    /// `enrolled`, `attempted`, `connected`, `answered_by_person`, `successful`.
    pub step: String,
    /// Contacts (enrolled) or calls (the rest).
    pub count: i64,
    /// count / the previous step's count; null for the first or after a 0.
    #[schema(required = true)]
    pub rate: Option<f64>,
}

/// One day of conversation quality.
#[derive(Debug, Serialize, ToSchema)]
pub struct QualityPoint {
    /// Local midnight (UTC instant).
    pub day: DateTime<Utc>,
    /// Calls created that day.
    pub calls: i64,
    /// Mean overall sentiment of analysed transcripts; null without any.
    #[schema(required = true)]
    pub sentiment: Option<f64>,
    /// successful / (successful + unsuccessful); null without verdicts.
    #[schema(required = true)]
    pub success_rate: Option<f64>,
}

/// Conversation quality over the period.
#[derive(Debug, Serialize, ToSchema)]
pub struct Quality {
    /// Mean sentiment; null without analysed transcripts.
    #[schema(required = true)]
    pub sentiment: Option<f64>,
    /// successful / judged; null without verdicts.
    #[schema(required = true)]
    pub success_rate: Option<f64>,
    /// Mean talk time of completed calls (s).
    #[schema(required = true)]
    pub avg_talk_secs: Option<f64>,
    /// Median and 90th percentile talk time, to the histogram's resolution (bin upper bound, s).
    #[schema(required = true)]
    pub talk_p50_secs: Option<i64>,
    /// 90th percentile talk time (bin upper bound, s).
    #[schema(required = true)]
    pub talk_p90_secs: Option<i64>,
    /// Calls per termination reason.
    pub termination_reasons: BTreeMap<String, i64>,
    /// Per day (reporting zone), oldest first.
    pub trend: Vec<QualityPoint>,
}

/// A campaign's performance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Performance {
    /// The campaign.
    #[schema(value_type = super::schemas::CampaignId)]
    pub campaign_id: CampaignId,
    /// Period start.
    pub from: DateTime<Utc>,
    /// Period end.
    pub to: DateTime<Utc>,
    /// Zone of the days.
    pub tz: String,
    /// Enrolled contacts, then calls attempted → connected → answered by a person → judged successful.
    pub funnel: Vec<FunnelStep>,
    /// Calls by outcome (`completed`, `busy`, `no_answer`, `failed`, `canceled`, `in_flight`, `voicemail`).
    pub outcomes: BTreeMap<String, i64>,
    /// The period's totals.
    pub totals: PeriodFigures,
    /// Conversation quality.
    pub quality: Quality,
    /// Attempts by attempt number (1st, 2nd, …) and what they came to.
    pub by_attempt: Vec<AttemptFigures>,
    /// Call pattern analysis: when recipients answer, by their local hour of day and weekday.
    pub call_pattern: CallPattern,
}

/// What the attempts with one attempt number came to.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct AttemptFigures {
    /// 1 for first attempts, 2 for second, …
    pub attempt: u32,
    /// Finished attempts with this number.
    pub attempts: u64,
    /// Answered by a person.
    pub answered: u64,
    /// Answered by a machine.
    pub voicemail: u64,
    /// Busy.
    pub busy: u64,
    /// Not answered.
    pub no_answer: u64,
    /// Failed or cancelled.
    pub failed: u64,
    /// `answered / attempts` (`null` with no attempts).
    pub answer_rate: Option<f64>,
}

/// Finished attempts and person-answered ones in one slot.
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct PatternSlot {
    /// Hour of day (0–23) or ISO weekday (1 = Monday … 7 = Sunday), recipient-local.
    pub slot: u32,
    /// Finished attempts placed in this slot.
    pub attempts: u64,
    /// Of them, answered by a person.
    pub answered: u64,
    /// `answered / attempts` (`null` with no attempts).
    pub answer_rate: Option<f64>,
}

/// When people answer, in each recipient's own zone (the contact's zone, or
/// its phone region's, else the campaign's schedule zone — as the dialer's windows).
#[derive(Debug, Default, Clone, Serialize, Deserialize, ToSchema)]
pub struct CallPattern {
    /// 24 slots, hour 0 to 23.
    pub by_hour: Vec<PatternSlot>,
    /// 7 slots, Monday (1) to Sunday (7).
    pub by_weekday: Vec<PatternSlot>,
    /// The best hour (highest answer rate among hours with at least 5 attempts).
    pub best_hour: Option<u32>,
}

/// By-attempt figures and the call pattern of a campaign, from its
/// enrollments' attempt histories (the last [`switchboard_domain::enrollment::HISTORY`]
/// attempts of each) and its contacts' zones. Not a rollup: callers cache it.
/// (Boxed and owning its inputs: the compiler cannot prove the stream of
/// contact reads `Send` for every lifetime inside the cache's single flight.)
fn attempt_analysis(
    state: AppState,
    c: switchboard_domain::Campaign,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> futures::future::BoxFuture<'static, Result<(Vec<AttemptFigures>, CallPattern), ApiError>> {
    Box::pin(attempt_analysis_inner(state, c, from, to))
}

async fn attempt_analysis_inner(
    state: AppState,
    c: switchboard_domain::Campaign,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<(Vec<AttemptFigures>, CallPattern), ApiError> {
    use chrono::{Datelike, Timelike};
    use futures::StreamExt;
    use switchboard_domain::enrollment::Outcome;
    let mut by_attempt: BTreeMap<u32, AttemptFigures> = BTreeMap::new();
    let mut hours = vec![PatternSlot::default(); 24];
    let mut weekdays = vec![PatternSlot::default(); 7];
    let mut page = switchboard_storage::PageRequest { limit: 500, cursor: None };
    loop {
        let batch = state.store.list_enrollments(&c.id, &[], &page).await?;
        let ids: Vec<switchboard_domain::ContactId> = batch.items.iter().map(|e| e.contact_id.clone()).collect();
        let zones: HashMap<switchboard_domain::ContactId, chrono_tz::Tz> = futures::stream::iter(ids)
            .map(|id| {
                // Owned, so the futures are Send for any lifetime.
                let store = state.store.clone();
                let fallback = c.schedule.time_zone.clone();
                let default_tz = c.default_tz();
                async move {
                    let contact = store.get_contact(&id).await?;
                    let tz = contact
                        .as_ref()
                        .map(|k| k.effective_time_zone(&fallback).to_owned())
                        .and_then(|z| z.parse::<chrono_tz::Tz>().ok())
                        .unwrap_or(default_tz);
                    Ok::<_, switchboard_storage::StoreError>((id, tz))
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
            .into_iter()
            .collect::<Result<_, _>>()?;
        for e in &batch.items {
            let tz = zones.get(&e.contact_id).copied().unwrap_or_else(|| c.default_tz());
            for a in &e.history {
                let Some(outcome) = a.outcome else { continue };
                if a.at < from || a.at >= to {
                    continue;
                }
                let f = by_attempt.entry(a.n).or_insert_with(|| AttemptFigures { attempt: a.n, ..Default::default() });
                f.attempts += 1;
                match outcome {
                    Outcome::Answered => f.answered += 1,
                    Outcome::Voicemail => f.voicemail += 1,
                    Outcome::Busy => f.busy += 1,
                    Outcome::NoAnswer => f.no_answer += 1,
                    Outcome::Failed => f.failed += 1,
                }
                let local = a.at.with_timezone(&tz);
                let person = u64::from(outcome == Outcome::Answered);
                for slot in
                    [&mut hours[local.hour() as usize], &mut weekdays[local.weekday().num_days_from_monday() as usize]]
                {
                    slot.attempts += 1;
                    slot.answered += person;
                }
            }
        }
        match batch.next_cursor {
            Some(next) => page.cursor = Some(next),
            None => break,
        }
    }
    let rate = |n: u64, d: u64| (d > 0).then(|| n as f64 / d as f64);
    let by_attempt: Vec<AttemptFigures> = by_attempt
        .into_values()
        .map(|mut f| {
            f.answer_rate = rate(f.answered, f.attempts);
            f
        })
        .collect();
    for (i, s) in hours.iter_mut().enumerate() {
        s.slot = i as u32;
        s.answer_rate = rate(s.answered, s.attempts);
    }
    for (i, s) in weekdays.iter_mut().enumerate() {
        s.slot = i as u32 + 1;
        s.answer_rate = rate(s.answered, s.attempts);
    }
    let best_hour = hours
        .iter()
        .filter(|s| s.attempts >= 5)
        .max_by(|a, b| a.answer_rate.partial_cmp(&b.answer_rate).unwrap_or(std::cmp::Ordering::Equal))
        .map(|s| s.slot);
    Ok((by_attempt, CallPattern { by_hour: hours, by_weekday: weekdays, best_hour }))
}

/// The funnel, outcomes and conversation quality of one campaign, from its day rollups.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/performance", tag = "dashboard", operation_id = "campaign_performance",
    params(
        ("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400"),
        ("from" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Start (RFC 3339); default the campaign's creation"),
        ("to" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "End (RFC 3339); default now"),
    ),
    responses(
        (status = 200, description = "The campaign's performance", body = Performance),
        (status = 400, description = "Malformed id or parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn performance(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<Performance>, ApiError> {
    let mut q = Query::parse(uri.query(), &["from", "to"]);
    let from = q.time("from");
    let to = q.time("to");
    q.finish()?;
    let c = super::campaigns::load(&state, &id).await?;
    let tz = state.settings.analytics.tz();
    let to = to.unwrap_or_else(|| day_end(tz, now_ms()));
    let from = from.unwrap_or(c.created_at).max(to - Duration::days(MAX_POINTS));
    let days = local_days(tz, from, to);
    let key = format!(
        "sb:perf:{}:{}:{}:{}",
        state.cache.generation().await,
        c.id,
        from.timestamp_millis(),
        to.timestamp_millis()
    );
    let rows: Vec<(DateTime<Utc>, Metrics)> = state
        .cache
        .get_or_compute(Kind::Rollups, &key, || async {
            let rows = match (days.first(), days.last()) {
                (Some(first), Some(last)) => {
                    state
                        .store
                        .rollups(&RollupQuery {
                            interval: Interval::Day,
                            tz: tz.name().to_owned(),
                            scope: Scope::campaign(c.id.as_str()),
                            from: first.0,
                            to: last.0 + Duration::milliseconds(1),
                        })
                        .await?
                }
                _ => vec![],
            };
            Ok::<_, ApiError>(rows.into_iter().map(|r| (r.bucket_start, r.metrics)).collect())
        })
        .await?;
    let mut total = Metrics::new();
    let mut trend = Vec::with_capacity(rows.len());
    for (day, m) in &rows {
        total.merge(m);
        trend.push(QualityPoint {
            day: *day,
            calls: m.calls,
            sentiment: m.sentiment_mean(),
            success_rate: metric_value(m, "success_rate"),
        });
    }
    let attempts_key = format!("{key}:attempts");
    let (by_attempt, call_pattern) = state
        .cache
        .get_or_compute(Kind::Rollups, &attempts_key, || attempt_analysis(state.clone(), c.clone(), from, to))
        .await?;
    let enrolled: u64 = state.store.count_enrollments(&c.id).await?.iter().map(|(_, n)| n).sum();
    let steps = [
        ("enrolled", enrolled as i64),
        ("attempted", total.calls),
        ("connected", total.answered),
        ("answered_by_person", total.human),
        ("successful", total.successful),
    ];
    let mut funnel = Vec::new();
    let mut prev: Option<i64> = None;
    for (step, count) in steps {
        funnel.push(FunnelStep {
            step: step.into(),
            count,
            rate: prev.and_then(|p| (p > 0).then(|| count as f64 / p as f64)),
        });
        prev = Some(count);
    }
    let outcomes = BTreeMap::from([
        ("completed".to_owned(), total.completed),
        ("busy".to_owned(), total.busy),
        ("no_answer".to_owned(), total.no_answer),
        ("failed".to_owned(), total.failed),
        ("canceled".to_owned(), total.canceled),
        ("in_flight".to_owned(), total.in_flight),
        ("voicemail".to_owned(), total.machine),
    ]);
    Ok(Json(Performance {
        campaign_id: c.id,
        from,
        to,
        tz: tz.name().to_owned(),
        funnel,
        outcomes,
        quality: Quality {
            sentiment: total.sentiment_mean(),
            success_rate: metric_value(&total, "success_rate"),
            avg_talk_secs: metric_value(&total, "avg_talk_time"),
            talk_p50_secs: Metrics::hist_quantile(&total.talk_hist, 0.5),
            talk_p90_secs: Metrics::hist_quantile(&total.talk_hist, 0.9),
            termination_reasons: total.termination_reasons.clone(),
            trend,
        },
        totals: PeriodFigures::of(&total),
        by_attempt,
        call_pattern,
    }))
}

/// Routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/dashboard/summary", get(summary))
        .route("/dashboard/timeseries", get(timeseries))
        .route("/campaigns/{id}/performance", get(performance))
}

// ---- the page ----

const PAGE: &str = include_str!("../../assets/dashboard.html");
const APP_JS: &str = include_str!("../../assets/dashboard.js");
/// The official Socket.IO browser client (4.8.4, MIT), vendored: the page works offline.
const SOCKET_IO_JS: &str = include_str!("../../assets/socket.io.min.js");
/// Only our own origin: no CDN, inline styles for the one stylesheet, blob: for recordings.
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self' ws: wss:; img-src 'self' data:; media-src 'self' blob:; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// `GET /dashboard`: the live dashboard (assets embedded in the binary; the API token is asked for in the page).
pub fn page_router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/dashboard", get(async || asset("text/html; charset=utf-8", PAGE)))
        .route("/dashboard/app.js", get(async || asset("text/javascript; charset=utf-8", APP_JS)))
        .route("/dashboard/socket.io.min.js", get(async || asset("text/javascript; charset=utf-8", SOCKET_IO_JS)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn local_days_cover_the_range_across_dst() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let d = local_days(ny, utc("2026-10-31T12:00:00Z"), utc("2026-11-02T12:00:00Z"));
        assert_eq!(d.len(), 3);
        assert_eq!(d[1], (utc("2026-11-01T04:00:00Z"), utc("2026-11-02T05:00:00Z")));
        assert!(whole_hour_days(ny, utc("2026-10-31T12:00:00Z"), utc("2026-11-02T12:00:00Z")));
        let india: Tz = "Asia/Kolkata".parse().unwrap();
        assert!(!whole_hour_days(india, utc("2026-10-31T12:00:00Z"), utc("2026-11-02T12:00:00Z")));
    }

    #[test]
    fn the_documented_metrics_are_the_served_ones() {
        let doc: serde_json::Value = serde_json::from_str(&crate::http::openapi::document()).unwrap();
        let listed: Vec<&str> = doc["components"]["schemas"]["MetricParam"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        assert_eq!(listed, METRICS);
    }

    #[test]
    fn rates_are_null_with_nothing_to_divide() {
        let mut m = Metrics::new();
        assert_eq!(metric_value(&m, "calls"), Some(0.0));
        assert_eq!(metric_value(&m, "answer_rate"), None);
        m.calls = 4;
        m.answered = 1;
        m.in_flight = 2;
        assert_eq!(metric_value(&m, "answer_rate"), Some(0.5));
        assert!(METRICS.iter().all(|k| k == &"answer_rate"
            || k.starts_with("avg_")
            || *k == "success_rate"
            || *k == "sentiment"
            || metric_value(&Metrics::new(), k).is_some()));
    }
}
