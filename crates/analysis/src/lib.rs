#![doc = include_str!("../README.md")]
//!
//! # Layout
//!
//! - `lib.rs`: the input and output types and [`analyze`], which runs the
//!   three passes below over one transcript.
//! - `sentiment.rs`: VADER scores per turn, means per speaker, the label.
//! - `redact.rs`: [`pii_redacted`], shared by keywords and (later) search
//!   snippets, so what a snippet hides and what keywords ignore cannot drift.
//! - `keywords.rs`: YAKE over the caller's turns after redaction.
//! - `entities.rs`: patterns, phone parsing and gazetteer matching, with one
//!   overlap rule so a span is claimed by at most one entity.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod entities;
mod keywords;
mod redact;
mod sentiment;

use serde::{Deserialize, Serialize};

pub use redact::pii_redacted;

/// Version of the analysis rules. Bump it whenever the same input could give
/// a different [`Analysis`] (a new pattern, a changed stop-word list, another
/// crate version, another rounding). It is stored beside every result so that
/// results made by an older analyser can be found and computed again.
pub const ANALYZER_VERSION: u32 = 1;

/// How many keyphrases [`Analysis::keywords`] holds at most.
pub const KEYWORD_LIMIT: usize = 10;

/// Who spoke a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The voice agent (our side of the call).
    Agent,
    /// The person called (the contact).
    User,
}

/// One utterance in a transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    /// Who said it.
    pub role: Role,
    /// What was said, as transcribed. Entity spans index into this string.
    pub message: String,
    /// Seconds from the start of the call, when the provider reports it.
    /// Not used by the analysis itself; kept so a result can point into the
    /// recording.
    pub time_in_call_secs: Option<f64>,
}

/// A call transcript: its turns in spoken order, and where to read national
/// phone numbers from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Transcript {
    /// The turns, in order; entity and sentiment results refer to them by index.
    pub turns: Vec<Turn>,
    /// ISO 3166-1 alpha-2 region (for example `"US"`, `"GB"`) in which a
    /// phone number spoken without `+` and country code is read, usually the
    /// region of the number that was called. `None`, or a code the
    /// `phonenumber` crate does not know, means only numbers spoken in
    /// international form (`+44 20 …`) are recognised.
    pub phone_region: Option<String>,
}

/// Names to look for in a call, supplied per campaign or per agent.
///
/// Matching is ASCII case-insensitive and whole-word: `"Acme"` matches
/// `"ACME."` but not `"Acmeplus"`. Entries are trimmed and empty ones are
/// ignored. When a name is in both lists the product reading wins.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gazetteers {
    /// Our products, plans and offers.
    pub products: Vec<String>,
    /// Competitors' names and products.
    pub competitors: Vec<String>,
}

/// Everything the analyser says about one transcript.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    /// [`ANALYZER_VERSION`] at the time this was computed.
    pub analyzer_version: u32,
    /// VADER sentiment per turn, per speaker and overall.
    pub sentiment: Sentiment,
    /// Up to [`KEYWORD_LIMIT`] keyphrases from the caller's words, most
    /// relevant first.
    pub keywords: Vec<Keyword>,
    /// Entities in turn order, then span order; spans never overlap.
    pub entities: Vec<Entity>,
}

/// Sentiment of a call at three levels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sentiment {
    /// One entry per turn, in turn order.
    pub turns: Vec<TurnSentiment>,
    /// The agent's turns taken together.
    pub agent: SpeakerSentiment,
    /// The caller's turns taken together.
    pub user: SpeakerSentiment,
    /// The call as a whole, judged from the caller's turns only: the agent
    /// is scripted to sound pleasant, so its words say little about how the
    /// call went.
    pub overall: OverallSentiment,
}

/// VADER's four scores for one turn, exactly as `vaderSentiment` 3.3.2
/// reports them (proportions to 3 decimals, compound to 4).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct TurnSentiment {
    /// Index of the turn in [`Transcript::turns`].
    pub turn: usize,
    /// Who spoke the turn.
    pub role: Role,
    /// Share of negative tokens, in [0, 1].
    pub neg: f64,
    /// Share of neutral tokens, in [0, 1].
    pub neu: f64,
    /// Share of positive tokens, in [0, 1].
    pub pos: f64,
    /// Normalised composite in [-1, 1]; the number to read.
    pub compound: f64,
}

/// One speaker's sentiment over the call.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct SpeakerSentiment {
    /// How many turns the speaker had (empty turns included).
    pub turns: usize,
    /// Mean compound over those turns, rounded to 4 decimals; `None` when the
    /// speaker had no turns.
    pub mean_compound: Option<f64>,
}

/// The call's sentiment as one number and one label.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverallSentiment {
    /// Mean compound of the caller's turns (4 decimals); 0 when the caller
    /// said nothing.
    pub compound: f64,
    /// [`compound`](Self::compound) bucketed with VADER's standard ±0.05 thresholds.
    pub label: SentimentLabel,
}

/// A compound score bucketed as the VADER authors recommend: `>= 0.05` is
/// positive, `<= -0.05` is negative, anything between is neutral.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    /// Compound at or above 0.05.
    Positive,
    /// Compound strictly between -0.05 and 0.05.
    Neutral,
    /// Compound at or below -0.05.
    Negative,
}

/// A keyphrase from the caller's words.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Keyword {
    /// The phrase (one to three words) as YAKE surfaced it.
    pub phrase: String,
    /// Relevance in (0, 1], higher is more relevant, rounded to 4 decimals.
    /// This is `keyword_extraction`'s normalised inverse of the YAKE score
    /// (the best phrase of a call scores 1), so scores compare phrases
    /// within one call, not across calls.
    pub score: f64,
}

