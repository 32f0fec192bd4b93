//! OpenAPI schemas of the JSON whose Rust types live outside the HTTP layer:
//! the domain crate (which does not depend on utoipa) and `crate::import`.
//! Each struct here mirrors one type field by field and is used only for the
//! document (`#[schema(value_type = ...)]`, `body = ...`); the test
//! `openapi_schemas` compares real serialised values with these schemas so
//! they cannot drift apart unnoticed.
//!
//! Conventions: a response field that is always sent but may be `null` is
//! `required` and nullable; a request field that may be left out is optional
//! (and nullable where `null` means "not given"). Request bodies refuse
//! unknown fields (`additionalProperties: false`), as serde does.

#![allow(missing_docs)]

use std::borrow::Cow;
use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};
use utoipa::{PartialSchema, ToSchema};

/// A string enum whose values come from a domain `string_enum!` (its `ALL` list).
macro_rules! domain_enum {
    ($name:ident, $domain:ty, $doc:literal) => {
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($doc))
                    .enum_values(Some(<$domain>::ALL.iter().map(|v| v.as_str())))
                    .into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

domain_enum!(CallStatus, switchboard_domain::CallStatus, "Call status, as Twilio spells it.");
domain_enum!(Direction, switchboard_domain::Direction, "Call direction, as Twilio spells it.");
domain_enum!(AnsweredBy, switchboard_domain::AnsweredBy, "Answering-machine detection result.");
domain_enum!(Source, switchboard_domain::Source, "Who an event comes from.");
domain_enum!(CampaignStatus, switchboard_domain::CampaignStatus, "Campaign status.");
domain_enum!(DialMode, switchboard_domain::DialMode, "How calls are placed.");
domain_enum!(Day, switchboard_domain::campaign::Day, "A day of the week.");
domain_enum!(EnrollmentStatus, switchboard_domain::EnrollmentStatus, "Where an enrollment stands.");
domain_enum!(Outcome, switchboard_domain::Outcome, "What one call attempt came to.");

/// A string with a pattern (ids).
macro_rules! pattern_string {
    ($name:ident, $pattern:literal, $doc:literal) => {
        #[doc = $doc]
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new().schema_type(Type::String).description(Some($doc)).pattern(Some($pattern)).into()
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

pattern_string!(ContactId, "^con_[0-9a-f]{32}$", "A contact id: `con_` and 32 lowercase hex digits.");
pattern_string!(CampaignId, "^cmp_[0-9a-f]{32}$", "A campaign id: `cmp_` and 32 lowercase hex digits.");
pattern_string!(EnrollmentId, "^enr_[0-9a-f]{32}$", "An enrollment id: `enr_` and 32 lowercase hex digits.");
pattern_string!(CallId, "^call_[0-9a-f]{32}$", "A call id: `call_` and 32 lowercase hex digits.");

/// A custom contact field's value as stored: a string, number or boolean.
#[derive(Serialize)]
pub struct CustomValue;

impl PartialSchema for CustomValue {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(SchemaType::from_iter([Type::String, Type::Number, Type::Boolean]))
            .description(Some("A custom field's value: a string, number or boolean."))
            .into()
    }
}

impl ToSchema for CustomValue {}

/// Custom contact fields as sent: keys are non-empty, do not start with `$`
/// and contain no `.`; values are strings, numbers, booleans or `null`
/// (which removes the field). Anything else is refused with 400.
pub struct CustomInput;

impl PartialSchema for CustomInput {
    fn schema() -> RefOr<Schema> {
        let value = ObjectBuilder::new().schema_type(SchemaType::from_iter([
            Type::String,
            Type::Number,
            Type::Boolean,
            Type::Null,
        ]));
        let names = ObjectBuilder::new().schema_type(Type::String).pattern(Some("^[^$.][^.]*$"));
        let mut o = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Custom fields: keys non-empty, without a leading `$` and without `.`; values strings, numbers, \
                 booleans or null (null removes the field). Replaces the stored custom fields.",
            ))
            .additional_properties(Some(value))
            .build();
        o.property_names = Some(Box::new(names.build().into()));
        RefOr::T(Schema::Object(o))
    }
}

