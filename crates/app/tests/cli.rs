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
