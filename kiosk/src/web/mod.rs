//! The kiosk's local HTTP API (DESIGN.md §9). Handlers parse input into
//! domain newtypes (each refusal a stable error code), hand writes to the
//! store's writer, and answer only once the write is durable.
//!
//! Retries are safe: a client may send `Idempotency-Key: <uuid>` with any
//! write; a repeat with the same key and body gets the first answer and
//! writes nothing, so a kiosk that lost power between commit and reply
//! cannot make a citizen's request twice.

mod complaints;
mod drafts;
mod error;
mod ui;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use loket_node::web::{ApiJson, ApiQuery, ClientAddr};
use loket_node::{now_ms, password, token};
use loket_shared::rating_token::RatingToken;
use loket_shared::request::{Applicant, COMMENT_MAX_CHARS, NOTE_MAX_CHARS, RequestView};
use loket_shared::respondent::{Dimension, Profile, ProfileError};
use loket_shared::skm::{Element, Scores};
use loket_shared::workflow::Derived;
use loket_shared::{Code, DocId, Nik, PersonName, Phone, StaffId, Status, Ticket};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tower_http::trace::TraceLayer;

pub use drafts::Drafts;
pub use error::ApiError;
use error::{blocking, internal, unauthorized};

use crate::config::Config;
use crate::store::{CreateInput, DocStore, EventInput, Idem, QueueFilter, RatingInput, StaffRecord};
use loket_shared::attempts::AttemptLimiter;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<DocStore>,
    pub sync: Arc<crate::sync::SyncClient>,
    pub session_ttl: Duration,
    pub utc_offset: time::UtcOffset,
    /// Cookies carry `Secure` when the UI is served on loopback (which
    /// browsers treat as a secure context); on a plain-HTTP office LAN
    /// they could not be set at all. For the citizen listener.
    pub secure_cookies: bool,
    /// The same for the staff console's listener (a counter PC on the
    /// office LAN reaches it over plain HTTP).
    pub staff_secure_cookies: bool,
    pub citizen_idle_timeout: Duration,
    pub staff_idle_timeout: Duration,
    /// Failed staff logins per staff id, and per client address.
    pub staff_logins: Arc<AttemptLimiter>,
    pub staff_login_addrs: Arc<AttemptLimiter>,
    /// When each console session last did something.
    pub staff_activity: Arc<IdleTracker>,
    /// Wrong rating codes per request, and per client address.
    pub rating_requests: Arc<AttemptLimiter>,
    pub rating_addrs: Arc<AttemptLimiter>,
    /// Where the idle timeouts and the failure limits read the time.
    pub clock: Clock,
    /// What a console POST hands to the page it redirects to: a final
    /// step awaiting its confirmation, a search (issue 15, items 2, 3, 7).
    pub staff_drafts: Arc<Drafts<ui::StaffDraft>>,
    /// What the filing form's check hands to its confirmation page.
    pub citizen_drafts: Arc<Drafts<ui::CitizenDraft>>,
    /// Where each browser's survey stands between its screens.
    pub survey_drafts: Arc<Drafts<ui::SurveyDraft>>,
    /// The same for the complaint form (issue 16).
    pub complaint_drafts: Arc<Drafts<ui::ComplaintDraft>>,
}

impl AppState {
    /// The state of a kiosk serving `store` with `config`, on the system
    /// clock. `secure_cookies`: see the field.
    pub fn new(
        store: Arc<DocStore>,
        sync: Arc<crate::sync::SyncClient>,
        config: &Config,
        secure_cookies: bool,
    ) -> AppState {
        AppState {
            utc_offset: store.options().utc_offset,
            store,
            sync,
            session_ttl: config.staff_session_ttl,
            secure_cookies,
            staff_secure_cookies: secure_cookies,
            citizen_idle_timeout: config.citizen_idle_timeout,
            staff_idle_timeout: config.staff_idle_timeout,
            staff_logins: Arc::new(AttemptLimiter::new(config.staff_login_failures_max, config.staff_lockout)),
            staff_login_addrs: Arc::new(AttemptLimiter::new(
                config.staff_login_failures_max.saturating_mul(10),
                config.staff_lockout,
            )),
            staff_activity: Arc::default(),
            rating_requests: Arc::new(AttemptLimiter::new(RATING_FAILURES_PER_REQUEST, RATING_LOCKOUT)),
            rating_addrs: Arc::new(AttemptLimiter::new(RATING_FAILURES_PER_ADDRESS, RATING_LOCKOUT)),
            clock: Clock::System,
            staff_drafts: Arc::new(Drafts::new(config.staff_idle_timeout)),
            // A citizen's typing lives no longer than the screen keeps it.
            citizen_drafts: Arc::new(Drafts::new(config.citizen_idle_timeout)),
            survey_drafts: Arc::new(Drafts::new(config.citizen_idle_timeout)),
            complaint_drafts: Arc::new(Drafts::new(config.citizen_idle_timeout)),
        }
    }
}

