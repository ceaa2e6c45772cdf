//! The staff console: login against the synced roster (works offline),
//! the office queue with its search (ticket as typed or scanned, name,
//! NIK), a request's history naming who did what at which kiosk, one
//! action panel (a reason where the citizen will read one, a confirmation
//! for final steps), and a sync indicator on every page ("offline since
//! 10:42 — 17 changes waiting"). Every POST redirects (Back never resends
//! a form); what it hands to the next page waits in `AppState::staff_drafts`,
//! bound to the session.

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
use loket_shared::{Code, DocId, Nik, Status, Ticket};
use maud::{Markup, html};
use serde::{Deserialize, Serialize};

use super::{
    ClientAddr, Ctx, Lang, UiError, UiForm, blocking, csrf_field, layout, local_clock, local_time, status_label,
};
use crate::store::{EventInput, QueueFilter, QueueItem, StaffRecord};
use crate::web::{AppState, check_step_note, free_text, idem_for_key, reason_required};

const SESSION_COOKIE: &str = "loket_staff";
/// The session cookie goes only to the console's own paths.
const SESSION_COOKIE_PATH: &str = "/staf";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staf", get(queue))
        .route("/staf/masuk", get(login_page).post(login_post))
        .route("/staf/keluar", post(logout))
        .route("/staf/sinkron", post(sync_now))
        .route("/staf/cari", post(search))
        .route("/staf/permohonan/{id}", get(detail).post(action))
        .route("/staf/pengaduan", get(complaints))
}

/// What a console POST hands to the page it redirects to, bound to the
/// session that posted it.
#[derive(Debug, Clone)]
pub enum StaffDraft {
    /// A final step waiting for its confirmation.
    Confirm { session: String, doc: DocId, step: Step },
    /// A search of the queue (names and NIKs stay out of URLs).
    Search { session: String, query: String },
    /// What the console's sync button did, shown on the next page.
    Synced { outcome: SyncOutcome },
}

/// A workflow step as the action panel sends it.
#[derive(Debug, Clone)]
pub struct Step {
    pub to: Status,
    pub note: Option<String>,
    pub agency: Option<String>,
    /// The idempotency key of the panel that sent it.
    pub key: String,
}

#[derive(Debug, Clone)]
pub enum SyncOutcome {
    Done { pushed: usize, pulled: usize },
    NotEnrolled,
    Unreachable,
    Failed,
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
    } else if s.update_needed.load(ord) {
        let text = match ctx.lang {
            Lang::Id => format!("Kiosk perlu diperbarui — {pending} perubahan menunggu, layanan tetap berjalan"),
            Lang::En => format!("Kiosk needs an update — {pending} changes waiting, service goes on"),
        };
        ("update", text)
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

/// What the sync button did, in words: an offline kiosk says so, and
/// that nothing is lost.
fn sync_message(ctx: &Ctx, outcome: &SyncOutcome) -> (bool, String) {
    match (outcome, ctx.lang) {
        (SyncOutcome::Done { pushed, pulled }, Lang::Id) => {
            (true, format!("Sinkron berhasil: {pushed} dokumen dikirim, {pulled} diterima."))
        }
        (SyncOutcome::Done { pushed, pulled }, Lang::En) => {
            (true, format!("Synced: {pushed} documents sent, {pulled} received."))
        }
        (SyncOutcome::NotEnrolled, _) => (
            false,
            ctx.t(
                "Tidak disinkronkan: kiosk ini belum terdaftar di server pusat. Semua data tetap tersimpan di kiosk ini.",
                "Not synced: this kiosk is not enrolled with the central server. Everything stays saved at this kiosk.",
            )
            .to_owned(),
        ),
        (SyncOutcome::Unreachable, _) => (
            false,
            ctx.t(
                "Sinkron gagal: server pusat tidak terjangkau (jaringan putus?). Semua perubahan tetap tersimpan di kiosk ini dan dikirim otomatis saat jaringan kembali.",
                "Sync failed: the central server cannot be reached (network down?). Every change stays saved at this kiosk and is sent by itself when the network is back.",
            )
            .to_owned(),
        ),
        (SyncOutcome::Failed, _) => (
            false,
            ctx.t(
                "Sinkron gagal; kiosk akan mencoba lagi sendiri. Semua perubahan tetap tersimpan di kiosk ini.",
                "Sync failed; the kiosk will try again by itself. Every change stays saved at this kiosk.",
            )
            .to_owned(),
        ),
    }
}

async fn staff_page(ctx: &Ctx, session: &StaffSession, title: &str, body: Markup) -> Result<Markup, UiError> {
    let store = ctx.state.store.clone();
    let counts = blocking(move || store.counts()).await?;
    let synced = match ctx.state.staff_drafts.take(&sync_key(&session.token_hash), ctx.state.clock.now()) {
        Some(StaffDraft::Synced { outcome }) => Some(sync_message(ctx, &outcome)),
        _ => None,
    };
    let body = html! {
        @if let Some((ok, text)) = synced {
            div.alert.info[ok] #sync-message role=(if ok { "status" } else { "alert" }) data-ok=(ok) { (text) }
        }
        (body)
    };
    let header = html! {
        (sync_indicator(ctx, counts.pending_changes))
        form.inline method="post" action="/staf/sinkron" {
            (csrf_field(ctx))
            input type="hidden" name="back" value=(ctx.path);
            button.secondary.small type="submit" #sync-now { (ctx.t("Sinkronkan", "Sync now")) }
        }
        a.small #nav-complaints href="/staf/pengaduan" { (ctx.t("Pengaduan", "Complaints")) }
        span.who title=(format!("NIP {}", session.staff.id.as_str())) { (session.staff.name) }
        form.inline #logout-form method="post" action="/staf/keluar" {
            (csrf_field(ctx))
            button.secondary.small type="submit" #logout { (ctx.t("Keluar", "Log out")) }
        }
    };
    Ok(layout(ctx, "staff", title, header, body))
}

