//! Staff competency: the register, each staff member's work and U6/U7,
//! training needs, and trainings (hours in JP against the 20 JP a year,
//! the competency built) with their before/after comparison.
//!
//! Figures are shown with the precision their thresholds use, rounded
//! toward the threshold's safe side (down), so a value marked below a
//! threshold never reads as the threshold: NRR to 4 decimals (B starts at
//! 3.0644), SLA shares in whole percent (80 %). Scores are judged, and
//! shown, only from `RATED_MIN` ratings, in the before/after view too.

use super::*;

// ------------------------------------------------------------------ staff competency

/// NRR below this is below grade B ("Baik") on the SKM bands.
pub(super) const NRR_GOOD: f64 = 3.0644;
/// Ratings needed before a staff member's scores are judged.
pub(super) const RATED_MIN: u64 = 5;
/// The before/after window around a training.
pub(super) const TRAINING_WINDOW_DAYS: i64 = 90;

/// The share within the SLA below which an office or a person needs help.
pub(super) const SLA_PERCENT_GOOD: f64 = 80.0;

/// `v` cut (not rounded) to `decimals`: 3.06439 is 3.0643, never 3.0644.
fn cut(v: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    // The epsilon keeps an exact quotient such as 30644/10000 from
    // dropping a unit to binary rounding.
    (v * scale + 1e-9).floor() / scale
}

/// An NRR (1-4) to the 4 decimals of the B threshold.
pub(crate) fn nrr_text(v: f64) -> String {
    format!("{:.4}", cut(v, 4))
}

/// A share within the SLA in whole percent, cut: 79.9 % is 79 %.
pub(crate) fn percent_text(p: f64) -> String {
    format!("{:.0}%", cut(p, 0))
}

/// An NRR judged only from `RATED_MIN` ratings; below B in bold.
pub(crate) fn nrr_cell(v: Option<f64>, rated: u64) -> Markup {
    html! {
        @match v {
            Some(_) if rated < RATED_MIN => span.few title=(format!("kurang dari {RATED_MIN} penilaian / fewer than {RATED_MIN} ratings")) { "—" },
            Some(v) if v < NRR_GOOD => strong.bad { (nrr_text(v)) },
            Some(v) => (nrr_text(v)),
            None => "—",
        }
    }
}

/// A share within the SLA, judged only from `RATED_MIN` finished requests.
pub(crate) fn sla_cell(w: &crate::ops::reports::StaffWork) -> Markup {
    html! {
        @match w.sla_percent() {
            Some(_) if w.finished < RATED_MIN => span.few title=(format!("kurang dari {RATED_MIN} permohonan selesai / fewer than {RATED_MIN} finished")) { "—" },
            Some(p) if p < SLA_PERCENT_GOOD => strong.bad { (percent_text(p)) },
            Some(p) => (percent_text(p)),
            None => "—",
        }
    }
}

pub(super) fn work_cells(w: Option<&crate::ops::reports::StaffWork>) -> Markup {
    let w = w.cloned().unwrap_or_default();
    let median = (w.finished > 0).then(|| super::time_lost::count_median_p90(&w.working).1);
    html! {
        td.num { (w.handled) }
        td.num { @if let Some(m) = median { (duration_text(m)) } @else { "—" } }
        td.num { (sla_cell(&w)) }
        td.num { (w.rated) }
        td.num { (nrr_cell(w.nrr(w.u6), w.rated)) }
        td.num { (nrr_cell(w.nrr(w.u7), w.rated)) }
    }
}

/// A staff member's JP in the year against what an ASN is owed; contract
/// staff are not owed it, so theirs is shown without a target.
fn hours_cell(kind: loket_shared::StaffKind, hours: i64) -> Markup {
    use crate::ops::reports::TRAINING_HOURS_YEARLY;
    html! {
        @if kind == loket_shared::StaffKind::NonAsn {
            (hours) " JP"
        } @else if hours < TRAINING_HOURS_YEARLY {
            strong.bad { (hours) " / " (TRAINING_HOURS_YEARLY) " JP" }
        } @else {
            (hours) " / " (TRAINING_HOURS_YEARLY) " JP"
        }
    }
}

