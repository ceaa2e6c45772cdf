//! The numbered migrations of both engines (run by [`super::migrate`]).
//!
//! 1. The tables of the first releases: accounts, kiosks, documents,
//!    projections, and the rollups, kept then by SQLite triggers. SQLite
//!    stores from before numbering (schema version 1 written by the ad-hoc
//!    upgrades) are version 1 as they are; the step is idempotent, so a
//!    store from even earlier gets the missing columns.
//! 2. Rollups kept by the store's Rust in the writing transaction (the
//!    triggers go: one implementation, identical figures on every engine);
//!    the pull cursor partitioned by kelurahan (`seq_counters`, `doc_seq`:
//!    a per-kelurahan counter row taken at the start of each write, so
//!    within a kelurahan sequence order is commit order even with several
//!    instances); failed-login state shared by every instance.
//!
//! Secrets are stored only as SHA-256 (session tokens, kiosk secrets,
//! enrollment codes) or argon2id (passwords): a copied database holds
//! nothing that logs in.

use super::StoreError;
use super::migrate::Migration;
use super::sql::{Sql, scalar};
use crate::args;

pub const SQLITE: &[Migration] = &[
    Migration { version: 1, name: "first releases", run: sqlite_v1 },
    Migration { version: 2, name: "rollups in the store, kelurahan cursor, shared login state", run: sqlite_v2 },
    Migration { version: 3, name: "journey-time and staff rollups, breaches by service", run: sqlite_v3 },
    Migration { version: 4, name: "service time by party, in service hours", run: sqlite_v4 },
    Migration { version: 5, name: "training hours (JP) and competency", run: sqlite_v5 },
    Migration { version: 6, name: "SKM respondent profile and follow-up plans", run: sqlite_v6 },
    Migration { version: 7, name: "complaints (pengaduan) and central users' staff ids", run: sqlite_v7 },
    Migration { version: 8, name: "agency units' regions", run: sqlite_v8 },
    Migration { version: 9, name: "requests by ticket, for complaint figures", run: sqlite_v9 },
    Migration { version: 10, name: "a kiosk's actors: a new one after a kiosk restore", run: sqlite_v10 },
    Migration { version: 11, name: "documents waiting for compaction", run: sqlite_v11 },
    Migration { version: 12, name: "a document's first and last receipt, not a row per change", run: sqlite_v12 },
    Migration { version: 13, name: "no index of events by who, which nothing read", run: sqlite_v13 },
    Migration { version: 14, name: "events numbered in causal order, with only what is read", run: sqlite_v14 },
    Migration { version: 15, name: "ratings stored by their key, without a rowid", run: sqlite_v15 },
    Migration { version: 16, name: "a document's pull number and receipts on its own row", run: sqlite_v16 },
    Migration { version: 17, name: "a request's step times packed on its row", run: sqlite_v17 },
    Migration { version: 18, name: "a request's events packed on its row, handoffs by agency", run: sqlite_v18 },
    Migration { version: 19, name: "no index entries for what no query finds by them", run: sqlite_v19 },
    Migration { version: 20, name: "what a kiosk holds keyed by its code", run: sqlite_v20 },
    Migration { version: 21, name: "the index of SLA overruns without the id it finds", run: sqlite_v21 },
    Migration { version: 22, name: "a request's masked NIK and name kept without the mask", run: sqlite_v22 },
    Migration { version: 23, name: "no copies of what the request's row already says", run: sqlite_v23 },
    Migration { version: 24, name: "documents stored by their id, without a rowid", run: sqlite_v24 },
];

