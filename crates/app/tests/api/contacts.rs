//! Contacts over the API: validation, CRUD, search, lookup, import and export.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::TestApp;

#[tokio::test]
async fn contacts_are_validated_normalised_and_unique() {
    contacts_scenario(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn contacts_are_validated_normalised_and_unique_on_mongodb() {
    if let Some(app) = TestApp::spawn_mongo().await {
        contacts_scenario(&app).await;
    }
}

async fn contacts_scenario(app: &TestApp) {
    let (s, body) = app
        .call(
            Method::POST,
            "/api/v1/contacts",
            Some(json!({ "phone": "12", "email": "nope", "time_zone": "Mars/Base" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["phone", "email", "time_zone"]);
    let (s, body) = app.call(Method::POST, "/api/v1/contacts", Some(json!({ "phone": "1", "colour": "red" }))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(body["detail"].as_str().unwrap().contains("unknown field `colour`"), "{body}");

    let (s, dana) = app
        .call(
            Method::POST,
            "/api/v1/contacts",
            Some(json!({ "phone": "(415) 555-2671", "name": "Dana Scully", "email": "dana@FBI.gov", "tags": ["VIP"],
                         "custom": { "plan": "gold" } })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{dana}");
    assert_eq!(dana["phone"], "+14155552671");
    assert_eq!(dana["tags"], json!(["vip"]));
    let (s, body) = app.call(Method::POST, "/api/v1/contacts", Some(json!({ "phone": "+1 415 555 2671" }))).await;
    assert_eq!(s, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("+14155552671"));

    let id = dana["id"].as_str().unwrap();
    let got = app.get_json(&format!("/api/v1/contacts/{id}"), StatusCode::OK).await;
    assert_eq!(got, dana);
    let found = app.get_json("/api/v1/contacts/lookup?phone=415-555-2671", StatusCode::OK).await;
    assert_eq!(found["id"], dana["id"]);
    app.get_json("/api/v1/contacts/lookup?phone=%2B14155550000", StatusCode::NOT_FOUND).await;

    let (s, patched) = app
        .call(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some(json!({ "do_not_call": true, "do_not_call_reason": "asked" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["do_not_call"]["reason"], "asked");
    assert_eq!(patched["name"], "Dana Scully");
    assert_eq!(patched["version"], 2);

    for (name, phone) in [("Fox Mulder", "+14155552672"), ("Walter Skinner", "+14155552673")] {
        let (s, _) = app.call(Method::POST, "/api/v1/contacts", Some(json!({ "phone": phone, "name": name }))).await;
        assert_eq!(s, StatusCode::CREATED);
    }
    let page = app.get_json("/api/v1/contacts?search=fox", StatusCode::OK).await;
    assert_eq!(page["data"].as_array().unwrap().len(), 1);
    let page = app.get_json("/api/v1/contacts?dnc=true", StatusCode::OK).await;
    assert_eq!(page["data"][0]["id"], dana["id"]);
    let page = app.get_json("/api/v1/contacts?limit=2&sort=created_at", StatusCode::OK).await;
    assert_eq!(page["data"][0]["id"], dana["id"]);
    let next = page["next_cursor"].as_str().unwrap();
    let rest = app.get_json(&format!("/api/v1/contacts?limit=2&sort=created_at&cursor={next}"), StatusCode::OK).await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    let bad = app.get_json("/api/v1/contacts?dnc=maybe&colour=red", StatusCode::BAD_REQUEST).await;
    assert_eq!(bad["errors"].as_array().unwrap().len(), 2);
    let calls = app.get_json(&format!("/api/v1/contacts/{id}/calls"), StatusCode::OK).await;
    assert_eq!(calls["data"], json!([]));

    let (s, _) = app.call(Method::DELETE, &format!("/api/v1/contacts/{id}"), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _) = app.call(Method::DELETE, &format!("/api/v1/contacts/{id}"), None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    app.get_json("/api/v1/contacts/con_nope", StatusCode::BAD_REQUEST).await;
}

/// A hostile CSV: BOM, quoted commas and newlines, a ragged row, bytes that are
/// not UTF-8, a duplicate inside the file, a bad phone.
fn hostile_csv() -> Vec<u8> {
    let mut f = "\u{feff}Mobile,First Name,Last Name,E-mail,Tags,Plan\n".as_bytes().to_vec();
    f.extend_from_slice(b"+14155550101,Dana,Scully,dana@fbi.gov,vip;west,\"gold, annual\"\n");
    f.extend_from_slice(b"(415) 555-0102,Fox,Mulder,,,\"multi\nline\"\n");
    f.extend_from_slice(b"+14155550103,Too,Few\n");
    f.extend_from_slice(b"+14155550104,Bad\xff\xfeBytes,X,,,\n");
    f.extend_from_slice(b"415.555.0101,Dup,Of Dana,,,\n");
    f.extend_from_slice(b"not a phone,Walter,Skinner,,,\n");
    f.extend_from_slice(b"+14155550105,Monica,Reyes,monica@fbi.gov,,\n");
    f
}

#[tokio::test]
async fn imports_validate_everything_first_and_never_half_import() {
    import_scenario(&TestApp::spawn().await).await;
}

#[tokio::test]
async fn imports_validate_everything_first_and_never_half_import_on_mongodb() {
    if let Some(app) = TestApp::spawn_mongo().await {
        import_scenario(&app).await;
    }
}

async fn import_scenario(app: &TestApp) {
    // Dry run: counts and per-line errors, nothing written.
    let (s, r) = app.post_bytes("/api/v1/contacts/import?dry_run=true", hostile_csv(), "text/csv").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!((r["rows"].as_u64(), r["valid"].as_u64(), r["invalid"].as_u64()), (Some(7), Some(4), Some(3)), "{r}");
    assert_eq!(r["duplicates_in_file"], 1);
    assert_eq!(r["applied"], false);
    assert_eq!(r["columns"]["Mobile"], "phone");
    assert_eq!(r["columns"]["Plan"], "custom.plan");
    assert_eq!(r["preview"][0]["name"], "Dana Scully");
    assert_eq!(r["preview"][0]["custom"]["plan"], "gold, annual");
    assert_eq!(r["preview"][1]["custom"]["plan"], "multi\nline");
    let lines: Vec<(u64, &str)> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["line"].as_u64().unwrap(), e["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0].0, 5);
    assert!(lines[0].1.contains("3 cells"), "{lines:?}");
    assert_eq!(lines[1].0, 6);
    assert!(lines[1].1.contains("UTF-8"));
    assert_eq!(lines[2].0, 8);
    let empty = app.get_json("/api/v1/contacts", StatusCode::OK).await;
    assert_eq!(empty["data"], json!([]));

    // Not partial: refused, nothing written.
    let (s, r) = app.post_bytes("/api/v1/contacts/import", hostile_csv(), "text/csv").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    assert!(r["message"].as_str().unwrap().contains("nothing was imported"));
    assert_eq!(app.get_json("/api/v1/contacts", StatusCode::OK).await["data"], json!([]));

    // Partial, as a multipart upload: the valid rows, once each.
    let form = reqwest::multipart::Form::new()
        .part("file", reqwest::multipart::Part::bytes(hostile_csv()).file_name("leads.csv"));
    let resp = reqwest::Client::new()
        .post(format!("{}/api/v1/contacts/import?partial=true", app.base))
        .bearer_auth(crate::helpers::API_TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let r: Value = resp.json().await.unwrap();
    assert_eq!((r["inserted"].as_u64(), r["applied"].as_bool()), (Some(3), Some(true)), "{r}");

    // Again with the default (skip): all duplicates of the store now.
    let clean = b"phone,name\n+14155550101,Dana\n+14155550199,New\n".to_vec();
    let (s, r) = app.post_bytes("/api/v1/contacts/import", clean.clone(), "text/csv").await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_eq!(
        (r["inserted"].as_u64(), r["skipped"].as_u64(), r["duplicates_in_store"].as_u64()),
        (Some(1), Some(1), Some(1))
    );
    let (s, r) = app.post_bytes("/api/v1/contacts/import?on_duplicate=fail", clean.clone(), "text/csv").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{r}");
    let (s, r) = app.post_bytes("/api/v1/contacts/import?on_duplicate=update", clean, "text/csv").await;
    assert_eq!((s, r["updated"].as_u64()), (StatusCode::OK, Some(2)), "{r}");
    let dana = app.get_json("/api/v1/contacts/lookup?phone=%2B14155550101", StatusCode::OK).await;
    assert_eq!(dana["name"], "Dana");

    // Straight from an import into a campaign: new and already stored contacts are enrolled.
    let (_, camp) = app
        .call(
            Method::POST,
            "/api/v1/campaigns",
            Some(json!({ "name": "From import", "agent": { "agent_id": "a", "caller_id": "+15005550001" } })),
        )
        .await;
    let cid = camp["id"].as_str().unwrap();
    let file = b"phone\n+14155550101\n+14155550301\n".to_vec();
    let (s, r) = app.post_bytes(&format!("/api/v1/contacts/import?campaign_id={cid}"), file, "text/csv").await;
    assert_eq!((s, r["inserted"].as_u64(), r["enrolled"].as_u64()), (StatusCode::OK, Some(1), Some(2)), "{r}");
    let progress = app.get_json(&format!("/api/v1/campaigns/{cid}/progress"), StatusCode::OK).await;
    assert_eq!(progress["enrollments"], 2);
    let (s, _) = app
        .post_bytes("/api/v1/contacts/import?campaign_id=cmp_nope", b"phone\n+14155550101\n".to_vec(), "text/csv")
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // NDJSON import and a file with no phone column.
    let nd = b"{\"phone_number\":\"+14155550201\",\"name\":\"Nd One\",\"tags\":[\"a\",\"b\"]}\n\n{\"mobile\":\"+14155550202\"}\n".to_vec();
    let (s, r) = app.post_bytes("/api/v1/contacts/import?format=ndjson", nd, "application/x-ndjson").await;
    assert_eq!((s, r["inserted"].as_u64()), (StatusCode::OK, Some(2)), "{r}");
    let (s, r) = app.post_bytes("/api/v1/contacts/import", b"name,email\nx,y@z.co\n".to_vec(), "text/csv").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");
    assert!(r["detail"].as_str().unwrap().contains("no phone column"), "{r}");

    // The content type names the format when `format` is absent, and a body sent as JSON is a
    // JSON document: a JSON array of objects, never re-read as NDJSON or CSV (a schemathesis
    // find: random bytes sent as application/json with format=ndjson came back 200).
    let arr = br#"[{"phone":"+14155550203","name":"Js One"}]"#.to_vec();
    let (s, r) = app.post_bytes("/api/v1/contacts/import?dry_run=true", arr, "application/json; charset=utf-8").await;
    assert_eq!((s, r["valid"].as_u64()), (StatusCode::OK, Some(1)), "{r}");
    let (s, r) = app.post_bytes("/api/v1/contacts/import?dry_run=true", nd_line(), "application/x-ndjson").await;
    assert_eq!((s, r["valid"].as_u64()), (StatusCode::OK, Some(1)), "{r}");
    for q in ["format=ndjson", "format=csv"] {
        let (s, r) = app
            .post_bytes(&format!("/api/v1/contacts/import?dry_run=true&{q}"), b"<\xff".to_vec(), "application/json")
            .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {r}");
        assert_eq!(r["errors"][0]["field"], "format", "{r}");
        assert!(r["errors"][0]["reason"].as_str().unwrap().contains("contradicts Content-Type"), "{r}");
    }
    for (body, why) in [
        (&b"<\xff"[..], "not UTF-8"),
        (&b"<x"[..], "not a JSON array"),
        (&b"[{\"phone\":\"+14155550204\"}, 7]"[..], "item 2 is a number"),
    ] {
        let (s, r) = app.post_bytes("/api/v1/contacts/import?dry_run=true", body.to_vec(), "application/json").await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{r}");
        assert_eq!(r["errors"][0]["field"], "file", "{r}");
        assert!(r["errors"][0]["reason"].as_str().unwrap().contains(why), "{why}: {r}");
    }

    // Export streams every contact, CSV and NDJSON, with the list filters.
    let csv = app.get("/api/v1/contacts/export").await.text().await.unwrap();
    let mut rdr = csv::Reader::from_reader(csv.as_bytes());
    assert_eq!(rdr.headers().unwrap().get(1), Some("phone"));
    assert_eq!(rdr.records().count(), 7, "{csv}");
    let nd = app.get("/api/v1/contacts/export?format=ndjson&search=nd").await.text().await.unwrap();
    let lines: Vec<Value> = nd.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["tags"], json!(["a", "b"]));
}

fn nd_line() -> Vec<u8> {
    b"{\"phone\":\"+14155550205\"}\n".to_vec()
}
