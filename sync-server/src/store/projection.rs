//! The relational projections of request documents (`requests`,
//! `events`, `ratings`, `request_steps`) and the rollups the central pages
//! read (`monthly`, `daily_filed`, `request_staff`, `step_hist`), written
//! in the same transaction as each merge.
//!
//! The rollups are kept here, in Rust, by difference: [`project_request`]
//! reads what the request contributed before, computes what it contributes
//! now, and moves the counters by the difference. One implementation for
//! every engine, so SQLite and PostgreSQL give identical figures.
//! The differences of one commit's documents are gathered in a
//! [`Projector`] and written once per rollup row at its end: an exchange's
//! requests mostly share a month, kelurahan and service, so a hundred
//! documents move a few `monthly` rows instead of a few hundred upserts
//! (the server's initial sync was bound by these statements, issue 17).
//! Months and days are local (meta `utc_offset_hours`). A request is
//! within its SLA when its working time is at most the service's SLA days
//! (`service_sla` at the time of projection). A request's first rating
//! (lowest id) is the one counted, in the IKM (`monthly`) and in the
//! respondent profile (`skm_profile`: answers per month, kelurahan,
//! question and code; never per request, and never beside a name or NIK).

use std::collections::BTreeMap;

use loket_shared::request::RequestView;
use loket_shared::respondent::Dimension;
use loket_shared::skm::Element;
use loket_shared::workflow::{self, Derived, EventKind};

use super::StoreError;
use super::docs;
use super::meta::projection_offset;
use super::sql::{RowBatch, Sql, Value, scalar};
use crate::args;

const DAY_MS: i64 = 86_400_000;

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

pub use loket_shared::sla::JourneyEvent;
use loket_shared::sla::{Calendar, Holidays, ServiceHours};

/// What working time is measured with: the local offset, the days
/// offices are closed (`holidays`), the city's service hours and each
/// kelurahan's own (`service_hours`), as the catalog last set them.
#[derive(Debug, Clone)]
pub struct Calendars {
    pub offset: time::UtcOffset,
    pub holidays: Holidays,
    pub city: ServiceHours,
    pub kelurahan: std::collections::HashMap<String, ServiceHours>,
}

impl Calendars {
    pub fn load(db: &mut dyn Sql) -> Result<Calendars, StoreError> {
        let offset = projection_offset(db)?;
        let holidays = projection_holidays(db)?;
        let mut city = ServiceHours::CITY_DEFAULT;
        let mut kelurahan = std::collections::HashMap::new();
        for r in db.query("SELECT kelurahan, spec FROM service_hours", args![])? {
            let (k, spec): (String, String) = (r.get(0)?, r.get(1)?);
            let hours = ServiceHours::from_spec(&spec)
                .map_err(|e| StoreError::Corrupt { what: format!("service_hours {k}"), reason: e.to_string() })?;
            if k.is_empty() {
                city = hours;
            } else {
                kelurahan.insert(k, hours);
            }
        }
        Ok(Calendars { offset, holidays, city, kelurahan })
    }

    /// A kelurahan office's calendar (its own hours, else the city's).
    pub fn of_kelurahan(&self, code: &str) -> Calendar<'_> {
        let hours = self.kelurahan.get(code).unwrap_or(&self.city);
        Calendar { offset: self.offset, hours, holidays: &self.holidays }
    }

    /// The agencies' calendar (the city's hours).
    pub fn of_agencies(&self) -> Calendar<'_> {
        Calendar { offset: self.offset, hours: &self.city, holidays: &self.holidays }
    }

    /// A journey's steps, each measured in its party's calendar.
    pub fn steps(&self, kelurahan: &str, created: i64, end: i64, events: &[JourneyEvent]) -> Vec<Step> {
        loket_shared::sla::journey_steps(created, end, events, &self.of_kelurahan(kelurahan), &self.of_agencies())
    }
}

pub use loket_shared::sla::Step;

/// The local month (`YYYYMM`) of an instant.
pub fn month_of(ms: i64, offset: time::UtcOffset) -> i64 {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    i64::from(t.year()) * 100 + i64::from(u8::from(t.month()))
}

/// The rollup rows a month's figures go into: the month (`YYYYMM`), its
/// quarter (`YYYY91`..`YYYY94`) and its year (`YYYY00`), so a page reads a
/// year or a quarter as one period's rows instead of adding up months
/// ([`super::reports::period_rows`]). Used by the histogram rollups
/// (`step_hist`, `journey_hist`, `staff_monthly`), whose rows per month
/// are many.
pub fn period_levels(month: i64) -> [i64; 3] {
    let (year, m) = (month.div_euclid(100), month.rem_euclid(100));
    [month, year * 100 + 90 + (m - 1).div_euclid(3) + 1, year * 100]
}

/// The local day of an instant, as days since the epoch.
pub fn day_of(ms: i64, offset: time::UtcOffset) -> i64 {
    (ms + i64::from(offset.whole_seconds()) * 1000).div_euclid(DAY_MS)
}

/// What `requests.nik_masked` keeps of a masked NIK (`127101••••••0003`):
/// the digits shown, without the mask (schema version 22: the six bullets
/// were 18 bytes of UTF-8 in every row). [`mask_nik`] shows it again.
fn nik_shown(masked: &str) -> String {
    masked.replace('•', "")
}

/// What `requests.name_masked` keeps of a masked name (`S*** N***`): the
/// initials (`SN`). [`mask_name`] shows them again.
fn name_initials(masked: &str) -> String {
    masked.split(' ').filter_map(|w| w.chars().next()).collect()
}

/// A NIK as exports show it, from what `requests.nik_masked` keeps (a
/// value masked already, from before version 22, is shown as it is).
pub fn mask_nik(kept: &str) -> String {
    if kept.len() == 10 && kept.bytes().all(|b| b.is_ascii_digit()) {
        format!("{}••••••{}", &kept[..6], &kept[6..])
    } else {
        kept.to_owned()
    }
}

/// A name as exports show it, from the initials `requests.name_masked`
/// keeps (a value masked already is shown as it is).
pub fn mask_name(kept: &str) -> String {
    if kept.contains('*') {
        return kept.to_owned();
    }
    kept.chars().map(|c| format!("{c}***")).collect::<Vec<_>>().join(" ")
}

/// What a request's row said before a write: `(finished_at_ms,
/// working_ms, status, cancelled_at_ms, steps, journey)`.
type RequestBefore = (Option<i64>, Option<i64>, String, Option<i64>, Option<Vec<u8>>, Option<Vec<u8>>);

/// A step row: `(month, service, status, agency, bucket)` and its working time.
type StepRow = (i64, String, String, String, i64, i64);

/// A finished request's step times as its `requests.steps` column keeps
/// them (schema version 17; before, a `request_steps` row each, keyed by
/// the 36-character id: 211 bytes a request, now about 20). postcard:
/// the format number, then the month and service they were counted
/// under (so they are taken out of `step_hist` exactly as they went in),
/// then each step in the journey's order. A status is its variant's index
/// in [`workflow::Status`]: reordering the enum needs a new format number
/// (the test `steps_are_packed_as_they_always_were` pins the bytes).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PackedSteps {
    format: u8,
    month: i64,
    service: String,
    steps: Vec<PackedStep>,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PackedStep {
    status: workflow::Status,
    agency: Option<String>,
    working_ms: i64,
    bucket: i64,
}

const STEPS_FORMAT: u8 = 1;

/// `rows` (one month and service, as [`record_steps`] makes them) packed
/// for `requests.steps`; `None` for none.
fn pack_steps(rows: &[StepRow]) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(first) = rows.first() else { return Ok(None) };
    let mut steps = Vec::with_capacity(rows.len());
    for (month, service, status, agency, bucket, ms) in rows {
        if *month != first.0 || *service != first.1 {
            return Err(StoreError::Invalid("a request's steps span one month and service".into()));
        }
        let status = status
            .parse::<workflow::Status>()
            .map_err(|_| StoreError::Invalid(format!("a step's status {status:?} is not a status")))?;
        let agency = Some(agency.clone()).filter(|a| !a.is_empty());
        steps.push(PackedStep { status, agency, working_ms: *ms, bucket: *bucket });
    }
    let packed = PackedSteps { format: STEPS_FORMAT, month: first.0, service: first.1.clone(), steps };
    postcard::to_stdvec(&packed).map(Some).map_err(|e| StoreError::Invalid(format!("packing steps: {e}")))
}

/// A packed `requests` column read back: postcard under a format number
/// this build must know; anything else is the store's corruption, named
/// by the request and column, never misread.
fn unpack_column<T: serde::de::DeserializeOwned>(
    doc_id: &str,
    column: &str,
    blob: &[u8],
    format: u8,
    format_of: impl Fn(&T) -> u8,
) -> Result<T, StoreError> {
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("requests.{column} of {doc_id}"), reason };
    let packed: T = postcard::from_bytes(blob).map_err(|e| corrupt(e.to_string()))?;
    let found = format_of(&packed);
    if found != format {
        return Err(corrupt(format!("format {found} (this build reads {format})")));
    }
    Ok(packed)
}

/// [`pack_steps`] read back (`None`: no steps).
pub fn unpack_steps(doc_id: &str, blob: Option<&[u8]>) -> Result<Vec<StepRow>, StoreError> {
    let Some(blob) = blob else { return Ok(Vec::new()) };
    let packed: PackedSteps = unpack_column(doc_id, "steps", blob, STEPS_FORMAT, |p: &PackedSteps| p.format)?;
    Ok(packed
        .steps
        .into_iter()
        .map(|s| {
            let agency = s.agency.unwrap_or_default();
            (packed.month, packed.service.clone(), s.status.as_str().to_owned(), agency, s.bucket, s.working_ms)
        })
        .collect())
}

