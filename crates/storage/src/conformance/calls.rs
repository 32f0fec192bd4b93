//! Conformance cases for calls and call events.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use chrono::{DateTime, Duration, Utc};
use switchboard_domain::time::{from_millis, now_ms};
use switchboard_domain::{
    AnsweredBy, Call, CallEvent, CallId, CallStatus, CallUpdate, CampaignId, ContactId, Direction, EnrollmentId,
    EventId, Source,
};

use super::Harness;
use crate::{CallFilter, CallSort, EventFilter, PageRequest, Storage, StoreError};

fn sid(n: u64) -> String {
    format!("CA{n:032x}")
}

/// The campaigns and contacts the call dataset links to (generated once, so
/// every `dataset` call and every filter names the same ones).
static CAMPAIGNS: LazyLock<[CampaignId; 3]> = LazyLock::new(|| std::array::from_fn(|_| CampaignId::new()));
static CONTACTS: LazyLock<[ContactId; 6]> = LazyLock::new(|| std::array::from_fn(|_| ContactId::new()));

fn twilio(call_sid: &str, seq: i64, status: CallStatus, at: DateTime<Utc>) -> CallUpdate {
    CallUpdate {
        source: Some(Source::Twilio),
        observed_at: Some(at),
        call_sid: Some(call_sid.into()),
        sequence: Some(seq),
        status: Some(status),
        direction: Some(Direction::OutboundApi),
        from: Some("+15005550001".into()),
        to: Some("+15005550006".into()),
        account_sid: Some("AC00000000000000000000000000000001".into()),
        ..Default::default()
    }
}

fn eleven(conv: &str, call_sid: Option<&str>, at: DateTime<Utc>) -> CallUpdate {
    CallUpdate {
        source: Some(Source::ElevenLabs),
        observed_at: Some(at),
        conversation_id: Some(conv.into()),
        call_sid: call_sid.map(str::to_owned),
        agent_id: Some("agent_test".into()),
        conversation_status: Some("done".into()),
        call_successful: Some("success".into()),
        transcript_summary: Some("Booked a slot.".into()),
        ..Default::default()
    }
}

fn event(call: &CallId, key: &str, ty: &str, source: Source, at: DateTime<Utc>) -> CallEvent {
    CallEvent {
        id: EventId::new(),
        call_id: call.clone(),
        source,
        event_type: ty.into(),
        occurred_at: at,
        received_at: at,
        dedupe_key: key.into(),
        sequence: None,
        payload: serde_json::json!({ "k": key, "nested": { "n": 1 } }),
    }
}

async fn all_calls(s: &dyn Storage, filter: &CallFilter, sort: CallSort, limit: u32) -> Vec<Call> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(limit);
    loop {
        let p = s.list_calls(filter, sort, &page).await.expect("list_calls");
        assert!(p.items.len() <= limit as usize);
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return out,
        }
    }
}

/// Upserting the same callback twice creates one record and changes nothing the second time.
pub async fn upsert_by_call_sid_is_idempotent(h: &dyn Harness) {
    let s = h.open().await;
    let t = now_ms();
    let u = twilio(&sid(1), 1, CallStatus::Ringing, t);
    let first = s.upsert_call(&u).await.unwrap();
    assert!(first.created && first.changed);
    let second = s.upsert_call(&u).await.unwrap();
    assert!(!second.created && !second.changed, "a replay must be a no-op");
    assert_eq!(second.call, first.call);
    assert_eq!(s.count_calls().await.unwrap(), 1);
    assert_eq!(s.get_call(&first.call.id).await.unwrap(), first.call);
}

/// ElevenLabs first (with the SID), Twilio later: one record carrying both keys.
pub async fn one_record_when_conversation_id_is_seen_before_call_sid(h: &dyn Harness) {
    let s = h.open().await;
    let t = now_ms();
    let a = s.upsert_call(&eleven("conv_a", Some(&sid(2)), t)).await.unwrap();
    let b = s.upsert_call(&twilio(&sid(2), 3, CallStatus::Completed, t - Duration::seconds(30))).await.unwrap();
    assert!(!b.created);
    assert_eq!(a.call.id, b.call.id);
    assert_eq!(b.call.conversation_id.as_deref(), Some("conv_a"));
    assert_eq!(b.call.status, CallStatus::Completed);
    assert_eq!(b.call.started_at, t - Duration::seconds(30));
    assert_eq!(s.count_calls().await.unwrap(), 1);
    let by_conv = s.find_call_by_conversation("conv_a").await.unwrap().unwrap();
    let by_sid = s.find_call_by_sid(&sid(2)).await.unwrap().unwrap();
    assert_eq!(by_conv, by_sid);
}

