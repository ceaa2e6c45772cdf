//! Satisfaction (IKM): NRR per element, IKM, grade and sample minimum per
//! kelurahan, kecamatan or service, a monthly trend, comments, and the
//! SKM report download.

use super::*;

#[derive(Deserialize)]
pub(super) struct IkmQuery {
    periode: Option<String>,
    per: Option<String>,
}

pub(super) struct IkmReport {
    period: Period,
    key: crate::ops::reports::IkmKey,
    groups: Vec<crate::ops::reports::IkmGroup>,
    total: crate::ops::reports::IkmGroup,
    names: std::collections::BTreeMap<String, String>,
}

pub(super) async fn ikm_report(st: &AppState, user: &User, q: &IkmQuery) -> Result<IkmReport, PageError> {
    use crate::ops::reports::{IkmGroup, IkmKey};
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, true)?;
    let key = match q.per.as_deref().unwrap_or("kelurahan") {
        "kelurahan" => IkmKey::Kelurahan,
        "kecamatan" => IkmKey::Kecamatan,
        "layanan" | "service" => IkmKey::Service,
        _ => return Err(ApiError::bad_request("invalid_group_by", "per: kelurahan | kecamatan | layanan").into()),
    };
    let (from, to) = period.range_ms(offset);
    let groups = if crate::ops::reports::rollups_serve(user) {
        crate::ops::reports::ikm_rollup(&st.db, user, period.months(), key).await?
    } else {
        crate::ops::reports::ikm_groups(&st.db, user, st.config.utc_offset(), (from, to), key).await?
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
    Ok(IkmReport { period, key, groups, total, names })
}

/// NRR to four decimals from the exact sum, or a dash without respondents.
pub(super) fn nrr_text(g: &crate::ops::reports::IkmGroup, e: loket_shared::skm::Element) -> String {
    g.tally.nrr_text(e).unwrap_or_else(|| "—".into())
}

/// How many of the lowest elements the report singles out for a follow-up.
const LOWEST_SHOWN: usize = 3;

