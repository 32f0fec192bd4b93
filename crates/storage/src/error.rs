//! The one error type of the storage contract.

/// Result of every store method.
pub type StoreResult<T> = Result<T, StoreError>;

/// A store failure, mapped from driver errors inside each backend.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or state rule refused the write.
    #[error("conflict: {what}")]
    Conflict {
        /// What conflicted.
        what: String,
    },
    /// A compare-and-set found a newer version than the one given: re-read and
    /// retry ([`retry_stale`] does it), or give up.
    #[error("stale: {0}")]
    Stale(String),
    /// The caller passed something the store cannot use (bad cursor, bad filter).
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The store cannot be reached or timed out; the caller may retry.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl StoreError {
    /// A conflict with a message.
    pub fn conflict(what: impl Into<String>) -> Self {
        StoreError::Conflict { what: what.into() }
    }

    /// A failed compare-and-set on `what` (e.g. `contact con_…`).
    pub fn stale(what: impl std::fmt::Display) -> Self {
        StoreError::Stale(format!("{what} changed concurrently; re-read it and retry"))
    }
}

/// The optimistic-concurrency loop in one place: runs `attempt` (read,
/// modify, compare-and-set) until it does not fail with
/// [`StoreError::Stale`], at most `tries` times; then the last `Stale` is
/// returned.
pub async fn retry_stale<T, F, Fut>(tries: u32, mut attempt: F) -> StoreResult<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = StoreResult<T>>,
{
    let mut last = None;
    for _ in 0..tries.max(1) {
        match attempt().await {
            Err(StoreError::Stale(why)) => last = Some(why),
            other => return other,
        }
    }
    Err(StoreError::Stale(last.unwrap_or_default()))
}

impl From<switchboard_domain::MergeError> for StoreError {
    fn from(e: switchboard_domain::MergeError) -> Self {
        StoreError::conflict(e.to_string())
    }
}
