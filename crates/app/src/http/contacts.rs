//! `/api/v1/contacts`: create, get, partial update, delete, list with search
//! and filters, lookup by phone, a contact's call history, import and export.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use switchboard_domain::contact::normalize_phone;
use switchboard_domain::time::now_ms;
use switchboard_domain::{Contact, ContactId, ContactInput};
use switchboard_storage::{CallFilter, CallSort, ContactFilter, ContactSort, OnDuplicate, StoreError};

use super::calls::CallPage;
use super::query::Query;
use crate::AppState;
use crate::error::ApiError;
use crate::import::{ExportFormat, ImportFormat, ImportOptions};

/// A page of contacts.
#[derive(Debug, Serialize)]
pub struct ContactPage {
    /// Contacts.
    pub data: Vec<Contact>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

use super::extract::JsonBody;
pub use super::extract::{field_errors, json_body};

fn contact_id(id: &str) -> Result<ContactId, ApiError> {
    ContactId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))
}

/// Create a contact (body: phone, name, email, tags, custom, time_zone, location, do_not_call, do_not_call_reason, source).
#[utoipa::path(post, path = "/api/v1/contacts", request_body(content = Object, content_type = "application/json", description = "JSON fields as described in the README"), tag = "contacts",
    responses((status = 201, description = "Created"), (status = 400, description = "Invalid input; `errors` names each field"), (status = 409, description = "Phone already stored")),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<ContactInput>,
) -> Result<(StatusCode, Json<Contact>), ApiError> {
    let mut contact = input.validate(&state.settings.contacts.default_region, now_ms()).map_err(field_errors)?;
    if contact.source.is_none() {
        contact.source = Some("api".into());
    }
    state.store.insert_contact(&contact).await?;
    Ok((StatusCode::CREATED, Json(contact)))
}

/// Get a contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id (con_…)")),
    responses((status = 200, description = "The contact"), (status = 404, description = "Unknown contact")),
    security(("bearer" = [])))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<Contact>, ApiError> {
    state.store.get_contact(&contact_id(&id)?).await?.map(Json).ok_or(ApiError::NotFound("contact"))
}

/// Partially update a contact (only the fields sent).
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", request_body(content = Object, content_type = "application/json", description = "JSON fields as described in the README"), tag = "contacts",
    params(("id" = String, Path, description = "Contact id (con_…)")),
    responses((status = 200, description = "The stored contact"), (status = 400, description = "Invalid input; `errors` names each field"), (status = 404, description = "Unknown contact"), (status = 409, description = "Phone already stored")),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ContactInput>,
) -> Result<Json<Contact>, ApiError> {
    let id = contact_id(&id)?;
    for _ in 0..5 {
        let stored = state.store.get_contact(&id).await?.ok_or(ApiError::NotFound("contact"))?;
        let next = input.patch(&stored, &state.settings.contacts.default_region, now_ms()).map_err(field_errors)?;
        match state.store.replace_contact(&next).await {
            Ok(saved) => return Ok(Json(saved)),
            Err(StoreError::Conflict { what }) if what.contains("changed concurrently") => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the contact kept changing; try again".into()))
}

/// Delete a contact and its enrollments.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Contact id (con_…)")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Unknown contact"), (status = 409, description = "A call is in flight")),
    security(("bearer" = [])))]
pub async fn delete(State(state): State<AppState>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    if state.store.delete_contact(&contact_id(&id)?).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound("contact"))
    }
}

/// The list filters shared by list and export.
fn filter_of(q: &mut Query) -> ContactFilter {
    let dnc = match q.one("dnc").as_deref() {
        None => None,
        Some("true") => Some(true),
        Some("false") => Some(false),
        Some(v) => {
            q.bad("dnc", format!("`{v}` is not true or false"));
            None
        }
    };
    ContactFilter { search: q.one("search"), tag: q.one("tag"), dnc }
}

