//! Satisfaction (IKM) as the SKM report of PermenPANRB 14/2017 lays it
//! out: the respondent profile, each element's NRR and weighted NRR (four
//! decimals, from exact totals, element names in the heads), the unit and
//! converted IKM with mutu and kinerja, the lowest elements with their
//! follow-up plans; then the figures per kelurahan, kecamatan or service,
//! a monthly trend and the comments. The same report downloads as CSV
//! (one table per part, `bagian=`) and XLSX (every part a sheet).
//!
//! A report covers the user's scope, or one kelurahan of it
//! (`kelurahan=`). City-wide and kelurahan scopes read the rollups only
//! (`monthly`, `skm_profile`); an agency's scope is computed from rows.
//! The profile is only ever counted: no row of it is shown.

use loket_shared::respondent::{Dimension, ProfileTally};
use loket_shared::skm::Element;

use super::*;
use crate::ops::followups::{Followup, Progress};
use crate::ops::reports::{IkmGroup, IkmKey};
use crate::store::reports::Scope;

#[derive(Deserialize)]
pub(super) struct IkmQuery {
    periode: Option<String>,
    per: Option<String>,
    /// One kelurahan of the user's scope (empty: the whole scope).
    kelurahan: Option<String>,
    /// Which part a CSV holds: `ikm` (the default), `unsur`, `profil`,
    /// `tindak-lanjut`. An XLSX holds every part.
    bagian: Option<String>,
}

pub(super) struct IkmReport {
    period: Period,
    key: IkmKey,
    groups: Vec<IkmGroup>,
    total: IkmGroup,
    names: BTreeMap<String, String>,
    scope: Scope,
    /// The kelurahan the report covers, when it covers one.
    kelurahan: Option<String>,
    /// Whether the rollups served it.
    rollup: bool,
    profile: ProfileTally,
    followups: Vec<Followup>,
}

impl IkmReport {
    /// The query naming this report (period, grouping, kelurahan).
    fn query(&self) -> String {
        let per = match self.key {
            IkmKey::Kecamatan => "kecamatan",
            IkmKey::Service => "layanan",
            _ => "kelurahan",
        };
        let mut q = format!("periode={}&per={per}", self.period.code());
        if let Some(k) = &self.kelurahan {
            q.push_str(&format!("&kelurahan={k}"));
        }
        q
    }

    /// Where the report is about, for people.
    fn place(&self, lang: Lang) -> String {
        match &self.kelurahan {
            Some(k) => place_name(k),
            None if self.scope.is_all() => "Kota Medan".into(),
            None => lang.t("Cakupan Anda", "Your scope").into(),
        }
    }

    /// The `n` lowest elements of the whole report.
    fn lowest(&self) -> Vec<Element> {
        self.total.tally.lowest_elements(LOWEST_SHOWN)
    }
}

/// The kelurahan a report is asked for: empty is none; a code that is not
/// one is `400 invalid_kelurahan`.
fn parse_kelurahan(raw: Option<&str>) -> Result<Option<loket_shared::KelurahanCode>, ApiError> {
    match raw.map(str::trim).filter(|k| !k.is_empty()) {
        None => Ok(None),
        Some(k) => k.parse().map(Some).map_err(|_| {
            ApiError::bad_request("invalid_kelurahan", "kode kelurahan tidak valid / invalid kelurahan code")
        }),
    }
}

