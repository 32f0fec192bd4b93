//! The simulator's Twilio side (external-apis.md A and F.1): create, fetch
//! and list calls, recordings and their media, and the status, AMD and
//! recording callbacks a call sends.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::{Value, json};

use super::errors::twilio_error;
use super::{Flavor, SILENT_MP3, SimCall, Simulator, Step, Urls, Wants};

pub(super) fn twilio_time(t: DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S +0000").to_string()
}

/// `+14155550100` → `(415) 555-0100` (North American numbers, as Twilio formats them); others unchanged.
pub(super) fn formatted(number: &str) -> String {
    match number.strip_prefix("+1") {
        Some(d) if d.len() == 10 && d.chars().all(|c| c.is_ascii_digit()) => {
            format!("({}) {}-{}", &d[..3], &d[3..6], &d[6..])
        }
        _ => number.to_owned(),
    }
}

const TERMINAL: [&str; 5] = ["completed", "busy", "no-answer", "failed", "canceled"];

impl Simulator {
    fn twilio_authorised(&self, account: &str, headers: &HeaderMap) -> bool {
        let g = self.inner.lock().expect("sim lock");
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("{}:{}", g.settings.account_sid, g.settings.auth_token))
        );
        account == g.settings.account_sid
            && headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(want.as_str())
    }

    /// The Call resource as Twilio serves it (every field of A.3).
    pub(super) fn call_json(&self, c: &SimCall) -> Value {
        let account = self.account_sid();
        let base = format!("/2010-04-01/Accounts/{account}/Calls/{}", c.sid);
        let terminal = TERMINAL.contains(&c.status.as_str());
        let queue_ms = c.started_at.map(|s| (s - c.created_at).num_milliseconds().max(0)).unwrap_or(0);
        let sub = |name: &str| format!("{base}/{name}.json");
        json!({
            "sid": c.sid, "date_created": twilio_time(c.created_at), "date_updated": twilio_time(c.updated_at),
            "parent_call_sid": null, "account_sid": account,
            "to": c.to, "to_formatted": formatted(&c.to), "from": c.from, "from_formatted": formatted(&c.from),
            "phone_number_sid": phone_number_sid(&c.from), "status": c.status,
            "start_time": c.started_at.map(twilio_time), "end_time": c.ended_at.map(twilio_time),
            "duration": if terminal { c.duration.map(|d| d.to_string()) } else { None },
            "price": null, "price_unit": "USD", "direction": "outbound-api", "answered_by": c.answered_by,
            "api_version": "2010-04-01", "forwarded_from": null, "group_sid": null, "caller_name": null,
            "queue_time": queue_ms.to_string(), "trunk_sid": null, "uri": format!("{base}.json"),
            "subresource_uris": {
                "feedback": format!("{base}/Feedback.json"), "user_defined_messages": sub("UserDefinedMessages"),
                "notifications": sub("Notifications"), "recordings": sub("Recordings"), "streams": sub("Streams"),
                "payments": sub("Payments"), "user_defined_message_subscriptions": sub("UserDefinedMessageSubscriptions"),
                "siprec": sub("Siprec"), "events": sub("Events"), "transcriptions": sub("Transcriptions"),
            },
        })
    }

    /// The form parameters of a Twilio callback (status, AMD or recording), stamped with the real time.
    pub(super) fn twilio_params(&self, call: &SimCall, step: &Step) -> Vec<(String, String)> {
        let account = self.account_sid();
        let now = twilio_time(super::wall());
        let mut p: Vec<(String, String)> =
            vec![("AccountSid".into(), account.clone()), ("CallSid".into(), call.sid.clone())];
        let recording_url =
            |rec: &str| format!("https://api.twilio.com/2010-04-01/Accounts/{account}/Recordings/{rec}");
        let talk = call.script.talk_secs as u64;
        match step.kind.as_str() {
            "status" => {
                let secs = if step.value == "completed" { call.duration.unwrap_or(talk) } else { 0 };
                p = switchboard_wire::twilio::StatusCallback {
                    account_sid: &account,
                    call_sid: &call.sid,
                    status: &step.value,
                    sequence: i64::from(step.sequence.unwrap_or(0)),
                    timestamp: &now,
                    direction: "outbound-api",
                    from: &call.from,
                    to: &call.to,
                    ended: switchboard_wire::twilio::sip_code(&step.value).map(|sip| (secs, sip)),
                }
                .params();
                if step.value == "completed"
                    && let Some(rec) = &call.pending_recording
                {
                    p.push(("RecordingSid".into(), rec.clone()));
                    p.push(("RecordingUrl".into(), recording_url(rec)));
                    p.push(("RecordingDuration".into(), talk.to_string()));
                }
            }
            "amd" => {
                p.push(("AnsweredBy".into(), step.value.clone()));
                p.push(("MachineDetectionDuration".into(), "2400".into()));
            }
            _ => {
                let rec = call.pending_recording.clone().unwrap_or_default();
                let started = call.answered_at.or(call.started_at).map(twilio_time).unwrap_or_else(|| now.clone());
                p.extend([
                    ("RecordingSid".into(), rec.clone()),
                    ("RecordingUrl".into(), recording_url(&rec)),
                    ("RecordingStatus".into(), "completed".into()),
                    ("RecordingDuration".into(), talk.to_string()),
                    ("RecordingChannels".into(), "2".into()),
                    ("RecordingSource".into(), "OutboundAPI".into()),
                    ("RecordingTrack".into(), "both".into()),
                    ("RecordingStartTime".into(), started),
                    ("ErrorCode".into(), "0".into()),
                ]);
            }
        }
        p
    }

    fn recording_json(&self, c: &SimCall) -> Option<Value> {
        let rec = c.recording_sid.clone()?;
        let account = self.account_sid();
        let uri = format!("/2010-04-01/Accounts/{account}/Recordings/{rec}");
        let made = c.ended_at.or(c.started_at).unwrap_or(c.created_at);
        Some(json!({
            "sid": rec, "account_sid": account, "call_sid": c.sid, "conference_sid": null,
            "api_version": "2010-04-01", "date_created": twilio_time(made), "date_updated": twilio_time(c.updated_at),
            "start_time": twilio_time(c.answered_at.unwrap_or(made)),
            "duration": (c.script.talk_secs as u64).to_string(), "price": null, "price_unit": "USD",
            "status": "completed", "channels": 2, "source": "OutboundAPI", "error_code": null, "track": "both",
            "encryption_details": null, "uri": format!("{uri}.json"), "media_url": format!("https://api.twilio.com{uri}"),
            "subresource_uris": {
                "add_on_results": format!("{uri}/AddOnResults.json"), "transcriptions": format!("{uri}/Transcriptions.json"),
            },
        }))
    }
}

