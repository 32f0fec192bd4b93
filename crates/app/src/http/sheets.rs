//! Google Sheets links: `/api/v1/sheet-links` (create, list, get, update,
//! delete), `POST …/{id}/sync` (sync now) and `GET …/{id}/preview` (a dry
//! run of the mapping on the real sheet). The sync itself is
//! [`crate::jobs::sheets`].

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use switchboard_domain::sheet::{RowIssue, SheetLinkInput};
use switchboard_domain::time::now_ms;
use switchboard_domain::{SheetLink, SheetLinkId};
use utoipa::ToSchema;

use super::contacts::ContactOut;
use super::extract::{JsonBody, field_errors};
use super::query::Query;
use crate::AppState;
use crate::error::{ApiError, retry_on_stale};
use crate::jobs::sheets::{SheetsSync, SyncError};

/// One invalid row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RowIssueOut {
    /// 1-based sheet row number.
    pub row: u32,
    /// Field (`phone`, `email`, …).
    pub field: String,
    /// Why.
    pub reason: String,
}

impl From<RowIssue> for RowIssueOut {
    fn from(r: RowIssue) -> Self {
        RowIssueOut { row: r.row, field: r.field, reason: r.reason }
    }
}

/// Where a link's sync stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncStateOut {
    /// `new`, `ok`, `error` or `paused`.
    #[schema(required = true)]
    pub status: Option<String>,
    /// When the last sync finished.
    #[schema(required = true)]
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the last successful sync finished.
    #[schema(required = true)]
    pub last_success_at: Option<DateTime<Utc>>,
    /// Why the last sync failed, in words a person can act on.
    #[schema(required = true)]
    pub last_error: Option<String>,
    /// When the next poll is due (none while the link is paused or never synced).
    #[schema(required = true)]
    pub next_poll_at: Option<DateTime<Utc>>,
    /// Drive version of the sheet last applied.
    #[schema(required = true)]
    pub last_version: Option<u64>,
    /// Data rows at the last read.
    pub rows: u64,
    /// Valid rows at the last read.
    pub valid_rows: u64,
    /// Row changes applied to the store, in total.
    pub rows_in: u64,
    /// Rows whose status cells were written, in total.
    pub rows_out: u64,
    /// Status rows still to write.
    pub pending_writebacks: u64,
    /// Sheets and Drive requests made, in total.
    pub requests: u64,
    /// The first invalid rows of the last read, with their sheet row numbers.
    pub row_issues: Vec<RowIssueOut>,
}

/// A spreadsheet tab bound to a campaign or to the contact list.
#[derive(Debug, Serialize, ToSchema)]
pub struct SheetLinkOut {
    /// Our id (`lnk_…`).
    #[schema(pattern = "^lnk_[0-9a-f]{32}$")]
    pub id: String,
    /// Spreadsheet id.
    pub spreadsheet_id: String,
    /// Tab title.
    pub tab: String,
    /// 1-based header row.
    pub header_row: u32,
    /// Campaign the rows are enrolled in (null: contacts only).
    #[schema(required = true)]
    pub campaign_id: Option<String>,
    /// Explicit header → field mappings (other headers map through the CSV import aliases).
    pub mapping: BTreeMap<String, String>,
    /// Switchboard's columns: status field → header.
    pub status_columns: BTreeMap<String, String>,
    /// `cancel` or `keep`: what a deleted row does to its waiting enrollment.
    pub on_row_deleted: String,
    /// Seconds between polls.
    pub poll_secs: u32,
    /// Paused links are not synced.
    pub paused: bool,
    /// Sync state.
    pub state: SyncStateOut,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Version (compare-and-set of the settings).
    pub version: i64,
}

impl From<SheetLink> for SheetLinkOut {
    fn from(l: SheetLink) -> Self {
        let s = l.state;
        let next_poll_at = match (l.paused, s.last_sync_at) {
            (false, Some(t)) => Some(t + chrono::Duration::seconds(i64::from(l.poll_secs))),
            _ => None,
        };
        SheetLinkOut {
            id: l.id.to_string(),
            spreadsheet_id: l.spreadsheet_id,
            tab: l.tab,
            header_row: l.header_row,
            campaign_id: l.campaign_id.map(|c| c.to_string()),
            mapping: l.mapping,
            status_columns: l.status_columns.into_iter().map(|(f, h)| (f.as_str().to_owned(), h)).collect(),
            on_row_deleted: l.on_row_deleted.as_str().to_owned(),
            poll_secs: l.poll_secs,
            paused: l.paused,
            state: SyncStateOut {
                // Pausing is a setting; the state is the sync job's, so the answer derives it.
                status: if l.paused { Some("paused".into()) } else { s.status.map(|v| v.as_str().to_owned()) },
                last_sync_at: s.last_sync_at,
                last_success_at: s.last_success_at,
                last_error: s.last_error,
                next_poll_at,
                last_version: s.last_version,
                rows: s.rows,
                valid_rows: s.valid_rows,
                rows_in: s.rows_in,
                rows_out: s.rows_out,
                pending_writebacks: s.pending_writebacks,
                requests: s.requests,
                row_issues: s.row_issues.into_iter().map(RowIssueOut::from).collect(),
            },
            created_at: l.created_at,
            updated_at: l.updated_at,
            version: l.version,
        }
    }
}

