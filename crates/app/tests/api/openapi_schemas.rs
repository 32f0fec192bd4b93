//! The OpenAPI document against the code: its shape (unique operation ids,
//! a description on every response, the statuses every route can give), and
//! real responses of every operation checked against the schemas it
//! documents for them, so the hand-written schemas of domain types
//! (`http::schemas`) cannot drift from what the API sends. Also the input
//! checks schema-driven testing asked for.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{API_TOKEN, TestApp, refs, sid, status_params};

fn document() -> Value {
    serde_json::from_str(&switchboard::http::openapi::document()).unwrap()
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let ptr = r.strip_prefix('#').expect("local $ref");
            resolve(doc, doc.pointer(ptr).unwrap_or_else(|| panic!("dangling $ref {r}")))
        }
        None => v,
    }
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn operations(doc: &Value) -> Vec<(String, String, &Value)> {
    let mut out = vec![];
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if let Some(op) = item.get(m) {
                out.push((m.to_owned(), path.clone(), op));
            }
        }
    }
    out
}

#[test]
fn every_operation_has_a_unique_id_and_documents_what_every_route_can_answer() {
    let doc = document();
    let mut ids = std::collections::HashSet::new();
    let ops = operations(&doc);
    assert!(ops.len() >= 32, "{} operations", ops.len());
    for (m, path, op) in ops {
        let label = format!("{} {path}", m.to_uppercase());
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{label}: no operationId"));
        assert!(ids.insert(id.to_owned()), "{label}: duplicate operationId {id}");
        let responses = op["responses"].as_object().unwrap();
        for (status, r) in responses {
            let r = resolve(&doc, r);
            assert!(r["description"].as_str().is_some_and(|d| !d.is_empty()), "{label} {status}: no description");
            let code: u16 = status.parse().unwrap();
            if (200..300).contains(&code) && code != 204 {
                assert!(r["content"].as_object().is_some_and(|c| !c.is_empty()), "{label} {status}: no body schema");
            }
            if code >= 400 && !(id == "import_contacts" && code == 422) {
                let problem = &r["content"]["application/problem+json"]["schema"]["$ref"];
                assert_eq!(problem, "#/components/schemas/Problem", "{label} {status}: not a problem+json response");
            }
        }
        let bearer = op["security"].to_string().contains("bearer");
        assert_eq!(bearer, path.starts_with("/api/v1/"), "{label}: bearer security");
        let mut needed = vec!["503", "414", "431"];
        if bearer {
            needed.push("401");
        }
        if op["requestBody"]["content"].get("application/json").is_some() && id != "import_contacts" {
            needed.extend(["400", "413", "415"]);
        }
        if path.contains('{') && !path.starts_with("/api/v1/calls") && !path.starts_with("/api/v1/imports") {
            needed.extend(["400", "404"]);
        }
        if op["parameters"].as_array().is_some_and(|ps| ps.iter().any(|p| p["in"] == "query")) {
            needed.push("400");
        }
        for status in needed {
            assert!(responses.contains_key(status), "{label}: {status} undocumented");
        }
    }
    assert_eq!(doc["components"]["responses"]["Unavailable"]["headers"]["Retry-After"]["schema"]["type"], "integer");
}

