//! The central web app: server-rendered pages (maud: every value
//! escaped), no script, charts as inline SVG, this origin only.
//!
//! Here: the routes, security headers, the session and CSRF extractors,
//! the language choice, error pages, login and logout, and what several
//! pages share (labels, reporting periods, durations, CSV/XLSX tables).
//! `site` is the frame every page sits in (the government's name and
//! crest, the menu, the footer) and the privacy notice. Each page family
//! has its module: `overview`, `ikm` (the SKM report), `followups` (its
//! follow-up plans), `time_lost`, `staff`, `requests`
//! (lists, a request's page, the agency portal, downloads), `complaints`
//! (the list, a complaint's page and its steps), `complaint_figures`
//! (complaints per office and service, themes, U8; downloads),
//! `kiosk_health`, `holidays`, `publish` (the IKM to the kiosks), `users`
//! (disabling accounts); `charts` draws the SVG charts.
//!
//! Language: one at a time, Bahasa Indonesia unless the browser's
//! `__Host-loket_lang` cookie says `en` (set by `/bahasa/{id|en}`, the
//! link in every page's header). Pages pick their words with
//! [`Page::t`]; downloads keep their column names whatever the language
//! (they are read by machines).
//!
//! Sessions: the login form opens the same kind of session as
//! `POST /api/login` (argon2id, the same failure limits) and puts its
//! token in a `__Host-loket_session` cookie: `Secure` (the server speaks
//! only HTTPS), `HttpOnly`, `SameSite=Strict`, `Path=/`. Pages accept only
//! the cookie and the API only the bearer token, so no API call can ride
//! on a browser's cookie. Every form carries a CSRF token: an HMAC, under
//! the server's key, of the browser's `__Host-loket_csrf` cookie.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use loket_node::web::SecurityHeaders;
use loket_node::web::csrf::{Browser, CsrfSpec};
use loket_shared::Status;
use maud::{Markup, html};
use serde::Deserialize;

use super::{ApiError, AppState, ClientAddr, error};
use crate::config::Config;
use crate::ops::auth::{Role, User};
use crate::store;

mod charts;
mod complaint_figures;
mod complaints;
mod followups;
mod holidays;
mod ikm;
mod kiosk_health;
mod overview;
mod publish;
mod requests;
mod site;
mod staff;
/// The staff page's figure formatting, for the router-level tests.
#[cfg(test)]
pub(crate) mod staff_figures {
    pub(crate) use super::staff::{nrr_cell, nrr_text, percent_text, sla_cell};
}
mod time_lost;
mod users;

use complaint_figures::{figures_export, figures_page};
pub(crate) use complaint_figures::{load_figures as complaint_figures, working_days};
use complaints::*;
use followups::*;
use holidays::*;
use ikm::*;
use kiosk_health::*;
use overview::*;
pub(crate) use publish::publish as publish_ikm;
use publish::{publish_page, publish_post};
use requests::*;
use site::{frame, set_language};
use staff::*;
use time_lost::*;
use users::*;

