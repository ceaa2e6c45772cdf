//! The kiosk's web UI, served from this process with every asset compiled
//! in, so it works with the server unreachable.
//!
//! - Citizen screens (`/`, `/layanan`, `/tiket`, `/cek`, `/nilai`): a touch
//!   screen in a public office. Server-rendered HTML forms that work
//!   without JavaScript; `app.js` adds validation as you type and the idle
//!   timeout that returns to the start and clears what was typed.
//! - Staff console (`/staf`): login against the synced roster (offline),
//!   the queue, a request's history and the workflow actions, and a sync
//!   indicator on every page. Served only on the staff listener
//!   (`staff_listen`), a different origin from the citizen screen: the
//!   citizen listener has no staff page and no link to one, and the two
//!   surfaces use different cookies, so resetting the citizen screen
//!   ends nothing but the citizen's state.
//!
//! Security: every page is a maud template, which escapes every value it
//! interpolates, so hostile text is shown as text. Every POST carries a
//! CSRF token (HMAC of a per-browser cookie under the kiosk's key,
//! `loket_node::web::csrf`). Pages
//! are `no-store`; a Content-Security-Policy allows nothing but this
//! origin (no inline script, no other host). Staff sessions are HttpOnly,
//! SameSite=Strict cookies holding a token the store keeps only hashed.

mod citizen;
mod complaint;
mod staff;

pub use citizen::{CitizenDraft, SurveyDraft};
pub use complaint::ComplaintDraft;
pub use staff::StaffDraft;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use loket_node::web::ClientAddr;
use loket_node::web::SecurityHeaders;
use loket_node::web::csrf::{Browser, CsrfSpec};
use maud::{DOCTYPE, Markup, PreEscaped, html};
use serde::Deserialize;

use super::{ApiError, AppState, Surface};

pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");

/// The CSRF cookie and the MAC domain of the citizen screens' forms (the
/// key is the store's `web_key`).
const CSRF: CsrfSpec = CsrfSpec { cookie: "loket_csrf", domain: "loket-kiosk-csrf:" };
/// The staff console's own: a cookie the citizen screen's reset never
/// touches (cookies are per host, not per port), and tokens that never
/// verify on the other surface.
const STAFF_CSRF: CsrfSpec = CsrfSpec { cookie: "loket_staff_csrf", domain: "loket-kiosk-staff-csrf:" };
const CSRF_COOKIE: &str = CSRF.cookie;
const LANG_COOKIE: &str = "loket_lang";
const STAFF_LANG_COOKIE: &str = "loket_staff_lang";

impl Surface {
    fn csrf(self) -> CsrfSpec {
        match self {
            Surface::Citizen => CSRF,
            Surface::Staff => STAFF_CSRF,
        }
    }

    fn lang_cookie(self) -> &'static str {
        match self {
            Surface::Citizen => LANG_COOKIE,
            Surface::Staff => STAFF_LANG_COOKIE,
        }
    }

    fn of(parts: &Parts) -> Surface {
        parts.extensions.get::<Surface>().copied().unwrap_or(Surface::Citizen)
    }
}
/// Carries a new request's rating code from the filing form to its
/// receipt, which shows it once and clears it (never in a URL).
pub const RECEIPT_COOKIE: &str = "loket_receipt";
pub const RECEIPT_COOKIE_PATH: &str = "/tiket";

/// The headers of every response: a Content-Security-Policy that allows
/// this origin only; no HSTS (the office LAN UI is plain HTTP).
pub const SECURITY_HEADERS: SecurityHeaders = SecurityHeaders {
    csp: "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
          connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    hsts: false,
};

fn common_routes() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/bahasa/{lang}", get(set_language))
}

/// The citizen listener's pages: no staff page among them.
pub fn citizen_routes() -> Router<AppState> {
    common_routes().route("/mulai-ulang", get(restart)).merge(citizen::routes()).merge(complaint::routes())
}

/// The staff listener's pages: the console, and `/` leading to it.
pub fn staff_routes() -> Router<AppState> {
    common_routes().route("/", get(|| async { Redirect::to("/staf") })).merge(staff::routes())
}

