//! Query-string parsing with field-level errors. Repeated keys are kept
//! (`status=busy&status=no-answer`), unknown keys are rejected by name so a
//! typo never silently widens a filter.

use chrono::{DateTime, Utc};
use switchboard_storage::PageRequest;
use switchboard_storage::page::{DEFAULT_LIMIT, MAX_LIMIT};

use crate::error::{ApiError, FieldError};

/// Parsed query pairs plus the errors found so far.
pub struct Query {
    pairs: Vec<(String, String)>,
    errors: Vec<FieldError>,
}

impl Query {
    /// Parses a raw query string and rejects keys outside `allowed`.
    pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Query {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or("").as_bytes()).into_owned().collect();
        let mut errors = Vec::new();
        for (k, _) in &pairs {
            if !allowed.contains(&k.as_str()) && !errors.iter().any(|e: &FieldError| &e.field == k) {
                errors.push(FieldError {
                    field: k.clone(),
                    reason: format!("unknown parameter; expected one of: {}", allowed.join(", ")),
                });
            }
        }
        Query { pairs, errors }
    }

    /// Records an error.
    pub fn bad(&mut self, field: &str, reason: impl Into<String>) {
        self.errors.push(FieldError { field: field.into(), reason: reason.into() });
    }

    /// All values of a key (comma-separated values are split too).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| {
                v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect::<Vec<_>>()
            })
            .collect()
    }

    /// The single value of a key (last wins), if non-empty.
    pub fn one(&self, key: &str) -> Option<String> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    }

    /// A value parsed with `FromStr<Err = String>`.
    pub fn parsed<T: std::str::FromStr<Err = String>>(&mut self, key: &str) -> Option<T> {
        let v = self.one(key)?;
        v.parse().map_err(|e| self.bad(key, e)).ok()
    }

    /// An RFC 3339 timestamp.
    pub fn time(&mut self, key: &str) -> Option<DateTime<Utc>> {
        let v = self.one(key)?;
        match DateTime::parse_from_rfc3339(&v) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.bad(key, format!("`{v}` is not an RFC 3339 timestamp (e.g. 2026-11-17T10:15:42Z)"));
                None
            }
        }
    }

    /// `limit` (1..=200) and `cursor`.
    pub fn page(&mut self) -> PageRequest {
        let limit = match self.one("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    self.bad("limit", format!("`{v}` is not an integer from 1 to {MAX_LIMIT}"));
                    DEFAULT_LIMIT
                }
            },
        };
        PageRequest { limit, cursor: self.one("cursor") }
    }

    /// Fails with every error found.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::Validation(self.errors)) }
    }
}
