//! Staff competency: the register, each staff member's work and U6/U7,
//! training needs (complaint handling per office from its complaints and
//! U8, `ops::complaints::complaint_needs`), and trainings (hours in JP against the 20 JP a year,
//! the competency built) with their before/after comparison.
//!
//! Each person is listed once, however many rosters list them (a staff
//! member who moved offices is on the old roster as inactive and on the
//! new one): under the office that lists them as active, with the work
//! they did anywhere, and where it was when that is more than one office.
//! Offices are judged on the work done there. (Listing a person once per
//! office with that office's figures was the alternative; but training is
//! for the person, their JP and trainings are theirs, and split figures
//! would leave a mover with 3 + 3 ratings unjudged in both places.)
//!
//! Figures are shown with the precision their thresholds use, rounded
//! toward the threshold's safe side (down), so a value marked below a
//! threshold never reads as the threshold: NRR to 4 decimals (B starts at
//! 3.0644), SLA shares in whole percent (80 %). Scores are judged, and
//! shown, only from `JUDGED_MIN` ratings, SLA shares only from as many
//! finished requests, in the before/after view too; a flag says which
//! and on how many.

use super::*;
use crate::ops::reports::{JUDGED_MIN, NRR_GOOD, NeedReason, SLA_PERCENT_GOOD, StaffWork};

// ------------------------------------------------------------------ staff competency

/// The before/after window around a training.
pub(super) const TRAINING_WINDOW_DAYS: i64 = 90;

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

/// An NRR judged only from `JUDGED_MIN` ratings; below B in bold.
pub(crate) fn nrr_cell(lang: Lang, v: Option<f64>, rated: u64) -> Markup {
    html! {
        @match v {
            Some(_) if rated < JUDGED_MIN => span.few title=(format!("{} {JUDGED_MIN} {}", lang.t("kurang dari", "fewer than"), lang.t("penilaian", "ratings"))) { "—" },
            Some(v) if v < NRR_GOOD => strong.bad { (nrr_text(v)) },
            Some(v) => (nrr_text(v)),
            None => "—",
        }
    }
}

/// A share within the SLA, judged only from `JUDGED_MIN` finished requests.
pub(crate) fn sla_cell(lang: Lang, w: &StaffWork) -> Markup {
    html! {
        @match w.sla_percent() {
            Some(_) if w.finished < JUDGED_MIN => span.few title=(format!("{} {JUDGED_MIN} {}", lang.t("kurang dari", "fewer than"), lang.t("permohonan selesai", "finished requests"))) { "—" },
            Some(p) if p < SLA_PERCENT_GOOD => strong.bad { (percent_text(p)) },
            Some(p) => (percent_text(p)),
            None => "—",
        }
    }
}

pub(super) fn work_cells(lang: Lang, w: Option<&StaffWork>) -> Markup {
    let w = w.cloned().unwrap_or_default();
    let median = (w.finished > 0).then(|| super::time_lost::count_median_p90(&w.working).1);
    html! {
        td.num { (w.handled) }
        td.num { @if let Some(m) = median { (format!("{:.2}", m as f64 / loket_shared::sla::DAY_MS as f64)) } @else { "—" } }
        td.num { (sla_cell(lang, &w)) }
        td.num { (w.rated) }
        td.num { (nrr_cell(lang, w.nrr(w.u6), w.rated)) }
        td.num { (nrr_cell(lang, w.nrr(w.u7), w.rated)) }
    }
}

/// Why training is needed, in words, with what it is judged on.
fn reasons_text(lang: Lang, reasons: &[NeedReason]) -> Markup {
    html! {
        ul.reasons {
            @for r in reasons {
                li {
                    @match r {
                        NeedReason::Competence { nrr, rated } => {
                            (lang.t("U6 kompetensi", "U6 competence")) " " (nrr_text(*nrr)) " " (lang.t("di bawah B, dari", "below B, from")) " " (rated) " " (lang.t("penilaian", "ratings"))
                        }
                        NeedReason::Conduct { nrr, rated } => {
                            (lang.t("U7 perilaku", "U7 conduct")) " " (nrr_text(*nrr)) " " (lang.t("di bawah B, dari", "below B, from")) " " (rated) " " (lang.t("penilaian", "ratings"))
                        }
                        NeedReason::Sla { percent, finished } => {
                            (percent_text(*percent)) " " (lang.t("sesuai SLA, dari", "within the SLA, of")) " " (finished) " " (lang.t("permohonan selesai", "finished requests"))
                        }
                    }
                }
            }
        }
    }
}