/// Something recognised in a turn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entity {
    /// What it is.
    pub kind: EntityKind,
    /// Index of the turn in [`Transcript::turns`].
    pub turn: usize,
    /// Where it is in that turn's message.
    pub span: Span,
    /// The matched text, `&message[span.start..span.end]`.
    pub text: String,
    /// A canonical form, where one exists: E.164 for phones, the lower-cased
    /// address for e-mails, `"USD 1234.50"` for amounts, the upper-cased
    /// identifier for order references, the gazetteer's own spelling for
    /// products and competitors. `None` for dates and times, which are kept
    /// as spoken because the analysis knows no calendar.
    pub normalized: Option<String>,
}

/// A span of a message, in two units: UTF-8 bytes for Rust slicing and
/// Unicode scalar values (`char`s) for display.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Byte offset of the first byte.
    pub start: usize,
    /// Byte offset one past the last byte.
    pub end: usize,
    /// Offset of the first `char`.
    pub char_start: usize,
    /// Offset one past the last `char`.
    pub char_end: usize,
}

/// The kinds of [`Entity`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntityKind {
    /// A phone number valid for its region (parsed by `phonenumber`).
    Phone,
    /// An e-mail address.
    Email,
    /// An amount of money: `$1,234.50`, `€20`, `20 dollars`, `50 cents`.
    Money,
    /// A date or time as spoken: `March 3`, `3/14`, `tomorrow at 5pm`, `10:30`.
    DateTime,
    /// An order, ticket or reference number introduced by its keyword:
    /// `order #A12345`, `ref 99812`. The span covers the identifier only.
    OrderReference,
    /// A name from [`Gazetteers::products`].
    Product,
    /// A name from [`Gazetteers::competitors`].
    Competitor,
}

/// Analyses one transcript. Pure and deterministic: no I/O, no clock, no
/// randomness; the same input and [`ANALYZER_VERSION`] give the same output.
pub fn analyze(transcript: &Transcript, gazetteers: &Gazetteers) -> Analysis {
    Analysis {
        analyzer_version: ANALYZER_VERSION,
        sentiment: sentiment::score(&transcript.turns),
        keywords: keywords::extract(&transcript.turns, KEYWORD_LIMIT),
        entities: entities::find(transcript, gazetteers),
    }
}

/// Rounds to 4 decimals, the precision VADER publishes its compound at.
fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(role: Role, message: &str, t: f64) -> Turn {
        Turn { role, message: message.into(), time_in_call_secs: Some(t) }
    }

    #[test]
    fn a_300_turn_transcript_analyses_fine() {
        let agent =
            ["Thanks for calling, how can I help?", "I can check that order for you.", "Is there anything else?"];
        let user = [
            "My order #A12345 never arrived and I'm really frustrated.",
            "You can reach me at 415-555-2671 or jane@example.com.",
            "I paid $49.99 on March 3, can I get a refund tomorrow at 5pm?",
            "Globex would have shipped it already, honestly.",
            "Great, thank you so much, that's helpful!",
        ];
        let turns: Vec<Turn> = (0..300)
            .map(|i| {
                let t = i as f64 * 4.0;
                if i % 2 == 0 {
                    turn(Role::Agent, agent[i / 2 % agent.len()], t)
                } else {
                    turn(Role::User, user[i / 2 % user.len()], t)
                }
            })
            .collect();
        let transcript = Transcript { turns, phone_region: Some("US".into()) };
        let gazetteers = Gazetteers { products: vec!["Express Shipping".into()], competitors: vec!["Globex".into()] };

        let started = std::time::Instant::now();
        let analysis = analyze(&transcript, &gazetteers);
        let elapsed = started.elapsed();

        assert_eq!(analysis.analyzer_version, ANALYZER_VERSION);
        assert_eq!(analysis.sentiment.turns.len(), 300);
        assert_eq!((analysis.sentiment.agent.turns, analysis.sentiment.user.turns), (150, 150));
        assert!(!analysis.keywords.is_empty() && analysis.keywords.len() <= KEYWORD_LIMIT);
        for kind in [
            EntityKind::Phone,
            EntityKind::Email,
            EntityKind::Money,
            EntityKind::DateTime,
            EntityKind::OrderReference,
            EntityKind::Competitor,
        ] {
            assert!(analysis.entities.iter().any(|e| e.kind == kind), "{kind:?}");
        }
        assert!(analysis.entities.windows(2).all(|w| (w[0].turn, w[0].span.start) < (w[1].turn, w[1].span.start)));
        // Generous bound (debug build, shared 2-core machine); a regression to
        // quadratic work would blow through it.
        assert!(elapsed < std::time::Duration::from_secs(20), "{elapsed:?}");
        // Deterministic: same input, same output.
        assert_eq!(analyze(&transcript, &gazetteers), analysis);
    }

    #[test]
    fn an_analysis_round_trips_through_json() {
        let transcript = Transcript {
            turns: vec![
                turn(Role::Agent, "Hello, this is Switchboard.", 0.0),
                turn(Role::User, "Call me on +1 415 555 2671 about order #A12345, it was awful.", 2.0),
            ],
            phone_region: None,
        };
        let analysis = analyze(&transcript, &Gazetteers::default());
        let json = serde_json::to_string(&analysis).unwrap();
        assert!(json.contains(r#""kind":"order_reference""#), "{json}");
        assert!(json.contains(r#""label":"negative""#), "{json}");
        let back: Analysis = serde_json::from_str(&json).unwrap();
        assert_eq!(back, analysis);
        let t: Transcript = serde_json::from_str(&serde_json::to_string(&transcript).unwrap()).unwrap();
        assert_eq!(t, transcript);
    }
}
