//! Service-level deadlines in working days, counted in an office's
//! service hours.
//!
//! A catalog service promises to finish within `sla_days` working days.
//! A working day is the office's service hours on a weekday that is not a
//! holiday (and not a cuti bersama day, unless the city keeps offices open
//! on them): nights, weekends and holidays count nothing. Working time is
//! measured in *working-day milliseconds*: a whole day's service hours
//! count [`DAY_MS`], whatever their length, and an hour of an eight-hour
//! day counts an eighth of it. So "1 working day" means the same promise
//! on a Friday with shorter hours as on a Monday.
//!
//! Filed on Friday at 15:00 with one working day, in an office open 08:00
//! to 16:00, a request is due on Monday at 15:00; filed on Saturday, the
//! clock starts on Monday at 08:00.
//!
//! A request's journey splits its time between parties
//! ([`journey_times`]): the kelurahan (filed, being worked on there), an
//! agency (handed to it, being worked on there), and the citizen (waiting
//! for the citizen's documents: the office's clock is paused). Each party
//! is measured against its own promise.
//!
//! Every function is pure; working time walks the days of the interval
//! (a few per request), so the central reports can apply them to a
//! million requests.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, OffsetDateTime, UtcOffset, Weekday};

use crate::workflow::Status;

/// A whole working day, in working-day milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// No SLA runs longer than this many calendar days; a due date further
/// away is reported as never (`i64::MAX`).
const HORIZON_DAYS: u32 = 3_660;

/// Public holidays (and cuti bersama days when offices close on them),
/// sorted and unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Holidays(Vec<Date>);

impl Holidays {
    pub fn new(mut days: Vec<Date>) -> Holidays {
        days.sort();
        days.dedup();
        Holidays(days)
    }

    pub fn none() -> Holidays {
        Holidays(Vec::new())
    }

    pub fn contains(&self, d: Date) -> bool {
        self.0.binary_search(&d).is_ok()
    }
}

/// One weekday's service hours, minutes after local midnight, `open <
/// close <= 1440`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DayHours {
    pub open: u16,
    pub close: u16,
}

impl DayHours {
    pub const fn new(open: u16, close: u16) -> Option<DayHours> {
        if open < close && close <= 1440 { Some(DayHours { open, close }) } else { None }
    }

    fn len_ms(self) -> i64 {
        i64::from(self.close - self.open) * 60_000
    }
}

impl fmt::Display for DayHours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hm = |m: u16| format!("{:02}:{:02}", m / 60, m % 60);
        write!(f, "{}-{}", hm(self.open), hm(self.close))
    }
}

impl FromStr for DayHours {
    type Err = HoursError;

    /// `HH:MM-HH:MM`, e.g. `08:00-16:00` (`24:00` closes at midnight).
    fn from_str(s: &str) -> Result<DayHours, HoursError> {
        let minute = |t: &str| -> Option<u16> {
            let (h, m) = t.trim().split_once(':')?;
            if h.len() != 2 || m.len() != 2 {
                return None;
            }
            let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
            (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(h * 60 + m)
        };
        let (a, b) = s.split_once('-').ok_or(HoursError::Format)?;
        let (open, close) = (minute(a).ok_or(HoursError::Format)?, minute(b).ok_or(HoursError::Format)?);
        DayHours::new(open, close).ok_or(HoursError::Order)
    }
}

/// Why service hours were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HoursError {
    #[error("service hours must be written HH:MM-HH:MM, e.g. 08:00-16:00")]
    Format,
    #[error("service hours must close after they open, by 24:00")]
    Order,
    #[error("an office must be open on at least one day")]
    NeverOpen,
    #[error("unknown weekday (use mon, tue, wed, thu, fri, sat, sun)")]
    Weekday,
}

/// An office's service hours per weekday, Monday first; `None` is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceHours([Option<DayHours>; 7]);

