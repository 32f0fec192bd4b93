//! Store decorators in one line: [`decorate_storage!`](crate::decorate_storage) implements every
//! store trait ([`CallStore`](crate::CallStore), [`EventStore`](crate::EventStore),
//! [`ContactStore`](crate::ContactStore), [`CampaignStore`](crate::CampaignStore),
//! [`EnrollmentStore`](crate::EnrollmentStore), [`JobStore`](crate::JobStore), [`SheetStore`](crate::SheetStore),
//! [`TranscriptStore`](crate::TranscriptStore), [`AnalyticsStore`](crate::AnalyticsStore) and
//! [`Storage`](crate::Storage))
//! for a type that wraps another store, sending every call through one
//! method of the decorator:
//!
//! ```ignore
//! struct Timed(Arc<dyn Storage>);
//! impl Timed {
//!     async fn around<T>(&self, op: &'static str, fut: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
//!         let start = Instant::now();
//!         let r = fut.await;
//!         record(op, start.elapsed());
//!         r
//!     }
//! }
//! switchboard_storage::decorate_storage!(Timed, 0, around);
//! ```
//!
//! A new store method is added here once, and every decorator (metrics,
//! test fault injection; later cache, audit, field encryption) forwards it.
//! `backend_name` and `capabilities` are forwarded as they are; everything
//! else, `record_webhook` and `migrate` included, goes through the method.
//! The caller must depend on `async-trait`.

