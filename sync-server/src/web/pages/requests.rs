//! Requests: the lists (an agency's work list), a request's page with the
//! actions the workflow allows this user (take, complete, return, reject,
//! resolve), the audited full-NIK view, and the request downloads (masked
//! by link; full by a POST with a reason).

use super::*;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    konflik: Option<String>,
    /// The page cursor (`crate::web::central::parse_cursor`).
    setelah: Option<String>,
}

/// Rows per page of the request lists.
pub(super) const LIST_PAGE: u32 = 100;

pub(super) async fn requests_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Result<Response, PageError> {
    let mut f = crate::ops::reports::RequestFilter { limit: LIST_PAGE, ..Default::default() };
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        f.status =
            Some(s.parse::<Status>().map_err(|e| ApiError::bad_request("invalid_status", e))?.as_str().to_owned());
    }
    if let Some(c) = q.setelah.as_deref().filter(|s| !s.is_empty()) {
        f.after = Some(crate::web::central::parse_cursor(c).map(|(ms, id)| (ms, id.to_string()))?);
    }
    let conflicts = q.konflik.is_some();
    f.conflict = conflicts;
    // An agency's work list: what is with it now.
    let agency_view = web.user.role == Role::Agency && f.status.is_none();
    if agency_view {
        f.with_agency = web.user.agency.clone();
    }
    let status_filter: Option<Status> = f.status.as_deref().and_then(|s| s.parse().ok());
    let mut rows = crate::ops::reports::query_requests(&st.db, &web.user, f).await?;
    let next = (rows.len() > LIST_PAGE as usize).then(|| {
        rows.truncate(LIST_PAGE as usize);
        let mut query = vec![("setelah", rows.last().map(crate::web::central::cursor_of).unwrap_or_default())];
        if let Some(s) = status_filter {
            query.push(("status", s.as_str().to_owned()));
        }
        if conflicts {
            query.push(("konflik", "1".to_owned()));
        }
        format!("/admin/permohonan?{}", serde_urlencoded::to_string(&query).unwrap_or_default())
    });
    let catalog = crate::central::load_catalog(&st.db).await?;
    let this_month = Period::from_query(None, st.config.utc_offset(), false)?;
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let title = if conflicts {
        t("Konflik menunggu keputusan", "Conflicts to review")
    } else if agency_view {
        t("Di instansi Anda", "With your agency")
    } else {
        t("Permohonan", "Requests")
    };
    // For an agency, whether it still waits to be taken or is being worked on.
    let row_status = |status: &str| match status.parse::<Status>() {
        Ok(Status::HandedOff) if agency_view => tag("info", t("Menunggu diambil", "Waiting to be taken")),
        Ok(Status::InProgress) if agency_view => tag("info", t("Dikerjakan", "Being worked on")),
        Ok(s) => status_tag(lang, s),
        Err(_) => html! { "?" },
    };
    let body = html! {
        h1 { (title) }
        p.downloads {
            (t("Unduh bulan ini (data pribadi tersamar)", "Download this month (personal data masked)")) ": "
            a #requests-csv href="/admin/permohonan.csv" { "CSV" } " · " a #requests-xlsx href="/admin/permohonan.xlsx" { "XLSX" }
        }
        @if web.user.role != Role::Supervisor {
            details #full-download {
                summary { (t("Unduh dengan NIK dan nomor HP lengkap", "Download with the full NIK and mobile number")) }
                form method="post" action="/admin/permohonan/unduh-lengkap" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    @if let Some(s) = status_filter { input type="hidden" name="status" value=(s.as_str()); }
                    label for="full-period" { (t("Periode", "Period")) }
                    (period_select(lang, "full-period", this_month, &[this_month.year]))
                    label for="full-format" { (t("Format", "Format")) }
                    select #full-format name="format" { option value="csv" { "CSV" } option value="xlsx" { "XLSX" } }
                    label for="full-reason" { (t("Keperluan (dicatat di log audit untuk tiap permohonan)", "Reason (kept in the audit log for each request)")) }
                    input #full-reason type="text" name="alasan" required minlength="5" maxlength="200" autocomplete="off";
                    button type="submit" #full-download-go { (t("Unduh", "Download")) }
                    p.hint {
                        (t("Paling banyak", "At most")) " " (FULL_EXPORT_ROWS_MAX) " " (t("permohonan.", "requests."))
                    }
                }
            }
        }
        @if !conflicts {
            form.filters method="get" action="/admin/permohonan" {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" selected[status_filter.is_none()] {
                        @if web.user.role == Role::Agency { (t("Di instansi Anda sekarang", "With your agency now")) } @else { (t("Semua", "All")) }
                    }
                    @for s in Status::ALL { option value=(s.as_str()) selected[status_filter == Some(s)] { (status_label(lang, s)) } }
                }
                button.primary type="submit" { (t("Tampilkan", "Show")) }
            }
        }
        @if rows.is_empty() {
            p.empty #empty {
                @if conflicts {
                    (t("Tidak ada konflik yang menunggu. Bila kiosk dan pusat (atau instansi) menetapkan hasil berbeda untuk satu permohonan, permohonan itu muncul di sini untuk diputuskan.",
                       "No conflicts waiting. When a kiosk and the centre (or an agency) set different outcomes for one request, it shows here for a decision."))
                } @else if agency_view {
                    (t("Tidak ada permohonan di instansi Anda sekarang. Permohonan yang diteruskan kelurahan ke instansi Anda muncul di sini untuk diambil dan dikerjakan.",
                       "No requests with your agency now. Requests a kelurahan hands to your agency show here to be taken and worked on."))
                } @else {
                    (t("Tidak ada permohonan untuk pilihan ini. Permohonan yang diajukan warga di kiosk muncul di sini setelah kiosk tersinkron, yang terbaru lebih dulu.",
                       "No requests for this choice. Requests citizens file at a kiosk show here once the kiosk has synced, newest first."))
                }
            }
        } @else {
            table #requests .fit {
                thead { tr {
                    th scope="col" { (t("Tiket", "Ticket")) }
                    th scope="col" { "Kelurahan" }
                    th scope="col" { (t("Layanan", "Service")) }
                    th scope="col" { "Status" }
                    th scope="col" { (t("Diajukan", "Filed")) }
                    th scope="col" { (t("Langkah terakhir", "Last step")) }
                } }
                tbody {
                    @for (id, ticket, kel, _kiosk, service, status, created, updated, conflict) in &rows {
                        tr data-ticket=(ticket) .conflict[*conflict] {
                            td.mono { a href=(format!("/admin/permohonan/{id}")) { (ticket) } }
                            td { (place_name(kel)) }
                            td { (service_name(lang, &catalog, service)) }
                            td {
                                (row_status(status))
                                @if *conflict { " " (tag("bad", t("Konflik", "Conflict"))) }
                            }
                            td.when { (st.human_time(*created)) }
                            td.when { (st.human_time(*updated)) }
                        }
                    }
                }
            }
            @if let Some(href) = &next { p { a #next-page href=(href) { (t("Berikutnya →", "Next →")) } } }
        }
    };
    let markup = page.frame(title, &web.user, body);
    Ok(page.respond(StatusCode::OK, markup))
}

