//! The storage conformance suite on MongoDB, plus MongoDB-only cases (query
//! plans, validator enforcement, lease fencing, interrupted merges). Runs when
//! `TEST_MONGODB_URI` is set (CI sets it); otherwise prints one loud skip
//! line. Each case gets its own database, dropped afterwards.
//!
//! Skips are bounded: when `TEST_MONGODB_EXPECTED_SKIPS` names a file
//! (relative paths are from the workspace root), the set of skipped cases,
//! with their reasons, must equal its lines (`case: reason`; `#` comments).
//! Skip lines are written straight to stderr ([`loud`]): `eprintln!` output
//! is captured by the test harness and shown only for failing tests.

use std::collections::BTreeSet;
use std::sync::{Arc, Once};

use async_trait::async_trait;
use chrono::Duration;
use mongodb::bson::{self, Document, doc};
use switchboard_domain::campaign::AgentSettings;
use switchboard_domain::enrollment::Lease;
use switchboard_domain::time::now_ms;
use switchboard_domain::{CallStatus, CallUpdate, CampaignInput, ContactInput, Source};
use switchboard_storage::conformance::{Harness, gated_cases, loud, skipped_cases};
use switchboard_storage::{
    CallStore, CampaignStore, ContactFilter, ContactSort, ContactStore, EnrollmentStore, OnDuplicate, Storage,
    StoreError, conformance_tests,
};
use switchboard_storage_mongo::schema::{ContactAfter, contact_page_queries};
use switchboard_storage_mongo::{
    MongoSettings, MongoStore, ServerGaps, hot_queries, map_err, plan_stages, winning_plan,
};

struct MongoHarness {
    settings: MongoSettings,
    first: MongoStore,
}

impl MongoHarness {
    async fn connect(&self) -> MongoStore {
        let mut s = MongoStore::connect(&self.settings).await.expect("connect");
        s.probe_server_gaps().await;
        s
    }
}

#[async_trait]
impl Harness for MongoHarness {
    async fn open(&self) -> Arc<dyn Storage> {
        // A second client gets its own connection pool.
        Arc::new(self.connect().await)
    }
    async fn cleanup(&self) {
        let _ = self.first.database().drop().await;
    }
}

static SKIP: Once = Once::new();
static CAPS: Once = Once::new();

async fn fresh() -> Option<MongoHarness> {
    let Ok(uri) = std::env::var("TEST_MONGODB_URI") else {
        SKIP.call_once(|| {
            loud("!!!!! SKIPPED: MongoDB conformance suite — TEST_MONGODB_URI is not set (set it to run against a real server) !!!!!")
        });
        return None;
    };
    let db = format!("sb_test_{}", uuid::Uuid::new_v4().simple());
    let mut settings = MongoSettings::new(uri, db);
    settings.connect_attempts = 2;
    let mut store =
        MongoStore::connect(&settings).await.expect("TEST_MONGODB_URI is set but the server is unreachable");
    let gaps = store.probe_server_gaps().await;
    CAPS.call_once(|| {
        loud(&format!(
            "MongoDB deployment (hello): {:?}; transactions {}",
            store.deployment(),
            if store.uses_transactions() { "used" } else { "not available: staged merges" }
        ));
        for g in &gaps {
            loud(&format!("MongoDB server gap (probed): {g}"));
        }
    });
    store.migrate().await.expect("migrate");
    Some(MongoHarness { settings, first: store })
}

async fn mongo() -> Option<Box<dyn Harness>> {
    Some(Box::new(fresh().await?))
}

conformance_tests!(mongo);

// ---- MongoDB-only cases ----

/// MongoDB-only cases a server may not support, and why (the one place their skips are decided).
fn mongo_skip_reason(case: &str, gaps: &ServerGaps) -> Option<&'static str> {
    match case {
        "hot_queries_are_index_scans" if gaps.no_explain_plans => {
            Some("the server's explain has no queryPlanner.winningPlan document")
        }
        "contact_filters_are_index_scans" if gaps.no_explain_plans => {
            Some("the server's explain has no queryPlanner.winningPlan document")
        }
        "the_validator_rejects_a_document_breaking_the_schema" if gaps.no_validation => {
            Some("the server accepts documents its $jsonSchema validator forbids")
        }
        "migrate_replaces_the_type_filtered_key_indexes" if gaps.no_schema_introspection => {
            Some("the server does not report index names back")
        }
        _ => None,
    }
}

