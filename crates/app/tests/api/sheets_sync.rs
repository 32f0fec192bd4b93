//! The bidirectional Sheets sync end to end against the simulator's Google
//! side: a 1,000-row sheet linked to a campaign while a "person" inserts,
//! deletes and sorts rows and edits phones and names, the API answers 429s
//! and 5xxs and revokes tokens once, and the sync instance is replaced
//! mid-run. At the end the sheet and the store must agree row by row.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchboard::integrations::ClientOptions;
use switchboard::integrations::google::{ServiceAccountKey, SheetsClient, TokenSource};
use switchboard::integrations::retry::RetryPolicy;
use switchboard::jobs::runner::Runner;
use switchboard::jobs::sheets::{Budget, SheetsSync};
use switchboard::sim::google::{GoogleScenario, HumanEdit, NewSpreadsheet, NewTab, SANDBOX_ACCOUNT, SANDBOX_KEY_JSON};
use switchboard::sim::{Faults, Scenario, SimHandle, SimSettings, Simulator};
use switchboard_domain::sheet::{SheetLinkInput, StatusField};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CampaignId, ContactId, EnrollmentStatus, Outcome, SheetLink};
use switchboard_storage::{PageRequest, Storage};

use crate::helpers::TestApp;

const TAB: &str = "Leads";

fn opts() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        retry: RetryPolicy { max_attempts: 10, base: Duration::from_millis(5), max_backoff: Duration::from_millis(50) },
    }
}

async fn sim(faults: Faults) -> SimHandle {
    let settings = SimSettings {
        scenario: Scenario { google: GoogleScenario::default(), faults, ..Scenario::default() },
        ..SimSettings::default()
    };
    Simulator::spawn(settings, "127.0.0.1:0".parse().unwrap()).await.unwrap()
}

fn client(sim: &SimHandle) -> SheetsClient {
    let mut key: Value = serde_json::from_str(SANDBOX_KEY_JSON).unwrap();
    key["token_uri"] = format!("{}/token", sim.base_url).into();
    let key = ServiceAccountKey::from_json(&key.to_string()).unwrap();
    let tokens = TokenSource::new(key, &["https://www.googleapis.com/auth/spreadsheets"], &opts()).unwrap();
    SheetsClient::new(&sim.base_url, &sim.base_url, Arc::new(tokens), &opts())
}

fn phone(i: usize) -> String {
    format!("+1415555{:04}", i)
}

fn sync_for(store: Arc<dyn Storage>, sim: &SimHandle, owner: &str) -> SheetsSync {
    SheetsSync::new(
        store.clone(),
        client(sim),
        Arc::new(Budget::new(100_000)),
        Runner::new(store, owner),
        "US",
        SANDBOX_ACCOUNT,
    )
}

async fn campaign(app: &TestApp) -> CampaignId {
    let body = json!({"name": "Sheet leads", "agent": {"agent_id": "agent_1", "caller_id": "+15005550001"}});
    let (status, v) = app.call(reqwest::Method::POST, "/api/v1/campaigns", Some(body)).await;
    assert!(status.is_success(), "{v}");
    CampaignId::parse(v["id"].as_str().unwrap()).unwrap()
}

fn link_for(spreadsheet: &str, campaign: Option<&CampaignId>) -> SheetLink {
    let input: SheetLinkInput = serde_json::from_value(json!({
        "spreadsheet": spreadsheet, "tab": TAB, "campaign_id": campaign.map(|c| c.to_string()),
    }))
    .unwrap();
    SheetLink::create(input, now_ms()).unwrap()
}

/// The tab as header → column, and rows as maps.
fn read(sim: &SimHandle, id: &str) -> Vec<BTreeMap<String, String>> {
    let values = sim.sim.spreadsheet_values(id, TAB).unwrap();
    let header: Vec<String> = values[0].iter().map(|v| v.as_str().unwrap_or_default().to_owned()).collect();
    values[1..]
        .iter()
        .map(|r| {
            header
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    let v = match r.get(i) {
                        Some(Value::String(s)) => s.clone(),
                        Some(Value::Null) | None => String::new(),
                        // A phone typed by a person becomes a number (USER_ENTERED).
                        Some(Value::Number(n)) => match n.as_f64() {
                            Some(f) if f.fract() == 0.0 => format!("{}", f as i64),
                            _ => n.to_string(),
                        },
                        Some(other) => other.to_string(),
                    };
                    (h.clone(), v)
                })
                .collect()
        })
        .filter(|r: &BTreeMap<String, String>| r.values().any(|v| !v.is_empty()))
        .collect()
}

