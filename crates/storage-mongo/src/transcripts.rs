//! Recordings (`recordings`) and transcripts (`transcripts`) on MongoDB, as
//! typed documents (every instant a BSON date). Both are upserted
//! optimistically: read, apply the domain rule (`Recording::merge`, the
//! transcript replace rules), write back with `replace_one({_id, v})`; a lost
//! race re-reads. The unique indexes (provider, provider_id) and
//! `conversation_id` make a duplicate impossible.
//!
//! Search. Each document also carries its text as the contract's words
//! (`fts_turns`, `fts_summary`: lower-cased runs of letters and digits,
//! space-separated), and the text index reads those, not the raw
//! `turns.message` / `summary`: MongoDB's own tokenizer keeps e.g. `re_fund`
//! or `refund™` as one token, which would hide a match of `fund` / `refund`.
//! `$text` cannot say what a `TextQuery` says (its terms are ORed, quoted
//! phrases ANDed, no prefixes), so it only pre-selects and scores: the `$search` string is the words of one group
//! without prefixes (every match contains one of them), and the exact
//! predicate — the contract's reference: a term hits a transcript when it
//! matches one of its turns or its summary; every group needs a hit, no `not`
//! term may hit — runs in Rust on the candidates, as do the filters (also
//! sent to the server). When every group has a prefix, substring regexes of
//! one group's terms on the word fields pre-select instead. On a server whose `$text` is not
//! usable ([`crate::ServerGaps::no_text_search`], probed by test harnesses
//! only) the filtered candidates are scanned in Rust.
//!
//! Pagination: newest first is a `(started_at, _id)` keyset; relevance an
//! offset over the ordered matches (`textScore` is corpus-dependent, so a
//! score keyset would not be stable under writes either).

use async_trait::async_trait;
use futures::TryStreamExt;
use mongodb::bson::{self, Bson, DateTime as BsonDate, Document, doc};
use mongodb::options::FindOptions;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_domain::recording::{RecordingProvider, RecordingStatus};
use switchboard_domain::transcript::{CriterionResult, DataPoint, Turn};
use switchboard_domain::{CallId, CampaignId, ContactId, Recording, RecordingId, Transcript, TranscriptId};
use switchboard_storage::transcripts::words;
use switchboard_storage::{
    Cursor, Page, PageRequest, SearchHit, SearchOrder, StoreError, StoreResult, Term, TextQuery, TranscriptFilter,
    TranscriptStore,
};

use crate::docs::{and, bson_date, chrono_date, keyset};
use crate::schema::{RECORDINGS, TRANSCRIPTS};
use crate::{MongoStore, map_err};

/// Optimistic write attempts before giving up (`Unavailable`).
const ATTEMPTS: usize = 16;