#[test]
fn the_schema_check_flags_undocumented_missing_and_mistyped_fields() {
    let doc = document();
    let schema = json!({"$ref": "#/components/schemas/Enrolled"});
    let mut errs = vec![];
    check(&doc, &schema, &json!({"added": 1, "already_enrolled": 0}), "$", &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    for bad in [
        json!({"added": 1, "already_enrolled": 0, "new_field": 2}),
        json!({"added": 1}),
        json!({"added": "1", "already_enrolled": 0}),
    ] {
        let mut errs = vec![];
        check(&doc, &schema, &bad, "$", &mut errs);
        assert!(!errs.is_empty(), "{bad} passed");
    }
    let mut errs = vec![];
    let blocker = json!({"$ref": "#/components/schemas/Blocker"});
    check(&doc, &blocker, &json!({"code": "schedule_closed"}), "$", &mut errs);
    check(&doc, &blocker, &json!({"code": "daily_cap_reached", "daily_cap": 2}), "$", &mut errs);
    assert!(errs.is_empty(), "{errs:?}");
    check(&doc, &blocker, &json!({"code": "no_such_reason"}), "$", &mut errs);
    assert_eq!(errs.len(), 1);
}

/// A JSON Schema check of the keywords the document uses. Object schemas are
/// also held to their declared properties (no undocumented field), which is
/// what catches a domain field missing from a mirror schema.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check_shallow(doc, s, v, at, errs);
        }
        if let Some(o) = v.as_object() {
            let declared = declared(doc, schema);
            for k in o.keys().filter(|k| !declared.contains(*k)) {
                errs.push(format!("{at}.{k}: not in the schema"));
            }
        }
        return;
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let ok = one
            .iter()
            .filter(|s| {
                let mut e = vec![];
                check(doc, s, v, at, &mut e);
                e.is_empty()
            })
            .count();
        if ok != 1 {
            errs.push(format!("{at}: matches {ok} of oneOf, not 1: {v}"));
        }
        return;
    }
    check_shallow(doc, schema, v, at, errs);
    if let (Some(o), Some(props)) = (v.as_object(), schema["properties"].as_object())
        && schema.get("additionalProperties").is_none()
    {
        for k in o.keys().filter(|k| !props.contains_key(*k)) {
            errs.push(format!("{at}.{k}: not in the schema"));
        }
    }
}

fn declared(doc: &Value, schema: &Value) -> Vec<String> {
    let schema = resolve(doc, schema);
    let mut out: Vec<String> =
        schema["properties"].as_object().map(|p| p.keys().cloned().collect()).unwrap_or_default();
    for s in schema["allOf"].as_array().into_iter().flatten() {
        out.extend(declared(doc, s));
    }
    out
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "null" => v.is_null(),
        "boolean" => v.is_boolean(),
        "string" => v.is_string(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64(),
        other => panic!("type {other}"),
    }
}

fn check_shallow(doc: &Value, schema: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let schema = resolve(doc, schema);
    if schema.get("allOf").is_some() || schema.get("oneOf").is_some() {
        return check(doc, schema, v, at, errs);
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() && !types.iter().any(|t| type_ok(t, v)) {
        errs.push(format!("{at}: {v} is not {types:?}"));
        return;
    }
    if let Some(e) = schema["enum"].as_array()
        && !e.contains(v)
    {
        errs.push(format!("{at}: {v} not in {e:?}"));
    }
    if let (Some(s), Some(f)) = (v.as_str(), schema["format"].as_str()) {
        let ok = match f {
            "date-time" => chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            "date" => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok(),
            _ => true,
        };
        if !ok {
            errs.push(format!("{at}: {s} is not a {f}"));
        }
    }
    if let Some(n) = v.as_f64()
        && (schema["minimum"].as_f64().is_some_and(|m| n < m) || schema["maximum"].as_f64().is_some_and(|m| n > m))
    {
        errs.push(format!("{at}: {n} out of bounds"));
    }
    if let Some(o) = v.as_object() {
        for r in schema["required"].as_array().into_iter().flatten() {
            if !o.contains_key(r.as_str().unwrap()) {
                errs.push(format!("{at}: required {r} missing"));
            }
        }
        let props = schema["properties"].as_object();
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(s) => check(doc, s, x, &format!("{at}.{k}"), errs),
                None => match schema.get("additionalProperties") {
                    Some(Value::Bool(false)) => errs.push(format!("{at}.{k}: not allowed")),
                    Some(s @ Value::Object(_)) => check(doc, s, x, &format!("{at}.{k}"), errs),
                    _ => {}
                },
            }
        }
    }
    if let (Some(a), Some(items)) = (v.as_array(), schema.get("items")) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"), errs);
        }
    }
}

struct Checked<'a> {
    app: &'a TestApp,
    doc: Value,
    seen: std::collections::BTreeSet<String>,
}