/// A page of links.
#[derive(Debug, Serialize, ToSchema)]
pub struct SheetLinkPage {
    /// Links, newest first.
    pub data: Vec<SheetLinkOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// A link to create, or the changes to one (`spreadsheet` and `campaign_id` only on create).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct SheetLinkBody {
    /// Spreadsheet id, or its `docs.google.com/spreadsheets/d/…` URL (required on create).
    spreadsheet: Option<String>,
    /// Tab title (default `Sheet1`).
    tab: Option<String>,
    /// 1-based header row (default 1).
    #[schema(minimum = 1, maximum = 1000)]
    header_row: Option<u32>,
    /// Campaign to enroll rows in (`cmp_…`); omit for a contact list.
    campaign_id: Option<String>,
    /// Header → field: `phone`, `name`, `first_name`, `last_name`, `email`, `tags`, `time_zone`, `do_not_call`, `do_not_call_reason`, `lat`, `lon`, `custom.NAME`, `ignore`.
    mapping: Option<BTreeMap<String, String>>,
    /// Status field → header: `switchboard_id`, `status`, `attempts`, `last_outcome`, `last_called_at`, `call_id`, `sync_error`.
    status_columns: Option<BTreeMap<String, String>>,
    /// `cancel` (default) or `keep`.
    on_row_deleted: Option<String>,
    /// Seconds between polls of the sheet's version (5..=86400, default 60).
    #[schema(minimum = 5, maximum = 86400)]
    poll_secs: Option<u32>,
    /// Pause or resume syncing.
    paused: Option<bool>,
}

/// One row as it would be stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewRow {
    /// 1-based sheet row.
    pub row: u32,
    /// The contact.
    #[schema(value_type = super::schemas::Contact)]
    pub contact: ContactOut,
}

/// A dry run of a link's mapping on the real sheet (nothing is written).
#[derive(Debug, Serialize, ToSchema)]
pub struct SheetPreview {
    /// Data rows.
    pub rows: u64,
    /// People-owned columns: header → contact field.
    pub columns: BTreeMap<String, String>,
    /// Status headers the first sync adds at the end of the header row.
    pub new_headers: Vec<String>,
    /// The first rows as they would be stored.
    pub preview: Vec<PreviewRow>,
    /// Invalid rows (first 100), with their sheet row numbers.
    pub errors: Vec<RowIssueOut>,
}

fn link_id(id: &str) -> Result<SheetLinkId, ApiError> {
    SheetLinkId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))
}

async fn load(state: &AppState, id: &str) -> Result<SheetLink, ApiError> {
    state.store.get_sheet_link(&link_id(id)?).await?.ok_or(ApiError::NotFound("sheet link"))
}

fn sync_of(state: &AppState) -> Result<&SheetsSync, ApiError> {
    state.sheets.as_ref().ok_or_else(|| {
        ApiError::NotConfigured(
            "no Google service account is configured (SWITCHBOARD_GOOGLE__CREDENTIALS_FILE or GOOGLE_APPLICATION_CREDENTIALS)"
                .into(),
        )
    })
}