/// A stable `PN…` for a caller number.
fn phone_number_sid(number: &str) -> String {
    let mut h: u128 = 0xcbf2_9ce4_8422_2325;
    for b in number.bytes() {
        h = (h ^ b as u128).wrapping_mul(0x0100_0000_01b3);
    }
    format!("PN{h:032x}")
}

fn truthy(v: Option<&String>) -> bool {
    v.is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

pub(super) async fn create_call(
    State(sim): State<Simulator>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let what = "POST Calls.json".to_owned();
    if !sim.twilio_authorised(&account, &headers) {
        sim.record(what, 401);
        return twilio_error(401, 20003, "Authenticate");
    }
    if let Some(r) = sim.api_fault(&what, Flavor::Twilio).await {
        return r;
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let (Some(to), Some(from)) = (one("To"), one("From")) else {
        sim.record(what, 400);
        return twilio_error(400, 21201, "No 'To' or 'From' number is specified");
    };
    if !to.starts_with('+') || to.len() < 8 || !to[1..].chars().all(|c| c.is_ascii_digit()) {
        sim.record(what, 400);
        return twilio_error(400, 21211, &format!("Invalid 'To' Phone Number: {to}"));
    }
    let twiml = one("Twiml");
    if one("Url").is_none() && twiml.is_none() && one("ApplicationSid").is_none() {
        sim.record(what, 400);
        return twilio_error(400, 21205, "Url, Twiml or ApplicationSid is required");
    }
    let events: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "StatusCallbackEvent")
        .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    let urls = Urls {
        status: one("StatusCallback"),
        amd: one("AsyncAmdStatusCallback"),
        recording: one("RecordingStatusCallback"),
    };
    // register-call TwiML carries the conversation it belongs to.
    let conversation = twiml.as_deref().and_then(|t| {
        let id = t.split("name=\"conversation_id\" value=\"").nth(1)?.split('"').next()?.to_owned();
        let g = sim.inner.lock().expect("sim lock");
        g.conversations
            .iter()
            .find(|c| c.conversation_id == id)
            .map(|c| (c.conversation_id.clone(), c.agent_id.clone()))
    });
    // Booleans are matched case-insensitively: the Python helper sends `True`.
    let machine_detection = one("MachineDetection").is_some();
    let record = truthy(one("Record").as_ref());
    let wants = Wants {
        events,
        status_callback: urls.status.is_some(),
        amd: machine_detection && truthy(one("AsyncAmd").as_ref()) && urls.amd.is_some(),
        recording: record && urls.recording.is_some(),
        machine_detection,
        record,
        conversation: conversation.is_some(),
    };
    let call = sim.place(to, from, wants, urls, conversation);
    sim.record(what, 201);
    (StatusCode::CREATED, Json(sim.call_json(&call))).into_response()
}

pub(super) async fn fetch_call(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    if let Some(r) = sim.api_fault("GET Calls/{sid}.json", Flavor::Twilio).await {
        return r;
    }
    let found = file.strip_suffix(".json").and_then(|sid| sim.call(sid));
    match found {
        Some(c) => Json(sim.call_json(&c)).into_response(),
        None => twilio_error(
            404,
            20404,
            &format!("The requested resource /2010-04-01/Accounts/{account}/Calls/{file} was not found"),
        ),
    }
}

impl Simulator {
    /// `Status=completed|canceled` on a live call: it ends now (a queued or
    /// ringing call is canceled, an answered one completed), the playout stops,
    /// and the terminal status callback is sent if subscribed (none for a call
    /// canceled while queued, as on Twilio).
    fn hang_up(&self, sid: &str, wanted: &str) -> Option<SimCall> {
        let now = super::wall();
        let scale = self.scenario().time_scale.max(0.001);
        let mut was_queued = false;
        let mut changed = false;
        let call = self.update_call(sid, |c| {
            let new = match (wanted, c.status.as_str()) {
                (_, s) if TERMINAL.contains(&s) => return,
                ("completed", "in-progress") => "completed",
                (_, "queued" | "ringing") => "canceled",
                _ => return, // `canceled` does not end an answered call
            };
            was_queued = c.started_at.is_none();
            changed = true;
            c.hung_up = true;
            c.duration = Some(match (new, c.answered_at) {
                ("completed", Some(a)) => ((now - a).num_milliseconds().max(0) as f64 / 1000.0 * scale) as u64,
                _ => 0,
            });
            c.status = new.into();
            c.ended_at = Some(now);
            c.updated_at = now;
        })?;
        if !changed {
            return Some(call);
        }
        let answered = call.answered_at.is_some();
        self.update_conversation(call.conversation_id.as_ref(), |v| {
            if answered {
                v.status = "done".into();
                v.call_duration_secs = call.duration.unwrap_or(0) as i64;
            } else {
                v.status = "failed".into();
            }
        });
        let w = &call.wants;
        let subscribed = if w.events.is_empty() { true } else { w.events.iter().any(|e| e == "completed") };
        if w.status_callback && subscribed && !was_queued {
            let step = Step {
                at_secs: 0.0,
                kind: "status".into(),
                value: call.status.clone(),
                sequence: Some(call.next_sequence),
                bad_signature: false,
            };
            let (sim, c) = (self.clone(), call.clone());
            tokio::spawn(async move { sim.deliver(&c, &step).await });
        }
        Some(call)
    }
}

/// `POST …/Calls/{sid}.json`: `Status=completed|canceled` hangs up; a new
/// `Url`/`Twiml` is accepted (and ignored) on a live call.
pub(super) async fn update_call(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let what = "POST Calls/{sid}.json".to_owned();
    if !sim.twilio_authorised(&account, &headers) {
        sim.record(what, 401);
        return twilio_error(401, 20003, "Authenticate");
    }
    if let Some(r) = sim.api_fault(&what, Flavor::Twilio).await {
        return r;
    }
    let Some(call) = file.strip_suffix(".json").and_then(|sid| sim.call(sid)) else {
        sim.record(what, 404);
        return twilio_error(
            404,
            20404,
            &format!("The requested resource /2010-04-01/Accounts/{account}/Calls/{file} was not found"),
        );
    };
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let one = |k: &str| form.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    let resp = match one("Status").as_deref() {
        Some(s @ ("completed" | "canceled")) => match sim.hang_up(&call.sid, s) {
            Some(c) => Json(sim.call_json(&c)).into_response(),
            None => twilio_error(404, 20404, "Call not found"),
        },
        Some(other) => twilio_error(400, 20001, &format!("Invalid Status: {other} (completed or canceled)")),
        None if one("Url").is_some() || one("Twiml").is_some() => {
            if TERMINAL.contains(&call.status.as_str()) {
                twilio_error(400, 21220, "Call is not in-progress. Cannot redirect.")
            } else {
                Json(sim.call_json(&call)).into_response()
            }
        }
        None => twilio_error(400, 20001, "Nothing to update: give Status, Url or Twiml"),
    };
    sim.record(what, resp.status().as_u16());
    resp
}

/// A `StartTime`/`EndTime` filter value: `YYYY-MM-DD` (whole day) or an RFC 3339 instant.
enum When {
    Day(NaiveDate),
    At(DateTime<Utc>),
}

fn parse_when(v: &str) -> Option<When> {
    if let Ok(d) = NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Some(When::Day(d));
    }
    DateTime::parse_from_rfc3339(v).ok().map(|t| When::At(t.with_timezone(&Utc)))
}

