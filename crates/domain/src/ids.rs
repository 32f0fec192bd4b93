//! Typed, prefixed identifiers. Every id is `prefix_` + 32 lowercase hex of a
//! UUIDv7, so ids sort by creation time (a useful tie-breaker for cursors)
//! and a stray id of the wrong kind is rejected at parse time.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An id string did not have the expected prefix and shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}` followed by 32 hex digits)")]
pub struct IdError {
    /// The id kind, e.g. `call`.
    pub kind: &'static str,
    /// The prefix expected.
    pub prefix: &'static str,
    /// The rejected value (truncated).
    pub value: String,
}

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// The id prefix, including the underscore.
            pub const PREFIX: &'static str = $prefix;

            /// A new, time-ordered id.
            pub fn new() -> Self {
                Self(format!("{}{}", $prefix, Uuid::now_v7().simple()))
            }

            /// Parses and validates an id string.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let ok = s.len() == $prefix.len() + 32
                    && s.starts_with($prefix)
                    && s[$prefix.len()..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                if ok {
                    Ok(Self(s.to_owned()))
                } else {
                    Err(IdError { kind: $kind, prefix: $prefix, value: s.chars().take(80).collect() })
                }
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// Our id of a call record.
    CallId, "call", "call_"
);
id_type!(
    /// Our id of a stored call event.
    EventId, "event", "evt_"
);

id_type!(
    /// Our id of a contact.
    ContactId, "contact", "con_"
);
id_type!(
    /// Our id of a campaign.
    CampaignId, "campaign", "cmp_"
);
id_type!(
    /// Our id of a campaign enrollment (one contact in one campaign).
    EnrollmentId, "enrollment", "enr_"
);
id_type!(
    /// Our id of a recording (Twilio recording or ElevenLabs conversation audio).
    RecordingId, "recording", "rec_"
);
id_type!(
    /// Our id of a transcript (one per ElevenLabs conversation).
    TranscriptId, "transcript", "trn_"
);
id_type!(
    /// Our id of a Google Sheets link (one spreadsheet tab bound to a campaign or the contact list).
    SheetLinkId, "sheet link", "lnk_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_ids_parse_back_and_sort_by_creation() {
        let a = CallId::new();
        let b = CallId::new();
        assert_eq!(CallId::parse(a.as_str()).unwrap(), a);
        assert!(a < b, "UUIDv7 ids must sort by creation time");
    }

    #[test]
    fn wrong_prefix_or_shape_is_rejected() {
        assert!(CallId::parse("evt_0123456789abcdef0123456789abcdef").is_err());
        assert!(CallId::parse("call_0123").is_err());
        assert!(CallId::parse("call_0123456789ABCDEF0123456789ABCDEF").is_err());
        let err = EventId::parse("nope").unwrap_err();
        assert!(err.to_string().contains("evt_"));
    }
}