pub(super) async fn request_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let markup = request_markup(&st, &page, &web, &raw, None, None).await?;
    Ok(page.respond(StatusCode::OK, markup))
}

/// One action offered on a request's page.
pub(super) struct Action {
    /// What the form posts (`aksi`): the status, or `take`.
    key: &'static str,
    to: Status,
    /// Set on an agency's take.
    agency: Option<String>,
    /// (Bahasa Indonesia, English).
    label: (&'static str, &'static str),
}

/// The actions this user may take on this request now. The form posts
/// only the key; the server looks it up again here, so nothing beyond what
/// the page offered can be sent.
pub(super) fn actions_for(user: &User, derived: &loket_shared::workflow::Derived) -> Vec<Action> {
    let plain = |to: Status, label: (&'static str, &'static str)| Action { key: to.as_str(), to, agency: None, label };
    // Back to the kelurahan from an agency.
    let give_back = || Action {
        key: "return",
        to: Status::InProgress,
        agency: None,
        label: ("Kembalikan ke kelurahan", "Return to the kelurahan"),
    };
    if derived.has_conflict() {
        if user.role != Role::Admin {
            return Vec::new();
        }
        // Resolving: the final status is one of the sides'.
        let mut sides: Vec<Status> = derived.conflict.iter().map(|c| c.to).collect();
        sides.sort_by_key(|s| s.as_str());
        sides.dedup();
        return sides.into_iter().map(|s| plain(s, ("Tetapkan", "Decide"))).collect();
    }
    match user.role {
        Role::Supervisor => Vec::new(),
        Role::Agency if derived.agency.is_some() && derived.agency == user.agency => {
            let mut actions = Vec::new();
            if derived.status == Status::HandedOff {
                actions.push(Action {
                    key: "take",
                    to: Status::InProgress,
                    agency: user.agency.clone(),
                    label: ("Ambil untuk dikerjakan", "Take it"),
                });
            }
            match derived.waiting.last() {
                // Forwarded to this agency: back up the chain first.
                Some(top) => actions.push(Action {
                    key: "return",
                    to: Status::InProgress,
                    agency: Some(top.clone()),
                    label: ("Kembalikan ke instansi yang meneruskan", "Return to the agency that forwarded it"),
                }),
                None => {
                    actions.push(plain(Status::Completed, ("Selesaikan", "Complete")));
                    actions.push(give_back());
                    actions.push(plain(Status::Rejected, ("Tolak", "Reject")));
                }
            }
            if derived.taken_by_agency() {
                // To another agency; which one is chosen on the form and
                // checked by the rule book (not one already in the chain).
                actions.push(Action {
                    key: "forward",
                    to: Status::HandedOff,
                    agency: None,
                    label: ("Teruskan ke instansi lain", "Forward to another agency"),
                });
            }
            actions
        }
        Role::Agency => Vec::new(),
        Role::Admin => {
            let mut actions: Vec<Action> = derived
                .status
                .allowed_next()
                .iter()
                .filter(|s| **s != Status::HandedOff)
                .map(|s| plain(*s, (status_label(Lang::Id, *s), status_label(Lang::En, *s))))
                .collect();
            if derived.taken_by_agency() {
                actions.push(give_back());
            }
            actions
        }
    }
}