/// Every row: its sb_id names a contact whose phone and name are the row's,
/// and its status cells are its enrollment's.
async fn assert_sheet_and_store_agree(app: &TestApp, sim: &SimHandle, id: &str, campaign: &CampaignId) -> usize {
    let store = &app.state.store;
    let rows = read(sim, id);
    let mut seen = HashMap::new();
    for r in &rows {
        let cid = ContactId::parse(&r["sb_id"]).unwrap_or_else(|e| panic!("row without a valid sb_id ({e}): {r:?}"));
        assert!(seen.insert(cid.clone(), r.clone()).is_none(), "two rows carry {cid}");
        let c = store.get_contact(&cid).await.unwrap().unwrap();
        let row_phone = if r["phone"].starts_with('+') { r["phone"].clone() } else { format!("+{}", r["phone"]) };
        assert_eq!(c.phone, row_phone, "row {r:?} is written to another contact's row");
        assert_eq!(c.name.as_deref().unwrap_or(""), r["name"]);
        let e = store.find_enrollment(campaign, &cid).await.unwrap().unwrap();
        assert_eq!(r["sb_status"], e.status.as_str(), "status of {r:?}");
        assert_eq!(r["sb_attempts"], e.attempts.to_string());
        assert_eq!(r["sb_last_outcome"], e.last_outcome.map(|o| o.as_str()).unwrap_or(""));
        assert_eq!(r["sb_sync_error"], "");
    }
    rows.len()
}

