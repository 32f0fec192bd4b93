//! Versioned SQLite migrations. `PRAGMA user_version` records how many have
//! run. CHECK constraints play the part of MongoDB's `$jsonSchema`
//! validators: required columns, enums and types are enforced by the engine,
//! so a bad row cannot be written even by a buggy caller.
//!
//! Drift detection compares the live `sqlite_master` with a scratch
//! in-memory database built from the same migrations, so the expected schema
//! is never written down twice.

/// The migrations, in order. Never edit one that has shipped; add a new one.
pub(crate) const MIGRATIONS: &[(&str, &str)] = &[
    (
        "0001_calls_and_events",
        r#"
CREATE TABLE calls (
    id                          TEXT    PRIMARY KEY CHECK (id GLOB 'call_*'),
    call_sid                    TEXT    CHECK (call_sid IS NULL OR length(call_sid) BETWEEN 2 AND 64),
    conversation_id             TEXT    CHECK (conversation_id IS NULL OR length(conversation_id) BETWEEN 1 AND 128),
    account_sid                 TEXT,
    direction                   TEXT    CHECK (direction IS NULL OR direction IN ('inbound','outbound-api','outbound-dial','trunking-terminating','trunking-originating')),
    status                      TEXT    NOT NULL CHECK (status IN ('queued','initiated','ringing','in-progress','completed','busy','no-answer','failed','canceled')),
    from_number                 TEXT,
    to_number                   TEXT,
    campaign_id                 TEXT,
    contact_id                  TEXT,
    enrollment_id               TEXT,
    agent_id                    TEXT,
    answered_by                 TEXT    CHECK (answered_by IS NULL OR answered_by IN ('human','machine_start','machine_end_beep','machine_end_silence','machine_end_other','fax','unknown')),
    started_at                  INTEGER NOT NULL CHECK (typeof(started_at) = 'integer'),
    answered_at                 INTEGER CHECK (answered_at IS NULL OR typeof(answered_at) = 'integer'),
    ended_at                    INTEGER CHECK (ended_at IS NULL OR typeof(ended_at) = 'integer'),
    duration_secs               INTEGER CHECK (duration_secs IS NULL OR duration_secs >= 0),
    sip_response_code           INTEGER,
    price                       TEXT,
    price_unit                  TEXT,
    last_sequence               INTEGER CHECK (last_sequence IS NULL OR last_sequence >= 0),
    status_source               TEXT    CHECK (status_source IS NULL OR status_source IN ('twilio','elevenlabs','switchboard')),
    telephony_source            TEXT    CHECK (telephony_source IS NULL OR telephony_source IN ('twilio','elevenlabs','switchboard')),
    conversation_source         TEXT    CHECK (conversation_source IS NULL OR conversation_source IN ('twilio','elevenlabs','switchboard')),
    conversation_status         TEXT,
    call_successful             TEXT,
    transcript_summary          TEXT,
    termination_reason          TEXT,
    conversation_duration_secs  INTEGER,
    cost_credits                INTEGER,
    created_at                  INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at                  INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    version                     INTEGER NOT NULL CHECK (version >= 1)
) STRICT;
CREATE UNIQUE INDEX calls_call_sid_uq ON calls (call_sid) WHERE call_sid IS NOT NULL;
CREATE UNIQUE INDEX calls_conversation_id_uq ON calls (conversation_id) WHERE conversation_id IS NOT NULL;
CREATE INDEX calls_started ON calls (started_at, id);
CREATE INDEX calls_created ON calls (created_at, id);
CREATE INDEX calls_status_started ON calls (status, started_at, id);
CREATE INDEX calls_direction_started ON calls (direction, started_at, id);
CREATE INDEX calls_campaign_started ON calls (campaign_id, started_at, id) WHERE campaign_id IS NOT NULL;
CREATE INDEX calls_campaign_status_started ON calls (campaign_id, status, started_at, id) WHERE campaign_id IS NOT NULL;
CREATE INDEX calls_contact_started ON calls (contact_id, started_at, id) WHERE contact_id IS NOT NULL;
CREATE INDEX calls_agent_started ON calls (agent_id, started_at, id) WHERE agent_id IS NOT NULL;
CREATE INDEX calls_from_started ON calls (from_number, started_at, id) WHERE from_number IS NOT NULL;
CREATE INDEX calls_to_started ON calls (to_number, started_at, id) WHERE to_number IS NOT NULL;
CREATE INDEX calls_answered_by_started ON calls (answered_by, started_at, id) WHERE answered_by IS NOT NULL;
CREATE INDEX calls_active ON calls (status, updated_at) WHERE status IN ('queued','initiated','ringing','in-progress');

CREATE TABLE call_events (
    id           TEXT    PRIMARY KEY CHECK (id GLOB 'evt_*'),
    call_id      TEXT    NOT NULL CHECK (call_id GLOB 'call_*'),
    source       TEXT    NOT NULL CHECK (source IN ('twilio','elevenlabs','switchboard')),
    event_type   TEXT    NOT NULL CHECK (length(event_type) > 0),
    occurred_at  INTEGER NOT NULL CHECK (typeof(occurred_at) = 'integer'),
    received_at  INTEGER NOT NULL CHECK (typeof(received_at) = 'integer'),
    dedupe_key   TEXT    NOT NULL CHECK (length(dedupe_key) > 0),
    sequence     INTEGER,
    payload      TEXT    NOT NULL CHECK (json_valid(payload))
) STRICT;
CREATE UNIQUE INDEX call_events_dedupe_uq ON call_events (dedupe_key);
CREATE INDEX call_events_call_occurred ON call_events (call_id, occurred_at, id);
CREATE INDEX call_events_occurred ON call_events (occurred_at, id);
CREATE INDEX call_events_type_occurred ON call_events (event_type, occurred_at, id);
CREATE INDEX call_events_source_occurred ON call_events (source, occurred_at, id);
"#,
    ),
    (
        "0002_contacts_campaigns_enrollments",
        r#"
CREATE TABLE contacts (
    id          TEXT    PRIMARY KEY CHECK (id GLOB 'con_*'),
    phone       TEXT    NOT NULL CHECK (phone GLOB '+[1-9]*' AND length(phone) BETWEEN 8 AND 16),
    name_lc     TEXT,
    email_lc    TEXT    CHECK (email_lc IS NULL OR email_lc LIKE '_%@_%._%'),
    dnc         INTEGER NOT NULL CHECK (dnc IN (0, 1)),
    source      TEXT,
    created_at  INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at  INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    version     INTEGER NOT NULL CHECK (version >= 1),
    doc         TEXT    NOT NULL CHECK (json_valid(doc) AND json_type(doc, '$.tags') = 'array')
) STRICT;
CREATE UNIQUE INDEX contacts_phone_uq ON contacts (phone);
CREATE INDEX contacts_created ON contacts (created_at, id);
CREATE INDEX contacts_name ON contacts (name_lc) WHERE name_lc IS NOT NULL;
CREATE INDEX contacts_email ON contacts (email_lc) WHERE email_lc IS NOT NULL;
CREATE INDEX contacts_source ON contacts (source) WHERE source IS NOT NULL;
CREATE TABLE contact_tags (
    contact_id  TEXT NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    tag         TEXT NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    PRIMARY KEY (tag, contact_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE campaigns (
    id            TEXT    PRIMARY KEY CHECK (id GLOB 'cmp_*'),
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status        TEXT    NOT NULL CHECK (status IN ('draft','scheduled','running','paused','completed','cancelled')),
    max_concurrent INTEGER NOT NULL CHECK (max_concurrent BETWEEN 1 AND 1000),
    interval_ms   INTEGER NOT NULL CHECK (interval_ms >= 0),
    next_dial_at  INTEGER NOT NULL CHECK (typeof(next_dial_at) = 'integer'),
    dials         INTEGER NOT NULL CHECK (dials >= 0),
    created_at    INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at    INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    version       INTEGER NOT NULL CHECK (version >= 1),
    doc           TEXT    NOT NULL CHECK (json_valid(doc) AND json_type(doc, '$.agent.agent_id') = 'text')
) STRICT;
CREATE INDEX campaigns_created ON campaigns (created_at, id);
CREATE INDEX campaigns_status_created ON campaigns (status, created_at, id);
CREATE TABLE dial_slots (
    campaign_id TEXT NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    key         TEXT NOT NULL,
    PRIMARY KEY (campaign_id, key)
) STRICT, WITHOUT ROWID;

CREATE TABLE campaign_contacts (
    id               TEXT    PRIMARY KEY CHECK (id GLOB 'enr_*'),
    campaign_id      TEXT    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    contact_id       TEXT    NOT NULL CHECK (contact_id GLOB 'con_*'),
    status           TEXT    NOT NULL CHECK (status IN ('pending','dialing','in_call','retry_wait','completed','failed','skipped','cancelled')),
    attempts         INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at  INTEGER NOT NULL CHECK (typeof(next_attempt_at) = 'integer'),
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    lease_token      INTEGER NOT NULL CHECK (lease_token >= 0),
    current_call_id  TEXT    CHECK (current_call_id IS NULL OR current_call_id GLOB 'call_*'),
    created_at       INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at       INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    version          INTEGER NOT NULL CHECK (version >= 1),
    doc              TEXT    NOT NULL CHECK (json_valid(doc)),
    CHECK ((status = 'dialing') = (lease_owner IS NOT NULL AND lease_expires_at IS NOT NULL))
) STRICT;
CREATE UNIQUE INDEX campaign_contacts_uq ON campaign_contacts (campaign_id, contact_id);
CREATE INDEX campaign_contacts_due ON campaign_contacts (campaign_id, next_attempt_at, id) WHERE status IN ('pending','retry_wait');
CREATE INDEX campaign_contacts_status ON campaign_contacts (campaign_id, status, created_at, id);
CREATE INDEX campaign_contacts_created ON campaign_contacts (campaign_id, created_at, id);
CREATE INDEX campaign_contacts_leases ON campaign_contacts (lease_expires_at) WHERE status = 'dialing';
CREATE INDEX campaign_contacts_contact ON campaign_contacts (contact_id);
"#,
    ),
    (
        "0003_import_journal",
        r#"
CREATE TABLE imports (
    id           TEXT    PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    source       TEXT    NOT NULL CHECK (length(source) BETWEEN 1 AND 256),
    state        TEXT    NOT NULL CHECK (state IN ('running','committed','rolled_back')),
    owner        TEXT    NOT NULL,
    started_at   INTEGER NOT NULL CHECK (typeof(started_at) = 'integer'),
    heartbeat_at INTEGER NOT NULL CHECK (typeof(heartbeat_at) = 'integer')
) STRICT;
CREATE INDEX imports_stale ON imports (state, heartbeat_at);
CREATE TABLE import_undo (
    import_id  TEXT NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
    contact_id TEXT NOT NULL CHECK (contact_id GLOB 'con_*'),
    contact    TEXT NOT NULL CHECK (json_valid(contact)),
    PRIMARY KEY (import_id, contact_id)
) STRICT, WITHOUT ROWID;
"#,
    ),
    (
        "0004_contact_filter_indexes",
        r#"
CREATE TABLE tagged_contacts (
    tag         TEXT    NOT NULL CHECK (length(tag) BETWEEN 1 AND 64),
    created_at  INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    contact_id  TEXT    NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    dnc         INTEGER NOT NULL CHECK (dnc IN (0, 1)),
    name_lc     TEXT,
    email_lc    TEXT,
    phone       TEXT    NOT NULL,
    PRIMARY KEY (tag, dnc, created_at, contact_id)
) STRICT, WITHOUT ROWID;
INSERT INTO tagged_contacts (tag, created_at, contact_id, dnc, name_lc, email_lc, phone)
    SELECT t.tag, c.created_at, c.id, c.dnc, c.name_lc, c.email_lc, c.phone
    FROM contact_tags t JOIN contacts c ON c.id = t.contact_id;
DROP TABLE contact_tags;
-- Contact pages (src/contact_query.rs): equality (tag, dnc), then the page
-- order; a search prefix is a range of the ordered key. Without a dnc filter
-- a page reads both dnc values and merges them (no index per shape, fewer
-- writes). The e-mail indexes end with name_lc so the e-mail stage skips name
-- matches without a row read.
CREATE INDEX tagged_contacts_contact ON tagged_contacts (contact_id);
CREATE INDEX tagged_contacts_dnc_name ON tagged_contacts (tag, dnc, name_lc, contact_id) WHERE name_lc IS NOT NULL;
CREATE INDEX tagged_contacts_dnc_email ON tagged_contacts (tag, dnc, email_lc, contact_id, name_lc) WHERE email_lc IS NOT NULL;
CREATE INDEX tagged_contacts_dnc_phone ON tagged_contacts (tag, dnc, phone, contact_id);
DROP INDEX contacts_name;
DROP INDEX contacts_email;
CREATE INDEX contacts_dnc_created ON contacts (dnc, created_at, id);
CREATE INDEX contacts_dnc_name ON contacts (dnc, name_lc, id) WHERE name_lc IS NOT NULL;
CREATE INDEX contacts_dnc_email ON contacts (dnc, email_lc, id, name_lc) WHERE email_lc IS NOT NULL;
CREATE INDEX contacts_dnc_phone ON contacts (dnc, phone, id);
"#,
    ),
    (
        "0005_job_leases",
        r#"
-- Leases and visible state of background jobs (switchboard_storage::jobs).
CREATE TABLE job_leases (
    name             TEXT    PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),
    owner            TEXT    CHECK (owner IS NULL OR length(owner) BETWEEN 1 AND 256),
    fence            INTEGER NOT NULL CHECK (fence >= 1),
    lease_expires_at INTEGER,
    last_started_at  INTEGER,
    last_finished_at INTEGER,
    last_error       TEXT,
    next_run_at      INTEGER,
    runs             INTEGER NOT NULL DEFAULT 0 CHECK (runs >= 0),
    failures         INTEGER NOT NULL DEFAULT 0 CHECK (failures BETWEEN 0 AND runs),
    CHECK ((owner IS NULL) = (lease_expires_at IS NULL))
) STRICT, WITHOUT ROWID;
"#,
    ),
    (
        "0006_sheet_links",
        r#"
-- Google Sheets links (settings as JSON `doc`, the sync job's JSON `state`)
-- and what the sync remembers per row (switchboard_storage::sheets).
CREATE TABLE sheet_links (
    id             TEXT    PRIMARY KEY CHECK (id GLOB 'lnk_*' AND length(id) = 36),
    spreadsheet_id TEXT    NOT NULL CHECK (length(spreadsheet_id) BETWEEN 10 AND 128),
    tab            TEXT    NOT NULL CHECK (length(tab) BETWEEN 1 AND 100),
    campaign_id    TEXT    CHECK (campaign_id IS NULL OR campaign_id GLOB 'cmp_*'),
    created_at     INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at     INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    version        INTEGER NOT NULL CHECK (version >= 1),
    doc            TEXT    NOT NULL CHECK (json_valid(doc)),
    state          TEXT    NOT NULL CHECK (json_valid(state)),
    UNIQUE (spreadsheet_id, tab)
) STRICT;
CREATE INDEX sheet_links_created ON sheet_links (created_at, id);
CREATE TABLE sheet_rows (
    link_id     TEXT    NOT NULL REFERENCES sheet_links (id) ON DELETE CASCADE,
    contact_id  TEXT    NOT NULL CHECK (contact_id GLOB 'con_*'),
    fingerprint TEXT    NOT NULL CHECK (length(fingerprint) BETWEEN 1 AND 128),
    row_hint    INTEGER NOT NULL CHECK (row_hint >= 1),
    seen_at     INTEGER NOT NULL CHECK (typeof(seen_at) = 'integer'),
    PRIMARY KEY (link_id, contact_id)
) STRICT, WITHOUT ROWID;
"#,
    ),
    (
        "0007_recordings_transcripts",
        r#"
-- Recordings and transcripts (switchboard_storage::transcripts): each record
-- as a JSON `doc`, with real columns for its unique keys, filters and sort.
CREATE TABLE recordings (
    id          TEXT    PRIMARY KEY CHECK (id GLOB 'rec_*' AND length(id) = 36),
    provider    TEXT    NOT NULL CHECK (provider IN ('twilio','elevenlabs')),
    provider_id TEXT    NOT NULL CHECK (length(provider_id) BETWEEN 1 AND 256),
    call_id     TEXT    CHECK (call_id IS NULL OR call_id GLOB 'call_*'),
    status      TEXT    NOT NULL CHECK (status IN ('in-progress','completed','absent','failed','deleted')),
    created_at  INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at  INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    doc         TEXT    NOT NULL CHECK (json_valid(doc)),
    UNIQUE (provider, provider_id)
) STRICT;
CREATE INDEX recordings_call ON recordings (call_id, created_at, id) WHERE call_id IS NOT NULL;
-- `rid` is an explicit INTEGER PRIMARY KEY so VACUUM never renumbers it: the
-- full-text rows are keyed by it.
CREATE TABLE transcripts (
    rid             INTEGER PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE CHECK (id GLOB 'trn_*' AND length(id) = 36),
    conversation_id TEXT    NOT NULL UNIQUE CHECK (length(conversation_id) BETWEEN 1 AND 128),
    call_id         TEXT    CHECK (call_id IS NULL OR call_id GLOB 'call_*'),
    campaign_id     TEXT    CHECK (campaign_id IS NULL OR campaign_id GLOB 'cmp_*'),
    contact_id      TEXT    CHECK (contact_id IS NULL OR contact_id GLOB 'con_*'),
    agent_id        TEXT,
    status          TEXT    NOT NULL,
    call_successful TEXT,
    sentiment       REAL,
    started_at      INTEGER NOT NULL CHECK (typeof(started_at) = 'integer'),
    created_at      INTEGER NOT NULL CHECK (typeof(created_at) = 'integer'),
    updated_at      INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    doc             TEXT    NOT NULL CHECK (json_valid(doc) AND json_type(doc, '$.turns') = 'array'
                                            AND json_array_length(doc, '$.turns') < 1048576)
) STRICT;
CREATE INDEX transcripts_started ON transcripts (started_at, id);
CREATE INDEX transcripts_call ON transcripts (call_id) WHERE call_id IS NOT NULL;
CREATE INDEX transcripts_campaign_started ON transcripts (campaign_id, started_at, id) WHERE campaign_id IS NOT NULL;
CREATE INDEX transcripts_agent_started ON transcripts (agent_id, started_at, id) WHERE agent_id IS NOT NULL;
CREATE INDEX transcripts_contact_started ON transcripts (contact_id, started_at, id) WHERE contact_id IS NOT NULL;
CREATE INDEX transcripts_successful_started ON transcripts (call_successful, started_at, id) WHERE call_successful IS NOT NULL;
CREATE INDEX transcripts_sentiment ON transcripts (sentiment) WHERE sentiment IS NOT NULL;
-- One row per evaluation criterion: "pass rate of criterion X per campaign
-- per week" is a range of the first index.
CREATE TABLE transcript_criteria (
    transcript_id TEXT    NOT NULL REFERENCES transcripts (id) ON DELETE CASCADE,
    campaign_id   TEXT    CHECK (campaign_id IS NULL OR campaign_id GLOB 'cmp_*'),
    criterion_id  TEXT    NOT NULL,
    result        TEXT    NOT NULL,
    started_at    INTEGER NOT NULL CHECK (typeof(started_at) = 'integer')
) STRICT;
CREATE INDEX transcript_criteria_campaign ON transcript_criteria (campaign_id, criterion_id, started_at, result);
CREATE INDEX transcript_criteria_transcript ON transcript_criteria (transcript_id, criterion_id, result);
-- Full text: one contentless row per turn message and one for the summary,
-- rowid = transcripts.rid << 20 | slot (slot 0: summary, k + 1: turn k).
-- Written in the transcript upsert's transaction (src/transcripts.rs).
CREATE VIRTUAL TABLE transcript_fts USING fts5 (
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 0',
    prefix = '2 3'
);
"#,
    ),
    (
        "0008_recordings_expire",
        r#"
-- Retention (TranscriptStore::recordings_to_expire): completed recordings, oldest first.
CREATE INDEX recordings_completed_created ON recordings (created_at, id) WHERE status = 'completed';
"#,
    ),
    (
        "0009_transcript_fts_per_transcript",
        r#"
-- Full text, one row per transcript (rowid = transcripts.rid), replacing
-- 0007's row per turn (whose doclists were ~20 times longer: every search
-- walked them). `turns`: every turn's words with a `_` token between turns
-- (a phrase never spans two turns; `_` is a token only as that separator,
-- query terms are letters and digits). `summary`: the summary's words.
-- `columnsize = 0`: no per-row length table, whose lookup for every ranked
-- row tripled the cost of `ORDER BY rank` (bm25 then weighs term frequency
-- and rarity without length normalisation). Without it FTS5 refuses
-- `contentless_delete`, so a row is removed with FTS5's 'delete' command and
-- the text it was indexed with, rebuilt from the stored transcript.
-- Written in the transcript upsert's transaction (src/transcripts.rs); this
-- migration's data step refills it from the stored transcripts.
DROP TABLE transcript_fts;
CREATE VIRTUAL TABLE transcript_fts USING fts5 (
    turns,
    summary,
    content = '',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 0 tokenchars ''_''',
    prefix = '2 3'
);
-- Every word ever indexed: a prefix term is expanded to the words it covers
-- (an index range), not merged from every doclist on each lookup.
CREATE TABLE transcript_terms (term TEXT PRIMARY KEY) STRICT, WITHOUT ROWID;
"#,
    ),
    (
        "0010_analytics",
        r#"
-- Rollups (switchboard_storage::analytics): one row per bucket and scope,
-- rebuilt whole from raw calls (src/analytics.rs). `metrics` is the
-- `Metrics` document (JSON): new figures need no new column; `calls` is
-- copied out for CHECKs and quick reads. Primary key = how the dashboard
-- reads: one scope's buckets in a time range.
CREATE TABLE analytics (
    scope_kind    TEXT    NOT NULL CHECK (length(scope_kind) BETWEEN 1 AND 32 AND scope_kind NOT GLOB '*[^a-z_]*'),
    scope_id      TEXT    NOT NULL CHECK (length(scope_id) <= 128),
    interval      TEXT    NOT NULL CHECK (interval IN ('hour','day')),
    tz            TEXT    NOT NULL CHECK (length(tz) BETWEEN 1 AND 64),
    bucket_start  INTEGER NOT NULL CHECK (typeof(bucket_start) = 'integer'),
    calls         INTEGER NOT NULL CHECK (calls >= 1),
    metrics       TEXT    NOT NULL CHECK (json_valid(metrics) AND json_type(metrics) = 'object'),
    updated_at    INTEGER NOT NULL CHECK (typeof(updated_at) = 'integer'),
    PRIMARY KEY (scope_kind, scope_id, interval, tz, bucket_start)
) STRICT, WITHOUT ROWID;
-- A bucket's rows (rebuild replaces them).
CREATE INDEX analytics_bucket ON analytics (interval, tz, bucket_start);
-- The rollup job's watermark (one row).
CREATE TABLE analytics_state (
    name       TEXT    PRIMARY KEY,
    watermark  INTEGER NOT NULL CHECK (typeof(watermark) = 'integer')
) STRICT;
-- Changed since the watermark: calls and transcripts by updated_at.
CREATE INDEX calls_updated ON calls (updated_at);
CREATE INDEX transcripts_updated ON transcripts (updated_at);
"#,
    ),
    (
        TRANSCRIPT_FTS_TIERS,
        r#"
-- Full text with tiers (src/fts_tiers.rs): the `tiers` column holds, per
-- transcript, `word_T` for each word said at least T times (T in 2, 3, 4,
-- 5, 6, 8, 10, 12, 16, 20, 24, 32, 40, 48, 64), so a relevance page can be
-- drawn from the rows
-- that say a query word often and proven equal to ranking every match.
-- It weighs 0 in the rank (`bm25(1, 1, 0)`, the table's `rank` setting), so
-- scores are those of `turns` and `summary` alone. `transcript_fts_vocab`
-- reads the words' row counts (idf, tier sizes). This migration's data step
-- refills the index from the stored transcripts.
DROP TABLE transcript_fts;
CREATE VIRTUAL TABLE transcript_fts USING fts5 (
    turns,
    summary,
    tiers,
    content = '',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 0 tokenchars ''_''',
    prefix = '2 3'
);
INSERT INTO transcript_fts (transcript_fts, rank) VALUES ('rank', 'bm25(1.0, 1.0, 0.0)');
CREATE VIRTUAL TABLE transcript_fts_vocab USING fts5vocab (transcript_fts, 'row');
"#,
    ),
    (
        TRANSCRIPT_TOKEN_ROWS,
        r#"
-- Row counts of every indexed token (src/fts_tiers.rs): each word and each
-- `word_T` tier token, with how many transcripts hold it, and under the
-- empty token the number of indexed transcripts. Written in the same
-- transaction as the index row, so ranking (`sb_bm25`, crates/fts5-rank)
-- takes each phrase's idf from here instead of FTS5 counting the phrase's
-- rows on every query. FTS5's `rank` setting and the fts5vocab table are no
-- longer read. This migration's data step refills the index and the counts
-- from the stored transcripts.
DROP TABLE transcript_fts_vocab;
DROP TABLE transcript_fts;
CREATE VIRTUAL TABLE transcript_fts USING fts5 (
    turns,
    summary,
    tiers,
    content = '',
    columnsize = 0,
    tokenize = 'unicode61 remove_diacritics 0 tokenchars ''_''',
    prefix = '2 3'
);
CREATE TABLE transcript_token_rows (
    token  TEXT    PRIMARY KEY CHECK (length(token) <= 1000),
    rows   INTEGER NOT NULL CHECK (typeof(rows) = 'integer' AND rows >= 0)
) STRICT, WITHOUT ROWID;
"#,
    ),
    (
        "0013_transcript_fts_usermerge",
        r#"
-- Search-index upkeep (Storage::maintain_search_index, the `search_index`
-- job): every write adds an FTS5 segment and every lookup visits each
-- segment, so the job merges them in small steps ('merge', N). usermerge 2
-- lets it merge any level holding two segments (FTS5's own automerge, on
-- writes, waits for 4). Stored in transcript_fts_config.
INSERT INTO transcript_fts (transcript_fts, rank) VALUES ('usermerge', 2);
"#,
    ),
];

/// Migration 0011's name.
pub(crate) const TRANSCRIPT_FTS_TIERS: &str = "0011_transcript_fts_tiers";

/// Migration 0012's name: its data step (`transcripts::fill_fts`) runs after its SQL.
pub(crate) const TRANSCRIPT_TOKEN_ROWS: &str = "0012_transcript_token_rows";