/// What an unknown URL gets: a page for a browser, the JSON error for the
/// API and for clients that do not ask for HTML.
pub async fn not_found(req: Request) -> Response {
    let path = req.uri().path();
    let wants_html =
        req.headers().get(header::ACCEPT).and_then(|a| a.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if path.starts_with("/api/") || !wants_html {
        ApiError::not_found().into_response()
    } else {
        UiError::not_found().into_response()
    }
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

// ------------------------------------------------------------------ language

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Id,
    En,
}

impl Lang {
    /// Picks the Bahasa Indonesia or the English text.
    pub fn t<'a>(self, id: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Id => id,
            Lang::En => en,
        }
    }

    fn code(self) -> &'static str {
        match self {
            Lang::Id => "id",
            Lang::En => "en",
        }
    }

    fn other(self) -> Lang {
        match self {
            Lang::Id => Lang::En,
            Lang::En => Lang::Id,
        }
    }
}

#[derive(Deserialize)]
struct BackTo {
    kembali: Option<String>,
}

/// A local path to return to (a `Location` on this kiosk), else `/`.
///
/// A browser resolves a `Location` by the WHATWG URL rules: it removes
/// every tab and line break anywhere, reads `\\` as `/`, and takes a
/// leading `//` for another host, so `/<TAB>/evil.example` and
/// `/\\evil.example` lead away. Only printable ASCII without `\\` is
/// kept, starting with exactly one `/`: nothing a browser could drop or
/// rewrite, and `%`-escapes stay escapes (`/%09/x` is a path).
fn local_path(raw: Option<&str>) -> &str {
    let is_local = |p: &str| {
        let b = p.as_bytes();
        b.len() <= 512
            && b.first() == Some(&b'/')
            && !matches!(b.get(1), Some(b'/' | b'\\'))
            && b.iter().all(|&c| c.is_ascii_graphic() && c != b'\\')
    };
    match raw {
        Some(p) if is_local(p) => p,
        _ => "/",
    }
}

async fn set_language(
    jar: CookieJar,
    axum::Extension(surface): axum::Extension<Surface>,
    axum::extract::Path(lang): axum::extract::Path<String>,
    axum::extract::Query(back): axum::extract::Query<BackTo>,
) -> (CookieJar, Redirect) {
    let value = if lang == "en" { "en" } else { "id" };
    let cookie = Cookie::build((surface.lang_cookie(), value)).path("/").http_only(true).same_site(SameSite::Strict);
    (jar.add(cookie), Redirect::to(local_path(back.kembali.as_deref())))
}

/// Where the idle timeout goes: forgets the language choice, the CSRF
/// cookie and an unread receipt, then shows the start screen, as for the
/// next citizen. Only the citizen screen's cookies: a staff console open
/// in the same browser (another port of the same host, whose cookies a
/// browser shares) keeps its session, language and forms.
async fn restart(State(st): State<AppState>, jar: CookieJar) -> (CookieJar, Redirect) {
    if let Some(draft) = jar.get(citizen::DRAFT_COOKIE) {
        st.citizen_drafts.remove(draft.value());
    }
    if let Some(draft) = jar.get(citizen::SURVEY_COOKIE) {
        st.survey_drafts.remove(draft.value());
    }
    if let Some(draft) = jar.get(complaint::DRAFT_COOKIE) {
        st.complaint_drafts.remove(draft.value());
    }
    let jar = jar
        .remove(Cookie::build(citizen::DRAFT_COOKIE).path(citizen::DRAFT_COOKIE_PATH))
        .remove(Cookie::build(citizen::SURVEY_COOKIE).path(citizen::SURVEY_COOKIE_PATH))
        .remove(Cookie::build(complaint::DRAFT_COOKIE).path(complaint::DRAFT_COOKIE_PATH))
        .remove(Cookie::build(LANG_COOKIE).path("/"))
        .remove(Cookie::build(CSRF_COOKIE).path("/"))
        .remove(Cookie::build(RECEIPT_COOKIE).path(RECEIPT_COOKIE_PATH));
    (jar, Redirect::to("/"))
}

// ------------------------------------------------------------------ extractors

/// A form body whose rejection is an error page.
pub struct UiForm<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for UiForm<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = UiError;

    async fn from_request(req: Request, state: &S) -> Result<UiForm<T>, UiError> {
        match axum::Form::<T>::from_request(req, state).await {
            Ok(axum::Form(v)) => Ok(UiForm(v)),
            Err(e) => {
                // Not the rejection's text: it may quote what was sent.
                tracing::info!(status = e.status().as_u16(), "form refused");
                let e = ApiError::from(e);
                Err(UiError::new(e.status, e.code, "Isian formulir tidak dapat dibaca.", "The form could not be read."))
            }
        }
    }
}

