//! Exact top-k pruning for relevance search (migrations 0011, 0012).
//!
//! Ranking every row that matches a query word in most transcripts costs tens
//! of thousands of scores for one page. This module lets a relevance page be
//! drawn from a small candidate set when that provably gives the same page.
//!
//! **The score.** `sb_bm25` (crates/fts5-rank) gives a row Σᵢ wᵢ · s(tfᵢ)
//! over the expression's phrases, with tfᵢ the phrase's count in `turns` +
//! `summary`, s(x) = x(k₁+1) / (x + k₁) strictly increasing (BM25 without
//! length normalisation: the index keeps no row sizes), and wᵢ the phrase's
//! idf: the sum of its words' idf(n) = ln(1 + (N − n + 0.5) / (n + 0.5))
//! (Lucene's BM25 idf, always positive; a phrase weighs the sum of its
//! words, as Lucene's phrase query does), N the transcripts indexed and n
//! those holding the word, both read from `transcript_token_rows`, which the
//! write transaction keeps (FTS5's own `bm25()` counted each phrase's rows on
//! every query, a pass over whole doclists).
//!
//! **The tiers.** The `tiers` column holds, for each word a transcript says at
//! least twice, one token `word_T` for each tier T in [`TIERS`] not above its
//! count (counted over turns and summary, as FTS5 counts). `tiers` weighs 0 in
//! the score (not a counted column) and its tokens never equal a query word
//! (words have no `_`), so adding `AND (tiers…)` to a query narrows its rows
//! without changing any row's score. A row outside `word_T` says the word
//! fewer than T times.
//!
//! **The proof obligation, checked per page.** With candidates C_T = the
//! query's rows that have a tier-T token of a query phrase (every word of it),
//! a row outside C_T has every phrase tf ≤ T − 1. If the page drawn from C_T
//! (best first, filter applied) is full and its last row beats every such
//! row, it is exactly the page of the full ranking:
//! - one phrase (a word or a quoted phrase): the last row's tf ≥ T, counted
//!   from its stored text; a transcript with non-ASCII words is not counted
//!   (FTS5's tokenizer may split such a word where ours does not) and fails
//!   the check;
//! - several words (OR, prefix expansions, AND of words): the last row's
//!   score > U(T) = Σᵢ wᵢ · s(T − 1) over the tier's words, plus wᵢ · (k₁ + 1)
//!   (s's supremum) for a word left out of the tier clause.
//!
//! Otherwise the next lower tier is tried, and in the end the full ranking.
//! Counting for tiers over-approximates FTS5's counts (see [`tier_text`]), so
//! "outside C_T ⇒ tf ≤ T − 1" holds for any text. Quoted phrases among other
//! terms and prefixes that FTS5 expands itself are not pruned.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension};
use switchboard_domain::Transcript;
use switchboard_storage::transcripts::words;
use switchboard_storage::{StoreResult, Term, TextQuery};

use switchboard_fts5_rank::{K1, saturation};

use crate::rows::map_err;

