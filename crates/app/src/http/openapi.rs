//! The OpenAPI document (served at `/api/openapi.json`, committed as
//! `openapi.json` and checked for drift by a test) and Swagger UI at `/docs`
//! from vendored assets.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
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
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
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
        super::health::healthz,
        super::health::readyz,
    ),
    components(schemas(super::calls::CallOut, super::calls::CallPage, super::events::EventOut, super::events::EventPage, Problem, FieldError)),
    modifiers(&Bearer),
    tags((name = "calls", description = "Merged call records"), (name = "events", description = "Stored provider webhooks"), (name = "contacts", description = "Contacts, import and export"), (name = "campaigns", description = "Campaigns, enrollments, eligibility and preflight"), (name = "health", description = "Liveness and readiness"))
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