/// `cmp` is `=`, `<` (on or before) or `>` (on or after).
fn time_matches(t: Option<DateTime<Utc>>, cmp: char, w: &When) -> bool {
    let Some(t) = t else { return false };
    match (w, cmp) {
        (When::Day(d), '<') => t.date_naive() <= *d,
        (When::Day(d), '>') => t.date_naive() >= *d,
        (When::Day(d), _) => t.date_naive() == *d,
        (When::At(a), '<') => t <= *a,
        (When::At(a), '>') => t >= *a,
        (When::At(a), _) => t.date_naive() == a.date_naive(),
    }
}

/// Twilio's page envelope around `items` (the list key plus exactly the meta
/// keys: the Python helper takes the one non-meta key as the records).
fn page_envelope(
    key: &str,
    path: &str,
    filters: &[(String, String)],
    all: Vec<(String, Value)>,
    q: &[(String, String)],
) -> Response {
    let get = |k: &str| q.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let page_size: usize = match get("PageSize").map(str::parse::<usize>) {
        None => 50,
        Some(Ok(n)) if (1..=1000).contains(&n) => n,
        Some(_) => return twilio_error(400, 20001, "PageSize must be between 1 and 1000"),
    };
    let page: usize = match get("Page").map(str::parse::<usize>) {
        None => 0,
        Some(Ok(n)) => n,
        Some(_) => return twilio_error(400, 20001, "Invalid Page"),
    };
    // Tokens name the neighbouring record, so calls placed meanwhile do not shift pages.
    let start = match get("PageToken") {
        None => (page * page_size).min(all.len()),
        Some(t) => {
            let pos = |sid: &str| all.iter().position(|(s, _)| s == sid);
            match (t.strip_prefix("PA").and_then(pos), t.strip_prefix("PB").and_then(pos)) {
                (Some(i), _) => i + 1,
                (_, Some(i)) => i.saturating_sub(page_size),
                _ => return twilio_error(400, 20001, "Invalid PageToken"),
            }
        }
    };
    let items: Vec<(String, Value)> = all.iter().skip(start).take(page_size).cloned().collect();
    let uri = |extra: &[(&str, String)]| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in filters {
            s.append_pair(k, v);
        }
        s.append_pair("PageSize", &page_size.to_string());
        for (k, v) in extra {
            s.append_pair(k, v);
        }
        format!("{path}?{}", s.finish())
    };
    let mut this: Vec<(&str, String)> = vec![("Page", page.to_string())];
    if let Some(t) = get("PageToken") {
        this.push(("PageToken", t.to_owned()));
    }
    let next = (start + items.len() < all.len())
        .then(|| items.last())
        .flatten()
        .map(|(sid, _)| uri(&[("Page", (page + 1).to_string()), ("PageToken", format!("PA{sid}"))]));
    let previous = (start > 0)
        .then(|| items.first().map(|(s, _)| s.clone()).or_else(|| all.last().map(|(s, _)| s.clone())))
        .flatten()
        .map(|sid| {
            let token = if items.is_empty() { format!("PA{sid}") } else { format!("PB{sid}") };
            uri(&[("Page", page.saturating_sub(1).to_string()), ("PageToken", token)])
        });
    let mut body = serde_json::Map::new();
    body.insert(key.into(), Value::Array(items.iter().map(|(_, v)| v.clone()).collect()));
    body.insert("end".into(), json!(start + items.len().saturating_sub(1)));
    body.insert("first_page_uri".into(), json!(uri(&[("Page", "0".into())])));
    body.insert("next_page_uri".into(), json!(next));
    body.insert("page".into(), json!(page));
    body.insert("page_size".into(), json!(page_size));
    body.insert("previous_page_uri".into(), json!(previous));
    body.insert("start".into(), json!(start));
    body.insert("uri".into(), json!(uri(&this)));
    Json(Value::Object(body)).into_response()
}