/// A request's step rows now (none unless finished): `finished`, when it
/// finished and its steps.
fn step_rows(service: &str, finished: Option<(i64, &[Step])>, offset: time::UtcOffset) -> Vec<StepRow> {
    let Some((finished, steps)) = finished else { return Vec::new() };
    let month = month_of(finished, offset);
    steps
        .iter()
        .map(|s| {
            (
                month,
                service.to_owned(),
                s.status.as_str().to_owned(),
                s.agency.clone().unwrap_or_default(),
                step_bucket(s.working_ms),
                s.working_ms,
            )
        })
        .collect()
}

/// Moves `step_hist` by the difference between a request's step rows
/// before (`old`, unpacked from its `requests.steps`) and now, and returns
/// the column's new value.
fn record_steps(rollups: &mut Rollups, old: &[StepRow], new: &[StepRow]) -> Result<Option<Vec<u8>>, StoreError> {
    if old != new {
        for (month, service, status, agency, bucket, _) in old {
            rollups.step_hist(*month, service, status, agency, *bucket, -1);
        }
        for (month, service, status, agency, bucket, _) in new {
            rollups.step_hist(*month, service, status, agency, *bucket, 1);
        }
    }
    pack_steps(new)
}

/// Whether `table` exists, on either engine.
pub fn table_exists(db: &mut dyn Sql, table: &str) -> Result<bool, StoreError> {
    let n = match db.dialect() {
        super::sql::Dialect::Sqlite => {
            scalar::<i64>(db, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", args![table])?
        }
        super::sql::Dialect::Postgres => scalar::<i64>(
            db,
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ?",
            args![table],
        )?,
    };
    Ok(n.unwrap_or(0) > 0)
}

/// What [`fold_into_requests`] hands a request's rows to.
type FoldRows<'a, R> = dyn FnMut(&mut dyn Sql, &str, &[R]) -> Result<(), StoreError> + 'a;

/// Folds the rows of `table` (keyed by `doc_id` and `order`) into one
/// value per request: reads a few thousand requests' rows at a time
/// (`columns` after `doc_id`, each read by `row`), hands each request's to
/// `fold`, then drops the table. A store without the table (folded
/// already) is left as it is. Rows of no request go with the table.
fn fold_into_requests<R>(
    db: &mut dyn Sql,
    table: &str,
    columns: &str,
    order: &str,
    row: fn(&super::sql::Row) -> Result<R, StoreError>,
    fold: &mut FoldRows<'_, R>,
) -> Result<(), StoreError> {
    const CHUNK: i64 = 2_000;
    if !table_exists(db, table)? {
        return Ok(());
    }
    let sql = format!(
        "SELECT doc_id, {columns} FROM {table}
         WHERE doc_id IN (SELECT DISTINCT doc_id FROM {table} WHERE doc_id > ? ORDER BY doc_id LIMIT ?)
         ORDER BY doc_id, {order}"
    );
    let mut after = String::new();
    loop {
        let mut docs: Vec<(String, Vec<R>)> = Vec::new();
        db.query_each(&sql, args![after.as_str(), CHUNK], &mut |r| {
            let doc: String = r.get(0)?;
            if docs.last().is_none_or(|d| d.0 != doc) {
                docs.push((doc, Vec::new()));
            }
            docs.last_mut().expect("pushed above").1.push(row(&r)?);
            Ok(())
        })?;
        let Some(last) = docs.last().map(|d| d.0.clone()) else { break };
        for (doc, rows) in &docs {
            fold(db, doc, rows)?;
        }
        after = last;
    }
    db.batch(&format!("DROP TABLE {table};"))
}

/// Version 18's fold, on both engines: each request's `events` rows packed
/// into its `requests.journey` and its handoffs into `request_handoffs`.
pub fn fold_events(db: &mut dyn Sql) -> Result<(), StoreError> {
    let row = |r: &super::sql::Row| -> Result<EventRow, StoreError> {
        Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
    };
    fold_into_requests(db, "events", "at_ms, by_who, kind, to_status, agency", "ord", row, &mut |db, doc, rows| {
        db.execute("UPDATE requests SET journey = ? WHERE doc_id = ?", args![pack_journey(rows)?, doc])?;
        record_handoffs(db, doc, &[], rows)
    })
}

/// Version 17's fold, on both engines: each request's `request_steps`
/// rows packed into its `requests.steps`. `step_hist` does not move: the
/// same steps, kept elsewhere.
pub fn fold_request_steps(db: &mut dyn Sql) -> Result<(), StoreError> {
    let row = |r: &super::sql::Row| -> Result<StepRow, StoreError> {
        Ok((r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
    };
    let columns = "month, service, status, agency, bucket, working_ms";
    fold_into_requests(db, "request_steps", columns, "seq", row, &mut |db, doc, rows| {
        db.execute("UPDATE requests SET steps = ? WHERE doc_id = ?", args![pack_steps(rows)?, doc])?;
        Ok(())
    })
}

/// A `request_staff` row: `(nip, kelurahan, last_at_ms, finished,
/// working_ms, within_sla, u6, u7)`.
type StaffRow = (String, String, i64, bool, Option<i64>, bool, Option<i64>, Option<i64>);

fn staff_rows(db: &mut dyn Sql, doc_id: &str) -> Result<Vec<StaffRow>, StoreError> {
    db.query(
        "SELECT nip, kelurahan, last_at_ms, finished, working_ms, within_sla, u6, u7 FROM request_staff
         WHERE doc_id = ? ORDER BY nip",
        args![doc_id],
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?)))
    .collect()
}

/// The `staff_monthly` key and counters a `request_staff` row stands for:
/// `(month, kelurahan, nip, bucket)` (bucket -1 while unfinished) and
/// `[handled, within_sla, rated, u6, u7]`.
type StaffKey = (i64, String, String, i64);

fn staff_contribution(row: &StaffRow, offset: time::UtcOffset) -> (StaffKey, [i64; 5]) {
    let (nip, kel, last_at, finished, working, within, u6, u7) = row;
    let bucket = match (finished, working) {
        (true, Some(w)) => step_bucket(*w),
        (true, None) => 0,
        (false, _) => -1,
    };
    let rated = u6.is_some() && u7.is_some();
    let key = (month_of(*last_at, offset), kel.clone(), nip.clone(), bucket);
    let counts = [
        1,
        i64::from(*finished && *within),
        i64::from(rated),
        if rated { u6.unwrap_or(0) } else { 0 },
        if rated { u7.unwrap_or(0) } else { 0 },
    ];
    (key, counts)
}

/// A change to one `monthly` row.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct MonthlyDelta {
    filed: i64,
    finished: i64,
    within_sla: i64,
    respondents: i64,
    u: [i64; 9],
    rejected: i64,
    cancelled: i64,
}

impl MonthlyDelta {
    fn add(&mut self, d: &MonthlyDelta) {
        self.filed += d.filed;
        self.finished += d.finished;
        self.within_sla += d.within_sla;
        self.respondents += d.respondents;
        for (a, b) in self.u.iter_mut().zip(d.u) {
            *a += b;
        }
        self.rejected += d.rejected;
        self.cancelled += d.cancelled;
    }
}

/// The rollup changes of the documents projected so far, by row. Every
/// rollup column is a sum, so changes to the same row add up and the
/// order they are written in does not matter; rows are written in key
/// order (the same lock order in every transaction).
#[derive(Debug, Default)]
struct Rollups {
    /// `(month, kelurahan, service)`.
    monthly: BTreeMap<(i64, String, String), MonthlyDelta>,
    /// `(day, kelurahan)`: requests filed.
    daily_filed: BTreeMap<(i64, String), i64>,
    /// `(period, service, status, agency, bucket)`.
    step_hist: BTreeMap<(i64, String, String, String, i64), i64>,
    /// `(period, kelurahan, bucket)`.
    journey_hist: BTreeMap<(i64, String, i64), i64>,
    /// `(period, kelurahan, nip, bucket)`: `[handled, within_sla, rated, u6, u7]`.
    staff: BTreeMap<StaffKey, [i64; 5]>,
    /// `(month, kelurahan, dimension, code)`.
    skm_profile: BTreeMap<(i64, String, &'static str, String), i64>,
    /// `(month, agency, kelurahan, service)`: `[finished, judged, within_sla, working_ms]`.
    agency: BTreeMap<(i64, String, String, String), [i64; 4]>,
}

impl Rollups {
    fn monthly(&mut self, month: i64, kelurahan: &str, service: &str, d: MonthlyDelta) {
        if d != MonthlyDelta::default() {
            self.monthly.entry((month, kelurahan.to_owned(), service.to_owned())).or_default().add(&d);
        }
    }

    fn step_hist(&mut self, month: i64, service: &str, status: &str, agency: &str, bucket: i64, n: i64) {
        for period in period_levels(month) {
            let key = (period, service.to_owned(), status.to_owned(), agency.to_owned(), bucket);
            *self.step_hist.entry(key).or_default() += n;
        }
    }

    fn journey_hist(&mut self, month: i64, kelurahan: &str, bucket: i64, n: i64) {
        for period in period_levels(month) {
            *self.journey_hist.entry((period, kelurahan.to_owned(), bucket)).or_default() += n;
        }
    }

    fn staff(&mut self, key: &StaffKey, c: [i64; 5], sign: i64) {
        let (month, kel, nip, bucket) = key;
        for period in period_levels(*month) {
            let row = self.staff.entry((period, kel.clone(), nip.clone(), *bucket)).or_default();
            for (a, b) in row.iter_mut().zip(c) {
                *a += sign * b;
            }
        }
    }