/// Why an office needs training in complaint handling, in numbers.
fn complaint_reasons_text(lang: Lang, reasons: &[crate::ops::complaints::ComplaintNeedReason]) -> Markup {
    use crate::ops::complaints::ComplaintNeedReason;
    html! {
        ul.reasons {
            @for r in reasons {
                li {
                    @match r {
                        ComplaintNeedReason::Overdue { count } => {
                            (count) " " (lang.t("pengaduan lewat tenggat tanpa jawaban", "complaints overdue without an answer"))
                        }
                        ComplaintNeedReason::Late { late, answered } => {
                            (late) " " (lang.t("dari", "of")) " " (answered) " " (lang.t("jawaban terlambat", "answers late"))
                        }
                        ComplaintNeedReason::LowU8 { nrr, rated } => {
                            (lang.t("U8 penanganan pengaduan", "U8 complaint handling")) " " (nrr_text(*nrr)) " " (lang.t("di bawah B, dari", "below B, from")) " " (rated) " " (lang.t("penilaian", "ratings"))
                        }
                    }
                }
            }
        }
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

/// A roster role in words.
fn staff_role_label(lang: Lang, role: loket_shared::reference::StaffRole) -> &'static str {
    match role {
        loket_shared::reference::StaffRole::Staff => lang.t(role.label(), "Service staff"),
        loket_shared::reference::StaffRole::Supervisor => lang.t(role.label(), "Lurah / Secretary (supervisor)"),
    }
}

/// What a training builds, in words.
fn competency_label(lang: Lang, c: crate::ops::reports::Competency) -> &'static str {
    use crate::ops::reports::Competency;
    match c {
        Competency::Pelayanan => lang.t(c.label(), "Public service"),
        Competency::Komunikasi => lang.t(c.label(), "Communication"),
        Competency::PenangananPengaduan => lang.t(c.label(), "Complaint handling"),
    }
}

/// Where a person is on a roster now, and where they were before.
fn person_place(lang: Lang, p: &crate::ops::reports::Person) -> Markup {
    html! {
        @for (i, k) in p.current.iter().enumerate() { @if i > 0 { br; } (place_name(k)) }
        @if !p.former.is_empty() {
            br;
            small.former { (lang.t("sebelumnya: ", "before: ")) (p.former.iter().map(|k| place_name(k)).collect::<Vec<_>>().join(", ")) }
        }
    }
}

