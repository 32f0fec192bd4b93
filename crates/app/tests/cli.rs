//! The `switchboard` binary: exit codes and messages of its subcommands.

use std::process::Command;

fn switchboard(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    c.current_dir(dir)
        .env_remove("MONGODB_URI")
        .env_remove("SWITCHBOARD_API_TOKENS")
        .env("SWITCHBOARD_ENV", "test")
        .env("SWITCHBOARD_SQLITE_PATH", dir.join("cli.db"))
        .env("RUST_LOG", "warn");
    c
}

#[test]
fn migrate_check_reports_drift_until_migrate_has_run() {
    let dir = tempfile::tempdir().unwrap();
    let before = switchboard(dir.path()).args(["migrate", "--check"]).output().unwrap();
    assert_eq!(before.status.code(), Some(1), "drift before migrating");
    assert!(String::from_utf8_lossy(&before.stdout).contains("drift: calls: missing"));
    let first = switchboard(dir.path()).arg("migrate").output().unwrap();
    assert!(first.status.success());
    assert!(String::from_utf8_lossy(&first.stdout).contains("applied: sqlite migration 0001_calls_and_events"));
    let second = switchboard(dir.path()).arg("migrate").output().unwrap();
    assert!(String::from_utf8_lossy(&second.stdout).contains("already up to date"));
    let after = switchboard(dir.path()).args(["migrate", "--check"]).output().unwrap();
    assert_eq!(after.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&after.stdout).contains("schema is up to date (sqlite)"));
}

#[test]
fn seed_fills_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchboard(dir.path()).args(["seed", "--calls", "300", "--events-per-call", "2"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seeded 300 calls and 600 events"));
}

#[test]
fn a_bad_setting_fails_start_up_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchboard(dir.path()).env("MONGODB_URI", "postgres://nope").arg("migrate").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("MONGODB_URI") && err.contains("mongodb://"), "{err}");
    let out = switchboard(dir.path()).args(["--listen", "nowhere", "serve"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));
}

