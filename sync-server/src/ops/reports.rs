//! The figures the central pages and the admin API show: request lists,
//! IKM per group, the service overview, where time is lost, staff work,
//! trainings and exports. The rows come from `store::reports`; what they
//! mean (IKM and its sample size, SLA shares, journeys' step times) is
//! computed here.

use std::collections::{BTreeMap, HashMap};

use loket_shared::Status;
use loket_shared::reference;
use loket_shared::skm::{Tally, krejcie_morgan_min_sample};

use super::auth::{Role, User};
use super::{OpError, read, write};
use crate::store::projection::{self, JourneyEvent};
use crate::store::reports::{self as q, Scope};
use crate::store::{Db, docs, now_ms};

pub use crate::store::reports::{ExportRow, GroupBy as IkmKey, ListRow, RequestFilter};

/// What a user may see of the requests: admins everything, a supervisor
/// their kelurahan, an agency what was handed to it.
pub fn scope(user: &User) -> Scope {
    match user.role {
        Role::Admin => Scope::All,
        Role::Supervisor => match &user.kelurahan {
            Some(k) => Scope::Kelurahan(k.to_string()),
            None => Scope::All,
        },
        Role::Agency => Scope::Agency(user.agency.clone().unwrap_or_default()),
    }
}

/// Whether the user sees the whole city (no kelurahan or agency scope):
/// city-wide pages can then read rollups kept for the whole city.
pub fn city_wide(user: &User) -> bool {
    scope(user).is_all()
}

/// Whether the rollups can answer for this user (they are per kelurahan;
/// an agency's scope is per request, so it reads the projections).
pub fn rollups_serve(user: &User) -> bool {
    user.role != Role::Agency
}

/// Requests newest first, within the user's scope; one more than
/// `limit` if there are more.
pub async fn query_requests(db: &Db, user: &User, f: RequestFilter) -> Result<Vec<ListRow>, OpError> {
    let scope = scope(user);
    read(db, move |c| Ok(q::requests(c, &scope, &f)?)).await
}