/// `GET …/Calls.json`: newest first, filters `To`, `From`, `Status`,
/// `ParentCallSid`, `StartTime[<>]`, `EndTime[<>]`, paging `PageSize`/`Page`/`PageToken`.
pub(super) async fn list_calls(
    State(sim): State<Simulator>,
    Path(account): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let what = "GET Calls.json".to_owned();
    if !sim.twilio_authorised(&account, &headers) {
        sim.record(what, 401);
        return twilio_error(401, 20003, "Authenticate");
    }
    if let Some(r) = sim.api_fault(&what, Flavor::Twilio).await {
        return r;
    }
    let q: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let mut filters: Vec<(String, String)> = Vec::new();
    let mut times: Vec<(bool, char, When)> = Vec::new();
    for (k, v) in &q {
        match k.as_str() {
            "PageSize" | "Page" | "PageToken" => continue,
            "To" | "From" | "Status" | "ParentCallSid" => {}
            "StartTime" | "StartTime<" | "StartTime>" | "EndTime" | "EndTime<" | "EndTime>" => {
                let Some(w) = parse_when(v) else {
                    sim.record(what, 400);
                    return twilio_error(400, 20001, &format!("Invalid {k}: {v} (use YYYY-MM-DD)"));
                };
                times.push((k.starts_with("Start"), k.chars().last().filter(|c| "<>".contains(*c)).unwrap_or('='), w));
            }
            _ => continue, // unknown filters are ignored, as Twilio does
        }
        filters.push((k.clone(), v.clone()));
    }
    fn values<'a>(filters: &'a [(String, String)], k: &'a str) -> impl Iterator<Item = &'a str> {
        filters.iter().filter(move |(key, _)| key == k).map(|(_, v)| v.as_str())
    }
    let field = |k: &'static str| values(&filters, k);
    let calls = sim.calls();
    let all: Vec<(String, Value)> = calls
        .iter()
        .rev()
        .filter(|c| field("To").all(|v| v == c.to))
        .filter(|c| field("From").all(|v| v == c.from))
        .filter(|c| field("Status").all(|v| v == c.status))
        .filter(|_| field("ParentCallSid").next().is_none())
        .filter(|c| {
            times.iter().all(|(start, cmp, w)| time_matches(if *start { c.started_at } else { c.ended_at }, *cmp, w))
        })
        .map(|c| (c.sid.clone(), sim.call_json(c)))
        .collect();
    let path = format!("/2010-04-01/Accounts/{account}/Calls.json");
    let resp = page_envelope("calls", &path, &filters, all, &q);
    sim.record(what, resp.status().as_u16());
    resp
}

