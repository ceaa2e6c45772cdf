//! The staff console: login against the synced roster (works offline),
//! the office queue, a request's history and the workflow actions, and a
//! sync indicator on every page ("offline since 10:42 — 17 changes
//! waiting").

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::Cookie;
use loket_node::{now_ms, token};
use loket_shared::reference::{Agency, Catalog, Service};
use loket_shared::request::NOTE_MAX_CHARS;
use loket_shared::sla::Calendar;
use loket_shared::{Code, DocId, Status};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::{
    ClientAddr, Ctx, Lang, UiError, UiForm, blocking, csrf_field, layout, local_clock, local_time, status_label,
};
use crate::store::{EventInput, QueueFilter, QueueItem, StaffRecord};
use crate::web::{AppState, free_text, idem_for_key};

const SESSION_COOKIE: &str = "loket_staff";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staf", get(queue))
        .route("/staf/masuk", get(login_page).post(login_post))
        .route("/staf/keluar", post(logout))
        .route("/staf/sinkron", post(sync_now))
        .route("/staf/permohonan/{id}", get(detail).post(action))
}

/// A staff member proven by the session cookie; without one, pages
/// redirect to the login.
pub struct StaffSession {
    pub staff: StaffRecord,
    token_hash: String,
}

impl FromRequestParts<AppState> for StaffSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<StaffSession, Response> {
        let jar = axum_extra::extract::cookie::CookieJar::from_headers(&parts.headers);
        let token = jar.get(SESSION_COOKIE).and_then(|c| token::parse_token(c.value()));
        let Some(token) = token else { return Err(Redirect::to("/staf/masuk").into_response()) };
        let token_hash = token::token_hash(&token);
        let store = st.store.clone();
        let hash = token_hash.clone();
        match blocking(move || store.session(&hash, now_ms())).await {
            Ok(Some(staff)) if staff.active => {
                if st.staff_activity.touch(&token_hash, st.clock.now(), st.staff_idle_timeout) {
                    return Ok(StaffSession { staff, token_hash });
                }
                // Left alone too long: the session ends here, whatever the
                // page's script did or did not do.
                tracing::info!(staff = %staff.id, "staff console session ended after being idle");
                st.store.end_session(token_hash).await.map_err(|e| UiError::from(e).into_response())?;
                Err(Redirect::to("/staf/masuk?diam=1").into_response())
            }
            Ok(_) => Err(Redirect::to("/staf/masuk?habis=1").into_response()),
            Err(e) => Err(e.into_response()),
        }
    }
}

// ------------------------------------------------------------------ sync indicator

/// What the indicator says, rendered here and refreshed by `app.js` from
/// `/healthz` with the same wording.
fn sync_indicator(ctx: &Ctx, pending: u64) -> Markup {
    let s = &ctx.state.sync.status;
    let ord = std::sync::atomic::Ordering::Relaxed;
    let offset = ctx.state.utc_offset;
    let last_ok = s.last_ok_ms.load(ord);
    let offline_since = s.offline_since_ms.load(ord);
    let last = (last_ok > 0).then(|| local_clock(last_ok, offset));
    let (state, text) = if !ctx.state.sync.enrolled() {
        ("unenrolled", ctx.t("Belum terhubung ke server pusat", "Not enrolled with the central server").to_owned())
    } else if offline_since > 0 {
        let since = local_clock(offline_since, offset);
        let text = match ctx.lang {
            Lang::Id => format!("Luring sejak {since} — {pending} perubahan menunggu"),
            Lang::En => format!("Offline since {since} — {pending} changes waiting"),
        };
        ("offline", text)
    } else if s.reachable.load(ord) && s.last_error.lock().map(|e| e.is_some()).unwrap_or(false) {
        let text = match ctx.lang {
            Lang::Id => format!("Sinkron gagal — {pending} perubahan menunggu"),
            Lang::En => format!("Sync failed — {pending} changes waiting"),
        };
        ("error", text)
    } else if s.attempts.load(ord) == 0 {
        ("connecting", ctx.t("Menghubungkan…", "Connecting…").to_owned())
    } else if pending > 0 {
        let text = match ctx.lang {
            Lang::Id => format!("Daring — {pending} perubahan sedang dikirim"),
            Lang::En => format!("Online — sending {pending} changes"),
        };
        ("online", text)
    } else {
        ("online", ctx.t("Daring — semua tersinkron", "Online — all synced").to_owned())
    };
    html! {
        div #sync-indicator .sync role="status" aria-live="polite" data-state=(state) data-pending=(pending) {
            span.sync-dot aria-hidden="true" {}
            span #sync-text { (text) }
            span #sync-last .sync-last {
                (ctx.t("Sinkron terakhir: ", "Last sync: "))
                @if let Some(last) = last { (last) } @else { (ctx.t("belum pernah", "never")) }
            }
        }
    }
}