const SESSION_COOKIE: &str = "__Host-loket_session";
/// The CSRF cookie and the MAC domain of the tokens, under the seal key
/// (`HMAC-SHA256(key, "loket-web-csrf:" || browser id)`, as before
/// loket-node: forms open across an upgrade still submit).
const CSRF: CsrfSpec = CsrfSpec { cookie: "__Host-loket_csrf", domain: "loket-web-csrf:" };
/// The language the browser chose (`id` or `en`; absent: `id`).
const LANG_COOKIE: &str = "__Host-loket_lang";
const CSS: &str = include_str!("../central.css");
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";
/// The pages are served only over HTTPS: HSTS too.
const SECURITY_HEADERS: SecurityHeaders = SecurityHeaders { csp: CSP, hsts: true };

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin/ringkasan") }))
        .route("/admin/ringkasan", get(overview_page))
        .route("/admin/permohonan", get(requests_page))
        .route("/admin/konflik", get(|| async { Redirect::to("/admin/permohonan?konflik=1") }))
        .route("/admin/permohonan/{id}", get(request_page).post(request_action))
        .route("/admin/permohonan/{id}/data-pribadi", post(reveal_page))
        .route("/static/central.css", get(css))
        .route("/static/lambang", get(site::crest))
        .route("/bahasa/{lang}", get(set_language))
        .route("/privasi", get(site::privacy_page))
        .route("/masuk", get(login_page).post(login_post))
        .route("/keluar", post(logout))
        .route("/admin/kiosk", get(kiosk_health))
        .route("/admin/pengaduan", get(complaints_page))
        .route("/admin/pengaduan/angka", get(figures_page))
        .route("/admin/pengaduan/angka.csv", get(|st, w, q| figures_export(st, w, q, Export::Csv)))
        .route("/admin/pengaduan/angka.xlsx", get(|st, w, q| figures_export(st, w, q, Export::Xlsx)))
        .route("/admin/pengaduan/{id}", get(complaint_page).post(complaint_step))
        .route("/admin/ikm", get(ikm_page))
        .route("/admin/ikm/terbit", get(publish_page).post(publish_post))
        .route("/admin/ikm/tindak-lanjut", get(followups_page).post(plan_create))
        .route("/admin/ikm/tindak-lanjut/{id}", post(plan_update))
        .route("/admin/waktu", get(time_page))
        .route("/admin/staf", get(staff_page))
        .route("/admin/staf/pelatihan", post(training_post))
        .route("/admin/libur", get(holidays_page).post(holiday_post))
        .route("/admin/libur/cuti", post(holidays::cuti_post))
        .route("/admin/libur/impor", post(holidays::import_post))
        .route("/admin/libur/jam", post(holidays::hours_post))
        .route("/admin/waktu/pelanggaran.csv", get(|st, w, q| breaches_export(st, w, q, Export::Csv)))
        .route("/admin/waktu/pelanggaran.xlsx", get(|st, w, q| breaches_export(st, w, q, Export::Xlsx)))
        .route("/admin/ikm.csv", get(|st, w, q| ikm_export(st, w, q, Export::Csv)))
        .route("/admin/ikm.xlsx", get(|st, w, q| ikm_export(st, w, q, Export::Xlsx)))
        .route("/admin/permohonan.csv", get(|st, w, q| requests_export(st, w, q, Export::Csv)))
        .route("/admin/permohonan.xlsx", get(|st, w, q| requests_export(st, w, q, Export::Xlsx)))
        .route("/admin/permohonan/unduh-lengkap", post(requests_export_full))
        .route("/admin/kiosk/{id}/cabut", post(revoke))
        .route("/admin/pengguna", get(users_page))
        .route("/admin/pengguna/{username}", post(account_post))
        .layer(axum::middleware::from_fn_with_state(SECURITY_HEADERS, loket_node::web::security_headers))
        .layer(axum::middleware::from_fn_with_state(state.clone(), error_pages))
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")], CSS)
        .into_response()
}

// ------------------------------------------------------------------ language

/// The language of a page: one at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Lang {
    #[default]
    Id,
    En,
}

impl Lang {
    /// Picks the Bahasa Indonesia or the English text.
    pub(crate) fn t<'a>(self, id: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }

    /// The `lang` attribute and the cookie's value.
    pub(crate) fn code(self) -> &'static str {
        self.t("id", "en")
    }

    fn other(self) -> Lang {
        match self {
            Lang::Id => Lang::En,
            Lang::En => Lang::Id,
        }
    }

    /// What the request's cookie chose.
    fn of(headers: &HeaderMap) -> Lang {
        match CookieJar::from_headers(headers).get(LANG_COOKIE).map(Cookie::value) {
            Some("en") => Lang::En,
            _ => Lang::Id,
        }
    }

    /// One language of a message written `Bahasa Indonesia / English`
    /// (the API's error messages); a message in one language as it is.
    pub(crate) fn pick(self, both: &str) -> &str {
        match both.split_once(" / ") {
            Some((id, en)) => self.t(id, en),
            None => both,
        }
    }
}

// ------------------------------------------------------------------ context

/// What the frame of any page needs: the language, where the page is (for
/// the language switch to return to) and the server's configuration (the
/// footer's contacts).
#[derive(Clone)]
struct View {
    lang: Lang,
    /// The path and query a language switch returns to.
    back: String,
    config: Arc<Config>,
}

impl View {
    fn of(parts_method: &Method, uri: &axum::http::Uri, headers: &HeaderMap, config: Arc<Config>) -> View {
        View { lang: Lang::of(headers), back: back_path(parts_method, uri), config }
    }
}

