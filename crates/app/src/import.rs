//! Contact import and export (CSV, JSON, NDJSON), shared by the CLI
//! (`switchboard import contacts FILE`, `switchboard export contacts`) and
//! the API (`POST /contacts/import`, `GET /contacts/export`).
//!
//! Import reads the file twice, streaming both times, so memory stays
//! bounded by one batch plus the set of phones seen (for in-file dedupe):
//! 1. **Validate**: map columns (aliases such as `phone`, `phone_number`,
//!    `mobile`), normalise and check every row, find duplicates inside the
//!    file and against the store; keep the first rows as a preview and the
//!    first errors with their line numbers.
//! 2. **Write** (unless `dry_run`): only if every row is valid, or the user
//!    asked for a partial import. Rows go in batches under a journal kept in
//!    the store (heartbeat per batch; before-images of the contacts
//!    `on_duplicate=update` overwrites). If a batch fails, [`roll_back`]
//!    restores the overwritten contacts and deletes the inserted ones (they
//!    carry the import's `source`); if the process dies, the sweeper
//!    ([`sweep_stale_imports`], run by `serve`) does the same once the
//!    heartbeat is stale. Nothing is half-imported.
//!
//! Hostile input: a UTF-8 BOM is ignored; quoted commas and newlines are
//! fields; a row with the wrong number of cells or bytes that are not UTF-8
//! is an error naming its line; a file with no phone column is rejected
//! before anything else.

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;
use switchboard_domain::time::now_ms;
use switchboard_domain::{Contact, ContactInput, FieldError};
use switchboard_storage::{
    ContactFilter, ContactSort, ImportRecord, ImportState, OnDuplicate, Storage, StoreError, StoreResult, pages,
};

use crate::error::ApiError;

/// Why an import (or an upload for one) was refused or failed. The HTTP edge
/// turns it into an [`ApiError`]; the CLI prints it.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A bad file, option or upload part, by field.
    #[error("{field}: {reason}")]
    Invalid {
        /// `file`, `campaign_id`, `body`, …
        field: String,
        /// Why.
        reason: String,
    },
    /// The target campaign cannot take contacts.
    #[error("{0}")]
    Conflict(String),
    /// Over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The store failed; the import was undone (or will be, by the sweeper).
    #[error("{0}")]
    Unavailable(String),
    /// A store error.
    #[error(transparent)]
    Store(#[from] switchboard_storage::StoreError),
    /// Anything else (I/O on the spool file).
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ImportError {
    fn field(field: impl Into<String>, reason: impl Into<String>) -> ImportError {
        ImportError::Invalid { field: field.into(), reason: reason.into() }
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Invalid { field, reason } => ApiError::field(field, reason),
            ImportError::Conflict(what) => ApiError::Conflict(what),
            ImportError::TooLarge(what) => ApiError::PayloadTooLarge(what),
            ImportError::Unavailable(what) => ApiError::Unavailable(what),
            ImportError::Store(e) => e.into(),
            ImportError::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// Comma-separated with a header row.
    Csv,
    /// One JSON array of objects (read whole; use NDJSON for very large files).
    Json,
    /// One JSON object per line.
    Ndjson,
}

impl ImportFormat {
    /// From a file extension.
    pub fn from_path(p: &Path) -> ImportFormat {
        match p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
            Some("json") => ImportFormat::Json,
            Some("ndjson" | "jsonl") => ImportFormat::Ndjson,
            _ => ImportFormat::Csv,
        }
    }
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// CSV with a header row.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

/// How to import.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// File format.
    pub format: ImportFormat,
    /// Phones already stored.
    pub on_duplicate: OnDuplicate,
    /// Validate and report only.
    pub dry_run: bool,
    /// Write the valid rows even if some are invalid.
    pub partial: bool,
    /// Region for numbers without a country code.
    pub default_region: String,
    /// Explicit `column=field` mappings (override the aliases).
    pub mapping: Vec<(String, String)>,
    /// Rows in the preview.
    pub preview_rows: usize,
    /// Rows per write.
    pub batch: usize,
    /// Enroll every contact of the file (new or already stored) in this campaign.
    pub enroll_in: Option<switchboard_domain::CampaignId>,
    /// Largest CSV field or NDJSON line; a larger one is a row error (memory stays bounded).
    pub max_field_bytes: usize,
    /// Largest JSON array file (read whole); larger ones must be NDJSON.
    pub max_json_array_bytes: u64,
    /// Who writes the import (kept in its journal).
    pub owner: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            format: ImportFormat::Csv,
            on_duplicate: OnDuplicate::Skip,
            dry_run: false,
            partial: false,
            default_region: "US".into(),
            mapping: vec![],
            preview_rows: 5,
            batch: 1000,
            enroll_in: None,
            max_field_bytes: 64 * 1024,
            max_json_array_bytes: 16 * 1024 * 1024,
            owner: format!("switchboard-{}", std::process::id()),
        }
    }
}