async fn staff_page(ctx: &Ctx, session: &StaffSession, title: &str, body: Markup) -> Result<Markup, UiError> {
    let store = ctx.state.store.clone();
    let counts = blocking(move || store.counts()).await?;
    let header = html! {
        (sync_indicator(ctx, counts.pending_changes))
        form.inline method="post" action="/staf/sinkron" {
            (csrf_field(ctx))
            input type="hidden" name="back" value=(ctx.path);
            button.secondary.small type="submit" #sync-now { (ctx.t("Sinkronkan", "Sync now")) }
        }
        span.who { (session.staff.name) " (" (session.staff.id.as_str()) ")" }
        form.inline #logout-form method="post" action="/staf/keluar" {
            (csrf_field(ctx))
            button.secondary.small type="submit" #logout { (ctx.t("Keluar", "Log out")) }
        }
    };
    Ok(layout(ctx, "staff", title, header, body))
}

// ------------------------------------------------------------------ login

#[derive(Deserialize)]
struct LoginQuery {
    habis: Option<String>,
    /// Set when the console logged itself out after being left alone.
    diam: Option<String>,
}

fn login_markup(ctx: &Ctx, staff_id: Option<&str>, error: Option<&str>, note: Option<&str>) -> Markup {
    let body = html! {
        h1 { (ctx.t("Masuk petugas", "Staff login")) }
        p.lead { (ctx.t("Bisa dipakai saat jaringan putus: akun diperiksa di kiosk ini.",
                        "Works during network outages: accounts are checked at this kiosk.")) }
        @if let Some(n) = note { div.alert.info role="status" { (n) } }
        @if let Some(e) = error { div.alert #login-error role="alert" { (e) } }
        form #login-form method="post" action="/staf/masuk" autocomplete="off" {
            (csrf_field(ctx))
            div.field {
                label for="staff_id" { (ctx.t("NIP / ID petugas", "Staff id (NIP)")) }
                input #staff_id name="staff_id" type="text" value=[staff_id] required maxlength="40" autocapitalize="off" spellcheck="false";
            }
            div.field {
                label for="password" { (ctx.t("Kata sandi", "Password")) }
                input #password name="password" type="password" required maxlength="256" autocomplete="current-password";
            }
            div.actions { button.primary.big type="submit" #login { (ctx.t("Masuk", "Log in")) } }
        }
        p { a href="/" { "← " (ctx.t("Layar warga", "Citizen screen")) } }
    };
    layout(ctx, "staff", ctx.t("Masuk petugas", "Staff login"), html! {}, body)
}

async fn login_page(ctx: Ctx, Query(q): Query<LoginQuery>) -> Response {
    let note = if q.diam.is_some() {
        Some(ctx.t(
            "Anda keluar otomatis karena konsol lama tidak digunakan.",
            "You were logged out because the console was left alone.",
        ))
    } else {
        q.habis
            .is_some()
            .then(|| ctx.t("Sesi Anda berakhir. Silakan masuk lagi.", "Your session ended. Please log in again."))
    };
    let markup = login_markup(&ctx, None, None, note);
    ctx.page(StatusCode::OK, markup)
}

#[derive(Deserialize)]
pub struct LoginForm {
    csrf: Option<String>,
    staff_id: Option<String>,
    password: Option<String>,
}

async fn login_post(
    ctx: Ctx,
    ClientAddr(addr): ClientAddr,
    UiForm(form): UiForm<LoginForm>,
) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let raw_id = form.staff_id.unwrap_or_default();
    let password = form.password.unwrap_or_default();
    let done = match crate::web::authenticate_staff(&ctx.state, &raw_id, password, addr).await {
        Ok(done) => done,
        Err(e) if e.status.is_client_error() => {
            let status = e.status;
            let msg = UiError::from(e);
            let text = ctx.lang.t(&msg.id, &msg.en).to_owned();
            // The id goes back into the field only if it is a NIP: a
            // password typed there must not stay on the screen.
            let keep = raw_id.trim().parse::<loket_shared::StaffId>().is_ok().then_some(raw_id.trim());
            let markup = login_markup(&ctx, keep, Some(&text), None);
            return Ok(ctx.page(status, markup));
        }
        Err(e) => return Err(e.into()),
    };
    let mut cookie = loket_node::web::cookie(SESSION_COOKIE, done.token, ctx.state.secure_cookies);
    cookie.set_max_age(time::Duration::seconds(i64::try_from(ctx.state.session_ttl.as_secs()).unwrap_or(i64::MAX)));
    Ok((ctx.jar.add(cookie), Redirect::to("/staf")).into_response())
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf: Option<String>,
    back: Option<String>,
    /// `idle` when the console's idle timer sent the logout.
    reason: Option<String>,
}

