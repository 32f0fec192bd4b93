//! Entity recognition without a model ("NER-lite"): regular expressions for
//! e-mails, amounts, dates/times and order references, the `phonenumber`
//! crate for phones, and Aho–Corasick over the caller-supplied gazetteers for
//! products and competitors.
//!
//! Every recogniser proposes spans; [`find`] then accepts them in a fixed
//! order of kinds ([`PRECEDENCE`]) and drops any span that overlaps one
//! already accepted. A fixed order keeps the result deterministic and
//! resolves the real conflicts in one place: `order #4155552671` is an order
//! reference, not a phone; `$1234567` is an amount, not a phone; the digits
//! of `jo.2024@example.com` belong to the e-mail.

use std::sync::OnceLock;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;

use crate::{Entity, EntityKind, Gazetteers, Span, Transcript};

/// E-mail addresses (pragmatic, not RFC 5322: what people dictate).
pub(crate) const EMAIL: &str = r"(?i)\b[a-z0-9][a-z0-9._%+-]*@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b";

/// Amounts: a currency symbol before the number, or a currency word after it.
pub(crate) const MONEY: &str = concat!(
    r"(?i)(?:[$€£]\s?\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?\b",
    r"|[$€£]\s?\d+(?:\.\d{1,2})?\b",
    r"|\b\d{1,3}(?:,\d{3})+(?:\.\d{1,2})?\s?(?:dollars?|bucks|euros?|pounds?|cents?|usd|eur|gbp)\b",
    r"|\b\d+(?:\.\d{1,2})?\s?(?:dollars?|bucks|euros?|pounds?|cents?|usd|eur|gbp)\b)"
);

/// Digit runs with phone separators; a candidate becomes a phone only if it
/// has 7–15 digits and `phonenumber` says it is valid.
pub(crate) const PHONE_CANDIDATE: &str = r"(?:\+\d|\(\d|\b\d)[\d .()\-]{5,}\d\b";

/// Order, ticket and reference numbers, recognised by the word before them.
/// The identifier needs a digit and at least 4 characters.
const ORDER_REF: &str = concat!(
    r"(?i)\b(?:order|ref(?:erence)?|ticket|case|confirmation|invoice|tracking|booking)\b",
    r"(?:\s+(?:number|no\.?|num|id))?(?:\s+is)?\s*[#:]?\s*#?\s*",
    r"(?P<id>[a-z]{0,4}-?\d[a-z0-9-]{2,19})\b"
);

const MONTH: &str = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)";
const TIME: &str = r"(?:\d{1,2}:\d{2}(?:\s?(?:[ap]\.m\.|[ap]m\b)|\b)|\d{1,2}\s?(?:[ap]\.m\.|[ap]m\b))";
const DAY: &str = r"(?:today|tonight|tomorrow|yesterday|(?:next\s+|this\s+)?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday))";

fn datetime_pattern() -> String {
    // Alternatives are tried leftmost-first, so the longer forms come first.
    let alternatives = [
        format!(r"\b{MONTH}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}}\b)?(?:\s+at\s+{TIME})?"),
        format!(r"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{MONTH}\b"),
        format!(r"\b\d{{1,2}}/\d{{1,2}}(?:/\d{{2,4}})?\b(?:\s+at\s+{TIME})?"),
        format!(r"\b{DAY}\b(?:\s+(?:at\s+)?{TIME}|\s+(?:morning|afternoon|evening|night)\b)?"),
        format!(r"\b{TIME}"),
    ];
    format!("(?i)(?:{})", alternatives.join(")|(?:"))
}

/// Order in which kinds claim text; see the module docs.
const PRECEDENCE: [EntityKind; 7] = [
    EntityKind::Email,
    EntityKind::OrderReference,
    EntityKind::Money,
    EntityKind::Phone,
    EntityKind::DateTime,
    EntityKind::Product,
    EntityKind::Competitor,
];