impl IkmKey {
    pub fn parse(s: &str) -> Option<IkmKey> {
        match s {
            "kelurahan" => Some(IkmKey::Kelurahan),
            "kecamatan" => Some(IkmKey::Kecamatan),
            "service" => Some(IkmKey::Service),
            "month" => Some(IkmKey::Month),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ IKM

/// One group's figures.
#[derive(Debug, Clone)]
pub struct IkmGroup {
    pub key: String,
    pub tally: Tally,
    /// Requests filed in the group and period (never fewer than respondents).
    pub service_users: u64,
    pub sample_min: u64,
}

impl IkmGroup {
    fn new(key: String, tally: Tally, filed: u64) -> IkmGroup {
        let service_users = filed.max(tally.respondents);
        IkmGroup { key, tally, service_users, sample_min: krejcie_morgan_min_sample(service_users) }
    }

    pub fn sufficient(&self) -> bool {
        self.tally.respondents >= self.sample_min && self.tally.respondents > 0
    }
}

fn tally((respondents, sums): q::RatingSums) -> Tally {
    Tally { respondents, sums }
}

/// IKM per group over ratings with `from <= at < to` (a request's first
/// rating only), within the user's scope. Groups with service users but
/// no respondents are included (zero respondents, no IKM).
pub async fn ikm_groups(
    db: &Db,
    user: &User,
    offset: time::UtcOffset,
    (from, to): (i64, i64),
    key: IkmKey,
) -> Result<Vec<IkmGroup>, OpError> {
    let scope = scope(user);
    let (tallies, users) =
        read(db, move |c| Ok(q::ikm_sums(c, &scope, from, to, key, offset.whole_seconds())?)).await?;
    let keys: std::collections::BTreeSet<&String> = tallies.keys().chain(users.keys()).collect();
    Ok(keys
        .into_iter()
        .map(|k| {
            let t = tallies.get(k).copied().map(tally).unwrap_or_default();
            IkmGroup::new(k.clone(), t, users.get(k).copied().unwrap_or(0))
        })
        .collect())
}

/// IKM groups from the monthly rollup (months `yyyymm`, inclusive).
pub async fn ikm_rollup(db: &Db, user: &User, months: (i64, i64), key: IkmKey) -> Result<Vec<IkmGroup>, OpError> {
    let scope = scope(user);
    let rows = read(db, move |c| Ok(q::ikm_rollup(c, &scope, months, key)?)).await?;
    Ok(rows.into_iter().map(|(key, filed, sums)| IkmGroup::new(key, tally(sums), filed)).collect())
}

/// The latest comments with ratings given in `[from, to)`, within scope.
pub async fn ikm_comments(
    db: &Db,
    user: &User,
    from: i64,
    to: i64,
    limit: u32,
) -> Result<Vec<(i64, String, String)>, OpError> {
    let scope = scope(user);
    read(db, move |c| Ok(q::ikm_comments(c, &scope, from, to, limit)?)).await
}

// ------------------------------------------------------------------ overview

/// One group's service figures for the overview.
#[derive(Debug, Clone, Default)]
pub struct OverviewGroup {
    pub key: String,
    /// Filed in the period.
    pub filed: u64,
    /// Finished in the period, and of those within their SLA.
    pub finished: u64,
    pub within_sla: u64,
    /// Open now (neither finished nor cancelled, or in conflict), and in
    /// conflict now.
    pub open: u64,
    pub conflicts: u64,
    /// Of the finished, how many were rejected (the rest completed).
    pub rejected: u64,
    /// Cancelled in the period: not finished, outside the SLA share.
    pub cancelled: u64,
}

impl OverviewGroup {
    fn of(
        (key, filed, finished, within_sla, open, conflicts, rejected, cancelled): q::OverviewCounts,
    ) -> OverviewGroup {
        OverviewGroup { key, filed, finished, within_sla, open, conflicts, rejected, cancelled }
    }

    pub fn merge(&mut self, o: &OverviewGroup) {
        self.filed += o.filed;
        self.finished += o.finished;
        self.within_sla += o.within_sla;
        self.open += o.open;
        self.conflicts += o.conflicts;
        self.rejected += o.rejected;
        self.cancelled += o.cancelled;
    }

    /// Share finished within the SLA, in percent with one decimal.
    #[allow(clippy::cast_precision_loss)]
    pub fn sla_percent(&self) -> Option<f64> {
        (self.finished > 0).then(|| (self.within_sla as f64 * 1000.0 / self.finished as f64).round() / 10.0)
    }
}

/// Service figures per kelurahan or kecamatan for `[from, to)`, within the
/// user's scope. SLA: the catalog's working days of each service, against
/// the projected working time (`requests.working_ms`).
pub async fn overview_groups(
    db: &Db,
    user: &User,
    from: i64,
    to: i64,
    key: IkmKey,
    catalog: &reference::Catalog,
) -> Result<Vec<OverviewGroup>, OpError> {
    let scope = scope(user);
    let sla: Vec<(String, i64)> =
        catalog.services.iter().map(|s| (s.code.to_string(), i64::from(s.sla_days) * 86_400_000)).collect();
    let by_kecamatan = key == IkmKey::Kecamatan;
    let rows = read(db, move |c| Ok(q::overview(c, &scope, from, to, by_kecamatan, &sla)?)).await?;
    Ok(rows.into_iter().map(OverviewGroup::of).collect())
}

/// An agency's part of the finished requests in a period, against its
/// own SLA.
#[derive(Debug, Clone)]
pub struct AgencyGroup {
    pub agency: String,
    pub finished: u64,
    /// How many of them the catalog gives the agency an SLA for.
    pub judged: u64,
    pub within_sla: u64,
    pub working_ms: i64,
}

impl AgencyGroup {
    /// Share of the judged ones within the agency's SLA, percent.
    #[allow(clippy::cast_precision_loss)]
    pub fn sla_percent(&self) -> Option<f64> {
        (self.judged > 0).then(|| (self.within_sla as f64 * 1000.0 / self.judged as f64).round() / 10.0)
    }

    /// Mean working time at the agency.
    pub fn mean_ms(&self) -> Option<i64> {
        (self.finished > 0).then(|| self.working_ms / i64::try_from(self.finished).unwrap_or(i64::MAX))
    }
}

/// Each agency's part of the requests finished in months `[first, last]`
/// (`agency_monthly`), within the user's scope.
pub async fn agency_groups(db: &Db, user: &User, months: (i64, i64)) -> Result<Vec<AgencyGroup>, OpError> {
    let scope = scope(user);
    let rows = read(db, move |c| Ok(q::agency_overview(c, &scope, months)?)).await?;
    Ok(rows
        .into_iter()
        .map(|(agency, finished, judged, within_sla, working_ms)| AgencyGroup {
            agency,
            finished,
            judged,
            within_sla,
            working_ms,
        })
        .collect())
}

/// A request's service time by party (the caller has checked the user
/// may see the request).
pub async fn service_times(db: &Db, doc_id: String) -> Result<Option<q::ServiceTimes>, OpError> {
    read(db, move |c| Ok(q::service_times(c, &doc_id)?)).await
}

/// The overview from the monthly rollup (months `yyyymm`, inclusive) plus
/// the current open and conflict counts.
pub async fn overview_rollup(
    db: &Db,
    user: &User,
    months: (i64, i64),
    key: IkmKey,
) -> Result<Vec<OverviewGroup>, OpError> {
    let scope = scope(user);
    let by_kecamatan = key == IkmKey::Kecamatan;
    let rows = read(db, move |c| Ok(q::overview_rollup(c, &scope, months, by_kecamatan)?)).await?;
    Ok(rows.into_iter().map(OverviewGroup::of).collect())
}

/// Requests filed per local day in `[from, to)`, within scope.
pub async fn filed_per_day(
    db: &Db,
    user: &User,
    offset: time::UtcOffset,
    from: i64,
    to: i64,
) -> Result<Vec<(i64, u64)>, OpError> {
    let scope = scope(user);
    let offset_ms = i64::from(offset.whole_seconds()) * 1000;
    read(db, move |c| Ok(q::filed_per_day(c, &scope, from, to, offset_ms)?)).await
}

/// Requests filed per local day (days since 1970-01-01, inclusive range).
pub async fn filed_per_day_rollup(db: &Db, user: &User, days: (i64, i64)) -> Result<Vec<(i64, u64)>, OpError> {
    let scope = scope(user);
    read(db, move |c| Ok(q::filed_per_day_rollup(c, &scope, days)?)).await
}

// ------------------------------------------------------------------ where time is lost

/// One finished request's steps: working time spent in each status, in
/// the order the workflow went, with the agency for hand-offs.
#[derive(Debug, Clone)]
pub struct Journey {
    pub doc_id: String,
    pub ticket: String,
    pub kelurahan: String,
    pub service: String,
    pub working_ms: i64,
    /// `(status, agency, working ms)` per step.
    pub steps: Vec<(Status, Option<String>, i64)>,
}

/// The city's "where time is lost" figures for a period, from the
/// rollups: step-time histograms (`step_hist`) and whole journeys'
/// working times per kelurahan (`journey_hist`), both per month, the
/// breaches counted per month (`monthly`) and the largest overruns with
/// their longest step (`request_steps`), so a year costs what a month
/// does. The download of every breach (`breaches_max` `None`) reads every
/// finished request of the period instead.
pub struct TimeLostCity {
    /// `(service, status, agency or "", representative ms, how many)`.
    pub steps: Vec<(String, String, String, i64, u64)>,
    /// Whole journeys' working times by kelurahan, as `(ms, how many)`
    /// runs (histogram buckets, within 1 %).
    pub journeys: BTreeMap<String, Vec<(i64, u64)>>,
    pub finished: usize,
    /// How many finished later than their SLA.
    pub breach_count: usize,
    /// Those with the largest overrun first (at most `breaches_max`).
    pub breaches: Vec<CityBreach>,
}

pub struct CityBreach {
    pub ticket: String,
    pub doc_id: String,
    pub kelurahan: String,
    pub service: String,
    pub working_ms: i64,
    pub sla_ms: i64,
    pub longest: (Status, Option<String>, i64),
}

pub async fn time_lost_city(
    db: &Db,
    months: (i64, i64),
    (from, to): (i64, i64),
    breaches_max: Option<usize>,
) -> Result<TimeLostCity, OpError> {
    read(db, move |c| {
        let steps = q::step_histogram(c, months)?
            .into_iter()
            .map(|(service, status, agency, bucket, n)| (service, status, agency, projection::bucket_ms(bucket), n))
            .collect();
        let mut journeys: BTreeMap<String, Vec<(i64, u64)>> = BTreeMap::new();
        let mut finished = 0;
        for (kelurahan, bucket, n) in q::journey_histogram(c, months)? {
            finished += usize::try_from(n).unwrap_or(usize::MAX);
            journeys.entry(kelurahan).or_default().push((projection::bucket_ms(bucket), n));
        }
        let sla: HashMap<String, i64> = q::service_sla_ms(c)?;
        let (breach_count, worst) = match breaches_max {
            Some(n) => {
                let count = usize::try_from(q::breach_count(c, months)?).unwrap_or(usize::MAX);
                (count, q::worst_breaches(c, &sla, (from, to), n)?.into_iter().map(|b| b.1).collect())
            }
            None => {
                // Every breach: one pass over the period's finished
                // requests (a covering index).
                let mut all: Vec<(i64, String)> = Vec::new();
                q::finished_between(c, from, to, &mut |_, service, working, doc_id| {
                    if let Some(&sla_ms) = sla.get(&service)
                        && working > sla_ms
                    {
                        all.push((working - sla_ms, doc_id));
                    }
                })?;
                all.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
                (all.len(), all.into_iter().map(|b| b.1).collect::<Vec<String>>())
            }
        };
        let mut breaches = Vec::with_capacity(worst.len());
        for doc_id in worst {
            let Some((ticket, kelurahan, service, working_ms)) = q::request_summary(c, &doc_id)? else { continue };
            let step = q::longest_step(c, &doc_id)?;
            breaches.push(CityBreach {
                ticket,
                doc_id,
                kelurahan,
                sla_ms: sla.get(&service).copied().unwrap_or(0),
                service,
                working_ms,
                longest: match step {
                    Some((status, agency, ms)) => {
                        (status.parse().unwrap_or(Status::Submitted), Some(agency).filter(|a| !a.is_empty()), ms)
                    }
                    None => (Status::Submitted, None, 0),
                },
            });
        }
        Ok(TimeLostCity { steps, journeys, finished, breach_count, breaches })
    })
    .await
}

/// Folds `visit` over the journeys of every request finished in
/// `[from, to)` within scope, one at a time, so a city's year of journeys
/// is never held in memory at once; returns the accumulator. Event times
/// are taken in causal (HLC) order and never go backwards, never before
/// filing and never after the finish, so a kiosk clock days off shifts time
/// between steps but cannot invent any.
pub async fn fold_journeys<A: Send + 'static>(
    db: &Db,
    user: &User,
    (from, to): (i64, i64),
    init: A,
    mut visit: impl FnMut(&mut A, &Journey) + Send + 'static,
) -> Result<A, OpError> {
    let scope = scope(user);
    read(db, move |c| {
        let cals = projection::Calendars::load(c)?;
        let mut acc = init;
        let mut journey: Option<(Journey, i64, i64)> = None;
        let mut events: Vec<JourneyEvent> = Vec::new();
        let mut finish = |acc: &mut A, j: Option<(Journey, i64, i64)>, events: &mut Vec<JourneyEvent>| {
            if let Some((mut j, created, finished)) = j {
                j.steps = cals
                    .steps(&j.kelurahan, created, finished, events)
                    .into_iter()
                    .map(|s| (s.status, s.agency, s.working_ms))
                    .collect();
                visit(acc, &j);
            }
            events.clear();
        };
        q::journey_rows(c, &scope, from, to, &mut |row| {
            let (doc_id, ticket, kelurahan, service, created, finished, working, at, status, agency) = row;
            if journey.as_ref().is_none_or(|(j, _, _)| j.doc_id != doc_id) {
                finish(&mut acc, journey.take(), &mut events);
                let finished = finished.unwrap_or(created);
                let j =
                    Journey { doc_id, ticket, kelurahan, service, working_ms: working.unwrap_or(0), steps: Vec::new() };
                journey = Some((j, created, finished));
            }
            if let Ok(status) = status.parse::<Status>() {
                events.push((at, status, agency));
            }
        })?;
        finish(&mut acc, journey.take(), &mut events);
        Ok(acc)
    })
    .await
}

// ------------------------------------------------------------------ staff competency

/// A staff member of a kelurahan roster.
#[derive(Debug, Clone)]
pub struct StaffRow {
    pub nip: String,
    pub name: String,
    pub kelurahan: String,
    pub role: reference::StaffRole,
    pub kind: loket_shared::StaffKind,
    pub active: bool,
}

/// Every kelurahan roster's staff (supervisors: their kelurahan only).
pub async fn staff_register(db: &Db, user: &User) -> Result<Vec<StaffRow>, OpError> {
    let only = match user.role {
        Role::Supervisor => user.kelurahan.as_ref().map(ToString::to_string),
        _ => None,
    };
    read(db, move |c| {
        let mut out = Vec::new();
        for (id, kel) in q::rosters(c)? {
            if only.as_ref().is_some_and(|k| *k != kel) {
                continue;
            }
            let Some(stored) = docs::load(c, &id)? else { continue };
            let Ok(roster) = reference::read_roster(&stored.doc) else { continue };
            for m in roster.staff {
                out.push(StaffRow {
                    nip: m.id.to_string(),
                    name: m.name,
                    kelurahan: kel.clone(),
                    role: m.role,
                    kind: m.kind,
                    active: m.active,
                });
            }
        }
        Ok(out)
    })
    .await
}

/// What one staff member handled in a window: distinct requests they
/// acted on, the working times of those finished, and the first ratings'
/// U6 (competence) and U7 (conduct) sums.
#[derive(Debug, Clone, Default)]
pub struct StaffWork {
    pub handled: u64,
    /// Working time of the finished ones, as sorted `(ms, how many)` runs
    /// (exact, or histogram buckets within 1 % for the whole city).
    pub working: Vec<(i64, u64)>,
    pub finished: u64,
    pub within_sla: u64,
    pub rated: u64,
    pub u6: u64,
    pub u7: u64,
}

impl StaffWork {
    #[allow(clippy::cast_precision_loss)]
    pub fn nrr(&self, sum: u64) -> Option<f64> {
        (self.rated > 0).then(|| sum as f64 / self.rated as f64)
    }

    #[allow(clippy::cast_precision_loss)]
    pub fn sla_percent(&self) -> Option<f64> {
        (self.finished > 0).then(|| self.within_sla as f64 * 100.0 / self.finished as f64)
    }

    /// Adds another's figures (an office from its staff).
    pub fn add(&mut self, other: &StaffWork) {
        self.handled += other.handled;
        self.finished += other.finished;
        self.within_sla += other.within_sla;
        self.rated += other.rated;
        self.u6 += other.u6;
        self.u7 += other.u7;
        self.working.extend_from_slice(&other.working);
        self.working.sort_unstable();
    }
}

/// Per staff id, the requests whose last step by them was in `[from, to)`
/// (the months `months` when given: the whole city then reads the
/// monthly rollup instead of every request).
pub async fn staff_work(
    db: &Db,
    user: &User,
    (from, to): (i64, i64),
    months: Option<(i64, i64)>,
    only: Option<String>,
) -> Result<BTreeMap<String, StaffWork>, OpError> {
    let mut out: BTreeMap<String, StaffWork> = BTreeMap::new();
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    if let (Some(months), true, None) = (months, city_wide(user), &only) {
        let rows = read(db, move |c| Ok(q::staff_monthly(c, months)?)).await?;
        for (nip, bucket, handled, within_sla, rated, u6, u7) in rows {
            let w = out.entry(nip).or_default();
            w.handled += count(handled);
            if bucket >= 0 {
                w.finished += count(handled);
                w.working.push((projection::bucket_ms(bucket), count(handled)));
            }
            w.within_sla += count(within_sla);
            w.rated += count(rated);
            w.u6 += count(u6);
            w.u7 += count(u7);
        }
    } else {
        let scope = scope(user);
        let rows = read(db, move |c| Ok(q::staff_work(c, &scope, from, to, only.as_deref())?)).await?;
        for (nip, finished, working_ms, within_sla, u6, u7) in rows {
            let w = out.entry(nip).or_default();
            w.handled += 1;
            if finished {
                w.finished += 1;
                w.working.push((working_ms.unwrap_or(0), 1));
                w.within_sla += u64::from(within_sla);
            }
            if let (Some(u6), Some(u7)) = (u6, u7) {
                w.rated += 1;
                w.u6 += u64::try_from(u6).unwrap_or(0);
                w.u7 += u64::try_from(u7).unwrap_or(0);
            }
        }
    }
    for w in out.values_mut() {
        w.working.sort_unstable();
    }
    Ok(out)
}

/// The training every ASN is owed a year, in JP (jam pelajaran): 20 JP
/// (issue 14; PP 17/2020 and Perlan LAN 10/2018 set this development right
/// of at least 20 JP a year for PNS; PPPK are held to the same here).
pub const TRAINING_HOURS_YEARLY: i64 = 20;

/// The most JP one training record may carry: a month of full days
/// (5 days × 8 JP × 5 weeks). More is a typing slip (a 2,000 for a 20),
/// refused rather than letting one row meet a hundred years' targets.
pub const TRAINING_HOURS_MAX: i64 = 200;

/// The competency a training builds (the three; a stable code in
/// the store, a label for people).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Competency {
    Pelayanan,
    Komunikasi,
    PenangananPengaduan,
}

impl Competency {
    pub const ALL: [Competency; 3] = [Competency::Pelayanan, Competency::Komunikasi, Competency::PenangananPengaduan];