pub(super) async fn ikm_report(st: &AppState, user: &User, q: &IkmQuery) -> Result<IkmReport, PageError> {
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, true)?;
    let key = match q.per.as_deref().unwrap_or("kelurahan") {
        "kelurahan" => IkmKey::Kelurahan,
        "kecamatan" => IkmKey::Kecamatan,
        "layanan" | "service" => IkmKey::Service,
        _ => return Err(ApiError::bad_request("invalid_group_by", "per: kelurahan | kecamatan | layanan").into()),
    };
    let asked = parse_kelurahan(q.kelurahan.as_deref())?;
    let scope = crate::ops::reports::report_scope(user, asked.as_ref())?;
    let (from, to) = period.range_ms(offset);
    let rollup = crate::ops::reports::rollups_serve(user);
    let groups = if rollup {
        crate::ops::reports::ikm_rollup_in(&st.db, scope.clone(), period.months(), key).await?
    } else {
        crate::ops::reports::ikm_groups_in(&st.db, scope.clone(), offset, (from, to), key).await?
    };
    let mut tally = loket_shared::skm::Tally::default();
    let mut users = 0;
    for g in &groups {
        tally.merge(&g.tally);
        users += g.service_users;
    }
    let total = IkmGroup {
        key: "Total".into(),
        tally,
        service_users: users,
        sample_min: loket_shared::skm::krejcie_morgan_min_sample(users),
    };
    let profile = crate::ops::reports::profile_summary(
        &st.db,
        scope.clone(),
        rollup,
        period.months(),
        (from, to),
        total.tally.respondents,
    )
    .await?;
    let followups = crate::ops::followups::list_in(&st.db, user, scope.clone(), Some(period.months())).await?;
    let catalog = crate::central::load_catalog(&st.db).await?;
    let names = groups
        .iter()
        .map(|g| {
            let name = match key {
                IkmKey::Service => catalog.service(&g.key).map_or(g.key.clone(), |s| s.name_id.clone()),
                _ => loket_shared::wilayah::region(&g.key).map_or(g.key.clone(), |r| r.name.to_owned()),
            };
            (g.key.clone(), name)
        })
        .collect();
    let kelurahan = match &scope {
        Scope::Kelurahan(k) => Some(k.clone()),
        _ => None,
    };
    Ok(IkmReport { period, key, groups, total, names, scope, kelurahan, rollup, profile, followups })
}

/// NRR to four decimals from the exact sum, or a dash without respondents.
pub(super) fn nrr_text(g: &IkmGroup, e: Element) -> String {
    g.tally.nrr_text(e).unwrap_or_else(|| "—".into())
}

/// How many of the lowest elements the report singles out for a follow-up.
const LOWEST_SHOWN: usize = 3;

