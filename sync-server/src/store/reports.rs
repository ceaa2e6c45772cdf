//! The queries behind the central pages and the admin API, over the
//! projections and rollups (`projection.rs`), in SQL both engines run the
//! same way. What the figures mean (IKM, SLA shares, percentiles) is
//! `ops::reports`; this module only reads rows.
//!
//! Every query is limited to a [`Scope`]: an admin's or a city-wide
//! supervisor's (everything), a kelurahan supervisor's (one kelurahan), an
//! agency's (requests ever handed to it).

use std::collections::BTreeMap;

use super::StoreError;
use super::sql::{Dialect, Row, Sql, Value, scalar};
use crate::args;

/// What a reader may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    All,
    Kelurahan(String),
    /// Requests handed to this agency at some point; for a unit of an
    /// agency that works per kecamatan, only those of its kecamatan.
    Agency {
        agency: String,
        region: Vec<String>,
    },
}

/// `AND` a kelurahan column (`{alias}kelurahan`) lies in one of `region`'s
/// kecamatan (`12.71.01` is the first 8 characters of `12.71.01.1001`);
/// nothing for an empty region.
pub fn region_sql(alias: &str, region: &[String]) -> (String, Vec<Value>) {
    if region.is_empty() {
        return (String::new(), vec![]);
    }
    let marks = vec!["?"; region.len()].join(", ");
    (
        format!(" AND substr({alias}kelurahan, 1, 8) IN ({marks})"),
        region.iter().map(|r| Value::from(r.as_str())).collect(),
    )
}

impl Scope {
    /// `AND …` limiting `requests` (aliased `alias`, e.g. `q.`), and its
    /// arguments. The rollups (`monthly`, `daily_filed`) are per kelurahan
    /// and have no `doc_id`: an agency's scope never reads them
    /// (`ops::reports::rollups_serve`).
    fn sql(&self, alias: &str) -> (String, Vec<Value>) {
        match self {
            Scope::All => (String::new(), vec![]),
            Scope::Kelurahan(k) => (format!(" AND {alias}kelurahan = ?"), vec![Value::from(k.as_str())]),
            Scope::Agency { agency, region } => {
                let (region_sql, region_args) = region_sql(alias, region);
                (
                    format!(" AND {alias}doc_id IN (SELECT doc_id FROM request_handoffs WHERE agency = ?){region_sql}"),
                    with(vec![Value::from(agency.as_str())], region_args),
                )
            }
        }
    }

    /// Whether the scope is the whole city.
    pub fn is_all(&self) -> bool {
        *self == Scope::All
    }
}

fn with(mut args: Vec<Value>, more: Vec<Value>) -> Vec<Value> {
    args.extend(more);
    args
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// The SQLite index hint, which PostgreSQL neither needs nor accepts.
fn indexed_by(db: &dyn Sql, index: &str) -> String {
    match db.dialect() {
        Dialect::Sqlite => format!("INDEXED BY {index}"),
        Dialect::Postgres => String::new(),
    }
}

/// The local calendar month (`YYYY-MM`) of a millisecond column.
fn month_expr(db: &dyn Sql, column: &str, offset_secs: i32) -> String {
    match db.dialect() {
        Dialect::Sqlite => format!("strftime('%Y-%m', {column} / 1000, 'unixepoch', '{offset_secs} seconds')"),
        Dialect::Postgres => {
            format!("to_char(to_timestamp(({column} + {offset_secs} * 1000) / 1000.0) AT TIME ZONE 'UTC', 'YYYY-MM')")
        }
    }
}

// ------------------------------------------------------------------ request lists

/// Which requests a list shows (all optional).
#[derive(Debug, Default, Clone)]
pub struct RequestFilter {
    pub kelurahan: Option<String>,
    pub status: Option<String>,
    pub service: Option<String>,
    /// Only requests in conflict (the review queue).
    pub conflict: bool,
    /// Only requests this agency holds now (handed to it or taken by it).
    pub with_agency: Option<String>,
    /// `(created_at_ms, doc_id)` of the last item seen.
    pub after: Option<(i64, String)>,
    pub limit: u32,
}

/// A list row: `(doc_id, ticket, kelurahan, kiosk, service, status,
/// created, updated, conflict)`.
pub type ListRow = (String, String, String, String, String, String, i64, i64, bool);

/// Requests newest first, within scope; one more than `limit` if there are more.
pub fn requests(db: &mut dyn Sql, scope: &Scope, f: &RequestFilter) -> Result<Vec<ListRow>, StoreError> {
    let mut sql = String::from(
        "SELECT doc_id, ticket, kelurahan, kiosk, service, status, created_at_ms, updated_at_ms, conflict
         FROM requests WHERE 1 = 1",
    );
    let mut args: Vec<Value> = Vec::new();
    if let Some(k) = &f.kelurahan {
        sql.push_str(" AND kelurahan = ?");
        args.push(k.into());
    }
    if let Some(s) = &f.status {
        sql.push_str(" AND status = ?");
        args.push(s.into());
    }
    if let Some(s) = &f.service {
        sql.push_str(" AND service = ?");
        args.push(s.into());
    }
    if f.conflict {
        sql.push_str(" AND conflict = 1");
    }
    if let Some(a) = &f.with_agency {
        // Handed to it and not yet taken, or taken by it (the projection's
        // agency is set only while an agency holds the request).
        sql.push_str(" AND status IN ('handed_off', 'in_progress') AND agency = ?");
        args.push(a.into());
    }
    if let Some((ms, id)) = &f.after {
        sql.push_str(" AND (created_at_ms < ? OR (created_at_ms = ? AND doc_id < ?))");
        args.extend([Value::from(*ms), Value::from(*ms), Value::from(id)]);
    }
    let (scope_sql, scope_args) = scope.sql("");
    sql.push_str(&scope_sql);
    args.extend(scope_args);
    let limit = f.limit.clamp(1, 1000);
    sql.push_str(&format!(" ORDER BY created_at_ms DESC, doc_id DESC LIMIT {}", limit + 1));
    db.query(&sql, &args)?
        .into_iter()
        .map(|r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?))
        })
        .collect()
}