impl Checked<'_> {
    /// Sends a request and checks the answer against what the document says
    /// `method template` answers with that status and content type.
    async fn send(&mut self, method: Method, template: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req =
            self.app.client.request(method.clone(), format!("{}{path}", self.app.base)).bearer_auth(API_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.unwrap();
        let status = r.status();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        let text = r.text().await.unwrap();
        let m = method.as_str().to_lowercase();
        let op = &self.doc["paths"][template][&m];
        assert!(op.is_object(), "{m} {template} undocumented");
        let label = format!("{} {path} -> {status}", method.as_str());
        let response = resolve(&self.doc, &op["responses"][status.as_str()]);
        assert!(response.is_object(), "{label}: status undocumented ({text})");
        self.seen.insert(format!("{} {}", op["operationId"].as_str().unwrap(), status.as_u16()));
        if status == StatusCode::NO_CONTENT {
            return (status, Value::Null);
        }
        let essence = ct.split(';').next().unwrap_or("").trim().to_owned();
        let schema = response["content"]
            .as_object()
            .and_then(|c| c.iter().find(|(k, _)| k.split(';').next().unwrap().trim() == essence))
            .map(|(_, v)| v["schema"].clone())
            .unwrap_or_else(|| panic!("{label}: content type {ct} undocumented"));
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{label}: not JSON ({e}): {text}"));
        let mut errs = vec![];
        check(&self.doc, &schema, &value, "$", &mut errs);
        assert!(errs.is_empty(), "{label}: the body does not match its schema:\n{}\n{value}", errs.join("\n"));
        (status, value)
    }
}