    fn skm_profile(&mut self, month: i64, kelurahan: &str, profile: &StoredProfile, sign: i64) {
        for ((d, _), code) in PROFILE_COLUMNS.iter().zip(profile) {
            let Some(code) = code else { continue };
            *self.skm_profile.entry((month, kelurahan.to_owned(), d.key(), code.clone())).or_default() += sign;
        }
    }

    fn agency(&mut self, row: &AgencyRow, kelurahan: &str, service: &str, sign: i64) {
        let (agency, month, ms, sla) = row;
        let judged = sla.is_some();
        let within = sla.is_some_and(|d| *ms <= d * DAY_MS);
        let sums = self.agency.entry((*month, agency.clone(), kelurahan.to_owned(), service.to_owned())).or_default();
        for (a, b) in sums.iter_mut().zip([1, i64::from(judged), i64::from(within), *ms]) {
            *a += sign * b;
        }
    }

    /// Writes every row that moved (a row whose changes cancel out is left
    /// alone).
    fn write(&self, db: &mut dyn Sql) -> Result<(), StoreError> {
        for ((month, kelurahan, service), d) in &self.monthly {
            if *d == MonthlyDelta::default() {
                continue;
            }
            let u = d.u;
            db.execute(
                "INSERT INTO monthly (month, kelurahan, service, filed, finished, within_sla, respondents,
                                      u1, u2, u3, u4, u5, u6, u7, u8, u9, rejected, cancelled)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (month, kelurahan, service) DO UPDATE SET
                     filed = monthly.filed + excluded.filed, finished = monthly.finished + excluded.finished,
                     rejected = monthly.rejected + excluded.rejected, cancelled = monthly.cancelled + excluded.cancelled,
                     within_sla = monthly.within_sla + excluded.within_sla,
                     respondents = monthly.respondents + excluded.respondents,
                     u1 = monthly.u1 + excluded.u1, u2 = monthly.u2 + excluded.u2, u3 = monthly.u3 + excluded.u3,
                     u4 = monthly.u4 + excluded.u4, u5 = monthly.u5 + excluded.u5, u6 = monthly.u6 + excluded.u6,
                     u7 = monthly.u7 + excluded.u7, u8 = monthly.u8 + excluded.u8, u9 = monthly.u9 + excluded.u9",
                args![
                    *month,
                    kelurahan.as_str(),
                    service.as_str(),
                    d.filed,
                    d.finished,
                    d.within_sla,
                    d.respondents,
                    u[0],
                    u[1],
                    u[2],
                    u[3],
                    u[4],
                    u[5],
                    u[6],
                    u[7],
                    u[8],
                    d.rejected,
                    d.cancelled
                ],
            )?;
        }
        for ((day, kelurahan), n) in self.daily_filed.iter().filter(|(_, n)| **n != 0) {
            db.execute(
                "INSERT INTO daily_filed (day, kelurahan, filed) VALUES (?, ?, ?)
                 ON CONFLICT (day, kelurahan) DO UPDATE SET filed = daily_filed.filed + excluded.filed",
                args![*day, kelurahan.as_str(), *n],
            )?;
        }
        for ((period, service, status, agency, bucket), n) in self.step_hist.iter().filter(|(_, n)| **n != 0) {
            db.execute(
                "INSERT INTO step_hist (month, service, status, agency, bucket, n) VALUES (?, ?, ?, ?, ?, ?)
                 ON CONFLICT (month, service, status, agency, bucket) DO UPDATE SET n = step_hist.n + excluded.n",
                args![*period, service.as_str(), status.as_str(), agency.as_str(), *bucket, *n],
            )?;
        }
        for ((period, kelurahan, bucket), n) in self.journey_hist.iter().filter(|(_, n)| **n != 0) {
            db.execute(
                "INSERT INTO journey_hist (month, kelurahan, bucket, n) VALUES (?, ?, ?, ?)
                 ON CONFLICT (month, kelurahan, bucket) DO UPDATE SET n = journey_hist.n + excluded.n",
                args![*period, kelurahan.as_str(), *bucket, *n],
            )?;
        }
        for ((period, kel, nip, bucket), c) in self.staff.iter().filter(|(_, c)| **c != [0; 5]) {
            db.execute(
                "INSERT INTO staff_monthly (month, kelurahan, nip, bucket, handled, within_sla, rated, u6, u7)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (month, kelurahan, nip, bucket) DO UPDATE SET
                     handled = staff_monthly.handled + excluded.handled,
                     within_sla = staff_monthly.within_sla + excluded.within_sla,
                     rated = staff_monthly.rated + excluded.rated,
                     u6 = staff_monthly.u6 + excluded.u6, u7 = staff_monthly.u7 + excluded.u7",
                args![*period, kel.as_str(), nip.as_str(), *bucket, c[0], c[1], c[2], c[3], c[4]],
            )?;
        }
        for ((month, kelurahan, dimension, code), n) in self.skm_profile.iter().filter(|(_, n)| **n != 0) {
            db.execute(
                "INSERT INTO skm_profile (month, kelurahan, dimension, code, n) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (month, kelurahan, dimension, code) DO UPDATE SET n = skm_profile.n + excluded.n",
                args![*month, kelurahan.as_str(), *dimension, code.as_str(), *n],
            )?;
        }
        for ((month, agency, kelurahan, service), c) in self.agency.iter().filter(|(_, c)| **c != [0; 4]) {
            db.execute(
                "INSERT INTO agency_monthly (month, agency, kelurahan, service, finished, judged, within_sla, working_ms)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (month, agency, kelurahan, service) DO UPDATE SET
                     finished = agency_monthly.finished + excluded.finished,
                     judged = agency_monthly.judged + excluded.judged,
                     within_sla = agency_monthly.within_sla + excluded.within_sla,
                     working_ms = agency_monthly.working_ms + excluded.working_ms",
                args![*month, agency.as_str(), kelurahan.as_str(), service.as_str(), c[0], c[1], c[2], c[3]],
            )?;
        }
        Ok(())
    }
}

/// Projects the request documents of one transaction: each document's
/// own rows at once, the rollups gathered and written by [`Projector::finish`],
/// and what every document reads alike (the local offset, the calendars,
/// the services' SLAs) read once. Lives no longer than the transaction: a
/// catalog change in a later one is seen.
#[derive(Debug, Default)]
pub struct Projector {
    rollups: Rollups,
    offset: Option<time::UtcOffset>,
    calendars: Option<Calendars>,
    /// `service_sla.sla_days` by service code (`None`: no SLA set).
    slas: BTreeMap<String, Option<i64>>,
    /// `agency_sla.sla_days` by `(service, agency)`.
    agency_slas: BTreeMap<(String, String), Option<i64>>,
}

/// The `ratings` column holding each profile question's code (NULL: not
/// answered), in [`Dimension::ALL`] order.
pub const PROFILE_COLUMNS: [(Dimension, &str); 4] = [
    (Dimension::Age, "age_band"),
    (Dimension::Sex, "sex"),
    (Dimension::Education, "education"),
    (Dimension::Occupation, "occupation"),
];

/// A rating's profile as stored: one code or none per question.
type StoredProfile = [Option<String>; 4];

/// A request's first rating: `(rating_id, at_ms, u1..u9, profile)`. It
/// counts for the request's kelurahan, which never changes.
type FirstRating = (String, i64, [i64; 9], StoredProfile);

fn first_rating(db: &mut dyn Sql, doc_id: &str) -> Result<Option<FirstRating>, StoreError> {
    let Some(r) = db.query_opt(
        "SELECT rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9,
                age_band, sex, education, occupation FROM ratings
         WHERE doc_id = ? ORDER BY rating_id LIMIT 1",
        args![doc_id],
    )?
    else {
        return Ok(None);
    };
    let mut u = [0i64; 9];
    for (i, slot) in u.iter_mut().enumerate() {
        *slot = r.get(2 + i)?;
    }
    let profile = [r.get(11)?, r.get(12)?, r.get(13)?, r.get(14)?];
    Ok(Some((r.get(0)?, r.get(1)?, u, profile)))
}

/// A finished request's figures (completed or rejected; a cancelled
/// request is not finished): when it finished, its steps, each party's
/// working time, and when its file became complete. Kiosk clocks can be
/// wrong: an instant is never later than the server's receipt of the
/// document's changes (first receipt for the filing, last for the finish),
/// and the finish never precedes the filing. `None` while open, cancelled
/// or in conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finish {
    pub at_ms: i64,
    pub steps: Vec<Step>,
    pub times: loket_shared::sla::JourneyTimes,
    pub complete_at_ms: i64,
}

pub fn finish_times(
    view: &RequestView,
    derived: &Derived,
    received: (Option<i64>, Option<i64>),
    cals: &Calendars,
) -> Option<Finish> {
    if !matches!(derived.status, workflow::Status::Completed | workflow::Status::Rejected) || derived.has_conflict() {
        return None;
    }
    let finish = derived.ordered.iter().rev().find(|e| e.to == derived.status)?;
    let created = received.0.map_or(view.created_at_ms, |r| view.created_at_ms.min(r));
    let at_ms = received.1.map_or(finish.at_ms, |r| finish.at_ms.min(r)).max(created);
    let events: Vec<JourneyEvent> = derived.ordered.iter().map(|e| (e.at_ms, e.to, e.agency.clone())).collect();
    let steps = cals.steps(view.kelurahan.as_str(), created, at_ms, &events);
    let times = loket_shared::sla::journey_times(&steps);
    let complete_at_ms = loket_shared::sla::complete_at(created, &events);
    Some(Finish { at_ms, steps, times, complete_at_ms })
}