// ------------------------------------------------------------------ complaints

/// The office's complaints (issue 16), read-only: they are handled
/// centrally. No complainant is named here, not even whether a named one
/// is the person reading (a complaint may be about them).
async fn complaints(ctx: Ctx, session: StaffSession) -> Result<Response, UiError> {
    let store = ctx.state.store.clone();
    let rows = blocking(move || store.complaints(500)).await?;
    let offset = ctx.state.utc_offset;
    let body = html! {
        nav.crumbs { a href="/staf" { "← " (ctx.t("Antrean", "Queue")) } }
        h1 { (ctx.t("Pengaduan kantor ini", "This office's complaints")) }
        p.hint { (ctx.t("Ditangani oleh petugas pengelola pengaduan di aplikasi pusat; di sini hanya dibaca. Identitas pengadu tidak ditampilkan.",
                        "Handled by the complaints officer in the central app; read-only here. Complainants are not shown.")) }
        @if rows.is_empty() {
            p #complaints-empty { (ctx.t("Belum ada pengaduan.", "No complaints yet.")) }
        } @else {
            table #complaints {
                thead { tr {
                    th scope="col" { (ctx.t("Tiket", "Ticket")) }
                    th scope="col" { (ctx.t("Diajukan", "Filed")) }
                    th scope="col" { (ctx.t("Tentang", "About")) }
                    th scope="col" { (ctx.t("Status", "Status")) }
                    th scope="col" { (ctx.t("Klasifikasi", "Class")) }
                } }
                tbody {
                    @for r in &rows {
                        @let about = r.about.parse::<loket_shared::complaint::AboutKind>().ok();
                        @let state = r.state.parse::<loket_shared::complaint::State>().ok();
                        @let class = r.class.as_deref().and_then(|c| c.parse::<loket_shared::complaint::Class>().ok());
                        tr data-ticket=(r.ticket) data-state=(r.state) {
                            td.mono { (r.ticket) }
                            td { (local_time(r.created_at_ms, offset)) }
                            td { (about.map_or(r.about.as_str(), |a| ctx.lang.t(a.label().0, a.label().1))) }
                            td {
                                (state.map_or(r.state.as_str(), |s| ctx.lang.t(s.label().0, s.label().1)))
                                @if r.flagged { " · " (ctx.t("perlu ditinjau", "needs review")) }
                            }
                            td { (class.map_or("—", |c| ctx.lang.t(c.label().0, c.label().1))) }
                        }
                    }
                }
            }
        }
    };
    let title = ctx.t("Pengaduan", "Complaints").to_owned();
    let markup = staff_page(&ctx, &session, &title, body).await?;
    Ok(ctx.page(StatusCode::OK, markup))
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
    let mut cookie =
        loket_node::web::cookie(SESSION_COOKIE, done.token, ctx.state.secure_cookies_for(crate::web::Surface::Staff));
    cookie.set_path(SESSION_COOKIE_PATH);
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
    let jar = ctx.jar.remove(Cookie::build(SESSION_COOKIE).path(SESSION_COOKIE_PATH));
    let to = if form.reason.as_deref() == Some("idle") { "/staf/masuk?diam=1" } else { "/staf/masuk" };
    Ok((jar, Redirect::to(to)).into_response())
}