    pub fn code(self) -> &'static str {
        match self {
            Competency::Pelayanan => "pelayanan",
            Competency::Komunikasi => "komunikasi",
            Competency::PenangananPengaduan => "penanganan_pengaduan",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Competency::Pelayanan => "Pelayanan publik",
            Competency::Komunikasi => "Komunikasi",
            Competency::PenangananPengaduan => "Penanganan pengaduan",
        }
    }

    pub fn parse(s: &str) -> Option<Competency> {
        Competency::ALL.into_iter().find(|c| c.code() == s)
    }
}

/// Training hours as typed: a whole number of JP, 1 to
/// [`TRAINING_HOURS_MAX`] (422 `invalid_hours`).
pub fn parse_training_hours(raw: &str) -> Result<i64, OpError> {
    raw.trim().parse::<i64>().ok().filter(|h| (1..=TRAINING_HOURS_MAX).contains(h)).ok_or_else(|| {
        OpError::unprocessable(
            "invalid_hours",
            format!(
                "jumlah JP: bilangan bulat 1-{TRAINING_HOURS_MAX} / hours (JP): a whole number from 1 to {TRAINING_HOURS_MAX}"
            ),
        )
    })
}

/// A competency as chosen (422 `invalid_competency`).
pub fn parse_competency(raw: &str) -> Result<Competency, OpError> {
    Competency::parse(raw.trim()).ok_or_else(|| {
        OpError::unprocessable(
            "invalid_competency",
            "kompetensi: pelayanan, komunikasi atau penanganan_pengaduan / competency: pelayanan, komunikasi or penanganan_pengaduan",
        )
    })
}

