//! [`AppState`]: what every handler and job of one instance shares.

use std::sync::Arc;

use switchboard_storage::Storage;

use crate::config::{Secret, Settings};

/// Everything a handler needs, cloned per request (all fields are shared).
#[derive(Clone)]
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Storage>,
    /// Settings.
    pub settings: Arc<Settings>,
    /// Accepted API bearer tokens.
    pub api_tokens: Arc<Vec<Secret>>,
    /// Imports run over the API by this instance.
    pub imports: Arc<crate::import::ImportRegistry>,
    /// The Sheets sync, when a Google service account is configured.
    pub sheets: Option<crate::jobs::sheets::SheetsSync>,
    /// The read cache (Redis or in-process).
    pub cache: crate::cache::Cache,
    /// The Socket.IO live feed.
    pub live: crate::live::LiveFeed,
}
