//! Typed BSON documents of `contacts`, `campaigns` and `campaign_contacts`.
//!
//! Every instant is a [`BsonDate`] field at whatever depth it sits
//! (`do_not_call.since`, `schedule.start_at`, `history[].at`,
//! `lease.expires_at`, …), so no date is ever stored as a string: the struct
//! says where the dates are, instead of a hand-kept list of dotted paths.
//! Nested parts without instants reuse the domain types' own serde form.
//! Optional fields are left out when empty (never null), as the validators
//! expect. Calendar dates without a time (`schedule.holidays`, local dates)
//! stay `YYYY-MM-DD` strings: they are not instants.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use mongodb::bson::{self, DateTime as BsonDate, Document};
use serde::{Deserialize, Serialize};
use switchboard_domain::campaign::{AgentSettings, CallingWindow, Pacing, RetryPolicy, Schedule};
use switchboard_domain::contact::{DoNotCall, GeoPoint};
use switchboard_domain::enrollment::{Attempt, Lease};
use switchboard_domain::{
    CallId, Campaign, CampaignId, CampaignStatus, Contact, ContactId, DialMode, Enrollment, EnrollmentId,
    EnrollmentStatus, Outcome,
};
use switchboard_storage::{StoreError, StoreResult};

use crate::docs::{bson_date, chrono_date};

fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("document does not convert: {e}"))
}

fn to_document<T: Serialize>(v: &T) -> StoreResult<Document> {
    bson::serialize_to_document(v).map_err(bad)
}

fn from_document<T: for<'de> Deserialize<'de>>(d: Document) -> StoreResult<T> {
    bson::deserialize_from_document(d).map_err(bad)
}

// ---- contacts ----

/// GeoJSON point (`[lon, lat]`), so a 2dsphere index can serve geospatial queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct GeoJsonPoint {
    #[serde(rename = "type")]
    kind: String,
    coordinates: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DoNotCallDoc {
    reason: String,
    since: BsonDate,
}

/// A document of `contacts`, with the derived fields its indexes use
/// (`name_lc`, `email_lc`, `dnc`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ContactDoc {
    #[serde(rename = "_id")]
    id: ContactId,
    phone: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    region: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    name_lc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    email_lc: Option<String>,
    tags: Vec<String>,
    custom: BTreeMap<String, serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    location: Option<GeoJsonPoint>,
    dnc: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    do_not_call: Option<DoNotCallDoc>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    source: Option<String>,
    created_at: BsonDate,
    updated_at: BsonDate,
    version: i64,
}

pub(crate) fn contact_doc(x: &Contact) -> StoreResult<Document> {
    to_document(&ContactDoc {
        id: x.id.clone(),
        phone: x.phone.clone(),
        region: x.region.clone(),
        name: x.name.clone(),
        name_lc: x.name.as_ref().map(|n| n.to_lowercase()),
        email: x.email.clone(),
        email_lc: x.email.as_ref().map(|e| e.to_lowercase()),
        tags: x.tags.clone(),
        custom: x.custom.clone(),
        time_zone: x.time_zone.clone(),
        location: x.location.map(|p| GeoJsonPoint { kind: "Point".into(), coordinates: vec![p.lon, p.lat] }),
        dnc: x.is_dnc(),
        do_not_call: x
            .do_not_call
            .as_ref()
            .map(|n| DoNotCallDoc { reason: n.reason.clone(), since: bson_date(n.since) }),
        source: x.source.clone(),
        created_at: bson_date(x.created_at),
        updated_at: bson_date(x.updated_at),
        version: x.version,
    })
}

pub(crate) fn contact_from(doc: Document) -> StoreResult<Contact> {
    let x: ContactDoc = from_document(doc)?;
    let location = match x.location {
        None => None,
        Some(p) => match p.coordinates.as_slice() {
            [lon, lat] => Some(GeoPoint { lon: *lon, lat: *lat }),
            other => return Err(bad(format!("contact location has {} coordinates", other.len()))),
        },
    };
    Ok(Contact {
        id: x.id,
        phone: x.phone,
        region: x.region,
        name: x.name,
        email: x.email,
        tags: x.tags,
        custom: x.custom,
        time_zone: x.time_zone,
        location,
        do_not_call: x.do_not_call.map(|n| DoNotCall { reason: n.reason, since: chrono_date(n.since) }),
        source: x.source,
        created_at: chrono_date(x.created_at),
        updated_at: chrono_date(x.updated_at),
        version: x.version,
    })
}

