//! Contacts: the people campaigns call (architecture §4). Global, keyed by
//! their E.164 phone number, which is unique.
//!
//! Input goes through [`ContactInput::validate`], which normalises the phone
//! number with a default region (`(415) 555-2671` → `+14155552671`), checks
//! the e-mail, the time zone and the location, and reports every bad field
//! at once with its reason.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ContactId;

/// One invalid field and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Field path, e.g. `phone` or `location.lat`.
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        FieldError { field: field.into(), reason: reason.into() }
    }
}

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

/// A point on Earth (stored as GeoJSON `Point` on MongoDB).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Longitude, −180..=180.
    pub lon: f64,
    /// Latitude, −90..=90.
    pub lat: f64,
}

/// Do-not-call status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DoNotCall {
    /// Why (e.g. "asked not to be called").
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A stored contact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// Our id.
    pub id: ContactId,
    /// E.164, unique.
    pub phone: String,
    /// ISO region of the number (`US`, `GB`), from the number itself.
    pub region: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// E-mail, lower-cased domain.
    pub email: Option<String>,
    /// Tags, lower-case, sorted, unique.
    pub tags: Vec<String>,
    /// Free-form fields (strings, numbers, booleans).
    pub custom: BTreeMap<String, Value>,
    /// Explicit IANA time zone.
    pub time_zone: Option<String>,
    /// Location.
    pub location: Option<GeoPoint>,
    /// Do-not-call, when set.
    pub do_not_call: Option<DoNotCall>,
    /// Where the contact came from (`api`, `import:<file>`, `sheets:<id>`).
    pub source: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

impl Contact {
    /// The time zone calls to this contact are timed in: explicit, else the
    /// number's region when that region has one zone, else `fallback`
    /// (the campaign's default).
    pub fn effective_time_zone<'a>(&'a self, fallback: &'a str) -> &'a str {
        self.time_zone.as_deref().or_else(|| self.region.as_deref().and_then(region_time_zone)).unwrap_or(fallback)
    }

    /// Whether the contact must not be called.
    pub fn is_dnc(&self) -> bool {
        self.do_not_call.is_some()
    }
}

/// A contact as the API and importers receive it (every field optional but the phone).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactInput {
    /// Phone in any common format; normalised to E.164.
    pub phone: Option<String>,
    /// Name.
    pub name: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Vec<String>>,
    /// Custom fields.
    #[serde(default)]
    pub custom: Option<BTreeMap<String, Value>>,
    /// IANA time zone.
    pub time_zone: Option<String>,
    /// Location.
    pub location: Option<GeoPoint>,
    /// Do-not-call flag.
    pub do_not_call: Option<bool>,
    /// Reason, when `do_not_call` is true.
    pub do_not_call_reason: Option<String>,
    /// Origin.
    pub source: Option<String>,
}

/// Strict E.164 as Twilio takes it in `From`/`To`: `+`, a non-zero digit, 7 to 15 digits in all.
pub fn is_e164(s: &str) -> bool {
    let Some(digits) = s.strip_prefix('+') else { return false };
    (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0')
}

/// Normalises a phone number to E.164; returns it with its region.
pub fn normalize_phone(raw: &str, default_region: &str) -> Result<(String, Option<String>), String> {
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err("is empty".into());
    }
    let region: Option<phonenumber::country::Id> = if trimmed.starts_with('+') {
        None
    } else {
        Some(default_region.parse().map_err(|_| format!("default region `{default_region}` is not an ISO region"))?)
    };
    let n = phonenumber::parse(region, trimmed).map_err(|e| format!("`{trimmed}` is not a phone number ({e})"))?;
    if !phonenumber::is_valid(&n) {
        return Err(format!("`{trimmed}` is not a valid number for its region"));
    }
    let e164 = n.format().mode(phonenumber::Mode::E164).to_string();
    let region = n.country().id().map(|id| format!("{id:?}"));
    Ok((e164, region))
}

/// A lightly checked e-mail: one `@`, a non-empty local part, a dotted domain, no spaces.
pub fn normalize_email(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    let Some((local, domain)) = t.split_once('@') else { return Err(format!("`{t}` has no @")) };
    let ok = !local.is_empty()
        && local.len() <= 64
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !t.contains(char::is_whitespace)
        && !domain.contains('@')
        && t.len() <= 254;
    if !ok {
        return Err(format!("`{t}` is not an e-mail address"));
    }
    Ok(format!("{local}@{}", domain.to_ascii_lowercase()))
}

/// Checks an IANA time-zone name.
pub fn check_time_zone(tz: &str) -> Result<(), String> {
    tz.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| format!("`{tz}` is not an IANA time zone"))
}

