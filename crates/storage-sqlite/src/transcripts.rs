//! Recordings and transcripts on SQLite (migrations 0007, 0009, 0011): each record
//! as a JSON `doc` plus real columns for its keys and filters, one
//! `transcript_criteria` row per evaluation criterion, and an FTS5 index
//! (`transcript_fts`, contentless) with one row per transcript (rowid =
//! `transcripts.rid`), rewritten in the same transaction as the transcript.
//! Its `turns` column holds every turn's words (as the contract splits them)
//! with a `_` token between turns, so a phrase never spans two turns (`_` is
//! never a query term: terms are letters and digits); `summary` holds the
//! summary's words. `transcript_terms` lists every word ever indexed, so a
//! prefix term is expanded to the words it covers (FTS5 would otherwise merge
//! every matching doclist on each lookup of a prefix longer than its prefix
//! indexes).
//!
//! Search semantics (the storage contract's reference, see
//! `switchboard_storage::conformance::reference_matches`): a term hits a
//! transcript when it matches one of its texts (a turn or the summary); every
//! group needs a hit, no `not` term may hit. As one FTS5 expression:
//! `(g1) AND (g2) … NOT (n)`, each group its terms ORed. Every term is a
//! quoted FTS5 string (`"refund"`, `"cancel"*`, `"credit card"`, quotes
//! doubled), so user text is never FTS5 syntax.
//!
//! Ranking: BM25 over the transcript's two text columns, by `sb_bm25`
//! (crates/fts5-rank) with each phrase's idf from our own row counts
//! (`transcript_token_rows`, migration 0012; see `fts_tiers`). The hit's
//! turn (`SearchHit::turn`) is chosen in Rust (`TextQuery::best_turn`, as on
//! MongoDB). Relevance pages use an offset cursor: BM25 depends on the whole
//! corpus, so a score keyset would not be stable under writes either, and an
//! offset is exact when nothing changes between pages. Newest pages use the
//! usual `(started_at, id)` keyset; their `score` is the number of positive
//! terms the best text holds (no BM25: its corpus statistics would be
//! recounted per transcript).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params};
use switchboard_domain::recording::RecordingProvider;
use switchboard_domain::{CallId, Recording, RecordingId, Transcript, TranscriptId};
use switchboard_storage::transcripts::words;
use switchboard_storage::{
    Cursor, Page, PageRequest, SearchHit, SearchOrder, StoreError, StoreResult, Term, TextQuery, TranscriptFilter,
    TranscriptStore,
};

use crate::SqliteStore;
use crate::fts_tiers::Phrase;
use crate::rows::{decode_cursor, json_err, map_err, to_doc};

fn recording_by_key(conn: &Connection, provider: &str, key: &str) -> StoreResult<Option<Recording>> {
    let doc: Option<String> = conn
        .prepare_cached("SELECT doc FROM recordings WHERE provider = ?1 AND provider_id = ?2")
        .and_then(|mut st| st.query_row([provider, key], |r| r.get(0)).optional())
        .map_err(map_err)?;
    doc.map(|d| serde_json::from_str(&d).map_err(json_err)).transpose()
}

fn write_recording(conn: &Connection, r: &Recording, insert: bool) -> StoreResult<()> {
    let sql = if insert {
        "INSERT INTO recordings (id, provider, provider_id, call_id, status, created_at, updated_at, doc) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
    } else {
        "UPDATE recordings SET provider = ?2, provider_id = ?3, call_id = ?4, status = ?5, created_at = ?6, \
         updated_at = ?7, doc = ?8 WHERE id = ?1"
    };
    conn.prepare_cached(sql)
        .and_then(|mut st| {
            st.execute(params![
                r.id.as_str(),
                r.provider.as_str(),
                r.provider_id,
                r.call_id.as_ref().map(|c| c.as_str().to_owned()),
                r.status.as_str(),
                r.created_at.timestamp_millis(),
                r.updated_at.timestamp_millis(),
                to_doc(r),
            ])
        })
        .map_err(map_err)?;
    Ok(())
}

fn transcript_where(conn: &Connection, clause: &str, key: &str) -> StoreResult<Option<(i64, Transcript)>> {
    let sql = format!("SELECT rid, doc FROM transcripts WHERE {clause} = ?1");
    let row: Option<(i64, String)> = conn
        .prepare_cached(&sql)
        .and_then(|mut st| st.query_row([key], |r| Ok((r.get(0)?, r.get(1)?))).optional())
        .map_err(map_err)?;
    row.map(|(rid, d)| Ok((rid, serde_json::from_str(&d).map_err(json_err)?))).transpose()
}

