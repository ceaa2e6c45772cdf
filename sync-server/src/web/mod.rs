//! The HTTP API (DESIGN.md §9): the router, its limits, and the handlers
//! for health, metrics, login, enrollment and the kiosk's own identity.
//! Admin handlers are in `admin.rs`; the sync endpoint is `crate::sync`.
//!
//! Limits: bodies (`api_body_bytes_max`, and `body_bytes_max` for sync),
//! a time limit per request, and a cap on requests in flight beyond which
//! new ones are answered 503 `overloaded` at once rather than queued.

pub(crate) mod admin;
pub(crate) mod auth;
mod central;
mod complaints;
mod error;
mod pages;
pub(crate) mod ratelimit;
mod sync;

use std::sync::Arc;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router};
pub use loket_node::web::{ApiJson, ApiQuery, ClientAddr};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::config::Config;
use crate::metrics::{self, Metrics, ResultLabels};
use crate::ops;
use crate::ops::auth::{KioskAuth, LoginGuard, LoginLimits, Role, User};
use crate::ops::central::Writer;
use crate::ops::enroll::{self, EnrollCode, EnrollError, EnrollRequest};
use crate::store::{self, Db};

/// Password hashes computed at once (each takes 19 MiB and a core for
/// tens of milliseconds); further logins wait their turn.
pub const HASHING_MAX: usize = 2;

/// Sync exchanges merged at once, per core: the rest wait their turn with
/// their body read and no thread held. Each merging exchange holds its
/// decoded batch and the documents it opened on a blocking thread of its
/// own, and 50 kiosks reconnecting at once merged 50 at a time on two
/// cores, each thread keeping the memory it freed (BENCHMARKS.md, "Step
/// 12"). Four per core keep a PostgreSQL store's round trips overlapped.
pub const MERGING_PER_CORE: usize = 4;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    /// Recognises the server's own changes when kiosks carry them back.
    pub seal: Arc<crate::ops::seal::SealKey>,
    /// This instance's Automerge actor and clock for central edits.
    pub writer: Arc<Writer>,
    pub limits: Arc<ratelimit::Limits>,
    pub metrics: Arc<Metrics>,
    pub config: Arc<Config>,
    /// Failed logins and enrollment codes, counted in the database.
    pub login_guard: LoginGuard,
    pub hashing: Arc<Semaphore>,
    /// Sync exchanges merging now (`MERGING_PER_CORE`).
    pub merging: Arc<Semaphore>,
    /// SHA-256 (hex) of the token that may read `/metrics`
    /// (`metrics_token_file`), if one is configured.
    pub metrics_token_hash: Option<Arc<str>>,
}

impl AppState {
    pub fn new(db: Db, config: Config, seal: crate::ops::seal::SealKey, writer: Writer) -> AppState {
        AppState {
            db,
            seal: Arc::new(seal),
            writer: Arc::new(writer),
            limits: Arc::new(ratelimit::Limits::new(config.ip_requests_per_second, config.kiosk_syncs_per_minute)),
            metrics: Arc::new(Metrics::new()),
            login_guard: LoginGuard::new(LoginLimits {
                pair_failures_max: config.login_failures_max,
                user_failures_max: config.login_user_failures_max,
                address_failures_max: config.login_address_failures_max,
                window: config.login_failure_window,
                slowdown: config.login_slowdown,
                enroll_failures_max: config.enroll_failures_max,
            }),
            hashing: Arc::new(Semaphore::new(HASHING_MAX)),
            merging: Arc::new(Semaphore::new(
                MERGING_PER_CORE * std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get),
            )),
            metrics_token_hash: None,
            config: Arc::new(config),
        }
    }

    /// A time as the API shows it: RFC 3339 in the configured offset
    /// (`2025-11-28T09:30:00+07:00`).
    pub fn format_time(&self, ms: i64) -> String {
        format_time(ms, self.config.utc_offset())
    }

    /// The local date and time of an instant (for spreadsheet cells).
    pub fn local_datetime(&self, ms: i64) -> time::PrimitiveDateTime {
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(self.config.utc_offset());
        time::PrimitiveDateTime::new(t.date(), t.time())
    }

    /// The local time zone's Indonesian name (`WIB` for UTC+7).
    pub fn zone_name(&self) -> String {
        match self.config.utc_offset().whole_hours() {
            7 => "WIB".to_owned(),
            8 => "WITA".to_owned(),
            9 => "WIT".to_owned(),
            h => format!("UTC{h:+}"),
        }
    }

    /// A time for people reading a page: `28-11-2026 20:10 WIB`.
    pub fn human_time(&self, ms: i64) -> String {
        let offset = self.config.utc_offset();
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset);
        let zone = self.zone_name();
        format!("{:02}-{:02}-{} {:02}:{:02} {zone}", t.day(), u8::from(t.month()), t.year(), t.hour(), t.minute())
    }
}

