//! Conformance cases for contacts, campaigns, enrollments, claims and the dial gate.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use switchboard_domain::campaign::{AgentSettings, Pacing};
use switchboard_domain::time::now_ms;
use switchboard_domain::{
    Campaign, CampaignInput, CampaignStatus, Contact, ContactId, ContactInput, Enrollment, EnrollmentStatus,
};

use super::Harness;
use crate::{ContactFilter, ContactSort, OnDuplicate, PageRequest, SlotGrant, Storage, StoreError};

fn contact(n: u32, name: &str, tags: &[&str], dnc: bool) -> Contact {
    ContactInput {
        phone: Some(format!("+1415555{n:04}")),
        name: Some(name.into()),
        email: Some(format!("{}{n}@example.com", name.split_whitespace().next().unwrap_or("x").to_lowercase())),
        tags: Some(tags.iter().map(|t| t.to_string()).collect()),
        do_not_call: dnc.then_some(true),
        source: Some("conformance".into()),
        ..Default::default()
    }
    .validate("US", now_ms())
    .expect("valid test contact")
}

fn campaign(max_concurrent: u32, calls_per_minute: u32) -> Campaign {
    let mut c = CampaignInput {
        name: Some("Conformance".into()),
        agent: Some(AgentSettings {
            agent_id: "agent_c".into(),
            caller_id: Some("+15005550001".into()),
            ..Default::default()
        }),
        pacing: Some(Pacing { max_concurrent, calls_per_minute }),
        ..Default::default()
    }
    .apply(None, now_ms())
    .expect("valid test campaign");
    c.status = CampaignStatus::Running;
    c
}

async fn setup(s: &dyn Storage, contacts: u32) -> (Campaign, Vec<ContactId>) {
    s.migrate().await.unwrap();
    let c = campaign(3, 600);
    s.insert_campaign(&c).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..contacts {
        let k = contact(i, "Person", &[], false);
        s.insert_contact(&k).await.unwrap();
        ids.push(k.id);
    }
    let added = s.enroll(&c.id, &ids, now_ms() - Duration::seconds(1)).await.unwrap();
    assert_eq!(added, contacts as u64);
    (c, ids)
}

