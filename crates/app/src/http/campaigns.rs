//! `/api/v1/campaigns`: CRUD, lifecycle (`start` / `pause` / `resume` /
//! `cancel`, 409 naming the current state when illegal), enrollments,
//! progress, per-outcome analytics, per-contact eligibility and preflight.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{delete, get, post};
use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use switchboard_domain::enrollment::{Blocker, Outcome, evaluate};
use switchboard_domain::time::now_ms;
use switchboard_domain::{
    Campaign, CampaignAction, CampaignId, CampaignInput, CampaignStatus, ContactId, Eligibility, Enrollment,
    EnrollmentStatus,
};
use switchboard_storage::{CallFilter, CallSort, ContactFilter, ContactSort, pages};

use super::extract::{JsonBody, field_errors};
use super::query::Query;
use crate::AppState;
use crate::error::{ApiError, retry_on_stale};
use utoipa::ToSchema;

fn campaign_id(id: &str) -> Result<CampaignId, ApiError> {
    CampaignId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))
}

pub(crate) async fn load(state: &AppState, id: &str) -> Result<Campaign, ApiError> {
    state.store.get_campaign(&campaign_id(id)?).await?.ok_or(ApiError::NotFound("campaign"))
}

/// The longest retry delay taken: a year. The dialer adds the delay to a
/// timestamp, and a delay near `u64::MAX` would overflow it (and not fit a
/// MongoDB integer).
pub const MAX_RETRY_DELAY_SECS: u64 = 365 * 24 * 3600;

/// Applies an input to a campaign (or a new draft) with every problem
/// reported at once: the domain's checks and the retry delays' bound.
fn checked(input: &CampaignInput, base: Option<&Campaign>) -> Result<Campaign, ApiError> {
    let mut delays = Vec::new();
    if let Some(r) = &input.retry {
        for (name, rule) in
            [("busy", r.busy), ("no_answer", r.no_answer), ("voicemail", r.voicemail), ("failed", r.failed)]
        {
            if rule.delay_secs > MAX_RETRY_DELAY_SECS {
                delays.push(switchboard_domain::FieldError::new(
                    format!("retry.{name}.delay_secs"),
                    format!("must be 0..={MAX_RETRY_DELAY_SECS} (a year)"),
                ));
            }
        }
    }
    match input.apply(base, now_ms()) {
        Ok(c) if delays.is_empty() => Ok(c),
        Ok(_) => Err(field_errors(delays)),
        Err(mut errs) => {
            errs.extend(delays);
            Err(field_errors(errs))
        }
    }
}

