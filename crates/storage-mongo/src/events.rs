//! Call events on MongoDB: insert with replay protection (the unique
//! `dedupe_uq` index turns a repeat into a no-op), and keyset-paged lists in
//! `occurred_at` order.

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{Document, doc};
use mongodb::options::FindOptions;
use switchboard_domain::{CallEvent, CallId};
use switchboard_storage::events::{decode_event_cursor, event_cursor};
use switchboard_storage::{EventFilter, EventStore, Page, PageRequest, StoreResult};

use crate::docs::{EventDoc, and, bson_date, keyset};
use crate::{MongoStore, is_code, map_err};

/// Replay check of a webhook (the `dedupe_uq` index).
pub(crate) fn dedupe_filter(key: &str) -> Document {
    doc! { "dedupe_key": key }
}

/// Events of one call (the `call_occurred` index, with [`event_sort`]).
pub(crate) fn events_of(call_id: &str) -> Document {
    doc! { "call_id": call_id }
}

pub(crate) fn event_sort() -> Document {
    doc! { "occurred_at": 1, "_id": 1 }
}

#[async_trait]
impl EventStore for MongoStore {
    async fn insert_event(&self, event: &CallEvent) -> StoreResult<bool> {
        match self.events.insert_one(EventDoc::try_from(event)?).await {
            Ok(_) => Ok(true),
            Err(e) if is_code(&e, 11000) => Ok(false),
            Err(e) => Err(map_err(e)),
        }
    }

    async fn event_exists(&self, dedupe_key: &str) -> StoreResult<bool> {
        let n = self.events.count_documents(dedupe_filter(dedupe_key)).limit(1).await.map_err(map_err)?;
        Ok(n > 0)
    }

    async fn list_call_events(&self, call_id: &CallId, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        self.events_page(events_of(call_id.as_str()), page).await
    }

    async fn list_events(&self, filter: &EventFilter, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        let mut q = Document::new();
        match (filter.type_prefix(), &filter.event_type) {
            (Some(prefix), _) => {
                // Anchored prefix regex: served by the (event_type, occurred_at) index.
                q.insert("event_type", doc! { "$regex": format!("^{}", regex_escape(prefix)) });
            }
            (None, Some(t)) => {
                q.insert("event_type", t.as_str());
            }
            (None, None) => {}
        }
        if let Some(s) = filter.source {
            q.insert("source", s.as_str());
        }
        let mut range = Document::new();
        if let Some(t) = filter.occurred_after {
            range.insert("$gte", bson_date(t));
        }
        if let Some(t) = filter.occurred_before {
            range.insert("$lt", bson_date(t));
        }
        if !range.is_empty() {
            q.insert("occurred_at", range);
        }
        self.events_page(q, page).await
    }
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars() {
        if "\\^$.|?*+()[]{}".contains(ch) {
            out.push('\\');
        }
        out.push(ch);
    }
    out
}

impl MongoStore {
    async fn events_page(&self, q: Document, page: &PageRequest) -> StoreResult<Page<CallEvent>> {
        let cursor = decode_event_cursor(page)?;
        let limit = page.clamped_limit();
        let q = match cursor {
            Some(c) => and(q, keyset("occurred_at", "$gt", c.key, &c.id)),
            None => q,
        };
        let opts = FindOptions::builder().sort(event_sort()).limit(i64::from(limit) + 1).build();
        let docs: Vec<EventDoc> =
            self.events.find(q).with_options(opts).await.map_err(map_err)?.try_collect().await.map_err(map_err)?;
        let events = docs.into_iter().map(CallEvent::try_from).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_overfetch(events, limit, event_cursor))
    }
}