impl ToSchema for CustomInput {}

// ---- contacts ----

/// A tag as sent: non-empty, without commas, at most 64 bytes after trimming (stored lower-case).
pub struct Tag;

impl PartialSchema for Tag {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some("A tag: non-empty, without commas, at most 64 bytes after trimming (stored lower-case)"))
            .min_length(Some(1))
            .pattern(Some("^[^,]*$"))
            .into()
    }
}

impl ToSchema for Tag {}

/// A point on Earth.
#[derive(Serialize, ToSchema)]
pub struct GeoPoint {
    /// Longitude, −180..=180.
    #[schema(minimum = -180.0, maximum = 180.0)]
    pub lon: f64,
    /// Latitude, −90..=90.
    #[schema(minimum = -90.0, maximum = 90.0)]
    pub lat: f64,
}

/// Do-not-call status.
#[derive(Serialize, ToSchema)]
pub struct DoNotCall {
    /// Why.
    pub reason: String,
    /// Since when.
    pub since: DateTime<Utc>,
}

/// A stored contact.
#[derive(Serialize, ToSchema)]
pub struct Contact {
    /// Our id.
    #[schema(value_type = ContactId)]
    pub id: String,
    /// E.164, unique.
    #[schema(example = "+14155552671")]
    pub phone: String,
    /// ISO region of the number (`US`, `GB`), from the number itself.
    #[schema(required = true)]
    pub region: Option<String>,
    /// Display name.
    #[schema(required = true)]
    pub name: Option<String>,
    /// E-mail, lower-cased domain.
    #[schema(required = true)]
    pub email: Option<String>,
    /// Tags, lower-case, sorted, unique.
    pub tags: Vec<String>,
    /// Custom fields.
    pub custom: BTreeMap<String, CustomValue>,
    /// Explicit IANA time zone.
    #[schema(required = true)]
    pub time_zone: Option<String>,
    /// Location.
    #[schema(required = true)]
    pub location: Option<GeoPoint>,
    /// Do-not-call, when set.
    #[schema(required = true)]
    pub do_not_call: Option<DoNotCall>,
    /// Where the contact came from (`api`, `import:<id>`, `sheets:<id>`).
    #[schema(required = true)]
    pub source: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A new contact. Only `phone` is required; every bad field is reported at
/// once (400, `errors` names each). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCreate {
    /// Phone in any common format, normalised to E.164 with the default region (`(415) 555-2671` → `+14155552671`).
    #[schema(example = "+14155552671", min_length = 1)]
    pub phone: String,
    /// Name, at most 200 characters after trimming.
    pub name: Option<String>,
    /// E-mail; empty means none.
    pub email: Option<String>,
    /// Tags: each 1..=64 bytes after trimming, without commas (lower-cased, de-duplicated).
    #[schema(value_type = Option<Vec<Tag>>)]
    pub tags: Option<Vec<String>>,
    /// Custom fields.
    #[schema(value_type = Option<CustomInput>)]
    pub custom: Option<()>,
    /// IANA time zone; empty means none.
    pub time_zone: Option<String>,
    /// Location.
    pub location: Option<GeoPoint>,
    /// Do-not-call flag.
    pub do_not_call: Option<bool>,
    /// Reason, only with `do_not_call: true`.
    pub do_not_call_reason: Option<String>,
    /// Origin (default `api`).
    pub source: Option<String>,
}

