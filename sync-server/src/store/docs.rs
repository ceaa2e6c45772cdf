//! The SQLite document engine (see `engine`): the same snapshot + chunks layout as the kiosk,
//! a server change sequence (`change_log.seq`, the cursor kiosks pull
//! after), the heads each kiosk is known to hold, and the relational
//! projections (requests, events, ratings) rewritten in the same
//! transaction as each merge. Admin queries read the projections, never
//! the documents.
//!
//! Invariants:
//! - a merge that leaves a document with missing dependencies, or that no
//!   longer reads as a valid request of the pushing kiosk's kelurahan, is
//!   not stored (the caller rolls back);
//! - `kiosk_heads` only ever names heads the server holds: it comes from a
//!   kiosk's push (after applying it) or from a pull the kiosk has
//!   acknowledged by moving its cursor past it (`kiosk_sent`);
//! - every row is keyed by kelurahan and document, so the schema can be
//!   distributed by region later.

use automerge::sync::SyncDoc;
use automerge::{AutoCommit, ChangeHash};
use loket_shared::reference;
use loket_shared::request::{self, RequestView};
use loket_shared::sync::{DocType, Hash};
use loket_shared::workflow::{self, Derived};
use loket_shared::{DocId, KelurahanCode};
use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::engine::{Candidate, Commit, CommitOutcome, DocBytes, KioskMarks, StoredDoc, heads_blob};

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

/// Histogram buckets for working time: 0 below a minute, then 2 % wide
/// (geometric), so a percentile read from them is within 1 % of the exact
/// one.
pub fn step_bucket(ms: i64) -> i64 {
    if ms < 60_000 {
        return 0;
    }
    1 + ((ms as f64 / 60_000.0).ln() / 1.02f64.ln()).floor() as i64
}

/// A bucket's representative working time (its geometric middle).
pub fn bucket_ms(bucket: i64) -> i64 {
    if bucket <= 0 {
        return 0;
    }
    (60_000.0 * 1.02f64.powf(bucket as f64 - 0.5)).round() as i64
}

/// One event of a journey, in causal order: `(at, status, agency)`.
pub type JourneyEvent = (i64, workflow::Status, Option<String>);

/// The working time of each step of a journey from its events in causal
/// order: `(status, agency, working ms)`. Event times never go backwards,
/// never before filing and never after the finish, so a kiosk clock days
/// off shifts time between steps but cannot invent any.
pub fn journey_steps(
    created: i64,
    finished: i64,
    events: &[JourneyEvent],
    offset: time::UtcOffset,
    holidays: &loket_shared::sla::Holidays,
) -> Vec<(workflow::Status, Option<String>, i64)> {
    let mut steps = Vec::with_capacity(events.len());
    // (status entered, agency, since) of the step in progress
    let mut current: Option<(workflow::Status, Option<String>, i64)> = None;
    for (at, status, agency) in events {
        let since = current.as_ref().map_or(created, |c| c.2);
        let at = (*at).clamp(since, finished.max(since));
        if let Some((s, a, since)) = current.take() {
            steps.push((s, a, loket_shared::sla::working_ms_between(since, at, offset, holidays)));
        }
        if !status.is_terminal() {
            current = Some((*status, agency.clone(), at));
        }
    }
    if let Some((s, a, since)) = current {
        steps.push((s, a, loket_shared::sla::working_ms_between(since, finished, offset, holidays)));
    }
    steps
}

/// Replaces a request's rows in `request_steps` (none unless finished).
fn record_steps(
    conn: &Connection,
    doc_id: &str,
    service: &str,
    finished_at_ms: Option<i64>,
    steps: &[(workflow::Status, Option<String>, i64)],
    offset: time::UtcOffset,
) -> rusqlite::Result<()> {
    conn.prepare_cached("DELETE FROM request_steps WHERE doc_id = ?1")?.execute([doc_id])?;
    let Some(finished) = finished_at_ms else { return Ok(()) };
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(finished) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let month = i64::from(t.year()) * 100 + i64::from(u8::from(t.month()));
    let mut insert = conn.prepare_cached(
        "INSERT INTO request_steps (doc_id, seq, month, service, status, agency, working_ms, bucket)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (seq, (status, agency, ms)) in (0i64..).zip(steps) {
        insert.execute(params![
            doc_id,
            seq,
            month,
            service,
            status.as_str(),
            agency.as_deref().unwrap_or(""),
            ms,
            step_bucket(*ms)
        ])?;
    }
    Ok(())
}