pub(super) async fn request_markup(
    st: &AppState,
    page: &Page,
    web: &WebUser,
    raw: &str,
    message: Option<(&str, bool)>,
    revealed: Option<&crate::central::Personal>,
) -> Result<Markup, PageError> {
    let (view, derived, _heads) = crate::central::load_visible(&st.db, &web.user, raw).await?;
    let catalog = crate::central::load_catalog(&st.db).await?;
    let authors = crate::central::authors(&st.db, view.kelurahan.clone()).await?;
    let actions = actions_for(&web.user, &derived);
    // Each agency by the unit that serves the request's kelurahan.
    let agency_name =
        |code: &str| catalog.agency(code).map_or(code.to_owned(), |a| a.unit_name(view.kelurahan.as_str()));
    let times = crate::ops::reports::service_times(&st.db, view.id.to_string()).await?.unwrap_or_default();
    let sla_days = catalog.service(view.service.as_str()).map(|s| i64::from(s.sla_days));
    let lang = page.lang();
    let t = |id: &'static str, en: &'static str| lang.t(id, en);
    let verdict = |ms: i64, sla: Option<i64>| -> Markup {
        html! {
            (duration_text(lang, ms)) " "
            @match sla {
                Some(d) if ms <= d * loket_shared::sla::DAY_MS => {
                    (tag("ok", &format!("{} {d} {}", t("dalam SLA", "within its SLA of"), t("hari", "days"))))
                }
                Some(d) => (tag("bad", &format!("{} {d} {}", t("melewati SLA", "over its SLA of"), t("hari", "days")))),
                None => (tag("muted", t("tanpa SLA di katalog", "no SLA in the catalog"))),
            }
        }
    };
    let body = html! {
        p { a href="/admin/permohonan" { "← " (t("Permohonan", "Requests")) } }
        h1 { (t("Tiket", "Ticket")) " " span #ticket .mono { (view.ticket.as_str()) } }
        @if let Some((text, ok)) = message {
            p.alert.ok[ok] #message role=(if ok { "status" } else { "alert" }) { (lang.pick(text)) }
        }
        dl.facts {
            dt { "Status" }
            dd #status data-status=(derived.status.as_str()) data-conflict=(derived.has_conflict()) {
                @if derived.has_conflict() { (tag("bad", t("Konflik — menunggu keputusan", "Conflict — awaiting a decision"))) }
                @else if let (true, Some(a)) = (derived.taken_by_agency(), &derived.agency) {
                    (tag("info", &format!("{} {}", t("Dikerjakan oleh", "Being worked on by"), agency_name(a))))
                }
                @else { (status_tag(lang, derived.status)) }
            }
            dt { "Kelurahan" } dd { (place_name(view.kelurahan.as_str())) }
            dt { (t("Layanan", "Service")) } dd { (service_name(lang, &catalog, view.service.as_str())) }
            dt { (t("Pemohon", "Applicant")) } dd { (view.applicant.name.as_str()) }
            @match revealed {
                Some(p) => {
                    dt { "NIK" } dd.mono #nik-full { (p.nik) }
                    dt { (t("Nomor HP", "Mobile number")) } dd.mono #phone-full { (p.phone.as_deref().unwrap_or("—")) }
                }
                None => {
                    dt { "NIK" } dd.mono #nik { (view.applicant.nik.masked()) }
                }
            }
            dt { (t("Diajukan", "Filed")) } dd { (st.human_time(view.created_at_ms)) }
            @if let Some(a) = &derived.agency { dt { (t("Instansi", "Agency")) } dd #agency data-agency=(a) { (agency_name(a)) } }
            @if !derived.waiting.is_empty() {
                // The chain it goes back up, the next first.
                dt { (t("Menunggu kembali di", "Goes back to")) }
                dd #waiting { @for (i, w) in derived.waiting.iter().rev().enumerate() { @if i > 0 { " → " } (agency_name(w)) } " → " (t("kelurahan", "the kelurahan")) }
            }
            @for (by, reference) in &derived.results {
                dt { (t("Hasil ", "Result of ")) (agency_name(by)) }
                dd.mono.result data-agency=(by) { (reference) }
            }
            @if let Some(at) = times.complete_at_ms {
                dt { (t("Berkas lengkap", "File complete")) } dd #complete-at { (st.human_time(at)) }
            }
            @if let Some(at) = times.finished_at_ms {
                dt { (t("Selesai", "Finished")) } dd { (st.human_time(at)) }
            }
            @if let Some(at) = times.cancelled_at_ms {
                dt { (t("Dibatalkan", "Cancelled")) } dd { (st.human_time(at)) }
            }
            @if let Some(ms) = times.kelurahan_ms {
                dt { (t("Waktu kelurahan", "The kelurahan's time")) } dd #time-kelurahan { (verdict(ms, sla_days)) }
            }
            @for (a, ms, sla) in &times.agencies {
                dt { (t("Waktu ", "Time at ")) (agency_name(a)) }
                dd.time-agency data-agency=(a) { (verdict(*ms, *sla)) }
            }
            @if let Some(ms) = times.citizen_ms.filter(|ms| *ms > 0) {
                dt { (t("Menunggu berkas pemohon", "Waiting for the citizen")) }
                dd #time-citizen { (duration_text(lang, ms)) " (" (t("jam SLA berhenti", "the SLA clock paused")) ")" }
            }
        }
        @if derived.has_conflict() {
            section #conflict .conflict-box {
                h2 { (t("Apa yang dilakukan tiap pihak", "What each side did")) }
                table {
                    thead { tr {
                        th scope="col" { (t("Oleh", "By")) } th scope="col" { (t("Menjadi", "To")) }
                        th scope="col" { (t("Waktu", "When")) } th scope="col" { (t("Catatan", "Note")) }
                    } }
                    tbody {
                        @for c in &derived.conflict {
                            tr {
                                td { (who(lang, &authors, &c.by, &c.node)) }
                                td { (status_tag(lang, c.to)) @if let Some(a) = &c.agency { " → " (agency_name(a)) } }
                                td.when { (st.human_time(c.at_ms)) }
                                td.note { @if let Some(n) = &c.note { (n) } }
                            }
                        }
                    }
                }
            }
        }
        @if !actions.is_empty() {
            section #actions {
                h2 { @if derived.has_conflict() { (t("Selesaikan konflik", "Resolve the conflict")) } @else { (t("Tindakan", "Actions")) } }
                @for a in &actions {
                    form.action method="post" action=(format!("/admin/permohonan/{}", view.id)) data-action=(a.key) {
                        input type="hidden" name="csrf" value=(page.csrf);
                        input type="hidden" name="aksi" value=(a.key);
                        @if a.key == "forward" {
                            label { (t("Ke instansi", "To agency"))
                                select name="instansi" required {
                                    option value="" { (t("— pilih —", "— choose —")) }
                                    @for ag in catalog.agencies.iter().filter(|g| Some(g.code.as_str()) != web.user.agency.as_deref() && !derived.waiting.iter().any(|w| w == g.code.as_str())) {
                                        option value=(ag.code.as_str()) { (agency_name(ag.code.as_str())) }
                                    }
                                }
                            }
                        }
                        @if web.user.role == Role::Agency && (a.key == "completed" || a.key == "return") {
                            label { (t("Nomor hasil (mis. nomor KK baru, nomor surat), bila ada", "Result reference (e.g. the new KK number, a letter number), if any"))
                                input type="text" name="nomor_hasil" maxlength="64" autocomplete="off";
                            }
                        }
                        label {
                            @if matches!(a.key, "forward" | "rejected") { (t("Alasan (dibaca pemohon di kiosk; tanpa data pribadi)", "Reason (the citizen reads it at the kiosk; no personal data)")) }
                            @else { (t("Catatan", "Note")) }
                            textarea name="note" rows="2" maxlength="1000" required[matches!(a.key, "forward" | "rejected")] {}
                        }
                        button.primary type="submit" {
                            (lang.t(a.label.0, a.label.1)) @if derived.has_conflict() { ": " (status_label(lang, a.to)) }
                        }
                    }
                }
            }
        }
        @if revealed.is_some() {
            p.alert #revealed role="status" {
                (t("Data lengkap ini tercatat di log audit atas nama Anda. Jangan disalin ke tempat lain.",
                   "This full view is in the audit log under your name. Do not copy it elsewhere."))
            }
        } @else if web.user.role != Role::Supervisor {
            details #personal {
                summary { (t("Tampilkan NIK dan nomor HP lengkap", "Show the full NIK and mobile number")) }
                form method="post" action=(format!("/admin/permohonan/{}/data-pribadi", view.id)) {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="reason" { (t("Keperluan (dicatat di log audit)", "Reason (kept in the audit log)")) }
                    input #reason type="text" name="alasan" required minlength="5" maxlength="200" autocomplete="off";
                    button type="submit" #reveal { (t("Tampilkan", "Show")) }
                }
            }
        }
        h2 { (t("Riwayat", "History")) }
        ol #history {
            @for e in &derived.ordered {
                li {
                    span.when { (st.human_time(e.at_ms)) } " · " (who(lang, &authors, &e.by, &e.node)) " · "
                    @if let Some(f) = e.from { (status_label(lang, f)) " → " }
                    (status_label(lang, e.to))
                    @if let Some(a) = &e.agency { " (" (agency_name(a)) ")" }
                    @if let Some(n) = &e.note { p.note { (n) } }
                }
            }
        }
    };
    Ok(page.frame(&format!("{} {}", t("Tiket", "Ticket"), view.ticket.as_str()), &web.user, body))
}

