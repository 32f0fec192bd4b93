//! Conformance cases for Google Sheets links and row states ([`crate::SheetStore`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use switchboard_domain::sheet::{OnRowDeleted, RowIssue, SheetLinkInput, StatusField, SyncState, SyncStatus};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CampaignId, ContactId, SheetLink, SheetLinkId, SheetRow};

use super::Harness;
use crate::{PageRequest, StoreError};

const SHEET_A: &str = "1AbC-dEf_ghIJKlmnop";
const SHEET_B: &str = "9zYx-WvU_tsRQponmlk";

fn link(spreadsheet: &str, tab: &str, campaign: bool, created_at: DateTime<Utc>) -> SheetLink {
    SheetLink::create(
        SheetLinkInput {
            spreadsheet: Some(format!("https://docs.google.com/spreadsheets/d/{spreadsheet}/edit#gid=0")),
            tab: Some(tab.into()),
            campaign_id: campaign.then(|| CampaignId::new().to_string()),
            ..Default::default()
        },
        created_at,
    )
    .expect("valid test link")
}

/// A conflict whose message names `tab` and carries no driver text.
fn assert_tab_conflict(r: Result<impl std::fmt::Debug, StoreError>, tab: &str) {
    match r {
        Err(StoreError::Conflict { what }) => {
            assert!(what.contains(tab), "the conflict names the tab `{tab}`: {what:?}");
            for driver in ["UNIQUE", "constraint", "E11000", "duplicate key", "spreadsheet_tab_uq", "sheet_links."] {
                assert!(!what.contains(driver), "driver text `{driver}` in {what:?}");
            }
        }
        other => panic!("expected a conflict naming tab `{tab}`, got {other:?}"),
    }
}

fn ids(links: &[SheetLink]) -> Vec<SheetLinkId> {
    links.iter().map(|l| l.id.clone()).collect()
}

/// Insert → get is equal field for field; links list newest first across
/// cursor pages; one link per (spreadsheet, tab).
pub async fn sheet_links_round_trip_and_are_unique_per_tab(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "sheet_links_round_trip_and_are_unique_per_tab") {
        return;
    }
    s.migrate().await.unwrap();
    let now = now_ms();
    let mut a = SheetLink::create(
        SheetLinkInput {
            spreadsheet: Some(SHEET_A.into()),
            tab: Some("Leads Q3".into()),
            header_row: Some(2),
            campaign_id: Some(CampaignId::new().to_string()),
            mapping: Some(BTreeMap::from([
                ("Mobile".to_owned(), "phone".to_owned()),
                ("Region".to_owned(), "custom.region".to_owned()),
                ("Notes".to_owned(), "ignore".to_owned()),
            ])),
            on_row_deleted: Some("keep".into()),
            poll_secs: Some(30),
            ..Default::default()
        },
        now - Duration::seconds(3),
    )
    .expect("valid test link");
    a.updated_at = now - Duration::seconds(2);
    assert_eq!(a.status_columns.len(), 7);
    // Same spreadsheet, another tab: allowed. Another spreadsheet: allowed.
    let b = link(SHEET_A, "Archive", false, now - Duration::seconds(2));
    let c = link(SHEET_B, "Leads Q3", true, now - Duration::seconds(1));
    for l in [&b, &a, &c] {
        s.insert_sheet_link(l).await.unwrap();
    }
    for l in [&a, &b, &c] {
        assert_eq!(s.get_sheet_link(&l.id).await.unwrap().as_ref(), Some(l), "round trip of {}", l.id);
    }
    assert_eq!(s.get_sheet_link(&SheetLinkId::new()).await.unwrap(), None);

    // A second link on the same spreadsheet and tab (even for another campaign) conflicts.
    let dup = link(SHEET_A, "Leads Q3", true, now);
    assert_tab_conflict(s.insert_sheet_link(&dup).await, "Leads Q3");
    assert_eq!(s.get_sheet_link(&dup.id).await.unwrap(), None, "a refused link is not stored");

    // Newest first, two pages.
    let p1 = s.list_sheet_links(&PageRequest::first(2)).await.unwrap();
    assert_eq!(ids(&p1.items), vec![c.id.clone(), b.id.clone()]);
    assert_eq!(p1.items, vec![c.clone(), b.clone()]);
    let cursor = p1.next_cursor.clone().expect("a second page");
    let p2 = s.list_sheet_links(&PageRequest { limit: 2, cursor: Some(cursor) }).await.unwrap();
    assert_eq!(p2.items, vec![a.clone()]);
    assert_eq!(p2.next_cursor, None, "the last page has no cursor");
    let all = s.list_sheet_links(&PageRequest::first(10)).await.unwrap();
    assert_eq!(ids(&all.items), vec![c.id.clone(), b.id.clone(), a.id.clone()]);
    assert_eq!(all.next_cursor, None);
}