fn sort_of(q: &mut Query) -> ContactSort {
    match q.one("sort").as_deref() {
        None | Some("-created_at") => ContactSort::CreatedDesc,
        Some("created_at") => ContactSort::CreatedAsc,
        Some(v) => {
            q.bad("sort", format!("`{v}` is not one of: -created_at, created_at"));
            ContactSort::CreatedDesc
        }
    }
}

/// List contacts with search (name / phone / e-mail prefix), tag and DNC filters, sort and cursor.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts",
    params(("search" = Option<String>, Query, description = "Case-insensitive prefix of name, e-mail or phone"), ("tag" = Option<String>, Query, description = "Tag"), ("dnc" = Option<bool>, Query, description = "Do-not-call"), ("sort" = Option<String>, Query, description = "-created_at (default) or created_at"), ("limit" = Option<u32>, Query, description = "1..=200"), ("cursor" = Option<String>, Query, description = "next_cursor")),
    responses((status = 200, description = "A page: data, next_cursor"), (status = 400, description = "Invalid input; `errors` names each field")),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, uri: Uri) -> Result<Json<ContactPage>, ApiError> {
    let mut q = Query::parse(uri.query(), &["search", "tag", "dnc", "sort", "limit", "cursor"]);
    let filter = filter_of(&mut q);
    let sort = sort_of(&mut q);
    let page = q.page();
    q.finish()?;
    let p = state.store.list_contacts(&filter, sort, &page).await?;
    Ok(Json(ContactPage { data: p.items, next_cursor: p.next_cursor }))
}

/// Find a contact by phone (any format; normalised with the default region).
#[utoipa::path(get, path = "/api/v1/contacts/lookup", tag = "contacts",
    params(("phone" = String, Query, description = "Phone")),
    responses((status = 200, description = "The contact"), (status = 400, description = "Invalid input; `errors` names each field"), (status = 404, description = "No contact with this phone")),
    security(("bearer" = [])))]
pub async fn lookup(State(state): State<AppState>, uri: Uri) -> Result<Json<Contact>, ApiError> {
    let q = Query::parse(uri.query(), &["phone"]);
    let raw = q.one("phone").ok_or_else(|| ApiError::field("phone", "is required"))?;
    q.finish()?;
    let (e164, _) =
        normalize_phone(&raw, &state.settings.contacts.default_region).map_err(|e| ApiError::field("phone", e))?;
    state.store.find_contact_by_phone(&e164).await?.map(Json).ok_or(ApiError::NotFound("contact"))
}

/// A contact's call history, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/calls", tag = "contacts",
    params(("id" = String, Path, description = "Contact id (con_…)"), ("limit" = Option<u32>, Query, description = "1..=200"), ("cursor" = Option<String>, Query, description = "next_cursor")),
    responses((status = 200, description = "A page of calls"), (status = 404, description = "Unknown contact")),
    security(("bearer" = [])))]
pub async fn calls(
    State(state): State<AppState>,
    Path(id): Path<String>,
    uri: Uri,
) -> Result<Json<CallPage>, ApiError> {
    let id = contact_id(&id)?;
    let mut q = Query::parse(uri.query(), &["limit", "cursor"]);
    let page = q.page();
    q.finish()?;
    if state.store.get_contact(&id).await?.is_none() {
        return Err(ApiError::NotFound("contact"));
    }
    let filter = CallFilter { contact_id: Some(id.to_string()), ..Default::default() };
    let p = state.store.list_calls(&filter, CallSort::StartedAtDesc, &page).await?;
    Ok(Json(CallPage::from_page(p)))
}

