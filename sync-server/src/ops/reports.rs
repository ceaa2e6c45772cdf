//! The figures the central pages and the admin API show: request lists,
//! IKM per group, the service overview, where time is lost, staff work,
//! trainings and exports. The rows come from `store::reports`; what they
//! mean (IKM and its sample size, SLA shares, journeys' step times) is
//! computed here.

use std::collections::{BTreeMap, HashMap};

use loket_shared::KelurahanCode;
use loket_shared::Status;
use loket_shared::reference;
use loket_shared::respondent::{Dimension, ProfileTally};
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
        Role::Agency => Scope::Agency { agency: user.agency.clone().unwrap_or_default(), region: user.region.clone() },
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

/// The scope of an SKM report: the user's, or one kelurahan of it when
/// asked (an admin or a city-wide supervisor any; a kelurahan's
/// supervisor only their own; an agency none: 403 `forbidden`).
pub fn report_scope(user: &User, kelurahan: Option<&KelurahanCode>) -> Result<Scope, OpError> {
    match (kelurahan, scope(user)) {
        (None, s) => Ok(s),
        (Some(k), Scope::All) => Ok(Scope::Kelurahan(k.to_string())),
        (Some(k), Scope::Kelurahan(own)) if own == k.as_str() => Ok(Scope::Kelurahan(own)),
        (Some(_), _) => Err(OpError::forbidden()),
    }
}

/// IKM per group over ratings with `from <= at < to` (a request's first
/// rating only), within the user's scope. Groups with service users but
/// no respondents are included (zero respondents, no IKM).
pub async fn ikm_groups(
    db: &Db,
    user: &User,
    offset: time::UtcOffset,
    range: (i64, i64),
    key: IkmKey,
) -> Result<Vec<IkmGroup>, OpError> {
    ikm_groups_in(db, scope(user), offset, range, key).await
}

/// [`ikm_groups`] within a report's scope (from [`report_scope`]).
pub async fn ikm_groups_in(
    db: &Db,
    scope: Scope,
    offset: time::UtcOffset,
    (from, to): (i64, i64),
    key: IkmKey,
) -> Result<Vec<IkmGroup>, OpError> {
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
    ikm_rollup_in(db, scope(user), months, key).await
}

/// [`ikm_rollup`] within a report's scope (from [`report_scope`]).
pub async fn ikm_rollup_in(db: &Db, scope: Scope, months: (i64, i64), key: IkmKey) -> Result<Vec<IkmGroup>, OpError> {
    let rows = read(db, move |c| Ok(q::ikm_rollup(c, &scope, months, key)?)).await?;
    Ok(rows.into_iter().map(|(key, filed, sums)| IkmGroup::new(key, tally(sums), filed)).collect())
}

/// The latest comments with ratings given in `[from, to)`, within a
/// report's scope.
pub async fn ikm_comments(
    db: &Db,
    scope: Scope,
    from: i64,
    to: i64,
    limit: u32,
) -> Result<Vec<(i64, String, String)>, OpError> {
    read(db, move |c| Ok(q::ikm_comments(c, &scope, from, to, limit)?)).await
}

/// The respondent profile of the first ratings of a period, within a
/// report's scope: from the `skm_profile` rollup (`respondents` is the
/// IKM's count from the same rollups, so "tidak menjawab" is what the
/// answers leave of it), or, where the rollups do not serve, from the
/// ratings' profile columns of `[from, to)`. Only counts leave here.
pub async fn profile_summary(
    db: &Db,
    scope: Scope,
    rollup: bool,
    months: (i64, i64),
    (from, to): (i64, i64),
    respondents: u64,
) -> Result<ProfileTally, OpError> {
    let unreadable = |e: loket_shared::respondent::ProfileError| OpError::internal(format!("skm profile rows: {e}"));
    if rollup {
        let rows = read(db, move |c| Ok(q::profile_rollup(c, &scope, months)?)).await?;
        let mut t = ProfileTally::with_respondents(respondents);
        for (dimension, code, n) in rows {
            let d: Dimension = dimension.parse().map_err(unreadable)?;
            t.add_count(d, &code, n).map_err(unreadable)?;
        }
        Ok(t)
    } else {
        let rows = read(db, move |c| Ok(q::profile_rows(c, &scope, from, to)?)).await?;
        let mut t = ProfileTally::default();
        for (codes, n) in rows {
            t.respondents += n;
            for (d, code) in Dimension::ALL.into_iter().zip(&codes) {
                if let Some(code) = code {
                    t.add_count(d, code, n).map_err(unreadable)?;
                }
            }
        }
        Ok(t)
    }
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
                // Every breach, read as the worst are: each service's
                // overruns off its index, largest first.
                let all: Vec<String> =
                    q::worst_breaches(c, &sla, (from, to), usize::MAX)?.into_iter().map(|b| b.1).collect();
                (all.len(), all)
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
        // Kept sorted; rows folded in order (as the rollups stream them)
        // only append, so the sort runs only when something lands out of
        // order.
        let in_order =
            self.working.last().zip(other.working.first()).is_none_or(|(a, b)| a <= b) && other.working.is_sorted();
        self.working.extend_from_slice(&other.working);
        if !in_order {
            self.working.sort_unstable();
        }
    }
}

