//! Conformance cases for job leases ([`crate::JobStore`]).

use chrono::{Duration, Utc};
use switchboard_domain::time::now_ms;

use super::Harness;
use crate::RunReport;

/// One grant at a time; a lapsed lease is taken over with a higher fence and
/// the old holder can neither renew nor finish it; finishing records the run.
pub async fn job_leases_are_exclusive_fenced_and_recorded(h: &dyn Harness) {
    let s = h.open().await;
    if !super::runs(&*s, "job_leases_are_exclusive_fenced_and_recorded") {
        return;
    }
    let now = now_ms();
    let ttl = Duration::seconds(30);
    assert!(s.get_job("sweeper").await.unwrap().is_none());
    let a = s.acquire_lease("sweeper", "a", now, ttl, false).await.unwrap().expect("a free lease is granted");
    assert_eq!((a.owner.as_str(), a.expires_at), ("a", now + ttl));
    assert!(s.acquire_lease("sweeper", "b", now + Duration::seconds(29), ttl, false).await.unwrap().is_none());
    // Another name is another lease.
    assert!(s.acquire_lease("other", "b", now, ttl, false).await.unwrap().is_some());
    // Renewing moves the deadline and keeps the fence.
    let t1 = now + Duration::seconds(20);
    let a = s.renew_lease(&a, t1, ttl).await.unwrap().expect("the holder renews");
    assert_eq!(a.expires_at, t1 + ttl);
    assert!(s.acquire_lease("sweeper", "b", now + Duration::seconds(40), ttl, false).await.unwrap().is_none());
    // The holder stalls past its deadline: b takes over with a higher fence.
    let t2 = t1 + ttl;
    let b = s.acquire_lease("sweeper", "b", t2, ttl, false).await.unwrap().expect("a lapsed lease is taken over");
    assert!(b.fence > a.fence, "fence grows with each grant ({} then {})", a.fence, b.fence);
    assert!(s.renew_lease(&a, t2, ttl).await.unwrap().is_none(), "the old holder cannot renew");
    let late = RunReport { finished_at: t2, error: Some("late".into()), next_run_at: None };
    assert!(!s.finish_lease(&a, &late).await.unwrap(), "the old holder cannot finish");
    let st = s.get_job("sweeper").await.unwrap().unwrap();
    assert_eq!((st.owner.as_deref(), st.runs, st.last_error.as_deref()), (Some("b"), 0, None));
    // b finishes with an error and a next run.
    let next = t2 + Duration::minutes(5);
    let done = RunReport {
        finished_at: t2 + Duration::seconds(1),
        error: Some("sheet unshared".into()),
        next_run_at: Some(next),
    };
    assert!(s.finish_lease(&b, &done).await.unwrap());
    let st = s.get_job("sweeper").await.unwrap().unwrap();
    assert_eq!(st.owner, None);
    assert_eq!(st.lease_expires_at, None);
    assert_eq!((st.runs, st.failures), (1, 1));
    assert_eq!(st.last_error.as_deref(), Some("sheet unshared"));
    assert_eq!(st.last_started_at, Some(t2));
    assert_eq!(st.last_finished_at, Some(t2 + Duration::seconds(1)));
    assert_eq!(st.next_run_at, Some(next));
    assert_eq!(st.fence, b.fence);
    // A finished lease cannot be finished twice.
    assert!(!s.finish_lease(&b, &done).await.unwrap());
    // `due_only` waits for the next run; a forced acquire does not.
    assert!(s.acquire_lease("sweeper", "c", next - Duration::seconds(1), ttl, true).await.unwrap().is_none());
    let c = s.acquire_lease("sweeper", "c", next, ttl, true).await.unwrap().expect("due at next_run_at");
    let ok = RunReport { finished_at: next, error: None, next_run_at: Some(next + Duration::minutes(5)) };
    assert!(s.finish_lease(&c, &ok).await.unwrap());
    let st = s.get_job("sweeper").await.unwrap().unwrap();
    assert_eq!((st.runs, st.failures, st.last_error), (2, 1, None));
    assert!(s.acquire_lease("sweeper", "d", next, ttl, false).await.unwrap().is_some(), "forced ignores the schedule");
    let names: Vec<String> = s.list_jobs().await.unwrap().into_iter().map(|j| j.name).collect();
    assert_eq!(names, vec!["other".to_owned(), "sweeper".to_owned()]);
    assert!(s.acquire_lease("", "a", now, ttl, false).await.is_err(), "an empty name is refused");
}

/// Sixteen tasks over two handles race for one lease: exactly one grant.
pub async fn concurrent_lease_acquires_grant_one(h: &dyn Harness) {
    let s1 = h.open().await;
    if !super::runs(&*s1, "concurrent_lease_acquires_grant_one") {
        return;
    }
    let s2 = h.open().await;
    let now = Utc::now();
    for round in 0..3 {
        let name = format!("race-{round}");
        let mut tasks = Vec::new();
        for i in 0..16 {
            let s = if i % 2 == 0 { s1.clone() } else { s2.clone() };
            let name = name.clone();
            tasks.push(tokio::spawn(async move {
                s.acquire_lease(&name, &format!("owner-{i}"), now, Duration::seconds(30), true).await.unwrap()
            }));
        }
        let mut granted = 0;
        for t in tasks {
            granted += usize::from(t.await.unwrap().is_some());
        }
        assert_eq!(granted, 1, "round {round}: exactly one of 16 racing owners holds the lease");
    }
}
