//! Recordings and transcripts on SQLite (migration 0007): each record as a
//! JSON `doc` plus real columns for its keys and filters, one
//! `transcript_criteria` row per evaluation criterion, and an FTS5 index
//! (`transcript_fts`, contentless) with one row per turn and one for the
//! summary (its words as the contract splits them), rewritten in the same
//! transaction as the transcript.
//!
//! Search semantics (the storage contract's reference, see
//! `switchboard_storage::conformance::reference_matches`): a term hits a
//! transcript when it matches one of its texts (a turn or the summary); every
//! group needs a hit, no `not` term may hit. In SQL: one FTS5 `MATCH` per
//! group (its terms ORed), the transcript sets INTERSECTed, the `not` terms'
//! set EXCEPTed. Every term is a quoted FTS5 string (`"refund"`, `"cancel"*`,
//! `"credit card"`, quotes doubled), so user text is never FTS5 syntax.
//!
//! Ranking: `bm25()` of the best-matching row (any positive term) per
//! transcript; that row also names `SearchHit::turn` (`None`: the summary).
//! Relevance pages use an offset cursor: BM25 depends on the whole corpus, so
//! a score keyset would not be stable under writes either, and an offset is
//! exact when nothing changes between pages. Newest pages use the usual
//! `(started_at, id)` keyset.

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
use crate::rows::{decode_cursor, json_err, map_err, to_doc};

/// Full-text rows per transcript: `rid << SLOT_BITS | slot`.
const SLOT_BITS: u32 = 20;
const SLOT_MASK: i64 = (1 << SLOT_BITS) - 1;

fn fts_rowid(rid: i64, slot: i64) -> i64 {
    (rid << SLOT_BITS) | slot
}

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
            let mut del = conn.prepare_cached("DELETE FROM transcript_fts WHERE rowid = ?1").map_err(map_err)?;
            for slot in 0..=old.turns.len() as i64 {
                del.execute([fts_rowid(*rid, slot)]).map_err(map_err)?;
            }
            conn.prepare_cached("DELETE FROM transcript_criteria WHERE transcript_id = ?1")
                .and_then(|mut st| st.execute([new.id.as_str()]))
                .map_err(map_err)?;
            *rid
        }
    };
    let mut ins = conn.prepare_cached("INSERT INTO transcript_fts (rowid, body) VALUES (?1, ?2)").map_err(map_err)?;
    let texts = std::iter::once(new.summary.as_deref().unwrap_or(""))
        .chain(new.turns.iter().map(|t| t.message.as_str()))
        .enumerate();
    for (slot, text) in texts {
        // The row holds the contract's words (`words()`: lower-cased runs of
        // letters and digits), not the raw text: the table is contentless, so
        // nothing reads it back, and FTS5's tokens are then exactly the
        // reference predicate's words (unicode61 never splits inside one).
        let normalized = words(text).join(" ");
        if !normalized.is_empty() {
            ins.execute(params![fts_rowid(rid, slot as i64), normalized]).map_err(map_err)?;
        }
    }
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