/// The regulation's per-element breakdown of one group (the whole scope):
/// element, sum of scores, NRR and weighted NRR (four decimals, from the
/// exact sums), then the unit and converted IKM, mutu and kinerja, and the
/// lowest elements.
fn element_breakdown(g: &crate::ops::reports::IkmGroup) -> Markup {
    use loket_shared::skm::Element;
    let ikm = g.tally.ikm();
    let lowest = g.tally.lowest_elements(LOWEST_SHOWN);
    html! {
        table #ikm-elements {
            thead { tr {
                th { "Kode" } th { "Unsur / Element" } th { "Jumlah nilai / Sum" }
                th { "NRR" } th { "NRR tertimbang (× 1/9)" }
            } }
            tbody {
                @for e in Element::ALL {
                    tr data-element=(e.code()) .lowest[lowest.contains(&e)] {
                        td { (e.code()) }
                        td { (e.info().name_id) br; small { (e.info().name_en) } }
                        td.num { (g.tally.sums[e.index()]) }
                        td.num.nrr { (g.tally.nrr_text(e).unwrap_or_else(|| "—".into())) }
                        td.num.weighted { (g.tally.weighted_nrr_text(e).unwrap_or_else(|| "—".into())) }
                    }
                }
            }
            tfoot {
                tr { th colspan="4" { "IKM (Σ NRR tertimbang)" } td.num #ikm-unit { (g.tally.ikm_unit_text().unwrap_or_else(|| "—".into())) } }
                tr { th colspan="4" { "IKM konversi (× 25) / Converted IKM" } td.num #ikm-converted { @if let Some(i) = ikm { (i.text()) } @else { "—" } } }
                tr { th colspan="4" { "Mutu / Grade" } td #ikm-grade { @if let Some(i) = ikm { (i.grade.to_string()) } @else { "—" } } }
                tr { th colspan="4" { "Kinerja unit pelayanan / Performance" } td #ikm-performance { @if let Some(i) = ikm { (i.grade.performance_id()) " / " (i.grade.performance_en()) } @else { "—" } } }
            }
        }
        @if !lowest.is_empty() {
            h3 { "Unsur terendah / Lowest elements" }
            ol #lowest-elements {
                @for e in &lowest {
                    li data-element=(e.code()) {
                        (e.code()) " " (e.info().name_id) ": NRR " (g.tally.nrr_text(*e).unwrap_or_default())
                    }
                }
            }
        }
    }
}

/// The IKM trend as inline SVG: one point per month with respondents,
/// the grade bands drawn behind.
pub(super) fn trend_svg(points: &[(String, Option<f64>)]) -> Markup {
    let (w, h, left, top) = (720.0_f64, 240.0_f64, 48.0_f64, 12.0_f64);
    let plot_w = w - left - 12.0;
    let plot_h = h - top - 36.0;
    let y = |ikm: f64| top + plot_h * (100.0 - ikm) / 75.0;
    let x = |i: usize| left + plot_w * (i as f64 + 0.5) / points.len().max(1) as f64;
    let path: Vec<String> =
        points.iter().enumerate().filter_map(|(i, (_, v))| v.map(|v| format!("{:.1},{:.1}", x(i), y(v)))).collect();
    html! {
        svg #trend viewBox=(format!("0 0 {w} {h}")) width="100%" role="img" aria-label="Tren IKM per bulan / IKM trend by month" {
            @for (edge, label) in [(88.31, "A"), (76.61, "B"), (65.0, "C"), (25.0, "D")] {
                line x1=(left) x2=(w - 12.0) y1=(y(edge)) y2=(y(edge)) stroke="#bbb" stroke-dasharray="4 4" {}
                text x="4" y=(y(edge) - 3.0) font-size="14" fill="#333" { (label) " " (edge) }
            }
            polyline points=(path.join(" ")) fill="none" stroke="#0b3d91" stroke-width="3" {}
            @for (i, (month, v)) in points.iter().enumerate() {
                @if let Some(v) = v {
                    circle cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(*v))) r="5" fill="#0b3d91" {
                        title { (month) ": " (format!("{v:.2}")) }
                    }
                }
                text x=(format!("{:.1}", x(i))) y=(h - 10.0) font-size="13" text-anchor="middle" fill="#333" { (&month[5..]) }
            }
        }
    }
}