pub fn format_time(ms: i64, offset: time::UtcOffset) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(offset);
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The whole API with its limits.
pub fn router(state: AppState) -> Router {
    let config = state.config.clone();
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(healthz))
        .route("/livez", get(livez))
        .route("/metrics", get(metrics))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/enroll", post(enroll_kiosk))
        .route("/api/kiosk/whoami", get(whoami))
        .route("/api/kiosk/credential", post(rotate_credential))
        .route("/api/kiosk/actor", post(add_actor))
        .route("/api/admin/kiosks", get(admin::kiosks))
        .route("/api/admin/kiosks/{id}/revoke", post(admin::revoke))
        .route("/api/admin/enroll-codes", post(admin::enroll_code))
        .route("/api/admin/users", get(admin::users))
        .route("/api/admin/users/{username}/disable", post(|st, a, p, b| admin::set_disabled(st, a, p, b, true)))
        .route("/api/admin/users/{username}/enable", post(|st, a, p, b| admin::set_disabled(st, a, p, b, false)))
        .layer(DefaultBodyLimit::max(config.api_body_bytes_max));
    let sync = sync::routes().layer(DefaultBodyLimit::max(config.body_bytes_max));
    api.merge(central::routes().layer(DefaultBodyLimit::max(config.api_body_bytes_max)))
        .merge(complaints::routes().layer(DefaultBodyLimit::max(config.api_body_bytes_max)))
        .merge(pages::routes(&state).layer(DefaultBodyLimit::max(config.api_body_bytes_max)))
        .merge(sync)
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::by_address))
        .layer(
            ServiceBuilder::new()
                .layer(TraceLayer::new_for_http())
                .layer(HandleErrorLayer::new(overload_error))
                .load_shed()
                .layer(GlobalConcurrencyLimitLayer::new(config.requests_max))
                .timeout(config.request_timeout),
        )
        .with_state(state)
}

async fn overload_error(err: BoxError) -> ApiError {
    if err.is::<tower::timeout::error::Elapsed>() {
        error::timeout()
    } else if err.is::<tower::load_shed::error::Overloaded>() {
        error::overloaded()
    } else {
        error::internal(err)
    }
}

// ------------------------------------------------------------------ public

/// Liveness (`/livez`): the process answers HTTP. It never reads the
/// database, so a supervisor restarts a hung process, not one whose
/// database is away (restarting would not bring the database back).
async fn livez() -> Json<Value> {
    Json(json!({ "status": "alive", "version": crate::VERSION }))
}

/// Readiness (`/readyz`, and `/healthz` as before): the database answers,
/// so a load balancer may send kiosks here. 503 `not_ready` otherwise.
async fn healthz(State(st): State<AppState>) -> Result<Json<Value>, ApiError> {
    match ops::admin::database_answers(&st.db).await {
        Ok(_) => Ok(Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))),
        Err(e) => {
            tracing::error!(error = %e, "health check: the database does not answer");
            Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "server belum siap / the server is not ready",
            ))
        }
    }
}

/// Reads `token_file` for `metrics_token_file`: 64 hex characters on its
/// first line. Returns the token's SHA-256 (hex), which is all the server
/// keeps.
pub fn load_metrics_token(token_file: &std::path::Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let text = std::fs::read_to_string(token_file)
        .with_context(|| format!("reading metrics_token_file {}", token_file.display()))?;
    let token = loket_node::token::parse_token(text.lines().next().unwrap_or("")).with_context(|| {
        format!("{} must hold 64 hex characters (make one with `openssl rand -hex 32`)", token_file.display())
    })?;
    Ok(ops::auth::token_hash(&token))
}

/// Who may read `/metrics`: the holder of the metrics token (Prometheus)
/// or an admin's session; anyone else is refused like any admin route
/// (401 `unauthorized`, 403 `forbidden`). The counts say how busy the
/// server is and which refusals it sees: not for strangers.
async fn metrics_reader(st: &AppState, parts: &mut Parts) -> Result<(), ApiError> {
    if let (Some(want), Some(Ok(token))) = (&st.metrics_token_hash, auth::bearer(&parts.headers)) {
        let got = ops::auth::token_hash(&token);
        // Hashes of a random token: comparing them leaks nothing useful,
        // but compare in constant time anyway.
        let same = got.len() == want.len() && got.bytes().zip(want.bytes()).fold(0u8, |d, (a, b)| d | (a ^ b)) == 0;
        if same {
            return Ok(());
        }
    }
    let user = User::from_request_parts(parts, st).await?;
    Ok(user.require(Role::Admin)?)
}