async fn logout(ctx: Ctx, session: StaffSession, UiForm(form): UiForm<CsrfOnly>) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    ctx.state.staff_activity.forget(&session.token_hash);
    ctx.state.store.end_session(session.token_hash).await?;
    tracing::info!(staff = %session.staff.id, idle = form.reason.is_some(), "staff logged out");
    let jar = ctx.jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    let to = if form.reason.as_deref() == Some("idle") { "/staf/masuk?diam=1" } else { "/staf/masuk" };
    Ok((jar, Redirect::to(to)).into_response())
}

async fn sync_now(ctx: Ctx, _session: StaffSession, UiForm(form): UiForm<CsrfOnly>) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    if let Err(e) = ctx.state.sync.run_once().await {
        tracing::info!(error = %e, "sync from the console failed");
    }
    let back = super::local_path(form.back.as_deref()).to_owned();
    Ok((ctx.jar, Redirect::to(&back)).into_response())
}

// ------------------------------------------------------------------ queue

#[derive(Debug, Default, Deserialize, Serialize)]
struct QueueQuery {
    status: Option<String>,
    layanan: Option<String>,
    /// `due` (due by the end of today) or `overdue`.
    sla: Option<String>,
}

/// When a request is due at this kelurahan: its SLA in working days of
/// the office's service hours from filing. Not shown while it waits for
/// the citizen or sits at an agency (the kelurahan's clock is paused
/// there); the kiosk does not subtract earlier pauses (the central pages
/// measure the exact time).
fn due_of(item_created_ms: i64, status: Status, service: Option<&Service>, cal: &Calendar<'_>) -> Option<i64> {
    if matches!(status, Status::WaitingCitizen | Status::HandedOff) {
        return None;
    }
    service.map(|s| cal.due_at(item_created_ms, s.sla_days))
}

