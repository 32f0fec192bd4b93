//! `GET /api/v1/events`: events across calls, filtered by type, source and time.

use axum::Json;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::get;
use serde::Serialize;
use switchboard_domain::{CallEvent, Source};
use switchboard_storage::EventFilter;
use utoipa::ToSchema;

use super::calls::{cursor_error, ts};
use super::query::Query;
use crate::AppState;
use crate::error::{ApiError, Problem};

/// A stored call event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventOut {
    /// Our id (`evt_…`).
    pub id: String,
    /// The call.
    pub call_id: String,
    /// twilio, elevenlabs or switchboard.
    pub source: String,
    /// Dotted type, e.g. `twilio.status.ringing`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Provider time (RFC 3339, ms).
    pub occurred_at: String,
    /// Receipt time.
    pub received_at: String,
    /// Provider ordering number.
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
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<switchboard_storage::Page<CallEvent>> for EventPage {
    fn from(p: switchboard_storage::Page<CallEvent>) -> Self {
        EventPage { data: p.items.into_iter().map(EventOut::from).collect(), next_cursor: p.next_cursor }
    }
}

/// Events across calls, chronological.
#[utoipa::path(
    get, path = "/api/v1/events", tag = "events",
    params(
        ("type" = Option<String>, Query, description = "Exact type, or a prefix ending in `*` (e.g. `twilio.status.*`)"),
        ("source" = Option<String>, Query, description = "twilio, elevenlabs, switchboard"),
        ("occurred_after" = Option<String>, Query, description = "RFC 3339; occurred_at >= this"),
        ("occurred_before" = Option<String>, Query, description = "RFC 3339; occurred_at < this"),
        ("limit" = Option<u32>, Query, description = "1..=200, default 50"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses((status = 200, body = EventPage), (status = 400, body = Problem, content_type = "application/problem+json")),
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
