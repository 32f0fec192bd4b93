//! `GET /api/v1/analytics/conversations`: conversation insights over the
//! stored transcripts matching the filters, optionally grouped by campaign,
//! agent, day or week — sentiment distribution, top keywords and entities,
//! criteria pass rates, data-collection fill rates, average duration and
//! turns, termination reasons.
//!
//! Computed from the transcripts themselves, streamed page by page (memory
//! stays bounded by the groups, not the transcripts). That is exact and
//! fine for a campaign or a few weeks; dashboards over months read the
//! Phase 4 rollups instead.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::get;
use chrono::{Datelike, Duration};
use futures::TryStreamExt;
use serde::Serialize;
use switchboard_domain::{CampaignId, Transcript};
use switchboard_storage::{PageRequest, TranscriptFilter, pages};
use utoipa::ToSchema;

use super::query::Query;
use crate::AppState;
use crate::error::ApiError;

/// Count and share of one value.
#[derive(Debug, Serialize, ToSchema)]
pub struct Counted {
    /// The value (keyword, entity, reason, …).
    pub value: String,
    /// How many transcripts (or mentions, for keywords and entities).
    pub count: u64,
}

/// One criterion's results.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct CriterionStats {
    /// `success` results.
    pub success: u64,
    /// `failure` results.
    pub failure: u64,
    /// `unknown` results.
    pub unknown: u64,
    /// success / (success + failure); null when there are none.
    #[schema(required = true)]
    pub pass_rate: Option<f64>,
}

/// One data-collection field.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct FillStats {
    /// Transcripts that had the field.
    pub asked: u64,
    /// ... with a non-null value.
    pub filled: u64,
    /// filled / asked.
    pub fill_rate: f64,
}

/// Insights of one group.
#[derive(Debug, Default, Serialize, ToSchema)]
pub struct InsightGroup {
    /// The group key (campaign id, agent id, `YYYY-MM-DD` day or `YYYY-Www` week); `all` when ungrouped.
    pub key: String,
    /// Transcripts.
    pub conversations: u64,
    /// Mean duration in seconds (of those that report one).
    #[schema(required = true)]
    pub avg_duration_secs: Option<f64>,
    /// Mean number of turns.
    #[schema(required = true)]
    pub avg_turns: Option<f64>,
    /// Analysed transcripts by overall sentiment label (`positive`, `neutral`, `negative`).
    pub sentiment: BTreeMap<String, u64>,
    /// Mean overall sentiment (−1..1) of analysed transcripts.
    #[schema(required = true)]
    pub avg_sentiment: Option<f64>,
    /// ElevenLabs' verdicts (`success`, `failure`, `unknown`).
    pub call_successful: BTreeMap<String, u64>,
    /// Most frequent keywords (top 10).
    pub top_keywords: Vec<Counted>,
    /// Most frequent entities, as `kind:value` (top 10).
    pub top_entities: Vec<Counted>,
    /// Criterion id → results.
    pub criteria: BTreeMap<String, CriterionStats>,
    /// Data-collection field id → fill rate.
    pub data_collection: BTreeMap<String, FillStats>,
    /// Termination reasons (top 10).
    pub termination_reasons: Vec<Counted>,
}

/// The insights.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationInsights {
    /// `none`, `campaign`, `agent`, `day` or `week`.
    pub group_by: String,
    /// One entry per group, by key.
    pub groups: Vec<InsightGroup>,
}

#[derive(Default)]
struct Acc {
    n: u64,
    duration: (f64, u64),
    turns: (f64, u64),
    sentiment: BTreeMap<String, u64>,
    sentiment_sum: (f64, u64),
    verdicts: BTreeMap<String, u64>,
    keywords: BTreeMap<String, u64>,
    entities: BTreeMap<String, u64>,
    criteria: BTreeMap<String, CriterionStats>,
    fills: BTreeMap<String, (u64, u64)>,
    reasons: BTreeMap<String, u64>,
}

fn label(compound: f64) -> &'static str {
    if compound >= 0.05 {
        "positive"
    } else if compound <= -0.05 {
        "negative"
    } else {
        "neutral"
    }
}

fn top(m: BTreeMap<String, u64>) -> Vec<Counted> {
    let mut v: Vec<Counted> = m.into_iter().map(|(value, count)| Counted { value, count }).collect();
    v.sort_by(|a, b| b.count.cmp(&a.count).then(a.value.cmp(&b.value)));
    v.truncate(10);
    v
}