#[tokio::test]
async fn real_responses_of_every_operation_match_their_documented_schemas() {
    let app = TestApp::spawn().await;
    let mut c = Checked { app: &app, doc: document(), seen: Default::default() };
    use Method as M;

    // Calls and events, from Twilio callbacks.
    for (seq, status) in ["initiated", "ringing", "in-progress", "completed"].iter().enumerate() {
        let p = status_params(&sid(1), seq as u32, status);
        assert!(app.twilio("/webhooks/twilio/status", &refs(&p)).await.status().is_success());
    }
    let (_, calls) = c.send(M::GET, "/api/v1/calls", "/api/v1/calls?status=completed&limit=5", None).await;
    let call = calls["data"][0]["id"].as_str().unwrap().to_owned();
    c.send(M::GET, "/api/v1/calls/{id}", &format!("/api/v1/calls/{call}"), None).await;
    c.send(M::GET, "/api/v1/calls/{id}", "/api/v1/calls/nope", None).await;
    c.send(M::GET, "/api/v1/calls/{id}/events", &format!("/api/v1/calls/{}/events", sid(1)), None).await;
    c.send(M::GET, "/api/v1/events", "/api/v1/events?type=twilio.status.*", None).await;
    c.send(M::GET, "/api/v1/calls", "/api/v1/calls?limit=", None).await;

    // Transcripts and recordings (from an ElevenLabs post-call webhook for the call above).
    let data = json!({"type": "post_call_transcription", "event_timestamp": chrono::Utc::now().timestamp(),
        "data": {"agent_id": "agent_1", "conversation_id": "conv_schemas", "status": "done",
            "transcript": [{"role": "agent", "message": "Hello", "time_in_call_secs": 0},
                {"role": "user", "message": "I need a refund, call 415 555 2671", "time_in_call_secs": 2}],
            "metadata": {"start_time_unix_secs": chrono::Utc::now().timestamp() - 30, "call_duration_secs": 20,
                "phone_call": {"type": "twilio", "call_sid": sid(1)}},
            "analysis": {"call_successful": "success", "transcript_summary": "Refund asked.",
                "evaluation_criteria_results": {"ok": {"criteria_id": "ok", "result": "success", "rationale": null}},
                "data_collection_results": {"n": {"data_collection_id": "n", "value": 3, "rationale": null}}},
            "has_audio": true}});
    assert_eq!(app.elevenlabs(&data).await.status(), StatusCode::OK);
    let (_, t) =
        c.send(M::GET, "/api/v1/calls/{id}/transcript", &format!("/api/v1/calls/{call}/transcript"), None).await;
    c.send(M::GET, "/api/v1/transcripts/{id}", &format!("/api/v1/transcripts/{}", t["id"].as_str().unwrap()), None)
        .await;
    c.send(M::GET, "/api/v1/transcripts/{id}", "/api/v1/transcripts/nope", None).await;
    let (_, recs) =
        c.send(M::GET, "/api/v1/calls/{id}/recordings", &format!("/api/v1/calls/{call}/recordings"), None).await;
    c.send(
        M::GET,
        "/api/v1/recordings/{id}",
        &format!("/api/v1/recordings/{}", recs["data"][0]["id"].as_str().unwrap()),
        None,
    )
    .await;
    c.send(M::GET, "/api/v1/transcripts/search", "/api/v1/transcripts/search?q=refund&sort=newest", None).await;
    c.send(M::GET, "/api/v1/transcripts/search", "/api/v1/transcripts/search?q=%22open", None).await;
    c.send(M::GET, "/api/v1/analytics/conversations", "/api/v1/analytics/conversations?group_by=campaign", None).await;

    // Contacts.
    let full = json!({"phone": "(415) 555-2671", "name": "Dana Scully", "email": "Dana@FBI.gov", "tags": ["VIP", "west"],
        "custom": {"plan": "gold", "seats": 3, "trial": false}, "time_zone": "America/Los_Angeles",
        "location": {"lon": -122.4, "lat": 37.7}, "do_not_call": true, "do_not_call_reason": "asked"});
    let (s, dana) = c.send(M::POST, "/api/v1/contacts", "/api/v1/contacts", Some(full.clone())).await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = c.send(M::POST, "/api/v1/contacts", "/api/v1/contacts", Some(full)).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (_, fox) =
        c.send(M::POST, "/api/v1/contacts", "/api/v1/contacts", Some(json!({"phone": "+442079460018"}))).await;
    let (dana, fox) = (dana["id"].as_str().unwrap().to_owned(), fox["id"].as_str().unwrap().to_owned());
    c.send(M::POST, "/api/v1/contacts", "/api/v1/contacts", Some(json!({"phone": "x", "extra": 1}))).await;
    c.send(M::GET, "/api/v1/contacts", "/api/v1/contacts?tag=vip&dnc=true&sort=created_at", None).await;
    c.send(M::GET, "/api/v1/contacts", "/api/v1/contacts?cursor=nope", None).await;
    c.send(M::GET, "/api/v1/contacts/lookup", "/api/v1/contacts/lookup?phone=%2B14155552671", None).await;
    c.send(M::GET, "/api/v1/contacts/{id}", &format!("/api/v1/contacts/{dana}"), None).await;
    c.send(M::GET, "/api/v1/contacts/{id}", "/api/v1/contacts/nope", None).await;
    c.send(M::GET, "/api/v1/contacts/{id}", &format!("/api/v1/contacts/con_{}", "0".repeat(32)), None).await;
    c.send(M::PATCH, "/api/v1/contacts/{id}", &format!("/api/v1/contacts/{fox}"), Some(json!({"name": "Fox"}))).await;
    c.send(M::GET, "/api/v1/contacts/{id}/calls", &format!("/api/v1/contacts/{dana}/calls"), None).await;

    // Campaigns and enrollments.
    let body = json!({"name": "Renewals", "agent": {"agent_id": "agent_1", "caller_id": "+15005550001",
        "dynamic_variables": {"customer": "{{contact.name}}"}}, "schedule": {"windows": [], "holidays": ["2026-12-25"]}});
    let (s, cmp) = c.send(M::POST, "/api/v1/campaigns", "/api/v1/campaigns", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED);
    let cmp = cmp["id"].as_str().unwrap().to_owned();
    let at = |tail: &str| format!("/api/v1/campaigns/{cmp}{tail}");
    c.send(M::GET, "/api/v1/campaigns", "/api/v1/campaigns?status=draft,running", None).await;
    c.send(M::GET, "/api/v1/campaigns/{id}", &at(""), None).await;
    c.send(M::PATCH, "/api/v1/campaigns/{id}", &at(""), Some(json!({"description": "Q4"}))).await;
    let (_, enrolled) = c
        .send(M::POST, "/api/v1/campaigns/{id}/contacts", &at("/contacts"), Some(json!({"contact_ids": [dana, fox]})))
        .await;
    assert_eq!(enrolled["added"], 2);
    c.send(M::GET, "/api/v1/campaigns/{id}/contacts", &at("/contacts?status=pending"), None).await;
    for who in [&dana, &fox] {
        let path = at(&format!("/contacts/{who}/eligibility"));
        c.send(M::GET, "/api/v1/campaigns/{id}/contacts/{contact_id}/eligibility", &path, None).await;
    }
    c.send(M::POST, "/api/v1/campaigns/{id}/preflight", &at("/preflight"), None).await;
    c.send(M::POST, "/api/v1/campaigns/{id}/start", &at("/start"), None).await;
    c.send(M::POST, "/api/v1/campaigns/{id}/start", &at("/start"), None).await;
    c.send(M::GET, "/api/v1/campaigns/{id}/progress", &at("/progress"), None).await;
    c.send(M::GET, "/api/v1/campaigns/{id}/analytics", &at("/analytics"), None).await;
    c.send(M::POST, "/api/v1/campaigns/{id}/pause", &at("/pause"), None).await;
    c.send(M::POST, "/api/v1/campaigns/{id}/resume", &at("/resume"), None).await;
    c.send(M::DELETE, "/api/v1/campaigns/{id}", &at(""), None).await;
    let path = at(&format!("/contacts/{fox}"));
    c.send(M::DELETE, "/api/v1/campaigns/{id}/contacts/{contact_id}", &path, None).await;
    c.send(M::POST, "/api/v1/campaigns/{id}/cancel", &at("/cancel"), None).await;
    c.send(M::DELETE, "/api/v1/campaigns/{id}", &at(""), None).await;
    c.send(M::DELETE, "/api/v1/contacts/{id}", &format!("/api/v1/contacts/{fox}"), None).await;

    // Imports and export (the export is CSV, not checked as JSON).
    let csv = b"phone,name\n+14155550100,Ada\nnope,Bob\n".to_vec();
    let (s, report) = app.post_bytes("/api/v1/contacts/import?dry_run=true", csv.clone(), "text/csv").await;
    assert_eq!(s, StatusCode::OK);
    let (s, failed) = app.post_bytes("/api/v1/contacts/import", csv, "text/csv").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let doc = document();
    for (value, status) in [(report, "200"), (failed, "422")] {
        let schema = &doc["paths"]["/api/v1/contacts/import"]["post"]["responses"][status]["content"]["application/json"]
            ["schema"];
        let mut errs = vec![];
        check(&doc, schema, &value, "$", &mut errs);
        assert!(errs.is_empty(), "import {status}: {errs:?}\n{value}");
    }
    let job = switchboard::import::ImportRegistry::default();
    let id = job.start();
    let value = serde_json::to_value(job.get(&id).unwrap()).unwrap();
    let mut errs = vec![];
    check(&doc, &json!({"$ref": "#/components/schemas/ImportJob"}), &value, "$", &mut errs);
    assert!(errs.is_empty(), "import job: {errs:?}\n{value}");
    c.send(M::GET, "/api/v1/imports/{id}", "/api/v1/imports/imp_nope", None).await;

    // Sheet links (no Google account here: sync and preview answer 503 not_configured).
    let (s, link) = c
        .send(
            M::POST,
            "/api/v1/sheet-links",
            "/api/v1/sheet-links",
            Some(json!({"spreadsheet": "1SheetForSchemas", "tab": "Leads"})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let lnk = link["id"].as_str().unwrap().to_owned();
    let at = |tail: &str| format!("/api/v1/sheet-links/{lnk}{tail}");
    c.send(M::POST, "/api/v1/sheet-links", "/api/v1/sheet-links", Some(json!({"spreadsheet": "x"}))).await;
    c.send(M::GET, "/api/v1/sheet-links", "/api/v1/sheet-links?limit=5", None).await;
    c.send(M::GET, "/api/v1/sheet-links/{id}", &at(""), None).await;
    c.send(M::GET, "/api/v1/sheet-links/{id}", "/api/v1/sheet-links/nope", None).await;
    c.send(
        M::PATCH,
        "/api/v1/sheet-links/{id}",
        &at(""),
        Some(json!({"poll_secs": 30, "mapping": {"Mobile": "phone"}})),
    )
    .await;
    c.send(M::POST, "/api/v1/sheet-links/{id}/sync", &at("/sync"), None).await;
    c.send(M::GET, "/api/v1/sheet-links/{id}/preview", &at("/preview"), None).await;
    c.send(M::DELETE, "/api/v1/sheet-links/{id}", &at(""), None).await;

    // Jobs: one finished run with an error, one running.
    let runner = switchboard::jobs::runner::Runner::new(app.state.store.clone(), "test-instance");
    let sched = |name: &str| switchboard::jobs::runner::Schedule {
        name: name.into(),
        every: chrono::Duration::minutes(5),
        lease: chrono::Duration::seconds(30),
    };
    runner.run_once(&sched("failing"), false, |_| async { anyhow::bail!("boom") as anyhow::Result<()> }).await.unwrap();
    app.state
        .store
        .acquire_lease("running", "test-instance", chrono::Utc::now(), chrono::Duration::seconds(30), false)
        .await
        .unwrap();
    let (_, jobs) = c.send(M::GET, "/api/v1/jobs", "/api/v1/jobs", None).await;
    let job = |name: &str| jobs["data"].as_array().unwrap().iter().find(|j| j["name"] == name).cloned().unwrap();
    assert_eq!(
        (job("failing")["last_error"].as_str(), job("failing")["running"].as_bool()),
        (Some("boom"), Some(false))
    );
    assert_eq!(
        (job("running")["running"].as_bool(), job("running")["owner"].as_str()),
        (Some(true), Some("test-instance"))
    );

    // Health.
    c.send(M::GET, "/healthz", "/healthz", None).await;
    c.send(M::GET, "/readyz", "/readyz", None).await;

    let seen: Vec<_> = c.seen.iter().cloned().collect();
    for expected in
        ["create_contact 409", "get_contact 400", "get_contact 404", "start_campaign 409", "delete_campaign 409"]
    {
        assert!(seen.iter().any(|s| s == expected), "{expected} not exercised: {seen:?}");
    }
}

#[tokio::test]
async fn bad_input_that_schema_driven_testing_found_is_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let field = |v: &Value| v["errors"][0]["field"].as_str().unwrap_or_default().to_owned();
    // Typed query parameters: an empty value is an error, not an absent one; limit is decimal digits.
    for (path, name) in [
        ("/api/v1/calls?limit=", "limit"),
        ("/api/v1/calls?limit=%2B5", "limit"),
        ("/api/v1/events?limit=5.0", "limit"),
        ("/api/v1/calls?started_before=", "started_before"),
        ("/api/v1/calls?sort=", "sort"),
        ("/api/v1/calls?status=", "status"),
        ("/api/v1/contacts?dnc=", "dnc"),
        ("/api/v1/campaigns?status=running,", "status"),
        ("/api/v1/contacts?cursor=nope", "cursor"),
        ("/api/v1/campaigns?cursor=nope", "cursor"),
    ] {
        let (s, v) = app.call(Method::GET, path, None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}: {v}");
        assert_eq!(field(&v), name, "{path}: {v}");
    }
    // Free-text parameters may still be empty.
    let (s, _) = app.call(Method::GET, "/api/v1/contacts?search=&cursor=", None).await;
    assert_eq!(s, StatusCode::OK);

    // An object is never read from an array of its field values.
    let agent = json!({"agent_id": "a", "caller_id": "+15005550001"});
    for body in [
        json!({"name": "C", "agent": agent, "schedule": [null, null]}),
        json!({"name": "C", "agent": ["a", null, "+15005550001"]}),
        json!(["C"]),
    ] {
        let (s, v) = app.call(Method::POST, "/api/v1/campaigns", Some(body.clone())).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {v}");
        assert_eq!(field(&v), "body");
    }
    let (s, _) = app.call(Method::POST, "/api/v1/contacts", Some(json!(["+14155552671"]))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // Retry delays are bounded (a huge one would overflow the retry time).
    let retry = json!({"voicemail": {"retry": true, "delay_secs": 9_223_372_036_854_775_808u64}});
    let body = json!({"name": "C", "agent": agent, "retry": retry});
    let (s, v) = app.call(Method::POST, "/api/v1/campaigns", Some(body)).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(field(&v), "retry.voicemail.delay_secs");
    let body = json!({"name": "C", "agent": agent, "retry": {"busy": {"retry": true, "delay_secs": 31_536_000}}});
    let (s, v) = app.call(Method::POST, "/api/v1/campaigns", Some(body)).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}