struct Patterns {
    email: Regex,
    money: Regex,
    phone: Regex,
    order: Regex,
    datetime: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        email: Regex::new(EMAIL).expect("email pattern"),
        money: Regex::new(MONEY).expect("money pattern"),
        phone: Regex::new(PHONE_CANDIDATE).expect("phone pattern"),
        order: Regex::new(ORDER_REF).expect("order pattern"),
        datetime: Regex::new(&datetime_pattern()).expect("datetime pattern"),
    })
}

/// A proposed entity: kind, byte range, canonical form.
type Candidate = (EntityKind, usize, usize, Option<String>);

/// Finds the entities of every turn, in turn order and then span order.
pub(crate) fn find(transcript: &Transcript, gazetteers: &Gazetteers) -> Vec<Entity> {
    let region = transcript.phone_region.as_deref().and_then(|r| r.trim().to_ascii_uppercase().parse().ok());
    let gazetteer = Gazetteer::new(gazetteers);
    let mut out = Vec::new();
    for (turn, t) in transcript.turns.iter().enumerate() {
        let text = t.message.as_str();
        let mut candidates = propose(text, region);
        candidates.extend(gazetteer.find(text));
        out.extend(resolve(candidates).into_iter().map(|(kind, start, end, normalized)| Entity {
            kind,
            turn,
            span: Span { start, end, char_start: text[..start].chars().count(), char_end: text[..end].chars().count() },
            text: text[start..end].to_string(),
            normalized,
        }));
    }
    out
}

/// Keeps candidates kind by kind in [`PRECEDENCE`] order, dropping any that
/// overlaps one already kept; returns them sorted by position.
fn resolve(mut candidates: Vec<Candidate>) -> Vec<Candidate> {
    let rank = |k: EntityKind| PRECEDENCE.iter().position(|p| *p == k).unwrap_or(usize::MAX);
    // Within a kind, earlier and then longer spans win.
    candidates.sort_by_key(|c| (rank(c.0), c.1, std::cmp::Reverse(c.2)));
    let mut kept: Vec<Candidate> = Vec::with_capacity(candidates.len());
    for c in candidates {
        if kept.iter().all(|k| c.2 <= k.1 || c.1 >= k.2) {
            kept.push(c);
        }
    }
    kept.sort_by_key(|c| (c.1, c.2));
    kept
}

fn propose(text: &str, region: Option<phonenumber::country::Id>) -> Vec<Candidate> {
    let p = patterns();
    let mut out = Vec::new();
    for m in p.email.find_iter(text) {
        out.push((EntityKind::Email, m.start(), m.end(), Some(m.as_str().to_lowercase())));
    }
    for c in p.order.captures_iter(text) {
        let id = c.name("id").expect("id group always takes part");
        out.push((EntityKind::OrderReference, id.start(), id.end(), Some(id.as_str().to_uppercase())));
    }
    for m in p.money.find_iter(text) {
        out.push((EntityKind::Money, m.start(), m.end(), money_normalized(m.as_str())));
    }
    for m in p.phone.find_iter(text) {
        if let Some(e164) = phone_e164(m.as_str(), region) {
            out.push((EntityKind::Phone, m.start(), m.end(), Some(e164)));
        }
    }
    for m in p.datetime.find_iter(text) {
        out.push((EntityKind::DateTime, m.start(), m.end(), None));
    }
    out
}

/// E.164 form of a candidate, if it is a valid number. Numbers written with
/// `+` are read without a region; others need one.
fn phone_e164(candidate: &str, region: Option<phonenumber::country::Id>) -> Option<String> {
    let digits = candidate.bytes().filter(u8::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return None;
    }
    let region = if candidate.starts_with('+') { None } else { Some(region?) };
    let number = phonenumber::parse(region, candidate).ok()?;
    phonenumber::is_valid(&number).then(|| number.format().mode(phonenumber::Mode::E164).to_string())
}

/// `"USD 1234.50"` from `$1,234.50`; `"EUR 20"` from `20 euros`; `"USD 0.50"`
/// from `50 cents`. A bare `$` is read as US dollars.
fn money_normalized(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let number: String = lower.chars().filter(|c| c.is_ascii_digit() || *c == '.').collect();
    let currency = if lower.contains('€') || lower.contains("eur") {
        "EUR"
    } else if lower.contains('£') || lower.contains("pound") || lower.contains("gbp") {
        "GBP"
    } else {
        "USD"
    };
    if lower.contains("cent") {
        let cents: f64 = number.parse().ok()?;
        return Some(format!("{currency} {:.2}", cents / 100.0));
    }
    Some(format!("{currency} {number}"))
}

