//! The complaints projection (issue 16): one row per complaint document,
//! written in the same transaction as the document (`docs::commit_tx`,
//! `ops::complaints`), and the queries the complaint API and pages read.
//!
//! Invariants:
//! - a row is a pure function of the document, the server's first receipt
//!   of it and the office's calendar (`project_complaint`); the calendar's
//!   part (`due_at_ms`) is computed again when the calendar changes
//!   (`refresh_due`), since it only needs the row;
//! - `received_at_ms` is the filing time by the kiosk's clock, but never
//!   later than the server first received the complaint: a kiosk clock
//!   running ahead cannot push a deadline later;
//! - no name, NIK or phone is projected: only whether the complaint is
//!   anonymous. Personal data stays in the document.

use loket_shared::complaint::{self, About, ComplaintView, Derived, Flag, State};

use super::projection::Calendars;
use super::sql::{Row, Sql, scalar};
use super::{StoreError, docs};
use crate::args;

/// The projection's table, as both engines make it (SQLite's types; the
/// PostgreSQL migration spells its own).
pub const SQLITE_TABLE: &str = r#"
CREATE TABLE IF NOT EXISTS complaints (
    doc_id         TEXT PRIMARY KEY,
    ticket         TEXT NOT NULL,
    kelurahan      TEXT NOT NULL,
    kiosk          TEXT NOT NULL,
    about_kind     TEXT NOT NULL,
    about_target   TEXT,
    anonymous      INTEGER NOT NULL CHECK (anonymous IN (0, 1)),
    class          TEXT,
    unit           TEXT,
    state          TEXT NOT NULL CHECK (state IN ('received', 'registered', 'answered', 'closed')),
    received_at_ms INTEGER NOT NULL,
    allowed_days   INTEGER NOT NULL,
    due_at_ms      INTEGER NOT NULL,
    extended_days  INTEGER,
    lapor          TEXT,
    answered_at_ms INTEGER,
    closed_at_ms   INTEGER,
    flags          TEXT,
    updated_at_ms  INTEGER NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS complaints_by_received ON complaints (received_at_ms, doc_id);
CREATE INDEX IF NOT EXISTS complaints_by_kelurahan ON complaints (kelurahan, received_at_ms, doc_id);
CREATE INDEX IF NOT EXISTS complaints_by_unit ON complaints (unit, received_at_ms, doc_id);
"#;

pub const POSTGRES_TABLE: &str = r#"
CREATE TABLE IF NOT EXISTS complaints (
    doc_id         TEXT COLLATE "C" PRIMARY KEY,
    ticket         TEXT COLLATE "C" NOT NULL,
    kelurahan      TEXT COLLATE "C" NOT NULL,
    kiosk          TEXT COLLATE "C" NOT NULL,
    about_kind     TEXT COLLATE "C" NOT NULL,
    about_target   TEXT COLLATE "C",
    anonymous      BIGINT NOT NULL CHECK (anonymous IN (0, 1)),
    class          TEXT COLLATE "C",
    unit           TEXT COLLATE "C",
    state          TEXT COLLATE "C" NOT NULL CHECK (state IN ('received', 'registered', 'answered', 'closed')),
    received_at_ms BIGINT NOT NULL,
    allowed_days   BIGINT NOT NULL,
    due_at_ms      BIGINT NOT NULL,
    extended_days  BIGINT,
    lapor          TEXT COLLATE "C",
    answered_at_ms BIGINT,
    closed_at_ms   BIGINT,
    flags          TEXT COLLATE "C",
    updated_at_ms  BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS complaints_by_received ON complaints (received_at_ms, doc_id);
CREATE INDEX IF NOT EXISTS complaints_by_kelurahan ON complaints (kelurahan, received_at_ms, doc_id);
CREATE INDEX IF NOT EXISTS complaints_by_unit ON complaints (unit, received_at_ms, doc_id);
"#;

/// A flag's stable name (the projection's `flags`, the API's).
pub fn flag_name(f: &Flag) -> &'static str {
    match f {
        Flag::ConcurrentAnswers(_) => "concurrent_answers",
        Flag::ConcurrentRegistrations(_) => "concurrent_registrations",
        Flag::ExtraExtension(_) => "extra_extension",
        Flag::ConcurrentForwards(_) => "concurrent_forwards",
        Flag::AnswerUnseenAtClose(_) => "answer_unseen_at_close",
    }
}

/// What a complaint is about, as the projection keeps it.
pub fn about_target(about: &About) -> Option<String> {
    match about {
        About::Request(t) => Some(t.as_str().to_owned()),
        About::Service(s) => Some(s.as_str().to_owned()),
        About::Staff(s) => Some(s.as_str().to_owned()),
        About::Office | About::General => None,
    }
}

/// When the server first received any change of the document.
fn first_receipt(db: &mut dyn Sql, doc_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(scalar::<Option<i64>>(db, "SELECT first_received_ms FROM docs WHERE doc_id = ?", args![doc_id])?.flatten())
}

/// Writes (or rewrites) the projection row of a complaint.
pub fn project_complaint(db: &mut dyn Sql, view: &ComplaintView, derived: &Derived) -> Result<(), StoreError> {
    let doc_id = view.id.to_string();
    let received = match first_receipt(db, &doc_id)? {
        Some(first) => view.created_at_ms.min(first),
        None => view.created_at_ms,
    };
    let cals = Calendars::load(db)?;
    let due = derived.due_at(&cals.of_kelurahan(view.kelurahan.as_str()), received);
    let flags: Vec<&str> = derived.flags.iter().map(flag_name).collect();
    let updated = derived.ordered.iter().map(|s| s.at_ms).max().unwrap_or(view.created_at_ms);
    db.execute(
        "INSERT INTO complaints (doc_id, ticket, kelurahan, kiosk, about_kind, about_target, anonymous, class, unit,
             state, received_at_ms, allowed_days, due_at_ms, extended_days, lapor, answered_at_ms, closed_at_ms,
             flags, updated_at_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (doc_id) DO UPDATE SET ticket = excluded.ticket, kelurahan = excluded.kelurahan,
             kiosk = excluded.kiosk, about_kind = excluded.about_kind, about_target = excluded.about_target,
             anonymous = excluded.anonymous, class = excluded.class, unit = excluded.unit, state = excluded.state,
             received_at_ms = excluded.received_at_ms, allowed_days = excluded.allowed_days,
             due_at_ms = excluded.due_at_ms, extended_days = excluded.extended_days, lapor = excluded.lapor,
             answered_at_ms = excluded.answered_at_ms, closed_at_ms = excluded.closed_at_ms,
             flags = excluded.flags, updated_at_ms = excluded.updated_at_ms",
        args![
            doc_id.as_str(),
            view.ticket.as_str(),
            view.kelurahan.as_str(),
            view.kiosk.as_str(),
            view.about.kind().as_str(),
            about_target(&view.about),
            view.complainant.is_none(),
            derived.class.map(complaint::Class::as_str),
            derived.unit.as_ref().map(ToString::to_string),
            derived.state.as_str(),
            received,
            derived.allowed_days(),
            due,
            derived.extension_days,
            derived.lapor.first().cloned(),
            derived.first_answer_at_ms,
            derived.closed_at_ms,
            (!flags.is_empty()).then(|| flags.join(",")),
            updated,
        ],
    )?;
    Ok(())
}

/// Every complaint document's id, in id order.
pub fn complaint_ids(db: &mut dyn Sql) -> Result<Vec<String>, StoreError> {
    db.query("SELECT doc_id FROM docs WHERE doc_type = 'complaint' ORDER BY doc_id", args![])?
        .into_iter()
        .map(|r| r.get(0))
        .collect()
}

/// Reads and folds a complaint document.
pub fn read_complaint(doc: &automerge::AutoCommit) -> Result<(ComplaintView, Derived), String> {
    let view = complaint::read(doc).map_err(|e| e.to_string())?;
    let derived = complaint::fold(&view.steps).map_err(|e| e.to_string())?;
    Ok((view, derived))
}

/// Projects every complaint again from its document, inside the caller's
/// transaction (the migration that makes the table, `reproject`). One
/// that does not read back is logged and skipped. Returns how many were
/// projected.
pub fn reproject_all(db: &mut dyn Sql) -> Result<usize, StoreError> {
    let mut done = 0;
    for id in complaint_ids(db)? {
        let stored = match docs::load(db, &id) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(StoreError::Corrupt { reason, .. }) => {
                tracing::warn!(doc = %id, error = %reason, "unreadable complaint not projected");
                continue;
            }
            Err(e) => return Err(e),
        };
        match read_complaint(&stored.doc) {
            Ok((view, derived)) => {
                project_complaint(db, &view, &derived)?;
                done += 1;
            }
            Err(e) => tracing::warn!(doc = %id, error = %e, "unreadable complaint not projected"),
        }
    }
    Ok(done)
}

