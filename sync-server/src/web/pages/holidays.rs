//! The holidays the SLA skips, kept in the catalog.

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
    let weekday = |d: time::Date| match d.weekday() {
        time::Weekday::Monday => "Senin",
        time::Weekday::Tuesday => "Selasa",
        time::Weekday::Wednesday => "Rabu",
        time::Weekday::Thursday => "Kamis",
        time::Weekday::Friday => "Jumat",
        time::Weekday::Saturday => "Sabtu",
        time::Weekday::Sunday => "Minggu",
    };
    let ymd = loket_shared::reference::ymd::format;
    let body = html! {
        h1 { "Hari libur " (year) " / Holidays " (year) }
        p { "Hari libur nasional dan cuti bersama tidak dihitung sebagai hari kerja untuk SLA. Perubahan sampai ke kiosk saat sinkronisasi berikutnya, dan waktu kerja permohonan yang terdampak dihitung ulang. / "
            "Public holidays and collective leave are not working days for the SLA. Changes reach the kiosks at their next sync, and the working time of the requests affected is computed again." }
        @if let Some((text, ok)) = message {
            p.alert.ok[ok] #message role=(if ok { "status" } else { "alert" }) { (text) }
        }
        nav.filters {
            @for y in [year - 1, year, year + 1] {
                @if y == year { strong { (y) } } @else { a href=(format!("/admin/libur?tahun={y}")) { (y) } }
                " "
            }
        }
        @if days.is_empty() {
            p #no-holidays { "Belum ada hari libur untuk tahun ini. / No holidays entered for this year yet." }
        } @else {
            table #holidays {
                thead { tr { th { "Tanggal / Date" } th { "Hari / Day" } th { "Nama / Name" } th {} } }
                tbody {
                    @for h in &days {
                        tr data-date=(ymd(h.date)) {
                            td.mono { (ymd(h.date)) }
                            td { (weekday(h.date)) }
                            td { (h.name) }
                            td {
                                form.inline method="post" action="/admin/libur" {
                                    input type="hidden" name="csrf" value=(page.csrf);
                                    input type="hidden" name="tanggal" value=(ymd(h.date));
                                    input type="hidden" name="hapus" value="1";
                                    button type="submit" { "Hapus / Remove" }
                                }
                            }
                        }
                    }
                }
            }
        }
        h2 { "Tambah hari libur / Add a holiday" }
        form #holiday-form method="post" action="/admin/libur" {
            input type="hidden" name="csrf" value=(page.csrf);
            label for="h-date" { "Tanggal (YYYY-MM-DD) / Date" }
            input #h-date name="tanggal" type="text" required maxlength="10" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}" autocomplete="off";
            label for="h-name" { "Nama / Name" }
            input #h-name name="nama" type="text" required maxlength="120" autocomplete="off";
            button.primary type="submit" { "Simpan / Save" }
        }
    };
    let status = match message {
        Some((_, false)) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::OK,
    };
    let markup = frame("Hari libur / Holidays", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(status, markup))
}

#[derive(Deserialize)]
pub(super) struct HolidayForm {
    csrf: Option<String>,
    tanggal: Option<String>,
    nama: Option<String>,
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
        let name = if form.hapus.is_some() { None } else { Some(form.nama.clone().unwrap_or_default()) };
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
