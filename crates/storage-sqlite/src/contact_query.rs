//! The statements of one `list_contacts` page, each a bounded index range
//! scan (migration 0004; the plans are checked by `EXPLAIN QUERY PLAN` in the
//! tests below for every filter combination).
//!
//! - **Without `search`** the page is in created order, on `contacts
//!   (created_at, id)` or `contacts (dnc, created_at, id)`, or, with `tag`, on
//!   `tagged_contacts`, whose primary key is `(tag, dnc, created_at,
//!   contact_id)`. A tag row carries copies of the contact's `created_at`,
//!   `dnc`, `name_lc`, `email_lc` and `phone` (written with the contact), so a
//!   tag page never reads a contact it does not return.
//! - **With `search`** a page is in *match order*: first the contacts whose
//!   name starts with the query, by `(name_lc, id)`; then those whose e-mail
//!   does (and name does not), by `(email_lc, id)`; then those whose phone
//!   does (and neither name nor e-mail), by phone. Each stage reads an index
//!   that starts with the equalities (`tag`, `dnc`) and continues with the
//!   matched column, so the prefix is a range of that index already in page
//!   order, and the keyset cursor (stage, key, id) seeks into it. No
//!   created-order page over a prefix of three columns can be read in bounded
//!   time (the union of three ranges would have to be sorted), hence the
//!   different order. A stage stops at the page's `limit + 1` rows; the next
//!   stage runs only when the page is not full. The one cost beyond the page:
//!   the e-mail stage passes over contacts that matched by name too (the
//!   phone stage: by name or e-mail), index-only for names (the e-mail
//!   indexes end with `name_lc`), and only on the pages where that stage is
//!   reached.
//! - **Without a `dnc` filter** the same statement runs for `dnc = 0` and
//!   `dnc = 1` and the two ordered ranges are merged (at most `2 × (limit +
//!   1)` rows), so only the dnc-prefixed indexes exist; the unfiltered created
//!   page and the untagged phone stage have their own (`contacts_created`,
//!   `contacts_phone_uq`).

use rusqlite::types::Value;
use switchboard_domain::ContactId;
use switchboard_storage::{ContactFilter, ContactSort, Cursor, StoreError, StoreResult};

use crate::rows::Where;

/// The cursor sort name of search pages (both `sort`s: match order has one direction).
pub(crate) const SEARCH_SORT: &str = "contacts_search";

/// Upper bound of a prefix range: `q <= key < q + U+10FFFF`.
const PREFIX_END: char = '\u{10FFFF}';

/// One statement: `sql` selects `(doc, matched key or NULL)`.
#[derive(Debug, Clone)]
pub(crate) struct Stmt {
    pub(crate) sql: String,
    pub(crate) values: Vec<Value>,
}

/// The search terms of a filter: the lower-cased query and the phone prefix (`+digits`).
#[derive(Debug, Clone)]
pub(crate) struct Terms {
    q: String,
    phone: Option<String>,
}

impl Terms {
    pub(crate) fn of(filter: &ContactFilter) -> Option<Terms> {
        let q = filter.search.as_ref().map(|q| q.trim().to_lowercase()).filter(|q| !q.is_empty())?;
        let digits = q.trim_start_matches('+');
        let phone = (!digits.is_empty()).then(|| format!("+{digits}"));
        Some(Terms { q, phone })
    }

    /// Stages that can match: name (0), e-mail (1), phone (2, only with digits).
    pub(crate) fn stages(&self) -> std::ops::RangeInclusive<u8> {
        0..=if self.phone.is_some() { 2 } else { 1 }
    }
}

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum After {
    /// Created order: after (created_at, id).
    Created(i64, String),
    /// Match order: after (stage, key, id).
    Matched(u8, String, String),
}

/// Decodes a page cursor for this filter and sort.
pub(crate) fn decode_after(cursor: Option<&str>, search: bool, sort: ContactSort) -> StoreResult<Option<After>> {
    let Some(c) = cursor else { return Ok(None) };
    if !search {
        let c = Cursor::decode(c, sort.name())?;
        return Ok(Some(After::Created(c.key, c.id)));
    }
    let c = Cursor::decode(c, SEARCH_SORT)?;
    let bad = || StoreError::Invalid("cursor is not a cursor this API issued".into());
    // `id` is the contact id (fixed length) followed by the matched key.
    let split = "con_".len() + 32;
    if !(0..=2).contains(&c.key) || c.id.len() < split || !c.id.is_char_boundary(split) {
        return Err(bad());
    }
    let (id, key) = c.id.split_at(split);
    ContactId::parse(id).map_err(|_| bad())?;
    Ok(Some(After::Matched(c.key as u8, key.to_owned(), id.to_owned())))
}