/// The monotonic time the web layer goes by (idle timeouts, failure
/// limits): the system's in service; a test holds a [`Clock::Manual`] and
/// moves it, so those rules are checked at given instants, not by waiting.
#[derive(Debug, Clone)]
pub enum Clock {
    System,
    Manual(Arc<Mutex<Instant>>),
}

impl Clock {
    /// A clock that stands at `start` until [`Clock::advance`]d.
    pub fn manual(start: Instant) -> Clock {
        Clock::Manual(Arc::new(Mutex::new(start)))
    }

    pub fn now(&self) -> Instant {
        match self {
            Clock::System => Instant::now(),
            Clock::Manual(at) => *at.lock().unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Moves a manual clock on by `by` (every clone of it).
    ///
    /// # Panics
    ///
    /// On the system clock: only a test moves time.
    pub fn advance(&self, by: Duration) {
        match self {
            Clock::System => panic!("the system clock cannot be moved"),
            Clock::Manual(at) => *at.lock().unwrap_or_else(PoisonError::into_inner) += by,
        }
    }
}

/// Wrong rating codes a request takes before it waits `RATING_LOCKOUT`:
/// against a 40-bit code that is at most 480 guesses a day, one chance in
/// about 6 million a year. A citizen who mistypes five times waits too.
pub const RATING_FAILURES_PER_REQUEST: u32 = 5;
/// Wrong rating codes from one client address (across requests) before it
/// waits. The kiosk's own screen is one address for every citizen, so this
/// is generous; the per-request limit is what bounds guessing.
pub const RATING_FAILURES_PER_ADDRESS: u32 = 50;
pub const RATING_LOCKOUT: Duration = Duration::from_secs(15 * 60);

/// The last activity of each staff console session, so the kiosk ends a
/// session left alone for `staff_idle_timeout` even when the page's script
/// does not run (scripts off, a tab frozen in the background).
///
/// - Activity is a request the console's session cookie authenticates
///   (pages, forms); the sync indicator's `/healthz` polling is not.
/// - A session is alive while the time since its last activity is at most
///   the limit; a request later than that is refused and the tracker
///   forgets it: the caller ends the session row, which keeps it ended.
/// - In memory: a restart starts every session's idle clock afresh
///   (a session unknown here is alive from its first request; sessions
///   still end at their TTL).
/// - Bounded: past 10,000 sessions, those already idle are dropped.
#[derive(Debug, Default)]
pub struct IdleTracker {
    last: Mutex<std::collections::HashMap<String, Instant>>,
}

impl IdleTracker {
    /// Sessions held before the idle ones are dropped.
    const CAPACITY: usize = 10_000;

    /// Records activity on a session at `now`; `false` if it had been idle
    /// for longer than `idle` (it is then forgotten).
    pub fn touch(&self, session: &str, now: Instant, idle: Duration) -> bool {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.get(session).is_some_and(|t| now.duration_since(*t) > idle) {
            last.remove(session);
            return false;
        }
        last.insert(session.to_owned(), now);
        if last.len() > IdleTracker::CAPACITY {
            last.retain(|_, t| now.duration_since(*t) <= idle);
        }
        true
    }

    pub fn forget(&self, session: &str) {
        self.last.lock().unwrap_or_else(PoisonError::into_inner).remove(session);
    }
}

/// Which listener a request came in on; every page and cookie follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    /// `listen`: the citizens' touch screen and the JSON API.
    Citizen,
    /// `staff_listen`: the staff console.
    Staff,
}

/// The citizen listener: the citizen screens, the JSON API (DESIGN.md §9,
/// `/api/staff/…` included: bearer tokens, no cookie, so nothing a browser
/// holds opens it), health and metrics. No staff page: `/staf…` is a
/// 404 here (`staff_router` serves it on its own address).
pub fn router(state: AppState, body_bytes_max: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/services", get(services))
        .route("/api/ikm", get(published_ikm))
        .route("/api/requests", post(create_request))
        .route("/api/requests/{id}/rating", post(rate))
        .route("/api/tickets/{ticket}", get(ticket))
        .route("/api/complaints", post(complaints::create))
        .route("/api/complaints/{ticket}", get(complaints::status))
        .route("/api/staff/login", post(staff_login))
        .route("/api/staff/requests", get(queue))
        .route("/api/staff/requests/{id}", get(request_detail))
        .route("/api/staff/requests/{id}/events", post(staff_event))
        .route("/api/sync", post(sync_now))
        .route("/api/staff/quarantine/{id}/release", post(release_quarantine))
        .merge(ui::citizen_routes())
        .fallback(ui::not_found)
        .layer(axum::middleware::from_fn(ui::error_pages))
        .layer(axum::Extension(Surface::Citizen))
        .layer(axum::middleware::from_fn_with_state(ui::SECURITY_HEADERS, loket_node::web::security_headers))
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// The staff listener: the staff console (`/staf…`, `/` leads there), its
/// assets, and `/healthz` for its sync indicator. No citizen screen and
/// no JSON API (those stay on the citizen listener, where DESIGN.md §9
/// puts them).
pub fn staff_router(state: AppState, body_bytes_max: usize) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .merge(ui::staff_routes())
        .fallback(ui::not_found)
        .layer(axum::middleware::from_fn(ui::error_pages))
        .layer(axum::Extension(Surface::Staff))
        .layer(axum::middleware::from_fn_with_state(ui::SECURITY_HEADERS, loket_node::web::security_headers))
        .layer(DefaultBodyLimit::max(body_bytes_max))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

fn format_time(ms: i64, offset: time::UtcOffset) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The `Idempotency-Key` header with a fingerprint of the parsed body.
fn idem(store: &DocStore, headers: &HeaderMap, body: &impl Serialize) -> Result<Option<Idem>, ApiError> {
    let Some(raw) = headers.get("idempotency-key") else { return Ok(None) };
    let key = raw.to_str().unwrap_or("");
    idem_for_key(store, key, body).map(Some)
}

/// An idempotency key (from a header, or a form's hidden field) with a
/// fingerprint of what it guards (keyed: `DocStore::fingerprint`).
pub(crate) fn idem_for_key(store: &DocStore, key: &str, body: &impl Serialize) -> Result<Idem, ApiError> {
    let key = Some(key.trim()).filter(|k| {
        (8..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let Some(key) = key else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_idempotency_key",
            "Idempotency-Key: 8-128 huruf, angka, - atau _ / 8-128 letters, digits, - or _",
        ));
    };
    let canonical = serde_json::to_vec(body).map_err(internal)?;
    Ok(Idem { key: key.to_owned(), fingerprint: store.fingerprint(&canonical) })
}

/// Free text from a person (notes, comments): trimmed, bounded, no control
/// characters but line breaks. Stored as typed; escaped wherever shown.
pub(crate) fn free_text(raw: Option<String>, max_chars: usize, code: &'static str) -> Result<Option<String>, ApiError> {
    let Some(text) = raw.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()) else { return Ok(None) };
    if text.chars().count() > max_chars {
        return Err(ApiError::unprocessable(
            code,
            format!("paling banyak {max_chars} huruf / at most {max_chars} characters"),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::unprocessable(
            code,
            "teks berisi karakter kendali / the text contains control characters",
        ));
    }
    Ok(Some(text))
}

/// The steps whose note is the reason the citizen reads on the status
/// check: a refusal, a cancellation, a request for a missing document.
pub fn reason_required(to: Status) -> bool {
    matches!(to, Status::Rejected | Status::Cancelled | Status::WaitingCitizen)
}

/// A number of at least this many digits (spaces, dots and dashes
/// between them allowed) is taken for a NIK, a KK, a NIP or a phone.
const PERSONAL_DIGITS_MIN: usize = 10;
/// A reason is shown to the citizen up to this many characters.
pub const REASON_SHOWN_MAX_CHARS: usize = 300;

/// Checks the note of a kelurahan step. The steps whose reason the
/// citizen reads need one (`422 reason_required`); as the status check
/// shows it to anyone with the ticket number, it may hold no personal
/// number and not the applicant's name (`422 reason_personal_data`).
pub(crate) fn check_step_note(to: Status, note: Option<&str>, applicant: &str) -> Result<(), ApiError> {
    if !reason_required(to) {
        return Ok(());
    }
    let Some(note) = note.map(str::trim).filter(|n| !n.is_empty()) else {
        return Err(ApiError::unprocessable(
            "reason_required",
            "alasan wajib diisi untuk menolak, membatalkan atau meminta berkas / \
             a reason is required to reject, cancel or ask for documents",
        ));
    };
    if digit_runs(note).iter().any(|(_, _, digits)| *digits >= PERSONAL_DIGITS_MIN)
        || find_ignoring_case(note, applicant).is_some()
    {
        return Err(ApiError::unprocessable(
            "reason_personal_data",
            "alasan ini tampil di cek status warga: jangan tulis NIK, nomor HP atau nama pemohon / \
             this reason is shown on the citizen's status check: leave out NIK, phone numbers and the applicant's name",
        ));
    }
    Ok(())
}

/// Numbers in `text` as `(start, end, digits)` char ranges: digits with
/// single spaces, dots or dashes between them (`0812 3456 7890`).
fn digit_runs(text: &str) -> Vec<(usize, usize, usize)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let (start, mut end, mut digits) = (i, i, 0);
        while i < chars.len() {
            if chars[i].is_ascii_digit() {
                digits += 1;
                end = i + 1;
                i += 1;
            } else if matches!(chars[i], ' ' | '.' | '-') && chars.get(i + 1).is_some_and(char::is_ascii_digit) {
                i += 1;
            } else {
                break;
            }
        }
        out.push((start, end, digits));
    }
    out
}

