//! The pure part of the Sheets sync: reading a tab's grid (header layout,
//! rows as contacts), matching rows to contacts by identity, and computing
//! the cells Switchboard must write. No I/O here, so every rule is unit
//! tested; `sync.rs` does the talking.
//!
//! Row matching (a row is a contact, whatever its position):
//! 1. A row whose `sb_id` cell names a contact of this link and whose
//!    people-owned cells are unchanged since the last sync (same
//!    fingerprint) is that contact. Cheap: no store read.
//! 2. Any other valid row is matched by its phone: a contact of this link
//!    with that phone first (so a row whose `sb_id` is wrong — copied from
//!    another row, or left by a write that raced a sort — is re-targeted to
//!    the contact its phone says, and its `sb_id` rewritten), else the
//!    row's `sb_id` contact when that contact has no row yet (the person
//!    edited the phone: the contact's phone follows the sheet), else the
//!    stored contact with that phone, else a new contact.
//! 3. A second row with a phone already matched is invalid ("duplicate
//!    phone, same as row N"); a row that fails validation is invalid. An
//!    invalid row carrying the `sb_id` of a link contact keeps that contact
//!    present (a typo does not cancel anyone's enrollment).
//! 4. Contacts of the link matched by no row were deleted from the sheet.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_domain::sheet::StatusField;
use switchboard_domain::{Contact, ContactId, Enrollment, FieldError, SheetLink};

use crate::import::{ImportOptions, column_fields, row_contact};

/// Where things are in the tab.
#[derive(Debug, Clone, PartialEq)]
pub struct Layout {
    /// Column index → contact field, for the people-owned mapped columns.
    pub fields: Vec<(usize, String)>,
    /// Status field → column index (missing headers get the next free columns).
    pub owned: BTreeMap<StatusField, usize>,
    /// Headers to add to the header row: (column index, header).
    pub new_headers: Vec<(usize, String)>,
}

/// A cell as text (numbers as Sheets shows them unformatted, booleans upper-case).
pub fn cell_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.trim().to_owned(),
        Some(Value::Bool(b)) => if *b { "TRUE" } else { "FALSE" }.to_owned(),
        Some(Value::Number(n)) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.to_string(),
        },
        Some(other) => other.to_string(),
    }
}

/// Understands the header row: mapped columns, and where the status columns are or go.
pub fn layout(header: &[Value], link: &SheetLink) -> Result<Layout, String> {
    let headers: Vec<String> = header.iter().map(|v| cell_text(Some(v))).collect();
    let mut owned = BTreeMap::new();
    for (field, name) in &link.status_columns {
        if let Some(i) = headers.iter().position(|h| h.eq_ignore_ascii_case(name)) {
            owned.insert(*field, i);
        }
    }
    let owned_cols: HashSet<usize> = owned.values().copied().collect();
    // Status columns and blank headers are not contact fields.
    let mut mapping: Vec<(String, String)> = link.mapping.iter().map(|(h, f)| (h.clone(), f.clone())).collect();
    for (i, h) in headers.iter().enumerate() {
        if owned_cols.contains(&i) || h.is_empty() {
            mapping.push((h.clone(), "ignore".into()));
        }
    }
    let mapped = column_fields(&headers, &mapping)?;
    let fields = mapped
        .into_iter()
        .enumerate()
        .filter(|(i, f)| f != "ignore" && !owned_cols.contains(i) && !headers[*i].is_empty())
        .collect();
    let mut next = headers.len();
    let mut new_headers = Vec::new();
    for (field, name) in &link.status_columns {
        if !owned.contains_key(field) {
            owned.insert(*field, next);
            new_headers.push((next, name.clone()));
            next += 1;
        }
    }
    Ok(Layout { fields, owned, new_headers })
}

/// One data row as read.
#[derive(Debug, Clone)]
pub struct ParsedRow {
    /// 1-based sheet row number.
    pub row: u32,
    /// The `sb_id` cell, if it holds a contact id.
    pub id: Option<ContactId>,
    /// Hash of the people-owned cells.
    pub fingerprint: String,
    /// The row as a validated contact (new id), or why not.
    pub contact: Result<Contact, Vec<FieldError>>,
    /// The owned cells as they are now, by field.
    pub owned: BTreeMap<StatusField, String>,
}

