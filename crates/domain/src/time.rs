//! Timestamps are kept at millisecond precision everywhere: MongoDB's BSON
//! date and our SQLite integer columns both hold milliseconds, so truncating
//! at the edge is what makes a value round-trip unchanged through either store.

use chrono::{DateTime, TimeZone, Utc};

/// Truncates a timestamp to whole milliseconds.
pub fn to_ms(t: DateTime<Utc>) -> DateTime<Utc> {
    from_millis(t.timestamp_millis())
}

/// The current time, truncated to milliseconds.
pub fn now_ms() -> DateTime<Utc> {
    to_ms(Utc::now())
}

/// Builds a UTC timestamp from Unix milliseconds (saturating at chrono's range).
pub fn from_millis(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or(DateTime::<Utc>::MIN_UTC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_drops_sub_millisecond_digits() {
        let t = Utc.timestamp_opt(1_794_916_542, 123_456_789).unwrap();
        let m = to_ms(t);
        assert_eq!(m.timestamp_subsec_nanos(), 123_000_000);
        assert_eq!(from_millis(m.timestamp_millis()), m);
    }
}
