//! Campaign outcomes: a campaign call that reached a final status moves its
//! enrollment on (done, retry later, or failed) and frees its dial-gate slot.
//!
//! Called by webhook ingest (the usual path: the provider tells us) and by
//! the dialer job's reconciliation (calls whose outcome was not applied, or
//! whose state was asked of the provider). It lives beside both, so neither
//! the HTTP side nor a job reaches into the other.

use chrono::{DateTime, Utc};
use switchboard_domain::Call;
use switchboard_domain::enrollment::Outcome;
use switchboard_storage::{Storage, StoreResult, retry_stale};

/// Applies a finished call's outcome to its enrollment (idempotent; a call
/// that is not the enrollment's current attempt changes nothing) and frees
/// its gate slot. Returns whether the enrollment changed.
pub async fn apply_call_outcome(store: &dyn Storage, call: &Call, now: DateTime<Utc>) -> StoreResult<bool> {
    let (Some(eid), Some(outcome)) = (call.enrollment_id.as_ref(), Outcome::of_call(call)) else {
        return Ok(false);
    };
    retry_stale(8, || async move {
        let Some(mut e) = store.get_enrollment(eid).await? else { return Ok(false) };
        let Some(campaign) = store.get_campaign(&e.campaign_id).await? else { return Ok(false) };
        let attempt = e.history.iter().rev().find(|a| a.call_id == call.id).map(|a| a.n);
        if !e.record_outcome(&call.id, outcome, &campaign, now) {
            // Already applied (or another attempt's call): make sure the slot is free anyway.
            if let Some(n) = attempt {
                store.release_dial_slot(&e.campaign_id, &e.key_of_attempt(n).to_string()).await?;
            }
            return Ok(false);
        }
        let saved = store.replace_enrollment(&e).await?;
        if let Some(n) = attempt {
            store.release_dial_slot(&saved.campaign_id, &saved.key_of_attempt(n).to_string()).await?;
        }
        tracing::info!(enrollment = %saved.id, call = %call.id, outcome = %outcome, status = %saved.status, "call outcome applied");
        Ok(true)
    })
    .await
}
