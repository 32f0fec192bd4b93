//! The dialer (architecture §4): a background job, safe with several
//! instances on one store, whose single [`Dialer::step`] takes `now` so
//! tests drive time.
//!
//! One step:
//! 1. **Recover** enrollments whose lease expired while `dialing` (a dialer
//!    died between claim and placement): no call was recorded for them, so
//!    they go back to waiting and their gate slot is freed. An enrollment
//!    whose call was recorded is `in_call`, never `dialing`, so it is never
//!    re-dialled.
//! 2. **Start** scheduled campaigns whose start time has come.
//! 3. Per running campaign: **reconcile** calls in flight (apply outcomes
//!    the webhooks delivered but that were not applied, fail calls that
//!    never got a final status, free leaked gate slots), then **claim** due
//!    enrollments one at a time (atomic, leased, fenced), re-check
//!    eligibility with fresh data, take a slot from the store's dial gate
//!    (concurrency and pacing across instances), **record** the attempt and
//!    the call (status `queued`) before the provider is asked, then
//!    **place** it. A placement is never repeated after a failure that may
//!    have reached the provider.
//! 4. **Complete** campaigns in which no enrollment can be dialled again.
//!
//! Outcomes arrive through the webhooks ([`apply_call_outcome`]) and, as a
//! safety net, through step 3's reconciliation.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use futures::TryStreamExt;
use switchboard_domain::campaign::DialMode;
use switchboard_domain::enrollment::evaluate;
use switchboard_domain::{
    Call, CallId, CallStatus, CallUpdate, Campaign, CampaignStatus, Contact, Enrollment, EnrollmentStatus, Source,
};
use switchboard_storage::{SlotGrant, Storage, StoreError, StoreResult, pages};

use crate::integrations::UpstreamError;
use crate::integrations::elevenlabs::{ClientData, ElevenLabsClient, OutboundCall, RegisterCall};
use crate::integrations::twilio::{CreateCall, TwilioClient};
use crate::outcomes::apply_call_outcome;

/// How long a claim is held before another instance may recover it.
pub const DEFAULT_LEASE: Duration = Duration::seconds(60);
/// A placed call with no final status after this long, which no provider can
/// tell us about, is failed.
pub const STUCK_CALL: Duration = Duration::hours(3);
/// Default quiet period after which an in-flight call's provider is asked.
pub const DEFAULT_QUIET: Duration = Duration::minutes(10);
/// Claims per campaign per step (keeps one step short).
const CLAIMS_PER_STEP: usize = 200;

/// What one step did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Calls placed.
    pub placed: u64,
    /// Claimed but not dialable now, put back with their next time.
    pub deferred: u64,
    /// Finished without a call (DNC, attempts used, schedule closed, contact gone).
    pub finished_without_call: u64,
    /// Expired leases recovered.
    pub recovered: u64,
    /// Outcomes applied by reconciliation.
    pub reconciled: u64,
    /// Placements that failed.
    pub placement_failures: u64,
    /// Campaigns started / completed.
    pub started: u64,
    /// Campaigns completed.
    pub completed: u64,
}

/// Where the provider should send callbacks.
#[derive(Debug, Clone)]
pub struct Callbacks {
    /// `PUBLIC_BASE_URL`.
    pub public_base: String,
}

/// The dialer of one instance.
#[derive(Clone)]
pub struct Dialer {
    store: Arc<dyn Storage>,
    twilio: Option<TwilioClient>,
    elevenlabs: Option<ElevenLabsClient>,
    callbacks: Callbacks,
    owner: String,
    lease: Duration,
    /// Set by [`Dialer::run`]: on the real clock, a step may wait out short pacing gaps.
    live_budget: Option<StdDuration>,
    /// A call silent this long is looked up at its provider.
    quiet: Duration,
    /// When each call was last looked up (in memory: after a restart every
    /// quiet call is asked once more, which is what a restart needs).
    asked: Arc<std::sync::Mutex<std::collections::HashMap<CallId, DateTime<Utc>>>>,
}