async fn metrics(State(st): State<AppState>, mut parts: Parts) -> Result<Response, ApiError> {
    metrics_reader(&st, &mut parts).await?;
    let since = store::now_ms() - i64::try_from(Metrics::SEEN_WINDOW.as_millis()).unwrap_or(i64::MAX);
    let (seen, active) = ops::admin::kiosk_counts(&st.db, since).await?;
    st.metrics.kiosks_seen.set(seen);
    st.metrics.kiosks_enrolled.set(active);
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], st.metrics.encode()).into_response())
}

// ------------------------------------------------------------------ people

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    username: Option<String>,
    password: Option<String>,
}

pub(crate) use crate::ops::auth::LoggedIn;

/// Checks a username and password with the failure limits, and opens a
/// session. Shared by `POST /api/login` and the web login form.
pub(crate) async fn authenticate(
    st: &AppState,
    raw_username: String,
    password: String,
    addr: Option<std::net::IpAddr>,
) -> Result<LoggedIn, ApiError> {
    let metrics = st.metrics.clone();
    let result = move |r: &'static str| {
        metrics.logins.get_or_create(&ResultLabels { result: r }).inc();
    };
    Ok(ops::auth::authenticate(
        &st.db,
        st.login_guard,
        &st.hashing,
        st.config.session_ttl,
        raw_username,
        password,
        addr,
        result,
    )
    .await?)
}

async fn login(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<LoginBody>,
) -> Result<Json<Value>, ApiError> {
    let raw_username = body.username.ok_or_else(|| ApiError::missing("username"))?;
    let password = body.password.ok_or_else(|| ApiError::missing("password"))?;
    let done = authenticate(&st, raw_username, password, addr).await?;
    Ok(Json(json!({
        "token": done.token,
        "username": done.record.username,
        "role": done.record.role,
        "expires_at": st.format_time(done.expires_at_ms),
    })))
}

async fn logout(State(st): State<AppState>, user: User, headers: HeaderMap) -> Result<StatusCode, ApiError> {
    let Some(Ok(token)) = auth::bearer(&headers) else { return Err(error::unauthorized()) };
    ops::auth::logout(&st.db, &token).await?;
    tracing::info!(user = %user.username, "logged out");
    Ok(StatusCode::NO_CONTENT)
}

// ------------------------------------------------------------------ kiosks

/// Not `deny_unknown_fields`: kiosks of several versions enroll against
/// one server, and a newer kiosk may send more than this one reads.
#[derive(Debug, Deserialize)]
struct EnrollBody {
    code: Option<String>,
    actor: Option<String>,
    name: Option<String>,
    version: Option<String>,
}

fn enroll_refusal(e: &EnrollError) -> ApiError {
    let message = e.to_string();
    match e {
        EnrollError::CodeInvalid | EnrollError::CodeExpired | EnrollError::CodeUsed => {
            ApiError::new(StatusCode::FORBIDDEN, e.code(), message)
        }
        EnrollError::ActorTaken => ApiError::new(StatusCode::CONFLICT, e.code(), message),
        EnrollError::Store(s) => error::internal(s),
    }
}