pub(super) async fn list_recordings(
    State(sim): State<Simulator>,
    Path((account, sid)): Path<(String, String)>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let q: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let recs: Vec<(String, Value)> = sim
        .call(&sid)
        .and_then(|c| sim.recording_json(&c))
        .map(|r| (r["sid"].as_str().unwrap_or_default().to_owned(), r))
        .into_iter()
        .collect();
    let path = format!("/2010-04-01/Accounts/{account}/Calls/{sid}/Recordings.json");
    page_envelope("recordings", &path, &[], recs, &q)
}

/// `GET …/Recordings.json`: the account's recordings, newest first (filter `CallSid`).
pub(super) async fn list_all_recordings(
    State(sim): State<Simulator>,
    Path(account): Path<String>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let q: Vec<(String, String)> = form_urlencoded::parse(raw.unwrap_or_default().as_bytes()).into_owned().collect();
    let call_sid: Vec<(String, String)> = q.iter().filter(|(k, _)| k == "CallSid").cloned().collect();
    // `DateCreated>=YYYY-MM-DD` (Twilio's inequality filters arrive as keys `DateCreated>` / `DateCreated<`).
    let day = |k: &str| {
        q.iter()
            .find(|(key, _)| key == k)
            .and_then(|(_, v)| chrono::NaiveDate::parse_from_str(v.trim_start_matches('='), "%Y-%m-%d").ok())
    };
    let (after, before) = (day("DateCreated>"), day("DateCreated<"));
    let recs: Vec<(String, Value)> = sim
        .calls()
        .iter()
        .rev()
        .filter(|c| call_sid.iter().all(|(_, v)| *v == c.sid))
        .filter(|c| {
            let made = c.ended_at.or(c.started_at).unwrap_or(c.created_at).date_naive();
            after.is_none_or(|d| made >= d) && before.is_none_or(|d| made <= d)
        })
        .filter_map(|c| sim.recording_json(c))
        .map(|r| (r["sid"].as_str().unwrap_or_default().to_owned(), r))
        .collect();
    let path = format!("/2010-04-01/Accounts/{account}/Recordings.json");
    page_envelope("recordings", &path, &call_sid, recs, &q)
}