/// The cursor after an item of a search page.
pub(crate) fn search_cursor(stage: u8, key: &str, id: &ContactId) -> Cursor {
    Cursor { sort: SEARCH_SORT.into(), key: i64::from(stage), id: format!("{id}{key}") }
}

/// The `dnc` values a page reads: the filter's, or both (two ranges merged)
/// when the shape has no index without `dnc` (`single`: it has one).
fn dnc_values(filter: &ContactFilter, single: bool) -> Vec<Option<bool>> {
    match filter.dnc {
        Some(d) => vec![Some(d)],
        None if single => vec![None],
        None => vec![Some(false), Some(true)],
    }
}

/// `FROM` (with the index that serves the page, `INDEXED BY` so no statistics
/// can pick another) and the alias and id column of the driving table. With a
/// tag, `tagged_contacts t` drives (its indexes carry the filtered columns)
/// and each row it keeps fetches its contact by primary key.
fn source(tag: Option<&str>, dnc: Option<bool>, key: &str, w: &mut Where) -> (String, &'static str, &'static str) {
    if let Some(t) = tag {
        w.push("t.tag = ?", [Value::Text(t.to_lowercase())]);
        let d = dnc.expect("a tag page names dnc");
        w.push("t.dnc = ?", [Value::Integer(d as i64)]);
        // The primary key is (tag, dnc, created_at, contact_id).
        let index = if key == "created" { String::new() } else { format!(" INDEXED BY tagged_contacts_dnc_{key}") };
        (format!("FROM tagged_contacts t{index} CROSS JOIN contacts c ON c.id = t.contact_id"), "t", "t.contact_id")
    } else {
        if let Some(d) = dnc {
            w.push("c.dnc = ?", [Value::Integer(d as i64)]);
        }
        let index = match (dnc.is_some(), key) {
            (true, k) => format!("contacts_dnc_{k}"),
            (false, "phone") => "contacts_phone_uq".to_owned(),
            (false, _) => "contacts_created".to_owned(),
        };
        (format!("FROM contacts c INDEXED BY {index}"), "c", "c.id")
    }
}

/// The created-order statements of a page without `search` (two when both
/// `dnc` values are read; the caller merges them).
pub(crate) fn created_page(filter: &ContactFilter, sort: ContactSort, after: Option<&After>, n: u32) -> Vec<Stmt> {
    let tag = filter.tag.as_deref();
    let (cmp, dir) = match sort {
        ContactSort::CreatedDesc => ("<", "DESC"),
        ContactSort::CreatedAsc => (">", "ASC"),
    };
    dnc_values(filter, tag.is_none())
        .into_iter()
        .map(|dnc| {
            let mut w = Where::default();
            let (from, a, id) = source(tag, dnc, "created", &mut w);
            if let Some(After::Created(k, i)) = after {
                w.push(&format!("({a}.created_at, {id}) {cmp} (?, ?)"), [Value::Integer(*k), Value::Text(i.clone())]);
            }
            let sql = format!(
                "SELECT c.doc, NULL, {a}.created_at, {id} {from} {} ORDER BY {a}.created_at {dir}, {id} {dir} LIMIT {n}",
                w.sql()
            );
            Stmt { sql, values: w.values }
        })
        .collect()
}

fn prefix_end(p: &str) -> Value {
    Value::Text(format!("{p}{PREFIX_END}"))
}

fn not_prefix(w: &mut Where, col: &str, p: &str) {
    w.push(&format!("({col} IS NULL OR {col} < ? OR {col} >= ?)"), [Value::Text(p.to_owned()), prefix_end(p)]);
}