/// Gazetteer names compiled into one automaton.
struct Gazetteer {
    automaton: Option<AhoCorasick>,
    /// Per pattern id: the kind and the name as the gazetteer spells it.
    names: Vec<(EntityKind, String)>,
}

impl Gazetteer {
    fn new(g: &Gazetteers) -> Self {
        let mut names: Vec<(EntityKind, String)> = Vec::new();
        let lists = [(EntityKind::Product, &g.products), (EntityKind::Competitor, &g.competitors)];
        for (kind, list) in lists {
            for name in list.iter().map(|n| n.trim()).filter(|n| !n.is_empty()) {
                if !names.iter().any(|(_, n)| n.eq_ignore_ascii_case(name)) {
                    names.push((kind, name.to_string()));
                }
            }
        }
        // Standard (overlapping) semantics, so a longer name that fails the
        // whole-word test does not hide a shorter one that passes.
        let automaton = (!names.is_empty()).then(|| {
            AhoCorasickBuilder::new()
                .ascii_case_insensitive(true)
                .match_kind(MatchKind::Standard)
                .build(names.iter().map(|(_, n)| n.as_str()))
                .expect("gazetteer automaton")
        });
        Gazetteer { automaton, names }
    }

    fn find(&self, text: &str) -> Vec<Candidate> {
        let Some(ac) = &self.automaton else { return Vec::new() };
        ac.find_overlapping_iter(text)
            .filter(|m| is_word_boundary(text, m.start(), m.end()))
            .map(|m| {
                let (kind, name) = &self.names[m.pattern().as_usize()];
                (*kind, m.start(), m.end(), Some(name.clone()))
            })
            .collect()
    }
}