/// Staff work by staff member and the kelurahan it was done in (the
/// request's). A staff member who moved offices has work in both: the
/// person's figures are the sum ([`StaffLedger::person`]), an office's
/// only the work done there ([`StaffLedger::office`]), so neither counts
/// anything twice.
#[derive(Debug, Clone, Default)]
pub struct StaffLedger {
    by_place: BTreeMap<(String, String), StaffWork>,
}

impl StaffLedger {
    /// Adds the work of `nip` in `kelurahan`.
    pub fn add(&mut self, nip: &str, kelurahan: &str, work: &StaffWork) {
        self.by_place.entry((nip.to_owned(), kelurahan.to_owned())).or_default().add(work);
    }

    /// Everything a staff member did in the window, wherever.
    pub fn person(&self, nip: &str) -> Option<StaffWork> {
        let mut out: Option<StaffWork> = None;
        for w in self.places(nip).map(|(_, w)| w) {
            out.get_or_insert_with(StaffWork::default).add(w);
        }
        out
    }

    /// The kelurahan a staff member worked in, and what they did there.
    pub fn places<'a>(&'a self, nip: &'a str) -> impl Iterator<Item = (&'a str, &'a StaffWork)> + 'a {
        self.by_place
            .range((nip.to_owned(), String::new())..)
            .take_while(move |((n, _), _)| n == nip)
            .map(|((_, k), w)| (k.as_str(), w))
    }

    /// What an office's staff did there.
    pub fn office(&self, kelurahan: &str) -> Option<StaffWork> {
        let mut out: Option<StaffWork> = None;
        for ((_, k), w) in &self.by_place {
            if k == kelurahan {
                out.get_or_insert_with(StaffWork::default).add(w);
            }
        }
        out
    }