/// Phone uniqueness, lookups, compare-and-set replace and delete.
pub async fn contacts_are_unique_by_phone_and_replaced_by_version(h: &dyn Harness) {
    let s = h.open().await;
    s.migrate().await.unwrap();
    let a = contact(1, "Dana", &["vip"], false);
    s.insert_contact(&a).await.unwrap();
    let mut dup = contact(1, "Other", &[], false);
    dup.id = ContactId::new();
    assert!(matches!(s.insert_contact(&dup).await, Err(StoreError::Conflict { .. })), "duplicate phone");
    assert_eq!(s.get_contact(&a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(s.find_contact_by_phone(&a.phone).await.unwrap().map(|c| c.id), Some(a.id.clone()));
    assert!(s.find_contact_by_phone("+14155559999").await.unwrap().is_none());
    let existing = s.existing_phones(&[a.phone.clone(), "+14155559999".into()]).await.unwrap();
    assert_eq!(existing, vec![a.phone.clone()]);

    let mut b = a.clone();
    b.name = Some("Dana Scully".into());
    let stored = s.replace_contact(&b).await.unwrap();
    assert_eq!(stored.version, a.version + 1);
    assert_eq!(s.get_contact(&a.id).await.unwrap().unwrap().name.as_deref(), Some("Dana Scully"));
    // A writer holding the old version loses.
    assert!(matches!(s.replace_contact(&b).await, Err(StoreError::Stale(_))), "a lost compare-and-set is typed");
    let mut ghost = b.clone();
    ghost.id = ContactId::new();
    assert!(matches!(s.replace_contact(&ghost).await, Err(StoreError::NotFound(_))));
    assert!(s.delete_contact(&a.id).await.unwrap());
    assert!(!s.delete_contact(&a.id).await.unwrap());
    assert!(s.get_contact(&a.id).await.unwrap().is_none());
}

/// Every contact filter and both sorts match the reference semantics across pages.
pub async fn contact_filters_and_pages_match_the_reference(h: &dyn Harness) {
    let s = h.open().await;
    s.migrate().await.unwrap();
    let names = ["Dana", "Dale", "Fox", "Walter", "Monica", "John"];
    let mut all = Vec::new();
    for i in 0..36u32 {
        let tags: &[&str] = match i % 3 {
            0 => &["vip", "west"],
            1 => &["west"],
            _ => &[],
        };
        let mut c = contact(i, names[i as usize % names.len()], tags, i % 5 == 0);
        if i % 9 == 4 {
            // Matches `da` by e-mail only, so search pages cross from the name stage to the e-mail stage.
            c.name = Some("Zed".into());
            c.email = Some(format!("dale.zed{i}@example.com"));
        }
        s.insert_contact(&c).await.unwrap();
        all.push(c);
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let filters = [
        ContactFilter::default(),
        ContactFilter { search: Some("da".into()), ..Default::default() },
        ContactFilter { search: Some("+1415555001".into()), ..Default::default() },
        ContactFilter { search: Some("1415555002".into()), ..Default::default() },
        ContactFilter { search: Some("walter1".into()), ..Default::default() },
        ContactFilter { tag: Some("VIP".into()), ..Default::default() },
        ContactFilter { dnc: Some(true), ..Default::default() },
        ContactFilter { tag: Some("west".into()), dnc: Some(false), search: Some("d".into()) },
    ];
    for f in &filters {
        for sort in [ContactSort::CreatedDesc, ContactSort::CreatedAsc] {
            let mut got = Vec::new();
            let mut page = PageRequest::first(7);
            loop {
                let p = s.list_contacts(f, sort, &page).await.unwrap();
                got.extend(p.items.into_iter().map(|c| c.id));
                match p.next_cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
            let mut want: Vec<&Contact> = all.iter().filter(|c| f.matches(c)).collect();
            want.sort_by_key(|c| (c.created_at, c.id.clone()));
            if sort == ContactSort::CreatedDesc {
                want.reverse();
            }
            if let Some(q) = f.search.as_ref().filter(|q| !q.trim().is_empty()) {
                // Match order, whatever the sort: name matches by name, then e-mail
                // matches by e-mail, then phone matches by phone (id breaks ties).
                want.sort_by_key(|c| match_key(c, q));
            }
            let want: Vec<ContactId> = want.into_iter().map(|c| c.id.clone()).collect();
            assert_eq!(got, want, "filter {f:?} sort {sort:?}");
        }
    }
}

/// Where a contact stands in a search page ([`ContactFilter`]'s match order):
/// (stage, matched key, id) with stage 0 = name, 1 = e-mail, 2 = phone.
fn match_key(c: &Contact, q: &str) -> (u8, String, ContactId) {
    let q = q.trim().to_lowercase();
    let name = c.name.as_ref().map(|n| n.to_lowercase()).filter(|n| n.starts_with(&q));
    let email = c.email.as_ref().map(|e| e.to_lowercase()).filter(|e| e.starts_with(&q));
    match (name, email) {
        (Some(n), _) => (0, n, c.id.clone()),
        (None, Some(e)) => (1, e, c.id.clone()),
        (None, None) => (2, c.phone.clone(), c.id.clone()),
    }
}

/// A batch with a stored phone writes nothing under `Fail`, skips or updates otherwise; imports can be undone.
pub async fn bulk_contacts_honour_the_duplicate_policy(h: &dyn Harness) {
    let s = h.open().await;
    s.migrate().await.unwrap();
    let existing = contact(1, "Dana", &[], false);
    s.insert_contact(&existing).await.unwrap();
    let mut batch = vec![
        contact(2, "Fox", &[], false),
        contact(1, "Dana Updated", &["new"], false),
        contact(3, "Walter", &[], false),
    ];
    for c in &mut batch {
        c.source = Some("import:test".into());
    }
    let err = s.insert_contacts(&batch, OnDuplicate::Fail).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict { what } if what.contains(&existing.phone)), "{err:?}");
    // Every backend keeps nothing of a refused batch (a transaction, or a compensating
    // delete of exactly what it inserted on a standalone MongoDB).
    assert!(s.find_contact_by_phone(&batch[0].phone).await.unwrap().is_none(), "nothing written");
    assert!(s.find_contact_by_phone(&batch[2].phone).await.unwrap().is_none(), "nothing written");
    let _ = s.delete_contacts_by_source("import:test").await.unwrap();
    let r = s.insert_contacts(&batch, OnDuplicate::Skip).await.unwrap();
    assert_eq!((r.inserted, r.updated, r.skipped.clone()), (2, 0, vec![1]));
    assert_eq!(s.get_contact(&existing.id).await.unwrap().unwrap().name.as_deref(), Some("Dana"));
    let r = s.insert_contacts(&batch[1..2], OnDuplicate::Update).await.unwrap();
    assert_eq!((r.inserted, r.updated), (0, 1));
    let updated = s.get_contact(&existing.id).await.unwrap().unwrap();
    assert_eq!((updated.name.as_deref(), updated.tags.clone()), (Some("Dana Updated"), vec!["new".to_owned()]));
    assert_eq!(updated.created_at, existing.created_at);
    // Undo by source: the two inserted and the updated one carry it now.
    assert_eq!(s.delete_contacts_by_source("import:test").await.unwrap(), 3);
}

/// Campaign compare-and-set leaves the gate alone; lists filter by status.
pub async fn campaigns_replace_by_version_and_list_by_status(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "campaigns_replace_by_version_and_list_by_status") {
        return;
    }
    s.migrate().await.unwrap();
    let mut a = campaign(2, 60);
    a.status = CampaignStatus::Draft;
    s.insert_campaign(&a).await.unwrap();
    let b = campaign(2, 60);
    s.insert_campaign(&b).await.unwrap();
    assert_eq!(s.get_campaign(&a.id).await.unwrap().as_ref().map(|c| c.status), Some(CampaignStatus::Draft));
    assert_eq!(s.acquire_dial_slot(&b.id, "k1", now_ms()).await.unwrap(), SlotGrant::Granted);
    let mut edit = s.get_campaign(&b.id).await.unwrap().unwrap();
    assert_eq!(edit.inflight, vec!["k1".to_owned()]);
    edit.name = "Renamed".into();
    edit.inflight.clear();
    let stored = s.replace_campaign(&edit).await.unwrap();
    assert_eq!(
        (stored.name.as_str(), stored.version, stored.inflight.clone()),
        ("Renamed", edit.version + 1, vec!["k1".to_owned()])
    );
    assert!(matches!(s.replace_campaign(&edit).await, Err(StoreError::Stale(_))), "stale version");
    let running = s.list_campaigns(&[CampaignStatus::Running], &PageRequest::first(10)).await.unwrap();
    assert_eq!(running.items.iter().map(|c| c.id.clone()).collect::<Vec<_>>(), vec![b.id.clone()]);
    let every = s.list_campaigns(&[], &PageRequest::first(1)).await.unwrap();
    assert_eq!(every.items.len(), 1);
    assert!(every.next_cursor.is_some());
}

/// Ten tasks over two store handles claim concurrently: no enrollment is returned twice.
pub async fn concurrent_claims_never_return_one_enrollment_twice(h: &dyn Harness) {
    let s1 = h.open().await;
    if !super::runs(&*s1, "concurrent_claims_never_return_one_enrollment_twice") {
        return;
    }
    let s2 = h.open().await;
    let (c, _) = setup(&*s1, 60).await;
    let now = now_ms();
    let mut tasks = Vec::new();
    for t in 0..10 {
        let s: Arc<dyn Storage> = if t % 2 == 0 { s1.clone() } else { s2.clone() };
        let id = c.id.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(e) =
                s.claim_enrollment(&id, now, &format!("worker-{t}"), now + Duration::seconds(60)).await.unwrap()
            {
                assert_eq!(e.status, EnrollmentStatus::Dialing);
                assert_eq!(e.lease.as_ref().map(|l| l.owner.clone()), Some(format!("worker-{t}")));
                assert_eq!(e.lease_token, 1);
                got.push(e.id);
            }
            got
        }));
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    for t in tasks {
        for id in t.await.unwrap() {
            total += 1;
            assert!(seen.insert(id.clone()), "{id} claimed twice");
        }
    }
    assert_eq!(total, 60);
    let counts = s1.count_enrollments(&c.id).await.unwrap();
    assert_eq!(counts, vec![(EnrollmentStatus::Dialing, 60)]);
}