/// Whether a request exists on the server (tests and tools).
pub fn request_exists(db: &mut dyn Sql, id: &str) -> Result<bool, StoreError> {
    Ok(scalar::<i64>(db, "SELECT 1 FROM requests WHERE doc_id = ?", args![id])?.is_some())
}

// ------------------------------------------------------------------ IKM

/// How IKM and overview figures are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Kelurahan,
    Kecamatan,
    Service,
    /// Local calendar month of the rating, `YYYY-MM` (for trends).
    Month,
}

/// Rating sums of a group: `(respondents, [sum of U1..U9])`.
pub type RatingSums = (u64, [u64; 9]);

fn sums(r: &Row, from: usize) -> Result<[u64; 9], StoreError> {
    let mut out = [0u64; 9];
    for (i, s) in out.iter_mut().enumerate() {
        *s = count(r.get::<Option<i64>>(from + i)?.unwrap_or(0));
    }
    Ok(out)
}

/// Rating sums per group, and requests filed per group.
pub type IkmSums = (BTreeMap<String, RatingSums>, BTreeMap<String, u64>);

/// Per group, the first ratings given in `[from, to)` and the requests
/// filed in it (service users), from the projections.
pub fn ikm_sums(
    db: &mut dyn Sql,
    scope: &Scope,
    from: i64,
    to: i64,
    key: GroupBy,
    offset_secs: i32,
) -> Result<IkmSums, StoreError> {
    let (q_key, r_key) = match key {
        GroupBy::Kelurahan => ("q.kelurahan".to_owned(), "kelurahan".to_owned()),
        GroupBy::Kecamatan => ("substr(q.kelurahan, 1, 8)".to_owned(), "substr(kelurahan, 1, 8)".to_owned()),
        GroupBy::Service => ("q.service".to_owned(), "service".to_owned()),
        GroupBy::Month => (month_expr(db, "r.at_ms", offset_secs), month_expr(db, "created_at_ms", offset_secs)),
    };
    let (scope_q, scope_args) = scope.sql("q.");
    let (scope_plain, _) = scope.sql("");
    let sql = format!(
        "SELECT {q_key}, count(*), CAST(sum(r.u1) AS BIGINT), CAST(sum(r.u2) AS BIGINT), CAST(sum(r.u3) AS BIGINT),
                CAST(sum(r.u4) AS BIGINT), CAST(sum(r.u5) AS BIGINT), CAST(sum(r.u6) AS BIGINT),
                CAST(sum(r.u7) AS BIGINT), CAST(sum(r.u8) AS BIGINT), CAST(sum(r.u9) AS BIGINT)
         FROM ratings r JOIN requests q ON q.doc_id = r.doc_id
         WHERE r.at_ms >= ? AND r.at_ms < ?
           AND r.rating_id = (SELECT min(rating_id) FROM ratings r2 WHERE r2.doc_id = r.doc_id)
           {scope_q}
         GROUP BY 1"
    );
    let mut tallies = BTreeMap::new();
    for r in db.query(&sql, &with(vec![from.into(), to.into()], scope_args.clone()))? {
        tallies.insert(r.get(0)?, (count(r.get(1)?), sums(&r, 2)?));
    }
    let sql = format!(
        "SELECT {r_key}, count(*) FROM requests WHERE created_at_ms >= ? AND created_at_ms < ? {scope_plain} GROUP BY 1"
    );
    let mut users = BTreeMap::new();
    for r in db.query(&sql, &with(vec![from.into(), to.into()], scope_args))? {
        users.insert(r.get(0)?, count(r.get(1)?));
    }
    Ok((tallies, users))
}

/// The latest comments with ratings given in `[from, to)`, within scope:
/// `(at_ms, kelurahan, comment)`.
pub fn ikm_comments(
    db: &mut dyn Sql,
    scope: &Scope,
    from: i64,
    to: i64,
    limit: u32,
) -> Result<Vec<(i64, String, String)>, StoreError> {
    let (scope_q, scope_args) = scope.sql("q.");
    let sql = format!(
        "SELECT r.at_ms, q.kelurahan, r.comment FROM ratings r JOIN requests q ON q.doc_id = r.doc_id
         WHERE r.at_ms >= ? AND r.at_ms < ? AND r.comment IS NOT NULL AND r.comment != '' {scope_q}
         ORDER BY r.at_ms DESC LIMIT {limit}"
    );
    db.query(&sql, &with(vec![from.into(), to.into()], scope_args))?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .collect()
}

