//! The working calendar the SLA counts in, kept in the catalog: holidays
//! and cuti bersama, whether offices open on cuti bersama, and service
//! hours (the city's and each kelurahan's own).

use super::*;

// ------------------------------------------------------------------ holidays

#[derive(Deserialize)]
pub(super) struct HolidaysQuery {
    tahun: Option<String>,
}

/// The days offices are closed, which the SLA does not count: the fixed
/// national holidays come with the catalog; an admin adds the movable ones
/// and cuti bersama from each year's joint decree.
pub(super) async fn holidays_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<HolidaysQuery>,
) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    holidays_markup(&st, page, &web, q.tahun.as_deref(), None).await
}

pub(super) async fn holidays_markup(
    st: &AppState,
    page: Page,
    web: &WebUser,
    year: Option<&str>,
    message: Option<(&str, bool)>,
) -> Result<Response, PageError> {
    let this_year = Period::from_query(None, st.config.utc_offset(), true)?.year;
    let year: i32 = match year.filter(|y| !y.is_empty()) {
        None => this_year,
        Some(y) => y
            .parse()
            .ok()
            .filter(|y| (2000..=2100).contains(y))
            .ok_or_else(|| ApiError::bad_request("invalid_year", "tahun tidak valid / invalid year"))?,
    };
    let catalog = crate::central::load_catalog(&st.db).await?;
    let mut days: Vec<&loket_shared::reference::Holiday> =
        catalog.holidays.iter().filter(|h| h.date.year() == year).collect();
    days.sort_by_key(|h| h.date);
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let weekday = |d: time::Date| match d.weekday() {
        time::Weekday::Monday => t("Senin", "Monday"),
        time::Weekday::Tuesday => t("Selasa", "Tuesday"),
        time::Weekday::Wednesday => t("Rabu", "Wednesday"),
        time::Weekday::Thursday => t("Kamis", "Thursday"),
        time::Weekday::Friday => t("Jumat", "Friday"),
        time::Weekday::Saturday => t("Sabtu", "Saturday"),
        time::Weekday::Sunday => t("Minggu", "Sunday"),
    };
    let ymd = loket_shared::reference::ymd::format;
    let body = html! {
        h1 { (t("Kalender kerja", "Working calendar")) " " (year) }
        p { (t(
            "Hari libur nasional, dan cuti bersama bila kantor tutup, tidak dihitung sebagai hari kerja untuk SLA; hanya jam layanan yang dihitung. Perubahan sampai ke kiosk saat sinkronisasi berikutnya, dan waktu kerja permohonan yang terdampak dihitung ulang.",
            "Public holidays, and collective leave when offices close, are not working days for the SLA; only service hours count. Changes reach the kiosks at their next sync, and the working time of the requests affected is computed again.",
        )) }
        @if let Some((text, ok)) = message {
            p.alert.ok[ok] #message role=(if ok { "status" } else { "alert" }) { (lang.pick(text)) }
        }
        nav.filters.years aria-label=(t("Tahun", "Year")) {
            @for y in [year - 1, year, year + 1] {
                @if y == year { strong aria-current="page" { (y) } } @else { a href=(format!("/admin/libur?tahun={y}")) { (y) } }
                " "
            }
        }
        @if days.is_empty() {
            (empty_state("no-holidays", t(
                "Belum ada hari libur untuk tahun ini. Tambahkan satu per satu di bawah, atau impor daftar setahun dari SKB libur nasional dan cuti bersama; hari-hari itu akan tampil di sini.",
                "No holidays entered for this year yet. Add them one by one below, or import the year's list from the joint decree on holidays and collective leave; they will show here.",
            )))
        } @else {
            table #holidays .fit {
                thead { tr {
                    th scope="col" { (t("Tanggal", "Date")) } th scope="col" { (t("Hari", "Day")) } th scope="col" { (t("Nama", "Name")) }
                    th scope="col" { (t("Jenis", "Kind")) } th scope="col" { (t("Tindakan", "Action")) }
                } }
                tbody {
                    @for h in &days {
                        tr data-date=(ymd(h.date)) data-kind=(h.kind.as_str()) {
                            td.mono { (ymd(h.date)) }
                            td { (weekday(h.date)) }
                            td { (h.name) }
                            td { (tag(if h.kind == loket_shared::reference::HolidayKind::Libur { "info" } else { "muted" }, lang.t(h.kind.label().0, h.kind.label().1))) }
                            td {
                                form.inline method="post" action="/admin/libur" {
                                    input type="hidden" name="csrf" value=(page.csrf);
                                    input type="hidden" name="tanggal" value=(ymd(h.date));
                                    input type="hidden" name="hapus" value="1";
                                    button type="submit" aria-label=(format!("{} {}", t("Hapus", "Remove"), ymd(h.date))) { (t("Hapus", "Remove")) }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { (t("Tambah hari libur", "Add a holiday")) }
        form #holiday-form .stack method="post" action="/admin/libur" {
            input type="hidden" name="csrf" value=(page.csrf);
            label for="h-date" { (t("Tanggal (TTTT-BB-HH)", "Date (YYYY-MM-DD)")) }
            input #h-date name="tanggal" type="text" required maxlength="10" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" autocomplete="off";
            label for="h-name" { (t("Nama", "Name")) }
            input #h-name name="nama" type="text" required maxlength="120" autocomplete="off";
            label for="h-kind" { (t("Jenis", "Kind")) }
            select #h-kind name="jenis" {
                option value="libur" { (t("Libur nasional", "National holiday")) }
                option value="cuti_bersama" { (t("Cuti bersama", "Collective leave")) }
            }
            button.primary type="submit" { (t("Simpan", "Save")) }
        }
        h2 { (t("Cuti bersama", "Collective leave")) }
        form #cuti-form method="post" action="/admin/libur/cuti" {
            input type="hidden" name="csrf" value=(page.csrf);
            p { @if catalog.cuti_bersama_open {
                (tag("ok", t("Buka", "Open"))) " " (t("Kantor kelurahan buka pada cuti bersama: hari itu dihitung sebagai hari kerja.", "Offices open on collective leave: those are working days."))
            } @else {
                (tag("muted", t("Tutup", "Closed"))) " " (t("Kantor kelurahan tutup pada cuti bersama: hari itu tidak dihitung.", "Offices close on collective leave: those days do not count."))
            } }
            input type="hidden" name="buka" value=(if catalog.cuti_bersama_open { "0" } else { "1" });
            button type="submit" { @if catalog.cuti_bersama_open { (t("Tutup pada cuti bersama", "Close on collective leave")) } @else { (t("Buka pada cuti bersama", "Open on collective leave")) } }
        }
        h2 { (t("Impor daftar setahun (CSV)", "Import a year's list (CSV)")) }
        p { (t("Satu baris per hari: ", "One line per day: ")) code { "tanggal,nama,jenis" } " " (t(
            "(jenis: libur atau cuti_bersama). Daftar tahun itu diganti seluruhnya.",
            "(kind: libur or cuti_bersama). The year's list is replaced whole.",
        )) }
        form #import-form .stack method="post" action="/admin/libur/impor" {
            input type="hidden" name="csrf" value=(page.csrf);
            label for="i-year" { (t("Tahun", "Year")) }
            input #i-year name="tahun" type="number" min="2000" max="2100" value=(year) required;
            label for="i-csv" { "CSV" }
            textarea #i-csv name="csv" rows="8" required maxlength="40000" {}
            button.primary type="submit" { (t("Impor", "Import")) }
        }
        h2 { (t("Jam layanan", "Service hours")) }
        p { (t("Waktu kerja SLA dihitung hanya pada jam layanan. Format: ", "Working time counts only service hours. Format: "))
            code { "mon=08:00-16:00; tue=…; fri=08:00-11:30" } " " (t("(hari yang tidak disebut: tutup).", "(days not named are closed).")) }
        table #hours .fit {
            thead { tr { th scope="col" { (t("Kantor", "Office")) } th scope="col" { (t("Jam layanan", "Hours")) } th scope="col" { (t("Tindakan", "Action")) } } }
            tbody {
                tr data-kelurahan="" { td { (t("Kota Medan (bawaan)", "Kota Medan (default)")) } td.mono { (catalog.service_hours.to_spec()) } td { "—" } }
                @for (k, h) in &catalog.kelurahan_hours {
                    tr data-kelurahan=(k.as_str()) {
                        td { (place_name(k.as_str())) }
                        td.mono { (h.to_spec()) }
                        td {
                            form.inline method="post" action="/admin/libur/jam" {
                                input type="hidden" name="csrf" value=(page.csrf);
                                input type="hidden" name="kelurahan" value=(k.as_str());
                                input type="hidden" name="hapus" value="1";
                                button type="submit" { (t("Ikuti jam kota", "Use the city's")) }
                            }
                        }
                    }
                }
            }
        }
        form #hours-form .stack method="post" action="/admin/libur/jam" {
            input type="hidden" name="csrf" value=(page.csrf);
            label for="j-kel" { (t("Kode kelurahan (kosong: seluruh kota)", "Kelurahan code (empty: the whole city)")) }
            input #j-kel name="kelurahan" type="text" maxlength="13" pattern="[0-9]{2}[.][0-9]{2}[.][0-9]{2}[.][0-9]{4}" autocomplete="off";
            label for="j-hours" { (t("Jam", "Hours")) }
            input #j-hours name="jam" type="text" required maxlength="200" value=(catalog.service_hours.to_spec()) autocomplete="off";
            button.primary type="submit" { (t("Simpan", "Save")) }
        }
    };
    let status = match message {
        Some((_, false)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let markup = page.frame(t("Kalender Kerja dan Hari Libur", "Working Calendar and Holidays"), &web.user, body);
    Ok(page.respond(status, markup))
}

#[derive(Deserialize)]
pub(super) struct HolidayForm {
    csrf: Option<String>,
    tanggal: Option<String>,
    nama: Option<String>,
    jenis: Option<String>,
    hapus: Option<String>,
}

pub(super) async fn holiday_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<HolidayForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let outcome = async {
        let date = crate::central::parse_holiday_date(form.tanggal.as_deref().unwrap_or_default())?;
        let kind =
            loket_shared::reference::HolidayKind::parse(form.jenis.as_deref().unwrap_or("libur")).ok_or_else(|| {
                crate::ops::OpError::unprocessable("invalid_holiday", "jenis tidak dikenal / unknown kind")
            })?;
        let name = if form.hapus.is_some() { None } else { Some((form.nama.clone().unwrap_or_default(), kind)) };
        crate::central::set_holiday(&st.db, &st.writer, date, name).await.map(|v| (date, v))
    }
    .await;
    match outcome.map_err(ApiError::from) {
        Ok((date, v)) => {
            tracing::info!(date = %loket_shared::reference::ymd::format(date), by = %web.user.username, "holiday changed (web)");
            let text = format!(
                "Tersimpan; waktu kerja {} permohonan dihitung ulang. / Saved; the working time of {} requests was computed again.",
                v["reprojected"], v["reprojected"]
            );
            holidays_markup(&st, page, &web, Some(&date.year().to_string()), Some((&text, true))).await
        }
        Err(e) if e.status.is_client_error() => {
            let text = e.message.clone();
            holidays_markup(&st, page, &web, None, Some((&text, false))).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The outcome of a calendar form: the page again with a message.
async fn calendar_outcome(
    st: &AppState,
    page: Page,
    web: &WebUser,
    year: Option<String>,
    outcome: Result<serde_json::Value, crate::ops::OpError>,
) -> Result<Response, PageError> {
    match outcome.map_err(ApiError::from) {
        Ok(v) => {
            let text = format!(
                "Tersimpan; waktu kerja {} permohonan dihitung ulang. / Saved; the working time of {} requests was computed again.",
                v["reprojected"], v["reprojected"]
            );
            holidays_markup(st, page, web, year.as_deref(), Some((&text, true))).await
        }
        Err(e) if e.status.is_client_error() => {
            let text = e.message.clone();
            holidays_markup(st, page, web, year.as_deref(), Some((&text, false))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct CutiForm {
    csrf: Option<String>,
    buka: Option<String>,
}

pub(super) async fn cuti_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<CutiForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let open = form.buka.as_deref() == Some("1");
    let outcome = crate::central::set_cuti_bersama_open(&st.db, &st.writer, open).await;
    calendar_outcome(&st, page, &web, None, outcome).await
}

#[derive(Deserialize)]
pub(super) struct ImportForm {
    csrf: Option<String>,
    tahun: Option<String>,
    csv: Option<String>,
}

pub(super) async fn import_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<ImportForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let year = form.tahun.clone();
    let outcome = async {
        let y: i32 =
            year.as_deref().and_then(|y| y.trim().parse().ok()).filter(|y| (2000..=2100).contains(y)).ok_or_else(
                || crate::ops::OpError::unprocessable("invalid_year", "tahun tidak valid / invalid year"),
            )?;
        let list = crate::central::parse_holiday_csv(y, form.csv.as_deref().unwrap_or_default())?;
        crate::central::import_holidays(&st.db, &st.writer, y, list).await
    }
    .await;
    let shown = year.filter(|y| y.trim().parse::<i32>().is_ok_and(|y| (2000..=2100).contains(&y)));
    calendar_outcome(&st, page, &web, shown, outcome).await
}

#[derive(Deserialize)]
pub(super) struct HoursForm {
    csrf: Option<String>,
    kelurahan: Option<String>,
    jam: Option<String>,
    hapus: Option<String>,
}

pub(super) async fn hours_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<HoursForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let outcome = async {
        let kelurahan = match form.kelurahan.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            None => None,
            Some(k) => Some(
                k.parse::<loket_shared::KelurahanCode>()
                    .map_err(|e| crate::ops::OpError::unprocessable("invalid_kelurahan", e))?,
            ),
        };
        let hours = if form.hapus.is_some() {
            None
        } else {
            Some(loket_shared::sla::ServiceHours::from_spec(form.jam.as_deref().unwrap_or_default()).map_err(|e| {
                crate::ops::OpError::unprocessable(
                    "invalid_hours",
                    format!("jam layanan tidak valid: {e} / invalid service hours: {e}"),
                )
            })?)
        };
        crate::central::set_hours(&st.db, &st.writer, kelurahan, hours).await
    }
    .await;
    calendar_outcome(&st, page, &web, None, outcome).await
}