/// The stored transcript after an upsert of `t` (rules in `switchboard_storage::transcripts`).
fn upsert_transcript_in_tx(conn: &Connection, t: &Transcript) -> StoreResult<Transcript> {
    let old = transcript_where(conn, "conversation_id", &t.conversation_id)?;
    let mut new = t.clone();
    if let Some((_, old)) = &old {
        if old.is_final() && !t.is_final() {
            return Ok(old.clone());
        }
        new.id = old.id.clone();
        new.created_at = old.created_at;
        if new.analysis.is_none() {
            new.analysis = old.analysis.clone();
            new.analyzer_version = old.analyzer_version;
            new.sentiment = old.sentiment;
        }
    }
    let values = params![
        new.id.as_str(),
        new.conversation_id,
        new.call_id.as_ref().map(|c| c.as_str().to_owned()),
        new.campaign_id.as_ref().map(|c| c.as_str().to_owned()),
        new.contact_id.as_ref().map(|c| c.as_str().to_owned()),
        new.agent_id,
        new.status,
        new.call_successful,
        new.sentiment,
        new.started_at.timestamp_millis(),
        new.created_at.timestamp_millis(),
        new.updated_at.timestamp_millis(),
        to_doc(&new),
    ];
    let rid = match &old {
        None => {
            conn.prepare_cached(
                "INSERT INTO transcripts (id, conversation_id, call_id, campaign_id, contact_id, agent_id, status, \
                 call_successful, sentiment, started_at, created_at, updated_at, doc) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )
            .and_then(|mut st| st.execute(values))
            .map_err(map_err)?;
            conn.last_insert_rowid()
        }
        Some((rid, old)) => {
            conn.prepare_cached(
                "UPDATE transcripts SET id = ?1, conversation_id = ?2, call_id = ?3, campaign_id = ?4, \
                 contact_id = ?5, agent_id = ?6, status = ?7, call_successful = ?8, sentiment = ?9, \
                 started_at = ?10, created_at = ?11, updated_at = ?12, doc = ?13 WHERE rid = ?14",
            )
            .and_then(|mut st| {
                let mut all: Vec<&dyn rusqlite::ToSql> = values.to_vec();
                all.push(rid);
                st.execute(all.as_slice())
            })
            .map_err(map_err)?;
            let text = fts_text(old);
            count_tokens(conn, &text, -1)?;
            conn.prepare_cached(
                "INSERT INTO transcript_fts (transcript_fts, rowid, turns, summary, tiers) \
                 VALUES ('delete', ?1, ?2, ?3, ?4)",
            )
            .and_then(|mut st| st.execute(params![*rid, text.turns, text.summary, text.tiers]))
            .map_err(map_err)?;
            conn.prepare_cached("DELETE FROM transcript_criteria WHERE transcript_id = ?1")
                .and_then(|mut st| st.execute([new.id.as_str()]))
                .map_err(map_err)?;
            *rid
        }
    };
    index_text(conn, rid, &new)?;
    let mut crit = conn
        .prepare_cached(
            "INSERT INTO transcript_criteria (transcript_id, campaign_id, criterion_id, result, started_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .map_err(map_err)?;
    for c in &new.criteria {
        crit.execute(params![
            new.id.as_str(),
            new.campaign_id.as_ref().map(|c| c.as_str().to_owned()),
            c.id,
            c.result,
            new.started_at.timestamp_millis()
        ])
        .map_err(map_err)?;
    }
    Ok(new)
}

/// A transcript's row of `transcript_fts`, and its words.
struct FtsText {
    turns: String,
    summary: String,
    tiers: String,
    vocab: std::collections::BTreeSet<String>,
}

/// The text a transcript is indexed with (`turns`, `summary`, and `tiers`:
/// `fts_tiers::tier_text`) and its words. The row holds the contract's words
/// (`words()`: lower-cased runs of letters and digits), not the raw text: the
/// table is contentless, so nothing reads it back, and FTS5's tokens are then
/// the reference predicate's words. Deleting a row needs this same text
/// again, so a change to `words()` or the tiers needs a migration that
/// rebuilds the index (as 0011's data step does).
fn fts_text(t: &Transcript) -> FtsText {
    let turn_words: Vec<Vec<String>> = t.turns.iter().map(|x| words(&x.message)).filter(|w| !w.is_empty()).collect();
    let summary_words = words(t.summary.as_deref().unwrap_or(""));
    let turns = turn_words.iter().map(|w| w.join(" ")).collect::<Vec<_>>().join(" _ ");
    let summary = summary_words.join(" ");
    let tiers = crate::fts_tiers::tier_text(
        turn_words.iter().map(Vec::as_slice).chain(std::iter::once(summary_words.as_slice())),
    );
    let mut vocab = std::collections::BTreeSet::new();
    vocab.extend(turn_words.into_iter().flatten());
    vocab.extend(summary_words);
    FtsText { turns, summary, tiers, vocab }
}

/// The transcript's full-text row and its new words in `transcript_terms`.
fn index_text(conn: &Connection, rid: i64, t: &Transcript) -> StoreResult<()> {
    let text = fts_text(t);
    conn.prepare_cached("INSERT INTO transcript_fts (rowid, turns, summary, tiers) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut st| st.execute(params![rid, text.turns, text.summary, text.tiers]))
        .map_err(map_err)?;
    let vocab = serde_json::to_string(&text.vocab).map_err(json_err)?;
    conn.prepare_cached("INSERT OR IGNORE INTO transcript_terms (term) SELECT value FROM json_each(?1)")
        .and_then(|mut st| st.execute([vocab]))
        .map_err(map_err)?;
    count_tokens(conn, &text, 1)
}

/// Adds `delta` (1: indexed, −1: removed) to the row counts of a
/// transcript's tokens: its words, its tier tokens, and the empty token
/// (transcripts indexed). A count never goes below 0 (the table's CHECK).
fn count_tokens(conn: &Connection, text: &FtsText, delta: i64) -> StoreResult<()> {
    // One statement over a JSON array of the tokens (each distinct). An
    // upsert's CHECKs apply to the row it would insert, so a decrement is an
    // UPDATE (its tokens were counted when the row was indexed).
    let sql = if delta > 0 {
        "INSERT INTO transcript_token_rows (token, rows) SELECT value, ?2 FROM json_each(?1) WHERE true \
         ON CONFLICT (token) DO UPDATE SET rows = rows + excluded.rows"
    } else {
        "UPDATE transcript_token_rows SET rows = rows + ?2 WHERE token IN (SELECT value FROM json_each(?1))"
    };
    let tiers = text.tiers.split(' ').filter(|t| !t.is_empty());
    let tokens: Vec<&str> = std::iter::once("").chain(text.vocab.iter().map(String::as_str)).chain(tiers).collect();
    let tokens = serde_json::to_string(&tokens).map_err(json_err)?;
    conn.prepare_cached(sql).and_then(|mut st| st.execute(params![tokens, delta])).map_err(map_err)?;
    Ok(())
}

/// Migration 0012's data step: the index (0011's columns) and the token
/// counts from every stored transcript (earlier indexes were dropped).
pub(crate) fn fill_fts(conn: &Connection) -> StoreResult<()> {
    let mut st = conn.prepare("SELECT rid, doc FROM transcripts").map_err(map_err)?;
    let mut rows = st.query([]).map_err(map_err)?;
    while let Some(r) = rows.next().map_err(map_err)? {
        let rid: i64 = r.get(0).map_err(map_err)?;
        let doc: String = r.get(1).map_err(map_err)?;
        index_text(conn, rid, &decode_transcript(&doc)?)?;
    }
    Ok(())
}

/// One step of FTS5's incremental merge (about `pages` pages written):
/// whether it did any work (FTS5 documents that a step with nothing to merge
/// changes fewer than two rows).
pub(crate) fn merge_fts(conn: &Connection, pages: i64) -> StoreResult<bool> {
    let before = conn.total_changes();
    conn.prepare_cached("INSERT INTO transcript_fts (transcript_fts, rank) VALUES ('merge', ?1)")
        .and_then(|mut st| st.execute([pages]))
        .map_err(map_err)?;
    Ok(conn.total_changes() - before >= 2)
}

/// Numbered parameters of one statement.
#[derive(Default)]
struct Params(Vec<Value>);

impl Params {
    fn bind(&mut self, v: impl Into<Value>) -> String {
        self.0.push(v.into());
        format!("?{}", self.0.len())
    }
}

/// The filter as SQL conditions on `t` (the transcripts table).
fn filter_sql(f: &TranscriptFilter, p: &mut Params) -> Vec<String> {
    let mut w = Vec::new();
    let mut eq = |col: &str, v: Option<String>, p: &mut Params| {
        if let Some(v) = v {
            w.push(format!("t.{col} = {}", p.bind(v)));
        }
    };
    eq("campaign_id", f.campaign_id.as_ref().map(|c| c.to_string()), p);
    eq("agent_id", f.agent_id.clone(), p);
    eq("contact_id", f.contact_id.as_ref().map(|c| c.to_string()), p);
    eq("call_successful", f.call_successful.clone(), p);
    if let Some(a) = f.started_after {
        w.push(format!("t.started_at >= {}", p.bind(a.timestamp_millis())));
    }
    if let Some(b) = f.started_before {
        w.push(format!("t.started_at < {}", p.bind(b.timestamp_millis())));
    }
    if let Some(m) = f.sentiment_min {
        w.push(format!("t.sentiment >= {}", p.bind(m)));
    }
    if let Some(m) = f.sentiment_max {
        w.push(format!("t.sentiment <= {}", p.bind(m)));
    }
    if let Some((id, result)) = &f.criterion {
        w.push(format!(
            "EXISTS (SELECT 1 FROM transcript_criteria c WHERE c.transcript_id = t.id AND c.criterion_id = {} AND c.result = {})",
            p.bind(id.clone()),
            p.bind(result.clone())
        ));
    }
    w
}

/// An FTS5 string literal: the text in double quotes, quotes doubled.
fn fts_string(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One term as an FTS5 expression (always quoted: never FTS5 syntax).
pub(crate) fn fts_term(t: &Term) -> String {
    match t {
        Term::Word(w) => fts_string(w),
        Term::Prefix(p) => format!("{}*", fts_string(p)),
        Term::Phrase(ws) => fts_string(&ws.join(" ")),
    }
}

/// Most words a prefix is expanded to; a wider prefix stays an FTS5 prefix.
const MAX_EXPANSION: usize = 64;

/// A term as FTS5 text, a prefix expanded to the indexed words it covers.
/// The indexed words a prefix covers, or `None` when FTS5 expands it itself
/// (no word, or more than `MAX_EXPANSION`).
fn prefix_words(conn: &Connection, p: &str) -> StoreResult<Option<Vec<String>>> {
    let hi = format!("{p}{}", char::MAX);
    let words: Vec<String> = conn
        .prepare_cached("SELECT term FROM transcript_terms WHERE term >= ?1 AND term <= ?2 ORDER BY term LIMIT ?3")
        .and_then(|mut st| {
            st.query_map(params![p, hi, MAX_EXPANSION as i64 + 1], |r| r.get(0)).and_then(|rows| rows.collect())
        })
        .map_err(map_err)?;
    Ok((!words.is_empty() && words.len() <= MAX_EXPANSION).then_some(words))
}

/// A term as FTS5 text, its phrases appended to `phrases`.
fn fts_term_expanded(conn: &Connection, t: &Term, phrases: &mut Vec<Phrase>) -> StoreResult<String> {
    Ok(match t {
        Term::Word(w) => {
            phrases.push(Phrase::Words(vec![w.clone()]));
            fts_term(t)
        }
        Term::Phrase(ws) => {
            phrases.push(Phrase::Words(ws.clone()));
            fts_term(t)
        }
        Term::Prefix(p) => match prefix_words(conn, p)? {
            Some(words) => {
                phrases.extend(words.iter().map(|w| Phrase::Words(vec![w.clone()])));
                words.iter().map(|w| fts_string(w)).collect::<Vec<_>>().join(" OR ")
            }
            None => {
                phrases.push(Phrase::Prefix(p.clone()));
                fts_term(t)
            }
        },
    })
}

fn fts_group(conn: &Connection, g: &[Term], phrases: &mut Vec<Phrase>) -> StoreResult<String> {
    let parts = g.iter().map(|t| fts_term_expanded(conn, t, phrases)).collect::<StoreResult<Vec<_>>>()?;
    Ok(format!("({})", parts.join(" OR ")))
}

/// An FTS5 expression and its phrases, in FTS5's numbering (left to right).
#[derive(Debug)]
struct Expr {
    text: String,
    phrases: Vec<Phrase>,
}

/// The whole query as one FTS5 expression: `(g1) AND (g2) … NOT (n)`.
fn fts_expression(conn: &Connection, q: &TextQuery) -> StoreResult<Expr> {
    let mut phrases = Vec::new();
    let all = q.all.iter().map(|g| fts_group(conn, g, &mut phrases)).collect::<StoreResult<Vec<_>>>()?.join(" AND ");
    if q.not.is_empty() {
        return Ok(Expr { text: all, phrases });
    }
    let mut excluded = Vec::new();
    let not = fts_group(conn, &q.not, &mut excluded)?;
    phrases.extend(excluded.into_iter().map(|_| Phrase::Excluded));
    Ok(Expr { text: format!("({all}) NOT {not}"), phrases })
}

fn decode_transcript(doc: &str) -> StoreResult<Transcript> {
    serde_json::from_str(doc).map_err(json_err)
}

fn newest_keyset(cursor: &Option<Cursor>, p: &mut Params) -> Option<String> {
    cursor.as_ref().map(|c| format!("(t.started_at, t.id) < ({}, {})", p.bind(c.key), p.bind(c.id.clone())))
}

fn where_sql(conds: &[String]) -> String {
    if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) }
}

fn doc_of(conn: &Connection, rid: i64) -> StoreResult<String> {
    conn.prepare_cached("SELECT doc FROM transcripts WHERE rid = ?1")
        .and_then(|mut st| st.query_row([rid], |r| r.get(0)))
        .map_err(map_err)
}

/// The matching transcripts' rids (one pass over the doclists, no ranking).
fn matched_set(conn: &Connection, expr: &str) -> StoreResult<std::collections::HashSet<i64>> {
    conn.prepare_cached("SELECT rowid FROM transcript_fts WHERE transcript_fts MATCH ?1")
        .and_then(|mut st| st.query_map([expr], |r| r.get(0)).and_then(|rows| rows.collect()))
        .map_err(map_err)
}

/// Transcripts looked at one by one (newest first) before a newest search
/// gives up probing and reads the whole match set instead: a probe is one
/// FTS5 lookup by rowid (~10 µs), so this bounds the probing at a few ms
/// when matches are sparse among the newest transcripts.
const PROBE_BUDGET: usize = 300;

/// A match set this small may be sorted directly rather than walked against.
const SMALL_SET: usize = 4_000;

/// Index entries a newest walk may read per member of a small match set
/// before it sorts the set instead (the cost of one random table read in
/// sequential index entries, roughly).
const WALK_PER_LOOKUP: usize = 20;

/// Newest first: the filtered transcripts' rids in `(started_at, id)`
/// descending order that match, at most `want`.
///
/// Common terms: walk the filtered transcripts by index and probe each one
/// (`MATCH … AND rowid = ?`), stopping at `want` hits. If `PROBE_BUDGET`
/// probes find too few (sparse matches), read the match set once: a small
/// one is joined and sorted directly; a large one is walked against from the
/// index (a hash lookup per transcript instead of a probe). When the token
/// counts say reading the set is cheaper (`sparse`, see [`probing_loses`]),
/// the probing is skipped.
fn newest_rids(
    conn: &Connection,
    expr: &str,
    sparse: bool,
    filter: &TranscriptFilter,
    cursor: &Option<Cursor>,
    want: usize,
) -> StoreResult<Vec<i64>> {
    let mut p = Params::default();
    let mut conds = filter_sql(filter, &mut p);
    conds.extend(newest_keyset(cursor, &mut p));
    let walk = format!("SELECT t.rid FROM transcripts t {} ORDER BY t.started_at DESC, t.id DESC", where_sql(&conds));
    let mut probe = conn
        .prepare_cached("SELECT 1 FROM transcript_fts WHERE transcript_fts MATCH ?1 AND rowid = ?2")
        .map_err(map_err)?;
    let mut out = Vec::with_capacity(want);
    if !sparse {
        let mut st = conn.prepare_cached(&walk).map_err(map_err)?;
        let mut rows = st.query(rusqlite::params_from_iter(p.0.iter())).map_err(map_err)?;
        let mut probes = 0;
        while let Some(r) = rows.next().map_err(map_err)? {
            let rid: i64 = r.get(0).map_err(map_err)?;
            if probe.exists(params![expr, rid]).map_err(map_err)? {
                out.push(rid);
                if out.len() == want {
                    return Ok(out);
                }
            }
            probes += 1;
            if probes == PROBE_BUDGET {
                break;
            }
        }
        if probes < PROBE_BUDGET {
            return Ok(out); // every filtered transcript was probed
        }
    }
    let set = matched_set(conn, expr)?;
    out.clear();
    // Walk the index against the set, or look each matching row's sort key
    // up and sort: a walk reads about N·want/|set| index entries (matches
    // spread over time), sequential and mostly cached; a lookup is a random
    // read of the table (~1,000 of them cost 5 ms warm and 17–27 ms after
    // the page cache has churned, at 1M transcripts). A small set is walked
    // when that is cheaper, up to WALK_PER_LOOKUP entries per member (its
    // matches may all be old), then sorted after all.
    let indexed = crate::fts_tiers::indexed_rows(conn)?.max(1) as f64;
    let walk_cap = if set.len() > SMALL_SET {
        Some(usize::MAX)
    } else if filter_is_empty(filter)
        && indexed * want as f64 / (set.len().max(1) as f64) < (WALK_PER_LOOKUP * set.len()) as f64
    {
        Some(WALK_PER_LOOKUP * set.len())
    } else {
        None
    };
    if let Some(cap) = walk_cap {
        let mut st = conn.prepare_cached(&walk).map_err(map_err)?;
        let mut rows = st.query(rusqlite::params_from_iter(p.0.iter())).map_err(map_err)?;
        let mut walked = 0usize;
        while let Some(r) = rows.next().map_err(map_err)? {
            let rid: i64 = r.get(0).map_err(map_err)?;
            if set.contains(&rid) {
                out.push(rid);
                if out.len() == want {
                    return Ok(out);
                }
            }
            walked += 1;
            if walked == cap {
                break;
            }
        }
        if walked < cap {
            return Ok(out); // every filtered transcript was walked
        }
        out.clear();
    }
    let mut keyed: Vec<(i64, String, i64)> = Vec::with_capacity(set.len());
    let mut p2 = Params::default();
    let rid = p2.bind(0);
    let mut conds = filter_sql(filter, &mut p2);
    conds.extend(newest_keyset(cursor, &mut p2));
    conds.push(format!("t.rid = {rid}"));
    let mut st = conn
        .prepare_cached(&format!("SELECT t.started_at, t.id FROM transcripts t {}", where_sql(&conds)))
        .map_err(map_err)?;
    for r in set {
        p2.0[0] = Value::Integer(r);
        if let Some((at, id)) = st
            .query_row(rusqlite::params_from_iter(p2.0.iter()), |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
            .map_err(map_err)?
        {
            keyed.push((at, id, r));
        }
    }
    keyed.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
    out.extend(keyed.into_iter().take(want).map(|(_, _, r)| r));
    Ok(out)
}

/// Whether a newest search should read the match set at once rather than
/// probe the newest transcripts one by one (a strategy only: both give the
/// same rows). From the token counts, an upper bound of the matches, so of
/// their density d: probing needs about `want / d` probes, each an FTS5
/// query (~30 µs per phrase of the expression); the set costs ~0.1 µs per
/// matching row (~0.6 µs when a quoted phrase's positions must be checked).
/// Probing also loses when `PROBE_BUDGET` probes cannot be expected to find
/// `want` hits.
fn probing_loses(conn: &Connection, q: &TextQuery, expr: &Expr, want: usize) -> StoreResult<bool> {
    let indexed = crate::fts_tiers::indexed_rows(conn)?.max(1) as f64;
    let bound = crate::fts_tiers::match_bound(conn, q)? as f64;
    let density = (bound / indexed).clamp(1e-9, 1.0);
    let probes = want as f64 / density;
    if probes > PROBE_BUDGET as f64 {
        return Ok(true);
    }
    let phrases = expr.phrases.iter().filter(|p| !matches!(p, Phrase::Excluded)).count().max(1) as f64;
    let quoted = expr.phrases.iter().any(|p| matches!(p, Phrase::Words(ws) if ws.len() > 1));
    let probe_us = probes * 30.0 * phrases;
    let set_us = bound * if quoted { 0.6 } else { 0.1 };
    Ok(set_us < probe_us)
}

/// Ranked rows checked against the filter one by one (a primary-key lookup
/// each) before relevance collects the filter's whole set instead (a hash
/// lookup per row): a loose filter fills a page long before this, a tight
/// one has a small set.
const CHECK_BUDGET: usize = 2_000;

/// How a relevance search scores rows: the corpus figures and `sb_bm25`'s
/// weights blob for the expression's phrases.
struct Scoring {
    stats: crate::fts_tiers::Stats,
    weights: Vec<u8>,
}

impl Scoring {
    fn read(conn: &Connection, expr: &Expr) -> StoreResult<Scoring> {
        let stats = crate::fts_tiers::Stats::read(conn, &expr.phrases)?;
        let weights = switchboard_fts5_rank::weights_blob(&stats.weights(conn, &expr.phrases)?);
        Ok(Scoring { stats, weights })
    }
}

/// Best first: (rid, score) of the matching transcripts that pass the
/// filter, skipping `offset`, at most `want` (score negative, as FTS5's
/// ranks: lower is better): from a tier's candidates when that provably
/// gives the same page (`fts_tiers`), else from every match.
fn relevance_rids(
    conn: &Connection,
    q: &TextQuery,
    expr: &Expr,
    filter: &TranscriptFilter,
    offset: i64,
    want: usize,
) -> StoreResult<Vec<(i64, f64)>> {
    let started = std::time::Instant::now();
    let scoring = Scoring::read(conn, expr)?;
    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "search scoring read");
    if let Some(page) = relevance_pruned(conn, q, &expr.text, &scoring, filter, offset, want, CHECK_BUDGET)? {
        return Ok(page);
    }
    let started = std::time::Instant::now();
    let page = relevance_rids_within(conn, &expr.text, &scoring.weights, filter, offset, want, CHECK_BUDGET)?;
    tracing::debug!(elapsed_us = started.elapsed().as_micros() as u64, "search ranked every match");
    Ok(page)
}

/// The page from the highest tier whose candidates prove it exact, if any.
#[allow(clippy::too_many_arguments)]
fn relevance_pruned(
    conn: &Connection,
    q: &TextQuery,
    expr: &str,
    scoring: &Scoring,
    filter: &TranscriptFilter,
    offset: i64,
    want: usize,
    check_budget: usize,
) -> StoreResult<Option<Vec<(i64, f64)>>> {
    use crate::fts_tiers::{Plan, page_is_exact, plan};
    let Some(plan) = plan(q, |p| prefix_words(conn, p))? else { return Ok(None) };
    let stats = &scoring.stats;
    tracing::debug!(?plan, "search plan");
    if plan.tier_clause(stats, 2).is_empty() {
        return Ok(None);
    }
    let need = offset.max(0) as usize + want;
    // One word or phrase: tiers down to 3, then the tie-aware tail (tier 2
    // and the rows outside it). Several words: tiers down to 2.
    let tiers: &[u32] = match &plan {
        Plan::Single(_) => &crate::fts_tiers::TIERS[1..],
        Plan::Words(_) => &crate::fts_tiers::TIERS,
    };
    // Several words: a tier proves its page only when the page's last row
    // beats the bound, which low tiers do best: two tries, the first tier
    // with some room (8 pages of candidates), then tier 2.
    let (mut tries, room) = match plan {
        Plan::Single(_) => (usize::MAX, 2),
        Plan::Words(_) => (2, 8),
    };
    // The share of candidates the filter lets through (counted up front for
    // filters an index counts, then as last seen): a tier whose candidates
    // would not fill the page at that share is skipped.
    let mut pass_rate = filter_share(conn, filter, stats.rows())?;
    // One phrase: once a tier's page ends with a row saying it f times, the
    // full ranking's page says it at least f times, so lies in every tier
    // up to f: the tiers above are skipped, and the next one holds the page.
    let mut said: Option<u32> = None;
    for &t in tiers.iter().rev() {
        if tries == 0 {
            break;
        }
        let last_try = matches!(plan, Plan::Words(_)) && tries == 1;
        if last_try && t != 2 {
            continue;
        }
        if said.is_some_and(|f| t > f) {
            continue;
        }
        let est = stats.estimate(&plan, t) as f64;
        if est * pass_rate < (need * room) as f64 && !last_try && said.is_none() {
            continue;
        }
        tries -= 1;
        let started = std::time::Instant::now();
        let candidates = plan.candidates(stats, expr, t);
        let page = relevance_rids_within(conn, &candidates, &scoring.weights, filter, offset, want, check_budget)?;
        tracing::debug!(
            tier = t,
            estimate = est,
            rows = page.len(),
            want,
            elapsed_us = started.elapsed().as_micros() as u64,
            "search tier tried"
        );
        if page.len() < want && !filter_is_empty(filter) {
            let passed = if page.is_empty() { 1.0 } else { (page.len() + offset.max(0) as usize) as f64 };
            pass_rate = pass_rate.min(passed / est);
        }
        let Some(&(rid, rank)) = page.last().filter(|_| page.len() == want) else { continue };
        let last = match plan {
            Plan::Single(_) => Some(decode_transcript(&doc_of(conn, rid)?)?),
            Plan::Words(_) => None,
        };
        if page_is_exact(&plan, stats, t, rank, last.as_ref()) {
            return Ok(Some(page));
        }
        if let (Plan::Single(p), Some(last)) = (&plan, &last) {
            said = crate::fts_tiers::phrase_tf(last, p);
        }
        // Several words: the page's last row scores `-rank`, so the full
        // ranking's page scores at least that; rank the rows that can.
        if let Some((clause, estimate)) = plan.floor_clause(stats, -rank) {
            let started = std::time::Instant::now();
            let expr = format!("({expr}) AND ({clause})");
            let page = relevance_rids_within(conn, &expr, &scoring.weights, filter, offset, want, check_budget)?;
            tracing::debug!(
                estimate,
                rows = page.len(),
                elapsed_us = started.elapsed().as_micros() as u64,
                "search floor tried"
            );
            return Ok(Some(page));
        }
    }
    match &plan {
        Plan::Single(p) => {
            single_tail(conn, scoring, p, &plan.tier_clause(stats, 2), expr, filter, offset, want, check_budget)
        }
        Plan::Words(_) => Ok(None),
    }
}

/// The share of transcripts a filter lets through, when an index counts it
/// (a campaign, agent, contact, verdict or time range; not criteria or
/// sentiment): at most `SHARE_COUNT` entries are read. 1 otherwise.
fn filter_share(conn: &Connection, filter: &TranscriptFilter, rows: i64) -> StoreResult<f64> {
    const SHARE_COUNT: i64 = 20_000;
    if filter_is_empty(filter)
        || filter.criterion.is_some()
        || filter.sentiment_min.is_some()
        || filter.sentiment_max.is_some()
    {
        return Ok(1.0);
    }
    let mut p = Params::default();
    let conds = filter_sql(filter, &mut p);
    let sql = format!("SELECT count(*) FROM (SELECT 1 FROM transcripts t {} LIMIT {SHARE_COUNT})", where_sql(&conds));
    let n: i64 = conn
        .prepare_cached(&sql)
        .and_then(|mut st| st.query_row(rusqlite::params_from_iter(p.0.iter()), |r| r.get(0)))
        .map_err(map_err)?;
    Ok((n.max(1) as f64 / rows.max(1) as f64).min(1.0))
}

/// One word or phrase, from tier 2 and the rows outside it. A row outside
/// tier 2 says the phrase once (a word of it fewer than twice), so all of
/// them tie at the lowest score, s₁ = −w·s(1), and the full ranking
/// (`score, rowid`) lists them in rowid order after every row that says it
/// more. So the page is: tier 2's rows that score above s₁ (ranked), then its
/// rows at s₁ merged by rowid with the rows outside (read in rowid order,
/// unscored, `need` at most). Only tier 2 is scored.
#[allow(clippy::too_many_arguments)]
fn single_tail(
    conn: &Connection,
    scoring: &Scoring,
    phrase: &[String],
    tier: &str,
    expr: &str,
    filter: &TranscriptFilter,
    offset: i64,
    want: usize,
    check_budget: usize,
) -> StoreResult<Option<Vec<(i64, f64)>>> {
    let offset = offset.max(0) as usize;
    let need = offset + want;
    let started = std::time::Instant::now();
    let weights = &scoring.weights;
    let inside =
        rows_within(conn, &format!("({expr}) AND ({tier})"), RowOrder::Rank(weights), filter, 0, need, check_budget)?;
    let page = |rows: Vec<(i64, f64)>| Some(rows.into_iter().skip(offset).take(want).collect());
    // The phrase's count in the last (lowest) tier-2 row, as FTS5 counts it.
    let last_tf = match inside.last() {
        Some(&(rid, _)) => match crate::fts_tiers::phrase_tf(&decode_transcript(&doc_of(conn, rid)?)?, phrase) {
            Some(n) => Some(n),
            None => return Ok(None), // a text FTS5 may split otherwise: rank every match
        },
        None => None,
    };
    if inside.len() == need && last_tf.is_some_and(|n| n >= 2) {
        return Ok(page(inside)); // a full page said twice or more: every row outside says it once
    }
    let outside =
        rows_within(conn, &format!("({expr}) NOT ({tier})"), RowOrder::RowidUnscored, filter, 0, need, check_budget)?;
    tracing::debug!(
        inside = inside.len(),
        outside = outside.len(),
        elapsed_us = started.elapsed().as_micros() as u64,
        "search tail read"
    );
    if outside.is_empty() {
        return Ok(page(inside)); // every match is in tier 2: `inside` is the full ranking
    }
    // sb_bm25 scores one saying as −(0 + w·s(1)): the same operations here.
    let w = scoring.stats.phrase_weight(phrase);
    let s1 = -(0.0 + w * switchboard_fts5_rank::saturation(1));
    if inside.is_empty() {
        // No row says it twice: every match ties; read them scored.
        let expr = format!("({expr}) NOT ({tier})");
        let order = RowOrder::Rowid(weights);
        return Ok(Some(rows_within(conn, &expr, order, filter, offset as i64, want, check_budget)?));
    }
    if inside.iter().any(|&(_, r)| r > s1) {
        return Ok(None); // not the ties the proof expects: rank every match
    }
    let (hi, lo): (Vec<_>, Vec<_>) = inside.into_iter().partition(|&(_, r)| r < s1);
    let mut tied = lo;
    tied.extend(outside.into_iter().map(|(rid, _)| (rid, s1)));
    tied.sort_by_key(|&(rid, _)| rid);
    Ok(page(hi.into_iter().chain(tied).collect()))
}

/// Every row of `expr` ranked (`ORDER BY score, rowid`, `sb_bm25` with
/// these weights), the filter applied in that order.
fn relevance_rids_within(
    conn: &Connection,
    expr: &str,
    weights: &[u8],
    filter: &TranscriptFilter,
    offset: i64,
    want: usize,
    check_budget: usize,
) -> StoreResult<Vec<(i64, f64)>> {
    rows_within(conn, expr, RowOrder::Rank(weights), filter, offset, want, check_budget)
}

/// How `rows_within` orders the rows of an expression (scored by `sb_bm25`
/// with the weights given).
#[derive(Clone, Copy)]
enum RowOrder<'a> {
    /// `ORDER BY score, rowid`: every row is scored.
    Rank(&'a [u8]),
    /// `ORDER BY rowid` (each row still carries its score): FTS5's own
    /// order, so only the rows read are scored.
    Rowid(&'a [u8]),
    /// `ORDER BY rowid`, not scored (0.0).
    RowidUnscored,
}

/// (rid, rank) of `expr`'s rows that pass the filter, in `order`, skipping
/// `offset`, at most `want`.
fn rows_within(
    conn: &Connection,
    expr: &str,
    order: RowOrder<'_>,
    filter: &TranscriptFilter,
    offset: i64,
    want: usize,
    check_budget: usize,
) -> StoreResult<Vec<(i64, f64)>> {
    // The weights are the statement's last parameter, when it scores.
    let (score, order_by, weights) = match order {
        RowOrder::Rank(w) => ("sb_bm25(transcript_fts, 2, ?W) AS score", "score, rowid", Some(w)),
        RowOrder::Rowid(w) => ("sb_bm25(transcript_fts, 2, ?W) AS score", "rowid", Some(w)),
        RowOrder::RowidUnscored => ("0.0", "rowid", None),
    };
    if filter_is_empty(filter) {
        let score = score.replace("?W", "?4");
        let mut values: Vec<Value> = vec![expr.to_owned().into(), (want as i64).into(), offset.into()];
        values.extend(weights.map(|w| Value::Blob(w.to_vec())));
        return conn
            .prepare_cached(&format!(
                "SELECT rowid, {score} FROM transcript_fts WHERE transcript_fts MATCH ?1 ORDER BY {order_by} \
                 LIMIT ?2 OFFSET ?3"
            ))
            .and_then(|mut st| {
                st.query_map(rusqlite::params_from_iter(values.iter()), |r| Ok((r.get(0)?, r.get(1)?)))
                    .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            })
            .map_err(map_err);
    }
    let mut check = FilterCheck::new(conn, filter, check_budget)?;
    let score = score.replace("?W", "?2");
    let mut st = conn
        .prepare_cached(&format!(
            "SELECT rowid, {score} FROM transcript_fts WHERE transcript_fts MATCH ?1 ORDER BY {order_by}"
        ))
        .map_err(map_err)?;
    let mut values: Vec<Value> = vec![expr.to_owned().into()];
    values.extend(weights.map(|w| Value::Blob(w.to_vec())));
    let mut rows = st.query(rusqlite::params_from_iter(values.iter())).map_err(map_err)?;
    let mut out = Vec::with_capacity(want);
    let mut skip = offset;
    while let Some(r) = rows.next().map_err(map_err)? {
        let rid: i64 = r.get(0).map_err(map_err)?;
        let pass = check.passes(rid)?;
        if !pass {
            continue;
        }
        if skip > 0 {
            skip -= 1;
            continue;
        }
        out.push((rid, r.get(1).map_err(map_err)?));
        if out.len() == want {
            break;
        }
    }
    Ok(out)
}

/// Whether rows pass a filter: a primary-key lookup each for the first
/// `budget` rows, then a hash lookup in the filter's whole set, read once
/// (a loose filter fills a page long before the budget, a tight one has a
/// small set).
struct FilterCheck<'c> {
    conn: &'c Connection,
    filter: &'c TranscriptFilter,
    lookup: rusqlite::CachedStatement<'c>,
    params: Params,
    allowed: Option<std::collections::HashSet<i64>>,
    checks: usize,
    budget: usize,
}

impl<'c> FilterCheck<'c> {
    fn new(conn: &'c Connection, filter: &'c TranscriptFilter, budget: usize) -> StoreResult<FilterCheck<'c>> {
        let mut params = Params::default();
        let rid = params.bind(0);
        let mut conds = filter_sql(filter, &mut params);
        conds.push(format!("t.rid = {rid}"));
        let lookup =
            conn.prepare_cached(&format!("SELECT 1 FROM transcripts t {}", where_sql(&conds))).map_err(map_err)?;
        Ok(FilterCheck { conn, filter, lookup, params, allowed: None, checks: 0, budget })
    }

    fn passes(&mut self, rid: i64) -> StoreResult<bool> {
        if self.allowed.is_none() && self.checks == self.budget {
            let mut p = Params::default();
            let conds = filter_sql(self.filter, &mut p);
            let sql = format!("SELECT t.rid FROM transcripts t {}", where_sql(&conds));
            self.allowed = Some(
                self.conn
                    .prepare_cached(&sql)
                    .and_then(|mut st| {
                        st.query_map(rusqlite::params_from_iter(p.0.iter()), |r| r.get(0))
                            .and_then(|rows| rows.collect())
                    })
                    .map_err(map_err)?,
            );
        }
        match &self.allowed {
            Some(a) => Ok(a.contains(&rid)),
            None => {
                self.checks += 1;
                self.params.0[0] = Value::Integer(rid);
                self.lookup.exists(rusqlite::params_from_iter(self.params.0.iter())).map_err(map_err)
            }
        }
    }
}

fn filter_is_empty(f: &TranscriptFilter) -> bool {
    f == &TranscriptFilter::default()
}

/// One page of search hits (`limit + 1` at most, for the overfetch), read
/// in one snapshot: the token counts a pruning proof uses are then the
/// counts of the index it reads.
fn search_in(
    conn: &Connection,
    q: &TextQuery,
    filter: &TranscriptFilter,
    order: SearchOrder,
    cursor: &Option<Cursor>,
    offset: i64,
    limit: u32,
) -> StoreResult<Vec<SearchHit>> {
    // Nests inside the in-memory store's write transaction.
    crate::in_savepoint(conn, "search", |conn| search_snapshot(conn, q, filter, order, cursor, offset, limit))
}

fn search_snapshot(
    conn: &Connection,
    q: &TextQuery,
    filter: &TranscriptFilter,
    order: SearchOrder,
    cursor: &Option<Cursor>,
    offset: i64,
    limit: u32,
) -> StoreResult<Vec<SearchHit>> {
    let expr = fts_expression(conn, q)?;
    tracing::debug!(expr = %expr.text, ?filter, ?order, offset, "search");
    let want = limit as usize + 1;
    let picked: Vec<(i64, Option<f64>)> = match order {
        SearchOrder::Newest => {
            let sparse = probing_loses(conn, q, &expr, want)?;
            newest_rids(conn, &expr.text, sparse, filter, cursor, want)?.into_iter().map(|r| (r, None)).collect()
        }
        SearchOrder::Relevance => {
            relevance_rids(conn, q, &expr, filter, offset, want)?.into_iter().map(|(r, s)| (r, Some(s))).collect()
        }
    };
    picked
        .into_iter()
        .map(|(rid, rank)| {
            let transcript = decode_transcript(&doc_of(conn, rid)?)?;
            let (turn, terms) = q.best_turn(&transcript);
            Ok(SearchHit { score: rank.map_or(terms as f64, |r| -r), turn, transcript })
        })
        .collect()
}

const LIST_SORT: &str = "transcripts_started_desc";
const SEARCH_NEWEST: &str = "transcript_search_newest";
const SEARCH_RELEVANCE: &str = "transcript_search_relevance";

#[async_trait]
impl TranscriptStore for SqliteStore {
    async fn upsert_recording(&self, r: &Recording) -> StoreResult<Recording> {
        let r = r.clone();
        self.write(move |conn| match recording_by_key(conn, r.provider.as_str(), &r.provider_id)? {
            Some(mut stored) => {
                stored.merge(&r);
                write_recording(conn, &stored, false)?;
                Ok(stored)
            }
            None => {
                write_recording(conn, &r, true)?;
                Ok(r)
            }
        })
        .await
    }

    async fn get_recording(&self, id: &RecordingId) -> StoreResult<Option<Recording>> {
        let id = id.clone();
        self.read(move |conn| {
            let doc: Option<String> = conn
                .prepare_cached("SELECT doc FROM recordings WHERE id = ?1")
                .and_then(|mut st| st.query_row([id.as_str()], |r| r.get(0)).optional())
                .map_err(map_err)?;
            doc.map(|d| serde_json::from_str(&d).map_err(json_err)).transpose()
        })
        .await
    }

    async fn find_recording(&self, provider: RecordingProvider, provider_id: &str) -> StoreResult<Option<Recording>> {
        let key = provider_id.to_owned();
        self.read(move |conn| recording_by_key(conn, provider.as_str(), &key)).await
    }

    async fn recordings_of_call(&self, call: &CallId) -> StoreResult<Vec<Recording>> {
        let call = call.clone();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached("SELECT doc FROM recordings WHERE call_id = ?1 ORDER BY created_at, id")
                .map_err(map_err)?;
            let docs: Vec<String> =
                st.query_map([call.as_str()], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(map_err)?;
            docs.iter().map(|d| serde_json::from_str(d).map_err(json_err)).collect()
        })
        .await
    }

    async fn recordings_to_expire(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Recording>> {
        // Served by `recordings_completed_created` (migration 0008, partial on status = 'completed').
        let before = before.timestamp_millis();
        self.read(move |conn| {
            let mut st = conn
                .prepare_cached(
                    "SELECT doc FROM recordings WHERE status = 'completed' AND created_at < ?1 \
                     ORDER BY created_at, id LIMIT ?2",
                )
                .map_err(map_err)?;
            let docs: Vec<String> =
                st.query_map(params![before, limit], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(map_err)?;
            docs.iter().map(|d| serde_json::from_str(d).map_err(json_err)).collect()
        })
        .await
    }

    async fn upsert_transcript(&self, t: &Transcript) -> StoreResult<Transcript> {
        let t = t.clone();
        self.write(move |conn| upsert_transcript_in_tx(conn, &t)).await
    }

    async fn get_transcript(&self, id: &TranscriptId) -> StoreResult<Option<Transcript>> {
        let id = id.clone();
        self.read(move |conn| Ok(transcript_where(conn, "id", id.as_str())?.map(|(_, t)| t))).await
    }

    async fn find_transcript(&self, conversation_id: &str) -> StoreResult<Option<Transcript>> {
        let c = conversation_id.to_owned();
        self.read(move |conn| Ok(transcript_where(conn, "conversation_id", &c)?.map(|(_, t)| t))).await
    }

    async fn transcript_of_call(&self, call: &CallId) -> StoreResult<Option<Transcript>> {
        let call = call.clone();
        self.read(move |conn| {
            let doc: Option<String> = conn
                .prepare_cached(
                    "SELECT doc FROM transcripts WHERE call_id = ?1 ORDER BY started_at DESC, id DESC LIMIT 1",
                )
                .and_then(|mut st| st.query_row([call.as_str()], |r| r.get(0)).optional())
                .map_err(map_err)?;
            doc.as_deref().map(decode_transcript).transpose()
        })
        .await
    }

    async fn list_transcripts(&self, filter: &TranscriptFilter, page: &PageRequest) -> StoreResult<Page<Transcript>> {
        let cursor = decode_cursor(page, LIST_SORT)?;
        let limit = page.clamped_limit();
        let filter = filter.clone();
        let items = self
            .read(move |conn| {
                let mut p = Params::default();
                let mut conds = filter_sql(&filter, &mut p);
                conds.extend(newest_keyset(&cursor, &mut p));
                let sql = format!(
                    "SELECT t.doc FROM transcripts t {} ORDER BY t.started_at DESC, t.id DESC LIMIT {}",
                    where_sql(&conds),
                    limit + 1
                );
                let mut st = conn.prepare_cached(&sql).map_err(map_err)?;
                let docs: Vec<String> = st
                    .query_map(rusqlite::params_from_iter(p.0), |r| r.get(0))
                    .and_then(|rows| rows.collect())
                    .map_err(map_err)?;
                docs.iter().map(|d| decode_transcript(d)).collect::<StoreResult<Vec<_>>>()
            })
            .await?;
        Ok(Page::from_overfetch(items, limit, |t| Cursor {
            sort: LIST_SORT.into(),
            key: t.started_at.timestamp_millis(),
            id: t.id.to_string(),
        }))
    }

    async fn search_transcripts(
        &self,
        q: &TextQuery,
        filter: &TranscriptFilter,
        order: SearchOrder,
        page: &PageRequest,
    ) -> StoreResult<Page<SearchHit>> {
        if q.all.is_empty() {
            return Err(StoreError::Invalid("the query has no words to look for".into()));
        }
        let sort = match order {
            SearchOrder::Relevance => SEARCH_RELEVANCE,
            SearchOrder::Newest => SEARCH_NEWEST,
        };
        let cursor = decode_cursor(page, sort)?;
        let offset = match (order, &cursor) {
            (SearchOrder::Relevance, Some(c)) if c.key >= 0 => c.key,
            (SearchOrder::Relevance, Some(_)) => {
                return Err(StoreError::Invalid("cursor is not a cursor this API issued".into()));
            }
            _ => 0,
        };
        let limit = page.clamped_limit();
        let (q, filter) = (q.clone(), filter.clone());
        let rows = self.read(move |conn| search_in(conn, &q, &filter, order, &cursor, offset, limit)).await?;
        Ok(Page::from_overfetch(rows, limit, |h| match order {
            SearchOrder::Relevance => Cursor { sort: sort.into(), key: offset + i64::from(limit), id: String::new() },
            SearchOrder::Newest => Cursor {
                sort: sort.into(),
                key: h.transcript.started_at.timestamp_millis(),
                id: h.transcript.id.to_string(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_text_is_never_fts5_syntax_and_prefixes_expand_to_indexed_words() {
        let conn = Connection::open_in_memory().unwrap();
        crate::migrate_conn(&conn).unwrap();
        let q = TextQuery::parse(r#"refund OR cancel* "credit card" -angry"#).unwrap();
        let expr = fts_expression(&conn, &q).unwrap();
        assert_eq!(expr.text, r#"(("refund" OR "cancel"*) AND ("credit card")) NOT ("angry")"#);
        let w = |s: &str| Phrase::Words(words(s));
        assert_eq!(expr.phrases, [w("refund"), Phrase::Prefix("cancel".into()), w("credit card"), Phrase::Excluded]);
        for w in ["cancel", "cancelled", "cancer", "can"] {
            conn.execute("INSERT INTO transcript_terms (term) VALUES (?1)", [w]).unwrap();
        }
        let q = TextQuery::parse("cance* OR x").unwrap();
        let expr = fts_expression(&conn, &q).unwrap();
        assert_eq!(expr.text, r#"("cancel" OR "cancelled" OR "cancer" OR "x")"#);
        assert_eq!(expr.phrases, [w("cancel"), w("cancelled"), w("cancer"), w("x")]);
        assert_eq!(fts_term(&Term::Word("a\"b".into())), r#""a""b""#);
    }

    /// A database that 0008 left (per-turn FTS rows) upgrades to the
    /// per-transcript index with its transcripts searchable.
    #[test]
    fn migration_0009_reindexes_the_transcripts_stored_before_it() {
        let conn = Connection::open_in_memory().unwrap();
        for (i, (_, sql)) in crate::schema::MIGRATIONS.iter().enumerate().take(8) {
            conn.execute_batch(sql).unwrap();
            conn.pragma_update(None, "user_version", i as i64 + 1).unwrap();
        }
        let t: Transcript = serde_json::from_value(serde_json::json!({
            "id": "trn_01a22ec63d9773008e4a21b85070d3f4", "conversation_id": "conv_old", "call_id": null,
            "campaign_id": null, "contact_id": null, "agent_id": "agent_1", "status": "done",
            "turns": [{"role": "agent", "message": "Can I help with your invoice?", "time_in_call_secs": 1.0},
                      {"role": "user", "message": "I'd like a refund, please.", "time_in_call_secs": 4.0}],
            "language": null, "duration_secs": 9, "cost": null, "termination_reason": null,
            "call_successful": null, "summary": "Refund requested.", "criteria": [], "data_collection": [],
            "has_audio": false, "started_at": "2026-11-01T10:00:00Z", "analysis": null,
            "analyzer_version": null, "sentiment": null,
            "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"
        }))
        .unwrap();
        conn.execute(
            "INSERT INTO transcripts (id, conversation_id, agent_id, status, started_at, created_at, updated_at, doc) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?5, ?6)",
            params![
                t.id.as_str(),
                t.conversation_id,
                t.agent_id,
                t.status,
                t.started_at.timestamp_millis(),
                to_doc(&t)
            ],
        )
        .unwrap();
        crate::migrate_conn(&conn).unwrap();
        let search = |qs: &str| {
            let q = TextQuery::parse(qs).unwrap();
            search_in(&conn, &q, &TranscriptFilter::default(), SearchOrder::Newest, &None, 0, 10).unwrap()
        };
        let hits = search("refund");
        assert_eq!(hits.len(), 1);
        assert_eq!((hits[0].transcript.id.clone(), hits[0].turn), (t.id.clone(), Some(1)));
        assert_eq!(search("invo*").len(), 1, "prefixes expand to the refilled words");
        assert!(search("\"invoice i\"").is_empty(), "a phrase never spans two turns");
    }

    /// A relevance page drawn from a tier's candidates is returned only when
    /// it equals the page of ranking every match; on a skewed corpus (common
    /// words said 0–40 times, rewrites, non-ASCII words, filters, deep pages)
    /// that happens for every kind of query; the token counts follow every
    /// write, and `Stats::score` is `sb_bm25`'s score.
    #[test]
    fn pruned_relevance_pages_equal_ranking_every_match() {
        let conn = Connection::open_in_memory().unwrap();
        switchboard_fts5_rank::register(&conn).unwrap();
        crate::migrate_conn(&conn).unwrap();
        let vocab: Vec<String> =
            ["the", "refund", "invoice", "cancel", "my", "plan", "bill", "billing", "bills", "angry"]
                .iter()
                .map(|w| w.to_string())
                .chain((0..40).map(|i| format!("w{i}")))
                .collect();
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut ids = Vec::new();
        for k in 0..1_500u64 {
            let mut turns = Vec::new();
            let len = 5 + next(60);
            for turn in 0..4 {
                let mut msg = Vec::new();
                for _ in 0..len / 4 {
                    // Zipf-like: word i with weight ~ 1/(i+1).
                    let r = next(1_000) as f64 / 1_000.0;
                    let i = ((vocab.len() as f64).powf(r) - 1.0) as usize;
                    msg.push(vocab[i.min(vocab.len() - 1)].clone());
                }
                if k % 3 == 0 && turn == 1 {
                    for _ in 0..k % 7 {
                        msg.push("cancel my plan".into());
                    }
                }
                if k % 97 == 0 {
                    msg.push("refundé café".into());
                }
                turns.push(serde_json::json!({"role": if turn % 2 == 0 { "agent" } else { "user" },
                    "message": msg.join(" "), "time_in_call_secs": turn as f64}));
            }
            let t: Transcript = serde_json::from_value(serde_json::json!({
                "id": switchboard_domain::TranscriptId::new(), "conversation_id": format!("conv_{k}"),
                "call_id": null, "campaign_id": null, "contact_id": null, "agent_id": format!("agent_{}", k % 5),
                "status": "done", "turns": turns, "language": null, "duration_secs": 60, "cost": null,
                "termination_reason": null, "call_successful": null,
                "summary": if k % 3 == 0 { Some("refund refund invoice") } else { None },
                "criteria": [], "data_collection": [], "has_audio": false,
                "started_at": "2026-11-01T10:00:00Z", "analysis": null, "analyzer_version": null, "sentiment": null,
                "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"
            }))
            .unwrap();
            ids.push(upsert_transcript_in_tx(&conn, &t).unwrap());
        }
        // Rewrites: the old rows leave the index (and its counts) exactly.
        for t in ids.iter().step_by(11) {
            let mut t = t.clone();
            t.turns.truncate(1);
            t.summary = Some("refund".into());
            upsert_transcript_in_tx(&conn, &t).unwrap();
        }
        // The counts equal a recount of the stored transcripts' tokens.
        let mut recount: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
        let mut st = conn.prepare("SELECT doc FROM transcripts").unwrap();
        for doc in st.query_map([], |r| r.get::<_, String>(0)).unwrap() {
            let text = fts_text(&decode_transcript(&doc.unwrap()).unwrap());
            let tiers = text.tiers.split(' ').filter(|t| !t.is_empty()).map(str::to_owned);
            for token in std::iter::once(String::new()).chain(text.vocab).chain(tiers) {
                *recount.entry(token).or_default() += 1;
            }
        }
        let counted: std::collections::BTreeMap<String, i64> = conn
            .prepare("SELECT token, rows FROM transcript_token_rows WHERE rows > 0")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(counted, recount);
        assert_eq!(counted[""], 1_500);
        let queries = [
            "refund",
            "the",
            "\"cancel my plan\"",
            "refund OR invoice",
            "bill*",
            "refund invoice",
            "the -angry",
            "w3 OR w7 OR w11",
            "w9 OR w30",
            "w4 w12",
            "refund OR w25",
        ];
        let filters =
            [TranscriptFilter::default(), TranscriptFilter { agent_id: Some("agent_2".into()), ..Default::default() }];
        let mut pruned = std::collections::BTreeMap::new();
        for qs in queries {
            let q = TextQuery::parse(qs).unwrap();
            let expr = fts_expression(&conn, &q).unwrap();
            let scoring = Scoring::read(&conn, &expr).unwrap();
            let (text, weights) = (&expr.text, &scoring.weights);
            for f in &filters {
                for (offset, want) in [(0, 21), (0, 3), (20, 21), (200, 21), (300, 40), (330, 21), (700, 21)] {
                    let full = relevance_rids_within(&conn, text, weights, f, offset, want, CHECK_BUDGET).unwrap();
                    let pruned_page =
                        relevance_pruned(&conn, &q, text, &scoring, f, offset, want, CHECK_BUDGET).unwrap();
                    if let Some(page) = pruned_page {
                        assert_eq!(page, full, "{qs} {f:?} offset {offset}");
                        *pruned.entry(qs).or_insert(0) += 1;
                    }
                }
            }
        }
        // Newest first: probing and the match set give the same pages, and
        // the counts bound the matches.
        for qs in queries.iter().chain(&["refundé", "w39 w38", "\"my plan\" OR nothinglikeit"]) {
            let q = TextQuery::parse(qs).unwrap();
            let expr = fts_expression(&conn, &q).unwrap();
            let matched = matched_set(&conn, &expr.text).unwrap().len() as i64;
            if qs.is_ascii() {
                assert!(crate::fts_tiers::match_bound(&conn, &q).unwrap() >= matched, "{qs}");
            }
            for f in &filters {
                for want in [1, 21, 400] {
                    let probed = newest_rids(&conn, &expr.text, false, f, &None, want).unwrap();
                    let from_set = newest_rids(&conn, &expr.text, true, f, &None, want).unwrap();
                    assert_eq!(probed, from_set, "{qs} {f:?} {want}");
                    assert!(probed.len() == want || probed.len() as i64 <= matched);
                }
            }
        }

        // Every query, even one whose words are all in most transcripts
        // (refund, invoice, bill…), has pages drawn from a tier.
        for qs in queries {
            assert!(pruned.get(qs).copied().unwrap_or(0) >= 1, "{qs} was never pruned: {pruned:?}");
        }
        // Stats::score is sb_bm25's: scores of the top rows of a several-word query.
        let q = TextQuery::parse("refund OR invoice OR the").unwrap();
        let expr = fts_expression(&conn, &q).unwrap();
        let scoring = Scoring::read(&conn, &expr).unwrap();
        let stats = &scoring.stats;
        let qwords: Vec<String> = ["refund", "invoice", "the"].iter().map(|w| w.to_string()).collect();
        let all = TranscriptFilter::default();
        let top = relevance_rids_within(&conn, &expr.text, &scoring.weights, &all, 0, 50, CHECK_BUDGET).unwrap();
        let mut compared = 0;
        for (rid, rank) in top {
            let t = decode_transcript(&doc_of(&conn, rid).unwrap()).unwrap();
            let texts: Vec<Vec<String>> =
                t.turns.iter().map(|x| words(&x.message)).chain(t.summary.as_deref().map(words)).collect();
            if texts.iter().flatten().any(|w| !w.is_ascii()) {
                continue;
            }
            let tfs: Vec<u32> =
                qwords.iter().map(|q| texts.iter().flatten().filter(|w| *w == q).count() as u32).collect();
            let ours = stats.score(&qwords, &tfs);
            assert!((ours + rank).abs() <= 1e-12 * ours.abs(), "ours {ours} sb_bm25 {}", -rank);
            compared += 1;
        }
        assert!(compared > 40);
    }

    /// Several words whose best rows say each word once: a tier of rows
    /// saying one word ten times gives a page whose last score is only a
    /// floor; the rows that can beat it (here: saying `bb` or `cc` at all,
    /// or `aa`) are ranked, and the page is the full ranking's.
    #[test]
    fn a_floor_from_a_tier_page_finds_rows_outside_every_tier() {
        let conn = Connection::open_in_memory().unwrap();
        switchboard_fts5_rank::register(&conn).unwrap();
        crate::migrate_conn(&conn).unwrap();
        let texts = std::iter::repeat_n("aa ".repeat(10), 30)
            .chain(std::iter::repeat_n("bb cc".to_owned(), 3))
            .chain(std::iter::repeat_n("bb".to_owned(), 5))
            .chain(std::iter::repeat_n("cc cc".to_owned(), 5))
            .chain(std::iter::repeat_n("filler words only".to_owned(), 100));
        for (k, text) in texts.enumerate() {
            let t: Transcript = serde_json::from_value(serde_json::json!({
                "id": switchboard_domain::TranscriptId::new(), "conversation_id": format!("conv_{k}"),
                "call_id": null, "campaign_id": null, "contact_id": null, "agent_id": null, "status": "done",
                "turns": [{"role": "user", "message": text, "time_in_call_secs": 1.0}], "language": null,
                "duration_secs": 60, "cost": null, "termination_reason": null, "call_successful": null,
                "summary": null, "criteria": [], "data_collection": [], "has_audio": false,
                "started_at": "2026-11-01T10:00:00Z", "analysis": null, "analyzer_version": null, "sentiment": null,
                "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"
            }))
            .unwrap();
            upsert_transcript_in_tx(&conn, &t).unwrap();
        }
        let q = TextQuery::parse("aa OR bb OR cc").unwrap();
        let expr = fts_expression(&conn, &q).unwrap();
        let scoring = Scoring::read(&conn, &expr).unwrap();
        let all = TranscriptFilter::default();
        let full = relevance_rids_within(&conn, &expr.text, &scoring.weights, &all, 0, 3, CHECK_BUDGET).unwrap();
        // The best rows say `bb` and `cc` once each (rids 31–33).
        assert_eq!(full.iter().map(|r| r.0).collect::<Vec<_>>(), [31, 32, 33]);
        let plan = crate::fts_tiers::plan(&q, |p| prefix_words(&conn, p)).unwrap().unwrap();
        let tier_page = relevance_rids_within(
            &conn,
            &plan.candidates(&scoring.stats, &expr.text, 10),
            &scoring.weights,
            &all,
            0,
            3,
            0,
        )
        .unwrap();
        let floor = -tier_page[2].1;
        let (clause, _) = plan.floor_clause(&scoring.stats, floor).unwrap();
        assert!(clause.contains("\"bb\"") || clause.contains("\"cc\""), "{clause}");
        let pruned = relevance_pruned(&conn, &q, &expr.text, &scoring, &all, 0, 3, CHECK_BUDGET).unwrap();
        assert_eq!(pruned, Some(full));
    }

    /// Migration 0013 lets the upkeep merge any level of two segments, and
    /// merging leaves fewer segments and the same matches.
    #[test]
    fn merging_leaves_fewer_segments_and_the_same_matches() {
        let conn = Connection::open_in_memory().unwrap();
        crate::migrate_conn(&conn).unwrap();
        let usermerge: i64 =
            conn.query_row("SELECT v FROM transcript_fts_config WHERE k = 'usermerge'", [], |r| r.get(0)).unwrap();
        assert_eq!(usermerge, 2);
        for k in 0..300 {
            let t: Transcript = serde_json::from_value(serde_json::json!({
                "id": switchboard_domain::TranscriptId::new(), "conversation_id": format!("conv_{k}"),
                "call_id": null, "campaign_id": null, "contact_id": null, "agent_id": null, "status": "done",
                "turns": [{"role": "user", "message": format!("refund w{} w{}", k % 7, k % 13), "time_in_call_secs": 1.0}],
                "language": null, "duration_secs": 60, "cost": null, "termination_reason": null,
                "call_successful": null, "summary": null, "criteria": [], "data_collection": [], "has_audio": false,
                "started_at": "2026-11-01T10:00:00Z", "analysis": null, "analyzer_version": null, "sentiment": null,
                "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"
            }))
            .unwrap();
            upsert_transcript_in_tx(&conn, &t).unwrap();
        }
        let segments = || -> i64 {
            conn.query_row("SELECT count(DISTINCT segid) FROM transcript_fts_idx", [], |r| r.get(0)).unwrap()
        };
        let matches = |q: &str| {
            let mut v: Vec<i64> =
                matched_set(&conn, &fts_expression(&conn, &TextQuery::parse(q).unwrap()).unwrap().text)
                    .unwrap()
                    .into_iter()
                    .collect();
            v.sort_unstable();
            v
        };
        let (before, w3) = (segments(), matches("w3 OR \"refund w5\""));
        assert!(before > 3, "{before} segments");
        let mut steps = 0;
        while merge_fts(&conn, 50).unwrap() {
            steps += 1;
            assert!(steps < 10_000);
        }
        assert!(steps > 0 && segments() < before, "{before} → {}", segments());
        assert_eq!(matches("w3 OR \"refund w5\""), w3);
        assert!(!w3.is_empty());
    }

    /// The filter's set (after the check budget) and per-row checks agree,
    /// page by page.
    #[test]
    fn relevance_filters_the_same_by_checks_and_by_set() {
        let conn = Connection::open_in_memory().unwrap();
        switchboard_fts5_rank::register(&conn).unwrap();
        crate::migrate_conn(&conn).unwrap();
        let base: Transcript = serde_json::from_value(serde_json::json!({
            "id": "trn_01a22ec63d9773008e4a21b85070d3f4", "conversation_id": "c", "call_id": null,
            "campaign_id": null, "contact_id": null, "agent_id": null, "status": "done", "turns": [],
            "language": null, "duration_secs": null, "cost": null, "termination_reason": null,
            "call_successful": null, "summary": null, "criteria": [], "data_collection": [],
            "has_audio": false, "started_at": "2026-11-01T10:00:00Z", "analysis": null,
            "analyzer_version": null, "sentiment": null,
            "created_at": "2026-11-01T10:00:00Z", "updated_at": "2026-11-01T10:00:00Z"
        }))
        .unwrap();
        for k in 0..40 {
            let mut t = base.clone();
            t.id = switchboard_domain::TranscriptId::new();
            t.conversation_id = format!("conv_{k}");
            t.agent_id = Some(format!("agent_{}", k % 3));
            t.summary = Some("refund ".repeat(1 + k % 5) + if k % 2 == 0 { "invoice" } else { "order" });
            upsert_transcript_in_tx(&conn, &t).unwrap();
        }
        let q = TextQuery::parse("refund").unwrap();
        let expr = fts_expression(&conn, &q).unwrap();
        let weights = Scoring::read(&conn, &expr).unwrap().weights;
        let expr = expr.text.as_str();
        let f = TranscriptFilter { agent_id: Some("agent_1".into()), ..Default::default() };
        for offset in [0, 3, 10] {
            let by_checks = relevance_rids_within(&conn, expr, &weights, &f, offset, 4, usize::MAX).unwrap();
            let by_set = relevance_rids_within(&conn, expr, &weights, &f, offset, 4, 0).unwrap();
            let mixed = relevance_rids_within(&conn, expr, &weights, &f, offset, 4, 2).unwrap();
            assert_eq!(by_checks, by_set, "offset {offset}");
            assert_eq!(by_checks, mixed, "offset {offset}");
            assert!(offset >= 13 || !by_checks.is_empty());
        }
        assert_eq!(relevance_rids_within(&conn, expr, &weights, &f, 0, 100, 0).unwrap().len(), 13);
    }
}
