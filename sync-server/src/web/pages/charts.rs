//! The charts, as inline SVG (no script): requests per day and the IKM
//! trend by month. Each has a date axis with its ticks labelled in the
//! page's language, a value axis with gridlines, axis titles, and a
//! summary in words for screen readers (`role="img"` with `aria-label`
//! and `<desc>`); every bar and point carries its own date and value in a
//! `<title>`.

use super::*;

const MONTHS_SHORT_ID: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "Mei", "Jun", "Jul", "Agu", "Sep", "Okt", "Nov", "Des"];
const MONTHS_SHORT_EN: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn month_short(lang: Lang, month: u8) -> &'static str {
    let i = usize::from(month.clamp(1, 12)) - 1;
    lang.t(MONTHS_SHORT_ID[i], MONTHS_SHORT_EN[i])
}

/// `3 Nov 2026` (`d MMM yyyy`), the same in both languages but the month.
fn day_text(lang: Lang, d: time::Date) -> String {
    format!("{} {} {}", d.day(), month_short(lang, u8::from(d.month())), d.year())
}

/// The local date of a day number (days since the epoch, local).
fn date_of(day: i64) -> Option<time::Date> {
    time::OffsetDateTime::from_unix_timestamp(day * 86_400).ok().map(|t| t.date())
}

/// A round step for a value axis up to `max` with about four intervals.
fn nice_step(max: u64) -> u64 {
    let raw = max.div_ceil(4).max(1);
    let mut magnitude = 1;
    while magnitude * 10 <= raw {
        magnitude *= 10;
    }
    [1, 2, 5, 10].into_iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw)
}

/// Which days of a period get a label on the date axis: every day's
/// number in a short period (thinned to about 16), else the first day of
/// each month. `(index, label)`.
fn date_ticks(lang: Lang, days: &[time::Date]) -> Vec<(usize, String)> {
    if days.len() <= 31 {
        let every = days.len().div_ceil(16).max(1);
        days.iter()
            .enumerate()
            .filter(|(i, _)| i % every == 0)
            .map(|(i, d)| {
                // The month beside the first label and at a month's first day.
                let label = if i == 0 || d.day() == 1 {
                    format!("{} {}", d.day(), month_short(lang, u8::from(d.month())))
                } else {
                    d.day().to_string()
                };
                (i, label)
            })
            .collect()
    } else {
        days.iter()
            .enumerate()
            .filter(|(i, d)| *i == 0 || d.day() == 1)
            .filter(|(i, d)| d.day() == 1 || *i + 10 < days.len())
            .map(|(i, d)| (i, month_short(lang, u8::from(d.month())).to_owned()))
            .collect()
    }
}