/// True when `text[start..end]` is not glued to a letter or digit on either side.
fn is_word_boundary(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, Turn};

    fn entities_in(message: &str, gazetteers: &Gazetteers) -> Vec<Entity> {
        let transcript = Transcript {
            turns: vec![
                Turn { role: Role::Agent, message: "How can I help?".into(), time_in_call_secs: Some(0.0) },
                Turn { role: Role::User, message: message.into(), time_in_call_secs: Some(1.5) },
            ],
            phone_region: Some("US".into()),
        };
        find(&transcript, gazetteers)
    }

    /// Asserts exactly one entity of `kind`, in turn 1, spanning `text`.
    fn only(entities: &[Entity], kind: EntityKind, message: &str, text: &str) -> Entity {
        let of_kind: Vec<&Entity> = entities.iter().filter(|e| e.kind == kind).collect();
        assert_eq!(of_kind.len(), 1, "{kind:?} in {entities:#?}");
        let e = of_kind[0].clone();
        let start = message.find(text).expect("text in message");
        assert_eq!(e.turn, 1);
        assert_eq!((e.span.start, e.span.end), (start, start + text.len()), "{e:?}");
        assert_eq!(e.text, text);
        e
    }

    #[test]
    fn phone_numbers_are_found_with_their_span_and_e164() {
        let m = "Call me back at (415) 555-2671 please, or my office +44 20 7946 0018.";
        let found = entities_in(m, &Gazetteers::default());
        let phones: Vec<_> = found.iter().filter(|e| e.kind == EntityKind::Phone).collect();
        assert_eq!(phones.len(), 2, "{found:#?}");
        assert_eq!(phones[0].text, "(415) 555-2671");
        assert_eq!(phones[0].span.start, m.find("(415)").unwrap());
        assert_eq!(phones[0].normalized.as_deref(), Some("+14155552671"));
        assert_eq!(phones[1].text, "+44 20 7946 0018");
        assert_eq!(phones[1].normalized.as_deref(), Some("+442079460018"));
    }

    #[test]
    fn national_numbers_need_a_region() {
        let transcript = Transcript {
            turns: vec![Turn { role: Role::User, message: "it's 415 555 2671".into(), time_in_call_secs: None }],
            phone_region: None,
        };
        assert!(find(&transcript, &Gazetteers::default()).iter().all(|e| e.kind != EntityKind::Phone));
    }

    #[test]
    fn emails_are_found_and_lower_cased() {
        let m = "Send it to Jane.Doe+calls@Example.co.uk, thanks.";
        let e = only(&entities_in(m, &Gazetteers::default()), EntityKind::Email, m, "Jane.Doe+calls@Example.co.uk");
        assert_eq!(e.normalized.as_deref(), Some("jane.doe+calls@example.co.uk"));
    }

    #[test]
    fn money_in_symbols_and_words() {
        for (m, text, normalized) in [
            ("The bill was $1,234.50 last month.", "$1,234.50", "USD 1234.50"),
            ("They charged me €20 extra.", "€20", "EUR 20"),
            ("I paid 20 dollars for it.", "20 dollars", "USD 20"),
            ("Only 50 cents off?", "50 cents", "USD 0.50"),
            ("It was £9.99 a month.", "£9.99", "GBP 9.99"),
        ] {
            let e = only(&entities_in(m, &Gazetteers::default()), EntityKind::Money, m, text);
            assert_eq!(e.normalized.as_deref(), Some(normalized));
        }
    }

    #[test]
    fn dates_and_times_as_spoken() {
        for (m, text) in [
            ("Can you come on March 3 instead?", "March 3"),
            ("It was delivered 3/14 I think.", "3/14"),
            ("Call me tomorrow at 5pm.", "tomorrow at 5pm"),
            ("The meeting is at 10:30 sharp.", "10:30"),
            ("How about the 3rd of June?", "3rd of June"),
            ("Next Tuesday morning works.", "Next Tuesday morning"),
        ] {
            only(&entities_in(m, &Gazetteers::default()), EntityKind::DateTime, m, text);
        }
    }

    #[test]
    fn order_references_cover_the_identifier() {
        for (m, text, normalized) in [
            ("It's about order #A12345 from last week.", "A12345", "A12345"),
            ("My ref 99812 was closed.", "99812", "99812"),
            ("Ticket number is tk-2231.", "tk-2231", "TK-2231"),
        ] {
            let e = only(&entities_in(m, &Gazetteers::default()), EntityKind::OrderReference, m, text);
            assert_eq!(e.normalized.as_deref(), Some(normalized));
        }
    }

    #[test]
    fn an_order_number_that_looks_like_a_phone_is_an_order_number() {
        let m = "order #4155552671 please";
        let found = entities_in(m, &Gazetteers::default());
        only(&found, EntityKind::OrderReference, m, "4155552671");
        assert!(found.iter().all(|e| e.kind != EntityKind::Phone));
    }

    #[test]
    fn gazetteer_hits_are_whole_words_and_case_insensitive() {
        let g = Gazetteers {
            products: vec!["Pro Plan".into(), "Acme".into(), "  ".into()],
            competitors: vec!["Globex".into(), "acme".into()],
        };
        let m = "I use ACME and the pro plan, but Globex offered more. Acmeplus and Globexes don't count.";
        let found = entities_in(m, &g);
        let got: Vec<(EntityKind, &str, Option<&str>)> =
            found.iter().map(|e| (e.kind, e.text.as_str(), e.normalized.as_deref())).collect();
        assert_eq!(
            got,
            [
                (EntityKind::Product, "ACME", Some("Acme")),
                (EntityKind::Product, "pro plan", Some("Pro Plan")),
                (EntityKind::Competitor, "Globex", Some("Globex")),
            ]
        );
        assert_eq!(found[1].span.start, m.find("pro plan").unwrap());
    }

    #[test]
    fn spans_count_bytes_and_chars() {
        let m = "Café au lait coûte €20.";
        let e = only(&entities_in(m, &Gazetteers::default()), EntityKind::Money, m, "€20");
        assert_eq!((e.span.char_start, e.span.char_end), (19, 22));
        assert_eq!(&m[e.span.start..e.span.end], "€20");
    }
}