/// The zone of a region that has exactly one (multi-zone regions such as
/// the US, Canada, Russia, Brazil or Australia return `None`: their numbers
/// do not say where the person is).
pub fn region_time_zone(region: &str) -> Option<&'static str> {
    Some(match region {
        "GB" => "Europe/London",
        "IE" => "Europe/Dublin",
        "FR" => "Europe/Paris",
        "DE" => "Europe/Berlin",
        "ES" => "Europe/Madrid",
        "IT" => "Europe/Rome",
        "NL" => "Europe/Amsterdam",
        "BE" => "Europe/Brussels",
        "CH" => "Europe/Zurich",
        "AT" => "Europe/Vienna",
        "SE" => "Europe/Stockholm",
        "NO" => "Europe/Oslo",
        "DK" => "Europe/Copenhagen",
        "FI" => "Europe/Helsinki",
        "PL" => "Europe/Warsaw",
        "CZ" => "Europe/Prague",
        "GR" => "Europe/Athens",
        "RO" => "Europe/Bucharest",
        "HU" => "Europe/Budapest",
        "IL" => "Asia/Jerusalem",
        "AE" => "Asia/Dubai",
        "IN" => "Asia/Kolkata",
        "PK" => "Asia/Karachi",
        "SG" => "Asia/Singapore",
        "HK" => "Asia/Hong_Kong",
        "JP" => "Asia/Tokyo",
        "KR" => "Asia/Seoul",
        "CN" => "Asia/Shanghai",
        "TW" => "Asia/Taipei",
        "PH" => "Asia/Manila",
        "TH" => "Asia/Bangkok",
        "VN" => "Asia/Ho_Chi_Minh",
        "NZ" => "Pacific/Auckland",
        "ZA" => "Africa/Johannesburg",
        "NG" => "Africa/Lagos",
        "KE" => "Africa/Nairobi",
        "EG" => "Africa/Cairo",
        "AR" => "America/Argentina/Buenos_Aires",
        "CO" => "America/Bogota",
        "PE" => "America/Lima",
        "CL" => "America/Santiago",
        "PR" => "America/Puerto_Rico",
        _ => return None,
    })
}