/// Marks `n` enrollments of the campaign as called once with `outcome`.
async fn finish_calls(store: &Arc<dyn Storage>, campaign: &CampaignId, skip: usize, n: usize, outcome: Outcome) {
    let page = store.list_enrollments(campaign, &[], &PageRequest { limit: 200, cursor: None }).await.unwrap();
    let mut all = page.items;
    let mut cursor = page.next_cursor;
    while let Some(c) = cursor {
        let p = store.list_enrollments(campaign, &[], &PageRequest { limit: 200, cursor: Some(c) }).await.unwrap();
        all.extend(p.items);
        cursor = p.next_cursor;
    }
    for mut e in all.into_iter().skip(skip).take(n) {
        if !e.status.is_waiting() {
            continue;
        }
        e.status = if outcome == Outcome::Answered { EnrollmentStatus::Completed } else { EnrollmentStatus::RetryWait };
        e.attempts += 1;
        e.last_outcome = Some(outcome);
        e.updated_at = now_ms();
        store.replace_enrollment(&e).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_row_sheet_stays_in_step_with_the_campaign_through_edits_faults_and_a_restart() {
    let app = TestApp::spawn().await;
    let sim = sim(Faults { api_5xx_rate: 0.03, api_429_rate: 0.03, ..Faults::default() }).await;
    let mut csv = String::from("phone,name,notes\n");
    for i in 0..1000 {
        csv.push_str(&format!("{},Person {i},note {i}\n", phone(i)));
    }
    let sheet = sim
        .sim
        .create_spreadsheet(NewSpreadsheet {
            sheets: vec![NewTab { title: TAB.into(), csv: Some(csv), values: None }],
            ..Default::default()
        })
        .unwrap();
    let cmp = campaign(&app).await;
    let link = link_for(&sheet, Some(&cmp));
    let store = app.state.store.clone();
    store.insert_sheet_link(&link).await.unwrap();

    // First import.
    let first = sync_for(store.clone(), &sim, "instance-a");
    let l = first.sync_now(&link.id, None).await.unwrap();
    assert_eq!(l.state.last_error, None);
    assert_eq!((l.state.rows, l.state.valid_rows), (1000, 1000));
    assert_eq!(store.count_enrollments(&cmp).await.unwrap(), vec![(EnrollmentStatus::Pending, 1000)]);
    assert_eq!(assert_sheet_and_store_agree(&app, &sim, &sheet, &cmp).await, 1000);

    // A burst of 1,000 status changes costs a handful of requests.
    let before = l.state.requests;
    finish_calls(&store, &cmp, 0, 1000, Outcome::NoAnswer).await;
    let l = first.sync_now(&link.id, None).await.unwrap();
    let burst = l.state.requests - before;
    assert!(burst <= 6, "1,000 status changes took {burst} requests");
    assert_sheet_and_store_agree(&app, &sim, &sheet, &cmp).await;

    // A person edits while calls finish: inserts two new leads at the top, deletes a row,
    // sorts by name descending, fixes a phone and a name.
    let edit = |e: HumanEdit| sim.sim.edit_spreadsheet(&sheet, e).unwrap();
    edit(HumanEdit::InsertRows { sheet: TAB.into(), before_row: 2, count: 2 });
    edit(HumanEdit::Set {
        range: format!("{TAB}!A2:C3"),
        values: vec![
            vec![json!(phone(5000)), json!("New One"), json!("fresh")],
            vec![json!(phone(5001)), json!("New Two"), json!("")],
        ],
    });
    // Row of Person 10 (sheet row 2 + 2 inserted + 10 = 14) is deleted.
    let deleted_row = read(&sim, &sheet).iter().position(|r| r["name"] == "Person 10").unwrap() + 2;
    edit(HumanEdit::DeleteRows { sheet: TAB.into(), row: deleted_row, count: 1 });
    finish_calls(&store, &cmp, 0, 300, Outcome::Answered).await;
    edit(HumanEdit::SortRows { sheet: TAB.into(), from_row: 2, column: 1, descending: true });
    let pos = |name: &str| read(&sim, &sheet).iter().position(|r| r["name"] == name).unwrap() + 2;
    let p20 = pos("Person 20");
    edit(HumanEdit::Set { range: format!("{TAB}!A{p20}"), values: vec![vec![json!(phone(7020))]] });
    let p30 = pos("Person 30");
    edit(HumanEdit::Set { range: format!("{TAB}!B{p30}"), values: vec![vec![json!("Person Thirty")]] });
    sim.sim.revoke_google_tokens();

    // The instance is replaced (a restart): the new one works from the store's state.
    drop(first);
    let second = sync_for(store.clone(), &sim, "instance-b");
    second.sync_now(&link.id, None).await.unwrap();
    finish_calls(&store, &cmp, 300, 200, Outcome::Busy).await;
    let l = second.sync_now(&link.id, None).await.unwrap();
    assert_eq!(l.state.last_error, None, "{:?}", l.state);
    assert!(l.state.row_issues.is_empty(), "{:?}", l.state.row_issues);

    let rows = assert_sheet_and_store_agree(&app, &sim, &sheet, &cmp).await;
    assert_eq!(rows, 1001, "1,000 + 2 inserted − 1 deleted");
    // The phone edit moved Person 20's contact; no duplicate contact was made.
    let p20 = store.find_contact_by_phone(&phone(7020)).await.unwrap().unwrap();
    assert_eq!(p20.name.as_deref(), Some("Person 20"));
    assert!(store.find_contact_by_phone(&phone(20)).await.unwrap().is_none());
    // The deleted row's enrollment was cancelled; its contact stays.
    let gone = store.find_contact_by_phone(&phone(10)).await.unwrap().expect("contacts are never deleted by a sync");
    let e = store.find_enrollment(&cmp, &gone.id).await.unwrap().unwrap();
    assert!(
        e.status == EnrollmentStatus::Cancelled || !e.status.is_waiting(),
        "a deleted row cancels its waiting enrollment: {:?}",
        e.status
    );
    // People-owned cells are as the person left them.
    for r in read(&sim, &sheet) {
        let expected = match r["name"].as_str() {
            "New One" => "fresh".to_owned(),
            "New Two" => String::new(),
            "Person Thirty" => "note 30".to_owned(),
            n => format!("note {}", n.trim_start_matches("Person ")),
        };
        assert_eq!(r["notes"], expected, "notes of {r:?}");
    }
    let counts = sim.sim.requests().len();
    eprintln!(
        "sheets sync e2e: {} sync requests recorded by the link, {counts} simulator requests in all",
        l.state.requests
    );
    let status_header = &link.status_columns[&StatusField::Status];
    assert_eq!(status_header, "sb_status");
}

#[tokio::test]
async fn an_unshared_sheet_puts_the_link_in_error_and_sharing_it_again_resumes() {
    let app = TestApp::spawn().await;
    let sim = sim(Faults::default()).await;
    let sheet = sim
        .sim
        .create_spreadsheet(NewSpreadsheet {
            sheets: vec![NewTab {
                title: TAB.into(),
                csv: Some("phone,name\n+14155550100,Ann\nnope,Bob\n".into()),
                values: None,
            }],
            ..Default::default()
        })
        .unwrap();
    let link = link_for(&sheet, None);
    let store = app.state.store.clone();
    store.insert_sheet_link(&link).await.unwrap();
    let sync = sync_for(store.clone(), &sim, "a");
    let l = sync.sync_now(&link.id, None).await.unwrap();
    assert_eq!(l.state.valid_rows, 1);
    assert_eq!(l.state.row_issues.len(), 1);
    assert_eq!((l.state.row_issues[0].row, l.state.row_issues[0].field.as_str()), (3, "phone"));
    let rows = read(&sim, &sheet);
    assert!(rows[1]["sb_sync_error"].starts_with("phone:"), "{:?}", rows[1]);
    assert!(rows[1]["sb_id"].is_empty());

    sim.sim.share_spreadsheet(&sheet, Some(vec![])).unwrap();
    let l = sync.sync_now(&link.id, None).await.unwrap();
    let err = l.state.last_error.clone().expect("a 403 is reported");
    assert!(err.contains("403") && err.contains(SANDBOX_ACCOUNT), "{err}");
    assert_eq!(l.state.status.map(|s| s.as_str()), Some("error"));
    let jobs = store.get_job(&link.lease_name()).await.unwrap().unwrap();
    assert!(jobs.last_error.unwrap().contains("403"));

    sim.sim.share_spreadsheet(&sheet, None).unwrap();
    let l = sync.sync_now(&link.id, None).await.unwrap();
    assert_eq!((l.state.status.map(|s| s.as_str()), l.state.last_error), (Some("ok"), None));
}

/// The app configured with the simulator's Google side (the sandbox account).
async fn app_with_google(sim: &SimHandle, sheets_enabled: bool) -> TestApp {
    let mut key: Value = serde_json::from_str(SANDBOX_KEY_JSON).unwrap();
    key["token_uri"] = format!("{}/token", sim.base_url).into();
    let base = sim.base_url.clone();
    TestApp::spawn_with(move |s| {
        s.google.credentials_json = Some(switchboard::config::Secret::new(key.to_string()));
        s.google.sheets_api_base = base.clone();
        s.google.drive_api_base = base;
        s.sheets.enabled = sheets_enabled;
        s.sheets.tick_secs = 1;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_creates_previews_syncs_and_reports_a_link_and_serve_polls_it() {
    use reqwest::Method as M;
    let sim = sim(Faults::default()).await;
    let sheet = sim
        .sim
        .create_spreadsheet(NewSpreadsheet {
            sheets: vec![NewTab {
                title: TAB.into(),
                csv: Some("Mobile,Full Name,Plan\n+14155550100,Ann,gold\n(415) 555-0101,Bob,\nnope,Cy,silver\n".into()),
                values: None,
            }],
            ..Default::default()
        })
        .unwrap();
    let app = app_with_google(&sim, true).await;
    let cmp = campaign(&app).await;
    let url = format!("https://docs.google.com/spreadsheets/d/{sheet}/edit#gid=0");

    // Bad input names the fields; an unknown campaign is refused.
    let (s, body) = app
        .call(
            M::POST,
            "/api/v1/sheet-links",
            Some(json!({"spreadsheet": "x", "poll_secs": 1, "mapping": {"Plan": "plan"}})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::BAD_REQUEST, "{body}");
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, vec!["spreadsheet", "mapping.Plan", "poll_secs"]);
    let (s, body) = app
        .call(
            M::POST,
            "/api/v1/sheet-links",
            Some(json!({"spreadsheet": url, "tab": TAB, "campaign_id": CampaignId::new().to_string()})),
        )
        .await;
    assert_eq!((s, body["errors"][0]["field"].as_str()), (reqwest::StatusCode::BAD_REQUEST, Some("campaign_id")));

    let (s, link) = app
        .call(
            M::POST,
            "/api/v1/sheet-links",
            Some(json!({"spreadsheet": url, "tab": TAB, "campaign_id": cmp.to_string(), "poll_secs": 5})),
        )
        .await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{link}");
    let id = link["id"].as_str().unwrap().to_owned();
    assert_eq!(link["spreadsheet_id"], sheet.as_str());
    let (s, _) = app.call(M::POST, "/api/v1/sheet-links", Some(json!({"spreadsheet": sheet, "tab": TAB}))).await;
    assert_eq!(s, reqwest::StatusCode::CONFLICT, "one link per tab");

    // The preview reads the real sheet and writes nothing.
    let version = sim.sim.spreadsheet_version(&sheet).unwrap();
    let p = app.get_json(&format!("/api/v1/sheet-links/{id}/preview?rows=5"), reqwest::StatusCode::OK).await;
    assert_eq!(p["rows"], 3);
    assert_eq!(p["columns"]["Mobile"], "phone");
    assert_eq!(p["columns"]["Plan"], "custom.plan");
    assert_eq!(p["preview"][1]["contact"]["phone"], "+14155550101");
    assert_eq!((p["errors"][0]["row"].as_u64(), p["errors"][0]["field"].as_str()), (Some(4), Some("phone")));
    assert_eq!(sim.sim.spreadsheet_version(&sheet).unwrap(), version, "a preview writes nothing");
    assert!(app.state.store.find_contact_by_phone("+14155550100").await.unwrap().is_none());

    // `serve` polls the link by itself: contacts, enrollments and status cells appear.
    let mut synced = Value::Null;
    for _ in 0..100 {
        synced = app.get_json(&format!("/api/v1/sheet-links/{id}"), reqwest::StatusCode::OK).await;
        if synced["state"]["status"] == "ok" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(synced["state"]["status"], "ok", "{synced}");
    assert_eq!((synced["state"]["rows"].as_u64(), synced["state"]["valid_rows"].as_u64()), (Some(3), Some(2)));
    assert_eq!(synced["state"]["row_issues"][0]["row"], 4);
    assert!(synced["state"]["next_poll_at"].is_string());
    let rows = read(&sim, &sheet);
    assert_eq!(rows[0]["sb_status"], "pending");
    assert!(rows[2]["sb_sync_error"].starts_with("phone:"), "{:?}", rows[2]);
    let jobs = app.get_json("/api/v1/jobs", reqwest::StatusCode::OK).await;
    assert!(jobs["data"].as_array().unwrap().iter().any(|j| j["name"] == format!("sheets:{id}")), "{jobs}");

    // Sync now, pause, and the settings PATCH rules.
    let (s, now) = app.call(M::POST, &format!("/api/v1/sheet-links/{id}/sync"), None).await;
    assert_eq!((s, now["state"]["status"].as_str()), (reqwest::StatusCode::OK, Some("ok")), "{now}");
    let (s, body) =
        app.call(M::PATCH, &format!("/api/v1/sheet-links/{id}"), Some(json!({"campaign_id": cmp.to_string()}))).await;
    assert_eq!((s, body["errors"][0]["field"].as_str()), (reqwest::StatusCode::BAD_REQUEST, Some("campaign_id")));
    let (s, body) =
        app.call(M::PATCH, &format!("/api/v1/sheet-links/{id}"), Some(json!({"paused": true, "poll_secs": 30}))).await;
    assert_eq!(
        (s, body["paused"].as_bool(), body["state"]["status"].as_str()),
        (reqwest::StatusCode::OK, Some(true), Some("paused"))
    );
    let list = app.get_json("/api/v1/sheet-links?limit=1", reqwest::StatusCode::OK).await;
    assert_eq!(list["data"][0]["id"], id.as_str());
    let (s, _) = app.call(M::DELETE, &format!("/api/v1/sheet-links/{id}"), None).await;
    assert_eq!(s, reqwest::StatusCode::NO_CONTENT);
    assert!(app.state.store.find_contact_by_phone("+14155550100").await.unwrap().is_some(), "contacts stay");
    let (s, _) = app.call(M::GET, &format!("/api/v1/sheet-links/{id}"), None).await;
    assert_eq!(s, reqwest::StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn without_a_google_account_sync_and_preview_say_what_to_configure() {
    use reqwest::Method as M;
    let app = TestApp::spawn().await;
    let link = link_for("1SheetWithoutGoogle", None);
    app.state.store.insert_sheet_link(&link).await.unwrap();
    let (s, body) = app.call(M::POST, &format!("/api/v1/sheet-links/{}/sync", link.id), None).await;
    assert_eq!((s, body["code"].as_str()), (reqwest::StatusCode::SERVICE_UNAVAILABLE, Some("not_configured")));
    assert!(body["detail"].as_str().unwrap().contains("CREDENTIALS"), "{body}");
}