// ------------------------------------------------------------------ page context

/// What every page needs: the language, the CSRF token for its forms,
/// and the cookies to set on the way out.
pub struct Ctx {
    pub lang: Lang,
    pub csrf: String,
    pub jar: CookieJar,
    pub state: AppState,
    /// The path of this page, for the language switch to come back to.
    pub path: String,
    /// The `Host` the browser asked for, if it is a plain host[:port] (for
    /// the rating link in a receipt's QR code).
    pub host: Option<String>,
    /// The browser as its CSRF cookie says (made on this request if new).
    browser: Browser,
    /// The listener this page is served on.
    pub surface: Surface,
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Ctx, Self::Rejection> {
        let surface = Surface::of(parts);
        let jar = CookieJar::from_headers(&parts.headers);
        let lang = lang_of(&jar, surface);
        let (jar, browser) = surface.csrf().browser(jar, st.secure_cookies_for(surface));
        let csrf = surface.csrf().token(st.store.web_key(), &browser);
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                (1..=255).contains(&h.len())
                    && h.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
            })
            .map(str::to_owned);
        Ok(Ctx { lang, csrf, jar, state: st.clone(), path, host, browser, surface })
    }
}

fn lang_of(jar: &CookieJar, surface: Surface) -> Lang {
    match jar.get(surface.lang_cookie()).map(Cookie::value) {
        Some("en") => Lang::En,
        _ => Lang::Id,
    }
}

impl AppState {
    pub fn secure_cookies_for(&self, surface: Surface) -> bool {
        match surface {
            Surface::Citizen => self.secure_cookies,
            Surface::Staff => self.staff_secure_cookies,
        }
    }
}

impl Ctx {
    pub fn t<'a>(&self, id: &'a str, en: &'a str) -> &'a str {
        self.lang.t(id, en)
    }

    /// Refuses a form whose token does not belong to this browser's cookie
    /// (a form posted from another site, or a replayed one), and any form
    /// from a browser that came without the cookie.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), UiError> {
        if self.surface.csrf().verify(self.state.store.web_key(), &self.browser, token) {
            Ok(())
        } else {
            tracing::warn!(path = %self.path, "form refused: CSRF token missing or wrong");
            Err(UiError::new(
                StatusCode::FORBIDDEN,
                "csrf_failed",
                "Formulir kedaluwarsa atau tidak sah. Silakan ulangi dari awal.",
                "This form has expired or is not valid. Please start again.",
            ))
        }
    }

    /// A page as a response, with any cookie this request created.
    pub fn page(self, status: StatusCode, markup: Markup) -> Response {
        (status, self.jar, markup).into_response()
    }

    pub fn lang_switch(&self) -> Markup {
        let other = self.lang.other();
        let href = format!("/bahasa/{}?kembali={}", other.code(), urlencode(&self.path));
        html! {
            a.lang-switch href=(href) lang=(other.code()) {
                (other.t("Bahasa Indonesia", "English"))
            }
        }
    }
}

/// Percent-encodes a path for a query parameter.
fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page frame. `kind` is `citizen` (idle timeout on) or `staff`.
pub fn layout(ctx: &Ctx, kind: &str, title: &str, header_extra: Markup, body: Markup) -> Markup {
    let id = ctx.state.store.identity();
    let idle = (kind == "citizen").then(|| ctx.state.citizen_idle_timeout.as_secs().to_string());
    // Only a signed-in console logs out by itself (the login page has no
    // logout form, so the script does nothing there).
    let staff_idle = (kind == "staff").then(|| ctx.state.staff_idle_timeout.as_secs().to_string());
    html! {
        (DOCTYPE)
        html lang=(ctx.lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Loket " (id.name) }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body class=(kind) data-idle-seconds=[idle] data-staff-idle-seconds=[staff_idle] data-lang=(ctx.lang.code()) {
                a.skip href="#main" { (ctx.t("Langsung ke isi", "Skip to content")) }
                header.top {
                    a.brand href=(if kind == "staff" { "/staf" } else { "/" }) {
                        span.brand-name { "Loket" }
                        span.office { (id.name) }
                    }
                    (header_extra)
                    (ctx.lang_switch())
                }
                main #main tabindex="-1" { (body) }
                @if kind == "citizen" {
                    // Every citizen screen leads to the complaint channel
                    // (UU 25/2009; SKM element U8 asks whether it works).
                    footer.bottom.no-print {
                        a #footer-complaint href="/pengaduan" { (ctx.t("Pengaduan", "Complaint")) }
                    }
                }
                @if kind == "citizen" {
                    // At the top of the screen: an on-screen keyboard covers the bottom.
                    div #idle-warning .idle-warning hidden role="alertdialog" aria-live="polite" aria-labelledby="idle-text" {
                        p #idle-text {
                            (ctx.t("Masih di sana? Layar kembali ke awal dan semua isian dihapus dalam ",
                                   "Still there? The screen goes back to the start and clears everything typed in "))
                            strong #idle-count { "15" }
                            (ctx.t(" detik.", " seconds."))
                        }
                        button.primary.big type="button" #idle-stay { (ctx.t("Saya masih di sini", "I am still here")) }
                    }
                }
            }
        }
    }
}

