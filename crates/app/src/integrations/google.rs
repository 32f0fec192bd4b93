//! Google Sheets v4 + Drive v3 client with service-account OAuth2
//! (external-apis.md C.1–C.5).
//!
//! - [`TokenSource`]: the JWT bearer grant. An RS256 assertion signed with
//!   the key file's private key is posted to the key file's own `token_uri`
//!   (so tests and the sandbox point it at the simulator); the access token
//!   is cached and refreshed before it expires, once for all concurrent
//!   callers, and dropped when the API answers 401.
//! - [`SheetsClient`]: `spreadsheets.get`, `values.get` / `batchGet` /
//!   `update` / `batchUpdate` / `append` / `clear`, and Drive `files.get` for
//!   the file `version` (the cheap change detector of a sync loop).
//!
//! Quota errors (429 `RESOURCE_EXHAUSTED`) and 5xx back off exponentially
//! with jitter, as Google recommends. Reads, `update`, `batchUpdate` and
//! `clear` write whole values and are safe to repeat; `append` is not (a
//! repeat would add the rows twice), so it is repeated only after a 429 or a
//! connection that never carried it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::retry::{Idempotency, RetryPolicy, send};
use super::{ClientOptions, UpstreamError, http_client};
use crate::secret::Secret;

const P: &str = "google";
const P_AUTH: &str = "google-oauth";
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// Read/write access to spreadsheets.
pub const SCOPE_SPREADSHEETS: &str = "https://www.googleapis.com/auth/spreadsheets";
/// Read file metadata (the `version`) on Drive.
pub const SCOPE_DRIVE_READONLY: &str = "https://www.googleapis.com/auth/drive.readonly";
/// Assertion lifetime; Google accepts at most one hour and the libraries use exactly that.
const ASSERTION_SECS: u64 = 3600;

/// A service-account key file (the JSON downloaded from the console). Only
/// `client_email`, `private_key` and `token_uri` are needed.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// `service_account` when present.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The account (`…@….iam.gserviceaccount.com`), the JWT `iss`.
    pub client_email: String,
    /// PKCS#8 PEM.
    pub private_key: Secret,
    /// Sent as the JWT `kid`.
    #[serde(default)]
    pub private_key_id: Option<String>,
    /// Where tokens come from; also the JWT `aud`.
    pub token_uri: String,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .finish_non_exhaustive()
    }
}

impl ServiceAccountKey {
    /// Parses and checks a key file; the error says which field is wrong.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let key: ServiceAccountKey =
            serde_json::from_str(json).map_err(|e| format!("not a service-account key file: {e}"))?;
        if let Some(kind) = &key.kind
            && kind != "service_account"
        {
            return Err(format!("`type` is `{kind}`, expected `service_account`"));
        }
        if !key.client_email.contains('@') {
            return Err("`client_email` is not an e-mail address".into());
        }
        if !(key.token_uri.starts_with("https://") || key.token_uri.starts_with("http://")) {
            return Err(format!("`token_uri` `{}` is not an http(s) URL", key.token_uri));
        }
        EncodingKey::from_rsa_pem(key.private_key.expose().as_bytes())
            .map_err(|e| format!("`private_key` is not an RSA private key in PEM: {e}"))?;
        Ok(key)
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    /// A number, or a string of one (google-auth accepts both).
    expires_in: Option<Value>,
}

struct Cached {
    token: Secret,
    /// Refresh from this instant on.
    refresh_at: Instant,
}

/// Access tokens for one service account and scope set, cached until shortly before expiry.
pub struct TokenSource {
    http: reqwest::Client,
    key: ServiceAccountKey,
    signer: EncodingKey,
    scopes: String,
    retry: RetryPolicy,
    cache: tokio::sync::Mutex<Option<Cached>>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource").field("key", &self.key).field("scopes", &self.scopes).finish_non_exhaustive()
    }
}

async fn classify_token(status: StatusCode, resp: reqwest::Response) -> UpstreamError {
    let text = resp.text().await.unwrap_or_default();
    let body: Option<Value> = serde_json::from_str(&text).ok();
    let field = |k: &str| body.as_ref().and_then(|b| b.get(k)).and_then(Value::as_str).unwrap_or("").to_owned();
    let message = match (field("error"), field("error_description")) {
        (e, d) if !e.is_empty() => format!("{e}: {d}"),
        _ => text.chars().take(200).collect(),
    };
    match status.as_u16() {
        // invalid_grant (bad signature, clock skew), unauthorized_client, invalid_scope.
        400 => UpstreamError::Auth { provider: P_AUTH, status: 400, message },
        s => UpstreamError::from_status(P_AUTH, s, message),
    }
}