pub(super) async fn ikm_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<IkmQuery>,
) -> Result<Response, PageError> {
    use loket_shared::skm::Element;
    let report = ikm_report(&st, &web.user, &q).await?;
    let offset = st.config.utc_offset();
    // Trend: every month of the period's year.
    let year = Period { year: report.period.year, months: (1, 12) };
    let (yf, yt) = year.range_ms(offset);
    let months = if crate::ops::reports::rollups_serve(&web.user) {
        crate::ops::reports::ikm_rollup(&st.db, &web.user, year.months(), crate::ops::reports::IkmKey::Month).await?
    } else {
        crate::ops::reports::ikm_groups(
            &st.db,
            &web.user,
            st.config.utc_offset(),
            (yf, yt),
            crate::ops::reports::IkmKey::Month,
        )
        .await?
    };
    let points: Vec<(String, Option<f64>)> = (1..=12)
        .map(|m| {
            let key = format!("{}-{m:02}", report.period.year);
            let v = months.iter().find(|g| g.key == key).and_then(|g| g.tally.ikm()).map(|i| i.value());
            (key, v)
        })
        .collect();
    let (from, to) = report.period.range_ms(offset);
    let comments = crate::ops::reports::ikm_comments(&st.db, &web.user, from, to, 30).await?;
    let per = match report.key {
        crate::ops::reports::IkmKey::Kecamatan => "kecamatan",
        crate::ops::reports::IkmKey::Service => "layanan",
        _ => "kelurahan",
    };
    let row = |g: &crate::ops::reports::IkmGroup, name: &str| {
        let ikm = g.tally.ikm();
        html! {
            tr data-key=(g.key) .insufficient[!g.sufficient()] {
                td { (g.key) } td { (name) }
                td.num { (g.tally.respondents) } td.num { (g.service_users) } td.num { (g.sample_min) }
                @for e in Element::ALL { td.num { (nrr_text(g, e)) } }
                td.num.ikm { @if let Some(i) = ikm { (i.text()) } @else { "—" } }
                td.grade { @if let Some(i) = ikm { (i.grade.to_string()) " " (i.grade.performance_id()) } @else { "—" } }
                td { @if g.sufficient() { "Cukup" } @else { strong.bad { "Sampel kurang" } } }
            }
        }
    };
    let body = html! {
        h1 { "Indeks Kepuasan Masyarakat (IKM)" }
        form.filters #ikm-filters method="get" action="/admin/ikm" {
            label for="periode" { "Periode / Period" }
            select #periode name="periode" {
                @for y in [report.period.year, report.period.year - 1] {
                    @for p in Period::choices(y) {
                        option value=(p.code()) selected[p == report.period] { (p.label()) }
                    }
                }
            }
            label for="per" { "Per" }
            select #per name="per" {
                option value="kelurahan" selected[per == "kelurahan"] { "Kelurahan" }
                option value="kecamatan" selected[per == "kecamatan"] { "Kecamatan" }
                option value="layanan" selected[per == "layanan"] { "Layanan / Service" }
            }
            button.primary type="submit" { "Tampilkan / Show" }
            a #csv href=(format!("/admin/ikm.csv?periode={}&per={per}", report.period.code())) { "CSV" }
            a #xlsx href=(format!("/admin/ikm.xlsx?periode={}&per={per}", report.period.code())) { "XLSX" }
        }
        p { "Periode " strong #period data-code=(report.period.code()) { (report.period.label()) } ". NRR per unsur (1-4), IKM = Σ NRR × 1/9 × 25. Mutu dibaca dari IKM konversi dua desimal (A ≥ 88,31; B ≥ 76,61; C ≥ 65,00). Sampel minimum: Krejcie-Morgan atas jumlah pengguna layanan." }
        h2 { "Rincian per unsur / Per element" }
        (element_breakdown(&report.total))
        h2 { "Per " (per) }
        div.scroll {
            table #ikm {
                thead { tr {
                    th { "Kode" } th { "Nama" } th { "Responden" } th { "Pengguna layanan" } th { "Sampel min." }
                    @for e in Element::ALL { th title=(e.info().name_en) { (e.code()) br; small { (e.info().name_id) } } }
                    th { "IKM" } th { "Mutu" } th { "Sampel" }
                } }
                tbody {
                    @for g in &report.groups { (row(g, report.names.get(&g.key).map_or("", String::as_str))) }
                }
                tfoot { (row(&report.total, "Semua / All")) }
            }
        }
        h2 { "Tren IKM " (report.period.year) }
        (trend_svg(&points))
        h2 { "Saran dan masukan / Comments" }
        @if comments.is_empty() { p { "Belum ada. / None yet." } }
        ul #comments {
            @for (at, kel, text) in &comments {
                li { span.when { (st.human_time(*at)) " · " (place_name(kel)) } p.note { (text) } }
            }
        }
    };
    let markup = frame("Indeks Kepuasan Masyarakat", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

/// The IKM table for download, in the columns of an SKM report.
pub(super) async fn ikm_export(
    State(st): State<AppState>,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<IkmQuery>,
    format: Export,
) -> Result<Response, PageError> {
    use loket_shared::skm::Element;
    let report = ikm_report(&st, &web.user, &q).await?;
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
    Table { name: format!("ikm-{}", report.period.code()), header, rows }.respond(format)
}
