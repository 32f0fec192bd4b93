//! Retries with exponential backoff and full jitter, honouring `Retry-After`.
//!
//! Which failures are retried depends on whether the request is idempotent:
//! a `GET` may be repeated after any transient failure, but a call placement
//! that reached the provider and got a 5xx or a timeout may have been
//! processed, so it is only retried when the provider said it was not
//! (429 — Twilio documents 20429 as never processed) or when the connection
//! never carried the request.

use std::time::Duration;

use rand::Rng;
use reqwest::{Response, StatusCode};

use super::UpstreamError;

/// How often and how long to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all (1 = no retry).
    pub max_attempts: u32,
    /// First backoff.
    pub base: Duration,
    /// Backoff cap (also caps an honoured `Retry-After`).
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { max_attempts: 4, base: Duration::from_millis(250), max_backoff: Duration::from_secs(32) }
    }
}

impl RetryPolicy {
    /// No retries (tests of single failures).
    pub fn none() -> Self {
        RetryPolicy { max_attempts: 1, ..Default::default() }
    }

    /// Backoff before attempt `n + 1` (n ≥ 1): full jitter over `base·2^(n-1)`,
    /// or the provider's `Retry-After` when it gave one.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max_backoff);
        }
        let exp = self.base.saturating_mul(1u32 << (attempt - 1).min(16)).min(self.max_backoff);
        let ms = exp.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(ms / 2..=ms.max(1)))
    }
}

/// Whether a request may be repeated after the provider may have processed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Idempotency {
    /// Safe to repeat (reads, PUTs of whole values).
    Idempotent,
    /// Repeat only if the provider certainly did not process it.
    NotIdempotent,
}

/// Parses `Retry-After` (seconds; HTTP dates are treated as absent).
pub fn retry_after(resp: &Response) -> Option<Duration> {
    resp.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// What to do with one attempt's outcome.
pub(crate) enum Verdict {
    /// Done: hand the response to the caller.
    Done(Response),
    /// Try again after this delay hint.
    Retry(Option<Duration>, UpstreamError),
    /// Give up with this error.
    Fail(UpstreamError),
}

/// Classifies a transport error.
pub(crate) fn transport_error(provider: &'static str, e: &reqwest::Error) -> (UpstreamError, bool) {
    if e.is_timeout() {
        (UpstreamError::Timeout { provider }, false)
    } else {
        // A connect error never carried the request: safe to repeat even for a POST.
        let never_sent = e.is_connect();
        let message = if never_sent { format!("{}: {e}", super::NOT_CONNECTED) } else { e.to_string() };
        (UpstreamError::Transport { provider, message }, never_sent)
    }
}

/// Sends a request built by `make` until it succeeds, fails permanently or
/// the policy runs out. `classify` turns an HTTP error response into an
/// `UpstreamError` (it reads the provider's error body).
pub(crate) async fn send<F, C, Fut>(
    provider: &'static str,
    policy: &RetryPolicy,
    idempotency: Idempotency,
    make: F,
    classify: C,
) -> Result<Response, UpstreamError>
where
    F: Fn() -> reqwest::RequestBuilder,
    C: Fn(StatusCode, Response) -> Fut,
    Fut: Future<Output = UpstreamError>,
{
    let mut attempt = 1;
    loop {
        let verdict = match make().send().await {
            Ok(resp) if resp.status().is_success() => Verdict::Done(resp),
            Ok(resp) => {
                let status = resp.status();
                let ra = retry_after(&resp);
                let err = classify(status, resp).await;
                let retryable = match status {
                    StatusCode::TOO_MANY_REQUESTS => true,
                    s if s.is_server_error() => idempotency == Idempotency::Idempotent,
                    _ => false,
                };
                if retryable { Verdict::Retry(ra, err) } else { Verdict::Fail(err) }
            }
            Err(e) => {
                let (err, never_sent) = transport_error(provider, &e);
                if idempotency == Idempotency::Idempotent || never_sent {
                    Verdict::Retry(None, err)
                } else {
                    Verdict::Fail(err)
                }
            }
        };
        match verdict {
            Verdict::Done(resp) => return Ok(resp),
            Verdict::Fail(err) => return Err(err),
            Verdict::Retry(ra, err) => {
                if attempt >= policy.max_attempts {
                    return Err(err);
                }
                let wait = policy.backoff(attempt, ra);
                tracing::warn!(provider, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying provider request");
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_jittered_capped_and_honours_retry_after() {
        let p = RetryPolicy { max_attempts: 10, base: Duration::from_millis(100), max_backoff: Duration::from_secs(1) };
        for _ in 0..50 {
            let b1 = p.backoff(1, None);
            assert!(b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100), "{b1:?}");
            let b4 = p.backoff(4, None);
            assert!(b4 >= Duration::from_millis(400) && b4 <= Duration::from_millis(800), "{b4:?}");
            assert!(p.backoff(30, None) <= Duration::from_secs(1));
        }
        assert_eq!(p.backoff(1, Some(Duration::from_millis(700))), Duration::from_millis(700));
        assert_eq!(p.backoff(1, Some(Duration::from_secs(90))), Duration::from_secs(1));
    }
}