fn bad(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(anyhow::anyhow!("recording or transcript document does not convert: {e}"))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct RecordingDoc {
    #[serde(rename = "_id")]
    id: String,
    provider: RecordingProvider,
    provider_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    call_sid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    conversation_id: Option<String>,
    status: RecordingStatus,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    duration_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    channels: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    track: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    started_at: Option<BsonDate>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    media_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    error_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    deleted_at: Option<BsonDate>,
    created_at: BsonDate,
    updated_at: BsonDate,
    /// Write version (optimistic concurrency), not part of the domain type.
    v: i64,
}

fn recording_doc(r: &Recording, v: i64) -> StoreResult<Document> {
    let d = RecordingDoc {
        id: r.id.to_string(),
        provider: r.provider,
        provider_id: r.provider_id.clone(),
        call_id: r.call_id.as_ref().map(|c| c.to_string()),
        call_sid: r.call_sid.clone(),
        conversation_id: r.conversation_id.clone(),
        status: r.status,
        duration_secs: r.duration_secs,
        channels: r.channels,
        source: r.source.clone(),
        track: r.track.clone(),
        started_at: r.started_at.map(bson_date),
        media_url: r.media_url.clone(),
        format: r.format.clone(),
        error_code: r.error_code.clone(),
        deleted_at: r.deleted_at.map(bson_date),
        created_at: bson_date(r.created_at),
        updated_at: bson_date(r.updated_at),
        v,
    };
    bson::serialize_to_document(&d).map_err(bad)
}

fn recording_from(d: Document) -> StoreResult<(Recording, i64)> {
    let d: RecordingDoc = bson::deserialize_from_document(d).map_err(bad)?;
    Ok((
        Recording {
            id: RecordingId::parse(&d.id).map_err(bad)?,
            provider: d.provider,
            provider_id: d.provider_id,
            call_id: d.call_id.as_deref().map(CallId::parse).transpose().map_err(bad)?,
            call_sid: d.call_sid,
            conversation_id: d.conversation_id,
            status: d.status,
            duration_secs: d.duration_secs,
            channels: d.channels,
            source: d.source,
            track: d.track,
            started_at: d.started_at.map(chrono_date),
            media_url: d.media_url,
            format: d.format,
            error_code: d.error_code,
            deleted_at: d.deleted_at.map(chrono_date),
            created_at: chrono_date(d.created_at),
            updated_at: chrono_date(d.updated_at),
        },
        d.v,
    ))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TranscriptDoc {
    #[serde(rename = "_id")]
    id: String,
    conversation_id: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    call_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    campaign_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    contact_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    agent_id: Option<String>,
    status: String,
    turns: Vec<Turn>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    duration_secs: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    cost: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    termination_reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    call_successful: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    summary: Option<String>,
    criteria: Vec<CriterionResult>,
    data_collection: Vec<DataPoint>,
    has_audio: bool,
    started_at: BsonDate,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    analysis: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    analyzer_version: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    sentiment: Option<f64>,
    created_at: BsonDate,
    updated_at: BsonDate,
    v: i64,
    /// Each turn's words as the contract splits them (what the text index reads).
    #[serde(default)]
    fts_turns: Vec<String>,
    /// The summary's words (what the text index reads).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    fts_summary: Option<String>,
}

/// Text as the contract's words, space-separated (see the module doc).
fn normalized(text: &str) -> String {
    words(text).join(" ")
}

fn transcript_doc(t: &Transcript, v: i64) -> StoreResult<Document> {
    let d = TranscriptDoc {
        id: t.id.to_string(),
        conversation_id: t.conversation_id.clone(),
        call_id: t.call_id.as_ref().map(|c| c.to_string()),
        campaign_id: t.campaign_id.as_ref().map(|c| c.to_string()),
        contact_id: t.contact_id.as_ref().map(|c| c.to_string()),
        agent_id: t.agent_id.clone(),
        status: t.status.clone(),
        turns: t.turns.clone(),
        language: t.language.clone(),
        duration_secs: t.duration_secs,
        cost: t.cost,
        termination_reason: t.termination_reason.clone(),
        call_successful: t.call_successful.clone(),
        summary: t.summary.clone(),
        criteria: t.criteria.clone(),
        data_collection: t.data_collection.clone(),
        has_audio: t.has_audio,
        started_at: bson_date(t.started_at),
        analysis: t.analysis.clone(),
        analyzer_version: t.analyzer_version.map(i64::from),
        sentiment: t.sentiment,
        created_at: bson_date(t.created_at),
        updated_at: bson_date(t.updated_at),
        v,
        fts_turns: t.turns.iter().map(|x| normalized(&x.message)).collect(),
        fts_summary: t.summary.as_deref().map(normalized),
    };
    bson::serialize_to_document(&d).map_err(bad)
}

fn transcript_from(d: Document) -> StoreResult<(Transcript, i64)> {
    let d: TranscriptDoc = bson::deserialize_from_document(d).map_err(bad)?;
    Ok((
        Transcript {
            id: TranscriptId::parse(&d.id).map_err(bad)?,
            conversation_id: d.conversation_id,
            call_id: d.call_id.as_deref().map(CallId::parse).transpose().map_err(bad)?,
            campaign_id: d.campaign_id.as_deref().map(CampaignId::parse).transpose().map_err(bad)?,
            contact_id: d.contact_id.as_deref().map(ContactId::parse).transpose().map_err(bad)?,
            agent_id: d.agent_id,
            status: d.status,
            turns: d.turns,
            language: d.language,
            duration_secs: d.duration_secs,
            cost: d.cost,
            termination_reason: d.termination_reason,
            call_successful: d.call_successful,
            summary: d.summary,
            criteria: d.criteria,
            data_collection: d.data_collection,
            has_audio: d.has_audio,
            started_at: chrono_date(d.started_at),
            analysis: d.analysis,
            analyzer_version: d.analyzer_version.map(u32::try_from).transpose().map_err(bad)?,
            sentiment: d.sentiment,
            created_at: chrono_date(d.created_at),
            updated_at: chrono_date(d.updated_at),
        },
        d.v,
    ))
}

// ---- the search predicate, in Rust ----

fn texts(t: &Transcript) -> impl Iterator<Item = &str> {
    t.turns.iter().map(|x| x.message.as_str()).chain(t.summary.as_deref())
}

/// The contract's match predicate (see the module doc).
fn text_matches(q: &TextQuery, t: &Transcript) -> bool {
    let hits = |term: &Term| texts(t).any(|x| TextQuery::term_hits(term, x));
    q.all.iter().all(|g| g.iter().any(hits)) && !q.not.iter().any(hits)
}

fn filter_matches(f: &TranscriptFilter, t: &Transcript) -> bool {
    f.campaign_id.as_ref().is_none_or(|c| t.campaign_id.as_ref() == Some(c))
        && f.agent_id.as_ref().is_none_or(|a| t.agent_id.as_ref() == Some(a))
        && f.contact_id.as_ref().is_none_or(|c| t.contact_id.as_ref() == Some(c))
        && f.started_after.is_none_or(|a| t.started_at >= a)
        && f.started_before.is_none_or(|b| t.started_at < b)
        && f.call_successful.as_ref().is_none_or(|v| t.call_successful.as_ref() == Some(v))
        && f.sentiment_min.is_none_or(|m| t.sentiment.is_some_and(|x| x >= m))
        && f.sentiment_max.is_none_or(|m| t.sentiment.is_some_and(|x| x <= m))
        && f.criterion.as_ref().is_none_or(|(id, r)| t.criteria.iter().any(|c| &c.id == id && &c.result == r))
}

/// The filters as a query (also checked in Rust, see [`filter_matches`]).
fn filter_doc(f: &TranscriptFilter) -> Document {
    let mut q = Document::new();
    if let Some(c) = &f.campaign_id {
        q.insert("campaign_id", c.as_str());
    }
    if let Some(a) = &f.agent_id {
        q.insert("agent_id", a.as_str());
    }
    if let Some(c) = &f.contact_id {
        q.insert("contact_id", c.as_str());
    }
    if let Some(v) = &f.call_successful {
        q.insert("call_successful", v.as_str());
    }
    let mut started = Document::new();
    if let Some(a) = f.started_after {
        started.insert("$gte", bson_date(a));
    }
    if let Some(b) = f.started_before {
        started.insert("$lt", bson_date(b));
    }
    if !started.is_empty() {
        q.insert("started_at", started);
    }
    let mut sentiment = Document::new();
    if let Some(m) = f.sentiment_min {
        sentiment.insert("$gte", m);
    }
    if let Some(m) = f.sentiment_max {
        sentiment.insert("$lte", m);
    }
    if !sentiment.is_empty() {
        q.insert("sentiment", sentiment);
    }
    if let Some((id, result)) = &f.criterion {
        q.insert("criteria", doc! { "$elemMatch": { "id": id.as_str(), "result": result.as_str() } });
    }
    q
}

/// How candidates are pre-selected on the server.
enum Preselect {
    /// `$text` with this `$search` string (scored by `textScore`).
    Text(String),
    /// Regexes (one group's terms, case-insensitive substrings).
    Regex(Document),
    /// Nothing: every filtered transcript is a candidate.
    Scan,
}

fn preselect(q: &TextQuery, text_search: bool) -> Preselect {
    if text_search && let Some(g) = q.all.iter().find(|g| g.iter().all(|t| !matches!(t, Term::Prefix(_)))) {
        let mut words: Vec<&str> = Vec::new();
        for t in g {
            match t {
                Term::Word(w) => words.push(w),
                Term::Phrase(ws) => words.extend(ws.iter().map(String::as_str)),
                Term::Prefix(_) => {}
            }
        }
        words.sort_unstable();
        words.dedup();
        return Preselect::Text(words.join(" "));
    }
    if let Some(g) = q.all.first().filter(|_| text_search) {
        let mut or = Vec::new();
        for t in g {
            let needle = match t {
                Term::Word(w) | Term::Prefix(w) => w.as_str(),
                Term::Phrase(ws) => ws[0].as_str(),
            };
            let re = doc! { "$regex": regex_escape(needle) };
            or.push(doc! { "fts_turns": re.clone() });
            or.push(doc! { "fts_summary": re });
        }
        return Preselect::Regex(doc! { "$or": or });
    }
    Preselect::Scan
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if !c.is_alphanumeric() {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

const LIST_SORT: &str = "transcripts_started_desc";
const SEARCH_NEWEST: &str = "transcript_search_newest";
const SEARCH_RELEVANCE: &str = "transcript_search_relevance";

impl MongoStore {
    fn recordings(&self) -> mongodb::Collection<Document> {
        self.db.collection(RECORDINGS)
    }
    fn transcripts(&self) -> mongodb::Collection<Document> {
        self.db.collection(TRANSCRIPTS)
    }

    /// Whether `$text` works as MongoDB's does (terms ORed), on a scratch collection.
    pub(crate) async fn text_search_works(&self, name: &str) -> bool {
        let coll = self.db.collection::<Document>(name);
        let built = coll
            .create_index(
                mongodb::IndexModel::builder()
                    .keys(doc! { "m": "text" })
                    .options(mongodb::options::IndexOptions::builder().default_language("none".to_owned()).build())
                    .build(),
            )
            .await
            .is_ok();
        let _ = coll
            .insert_many([
                doc! { "_id": "a", "m": "alpha one" },
                doc! { "_id": "b", "m": "beta two" },
                doc! { "_id": "c", "m": "gamma" },
            ])
            .await;
        let found: Option<Vec<Document>> = match coll.find(doc! { "$text": { "$search": "alpha beta" } }).await {
            Ok(c) => c.try_collect().await.ok(),
            Err(_) => None,
        };
        let _ = coll.drop().await;
        let mut ids: Vec<String> =
            found.unwrap_or_default().iter().filter_map(|d| d.get_str("_id").ok().map(str::to_owned)).collect();
        ids.sort();
        built && ids == ["a", "b"]
    }

    /// Streams `query` in `sort` order, keeping transcripts that pass `keep`, until `want` are kept.
    async fn scan(
        &self,
        query: Document,
        sort: Document,
        projection: Option<Document>,
        want: Option<usize>,
        mut keep: impl FnMut(&Transcript, &Document) -> bool,
    ) -> StoreResult<Vec<(Transcript, Document)>> {
        let opts = FindOptions::builder().sort(sort).projection(projection).batch_size(200).build();
        let mut cur = self.transcripts().find(query).with_options(opts).await.map_err(map_err)?;
        let mut out = Vec::new();
        while let Some(d) = cur.try_next().await.map_err(map_err)? {
            let extra = doc! { "score": d.get("_score").cloned().unwrap_or(Bson::Null) };
            let mut d = d;
            d.remove("_score");
            let (t, _) = transcript_from(d)?;
            if keep(&t, &extra) {
                out.push((t, extra));
                if want.is_some_and(|w| out.len() >= w) {
                    break;
                }
            }
        }
        Ok(out)
    }
}

#[async_trait]
impl TranscriptStore for MongoStore {
    async fn upsert_recording(&self, r: &Recording) -> StoreResult<Recording> {
        let key = doc! { "provider": r.provider.as_str(), "provider_id": r.provider_id.as_str() };
        for _ in 0..ATTEMPTS {
            match self.recordings().find_one(key.clone()).await.map_err(map_err)? {
                None => match self.recordings().insert_one(recording_doc(r, 1)?).await.map_err(map_err) {
                    Ok(_) => return Ok(r.clone()),
                    Err(StoreError::Conflict { what }) => {
                        if self.recordings().find_one(key.clone()).await.map_err(map_err)?.is_none() {
                            return Err(StoreError::Conflict { what });
                        }
                    }
                    Err(e) => return Err(e),
                },
                Some(d) => {
                    let (mut stored, v) = recording_from(d)?;
                    stored.merge(r);
                    let res = self
                        .recordings()
                        .replace_one(doc! { "_id": stored.id.as_str(), "v": v }, recording_doc(&stored, v + 1)?)
                        .await
                        .map_err(map_err)?;
                    if res.matched_count == 1 {
                        return Ok(stored);
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!("recording {} kept changing; retry", r.provider_id)))
    }

    async fn get_recording(&self, id: &RecordingId) -> StoreResult<Option<Recording>> {
        let d = self.recordings().find_one(doc! { "_id": id.as_str() }).await.map_err(map_err)?;
        Ok(d.map(recording_from).transpose()?.map(|(r, _)| r))
    }

    async fn find_recording(&self, provider: RecordingProvider, provider_id: &str) -> StoreResult<Option<Recording>> {
        let d = self
            .recordings()
            .find_one(doc! { "provider": provider.as_str(), "provider_id": provider_id })
            .await
            .map_err(map_err)?;
        Ok(d.map(recording_from).transpose()?.map(|(r, _)| r))
    }

    async fn recordings_of_call(&self, call: &CallId) -> StoreResult<Vec<Recording>> {
        let opts = FindOptions::builder().sort(doc! { "call_id": 1, "created_at": 1, "_id": 1 }).build();
        let docs: Vec<Document> = self
            .recordings()
            .find(doc! { "call_id": call.as_str() })
            .with_options(opts)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(|d| recording_from(d).map(|(r, _)| r)).collect()
    }

    async fn recordings_to_expire(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: u32,
    ) -> StoreResult<Vec<Recording>> {
        // Served by the `status_created` index.
        let opts = FindOptions::builder()
            .sort(doc! { "status": 1, "created_at": 1, "_id": 1 })
            .limit(i64::from(limit))
            .build();
        let docs: Vec<Document> = self
            .recordings()
            .find(doc! { "status": RecordingStatus::Completed.as_str(), "created_at": { "$lt": bson_date(before) } })
            .with_options(opts)
            .await
            .map_err(map_err)?
            .try_collect()
            .await
            .map_err(map_err)?;
        docs.into_iter().map(|d| recording_from(d).map(|(r, _)| r)).collect()
    }

    async fn upsert_transcript(&self, t: &Transcript) -> StoreResult<Transcript> {
        let key = doc! { "conversation_id": t.conversation_id.as_str() };
        for _ in 0..ATTEMPTS {
            match self.transcripts().find_one(key.clone()).await.map_err(map_err)? {
                None => match self.transcripts().insert_one(transcript_doc(t, 1)?).await.map_err(map_err) {
                    Ok(_) => return Ok(t.clone()),
                    Err(StoreError::Conflict { what }) => {
                        if self.transcripts().find_one(key.clone()).await.map_err(map_err)?.is_none() {
                            return Err(StoreError::Conflict { what });
                        }
                    }
                    Err(e) => return Err(e),
                },
                Some(d) => {
                    let (old, v) = transcript_from(d)?;
                    if old.is_final() && !t.is_final() {
                        return Ok(old);
                    }
                    let mut new = t.clone();
                    new.id = old.id.clone();
                    new.created_at = old.created_at;
                    if new.analysis.is_none() {
                        new.analysis = old.analysis.clone();
                        new.analyzer_version = old.analyzer_version;
                        new.sentiment = old.sentiment;
                    }
                    let res = self
                        .transcripts()
                        .replace_one(doc! { "_id": old.id.as_str(), "v": v }, transcript_doc(&new, v + 1)?)
                        .await
                        .map_err(map_err)?;
                    if res.matched_count == 1 {
                        return Ok(new);
                    }
                }
            }
        }
        Err(StoreError::Unavailable(format!("transcript of {} kept changing; retry", t.conversation_id)))
    }

    async fn get_transcript(&self, id: &TranscriptId) -> StoreResult<Option<Transcript>> {
        let d = self.transcripts().find_one(doc! { "_id": id.as_str() }).await.map_err(map_err)?;
        Ok(d.map(transcript_from).transpose()?.map(|(t, _)| t))
    }

    async fn find_transcript(&self, conversation_id: &str) -> StoreResult<Option<Transcript>> {
        let d = self.transcripts().find_one(doc! { "conversation_id": conversation_id }).await.map_err(map_err)?;
        Ok(d.map(transcript_from).transpose()?.map(|(t, _)| t))
    }

    async fn transcript_of_call(&self, call: &CallId) -> StoreResult<Option<Transcript>> {
        let d = self
            .transcripts()
            .find_one(doc! { "call_id": call.as_str() })
            .sort(doc! { "started_at": -1, "_id": -1 })
            .await
            .map_err(map_err)?;
        Ok(d.map(transcript_from).transpose()?.map(|(t, _)| t))
    }

    async fn list_transcripts(&self, filter: &TranscriptFilter, page: &PageRequest) -> StoreResult<Page<Transcript>> {
        let cursor = page.cursor.as_deref().map(|c| Cursor::decode(c, LIST_SORT)).transpose()?;
        let limit = page.clamped_limit();
        let mut q = filter_doc(filter);
        if let Some(c) = &cursor {
            q = and(q, keyset("started_at", "$lt", c.key, &c.id));
        }
        let items = self
            .scan(q, doc! { "started_at": -1, "_id": -1 }, None, Some(limit as usize + 1), |t, _| {
                filter_matches(filter, t)
            })
            .await?
            .into_iter()
            .map(|(t, _)| t)
            .collect();
        Ok(Page::from_overfetch(items, limit, |t| Cursor {
            sort: LIST_SORT.into(),
            key: t.started_at.timestamp_millis(),
            id: t.id.to_string(),
        }))
    }

    async fn search_transcripts(
        &self,
        q: &TextQuery,
        filter: &TranscriptFilter,
        order: SearchOrder,
        page: &PageRequest,
    ) -> StoreResult<Page<SearchHit>> {
        if q.all.is_empty() {
            return Err(StoreError::Invalid("the query has no words to look for".into()));
        }
        let sort_name = match order {
            SearchOrder::Relevance => SEARCH_RELEVANCE,
            SearchOrder::Newest => SEARCH_NEWEST,
        };
        let cursor = page.cursor.as_deref().map(|c| Cursor::decode(c, sort_name)).transpose()?;
        let limit = page.clamped_limit();
        let offset = match (order, &cursor) {
            (SearchOrder::Relevance, Some(c)) => usize::try_from(c.key)
                .map_err(|_| StoreError::Invalid("cursor is not a cursor this API issued".into()))?,
            _ => 0,
        };
        let mut query = filter_doc(filter);
        if let (SearchOrder::Newest, Some(c)) = (order, &cursor) {
            query = and(query, keyset("started_at", "$lt", c.key, &c.id));
        }
        let pre = preselect(q, !self.gaps.no_text_search);
        let (projection, text_sort) = match &pre {
            Preselect::Text(s) => {
                query = and(query, doc! { "$text": { "$search": s.as_str(), "$language": "none" } });
                (Some(doc! { "_score": { "$meta": "textScore" } }), true)
            }
            Preselect::Regex(r) => {
                query = and(query, r.clone());
                (None, false)
            }
            Preselect::Scan => (None, false),
        };
        let keep = |t: &Transcript, _: &Document| filter_matches(filter, t) && text_matches(q, t);
        let hit = |t: Transcript, extra: &Document| {
            let (turn, n) = q.best_turn(&t);
            let score = if text_sort { extra.get_f64("score").unwrap_or(0.0) } else { n as f64 };
            SearchHit { transcript: t, score, turn }
        };
        let want = offset + limit as usize + 1;
        let mut hits: Vec<SearchHit> = match (order, text_sort) {
            // Streams in the final order: stop after the page (and one more).
            (SearchOrder::Newest, _) => self
                .scan(query, doc! { "started_at": -1, "_id": -1 }, projection, Some(want), keep)
                .await?
                .into_iter()
                .map(|(t, e)| hit(t, &e))
                .collect(),
            (SearchOrder::Relevance, true) => self
                .scan(query, doc! { "_score": { "$meta": "textScore" }, "_id": -1 }, projection, Some(want), keep)
                .await?
                .into_iter()
                .map(|(t, e)| hit(t, &e))
                .collect(),
            // Scored in Rust: every candidate is read, then ordered.
            (SearchOrder::Relevance, false) => {
                let mut all: Vec<SearchHit> = self
                    .scan(query, doc! { "started_at": -1, "_id": -1 }, projection, None, keep)
                    .await?
                    .into_iter()
                    .map(|(t, e)| hit(t, &e))
                    .collect();
                all.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| b.transcript.id.cmp(&a.transcript.id)));
                all
            }
        };
        if order == SearchOrder::Relevance {
            hits.drain(..offset.min(hits.len()));
        }
        Ok(Page::from_overfetch(hits, limit, |h| match order {
            SearchOrder::Relevance => {
                Cursor { sort: sort_name.into(), key: (offset + limit as usize) as i64, id: String::new() }
            }
            SearchOrder::Newest => Cursor {
                sort: sort_name.into(),
                key: h.transcript.started_at.timestamp_millis(),
                id: h.transcript.id.to_string(),
            },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_pre_selection_uses_a_group_without_prefixes() {
        let q = TextQuery::parse(r#"cancel* refund OR "credit card" -angry"#).unwrap();
        match preselect(&q, true) {
            Preselect::Text(s) => assert_eq!(s, "card credit refund"),
            _ => panic!("expected $text"),
        }
        let q = TextQuery::parse("cancel* ref*").unwrap();
        assert!(matches!(preselect(&q, true), Preselect::Regex(_)));
        assert!(matches!(preselect(&q, false), Preselect::Scan));
        assert_eq!(regex_escape("a.b*"), "a\\.b\\*");
    }
}
