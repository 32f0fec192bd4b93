//! The Google client against the simulator's Google side: OAuth2 service
//! account tokens, Sheets values, Drive versions, and every error class.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};
use switchboard::integrations::google::{
    InsertData, ServiceAccountKey, SheetsClient, TokenSource, ValueInput, ValueRange, ValueRender, encode_range,
};
use switchboard::integrations::retry::RetryPolicy;
use switchboard::integrations::{ClientOptions, UpstreamError};
use switchboard::sim::google::{GoogleScenario, HumanEdit, NewSpreadsheet, NewTab, SANDBOX_KEY_JSON};
use switchboard::sim::{Faults, Scenario, SimHandle, SimSettings, Simulator};

const LEADS: &str = "lead_id,phone,name,notes\n\
000123,+15005550006,Dana,\"likes calls, mornings\"\n\
000124,+15005550007,Lee,\"two\nlines\"\n\
000125,+15005550008,Sam,\n";

fn opts(attempts: u32) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        retry: RetryPolicy {
            max_attempts: attempts,
            base: Duration::from_millis(20),
            max_backoff: Duration::from_millis(400),
        },
    }
}

async fn sim_with(google: GoogleScenario, faults: Faults) -> SimHandle {
    let settings =
        SimSettings { scenario: Scenario { google, faults, ..Scenario::default() }, ..SimSettings::default() };
    Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn key_for(sim: &SimHandle) -> ServiceAccountKey {
    let mut key: Value = serde_json::from_str(SANDBOX_KEY_JSON).unwrap();
    key["token_uri"] = format!("{}/token", sim.base_url).into();
    ServiceAccountKey::from_json(&key.to_string()).unwrap()
}

fn client(sim: &SimHandle, o: &ClientOptions) -> SheetsClient {
    let tokens = TokenSource::new(key_for(sim), &["https://www.googleapis.com/auth/spreadsheets"], o).unwrap();
    SheetsClient::new(&sim.base_url, &sim.base_url, Arc::new(tokens), o)
}

fn seed(sim: &SimHandle, shared_with: Option<Vec<String>>) -> String {
    sim.sim
        .create_spreadsheet(NewSpreadsheet {
            title: Some("Dialer campaign".into()),
            shared_with,
            sheets: vec![
                NewTab { title: "Leads 2026".into(), csv: Some(LEADS.into()), values: None },
                NewTab {
                    title: "CallLog".into(),
                    csv: None,
                    values: Some(vec![vec![json!("at"), json!("lead_id"), json!("status")]]),
                },
            ],
            ..Default::default()
        })
        .unwrap()
}

fn statuses(sim: &SimHandle, what: &str) -> Vec<u16> {
    sim.sim.requests().into_iter().filter(|r| r.what == what).map(|r| r.status).collect()
}

#[tokio::test]
async fn values_round_trip_through_the_simulated_sheets_api() {
    let sim = sim_with(GoogleScenario::default(), Faults::default()).await;
    let id = seed(&sim, None);
    let sheets = client(&sim, &opts(3));

    let meta = sheets.get_spreadsheet(&id).await.unwrap();
    assert_eq!(meta.properties.title, "Dialer campaign");
    let titles: Vec<_> = meta.sheets.iter().map(|s| s.properties.title.as_str()).collect();
    assert_eq!(titles, ["Leads 2026", "CallLog"]);
    assert_eq!(meta.sheets[0].properties.grid_properties.column_count, 26);

    // Quoted sheet name, open-ended range; CSV quoting survived; trailing empty cells trimmed.
    let v1 = sheets.file_version(&id).await.unwrap().version;
    let leads = sheets.get_values(&id, "'Leads 2026'!A2:D", ValueRender::Formatted).await.unwrap();
    assert_eq!(leads.range, "'Leads 2026'!A2:D1000");
    assert_eq!(leads.values.len(), 3);
    assert_eq!(
        leads.values[0],
        vec![json!("000123"), json!("+15005550006"), json!("Dana"), json!("likes calls, mornings")]
    );
    assert_eq!(leads.values[1][3], json!("two\nlines"));
    assert_eq!(leads.values[2].len(), 3, "the empty notes cell is trimmed: {:?}", leads.values[2]);
    let empty = sheets.get_values(&id, "'Leads 2026'!H1:H9", ValueRender::Formatted).await.unwrap();
    assert!(empty.values.is_empty());
    assert_eq!(sheets.file_version(&id).await.unwrap().version, v1, "reads do not change the version");

    // RAW keeps a phone number as text; USER_ENTERED turns it into a number, as Sheets does.
    let up = sheets
        .update_values(
            &id,
            "'Leads 2026'!E2:E3",
            vec![vec![json!("+15005550006")], vec![json!("=1+1")]],
            ValueInput::Raw,
        )
        .await
        .unwrap();
    assert_eq!((up.updated_range.as_str(), up.updated_rows, up.updated_cells), ("'Leads 2026'!E2:E3", 2, 2));
    sheets
        .update_values(&id, "'Leads 2026'!F2", vec![vec![json!("+15005550006")]], ValueInput::UserEntered)
        .await
        .unwrap();
    let typed = sheets.get_values(&id, "'Leads 2026'!E2:F2", ValueRender::Unformatted).await.unwrap();
    assert_eq!(typed.values, vec![vec![json!("+15005550006"), json!(15005550006.0)]]);
    let v2 = sheets.file_version(&id).await.unwrap().version;
    assert_eq!(v2, v1 + 2, "each write bumps the version");

    // Writing more than a bounded range holds is refused and changes nothing.
    let err = sheets
        .update_values(&id, "'Leads 2026'!A2:A2", vec![vec![json!("x")], vec![json!("y")]], ValueInput::Raw)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Rejected { status: 400, message, .. } if message.contains("tried writing to row")),
        "{err:?}"
    );

    // batchGet keeps the request order.
    let both =
        sheets.batch_get_values(&id, &["CallLog!A1:C1", "'Leads 2026'!C2:C3"], ValueRender::Formatted).await.unwrap();
    assert_eq!(both[0].values[0][0], json!("at"));
    assert_eq!(both[1].values, vec![vec![json!("Dana")], vec![json!("Lee")]]);

    // A batch with one bad range applies nothing.
    let err = sheets
        .batch_update_values(
            &id,
            vec![
                ValueRange::new("'Leads 2026'!D2", vec![vec![json!("changed")]]),
                ValueRange::new("Nope!A1", vec![vec![json!("x")]]),
            ],
            ValueInput::Raw,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Rejected { message, .. } if message.contains("Unable to parse range: Nope!A1")),
        "{err:?}"
    );
    assert_eq!(sim.sim.spreadsheet_values(&id, "Leads 2026").unwrap()[1][3], json!("likes calls, mornings"));
    assert_eq!(sheets.file_version(&id).await.unwrap().version, v2);
    let ok = sheets
        .batch_update_values(
            &id,
            vec![
                ValueRange::new("'Leads 2026'!D2", vec![vec![json!("called")]]),
                ValueRange::new("'Leads 2026'!D3", vec![vec![json!("busy")]]),
            ],
            ValueInput::Raw,
        )
        .await
        .unwrap();
    assert_eq!((ok.total_updated_cells, ok.total_updated_sheets, ok.responses.len()), (2, 1, 2));

    // Append after the table, inserting rows.
    let app = sheets
        .append_values(
            &id,
            "CallLog!A:C",
            vec![vec![json!("2026-11-26T10:00:00Z"), json!("000123"), json!("completed")]],
            ValueInput::Raw,
            InsertData::InsertRows,
        )
        .await
        .unwrap();
    assert_eq!(app.table_range.as_deref(), Some("CallLog!A1:C1"));
    assert_eq!(app.updates.updated_range, "CallLog!A2:C2");
    let app2 = sheets
        .append_values(
            &id,
            "CallLog!A:C",
            vec![vec![json!("t2"), json!("000124"), json!("busy")]],
            ValueInput::Raw,
            InsertData::Overwrite,
        )
        .await
        .unwrap();
    assert_eq!(app2.table_range.as_deref(), Some("CallLog!A1:C2"));
    assert_eq!(app2.updates.updated_range, "CallLog!A3:C3");

    // A person inserts a row above the tracked ones: row numbers shift, ids do not.
    let before = sim.sim.spreadsheet_version(&id).unwrap();
    sim.sim
        .edit_spreadsheet(&id, HumanEdit::InsertRows { sheet: "Leads 2026".into(), before_row: 2, count: 1 })
        .unwrap();
    sim.sim
        .edit_spreadsheet(
            &id,
            HumanEdit::Set {
                range: "'Leads 2026'!A2:C2".into(),
                values: vec![vec![json!("000999"), json!("+15005550009"), json!("New")]],
            },
        )
        .unwrap();
    assert_eq!(sheets.file_version(&id).await.unwrap().version, before + 2);
    let shifted = sheets.get_values(&id, "'Leads 2026'!A2:A5", ValueRender::Unformatted).await.unwrap();
    // The human typed 000999 (USER_ENTERED semantics: a number); the seeded ids stay text.
    assert_eq!(
        shifted.values,
        vec![vec![json!(999.0)], vec![json!("000123")], vec![json!("000124")], vec![json!("000125")]]
    );

    let cleared = sheets.clear_values(&id, "CallLog!A2:C").await.unwrap();
    assert_eq!(cleared, "CallLog!A2:C1001");
    assert_eq!(sim.sim.spreadsheet_values(&id, "CallLog").unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_are_cached_refreshed_before_expiry_and_replaced_after_a_401() {
    // A 12 s token (refreshed 3 s early): seconds of slack on each side of every step, so a
    // loaded machine cannot push a request across a boundary (it was 2 s with a 1.6 s sleep).
    let sim = sim_with(GoogleScenario { token_lifetime_secs: 12, ..Default::default() }, Faults::default()).await;
    let id = seed(&sim, None);
    let sheets = client(&sim, &opts(3));
    for _ in 0..3 {
        sheets.file_version(&id).await.unwrap();
    }
    assert_eq!(sim.sim.google_tokens_issued(), 1, "one token serves many requests");
    assert_eq!(sheets.tokens().fetches(), 1);
    // A 12 s token is refreshed after 9 s (a quarter of its lifetime early), before it expires at 12 s.
    tokio::time::sleep(Duration::from_millis(9500)).await;
    sheets.file_version(&id).await.unwrap();
    assert_eq!(sim.sim.google_tokens_issued(), 2);
    assert!(statuses(&sim, "GET drive files.get").iter().all(|s| *s == 200), "refreshed before any 401");

    // Revoked behind the client's back: one 401, a new token, the same request succeeds.
    sim.sim.revoke_google_tokens();
    sheets.file_version(&id).await.unwrap();
    assert_eq!(sim.sim.google_tokens_issued(), 3);
    assert_eq!(statuses(&sim, "GET drive files.get").iter().filter(|s| **s == 401).count(), 1);

    // Concurrent callers share one refresh.
    sim.sim.revoke_google_tokens();
    tokio::time::sleep(Duration::from_millis(9500)).await;
    let calls = (0..8).map(|_| sheets.file_version(&id));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    assert_eq!(sim.sim.google_tokens_issued(), 4);
}

#[tokio::test]
async fn the_token_endpoint_checks_the_assertion_and_its_failures_are_typed() {
    let sim = sim_with(GoogleScenario { token_failures: 2, ..Default::default() }, Faults::default()).await;
    let id = seed(&sim, None);
    // Two 503s from the token endpoint are retried.
    let sheets = client(&sim, &opts(3));
    sheets.file_version(&id).await.unwrap();
    assert_eq!(statuses(&sim, "POST /token"), [503, 503, 200]);

    // An account the server does not know.
    let mut key: Value = serde_json::from_str(SANDBOX_KEY_JSON).unwrap();
    key["token_uri"] = format!("{}/token", sim.base_url).into();
    key["client_email"] = "stranger@elsewhere.iam.gserviceaccount.com".into();
    let stranger = TokenSource::new(ServiceAccountKey::from_json(&key.to_string()).unwrap(), &["s"], &opts(3)).unwrap();
    let err = stranger.token().await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Auth { status: 400, message, .. } if message.starts_with("invalid_grant")),
        "{err:?}"
    );

    // Once its public key is registered, the same account is accepted.
    let pem = include_str!("../../../sim/src/keys/sandbox-service-account.pub.pem");
    sim.sim.register_google_account("stranger@elsewhere.iam.gserviceaccount.com", pem).unwrap();
    assert!(stranger.token().await.is_ok(), "the key pair now verifies");

    // Tampered claims under a valid signature, an over-long lifetime, the wrong grant.
    let good = {
        let assertion_of = |claims: Value| {
            let k = jsonwebtoken::EncodingKey::from_rsa_pem(key_for(&sim).private_key.expose().as_bytes()).unwrap();
            jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256), &claims, &k).unwrap()
        };
        let now = jsonwebtoken::get_current_timestamp();
        let aud = format!("{}/token", sim.base_url);
        let base = json!({ "iss": switchboard::sim::google::SANDBOX_ACCOUNT, "scope": "s", "aud": aud, "iat": now, "exp": now + 3600 });
        let long = json!({ "iss": switchboard::sim::google::SANDBOX_ACCOUNT, "scope": "s", "aud": aud, "iat": now, "exp": now + 7200 });
        let wrong_aud = json!({ "iss": switchboard::sim::google::SANDBOX_ACCOUNT, "scope": "s", "aud": "https://evil.example/token", "iat": now, "exp": now + 3600 });
        (assertion_of(base), assertion_of(long), assertion_of(wrong_aud))
    };
    let post = |grant: &'static str, assertion: String| {
        let url = format!("{}/token", sim.base_url);
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .form(&[("grant_type", grant), ("assertion", &assertion)])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
    let (s, body) = post(GRANT, good.0.clone()).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let mut parts: Vec<String> = good.0.split('.').map(str::to_owned).collect();
    let mut claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
    claims["scope"] = "https://www.googleapis.com/auth/drive".into();
    parts[1] = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(claims.to_string());
    let (s, body) = post(GRANT, parts.join(".")).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (s, body) = post(GRANT, good.1).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (s, body) = post(GRANT, good.2).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (s, body) = post("client_credentials", good.0).await;
    assert_eq!((s, body["error"].as_str()), (400, Some("unsupported_grant_type")), "{body}");
}