/// The statements of one search stage (see the module docs; two when both
/// `dnc` values are read, merged by the caller), none when the cursor is past it.
pub(crate) fn search_stage(
    filter: &ContactFilter,
    terms: &Terms,
    stage: u8,
    after: Option<&After>,
    n: u32,
) -> Vec<Stmt> {
    let (col, short, p) = match stage {
        0 => ("name_lc", "name", terms.q.as_str()),
        1 => ("email_lc", "email", terms.q.as_str()),
        _ => match terms.phone.as_deref() {
            Some(p) => ("phone", "phone", p),
            None => return Vec::new(),
        },
    };
    if matches!(after, Some(After::Matched(s, _, _)) if *s > stage) {
        return Vec::new();
    }
    let tag = filter.tag.as_deref();
    dnc_values(filter, tag.is_none() && col == "phone")
        .into_iter()
        .map(|dnc| {
            let mut w = Where::default();
            let (from, a, id) = source(tag, dnc, short, &mut w);
            let key = format!("{a}.{col}");
            // The lower bound is the cursor when there is one inside the
            // prefix, so the index seek starts there; else the prefix.
            match after {
                // Phones are unique: the key alone positions the cursor.
                Some(After::Matched(s, k, _)) if *s == stage && k.as_str() >= p && col == "phone" => {
                    w.push(&format!("{key} > ?"), [Value::Text(k.clone())]);
                }
                Some(After::Matched(s, k, i)) if *s == stage && k.as_str() >= p => {
                    w.push(&format!("({key}, {id}) > (?, ?)"), [Value::Text(k.clone()), Value::Text(i.clone())]);
                }
                _ => w.push(&format!("{key} >= ?"), [Value::Text(p.to_owned())]),
            }
            w.push(&format!("{key} < ?"), [prefix_end(p)]);
            if stage >= 1 {
                not_prefix(&mut w, &format!("{a}.name_lc"), &terms.q);
            }
            if stage >= 2 {
                not_prefix(&mut w, &format!("{a}.email_lc"), &terms.q);
            }
            let sql =
                format!("SELECT c.doc, {key}, {a}.created_at, {id} {from} {} ORDER BY {key}, {id} LIMIT {n}", w.sql());
            Stmt { sql, values: w.values }
        })
        .collect()
}

/// A row of a page statement.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) doc: String,
    pub(crate) key: Option<String>,
    pub(crate) created_at: i64,
    pub(crate) id: String,
}