async fn enroll_kiosk(
    State(st): State<AppState>,
    ClientAddr(addr): ClientAddr,
    ApiJson(body): ApiJson<EnrollBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let guard = st.login_guard;
    let blocked = ops::read(&st.db, move |c| Ok(guard.enroll_blocked(c, addr, store::now_ms())?)).await?;
    if let Some(wait) = blocked {
        st.metrics.enrollments.get_or_create(&ResultLabels { result: "limited" }).inc();
        return Err(ApiError::too_many_attempts(wait));
    }
    let db = st.db.clone();
    let refuse = async |e: EnrollError| {
        if !matches!(e, EnrollError::Store(_))
            && let Err(failed) = ops::write(&db, move |tx| Ok(guard.enroll_failed(tx, addr, store::now_ms())?)).await
        {
            tracing::error!(error = %failed, "counting a failed enrollment");
        }
        st.metrics.enrollments.get_or_create(&ResultLabels { result: e.code() }).inc();
        enroll_refusal(&e)
    };

    let raw_code = body.code.ok_or_else(|| ApiError::missing("code"))?;
    let actor = body.actor.ok_or_else(|| ApiError::missing("actor"))?;
    let version = body.version.ok_or_else(|| ApiError::missing("version"))?;
    let actor = enroll::parse_actor(&actor).map_err(|e| ApiError::unprocessable("invalid_actor", e))?;
    let version = enroll::parse_version(&version).map_err(|e| ApiError::unprocessable("invalid_version", e))?;
    let name = match body.name.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        None => None,
        Some(n) => Some(enroll::parse_name(n).map_err(|e| ApiError::unprocessable("invalid_name", e))?),
    };
    let Ok(code) = raw_code.parse::<EnrollCode>() else { return Err(refuse(EnrollError::CodeInvalid).await) };

    let request = EnrollRequest { code, actor, name, version };
    let enrolled = match ops::enroll::enroll_kiosk(&st.db, request).await {
        Ok(enrolled) => enrolled,
        Err(e) => return Err(refuse(e).await),
    };
    st.metrics.enrollments.get_or_create(&ResultLabels { result: "ok" }).inc();
    tracing::info!(kiosk = %enrolled.kiosk_code, id = %enrolled.kiosk_id, kelurahan = %enrolled.kelurahan, "kiosk enrolled");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "kiosk_id": enrolled.kiosk_id,
            "kiosk_code": enrolled.kiosk_code,
            "kelurahan": enrolled.kelurahan,
            "name": enrolled.name,
            "token": enrolled.token,
        })),
    ))
}

/// The kiosk's identity as the server knows it; a kiosk calls it after
/// enrolling (and any time) to check its credential and pinned CA work.
async fn whoami(kiosk: KioskAuth) -> Json<KioskAuth> {
    Json(kiosk)
}

/// Rotates the calling kiosk's credential: a new secret is issued and
/// works beside the current one until the kiosk first uses it, which
/// retires the old one. So a lost answer locks nobody out: the kiosk keeps
/// the old secret and asks again.
async fn rotate_credential(
    State(st): State<AppState>,
    kiosk: KioskAuth,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let token = ops::auth::rotate_kiosk_credential(&st.db, &kiosk.id).await?;
    tracing::info!(kiosk = %kiosk.code, "credential rotation started");
    Ok((StatusCode::CREATED, Json(json!({ "token": token }))))
}

/// `POST /api/kiosk/actor {actor}`: a kiosk restored from an older copy
/// of its disk registers the new Automerge actor `kiosk restore` gave it,
/// before it pushes anything. `200 {actor}`, also for a retry; `409
/// actor_taken` (another kiosk's), `409 too_many_actors`
/// ([`store::kiosks::ACTORS_MAX`]), `422 invalid_actor`.
async fn add_actor(
    State(st): State<AppState>,
    kiosk: KioskAuth,
    ApiJson(body): ApiJson<ActorBody>,
) -> Result<Json<Value>, ApiError> {
    let actor = body.actor.ok_or_else(|| ApiError::missing("actor"))?;
    let actor = enroll::parse_actor(&actor).map_err(|e| ApiError::unprocessable("invalid_actor", e))?;
    match ops::enroll::add_kiosk_actor(&st.db, &kiosk, actor.clone()).await.map_err(error::internal)? {
        store::kiosks::NewActor::Registered => {
            tracing::warn!(kiosk = %kiosk.code, %actor, "kiosk restored from a backup: new actor registered");
            Ok(Json(json!({ "actor": actor })))
        }
        store::kiosks::NewActor::Again => Ok(Json(json!({ "actor": actor }))),
        store::kiosks::NewActor::Taken => {
            Err(ApiError::new(StatusCode::CONFLICT, "actor_taken", EnrollError::ActorTaken.to_string()))
        }
        store::kiosks::NewActor::TooMany => Err(ApiError::new(
            StatusCode::CONFLICT,
            "too_many_actors",
            format!(
                "kiosk ini sudah memakai {} actor; daftarkan ulang / this kiosk holds {} actors already; enroll it again",
                store::kiosks::ACTORS_MAX,
                store::kiosks::ACTORS_MAX
            ),
        )),
    }
}

/// The body of `POST /api/kiosk/actor` (like [`EnrollBody`], more
/// fields from a newer kiosk are ignored).
#[derive(Debug, Deserialize)]
struct ActorBody {
    actor: Option<String>,
}

#[cfg(test)]
mod tests;