/// Where `needle` (at least 3 letters) is in `text`, ignoring case, as a
/// char range.
fn find_ignoring_case(text: &str, needle: &str) -> Option<(usize, usize)> {
    let lower = |s: &str| s.chars().map(|c| c.to_lowercase().next().unwrap_or(c)).collect::<Vec<char>>();
    let (text, needle) = (lower(text), lower(needle.trim()));
    if needle.len() < 3 || needle.len() > text.len() {
        return None;
    }
    (0..=text.len() - needle.len()).find(|&i| text[i..i + needle.len()] == needle[..]).map(|i| (i, i + needle.len()))
}

/// The reason the citizen reads on the status check: the note of the step
/// that made the current status, when that is a refusal, a cancellation or
/// a request for documents. Only that text: bounded, and with any number of
/// six digits or more and the applicant's name blanked out (a central or
/// agency note was not checked by this kiosk). None while a conflict waits.
pub(crate) fn citizen_reason(view: &RequestView, derived: &Derived) -> Option<String> {
    if derived.has_conflict() || !reason_required(derived.status) {
        return None;
    }
    let note = derived.ordered.iter().rev().find(|e| e.to == derived.status)?.note.as_deref()?.trim();
    let mut chars: Vec<char> = note.chars().collect();
    for (start, end, digits) in digit_runs(note) {
        if digits >= 6 {
            for c in &mut chars[start..end] {
                if c.is_ascii_digit() {
                    *c = '•';
                }
            }
        }
    }
    while let Some((start, end)) = find_ignoring_case(&chars.iter().collect::<String>(), view.applicant.name.as_str()) {
        chars.splice(start..end, "•••".chars());
    }
    let mut shown: String = chars.iter().take(REASON_SHOWN_MAX_CHARS).collect();
    if chars.len() > REASON_SHOWN_MAX_CHARS {
        shown.push('…');
    }
    (!shown.is_empty()).then_some(shown)
}