/// When a cancelled request was cancelled, bounded like a finish; `None`
/// unless cancelled (and not in conflict).
pub fn cancelled_at(view: &RequestView, derived: &Derived, received: (Option<i64>, Option<i64>)) -> Option<i64> {
    if derived.status != workflow::Status::Cancelled || derived.has_conflict() {
        return None;
    }
    let cancel = derived.ordered.iter().rev().find(|e| e.to == derived.status)?;
    let created = received.0.map_or(view.created_at_ms, |r| view.created_at_ms.min(r));
    Some(received.1.map_or(cancel.at_ms, |r| cancel.at_ms.min(r)).max(created))
}

/// An agency's part of a finished request: `(agency, month, working ms,
/// its SLA in days if the catalog sets one)`.
type AgencyRow = (String, i64, i64, Option<i64>);

fn agency_rows(db: &mut dyn Sql, doc_id: &str) -> Result<Vec<AgencyRow>, StoreError> {
    db.query(
        "SELECT agency, month, working_ms, sla_days FROM request_agency WHERE doc_id = ? ORDER BY agency",
        args![doc_id],
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
    .collect()
}

/// Rewrites the projection rows of one request document and moves the
/// rollups by what changed, in the caller's transaction.
pub fn project_request(db: &mut dyn Sql, view: &RequestView, derived: &Derived) -> Result<(), StoreError> {
    let mut projector = Projector::default();
    projector.request(db, view, derived)?;
    projector.finish(db)
}

impl Projector {
    fn offset(&mut self, db: &mut dyn Sql) -> Result<time::UtcOffset, StoreError> {
        match self.offset {
            Some(offset) => Ok(offset),
            None => Ok(*self.offset.insert(projection_offset(db)?)),
        }
    }

    fn calendars(&mut self, db: &mut dyn Sql) -> Result<&Calendars, StoreError> {
        let calendars = match self.calendars.take() {
            Some(calendars) => calendars,
            None => Calendars::load(db)?,
        };
        Ok(self.calendars.insert(calendars))
    }

    /// Whether a working time is within the service's SLA as recorded now.
    fn within_sla(&mut self, db: &mut dyn Sql, service: &str, working_ms: Option<i64>) -> Result<bool, StoreError> {
        let Some(ms) = working_ms else { return Ok(false) };
        let days = match self.slas.get(service) {
            Some(days) => *days,
            None => {
                let days = scalar::<i64>(db, "SELECT sla_days FROM service_sla WHERE code = ?", args![service])?;
                *self.slas.entry(service.to_owned()).or_insert(days)
            }
        };
        Ok(days.is_some_and(|d| ms <= d * DAY_MS))
    }

    fn agency_sla(&mut self, db: &mut dyn Sql, service: &str, agency: &str) -> Result<Option<i64>, StoreError> {
        let key = (service.to_owned(), agency.to_owned());
        if let Some(days) = self.agency_slas.get(&key) {
            return Ok(*days);
        }
        let days = scalar::<i64>(
            db,
            "SELECT sla_days FROM agency_sla WHERE service = ? AND agency = ?",
            args![service, agency],
        )?;
        Ok(*self.agency_slas.entry(key).or_insert(days))
    }

    /// Writes the rollups of every document projected; call once, before
    /// the transaction commits.
    pub fn finish(self, db: &mut dyn Sql) -> Result<(), StoreError> {
        self.rollups.write(db)
    }

    /// Rewrites the projection rows of a request document; its rollup
    /// changes wait for [`Projector::finish`].
    pub fn request(&mut self, db: &mut dyn Sql, view: &RequestView, derived: &Derived) -> Result<(), StoreError> {
        let id = view.id.to_string();
        let kelurahan = view.kelurahan.as_str();
        let service = view.service.as_str();
        let updated_at = derived.ordered.iter().map(|e| e.at_ms).max().unwrap_or(view.created_at_ms);
        let updated_at = view.ratings.iter().map(|r| r.at_ms).fold(updated_at, i64::max);
        let offset = self.offset(db)?;

        // What the request counted for before this write.
        let before = db.query_opt(
            "SELECT finished_at_ms, working_ms, status, cancelled_at_ms, steps, journey FROM requests WHERE doc_id = ?",
            args![&id],
        )?;
        let is_new = before.is_none();
        let (old_finished, old_working, old_status, old_cancelled, old_steps, old_journey): RequestBefore =
            match &before {
                Some(r) => (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?),
                None => (None, None, String::new(), None, None, None),
            };
        let old_journey = unpack_journey(&id, old_journey.as_deref())?;
        let journey: Vec<EventRow> = derived.ordered.iter().map(event_row).collect();
        let old_rejected = old_finished.is_some() && old_status == workflow::Status::Rejected.as_str();

        let (finish, cancelled) = if derived.status.is_terminal() && !derived.has_conflict() {
            let received = docs::received_span(db, &id)?;
            let cals = self.calendars(db)?;
            (finish_times(view, derived, received, cals), cancelled_at(view, derived, received))
        } else {
            (None, None)
        };
        let finished = finish.as_ref().map(|f| (f.at_ms, f.times.kelurahan_ms));
        let new_rejected = finish.is_some() && derived.status == workflow::Status::Rejected;
        let old_steps = unpack_steps(&id, old_steps.as_deref())?;
        let new_steps = step_rows(service, finish.as_ref().map(|f| (f.at_ms, &f.steps[..])), offset);
        let steps = record_steps(&mut self.rollups, &old_steps, &new_steps)?;
        db.execute(
            "INSERT INTO requests (doc_id, ticket, kelurahan, kiosk, service, status, conflict, agency, rated,
                               created_at_ms, updated_at_ms, finished_at_ms, working_ms, nik_masked, name_masked,
                               citizen_ms, complete_at_ms, cancelled_at_ms, steps, journey)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (doc_id) DO UPDATE SET status = excluded.status, conflict = excluded.conflict,
             agency = excluded.agency, rated = excluded.rated, updated_at_ms = excluded.updated_at_ms,
             finished_at_ms = excluded.finished_at_ms, working_ms = excluded.working_ms,
             nik_masked = excluded.nik_masked, name_masked = excluded.name_masked,
             citizen_ms = excluded.citizen_ms,
             complete_at_ms = excluded.complete_at_ms, cancelled_at_ms = excluded.cancelled_at_ms,
             steps = excluded.steps, journey = excluded.journey",
            args![
                &id,
                view.ticket.as_str(),
                kelurahan,
                view.kiosk.as_str(),
                service,
                derived.status.as_str(),
                derived.has_conflict(),
                derived.agency.as_deref(),
                !view.ratings.is_empty(),
                view.created_at_ms,
                updated_at,
                finished.map(|f| f.0),
                finished.map(|f| f.1),
                nik_shown(&view.applicant.nik.masked()),
                name_initials(&view.applicant.name.masked()),
                finish.as_ref().map(|f| f.times.citizen_ms),
                finish.as_ref().map(|f| f.complete_at_ms),
                cancelled,
                steps,
                pack_journey(&journey)?,
            ],
        )?;
        record_handoffs(db, &id, &old_journey, &journey)?;

        // Filed: once, when the request first appears.
        if is_new {
            let filed = MonthlyDelta { filed: 1, ..MonthlyDelta::default() };
            self.rollups.monthly(month_of(view.created_at_ms, offset), kelurahan, service, filed);
            *self.rollups.daily_filed.entry((day_of(view.created_at_ms, offset), kelurahan.to_owned())).or_default() +=
                1;
        }
        // Finished (completed or rejected) and within the kelurahan's SLA: out
        // of the old month, into the new.
        let new_working = finished.map(|f| f.1);
        if old_finished != finished.map(|f| f.0) || old_working != new_working || old_rejected != new_rejected {
            if let Some(at) = old_finished {
                let within = self.within_sla(db, service, old_working)?;
                let d = MonthlyDelta {
                    finished: -1,
                    within_sla: -i64::from(within),
                    rejected: -i64::from(old_rejected),
                    ..MonthlyDelta::default()
                };
                self.rollups.monthly(month_of(at, offset), kelurahan, service, d);
            }
            if let Some((at, working)) = finished {
                let within = self.within_sla(db, service, Some(working))?;
                let d = MonthlyDelta {
                    finished: 1,
                    within_sla: i64::from(within),
                    rejected: i64::from(new_rejected),
                    ..MonthlyDelta::default()
                };
                self.rollups.monthly(month_of(at, offset), kelurahan, service, d);
            }
            if old_finished != finished.map(|f| f.0) || old_working != new_working {
                if let (Some(at), Some(working)) = (old_finished, old_working) {
                    self.rollups.journey_hist(month_of(at, offset), kelurahan, step_bucket(working), -1);
                }
                if let Some((at, working)) = finished {
                    self.rollups.journey_hist(month_of(at, offset), kelurahan, step_bucket(working), 1);
                }
            }
        }
        // Cancelled: counted apart, in the month it was cancelled.
        if old_cancelled != cancelled {
            if let Some(at) = old_cancelled {
                let d = MonthlyDelta { cancelled: -1, ..MonthlyDelta::default() };
                self.rollups.monthly(month_of(at, offset), kelurahan, service, d);
            }
            if let Some(at) = cancelled {
                let d = MonthlyDelta { cancelled: 1, ..MonthlyDelta::default() };
                self.rollups.monthly(month_of(at, offset), kelurahan, service, d);
            }
        }
        // Each agency's part, against its own SLA.
        let new_agencies: Vec<AgencyRow> = match &finish {
            Some(f) => {
                let month = month_of(f.at_ms, offset);
                let mut rows = Vec::with_capacity(f.times.agencies.len());
                for (agency, ms) in &f.times.agencies {
                    let sla = self.agency_sla(db, service, agency.as_str())?;
                    rows.push((agency.clone(), month, *ms, sla));
                }
                rows
            }
            None => Vec::new(),
        };
        let old_agencies = if old_finished.is_some() { agency_rows(db, &id)? } else { Vec::new() };
        if old_agencies != new_agencies {
            for row in &old_agencies {
                self.rollups.agency(row, kelurahan, service, -1);
            }
            db.execute("DELETE FROM request_agency WHERE doc_id = ?", args![&id])?;
            for row in &new_agencies {
                let (agency, month, ms, sla) = row;
                db.execute(
                    "INSERT INTO request_agency (doc_id, agency, kelurahan, service, month, working_ms, sla_days)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
                    args![&id, agency.as_str(), kelurahan, service, *month, *ms, *sla],
                )?;
                self.rollups.agency(row, kelurahan, service, 1);
            }
        }

        // Ratings: the first one counts; a lower id arriving later replaces it.
        // A rating never changes in its document; the profile columns are set
        // again only where they differ (a row projected before they existed).
        let old_first = if is_new || view.ratings.is_empty() { None } else { first_rating(db, &id)? };
        for r in &view.ratings {
            let s = |i: usize| r.scores.get(Element::ALL[i]);
            let p = |d: Dimension| r.profile.code(d);
            db.execute(
                "INSERT INTO ratings (doc_id, rating_id, at_ms, u1, u2, u3, u4, u5, u6, u7, u8, u9, comment,
                                 age_band, sex, education, occupation)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (doc_id, rating_id) DO UPDATE SET
                 age_band = excluded.age_band, sex = excluded.sex, education = excluded.education,
                 occupation = excluded.occupation
             WHERE ratings.age_band IS DISTINCT FROM excluded.age_band OR ratings.sex IS DISTINCT FROM excluded.sex
                OR ratings.education IS DISTINCT FROM excluded.education
                OR ratings.occupation IS DISTINCT FROM excluded.occupation",
                args![
                    &id,
                    r.id.as_str(),
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
                    r.comment.as_deref(),
                    p(Dimension::Age),
                    p(Dimension::Sex),
                    p(Dimension::Education),
                    p(Dimension::Occupation)
                ],
            )?;
        }
        let new_first = if view.ratings.is_empty() { None } else { first_rating(db, &id)? };
        if old_first.as_ref().map(|r| &r.0) != new_first.as_ref().map(|r| &r.0) {
            if let Some((_, at, u, _)) = &old_first {
                let d = MonthlyDelta { respondents: -1, u: u.map(|x| -x), ..MonthlyDelta::default() };
                self.rollups.monthly(month_of(*at, offset), kelurahan, service, d);
            }
            if let Some((_, at, u, _)) = &new_first {
                let d = MonthlyDelta { respondents: 1, u: *u, ..MonthlyDelta::default() };
                self.rollups.monthly(month_of(*at, offset), kelurahan, service, d);
            }
        }
        // The first rating's profile, by the same difference.
        let profile_of = |f: &Option<FirstRating>| f.as_ref().map(|(id, at, _, p)| (id.clone(), *at, p.clone()));
        if profile_of(&old_first) != profile_of(&new_first) {
            if let Some((_, at, _, p)) = &old_first {
                self.rollups.skm_profile(month_of(*at, offset), kelurahan, p, -1);
            }
            if let Some((_, at, _, p)) = &new_first {
                self.rollups.skm_profile(month_of(*at, offset), kelurahan, p, 1);
            }
        }

        // Who of the staff acted on it: a row per NIP, rewritten whole.
        let mut staff: BTreeMap<&str, i64> = BTreeMap::new();
        for e in &derived.ordered {
            if e.kind != EventKind::Create && e.by != "citizen" && !e.by.contains(':') {
                let at = staff.entry(e.by.as_str()).or_insert(e.at_ms);
                *at = (*at).max(e.at_ms);
            }
        }
        // and `staff_monthly` moved by the difference.
        let new_staff: Vec<StaffRow> = if staff.is_empty() {
            Vec::new()
        } else {
            let within = self.within_sla(db, service, new_working)?;
            let (u6, u7) = match &new_first {
                Some((_, _, u, _)) => (Some(u[5]), Some(u[6])),
                None => (None, None),
            };
            staff
                .into_iter()
                .map(|(nip, last_at)| {
                    (nip.to_owned(), kelurahan.to_owned(), last_at, finished.is_some(), new_working, within, u6, u7)
                })
                .collect()
        };
        let old_staff = if is_new { Vec::new() } else { staff_rows(db, &id)? };
        if old_staff != new_staff {
            for row in &old_staff {
                let (key, c) = staff_contribution(row, offset);
                self.rollups.staff(&key, c, -1);
            }
            if !old_staff.is_empty() {
                db.execute("DELETE FROM request_staff WHERE doc_id = ?", args![&id])?;
            }
            for row in &new_staff {
                let (nip, kel, last_at, fin, working, within, u6, u7) = row;
                db.execute(
                "INSERT INTO request_staff (doc_id, nip, kelurahan, last_at_ms, finished, working_ms, within_sla, u6, u7)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                args![&id, nip.as_str(), kel.as_str(), *last_at, *fin, *working, *within, *u6, *u7],
            )?;
                let (key, c) = staff_contribution(row, offset);
                self.rollups.staff(&key, c, 1);
            }
        }
        Ok(())
    }
}

