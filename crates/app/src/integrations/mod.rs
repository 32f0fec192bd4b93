//! Provider clients: Twilio, ElevenLabs and Google Sheets. Each takes a base
//! URL (the real service or the simulator), timeouts and credentials from
//! config, retries what is safe to retry with exponential backoff and full
//! jitter (honouring `Retry-After`), and fails with a typed [`UpstreamError`].
//! Credentials never reach a log line: requests are logged by method, host
//! path and status only.

pub mod elevenlabs;
#[cfg(test)]
mod fake;
pub mod google;
pub mod retry;
#[cfg(test)]
mod tests;
pub mod twilio;

use std::time::Duration;

/// A provider call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UpstreamError {
    /// Credentials refused (401/403).
    #[error("{provider}: authentication failed ({status}): {message}")]
    Auth {
        /// Which provider.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// Provider message.
        message: String,
    },
    /// The resource does not exist (404).
    #[error("{provider}: not found: {message}")]
    NotFound {
        /// Which provider.
        provider: &'static str,
        /// Provider message.
        message: String,
    },
    /// Rate limited (429) after the retries ran out.
    #[error("{provider}: rate limited{}", retry_after.map(|d| format!(" (retry after {d:?})")).unwrap_or_default())]
    RateLimited {
        /// Which provider.
        provider: &'static str,
        /// The provider's `Retry-After`, if any.
        retry_after: Option<Duration>,
    },
    /// The provider failed (5xx) after the retries ran out.
    #[error("{provider}: upstream error {status}: {message}")]
    Upstream5xx {
        /// Which provider.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// Provider message.
        message: String,
    },
    /// No answer in time.
    #[error("{provider}: timed out")]
    Timeout {
        /// Which provider.
        provider: &'static str,
    },
    /// The request was refused as invalid (other 4xx), e.g. Twilio 21211 or ElevenLabs 422.
    #[error("{provider}: request rejected ({status}{}): {message}", code.map(|c| format!(", code {c}")).unwrap_or_default())]
    Rejected {
        /// Which provider.
        provider: &'static str,
        /// HTTP status.
        status: u16,
        /// Provider error code, when it gives one.
        code: Option<i64>,
        /// Provider message.
        message: String,
    },
    /// The answer could not be understood.
    #[error("{provider}: bad response: {message}")]
    BadResponse {
        /// Which provider.
        provider: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The connection failed before any answer.
    #[error("{provider}: connection failed: {message}")]
    Transport {
        /// Which provider.
        provider: &'static str,
        /// Transport error.
        message: String,
    },
}

/// How a transport error that never carried the request starts its message.
pub(crate) const NOT_CONNECTED: &str = "could not connect (the request was not sent)";

impl UpstreamError {
    /// Whether the provider certainly did not process the request: it
    /// refused it as rate limited (Twilio documents 20429 as never
    /// processed), or the connection was never made. Any other failure of a
    /// call placement may have dialled.
    pub fn certainly_not_processed(&self) -> bool {
        match self {
            UpstreamError::RateLimited { .. } => true,
            UpstreamError::Transport { message, .. } => message.starts_with(NOT_CONNECTED),
            _ => false,
        }
    }

    /// The error for an HTTP failure status, by the classes every provider shares
    /// (providers with their own codes, like Twilio, refine it).
    pub fn from_status(provider: &'static str, status: u16, message: String) -> UpstreamError {
        match status {
            401 | 403 => UpstreamError::Auth { provider, status, message },
            404 => UpstreamError::NotFound { provider, message },
            429 => UpstreamError::RateLimited { provider, retry_after: None },
            s if s >= 500 => UpstreamError::Upstream5xx { provider, status: s, message },
            s => UpstreamError::Rejected { provider, status: s, code: None, message },
        }
    }

    /// Whether a later retry may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UpstreamError::RateLimited { .. }
                | UpstreamError::Upstream5xx { .. }
                | UpstreamError::Timeout { .. }
                | UpstreamError::Transport { .. }
        )
    }
}

/// Settings shared by every client.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Per-request timeout.
    pub timeout: Duration,
    /// Retry policy.
    pub retry: retry::RetryPolicy,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions { timeout: Duration::from_secs(15), retry: retry::RetryPolicy::default() }
    }
}

/// Builds the shared HTTP client.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("switchboard/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}