/// Where the language switch of a page returns: the page itself for a
/// GET; after a form, the page the form was on (a POST-only path would
/// answer 405).
fn back_path(method: &Method, uri: &axum::http::Uri) -> String {
    if method == Method::GET {
        return uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
    }
    let path = uri.path();
    for tail in ["/cuti", "/impor", "/jam", "/data-pribadi", "/pelatihan", "/cabut"] {
        if let Some(page) = path.strip_suffix(tail) {
            return match page {
                // A kiosk's revocation was posted from the kiosk list.
                p if p.starts_with("/admin/kiosk/") => "/admin/kiosk".to_owned(),
                p => p.to_owned(),
            };
        }
    }
    match path {
        "/keluar" => "/masuk".to_owned(),
        p if p.starts_with("/admin/pengguna/") => "/admin/pengguna".to_owned(),
        "/admin/permohonan/unduh-lengkap" => "/admin/permohonan".to_owned(),
        p if p.starts_with("/admin/ikm/tindak-lanjut/") => "/admin/ikm/tindak-lanjut".to_owned(),
        p => p.to_owned(),
    }
}

/// The browser's CSRF cookie (made on first visit) and its token, and
/// the page's language.
struct Page {
    jar: CookieJar,
    browser: Browser,
    csrf: String,
    view: View,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Page, Self::Rejection> {
        let (jar, browser) = CSRF.browser(CookieJar::from_headers(&parts.headers), true);
        let csrf = CSRF.token(st.seal.csrf_key(), &browser);
        let view = View::of(&parts.method, &parts.uri, &parts.headers, st.config.clone());
        Ok(Page { jar, browser, csrf, view })
    }
}

/// A cookie of the web app: `Secure` always (the server speaks only HTTPS).
fn cookie(name: &'static str, value: String) -> Cookie<'static> {
    loket_node::web::cookie(name, value, true)
}

impl Page {
    /// Picks the Bahasa Indonesia or the English text for this page.
    fn t<'a>(&self, id: &'a str, en: &'a str) -> &'a str {
        self.view.lang.t(id, en)
    }

    fn lang(&self) -> Lang {
        self.view.lang
    }

    /// Refuses a form without this browser's CSRF token; a browser whose
    /// cookie was made on this very request has no form behind it.
    fn check(&self, st: &AppState, token: Option<&str>) -> Result<(), PageError> {
        if CSRF.verify(st.seal.csrf_key(), &self.browser, token) {
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

    /// A page of a signed-in user in the frame (menu, who, logout).
    fn frame(&self, title: &str, user: &User, body: Markup) -> Markup {
        frame(&self.view, title, Some((user, &self.csrf)), body)
    }

    fn respond(self, status: StatusCode, markup: Markup) -> Response {
        (status, self.jar, markup).into_response()
    }
}

/// A signed-in user of the web app (session cookie); without one, pages
/// send the browser to the login form.
struct WebUser {
    user: User,
    /// The session token (from its cookie), to end it on logout.
    token: String,
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<WebUser, Response> {
        let jar = CookieJar::from_headers(&parts.headers);
        let token = jar.get(SESSION_COOKIE).and_then(|c| loket_node::token::parse_token(c.value()));
        let Some(token) = token else { return Err(Redirect::to("/masuk").into_response()) };
        match crate::ops::auth::session_user(&st.db, &token).await {
            Ok(Some(user)) => Ok(WebUser { user, token }),
            Ok(None) => Err(Redirect::to("/masuk").into_response()),
            Err(e) => Err(PageError::from(e).into_response()),
        }
    }
}

/// A form body whose rejection is an error page (`invalid_form`, 413
/// `body_too_large`), never axum's text, which can quote what was sent.
#[derive(FromRequest)]
#[from_request(via(axum::Form), rejection(PageError))]
struct PageForm<T>(T);

/// An error as a page, in the browser's language, the stable code in
/// small print. Handlers return it without knowing the request; the
/// response carries the error to [`error_pages`], which writes the page.
struct PageError(ApiError);

impl From<FormRejection> for PageError {
    fn from(e: FormRejection) -> PageError {
        PageError(ApiError::from(e))
    }
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError(e)
    }
}

impl From<crate::ops::OpError> for PageError {
    fn from(e: crate::ops::OpError) -> PageError {
        PageError(e.into())
    }
}

/// The error an error page is to show (a response extension).
#[derive(Clone)]
struct ErrorPage {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = self.0;
        if e.status.is_server_error() {
            tracing::warn!(code = e.code, status = e.status.as_u16(), "page failed");
        } else {
            tracing::info!(code = e.code, status = e.status.as_u16(), "page refused");
        }
        // Written by `error_pages`; this text only if that layer is absent.
        let mut resp = (e.status, format!("{}\n{}", e.message, e.code)).into_response();
        resp.extensions_mut().insert(ErrorPage { status: e.status, code: e.code, message: e.message });
        resp
    }
}

/// Writes the page of an error a handler returned, in the language of the
/// request (which the handler's error did not know).
async fn error_pages(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let view = View::of(req.method(), req.uri(), req.headers(), st.config.clone());
    let resp = next.run(req).await;
    let Some(e) = resp.extensions().get::<ErrorPage>().cloned() else { return resp };
    let mut page = (e.status, error_markup(&view, e.code, &e.message)).into_response();
    // Keep what the handler set besides its body (the security headers
    // come from the inner layer).
    for (name, value) in resp.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            page.headers_mut().insert(name.clone(), value.clone());
        }
    }
    page
}