/// The regulation's per-element breakdown of one group (the whole scope):
/// element, sum of scores, NRR and weighted NRR (four decimals, from the
/// exact sums), then the unit and converted IKM, mutu and kinerja.
fn element_breakdown(lang: Lang, g: &IkmGroup, lowest: &[Element]) -> Markup {
    let ikm = g.tally.ikm();
    html! {
        table #ikm-elements .fit {
            thead { tr {
                th scope="col" { (lang.t("Kode", "Code")) } th scope="col" { (lang.t("Unsur", "Element")) } th.num scope="col" { (lang.t("Jumlah nilai", "Sum of scores")) }
                th.num scope="col" { "NRR" } th.num scope="col" { (lang.t("NRR tertimbang (× 1/9)", "Weighted NRR (× 1/9)")) }
            } }
            tbody {
                @for e in Element::ALL {
                    tr data-element=(e.code()) .lowest[lowest.contains(&e)] {
                        td { (e.code()) }
                        td { (lang.t(e.info().name_id, e.info().name_en)) }
                        td.num { (g.tally.sums[e.index()]) }
                        td.num.nrr { (g.tally.nrr_text(e).unwrap_or_else(|| "—".into())) }
                        td.num.weighted { (g.tally.weighted_nrr_text(e).unwrap_or_else(|| "—".into())) }
                    }
                }
            }
            tfoot {
                tr { th colspan="4" { (lang.t("IKM (Σ NRR tertimbang)", "IKM (Σ weighted NRR)")) } td.num #ikm-unit { (g.tally.ikm_unit_text().unwrap_or_else(|| "—".into())) } }
                tr { th colspan="4" { (lang.t("IKM konversi (× 25)", "Converted IKM (× 25)")) } td.num #ikm-converted { @if let Some(i) = ikm { (i.text()) } @else { "—" } } }
                tr { th colspan="4" { (lang.t("Mutu", "Grade")) } td #ikm-grade { @if let Some(i) = ikm { (i.grade.to_string()) } @else { "—" } } }
                tr { th colspan="4" { (lang.t("Kinerja unit pelayanan", "Performance of the service unit")) } td #ikm-performance { @if let Some(i) = ikm { (lang.t(i.grade.performance_id(), i.grade.performance_en())) } @else { "—" } } }
            }
        }
    }
}

/// The profile of the respondents: per question, each answer's count and
/// share of all respondents (two decimals, exact), and those who did not
/// answer.
fn profile_table(lang: Lang, t: &ProfileTally) -> Markup {
    let percent = |n: u64| t.percent_text(n).unwrap_or_else(|| "—".into());
    html! {
        table #profile .fit {
            thead { tr {
                th scope="col" { (lang.t("Profil", "Profile")) } th scope="col" { (lang.t("Kategori", "Category")) }
                th.num scope="col" { (lang.t("Jumlah", "Count")) } th.num scope="col" { (lang.t("Persen (%)", "Percent (%)")) }
            } }
            @for d in Dimension::ALL {
                tbody data-dimension=(d.key()) {
                    @for (i, c) in d.choices().iter().enumerate() {
                        tr data-dimension=(d.key()) data-code=(c.code) {
                            @if i == 0 {
                                th rowspan=(d.choices().len() + 1) scope="rowgroup" { (lang.t(d.label_id(), d.label_en())) }
                            }
                            td { (lang.t(c.label_id, c.label_en)) }
                            td.num.count { (t.count(d, c.code)) }
                            td.num.percent { (percent(t.count(d, c.code))) }
                        }
                    }
                    tr.unanswered data-dimension=(d.key()) data-code="" {
                        td { (lang.t("Tidak menjawab", "No answer")) }
                        td.num.count { (t.unanswered(d)) }
                        td.num.percent { (percent(t.unanswered(d))) }
                    }
                }
            }
        }
        p { (lang.t("Jumlah responden", "Respondents")) ": " strong #profile-respondents { (t.respondents) } ". " (lang.t(
            "Persen dari seluruh responden. Profil hanya dilaporkan sebagai jumlah, tidak pernah dikaitkan dengan nama atau NIK.",
            "Percent of all respondents. The profile is reported as counts only, never linked to a name or NIK.",
        )) }
    }
}

/// Where a plan applies, for people.
fn plan_office(lang: Lang, kelurahan: Option<&str>) -> String {
    match kelurahan {
        Some(k) => place_name(k),
        None => format!("Kota Medan ({})", lang.t("seluruh kantor", "every office")),
    }
}

/// A plan's progress as a tag in words.
pub(super) fn progress_tag(lang: Lang, p: Progress) -> Markup {
    let (id, en) = p.label();
    let kind = match p {
        Progress::Done => "ok",
        Progress::Planned => "muted",
        Progress::Ongoing => "info",
    };
    tag(kind, lang.t(id, en))
}

/// A list of follow-up plans (the IKM page's and the admin page's read
/// view).
pub(super) fn plans_table(lang: Lang, plans: &[&Followup], st: &AppState) -> Markup {
    html! {
        table.plans.fit {
            thead { tr {
                th scope="col" { (lang.t("Kantor", "Office")) } th scope="col" { (lang.t("Periode", "Period")) }
                th scope="col" { (lang.t("Rencana tindak lanjut", "Action")) } th scope="col" { (lang.t("Penanggung jawab", "Responsible")) }
                th scope="col" { "Target" } th scope="col" { "Status" } th scope="col" { (lang.t("Catatan progres", "Progress note")) }
            } }
            tbody {
                @for f in plans {
                    tr data-plan=(f.id) data-status=(f.progress.code()) {
                        td { (plan_office(lang, f.kelurahan.as_deref())) }
                        td { (Period::parse(&f.period).map_or(f.period.clone(), |p| p.label_in(lang))) }
                        td.note { (f.action) }
                        td { (f.responsible) }
                        td.mono { (loket_shared::reference::ymd::format(f.target)) }
                        td.status { (progress_tag(lang, f.progress)) }
                        td.note {
                            @if let Some(n) = &f.progress_note { (n) }
                            br; small { (f.updated_by) " · " (st.human_time(f.updated_ms)) }
                        }
                    }
                }
            }
        }
    }
}