/// A request's event as its journey keeps it: `(at_ms, by_who, kind,
/// to_status, agency)`.
pub type EventRow = (i64, String, String, String, Option<String>);

fn event_row(e: &workflow::Event) -> EventRow {
    (e.at_ms, e.by.clone(), e.kind.as_str().to_owned(), e.to.as_str().to_owned(), e.agency.clone())
}

/// A request's events in causal order as its `requests.journey` column
/// keeps them (schema version 18; before, an `events` row each keyed by
/// the 36-character id and the kelurahan: 460 bytes a request, now about
/// 60). postcard: the format number, then per event its time after the
/// one before (the first: itself), who acted (`None`: the same as the
/// event before), the kind's index in [`EVENT_KINDS`], the status's
/// variant index in [`workflow::Status`], and the agency. A change of any
/// of these needs a new format number (the test
/// `journeys_are_packed_as_they_always_were` pins the bytes).
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PackedJourney {
    format: u8,
    events: Vec<PackedEvent>,
}

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct PackedEvent {
    after_ms: i64,
    by: Option<String>,
    kind: u8,
    to: workflow::Status,
    agency: Option<String>,
}

const JOURNEY_FORMAT: u8 = 1;
const EVENT_KINDS: [EventKind; 3] = [EventKind::Create, EventKind::Transition, EventKind::Resolve];

/// `events` packed for `requests.journey`. For the projection, and for
/// tools that write the projections directly.
pub fn pack_journey(events: &[EventRow]) -> Result<Vec<u8>, StoreError> {
    let mut packed = Vec::with_capacity(events.len());
    let (mut last_at, mut last_by) = (0i64, None::<&str>);
    for (at, by, kind, to, agency) in events {
        let kind = kind
            .parse::<EventKind>()
            .ok()
            .and_then(|k| EVENT_KINDS.iter().position(|x| *x == k))
            .ok_or_else(|| StoreError::Invalid(format!("an event's kind {kind:?} is not a kind")))?;
        let to = to.parse::<workflow::Status>().map_err(|_| StoreError::Invalid(format!("{to:?} is not a status")))?;
        packed.push(PackedEvent {
            after_ms: at - last_at,
            by: (last_by != Some(by.as_str())).then(|| by.clone()),
            kind: u8::try_from(kind).unwrap_or(u8::MAX),
            to,
            agency: agency.clone(),
        });
        (last_at, last_by) = (*at, Some(by.as_str()));
    }
    postcard::to_stdvec(&PackedJourney { format: JOURNEY_FORMAT, events: packed })
        .map_err(|e| StoreError::Invalid(format!("packing a journey: {e}")))
}

/// [`pack_journey`] read back (`None`: no journey, no events).
pub fn unpack_journey(doc_id: &str, blob: Option<&[u8]>) -> Result<Vec<EventRow>, StoreError> {
    let Some(blob) = blob else { return Ok(Vec::new()) };
    let packed: PackedJourney = unpack_column(doc_id, "journey", blob, JOURNEY_FORMAT, |p: &PackedJourney| p.format)?;
    let corrupt = |reason: String| StoreError::Corrupt { what: format!("requests.journey of {doc_id}"), reason };
    let mut out: Vec<EventRow> = Vec::with_capacity(packed.events.len());
    let mut at = 0i64;
    for e in packed.events {
        at = at.checked_add(e.after_ms).ok_or_else(|| corrupt("a time out of range".into()))?;
        let by = match (e.by, out.last()) {
            (Some(by), _) => by,
            (None, Some(before)) => before.1.clone(),
            (None, None) => return Err(corrupt("the first event names nobody".into())),
        };
        let kind = EVENT_KINDS.get(usize::from(e.kind)).ok_or_else(|| corrupt(format!("event kind {}", e.kind)))?;
        out.push((at, by, kind.as_str().to_owned(), e.to.as_str().to_owned(), e.agency));
    }
    Ok(out)
}

/// The agencies a journey handed the request to (`request_handoffs`,
/// which an agency's scope reads).
fn handoff_agencies(events: &[EventRow]) -> std::collections::BTreeSet<&str> {
    events.iter().filter(|e| e.3 == workflow::Status::HandedOff.as_str()).filter_map(|e| e.4.as_deref()).collect()
}

/// Moves `request_handoffs` from the agencies of the journey before to
/// those of the journey now.
fn record_handoffs(db: &mut dyn Sql, id: &str, old: &[EventRow], new: &[EventRow]) -> Result<(), StoreError> {
    let (old, new) = (handoff_agencies(old), handoff_agencies(new));
    for gone in old.difference(&new) {
        db.execute("DELETE FROM request_handoffs WHERE agency = ? AND doc_id = ?", args![*gone, id])?;
    }
    for added in new.difference(&old) {
        db.execute(
            "INSERT INTO request_handoffs (agency, doc_id) VALUES (?, ?) ON CONFLICT DO NOTHING",
            args![*added, id],
        )?;
    }
    Ok(())
}

