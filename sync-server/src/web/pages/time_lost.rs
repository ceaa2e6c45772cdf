//! Where time is lost: working time per service and status, at the
//! agencies, the slowest kelurahan, and the SLA breaches with their longest
//! step (page and download).

use super::*;

/// SLA breaches of a period for download (an auditor's spreadsheet).
pub(super) async fn breaches_export(
    State(st): State<AppState>,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<TimeQuery>,
    format: Export,
) -> Result<Response, PageError> {
    let (period, report, catalog) = time_report(&st, &web.user, &q, None).await?;
    let breaches = report.breaches;
    let header = [
        "tiket",
        "kelurahan",
        "nama_kelurahan",
        "layanan",
        "hari_kerja",
        "sla_hari_kerja",
        "langkah_terlama",
        "instansi",
        "hari_kerja_langkah_terlama",
    ]
    .map(String::from)
    .to_vec();
    let rows = breaches
        .iter()
        .map(|b| {
            vec![
                Cell::Text(b.ticket.clone()),
                Cell::Text(b.kelurahan.clone()),
                Cell::Text(loket_shared::wilayah::region(&b.kelurahan).map_or(String::new(), |r| r.name.to_owned())),
                Cell::Text(catalog.service(&b.service).map_or(b.service.clone(), |s| s.name_id.clone())),
                Cell::Fixed(b.working_ms as f64 / 86_400_000.0, 2),
                Cell::Fixed(b.sla_ms as f64 / 86_400_000.0, 0),
                Cell::Text(b.longest.0.as_str().to_owned()),
                Cell::Text(b.longest.1.clone().unwrap_or_default()),
                Cell::Fixed(b.longest.2 as f64 / 86_400_000.0, 2),
            ]
        })
        .collect();
    Table { name: format!("sla-{}", period.code()), header, rows }.respond(format)
}

pub(super) struct Breach {
    ticket: String,
    doc_id: String,
    kelurahan: String,
    service: String,
    working_ms: i64,
    sla_ms: i64,
    longest: (Status, Option<String>, i64),
}

/// Working ms per step by (service or agency, status). Nested, so that a
/// lookup by `&str` finds its vector without allocating a key.
/// Each leaf is a distribution: `(ms, how many)` runs, sorted by
/// [`TimeLost::finish`] (exact from journeys, or histogram buckets).
pub(super) type Steps = BTreeMap<String, BTreeMap<&'static str, Vec<(i64, u64)>>>;

pub(super) fn push_step(map: &mut Steps, outer: &str, status: &'static str, ms: i64, n: u64) {
    if !map.contains_key(outer) {
        map.insert(outer.to_owned(), BTreeMap::new());
    }
    map.get_mut(outer).expect("inserted above").entry(status).or_default().push((ms, n));
}