/// The lowest elements of the report, each with its follow-up plans or,
/// for an admin, a call to add one.
fn lowest_with_plans(lang: Lang, report: &IkmReport, user: &User, st: &AppState) -> Markup {
    let lowest = report.lowest();
    let may_add = user.role == Role::Admin;
    let add_link = |e: Element| {
        let mut link = format!("/admin/ikm/tindak-lanjut?periode={}&unsur={}", report.period.code(), e.code());
        if let Some(k) = &report.kelurahan {
            link.push_str(&format!("&kelurahan={k}"));
        }
        link
    };
    html! {
        h2 { (lang.t("Unsur terendah dan rencana tindak lanjut", "Lowest elements and follow-up plans")) }
        @if lowest.is_empty() { (empty_state("lowest-empty", lang.t(
            "Belum ada responden pada periode ini. Tiga unsur dengan NRR terendah akan tampil di sini, masing-masing dengan rencana tindak lanjutnya.",
            "No respondents in this period yet. The three elements with the lowest NRR will show here, each with its follow-up plans.",
        ))) }
        ol #lowest-elements {
            @for e in &lowest {
                @let plans: Vec<&Followup> = report.followups.iter().filter(|f| f.element == *e).collect();
                li data-element=(e.code()) {
                    strong { (e.code()) " " (lang.t(e.info().name_id, e.info().name_en)) } ": NRR "
                    span.nrr { (report.total.tally.nrr_text(*e).unwrap_or_default()) }
                    @if plans.is_empty() {
                        p.no-plan { (lang.t("Belum ada rencana tindak lanjut.", "No follow-up plan yet.")) " "
                            @if may_add { a.add-plan href=(add_link(*e)) { (lang.t("Tambah rencana", "Add a plan")) } } }
                    } @else {
                        (plans_table(lang, &plans, st))
                        @if may_add { p { a.add-plan href=(add_link(*e)) { (lang.t("Tambah rencana lain", "Add another plan")) } } }
                    }
                }
            }
        }
        @if crate::ops::followups::may_read(user) {
            p { a #all-plans href=(format!("/admin/ikm/tindak-lanjut?periode={}", report.period.code())) { (lang.t("Semua rencana tindak lanjut", "Every follow-up plan")) } }
        }
    }
}