/// Computes `request_steps` again for every finished request from the
/// projections (`requests`, `events`): at the first start with the table
/// (`central::ensure_catalog`), and for tools that write the projections
/// directly. Returns how many requests it measured.
pub fn rebuild_request_steps(conn: &Connection) -> Result<usize, StoreError> {
    conn.execute("DELETE FROM request_steps", [])?;
    let offset = projection_offset(conn)?;
    let holidays = projection_holidays(conn)?;
    let mut stmt = conn.prepare(
        "SELECT q.doc_id, q.service, q.created_at_ms, q.finished_at_ms, e.at_ms, e.to_status, e.agency
         FROM requests q INDEXED BY requests_by_finished JOIN events e USING (doc_id)
         WHERE q.finished_at_ms IS NOT NULL
         ORDER BY q.finished_at_ms, q.doc_id, e.hlc, e.node, e.event_id",
    )?;
    let mut rows = stmt.query([])?;
    let mut done = 0;
    // (doc, service, created, finished) of the request being read
    let mut current: Option<(String, String, i64, i64)> = None;
    let mut events: Vec<JourneyEvent> = Vec::new();
    let mut flush = |current: Option<(String, String, i64, i64)>, events: &mut Vec<JourneyEvent>| {
        let result = match current {
            Some((doc, service, created, finished)) => {
                done += 1;
                let steps = journey_steps(created, finished, events, offset, &holidays);
                record_steps(conn, &doc, &service, Some(finished), &steps, offset)
            }
            None => Ok(()),
        };
        events.clear();
        result
    };
    while let Some(r) = rows.next()? {
        let doc: String = r.get(0)?;
        if current.as_ref().is_none_or(|c| c.0 != doc) {
            flush(current.take(), &mut events)?;
            current = Some((doc, r.get(1)?, r.get(2)?, r.get(3)?));
        }
        if let Ok(status) = r.get_ref(5)?.as_str().unwrap_or_default().parse::<workflow::Status>() {
            events.push((r.get(4)?, status, r.get(6)?));
        }
    }
    flush(current.take(), &mut events)?;
    Ok(done)
}