/// Parses the data rows below the header (`first_row` is the sheet row of `rows[0]`); blank rows are skipped.
pub fn parse_rows(
    rows: &[Vec<Value>],
    first_row: u32,
    layout: &Layout,
    opts: &ImportOptions,
    source: &str,
) -> Vec<ParsedRow> {
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let cells: Vec<(String, String)> =
            layout.fields.iter().map(|(c, f)| (f.clone(), cell_text(r.get(*c)))).collect();
        if cells.iter().all(|(_, v)| v.is_empty()) {
            continue;
        }
        let mut h = Sha256::new();
        for (f, v) in &cells {
            h.update(f.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        let fingerprint = hex::encode(&h.finalize()[..16]);
        let owned: BTreeMap<StatusField, String> =
            layout.owned.iter().map(|(f, c)| (*f, cell_text(r.get(*c)))).collect();
        let id = owned.get(&StatusField::SwitchboardId).and_then(|v| ContactId::parse(v).ok());
        out.push(ParsedRow {
            row: first_row + i as u32,
            id,
            fingerprint,
            contact: row_contact(&cells, opts, source),
            owned,
        });
    }
    out
}

/// What is known of the link's contacts before matching.
#[derive(Debug, Default)]
pub struct Known {
    /// Link contact → fingerprint of its row at the last sync.
    pub fingerprints: HashMap<ContactId, String>,
    /// Link contact → its stored phone (needed only for rows that changed; missing ones are looked up).
    pub phones: HashMap<ContactId, String>,
}

/// Link contacts whose phone [`match_rows`] needs: those not matched by an
/// unchanged row (changed, moved or deleted ones).
pub fn needs_phone(rows: &[ParsedRow], known: &Known) -> Vec<ContactId> {
    let unchanged: HashSet<&ContactId> = rows
        .iter()
        .filter_map(|r| r.id.as_ref().filter(|id| known.fingerprints.get(*id) == Some(&r.fingerprint)))
        .collect();
    known.fingerprints.keys().filter(|id| !unchanged.contains(id) && !known.phones.contains_key(*id)).cloned().collect()
}

/// How one row was matched.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    /// Unchanged row of a link contact.
    Unchanged(ContactId),
    /// A link contact whose row changed: apply the row's fields.
    Changed(ContactId),
    /// Not a link contact yet: look the phone up in the store (existing → adopt, none → create).
    ByPhone,
    /// Invalid: the issues, and the link contact it keeps present (its `sb_id`), if any.
    Invalid(Vec<FieldError>, Option<ContactId>),
}

/// Matches every row (rules in the module doc). `known.phones` must hold
/// the phone of every link contact named by a changed row's `sb_id` and of
/// every link contact not matched in pass 1 (the caller fetches them).
pub fn match_rows(rows: &[ParsedRow], known: &Known) -> Vec<Match> {
    let mut out: Vec<Option<Match>> = vec![None; rows.len()];
    let mut claimed: HashSet<ContactId> = HashSet::new();
    let mut phone_row: HashMap<String, u32> = HashMap::new();
    // Pass 1: unchanged rows of link contacts.
    for (i, r) in rows.iter().enumerate() {
        let (Some(id), Ok(c)) = (&r.id, &r.contact) else { continue };
        if known.fingerprints.get(id) == Some(&r.fingerprint) && !claimed.contains(id) {
            claimed.insert(id.clone());
            phone_row.insert(c.phone.clone(), r.row);
            out[i] = Some(Match::Unchanged(id.clone()));
        }
    }
    let by_phone: HashMap<&str, &ContactId> = known
        .phones
        .iter()
        .filter(|(id, _)| known.fingerprints.contains_key(*id))
        .map(|(id, p)| (p.as_str(), id))
        .collect();
    // Pass 2: every other row, in sheet order.
    for (i, r) in rows.iter().enumerate() {
        if out[i].is_some() {
            continue;
        }
        let keeps = r.id.clone().filter(|id| known.fingerprints.contains_key(id) && !claimed.contains(id));
        let c = match &r.contact {
            Ok(c) => c,
            Err(errs) => {
                if let Some(id) = &keeps {
                    claimed.insert(id.clone());
                }
                out[i] = Some(Match::Invalid(errs.clone(), keeps));
                continue;
            }
        };
        if let Some(first) = phone_row.get(&c.phone) {
            let e = FieldError::new("phone", format!("duplicate phone {}: same as row {first}", c.phone));
            out[i] = Some(Match::Invalid(vec![e], None));
            continue;
        }
        phone_row.insert(c.phone.clone(), r.row);
        let m = match by_phone.get(c.phone.as_str()) {
            Some(member) if !claimed.contains(*member) => Match::Changed((*member).clone()),
            Some(member) => {
                let e =
                    FieldError::new("phone", format!("duplicate phone {}: contact {member} has another row", c.phone));
                Match::Invalid(vec![e], None)
            }
            None => match keeps {
                // The person edited this contact's phone (the new one is no link contact's).
                Some(id) => Match::Changed(id),
                None => Match::ByPhone,
            },
        };
        if let Match::Changed(id) = &m {
            claimed.insert(id.clone());
        }
        out[i] = Some(m);
    }
    out.into_iter().map(|m| m.expect("every row is matched")).collect()
}