/// `replace_sheet_link` is compare-and-set on the version and changes the
/// settings only; `set_sheet_state` writes the state without a version change
/// and survives later settings edits.
pub async fn sheet_links_replace_by_version_and_keep_the_sync_state(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "sheet_links_replace_by_version_and_keep_the_sync_state") {
        return;
    }
    s.migrate().await.unwrap();
    let now = now_ms();
    let a = link(SHEET_A, "Leads", true, now);
    let b = link(SHEET_A, "Archive", false, now);
    s.insert_sheet_link(&a).await.unwrap();
    s.insert_sheet_link(&b).await.unwrap();

    // Replace with the current version: settings change, version bumps.
    let t1 = now + Duration::seconds(1);
    let mut edit = a.clone();
    edit.update(
        SheetLinkInput {
            poll_secs: Some(15),
            mapping: Some(BTreeMap::from([
                ("Mobile".to_owned(), "phone".to_owned()),
                ("Full name".to_owned(), "name".to_owned()),
            ])),
            status_columns: Some(BTreeMap::from([
                ("switchboard_id".to_owned(), "Switchboard ID".to_owned()),
                ("status".to_owned(), "Call status".to_owned()),
            ])),
            ..Default::default()
        },
        t1,
    )
    .unwrap();
    let v2 = s.replace_sheet_link(&edit).await.unwrap();
    assert_eq!(v2.version, a.version + 1);
    assert_eq!(v2.poll_secs, 15);
    assert_eq!(v2.mapping, edit.mapping);
    assert_eq!(v2.status_columns.get(&StatusField::Status).map(String::as_str), Some("Call status"));
    assert_eq!(v2.status_columns.len(), 2);
    assert_eq!(v2.updated_at, t1);
    assert_eq!((&v2.spreadsheet_id, &v2.campaign_id, v2.created_at), (&a.spreadsheet_id, &a.campaign_id, a.created_at));
    assert_eq!(s.get_sheet_link(&a.id).await.unwrap().as_ref(), Some(&v2), "replace returns the stored link");

    // An old version is stale and changes nothing.
    let mut late = a.clone();
    late.poll_secs = 300;
    assert!(matches!(s.replace_sheet_link(&late).await, Err(StoreError::Stale(_))), "old version");
    assert_eq!(s.get_sheet_link(&a.id).await.unwrap().as_ref(), Some(&v2));

    // Renaming onto another link's tab is the same tab conflict.
    let mut clash = v2.clone();
    clash.tab = b.tab.clone();
    assert_tab_conflict(s.replace_sheet_link(&clash).await, &b.tab);
    assert_eq!(s.get_sheet_link(&a.id).await.unwrap().as_ref(), Some(&v2), "a refused replace changes nothing");

    // The sync job writes the state: no version change.
    let t2 = now + Duration::seconds(2);
    let state = SyncState {
        status: Some(SyncStatus::Ok),
        last_version: Some(4_242),
        last_sync_at: Some(t2),
        last_success_at: Some(t2 - Duration::milliseconds(250)),
        last_error: None,
        rows: 12,
        valid_rows: 10,
        rows_in: 10,
        rows_out: 7,
        pending_writebacks: 3,
        requests: 5,
        row_issues: vec![
            RowIssue { row: 4, field: "phone".into(), reason: "not a phone number".into() },
            RowIssue { row: 9, field: "row".into(), reason: "duplicate switchboard_id".into() },
        ],
        written_hash: Some("9f86d081884c7d65".into()),
    };
    s.set_sheet_state(&a.id, &state, t2).await.unwrap();
    let got = s.get_sheet_link(&a.id).await.unwrap().unwrap();
    assert_eq!(got.state, state);
    assert_eq!(got.version, v2.version, "the state does not bump the version");
    assert_eq!(got.updated_at, t2);
    assert_eq!(got.poll_secs, 15, "the state does not touch the settings");
    assert_eq!(got.mapping, v2.mapping);

    // A settings edit made from a copy read before the sync keeps the sync's state.
    let t3 = now + Duration::seconds(3);
    let mut edit = v2.clone();
    assert_eq!(edit.state.status, Some(SyncStatus::New), "the copy predates the sync");
    edit.update(SheetLinkInput { poll_secs: Some(120), on_row_deleted: Some("keep".into()), ..Default::default() }, t3)
        .unwrap();
    let v3 = s.replace_sheet_link(&edit).await.unwrap();
    assert_eq!((v3.version, v3.poll_secs, v3.on_row_deleted), (v2.version + 1, 120, OnRowDeleted::Keep));
    assert_eq!(v3.state, state, "a settings replace does not overwrite the sync state");
    assert_eq!(s.get_sheet_link(&a.id).await.unwrap().as_ref(), Some(&v3));

    // A later state replaces the whole state (a cleared field is cleared).
    let t4 = now + Duration::seconds(4);
    let failed = SyncState {
        status: Some(SyncStatus::Error),
        last_sync_at: Some(t4),
        last_error: Some("the spreadsheet is no longer shared".into()),
        written_hash: None,
        row_issues: vec![],
        requests: 6,
        ..state.clone()
    };
    s.set_sheet_state(&a.id, &failed, t4).await.unwrap();
    let got = s.get_sheet_link(&a.id).await.unwrap().unwrap();
    assert_eq!((got.state, got.version, got.updated_at), (failed, v3.version, t4));
    assert_eq!(s.get_sheet_link(&b.id).await.unwrap().as_ref(), Some(&b), "the other link is untouched");

    // Missing ids.
    let missing = SheetLinkId::new();
    assert!(
        matches!(s.set_sheet_state(&missing, &state, t4).await, Err(StoreError::NotFound(_))),
        "state of a missing link"
    );
    let mut ghost = link(SHEET_B, "Ghost", false, now);
    ghost.id = missing.clone();
    assert!(matches!(s.replace_sheet_link(&ghost).await, Err(StoreError::NotFound(_))), "replace of a missing link");
    assert_eq!(s.get_sheet_link(&missing).await.unwrap(), None, "neither call creates the link");
}

