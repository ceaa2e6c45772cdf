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

const SESSION_COOKIE: &str = "__Host-loket_session";
const CSRF_COOKIE: &str = "__Host-loket_csrf";
const CSS: &str = include_str!("central.css");
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/admin/kiosk") }))
        .route("/static/central.css", get(css))
        .route("/masuk", get(login_page).post(login_post))
        .route("/keluar", post(logout))
        .route("/admin/kiosk", get(kiosk_health))
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
                        nav { a href="/admin/kiosk" { "Kesehatan kiosk" } }
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
            Ok((page.jar.add(session), Redirect::to("/admin/kiosk")).into_response())
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
                        td { @if let Some(t) = k.last_seen_at_ms { (st.format_time(t)) } @else { "—" } }
                        td { (k.version.as_deref().unwrap_or("—")) }
                        td { @if let Some(p) = k.pending_known { (p) } @else { "—" } }
                        td {
                            @if k.revoked { "Dicabut / Revoked" }
                            @else if offline { "Luring / Offline" }
                            @else { "Daring / Online" }
                        }
                        td {
                            @if !k.revoked {
                                form.inline method="post" action=(format!("/admin/kiosk/{}/cabut", k.id)) {
                                    input type="hidden" name="csrf" value=(page.csrf);
                                    button.danger type="submit" { "Cabut akses / Revoke" }
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
    axum::Form(form): axum::Form<CsrfForm>,
) -> Result<Response, PageError> {
    page.check(&st, form.csrf.as_deref())?;
    web.user.require(Role::Admin)?;
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
