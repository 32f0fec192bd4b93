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
    /// whose rows hold every row scoring at least `floor` (ties included:
    /// the full ranking breaks them by rowid), and an upper bound of its row
    /// count. Then the top rows of the query all lie in the clause's rows: a
    /// page of those ranks is the full ranking's page, whatever it holds.
    ///
    /// Each word has a ladder of levels (see [`Ladder`]): a row at level j
    /// holds that level's token and says the word at most `cap` times, so
    /// scores at most Σ of its words' level scores. The rows that can reach
    /// the floor are those whose level vector does, an up-set of the level
    /// grid, and [`exact_cover`] writes it as an OR of ANDs of level tokens
    /// (a staircase: "says `bill` 4+ times and `billing` at all, or `bill`
    /// 6+ times, or …"). When that takes more than [`COVER_TOKENS`] tokens,
    /// [`loose_cover`]'s OR of one threshold per word is used instead (a
    /// superset: rows outside it score below the floor by a sum of per-word
    /// caps).
    pub(crate) fn floor_clause(&self, stats: &Stats, floor: f64) -> Option<(String, u64)> {
        let Plan::Words(words) = self else { return None };
        if floor.is_nan() || floor <= 0.0 {
            return None;
        }
        let mut ladders: Vec<Ladder> = self
            .distinct_words()
            .into_iter()
            .map(|w| Ladder::new(stats, w, words.iter().filter(|x| x.as_str() == w).count() as f64))
            .collect();
        // Most telling words first: fewer, larger steps near the top.
        ladders.sort_by(|a, b| b.top().total_cmp(&a.top()).then(a.word.cmp(b.word)));
        // Rows outside must score below the floor by a margin far above
        // float rounding, far below a score step.
        let target = floor / (1.0 + 1e-9);
        let cover = match exact_cover(&ladders, target, stats.rows.max(0) as u64, COVER_TOKENS) {
            Ok(c) => c,
            Err(TooBig) => loose_cover(&ladders, target),
        }?;
        cover.clause.map(|c| (c.render(), cover.estimate))
    }
}

/// At most this many tokens in an exact floor cover (each is a doclist FTS5
/// reads); beyond it the looser one-threshold-per-word cover is used.
pub(crate) const COVER_TOKENS: usize = 24;

/// One query word's levels, lowest first: level 0 (no token: the row may
/// not say the word), the word itself (says it at least once), then each
/// tier token some row holds. A row holding level j's token and not level
/// j + 1's says the word at most `cap` times, one less than the next level's
/// count (the top level: its most sayings, [`Stats::max_tf`]).
struct Ladder<'a> {
    word: &'a str,
    levels: Vec<Level>,
}

struct Level {
    /// The token a row at this level holds (`None`: level 0).
    token: Option<String>,
    /// The most a row at this level (and not above) adds to the score.
    score: f64,
    /// Rows holding the token (level 0: every row).
    rows: u64,
}

impl<'a> Ladder<'a> {
    /// `weight`: the word's idf times its phrases in the query.
    fn new(stats: &Stats, word: &'a str, times: f64) -> Ladder<'a> {
        let weight = stats.idf(word) * times;
        let said = stats.word_rows.get(word).copied().unwrap_or(0).max(0) as u64;
        // (count a row at the level says the word at least, token, rows)
        let mut steps: Vec<(u32, Option<String>, u64)> = vec![(0, None, stats.rows.max(0) as u64)];
        if said > 0 {
            steps.push((1, Some(word.to_owned()), said));
            for &t in TIERS.iter() {
                let rows = stats.tier_rows(word, t);
                if rows == 0 {
                    break;
                }
                steps.push((t, Some(format!("{word}_{t}")), rows));
            }
        }
        let most = stats.max_tf(word);
        let levels = (0..steps.len())
            .map(|j| {
                let cap = match steps.get(j + 1) {
                    Some(next) => Some(next.0 - 1),
                    None => most,
                };
                let score = if j == 0 { 0.0 } else { weight * cap.map_or(K1 + 1.0, saturation) };
                Level { token: steps[j].1.clone(), score, rows: steps[j].2 }
            })
            .collect();
        Ladder { word, levels }
    }

    /// The most the word adds to any row's score.
    fn top(&self) -> f64 {
        self.levels.last().map_or(0.0, |l| l.score)
    }
}

/// An FTS5 clause over level tokens.
#[derive(Debug, Clone, PartialEq)]
enum Clause {
    Token(String),
    And(Box<Clause>, Box<Clause>),
    Or(Vec<Clause>),
}

impl Clause {
    /// FTS5 syntax.
    fn render(&self) -> String {
        match self {
            Clause::Token(t) => quoted(t),
            Clause::And(a, b) => format!("{} AND {}", a.render_operand(), b.render_operand()),
            Clause::Or(cs) => cs.iter().map(Clause::render_operand).collect::<Vec<_>>().join(" OR "),
        }
    }