/// Per group from the monthly rollup (months `yyyymm`, inclusive):
/// `(key, filed, respondents, sums)`; groups with neither left out.
pub fn ikm_rollup(
    db: &mut dyn Sql,
    scope: &Scope,
    months: (i64, i64),
    key: GroupBy,
) -> Result<Vec<(String, u64, RatingSums)>, StoreError> {
    let column = match key {
        GroupBy::Kelurahan => "kelurahan",
        GroupBy::Kecamatan => "substr(kelurahan, 1, 8)",
        GroupBy::Service => "service",
        GroupBy::Month => "month",
    };
    let (scope_sql, scope_args) = scope.sql("");
    let sql = format!(
        "SELECT {column}, CAST(sum(filed) AS BIGINT), CAST(sum(respondents) AS BIGINT),
                CAST(sum(u1) AS BIGINT), CAST(sum(u2) AS BIGINT), CAST(sum(u3) AS BIGINT), CAST(sum(u4) AS BIGINT),
                CAST(sum(u5) AS BIGINT), CAST(sum(u6) AS BIGINT), CAST(sum(u7) AS BIGINT), CAST(sum(u8) AS BIGINT),
                CAST(sum(u9) AS BIGINT)
         FROM monthly WHERE month >= ? AND month <= ? {scope_sql} GROUP BY 1
         HAVING sum(filed) > 0 OR sum(respondents) > 0"
    );
    db.query(&sql, &with(vec![months.0.into(), months.1.into()], scope_args))?
        .into_iter()
        .map(|r| {
            let key = match key {
                GroupBy::Month => {
                    let m: i64 = r.get(0)?;
                    format!("{:04}-{:02}", m / 100, m % 100)
                }
                _ => r.get(0)?,
            };
            Ok((key, count(r.get(1)?), (count(r.get(2)?), sums(&r, 3)?)))
        })
        .collect()
}

/// Answers to the respondent profile per question and code from the
/// `skm_profile` rollup (months `yyyymm`, inclusive), within scope:
/// `(question key, code, respondents who answered it)`. Never per request.
pub fn profile_rollup(
    db: &mut dyn Sql,
    scope: &Scope,
    months: (i64, i64),
) -> Result<Vec<(String, String, u64)>, StoreError> {
    let (scope_sql, scope_args) = scope.sql("");
    let sql = format!(
        "SELECT dimension, code, CAST(sum(n) AS BIGINT) FROM skm_profile
         WHERE month >= ? AND month <= ? {scope_sql} GROUP BY dimension, code"
    );
    db.query(&sql, &with(vec![months.0.into(), months.1.into()], scope_args))?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, count(r.get(2)?))))
        .collect()
}

/// A whole profile as stored (`[age, sex, education, occupation]`, codes
/// or NULL) and how many first ratings carry it.
pub type ProfileRow = ([Option<String>; 4], u64);

/// The first ratings given in `[from, to)` within scope, grouped by their
/// whole profile (the scopes the rollup cannot serve): `([age, sex,
/// education, occupation], respondents)`. Only the profile columns are
/// read; nothing of the request but its scope.
pub fn profile_rows(db: &mut dyn Sql, scope: &Scope, from: i64, to: i64) -> Result<Vec<ProfileRow>, StoreError> {
    let (scope_q, scope_args) = scope.sql("q.");
    let sql = format!(
        "SELECT r.age_band, r.sex, r.education, r.occupation, count(*)
         FROM ratings r JOIN requests q ON q.doc_id = r.doc_id
         WHERE r.at_ms >= ? AND r.at_ms < ?
           AND r.rating_id = (SELECT min(rating_id) FROM ratings r2 WHERE r2.doc_id = r.doc_id)
           {scope_q}
         GROUP BY r.age_band, r.sex, r.education, r.occupation"
    );
    db.query(&sql, &with(vec![from.into(), to.into()], scope_args))?
        .into_iter()
        .map(|r| Ok(([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?], count(r.get(4)?))))
        .collect()
}

// ------------------------------------------------------------------ overview

/// One group's service counts: `(key, filed, finished, within_sla, open, conflicts)`.
/// `(group, filed, finished, within the kelurahan's SLA, open now, in
/// conflict now, rejected (of the finished), cancelled)`.
pub type OverviewCounts = (String, u64, u64, u64, u64, u64, u64, u64);

