//! Recordings and transcripts (Phase 3): the contract both backends implement.
//!
//! - A recording is unique per (provider, provider_id); `upsert_recording`
//!   merges a newer report into the stored one ([`Recording::merge`]: status
//!   only moves forward, fields are filled, never blanked), so replays and
//!   out-of-order callbacks are harmless.
//! - A transcript is unique per `conversation_id`; `upsert_transcript`
//!   replaces the stored one unless the stored one is final and the new one
//!   is not (a late "processing" never overwrites "done"). It keeps the stored
//!   analysis when the new one has none.
//! - Search: [`TranscriptQuery`] full text over turn messages and summaries
//!   with filters; which documents match is the same on every backend
//!   (ranking may differ).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use switchboard_domain::recording::RecordingProvider;
use switchboard_domain::{CallId, CampaignId, ContactId, Recording, RecordingId, Transcript, TranscriptId};

use crate::{Page, PageRequest, StoreResult};

/// Filters of a transcript search or list.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TranscriptFilter {
    /// Campaign.
    pub campaign_id: Option<CampaignId>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Contact.
    pub contact_id: Option<ContactId>,
    /// Started at or after.
    pub started_after: Option<DateTime<Utc>>,
    /// Started before.
    pub started_before: Option<DateTime<Utc>>,
    /// ElevenLabs' verdict.
    pub call_successful: Option<String>,
    /// Overall sentiment at least.
    pub sentiment_min: Option<f64>,
    /// Overall sentiment at most.
    pub sentiment_max: Option<f64>,
    /// A criterion with this id had this result: (id, result).
    pub criterion: Option<(String, String)>,
}

/// A parsed full-text query: every group must match (AND); a group matches
/// when any of its terms does (OR); `not` terms must not match. A term is a
/// word, a `prefix*`, or a "quoted phrase".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextQuery {
    /// AND of ORs.
    pub all: Vec<Vec<Term>>,
    /// None of these.
    pub not: Vec<Term>,
}

/// One search term.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// A word (case-insensitive).
    Word(String),
    /// Words starting with this.
    Prefix(String),
    /// Consecutive words.
    Phrase(Vec<String>),
}

/// How to order search hits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchOrder {
    /// Best match first (BM25 on SQLite, `textScore` on MongoDB).
    #[default]
    Relevance,
    /// Newest first.
    Newest,
}

/// One hit.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    /// The transcript (turns included).
    pub transcript: Transcript,
    /// Relevance (higher is better; backend-specific scale).
    pub score: f64,
    /// Index of the best matching turn (`None`: the summary matched).
    pub turn: Option<usize>,
}