fn import_options(q: &mut Query, state: &AppState) -> ImportOptions {
    let format = match q.one("format").as_deref() {
        None | Some("csv") => ImportFormat::Csv,
        Some("json") => ImportFormat::Json,
        Some("ndjson") => ImportFormat::Ndjson,
        Some(v) => {
            q.bad("format", format!("`{v}` is not one of: csv, json, ndjson"));
            ImportFormat::Csv
        }
    };
    let on_duplicate = match q.one("on_duplicate").as_deref() {
        None | Some("skip") => OnDuplicate::Skip,
        Some("update") => OnDuplicate::Update,
        Some("fail") => OnDuplicate::Fail,
        Some(v) => {
            q.bad("on_duplicate", format!("`{v}` is not one of: skip, update, fail"));
            OnDuplicate::Skip
        }
    };
    let flag = |q: &mut Query, k: &str| match q.one(k).as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            q.bad(k, format!("`{v}` is not true or false"));
            false
        }
    };
    let mut mapping = Vec::new();
    for m in q.all("map") {
        match m.split_once('=') {
            Some((col, field)) => mapping.push((col.trim().to_owned(), field.trim().to_owned())),
            None => q.bad("map", format!("`{m}` is not COLUMN=field")),
        }
    }
    let enroll_in = q.one("campaign_id").and_then(|c| match switchboard_domain::CampaignId::parse(&c) {
        Ok(id) => Some(id),
        Err(e) => {
            q.bad("campaign_id", e.to_string());
            None
        }
    });
    ImportOptions {
        format,
        on_duplicate,
        enroll_in,
        dry_run: flag(q, "dry_run"),
        partial: flag(q, "partial"),
        default_region: state.settings.contacts.default_region.clone(),
        mapping,
        ..ImportOptions::default()
    }
}

/// `POST /contacts/import`: the body is the file (CSV, a JSON array or NDJSON), or a
/// `multipart/form-data` upload with the file in a part named `file`.
/// Import contacts: the body is the file (CSV, JSON array, NDJSON) or multipart/form-data with a `file` part. Validates every row first; writes only if all are valid or partial=true.
#[utoipa::path(post, path = "/api/v1/contacts/import", request_body(content = String, content_type = "text/csv", description = "The file: CSV (or JSON / NDJSON with `format`), or multipart/form-data with a `file` part"), tag = "contacts",
    params(("format" = Option<String>, Query, description = "csv (default), json, ndjson"), ("on_duplicate" = Option<String>, Query, description = "skip (default), update, fail"), ("dry_run" = Option<bool>, Query, description = "Validate only"), ("partial" = Option<bool>, Query, description = "Write the valid rows even if some are invalid"), ("map" = Option<Vec<String>>, Query, description = "COLUMN=field, repeatable"), ("campaign_id" = Option<String>, Query, description = "Also enroll every contact of the file in this campaign")),
    responses((status = 200, description = "The import report"), (status = 202, description = "Still running after `import.sync_wait_ms`: `{id, status, status_url}`; poll GET /api/v1/imports/{id}"), (status = 400, description = "Invalid input; `errors` names each field"), (status = 413, description = "Upload over `import.max_upload_bytes` (or a JSON array over 16 MiB)"), (status = 422, description = "Nothing written; the report says why")),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut q = Query::parse(uri.query(), &["format", "on_duplicate", "dry_run", "partial", "map", "campaign_id"]);
    let mut opts = import_options(&mut q, &state);
    opts.max_field_bytes = state.settings.import.max_field_bytes;
    opts.owner = format!("{}-{}", crate::hostname(), std::process::id());
    q.finish()?;
    let limits = &state.settings.import;
    if let Some(len) = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
        && len > limits.max_upload_bytes
    {
        return Err(ApiError::PayloadTooLarge(format!(
            "the upload is {len} bytes, over {} (import.max_upload_bytes)",
            limits.max_upload_bytes
        )));
    }
    // Spool the upload to a temporary file: the importer reads it twice (validate, then write)
    // and never holds it in memory. A client that goes away mid-upload leaves only the spool.
    let spool = tempfile::NamedTempFile::new().map_err(|e| ApiError::Internal(e.into()))?.into_temp_path();
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    crate::import::spool_upload(body, &content_type, &spool, limits.max_upload_bytes).await?;
    // The import runs as its own task, so neither the request timeout nor a client that
    // disconnects can stop it half-way (a stopped request future would cut it between
    // batches). The request waits `sync_wait_ms` for the report, then answers 202 with the
    // import's id; `GET /api/v1/imports/{id}` shows progress and the final report.
    let registry = state.imports.clone();
    let id = registry.start();
    let progress: crate::import::Progress = {
        let (registry, id) = (registry.clone(), id.clone());
        std::sync::Arc::new(move |stage: &str, n: u64| registry.progress(&id, stage, n))
    };
    let store = state.store.clone();
    let job = {
        let (registry, id) = (registry.clone(), id.clone());
        tokio::spawn(async move {
            let result = crate::import::import_file(store, &spool, opts, Some(progress)).await;
            registry.finish(&id, &result);
            drop(spool);
            result
        })
    };
    let wait = std::time::Duration::from_millis(limits.sync_wait_ms);
    match tokio::time::timeout(wait, job).await {
        Ok(Ok(result)) => {
            let report = result?;
            let status =
                if report.applied || report.dry_run { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
            Ok((status, Json(report)).into_response())
        }
        Ok(Err(join)) => Err(ApiError::Internal(anyhow::anyhow!("import task failed: {join}"))),
        Err(_) => {
            let mut resp = (
                StatusCode::ACCEPTED,
                Json(
                    serde_json::json!({ "id": id, "status": "running", "status_url": format!("/api/v1/imports/{id}") }),
                ),
            )
                .into_response();
            if let Ok(v) = axum::http::HeaderValue::from_str(&format!("/api/v1/imports/{id}")) {
                resp.headers_mut().insert(header::LOCATION, v);
            }
            Ok(resp)
        }
    }
}