/// A finished request as [`rebuild_request_steps`] reads it: `(doc,
/// service, created, finished, kelurahan)`.
type JourneyHead = (String, String, i64, i64, String);

/// Computes `requests.steps` and `step_hist` again for every finished
/// request from the projections (`requests`, `events`): at the first start
/// with the tables, and for tools that write the projections directly.
/// Reads a few thousand requests at a time (memory stays flat at a city's
/// size). Returns how many requests it measured.
pub fn rebuild_request_steps(db: &mut dyn Sql) -> Result<usize, StoreError> {
    const CHUNK: i64 = 2_000;
    db.batch("UPDATE requests SET steps = NULL WHERE steps IS NOT NULL; DELETE FROM step_hist;")?;
    let cals = Calendars::load(db)?;
    let offset = cals.offset;
    let mut hist: BTreeMap<(i64, String, String, String, i64), i64> = BTreeMap::new();
    let mut done = 0;
    let mut after = String::new();
    loop {
        let ids: Vec<String> = db
            .query(
                "SELECT doc_id FROM requests WHERE finished_at_ms IS NOT NULL AND doc_id > ? ORDER BY doc_id LIMIT ?",
                args![after.as_str(), CHUNK],
            )?
            .into_iter()
            .map(|r| r.get(0))
            .collect::<Result<_, _>>()?;
        let (Some(first), Some(last)) = (ids.first(), ids.last()) else { break };
        // (doc, service, created, finished) and events of each request, in
        // doc order, each one's events in causal order
        let mut journeys: Vec<(JourneyHead, Vec<JourneyEvent>)> = Vec::with_capacity(ids.len());
        db.query_each(
            "SELECT doc_id, service, created_at_ms, finished_at_ms, kelurahan, journey FROM requests
             WHERE finished_at_ms IS NOT NULL AND doc_id >= ? AND doc_id <= ?
             ORDER BY doc_id",
            args![first.as_str(), last.as_str()],
            &mut |r| {
                let doc: String = r.get(0)?;
                let journey = unpack_journey(&doc, r.get::<Option<Vec<u8>>>(5)?.as_deref())?;
                let events = journey
                    .into_iter()
                    .filter_map(|(at, _, _, to, agency)| Some((at, to.parse::<workflow::Status>().ok()?, agency)))
                    .collect();
                journeys.push(((doc, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?), events));
                Ok(())
            },
        )?;
        for ((doc, service, created, finished, kelurahan), events) in journeys {
            done += 1;
            let steps = cals.steps(&kelurahan, created, finished, &events);
            let rows = step_rows(&service, Some((finished, &steps[..])), offset);
            for (month, service, status, agency, bucket, _) in &rows {
                for period in period_levels(*month) {
                    let key = (period, service.clone(), status.clone(), agency.clone(), *bucket);
                    *hist.entry(key).or_default() += 1;
                }
            }
            if let Some(packed) = pack_steps(&rows)? {
                db.execute("UPDATE requests SET steps = ? WHERE doc_id = ?", args![packed, doc.as_str()])?;
            }
        }
        after = last.clone();
    }
    let mut hist_out = RowBatch::new(
        "INSERT INTO step_hist (month, service, status, agency, bucket, n) VALUES ",
        "(?, ?, ?, ?, ?, ?)",
    );
    for ((month, service, status, agency, bucket), n) in hist {
        hist_out.push(db, args![month, service, status, agency, bucket, n].iter().cloned())?;
    }
    hist_out.flush(db)?;
    Ok(done)
}

/// Computes the rollups schema version 3 adds, `journey_hist` from
/// `requests` and `staff_monthly` from `request_staff`, on a store that
/// has them. [`rebuild_rollups`] computes these with everything else.
pub fn rebuild_v3_rollups(db: &mut dyn Sql) -> Result<(), StoreError> {
    let offset = projection_offset(db)?;
    db.batch("DELETE FROM journey_hist; DELETE FROM staff_monthly;")?;
    let mut staff: BTreeMap<StaffKey, [i64; 5]> = BTreeMap::new();
    db.query_each(
        "SELECT nip, kelurahan, last_at_ms, finished, working_ms, within_sla, u6, u7 FROM request_staff",
        args![],
        &mut |r| {
            let row: StaffRow =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get(7)?);
            let (key, c) = staff_contribution(&row, offset);
            let sum = staff.entry(key).or_default();
            for (s, x) in sum.iter_mut().zip(c) {
                *s += x;
            }
            Ok(())
        },
    )?;
    write_staff_monthly(db, &staff)?;
    let mut journeys: BTreeMap<(i64, String, i64), i64> = BTreeMap::new();
    db.query_each(
        "SELECT kelurahan, finished_at_ms, working_ms FROM requests
         WHERE finished_at_ms IS NOT NULL AND working_ms IS NOT NULL",
        args![],
        &mut |r| {
            let (kel, at, working): (String, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            *journeys.entry((month_of(at, offset), kel, step_bucket(working))).or_default() += 1;
            Ok(())
        },
    )?;
    write_journey_hist(db, &journeys)
}