impl TokenSource {
    /// A token source for `key` and `scopes`.
    pub fn new(key: ServiceAccountKey, scopes: &[&str], opts: &ClientOptions) -> Result<Self, UpstreamError> {
        let signer = EncodingKey::from_rsa_pem(key.private_key.expose().as_bytes())
            .map_err(|e| UpstreamError::Auth { provider: P_AUTH, status: 0, message: format!("private_key: {e}") })?;
        Ok(TokenSource {
            http: http_client(opts.timeout),
            key,
            signer,
            scopes: scopes.join(" "),
            retry: opts.retry.clone(),
            cache: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
        })
    }

    /// How many tokens were fetched from the token endpoint so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The signed JWT bearer assertion.
    fn assertion(&self) -> Result<String, UpstreamError> {
        let iat = jsonwebtoken::get_current_timestamp();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = self.key.private_key_id.clone();
        let claims = Claims {
            iss: &self.key.client_email,
            scope: &self.scopes,
            aud: &self.key.token_uri,
            iat,
            exp: iat + ASSERTION_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.signer).map_err(|e| UpstreamError::Auth {
            provider: P_AUTH,
            status: 0,
            message: format!("signing: {e}"),
        })
    }

    /// A valid access token: the cached one, or a new one when it is near expiry.
    /// Concurrent callers wait for one fetch rather than each fetching.
    pub async fn token(&self) -> Result<Secret, UpstreamError> {
        let mut cache = self.cache.lock().await;
        if let Some(c) = cache.as_ref()
            && Instant::now() < c.refresh_at
        {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cache = Some(fresh);
        Ok(token)
    }

    /// Forgets `stale` (the API refused it); a newer token fetched meanwhile is kept.
    pub async fn invalidate(&self, stale: &Secret) {
        let mut cache = self.cache.lock().await;
        if cache.as_ref().is_some_and(|c| &c.token == stale) {
            *cache = None;
        }
    }

    async fn fetch(&self) -> Result<Cached, UpstreamError> {
        let assertion = self.assertion()?;
        let started = Instant::now();
        let resp = send(
            P_AUTH,
            &self.retry,
            Idempotency::Idempotent,
            || self.http.post(&self.key.token_uri).form(&[("grant_type", JWT_GRANT), ("assertion", &assertion)]),
            classify_token,
        )
        .await?;
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let body: TokenResponse = json(P_AUTH, resp).await?;
        let lifetime = match &body.expires_in {
            Some(Value::Number(n)) => n.as_f64(),
            Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
            _ => None,
        }
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(3600));
        // Refresh a little early: a quarter of the lifetime, at most a minute.
        let margin = (lifetime / 4).min(Duration::from_secs(60));
        tracing::debug!(account = %self.key.client_email, lifetime_s = lifetime.as_secs(), "fetched a Google access token");
        Ok(Cached { token: Secret::new(body.access_token), refresh_at: started + lifetime - margin })
    }
}

async fn json<T: serde::de::DeserializeOwned>(
    provider: &'static str,
    resp: reqwest::Response,
) -> Result<T, UpstreamError> {
    let text = resp.text().await.map_err(|e| UpstreamError::BadResponse { provider, message: e.to_string() })?;
    serde_json::from_str(&text).map_err(|e| UpstreamError::BadResponse {
        provider,
        message: format!("{e}: {}", text.chars().take(200).collect::<String>()),
    })
}

/// Maps Google's error envelope `{"error":{"code","message","status"}}`.
async fn classify(status: StatusCode, resp: reqwest::Response) -> UpstreamError {
    let text = resp.text().await.unwrap_or_default();
    let body: Option<Value> = serde_json::from_str(&text).ok();
    let err = body.as_ref().and_then(|b| b.get("error"));
    let message = match err {
        Some(e) => format!(
            "{}: {}",
            e.get("status").and_then(Value::as_str).unwrap_or(""),
            e.get("message").and_then(Value::as_str).unwrap_or("")
        ),
        None => text.chars().take(200).collect(),
    };
    // 403 is PERMISSION_DENIED (not shared with the service account) or a disabled API.
    UpstreamError::from_status(P, status.as_u16(), message)
}

/// How input values are interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueInput {
    /// Stored as given (`"=1+1"` stays text).
    Raw,
    /// Parsed as if typed into the UI (numbers, booleans, formulas).
    UserEntered,
}