#[tokio::test]
async fn sheets_errors_map_to_typed_errors_and_quota_backs_off() {
    let sim = sim_with(
        // A 3 s window (was 300 ms): three calls in a row land in one window even on a loaded machine.
        GoogleScenario { quota_per_window: Some(2), quota_window_ms: 3000, ..Default::default() },
        Faults::default(),
    )
    .await;
    let id = seed(&sim, None);
    let private = seed(&sim, Some(vec!["someone-else@example.iam.gserviceaccount.com".into()]));

    // Over quota with no retries: RateLimited.
    let impatient = client(&sim, &opts(1));
    tokio::time::sleep(Duration::from_millis(3100)).await;
    impatient.file_version(&id).await.unwrap();
    impatient.file_version(&id).await.unwrap();
    let err = impatient.file_version(&id).await.unwrap_err();
    assert!(matches!(err, UpstreamError::RateLimited { provider: "google", .. }), "{err:?}");

    // With backoff the same burst gets through once the window refills: up to 30 jittered
    // waits of at most 400 ms outlast a 3 s window by far.
    let patient = client(
        &sim,
        &ClientOptions {
            timeout: Duration::from_secs(5),
            retry: RetryPolicy {
                max_attempts: 30,
                base: Duration::from_millis(50),
                max_backoff: Duration::from_millis(400),
            },
        },
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    for _ in 0..5 {
        patient.get_values(&id, "CallLog!A1", ValueRender::Formatted).await.unwrap();
    }
    assert!(statuses(&sim, "GET values.get").contains(&429), "the quota was hit and retried");
    assert_eq!(statuses(&sim, "GET values.get").iter().filter(|s| **s == 200).count(), 5);

    tokio::time::sleep(Duration::from_millis(3100)).await;
    let err = patient.file_version("no-such-file").await.unwrap_err();
    assert!(matches!(err, UpstreamError::NotFound { .. }), "{err:?}");
    let err = patient.get_spreadsheet(&private).await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Auth { status: 403, message, .. } if message.starts_with("PERMISSION_DENIED")),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    let err = patient.get_values(&id, "CallLog!A0:B", ValueRender::Formatted).await.unwrap_err();
    assert!(
        matches!(&err, UpstreamError::Rejected { status: 400, message, .. } if message.starts_with("INVALID_ARGUMENT")),
        "{err:?}"
    );

    // 5xx on every request: retried, then Upstream5xx.
    let broken = sim_with(GoogleScenario::default(), Faults { api_5xx_rate: 1.0, ..Faults::default() }).await;
    let bid = seed(&broken, None);
    let err = client(&broken, &opts(3)).file_version(&bid).await.unwrap_err();
    assert!(matches!(err, UpstreamError::Upstream5xx { status: 503, .. }), "{err:?}");
    assert_eq!(statuses(&broken, "GET drive files.get"), [503, 503, 503]);
    // append is not repeated after a 5xx: it may have been applied.
    let err = client(&broken, &opts(3))
        .append_values(&bid, "CallLog!A:C", vec![vec![json!(1)]], ValueInput::Raw, InsertData::InsertRows)
        .await
        .unwrap_err();
    assert!(matches!(err, UpstreamError::Upstream5xx { .. }), "{err:?}");
    assert_eq!(statuses(&broken, "POST values.append"), [503]);
}