/// Recordings and transcripts.
#[async_trait]
pub trait TranscriptStore: Send + Sync {
    /// Inserts or merges a recording (by provider and provider id); returns the stored one.
    async fn upsert_recording(&self, r: &Recording) -> StoreResult<Recording>;
    /// A recording by id.
    async fn get_recording(&self, id: &RecordingId) -> StoreResult<Option<Recording>>;
    /// A recording by provider key.
    async fn find_recording(&self, provider: RecordingProvider, provider_id: &str) -> StoreResult<Option<Recording>>;
    /// The recordings of a call, oldest first.
    async fn recordings_of_call(&self, call: &CallId) -> StoreResult<Vec<Recording>>;
    /// Up to `limit` recordings with status `completed` created before
    /// `before`, oldest first (by `created_at`, then id): what retention
    /// deletes next. Marking one deleted (`upsert_recording` with status
    /// `deleted`) takes it out of this list.
    async fn recordings_to_expire(&self, before: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Recording>>;
    /// Inserts or replaces a transcript (by conversation id, rules above); returns the stored one.
    async fn upsert_transcript(&self, t: &Transcript) -> StoreResult<Transcript>;
    /// A transcript by id.
    async fn get_transcript(&self, id: &TranscriptId) -> StoreResult<Option<Transcript>>;
    /// A transcript by conversation.
    async fn find_transcript(&self, conversation_id: &str) -> StoreResult<Option<Transcript>>;
    /// The transcript of a call.
    async fn transcript_of_call(&self, call: &CallId) -> StoreResult<Option<Transcript>>;
    /// Transcripts matching `filter`, newest first.
    async fn list_transcripts(&self, filter: &TranscriptFilter, page: &PageRequest) -> StoreResult<Page<Transcript>>;
    /// Full-text search with filters.
    async fn search_transcripts(
        &self,
        q: &TextQuery,
        filter: &TranscriptFilter,
        order: SearchOrder,
        page: &PageRequest,
    ) -> StoreResult<Page<SearchHit>>;
}

/// Longest query accepted (characters).
pub const MAX_QUERY_CHARS: usize = 500;
/// Most terms in one query.
pub const MAX_TERMS: usize = 32;

impl TextQuery {
    /// Parses what people type: words are ANDed; `OR` (or `|`) between two
    /// terms makes them alternatives; `-word`, `-"a phrase"` or `NOT word`
    /// excludes; `"quoted words"` is a phrase; `refund*` is a prefix. Words
    /// are lower-cased and split on anything that is not a letter or digit
    /// (so `e-mail` is the phrase "e mail"). A query with nothing to match,
    /// an unclosed quote, a dangling `OR`/`NOT`, a lone `*`, or only negated
    /// terms is an error naming the problem.
    pub fn parse(input: &str) -> Result<TextQuery, String> {
        if input.chars().count() > MAX_QUERY_CHARS {
            return Err(format!("the query is longer than {MAX_QUERY_CHARS} characters"));
        }
        // Tokens: (negated, term) or the OR operator.
        #[derive(Debug)]
        enum Tok {
            Or,
            Not,
            Term(bool, Term),
        }
        let mut toks = Vec::new();
        let mut chars = input.chars().peekable();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                chars.next();
                continue;
            }
            let negated = c == '-';
            if negated {
                chars.next();
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                let mut phrase = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == '"' {
                        closed = true;
                        break;
                    }
                    phrase.push(c);
                }
                if !closed {
                    return Err("unclosed quote: a phrase needs a closing \"".into());
                }
                let words = words(&phrase);
                match words.len() {
                    0 => return Err("an empty phrase \"\" matches nothing".into()),
                    1 => toks.push(Tok::Term(negated, Term::Word(words[0].clone()))),
                    _ => toks.push(Tok::Term(negated, Term::Phrase(words))),
                }
                continue;
            }
            if c == '|' {
                chars.next();
                toks.push(Tok::Or);
                continue;
            }
            let mut raw = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' || c == '|' {
                    break;
                }
                raw.push(c);
                chars.next();
            }
            if !negated && raw == "OR" {
                toks.push(Tok::Or);
                continue;
            }
            if !negated && raw == "NOT" {
                toks.push(Tok::Not);
                continue;
            }
            if !negated && raw == "AND" {
                continue;
            }
            let prefix = raw.ends_with('*');
            let ws = words(raw.trim_end_matches('*'));
            let term = match (ws.len(), prefix) {
                (0, true) => return Err(format!("`{raw}`: a prefix needs at least one letter or digit before *")),
                (0, false) => continue,
                (1, true) => Term::Prefix(ws[0].clone()),
                (1, false) => Term::Word(ws[0].clone()),
                (_, _) => Term::Phrase(ws),
            };
            toks.push(Tok::Term(negated, term));
        }
        let mut q = TextQuery::default();
        let mut pending_or = false;
        let mut pending_not = false;
        let mut count = 0;
        for t in toks {
            match t {
                Tok::Or => {
                    if q.all.is_empty() || pending_or || pending_not {
                        return Err("OR needs a term on each side".into());
                    }
                    pending_or = true;
                }
                Tok::Not => {
                    if pending_not {
                        return Err("NOT NOT: say it once".into());
                    }
                    pending_not = true;
                }
                Tok::Term(negated, term) => {
                    count += 1;
                    if count > MAX_TERMS {
                        return Err(format!("more than {MAX_TERMS} terms"));
                    }
                    if negated || pending_not {
                        if pending_or {
                            return Err("OR cannot join a negated term".into());
                        }
                        q.not.push(term);
                        pending_not = false;
                    } else if pending_or {
                        q.all.last_mut().expect("checked above").push(term);
                        pending_or = false;
                    } else {
                        q.all.push(vec![term]);
                    }
                }
            }
        }
        if pending_or {
            return Err("OR at the end needs a term after it".into());
        }
        if pending_not {
            return Err("NOT at the end needs a term after it".into());
        }
        if q.all.is_empty() {
            return Err(if !q.not.is_empty() {
                "a query of only excluded terms matches nothing to rank; add a term to look for".into()
            } else {
                "the query has no words to look for".into()
            });
        }
        Ok(q)
    }

    /// Whether `text` matches: the reference semantics every backend's match set must equal.
    pub fn matches_text(&self, text: &str) -> bool {
        let ws = words(text);
        let hit = |t: &Term| match t {
            Term::Word(w) => ws.iter().any(|x| x == w),
            Term::Prefix(p) => ws.iter().any(|x| x.starts_with(p.as_str())),
            Term::Phrase(p) => ws.windows(p.len()).any(|win| win == p.as_slice()),
        };
        self.all.iter().all(|group| group.iter().any(hit)) && !self.not.iter().any(hit)
    }

    /// Whether one term hits `text` (a turn message or the summary).
    pub fn term_hits(term: &Term, text: &str) -> bool {
        TextQuery { all: vec![vec![term.clone()]], not: vec![] }.matches_text(text)
    }

    /// The best-matching text of a hit: the turn hit by the most positive
    /// terms (the first on ties), else the summary (`None`); and that number
    /// of terms. Every backend names `SearchHit::turn` this way.
    pub fn best_turn(&self, t: &Transcript) -> (Option<usize>, usize) {
        let count = |text: &str| self.all.iter().flatten().filter(|term| Self::term_hits(term, text)).count();
        let summary = t.summary.as_deref().map(count).unwrap_or(0);
        let mut best_turn: Option<(usize, usize)> = None;
        for (i, turn) in t.turns.iter().enumerate() {
            let n = count(&turn.message);
            if n > 0 && best_turn.is_none_or(|(_, m)| n > m) {
                best_turn = Some((i, n));
            }
        }
        match best_turn {
            Some((i, n)) => (Some(i), n.max(summary)),
            None => (None, summary),
        }
    }
}