/// Where a session's last sync outcome waits for its next page.
fn sync_key(session: &str) -> String {
    format!("sync:{session}")
}

async fn sync_now(ctx: Ctx, session: StaffSession, UiForm(form): UiForm<CsrfOnly>) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let outcome = match ctx.state.sync.run_once().await {
        Ok(s) => SyncOutcome::Done { pushed: s.pushed, pulled: s.pulled },
        Err(e) => {
            tracing::info!(error = %e, "sync from the console failed");
            match e {
                crate::sync::SyncError::NotEnrolled => SyncOutcome::NotEnrolled,
                crate::sync::SyncError::Unreachable(_) => SyncOutcome::Unreachable,
                _ => SyncOutcome::Failed,
            }
        }
    };
    let now = ctx.state.clock.now();
    ctx.state.staff_drafts.insert(sync_key(&session.token_hash), StaffDraft::Synced { outcome }, now);
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
    /// A search's draft id (the words searched for stay out of the URL).
    cari: Option<String>,
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

/// What choosing a step means, under its name in the panel.
fn action_hint(lang: Lang, to: Status) -> &'static str {
    use Status::*;
    match to {
        WaitingCitizen => lang.t("Tulis berkas yang kurang (wajib).", "Say which document is missing (required)."),
        Rejected => lang.t("Final. Tulis alasannya (wajib).", "Final. Give the reason (required)."),
        Cancelled => lang.t("Final. Tulis alasannya (wajib).", "Final. Give the reason (required)."),
        Completed => lang.t("Final: permohonan ditutup.", "Final: the request is closed."),
        HandedOff => lang.t("Pilih instansi di bawah.", "Choose the agency below."),
        InProgress | Submitted => "",
    }
}

/// A date and time as the queue shows it, short enough for one line:
/// `04-12 10:42` (the whole date is its tooltip and on the request page).
fn day_and_time(ms: i64, offset: time::UtcOffset) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let fmt = time::macros::format_description!("[day]-[month] [hour]:[minute]");
    t.format(&fmt).unwrap_or_default()
}

/// A status in a word or two, for the queue's tags (the request's page
/// says it in full).
fn short_status(lang: Lang, status: Status) -> &'static str {
    use Status::*;
    match status {
        Submitted => lang.t("Baru", "New"),
        InProgress => lang.t("Diproses", "In progress"),
        WaitingCitizen => lang.t("Menunggu warga", "Waiting for citizen"),
        HandedOff => lang.t("Di instansi", "At an agency"),
        Completed => lang.t("Selesai", "Completed"),
        Rejected => lang.t("Ditolak", "Rejected"),
        Cancelled => lang.t("Dibatalkan", "Cancelled"),
    }
}

/// A step that cannot be undone, or that turns the citizen away.
fn is_danger(to: Status) -> bool {
    matches!(to, Status::Rejected | Status::Cancelled)
}

fn service_label(lang: Lang, catalog: &Catalog, code: &str) -> String {
    catalog.service(code).map_or_else(|| code.to_owned(), |s| lang.t(&s.name_id, &s.name_en).to_owned())
}

/// Requests a search finds, newest first, at most this many.
const SEARCH_MAX: u32 = 200;

/// What a search is, read from what was typed or scanned.
enum Search {
    /// A ticket number however typed, or a receipt's scanned rating link.
    Ticket(Vec<Ticket>),
    /// A whole NIK from a KTP.
    Nik(Nik),
    /// Part of a name or a ticket.
    Text(String),
}

impl Search {
    fn parse(raw: &str) -> Option<Search> {
        let raw = raw.trim();
        if raw.is_empty() || raw.chars().count() > 200 {
            return None;
        }
        // A receipt's QR code holds the rating link; its code is no search word.
        let text = super::citizen::scanned_link(raw).map_or(raw, |(ticket, _)| ticket);
        let candidates = Ticket::candidates(text);
        if !candidates.is_empty() {
            return Some(Search::Ticket(candidates));
        }
        let digits: String = text.chars().filter(|c| !matches!(c, ' ' | '.' | '-')).collect();
        if let Ok(nik) = digits.parse::<Nik>() {
            return Some(Search::Nik(nik));
        }
        Some(Search::Text(text.chars().take(100).collect()))
    }
}