/// A partial update of a contact: only the fields sent change; `null` or an
/// absent field leaves a field as it is (an empty `email` or `time_zone`
/// clears it, `do_not_call: false` lifts do-not-call). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPatch {
    /// Phone in any common format, normalised to E.164.
    #[schema(min_length = 1)]
    pub phone: Option<String>,
    /// Name, at most 200 characters after trimming; empty clears it.
    pub name: Option<String>,
    /// E-mail; empty clears it.
    pub email: Option<String>,
    /// Tags (replace the stored ones): each 1..=64 bytes after trimming, without commas.
    #[schema(value_type = Option<Vec<Tag>>)]
    pub tags: Option<Vec<String>>,
    /// Custom fields (replace the stored ones).
    #[schema(value_type = Option<CustomInput>)]
    pub custom: Option<()>,
    /// IANA time zone; empty clears it.
    pub time_zone: Option<String>,
    /// Location.
    pub location: Option<GeoPoint>,
    /// Do-not-call flag.
    pub do_not_call: Option<bool>,
    /// Reason, only with `do_not_call: true`.
    pub do_not_call_reason: Option<String>,
    /// Origin.
    pub source: Option<String>,
}

// ---- campaigns ----

/// The ElevenLabs agent a campaign uses and what it is told.
#[derive(Serialize, ToSchema)]
pub struct Agent {
    /// ElevenLabs `agent_id`.
    pub agent_id: String,
    /// ElevenLabs imported phone number id (ElevenLabs-native mode).
    #[schema(required = true)]
    pub phone_number_id: Option<String>,
    /// Caller ID (E.164) for Twilio-first mode.
    #[schema(required = true)]
    pub caller_id: Option<String>,
    /// First-message override.
    #[schema(required = true)]
    pub first_message: Option<String>,
    /// Prompt override.
    #[schema(required = true)]
    pub prompt: Option<String>,
    /// Dynamic variables (templated from the contact).
    pub dynamic_variables: BTreeMap<String, String>,
}

/// The agent settings as sent (they replace the stored ones whole).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    /// ElevenLabs `agent_id` (required, not blank).
    #[schema(min_length = 1, example = "agent_123")]
    pub agent_id: String,
    /// ElevenLabs phone number id; required in `elevenlabs_native` mode.
    pub phone_number_id: Option<String>,
    /// Caller ID, E.164; required in `twilio_first` mode.
    #[schema(pattern = r"^\+[1-9][0-9]{6,14}$", example = "+15005550001")]
    pub caller_id: Option<String>,
    /// First-message override.
    pub first_message: Option<String>,
    /// Prompt override.
    pub prompt: Option<String>,
    /// Dynamic variables; values may use `{{contact.name}}`, `{{contact.phone}}`, `{{contact.email}}`,
    /// `{{contact.custom.KEY}}`; keys starting with `system__` are refused.
    #[serde(default)]
    pub dynamic_variables: BTreeMap<String, String>,
}

/// A weekly calling window in the recipient's local time.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallingWindow {
    /// Days (at least one).
    #[schema(value_type = Vec<Day>, min_items = 1)]
    pub days: Vec<String>,
    /// Local start, `HH:MM`.
    #[schema(example = "09:00")]
    pub start: String,
    /// Local end (exclusive), `HH:MM`, after `start`.
    #[schema(example = "20:00")]
    pub end: String,
}

/// When a campaign may call.
#[derive(Serialize, ToSchema)]
pub struct Schedule {
    /// No call before this.
    #[schema(required = true)]
    pub start_at: Option<DateTime<Utc>>,
    /// No call from this on.
    #[schema(required = true)]
    pub end_at: Option<DateTime<Utc>>,
    /// Weekly windows (recipient-local); none means any time.
    pub windows: Vec<CallingWindow>,
    /// Local dates with no calls.
    pub holidays: Vec<NaiveDate>,
    /// IANA zone for contacts whose zone is unknown.
    pub time_zone: String,
}

/// The schedule as sent (replaces the stored one whole; a field left out
/// takes its default: windows Mon–Fri 09:00–20:00, no holidays, `America/New_York`).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// No call before this.
    pub start_at: Option<DateTime<Utc>>,
    /// No call from this on (after `start_at`).
    pub end_at: Option<DateTime<Utc>>,
    /// Weekly windows (recipient-local); an empty list means any time.
    #[serde(default)]
    pub windows: Vec<CallingWindow>,
    /// Local dates with no calls.
    #[serde(default)]
    pub holidays: Vec<NaiveDate>,
    /// IANA zone for contacts whose zone is unknown.
    #[serde(default)]
    #[schema(example = "America/New_York")]
    pub time_zone: String,
}

