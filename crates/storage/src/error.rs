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
}

impl From<switchboard_domain::MergeError> for StoreError {
    fn from(e: switchboard_domain::MergeError) -> Self {
        StoreError::conflict(e.to_string())
    }
}
