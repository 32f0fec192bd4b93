//! Webhook signature algorithms (reference: external-apis.md A.7 and B.6).
//! Comparisons are constant time (`Mac::verify_slice`).

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

/// Twilio's string-to-sign: the URL, then each POST parameter name followed
/// by its value, names sorted bytewise; a repeated name contributes each of
/// its distinct values, sorted.
pub fn twilio_string_to_sign(url: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted.dedup();
    let mut s = String::with_capacity(url.len() + params.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>());
    s.push_str(url);
    for (k, v) in sorted {
        s.push_str(k);
        s.push_str(v);
    }
    s
}

/// `X-Twilio-Signature` for a URL and form parameters.
pub fn twilio_signature(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
    mac.update(twilio_string_to_sign(url, params).as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// The URL forms Twilio's validators accept: as given, with the scheme's
/// default port added, and with any explicit port removed.
pub fn twilio_url_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else { return out };
    let (authority, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let default_port = if scheme.eq_ignore_ascii_case("https") { "443" } else { "80" };
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            out.push(format!("{scheme}://{host}{tail}"));
        }
        _ => out.push(format!("{scheme}://{authority}:{default_port}{tail}")),
    }
    out
}

/// Verifies `X-Twilio-Signature` against every accepted URL form.
pub fn verify_twilio(auth_token: &str, url: &str, params: &[(String, String)], signature: &str) -> bool {
    let Ok(given) = STANDARD.decode(signature.trim()) else { return false };
    twilio_url_variants(url).iter().any(|u| {
        let mut mac = Hmac::<Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key length");
        mac.update(twilio_string_to_sign(u, params).as_bytes());
        mac.verify_slice(&given).is_ok()
    })
}

/// Why an ElevenLabs signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElevenLabsSigError {
    /// Header missing or not `t=…,v0=…`.
    Malformed,
    /// Timestamp older than the tolerance (or too far in the future).
    Expired,
    /// MAC mismatch.
    Mismatch,
}