/// Fills `{{contact.name}}`, `{{contact.phone}}`, `{{contact.email}}`, `{{contact.custom.KEY}}`.
pub fn render_template(template: &str, contact: &Contact) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let key = rest[start + 2..start + end].trim();
        let value = match key {
            "contact.name" => contact.name.clone().unwrap_or_default(),
            "contact.phone" => contact.phone.clone(),
            "contact.email" => contact.email.clone().unwrap_or_default(),
            k => match k.strip_prefix("contact.custom.") {
                Some(field) => match contact.custom.get(field) {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(v) => v.to_string(),
                    None => String::new(),
                },
                None => format!("{{{{{k}}}}}"),
            },
        };
        out.push_str(&value);
        rest = &rest[start + end + 2..];
    }
    out.push_str(rest);
    out
}

impl Dialer {
    /// A dialer named `owner` (unique per instance) placing calls through the given clients.
    pub fn new(
        store: Arc<dyn Storage>,
        twilio: Option<TwilioClient>,
        elevenlabs: Option<ElevenLabsClient>,
        callbacks: Callbacks,
        owner: impl Into<String>,
    ) -> Dialer {
        Dialer {
            store,
            twilio,
            elevenlabs,
            callbacks,
            owner: owner.into(),
            lease: DEFAULT_LEASE,
            live_budget: None,
            quiet: DEFAULT_QUIET,
            asked: Arc::default(),
        }
    }

    /// Sets the quiet period after which an in-flight call's provider is asked for its state.
    pub fn with_quiet_period(mut self, quiet: Duration) -> Dialer {
        self.quiet = quiet;
        self
    }

    /// Sets the lease length.
    pub fn with_lease(mut self, lease: Duration) -> Dialer {
        self.lease = lease;
        self
    }

