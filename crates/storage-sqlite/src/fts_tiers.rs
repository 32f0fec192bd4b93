//! Exact top-k pruning for relevance search (migration 0011).
//!
//! FTS5 ranks a query by scoring every row that matches it; a word in most
//! transcripts makes that tens of thousands of scores for one page. This
//! module lets a relevance page be drawn from a small candidate set when that
//! provably gives the same page.
//!
//! **The score.** On our contentless index with `columnsize = 0`, FTS5's
//! `bm25(1, 1, 0)` gives a row Σᵢ idfᵢ · f(tfᵢ) over the query's phrases, with
//! tfᵢ the phrase's count in `turns` + `summary`, idfᵢ from the phrase's row
//! count, and f(x) = x(k₁+1) / (x + k₁·c), c = 1 − b + b·D/avgdl, where D is
//! −(number of columns) for every row (FTS5 has no per-row sizes to read) and
//! avgdl is the table's tokens per row. So c is one number per query, and
//! when c > 0 f is strictly increasing in tf.
//!
//! **The tiers.** The `tiers` column holds, for each word a transcript says at
//! least twice, one token `word_T` for each tier T in [`TIERS`] not above its
//! count (counted over turns and summary, as FTS5 counts). `tiers` weighs 0 in
//! the rank and its tokens never equal a query word (words have no `_`), so
//! adding `AND (tiers…)` to a query narrows its rows without changing any
//! row's score. A row outside `word_T` says the word fewer than T times.
//!
//! **The proof obligation, checked per page.** With candidates C_T = the
//! query's rows that have a tier-T token of a query phrase (every word of it),
//! a row outside C_T has every phrase tf ≤ T − 1. If the page drawn from C_T
//! (in FTS5's order, filter applied) is full and its last row beats every
//! such row, it is exactly the page of the full ranking:
//! - one phrase (a word or a quoted phrase): the last row's tf ≥ T, counted
//!   from its stored text; a transcript with non-ASCII words is not counted
//!   (FTS5's tokenizer may split such a word where ours does not) and fails
//!   the check;
//! - several words (OR, prefix expansions, AND of words): the last row's
//!   score > U(T) = Σᵢ idfᵢ · f(T − 1), from the words' row counts (the
//!   `fts5vocab` table) and FTS5's averages record, computed as FTS5 does.
//!
//! Otherwise the next lower tier is tried, and in the end the full ranking.
//! Counting for tiers over-approximates FTS5's counts (see [`tier_text`]), so
//! "outside C_T ⇒ tf ≤ T − 1" holds for any text. Quoted phrases among other
//! terms, prefixes that FTS5 expands itself and c ≤ 0 (average transcripts of
//! under ~10 tokens) are not pruned.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension};
use switchboard_domain::Transcript;
use switchboard_storage::transcripts::words;
use switchboard_storage::{StoreResult, Term, TextQuery};

use crate::rows::map_err;

/// Counts at which a word gets a tier token.
pub(crate) const TIERS: [u32; 15] = [2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64];

/// FTS5's bm25 constants.
const K1: f64 = 1.2;
const B: f64 = 0.75;

/// Columns of `transcript_fts` (D = −this for every row).
const FTS_COLUMNS: f64 = 3.0;

/// The `tiers` text of a transcript: `word_T` for every ASCII word counted at
/// least T times, for each tier T.
///
/// Counted over every word of the turns and summary, plus, for a word that is
/// not ASCII, each of its maximal ASCII runs: FTS5's tokenizer may split a
/// non-ASCII word at a character ours keeps, and any ASCII token it then
/// yields is such a run. So a word's count here is never below FTS5's.
pub(crate) fn tier_text<'a>(texts: impl Iterator<Item = &'a [String]>) -> String {
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for ws in texts {
        for w in ws {
            if w.is_ascii() {
                *counts.entry(w.as_str()).or_default() += 1;
            } else {
                for run in w.split(|c: char| !c.is_ascii_alphanumeric()).filter(|r| !r.is_empty()) {
                    *counts.entry(run).or_default() += 1;
                }
            }
        }
    }
    let mut out = String::new();
    for (w, n) in counts {
        for t in TIERS.iter().take_while(|t| **t <= n) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(w);
            out.push('_');
            out.push_str(&t.to_string());
        }
    }
    out
}

