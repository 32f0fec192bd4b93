//! Twilio's status callback form (external-apis.md A.4), built in one place
//! for the simulator (which sends it), `seed` (which stores it as an event)
//! and tests.

/// One status callback, as Twilio sends it to a `StatusCallback` URL.
#[derive(Debug, Clone)]
pub struct StatusCallback<'a> {
    /// `AC…`.
    pub account_sid: &'a str,
    /// `CA…`.
    pub call_sid: &'a str,
    /// `initiated`, `ringing`, `in-progress`, `completed`, `busy`, `no-answer`, `failed`, `canceled`.
    pub status: &'a str,
    /// Orders the callbacks of one call.
    pub sequence: i64,
    /// RFC 2822, as Twilio writes it (`Tue, 17 Nov 2026 10:15:10 +0000`).
    pub timestamp: &'a str,
    /// `outbound-api`, `inbound`, …
    pub direction: &'a str,
    /// Caller.
    pub from: &'a str,
    /// Callee.
    pub to: &'a str,
    /// For a final status: the call's duration in seconds and the SIP response code.
    pub ended: Option<(u64, u16)>,
}

impl StatusCallback<'_> {
    /// The form parameters. A final status carries `CallDuration` and
    /// `SipResponseCode`; `completed` also the billed minutes (`Duration`,
    /// at least one).
    pub fn params(&self) -> Vec<(String, String)> {
        let mut p: Vec<(String, String)> = [
            ("AccountSid", self.account_sid),
            ("ApiVersion", "2010-04-01"),
            ("CallSid", self.call_sid),
            ("CallStatus", self.status),
            ("CallbackSource", "call-progress-events"),
            ("Called", self.to),
            ("Caller", self.from),
            ("Direction", self.direction),
            ("From", self.from),
            ("To", self.to),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        p.push(("SequenceNumber".into(), self.sequence.to_string()));
        p.push(("Timestamp".into(), self.timestamp.to_owned()));
        if let Some((secs, sip)) = self.ended {
            p.push(("CallDuration".into(), secs.to_string()));
            p.push(("SipResponseCode".into(), sip.to_string()));
            if self.status == "completed" {
                p.push(("Duration".into(), secs.div_ceil(60).max(1).to_string()));
            }
        }
        p
    }
}

/// The SIP response code Twilio reports with a final status.
pub fn sip_code(status: &str) -> Option<u16> {
    match status {
        "completed" => Some(200),
        "busy" => Some(486),
        "no-answer" | "canceled" => Some(487),
        "failed" => Some(404),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_final_callback_carries_duration_sip_and_billed_minutes() {
        let cb = StatusCallback {
            account_sid: "AC00000000000000000000000000000001",
            call_sid: "CA00000000000000000000000000000001",
            status: "completed",
            sequence: 3,
            timestamp: "Tue, 17 Nov 2026 10:15:25 +0000",
            direction: "outbound-api",
            from: "+15005550001",
            to: "+15005550006",
            ended: Some((61, 200)),
        };
        let p = cb.params();
        let get = |k: &str| p.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("CallDuration"), Some("61"));
        assert_eq!(get("Duration"), Some("2"));
        assert_eq!(get("SipResponseCode"), Some("200"));
        assert_eq!(get("Called"), Some("+15005550006"));
        let ringing = StatusCallback { status: "ringing", ended: None, ..cb };
        assert!(ringing.params().iter().all(|(k, _)| k != "CallDuration" && k != "Duration"));
        assert_eq!(sip_code("busy"), Some(486));
    }
}