/// The requests a search finds; one found by ticket or NIK opens at once.
async fn run_search(ctx: &Ctx, search: Search) -> Result<Vec<QueueItem>, UiError> {
    let store = ctx.state.store.clone();
    blocking(move || match search {
        Search::Ticket(candidates) => {
            let found = store.find_ticket(&candidates)?;
            match found {
                Some(view) => {
                    Ok(store.search_text(&view.ticket, SEARCH_MAX)?.into_iter().filter(|i| i.id == view.id).collect())
                }
                // Not a ticket here: perhaps part of one, or of a name.
                None => store.search_text(candidates[0].as_str(), SEARCH_MAX),
            }
        }
        Search::Nik(nik) => store.search_nik(&nik, SEARCH_MAX),
        Search::Text(text) => store.search_text(&text, SEARCH_MAX),
    })
    .await
}

#[derive(Deserialize)]
pub struct SearchForm {
    csrf: Option<String>,
    q: Option<String>,
}

/// The queue's search box (a QR scanner types into it and presses Enter):
/// one request found by ticket or NIK opens; otherwise the queue lists
/// what was found. What was typed waits in a draft, never in a URL.
async fn search(ctx: Ctx, session: StaffSession, UiForm(form): UiForm<SearchForm>) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let raw = form.q.unwrap_or_default();
    let Some(search) = Search::parse(&raw) else { return Ok((ctx.jar, Redirect::to("/staf")).into_response()) };
    let exact = matches!(search, Search::Ticket(_) | Search::Nik(_));
    let found = run_search(&ctx, search).await?;
    if exact && found.len() == 1 {
        return Ok((ctx.jar, Redirect::to(&format!("/staf/permohonan/{}", found[0].id))).into_response());
    }
    let draft = StaffDraft::Search { session: session.token_hash.clone(), query: raw.trim().to_owned() };
    let id = ctx.state.staff_drafts.put(draft, ctx.state.clock.now());
    Ok((ctx.jar, Redirect::to(&format!("/staf?cari={id}"))).into_response())
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
    // A search (a draft of this session's) lists what it finds, whatever
    // the status; one that is gone (a restart, another session's) is said so.
    let (query, search_gone) = match q.cari.as_deref() {
        None => (None, false),
        Some(id) => match ctx.state.staff_drafts.get(id, ctx.state.clock.now()) {
            Some(StaffDraft::Search { session: owner, query }) if owner == session.token_hash => (Some(query), false),
            _ => (None, true),
        },
    };
    let items = match query.as_deref().and_then(Search::parse) {
        Some(search) => run_search(&ctx, search).await?,
        None => {
            let store = ctx.state.store.clone();
            blocking(move || store.queue_filtered(filter, 1000)).await?
        }
    };
    let store = ctx.state.store.clone();
    let catalog = blocking(move || store.catalog()).await?;
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
        div.queue-tools {
            form #search-form method="post" action="/staf/cari" role="search" {
                (csrf_field(&ctx))
                label for="search" { (ctx.t("Cari: tiket, nama, NIK, atau pindai QR", "Find: ticket, name, NIK, or scan the QR")) }
                div.search-row {
                    // A QR scanner types into whatever has the focus: this
                    // field has it when the queue opens.
                    input #search name="q" type="search" value=[query.as_deref()] autofocus autocomplete="off"
                        spellcheck="false" maxlength="200";
                    button.primary type="submit" #search-go { (ctx.t("Cari", "Search")) }
                }
            }
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
                button.secondary type="submit" #apply-filters { (ctx.t("Terapkan", "Apply")) }
            }
        }
        @if search_gone {
            p.alert.info #search-gone role="status" { (ctx.t("Pencarian itu sudah kedaluwarsa; silakan cari lagi.", "That search has expired; please search again.")) }
        }
        @if query.is_some() {
            p #search-summary role="status" {
                @match lang {
                    Lang::Id => { (rows.len()) " permohonan ditemukan. " }
                    Lang::En => { (rows.len()) " requests found. " }
                }
                a href="/staf" { (ctx.t("Kembali ke antrean", "Back to the queue")) }
            }
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
                            td.ticket { a href=(format!("/staf/permohonan/{}", i.id)) { (i.ticket) } }
                            @let service = service_label(lang, &catalog, &i.service);
                            td.svc title=(service) { span.svc-code { (i.service) } " · " (service) }
                            td.applicant { (i.applicant_name) }
                            td.mono.nik { (i.nik_masked) }
                            td.state {
                                span.badge data-status=(i.status.as_str()) title=(status_label(lang, i.status)) { (short_status(lang, i.status)) }
                                // The agency's short code: its full name is the tooltip.
                                @if let Some(a) = &i.agency { " · " abbr title=(agency_name(&catalog.agencies, a)) { (a) } }
                                @if i.conflict { " " span.badge.conflict { (ctx.t("Konflik", "Conflict")) } }
                                @if overdue { " " span.badge.late { (ctx.t("Terlambat", "Overdue")) } }
                            }
                            td.date title=(local_time(i.created_at_ms, offset)) { (day_and_time(i.created_at_ms, offset)) }
                            td.date title=[due.map(|d| local_time(d, offset))] {
                                @if let Some(d) = due { (day_and_time(*d, offset)) }
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

/// Who may have written this office's events: the roster's staff by id,
/// the kiosks seen filing here by Automerge actor, and this kiosk.
struct Authors {
    staff: std::collections::HashMap<String, String>,
    kiosks: std::collections::HashMap<String, String>,
    own_node: String,
    own_kiosk: String,
}

/// Who wrote an event, for the clerk: a name and where. A staff member by
/// name (from the roster) and the kiosk whose actor wrote it: this one,
/// the other kiosk of the office by its code, never "central" (only
/// kiosks write staff ids); a central admin or an agency user
/// (`admin:USER`, `agency:CODE:USER`) by user and office; the citizen.
fn who(lang: Lang, by: &str, node: &str, authors: &Authors, agencies: &[Agency]) -> String {
    if by == "citizen" {
        return lang.t("Warga", "Citizen").to_owned();
    }
    if let Some((agency, user)) = by.strip_prefix("agency:").and_then(|r| r.split_once(':')) {
        return format!("{user} · {}", agency_name(agencies, agency));
    }
    if let Some(user) = by.strip_prefix("admin:") {
        return format!("{user} · {}", lang.t("admin pusat", "central admin"));
    }
    let name = match authors.staff.get(by) {
        Some(name) => name.clone(),
        None => format!("{} {by}", lang.t("Petugas di luar daftar", "Staff not on the roster")),
    };
    // An actor this kiosk had before a restore is listed under its code.
    let place = if node == authors.own_node || authors.kiosks.get(node) == Some(&authors.own_kiosk) {
        format!("{} {}", lang.t("kiosk ini,", "this kiosk,"), authors.own_kiosk)
    } else if let Some(code) = authors.kiosks.get(node) {
        format!("kiosk {code}")
    } else {
        lang.t("kiosk lain di kantor ini", "another kiosk of this office").to_owned()
    };
    format!("{name} · {place}")
}

fn agency_name<'a>(agencies: &'a [Agency], code: &'a str) -> &'a str {
    agencies.iter().find(|a| a.code.as_str() == code).map_or(code, |a| a.name.as_str())
}

/// A message at the top of a request's page.
struct Message {
    text: String,
    ok: bool,
    /// The stable code of a refusal (`reason_required`), or `saved`.
    code: &'static str,
}

/// What the page offers in place of its actions.
enum Panel {
    /// The action panel, with what the clerk chose and typed if a step was
    /// refused (so nothing typed is lost).
    Choose(Option<Step>),
    /// A final step to confirm (the draft that holds it).
    Confirm(Step, String),
}

/// The one action panel: every allowed step as a choice (final and
/// turning-away ones marked), one note box (a reason where the citizen
/// will read one), the agency for a hand-off, one button.
fn action_panel(
    ctx: &Ctx,
    doc: &str,
    from: Status,
    allowed: &[Status],
    handoff: &[(&Agency, String)],
    chosen: Option<&Step>,
) -> Markup {
    let lang = ctx.lang;
    let key = chosen
        .map(|s| s.key.clone())
        .unwrap_or_else(|| uuid::Uuid::from_bytes(loket_node::random_bytes::<16>()).to_string());
    html! {
        section.action-panel #action-panel aria-labelledby="actions-title" {
            h2 #actions-title { (ctx.t("Tindakan", "Actions")) }
            form #action-form method="post" action=(format!("/staf/permohonan/{doc}")) {
                (csrf_field(ctx))
                input type="hidden" name="key" value=(key);
                fieldset.action-choices {
                    legend { (ctx.t("Pilih langkah berikutnya", "Choose the next step")) }
                    @for to in allowed {
                        @let id = format!("to-{}", to.as_str());
                        label.action-choice.danger[is_danger(*to)].final[to.is_terminal()] for=(id) data-action=(to.as_str()) {
                            input id=(id) type="radio" name="to" value=(to.as_str()) required
                                checked[chosen.is_some_and(|s| s.to == *to)]
                                data-reason=(reason_required(*to)) data-final=(to.is_terminal());
                            span.action-name { (action_label(lang, from, *to)) }
                            @let hint = action_hint(lang, *to);
                            @if !hint.is_empty() { span.action-hint { (hint) } }
                        }
                    }
                }
                @if allowed.contains(&Status::HandedOff) {
                    div.field #agency-field {
                        label for="action-agency" { (ctx.t("Instansi tujuan (untuk Teruskan)", "Agency (for a hand-off)")) }
                        select #action-agency name="agency" {
                            @for (a, unit) in handoff {
                                option value=(a.code.as_str()) selected[chosen.and_then(|s| s.agency.as_deref()) == Some(a.code.as_str())] { (unit) }
                            }
                        }
                    }
                }
                div.field {
                    label for="action-note" { (ctx.t("Catatan atau alasan", "Note or reason")) }
                    p.hint #action-note-hint {
                        (ctx.t("Wajib untuk Tolak, Batalkan dan Minta berkas: alasannya, atau berkas yang kurang. Alasan itu tampil di cek status warga, jadi jangan tulis NIK, nomor HP atau nama.",
                               "Required to reject, cancel or ask for documents: the reason, or the missing document. The citizen's status check shows it, so leave out NIK, phone numbers and names."))
                    }
                    textarea #action-note name="note" rows="3" maxlength=(NOTE_MAX_CHARS) aria-describedby="action-note-hint" {
                        @if let Some(n) = chosen.and_then(|s| s.note.as_deref()) { (n) }
                    }
                }
                button.primary type="submit" #action-submit { (ctx.t("Lanjut", "Continue")) }
            }
        }
    }
}

