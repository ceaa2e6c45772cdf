//! The central web app's pages: login with a session cookie, logout, and
//! kiosk health with the revoke action. Server-rendered (maud: every
//! value escaped), no script, this origin only.
//!
//! Sessions: the login form opens the same kind of session as
//! `POST /api/login` (argon2id, the same failure limits) and puts its
//! token in a `__Host-loket_session` cookie: `Secure` (the server speaks
//! only HTTPS), `HttpOnly`, `SameSite=Strict`, `Path=/`. Pages accept only
//! the cookie and the API only the bearer token, so no API call can ride
//! on a browser's cookie. Every form carries a CSRF token: an HMAC, under
//! the server's key, of the browser's `__Host-loket_csrf` cookie.

use std::collections::BTreeMap;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::{ApiError, AppState, ClientAddr, blocking};
use crate::auth::{self, Role, User};
use crate::store::{self, accounts, kiosks};
use loket_shared::Status;

const SESSION_COOKIE: &str = "__Host-loket_session";
const CSRF_COOKIE: &str = "__Host-loket_csrf";
const CSS: &str = include_str!("central.css");
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin/ringkasan") }))
        .route("/admin/ringkasan", get(overview_page))
        .route("/admin/permohonan", get(requests_page))
        .route("/admin/konflik", get(|| async { Redirect::to("/admin/permohonan?konflik=1") }))
        .route("/admin/permohonan/{id}", get(request_page).post(request_action))
        .route("/admin/permohonan/{id}/data-pribadi", post(reveal_page))
        .route("/static/central.css", get(css))
        .route("/masuk", get(login_page).post(login_post))
        .route("/keluar", post(logout))
        .route("/admin/kiosk", get(kiosk_health))
        .route("/admin/ikm", get(ikm_page))
        .route("/admin/waktu", get(time_page))
        .route("/admin/staf", get(staff_page))
        .route("/admin/staf/pelatihan", post(training_post))
        .route("/admin/libur", get(holidays_page).post(holiday_post))
        .route("/admin/waktu/pelanggaran.csv", get(|st, w, q| breaches_export(st, w, q, Export::Csv)))
        .route("/admin/waktu/pelanggaran.xlsx", get(|st, w, q| breaches_export(st, w, q, Export::Xlsx)))
        .route("/admin/ikm.csv", get(|st, w, q| ikm_export(st, w, q, Export::Csv)))
        .route("/admin/ikm.xlsx", get(|st, w, q| ikm_export(st, w, q, Export::Xlsx)))
        .route("/admin/permohonan.csv", get(|st, w, q| requests_export(st, w, q, Export::Csv)))
        .route("/admin/permohonan.xlsx", get(|st, w, q| requests_export(st, w, q, Export::Xlsx)))
        .route("/admin/permohonan/unduh-lengkap", post(requests_export_full))
        .route("/admin/kiosk/{id}/cabut", post(revoke))
        .layer(axum::middleware::from_fn(security_headers))
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")], CSS)
        .into_response()
}

async fn security_headers(req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static("max-age=31536000"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    resp
}

// ------------------------------------------------------------------ context

/// The browser's CSRF cookie (made on first visit) and its token.
struct Page {
    jar: CookieJar,
    browser: String,
    csrf: String,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Page, Self::Rejection> {
        let mut jar = CookieJar::from_headers(&parts.headers);
        let existing = jar
            .get(CSRF_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_hexdigit()));
        let browser = match existing {
            Some(v) => v,
            None => {
                let v = hex::encode(store::random_bytes::<16>());
                jar = jar.add(cookie(CSRF_COOKIE, v.clone()));
                v
            }
        };
        let csrf = st.seal.csrf_token(&browser);
        Ok(Page { jar, browser, csrf })
    }
}

fn cookie(name: &'static str, value: String) -> Cookie<'static> {
    Cookie::build((name, value)).path("/").secure(true).http_only(true).same_site(SameSite::Strict).build()
}

impl Page {
    fn check(&self, st: &AppState, token: Option<&str>) -> Result<(), PageError> {
        // A cookie made on this very request cannot have a form behind it.
        let had_cookie = self.jar.get(CSRF_COOKIE).is_some_and(|c| c.value() == self.browser);
        if had_cookie && token.is_some_and(|t| st.seal.csrf_ok(&self.browser, t)) {
            Ok(())
        } else {
            tracing::warn!("web form refused: CSRF token missing or wrong");
            Err(PageError(ApiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "formulir kedaluwarsa atau tidak sah; muat ulang halaman / the form has expired or is not valid; reload the page",
            )))
        }
    }

    fn respond(self, status: StatusCode, markup: Markup) -> Response {
        (status, self.jar, markup).into_response()
    }
}

/// A signed-in user of the web app (session cookie); without one, pages
/// send the browser to the login form.
struct WebUser {
    user: User,
    token_hash: String,
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<WebUser, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_owned())
            .filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()));
        let Some(token) = token else { return Err(Redirect::to("/masuk").into_response()) };
        let token_hash = auth::token_hash(&token);
        let db = st.db.clone();
        let hash = token_hash.clone();
        match blocking(move || Ok(db.read(|c| accounts::session_user(c, &hash, store::now_ms()))?)).await {
            Ok(Some(r)) => Ok(WebUser {
                user: User { username: r.username, role: r.role, agency: r.agency, kelurahan: r.kelurahan },
                token_hash,
            }),
            Ok(None) => Err(Redirect::to("/masuk").into_response()),
            Err(e) => Err(PageError(e).into_response()),
        }
    }
}

/// An error as a page (both languages; the stable code in small print).
struct PageError(ApiError);

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError(e)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status.is_server_error() {
            tracing::warn!(code = e.code, status = e.status.as_u16(), "page failed");
        } else {
            tracing::info!(code = e.code, status = e.status.as_u16(), "page refused");
        }
        let (id, en) = e.message.split_once(" / ").unwrap_or((e.message.as_str(), e.message.as_str()));
        let body = frame(
            "Loket",
            None,
            html! {
                h1 { (id) }
                p lang="en" { (en) }
                p.code { "Kode / code: " (e.code) }
                p { a href="/" { "Kembali / Back" } }
            },
        );
        (e.status, body).into_response()
    }
}