pub(super) async fn ikm_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<IkmQuery>,
) -> Result<Response, PageError> {
    let report = ikm_report(&st, &web.user, &q).await?;
    let offset = st.config.utc_offset();
    // Trend: every month of the period's year.
    let year = Period { year: report.period.year, months: (1, 12) };
    let (yf, yt) = year.range_ms(offset);
    let months = if report.rollup {
        crate::ops::reports::ikm_rollup_in(&st.db, report.scope.clone(), year.months(), IkmKey::Month).await?
    } else {
        crate::ops::reports::ikm_groups_in(&st.db, report.scope.clone(), offset, (yf, yt), IkmKey::Month).await?
    };
    let points: Vec<Option<f64>> = (1..=12)
        .map(|m| {
            let key = format!("{}-{m:02}", report.period.year);
            months.iter().find(|g| g.key == key).and_then(|g| g.tally.ikm()).map(|i| i.value())
        })
        .collect();
    let lang = page.lang();
    let (from, to) = report.period.range_ms(offset);
    let comments = crate::ops::reports::ikm_comments(&st.db, report.scope.clone(), from, to, 30).await?;
    let per = match report.key {
        IkmKey::Kecamatan => "kecamatan",
        IkmKey::Service => "layanan",
        _ => "kelurahan",
    };
    // A city-wide user may narrow the report to one kelurahan.
    let city_wide = crate::ops::reports::city_wide(&web.user);
    let mut offices = loket_shared::wilayah::medan(loket_shared::wilayah::Level::Kelurahan);
    offices.sort_by_key(|r| r.code);
    let row = |g: &IkmGroup, name: &str| {
        let ikm = g.tally.ikm();
        html! {
            tr data-key=(g.key) .insufficient[!g.sufficient()] {
                td { (name) @if name != g.key && g.key != "Total" { br; small.mono { (g.key) } } }
                td.num { (g.tally.respondents) } td.num { (g.service_users) }
                td.num { (g.sample_min) br; @if g.sufficient() { (tag("ok", lang.t("Cukup", "Enough"))) } @else { (tag("warn", lang.t("Sampel kurang", "Sample too small"))) } }
                @for e in Element::ALL { td.num { (nrr_text(g, e)) } }
                td.num.ikm { @if let Some(i) = ikm { (i.text()) br; (grade_tag(lang, i.grade)) } @else { "—" } }
            }
        }
    };
    let query = report.query();
    let lowest = report.lowest();
    let body = html! {
        h1 { (lang.t("Indeks Kepuasan Masyarakat (IKM)", "Public Satisfaction Index (IKM)")) }
        form.filters #ikm-filters method="get" action="/admin/ikm" {
            label for="periode" { (lang.t("Periode", "Period")) }
            (period_select(lang, "periode", report.period, &report_years(report.period)))
            label for="per" { (lang.t("Per", "By")) }
            select #per name="per" {
                option value="kelurahan" selected[per == "kelurahan"] { "Kelurahan" }
                option value="kecamatan" selected[per == "kecamatan"] { "Kecamatan" }
                option value="layanan" selected[per == "layanan"] { (lang.t("Layanan", "Service")) }
            }
            @if city_wide {
                label for="kelurahan" { (lang.t("Kantor", "Office")) }
                select #kelurahan name="kelurahan" {
                    option value="" selected[report.kelurahan.is_none()] { (lang.t("Seluruh kota", "Whole city")) }
                    @for r in &offices {
                        option value=(r.code) selected[report.kelurahan.as_deref() == Some(r.code)] { (r.name) " (" (r.code) ")" }
                    }
                }
            }
            button.primary type="submit" { (lang.t("Tampilkan", "Show")) }
            a #csv href=(format!("/admin/ikm.csv?{query}")) { "CSV" }
            a #xlsx href=(format!("/admin/ikm.xlsx?{query}")) { "XLSX" }
            @if web.user.role == Role::Admin { " · " a #publish-link href="/admin/ikm/terbit" { (lang.t("Terbitkan ke kiosk", "Publish to kiosks")) } }
        }
        p { (lang.t("Laporan SKM ", "SKM report, ")) strong #place { (report.place(lang)) } ", " (lang.t("periode ", "period ")) strong #period data-code=(report.period.code()) { (report.period.label_in(lang)) } ". " (lang.t(
            "NRR per unsur (1-4), IKM = Σ NRR × 1/9 × 25. Mutu dibaca dari IKM konversi dua desimal (A ≥ 88,31; B ≥ 76,61; C ≥ 65,00). Sampel minimum: Krejcie-Morgan atas jumlah pengguna layanan.",
            "NRR per element (1-4), IKM = Σ NRR × 1/9 × 25. The grade is read from the converted IKM to two decimals (A ≥ 88.31; B ≥ 76.61; C ≥ 65.00). Minimum sample: Krejcie-Morgan on the number of service users.",
        )) }
        h2 { (lang.t("Profil responden", "Respondent profile")) }
        (profile_table(lang, &report.profile))
        p.downloads { (lang.t("Unduh bagian (CSV)", "Download a part (CSV)")) ": "
            a href=(format!("/admin/ikm.csv?{query}&bagian=profil")) #csv-profile { (lang.t("profil", "profile")) } " · "
            a href=(format!("/admin/ikm.csv?{query}&bagian=unsur")) #csv-elements { (lang.t("unsur", "elements")) } " · "
            a href=(format!("/admin/ikm.csv?{query}&bagian=tindak-lanjut")) #csv-plans { (lang.t("tindak lanjut", "follow-up plans")) } }
        h2 { (lang.t("Rincian per unsur", "By element")) }
        (element_breakdown(lang, &report.total, &lowest))
        (lowest_with_plans(lang, &report, &web.user, &st))
        h2 { (lang.t("Per ", "By ")) (if per == "layanan" { lang.t("layanan", "service") } else { per }) }
        @if report.groups.is_empty() {
            (empty_state("ikm-empty", lang.t(
                "Belum ada pengguna layanan pada periode ini. Setiap kelurahan, kecamatan atau layanan dengan permohonan yang selesai akan muncul di sini dengan NRR per unsur, IKM, mutu dan cukup-tidaknya sampel.",
                "No service users in this period yet. Each kelurahan, kecamatan or service with finished requests will show here with its NRR per element, IKM, grade and whether its sample is large enough.",
            )))
        }
        div.scroll tabindex="0" role="region" aria-label=(lang.t("Tabel IKM", "IKM table")) {
            table #ikm .fit {
                thead { tr {
                    th scope="col" { (lang.t("Nama dan kode", "Name and code")) }
                    th.num scope="col" { (lang.t("Responden", "Respondents")) } th.num scope="col" { (lang.t("Pengguna layanan", "Service users")) }
                    th.num scope="col" { (lang.t("Sampel minimum", "Minimum sample")) }
                    @for e in Element::ALL { th.num scope="col" title=(lang.t(e.info().name_id, e.info().name_en)) { (e.code()) } }
                    th.num scope="col" { (lang.t("IKM dan mutu", "IKM and grade")) }
                } }
                tbody {
                    @for g in &report.groups { (row(g, report.names.get(&g.key).map_or("", String::as_str))) }
                }
                tfoot { (row(&report.total, lang.t("Semua", "All"))) }
            }
        }
        p.hint #element-key {
            @for (i, e) in Element::ALL.iter().enumerate() {
                @if i > 0 { " · " }
                strong { (e.code()) } " " (lang.t(e.info().name_id, e.info().name_en))
            }
        }
        h2 { (lang.t("Tren IKM ", "IKM trend ")) (report.period.year) }
        (super::charts::ikm_trend(lang, report.period.year, &points))
        h2 { (lang.t("Saran dan masukan", "Comments")) }
        @if comments.is_empty() { (empty_state("comments-empty", lang.t(
            "Belum ada saran pada periode ini. Komentar yang ditulis warga bersama penilaiannya di kiosk akan tampil di sini.",
            "No comments in this period yet. What citizens write with their rating at a kiosk will show here.",
        ))) }
        ul #comments {
            @for (at, kel, text) in &comments {
                li { span.when { (st.human_time(*at)) " · " (place_name(kel)) } p.note { (text) } }
            }
        }
    };
    let markup = page.frame(lang.t("Indeks Kepuasan Masyarakat", "Public Satisfaction Index"), &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}