/// Only waiting, due enrollments are claimed; enrolling twice adds nothing; lists filter by status.
pub async fn claims_take_only_due_waiting_enrollments(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "claims_take_only_due_waiting_enrollments") {
        return;
    }
    let (c, ids) = setup(&*s, 3).await;
    assert_eq!(s.enroll(&c.id, &ids, now_ms()).await.unwrap(), 0, "already enrolled");
    let bogus = ContactId::new();
    assert!(matches!(s.enroll(&c.id, &[bogus], now_ms()).await, Err(StoreError::Invalid(_))));
    let now = now_ms();
    // Push one into the future and put one in a call.
    let mut later = s.find_enrollment(&c.id, &ids[0]).await.unwrap().unwrap();
    later.next_attempt_at = now + Duration::hours(1);
    later.status = EnrollmentStatus::RetryWait;
    s.replace_enrollment(&later).await.unwrap();
    let mut busy = s.find_enrollment(&c.id, &ids[1]).await.unwrap().unwrap();
    busy.placed(switchboard_domain::CallId::new(), now);
    s.replace_enrollment(&busy).await.unwrap();
    let claimed = s.claim_enrollment(&c.id, now, "w", now + Duration::seconds(30)).await.unwrap().unwrap();
    assert_eq!(claimed.contact_id, ids[2]);
    assert!(s.claim_enrollment(&c.id, now, "w", now + Duration::seconds(30)).await.unwrap().is_none());
    let at_later = now + Duration::hours(2);
    let second = s.claim_enrollment(&c.id, at_later, "w", at_later + Duration::seconds(30)).await.unwrap().unwrap();
    assert_eq!(second.contact_id, ids[0]);
    let in_call = s.list_enrollments(&c.id, &[EnrollmentStatus::InCall], &PageRequest::first(10)).await.unwrap();
    assert_eq!(in_call.items.len(), 1);
    assert_eq!(in_call.items[0].contact_id, ids[1]);
    assert!(matches!(s.remove_enrollment(&busy.id).await, Err(StoreError::Conflict { .. })), "call in flight");
    assert!(matches!(s.delete_contact(&ids[1]).await, Err(StoreError::Conflict { .. })), "call in flight");
    assert!(s.get_contact(&ids[1]).await.unwrap().is_some(), "a refused delete keeps the contact");
    assert_eq!(
        s.get_enrollment(&busy.id).await.unwrap().map(|e| e.status),
        Some(EnrollmentStatus::InCall),
        "and its enrollment in flight, untouched"
    );
    let all = s.list_enrollments(&c.id, &[], &PageRequest::first(2)).await.unwrap();
    assert_eq!(all.items.len(), 2);
    assert!(all.next_cursor.is_some());
}