fn row(link: &SheetLinkId, contact: &ContactId, fingerprint: &str, row_hint: u32, seen_at: DateTime<Utc>) -> SheetRow {
    SheetRow { link_id: link.clone(), contact_id: contact.clone(), fingerprint: fingerprint.into(), row_hint, seen_at }
}

fn by_contact(mut rows: Vec<SheetRow>) -> Vec<SheetRow> {
    rows.sort_by(|x, y| x.contact_id.as_str().cmp(y.contact_id.as_str()));
    rows
}

/// Row states are keyed by (link, contact): a second put replaces, lists are
/// per link by contact id, deletes count, and deleting a link deletes its rows only.
pub async fn sheet_rows_upsert_list_and_delete_with_their_link(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "sheet_rows_upsert_list_and_delete_with_their_link") {
        return;
    }
    s.migrate().await.unwrap();
    let now = now_ms();
    let a = link(SHEET_A, "Leads", true, now);
    let b = link(SHEET_A, "Archive", false, now);
    s.insert_sheet_link(&a).await.unwrap();
    s.insert_sheet_link(&b).await.unwrap();
    let c: Vec<ContactId> = (0..5).map(|_| ContactId::new()).collect();
    assert!(s.sheet_rows(&a.id).await.unwrap().is_empty());

    // Both links, one put, in no particular order; the same contacts in two links are two rows.
    let first = vec![
        row(&a.id, &c[2], "fa2", 4, now),
        row(&b.id, &c[1], "fb1", 2, now),
        row(&a.id, &c[0], "fa0", 2, now),
        row(&a.id, &c[3], "fa3", 5, now),
        row(&b.id, &c[0], "fb0", 3, now),
        row(&a.id, &c[1], "fa1", 3, now),
    ];
    s.put_sheet_rows(&first).await.unwrap();
    let a_rows = by_contact(first.iter().filter(|r| r.link_id == a.id).cloned().collect());
    let b_rows = by_contact(first.iter().filter(|r| r.link_id == b.id).cloned().collect());
    assert_eq!(s.sheet_rows(&a.id).await.unwrap(), a_rows);
    assert_eq!(s.sheet_rows(&b.id).await.unwrap(), b_rows);

    // Putting again replaces (changed fingerprint, hint, time), never duplicates.
    let later = now + Duration::seconds(5);
    let second = vec![row(&a.id, &c[1], "fa1-v2", 9, later), row(&a.id, &c[4], "fa4", 6, later)];
    s.put_sheet_rows(&second).await.unwrap();
    s.put_sheet_rows(&second).await.unwrap();
    s.put_sheet_rows(&[]).await.unwrap();
    let a_rows = by_contact(vec![
        row(&a.id, &c[0], "fa0", 2, now),
        second[0].clone(),
        row(&a.id, &c[2], "fa2", 4, now),
        row(&a.id, &c[3], "fa3", 5, now),
        second[1].clone(),
    ]);
    assert_eq!(s.sheet_rows(&a.id).await.unwrap(), a_rows);
    assert_eq!(s.sheet_rows(&b.id).await.unwrap(), b_rows, "the other link's row for the same contact stays");

    // Deletes count what existed, in the named link only.
    let n = s.delete_sheet_rows(&a.id, &[c[0].clone(), c[2].clone(), ContactId::new()]).await.unwrap();
    assert_eq!(n, 2);
    assert_eq!(s.delete_sheet_rows(&a.id, &[c[0].clone()]).await.unwrap(), 0, "already gone");
    assert_eq!(s.delete_sheet_rows(&a.id, &[]).await.unwrap(), 0);
    let a_rows: Vec<SheetRow> = a_rows.into_iter().filter(|r| r.contact_id != c[0] && r.contact_id != c[2]).collect();
    assert_eq!(s.sheet_rows(&a.id).await.unwrap(), a_rows);
    assert_eq!(s.sheet_rows(&b.id).await.unwrap(), b_rows, "b's row for c0 is not a's");

    // Deleting a link deletes its rows, not the other link's.
    assert!(s.delete_sheet_link(&a.id).await.unwrap());
    assert_eq!(s.get_sheet_link(&a.id).await.unwrap(), None);
    assert!(s.sheet_rows(&a.id).await.unwrap().is_empty(), "a deleted link has no rows");
    assert_eq!(s.sheet_rows(&b.id).await.unwrap(), b_rows);
    assert!(!s.delete_sheet_link(&a.id).await.unwrap(), "deleting twice finds nothing");
    let left = s.list_sheet_links(&PageRequest::first(10)).await.unwrap();
    assert_eq!(ids(&left.items), vec![b.id.clone()]);
    // The same tab can be linked again once its link is gone.
    let again = link(SHEET_A, "Leads", false, now + Duration::seconds(6));
    s.insert_sheet_link(&again).await.unwrap();
    assert!(s.sheet_rows(&again.id).await.unwrap().is_empty());
}
