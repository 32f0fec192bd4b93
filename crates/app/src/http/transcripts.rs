//! Phase 3 reads: a call's transcript and recordings, a recording and its
//! media (streamed from the provider with our credentials, `Range` passed
//! through, so users never hold provider credentials), a transcript, and
//! full-text search over transcripts.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use switchboard_domain::recording::RecordingProvider;
use switchboard_domain::{CallId, CampaignId, ContactId, Recording, RecordingId, Transcript, TranscriptId};
use switchboard_storage::{SearchOrder, TextQuery, TranscriptFilter};
use utoipa::ToSchema;

use super::query::Query;
use crate::AppState;
use crate::error::ApiError;

/// A recording on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingOut {
    /// Our id (`rec_…`).
    pub id: String,
    /// `twilio` or `elevenlabs`.
    pub provider: String,
    /// Twilio `RecordingSid`, or the ElevenLabs conversation id.
    pub provider_id: String,
    /// Our call.
    #[schema(required = true)]
    pub call_id: Option<String>,
    /// Twilio CallSid.
    #[schema(required = true)]
    pub call_sid: Option<String>,
    /// ElevenLabs conversation.
    #[schema(required = true)]
    pub conversation_id: Option<String>,
    /// `in-progress`, `completed`, `absent`, `failed`, `deleted`.
    pub status: String,
    /// Seconds.
    #[schema(required = true)]
    pub duration_secs: Option<i64>,
    /// 1 or 2.
    #[schema(required = true)]
    pub channels: Option<i64>,
    /// Twilio `RecordingSource`.
    #[schema(required = true)]
    pub source: Option<String>,
    /// `inbound`, `outbound`, `both`.
    #[schema(required = true)]
    pub track: Option<String>,
    /// When recording started.
    #[schema(required = true)]
    pub started_at: Option<DateTime<Utc>>,
    /// `mp3` or `wav`.
    #[schema(required = true)]
    pub format: Option<String>,
    /// Our URL for the media (`/api/v1/recordings/{id}/media`), while it exists.
    #[schema(required = true)]
    pub media: Option<String>,
    /// Provider error code (absent/failed).
    #[schema(required = true)]
    pub error_code: Option<String>,
    /// When retention deleted it at the provider.
    #[schema(required = true)]
    pub deleted_at: Option<DateTime<Utc>>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Recording> for RecordingOut {
    fn from(r: Recording) -> Self {
        use switchboard_domain::recording::RecordingStatus as S;
        let media = matches!(r.status, S::Completed).then(|| format!("/api/v1/recordings/{}/media", r.id));
        RecordingOut {
            id: r.id.to_string(),
            provider: r.provider.as_str().into(),
            provider_id: r.provider_id,
            call_id: r.call_id.map(|c| c.to_string()),
            call_sid: r.call_sid,
            conversation_id: r.conversation_id,
            status: r.status.as_str().into(),
            duration_secs: r.duration_secs,
            channels: r.channels,
            source: r.source,
            track: r.track,
            started_at: r.started_at,
            format: r.format,
            media,
            error_code: r.error_code,
            deleted_at: r.deleted_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

/// Recordings of a call.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordingList {
    /// Oldest first.
    pub data: Vec<RecordingOut>,
}

/// One turn.
#[derive(Debug, Serialize, ToSchema)]
pub struct TurnOut {
    /// `agent` or `user`.
    pub role: String,
    /// What was said.
    pub message: String,
    /// Seconds since the conversation started.
    #[schema(required = true)]
    pub time_in_call_secs: Option<f64>,
    /// Tool calls, as ElevenLabs reports them.
    pub tool_calls: Vec<Value>,
    /// Tool results, as ElevenLabs reports them.
    pub tool_results: Vec<Value>,
    /// The user interrupted this turn.
    pub interrupted: bool,
}

/// One evaluation criterion result.
#[derive(Debug, Serialize, ToSchema)]
pub struct CriterionOut {
    /// Criterion id.
    pub id: String,
    /// `success`, `failure` or `unknown`.
    pub result: String,
    /// Rationale.
    #[schema(required = true)]
    pub rationale: Option<String>,
}

/// One data-collection field.
#[derive(Debug, Serialize, ToSchema)]
pub struct DataPointOut {
    /// Field id.
    pub id: String,
    /// Value collected (any JSON; null when not collected).
    pub value: Value,
    /// Rationale.
    #[schema(required = true)]
    pub rationale: Option<String>,
}

/// A transcript on the wire.
#[derive(Debug, Serialize, ToSchema)]
pub struct TranscriptOut {
    /// Our id (`trn_…`).
    pub id: String,
    /// ElevenLabs conversation id.
    pub conversation_id: String,
    /// Our call.
    #[schema(required = true)]
    pub call_id: Option<String>,
    /// Campaign.
    #[schema(required = true)]
    pub campaign_id: Option<String>,
    /// Contact.
    #[schema(required = true)]
    pub contact_id: Option<String>,
    /// Agent.
    #[schema(required = true)]
    pub agent_id: Option<String>,
    /// ElevenLabs status (`done`, `failed`, `processing`, …).
    pub status: String,
    /// Turns in order.
    pub turns: Vec<TurnOut>,
    /// Language.
    #[schema(required = true)]
    pub language: Option<String>,
    /// Seconds.
    #[schema(required = true)]
    pub duration_secs: Option<i64>,
    /// Cost in ElevenLabs credits.
    #[schema(required = true)]
    pub cost: Option<i64>,
    /// Why it ended.
    #[schema(required = true)]
    pub termination_reason: Option<String>,
    /// ElevenLabs' verdict.
    #[schema(required = true)]
    pub call_successful: Option<String>,
    /// ElevenLabs' summary.
    #[schema(required = true)]
    pub summary: Option<String>,
    /// Evaluation criteria.
    pub criteria: Vec<CriterionOut>,
    /// Data collection.
    pub data_collection: Vec<DataPointOut>,
    /// ElevenLabs holds audio.
    pub has_audio: bool,
    /// When the conversation started.
    pub started_at: DateTime<Utc>,
    /// Our analysis (sentiment per turn/speaker/overall, keywords, entities); null until analysed.
    #[schema(value_type = Object, nullable = true, required = true)]
    pub analysis: Option<Value>,
    /// Version of the analyser that produced `analysis`.
    #[schema(required = true)]
    pub analyzer_version: Option<u32>,
    /// Overall sentiment (−1..1).
    #[schema(required = true)]
    pub sentiment: Option<f64>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
}

impl From<Transcript> for TranscriptOut {
    fn from(t: Transcript) -> Self {
        TranscriptOut {
            id: t.id.to_string(),
            conversation_id: t.conversation_id,
            call_id: t.call_id.map(|c| c.to_string()),
            campaign_id: t.campaign_id.map(|c| c.to_string()),
            contact_id: t.contact_id.map(|c| c.to_string()),
            agent_id: t.agent_id,
            status: t.status,
            turns: t
                .turns
                .into_iter()
                .map(|u| TurnOut {
                    role: u.role,
                    message: u.message,
                    time_in_call_secs: u.time_in_call_secs,
                    tool_calls: u.tool_calls,
                    tool_results: u.tool_results,
                    interrupted: u.interrupted,
                })
                .collect(),
            language: t.language,
            duration_secs: t.duration_secs,
            cost: t.cost,
            termination_reason: t.termination_reason,
            call_successful: t.call_successful,
            summary: t.summary,
            criteria: t
                .criteria
                .into_iter()
                .map(|c| CriterionOut { id: c.id, result: c.result, rationale: c.rationale })
                .collect(),
            data_collection: t
                .data_collection
                .into_iter()
                .map(|d| DataPointOut { id: d.id, value: d.value, rationale: d.rationale })
                .collect(),
            has_audio: t.has_audio,
            started_at: t.started_at,
            analysis: t.analysis,
            analyzer_version: t.analyzer_version,
            sentiment: t.sentiment,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// One search hit.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHitOut {
    /// Transcript id.
    pub transcript_id: String,
    /// Conversation id.
    pub conversation_id: String,
    /// Our call.
    #[schema(required = true)]
    pub call_id: Option<String>,
    /// Campaign.
    #[schema(required = true)]
    pub campaign_id: Option<String>,
    /// Agent.
    #[schema(required = true)]
    pub agent_id: Option<String>,
    /// When the conversation started.
    pub started_at: DateTime<Utc>,
    /// Relevance (higher is better; the scale depends on the store).
    pub score: f64,
    /// The matching turn's index, or null when the summary matched.
    #[schema(required = true)]
    pub turn: Option<usize>,
    /// Who spoke the matching turn.
    #[schema(required = true)]
    pub speaker: Option<String>,
    /// Seconds into the call of the matching turn.
    #[schema(required = true)]
    pub time_in_call_secs: Option<f64>,
    /// The matching text with the matched words in `[` `]`, cut to about 200 characters.
    pub snippet: String,
}

/// A page of search hits.
#[derive(Debug, Serialize, ToSchema)]
pub struct SearchPage {
    /// Hits, by relevance or newest first.
    pub data: Vec<SearchHitOut>,
    /// Pass as `cursor` for the next page; null on the last page.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// Marks the words of `q` in `text` with `[`…`]` and cuts around the first mark.
pub fn snippet(q: &TextQuery, text: &str) -> String {
    use switchboard_storage::Term;
    let wanted: Vec<&Term> = q.all.iter().flatten().collect();
    let hit = |w: &str| {
        let w = w.to_lowercase();
        wanted.iter().any(|t| match t {
            Term::Word(x) => *x == w,
            Term::Prefix(p) => w.starts_with(p.as_str()),
            Term::Phrase(ws) => ws.contains(&w),
        })
    };
    let mut out = String::new();
    let mut first = None;
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String, first: &mut Option<usize>| {
        if word.is_empty() {
            return;
        }
        if hit(word) {
            first.get_or_insert(out.len());
            out.push('[');
            out.push_str(word);
            out.push(']');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out, &mut first);
            out.push(c);
        }
    }
    flush(&mut word, &mut out, &mut first);
    let start = first.unwrap_or(0);
    let from = out[..start].char_indices().rev().nth(60).map(|(i, _)| i).unwrap_or(0);
    let cut: String = out[from..].chars().take(200).collect();
    let mut s = if from > 0 { format!("…{cut}") } else { cut };
    if out[from..].chars().count() > 200 {
        s.push('…');
    }
    s
}

fn call_id(id: &str) -> Result<CallId, ApiError> {
    CallId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))
}

/// The transcript of a call (by the call link, else by its conversation).
#[utoipa::path(get, path = "/api/v1/calls/{id}/transcript", tag = "transcripts", operation_id = "get_call_transcript",
    params(("id" = String, Path, description = "Call id (`call_…`)")),
    responses(
        (status = 200, description = "The transcript", body = TranscriptOut),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call, or no transcript yet (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn call_transcript(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TranscriptOut>, ApiError> {
    let id = call_id(&id)?;
    if let Some(t) = state.store.transcript_of_call(&id).await? {
        return Ok(Json(t.into()));
    }
    let call = state.store.get_call(&id).await?;
    match call.conversation_id {
        Some(conv) => match state.store.find_transcript(&conv).await? {
            Some(t) => Ok(Json(t.into())),
            None => Err(ApiError::NotFound("transcript")),
        },
        None => Err(ApiError::NotFound("transcript")),
    }
}

/// The recordings of a call.
#[utoipa::path(get, path = "/api/v1/calls/{id}/recordings", tag = "transcripts", operation_id = "list_call_recordings",
    params(("id" = String, Path, description = "Call id (`call_…`)")),
    responses(
        (status = 200, description = "Recordings, oldest first (empty when none)", body = RecordingList),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such call (`call_not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn call_recordings(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecordingList>, ApiError> {
    let id = call_id(&id)?;
    state.store.get_call(&id).await?;
    let recs = state.store.recordings_of_call(&id).await?;
    Ok(Json(RecordingList { data: recs.into_iter().map(RecordingOut::from).collect() }))
}

async fn load_recording(state: &AppState, id: &str) -> Result<Recording, ApiError> {
    let id = RecordingId::parse(id).map_err(|e| ApiError::field("id", e.to_string()))?;
    state.store.get_recording(&id).await?.ok_or(ApiError::NotFound("recording"))
}

/// A recording.
#[utoipa::path(get, path = "/api/v1/recordings/{id}", tag = "transcripts", operation_id = "get_recording",
    params(("id" = String, Path, description = "Recording id (`rec_…`)")),
    responses(
        (status = 200, description = "The recording", body = RecordingOut),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such recording (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_recording(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<RecordingOut>, ApiError> {
    Ok(Json(load_recording(&state, &id).await?.into()))
}

/// A recording's media, streamed from the provider (`Range` supported).
#[utoipa::path(get, path = "/api/v1/recordings/{id}/media", tag = "transcripts", operation_id = "get_recording_media",
    params(("id" = String, Path, description = "Recording id (`rec_…`)"), ("Range" = Option<String>, Header, description = "Byte range, passed to the provider")),
    responses(
        (status = 200, description = "The media (`audio/mpeg` or `audio/wav`)", content_type = "audio/mpeg", body = Vec<u8>),
        (status = 206, description = "The requested range", content_type = "audio/mpeg", body = Vec<u8>),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such recording, or no media (absent, failed, deleted) (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider refused or failed (`upstream_error`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn recording_media(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    use switchboard_domain::recording::RecordingStatus as S;
    let rec = load_recording(&state, &id).await?;
    if rec.status != S::Completed {
        return Err(ApiError::NotFound("recording media"));
    }
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (twilio, elevenlabs) = crate::App::provider_clients(&state.settings);
    let upstream = match rec.provider {
        RecordingProvider::Twilio => {
            let client = twilio.ok_or_else(|| {
                ApiError::NotConfigured("TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN are not configured".into())
            })?;
            let format = rec.format.clone().unwrap_or_else(|| "mp3".into());
            client.open_recording_media(&rec.provider_id, &format, range).await
        }
        RecordingProvider::Elevenlabs => {
            let client =
                elevenlabs.ok_or_else(|| ApiError::NotConfigured("ELEVENLABS_API_KEY is not configured".into()))?;
            client.open_conversation_audio(&rec.provider_id, range).await
        }
    };
    let resp = match upstream {
        Ok(r) => r,
        Err(crate::integrations::UpstreamError::NotFound { .. }) => return Err(ApiError::NotFound("recording media")),
        Err(e) => return Err(ApiError::Upstream(e.to_string())),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::OK);
    let mut out = Response::builder().status(status);
    for name in [header::CONTENT_TYPE, header::CONTENT_LENGTH, header::CONTENT_RANGE, header::ACCEPT_RANGES] {
        if let Some(v) = resp.headers().get(name.as_str()).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok()) {
            out = out.header(name, v);
        }
    }
    out.body(Body::from_stream(resp.bytes_stream())).map_err(|e| ApiError::Internal(anyhow::anyhow!(e)))
}

/// A transcript.
#[utoipa::path(get, path = "/api/v1/transcripts/{id}", tag = "transcripts", operation_id = "get_transcript",
    params(("id" = String, Path, description = "Transcript id (`trn_…`)")),
    responses(
        (status = 200, description = "The transcript", body = TranscriptOut),
        (status = 400, description = "Malformed id (`validation_failed`)", body = crate::error::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such transcript (`not_found`)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get_transcript(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TranscriptOut>, ApiError> {
    let id = TranscriptId::parse(&id).map_err(|e| ApiError::field("id", e.to_string()))?;
    let t = state.store.get_transcript(&id).await?.ok_or(ApiError::NotFound("transcript"))?;
    Ok(Json(t.into()))
}

/// Search transcripts.
#[utoipa::path(get, path = "/api/v1/transcripts/search", tag = "transcripts", operation_id = "search_transcripts",
    params(
        ("q" = String, Query, description = "Words are ANDed; `OR` or `|` between two terms; `-word` or `NOT word` excludes; `\"a phrase\"`; `prefix*`. Case-insensitive."),
        ("sort" = Option<String>, Query, description = "`relevance` (default) or `newest`"),
        ("campaign_id" = Option<String>, Query, description = "Campaign (`cmp_…`)"),
        ("agent_id" = Option<String>, Query, description = "ElevenLabs agent"),
        ("contact_id" = Option<String>, Query, description = "Contact (`con_…`)"),
        ("started_after" = Option<DateTime<Utc>>, Query, description = "RFC 3339; inclusive"),
        ("started_before" = Option<DateTime<Utc>>, Query, description = "RFC 3339; exclusive"),
        ("call_successful" = Option<String>, Query, description = "`success`, `failure` or `unknown`"),
        ("sentiment_min" = Option<f64>, Query, description = "Overall sentiment at least (−1..1)"),
        ("sentiment_max" = Option<f64>, Query, description = "Overall sentiment at most (−1..1)"),
        ("criterion" = Option<String>, Query, description = "`ID:RESULT`, e.g. `booked:success`"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 200, description = "Page size (default 50)"),
        ("cursor" = Option<String>, Query, description = "next_cursor of the previous page"),
    ),
    responses(
        (status = 200, description = "A page of hits with snippets", body = SearchPage),
        (status = 400, description = "Bad query syntax or parameter (`validation_failed`, naming the problem)", body = crate::error::Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn search(State(state): State<AppState>, uri: Uri) -> Result<Json<SearchPage>, ApiError> {
    let mut q = Query::parse(
        uri.query(),
        &[
            "q",
            "sort",
            "campaign_id",
            "agent_id",
            "contact_id",
            "started_after",
            "started_before",
            "call_successful",
            "sentiment_min",
            "sentiment_max",
            "criterion",
            "limit",
            "cursor",
        ],
    );
    let text = match q.one("q") {
        Some(raw) => match TextQuery::parse(&raw) {
            Ok(t) => Some(t),
            Err(e) => {
                q.bad("q", e);
                None
            }
        },
        None => {
            q.bad("q", "required");
            None
        }
    };
    let order = match q.one("sort").as_deref() {
        None | Some("relevance") => SearchOrder::Relevance,
        Some("newest") => SearchOrder::Newest,
        Some(other) => {
            q.bad("sort", format!("`{other}` is not relevance or newest"));
            SearchOrder::Relevance
        }
    };
    let mut f = TranscriptFilter::default();
    if let Some(c) = q.one("campaign_id") {
        match CampaignId::parse(&c) {
            Ok(c) => f.campaign_id = Some(c),
            Err(e) => q.bad("campaign_id", e.to_string()),
        }
    }
    if let Some(c) = q.one("contact_id") {
        match ContactId::parse(&c) {
            Ok(c) => f.contact_id = Some(c),
            Err(e) => q.bad("contact_id", e.to_string()),
        }
    }
    f.agent_id = q.one("agent_id");
    f.started_after = q.time("started_after");
    f.started_before = q.time("started_before");
    if let Some(v) = q.one("call_successful") {
        if matches!(v.as_str(), "success" | "failure" | "unknown") {
            f.call_successful = Some(v);
        } else {
            q.bad("call_successful", "must be success, failure or unknown");
        }
    }
    for (key, slot) in [("sentiment_min", &mut f.sentiment_min), ("sentiment_max", &mut f.sentiment_max)] {
        if let Some(v) = q.one(key) {
            match v.parse::<f64>() {
                Ok(x) if (-1.0..=1.0).contains(&x) => *slot = Some(x),
                _ => q.bad(key, "must be a number from -1 to 1"),
            }
        }
    }
    if let Some(c) = q.one("criterion") {
        match c.split_once(':') {
            Some((id, result)) if !id.is_empty() && matches!(result, "success" | "failure" | "unknown") => {
                f.criterion = Some((id.to_owned(), result.to_owned()))
            }
            _ => q.bad("criterion", "must be `ID:RESULT` with RESULT success, failure or unknown"),
        }
    }
    let page = q.page();
    q.finish()?;
    let text = text.expect("checked by finish");
    let p = state.store.search_transcripts(&text, &f, order, &page).await.map_err(super::extract::cursor_error)?;
    let data = p
        .items
        .into_iter()
        .map(|h| {
            let t = &h.transcript;
            let (speaker, at, body) = match h.turn.and_then(|i| t.turns.get(i)) {
                Some(turn) => (Some(turn.role.clone()), turn.time_in_call_secs, turn.message.clone()),
                None => (None, None, t.summary.clone().unwrap_or_default()),
            };
            SearchHitOut {
                transcript_id: t.id.to_string(),
                conversation_id: t.conversation_id.clone(),
                call_id: t.call_id.as_ref().map(|c| c.to_string()),
                campaign_id: t.campaign_id.as_ref().map(|c| c.to_string()),
                agent_id: t.agent_id.clone(),
                started_at: t.started_at,
                score: h.score,
                turn: h.turn,
                speaker,
                time_in_call_secs: at,
                snippet: snippet(&text, &body),
            }
        })
        .collect();
    Ok(Json(SearchPage { data, next_cursor: p.next_cursor }))
}

/// Routes.
pub fn router() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/calls/{id}/transcript", get(call_transcript))
        .route("/calls/{id}/recordings", get(call_recordings))
        .route("/recordings/{id}", get(get_recording))
        .route("/recordings/{id}/media", get(recording_media))
        .route("/transcripts/search", get(search))
        .route("/transcripts/{id}", get(get_transcript))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_mark_the_matched_words_and_cut_around_the_first() {
        let q = TextQuery::parse("refund card*").unwrap();
        assert_eq!(snippet(&q, "I want a refund on my Cards."), "I want a [refund] on my [Cards].");
        let long = format!("{} refund {}", "a ".repeat(100), "b ".repeat(200));
        let s = snippet(&q, &long);
        assert!(s.starts_with('…') && s.contains("[refund]") && s.ends_with('…'), "{s}");
    }
}