pub fn csrf_field(ctx: &Ctx) -> Markup {
    html! { input type="hidden" name="csrf" value=(ctx.csrf); }
}

/// Local date and time, e.g. `28-11-2026 10:42`.
pub fn local_time(ms: i64, offset: time::UtcOffset) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let fmt = time::macros::format_description!("[day]-[month]-[year] [hour]:[minute]");
    t.format(&fmt).unwrap_or_default()
}

/// Local time of day, e.g. `10:42`.
pub fn local_clock(ms: i64, offset: time::UtcOffset) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    let fmt = time::macros::format_description!("[hour]:[minute]");
    t.format(&fmt).unwrap_or_default()
}

pub fn status_label(lang: Lang, status: loket_shared::Status) -> &'static str {
    use loket_shared::Status::*;
    match status {
        Submitted => lang.t("Diterima, menunggu petugas", "Received, waiting for staff"),
        InProgress => lang.t("Sedang diproses", "In progress"),
        WaitingCitizen => {
            lang.t("Menunggu kelengkapan berkas dari pemohon", "Waiting for documents from the applicant")
        }
        HandedOff => lang.t("Diteruskan ke instansi terkait", "Handed to the responsible agency"),
        Completed => lang.t("Selesai, silakan diambil", "Completed, ready for pickup"),
        Rejected => lang.t("Ditolak", "Rejected"),
        Cancelled => lang.t("Dibatalkan", "Cancelled"),
    }
}

// ------------------------------------------------------------------ errors

/// An error shown as a page: a plain message in the page's language. The
/// stable code is in the markup (`data-code`) for tests and logs; the
/// console also prints it for the helpdesk, the citizen screen does not
/// (a citizen has no use for `ticket_not_found`). Detail goes to the log.
#[derive(Debug, Clone)]
pub struct UiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub id: String,
    pub en: String,
}

impl UiError {
    pub fn new(status: StatusCode, code: &'static str, id: impl Into<String>, en: impl Into<String>) -> UiError {
        UiError { status, code, id: id.into(), en: en.into() }
    }

    pub fn not_found() -> UiError {
        UiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Halaman ini tidak ada. Silakan kembali ke awal.",
            "There is no such page. Please go back to the start.",
        )
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> UiError {
        // ApiError messages are already "Indonesian / English".
        let (id, en) = match e.message.split_once(" / ") {
            Some((id, en)) => (id.to_owned(), en.to_owned()),
            None => (e.message.clone(), e.message.clone()),
        };
        UiError { status: e.status, code: e.code, id, en }
    }
}

impl From<crate::store::OpError> for UiError {
    fn from(e: crate::store::OpError) -> UiError {
        UiError::from(ApiError::from(e))
    }
}

impl From<crate::store::StoreError> for UiError {
    fn from(e: crate::store::StoreError) -> UiError {
        UiError::from(ApiError::from(e))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, status = self.status.as_u16(), "page failed");
        } else {
            tracing::info!(code = self.code, status = self.status.as_u16(), "page refused");
        }
        // The page as the citizen screen in Bahasa Indonesia shows it; the
        // `error_pages` layer renders it again for the listener and the
        // language of the request.
        let mut resp = (self.status, error_page(&self, Surface::Citizen, Lang::Id)).into_response();
        resp.extensions_mut().insert(self);
        resp
    }
}