/// Creates the rollups, filling them from the projections the first time.
fn migrate_rollups(conn: &Connection) -> rusqlite::Result<()> {
    let exists = |table: &str| -> rusqlite::Result<bool> {
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| r.get(0))
    };
    let existed = exists("monthly")?;
    let staff_existed = exists("request_staff")?;
    conn.execute_batch(ROLLUPS)?;
    // Filled by `central::ensure_catalog` at the first start with it, once
    // the holidays are known.
    conn.execute_batch(STEP_TIMES)?;
    // After ROLLUPS, whose `service_sla` its triggers read.
    conn.execute_batch(STAFF_WORK)?;
    if !staff_existed {
        conn.execute_batch(
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
        conn.execute_batch(
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

/// Records each service's SLA for the rollups (call when the catalog changes).
pub fn record_service_slas(conn: &Connection, catalog: &loket_shared::reference::Catalog) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO service_sla (code, sla_days) VALUES (?1, ?2)
         ON CONFLICT (code) DO UPDATE SET sla_days = excluded.sla_days",
    )?;
    for s in &catalog.services {
        stmt.execute(params![s.code.as_str(), s.sla_days])?;
    }
    Ok(())
}

/// Keeps the `holidays` table equal to the catalog's list. When it
/// changes, the working time of every finished request whose span touches
/// a changed day is projected again from its document (the rollups follow
/// through their triggers). Returns how many requests were re-projected.
pub fn record_holidays(conn: &Connection, catalog: &loket_shared::reference::Catalog) -> Result<usize, StoreError> {
    use loket_shared::reference::ymd;
    let stored: std::collections::BTreeSet<String> =
        conn.prepare("SELECT day FROM holidays")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    let wanted: std::collections::BTreeSet<String> = catalog.holidays.iter().map(|h| ymd::format(h.date)).collect();
    let changed: Vec<time::Date> = stored.symmetric_difference(&wanted).filter_map(|d| ymd::parse(d)).collect();
    conn.execute("DELETE FROM holidays", [])?;
    let mut insert = conn.prepare_cached("INSERT INTO holidays (day, name) VALUES (?1, ?2)")?;
    for h in &catalog.holidays {
        insert.execute(params![ymd::format(h.date), h.name])?;
    }
    let (Some(first), Some(last)) = (changed.iter().min(), changed.iter().max()) else { return Ok(0) };
    // A day's local span lies within a day of its UTC midnight; kiosk clocks
    // that ran fast can make a stored filing time later than its bounded
    // start, hence a week of slack on that side.
    let midnight = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1000;
    let (lo, hi) = (midnight(*first) - DAY_MS, midnight(*last) + 2 * DAY_MS);
    let ids: Vec<String> = conn
        .prepare("SELECT doc_id FROM requests WHERE finished_at_ms >= ?1 AND created_at_ms < ?2")?
        .query_map(params![lo, hi + 7 * DAY_MS], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        let stored = match load(conn, id) {
            Ok(Some(stored)) => stored,
            Ok(None) => continue,
            Err(StoreError::Corrupt { reason, .. }) => {
                tracing::warn!(doc = %id, error = %reason, "holidays: unreadable request not re-projected");
                continue;
            }
            Err(e) => return Err(e),
        };
        match read_request(&stored.doc) {
            Ok((view, derived)) => project_request(conn, &view, &derived)?,
            Err(e) => tracing::warn!(doc = %id, error = %e, "holidays: unreadable request not re-projected"),
        }
    }
    tracing::info!(changed_days = changed.len(), requests = ids.len(), "holidays changed; working times re-projected");
    Ok(ids.len())
}

/// The holidays working time skips (the `holidays` table).
pub fn projection_holidays(conn: &Connection) -> Result<loket_shared::sla::Holidays, StoreError> {
    let days: Vec<String> =
        conn.prepare_cached("SELECT day FROM holidays")?.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
    Ok(loket_shared::sla::Holidays::new(days.iter().filter_map(|d| loket_shared::reference::ymd::parse(d)).collect()))
}

const DAY_MS: i64 = 86_400_000;

pub fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    // `docs.heads` came after the first release of this table.
    let has_docs: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'docs'", [], |r| r.get(0))?;
    if has_docs {
        let has_heads: bool =
            conn.query_row("SELECT count(*) FROM pragma_table_info('docs') WHERE name = 'heads'", [], |r| r.get(0))?;
        if !has_heads {
            conn.execute_batch("ALTER TABLE docs ADD COLUMN heads BLOB")?;
        }
    }
    // `requests.finished_at_ms` and `working_ms` came with the overview.
    let has_requests: bool =
        conn.query_row("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'requests'", [], |r| {
            r.get(0)
        })?;
    if has_requests {
        let has_finished: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info('requests') WHERE name = 'finished_at_ms'",
            [],
            |r| r.get(0),
        )?;
        if !has_finished {
            conn.execute_batch(
                "ALTER TABLE requests ADD COLUMN finished_at_ms INTEGER;
                 ALTER TABLE requests ADD COLUMN working_ms INTEGER;",
            )?;
        }
        let has_masked: bool =
            conn.query_row("SELECT count(*) FROM pragma_table_info('requests') WHERE name = 'nik_masked'", [], |r| {
                r.get(0)
            })?;
        if !has_masked {
            conn.execute_batch(
                "ALTER TABLE requests ADD COLUMN nik_masked TEXT;
                 ALTER TABLE requests ADD COLUMN name_masked TEXT;",
            )?;
        }
    }
    conn.execute_batch(
        r#"
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
"#,
    )?;
    migrate_rollups(conn)
}

fn corrupt(what: impl ToString, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { what: what.to_string(), reason: reason.to_string() }
}

pub fn to_hashes(heads: &[ChangeHash]) -> Vec<Hash> {
    heads.iter().map(|h| h.0).collect()
}

pub fn from_hashes(heads: &[Hash]) -> Vec<ChangeHash> {
    heads.iter().map(|h| ChangeHash(*h)).collect()
}