/// A call first seen by `conversation_id` alone and, separately, by `call_sid`
/// alone becomes one record when an update names both keys.
pub async fn two_records_are_merged_when_a_later_update_links_them(h: &dyn Harness) {
    let s = h.open().await;
    let t = now_ms();
    let conv_only = s.upsert_call(&eleven("conv_b", None, t)).await.unwrap();
    let sid_only = s.upsert_call(&twilio(&sid(3), 2, CallStatus::InProgress, t)).await.unwrap();
    assert_ne!(conv_only.call.id, sid_only.call.id);
    assert!(
        s.insert_event(&event(
            &conv_only.call.id,
            "e-conv",
            "elevenlabs.post_call_transcription",
            Source::ElevenLabs,
            t
        ))
        .await
        .unwrap()
    );
    assert!(
        s.insert_event(&event(&sid_only.call.id, "e-sid", "twilio.status.in-progress", Source::Twilio, t))
            .await
            .unwrap()
    );

    let link = CallUpdate {
        source: Some(Source::ElevenLabs),
        conversation_id: Some("conv_b".into()),
        call_sid: Some(sid(3)),
        ..Default::default()
    };
    let merged = s.upsert_call(&link).await.unwrap();
    assert_eq!(s.count_calls().await.unwrap(), 1, "never two records for one call");
    let survivor = merged.call.id.clone();
    assert_eq!(survivor, conv_only.call.id, "the older record survives");
    assert_eq!(merged.absorbed.as_ref(), Some(&sid_only.call.id));
    assert_eq!(merged.call.status, CallStatus::InProgress, "telephony facts carried over");
    assert_eq!(merged.call.call_successful.as_deref(), Some("success"), "conversation facts kept");
    assert_eq!(merged.call.from.as_deref(), Some("+15005550001"));
    assert_eq!(s.find_call_by_sid(&sid(3)).await.unwrap().unwrap().id, survivor);
    assert!(matches!(s.get_call(&sid_only.call.id).await, Err(StoreError::NotFound(_))));
    let events = s.list_call_events(&survivor, &PageRequest::first(10)).await.unwrap();
    assert_eq!(events.items.len(), 2, "events of the absorbed record are re-pointed");
    // Replaying the link changes nothing.
    let again = s.upsert_call(&link).await.unwrap();
    assert!(!again.changed && again.absorbed.is_none());
}