/// Where a person's work was done, when in more than one office.
fn work_places(lang: Lang, ledger: &crate::ops::reports::StaffLedger, nip: &str) -> Markup {
    let places: Vec<(&str, &StaffWork)> = ledger.places(nip).collect();
    html! {
        @if places.len() > 1 {
            br;
            small.places {
                (lang.t("ditangani di: ", "handled in: "))
                @for (i, (k, w)) in places.iter().enumerate() {
                    @if i > 0 { ", " }
                    (loket_shared::wilayah::region(k).map_or(*k, |r| r.name)) " " (w.handled)
                }
            }
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
    let people = crate::ops::reports::people(&register);
    let ledger = crate::ops::reports::staff_work(&st.db, &web.user, (from, to), Some(period.months()), None).await?;
    // A kelurahan's supervisor sees the trainings of their own staff only.
    let trainings = crate::ops::reports::trainings(&st.db, &web.user, &register).await?;
    let hours = crate::ops::reports::training_hours(&st.db, period.year).await?;
    let name_of = |nip: &str| people.iter().find(|s| s.nip == nip).map_or(nip.to_owned(), |s| s.name.clone());
    let (needs, weak_offices) = crate::ops::reports::training_needs(&people, &ledger);
    // Complaint handling is the office's: judged on its complaints and U8.
    let complaint_figures =
        crate::ops::complaints::figures(&st.db, &web.user, offset, (from, to), period.months(), store::now_ms())
            .await?;
    let complaint_needs = crate::ops::complaints::complaint_needs(&complaint_figures);
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
        compared.push((t, before.person(&t.nip), after.person(&t.nip)));
    }
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let head = html! {
        th.num scope="col" { (t("Permohonan ditangani", "Requests handled")) } th.num scope="col" { (t("Median waktu kerja (hari kerja)", "Median working time (working days)")) }
        th.num scope="col" { (t("Selesai sesuai SLA", "Finished within the SLA")) } th.num scope="col" { (t("Jumlah penilaian", "Ratings")) }
        th.num scope="col" { (t("U6 Kompetensi pelaksana", "U6 Staff competence")) } th.num scope="col" { (t("U7 Perilaku pelaksana", "U7 Staff conduct")) }
    };
    let body = html! {
        h1 { (t("Kompetensi dan Pelatihan Petugas Layanan", "Service Staff Competency and Training")) }
        form.filters method="get" action="/admin/staf" {
            label for="periode" { (t("Periode", "Period")) }
            (period_select(lang, "periode", period, &report_years(period)))
            button.primary type="submit" { (t("Tampilkan", "Show")) }
        }
        p { (t("Periode ", "Period ")) strong #period data-code=(period.code()) { (period.label_in(lang)) } ". " (t(
            "U6 dan U7 dari penilaian SKM atas permohonan yang ditangani petugas.",
            "U6 and U7 come from the SKM ratings of the requests a staff member handled.",
        )) }
        ul #rules {
            li { (t("Skor U6 dan U7 dinilai hanya dari minimal", "U6 and U7 are judged only from at least")) " " (JUDGED_MIN) " "
                (t("penilaian; di bawah", "ratings; below")) " " (format!("{NRR_GOOD:.4}")) " " (t("(mutu B) ditandai.", "(grade B) is marked.")) }
            li { (t("Penyelesaian sesuai SLA dinilai hanya dari minimal", "The share within the SLA is judged only from at least")) " " (JUDGED_MIN) " "
                (t("permohonan selesai; di bawah", "finished requests; under")) " " (SLA_PERCENT_GOOD) "% " (t("ditandai.", "is marked.")) }
            li { (t("Petugas yang pindah kantor dihitung sekali, dengan seluruh pekerjaannya; kantor dinilai dari pekerjaan di kantor itu.",
                    "Staff who moved offices count once, with all their work; an office is judged on the work done there.")) }
            li { (t("Hak pengembangan kompetensi ASN:", "The competency development an ASN is owed:")) " " (crate::ops::reports::TRAINING_HOURS_YEARLY) " " (t("JP setahun.", "JP a year.")) }
        }
        h2 { (t("Kebutuhan pelatihan", "Training needs")) }
        @if needs.is_empty() && weak_offices.is_empty() && complaint_needs.is_empty() {
            (empty_state("needs-empty", t(
                "Tidak ada petugas atau kantor yang perlu pelatihan menurut aturan di atas pada periode ini. Petugas dan kantor yang memenuhi aturan itu akan tampil di sini beserta alasannya.",
                "No staff member or office needs training by the rules above in this period. Those who do will show here with the reason.",
            )))
        }
        @if !needs.is_empty() {
            table #needs .fit {
                thead { tr {
                    th scope="col" { (t("Nama dan NIP", "Name and NIP")) } th scope="col" { "Kelurahan" } th scope="col" { (t("Alasan", "Reason")) } (head)
                } }
                tbody {
                    @for (s, w, reasons) in &needs {
                        tr data-nip=(s.nip) {
                            td { (s.name) br; small.mono { (s.nip) } (work_places(lang, &ledger, &s.nip)) } td { (person_place(lang, s)) }
                            td.reasons { (reasons_text(lang, reasons)) } (work_cells(lang, Some(w)))
                        }
                    }
                }
            }
        }
        @if !weak_offices.is_empty() {
            h3 { (t("Kantor", "Offices")) }
            table #needs-offices .fit {
                thead { tr { th scope="col" { "Kelurahan" } th scope="col" { (t("Alasan", "Reason")) } (head) } }
                tbody {
                    @for (k, o, reasons) in &weak_offices {
                        tr data-key=(k) { td { (place_name(k)) } td.reasons { (reasons_text(lang, reasons)) } (work_cells(lang, Some(o))) }
                    }
                }
            }
        }
        @if !complaint_needs.is_empty() {
            h3 { (competency_label(lang, crate::ops::reports::Competency::PenangananPengaduan)) }
            p { (t(
                "Kantor dengan pengaduan periode ini yang lewat tenggat atau dijawab terlambat, atau U8 di bawah B (dari minimal",
                "Offices with complaints of this period left overdue or answered late, or U8 below B (from at least",
            )) " " (JUDGED_MIN) " " (t("penilaian). Rinciannya di", "ratings). The details are on")) " "
                a href=(format!("/admin/pengaduan/angka?periode={}", period.code())) { (t("Angka pengaduan", "Complaint figures")) } "." }
            table #needs-complaints .fit {
                thead { tr { th scope="col" { "Kelurahan" } th scope="col" { (t("Kebutuhan", "Need")) } th scope="col" { (t("Alasan", "Reason")) } } }
                tbody {
                    @for (k, reasons) in &complaint_needs {
                        tr data-key=(k) {
                            td { (place_name(k)) }
                            td.need { (competency_label(lang, crate::ops::reports::Competency::PenangananPengaduan)) }
                            td.reasons { (complaint_reasons_text(lang, reasons)) }
                        }
                    }
                }
            }
        }
        h2 { (t("Pelatihan: sebelum dan sesudah", "Trainings: before and after")) " (" (TRAINING_WINDOW_DAYS) " " (t("hari", "days")) ")" }
        @if compared.is_empty() {
            (empty_state("trainings-empty", t(
                "Belum ada pelatihan yang dicatat. Setiap pelatihan tampil di sini dengan U6, U7 dan penyelesaian sesuai SLA petugasnya 90 hari sebelum dan sesudahnya.",
                "No training recorded yet. Each training shows here with its staff member's U6, U7 and share within the SLA in the 90 days before and after.",
            )))
        } @else {
            table #trainings .fit {
                thead { tr {
                    th scope="col" { (t("Tanggal", "Date")) } th scope="col" { (t("Petugas", "Staff member")) } th scope="col" { (t("Topik dan penyelenggara", "Topic and provider")) }
                    th.num scope="col" { "JP" } th scope="col" { (t("Kompetensi", "Competency")) }
                    th.num scope="col" { (t("U6 sebelum", "U6 before")) } th.num scope="col" { (t("U6 sesudah", "U6 after")) }
                    th.num scope="col" { (t("U7 sebelum", "U7 before")) } th.num scope="col" { (t("U7 sesudah", "U7 after")) }
                    th.num scope="col" { (t("SLA sebelum", "SLA before")) } th.num scope="col" { (t("SLA sesudah", "SLA after")) }
                } }
                tbody {
                    @for (tr_, before, after) in &compared {
                        @let b = before.clone().unwrap_or_default();
                        @let a = after.clone().unwrap_or_default();
                        tr data-nip=(tr_.nip) {
                            td { (tr_.day.to_string()) } td { (name_of(&tr_.nip)) br; small.mono { (tr_.nip) } } td { (tr_.topic) br; small { (tr_.provider) } }
                            td.num.hours { @if let Some(h) = tr_.hours { (h) } @else { "—" } }
                            td.competency { @if let Some(c) = tr_.competency { (competency_label(lang, c)) } @else { "—" } }
                            td.num { (nrr_cell(lang, b.nrr(b.u6), b.rated)) } td.num { (nrr_cell(lang, a.nrr(a.u6), a.rated)) }
                            td.num { (nrr_cell(lang, b.nrr(b.u7), b.rated)) } td.num { (nrr_cell(lang, a.nrr(a.u7), a.rated)) }
                            td.num { (sla_cell(lang, &b)) }
                            td.num { (sla_cell(lang, &a)) }
                        }
                    }
                }
            }
        }
        @if web.user.role == Role::Admin {
            h3 { (t("Catat pelatihan", "Record a training")) }
            @if people.is_empty() {
                (empty_state("training-form-empty", t(
                    "Belum ada petugas di daftar petugas kelurahan mana pun; pelatihan dicatat untuk petugas yang ada di daftar.",
                    "No kelurahan roster has staff yet; trainings are recorded for staff on a roster.",
                )))
            } @else {
                form #training-form method="post" action="/admin/staf/pelatihan" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="t-nip" { (t("Petugas", "Staff member")) }
                    select #t-nip name="nip" required {
                        @for s in &people {
                            option value=(s.nip) { (s.name) " (" (s.nip) ", " (s.current.first().or(s.former.first()).map(|k| place_name(k)).unwrap_or_default()) ")" }
                        }
                    }
                    label for="t-day" { (t("Tanggal (TTTT-BB-HH)", "Date (YYYY-MM-DD)")) }
                    input #t-day name="day" type="text" required maxlength="10" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}";
                    label for="t-topic" { (t("Topik", "Topic")) }
                    input #t-topic name="topic" type="text" required maxlength="200";
                    label for="t-provider" { (t("Penyelenggara", "Provider")) }
                    input #t-provider name="provider" type="text" required maxlength="200";
                    label for="t-hours" { (t("Jumlah JP (jam pelajaran, 1-", "Hours in JP (lesson hours, 1-")) (crate::ops::reports::TRAINING_HOURS_MAX) ")" }
                    input #t-hours name="hours" type="number" required min="1" max=(crate::ops::reports::TRAINING_HOURS_MAX) step="1";
                    label for="t-competency" { (t("Kompetensi yang dibangun", "Competency it builds")) }
                    select #t-competency name="competency" required {
                        @for c in crate::ops::reports::Competency::ALL { option value=(c.code()) { (competency_label(lang, c)) } }
                    }
                    button.primary type="submit" { (t("Simpan", "Save")) }
                }
            }
        }
        h2 { (t("Daftar petugas", "Staff register")) }
        @if people.is_empty() {
            (empty_state("register-empty", t(
                "Belum ada petugas di daftar petugas kelurahan. Petugas yang ditambahkan ke daftar sebuah kelurahan tampil di sini dengan pekerjaan, penilaian dan pelatihannya.",
                "No kelurahan roster has staff yet. Staff added to a kelurahan's roster show here with their work, ratings and trainings.",
            )))
        } @else {
            div.scroll tabindex="0" role="region" aria-label=(t("Daftar petugas", "Staff register")) {
                table #register .fit {
                    thead { tr {
                        th scope="col" { (t("NIP atau nomor pegawai", "NIP or staff number")) } th scope="col" { (t("Nama dan jabatan", "Name and role")) }
                        th scope="col" { "Kelurahan" } th scope="col" { "Status" }
                        th.num scope="col" { (t("Pelatihan", "Training")) " " (period.year) } (head)
                    } }
                    tbody {
                        @for s in &people {
                            tr data-nip=(s.nip) {
                                td { span.mono { (s.nip) } br; small { (s.kind.label()) } }
                                td { (s.name) br; small { (staff_role_label(lang, s.role)) } (work_places(lang, &ledger, &s.nip)) }
                                td { (person_place(lang, s)) }
                                td { @if s.active { (tag("ok", t("Aktif", "Active"))) } @else { (tag("muted", t("Tidak aktif", "Inactive"))) } }
                                td.num.hours { (hours_cell(s.kind, hours.get(&s.nip).copied().unwrap_or(0))) }
                                (work_cells(lang, ledger.person(&s.nip).as_ref()))
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = page.frame(
        t("Kompetensi dan Pelatihan Petugas Layanan", "Service Staff Competency and Training"),
        &web.user,
        body,
    );
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