const MONGO_CASES: &[&str] = &[
    "hot_queries_are_index_scans",
    "contact_filters_are_index_scans",
    "the_validator_rejects_a_document_breaking_the_schema",
    "a_stale_lease_holder_cannot_match_the_new_holders_document",
    "an_interrupted_merge_is_completed_and_never_loses_a_key",
    "migrate_replaces_the_type_filtered_key_indexes",
    "writes_are_majority_and_journaled_whatever_the_uri_says",
    "a_failed_all_or_nothing_import_keeps_nothing",
];

fn runs(h: &MongoHarness, case: &str) -> bool {
    match mongo_skip_reason(case, h.first.gaps()) {
        None => true,
        Some(reason) => {
            loud(&format!("SKIPPED (capability) {case} on mongodb: {reason}"));
            false
        }
    }
}

/// Every hot query shape (webhooks, dialer) is served by its index: the
/// winning plan scans exactly the expected indexes (`IXSCAN`, or `IDHACK` /
/// `EXPRESS_*` for `_id`) and never the collection.
#[tokio::test]
async fn hot_queries_are_index_scans() {
    let Some(h) = fresh().await else { return };
    seed_hot_data(&h.first).await;
    if runs(&h, "hot_queries_are_index_scans") {
        for q in hot_queries() {
            let reply = h.first.explain_hot_query(&q).await.expect("explain");
            let plan = winning_plan(&reply).expect("probed: winningPlan is a document");
            let stages = plan_stages(plan);
            assert!(!stages.is_empty(), "{}: no stages in {plan}", q.name);
            assert!(!stages.iter().any(|(s, _)| s == "COLLSCAN"), "{}: collection scan: {plan}", q.name);
            let scanned: BTreeSet<&str> =
                stages.iter().filter(|(s, _)| s.contains("IXSCAN")).filter_map(|(_, i)| i.as_deref()).collect();
            let by_id = stages.iter().any(|(s, _)| s == "IDHACK" || s.starts_with("EXPRESS"));
            for want in &q.indexes {
                assert!(
                    scanned.contains(want) || (*want == "_id_" && by_id),
                    "{}: expected an index scan of {want}, plan {plan}",
                    q.name
                );
            }
            let expected: BTreeSet<&str> = q.indexes.iter().copied().collect();
            assert!(scanned.is_subset(&expected), "{}: scanned {scanned:?}, expected {expected:?}", q.name);
        }
    }
    h.cleanup().await;
}