/// A record created before the call was placed (our id only) and a record an
/// ElevenLabs webhook created with both provider keys are linked by a Twilio
/// callback that carries our id and the Call SID only: both keys end on the
/// surviving record, and later lookups and webhooks by either key find it.
pub async fn a_link_carrying_one_key_keeps_both_keys_on_one_record(h: &dyn Harness) {
    let s = h.open().await;
    let t = now_ms();
    let id = CallId::new();
    let placed = CallUpdate {
        source: Some(Source::Switchboard),
        id: Some(id.clone()),
        status: Some(CallStatus::Queued),
        to: Some("+15005550006".into()),
        ..Default::default()
    };
    let first = s.upsert_call(&placed).await.unwrap();
    assert!(first.created);
    // Created strictly later, so the pre-placement record is the survivor.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let k = sid(40);
    let both = s.upsert_call(&eleven("conv_link", Some(&k), t)).await.unwrap();
    assert!(both.created, "no key of the pre-placement record matches yet");
    assert_ne!(both.call.id, id);
    assert!(
        s.insert_event(&event(&both.call.id, "e-link", "elevenlabs.conversation_initiation", Source::ElevenLabs, t))
            .await
            .unwrap()
    );
    // Twilio's callback: our id (from the callback URL) and the Call SID; no conversation id.
    let callback = CallUpdate { id: Some(id.clone()), ..twilio(&k, 1, CallStatus::Ringing, t + Duration::seconds(1)) };
    let linked = s.upsert_call(&callback).await.unwrap();
    assert_eq!(linked.call.id, id, "the older record survives");
    assert_eq!(linked.absorbed.as_ref(), Some(&both.call.id));
    assert_eq!(linked.call.call_sid.as_deref(), Some(k.as_str()));
    assert_eq!(linked.call.conversation_id.as_deref(), Some("conv_link"), "the absorbed record's other key is kept");
    assert_eq!(s.count_calls().await.unwrap(), 1, "never two records for one call");
    let stored = s.get_call(&id).await.unwrap();
    assert_eq!(stored.call_sid.as_deref(), Some(k.as_str()));
    assert_eq!(stored.conversation_id.as_deref(), Some("conv_link"));
    assert_eq!(s.find_call_by_sid(&k).await.unwrap().map(|c| c.id), Some(id.clone()));
    assert_eq!(s.find_call_by_conversation("conv_link").await.unwrap().map(|c| c.id), Some(id.clone()));
    assert!(matches!(s.get_call(&both.call.id).await, Err(StoreError::NotFound(_))));
    let events = s.list_call_events(&id, &PageRequest::first(10)).await.unwrap().items;
    assert_eq!(events.len(), 1, "the absorbed record's event is re-pointed");
    // Later webhooks by either key alone land on the same record.
    let later = s.upsert_call(&eleven("conv_link", None, t + Duration::seconds(60))).await.unwrap();
    assert!(!later.created);
    assert_eq!(later.call.id, id);
    let done = s.upsert_call(&twilio(&k, 3, CallStatus::Completed, t + Duration::seconds(61))).await.unwrap();
    assert_eq!(done.call.id, id);
    assert_eq!(s.count_calls().await.unwrap(), 1);
}

/// Late and out-of-order callbacks never move the status backwards.
pub async fn status_lattice_never_regresses(h: &dyn Harness) {
    let s = h.open().await;
    let t = now_ms();
    let k = sid(4);
    s.upsert_call(&twilio(&k, 3, CallStatus::Completed, t)).await.unwrap();
    for (seq, st) in [(2, CallStatus::InProgress), (0, CallStatus::Initiated), (1, CallStatus::Ringing)] {
        let o = s.upsert_call(&twilio(&k, seq, st, t - Duration::seconds(10 - seq))).await.unwrap();
        assert_eq!(o.call.status, CallStatus::Completed);
    }
    let call = s.find_call_by_sid(&k).await.unwrap().unwrap();
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.last_sequence, Some(3));
    assert_eq!(call.answered_at, Some(t - Duration::seconds(8)));
}

/// Ten tasks over two handles upsert callbacks of one call at once: one record,
/// and the highest status and sequence win.
pub async fn concurrent_upserts_for_one_call_create_one_record(h: &dyn Harness) {
    let handles: [Arc<dyn Storage>; 2] = [h.open().await, h.open().await];
    let k = sid(5);
    let t = now_ms();
    let statuses = [CallStatus::Initiated, CallStatus::Ringing, CallStatus::InProgress, CallStatus::Completed];
    let mut tasks = Vec::new();
    for i in 0..10usize {
        let s = handles[i % 2].clone();
        let k = k.clone();
        let st = statuses[i % 4];
        tasks.push(tokio::spawn(async move {
            s.upsert_call(&twilio(&k, i as i64, st, t + Duration::milliseconds(i as i64))).await.unwrap()
        }));
    }
    let outcomes = futures::future::join_all(tasks).await;
    let created = outcomes.iter().filter(|o| o.as_ref().unwrap().created).count();
    assert_eq!(created, 1, "exactly one upsert creates the record");
    assert_eq!(handles[0].count_calls().await.unwrap(), 1);
    let call = handles[1].find_call_by_sid(&k).await.unwrap().unwrap();
    assert_eq!(call.status, CallStatus::Completed);
    assert_eq!(call.last_sequence, Some(9));
    assert_eq!(call.started_at, t);
}

/// A second, different Call SID for a record is refused, not silently overwritten.
pub async fn conflicting_provider_key_is_a_conflict(h: &dyn Harness) {
    let s = h.open().await;
    let t = now_ms();
    s.upsert_call(&eleven("conv_c", Some(&sid(6)), t)).await.unwrap();
    let r = s.upsert_call(&eleven("conv_c", Some(&sid(7)), t)).await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "got {r:?}");
    assert!(s.find_call_by_sid(&sid(7)).await.unwrap().is_none(), "nothing half-written");
}