// ---- campaigns ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ScheduleDoc {
    #[serde(skip_serializing_if = "Option::is_none", default)]
    start_at: Option<BsonDate>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    end_at: Option<BsonDate>,
    windows: Vec<CallingWindow>,
    holidays: Vec<NaiveDate>,
    time_zone: String,
}

/// A document of `campaigns`, with the dial gate's copies of the pacing
/// (`max_concurrent`, `interval_ms`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CampaignDoc {
    #[serde(rename = "_id")]
    id: CampaignId,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    description: Option<String>,
    status: CampaignStatus,
    agent: AgentSettings,
    schedule: ScheduleDoc,
    pacing: Pacing,
    retry: RetryPolicy,
    dial_mode: DialMode,
    next_dial_at: BsonDate,
    inflight: Vec<String>,
    dials: i64,
    max_concurrent: i64,
    interval_ms: i64,
    created_at: BsonDate,
    updated_at: BsonDate,
    version: i64,
}

pub(crate) fn campaign_doc(x: &Campaign) -> StoreResult<Document> {
    let s = &x.schedule;
    to_document(&CampaignDoc {
        id: x.id.clone(),
        name: x.name.clone(),
        description: x.description.clone(),
        status: x.status,
        agent: x.agent.clone(),
        schedule: ScheduleDoc {
            start_at: s.start_at.map(bson_date),
            end_at: s.end_at.map(bson_date),
            windows: s.windows.clone(),
            holidays: s.holidays.clone(),
            time_zone: s.time_zone.clone(),
        },
        pacing: x.pacing,
        retry: x.retry,
        dial_mode: x.dial_mode,
        next_dial_at: bson_date(x.next_dial_at),
        inflight: x.inflight.clone(),
        dials: i64::try_from(x.dials).map_err(bad)?,
        max_concurrent: i64::from(x.pacing.max_concurrent),
        interval_ms: x.pacing.interval().num_milliseconds(),
        created_at: bson_date(x.created_at),
        updated_at: bson_date(x.updated_at),
        version: x.version,
    })
}

pub(crate) fn campaign_from(doc: Document) -> StoreResult<Campaign> {
    let x: CampaignDoc = from_document(doc)?;
    let s = x.schedule;
    Ok(Campaign {
        id: x.id,
        name: x.name,
        description: x.description,
        status: x.status,
        agent: x.agent,
        schedule: Schedule {
            start_at: s.start_at.map(chrono_date),
            end_at: s.end_at.map(chrono_date),
            windows: s.windows,
            holidays: s.holidays,
            time_zone: s.time_zone,
        },
        pacing: x.pacing,
        retry: x.retry,
        dial_mode: x.dial_mode,
        next_dial_at: chrono_date(x.next_dial_at),
        inflight: x.inflight,
        dials: u64::try_from(x.dials).map_err(bad)?,
        created_at: chrono_date(x.created_at),
        updated_at: chrono_date(x.updated_at),
        version: x.version,
    })
}

// ---- enrollments ----

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct AttemptDoc {
    n: i64,
    call_id: CallId,
    at: BsonDate,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    outcome: Option<Outcome>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LeaseDoc {
    owner: String,
    expires_at: BsonDate,
}

/// A document of `campaign_contacts`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EnrollmentDoc {
    #[serde(rename = "_id")]
    id: EnrollmentId,
    campaign_id: CampaignId,
    contact_id: ContactId,
    status: EnrollmentStatus,
    attempts: i64,
    history: Vec<AttemptDoc>,
    next_attempt_at: BsonDate,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    last_outcome: Option<Outcome>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    lease: Option<LeaseDoc>,
    lease_token: i64,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    current_call_id: Option<CallId>,
    created_at: BsonDate,
    updated_at: BsonDate,
    version: i64,
}

pub(crate) fn enrollment_doc(x: &Enrollment) -> StoreResult<Document> {
    to_document(&EnrollmentDoc {
        id: x.id.clone(),
        campaign_id: x.campaign_id.clone(),
        contact_id: x.contact_id.clone(),
        status: x.status,
        attempts: i64::from(x.attempts),
        history: x
            .history
            .iter()
            .map(|a| AttemptDoc {
                n: i64::from(a.n),
                call_id: a.call_id.clone(),
                at: bson_date(a.at),
                outcome: a.outcome,
            })
            .collect(),
        next_attempt_at: bson_date(x.next_attempt_at),
        last_outcome: x.last_outcome,
        reason: x.reason.clone(),
        lease: x.lease.as_ref().map(|l| LeaseDoc { owner: l.owner.clone(), expires_at: bson_date(l.expires_at) }),
        lease_token: x.lease_token,
        current_call_id: x.current_call_id.clone(),
        created_at: bson_date(x.created_at),
        updated_at: bson_date(x.updated_at),
        version: x.version,
    })
}