/// Lower-cased words: runs of letters and digits.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(|w| w.to_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Term {
        Term::Word(s.into())
    }

    #[test]
    fn queries_parse_as_people_type_them() {
        let q = TextQuery::parse(r#"refund OR return "credit card" cancel* -angry NOT manager"#).unwrap();
        assert_eq!(q.all.len(), 3);
        assert_eq!(q.all[0], vec![w("refund"), w("return")]);
        assert_eq!(q.all[1], vec![Term::Phrase(vec!["credit".into(), "card".into()])]);
        assert_eq!(q.all[2], vec![Term::Prefix("cancel".into())]);
        assert_eq!(q.not, vec![w("angry"), w("manager")]);
        assert_eq!(
            TextQuery::parse("Refund | e-mail").unwrap().all[0],
            vec![w("refund"), Term::Phrase(vec!["e".into(), "mail".into()])]
        );
    }

    #[test]
    fn bad_syntax_is_an_error_naming_the_problem() {
        for (q, needle) in [
            ("\"credit card", "unclosed quote"),
            ("OR refund", "OR needs"),
            ("refund OR", "OR at the end"),
            ("-angry", "only excluded"),
            ("*", "prefix needs"),
            ("  ", "no words"),
            ("refund NOT", "NOT at the end"),
            ("\"\"", "empty phrase"),
        ] {
            let e = TextQuery::parse(q).unwrap_err();
            assert!(e.contains(needle), "{q}: {e}");
        }
        assert!(TextQuery::parse(&"a ".repeat(40)).unwrap_err().contains("terms"));
        // FTS or $text syntax is just text here.
        assert!(TextQuery::parse("NEAR(a b) col:x ^y").is_ok());
    }

    #[test]
    fn the_reference_predicate_is_what_it_says() {
        let q = TextQuery::parse(r#"refund OR return "credit card" -angry"#).unwrap();
        assert!(q.matches_text("I want a Refund on my credit card."));
        assert!(!q.matches_text("I want a refund on my card, credit is fine"));
        assert!(!q.matches_text("angry: refund my credit card"));
        assert!(TextQuery::parse("cancel*").unwrap().matches_text("Cancellation please"));
    }
}