/// How many, the median and the 90th percentile (nearest rank) of a sorted
/// distribution of `(ms, how many)` runs.
pub(super) fn count_median_p90(sorted: &[(i64, u64)]) -> (u64, i64, i64) {
    let total: u64 = sorted.iter().map(|r| r.1).sum();
    if total == 0 {
        return (0, 0, 0);
    }
    let rank = |p: f64| {
        let want = ((p * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (ms, n) in sorted {
            seen += n;
            if seen >= want {
                return *ms;
            }
        }
        sorted.last().map_or(0, |r| r.0)
    };
    (total, rank(0.5), rank(0.9))
}

/// SLA breaches listed on the page (all of them in the download).
pub(super) const BREACHES_SHOWN: usize = 100;

/// Where time went in a period, over every request finished in it.
#[derive(Default)]
pub(super) struct TimeLost {
    finished: usize,
    /// Working ms per step, by (service, status).
    by_step: Steps,
    /// At an agency: waiting to be taken (`handed_off`) and being worked on
    /// (`in_progress` after its take), apart, so a slow agency shows which.
    by_agency: Steps,
    /// Whole journeys by kelurahan.
    by_kelurahan: BTreeMap<String, Vec<(i64, u64)>>,
    /// How many finished later than their service's SLA.
    breach_count: usize,
    /// Those, the largest overrun first (on the page, the first 100).
    breaches: Vec<Breach>,
}

impl TimeLost {
    /// Sorts every distribution and the breaches, keeping `breaches_max`.
    fn finish(mut self, breaches_max: Option<usize>) -> TimeLost {
        let steps = self.by_step.values_mut().chain(self.by_agency.values_mut()).flat_map(|m| m.values_mut());
        for v in steps.chain(self.by_kelurahan.values_mut()) {
            v.sort_unstable();
        }
        self.breaches.sort_by(|a, b| (b.working_ms - b.sla_ms, &a.doc_id).cmp(&(a.working_ms - a.sla_ms, &b.doc_id)));
        self.breach_count = self.breach_count.max(self.breaches.len());
        if let Some(n) = breaches_max {
            self.breaches.truncate(n);
        }
        self
    }
}

pub(super) async fn time_report(
    st: &AppState,
    user: &User,
    q: &TimeQuery,
    breaches_max: Option<usize>,
) -> Result<(Period, TimeLost, loket_shared::reference::Catalog), PageError> {
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, false)?;
    let (from, to) = period.range_ms(offset);
    let catalog = crate::central::load_catalog(&st.db).await?;
    let sla: BTreeMap<String, i64> =
        catalog.services.iter().map(|s| (s.code.to_string(), i64::from(s.sla_days) * 86_400_000)).collect();
    if crate::ops::reports::city_wide(user) {
        // The whole city: the step histograms, the journeys' working times
        // and the breaches from the projections; no journey is rebuilt.
        let raw = crate::ops::reports::time_lost_city(&st.db, period.months(), (from, to), breaches_max).await?;
        let mut t = TimeLost { finished: raw.finished, breach_count: raw.breach_count, ..TimeLost::default() };
        for (service, status, agency, ms, n) in raw.steps {
            let Some(status) = status.parse::<Status>().ok().map(Status::as_str) else { continue };
            push_step(&mut t.by_step, &service, status, ms, n);
            if !agency.is_empty() {
                push_step(&mut t.by_agency, &agency, status, ms, n);
            }
        }
        t.by_kelurahan = raw.journeys;
        t.breaches = raw
            .breaches
            .into_iter()
            .map(|b| Breach {
                ticket: b.ticket,
                doc_id: b.doc_id,
                kelurahan: b.kelurahan,
                service: b.service,
                working_ms: b.working_ms,
                sla_ms: b.sla_ms,
                longest: b.longest,
            })
            .collect();
        return Ok((period, t.finish(breaches_max), catalog));
    }
    let report = crate::ops::reports::fold_journeys(&st.db, user, (from, to), TimeLost::default(), move |t, j| {
        t.finished += 1;
        for (status, agency, ms) in &j.steps {
            push_step(&mut t.by_step, &j.service, status.as_str(), *ms, 1);
            if let Some(a) = agency {
                push_step(&mut t.by_agency, a, status.as_str(), *ms, 1);
            }
        }
        match t.by_kelurahan.get_mut(&j.kelurahan) {
            Some(v) => v.push((j.working_ms, 1)),
            None => {
                t.by_kelurahan.insert(j.kelurahan.clone(), vec![(j.working_ms, 1)]);
            }
        }
        if let Some(&sla_ms) = sla.get(&j.service)
            && j.working_ms > sla_ms
        {
            t.breaches.push(Breach {
                ticket: j.ticket.clone(),
                doc_id: j.doc_id.clone(),
                kelurahan: j.kelurahan.clone(),
                service: j.service.clone(),
                working_ms: j.working_ms,
                sla_ms,
                longest: j.steps.iter().max_by_key(|s| s.2).cloned().unwrap_or((Status::Submitted, None, 0)),
            });
        }
    })
    .await?;
    Ok((period, report.finish(breaches_max), catalog))
}

pub(super) async fn time_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<TimeQuery>,
) -> Result<Response, PageError> {
    let (period, report, catalog) = time_report(&st, &web.user, &q, Some(BREACHES_SHOWN)).await?;
    // Each agency against its own SLA: a forwarded request credits every
    // agency of the chain with its own stretches only.
    let own_sla = crate::ops::reports::agency_groups(&st.db, &web.user, period.months()).await?;
    let TimeLost { finished, by_step, by_agency, by_kelurahan, breach_count, breaches } = report;
    let mut slowest: Vec<(String, u64, i64, i64)> = by_kelurahan
        .iter()
        .map(|(k, v)| {
            let (n, m, p) = count_median_p90(v);
            (k.clone(), n, m, p)
        })
        .collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.2));
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let service_name = |code: &str| service_name(lang, &catalog, code);
    let agency_name = |code: &str| catalog.agency(code).map_or(code.to_owned(), |a| a.name.clone());
    let days = |ms: i64| duration_text(lang, ms);
    let body = html! {
        h1 { (t("Di mana waktu habis", "Where time is lost")) }
        form.filters method="get" action="/admin/waktu" {
            label for="periode" { (t("Periode", "Period")) }
            (period_select(lang, "periode", period, &report_years(period)))
            button.primary type="submit" { (t("Tampilkan", "Show")) }
        }
        p #finished-count {
            strong { (finished) } " " (t("permohonan selesai pada", "requests finished in")) " " (period.label_in(lang)) ". "
            (t(
                "Waktu kerja pada jam layanan (hari kerja, tanpa hari libur) per status; median dan p90; menunggu pemohon dicatat terpisah, bukan waktu kantor.",
                "Working time in service hours (working days, without holidays) per status; median and p90; waiting for the citizen is shown apart and is not the office's time.",
            ))
        }
        h2 { (t("Per layanan dan status", "By service and status")) }
        @if by_step.is_empty() {
            (empty_state("by-step-empty", t(
                "Belum ada permohonan yang selesai pada periode ini. Setelah ada, setiap layanan tampil di sini dengan lama tiap status (median dan p90).",
                "No request finished in this period yet. Once some do, each service shows here with the time spent in each status (median and p90).",
            )))
        } @else {
            table #by-step .fit {
                thead { tr {
                    th scope="col" { (t("Layanan", "Service")) } th scope="col" { "Status" } th.num scope="col" { (t("Jumlah", "Count")) }
                    th.num scope="col" { "Median" } th.num scope="col" { "p90" }
                } }
                tbody {
                    @for (service, status, v) in by_step.iter().flat_map(|(o, m)| m.iter().map(move |(s, v)| (o, s, v))) {
                        @let (n, m, p) = count_median_p90(v);
                        tr data-service=(service) data-status=(status) {
                            td { (service_name(service)) }
                            td { @match status.parse::<Status>() { Ok(s) => (status_tag(lang, s)), Err(_) => (status) } }
                            td.num { (n) } td.num { (days(m)) } td.num { (days(p)) }
                        }
                    }
                }
            }
        }
        h2 { (t("Di instansi", "At the agencies")) }
        @if by_agency.is_empty() {
            (empty_state("by-agency-empty", t(
                "Tidak ada permohonan selesai yang melewati instansi pada periode ini. Bila ada, setiap instansi tampil dengan lama menunggu diambil dan lama dikerjakan.",
                "No finished request went through an agency in this period. When one does, each agency shows how long requests waited to be taken and how long they were worked on.",
            )))
        } @else {
            table #by-agency .fit {
                thead { tr {
                    th scope="col" { (t("Instansi", "Agency")) } th scope="col" { (t("Tahap", "Step")) } th.num scope="col" { (t("Jumlah", "Count")) }
                    th.num scope="col" { "Median" } th.num scope="col" { "p90" }
                } }
                tbody {
                    @for (agency, status, v) in by_agency.iter().flat_map(|(o, m)| m.iter().map(move |(s, v)| (o, s, v))) {
                        @let (n, m, p) = count_median_p90(v);
                        tr data-agency=(agency) data-status=(status) {
                            td { (agency_name(agency)) }
                            td { @if *status == "handed_off" { (t("Menunggu diambil", "Waiting to be taken")) } @else { (t("Dikerjakan", "Being worked on")) } }
                            td.num { (n) } td.num { (days(m)) } td.num { (days(p)) }
                        }
                    }
                }
            }
        }
        @if !own_sla.is_empty() {
            h3 { (t("Tiap instansi terhadap SLA-nya sendiri", "Each agency against its own SLA")) }
            table #agency-sla .fit {
                thead { tr {
                    th scope="col" { (t("Instansi", "Agency")) } th.num scope="col" { (t("Selesai", "Finished")) }
                    th.num scope="col" { (t("Dalam SLA instansi", "Within the agency's SLA")) } th.num scope="col" { "SLA %" }
                    th.num scope="col" { (t("Rata-rata waktu di instansi", "Mean time at the agency")) }
                } }
                tbody {
                    @for a in &own_sla {
                        tr data-agency=(a.agency) {
                            td { (agency_name(&a.agency)) }
                            td.num { (a.finished) }
                            td.num { @if a.judged > 0 { (a.within_sla) " / " (a.judged) } @else { "—" } }
                            td.num { (a.sla_percent().map_or_else(|| "—".to_owned(), |p| format!("{p:.1}%"))) }
                            td.num { (a.mean_ms().map_or_else(|| "—".to_owned(), &days)) }
                        }
                    }
                }
            }
            p.hint { (t(
                "Permohonan yang diteruskan antarinstansi dihitung per instansi: setiap instansi hanya untuk waktu permohonan berada padanya, dibanding SLA instansi itu di katalog.",
                "A request forwarded between agencies counts for each agency only the time it held the request, against that agency's own SLA in the catalog.",
            )) }
        }
        h2 { (t("Kelurahan paling lambat", "Slowest kelurahan")) }
        @if slowest.is_empty() {
            (empty_state("slowest-empty", t(
                "Belum ada permohonan selesai. Sepuluh kelurahan dengan median waktu kerja terlama akan tampil di sini.",
                "No finished requests yet. The ten kelurahan with the longest median working time will show here.",
            )))
        } @else {
            table #slowest .fit {
                thead { tr {
                    th scope="col" { "Kelurahan" } th.num scope="col" { (t("Selesai", "Finished")) } th.num scope="col" { "Median" } th.num scope="col" { "p90" }
                } }
                tbody {
                    @for (kel, n, m, p) in slowest.iter().take(10) {
                        tr data-key=(kel) { td { (place_name(kel)) } td.num { (n) } td.num { (days(*m)) } td.num { (days(*p)) } }
                    }
                }
            }
        }
        h2 #breaches-title { (t("Melewati SLA", "SLA breaches")) " (" (breach_count) ")" }
        p {
            (t("Unduh", "Download")) ": "
            a #breaches-csv href=(format!("/admin/waktu/pelanggaran.csv?periode={}", period.code())) { "CSV" } " · "
            a #breaches-xlsx href=(format!("/admin/waktu/pelanggaran.xlsx?periode={}", period.code())) { "XLSX" }
        }
        @if breaches.is_empty() {
            (empty_state("breaches-empty", t(
                "Tidak ada permohonan yang melewati SLA pada periode ini. Yang melewatinya tampil di sini, yang paling lama lebih dulu, dengan langkah terlamanya.",
                "No request went over its SLA in this period. Those that do show here, the longest first, with their longest step.",
            )))
        } @else {
            table #breaches .fit {
                thead { tr {
                    th scope="col" { (t("Tiket", "Ticket")) } th scope="col" { "Kelurahan" } th scope="col" { (t("Layanan", "Service")) }
                    th.num scope="col" { (t("Waktu kerja", "Working time")) } th.num scope="col" { "SLA" } th scope="col" { (t("Langkah terlama", "Longest step")) }
                } }
                tbody {
                    @for b in &breaches {
                        tr data-ticket=(b.ticket) {
                            td.mono { a href=(format!("/admin/permohonan/{}", b.doc_id)) { (b.ticket) } }
                            td { (place_name(&b.kelurahan)) } td { (service_name(&b.service)) }
                            td.num { (days(b.working_ms)) } td.num { (days(b.sla_ms)) }
                            td.longest {
                                (status_label(lang, b.longest.0))
                                @if let Some(a) = &b.longest.1 { " (" (agency_name(a)) ")" }
                                ": " (days(b.longest.2))
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = page.frame(t("Waktu Penyelesaian Layanan", "Service Completion Time"), &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}