/// Requests filed per day: a bar per day of the period (empty days too),
/// dates along the bottom.
pub(super) fn per_day(lang: Lang, days: &[(i64, u64)]) -> Markup {
    let (w, h) = (720.0_f64, 260.0_f64);
    let (left, right, top, bottom) = (52.0_f64, 12.0_f64, 16.0_f64, 52.0_f64);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    let max = days.iter().map(|d| d.1).max().unwrap_or(0);
    let step = nice_step(max.max(1));
    let top_value = max.max(1).div_ceil(step) * step;
    let y = |v: f64| top + plot_h * (1.0 - v / top_value as f64);
    let n = days.len().max(1) as f64;
    let slot = plot_w / n;
    let dates: Vec<time::Date> = days.iter().filter_map(|(d, _)| date_of(*d)).collect();
    let total: u64 = days.iter().map(|d| d.1).sum();
    let busiest = days.iter().max_by_key(|d| (d.1, std::cmp::Reverse(d.0))).filter(|d| d.1 > 0);
    let summary = match (dates.first(), dates.last(), busiest.and_then(|b| date_of(b.0).map(|d| (d, b.1)))) {
        (Some(first), Some(last), Some((day, count))) => format!(
            "{} {} – {}: {total}. {} {} ({count}).",
            lang.t("Permohonan per hari", "Requests per day"),
            day_text(lang, *first),
            day_text(lang, *last),
            lang.t("Terbanyak pada", "Busiest on"),
            day_text(lang, day),
        ),
        _ => lang.t("Belum ada permohonan pada periode ini.", "No requests in this period yet.").to_owned(),
    };
    html! {
        svg #per-day .chart viewBox=(format!("0 0 {w} {h}")) width="100%" role="img" aria-label=(summary) {
            desc { (summary) }
            // The value axis: gridlines at round steps.
            @for v in (0..=top_value).step_by(usize::try_from(step).unwrap_or(1)) {
                line.grid x1=(left) x2=(w - right) y1=(format!("{:.1}", y(v as f64))) y2=(format!("{:.1}", y(v as f64))) {}
                text.tick x=(left - 6.0) y=(format!("{:.1}", y(v as f64) + 5.0)) text-anchor="end" { (v) }
            }
            text.axis-title x="14" y=(top + plot_h / 2.0) text-anchor="middle"
                transform=(format!("rotate(-90 14 {})", top + plot_h / 2.0)) { (lang.t("Permohonan", "Requests")) }
            @for (i, (day, count)) in days.iter().enumerate() {
                @let bh = plot_h * (*count as f64) / top_value as f64;
                rect.bar x=(format!("{:.1}", left + slot * i as f64 + slot * 0.1)) y=(format!("{:.1}", top + plot_h - bh))
                    width=(format!("{:.1}", (slot * 0.8).max(0.5))) height=(format!("{:.1}", bh)) {
                    title { @if let Some(d) = date_of(*day) { (day_text(lang, d)) } ": " (count) }
                }
            }
            line.axis x1=(left) x2=(w - right) y1=(top + plot_h) y2=(top + plot_h) {}
            @for (i, label) in date_ticks(lang, &dates) {
                @let x = left + slot * (i as f64 + 0.5);
                line.axis x1=(format!("{x:.1}")) x2=(format!("{x:.1}")) y1=(top + plot_h) y2=(top + plot_h + 5.0) {}
                text.tick x=(format!("{x:.1}")) y=(top + plot_h + 20.0) text-anchor="middle" { (label) }
            }
            text.axis-title x=(left + plot_w / 2.0) y=(h - 8.0) text-anchor="middle" {
                (lang.t("Tanggal", "Date"))
                @if let (Some(first), Some(last)) = (dates.first(), dates.last()) {
                    " (" (day_text(lang, *first)) " – " (day_text(lang, *last)) ")"
                }
            }
        }
    }
}