/// Calls at once and per minute.
#[derive(Serialize, ToSchema)]
pub struct Pacing {
    /// Calls in flight at once.
    pub max_concurrent: u32,
    /// Calls started per minute.
    pub calls_per_minute: u32,
}

/// Pacing as sent (a field left out takes its default: 5 at once, 30 a minute).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PacingInput {
    /// Calls in flight at once, 1..=1000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 1000)]
    pub max_concurrent: u32,
    /// Calls started per minute, 1..=6000.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 6000)]
    pub calls_per_minute: u32,
}

/// What to do after one outcome.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRule {
    /// Try again.
    pub retry: bool,
    /// After this many seconds, at most a year (31536000).
    #[schema(maximum = 31536000)]
    pub delay_secs: u64,
}

/// Retries per outcome and caps.
#[derive(Serialize, ToSchema)]
pub struct RetryPolicy {
    /// Busy signal.
    pub busy: RetryRule,
    /// No answer.
    pub no_answer: RetryRule,
    /// Answered by a machine.
    pub voicemail: RetryRule,
    /// Could not be placed / carrier failure.
    pub failed: RetryRule,
    /// Attempts in all.
    pub max_attempts: u32,
    /// Attempts per contact per recipient-local day.
    pub daily_cap: u32,
}

/// The retry policy as sent (replaces the stored one; a field left out takes its default).
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicyInput {
    /// Busy signal (default: retry after 1800 s).
    #[serde(default)]
    pub busy: RetryRule,
    /// No answer (default: retry after 7200 s).
    #[serde(default)]
    pub no_answer: RetryRule,
    /// Answered by a machine (default: retry after 14400 s).
    #[serde(default)]
    pub voicemail: RetryRule,
    /// Could not be placed (default: no retry).
    #[serde(default)]
    pub failed: RetryRule,
    /// Attempts in all, 1..=20 (default 3).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 20)]
    pub max_attempts: u32,
    /// Attempts per recipient-local day, 1..=10 (default 2).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    pub daily_cap: u32,
}

/// A stored campaign.
#[derive(Serialize, ToSchema)]
pub struct Campaign {
    /// Our id.
    #[schema(value_type = CampaignId)]
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    #[schema(required = true)]
    pub description: Option<String>,
    /// Status.
    #[schema(value_type = CampaignStatus)]
    pub status: String,
    /// Agent.
    pub agent: Agent,
    /// Schedule.
    pub schedule: Schedule,
    /// Pacing.
    pub pacing: Pacing,
    /// Retries.
    pub retry: RetryPolicy,
    /// Dialling mode.
    #[schema(value_type = DialMode)]
    pub dial_mode: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A new campaign (a draft). `name` and `agent` are required; every bad
/// field is reported at once (400). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignCreate {
    /// Name, 1..=200 characters after trimming.
    #[schema(min_length = 1)]
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Agent settings.
    pub agent: AgentInput,
    /// Schedule (default: Mon–Fri 09:00–20:00 recipient-local, `America/New_York`).
    pub schedule: Option<ScheduleInput>,
    /// Pacing (default 5 at once, 30 a minute).
    pub pacing: Option<PacingInput>,
    /// Retries.
    pub retry: Option<RetryPolicyInput>,
    /// Dialling mode (default `twilio_first`).
    #[schema(value_type = Option<DialMode>)]
    pub dial_mode: Option<String>,
}

