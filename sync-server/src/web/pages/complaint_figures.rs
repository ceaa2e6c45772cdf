//! Complaint figures (issue 16, item 4): per office and per service, how
//! many complaints came in a period, are open and overdue now, were
//! answered within the deadline or late and how long the first answer
//! took (median, in the office's working days, as the deadline counts);
//! each office's SKM U8 beside it; the recurring themes. The same tables
//! download as CSV and XLSX, and the admin API serves the same figures
//! (`GET /api/admin/complaints/figures`).
//!
//! The arithmetic and who sees what (the scope of `ops::complaints`, a
//! staff id only for admins and supervisors and never for the staff
//! member concerned) are `ops::complaints::figures`'s; no complainant is
//! ever read for these figures.

use crate::ops::complaints::{Figures, Theme, ThemeAbout};

use super::staff::{nrr_cell, nrr_text};
use super::*;

#[derive(Deserialize)]
pub(super) struct FiguresQuery {
    periode: Option<String>,
    /// Which table a CSV holds: `kantor` (the default) or `layanan`. An
    /// XLSX holds both.
    bagian: Option<String>,
}

/// The figures of the period `raw` names (default: this year) within the
/// user's scope; the page, its downloads and the API share it.
pub(crate) async fn load_figures(
    st: &AppState,
    user: &User,
    raw: Option<&str>,
) -> Result<(Period, (i64, i64), Figures), ApiError> {
    let offset = st.config.utc_offset();
    let period = Period::from_query(raw, offset, true)?;
    let range = period.range_ms(offset);
    let figures =
        crate::ops::complaints::figures(&st.db, user, offset, range, period.months(), store::now_ms()).await?;
    Ok((period, range, figures))
}

/// Working-day milliseconds as working days, two decimals (the API's unit).
pub(crate) fn working_days(ms: i64) -> f64 {
    (ms as f64 / loket_shared::sla::DAY_MS as f64 * 100.0).round() / 100.0
}

fn median_cell(lang: Lang, ms: Option<i64>) -> Markup {
    html! { @match ms { Some(ms) => { (duration_text(lang, ms)) } None => { "—" } } }
}

/// What a theme is about, in words; a withheld staff id says so.
fn theme_about(lang: Lang, catalog: &loket_shared::reference::Catalog, t: &Theme) -> Markup {
    html! {
        @match &t.about {
            ThemeAbout::Office => { (lang.t("Kantor kelurahan", "The office")) }
            ThemeAbout::Service(s) => { (lang.t("Layanan", "Service")) " " (service_name(lang, catalog, s)) }
            ThemeAbout::Request(Some(s)) => { (lang.t("Permohonan layanan", "Requests for")) " " (service_name(lang, catalog, s)) }
            ThemeAbout::Request(None) => { (lang.t("Permohonan (layanan tidak dikenal)", "Requests (service unknown)")) }
            ThemeAbout::Staff(Some(id)) => { (lang.t("Petugas", "Staff member")) " " span.mono { (id) } }
            ThemeAbout::Staff(None) => { (lang.t("Seorang petugas (nomor tidak ditampilkan)", "A staff member (id withheld)")) }
        }
    }
}

