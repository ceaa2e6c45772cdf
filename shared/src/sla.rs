//! Service-level deadlines in working days.
//!
//! A catalog service promises to finish within `sla_days` working days.
//! Working time is local time on Monday to Friday, minus public holidays
//! (passed in: the list is a central decision, not a rule of nature).
//! The clock runs from the moment the request is filed: filed on Friday at
//! 10:00 with one working day, it is due on Monday at 10:00; filed on
//! Saturday, the clock starts on Monday at 00:00.
//!
//! Both functions are pure and O(1) in the length of the interval (plus a
//! binary search in the holiday list), so the central reports can apply
//! them to a million requests.

use time::{Date, OffsetDateTime, Time, UtcOffset, Weekday};

const DAY_MS: i64 = 86_400_000;

/// Public holidays, sorted and unique.
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

    fn contains(&self, d: Date) -> bool {
        self.0.binary_search(&d).is_ok()
    }

    /// Holidays on a weekday in `[from, to)`.
    fn weekday_count(&self, from: Date, to: Date) -> i64 {
        let lo = self.0.partition_point(|d| *d < from);
        let hi = self.0.partition_point(|d| *d < to);
        let count = self.0[lo..hi].iter().filter(|d| is_weekday(**d)).count();
        i64::try_from(count).unwrap_or(i64::MAX)
    }
}

fn is_weekday(d: Date) -> bool {
    !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
}

fn is_working(d: Date, holidays: &Holidays) -> bool {
    is_weekday(d) && !holidays.contains(d)
}

fn local(ms: i64, offset: UtcOffset) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset)
}