/// An update without any key is rejected before anything is written.
pub async fn update_without_key_is_invalid(h: &dyn Harness) {
    let s = h.open().await;
    let r = s.upsert_call(&CallUpdate { status: Some(CallStatus::Ringing), ..Default::default() }).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))), "got {r:?}");
    assert_eq!(s.count_calls().await.unwrap(), 0);
}

/// The same event twice is stored once; the second insert reports a duplicate.
pub async fn event_replay_is_deduplicated(h: &dyn Harness) {
    let s = h.open().await;
    let t = now_ms();
    let call = s.upsert_call(&twilio(&sid(8), 0, CallStatus::Initiated, t)).await.unwrap().call;
    let e = event(&call.id, "twilio:CA8:0", "twilio.status.initiated", Source::Twilio, t);
    assert!(!s.event_exists(&e.dedupe_key).await.unwrap());
    assert!(s.insert_event(&e).await.unwrap());
    let mut replay = e.clone();
    replay.id = EventId::new();
    assert!(!s.insert_event(&replay).await.unwrap(), "replay is a duplicate, not an error");
    assert!(s.event_exists(&e.dedupe_key).await.unwrap());
    let page = s.list_call_events(&call.id, &PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items, vec![e]);
}

/// Paging through while new calls arrive neither skips nor repeats an existing call.
pub async fn cursor_pagination_is_stable_while_inserting(h: &dyn Harness) {
    let s = h.open().await;
    let base = from_millis(1_790_000_000_000);
    let mut expected = Vec::new();
    for i in 0..50u64 {
        // Pairs share a timestamp so the id tie-breaker is exercised.
        let at = base + Duration::milliseconds((i / 2) as i64 * 1000);
        let c = s.upsert_call(&twilio(&sid(100 + i), 0, CallStatus::Initiated, at)).await.unwrap().call;
        expected.push(c);
    }
    expected.sort_by(|a, b| (b.started_at, &b.id).cmp(&(a.started_at, &a.id)));
    let mut seen = Vec::new();
    let mut page = PageRequest::first(7);
    let mut n = 0;
    loop {
        let p = s.list_calls(&CallFilter::default(), CallSort::StartedAtDesc, &page).await.unwrap();
        seen.extend(p.items.into_iter().map(|c| c.id));
        // Insert newer calls (which sort before the cursor) and one older call.
        n += 1;
        s.upsert_call(&twilio(
            &sid(1000 + n),
            0,
            CallStatus::Initiated,
            base + Duration::days(1) + Duration::seconds(n as i64),
        ))
        .await
        .unwrap();
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<CallId> = expected.iter().map(|c| c.id.clone()).collect();
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no call served twice");
    assert_eq!(seen, want, "every pre-existing call exactly once, in order");
}

/// Millisecond timestamps (and every other field) survive a round trip.
pub async fn timestamps_round_trip_at_millisecond_precision(h: &dyn Harness) {
    let s = h.open().await;
    let t = from_millis(1_794_916_542_123);
    let mut u = twilio(&sid(9), 3, CallStatus::Completed, t);
    u.answered_by = Some(AnsweredBy::MachineEndBeep);
    u.duration_secs = Some(37);
    u.sip_response_code = Some(200);
    u.price = Some("-0.0130".into());
    u.price_unit = Some("USD".into());
    u.campaign_id = Some(CampaignId::new());
    u.contact_id = Some(ContactId::new());
    u.enrollment_id = Some(EnrollmentId::new());
    let created = s.upsert_call(&u).await.unwrap().call;
    let merged = s
        .upsert_call(&CallUpdate {
            cost_credits: Some(412),
            conversation_duration_secs: Some(36),
            termination_reason: Some("end_call".into()),
            ..eleven("conv_t", Some(&sid(9)), t + Duration::milliseconds(7))
        })
        .await
        .unwrap()
        .call;
    // A first callback that is already final, with `CallDuration` 37: the call began 37 s before it ended.
    assert_eq!(created.started_at.timestamp_millis(), 1_794_916_542_123 - 37_000);
    let got = s.get_call(&merged.id).await.unwrap();
    assert_eq!(got, merged, "every field round-trips");
    assert_eq!(got.ended_at, Some(t));
    let e = event(&got.id, "rt", "twilio.status.completed", Source::Twilio, from_millis(1_794_916_542_999));
    s.insert_event(&e).await.unwrap();
    let back = s.list_call_events(&got.id, &PageRequest::first(5)).await.unwrap().items;
    assert_eq!(back, vec![e]);
}

fn dataset(n: usize) -> Vec<Call> {
    let base = from_millis(1_790_000_000_000);
    let statuses = CallStatus::ALL;
    let dirs = [Direction::Inbound, Direction::OutboundApi, Direction::OutboundDial];
    let amd = [None, Some(AnsweredBy::Human), Some(AnsweredBy::MachineStart)];
    (0..n)
        .map(|i| {
            let at = base + Duration::seconds((i as i64 * 7919) % 5000);
            let u = CallUpdate {
                source: Some(Source::Twilio),
                observed_at: Some(at),
                call_sid: Some(sid(10_000 + i as u64)),
                status: Some(statuses[i % statuses.len()]),
                direction: Some(dirs[i % 3]),
                from: Some(format!("+1500555{:04}", i % 4)),
                to: Some(format!("+1600555{:04}", i % 5)),
                answered_by: amd[i % 3],
                campaign_id: (i % 2 == 0).then(|| CAMPAIGNS[i % 3].clone()),
                contact_id: Some(CONTACTS[i % 6].clone()),
                ..Default::default()
            };
            let mut c = Call::new_from(&u, base + Duration::milliseconds(i as i64 * 3)).unwrap();
            if i % 4 == 0 {
                c.agent_id = Some(format!("agent_{}", i % 8));
            }
            c
        })
        .collect()
}

/// Every filter and sort of `GET /calls` returns exactly what the reference
/// predicate selects, in the reference order, across pages.
pub async fn every_call_filter_and_sort_matches_the_reference(h: &dyn Harness) {
    let s = h.open().await;
    let data = dataset(120);
    s.insert_calls_bulk(&data, &[]).await.unwrap();
    let base = from_millis(1_790_000_000_000);
    let filters = vec![
        CallFilter::default(),
        CallFilter { statuses: vec![CallStatus::Completed], ..Default::default() },
        CallFilter {
            statuses: vec![CallStatus::Busy, CallStatus::NoAnswer, CallStatus::Ringing],
            ..Default::default()
        },
        CallFilter { direction: Some(Direction::Inbound), ..Default::default() },
        CallFilter { campaign_id: Some(CAMPAIGNS[0].clone()), ..Default::default() },
        CallFilter { contact_id: Some(CONTACTS[3].clone()), ..Default::default() },
        CallFilter { agent_id: Some("agent_4".into()), ..Default::default() },
        CallFilter { from: Some("+15005550002".into()), ..Default::default() },
        CallFilter { to: Some("+16005550004".into()), ..Default::default() },
        CallFilter { answered_by: Some(AnsweredBy::Human), ..Default::default() },
        CallFilter { started_after: Some(base + Duration::seconds(1000)), ..Default::default() },
        CallFilter { started_before: Some(base + Duration::seconds(2500)), ..Default::default() },
        CallFilter {
            statuses: vec![CallStatus::Completed, CallStatus::Failed],
            campaign_id: Some(CAMPAIGNS[2].clone()),
            started_after: Some(base + Duration::seconds(500)),
            started_before: Some(base + Duration::seconds(4000)),
            ..Default::default()
        },
        CallFilter { campaign_id: Some(CampaignId::new()), ..Default::default() },
    ];
    for sort in [CallSort::StartedAtDesc, CallSort::StartedAtAsc, CallSort::CreatedAtDesc] {
        for f in &filters {
            let mut want: Vec<&Call> = data.iter().filter(|c| f.matches(c)).collect();
            want.sort_by(|a, b| {
                let ka = (sort.key_of(a), a.id.clone());
                let kb = (sort.key_of(b), b.id.clone());
                if sort.descending() { kb.cmp(&ka) } else { ka.cmp(&kb) }
            });
            let got = all_calls(&*s, f, sort, 9).await;
            let want_ids: Vec<&CallId> = want.iter().map(|c| &c.id).collect();
            let got_ids: Vec<&CallId> = got.iter().map(|c| &c.id).collect();
            assert_eq!(got_ids, want_ids, "filter {f:?} sort {}", sort.as_str());
        }
    }
    // Bulk-inserted records read back field for field.
    assert_eq!(&s.get_call(&data[17].id).await.unwrap(), &data[17]);
}

/// Events come back chronologically and the `/events` filters match the reference.
pub async fn event_lists_are_chronological_and_filtered(h: &dyn Harness) {
    let s = h.open().await;
    let base = from_millis(1_790_000_000_000);
    let c1 = s.upsert_call(&twilio(&sid(20), 0, CallStatus::Initiated, base)).await.unwrap().call;
    let c2 = s.upsert_call(&eleven("conv_e", None, base)).await.unwrap().call;
    let mut all = Vec::new();
    for i in 0..30i64 {
        let (call, src, ty) = match i % 3 {
            0 => (&c1, Source::Twilio, "twilio.status.ringing"),
            1 => (&c1, Source::Twilio, "twilio.amd"),
            _ => (&c2, Source::ElevenLabs, "elevenlabs.post_call_transcription"),
        };
        // Out-of-order insertion; equal timestamps in pairs.
        let at = base + Duration::seconds(((i * 13) % 30) / 2);
        let e = event(&call.id, &format!("k{i}"), ty, src, at);
        assert!(s.insert_event(&e).await.unwrap());
        all.push(e);
    }
    all.sort_by(|a, b| (a.occurred_at, &a.id).cmp(&(b.occurred_at, &b.id)));
    // Per call, paginated.
    let mut got = Vec::new();
    let mut page = PageRequest::first(4);
    loop {
        let p = s.list_call_events(&c1.id, &page).await.unwrap();
        got.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => break,
        }
    }
    let want: Vec<&CallEvent> = all.iter().filter(|e| e.call_id == c1.id).collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), want);
    let filters = vec![
        EventFilter::default(),
        EventFilter { event_type: Some("twilio.amd".into()), ..Default::default() },
        EventFilter { event_type: Some("twilio.*".into()), ..Default::default() },
        EventFilter { source: Some(Source::ElevenLabs), ..Default::default() },
        EventFilter {
            occurred_after: Some(base + Duration::seconds(5)),
            occurred_before: Some(base + Duration::seconds(11)),
            ..Default::default()
        },
    ];
    for f in filters {
        let mut got = Vec::new();
        let mut page = PageRequest::first(6);
        loop {
            let p = s.list_events(&f, &page).await.unwrap();
            got.extend(p.items);
            match p.next_cursor {
                Some(c) => page.cursor = Some(c),
                None => break,
            }
        }
        let want: Vec<&CallEvent> = all.iter().filter(|e| f.matches(e)).collect();
        assert_eq!(got.iter().collect::<Vec<_>>(), want, "filter {f:?}");
    }
}