/// Service counts per kelurahan or kecamatan for `[from, to)` from the
/// projections, within scope. `sla_ms` is each service's SLA in working
/// milliseconds.
pub fn overview(
    db: &mut dyn Sql,
    scope: &Scope,
    from: i64,
    to: i64,
    by_kecamatan: bool,
    sla_ms: &[(String, i64)],
) -> Result<Vec<OverviewCounts>, StoreError> {
    let column = if by_kecamatan { "substr(kelurahan, 1, 8)" } else { "kelurahan" };
    // SLA in working milliseconds per service, as a CASE the query applies.
    let (case, case_args): (String, Vec<Value>) = if sla_ms.is_empty() {
        // No catalog yet: nothing can be within an SLA.
        ("-1".into(), vec![])
    } else {
        let mut case = String::from("CASE service");
        let mut args = Vec::new();
        for (code, ms) in sla_ms {
            case.push_str(" WHEN ? THEN CAST(? AS BIGINT)");
            args.push(code.into());
            args.push((*ms).into());
        }
        case.push_str(" ELSE -1 END");
        (case, args)
    };
    let (scope_sql, scope_args) = scope.sql("");
    let sql = format!(
        "SELECT {column},
                CAST(sum(CASE WHEN created_at_ms >= ? AND created_at_ms < ? THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN finished_at_ms >= ? AND finished_at_ms < ? THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN finished_at_ms >= ? AND finished_at_ms < ? AND working_ms <= ({case})
                         THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN finished_at_ms IS NULL AND cancelled_at_ms IS NULL THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(conflict) AS BIGINT),
                CAST(sum(CASE WHEN finished_at_ms >= ? AND finished_at_ms < ? AND status = 'rejected'
                         THEN 1 ELSE 0 END) AS BIGINT),
                CAST(sum(CASE WHEN cancelled_at_ms >= ? AND cancelled_at_ms < ? THEN 1 ELSE 0 END) AS BIGINT)
         FROM requests WHERE 1 = 1 {scope_sql} GROUP BY 1"
    );
    let mut args: Vec<Value> = vec![from.into(), to.into(), from.into(), to.into(), from.into(), to.into()];
    args.extend(case_args);
    args.extend([from.into(), to.into(), from.into(), to.into()]);
    args.extend(scope_args);
    db.query(&sql, &args)?
        .into_iter()
        .map(|r| {
            let n = |i: usize| -> Result<u64, StoreError> { Ok(count(r.get::<Option<i64>>(i)?.unwrap_or(0))) };
            Ok((r.get(0)?, n(1)?, n(2)?, n(3)?, n(4)?, n(5)?, n(6)?, n(7)?))
        })
        .collect()
}

/// The overview from the monthly rollup (months `yyyymm`, inclusive) plus
/// the current open and conflict counts from the projections' partial
/// indexes.
pub fn overview_rollup(
    db: &mut dyn Sql,
    scope: &Scope,
    months: (i64, i64),
    by_kecamatan: bool,
) -> Result<Vec<OverviewCounts>, StoreError> {
    let column = if by_kecamatan { "substr(kelurahan, 1, 8)" } else { "kelurahan" };
    let (scope_sql, scope_args) = scope.sql("");
    let mut groups: BTreeMap<String, OverviewCounts> = BTreeMap::new();
    let sql = format!(
        "SELECT {column}, CAST(sum(filed) AS BIGINT), CAST(sum(finished) AS BIGINT), CAST(sum(within_sla) AS BIGINT),
                CAST(sum(rejected) AS BIGINT), CAST(sum(cancelled) AS BIGINT)
         FROM monthly WHERE month >= ? AND month <= ? {scope_sql} GROUP BY 1"
    );
    for r in db.query(&sql, &with(vec![months.0.into(), months.1.into()], scope_args.clone()))? {
        let key: String = r.get(0)?;
        let g = groups.entry(key.clone()).or_insert_with(|| (key, 0, 0, 0, 0, 0, 0, 0));
        g.1 = count(r.get(1)?);
        g.2 = count(r.get(2)?);
        g.3 = count(r.get(3)?);
        g.6 = count(r.get(4)?);
        g.7 = count(r.get(5)?);
    }
    for (filter, open) in [("finished_at_ms IS NULL AND cancelled_at_ms IS NULL", true), ("conflict = 1", false)] {
        let sql = format!("SELECT {column}, count(*) FROM requests WHERE {filter} {scope_sql} GROUP BY 1");
        for r in db.query(&sql, &scope_args)? {
            let key: String = r.get(0)?;
            let n = count(r.get(1)?);
            let g = groups.entry(key.clone()).or_insert_with(|| (key, 0, 0, 0, 0, 0, 0, 0));
            if open {
                g.4 = n;
            } else {
                g.5 = n;
            }
        }
    }
    Ok(groups.into_values().collect())
}

/// Each agency's part of the requests finished in months `[first, last]`,
/// within scope (by kelurahan): `(agency, finished, judged against an
/// SLA, within it, working ms summed)`.
pub type AgencyCounts = (String, u64, u64, u64, i64);

pub fn agency_overview(db: &mut dyn Sql, scope: &Scope, months: (i64, i64)) -> Result<Vec<AgencyCounts>, StoreError> {
    let (scope_sql, scope_args) = match scope {
        Scope::All => (String::new(), vec![]),
        Scope::Kelurahan(k) => (" AND kelurahan = ?".to_owned(), vec![Value::from(k.as_str())]),
        // An agency sees its own part (a unit, its region's).
        Scope::Agency { agency, region } => {
            let (region_sql, region_args) = region_sql("", region);
            (format!(" AND agency = ?{region_sql}"), with(vec![Value::from(agency.as_str())], region_args))
        }
    };
    let sql = format!(
        "SELECT agency, CAST(sum(finished) AS BIGINT), CAST(sum(judged) AS BIGINT), CAST(sum(within_sla) AS BIGINT),
                CAST(sum(working_ms) AS BIGINT)
         FROM agency_monthly WHERE month >= ? AND month <= ? {scope_sql} GROUP BY agency HAVING sum(finished) > 0
         ORDER BY agency"
    );
    db.query(&sql, &with(vec![months.0.into(), months.1.into()], scope_args))?
        .into_iter()
        .map(|r| Ok((r.get(0)?, count(r.get(1)?), count(r.get(2)?), count(r.get(3)?), r.get(4)?)))
        .collect()
}

/// Requests filed per local day in `[from, to)`, within scope, from the
/// projections: `(days since the epoch, count)`.
pub fn filed_per_day(
    db: &mut dyn Sql,
    scope: &Scope,
    from: i64,
    to: i64,
    offset_ms: i64,
) -> Result<Vec<(i64, u64)>, StoreError> {
    let (scope_sql, scope_args) = scope.sql("");
    let sql = format!(
        "SELECT (created_at_ms + {offset_ms}) / 86400000, count(*) FROM requests
         WHERE created_at_ms >= ? AND created_at_ms < ? {scope_sql} GROUP BY 1 ORDER BY 1"
    );
    db.query(&sql, &with(vec![from.into(), to.into()], scope_args))?
        .into_iter()
        .map(|r| Ok((r.get(0)?, count(r.get(1)?))))
        .collect()
}

/// Requests filed per local day (days since the epoch, inclusive range),
/// from the daily rollup.
pub fn filed_per_day_rollup(db: &mut dyn Sql, scope: &Scope, days: (i64, i64)) -> Result<Vec<(i64, u64)>, StoreError> {
    let (scope_sql, scope_args) = scope.sql("");
    let sql = format!(
        "SELECT day, CAST(sum(filed) AS BIGINT) FROM daily_filed WHERE day >= ? AND day <= ? {scope_sql}
         GROUP BY 1 ORDER BY 1"
    );
    db.query(&sql, &with(vec![days.0.into(), days.1.into()], scope_args))?
        .into_iter()
        .map(|r| Ok((r.get(0)?, count(r.get(1)?))))
        .collect()
}

// ------------------------------------------------------------------ where time is lost

/// The rows of the histogram rollups that hold months `[first, last]`
/// (`YYYYMM`): a whole year's row (`YYYY00`), whole quarters' rows
/// (`YYYY91`..`YYYY94`) or the months themselves
/// ([`super::projection::period_levels`]). As arguments for
/// [`PERIOD_ROWS`]: the range of the `month` column and of its level
/// (`month % 100`: 1-12 months, 91-94 quarters, 0 the year).
pub fn period_rows((first, last): (i64, i64)) -> [Value; 4] {
    let (year, a, b) = (first.div_euclid(100), first.rem_euclid(100), last.rem_euclid(100));
    let same_year = last.div_euclid(100) == year;
    let (lo, hi, level) = if same_year && a == 1 && b == 12 {
        (year * 100, year * 100, (0, 0))
    } else if same_year && a < b && (a - 1) % 3 == 0 && b % 3 == 0 {
        (year * 100 + 90 + (a - 1) / 3 + 1, year * 100 + 90 + b / 3, (91, 94))
    } else {
        (first, last, (1, 12))
    };
    [lo.into(), hi.into(), level.0.into(), level.1.into()]
}

/// The condition [`period_rows`] fills.
const PERIOD_ROWS: &str = "month >= ? AND month <= ? AND month % 100 >= ? AND month % 100 <= ?";

/// `(service, status, agency or "", bucket, how many)`.
pub type StepCount = (String, String, String, i64, u64);

/// Step-time histogram rows for months `[first, last]`:
/// `(service, status, agency or "", bucket, how many)`.
pub fn step_histogram(db: &mut dyn Sql, months: (i64, i64)) -> Result<Vec<StepCount>, StoreError> {
    db.query(
        &format!(
            "SELECT service, status, agency, bucket, CAST(sum(n) AS BIGINT) FROM step_hist
             WHERE {PERIOD_ROWS} AND n > 0 GROUP BY service, status, agency, bucket"
        ),
        &period_rows(months),
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, count(r.get(4)?))))
    .collect()
}

