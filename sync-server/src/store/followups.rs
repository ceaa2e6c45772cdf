//! Follow-up plans of the SKM report (rencana tindak lanjut, issue 14 item
//! 8): what an office (or the city) will do about an element of a
//! period's survey, who answers for it, by when, and how far it got. Rows
//! only; what is allowed, checked and audited is `ops::followups`.
//!
//! A plan belongs to one kelurahan, or to the whole city (`kelurahan`
//! NULL). A kelurahan's scope reads its own plans and the city's.

use super::StoreError;
use super::reports::Scope;
use super::sql::{Row, Sql, Value};
use crate::args;

/// Most plans one listing returns.
pub const LIST_MAX: u32 = 1_000;

/// A plan as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowupRow {
    pub id: i64,
    /// `None`: city-wide.
    pub kelurahan: Option<String>,
    /// The period code (`2026-Q3`) and its months (`yyyymm`, inclusive).
    pub period: String,
    pub month_from: i64,
    pub month_to: i64,
    /// `U1` … `U9`.
    pub element: String,
    pub action: String,
    pub responsible: String,
    /// `YYYY-MM-DD`.
    pub target_day: String,
    /// `direncanakan`, `berjalan` or `selesai`.
    pub status: String,
    pub progress_note: Option<String>,
    pub created_by: String,
    pub created_ms: i64,
    pub updated_by: String,
    pub updated_ms: i64,
}

const COLUMNS: &str = "id, kelurahan, period, month_from, month_to, element, action, responsible, target_day, status,
                       progress_note, created_by, created_ms, updated_by, updated_ms";

fn row(r: &Row) -> Result<FollowupRow, StoreError> {
    Ok(FollowupRow {
        id: r.get(0)?,
        kelurahan: r.get(1)?,
        period: r.get(2)?,
        month_from: r.get(3)?,
        month_to: r.get(4)?,
        element: r.get(5)?,
        action: r.get(6)?,
        responsible: r.get(7)?,
        target_day: r.get(8)?,
        status: r.get(9)?,
        progress_note: r.get(10)?,
        created_by: r.get(11)?,
        created_ms: r.get(12)?,
        updated_by: r.get(13)?,
        updated_ms: r.get(14)?,
    })
}

/// Plans within scope whose period overlaps `months` (all periods when
/// `None`), newest period first, then by element, the city's before the
/// offices'. An agency's scope has none.
pub fn list(db: &mut dyn Sql, scope: &Scope, months: Option<(i64, i64)>) -> Result<Vec<FollowupRow>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM skm_followups WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    match scope {
        Scope::All => {}
        Scope::Kelurahan(k) => {
            sql.push_str(" AND (kelurahan = ? OR kelurahan IS NULL)");
            args.push(k.into());
        }
        Scope::Agency { .. } => return Ok(Vec::new()),
    }
    if let Some((from, to)) = months {
        sql.push_str(" AND month_from <= ? AND month_to >= ?");
        args.extend([Value::from(to), Value::from(from)]);
    }
    sql.push_str(&format!(" ORDER BY month_from DESC, element, kelurahan IS NOT NULL, kelurahan, id LIMIT {LIST_MAX}"));
    db.query(&sql, &args)?.iter().map(row).collect()
}

pub fn get(db: &mut dyn Sql, id: i64) -> Result<Option<FollowupRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM skm_followups WHERE id = ?");
    db.query_opt(&sql, args![id])?.as_ref().map(row).transpose()
}

/// A new plan, already checked by the caller.
#[derive(Debug, Clone)]
pub struct NewFollowup<'a> {
    pub kelurahan: Option<&'a str>,
    pub period: &'a str,
    pub months: (i64, i64),
    pub element: &'a str,
    pub action: &'a str,
    pub responsible: &'a str,
    pub target_day: &'a str,
    pub status: &'a str,
    pub progress_note: Option<&'a str>,
}

/// Inserts a plan; its id.
pub fn insert(db: &mut dyn Sql, p: &NewFollowup<'_>, by: &str, now_ms: i64) -> Result<i64, StoreError> {
    let r = db
        .query_opt(
            "INSERT INTO skm_followups (kelurahan, period, month_from, month_to, element, action, responsible,
                                        target_day, status, progress_note, created_by, created_ms, updated_by,
                                        updated_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            args![
                p.kelurahan,
                p.period,
                p.months.0,
                p.months.1,
                p.element,
                p.action,
                p.responsible,
                p.target_day,
                p.status,
                p.progress_note,
                by,
                now_ms,
                by,
                now_ms
            ],
        )?
        .ok_or_else(|| StoreError::Invalid("an insert returned no id".into()))?;
    r.get(0)
}

/// What an update may change: the office, period and element stay.
#[derive(Debug, Clone)]
pub struct FollowupChange<'a> {
    pub action: &'a str,
    pub responsible: &'a str,
    pub target_day: &'a str,
    pub status: &'a str,
    pub progress_note: Option<&'a str>,
}

/// Changes a plan; `false` if there is no such plan.
pub fn update(db: &mut dyn Sql, id: i64, c: &FollowupChange<'_>, by: &str, now_ms: i64) -> Result<bool, StoreError> {
    let n = db.execute(
        "UPDATE skm_followups SET action = ?, responsible = ?, target_day = ?, status = ?, progress_note = ?,
                                  updated_by = ?, updated_ms = ?
         WHERE id = ?",
        args![c.action, c.responsible, c.target_day, c.status, c.progress_note, by, now_ms, id],
    )?;
    Ok(n > 0)
}
