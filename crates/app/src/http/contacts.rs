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
use switchboard_storage::{CallFilter, CallSort, ContactFilter, ContactSort, OnDuplicate};

use super::calls::CallPage;
use super::query::Query;
use crate::AppState;
use crate::error::{ApiError, retry_on_stale};
use crate::import::{ExportFormat, ImportFormat, ImportOptions};

/// A contact on the wire. Today the same fields as the stored record; it is
/// the boundary where PII masking and field-level encryption (Phase 5) apply,
/// so handlers never serialise the domain type directly.
#[derive(Debug, Serialize)]
pub struct ContactOut {
    id: ContactId,
    phone: String,
    region: Option<String>,
    name: Option<String>,
    email: Option<String>,
    tags: Vec<String>,
    custom: std::collections::BTreeMap<String, serde_json::Value>,
    time_zone: Option<String>,
    location: Option<switchboard_domain::contact::GeoPoint>,
    do_not_call: Option<switchboard_domain::contact::DoNotCall>,
    source: Option<String>,
    created_at: chrono::DateTime<chrono::Utc>,
    updated_at: chrono::DateTime<chrono::Utc>,
    version: i64,
}

impl From<Contact> for ContactOut {
    fn from(c: Contact) -> Self {
        ContactOut {
            id: c.id,
            phone: c.phone,
            region: c.region,
            name: c.name,
            email: c.email,
            tags: c.tags,
            custom: c.custom,
            time_zone: c.time_zone,
            location: c.location,
            do_not_call: c.do_not_call,
            source: c.source,
            created_at: c.created_at,
            updated_at: c.updated_at,
            version: c.version,
        }
    }
}

/// A page of contacts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ContactPage {
    /// Contacts.
    #[schema(value_type = Vec<super::schemas::Contact>)]
    pub data: Vec<ContactOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The order of a contact list.
#[derive(utoipa::ToSchema)]
pub enum ContactSortParam {
    /// Newest first (default).
    #[schema(rename = "-created_at")]
    CreatedDesc,
    /// Oldest first.
    #[schema(rename = "created_at")]
    CreatedAsc,
}

/// An import's file format.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ImportFormatParam {
    /// CSV with a header row (default).
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

/// What an import does with a phone that is already stored.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum OnDuplicateParam {
    /// Leave the stored contact (default).
    Skip,
    /// Overwrite it with the row.
    Update,
    /// Refuse the whole file.
    Fail,
}

/// An export's format.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum ExportFormatParam {
    /// CSV (default).
    Csv,
    /// One JSON object per line.
    Ndjson,
    /// Same as ndjson.
    Json,
}

use super::extract::JsonBody;
pub use super::extract::{field_errors, json_body};

fn contact_id(id: &str) -> Result<ContactId, ApiError> {
    ContactId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))
}

