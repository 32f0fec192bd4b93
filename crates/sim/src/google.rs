//! The simulator's Google side (external-apis.md C and F.3): the OAuth2
//! token endpoint, Sheets v4 values over in-memory grids, structural
//! `spreadsheets:batchUpdate` (`addSheet`, `deleteSheet`,
//! `updateSheetProperties`), Drive `files.get` for the file `version` and
//! `files.list` with a `q` query (gspread's `open(title)`).
//!
//! - `POST /token` verifies the RS256 assertion against the public key of a
//!   registered service account, checks `aud` (Google's token URI or this
//!   server's own `/token`), `scope` and a lifetime of at most an hour, and
//!   issues an access token whose lifetime the scenario sets.
//! - Sheets: A1 ranges with quoted sheet names, whole columns/rows and
//!   open-ended ranges; reads trim trailing empty rows and cells and omit
//!   `values` for an empty range; `RAW` keeps text as text while
//!   `USER_ENTERED` turns numbers (`"+15005550006"`, `"000123"`) and
//!   `TRUE`/`FALSE` into numbers and booleans, as Sheets does; a batch is
//!   applied all or nothing; `append` finds the table and writes (or
//!   inserts rows) after it.
//! - Every write, including a "human" edit through the control API, bumps
//!   the Drive `version`.
//! - Faults: 401 for unknown or revoked tokens, 403 `PERMISSION_DENIED` for
//!   a spreadsheet not shared with the account, 400 `INVALID_ARGUMENT` for
//!   an unparsable range, 429 `RESOURCE_EXHAUSTED` over a request quota per
//!   window, the scenario's 5xx / 429 / slow rates, and token-endpoint 503s.
//!
//! Not simulated: formula evaluation (a `USER_ENTERED` formula is kept and
//! rendered as its text), `COLUMNS` major dimension on writes (reads honour
//! it), Drive push channels.

// The fake server's helpers return ready HTTP responses as their errors; their size does not matter here.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::Simulator;

/// Google's token URI, accepted as the assertion audience beside the simulator's own.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The service account `serve --sandbox` uses (test-only key, see `keys/README.md`).
pub const SANDBOX_KEY_JSON: &str = include_str!("keys/sandbox-service-account.json");
/// The sandbox account's public key (to register it again after [`Simulator::unregister_google_account`]).
pub const SANDBOX_PUBLIC_PEM: &str = include_str!("keys/sandbox-service-account.pub.pem");
/// The sandbox account's e-mail.
pub const SANDBOX_ACCOUNT: &str = "switchboard-sandbox@switchboard-sandbox.iam.gserviceaccount.com";

/// Google knobs of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GoogleScenario {
    /// Lifetime of issued access tokens (Google: 3599 s); short values exercise refresh.
    pub token_lifetime_secs: u64,
    /// Sheets/Drive requests allowed per window before 429 `RESOURCE_EXHAUSTED` (none: unlimited).
    pub quota_per_window: Option<u32>,
    /// The quota window (Google refills per minute).
    pub quota_window_ms: u64,
    /// The next this-many token requests answer 503.
    pub token_failures: u32,
}

impl Default for GoogleScenario {
    fn default() -> Self {
        GoogleScenario { token_lifetime_secs: 3599, quota_per_window: None, quota_window_ms: 60_000, token_failures: 0 }
    }
}

/// One cell.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
enum Cell {
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    Formula { formula: String },
}

impl Cell {
    fn is_empty(&self) -> bool {
        matches!(self, Cell::Empty)
    }

    /// An input value; `None` means "leave the cell unchanged" (JSON null).
    fn from_input(v: &Value, user_entered: bool) -> Result<Option<Cell>, String> {
        Ok(Some(match v {
            Value::Null => return Ok(None),
            Value::Bool(b) => Cell::Bool(*b),
            Value::Number(n) => Cell::Number(n.as_f64().unwrap_or(0.0)),
            Value::String(s) if s.is_empty() => Cell::Empty,
            Value::String(s) if !user_entered => Cell::Text(s.clone()),
            Value::String(s) => user_entered_cell(s),
            other => {
                return Err(format!(
                    "Invalid value at 'data.values' ({other}): cells are strings, numbers or booleans"
                ));
            }
        }))
    }

    /// The text a person sees in the cell (what a sort compares).
    fn text(&self) -> String {
        match self.render("FORMATTED_VALUE") {
            Value::String(s) => s,
            other => other.to_string(),
        }
    }

    fn render(&self, render: &str) -> Value {
        match (self, render) {
            (Cell::Empty, _) => json!(""),
            (Cell::Text(s), _) => json!(s),
            (Cell::Formula { formula }, _) => json!(formula),
            (Cell::Number(n), "UNFORMATTED_VALUE" | "FORMULA") => json!(n),
            (Cell::Bool(b), "UNFORMATTED_VALUE" | "FORMULA") => json!(b),
            (Cell::Number(n), _) => json!(format_number(*n)),
            (Cell::Bool(b), _) => json!(if *b { "TRUE" } else { "FALSE" }),
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}

/// What Sheets makes of typed text: numbers (sign, digits, one decimal point), booleans, formulas.
fn user_entered_cell(s: &str) -> Cell {
    let t = s.trim();
    if t.starts_with('=') {
        return Cell::Formula { formula: t.to_owned() };
    }
    if t.eq_ignore_ascii_case("true") || t.eq_ignore_ascii_case("false") {
        return Cell::Bool(t.eq_ignore_ascii_case("true"));
    }
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    let numeric = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().any(|c| c.is_ascii_digit());
    match t.parse::<f64>() {
        Ok(n) if numeric => Cell::Number(n),
        _ => Cell::Text(s.to_owned()),
    }
}

/// A parsed A1 range (0-based, inclusive; `None` = open-ended).
#[derive(Debug, Clone, PartialEq)]
pub struct A1 {
    /// Sheet title; `None` = the first sheet.
    pub sheet: Option<String>,
    /// First column.
    pub c0: usize,
    /// First row.
    pub r0: usize,
    /// Last column.
    pub c1: Option<usize>,
    /// Last row.
    pub r1: Option<usize>,
}

fn col_index(letters: &str) -> Option<usize> {
    let mut n = 0usize;
    for c in letters.chars() {
        if !c.is_ascii_alphabetic() {
            return None;
        }
        n = n.checked_mul(26)?.checked_add((c.to_ascii_uppercase() as u8 - b'A') as usize + 1)?;
    }
    n.checked_sub(1).filter(|n| *n < 18_278) // ZZZ
}

/// `0 → A`, `26 → AA`.
pub fn col_name(mut n: usize) -> String {
    let mut s = Vec::new();
    loop {
        s.push(b'A' + (n % 26) as u8);
        if n < 26 {
            break;
        }
        n = n / 26 - 1;
    }
    s.reverse();
    String::from_utf8(s).expect("ascii")
}

/// `A5` → (Some(0), Some(4)); `A` → (Some(0), None); `5` → (None, Some(4)).
fn cell_ref(s: &str) -> Option<(Option<usize>, Option<usize>)> {
    let split = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
    let (letters, digits) = s.split_at(split);
    let col = if letters.is_empty() { None } else { Some(col_index(letters)?) };
    let row = if digits.is_empty() {
        None
    } else {
        let r: usize = digits.parse().ok()?;
        Some(r.checked_sub(1)?)
    };
    if col.is_none() && row.is_none() {
        return None;
    }
    Some((col, row))
}

fn cells(s: &str) -> Option<(usize, usize, Option<usize>, Option<usize>)> {
    let mut parts = s.split(':');
    let a = parts.next()?;
    let b = parts.next();
    if parts.next().is_some() {
        return None;
    }
    let (ac, ar) = cell_ref(a)?;
    match b {
        None => {
            // A single cell needs both parts.
            let (c, r) = (ac?, ar?);
            Some((c, r, Some(c), Some(r)))
        }
        Some(b) => {
            let (bc, br) = cell_ref(b)?;
            // `A:B` (columns), `1:2` (rows), `A5:A` (open-ended), `A1:B2`.
            if (ac.is_none() && bc.is_some()) || (ar.is_none() && br.is_some() && ac.is_some() && bc.is_none()) {
                return None;
            }
            let (c0, r0) = (ac.unwrap_or(0), ar.unwrap_or(0));
            if bc.is_some_and(|c| c < c0) || br.is_some_and(|r| r < r0) {
                return None;
            }
            Some((c0, r0, if ac.is_none() { None } else { bc }, if ar.is_none() && ac.is_some() { None } else { br }))
        }
    }
}

/// Parses `Sheet1!A1:B2`, `'My Sheet'!A:A`, `Sheet1!1:2`, `A5:A`, `Sheet1`.
pub fn parse_a1(s: &str) -> Option<A1> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let (sheet, rest): (Option<String>, Option<&str>) = if let Some(quoted) = s.strip_prefix('\'') {
        let mut name = String::new();
        let mut chars = quoted.char_indices().peekable();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            if c == '\'' {
                if chars.peek().map(|(_, c)| *c) == Some('\'') {
                    name.push('\'');
                    chars.next();
                } else {
                    end = Some(i + 1);
                    break;
                }
            } else {
                name.push(c);
            }
        }
        let after = &quoted[end?..];
        match after.strip_prefix('!') {
            Some(r) => (Some(name), Some(r)),
            None if after.is_empty() => (Some(name), None),
            None => return None,
        }
    } else if let Some((name, r)) = s.split_once('!') {
        (Some(name.to_owned()), Some(r))
    } else if cells(s).is_some() {
        (None, Some(s))
    } else {
        (Some(s.to_owned()), None)
    };
    match rest {
        None => Some(A1 { sheet, c0: 0, r0: 0, c1: None, r1: None }),
        Some(r) => {
            let (c0, r0, c1, r1) = cells(r)?;
            Some(A1 { sheet, c0, r0, c1, r1 })
        }
    }
}