/// An error page for `surface` in `lang`: no forms, no personal data.
fn error_page(e: &UiError, surface: Surface, lang: Lang) -> Markup {
    let (home, home_text) = match surface {
        Surface::Citizen => ("/", lang.t("Kembali ke awal", "Back to the start")),
        Surface::Staff => ("/staf", lang.t("Kembali ke antrean", "Back to the queue")),
    };
    let kind = match surface {
        Surface::Citizen => "citizen",
        Surface::Staff => "staff",
    };
    // The citizen screen still returns to the start when left alone.
    let idle = (surface == Surface::Citizen).then_some("60");
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (lang.t("Tidak dapat ditampilkan", "Cannot be shown")) " · Loket" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body class=(kind) data-idle-seconds=[idle] data-lang=(lang.code()) {
                main #main .error-page data-code=(e.code) data-status=(e.status.as_u16()) {
                    h1 #error-message { (lang.t(&e.id, &e.en)) }
                    @if surface == Surface::Staff {
                        p.code { (lang.t("Kode untuk bantuan teknis: ", "Code for the helpdesk: ")) (e.code) }
                    }
                    p { a.button.primary.big #error-home href=(home) { (home_text) } }
                }
            }
        }
    }
}

/// Renders error pages for the listener a request came in on and the
/// language its cookie chose.
pub async fn error_pages(req: Request, next: axum::middleware::Next) -> Response {
    let surface = req.extensions().get::<Surface>().copied().unwrap_or(Surface::Citizen);
    let lang = lang_of(&CookieJar::from_headers(req.headers()), surface);
    let mut resp = next.run(req).await;
    if let Some(e) = resp.extensions_mut().remove::<UiError>() {
        let (mut parts, _) = resp.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        let body = error_page(&e, surface, lang).into_string();
        return Response::from_parts(parts, axum::body::Body::from(body));
    }
    resp
}

/// Runs blocking store reads off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, UiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(UiError::from),
        Err(e) => Err(UiError::from(super::error::internal(e))),
    }
}

/// Inline SVG made on this machine (a QR code); never user text.
pub fn trusted_svg(svg: String) -> PreEscaped<String> {
    PreEscaped(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case: what a form or query sent, and whether it is returned to
    /// as is. A browser resolves a `Location` by the WHATWG URL rules: it
    /// drops every tab and line break, reads `\\` as `/`, and treats a
    /// leading `//` as another host; `%09` stays three characters of a path.
    #[test]
    fn only_local_paths_are_returned_to() {
        let long = format!("/{}", "a".repeat(511));
        let too_long = format!("/{}", "a".repeat(512));
        let cases: &[(&str, bool)] = &[
            ("/", true),
            ("/layanan?x=1", true),
            ("/staf?status=open&layanan=SKD", true),
            ("/cek?tiket=K07%2D1128%2D001", true),
            ("/%09/evil.example", true), // a path: browsers do not decode %09
            ("/%2F%2Fevil.example", true),
            ("/%5Cevil.example", true),
            ("/.//evil.example", true), // path-absolute: the host stays
            ("/@evil.example", true),
            (&long, true),
            (&too_long, false),
            ("", false),
            ("layanan", false),
            ("evil.example", false),
            ("//evil.example/", false),
            ("///evil.example", false),
            ("https://evil.example/", false),
            ("http:evil.example", false),
            ("javascript:alert(1)", false),
            ("/\\evil.example", false),
            ("\\/evil.example", false),
            ("\\\\evil.example", false),
            ("/\t/evil.example", false),
            ("/\n/evil.example", false),
            ("/\r/evil.example", false),
            ("\t//evil.example", false),
            ("/\t\\evil.example", false),
            ("/\u{0}/evil.example", false),
            ("/\u{7f}", false),
            ("/\u{b}/evil.example", false),
            ("/ /evil.example", false),
            ("/layanan\\..\\..", false),
            ("/\u{3000}/evil.example", false), // ideographic space
            ("/\u{ff0f}evil.example", false),  // fullwidth solidus
            ("/layanan\u{2028}", false),
        ];
        for (raw, kept) in cases {
            let want = if *kept { *raw } else { "/" };
            assert_eq!(local_path(Some(raw)), want, "{raw:?}");
        }
        assert_eq!(local_path(None), "/");
    }
}