/// `ElevenLabs-Signature` value for a body at time `t`.
pub fn elevenlabs_signature(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    format!("t={t},v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// Verifies `ElevenLabs-Signature: t=<unix>,v0=<hex>` over `"{t}." + raw body`.
/// Rejects timestamps older than `tolerance_secs` and more than 5 minutes ahead.
pub fn verify_elevenlabs(
    secret: &str,
    header: &str,
    body: &[u8],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), ElevenLabsSigError> {
    let mut t = None;
    let mut v0 = None;
    for part in header.split(',') {
        let part = part.trim();
        if let Some(x) = part.strip_prefix("t=") {
            t = x.parse::<i64>().ok();
        } else if let Some(x) = part.strip_prefix("v0=") {
            v0 = hex::decode(x).ok();
        }
    }
    let (Some(t), Some(v0)) = (t, v0) else { return Err(ElevenLabsSigError::Malformed) };
    if t < now_unix - tolerance_secs || t > now_unix + 300 {
        return Err(ElevenLabsSigError::Expired);
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&v0).map_err(|_| ElevenLabsSigError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn a4_body() -> Vec<(String, String)> {
        let body = "AccountSid=AC00000000000000000000000000000001&ApiVersion=2010-04-01&CallDuration=37\
&CallSid=CA11111111111111111111111111111111&CallStatus=completed\
&CallbackSource=call-progress-events&Called=%2B15005550006&Caller=%2B15005550001\
&Direction=outbound-api&Duration=1&From=%2B15005550001&SequenceNumber=3\
&SipResponseCode=200&Timestamp=Tue%2C+17+Nov+2026+10%3A15%3A42+%2B0000&To=%2B15005550006";
        form_urlencoded::parse(body.as_bytes()).into_owned().collect()
    }

    #[test]
    fn twilio_python_helper_vectors_pass() {
        let params = p(&[
            ("CallSid", "CA1234567890ABCDE"),
            ("Caller", "+14158675309"),
            ("Digits", "1234"),
            ("From", "+14158675309"),
            ("To", "+18005551212"),
        ]);
        let url = "https://mycompany.com/myapp.php?foo=1&bar=2";
        assert_eq!(twilio_signature("12345", url, &params), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(
            twilio_signature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", &params),
            "kvajT1Ptam85bY51eRf/AJRuM3w="
        );
        // Either signature verifies against the URL without the port.
        assert!(verify_twilio("12345", url, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="));
        assert!(verify_twilio("12345", url, &params, "kvajT1Ptam85bY51eRf/AJRuM3w="));
    }

    #[test]
    fn worked_example_a7_passes_with_and_without_port_and_rejects_tampering() {
        let token = "f00dfacecafebeef0123456789abcdef";
        let url = "https://dialer.example.test/webhooks/twilio/status?campaign=42";
        let params = a4_body();
        assert_eq!(twilio_signature(token, url, &params), "S0I9fQxzz16nUUPx1OvKZiGiRGw=");
        assert!(verify_twilio(token, url, &params, "S0I9fQxzz16nUUPx1OvKZiGiRGw="));
        assert!(verify_twilio(token, url, &params, "qJ5HTeXk780b68tD8lKCuUArNo8="));
        let port_url = "https://dialer.example.test:443/webhooks/twilio/status?campaign=42";
        assert!(verify_twilio(token, port_url, &params, "S0I9fQxzz16nUUPx1OvKZiGiRGw="));
        let tampered: Vec<_> = params
            .iter()
            .map(|(k, v)| if k == "CallStatus" { (k.clone(), "busy".into()) } else { (k.clone(), v.clone()) })
            .collect();
        assert_eq!(twilio_signature(token, url, &tampered), "cLqOoMBlnQQftYARX+Zcx5L58IA=");
        assert!(!verify_twilio(token, url, &tampered, "S0I9fQxzz16nUUPx1OvKZiGiRGw="));
        assert!(!verify_twilio("wrong", url, &params, "S0I9fQxzz16nUUPx1OvKZiGiRGw="));
        assert!(!verify_twilio(token, url, &params, "not base64!"));
    }

    #[test]
    fn json_variant_vector_passes() {
        // bodySHA256 variant: URL including the hash, no parameters appended.
        let url = "https://dialer.example.test/webhooks/twilio/json?bodySHA256=8177205bd75bb7dfd8f132909379734fb766200ea237c1faa17d92c6ebdf8efc";
        assert_eq!(twilio_signature("f00dfacecafebeef0123456789abcdef", url, &[]), "IOImdaGIBt11ows4rfT8CF9ka3E=");
    }

    #[test]
    fn repeated_parameters_sign_each_distinct_value_sorted() {
        let a = p(&[
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
        ]);
        assert_eq!(twilio_string_to_sign("u", &a), "uStatusCallbackEventinitiatedStatusCallbackEventringing");
    }

    #[test]
    fn elevenlabs_worked_example_passes_and_a_trailing_newline_fails() {
        let secret = "wsec_test_0123456789abcdef";
        let body = br#"{"type":"post_call_transcription","event_timestamp":1794916542,"data":{"agent_id":"agent_test01","conversation_id":"conv_test01","status":"done"}}"#;
        let header = "t=1794916542,v0=6a9511a152936bd33c227c5d4cc33e18315acb31fa21c08b839180de982d806f";
        assert_eq!(elevenlabs_signature(secret, 1794916542, body), header);
        assert_eq!(verify_elevenlabs(secret, header, body, 1794916542 + 60, 1800), Ok(()));
        let mut nl = body.to_vec();
        nl.push(b'\n');
        assert_eq!(
            elevenlabs_signature(secret, 1794916542, &nl),
            "t=1794916542,v0=f162cbf04ec79639a84d9d59c4c0a63fe555325beacb04a560e17c44136ebb85"
        );
        assert_eq!(verify_elevenlabs(secret, header, &nl, 1794916542, 1800), Err(ElevenLabsSigError::Mismatch));
        assert_eq!(verify_elevenlabs(secret, header, body, 1794916542 + 1801, 1800), Err(ElevenLabsSigError::Expired));
        assert_eq!(verify_elevenlabs(secret, "v0=abc", body, 1794916542, 1800), Err(ElevenLabsSigError::Malformed));
    }
}