/// A1 text for a rectangle on `title`, quoting the title when needed.
fn a1_text(title: &str, c0: usize, r0: usize, c1: usize, r1: usize) -> String {
    let plain = title.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && cells(title).is_none();
    let name = if plain { title.to_owned() } else { format!("'{}'", title.replace('\'', "''")) };
    if (c0, r0) == (c1, r1) {
        format!("{name}!{}{}", col_name(c0), r0 + 1)
    } else {
        format!("{name}!{}{}:{}{}", col_name(c0), r0 + 1, col_name(c1), r1 + 1)
    }
}

#[derive(Debug, Clone)]
struct Tab {
    sheet_id: i64,
    title: String,
    rows: Vec<Vec<Cell>>,
    row_count: usize,
    column_count: usize,
}

impl Tab {
    fn new(sheet_id: i64, title: String) -> Tab {
        Tab { sheet_id, title, rows: vec![], row_count: 1000, column_count: 26 }
    }

    fn set(&mut self, r: usize, c: usize, cell: Cell) {
        if self.rows.len() <= r {
            self.rows.resize(r + 1, vec![]);
        }
        let row = &mut self.rows[r];
        if row.len() <= c {
            row.resize(c + 1, Cell::Empty);
        }
        row[c] = cell;
        self.row_count = self.row_count.max(r + 1);
        self.column_count = self.column_count.max(c + 1);
    }

    fn row_has_data(&self, r: usize, c0: usize, c1: Option<usize>) -> bool {
        self.rows.get(r).is_some_and(|row| {
            row.iter().enumerate().any(|(c, cell)| c >= c0 && c1.is_none_or(|e| c <= e) && !cell.is_empty())
        })
    }

    /// Clipped bounds of a range on this grid.
    fn bounds(&self, a: &A1) -> (usize, usize) {
        let c1 = a.c1.unwrap_or(self.column_count.saturating_sub(1)).max(a.c0);
        let r1 = a.r1.unwrap_or(self.row_count.saturating_sub(1)).max(a.r0);
        (c1, r1)
    }

    fn read(&self, a: &A1, render: &str) -> ValueRangeOut {
        let (c1, r1) = self.bounds(a);
        let mut values: Vec<Vec<Value>> = Vec::new();
        for r in a.r0..=r1.min(self.rows.len().saturating_sub(1)) {
            let Some(row) = self.rows.get(r) else { break };
            let last =
                (a.c0..=c1.min(row.len().saturating_sub(1))).rev().find(|c| row.get(*c).is_some_and(|x| !x.is_empty()));
            values.push(match last {
                Some(last) => (a.c0..=last).map(|c| row[c].render(render)).collect(),
                None => vec![],
            });
        }
        while values.last().is_some_and(Vec::is_empty) {
            values.pop();
        }
        ValueRangeOut {
            range: a1_text(&self.title, a.c0, a.r0, c1, r1),
            major_dimension: "ROWS",
            values: if values.is_empty() { None } else { Some(values) },
        }
    }

    /// `read`, optionally column-major (`majorDimension=COLUMNS`, what
    /// gspread's `col_values` asks for): each column trimmed of trailing
    /// empty cells, trailing empty columns dropped.
    fn read_as(&self, a: &A1, render: &str, columns: bool) -> ValueRangeOut {
        let mut out = self.read(a, render);
        if columns {
            out.major_dimension = "COLUMNS";
            if let Some(rows) = out.values.take() {
                let width = rows.iter().map(Vec::len).max().unwrap_or(0);
                let mut cols: Vec<Vec<Value>> = (0..width)
                    .map(|j| {
                        let mut col: Vec<Value> = rows.iter().map(|r| r.get(j).cloned().unwrap_or(json!(""))).collect();
                        while col.last() == Some(&json!("")) {
                            col.pop();
                        }
                        col
                    })
                    .collect();
                while cols.last().is_some_and(Vec::is_empty) {
                    cols.pop();
                }
                out.values = (!cols.is_empty()).then_some(cols);
            }
        }
        out
    }

    /// Writes `values` from the range's top-left; they must fit in a bounded range.
    fn write(&mut self, a: &A1, values: &[Vec<Value>], user_entered: bool) -> Result<Value, String> {
        let rows = values.len();
        let cols = values.iter().map(Vec::len).max().unwrap_or(0);
        if let Some(r1) = a.r1
            && rows > 0
            && a.r0 + rows - 1 > r1
        {
            return Err(format!(
                "Requested writing within range [{}], but tried writing to row [{}]",
                a1_text(&self.title, a.c0, a.r0, a.c1.unwrap_or(a.c0), r1),
                a.r0 + rows
            ));
        }
        if let Some(c1) = a.c1
            && cols > 0
            && a.c0 + cols - 1 > c1
        {
            return Err(format!(
                "Requested writing within range [{}], but tried writing to column [{}]",
                a1_text(&self.title, a.c0, a.r0, c1, a.r1.unwrap_or(a.r0)),
                col_name(a.c0 + cols - 1)
            ));
        }
        let mut cells = 0u64;
        for (i, row) in values.iter().enumerate() {
            for (j, v) in row.iter().enumerate() {
                if let Some(cell) = Cell::from_input(v, user_entered)? {
                    self.set(a.r0 + i, a.c0 + j, cell);
                    cells += 1;
                }
            }
        }
        let range = if rows == 0 || cols == 0 {
            a1_text(&self.title, a.c0, a.r0, a.c0, a.r0)
        } else {
            a1_text(&self.title, a.c0, a.r0, a.c0 + cols - 1, a.r0 + rows - 1)
        };
        Ok(json!({ "updatedRange": range, "updatedRows": rows, "updatedColumns": cols, "updatedCells": cells }))
    }

    fn clear(&mut self, a: &A1) {
        let (c1, r1) = self.bounds(a);
        for r in a.r0..=r1.min(self.rows.len().saturating_sub(1)) {
            if let Some(row) = self.rows.get_mut(r) {
                for c in a.c0..=c1.min(row.len().saturating_sub(1)) {
                    if let Some(cell) = row.get_mut(c) {
                        *cell = Cell::Empty;
                    }
                }
            }
        }
    }

    fn insert_rows(&mut self, at: usize, count: usize) {
        if at < self.rows.len() {
            self.rows.splice(at..at, std::iter::repeat_n(vec![], count));
        }
        self.row_count += count;
    }