/// An expired lease is found and recovered; the old holder's write is fenced off by the version.
pub async fn expired_leases_are_recovered_and_fenced(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "expired_leases_are_recovered_and_fenced") {
        return;
    }
    let (c, _) = setup(&*s, 1).await;
    let now = now_ms();
    let held = s.claim_enrollment(&c.id, now, "crashed", now + Duration::seconds(5)).await.unwrap().unwrap();
    assert!(s.expired_leases(now + Duration::seconds(1), 10).await.unwrap().is_empty());
    let expired = s.expired_leases(now + Duration::seconds(6), 10).await.unwrap();
    assert_eq!(expired.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![held.id.clone()]);
    // Recovery puts it back (no call was placed), then a new claim gets the next fencing token.
    let mut back = expired[0].clone();
    back.status = EnrollmentStatus::Pending;
    back.lease = None;
    s.replace_enrollment(&back).await.unwrap();
    let t = now + Duration::seconds(7);
    let again = s.claim_enrollment(&c.id, t, "rescuer", t + Duration::seconds(5)).await.unwrap().unwrap();
    assert_eq!(again.lease_token, held.lease_token + 1);
    // The crashed dialer wakes up and tries to record its placement: refused.
    let mut stale = held.clone();
    stale.placed(switchboard_domain::CallId::new(), t);
    assert!(matches!(s.replace_enrollment(&stale).await, Err(StoreError::Stale(_))));
    let stored = s.get_enrollment(&held.id).await.unwrap().unwrap();
    assert_eq!(stored.lease.map(|l| l.owner), Some("rescuer".into()));
}