/// Whole journeys' working time for months `[first, last]`, per
/// kelurahan: `(kelurahan, bucket, how many)` (`journey_hist`).
pub fn journey_histogram(db: &mut dyn Sql, months: (i64, i64)) -> Result<Vec<(String, i64, u64)>, StoreError> {
    db.query(
        &format!(
            "SELECT kelurahan, bucket, CAST(sum(n) AS BIGINT) FROM journey_hist
             WHERE {PERIOD_ROWS} AND n > 0 GROUP BY kelurahan, bucket"
        ),
        &period_rows(months),
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?, count(r.get(2)?))))
    .collect()
}

/// How many requests finished in months `[first, last]` later than their
/// service's SLA (`monthly`, the SLA as projected).
pub fn breach_count(db: &mut dyn Sql, months: (i64, i64)) -> Result<u64, StoreError> {
    let n: Option<i64> = scalar(
        db,
        "SELECT CAST(coalesce(sum(m.finished - m.within_sla), 0) AS BIGINT) FROM monthly m
         JOIN service_sla s ON s.code = m.service WHERE m.month >= ? AND m.month <= ?",
        args![months.0, months.1],
    )?;
    Ok(count(n.unwrap_or(0)))
}

/// The `limit` largest SLA overruns among requests finished in `[from,
/// to)`, `(overrun ms, doc_id)`, largest first (ties by id): the top of
/// each service read off `requests_service_working` from its longest
/// journey down, so a year costs what a month does.
pub fn worst_breaches(
    db: &mut dyn Sql,
    sla: &std::collections::HashMap<String, i64>,
    (from, to): (i64, i64),
    limit: usize,
) -> Result<Vec<(i64, String)>, StoreError> {
    let sql = format!(
        "SELECT working_ms, doc_id FROM requests {}
         WHERE service = ? AND finished_at_ms IS NOT NULL AND working_ms > ?
           AND finished_at_ms >= ? AND finished_at_ms < ?
         ORDER BY working_ms DESC, doc_id LIMIT ?",
        indexed_by(db, "requests_service_working")
    );
    let mut all = Vec::new();
    for (service, &sla_ms) in sla {
        for r in db.query(&sql, args![service.as_str(), sla_ms, from, to, i64::try_from(limit).unwrap_or(i64::MAX)])? {
            all.push((r.get::<i64>(0)? - sla_ms, r.get::<String>(1)?));
        }
    }
    all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    all.truncate(limit);
    Ok(all)
}