    /// Every kelurahan with work in it, in order.
    pub fn offices(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_place.keys().map(|(_, k)| k.as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Each staff member's work per kelurahan: `(nip, kelurahan, work)`,
    /// in that order.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &str, &StaffWork)> {
        self.by_place.iter().map(|((n, k), w)| (n.as_str(), k.as_str(), w))
    }

    /// Every staff member with work, in order.
    pub fn people(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.by_place.keys().map(|(n, _)| n.as_str()).collect();
        v.dedup();
        v
    }
}

/// Per staff id and kelurahan, the requests whose last step by them was
/// in `[from, to)` (the months `months` when given: the whole city then
/// reads the monthly rollup instead of every request).
pub async fn staff_work(
    db: &Db,
    user: &User,
    (from, to): (i64, i64),
    months: Option<(i64, i64)>,
    only: Option<String>,
) -> Result<StaffLedger, OpError> {
    let mut out = StaffLedger::default();
    let count = |v: i64| u64::try_from(v).unwrap_or(0);
    if let (Some(months), true, None) = (months, city_wide(user), &only) {
        // Folded as the rows stream in, on the reading thread.
        out = read(db, move |c| {
            let mut out = StaffLedger::default();
            q::staff_monthly(c, months, &mut |(nip, kelurahan, bucket, handled, within_sla, rated, u6, u7)| {
                let mut w = StaffWork {
                    handled: count(handled),
                    within_sla: count(within_sla),
                    rated: count(rated),
                    u6: count(u6),
                    u7: count(u7),
                    ..StaffWork::default()
                };
                if bucket >= 0 {
                    w.finished = count(handled);
                    w.working.push((projection::bucket_ms(bucket), count(handled)));
                }
                out.add(&nip, &kelurahan, &w);
            })?;
            Ok(out)
        })
        .await?;
    } else {
        let scope = scope(user);
        let rows = read(db, move |c| Ok(q::staff_work(c, &scope, from, to, only.as_deref())?)).await?;
        for (nip, kelurahan, finished, working_ms, within_sla, u6, u7) in rows {
            let mut w = StaffWork { handled: 1, ..StaffWork::default() };
            if finished {
                w.finished = 1;
                w.working.push((working_ms.unwrap_or(0), 1));
                w.within_sla = u64::from(within_sla);
            }
            if let (Some(u6), Some(u7)) = (u6, u7) {
                w.rated = 1;
                w.u6 = u64::try_from(u6).unwrap_or(0);
                w.u7 = u64::try_from(u7).unwrap_or(0);
            }
            out.add(&nip, &kelurahan, &w);
        }
    }
    Ok(out)
}

/// A staff member once, however many rosters list them: the register's
/// rows of one id folded together.
#[derive(Debug, Clone)]
pub struct Person {
    pub nip: String,
    /// As the roster that lists them as active says (else the first).
    pub name: String,
    pub role: reference::StaffRole,
    pub kind: loket_shared::StaffKind,
    /// Active on some roster.
    pub active: bool,
    /// The kelurahan whose roster lists them as active (usually one).
    pub current: Vec<String>,
    /// The kelurahan whose roster lists them no longer active.
    pub former: Vec<String>,
}

/// Folds the register into one [`Person`] per staff id, in the
/// register's order of first appearance.
pub fn people(register: &[StaffRow]) -> Vec<Person> {
    let mut out: Vec<Person> = Vec::new();
    for row in register {
        let person = match out.iter_mut().find(|p| p.nip == row.nip) {
            Some(p) => p,
            None => {
                out.push(Person {
                    nip: row.nip.clone(),
                    name: row.name.clone(),
                    role: row.role,
                    kind: row.kind,
                    active: false,
                    current: Vec::new(),
                    former: Vec::new(),
                });
                out.last_mut().expect("pushed")
            }
        };
        if row.active {
            // The active roster's entry is who they are now.
            if !person.active {
                person.name = row.name.clone();
                person.role = row.role;
                person.kind = row.kind;
            }
            person.active = true;
            person.current.push(row.kelurahan.clone());
        } else {
            person.former.push(row.kelurahan.clone());
        }
    }
    out
}

/// Ratings (and finished requests) below which nothing is judged: a
/// score or share from fewer says too little about a person or an office.
pub const JUDGED_MIN: u64 = 5;
/// NRR below this is below grade B ("Baik") on the SKM bands.
pub const NRR_GOOD: f64 = 3.0644;
/// The share within the SLA below which an office or a person needs help.
pub const SLA_PERCENT_GOOD: f64 = 80.0;

/// Why someone (or an office) needs training: each reason judged only
/// from [`JUDGED_MIN`] of what it is judged on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NeedReason {
    /// U6 (competence) below B, from this many ratings.
    Competence { nrr: f64, rated: u64 },
    /// U7 (conduct) below B, from this many ratings.
    Conduct { nrr: f64, rated: u64 },
    /// Under 80 % within the SLA, of this many finished requests.
    Sla { percent: f64, finished: u64 },
}

/// The reasons `w` needs training (none: it does not, or too little is
/// known to say).
pub fn need_reasons(w: &StaffWork) -> Vec<NeedReason> {
    let mut out = Vec::new();
    if w.rated >= JUDGED_MIN {
        if let Some(nrr) = w.nrr(w.u6).filter(|v| *v < NRR_GOOD) {
            out.push(NeedReason::Competence { nrr, rated: w.rated });
        }
        if let Some(nrr) = w.nrr(w.u7).filter(|v| *v < NRR_GOOD) {
            out.push(NeedReason::Conduct { nrr, rated: w.rated });
        }
    }
    if w.finished >= JUDGED_MIN
        && let Some(percent) = w.sla_percent().filter(|p| *p < SLA_PERCENT_GOOD)
    {
        out.push(NeedReason::Sla { percent, finished: w.finished });
    }
    out
}

/// The lowest judged NRR of a need (4.0 when only the SLA is short), to
/// list the weakest first.
pub fn need_rank(reasons: &[NeedReason]) -> f64 {
    reasons
        .iter()
        .filter_map(|r| match r {
            NeedReason::Competence { nrr, .. } | NeedReason::Conduct { nrr, .. } => Some(*nrr),
            NeedReason::Sla { .. } => None,
        })
        .fold(4.0, f64::min)
}

