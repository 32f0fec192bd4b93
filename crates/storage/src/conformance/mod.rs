//! The conformance suite: written once against the traits, expanded into one
//! `#[tokio::test]` per case per backend by [`conformance_tests!`](crate::conformance_tests).
//!
//! A backend provides a [`Harness`] (a fresh, isolated database and a way to
//! open more handles to it). The case list lives in the macro, so a backend
//! cannot skip a new case by forgetting to list it. Capability differences
//! are printed as skip lines with the reason.

pub mod analytics;
pub mod calls;
pub mod campaigns;
pub mod jobs;
pub mod sheets;
pub mod transcripts;

pub use analytics::*;
pub use calls::*;
pub use campaigns::*;
pub use jobs::*;
pub use sheets::*;
pub use transcripts::*;

use std::io::Write;
use std::sync::Arc;

use async_trait::async_trait;

use crate::Storage;

/// A fresh, isolated database for one test case.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Opens a handle to the test database; each call may return a new
    /// connection (pool), so concurrency cases can race two handles.
    async fn open(&self) -> Arc<dyn Storage>;
    /// Removes the test database.
    async fn cleanup(&self);
}

/// Prints a line that cargo's output capture does not swallow (a skip must be
/// seen, not hidden behind a green tick).
pub fn loud(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// Cases a backend may skip, and the capability each needs: the one place a
/// case's skip is decided ([`runs`]), so a harness can compute the exact set
/// of cases its backend skips ([`skipped_cases`]) and compare it with a
/// committed list.
const GATES: &[(&str, Gate)] = &[
    ("migrate_is_idempotent_and_reports_no_drift", Gate::SchemaIntrospection),
    ("campaigns_replace_by_version_and_list_by_status", Gate::DatesInUpdates),
    ("concurrent_claims_never_return_one_enrollment_twice", Gate::DatesInUpdates),
    ("claims_take_only_due_waiting_enrollments", Gate::DatesInUpdates),
    ("expired_leases_are_recovered_and_fenced", Gate::DatesInUpdates),
    ("the_dial_gate_caps_concurrency_and_pace_under_contention", Gate::DatesInUpdates),
    ("a_paused_or_cancelled_campaign_grants_nothing", Gate::DatesInUpdates),
    ("the_import_journal_keeps_first_images_and_finds_stale_imports", Gate::DatesInUpdates),
    ("job_leases_are_exclusive_fenced_and_recorded", Gate::DatesInUpdates),
    ("concurrent_lease_acquires_grant_one", Gate::DatesInUpdates),
    ("sheet_links_replace_by_version_and_keep_the_sync_state", Gate::DatesInUpdates),
    ("analytics_rollups_equal_a_recomputation", Gate::RollupAggregation),
    ("analytics_buckets_replace_and_read_back_by_range", Gate::RollupAggregation),
];

#[derive(Debug, Clone, Copy)]
enum Gate {
    SchemaIntrospection,
    DatesInUpdates,
    RollupAggregation,
}

impl Gate {
    fn missing(self, caps: &crate::Capabilities) -> Option<&'static str> {
        match self {
            Gate::SchemaIntrospection if !caps.schema_introspection => {
                Some("the server does not report its schema back (validators, index names)")
            }
            Gate::DatesInUpdates if !caps.dates_in_updates => {
                Some("the server stores dates written by $set as strings")
            }
            Gate::RollupAggregation if !caps.rollup_aggregation => {
                Some("the server cannot run the rollup aggregation ($lookup pipeline, $group, $merge)")
            }
            _ => None,
        }
    }
}

/// Why `case` is skipped on a backend with `caps`, if it is.
pub fn skip_reason(case: &str, caps: &crate::Capabilities) -> Option<&'static str> {
    GATES.iter().find(|(c, _)| *c == case).and_then(|(_, g)| g.missing(caps))
}

/// Every case of `cases` skipped on a backend with `caps`, with its reason, sorted.
pub fn skipped_cases(cases: &[&str], caps: &crate::Capabilities) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        cases.iter().filter_map(|c| skip_reason(c, caps).map(|r| (c.to_string(), r.to_owned()))).collect();
    out.sort();
    out
}

/// Names of the gated cases (a harness checks they are all real case names).
pub fn gated_cases() -> Vec<&'static str> {
    GATES.iter().map(|(c, _)| *c).collect()
}

/// Whether `case` runs on `s`; prints one skip line (case and reason) if not.
pub fn runs(s: &dyn Storage, case: &str) -> bool {
    match skip_reason(case, &s.capabilities()) {
        None => true,
        Some(reason) => {
            loud(&format!("SKIPPED (capability) {case} on {}: {reason}", s.backend_name()));
            false
        }
    }
}

/// Expands every conformance case into a test for the harness returned by
/// `$make` (an `async fn() -> Option<Box<dyn Harness>>`; `None` skips, and the
/// constructor prints why).
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@cases $make;
            upsert_by_call_sid_is_idempotent,
            one_record_when_conversation_id_is_seen_before_call_sid,
            two_records_are_merged_when_a_later_update_links_them,
            a_link_carrying_one_key_keeps_both_keys_on_one_record,
            status_lattice_never_regresses,
            concurrent_upserts_for_one_call_create_one_record,
            conflicting_provider_key_is_a_conflict,
            update_without_key_is_invalid,
            event_replay_is_deduplicated,
            cursor_pagination_is_stable_while_inserting,
            timestamps_round_trip_at_millisecond_precision,
            every_call_filter_and_sort_matches_the_reference,
            event_lists_are_chronological_and_filtered,
            lookups_by_key_and_missing_ids,
            bulk_insert_rejects_duplicate_keys,
            migrate_is_idempotent_and_reports_no_drift,
            bad_cursor_is_invalid,
            record_webhook_merges_and_stores_once,
            contacts_are_unique_by_phone_and_replaced_by_version,
            contact_filters_and_pages_match_the_reference,
            bulk_contacts_honour_the_duplicate_policy,
            campaigns_replace_by_version_and_list_by_status,
            concurrent_claims_never_return_one_enrollment_twice,
            claims_take_only_due_waiting_enrollments,
            expired_leases_are_recovered_and_fenced,
            the_dial_gate_caps_concurrency_and_pace_under_contention,
            a_paused_or_cancelled_campaign_grants_nothing,
            the_import_journal_keeps_first_images_and_finds_stale_imports,
            job_leases_are_exclusive_fenced_and_recorded,
            concurrent_lease_acquires_grant_one,
            sheet_links_round_trip_and_are_unique_per_tab,
            sheet_links_replace_by_version_and_keep_the_sync_state,
            sheet_rows_upsert_list_and_delete_with_their_link,
            recordings_merge_by_provider_key_and_list_by_call,
            recordings_to_expire_are_completed_older_than_the_cutoff_oldest_first,
            transcripts_upsert_keeps_final_and_analysis,
            transcript_lists_match_every_filter,
            transcript_search_matches_the_reference,
            analytics_rollups_equal_a_recomputation,
            analytics_buckets_replace_and_read_back_by_range
        );
    };
    (@cases $make:path; $($case:ident),+ $(,)?) => {
        /// Every case of the suite, by name.
        #[allow(dead_code)]
        pub const CONFORMANCE_CASES: &[&str] = &[$(stringify!($case)),+];
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $case() {
                let Some(h) = $make().await else { return };
                $crate::conformance::$case(&*h).await;
                h.cleanup().await;
            }
        )+
    };
}