/// Every service's SLA in milliseconds (`service_sla`).
pub fn service_sla_ms(db: &mut dyn Sql) -> Result<std::collections::HashMap<String, i64>, StoreError> {
    db.query("SELECT code, sla_days FROM service_sla", args![])?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get::<i64>(1)? * 86_400_000)))
        .collect()
}

/// A finished request's `(ticket, kelurahan, service, working_ms)`.
pub fn request_summary(db: &mut dyn Sql, doc_id: &str) -> Result<Option<(String, String, String, i64)>, StoreError> {
    db.query_opt(
        "SELECT ticket, kelurahan, service, coalesce(working_ms, 0) FROM requests WHERE doc_id = ?",
        args![doc_id],
    )?
    .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
    .transpose()
}

/// The longest step of a finished request, `(status, agency or "", ms)`:
/// the last of the longest in the journey's order.
pub fn longest_step(db: &mut dyn Sql, doc_id: &str) -> Result<Option<(String, String, i64)>, StoreError> {
    let blob: Option<Vec<u8>> =
        scalar::<Option<Vec<u8>>>(db, "SELECT steps FROM requests WHERE doc_id = ?", args![doc_id])?.flatten();
    let steps = super::projection::unpack_steps(doc_id, blob.as_deref())?;
    // The last of the longest: `max_by_key` keeps the last of equals.
    Ok(steps.into_iter().max_by_key(|s| s.5).map(|(_, _, status, agency, _, ms)| (status, agency, ms)))
}

/// A finished request's service time by party, as projected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceTimes {
    pub finished_at_ms: Option<i64>,
    pub cancelled_at_ms: Option<i64>,
    pub complete_at_ms: Option<i64>,
    /// The kelurahan's working time (its SLA's measure).
    pub kelurahan_ms: Option<i64>,
    pub citizen_ms: Option<i64>,
    /// `(agency, working ms, its SLA in days)`.
    pub agencies: Vec<(String, i64, Option<i64>)>,
}

pub fn service_times(db: &mut dyn Sql, doc_id: &str) -> Result<Option<ServiceTimes>, StoreError> {
    let Some(r) = db.query_opt(
        "SELECT finished_at_ms, cancelled_at_ms, complete_at_ms, working_ms, citizen_ms FROM requests WHERE doc_id = ?",
        args![doc_id],
    )?
    else {
        return Ok(None);
    };
    let agencies = db
        .query(
            "SELECT agency, working_ms, sla_days FROM request_agency WHERE doc_id = ? ORDER BY agency",
            args![doc_id],
        )?
        .into_iter()
        .map(|a| Ok((a.get(0)?, a.get(1)?, a.get(2)?)))
        .collect::<Result<_, StoreError>>()?;
    Ok(Some(ServiceTimes {
        finished_at_ms: r.get(0)?,
        cancelled_at_ms: r.get(1)?,
        complete_at_ms: r.get(2)?,
        kelurahan_ms: r.get(3)?,
        citizen_ms: r.get(4)?,
        agencies,
    }))
}

/// A row of [`journey_rows`]: the request (`doc_id, ticket, kelurahan,
/// service, created, finished, working`) and one of its events (`at,
/// to_status, agency`).
pub type JourneyRow = (String, String, String, String, i64, Option<i64>, Option<i64>, i64, String, Option<String>);