/// Counts at which a word gets a tier token.
pub(crate) const TIERS: [u32; 15] = [2, 3, 4, 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64];

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

    /// The words whose tier tokens select the candidates: for one phrase,
    /// every word of it (ANDed: every saying of the phrase is a saying of
    /// each word); for several words, those that some transcript says twice
    /// (a word never said twice has no tier token and is bounded by its
    /// count of one instead), and of those the ones not in most rows (see
    /// [`Stats::common`]) unless every one is.
    fn clause_words<'a>(&'a self, stats: &Stats) -> Vec<&'a str> {
        match self {
            Plan::Single(_) => self.distinct_words(),
            Plan::Words(_) => {
                let repeated: Vec<&str> =
                    self.distinct_words().into_iter().filter(|w| stats.tier_rows(w, 2) > 0).collect();
                let rare: Vec<&str> = repeated.iter().copied().filter(|w| !stats.common(w)).collect();
                if rare.is_empty() { repeated } else { rare }
            }
        }
    }

    /// The rows that may say the query's phrase (one phrase: ANDed words)
    /// or a query word (several: ORed) at least `t` times; a row outside
    /// says it at most `t − 1` times. Empty when no word can be a candidate.
    pub(crate) fn tier_clause(&self, stats: &Stats, t: u32) -> String {
        let op = match self {
            Plan::Single(_) => " AND ",
            Plan::Words(_) => " OR ",
        };
        self.clause_words(stats).iter().map(|w| quoted(&format!("{w}_{t}"))).collect::<Vec<_>>().join(op)
    }

    /// The query narrowed to tier `t`'s candidates.
    pub(crate) fn candidates(&self, stats: &Stats, expr: &str, t: u32) -> String {
        format!("({expr}) AND ({})", self.tier_clause(stats, t))
    }

    /// Several words, once some row is known to score `floor`: a clause
    /// whose rows hold every row scoring at least `floor`, and an upper
    /// bound of its row count. Each word gets a threshold — left out (a row
    /// may say it up to its most sayings), a tier T (a row outside says it
    /// at most T − 1 times) or the word itself (a row outside does not say
    /// it) — so that Σ idf·s(cap) over the words, the best a row outside
    /// can score, is below `floor`; thresholds are lowered one step at a
    /// time where that cuts the bound most per candidate row added. Then
    /// the top rows of the query all lie in the clause's rows: a page of
    /// those ranks is the full ranking's page, whatever the page holds.
    pub(crate) fn floor_clause(&self, stats: &Stats, floor: f64) -> Option<(String, u64)> {
        let Plan::Words(words) = self else { return None };
        if floor.is_nan() || floor <= 0.0 {
            return None;
        }
        struct Word<'a> {
            word: &'a str,
            weight: f64,
            max_tf: Option<u32>,
            // Steps, loosest first: left out, tiers (high to low), the word.
            ladder: Vec<Option<u32>>,
            at: usize,
        }
        let mut ws: Vec<Word> = Vec::new();
        for w in self.distinct_words() {
            let times = words.iter().filter(|x| x.as_str() == w).count() as f64;
            let mut ladder = vec![None];
            ladder.extend(TIERS.iter().rev().filter(|t| stats.tier_rows(w, **t) > 0).map(|t| Some(*t)));
            ladder.push(Some(1));
            ws.push(Word { word: w, weight: stats.idf(w) * times, max_tf: stats.max_tf(w), ladder, at: 0 });
        }
        let cap = |w: &Word, step: usize| -> f64 {
            let most = match w.ladder[step] {
                None => w.max_tf,
                Some(t) => Some(w.max_tf.map_or(t - 1, |m| m.min(t - 1))),
            };
            w.weight * most.map_or(K1 + 1.0, saturation)
        };
        let rows = |w: &Word, step: usize| -> u64 {
            match w.ladder[step] {
                None => 0,
                Some(1) => stats.word_rows.get(w.word).copied().unwrap_or(0).max(0) as u64,
                Some(t) => stats.tier_rows(w.word, t),
            }
        };
        loop {
            let bound: f64 = ws.iter().map(|w| cap(w, w.at)).sum();
            // A margin far above float rounding, far below a score step.
            if bound * (1.0 + 1e-9) < floor {
                break;
            }
            let best = ws
                .iter()
                .enumerate()
                .filter(|(_, w)| w.at + 1 < w.ladder.len())
                .map(|(i, w)| {
                    let cut = cap(w, w.at) - cap(w, w.at + 1);
                    let added = rows(w, w.at + 1).saturating_sub(rows(w, w.at)).max(1) as f64;
                    (i, cut / added)
                })
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            ws[best.0].at += 1;
        }
        let mut tokens = Vec::new();
        let mut estimate = 0;
        for w in &ws {
            match w.ladder[w.at] {
                None => {}
                Some(1) => tokens.push(quoted(w.word)),
                Some(t) => tokens.push(quoted(&format!("{}_{t}", w.word))),
            }
            estimate += rows(w, w.at);
        }
        (!tokens.is_empty()).then(|| (tokens.join(" OR "), estimate))
    }
}