/// `DELETE …/Recordings/{sid}.json`: 204, or Twilio's 404 when there is no such recording.
pub(super) async fn delete_recording(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let sid = file.strip_suffix(".json").unwrap_or(&file);
    if sim.delete_recording(sid) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        twilio_error(
            404,
            20404,
            &format!("The requested resource /2010-04-01/Accounts/{account}/Recordings/{file} was not found"),
        )
    }
}

pub(super) async fn fetch_recording(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !sim.twilio_authorised(&account, &headers) {
        return twilio_error(401, 20003, "Authenticate");
    }
    let (sid, ext) = file.rsplit_once('.').unwrap_or((file.as_str(), "wav"));
    let Some(call) = sim.calls().into_iter().find(|c| c.recording_sid.as_deref() == Some(sid)) else {
        return twilio_error(
            404,
            20404,
            &format!("The requested resource /2010-04-01/Accounts/{account}/Recordings/{file} was not found"),
        );
    };
    match ext {
        "json" => Json(sim.recording_json(&call)).into_response(),
        "mp3" => ([("content-type", "audio/mpeg")], SILENT_MP3).into_response(),
        "wav" => ([("content-type", "audio/x-wav")], SILENT_MP3).into_response(),
        _ => twilio_error(404, 20404, &format!("The requested resource {file} was not found")),
    }
}
