//! Staff competency: the register, each staff member's work and U6/U7,
//! training needs, and trainings with their before/after comparison.

use super::*;

// ------------------------------------------------------------------ staff competency

/// NRR below this is below grade B ("Baik") on the SKM bands.
pub(super) const NRR_GOOD: f64 = 3.0644;
/// Ratings needed before a staff member's scores are judged.
pub(super) const RATED_MIN: u64 = 5;
/// The before/after window around a training.
pub(super) const TRAINING_WINDOW_DAYS: i64 = 90;

pub(super) fn nrr_cell(v: Option<f64>) -> Markup {
    html! {
        @match v {
            Some(v) if v < NRR_GOOD => strong.bad { (format!("{v:.2}")) },
            Some(v) => (format!("{v:.2}")),
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
        td.num { @if let Some(p) = w.sla_percent() { (format!("{p:.0}%")) } @else { "—" } }
        td.num { (w.rated) }
        td.num { (nrr_cell(w.nrr(w.u6))) }
        td.num { (nrr_cell(w.nrr(w.u7))) }
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
    let trainings = crate::ops::reports::trainings(&st.db).await?;
    let name_of = |nip: &str| register.iter().find(|s| s.nip == nip).map_or(nip.to_owned(), |s| s.name.clone());
    // Training needs: staff with enough ratings whose U6 or U7 is below B,
    // or who finished under 80 % within the SLA; lowest first.
    let mut needs: Vec<(&crate::ops::reports::StaffRow, &crate::ops::reports::StaffWork, f64)> = register
        .iter()
        .filter_map(|s| {
            let w = work.get(&s.nip)?;
            let low = [w.nrr(w.u6), w.nrr(w.u7)].into_iter().flatten().fold(f64::INFINITY, f64::min);
            let weak_scores = w.rated >= RATED_MIN && low < NRR_GOOD;
            let weak_sla = w.finished >= RATED_MIN && w.sla_percent().is_some_and(|p| p < 80.0);
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
            (o.rated >= RATED_MIN && low < NRR_GOOD) || o.sla_percent().is_some_and(|p| p < 80.0)
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
        th { "Ditangani" } th { "Median waktu" } th { "Dalam SLA" } th { "Dinilai" } th { "U6 Kompetensi" } th { "U7 Perilaku" }
    };
    let body = html! {
        h1 { "Kompetensi petugas / Staff competency" }
        form.filters method="get" action="/admin/staf" {
            label for="periode" { "Periode / Period" }
            select #periode name="periode" {
                @for y in [period.year, period.year - 1] {
                    @for p in Period::choices(y) { option value=(p.code()) selected[p == period] { (p.code()) } }
                }
            }
            button.primary type="submit" { "Tampilkan / Show" }
        }
        p { "U6 dan U7 dari penilaian SKM atas permohonan yang ditangani petugas; di bawah " (NRR_GOOD) " (mutu B) ditandai. Dinilai setelah minimal " (RATED_MIN) " penilaian." }
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
                th { "Tanggal" } th { "Petugas" } th { "Topik" } th { "Penyelenggara" }
                th { "U6 sebelum" } th { "U6 sesudah" } th { "U7 sebelum" } th { "U7 sesudah" } th { "SLA sebelum" } th { "SLA sesudah" }
            } }
            tbody {
                @for (t, before, after) in &compared {
                    @let b = before.clone().unwrap_or_default();
                    @let a = after.clone().unwrap_or_default();
                    tr data-nip=(t.nip) {
                        td { (t.day.to_string()) } td { (name_of(&t.nip)) " (" (t.nip) ")" } td { (t.topic) } td { (t.provider) }
                        td.num { (nrr_cell(b.nrr(b.u6))) } td.num { (nrr_cell(a.nrr(a.u6))) }
                        td.num { (nrr_cell(b.nrr(b.u7))) } td.num { (nrr_cell(a.nrr(a.u7))) }
                        td.num { @if let Some(p) = b.sla_percent() { (format!("{p:.0}%")) } @else { "—" } }
                        td.num { @if let Some(p) = a.sla_percent() { (format!("{p:.0}%")) } @else { "—" } }
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
                button.primary type="submit" { "Simpan / Save" }
            }
        }
        h2 { "Daftar petugas / Staff register" }
        table #register {
            thead { tr { th { "NIP" } th { "Nama" } th { "Kelurahan" } th { "Peran" } th { "Aktif" } (head) } }
            tbody {
                @for s in &register {
                    tr data-nip=(s.nip) {
                        td.mono { (s.nip) } td { (s.name) } td { (place_name(&s.kelurahan)) } td { (s.role) }
                        td { @if s.active { "ya" } @else { "tidak" } }
                        (work_cells(work.get(&s.nip)))
                    }
                }
            }
        }
    };
    let markup = frame("Kompetensi petugas", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

#[derive(Deserialize)]
pub(super) struct TrainingForm {
    csrf: Option<String>,
    nip: Option<String>,
    day: Option<String>,
    topic: Option<String>,
    provider: Option<String>,
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
    crate::ops::reports::record_training(
        &st.db,
        &web.user,
        crate::ops::reports::Training { nip: nip.to_string(), day, topic, provider },
    )
    .await?;
    tracing::info!(nip = %nip, by = %web.user.username, "training recorded");
    Ok((page.jar, Redirect::to("/admin/staf")).into_response())
}