/// Computes every complaint's due time again from its row (after the
/// calendar changed: holidays, service hours). Returns how many moved.
pub fn refresh_due(db: &mut dyn Sql) -> Result<usize, StoreError> {
    let cals = Calendars::load(db)?;
    let rows: Vec<(String, String, i64, i64, i64)> = db
        .query("SELECT doc_id, kelurahan, received_at_ms, allowed_days, due_at_ms FROM complaints", args![])?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .collect::<Result<_, StoreError>>()?;
    let mut moved = 0;
    for (id, kelurahan, received, days, due) in rows {
        let days = u32::try_from(days).unwrap_or(0);
        let now = cals.of_kelurahan(&kelurahan).due_at(received, days);
        if now != due {
            db.execute("UPDATE complaints SET due_at_ms = ? WHERE doc_id = ?", args![now, id.as_str()])?;
            moved += 1;
        }
    }
    Ok(moved)
}

/// A row of the complaint list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRow {
    pub id: String,
    pub ticket: String,
    pub kelurahan: String,
    pub kiosk: String,
    pub about_kind: String,
    pub about_target: Option<String>,
    pub anonymous: bool,
    pub class: Option<String>,
    pub unit: Option<String>,
    pub state: String,
    pub received_at_ms: i64,
    pub due_at_ms: i64,
    pub extended_days: Option<i64>,
    pub lapor: Option<String>,
    pub answered_at_ms: Option<i64>,
    pub closed_at_ms: Option<i64>,
    pub flags: Option<String>,
}