/// Every contact filter combination (none, tag, search, dnc and each mix),
/// both sorts, first and later pages: each find of the page scans exactly the
/// index `contact_page_queries` names for it, never the collection, and never
/// sorts in memory (`SORT_MERGE` of the two `dnc` points is a merge, not a sort).
#[tokio::test]
async fn contact_filters_are_index_scans() {
    let Some(h) = fresh().await else { return };
    if runs(&h, "contact_filters_are_index_scans") {
        seed_contacts(&h.first).await;
        let coll = h.first.database().collection::<Document>("contacts");
        let id0 = format!("con_{}", "0".repeat(32));
        let mut checked = 0;
        for search in [None, Some("da"), Some("+1415555"), Some("walter 1")] {
            for tag in [None, Some("vip")] {
                for dnc in [None, Some(true), Some(false)] {
                    let f = ContactFilter { search: search.map(Into::into), tag: tag.map(Into::into), dnc };
                    let afters = if search.is_some() {
                        vec![
                            None,
                            Some(ContactAfter::Matched(0, "dana".into(), id0.clone())),
                            Some(ContactAfter::Matched(1, "dale".into(), id0.clone())),
                            Some(ContactAfter::Matched(2, "+1415555".into(), id0.clone())),
                        ]
                    } else {
                        vec![None, Some(ContactAfter::Created(now_ms().timestamp_millis(), id0.clone()))]
                    };
                    for sort in [ContactSort::CreatedDesc, ContactSort::CreatedAsc] {
                        for after in &afters {
                            for q in contact_page_queries(&f, sort, after.as_ref()) {
                                let find = doc! {
                                    "find": coll.name(), "filter": q.filter.clone(), "sort": q.sort.clone(), "limit": 51,
                                };
                                let reply = h
                                    .first
                                    .database()
                                    .run_command(doc! { "explain": find, "verbosity": "queryPlanner" })
                                    .await
                                    .expect("explain");
                                let plan = winning_plan(&reply).expect("probed: winningPlan is a document");
                                let stages = plan_stages(plan);
                                let what =
                                    format!("{f:?} {sort:?} after {after:?}: filter {} sort {}", q.filter, q.sort);
                                assert!(!stages.is_empty(), "{what}: no stages in {plan}");
                                assert!(
                                    !stages.iter().any(|(s, _)| s == "COLLSCAN"),
                                    "{what}: collection scan: {plan}"
                                );
                                assert!(!stages.iter().any(|(s, _)| s == "SORT"), "{what}: in-memory sort: {plan}");
                                let scanned: BTreeSet<&str> = stages
                                    .iter()
                                    .filter(|(s, _)| s.contains("IXSCAN"))
                                    .filter_map(|(_, i)| i.as_deref())
                                    .collect();
                                assert_eq!(scanned, BTreeSet::from([q.index]), "{what}: plan {plan}");
                                checked += 1;
                            }
                        }
                    }
                }
            }
        }
        assert!(checked > 100, "{checked} finds checked");
    }
    h.cleanup().await;
}

/// 300 contacts: names and e-mails sharing prefixes, a common and a rare tag, some on do-not-call.
async fn seed_contacts(s: &MongoStore) {
    let names = ["Dana", "Dale", "Fox", "Walter", "Monica", "John"];
    let mut batch = Vec::new();
    for i in 0..300u32 {
        let n = names[i as usize % names.len()];
        let tags: Vec<String> = match i % 10 {
            0 => vec!["vip".into(), "west".into()],
            1..=5 => vec!["west".into()],
            _ => vec![],
        };
        batch.push(
            ContactInput {
                phone: Some(format!("+1415555{i:04}")),
                name: Some(format!("{n} {i}")),
                email: Some(format!("{}.{i}@example.com", names[(i as usize + 1) % names.len()].to_lowercase())),
                tags: Some(tags),
                do_not_call: Some(i % 7 == 0),
                ..Default::default()
            }
            .validate("US", now_ms())
            .unwrap(),
        );
    }
    s.insert_contacts(&batch, OnDuplicate::Fail).await.unwrap();
}