fn frame(title: &str, who: Option<(&User, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="id" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Loket Pusat" }
                link rel="stylesheet" href="/static/central.css";
            }
            body {
                header.top {
                    a.brand href="/" { "Loket " span { "Pusat / Central" } }
                    @if let Some((user, csrf)) = who {
                        nav {
                            @if user.role != Role::Agency { a href="/admin/ringkasan" #nav-overview { "Ringkasan" } " · " }
                            a href="/admin/permohonan" #nav-requests { "Permohonan" } " · "
                            a href="/admin/ikm" #nav-ikm { "IKM" } " · "
                            a href="/admin/waktu" #nav-time { "Waktu layanan" } " · "
                            // Staff competency is the city's and the kelurahan's, not an agency's.
                            @if user.role != Role::Agency { a href="/admin/staf" #nav-staff { "Kompetensi petugas" } " · " }
                            @if user.role == Role::Admin {
                                a href="/admin/konflik" #nav-conflicts { "Konflik" } " · "
                                a href="/admin/kiosk" #nav-kiosks { "Kesehatan kiosk" } " · "
                                a href="/admin/libur" #nav-holidays { "Hari libur" } " · "
                            }
                        }
                        span.who { (user.username.as_str()) " (" (user.role.as_str()) ")" }
                        form.inline method="post" action="/keluar" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" #logout { "Keluar / Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

// ------------------------------------------------------------------ login

fn login_markup(page: &Page, username: Option<&str>, error: Option<&str>) -> Markup {
    frame(
        "Masuk",
        None,
        html! {
            h1 { "Masuk / Log in" }
            @if let Some(e) = error { p.alert #login-error role="alert" { (e) } }
            form #login-form method="post" action="/masuk" {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="username" { "Nama pengguna / Username" }
                input #username name="username" type="text" value=[username] required maxlength="64" autocomplete="username";
                label for="password" { "Kata sandi / Password" }
                input #password name="password" type="password" required maxlength="1024" autocomplete="current-password";
                button.primary type="submit" #login { "Masuk / Log in" }
            }
        },
    )
}

async fn login_page(page: Page) -> Response {
    let markup = login_markup(&page, None, None);
    page.respond(StatusCode::OK, markup)
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

async fn login_post(
    State(st): State<AppState>,
    page: Page,
    ClientAddr(addr): ClientAddr,
    axum::Form(form): axum::Form<LoginForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    let username = form.username.unwrap_or_default();
    match super::authenticate(&st, username.clone(), form.password.unwrap_or_default(), addr).await {
        Ok(done) => {
            let max_age = time::Duration::seconds(i64::try_from(st.config.session_ttl.as_secs()).unwrap_or(i64::MAX));
            let mut session = cookie(SESSION_COOKIE, done.token);
            session.set_max_age(max_age);
            let landing = if done.record.role == Role::Agency { "/admin/permohonan" } else { "/admin/ringkasan" };
            Ok((page.jar.add(session), Redirect::to(landing)).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let (id, en) = e.message.split_once(" / ").unwrap_or((e.message.as_str(), ""));
            let text = format!("{id}. {en}");
            let status = e.status;
            let markup = login_markup(&page, Some(username.trim()), Some(&text));
            Ok(page.respond(status, markup))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: Option<String>,
}

#[derive(Deserialize)]
struct RevokeForm {
    csrf: Option<String>,
    /// The confirmation box.
    yakin: Option<String>,
}

async fn logout(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    let db = st.db.clone();
    let hash = web.token_hash.clone();
    blocking(move || Ok(db.write(|tx| accounts::delete_session(tx, &hash))?)).await?;
    tracing::info!(user = %web.user.username, "logged out (web)");
    let jar = page.jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/masuk")).into_response())
}

// ------------------------------------------------------------------ kiosk health

async fn kiosk_health(State(st): State<AppState>, page: Page, web: WebUser) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    let db = st.db.clone();
    let rows = blocking(move || Ok(db.read(kiosks::list)?)).await?;
    let now = store::now_ms();
    let offline_after_ms = i64::try_from(st.config.kiosk_offline_after.as_millis()).unwrap_or(i64::MAX);
    let body = html! {
        h1 { "Kesehatan kiosk / Kiosk health" }
        table #kiosks {
            thead { tr {
                th scope="col" { "Kiosk" }
                th scope="col" { "Kelurahan" }
                th scope="col" { "Nama / Name" }
                th scope="col" { "Kontak terakhir / Last contact" }
                th scope="col" { "Versi / Version" }
                th scope="col" { "Perubahan tertunda / Pending" }
                th scope="col" { "Status" }
                th scope="col" {}
            } }
            tbody {
                @for k in &rows {
                    @let offline = k.last_seen_at_ms.is_none_or(|t| now - t > offline_after_ms);
                    tr data-kiosk=(k.code.as_str()) .revoked[k.revoked] .offline[offline && !k.revoked] {
                        td { (k.code.as_str()) }
                        td {
                            (k.kelurahan.as_str())
                            @if let Some(w) = loket_shared::wilayah::region(k.kelurahan.as_str()) { br; (w.name) }
                        }
                        td.name { (k.name) }
                        td { @if let Some(t) = k.last_seen_at_ms { (st.human_time(t)) } @else { "—" } }
                        td { (k.version.as_deref().unwrap_or("—")) }
                        td { @if let Some(p) = k.pending_known { (p) } @else { "—" } }
                        td.status {
                            @if k.revoked { "Dicabut / Revoked" }
                            @else if offline {
                                "Luring / Offline"
                                @if let Some(t) = k.last_seen_at_ms { br; (elapsed_text(now - t)) }
                            }
                            @else { "Daring / Online" }
                        }
                        td {
                            @if !k.revoked {
                                // Revoking is for a stolen or broken kiosk and needs a new
                                // enrollment: asked twice, with no script needed.
                                details.revoke {
                                    summary { "Cabut akses… / Revoke…" }
                                    form method="post" action=(format!("/admin/kiosk/{}/cabut", k.id)) {
                                        input type="hidden" name="csrf" value=(page.csrf);
                                        label {
                                            input type="checkbox" name="yakin" value="1" required;
                                            " Kiosk ini tidak bisa sinkron lagi sampai didaftarkan ulang. / This kiosk cannot sync again until it is enrolled anew."
                                        }
                                        button.danger type="submit" { "Cabut akses / Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    let markup = frame("Kesehatan kiosk", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

async fn revoke(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<RevokeForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    if form.yakin.as_deref() != Some("1") {
        return Err(ApiError::unprocessable(
            "confirmation_required",
            "centang konfirmasi untuk mencabut akses / tick the confirmation to revoke",
        )
        .into());
    }
    if id.len() > 64 {
        return Err(ApiError::not_found().into());
    }
    let db = st.db.clone();
    let row = blocking(move || Ok(db.write(|tx| kiosks::revoke(tx, &id, store::now_ms()))?))
        .await?
        .ok_or_else(ApiError::not_found)?;
    tracing::warn!(kiosk = %row.code, id = %row.id, by = %web.user.username, "kiosk revoked (web)");
    Ok((page.jar, Redirect::to("/admin/kiosk")).into_response())
}

// ------------------------------------------------------------------ requests

fn status_label(s: Status) -> &'static str {
    match s {
        Status::Submitted => "Diajukan / Submitted",
        Status::InProgress => "Diproses / In progress",
        Status::WaitingCitizen => "Menunggu berkas warga / Waiting for the citizen",
        Status::HandedOff => "Diteruskan ke instansi / Handed off",
        Status::Completed => "Selesai / Completed",
        Status::Rejected => "Ditolak / Rejected",
        Status::Cancelled => "Dibatalkan / Cancelled",
    }
}

/// Who wrote an event, for people: the event's `by` is `citizen`, a staff
/// NIP, `admin:USER` or `agency:AGENCY:USER`.
fn who(by: &str) -> String {
    if by == "citizen" {
        return "Warga / Citizen".into();
    }
    if let Some(user) = by.strip_prefix("admin:") {
        return format!("{user} (pusat / central)");
    }
    if let Some((agency, user)) = by.strip_prefix("agency:").and_then(|r| r.split_once(':')) {
        return format!("{user} ({agency})");
    }
    format!("Petugas kelurahan / Kelurahan staff {by}")
}

fn place_name(code: &str) -> String {
    match loket_shared::wilayah::region(code) {
        Some(r) => format!("{} ({code})", r.name),
        None => code.to_owned(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    status: Option<String>,
    konflik: Option<String>,
    /// The page cursor (`crate::central::parse_cursor`).
    setelah: Option<String>,
}

/// Rows per page of the request lists.
const LIST_PAGE: u32 = 100;

async fn requests_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<ListQuery>,
) -> Result<Response, PageError> {
    let mut f = crate::central::RequestFilter { limit: LIST_PAGE, ..Default::default() };
    if let Some(s) = q.status.as_deref().filter(|s| !s.is_empty()) {
        f.status = Some(s.parse().map_err(|e| ApiError::bad_request("invalid_status", e))?);
    }
    if let Some(c) = q.setelah.as_deref().filter(|s| !s.is_empty()) {
        f.after = Some(crate::central::parse_cursor(c)?);
    }
    let conflicts = q.konflik.is_some();
    f.conflict = conflicts;
    // An agency's work list: what is with it now.
    let agency_view = web.user.role == Role::Agency && f.status.is_none();
    if agency_view {
        f.with_agency = web.user.agency.clone();
    }
    let status_filter = f.status;
    let mut rows = crate::central::query_requests(&st, &web.user, f).await?;
    let next = (rows.len() > LIST_PAGE as usize).then(|| {
        rows.truncate(LIST_PAGE as usize);
        let mut query = vec![("setelah", rows.last().map(crate::central::cursor_of).unwrap_or_default())];
        if let Some(s) = status_filter {
            query.push(("status", s.as_str().to_owned()));
        }
        if conflicts {
            query.push(("konflik", "1".to_owned()));
        }
        format!("/admin/permohonan?{}", serde_urlencoded::to_string(&query).unwrap_or_default())
    });
    let catalog = crate::central::load_catalog(&st).await?;
    let this_month = Period::from_query(None, st.config.utc_offset(), false)?;
    let title = if conflicts {
        "Konflik menunggu keputusan / Conflicts to review"
    } else if agency_view {
        "Di instansi Anda / With your agency"
    } else {
        "Permohonan / Requests"
    };
    // For an agency, whether it still waits to be taken or is being worked on.
    let row_status = |status: &str| match status.parse::<Status>() {
        Ok(Status::HandedOff) if agency_view => "Menunggu diambil / Waiting to be taken",
        Ok(Status::InProgress) if agency_view => "Dikerjakan / Being worked on",
        Ok(s) => status_label(s),
        Err(_) => "?",
    };
    let body = html! {
        h1 { (title) }
        p.downloads {
            "Unduh bulan ini (data pribadi tersamar) / Download this month (personal data masked): "
            a #requests-csv href="/admin/permohonan.csv" { "CSV" } " · " a #requests-xlsx href="/admin/permohonan.xlsx" { "XLSX" }
        }
        @if web.user.role != Role::Supervisor {
            details #full-download {
                summary { "Unduh dengan NIK dan nomor HP lengkap / Download with the full NIK and mobile number" }
                form method="post" action="/admin/permohonan/unduh-lengkap" {
                    input type="hidden" name="csrf" value=(page.csrf);
                    @if let Some(s) = status_filter { input type="hidden" name="status" value=(s.as_str()); }
                    label for="full-period" { "Periode / Period" }
                    select #full-period name="periode" {
                        @for p in Period::choices(this_month.year) { option value=(p.code()) selected[p == this_month] { (p.code()) } }
                    }
                    label for="full-format" { "Format" }
                    select #full-format name="format" { option value="csv" { "CSV" } option value="xlsx" { "XLSX" } }
                    label for="full-reason" { "Keperluan (dicatat di log audit untuk tiap permohonan) / Reason (kept in the audit log for each request)" }
                    input #full-reason type="text" name="alasan" required minlength="5" maxlength="200" autocomplete="off";
                    button type="submit" #full-download-go { "Unduh / Download" }
                    p.hint { "Paling banyak " (FULL_EXPORT_ROWS_MAX) " permohonan. / At most " (FULL_EXPORT_ROWS_MAX) " requests." }
                }
            }
        }
        @if !conflicts {
            form.filters method="get" action="/admin/permohonan" {
                label for="status" { "Status" }
                select #status name="status" {
                    option value="" selected[status_filter.is_none()] {
                        @if web.user.role == Role::Agency { "Di instansi Anda sekarang / With your agency now" } @else { "Semua / All" }
                    }
                    @for s in Status::ALL { option value=(s.as_str()) selected[status_filter == Some(s)] { (status_label(s)) } }
                }
                button.primary type="submit" { "Tampilkan / Show" }
            }
        }
        @if rows.is_empty() {
            p #empty { "Tidak ada permohonan. / No requests." }
        } @else {
            table #requests {
                thead { tr {
                    th scope="col" { "Tiket / Ticket" }
                    th scope="col" { "Kelurahan" }
                    th scope="col" { "Layanan / Service" }
                    th scope="col" { "Status" }
                    th scope="col" { "Diajukan / Filed" }
                    th scope="col" { "Langkah terakhir / Last step" }
                } }
                tbody {
                    @for (id, ticket, kel, _kiosk, service, status, created, updated, conflict) in &rows {
                        tr data-ticket=(ticket) .conflict[*conflict] {
                            td { a href=(format!("/admin/permohonan/{id}")) { (ticket) } }
                            td { (place_name(kel)) }
                            td { (catalog.service(service).map_or(service.as_str(), |s| s.name_id.as_str())) }
                            td {
                                (row_status(status))
                                @if *conflict { " " strong.bad { "Konflik" } }
                            }
                            td { (st.human_time(*created)) }
                            td { (st.human_time(*updated)) }
                        }
                    }
                }
            }
            @if let Some(href) = &next { p { a #next-page href=(href) { "Berikutnya / Next →" } } }
        }
    };
    let markup = frame(title, Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

async fn request_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
) -> Result<Response, PageError> {
    let markup = request_markup(&st, &page, &web, &raw, None, None).await?;
    Ok(page.respond(StatusCode::OK, markup))
}

/// One action offered on a request's page.
struct Action {
    /// What the form posts (`aksi`): the status, or `take`.
    key: &'static str,
    to: Status,
    /// Set on an agency's take.
    agency: Option<String>,
    label: &'static str,
}

/// The actions this user may take on this request now. The form posts
/// only the key; the server looks it up again here, so nothing beyond what
/// the page offered can be sent.
fn actions_for(user: &User, derived: &loket_shared::workflow::Derived) -> Vec<Action> {
    let plain = |to: Status, label: &'static str| Action { key: to.as_str(), to, agency: None, label };
    // Back to the kelurahan from an agency.
    let give_back = || Action {
        key: "return",
        to: Status::InProgress,
        agency: None,
        label: "Kembalikan ke kelurahan / Return to the kelurahan",
    };
    if derived.has_conflict() {
        if user.role != Role::Admin {
            return Vec::new();
        }
        // Resolving: the final status is one of the sides'.
        let mut sides: Vec<Status> = derived.conflict.iter().map(|c| c.to).collect();
        sides.sort_by_key(|s| s.as_str());
        sides.dedup();
        return sides.into_iter().map(|s| plain(s, "Tetapkan / Decide")).collect();
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
                    label: "Ambil untuk dikerjakan / Take it",
                });
            }
            actions.push(plain(Status::Completed, "Selesaikan / Complete"));
            actions.push(give_back());
            actions.push(plain(Status::Rejected, "Tolak / Reject"));
            actions
        }
        Role::Agency => Vec::new(),
        Role::Admin => {
            let mut actions: Vec<Action> = derived
                .status
                .allowed_next()
                .iter()
                .filter(|s| **s != Status::HandedOff)
                .map(|s| plain(*s, status_label(*s)))
                .collect();
            if derived.taken_by_agency() {
                actions.push(give_back());
            }
            actions
        }
    }
}

async fn request_markup(
    st: &AppState,
    page: &Page,
    web: &WebUser,
    raw: &str,
    message: Option<(&str, bool)>,
    revealed: Option<&crate::central::Personal>,
) -> Result<Markup, PageError> {
    let (view, derived, _heads) = crate::central::load_visible(st, &web.user, raw).await?;
    let catalog = crate::central::load_catalog(st).await?;
    let actions = actions_for(&web.user, &derived);
    let agency_name = |code: &str| catalog.agency(code).map_or(code.to_owned(), |a| a.name.clone());
    let body = html! {
        p { a href="/admin/permohonan" { "← Permohonan / Requests" } }
        h1 { "Tiket " span #ticket { (view.ticket.as_str()) } }
        @if let Some((text, ok)) = message {
            p.alert.ok[ok] #message role=(if ok { "status" } else { "alert" }) { (text) }
        }
        dl.facts {
            dt { "Status" }
            dd #status data-status=(derived.status.as_str()) data-conflict=(derived.has_conflict()) {
                @if derived.has_conflict() { "Konflik — menunggu keputusan / Conflict — awaiting a decision" }
                @else if let (true, Some(a)) = (derived.taken_by_agency(), &derived.agency) {
                    "Dikerjakan oleh " (agency_name(a)) " / Being worked on by " (agency_name(a))
                }
                @else { (status_label(derived.status)) }
            }
            dt { "Kelurahan" } dd { (place_name(view.kelurahan.as_str())) }
            dt { "Layanan / Service" } dd { (catalog.service(view.service.as_str()).map_or(view.service.as_str(), |s| s.name_id.as_str())) }
            dt { "Pemohon / Applicant" } dd { (view.applicant.name.as_str()) }
            @match revealed {
                Some(p) => {
                    dt { "NIK" } dd.mono #nik-full { (p.nik) }
                    dt { "Nomor HP / Mobile" } dd.mono #phone-full { (p.phone.as_deref().unwrap_or("—")) }
                }
                None => {
                    dt { "NIK" } dd.mono #nik { (view.applicant.nik.masked()) }
                }
            }
            dt { "Diajukan / Filed" } dd { (st.human_time(view.created_at_ms)) }
            @if let Some(a) = &derived.agency { dt { "Instansi / Agency" } dd { (agency_name(a)) } }
        }
        @if derived.has_conflict() {
            section #conflict .conflict-box {
                h2 { "Apa yang dilakukan tiap pihak / What each side did" }
                table {
                    thead { tr { th { "Oleh / By" } th { "Menjadi / To" } th { "Waktu / When" } th { "Catatan / Note" } } }
                    tbody {
                        @for c in &derived.conflict {
                            tr {
                                td { (who(&c.by)) }
                                td { (status_label(c.to)) @if let Some(a) = &c.agency { " → " (agency_name(a)) } }
                                td { (st.human_time(c.at_ms)) }
                                td.note { @if let Some(n) = &c.note { (n) } }
                            }
                        }
                    }
                }
            }
        }
        @if !actions.is_empty() {
            section #actions {
                h2 { @if derived.has_conflict() { "Selesaikan konflik / Resolve the conflict" } @else { "Tindakan / Actions" } }
                @for a in &actions {
                    form.action method="post" action=(format!("/admin/permohonan/{}", view.id)) data-action=(a.key) {
                        input type="hidden" name="csrf" value=(page.csrf);
                        input type="hidden" name="aksi" value=(a.key);
                        label { "Catatan / Note" textarea name="note" rows="2" maxlength="1000" {} }
                        button.primary type="submit" {
                            (a.label) @if derived.has_conflict() { ": " (status_label(a.to)) }
                        }
                    }
                }
            }
        }
        @if revealed.is_some() {
            p.alert #revealed role="status" {
                "Data lengkap ini tercatat di log audit atas nama Anda. Jangan disalin ke tempat lain. / "
                "This full view is in the audit log under your name. Do not copy it elsewhere."
            }
        } @else if web.user.role != Role::Supervisor {
            details #personal {
                summary { "Tampilkan NIK dan nomor HP lengkap / Show the full NIK and mobile number" }
                form method="post" action=(format!("/admin/permohonan/{}/data-pribadi", view.id)) {
                    input type="hidden" name="csrf" value=(page.csrf);
                    label for="reason" { "Keperluan (dicatat di log audit) / Reason (kept in the audit log)" }
                    input #reason type="text" name="alasan" required minlength="5" maxlength="200" autocomplete="off";
                    button type="submit" #reveal { "Tampilkan / Show" }
                }
            }
        }
        h2 { "Riwayat / History" }
        ol #history {
            @for e in &derived.ordered {
                li {
                    (st.human_time(e.at_ms)) " · " (who(&e.by)) " · "
                    @if let Some(f) = e.from { (status_label(f)) " → " }
                    (status_label(e.to))
                    @if let Some(a) = &e.agency { " (" (agency_name(a)) ")" }
                    @if let Some(n) = &e.note { p.note { (n) } }
                }
            }
        }
    };
    Ok(frame(&format!("Tiket {}", view.ticket.as_str()), Some((&web.user, &page.csrf)), body))
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: Option<String>,
    /// An [`Action`] key.
    aksi: Option<String>,
    note: Option<String>,
}

async fn request_action(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<ActionForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    // Only what the page offered: the same rules the API applies, plus
    // no hand-offs from here (they need an agency choice).
    let (_, derived, _) = crate::central::load_visible(&st, &web.user, &raw).await?;
    let action = actions_for(&web.user, &derived).into_iter().find(|a| Some(a.key) == form.aksi.as_deref());
    let result = match action {
        Some(a) => {
            crate::central::append_central_event(
                &st,
                &web.user,
                &raw,
                Some(a.to.as_str().to_owned()),
                form.note.clone(),
                a.agency,
            )
            .await
        }
        None => Err(ApiError::new(
            StatusCode::CONFLICT,
            "forbidden_transition",
            "tindakan ini tidak tersedia sekarang / this action is not available now",
        )),
    };
    match result {
        Ok(_) => {
            let markup = request_markup(&st, &page, &web, &raw, Some(("Tersimpan / Saved", true)), None).await?;
            Ok(page.respond(StatusCode::OK, markup))
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let text = e.message.clone();
            let status = e.status;
            let markup = request_markup(&st, &page, &web, &raw, Some((&text, false)), None).await?;
            Ok(page.respond(status, markup))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
struct RevealForm {
    csrf: Option<String>,
    alasan: Option<String>,
}

/// The request page with the applicant's full NIK and mobile number, for
/// roles that may see them, after the view is in the audit log.
async fn reveal_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    Path(raw): Path<String>,
    axum::Form(form): axum::Form<RevealForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    match crate::central::reveal_personal(&st, &web.user, &raw, form.alasan.as_deref().unwrap_or_default()).await {
        Ok(p) => {
            let markup = request_markup(&st, &page, &web, &raw, None, Some(&p)).await?;
            Ok(page.respond(StatusCode::OK, markup))
        }
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let (text, status) = (e.message.clone(), e.status);
            let markup = request_markup(&st, &page, &web, &raw, Some((&text, false)), None).await?;
            Ok(page.respond(status, markup))
        }
        Err(e) => Err(e.into()),
    }
}

// ------------------------------------------------------------------ IKM

/// A reporting period: a year (`2026`), a half (`2026-H1`), a quarter
/// (`2026-Q3`) or a month (`2026-11`), in local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Period {
    year: i32,
    /// First and last month, 1-12.
    months: (u8, u8),
}

impl Period {
    pub(crate) fn parse(s: &str) -> Option<Period> {
        let (y, rest) = match s.split_once('-') {
            Some((y, r)) => (y, Some(r)),
            None => (s, None),
        };
        let year: i32 = y.parse().ok().filter(|y| (2000..=2100).contains(y))?;
        let months = match rest {
            None => (1, 12),
            Some("H1") => (1, 6),
            Some("H2") => (7, 12),
            Some(q) if q.len() == 2 && q.starts_with('Q') => {
                let n: u8 = q[1..].parse().ok().filter(|n| (1..=4).contains(n))?;
                (3 * n - 2, 3 * n)
            }
            Some(m) if m.len() == 2 => {
                let m: u8 = m.parse().ok().filter(|m| (1..=12).contains(m))?;
                (m, m)
            }
            _ => return None,
        };
        Some(Period { year, months })
    }

    pub(crate) fn code(self) -> String {
        match self.months {
            (1, 12) => format!("{}", self.year),
            (1, 6) => format!("{}-H1", self.year),
            (7, 12) => format!("{}-H2", self.year),
            (a, b) if a == b => format!("{}-{a:02}", self.year),
            (a, _) => format!("{}-Q{}", self.year, a.div_ceil(3)),
        }
    }

    /// `[from, to)` in unix milliseconds.
    pub(crate) fn range_ms(self, offset: time::UtcOffset) -> (i64, i64) {
        let start = |year: i32, month: u8| {
            let m = time::Month::try_from(month).unwrap_or(time::Month::January);
            let d = time::Date::from_calendar_date(year, m, 1).unwrap_or(time::Date::MIN);
            i64::try_from(d.midnight().assume_offset(offset).unix_timestamp_nanos() / 1_000_000).unwrap_or(0)
        };
        let (end_year, end_month) =
            if self.months.1 == 12 { (self.year + 1, 1) } else { (self.year, self.months.1 + 1) };
        (start(self.year, self.months.0), start(end_year, end_month))
    }

    /// The period's months as `yyyymm`, inclusive (the rollups' key).
    pub(crate) fn months(self) -> (i64, i64) {
        let y = i64::from(self.year) * 100;
        (y + i64::from(self.months.0), y + i64::from(self.months.1))
    }

    /// The period a page's `periode` parameter names, or by default the
    /// current year (`whole_year`) or month, in local time.
    pub(crate) fn from_query(raw: Option<&str>, offset: time::UtcOffset, whole_year: bool) -> Result<Period, ApiError> {
        match raw.filter(|p| !p.is_empty()) {
            None => {
                let now = time::OffsetDateTime::now_utc().to_offset(offset);
                let month = u8::from(now.month());
                Ok(Period { year: now.year(), months: if whole_year { (1, 12) } else { (month, month) } })
            }
            Some(p) => Period::parse(p).ok_or_else(|| {
                ApiError::bad_request(
                    "invalid_period",
                    "periode: 2026, 2026-H1, 2026-Q3 atau 2026-11 / period: 2026, 2026-H1, 2026-Q3 or 2026-11",
                )
            }),
        }
    }

    fn choices(year: i32) -> Vec<Period> {
        let mut v =
            vec![Period { year, months: (1, 12) }, Period { year, months: (1, 6) }, Period { year, months: (7, 12) }];
        v.extend((1..=4).map(|q| Period { year, months: (3 * q - 2, 3 * q) }));
        v.extend((1..=12).map(|m| Period { year, months: (m, m) }));
        v
    }
}

#[derive(Deserialize)]
struct IkmQuery {
    periode: Option<String>,
    per: Option<String>,
}

struct IkmReport {
    period: Period,
    key: crate::central::IkmKey,
    groups: Vec<crate::central::IkmGroup>,
    total: crate::central::IkmGroup,
    names: std::collections::BTreeMap<String, String>,
}

async fn ikm_report(st: &AppState, user: &User, q: &IkmQuery) -> Result<IkmReport, PageError> {
    use crate::central::{IkmGroup, IkmKey};
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, true)?;
    let key = match q.per.as_deref().unwrap_or("kelurahan") {
        "kelurahan" => IkmKey::Kelurahan,
        "kecamatan" => IkmKey::Kecamatan,
        "layanan" | "service" => IkmKey::Service,
        _ => return Err(ApiError::bad_request("invalid_group_by", "per: kelurahan | kecamatan | layanan").into()),
    };
    let (from, to) = period.range_ms(offset);
    let groups = if crate::central::rollups_serve(user) {
        crate::central::ikm_rollup(st, user, period.months(), key).await?
    } else {
        crate::central::ikm_groups(st, user, from, to, key).await?
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
    let catalog = crate::central::load_catalog(st).await?;
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

fn nrr_text(g: &crate::central::IkmGroup, e: loket_shared::skm::Element) -> String {
    g.tally.nrr(e).map_or_else(|| "—".into(), |v| format!("{v:.3}"))
}

/// The IKM trend as inline SVG: one point per month with respondents,
/// the grade bands drawn behind.
fn trend_svg(points: &[(String, Option<f64>)]) -> Markup {
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

async fn ikm_page(
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
    let months = if crate::central::rollups_serve(&web.user) {
        crate::central::ikm_rollup(&st, &web.user, year.months(), crate::central::IkmKey::Month).await?
    } else {
        crate::central::ikm_groups(&st, &web.user, yf, yt, crate::central::IkmKey::Month).await?
    };
    let points: Vec<(String, Option<f64>)> = (1..=12)
        .map(|m| {
            let key = format!("{}-{m:02}", report.period.year);
            let v = months.iter().find(|g| g.key == key).and_then(|g| g.tally.ikm()).map(|i| i.value());
            (key, v)
        })
        .collect();
    let (from, to) = report.period.range_ms(offset);
    let comments = crate::central::ikm_comments(&st, &web.user, from, to, 30).await?;
    let per = match report.key {
        crate::central::IkmKey::Kecamatan => "kecamatan",
        crate::central::IkmKey::Service => "layanan",
        _ => "kelurahan",
    };
    let row = |g: &crate::central::IkmGroup, name: &str| {
        let ikm = g.tally.ikm();
        html! {
            tr data-key=(g.key) .insufficient[!g.sufficient()] {
                td { (g.key) } td { (name) }
                td.num { (g.tally.respondents) } td.num { (g.service_users) } td.num { (g.sample_min) }
                @for e in Element::ALL { td.num { (nrr_text(g, e)) } }
                td.num.ikm { @if let Some(i) = ikm { (format!("{:.2}", i.value())) } @else { "—" } }
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
                        option value=(p.code()) selected[p == report.period] { (p.code()) }
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
        p { "Periode " strong #period { (report.period.code()) } ". NRR per unsur (1-4), IKM = Σ NRR × 1/9 × 25. Sampel minimum: Krejcie-Morgan atas jumlah pengguna layanan." }
        div.scroll {
            table #ikm {
                thead { tr {
                    th { "Kode" } th { "Nama" } th { "Responden" } th { "Pengguna layanan" } th { "Sampel min." }
                    @for e in Element::ALL { th title=(e.info().name_id) { (e.code()) } }
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
    let markup = frame("IKM", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

/// The IKM table for download, in the columns of an SKM report.
async fn ikm_export(
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
    header.extend(["nrr_tertimbang", "ikm", "mutu", "kinerja"].map(String::from));
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
        rec.extend(Element::ALL.iter().map(|e| g.tally.nrr(*e).map_or(Cell::Empty, |v| Cell::Fixed(v, 3))));
        rec.push(ikm.map_or(Cell::Empty, |i| Cell::Fixed(i.value() / 25.0, 3)));
        rec.push(ikm.map_or(Cell::Empty, |i| Cell::Fixed(i.value(), 2)));
        rec.push(ikm.map_or(Cell::Empty, |i| Cell::Text(i.grade.to_string())));
        rec.push(ikm.map_or(Cell::Empty, |i| Cell::Text(i.grade.performance_id().to_owned())));
        rows.push(rec);
    }
    Table { name: format!("ikm-{}", report.period.code()), header, rows }.respond(format)
}

/// SLA breaches of a period for download (an auditor's spreadsheet).
async fn breaches_export(
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

/// Most rows one requests export holds (newest first); a larger period is
/// exported month by month.
const EXPORT_ROWS_MAX: u32 = 100_000;

#[derive(Deserialize)]
struct RequestsExportQuery {
    periode: Option<String>,
    status: Option<String>,
}

/// Requests filed in a period, within the user's scope, personal data
/// masked (a GET link any role may follow).
async fn requests_export(
    State(st): State<AppState>,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<RequestsExportQuery>,
    format: Export,
) -> Result<Response, PageError> {
    requests_table(&st, &web.user, &q, None).await?.respond(format)
}

/// Most rows a download with full personal data holds: it is for a work
/// list, not for copying the register.
const FULL_EXPORT_ROWS_MAX: u32 = 2_000;

#[derive(Deserialize)]
struct FullExportForm {
    csrf: Option<String>,
    alasan: Option<String>,
    periode: Option<String>,
    status: Option<String>,
    format: Option<String>,
}

/// The same rows with the applicants' full NIK and mobile number, for
/// roles that may see them: a POST (CSRF; the reason stays out of URLs and
/// logs), one audit row per request before anything is sent.
async fn requests_export_full(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::Form(form): axum::Form<FullExportForm>,
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
async fn requests_table(
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
    let rows = crate::central::export_rows(st, user, from, to, status, limit).await?;
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
        personal = crate::central::reveal_personal_many(st, user, ids, reason).await?;
    }
    let catalog = crate::central::load_catalog(st).await?;
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
                Cell::Text(st.format_time(r.created_at_ms)),
                r.finished_at_ms.map_or(Cell::Empty, |f| Cell::Text(st.format_time(f))),
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

// ------------------------------------------------------------------ downloads

#[derive(Debug, Clone, Copy)]
enum Export {
    Csv,
    Xlsx,
}

enum Cell {
    Text(String),
    Int(i64),
    /// A number shown with this many decimals.
    Fixed(f64, usize),
    Empty,
}

/// A table offered as CSV or XLSX from the same rows.
struct Table {
    name: String,
    header: Vec<String>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    fn respond(self, format: Export) -> Result<Response, PageError> {
        let (bytes, content_type, ext) = match format {
            Export::Csv => (self.csv()?, "text/csv; charset=utf-8", "csv"),
            Export::Xlsx => (self.xlsx()?, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        };
        let disposition = format!("attachment; filename=\"{}.{ext}\"", self.name);
        Ok(([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
            .into_response())
    }

    fn csv(&self) -> Result<Vec<u8>, PageError> {
        let mut w = csv::Writer::from_writer(Vec::new());
        let err = |e: csv::Error| PageError(ApiError::internal(e));
        w.write_record(&self.header).map_err(err)?;
        for row in &self.rows {
            w.write_record(row.iter().map(|c| match c {
                Cell::Text(t) => t.clone(),
                Cell::Int(n) => n.to_string(),
                Cell::Fixed(v, d) => format!("{v:.d$}"),
                Cell::Empty => String::new(),
            }))
            .map_err(err)?;
        }
        w.into_inner().map_err(|e| PageError(ApiError::internal(e.to_string())))
    }

    fn xlsx(&self) -> Result<Vec<u8>, PageError> {
        use rust_xlsxwriter::{Format, Workbook};
        let err = |e: rust_xlsxwriter::XlsxError| PageError(ApiError::internal(e));
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        sheet.set_name(self.name.chars().take(31).collect::<String>()).map_err(err)?;
        let bold = Format::new().set_bold();
        for (c, h) in self.header.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &bold).map_err(err)?;
        }
        let formats: Vec<Format> = (0..4)
            .map(|d| Format::new().set_num_format(if d == 0 { "0".to_owned() } else { format!("0.{}", "0".repeat(d)) }))
            .collect();
        for (r, row) in self.rows.iter().enumerate() {
            let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
            for (c, cell) in row.iter().enumerate() {
                let c = c as u16;
                match cell {
                    Cell::Text(t) => {
                        sheet.write_string(r, c, t).map_err(err)?;
                    }
                    Cell::Int(n) => {
                        sheet.write_number(r, c, *n as f64).map_err(err)?;
                    }
                    Cell::Fixed(v, d) => {
                        sheet.write_number_with_format(r, c, *v, &formats[(*d).min(3)]).map_err(err)?;
                    }
                    Cell::Empty => {}
                }
            }
        }
        book.save_to_buffer().map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_and_print_the_same() {
        for p in ["2026", "2026-H1", "2026-H2", "2026-Q1", "2026-Q4", "2026-01", "2026-12"] {
            assert_eq!(Period::parse(p).map(Period::code).as_deref(), Some(p));
        }
        for bad in ["26", "2026-Q5", "2026-13", "2026-H3", "2026-1", "x", "2026-Q0", "1999"] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
        let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
        let (from, to) = Period::parse("2026-Q4").unwrap().range_ms(wib);
        // 2026-10-01 00:00 WIB .. 2027-01-01 00:00 WIB
        assert_eq!(from, 1_790_787_600_000);
        assert_eq!(to, 1_798_736_400_000);
    }
}

// ------------------------------------------------------------------ overview

/// Requests per day as inline SVG bars.
fn per_day_svg(days: &[(i64, u64)], offset: time::UtcOffset) -> Markup {
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
struct OverviewQuery {
    periode: Option<String>,
    per: Option<String>,
}

async fn overview_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<OverviewQuery>,
) -> Result<Response, PageError> {
    use crate::central::{IkmKey, OverviewGroup};
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, false)?;
    let key = if q.per.as_deref() == Some("kelurahan") { IkmKey::Kelurahan } else { IkmKey::Kecamatan };
    let (from, to) = period.range_ms(offset);
    let catalog = crate::central::load_catalog(&st).await?;
    let (groups, days) = if crate::central::rollups_serve(&web.user) {
        let offset_ms = i64::from(offset.whole_seconds()) * 1000;
        let day_range = ((from + offset_ms) / 86_400_000, (to + offset_ms) / 86_400_000 - 1);
        (
            crate::central::overview_rollup(&st, &web.user, period.months(), key).await?,
            crate::central::filed_per_day_rollup(&st, &web.user, day_range).await?,
        )
    } else {
        (
            crate::central::overview_groups(&st, &web.user, from, to, key, &catalog).await?,
            crate::central::filed_per_day(&st, &web.user, from, to).await?,
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
        let db = st.db.clone();
        let rows = blocking(move || Ok(db.read(kiosks::list)?)).await?;
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
                    @for p in Period::choices(y) { option value=(p.code()) selected[p == period] { (p.code()) } }
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
            li { span.big #c-filed { (total.filed) } " diajukan / filed in " (period.code()) }
            li { span.big #c-finished { (total.finished) } " selesai / finished" }
            li { span.big #c-sla { (pct(&total)) } " dalam SLA (hari kerja) / within SLA (working days)" }
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
                    th { "Kode" } th { "Nama" } th { "Diajukan" } th { "Selesai" } th { "Dalam SLA" } th { "SLA %" }
                    th { "Terbuka" } th { "Konflik" }
                } }
                tbody {
                    @for g in &groups {
                        tr data-key=(g.key) {
                            td { (g.key) }
                            td { (loket_shared::wilayah::region(&g.key).map_or("", |r| r.name)) }
                            td.num { (g.filed) } td.num { (g.finished) } td.num { (g.within_sla) } td.num { (pct(g)) }
                            td.num { (g.open) } td.num { (g.conflicts) }
                        }
                    }
                }
                tfoot { tr {
                    td { "Total" } td { "Semua / All" }
                    td.num { (total.filed) } td.num { (total.finished) } td.num { (total.within_sla) } td.num { (pct(&total)) }
                    td.num { (total.open) } td.num { (total.conflicts) }
                } }
            }
        }
        p.code { "SLA: waktu kerja (Senin-Jumat, kecuali hari libur) dari pengajuan sampai selesai, dibanding hari kerja layanan di katalog. / SLA: working time (Monday-Friday, holidays excepted) from filing to finish, against the catalog's working days." }
    };
    let markup = frame("Ringkasan", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

// ------------------------------------------------------------------ where time is lost

/// How long ago, in calendar time: `3 hari 4 jam / 3 d 4 h`.
fn elapsed_text(ms: i64) -> String {
    let hours = ms.max(0) / 3_600_000;
    match (hours / 24, hours % 24) {
        (0, 0) => format!("{} menit / {} min", ms.max(0) / 60_000, ms.max(0) / 60_000),
        (0, h) => format!("{h} jam / {h} h"),
        (d, h) => format!("{d} hari {h} jam / {d} d {h} h"),
    }
}

fn duration_text(ms: i64) -> String {
    let hours = ms as f64 / 3_600_000.0;
    if hours < 24.0 { format!("{hours:.1} jam") } else { format!("{:.1} hari kerja", hours / 24.0) }
}

/// Median and 90th percentile (nearest rank) of a sorted slice.
fn median_p90(sorted: &[i64]) -> (i64, i64) {
    if sorted.is_empty() {
        return (0, 0);
    }
    let rank = |p: f64| sorted[((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1];
    (rank(0.5), rank(0.9))
}

#[derive(Deserialize)]
struct TimeQuery {
    periode: Option<String>,
}

struct Breach {
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
type Steps = BTreeMap<String, BTreeMap<&'static str, Vec<(i64, u64)>>>;

fn push_step(map: &mut Steps, outer: &str, status: &'static str, ms: i64, n: u64) {
    if !map.contains_key(outer) {
        map.insert(outer.to_owned(), BTreeMap::new());
    }
    map.get_mut(outer).expect("inserted above").entry(status).or_default().push((ms, n));
}

/// How many, the median and the 90th percentile (nearest rank) of a sorted
/// distribution of `(ms, how many)` runs.
fn count_median_p90(sorted: &[(i64, u64)]) -> (u64, i64, i64) {
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
const BREACHES_SHOWN: usize = 100;

/// Where time went in a period, over every request finished in it.
#[derive(Default)]
struct TimeLost {
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

async fn time_report(
    st: &AppState,
    user: &User,
    q: &TimeQuery,
    breaches_max: Option<usize>,
) -> Result<(Period, TimeLost, loket_shared::reference::Catalog), PageError> {
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, false)?;
    let (from, to) = period.range_ms(offset);
    let catalog = crate::central::load_catalog(st).await?;
    let sla: BTreeMap<String, i64> =
        catalog.services.iter().map(|s| (s.code.to_string(), i64::from(s.sla_days) * 86_400_000)).collect();
    if crate::central::city_wide(user) {
        // The whole city: the step histograms, the journeys' working times
        // and the breaches from the projections; no journey is rebuilt.
        let raw = crate::central::time_lost_city(st, period.months(), (from, to), breaches_max).await?;
        let mut t = TimeLost { finished: raw.finished, breach_count: raw.breach_count, ..TimeLost::default() };
        for (service, status, agency, ms, n) in raw.steps {
            let Some(status) = status.parse::<Status>().ok().map(Status::as_str) else { continue };
            push_step(&mut t.by_step, &service, status, ms, n);
            if !agency.is_empty() {
                push_step(&mut t.by_agency, &agency, status, ms, n);
            }
        }
        for (kelurahan, times) in raw.journeys {
            t.by_kelurahan.insert(kelurahan, times.into_iter().map(|ms| (ms, 1)).collect());
        }
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
    let report = crate::central::fold_journeys(st, user, from, to, TimeLost::default(), move |t, j| {
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

async fn time_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<TimeQuery>,
) -> Result<Response, PageError> {
    let (period, report, catalog) = time_report(&st, &web.user, &q, Some(BREACHES_SHOWN)).await?;
    let TimeLost { finished, by_step, by_agency, by_kelurahan, breach_count, breaches } = report;
    let mut slowest: Vec<(String, u64, i64, i64)> = by_kelurahan
        .iter()
        .map(|(k, v)| {
            let (n, m, p) = count_median_p90(v);
            (k.clone(), n, m, p)
        })
        .collect();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.2));
    let service_name = |code: &str| catalog.service(code).map_or(code.to_owned(), |s| s.name_id.clone());
    let body = html! {
        h1 { "Di mana waktu habis / Where time is lost" }
        form.filters method="get" action="/admin/waktu" {
            label for="periode" { "Periode / Period" }
            select #periode name="periode" {
                @for y in [period.year, period.year - 1] {
                    @for p in Period::choices(y) { option value=(p.code()) selected[p == period] { (p.code()) } }
                }
            }
            button.primary type="submit" { "Tampilkan / Show" }
        }
        p { (finished) " permohonan selesai pada " (period.code()) ". Waktu kerja (Senin-Jumat, kecuali hari libur) per status; median dan p90. / Working time (Monday-Friday, holidays excepted) per status; median and p90." }
        h2 { "Per layanan dan status / By service and status" }
        table #by-step {
            thead { tr { th { "Layanan" } th { "Status" } th { "Jumlah" } th { "Median" } th { "p90" } } }
            tbody {
                @for (service, status, v) in by_step.iter().flat_map(|(o, m)| m.iter().map(move |(s, v)| (o, s, v))) {
                    @let (n, m, p) = count_median_p90(v);
                    tr data-service=(service) data-status=(status) {
                        td { (service_name(service)) } td { (status.parse::<Status>().map_or(*status, status_label)) }
                        td.num { (n) } td.num { (duration_text(m)) } td.num { (duration_text(p)) }
                    }
                }
            }
        }
        h2 { "Di instansi / At the agencies" }
        table #by-agency {
            thead { tr { th { "Instansi" } th { "Tahap / Step" } th { "Jumlah" } th { "Median" } th { "p90" } } }
            tbody {
                @for (agency, status, v) in by_agency.iter().flat_map(|(o, m)| m.iter().map(move |(s, v)| (o, s, v))) {
                    @let (n, m, p) = count_median_p90(v);
                    tr data-agency=(agency) data-status=(status) {
                        td { (catalog.agency(agency).map_or(agency.as_str(), |a| a.name.as_str())) }
                        td { @if *status == "handed_off" { "Menunggu diambil / Waiting to be taken" } @else { "Dikerjakan / Being worked on" } }
                        td.num { (n) } td.num { (duration_text(m)) } td.num { (duration_text(p)) }
                    }
                }
            }
        }
        h2 { "Kelurahan paling lambat / Slowest kelurahan" }
        table #slowest {
            thead { tr { th { "Kelurahan" } th { "Selesai" } th { "Median" } th { "p90" } } }
            tbody {
                @for (kel, n, m, p) in slowest.iter().take(10) {
                    tr data-key=(kel) { td { (place_name(kel)) } td.num { (n) } td.num { (duration_text(*m)) } td.num { (duration_text(*p)) } }
                }
            }
        }
        h2 { "Melewati SLA / SLA breaches (" (breach_count) ")" }
        p {
            "Unduh / Download: "
            a #breaches-csv href=(format!("/admin/waktu/pelanggaran.csv?periode={}", period.code())) { "CSV" } " · "
            a #breaches-xlsx href=(format!("/admin/waktu/pelanggaran.xlsx?periode={}", period.code())) { "XLSX" }
        }
        table #breaches {
            thead { tr { th { "Tiket" } th { "Kelurahan" } th { "Layanan" } th { "Waktu kerja" } th { "SLA" } th { "Langkah terlama / Longest step" } } }
            tbody {
                @for b in &breaches {
                    tr data-ticket=(b.ticket) {
                        td { a href=(format!("/admin/permohonan/{}", b.doc_id)) { (b.ticket) } }
                        td { (place_name(&b.kelurahan)) } td { (service_name(&b.service)) }
                        td.num { (duration_text(b.working_ms)) } td.num { (duration_text(b.sla_ms)) }
                        td.longest {
                            (status_label(b.longest.0))
                            @if let Some(a) = &b.longest.1 { " (" (catalog.agency(a).map_or(a.as_str(), |x| x.name.as_str())) ")" }
                            ": " (duration_text(b.longest.2))
                        }
                    }
                }
            }
        }
    };
    let markup = frame("Waktu layanan", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

// ------------------------------------------------------------------ staff competency

/// NRR below this is below grade B ("Baik") on the SKM bands.
const NRR_GOOD: f64 = 3.0644;
/// Ratings needed before a staff member's scores are judged.
const RATED_MIN: u64 = 5;
/// The before/after window around a training.
const TRAINING_WINDOW_DAYS: i64 = 90;

fn nrr_cell(v: Option<f64>) -> Markup {
    html! {
        @match v {
            Some(v) if v < NRR_GOOD => strong.bad { (format!("{v:.2}")) },
            Some(v) => (format!("{v:.2}")),
            None => "—",
        }
    }
}

fn work_cells(w: Option<&crate::central::StaffWork>) -> Markup {
    let w = w.cloned().unwrap_or_default();
    let median = (!w.working_ms.is_empty()).then(|| median_p90(&w.working_ms).0);
    html! {
        td.num { (w.handled) }
        td.num { @if let Some(m) = median { (duration_text(m)) } @else { "—" } }
        td.num { @if let Some(p) = w.sla_percent() { (format!("{p:.0}%")) } @else { "—" } }
        td.num { (w.rated) }
        td.num { (nrr_cell(w.nrr(w.u6))) }
        td.num { (nrr_cell(w.nrr(w.u7))) }
    }
}

async fn staff_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<TimeQuery>,
) -> Result<Response, PageError> {
    if web.user.role == Role::Agency {
        return Err(ApiError::forbidden().into());
    }
    let offset = st.config.utc_offset();
    let period = Period::from_query(q.periode.as_deref(), offset, true)?;
    let (from, to) = period.range_ms(offset);
    let register = crate::central::staff_register(&st, &web.user).await?;
    let work = crate::central::staff_work(&st, &web.user, from, to, None).await?;
    let trainings = crate::central::trainings(&st).await?;
    let name_of = |nip: &str| register.iter().find(|s| s.nip == nip).map_or(nip.to_owned(), |s| s.name.clone());
    // Training needs: staff with enough ratings whose U6 or U7 is below B,
    // or who finished under 80 % within the SLA; lowest first.
    let mut needs: Vec<(&crate::central::StaffRow, &crate::central::StaffWork, f64)> = register
        .iter()
        .filter_map(|s| {
            let w = work.get(&s.nip)?;
            let low = [w.nrr(w.u6), w.nrr(w.u7)].into_iter().flatten().fold(f64::INFINITY, f64::min);
            let weak_scores = w.rated >= RATED_MIN && low < NRR_GOOD;
            let weak_sla = w.working_ms.len() >= RATED_MIN as usize && w.sla_percent().is_some_and(|p| p < 80.0);
            (weak_scores || weak_sla).then_some((s, w, if low.is_finite() { low } else { 4.0 }))
        })
        .collect();
    needs.sort_by(|a, b| a.2.total_cmp(&b.2));
    // Offices: the same by kelurahan.
    let mut offices: std::collections::BTreeMap<&str, crate::central::StaffWork> = std::collections::BTreeMap::new();
    for s in &register {
        if let Some(w) = work.get(&s.nip) {
            let o = offices.entry(s.kelurahan.as_str()).or_default();
            o.handled += w.handled;
            o.rated += w.rated;
            o.u6 += w.u6;
            o.u7 += w.u7;
            o.within_sla += w.within_sla;
            o.working_ms.extend(&w.working_ms);
        }
    }
    for o in offices.values_mut() {
        o.working_ms.sort_unstable();
    }
    let mut weak_offices: Vec<(&str, &crate::central::StaffWork)> = offices
        .iter()
        .filter(|(_, o)| {
            let low = [o.nrr(o.u6), o.nrr(o.u7)].into_iter().flatten().fold(f64::INFINITY, f64::min);
            (o.rated >= RATED_MIN && low < NRR_GOOD) || o.sla_percent().is_some_and(|p| p < 80.0)
        })
        .map(|(k, o)| (*k, o))
        .collect();
    weak_offices.sort_by(|a, b| {
        let key = |o: &crate::central::StaffWork| o.nrr(o.u6.min(o.u7)).unwrap_or(4.0);
        key(a.1).total_cmp(&key(b.1))
    });
    // Before and after each training.
    let day_ms = 86_400_000i64;
    let mut compared = Vec::new();
    for t in trainings.iter().take(50) {
        let at = i64::try_from(t.day.midnight().assume_offset(offset).unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
        let before =
            crate::central::staff_work(&st, &web.user, at - TRAINING_WINDOW_DAYS * day_ms, at, Some(t.nip.clone()))
                .await?;
        let after =
            crate::central::staff_work(&st, &web.user, at, at + TRAINING_WINDOW_DAYS * day_ms, Some(t.nip.clone()))
                .await?;
        compared.push((t, before.get(&t.nip).cloned(), after.get(&t.nip).cloned()));
    }
    let head = html! {
        th { "Ditangani" } th { "Median waktu" } th { "Dalam SLA" } th { "Dinilai" } th { "U6 Kompetensi" } th { "U7 Perilaku" }
    };
    let body = html! {
        h1 { "Kompetensi petugas / Staff competency" }
        form.filters method="get" action="/admin/staf" {
            label for="periode" { "Periode / Period" }
            select #periode name="periode" {
                @for y in [period.year, period.year - 1] {
                    @for p in Period::choices(y) { option value=(p.code()) selected[p == period] { (p.code()) } }
                }
            }
            button.primary type="submit" { "Tampilkan / Show" }
        }
        p { "U6 dan U7 dari penilaian SKM atas permohonan yang ditangani petugas; di bawah " (NRR_GOOD) " (mutu B) ditandai. Dinilai setelah minimal " (RATED_MIN) " penilaian." }
        h2 { "Kebutuhan pelatihan / Training needs" }
        @if needs.is_empty() && weak_offices.is_empty() { p #needs-empty { "Tidak ada. / None." } }
        table #needs {
            thead { tr { th { "NIP" } th { "Nama" } th { "Kelurahan" } (head) } }
            tbody {
                @for (s, w, _) in &needs {
                    tr data-nip=(s.nip) { td.mono { (s.nip) } td { (s.name) } td { (place_name(&s.kelurahan)) } (work_cells(Some(w))) }
                }
            }
        }
        h3 { "Kantor / Offices" }
        table #needs-offices {
            thead { tr { th { "Kelurahan" } (head) } }
            tbody {
                @for (k, o) in &weak_offices { tr data-key=(k) { td { (place_name(k)) } (work_cells(Some(o))) } }
            }
        }
        h2 { "Pelatihan: sebelum dan sesudah / Trainings: before and after (" (TRAINING_WINDOW_DAYS) " hari)" }
        table #trainings {
            thead { tr {
                th { "Tanggal" } th { "Petugas" } th { "Topik" } th { "Penyelenggara" }
                th { "U6 sebelum" } th { "U6 sesudah" } th { "U7 sebelum" } th { "U7 sesudah" } th { "SLA sebelum" } th { "SLA sesudah" }
            } }
            tbody {
                @for (t, before, after) in &compared {
                    @let b = before.clone().unwrap_or_default();
                    @let a = after.clone().unwrap_or_default();
                    tr data-nip=(t.nip) {
                        td { (t.day.to_string()) } td { (name_of(&t.nip)) " (" (t.nip) ")" } td { (t.topic) } td { (t.provider) }
                        td.num { (nrr_cell(b.nrr(b.u6))) } td.num { (nrr_cell(a.nrr(a.u6))) }
                        td.num { (nrr_cell(b.nrr(b.u7))) } td.num { (nrr_cell(a.nrr(a.u7))) }
                        td.num { @if let Some(p) = b.sla_percent() { (format!("{p:.0}%")) } @else { "—" } }
                        td.num { @if let Some(p) = a.sla_percent() { (format!("{p:.0}%")) } @else { "—" } }
                    }
                }
            }
        }
        @if web.user.role == Role::Admin {
            h3 { "Catat pelatihan / Record a training" }
            form #training-form method="post" action="/admin/staf/pelatihan" {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="t-nip" { "Petugas" }
                select #t-nip name="nip" required {
                    @for s in &register { option value=(s.nip) { (s.name) " (" (s.nip) ", " (place_name(&s.kelurahan)) ")" } }
                }
                label for="t-day" { "Tanggal (YYYY-MM-DD)" }
                input #t-day name="day" type="text" required maxlength="10" pattern="[0-9]{4}-[0-9]{2}-[0-9]{2}";
                label for="t-topic" { "Topik" }
                input #t-topic name="topic" type="text" required maxlength="200";
                label for="t-provider" { "Penyelenggara" }
                input #t-provider name="provider" type="text" required maxlength="200";
                button.primary type="submit" { "Simpan / Save" }
            }
        }
        h2 { "Daftar petugas / Staff register" }
        table #register {
            thead { tr { th { "NIP" } th { "Nama" } th { "Kelurahan" } th { "Peran" } th { "Aktif" } (head) } }
            tbody {
                @for s in &register {
                    tr data-nip=(s.nip) {
                        td.mono { (s.nip) } td { (s.name) } td { (place_name(&s.kelurahan)) } td { (s.role) }
                        td { @if s.active { "ya" } @else { "tidak" } }
                        (work_cells(work.get(&s.nip)))
                    }
                }
            }
        }
    };
    let markup = frame("Kompetensi petugas", Some((&web.user, &page.csrf)), body);
    Ok(page.respond(StatusCode::OK, markup))
}

#[derive(Deserialize)]
struct TrainingForm {
    csrf: Option<String>,
    nip: Option<String>,
    day: Option<String>,
    topic: Option<String>,
    provider: Option<String>,
}

async fn training_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::Form(form): axum::Form<TrainingForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let nip: loket_shared::StaffId =
        form.nip.as_deref().unwrap_or("").trim().parse().map_err(|e| ApiError::unprocessable("invalid_nip", e))?;
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    let day = time::Date::parse(form.day.as_deref().unwrap_or("").trim(), &fmt)
        .map_err(|_| ApiError::unprocessable("invalid_date", "tanggal YYYY-MM-DD / date as YYYY-MM-DD"))?;
    let text = |v: Option<String>, field: &'static str| -> Result<String, ApiError> {
        let v = v.unwrap_or_default().trim().to_owned();
        if v.is_empty() || v.chars().count() > 200 || v.chars().any(char::is_control) {
            return Err(ApiError::unprocessable(
                field,
                "1-200 huruf tanpa karakter kendali / 1-200 characters, no control characters",
            ));
        }
        Ok(v)
    };
    let topic = text(form.topic, "invalid_topic")?;
    let provider = text(form.provider, "invalid_provider")?;
    crate::central::record_training(
        &st,
        &web.user,
        crate::central::Training { nip: nip.to_string(), day, topic, provider },
    )
    .await?;
    tracing::info!(nip = %nip, by = %web.user.username, "training recorded");
    Ok((page.jar, Redirect::to("/admin/staf")).into_response())
}

// ------------------------------------------------------------------ holidays

#[derive(Deserialize)]
struct HolidaysQuery {
    tahun: Option<String>,
}

/// The days offices are closed, which the SLA does not count: the fixed
/// national holidays come with the catalog; an admin adds the movable ones
/// and cuti bersama from each year's joint decree.
async fn holidays_page(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::extract::Query(q): axum::extract::Query<HolidaysQuery>,
) -> Result<Response, PageError> {
    web.user.require(Role::Admin)?;
    holidays_markup(&st, page, &web, q.tahun.as_deref(), None).await
}

async fn holidays_markup(
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
    let catalog = crate::central::load_catalog(st).await?;
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
struct HolidayForm {
    csrf: Option<String>,
    tanggal: Option<String>,
    nama: Option<String>,
    hapus: Option<String>,
}

async fn holiday_post(
    State(st): State<AppState>,
    page: Page,
    web: WebUser,
    axum::Form(form): axum::Form<HolidayForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
    let outcome = async {
        let date = crate::central::parse_holiday_date(form.tanggal.as_deref().unwrap_or_default())?;
        let name = if form.hapus.is_some() { None } else { Some(form.nama.clone().unwrap_or_default()) };
        crate::central::set_holiday(&st, date, name).await.map(|v| (date, v))
    }
    .await;
    match outcome {
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