fn error_markup(view: &View, code: &str, message: &str) -> Markup {
    let lang = view.lang;
    frame(
        view,
        lang.t("Terjadi kesalahan", "Something went wrong"),
        None,
        html! {
            h1 #error-message { (lang.pick(message)) }
            p.code { (lang.t("Kode", "Code")) ": " span #error-code { (code) } }
            p { a href="/" { (lang.t("Kembali ke halaman utama", "Back to the main page")) } }
        },
    )
}

/// What an unknown URL gets (the router's fallback): a page for a browser
/// (`Accept: text/html`), in its language, the JSON error for the API and
/// anything else.
pub(crate) async fn not_found(State(st): State<AppState>, req: Request) -> Response {
    let wants_html =
        req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if req.uri().path().starts_with("/api/") || !wants_html {
        return ApiError::not_found().into_response();
    }
    let view = View::of(req.method(), req.uri(), req.headers(), st.config.clone());
    let page = error_markup(&view, "not_found", "Halaman ini tidak ada. / There is no such page.");
    let mut resp = (StatusCode::NOT_FOUND, page).into_response();
    SECURITY_HEADERS.apply(resp.headers_mut());
    resp
}

/// A central role in words.
fn role_label(lang: Lang, role: Role) -> &'static str {
    match role {
        Role::Admin => lang.t("Admin Pemko", "City administrator"),
        Role::Supervisor => lang.t("Pengawas", "Supervisor"),
        Role::Agency => lang.t("Petugas instansi", "Agency officer"),
    }
}

// ------------------------------------------------------------------ login

fn login_markup(page: &Page, error: Option<&str>) -> Markup {
    frame(
        &page.view,
        page.t("Masuk", "Log in"),
        None,
        html! {
            h1 { (page.t("Masuk ke Loket Pusat", "Log in to Loket Central")) }
            p { (page.t(
                "Untuk admin Pemerintah Kota Medan, pengawas kelurahan dan petugas instansi. Warga tidak perlu masuk: permohonan dan penilaian dibuat di kiosk kelurahan.",
                "For the City of Medan's administrators, kelurahan supervisors and agency officers. Citizens need no login: requests and ratings are made at the kelurahan's kiosk.",
            )) }
            @if let Some(e) = error { p.alert #login-error role="alert" { (e) } }
            form #login-form method="post" action="/masuk" {
                input type="hidden" name="csrf" value=(page.csrf);
                label for="username" { (page.t("Nama pengguna", "Username")) }
                input #username name="username" type="text" required maxlength="64" autocomplete="username";
                label for="password" { (page.t("Kata sandi", "Password")) }
                input #password name="password" type="password" required maxlength="1024" autocomplete="current-password";
                button.primary type="submit" #login { (page.t("Masuk", "Log in")) }
            }
        },
    )
}

