//! `GET /api/v1/events`: events across calls, filtered by type, source and time.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::get;
use serde::Serialize;
use switchboard_domain::{CallEvent, Source};
use switchboard_storage::EventFilter;
use utoipa::ToSchema;

use super::extract::{cursor_error, ts};
use super::query::Query;
use crate::AppState;
use crate::error::{ApiError, Problem};

/// A stored call event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Our id (`evt_…`).
    #[schema(pattern = "^evt_[0-9a-f]{32}$")]
    pub id: String,
    /// The call.
    #[schema(value_type = super::schemas::CallId)]
    pub call_id: String,
    /// twilio, elevenlabs or switchboard.
    #[schema(value_type = super::schemas::Source)]
    pub source: String,
    /// Dotted type, e.g. `twilio.status.ringing`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Provider time (RFC 3339, ms).
    #[schema(format = DateTime)]
    pub occurred_at: String,
    /// Receipt time.
    #[schema(format = DateTime)]
    pub received_at: String,
    /// Provider ordering number.
    #[schema(required = true)]
    pub sequence: Option<i64>,
    /// The webhook body (secrets stripped).
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
}

impl From<CallEvent> for EventOut {
    fn from(e: CallEvent) -> Self {
        EventOut {
            id: e.id.to_string(),
            call_id: e.call_id.to_string(),
            source: e.source.to_string(),
            event_type: e.event_type,
            occurred_at: ts(e.occurred_at),
            received_at: ts(e.received_at),
            sequence: e.sequence,
            payload: e.payload,
        }
    }
}

/// A page of events.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventPage {
    /// Events, chronological.
    pub data: Vec<EventOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

impl From<switchboard_storage::Page<CallEvent>> for EventPage {
    fn from(p: switchboard_storage::Page<CallEvent>) -> Self {
        EventPage { data: p.items.into_iter().map(EventOut::from).collect(), next_cursor: p.next_cursor }
    }
}

/// Events across calls, chronological.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events", operation_id = "list_events",
    params(
        ("type" = Option<String>, Query, description = "Exact type, or a prefix ending in `*` (e.g. `twilio.status.*`)"),
        ("source" = Option<super::schemas::Source>, Query, description = "Source"),
        ("occurred_after" = Option<String>, Query, format = DateTime, description = "RFC 3339; occurred_at >= this"),
        ("occurred_before" = Option<String>, Query, format = DateTime, description = "RFC 3339; occurred_at < this"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of events, chronological", body = EventPage),
        (status = 400, description = "A bad or unknown query parameter (`validation_failed`; `errors` names each)", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_events(State(state): State<AppState>, uri: Uri) -> Result<Json<EventPage>, ApiError> {
    let mut q = Query::parse(uri.query(), &["type", "source", "occurred_after", "occurred_before", "limit", "cursor"]);
    let filter = EventFilter {
        event_type: q.one("type"),
        source: q.parsed::<Source>("source"),
        occurred_after: q.time("occurred_after"),
        occurred_before: q.time("occurred_before"),
    };
    let page = q.page();
    q.finish()?;
    let p = state.store.list_events(&filter, &page).await.map_err(cursor_error)?;
    Ok(Json(p.into()))
}

/// Routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/events", get(list_events))
}