impl ValueInput {
    fn as_str(self) -> &'static str {
        match self {
            ValueInput::Raw => "RAW",
            ValueInput::UserEntered => "USER_ENTERED",
        }
    }
}

/// How values are rendered in reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueRender {
    /// As displayed (strings).
    #[default]
    Formatted,
    /// Numbers and booleans as JSON numbers and booleans.
    Unformatted,
    /// Formulas as written.
    Formula,
}

impl ValueRender {
    fn as_str(self) -> &'static str {
        match self {
            ValueRender::Formatted => "FORMATTED_VALUE",
            ValueRender::Unformatted => "UNFORMATTED_VALUE",
            ValueRender::Formula => "FORMULA",
        }
    }
}

/// Where `append` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertData {
    /// Over the cells after the table.
    Overwrite,
    /// Into new rows inserted after the table.
    InsertRows,
}

/// `ValueRange`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValueRange {
    /// A1 range.
    pub range: String,
    /// `ROWS` (default) or `COLUMNS`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub major_dimension: Option<String>,
    /// Cells; trailing empty rows and cells are omitted in reads, and the key is absent for an empty range.
    #[serde(default)]
    pub values: Vec<Vec<Value>>,
}

impl ValueRange {
    /// Rows of `values` at `range`.
    pub fn new(range: impl Into<String>, values: Vec<Vec<Value>>) -> Self {
        ValueRange { range: range.into(), major_dimension: None, values }
    }
}

/// `UpdateValuesResponse` (zero counts may be absent on the wire).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct UpdateValuesResponse {
    /// Spreadsheet.
    pub spreadsheet_id: String,
    /// What was written.
    pub updated_range: String,
    /// Rows touched.
    pub updated_rows: u64,
    /// Columns touched.
    pub updated_columns: u64,
    /// Cells touched.
    pub updated_cells: u64,
}

/// `BatchUpdateValuesResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BatchUpdateValuesResponse {
    /// Spreadsheet.
    pub spreadsheet_id: String,
    /// Sum of rows.
    pub total_updated_rows: u64,
    /// Sum of columns.
    pub total_updated_columns: u64,
    /// Sum of cells.
    pub total_updated_cells: u64,
    /// Sheets touched.
    pub total_updated_sheets: u64,
    /// One per range, in request order.
    pub responses: Vec<UpdateValuesResponse>,
}

/// `AppendValuesResponse`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppendValuesResponse {
    /// Spreadsheet.
    pub spreadsheet_id: String,
    /// The table found before appending (absent for an empty range).
    pub table_range: Option<String>,
    /// Where the rows went.
    pub updates: UpdateValuesResponse,
}

/// `GridProperties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct GridProperties {
    /// Rows in the grid.
    pub row_count: u64,
    /// Columns in the grid.
    pub column_count: u64,
    /// Frozen header rows.
    pub frozen_row_count: u64,
}

/// `SheetProperties`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SheetProperties {
    /// Stable across renames.
    pub sheet_id: i64,
    /// Tab title.
    pub title: String,
    /// Position.
    pub index: u64,
    /// `GRID`, `OBJECT`, `DATA_SOURCE`.
    pub sheet_type: Option<String>,
    /// Grid size.
    pub grid_properties: GridProperties,
}

/// One sheet (tab).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sheet {
    /// Its properties.
    pub properties: SheetProperties,
}

/// `SpreadsheetProperties` (the part used).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SpreadsheetProperties {
    /// Title.
    pub title: String,
    /// Time zone of the spreadsheet.
    pub time_zone: Option<String>,
}

/// `Spreadsheet` as returned with the `fields` mask this client sends.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Spreadsheet {
    /// Id.
    pub spreadsheet_id: String,
    /// Properties.
    pub properties: SpreadsheetProperties,
    /// Tabs.
    pub sheets: Vec<Sheet>,
}

/// Drive file metadata used for change detection.
#[derive(Debug, Clone, PartialEq)]
pub struct FileVersion {
    /// Increases on every change to the file.
    pub version: u64,
    /// Last modification (RFC 3339), when given.
    pub modified_time: Option<String>,
}

/// Percent-encodes an A1 range for a URL path. `!` and `:` stay as they are
/// (Google's documented form); everything else outside the unreserved set is encoded.
pub fn encode_range(range: &str) -> String {
    let mut out = String::with_capacity(range.len());
    for b in range.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'!' | b':' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The Sheets + Drive client.
#[derive(Clone)]
pub struct SheetsClient {
    http: reqwest::Client,
    sheets_base: String,
    drive_base: String,
    tokens: Arc<TokenSource>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for SheetsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SheetsClient")
            .field("sheets_base", &self.sheets_base)
            .field("drive_base", &self.drive_base)
            .finish()
    }
}