fn end_of_today_ms(now: i64, offset: time::UtcOffset) -> i64 {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let next = t.date().next_day().unwrap_or(t.date()).midnight().assume_offset(offset);
    i64::try_from(next.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn action_label(lang: Lang, from: Status, to: Status) -> &'static str {
    use Status::*;
    match (from, to) {
        (Submitted, InProgress) => lang.t("Ambil dan proses", "Take and process"),
        (_, InProgress) => lang.t("Lanjutkan proses", "Resume processing"),
        (_, WaitingCitizen) => lang.t("Minta berkas ke pemohon", "Ask the citizen for documents"),
        (_, HandedOff) => lang.t("Teruskan ke instansi", "Hand off to an agency"),
        (_, Completed) => lang.t("Selesaikan", "Complete"),
        (_, Rejected) => lang.t("Tolak", "Reject"),
        (_, Cancelled) => lang.t("Batalkan", "Cancel"),
        (_, Submitted) => lang.t("Kembalikan", "Return"),
    }
}

fn service_label(lang: Lang, catalog: &Catalog, code: &str) -> String {
    catalog.service(code).map_or_else(|| code.to_owned(), |s| lang.t(&s.name_id, &s.name_en).to_owned())
}

async fn queue(ctx: Ctx, session: StaffSession, Query(q): Query<QueueQuery>) -> Result<Response, UiError> {
    let filter = match q.status.as_deref().unwrap_or("") {
        "" | "open" => QueueFilter::Open,
        "all" => QueueFilter::All,
        s => QueueFilter::Status(s.parse::<Status>().map_err(|_| {
            UiError::new(StatusCode::BAD_REQUEST, "invalid_status", "Status tidak dikenal.", "Unknown status.")
        })?),
    };
    let service_filter: Option<Code> = match q.layanan.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => Some(s.parse().map_err(|_| {
            UiError::new(StatusCode::BAD_REQUEST, "unknown_service", "Layanan tidak dikenal.", "Unknown service.")
        })?),
    };
    let sla = match q.sla.as_deref().unwrap_or("") {
        "" => None,
        s @ ("due" | "overdue") => Some(s),
        _ => {
            return Err(UiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_filter",
                "Saringan tidak dikenal.",
                "Unknown filter.",
            ));
        }
    };
    let store = ctx.state.store.clone();
    let (items, catalog) = blocking(move || Ok((store.queue_filtered(filter, 1000)?, store.catalog()?))).await?;
    let offset = ctx.state.utc_offset;
    let now = now_ms();
    let today_end = end_of_today_ms(now, offset);
    let holidays = catalog.holiday_set();
    let hours = catalog.hours_for(ctx.state.store.identity().kelurahan.as_str());
    let cal = Calendar { offset, hours, holidays: &holidays };
    let rows: Vec<(QueueItem, Option<i64>)> = items
        .into_iter()
        .filter(|i| service_filter.as_ref().is_none_or(|s| s.as_str() == i.service))
        .map(|i| {
            let due = due_of(i.created_at_ms, i.status, catalog.service(&i.service), &cal);
            (i, due)
        })
        .filter(|(i, due)| match (sla, due) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(_), Some(_)) if i.status.is_terminal() => false,
            (Some("overdue"), Some(d)) => now > *d,
            (Some(_), Some(d)) => now <= *d && *d <= today_end,
        })
        .collect();
    let lang = ctx.lang;
    let status_filter = q.status.clone().unwrap_or_default();
    let body = html! {
        h1 { (ctx.t("Antrean permohonan", "Request queue")) }
        form.filters #filters method="get" action="/staf" {
            div.field.inline-field {
                label for="f-status" { (ctx.t("Status", "Status")) }
                select #f-status name="status" {
                    option value="open" selected[status_filter.is_empty() || status_filter == "open"] { (ctx.t("Belum selesai", "Open")) }
                    option value="all" selected[status_filter == "all"] { (ctx.t("Semua", "All")) }
                    @for s in Status::ALL {
                        option value=(s.as_str()) selected[status_filter == s.as_str()] { (status_label(lang, s)) }
                    }
                }
            }
            div.field.inline-field {
                label for="f-service" { (ctx.t("Layanan", "Service")) }
                select #f-service name="layanan" {
                    option value="" { (ctx.t("Semua layanan", "All services")) }
                    @for s in &catalog.services {
                        option value=(s.code.as_str()) selected[q.layanan.as_deref() == Some(s.code.as_str())] { (lang.t(&s.name_id, &s.name_en)) }
                    }
                }
            }
            div.field.inline-field {
                label for="f-sla" { (ctx.t("Batas waktu", "Deadline")) }
                select #f-sla name="sla" {
                    option value="" { (ctx.t("Semua", "Any")) }
                    option value="due" selected[sla == Some("due")] { (ctx.t("Jatuh tempo hari ini", "Due today")) }
                    option value="overdue" selected[sla == Some("overdue")] { (ctx.t("Terlambat", "Overdue")) }
                }
            }
            button.primary type="submit" #apply-filters { (ctx.t("Terapkan", "Apply")) }
        }
        @if rows.is_empty() {
            p.empty #queue-empty { (ctx.t("Tidak ada permohonan.", "No requests.")) }
        } @else {
            table.queue #queue {
                caption.sr-only { (ctx.t("Permohonan, terlama di atas", "Requests, oldest first")) }
                thead { tr {
                    th scope="col" { (ctx.t("Tiket", "Ticket")) }
                    th scope="col" { (ctx.t("Layanan", "Service")) }
                    th scope="col" { (ctx.t("Pemohon", "Applicant")) }
                    th scope="col" { "NIK" }
                    th scope="col" { (ctx.t("Status", "Status")) }
                    th scope="col" { (ctx.t("Diajukan", "Filed")) }
                    th scope="col" { (ctx.t("Batas", "Due")) }
                } }
                tbody {
                    @for (i, due) in &rows {
                        @let overdue = due.is_some_and(|d| now > d) && !i.status.is_terminal();
                        tr data-ticket=(i.ticket) data-status=(i.status.as_str()) .overdue[overdue] .conflict[i.conflict] {
                            td { a href=(format!("/staf/permohonan/{}", i.id)) { (i.ticket) } }
                            td { (service_label(lang, &catalog, &i.service)) }
                            td.applicant { (i.applicant_name) }
                            td.mono { (i.nik_masked) }
                            td {
                                span.badge data-status=(i.status.as_str()) { (status_label(lang, i.status)) }
                                @if let Some(a) = &i.agency { " · " (agency_name(&catalog.agencies, a)) }
                                @if i.conflict { " " span.badge.conflict { (ctx.t("Konflik", "Conflict")) } }
                            }
                            td { (local_time(i.created_at_ms, offset)) }
                            td {
                                @if let Some(d) = due { (local_time(*d, offset)) }
                                @if overdue { " " span.badge.late { (ctx.t("Terlambat", "Overdue")) } }
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = staff_page(&ctx, &session, ctx.t("Antrean", "Queue"), body).await?;
    Ok(ctx.page(StatusCode::OK, markup))
}

// ------------------------------------------------------------------ detail and actions

fn parse_doc(raw: &str) -> Result<DocId, UiError> {
    raw.parse().map_err(|_| UiError::not_found())
}

/// Who wrote an event, for the clerk: the citizen, a staff member (NIP),
/// a central admin or an agency user (`admin:USER`, `agency:CODE:USER`).
fn who(lang: Lang, by: &str, node: &str, own_node: &str) -> String {
    let place =
        if node == own_node { lang.t("kiosk ini", "this kiosk") } else { lang.t("pusat/instansi", "central/agency") };
    let by = if by == "citizen" {
        lang.t("Warga", "Citizen").to_owned()
    } else if let Some((agency, user)) = by.strip_prefix("agency:").and_then(|r| r.split_once(':')) {
        format!("{user}, {agency}")
    } else if let Some(user) = by.strip_prefix("admin:") {
        format!("{user}, {}", lang.t("admin pusat", "central admin"))
    } else {
        by.to_owned()
    };
    format!("{by} ({place})")
}

fn agency_name<'a>(agencies: &'a [Agency], code: &'a str) -> &'a str {
    agencies.iter().find(|a| a.code.as_str() == code).map_or(code, |a| a.name.as_str())
}

async fn detail_markup(
    ctx: &Ctx,
    session: &StaffSession,
    doc: DocId,
    message: Option<(&str, bool)>,
) -> Result<Markup, UiError> {
    let store = ctx.state.store.clone();
    let (found, catalog) = blocking(move || Ok((store.request(&doc)?, store.catalog()?))).await?;
    let (view, derived) = found.ok_or_else(UiError::not_found)?;
    let lang = ctx.lang;
    let offset = ctx.state.utc_offset;
    let own_node = ctx.state.store.identity().node();
    let service = catalog.service(view.service.as_str());
    // The kelurahan's clock from the events: time used here counts, waits
    // for the citizen and time at an agency do not.
    let holidays = catalog.holiday_set();
    let cal = Calendar { offset, hours: catalog.hours_for(view.kelurahan.as_str()), holidays: &holidays };
    let agencies = Calendar { offset, hours: &catalog.service_hours, holidays: &holidays };
    let clock = match service {
        Some(s) if !derived.status.is_terminal() && !derived.has_conflict() => {
            let events: Vec<loket_shared::sla::JourneyEvent> =
                derived.ordered.iter().map(|e| (e.at_ms, e.to, e.agency.clone())).collect();
            Some(loket_shared::sla::kelurahan_clock(view.created_at_ms, &events, now_ms(), s.sla_days, &cal, &agencies))
        }
        _ => None,
    };
    // Nothing while a conflict waits or an agency works on it.
    let allowed: &[Status] =
        if derived.has_conflict() || derived.taken_by_agency() { &[] } else { derived.status.allowed_next() };
    let handoff: Vec<&Agency> =
        service.map(|s| s.handoff.iter().filter_map(|c| catalog.agency(c.as_str())).collect()).unwrap_or_default();
    let body = html! {
        nav.crumbs { a href="/staf" { "← " (ctx.t("Antrean", "Queue")) } }
        h1 { (ctx.t("Tiket ", "Ticket ")) span #detail-ticket { (view.ticket.as_str()) } }
        @if let Some((text, ok)) = message {
            div.alert.info[ok] #action-message role=(if ok { "status" } else { "alert" }) { (text) }
        }
        dl.facts {
            dt { (ctx.t("Status", "Status")) }
            dd {
                span.badge #detail-status data-status=(derived.status.as_str()) data-conflict=(derived.has_conflict()) {
                    @if derived.has_conflict() {
                        (ctx.t("Konflik — menunggu keputusan pusat", "Conflict — waiting for a central decision"))
                    } @else if let (true, Some(a)) = (derived.taken_by_agency(), &derived.agency) {
                        (ctx.t("Sedang dikerjakan ", "Being worked on by ")) (agency_name(&catalog.agencies, a))
                    } @else {
                        (status_label(lang, derived.status))
                    }
                }
            }
            dt { (ctx.t("Layanan", "Service")) } dd { (service_label(lang, &catalog, view.service.as_str())) }
            dt { (ctx.t("Pemohon", "Applicant")) } dd #detail-name { (view.applicant.name.as_str()) }
            dt { "NIK" } dd.mono { (view.applicant.nik.masked()) }
            dt { (ctx.t("Nomor HP", "Mobile")) } dd.mono { (view.applicant.phone.as_ref().map_or_else(|| "—".to_owned(), |p| p.masked())) }
            dt { (ctx.t("Diajukan", "Filed")) } dd { (local_time(view.created_at_ms, offset)) }
            @match clock {
                Some(loket_shared::sla::KelurahanClock::Running { due_ms }) => {
                    dt { (ctx.t("Batas waktu (SLA)", "Due (SLA)")) } dd #sla-due { (local_time(due_ms, offset)) }
                }
                Some(loket_shared::sla::KelurahanClock::Overdue { over_ms }) => {
                    dt { (ctx.t("Batas waktu (SLA)", "Due (SLA)")) }
                    dd #sla-due { span.badge.late { (ctx.t("Terlambat", "Overdue")) } " "
                        (format!("{:.2}", over_ms as f64 / loket_shared::sla::DAY_MS as f64)) " " (ctx.t("hari kerja", "working days")) }
                }
                Some(loket_shared::sla::KelurahanClock::Paused) => {
                    dt { (ctx.t("Batas waktu (SLA)", "Due (SLA)")) }
                    dd #sla-due { (ctx.t("Dihentikan sementara: menunggu pemohon atau instansi", "Paused: waiting for the citizen or an agency")) }
                }
                None => {}
            }
            @if let Some(a) = &derived.agency { dt { (ctx.t("Instansi", "Agency")) } dd { (agency_name(&catalog.agencies, a)) } }
        }
        @if derived.has_conflict() {
            section.conflict-box #conflict aria-labelledby="conflict-title" {
                h2 #conflict-title { (ctx.t("Konflik: dua pihak mengubah permohonan ini bersamaan", "Conflict: two sides changed this request at the same time")) }
                p { (ctx.t("Perubahan dari kedua pihak disimpan. Petugas pusat akan memutuskan; sampai itu, tindakan ditahan.",
                           "Both sides' changes are kept. Central staff will decide; until then, actions are on hold.")) }
                table.sides {
                    thead { tr {
                        th scope="col" { (ctx.t("Pihak", "Side")) }
                        th scope="col" { (ctx.t("Mengubah ke", "Changed to")) }
                        th scope="col" { (ctx.t("Waktu", "When")) }
                        th scope="col" { (ctx.t("Catatan", "Note")) }
                    } }
                    tbody {
                        @for c in &derived.conflict {
                            tr {
                                td { (who(lang, &c.by, &c.node, &own_node)) }
                                td { (status_label(lang, c.to)) @if let Some(a) = &c.agency { " → " (agency_name(&catalog.agencies, a)) } }
                                td { (local_time(c.at_ms, offset)) }
                                td.note { @if let Some(n) = &c.note { (n) } }
                            }
                        }
                    }
                }
            }
        }
        @if let (true, Some(a)) = (derived.taken_by_agency(), &derived.agency) {
            p.alert.info #held-by-agency role="status" {
                (agency_name(&catalog.agencies, a))
                (ctx.t(" sedang mengerjakan permohonan ini. Hasilnya muncul di sini setelah sinkronisasi.",
                       " is working on this request. Its result appears here after a sync."))
            }
        }
        @if !allowed.is_empty() {
            section.actions-box aria-labelledby="actions-title" {
                h2 #actions-title { (ctx.t("Tindakan", "Actions")) }
                @for to in allowed {
                    @let key = uuid::Uuid::from_bytes(loket_node::random_bytes::<16>()).to_string();
                    form.action method="post" action=(format!("/staf/permohonan/{}", view.id)) data-action=(to.as_str()) {
                        (csrf_field(ctx))
                        input type="hidden" name="to" value=(to.as_str());
                        input type="hidden" name="key" value=(key);
                        @if *to == Status::HandedOff {
                            div.field {
                                label for=(format!("agency-{}", to.as_str())) { (ctx.t("Instansi tujuan", "Agency")) }
                                select id=(format!("agency-{}", to.as_str())) name="agency" required {
                                    @for a in &handoff { option value=(a.code.as_str()) { (a.name) } }
                                }
                            }
                        }
                        div.field {
                            label for=(format!("note-{}", to.as_str())) { (ctx.t("Catatan (opsional)", "Note (optional)")) }
                            textarea id=(format!("note-{}", to.as_str())) name="note" rows="2" maxlength=(NOTE_MAX_CHARS) {}
                        }
                        button.primary type="submit" data-once { (action_label(lang, derived.status, *to)) }
                    }
                }
            }
        }
        section aria-labelledby="history-title" {
            h2 #history-title { (ctx.t("Riwayat", "History")) }
            ol.history #history {
                @for e in &derived.ordered {
                    li {
                        span.when { (local_time(e.at_ms, offset)) }
                        " · " span.by { (who(lang, &e.by, &e.node, &own_node)) }
                        " · " span.what {
                            @if let Some(from) = e.from { (status_label(lang, from)) " → " }
                            (status_label(lang, e.to))
                            @if let Some(a) = &e.agency { " (" (agency_name(&catalog.agencies, a)) ")" }
                        }
                        @if let Some(n) = &e.note { p.note { (n) } }
                    }
                }
            }
        }
        @if let Some(r) = view.ratings.first() {
            section aria-labelledby="rating-title" {
                h2 #rating-title { (ctx.t("Penilaian warga (SKM)", "Citizen rating (SKM)")) }
                ul.scores {
                    @for (element, score) in r.scores.to_map() {
                        li { (lang.t(element.info().name_id, element.info().name_en)) ": " strong { (score) } }
                    }
                }
                @if let Some(c) = &r.comment { p.note { (c) } }
            }
        }
    };
    let title = format!("{} {}", ctx.t("Tiket", "Ticket"), view.ticket.as_str());
    staff_page(ctx, session, &title, body).await
}

