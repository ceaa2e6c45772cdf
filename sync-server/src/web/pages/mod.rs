//! The central web app: server-rendered pages (maud: every value
//! escaped), no script, charts as inline SVG, this origin only.
//!
//! Here: the routes, security headers, the session and CSRF extractors,
//! error pages and the frame, login and logout, and what several pages
//! share (labels, reporting periods, durations, CSV/XLSX tables). Each
//! page family has its module: `overview`, `ikm`, `time_lost`, `staff`,
//! `requests` (lists, a request's page, the agency portal, downloads),
//! `kiosk_health`, `holidays`, `users` (disabling accounts).
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
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use loket_node::web::SecurityHeaders;
use loket_node::web::csrf::{Browser, CsrfSpec};
use loket_shared::Status;
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::{ApiError, AppState, ClientAddr, error};
use crate::ops::auth::{Role, User};
use crate::store;

mod holidays;
mod ikm;
mod kiosk_health;
mod overview;
mod requests;
mod staff;
/// The staff page's figure formatting, for the router-level tests.
#[cfg(test)]
pub(crate) mod staff_figures {
    pub(crate) use super::staff::{nrr_cell, nrr_text, percent_text, sla_cell};
}
mod time_lost;
mod users;

use holidays::*;
use ikm::*;
use kiosk_health::*;
use overview::*;
use requests::*;
use staff::*;
use time_lost::*;
use users::*;

const SESSION_COOKIE: &str = "__Host-loket_session";
/// The CSRF cookie and the MAC domain of the tokens, under the seal key
/// (`HMAC-SHA256(key, "loket-web-csrf:" || browser id)`, as before
/// loket-node: forms open across an upgrade still submit).
const CSRF: CsrfSpec = CsrfSpec { cookie: "__Host-loket_csrf", domain: "loket-web-csrf:" };
const CSS: &str = include_str!("../central.css");
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
                   base-uri 'none'; frame-ancestors 'none'";
/// The pages are served only over HTTPS: HSTS too.
const SECURITY_HEADERS: SecurityHeaders = SecurityHeaders { csp: CSP, hsts: true };

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
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=300")], CSS)
        .into_response()
}

// ------------------------------------------------------------------ context

/// The browser's CSRF cookie (made on first visit) and its token.
struct Page {
    jar: CookieJar,
    browser: Browser,
    csrf: String,
}

impl FromRequestParts<AppState> for Page {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Page, Self::Rejection> {
        let (jar, browser) = CSRF.browser(CookieJar::from_headers(&parts.headers), true);
        let csrf = CSRF.token(st.seal.csrf_key(), &browser);
        Ok(Page { jar, browser, csrf })
    }
}

/// A cookie of the web app: `Secure` always (the server speaks only HTTPS).
fn cookie(name: &'static str, value: String) -> Cookie<'static> {
    loket_node::web::cookie(name, value, true)
}

impl Page {
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

/// An error as a page (both languages; the stable code in small print).
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

/// A central role as an official names it.
fn role_label(role: Role) -> &'static str {
    match role {
        Role::Admin => "Admin Pemko",
        Role::Supervisor => "Pengawas",
        Role::Agency => "Petugas instansi",
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
                                a href="/admin/libur" #nav-holidays { "Kalender kerja" } " · "
                                a href="/admin/pengguna" #nav-users { "Pengguna" } " · "
                            }
                        }
                        span.who { (user.username.as_str()) " (" (role_label(user.role)) ")" }
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
            let (id, en) = e.message.split_once(" / ").unwrap_or((e.message.as_str(), ""));
            let text = format!("{id}. {en}");
            let status = e.status;
            // The name typed is not filled in again: it may be the password.
            let markup = login_markup(&page, None, Some(&text));
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

/// Working time as working days of the office's service hours (a whole
/// day of service hours is 1.00, whatever their length).
fn duration_text(ms: i64) -> String {
    format!("{:.2} hari kerja", ms as f64 / loket_shared::sla::DAY_MS as f64)
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
        use rust_xlsxwriter::{Format, Workbook};
        let err = |e: rust_xlsxwriter::XlsxError| PageError(error::internal(e));
        let mut book = Workbook::new();
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