    /// Runs [`Dialer::step`] every `every` until `stop` resolves.
    ///
    /// On the real clock a campaign whose pacing interval is shorter than
    /// `every` keeps dialling within one step, waiting out each interval, for
    /// up to `every`; so `calls_per_minute` is reached even when it is higher
    /// than one call per step. Campaigns are dialled concurrently.
    pub async fn run(mut self, every: StdDuration, stop: impl Future<Output = ()>) {
        self.live_budget = Some(every);
        tokio::pin!(stop);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    match self.step(switchboard_domain::time::now_ms()).await {
                        Ok(r) if r != StepReport::default() => tracing::debug!(report = ?r, "dialer step"),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(error = %e, "dialer step failed; retrying next tick"),
                    }
                }
            }
        }
    }

    /// One pass over every campaign at `now`.
    pub async fn step(&self, now: DateTime<Utc>) -> StoreResult<StepReport> {
        let mut report = StepReport::default();
        self.recover(now, &mut report).await?;
        for c in self.campaigns(&[CampaignStatus::Scheduled]).await? {
            if c.schedule.start_at.is_none_or(|s| s <= now) {
                let mut started = c.clone();
                started.status = CampaignStatus::Running;
                started.updated_at = now;
                if self.store.replace_campaign(&started).await.is_ok() {
                    report.started += 1;
                }
            }
        }
        let campaigns = self.campaigns(&[CampaignStatus::Running, CampaignStatus::Paused]).await?;
        let per_campaign = campaigns.iter().map(|campaign| async move {
            let mut r = StepReport::default();
            self.reconcile(campaign, now, &mut r).await?;
            if campaign.status == CampaignStatus::Running {
                self.dial(campaign, now, &mut r).await?;
                if self.maybe_complete(campaign, now).await? {
                    r.completed += 1;
                }
            }
            Ok::<_, StoreError>(r)
        });
        for r in futures::future::join_all(per_campaign).await {
            let r = r?;
            report.placed += r.placed;
            report.deferred += r.deferred;
            report.finished_without_call += r.finished_without_call;
            report.reconciled += r.reconciled;
            report.placement_failures += r.placement_failures;
            report.completed += r.completed;
        }
        Ok(report)
    }

    async fn campaigns(&self, statuses: &[CampaignStatus]) -> StoreResult<Vec<Campaign>> {
        pages(200, |p| async move { self.store.list_campaigns(statuses, &p).await }).try_concat().await
    }

    async fn recover(&self, now: DateTime<Utc>, report: &mut StepReport) -> StoreResult<()> {
        for e in self.store.expired_leases(now, 500).await? {
            let key = e.next_attempt_key().to_string();
            let mut back = e.clone();
            back.release_claim(
                None,
                format!(
                    "lease of {} expired before a call was placed",
                    e.lease.as_ref().map(|l| l.owner.as_str()).unwrap_or("?")
                ),
                now,
            );
            match self.store.replace_enrollment(&back).await {
                Ok(_) => {
                    self.store.release_dial_slot(&e.campaign_id, &key).await?;
                    report.recovered += 1;
                    tracing::warn!(enrollment = %e.id, "recovered an expired dialer lease");
                }
                Err(StoreError::Stale(_)) => {}
                Err(err) => return Err(err),
            }
        }
        Ok(())
    }

    async fn reconcile(&self, campaign: &Campaign, now: DateTime<Utc>, report: &mut StepReport) -> StoreResult<()> {
        let (store, cid) = (&self.store, &campaign.id);
        let in_call: &[EnrollmentStatus] = &[EnrollmentStatus::InCall];
        let mut flying = std::pin::pin!(pages(200, |p| async move { store.list_enrollments(cid, in_call, &p).await }));
        while let Some(items) = flying.try_next().await? {
            for e in &items {
                let call = match &e.current_call_id {
                    Some(call_id) => match self.store.get_call(call_id).await {
                        Ok(c) => Some(c),
                        Err(StoreError::NotFound(_)) => None,
                        Err(err) => return Err(err),
                    },
                    None => None,
                };
                let Some(mut call) = call else {
                    // In flight with no call behind it (deleted, or never linked): end the
                    // attempt so its slot is freed and the campaign can finish.
                    if self.end_lost_attempt(campaign, e, now).await? {
                        report.reconciled += 1;
                    }
                    continue;
                };
                if !call.status.is_terminal()
                    && now - call.updated_at >= self.quiet
                    && let Some(fresh) = self.ask_provider(&call, now).await?
                {
                    call = fresh;
                }
                if call.status.is_terminal() {
                    if apply_call_outcome(&*self.store, &call, now).await? {
                        report.reconciled += 1;
                    }
                } else if now - call.started_at > STUCK_CALL {
                    // No final status ever came: the call is failed, never re-dialled as the same attempt.
                    let update = CallUpdate {
                        id: Some(call.id.clone()),
                        source: Some(Source::Switchboard),
                        status: Some(CallStatus::Failed),
                        observed_at: Some(now),
                        ..Default::default()
                    };
                    let out = self.store.upsert_call(&update).await?;
                    if apply_call_outcome(&*self.store, &out.call, now).await? {
                        report.reconciled += 1;
                    }
                }
            }
        }
        // Free gate slots whose attempt is no longer in flight (a crash between outcome and release).
        if let Some(fresh) = self.store.get_campaign(&campaign.id).await? {
            for key in &fresh.inflight {
                let held = match key.parse::<switchboard_domain::enrollment::AttemptKey>() {
                    Ok(k) => self.store.get_enrollment(&k.enrollment).await?.map(|e| (k, e)),
                    Err(_) => None,
                };
                let live = held.is_some_and(|(k, e)| {
                    e.status.is_in_flight()
                        && (e.status == EnrollmentStatus::Dialing && k == e.next_attempt_key()
                            || e.status == EnrollmentStatus::InCall && k == e.attempt_key())
                });
                if !live {
                    self.store.release_dial_slot(&campaign.id, key).await?;
                }
            }
        }
        Ok(())
    }

    async fn end_lost_attempt(&self, campaign: &Campaign, e: &Enrollment, now: DateTime<Utc>) -> StoreResult<bool> {
        let mut ended = e.clone();
        let why = match &e.current_call_id {
            Some(c) => format!("call {c} is missing"),
            None => "no call is linked to the attempt".to_owned(),
        };
        if !ended.end_lost_attempt(&why, campaign, now) {
            return Ok(false);
        }
        match self.store.replace_enrollment(&ended).await {
            Ok(saved) => {
                self.store.release_dial_slot(&saved.campaign_id, &e.attempt_key().to_string()).await?;
                tracing::warn!(enrollment = %saved.id, reason = %why, status = %saved.status, "in-flight attempt without a call ended");
                Ok(true)
            }
            // Changed meanwhile (its outcome arrived): the next step looks again.
            Err(StoreError::Stale(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Asks the providers for the state of a call we have not heard about for
    /// the quiet period (callbacks sent while we were down are never resent)
    /// and applies what they say through the normal merge path, kept as an
    /// event like a webhook. At most once per quiet period per call. Returns
    /// the merged call when something was applied.
    async fn ask_provider(&self, call: &Call, now: DateTime<Utc>) -> StoreResult<Option<Call>> {
        {
            let mut asked = self.asked.lock().unwrap_or_else(|p| p.into_inner());
            if asked.get(&call.id).is_some_and(|t| now - *t < self.quiet) {
                return Ok(None);
            }
            asked.insert(call.id.clone(), now);
            if asked.len() > 100_000 {
                let quiet = self.quiet;
                asked.retain(|_, t| now - *t < quiet);
            }
        }
        let mut merged = None;
        if let (Some(tw), Some(sid)) = (&self.twilio, &call.call_sid) {
            match tw.fetch_call(sid).await {
                Ok(found) => {
                    let mut update = found.to_update();
                    update.id = Some(call.id.clone());
                    let status = update.status.map(|s| s.as_str()).unwrap_or("unknown");
                    let event = switchboard_storage::NewEvent {
                        id: switchboard_domain::EventId::new(),
                        source: Source::Twilio,
                        event_type: format!("twilio.reconciled.{status}"),
                        occurred_at: update.observed_at.unwrap_or(now),
                        received_at: now,
                        dedupe_key: format!("twilio:reconciled:{sid}:{status}"),
                        sequence: None,
                        payload: serde_json::to_value(&found).unwrap_or_default(),
                    };
                    if let switchboard_storage::WebhookOutcome::Applied(o) =
                        self.store.record_webhook(&update, event).await?
                    {
                        merged = Some(o.call);
                    }
                }
                Err(err) => {
                    tracing::warn!(call = %call.id, call_sid = %sid, error = %err, "Twilio could not tell the call's state")
                }
            }
        }
        if let (Some(el), Some(conv)) = (&self.elevenlabs, &call.conversation_id) {
            match el.get_conversation(conv).await {
                Ok(doc) => {
                    let mut update = CallUpdate {
                        id: Some(call.id.clone()),
                        source: Some(Source::ElevenLabs),
                        conversation_id: Some(conv.clone()),
                        observed_at: Some(now),
                        ..Default::default()
                    };
                    crate::integrations::elevenlabs::conversation_facts(&doc, &mut update);
                    let status = update.conversation_status.clone().unwrap_or_else(|| "unknown".into());
                    let event = switchboard_storage::NewEvent {
                        id: switchboard_domain::EventId::new(),
                        source: Source::ElevenLabs,
                        event_type: "elevenlabs.reconciled".into(),
                        occurred_at: now,
                        received_at: now,
                        dedupe_key: format!("elevenlabs:reconciled:{conv}:{status}"),
                        sequence: None,
                        payload: doc,
                    };
                    if let switchboard_storage::WebhookOutcome::Applied(o) =
                        self.store.record_webhook(&update, event).await?
                    {
                        merged = Some(o.call);
                    }
                }
                Err(err) => {
                    tracing::warn!(call = %call.id, conversation_id = %conv, error = %err, "ElevenLabs could not tell the conversation's state")
                }
            }
        }
        if let Some(c) = &merged {
            tracing::info!(call = %c.id, status = %c.status, "call state reconciled from the provider");
        }
        Ok(merged)
    }

    async fn dial(&self, campaign: &Campaign, mut now: DateTime<Utc>, report: &mut StepReport) -> StoreResult<()> {
        let started = std::time::Instant::now();
        for _ in 0..CLAIMS_PER_STEP {
            let Some(claimed) = self.store.claim_enrollment(&campaign.id, now, &self.owner, now + self.lease).await?
            else {
                return Ok(());
            };
            let Some(contact) = self.store.get_contact(&claimed.contact_id).await? else {
                let mut gone = claimed.clone();
                gone.skip("contact deleted".into(), now);
                self.store.replace_enrollment(&gone).await?;
                report.finished_without_call += 1;
                continue;
            };
            // Fresh campaign state: a pause or settings change since the step began applies now.
            let fresh = self.store.get_campaign(&campaign.id).await?.unwrap_or_else(|| campaign.clone());
            let verdict = evaluate(&fresh, &contact, &claimed.as_unclaimed(), now);
            if !verdict.dialable {
                let mut back = claimed.clone();
                let why = serde_json::to_string(&verdict.reasons).unwrap_or_default();
                match verdict.next_dialable_at {
                    Some(next) => {
                        back.release_claim(Some(next), why, now);
                        report.deferred += 1;
                    }
                    None if fresh.status.is_final() || fresh.status != CampaignStatus::Running => {
                        // Paused or stopped meanwhile: leave it waiting, unchanged.
                        back.release_claim(None, why, now);
                        report.deferred += 1;
                    }
                    None => {
                        back.finish_without_call(why, now);
                        report.finished_without_call += 1;
                    }
                }
                self.store.replace_enrollment(&back).await?;
                if fresh.status != CampaignStatus::Running {
                    return Ok(());
                }
                continue;
            }
            let key = claimed.next_attempt_key().to_string();
            let mut grant = self.store.acquire_dial_slot(&campaign.id, &key, now).await?;
            // On the real clock, wait out a short pacing gap within this step's budget.
            while let (SlotGrant::Paced(next), Some(budget)) = (&grant, self.live_budget) {
                let wait = (*next - switchboard_domain::time::now_ms()).to_std().unwrap_or_default();
                if started.elapsed() + wait > budget {
                    break;
                }
                tokio::time::sleep(wait).await;
                now = switchboard_domain::time::now_ms();
                grant = self.store.acquire_dial_slot(&campaign.id, &key, now).await?;
            }
            match grant {
                SlotGrant::Granted => {}
                other => {
                    // No capacity now: hand it back untouched (still due) and stop this campaign for this step.
                    let mut back = claimed.clone();
                    back.hand_back();
                    self.store.replace_enrollment(&back).await?;
                    tracing::trace!(campaign = %campaign.id, gate = ?other, "dial gate closed for now");
                    return Ok(());
                }
            }
            if self.place(&fresh, &contact, claimed, &key, now).await? {
                report.placed += 1;
            } else {
                report.placement_failures += 1;
            }
        }
        Ok(())
    }

    /// Records the attempt and the call, then asks the provider. Returns whether the call was placed.
    async fn place(
        &self,
        campaign: &Campaign,
        contact: &Contact,
        claimed: Enrollment,
        key: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let call_id = CallId::new();
        let from = match campaign.dial_mode {
            DialMode::TwilioFirst => campaign.agent.caller_id.clone(),
            DialMode::ElevenLabsNative => None,
        };
        let record = CallUpdate {
            id: Some(call_id.clone()),
            source: Some(Source::Switchboard),
            observed_at: Some(now),
            status: Some(CallStatus::Queued),
            direction: Some(switchboard_domain::Direction::OutboundApi),
            to: Some(contact.phone.clone()),
            from,
            campaign_id: Some(campaign.id.clone()),
            contact_id: Some(contact.id.clone()),
            enrollment_id: Some(claimed.id.clone()),
            agent_id: Some(campaign.agent.agent_id.clone()),
            ..Default::default()
        };
        self.store.upsert_call(&record).await?;
        let mut placed = claimed.clone();
        placed.placed(call_id.clone(), now);
        let placed = match self.store.replace_enrollment(&placed).await {
            Ok(p) => p,
            Err(StoreError::Stale(_)) => {
                // Our lease was recovered by another instance: do not dial.
                self.store.release_dial_slot(&campaign.id, key).await?;
                self.mark_call(&call_id, CallStatus::Canceled, now).await?;
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        let result = self.request(campaign, contact, &placed, &call_id).await;
        match result {
            Ok((call_sid, conversation_id)) => {
                let link = CallUpdate {
                    id: Some(call_id.clone()),
                    source: Some(Source::Switchboard),
                    call_sid,
                    conversation_id,
                    ..Default::default()
                };
                if let Err(e) = self.store.upsert_call(&link).await {
                    // The webhooks carry the same keys; the merge attaches them later.
                    tracing::warn!(call = %call_id, error = %e, "could not attach provider keys right away");
                }
                tracing::info!(campaign = %campaign.id, enrollment = %placed.id, call = %call_id, "call placed");
                Ok(true)
            }
            Err(err) => {
                self.placement_failed(campaign, placed, &call_id, key, err, now).await?;
                Ok(false)
            }
        }
    }

    async fn mark_call(&self, id: &CallId, status: CallStatus, now: DateTime<Utc>) -> StoreResult<Call> {
        let update = CallUpdate {
            id: Some(id.clone()),
            source: Some(Source::Switchboard),
            status: Some(status),
            observed_at: Some(now),
            ..Default::default()
        };
        Ok(self.store.upsert_call(&update).await?.call)
    }

    async fn placement_failed(
        &self,
        campaign: &Campaign,
        placed: Enrollment,
        call_id: &CallId,
        key: &str,
        err: UpstreamError,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let surely_not_placed =
            matches!(err, UpstreamError::RateLimited { .. }) || matches!(&err, UpstreamError::Transport { .. });
        let definite =
            matches!(err, UpstreamError::Rejected { .. } | UpstreamError::Auth { .. } | UpstreamError::NotFound { .. });
        tracing::warn!(campaign = %campaign.id, enrollment = %placed.id, call = %call_id, error = %err, "placement failed");
        if surely_not_placed {
            // Never reached the provider (or it said so): undo the attempt, try again in a minute.
            let mut back = placed.clone();
            back.undo_placement(
                call_id,
                now + Duration::seconds(60),
                format!("placement not accepted, retrying: {err}"),
            );
            self.store.replace_enrollment(&back).await?;
            self.store.release_dial_slot(&campaign.id, key).await?;
            self.mark_call(call_id, CallStatus::Canceled, now).await?;
        } else if definite {
            let call = self.mark_call(call_id, CallStatus::Failed, now).await?;
            apply_call_outcome(&*self.store, &call, now).await?;
            if let Some(mut e) = self.store.get_enrollment(&placed.id).await? {
                e.placement_refused(format!("placement refused: {err}"));
                let _ = self.store.replace_enrollment(&e).await;
            }
        }
        // Otherwise (5xx, timeout) the provider may have placed it: keep the attempt
        // in flight and wait for its webhooks; reconciliation fails it if none come.
        Ok(())
    }

    /// The provider request of one placement: (call_sid, conversation_id).
    async fn request(
        &self,
        campaign: &Campaign,
        contact: &Contact,
        e: &Enrollment,
        call_id: &CallId,
    ) -> Result<(Option<String>, Option<String>), UpstreamError> {
        let mut vars: std::collections::HashMap<String, serde_json::Value> = campaign
            .agent
            .dynamic_variables
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::String(render_template(v, contact))))
            .collect();
        vars.insert("switchboard_enrollment_id".into(), e.id.to_string().into());
        let mut override_ = serde_json::Map::new();
        if let Some(m) = &campaign.agent.first_message {
            override_.insert("first_message".into(), render_template(m, contact).into());
        }
        if let Some(p) = &campaign.agent.prompt {
            override_.insert("prompt".into(), serde_json::json!({ "prompt": render_template(p, contact) }));
        }
        let client_data = ClientData {
            // The attempt key: echoed back in ElevenLabs webhooks, so the conversation finds its attempt.
            user_id: Some(e.attempt_key().to_string()),
            dynamic_variables: vars,
            conversation_config_override: (!override_.is_empty()).then(|| serde_json::json!({ "agent": override_ })),
        };
        let missing = |what: &str| UpstreamError::Rejected {
            provider: "switchboard",
            status: 0,
            code: None,
            message: format!("{what} is not configured"),
        };
        match campaign.dial_mode {
            DialMode::ElevenLabsNative => {
                let el = self.elevenlabs.as_ref().ok_or_else(|| missing("ElevenLabs (ELEVENLABS_API_KEY)"))?;
                let out = el
                    .outbound_call(&OutboundCall {
                        agent_id: campaign.agent.agent_id.clone(),
                        agent_phone_number_id: campaign.agent.phone_number_id.clone().unwrap_or_default(),
                        to_number: contact.phone.clone(),
                        conversation_initiation_client_data: Some(client_data),
                    })
                    .await?;
                Ok((out.call_sid, out.conversation_id))
            }
            DialMode::TwilioFirst => {
                let el = self.elevenlabs.as_ref().ok_or_else(|| missing("ElevenLabs (ELEVENLABS_API_KEY)"))?;
                let tw =
                    self.twilio.as_ref().ok_or_else(|| missing("Twilio (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN)"))?;
                let from = campaign.agent.caller_id.clone().unwrap_or_default();
                let twiml = el
                    .register_call(&RegisterCall {
                        agent_id: campaign.agent.agent_id.clone(),
                        from_number: from.clone(),
                        to_number: contact.phone.clone(),
                        direction: "outbound".into(),
                        conversation_initiation_client_data: Some(client_data),
                    })
                    .await?;
                let base = &self.callbacks.public_base;
                // Our call id rides in the (signed) callback URLs, so the callbacks find the
                // record made before placement even if the create answer was lost.
                let link = format!("call_id={}", call_id);
                let call = tw
                    .create_call(&CreateCall {
                        to: contact.phone.clone(),
                        from,
                        twiml: Some(twiml),
                        status_callback: Some(format!("{base}/webhooks/twilio/status?{link}")),
                        status_callback_events: vec![
                            "initiated".into(),
                            "ringing".into(),
                            "answered".into(),
                            "completed".into(),
                        ],
                        record: true,
                        machine_detection: Some("Enable".into()),
                        async_amd: true,
                        async_amd_status_callback: Some(format!("{base}/webhooks/twilio/amd?{link}")),
                        ..Default::default()
                    })
                    .await?;
                Ok((Some(call.sid), None))
            }
        }
    }

    /// Completes a running campaign when no enrollment can ever be dialled again.
    async fn maybe_complete(&self, campaign: &Campaign, now: DateTime<Utc>) -> StoreResult<bool> {
        let counts = self.store.count_enrollments(&campaign.id).await?;
        let total: u64 = counts.iter().map(|(_, n)| n).sum();
        let open: u64 = counts.iter().filter(|(s, _)| !s.is_final()).map(|(_, n)| n).sum();
        if total == 0 || open > 0 {
            return Ok(false);
        }
        let Some(mut c) = self.store.get_campaign(&campaign.id).await? else { return Ok(false) };
        if c.status != CampaignStatus::Running {
            return Ok(false);
        }
        c.status = CampaignStatus::Completed;
        c.updated_at = now;
        match self.store.replace_campaign(&c).await {
            Ok(_) => {
                tracing::info!(campaign = %c.id, "campaign completed: every enrollment is final");
                Ok(true)
            }
            Err(StoreError::Stale(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_contact_fields_and_keep_unknown_ones() {
        let c = switchboard_domain::ContactInput {
            phone: Some("+14155552671".into()),
            name: Some("Dana".into()),
            custom: Some(
                [("plan".to_owned(), serde_json::json!("gold")), ("n".to_owned(), serde_json::json!(3))].into(),
            ),
            ..Default::default()
        }
        .validate("US", switchboard_domain::time::now_ms())
        .unwrap();
        assert_eq!(
            render_template(
                "Hi {{contact.name}} ({{ contact.phone }}), {{contact.custom.plan}}/{{contact.custom.n}} {{other}}",
                &c
            ),
            "Hi Dana (+14155552671), gold/3 {{other}}"
        );
        assert_eq!(render_template("{{contact.email}}|{{unclosed", &c), "|{{unclosed");
    }
}
