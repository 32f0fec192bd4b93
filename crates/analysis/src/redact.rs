//! PII redaction: one set of patterns for everything that shows or mines a
//! caller's words. Keywords use it so that phone digits and addresses never
//! become "keyphrases"; search snippets will use it so a snippet never shows
//! them.
//!
//! It is deliberately broader than entity recognition: a redactor that misses
//! a number leaks it, while one that hides a harmless number costs little.
//! So phones here are any 7–15 digit run with the usual separators, valid
//! or not, and any other run of 4 or more digits (card endings, account and
//! order numbers, years) is hidden too. Names are not redacted: nothing here
//! recognises a person's name.

use std::sync::OnceLock;

use regex::{Captures, Regex};

/// Placeholders written in place of what was removed.
const EMAIL: &str = "[email]";
const AMOUNT: &str = "[amount]";
const PHONE: &str = "[phone]";
const NUMBER: &str = "[number]";

struct Patterns {
    email: Regex,
    money: Regex,
    phone: Regex,
    digits: Regex,
}

fn patterns() -> &'static Patterns {
    static P: OnceLock<Patterns> = OnceLock::new();
    P.get_or_init(|| Patterns {
        email: Regex::new(crate::entities::EMAIL).expect("email pattern"),
        money: Regex::new(crate::entities::MONEY).expect("money pattern"),
        phone: Regex::new(crate::entities::PHONE_CANDIDATE).expect("phone pattern"),
        digits: Regex::new(r"\d{4,}").expect("digits pattern"),
    })
}

/// Returns `text` with e-mail addresses, amounts of money, phone-like digit
/// sequences and runs of 4 or more digits replaced by `[email]`, `[amount]`,
/// `[phone]` and `[number]`, in that order of precedence.
///
/// ```
/// use switchboard_analysis::pii_redacted;
///
/// assert_eq!(
///     pii_redacted("Call me on (415) 555-2671 or mail jo@example.com about the $1,200 card ending 4242."),
///     "Call me on [phone] or mail [email] about the [amount] card ending [number].",
/// );
/// ```
pub fn pii_redacted(text: &str) -> String {
    redact(text, &|kind| kind.to_string())
}

/// Removes the same things as [`pii_redacted`], writing `replace(placeholder)`
/// instead of the placeholder.
pub(crate) fn redact(text: &str, replace: &dyn Fn(&'static str) -> String) -> String {
    let p = patterns();
    let out = p.email.replace_all(text, replace(EMAIL).as_str()).into_owned();
    let out = p.money.replace_all(&out, replace(AMOUNT).as_str()).into_owned();
    let out = p
        .phone
        .replace_all(&out, |c: &Captures<'_>| {
            let digits = c[0].bytes().filter(u8::is_ascii_digit).count();
            if (7..=15).contains(&digits) { replace(PHONE) } else { c[0].to_string() }
        })
        .into_owned();
    p.digits.replace_all(&out, replace(NUMBER).as_str()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_international_phones_amounts_and_long_digit_runs() {
        assert_eq!(
            pii_redacted("+44 20 7946 0018, 20 dollars, ref 99812, at 10:30 on 3/14"),
            "[phone], [amount], ref [number], at 10:30 on 3/14"
        );
    }

    #[test]
    fn leaves_text_without_pii_alone() {
        let s = "I'd like a refund, the parcel never arrived.";
        assert_eq!(pii_redacted(s), s);
    }
}
