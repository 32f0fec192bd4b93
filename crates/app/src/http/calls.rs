//! `GET /api/v1/calls`, `GET /api/v1/calls/{id}`, `GET /api/v1/calls/{id}/events`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::routing::get;
use serde::Serialize;
use switchboard_domain::{AnsweredBy, Call, CallId, CallStatus, CampaignId, ContactId, Direction};
use switchboard_storage::{CallFilter, CallSort, Page};
use utoipa::ToSchema;

use super::events::EventPage;
use super::extract::{cursor_error, ts};
use super::query::Query;
use crate::AppState;
use crate::error::{ApiError, Problem};

/// A call as the API returns it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallOut {
    /// Our id (`call_…`).
    #[schema(value_type = super::schemas::CallId)]
    pub id: String,
    /// Twilio Call SID.
    #[schema(required = true)]
    pub call_sid: Option<String>,
    /// ElevenLabs conversation id.
    #[schema(required = true)]
    pub conversation_id: Option<String>,
    /// Twilio account.
    #[schema(required = true)]
    pub account_sid: Option<String>,
    /// `inbound`, `outbound-api`, `outbound-dial`, …
    #[schema(value_type = Option<super::schemas::Direction>, required = true)]
    pub direction: Option<String>,
    /// queued, initiated, ringing, in-progress, completed, busy, no-answer, failed, canceled.
    #[schema(value_type = super::schemas::CallStatus)]
    pub status: String,
    /// Caller.
    #[schema(required = true)]
    pub from: Option<String>,
    /// Callee.
    #[schema(required = true)]
    pub to: Option<String>,
    /// Campaign.
    #[schema(required = true)]
    pub campaign_id: Option<String>,
    /// Contact.
    #[schema(required = true)]
    pub contact_id: Option<String>,
    /// Enrollment.
    #[schema(required = true)]
    pub enrollment_id: Option<String>,
    /// ElevenLabs agent.
    #[schema(required = true)]
    pub agent_id: Option<String>,
    /// AMD result.
    #[schema(value_type = Option<super::schemas::AnsweredBy>, required = true)]
    pub answered_by: Option<String>,
    /// Earliest known moment of the call (RFC 3339, milliseconds).
    #[schema(format = DateTime)]
    pub started_at: String,
    /// Answer time.
    #[schema(format = DateTime, required = true)]
    pub answered_at: Option<String>,
    /// End time.
    #[schema(format = DateTime, required = true)]
    pub ended_at: Option<String>,
    /// Telephony duration (s).
    #[schema(required = true)]
    pub duration_secs: Option<i64>,
    /// SIP response code.
    #[schema(required = true)]
    pub sip_response_code: Option<i64>,
    /// Price (decimal string).
    #[schema(required = true)]
    pub price: Option<String>,
    /// Currency.
    #[schema(required = true)]
    pub price_unit: Option<String>,
    /// Highest Twilio SequenceNumber applied.
    #[schema(required = true)]
    pub last_sequence: Option<i64>,
    /// ElevenLabs conversation status.
    #[schema(required = true)]
    pub conversation_status: Option<String>,
    /// ElevenLabs success verdict.
    #[schema(required = true)]
    pub call_successful: Option<String>,
    /// ElevenLabs summary.
    #[schema(required = true)]
    pub transcript_summary: Option<String>,
    /// ElevenLabs termination reason.
    #[schema(required = true)]
    pub termination_reason: Option<String>,
    /// Conversation duration (s).
    #[schema(required = true)]
    pub conversation_duration_secs: Option<i64>,
    /// ElevenLabs cost (credits).
    #[schema(required = true)]
    pub cost_credits: Option<i64>,
    /// Record creation.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Last change.
    #[schema(format = DateTime)]
    pub updated_at: String,
    /// Record version (bumped on every change).
    pub version: i64,
}