impl Acc {
    fn add(&mut self, t: &Transcript) {
        self.n += 1;
        if let Some(d) = t.duration_secs {
            self.duration.0 += d as f64;
            self.duration.1 += 1;
        }
        self.turns.0 += t.turns.len() as f64;
        self.turns.1 += 1;
        if let Some(s) = t.sentiment {
            *self.sentiment.entry(label(s).into()).or_default() += 1;
            self.sentiment_sum.0 += s;
            self.sentiment_sum.1 += 1;
        }
        if let Some(v) = &t.call_successful {
            *self.verdicts.entry(v.clone()).or_default() += 1;
        }
        if let Some(a) = &t.analysis {
            for k in a.get("keywords").and_then(|k| k.as_array()).into_iter().flatten() {
                if let Some(p) = k.get("phrase").and_then(|p| p.as_str()) {
                    *self.keywords.entry(p.to_owned()).or_default() += 1;
                }
            }
            for e in a.get("entities").and_then(|k| k.as_array()).into_iter().flatten() {
                let kind = e.get("kind").and_then(|v| v.as_str()).unwrap_or("?");
                let value =
                    e.get("normalized").and_then(|v| v.as_str()).or_else(|| e.get("text").and_then(|v| v.as_str()));
                if let Some(v) = value {
                    *self.entities.entry(format!("{kind}:{v}")).or_default() += 1;
                }
            }
        }
        for c in &t.criteria {
            let s = self.criteria.entry(c.id.clone()).or_default();
            match c.result.as_str() {
                "success" => s.success += 1,
                "failure" => s.failure += 1,
                _ => s.unknown += 1,
            }
        }
        for d in &t.data_collection {
            let f = self.fills.entry(d.id.clone()).or_default();
            f.0 += 1;
            f.1 += u64::from(!d.value.is_null());
        }
        if let Some(r) = &t.termination_reason {
            *self.reasons.entry(r.clone()).or_default() += 1;
        }
    }

    fn finish(self, key: String) -> InsightGroup {
        let mean = |(sum, n): (f64, u64)| (n > 0).then(|| (sum / n as f64 * 1000.0).round() / 1000.0);
        InsightGroup {
            key,
            conversations: self.n,
            avg_duration_secs: mean(self.duration),
            avg_turns: mean(self.turns),
            sentiment: self.sentiment,
            avg_sentiment: mean(self.sentiment_sum),
            call_successful: self.verdicts,
            top_keywords: top(self.keywords),
            top_entities: top(self.entities),
            criteria: self
                .criteria
                .into_iter()
                .map(|(k, mut s)| {
                    let decided = s.success + s.failure;
                    s.pass_rate = (decided > 0).then(|| s.success as f64 / decided as f64);
                    (k, s)
                })
                .collect(),
            data_collection: self
                .fills
                .into_iter()
                .map(|(k, (asked, filled))| {
                    (
                        k,
                        FillStats {
                            asked,
                            filled,
                            fill_rate: if asked > 0 { filled as f64 / asked as f64 } else { 0.0 },
                        },
                    )
                })
                .collect(),
            termination_reasons: top(self.reasons),
        }
    }
}

/// Conversation insights.
#[utoipa::path(get, path = "/api/v1/analytics/conversations", tag = "transcripts", operation_id = "conversation_insights",
    params(
        ("campaign_id" = Option<String>, Query, description = "Campaign (`cmp_…`)"),
        ("agent_id" = Option<String>, Query, description = "ElevenLabs agent"),
        ("from" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Started at or after (RFC 3339); default 30 days ago"),
        ("to" = Option<chrono::DateTime<chrono::Utc>>, Query, description = "Started before (RFC 3339); default now"),
        ("group_by" = Option<String>, Query, description = "`none` (default), `campaign`, `agent`, `day` or `week` (UTC)"),
    ),
    responses(
        (status = 200, description = "Insights per group", body = ConversationInsights),
        (status = 400, description = "A bad parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn conversations(State(state): State<AppState>, uri: Uri) -> Result<Json<ConversationInsights>, ApiError> {
    let mut q = Query::parse(uri.query(), &["campaign_id", "agent_id", "from", "to", "group_by"]);
    let mut f = TranscriptFilter::default();
    if let Some(c) = q.one("campaign_id") {
        match CampaignId::parse(&c) {
            Ok(c) => f.campaign_id = Some(c),
            Err(e) => q.bad("campaign_id", e.to_string()),
        }
    }
    f.agent_id = q.one("agent_id");
    let now = switchboard_domain::time::now_ms();
    f.started_after = Some(q.time("from").unwrap_or(now - Duration::days(30)));
    f.started_before = Some(q.time("to").unwrap_or(now + Duration::seconds(1)));
    let group_by = q.one("group_by").unwrap_or_else(|| "none".into());
    if !matches!(group_by.as_str(), "none" | "campaign" | "agent" | "day" | "week") {
        q.bad("group_by", "must be none, campaign, agent, day or week");
    }
    q.finish()?;
    let key_of = |t: &Transcript| -> String {
        match group_by.as_str() {
            "campaign" => t.campaign_id.as_ref().map(|c| c.to_string()).unwrap_or_else(|| "none".into()),
            "agent" => t.agent_id.clone().unwrap_or_else(|| "none".into()),
            "day" => t.started_at.format("%Y-%m-%d").to_string(),
            "week" => {
                let w = t.started_at.iso_week();
                format!("{}-W{:02}", w.year(), w.week())
            }
            _ => "all".into(),
        }
    };
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let store = state.store.clone();
    let filter = f.clone();
    let mut stream = std::pin::pin!(pages(200, move |p: PageRequest| {
        let (store, filter) = (store.clone(), filter.clone());
        async move { store.list_transcripts(&filter, &p).await }
    }));
    while let Some(batch) = stream.try_next().await? {
        for t in batch {
            groups.entry(key_of(&t)).or_default().add(&t);
        }
    }
    Ok(Json(ConversationInsights { group_by, groups: groups.into_iter().map(|(k, acc)| acc.finish(k)).collect() }))
}

/// Routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/analytics/conversations", get(conversations))
}