    /// Sorts whole rows from 0-based `from` to the last non-empty row by the
    /// text of column `column` (case-insensitively, stable, empty cells last
    /// in both directions), like "Sort sheet A→Z / Z→A" with frozen rows above `from`.
    fn sort_rows(&mut self, from: usize, column: usize, descending: bool) {
        let Some(last) = (0..self.rows.len()).rev().find(|r| self.row_has_data(*r, 0, None)) else { return };
        if from >= last {
            return;
        }
        let key = |row: &Vec<Cell>| row.get(column).filter(|c| !c.is_empty()).map(|c| c.text().to_lowercase());
        self.rows[from..=last].sort_by(|a, b| match (key(a), key(b)) {
            (Some(x), Some(y)) if descending => y.cmp(&x),
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
    }

    fn delete_rows(&mut self, at: usize, count: usize) {
        if at < self.rows.len() {
            let end = (at + count).min(self.rows.len());
            self.rows.drain(at..end);
        }
        self.row_count = self.row_count.saturating_sub(count).max(1);
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ValueRangeOut {
    range: String,
    major_dimension: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    values: Option<Vec<Vec<Value>>>,
}

#[derive(Debug, Clone)]
struct Book {
    title: String,
    version: u64,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
    /// Accounts it is shared with; `None`: every registered account.
    shared_with: Option<Vec<String>>,
    tabs: Vec<Tab>,
}

impl Book {
    fn tab_index(&self, a: &A1) -> Option<usize> {
        match &a.sheet {
            None => (!self.tabs.is_empty()).then_some(0),
            Some(t) => self.tabs.iter().position(|tab| &tab.title == t),
        }
    }

    fn touched(&mut self) {
        self.version += 1;
        self.modified = switchboard_domain::time::now_ms();
    }
}

/// How many Google requests the simulator has received, whatever it answered
/// (401, 403, 429 and 5xx included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GoogleRequestCounts {
    /// Sheets API requests (`/v4/spreadsheets/...`).
    pub sheets: u64,
    /// Drive API requests (`/drive/v3/files...`).
    pub drive: u64,
    /// Token endpoint requests (`POST /token`).
    pub token: u64,
}

/// Which Google API a request was for.
#[derive(Debug, Clone, Copy)]
enum GoogleApi {
    Sheets,
    Drive,
    Token,
}

/// The Google state of a simulator.
pub(super) struct GoogleState {
    accounts: HashMap<String, String>,
    tokens: HashMap<String, (String, Instant)>,
    books: HashMap<String, Book>,
    issued: u64,
    window_start: Instant,
    in_window: u32,
    token_failures: u32,
    counts: GoogleRequestCounts,
}

impl GoogleState {
    pub(super) fn new(scenario: &GoogleScenario) -> GoogleState {
        GoogleState {
            accounts: HashMap::from([(SANDBOX_ACCOUNT.to_owned(), SANDBOX_PUBLIC_PEM.to_owned())]),
            tokens: HashMap::new(),
            books: HashMap::new(),
            issued: 0,
            window_start: Instant::now(),
            in_window: 0,
            token_failures: scenario.token_failures,
            counts: GoogleRequestCounts::default(),
        }
    }
}

impl GoogleState {
    pub(super) fn set_token_failures(&mut self, n: u32) {
        self.token_failures = n;
    }
}

/// A tab of a new spreadsheet: CSV text or rows (stored as given, like `RAW`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTab {
    /// Title.
    pub title: String,
    /// CSV content (first line is usually the header).
    #[serde(default)]
    pub csv: Option<String>,
    /// Rows.
    #[serde(default)]
    pub values: Option<Vec<Vec<Value>>>,
}

/// A spreadsheet to create through the control API.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewSpreadsheet {
    /// Id (generated when absent).
    #[serde(default)]
    pub spreadsheet_id: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// Accounts it is shared with (default: every registered account).
    #[serde(default)]
    pub shared_with: Option<Vec<String>>,
    /// Tabs (at least one).
    pub sheets: Vec<NewTab>,
}

/// A change made "by a person" in the spreadsheet UI.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum HumanEdit {
    /// Type `values` at `range` (interpreted like `USER_ENTERED`).
    Set {
        /// A1 range.
        range: String,
        /// Rows.
        values: Vec<Vec<Value>>,
    },
    /// Insert `count` empty rows before 1-based row `before_row`.
    InsertRows {
        /// Tab title.
        sheet: String,
        /// 1-based.
        before_row: usize,
        /// How many.
        count: usize,
    },
    /// Delete `count` rows from 1-based `row`.
    DeleteRows {
        /// Tab title.
        sheet: String,
        /// 1-based.
        row: usize,
        /// How many.
        count: usize,
    },
    /// Sort whole rows from 1-based `from_row` to the last non-empty row by
    /// the text of 0-based `column` (empty cells last), like "Sort sheet A→Z"
    /// (or Z→A) with the rows above `from_row` frozen.
    SortRows {
        /// Tab title.
        sheet: String,
        /// 1-based first row to sort (2 keeps a header row in place).
        from_row: usize,
        /// 0-based column index.
        column: usize,
        /// Z→A instead of A→Z.
        #[serde(default)]
        descending: bool,
    },
}

fn csv_rows(text: &str) -> Result<Vec<Vec<Value>>, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for rec in reader.records() {
        let rec = rec.map_err(|e| format!("csv: {e}"))?;
        rows.push(rec.iter().map(|s| Value::String(s.to_owned())).collect());
    }
    Ok(rows)
}

/// Google's error envelope.
pub(super) fn g_error(status: u16, state: &str, message: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        Json(json!({ "error": { "code": status, "message": message, "status": state } })),
    )
        .into_response()
}

pub(super) fn quota_error(window_ms: u64) -> Response {
    let body = json!({ "error": { "code": 429,
        "message": "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute per user' of service 'sheets.googleapis.com' for consumer 'project_number:123456789012'.",
        "status": "RESOURCE_EXHAUSTED",
        "details": [ { "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMIT_EXCEEDED",
            "domain": "googleapis.com", "metadata": { "service": "sheets.googleapis.com",
            "quota_limit": "RequestsPerWindowPerUser", "quota_window_ms": window_ms.to_string() } } ] } });
    (StatusCode::TOO_MANY_REQUESTS, Json(body)).into_response()
}