#[derive(Deserialize)]
pub(super) struct ActionForm {
    csrf: Option<String>,
    /// An [`Action`] key.
    aksi: Option<String>,
    note: Option<String>,
    /// The agency a forward goes to.
    instansi: Option<String>,
    /// An agency's result reference on completion or return (a new KK
    /// number, a letter number); blank is none.
    nomor_hasil: Option<String>,
}

pub(super) async fn request_action(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
    PageForm(form): PageForm<ActionForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    // Only what the page offered: the same rules the API applies, plus
    // no hand-offs from here (they need an agency choice).
    let (_, derived, _) = crate::central::load_visible(&st.db, &web.user, &raw).await?;
    let action = actions_for(&web.user, &derived).into_iter().find(|a| Some(a.key) == form.aksi.as_deref());
    let result = match action {
        Some(a) => crate::central::append_central_event(
            &st.db,
            &st.writer,
            &web.user,
            &raw,
            crate::central::EventInput {
                to: Some(a.to.as_str().to_owned()),
                note: form.note.clone(),
                agency: if a.key == "forward" {
                    form.instansi.clone().filter(|s| !s.trim().is_empty())
                } else {
                    a.agency
                },
                result_ref: form.nomor_hasil.clone().filter(|s| !s.trim().is_empty()),
            },
        )
        .await
        .map_err(ApiError::from),
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "forbidden_transition",
            "tindakan ini tidak tersedia sekarang / this action is not available now",
        )),
    };
    request_outcome(&st, page, &web, &raw, result.map(|_| None)).await
}