/// Create a sheet link.
#[utoipa::path(post, path = "/api/v1/sheet-links", tag = "sheets", operation_id = "create_sheet_link",
    request_body = SheetLinkBody,
    responses(
        (status = 201, description = "Created; the first sync runs at the next poll (or `POST …/sync`)", body = SheetLinkOut),
        (status = 400, description = "Invalid fields (`validation_failed`; `errors` names each), or no such campaign", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A link for this spreadsheet tab exists (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `body_limit_bytes` (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<SheetLinkInput>,
) -> Result<(StatusCode, Json<SheetLinkOut>), ApiError> {
    let link = SheetLink::create(input, now_ms()).map_err(field_errors)?;
    if let Some(c) = &link.campaign_id
        && state.store.get_campaign(c).await?.is_none()
    {
        return Err(ApiError::field("campaign_id", "no such campaign"));
    }
    state.store.insert_sheet_link(&link).await?;
    Ok((StatusCode::CREATED, Json(link.into())))
}

/// List sheet links, newest first.
#[utoipa::path(get, path = "/api/v1/sheet-links", tag = "sheets", operation_id = "list_sheet_links",
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses(
        (status = 200, description = "A page of links", body = SheetLinkPage),
        (status = 400, description = "A bad or unknown query parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, uri: Uri) -> Result<Json<SheetLinkPage>, ApiError> {
    let mut q = Query::parse(uri.query(), &["limit", "cursor"]);
    let page = q.page();
    q.finish()?;
    let p = state.store.list_sheet_links(&page).await.map_err(super::extract::cursor_error)?;
    Ok(Json(SheetLinkPage { data: p.items.into_iter().map(SheetLinkOut::from).collect(), next_cursor: p.next_cursor }))
}

/// Get a sheet link and its sync status.
#[utoipa::path(get, path = "/api/v1/sheet-links/{id}", tag = "sheets", operation_id = "get_sheet_link",
    params(("id" = String, Path, description = "Link id (`lnk_…`)")),
    responses(
        (status = 200, description = "The link", body = SheetLinkOut),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<SheetLinkOut>, ApiError> {
    Ok(Json(load(&state, &id).await?.into()))
}

/// Update a sheet link's settings (tab, header row, mapping, status columns, polling, pause).
#[utoipa::path(patch, path = "/api/v1/sheet-links/{id}", tag = "sheets", operation_id = "update_sheet_link",
    params(("id" = String, Path, description = "Link id (`lnk_…`)")),
    request_body = SheetLinkBody,
    responses(
        (status = 200, description = "Updated", body = SheetLinkOut),
        (status = 400, description = "Invalid fields, or `spreadsheet`/`campaign_id` given (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another link has this tab (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `body_limit_bytes` (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not `application/json` (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<SheetLinkInput>,
) -> Result<Json<SheetLinkOut>, ApiError> {
    let id = link_id(&id)?;
    let saved = retry_on_stale("sheet link", || {
        let (state, id, input) = (state.clone(), id.clone(), input.clone());
        async move {
            let mut link = state.store.get_sheet_link(&id).await?.ok_or(ApiError::NotFound("sheet link"))?;
            link.update(input, now_ms()).map_err(field_errors)?;
            Ok(state.store.replace_sheet_link(&link).await?)
        }
    })
    .await?;
    Ok(Json(saved.into()))
}

/// Delete a sheet link (contacts, enrollments and calls stay; the sheet is not touched).
#[utoipa::path(delete, path = "/api/v1/sheet-links/{id}", tag = "sheets", operation_id = "delete_sheet_link",
    params(("id" = String, Path, description = "Link id (`lnk_…`)")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn remove(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.store.delete_sheet_link(&link_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("sheet link"))
    }
}

/// Sync a link now (reads the sheet even if it did not change) and answer its status.
#[utoipa::path(post, path = "/api/v1/sheet-links/{id}/sync", tag = "sheets", operation_id = "sync_sheet_link",
    params(("id" = String, Path, description = "Link id (`lnk_…`)")),
    responses(
        (status = 200, description = "The link after the sync; a failed sync shows `state.status = error` and `state.last_error`", body = SheetLinkOut),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A sync of this link is running (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn sync(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<SheetLinkOut>, ApiError> {
    let id = link_id(&id)?;
    let sync = sync_of(&state)?;
    match sync.sync_now(&id, None).await {
        Ok(link) => Ok(Json(link.into())),
        Err(SyncError::NotFound) => Err(ApiError::NotFound("sheet link")),
        Err(SyncError::Busy) => {
            Err(ApiError::Conflict("a sync of this link is running; try again when it ends".into()))
        }
        Err(SyncError::Store(e)) => Err(e.into()),
    }
}

/// Preview a link's mapping on the real sheet: the first rows as they would be stored, and every invalid row.
#[utoipa::path(get, path = "/api/v1/sheet-links/{id}/preview", tag = "sheets", operation_id = "preview_sheet_link",
    params(("id" = String, Path, description = "Link id (`lnk_…`)"), ("rows" = Option<u32>, Query, minimum = 1, maximum = 100, description = "Rows to show (default 10)")),
    responses(
        (status = 200, description = "The preview (nothing written)", body = SheetPreview),
        (status = 400, description = "Malformed id or parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such link (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "Google refused or failed (`upstream_error`): the reason, e.g. the sheet is not shared with the service account", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn preview(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<SheetPreview>, ApiError> {
    let mut q = Query::parse(uri.query(), &["rows"]);
    let rows = match q.one("rows").map(|r| r.parse::<u32>()) {
        None => 10,
        Some(Ok(n)) if (1..=100).contains(&n) => n,
        Some(_) => {
            q.bad("rows", "must be an integer 1..=100");
            0
        }
    };
    q.finish()?;
    let link = load(&state, &id).await?;
    let sync = sync_of(&state)?;
    let p = sync.preview(&link, rows as usize).await.map_err(|e| ApiError::Upstream(format!("{e:#}")))?;
    Ok(Json(SheetPreview {
        rows: p.rows,
        columns: p.columns.into_iter().collect(),
        new_headers: p.new_headers,
        preview: p.preview.into_iter().map(|(row, c)| PreviewRow { row, contact: c.into() }).collect(),
        errors: p.errors.into_iter().map(RowIssueOut::from).collect(),
    }))
}

/// Routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/sheet-links", get(list).post(create))
        .route("/sheet-links/{id}", get(get_one).patch(patch).delete(remove))
        .route("/sheet-links/{id}/sync", post(sync))
        .route("/sheet-links/{id}/preview", get(preview))
}