fn token_error(status: u16, error: &str, description: &str) -> Response {
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
        Json(json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct Assertion {
    iss: String,
    scope: Option<String>,
    iat: u64,
    exp: u64,
}

impl Simulator {
    fn google<R>(&self, f: impl FnOnce(&mut GoogleState) -> R) -> R {
        f(&mut self.google.lock().expect("google lock"))
    }

    fn google_scenario(&self) -> GoogleScenario {
        self.inner.lock().expect("sim lock").scenario.google.clone()
    }

    /// Trusts `public_key_pem` for assertions signed by `client_email`.
    pub fn register_google_account(&self, client_email: &str, public_key_pem: &str) -> Result<(), String> {
        DecodingKey::from_rsa_pem(public_key_pem.as_bytes()).map_err(|e| format!("public_key_pem: {e}"))?;
        self.google(|g| g.accounts.insert(client_email.to_owned(), public_key_pem.to_owned()));
        Ok(())
    }

    /// Forgets `client_email`: the token endpoint answers `invalid_grant`
    /// ("account not found") for it until it is registered again, and the
    /// access tokens issued to it stop working (401), as when a service
    /// account is deleted or disabled.
    pub fn unregister_google_account(&self, client_email: &str) {
        self.google(|g| {
            g.accounts.remove(client_email);
            g.tokens.retain(|_, (account, _)| account != client_email);
        });
    }

    /// Google requests received so far (Sheets, Drive, token), counting refused ones.
    pub fn google_requests(&self) -> GoogleRequestCounts {
        self.google(|g| g.counts)
    }

    fn count_google(&self, api: GoogleApi) {
        self.google(|g| match api {
            GoogleApi::Sheets => g.counts.sheets += 1,
            GoogleApi::Drive => g.counts.drive += 1,
            GoogleApi::Token => g.counts.token += 1,
        });
    }

    /// Shares a spreadsheet with exactly `shared_with` (`None`: every
    /// registered account, the default at creation; `Some(vec![])`: nobody).
    /// Accounts it is not shared with get 403 `PERMISSION_DENIED` from Sheets
    /// and Drive, and Drive `files.list` omits it. Does not change the version.
    pub fn share_spreadsheet(&self, spreadsheet_id: &str, shared_with: Option<Vec<String>>) -> Result<(), String> {
        self.google(|g| {
            let book = g.books.get_mut(spreadsheet_id).ok_or("no such spreadsheet")?;
            book.shared_with = shared_with;
            Ok(())
        })
    }

    /// Revokes every access token issued so far (the next API call gets a 401).
    pub fn revoke_google_tokens(&self) {
        self.google(|g| g.tokens.clear());
    }

    /// Access tokens issued so far.
    pub fn google_tokens_issued(&self) -> u64 {
        self.google(|g| g.issued)
    }

    /// Creates a spreadsheet; returns its id.
    pub fn create_spreadsheet(&self, new: NewSpreadsheet) -> Result<String, String> {
        if new.sheets.is_empty() {
            return Err("sheets: at least one tab is required".into());
        }
        let mut tabs = Vec::new();
        for (i, t) in new.sheets.iter().enumerate() {
            if t.title.is_empty() || tabs.iter().any(|x: &Tab| x.title == t.title) {
                return Err(format!("sheets[{i}].title: empty or duplicate"));
            }
            let rows = match (&t.csv, &t.values) {
                (Some(csv), None) => csv_rows(csv).map_err(|e| format!("sheets[{i}].csv: {e}"))?,
                (None, Some(v)) => v.clone(),
                (None, None) => vec![],
                (Some(_), Some(_)) => return Err(format!("sheets[{i}]: give csv or values, not both")),
            };
            let mut tab = Tab::new(if i == 0 { 0 } else { 1_000_000 + i as i64 }, t.title.clone());
            let whole = A1 { sheet: None, c0: 0, r0: 0, c1: None, r1: None };
            tab.write(&whole, &rows, false).map_err(|e| format!("sheets[{i}]: {e}"))?;
            tabs.push(tab);
        }
        let id = new.spreadsheet_id.unwrap_or_else(|| {
            let n: u128 = rand::random();
            format!("1Sim{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(n.to_be_bytes()))
        });
        let book = Book {
            title: new.title.unwrap_or_else(|| "Untitled spreadsheet".into()),
            version: 1,
            created: switchboard_domain::time::now_ms(),
            modified: switchboard_domain::time::now_ms(),
            shared_with: new.shared_with,
            tabs,
        };
        self.google(|g| g.books.insert(id.clone(), book));
        Ok(id)
    }

    /// A tab's cells as stored (unformatted, trailing empties trimmed), or `None` if absent.
    pub fn spreadsheet_values(&self, spreadsheet_id: &str, sheet: &str) -> Option<Vec<Vec<Value>>> {
        self.google(|g| {
            let book = g.books.get(spreadsheet_id)?;
            let tab = book.tabs.iter().find(|t| t.title == sheet)?;
            let a = A1 { sheet: None, c0: 0, r0: 0, c1: None, r1: None };
            Some(tab.read(&a, "UNFORMATTED_VALUE").values.unwrap_or_default())
        })
    }

    /// The Drive `version` of a spreadsheet.
    pub fn spreadsheet_version(&self, spreadsheet_id: &str) -> Option<u64> {
        self.google(|g| g.books.get(spreadsheet_id).map(|b| b.version))
    }

    /// Applies a "human" edit; bumps the version.
    pub fn edit_spreadsheet(&self, spreadsheet_id: &str, edit: HumanEdit) -> Result<u64, String> {
        self.google(|g| {
            let book = g.books.get_mut(spreadsheet_id).ok_or("no such spreadsheet")?;
            let tab_of = |book: &mut Book, title: &str| -> Result<usize, String> {
                book.tabs.iter().position(|t| t.title == title).ok_or_else(|| format!("no sheet `{title}`"))
            };
            match edit {
                HumanEdit::Set { range, values } => {
                    let a = parse_a1(&range).ok_or_else(|| format!("Unable to parse range: {range}"))?;
                    let i = book.tab_index(&a).ok_or_else(|| format!("Unable to parse range: {range}"))?;
                    book.tabs[i].write(&a, &values, true)?;
                }
                HumanEdit::InsertRows { sheet, before_row, count } => {
                    let i = tab_of(book, &sheet)?;
                    book.tabs[i].insert_rows(before_row.saturating_sub(1), count);
                }
                HumanEdit::DeleteRows { sheet, row, count } => {
                    let i = tab_of(book, &sheet)?;
                    book.tabs[i].delete_rows(row.saturating_sub(1), count);
                }
                HumanEdit::SortRows { sheet, from_row, column, descending } => {
                    let i = tab_of(book, &sheet)?;
                    book.tabs[i].sort_rows(from_row.saturating_sub(1), column, descending);
                }
            }
            book.touched();
            Ok(book.version)
        })
    }

    /// Checks the bearer token and the quota; returns the account.
    fn google_account(&self, headers: &HeaderMap) -> Result<String, Response> {
        let scenario = self.google_scenario();
        let token = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        self.google(|g| {
            let account = match g.tokens.get(token) {
                Some((acct, exp)) if Instant::now() < *exp => acct.clone(),
                _ => {
                    return Err(g_error(
                        401,
                        "UNAUTHENTICATED",
                        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                    ));
                }
            };
            if let Some(limit) = scenario.quota_per_window {
                if g.window_start.elapsed() >= Duration::from_millis(scenario.quota_window_ms) {
                    g.window_start = Instant::now();
                    g.in_window = 0;
                }
                g.in_window += 1;
                if g.in_window > limit {
                    return Err(quota_error(scenario.quota_window_ms));
                }
            }
            Ok(account)
        })
    }

    /// Checks the bearer token, the quota and sharing.
    fn google_gate(&self, headers: &HeaderMap, spreadsheet_id: &str) -> Result<(), Response> {
        let account = self.google_account(headers)?;
        self.google(|g| {
            let book = g
                .books
                .get(spreadsheet_id)
                .ok_or_else(|| g_error(404, "NOT_FOUND", "Requested entity was not found."))?;
            if book.shared_with.as_ref().is_some_and(|s| !s.contains(&account)) {
                return Err(g_error(403, "PERMISSION_DENIED", "The caller does not have permission"));
            }
            Ok(())
        })
    }

    /// Every Sheets/Drive request: faults, then the gate, then `f` on the book.
    async fn with_book(
        &self,
        what: String,
        headers: &HeaderMap,
        id: &str,
        f: impl FnOnce(&mut Book) -> Result<Value, Response>,
    ) -> Response {
        self.count_google(if what.contains(" drive ") { GoogleApi::Drive } else { GoogleApi::Sheets });
        if let Some(r) = self.api_fault(&what, super::Flavor::Google).await {
            return r;
        }
        let resp = match self.google_gate(headers, id) {
            Err(r) => r,
            Ok(()) => self.google(|g| {
                let book = g.books.get_mut(id).expect("gate checked it exists");
                match f(book) {
                    Ok(v) => Json(v).into_response(),
                    Err(r) => r,
                }
            }),
        };
        self.record(what, resp.status().as_u16());
        resp
    }
}

pub(super) async fn token(State(sim): State<Simulator>, headers: HeaderMap, body: Bytes) -> Response {
    sim.count_google(GoogleApi::Token);
    let resp = issue_token(&sim, &headers, &body);
    sim.record("POST /token".into(), resp.status().as_u16());
    resp
}

fn issue_token(sim: &Simulator, headers: &HeaderMap, body: &[u8]) -> Response {
    if sim.google(|g| {
        let fail = g.token_failures > 0;
        g.token_failures = g.token_failures.saturating_sub(1);
        fail
    }) {
        return token_error(503, "temporarily_unavailable", "The service is currently unavailable.");
    }
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    if form.get("grant_type").map(String::as_str) != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return token_error(400, "unsupported_grant_type", "Invalid grant_type");
    }
    let Some(assertion) = form.get("assertion") else {
        return token_error(400, "invalid_request", "Missing required parameter: assertion");
    };
    let claims: Option<Assertion> = assertion
        .split('.')
        .nth(1)
        .and_then(|c| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice(&c).ok());
    let Some(claims) = claims else {
        return token_error(400, "invalid_grant", "Invalid JWT: malformed assertion");
    };
    let Some(pem) = sim.google(|g| g.accounts.get(&claims.iss).cloned()) else {
        return token_error(400, "invalid_grant", "Invalid grant: account not found");
    };
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[GOOGLE_TOKEN_URI.to_owned(), format!("http://{host}/token")]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let key = DecodingKey::from_rsa_pem(pem.as_bytes()).expect("registered keys parse");
    if let Err(e) = jsonwebtoken::decode::<Value>(assertion, &key, &validation) {
        return token_error(400, "invalid_grant", &format!("Invalid JWT Signature or claims: {e}"));
    }
    if claims.exp.saturating_sub(claims.iat) > 3600 {
        return token_error(400, "invalid_grant", "Invalid JWT: Token must be a short-lived token (60 minutes)");
    }
    if claims.scope.as_deref().is_none_or(|s| s.trim().is_empty()) {
        return token_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.");
    }
    let lifetime = sim.google_scenario().token_lifetime_secs.max(1);
    let token = sim.google(|g| {
        g.issued += 1;
        let n: u64 = rand::random();
        let token = format!("ya29.sim-{}-{n:016x}", g.issued);
        g.tokens.insert(token.clone(), (claims.iss.clone(), Instant::now() + Duration::from_secs(lifetime)));
        token
    });
    Json(json!({ "access_token": token, "expires_in": lifetime, "token_type": "Bearer" })).into_response()
}

fn bad_range(range: &str) -> Response {
    g_error(400, "INVALID_ARGUMENT", &format!("Unable to parse range: {range}"))
}

/// Resolves a range on a book: the tab index and the parsed range.
fn locate(book: &Book, range: &str) -> Result<(usize, A1), Response> {
    let a = parse_a1(range).ok_or_else(|| bad_range(range))?;
    let i = book.tab_index(&a).ok_or_else(|| bad_range(range))?;
    Ok((i, a))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ReadQuery {
    value_render_option: Option<String>,
    major_dimension: Option<String>,
}

/// `majorDimension` of a read: `true` for `COLUMNS`.
fn columns_option(q: Option<&str>) -> Result<bool, Response> {
    match q {
        None | Some("ROWS") | Some("DIMENSION_UNSPECIFIED") => Ok(false),
        Some("COLUMNS") => Ok(true),
        Some(other) => Err(g_error(400, "INVALID_ARGUMENT", &format!("Invalid value at 'major_dimension' ({other})"))),
    }
}

fn render_option(q: Option<&str>) -> Result<&'static str, Response> {
    match q.unwrap_or("FORMATTED_VALUE") {
        "FORMATTED_VALUE" => Ok("FORMATTED_VALUE"),
        "UNFORMATTED_VALUE" => Ok("UNFORMATTED_VALUE"),
        "FORMULA" => Ok("FORMULA"),
        other => Err(g_error(400, "INVALID_ARGUMENT", &format!("Invalid value at 'value_render_option' ({other})"))),
    }
}

fn input_option(q: Option<&str>) -> Result<bool, Response> {
    match q {
        Some("RAW") => Ok(false),
        Some("USER_ENTERED") => Ok(true),
        _ => Err(g_error(400, "INVALID_ARGUMENT", "Invalid valueInputOption: INPUT_VALUE_OPTION_UNSPECIFIED")),
    }
}

pub(super) async fn get_spreadsheet(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let sid = id.clone();
    sim.with_book("GET spreadsheets.get".into(), &headers, &id, move |book| {
        let sheets: Vec<Value> = book
            .tabs
            .iter()
            .enumerate()
            .map(|(i, t)| {
                json!({ "properties": { "sheetId": t.sheet_id, "title": t.title, "index": i, "sheetType": "GRID",
                    "gridProperties": { "rowCount": t.row_count, "columnCount": t.column_count } } })
            })
            .collect();
        Ok(json!({ "spreadsheetId": sid,
            "properties": { "title": book.title, "locale": "en_US", "autoRecalc": "ON_CHANGE", "timeZone": "Etc/GMT" },
            "sheets": sheets, "spreadsheetUrl": format!("https://docs.google.com/spreadsheets/d/{sid}/edit") }))
    })
    .await
}

pub(super) async fn get_values(
    State(sim): State<Simulator>,
    Path((id, range)): Path<(String, String)>,
    Query(q): Query<ReadQuery>,
    headers: HeaderMap,
) -> Response {
    sim.with_book("GET values.get".into(), &headers, &id, |book| {
        let render = render_option(q.value_render_option.as_deref())?;
        let columns = columns_option(q.major_dimension.as_deref())?;
        let (i, a) = locate(book, &range)?;
        Ok(serde_json::to_value(book.tabs[i].read_as(&a, render, columns)).expect("serialisable"))
    })
    .await
}

pub(super) async fn batch_get(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let sid = id.clone();
    sim.with_book("GET values.batchGet".into(), &headers, &id, move |book| {
        let param = |name: &str| params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
        let render = render_option(param("valueRenderOption"))?;
        let columns = columns_option(param("majorDimension"))?;
        let mut out = Vec::new();
        for (_, range) in params.iter().filter(|(k, _)| k == "ranges") {
            let (i, a) = locate(book, range)?;
            out.push(serde_json::to_value(book.tabs[i].read_as(&a, render, columns)).expect("serialisable"));
        }
        Ok(json!({ "spreadsheetId": sid, "valueRanges": out }))
    })
    .await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct WriteQuery {
    value_input_option: Option<String>,
    insert_data_option: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WriteBody {
    #[serde(default)]
    range: Option<String>,
    #[serde(default)]
    major_dimension: Option<String>,
    #[serde(default)]
    values: Vec<Vec<Value>>,
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body)
        .map_err(|e| g_error(400, "INVALID_ARGUMENT", &format!("Invalid JSON payload received. {e}")))
}

fn rows_only(major: Option<&str>) -> Result<(), Response> {
    match major {
        None | Some("ROWS") | Some("DIMENSION_UNSPECIFIED") => Ok(()),
        Some(other) => Err(g_error(400, "INVALID_ARGUMENT", &format!("majorDimension {other} is not simulated"))),
    }
}

pub(super) async fn update_values(
    State(sim): State<Simulator>,
    Path((id, range)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let sid = id.clone();
    sim.with_book("PUT values.update".into(), &headers, &id, move |book| {
        let user_entered = input_option(q.value_input_option.as_deref())?;
        let body: WriteBody = parse_body(&body)?;
        rows_only(body.major_dimension.as_deref())?;
        if let Some(r) = &body.range
            && parse_a1(r) != parse_a1(&range)
        {
            return Err(g_error(
                400,
                "INVALID_ARGUMENT",
                &format!("Requested range [{range}] doesn't match the body's range [{r}]"),
            ));
        }
        let (i, a) = locate(book, &range)?;
        let mut tab = book.tabs[i].clone();
        let mut out = tab.write(&a, &body.values, user_entered).map_err(|m| g_error(400, "INVALID_ARGUMENT", &m))?;
        book.tabs[i] = tab;
        book.touched();
        out["spreadsheetId"] = json!(sid);
        Ok(out)
    })
    .await
}

/// `POST …/values/{range}:append` and `…:clear` (one path segment ends with the action).
pub(super) async fn range_action(
    State(sim): State<Simulator>,
    Path((id, range_action)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((range, action)) = range_action.rsplit_once(':') else {
        sim.count_google(GoogleApi::Sheets);
        return g_error(404, "NOT_FOUND", "Method not found.");
    };
    let (range, action) = (range.to_owned(), action.to_owned());
    let sid = id.clone();
    match action.as_str() {
        "append" => {
            sim.with_book("POST values.append".into(), &headers, &id, move |book| {
                let user_entered = input_option(q.value_input_option.as_deref())?;
                let insert = match q.insert_data_option.as_deref() {
                    None | Some("OVERWRITE") => false,
                    Some("INSERT_ROWS") => true,
                    Some(o) => return Err(g_error(400, "INVALID_ARGUMENT", &format!("Invalid insertDataOption: {o}"))),
                };
                let body: WriteBody = parse_body(&body)?;
                rows_only(body.major_dimension.as_deref())?;
                let (i, a) = locate(book, &range)?;
                let mut tab = book.tabs[i].clone();
                // The table: the first block of contiguous non-empty rows at or below the range's top.
                let start = (a.r0..tab.rows.len()).find(|r| tab.row_has_data(*r, a.c0, a.c1));
                let (table_range, write_at) = match start {
                    None => (None, a.r0),
                    Some(s) => {
                        let mut e = s;
                        while tab.row_has_data(e + 1, a.c0, a.c1) {
                            e += 1;
                        }
                        let last_col = (s..=e)
                            .filter_map(|r| tab.rows[r].iter().rposition(|c| !c.is_empty()))
                            .max()
                            .unwrap_or(a.c0)
                            .max(a.c0);
                        (Some(a1_text(&tab.title, a.c0, s, last_col, e)), e + 1)
                    }
                };
                if insert {
                    tab.insert_rows(write_at, body.values.len());
                }
                let target = A1 { sheet: None, c0: a.c0, r0: write_at, c1: None, r1: None };
                let mut updates =
                    tab.write(&target, &body.values, user_entered).map_err(|m| g_error(400, "INVALID_ARGUMENT", &m))?;
                updates["spreadsheetId"] = json!(sid);
                book.tabs[i] = tab;
                book.touched();
                let mut out = json!({ "spreadsheetId": sid, "updates": updates });
                if let Some(t) = table_range {
                    out["tableRange"] = json!(t);
                }
                Ok(out)
            })
            .await
        }
        "clear" => {
            sim.with_book("POST values.clear".into(), &headers, &id, move |book| {
                let (i, a) = locate(book, &range)?;
                let tab = &mut book.tabs[i];
                tab.clear(&a);
                let (c1, r1) = tab.bounds(&a);
                let cleared = a1_text(&tab.title, a.c0, a.r0, c1, r1);
                book.touched();
                Ok(json!({ "spreadsheetId": sid, "clearedRange": cleared }))
            })
            .await
        }
        _ => {
            sim.count_google(GoogleApi::Sheets);
            g_error(404, "NOT_FOUND", "Method not found.")
        }
    }
}

pub(super) async fn batch_update(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Req {
        value_input_option: Option<String>,
        data: Vec<WriteBody>,
    }
    let sid = id.clone();
    sim.with_book("POST values.batchUpdate".into(), &headers, &id, move |book| {
        let req: Req = parse_body(&body)?;
        let user_entered = input_option(req.value_input_option.as_deref())?;
        // All or nothing: apply to copies, keep them only if every range succeeds.
        let mut tabs = book.tabs.clone();
        let mut responses = Vec::new();
        let (mut rows, mut cols, mut cells) = (0u64, 0u64, 0u64);
        let mut sheets = std::collections::BTreeSet::new();
        for d in &req.data {
            rows_only(d.major_dimension.as_deref())?;
            let range = d.range.clone().unwrap_or_default();
            let (i, a) = locate(book, &range)?;
            let mut r = tabs[i].write(&a, &d.values, user_entered).map_err(|m| g_error(400, "INVALID_ARGUMENT", &m))?;
            rows += r["updatedRows"].as_u64().unwrap_or(0);
            cols += r["updatedColumns"].as_u64().unwrap_or(0);
            cells += r["updatedCells"].as_u64().unwrap_or(0);
            sheets.insert(i);
            r["spreadsheetId"] = json!(sid);
            responses.push(r);
        }
        book.tabs = tabs;
        book.touched();
        Ok(json!({ "spreadsheetId": sid, "totalUpdatedRows": rows, "totalUpdatedColumns": cols,
            "totalUpdatedCells": cells, "totalUpdatedSheets": sheets.len(), "responses": responses }))
    })
    .await
}

#[derive(Deserialize)]
pub(super) struct DriveQuery {
    fields: Option<String>,
}

pub(super) async fn drive_file(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Query(q): Query<DriveQuery>,
    headers: HeaderMap,
) -> Response {
    let sid = id.clone();
    sim.with_book("GET drive files.get".into(), &headers, &id, move |book| {
        let all = json!({ "kind": "drive#file", "id": sid, "name": book.title,
            "mimeType": "application/vnd.google-apps.spreadsheet",
            "version": book.version.to_string(),
            "modifiedTime": book.modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true) });
        let fields = q.fields.unwrap_or_else(|| "kind,id,name,mimeType".into());
        let mut out = serde_json::Map::new();
        for f in fields.split(',').map(str::trim) {
            if let Some(v) = all.get(f) {
                out.insert(f.to_owned(), v.clone());
            }
        }
        Ok(Value::Object(out))
    })
    .await
}

/// `POST …/values:batchClear` (`{"ranges": […]}`), all or nothing.
pub(super) async fn batch_clear(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    #[derive(Deserialize)]
    struct Req {
        #[serde(default)]
        ranges: Vec<String>,
    }
    let sid = id.clone();
    sim.with_book("POST values.batchClear".into(), &headers, &id, move |book| {
        let req: Req = parse_body(&body)?;
        let mut located = Vec::new();
        for range in &req.ranges {
            located.push(locate(book, range)?);
        }
        let mut cleared = Vec::new();
        for (i, a) in located {
            let tab = &mut book.tabs[i];
            tab.clear(&a);
            let (c1, r1) = tab.bounds(&a);
            cleared.push(a1_text(&tab.title, a.c0, a.r0, c1, r1));
        }
        book.touched();
        Ok(json!({ "spreadsheetId": sid, "clearedRanges": cleared }))
    })
    .await
}

fn sheet_properties(t: &Tab, index: usize) -> Value {
    json!({ "sheetId": t.sheet_id, "title": t.title, "index": index, "sheetType": "GRID",
        "gridProperties": { "rowCount": t.row_count, "columnCount": t.column_count } })
}

/// One structural request of `spreadsheets.batchUpdate`; returns its reply.
fn structural(book: &mut Book, kind: &str, body: &Value) -> Result<Value, Response> {
    let bad = |m: String| g_error(400, "INVALID_ARGUMENT", &m);
    let find = |book: &Book, id: i64| {
        book.tabs.iter().position(|t| t.sheet_id == id).ok_or_else(|| bad(format!("No grid with id: {id}")))
    };
    match kind {
        "addSheet" => {
            let p = &body["properties"];
            let title = match p["title"].as_str() {
                Some(t) if !t.is_empty() => t.to_owned(),
                _ => format!("Sheet{}", book.tabs.len() + 1),
            };
            if book.tabs.iter().any(|t| t.title == title) {
                return Err(bad(format!(
                    "Invalid requests[0].addSheet: A sheet with the name \"{title}\" already exists. Please enter another name."
                )));
            }
            let id = match p["sheetId"].as_i64() {
                Some(id) if book.tabs.iter().any(|t| t.sheet_id == id) => {
                    return Err(bad(format!("Invalid requests[0].addSheet: Sheet with id {id} already exists.")));
                }
                Some(id) => id,
                None => loop {
                    let id = i64::from(rand::random::<u32>() >> 1);
                    if !book.tabs.iter().any(|t| t.sheet_id == id) {
                        break id;
                    }
                },
            };
            let mut tab = Tab::new(id, title);
            if let Some(n) = p["gridProperties"]["rowCount"].as_u64() {
                tab.row_count = n.max(1) as usize;
            }
            if let Some(n) = p["gridProperties"]["columnCount"].as_u64() {
                tab.column_count = n.max(1) as usize;
            }
            let index = p["index"].as_u64().map(|i| (i as usize).min(book.tabs.len())).unwrap_or(book.tabs.len());
            book.tabs.insert(index, tab);
            Ok(json!({ "addSheet": { "properties": sheet_properties(&book.tabs[index], index) } }))
        }
        "deleteSheet" => {
            let i = find(book, body["sheetId"].as_i64().unwrap_or(-1))?;
            if book.tabs.len() == 1 {
                return Err(bad(
                    "Invalid requests[0].deleteSheet: You can't remove all the sheets in a document.".into()
                ));
            }
            book.tabs.remove(i);
            Ok(json!({}))
        }
        "updateSheetProperties" => {
            let p = &body["properties"];
            let i = find(book, p["sheetId"].as_i64().unwrap_or(0))?;
            let fields = body["fields"].as_str().unwrap_or("*");
            // Field masks are dotted; gspread sends `gridProperties/rowCount`, which Sheets also accepts.
            let wants = |f: &str| fields == "*" || fields.split(',').any(|x| x.trim().replace('/', ".") == f);
            if wants("title")
                && let Some(t) = p["title"].as_str()
            {
                if book.tabs.iter().enumerate().any(|(j, x)| j != i && x.title == t) {
                    return Err(bad(format!("A sheet with the name \"{t}\" already exists.")));
                }
                book.tabs[i].title = t.to_owned();
            }
            if wants("gridProperties.rowCount")
                && let Some(n) = p["gridProperties"]["rowCount"].as_u64()
            {
                // Shrinking the grid drops the cells outside it, as in Sheets.
                let tab = &mut book.tabs[i];
                tab.row_count = n.max(1) as usize;
                tab.rows.truncate(tab.row_count);
            }
            if wants("gridProperties.columnCount")
                && let Some(n) = p["gridProperties"]["columnCount"].as_u64()
            {
                let tab = &mut book.tabs[i];
                tab.column_count = n.max(1) as usize;
                for row in &mut tab.rows {
                    row.truncate(tab.column_count);
                }
            }
            Ok(json!({}))
        }
        other => {
            Err(bad(format!("The request {other} is not simulated (addSheet, deleteSheet, updateSheetProperties are)")))
        }
    }
}

/// `POST /v4/spreadsheets/{id}:batchUpdate` (the id segment carries the action).
pub(super) async fn spreadsheet_action(
    State(sim): State<Simulator>,
    Path(id_action): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some((id, "batchUpdate")) = id_action.rsplit_once(':') else {
        sim.count_google(GoogleApi::Sheets);
        return g_error(404, "NOT_FOUND", &format!("Method not found: POST /v4/spreadsheets/{id_action}"));
    };
    let (id, sid) = (id.to_owned(), id.to_owned());
    sim.with_book("POST spreadsheets.batchUpdate".into(), &headers, &id, move |book| {
        let req: Value = parse_body(&body)?;
        let requests = req["requests"].as_array().cloned().unwrap_or_default();
        // All or nothing: work on a copy.
        let mut copy = book.clone();
        let mut replies = Vec::new();
        for r in &requests {
            let Some((kind, inner)) = r.as_object().and_then(|o| o.iter().next()) else {
                return Err(g_error(400, "INVALID_ARGUMENT", "Invalid requests: each request needs one kind"));
            };
            replies.push(structural(&mut copy, kind, inner)?);
        }
        *book = copy;
        book.touched();
        Ok(json!({ "spreadsheetId": sid, "replies": replies }))
    })
    .await
}

/// One clause of a Drive `q`: `field op 'value'` (`=`, `!=`, `contains`), or `… in parents`.
fn drive_clause(clause: &str) -> Option<(String, String, String)> {
    let clause = clause.trim();
    let mut chars = clause.char_indices().peekable();
    let (mut tokens, mut cur, mut quoted) = (Vec::new(), String::new(), None::<char>);
    while let Some((_, c)) = chars.next() {
        match (quoted, c) {
            (Some(q), '\\') => {
                if let Some((_, n)) = chars.next() {
                    cur.push(n);
                }
                let _ = q;
            }
            (Some(q), c) if c == q => {
                tokens.push(std::mem::take(&mut cur));
                quoted = None;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => quoted = Some(c),
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    tokens.push(std::mem::take(&mut cur));
                }
            }
            (None, '=') => {
                if !cur.is_empty() && cur != "!" {
                    tokens.push(std::mem::take(&mut cur));
                }
                let op = if cur == "!" { "!=" } else { "=" };
                cur.clear();
                tokens.push(op.into());
            }
            (None, c) => cur.push(c),
        }
    }
    if quoted.is_some() {
        return None;
    }
    if !cur.is_empty() {
        tokens.push(cur);
    }
    match tokens.as_slice() {
        [field, op, value] if ["=", "!=", "contains"].contains(&op.as_str()) => {
            Some((field.clone(), op.clone(), value.clone()))
        }
        [value, in_, field] if in_ == "in" => Some((field.clone(), "in".into(), value.clone())),
        _ => None,
    }
}

/// Splits a Drive query on ` and ` outside quotes.
fn drive_and(q: &str) -> Vec<String> {
    let (mut parts, mut cur, mut quoted) = (Vec::new(), String::new(), None::<char>);
    let mut escaped = false;
    for c in q.chars() {
        cur.push(c);
        match (quoted, c) {
            (Some(_), _) if escaped => escaped = false,
            (Some(_), '\\') => escaped = true,
            (Some(q), c) if c == q => quoted = None,
            (None, '\'' | '"') => quoted = Some(c),
            _ => {}
        }
        if quoted.is_none() && cur.to_ascii_lowercase().ends_with(" and ") {
            parts.push(cur[..cur.len() - 5].to_owned());
            cur.clear();
        }
    }
    parts.push(cur);
    parts
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct DriveListQuery {
    q: Option<String>,
    fields: Option<String>,
    page_size: Option<usize>,
}

/// `GET /drive/v3/files` (what gspread's `open(title)` and `openall` call):
/// the spreadsheets shared with the caller, filtered by a `q` of `name`,
/// `mimeType` and `trashed` clauses joined by `and`.
pub(super) async fn drive_list(
    State(sim): State<Simulator>,
    Query(q): Query<DriveListQuery>,
    headers: HeaderMap,
) -> Response {
    let what = "GET drive files.list".to_owned();
    sim.count_google(GoogleApi::Drive);
    if let Some(r) = sim.api_fault(&what, super::Flavor::Google).await {
        return r;
    }
    let account = match sim.google_account(&headers) {
        Ok(a) => a,
        Err(r) => {
            sim.record(what, r.status().as_u16());
            return r;
        }
    };
    let mut clauses = Vec::new();
    for part in q.q.as_deref().map(drive_and).unwrap_or_default() {
        match drive_clause(&part) {
            Some(c) => clauses.push(c),
            None => {
                sim.record(what, 400);
                return g_error(400, "INVALID_ARGUMENT", &format!("Invalid Value: q ({part})"));
            }
        }
    }
    const MIME: &str = "application/vnd.google-apps.spreadsheet";
    let mut files: Vec<Value> = sim.google(|g| {
        g.books
            .iter()
            .filter(|(_, b)| b.shared_with.as_ref().is_none_or(|s| s.contains(&account)))
            .filter(|(_, b)| {
                clauses.iter().all(|(field, op, value)| {
                    let actual = match field.as_str() {
                        "name" | "title" => b.title.as_str(),
                        "mimeType" => MIME,
                        "trashed" => "false",
                        _ => return false, // not simulated (e.g. parents): matches nothing
                    };
                    match op.as_str() {
                        "=" => actual == value,
                        "!=" => actual != value,
                        "contains" => actual.contains(value.as_str()),
                        _ => false,
                    }
                })
            })
            .map(|(id, b)| {
                json!({ "kind": "drive#file", "id": id, "name": b.title, "mimeType": MIME,
                    "createdTime": b.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "modifiedTime": b.modified.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "version": b.version.to_string() })
            })
            .collect()
    });
    files.sort_by(|a, b| b["modifiedTime"].as_str().cmp(&a["modifiedTime"].as_str()));
    files.truncate(q.page_size.unwrap_or(100).clamp(1, 1000));
    // `fields` like `kind,nextPageToken,files(id,name)`: keep the named file fields.
    let fields = q.fields.unwrap_or_default();
    let file_fields: Option<Vec<String>> = fields
        .split_once("files(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(inner, _)| inner.split(',').map(|f| f.trim().to_owned()).collect());
    let default_fields = ["kind", "id", "name", "mimeType"].map(String::from).to_vec();
    let keep = file_fields.unwrap_or(default_fields);
    let files: Vec<Value> = files
        .into_iter()
        .map(|f| Value::Object(keep.iter().filter_map(|k| f.get(k).map(|v| (k.clone(), v.clone()))).collect()))
        .collect();
    sim.record(what, 200);
    Json(json!({ "kind": "drive#fileList", "incompleteSearch": false, "files": files })).into_response()
}

// ---- control API ----

pub(super) async fn control_create(State(sim): State<Simulator>, Json(new): Json<NewSpreadsheet>) -> Response {
    match sim.create_spreadsheet(new) {
        Ok(id) => (StatusCode::CREATED, Json(json!({ "spreadsheet_id": id, "version": 1 }))).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    }
}

pub(super) async fn control_get(State(sim): State<Simulator>, Path(id): Path<String>) -> Response {
    let dump = sim.google(|g| {
        g.books.get(&id).map(|b| {
            let whole = A1 { sheet: None, c0: 0, r0: 0, c1: None, r1: None };
            json!({ "spreadsheet_id": id, "title": b.title, "version": b.version,
                "sheets": b.tabs.iter().map(|t| json!({ "title": t.title, "sheet_id": t.sheet_id,
                    "values": t.read(&whole, "UNFORMATTED_VALUE").values.unwrap_or_default() })).collect::<Vec<_>>() })
        })
    });
    match dump {
        Some(d) => Json(d).into_response(),
        None => (StatusCode::NOT_FOUND, Json(json!({ "error": "no such spreadsheet" }))).into_response(),
    }
}

pub(super) async fn control_edit(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Json(edit): Json<HumanEdit>,
) -> Response {
    match sim.edit_spreadsheet(&id, edit) {
        Ok(v) => Json(json!({ "version": v })).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    }
}

#[derive(Deserialize)]
pub(super) struct NewAccount {
    client_email: String,
    public_key_pem: String,
}

pub(super) async fn control_account(State(sim): State<Simulator>, Json(a): Json<NewAccount>) -> Response {
    match sim.register_google_account(&a.client_email, &a.public_key_pem) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, Json(json!({ "error": e }))).into_response(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Sharing {
    /// `null` or absent: every registered account; `[]`: nobody.
    #[serde(default)]
    shared_with: Option<Vec<String>>,
}

/// `POST /__sim/google/spreadsheets/{id}/sharing` with `{"shared_with": [...]}`.
pub(super) async fn control_share(
    State(sim): State<Simulator>,
    Path(id): Path<String>,
    Json(s): Json<Sharing>,
) -> Response {
    match sim.share_spreadsheet(&id, s.shared_with) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::NOT_FOUND, Json(json!({ "error": e }))).into_response(),
    }
}

/// `GET /__sim/google/requests`: [`Simulator::google_requests`].
pub(super) async fn control_requests(State(sim): State<Simulator>) -> Json<GoogleRequestCounts> {
    Json(sim.google_requests())
}

pub(super) async fn control_revoke(State(sim): State<Simulator>) -> StatusCode {
    sim.revoke_google_tokens();
    StatusCode::NO_CONTENT
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a1(sheet: Option<&str>, c0: usize, r0: usize, c1: Option<usize>, r1: Option<usize>) -> A1 {
        A1 { sheet: sheet.map(str::to_owned), c0, r0, c1, r1 }
    }

    #[test]
    fn a1_ranges_parse_like_sheets() {
        assert_eq!(parse_a1("Sheet1!A1:B2"), Some(a1(Some("Sheet1"), 0, 0, Some(1), Some(1))));
        assert_eq!(parse_a1("Sheet1!A:A"), Some(a1(Some("Sheet1"), 0, 0, Some(0), None)));
        assert_eq!(parse_a1("Sheet1!1:2"), Some(a1(Some("Sheet1"), 0, 0, None, Some(1))));
        assert_eq!(parse_a1("Sheet1!A5:A"), Some(a1(Some("Sheet1"), 0, 4, Some(0), None)));
        assert_eq!(parse_a1("A1:B2"), Some(a1(None, 0, 0, Some(1), Some(1))));
        assert_eq!(parse_a1("Sheet1"), Some(a1(Some("Sheet1"), 0, 0, None, None)));
        assert_eq!(parse_a1("'My Custom Sheet'!A:A"), Some(a1(Some("My Custom Sheet"), 0, 0, Some(0), None)));
        assert_eq!(parse_a1("'Dana''s list'!C3"), Some(a1(Some("Dana's list"), 2, 2, Some(2), Some(2))));
        assert_eq!(parse_a1("'Leads 2026'"), Some(a1(Some("Leads 2026"), 0, 0, None, None)));
        assert_eq!(parse_a1("Leads!AA10:AB"), Some(a1(Some("Leads"), 26, 9, Some(27), None)));
        for bad in ["", "Sheet1!", "Sheet1!A0", "Sheet1!B2:A1", "Sheet1!A1:B2:C3", "'Open!A1", "Sheet1!1:A"] {
            assert_eq!(parse_a1(bad), None, "{bad}");
        }
    }

    #[test]
    fn column_names_round_trip() {
        for (n, s) in [(0, "A"), (25, "Z"), (26, "AA"), (51, "AZ"), (52, "BA"), (701, "ZZ"), (702, "AAA")] {
            assert_eq!(col_name(n), s);
            assert_eq!(col_index(s), Some(n));
        }
        assert_eq!(a1_text("Leads", 0, 0, 4, 3), "Leads!A1:E4");
        assert_eq!(a1_text("Leads 2026", 0, 1, 0, 1), "'Leads 2026'!A2");
        assert_eq!(a1_text("A1", 0, 0, 0, 0), "'A1'!A1");
    }

    #[test]
    fn user_entered_text_becomes_numbers_and_booleans_like_sheets() {
        assert_eq!(user_entered_cell("+15005550006"), Cell::Number(15005550006.0));
        assert_eq!(user_entered_cell("000123"), Cell::Number(123.0));
        assert_eq!(user_entered_cell("3.5"), Cell::Number(3.5));
        assert_eq!(user_entered_cell("true"), Cell::Bool(true));
        assert_eq!(user_entered_cell("=1+1"), Cell::Formula { formula: "=1+1".into() });
        assert_eq!(user_entered_cell("Dana"), Cell::Text("Dana".into()));
        assert_eq!(user_entered_cell("1e5"), Cell::Text("1e5".into()));
        assert_eq!(user_entered_cell("inf"), Cell::Text("inf".into()));
        assert_eq!(Cell::Number(42.0).render("FORMATTED_VALUE"), json!("42"));
        assert_eq!(Cell::Number(42.0).render("UNFORMATTED_VALUE"), json!(42.0));
    }

    #[test]
    fn reads_trim_trailing_empties_and_keep_inner_gaps() {
        let mut t = Tab::new(0, "T".into());
        let whole = a1(None, 0, 0, None, None);
        t.write(&whole, &[vec![json!("a"), json!("b"), json!("")], vec![], vec![json!(""), json!("c")]], false)
            .unwrap();
        let out = t.read(&whole, "FORMATTED_VALUE");
        assert_eq!(out.values.unwrap(), vec![vec![json!("a"), json!("b")], vec![], vec![json!(""), json!("c")]]);
        assert_eq!(out.range, "T!A1:Z1000");
        assert!(t.read(&a1(None, 5, 5, Some(6), Some(6)), "FORMATTED_VALUE").values.is_none());
        let err = t.write(&a1(None, 0, 0, Some(0), Some(0)), &[vec![json!(1), json!(2)]], false).unwrap_err();
        assert!(err.contains("tried writing to column [B]"), "{err}");
    }

    fn sim_with_leads() -> (Simulator, String) {
        let sim = Simulator::new(crate::SimSettings::default());
        let rows = vec![
            vec![json!("name"), json!("phone"), json!("notes")],
            vec![json!("carol"), json!("+1003")],
            vec![json!(""), json!("+1004"), json!("no name")],
            vec![json!("Alice"), json!("+1001"), json!("first")],
            vec![json!("bob"), json!("+1002")],
        ];
        let id = sim
            .create_spreadsheet(NewSpreadsheet {
                spreadsheet_id: Some("1SortMe".into()),
                sheets: vec![NewTab { title: "Leads".into(), values: Some(rows), ..NewTab::default() }],
                ..NewSpreadsheet::default()
            })
            .unwrap();
        (sim, id)
    }

    #[test]
    fn sort_rows_keeps_the_header_moves_whole_rows_and_puts_empties_last() {
        let (sim, id) = sim_with_leads();
        let v0 = sim.spreadsheet_version(&id).unwrap();
        let edit: HumanEdit = serde_json::from_value(
            json!({ "op": "sort_rows", "sheet": "Leads", "from_row": 2, "column": 0, "descending": false }),
        )
        .unwrap();
        let v1 = sim.edit_spreadsheet(&id, edit).unwrap();
        assert_eq!(v1, v0 + 1, "a sort bumps the Drive version");
        assert_eq!(sim.spreadsheet_version(&id), Some(v1));
        let names = |sim: &Simulator| -> Vec<Vec<Value>> { sim.spreadsheet_values(&id, "Leads").unwrap() };
        assert_eq!(
            names(&sim),
            vec![
                vec![json!("name"), json!("phone"), json!("notes")],
                vec![json!("Alice"), json!("+1001"), json!("first")],
                vec![json!("bob"), json!("+1002")],
                vec![json!("carol"), json!("+1003")],
                vec![json!(""), json!("+1004"), json!("no name")],
            ]
        );
        let v2 = sim
            .edit_spreadsheet(
                &id,
                HumanEdit::SortRows { sheet: "Leads".into(), from_row: 2, column: 0, descending: true },
            )
            .unwrap();
        assert_eq!(v2, v1 + 1);
        assert_eq!(
            names(&sim),
            vec![
                vec![json!("name"), json!("phone"), json!("notes")],
                vec![json!("carol"), json!("+1003")],
                vec![json!("bob"), json!("+1002")],
                vec![json!("Alice"), json!("+1001"), json!("first")],
                vec![json!(""), json!("+1004"), json!("no name")],
            ],
            "Z→A keeps empties last"
        );
        // `descending` defaults to A→Z; an unknown tab is refused.
        let edit: HumanEdit =
            serde_json::from_value(json!({ "op": "sort_rows", "sheet": "Leads", "from_row": 2, "column": 1 })).unwrap();
        sim.edit_spreadsheet(&id, edit).unwrap();
        assert_eq!(names(&sim)[1], vec![json!("Alice"), json!("+1001"), json!("first")]);
        assert_eq!(names(&sim)[4], vec![json!(""), json!("+1004"), json!("no name")]);
        let missing = HumanEdit::SortRows { sheet: "Nope".into(), from_row: 2, column: 0, descending: false };
        assert!(sim.edit_spreadsheet(&id, missing).is_err());
    }

    /// A signed assertion for the sandbox account, as a client library sends it.
    fn sandbox_assertion(base: &str) -> String {
        let key: Value = serde_json::from_str(SANDBOX_KEY_JSON).unwrap();
        let now = Utc::now().timestamp();
        let claims = json!({ "iss": SANDBOX_ACCOUNT, "scope": "https://www.googleapis.com/auth/spreadsheets",
            "aud": format!("{base}/token"), "iat": now, "exp": now + 3600 });
        let pem = key["private_key"].as_str().unwrap();
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&jsonwebtoken::Header::new(Algorithm::RS256), &claims, &key).unwrap()
    }

    async fn fetch_token(http: &reqwest::Client, base: &str) -> (u16, Value) {
        let form =
            [("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"), ("assertion", &sandbox_assertion(base))];
        let r = http.post(format!("{base}/token")).form(&form).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    #[tokio::test]
    async fn unsharing_answers_403_until_shared_again_and_requests_are_counted() {
        let h = Simulator::spawn(crate::SimSettings::default(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (sim, base) = (h.sim.clone(), h.base_url.clone());
        let id = sim
            .create_spreadsheet(NewSpreadsheet {
                spreadsheet_id: Some("1ShareMe".into()),
                sheets: vec![NewTab { title: "Leads".into(), csv: Some("name\nAlice\n".into()), ..NewTab::default() }],
                ..NewSpreadsheet::default()
            })
            .unwrap();
        let http = reqwest::Client::new();
        let (status, body) = fetch_token(&http, &base).await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let values = format!("{base}/v4/spreadsheets/{id}/values/Leads!A1:A");
        let drive = format!("{base}/drive/v3/files/{id}?fields=version");
        let get = |url: String| {
            let req = http.get(url).bearer_auth(&token);
            async move { req.send().await.unwrap().status().as_u16() }
        };
        assert_eq!(get(values.clone()).await, 200);
        let version = sim.spreadsheet_version(&id);

        sim.share_spreadsheet(&id, Some(vec!["someone-else@example.iam.gserviceaccount.com".into()])).unwrap();
        assert_eq!(get(values.clone()).await, 403);
        assert_eq!(get(drive.clone()).await, 403);
        let r = http.get(&values).bearer_auth(&token).send().await.unwrap();
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(sim.spreadsheet_version(&id), version, "sharing is not an edit");

        // Through the control API: back to every registered account.
        let r =
            http.post(format!("{base}/__sim/google/spreadsheets/{id}/sharing")).json(&json!({ "shared_with": null }));
        assert_eq!(r.send().await.unwrap().status().as_u16(), 204);
        assert_eq!(get(values.clone()).await, 200);
        assert_eq!(get(drive.clone()).await, 200);
        assert!(sim.share_spreadsheet("1NoSuchBook", None).is_err());

        // A revoked service account: its tokens stop working and new ones are refused until it is registered again.
        sim.unregister_google_account(SANDBOX_ACCOUNT);
        assert_eq!(get(values.clone()).await, 401);
        let (status, body) = fetch_token(&http, &base).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
        sim.register_google_account(SANDBOX_ACCOUNT, SANDBOX_PUBLIC_PEM).unwrap();
        assert_eq!(fetch_token(&http, &base).await.0, 200);

        // Sheets: 200, 403, 403 (body), 200, 401; Drive: 403, 200; token: 3 (one refused).
        let counts = sim.google_requests();
        assert_eq!(counts, GoogleRequestCounts { sheets: 5, drive: 2, token: 3 });
        let r: Value = http.get(format!("{base}/__sim/google/requests")).send().await.unwrap().json().await.unwrap();
        assert_eq!(r, json!({ "sheets": 5, "drive": 2, "token": 3 }));
    }
}