/// Implements every store trait for `$ty` by forwarding to `self.$field`,
/// each call wrapped as `self.$wrap(op_name, future)`.
#[macro_export]
macro_rules! decorate_storage {
    ($ty:ty, $field:tt, $wrap:ident) => {
        #[async_trait::async_trait]
        impl $crate::CallStore for $ty {
            async fn upsert_call(
                &self,
                u: &::switchboard_domain::CallUpdate,
            ) -> $crate::StoreResult<$crate::UpsertOutcome> {
                self.$wrap("upsert_call", self.$field.upsert_call(u)).await
            }
            async fn get_call(
                &self,
                id: &::switchboard_domain::CallId,
            ) -> $crate::StoreResult<::switchboard_domain::Call> {
                self.$wrap("get_call", self.$field.get_call(id)).await
            }
            async fn find_call_by_sid(&self, s: &str) -> $crate::StoreResult<Option<::switchboard_domain::Call>> {
                self.$wrap("find_call_by_sid", self.$field.find_call_by_sid(s)).await
            }
            async fn find_call_by_conversation(
                &self,
                c: &str,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Call>> {
                self.$wrap("find_call_by_conversation", self.$field.find_call_by_conversation(c)).await
            }
            async fn list_calls(
                &self,
                f: &$crate::CallFilter,
                s: $crate::CallSort,
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::Call>> {
                self.$wrap("list_calls", self.$field.list_calls(f, s, p)).await
            }
            async fn insert_calls_bulk(
                &self,
                c: &[::switchboard_domain::Call],
                e: &[::switchboard_domain::CallEvent],
            ) -> $crate::StoreResult<()> {
                self.$wrap("insert_calls_bulk", self.$field.insert_calls_bulk(c, e)).await
            }
            async fn count_calls(&self) -> $crate::StoreResult<u64> {
                self.$wrap("count_calls", self.$field.count_calls()).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::EventStore for $ty {
            async fn insert_event(&self, e: &::switchboard_domain::CallEvent) -> $crate::StoreResult<bool> {
                self.$wrap("insert_event", self.$field.insert_event(e)).await
            }
            async fn event_exists(&self, k: &str) -> $crate::StoreResult<bool> {
                self.$wrap("event_exists", self.$field.event_exists(k)).await
            }
            async fn list_call_events(
                &self,
                c: &::switchboard_domain::CallId,
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::CallEvent>> {
                self.$wrap("list_call_events", self.$field.list_call_events(c, p)).await
            }
            async fn list_events(
                &self,
                f: &$crate::EventFilter,
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::CallEvent>> {
                self.$wrap("list_events", self.$field.list_events(f, p)).await
            }
        }

        $crate::__forward_campaign_stores!($ty, $field, $wrap);
        $crate::__forward_job_stores!($ty, $field, $wrap);
        $crate::__forward_sheet_stores!($ty, $field, $wrap);
        $crate::__forward_transcript_stores!($ty, $field, $wrap);
        $crate::__forward_analytics_stores!($ty, $field, $wrap);

        #[async_trait::async_trait]
        impl $crate::Storage for $ty {
            fn backend_name(&self) -> &'static str {
                self.$field.backend_name()
            }
            fn capabilities(&self) -> $crate::Capabilities {
                self.$field.capabilities()
            }
            async fn watch_changes(&self, after: Option<String>) -> $crate::StoreResult<Option<$crate::ChangeStream>> {
                self.$wrap("watch_changes", self.$field.watch_changes(after)).await
            }
            async fn change_token(&self, name: &str) -> $crate::StoreResult<Option<String>> {
                self.$wrap("change_token", self.$field.change_token(name)).await
            }
            async fn save_change_token(&self, name: &str, token: &str) -> $crate::StoreResult<()> {
                self.$wrap("save_change_token", self.$field.save_change_token(name, token)).await
            }
            async fn maintain_search_index(&self, pages: u32) -> $crate::StoreResult<bool> {
                self.$wrap("maintain_search_index", self.$field.maintain_search_index(pages)).await
            }
            async fn ping(&self) -> $crate::StoreResult<()> {
                self.$wrap("ping", self.$field.ping()).await
            }
            async fn migrate(&self) -> $crate::StoreResult<$crate::MigrationReport> {
                self.$wrap("migrate", self.$field.migrate()).await
            }
            async fn check_schema(&self) -> $crate::StoreResult<Vec<$crate::Drift>> {
                self.$wrap("check_schema", self.$field.check_schema()).await
            }
            async fn record_webhook(
                &self,
                u: &::switchboard_domain::CallUpdate,
                e: $crate::NewEvent,
            ) -> $crate::StoreResult<$crate::WebhookOutcome> {
                self.$wrap("record_webhook", self.$field.record_webhook(u, e)).await
            }
        }
    };
}

/// The contact, campaign and enrollment part of [`decorate_storage!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_campaign_stores {
    ($ty:ty, $field:tt, $wrap:ident) => {
        #[async_trait::async_trait]
        impl $crate::ContactStore for $ty {
            async fn insert_contact(&self, c: &::switchboard_domain::Contact) -> $crate::StoreResult<()> {
                self.$wrap("insert_contact", self.$field.insert_contact(c)).await
            }
            async fn insert_contacts(
                &self,
                c: &[::switchboard_domain::Contact],
                d: $crate::OnDuplicate,
            ) -> $crate::StoreResult<$crate::BulkContacts> {
                self.$wrap("insert_contacts", self.$field.insert_contacts(c, d)).await
            }
            async fn get_contact(
                &self,
                id: &::switchboard_domain::ContactId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Contact>> {
                self.$wrap("get_contact", self.$field.get_contact(id)).await
            }
            async fn find_contact_by_phone(
                &self,
                p: &str,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Contact>> {
                self.$wrap("find_contact_by_phone", self.$field.find_contact_by_phone(p)).await
            }
            async fn existing_phones(&self, p: &[String]) -> $crate::StoreResult<Vec<String>> {
                self.$wrap("existing_phones", self.$field.existing_phones(p)).await
            }
            async fn replace_contact(
                &self,
                c: &::switchboard_domain::Contact,
            ) -> $crate::StoreResult<::switchboard_domain::Contact> {
                self.$wrap("replace_contact", self.$field.replace_contact(c)).await
            }
            async fn delete_contact(&self, id: &::switchboard_domain::ContactId) -> $crate::StoreResult<bool> {
                self.$wrap("delete_contact", self.$field.delete_contact(id)).await
            }
            async fn list_contacts(
                &self,
                f: &$crate::ContactFilter,
                s: $crate::ContactSort,
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::Contact>> {
                self.$wrap("list_contacts", self.$field.list_contacts(f, s, p)).await
            }
            async fn delete_contacts_by_source(&self, s: &str) -> $crate::StoreResult<u64> {
                self.$wrap("delete_contacts_by_source", self.$field.delete_contacts_by_source(s)).await
            }
            async fn begin_import(&self, r: &$crate::ImportRecord) -> $crate::StoreResult<()> {
                self.$wrap("begin_import", self.$field.begin_import(r)).await
            }
            async fn save_before_images(
                &self,
                id: &str,
                b: &[::switchboard_domain::Contact],
            ) -> $crate::StoreResult<()> {
                self.$wrap("save_before_images", self.$field.save_before_images(id, b)).await
            }
            async fn heartbeat_import(
                &self,
                id: &str,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                self.$wrap("heartbeat_import", self.$field.heartbeat_import(id, now)).await
            }
            async fn before_images(
                &self,
                id: &str,
                after: Option<&::switchboard_domain::ContactId>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<::switchboard_domain::Contact>> {
                self.$wrap("before_images", self.$field.before_images(id, after, limit)).await
            }
            async fn end_import(&self, id: &str, st: $crate::ImportState) -> $crate::StoreResult<()> {
                self.$wrap("end_import", self.$field.end_import(id, st)).await
            }
            async fn stale_imports(
                &self,
                before: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<Vec<$crate::ImportRecord>> {
                self.$wrap("stale_imports", self.$field.stale_imports(before)).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::CampaignStore for $ty {
            async fn insert_campaign(&self, c: &::switchboard_domain::Campaign) -> $crate::StoreResult<()> {
                self.$wrap("insert_campaign", self.$field.insert_campaign(c)).await
            }
            async fn get_campaign(
                &self,
                id: &::switchboard_domain::CampaignId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Campaign>> {
                self.$wrap("get_campaign", self.$field.get_campaign(id)).await
            }
            async fn replace_campaign(
                &self,
                c: &::switchboard_domain::Campaign,
            ) -> $crate::StoreResult<::switchboard_domain::Campaign> {
                self.$wrap("replace_campaign", self.$field.replace_campaign(c)).await
            }
            async fn list_campaigns(
                &self,
                s: &[::switchboard_domain::CampaignStatus],
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::Campaign>> {
                self.$wrap("list_campaigns", self.$field.list_campaigns(s, p)).await
            }
            async fn acquire_dial_slot(
                &self,
                id: &::switchboard_domain::CampaignId,
                key: &str,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<$crate::SlotGrant> {
                self.$wrap("acquire_dial_slot", self.$field.acquire_dial_slot(id, key, now)).await
            }
            async fn release_dial_slot(
                &self,
                id: &::switchboard_domain::CampaignId,
                key: &str,
            ) -> $crate::StoreResult<bool> {
                self.$wrap("release_dial_slot", self.$field.release_dial_slot(id, key)).await
            }
            async fn delete_campaign(&self, id: &::switchboard_domain::CampaignId) -> $crate::StoreResult<bool> {
                self.$wrap("delete_campaign", self.$field.delete_campaign(id)).await
            }
        }

        #[async_trait::async_trait]
        impl $crate::EnrollmentStore for $ty {
            async fn enroll(
                &self,
                c: &::switchboard_domain::CampaignId,
                k: &[::switchboard_domain::ContactId],
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<u64> {
                self.$wrap("enroll", self.$field.enroll(c, k, now)).await
            }
            async fn get_enrollment(
                &self,
                id: &::switchboard_domain::EnrollmentId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Enrollment>> {
                self.$wrap("get_enrollment", self.$field.get_enrollment(id)).await
            }
            async fn find_enrollment(
                &self,
                c: &::switchboard_domain::CampaignId,
                k: &::switchboard_domain::ContactId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Enrollment>> {
                self.$wrap("find_enrollment", self.$field.find_enrollment(c, k)).await
            }
            async fn list_enrollments(
                &self,
                c: &::switchboard_domain::CampaignId,
                s: &[::switchboard_domain::EnrollmentStatus],
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::Enrollment>> {
                self.$wrap("list_enrollments", self.$field.list_enrollments(c, s, p)).await
            }
            async fn count_enrollments(
                &self,
                c: &::switchboard_domain::CampaignId,
            ) -> $crate::StoreResult<Vec<(::switchboard_domain::EnrollmentStatus, u64)>> {
                self.$wrap("count_enrollments", self.$field.count_enrollments(c)).await
            }
            async fn claim_enrollment(
                &self,
                c: &::switchboard_domain::CampaignId,
                now: ::chrono::DateTime<::chrono::Utc>,
                owner: &str,
                until: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Enrollment>> {
                self.$wrap("claim_enrollment", self.$field.claim_enrollment(c, now, owner, until)).await
            }
            async fn replace_enrollment(
                &self,
                e: &::switchboard_domain::Enrollment,
            ) -> $crate::StoreResult<::switchboard_domain::Enrollment> {
                self.$wrap("replace_enrollment", self.$field.replace_enrollment(e)).await
            }
            async fn expired_leases(
                &self,
                now: ::chrono::DateTime<::chrono::Utc>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<::switchboard_domain::Enrollment>> {
                self.$wrap("expired_leases", self.$field.expired_leases(now, limit)).await
            }
            async fn remove_enrollment(&self, id: &::switchboard_domain::EnrollmentId) -> $crate::StoreResult<bool> {
                self.$wrap("remove_enrollment", self.$field.remove_enrollment(id)).await
            }
            async fn cancel_waiting(
                &self,
                c: &::switchboard_domain::CampaignId,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<u64> {
                self.$wrap("cancel_waiting", self.$field.cancel_waiting(c, now)).await
            }
        }
    };
}

/// The job-lease part of [`decorate_storage!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_job_stores {
    ($ty:ty, $field:tt, $wrap:ident) => {
        #[async_trait::async_trait]
        impl $crate::JobStore for $ty {
            async fn acquire_lease(
                &self,
                name: &str,
                owner: &str,
                now: ::chrono::DateTime<::chrono::Utc>,
                ttl: ::chrono::Duration,
                due_only: bool,
            ) -> $crate::StoreResult<Option<$crate::Lease>> {
                self.$wrap("acquire_lease", self.$field.acquire_lease(name, owner, now, ttl, due_only)).await
            }
            async fn renew_lease(
                &self,
                l: &$crate::Lease,
                now: ::chrono::DateTime<::chrono::Utc>,
                ttl: ::chrono::Duration,
            ) -> $crate::StoreResult<Option<$crate::Lease>> {
                self.$wrap("renew_lease", self.$field.renew_lease(l, now, ttl)).await
            }
            async fn finish_lease(&self, l: &$crate::Lease, r: &$crate::RunReport) -> $crate::StoreResult<bool> {
                self.$wrap("finish_lease", self.$field.finish_lease(l, r)).await
            }
            async fn get_job(&self, name: &str) -> $crate::StoreResult<Option<$crate::JobState>> {
                self.$wrap("get_job", self.$field.get_job(name)).await
            }
            async fn list_jobs(&self) -> $crate::StoreResult<Vec<$crate::JobState>> {
                self.$wrap("list_jobs", self.$field.list_jobs()).await
            }
        }
    };
}

/// The Sheets part of [`decorate_storage!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_sheet_stores {
    ($ty:ty, $field:tt, $wrap:ident) => {
        #[async_trait::async_trait]
        impl $crate::SheetStore for $ty {
            async fn insert_sheet_link(&self, l: &::switchboard_domain::SheetLink) -> $crate::StoreResult<()> {
                self.$wrap("insert_sheet_link", self.$field.insert_sheet_link(l)).await
            }
            async fn get_sheet_link(
                &self,
                id: &::switchboard_domain::SheetLinkId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::SheetLink>> {
                self.$wrap("get_sheet_link", self.$field.get_sheet_link(id)).await
            }
            async fn list_sheet_links(
                &self,
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::SheetLink>> {
                self.$wrap("list_sheet_links", self.$field.list_sheet_links(p)).await
            }
            async fn replace_sheet_link(
                &self,
                l: &::switchboard_domain::SheetLink,
            ) -> $crate::StoreResult<::switchboard_domain::SheetLink> {
                self.$wrap("replace_sheet_link", self.$field.replace_sheet_link(l)).await
            }
            async fn set_sheet_state(
                &self,
                id: &::switchboard_domain::SheetLinkId,
                st: &::switchboard_domain::sheet::SyncState,
                now: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<()> {
                self.$wrap("set_sheet_state", self.$field.set_sheet_state(id, st, now)).await
            }
            async fn delete_sheet_link(&self, id: &::switchboard_domain::SheetLinkId) -> $crate::StoreResult<bool> {
                self.$wrap("delete_sheet_link", self.$field.delete_sheet_link(id)).await
            }
            async fn sheet_rows(
                &self,
                l: &::switchboard_domain::SheetLinkId,
            ) -> $crate::StoreResult<Vec<::switchboard_domain::SheetRow>> {
                self.$wrap("sheet_rows", self.$field.sheet_rows(l)).await
            }
            async fn put_sheet_rows(&self, r: &[::switchboard_domain::SheetRow]) -> $crate::StoreResult<()> {
                self.$wrap("put_sheet_rows", self.$field.put_sheet_rows(r)).await
            }
            async fn delete_sheet_rows(
                &self,
                l: &::switchboard_domain::SheetLinkId,
                c: &[::switchboard_domain::ContactId],
            ) -> $crate::StoreResult<u64> {
                self.$wrap("delete_sheet_rows", self.$field.delete_sheet_rows(l, c)).await
            }
        }
    };
}

/// The recordings and transcripts part of [`decorate_storage!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __forward_transcript_stores {
    ($ty:ty, $field:tt, $wrap:ident) => {
        #[async_trait::async_trait]
        impl $crate::TranscriptStore for $ty {
            async fn upsert_recording(
                &self,
                r: &::switchboard_domain::Recording,
            ) -> $crate::StoreResult<::switchboard_domain::Recording> {
                self.$wrap("upsert_recording", self.$field.upsert_recording(r)).await
            }
            async fn get_recording(
                &self,
                id: &::switchboard_domain::RecordingId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Recording>> {
                self.$wrap("get_recording", self.$field.get_recording(id)).await
            }
            async fn find_recording(
                &self,
                p: ::switchboard_domain::recording::RecordingProvider,
                id: &str,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Recording>> {
                self.$wrap("find_recording", self.$field.find_recording(p, id)).await
            }
            async fn recordings_of_call(
                &self,
                c: &::switchboard_domain::CallId,
            ) -> $crate::StoreResult<Vec<::switchboard_domain::Recording>> {
                self.$wrap("recordings_of_call", self.$field.recordings_of_call(c)).await
            }
            async fn recordings_to_expire(
                &self,
                before: ::chrono::DateTime<::chrono::Utc>,
                limit: u32,
            ) -> $crate::StoreResult<Vec<::switchboard_domain::Recording>> {
                self.$wrap("recordings_to_expire", self.$field.recordings_to_expire(before, limit)).await
            }
            async fn upsert_transcript(
                &self,
                t: &::switchboard_domain::Transcript,
            ) -> $crate::StoreResult<::switchboard_domain::Transcript> {
                self.$wrap("upsert_transcript", self.$field.upsert_transcript(t)).await
            }
            async fn get_transcript(
                &self,
                id: &::switchboard_domain::TranscriptId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Transcript>> {
                self.$wrap("get_transcript", self.$field.get_transcript(id)).await
            }
            async fn find_transcript(&self, c: &str) -> $crate::StoreResult<Option<::switchboard_domain::Transcript>> {
                self.$wrap("find_transcript", self.$field.find_transcript(c)).await
            }
            async fn transcript_of_call(
                &self,
                c: &::switchboard_domain::CallId,
            ) -> $crate::StoreResult<Option<::switchboard_domain::Transcript>> {
                self.$wrap("transcript_of_call", self.$field.transcript_of_call(c)).await
            }
            async fn list_transcripts(
                &self,
                f: &$crate::TranscriptFilter,
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<::switchboard_domain::Transcript>> {
                self.$wrap("list_transcripts", self.$field.list_transcripts(f, p)).await
            }
            async fn search_transcripts(
                &self,
                q: &$crate::TextQuery,
                f: &$crate::TranscriptFilter,
                o: $crate::SearchOrder,
                p: &$crate::PageRequest,
            ) -> $crate::StoreResult<$crate::Page<$crate::SearchHit>> {
                self.$wrap("search_transcripts", self.$field.search_transcripts(q, f, o, p)).await
            }
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __forward_analytics_stores {
    ($ty:ty, $field:tt, $wrap:ident) => {
        #[async_trait::async_trait]
        impl $crate::AnalyticsStore for $ty {
            async fn rebuild_buckets(&self, b: &[$crate::analytics::Bucket]) -> $crate::StoreResult<u64> {
                self.$wrap("rebuild_buckets", self.$field.rebuild_buckets(b)).await
            }
            async fn rollups(
                &self,
                q: &$crate::analytics::RollupQuery,
            ) -> $crate::StoreResult<Vec<$crate::analytics::Rollup>> {
                self.$wrap("rollups", self.$field.rollups(q)).await
            }
            async fn rollup_rows(
                &self,
                i: $crate::analytics::Interval,
                tz: &str,
                from: ::chrono::DateTime<::chrono::Utc>,
                to: ::chrono::DateTime<::chrono::Utc>,
            ) -> $crate::StoreResult<Vec<$crate::analytics::Rollup>> {
                self.$wrap("rollup_rows", self.$field.rollup_rows(i, tz, from, to)).await
            }
            async fn replace_bucket(
                &self,
                b: &$crate::analytics::Bucket,
                rows: &[($crate::analytics::Scope, $crate::analytics::Metrics)],
            ) -> $crate::StoreResult<u64> {
                self.$wrap("replace_bucket", self.$field.replace_bucket(b, rows)).await
            }
            async fn changed_call_hours(
                &self,
                since: ::chrono::DateTime<::chrono::Utc>,
                limit: u32,
            ) -> $crate::StoreResult<$crate::analytics::Changes> {
                self.$wrap("changed_call_hours", self.$field.changed_call_hours(since, limit)).await
            }
            async fn rollup_watermark(&self) -> $crate::StoreResult<Option<::chrono::DateTime<::chrono::Utc>>> {
                self.$wrap("rollup_watermark", self.$field.rollup_watermark()).await
            }
            async fn advance_rollup_watermark(&self, to: ::chrono::DateTime<::chrono::Utc>) -> $crate::StoreResult<()> {
                self.$wrap("advance_rollup_watermark", self.$field.advance_rollup_watermark(to)).await
            }
        }
    };
}