/// The request page again after a form on it: with "saved" (and the full
/// personal data, when that was asked for), or with the refusal at the top
/// and its status. Not found and server errors are error pages.
async fn request_outcome(
    st: &AppState,
    page: Page,
    web: &WebUser,
    raw: &str,
    result: Result<Option<crate::central::Personal>, ApiError>,
) -> Result<Response, PageError> {
    match result {
        Ok(revealed) => {
            let saved = revealed.is_none().then_some(("Tersimpan / Saved", true));
            let markup = request_markup(st, &page, web, raw, saved, revealed.as_ref()).await?;
            Ok(page.respond(StatusCode::OK, markup))
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let markup = request_markup(st, &page, web, raw, Some((&e.message, false)), None).await?;
            Ok(page.respond(e.status, markup))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct RevealForm {
    csrf: Option<String>,
    alasan: Option<String>,
}

/// The request page with the applicant's full NIK and mobile number, for
/// roles that may see them, after the view is in the audit log.
pub(super) async fn reveal_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
    PageForm(form): PageForm<RevealForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    let revealed =
        crate::central::reveal_personal(&st.db, &web.user, &raw, form.alasan.as_deref().unwrap_or_default()).await;
    request_outcome(&st, page, &web, &raw, revealed.map(Some).map_err(ApiError::from)).await
}

/// Most rows one requests export holds (newest first); a larger period is
/// exported month by month.
pub(super) const EXPORT_ROWS_MAX: u32 = 100_000;

#[derive(Deserialize)]
pub(super) struct RequestsExportQuery {
    periode: Option<String>,
    status: Option<String>,
}

/// Requests filed in a period, within the user's scope, personal data
/// masked (a GET link any role may follow).
pub(super) async fn requests_export(
    State(st): State<AppState>,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<RequestsExportQuery>,
    format: Export,
) -> Result<Response, PageError> {
    requests_table(&st, &web.user, &q, None).await?.respond(format)
}

/// Most rows a download with full personal data holds: it is for a work
/// list, not for copying the register.
pub(super) const FULL_EXPORT_ROWS_MAX: u32 = 2_000;

#[derive(Deserialize)]
pub(super) struct FullExportForm {
    csrf: Option<String>,
    alasan: Option<String>,
    periode: Option<String>,
    status: Option<String>,
    format: Option<String>,
}

/// The same rows with the applicants' full NIK and mobile number, for
/// roles that may see them: a POST (CSRF; the reason stays out of URLs and
/// logs), one audit row per request before anything is sent.
pub(super) async fn requests_export_full(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    PageForm(form): PageForm<FullExportForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    let format = match form.format.as_deref() {
        Some("xlsx") => Export::Xlsx,
        Some("csv") | None => Export::Csv,
        Some(_) => return Err(ApiError::bad_request("invalid_format", "format: csv atau xlsx / csv or xlsx").into()),
    };
    crate::central::check_personal_role(&web.user)?;
    let reason = crate::central::check_reason(form.alasan.as_deref().unwrap_or_default())?;
    let q = RequestsExportQuery { periode: form.periode, status: form.status };
    requests_table(&st, &web.user, &q, Some(&reason)).await?.respond(format)
}

/// The requests table of an export; with `full_reason`, the full personal
/// data of every row, audited under that reason.
pub(super) async fn requests_table(
    st: &AppState,
    user: &User,
    q: &RequestsExportQuery,
    full_reason: Option<&str>,
) -> Result<Table, PageError> {
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, false)?;
    let status: Option<Status> = match q.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse().map_err(|e| ApiError::bad_request("invalid_status", e))?),
    };
    let (from, to) = period.range_ms(offset);
    let limit = if full_reason.is_some() { FULL_EXPORT_ROWS_MAX + 1 } else { EXPORT_ROWS_MAX };
    let rows = crate::ops::reports::export_rows(&st.db, user, from, to, status, limit).await?;
    let mut personal = std::collections::HashMap::new();
    if let Some(reason) = full_reason {
        if rows.len() > FULL_EXPORT_ROWS_MAX as usize {
            return Err(ApiError::unprocessable(
                "too_many_rows",
                format!(
                    "lebih dari {FULL_EXPORT_ROWS_MAX} permohonan: pilih periode atau status yang lebih sempit / \
                     more than {FULL_EXPORT_ROWS_MAX} requests: choose a narrower period or status"
                ),
            )
            .into());
        }
        let ids = rows.iter().map(|r| r.doc_id.clone()).collect();
        personal = crate::central::reveal_personal_many(&st.db, user, ids, reason).await?;
    }
    let catalog = crate::central::load_catalog(&st.db).await?;
    let mut header = [
        "tiket",
        "kelurahan",
        "nama_kelurahan",
        "kecamatan",
        "layanan",
        "status",
        "konflik",
        "instansi",
        "diajukan",
        "selesai",
        "hari_kerja",
        "dalam_sla",
        "nama_pemohon",
        "nik",
    ]
    .map(String::from)
    .to_vec();
    // Times are local: the zone is in the column name (`diajukan_wib`).
    let zone = st.zone_name().to_lowercase();
    for h in header.iter_mut().filter(|h| *h == "diajukan" || *h == "selesai") {
        *h = format!("{h}_{zone}");
    }
    if full_reason.is_some() {
        header.push("telepon".into());
    }
    let rows = rows
        .into_iter()
        .map(|r| {
            let sla = catalog.service(&r.service).map(|s| i64::from(s.sla_days) * 86_400_000);
            let full = personal.get(&r.doc_id);
            let mut row = vec![
                Cell::Text(r.ticket),
                Cell::Text(r.kelurahan.clone()),
                Cell::Text(loket_shared::wilayah::region(&r.kelurahan).map_or(String::new(), |x| x.name.to_owned())),
                Cell::Text(r.kecamatan),
                Cell::Text(catalog.service(&r.service).map_or(r.service.clone(), |s| s.name_id.clone())),
                Cell::Text(r.status),
                Cell::Text(if r.conflict { "ya".into() } else { String::new() }),
                Cell::Text(r.agency.unwrap_or_default()),
                Cell::Time(st.local_datetime(r.created_at_ms)),
                r.finished_at_ms.map_or(Cell::Empty, |f| Cell::Time(st.local_datetime(f))),
                r.working_ms.map_or(Cell::Empty, |w| Cell::Fixed(w as f64 / 86_400_000.0, 2)),
                match (r.working_ms, sla) {
                    (Some(w), Some(s)) => Cell::Text(if w <= s { "ya".into() } else { "tidak".into() }),
                    _ => Cell::Empty,
                },
            ];
            match (full_reason, full) {
                (Some(_), Some(p)) => {
                    row.push(Cell::Text(p.name.clone()));
                    row.push(Cell::Text(p.nik.clone()));
                    row.push(Cell::Text(p.phone.clone().unwrap_or_default()));
                }
                _ => {
                    row.push(Cell::Text(r.name_masked.unwrap_or_default()));
                    row.push(Cell::Text(r.nik_masked.unwrap_or_default()));
                    if full_reason.is_some() {
                        row.push(Cell::Empty);
                    }
                }
            }
            row
        })
        .collect();
    let name = if full_reason.is_some() { "permohonan-lengkap" } else { "permohonan" };
    Ok(Table { name: format!("{name}-{}", period.code()), header, rows })
}