/// Runs the statements of one page (or stage) and merges their rows in page
/// order, at most `n`: each statement is already in that order and limited to
/// `n`, so this sorts at most `2n` rows.
pub(crate) fn run_merged(
    conn: &rusqlite::Connection,
    stmts: &[Stmt],
    order: Option<ContactSort>,
    n: u32,
) -> rusqlite::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for st in stmts {
        let mut q = conn.prepare_cached(&st.sql)?;
        let it = q.query_map(rusqlite::params_from_iter(&st.values), |r| {
            Ok(Row { doc: r.get(0)?, key: r.get(1)?, created_at: r.get(2)?, id: r.get(3)? })
        })?;
        for r in it {
            rows.push(r?);
        }
    }
    if stmts.len() > 1 {
        match order {
            None => rows.sort_by(|a, b| (&a.key, &a.id).cmp(&(&b.key, &b.id))),
            Some(ContactSort::CreatedAsc) => rows.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id))),
            Some(ContactSort::CreatedDesc) => rows.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id))),
        }
        rows.truncate(n as usize);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use switchboard_domain::ContactInput;

    use super::*;

    /// A migrated database with a skewed population and fresh statistics, so
    /// the planner decides as it would on a real store.
    fn store() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "foreign_keys", "ON").unwrap();
        crate::migrate_conn(&conn).unwrap();
        let names = ["dana", "dale", "fox", "walter", "monica", "john"];
        for i in 0..600u32 {
            let mut c = ContactInput {
                do_not_call: Some(i % 7 == 0),
                phone: Some(format!("+1415555{i:04}")),
                name: Some(format!("{} {i}", names[i as usize % names.len()])),
                email: Some(format!("{}.{i}@example.com", names[(i as usize + 1) % names.len()])),
                tags: Some(match i % 10 {
                    0 => vec!["vip".into(), "west".into()],
                    1..=5 => vec!["west".into()],
                    _ => vec![],
                }),
                ..Default::default()
            }
            .validate("US", switchboard_domain::time::now_ms())
            .unwrap();
            c.created_at += chrono::Duration::milliseconds(i64::from(i));
            crate::contacts::write_contact(&conn, &c, false).unwrap();
        }
        conn.execute_batch("ANALYZE").unwrap();
        conn
    }

    fn filters() -> Vec<ContactFilter> {
        let mut out = Vec::new();
        for search in [None, Some("da"), Some("+1415555"), Some("walter 1")] {
            for tag in [None, Some("vip")] {
                for dnc in [None, Some(true), Some(false)] {
                    out.push(ContactFilter { search: search.map(Into::into), tag: tag.map(Into::into), dnc });
                }
            }
        }
        out
    }

    fn statements(f: &ContactFilter, sort: ContactSort, after: Option<&After>) -> Vec<Stmt> {
        match Terms::of(f) {
            None => created_page(f, sort, after, 51),
            Some(t) => t.stages().flat_map(|s| search_stage(f, &t, s, after, 51)).collect(),
        }
    }

    fn expected_index(sql: &str) -> Option<&str> {
        let (_, rest) = sql.split_once(" INDEXED BY ")?;
        rest.split_whitespace().next()
    }

    fn plan(conn: &Connection, st: &Stmt) -> Vec<String> {
        let mut q = conn.prepare(&format!("EXPLAIN QUERY PLAN {}", st.sql)).unwrap();
        q.query_map(rusqlite::params_from_iter(&st.values), |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap()
    }

    /// Every filter combination, both sorts, first and later pages: each
    /// statement is index searches only — no `SCAN` of a table or an index,
    /// no sort (a temporary B-tree) — so a page reads a bounded range.
    #[test]
    fn every_contact_filter_is_an_index_range_in_page_order() {
        let conn = store();
        let mut checked = 0;
        for f in filters() {
            for sort in [ContactSort::CreatedDesc, ContactSort::CreatedAsc] {
                let search = Terms::of(&f).is_some();
                let afters: Vec<Option<After>> = if search {
                    vec![
                        None,
                        Some(After::Matched(0, "dana".into(), format!("con_{}", "0".repeat(32)))),
                        Some(After::Matched(1, "dale".into(), format!("con_{}", "0".repeat(32)))),
                        Some(After::Matched(2, "+1415".into(), format!("con_{}", "0".repeat(32)))),
                    ]
                } else {
                    vec![None, Some(After::Created(1, format!("con_{}", "0".repeat(32))))]
                };
                for after in &afters {
                    for st in statements(&f, sort, after.as_ref()) {
                        let lines = plan(&conn, &st);
                        let text = lines.join("\n");
                        let driving = lines.first().cloned().unwrap_or_default();
                        assert!(
                            expected_index(&st.sql).is_none_or(|i| driving.split_whitespace().any(|w| w == i))
                                && (!st.sql.contains("FROM tagged_contacts t CROSS")
                                    || driving.contains("PRIMARY KEY")),
                            "filter {f:?}, sort {sort:?}, after {after:?}: driven by the wrong index\nSQL: {}\nplan:\n{text}",
                            st.sql
                        );
                        // The cursor is the seek: a row-value bound (a phone bound in the phone stage).
                        let seeks = !st.sql.contains(") > (?") && !st.sql.contains(") < (?")
                            || driving.contains(")>(?")
                            || driving.contains(")<(?");
                        let phone_seek = !st.sql.contains("phone > ?") || driving.contains("phone>?");
                        assert!(
                            seeks && phone_seek,
                            "filter {f:?}, sort {sort:?}, after {after:?}: the cursor is not the seek\nSQL: {}\nplan:\n{text}",
                            st.sql
                        );
                        // An ordered index walk is bounded by LIMIT only when no predicate can skip rows.
                        let unfiltered = st.values.is_empty();
                        let bad = lines.iter().any(|l| {
                            l.contains("TEMP B-TREE")
                                || (l.starts_with("SCAN") && !(unfiltered && l.contains(" USING INDEX ")))
                        });
                        let searched = lines.iter().any(|l| l.contains(" USING ") && l.contains("INDEX"));
                        assert!(
                            !bad && searched,
                            "filter {f:?}, sort {sort:?}, after {after:?}: not a bounded index range\nSQL: {}\nplan:\n{text}",
                            st.sql
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100, "{checked} statements checked");
    }
}