pub(crate) fn enrollment_from(doc: Document) -> StoreResult<Enrollment> {
    let x: EnrollmentDoc = from_document(doc)?;
    let history = x
        .history
        .into_iter()
        .map(|a| {
            Ok(Attempt {
                n: u32::try_from(a.n).map_err(bad)?,
                call_id: a.call_id,
                at: chrono_date(a.at),
                outcome: a.outcome,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    Ok(Enrollment {
        id: x.id,
        campaign_id: x.campaign_id,
        contact_id: x.contact_id,
        status: x.status,
        attempts: u32::try_from(x.attempts).map_err(bad)?,
        history,
        next_attempt_at: chrono_date(x.next_attempt_at),
        last_outcome: x.last_outcome,
        reason: x.reason,
        lease: x.lease.map(|l| Lease { owner: l.owner, expires_at: chrono_date(l.expires_at) }),
        lease_token: x.lease_token,
        current_call_id: x.current_call_id,
        created_at: chrono_date(x.created_at),
        updated_at: chrono_date(x.updated_at),
        version: x.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docs::{CallDoc, EventDoc};
    use chrono::{DateTime, Utc};
    use mongodb::bson::Bson;
    use switchboard_domain::campaign::AgentSettings;
    use switchboard_domain::enrollment::Lease;
    use switchboard_domain::time::from_millis;
    use switchboard_domain::{CallEvent, CallUpdate, CampaignInput, ContactInput, EventId, Source};

    /// `2026-11-18T08:35:42.123Z`, `2026-11-18 08:35`, or anything chrono takes as RFC 3339.
    fn looks_like_rfc3339(s: &str) -> bool {
        let b = s.as_bytes();
        let digits = |r: std::ops::Range<usize>| r.clone().all(|i| b.get(i).is_some_and(u8::is_ascii_digit));
        DateTime::parse_from_rfc3339(s).is_ok()
            || (digits(0..4)
                && b.get(4) == Some(&b'-')
                && digits(5..7)
                && b.get(7) == Some(&b'-')
                && digits(8..10)
                && matches!(b.get(10), Some(b'T' | b't' | b' '))
                && digits(11..13)
                && b.get(13) == Some(&b':'))
    }

    /// Every string that looks like an instant, with its path; and how many BSON dates there are.
    fn scan(b: &Bson, path: &str, strings: &mut Vec<String>, dates: &mut Vec<String>) {
        match b {
            Bson::String(s) if looks_like_rfc3339(s) => strings.push(format!("{path} = {s}")),
            Bson::DateTime(_) => dates.push(path.to_owned()),
            Bson::Document(d) => d.iter().for_each(|(k, v)| scan(v, &format!("{path}.{k}"), strings, dates)),
            Bson::Array(a) => a.iter().enumerate().for_each(|(i, v)| scan(v, &format!("{path}[{i}]"), strings, dates)),
            _ => {}
        }
    }

    fn assert_dates_only(what: &str, d: &Document, must_be_dates: &[&str]) {
        let (mut strings, mut dates) = (Vec::new(), Vec::new());
        scan(&Bson::Document(d.clone()), "", &mut strings, &mut dates);
        assert!(strings.is_empty(), "{what}: instants stored as strings: {strings:?}");
        for p in must_be_dates {
            assert!(dates.iter().any(|x| x == p), "{what}: {p} is not a BSON date (dates: {dates:?})");
        }
    }

    fn at(ms: i64) -> DateTime<Utc> {
        from_millis(1_794_916_542_123 + ms)
    }

    #[test]
    fn the_detector_detects() {
        for s in ["2026-11-18T08:35:42.123Z", "2026-11-18T08:35:42+01:00", "2026-11-18 08:35:42"] {
            assert!(looks_like_rfc3339(s), "{s}");
        }
        for s in ["2026-12-25", "09:00", "+14155552671", "Mon, 30 Nov 2026 17:03:33 +0000", "enr_0193"] {
            assert!(!looks_like_rfc3339(s), "{s}");
        }
        let mut strings = Vec::new();
        scan(
            &Bson::Document(mongodb::bson::doc! { "a": [ { "b": "2026-11-18T08:35:42.123Z" } ] }),
            "",
            &mut strings,
            &mut Vec::new(),
        );
        assert_eq!(strings, [".a[0].b = 2026-11-18T08:35:42.123Z"]);
    }

    #[test]
    fn every_instant_the_adapter_writes_is_a_bson_date_at_any_depth() {
        let contact = ContactInput {
            phone: Some("+14155552671".into()),
            name: Some("Dana Scully".into()),
            email: Some("dana@fbi.gov".into()),
            tags: Some(vec!["vip".into()]),
            custom: Some(
                [("plan".to_owned(), serde_json::json!("gold")), ("visits".to_owned(), serde_json::json!(3))].into(),
            ),
            time_zone: Some("America/New_York".into()),
            location: Some(GeoPoint { lon: -77.03, lat: 38.9 }),
            do_not_call: Some(true),
            do_not_call_reason: Some("asked not to be called".into()),
            source: Some("import:leads.csv".into()),
        }
        .validate("US", at(0))
        .unwrap();
        let d = contact_doc(&contact).unwrap();
        assert_dates_only("contact", &d, &[".do_not_call.since", ".created_at", ".updated_at"]);
        assert_eq!(contact_from(d).unwrap(), contact);

        let mut campaign = CampaignInput {
            name: Some("Renewals".into()),
            agent: Some(AgentSettings {
                agent_id: "agent_7".into(),
                caller_id: Some("+15005550001".into()),
                dynamic_variables: [("greeting".to_owned(), "Hi {{contact.name}}".to_owned())].into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .apply(None, at(0))
        .unwrap();
        campaign.schedule.start_at = Some(at(60_000));
        campaign.schedule.end_at = Some(at(86_400_000));
        campaign.schedule.holidays = vec![NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()];
        campaign.inflight = vec!["enr_1:1".into()];
        campaign.dials = 4;
        let d = campaign_doc(&campaign).unwrap();
        assert_dates_only(
            "campaign",
            &d,
            &[".schedule.start_at", ".schedule.end_at", ".next_dial_at", ".created_at", ".updated_at"],
        );
        assert_eq!(campaign_from(d).unwrap(), campaign);

        let mut e = Enrollment::new(campaign.id.clone(), contact.id.clone(), at(0));
        e.placed(CallId::new(), at(1_000));
        e.record_outcome(&e.current_call_id.clone().unwrap(), Outcome::Busy, &campaign, at(2_000));
        e.placed(CallId::new(), at(3_000));
        e.lease = Some(Lease { owner: "dialer-1".into(), expires_at: at(4_000) });
        e.lease_token = 2;
        let d = enrollment_doc(&e).unwrap();
        assert_dates_only(
            "enrollment",
            &d,
            &[
                ".history[0].at",
                ".history[1].at",
                ".lease.expires_at",
                ".next_attempt_at",
                ".created_at",
                ".updated_at",
            ],
        );
        assert_eq!(enrollment_from(d).unwrap(), e);

        let mut call = switchboard_domain::Call::new_from(
            &CallUpdate {
                source: Some(Source::Twilio),
                observed_at: Some(at(0)),
                call_sid: Some("CA0123456789abcdef0123456789abcdef".into()),
                status: Some(switchboard_domain::CallStatus::InProgress),
                from: Some("+15005550001".into()),
                to: Some("+14155552671".into()),
                ..Default::default()
            },
            at(0),
        )
        .unwrap();
        call.ended_at = Some(at(37_000));
        let d = bson::serialize_to_document(&CallDoc::from(&call)).unwrap();
        assert_dates_only("call", &d, &[".started_at", ".answered_at", ".ended_at", ".created_at", ".updated_at"]);

        let event = CallEvent {
            id: EventId::new(),
            call_id: call.id.clone(),
            source: Source::Twilio,
            event_type: "twilio.status.completed".into(),
            occurred_at: at(37_000),
            received_at: at(37_120),
            dedupe_key: "twilio:CA01:3".into(),
            sequence: Some(3),
            payload: serde_json::json!({
                "CallSid": "CA0123456789abcdef0123456789abcdef",
                "CallStatus": "completed",
                "CallDuration": "37",
                "Timestamp": "Mon, 30 Nov 2026 17:03:33 +0000",
                "SequenceNumber": "3",
            }),
        };
        let d = bson::serialize_to_document(&EventDoc::try_from(&event).unwrap()).unwrap();
        assert_dates_only("event", &d, &[".occurred_at", ".received_at"]);
    }
}