/// One bad row.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RowError {
    /// 1-based line of the file where the row starts (the header is line 1).
    pub line: u64,
    /// Field.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// What an import found and did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Whether rows were written.
    pub applied: bool,
    /// Validation only.
    pub dry_run: bool,
    /// Data rows read.
    pub rows: u64,
    /// Rows that passed validation (duplicates included).
    pub valid: u64,
    /// Rows that failed.
    pub invalid: u64,
    /// Rows whose phone appeared earlier in the file (the first one wins).
    pub duplicates_in_file: u64,
    /// Valid rows whose phone is already stored.
    pub duplicates_in_store: u64,
    /// Contacts created.
    pub inserted: u64,
    /// Contacts overwritten (`on_duplicate=update`).
    pub updated: u64,
    /// Rows skipped as duplicates.
    pub skipped: u64,
    /// How columns were understood (`column → field`).
    pub columns: BTreeMap<String, String>,
    /// The first rows as they would be stored.
    pub preview: Vec<Contact>,
    /// The first 1,000 errors.
    pub errors: Vec<RowError>,
    /// Why nothing was written, when nothing was.
    pub message: Option<String>,
    /// The `source` the imported contacts carry (undo handle).
    pub source: String,
    /// Contacts enrolled in `enroll_in` (already enrolled ones not counted).
    pub enrolled: u64,
}

const MAX_ERRORS: usize = 1000;

/// The field a header maps to.
fn field_for(header: &str) -> String {
    let h = header.trim().trim_start_matches('\u{feff}').to_lowercase().replace([' ', '-', '.'], "_");
    match h.as_str() {
        "phone" | "phone_number" | "phonenumber" | "mobile" | "mobile_phone" | "mobile_number" | "cell"
        | "cell_phone" | "telephone" | "tel" | "number" | "msisdn" => "phone".into(),
        "name" | "full_name" | "fullname" | "contact_name" => "name".into(),
        "first_name" | "firstname" | "given_name" => "first_name".into(),
        "last_name" | "lastname" | "surname" | "family_name" => "last_name".into(),
        "email" | "email_address" | "e_mail" | "mail" => "email".into(),
        "tags" | "tag" | "labels" => "tags".into(),
        "time_zone" | "timezone" | "tz" => "time_zone".into(),
        "dnc" | "do_not_call" => "do_not_call".into(),
        "dnc_reason" | "do_not_call_reason" => "do_not_call_reason".into(),
        "lat" | "latitude" => "lat".into(),
        "lon" | "lng" | "long" | "longitude" => "lon".into(),
        other => format!("custom.{other}"),
    }
}

const FIELDS: &[&str] = &[
    "phone",
    "name",
    "first_name",
    "last_name",
    "email",
    "tags",
    "time_zone",
    "do_not_call",
    "do_not_call_reason",
    "lat",
    "lon",
];

/// Column → field for a header row, with explicit mappings applied.
pub(crate) fn column_fields(headers: &[String], mapping: &[(String, String)]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for h in headers {
        let explicit = mapping.iter().find(|(c, _)| c.eq_ignore_ascii_case(h.trim())).map(|(_, f)| f.clone());
        let f = match explicit {
            Some(f) if FIELDS.contains(&f.as_str()) || f.starts_with("custom.") || f == "ignore" => f,
            Some(f) => {
                return Err(format!(
                    "mapping `{h}={f}`: `{f}` is not a field ({}, custom.NAME, ignore)",
                    FIELDS.join(", ")
                ));
            }
            None => field_for(h),
        };
        out.push(f);
    }
    if !out.iter().any(|f| f == "phone") {
        return Err(format!(
            "no phone column: expected a header such as phone, phone_number or mobile (found: {})",
            headers.join(", ")
        ));
    }
    Ok(out)
}