/// The weekday keys, Monday first, as the catalog writes them.
pub const WEEKDAY_KEYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl ServiceHours {
    /// Kota Medan's default when the catalog sets none: Monday to Friday,
    /// 08:00 to 16:00. An admin sets the real hours, for the city and per
    /// kelurahan, in the catalog.
    pub const CITY_DEFAULT: ServiceHours = {
        let d = DayHours { open: 8 * 60, close: 16 * 60 };
        ServiceHours([Some(d), Some(d), Some(d), Some(d), Some(d), None, None])
    };

    /// Monday to Friday around the clock: working time as calendar time on
    /// weekdays (what figures meant before service hours).
    pub const WEEKDAYS_ALL_DAY: ServiceHours = {
        let d = DayHours { open: 0, close: 1440 };
        ServiceHours([Some(d), Some(d), Some(d), Some(d), Some(d), None, None])
    };

    pub fn new(days: [Option<DayHours>; 7]) -> Result<ServiceHours, HoursError> {
        if days.iter().all(Option::is_none) {
            return Err(HoursError::NeverOpen);
        }
        Ok(ServiceHours(days))
    }

    pub fn day(&self, weekday: Weekday) -> Option<DayHours> {
        self.0[usize::from(weekday.number_days_from_monday())]
    }

    pub fn days(&self) -> &[Option<DayHours>; 7] {
        &self.0
    }

    /// `mon=08:00-16:00; …` style text for logs and forms: each open day
    /// as `key=HH:MM-HH:MM`, separated by `; `.
    pub fn to_spec(&self) -> String {
        WEEKDAY_KEYS
            .iter()
            .zip(self.0)
            .filter_map(|(k, d)| d.map(|d| format!("{k}={d}")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Parses [`ServiceHours::to_spec`]'s form; days not named are closed.
    pub fn from_spec(s: &str) -> Result<ServiceHours, HoursError> {
        let mut days = [None; 7];
        for part in s.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part.split_once('=').ok_or(HoursError::Format)?;
            let i = WEEKDAY_KEYS.iter().position(|w| *w == k.trim()).ok_or(HoursError::Weekday)?;
            days[i] = Some(v.parse()?);
        }
        ServiceHours::new(days)
    }
}

impl Default for ServiceHours {
    fn default() -> ServiceHours {
        ServiceHours::CITY_DEFAULT
    }
}

/// In the catalog: a map of weekday key to `HH:MM-HH:MM`, closed days
/// left out (`{ mon = "08:00-16:00", … }`).
impl Serialize for ServiceHours {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let m: BTreeMap<&str, String> =
            WEEKDAY_KEYS.iter().zip(self.0).filter_map(|(k, d)| d.map(|d| (*k, d.to_string()))).collect();
        m.serialize(s)
    }
}

impl<'de> Deserialize<'de> for ServiceHours {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ServiceHours, D::Error> {
        let m = BTreeMap::<String, String>::deserialize(d)?;
        let mut days = [None; 7];
        for (k, v) in &m {
            let i = WEEKDAY_KEYS
                .iter()
                .position(|w| w == k)
                .ok_or_else(|| serde::de::Error::custom(HoursError::Weekday))?;
            days[i] = Some(v.parse().map_err(serde::de::Error::custom)?);
        }
        ServiceHours::new(days).map_err(serde::de::Error::custom)
    }
}

/// Where working time is counted: a local offset, service hours and the
/// days the office is closed.
#[derive(Debug, Clone, Copy)]
pub struct Calendar<'a> {
    pub offset: UtcOffset,
    pub hours: &'a ServiceHours,
    pub holidays: &'a Holidays,
}

fn local(ms: i64, offset: UtcOffset) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