impl From<Call> for CallOut {
    fn from(c: Call) -> Self {
        CallOut {
            id: c.id.to_string(),
            call_sid: c.call_sid,
            conversation_id: c.conversation_id,
            account_sid: c.account_sid,
            direction: c.direction.map(|d| d.to_string()),
            status: c.status.to_string(),
            from: c.from,
            to: c.to,
            campaign_id: c.campaign_id.map(String::from),
            contact_id: c.contact_id.map(String::from),
            enrollment_id: c.enrollment_id.map(String::from),
            agent_id: c.agent_id,
            answered_by: c.answered_by.map(|a| a.to_string()),
            started_at: ts(c.started_at),
            answered_at: c.answered_at.map(ts),
            ended_at: c.ended_at.map(ts),
            duration_secs: c.duration_secs,
            sip_response_code: c.sip_response_code,
            price: c.price,
            price_unit: c.price_unit,
            last_sequence: c.last_sequence,
            conversation_status: c.conversation_status,
            call_successful: c.call_successful,
            transcript_summary: c.transcript_summary,
            termination_reason: c.termination_reason,
            conversation_duration_secs: c.conversation_duration_secs,
            cost_credits: c.cost_credits,
            created_at: ts(c.created_at),
            updated_at: ts(c.updated_at),
            version: c.version,
        }
    }
}