/// The figures per group, in the columns of an SKM report (the CSV's
/// default part and the XLSX's first sheet).
fn groups_table(report: &IkmReport, name: String) -> Table {
    let mut header: Vec<String> = ["kode", "nama", "responden", "pengguna_layanan", "sampel_minimum", "sampel_cukup"]
        .into_iter()
        .map(String::from)
        .collect();
    header.extend(Element::ALL.iter().map(|e| format!("nrr_{}", e.code().to_lowercase())));
    header.extend(Element::ALL.iter().map(|e| format!("nrr_tertimbang_{}", e.code().to_lowercase())));
    header.extend(["nrr_tertimbang", "ikm", "mutu", "kinerja"].map(String::from));
    let decimals = loket_shared::skm::NRR_DECIMALS as usize;
    let mut rows = Vec::new();
    for g in report.groups.iter().chain(std::iter::once(&report.total)) {
        let ikm = g.tally.ikm();
        let name = report.names.get(&g.key).cloned().unwrap_or_else(|| "Total".into());
        let mut rec = vec![
            Cell::Text(g.key.clone()),
            Cell::Text(name),
            Cell::Int(g.tally.respondents as i64),
            Cell::Int(g.service_users as i64),
            Cell::Int(g.sample_min as i64),
            Cell::Text(if g.sufficient() { "ya".into() } else { "tidak".into() }),
        ];
        // Every figure from the exact sums; the grade from the printed IKM.
        rec.extend(
            Element::ALL.iter().map(|e| g.tally.nrr_text(*e).map_or(Cell::Empty, |v| Cell::Decimal(v, decimals))),
        );
        rec.extend(
            Element::ALL
                .iter()
                .map(|e| g.tally.weighted_nrr_text(*e).map_or(Cell::Empty, |v| Cell::Decimal(v, decimals))),
        );
        rec.push(g.tally.ikm_unit_text().map_or(Cell::Empty, |v| Cell::Decimal(v, decimals)));
        rec.push(ikm.map_or(Cell::Empty, |i| Cell::Decimal(i.text(), 2)));
        rec.push(ikm.map_or(Cell::Empty, |i| Cell::Text(i.grade.to_string())));
        rec.push(ikm.map_or(Cell::Empty, |i| Cell::Text(i.grade.performance_id().to_owned())));
        rows.push(rec);
    }
    Table { name, header, rows }
}

