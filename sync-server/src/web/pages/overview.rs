//! The overview: filed, finished, within the SLA, open, conflicts and
//! offline kiosks per kecamatan or kelurahan, and requests per day.

use super::*;

// ------------------------------------------------------------------ overview

/// Requests per day as inline SVG bars.
pub(super) fn per_day_svg(days: &[(i64, u64)], offset: time::UtcOffset) -> Markup {
    let (w, h, left, bottom) = (720.0_f64, 200.0_f64, 40.0_f64, 24.0_f64);
    let max = days.iter().map(|d| d.1).max().unwrap_or(0).max(1) as f64;
    let n = days.len().max(1) as f64;
    let bar_w = ((w - left - 8.0) / n).max(1.0);
    html! {
        svg #per-day viewBox=(format!("0 0 {w} {h}")) width="100%" role="img" aria-label="Permohonan per hari / requests per day" {
            text x="2" y="14" font-size="13" fill="#333" { (max as u64) }
            line x1=(left) x2=(w) y1=(h - bottom) y2=(h - bottom) stroke="#888" {}
            @for (i, (day, count)) in days.iter().enumerate() {
                @let bh = (h - bottom - 8.0) * (*count as f64) / max;
                @let date = time::OffsetDateTime::from_unix_timestamp(day * 86_400).map(|t| t.to_offset(offset).date()).ok();
                rect x=(format!("{:.1}", left + bar_w * i as f64)) y=(format!("{:.1}", h - bottom - bh)) width=(format!("{:.1}", (bar_w - 1.0).max(0.5)))
                    height=(format!("{:.1}", bh)) fill="#0b3d91" {
                    title { @if let Some(d) = date { (d.to_string()) } ": " (count) }
                }
            }
        }
    }
}

#[derive(Deserialize)]
pub(super) struct OverviewQuery {
    periode: Option<String>,
    per: Option<String>,
}