/// What a phrase of an FTS5 expression weighs, in FTS5's numbering (left
/// to right).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Phrase {
    /// These words in this order (a word is a phrase of one).
    Words(Vec<String>),
    /// A prefix FTS5 expands itself (wider than our expansion).
    Prefix(String),
    /// Under NOT: in no matching row, weighs nothing.
    Excluded,
}

/// The token under which `transcript_token_rows` counts the transcripts.
const ALL_ROWS: &str = "";

/// The corpus size, the query words' row counts (for their idf) and their
/// tier tokens' row counts, from `transcript_token_rows`, read once per
/// search (in the search's read snapshot, so they are the index's counts).
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Transcripts in the index (N).
    rows: i64,
    /// Transcripts holding each query word.
    word_rows: HashMap<String, i64>,
    /// Rows holding `word_T`, by (word, T); absent: none.
    tier_rows: HashMap<(String, u32), u64>,
}

/// Transcripts holding a token (0 when none ever did).
pub(crate) fn token_rows(conn: &Connection, token: &str) -> StoreResult<i64> {
    conn.prepare_cached("SELECT rows FROM transcript_token_rows WHERE token = ?1")
        .and_then(|mut st| st.query_row([token], |r| r.get(0)).optional())
        .map(|n| n.unwrap_or(0))
        .map_err(map_err)
}

/// Transcripts holding any word that starts with `prefix` (counted once
/// per word: an upper bound).
pub(crate) fn prefix_rows(conn: &Connection, prefix: &str) -> StoreResult<i64> {
    let hi = format!("{prefix}{}", char::MAX);
    conn.prepare_cached(
        "SELECT coalesce(sum(rows), 0) FROM transcript_token_rows \
         WHERE token >= ?1 AND token <= ?2 AND instr(token, '_') = 0",
    )
    .and_then(|mut st| st.query_row([prefix, hi.as_str()], |r| r.get(0)))
    .map_err(map_err)
}

/// The number of transcripts indexed.
pub(crate) fn indexed_rows(conn: &Connection) -> StoreResult<i64> {
    token_rows(conn, ALL_ROWS)
}

/// At most how many transcripts match `q`, from the token counts: an AND
/// group matches at most its terms' rows together, a phrase at most its
/// rarest word's. (FTS5 may split a non-ASCII word where ours does not, so
/// for such words this is an estimate; it only picks a strategy.)
pub(crate) fn match_bound(conn: &Connection, q: &TextQuery) -> StoreResult<i64> {
    let mut bound = i64::MAX;
    for group in &q.all {
        let mut sum = 0i64;
        for term in group {
            sum += match term {
                Term::Word(w) => token_rows(conn, w)?,
                Term::Phrase(ws) => {
                    let mut least = i64::MAX;
                    for w in ws {
                        least = least.min(token_rows(conn, w)?);
                    }
                    if least == i64::MAX { 0 } else { least }
                }
                Term::Prefix(p) => prefix_rows(conn, p)?,
            };
        }
        bound = bound.min(sum);
    }
    Ok(if bound == i64::MAX { 0 } else { bound })
}