#[tokio::test]
async fn sandbox_settings_give_a_working_sheets_client() {
    let (handle, settings) = switchboard::sim::sandbox(switchboard::config::embedded_defaults()).await.unwrap();
    let sheets = settings.google.sheets_client(&opts(3)).unwrap().expect("sandbox configures Google");
    let id = handle
        .sim
        .create_spreadsheet(NewSpreadsheet {
            sheets: vec![NewTab { title: "Sheet1".into(), csv: Some("a,b\n1,2\n".into()), values: None }],
            ..Default::default()
        })
        .unwrap();
    let v = sheets.get_values(&id, "A1:B2", ValueRender::Formatted).await.unwrap();
    assert_eq!(v.values, vec![vec![json!("a"), json!("b")], vec![json!("1"), json!("2")]]);
    assert_eq!(v.range, "Sheet1!A1:B2");
    // Without credentials there is no client, and a bad key file is a config error naming the key.
    assert!(switchboard::config::GoogleSettings::default().sheets_client(&opts(1)).unwrap().is_none());
    let bad = switchboard::config::GoogleSettings {
        credentials_file: Some("/nonexistent/key.json".into()),
        ..Default::default()
    };
    let err = bad.sheets_client(&opts(1)).unwrap_err();
    assert!(err.to_string().contains("GOOGLE_APPLICATION_CREDENTIALS"), "{err}");
}