/// What pruning needs of a query.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Plan {
    /// One positive phrase (a word is a phrase of one).
    Single(Vec<String>),
    /// Several positive words (FTS5's phrases, in order, duplicates kept).
    Words(Vec<String>),
}

/// The pruning plan for a query, or `None` when it cannot be pruned.
/// `expand` gives a prefix's words as the expression lists them (`None`: FTS5
/// expands it itself).
pub(crate) fn plan(
    q: &TextQuery,
    mut expand: impl FnMut(&str) -> StoreResult<Option<Vec<String>>>,
) -> StoreResult<Option<Plan>> {
    let mut phrases: Vec<Vec<String>> = Vec::new();
    for group in &q.all {
        for term in group {
            match term {
                Term::Word(w) => phrases.push(vec![w.clone()]),
                Term::Phrase(ws) => phrases.push(ws.clone()),
                Term::Prefix(p) => match expand(p)? {
                    Some(ws) => phrases.extend(ws.into_iter().map(|w| vec![w])),
                    None => return Ok(None),
                },
            }
        }
    }
    let ascii = |w: &String| !w.is_empty() && w.bytes().all(|b| b.is_ascii_alphanumeric());
    if phrases.is_empty() || !phrases.iter().flatten().all(ascii) {
        return Ok(None);
    }
    if phrases.len() == 1 {
        return Ok(phrases.pop().map(Plan::Single));
    }
    if phrases.iter().all(|p| p.len() == 1) {
        return Ok(Some(Plan::Words(phrases.into_iter().flatten().collect())));
    }
    Ok(None)
}

fn quoted(s: &str) -> String {
    format!("\"{s}\"")
}

impl Plan {
    fn distinct_words(&self) -> Vec<&str> {
        let mut ws: Vec<&str> = match self {
            Plan::Single(p) => p.iter().map(String::as_str).collect(),
            Plan::Words(ws) => ws.iter().map(String::as_str).collect(),
        };
        ws.sort_unstable();
        ws.dedup();
        ws
    }

    /// The words whose tier tokens select the candidates: a word; for a
    /// phrase, its longest word (every saying of the phrase is a saying of
    /// each of its words, and a long word is the likeliest to be rare); for
    /// several words, those not in most rows (see [`Stats::common`]).
    fn clause_words<'a>(&'a self, stats: &Stats) -> Vec<&'a str> {
        match self {
            Plan::Single(p) => {
                p.iter().map(String::as_str).max_by_key(|w| (w.len(), std::cmp::Reverse(*w))).into_iter().collect()
            }
            Plan::Words(_) => self.distinct_words().into_iter().filter(|w| !stats.common(w)).collect(),
        }
    }

    /// The rows that may say a query phrase at least `t` times (a row
    /// outside says each at most `t − 1` times, a common word of several any
    /// number of times).
    pub(crate) fn tier_clause(&self, stats: &Stats, t: u32) -> String {
        self.clause_words(stats).iter().map(|w| quoted(&format!("{w}_{t}"))).collect::<Vec<_>>().join(" OR ")
    }

    /// The query narrowed to tier `t`'s candidates.
    pub(crate) fn candidates(&self, stats: &Stats, expr: &str, t: u32) -> String {
        format!("({expr}) AND ({})", self.tier_clause(stats, t))
    }
}

/// Corpus figures FTS5's bm25 uses, the query words' row counts (several
/// words only: their idf), and tier token row counts (read when asked).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Rows in the index.
    rows: i64,
    /// Tokens per row (all columns).
    avgdl: f64,
    /// Rows holding each word.
    word_rows: HashMap<String, i64>,
    /// Rows holding `word_T`, by (word, T), as read.
    tier_rows: std::cell::RefCell<HashMap<(String, u32), u64>>,
}

/// A SQLite varint (as FTS5 writes its averages record).
fn varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..9 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if i == 8 {
            return Some((v << 8) | u64::from(byte));
        }
        v = (v << 7) | u64::from(byte & 0x7f);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Rows holding a token (`fts5vocab` reads its doclist).
fn token_rows(conn: &Connection, token: &str) -> StoreResult<i64> {
    conn.prepare_cached("SELECT doc FROM transcript_fts_vocab WHERE term = ?1")
        .and_then(|mut st| st.query_row([token], |r| r.get(0)).optional())
        .map(|n| n.unwrap_or(0))
        .map_err(map_err)
}