impl ListRow {
    /// Unanswered (received or registered) past its due time at `now_ms`.
    pub fn overdue(&self, now_ms: i64) -> bool {
        matches!(self.state.as_str(), "received" | "registered") && now_ms > self.due_at_ms
    }
}

const LIST_COLUMNS: &str = "doc_id, ticket, kelurahan, kiosk, about_kind, about_target, anonymous, class, unit, \
     state, received_at_ms, due_at_ms, extended_days, lapor, answered_at_ms, closed_at_ms, flags";

fn list_row(r: Row) -> Result<ListRow, StoreError> {
    Ok(ListRow {
        id: r.get(0)?,
        ticket: r.get(1)?,
        kelurahan: r.get(2)?,
        kiosk: r.get(3)?,
        about_kind: r.get(4)?,
        about_target: r.get(5)?,
        anonymous: r.get::<i64>(6)? != 0,
        class: r.get(7)?,
        unit: r.get(8)?,
        state: r.get(9)?,
        received_at_ms: r.get(10)?,
        due_at_ms: r.get(11)?,
        extended_days: r.get(12)?,
        lapor: r.get(13)?,
        answered_at_ms: r.get(14)?,
        closed_at_ms: r.get(15)?,
        flags: r.get(16)?,
    })
}

/// The complaints a user may see (set by `ops` from the user's role).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// Only this kelurahan's.
    pub kelurahan: Option<String>,
    /// `agency:CODE`: only complaints routed to that agency.
    pub unit: Option<String>,
    /// Only those of these kecamatan (an agency unit's region).
    pub region: Vec<String>,
}

impl Scope {
    /// `AND …` for the scope, and its arguments.
    pub fn sql(&self) -> (String, Vec<super::sql::Value>) {
        let mut sql = String::new();
        let mut a: Vec<super::sql::Value> = Vec::new();
        for (column, value) in [("kelurahan", &self.kelurahan), ("unit", &self.unit)] {
            if let Some(v) = value {
                sql.push_str(&format!(" AND {column} = ?"));
                a.push(v.as_str().into());
            }
        }
        let (region, region_args) = super::reports::region_sql("", &self.region);
        sql.push_str(&region);
        a.extend(region_args);
        (sql, a)
    }
}

/// Which complaints a list shows: the user's scope (set by `ops`) and
/// the caller's filters.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub scope: Scope,
    pub kelurahan: Option<String>,
    pub state: Option<State>,
    /// `Some(true)`: only overdue ones; `Some(false)`: only the others.
    pub overdue: Option<bool>,
    /// `(received_at_ms, doc_id)` of the last row seen: rows after it.
    pub after: Option<(i64, String)>,
    pub limit: u32,
    pub now_ms: i64,
}

/// Complaints newest first, at most `limit + 1` (to tell whether there
/// is more).
pub fn list(db: &mut dyn Sql, f: &Filter) -> Result<Vec<ListRow>, StoreError> {
    let (scope_sql, mut a) = f.scope.sql();
    let mut sql = format!("SELECT {LIST_COLUMNS} FROM complaints WHERE 1 = 1{scope_sql}");
    if let Some(k) = &f.kelurahan {
        sql.push_str(" AND kelurahan = ?");
        a.push(k.as_str().into());
    }
    if let Some(s) = f.state {
        sql.push_str(" AND state = ?");
        a.push(s.as_str().into());
    }
    match f.overdue {
        Some(true) => {
            sql.push_str(" AND state IN ('received', 'registered') AND due_at_ms < ?");
            a.push(f.now_ms.into());
        }
        Some(false) => {
            sql.push_str(" AND NOT (state IN ('received', 'registered') AND due_at_ms < ?)");
            a.push(f.now_ms.into());
        }
        None => {}
    }
    if let Some((ms, id)) = &f.after {
        sql.push_str(" AND (received_at_ms < ? OR (received_at_ms = ? AND doc_id < ?))");
        a.push((*ms).into());
        a.push((*ms).into());
        a.push(id.as_str().into());
    }
    sql.push_str(" ORDER BY received_at_ms DESC, doc_id DESC LIMIT ?");
    a.push((i64::from(f.limit) + 1).into());
    db.query(&sql, &a)?.into_iter().map(list_row).collect()
}