    fn render_operand(&self) -> String {
        match self {
            Clause::Token(_) => self.render(),
            _ => format!("({})", self.render()),
        }
    }

    /// Whether a row holding the tokens `holds` says yes is in the clause.
    #[cfg(test)]
    fn matches(&self, holds: &dyn Fn(&str) -> bool) -> bool {
        match self {
            Clause::Token(t) => holds(t),
            Clause::And(a, b) => a.matches(holds) && b.matches(holds),
            Clause::Or(cs) => cs.iter().any(|c| c.matches(holds)),
        }
    }
}

/// Rows given by a clause (`None`: every row), the tokens it names and an
/// upper bound of its rows.
#[derive(Debug, Clone, PartialEq)]
struct Cover {
    clause: Option<Clause>,
    tokens: usize,
    estimate: u64,
}

/// An exact cover needs more tokens than allowed.
#[derive(Debug)]
struct TooBig;

/// The rows whose levels of `ls` can add up to `target`, exactly (as far as
/// levels tell): `None` when none can. Level j of the first word with the
/// rows of the rest that can reach the remainder, for each j; a level whose
/// rest is the same as a lower one's adds nothing (its rows are in that
/// term already), and once the rest is every row the higher levels add
/// nothing either.
fn exact_cover(ls: &[Ladder], target: f64, all_rows: u64, budget: usize) -> Result<Option<Cover>, TooBig> {
    let every = Cover { clause: None, tokens: 0, estimate: all_rows };
    if target <= 0.0 {
        return Ok(Some(every));
    }
    if ls.iter().map(Ladder::top).sum::<f64>() < target {
        return Ok(None);
    }
    let Some((first, rest)) = ls.split_first() else { return Ok(None) };
    let mut terms: Vec<Clause> = Vec::new();
    let (mut tokens, mut estimate) = (0usize, 0u64);
    let mut previous: Option<Option<Clause>> = None;
    for level in &first.levels {
        let Some(r) = exact_cover(rest, target - level.score, all_rows, budget.saturating_sub(tokens))? else {
            continue;
        };
        if previous.as_ref() == Some(&r.clause) {
            continue;
        }
        previous = Some(r.clause.clone());
        let rest_is_every_row = r.clause.is_none();
        let own = level.token.clone().map(Clause::Token);
        let term = match (own, r.clause) {
            (None, None) => return Ok(Some(every)),
            (None, Some(c)) | (Some(c), None) => c,
            (Some(t), Some(c)) => Clause::And(Box::new(t), Box::new(c)),
        };
        tokens += r.tokens + usize::from(level.token.is_some());
        estimate = estimate.saturating_add(level.rows.min(r.estimate));
        if tokens > budget {
            return Err(TooBig);
        }
        terms.push(term);
        if rest_is_every_row {
            break; // the rest is every row: higher levels are inside this term
        }
    }
    let clause = match terms.len() {
        0 => return Ok(None),
        1 => terms.pop(),
        _ => Some(Clause::Or(terms)),
    };
    Ok(Some(Cover { clause, tokens, estimate }))
}

/// A looser cover with one threshold per word: a row outside it is at most
/// at level j − 1 of each word whose threshold is level j (any level of a
/// word left out), so its score is at most the sum of those levels' scores,
/// kept below `target`. Thresholds start at "left out" and are raised one
/// level at a time where that cuts the bound most per candidate row added.
/// `None` when no threshold makes the bound small enough (cannot happen
/// for a target some row reached: the word thresholds at level 1 give 0).
fn loose_cover(ls: &[Ladder], target: f64) -> Option<Cover> {
    // at[i]: word i's threshold level (0: left out); a row outside is at
    // most at level at[i] − 1, or its top level when left out.
    let mut at: Vec<usize> = vec![0; ls.len()];
    let cap = |l: &Ladder, a: usize| -> f64 { if a == 0 { l.top() } else { l.levels[a - 1].score } };
    let rows = |l: &Ladder, a: usize| -> u64 { if a == 0 { 0 } else { l.levels[a].rows } };
    loop {
        let bound: f64 = ls.iter().zip(&at).map(|(l, &a)| cap(l, a)).sum();
        if bound < target {
            break;
        }
        // Next threshold of a word: left out → its top level, then down.
        let next = |l: &Ladder, a: usize| -> Option<usize> {
            match a {
                0 => (l.levels.len() > 1).then_some(l.levels.len() - 1),
                1 => None,
                a => Some(a - 1),
            }
        };
        let best = ls
            .iter()
            .zip(&at)
            .enumerate()
            .filter_map(|(i, (l, &a))| {
                let n = next(l, a)?;
                let cut = cap(l, a) - cap(l, n);
                let added = rows(l, n).saturating_sub(rows(l, a)).max(1) as f64;
                Some((i, n, cut / added))
            })
            .max_by(|a, b| a.2.total_cmp(&b.2))?;
        at[best.0] = best.1;
    }
    let mut tokens = Vec::new();
    let mut estimate = 0u64;
    for (l, &a) in ls.iter().zip(&at) {
        if a > 0 {
            tokens.extend(l.levels[a].token.clone().map(Clause::Token));
            estimate = estimate.saturating_add(l.levels[a].rows);
        }
    }
    let n = tokens.len();
    let clause = if n == 1 { tokens.pop() } else { Some(Clause::Or(tokens)) };
    (n > 0).then_some(Cover { clause, tokens: n, estimate })
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

    /// Every level vector of three words (a row at level j of a word holds
    /// that level's token and the lower ones'): the exact cover holds the
    /// vectors whose level scores can reach the floor and no other; the
    /// loose cover holds at least those; a small budget gives `TooBig`.
    #[test]
    fn floor_covers_hold_every_row_that_can_reach_the_floor() {
        let mut tier_rows = HashMap::new();
        for (w, top, rows) in [("aa", 12, 400u64), ("bb", 5, 300), ("cc", 3, 900)] {
            for (k, t) in TIERS.iter().take_while(|t| **t <= top).enumerate() {
                tier_rows.insert((w.to_owned(), *t), rows >> k);
            }
        }
        let word_rows = HashMap::from([("aa".to_owned(), 1_000), ("bb".to_owned(), 2_000), ("cc".to_owned(), 6_000)]);
        let stats = Stats { rows: 10_000, word_rows, tier_rows };
        let ladders: Vec<Ladder> = ["aa", "bb", "cc"].into_iter().map(|w| Ladder::new(&stats, w, 1.0)).collect();
        assert_eq!(ladders[0].levels.len(), 2 + 8, "aa: none, aa, tiers 2 to 12");
        assert_eq!(stats.max_tf("aa"), Some(15));
        let best: f64 = ladders.iter().map(Ladder::top).sum();
        let mut vectors = Vec::new();
        for a in 0..ladders[0].levels.len() {
            for b in 0..ladders[1].levels.len() {
                for c in 0..ladders[2].levels.len() {
                    vectors.push([a, b, c]);
                }
            }
        }
        let mut exact_sizes = Vec::new();
        for share in [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.999_999, 1.01] {
            let target = best * share;
            let exact = exact_cover(&ladders, target, 10_000, 10_000).unwrap();
            let loose = loose_cover(&ladders, target);
            for v in &vectors {
                let reach = v.iter().zip(&ladders).map(|(&j, l)| l.levels[j].score).sum::<f64>() >= target;
                let holds = |token: &str| {
                    v.iter()
                        .zip(&ladders)
                        .any(|(&j, l)| l.levels[1..=j].iter().any(|x| x.token.as_deref() == Some(token)))
                };
                let in_exact = exact.as_ref().is_some_and(|c| c.clause.as_ref().is_none_or(|c| c.matches(&holds)));
                assert_eq!(in_exact, reach, "exact, {share} of the best, levels {v:?}");
                if reach {
                    let in_loose = loose.as_ref().is_some_and(|c| c.clause.as_ref().is_none_or(|c| c.matches(&holds)));
                    assert!(in_loose, "loose, {share} of the best, levels {v:?}");
                }
            }
            if let Some(c) = &exact {
                exact_sizes.push(c.tokens);
                if c.tokens > 1 {
                    assert!(matches!(exact_cover(&ladders, target, 10_000, c.tokens - 1), Err(TooBig)));
                }
                assert!(loose.is_some(), "a floor some row reaches has a loose cover");
            }
        }
        assert!(exact_sizes.iter().any(|n| *n > 3), "some floor needs a staircase: {exact_sizes:?}");
        assert_eq!(exact_cover(&ladders, best * 1.01, 10_000, 10_000).unwrap(), None);
        // Rendered as FTS5 syntax.
        let c = Clause::Or(vec![
            Clause::And(Box::new(Clause::Token("aa_4".into())), Box::new(Clause::Token("bb".into()))),
            Clause::Token("aa_8".into()),
        ]);
        assert_eq!(c.render(), r#"("aa_4" AND "bb") OR "aa_8""#);
    }
}