pub(super) async fn figures_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<FiguresQuery>,
) -> Result<Response, PageError> {
    let (period, _, figures) = load_figures(&st, &web.user, q.periode.as_deref()).await?;
    let catalog = crate::central::load_catalog(&st.db).await?;
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let code = period.code();
    let Figures { offices, services, themes } = &figures;
    let body = html! {
        p { a href="/admin/pengaduan" { "← " (t("Pengaduan", "Complaints")) } }
        h1 { (t("Angka pengaduan", "Complaint figures")) }
        form.filters method="get" action="/admin/pengaduan/angka" {
            label for="periode" { (t("Periode", "Period")) }
            (period_select(lang, "periode", period, &report_years(period)))
            button.primary type="submit" { (t("Tampilkan", "Show")) }
        }
        p #period data-code=(code) {
            (t("Periode ", "Period ")) strong { (period.label_in(lang)) } ". "
            (t(
                "Diterima, dijawab tepat waktu atau terlambat dan median waktu jawaban dihitung atas pengaduan yang diterima pada periode ini; terbuka dan lewat tenggat adalah keadaan sekarang. Waktu sampai jawaban pertama dihitung dalam hari kerja kantor (jam layanan, tanpa hari libur), seperti tenggatnya.",
                "Received, answered within the deadline or late and the median time to answer count the complaints received in this period; open and overdue are as of now. Time to the first answer is in the office's working days (service hours, without holidays), as the deadline is counted.",
            ))
        }
        p.downloads {
            (t("Unduh", "Download")) ": "
            a href=(format!("/admin/pengaduan/angka.csv?periode={code}&bagian=kantor")) { (t("per kantor (CSV)", "per office (CSV)")) } " · "
            a href=(format!("/admin/pengaduan/angka.csv?periode={code}&bagian=layanan")) { (t("per layanan (CSV)", "per service (CSV)")) } " · "
            a href=(format!("/admin/pengaduan/angka.xlsx?periode={code}")) { "XLSX" }
        }
        h2 { (t("Per kantor", "Per office")) }
        @if offices.is_empty() {
            (empty_state("figures-offices-empty", t(
                "Tidak ada pengaduan yang diterima pada periode ini, tidak ada yang masih terbuka, dan belum ada penilaian SKM. Setelah ada, setiap kantor tampil di sini.",
                "No complaint was received in this period, none is still open, and there are no SKM ratings. Once there are, each office shows here.",
            )))
        } @else {
            p.hint { (t(
                "U8 (Penanganan pengaduan, saran dan masukan) adalah penilaian warga atas penanganan pengaduan kantor pada periode yang sama. Pengaduan yang lewat tenggat atau dijawab terlambat biasanya menurunkan U8; U8 rendah tanpa pengaduan dapat berarti warga tidak tahu ke mana mengadu.",
                "U8 (Handling of complaints, suggestions and feedback) is the citizens' rating of the office's complaint handling in the same period. Complaints left overdue or answered late usually pull U8 down; a low U8 with no complaints may mean citizens do not know where to complain.",
            )) }
            table #figures-offices .fit {
                thead { tr {
                    th scope="col" { "Kelurahan" }
                    th.num scope="col" { (t("Diterima", "Received")) }
                    th.num scope="col" { (t("Terbuka sekarang", "Open now")) }
                    th.num scope="col" { (t("Lewat tenggat sekarang", "Overdue now")) }
                    th.num scope="col" { (t("Dijawab tepat waktu", "Answered in time")) }
                    th.num scope="col" { (t("Dijawab terlambat", "Answered late")) }
                    th.num scope="col" { (t("Median sampai jawaban pertama", "Median time to first answer")) }
                    th.num scope="col" { "U8" }
                } }
                tbody {
                    @for o in offices {
                        tr data-kelurahan=(o.kelurahan) {
                            td { a href=(format!("/admin/pengaduan?kelurahan={}", o.kelurahan)) { (place_name(&o.kelurahan)) } }
                            td.num.received { (o.received) }
                            td.num.open { (o.open) }
                            td.num.overdue { @if o.overdue > 0 { strong.bad { (o.overdue) } } @else { "0" } }
                            td.num.in-time { (o.answered_in_time) }
                            td.num.late { @if o.answered_late > 0 { strong.bad { (o.answered_late) } } @else { "0" } }
                            td.num.median { (median_cell(lang, o.median_answer_ms)) }
                            td.num.u8 data-rated=(o.u8.rated) { (nrr_cell(lang, o.u8.nrr, o.u8.rated)) }
                        }
                    }
                }
            }
        }
        h2 { (t("Per layanan", "Per service")) }
        p { (t(
            "Pengaduan tentang layanan itu sendiri atau tentang permohonan layanan itu.",
            "Complaints about the service itself or about a request for it.",
        )) }
        @if services.is_empty() {
            (empty_state("figures-services-empty", t(
                "Tidak ada pengaduan tentang layanan atau permohonan pada periode ini.",
                "No complaint about a service or a request in this period.",
            )))
        } @else {
            table #figures-services .fit {
                thead { tr {
                    th scope="col" { (t("Layanan", "Service")) }
                    th.num scope="col" { (t("Diterima", "Received")) }
                    th.num scope="col" { (t("Terbuka sekarang", "Open now")) }
                    th.num scope="col" { (t("Lewat tenggat sekarang", "Overdue now")) }
                    th.num scope="col" { (t("Median sampai jawaban pertama", "Median time to first answer")) }
                } }
                tbody {
                    @for s in services {
                        tr data-service=(s.service) {
                            td { (service_name(lang, &catalog, &s.service)) }
                            td.num.received { (s.received) }
                            td.num.open { (s.open) }
                            td.num.overdue { (s.overdue) }
                            td.num.median { (median_cell(lang, s.median_answer_ms)) }
                        }
                    }
                }
            }
        }
        h2 { (t("Tema berulang", "Recurring themes")) }
        p { (t(
            "Pengaduan pada periode ini di kantor yang sama tentang hal yang sama, paling sedikit",
            "Complaints in this period at the same office about the same thing, at least",
        )) " " (crate::ops::complaints::THEME_MIN) ". " (t("Pengadu tidak pernah ditampilkan.", "Complainants are never shown.")) }
        @if themes.is_empty() {
            (empty_state("figures-themes-empty", t(
                "Tidak ada tema berulang pada periode ini.",
                "No recurring theme in this period.",
            )))
        } @else {
            table #figures-themes .fit {
                thead { tr {
                    th scope="col" { "Kelurahan" } th scope="col" { (t("Tentang", "About")) } th.num scope="col" { (t("Jumlah", "Count")) }
                } }
                tbody {
                    @for th_ in themes {
                        tr data-kelurahan=(th_.kelurahan) {
                            td { (place_name(&th_.kelurahan)) }
                            td.about { (theme_about(lang, &catalog, th_)) }
                            td.num.count { (th_.count) }
                        }
                    }
                }
            }
        }
        @if web.user.role != Role::Agency {
            p #training-link {
                (t("Kebutuhan pelatihan penanganan pengaduan per kantor:", "Training needs in complaint handling per office:")) " "
                a href=(format!("/admin/staf?periode={code}")) { (t("Kompetensi dan Pelatihan", "Competency and Training")) }
            }
        }
    };
    let markup = page.frame(t("Angka pengaduan", "Complaint figures"), &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}