/// The confirmation of a final step: what it is and the reason, the
/// step itself in the danger style, and a way back.
fn confirm_box(ctx: &Ctx, doc: &str, from: Status, step: &Step, draft: &str) -> Markup {
    let lang = ctx.lang;
    let name = action_label(lang, from, step.to);
    html! {
        section.confirm-box #confirm-box role="alertdialog" aria-labelledby="confirm-title" aria-describedby="confirm-what" {
            h2 #confirm-title {
                @match lang {
                    Lang::Id => { (name) " permohonan ini?" }
                    Lang::En => { (name) " this request?" }
                }
            }
            p #confirm-what { (ctx.t("Langkah ini final: permohonan tidak dapat dibuka lagi di kiosk.", "This step is final: the request cannot be reopened at the kiosk.")) }
            @if let Some(n) = &step.note {
                p { strong { (ctx.t("Alasan (tampil untuk warga): ", "Reason (shown to the citizen): ")) } span.note #confirm-note { (n) } }
            }
            form method="post" action=(format!("/staf/permohonan/{doc}")) {
                (csrf_field(ctx))
                input type="hidden" name="to" value=(step.to.as_str());
                input type="hidden" name="note" value=(step.note.as_deref().unwrap_or(""));
                @if let Some(a) = &step.agency { input type="hidden" name="agency" value=(a); }
                input type="hidden" name="key" value=(step.key);
                input type="hidden" name="konfirmasi" value=(draft);
                div.actions {
                    button.danger[is_danger(step.to)].primary[!is_danger(step.to)] type="submit" #confirm-action autofocus {
                        @match lang {
                            Lang::Id => { "Ya, " (name.to_lowercase()) }
                            Lang::En => { "Yes, " (name.to_lowercase()) }
                        }
                    }
                    a.button.secondary #confirm-cancel href=(format!("/staf/permohonan/{doc}")) { (ctx.t("Batal, kembali", "No, go back")) }
                }
            }
        }
    }
}