fn write_staff_monthly(db: &mut dyn Sql, staff: &BTreeMap<StaffKey, [i64; 5]>) -> Result<(), StoreError> {
    let mut out = RowBatch::new(
        "INSERT INTO staff_monthly (month, kelurahan, nip, bucket, handled, within_sla, rated, u6, u7) VALUES ",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    let mut levels: BTreeMap<StaffKey, [i64; 5]> = BTreeMap::new();
    for ((month, kel, nip, bucket), c) in staff {
        for period in period_levels(*month) {
            let sum = levels.entry((period, kel.clone(), nip.clone(), *bucket)).or_default();
            for (s, x) in sum.iter_mut().zip(c) {
                *s += x;
            }
        }
    }
    for ((month, kel, nip, bucket), c) in &levels {
        out.push(db, args![*month, kel, nip, *bucket, c[0], c[1], c[2], c[3], c[4]].iter().cloned())?;
    }
    out.flush(db)
}

fn write_journey_hist(db: &mut dyn Sql, journeys: &BTreeMap<(i64, String, i64), i64>) -> Result<(), StoreError> {
    let mut levels: BTreeMap<(i64, &str, i64), i64> = BTreeMap::new();
    for ((month, kel, bucket), n) in journeys {
        for period in period_levels(*month) {
            *levels.entry((period, kel.as_str(), *bucket)).or_default() += n;
        }
    }
    let mut out = RowBatch::new("INSERT INTO journey_hist (month, kelurahan, bucket, n) VALUES ", "(?, ?, ?, ?)");
    for ((month, kel, bucket), n) in levels {
        out.push(db, args![month, kel, bucket, n].iter().cloned())?;
    }
    out.flush(db)
}

/// Records each service's SLA, and each agency's for its part, for the
/// rollups (call when the catalog changes).
pub fn record_service_slas(db: &mut dyn Sql, catalog: &loket_shared::reference::Catalog) -> Result<(), StoreError> {
    for s in &catalog.services {
        db.execute(
            "INSERT INTO service_sla (code, sla_days) VALUES (?, ?)
             ON CONFLICT (code) DO UPDATE SET sla_days = excluded.sla_days",
            args![s.code.as_str(), i64::from(s.sla_days)],
        )?;
        db.execute("DELETE FROM agency_sla WHERE service = ?", args![s.code.as_str()])?;
        for (agency, days) in &s.handoff_sla_days {
            db.execute(
                "INSERT INTO agency_sla (service, agency, sla_days) VALUES (?, ?, ?)",
                args![s.code.as_str(), agency.as_str(), i64::from(*days)],
            )?;
        }
    }
    Ok(())
}

/// Keeps the calendar tables equal to the catalog: `holidays` (the days
/// offices are closed: holidays, and cuti bersama unless offices open on
/// them) and `service_hours` (the city's, `''`, and each kelurahan's own).
/// When they change, every finished or cancelled request whose working
/// time they touch is projected again from its document (the rollups
/// follow): a changed day, the requests whose span may cover it; changed
/// hours, the kelurahan's requests (every kelurahan's for the city's).
/// Returns how many requests were re-projected.
pub fn record_holidays(db: &mut dyn Sql, catalog: &loket_shared::reference::Catalog) -> Result<usize, StoreError> {
    use loket_shared::reference::ymd;
    // Days.
    let stored: std::collections::BTreeSet<String> =
        db.query("SELECT day FROM holidays", args![])?.into_iter().map(|r| r.get(0)).collect::<Result<_, _>>()?;
    let closed = catalog.holiday_set();
    let wanted: BTreeMap<String, &str> = catalog
        .holidays
        .iter()
        .filter(|h| closed.contains(h.date))
        .map(|h| (ymd::format(h.date), h.name.as_str()))
        .collect();
    let wanted_days: std::collections::BTreeSet<String> = wanted.keys().cloned().collect();
    let changed: Vec<time::Date> = stored.symmetric_difference(&wanted_days).filter_map(|d| ymd::parse(d)).collect();
    db.execute("DELETE FROM holidays", args![])?;
    for (day, name) in &wanted {
        db.execute("INSERT INTO holidays (day, name) VALUES (?, ?)", args![day.as_str(), *name])?;
    }
    // Hours.
    let stored_hours: BTreeMap<String, String> = db
        .query("SELECT kelurahan, spec FROM service_hours", args![])?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    let mut wanted_hours: BTreeMap<String, String> = BTreeMap::new();
    wanted_hours.insert(String::new(), catalog.service_hours.to_spec());
    for (k, h) in &catalog.kelurahan_hours {
        wanted_hours.insert(k.to_string(), h.to_spec());
    }
    // On a store that never recorded hours, the city default was in
    // force: not a change.
    let city_before =
        stored_hours.get("").cloned().unwrap_or_else(|| loket_shared::sla::ServiceHours::CITY_DEFAULT.to_spec());
    let city_changed = city_before != wanted_hours[""];
    let kelurahan_changed: std::collections::BTreeSet<String> = stored_hours
        .keys()
        .chain(wanted_hours.keys())
        .filter(|k| !k.is_empty() && stored_hours.get(*k) != wanted_hours.get(*k))
        .cloned()
        .collect();
    if stored_hours != wanted_hours {
        db.execute("DELETE FROM service_hours", args![])?;
        for (k, spec) in &wanted_hours {
            db.execute("INSERT INTO service_hours (kelurahan, spec) VALUES (?, ?)", args![k.as_str(), spec.as_str()])?;
        }
    }

    let mut ids: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    let ended = "(finished_at_ms IS NOT NULL OR cancelled_at_ms IS NOT NULL)";
    if let (Some(first), Some(last)) = (changed.iter().min(), changed.iter().max()) {
        // A day's local span lies within a day of its UTC midnight; kiosk
        // clocks that ran fast can make a stored filing time later than its
        // bounded start, hence a week of slack on that side.
        let midnight = |d: time::Date| d.midnight().assume_utc().unix_timestamp() * 1000;
        let (lo, hi) = (midnight(*first) - DAY_MS, midnight(*last) + 2 * DAY_MS);
        for r in db.query(
            &format!("SELECT doc_id FROM requests WHERE {ended} AND coalesce(finished_at_ms, cancelled_at_ms) >= ? AND created_at_ms < ?"),
            args![lo, hi + 7 * DAY_MS],
        )? {
            ids.insert(r.get(0)?);
        }
    }
    if city_changed {
        // Every kelurahan without hours of its own, and the agencies (which
        // keep the city's hours): every ended request.
        for r in db.query(&format!("SELECT doc_id FROM requests WHERE {ended}"), args![])? {
            ids.insert(r.get(0)?);
        }
    } else {
        for k in &kelurahan_changed {
            for r in
                db.query(&format!("SELECT doc_id FROM requests WHERE {ended} AND kelurahan = ?"), args![k.as_str()])?
            {
                ids.insert(r.get(0)?);
            }
        }
    }
    let mut projector = Projector::default();
    for id in &ids {
        reproject_one(db, &mut projector, id, "calendar")?;
    }
    projector.finish(db)?;
    if !changed.is_empty() || stored_hours != wanted_hours {
        // Complaints' deadlines are counted in the same working days.
        super::complaints::refresh_due(db)?;
    }
    if !ids.is_empty() || !changed.is_empty() || stored_hours != wanted_hours {
        tracing::info!(
            changed_days = changed.len(),
            hours_changed = stored_hours != wanted_hours,
            requests = ids.len(),
            "calendar changed; working times re-projected"
        );
    }
    Ok(ids.len())
}

/// Projects one request again from its document; `false` if it could not
/// be read (logged, skipped: one bad document stops nothing else).
fn reproject_one(db: &mut dyn Sql, projector: &mut Projector, id: &str, why: &str) -> Result<bool, StoreError> {
    let stored = match docs::load(db, id) {
        Ok(Some(stored)) => stored,
        Ok(None) => return Ok(false),
        Err(StoreError::Corrupt { reason, .. }) => {
            tracing::warn!(doc = %id, error = %reason, why, "unreadable request not re-projected");
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    match docs::read_request(&stored.doc) {
        Ok((view, derived)) => {
            projector.request(db, &view, &derived)?;
            Ok(true)
        }
        Err(e) => {
            tracing::warn!(doc = %id, error = %e, why, "unreadable request not re-projected");
            Ok(false)
        }
    }
}

/// Projects every request again from its document, inside the caller's
/// transaction (a migration that changes what the projections mean).
/// Returns how many were projected.
pub fn reproject_all_in(db: &mut dyn Sql) -> Result<usize, StoreError> {
    let ids = docs::request_ids(db)?;
    let mut done = 0;
    let mut projector = Projector::default();
    for id in &ids {
        done += usize::from(reproject_one(db, &mut projector, id, "migration")?);
    }
    projector.finish(db)?;
    Ok(done)
}

/// The holidays working time skips (the `holidays` table).
pub fn projection_holidays(db: &mut dyn Sql) -> Result<loket_shared::sla::Holidays, StoreError> {
    let days: Vec<String> =
        db.query("SELECT day FROM holidays", args![])?.into_iter().map(|r| r.get(0)).collect::<Result<_, _>>()?;
    Ok(loket_shared::sla::Holidays::new(days.iter().filter_map(|d| loket_shared::reference::ymd::parse(d)).collect()))
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
    let ids = db.read(docs::request_ids)?;
    let (mut done, mut skipped) = (0, 0);
    for chunk in ids.chunks(batch.max(1)) {
        let (d, s) = db.write(|tx| -> Result<(usize, usize), StoreError> {
            let (mut d, mut s) = (0, 0);
            let mut projector = Projector::default();
            for id in chunk {
                if reproject_one(tx, &mut projector, id, "reproject")? {
                    d += 1;
                } else {
                    s += 1;
                }
            }
            projector.finish(tx)?;
            Ok((d, s))
        })?;
        done += d;
        skipped += s;
        progress(done);
    }
    Ok((done, skipped))
}

/// Computes every rollup again from the projections (`requests`,
/// `events`, `ratings`): `monthly`, `skm_profile`, `daily_filed`, `request_staff`,
/// `request_steps` and `step_hist`. What [`project_request`] keeps up by
/// difference equals what this computes from scratch (a store test checks
/// it); tools that write projections directly (the page benchmark, a
/// store copied between engines) call this once. Returns how many
/// requests it read.
pub fn rebuild_rollups(db: &mut dyn Sql) -> Result<usize, StoreError> {
    let offset = projection_offset(db)?;
    let sla: std::collections::HashMap<String, i64> = db
        .query("SELECT code, sla_days FROM service_sla", args![])?
        .into_iter()
        .map(|r| Ok((r.get(0)?, r.get::<i64>(1)? * DAY_MS)))
        .collect::<Result<_, StoreError>>()?;
    let within =
        |service: &str, working: Option<i64>| working.is_some_and(|w| sla.get(service).is_some_and(|s| w <= *s));
    db.batch(
        "DELETE FROM monthly; DELETE FROM daily_filed; DELETE FROM request_staff; DELETE FROM journey_hist;
         DELETE FROM staff_monthly; DELETE FROM skm_profile;",
    )?;

    let mut monthly: BTreeMap<(i64, String, String), MonthlyDelta> = BTreeMap::new();
    let mut daily: BTreeMap<(i64, String), i64> = BTreeMap::new();
    let mut journeys: BTreeMap<(i64, String, i64), i64> = BTreeMap::new();
    let mut requests = 0usize;
    db.query_each(
        "SELECT kelurahan, service, created_at_ms, finished_at_ms, working_ms, status, cancelled_at_ms FROM requests",
        args![],
        &mut |r| {
            requests += 1;
            let (kel, service, created): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let (finished, working): (Option<i64>, Option<i64>) = (r.get(3)?, r.get(4)?);
            let (status, cancelled): (String, Option<i64>) = (r.get(5)?, r.get(6)?);
            if let Some(at) = cancelled {
                monthly.entry((month_of(at, offset), kel.clone(), service.clone())).or_default().cancelled += 1;
            }
            monthly.entry((month_of(created, offset), kel.clone(), service.clone())).or_default().filed += 1;
            *daily.entry((day_of(created, offset), kel.clone())).or_default() += 1;
            if let Some(at) = finished {
                if let Some(w) = working {
                    *journeys.entry((month_of(at, offset), kel.clone(), step_bucket(w))).or_default() += 1;
                }
                let m = monthly.entry((month_of(at, offset), kel, service.clone())).or_default();
                m.finished += 1;
                m.within_sla += i64::from(within(&service, working));
                m.rejected += i64::from(status == workflow::Status::Rejected.as_str());
            }
            Ok(())
        },
    )?;
    // The first rating of each request (lowest id).
    let mut first_u: std::collections::HashMap<String, (i64, i64)> = std::collections::HashMap::new();
    let mut profiles: BTreeMap<(i64, String, &'static str, String), i64> = BTreeMap::new();
    db.query_each(
        "SELECT r.doc_id, q.kelurahan, r.at_ms, r.u1, r.u2, r.u3, r.u4, r.u5, r.u6, r.u7, r.u8, r.u9, q.service,
                r.age_band, r.sex, r.education, r.occupation
         FROM ratings r JOIN requests q ON q.doc_id = r.doc_id
         WHERE r.rating_id = (SELECT min(r2.rating_id) FROM ratings r2 WHERE r2.doc_id = r.doc_id)",
        args![],
        &mut |r| {
            let (doc, kel, at): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let mut u = [0i64; 9];
            for (i, slot) in u.iter_mut().enumerate() {
                *slot = r.get(3 + i)?;
            }
            let service: String = r.get(12)?;
            for (i, (d, _)) in PROFILE_COLUMNS.iter().enumerate() {
                if let Some(code) = r.get::<Option<String>>(13 + i)? {
                    *profiles.entry((month_of(at, offset), kel.clone(), d.key(), code)).or_default() += 1;
                }
            }
            let m = monthly.entry((month_of(at, offset), kel, service)).or_default();
            m.respondents += 1;
            for (sum, x) in m.u.iter_mut().zip(u) {
                *sum += x;
            }
            first_u.insert(doc, (u[5], u[6]));
            Ok(())
        },
    )?;
    let mut out = RowBatch::new(
        "INSERT INTO monthly (month, kelurahan, service, filed, finished, within_sla, respondents,
                              u1, u2, u3, u4, u5, u6, u7, u8, u9, rejected, cancelled) VALUES ",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    for ((month, kel, service), d) in &monthly {
        let row = args![*month, kel, service, d.filed, d.finished, d.within_sla, d.respondents];
        let tail = args![d.rejected, d.cancelled];
        out.push(
            db,
            row.iter()
                .chain(d.u.iter().map(|x| Value::from(*x)).collect::<Vec<_>>().iter())
                .chain(tail.iter())
                .cloned(),
        )?;
    }
    out.flush(db)?;
    let mut out =
        RowBatch::new("INSERT INTO skm_profile (month, kelurahan, dimension, code, n) VALUES ", "(?, ?, ?, ?, ?)");
    for ((month, kel, dimension, code), n) in &profiles {
        out.push(db, args![*month, kel, *dimension, code, *n].iter().cloned())?;
    }
    out.flush(db)?;
    // Each agency's part of the finished requests (`request_agency`).
    db.execute("DELETE FROM agency_monthly", args![])?;
    let mut agencies: BTreeMap<(i64, String, String, String), [i64; 4]> = BTreeMap::new();
    db.query_each(
        "SELECT agency, kelurahan, service, month, working_ms, sla_days FROM request_agency",
        args![],
        &mut |r| {
            let (agency, kel, service, month, ms, sla): (String, String, String, i64, i64, Option<i64>) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?);
            let sum = agencies.entry((month, agency, kel, service)).or_default();
            sum[0] += 1;
            sum[1] += i64::from(sla.is_some());
            sum[2] += i64::from(sla.is_some_and(|d| ms <= d * DAY_MS));
            sum[3] += ms;
            Ok(())
        },
    )?;
    let mut out = RowBatch::new(
        "INSERT INTO agency_monthly (month, agency, kelurahan, service, finished, judged, within_sla, working_ms) VALUES ",
        "(?, ?, ?, ?, ?, ?, ?, ?)",
    );
    for ((month, agency, kel, service), c) in &agencies {
        out.push(db, args![*month, agency, kel, service, c[0], c[1], c[2], c[3]].iter().cloned())?;
    }
    out.flush(db)?;
    let mut out = RowBatch::new("INSERT INTO daily_filed (day, kelurahan, filed) VALUES ", "(?, ?, ?)");
    for ((day, kel), n) in &daily {
        out.push(db, args![*day, kel, *n].iter().cloned())?;
    }
    out.flush(db)?;
    write_journey_hist(db, &journeys)?;
    // Who of the staff acted on each request, the last time.
    let mut staff = Vec::new();
    db.query_each(
        "SELECT doc_id, kelurahan, service, finished_at_ms, working_ms, journey FROM requests",
        args![],
        &mut |r| {
            let doc: String = r.get(0)?;
            let (kel, service, finished, working): (String, String, Option<i64>, Option<i64>) =
                (r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            let mut last: BTreeMap<String, i64> = BTreeMap::new();
            for (at, by, kind, _, _) in unpack_journey(&doc, r.get::<Option<Vec<u8>>>(5)?.as_deref())? {
                if kind != EventKind::Create.as_str() && by != "citizen" && !by.contains(':') {
                    let at_most = last.entry(by).or_insert(at);
                    *at_most = (*at_most).max(at);
                }
            }
            for (nip, at) in last {
                staff.push((doc.clone(), nip, kel.clone(), at, Some(service.clone()), finished, working));
            }
            Ok(())
        },
    )?;
    let mut out = RowBatch::new(
        "INSERT INTO request_staff (doc_id, nip, kelurahan, last_at_ms, finished, working_ms, within_sla, u6, u7)
         VALUES ",
        "(?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    let mut staff_monthly: BTreeMap<StaffKey, [i64; 5]> = BTreeMap::new();
    for (doc, nip, kel, last_at, service, finished, working) in staff {
        let (u6, u7) = first_u.get(&doc).map_or((None, None), |(a, b)| (Some(*a), Some(*b)));
        let within = service.as_deref().is_some_and(|s| within(s, working));
        let row = args![doc.as_str(), nip.as_str(), kel.as_str(), last_at, finished.is_some(), working, within, u6, u7];
        out.push(db, row.iter().cloned())?;
        let (key, c) = staff_contribution(&(nip, kel, last_at, finished.is_some(), working, within, u6, u7), offset);
        let sum = staff_monthly.entry(key).or_default();
        for (s, x) in sum.iter_mut().zip(c) {
            *s += x;
        }
    }
    out.flush(db)?;
    write_staff_monthly(db, &staff_monthly)?;
    rebuild_request_steps(db)?;
    Ok(requests)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<StepRow> {
        vec![
            (202612, "SKD".into(), "submitted".into(), String::new(), 0, 30_000),
            (202612, "SKD".into(), "handed_off".into(), "disdukcapil".into(), step_bucket(7_200_000), 7_200_000),
            (202612, "SKD".into(), "in_progress".into(), String::new(), step_bucket(600_000), 600_000),
        ]
    }

    /// The bytes of `requests.steps` are what stores hold: a change of the
    /// format (a reordered `Status`, another field) must be a new format
    /// number, or stored steps would be read as other steps.
    #[test]
    fn steps_are_packed_as_they_always_were() {
        let packed = pack_steps(&rows()).unwrap().unwrap();
        assert_eq!(
            hex::encode(&packed),
            "01e8dd1803534b44030000e0d4030003010b64697364756b\
             636170696c80f4ee06e4030100809f49ea01"
        );
        assert_eq!(unpack_steps("r", Some(&packed)).unwrap(), rows());
        assert_eq!(pack_steps(&[]).unwrap(), None);
        assert_eq!(unpack_steps("r", None).unwrap(), vec![]);
    }

    fn journey() -> Vec<EventRow> {
        let t = 1_796_467_524_859;
        vec![
            (t, "citizen".into(), "create".into(), "submitted".into(), None),
            (t + 13, "198503122010011002".into(), "transition".into(), "in_progress".into(), None),
            (
                t + 900_000,
                "198503122010011002".into(),
                "transition".into(),
                "handed_off".into(),
                Some("dukcapil".into()),
            ),
            (t + 1_000, "agency:dukcapil:rina".into(), "resolve".into(), "completed".into(), None),
        ]
    }

    /// The bytes of `requests.journey`, pinned as the steps' are.
    #[test]
    fn journeys_are_packed_as_they_always_were() {
        let packed = pack_journey(&journey()).unwrap();
        assert_eq!(
            hex::encode(&packed),
            "0104f693f8dcc8680107636974697a656e0000001a01123139383530333132323031303031313030320101\
             00a6ee6d000103010864756b636170696cefde6d01146167656e63793a64756b636170696c3a72696e61020400"
        );
        assert_eq!(unpack_journey("r", Some(&packed)).unwrap(), journey());
        assert_eq!(unpack_journey("r", None).unwrap(), vec![]);
        assert_eq!(handoff_agencies(&journey()).into_iter().collect::<Vec<_>>(), ["dukcapil"]);
    }

    #[test]
    fn journeys_damaged_or_of_another_format_are_refused_not_misread() {
        let packed = pack_journey(&journey()).unwrap();
        let mut other = packed.clone();
        other[0] = 2;
        assert!(unpack_journey("r", Some(&other)).unwrap_err().to_string().contains("format 2"));
        assert!(matches!(unpack_journey("r", Some(&packed[..packed.len() - 2])), Err(StoreError::Corrupt { .. })));
        let mut bad = journey();
        bad[1].3 = "lost".into();
        assert!(pack_journey(&bad).is_err(), "a status this build does not know is not packed");
        // A first event naming nobody (its `by` left out) is refused.
        let nobody = postcard::to_stdvec(&PackedJourney {
            format: JOURNEY_FORMAT,
            events: vec![PackedEvent { after_ms: 1, by: None, kind: 0, to: workflow::Status::Submitted, agency: None }],
        })
        .unwrap();
        assert!(unpack_journey("r", Some(&nobody)).is_err());
    }

    /// What the row keeps shows as the masks always did, and the masks
    /// of rows from before version 22 show unchanged.
    #[test]
    fn masked_nik_and_name_are_kept_short_and_shown_as_before() {
        let nik: loket_shared::Nik = "1271010101900003".parse().unwrap();
        let name: loket_shared::PersonName = "Siti Aminah Nasution".parse().unwrap();
        let (kept_nik, kept_name) = (nik_shown(&nik.masked()), name_initials(&name.masked()));
        assert_eq!((kept_nik.as_str(), kept_name.as_str()), ("1271010003", "SAN"));
        assert_eq!(mask_nik(&kept_nik), nik.masked());
        assert_eq!(mask_name(&kept_name), name.masked());
        assert_eq!(mask_nik("127101••••••0003"), "127101••••••0003");
        assert_eq!(mask_name("S*** A***"), "S*** A***");
    }

    #[test]
    fn steps_of_another_format_or_damaged_are_refused_not_misread() {
        let mut packed = pack_steps(&rows()).unwrap().unwrap();
        packed[0] = 2;
        let e = unpack_steps("r", Some(&packed)).unwrap_err();
        assert!(e.to_string().contains("format 2"), "{e}");
        let cut = pack_steps(&rows()).unwrap().unwrap();
        assert!(matches!(unpack_steps("r", Some(&cut[..cut.len() - 3])), Err(StoreError::Corrupt { .. })));
        // Steps of two months cannot be packed as one request's.
        let mut two = rows();
        two[1].0 = 202611;
        assert!(pack_steps(&two).is_err());
    }
}