pub(super) async fn overview_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<OverviewQuery>,
) -> Result<Response, PageError> {
    use crate::ops::reports::{IkmKey, OverviewGroup};
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, false)?;
    let key = if q.per.as_deref() == Some("kelurahan") { IkmKey::Kelurahan } else { IkmKey::Kecamatan };
    let (from, to) = period.range_ms(offset);
    let catalog = crate::central::load_catalog(&st.db).await?;
    let agencies = crate::ops::reports::agency_groups(&st.db, &web.user, period.months()).await?;
    let (groups, days) = if crate::ops::reports::rollups_serve(&web.user) {
        let offset_ms = i64::from(offset.whole_seconds()) * 1000;
        let day_range = ((from + offset_ms) / 86_400_000, (to + offset_ms) / 86_400_000 - 1);
        (
            crate::ops::reports::overview_rollup(&st.db, &web.user, period.months(), key).await?,
            crate::ops::reports::filed_per_day_rollup(&st.db, &web.user, day_range).await?,
        )
    } else {
        (
            crate::ops::reports::overview_groups(&st.db, &web.user, from, to, key, &catalog).await?,
            crate::ops::reports::filed_per_day(&st.db, &web.user, st.config.utc_offset(), from, to).await?,
        )
    };
    // Every day of the period, empty ones too, so bars keep their width.
    let offset_ms = i64::from(offset.whole_seconds()) * 1000;
    let counts: std::collections::BTreeMap<i64, u64> = days.into_iter().collect();
    let days: Vec<(i64, u64)> = ((from + offset_ms) / 86_400_000..(to + offset_ms) / 86_400_000)
        .map(|d| (d, counts.get(&d).copied().unwrap_or(0)))
        .collect();
    let mut total = OverviewGroup { key: "Total".into(), ..Default::default() };
    for g in &groups {
        total.merge(g);
    }
    let offline = if web.user.role == Role::Admin {
        let rows = crate::ops::admin::kiosks(&st.db).await?;
        let limit = i64::try_from(st.config.kiosk_offline_after.as_millis()).unwrap_or(i64::MAX);
        let now_ms = store::now_ms();
        Some(rows.iter().filter(|k| !k.revoked && k.last_seen_at_ms.is_none_or(|t| now_ms - t > limit)).count())
    } else {
        None
    };
    let pct = |g: &OverviewGroup| g.sla_percent().map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"));
    let per = if key == IkmKey::Kelurahan { "kelurahan" } else { "kecamatan" };
    let body = html! {
        h1 { "Ringkasan layanan / Service overview" }
        form.filters method="get" action="/admin/ringkasan" {
            label for="periode" { "Periode / Period" }
            select #periode name="periode" {
                @for y in [period.year, period.year - 1] {
                    @for p in Period::choices(y) { option value=(p.code()) selected[p == period] { (p.label()) } }
                }
            }
            label for="per" { "Per" }
            select #per name="per" {
                option value="kecamatan" selected[per == "kecamatan"] { "Kecamatan" }
                option value="kelurahan" selected[per == "kelurahan"] { "Kelurahan" }
            }
            button.primary type="submit" { "Tampilkan / Show" }
        }
        ul.cards #cards {
            li { span.big #c-filed { (total.filed) } " diajukan / filed in " (period.label()) }
            li { span.big #c-finished { (total.finished) } " selesai (" span #c-rejected { (total.rejected) } " ditolak) / finished (rejected)" }
            li { span.big #c-cancelled { (total.cancelled) } " dibatalkan / cancelled" }
            li { span.big #c-sla { (pct(&total)) } " dalam SLA kelurahan / within the kelurahan's SLA" }
            li { span.big #c-open { (total.open) } " terbuka sekarang / open now" }
            li { a href="/admin/konflik" { span.big #c-conflicts { (total.conflicts) } } " konflik menunggu / conflicts waiting" }
            @if let Some(n) = offline {
                li { a href="/admin/kiosk" { span.big #c-offline { (n) } } " kiosk luring > " (st.config.kiosk_offline_after.as_secs() / 60) " menit / kiosks offline" }
            }
        }
        h2 { "Permohonan per hari / Requests per day" }
        (per_day_svg(&days, offset))
        div.scroll {
            table #overview {
                thead { tr {
                    th { "Kode" } th { "Nama" } th { "Diajukan" } th { "Selesai" } th { "Ditolak" } th { "Dibatalkan" }
                    th { "Dalam SLA" } th { "SLA %" } th { "Terbuka" } th { "Konflik" }
                } }
                tbody {
                    @for g in &groups {
                        tr data-key=(g.key) {
                            td { (g.key) }
                            td { (loket_shared::wilayah::region(&g.key).map_or("", |r| r.name)) }
                            td.num { (g.filed) } td.num { (g.finished) } td.num { (g.rejected) } td.num { (g.cancelled) }
                            td.num { (g.within_sla) } td.num { (pct(g)) } td.num { (g.open) } td.num { (g.conflicts) }
                        }
                    }
                }
                tfoot { tr {
                    td { "Total" } td { "Semua / All" }
                    td.num { (total.filed) } td.num { (total.finished) } td.num { (total.rejected) } td.num { (total.cancelled) }
                    td.num { (total.within_sla) } td.num { (pct(&total)) } td.num { (total.open) } td.num { (total.conflicts) }
                } }
            }
        }
        p.code { "SLA kelurahan: waktu kerja pada jam layanan kantor (hari kerja, kecuali hari libur dan cuti bersama bila kantor tutup) dari pengajuan sampai selesai, tanpa waktu menunggu berkas pemohon dan tanpa waktu di instansi, dibanding hari kerja layanan di katalog. Selesai = dikabulkan atau ditolak; yang dibatalkan tidak masuk hitungan SLA. / "
            "The kelurahan's SLA: working time in the office's service hours (working days, without holidays and, when offices close, collective leave) from filing to finish, without the time waiting for the citizen's documents and the time at an agency, against the service's working days in the catalog. Finished = completed or rejected; cancelled requests are outside the SLA share." }
        h2 { "Instansi / Agencies" }
        @if agencies.is_empty() {
            p #agencies-empty { "Tidak ada permohonan yang selesai melalui instansi pada periode ini. / No request finished through an agency in this period." }
        } @else {
            table #agencies {
                thead { tr {
                    th { "Instansi" } th { "Selesai" } th { "Ber-SLA" } th { "Dalam SLA instansi" } th { "SLA %" } th { "Rata-rata waktu" }
                } }
                tbody {
                    @for a in &agencies {
                        tr data-agency=(a.agency) {
                            td { (catalog.agency(&a.agency).map_or(a.agency.as_str(), |x| x.name.as_str())) }
                            td.num { (a.finished) } td.num { (a.judged) } td.num { (a.within_sla) }
                            td.num { (a.sla_percent().map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"))) }
                            td.num { (a.mean_ms().map_or_else(|| "—".to_owned(), duration_text)) }
                        }
                    }
                }
            }
            p.code { "Waktu instansi dihitung dari penyerahan sampai kembali ke kelurahan, pada jam layanan, dibanding SLA instansi di katalog (mis. Disdukcapil: KK 3 hari kerja); tanpa SLA di katalog: diukur, tidak dinilai. / An agency's time runs from the hand-off until it returns the request, in service hours, against its own SLA in the catalog; without one it is measured, not judged." }
        }
    };
    let markup = frame("Ringkasan Kinerja Pelayanan", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}