/// Builds a contact from one row of (field, raw text) pairs.
pub(crate) fn row_contact(
    cells: &[(String, String)],
    opts: &ImportOptions,
    source: &str,
) -> Result<Contact, Vec<FieldError>> {
    let mut input = ContactInput { source: Some(source.to_owned()), ..Default::default() };
    let mut custom = BTreeMap::new();
    let (mut first, mut last, mut lat, mut lon) = (None, None, None, None);
    let mut errors = Vec::new();
    for (field, raw) in cells {
        let v = raw.trim();
        if v.is_empty() || field == "ignore" {
            continue;
        }
        match field.as_str() {
            "phone" => input.phone = Some(v.to_owned()),
            "name" => input.name = Some(v.to_owned()),
            "first_name" => first = Some(v.to_owned()),
            "last_name" => last = Some(v.to_owned()),
            "email" => input.email = Some(v.to_owned()),
            "tags" => {
                input.tags =
                    Some(v.split([';', '|', ',']).map(str::to_owned).filter(|t| !t.trim().is_empty()).collect())
            }
            "time_zone" => input.time_zone = Some(v.to_owned()),
            "do_not_call" => match v.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "1" => input.do_not_call = Some(true),
                "false" | "no" | "n" | "0" => input.do_not_call = Some(false),
                other => errors.push(FieldError::new("do_not_call", format!("`{other}` is not yes/no/true/false"))),
            },
            "do_not_call_reason" => input.do_not_call_reason = Some(v.to_owned()),
            "lat" => lat = Some(v.to_owned()),
            "lon" => lon = Some(v.to_owned()),
            f => {
                let key = f.trim_start_matches("custom.").to_owned();
                custom.insert(key, Value::String(v.to_owned()));
            }
        }
    }
    if input.name.is_none() && (first.is_some() || last.is_some()) {
        input.name = Some([first, last].into_iter().flatten().collect::<Vec<_>>().join(" "));
    }
    if input.do_not_call_reason.is_some() && input.do_not_call != Some(true) {
        input.do_not_call_reason = None;
    }
    match (lat, lon) {
        (None, None) => {}
        (Some(a), Some(o)) => match (a.parse::<f64>(), o.parse::<f64>()) {
            (Ok(lat), Ok(lon)) => input.location = Some(switchboard_domain::contact::GeoPoint { lon, lat }),
            _ => errors.push(FieldError::new("location", format!("`{a}`, `{o}` are not numbers"))),
        },
        _ => errors.push(FieldError::new("location", "give both lat and lon")),
    }
    if !custom.is_empty() {
        input.custom = Some(custom);
    }
    match input.validate(&opts.default_region, now_ms()) {
        Ok(c) if errors.is_empty() => Ok(c),
        Ok(_) => Err(errors),
        Err(mut e) => {
            errors.append(&mut e);
            Err(errors)
        }
    }
}

/// One parsed row: its line and either the cells or a parse error.
type Row = (u64, Result<Vec<(String, String)>, String>);
/// A JSON object per line (or array item) with its line.
type Objects = Box<dyn Iterator<Item = (u64, Result<serde_json::Map<String, Value>, String>)> + Send>;
/// Told the stage and the rows read so far.
pub type Progress = Arc<dyn Fn(&str, u64) + Send + Sync>;

/// Finds the lines holding a field (CSV) or a line (NDJSON) longer than
/// `max`, in one streaming pass with constant memory, and when there are any
/// writes a copy of the file with those fields emptied, so the readers after
/// it never buffer more than `max` bytes for one field. Returns the copy (if
/// one was needed) and the offending lines.
fn guard_field_sizes(
    path: &Path,
    format: ImportFormat,
    max: usize,
) -> anyhow::Result<(Option<tempfile::TempPath>, Vec<u64>)> {
    use std::io::Write;
    let mut bad = Vec::new();
    let scan = |mut sink: Option<&mut dyn Write>, bad: &mut Vec<u64>| -> anyhow::Result<()> {
        let mut r = BufReader::with_capacity(64 * 1024, std::fs::File::open(path)?);
        // `record` is the line where the current row starts (a quoted field may span lines).
        let (mut line, mut record, mut len, mut in_quotes, mut over) = (1u64, 1u64, 0usize, false, false);
        let mut field: Vec<u8> = Vec::new();
        let csv = format == ImportFormat::Csv;
        let mut buf = vec![0u8; 64 * 1024];
        let end_field = |sink: &mut Option<&mut dyn Write>, field: &mut Vec<u8>, over: bool| -> std::io::Result<()> {
            if let Some(w) = sink.as_deref_mut() {
                if over {
                    w.write_all(if csv { b"\"\"" } else { b"{}" })?;
                } else {
                    w.write_all(field)?;
                }
            }
            field.clear();
            Ok(())
        };
        loop {
            let n = r.read(&mut buf)?;
            if n == 0 {
                break;
            }
            for &b in &buf[..n] {
                let boundary = if csv { !in_quotes && (b == b',' || b == b'\n') } else { b == b'\n' };
                if boundary {
                    if over && bad.last() != Some(&record) {
                        bad.push(record);
                    }
                    end_field(&mut sink, &mut field, over)?;
                    if let Some(w) = sink.as_deref_mut() {
                        w.write_all(&[b])?;
                    }
                    len = 0;
                    over = false;
                    if b == b'\n' {
                        line += 1;
                        record = line;
                    }
                    continue;
                }
                if csv && b == b'"' {
                    in_quotes = !in_quotes;
                }
                if b == b'\n' {
                    line += 1;
                }
                len += 1;
                if len > max {
                    over = true;
                    field.clear();
                } else if sink.is_some() {
                    field.push(b);
                }
            }
        }
        if over && bad.last() != Some(&record) {
            bad.push(record);
        }
        end_field(&mut sink, &mut field, over)?;
        Ok(())
    };
    scan(None, &mut bad)?;
    if bad.is_empty() || format == ImportFormat::Json {
        return Ok((None, bad));
    }
    bad.clear();
    let copy = tempfile::NamedTempFile::new()?;
    {
        let mut w = std::io::BufWriter::new(copy.as_file());
        scan(Some(&mut w), &mut bad)?;
        w.flush()?;
    }
    Ok((Some(copy.into_temp_path()), bad))
}