/// Create a contact (body: phone, name, email, tags, custom, time_zone, location, do_not_call, do_not_call_reason, source).
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", operation_id = "create_contact",
    request_body(content = super::schemas::ContactCreate, content_type = "application/json", description = "The contact; unknown fields are refused",
        example = json!({"phone": "(415) 555-2671", "name": "Dana Scully", "email": "dana@example.com", "tags": ["vip"], "custom": {"plan": "gold"}, "time_zone": "America/Los_Angeles"})),
    responses(
        (status = 201, description = "Created; the stored contact", body = super::schemas::Contact,
            links(("get_contact" = (operation_id = "get_contact", parameters(("id" = "$response.body#/id")))), ("update_contact" = (operation_id = "update_contact", parameters(("id" = "$response.body#/id")))), ("delete_contact" = (operation_id = "delete_contact", parameters(("id" = "$response.body#/id")))), ("list_contact_calls" = (operation_id = "list_contact_calls", parameters(("id" = "$response.body#/id")))))),
        (status = 400, description = "Invalid JSON or invalid fields (`validation_failed`; `errors` names each field)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A contact with this phone is already stored (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `body_limit_bytes` (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    JsonBody(input): JsonBody<ContactInput>,
) -> Result<(StatusCode, Json<ContactOut>), ApiError> {
    let mut contact = input.validate(&state.settings.contacts.default_region, now_ms()).map_err(field_errors)?;
    if contact.source.is_none() {
        contact.source = Some("api".into());
    }
    state.store.insert_contact(&contact).await?;
    Ok((StatusCode::CREATED, Json(contact.into())))
}

/// Get a contact.
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", operation_id = "get_contact",
    params(("id" = super::schemas::ContactId, Path, description = "Contact id (`con_…`); a malformed one is a 400")),
    responses(
        (status = 200, description = "The contact", body = super::schemas::Contact),
        (status = 400, description = "Malformed contact id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No contact with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Json<ContactOut>, ApiError> {
    state.store.get_contact(&contact_id(&id)?).await?.map(|c| Json(c.into())).ok_or(ApiError::NotFound("contact"))
}

/// Partially update a contact (only the fields sent).
#[utoipa::path(patch, path = "/api/v1/contacts/{id}", tag = "contacts", operation_id = "update_contact",
    params(("id" = super::schemas::ContactId, Path, description = "Contact id (`con_…`); a malformed one is a 400")),
    request_body(content = super::schemas::ContactPatch, content_type = "application/json", description = "The fields to change; unknown fields are refused"),
    responses(
        (status = 200, description = "The stored contact", body = super::schemas::Contact),
        (status = 400, description = "Malformed contact id, invalid JSON or invalid fields (`validation_failed`; `errors` names each field)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No contact with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Another contact has this phone, or the contact kept changing concurrently (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "The body is over `body_limit_bytes` (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not sent as `application/json` (`unsupported_media_type`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn patch(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(input): JsonBody<ContactInput>,
) -> Result<Json<ContactOut>, ApiError> {
    let id = contact_id(&id)?;
    let (id, input, state) = (&id, &input, &state);
    retry_on_stale("contact", || async move {
        let stored = state.store.get_contact(id).await?.ok_or(ApiError::NotFound("contact"))?;
        let next = input.patch(&stored, &state.settings.contacts.default_region, now_ms()).map_err(field_errors)?;
        Ok(Json(state.store.replace_contact(&next).await?.into()))
    })
    .await
}

/// Delete a contact and its enrollments.
#[utoipa::path(delete, path = "/api/v1/contacts/{id}", tag = "contacts", operation_id = "delete_contact",
    params(("id" = super::schemas::ContactId, Path, description = "Contact id (`con_…`); a malformed one is a 400")),
    responses(
        (status = 204, description = "Deleted, with its enrollments"),
        (status = 400, description = "Malformed contact id (`validation_failed`, field `id`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No contact with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "A call to the contact is in flight (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
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
    let dnc = q.flag("dnc");
    ContactFilter { search: q.one("search"), tag: q.one("tag"), dnc }
}

fn sort_of(q: &mut Query) -> ContactSort {
    match q.raw("sort").as_deref() {
        None | Some("-created_at") => ContactSort::CreatedDesc,
        Some("created_at") => ContactSort::CreatedAsc,
        Some(v) => {
            q.bad("sort", format!("`{v}` is not one of: -created_at, created_at"));
            ContactSort::CreatedDesc
        }
    }
}

/// List contacts with search (name / phone / e-mail prefix), tag and DNC filters, sort and cursor.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", operation_id = "list_contacts",
    params(
        ("search" = Option<String>, Query, description = "Case-insensitive prefix of name, e-mail or phone"),
        ("tag" = Option<String>, Query, description = "Has this tag"),
        ("dnc" = Option<bool>, Query, description = "Do-not-call set (true) or not (false)"),
        ("sort" = Option<ContactSortParam>, Query, description = "Order (default -created_at)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of contacts", body = ContactPage),
        (status = 400, description = "A bad or unknown query parameter (`validation_failed`; `errors` names each)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(State(state): State<AppState>, uri: Uri) -> Result<Json<ContactPage>, ApiError> {
    let mut q = Query::parse(uri.query(), &["search", "tag", "dnc", "sort", "limit", "cursor"]);
    let filter = filter_of(&mut q);
    let sort = sort_of(&mut q);
    let page = q.page();
    q.finish()?;
    let p = state.store.list_contacts(&filter, sort, &page).await.map_err(super::extract::cursor_error)?;
    Ok(Json(ContactPage { data: p.items.into_iter().map(ContactOut::from).collect(), next_cursor: p.next_cursor }))
}

/// Find a contact by phone (any format; normalised with the default region).
#[utoipa::path(get, path = "/api/v1/contacts/lookup", tag = "contacts", operation_id = "lookup_contact",
    params(("phone" = String, Query, min_length = 1, description = "Phone in any format (normalised with the default region)")),
    responses(
        (status = 200, description = "The contact", body = super::schemas::Contact),
        (status = 400, description = "Missing or unparsable phone, or an unknown query parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No contact with this phone (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn lookup(State(state): State<AppState>, uri: Uri) -> Result<Json<ContactOut>, ApiError> {
    let q = Query::parse(uri.query(), &["phone"]);
    let raw = q.one("phone").ok_or_else(|| ApiError::field("phone", "is required"))?;
    q.finish()?;
    let (e164, _) =
        normalize_phone(&raw, &state.settings.contacts.default_region).map_err(|e| ApiError::field("phone", e))?;
    state.store.find_contact_by_phone(&e164).await?.map(|c| Json(c.into())).ok_or(ApiError::NotFound("contact"))
}

/// A contact's call history, newest first.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/calls", tag = "contacts", operation_id = "list_contact_calls",
    params(("id" = super::schemas::ContactId, Path, description = "Contact id (`con_…`); a malformed one is a 400"), ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size, 1..=200 (default 50)"), ("cursor" = Option<String>, Query, description = "next_cursor of the previous page")),
    responses(
        (status = 200, description = "A page of the contact's calls, newest first", body = CallPage),
        (status = 400, description = "Malformed contact id, or a bad or unknown query parameter (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No contact with this id (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
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
    let filter = CallFilter { contact_id: Some(id.clone()), ..Default::default() };
    let p =
        state.store.list_calls(&filter, CallSort::StartedAtDesc, &page).await.map_err(super::extract::cursor_error)?;
    Ok(Json(CallPage::from_page(p)))
}

/// The file format: `format` if given, else what the content type names (CSV by default).
/// A body sent as `application/json` is a JSON document, so it is read as the JSON array of
/// objects its schema names; `format=csv|ndjson` with it is a contradiction and refused rather
/// than guessed (NDJSON goes as `application/x-ndjson`, CSV as `text/csv` or any other type).
fn import_format(q: &mut Query, content_type: &str) -> ImportFormat {
    let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let json_body = media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"));
    let format = match q.raw("format").as_deref() {
        None if json_body => ImportFormat::Json,
        None if media == "application/x-ndjson" || media == "application/jsonl" => ImportFormat::Ndjson,
        None | Some("csv") => ImportFormat::Csv,
        Some("json") => ImportFormat::Json,
        Some("ndjson") => ImportFormat::Ndjson,
        Some(v) => {
            q.bad("format", format!("`{v}` is not one of: csv, json, ndjson"));
            return ImportFormat::Csv;
        }
    };
    if json_body && format != ImportFormat::Json {
        let name = if format == ImportFormat::Csv { "csv" } else { "ndjson" };
        q.bad(
            "format",
            format!(
                "`{name}` contradicts Content-Type `{media}` (a JSON array of objects); send the file as {}",
                if name == "csv" { "text/csv" } else { "application/x-ndjson" }
            ),
        );
    }
    format
}

fn import_options(q: &mut Query, state: &AppState, content_type: &str) -> ImportOptions {
    let format = import_format(q, content_type);
    let on_duplicate = match q.raw("on_duplicate").as_deref() {
        None | Some("skip") => OnDuplicate::Skip,
        Some("update") => OnDuplicate::Update,
        Some("fail") => OnDuplicate::Fail,
        Some(v) => {
            q.bad("on_duplicate", format!("`{v}` is not one of: skip, update, fail"));
            OnDuplicate::Skip
        }
    };
    let flag = |q: &mut Query, k: &str| q.flag(k).unwrap_or(false);
    let mut mapping = Vec::new();
    for m in q.all("map") {
        match m.split_once('=') {
            Some((col, field)) => mapping.push((col.trim().to_owned(), field.trim().to_owned())),
            None => q.bad("map", format!("`{m}` is not COLUMN=field")),
        }
    }
    let enroll_in = q.raw("campaign_id").and_then(|c| match switchboard_domain::CampaignId::parse(&c) {
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
#[utoipa::path(post, path = "/api/v1/contacts/import", tag = "contacts", operation_id = "import_contacts",
    request_body(description = "The file: CSV (default), a JSON array of objects (`format=json`) or NDJSON (`format=ndjson`), or `multipart/form-data` with the file in a part named `file`. Without `format`, `application/json` is read as a JSON array and `application/x-ndjson` as NDJSON; any other type as CSV. A body sent as `application/json` must be the JSON array (`format=csv|ndjson` with it is a 400).",
        content(
            (String = "text/csv"),
            (super::schemas::ImportJsonRows = "application/json"),
            (String = "application/x-ndjson"),
            (super::schemas::ImportUpload = "multipart/form-data"),
        )),
    params(
        ("format" = Option<ImportFormatParam>, Query, description = "File format (default csv)"),
        ("on_duplicate" = Option<OnDuplicateParam>, Query, description = "A phone already stored: skip (default), update, or fail the whole file"),
        ("dry_run" = Option<bool>, Query, description = "Validate only (default false)"),
        ("partial" = Option<bool>, Query, description = "Write the valid rows even if some are invalid (default false)"),
        ("map" = Option<Vec<String>>, Query, explode, description = "COLUMN=field, repeatable (or comma-separated)"),
        ("campaign_id" = Option<super::schemas::CampaignId>, Query, description = "Also enroll every contact of the file in this campaign"),
    ),
    responses(
        (status = 200, description = "The import report (written, or a dry run)", body = super::schemas::ImportReport),
        (status = 202, description = "Still running after `import.sync_wait_ms`; poll `status_url` (also in `Location`)", body = super::schemas::ImportAccepted,
            headers(("Location" = String, description = "`/api/v1/imports/{id}`"))),
        (status = 400, description = "A bad query parameter, an unknown `campaign_id`, an unreadable file or one without a phone column (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 409, description = "The `campaign_id` campaign is completed or cancelled (`conflict`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Upload over `import.max_upload_bytes`, or a JSON array over 16 MiB (`payload_too_large`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Nothing was written; the report says why (invalid rows without `partial`, or duplicates with `on_duplicate=fail`)", body = super::schemas::ImportReport),
    ),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    uri: Uri,
    headers: axum::http::HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let mut q = Query::parse(uri.query(), &["format", "on_duplicate", "dry_run", "partial", "map", "campaign_id"]);
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let mut opts = import_options(&mut q, &state, &content_type);
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
#[utoipa::path(get, path = "/api/v1/imports/{id}", tag = "contacts", operation_id = "get_import",
    params(("id" = String, Path, min_length = 1, description = "Import id (`imp_…`) from a 202 answer")),
    responses(
        (status = 200, description = "The import: running, done (with the report) or failed (with the reason)", body = super::schemas::ImportJob),
        (status = 404, description = "Unknown import, run by another instance, or before a restart (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_import(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<crate::import::ImportJob>, ApiError> {
    state.imports.get(&id).map(Json).ok_or(ApiError::NotFound("import"))
}

/// `GET /contacts/export?format=csv|ndjson` with the list filters, streamed.
/// Export contacts as CSV or NDJSON (streamed, oldest first) with the list filters.
#[utoipa::path(get, path = "/api/v1/contacts/export", tag = "contacts", operation_id = "export_contacts",
    params(
        ("format" = Option<ExportFormatParam>, Query, description = "csv (default) or ndjson (`json` is taken as ndjson)"),
        ("search" = Option<String>, Query, description = "Case-insensitive prefix of name, e-mail or phone"),
        ("tag" = Option<String>, Query, description = "Has this tag"),
        ("dnc" = Option<bool>, Query, description = "Do-not-call set (true) or not (false)"),
    ),
    responses(
        (status = 200, description = "The contacts, oldest first, streamed", content(
            (String = "text/csv; charset=utf-8"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, description = "A bad or unknown query parameter (`validation_failed`; `errors` names each)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn export(State(state): State<AppState>, uri: Uri) -> Result<Response, ApiError> {
    let mut q = Query::parse(uri.query(), &["format", "search", "tag", "dnc"]);
    let filter = filter_of(&mut q);
    let format = match q.raw("format").as_deref() {
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