/// Hands `each` the requests finished in `[from, to)` within scope, in
/// finish order, each one's events right after it in causal order,
/// streamed.
pub fn journey_rows(
    db: &mut dyn Sql,
    scope: &Scope,
    from: i64,
    to: i64,
    each: &mut dyn FnMut(JourneyRow),
) -> Result<(), StoreError> {
    let (scope_q, scope_args) = scope.sql("q.");
    let sql = format!(
        "SELECT q.doc_id, q.ticket, q.kelurahan, q.service, q.created_at_ms, q.finished_at_ms, q.working_ms, q.journey
         FROM requests q {}
         WHERE q.finished_at_ms >= ? AND q.finished_at_ms < ? {scope_q}
         ORDER BY q.finished_at_ms, q.doc_id",
        indexed_by(db, "requests_finished_cover")
    );
    db.query_each(&sql, &with(vec![from.into(), to.into()], scope_args), &mut |r| {
        let doc: String = r.get(0)?;
        let head: (String, String, String, i64, Option<i64>, Option<i64>) =
            (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
        for (at, _, _, to, agency) in super::projection::unpack_journey(&doc, r.get::<Option<Vec<u8>>>(7)?.as_deref())?
        {
            let (ticket, kelurahan, service, created, finished, working) = head.clone();
            each((doc.clone(), ticket, kelurahan, service, created, finished, working, at, to, agency));
        }
        Ok(())
    })
}

// ------------------------------------------------------------------ staff

/// Roster documents: `(doc_id, kelurahan)` by kelurahan.
pub fn rosters(db: &mut dyn Sql) -> Result<Vec<(String, String)>, StoreError> {
    db.query(
        "SELECT doc_id, kelurahan FROM docs WHERE doc_type = 'roster' AND doc_type != 'request' ORDER BY kelurahan",
        args![],
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get::<Option<String>>(1)?.unwrap_or_default())))
    .collect()
}

/// A row of `request_staff`: `(nip, kelurahan, finished, working_ms,
/// within_sla, u6, u7)`; the kelurahan is the request's, where the work
/// was done (a staff member who moved has rows in both).
pub type StaffWorkRow = (String, String, bool, Option<i64>, bool, Option<i64>, Option<i64>);

/// One row per staff member and request they acted on, the last time in
/// `[from, to)`, within scope (and for one NIP if `only`).
pub fn staff_work(
    db: &mut dyn Sql,
    scope: &Scope,
    from: i64,
    to: i64,
    only: Option<&str>,
) -> Result<Vec<StaffWorkRow>, StoreError> {
    let (scope_q, scope_args) = scope.sql("q.");
    let who = if only.is_some() { "AND nip = ?" } else { "" };
    let sql = format!(
        "SELECT q.nip, q.kelurahan, q.finished, q.working_ms, q.within_sla, q.u6, q.u7
         FROM request_staff q
         WHERE q.last_at_ms >= ? AND q.last_at_ms < ? {who} {scope_q}"
    );
    let mut args: Vec<Value> = vec![from.into(), to.into()];
    if let Some(o) = only {
        args.push(o.into());
    }
    args.extend(scope_args);
    db.query(&sql, &args)?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?)))
        .collect()
}

/// Staff work rolled up per month (`staff_monthly`) for months `[first,
/// last]`, the whole city: `(nip, kelurahan, bucket, handled, within_sla,
/// rated, u6, u7)`, bucket -1 for requests not finished.
pub type StaffMonthlyRow = (String, String, i64, i64, i64, i64, i64, i64);

/// Hands `each` the rows, streamed: a year's level holds a row per
/// kelurahan, staff id and working-time bucket (180,000 at 3,000,000
/// requests), which are folded as they come rather than held.
pub fn staff_monthly(
    db: &mut dyn Sql,
    months: (i64, i64),
    each: &mut dyn FnMut(StaffMonthlyRow),
) -> Result<(), StoreError> {
    let rows = period_rows(months);
    // A year, a quarter or a month is one level row per key (the primary
    // key is month, kelurahan, nip, bucket): read it as it is. Grouping
    // those rows again cost PostgreSQL a sort of the whole year (230 ms
    // of a 300 ms page at a million requests) for nothing.
    let sql = if rows[0] == rows[1] {
        "SELECT nip, kelurahan, bucket, handled, within_sla, rated, u6, u7
         FROM staff_monthly WHERE month = ? AND handled > 0"
            .to_owned()
    } else {
        format!(
            "SELECT nip, kelurahan, bucket, CAST(sum(handled) AS BIGINT), CAST(sum(within_sla) AS BIGINT),
                    CAST(sum(rated) AS BIGINT), CAST(sum(u6) AS BIGINT), CAST(sum(u7) AS BIGINT)
             FROM staff_monthly WHERE {PERIOD_ROWS} GROUP BY nip, kelurahan, bucket HAVING sum(handled) > 0"
        )
    };
    let args: &[Value] = if rows[0] == rows[1] { &rows[..1] } else { &rows };
    db.query_each(&sql, args, &mut |r| {
        each((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?));
        Ok(())
    })
}

/// A recorded training as stored: `(nip, day YYYY-MM-DD, topic, provider,
/// hours (JP), competency)`; hours and competency are absent on rows
/// recorded before schema version 4.
pub type TrainingRow = (String, String, String, String, Option<i64>, Option<String>);