pub const POSTGRES: &[Migration] = super::postgres::MIGRATIONS;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS users (
    username      TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('admin', 'agency', 'supervisor')),
    agency        TEXT,
    kelurahan     TEXT,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS user_sessions (
    token_hash    TEXT PRIMARY KEY,
    username      TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE,
    expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS user_sessions_by_expiry ON user_sessions (expires_at_ms);

CREATE TABLE IF NOT EXISTS kiosks (
    id                 TEXT PRIMARY KEY,
    code               TEXT NOT NULL UNIQUE,
    kelurahan          TEXT NOT NULL,
    name               TEXT NOT NULL,
    token_hash         TEXT NOT NULL UNIQUE,
    actor              TEXT NOT NULL UNIQUE,
    revoked            INTEGER NOT NULL DEFAULT 0 CHECK (revoked IN (0, 1)),
    revoked_at_ms      INTEGER,
    enrolled_at_ms     INTEGER NOT NULL,
    last_seen_at_ms    INTEGER,
    last_sync_ok_at_ms INTEGER,
    version            TEXT,
    pending_known      INTEGER
) STRICT;
CREATE INDEX IF NOT EXISTS kiosks_by_kelurahan ON kiosks (kelurahan);

-- Every view of a citizen's full NIK or phone (UU 27/2022): who, when,
-- which request, why. Append-only; admins read it.
CREATE TABLE IF NOT EXISTS audit_log (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    username TEXT NOT NULL,
    role     TEXT NOT NULL,
    action   TEXT NOT NULL,
    doc_id   TEXT,
    reason   TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS enroll_codes (
    code_hash     TEXT PRIMARY KEY,
    kelurahan     TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL,
    expires_at_ms INTEGER NOT NULL,
    used_at_ms    INTEGER,
    kiosk_id      TEXT REFERENCES kiosks (id)
) STRICT;
"#;

/// The document tables and projections as the first releases made them.
const DOCS: &str = r#"
CREATE TABLE IF NOT EXISTS docs (
    doc_id      TEXT PRIMARY KEY,
    doc_type    TEXT NOT NULL CHECK (doc_type IN ('request', 'catalog', 'roster')),
    kelurahan   TEXT,
    snapshot    BLOB,
    chunk_count INTEGER NOT NULL DEFAULT 0,
    last_seq    INTEGER NOT NULL,
    heads       BLOB
) STRICT;
CREATE INDEX IF NOT EXISTS docs_by_kelurahan_seq ON docs (kelurahan, last_seq);
CREATE INDEX IF NOT EXISTS docs_by_type_seq ON docs (doc_type, last_seq);

CREATE TABLE IF NOT EXISTS chunks (
    id     INTEGER PRIMARY KEY,
    doc_id TEXT NOT NULL REFERENCES docs (doc_id),
    data   BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS chunks_by_doc ON chunks (doc_id, id);

CREATE TABLE IF NOT EXISTS change_log (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    doc_id TEXT NOT NULL,
    at_ms  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS kiosk_heads (
    kiosk_id TEXT NOT NULL,
    doc_id   TEXT NOT NULL,
    heads    BLOB NOT NULL,
    PRIMARY KEY (kiosk_id, doc_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS kiosk_marks (
    kiosk_id   TEXT PRIMARY KEY,
    through    INTEGER,
    pull_given INTEGER
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS kiosk_sent (
    kiosk_id TEXT NOT NULL,
    doc_id   TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    heads    BLOB NOT NULL,
    PRIMARY KEY (kiosk_id, doc_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS change_receipts (
    hash        BLOB PRIMARY KEY,
    doc_id      TEXT NOT NULL,
    kiosk_id    TEXT,
    received_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS requests (
    doc_id        TEXT PRIMARY KEY,
    ticket        TEXT NOT NULL,
    kelurahan     TEXT NOT NULL,
    kecamatan     TEXT NOT NULL,
    kiosk         TEXT NOT NULL,
    service       TEXT NOT NULL,
    status        TEXT NOT NULL,
    conflict      INTEGER NOT NULL,
    agency        TEXT,
    rated         INTEGER NOT NULL,
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    -- When it was finished (completed, rejected, cancelled; not in
    -- conflict), bounded by when the server received the document, and the
    -- working time from filing to that moment (shared::sla).
    finished_at_ms INTEGER,
    working_ms     INTEGER,
    -- Masked by default (PDP), for exports: `127101••••••0003`, `S*** N***`.
    nik_masked     TEXT,
    name_masked    TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS requests_by_created ON requests (created_at_ms);
CREATE INDEX IF NOT EXISTS requests_by_finished ON requests (finished_at_ms) WHERE finished_at_ms IS NOT NULL;
-- The city-wide time-lost page reads a period's finished requests from this
-- alone, without touching the table.
CREATE INDEX IF NOT EXISTS requests_finished_cover ON requests (finished_at_ms, kelurahan, service, working_ms, doc_id)
    WHERE finished_at_ms IS NOT NULL;
CREATE INDEX IF NOT EXISTS requests_open ON requests (kelurahan) WHERE finished_at_ms IS NULL;
CREATE INDEX IF NOT EXISTS requests_in_conflict ON requests (kelurahan) WHERE conflict = 1;
CREATE INDEX IF NOT EXISTS change_receipts_by_doc ON change_receipts (doc_id, received_ms);
CREATE INDEX IF NOT EXISTS requests_by_kelurahan ON requests (kelurahan, created_at_ms);
CREATE INDEX IF NOT EXISTS requests_by_status ON requests (status, created_at_ms);

CREATE TABLE IF NOT EXISTS events (
    doc_id      TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    kelurahan   TEXT NOT NULL,
    hlc         TEXT NOT NULL,
    node        TEXT NOT NULL,
    at_ms       INTEGER NOT NULL,
    by_who      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    from_status TEXT,
    to_status   TEXT NOT NULL,
    note        TEXT,
    agency      TEXT,
    PRIMARY KEY (doc_id, event_id)
) STRICT;

CREATE TABLE IF NOT EXISTS ratings (
    doc_id    TEXT NOT NULL,
    rating_id TEXT NOT NULL,
    kelurahan TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    u1 INTEGER NOT NULL, u2 INTEGER NOT NULL, u3 INTEGER NOT NULL,
    u4 INTEGER NOT NULL, u5 INTEGER NOT NULL, u6 INTEGER NOT NULL,
    u7 INTEGER NOT NULL, u8 INTEGER NOT NULL, u9 INTEGER NOT NULL,
    comment   TEXT,
    PRIMARY KEY (doc_id, rating_id)
) STRICT;
"#;

/// Monthly figures per kelurahan and service, kept by triggers on the
/// projections, so the central pages read thousands of rows, not
/// millions. Months and days are local (meta `utc_offset_hours`).
/// `within_sla` is judged against `service_sla` as it was when the request
/// finished. A request's first rating (lowest id) is the one counted.
const ROLLUPS: &str = r#"
CREATE TABLE IF NOT EXISTS trainings (
    id          INTEGER PRIMARY KEY,
    nip         TEXT NOT NULL,
    day         TEXT NOT NULL,             -- YYYY-MM-DD, local
    topic       TEXT NOT NULL,
    provider    TEXT NOT NULL,
    recorded_by TEXT NOT NULL,
    recorded_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS trainings_by_nip ON trainings (nip, day);
CREATE INDEX IF NOT EXISTS events_by_who ON events (by_who, at_ms);

CREATE TABLE IF NOT EXISTS service_sla (
    code     TEXT PRIMARY KEY,
    sla_days INTEGER NOT NULL
) STRICT;

-- The catalog's holidays (YYYY-MM-DD), which working time skips; kept in
-- step with the catalog document by `record_holidays`.
CREATE TABLE IF NOT EXISTS holidays (
    day  TEXT PRIMARY KEY,
    name TEXT NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS monthly (
    month       INTEGER NOT NULL,
    kelurahan   TEXT NOT NULL,
    service     TEXT NOT NULL,
    filed       INTEGER NOT NULL DEFAULT 0,
    finished    INTEGER NOT NULL DEFAULT 0,
    within_sla  INTEGER NOT NULL DEFAULT 0,
    respondents INTEGER NOT NULL DEFAULT 0,
    u1 INTEGER NOT NULL DEFAULT 0, u2 INTEGER NOT NULL DEFAULT 0, u3 INTEGER NOT NULL DEFAULT 0,
    u4 INTEGER NOT NULL DEFAULT 0, u5 INTEGER NOT NULL DEFAULT 0, u6 INTEGER NOT NULL DEFAULT 0,
    u7 INTEGER NOT NULL DEFAULT 0, u8 INTEGER NOT NULL DEFAULT 0, u9 INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, kelurahan, service)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS daily_filed (
    day       INTEGER NOT NULL,
    kelurahan TEXT NOT NULL,
    filed     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, kelurahan)
) STRICT, WITHOUT ROWID;

CREATE VIEW IF NOT EXISTS local_offset AS
    SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'utc_offset_hours'), 7) * 3600000 AS ms;

CREATE TRIGGER IF NOT EXISTS requests_rollup_insert AFTER INSERT ON requests BEGIN
    INSERT INTO monthly (month, kelurahan, service, filed)
    VALUES (CAST(strftime('%Y%m', (NEW.created_at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER),
            NEW.kelurahan, NEW.service, 1)
    ON CONFLICT DO UPDATE SET filed = filed + 1;
    INSERT INTO daily_filed (day, kelurahan, filed)
    VALUES ((NEW.created_at_ms + (SELECT ms FROM local_offset)) / 86400000, NEW.kelurahan, 1)
    ON CONFLICT DO UPDATE SET filed = filed + 1;
    INSERT INTO monthly (month, kelurahan, service, finished, within_sla)
    SELECT CAST(strftime('%Y%m', (NEW.finished_at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER),
           NEW.kelurahan, NEW.service, 1,
           coalesce(NEW.working_ms <= (SELECT sla_days * 86400000 FROM service_sla WHERE code = NEW.service), 0)
    WHERE NEW.finished_at_ms IS NOT NULL
    ON CONFLICT DO UPDATE SET finished = finished + 1, within_sla = within_sla + excluded.within_sla;
END;

CREATE TRIGGER IF NOT EXISTS requests_rollup_update AFTER UPDATE OF finished_at_ms, working_ms ON requests
WHEN OLD.finished_at_ms IS NOT NEW.finished_at_ms OR OLD.working_ms IS NOT NEW.working_ms BEGIN
    UPDATE monthly SET finished = finished - 1,
        within_sla = within_sla - coalesce(OLD.working_ms <= (SELECT sla_days * 86400000 FROM service_sla WHERE code = OLD.service), 0)
    WHERE OLD.finished_at_ms IS NOT NULL
      AND month = CAST(strftime('%Y%m', (OLD.finished_at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER)
      AND kelurahan = OLD.kelurahan AND service = OLD.service;
    INSERT INTO monthly (month, kelurahan, service, finished, within_sla)
    SELECT CAST(strftime('%Y%m', (NEW.finished_at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER),
           NEW.kelurahan, NEW.service, 1,
           coalesce(NEW.working_ms <= (SELECT sla_days * 86400000 FROM service_sla WHERE code = NEW.service), 0)
    WHERE NEW.finished_at_ms IS NOT NULL
    ON CONFLICT DO UPDATE SET finished = finished + 1, within_sla = within_sla + excluded.within_sla;
END;

CREATE TRIGGER IF NOT EXISTS ratings_rollup_insert AFTER INSERT ON ratings
WHEN NEW.rating_id = (SELECT min(rating_id) FROM ratings WHERE doc_id = NEW.doc_id) BEGIN
    UPDATE monthly SET respondents = respondents - 1,
        u1 = monthly.u1 - p.u1, u2 = monthly.u2 - p.u2, u3 = monthly.u3 - p.u3, u4 = monthly.u4 - p.u4,
        u5 = monthly.u5 - p.u5, u6 = monthly.u6 - p.u6, u7 = monthly.u7 - p.u7, u8 = monthly.u8 - p.u8,
        u9 = monthly.u9 - p.u9
    FROM (SELECT * FROM ratings WHERE doc_id = NEW.doc_id AND rating_id > NEW.rating_id ORDER BY rating_id LIMIT 1) AS p
    WHERE monthly.month = CAST(strftime('%Y%m', (p.at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER)
      AND monthly.kelurahan = p.kelurahan
      AND monthly.service = (SELECT service FROM requests WHERE doc_id = NEW.doc_id);
    INSERT INTO monthly (month, kelurahan, service, respondents, u1, u2, u3, u4, u5, u6, u7, u8, u9)
    VALUES (CAST(strftime('%Y%m', (NEW.at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER),
            NEW.kelurahan, coalesce((SELECT service FROM requests WHERE doc_id = NEW.doc_id), '?'), 1,
            NEW.u1, NEW.u2, NEW.u3, NEW.u4, NEW.u5, NEW.u6, NEW.u7, NEW.u8, NEW.u9)
    ON CONFLICT DO UPDATE SET respondents = respondents + 1,
        u1 = u1 + excluded.u1, u2 = u2 + excluded.u2, u3 = u3 + excluded.u3, u4 = u4 + excluded.u4,
        u5 = u5 + excluded.u5, u6 = u6 + excluded.u6, u7 = u7 + excluded.u7, u8 = u8 + excluded.u8,
        u9 = u9 + excluded.u9;
END;
"#;

/// Who of a kelurahan's staff acted on a request (a row per staff member
/// and request), when last, with the request's outcome and its first
/// rating's U6 and U7. Kept by triggers on the projections, so the staff
/// competency page reads one row per handled request instead of every
/// event of the period.
const STAFF_WORK: &str = r#"
CREATE TABLE IF NOT EXISTS request_staff (
    doc_id     TEXT NOT NULL,
    nip        TEXT NOT NULL,
    kelurahan  TEXT NOT NULL,
    last_at_ms INTEGER NOT NULL,
    finished   INTEGER NOT NULL DEFAULT 0,
    working_ms INTEGER,
    within_sla INTEGER NOT NULL DEFAULT 0,
    u6         INTEGER,
    u7         INTEGER,
    PRIMARY KEY (doc_id, nip)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS request_staff_by_time ON request_staff (last_at_ms);
CREATE INDEX IF NOT EXISTS request_staff_by_nip ON request_staff (nip, last_at_ms);

CREATE TRIGGER IF NOT EXISTS events_staff_insert AFTER INSERT ON events
WHEN NEW.kind != 'create' AND NEW.by_who != 'citizen' AND NEW.by_who NOT LIKE '%:%' BEGIN
    INSERT INTO request_staff (doc_id, nip, kelurahan, last_at_ms, finished, working_ms, within_sla, u6, u7)
    SELECT NEW.doc_id, NEW.by_who, NEW.kelurahan, NEW.at_ms,
           coalesce(q.finished_at_ms IS NOT NULL, 0), q.working_ms,
           coalesce(q.working_ms <= (SELECT sla_days * 86400000 FROM service_sla WHERE code = q.service), 0),
           r.u6, r.u7
    FROM (SELECT 1) AS one
         LEFT JOIN requests q ON q.doc_id = NEW.doc_id
         LEFT JOIN ratings r ON r.doc_id = NEW.doc_id
              AND r.rating_id = (SELECT min(rating_id) FROM ratings WHERE doc_id = NEW.doc_id)
    WHERE true
    ON CONFLICT DO UPDATE SET last_at_ms = max(last_at_ms, excluded.last_at_ms);
END;

CREATE TRIGGER IF NOT EXISTS requests_staff_insert AFTER INSERT ON requests BEGIN
    UPDATE request_staff SET finished = NEW.finished_at_ms IS NOT NULL, working_ms = NEW.working_ms,
        within_sla = coalesce(NEW.working_ms <= (SELECT sla_days * 86400000 FROM service_sla WHERE code = NEW.service), 0)
    WHERE doc_id = NEW.doc_id;
END;

CREATE TRIGGER IF NOT EXISTS requests_staff_update AFTER UPDATE OF finished_at_ms, working_ms ON requests
WHEN OLD.finished_at_ms IS NOT NEW.finished_at_ms OR OLD.working_ms IS NOT NEW.working_ms BEGIN
    UPDATE request_staff SET finished = NEW.finished_at_ms IS NOT NULL, working_ms = NEW.working_ms,
        within_sla = coalesce(NEW.working_ms <= (SELECT sla_days * 86400000 FROM service_sla WHERE code = NEW.service), 0)
    WHERE doc_id = NEW.doc_id;
END;

CREATE TRIGGER IF NOT EXISTS ratings_staff_insert AFTER INSERT ON ratings
WHEN NEW.rating_id = (SELECT min(rating_id) FROM ratings WHERE doc_id = NEW.doc_id) BEGIN
    UPDATE request_staff SET u6 = NEW.u6, u7 = NEW.u7 WHERE doc_id = NEW.doc_id;
END;
"#;

/// The working time of each step of every finished request, by the local
/// month of its finish (computed in Rust at projection: causal order and
/// working days), and a histogram of them per month, service, status and
/// agency that triggers keep, for the city-wide "where time is lost" page.
const STEP_TIMES: &str = r#"
CREATE TABLE IF NOT EXISTS request_steps (
    doc_id     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    month      INTEGER NOT NULL,
    service    TEXT NOT NULL,
    status     TEXT NOT NULL,
    agency     TEXT NOT NULL,
    working_ms INTEGER NOT NULL,
    bucket     INTEGER NOT NULL,
    PRIMARY KEY (doc_id, seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS step_hist (
    month   INTEGER NOT NULL,
    service TEXT NOT NULL,
    status  TEXT NOT NULL,
    agency  TEXT NOT NULL,
    bucket  INTEGER NOT NULL,
    n       INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, service, status, agency, bucket)
) STRICT, WITHOUT ROWID;

CREATE TRIGGER IF NOT EXISTS request_steps_insert AFTER INSERT ON request_steps BEGIN
    INSERT INTO step_hist (month, service, status, agency, bucket, n)
    VALUES (NEW.month, NEW.service, NEW.status, NEW.agency, NEW.bucket, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER IF NOT EXISTS request_steps_delete AFTER DELETE ON request_steps BEGIN
    UPDATE step_hist SET n = n - 1
    WHERE month = OLD.month AND service = OLD.service AND status = OLD.status AND agency = OLD.agency
      AND bucket = OLD.bucket;
END;
"#;

fn has_table(db: &mut dyn Sql, table: &str) -> Result<bool, StoreError> {
    Ok(scalar::<i64>(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", args![table])?
        .unwrap_or(0)
        > 0)
}

/// Whether `table` has `column` (a step that reshapes a table is done).
fn has_column(db: &mut dyn Sql, table: &str, column: &str) -> Result<bool, StoreError> {
    let n = scalar::<i64>(db, "SELECT count(*) FROM pragma_table_info(?) WHERE name = ?", args![table, column])?;
    Ok(n.unwrap_or(0) > 0)
}

/// Adds a nullable column to a table that lacks it (an upgrade).
fn add_column(db: &mut dyn Sql, table: &str, column: &str, kind: &str) -> Result<(), StoreError> {
    if !has_table(db, table)? {
        return Ok(());
    }
    if !has_column(db, table, column)? {
        db.batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
    }
    Ok(())
}

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version       INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    applied_at_ms INTEGER NOT NULL
) STRICT;";

fn sqlite_v1(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(SCHEMA)?;
    db.batch(MIGRATIONS_TABLE)?;
    // Columns that came after the first release of their tables.
    add_column(db, "kiosks", "next_token_hash", "TEXT")?;
    add_column(db, "users", "disabled_at_ms", "INTEGER")?;
    add_column(db, "audit_log", "subject", "TEXT")?;
    add_column(db, "docs", "heads", "BLOB")?;
    add_column(db, "requests", "finished_at_ms", "INTEGER")?;
    add_column(db, "requests", "working_ms", "INTEGER")?;
    add_column(db, "requests", "nik_masked", "TEXT")?;
    add_column(db, "requests", "name_masked", "TEXT")?;
    db.batch(DOCS)?;
    let existed = has_table(db, "monthly")?;
    let staff_existed = has_table(db, "request_staff")?;
    db.batch(ROLLUPS)?;
    db.batch(STEP_TIMES)?;
    // After ROLLUPS, whose `service_sla` its triggers read.
    db.batch(STAFF_WORK)?;
    if !staff_existed {
        db.batch(
            "INSERT INTO request_staff (doc_id, nip, kelurahan, last_at_ms, finished, working_ms, within_sla, u6, u7)
                 SELECT e.doc_id, e.by_who, e.kelurahan, max(e.at_ms),
                        coalesce(q.finished_at_ms IS NOT NULL, 0), q.working_ms,
                        coalesce(q.working_ms <= (SELECT sla_days * 86400000 FROM service_sla WHERE code = q.service), 0),
                        r.u6, r.u7
                 FROM events e
                      LEFT JOIN requests q ON q.doc_id = e.doc_id
                      LEFT JOIN ratings r ON r.doc_id = e.doc_id
                           AND r.rating_id = (SELECT min(rating_id) FROM ratings WHERE doc_id = e.doc_id)
                 WHERE e.kind != 'create' AND e.by_who != 'citizen' AND e.by_who NOT LIKE '%:%'
                 GROUP BY e.doc_id, e.by_who;",
        )?;
    }
    if !existed {
        db.batch(
            "INSERT INTO monthly (month, kelurahan, service, filed)
                 SELECT CAST(strftime('%Y%m', (created_at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER),
                        kelurahan, service, count(*)
                 FROM requests GROUP BY 1, 2, 3;
             INSERT INTO daily_filed (day, kelurahan, filed)
                 SELECT (created_at_ms + (SELECT ms FROM local_offset)) / 86400000, kelurahan, count(*)
                 FROM requests GROUP BY 1, 2;
             INSERT INTO monthly (month, kelurahan, service, finished, within_sla)
                 SELECT CAST(strftime('%Y%m', (finished_at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER),
                        kelurahan, service, count(*),
                        sum(coalesce(working_ms <= (SELECT sla_days * 86400000 FROM service_sla s WHERE s.code = requests.service), 0))
                 FROM requests WHERE finished_at_ms IS NOT NULL GROUP BY 1, 2, 3
                 ON CONFLICT DO UPDATE SET finished = excluded.finished, within_sla = excluded.within_sla;
             INSERT INTO monthly (month, kelurahan, service, respondents, u1, u2, u3, u4, u5, u6, u7, u8, u9)
                 SELECT CAST(strftime('%Y%m', (r.at_ms + (SELECT ms FROM local_offset)) / 1000, 'unixepoch') AS INTEGER),
                        r.kelurahan, q.service, count(*), sum(r.u1), sum(r.u2), sum(r.u3), sum(r.u4), sum(r.u5),
                        sum(r.u6), sum(r.u7), sum(r.u8), sum(r.u9)
                 FROM ratings r JOIN requests q USING (doc_id)
                 WHERE r.rating_id = (SELECT min(rating_id) FROM ratings r2 WHERE r2.doc_id = r.doc_id)
                 GROUP BY 1, 2, 3
                 ON CONFLICT DO UPDATE SET respondents = excluded.respondents, u1 = excluded.u1, u2 = excluded.u2,
                     u3 = excluded.u3, u4 = excluded.u4, u5 = excluded.u5, u6 = excluded.u6, u7 = excluded.u7,
                     u8 = excluded.u8, u9 = excluded.u9;",
        )?;
    }
    Ok(())
}

/// Version 2 on SQLite: the triggers go, the new tables come, and the
/// cursor partitions start above every cursor handed out so far.
fn sqlite_v2(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(MIGRATIONS_TABLE)?;
    db.batch(
        "DROP TRIGGER IF EXISTS requests_rollup_insert;
         DROP TRIGGER IF EXISTS requests_rollup_update;
         DROP TRIGGER IF EXISTS ratings_rollup_insert;
         DROP TRIGGER IF EXISTS events_staff_insert;
         DROP TRIGGER IF EXISTS requests_staff_insert;
         DROP TRIGGER IF EXISTS requests_staff_update;
         DROP TRIGGER IF EXISTS ratings_staff_insert;
         DROP TRIGGER IF EXISTS request_steps_insert;
         DROP TRIGGER IF EXISTS request_steps_delete;
         DROP VIEW IF EXISTS local_offset;
         CREATE TABLE IF NOT EXISTS seq_counters (
             kelurahan TEXT PRIMARY KEY,
             seq       INTEGER NOT NULL
         ) STRICT;
         CREATE TABLE IF NOT EXISTS doc_seq (
             kelurahan TEXT NOT NULL,
             doc_id    TEXT NOT NULL,
             seq       INTEGER NOT NULL,
             PRIMARY KEY (kelurahan, doc_id)
         ) STRICT, WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS doc_seq_by_seq ON doc_seq (kelurahan, seq);
         CREATE TABLE IF NOT EXISTS login_failures (
             key             TEXT PRIMARY KEY,
             window_start_ms INTEGER NOT NULL,
             failures        INTEGER NOT NULL
         ) STRICT;
         CREATE TABLE IF NOT EXISTS login_turns (
             key     TEXT PRIMARY KEY,
             next_ms INTEGER NOT NULL
         ) STRICT;
         CREATE TABLE IF NOT EXISTS login_known (
             pair     TEXT PRIMARY KEY,
             until_ms INTEGER NOT NULL
         ) STRICT;",
    )?;
    // Cursors handed out so far are numbers of the old global log (gone
    // after this step); a second run finds the partitions made.
    let start = if has_table(db, "change_log")? {
        scalar::<i64>(db, "SELECT coalesce(max(seq), 0) FROM change_log", args![])?.unwrap_or(0)
    } else {
        scalar::<i64>(db, "SELECT coalesce(max(seq), 0) FROM seq_counters", args![])?.unwrap_or(0)
    };
    partition_existing(db, start)?;
    db.batch("DROP TABLE IF EXISTS change_log")?;
    Ok(())
}

/// Version 3 on SQLite: a histogram of whole journeys' working time per
/// month and kelurahan (the city's "where time is lost" reads it instead of
/// every finished request), staff work per month (`staff_monthly`, for
/// staff competency), and an index that finds a period's largest
/// SLA overruns service by service.
/// Version 5 (issue 14, item 10): a training's hours in JP (1 to
/// `TRAINING_HOURS_MAX`) and the competency it builds. Rows recorded
/// before have neither (NULL): they are listed, but count no hours.
/// Self-contained on purpose, so it can be renumbered at a merge.
fn sqlite_v5(db: &mut dyn Sql) -> Result<(), StoreError> {
    // SQLite has no ADD COLUMN IF NOT EXISTS; migrations must be safe to
    // run again on a store that has them (a reset version re-runs all).
    let has = |db: &mut dyn Sql, column: &str| -> Result<bool, StoreError> {
        let n: Option<i64> =
            scalar(db, "SELECT count(*) FROM pragma_table_info('trainings') WHERE name = ?", args![column])?;
        Ok(n.unwrap_or(0) > 0)
    };
    if !has(db, "hours")? {
        db.batch(
            "ALTER TABLE trainings ADD COLUMN hours INTEGER CHECK (hours IS NULL OR (hours >= 1 AND hours <= 200));",
        )?;
    }
    if !has(db, "competency")? {
        db.batch(
            "ALTER TABLE trainings ADD COLUMN competency TEXT
                 CHECK (competency IS NULL OR competency IN ('pelayanan', 'komunikasi', 'penanganan_pengaduan'));",
        )?;
    }
    db.batch("CREATE INDEX IF NOT EXISTS trainings_by_day ON trainings (day, nip);")
}

/// Version 6 (issue 14, items 7 and 8): the respondent profile of each
/// rating (`ratings.age_band`, `.sex`, `.education`, `.occupation`: codes,
/// NULL when not answered), its rollup `skm_profile` (answers per month,
/// kelurahan, question and code, of each request's first rating: the one
/// the IKM counts), and `skm_followups`, the follow-up plans (rencana
/// tindak lanjut) an admin records for an element of a period's report,
/// city-wide (kelurahan NULL) or for one office. No store before this
/// version can hold a profile (the server refused the key), so there is
/// nothing to fill. Self-contained, so it can be renumbered at a merge.
fn sqlite_v6(db: &mut dyn Sql) -> Result<(), StoreError> {
    for column in ["age_band", "sex", "education", "occupation"] {
        add_column(db, "ratings", column, "TEXT")?;
    }
    db.batch(SQLITE_V6)
}

/// Version 7 (issue 16): the `complaints` projection (one row per
/// complaint document, `store::complaints`), filled from any complaint
/// documents already stored, and `users.staff_id`, the NIP of a central
/// user who is also on a kelurahan's staff (a complaint about them never
/// shows them the complainant). Idempotent and self-contained, so it can
/// be renumbered at a merge.
fn sqlite_v7(db: &mut dyn Sql) -> Result<(), StoreError> {
    allow_complaint_docs(db)?;
    add_column(db, "users", "staff_id", "TEXT")?;
    db.batch(super::complaints::SQLITE_TABLE)?;
    super::complaints::reproject_all(db)?;
    Ok(())
}

/// Version 8 (issue 16, item 6): `users.region`, the kecamatan an
/// agency unit's account covers (Kantor Camat, KUA, Polsek). Accounts
/// from before it cover the city, as they did.
fn sqlite_v8(db: &mut dyn Sql) -> Result<(), StoreError> {
    add_column(db, "users", "region", "TEXT")
}

/// Version 9 (issue 16, item 4): `requests_by_ticket`. The complaint
/// figures count a complaint about a request under that request's
/// service, found by ticket; without the index each such complaint reads
/// the whole `requests` table.
fn sqlite_v9(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(REQUESTS_BY_TICKET)
}

/// Version 10 (issue 18, item 1): `kiosk_actors`, every Automerge actor
/// a kiosk writes with. A kiosk restored from an older copy of its disk
/// takes a new actor (its old one may have written changes after the copy
/// that only the server holds: reusing it would write a second, different
/// change under the same (actor, seq)) and registers it here; its earlier
/// actors stay its own, for the changes it still carries. Filled from
/// `kiosks.actor`, the enrollment actor, which stays as it is.
fn sqlite_v10(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(KIOSK_ACTORS)
}

/// Version 11 (issue 18, item 2): `docs_to_compact`, the documents that
/// have chunks, in the order compaction takes them (`store::compact`).
fn sqlite_v11(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(DOCS_TO_COMPACT)
}

/// `doc_receipts`: a document's first and last receipt, folded from the
/// row per change (`change_receipts`, keyed by a random hash, 1.0 KB a
/// request and its inserts scattered over the file) that only ever
/// answered those two. The same on both engines but for the types.
fn sqlite_v12(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        "CREATE TABLE IF NOT EXISTS doc_receipts (
             doc_id   TEXT PRIMARY KEY,
             first_ms INTEGER NOT NULL,
             last_ms  INTEGER NOT NULL
         ) STRICT, WITHOUT ROWID;",
    )?;
    // Idempotent, as every step: a store run again from an older version
    // number has nothing left to fold.
    let old: Option<i64> =
        scalar(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'change_receipts'", args![])?;
    if old.unwrap_or(0) > 0 {
        db.batch(DOC_RECEIPTS_FOLD)?;
    }
    Ok(())
}

/// Version 13 (issue 18, item 2): `events_by_who` went. No query reads
/// events by who acted (the staff figures come from `request_staff`), and
/// it was 136 bytes a request.
fn sqlite_v13(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(DROP_EVENTS_BY_WHO)
}

/// Version 14 (issue 18, item 2): `events` keeps what its readers use
/// (the journeys, the staff rebuild, an agency's scope), numbered in each
/// request's causal order (`ord`) instead of keyed by its id and ordered
/// by HLC, node and id; and on SQLite without a rowid, so the key is the
/// table. 1,300 → about 500 bytes a request. The request page reads its
/// timeline from the document, as before.
fn sqlite_v14(db: &mut dyn Sql) -> Result<(), StoreError> {
    // Gone since version 18 (its rows packed on `requests`): nothing to do.
    if !has_table(db, "events")? {
        return Ok(());
    }
    if has_column(db, "events", "ord")? {
        return Ok(());
    }
    db.batch(
        "CREATE TABLE events_v14 (
             doc_id    TEXT NOT NULL,
             ord       INTEGER NOT NULL,
             kelurahan TEXT NOT NULL,
             at_ms     INTEGER NOT NULL,
             by_who    TEXT NOT NULL,
             kind      TEXT NOT NULL,
             to_status TEXT NOT NULL,
             agency    TEXT,
             PRIMARY KEY (doc_id, ord)
         ) STRICT, WITHOUT ROWID;",
    )?;
    db.batch(EVENTS_V14_COPY)?;
    db.batch("DROP TABLE events; ALTER TABLE events_v14 RENAME TO events;")
}

/// Version 15 (issue 18, item 2): `ratings` without a rowid on SQLite, so
/// its key `(doc_id, rating_id)` is the table instead of a second b-tree
/// beside it (61 bytes a request). The same columns; PostgreSQL has no
/// such choice, and its step is empty.
fn sqlite_v15(db: &mut dyn Sql) -> Result<(), StoreError> {
    let done = scalar::<i64>(
        db,
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'ratings' AND sql LIKE '%WITHOUT ROWID%'",
        args![],
    )?;
    if done.unwrap_or(0) > 0 {
        return Ok(());
    }
    db.batch(
        "CREATE TABLE ratings_v15 (
             doc_id    TEXT NOT NULL,
             rating_id TEXT NOT NULL,
             kelurahan TEXT NOT NULL,
             at_ms     INTEGER NOT NULL,
             u1 INTEGER NOT NULL, u2 INTEGER NOT NULL, u3 INTEGER NOT NULL,
             u4 INTEGER NOT NULL, u5 INTEGER NOT NULL, u6 INTEGER NOT NULL,
             u7 INTEGER NOT NULL, u8 INTEGER NOT NULL, u9 INTEGER NOT NULL,
             comment   TEXT, age_band TEXT, sex TEXT, education TEXT, occupation TEXT,
             PRIMARY KEY (doc_id, rating_id)
         ) STRICT, WITHOUT ROWID;
         INSERT INTO ratings_v15 (doc_id, rating_id, kelurahan, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9,
                                  comment, age_band, sex, education, occupation)
             SELECT doc_id, rating_id, kelurahan, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9,
                    comment, age_band, sex, education, occupation
             FROM ratings;
         DROP TABLE ratings;
         ALTER TABLE ratings_v15 RENAME TO ratings;",
    )
}

/// Version 16 (issue 18, item 2): what `doc_seq` and `doc_receipts` kept
/// of a kelurahan's document moves onto its `docs` row, which had both
/// already or nearly: its partition's number is `last_seq` (read through
/// `docs_by_kelurahan_seq`), and its first and last receipt become two
/// columns. `doc_seq` keeps only the documents of no kelurahan (the
/// catalog), which are numbered in every partition. 180 bytes a request.
fn sqlite_v16(db: &mut dyn Sql) -> Result<(), StoreError> {
    add_column(db, "docs", "first_received_ms", "INTEGER")?;
    add_column(db, "docs", "last_received_ms", "INTEGER")?;
    db.batch(DOCS_CARRY_SEQ_AND_RECEIPTS)
}

/// Version 17 (issue 18, item 2): a finished request's step times are a
/// column of its `requests` row, packed (`projection::unpack_steps`),
/// instead of a `request_steps` row each keyed by the 36-character id.
/// Both of its readers (the request's own re-projection, a breach's
/// longest step) read one request at a time. About 190 bytes a request.
fn sqlite_v17(db: &mut dyn Sql) -> Result<(), StoreError> {
    add_column(db, "requests", "steps", "BLOB")?;
    super::projection::fold_request_steps(db)
}

/// Version 18 (issue 18, item 2): a request's events are a column of its
/// `requests` row, packed (`projection::unpack_journey`), instead of an
/// `events` row each keyed by the 36-character id and the kelurahan. Every
/// reader reads whole journeys of requests it has found by their row
/// already; an agency's scope, which scanned `events` for its handoffs,
/// reads `request_handoffs` (agency, request) instead. About 400 bytes a
/// request.
fn sqlite_v18(db: &mut dyn Sql) -> Result<(), StoreError> {
    add_column(db, "requests", "journey", "BLOB")?;
    db.batch(
        "CREATE TABLE IF NOT EXISTS request_handoffs (
             agency TEXT NOT NULL,
             doc_id TEXT NOT NULL,
             PRIMARY KEY (agency, doc_id)
         ) STRICT, WITHOUT ROWID;",
    )?;
    super::projection::fold_events(db)
}

/// Version 19 (issue 18, item 2): `requests_by_finished` went, since
/// `requests_finished_cover` begins with the same column under the same
/// condition (12 bytes a request); `docs_by_type_seq` keeps only the
/// documents found by their type, the reference documents and complaints,
/// not every request (21 bytes). The same on both engines.
fn sqlite_v19(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(LEANER_INDEXES)
}

/// Version 19, on both engines. A query that finds a document by its type
/// names the index's condition (`doc_type != 'request'`), which is how
/// both planners know they may use it.
pub const LEANER_INDEXES: &str = "DROP INDEX IF EXISTS requests_by_finished;
 DROP INDEX IF EXISTS docs_by_type_seq;
 CREATE INDEX docs_by_type_seq ON docs (doc_type, last_seq) WHERE doc_type != 'request';";

/// Version 20 (issue 18, item 2): `kiosk_heads`, what each kiosk holds
/// of each document (two rows a request: its kiosk's and the partner's),
/// is keyed by the kiosk's code (`K001`, unique and never reused) instead
/// of its 36-character id. About 64 bytes a request.
fn sqlite_v20(db: &mut dyn Sql) -> Result<(), StoreError> {
    if has_column(db, "kiosk_heads", "kiosk")? {
        return Ok(());
    }
    db.batch(
        "CREATE TABLE kiosk_heads_v20 (
             kiosk  TEXT NOT NULL,
             doc_id TEXT NOT NULL,
             heads  BLOB NOT NULL,
             PRIMARY KEY (kiosk, doc_id)
         ) STRICT, WITHOUT ROWID;",
    )?;
    db.batch(KIOSK_HEADS_BY_CODE)?;
    db.batch("ALTER TABLE kiosk_heads_v20 RENAME TO kiosk_heads;")
}

/// Version 20's copy, on both engines: the rows of enrolled kiosks (the
/// only ones there are) under their code, the old table gone.
pub const KIOSK_HEADS_BY_CODE: &str = "INSERT INTO kiosk_heads_v20 (kiosk, doc_id, heads)
     SELECT k.code, h.doc_id, h.heads FROM kiosk_heads h JOIN kiosks k ON k.id = h.kiosk_id;
 DROP TABLE kiosk_heads;";

/// Version 21 (issue 18, item 2): `requests_service_working` no longer
/// carries the request's id (36 bytes for each finished request): the
/// largest overruns of a service are read from it in order, and only the
/// page's few (100 and their ties) are then looked up for their id.
fn sqlite_v21(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(SERVICE_WORKING_WITHOUT_ID)
}

/// Version 21, on both engines.
pub const SERVICE_WORKING_WITHOUT_ID: &str = "DROP INDEX IF EXISTS requests_service_working;
 CREATE INDEX requests_service_working ON requests (service, working_ms, finished_at_ms)
     WHERE finished_at_ms IS NOT NULL;";

/// Version 22 (issue 18, item 2): `requests.nik_masked` keeps the NIK's
/// shown digits (`1271010003`) and `name_masked` the initials (`SA`), not
/// the masks (`127101••••••0003`, `S*** A***`: the six bullets alone were
/// 18 bytes of UTF-8); exports mask them as before
/// (`projection::mask_nik`, `mask_name`).
fn sqlite_v22(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(MASKS_KEPT_SHORT)
}

/// Version 22, on both engines.
pub const MASKS_KEPT_SHORT: &str = "UPDATE requests SET nik_masked = replace(nik_masked, '••••••', ''),
     name_masked = replace(replace(name_masked, '***', ''), ' ', '')
 WHERE nik_masked IS NOT NULL OR name_masked IS NOT NULL;";

/// Version 23 (issue 18, item 2): copies of what the request's row says
/// went.
/// - `ratings.kelurahan`: a request's kelurahan never changes, so its
///   rating's is the request's (13 bytes a rating).
/// - `requests.kecamatan`: the first 8 characters of its kelurahan
///   (`12.71.01` of `12.71.01.1001`), which the pages now read (9 bytes).
/// - `requests.agency_ms`: written, never read; each agency's time is in
///   `request_agency`.
/// - The covering index of finished requests no longer carries the id (36
///   bytes a finished request): the journeys it orders read their row
///   anyway, and every SLA overrun is read off `requests_service_working`
///   as the page's worst are.
fn sqlite_v23(db: &mut dyn Sql) -> Result<(), StoreError> {
    for (table, column) in [("ratings", "kelurahan"), ("requests", "kecamatan"), ("requests", "agency_ms")] {
        if has_column(db, table, column)? {
            db.batch(&format!("ALTER TABLE {table} DROP COLUMN {column};"))?;
        }
    }
    db.batch(FINISHED_COVER_WITHOUT_ID)
}

/// Version 24 (issue 18, item 2): `docs` without a rowid, stored in the
/// order of its id, so the id is not kept twice (the row's and its
/// unique index's: 45 bytes a document); `docs_by_kelurahan_seq` carries
/// the id instead of the rowid (33 bytes more), about 14 bytes a request
/// in all, and a document found by its id is one search, not two.
///
/// `chunks` refers to `docs`: with foreign keys on (in the migration's
/// transaction they cannot be turned off), `docs` can be dropped only
/// when nothing refers to it, so `chunks` is set aside first and made
/// again, as it was, once the new `docs` has the old one's name.
fn sqlite_v24(db: &mut dyn Sql) -> Result<(), StoreError> {
    let sql: Option<String> =
        scalar(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'docs'", args![])?;
    if sql.is_some_and(|s| s.contains("WITHOUT ROWID")) {
        return Ok(());
    }
    db.batch(
        "CREATE TABLE docs_v24 (
             doc_id            TEXT PRIMARY KEY,
             doc_type          TEXT NOT NULL CHECK (doc_type IN ('request', 'catalog', 'roster', 'complaint')),
             kelurahan         TEXT,
             snapshot          BLOB,
             chunk_count       INTEGER NOT NULL DEFAULT 0,
             last_seq          INTEGER NOT NULL,
             heads             BLOB,
             first_received_ms INTEGER,
             last_received_ms  INTEGER
         ) STRICT, WITHOUT ROWID;
         INSERT INTO docs_v24 (doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads,
                               first_received_ms, last_received_ms)
             SELECT doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads,
                    first_received_ms, last_received_ms
             FROM docs;
         CREATE TEMP TABLE chunks_v24 AS SELECT id, doc_id, data FROM chunks;
         DROP TABLE chunks;
         DROP TABLE docs;
         ALTER TABLE docs_v24 RENAME TO docs;
         CREATE INDEX docs_by_kelurahan_seq ON docs (kelurahan, last_seq);
         CREATE INDEX docs_to_compact ON docs (last_seq, doc_id) WHERE chunk_count > 0;
         CREATE INDEX docs_by_type_seq ON docs (doc_type, last_seq) WHERE doc_type != 'request';
         CREATE TABLE chunks (
             id     INTEGER PRIMARY KEY,
             doc_id TEXT NOT NULL REFERENCES docs (doc_id),
             data   BLOB NOT NULL
         ) STRICT;
         INSERT INTO chunks (id, doc_id, data) SELECT id, doc_id, data FROM chunks_v24 ORDER BY id;
         CREATE INDEX chunks_by_doc ON chunks (doc_id, id);
         DROP TABLE chunks_v24;",
    )
}

/// Version 23's index, on both engines.
pub const FINISHED_COVER_WITHOUT_ID: &str = "DROP INDEX IF EXISTS requests_finished_cover;
 CREATE INDEX requests_finished_cover ON requests (finished_at_ms, kelurahan, service, working_ms)
     WHERE finished_at_ms IS NOT NULL;";

/// Version 16's move of the rows, on both engines, after the columns are
/// added.
pub const DOCS_CARRY_SEQ_AND_RECEIPTS: &str =
    "UPDATE docs SET first_received_ms = r.first_ms, last_received_ms = r.last_ms
     FROM doc_receipts r WHERE r.doc_id = docs.doc_id;
 DROP TABLE IF EXISTS doc_receipts;
 UPDATE docs SET last_seq = s.seq
     FROM doc_seq s WHERE s.doc_id = docs.doc_id AND s.kelurahan = docs.kelurahan;
 DELETE FROM doc_seq
     WHERE EXISTS (SELECT 1 FROM docs d WHERE d.doc_id = doc_seq.doc_id AND d.kelurahan = doc_seq.kelurahan);";

/// Version 14's copy of the old rows, on both engines: the same order the
/// journeys used to read them in.
pub const EVENTS_V14_COPY: &str =
    "INSERT INTO events_v14 (doc_id, ord, kelurahan, at_ms, by_who, kind, to_status, agency)
     SELECT doc_id, row_number() OVER (PARTITION BY doc_id ORDER BY hlc, node, event_id) - 1,
            kelurahan, at_ms, by_who, kind, to_status, agency
     FROM events;";

/// Version 13, the same on both engines.
pub const DROP_EVENTS_BY_WHO: &str = "DROP INDEX IF EXISTS events_by_who;";

/// Version 12's fold of the old rows, on both engines.
pub const DOC_RECEIPTS_FOLD: &str = "INSERT INTO doc_receipts (doc_id, first_ms, last_ms)
     SELECT doc_id, min(received_ms), max(received_ms) FROM change_receipts GROUP BY doc_id;
 DROP INDEX IF EXISTS change_receipts_by_doc;
 DROP TABLE change_receipts;";

/// The index of version 11, the same on both engines.
pub const DOCS_TO_COMPACT: &str =
    "CREATE INDEX IF NOT EXISTS docs_to_compact ON docs (last_seq, doc_id) WHERE chunk_count > 0;";

/// The table of version 10 on SQLite.
const KIOSK_ACTORS: &str = "CREATE TABLE IF NOT EXISTS kiosk_actors (
    actor       TEXT NOT NULL PRIMARY KEY,
    kiosk_id    TEXT NOT NULL REFERENCES kiosks (id),
    added_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS kiosk_actors_by_kiosk ON kiosk_actors (kiosk_id);
INSERT INTO kiosk_actors (actor, kiosk_id, added_at_ms)
    SELECT actor, id, enrolled_at_ms FROM kiosks WHERE true
    ON CONFLICT (actor) DO NOTHING;";

/// The index of version 9, the same on both engines.
pub const REQUESTS_BY_TICKET: &str = "CREATE INDEX IF NOT EXISTS requests_by_ticket ON requests (ticket);";

/// `docs.doc_type` accepts `complaint` (version 7). SQLite cannot alter a
/// CHECK constraint, and rebuilding `docs` under the foreign keys of
/// `chunks` cannot be done inside the migration's transaction; widening a
/// CHECK does not touch the file format, so the table's stored definition
/// is edited in place, as SQLite documents for such changes (ALTER TABLE,
/// "making other kinds of table schema changes"): in the transaction,
/// with the schema version bumped so every connection reloads it. Does
/// nothing when the definition already allows it.
fn allow_complaint_docs(db: &mut dyn Sql) -> Result<(), StoreError> {
    let old = "CHECK (doc_type IN ('request', 'catalog', 'roster'))";
    let sql: Option<String> =
        scalar(db, "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'docs'", args![])?;
    let Some(sql) = sql else { return Ok(()) };
    if !sql.contains(old) {
        return Ok(());
    }
    let version: i64 = scalar(db, "PRAGMA schema_version", args![])?.unwrap_or(0);
    db.batch("PRAGMA writable_schema = ON")?;
    let edited = db.execute(
        "UPDATE sqlite_master SET sql = replace(sql, ?, ?) WHERE type = 'table' AND name = 'docs'",
        args![old, "CHECK (doc_type IN ('request', 'catalog', 'roster', 'complaint'))"],
    );
    let bumped = db.batch(&format!("PRAGMA schema_version = {}", version + 1));
    db.batch("PRAGMA writable_schema = OFF")?;
    edited?;
    bumped?;
    Ok(())
}

const SQLITE_V6: &str = r#"
CREATE TABLE IF NOT EXISTS skm_profile (
    month     INTEGER NOT NULL,
    kelurahan TEXT NOT NULL,
    dimension TEXT NOT NULL,
    code      TEXT NOT NULL,
    n         INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, kelurahan, dimension, code)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS skm_followups (
    id            INTEGER PRIMARY KEY,
    kelurahan     TEXT,
    period        TEXT NOT NULL,
    month_from    INTEGER NOT NULL,
    month_to      INTEGER NOT NULL,
    element       TEXT NOT NULL CHECK (element IN ('U1', 'U2', 'U3', 'U4', 'U5', 'U6', 'U7', 'U8', 'U9')),
    action        TEXT NOT NULL,
    responsible   TEXT NOT NULL,
    target_day    TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('direncanakan', 'berjalan', 'selesai')),
    progress_note TEXT,
    created_by    TEXT NOT NULL,
    created_ms    INTEGER NOT NULL,
    updated_by    TEXT NOT NULL,
    updated_ms    INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS skm_followups_by_period ON skm_followups (month_to, month_from);
"#;

fn sqlite_v3(db: &mut dyn Sql) -> Result<(), StoreError> {
    db.batch(
        "CREATE TABLE IF NOT EXISTS journey_hist (
             month     INTEGER NOT NULL,
             kelurahan TEXT NOT NULL,
             bucket    INTEGER NOT NULL,
             n         INTEGER NOT NULL DEFAULT 0,
             PRIMARY KEY (month, kelurahan, bucket)
         ) STRICT, WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS requests_service_working
             ON requests (service, working_ms, finished_at_ms, doc_id) WHERE finished_at_ms IS NOT NULL;
         CREATE TABLE IF NOT EXISTS staff_monthly (
             month      INTEGER NOT NULL,
             kelurahan  TEXT NOT NULL,
             nip        TEXT NOT NULL,
             bucket     INTEGER NOT NULL,
             handled    INTEGER NOT NULL DEFAULT 0,
             within_sla INTEGER NOT NULL DEFAULT 0,
             rated      INTEGER NOT NULL DEFAULT 0,
             u6         INTEGER NOT NULL DEFAULT 0,
             u7         INTEGER NOT NULL DEFAULT 0,
             PRIMARY KEY (month, kelurahan, nip, bucket)
         ) STRICT, WITHOUT ROWID;",
    )?;
    super::projection::rebuild_v3_rollups(db)
}

/// Version 4: service time measured per party in the offices' service
/// hours, with the clock paused while a request waits for the citizen
/// (`requests` gains the citizen's and the agencies' time, when the file
/// became complete, and when a request was cancelled; `monthly` counts
/// rejected and cancelled requests apart; `request_agency` and
/// `agency_monthly` judge each agency against its own SLA; `agency_sla`
/// and `service_hours` mirror the catalog). Every request is projected
/// again from its document and the rollups computed again, since working
/// time now means something else.
fn sqlite_v4(db: &mut dyn Sql) -> Result<(), StoreError> {
    // Columns one at a time, each only if missing: a store part-way
    // through an earlier attempt (or a test that replays the step) has some.
    add_column(db, "requests", "citizen_ms", "INTEGER")?;
    add_column(db, "requests", "agency_ms", "INTEGER")?;
    add_column(db, "requests", "complete_at_ms", "INTEGER")?;
    add_column(db, "requests", "cancelled_at_ms", "INTEGER")?;
    add_column(db, "monthly", "rejected", "INTEGER NOT NULL DEFAULT 0")?;
    add_column(db, "monthly", "cancelled", "INTEGER NOT NULL DEFAULT 0")?;
    db.batch(
        r#"DROP INDEX IF EXISTS requests_open;
CREATE INDEX requests_open ON requests (kelurahan) WHERE finished_at_ms IS NULL AND cancelled_at_ms IS NULL;
CREATE TABLE IF NOT EXISTS agency_sla (
    service  TEXT NOT NULL,
    agency   TEXT NOT NULL,
    sla_days INTEGER NOT NULL,
    PRIMARY KEY (service, agency)
) STRICT;
CREATE TABLE IF NOT EXISTS service_hours (
    kelurahan TEXT PRIMARY KEY,
    spec      TEXT NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS request_agency (
    doc_id     TEXT NOT NULL,
    agency     TEXT NOT NULL,
    kelurahan  TEXT NOT NULL,
    service    TEXT NOT NULL,
    month      INTEGER NOT NULL,
    working_ms INTEGER NOT NULL,
    sla_days   INTEGER,
    PRIMARY KEY (doc_id, agency)
) STRICT, WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS agency_monthly (
    month      INTEGER NOT NULL,
    agency     TEXT NOT NULL,
    kelurahan  TEXT NOT NULL,
    service    TEXT NOT NULL,
    finished   INTEGER NOT NULL DEFAULT 0,
    judged     INTEGER NOT NULL DEFAULT 0,
    within_sla INTEGER NOT NULL DEFAULT 0,
    working_ms INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (month, agency, kelurahan, service)
) STRICT, WITHOUT ROWID;"#,
    )?;
    // Every request is projected again once the store is at the latest
    // version (`migrate::run`): this build's projection writes the tables
    // of that version, not of this one.
    super::meta::meta_set(db, super::migrate::REPROJECT_PENDING, "1")
}

/// Fills the cursor partitions from `docs` (version 2, both engines): a
/// counter for every kelurahan of Medan, of an enrolled kiosk or of a
/// document, starting at `start` (above every cursor a kiosk holds); each
/// document in its kelurahan's partition at its last sequence; the catalog
/// in every partition.
pub fn partition_existing(db: &mut dyn Sql, start: i64) -> Result<(), StoreError> {
    let mut kelurahan: std::collections::BTreeSet<String> =
        loket_shared::wilayah::medan(loket_shared::wilayah::Level::Kelurahan)
            .into_iter()
            .map(|r| r.code.to_owned())
            .collect();
    for row in
        db.query("SELECT kelurahan FROM kiosks UNION SELECT kelurahan FROM docs WHERE kelurahan IS NOT NULL", args![])?
    {
        kelurahan.insert(row.get(0)?);
    }
    for k in &kelurahan {
        db.execute(
            "INSERT INTO seq_counters (kelurahan, seq) VALUES (?, ?) ON CONFLICT (kelurahan) DO NOTHING",
            args![k, start],
        )?;
    }
    db.execute(
        "INSERT INTO doc_seq (kelurahan, doc_id, seq)
         SELECT kelurahan, doc_id, last_seq FROM docs WHERE kelurahan IS NOT NULL
         ON CONFLICT (kelurahan, doc_id) DO NOTHING",
        args![],
    )?;
    db.execute(
        "INSERT INTO doc_seq (kelurahan, doc_id, seq)
         SELECT c.kelurahan, d.doc_id, d.last_seq FROM seq_counters c, docs d WHERE d.doc_type = 'catalog'
         ON CONFLICT (kelurahan, doc_id) DO NOTHING",
        args![],
    )?;
    Ok(())
}