/// A recorded training.
#[derive(Debug, Clone)]
pub struct Training {
    pub nip: String,
    pub day: time::Date,
    pub topic: String,
    pub provider: String,
    /// JP; `None` for a training recorded before hours were kept.
    pub hours: Option<i64>,
    pub competency: Option<Competency>,
}

/// The latest trainings the user may see: an admin (or a city-wide
/// supervisor) every one, a kelurahan's supervisor those of the staff on
/// their register (`register`, from [`staff_register`]) only.
pub async fn trainings(db: &Db, user: &User, register: &[StaffRow]) -> Result<Vec<Training>, OpError> {
    let only: Option<Vec<String>> = match user.role {
        Role::Admin => None,
        Role::Supervisor if user.kelurahan.is_none() => None,
        Role::Supervisor => Some(register.iter().map(|s| s.nip.clone()).collect()),
        Role::Agency => Some(Vec::new()),
    };
    let rows = read(db, move |c| Ok(q::trainings(c, only.as_deref())?)).await?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    Ok(rows
        .into_iter()
        .filter_map(|(nip, day, topic, provider, hours, competency)| {
            time::Date::parse(&day, &fmt).ok().map(|day| Training {
                nip,
                day,
                topic,
                provider,
                hours,
                competency: competency.as_deref().and_then(Competency::parse),
            })
        })
        .collect())
}