pub(super) async fn staff_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<TimeQuery>,
) -> Result<Response, PageError> {
    if web.user.role == Role::Agency {
        return Err(error::forbidden().into());
    }
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, true)?;
    let (from, to) = period.range_ms(offset);
    let register = crate::ops::reports::staff_register(&st.db, &web.user).await?;
    let work = crate::ops::reports::staff_work(&st.db, &web.user, (from, to), Some(period.months()), None).await?;
    // A kelurahan's supervisor sees the trainings of their own staff only.
    let trainings = crate::ops::reports::trainings(&st.db, &web.user, &register).await?;
    let hours = crate::ops::reports::training_hours(&st.db, period.year).await?;
    let name_of = |nip: &str| register.iter().find(|s| s.nip == nip).map_or(nip.to_owned(), |s| s.name.clone());
    // Training needs: staff with enough ratings whose U6 or U7 is below B,
    // or who finished under 80 % within the SLA; lowest first.
    let mut needs: Vec<(&crate::ops::reports::StaffRow, &crate::ops::reports::StaffWork, f64)> = register
        .iter()
        .filter_map(|s| {
            let w = work.get(&s.nip)?;
            let low = [w.nrr(w.u6), w.nrr(w.u7)].into_iter().flatten().fold(f64::INFINITY, f64::min);
            let weak_scores = w.rated >= RATED_MIN && low < NRR_GOOD;
            let weak_sla = w.finished >= RATED_MIN && w.sla_percent().is_some_and(|p| p < SLA_PERCENT_GOOD);
            (weak_scores || weak_sla).then_some((s, w, if low.is_finite() { low } else { 4.0 }))
        })
        .collect();
    needs.sort_by(|a, b| a.2.total_cmp(&b.2));
    // Offices: the same by kelurahan.
    let mut offices: std::collections::BTreeMap<&str, crate::ops::reports::StaffWork> =
        std::collections::BTreeMap::new();
    for s in &register {
        if let Some(w) = work.get(&s.nip) {
            offices.entry(s.kelurahan.as_str()).or_default().add(w);
        }
    }
    let mut weak_offices: Vec<(&str, &crate::ops::reports::StaffWork)> = offices
        .iter()
        .filter(|(_, o)| {
            let low = [o.nrr(o.u6), o.nrr(o.u7)].into_iter().flatten().fold(f64::INFINITY, f64::min);
            (o.rated >= RATED_MIN && low < NRR_GOOD)
                || (o.finished >= RATED_MIN && o.sla_percent().is_some_and(|p| p < SLA_PERCENT_GOOD))
        })
        .map(|(k, o)| (*k, o))
        .collect();
    weak_offices.sort_by(|a, b| {
        let key = |o: &crate::ops::reports::StaffWork| o.nrr(o.u6.min(o.u7)).unwrap_or(4.0);
        key(a.1).total_cmp(&key(b.1))
    });
    // Before and after each training.
    let day_ms = 86_400_000i64;
    let mut compared = Vec::new();
    for t in trainings.iter().take(50) {
        let at = i64::try_from(t.day.midnight().assume_offset(offset).unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let before = crate::ops::reports::staff_work(
            &st.db,
            &web.user,
            (at - TRAINING_WINDOW_DAYS * day_ms, at),
            None,
            Some(t.nip.clone()),
        )
        .await?;
        let after = crate::ops::reports::staff_work(
            &st.db,
            &web.user,
            (at, at + TRAINING_WINDOW_DAYS * day_ms),
            None,
            Some(t.nip.clone()),
        )
        .await?;
        compared.push((t, before.get(&t.nip).cloned(), after.get(&t.nip).cloned()));
    }
    let head = html! {
        th { "Permohonan ditangani" } th { "Median waktu kerja" } th { "Selesai sesuai SLA" } th { "Jumlah penilaian" }
        th { "U6 Kompetensi pelaksana" } th { "U7 Perilaku pelaksana" }
    };
    let body = html! {
        h1 { "Kompetensi dan Pelatihan Petugas Layanan" }
        p.subtitle lang="en" { "Service staff competency and training" }
        form.filters method="get" action="/admin/staf" {
            label for="periode" { "Periode / Period" }
            select #periode name="periode" {
                @for y in [period.year, period.year - 1] {
                    @for p in Period::choices(y) { option value=(p.code()) selected[p == period] { (p.label()) } }
                }
            }
            button.primary type="submit" { "Tampilkan / Show" }
        }
        p { "Periode " strong #period data-code=(period.code()) { (period.label()) } ". U6 dan U7 dari penilaian SKM atas permohonan yang ditangani petugas; NRR di bawah " (format!("{NRR_GOOD:.4}")) " (mutu B) dan penyelesaian sesuai SLA di bawah " (SLA_PERCENT_GOOD) "% ditandai. Dinilai setelah minimal " (RATED_MIN) " penilaian atau permohonan selesai. Hak pengembangan kompetensi ASN: " (crate::ops::reports::TRAINING_HOURS_YEARLY) " JP setahun." }
        h2 { "Kebutuhan pelatihan / Training needs" }
        @if needs.is_empty() && weak_offices.is_empty() { p #needs-empty { "Tidak ada. / None." } }
        table #needs {
            thead { tr { th { "NIP" } th { "Nama" } th { "Kelurahan" } (head) } }
            tbody {
                @for (s, w, _) in &needs {
                    tr data-nip=(s.nip) { td.mono { (s.nip) } td { (s.name) } td { (place_name(&s.kelurahan)) } (work_cells(Some(w))) }
                }
            }
        }
        h3 { "Kantor / Offices" }
        table #needs-offices {
            thead { tr { th { "Kelurahan" } (head) } }
            tbody {
                @for (k, o) in &weak_offices { tr data-key=(k) { td { (place_name(k)) } (work_cells(Some(o))) } }
            }
        }
        h2 { "Pelatihan: sebelum dan sesudah / Trainings: before and after (" (TRAINING_WINDOW_DAYS) " hari)" }
        table #trainings {
            thead { tr {
                th { "Tanggal" } th { "Petugas" } th { "Topik" } th { "Penyelenggara" } th { "JP" } th { "Kompetensi" }
                th { "U6 sebelum" } th { "U6 sesudah" } th { "U7 sebelum" } th { "U7 sesudah" } th { "SLA sebelum" } th { "SLA sesudah" }
            } }
            tbody {
                @for (t, before, after) in &compared {
                    @let b = before.clone().unwrap_or_default();
                    @let a = after.clone().unwrap_or_default();
                    tr data-nip=(t.nip) {
                        td { (t.day.to_string()) } td { (name_of(&t.nip)) " (" (t.nip) ")" } td { (t.topic) } td { (t.provider) }
                        td.num.hours { @if let Some(h) = t.hours { (h) } @else { "—" } }
                        td.competency { @if let Some(c) = t.competency { (c.label()) } @else { "—" } }
                        td.num { (nrr_cell(b.nrr(b.u6), b.rated)) } td.num { (nrr_cell(a.nrr(a.u6), a.rated)) }
                        td.num { (nrr_cell(b.nrr(b.u7), b.rated)) } td.num { (nrr_cell(a.nrr(a.u7), a.rated)) }
                        td.num { (sla_cell(&b)) }
                        td.num { (sla_cell(&a)) }
                    }
                }
            }
        }
        @if web.user.role == Role::Admin {
            h3 { "Catat pelatihan / Record a training" }
            form #training-form method="post" action="/admin/staf/pelatihan" {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="t-nip" { "Petugas" }
                select #t-nip name="nip" required {
                    @for s in &register { option value=(s.nip) { (s.name) " (" (s.nip) ", " (place_name(&s.kelurahan)) ")" } }
                }
                label for="t-day" { "Tanggal (YYYY-MM-DD)" }
                input #t-day name="day" type="text" required maxlength="10" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}";
                label for="t-topic" { "Topik" }
                input #t-topic name="topic" type="text" required maxlength="200";
                label for="t-provider" { "Penyelenggara" }
                input #t-provider name="provider" type="text" required maxlength="200";
                label for="t-hours" { "Jumlah JP (jam pelajaran, 1-" (crate::ops::reports::TRAINING_HOURS_MAX) ")" }
                input #t-hours name="hours" type="number" required min="1" max=(crate::ops::reports::TRAINING_HOURS_MAX) step="1";
                label for="t-competency" { "Kompetensi yang dibangun" }
                select #t-competency name="competency" required {
                    @for c in crate::ops::reports::Competency::ALL { option value=(c.code()) { (c.label()) } }
                }
                button.primary type="submit" { "Simpan / Save" }
            }
        }
        h2 { "Daftar petugas / Staff register" }
        table #register {
            thead { tr {
                th { "NIP / ID" } th { "Nama" } th { "Kelurahan" } th { "Jenis pegawai" } th { "Jabatan" } th { "Aktif" }
                th { "Pelatihan " (period.year) } (head)
            } }
            tbody {
                @for s in &register {
                    tr data-nip=(s.nip) {
                        td.mono { (s.nip) } td { (s.name) } td { (place_name(&s.kelurahan)) } td { (s.kind.label()) }
                        td { (s.role.label()) }
                        td { @if s.active { "Ya" } @else { "Tidak" } }
                        td.num.hours { (hours_cell(s.kind, hours.get(&s.nip).copied().unwrap_or(0))) }
                        (work_cells(work.get(&s.nip)))
                    }
                }
            }
        }
    };
    let markup = frame("Kompetensi dan Pelatihan Petugas Layanan", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

#[derive(Deserialize)]
pub(super) struct TrainingForm {
    csrf: Option<String>,
    nip: Option<String>,
    day: Option<String>,
    topic: Option<String>,
    provider: Option<String>,
    hours: Option<String>,
    competency: Option<String>,
}

pub(super) async fn training_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<TrainingForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let nip: loket_shared::StaffId =
        form.nip.as_deref().unwrap_or("").trim().parse().map_err(|e| ApiError::unprocessable("invalid_nip", e))?;
    // Only someone on a roster (a typed id would record a training for nobody).
    let register = crate::ops::reports::staff_register(&st.db, &web.user).await?;
    if !register.iter().any(|s| s.nip == nip.as_str()) {
        return Err(ApiError::unprocessable(
            "unknown_staff",
            "petugas tidak ada dalam daftar petugas / the staff member is on no roster",
        )
        .into());
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(form.day.as_deref().unwrap_or("").trim(), &fmt)
        .map_err(|_| ApiError::unprocessable("invalid_date", "tanggal YYYY-MM-DD / date as YYYY-MM-DD"))?;
    let text = |v: Option<String>, field: &'static str| -> Result<String, ApiError> {
        let v = v.unwrap_or_default().trim().to_owned();
        if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
            return Err(ApiError::unprocessable(
                field,
                "1-200 huruf tanpa karakter kendali / 1-200 characters, no control characters",
            ));
        }
        Ok(v)
    };
    let topic = text(form.topic, "invalid_topic")?;
    let provider = text(form.provider, "invalid_provider")?;
    let hours = crate::ops::reports::parse_training_hours(form.hours.as_deref().unwrap_or(""))?;
    let competency = crate::ops::reports::parse_competency(form.competency.as_deref().unwrap_or(""))?;
    crate::ops::reports::record_training(
        &st.db,
        &web.user,
        crate::ops::reports::Training {
            nip: nip.to_string(),
            day,
            topic,
            provider,
            hours: Some(hours),
            competency: Some(competency),
        },
    )
    .await?;
    tracing::info!(nip = %nip, by = %web.user.username, "training recorded");
    Ok((page.jar, Redirect::to("/admin/staf")).into_response())
}