/// A partial update of a campaign: only the fields sent change (`null` or
/// absent leaves a field as it is). After start only name, description and
/// pacing may change (409 otherwise). Unknown fields are refused.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignPatch {
    /// Name, 1..=200 characters after trimming.
    #[schema(min_length = 1)]
    pub name: Option<String>,
    /// Description; empty clears it.
    pub description: Option<String>,
    /// Agent settings (replace the stored ones).
    pub agent: Option<AgentInput>,
    /// Schedule (replaces the stored one).
    pub schedule: Option<ScheduleInput>,
    /// Pacing.
    pub pacing: Option<PacingInput>,
    /// Retries.
    pub retry: Option<RetryPolicyInput>,
    /// Dialling mode.
    #[schema(value_type = Option<DialMode>)]
    pub dial_mode: Option<String>,
}

// ---- enrollments ----

/// One attempt.
#[derive(Serialize, ToSchema)]
pub struct Attempt {
    /// 1-based.
    pub n: u32,
    /// The call placed.
    #[schema(value_type = CallId)]
    pub call_id: String,
    /// When it was placed.
    pub at: DateTime<Utc>,
    /// How it ended (null while in progress).
    #[schema(value_type = Option<Outcome>, required = true)]
    pub outcome: Option<String>,
}

/// A dialer's hold on an enrollment.
#[derive(Serialize, ToSchema)]
pub struct Lease {
    /// Dialer instance.
    pub owner: String,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
}

/// One contact in one campaign.
#[derive(Serialize, ToSchema)]
pub struct Enrollment {
    /// Our id.
    #[schema(value_type = EnrollmentId)]
    pub id: String,
    /// Campaign.
    #[schema(value_type = CampaignId)]
    pub campaign_id: String,
    /// Contact.
    #[schema(value_type = ContactId)]
    pub contact_id: String,
    /// Status.
    #[schema(value_type = EnrollmentStatus)]
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// The last attempts (at most 10), oldest first.
    pub history: Vec<Attempt>,
    /// Not before this (retry delay, next window).
    pub next_attempt_at: DateTime<Utc>,
    /// Outcome of the last finished attempt.
    #[schema(value_type = Option<Outcome>, required = true)]
    pub last_outcome: Option<String>,
    /// Why it is where it is (skip or failure reason).
    #[schema(required = true)]
    pub reason: Option<String>,
    /// The claim, while dialling.
    #[schema(required = true)]
    pub lease: Option<Lease>,
    /// Fencing token: incremented by every claim.
    pub lease_token: i64,
    /// The call of the current attempt, once placed.
    #[schema(value_type = Option<CallId>, required = true)]
    pub current_call_id: Option<String>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// One reason an enrollment cannot be dialled now, by `code`.
#[derive(Serialize, ToSchema)]
#[serde(tag = "code", rename_all = "snake_case")]
pub enum Blocker {
    /// The campaign is not running.
    CampaignNotRunning {
        /// Its status.
        #[schema(value_type = CampaignStatus)]
        status: String,
    },
    /// The enrollment is finished or a call is in flight.
    EnrollmentStatus {
        /// Its status.
        #[schema(value_type = EnrollmentStatus)]
        status: String,
    },
    /// The contact is on the do-not-call list.
    DoNotCall {
        /// Why.
        reason: String,
    },
    /// Every attempt is used.
    MaxAttemptsReached {
        /// The cap.
        max_attempts: u32,
    },
    /// Today's attempts are used (recipient-local day).
    DailyCapReached {
        /// The cap.
        daily_cap: u32,
    },
    /// Waiting out a retry delay.
    RetryDelay {
        /// Until when.
        until: DateTime<Utc>,
    },
    /// Outside the calling windows, before the start, or on a holiday (recipient-local).
    OutsideCallingWindow {
        /// The recipient's zone.
        time_zone: String,
        /// The recipient's local time now (`Thu 2026-11-26 06:00`).
        local_time: String,
    },
    /// The schedule never opens again.
    ScheduleClosed,
}

// ---- imports ----

/// One bad row of an import.
#[derive(Serialize, ToSchema)]
pub struct RowError {
    /// 1-based line of the file where the row starts (the header is line 1).
    pub line: u64,
    /// Field.
    pub field: String,
    /// Why.
    pub reason: String,
}

/// What an import found and did.
#[derive(Serialize, ToSchema)]
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
    #[schema(required = true)]
    pub message: Option<String>,
    /// The `source` the imported contacts carry (`import:<id>`).
    pub source: String,
    /// Contacts enrolled in `campaign_id` (already enrolled ones not counted).
    pub enrolled: u64,
}