#[derive(Deserialize)]
struct DetailQuery {
    ok: Option<String>,
}

async fn detail(
    ctx: Ctx,
    session: StaffSession,
    Path(raw): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, UiError> {
    let doc = parse_doc(&raw)?;
    let saved = ctx.t(
        "Tersimpan di kiosk. Akan dikirim ke server pada sinkron berikutnya.",
        "Saved at this kiosk. It goes to the server at the next sync.",
    );
    let message = q.ok.is_some().then_some((saved, true));
    let markup = detail_markup(&ctx, &session, doc, message).await?;
    Ok(ctx.page(StatusCode::OK, markup))
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    to: Option<String>,
    note: Option<String>,
    agency: Option<String>,
    key: Option<String>,
}

#[derive(Serialize)]
struct ActionFingerprint<'a> {
    doc: &'a str,
    to: &'a str,
    note: Option<&'a str>,
    agency: Option<&'a str>,
}

async fn action(
    ctx: Ctx,
    session: StaffSession,
    Path(raw): Path<String>,
    UiForm(form): UiForm<ActionForm>,
) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let doc = parse_doc(&raw)?;
    let attempt = async {
        let to: Status = form
            .to
            .as_deref()
            .unwrap_or("")
            .parse()
            .map_err(|e| crate::web::ApiError::unprocessable("invalid_status", e))?;
        let note = free_text(form.note.clone(), NOTE_MAX_CHARS, "invalid_note")?;
        let agency: Option<Code> = match form.agency.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            None => None,
            Some(a) => Some(a.parse().map_err(|_| {
                crate::web::ApiError::unprocessable("unknown_agency", "instansi tidak dikenal / unknown agency")
            })?),
        };
        let doc_text = doc.to_string();
        let fingerprint = ActionFingerprint {
            doc: &doc_text,
            to: to.as_str(),
            note: note.as_deref(),
            agency: agency.as_ref().map(Code::as_str),
        };
        let idem = idem_for_key(&ctx.state.store, form.key.as_deref().unwrap_or(""), &fingerprint)?;
        let input = EventInput { to, note, agency, by: session.staff.id.clone() };
        let ack = ctx.state.store.append_event(doc, input, Some(idem)).await?;
        Ok::<_, crate::web::ApiError>(ack)
    };
    match attempt.await {
        Ok(ack) => {
            ctx.state.sync.nudge.notify_one();
            tracing::info!(doc = %ack.id, staff = %session.staff.id, to = %ack.status, "workflow event at the console");
            Ok((ctx.jar, Redirect::to(&format!("/staf/permohonan/{}?ok=1", ack.id))).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            tracing::info!(code = e.code, "console action refused");
            let msg = UiError::from(e);
            let text = ctx.lang.t(&msg.id, &msg.en).to_owned();
            let markup = detail_markup(&ctx, &session, doc, Some((&text, false))).await?;
            Ok(ctx.page(msg.status, markup))
        }
        Err(e) => Err(e.into()),
    }
}