impl Stats {
    /// Reads FTS5's averages record and, for several words, their row counts.
    pub(crate) fn read(conn: &Connection, plan: &Plan) -> StoreResult<Option<Stats>> {
        let block: Option<Vec<u8>> = conn
            .prepare_cached("SELECT block FROM transcript_fts_data WHERE id = 1")
            .and_then(|mut st| st.query_row([], |r| r.get(0)).optional())
            .map_err(map_err)?;
        let Some(block) = block else { return Ok(None) };
        let mut pos = 0;
        let Some(rows) = varint(&block, &mut pos) else { return Ok(None) };
        let mut tokens = 0u64;
        while pos < block.len() {
            match varint(&block, &mut pos) {
                Some(n) => tokens += n,
                None => return Ok(None),
            }
        }
        if rows == 0 {
            return Ok(None);
        }
        let mut stats = Stats { rows: rows as i64, avgdl: tokens as f64 / rows as f64, ..Stats::default() };
        if let Plan::Words(_) = plan {
            for w in plan.distinct_words() {
                stats.word_rows.insert(w.to_owned(), token_rows(conn, w)?);
            }
        }
        Ok(Some(stats))
    }

    /// Rows holding `word_T`.
    fn tier_rows(&self, conn: &Connection, w: &str, t: u32) -> StoreResult<u64> {
        let key = (w.to_owned(), t);
        if let Some(n) = self.tier_rows.borrow().get(&key) {
            return Ok(*n);
        }
        let n = token_rows(conn, &format!("{w}_{t}"))?.max(0) as u64;
        self.tier_rows.borrow_mut().insert(key, n);
        Ok(n)
    }

    /// An upper bound of tier `t`'s candidate count.
    pub(crate) fn estimate(&self, conn: &Connection, plan: &Plan, t: u32) -> StoreResult<u64> {
        let mut n = 0;
        for w in plan.clause_words(self) {
            n += self.tier_rows(conn, w, t)?;
        }
        Ok(n)
    }

    /// c in f(x) = x(k₁+1) / (x + k₁·c), as FTS5 computes it.
    fn c(&self) -> f64 {
        1.0 - B + B * (-FTS_COLUMNS) / self.avgdl
    }

    /// Rows in the index.
    pub(crate) fn rows(&self) -> i64 {
        self.rows
    }

    /// FTS5's f(x): a phrase's weight at count `x`, per unit of idf.
    pub(crate) fn f(&self, x: u32) -> f64 {
        let x = f64::from(x);
        (x * (K1 + 1.0)) / (x + K1 * self.c())
    }

    /// Whether pruning may be tried: FTS5's f grows with the count.
    pub(crate) fn usable(&self) -> bool {
        self.c() > 0.0
    }

    /// FTS5's raw idf of a word (before its floor).
    fn raw_idf(&self, w: &str) -> f64 {
        let hits = self.word_rows.get(w).copied().unwrap_or(0);
        (((self.rows - hits) as f64 + 0.5) / (hits as f64 + 0.5)).ln()
    }

    /// FTS5's idf of a word.
    fn idf(&self, w: &str) -> f64 {
        let idf = self.raw_idf(w);
        if idf <= 0.0 { 1e-6 } else { idf }
    }

    /// A word in at least half the rows: FTS5 floors its idf at 1e-6, so it
    /// adds less than 1e-6·(k₁+1) to any score however often it is said, and
    /// is left out of the tier clause (bounded by that instead).
    fn common(&self, w: &str) -> bool {
        self.raw_idf(w) <= 0.0
    }

    /// FTS5's score of a row where each of `words` (its phrases) has the
    /// count in `tfs`.
    pub(crate) fn score(&self, words: &[String], tfs: &[u32]) -> f64 {
        let c = self.c();
        words
            .iter()
            .zip(tfs)
            .map(|(w, tf)| {
                let x = f64::from(*tf);
                self.idf(w) * ((x * (K1 + 1.0)) / (x + K1 * c))
            })
            .sum()
    }

    /// The highest score a row outside tier `t`'s candidates can have: each
    /// word said at most `t − 1` times, a common word any number of times.
    fn bound(&self, words: &[String], t: u32) -> f64 {
        let capped: f64 = words.iter().filter(|w| self.common(w)).map(|w| self.idf(w) * (K1 + 1.0)).sum();
        let rest: Vec<String> = words.iter().filter(|w| !self.common(w)).cloned().collect();
        capped + self.score(&rest, &vec![t - 1; rest.len()])
    }
}