/// A person who needs training: who, their work, why.
pub type PersonNeed<'a> = (&'a Person, StaffWork, Vec<NeedReason>);
/// An office that needs training: its kelurahan, its work, why.
pub type OfficeNeed = (String, StaffWork, Vec<NeedReason>);

/// The people and the offices that need training, weakest first: each
/// person once, judged on all their work (wherever they did it); each
/// office on the work done there.
pub fn training_needs<'a>(people: &'a [Person], ledger: &StaffLedger) -> (Vec<PersonNeed<'a>>, Vec<OfficeNeed>) {
    let mut persons: Vec<PersonNeed<'a>> = people
        .iter()
        .filter_map(|p| {
            let w = ledger.person(&p.nip)?;
            let reasons = need_reasons(&w);
            (!reasons.is_empty()).then_some((p, w, reasons))
        })
        .collect();
    persons.sort_by(|a, b| need_rank(&a.2).total_cmp(&need_rank(&b.2)).then_with(|| a.0.nip.cmp(&b.0.nip)));
    let mut offices: Vec<OfficeNeed> = ledger
        .offices()
        .into_iter()
        .filter_map(|k| {
            let w = ledger.office(k)?;
            let reasons = need_reasons(&w);
            (!reasons.is_empty()).then(|| (k.to_owned(), w, reasons))
        })
        .collect();
    offices.sort_by(|a, b| need_rank(&a.2).total_cmp(&need_rank(&b.2)).then_with(|| a.0.cmp(&b.0)));
    (persons, offices)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(nip: &str, name: &str, kelurahan: &str, active: bool) -> StaffRow {
        StaffRow {
            nip: nip.into(),
            name: name.into(),
            kelurahan: kelurahan.into(),
            role: reference::StaffRole::Staff,
            kind: loket_shared::StaffKind::Pns,
            active,
        }
    }

    /// `n` requests of one staff member: `rated` of them rated `u6`/`u7`
    /// each, `within` of the finished ones within the SLA.
    fn work(n: u64, rated: u64, u6: u64, u7: u64, within: u64) -> StaffWork {
        StaffWork {
            handled: n,
            finished: n,
            working: vec![(3_600_000, n)],
            within_sla: within,
            rated,
            u6: u6 * rated,
            u7: u7 * rated,
        }
    }

    /// A staff member's working times stay sorted (the medians read them
    /// so) whether their work arrives in order, as the rollup streams it,
    /// or not, as a person's offices are summed.
    #[test]
    fn working_times_stay_sorted_in_any_order_of_adding() {
        let times = |ms: &[i64]| StaffWork { working: ms.iter().map(|&m| (m, 1)).collect(), ..StaffWork::default() };
        let mut in_order = StaffWork::default();
        for ms in [&[1][..], &[2, 5], &[5], &[9]] {
            in_order.add(&times(ms));
        }
        assert_eq!(in_order.working, times(&[1, 2, 5, 5, 9]).working);
        let mut mixed = times(&[4, 8]);
        for ms in [&[9][..], &[1, 3], &[], &[8, 2], &[6]] {
            mixed.add(&times(ms));
        }
        assert_eq!(mixed.working, times(&[1, 2, 3, 4, 6, 8, 8, 9]).working);
    }

    const MOVED: &str = "198503122010011002";
    const STAYED: &str = "199001012015011001";
    const PASAR_BARU: &str = "12.71.01.1001";
    const LALANG: &str = "12.71.02.1001";

    /// Issue 15, item 10: a staff member who moved from Pasar Baru to
    /// Lalang is on both rosters; they are one person, named and placed as
    /// the roster that lists them as active says.
    #[test]
    fn a_staff_member_on_two_rosters_is_one_person() {
        let register = [
            row(MOVED, "Budi (lama)", PASAR_BARU, false),
            row(STAYED, "Sari", PASAR_BARU, true),
            row(MOVED, "Budi Santoso", LALANG, true),
        ];
        let people = people(&register);
        assert_eq!(people.len(), 2, "{people:?}");
        let moved = people.iter().find(|p| p.nip == MOVED).unwrap();
        assert_eq!(moved.name, "Budi Santoso");
        assert!(moved.active);
        assert_eq!(moved.current, [LALANG]);
        assert_eq!(moved.former, [PASAR_BARU]);
        let stayed = people.iter().find(|p| p.nip == STAYED).unwrap();
        assert_eq!((stayed.current.as_slice(), stayed.former.len()), ([PASAR_BARU.to_owned()].as_slice(), 0));
    }

    /// Issue 15, item 10: the person's totals are all their work, each
    /// office's only the work done there: nothing is counted twice.
    #[test]
    fn a_person_sums_their_offices_and_an_office_only_its_own_work() {
        let mut ledger = StaffLedger::default();
        ledger.add(MOVED, PASAR_BARU, &work(3, 3, 2, 4, 3));
        ledger.add(MOVED, LALANG, &work(3, 3, 3, 4, 1));
        ledger.add(STAYED, PASAR_BARU, &work(6, 6, 4, 4, 6));
        let person = ledger.person(MOVED).unwrap();
        assert_eq!((person.handled, person.rated, person.u6, person.within_sla), (6, 6, 15, 4));
        assert_eq!(
            ledger.places(MOVED).map(|(k, w)| (k, w.handled)).collect::<Vec<_>>(),
            [(PASAR_BARU, 3), (LALANG, 3)]
        );
        let office = ledger.office(PASAR_BARU).unwrap();
        assert_eq!((office.handled, office.rated, office.u6), (9, 9, 6 + 24));
        assert_eq!(ledger.office(LALANG).unwrap().handled, 3);
        assert!(ledger.person("197001012000011001").is_none());
        assert_eq!(ledger.people(), [MOVED, STAYED]);
    }

    /// Issue 15, item 10: nobody is flagged on fewer ratings (or finished
    /// requests) than the page states, and each flag says on how many.
    #[test]
    fn training_needs_keep_the_stated_minimum() {
        assert_eq!(JUDGED_MIN, 5);
        // Four ratings, all 1: too few to judge.
        assert!(need_reasons(&work(4, 4, 1, 1, 0)).is_empty());
        // Five ratings with U6 2.00: below B, judged.
        assert_eq!(need_reasons(&work(5, 5, 2, 4, 5)), [NeedReason::Competence { nrr: 2.0, rated: 5 }]);
        // Six finished, half within the SLA, two ratings (low ones): the
        // SLA is judged, the scores are not.
        assert_eq!(need_reasons(&work(6, 2, 1, 1, 3)), [NeedReason::Sla { percent: 50.0, finished: 6 }]);
        // 3.0644 is B: not flagged; 3.0643… is.
        let b = StaffWork { rated: 10_000, u6: 30_644, u7: 40_000, ..StaffWork::default() };
        assert!(need_reasons(&b).is_empty());
        let below = StaffWork { rated: 10_000, u6: 30_643, u7: 40_000, ..StaffWork::default() };
        assert_eq!(need_reasons(&below).len(), 1);
    }

    /// Issue 15, item 10: the person who moved is listed once, on their
    /// whole work (3 + 3 ratings: judged, U6 2.50); Pasar Baru, where only
    /// 3 of their ratings were made and a colleague's 6 good ones, is not
    /// flagged for them, and Lalang (3 ratings) is too small to judge.
    #[test]
    fn training_needs_list_a_mover_once_and_offices_on_their_own_work() {
        let register = [
            row(MOVED, "Budi (lama)", PASAR_BARU, false),
            row(STAYED, "Sari", PASAR_BARU, true),
            row(MOVED, "Budi Santoso", LALANG, true),
        ];
        let people = people(&register);
        let mut ledger = StaffLedger::default();
        ledger.add(MOVED, PASAR_BARU, &work(3, 3, 2, 4, 3));
        ledger.add(MOVED, LALANG, &work(3, 3, 3, 4, 3));
        ledger.add(STAYED, PASAR_BARU, &work(6, 6, 4, 4, 6));
        let (persons, offices) = training_needs(&people, &ledger);
        assert_eq!(persons.len(), 1, "once: {persons:?}");
        let (who, w, reasons) = &persons[0];
        assert_eq!((who.nip.as_str(), w.rated), (MOVED, 6));
        assert_eq!(reasons, &[NeedReason::Competence { nrr: 2.5, rated: 6 }]);
        assert!(offices.is_empty(), "Pasar Baru's own U6 is (6 + 24) / 9 = 3.33; Lalang has 3 ratings: {offices:?}");
        // With three of their own, Lalang is judged and its U6 is low.
        ledger.add(STAYED, LALANG, &work(2, 2, 2, 4, 2));
        let (_, offices) = training_needs(&people, &ledger);
        assert_eq!(offices.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(), [LALANG]);
        assert_eq!(offices[0].1.rated, 5);
    }
}