/// Twenty tasks over two handles race for dial slots: never more than
/// `max_concurrent` held, starts spaced by the pacing interval, release is idempotent.
pub async fn the_dial_gate_caps_concurrency_and_pace_under_contention(h: &dyn Harness) {
    let s1 = h.open().await;
    if !super::runs(&*s1, "the_dial_gate_caps_concurrency_and_pace_under_contention") {
        return;
    }
    let s2 = h.open().await;
    s1.migrate().await.unwrap();
    let c = campaign(3, 600); // 100 ms apart
    s1.insert_campaign(&c).await.unwrap();
    let base = now_ms() + Duration::seconds(1);
    let mut tasks = Vec::new();
    for t in 0..20 {
        let s: Arc<dyn Storage> = if t % 2 == 0 { s1.clone() } else { s2.clone() };
        let id = c.id.clone();
        tasks.push(tokio::spawn(async move {
            for step in 0..50 {
                let now: DateTime<Utc> = base + Duration::milliseconds(step * 40);
                match s.acquire_dial_slot(&id, &format!("key-{t}"), now).await.unwrap() {
                    SlotGrant::Granted => return Some(now),
                    SlotGrant::Full => return None,
                    SlotGrant::Paced(next) => assert!(next > now),
                    SlotGrant::NotRunning => panic!("campaign is running"),
                }
            }
            None
        }));
    }
    let mut grants: Vec<DateTime<Utc>> = Vec::new();
    for t in tasks {
        grants.extend(t.await.unwrap());
    }
    grants.sort();
    assert_eq!(grants.len(), 3, "exactly max_concurrent slots: {grants:?}");
    for w in grants.windows(2) {
        assert!(w[1] - w[0] >= Duration::milliseconds(100), "paced: {grants:?}");
    }
    let stored = s1.get_campaign(&c.id).await.unwrap().unwrap();
    assert_eq!((stored.inflight.len(), stored.dials), (3, 3));
    let later = base + Duration::seconds(10);
    assert_eq!(s1.acquire_dial_slot(&c.id, "late", later).await.unwrap(), SlotGrant::Full);
    let held = stored.inflight[0].clone();
    assert!(s2.release_dial_slot(&c.id, &held).await.unwrap());
    assert!(!s1.release_dial_slot(&c.id, &held).await.unwrap(), "release is idempotent");
    assert_eq!(s1.acquire_dial_slot(&c.id, "late", later).await.unwrap(), SlotGrant::Granted);
    assert_eq!(s1.acquire_dial_slot(&c.id, "late", later).await.unwrap(), SlotGrant::Granted, "held key");
}