/// A campaign on the wire: the domain record without the dial gate's
/// internals (`inflight` keys, `next_dial_at`, `dials`), which belong to the
/// store and the dialer; progress and analytics report calls placed and in
/// flight. The domain type is not the wire format.
#[derive(Debug, Serialize)]
pub struct CampaignOut {
    id: switchboard_domain::CampaignId,
    name: String,
    description: Option<String>,
    status: CampaignStatus,
    agent: switchboard_domain::campaign::AgentSettings,
    schedule: switchboard_domain::campaign::Schedule,
    pacing: switchboard_domain::campaign::Pacing,
    retry: switchboard_domain::campaign::RetryPolicy,
    dial_mode: switchboard_domain::DialMode,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<Campaign> for CampaignOut {
    fn from(c: Campaign) -> Self {
        CampaignOut {
            id: c.id,
            name: c.name,
            description: c.description,
            status: c.status,
            agent: c.agent,
            schedule: c.schedule,
            pacing: c.pacing,
            retry: c.retry,
            dial_mode: c.dial_mode,
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

/// A page of campaigns.
#[derive(Debug, Serialize, ToSchema)]
pub struct CampaignPage {
    /// Campaigns, newest first.
    #[schema(value_type = Vec<super::schemas::Campaign>)]
    pub data: Vec<CampaignOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Create a campaign (draft): name, description, agent, schedule, pacing, retry, dial_mode.
#[utoipa::path(post, path = "/api/v1/campaigns", tag = "campaigns", operation_id = "create_campaign",
    request_body(content = super::schemas::CampaignCreate, content_type = "application/json", description = "The campaign; unknown fields are refused",
        example = json!({"name": "Renewals", "dial_mode": "twilio_first",
            "agent": {"agent_id": "agent_123", "caller_id": "+15005550001", "dynamic_variables": {"customer": "{{contact.name}}"}},
            "schedule": {"windows": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "20:00"}], "holidays": ["2026-12-25"], "time_zone": "America/New_York"},
            "pacing": {"max_concurrent": 5, "calls_per_minute": 30},
            "retry": {"busy": {"retry": true, "delay_secs": 1800}, "no_answer": {"retry": true, "delay_secs": 7200}, "voicemail": {"retry": true, "delay_secs": 14400}, "failed": {"retry": false, "delay_secs": 3600}, "max_attempts": 3, "daily_cap": 2}})),
    responses(
        (status = 201, description = "Created (draft); the stored campaign", body = super::schemas::Campaign,
            links(("get_campaign" = (operation_id = "get_campaign", parameters(("id" = "$response.body#/id")))), ("update_campaign" = (operation_id = "update_campaign", parameters(("id" = "$response.body#/id")))), ("delete_campaign" = (operation_id = "delete_campaign", parameters(("id" = "$response.body#/id")))), ("start_campaign" = (operation_id = "start_campaign", parameters(("id" = "$response.body#/id")))), ("pause_campaign" = (operation_id = "pause_campaign", parameters(("id" = "$response.body#/id")))), ("resume_campaign" = (operation_id = "resume_campaign", parameters(("id" = "$response.body#/id")))), ("cancel_campaign" = (operation_id = "cancel_campaign", parameters(("id" = "$response.body#/id")))), ("list_enrollments" = (operation_id = "list_enrollments", parameters(("id" = "$response.body#/id")))), ("get_campaign_progress" = (operation_id = "get_campaign_progress", parameters(("id" = "$response.body#/id")))), ("preflight_campaign" = (operation_id = "preflight_campaign", parameters(("id" = "$response.body#/id")))), ("get_campaign_analytics" = (operation_id = "get_campaign_analytics", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Invalid JSON or invalid fields (`validation_failed`; `errors` names each field)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `body_limit_bytes` (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<CampaignInput>,
) -> Result<(StatusCode, Json<CampaignOut>), ApiError> {
    let c = checked(&input, None)?;
    state.store.insert_campaign(&c).await?;
    Ok((StatusCode::CREATED, Json(c.into())))
}

/// List campaigns, newest first.
#[utoipa::path(get, path = "/api/v1/campaigns", tag = "campaigns", operation_id = "list_campaigns",
    params(("status" = Option<Vec<super::schemas::CampaignStatus>>, Query, explode, description = "Repeatable (or comma-separated); any of them matches"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses(
        (status = 200, description = "A page of campaigns, newest first", body = CampaignPage),
        (status = 400, description = "A bad or unknown query parameter (`validation_failed`; `errors` names each)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, uri: Uri) -> Result<Json<CampaignPage>, ApiError> {
    let mut q = Query::parse(uri.query(), &["status", "limit", "cursor"]);
    let mut statuses = Vec::new();
    for s in q.all_typed("status") {
        match s.parse::<CampaignStatus>() {
            Ok(s) => statuses.push(s),
            Err(e) => q.bad("status", e),
        }
    }
    let page = q.page();
    q.finish()?;
    let p = state.store.list_campaigns(&statuses, &page).await.map_err(super::extract::cursor_error)?;
    Ok(Json(CampaignPage { data: p.items.into_iter().map(CampaignOut::from).collect(), next_cursor: p.next_cursor }))
}

/// Get a campaign.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}", tag = "campaigns", operation_id = "get_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "The campaign", body = super::schemas::Campaign),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignOut>, ApiError> {
    Ok(Json(load(&state, &id).await?.into()))
}

/// Partially update a campaign (after start: name, description and pacing only).
#[utoipa::path(patch, path = "/api/v1/campaigns/{id}", tag = "campaigns", operation_id = "update_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    request_body(content = super::schemas::CampaignPatch, content_type = "application/json", description = "The fields to change; unknown fields are refused"),
    responses(
        (status = 200, description = "The stored campaign", body = super::schemas::Campaign),
        (status = 400, description = "Malformed campaign id, invalid JSON or invalid fields (`validation_failed`; `errors` names each field)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Final, or started and the change is not to name, description or pacing, or it kept changing concurrently (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `body_limit_bytes` (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<CampaignInput>,
) -> Result<Json<CampaignOut>, ApiError> {
    let (state, id, input) = (&state, &id, &input);
    retry_on_stale("campaign", || async move {
        let stored = load(state, id).await?;
        if stored.status.is_final() {
            return Err(ApiError::Conflict(format!("the campaign is {}; it can no longer be changed", stored.status)));
        }
        if stored.status != CampaignStatus::Draft && !input.live_safe() {
            return Err(ApiError::Conflict(format!(
                "the campaign is {}; only name, description and pacing can change after it starts",
                stored.status
            )));
        }
        let next = checked(input, Some(&stored))?;
        Ok(Json(state.store.replace_campaign(&next).await?.into()))
    })
    .await
}

/// Delete a campaign that is draft, completed or cancelled (with its enrollments; its calls stay).
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}", tag = "campaigns", operation_id = "delete_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 204, description = "Deleted, with its enrollments (its calls stay)"),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Still able to dial (scheduled, running or paused); cancel it first (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.store.delete_campaign(&campaign_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("campaign"))
    }
}

async fn transition(state: &AppState, id: &str, action: CampaignAction) -> Result<Json<CampaignOut>, ApiError> {
    retry_on_stale("campaign", || async move {
        let stored = load(state, id).await?;
        let now = now_ms();
        let starts_later = stored.schedule.start_at.is_some_and(|s| s > now);
        let to = stored.status.after(action, starts_later).map_err(|e| ApiError::Conflict(e.to_string()))?;
        if action == CampaignAction::Start {
            let problems = stored.problems();
            if !problems.is_empty() {
                return Err(field_errors(problems));
            }
        }
        let mut next = stored.clone();
        next.status = to;
        next.updated_at = now;
        let saved = state.store.replace_campaign(&next).await?;
        if to == CampaignStatus::Cancelled {
            let n = state.store.cancel_waiting(&saved.id, now).await?;
            tracing::info!(campaign = %saved.id, cancelled = n, "campaign cancelled");
        }
        tracing::info!(campaign = %saved.id, action = %action, status = %saved.status, "campaign lifecycle");
        Ok(Json(saved.into()))
    })
    .await
}

/// draft → scheduled (start time ahead) or running.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/start", tag = "campaigns", operation_id = "start_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "Started: scheduled (start time ahead) or running", body = super::schemas::Campaign),
        (status = 400, description = "Malformed campaign id, or settings that cannot run (`validation_failed`; `errors` names each field)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the campaign's current state; `detail` names it (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn start(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignOut>, ApiError> {
    transition(&s, &id, CampaignAction::Start).await
}
/// running → paused: no new calls; calls in flight finish.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/pause", tag = "campaigns", operation_id = "pause_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "Paused", body = super::schemas::Campaign),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the campaign's current state; `detail` names it (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn pause(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignOut>, ApiError> {
    transition(&s, &id, CampaignAction::Pause).await
}
/// paused → running.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/resume", tag = "campaigns", operation_id = "resume_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "Running again", body = super::schemas::Campaign),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the campaign's current state; `detail` names it (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn resume(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignOut>, ApiError> {
    transition(&s, &id, CampaignAction::Resume).await
}
/// Any non-final state → cancelled; waiting enrollments are cancelled.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/cancel", tag = "campaigns", operation_id = "cancel_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "Cancelled; waiting enrollments are cancelled", body = super::schemas::Campaign),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Not allowed in the campaign's current state; `detail` names it (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn cancel(State(s): State<AppState>, Path(id): Path<String>) -> Result<Json<CampaignOut>, ApiError> {
    transition(&s, &id, CampaignAction::Cancel).await
}

/// How to enroll: explicit ids, or every contact matching a filter (exactly one of the two).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollBody {
    /// Contact ids, 1..=10000 (use `filter` for more).
    #[serde(default)]
    #[schema(value_type = Option<Vec<super::schemas::ContactId>>, min_items = 1, max_items = 10000)]
    contact_ids: Option<Vec<String>>,
    /// Every contact matching this filter.
    #[serde(default)]
    filter: Option<EnrollFilter>,
}

/// The contacts to enroll: the list filters, or `{"all": true}` for every contact.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnrollFilter {
    /// Case-insensitive prefix of name, e-mail or phone.
    search: Option<String>,
    /// Has this tag.
    tag: Option<String>,
    /// Do-not-call set or not.
    dnc: Option<bool>,
    /// Must be `true` to enroll every contact: an empty filter is refused, so
    /// `{"filter": {}}` never enrolls the whole contact list by accident.
    all: Option<bool>,
}

/// What an enroll request did.
#[derive(Debug, Serialize, ToSchema)]
pub struct Enrolled {
    /// Contacts newly enrolled.
    added: u64,
    /// Contacts that were enrolled already.
    already_enrolled: u64,
}

/// Enroll contacts: {"contact_ids": [...]} or {"filter": {"search","tag","dnc"}}.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/contacts", tag = "campaigns", operation_id = "enroll_contacts",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    request_body(content = EnrollBody, content_type = "application/json", description = "Exactly one of `contact_ids` or `filter`; unknown fields are refused"),
    responses(
        (status = 200, description = "How many were added and how many were already enrolled", body = Enrolled),
        (status = 400, description = "Malformed campaign id, invalid JSON, malformed contact ids, an empty filter without `all`, or both / neither of `contact_ids` and `filter` (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The campaign is completed or cancelled (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `body_limit_bytes` (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn enroll(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<EnrollBody>,
) -> Result<(StatusCode, Json<Enrolled>), ApiError> {
    let c = load(&state, &id).await?;
    if c.status.is_final() {
        return Err(ApiError::Conflict(format!("the campaign is {}; it takes no new contacts", c.status)));
    }
    let now = now_ms();
    let (mut added, mut total) = (0u64, 0u64);
    match (body.contact_ids, body.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > 10_000 {
                return Err(ApiError::field("contact_ids", "give 1..=10000 ids (use `filter` for more)"));
            }
            let mut parsed = Vec::new();
            let mut errs = Vec::new();
            for (i, s) in ids.iter().enumerate() {
                match ContactId::parse(s) {
                    Ok(id) => parsed.push(id),
                    Err(e) => {
                        errs.push(switchboard_domain::FieldError::new(format!("contact_ids[{i}]"), e.to_string()))
                    }
                }
            }
            if !errs.is_empty() {
                return Err(field_errors(errs));
            }
            total = parsed.len() as u64;
            added = state.store.enroll(&c.id, &parsed, now).await?;
        }
        (None, Some(f)) => {
            let narrows = f.search.is_some() || f.tag.is_some() || f.dnc.is_some();
            match (narrows, f.all) {
                (false, Some(true)) | (true, None | Some(false)) => {}
                (false, _) => {
                    return Err(ApiError::field(
                        "filter",
                        "an empty filter would enroll every contact; send {\"all\": true} to mean that",
                    ));
                }
                (true, Some(true)) => {
                    return Err(ApiError::field(
                        "filter.all",
                        "`all: true` cannot be combined with search, tag or dnc",
                    ));
                }
            }
            let filter = ContactFilter { search: f.search, tag: f.tag, dnc: f.dnc };
            let (store, filter) = (&state.store, &filter);
            let mut matching = std::pin::pin!(pages(200, |p| async move {
                store.list_contacts(filter, ContactSort::CreatedAsc, &p).await
            }));
            while let Some(items) = matching.try_next().await? {
                let ids: Vec<ContactId> = items.iter().map(|c| c.id.clone()).collect();
                total += ids.len() as u64;
                if !ids.is_empty() {
                    added += state.store.enroll(&c.id, &ids, now).await?;
                }
            }
        }
        _ => return Err(ApiError::field("body", "give exactly one of `contact_ids` or `filter`")),
    }
    Ok((StatusCode::OK, Json(Enrolled { added, already_enrolled: total - added })))
}

/// An enrollment on the wire: today the same fields as the stored record (the
/// lease is shown so an operator can see who dials it); the boundary where
/// later phases mask or drop fields, so handlers never serialise the domain type.
#[derive(Debug, Serialize)]
pub struct EnrollmentOut {
    id: switchboard_domain::EnrollmentId,
    campaign_id: CampaignId,
    contact_id: ContactId,
    status: EnrollmentStatus,
    attempts: u32,
    history: Vec<switchboard_domain::enrollment::Attempt>,
    next_attempt_at: DateTime<Utc>,
    last_outcome: Option<Outcome>,
    reason: Option<String>,
    lease: Option<switchboard_domain::enrollment::Lease>,
    lease_token: i64,
    current_call_id: Option<switchboard_domain::CallId>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl From<Enrollment> for EnrollmentOut {
    fn from(e: Enrollment) -> Self {
        EnrollmentOut {
            id: e.id,
            campaign_id: e.campaign_id,
            contact_id: e.contact_id,
            status: e.status,
            attempts: e.attempts,
            history: e.history,
            next_attempt_at: e.next_attempt_at,
            last_outcome: e.last_outcome,
            reason: e.reason,
            lease: e.lease,
            lease_token: e.lease_token,
            current_call_id: e.current_call_id,
            created_at: e.created_at,
            updated_at: e.updated_at,
            version: e.version,
        }
    }
}

/// A page of enrollments.
#[derive(Debug, Serialize, ToSchema)]
pub struct EnrollmentPage {
    /// Enrollments in enrollment order.
    #[schema(value_type = Vec<super::schemas::Enrollment>)]
    pub data: Vec<EnrollmentOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A campaign's enrollments in enrollment order.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/contacts", tag = "campaigns", operation_id = "list_enrollments",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400"), ("status" = Option<Vec<super::schemas::EnrollmentStatus>>, Query, explode, description = "Repeatable (or comma-separated); any of them matches"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses(
        (status = 200, description = "A page of enrollments, in enrollment order", body = EnrollmentPage),
        (status = 400, description = "Malformed campaign id, or a bad or unknown query parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list_enrollments(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<EnrollmentPage>, ApiError> {
    let c = load(&state, &id).await?;
    let mut q = Query::parse(uri.query(), &["status", "limit", "cursor"]);
    let mut statuses = Vec::new();
    for s in q.all_typed("status") {
        match s.parse::<EnrollmentStatus>() {
            Ok(s) => statuses.push(s),
            Err(e) => q.bad("status", e),
        }
    }
    let page = q.page();
    q.finish()?;
    let p = state.store.list_enrollments(&c.id, &statuses, &page).await.map_err(super::extract::cursor_error)?;
    Ok(Json(EnrollmentPage {
        data: p.items.into_iter().map(EnrollmentOut::from).collect(),
        next_cursor: p.next_cursor,
    }))
}

/// Remove an enrollment.
#[utoipa::path(delete, path = "/api/v1/campaigns/{id}/contacts/{contact_id}", tag = "campaigns", operation_id = "remove_enrollment",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400"), ("contact_id" = super::schemas::ContactId, Path, description = "Contact id (`con_…`); a malformed one is a 400")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed campaign or contact id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign, or the contact is not enrolled (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A call is in flight (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove_enrollment(
    State(state): State<AppState>,
    Path((id, contact)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let c = load(&state, &id).await?;
    let contact = ContactId::parse(&contact).map_err(|e| ApiError::field("contact_id", e.to_string()))?;
    let e = state.store.find_enrollment(&c.id, &contact).await?.ok_or(ApiError::NotFound("enrollment"))?;
    state.store.remove_enrollment(&e.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET …/contacts/{contact_id}/eligibility`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EligibilityOut {
    /// The contact.
    #[schema(value_type = super::schemas::ContactId)]
    contact_id: String,
    /// Its enrollment's status.
    #[schema(value_type = super::schemas::EnrollmentStatus)]
    enrollment_status: EnrollmentStatus,
    /// Attempts made.
    attempts: u32,
    #[serde(flatten)]
    #[schema(value_type = super::schemas::Eligibility)]
    eligibility: Eligibility,
    /// When this was evaluated.
    evaluated_at: DateTime<Utc>,
}

/// Dialable now or not, every reason why not, and when next.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/contacts/{contact_id}/eligibility", tag = "campaigns", operation_id = "get_eligibility",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400"), ("contact_id" = super::schemas::ContactId, Path, description = "Contact id (`con_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "Dialable now or not, every reason why not, and when next", body = EligibilityOut),
        (status = 400, description = "Malformed campaign or contact id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such campaign, or the contact is not enrolled (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn eligibility(
    State(state): State<AppState>,
    Path((id, contact)): Path<(String, String)>,
) -> Result<Json<EligibilityOut>, ApiError> {
    let c = load(&state, &id).await?;
    let contact_id = ContactId::parse(&contact).map_err(|e| ApiError::field("contact_id", e.to_string()))?;
    let e = state.store.find_enrollment(&c.id, &contact_id).await?.ok_or(ApiError::NotFound("enrollment"))?;
    let k = state.store.get_contact(&contact_id).await?.ok_or(ApiError::NotFound("contact"))?;
    let now = now_ms();
    Ok(Json(EligibilityOut {
        contact_id: k.id.to_string(),
        enrollment_status: e.status,
        attempts: e.attempts,
        eligibility: evaluate(&c, &k, &e, now),
        evaluated_at: now,
    }))
}

/// Campaign progress.
#[derive(Debug, Serialize, ToSchema)]
pub struct Progress {
    /// The campaign's status.
    #[schema(value_type = super::schemas::CampaignStatus)]
    status: CampaignStatus,
    /// Enrollments in all.
    enrollments: u64,
    /// Enrollments per status (only statuses that occur).
    by_status: BTreeMap<String, u64>,
    /// Calls placed so far.
    calls_placed: u64,
    /// Calls in flight now.
    in_flight: usize,
    /// Calls answered by a person / calls finished; null before any call finished.
    #[schema(required = true)]
    answer_rate: Option<f64>,
    /// Average duration of finished calls (s); null before any.
    #[schema(required = true)]
    average_duration_secs: Option<f64>,
    /// Finished calls per outcome (`answered`, `voicemail`, `busy`, `no_answer`, `failed`).
    by_outcome: BTreeMap<String, u64>,
    /// At the configured pacing, when the open enrollments would all have had an attempt (ignores windows; see preflight); null unless running with enrollments waiting.
    #[schema(required = true)]
    eta: Option<DateTime<Utc>>,
}

async fn outcomes(state: &AppState, c: &Campaign) -> Result<(BTreeMap<String, u64>, u64, f64, u64), ApiError> {
    let filter = CallFilter { campaign_id: Some(c.id.clone()), ..Default::default() };
    let mut by = BTreeMap::new();
    let (mut finished, mut dur_sum, mut dur_n) = (0u64, 0f64, 0u64);
    let (store, filter) = (&state.store, &filter);
    let mut calls =
        std::pin::pin!(pages(200, |p| async move { store.list_calls(filter, CallSort::StartedAtAsc, &p).await }));
    while let Some(items) = calls.try_next().await? {
        for call in &items {
            if let Some(o) = Outcome::of_call(call) {
                *by.entry(o.as_str().to_owned()).or_insert(0) += 1;
                finished += 1;
                if let Some(d) = call.duration_secs.or(call.conversation_duration_secs) {
                    dur_sum += d as f64;
                    dur_n += 1;
                }
            }
        }
    }
    Ok((by, finished, dur_sum, dur_n))
}

/// Counts per enrollment status, calls placed, in flight, answer rate, average duration, outcomes, ETA.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/progress", tag = "campaigns", operation_id = "get_campaign_progress",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "Counts per enrollment status, calls, answer rate, outcomes, ETA", body = Progress),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn progress(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Progress>, ApiError> {
    let c = load(&state, &id).await?;
    let counts = state.store.count_enrollments(&c.id).await?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let waiting: u64 = counts.iter().filter(|(s, _)| s.is_waiting()).map(|(_, n)| n).sum();
    let (by_outcome, finished, dur_sum, dur_n) = outcomes(&state, &c).await?;
    let answered = by_outcome.get("answered").copied().unwrap_or(0);
    let eta = (waiting > 0 && c.status == CampaignStatus::Running)
        .then(|| now_ms() + c.pacing.interval() * i32::try_from(waiting).unwrap_or(i32::MAX));
    Ok(Json(Progress {
        status: c.status,
        enrollments: total,
        by_status: counts.into_iter().map(|(s, n)| (s.as_str().to_owned(), n)).collect(),
        calls_placed: c.dials,
        in_flight: c.inflight.len(),
        answer_rate: (finished > 0).then(|| answered as f64 / finished as f64),
        average_duration_secs: (dur_n > 0).then(|| dur_sum / dur_n as f64),
        by_outcome,
        eta,
    }))
}

/// Preflight: who is dialable now, per day ahead, when the campaign would finish, who is skipped and why.
#[derive(Debug, Serialize, ToSchema)]
pub struct Preflight {
    /// When this was evaluated.
    evaluated_at: DateTime<Utc>,
    /// Waiting enrollments (pending or retry_wait) evaluated.
    enrollments: u64,
    /// Of them, dialable now.
    eligible_now: u64,
    /// Contacts whose first dialable moment falls on each of the next days (UTC dates).
    eligible_by_day: BTreeMap<String, u64>,
    /// Contacts that will never be dialled, by reason code.
    skipped_by_reason: BTreeMap<String, u64>,
    /// Up to 50 of them, with every reason.
    skipped: Vec<SkippedContact>,
    /// At the configured pacing from the first dialable moment, ignoring retries; null when nobody will be dialled.
    #[schema(required = true)]
    eta: Option<DateTime<Utc>>,
}

/// A contact preflight says will never be dialled.
#[derive(Debug, Serialize, ToSchema)]
pub struct SkippedContact {
    /// The contact.
    #[schema(value_type = super::schemas::ContactId)]
    contact_id: String,
    /// Every reason.
    #[schema(value_type = Vec<super::schemas::Blocker>)]
    reasons: Vec<Blocker>,
}

/// Calls by outcome and average duration.
#[derive(Debug, Serialize, ToSchema)]
pub struct Analytics {
    /// Average duration of finished calls (s); null before any.
    #[schema(required = true)]
    average_duration_secs: Option<f64>,
    /// Finished calls per outcome (`answered`, `voicemail`, `busy`, `no_answer`, `failed`).
    by_outcome: BTreeMap<String, u64>,
    /// Calls finished.
    calls_finished: u64,
    /// The campaign.
    #[schema(value_type = super::schemas::CampaignId)]
    campaign_id: CampaignId,
}

fn reason_code(b: &Blocker) -> String {
    serde_json::to_value(b)
        .ok()
        .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
        .unwrap_or_default()
}

/// Forecast before starting: eligible now and per day, ETA at the configured pacing, who is skipped and why.
#[utoipa::path(post, path = "/api/v1/campaigns/{id}/preflight", tag = "campaigns", operation_id = "preflight_campaign",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "The forecast", body = Preflight),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn preflight(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Preflight>, ApiError> {
    let mut c = load(&state, &id).await?;
    let now = now_ms();
    // Forecast as if it were running now (a draft has not started yet).
    if !c.status.is_final() {
        c.status = CampaignStatus::Running;
    }
    let mut out = Preflight {
        evaluated_at: now,
        enrollments: 0,
        eligible_now: 0,
        eligible_by_day: BTreeMap::new(),
        skipped_by_reason: BTreeMap::new(),
        skipped: vec![],
        eta: None,
    };
    let mut firsts: Vec<DateTime<Utc>> = Vec::new();
    let (store, cid) = (&state.store, &c.id);
    let waiting: &[EnrollmentStatus] = &[EnrollmentStatus::Pending, EnrollmentStatus::RetryWait];
    let mut enrollments = std::pin::pin!(pages(200, |p| async move { store.list_enrollments(cid, waiting, &p).await }));
    while let Some(items) = enrollments.try_next().await? {
        for e in &items {
            out.enrollments += 1;
            let Some(k) = state.store.get_contact(&e.contact_id).await? else { continue };
            let el = evaluate(&c, &k, e, now);
            match el.next_dialable_at {
                Some(t) => {
                    if el.dialable {
                        out.eligible_now += 1;
                    }
                    if t < now + Duration::days(14) {
                        *out.eligible_by_day.entry(t.date_naive().to_string()).or_insert(0) += 1;
                    }
                    firsts.push(t);
                }
                None => {
                    for r in &el.reasons {
                        *out.skipped_by_reason.entry(reason_code(r)).or_insert(0) += 1;
                    }
                    if out.skipped.len() < 50 {
                        out.skipped.push(SkippedContact { contact_id: k.id.to_string(), reasons: el.reasons });
                    }
                }
            }
        }
    }
    // ETA: one start per pacing interval, never before each contact's first dialable moment.
    firsts.sort();
    let mut t: Option<DateTime<Utc>> = None;
    for f in firsts {
        let next = match t {
            None => f,
            Some(prev) => (prev + c.pacing.interval()).max(f),
        };
        t = Some(next);
    }
    out.eta = t;
    Ok(Json(out))
}

/// Calls by outcome and average duration.
#[utoipa::path(get, path = "/api/v1/campaigns/{id}/analytics", tag = "campaigns", operation_id = "get_campaign_analytics",
    params(("id" = super::schemas::CampaignId, Path, description = "Campaign id (`cmp_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "Calls by outcome and average duration", body = Analytics),
        (status = 400, description = "Malformed campaign id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No campaign with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn analytics(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Analytics>, ApiError> {
    let c = load(&state, &id).await?;
    let (by_outcome, finished, dur_sum, dur_n) = outcomes(&state, &c).await?;
    // Fields in alphabetical order: the same bytes as the `json!` object this replaced.
    Ok(Json(Analytics {
        average_duration_secs: (dur_n > 0).then(|| dur_sum / dur_n as f64),
        by_outcome,
        calls_finished: finished,
        campaign_id: c.id,
    }))
}

/// The campaign routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/campaigns", post(create).get(list))
        .route("/campaigns/{id}", get(get_one).patch(patch).delete(remove))
        .route("/campaigns/{id}/start", post(start))
        .route("/campaigns/{id}/pause", post(pause))
        .route("/campaigns/{id}/resume", post(resume))
        .route("/campaigns/{id}/cancel", post(cancel))
        .route("/campaigns/{id}/contacts", post(enroll).get(list_enrollments))
        .route("/campaigns/{id}/contacts/{contact_id}", delete(remove_enrollment))
        .route("/campaigns/{id}/contacts/{contact_id}/eligibility", get(eligibility))
        .route("/campaigns/{id}/progress", get(progress))
        .route("/campaigns/{id}/preflight", post(preflight))
        .route("/campaigns/{id}/analytics", get(analytics))
}