/// Applies the people-owned fields of a row to a stored contact: mapped
/// fields take the sheet's value (an empty cell clears the field);
/// unmapped fields and custom keys keep theirs.
pub fn apply_row(stored: &Contact, row: &Contact, fields: &[(usize, String)]) -> Contact {
    let mut c = stored.clone();
    let mapped: HashSet<&str> = fields.iter().map(|(_, f)| f.as_str()).collect();
    let has = |f: &str| mapped.contains(f);
    c.phone = row.phone.clone();
    c.region = row.region.clone();
    if has("name") || has("first_name") || has("last_name") {
        c.name = row.name.clone();
    }
    if has("email") {
        c.email = row.email.clone();
    }
    if has("tags") {
        c.tags = row.tags.clone();
    }
    if has("time_zone") {
        c.time_zone = row.time_zone.clone();
    }
    if has("lat") || has("lon") {
        c.location = row.location;
    }
    if has("do_not_call") {
        c.do_not_call = row.do_not_call.clone();
    }
    for f in &mapped {
        if let Some(key) = f.strip_prefix("custom.") {
            match row.custom.get(key) {
                Some(v) => c.custom.insert(key.to_owned(), v.clone()),
                None => c.custom.remove(key),
            };
        }
    }
    c
}

/// The owned cells a row should show.
pub fn desired_cells(
    link: &SheetLink,
    contact: Option<&ContactId>,
    enrollment: Option<&Enrollment>,
    issues: &[FieldError],
) -> BTreeMap<StatusField, String> {
    let mut out = BTreeMap::new();
    for field in link.status_columns.keys() {
        let v = match field {
            StatusField::SwitchboardId => match contact {
                Some(id) => id.to_string(),
                // An invalid row without identity: its `sb_id` cell is left as the person has it.
                None => continue,
            },
            StatusField::SyncError => {
                issues.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect::<Vec<_>>().join("; ")
            }
            _ if contact.is_none() => continue,
            StatusField::Status => enrollment.map(|e| e.status.as_str().to_owned()).unwrap_or_default(),
            StatusField::Attempts => enrollment.map(|e| e.attempts.to_string()).unwrap_or_default(),
            StatusField::LastOutcome => {
                enrollment.and_then(|e| e.last_outcome).map(|o| o.as_str().to_owned()).unwrap_or_default()
            }
            StatusField::LastCalledAt => enrollment
                .and_then(|e| e.history.last())
                .map(|a| a.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                .unwrap_or_default(),
            StatusField::CallId => enrollment
                .and_then(|e| e.current_call_id.clone().or_else(|| e.history.last().map(|a| a.call_id.clone())))
                .map(|c| c.to_string())
                .unwrap_or_default(),
        };
        out.insert(*field, v);
    }
    out
}

/// One cell to write: (0-based row index in the sheet, 0-based column, text).
pub type CellWrite = (u32, usize, String);

/// Coalesces cell writes into A1 ranges: runs of adjacent columns in a row,
/// then runs of consecutive rows with the same column span.
pub fn coalesce(tab: &str, mut cells: Vec<CellWrite>) -> Vec<(String, Vec<Vec<Value>>)> {
    cells.sort_by_key(|(r, c, _)| (*r, *c));
    // Per row: spans of adjacent columns.
    let mut spans: Vec<(u32, usize, Vec<String>)> = Vec::new();
    for (r, c, v) in cells {
        match spans.last_mut() {
            Some((lr, lc, vals)) if *lr == r && *lc + vals.len() == c => vals.push(v),
            _ => spans.push((r, c, vec![v])),
        }
    }
    // Stack spans with the same columns on consecutive rows.
    let mut blocks: Vec<(u32, usize, Vec<Vec<String>>)> = Vec::new();
    spans.sort_by_key(|(r, c, vals)| (*c, vals.len(), *r));
    for (r, c, vals) in spans {
        match blocks.last_mut() {
            Some((r0, c0, rows)) if *c0 == c && rows[0].len() == vals.len() && *r0 + rows.len() as u32 == r => {
                rows.push(vals)
            }
            _ => blocks.push((r, c, vec![vals])),
        }
    }
    let quoted = format!("'{}'", tab.replace('\'', "''"));
    blocks
        .into_iter()
        .map(|(r, c, rows)| {
            let (c1, r1) = (c + rows[0].len() - 1, r as usize + rows.len());
            let range = format!(
                "{quoted}!{}{}:{}{}",
                switchboard_sim::google::col_name(c),
                r + 1,
                switchboard_sim::google::col_name(c1),
                r1
            );
            (range, rows.into_iter().map(|vals| vals.into_iter().map(Value::String).collect()).collect())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_domain::sheet::SheetLinkInput;

    use super::*;

    fn link() -> SheetLink {
        let input: SheetLinkInput = serde_json::from_value(json!({"spreadsheet": "1SheetIdForTests",
            "campaign_id": switchboard_domain::CampaignId::new().to_string()}))
        .unwrap();
        SheetLink::create(input, switchboard_domain::time::now_ms()).unwrap()
    }

    fn row(vals: &[&str]) -> Vec<Value> {
        vals.iter().map(|v| json!(v)).collect()
    }

    fn parse(link: &SheetLink, header: &[&str], rows: &[Vec<&str>]) -> (Layout, Vec<ParsedRow>) {
        let l = layout(&row(header), link).unwrap();
        let rows: Vec<Vec<Value>> = rows.iter().map(|r| row(r)).collect();
        let parsed = parse_rows(&rows, 2, &l, &ImportOptions::default(), "sheet:test");
        (l, parsed)
    }

    #[test]
    fn the_layout_maps_aliases_and_places_missing_status_columns_after_the_last_header() {
        let l = link();
        let lay = layout(&row(&["Mobile", "Full Name", "Plan", "sb_status"]), &l).unwrap();
        assert_eq!(lay.fields, vec![(0, "phone".into()), (1, "name".into()), (2, "custom.plan".into())]);
        assert_eq!(lay.owned[&StatusField::Status], 3);
        assert_eq!(lay.new_headers.len(), 6, "{:?}", lay.new_headers);
        assert!(lay.new_headers.iter().all(|(c, _)| *c >= 4));
        assert!(layout(&row(&["Name"]), &l).unwrap_err().contains("no phone column"));
    }

    #[test]
    fn unchanged_rows_match_by_id_and_moved_ids_are_retargeted_by_phone() {
        let l = link();
        let header = ["phone", "name", "sb_id"];
        let (a, b) = (ContactId::new(), ContactId::new());
        let (_, first) =
            parse(&l, &header, &[vec!["+14155550101", "Ann", a.as_str()], vec!["+14155550102", "Bob", b.as_str()]]);
        let mut known = Known::default();
        known.fingerprints.insert(a.clone(), first[0].fingerprint.clone());
        known.fingerprints.insert(b.clone(), first[1].fingerprint.clone());
        assert_eq!(match_rows(&first, &known), vec![Match::Unchanged(a.clone()), Match::Unchanged(b.clone())]);
        // Sorted, and (a write racing the sort) the ids swapped rows: the phones decide.
        let (_, swapped) =
            parse(&l, &header, &[vec!["+14155550102", "Bob", a.as_str()], vec!["+14155550101", "Ann", b.as_str()]]);
        known.phones.insert(a.clone(), "+14155550101".into());
        known.phones.insert(b.clone(), "+14155550102".into());
        assert_eq!(match_rows(&swapped, &known), vec![Match::Changed(b.clone()), Match::Changed(a.clone())]);
    }

    #[test]
    fn an_edited_phone_follows_the_row_and_a_duplicate_phone_is_an_issue_naming_the_first_row() {
        let l = link();
        let header = ["phone", "name", "sb_id"];
        let a = ContactId::new();
        let mut known = Known::default();
        known.fingerprints.insert(a.clone(), "old".into());
        known.phones.insert(a.clone(), "+14155550101".into());
        let (_, rows) = parse(
            &l,
            &header,
            &[
                vec!["+14155550199", "Ann", a.as_str()],
                vec!["(415) 555-0199", "Ann again", ""],
                vec!["+14155550103", "Cy", ""],
            ],
        );
        let m = match_rows(&rows, &known);
        assert_eq!(m[0], Match::Changed(a.clone()), "the person edited Ann's phone");
        match &m[1] {
            Match::Invalid(e, None) => assert!(e[0].reason.contains("same as row 2"), "{e:?}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(m[2], Match::ByPhone);
    }

    #[test]
    fn an_invalid_row_keeps_its_contact_present_and_reports_the_field() {
        let l = link();
        let a = ContactId::new();
        let mut known = Known::default();
        known.fingerprints.insert(a.clone(), "old".into());
        let (_, rows) = parse(&l, &["phone", "email", "sb_id"], &[vec!["not a phone", "x@y.z", a.as_str()]]);
        match &match_rows(&rows, &known)[0] {
            Match::Invalid(e, Some(id)) => {
                assert_eq!(id, &a);
                assert_eq!(e[0].field, "phone");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn blank_rows_are_skipped_and_row_numbers_are_sheet_rows() {
        let l = link();
        let (_, rows) = parse(&l, &["phone"], &[vec!["+14155550101"], vec![""], vec!["+14155550102"]]);
        assert_eq!(rows.iter().map(|r| r.row).collect::<Vec<_>>(), vec![2, 4]);
    }

    #[test]
    fn writes_coalesce_into_few_ranges() {
        let cells = vec![
            (1, 3, "a".into()),
            (1, 4, "b".into()),
            (2, 3, "c".into()),
            (2, 4, "d".into()),
            (5, 3, "e".into()),
            (5, 4, "f".into()),
            (6, 0, "g".into()),
        ];
        let r = coalesce("Leads 'A'", cells);
        let ranges: Vec<&str> = r.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(ranges, vec!["'Leads ''A'''!A7:A7", "'Leads ''A'''!D2:E3", "'Leads ''A'''!D6:E6"]);
        assert_eq!(r[1].1, vec![vec![json!("a"), json!("b")], vec![json!("c"), json!("d")]]);
    }

    #[test]
    fn applying_a_row_changes_mapped_fields_only() {
        let now = switchboard_domain::time::now_ms();
        let stored: Contact = switchboard_domain::ContactInput {
            phone: Some("+14155550101".into()),
            name: Some("Ann".into()),
            email: Some("ann@example.com".into()),
            ..Default::default()
        }
        .validate("US", now)
        .unwrap();
        let row: Contact = switchboard_domain::ContactInput {
            phone: Some("+14155550109".into()),
            name: Some("Ann B".into()),
            ..Default::default()
        }
        .validate("US", now)
        .unwrap();
        let c = apply_row(&stored, &row, &[(0, "phone".into()), (1, "name".into())]);
        assert_eq!(
            (c.phone.as_str(), c.name.as_deref(), c.email.as_deref()),
            ("+14155550109", Some("Ann B"), Some("ann@example.com"))
        );
        assert_eq!(c.id, stored.id);
    }
}
