//! Change streams: every committed change to `calls` and
//! `campaign_contacts`, whoever wrote it, for the live feed; and the feed's
//! resume token, saved in `live_state` so a restarted watcher resumes after
//! the last change it handled.
//!
//! A server without change streams (a standalone `mongod` answers
//! "The $changeStream stage is only supported on replica sets", code 40573)
//! gives `Ok(None)`: the live feed then keeps publishing from our own writes.

use futures::StreamExt;
use mongodb::bson::{Bson, Document, doc};
use mongodb::change_stream::event::{ChangeStreamEvent, ResumeToken};
use switchboard_domain::time::now_ms;
use switchboard_domain::{CallId, EnrollmentId};
use switchboard_storage::{Change, ChangeStream, Changed, StoreError, StoreResult};

use crate::docs::bson_date;
use crate::schema::{CALLS, ENROLLMENTS, LIVE_STATE};
use crate::{MongoStore, is_code, map_err};

/// Server codes meaning "no change streams here" (standalone server; a
/// deployment that does not support `$changeStream`).
const NO_CHANGE_STREAMS: [i32; 2] = [40573, 136];

fn token_text(t: &ResumeToken) -> StoreResult<String> {
    let b = mongodb::bson::serialize_to_bson(t).map_err(|e| StoreError::Other(anyhow::anyhow!("resume token: {e}")))?;
    Ok(b.into_relaxed_extjson().to_string())
}

fn token_of(text: &str) -> StoreResult<ResumeToken> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| StoreError::Invalid(format!("resume token is not JSON: {e}")))?;
    let b = Bson::try_from(v).map_err(|e| StoreError::Invalid(format!("resume token: {e}")))?;
    mongodb::bson::deserialize_from_bson(b).map_err(|e| StoreError::Invalid(format!("resume token: {e}")))
}

fn decode(ev: ChangeStreamEvent<Document>) -> StoreResult<Option<Change>> {
    let coll = ev.ns.as_ref().and_then(|n| n.coll.as_deref());
    let id = ev.document_key.as_ref().and_then(|k| k.get_str("_id").ok());
    let (Some(coll), Some(id)) = (coll, id) else { return Ok(None) };
    let what = match coll {
        CALLS => CallId::parse(id).ok().map(Changed::Call),
        ENROLLMENTS => EnrollmentId::parse(id).ok().map(Changed::Enrollment),
        _ => None,
    };
    Ok(match what {
        Some(what) => Some(Change { what, token: token_text(&ev.id)? }),
        None => None,
    })
}

impl MongoStore {
    pub(crate) async fn open_changes(&self, after: Option<String>) -> StoreResult<Option<ChangeStream>> {
        let pipeline = [doc! { "$match": {
            "ns.coll": { "$in": [CALLS, ENROLLMENTS] },
            "operationType": { "$in": ["insert", "update", "replace"] },
        }}];
        let mut watch = self.db.watch().pipeline(pipeline);
        if let Some(t) = after {
            watch = watch.resume_after(token_of(&t)?);
        }
        let stream = match watch.await {
            Ok(s) => s,
            Err(e) if NO_CHANGE_STREAMS.iter().any(|c| is_code(&e, *c)) => return Ok(None),
            Err(e) => return Err(map_err(e)),
        };
        Ok(Some(
            stream
                .filter_map(|ev| async move {
                    match ev {
                        Ok(ev) => decode(ev).transpose(),
                        Err(e) => Some(Err(map_err(e))),
                    }
                })
                .boxed(),
        ))
    }

    pub(crate) async fn load_change_token(&self, name: &str) -> StoreResult<Option<String>> {
        let d = self.db.collection::<Document>(LIVE_STATE).find_one(doc! { "_id": name }).await.map_err(map_err)?;
        Ok(d.and_then(|d| d.get_str("token").ok().map(str::to_owned)))
    }

    pub(crate) async fn store_change_token(&self, name: &str, token: &str) -> StoreResult<()> {
        self.db
            .collection::<Document>(LIVE_STATE)
            .update_one(doc! { "_id": name }, doc! { "$set": { "token": token, "at": bson_date(now_ms()) } })
            .upsert(true)
            .await
            .map_err(map_err)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_tokens_survive_their_text_form() {
        let b = mongodb::bson::serialize_to_bson(&doc! { "_data": "8263A1B2C3000000012B0229296E04" }).unwrap();
        let t: ResumeToken = mongodb::bson::deserialize_from_bson(b).unwrap();
        let text = token_text(&t).unwrap();
        assert_eq!(token_of(&text).unwrap(), t, "{text}");
        assert!(matches!(token_of("not json"), Err(StoreError::Invalid(_))));
    }
}