fn median_export(ms: Option<i64>) -> Cell {
    ms.map_or(Cell::Empty, |ms| Cell::Fixed(ms as f64 / loket_shared::sla::DAY_MS as f64, 2))
}

fn count(n: u64) -> Cell {
    Cell::Int(i64::try_from(n).unwrap_or(i64::MAX))
}

fn offices_table(figures: &Figures, name: String) -> Table {
    let header = [
        "kelurahan",
        "nama_kelurahan",
        "diterima",
        "terbuka",
        "lewat_tenggat",
        "dijawab_tepat_waktu",
        "dijawab_terlambat",
        "median_hari_kerja_jawaban",
        "u8_nrr",
        "u8_penilaian",
    ]
    .map(String::from)
    .to_vec();
    let rows = figures
        .offices
        .iter()
        .map(|o| {
            vec![
                Cell::Text(o.kelurahan.clone()),
                Cell::Text(loket_shared::wilayah::region(&o.kelurahan).map_or(String::new(), |r| r.name.to_owned())),
                count(o.received),
                count(o.open),
                count(o.overdue),
                count(o.answered_in_time),
                count(o.answered_late),
                median_export(o.median_answer_ms),
                o.u8.nrr.map_or(Cell::Empty, |v| Cell::Decimal(nrr_text(v), 4)),
                count(o.u8.rated),
            ]
        })
        .collect();
    Table { name, header, rows }
}

fn services_table(figures: &Figures, catalog: &loket_shared::reference::Catalog, name: String) -> Table {
    let header = ["layanan", "nama_layanan", "diterima", "terbuka", "lewat_tenggat", "median_hari_kerja_jawaban"]
        .map(String::from)
        .to_vec();
    let rows = figures
        .services
        .iter()
        .map(|s| {
            vec![
                Cell::Text(s.service.clone()),
                Cell::Text(catalog.service(&s.service).map_or(s.service.clone(), |x| x.name_id.clone())),
                count(s.received),
                count(s.open),
                count(s.overdue),
                median_export(s.median_answer_ms),
            ]
        })
        .collect();
    Table { name, header, rows }
}

/// The per-office and per-service tables for download: a CSV holds one
/// (`bagian=kantor`, the default, or `layanan`), an XLSX both.
pub(super) async fn figures_export(
    State(st): State<AppState>,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<FiguresQuery>,
    format: Export,
) -> Result<Response, PageError> {
    let (period, _, figures) = load_figures(&st, &web.user, q.periode.as_deref()).await?;
    let catalog = crate::central::load_catalog(&st.db).await?;
    let name = format!("pengaduan-{}", period.code());
    match format {
        Export::Xlsx => Table::respond_workbook(
            &name,
            &[offices_table(&figures, "kantor".into()), services_table(&figures, &catalog, "layanan".into())],
        ),
        Export::Csv => match q.bagian.as_deref().unwrap_or("kantor") {
            "kantor" | "" => offices_table(&figures, format!("{name}-kantor")).respond(format),
            "layanan" => services_table(&figures, &catalog, format!("{name}-layanan")).respond(format),
            _ => {
                Err(ApiError::bad_request("invalid_part", "bagian: kantor atau layanan / part: kantor or layanan")
                    .into())
            }
        },
    }
}