/// The results agencies recorded (issue 16, item 7: a letter number, a new
/// KK number), as the citizen's status check shows them: `(agency code,
/// reference)`, with every run of ten digits or more blanked but its last
/// four, so a KK or NIK never shows in full on a screen anyone with the
/// ticket can open. None while a conflict waits.
pub(crate) fn citizen_results(derived: &Derived) -> Vec<(String, String)> {
    if derived.has_conflict() {
        return Vec::new();
    }
    derived
        .results
        .iter()
        .map(|(agency, reference)| {
            let mut chars: Vec<char> = reference.chars().collect();
            for (start, end, digits) in digit_runs(reference) {
                if digits >= 10 {
                    let mut keep = 4;
                    for c in chars[start..end].iter_mut().rev() {
                        if c.is_ascii_digit() {
                            if keep > 0 {
                                keep -= 1;
                            } else {
                                *c = '•';
                            }
                        }
                    }
                }
            }
            (agency.clone(), chars.into_iter().collect())
        })
        .collect()
}

// ------------------------------------------------------------------ public

async fn healthz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let (counts, quarantined) = blocking(move || Ok((store.counts()?, store.quarantined()?))).await?;
    let quarantined: Vec<Value> = quarantined
        .into_iter()
        .map(|(doc, code, message, at)| {
            json!({ "id": doc, "code": code, "message": message, "at": format_time(at, st.utc_offset) })
        })
        .collect();
    let id = st.store.identity();
    let status = &st.sync.status;
    let last_ok = status.last_ok_ms.load(std::sync::atomic::Ordering::Relaxed);
    let offline_since = status.offline_since_ms.load(std::sync::atomic::Ordering::Relaxed);
    let last_error = status.last_error.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(Json(json!({
        "status": "ok",
        "kiosk": id.kiosk,
        "kelurahan": id.kelurahan,
        "name": id.name,
        "enrolled": st.sync.enrolled(),
        "pending_changes": counts.pending_changes,
        "documents": counts.documents,
        "quarantined": quarantined,
        "evicted": counts.evicted,
        "last_sync_ok_at": (last_ok > 0).then(|| format_time(last_ok, st.utc_offset)),
        "offline_since": (offline_since > 0).then(|| format_time(offline_since, st.utc_offset)),
        "server_reachable": status.reachable.load(std::sync::atomic::Ordering::Relaxed),
        "sync_attempts": status.attempts.load(std::sync::atomic::Ordering::Relaxed),
        "sync_failures": status.failures.load(std::sync::atomic::Ordering::Relaxed),
        "last_sync_error": last_error,
        // The server speaks another sync protocol: the kiosk (or the
        // server) needs an update; it keeps serving offline meanwhile.
        "update_needed": status.update_needed.load(std::sync::atomic::Ordering::Relaxed),
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

async fn metrics(State(st): State<AppState>) -> Result<Response, ApiError> {
    let store = st.store.clone();
    let counts = blocking(move || Ok(store.counts()?)).await?;
    let body = crate::metrics::render(counts, &st.sync.status, st.sync.enrolled());
    Ok(([(axum::http::header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)], body).into_response())
}

async fn services(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let items = blocking(move || Ok(store.services()?)).await?;
    Ok(Json(json!({ "items": items })))
}

/// This office's latest published IKM (synced from the central server,
/// served offline): 404 `not_published` until the city publishes one.
async fn published_ikm(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    let store = st.store.clone();
    let p = blocking(move || Ok(store.published_ikm()?)).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_published",
            "IKM kantor ini belum diterbitkan / this office's IKM is not published yet",
        )
    })?;
    let grade = p.grade();
    Ok(Json(json!({
        "kelurahan": st.store.identity().kelurahan.as_str(),
        "period": p.period,
        "label": p.period_label,
        "ikm": p.ikm_text(),
        "grade": grade.to_string(),
        "performance": { "id": grade.performance_id(), "en": grade.performance_en() },
        "respondents": p.respondents,
        "sample_min": p.sample_min,
        "sample_sufficient": p.sample_sufficient(),
        "published_at": format_time(p.published_at_ms, st.utc_offset),
    })))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct NewRequestBody {
    service: Option<String>,
    applicant: Option<ApplicantBody>,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct ApplicantBody {
    name: Option<String>,
    nik: Option<String>,
    phone: Option<String>,
}

fn parse_new_request(body: NewRequestBody) -> Result<CreateInput, ApiError> {
    let service = body.service.ok_or_else(|| ApiError::missing("service"))?;
    let applicant = body.applicant.ok_or_else(|| ApiError::missing("applicant"))?;
    let name = applicant.name.ok_or_else(|| ApiError::missing("applicant.name"))?;
    let nik = applicant.nik.ok_or_else(|| ApiError::missing("applicant.nik"))?;
    let service: Code = service
        .parse()
        .map_err(|_| ApiError::unprocessable("unknown_service", "layanan tidak dikenal / unknown service"))?;
    let name: PersonName = name.parse().map_err(|e| ApiError::unprocessable("invalid_name", e))?;
    let nik: Nik = nik.trim().parse().map_err(|e| ApiError::unprocessable("invalid_nik", e))?;
    let phone: Option<Phone> = match applicant.phone.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
        None => None,
        Some(p) => Some(p.parse().map_err(|e| ApiError::unprocessable("invalid_phone", e))?),
    };
    Ok(CreateInput { service, applicant: Applicant { name, nik, phone } })
}

async fn create_request(
    State(st): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<NewRequestBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let idem = idem(&st.store, &headers, &body)?;
    let input = parse_new_request(body)?;
    let created = st.store.create_request(input, idem).await?;
    st.sync.nudge.notify_one();
    tracing::info!(doc = %created.id, ticket = %created.ticket, "request filed");
    // The rating code is in this answer only (and a retry's): the document
    // keeps its digest, the ticket answers never show it.
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": created.id, "ticket": created.ticket, "status": created.status,
            "rating_token": created.rating_token,
        })),
    ))
}