/// Pausing or cancelling stops the gate at once; cancelling moves waiting enrollments to cancelled.
pub async fn a_paused_or_cancelled_campaign_grants_nothing(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "a_paused_or_cancelled_campaign_grants_nothing") {
        return;
    }
    let (c, _) = setup(&*s, 4).await;
    let now = now_ms();
    assert_eq!(s.acquire_dial_slot(&c.id, "a", now).await.unwrap(), SlotGrant::Granted);
    let mut paused = s.get_campaign(&c.id).await.unwrap().unwrap();
    paused.status = CampaignStatus::Paused;
    let paused = s.replace_campaign(&paused).await.unwrap();
    assert_eq!(s.acquire_dial_slot(&c.id, "b", now + Duration::hours(1)).await.unwrap(), SlotGrant::NotRunning);
    assert_eq!(
        s.acquire_dial_slot(&switchboard_domain::CampaignId::new(), "b", now).await.unwrap(),
        SlotGrant::NotRunning
    );
    let one = s.claim_enrollment(&c.id, now, "w", now + Duration::seconds(30)).await.unwrap().unwrap();
    let mut cancelled = paused.clone();
    cancelled.status = CampaignStatus::Cancelled;
    s.replace_campaign(&cancelled).await.unwrap();
    assert_eq!(s.cancel_waiting(&c.id, now).await.unwrap(), 3);
    let counts = s.count_enrollments(&c.id).await.unwrap();
    assert!(counts.contains(&(EnrollmentStatus::Cancelled, 3)), "{counts:?}");
    assert!(counts.contains(&(EnrollmentStatus::Dialing, 1)), "{counts:?}");
    let e: Enrollment = s
        .list_enrollments(&c.id, &[EnrollmentStatus::Cancelled], &PageRequest::first(1))
        .await
        .unwrap()
        .items
        .remove(0);
    assert_eq!(e.status, EnrollmentStatus::Cancelled);
    assert_ne!(e.id, one.id);
    assert!(s.remove_enrollment(&e.id).await.unwrap());
    // Deleting: refused while it could still dial, then removes it with its enrollments.
    let other = campaign(1, 60);
    s.insert_campaign(&other).await.unwrap();
    assert!(matches!(s.delete_campaign(&other.id).await, Err(StoreError::Conflict { .. })), "running");
    assert!(s.delete_campaign(&c.id).await.unwrap());
    assert!(!s.delete_campaign(&c.id).await.unwrap());
    assert!(s.get_campaign(&c.id).await.unwrap().is_none());
    assert!(s.get_enrollment(&one.id).await.unwrap().is_none());
}

/// The import journal: first before-image wins, images page in id order,
/// a silent import is found stale, ending it drops its images.
pub async fn the_import_journal_keeps_first_images_and_finds_stale_imports(h: &dyn Harness) {
    let s = h.open().await;
    s.migrate().await.unwrap();
    if !super::runs(&*s, "the_import_journal_keeps_first_images_and_finds_stale_imports") {
        return;
    }
    let t0 = now_ms();
    let rec = crate::ImportRecord {
        id: "imp_conformance".into(),
        source: "import:imp_conformance".into(),
        state: crate::ImportState::Running,
        owner: "instance-a".into(),
        started_at: t0,
        heartbeat_at: t0,
    };
    s.begin_import(&rec).await.unwrap();
    assert!(s.begin_import(&rec).await.is_err(), "an import id is opened once");
    let (a, b) = (contact(9001, "Ann Before", &["x"], false), contact(9002, "Bob Before", &[], true));
    s.save_before_images(&rec.id, &[a.clone(), b.clone()]).await.unwrap();
    let mut a_later = a.clone();
    a_later.name = Some("Ann Overwritten".into());
    s.save_before_images(&rec.id, &[a_later]).await.unwrap();
    let mut expected = vec![a.clone(), b.clone()];
    expected.sort_by(|x, y| x.id.as_str().cmp(y.id.as_str()));
    let all = s.before_images(&rec.id, None, 10).await.unwrap();
    assert_eq!(all, expected, "the first image of a contact wins, in id order, unchanged");
    let first = s.before_images(&rec.id, None, 1).await.unwrap();
    let rest = s.before_images(&rec.id, Some(&first[0].id), 10).await.unwrap();
    assert_eq!([first, rest].concat(), expected);
    assert!(s.before_images("imp_other", None, 10).await.unwrap().is_empty());

    let stale = s.stale_imports(t0 + Duration::seconds(1)).await.unwrap();
    assert_eq!(stale, vec![rec.clone()]);
    s.heartbeat_import(&rec.id, t0 + Duration::seconds(2)).await.unwrap();
    assert!(s.stale_imports(t0 + Duration::seconds(1)).await.unwrap().is_empty(), "alive again");
    let stale = s.stale_imports(t0 + Duration::seconds(3)).await.unwrap();
    assert_eq!(stale.len(), 1);
    assert_eq!(stale[0].heartbeat_at, t0 + Duration::seconds(2));

    s.end_import(&rec.id, crate::ImportState::RolledBack).await.unwrap();
    assert!(s.before_images(&rec.id, None, 10).await.unwrap().is_empty(), "images dropped");
    assert!(s.stale_imports(t0 + Duration::days(1)).await.unwrap().is_empty(), "an ended import is not stale");
}