/// A page of calls.
#[derive(Debug, Serialize, ToSchema)]
pub struct CallPage {
    /// Calls in the requested order.
    pub data: Vec<CallOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl CallPage {
    /// The wire page of a store page.
    pub fn from_page(p: switchboard_storage::Page<Call>) -> CallPage {
        CallPage { data: p.items.into_iter().map(CallOut::from).collect(), next_cursor: p.next_cursor }
    }
}

/// The order of a call list.
#[derive(ToSchema)]
pub enum CallSortParam {
    /// Newest first (default).
    #[schema(rename = "-started_at")]
    StartedAtDesc,
    /// Oldest first.
    #[schema(rename = "started_at")]
    StartedAtAsc,
    /// Most recently created first.
    #[schema(rename = "-created_at")]
    CreatedAtDesc,
}

const LIST_PARAMS: &[&str] = &[
    "status",
    "direction",
    "campaign_id",
    "contact_id",
    "agent_id",
    "from",
    "to",
    "answered_by",
    "started_after",
    "started_before",
    "sort",
    "limit",
    "cursor",
];

/// List calls, filtered, sorted and cursor-paginated (stable under concurrent inserts).
#[utoipa::path(
    get, path = "/api/v1/calls", tag = "calls", operation_id = "list_calls",
    params(
        ("status" = Option<Vec<super::schemas::CallStatus>>, Query, explode, description = "Repeatable (or comma-separated); any of them matches"),
        ("direction" = Option<super::schemas::Direction>, Query, description = "Direction"),
        ("campaign_id" = Option<String>, Query, description = "Campaign id (exact)"),
        ("contact_id" = Option<String>, Query, description = "Contact id (exact)"),
        ("agent_id" = Option<String>, Query, description = "ElevenLabs agent (exact)"),
        ("from" = Option<String>, Query, description = "Caller number (exact, E.164)"),
        ("to" = Option<String>, Query, description = "Called number (exact, E.164)"),
        ("answered_by" = Option<super::schemas::AnsweredBy>, Query, description = "AMD result"),
        ("started_after" = Option<String>, Query, format = DateTime, description = "RFC 3339; started_at >= this (earlier than started_before)"),
        ("started_before" = Option<String>, Query, format = DateTime, description = "RFC 3339; started_at < this"),
        ("sort" = Option<CallSortParam>, Query, description = "Order (default -started_at)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of calls", body = CallPage),
        (status = 400, description = "A bad or unknown query parameter (`validation_failed`; `errors` names each)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_calls(State(state): State<AppState>, uri: Uri) -> Result<Json<CallPage>, ApiError> {
    let mut q = Query::parse(uri.query(), LIST_PARAMS);
    let mut statuses = Vec::new();
    for s in q.all_typed("status") {
        match s.parse::<CallStatus>() {
            Ok(st) => statuses.push(st),
            Err(e) => q.bad("status", e),
        }
    }
    // A link id of the wrong shape names no stored call (every stored link is
    // a valid id), so it filters everything out: the answer stays an empty
    // 200, as it always was, without asking the store.
    let mut names_nothing = false;
    let campaign_id = q.one("campaign_id").and_then(|v| CampaignId::parse(&v).map_err(|_| names_nothing = true).ok());
    let contact_id = q.one("contact_id").and_then(|v| ContactId::parse(&v).map_err(|_| names_nothing = true).ok());
    let filter = CallFilter {
        statuses,
        direction: q.parsed::<Direction>("direction"),
        campaign_id,
        contact_id,
        agent_id: q.one("agent_id"),
        from: q.one("from"),
        to: q.one("to"),
        answered_by: q.parsed::<AnsweredBy>("answered_by"),
        started_after: q.time("started_after"),
        started_before: q.time("started_before"),
    };
    if let (Some(a), Some(b)) = (filter.started_after, filter.started_before)
        && a >= b
    {
        q.bad("started_after", "must be earlier than started_before");
    }
    let sort = match q.raw("sort") {
        None => CallSort::default(),
        Some(s) => CallSort::parse(&s).unwrap_or_else(|| {
            q.bad("sort", format!("`{s}` is not one of: -started_at, started_at, -created_at"));
            CallSort::default()
        }),
    };
    let page = q.page();
    q.finish()?;
    if names_nothing {
        sort.decode(&page).map_err(cursor_error)?;
        return Ok(Json(CallPage::from_page(Page { items: vec![], next_cursor: None })));
    }
    let p = state.store.list_calls(&filter, sort, &page).await.map_err(cursor_error)?;
    Ok(Json(CallPage::from_page(p)))
}

/// Finds a call by our id, Twilio Call SID or ElevenLabs conversation id.
pub(crate) async fn resolve(state: &AppState, id: &str) -> Result<Call, ApiError> {
    if let Ok(call_id) = CallId::parse(id) {
        return Ok(state.store.get_call(&call_id).await?);
    }
    if id.starts_with("CA")
        && let Some(c) = state.store.find_call_by_sid(id).await?
    {
        return Ok(c);
    }
    state.store.find_call_by_conversation(id).await?.ok_or(ApiError::NotFound("call"))
}

/// One call, by our id, `call_sid` or `conversation_id`.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}", tag = "calls", operation_id = "get_call",
    params(("id" = String, Path, min_length = 1, description = "call_… id, Twilio CallSid (CA…) or ElevenLabs conversation_id")),
    responses(
        (status = 200, description = "The call", body = CallOut),
        (status = 404, description = "No call with this id (`call_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get_call(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<CallOut>, ApiError> {
    // Lookups by our id are cached (a write to the call evicts it: `cache::Evicting`).
    if id.starts_with("call_") {
        let key = crate::cache::call_key(&id);
        let call = state.cache.get_or_compute(crate::cache::Kind::Call, &key, || resolve(&state, &id)).await?;
        return Ok(Json(call.into()));
    }
    Ok(Json(resolve(&state, &id).await?.into()))
}

/// Events of one call, chronological, paginated.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}/events", tag = "calls", operation_id = "list_call_events",
    params(
        ("id" = String, Path, min_length = 1, description = "call_… id, CallSid or conversation_id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of the call's events, chronological", body = EventPage),
        (status = 400, description = "A bad or unknown query parameter (`validation_failed`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No call with this id (`call_not_found`)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_call_events(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<EventPage>, ApiError> {
    let mut q = Query::parse(uri.query(), &["limit", "cursor"]);
    let page = q.page();
    q.finish()?;
    let call = resolve(&state, &id).await?;
    let p = state.store.list_call_events(&call.id, &page).await.map_err(cursor_error)?;
    Ok(Json(EventPage::from(p)))
}

/// Routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/calls", get(list_calls))
        .route("/calls/{id}", get(get_call))
        .route("/calls/{id}/events", get(list_call_events))
}