/// Data under the sample ids of [`hot_queries`]: a campaign with 40 enrolled
/// contacts (so the campaign-prefixed indexes are real competitors), calls and events.
async fn seed_hot_data(s: &MongoStore) {
    let now = now_ms();
    let mut campaign = CampaignInput {
        name: Some("Hot".into()),
        agent: Some(AgentSettings {
            agent_id: "a".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
    .apply(None, now)
    .unwrap();
    campaign.id = switchboard_domain::CampaignId::parse(switchboard_storage_mongo::HOT_CAMPAIGN).unwrap();
    s.insert_campaign(&campaign).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..40 {
        let mut c = ContactInput { phone: Some(format!("+1415555{:04}", 3000 + i)), ..Default::default() }
            .validate("US", now)
            .unwrap();
        if i == 7 {
            c.id = switchboard_domain::ContactId::parse(switchboard_storage_mongo::HOT_CONTACT).unwrap();
        }
        s.insert_contact(&c).await.unwrap();
        ids.push(c.id);
    }
    s.enroll(&campaign.id, &ids, now).await.unwrap();
    for i in 0..20u64 {
        let mut u = CallUpdate {
            source: Some(Source::Twilio),
            call_sid: Some(sid(500 + i)),
            conversation_id: Some(format!("conv_hot_{i}")),
            status: Some(CallStatus::Ringing),
            ..Default::default()
        };
        if i == 0 {
            u.id = Some(switchboard_domain::CallId::parse(switchboard_storage_mongo::HOT_CALL).unwrap());
        }
        s.upsert_call(&u).await.unwrap();
    }
}

fn sample_call_doc() -> Document {
    let t = bson::DateTime::from_millis(1_794_916_542_123);
    doc! {
        "_id": format!("call_{}", uuid::Uuid::new_v4().simple()),
        "status": "completed",
        "started_at": t, "created_at": t, "updated_at": t,
        "version": 1_i64,
    }
}

/// A document that breaks the `calls` schema, written straight through the
/// driver, is rejected with code 121, which the adapter maps to a 5xx error.
#[tokio::test]
async fn the_validator_rejects_a_document_breaking_the_schema() {
    let Some(h) = fresh().await else { return };
    if runs(&h, "the_validator_rejects_a_document_breaking_the_schema") {
        let calls = h.first.database().collection::<Document>("calls");
        calls.insert_one(sample_call_doc()).await.expect("a well-formed document is accepted");
        let mut bad_status = sample_call_doc();
        bad_status.insert("status", "teleported");
        let mut string_date = sample_call_doc();
        string_date.insert("started_at", "2026-11-18T08:35:42.123Z");
        let mut no_version = sample_call_doc();
        no_version.remove("version");
        for bad in [bad_status, string_date, no_version] {
            let e = calls.insert_one(bad.clone()).await.expect_err(&format!("accepted {bad}"));
            let rejected = matches!(e.kind.as_ref(), mongodb::error::ErrorKind::Write(mongodb::error::WriteFailure::WriteError(w)) if w.code == 121);
            assert!(rejected, "expected a validation failure (121), got {e}");
            assert!(
                matches!(map_err(e), StoreError::Other(_)),
                "a validator rejection is a 5xx, not the sender's fault"
            );
        }
    }
    h.cleanup().await;
}

/// The dialer's compare-and-set names the lease holder: a stale holder's write
/// does not match a document another holder took over, even at the same version.
#[tokio::test]
async fn a_stale_lease_holder_cannot_match_the_new_holders_document() {
    let Some(h) = fresh().await else { return };
    let s = &h.first;
    let now = now_ms();
    let campaign = CampaignInput {
        name: Some("Fence".into()),
        agent: Some(AgentSettings {
            agent_id: "a".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
    .apply(None, now)
    .unwrap();
    s.insert_campaign(&campaign).await.unwrap();
    let contact =
        ContactInput { phone: Some("+14155552671".into()), ..Default::default() }.validate("US", now).unwrap();
    s.insert_contact(&contact).await.unwrap();
    s.enroll(&campaign.id, std::slice::from_ref(&contact.id), now).await.unwrap();
    let mut held = s.find_enrollment(&campaign.id, &contact.id).await.unwrap().unwrap();
    held.lease = Some(Lease { owner: "dialer-a".into(), expires_at: now + Duration::seconds(30) });
    let held = s.replace_enrollment(&held).await.unwrap();
    let enrollments = s.database().collection::<Document>("campaign_contacts");
    // Another holder's lease, same version: the owner in the filter tells them apart.
    enrollments
        .update_one(doc! { "_id": held.id.as_str() }, doc! { "$set": { "lease.owner": "dialer-b" } })
        .await
        .unwrap();
    let mut stale = held.clone();
    stale.reason = Some("still mine".into());
    assert!(matches!(s.replace_enrollment(&stale).await, Err(StoreError::Stale(_))), "owner fences");
    // A later claim's fencing token, same version: the token tells them apart even when the lease is cleared.
    enrollments
        .update_one(
            doc! { "_id": held.id.as_str() },
            doc! { "$set": { "lease.owner": "dialer-a" }, "$inc": { "lease_token": 1_i64 } },
        )
        .await
        .unwrap();
    let mut released = held.clone();
    released.lease = None;
    assert!(matches!(s.replace_enrollment(&released).await, Err(StoreError::Stale(_))), "token fences");
    // The current holder (right owner and token) writes.
    let mut current = s.get_enrollment(&held.id).await.unwrap().unwrap();
    current.lease = None;
    s.replace_enrollment(&current).await.expect("the current holder's write matches");
    h.cleanup().await;
}

fn sid(n: u64) -> String {
    format!("CA{n:032x}")
}

/// A merge without a transaction that stopped after step 1 (survivor marked,
/// absorbed record still there) or after step 3 (absorbed record deleted,
/// keys still in `absorbing`) loses no key: lookups by either key find the
/// survivor, and the next upsert completes the merge.
#[tokio::test]
async fn an_interrupted_merge_is_completed_and_never_loses_a_key() {
    let Some(h) = fresh().await else { return };
    let s = &h.first;
    let calls = s.database().collection::<Document>("calls");
    for (n, crash_after_delete) in [(1_u64, false), (2, true)] {
        let conv = format!("conv_crash_{n}");
        let t = now_ms();
        let keep = s
            .upsert_call(&CallUpdate {
                source: Some(Source::Switchboard),
                id: Some(switchboard_domain::CallId::new()),
                status: Some(CallStatus::Queued),
                ..Default::default()
            })
            .await
            .unwrap()
            .call;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let gone = s
            .upsert_call(&CallUpdate {
                source: Some(Source::ElevenLabs),
                observed_at: Some(t),
                conversation_id: Some(conv.clone()),
                call_sid: Some(sid(n)),
                ..Default::default()
            })
            .await
            .unwrap()
            .call;
        // Step 1 as the staged merge writes it: the survivor holds the absorbed record's keys aside.
        calls
            .update_one(
                doc! { "_id": keep.id.as_str() },
                doc! {
                    "$set": { "absorbing": { "id": gone.id.as_str(), "call_sid": sid(n), "conversation_id": conv.as_str() } },
                    "$inc": { "version": 1_i64 },
                },
            )
            .await
            .unwrap();
        if crash_after_delete {
            calls.delete_one(doc! { "_id": gone.id.as_str() }).await.unwrap();
            // Every key is still on some record.
            assert_eq!(s.find_call_by_sid(&sid(n)).await.unwrap().map(|c| c.id), Some(keep.id.clone()));
            assert_eq!(s.find_call_by_conversation(&conv).await.unwrap().map(|c| c.id), Some(keep.id.clone()));
        }
        // The next webhook, by one key only, completes the merge.
        let o = s
            .upsert_call(&CallUpdate {
                source: Some(Source::ElevenLabs),
                conversation_id: Some(conv.clone()),
                agent_id: Some("agent_x".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(o.call.id, keep.id, "case {n}");
        assert_eq!(o.call.call_sid.as_deref(), Some(sid(n).as_str()), "case {n}");
        assert_eq!(o.call.conversation_id.as_deref(), Some(conv.as_str()), "case {n}");
        let stored = calls.find_one(doc! { "_id": keep.id.as_str() }).await.unwrap().unwrap();
        assert!(!stored.contains_key("absorbing"), "case {n}: merge completed: {stored}");
        assert_eq!(stored.get_str("call_sid").ok(), Some(sid(n).as_str()));
        assert_eq!(stored.get_str("conversation_id").ok(), Some(conv.as_str()));
        assert!(calls.find_one(doc! { "_id": gone.id.as_str() }).await.unwrap().is_none(), "case {n}");
    }
    assert_eq!(s.count_calls().await.unwrap(), 2);
    // A lookup that raced with steps 1–3 created a second record under a held key: the
    // promotion collides with it, and the survivor absorbs that record too.
    let conv = "conv_crash_3".to_owned();
    let keep = s
        .upsert_call(&CallUpdate {
            source: Some(Source::Switchboard),
            id: Some(switchboard_domain::CallId::new()),
            status: Some(CallStatus::Queued),
            ..Default::default()
        })
        .await
        .unwrap()
        .call;
    let interloper = s
        .upsert_call(&CallUpdate {
            source: Some(Source::Twilio),
            call_sid: Some(sid(3)),
            status: Some(CallStatus::Ringing),
            ..Default::default()
        })
        .await
        .unwrap()
        .call;
    calls
        .update_one(
            doc! { "_id": keep.id.as_str() },
            doc! {
                "$set": { "absorbing": {
                    "id": switchboard_domain::CallId::new().as_str(), "call_sid": sid(3), "conversation_id": conv.as_str() } },
                "$inc": { "version": 1_i64 },
            },
        )
        .await
        .unwrap();
    let o = s
        .upsert_call(&CallUpdate {
            source: Some(Source::ElevenLabs),
            conversation_id: Some(conv.clone()),
            agent_id: Some("agent_x".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(o.call.id, keep.id);
    assert_eq!(o.call.call_sid.as_deref(), Some(sid(3).as_str()));
    assert_eq!(o.call.conversation_id.as_deref(), Some(conv.as_str()));
    assert_eq!(o.call.status, CallStatus::Ringing, "the interloper's facts are merged");
    assert!(calls.find_one(doc! { "_id": interloper.id.as_str() }).await.unwrap().is_none());
    assert_eq!(s.find_call_by_sid(&sid(3)).await.unwrap().map(|c| c.id), Some(keep.id.clone()));
    assert_eq!(s.count_calls().await.unwrap(), 3);
    h.cleanup().await;
}

/// A database migrated before the key indexes were fixed has
/// `call_sid_uq` / `conversation_id_uq` partial on `$type: "string"` (never
/// used by an equality); `migrate` replaces them and reports no drift.
#[tokio::test]
async fn migrate_replaces_the_type_filtered_key_indexes() {
    let Some(h) = fresh().await else { return };
    if runs(&h, "migrate_replaces_the_type_filtered_key_indexes") {
        let calls = h.first.database().collection::<Document>("calls");
        for name in ["call_sid_present_uq", "conversation_id_present_uq"] {
            calls.drop_index(name).await.expect("drop the new index to recreate the old layout");
        }
        for (name, field) in [("call_sid_uq", "call_sid"), ("conversation_id_uq", "conversation_id")] {
            let opts = mongodb::options::IndexOptions::builder()
                .name(name.to_owned())
                .unique(true)
                .partial_filter_expression(doc! { field: { "$type": "string" } })
                .build();
            calls
                .create_index(mongodb::IndexModel::builder().keys(doc! { field: 1 }).options(opts).build())
                .await
                .unwrap();
        }
        let report = h.first.migrate().await.unwrap();
        let names: Vec<String> = {
            use futures::TryStreamExt;
            let models: Vec<mongodb::IndexModel> = calls.list_indexes().await.unwrap().try_collect().await.unwrap();
            models.iter().filter_map(|m| m.options.as_ref().and_then(|o| o.name.clone())).collect()
        };
        for old in ["call_sid_uq", "conversation_id_uq"] {
            assert!(!names.iter().any(|n| n == old), "{old} still there: {names:?} (report {:?})", report.applied);
        }
        for new in ["call_sid_present_uq", "conversation_id_present_uq"] {
            assert!(names.iter().any(|n| n == new), "{new} missing: {names:?}");
        }
        assert_eq!(h.first.check_schema().await.unwrap(), vec![]);
    }
    h.cleanup().await;
}

/// Every write is acknowledged by a majority, journaled, even when the URI asks for less.
#[tokio::test]
async fn writes_are_majority_and_journaled_whatever_the_uri_says() {
    let Some(h) = fresh().await else { return };
    let want = switchboard_storage_mongo::durable_write_concern();
    assert_eq!(h.first.write_concern(), &want);
    assert_eq!(h.first.database().write_concern(), Some(&want));
    assert_eq!(h.first.database().collection::<Document>("calls").write_concern(), Some(&want));
    let uri = std::env::var("TEST_MONGODB_URI").unwrap();
    let weak = if uri.contains('?') {
        format!("{uri}&w=1&journal=false")
    } else if uri.split_once("://").is_some_and(|(_, rest)| rest.contains('/')) {
        format!("{uri}?w=1&journal=false")
    } else {
        format!("{uri}/?w=1&journal=false")
    };
    let mut settings = h.settings.clone();
    settings.uri = weak;
    let s = MongoStore::connect(&settings).await.expect("connect with w=1 in the URI");
    assert_eq!(s.write_concern(), &want, "the URI's w=1 is not taken");
    assert_eq!(s.database().write_concern(), Some(&want));
    // The documented override is taken.
    let mut deliberate = h.settings.clone();
    let one = mongodb::options::WriteConcern::builder().w(mongodb::options::Acknowledgment::Nodes(1)).build();
    deliberate.write_concern = Some(one.clone());
    let s = MongoStore::connect(&deliberate).await.unwrap();
    assert_eq!(s.write_concern(), &one);
    h.cleanup().await;
}

/// `OnDuplicate::Fail` keeps nothing of a batch that fails on a duplicate
/// phone found only by the insert itself (here: twice in the batch), so the
/// compensating delete (standalone) or the transaction (replica set) runs.
#[tokio::test]
async fn a_failed_all_or_nothing_import_keeps_nothing() {
    let Some(h) = fresh().await else { return };
    let s = &h.first;
    let now = now_ms();
    let mk = |p: &str| ContactInput { phone: Some(p.into()), ..Default::default() }.validate("US", now).unwrap();
    let batch = vec![mk("+14155550101"), mk("+14155550102"), mk("+14155550101"), mk("+14155550103")];
    let r = s.insert_contacts(&batch, switchboard_storage::OnDuplicate::Fail).await;
    assert!(matches!(r, Err(StoreError::Conflict { .. })), "got {r:?}");
    let left = s.existing_phones(&["+14155550101".into(), "+14155550102".into(), "+14155550103".into()]).await.unwrap();
    assert!(left.is_empty(), "a partial batch was kept: {left:?}");
    // A clean batch goes in whole.
    let ok = s.insert_contacts(&batch[..2], switchboard_storage::OnDuplicate::Fail).await.unwrap();
    assert_eq!(ok.inserted, 2);
    h.cleanup().await;
}

/// The skipped cases, with their reasons, equal the committed list named by
/// `TEST_MONGODB_EXPECTED_SKIPS` (no check when it is unset).
#[tokio::test]
async fn skipped_cases_match_the_expected_list() {
    let Some(h) = fresh().await else { return };
    for g in gated_cases() {
        assert!(CONFORMANCE_CASES.contains(&g), "the skip table names `{g}`, which is not a case");
    }
    let mut actual: BTreeSet<String> = skipped_cases(CONFORMANCE_CASES, &h.first.capabilities())
        .into_iter()
        .map(|(c, r)| format!("{c}: {r}"))
        .collect();
    for c in MONGO_CASES {
        if let Some(r) = mongo_skip_reason(c, h.first.gaps()) {
            actual.insert(format!("{c}: {r}"));
        }
    }
    h.cleanup().await;
    let Ok(path) = std::env::var("TEST_MONGODB_EXPECTED_SKIPS") else {
        loud(&format!(
            "expected-skips check off (TEST_MONGODB_EXPECTED_SKIPS unset); this server skips {} case(s)",
            actual.len()
        ));
        return;
    };
    let path = std::path::Path::new(&path);
    let path = if path.is_relative() {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(path)
    } else {
        path.to_path_buf()
    };
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let expected: BTreeSet<String> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(str::to_owned).collect();
    let unexpected: Vec<&String> = actual.difference(&expected).collect();
    let missing: Vec<&String> = expected.difference(&actual).collect();
    assert!(
        unexpected.is_empty() && missing.is_empty(),
        "skipped MongoDB cases differ from {}:\n  skipped but not listed: {unexpected:#?}\n  listed but not skipped: {missing:#?}",
        path.display()
    );
}