/// The IKM of each month of `year` (`None`: no respondents), the grade
/// bands drawn behind; months run along the bottom.
pub(super) fn ikm_trend(lang: Lang, year: i32, points: &[Option<f64>]) -> Markup {
    let (w, h) = (720.0_f64, 280.0_f64);
    let (left, right, top, bottom) = (52.0_f64, 40.0_f64, 12.0_f64, 52.0_f64);
    let plot_w = w - left - right;
    let plot_h = h - top - bottom;
    // IKM runs 25-100; the chart shows 25-100.
    let y = |ikm: f64| top + plot_h * (100.0 - ikm) / 75.0;
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / points.len().max(1) as f64;
    // A line only between months that both have a figure.
    let mut segments: Vec<Vec<String>> = vec![Vec::new()];
    for (i, v) in points.iter().enumerate() {
        match v {
            Some(v) => segments.last_mut().expect("one").push(format!("{:.1},{:.1}", x(i), y(*v))),
            None => segments.push(Vec::new()),
        }
    }
    let shown: Vec<(usize, f64)> = points.iter().enumerate().filter_map(|(i, v)| v.map(|v| (i, v))).collect();
    let summary = if shown.is_empty() {
        format!("{} {year}: {}", lang.t("Tren IKM", "IKM trend"), lang.t("belum ada responden.", "no respondents yet."))
    } else {
        let parts: Vec<String> = shown
            .iter()
            .map(|(i, v)| format!("{} {v:.2}", month_short(lang, u8::try_from(i + 1).unwrap_or(1))))
            .collect();
        format!("{} {year}: {}.", lang.t("Tren IKM per bulan", "IKM by month"), parts.join(", "))
    };
    html! {
        svg #trend .chart viewBox=(format!("0 0 {w} {h}")) width="100%" role="img" aria-label=(summary) {
            desc { (summary) }
            // Grade bands: where A, B and C start (SKM, PermenPANRB 14/2017).
            @for (edge, grade) in [(88.31, "A"), (76.61, "B"), (65.0, "C")] {
                line.band x1=(left) x2=(w - right) y1=(format!("{:.1}", y(edge))) y2=(format!("{:.1}", y(edge))) {}
                text.tick x=(w - right + 6.0) y=(format!("{:.1}", y(edge) + 5.0)) { (grade) }
            }
            text.tick x=(w - right + 6.0) y=(format!("{:.1}", y(45.0) + 5.0)) { "D" }
            @for v in [25, 50, 75, 100] {
                line.grid x1=(left) x2=(w - right) y1=(format!("{:.1}", y(f64::from(v)))) y2=(format!("{:.1}", y(f64::from(v)))) {}
                text.tick x=(left - 6.0) y=(format!("{:.1}", y(f64::from(v)) + 5.0)) text-anchor="end" { (v) }
            }
            text.axis-title x="14" y=(top + plot_h / 2.0) text-anchor="middle"
                transform=(format!("rotate(-90 14 {})", top + plot_h / 2.0)) { "IKM" }
            @for seg in &segments {
                @if seg.len() > 1 { polyline.line points=(seg.join(" ")) {} }
            }
            @for (i, v) in &shown {
                circle.point cx=(format!("{:.1}", x(*i))) cy=(format!("{:.1}", y(*v))) r="5" {
                    title { (month_short(lang, u8::try_from(i + 1).unwrap_or(1))) " " (year) ": " (format!("{v:.2}")) }
                }
            }
            line.axis x1=(left) x2=(w - right) y1=(top + plot_h) y2=(top + plot_h) {}
            @for i in 0..points.len() {
                line.axis x1=(format!("{:.1}", x(i))) x2=(format!("{:.1}", x(i))) y1=(top + plot_h) y2=(top + plot_h + 5.0) {}
                text.tick x=(format!("{:.1}", x(i))) y=(top + plot_h + 20.0) text-anchor="middle" {
                    (month_short(lang, u8::try_from(i + 1).unwrap_or(1)))
                }
            }
            text.axis-title x=(left + plot_w / 2.0) y=(h - 8.0) text-anchor="middle" {
                (lang.t("Bulan", "Month")) " " (year)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_axes_step_in_round_numbers() {
        assert_eq!(nice_step(1), 1);
        assert_eq!(nice_step(4), 1);
        assert_eq!(nice_step(7), 2);
        assert_eq!(nice_step(37), 10);
        assert_eq!(nice_step(140), 50);
        assert_eq!(nice_step(1_000), 500);
    }

    #[test]
    fn a_month_is_labelled_by_day_and_a_year_by_month() {
        let day0 = time::macros::date!(2026 - 11 - 01);
        let month: Vec<time::Date> = (0..30).map(|i| day0 + time::Duration::days(i)).collect();
        let ticks = date_ticks(Lang::Id, &month);
        assert_eq!(ticks[0], (0, "1 Nov".to_owned()));
        assert_eq!(ticks[1], (2, "3".to_owned()));
        assert!(ticks.len() <= 16, "{ticks:?}");
        let jan = time::macros::date!(2026 - 01 - 01);
        let year: Vec<time::Date> = (0..365).map(|i| jan + time::Duration::days(i)).collect();
        let labels: Vec<String> = date_ticks(Lang::En, &year).into_iter().map(|t| t.1).collect();
        assert_eq!(labels, MONTHS_SHORT_EN.map(str::to_owned));
        let labels: Vec<String> = date_ticks(Lang::Id, &year).into_iter().map(|t| t.1).collect();
        assert_eq!(labels[4], "Mei");
    }

    #[test]
    fn the_charts_name_their_dates() {
        // 1 November 2026 is day 20758 since the epoch.
        let first = (time::macros::date!(2026 - 11 - 01) - time::macros::date!(1970 - 01 - 01)).whole_days();
        let days: Vec<(i64, u64)> = (0..30).map(|i| (first + i, if i == 2 { 7 } else { 1 })).collect();
        let svg = per_day(Lang::Id, &days).into_string();
        assert!(svg.contains(">1 Nov<"), "{svg}");
        assert!(svg.contains("<title>3 Nov 2026: 7</title>"), "{svg}");
        assert!(svg.contains("Terbanyak pada 3 Nov 2026 (7)"), "{svg}");
        let en = ikm_trend(Lang::En, 2026, &[Some(80.0), None, Some(90.5)]).into_string();
        assert!(en.contains(">Jan<") && en.contains(">Mar<") && en.contains("Month 2026"), "{en}");
        assert!(en.contains("IKM by month 2026: Jan 80.00, Mar 90.50."), "{en}");
        assert!(!en.contains("polyline"), "no line across a month without respondents: {en}");
    }
}
