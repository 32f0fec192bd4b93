//! `/webhooks/*`: provider callbacks. Each goes verify → parse → dedupe →
//! merge → store event, and is acknowledged only after the writes are
//! durable:
//!
//! 1. Signature check; a mismatch is 403 and nothing is written.
//! 2. Parse; a malformed body is 400 naming the field, nothing written.
//! 3. If an event with this dedupe key is stored, the webhook is a replay:
//!    2xx, nothing written.
//! 4. Merge the facts into the call record (idempotent, so a crash between
//!    4 and 5 is repaired by the provider's retry), then store the event.
//! 5. Store unavailable: 503 so the provider retries.

pub mod elevenlabs;
pub mod twilio;
pub mod verify;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::post;
use switchboard_domain::{CallUpdate, EventId, Source, time::now_ms};
use switchboard_storage::{NewEvent, WebhookOutcome};

use crate::AppState;
use crate::error::ApiError;
use crate::metrics::WEBHOOKS;

/// What happened to an accepted webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Merged and stored.
    Applied,
    /// Already stored before; nothing written.
    Replay,
}

/// Whether `s` is a Twilio SID with `prefix`: two letters and 32 letters or digits.
pub fn is_sid(s: &str, prefix: &str) -> bool {
    s.len() == 34 && s.starts_with(prefix) && s[2..].chars().all(|c| c.is_ascii_alphanumeric())
}

/// The range of provider timestamps we accept: from 2000 to a day ahead of
/// our clock (clock skew). Anything else is malformed, so no wrapped or
/// year-9999 date ever sorts into the record.
pub fn plausible_time(t: chrono::DateTime<chrono::Utc>) -> Result<chrono::DateTime<chrono::Utc>, String> {
    let earliest = chrono::DateTime::from_timestamp(946_684_800, 0).expect("2000-01-01 is valid");
    let latest = chrono::Utc::now() + chrono::Duration::days(1);
    if t < earliest || t > latest {
        return Err(format!("{} is outside the accepted range (2000-01-01 to a day from now)", t.to_rfc3339()));
    }
    Ok(switchboard_domain::time::to_ms(t))
}

/// Steps 3–4 above, shared by every provider: one store operation.
pub async fn ingest(
    state: &AppState,
    update: CallUpdate,
    event_type: String,
    dedupe_key: String,
    sequence: Option<i64>,
    payload: serde_json::Value,
) -> Result<Ingested, ApiError> {
    let source = update.source.unwrap_or(Source::Switchboard);
    let received = now_ms();
    let event = NewEvent {
        id: EventId::new(),
        source,
        event_type,
        occurred_at: update.observed_at.unwrap_or(received),
        received_at: received,
        dedupe_key,
        sequence,
        payload,
    };
    let recorded = match state.store.record_webhook(&update, event).await {
        Err(switchboard_storage::StoreError::Conflict { what }) => {
            // A key that names another call (a CallSid already on a different campaign call, a
            // second CallSid for a conversation): nothing was written; 409 and counted.
            tracing::warn!(conflict = %what, "webhook conflicts with stored calls; nothing written");
            metrics::counter!(WEBHOOKS, "provider" => source.as_str(), "outcome" => "conflict").increment(1);
            return Err(ApiError::Conflict(what));
        }
        other => other?,
    };
    let ingested = match recorded {
        WebhookOutcome::Replay => Ingested::Replay,
        WebhookOutcome::Applied(outcome) => {
            tracing::debug!(call_id = %outcome.call.id, status = %outcome.call.status, created = outcome.created, "webhook applied");
            // A campaign call that just ended moves its enrollment on (retry or finish). The
            // webhook is already durable; if this fails, the dialer's reconciliation applies it.
            if outcome.call.enrollment_id.is_some()
                && outcome.call.status.is_terminal()
                && let Err(e) = crate::outcomes::apply_call_outcome(&*state.store, &outcome.call, received).await
            {
                tracing::warn!(call_id = %outcome.call.id, error = %e, "outcome not applied yet; the dialer will reconcile it");
            }
            Ingested::Applied
        }
    };
    let label = if ingested == Ingested::Applied { "applied" } else { "replay" };
    metrics::counter!(WEBHOOKS, "provider" => source.as_str(), "outcome" => label).increment(1);
    Ok(ingested)
}

/// The webhook routes.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/webhooks/twilio/status", post(twilio::status_callback))
        .route("/webhooks/twilio/amd", post(twilio::amd_callback))
        .route("/webhooks/twilio/recording", post(twilio::recording_callback))
        .route("/webhooks/elevenlabs", post(elevenlabs::post_call))
        .layer(DefaultBodyLimit::max(state.settings.webhook_body_limit_bytes))
}