/// Lookups by each key, and a clear NotFound for unknown ids.
pub async fn lookups_by_key_and_missing_ids(h: &dyn Harness) {
    let s = h.open().await;
    assert!(matches!(s.get_call(&CallId::new()).await, Err(StoreError::NotFound(_))));
    assert!(s.find_call_by_sid(&sid(404)).await.unwrap().is_none());
    assert!(s.find_call_by_conversation("conv_missing").await.unwrap().is_none());
    let id = CallId::new();
    let placed = CallUpdate {
        source: Some(Source::Switchboard),
        id: Some(id.clone()),
        status: Some(CallStatus::Queued),
        to: Some("+15005550006".into()),
        campaign_id: Some(CampaignId::new()),
        ..Default::default()
    };
    let o = s.upsert_call(&placed).await.unwrap();
    assert!(o.created);
    assert_eq!(o.call.id, id, "the caller-chosen id is kept");
    // The Call SID arrives later, by id.
    let o2 = s.upsert_call(&CallUpdate { call_sid: Some(sid(21)), ..placed.clone() }).await.unwrap();
    assert_eq!(o2.call.call_sid.as_deref(), Some(sid(21).as_str()));
    assert_eq!(s.find_call_by_sid(&sid(21)).await.unwrap().unwrap().id, id);
    assert!(s.list_call_events(&CallId::new(), &PageRequest::first(5)).await.unwrap().items.is_empty());
}