/// The state of an import job.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportJobStatus {
    /// Still going.
    Running,
    /// Finished; `report` is set.
    Done,
    /// Failed; `error` is set and nothing of it stays written.
    Failed,
}

/// An import run over the API (`GET /api/v1/imports/{id}`).
#[derive(Serialize, ToSchema)]
pub struct ImportJob {
    /// `imp_…`.
    #[schema(pattern = "^imp_[0-9a-f]{32}$")]
    pub id: String,
    /// `running`, `done` or `failed`.
    pub status: ImportJobStatus,
    /// `queued`, `validating`, `validated`, `writing`, `written`, …
    pub stage: String,
    /// Rows read so far in the current stage.
    pub rows_read: u64,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    #[schema(required = true)]
    pub finished_at: Option<DateTime<Utc>>,
    /// The final report (`done`).
    #[schema(required = true)]
    pub report: Option<ImportReport>,
    /// Why it failed (`failed`).
    #[schema(required = true)]
    pub error: Option<String>,
}

/// An import still running after `import.sync_wait_ms` (202).
#[derive(Serialize, ToSchema)]
pub struct ImportAccepted {
    /// `imp_…`.
    #[schema(pattern = "^imp_[0-9a-f]{32}$")]
    pub id: String,
    /// Always `running`.
    #[schema(value_type = ImportJobStatus)]
    pub status: String,
    /// Where to poll: `/api/v1/imports/{id}`.
    pub status_url: String,
}

/// A contact row of an import sent as JSON (with `format=json`: an array of these objects).
pub struct ImportJsonRows;

impl PartialSchema for ImportJsonRows {
    fn schema() -> RefOr<Schema> {
        let row = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("One contact: columns by name (`phone`, `name`, `email`, `tags`, … or custom)"));
        utoipa::openapi::schema::ArrayBuilder::new().items(row).into()
    }
}

impl ToSchema for ImportJsonRows {}

/// The file part of a multipart import.
#[derive(ToSchema)]
pub struct ImportUpload {
    /// The file (CSV, JSON array or NDJSON, per `format`).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

// ---- health ----

/// `/healthz`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`.
    #[schema(example = "ok")]
    pub status: String,
}

/// `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `unavailable`.
    #[schema(example = "ready")]
    pub status: String,
    /// The store backend (`sqlite`, `mongodb`).
    pub store: String,
    /// Why it is unavailable.
    pub reason: Option<String>,
    /// The read cache: `backend` (`redis`, `memory`, `off`) and `status`
    /// (`ok`, or `degraded: …` while Redis is unreachable; never unready for it).
    pub cache: Option<CacheStatus>,
    /// The live feed: `bus` (`local`, or `redis` between instances) and
    /// `status` (`ok`, or `degraded: …` while Redis is unreachable).
    pub live: Option<LiveStatus>,
}

/// The live feed in `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct LiveStatus {
    /// `local` or `redis`.
    pub bus: String,
    /// `ok` or `degraded: …`.
    pub status: String,
}

/// The read cache in `/readyz`.
#[derive(Serialize, ToSchema)]
pub struct CacheStatus {
    /// `redis`, `memory` or `off`.
    pub backend: String,
    /// `ok` or `degraded: …`.
    pub status: String,
}

/// Whether an enrollment can be dialled now, every reason why not, and when next.
#[derive(Serialize, ToSchema)]
pub struct Eligibility {
    /// Dialable now.
    pub dialable: bool,
    /// Every reason it is not (empty when dialable).
    pub reasons: Vec<Blocker>,
    /// When it next becomes dialable (ignoring a paused campaign); null if never.
    #[schema(required = true)]
    pub next_dialable_at: Option<DateTime<Utc>>,
    /// The zone its windows are evaluated in.
    pub time_zone: String,
}
