//! Sentiment: VADER per turn (via `vader-parity`, which reproduces Python
//! `vaderSentiment` 3.3.2 score for score), then means per speaker and the
//! call's label.
//!
//! VADER was chosen over a model because it is offline, fast and
//! deterministic, and because its scores can be checked against the
//! reference implementation; the alternatives weighed are in the design notes (dependencies.md, "Sentiment").

use std::sync::OnceLock;

use vader_parity::SentimentIntensityAnalyzer;

use crate::{OverallSentiment, Role, Sentiment, SentimentLabel, SpeakerSentiment, Turn, TurnSentiment, round4};

/// VADER's recommended threshold for a non-neutral compound.
const THRESHOLD: f64 = 0.05;

/// The analyzer parses about 11,000 lexicon lines when built, so one is built
/// per process and shared; it holds only immutable tables.
fn vader() -> &'static SentimentIntensityAnalyzer {
    static VADER: OnceLock<SentimentIntensityAnalyzer> = OnceLock::new();
    VADER.get_or_init(SentimentIntensityAnalyzer::new)
}

/// VADER's four scores for one text.
pub(crate) fn polarity(text: &str) -> vader_parity::SentimentScores {
    vader().polarity_scores(text)
}

pub(crate) fn score(turns: &[Turn]) -> Sentiment {
    let per_turn: Vec<TurnSentiment> = turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let s = polarity(&t.message);
            TurnSentiment { turn: i, role: t.role, neg: s.neg, neu: s.neu, pos: s.pos, compound: s.compound }
        })
        .collect();
    let agent = speaker(&per_turn, Role::Agent);
    let user = speaker(&per_turn, Role::User);
    let compound = user.mean_compound.unwrap_or(0.0);
    Sentiment { turns: per_turn, agent, user, overall: OverallSentiment { compound, label: label(compound) } }
}

fn speaker(turns: &[TurnSentiment], role: Role) -> SpeakerSentiment {
    // Summed in turn order, so the mean is bit-for-bit reproducible.
    let (n, sum) = turns.iter().filter(|t| t.role == role).fold((0usize, 0.0f64), |(n, s), t| (n + 1, s + t.compound));
    SpeakerSentiment { turns: n, mean_compound: (n > 0).then(|| round4(sum / n as f64)) }
}

/// Buckets a compound score with VADER's standard thresholds.
pub(crate) fn label(compound: f64) -> SentimentLabel {
    if compound >= THRESHOLD {
        SentimentLabel::Positive
    } else if compound <= -THRESHOLD {
        SentimentLabel::Negative
    } else {
        SentimentLabel::Neutral
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sentences and compound scores from the vaderSentiment README
    /// (github.com/cjhutto/vaderSentiment, "Code Examples" output, package
    /// 3.3.2). Each line there prints the full dict; only the compound is
    /// compared here, to 4 decimals as published.
    const README_EXAMPLES: &[(&str, f64)] = &[
        ("VADER is smart, handsome, and funny.", 0.8316),
        ("VADER is not smart, handsome, nor funny.", -0.7424),
        ("The book was good.", 0.4404),
        ("The book was kind of good.", 0.3832),
        ("At least it isn't a horrible book.", 0.431),
        ("Today SUX!", -0.5461),
    ];

    #[test]
    fn compound_scores_equal_the_vader_readme() {
        for (text, expected) in README_EXAMPLES {
            let got = polarity(text).compound;
            assert_eq!(round4(got), *expected, "{text}");
        }
    }

    #[test]
    fn labels_use_the_005_thresholds() {
        assert_eq!(label(0.05), SentimentLabel::Positive);
        assert_eq!(label(0.0499), SentimentLabel::Neutral);
        assert_eq!(label(-0.0499), SentimentLabel::Neutral);
        assert_eq!(label(-0.05), SentimentLabel::Negative);
    }

    #[test]
    fn overall_is_the_mean_of_user_turns_only() {
        let turn = |role, m: &str| Turn { role, message: m.into(), time_in_call_secs: None };
        let turns = vec![
            turn(Role::Agent, "VADER is smart, handsome, and funny."),
            turn(Role::User, "The book was good."),
            turn(Role::User, "Today SUX!"),
        ];
        let s = score(&turns);
        assert_eq!(s.turns.len(), 3);
        assert_eq!(s.agent, SpeakerSentiment { turns: 1, mean_compound: Some(0.8316) });
        assert_eq!(s.user.turns, 2);
        // (0.4404 - 0.5461) / 2 = -0.05285 → -0.0529 (or -0.0528 by float rounding); negative either way.
        let mean = s.user.mean_compound.unwrap();
        assert!((mean - (-0.05285)).abs() < 0.0001, "{mean}");
        assert_eq!(s.overall.compound, mean);
        assert_eq!(s.overall.label, SentimentLabel::Negative);
    }

    #[test]
    fn a_call_where_the_user_said_nothing_is_neutral() {
        let s = score(&[Turn { role: Role::Agent, message: "Hello?".into(), time_in_call_secs: None }]);
        assert_eq!(s.user, SpeakerSentiment { turns: 0, mean_compound: None });
        assert_eq!(s.overall, OverallSentiment { compound: 0.0, label: SentimentLabel::Neutral });
    }
}