/// A phrase's count in a transcript as FTS5 counts it, when it can be known
/// here: `None` if the transcript has a non-ASCII word.
pub(crate) fn phrase_tf(t: &Transcript, phrase: &[String]) -> Option<u32> {
    let mut n = 0;
    for text in t.turns.iter().map(|x| x.message.as_str()).chain(t.summary.as_deref()) {
        let ws = words(text);
        if !ws.iter().all(|w| w.is_ascii()) {
            return None;
        }
        n += ws.windows(phrase.len()).filter(|win| *win == phrase).count() as u32;
    }
    Some(n)
}

/// Whether a full page from tier `t`'s candidates, whose last row has `rank`
/// (FTS5's, negative) and is `last`, is the full ranking's page.
/// `last` is needed (and read) for a single phrase only.
pub(crate) fn page_is_exact(plan: &Plan, stats: &Stats, t: u32, rank: f64, last: Option<&Transcript>) -> bool {
    match plan {
        Plan::Single(p) => last.and_then(|l| phrase_tf(l, p)).is_some_and(|tf| tf >= t),
        // A margin far above float rounding, far below a score step.
        Plan::Words(ws) => -rank > stats.bound(ws, t) * (1.0 + 1e-9),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ws(s: &str) -> Vec<String> {
        words(s)
    }

    #[test]
    fn tiers_cover_every_count_and_over_approximate_non_ascii_words() {
        let a = ws("refund refund please refund");
        let b = ws("refund thanks please");
        assert_eq!(tier_text([a.as_slice(), b.as_slice()].into_iter()), "please_2 refund_2 refund_3 refund_4");
        // `abcé` may be split by FTS5 into nothing ASCII, or `abc`: counted as `abc`.
        let c = ws("abcé abc");
        assert_eq!(tier_text([c.as_slice()].into_iter()), "abc_2");
        assert_eq!(tier_text(std::iter::empty()), "");
    }

    #[test]
    fn plans_name_what_can_be_pruned() {
        let none = |_: &str| Ok(None);
        let p = |s: &str| plan(&TextQuery::parse(s).unwrap(), none).unwrap();
        assert_eq!(p("refund"), Some(Plan::Single(vec!["refund".into()])));
        assert_eq!(p("\"cancel my plan\""), Some(Plan::Single(ws("cancel my plan"))));
        assert_eq!(p("refund OR replacement -angry"), Some(Plan::Words(ws("refund replacement"))));
        assert_eq!(p("refund \"my plan\""), None, "a phrase among other terms");
        assert_eq!(p("bill*"), None, "FTS5 expands the prefix");
        assert_eq!(p("café"), None, "non-ASCII");
        let q = TextQuery::parse("bill*").unwrap();
        let expanded = plan(&q, |_| Ok(Some(vec!["bill".into(), "billing".into()]))).unwrap();
        assert_eq!(expanded, Some(Plan::Words(ws("bill billing"))));
        let stats = Stats { rows: 100, avgdl: 300.0, ..Stats::default() };
        assert_eq!(
            Plan::Words(ws("bill billing bill")).candidates(&stats, "X", 4),
            r#"(X) AND ("bill_4" OR "billing_4")"#
        );
        assert_eq!(Plan::Single(ws("cancel my plan")).candidates(&stats, "X", 2), r#"(X) AND ("cancel_2")"#);
        // A word in most rows adds at most 1e-6·(k₁+1): bounded, not a candidate.
        let stats = Stats { word_rows: HashMap::from([("billing".to_owned(), 80)]), ..stats };
        assert_eq!(Plan::Words(ws("bill billing")).candidates(&stats, "X", 4), r#"(X) AND ("bill_4")"#);
        assert!(stats.bound(&ws("bill billing"), 1) <= 2.2e-6 + 1e-12);
    }

    #[test]
    fn varints_decode_as_sqlite_writes_them() {
        let mut pos = 0;
        let b = [0x03, 0x81, 0x00, 0xff, 0x7f];
        assert_eq!(varint(&b, &mut pos), Some(3));
        assert_eq!(varint(&b, &mut pos), Some(128));
        assert_eq!(varint(&b, &mut pos), Some(0x3fff));
        assert_eq!(varint(&b, &mut pos), None);
    }
}