impl Calendar<'_> {
    /// The service hours of a local day as instants `[open, close)`, or
    /// `None` when the office is closed that day.
    fn open_span(&self, d: Date) -> Option<(i64, i64, DayHours)> {
        let h = self.hours.day(d.weekday())?;
        if self.holidays.contains(d) {
            return None;
        }
        let midnight = ms_of(d.midnight().assume_offset(self.offset));
        Some((midnight + i64::from(h.open) * 60_000, midnight + i64::from(h.close) * 60_000, h))
    }

    /// Working time in `[start, end)`, in working-day milliseconds (0 if
    /// `end <= start`).
    pub fn working_between(&self, start: i64, end: i64) -> i64 {
        if end <= start {
            return 0;
        }
        let (mut d, last) = (local(start, self.offset).date(), local(end, self.offset).date());
        let mut total = 0i64;
        loop {
            if let Some((open, close, h)) = self.open_span(d) {
                let overlap = end.min(close) - start.max(open);
                if overlap > 0 {
                    total += scaled(overlap, h.len_ms());
                }
            }
            if d >= last {
                return total;
            }
            match d.next_day() {
                Some(next) => d = next,
                None => return total,
            }
        }
    }

    /// Working time in working days (for reports).
    #[allow(clippy::cast_precision_loss)]
    pub fn working_days_between(&self, start: i64, end: i64) -> f64 {
        self.working_between(start, end) as f64 / DAY_MS as f64
    }

    /// The instant a request whose clock starts at `start` is due after
    /// `sla_days` working days: the last instant at which its working
    /// time is still at most the SLA. `i64::MAX` if the office never opens
    /// within ten years.
    pub fn due_at(&self, start: i64, sla_days: u32) -> i64 {
        self.due_after(start, i64::from(sla_days) * DAY_MS)
    }

    /// The last instant at which working time from `start` is still at
    /// most `budget` working-day ms (what is left of an SLA when part of
    /// it was used before a pause).
    pub fn due_after(&self, start: i64, budget: i64) -> i64 {
        let target = budget.max(0);
        let mut acc = 0i64;
        let mut d = local(start, self.offset).date();
        for _ in 0..HORIZON_DAYS {
            if let Some((open, close, h)) = self.open_span(d) {
                let from = start.max(open);
                if from < close {
                    let avail = scaled(close - from, h.len_ms());
                    if acc + avail >= target {
                        // ms x of this day with scaled(x) <= what is left
                        let left = i128::from(target - acc);
                        let x = left * i128::from(h.len_ms()) / i128::from(DAY_MS);
                        return from + i64::try_from(x).unwrap_or(0);
                    }
                    acc += avail;
                }
            }
            match d.next_day() {
                Some(next) => d = next,
                None => return i64::MAX,
            }
        }
        i64::MAX
    }

    /// Whether working time from `start` to `end` is within `sla_days`.
    pub fn within(&self, start: i64, end: i64, sla_days: u32) -> bool {
        self.working_between(start, end) <= i64::from(sla_days) * DAY_MS
    }
}

/// `ms` of a day whose service hours last `day_len` ms, in working-day ms
/// (rounded down).
fn scaled(ms: i64, day_len: i64) -> i64 {
    let v = i128::from(ms) * i128::from(DAY_MS) / i128::from(day_len.max(1));
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Who a step of a journey is waiting on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Party {
    /// Filed, or being worked on at the kelurahan.
    Kelurahan,
    /// Handed to the agency, or being worked on there.
    Agency(String),
    /// Waiting for the citizen's documents: nobody's clock runs.
    Citizen,
}

impl Party {
    /// The party a step in `status` (at `agency`, if named) waits on.
    pub fn of(status: Status, agency: Option<&str>) -> Party {
        match (status, agency) {
            (Status::WaitingCitizen, _) => Party::Citizen,
            (Status::HandedOff | Status::InProgress, Some(a)) if !a.is_empty() => Party::Agency(a.to_owned()),
            _ => Party::Kelurahan,
        }
    }
}

/// One event of a journey, in causal order: `(at, status entered, agency)`.
pub type JourneyEvent = (i64, Status, Option<String>);

/// A step of a journey: the status it was in, the agency named, and its
/// working time (the kelurahan's calendar for the kelurahan's and the
/// citizen's steps, the agencies' for an agency's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub status: Status,
    pub agency: Option<String>,
    pub working_ms: i64,
}

impl Step {
    pub fn party(&self) -> Party {
        Party::of(self.status, self.agency.as_deref())
    }
}

