//! The OpenAPI document (served at `/api/openapi.json`, committed as
//! `openapi.json` and checked for drift by a test) and Swagger UI at `/docs`
//! from vendored assets.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, Ref, RefOr};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::AppState;
use crate::error::{FieldError, Problem};

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API token from `api_tokens` (`SWITCHBOARD_API_TOKENS`)"))
                    .build(),
            ),
        );
    }
}

/// A problem+json response (the `Problem` schema).
fn problem_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new()
        .description(description)
        .content("application/problem+json", Content::new(Some(Ref::from_schema_name("Problem"))))
}

/// The responses every operation can give whatever its handler does, added
/// where a handler does not document the status itself: 401 on every bearer
/// route (from the auth layer, before the handler), 503 (the request timeout,
/// or the store unavailable; with `Retry-After`), 414 and 431 (request head limits).
struct CommonResponses;

impl CommonResponses {
    const SHARED: &[(&str, &str)] = &[("503", "Unavailable"), ("414", "UriTooLong"), ("431", "HeadersTooLarge")];
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let retry_after = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
            .description(Some("Seconds to wait before retrying"))
            .build();
        let www_authenticate = HeaderBuilder::new()
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some("`Bearer`"))
            .build();
        let components = openapi.components.get_or_insert_with(Default::default);
        let reusable = [
            (
                "Unauthorized",
                problem_response("Missing or unknown bearer token (`unauthorized`)")
                    .header("WWW-Authenticate", www_authenticate)
                    .build(),
            ),
            (
                "Unavailable",
                problem_response(
                    "The database did not answer (`store_unavailable`) or the request did not finish within \
                     `request_timeout_secs` (`request_timeout`); retry after `Retry-After` seconds",
                )
                .header("Retry-After", retry_after)
                .build(),
            ),
            ("UriTooLong", problem_response("The URI is over `http.max_uri_bytes` (`uri_too_long`)").build()),
            (
                "HeadersTooLarge",
                problem_response("Over 100 headers or `http.max_header_bytes` (`headers_too_large`)").build(),
            ),
        ];
        for (name, response) in reusable {
            components.responses.insert(name.to_owned(), RefOr::T(response));
        }
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
                &mut item.head,
                &mut item.options,
                &mut item.trace,
            ];
            for op in operations.into_iter().flatten() {
                let bearer = op
                    .security
                    .as_ref()
                    .is_some_and(|s| serde_json::to_value(s).is_ok_and(|v| v.to_string().contains("\"bearer\"")));
                let responses = &mut op.responses.responses;
                if bearer {
                    responses
                        .entry("401".to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::new("#/components/responses/Unauthorized")));
                }
                for (status, name) in Self::SHARED {
                    responses
                        .entry((*status).to_owned())
                        .or_insert_with(|| RefOr::Ref(Ref::new(format!("#/components/responses/{name}"))));
                }
            }
        }
    }
}

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(title = "Switchboard API", description = "System of record and control plane for AI voice calling on ElevenLabs Agents and Twilio."),
    paths(
        super::calls::list_calls,
        super::calls::get_call,
        super::calls::list_call_events,
        super::events::list_events,
        super::contacts::create,
        super::contacts::list,
        super::contacts::lookup,
        super::contacts::get_one,
        super::contacts::patch,
        super::contacts::delete,
        super::contacts::calls,
        super::contacts::import,
        super::contacts::get_import,
        super::contacts::export,
        super::campaigns::create,
        super::campaigns::list,
        super::campaigns::get_one,
        super::campaigns::patch,
        super::campaigns::remove,
        super::campaigns::start,
        super::campaigns::pause,
        super::campaigns::resume,
        super::campaigns::cancel,
        super::campaigns::enroll,
        super::campaigns::list_enrollments,
        super::campaigns::remove_enrollment,
        super::campaigns::eligibility,
        super::campaigns::progress,
        super::campaigns::preflight,
        super::campaigns::analytics,
        super::sheets::create,
        super::sheets::list,
        super::sheets::get_one,
        super::sheets::patch,
        super::sheets::remove,
        super::sheets::sync,
        super::sheets::preview,
        super::transcripts::call_transcript,
        super::transcripts::call_recordings,
        super::transcripts::get_recording,
        super::transcripts::recording_media,
        super::transcripts::get_transcript,
        super::transcripts::search,
        super::insights::conversations,
        super::dashboard::summary,
        super::dashboard::timeseries,
        super::dashboard::performance,
        super::jobs::list_jobs,
        super::health::healthz,
        super::health::readyz,
    ),
    components(schemas(
        super::calls::CallOut, super::calls::CallPage, super::calls::CallSortParam, super::events::EventOut, super::events::EventPage,
        super::contacts::ContactSortParam, super::contacts::ImportFormatParam, super::contacts::OnDuplicateParam, super::contacts::ExportFormatParam,
        super::jobs::JobOut, super::jobs::JobList,
        super::transcripts::RecordingOut, super::transcripts::RecordingList, super::transcripts::TurnOut, super::transcripts::CriterionOut, super::transcripts::DataPointOut, super::transcripts::TranscriptOut, super::transcripts::SearchHitOut, super::transcripts::SearchPage,
        super::dashboard::MetricParam, super::dashboard::IntervalParam, super::dashboard::Summary, super::dashboard::PeriodFigures, super::dashboard::Change, super::dashboard::TimeSeries, super::dashboard::Point, super::dashboard::Performance, super::dashboard::FunnelStep, super::dashboard::Quality, super::dashboard::QualityPoint,
        super::insights::ConversationInsights, super::insights::InsightGroup, super::insights::Counted, super::insights::CriterionStats, super::insights::FillStats,
        super::sheets::SheetLinkOut, super::sheets::SheetLinkPage, super::sheets::SheetLinkBody, super::sheets::SyncStateOut, super::sheets::RowIssueOut, super::sheets::SheetPreview, super::sheets::PreviewRow,
        Problem, FieldError,
    )),
    modifiers(&Bearer, &CommonResponses),
    tags((name = "calls", description = "Merged call records"), (name = "events", description = "Stored provider webhooks"), (name = "contacts", description = "Contacts, import and export"), (name = "campaigns", description = "Campaigns, enrollments, eligibility and preflight"), (name = "sheets", description = "Google Sheets links: bidirectional sync of contact lists and campaign status"), (name = "transcripts", description = "Recordings, transcripts, conversation analysis and transcript search"), (name = "dashboard", description = "Dashboard figures from the analytics rollups: summary, time series, campaign performance"), (name = "jobs", description = "Leased background jobs: last run, last error, next run"), (name = "health", description = "Liveness and readiness"))
)]
pub struct ApiDoc;

/// The document as pretty JSON (what is committed).
pub fn document() -> String {
    let mut doc = ApiDoc::openapi();
    // The crate version would make the committed file churn on every release bump.
    doc.info.version = "v1".into();
    doc.to_pretty_json().expect("the OpenAPI document serialises")
}

/// `/docs` (Swagger UI) and `/api/openapi.json`.
pub fn router() -> axum::Router<AppState> {
    let mut doc = ApiDoc::openapi();
    doc.info.version = "v1".into();
    axum::Router::new().merge(SwaggerUi::new("/docs").url("/api/openapi.json", doc))
}