async fn login_page(page: Page) -> Response {
    let markup = login_markup(&page, None);
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
    PageForm(form): PageForm<LoginForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    let username = form.username.unwrap_or_default();
    match super::authenticate(&st, username, form.password.unwrap_or_default(), addr).await {
        Ok(done) => {
            let max_age = time::Duration::seconds(i64::try_from(st.config.session_ttl.as_secs()).unwrap_or(i64::MAX));
            let mut session = cookie(SESSION_COOKIE, done.token);
            session.set_max_age(max_age);
            let landing = if done.record.role == Role::Agency { "/admin/permohonan" } else { "/admin/ringkasan" };
            Ok((page.jar.add(session), Redirect::to(landing)).into_response())
        }
        Err(e) if e.status.is_client_error() => {
            let text = page.lang().pick(&e.message).to_owned();
            let status = e.status;
            // The name typed is not filled in again: it may be the password.
            let markup = login_markup(&page, Some(&text));
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
    PageForm(form): PageForm<CsrfForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    crate::ops::auth::logout(&st.db, &web.token).await?;
    tracing::info!(user = %web.user.username, "logged out (web)");
    let jar = page.jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    Ok((jar, Redirect::to("/masuk")).into_response())
}

// ------------------------------------------------------------------ requests

/// A request's status in words.
fn status_label(lang: Lang, s: Status) -> &'static str {
    match s {
        Status::Submitted => lang.t("Diajukan", "Submitted"),
        Status::InProgress => lang.t("Diproses", "In progress"),
        Status::WaitingCitizen => lang.t("Menunggu berkas warga", "Waiting for the citizen"),
        Status::HandedOff => lang.t("Diteruskan ke instansi", "Handed to an agency"),
        Status::Completed => lang.t("Selesai", "Completed"),
        Status::Rejected => lang.t("Ditolak", "Rejected"),
        Status::Cancelled => lang.t("Dibatalkan", "Cancelled"),
    }
}

/// A status as a tag: its words, and a colour that only repeats them.
fn status_tag(lang: Lang, s: Status) -> Markup {
    html! { span.tag.(format!("tag-{}", s.as_str())) data-status=(s.as_str()) { (status_label(lang, s)) } }
}

/// A tag of the page's own kind (`ok`, `warn`, `bad`, `muted`, `info`):
/// words first, colour second.
fn tag(kind: &str, text: &str) -> Markup {
    html! { span.tag.(format!("tag-{kind}")) { (text) } }
}

/// An IKM grade as a tag: the letter and its words (`B Baik`).
fn grade_tag(lang: Lang, g: loket_shared::skm::Grade) -> Markup {
    use loket_shared::skm::Grade;
    let kind = match g {
        Grade::A | Grade::B => "ok",
        Grade::C => "warn",
        Grade::D => "bad",
    };
    html! { span.tag.(format!("tag-{kind}")) data-grade=(g.to_string()) { (g.to_string()) " " (lang.t(g.performance_id(), g.performance_en())) } }
}

/// What an empty table would show, said instead of an empty table.
fn empty_state(id: &str, text: &str) -> Markup {
    html! { p.empty id=(id) { (text) } }
}

/// Who wrote an event, for people: the event's `by` is `citizen`, a staff
/// NIP (named from the kelurahan's roster, with the kiosk whose actor
/// wrote it: the two kiosks of one office are told apart),
/// `admin:USER` or `agency:AGENCY:USER`.
fn who(lang: Lang, authors: &crate::ops::central::Authors, by: &str, node: &str) -> String {
    if by == "citizen" {
        return lang.t("Warga", "Citizen").into();
    }
    if let Some(user) = by.strip_prefix("admin:") {
        return format!("{user} ({})", lang.t("pusat", "central"));
    }
    if let Some((agency, user)) = by.strip_prefix("agency:").and_then(|r| r.split_once(':')) {
        return format!("{user} ({agency})");
    }
    let kiosk = authors.kiosks.get(node).map_or("kiosk ?", String::as_str);
    match authors.staff.get(by) {
        Some(name) => format!("{name} · {kiosk}"),
        None => format!("{} {by} · {kiosk}", lang.t("Petugas kelurahan", "Kelurahan staff")),
    }
}

fn place_name(code: &str) -> String {
    match loket_shared::wilayah::region(code) {
        Some(r) => format!("{} ({code})", r.name),
        None => code.to_owned(),
    }
}

/// A service's name in the page's language (its code if the catalog no
/// longer has it).
fn service_name(lang: Lang, catalog: &loket_shared::reference::Catalog, code: &str) -> String {
    match catalog.service(code) {
        Some(s) => lang.t(&s.name_id, &s.name_en).to_owned(),
        None => code.to_owned(),
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

    /// How an official writes the period: `Tahun 2026`, `Semester I 2026`,
    /// `Triwulan III 2026`, `November 2026`. Only for people: URLs, forms
    /// and file names keep [`Period::code`] (the external interface).
    pub(crate) fn label(self) -> String {
        const MONTHS: [&str; 12] = [
            "Januari",
            "Februari",
            "Maret",
            "April",
            "Mei",
            "Juni",
            "Juli",
            "Agustus",
            "September",
            "Oktober",
            "November",
            "Desember",
        ];
        const ROMAN: [&str; 4] = ["I", "II", "III", "IV"];
        let y = self.year;
        match self.months {
            (1, 12) => format!("Tahun {y}"),
            (1, 6) => format!("Semester I {y}"),
            (7, 12) => format!("Semester II {y}"),
            (a, b) if a == b => format!("{} {y}", MONTHS[usize::from(a.clamp(1, 12)) - 1]),
            (a, _) => format!("Triwulan {} {y}", ROMAN[usize::from(a.div_ceil(3).clamp(1, 4)) - 1]),
        }
    }

    /// The period in the page's language: [`Period::label`] in Bahasa
    /// Indonesia, `Year 2026`, `First half 2026`, `Q3 2026`,
    /// `November 2026` in English.
    pub(crate) fn label_in(self, lang: Lang) -> String {
        if lang == Lang::Id {
            return self.label();
        }
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        let y = self.year;
        match self.months {
            (1, 12) => format!("Year {y}"),
            (1, 6) => format!("First half {y}"),
            (7, 12) => format!("Second half {y}"),
            (a, b) if a == b => format!("{} {y}", MONTHS[usize::from(a.clamp(1, 12)) - 1]),
            (a, _) => format!("Q{} {y}", a.div_ceil(3).clamp(1, 4)),
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

/// The period picker: one group per year, newest first (the year, its
/// halves, quarters and months), so a year's 19 periods sit under its
/// heading instead of in one long list. `years` are offered; the selected
/// period's year is always among them.
fn period_select(lang: Lang, id: &str, selected: Period, years: &[i32]) -> Markup {
    let mut years = years.to_vec();
    if !years.contains(&selected.year) {
        years.push(selected.year);
    }
    years.sort_unstable_by(|a, b| b.cmp(a));
    years.dedup();
    html! {
        select id=(id) name="periode" {
            @for y in &years {
                optgroup label=(format!("{} {y}", lang.t("Tahun", "Year"))) {
                    @for p in Period::choices(*y) {
                        option value=(p.code()) selected[p == selected] { (p.label_in(lang)) }
                    }
                }
            }
        }
    }
}

/// The years a report's picker offers: the one shown and the one before.
fn report_years(shown: Period) -> [i32; 2] {
    [shown.year, shown.year - 1]
}

// ------------------------------------------------------------------ where time is lost

/// How long ago, in calendar time: `3 hari 4 jam` (`3 d 4 h`).
fn elapsed_text(lang: Lang, ms: i64) -> String {
    let hours = ms.max(0) / 3_600_000;
    match (hours / 24, hours % 24) {
        (0, 0) => format!("{} {}", ms.max(0) / 60_000, lang.t("menit", "min")),
        (0, h) => format!("{h} {}", lang.t("jam", "h")),
        (d, h) => format!("{d} {} {h} {}", lang.t("hari", "d"), lang.t("jam", "h")),
    }
}

/// Working time as working days of the office's service hours (a whole
/// day of service hours is 1.00, whatever their length).
fn duration_text(lang: Lang, ms: i64) -> String {
    format!("{:.2} {}", ms as f64 / loket_shared::sla::DAY_MS as f64, lang.t("hari kerja", "working days"))
}

#[derive(Deserialize)]
struct TimeQuery {
    periode: Option<String>,
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
    /// An exact decimal already written out (`3.5322`), with its number of
    /// decimals: the CSV prints these digits, the XLSX a number shown with
    /// as many decimals.
    Decimal(String, usize),
    /// A local date and time: `2026-11-28 20:10:21` in CSV (which
    /// spreadsheets read as a date), a real date cell in XLSX.
    Time(time::PrimitiveDateTime),
    Empty,
}

/// A text cell for CSV. A spreadsheet opening a CSV runs a cell that
/// starts with `=`, `+`, `-` or `@` (or a tab or CR before one) as a
/// formula, and names, notes and agencies come from kiosks: such a cell
/// gets a `'` first (OWASP's advice), which spreadsheets read as "this is
/// text" and show without it. Numbers are written by their own cells, so
/// a negative number stays a number.
fn csv_text(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() }
}

/// A table offered as CSV or XLSX from the same rows. XLSX text cells are
/// string cells, which no spreadsheet evaluates, so they keep the text as
/// it is.
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
        let err = |e: csv::Error| PageError(error::internal(e));
        w.write_record(self.header.iter().map(|h| csv_text(h))).map_err(err)?;
        for row in &self.rows {
            w.write_record(row.iter().map(|c| match c {
                Cell::Text(t) => csv_text(t),
                Cell::Int(n) => n.to_string(),
                Cell::Fixed(v, d) => format!("{v:.d$}"),
                Cell::Decimal(text, _) => text.clone(),
                Cell::Time(t) => format!(
                    "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                    t.year(),
                    u8::from(t.month()),
                    t.day(),
                    t.hour(),
                    t.minute(),
                    t.second()
                ),
                Cell::Empty => String::new(),
            }))
            .map_err(err)?;
        }
        w.into_inner().map_err(|e| PageError(error::internal(e.to_string())))
    }

    fn xlsx(&self) -> Result<Vec<u8>, PageError> {
        Table::workbook(std::slice::from_ref(self))
    }

    /// Several tables as one XLSX, a sheet each (named after the table,
    /// cut to the 31 characters a sheet name may have), as `NAME.xlsx`.
    fn respond_workbook(name: &str, tables: &[Table]) -> Result<Response, PageError> {
        let bytes = Table::workbook(tables)?;
        let disposition = format!("attachment; filename=\"{name}.xlsx\"");
        let content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
        Ok(([(header::CONTENT_TYPE, content_type.to_owned()), (header::CONTENT_DISPOSITION, disposition)], bytes)
            .into_response())
    }

    fn workbook(tables: &[Table]) -> Result<Vec<u8>, PageError> {
        let err = |e: rust_xlsxwriter::XlsxError| PageError(error::internal(e));
        let mut book = rust_xlsxwriter::Workbook::new();
        for table in tables {
            table.sheet(&mut book)?;
        }
        book.save_to_buffer().map_err(err)
    }

    fn sheet(&self, book: &mut rust_xlsxwriter::Workbook) -> Result<(), PageError> {
        use rust_xlsxwriter::Format;
        let err = |e: rust_xlsxwriter::XlsxError| PageError(error::internal(e));
        let sheet = book.add_worksheet();
        sheet.set_name(self.name.chars().take(31).collect::<String>()).map_err(err)?;
        let bold = Format::new().set_bold();
        for (c, h) in self.header.iter().enumerate() {
            sheet.write_string_with_format(0, c as u16, h, &bold).map_err(err)?;
        }
        let formats: Vec<Format> = (0..5)
            .map(|d| Format::new().set_num_format(if d == 0 { "0".to_owned() } else { format!("0.{}", "0".repeat(d)) }))
            .collect();
        let when = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
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
                        sheet.write_number_with_format(r, c, *v, &formats[(*d).min(4)]).map_err(err)?;
                    }
                    Cell::Decimal(text, d) => {
                        let v: f64 = text.parse().map_err(|_| PageError(error::internal("a decimal cell")))?;
                        sheet.write_number_with_format(r, c, v, &formats[(*d).min(4)]).map_err(err)?;
                    }
                    Cell::Time(t) => {
                        let year = u16::try_from(t.year()).unwrap_or(1900);
                        let at = rust_xlsxwriter::ExcelDateTime::from_ymd(year, u8::from(t.month()), t.day())
                            .and_then(|d| d.and_hms(u16::from(t.hour()), t.minute(), t.second()))
                            .map_err(err)?;
                        sheet.write_datetime_with_format(r, c, &at, &when).map_err(err)?;
                    }
                    Cell::Empty => {}
                }
            }
        }
        Ok(())
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
        assert_eq!(from, 1_790_787_600_000);
        assert_eq!(to, 1_798_736_400_000);
    }

    /// Issue 14, item 12: periods read as an official writes them; the
    /// codes in URLs stay as they were.
    #[test]
    fn periods_are_labelled_as_officials_write_them() {
        for (code, label) in [
            ("2026", "Tahun 2026"),
            ("2026-H1", "Semester I 2026"),
            ("2026-H2", "Semester II 2026"),
            ("2026-Q1", "Triwulan I 2026"),
            ("2026-Q2", "Triwulan II 2026"),
            ("2026-Q3", "Triwulan III 2026"),
            ("2026-Q4", "Triwulan IV 2026"),
            ("2026-01", "Januari 2026"),
            ("2026-02", "Februari 2026"),
            ("2026-05", "Mei 2026"),
            ("2026-08", "Agustus 2026"),
            ("2026-11", "November 2026"),
            ("2027-12", "Desember 2027"),
        ] {
            let p = Period::parse(code).unwrap();
            assert_eq!(p.label(), label, "{code}");
            assert_eq!(p.code(), code, "the URL code is unchanged");
        }
        // Every period offered in a form has a label of its own.
        let labels: std::collections::BTreeSet<String> = Period::choices(2026).into_iter().map(Period::label).collect();
        assert_eq!(labels.len(), Period::choices(2026).len());
    }

    #[test]
    fn a_period_range_is_local_time() {
        let wib = time::UtcOffset::from_hms(7, 0, 0).unwrap();
        let (from, to) = Period::parse("2026-Q4").unwrap().range_ms(wib);
        // 2026-10-01 00:00 WIB .. 2027-01-01 00:00 WIB
        assert_eq!(from, 1_790_787_600_000);
        assert_eq!(to, 1_798_736_400_000);
    }

    /// The CSRF token is `HMAC-SHA256(seal key, "loket-web-csrf:" ||
    /// browser id)`, the bytes the server made before loket-node, so a
    /// form open across an upgrade still submits.
    #[test]
    fn csrf_tokens_are_the_hmac_the_server_always_made() {
        use hmac::{Hmac, Mac};
        let seal = crate::ops::seal::SealKey::from_bytes([9; 32]);
        let browser = Browser { id: "0123456789abcdef0123456789abcdef".into(), fresh: false };
        let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(&[9; 32]).unwrap();
        mac.update(b"loket-web-csrf:0123456789abcdef0123456789abcdef");
        let want = hex::encode(mac.finalize().into_bytes());
        assert_eq!(CSRF.token(seal.csrf_key(), &browser), want);
        assert!(CSRF.verify(seal.csrf_key(), &browser, Some(&want)));
        assert_eq!(CSRF.cookie, "__Host-loket_csrf");
    }

    /// Regression, issue 12 item 7: CSV cells a spreadsheet would run as a
    /// formula get a `'` first (OWASP); numbers, negative ones too, do not.
    #[test]
    fn csv_cells_a_spreadsheet_would_run_start_with_a_quote() {
        let text = |s: &str| vec![Cell::Text(s.to_owned())];
        let rows = vec![
            text("=1+1"),
            text("+62 812"),
            text("-1"),
            text("@SUM(A1)"),
            text("\t=1"),
            text("\r=1"),
            text("-"),
            vec![Cell::Int(-12)],
            vec![Cell::Fixed(-1.5, 2)],
            text("Siti = Aminah"),
            text(" =1"),
        ];
        let table = Table { name: "t".into(), header: vec!["=kolom".into()], rows };
        let bytes = table.csv().ok().expect("written");
        let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(&bytes[..]);
        let cells: Vec<String> = reader.records().map(|r| r.unwrap()[0].to_owned()).collect();
        let want = [
            "'=kolom",
            "'=1+1",
            "'+62 812",
            "'-1",
            "'@SUM(A1)",
            "'\t=1",
            "'\r=1",
            "'-",
            "-12",
            "-1.50",
            "Siti = Aminah",
            " =1",
        ];
        assert_eq!(cells, want);
    }
}