/// The steps of a journey from filing (`created`) to `end` (the finish,
/// or now for an open request), from its events in causal order. Event
/// times never go backwards, never before filing and never after `end`,
/// so a kiosk clock days off shifts time between steps but cannot invent
/// any.
pub fn journey_steps(
    created: i64,
    end: i64,
    events: &[JourneyEvent],
    kelurahan: &Calendar<'_>,
    agencies: &Calendar<'_>,
) -> Vec<Step> {
    let mut steps = Vec::with_capacity(events.len());
    // (status entered, agency, since) of the step in progress
    let mut current: Option<(Status, Option<String>, i64)> = None;
    let measure = |status: Status, agency: Option<String>, since: i64, until: i64| {
        let cal = match Party::of(status, agency.as_deref()) {
            Party::Agency(_) => agencies,
            Party::Kelurahan | Party::Citizen => kelurahan,
        };
        Step { status, agency, working_ms: cal.working_between(since, until) }
    };
    for (at, status, agency) in events {
        let since = current.as_ref().map_or(created, |c| c.2);
        let at = (*at).clamp(since, end.max(since));
        if let Some((s, a, since)) = current.take() {
            steps.push(measure(s, a, since, at));
        }
        if !status.is_terminal() {
            current = Some((*status, agency.clone(), at));
        }
    }
    if let Some((s, a, since)) = current {
        steps.push(measure(s, a, since, end.max(since)));
    }
    steps
}

/// A journey's time per party.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JourneyTimes {
    /// The kelurahan's working time: filed and being worked on there,
    /// without the citizen's waits and the agencies' time.
    pub kelurahan_ms: i64,
    /// Each agency's working time (handed to it and being worked on
    /// there), by agency code.
    pub agencies: BTreeMap<String, i64>,
    /// Working time spent waiting for the citizen (the clock paused).
    pub citizen_ms: i64,
}

/// Sums a journey's steps per party.
pub fn journey_times(steps: &[Step]) -> JourneyTimes {
    let mut t = JourneyTimes::default();
    for s in steps {
        match s.party() {
            Party::Kelurahan => t.kelurahan_ms += s.working_ms,
            Party::Citizen => t.citizen_ms += s.working_ms,
            Party::Agency(a) => *t.agencies.entry(a).or_default() += s.working_ms,
        }
    }
    t
}

/// When the file became complete (berkas lengkap): the filing, or when
/// the request was taken up again after the last wait for the citizen's
/// documents. Events in causal order.
pub fn complete_at(created: i64, events: &[JourneyEvent]) -> i64 {
    let mut at = created;
    let mut waiting = false;
    for (t, status, _) in events {
        match status {
            Status::WaitingCitizen => waiting = true,
            _ if waiting => {
                waiting = false;
                at = (*t).max(created);
            }
            _ => {}
        }
    }
    at
}

/// Where an open request stands against the kelurahan's SLA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KelurahanClock {
    /// Waiting for the citizen or at an agency: the kelurahan's clock is
    /// paused.
    Paused,
    /// Due at this instant (working time already used counted).
    Running { due_ms: i64 },
    /// Past its SLA by this much working time.
    Overdue { over_ms: i64 },
}