/// Google's recommended backoff for Sheets: exponential from 1 s to 32 s.
pub fn default_retry() -> RetryPolicy {
    RetryPolicy { max_attempts: 6, base: Duration::from_secs(1), max_backoff: Duration::from_secs(32) }
}

impl SheetsClient {
    /// A client for `sheets_base` (`https://sheets.googleapis.com`) and
    /// `drive_base` (`https://www.googleapis.com`), authenticated by `tokens`.
    pub fn new(
        sheets_base: impl Into<String>,
        drive_base: impl Into<String>,
        tokens: Arc<TokenSource>,
        opts: &ClientOptions,
    ) -> Self {
        SheetsClient {
            http: http_client(opts.timeout),
            sheets_base: sheets_base.into().trim_end_matches('/').to_owned(),
            drive_base: drive_base.into().trim_end_matches('/').to_owned(),
            tokens,
            retry: opts.retry.clone(),
        }
    }

    /// The token source (shared with other clients of the same account).
    pub fn tokens(&self) -> &Arc<TokenSource> {
        &self.tokens
    }

    /// Sends with a bearer token; on a 401 the token is dropped and the request made once more with a new one.
    async fn call<F>(&self, idempotency: Idempotency, make: F) -> Result<reqwest::Response, UpstreamError>
    where
        F: Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    {
        let mut refreshed = false;
        loop {
            let token = self.tokens.token().await?;
            let result =
                send(P, &self.retry, idempotency, || make(&self.http).bearer_auth(token.expose()), classify).await;
            match result {
                Err(UpstreamError::Auth { status: 401, .. }) if !refreshed => {
                    tracing::info!("Google refused the access token; fetching a new one");
                    self.tokens.invalidate(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }

    fn values_url(&self, spreadsheet_id: &str, suffix: &str) -> String {
        format!("{}/v4/spreadsheets/{spreadsheet_id}/values{suffix}", self.sheets_base)
    }

    /// `spreadsheets.get` with the sheet properties only.
    pub async fn get_spreadsheet(&self, spreadsheet_id: &str) -> Result<Spreadsheet, UpstreamError> {
        let url = format!("{}/v4/spreadsheets/{spreadsheet_id}", self.sheets_base);
        let resp = self
            .call(Idempotency::Idempotent, |h| {
                h.get(&url).query(&[("fields", "spreadsheetId,properties.title,properties.timeZone,sheets.properties")])
            })
            .await?;
        json(P, resp).await
    }

    /// `values.get`.
    pub async fn get_values(
        &self,
        spreadsheet_id: &str,
        range: &str,
        render: ValueRender,
    ) -> Result<ValueRange, UpstreamError> {
        let url = self.values_url(spreadsheet_id, &format!("/{}", encode_range(range)));
        let resp = self
            .call(Idempotency::Idempotent, |h| h.get(&url).query(&[("valueRenderOption", render.as_str())]))
            .await?;
        json(P, resp).await
    }

    /// `values.batchGet`: the ranges in request order.
    pub async fn batch_get_values(
        &self,
        spreadsheet_id: &str,
        ranges: &[&str],
        render: ValueRender,
    ) -> Result<Vec<ValueRange>, UpstreamError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Resp {
            #[serde(default)]
            value_ranges: Vec<ValueRange>,
        }
        let url = self.values_url(spreadsheet_id, ":batchGet");
        let mut params: Vec<(&str, &str)> = ranges.iter().map(|r| ("ranges", *r)).collect();
        params.push(("valueRenderOption", render.as_str()));
        let resp = self.call(Idempotency::Idempotent, |h| h.get(&url).query(&params)).await?;
        let body: Resp = json(P, resp).await?;
        if body.value_ranges.len() != ranges.len() {
            return Err(UpstreamError::BadResponse {
                provider: P,
                message: format!("asked for {} ranges, got {}", ranges.len(), body.value_ranges.len()),
            });
        }
        Ok(body.value_ranges)
    }

    /// `values.update` (PUT): writes `values` at `range`.
    pub async fn update_values(
        &self,
        spreadsheet_id: &str,
        range: &str,
        values: Vec<Vec<Value>>,
        input: ValueInput,
    ) -> Result<UpdateValuesResponse, UpstreamError> {
        let url = self.values_url(spreadsheet_id, &format!("/{}", encode_range(range)));
        let body = ValueRange::new(range, values);
        let resp = self
            .call(Idempotency::Idempotent, |h| h.put(&url).query(&[("valueInputOption", input.as_str())]).json(&body))
            .await?;
        json(P, resp).await
    }

    /// `values.batchUpdate`: all ranges or none (Google applies a batch atomically).
    pub async fn batch_update_values(
        &self,
        spreadsheet_id: &str,
        data: Vec<ValueRange>,
        input: ValueInput,
    ) -> Result<BatchUpdateValuesResponse, UpstreamError> {
        let url = self.values_url(spreadsheet_id, ":batchUpdate");
        let body = serde_json::json!({ "valueInputOption": input.as_str(), "data": data });
        let resp = self.call(Idempotency::Idempotent, |h| h.post(&url).json(&body)).await?;
        json(P, resp).await
    }

    /// `values.append`: rows after the table found in `range`. Not repeated
    /// after a failure that may have been applied (it would append twice).
    pub async fn append_values(
        &self,
        spreadsheet_id: &str,
        range: &str,
        values: Vec<Vec<Value>>,
        input: ValueInput,
        insert: InsertData,
    ) -> Result<AppendValuesResponse, UpstreamError> {
        let url = self.values_url(spreadsheet_id, &format!("/{}:append", encode_range(range)));
        let insert = match insert {
            InsertData::Overwrite => "OVERWRITE",
            InsertData::InsertRows => "INSERT_ROWS",
        };
        let body = ValueRange::new(range, values);
        let resp = self
            .call(Idempotency::NotIdempotent, |h| {
                h.post(&url).query(&[("valueInputOption", input.as_str()), ("insertDataOption", insert)]).json(&body)
            })
            .await?;
        json(P, resp).await
    }

    /// `values.clear`: empties the cells of `range`; returns the range cleared.
    pub async fn clear_values(&self, spreadsheet_id: &str, range: &str) -> Result<String, UpstreamError> {
        let url = self.values_url(spreadsheet_id, &format!("/{}:clear", encode_range(range)));
        let resp = self.call(Idempotency::Idempotent, |h| h.post(&url).json(&serde_json::json!({}))).await?;
        let body: Value = json(P, resp).await?;
        Ok(body.get("clearedRange").and_then(Value::as_str).unwrap_or_default().to_owned())
    }

    /// Drive `files.get?fields=version,modifiedTime`: the file's change counter.
    pub async fn file_version(&self, file_id: &str) -> Result<FileVersion, UpstreamError> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct File {
            version: Option<Value>,
            modified_time: Option<String>,
        }
        let url = format!("{}/drive/v3/files/{file_id}", self.drive_base);
        let resp = self
            .call(Idempotency::Idempotent, |h| {
                h.get(&url).query(&[("fields", "version,modifiedTime"), ("supportsAllDrives", "true")])
            })
            .await?;
        let f: File = json(P, resp).await?;
        // `version` is an int64 and therefore a string in JSON.
        let version = match &f.version {
            Some(Value::String(s)) => s.parse::<u64>().ok(),
            Some(Value::Number(n)) => n.as_u64(),
            _ => None,
        }
        .ok_or_else(|| UpstreamError::BadResponse { provider: P, message: "files.get returned no `version`".into() })?;
        Ok(FileVersion { version, modified_time: f.modified_time })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_encoded_for_the_path() {
        assert_eq!(encode_range("'Leads 2026'!A2:H"), "%27Leads%202026%27!A2:H");
        assert_eq!(encode_range("Sheet1!A1:B2"), "Sheet1!A1:B2");
        assert_eq!(encode_range("Zoë/x"), "Zo%C3%AB%2Fx");
    }

    #[test]
    fn key_files_are_checked_field_by_field() {
        let good = switchboard_sim::google::SANDBOX_KEY_JSON;
        let key = ServiceAccountKey::from_json(good).unwrap();
        assert!(key.client_email.ends_with(".iam.gserviceaccount.com"));
        assert!(!format!("{key:?}").contains("PRIVATE KEY"));
        let mut v: Value = serde_json::from_str(good).unwrap();
        v["type"] = "authorized_user".into();
        assert!(ServiceAccountKey::from_json(&v.to_string()).unwrap_err().contains("`type`"));
        v["type"] = "service_account".into();
        v["private_key"] = "-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n".into();
        assert!(ServiceAccountKey::from_json(&v.to_string()).unwrap_err().contains("`private_key`"));
        assert!(ServiceAccountKey::from_json("{}").unwrap_err().contains("not a service-account key file"));
    }
}