/// One complaint's row, if projected.
pub fn row(db: &mut dyn Sql, doc_id: &str) -> Result<Option<ListRow>, StoreError> {
    db.query_opt(&format!("SELECT {LIST_COLUMNS} FROM complaints WHERE doc_id = ?"), args![doc_id])?
        .map(list_row)
        .transpose()
}

/// Per office: complaints received, open (not answered or closed) and
/// overdue, within the scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OfficeCounts {
    pub kelurahan: String,
    pub received: i64,
    pub open: i64,
    pub overdue: i64,
}

pub fn counts(db: &mut dyn Sql, scope: &Scope, now_ms: i64) -> Result<Vec<OfficeCounts>, StoreError> {
    let (scope_sql, scope_args) = scope.sql();
    let mut a: Vec<super::sql::Value> = vec![now_ms.into()];
    a.extend(scope_args);
    db.query(
        &format!(
            "SELECT kelurahan, count(*),
                 CAST(sum(CASE WHEN state IN ('received', 'registered') THEN 1 ELSE 0 END) AS BIGINT),
                 CAST(sum(CASE WHEN state IN ('received', 'registered') AND due_at_ms < ? THEN 1 ELSE 0 END) AS BIGINT)
             FROM complaints WHERE 1 = 1{scope_sql}
             GROUP BY kelurahan ORDER BY kelurahan"
        ),
        &a,
    )?
    .into_iter()
    .map(|r| Ok(OfficeCounts { kelurahan: r.get(0)?, received: r.get(1)?, open: r.get(2)?, overdue: r.get(3)? }))
    .collect()
}

/// One complaint as the figures (`ops::complaints::figures`) count it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FigureRow {
    pub kelurahan: String,
    pub about_kind: String,
    pub about_target: Option<String>,
    /// The service of the request the complaint is about (`about_kind =
    /// 'request'`, by ticket), when that request is known here.
    pub request_service: Option<String>,
    pub state: String,
    pub received_at_ms: i64,
    pub due_at_ms: i64,
    pub answered_at_ms: Option<i64>,
}

/// The most complaints one figures query reads (a year of a whole city is
/// far below it); past it the caller asks for a shorter period.
pub const FIGURE_ROWS_MAX: usize = 200_000;

/// The complaints received in `[from, to)` and those open now, within the
/// scope, oldest first: at most [`FIGURE_ROWS_MAX`] + 1 (to tell that
/// there are too many). A complaint about a request carries that
/// request's service, looked up by ticket (`requests_by_ticket`, schema
/// version 9); the scope is applied to the complaints alone, before that
/// lookup, so its columns never meet the requests'.
pub fn figure_rows(db: &mut dyn Sql, scope: &Scope, from: i64, to: i64) -> Result<Vec<FigureRow>, StoreError> {
    let (scope_sql, scope_args) = scope.sql();
    let mut a: Vec<super::sql::Value> = vec![from.into(), to.into()];
    a.extend(scope_args);
    a.push(i64::try_from(FIGURE_ROWS_MAX + 1).unwrap_or(i64::MAX).into());
    db.query(
        &format!(
            "SELECT c.kelurahan, c.about_kind, c.about_target,
                 CASE WHEN c.about_kind = 'request'
                      THEN (SELECT min(r.service) FROM requests r WHERE r.ticket = c.about_target) END,
                 c.state, c.received_at_ms, c.due_at_ms, c.answered_at_ms
             FROM (SELECT * FROM complaints
                   WHERE ((received_at_ms >= ? AND received_at_ms < ?) OR state IN ('received', 'registered'))
                   {scope_sql}) c
             ORDER BY c.received_at_ms, c.doc_id LIMIT ?"
        ),
        &a,
    )?
    .into_iter()
    .map(|r| {
        Ok(FigureRow {
            kelurahan: r.get(0)?,
            about_kind: r.get(1)?,
            about_target: r.get(2)?,
            request_service: r.get(3)?,
            state: r.get(4)?,
            received_at_ms: r.get(5)?,
            due_at_ms: r.get(6)?,
            answered_at_ms: r.get(7)?,
        })
    })
    .collect()
}
