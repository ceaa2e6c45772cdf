//! The overview: filed, finished, within the SLA, open, conflicts and
//! offline kiosks per kecamatan or kelurahan, and requests per day.

use super::*;

// ------------------------------------------------------------------ overview

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
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let period_label = period.label_in(lang);
    let body = html! {
        h1 { (t("Ringkasan layanan", "Service overview")) }
        form.filters method="get" action="/admin/ringkasan" {
            label for="periode" { (t("Periode", "Period")) }
            (period_select(lang, "periode", period, &report_years(period)))
            label for="per" { (t("Per", "By")) }
            select #per name="per" {
                option value="kecamatan" selected[per == "kecamatan"] { "Kecamatan" }
                option value="kelurahan" selected[per == "kelurahan"] { "Kelurahan" }
            }
            button.primary type="submit" { (t("Tampilkan", "Show")) }
        }
        ul.cards #cards {
            li { span.big #c-filed { (total.filed) } " " (t("diajukan pada", "filed in")) " " (period_label) }
            li { span.big #c-finished { (total.finished) } " " (t("selesai", "finished")) " (" span #c-rejected { (total.rejected) } " " (t("ditolak", "rejected")) ")" }
            li { span.big #c-cancelled { (total.cancelled) } " " (t("dibatalkan", "cancelled")) }
            li { span.big #c-sla { (pct(&total)) } " " (t("dalam SLA kelurahan", "within the kelurahan's SLA")) }
            li { span.big #c-open { (total.open) } " " (t("terbuka sekarang", "open now")) }
            li { a href="/admin/konflik" { span.big #c-conflicts { (total.conflicts) } } " " (t("konflik menunggu keputusan", "conflicts awaiting a decision")) }
            @if let Some(n) = offline {
                li { a href="/admin/kiosk" { span.big #c-offline { (n) } } " " (t("kiosk luring lebih dari", "kiosks offline for more than")) " " (st.config.kiosk_offline_after.as_secs() / 60) " " (t("menit", "minutes")) }
            }
        }
        h2 { (t("Permohonan per hari", "Requests per day")) }
        (super::charts::per_day(lang, &days))
        h2 { (t("Per ", "By ")) (per) }
        @if groups.is_empty() {
            (empty_state("overview-empty", t(
                "Belum ada permohonan pada periode ini. Setiap kecamatan atau kelurahan yang menerima permohonan akan muncul di sini dengan jumlah diajukan, selesai, dan persentase dalam SLA.",
                "No requests in this period yet. Each kecamatan or kelurahan that receives requests will show here with the numbers filed and finished and the share within the SLA.",
            )))
        } @else {
            table #overview .fit {
                thead { tr {
                    th scope="col" { (t("Kode", "Code")) } th scope="col" { (t("Nama", "Name")) }
                    th.num scope="col" { (t("Diajukan", "Filed")) } th.num scope="col" { (t("Selesai", "Finished")) }
                    th.num scope="col" { (t("Ditolak", "Rejected")) } th.num scope="col" { (t("Dibatalkan", "Cancelled")) }
                    th.num scope="col" { (t("Dalam SLA", "Within SLA")) } th.num scope="col" { (t("SLA %", "SLA %")) }
                    th.num scope="col" { (t("Terbuka", "Open")) } th.num scope="col" { (t("Konflik", "Conflicts")) }
                } }
                tbody {
                    @for g in &groups {
                        tr data-key=(g.key) {
                            td.mono { (g.key) }
                            td { (loket_shared::wilayah::region(&g.key).map_or("", |r| r.name)) }
                            td.num { (g.filed) } td.num { (g.finished) } td.num { (g.rejected) } td.num { (g.cancelled) }
                            td.num { (g.within_sla) } td.num { (pct(g)) } td.num { (g.open) }
                            td.num { @if g.conflicts > 0 { (tag("bad", &g.conflicts.to_string())) } @else { "0" } }
                        }
                    }
                }
                tfoot { tr {
                    td { (t("Jumlah", "Total")) } td { (t("Semua", "All")) }
                    td.num { (total.filed) } td.num { (total.finished) } td.num { (total.rejected) } td.num { (total.cancelled) }
                    td.num { (total.within_sla) } td.num { (pct(&total)) } td.num { (total.open) } td.num { (total.conflicts) }
                } }
            }
        }
        p.hint { (t(
            "SLA kelurahan: waktu kerja pada jam layanan kantor (hari kerja, kecuali hari libur dan cuti bersama bila kantor tutup) dari pengajuan sampai selesai, tanpa waktu menunggu berkas pemohon dan tanpa waktu di instansi, dibanding hari kerja layanan di katalog. Selesai = dikabulkan atau ditolak; yang dibatalkan tidak masuk hitungan SLA.",
            "The kelurahan's SLA: working time in the office's service hours (working days, without holidays and, when offices close, collective leave) from filing to finish, without the time waiting for the citizen's documents and the time at an agency, against the service's working days in the catalog. Finished = completed or rejected; cancelled requests are outside the SLA share.",
        )) }
        h2 { (t("Instansi", "Agencies")) }
        @if agencies.is_empty() {
            (empty_state("agencies-empty", t(
                "Tidak ada permohonan yang selesai melalui instansi pada periode ini. Bila ada, setiap instansi (mis. Disdukcapil) tampil di sini dengan jumlah selesai dan persentase dalam SLA-nya sendiri.",
                "No request finished through an agency in this period. When one does, each agency (e.g. Disdukcapil) shows here with its number finished and its share within its own SLA.",
            )))
        } @else {
            table #agencies .fit {
                thead { tr {
                    th scope="col" { (t("Instansi", "Agency")) } th.num scope="col" { (t("Selesai", "Finished")) }
                    th.num scope="col" { (t("Ber-SLA", "With an SLA")) } th.num scope="col" { (t("Dalam SLA instansi", "Within the agency's SLA")) }
                    th.num scope="col" { (t("SLA %", "SLA %")) } th.num scope="col" { (t("Rata-rata waktu", "Mean time")) }
                } }
                tbody {
                    @for a in &agencies {
                        tr data-agency=(a.agency) {
                            td { (catalog.agency(&a.agency).map_or(a.agency.as_str(), |x| x.name.as_str())) }
                            td.num { (a.finished) } td.num { (a.judged) } td.num { (a.within_sla) }
                            td.num { (a.sla_percent().map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"))) }
                            td.num { (a.mean_ms().map_or_else(|| "—".to_owned(), |ms| duration_text(lang, ms))) }
                        }
                    }
                }
            }
            p.hint { (t(
                "Waktu instansi dihitung dari penyerahan sampai kembali ke kelurahan, pada jam layanan, dibanding SLA instansi di katalog (mis. Disdukcapil: KK 3 hari kerja); tanpa SLA di katalog: diukur, tidak dinilai.",
                "An agency's time runs from the hand-off until it returns the request, in service hours, against its own SLA in the catalog (e.g. Disdukcapil: a family card in 3 working days); without one it is measured, not judged.",
            )) }
        }
    };
    let markup = page.frame(t("Ringkasan Kinerja Pelayanan", "Service Performance Overview"), &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}