/// A raw authorised request (what gspread sends), answering status and JSON.
async fn google_raw(
    sim: &SimHandle,
    sheets: &SheetsClient,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let token = sheets.tokens().token().await.unwrap();
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", sim.base_url)).bearer_auth(token.expose());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn gspread_calls_batch_clear_add_worksheet_and_open_by_title_work() {
    let sim = sim_with(GoogleScenario::default(), Faults::default()).await;
    let id = seed(&sim, None);
    let hidden = sim
        .sim
        .create_spreadsheet(NewSpreadsheet {
            title: Some("Dialer campaign".into()),
            shared_with: Some(vec!["someone-else@example.test".into()]),
            sheets: vec![NewTab { title: "S".into(), ..Default::default() }],
            ..Default::default()
        })
        .unwrap();
    let sheets = client(&sim, &opts(1));
    use reqwest::Method as M;

    // values:batchClear — all ranges cleared, the version bumps once.
    let v = sim.sim.spreadsheet_version(&id).unwrap();
    let (s, out) = google_raw(
        &sim,
        &sheets,
        M::POST,
        &format!("/v4/spreadsheets/{id}/values:batchClear"),
        Some(json!({ "ranges": ["'Leads 2026'!D2:D", "CallLog!A1:C1"] })),
    )
    .await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["clearedRanges"], json!(["'Leads 2026'!D2:D1000", "CallLog!A1:C1"]));
    assert_eq!(sim.sim.spreadsheet_version(&id), Some(v + 1));
    let leads = sim.sim.spreadsheet_values(&id, "Leads 2026").unwrap();
    assert!(leads.iter().skip(1).all(|r| r.len() <= 3), "notes cleared: {leads:?}");
    assert!(sim.sim.spreadsheet_values(&id, "CallLog").unwrap().is_empty());
    let (s, out) = google_raw(
        &sim,
        &sheets,
        M::POST,
        &format!("/v4/spreadsheets/{id}/values:batchClear"),
        Some(json!({ "ranges": ["CallLog!A1", "Nope!A1"] })),
    )
    .await;
    assert_eq!((s, out["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "{out}");

    // spreadsheets:batchUpdate with addSheet (gspread's add_worksheet).
    let add = json!({ "requests": [{ "addSheet": { "properties": { "title": "Results", "sheetType": "GRID",
        "gridProperties": { "rowCount": 100, "columnCount": 8 } } } }] });
    let (s, out) =
        google_raw(&sim, &sheets, M::POST, &format!("/v4/spreadsheets/{id}:batchUpdate"), Some(add.clone())).await;
    assert_eq!(s, 200, "{out}");
    let props = &out["replies"][0]["addSheet"]["properties"];
    assert_eq!((props["title"].as_str(), props["index"].as_u64()), (Some("Results"), Some(2)));
    assert!(props["sheetId"].is_i64());
    assert_eq!(props["gridProperties"]["rowCount"], 100);
    let meta = sheets.get_spreadsheet(&id).await.unwrap();
    assert_eq!(
        meta.sheets.iter().map(|s| s.properties.title.as_str()).collect::<Vec<_>>(),
        ["Leads 2026", "CallLog", "Results"]
    );
    let (s, raw_meta) = google_raw(&sim, &sheets, M::GET, &format!("/v4/spreadsheets/{id}"), None).await;
    assert_eq!(s, 200);
    assert_eq!(raw_meta["properties"]["locale"], "en_US", "gspread reads locale and timeZone: {raw_meta}");
    assert_eq!(raw_meta["properties"]["timeZone"], "Etc/GMT");
    assert!(raw_meta["spreadsheetUrl"].as_str().unwrap().contains(&id));
    sheets.update_values(&id, "Results!A1", vec![vec![json!("ok")]], ValueInput::Raw).await.unwrap();
    let (s, out) = google_raw(&sim, &sheets, M::POST, &format!("/v4/spreadsheets/{id}:batchUpdate"), Some(add)).await;
    assert_eq!((s, out["error"]["status"].as_str()), (400, Some("INVALID_ARGUMENT")), "a duplicate title: {out}");
    let (s, out) = google_raw(
        &sim,
        &sheets,
        M::POST,
        &format!("/v4/spreadsheets/{id}:batchUpdate"),
        Some(json!({ "requests": [{ "mergeCells": {} }] })),
    )
    .await;
    assert_eq!(s, 400, "{out}");
    assert!(out["error"]["message"].as_str().unwrap().contains("mergeCells"));

    // Drive files.list with a name/mimeType query (gspread's open(title)): only files shared with the caller.
    let mime = "application/vnd.google-apps.spreadsheet";
    for q in [
        format!("name = 'Dialer campaign' and mimeType='{mime}'"),
        format!("mimeType=\"{mime}\" and name = \"Dialer campaign\""),
    ] {
        let path = format!(
            "/drive/v3/files?q={}&pageSize=1000&supportsAllDrives=True&includeItemsFromAllDrives=True&fields={}",
            encode_range(&q),
            encode_range("kind,nextPageToken,files(id,name,createdTime,modifiedTime)")
        );
        let (s, out) = google_raw(&sim, &sheets, M::GET, &path, None).await;
        assert_eq!(s, 200, "{q}: {out}");
        let files = out["files"].as_array().unwrap();
        assert_eq!(files.len(), 1, "{q}: {out}");
        assert_eq!(files[0]["id"], id.as_str());
        assert_ne!(files[0]["id"], hidden.as_str());
        assert!(files[0]["createdTime"].is_string() && files[0]["modifiedTime"].is_string());
    }
    let (s, out) =
        google_raw(&sim, &sheets, M::GET, &format!("/drive/v3/files?q={}", encode_range("name = 'Other'")), None).await;
    assert_eq!((s, out["files"].as_array().map(Vec::len)), (200, Some(0)), "{out}");
    let (s, out) =
        google_raw(&sim, &sheets, M::GET, &format!("/drive/v3/files?q={}", encode_range("name = 'unclosed")), None)
            .await;
    assert_eq!((s, out["error"]["code"].as_u64()), (400, Some(400)), "{out}");
    let resp = reqwest::get(format!("{}/drive/v3/files", sim.base_url)).await.unwrap();
    assert_eq!(resp.status().as_u16(), 401, "files.list needs a token");
}

#[tokio::test]
async fn column_major_reads_and_gspread_resize_masks_work() {
    let sim = sim_with(GoogleScenario::default(), Faults::default()).await;
    let id = seed(&sim, None);
    let sheets = client(&sim, &opts(1));
    use reqwest::Method as M;
    // gspread's col_values: `A1:A` with majorDimension=COLUMNS.
    let path = format!("/v4/spreadsheets/{id}/values/{}?majorDimension=COLUMNS", encode_range("'Leads 2026'!A1:A"));
    let (s, out) = google_raw(&sim, &sheets, M::GET, &path, None).await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(out["majorDimension"], "COLUMNS");
    assert_eq!(out["values"], json!([["lead_id", "000123", "000124", "000125"]]));
    let path = format!(
        "/v4/spreadsheets/{id}/values:batchGet?ranges={}&majorDimension=COLUMNS",
        encode_range("'Leads 2026'!C1:D3")
    );
    let (s, out) = google_raw(&sim, &sheets, M::GET, &path, None).await;
    assert_eq!(s, 200, "{out}");
    assert_eq!(
        out["valueRanges"][0]["values"],
        json!([["name", "Dana", "Lee"], ["notes", "likes calls, mornings", "two\nlines"]])
    );
    let path = format!("/v4/spreadsheets/{id}/values/A1?majorDimension=DIAGONAL");
    assert_eq!(google_raw(&sim, &sheets, M::GET, &path, None).await.0, 400);

    // gspread's resize sends `gridProperties/rowCount`; shrinking drops the cells outside.
    let resize = json!({ "requests": [{ "updateSheetProperties": {
        "properties": { "sheetId": 0, "gridProperties": { "rowCount": 2, "columnCount": 2 } },
        "fields": "gridProperties/rowCount,gridProperties/columnCount" } }] });
    let (s, out) =
        google_raw(&sim, &sheets, M::POST, &format!("/v4/spreadsheets/{id}:batchUpdate"), Some(resize)).await;
    assert_eq!(s, 200, "{out}");
    let meta = sheets.get_spreadsheet(&id).await.unwrap();
    let grid = &meta.sheets[0].properties.grid_properties;
    assert_eq!((grid.row_count, grid.column_count), (2, 2));
    assert_eq!(
        sim.sim.spreadsheet_values(&id, "Leads 2026").unwrap(),
        vec![vec![json!("lead_id"), json!("phone")], vec![json!("000123"), json!("+15005550006")]]
    );
    let rename = json!({ "requests": [{ "updateSheetProperties": {
        "properties": { "sheetId": 0, "title": "Renamed" }, "fields": "title" } }] });
    assert_eq!(
        google_raw(&sim, &sheets, M::POST, &format!("/v4/spreadsheets/{id}:batchUpdate"), Some(rename)).await.0,
        200
    );
    assert!(sim.sim.spreadsheet_values(&id, "Renamed").is_some());
}