/// The kelurahan's clock of an open request at `now`, from its events in
/// causal order: the time already used at the kelurahan counts, waits for
/// the citizen and time at an agency do not.
pub fn kelurahan_clock(
    created: i64,
    events: &[JourneyEvent],
    now: i64,
    sla_days: u32,
    kelurahan: &Calendar<'_>,
    agencies: &Calendar<'_>,
) -> KelurahanClock {
    if let Some((_, status, agency)) = events.iter().rev().find(|e| !e.1.is_terminal())
        && Party::of(*status, agency.as_deref()) != Party::Kelurahan
    {
        return KelurahanClock::Paused;
    }
    let used = journey_times(&journey_steps(created, now, events, kelurahan, agencies)).kelurahan_ms;
    let budget = i64::from(sla_days) * DAY_MS;
    if used > budget {
        KelurahanClock::Overdue { over_ms: used - budget }
    } else {
        KelurahanClock::Running { due_ms: kelurahan.due_after(now, budget - used) }
    }
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime, offset};

    use super::*;

    const WIB: UtcOffset = offset!(+7);

    fn ms(t: OffsetDateTime) -> i64 {
        ms_of(t)
    }

    fn all_day(holidays: &Holidays) -> Calendar<'_> {
        Calendar { offset: WIB, hours: &ServiceHours::WEEKDAYS_ALL_DAY, holidays }
    }

    #[test]
    fn due_dates_skip_weekends_and_holidays() {
        let none = Holidays::none();
        let cal = all_day(&none);
        // (filed, days, due), all in WIB.
        let cases = [
            (datetime!(2026-11-27 10:00 +7), 1, datetime!(2026-11-30 10:00 +7)), // Fri → Mon
            (datetime!(2026-11-26 10:00 +7), 1, datetime!(2026-11-27 10:00 +7)), // Thu → Fri
            (datetime!(2026-11-28 10:00 +7), 1, datetime!(2026-12-01 00:00 +7)), // Sat → Tue 00:00
            (datetime!(2026-11-29 23:59 +7), 2, datetime!(2026-12-02 00:00 +7)), // Sun → Wed 00:00
            (datetime!(2026-11-23 08:00 +7), 5, datetime!(2026-11-30 08:00 +7)), // Mon → next Mon
            (datetime!(2026-11-23 08:00 +7), 0, datetime!(2026-11-23 08:00 +7)),
        ];
        for (filed, days, due) in cases {
            assert_eq!(cal.due_at(ms(filed), days), ms(due), "{filed} + {days}");
        }
        let holidays = Holidays::new(vec![date!(2026 - 11 - 30)]);
        assert_eq!(
            all_day(&holidays).due_at(ms(datetime!(2026-11-27 10:00 +7)), 1),
            ms(datetime!(2026-12-01 10:00 +7)),
            "a Monday holiday pushes a Friday filing to Tuesday"
        );
    }

    #[test]
    fn working_time_counts_only_working_days() {
        let none = Holidays::none();
        let h = |a, b| all_day(&none).working_between(ms(a), ms(b));
        assert_eq!(h(datetime!(2026-11-27 10:00 +7), datetime!(2026-11-30 10:00 +7)), DAY_MS); // Fri→Mon
        assert_eq!(h(datetime!(2026-11-28 10:00 +7), datetime!(2026-11-29 22:00 +7)), 0); // weekend only
        assert_eq!(h(datetime!(2026-11-23 08:00 +7), datetime!(2026-11-23 09:30 +7)), 5_400_000);
        assert_eq!(h(datetime!(2026-11-02 00:00 +7), datetime!(2026-11-30 00:00 +7)), 20 * DAY_MS); // 4 weeks
        assert_eq!(h(datetime!(2026-11-30 00:00 +7), datetime!(2026-11-02 00:00 +7)), 0, "reversed");
        let holidays = Holidays::new(vec![date!(2026 - 11 - 25), date!(2026 - 11 - 28)]); // Wed, and a Saturday
        assert_eq!(
            all_day(&holidays).working_between(ms(datetime!(2026-11-23 00:00 +7)), ms(datetime!(2026-11-30 00:00 +7))),
            4 * DAY_MS
        );
    }

    #[test]
    fn service_hours_count_nothing_at_night_and_scale_to_the_day() {
        let none = Holidays::none();
        let cal = Calendar { offset: WIB, hours: &ServiceHours::CITY_DEFAULT, holidays: &none };
        // Filed at 15:55 on Thursday, finished at 08:10 on Friday: 5 + 10
        // minutes of an 8-hour day.
        let w = cal.working_between(ms(datetime!(2026-11-26 15:55 +7)), ms(datetime!(2026-11-27 08:10 +7)));
        assert_eq!(w, DAY_MS * 15 / (8 * 60));
        // A whole service day is one working day; the night adds nothing.
        let w = cal.working_between(ms(datetime!(2026-11-26 07:00 +7)), ms(datetime!(2026-11-26 23:00 +7)));
        assert_eq!(w, DAY_MS);
        // Friday 15:00 → Monday 15:00 is one working day; due then.
        let (fri, mon) = (ms(datetime!(2026-11-27 15:00 +7)), ms(datetime!(2026-11-30 15:00 +7)));
        assert_eq!(cal.working_between(fri, mon), DAY_MS);
        assert_eq!(cal.due_at(fri, 1), mon);
        // Filed on Saturday: the clock starts on Monday at 08:00.
        assert_eq!(cal.due_at(ms(datetime!(2026-11-28 11:00 +7)), 1), ms(datetime!(2026-11-30 16:00 +7)));
        // A shorter Friday still counts as a whole day.
        let d = DayHours::new(8 * 60, 16 * 60);
        let short = DayHours::new(8 * 60, 11 * 60 + 30);
        let hours = ServiceHours::new([d, d, d, d, short, None, None]).unwrap();
        let cal = Calendar { offset: WIB, hours: &hours, holidays: &none };
        let w = cal.working_between(ms(datetime!(2026-11-27 08:00 +7)), ms(datetime!(2026-11-27 09:45 +7)));
        assert_eq!(w, DAY_MS / 2);
        assert_eq!(cal.due_at(ms(datetime!(2026-11-27 09:45 +7)), 1), ms(datetime!(2026-11-30 12:00 +7)));
    }

    #[test]
    fn due_and_elapsed_agree() {
        // For every start over two weeks (each half hour) and every SLA up
        // to 10 days, in all-day and in service-hours calendars, the
        // working time until the due instant is the SLA (to the ms the
        // rounding allows) and a minute earlier it was not yet reached.
        let holidays = Holidays::new(vec![date!(2026 - 12 - 25)]);
        let d = DayHours::new(7 * 60 + 30, 16 * 60);
        let fri = DayHours::new(7 * 60 + 30, 16 * 60 + 30);
        let medan = ServiceHours::new([d, d, d, d, fri, None, None]).unwrap();
        let base = ms(datetime!(2026-12-14 00:00 +7));
        for hours in [ServiceHours::WEEKDAYS_ALL_DAY, ServiceHours::CITY_DEFAULT, medan] {
            let cal = Calendar { offset: WIB, hours: &hours, holidays: &holidays };
            for half in 0..(14 * 48) {
                let start = base + half * 1_800_000 + 1_234;
                for days in 0..10u32 {
                    let due = cal.due_at(start, days);
                    let w = cal.working_between(start, due);
                    assert!(w <= i64::from(days) * DAY_MS && w >= i64::from(days) * DAY_MS - 4, "{w} {days}");
                    assert!(cal.within(start, due, days));
                    if days > 0 {
                        assert!(cal.working_between(start, due - 60_000) < i64::from(days) * DAY_MS);
                    }
                }
            }
        }
    }

    #[test]
    fn hours_parse_and_refuse() {
        assert_eq!("08:00-16:00".parse::<DayHours>().unwrap().to_string(), "08:00-16:00");
        assert_eq!("00:00-24:00".parse::<DayHours>().unwrap(), DayHours { open: 0, close: 1440 });
        for bad in ["8:00-16:00", "08:00", "16:00-08:00", "08:00-08:00", "08:60-09:00", "24:30-25:00", ""] {
            assert!(bad.parse::<DayHours>().is_err(), "{bad}");
        }
        let spec = ServiceHours::CITY_DEFAULT.to_spec();
        assert_eq!(spec, "mon=08:00-16:00; tue=08:00-16:00; wed=08:00-16:00; thu=08:00-16:00; fri=08:00-16:00");
        assert_eq!(ServiceHours::from_spec(&spec).unwrap(), ServiceHours::CITY_DEFAULT);
        assert_eq!(ServiceHours::from_spec(""), Err(HoursError::NeverOpen));
        assert_eq!(ServiceHours::from_spec("monday=08:00-16:00"), Err(HoursError::Weekday));
        let json = serde_json::to_string(&ServiceHours::CITY_DEFAULT).unwrap();
        assert_eq!(serde_json::from_str::<ServiceHours>(&json).unwrap(), ServiceHours::CITY_DEFAULT);
        assert!(serde_json::from_str::<ServiceHours>(r#"{"mon":"16:00-08:00"}"#).is_err());
        assert!(serde_json::from_str::<ServiceHours>("{}").is_err());
    }

    #[test]
    fn a_journey_splits_its_time_between_the_parties() {
        // Kelurahan open 08:00-16:00; the agency too. Filed Monday 08:00,
        // taken 09:00, waiting for the citizen from 10:00 until Thursday
        // 10:00, taken up again, handed to Disdukcapil at 12:00, taken
        // there Friday 08:00, done there over a weekend, a holiday and a
        // cuti bersama day and back on Wednesday 16:00, completed
        // Thursday 12:00.
        let off = Holidays::new(vec![date!(2026 - 11 - 30), date!(2026 - 12 - 01)]); // Mon (libur), Tue (cuti)
        let cal = Calendar { offset: WIB, hours: &ServiceHours::CITY_DEFAULT, holidays: &off };
        let t = |d: OffsetDateTime| ms(d);
        let created = t(datetime!(2026-11-23 08:00 +7));
        let dk = Some("DISDUKCAPIL".to_owned());
        let events: Vec<JourneyEvent> = vec![
            (created, Status::Submitted, None),
            (t(datetime!(2026-11-23 09:00 +7)), Status::InProgress, None),
            (t(datetime!(2026-11-23 10:00 +7)), Status::WaitingCitizen, None),
            (t(datetime!(2026-11-26 10:00 +7)), Status::InProgress, None),
            (t(datetime!(2026-11-26 12:00 +7)), Status::HandedOff, dk.clone()),
            (t(datetime!(2026-11-27 08:00 +7)), Status::InProgress, dk.clone()),
            (t(datetime!(2026-12-02 16:00 +7)), Status::InProgress, None),
            (t(datetime!(2026-12-03 12:00 +7)), Status::Completed, None),
        ];
        let end = t(datetime!(2026-12-03 12:00 +7));
        let steps = journey_steps(created, end, &events, &cal, &cal);
        let times = journey_times(&steps);
        let hour = DAY_MS / 8;
        // Kelurahan: 1 h + 1 h + 2 h + (Thu 08:00-12:00) 4 h = 8 h.
        assert_eq!(times.kelurahan_ms, 8 * hour);
        // Waiting for the citizen: Mon 6 h, Tue, Wed, Thu 2 h = 24 h of service time.
        assert_eq!(times.citizen_ms, 3 * DAY_MS);
        // Disdukcapil: Thu 12:00-16:00 waiting to be taken (4 h), then
        // Fri, (weekend, holiday, cuti bersama) and Wed 08:00-16:00.
        assert_eq!(times.agencies.get("DISDUKCAPIL"), Some(&(DAY_MS / 2 + 2 * DAY_MS)));
        assert_eq!(complete_at(created, &events), t(datetime!(2026-11-26 10:00 +7)));
        assert_eq!(complete_at(created, &events[..2]), created, "never waited: complete when filed");

        // The kelurahan's clock while it was open: paused while waiting for
        // the citizen and at the agency; after the wait, 2 h of the day
        // were used, so with one day it was due the same Thursday at 16:00.
        let at = |i: usize, now: OffsetDateTime| kelurahan_clock(created, &events[..i], t(now), 1, &cal, &cal);
        assert_eq!(at(3, datetime!(2026-11-24 09:00 +7)), KelurahanClock::Paused);
        assert_eq!(at(6, datetime!(2026-11-27 09:00 +7)), KelurahanClock::Paused);
        assert_eq!(
            at(4, datetime!(2026-11-26 10:00 +7)),
            KelurahanClock::Running { due_ms: t(datetime!(2026-11-26 16:00 +7)) }
        );
        // Back from the agency on Wednesday 16:00 with 4 h used: due
        // Thursday 12:00; at 13:00 an hour over.
        assert_eq!(
            at(7, datetime!(2026-12-02 16:00 +7)),
            KelurahanClock::Running { due_ms: t(datetime!(2026-12-03 12:00 +7)) }
        );
        assert_eq!(at(7, datetime!(2026-12-03 13:00 +7)), KelurahanClock::Overdue { over_ms: hour });
    }

    /// Issue 16: kelurahan → Disdukcapil → forwarded to Dinas Pendidikan
    /// → back to Disdukcapil → back to the kelurahan. A return to a
    /// waiting agency is `in_progress` at that agency, so each stretch
    /// goes to the party holding the request, on that party's calendar,
    /// and is measured against that party's own SLA.
    #[test]
    fn a_forwarded_journey_credits_each_agency_its_own_stretches() {
        let none = Holidays::none();
        // The kelurahan is open 08:00-16:00; the agencies' counters only
        // 08:00-12:00, so an hour there is a quarter of a working day.
        let kel = Calendar { offset: WIB, hours: &ServiceHours::CITY_DEFAULT, holidays: &none };
        let half = DayHours::new(8 * 60, 12 * 60);
        let mornings = ServiceHours::new([half, half, half, half, half, None, None]).unwrap();
        let agencies = Calendar { offset: WIB, hours: &mornings, holidays: &none };
        let t = |d: OffsetDateTime| ms(d);
        let (dk, disdik) = (Some("DISDUKCAPIL".to_owned()), Some("DISDIK".to_owned()));
        let created = t(datetime!(2026-11-23 08:00 +7)); // Monday
        let events: Vec<JourneyEvent> = vec![
            (created, Status::Submitted, None),
            (t(datetime!(2026-11-23 09:00 +7)), Status::InProgress, None),
            (t(datetime!(2026-11-23 11:00 +7)), Status::HandedOff, dk.clone()),
            (t(datetime!(2026-11-23 13:00 +7)), Status::InProgress, dk.clone()),
            (t(datetime!(2026-11-24 10:00 +7)), Status::HandedOff, disdik.clone()), // forwarded
            (t(datetime!(2026-11-24 14:00 +7)), Status::InProgress, disdik.clone()),
            (t(datetime!(2026-11-26 12:00 +7)), Status::InProgress, dk.clone()), // back to Disdukcapil
            (t(datetime!(2026-11-27 10:00 +7)), Status::InProgress, None),       // back to the kelurahan
            (t(datetime!(2026-11-27 15:00 +7)), Status::Completed, None),
        ];
        let end = t(datetime!(2026-11-27 15:00 +7));
        let steps = journey_steps(created, end, &events, &kel, &agencies);
        let parties: Vec<Party> = steps.iter().map(Step::party).collect();
        let (k, a_dk, a_dd) = (Party::Kelurahan, Party::Agency("DISDUKCAPIL".into()), Party::Agency("DISDIK".into()));
        assert_eq!(parties, [k.clone(), k.clone(), a_dk.clone(), a_dk.clone(), a_dd.clone(), a_dd, a_dk, k]);
        let times = journey_times(&steps);
        let (kel_hour, agency_hour) = (DAY_MS / 8, DAY_MS / 4);
        // Kelurahan: Mon 08-09 and 09-11, Fri 10-15: 8 of its hours.
        assert_eq!(times.kelurahan_ms, 8 * kel_hour);
        // Disdukcapil: Mon 11-12 (its counter closes at noon), Tue 08-10,
        // then back on Thu at noon (closed) until Fri 10:00: 08-10.
        assert_eq!(times.agencies["DISDUKCAPIL"], 5 * agency_hour);
        // Dinas Pendidikan: Tue 10-12 (handed; taken after its counter
        // closed), Wed 08-12, Thu 08-12.
        assert_eq!(times.agencies["DISDIK"], 10 * agency_hour);
        assert_eq!(times.agencies.len(), 2);
        assert_eq!(times.citizen_ms, 0);
        // Each against its own promise: the kelurahan 1 day (met exactly),
        // Disdukcapil 2 days (met), Dinas Pendidikan 2 days (half a day over).
        let promise = |days: i64| days * DAY_MS;
        assert!(times.kelurahan_ms <= promise(1));
        assert!(times.agencies["DISDUKCAPIL"] <= promise(2));
        assert_eq!(times.agencies["DISDIK"] - promise(2), DAY_MS / 2);

        // The kelurahan's clock is paused for the whole agency chain and
        // runs again only once the last agency returns it.
        let at = |i: usize, now: OffsetDateTime| kelurahan_clock(created, &events[..i], t(now), 1, &kel, &agencies);
        for (i, now) in [
            (3, datetime!(2026-11-23 12:00 +7)),
            (5, datetime!(2026-11-24 11:00 +7)),
            (6, datetime!(2026-11-25 09:00 +7)),
            (7, datetime!(2026-11-26 15:00 +7)),
        ] {
            assert_eq!(at(i, now), KelurahanClock::Paused, "after event {i}");
        }
        // Back on Fri 10:00 with 3 h used: 5 h left, due at 15:00.
        assert_eq!(
            at(8, datetime!(2026-11-27 10:00 +7)),
            KelurahanClock::Running { due_ms: t(datetime!(2026-11-27 15:00 +7)) }
        );
    }
}