async fn detail_markup(
    ctx: &Ctx,
    session: &StaffSession,
    doc: DocId,
    message: Option<Message>,
    panel: Panel,
) -> Result<Markup, UiError> {
    let store = ctx.state.store.clone();
    let (found, catalog, staff, kiosks) =
        blocking(move || Ok((store.request(&doc)?, store.catalog()?, store.staff_names()?, store.kiosk_nodes()?)))
            .await?;
    let (view, derived) = found.ok_or_else(UiError::not_found)?;
    let lang = ctx.lang;
    let offset = ctx.state.utc_offset;
    let identity = ctx.state.store.identity();
    let authors = Authors { staff, kiosks, own_node: identity.node(), own_kiosk: identity.kiosk.to_string() };
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
    // Each agency by the unit that serves this kelurahan (Kantor Camat
    // Medan Kota, not any Kantor Camat).
    let handoff: Vec<(&Agency, String)> = service
        .map(|s| {
            s.handoff
                .iter()
                .filter_map(|c| catalog.agency(c.as_str()))
                .map(|a| (a, a.unit_name(view.kelurahan.as_str())))
                .collect()
        })
        .unwrap_or_default();
    let unit_name =
        |code: &str| catalog.agency(code).map_or_else(|| code.to_owned(), |a| a.unit_name(view.kelurahan.as_str()));
    let body = html! {
        nav.crumbs { a href="/staf" { "← " (ctx.t("Antrean", "Queue")) } }
        h1 { (ctx.t("Tiket ", "Ticket ")) span #detail-ticket { (view.ticket.as_str()) } }
        @if let Some(m) = &message {
            div.alert.info[m.ok] #action-message role=(if m.ok { "status" } else { "alert" }) data-code=(m.code) { (m.text) }
        }
        dl.facts {
            dt { (ctx.t("Status", "Status")) }
            dd {
                span.badge #detail-status data-status=(derived.status.as_str()) data-conflict=(derived.has_conflict()) {
                    @if derived.has_conflict() {
                        (ctx.t("Konflik — menunggu keputusan pusat", "Conflict — waiting for a central decision"))
                    } @else if let (true, Some(a)) = (derived.taken_by_agency(), &derived.agency) {
                        (ctx.t("Sedang dikerjakan ", "Being worked on by ")) (unit_name(a))
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
            @if let Some(a) = &derived.agency { dt { (ctx.t("Instansi", "Agency")) } dd #detail-agency { (unit_name(a)) } }
            // The survey is anonymous to staff: whether it was answered,
            // never how, beside the applicant's name.
            dt { (ctx.t("Survei kepuasan (SKM)", "Satisfaction survey (SKM)")) }
            dd #detail-rated data-rated=(!view.ratings.is_empty()) {
                @if view.ratings.is_empty() { (ctx.t("Belum dinilai", "Not rated yet")) }
                @else { (ctx.t("Sudah dinilai (isinya tidak ditampilkan kepada petugas)", "Rated (what was answered is not shown to staff)")) }
            }
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
                                td { (who(lang, &c.by, &c.node, &authors, &catalog.agencies)) }
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
            @match &panel {
                Panel::Choose(chosen) => { (action_panel(ctx, &view.id.to_string(), derived.status, allowed, &handoff, chosen.as_ref())) }
                Panel::Confirm(step, draft) => { (confirm_box(ctx, &view.id.to_string(), derived.status, step, draft)) }
            }
        }
        section aria-labelledby="history-title" {
            h2 #history-title { (ctx.t("Riwayat", "History")) }
            ol.history #history {
                @for e in &derived.ordered {
                    li {
                        span.when { (local_time(e.at_ms, offset)) }
                        " · " span.by { (who(lang, &e.by, &e.node, &authors, &catalog.agencies)) }
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
    };
    let title = format!("{} {}", ctx.t("Tiket", "Ticket"), view.ticket.as_str());
    staff_page(ctx, session, &title, body).await
}

#[derive(Deserialize)]
struct DetailQuery {
    ok: Option<String>,
    /// A final step's draft, to confirm.
    konfirmasi: Option<String>,
}

async fn detail(
    ctx: Ctx,
    session: StaffSession,
    Path(raw): Path<String>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, UiError> {
    let doc = parse_doc(&raw)?;
    let message = q.ok.is_some().then(|| Message {
        text: ctx
            .t(
                "Tersimpan di kiosk. Akan dikirim ke server pada sinkron berikutnya.",
                "Saved at this kiosk. It goes to the server at the next sync.",
            )
            .to_owned(),
        ok: true,
        code: "saved",
    });
    // A confirmation is this session's draft for this request; any other
    // (gone after a restart or once confirmed, as Back finds it) shows the
    // panel again.
    let panel = match q.konfirmasi.as_deref() {
        Some(id) => match ctx.state.staff_drafts.get(id, ctx.state.clock.now()) {
            Some(StaffDraft::Confirm { session: owner, doc: d, step }) if owner == session.token_hash && d == doc => {
                Panel::Confirm(step, id.to_owned())
            }
            _ => Panel::Choose(None),
        },
        None => Panel::Choose(None),
    };
    let markup = detail_markup(&ctx, &session, doc, message, panel).await?;
    Ok(ctx.page(StatusCode::OK, markup))
}

#[derive(Debug, Deserialize)]
pub struct ActionForm {
    csrf: Option<String>,
    to: Option<String>,
    note: Option<String>,
    agency: Option<String>,
    key: Option<String>,
    /// Set by the confirmation of a final step: its draft.
    konfirmasi: Option<String>,
}

#[derive(Serialize)]
struct ActionFingerprint<'a> {
    doc: &'a str,
    to: &'a str,
    note: Option<&'a str>,
    agency: Option<&'a str>,
}

/// The action panel's step: checked (a reason where the citizen reads
/// one, without personal data), then a final step goes to its
/// confirmation first; every outcome redirects. A refusal shows the page
/// again with what was chosen and typed.
async fn action(
    ctx: Ctx,
    session: StaffSession,
    Path(raw): Path<String>,
    UiForm(form): UiForm<ActionForm>,
) -> Result<Response, UiError> {
    ctx.check_csrf(form.csrf.as_deref())?;
    let doc = parse_doc(&raw)?;
    let key = form.key.clone().unwrap_or_default();
    let attempt = async {
        let to: Status = form.to.as_deref().unwrap_or("").parse().map_err(|_| {
            crate::web::ApiError::unprocessable("action_required", "pilih salah satu langkah / choose one of the steps")
        })?;
        let note = free_text(form.note.clone(), NOTE_MAX_CHARS, "invalid_note")?;
        let agency: Option<Code> = match form.agency.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
            // Only a hand-off names an agency (the panel always sends its select).
            Some(a) if to == Status::HandedOff => Some(a.parse().map_err(|_| {
                crate::web::ApiError::unprocessable("unknown_agency", "instansi tidak dikenal / unknown agency")
            })?),
            _ => None,
        };
        if reason_required(to) {
            let store = ctx.state.store.clone();
            let found = crate::web::error::blocking(move || Ok(store.request(&doc)?)).await?;
            let (view, _) = found.ok_or_else(crate::web::ApiError::not_found)?;
            check_step_note(to, note.as_deref(), view.applicant.name.as_str())?;
        }
        let step = Step { to, note, agency: agency.as_ref().map(|a| a.as_str().to_owned()), key: key.clone() };
        if to.is_terminal() && form.konfirmasi.is_none() {
            return Ok::<_, crate::web::ApiError>(Err(step));
        }
        let doc_text = doc.to_string();
        let fingerprint = ActionFingerprint {
            doc: &doc_text,
            to: to.as_str(),
            note: step.note.as_deref(),
            agency: step.agency.as_deref(),
        };
        let idem = idem_for_key(&ctx.state.store, &key, &fingerprint)?;
        let input = EventInput { to, note: step.note.clone(), agency, by: session.staff.id.clone() };
        Ok(Ok(ctx.state.store.append_event(doc, input, Some(idem)).await?))
    };
    match attempt.await {
        Ok(Ok(ack)) => {
            if let Some(draft) = form.konfirmasi.as_deref() {
                ctx.state.staff_drafts.remove(draft);
            }
            ctx.state.sync.nudge.notify_one();
            tracing::info!(doc = %ack.id, staff = %session.staff.id, to = %ack.status, "workflow event at the console");
            Ok((ctx.jar, Redirect::to(&format!("/staf/permohonan/{}?ok=1", ack.id))).into_response())
        }
        Ok(Err(step)) => {
            let draft = StaffDraft::Confirm { session: session.token_hash.clone(), doc, step };
            let id = ctx.state.staff_drafts.put(draft, ctx.state.clock.now());
            Ok((ctx.jar, Redirect::to(&format!("/staf/permohonan/{doc}?konfirmasi={id}"))).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            tracing::info!(code = e.code, "console action refused");
            let status = e.status;
            let code = e.code;
            let msg = UiError::from(e);
            let message = Message { text: ctx.lang.t(&msg.id, &msg.en).to_owned(), ok: false, code };
            let chosen = form.to.as_deref().and_then(|t| t.parse::<Status>().ok()).map(|to| Step {
                to,
                note: form.note.clone().filter(|n| n.chars().count() <= NOTE_MAX_CHARS),
                agency: form.agency.clone(),
                key: key.clone(),
            });
            let markup = detail_markup(&ctx, &session, doc, Some(message), Panel::Choose(chosen)).await?;
            Ok(ctx.page(status, markup))
        }
        Err(e) => Err(e.into()),
    }
}