/// The latest recorded trainings (at most 500), of the staff in `only`
/// when given (a supervisor's register; an empty list gives none).
pub fn trainings(db: &mut dyn Sql, only: Option<&[String]>) -> Result<Vec<TrainingRow>, StoreError> {
    let (filter, args): (String, Vec<Value>) = match only {
        None => (String::new(), Vec::new()),
        Some([]) => return Ok(Vec::new()),
        Some(nips) => (
            format!("WHERE nip IN ({})", vec!["?"; nips.len()].join(", ")),
            nips.iter().map(|n| Value::from(n.as_str())).collect(),
        ),
    };
    let sql = format!(
        "SELECT nip, day, topic, provider, hours, competency FROM trainings {filter}
         ORDER BY day DESC, id DESC LIMIT 500"
    );
    db.query(&sql, &args)?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
        .collect()
}

/// Training hours (JP) per staff member for trainings on days
/// `[from, to)` (`YYYY-MM-DD`): `(nip, hours)`.
pub fn training_hours(db: &mut dyn Sql, from: &str, to: &str) -> Result<Vec<(String, i64)>, StoreError> {
    db.query(
        "SELECT nip, CAST(sum(hours) AS BIGINT) FROM trainings
         WHERE day >= ? AND day < ? AND hours IS NOT NULL GROUP BY nip",
        args![from, to],
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

/// A training to record; `hours` and `competency` are checked by the
/// caller (and by the table's CHECK constraints).
pub struct NewTraining<'a> {
    pub nip: &'a str,
    pub day: &'a str,
    pub topic: &'a str,
    pub provider: &'a str,
    pub hours: i64,
    pub competency: &'a str,
}

pub fn record_training(db: &mut dyn Sql, t: &NewTraining<'_>, by: &str, now_ms: i64) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO trainings (nip, day, topic, provider, hours, competency, recorded_by, recorded_ms)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        args![t.nip, t.day, t.topic, t.provider, t.hours, t.competency, by, now_ms],
    )?;
    Ok(())
}

// ------------------------------------------------------------------ exports

/// One request as an export shows it (personal data masked).
#[derive(Debug, Clone)]
pub struct ExportRow {
    pub doc_id: String,
    pub ticket: String,
    pub kelurahan: String,
    pub kecamatan: String,
    pub service: String,
    pub status: String,
    pub conflict: bool,
    pub agency: Option<String>,
    pub created_at_ms: i64,
    pub finished_at_ms: Option<i64>,
    pub working_ms: Option<i64>,
    pub name_masked: Option<String>,
    pub nik_masked: Option<String>,
}

/// Requests filed in `[from, to)` within scope, newest first, at most `limit`.
pub fn export_rows(
    db: &mut dyn Sql,
    scope: &Scope,
    from: i64,
    to: i64,
    status: Option<&str>,
    limit: u32,
) -> Result<Vec<ExportRow>, StoreError> {
    let (scope_sql, scope_args) = scope.sql("");
    let status_sql = if status.is_some() { "AND status = ?" } else { "" };
    let sql = format!(
        "SELECT ticket, kelurahan, substr(kelurahan, 1, 8), service, status, conflict, agency, created_at_ms, finished_at_ms,
                working_ms, name_masked, nik_masked, doc_id
         FROM requests WHERE created_at_ms >= ? AND created_at_ms < ? {status_sql} {scope_sql}
         ORDER BY created_at_ms DESC LIMIT {limit}"
    );
    let mut args: Vec<Value> = vec![from.into(), to.into()];
    if let Some(s) = status {
        args.push(s.into());
    }
    args.extend(scope_args);
    db.query(&sql, &args)?
        .into_iter()
        .map(|r| {
            Ok(ExportRow {
                ticket: r.get(0)?,
                kelurahan: r.get(1)?,
                kecamatan: r.get(2)?,
                service: r.get(3)?,
                status: r.get(4)?,
                conflict: r.get(5)?,
                agency: r.get(6)?,
                created_at_ms: r.get(7)?,
                finished_at_ms: r.get(8)?,
                working_ms: r.get(9)?,
                name_masked: r.get::<Option<String>>(10)?.map(|n| super::projection::mask_name(&n)),
                nik_masked: r.get::<Option<String>>(11)?.map(|n| super::projection::mask_nik(&n)),
                doc_id: r.get(12)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod period_tests {
    use super::*;

    fn rows(m: (i64, i64)) -> Vec<i64> {
        period_rows(m)
            .iter()
            .map(|v| match v {
                Value::Int(i) => *i,
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn whole_years_and_quarters_read_their_own_rows() {
        assert_eq!(rows((202601, 202612)), [202600, 202600, 0, 0]);
        assert_eq!(rows((202610, 202612)), [202694, 202694, 91, 94]);
        assert_eq!(rows((202601, 202606)), [202691, 202692, 91, 94]);
        assert_eq!(rows((202607, 202612)), [202693, 202694, 91, 94]);
        assert_eq!(rows((202611, 202611)), [202611, 202611, 1, 12]);
        assert_eq!(rows((202602, 202604)), [202602, 202604, 1, 12]);
        // Across years: months only, never a year's or a quarter's row.
        assert_eq!(rows((202611, 202702)), [202611, 202702, 1, 12]);
    }
}