/// Each element of the whole report with its name: sum, respondents,
/// NRR, weighted NRR, and its rank among the lowest.
fn elements_table(report: &IkmReport) -> Table {
    let header = ["kode", "unsur", "element", "jumlah_nilai", "responden", "nrr", "nrr_tertimbang", "terendah"]
        .map(String::from)
        .to_vec();
    let decimals = loket_shared::skm::NRR_DECIMALS as usize;
    let t = &report.total.tally;
    let lowest = report.lowest();
    let rows = Element::ALL
        .iter()
        .map(|e| {
            vec![
                Cell::Text(e.code().into()),
                Cell::Text(e.info().name_id.into()),
                Cell::Text(e.info().name_en.into()),
                Cell::Int(t.sums[e.index()] as i64),
                Cell::Int(t.respondents as i64),
                t.nrr_text(*e).map_or(Cell::Empty, |v| Cell::Decimal(v, decimals)),
                t.weighted_nrr_text(*e).map_or(Cell::Empty, |v| Cell::Decimal(v, decimals)),
                lowest.iter().position(|l| l == e).map_or(Cell::Empty, |i| Cell::Int(i as i64 + 1)),
            ]
        })
        .collect();
    Table { name: "unsur".into(), header, rows }
}

/// The respondent profile: per question and answer, the count and the
/// share of all respondents; "tidak_menjawab" for those who left it.
fn profile_export(report: &IkmReport) -> Table {
    let header = ["dimensi", "profil", "kode", "kategori", "category", "jumlah", "persen", "responden"]
        .map(String::from)
        .to_vec();
    let t = &report.profile;
    let percent = |n: u64| t.percent_text(n).map_or(Cell::Empty, |p| Cell::Decimal(p, 2));
    let mut rows = Vec::new();
    for d in Dimension::ALL {
        let mut line = |code: &str, id: &str, en: &str, n: u64| {
            rows.push(vec![
                Cell::Text(d.key().into()),
                Cell::Text(d.label_id().into()),
                Cell::Text(code.into()),
                Cell::Text(id.into()),
                Cell::Text(en.into()),
                Cell::Int(n as i64),
                percent(n),
                Cell::Int(t.respondents as i64),
            ]);
        };
        for c in d.choices() {
            line(c.code, c.label_id, c.label_en, t.count(d, c.code));
        }
        line("tidak_menjawab", "Tidak menjawab", "No answer", t.unanswered(d));
    }
    Table { name: "profil".into(), header, rows }
}