/// A ticket as anyone may see it, found however it is typed
/// (`Ticket::candidates`): no personal data; `reason` is the one a
/// rejection, cancellation or request for documents gave (`citizen_reason`).
async fn ticket(State(st): State<AppState>, Path(raw): Path<String>) -> Result<Json<Value>, ApiError> {
    let candidates = Ticket::candidates(&raw);
    if candidates.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_ticket",
            loket_shared::ids::TicketError.to_string(),
        ));
    }
    let store = st.store.clone();
    let (view, reason, results) = blocking(move || {
        let Some(view) = store.find_ticket(&candidates)? else { return Ok(None) };
        let request = match view.id.parse::<DocId>() {
            Ok(doc) => store.request(&doc)?,
            Err(_) => None,
        };
        let reason = request.as_ref().and_then(|(v, d)| citizen_reason(v, d));
        let results = request.as_ref().map(|(_, d)| citizen_results(d)).unwrap_or_default();
        Ok(Some((view, reason, results)))
    })
    .await?
    .ok_or_else(ApiError::not_found)?;
    Ok(Json(json!({
        "ticket": view.ticket,
        "service": view.service,
        "status": view.status,
        "status_label": view.status.label_id(),
        "updated_at": format_time(view.updated_at_ms, st.utc_offset),
        "reason": reason,
        "results": results.iter().map(|(agency, reference)| json!({ "agency": agency, "reference": reference })).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct RatingBody {
    scores: Option<BTreeMap<String, Value>>,
    comment: Option<String>,
    /// The code on the receipt, e.g. `7K2M-9QXD`.
    token: Option<String>,
    /// The respondent profile, every question optional: `{age?, sex?,
    /// education?, occupation?}`, each a code (`null` or absent: not
    /// answered).
    profile: Option<BTreeMap<String, Value>>,
}

/// The respondent profile of a rating body: known questions and codes
/// only (`422 invalid_profile`, naming the question, never the value).
fn parse_profile(raw: Option<&BTreeMap<String, Value>>) -> Result<Profile, ApiError> {
    let mut profile = Profile::default();
    let invalid = |e: ProfileError| ApiError::unprocessable("invalid_profile", e);
    for (key, value) in raw.into_iter().flatten() {
        let dimension: Dimension = key.parse().map_err(invalid)?;
        match value {
            Value::Null => {}
            Value::String(code) => profile.set(dimension, code).map_err(invalid)?,
            _ => return Err(invalid(ProfileError::UnknownCode { dimension })),
        }
    }
    Ok(profile)
}

fn parse_doc_id(raw: &str) -> Result<DocId, ApiError> {
    raw.parse().map_err(|_| ApiError::not_found())
}

/// Checks the rating code typed for request `doc` (the API's `token`, the
/// screen's `kode`), within the failure limits. Refusals: `404 not_found`
/// (no such request here), `429 too_many_attempts`, `403
/// invalid_rating_token` (missing, malformed or wrong; also a request filed
/// before rating codes, or evicted here). Shared by the API and the screen.
pub(crate) async fn check_rating_token(
    st: &AppState,
    doc: DocId,
    raw: Option<&str>,
    addr: Option<std::net::IpAddr>,
) -> Result<RatingToken, ApiError> {
    let doc_key = doc.to_string();
    let addr_key = addr.map_or_else(|| "?".to_owned(), |a| a.to_string());
    let now = st.clock.now();
    if let Some(wait) = st.rating_requests.blocked(&doc_key, now).or_else(|| st.rating_addrs.blocked(&addr_key, now)) {
        tracing::warn!(doc = %doc, addr = %addr_key, "rating refused: too many wrong codes");
        return Err(ApiError::too_many_attempts(wait));
    }
    let token = raw.and_then(|r| r.parse::<RatingToken>().ok());
    let store = st.store.clone();
    let matched = blocking(move || Ok(store.rating_token_matches(&doc, token.as_ref())?)).await?;
    match (matched, token) {
        (None, _) => Err(ApiError::not_found()),
        (Some(true), Some(token)) => {
            st.rating_requests.clear(&doc_key);
            Ok(token)
        }
        _ => {
            st.rating_requests.failed(&doc_key, now);
            st.rating_addrs.failed(&addr_key, now);
            tracing::info!(doc = %doc, addr = %addr_key, "rating refused: missing or wrong code");
            Err(crate::store::OpError::InvalidRatingToken.into())
        }
    }
}

async fn rate(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    Path(raw): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<RatingBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let doc = parse_doc_id(&raw)?;
    let idem = idem(&st.store, &headers, &body)?;
    // The code before anything else: without it nothing is told.
    let token = check_rating_token(&st, doc, body.token.as_deref(), addr).await?;
    let scores = body.scores.as_ref().ok_or_else(|| ApiError::missing("scores"))?;
    let mut pairs = Vec::with_capacity(scores.len());
    for (k, v) in scores {
        // An element is named only once it is known to be one (U1-U9).
        let element: Element = k.parse().map_err(|e| ApiError::unprocessable("invalid_score", e))?;
        let v = v.as_i64().ok_or_else(|| {
            ApiError::unprocessable(
                "invalid_score",
                format!("nilai {element} harus angka 1-4 / the score for {element} must be a number 1-4"),
            )
        })?;
        pairs.push((element.code(), v));
    }
    let scores = Scores::from_map(pairs).map_err(|e| ApiError::unprocessable("invalid_score", e))?;
    let comment = free_text(body.comment, COMMENT_MAX_CHARS, "invalid_comment")?;
    let profile = parse_profile(body.profile.as_ref())?;
    let rated = st.store.rate(doc, RatingInput { scores, comment, token, profile }, idem).await?;
    st.sync.nudge.notify_one();
    tracing::info!(doc = %rated.id, "rating recorded");
    Ok((StatusCode::CREATED, Json(json!({ "id": rated.id, "rating_id": rated.rating_id }))))
}

async fn sync_now(State(st): State<AppState>) -> Json<Value> {
    match st.sync.run_once().await {
        Ok(s) => Json(json!({
            "ok": true, "pushed": s.pushed, "pulled": s.pulled, "more": s.more,
            "exchanges": s.exchanges, "wire_bytes": s.wire_bytes, "refused": s.refused,
        })),
        Err(e) => Json(json!({
            "ok": false, "pushed": 0, "pulled": 0, "error": e.code(), "message": e.to_string(),
        })),
    }
}

// ------------------------------------------------------------------ staff

/// Releases a document the server refused, so the next sync pushes it
/// again (after whatever made the server refuse it was fixed centrally).
async fn release_quarantine(
    State(st): State<AppState>,
    Staff(staff): Staff,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let doc = parse_doc_id(&raw)?;
    st.store.release(doc.to_string()).await?;
    tracing::info!(doc = %doc, staff = %staff.id.as_str(), "quarantine released");
    st.sync.nudge.notify_one();
    Ok(Json(json!({ "id": doc.to_string(), "released": true })))
}

/// A staff member proven by a bearer token.
pub struct Staff(pub StaffRecord);

impl FromRequestParts<AppState> for Staff {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Staff, ApiError> {
        let Some(Ok(token)) = token::bearer(&parts.headers) else { return Err(unauthorized()) };
        let hash = token::token_hash(&token);
        let store = st.store.clone();
        let staff = blocking(move || Ok(store.session(&hash, now_ms())?)).await?;
        staff.map(Staff).ok_or_else(unauthorized)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    staff_id: Option<String>,
    password: Option<String>,
}

/// A staff login that succeeded: the session token (shown once).
pub(crate) struct StaffLogin {
    pub staff: StaffRecord,
    pub token: String,
    pub expires_at_ms: i64,
}

/// Checks a staff id and password against the synced roster with the
/// failure limits, and opens a session. Shared by the console's form and
/// `POST /api/staff/login`. Refusals: `429 too_many_attempts`,
/// `401 invalid_credentials` (an oversized input is a wrong login too and
/// costs no hash).
pub(crate) async fn authenticate_staff(
    st: &AppState,
    raw_id: &str,
    password: String,
    addr: Option<std::net::IpAddr>,
) -> Result<StaffLogin, ApiError> {
    let user_key = raw_id.trim().to_ascii_uppercase().chars().take(40).collect::<String>();
    let addr_key = addr.map_or_else(|| "?".to_owned(), |a| a.to_string());
    // What was typed as the id is logged only when it is a NIP: people type
    // their password into the wrong field.
    let staff_log = raw_id.trim().parse::<StaffId>().map_or_else(|_| "(not a NIP)".to_owned(), |id| id.to_string());
    let now = st.clock.now();
    if let Some(wait) = st.staff_logins.blocked(&user_key, now).or_else(|| st.staff_login_addrs.blocked(&addr_key, now))
    {
        tracing::warn!(staff = %staff_log, addr = %addr_key, "staff login refused: too many failures");
        return Err(ApiError::too_many_attempts(wait));
    }
    let plausible = password.len() <= 1024 && raw_id.len() <= 64;
    let store = st.store.clone();
    let id = raw_id.trim().to_owned();
    let staff = blocking(move || {
        if !plausible {
            return Ok(None);
        }
        let record = match id.parse::<StaffId>() {
            Ok(id) => store.staff(&id)?.filter(|s| s.active),
            Err(_) => None,
        };
        let ok = password::verify_password(&password, record.as_ref().map(|r| r.password_hash.as_str()));
        Ok(record.filter(|_| ok))
    })
    .await?;
    let Some(staff) = staff else {
        st.staff_logins.failed(&user_key, now);
        st.staff_login_addrs.failed(&addr_key, now);
        tracing::info!(staff = %staff_log, addr = %addr_key, "staff login failed");
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "NIP atau kata sandi salah / wrong staff id or password",
        ));
    };
    st.staff_logins.clear(&user_key);
    let (token, hash) = token::new_token();
    let ttl_ms = i64::try_from(st.session_ttl.as_millis()).unwrap_or(i64::MAX);
    let expires_at_ms = now_ms().saturating_add(ttl_ms);
    st.store.create_session(hash, staff.id.clone(), expires_at_ms).await?;
    tracing::info!(staff = %staff.id, "staff logged in");
    Ok(StaffLogin { staff, token, expires_at_ms })
}

async fn staff_login(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let raw_id = body.staff_id.ok_or_else(|| ApiError::missing("staff_id"))?;
    let password = body.password.ok_or_else(|| ApiError::missing("password"))?;
    let done = authenticate_staff(&st, &raw_id, password, addr).await?;
    let staff = done.staff;
    Ok(Json(json!({
        "token": done.token,
        "staff": { "id": staff.id, "name": staff.name, "role": staff.role },
        "expires_at": format_time(done.expires_at_ms, st.utc_offset),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueueParams {
    status: Option<String>,
    limit: Option<u32>,
}

async fn queue(
    State(st): State<AppState>,
    _staff: Staff,
    ApiQuery(params): ApiQuery<QueueParams>,
) -> Result<Json<Value>, ApiError> {
    let filter = match params.status.as_deref().unwrap_or("") {
        "" | "open" => QueueFilter::Open,
        "all" => QueueFilter::All,
        s => QueueFilter::Status(
            s.parse::<Status>().map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_status", e))?,
        ),
    };
    let limit = params.limit.unwrap_or(200).clamp(1, 1000);
    let store = st.store.clone();
    let items = blocking(move || Ok(store.queue_filtered(filter, limit)?)).await?;
    let offset = st.utc_offset;
    let items: Vec<Value> = items
        .into_iter()
        .map(|i| {
            json!({
                "id": i.id, "ticket": i.ticket, "service": i.service, "status": i.status,
                "conflict": i.conflict, "agency": i.agency, "applicant_name": i.applicant_name,
                "nik": i.nik_masked, "rated": i.rated,
                "created_at": format_time(i.created_at_ms, offset),
                "updated_at": format_time(i.updated_at_ms, offset),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

async fn request_detail(
    State(st): State<AppState>,
    _staff: Staff,
    Path(raw): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let doc = parse_doc_id(&raw)?;
    let store = st.store.clone();
    let (view, derived, heads) =
        blocking(move || Ok(store.request_with_heads(&doc)?)).await?.ok_or_else(ApiError::not_found)?;
    let offset = st.utc_offset;
    let events: Vec<Value> = derived
        .ordered
        .iter()
        .map(|e| {
            json!({
                "id": e.id, "kind": e.kind.as_str(), "from": e.from, "to": e.to, "by": e.by,
                "at": format_time(e.at_ms, offset), "hlc": e.hlc.to_string(), "node": e.node,
                "note": e.note, "agency": e.agency, "parents": e.parents,
            })
        })
        .collect();
    let conflicts: Vec<Value> = derived
        .conflict
        .iter()
        .map(|c| {
            json!({ "event_id": c.event_id, "to": c.to, "by": c.by, "at": format_time(c.at_ms, offset),
                    "agency": c.agency, "note": c.note })
        })
        .collect();
    let updated_at = derived.ordered.iter().map(|e| e.at_ms).max().unwrap_or(view.created_at_ms);
    Ok(Json(json!({
        "id": view.id,
        "ticket": view.ticket,
        "kelurahan": view.kelurahan,
        "kiosk": view.kiosk,
        "service": view.service,
        "status": derived.status,
        "conflict": derived.has_conflict(),
        "conflicts": conflicts,
        "agency": derived.agency,
        "applicant": {
            "name": view.applicant.name,
            "nik": view.applicant.nik.masked(),
            "phone": view.applicant.phone.as_ref().map(Phone::masked),
        },
        "created_at": format_time(view.created_at_ms, offset),
        "updated_at": format_time(updated_at, offset),
        "allowed_next": if derived.has_conflict() { &[][..] } else { derived.status.allowed_next() },
        "events": events,
        // The survey is anonymous to staff (issue 15, item 6): that it was
        // rated, never the scores or the comment beside the applicant.
        "rated": !view.ratings.is_empty(),
        "extra_ratings": view.ratings.len().saturating_sub(1),
        "heads": heads,
    })))
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct EventBody {
    to: Option<String>,
    note: Option<String>,
    agency: Option<String>,
}

async fn staff_event(
    State(st): State<AppState>,
    Staff(staff): Staff,
    Path(raw): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let doc = parse_doc_id(&raw)?;
    let idem = idem(&st.store, &headers, &body)?;
    let to = body.to.as_deref().ok_or_else(|| ApiError::missing("to"))?;
    let to: Status = to.parse().map_err(|e| ApiError::unprocessable("invalid_status", e))?;
    let note = free_text(body.note, NOTE_MAX_CHARS, "invalid_note")?;
    let agency = match body.agency.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        None => None,
        Some(a) => Some(
            a.parse::<Code>()
                .map_err(|_| ApiError::unprocessable("unknown_agency", "instansi tidak dikenal / unknown agency"))?,
        ),
    };
    if reason_required(to) {
        let store = st.store.clone();
        let found = blocking(move || Ok(store.request(&doc)?)).await?;
        let (view, _) = found.ok_or_else(ApiError::not_found)?;
        check_step_note(to, note.as_deref(), view.applicant.name.as_str())?;
    }
    let ack = st.store.append_event(doc, EventInput { to, note, agency, by: staff.id.clone() }, idem).await?;
    st.sync.nudge.notify_one();
    tracing::info!(doc = %ack.id, staff = %staff.id, to = %to, "workflow event");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": ack.id, "event_id": ack.event_id, "status": ack.status, "conflict": ack.conflict })),
    ))
}

#[cfg(test)]
mod tests;
