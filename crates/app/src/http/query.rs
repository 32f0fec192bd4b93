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

    /// All values of a typed key (enums), comma-separated values split, with
    /// empty pieces kept so that `status=` or `status=a,` fail to parse.
    pub fn all_typed(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_owned()).collect::<Vec<_>>())
            .collect()
    }

    /// The single value of a key (last wins), if non-empty.
    pub fn one(&self, key: &str) -> Option<String> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()).filter(|v| !v.is_empty())
    }

    /// The single value of a key (last wins), even if empty: for typed
    /// parameters (enums, booleans, times, numbers), where `key=` is an
    /// invalid value rather than an absent one.
    pub fn raw(&self, key: &str) -> Option<String> {
        self.pairs.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    /// A value parsed with `FromStr<Err = String>` (an empty value is an error).
    pub fn parsed<T: std::str::FromStr<Err = String>>(&mut self, key: &str) -> Option<T> {
        let v = self.raw(key)?;
        v.parse().map_err(|e| self.bad(key, e)).ok()
    }

    /// An RFC 3339 timestamp (an empty value is an error).
    pub fn time(&mut self, key: &str) -> Option<DateTime<Utc>> {
        let v = self.raw(key)?;
        match DateTime::parse_from_rfc3339(&v) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                self.bad(key, format!("`{v}` is not an RFC 3339 timestamp (e.g. 2026-11-17T10:15:42Z)"));
                None
            }
        }
    }

    /// `true` or `false` (an empty value is an error).
    pub fn flag(&mut self, key: &str) -> Option<bool> {
        match self.raw(key).as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(v) => {
                self.bad(key, format!("`{v}` is not true or false"));
                None
            }
        }
    }

    /// `limit` (decimal digits only, 1..=200; `limit=`, `+5` or `5.0` are errors) and `cursor`.
    pub fn page(&mut self) -> PageRequest {
        let limit = match self.raw("limit") {
            None => DEFAULT_LIMIT,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if v.bytes().all(|b| b.is_ascii_digit()) && (1..=MAX_LIMIT).contains(&n) => n,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn limit_of(raw: &str) -> Result<u32, Vec<FieldError>> {
        let mut q = Query::parse(Some(raw), &["limit", "cursor", "at"]);
        let page = q.page();
        match q.finish() {
            Ok(()) => Ok(page.limit),
            Err(ApiError::Validation(errs)) => Err(errs),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn limit_is_decimal_digits_from_1_to_200() {
        assert_eq!(limit_of("").unwrap(), DEFAULT_LIMIT);
        assert_eq!(limit_of("limit=1").unwrap(), 1);
        assert_eq!(limit_of("limit=200").unwrap(), 200);
        assert_eq!(limit_of("limit=007").unwrap(), 7);
        for bad in ["limit=", "limit=0", "limit=201", "limit=%2B5", "limit=5.0", "limit=-1", "limit=%205", "limit=x"] {
            let errs = limit_of(bad).unwrap_err();
            assert_eq!(errs[0].field, "limit", "{bad}");
        }
    }

    #[test]
    fn an_empty_typed_value_is_an_error_not_an_absent_one() {
        let mut q = Query::parse(Some("at=&cursor="), &["at", "cursor"]);
        assert_eq!(q.time("at"), None);
        assert_eq!(q.one("cursor"), None, "an empty free-text value is absent");
        assert!(q.finish().is_err());
        let mut q = Query::parse(Some("at="), &["at"]);
        assert_eq!(q.flag("at"), None);
        assert!(q.finish().is_err());
    }
}