/// The follow-up plans of the report's scope and period.
fn followups_export(report: &IkmReport, st: &AppState) -> Table {
    let zone = st.zone_name().to_lowercase();
    let mut header: Vec<String> = [
        "id",
        "kantor",
        "nama_kantor",
        "periode",
        "unsur",
        "nama_unsur",
        "terendah",
        "rencana_tindak_lanjut",
        "penanggung_jawab",
        "target",
        "status",
        "catatan_progres",
        "diperbarui_oleh",
    ]
    .map(String::from)
    .to_vec();
    header.push(format!("diperbarui_{zone}"));
    let lowest = report.lowest();
    let rows = report
        .followups
        .iter()
        .map(|f| {
            vec![
                Cell::Int(f.id),
                Cell::Text(f.kelurahan.clone().unwrap_or_else(|| "kota".into())),
                Cell::Text(match &f.kelurahan {
                    Some(k) => loket_shared::wilayah::region(k).map_or(k.clone(), |r| r.name.to_owned()),
                    None => "Kota Medan".into(),
                }),
                Cell::Text(f.period.clone()),
                Cell::Text(f.element.code().into()),
                Cell::Text(f.element.info().name_id.into()),
                Cell::Text(if lowest.contains(&f.element) { "ya".into() } else { "tidak".into() }),
                Cell::Text(f.action.clone()),
                Cell::Text(f.responsible.clone()),
                Cell::Text(loket_shared::reference::ymd::format(f.target)),
                Cell::Text(f.progress.code().into()),
                Cell::Text(f.progress_note.clone().unwrap_or_default()),
                Cell::Text(f.updated_by.clone()),
                Cell::Time(st.local_datetime(f.updated_ms)),
            ]
        })
        .collect();
    Table { name: "tindak-lanjut".into(), header, rows }
}

/// The SKM report for download. CSV: one part (`bagian`: `ikm`, the
/// default, `unsur`, `profil`, `tindak-lanjut`); XLSX: every part, one
/// sheet each, the figures per group first.
pub(super) async fn ikm_export(
    State(st): State<AppState>,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<IkmQuery>,
    format: Export,
) -> Result<Response, PageError> {
    let report = ikm_report(&st, &web.user, &q).await?;
    let mut name = format!("ikm-{}", report.period.code());
    if let Some(k) = &report.kelurahan {
        name.push_str(&format!("-{k}"));
    }
    match format {
        Export::Xlsx => {
            let tables = vec![
                groups_table(&report, name.clone()),
                elements_table(&report),
                profile_export(&report),
                followups_export(&report, &st),
            ];
            Table::respond_workbook(&name, &tables)
        }
        Export::Csv => {
            let mut table = match q.bagian.as_deref().unwrap_or("ikm") {
                "ikm" | "" => return groups_table(&report, name).respond(format),
                "unsur" => elements_table(&report),
                "profil" => profile_export(&report),
                "tindak-lanjut" => followups_export(&report, &st),
                _ => {
                    return Err(ApiError::bad_request(
                        "invalid_part",
                        "bagian: ikm, unsur, profil atau tindak-lanjut / part: ikm, unsur, profil or tindak-lanjut",
                    )
                    .into());
                }
            };
            table.name = format!("{name}-{}", table.name);
            table.respond(format)
        }
    }
}