/// Streams rows of a file as (field, text) pairs.
fn rows(path: &Path, opts: &ImportOptions) -> anyhow::Result<(Vec<String>, Box<dyn Iterator<Item = Row> + Send>)> {
    let file = std::fs::File::open(path).map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
    match opts.format {
        ImportFormat::Csv => {
            let mut rdr = csv::ReaderBuilder::new().has_headers(true).flexible(false).from_reader(BufReader::new(file));
            let headers: Vec<String> = rdr
                .byte_headers()
                .map_err(|e| anyhow::anyhow!("cannot read the header row: {e}"))?
                .iter()
                .map(|h| String::from_utf8_lossy(h).trim_start_matches('\u{feff}').trim().to_owned())
                .collect();
            if headers.iter().all(|h| h.is_empty()) {
                anyhow::bail!("the file is empty or has no header row");
            }
            let fields = column_fields(&headers, &opts.mapping).map_err(anyhow::Error::msg)?;
            let mut columns = Vec::new();
            for (h, f) in headers.iter().zip(&fields) {
                columns.push(format!("{h}={f}"));
            }
            let iter = rdr.into_byte_records().map(move |r| match r {
                Ok(rec) => {
                    let line = rec.position().map(|p| p.line()).unwrap_or(0);
                    let mut cells = Vec::with_capacity(rec.len());
                    for (i, raw) in rec.iter().enumerate() {
                        match std::str::from_utf8(raw) {
                            Ok(s) => cells.push((fields[i].clone(), s.to_owned())),
                            Err(_) => {
                                return (
                                    line,
                                    Err(format!("column {} is not valid UTF-8 (save the file as UTF-8)", i + 1)),
                                );
                            }
                        }
                    }
                    (line, Ok(cells))
                }
                Err(e) => {
                    let line = e.position().map(|p| p.line()).unwrap_or(0);
                    let msg = match e.kind() {
                        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                            format!("row has {len} cells, the header has {expected_len}")
                        }
                        _ => e.to_string(),
                    };
                    (line, Err(msg))
                }
            });
            Ok((columns, Box::new(iter)))
        }
        ImportFormat::Ndjson | ImportFormat::Json => {
            let mapping = opts.mapping.clone();
            let objects: Objects = if opts.format == ImportFormat::Ndjson {
                Box::new(BufReader::new(file).lines().enumerate().filter_map(|(i, l)| {
                    let line = i as u64 + 1;
                    match l {
                        Err(e) => Some((line, Err(format!("not UTF-8 text: {e}")))),
                        Ok(l) if l.trim().is_empty() => None,
                        Ok(l) => Some((line, serde_json::from_str(&l).map_err(|e| format!("not a JSON object: {e}")))),
                    }
                }))
            } else {
                let mut text = String::new();
                BufReader::new(file).read_to_string(&mut text).map_err(|e| anyhow::anyhow!("not UTF-8 text: {e}"))?;
                let arr: Vec<Value> = serde_json::from_str(text.trim_start_matches('\u{feff}'))
                    .map_err(|e| anyhow::anyhow!("not a JSON array of objects: {e}"))?;
                // The file is one JSON document, so an item that is not an object makes the
                // document itself wrong (not one bad row among good ones, as in NDJSON).
                if let Some((i, v)) = arr.iter().enumerate().find(|(_, v)| !v.is_object()) {
                    let kind = match v {
                        Value::Null => "null",
                        Value::Bool(_) => "a boolean",
                        Value::Number(_) => "a number",
                        Value::String(_) => "a string",
                        Value::Array(_) => "an array",
                        Value::Object(_) => "an object",
                    };
                    anyhow::bail!("not a JSON array of objects: item {} is {kind}", i + 1);
                }
                Box::new(arr.into_iter().enumerate().filter_map(|(i, v)| match v {
                    Value::Object(m) => Some((i as u64 + 1, Ok(m))),
                    _ => None,
                }))
            };
            let iter = objects.map(move |(line, o)| {
                let cells = o.and_then(|m| {
                    let keys: Vec<String> = m.keys().cloned().collect();
                    let fields = column_fields(&keys, &mapping)?;
                    Ok(m.into_iter()
                        .zip(fields)
                        .filter_map(|((_, v), f)| match v {
                            Value::Null => None,
                            Value::String(s) => Some((f, s)),
                            Value::Array(a) => Some((
                                f,
                                a.iter()
                                    .map(|x| x.as_str().map(str::to_owned).unwrap_or_else(|| x.to_string()))
                                    .collect::<Vec<_>>()
                                    .join(";"),
                            )),
                            other => Some((f, other.to_string())),
                        })
                        .collect())
                });
                (line, cells)
            });
            Ok((vec![], Box::new(iter)))
        }
    }
}