/// A stored document with its type and kelurahan.
pub struct Stored {
    pub doc_type: DocType,
    pub kelurahan: Option<String>,
    pub doc: AutoCommit,
}

/// A stored document's rows, not yet opened.
pub fn load_raw(conn: &Connection, doc_id: &str) -> Result<Option<StoredDoc>, StoreError> {
    type Row = (String, Option<String>, Option<Vec<u8>>, Option<Vec<u8>>);
    let row: Option<Row> = conn
        .prepare_cached("SELECT doc_type, kelurahan, snapshot, heads FROM docs WHERE doc_id = ?1")?
        .query_row([doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .optional()?;
    let Some((doc_type, kelurahan, snapshot, heads)) = row else { return Ok(None) };
    let doc_type = DocType::parse(&doc_type).ok_or_else(|| corrupt(doc_id, "unknown doc_type"))?;
    let mut stmt = conn.prepare_cached("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
    let chunks = stmt.query_map([doc_id], |r| r.get(0))?.collect::<Result<Vec<Vec<u8>>, _>>()?;
    Ok(Some(StoredDoc { doc_type, kelurahan, snapshot, chunks, heads: heads.unwrap_or_default() }))
}

pub fn load(conn: &Connection, doc_id: &str) -> Result<Option<Stored>, StoreError> {
    let Some(raw) = load_raw(conn, doc_id)? else { return Ok(None) };
    let doc = raw.open(doc_id)?;
    Ok(Some(Stored { doc_type: raw.doc_type, kelurahan: raw.kelurahan, doc }))
}

/// Writes a document whose heads moved from `heads_before` (empty for a
/// new document), logs the change and returns the new server sequence.
/// `incoming` is the exact bytes that made a new document, when there are
/// any: stored as its snapshot as they are, instead of saving it again.
pub fn save(
    conn: &Connection,
    doc_id: &str,
    stored: &mut Stored,
    heads_before: &[ChangeHash],
    is_new: bool,
    incoming: Option<&[u8]>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    conn.execute("INSERT INTO change_log (doc_id, at_ms) VALUES (?1, ?2)", params![doc_id, now_ms])?;
    let seq = conn.last_insert_rowid();
    let heads = heads_blob(&to_hashes(&stored.doc.get_heads()));
    if is_new {
        let snapshot = match incoming {
            Some(bytes) => bytes.to_vec(),
            None => stored.doc.save(),
        };
        conn.prepare_cached(
            "INSERT INTO docs (doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads)
             VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
        )?
        .execute(params![doc_id, stored.doc_type.as_str(), stored.kelurahan, snapshot, seq, heads])?;
    } else {
        let chunk = stored.doc.save_after(heads_before);
        conn.prepare_cached("INSERT INTO chunks (doc_id, data) VALUES (?1, ?2)")?.execute(params![doc_id, chunk])?;
        conn.prepare_cached(
            "UPDATE docs SET chunk_count = chunk_count + 1, last_seq = ?2, heads = ?3 WHERE doc_id = ?1",
        )?
        .execute(params![doc_id, seq, heads])?;
    }
    Ok(seq)
}

/// Records when the server first saw each change of `doc` after
/// `heads_before` (SLA statistics correct implausible kiosk clocks with it).
pub fn record_receipts(
    conn: &Connection,
    doc_id: &str,
    doc: &mut AutoCommit,
    heads_before: &[ChangeHash],
    kiosk_id: Option<&str>,
    now_ms: i64,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare_cached(
        "INSERT OR IGNORE INTO change_receipts (hash, doc_id, kiosk_id, received_ms) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for change in doc.get_changes_meta(heads_before) {
        stmt.execute(params![change.hash.0.as_slice(), doc_id, kiosk_id, now_ms])?;
    }
    Ok(())
}

/// Rewrites the projection rows of a request document.
/// When a request was finished, and its working time from filing, for
/// the SLA figures. Kiosk clocks can be wrong: an instant is never later
/// than the server's receipt of the document's changes (first receipt for
/// the filing, last for the finish), and the finish never precedes the
/// filing. `None` while open or in conflict.
pub fn finish_times(
    view: &RequestView,
    derived: &Derived,
    received: (Option<i64>, Option<i64>),
    offset: time::UtcOffset,
    holidays: &loket_shared::sla::Holidays,
) -> Option<(i64, i64)> {
    if !derived.status.is_terminal() || derived.has_conflict() {
        return None;
    }
    let finish = derived.ordered.iter().rev().find(|e| e.to == derived.status)?;
    let created = received.0.map_or(view.created_at_ms, |r| view.created_at_ms.min(r));
    let finished = received.1.map_or(finish.at_ms, |r| finish.at_ms.min(r)).max(created);
    let working = loket_shared::sla::working_ms_between(created, finished, offset, holidays);
    Some((finished, working))
}

/// The local-time offset the projections use (meta `utc_offset_hours`,
/// written by `serve` from its configuration; WIB by default).
fn projection_offset(conn: &Connection) -> Result<time::UtcOffset, StoreError> {
    let hours: i8 = conn
        .prepare_cached("SELECT value FROM meta WHERE key = 'utc_offset_hours'")?
        .query_row([], |r| r.get::<_, String>(0))
        .optional()?
        .and_then(|v| v.parse().ok())
        .unwrap_or(7);
    Ok(time::UtcOffset::from_hms(hours, 0, 0).unwrap_or(time::UtcOffset::UTC))
}

/// Rewrites the projection rows of every request from its document, in
/// batches of `batch` per transaction (after an upgrade that added
/// projected columns). Returns how many requests were projected; documents
/// that cannot be read are skipped and counted in the second figure.
pub fn reproject_requests(
    db: &super::Db,
    batch: usize,
    mut progress: impl FnMut(usize),
) -> Result<(usize, usize), StoreError> {
    let ids: Vec<String> = db.read(|c| -> Result<Vec<String>, StoreError> {
        let mut stmt = c.prepare("SELECT doc_id FROM docs WHERE doc_type = 'request' ORDER BY doc_id")?;
        let ids = stmt.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?;
        Ok(ids)
    })?;
    let (mut done, mut skipped) = (0, 0);
    for chunk in ids.chunks(batch.max(1)) {
        let (d, s) = db.write(|tx| -> Result<(usize, usize), StoreError> {
            let (mut d, mut s) = (0, 0);
            for id in chunk {
                let stored = match load(tx, id) {
                    Ok(Some(stored)) => stored,
                    Ok(None) => continue,
                    Err(StoreError::Corrupt { reason, .. }) => {
                        tracing::warn!(doc = %id, error = %reason, "reproject: unreadable request skipped");
                        s += 1;
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                match read_request(&stored.doc) {
                    Ok((view, derived)) => {
                        project_request(tx, &view, &derived)?;
                        d += 1;
                    }
                    Err(e) => {
                        tracing::warn!(doc = %id, error = %e, "reproject: unreadable request skipped");
                        s += 1;
                    }
                }
            }
            Ok((d, s))
        })?;
        done += d;
        skipped += s;
        progress(done);
    }
    Ok((done, skipped))
}

pub fn project_request(conn: &Connection, view: &RequestView, derived: &Derived) -> Result<(), StoreError> {
    let id = view.id.to_string();
    let updated_at = derived.ordered.iter().map(|e| e.at_ms).max().unwrap_or(view.created_at_ms);
    let updated_at = view.ratings.iter().map(|r| r.at_ms).fold(updated_at, i64::max);
    let offset = projection_offset(conn)?;
    let (finished, steps) = if derived.status.is_terminal() && !derived.has_conflict() {
        let received: (Option<i64>, Option<i64>) = conn
            .prepare_cached("SELECT min(received_ms), max(received_ms) FROM change_receipts WHERE doc_id = ?1")?
            .query_row([&id], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let holidays = projection_holidays(conn)?;
        let finished = finish_times(view, derived, received, offset, &holidays);
        let steps = match finished {
            Some((at, _)) => {
                let events: Vec<JourneyEvent> =
                    derived.ordered.iter().map(|e| (e.at_ms, e.to, e.agency.clone())).collect();
                journey_steps(view.created_at_ms, at, &events, offset, &holidays)
            }
            None => Vec::new(),
        };
        (finished, steps)
    } else {
        (None, Vec::new())
    };
    record_steps(conn, &id, view.service.as_str(), finished.map(|f| f.0), &steps, offset)?;
    conn.execute(
        "INSERT INTO requests (doc_id, ticket, kelurahan, kecamatan, kiosk, service, status, conflict, agency, rated,
                               created_at_ms, updated_at_ms, finished_at_ms, working_ms, nik_masked, name_masked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
         ON CONFLICT (doc_id) DO UPDATE SET status = excluded.status, conflict = excluded.conflict,
             agency = excluded.agency, rated = excluded.rated, updated_at_ms = excluded.updated_at_ms,
             finished_at_ms = excluded.finished_at_ms, working_ms = excluded.working_ms,
             nik_masked = excluded.nik_masked, name_masked = excluded.name_masked",
        params![
            id,
            view.ticket.as_str(),
            view.kelurahan.as_str(),
            view.kelurahan.kecamatan(),
            view.kiosk.as_str(),
            view.service.as_str(),
            derived.status.as_str(),
            derived.has_conflict(),
            derived.agency,
            !view.ratings.is_empty(),
            view.created_at_ms,
            updated_at,
            finished.map(|f| f.0),
            finished.map(|f| f.1),
            view.applicant.nik.masked(),
            view.applicant.name.masked(),
        ],
    )?;
    let mut ev = conn.prepare_cached(
        "INSERT OR IGNORE INTO events (doc_id, event_id, kelurahan, hlc, node, at_ms, by_who, kind, from_status,
                                       to_status, note, agency)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for e in &derived.ordered {
        ev.execute(params![
            id,
            e.id,
            view.kelurahan.as_str(),
            e.hlc.to_string(),
            e.node,
            e.at_ms,
            e.by,
            e.kind.as_str(),
            e.from.map(|s| s.as_str()),
            e.to.as_str(),
            e.note,
            e.agency
        ])?;
    }
    let mut rt = conn.prepare_cached(
        "INSERT OR IGNORE INTO ratings (doc_id, rating_id, kelurahan, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9, comment)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?;
    for r in &view.ratings {
        let s = |i: usize| r.scores.get(loket_shared::skm::Element::ALL[i]);
        rt.execute(params![
            id,
            r.id,
            view.kelurahan.as_str(),
            r.at_ms,
            s(0),
            s(1),
            s(2),
            s(3),
            s(4),
            s(5),
            s(6),
            s(7),
            s(8),
            r.comment
        ])?;
    }
    Ok(())
}

/// Reads and folds a request document, as the schema requires.
pub fn read_request(doc: &AutoCommit) -> Result<(RequestView, Derived), String> {
    let view = request::read(doc).map_err(|e| e.to_string())?;
    let derived = workflow::fold(&view.events).map_err(|e| e.to_string())?;
    Ok((view, derived))
}

/// A kiosk that asks for changes after `cursor` has durably applied every
/// pull up to it: what we sent it up to there, it now holds.
pub fn promote_sent(conn: &Connection, kiosk_id: &str, cursor: u64) -> Result<(), StoreError> {
    let cursor = i64::try_from(cursor).unwrap_or(i64::MAX);
    conn.execute(
        "INSERT INTO kiosk_heads (kiosk_id, doc_id, heads)
             SELECT kiosk_id, doc_id, heads FROM kiosk_sent WHERE kiosk_id = ?1 AND seq <= ?2
         ON CONFLICT (kiosk_id, doc_id) DO UPDATE SET heads = excluded.heads",
        params![kiosk_id, cursor],
    )?;
    conn.execute("DELETE FROM kiosk_sent WHERE kiosk_id = ?1 AND seq <= ?2", params![kiosk_id, cursor])?;
    Ok(())
}

/// Documents a kiosk of `kelurahan` may see, changed after `after`, in
/// server-sequence order, at most `limit` (+1 to tell whether there is more).
pub fn changed_since(
    conn: &Connection,
    kiosk_id: &str,
    kelurahan: &KelurahanCode,
    after: u64,
    limit: usize,
) -> Result<Vec<Candidate>, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let mut stmt = conn.prepare_cached(
        "SELECT d.doc_id, d.last_seq, d.heads, k.heads FROM docs d
         LEFT JOIN kiosk_heads k ON k.kiosk_id = ?4 AND k.doc_id = d.doc_id
         WHERE d.last_seq > ?2 AND (d.kelurahan = ?1 OR d.doc_type = 'catalog')
         ORDER BY d.last_seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![kelurahan.as_str(), after, limit as i64 + 1, kiosk_id], |r| {
        Ok(Candidate { doc_id: r.get(0)?, seq: r.get(1)?, heads: r.get(2)?, kiosk_heads: r.get(3)? })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The server's Automerge sync message for a document, from a fresh sync
/// state (the fallback is stateless: every message carries heads and a
/// bloom filter of what the sender has).
pub fn fallback_message(doc: &mut AutoCommit) -> Vec<u8> {
    let mut state = automerge::sync::State::new();
    doc.sync().generate_sync_message(&mut state).map(|m| m.encode()).unwrap_or_default()
}

/// Applies a peer's Automerge sync message to `doc`; returns our reply.
pub fn receive_fallback(doc: &mut AutoCommit, message: &[u8]) -> Result<Vec<u8>, String> {
    let msg = automerge::sync::Message::decode(message).map_err(|e| e.to_string())?;
    let mut state = automerge::sync::State::new();
    doc.sync().receive_sync_message(&mut state, msg).map_err(|e| e.to_string())?;
    Ok(doc.sync().generate_sync_message(&mut state).map(|m| m.encode()).unwrap_or_default())
}

/// The id of the catalog document and of a kelurahan's roster document.
pub fn reference_doc(
    conn: &Connection,
    doc_type: DocType,
    kelurahan: Option<&str>,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT doc_id FROM docs WHERE doc_type = ?1 AND kelurahan IS ?2 ORDER BY last_seq LIMIT 1",
            params![doc_type.as_str(), kelurahan],
            |r| r.get(0),
        )
        .optional()?)
}

/// Creates a reference document (catalog or a kelurahan's roster).
pub fn create_reference(
    conn: &Connection,
    doc_type: DocType,
    kelurahan: Option<&str>,
    doc: AutoCommit,
    now_ms: i64,
    random: [u8; 10],
) -> Result<String, StoreError> {
    let id = DocId::new_v7(u64::try_from(now_ms).unwrap_or(0), random).to_string();
    let mut stored = Stored { doc_type, kelurahan: kelurahan.map(str::to_owned), doc };
    save(conn, &id, &mut stored, &[], true, None, now_ms)?;
    Ok(id)
}

/// Checks a reference document reads back (used after central edits).
pub fn check_reference(doc: &AutoCommit, doc_type: DocType) -> Result<(), String> {
    match doc_type {
        DocType::Catalog => reference::read_catalog(doc).map(|_| ()).map_err(|e| e.to_string()),
        DocType::Roster => reference::read_roster(doc).map(|_| ()).map_err(|e| e.to_string()),
        DocType::Request => read_request(doc).map(|_| ()),
    }
}

/// Applies a commit inside the caller's transaction (see
/// [`super::engine::DocEngine::commit`]). On `Stale` nothing was written,
/// but the caller must still roll back to drop what SQLite began.
pub fn commit_tx(tx: &Connection, commit: &Commit) -> Result<CommitOutcome, StoreError> {
    let stale: Vec<String> = commit
        .docs
        .iter()
        .map(|w| Ok::<_, StoreError>((w, current_heads(tx, &w.doc_id)?)))
        .filter_map(|r| match r {
            Ok((w, current)) if current != w.base => Some(Ok(w.doc_id.clone())),
            Ok(_) => None,
            Err(e) => Some(Err(e)),
        })
        .collect::<Result<_, _>>()?;
    if !stale.is_empty() {
        return Ok(CommitOutcome::Stale(stale));
    }
    let now = commit.now_ms;
    if let Some(k) = &commit.kiosk {
        tx.prepare_cached("UPDATE kiosks SET last_seen_at_ms = ?2, version = ?3, pending_known = ?4 WHERE id = ?1")?
            .execute(params![k.kiosk_id, now, k.client, i64::try_from(k.pending).unwrap_or(i64::MAX)])?;
        promote_sent(tx, &k.kiosk_id, k.pull_after)?;
    }
    let mut log = tx.prepare_cached("INSERT INTO change_log (doc_id, at_ms) VALUES (?1, ?2)")?;
    let mut receipts = tx.prepare_cached(
        "INSERT OR IGNORE INTO change_receipts (hash, doc_id, kiosk_id, received_ms) VALUES (?1, ?2, ?3, ?4)",
    )?;
    for w in &commit.docs {
        log.execute(params![w.doc_id, now])?;
        let seq = tx.last_insert_rowid();
        match &w.bytes {
            DocBytes::Snapshot(bytes) => {
                tx.prepare_cached(
                    "INSERT INTO docs (doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads)
                     VALUES (?1, ?2, ?3, ?4, 0, ?5, ?6)",
                )?
                .execute(params![w.doc_id, w.doc_type.as_str(), w.kelurahan, bytes, seq, w.heads])?;
            }
            DocBytes::Chunk(bytes) => {
                tx.prepare_cached("INSERT INTO chunks (doc_id, data) VALUES (?1, ?2)")?
                    .execute(params![w.doc_id, bytes])?;
                tx.prepare_cached(
                    "UPDATE docs SET chunk_count = chunk_count + 1, last_seq = ?2, heads = ?3 WHERE doc_id = ?1",
                )?
                .execute(params![w.doc_id, seq, w.heads])?;
            }
        }
        for hash in &w.receipts {
            receipts.execute(params![hash.as_slice(), w.doc_id, w.received_from, now])?;
        }
        if let Some(p) = &w.projection {
            project_request(tx, &p.0, &p.1)?;
        }
    }
    if let Some(k) = &commit.kiosk {
        let mut holds = tx.prepare_cached(
            "INSERT INTO kiosk_heads (kiosk_id, doc_id, heads) VALUES (?1, ?2, ?3)
             ON CONFLICT (kiosk_id, doc_id) DO UPDATE SET heads = excluded.heads",
        )?;
        for (doc_id, heads) in &k.holds {
            holds.execute(params![k.kiosk_id, doc_id, heads])?;
        }
        let mut sent = tx.prepare_cached(
            "INSERT INTO kiosk_sent (kiosk_id, doc_id, seq, heads) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (kiosk_id, doc_id) DO UPDATE SET seq = excluded.seq, heads = excluded.heads",
        )?;
        for (doc_id, seq, heads) in &k.sent {
            sent.execute(params![k.kiosk_id, doc_id, seq, heads])?;
        }
        tx.prepare_cached("UPDATE kiosks SET last_sync_ok_at_ms = ?2 WHERE id = ?1")?
            .execute(params![k.kiosk_id, now])?;
        let through = k.through.map(|t| i64::try_from(t).unwrap_or(i64::MAX));
        tx.prepare_cached(
            "INSERT INTO kiosk_marks (kiosk_id, through, pull_given) VALUES (?1, ?2, ?3)
             ON CONFLICT (kiosk_id) DO UPDATE SET
                 through = coalesce(max(excluded.through, kiosk_marks.through), kiosk_marks.through, excluded.through),
                 pull_given = excluded.pull_given",
        )?
        .execute(params![k.kiosk_id, through, i64::try_from(k.pull_given).unwrap_or(i64::MAX)])?;
    }
    Ok(CommitOutcome::Committed)
}

pub fn kiosk_marks(conn: &Connection, kiosk_id: &str) -> Result<KioskMarks, StoreError> {
    let row: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached("SELECT through, pull_given FROM kiosk_marks WHERE kiosk_id = ?1")?
        .query_row([kiosk_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (through, pull_given) = row.unwrap_or_default();
    let u = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0));
    Ok(KioskMarks { through: u(through), pull_given: u(pull_given) })
}

/// A document's stored heads blob, `None` if there is no such document.
fn current_heads(conn: &Connection, doc_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    let heads: Option<Option<Vec<u8>>> = conn
        .prepare_cached("SELECT heads FROM docs WHERE doc_id = ?1")?
        .query_row([doc_id], |r| r.get(0))
        .optional()?;
    Ok(heads.map(Option::unwrap_or_default))
}