/// JP per staff member for trainings in `year`.
pub async fn training_hours(db: &Db, year: i32) -> Result<BTreeMap<String, i64>, OpError> {
    let (from, to) = (format!("{year:04}-01-01"), format!("{:04}-01-01", year + 1));
    let rows = read(db, move |c| Ok(q::training_hours(c, &from, &to)?)).await?;
    Ok(rows.into_iter().collect())
}

/// Records a training (an admin's act; `hours` already checked).
pub async fn record_training(db: &Db, user: &User, t: Training) -> Result<(), OpError> {
    user.require(Role::Admin)?;
    let (Some(hours), Some(competency)) = (t.hours, t.competency) else {
        return Err(OpError::missing("hours/competency"));
    };
    if !(1..=TRAINING_HOURS_MAX).contains(&hours) {
        return Err(parse_training_hours(&hours.to_string()).err().unwrap_or_else(|| OpError::missing("hours")));
    }
    let by = user.username.to_string();
    write(db, move |tx| {
        let day = t.day.to_string();
        let row = q::NewTraining {
            nip: &t.nip,
            day: &day,
            topic: &t.topic,
            provider: &t.provider,
            hours,
            competency: competency.code(),
        };
        Ok(q::record_training(tx, &row, &by, now_ms())?)
    })
    .await
}

// ------------------------------------------------------------------ exports

/// Requests filed in `[from, to)` within scope, newest first, at most `limit`.
pub async fn export_rows(
    db: &Db,
    user: &User,
    from: i64,
    to: i64,
    status: Option<Status>,
    limit: u32,
) -> Result<Vec<ExportRow>, OpError> {
    let scope = scope(user);
    read(db, move |c| Ok(q::export_rows(c, &scope, from, to, status.map(|s| s.as_str()), limit)?)).await
}