/// Imports a file. `progress` is told the rows read so far (both passes).
pub async fn import_file(
    store: Arc<dyn Storage>,
    path: &Path,
    opts: ImportOptions,
    progress: Option<Progress>,
) -> Result<ImportReport, ImportError> {
    let source = format!("import:{}", uuid::Uuid::now_v7().simple());
    let mut report = ImportReport { dry_run: opts.dry_run, source: source.clone(), ..Default::default() };
    if let Some(cid) = &opts.enroll_in {
        match store.get_campaign(cid).await?.map(|c| c.status) {
            None => return Err(ImportError::field("campaign_id", format!("campaign {cid} does not exist"))),
            Some(s) if s.is_final() => {
                return Err(ImportError::Conflict(format!("campaign {cid} is {s}; it takes no new contacts")));
            }
            Some(_) => {}
        }
    }
    if opts.format == ImportFormat::Json {
        let len = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        if len > opts.max_json_array_bytes {
            return Err(ImportError::TooLarge(format!(
                "a JSON array is read whole; this one is {len} bytes, over {} — send it as NDJSON (one object per line)",
                opts.max_json_array_bytes
            )));
        }
    }
    let (guarded, oversized) = guard_field_sizes(path, opts.format, opts.max_field_bytes)
        .map_err(|e| ImportError::field("file", format!("cannot read the file: {e}")))?;
    let path: &Path = guarded.as_deref().unwrap_or(path);
    let oversized: HashSet<u64> = oversized.into_iter().collect();
    let (columns, iter) = rows(path, &opts).map_err(|e| ImportError::field("file", e.to_string()))?;
    for c in columns {
        if let Some((h, f)) = c.split_once('=') {
            report.columns.insert(h.to_owned(), f.to_owned());
        }
    }
    // Pass 1: validate, dedupe, count.
    let mut seen: HashSet<String> = HashSet::new();
    let mut pending: Vec<String> = Vec::new();
    let tick = |stage: &str, n: u64| {
        if let Some(p) = &progress {
            p(stage, n);
        }
    };
    for (line, row) in iter {
        report.rows += 1;
        if report.rows.is_multiple_of(10_000) {
            tick("validating", report.rows);
        }
        let contact = match row {
            _ if oversized.contains(&line) => Err(vec![FieldError::new(
                "row",
                format!("a field is longer than {} bytes (import.max_field_bytes)", opts.max_field_bytes),
            )]),
            Err(reason) => Err(vec![FieldError::new("row", reason)]),
            Ok(cells) => row_contact(&cells, &opts, &source),
        };
        match contact {
            Err(errs) => {
                report.invalid += 1;
                for e in errs {
                    if report.errors.len() < MAX_ERRORS {
                        report.errors.push(RowError { line, field: e.field, reason: e.reason });
                    }
                }
            }
            Ok(c) => {
                report.valid += 1;
                if !seen.insert(c.phone.clone()) {
                    report.duplicates_in_file += 1;
                    continue;
                }
                if report.preview.len() < opts.preview_rows {
                    report.preview.push(c.clone());
                }
                pending.push(c.phone);
                if pending.len() >= opts.batch {
                    report.duplicates_in_store += store.existing_phones(&pending).await?.len() as u64;
                    pending.clear();
                }
            }
        }
    }
    if !pending.is_empty() {
        report.duplicates_in_store += store.existing_phones(&pending).await?.len() as u64;
    }
    tick("validated", report.rows);
    if opts.dry_run {
        report.message = Some("dry run: nothing written".into());
        return Ok(report);
    }
    if report.invalid > 0 && !opts.partial {
        report.message = Some(format!(
            "{} of {} rows are invalid; nothing was imported (fix them, or import the valid rows with partial=true)",
            report.invalid, report.rows
        ));
        return Ok(report);
    }
    if report.duplicates_in_store > 0 && opts.on_duplicate == OnDuplicate::Fail {
        report.message = Some(format!(
            "{} phones are already stored and on_duplicate=fail; nothing was imported",
            report.duplicates_in_store
        ));
        return Ok(report);
    }
    // Pass 2: write in batches under a journal; on failure (or after a crash, by
    // the sweeper) the journal undoes exactly what this import wrote.
    let started = now_ms();
    let journal = ImportRecord {
        id: source.trim_start_matches("import:").to_owned(),
        source: source.clone(),
        state: ImportState::Running,
        owner: opts.owner.clone(),
        started_at: started,
        heartbeat_at: started,
    };
    store.begin_import(&journal).await?;
    let (_, iter) = rows(path, &opts).map_err(|e| ImportError::field("file", e.to_string()))?;
    // `seen` holds each phone's first occurrence until it is written; later rows with it are skipped.
    let mut batch: Vec<Contact> = Vec::with_capacity(opts.batch);
    let mut read = 0u64;
    let write_mode = if opts.on_duplicate == OnDuplicate::Fail { OnDuplicate::Fail } else { opts.on_duplicate };
    let mut failure: Option<ImportError> = None;
    for (line, row) in iter {
        read += 1;
        if read.is_multiple_of(10_000) {
            tick("writing", read);
        }
        if oversized.contains(&line) {
            continue;
        }
        let Ok(cells) = row else { continue };
        let Ok(c) = row_contact(&cells, &opts, &source) else { continue };
        if !seen.remove(&c.phone) {
            continue;
        }
        batch.push(c);
        if batch.len() >= opts.batch
            && let Err(e) =
                flush(&*store, &journal.id, &mut batch, write_mode, opts.enroll_in.as_ref(), &mut report).await
        {
            failure = Some(e);
            break;
        }
    }
    if failure.is_none()
        && !batch.is_empty()
        && let Err(e) = flush(&*store, &journal.id, &mut batch, write_mode, opts.enroll_in.as_ref(), &mut report).await
    {
        failure = Some(e);
    }
    tick("written", read);
    if let Some(e) = failure {
        return match roll_back(&*store, &journal).await {
            Ok(undone) => {
                tracing::warn!(import = %journal.id, inserted_removed = undone.0, restored = undone.1, error = %e, "import failed part-way; undone");
                Err(e)
            }
            Err(undo) => {
                // The journal stays `running`: once its heartbeat is stale the sweeper retries the undo.
                tracing::error!(import = %journal.id, error = %e, undo_error = %undo, "import failed part-way and its undo failed; the sweeper will retry it");
                Err(ImportError::Unavailable(format!(
                    "the import failed ({e}) and undoing it failed ({undo}); it will be undone automatically"
                )))
            }
        };
    }
    store.end_import(&journal.id, ImportState::Committed).await?;
    report.applied = true;
    Ok(report)
}

