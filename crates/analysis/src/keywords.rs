//! Keyphrases from the caller's words, by YAKE (`keyword_extraction`).
//!
//! Only user turns are mined: the agent's script would otherwise supply the
//! same phrases to every call of a campaign. PII is removed first with the
//! shared redactor, and then every token that still holds a digit (times,
//! dates, order identifiers): the design notes found that extractors happily
//! rank phone digits as keywords.
//!
//! `keyword_extraction` keeps its scores in a `HashMap` and sums one of its
//! statistics in the map's (random) iteration order, so the last bits of a
//! score can differ between runs. To stay deterministic this module rounds
//! scores to 4 decimals, sorts by (score, phrase) itself, and does its own
//! de-duplication instead of the crate's order-dependent one.

use std::sync::OnceLock;

use keyword_extraction::yake::{Yake, YakeParams};
use regex::Regex;

use crate::{Keyword, Role, Turn, redact, round4};

/// Words that fill speech but carry no topic; YAKE's stop-word list is
/// written for prose and lacks them.
const FILLERS: &[&str] = &[
    "yeah",
    "yep",
    "yes",
    "no",
    "nope",
    "okay",
    "ok",
    "um",
    "uh",
    "umm",
    "hmm",
    "mhm",
    "uh-huh",
    "oh",
    "ah",
    "like",
    "just",
    "really",
    "actually",
    "honestly",
    "basically",
    "gonna",
    "wanna",
    "gotta",
    "kinda",
    "sorta",
    "hi",
    "hello",
    "hey",
    "bye",
    "goodbye",
    "thanks",
    "thank",
    "please",
    "sure",
    "right",
    "well",
    "know",
    "mean",
    "guess",
    "think",
    "got",
    "get",
    "one",
    "thing",
    "stuff",
    "lot",
    "bit",
    "i'm",
    "it's",
    "don't",
    "that's",
    "can't",
    "i've",
    "i'll",
    "you're",
    "didn't",
    "doesn't",
    "won't",
    "isn't",
    "wasn't",
];

fn stop_words() -> &'static [String] {
    static WORDS: OnceLock<Vec<String>> = OnceLock::new();
    WORDS.get_or_init(|| {
        let mut words: Vec<String> = stop_words::get("en").iter().chain(FILLERS).map(|w| w.to_string()).collect();
        words.sort();
        words.dedup();
        words
    })
}

/// A token holding a digit, with whatever joins it to more digits.
fn digit_token() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"[\w#$€£]*\d\w*(?:[/:.,\-]\d\w*)*").expect("digit token pattern"))
}

/// The text YAKE sees: each user turn redacted, digits removed, and ended
/// with a full stop when it has no sentence end of its own, so turns do not
/// run into one sentence.
pub(crate) fn mining_text(turns: &[Turn]) -> String {
    let mut text = String::new();
    for t in turns.iter().filter(|t| t.role == Role::User) {
        let cleaned = redact::redact(&t.message, &|_| " ".to_string());
        let cleaned = digit_token().replace_all(&cleaned, " ");
        let cleaned = cleaned.trim();
        if cleaned.is_empty() {
            continue;
        }
        text.push_str(cleaned);
        if !cleaned.ends_with(['.', '!', '?']) {
            text.push('.');
        }
        text.push(' ');
    }
    text
}

pub(crate) fn extract(turns: &[Turn], limit: usize) -> Vec<Keyword> {
    let text = mining_text(turns);
    if text.trim().is_empty() || limit == 0 {
        return Vec::new();
    }
    let yake = Yake::new(YakeParams::WithDefaults(&text, stop_words()));
    let mut ranked: Vec<Keyword> = yake
        .get_keyword_scores_map()
        .iter()
        .filter(|(phrase, _)| phrase.chars().any(char::is_alphabetic))
        .map(|(phrase, score)| Keyword { phrase: phrase.clone(), score: round4(f64::from(*score)) })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.phrase.cmp(&b.phrase)));
    let mut out: Vec<Keyword> = Vec::with_capacity(limit);
    for k in ranked {
        if out.len() == limit {
            break;
        }
        if !out.iter().any(|o| overlaps(&o.phrase, &k.phrase)) {
            out.push(k);
        }
    }
    out
}

/// True when one phrase is the other or contains it as whole words
/// (`"refund"` and `"refund request"`): the better-ranked one stands for both.
fn overlaps(a: &str, b: &str) -> bool {
    let words = |s: &str| s.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>();
    let (a, b) = (words(a), words(b));
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    !short.is_empty() && long.windows(short.len()).any(|w| w == short.as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(m: &str) -> Turn {
        Turn { role: Role::User, message: m.into(), time_in_call_secs: None }
    }

    #[test]
    fn mining_text_has_no_digits_phones_or_emails() {
        let turns = [
            user("My number is +1 415 555 2671 and my email is jane.doe@example.com"),
            user("Order A12345 cost $1,234.50 on 3/14 at 10:30"),
            Turn { role: Role::Agent, message: "Agent words stay out".into(), time_in_call_secs: None },
        ];
        let text = mining_text(&turns);
        assert!(!text.chars().any(|c| c.is_ascii_digit()), "{text}");
        assert!(!text.contains('@') && !text.contains("example"), "{text}");
        assert!(!text.contains("Agent"), "{text}");
    }

    #[test]
    fn keywords_ignore_phone_digits_and_emails() {
        let turns = [
            user("Hi, I ordered a replacement charger two weeks ago and it never arrived."),
            user("You can call me back on 415 555 2671 or +44 20 7946 0018, or email jane.doe@example.com."),
            user("The replacement charger was supposed to arrive last Monday. I want a refund for the charger."),
            user("Honestly I'm frustrated, this is the second time the delivery failed."),
            user("Reference 99812, amount was 49 dollars."),
        ];
        let keywords = extract(&turns, 10);
        assert!(!keywords.is_empty());
        for k in &keywords {
            assert!(!k.phrase.chars().any(|c| c.is_ascii_digit()), "digit in {k:?}");
            assert!(!k.phrase.contains('@') && !k.phrase.to_lowercase().contains("example"), "email in {k:?}");
            assert!(k.score > 0.0 && k.score <= 1.0, "{k:?}");
        }
        let phrases: Vec<&str> = keywords.iter().map(|k| k.phrase.as_str()).collect();
        assert!(phrases.iter().any(|p| p.to_lowercase().contains("charger")), "{phrases:?}");
        // Same input, same output.
        assert_eq!(extract(&turns, 10), keywords);
    }

    #[test]
    fn no_user_words_no_keywords() {
        assert!(extract(&[user("415 555 2671")], 10).is_empty());
        assert!(extract(&[], 10).is_empty());
    }

    #[test]
    fn sub_phrases_are_folded_into_the_better_ranked_phrase() {
        assert!(overlaps("refund", "refund request"));
        assert!(overlaps("late refund request", "refund request"));
        assert!(!overlaps("refund", "refunds"));
    }
}