impl Stats {
    /// Reads N and the row counts of the words of `phrases`.
    pub(crate) fn read(conn: &Connection, phrases: &[Phrase]) -> StoreResult<Stats> {
        let mut stats = Stats { rows: indexed_rows(conn)?, ..Stats::default() };
        let mut tiers = conn
            .prepare_cached("SELECT token, rows FROM transcript_token_rows WHERE token > ?1 AND token < ?2")
            .map_err(map_err)?;
        for p in phrases {
            if let Phrase::Words(ws) = p {
                for w in ws {
                    if stats.word_rows.contains_key(w) {
                        continue;
                    }
                    stats.word_rows.insert(w.clone(), token_rows(conn, w)?);
                    // `w_2` … `w_64` sort between `w_` and `w``.
                    let rows = tiers
                        .query_map([format!("{w}_"), format!("{w}`")], |r| {
                            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
                        })
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                        .map_err(map_err)?;
                    for (token, n) in rows {
                        let tier = token.strip_prefix(w.as_str()).and_then(|r| r.strip_prefix('_'));
                        if let Some(t) = tier.and_then(|t| t.parse::<u32>().ok()) {
                            stats.tier_rows.insert((w.clone(), t), n.max(0) as u64);
                        }
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Each phrase's weight (`sb_bm25`'s argument): the sum of its words'
    /// idf; a prefix FTS5 expands weighs as one word held by as many rows as
    /// its words together (at most N); an excluded phrase 0.
    pub(crate) fn weights(&self, conn: &Connection, phrases: &[Phrase]) -> StoreResult<Vec<f64>> {
        phrases
            .iter()
            .map(|p| match p {
                Phrase::Words(ws) => Ok(self.phrase_weight(ws)),
                Phrase::Prefix(prefix) => Ok(self.idf_of(prefix_rows(conn, prefix)?)),
                Phrase::Excluded => Ok(0.0),
            })
            .collect()
    }

    /// A phrase's weight: the sum of its words' idf (one place, so the
    /// weight passed to `sb_bm25` and the tie score computed from it agree
    /// to the bit).
    pub(crate) fn phrase_weight(&self, words: &[String]) -> f64 {
        words.iter().map(|w| self.idf(w)).sum()
    }

    /// Rows holding `word_T`.
    fn tier_rows(&self, w: &str, t: u32) -> u64 {
        self.tier_rows.get(&(w.to_owned(), t)).copied().unwrap_or(0)
    }

    /// The most times any transcript says `w`, as far as its tiers tell
    /// (one less than its first empty tier; `None`: beyond the last tier).
    fn max_tf(&self, w: &str) -> Option<u32> {
        if self.word_rows.get(w).copied().unwrap_or(0) <= 0 {
            return Some(0);
        }
        TIERS.iter().find(|t| self.tier_rows(w, **t) == 0).map(|t| t - 1)
    }

    /// An upper bound of tier `t`'s candidate count.
    pub(crate) fn estimate(&self, plan: &Plan, t: u32) -> u64 {
        let counts = plan.clause_words(self).into_iter().map(|w| self.tier_rows(w, t));
        match plan {
            Plan::Single(_) => counts.min().unwrap_or(0),
            Plan::Words(_) => counts.sum(),
        }
    }

    /// Rows in the index.
    pub(crate) fn rows(&self) -> i64 {
        self.rows
    }

    /// The idf of a token held by `n` rows.
    fn idf_of(&self, n: i64) -> f64 {
        let big_n = self.rows.max(0) as f64;
        let n = (n.max(0) as f64).min(big_n);
        (1.0 + (big_n - n + 0.5) / (n + 0.5)).ln()
    }

    /// A word's idf.
    pub(crate) fn idf(&self, w: &str) -> f64 {
        self.idf_of(self.word_rows.get(w).copied().unwrap_or(0))
    }

    /// A word in at least half the rows: left out of the tier clause when the
    /// query has rarer words (bounded by idf·(k₁+1) instead), as its tier
    /// tokens would select most rows.
    fn common(&self, w: &str) -> bool {
        2 * self.word_rows.get(w).copied().unwrap_or(0) >= self.rows
    }

    /// The score of a row where each of `words` (its phrases) has the count
    /// in `tfs`, as `sb_bm25` computes it (positive).
    #[cfg(test)]
    pub(crate) fn score(&self, words: &[String], tfs: &[u32]) -> f64 {
        let mut total = 0.0;
        for (w, tf) in words.iter().zip(tfs) {
            if *tf > 0 {
                total += self.idf(w) * saturation(*tf);
            }
        }
        total
    }

    /// The highest score a row outside tier `t`'s candidates can have: each
    /// clause word said at most `t − 1` times, any word at most its
    /// [`Stats::max_tf`] (unbounded: s's supremum, k₁ + 1).
    fn bound(&self, plan: &Plan, t: u32) -> f64 {
        let Plan::Words(words) = plan else { return f64::INFINITY };
        let clause = plan.clause_words(self);
        words
            .iter()
            .map(|w| {
                let cap = if clause.contains(&w.as_str()) {
                    Some(self.max_tf(w).map_or(t - 1, |m| m.min(t - 1)))
                } else {
                    self.max_tf(w)
                };
                self.idf(w) * cap.map_or(K1 + 1.0, saturation)
            })
            .sum()
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
        Plan::Words(_) => -rank > stats.bound(plan, t) * (1.0 + 1e-9),
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
        // bill and billing said up to 5 times (tiers 2–5), plan never twice.
        let tier_rows = ["bill", "billing"]
            .into_iter()
            .flat_map(|w| [2, 3, 4, 5].map(|t| ((w.to_owned(), t), 3)))
            .collect::<HashMap<_, _>>();
        let word_rows = HashMap::from([("bill".to_owned(), 5), ("billing".to_owned(), 5), ("plan".to_owned(), 9)]);
        let stats = Stats { rows: 100, word_rows, tier_rows };
        assert_eq!(
            Plan::Words(ws("bill billing bill plan")).candidates(&stats, "X", 4),
            r#"(X) AND ("bill_4" OR "billing_4")"#
        );
        assert_eq!(
            Plan::Single(ws("cancel my plan my")).candidates(&stats, "X", 2),
            r#"(X) AND ("cancel_2" AND "my_2" AND "plan_2")"#
        );
        assert_eq!(stats.max_tf("bill"), Some(5));
        assert_eq!(stats.max_tf("plan"), Some(1));
        assert_eq!(stats.max_tf("never"), Some(0));
        // Said at most once: bounded by idf·s(1), whatever the tier.
        let plan = Plan::Words(ws("bill plan"));
        let want = stats.idf("bill") * saturation(3) + stats.idf("plan") * saturation(1);
        assert!((stats.bound(&plan, 4) - want).abs() < 1e-12);
        let want = stats.idf("bill") * saturation(5) + stats.idf("plan") * saturation(1);
        assert!((stats.bound(&plan, 64) - want).abs() < 1e-12, "capped by the max count");
        // A word in most rows is bounded by idf·s(max), not a candidate,
        // when the query has a rarer word; every word is when none is rarer.
        let word_rows = HashMap::from([("billing".to_owned(), 80), ("bill".to_owned(), 5)]);
        let stats = Stats { word_rows, ..stats };
        let plan = Plan::Words(ws("bill billing"));
        assert_eq!(plan.candidates(&stats, "X", 4), r#"(X) AND ("bill_4")"#);
        let want = stats.idf("bill") * saturation(3) + stats.idf("billing") * saturation(5);
        assert!((stats.bound(&plan, 4) - want).abs() < 1e-12);
        let word_rows = HashMap::from([("billing".to_owned(), 80), ("bill".to_owned(), 60)]);
        let stats = Stats { word_rows, ..stats };
        assert_eq!(plan.candidates(&stats, "X", 4), r#"(X) AND ("bill_4" OR "billing_4")"#);
        let want = (stats.idf("bill") + stats.idf("billing")) * saturation(3);
        assert!((stats.bound(&plan, 4) - want).abs() < 1e-12);
        // Lucene's idf: positive however common, falling with the row count.
        assert!(stats.idf("billing") > 0.0 && stats.idf("billing") < stats.idf("bill"));
        assert!(stats.idf("never") > stats.idf("bill"));
    }
}