/// An import started over the API: progress, then the final report.
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "contacts",
    params(("id" = String, Path, description = "Import id (imp_…) from a 202 answer")),
    responses((status = 200, description = "The import: status running | done | failed, stage, rows read, report"), (status = 401, description = "Missing or invalid bearer token"), (status = 404, description = "Unknown import (or run by another instance, or before a restart)")),
    security(("bearer" = [])))]
pub async fn get_import(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::import::ImportJob>, ApiError> {
    state.imports.get(&id).map(Json).ok_or(ApiError::NotFound("import"))
}

/// `GET /contacts/export?format=csv|ndjson` with the list filters, streamed.
/// Export contacts as CSV or NDJSON (streamed, oldest first) with the list filters.
#[utoipa::path(get, path = "/api/v1/contacts/export", tag = "contacts",
    params(("format" = Option<String>, Query, description = "csv (default) or ndjson"), ("search" = Option<String>, Query, description = "Prefix"), ("tag" = Option<String>, Query, description = "Tag"), ("dnc" = Option<bool>, Query, description = "Do-not-call")),
    responses((status = 200, description = "The file"), (status = 400, description = "Invalid input; `errors` names each field")),
    security(("bearer" = [])))]
pub async fn export(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let mut q = Query::parse(uri.query(), &["format", "search", "tag", "dnc"]);
    let filter = filter_of(&mut q);
    let format = match q.one("format").as_deref() {
        None | Some("csv") => ExportFormat::Csv,
        Some("ndjson") | Some("json") => ExportFormat::Ndjson,
        Some(v) => {
            q.bad("format", format!("`{v}` is not one of: csv, ndjson"));
            ExportFormat::Csv
        }
    };
    q.finish()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(8);
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = crate::import::export_chunks(&*store, &filter, format, |chunk| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(chunk))).await.is_ok() }
        })
        .await
        {
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = tokio_stream_from(rx);
    let ct = match format {
        ExportFormat::Csv => "text/csv; charset=utf-8",
        ExportFormat::Ndjson => "application/x-ndjson",
    };
    Ok(([(header::CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

/// The contact routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/contacts", post(create).get(list))
        .route("/contacts/lookup", get(lookup))
        .route("/contacts/import", post(import))
        .route("/imports/{id}", get(get_import))
        .route("/contacts/export", get(export))
        .route("/contacts/{id}", get(get_one).patch(patch).delete(delete))
        .route("/contacts/{id}/calls", get(calls))
}