fn ms_of(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Weekdays (Monday to Friday) in `[from, to)`, by whole weeks.
fn weekdays_between(from: Date, to: Date) -> i64 {
    let days = (to - from).whole_days();
    if days <= 0 {
        return 0;
    }
    let (weeks, rest) = (days / 7, days % 7);
    let start = i64::from(from.weekday().number_days_from_monday());
    let rest_weekdays = (0..rest).filter(|i| (start + i) % 7 < 5).count();
    weeks * 5 + i64::try_from(rest_weekdays).unwrap_or(0)
}

/// Working days in `[from, to)`.
fn working_days_between(from: Date, to: Date, holidays: &Holidays) -> i64 {
    weekdays_between(from, to) - holidays.weekday_count(from, to)
}

/// Working time between two instants, in milliseconds (0 if `end <= start`).
pub fn working_ms_between(start_ms: i64, end_ms: i64, offset: UtcOffset, holidays: &Holidays) -> i64 {
    if end_ms <= start_ms {
        return 0;
    }
    let (start, end) = (local(start_ms, offset), local(end_ms, offset));
    let (d0, d1) = (start.date(), end.date());
    let day_part = |t: OffsetDateTime| {
        let since_midnight = t.time() - Time::MIDNIGHT;
        i64::try_from(since_midnight.whole_milliseconds()).unwrap_or(0)
    };
    if d0 == d1 {
        return if is_working(d0, holidays) { end_ms - start_ms } else { 0 };
    }
    // The rest of the first day, the whole days between, the start of the last.
    let first = if is_working(d0, holidays) { DAY_MS - day_part(start) } else { 0 };
    let last = if is_working(d1, holidays) { day_part(end) } else { 0 };
    let middle = d0.next_day().map_or(0, |d| working_days_between(d, d1, holidays));
    first + middle * DAY_MS + last
}

/// Working days between two instants, as a fraction (for reports).
pub fn working_days_elapsed(start_ms: i64, end_ms: i64, offset: UtcOffset, holidays: &Holidays) -> f64 {
    // Precision: ms counts stay far below 2^53.
    working_ms_between(start_ms, end_ms, offset, holidays) as f64 / DAY_MS as f64
}

/// The instant a request filed at `start_ms` is due: `sla_days` working
/// days of working time later. Holidays further than a year past the
/// start are ignored (no SLA is that long).
pub fn due_at_ms(start_ms: i64, sla_days: u32, offset: UtcOffset, holidays: &Holidays) -> i64 {
    let mut t = local(start_ms, offset);
    // Move the start to working time.
    while !is_working(t.date(), holidays) {
        let Some(next) = t.date().next_day() else { return i64::MAX };
        t = next.midnight().assume_offset(offset);
    }
    let mut remaining = sla_days;
    let mut day = t.date();
    while remaining > 0 {
        let Some(next) = day.next_day() else { return i64::MAX };
        day = next;
        if is_working(day, holidays) {
            remaining -= 1;
        }
    }
    ms_of(day.with_time(t.time()).assume_offset(offset))
}

/// Whether a request filed at `start_ms` and finished (or still open) at
/// `end_ms` stayed within its SLA.
pub fn within_sla(start_ms: i64, end_ms: i64, sla_days: u32, offset: UtcOffset, holidays: &Holidays) -> bool {
    working_ms_between(start_ms, end_ms, offset, holidays) <= i64::from(sla_days) * DAY_MS
}

#[cfg(test)]
mod tests {
    use time::macros::{date, datetime, offset};

    use super::*;

    const WIB: UtcOffset = offset!(+7);

    fn ms(t: OffsetDateTime) -> i64 {
        ms_of(t)
    }

    #[test]
    fn due_dates_skip_weekends_and_holidays() {
        let none = Holidays::none();
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
            assert_eq!(due_at_ms(ms(filed), days, WIB, &none), ms(due), "{filed} + {days}");
        }
        let holidays = Holidays::new(vec![date!(2026 - 11 - 30)]);
        assert_eq!(
            due_at_ms(ms(datetime!(2026-11-27 10:00 +7)), 1, WIB, &holidays),
            ms(datetime!(2026-12-01 10:00 +7)),
            "a Monday holiday pushes a Friday filing to Tuesday"
        );
    }

    #[test]
    fn working_time_counts_only_working_days() {
        let none = Holidays::none();
        let h = |a, b| working_ms_between(ms(a), ms(b), WIB, &none);
        assert_eq!(h(datetime!(2026-11-27 10:00 +7), datetime!(2026-11-30 10:00 +7)), DAY_MS); // Fri→Mon
        assert_eq!(h(datetime!(2026-11-28 10:00 +7), datetime!(2026-11-29 22:00 +7)), 0); // weekend only
        assert_eq!(h(datetime!(2026-11-23 08:00 +7), datetime!(2026-11-23 09:30 +7)), 5_400_000);
        assert_eq!(h(datetime!(2026-11-02 00:00 +7), datetime!(2026-11-30 00:00 +7)), 20 * DAY_MS); // 4 weeks
        assert_eq!(h(datetime!(2026-11-30 00:00 +7), datetime!(2026-11-02 00:00 +7)), 0, "reversed");
        // A clock days off (end before start) never counts negative time.
        let holidays = Holidays::new(vec![date!(2026 - 11 - 25), date!(2026 - 11 - 28)]); // Wed, and a Saturday
        assert_eq!(
            working_ms_between(ms(datetime!(2026-11-23 00:00 +7)), ms(datetime!(2026-11-30 00:00 +7)), WIB, &holidays),
            4 * DAY_MS
        );
    }

    #[test]
    fn due_and_elapsed_agree() {
        // For every start hour over two weeks and every SLA up to 10 days,
        // the working time until the due instant is exactly the SLA.
        let none = Holidays::new(vec![date!(2026 - 12 - 25)]);
        let base = ms(datetime!(2026-12-14 00:00 +7));
        for hour in 0..(14 * 24) {
            let start = base + hour * 3_600_000 + 1_234;
            for days in 0..10u32 {
                let due = due_at_ms(start, days, WIB, &none);
                assert_eq!(working_ms_between(start, due, WIB, &none).max(0), i64::from(days) * DAY_MS);
                assert!(within_sla(start, due, days, WIB, &none));
                assert!(!within_sla(start, due + 60_000, days, WIB, &none));
            }
        }
    }
}