/// Bulk insert of an existing key is a conflict.
pub async fn bulk_insert_rejects_duplicate_keys(h: &dyn Harness) {
    let s = h.open().await;
    let data = dataset(3);
    s.insert_calls_bulk(&data, &[]).await.unwrap();
    let mut dup = dataset(1);
    dup[0].id = CallId::new();
    let r = s.insert_calls_bulk(&dup, &[]).await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "got {r:?}");
}

/// `migrate` twice is fine and leaves no drift.
pub async fn migrate_is_idempotent_and_reports_no_drift(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "migrate_is_idempotent_and_reports_no_drift") {
        return;
    }
    s.migrate().await.unwrap();
    let again = s.migrate().await.unwrap();
    assert!(again.applied.is_empty(), "second migrate applied {:?}", again.applied);
    assert_eq!(s.check_schema().await.unwrap(), vec![]);
    s.ping().await.unwrap();
}

/// A cursor from another sort or garbage is an invalid request.
pub async fn bad_cursor_is_invalid(h: &dyn Harness) {
    let s = h.open().await;
    for _ in 0..3 {
        s.upsert_call(&twilio(
            &sid(CallId::new().as_str().len() as u64 + rand_u64()),
            0,
            CallStatus::Initiated,
            now_ms(),
        ))
        .await
        .unwrap();
    }
    let p = s.list_calls(&CallFilter::default(), CallSort::StartedAtDesc, &PageRequest::first(1)).await.unwrap();
    let c = p.next_cursor.expect("more pages");
    let r =
        s.list_calls(&CallFilter::default(), CallSort::StartedAtAsc, &PageRequest { limit: 1, cursor: Some(c) }).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))));
    let r = s.list_events(&EventFilter::default(), &PageRequest { limit: 1, cursor: Some("%%%".into()) }).await;
    assert!(matches!(r, Err(StoreError::Invalid(_))));
}

