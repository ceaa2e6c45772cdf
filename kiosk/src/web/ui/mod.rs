//! The kiosk's web UI, served from this process with every asset compiled
//! in, so it works with the server unreachable.
//!
//! - Citizen screens (`/`, `/layanan`, `/tiket`, `/cek`, `/nilai`): a touch
//!   screen in a public office. Server-rendered HTML forms that work
//!   without JavaScript; `app.js` adds validation as you type and the idle
//!   timeout that returns to the start and clears what was typed.
//! - Staff console (`/staf`): login against the synced roster (offline),
//!   the queue, a request's history and the workflow actions, and a sync
//!   indicator on every page.
//!
//! Security: every page is a maud template, which escapes every value it
//! interpolates, so hostile text is shown as text. Every POST carries a
//! CSRF token (HMAC of a per-browser cookie under the kiosk's key,
//! `loket_node::web::csrf`). Pages
//! are `no-store`; a Content-Security-Policy allows nothing but this
//! origin (no inline script, no other host). Staff sessions are HttpOnly,
//! SameSite=Strict cookies holding a token the store keeps only hashed.

mod citizen;
mod staff;

use axum::Router;
use axum::extract::{FromRequestParts, Request};
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

use super::{ApiError, AppState};

pub const CSS: &str = include_str!("assets/app.css");
pub const JS: &str = include_str!("assets/app.js");

/// The CSRF cookie and the MAC domain of the kiosk's forms (the key is
/// the store's `web_key`).
const CSRF: CsrfSpec = CsrfSpec { cookie: "loket_csrf", domain: "loket-kiosk-csrf:" };
const CSRF_COOKIE: &str = CSRF.cookie;
const LANG_COOKIE: &str = "loket_lang";
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

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/static/app.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/static/app.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .route("/bahasa/{lang}", get(set_language))
        .route("/mulai-ulang", get(restart))
        .merge(citizen::routes())
        .merge(staff::routes())
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
    axum::extract::Path(lang): axum::extract::Path<String>,
    axum::extract::Query(back): axum::extract::Query<BackTo>,
) -> (CookieJar, Redirect) {
    let value = if lang == "en" { "en" } else { "id" };
    let cookie = Cookie::build((LANG_COOKIE, value)).path("/").http_only(true).same_site(SameSite::Strict);
    (jar.add(cookie), Redirect::to(local_path(back.kembali.as_deref())))
}

/// Where the idle timeout goes: forgets the language choice, the CSRF
/// cookie and an unread receipt, then shows the start screen, as for the
/// next citizen.
async fn restart(jar: CookieJar) -> (CookieJar, Redirect) {
    let jar = jar
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
}

impl FromRequestParts<AppState> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Ctx, Self::Rejection> {
        let jar = CookieJar::from_headers(&parts.headers);
        let lang = match jar.get(LANG_COOKIE).map(Cookie::value) {
            Some("en") => Lang::En,
            _ => Lang::Id,
        };
        let (jar, browser) = CSRF.browser(jar, st.secure_cookies);
        let csrf = CSRF.token(st.store.web_key(), &browser);
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
        Ok(Ctx { lang, csrf, jar, state: st.clone(), path, host, browser })
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
        if CSRF.verify(self.state.store.web_key(), &self.browser, token) {
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
                    div #idle-warning .idle-warning hidden role="alertdialog" aria-live="assertive" {
                        p { (ctx.t("Masih di sana? Layar akan kembali ke awal dan semua isian dihapus.",
                                   "Still there? The screen will go back to the start and clear everything typed.")) }
                        button.primary type="button" #idle-stay { (ctx.t("Lanjutkan", "Continue")) }
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

/// An error shown as a page: a plain message in both languages, the
/// stable code in small print (for the helpdesk), the detail in the log.
#[derive(Debug)]
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
        UiError::new(StatusCode::NOT_FOUND, "not_found", "Halaman tidak ditemukan.", "Page not found.")
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
        // No Ctx here: a plain page in both languages, no forms.
        let body = html! {
            (DOCTYPE)
            html lang="id" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { "Loket" }
                    link rel="stylesheet" href="/static/app.css";
                    script src="/static/app.js" defer {}
                }
                body.citizen data-idle-seconds="60" {
                    main #main .error-page {
                        h1 { (self.id) }
                        p lang="en" { (self.en) }
                        p.code { "Kode / code: " (self.code) }
                        a.button.primary href="/" { "Kembali ke awal / Back to start" }
                    }
                }
            }
        };
        (self.status, body).into_response()
    }
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
