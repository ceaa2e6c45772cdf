//! The server's side of `loket_node::error::ApiError` (the JSON error
//! body, its stable codes, the refusals of bodies, query strings and
//! forms): the refusals only the server makes, and how an `OpError` or a
//! `StoreError` becomes a code. Internal detail is logged, never sent.

use std::time::Duration;

use axum::http::StatusCode;
pub use loket_node::error::ApiError;

use crate::ops::{OpError, Refusal};
use crate::store::StoreError;

/// 401 `unauthorized`: no session (or an unusable token).
pub fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "silakan masuk terlebih dahulu / please log in")
}

/// 403 `forbidden`: the caller's role may not do this.
pub fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "peran Anda tidak diizinkan melakukan ini / your role may not do this",
    )
}

/// 401 `unknown_kiosk`: a credential no kiosk holds.
pub fn unknown_kiosk() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unknown_kiosk",
        "kiosk tidak dikenal; daftarkan ulang / unknown kiosk; enroll it again",
    )
}

/// 500 `internal`, naming the server; `detail` goes to the log only.
pub fn internal(detail: impl std::fmt::Display) -> ApiError {
    ApiError::internal("server", detail)
}

/// How long a busy server tells a client to wait: 1 to 3 seconds at
/// random, so the kiosks turned away in one instant do not all come back
/// in the next (after a city-wide outage, hundreds at once).
fn busy_wait() -> Duration {
    Duration::from_secs(1 + u64::from(loket_node::random_bytes::<1>()[0] % 3))
}

/// 503 `overloaded`: too many requests in flight, or the database busy.
pub fn overloaded() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "overloaded",
        "server sedang sibuk, coba lagi sebentar / the server is busy, try again shortly",
    )
    .with_retry_after(busy_wait())
}

/// 503 `timeout`: the request took longer than `request_timeout`.
pub fn timeout() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "timeout",
        "permintaan terlalu lama diproses / the request took too long",
    )
    .with_retry_after(busy_wait())
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        match e {
            OpError::Refused { kind, code, message } => {
                let status = match kind {
                    Refusal::BadRequest => StatusCode::BAD_REQUEST,
                    Refusal::Unprocessable => StatusCode::UNPROCESSABLE_ENTITY,
                    Refusal::NotFound => StatusCode::NOT_FOUND,
                    Refusal::Forbidden => StatusCode::FORBIDDEN,
                    Refusal::Conflict => StatusCode::CONFLICT,
                    Refusal::Unauthorized => StatusCode::UNAUTHORIZED,
                    Refusal::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
                };
                match kind {
                    // Worded by loket-node: the wait in minutes, and in
                    // `Retry-After`.
                    Refusal::TooMany(wait) if code == "too_many_attempts" => ApiError::too_many_attempts(wait),
                    Refusal::TooMany(wait) => ApiError::new(status, code, message).with_retry_after(wait),
                    _ => ApiError::new(status, code, message),
                }
            }
            OpError::Store(e) => ApiError::from(e),
            OpError::Internal(detail) => internal(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if matches!(e, StoreError::Busy(_) | StoreError::Unavailable(_)) {
            tracing::warn!(error = %e, "database busy");
            return overloaded();
        }
        if let StoreError::Corrupt { what, reason } = &e {
            // One document this server cannot read back: refuse that one,
            // by id, and log why; everything else keeps working.
            tracing::error!(doc = %what, %reason, "a stored document does not read back");
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "unreadable_document",
                format!("dokumen {what} tidak dapat dibaca / document {what} cannot be read"),
            );
        }
        internal(e)
    }
}