#[test]
fn an_unreachable_mongodb_is_one_clear_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let out = switchboard(dir.path())
        .env("MONGODB_URI", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200&connectTimeoutMS=200")
        .env("SWITCHBOARD_STORAGE__CONNECT_ATTEMPTS", "2")
        .arg("migrate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot reach MongoDB at 127.0.0.1:1 after 2 attempts"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn sim_seeds_spreadsheets_from_csv_files() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let out = switchboard(dir.path())
        .args(["sim", "--addr", "127.0.0.1:0", "--sheet", "leads=missing.csv"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--sheet leads=missing.csv: cannot read missing.csv"));

    std::fs::write(dir.path().join("Leads.csv"), "phone,name\n+15005550006,\"Dana, Jr.\"\n").unwrap();
    let mut child = switchboard(dir.path())
        .args(["sim", "--addr", "127.0.0.1:0", "--sheet", "leads=Leads.csv"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the simulator prints its address").unwrap();
        if let Some(rest) = line.strip_prefix("simulator listening on http://") {
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    let mut conn = std::net::TcpStream::connect(&base).unwrap();
    write!(conn, "GET /__sim/google/spreadsheets/leads HTTP/1.1\r\nHost: {base}\r\nConnection: close\r\n\r\n").unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).unwrap();
    child.kill().unwrap();
    let _ = child.wait();
    let body: serde_json::Value = serde_json::from_str(resp.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["sheets"][0]["title"], "Leads");
    assert_eq!(body["sheets"][0]["values"][1], serde_json::json!(["+15005550006", "Dana, Jr."]));
}

#[test]
fn import_and_export_contacts_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("leads.csv");
    std::fs::write(&csv, "phone,name,tags\n+14155550101,Dana,vip\n(415) 555-0102,Fox,\nnope,Bad,\n").unwrap();
    let out = switchboard(dir.path()).args(["import", "contacts", "leads.csv"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("3 rows") && stdout.contains("2 valid, 1 invalid"), "{stdout}");
    assert!(stdout.contains("line 4: phone:"), "{stdout}");
    assert!(stdout.contains("nothing was imported"), "{stdout}");
    let out = switchboard(dir.path()).args(["import", "contacts", "leads.csv", "--partial"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("imported: 2 inserted"));
    let out = switchboard(dir.path()).args(["export", "contacts", "--tag", "vip"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.contains("+14155550101,Dana"), "{text}");
    let out =
        switchboard(dir.path()).args(["import", "contacts", "leads.csv", "--on-duplicate", "maybe"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("--on-duplicate maybe"));
}

/// The stored phones, sorted, read through the binary's own export.
fn contact_phones(db: &std::path::Path) -> Vec<String> {
    let dir = db.parent().unwrap();
    let out = switchboard(dir).args(["export", "contacts", "--format", "csv"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut phones: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1).map(str::to_owned))
        .collect();
    phones.sort();
    phones
}

#[test]
fn an_import_killed_with_sigkill_is_undone_by_the_next_import() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    assert!(switchboard(dir.path()).arg("migrate").output().unwrap().status.success());
    // Stored before: these must survive untouched.
    std::fs::write(dir.path().join("before.csv"), "phone,name\n+14155550001,Keep One\n+14155550002,Keep Two\n")
        .unwrap();
    let out = switchboard(dir.path()).args(["import", "contacts", "before.csv"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let before = contact_phones(&db);
    assert_eq!(before.len(), 2);
    // A big file (updates the two stored phones too), killed with SIGKILL once writing has begun.
    let mut csv = String::from("phone,name\n+14155550001,Overwritten\n+14155550002,Overwritten\n");
    for i in 0..200_000u32 {
        csv.push_str(&format!("+1415{:07},P{i}\n", 6_000_000 + i));
    }
    std::fs::write(dir.path().join("big.csv"), csv).unwrap();
    let mut child = switchboard(dir.path())
        .args(["import", "contacts", "big.csv", "--on-duplicate", "update"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some rows are in (the journal's heartbeat has begun), then kill -9.
    let started = std::time::Instant::now();
    loop {
        let n = {
            let out = switchboard(dir.path()).args(["export", "contacts", "--format", "ndjson"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).lines().count()
        };
        if n > 2 {
            break;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > std::time::Duration::from_secs(300) {
            panic!("the import ended before it could be killed mid-write; make the file bigger");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    assert!(contact_phones(&db).len() > 2, "part of the file was written when it died");
    // The next import (of an empty-of-news file) first undoes the dead one: its heartbeat is stale.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = switchboard(dir.path())
        .env("SWITCHBOARD_IMPORT__STALE_AFTER_SECS", "1")
        .args(["import", "contacts", "before.csv"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("undid 1 earlier import"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(contact_phones(&db), before, "none of the killed import is left");
    let out = switchboard(dir.path()).args(["export", "contacts", "--format", "csv"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Keep One") && text.contains("Keep Two") && !text.contains("Overwritten"), "{text}");
}

#[test]
fn serve_no_migrate_starts_and_an_empty_secret_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchboard(dir.path()).arg("migrate").output().unwrap().status.success());
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = switchboard(dir.path())
        .env("SWITCHBOARD_DIALER__ENABLED", "false")
        .args(["--listen", &format!("127.0.0.1:{port}"), "serve", "--no-migrate"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..200 {
        if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            use std::io::{Read, Write};
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            up = r.starts_with("HTTP/1.1 200");
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    assert!(up, "serve --no-migrate did not start: {}", String::from_utf8_lossy(&out.stderr));

    for (var, value) in [("TWILIO_AUTH_TOKEN", ""), ("ELEVENLABS_WEBHOOK_SECRET", " ")] {
        let out = switchboard(dir.path()).env(var, value).args(["serve", "--no-migrate"]).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}={value:?} must stop start-up");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(var) && err.contains("empty"), "{err}");
    }
}

/// Runs the binary and returns (exit code, stdout, stderr).
fn run(cmd: &mut Command) -> (Option<i32>, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn sheets_link_list_status_unlink_and_field_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(switchboard(dir.path()).args([
        "sheets",
        "link",
        "--spreadsheet",
        "x",
        "--header-row",
        "0",
        "--poll-secs",
        "1",
        "--map",
        "Cell=nonsense",
        "--map",
        "nothing",
    ]));
    assert_eq!(code, Some(1), "{err}");
    for field in ["spreadsheet", "header_row", "poll_secs", "map: `nothing`"] {
        assert!(err.contains(field), "{field} not named: {err}");
    }
    let (code, _, err) = run(switchboard(dir.path()).args([
        "sheets",
        "link",
        "--spreadsheet",
        "1CliLinkSheet0001",
        "--campaign",
        "cmp_0123456789abcdef0123456789abcdef",
    ]));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("campaign_id: no such campaign"), "{err}");

    let (code, out, err) = run(switchboard(dir.path()).args([
        "sheets",
        "link",
        "--spreadsheet",
        "https://docs.google.com/spreadsheets/d/1CliLinkSheet0001/edit#gid=0",
        "--tab",
        "Leads",
        "--map",
        "Cell Phone=phone",
        "--poll-secs",
        "30",
    ]));
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_owned();
    assert!(id.starts_with("lnk_"), "{out}");
    // The same tab twice is a conflict.
    let (code, _, _) =
        run(switchboard(dir.path()).args(["sheets", "link", "--spreadsheet", "1CliLinkSheet0001", "--tab", "Leads"]));
    assert_ne!(code, Some(0));

    let (code, out, err) = run(switchboard(dir.path()).args(["sheets", "list"]));
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    for want in [id.as_str(), "1CliLinkSheet0001", "tab=Leads", "campaign=-", "status=new", "last_sync=never", "rows=0"]
    {
        assert!(out.contains(want), "{want} missing: {out}");
    }
    let (code, out, err) = run(switchboard(dir.path()).args(["sheets", "status", &id]));
    assert_eq!(code, Some(0), "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["spreadsheet_id"], "1CliLinkSheet0001");
    assert_eq!(v["mapping"]["Cell Phone"], "phone");
    assert_eq!(v["poll_secs"], 30);
    assert_eq!(v["state"]["status"], "new");

    // Preview and sync need Google; without it the error names the setting.
    for cmd in ["preview", "sync"] {
        let (code, _, err) =
            run(switchboard(dir.path()).env_remove("GOOGLE_APPLICATION_CREDENTIALS").args(["sheets", cmd, &id]));
        assert_eq!(code, Some(2), "{err}");
        assert!(err.contains("SWITCHBOARD_GOOGLE__CREDENTIALS_FILE"), "{err}");
    }

    let (code, out, err) = run(switchboard(dir.path()).args(["sheets", "unlink", &id]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&id));
    let (_, out, _) = run(switchboard(dir.path()).args(["sheets", "list"]));
    assert!(out.trim().is_empty(), "{out}");
    let (code, _, err) = run(switchboard(dir.path()).args(["sheets", "status", &id]));
    assert_eq!(code, Some(2));
    assert!(err.contains("no sheet link"), "{err}");
    let (code, _, err) = run(switchboard(dir.path()).args(["sheets", "unlink", "lnk_nope"]));
    assert_eq!(code, Some(2), "{err}");
}

#[test]
fn sheets_preview_and_sync_against_the_simulator() {
    use switchboard::sim::google::{NewSpreadsheet, NewTab, SANDBOX_KEY_JSON};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(switchboard::sim::Simulator::spawn(
            switchboard::sim::SimSettings::default(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    const ROWS: u64 = 1500;
    let mut csv = String::from("phone,name\n");
    for i in 0..ROWS {
        csv.push_str(&format!("+1415{:07},Lead {i}\n", 3_000_000 + i));
    }
    csv.push_str("nope,Bad Row\n");
    let sheet = "1CliSyncSheet0001";
    sim.sim
        .create_spreadsheet(NewSpreadsheet {
            spreadsheet_id: Some(sheet.into()),
            sheets: vec![NewTab { title: "Leads".into(), csv: Some(csv), values: None }],
            ..Default::default()
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut key: serde_json::Value = serde_json::from_str(SANDBOX_KEY_JSON).unwrap();
    key["token_uri"] = format!("{}/token", sim.base_url).into();
    std::fs::write(dir.path().join("key.json"), key.to_string()).unwrap();
    let google = |dir: &std::path::Path| {
        let mut c = switchboard(dir);
        c.env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env("SWITCHBOARD_GOOGLE__CREDENTIALS_FILE", dir.join("key.json"))
            .env("SWITCHBOARD_GOOGLE__SHEETS_API_BASE", &sim.base_url)
            .env("SWITCHBOARD_GOOGLE__DRIVE_API_BASE", &sim.base_url)
            .env("SWITCHBOARD_SHEETS__REQUESTS_PER_MINUTE", "10000");
        c
    };
    let (code, out, err) = run(google(dir.path()).args(["sheets", "link", "--spreadsheet", sheet, "--tab", "Leads"]));
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_owned();

    let (code, out, err) = run(google(dir.path()).args(["sheets", "preview", &id, "--rows", "3"]));
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains(&format!("{} data rows", ROWS + 1)), "{out}");
    assert!(out.contains("phone -> phone") && out.contains("name -> name"), "{out}");
    assert!(out.contains("row 2: +14153000000 Lead 0") && out.contains("row 4: +14153000002 Lead 2"), "{out}");
    assert!(!out.contains("row 5: +"), "three rows only: {out}");
    assert!(out.contains(&format!("row {}: phone:", ROWS + 2)), "{out}");
    assert!(contact_phones(&dir.path().join("cli.db")).is_empty(), "a preview writes nothing");

    let (code, out, err) = run(google(dir.path()).args(["sheets", "sync", &id]));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("status ok"), "{out}");
    assert!(out.contains(&format!("{} rows, {ROWS} valid, 1 issues", ROWS + 1)), "{out}");
    assert!(out.contains(&format!("row {}: phone:", ROWS + 2)), "{out}");
    assert_eq!(contact_phones(&dir.path().join("cli.db")).len() as u64, ROWS);
    // The sheet got its owned columns: an id on every valid row, the reason on the bad one.
    let values = sim.sim.spreadsheet_values(sheet, "Leads").unwrap();
    let header: Vec<&str> = values[0].iter().map(|v| v.as_str().unwrap_or_default()).collect();
    let col = |h: &str| header.iter().position(|x| *x == h).unwrap_or_else(|| panic!("no {h} in {header:?}"));
    let (sb_id, sync_error) = (col("sb_id"), col("sb_sync_error"));
    for row in &values[1..=ROWS as usize] {
        assert!(row.get(sb_id).and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty()), "{row:?}");
    }
    let bad = &values[ROWS as usize + 1];
    assert!(bad.get(sync_error).and_then(|v| v.as_str()).is_some_and(|s| s.contains("phone")), "{bad:?}");
    let (_, out, _) = run(google(dir.path()).args(["sheets", "list"]));
    assert!(out.contains("status=ok") && out.contains(&format!("rows={}", ROWS + 1)), "{out}");

    // A sheet no longer shared with the service account: the link ends in error, exit 1.
    sim.sim.share_spreadsheet(sheet, Some(vec![])).unwrap();
    let (code, out, err) = run(google(dir.path()).args(["sheets", "sync", &id]));
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(out.contains("status error") && out.contains("last_error:"), "{out}");
    drop(sim);
    drop(rt);
}

#[test]
fn serve_sandbox_links_the_simulator_sheet_to_a_campaign() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = switchboard(dir.path())
        .env("SWITCHBOARD_DIALER__ENABLED", "false")
        .env("SWITCHBOARD_SHEETS__TICK_SECS", "1")
        .args(["--listen", &format!("127.0.0.1:{port}"), "serve", "--sandbox"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let line = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("sandbox: sheet link ") => break l,
            Some(Ok(_)) => continue,
            _ => {
                let _ = child.kill();
                panic!("serve --sandbox ended without announcing the sheet link");
            }
        }
    };
    let link = line.split_whitespace().nth(3).unwrap().to_owned();
    assert!(link.starts_with("lnk_"), "{line}");
    assert!(line.contains("1SandboxLeadsSheet") && line.contains("/__sim/google/spreadsheets/1SandboxLeadsSheet"));
    assert!(line.contains("/api/v1/campaigns/cmp_") && line.contains("/start"), "{line}");
    // The sync job picks the link up and imports the 20 leads.
    let started = std::time::Instant::now();
    let listed = loop {
        let (_, out, _) = run(switchboard(dir.path()).args(["sheets", "list"]));
        if out.contains("rows=20") || started.elapsed() > std::time::Duration::from_secs(60) {
            break out;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        listed.contains(&link) && listed.contains("1SandboxLeadsSheet") && listed.contains("tab=Leads"),
        "{listed}"
    );
    assert!(listed.contains("campaign=cmp_") && listed.contains("status=ok") && listed.contains("rows=20"), "{listed}");
    assert_eq!(contact_phones(&dir.path().join("cli.db")).len(), 20);

    // A second start reuses the campaign and the link.
    let mut child = switchboard(dir.path())
        .env("SWITCHBOARD_DIALER__ENABLED", "false")
        .args(["--listen", &format!("127.0.0.1:{port}"), "serve", "--sandbox"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let again = loop {
        match lines.next() {
            Some(Ok(l)) if l.starts_with("sandbox: sheet link ") => break l,
            Some(Ok(_)) => continue,
            _ => break String::new(),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let campaign_of = |l: &str| l.split_whitespace().nth(13).map(str::to_owned);
    assert_eq!(again.split_whitespace().nth(3), Some(link.as_str()), "same link: {again}");
    assert_eq!(campaign_of(&again), campaign_of(&line), "same campaign: {again}");
}

#[test]
fn analyze_fills_missing_analysis_and_reconcile_needs_an_elevenlabs_key() {
    use switchboard_storage::{Storage, TranscriptStore};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cli.db");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let conv = "conv_cli_analyze";
    rt.block_on(async {
        let store = switchboard_storage_sqlite::SqliteStore::open(&db, Default::default()).unwrap();
        store.migrate().await.unwrap();
        let data = serde_json::json!({"conversation_id": conv, "status": "done", "agent_id": "agent_1",
            "transcript": [{"role": "user", "message": "This is terrible, I want a refund now.", "time_in_call_secs": 1}],
            "metadata": {"start_time_unix_secs": 1_790_000_000}});
        // Stored as an older release would have: no analysis yet.
        let t = switchboard::conversations::transcript_from(&data).unwrap();
        assert!(t.analysis.is_none());
        store.upsert_transcript(&t).await.unwrap();
    });
    let (code, out, err) = run(switchboard(dir.path()).args(["analyze", "--since", "2026-01-01"]));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("1 read, 1 analysed"), "{out}");
    rt.block_on(async {
        let store = switchboard_storage_sqlite::SqliteStore::open(&db, Default::default()).unwrap();
        let t = store.find_transcript(conv).await.unwrap().unwrap();
        assert_eq!(t.analyzer_version, Some(switchboard_analysis::ANALYZER_VERSION));
        assert!(t.sentiment.unwrap() < -0.05, "{:?}", t.sentiment);
    });
    // Nothing stale the second time.
    let (_, out, _) = run(switchboard(dir.path()).args(["analyze", "--since", "2026-01-01"]));
    assert!(out.contains("1 read, 0 analysed"), "{out}");
    let (code, _, err) = run(switchboard(dir.path()).args(["analyze", "--since", "last week"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("--since last week"), "{err}");
    let (code, _, err) =
        run(switchboard(dir.path()).env_remove("ELEVENLABS_API_KEY").args(["reconcile", "--since", "2026-11-01"]));
    assert_eq!(code, Some(2));
    assert!(err.contains("ELEVENLABS_API_KEY"), "{err}");
}

#[test]
fn a_sheets_sync_killed_with_sigkill_releases_its_link_when_the_lease_lapses() {
    use switchboard::sim::google::{NewSpreadsheet, NewTab, SANDBOX_KEY_JSON};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sim = rt
        .block_on(switchboard::sim::Simulator::spawn(
            switchboard::sim::SimSettings::default(),
            "127.0.0.1:0".parse().unwrap(),
        ))
        .unwrap();
    const ROWS: u64 = 8_000;
    let mut csv = String::from("phone,name\n");
    for i in 0..ROWS {
        csv.push_str(&format!("+1415{:07},Lead {i}\n", 4_000_000 + i));
    }
    let sheet = "1CliKillSheet0001";
    sim.sim
        .create_spreadsheet(NewSpreadsheet {
            spreadsheet_id: Some(sheet.into()),
            sheets: vec![NewTab { title: "Leads".into(), csv: Some(csv), values: None }],
            ..Default::default()
        })
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut key: serde_json::Value = serde_json::from_str(SANDBOX_KEY_JSON).unwrap();
    key["token_uri"] = format!("{}/token", sim.base_url).into();
    std::fs::write(dir.path().join("key.json"), key.to_string()).unwrap();
    let google = |dir: &std::path::Path| {
        let mut c = switchboard(dir);
        c.env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env("SWITCHBOARD_GOOGLE__CREDENTIALS_FILE", dir.join("key.json"))
            .env("SWITCHBOARD_GOOGLE__SHEETS_API_BASE", &sim.base_url)
            .env("SWITCHBOARD_GOOGLE__DRIVE_API_BASE", &sim.base_url)
            .env("SWITCHBOARD_SHEETS__REQUESTS_PER_MINUTE", "10000")
            .env("SWITCHBOARD_SHEETS__LEASE_SECS", "3");
        c
    };
    let (code, out, err) = run(google(dir.path()).args(["sheets", "link", "--spreadsheet", sheet, "--tab", "Leads"]));
    assert_eq!(code, Some(0), "{err}");
    let id = out.trim().to_owned();
    // Start the first import and kill it with SIGKILL while it holds the lease.
    let mut child = google(dir.path())
        .args(["sheets", "sync", &id])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let db = dir.path().join("cli.db");
    let started = std::time::Instant::now();
    loop {
        // Killed once some contacts are written: the sync is mid-sheet, holding its lease.
        let n = {
            let out = switchboard(dir.path()).args(["export", "contacts", "--format", "ndjson"]).output().unwrap();
            String::from_utf8_lossy(&out.stdout).lines().count()
        };
        if n > 2 {
            break;
        }
        if child.try_wait().unwrap().is_some() || started.elapsed() > std::time::Duration::from_secs(300) {
            panic!("the sync ended before it could be killed mid-sheet; make the sheet bigger");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "killed, not finished");
    // The dead process still holds the lease: another sync is refused, not run beside it.
    let (code, out, err) = run(google(dir.path()).args(["sheets", "sync", &id]));
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.contains("is running"), "{err}");
    // Once the lease lapses (3 s), a new sync takes the link over and finishes the sheet.
    std::thread::sleep(std::time::Duration::from_secs(4));
    let (code, out, err) = run(google(dir.path()).args(["sheets", "sync", &id]));
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains(&format!("{ROWS} rows, {ROWS} valid")), "{out}");
    assert_eq!(contact_phones(&db).len() as u64, ROWS, "every row once, none twice");
    drop(sim);
    drop(rt);
}

/// `serve` on `port` in `dir` with the test token, no dialer, and `env`.
fn serve_with(dir: &std::path::Path, port: u16, env: &[(&str, &str)]) -> std::process::Child {
    let mut c = switchboard(dir);
    c.env("SWITCHBOARD_DIALER__ENABLED", "false").env("SWITCHBOARD_API_TOKENS", "sb_cli_token_0123456789abcdefghij");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(["--listen", &format!("127.0.0.1:{port}"), "serve"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// `serve` on `port` in `dir` (rollups every 100 ms with a 2 s lease; no dialer).
fn serve_rollups(dir: &std::path::Path, port: u16) -> std::process::Child {
    serve_with(dir, port, &[("SWITCHBOARD_ANALYTICS__TICK_MS", "100"), ("SWITCHBOARD_ANALYTICS__LEASE_SECS", "2")])
}

/// GET `path` on `port` with the test token; `None` while the server is not up.
fn get_json(port: u16, path: &str) -> Option<serde_json::Value> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sb_cli_token_0123456789abcdefghij\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).ok()?;
    let mut r = String::new();
    s.read_to_string(&mut r).ok()?;
    let (head, body) = r.split_once("\r\n\r\n")?;
    if !head.starts_with("HTTP/1.1 200") {
        return None;
    }
    // Chunked or not: the JSON document is the body's outermost {...} or [...].
    let start = body.find(['{', '['])?;
    let end = body.rfind(['}', ']'])?;
    serde_json::from_str(&body[start..=end]).ok()
}

/// The record of job `name` at `GET /api/v1/jobs`.
fn job(port: u16, name: &str) -> Option<serde_json::Value> {
    let jobs = get_json(port, "/api/v1/jobs")?;
    let list = jobs["data"].as_array()?.clone();
    list.into_iter().find(|j| j["name"] == name)
}

#[test]
fn a_rollup_job_killed_with_sigkill_mid_run_is_taken_over_and_the_rollups_converge() {
    let dir = tempfile::tempdir().unwrap();
    assert!(switchboard(dir.path()).arg("migrate").output().unwrap().status.success());
    const CALLS: u64 = 60_000;
    let out = switchboard(dir.path()).args(["seed", "--calls", &CALLS.to_string()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut a = serve_rollups(dir.path(), port);
    // Killed while its first run (the backfill of every seeded call) holds the lease.
    let started = std::time::Instant::now();
    let holder = loop {
        if let Some(j) = job(port, "analytics_rollups")
            && let Some(owner) = j["owner"].as_str()
        {
            break owner.to_owned();
        }
        assert!(a.try_wait().unwrap().is_none(), "serve exited");
        assert!(started.elapsed() < std::time::Duration::from_secs(120), "the rollup job never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    a.kill().unwrap();
    let _ = a.wait();
    // A second instance: it must wait out the dead holder's lease (2 s), then run the job itself.
    let port_b = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut b = serve_rollups(dir.path(), port_b);
    let now = chrono::Utc::now();
    let series = format!(
        "/api/v1/dashboard/timeseries?metric=calls&interval=day&from={}&to={}",
        (now - chrono::Duration::days(40)).format("%Y-%m-%dT00:00:00Z"),
        (now + chrono::Duration::days(1)).format("%Y-%m-%dT00:00:00Z"),
    );
    let started = std::time::Instant::now();
    let (mut total, mut taken_over) = (0u64, false);
    while started.elapsed() < std::time::Duration::from_secs(120) {
        if let Some(j) = job(port_b, "analytics_rollups") {
            taken_over |= j["owner"].as_str().is_some_and(|o| o != holder) || j["runs"].as_i64().unwrap_or(0) > 1;
        }
        if let Some(s) = get_json(port_b, &series) {
            total =
                s["points"].as_array().map_or(0, |p| p.iter().map(|p| p["value"].as_f64().unwrap_or(0.0) as u64).sum());
            if taken_over && total == CALLS {
                break;
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let _ = b.kill();
    let _ = b.wait();
    assert!(taken_over, "the second instance ran the job after the dead holder's lease lapsed");
    assert_eq!(total, CALLS, "every seeded call is in the day rollups after the takeover");
}

/// `serve` on `port` in `dir` with the search-index upkeep every second, a
/// 5 s lease and one page per merge step, 20 ms apart (so a run lasts a few
/// seconds); no dialer, no rollups.
fn serve_search_index(dir: &std::path::Path, port: u16) -> std::process::Child {
    serve_with(
        dir,
        port,
        &[
            ("SWITCHBOARD_ANALYTICS__ENABLED", "false"),
            ("SWITCHBOARD_SEARCH_INDEX__EVERY_SECS", "1"),
            ("SWITCHBOARD_SEARCH_INDEX__LEASE_SECS", "5"),
            ("SWITCHBOARD_SEARCH_INDEX__PAGES_PER_STEP", "1"),
            ("SWITCHBOARD_SEARCH_INDEX__PAUSE_MS", "20"),
        ],
    )
}

/// Transcripts matching `q`, newest first, counted over every page.
async fn count_matches(store: &dyn switchboard_storage::Storage, q: &str) -> usize {
    use switchboard_storage::{PageRequest, SearchOrder, TextQuery, TranscriptFilter};
    let q = TextQuery::parse(q).unwrap();
    let (mut n, mut page) = (0, PageRequest::first(200));
    loop {
        let p = store.search_transcripts(&q, &TranscriptFilter::default(), SearchOrder::Newest, &page).await.unwrap();
        n += p.items.len();
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return n,
        }
    }
}

#[test]
fn a_search_index_merge_killed_with_sigkill_is_continued_and_the_index_stays_whole() {
    use switchboard_storage::{JobStore, Storage, TranscriptStore};
    let dir = tempfile::tempdir().unwrap();
    assert!(switchboard(dir.path()).arg("migrate").output().unwrap().status.success());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = switchboard_storage_sqlite::SqliteStore::open(dir.path().join("cli.db"), Default::default()).unwrap();
    // One write per transcript: FTS5 leaves segments for the job to merge.
    const N: u64 = 3_000;
    rt.block_on(async {
        for k in 0..N {
            let words: Vec<String> = (0..60).map(|i| format!("w{}x{}", (k * 7 + i * 13) % 997, i % 5)).collect();
            let t = switchboard::conversations::transcript_from(&serde_json::json!({
                "conversation_id": format!("conv_kill_{k}"), "agent_id": "agent_1", "status": "done",
                "transcript": [{"role": "user", "message": format!("refund {}", words.join(" ")), "time_in_call_secs": 1}],
                "metadata": {"start_time_unix_secs": 1_764_000_000 + k},
            }))
            .unwrap();
            store.upsert_transcript(&t).await.unwrap();
        }
    });
    assert_eq!(rt.block_on(count_matches(&store, "refund")), N as usize);

    // Instance A, killed with SIGKILL while its first run merges.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut a = serve_search_index(dir.path(), port);
    let started = std::time::Instant::now();
    loop {
        if job(port, "search_index").is_some_and(|j| j["running"] == true) {
            break;
        }
        assert!(a.try_wait().unwrap().is_none(), "serve exited");
        assert!(started.elapsed() < std::time::Duration::from_secs(60), "the search_index job never ran");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    a.kill().unwrap();
    let _ = a.wait();
    let killed_at = chrono::Utc::now();
    let held = rt.block_on(store.get_job("search_index")).unwrap().expect("the job's record");
    assert_eq!(held.runs, 0, "the run was killed before it finished");
    let lapse = held.lease_expires_at.expect("the dead instance still holds the lease");
    assert!(lapse > killed_at, "the lease outlives its holder until it lapses");

    // Instance B waits out the lease, then runs the job to the end.
    let port_b = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut b = serve_search_index(dir.path(), port_b);
    let started = std::time::Instant::now();
    let finished = loop {
        if let Some(j) = job(port_b, "search_index")
            && j["runs"].as_i64().unwrap_or(0) >= 1
        {
            break j;
        }
        assert!(b.try_wait().unwrap().is_none(), "serve exited");
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "no run finished after the takeover");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = b.kill();
    let _ = b.wait();
    assert!(finished["last_error"].is_null(), "{finished}");
    let b_started: chrono::DateTime<chrono::Utc> = finished["last_started_at"].as_str().unwrap().parse().unwrap();
    assert!(b_started >= lapse, "B ran only after A's lease lapsed ({b_started} < {lapse})");
    // Nothing is left to merge, and the index holds every transcript.
    assert!(!rt.block_on(store.maintain_search_index(200)).unwrap(), "the takeover merged what was left");
    assert_eq!(rt.block_on(count_matches(&store, "refund")), N as usize);
}