/// Undoes an import from its journal: restores every contact it overwrote
/// (from the before-images), then deletes the contacts it inserted (they
/// carry its `source`; restored ones no longer do), then closes the journal.
/// Each step is idempotent, so a crash inside it is repaired by running it
/// again. Returns (contacts deleted, contacts restored).
pub async fn roll_back(store: &dyn Storage, journal: &ImportRecord) -> StoreResult<(u64, u64)> {
    let mut restored = 0u64;
    let mut after: Option<switchboard_domain::ContactId> = None;
    loop {
        let images = store.before_images(&journal.id, after.as_ref(), 500).await?;
        let Some(last) = images.last() else { break };
        after = Some(last.id.clone());
        for before in &images {
            restore(store, before).await?;
            restored += 1;
        }
    }
    let deleted = store.delete_contacts_by_source(&journal.source).await?;
    store.end_import(&journal.id, ImportState::RolledBack).await?;
    Ok((deleted, restored))
}

async fn restore(store: &dyn Storage, before: &Contact) -> StoreResult<()> {
    for _ in 0..5 {
        match store.get_contact(&before.id).await? {
            // Deleted since: put it back as it was.
            None => match store.insert_contact(before).await {
                Err(StoreError::Conflict { .. }) => continue,
                other => return other,
            },
            Some(now) => {
                let mut back = before.clone();
                back.version = now.version;
                match store.replace_contact(&back).await {
                    Ok(_) => return Ok(()),
                    Err(StoreError::Stale(_)) => continue,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Err(StoreError::conflict(format!("contact {} kept changing while its import was undone", before.id)))
}

/// Undoes every import whose writer stopped (crashed or was killed) for
/// `stale_after`: its journal is still `running` but its heartbeat is old.
/// Safe on several instances at once (each step is idempotent). Returns the
/// imports undone.
pub async fn sweep_stale_imports(
    store: &dyn Storage,
    stale_after: chrono::Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> StoreResult<u64> {
    let mut n = 0;
    for journal in store.stale_imports(now - stale_after).await? {
        let (deleted, restored) = roll_back(store, &journal).await?;
        tracing::warn!(import = %journal.id, owner = %journal.owner, deleted, restored, "undid an import whose writer stopped");
        n += 1;
    }
    Ok(n)
}

async fn flush(
    store: &dyn Storage,
    import_id: &str,
    batch: &mut Vec<Contact>,
    mode: OnDuplicate,
    enroll_in: Option<&switchboard_domain::CampaignId>,
    report: &mut ImportReport,
) -> Result<(), ImportError> {
    store.heartbeat_import(import_id, now_ms()).await?;
    if mode == OnDuplicate::Update {
        // Keep what is about to be overwritten, so an undo restores it.
        let phones: Vec<String> = batch.iter().map(|c| c.phone.clone()).collect();
        let mut before = Vec::new();
        for phone in store.existing_phones(&phones).await? {
            if let Some(c) = store.find_contact_by_phone(&phone).await? {
                before.push(c);
            }
        }
        if !before.is_empty() {
            store.save_before_images(import_id, &before).await?;
        }
    }
    let r = store.insert_contacts(batch, mode).await?;
    report.inserted += r.inserted;
    report.updated += r.updated;
    report.skipped += r.skipped.len() as u64;
    if let Some(cid) = enroll_in {
        // New contacts keep the id they were built with; stored ones are found by phone.
        let mut ids = Vec::with_capacity(batch.len());
        for (i, c) in batch.iter().enumerate() {
            if r.skipped.contains(&i) || mode == OnDuplicate::Update {
                if let Some(stored) = store.find_contact_by_phone(&c.phone).await? {
                    ids.push(stored.id);
                }
            } else {
                ids.push(c.id.clone());
            }
        }
        report.enrolled += store.enroll(cid, &ids, now_ms()).await?;
    }
    batch.clear();
    Ok(())
}

/// Writes the upload (raw body, or the `file` part of a multipart form) to `path`.
/// Stops at `max` bytes with a 413, so an upload never fills the disk.
pub async fn spool_upload(
    body: axum::body::Body,
    content_type: &str,
    path: &Path,
    max: u64,
) -> Result<(), ImportError> {
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let mut out = tokio::fs::File::create(path).await.map_err(|e| ImportError::Internal(e.into()))?;
    let mut total = 0u64;
    let mut count = |n: usize| {
        total += n as u64;
        if total > max {
            Err(ImportError::TooLarge(format!("the upload is over {max} bytes (import.max_upload_bytes)")))
        } else {
            Ok(())
        }
    };
    if content_type.starts_with("multipart/form-data") {
        let boundary =
            multer::parse_boundary(content_type).map_err(|e| ImportError::field("content-type", e.to_string()))?;
        let mut mp = multer::Multipart::new(body.into_data_stream(), boundary);
        let mut found = false;
        while let Some(mut field) = mp.next_field().await.map_err(|e| ImportError::field("body", e.to_string()))? {
            if field.name() != Some("file") {
                continue;
            }
            found = true;
            while let Some(chunk) = field.chunk().await.map_err(|e| ImportError::field("file", e.to_string()))? {
                count(chunk.len())?;
                out.write_all(&chunk).await.map_err(|e| ImportError::Internal(e.into()))?;
            }
        }
        if !found {
            return Err(ImportError::field("file", "the multipart form has no part named `file`"));
        }
    } else {
        let mut stream = body.into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| ImportError::field("body", e.to_string()))?;
            count(chunk.len())?;
            out.write_all(&chunk).await.map_err(|e| ImportError::Internal(e.into()))?;
        }
    }
    out.flush().await.map_err(|e| ImportError::Internal(e.into()))?;
    Ok(())
}

/// An import run over the API: `running` until it ends `done` (with the
/// report) or `failed` (with the reason; nothing of it stays written).
#[derive(Debug, Clone, Serialize)]
pub struct ImportJob {
    /// `imp_…`.
    pub id: String,
    /// `running`, `done` or `failed`.
    pub status: &'static str,
    /// `validating`, `validated`, `writing`, `written`.
    pub stage: String,
    /// Rows read so far in the current stage.
    pub rows_read: u64,
    /// When it started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// When it ended.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The final report (`done`).
    pub report: Option<ImportReport>,
    /// Why it failed (`failed`).
    pub error: Option<String>,
}

/// The imports this instance runs or ran (the last 1,000), for `GET /api/v1/imports/{id}`.
#[derive(Debug, Default)]
pub struct ImportRegistry(std::sync::Mutex<BTreeMap<String, ImportJob>>);

impl ImportRegistry {
    fn with<T>(&self, f: impl FnOnce(&mut BTreeMap<String, ImportJob>) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// Registers a running import and returns its id.
    pub fn start(&self) -> String {
        let id = format!("imp_{}", uuid::Uuid::now_v7().simple());
        let job = ImportJob {
            id: id.clone(),
            status: "running",
            stage: "queued".into(),
            rows_read: 0,
            started_at: now_ms(),
            finished_at: None,
            report: None,
            error: None,
        };
        self.with(|m| {
            m.insert(id.clone(), job);
            // Ids are time-ordered: drop the oldest finished ones past 1,000.
            while m.len() > 1000 {
                let Some(old) = m.iter().find(|(_, j)| j.status != "running").map(|(k, _)| k.clone()) else { break };
                m.remove(&old);
            }
        });
        id
    }

    /// Progress of a running import.
    pub fn progress(&self, id: &str, stage: &str, rows: u64) {
        self.with(|m| {
            if let Some(j) = m.get_mut(id) {
                j.stage = stage.to_owned();
                j.rows_read = rows;
            }
        });
    }

    /// The end of an import.
    pub fn finish(&self, id: &str, result: &Result<ImportReport, ImportError>) {
        self.with(|m| {
            if let Some(j) = m.get_mut(id) {
                j.finished_at = Some(now_ms());
                match result {
                    Ok(r) => {
                        j.status = "done";
                        j.report = Some(r.clone());
                    }
                    Err(e) => {
                        j.status = "failed";
                        j.error = Some(e.to_string());
                    }
                }
            }
        });
    }

    /// One import.
    pub fn get(&self, id: &str) -> Option<ImportJob> {
        self.with(|m| m.get(id).cloned())
    }
}

const EXPORT_HEADER: &[&str] = &[
    "id",
    "phone",
    "name",
    "email",
    "tags",
    "time_zone",
    "do_not_call",
    "do_not_call_reason",
    "lat",
    "lon",
    "source",
    "created_at",
    "custom",
];

fn csv_line(c: &Contact) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    let record = [
        c.id.to_string(),
        c.phone.clone(),
        c.name.clone().unwrap_or_default(),
        c.email.clone().unwrap_or_default(),
        c.tags.join(";"),
        c.time_zone.clone().unwrap_or_default(),
        c.is_dnc().to_string(),
        c.do_not_call.as_ref().map(|d| d.reason.clone()).unwrap_or_default(),
        c.location.map(|l| l.lat.to_string()).unwrap_or_default(),
        c.location.map(|l| l.lon.to_string()).unwrap_or_default(),
        c.source.clone().unwrap_or_default(),
        c.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        if c.custom.is_empty() { String::new() } else { serde_json::to_string(&c.custom).unwrap_or_default() },
    ];
    let _ = w.write_record(&record);
    w.into_inner().unwrap_or_default()
}

/// Streams every contact matching `filter` (oldest first) in chunks; `sink`
/// returns false to stop (the reader went away). Returns the count written.
pub async fn export_chunks<F, Fut>(
    store: &dyn Storage,
    filter: &ContactFilter,
    format: ExportFormat,
    sink: F,
) -> anyhow::Result<u64>
where
    F: Fn(Vec<u8>) -> Fut,
    Fut: Future<Output = bool>,
{
    let mut n = 0u64;
    if format == ExportFormat::Csv {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record(EXPORT_HEADER)?;
        if !sink(w.into_inner()?).await {
            return Ok(0);
        }
    }
    let mut contacts =
        std::pin::pin!(pages(200, |p| async move { store.list_contacts(filter, ContactSort::CreatedAsc, &p).await }));
    while let Some(items) = futures::TryStreamExt::try_next(&mut contacts).await? {
        let mut chunk = Vec::new();
        for c in &items {
            match format {
                ExportFormat::Csv => chunk.extend(csv_line(c)),
                ExportFormat::Ndjson => {
                    serde_json::to_writer(&mut chunk, c)?;
                    chunk.push(b'\n');
                }
            }
            n += 1;
        }
        if !chunk.is_empty() && !sink(chunk).await {
            return Ok(n);
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_map_through_aliases_and_explicit_mappings() {
        let h: Vec<String> = ["\u{feff}Mobile Number", "First Name", "Last Name", "E-mail", "Plan"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(column_fields(&h, &[]).unwrap(), ["phone", "first_name", "last_name", "email", "custom.plan"]);
        let h: Vec<String> = ["cell", "whatever"].iter().map(|s| s.to_string()).collect();
        let m = vec![("whatever".to_owned(), "name".to_owned())];
        assert_eq!(column_fields(&h, &m).unwrap(), ["phone", "name"]);
        let bad = vec![("whatever".to_owned(), "nonsense".to_owned())];
        assert!(column_fields(&h, &bad).unwrap_err().contains("is not a field"));
        let no_phone: Vec<String> = vec!["name".into()];
        assert!(column_fields(&no_phone, &[]).unwrap_err().starts_with("no phone column"));
    }
}