fn clean_tags(tags: &[String]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for t in tags {
        let t = t.trim().to_lowercase();
        if t.is_empty() || t.len() > 64 || t.contains(',') {
            return Err(format!("`{t}`: a tag is 1..=64 characters without commas"));
        }
        out.push(t);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

impl ContactInput {
    /// Validates and normalises a new contact; every bad field is reported.
    pub fn validate(&self, default_region: &str, now: DateTime<Utc>) -> Result<Contact, Vec<FieldError>> {
        let mut errors = Vec::new();
        let phone = match self.phone.as_deref() {
            None => {
                errors.push(FieldError::new("phone", "is required"));
                None
            }
            Some(p) => match normalize_phone(p, default_region) {
                Ok(v) => Some(v),
                Err(e) => {
                    errors.push(FieldError::new("phone", e));
                    None
                }
            },
        };
        let now = crate::time::to_ms(now);
        let mut contact = Contact {
            id: ContactId::new(),
            phone: String::new(),
            region: None,
            name: None,
            email: None,
            tags: vec![],
            custom: BTreeMap::new(),
            time_zone: None,
            location: None,
            do_not_call: None,
            source: None,
            created_at: now,
            updated_at: now,
            version: 1,
        };
        if let Some((e164, region)) = phone {
            contact.phone = e164;
            contact.region = region;
        }
        self.apply_optional(&mut contact, now, &mut errors);
        if errors.is_empty() { Ok(contact) } else { Err(errors) }
    }

    /// Applies the fields present in `self` to `contact` (a partial update); `phone` is re-normalised.
    pub fn patch(
        &self,
        contact: &Contact,
        default_region: &str,
        now: DateTime<Utc>,
    ) -> Result<Contact, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut c = contact.clone();
        if let Some(p) = &self.phone {
            match normalize_phone(p, default_region) {
                Ok((e164, region)) => {
                    c.phone = e164;
                    c.region = region;
                }
                Err(e) => errors.push(FieldError::new("phone", e)),
            }
        }
        let now = crate::time::to_ms(now);
        self.apply_optional(&mut c, now, &mut errors);
        c.updated_at = now;
        if errors.is_empty() { Ok(c) } else { Err(errors) }
    }

    fn apply_optional(&self, c: &mut Contact, now: DateTime<Utc>, errors: &mut Vec<FieldError>) {
        if let Some(n) = &self.name {
            let n = n.trim();
            if n.chars().count() > 200 {
                errors.push(FieldError::new("name", "is longer than 200 characters"));
            }
            c.name = (!n.is_empty()).then(|| n.to_owned());
        }
        if let Some(e) = &self.email {
            if e.trim().is_empty() {
                c.email = None;
            } else {
                match normalize_email(e) {
                    Ok(v) => c.email = Some(v),
                    Err(r) => errors.push(FieldError::new("email", r)),
                }
            }
        }
        if let Some(t) = &self.tags {
            match clean_tags(t) {
                Ok(v) => c.tags = v,
                Err(r) => errors.push(FieldError::new("tags", r)),
            }
        }
        if let Some(custom) = &self.custom {
            for (k, v) in custom {
                if k.is_empty() || k.starts_with('$') || k.contains('.') {
                    errors.push(FieldError::new(
                        format!("custom.{k}"),
                        "keys are non-empty and contain no `$` prefix or `.`",
                    ));
                } else if !(v.is_string() || v.is_number() || v.is_boolean() || v.is_null()) {
                    errors
                        .push(FieldError::new(format!("custom.{k}"), "values are strings, numbers, booleans or null"));
                }
            }
            c.custom = custom.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        if let Some(tz) = &self.time_zone {
            if tz.trim().is_empty() {
                c.time_zone = None;
            } else {
                match check_time_zone(tz.trim()) {
                    Ok(()) => c.time_zone = Some(tz.trim().to_owned()),
                    Err(r) => errors.push(FieldError::new("time_zone", r)),
                }
            }
        }
        if let Some(loc) = self.location {
            if !(-180.0..=180.0).contains(&loc.lon) || !loc.lon.is_finite() {
                errors.push(FieldError::new("location.lon", "must be within -180..=180"));
            }
            if !(-90.0..=90.0).contains(&loc.lat) || !loc.lat.is_finite() {
                errors.push(FieldError::new("location.lat", "must be within -90..=90"));
            }
            c.location = Some(loc);
        }
        match (self.do_not_call, &self.do_not_call_reason) {
            (Some(true), reason) => {
                if c.do_not_call.is_none() {
                    c.do_not_call =
                        Some(DoNotCall { reason: reason.clone().unwrap_or_else(|| "unspecified".into()), since: now });
                } else if let (Some(d), Some(r)) = (&mut c.do_not_call, reason) {
                    d.reason = r.clone();
                }
            }
            (Some(false), _) => c.do_not_call = None,
            (None, Some(_)) => errors.push(FieldError::new("do_not_call_reason", "only with do_not_call: true")),
            (None, None) => {}
        }
        if let Some(s) = &self.source {
            c.source = Some(s.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        crate::time::from_millis(1_794_916_542_000)
    }

    #[test]
    fn phones_normalise_to_e164_with_the_default_region() {
        assert_eq!(normalize_phone("(415) 555-2671", "US").unwrap(), ("+14155552671".into(), Some("US".into())));
        assert_eq!(normalize_phone("020 7946 0018", "GB").unwrap().0, "+442079460018");
        assert_eq!(normalize_phone("+44 20 7946 0018", "US").unwrap().1.as_deref(), Some("GB"));
        assert!(normalize_phone("12", "US").is_err());
        assert!(normalize_phone("", "US").unwrap_err().contains("empty"));
        assert!(normalize_phone("555", "US").is_err());
        assert!(normalize_phone("4155552671", "XX").unwrap_err().contains("default region"));
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let input = ContactInput {
            phone: Some("nope".into()),
            email: Some("dana@".into()),
            time_zone: Some("Mars/Olympus".into()),
            location: Some(GeoPoint { lon: 200.0, lat: 10.0 }),
            tags: Some(vec!["ok".into(), "".into()]),
            ..Default::default()
        };
        let errs = input.validate("US", now()).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["phone", "email", "tags", "time_zone", "location.lon"]);
        let missing = ContactInput::default().validate("US", now()).unwrap_err();
        assert_eq!(missing, vec![FieldError::new("phone", "is required")]);
    }

    #[test]
    fn a_valid_contact_is_normalised() {
        let input = ContactInput {
            phone: Some(" 415-555-2671 ".into()),
            name: Some("  Dana Scully ".into()),
            email: Some("Dana@FBI.Gov".into()),
            tags: Some(vec!["VIP".into(), "west".into(), "vip".into()]),
            do_not_call: Some(true),
            do_not_call_reason: Some("asked".into()),
            ..Default::default()
        };
        let c = input.validate("US", now()).unwrap();
        assert_eq!(c.phone, "+14155552671");
        assert_eq!(c.name.as_deref(), Some("Dana Scully"));
        assert_eq!(c.email.as_deref(), Some("Dana@fbi.gov"));
        assert_eq!(c.tags, ["vip", "west"]);
        assert_eq!(c.do_not_call.as_ref().unwrap().reason, "asked");
        // US numbers span zones: the campaign default applies.
        assert_eq!(c.effective_time_zone("America/Chicago"), "America/Chicago");
        let uk =
            ContactInput { phone: Some("+442079460018".into()), ..Default::default() }.validate("US", now()).unwrap();
        assert_eq!(uk.effective_time_zone("America/Chicago"), "Europe/London");
        let patched =
            ContactInput { time_zone: Some("America/Denver".into()), do_not_call: Some(false), ..Default::default() }
                .patch(&c, "US", now())
                .unwrap();
        assert_eq!(patched.effective_time_zone("America/Chicago"), "America/Denver");
        assert!(!patched.is_dnc());
        assert_eq!(patched.phone, c.phone);
    }
}