fn rand_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1 << 40);
    N.fetch_add(1, Ordering::Relaxed)
}

fn new_event(key: &str, ty: &str, at: DateTime<Utc>) -> crate::NewEvent {
    crate::NewEvent {
        id: EventId::new(),
        source: Source::Twilio,
        event_type: ty.into(),
        occurred_at: at,
        received_at: at,
        dedupe_key: key.into(),
        sequence: Some(1),
        payload: serde_json::json!({ "CallStatus": "ringing" }),
    }
}

/// A webhook is merged and stored once; its replay writes nothing.
pub async fn record_webhook_merges_and_stores_once(h: &dyn Harness) {
    use crate::WebhookOutcome;
    let s = h.open().await;
    let t = now_ms();
    let u = twilio(&sid(30), 1, CallStatus::Ringing, t);
    let first = s.record_webhook(&u, new_event("wh-1", "twilio.status.ringing", t)).await.unwrap();
    let WebhookOutcome::Applied(o) = first else { panic!("first delivery must apply, got {first:?}") };
    assert!(o.created);
    let replay = s.record_webhook(&u, new_event("wh-1", "twilio.status.ringing", t)).await.unwrap();
    assert_eq!(replay, WebhookOutcome::Replay);
    assert_eq!(s.get_call(&o.call.id).await.unwrap(), o.call, "a replay changes nothing");
    let u2 = twilio(&sid(30), 3, CallStatus::Completed, t + Duration::seconds(30));
    let second =
        s.record_webhook(&u2, new_event("wh-2", "twilio.status.completed", t + Duration::seconds(30))).await.unwrap();
    let WebhookOutcome::Applied(o2) = second else { panic!("a new event applies") };
    assert_eq!(o2.call.id, o.call.id);
    assert_eq!(o2.call.status, CallStatus::Completed);
    let events = s.list_call_events(&o.call.id, &PageRequest::first(10)).await.unwrap().items;
    let keys: Vec<&str> = events.iter().map(|e| e.dedupe_key.as_str()).collect();
    assert_eq!(keys, ["wh-1", "wh-2"]);
    // A webhook that cannot be merged writes neither the call nor the event.
    let bad = CallUpdate { status: Some(CallStatus::Ringing), ..Default::default() };
    assert!(s.record_webhook(&bad, new_event("wh-3", "x", t)).await.is_err());
    assert!(!s.event_exists("wh-3").await.unwrap());
}