/// Terms ORed, in parentheses.
pub(crate) fn fts_any<'a>(terms: impl IntoIterator<Item = &'a Term>) -> String {
    let parts: Vec<String> = terms.into_iter().map(fts_term).collect();
    format!("({})", parts.join(" OR "))
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

/// The matching rids (every group hits, no `not` term hits) as a compound
/// SELECT over the FTS index: each group one MATCH (its terms ORed), the
/// sets INTERSECTed, the `not` set EXCEPTed. Only doclists are walked
/// (no ranking).
fn matched_sql(q: &TextQuery, p: &mut Params) -> String {
    let mut matched = q
        .all
        .iter()
        .map(|g| {
            format!("SELECT rowid >> {SLOT_BITS} FROM transcript_fts WHERE transcript_fts MATCH {}", p.bind(fts_any(g)))
        })
        .collect::<Vec<_>>()
        .join(" INTERSECT ");
    if !q.not.is_empty() {
        matched = format!(
            "{matched} EXCEPT SELECT rowid >> {SLOT_BITS} FROM transcript_fts WHERE transcript_fts MATCH {}",
            p.bind(fts_any(&q.not))
        );
    }
    matched
}

/// The best-matching row of one transcript for the positive terms: (slot, bm25).
/// A rowid range on the FTS table: only that transcript's rows are ranked.
fn best_row(conn: &Connection, positive: &str, rid: i64) -> StoreResult<(i64, f64)> {
    conn.prepare_cached(
        "SELECT rowid & ?4, bm25(transcript_fts) AS r FROM transcript_fts \
         WHERE transcript_fts MATCH ?1 AND rowid BETWEEN ?2 AND ?3 ORDER BY r, rowid LIMIT 1",
    )
    .and_then(|mut st| {
        st.query_row(params![positive, fts_rowid(rid, 0), fts_rowid(rid, SLOT_MASK), SLOT_MASK], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
    })
    .map_err(map_err)
}

fn doc_of(conn: &Connection, rid: i64) -> StoreResult<String> {
    conn.prepare_cached("SELECT doc FROM transcripts WHERE rid = ?1")
        .and_then(|mut st| st.query_row([rid], |r| r.get(0)))
        .map_err(map_err)
}

fn filter_is_empty(f: &TranscriptFilter) -> bool {
    f == &TranscriptFilter::default()
}

/// One page of search hits (`limit + 1` at most, for the overfetch).
///
/// Newest: the filtered transcripts are walked newest first (the filter's
/// `(…, started_at, id)` index), each tested against the matching set
/// (materialised once from the doclists), stopping after `limit + 1`; only
/// those are ranked (their own FTS rows).
///
/// Relevance: FTS5 ranks the positive terms' rows (bm25) and returns them
/// best first; a transcript's first row in that order is its best (its
/// minimum rank), so the hits are the distinct rids in that order that are
/// in the allowed set (matching and passing the filter), skipping `offset`,
/// stopping after `limit + 1`. The allowed set is only built when it differs
/// from "has a positive row" (several groups, `not` terms, or filters).
fn search_in(
    conn: &Connection,
    q: &TextQuery,
    filter: &TranscriptFilter,
    order: SearchOrder,
    cursor: &Option<Cursor>,
    offset: i64,
    limit: u32,
) -> StoreResult<Vec<SearchHit>> {
    let positive = fts_any(q.all.iter().flatten());
    let want = limit as usize + 1;
    let mut picked: Vec<(i64, i64, f64)> = Vec::with_capacity(want);
    match order {
        SearchOrder::Newest => {
            let mut p = Params::default();
            let matched = matched_sql(q, &mut p);
            let mut conds = filter_sql(filter, &mut p);
            conds.extend(newest_keyset(cursor, &mut p));
            conds.push("t.rid IN (SELECT rid FROM m)".to_owned());
            let sql = format!(
                "WITH m(rid) AS MATERIALIZED ({matched}) \
                 SELECT t.rid FROM transcripts t {} ORDER BY t.started_at DESC, t.id DESC LIMIT {want}",
                where_sql(&conds),
            );
            let mut st = conn.prepare(&sql).map_err(map_err)?;
            let rids: Vec<i64> = st
                .query_map(rusqlite::params_from_iter(p.0), |r| r.get(0))
                .and_then(|rows| rows.collect())
                .map_err(map_err)?;
            for rid in rids {
                let (slot, rank) = best_row(conn, &positive, rid)?;
                picked.push((rid, slot, rank));
            }
        }
        SearchOrder::Relevance => {
            let allowed: Option<std::collections::HashSet<i64>> =
                if q.all.len() > 1 || !q.not.is_empty() || !filter_is_empty(filter) {
                    let mut p = Params::default();
                    let matched = matched_sql(q, &mut p);
                    let mut conds = filter_sql(filter, &mut p);
                    let sql = if conds.is_empty() {
                        matched
                    } else {
                        conds.push("t.rid IN (SELECT rid FROM m)".to_owned());
                        format!(
                            "WITH m(rid) AS MATERIALIZED ({matched}) SELECT t.rid FROM transcripts t {}",
                            where_sql(&conds)
                        )
                    };
                    let mut st = conn.prepare(&sql).map_err(map_err)?;
                    let set = st
                        .query_map(rusqlite::params_from_iter(p.0), |r| r.get::<_, i64>(0))
                        .and_then(|rows| rows.collect::<Result<std::collections::HashSet<_>, _>>())
                        .map_err(map_err)?;
                    if set.is_empty() {
                        return Ok(Vec::new());
                    }
                    Some(set)
                } else {
                    None
                };
            let mut st = conn
                .prepare_cached("SELECT rowid, rank FROM transcript_fts WHERE transcript_fts MATCH ?1 ORDER BY rank")
                .map_err(map_err)?;
            let mut rows = st.query([&positive]).map_err(map_err)?;
            let mut seen = std::collections::HashSet::new();
            let mut skip = offset;
            while let Some(r) = rows.next().map_err(map_err)? {
                let rowid: i64 = r.get(0).map_err(map_err)?;
                let rid = rowid >> SLOT_BITS;
                if allowed.as_ref().is_some_and(|a| !a.contains(&rid)) || !seen.insert(rid) {
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                picked.push((rid, rowid & SLOT_MASK, r.get(1).map_err(map_err)?));
                if picked.len() == want {
                    break;
                }
            }
        }
    }
    picked
        .into_iter()
        .map(|(rid, slot, rank)| {
            Ok(SearchHit {
                transcript: decode_transcript(&doc_of(conn, rid)?)?,
                score: -rank,
                turn: (slot > 0).then(|| slot as usize - 1),
            })
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
    fn user_text_is_never_fts5_syntax() {
        let q = TextQuery::parse(r#"refund OR cancel* "credit card" -angry NEAR(a b) col:x"#).unwrap();
        assert_eq!(fts_any(&q.all[0]), r#"("refund" OR "cancel"*)"#);
        assert_eq!(fts_any(&q.all[1]), r#"("credit card")"#);
        assert_eq!(fts_term(&Term::Word("a\"b".into())), r#""a""b""#);
        assert_eq!(fts_any(&q.not), r#"("angry")"#);
    }
}
