//! Keyset (cursor) pagination shared by both backends.
//!
//! A cursor is the sort key and id of the last item of a page, plus the name
//! of the sort it belongs to, encoded as URL-safe base64 JSON. It is opaque to
//! clients. Keyset pagination is stable under concurrent inserts: a page
//! boundary is a position in the sort order, not an offset, so a new row can
//! never shift an existing one onto a page already served.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::StoreError;

/// Walks a keyset-paged listing from its first page to its end, as a stream
/// of pages: `fetch` is called with the first request and then with each
/// page's `next_cursor`. The one loop every "all matching rows" reader needs
/// (the dialer, enrolment by filter, preflight, analytics, export).
///
/// ```ignore
/// let mut pages = std::pin::pin!(pages(200, |p| store.list_contacts(&filter, sort, &p)));
/// while let Some(items) = pages.try_next().await? { /* … */ }
/// ```
pub fn pages<T, F, Fut>(size: u32, mut fetch: F) -> impl futures::Stream<Item = crate::StoreResult<Vec<T>>>
where
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = crate::StoreResult<Page<T>>>,
{
    futures::stream::try_unfold(Some(PageRequest::first(size)), move |next: Option<PageRequest>| {
        let fetching = next.map(&mut fetch);
        async move {
            let Some(fetching) = fetching else { return Ok(None) };
            let page = fetching.await?;
            let next = page.next_cursor.map(|c| PageRequest { cursor: Some(c), ..PageRequest::first(size) });
            Ok(Some((page.items, next)))
        }
    })
}

/// The largest page a caller may ask for.
pub const MAX_LIMIT: u32 = 200;
/// The page size when none is given.
pub const DEFAULT_LIMIT: u32 = 50;

/// Position after which the next page starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Sort the cursor was issued for.
    #[serde(rename = "s")]
    pub sort: String,
    /// Sort key of the last item (Unix milliseconds).
    #[serde(rename = "k")]
    pub key: i64,
    /// Id of the last item (tie-breaker).
    #[serde(rename = "i")]
    pub id: String,
}

impl Cursor {
    /// Opaque string form.
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("cursor serialises"))
    }

    /// Parses an opaque cursor, checking it was issued for `sort`.
    pub fn decode(s: &str, sort: &str) -> Result<Cursor, StoreError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| StoreError::Invalid("cursor is not a cursor this API issued".into()))?;
        let c: Cursor = serde_json::from_slice(&bytes)
            .map_err(|_| StoreError::Invalid("cursor is not a cursor this API issued".into()))?;
        if c.sort != sort {
            return Err(StoreError::Invalid(format!("cursor was issued for sort `{}`, not `{}`", c.sort, sort)));
        }
        Ok(c)
    }
}

/// A page request: size and where to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Page size, 1..=MAX_LIMIT.
    pub limit: u32,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { limit: DEFAULT_LIMIT, cursor: None }
    }
}

impl PageRequest {
    /// First page of `limit` items.
    pub fn first(limit: u32) -> Self {
        PageRequest { limit, cursor: None }
    }

    /// The limit clamped to 1..=MAX_LIMIT.
    pub fn clamped_limit(&self) -> u32 {
        self.limit.clamp(1, MAX_LIMIT)
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// Items in sort order.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only tells
    /// that another page exists.
    pub fn from_overfetch(mut items: Vec<T>, limit: u32, cursor_of: impl Fn(&T) -> Cursor) -> Page<T> {
        let limit = limit as usize;
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| cursor_of(last).encode())
        } else {
            None
        };
        Page { items, next_cursor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_is_bound_to_its_sort() {
        let c = Cursor { sort: "-started_at".into(), key: 42, id: "call_x".into() };
        let s = c.encode();
        assert_eq!(Cursor::decode(&s, "-started_at").unwrap(), c);
        assert!(Cursor::decode(&s, "started_at").is_err());
        assert!(Cursor::decode("garbage!", "-started_at").is_err());
    }

    #[test]
    fn overfetch_sets_next_cursor_only_when_more_rows_exist() {
        let mk = |v: &i64| Cursor { sort: "x".into(), key: *v, id: v.to_string() };
        let p = Page::from_overfetch(vec![1, 2, 3], 2, mk);
        assert_eq!(p.items, vec![1, 2]);
        assert_eq!(Cursor::decode(p.next_cursor.as_deref().unwrap(), "x").unwrap().key, 2);
        let p = Page::from_overfetch(vec![1, 2], 2, mk);
        assert!(p.next_cursor.is_none());
    }
}
