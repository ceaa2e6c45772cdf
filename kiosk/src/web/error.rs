//! The kiosk's side of `loket_node::error::ApiError` (the JSON error body,
//! its stable codes, the refusals of bodies and query strings): the
//! refusals only the kiosk makes, and how its store's and operations'
//! errors become codes. Internal detail is logged, never sent.

use axum::http::StatusCode;
pub use loket_node::error::ApiError;

use crate::store::{OpError, StoreError};

/// 401 `unauthorized`: the staff API without a staff session.
pub fn unauthorized() -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "silakan masuk sebagai petugas / please log in as staff")
}

/// 500 `internal`, naming the kiosk; `detail` goes to the log only.
pub fn internal(detail: impl std::fmt::Display) -> ApiError {
    ApiError::internal("kiosk", detail)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "kiosk sedang sibuk, coba lagi sebentar / the kiosk is busy, try again shortly",
            ),
            other => internal(other),
        }
    }
}

impl From<OpError> for ApiError {
    fn from(e: OpError) -> ApiError {
        let message = e.to_string();
        match e {
            OpError::UnknownService => ApiError::unprocessable("unknown_service", message),
            OpError::NotFound => ApiError::not_found(),
            OpError::AlreadyRated => ApiError::new(StatusCode::CONFLICT, "already_rated", message),
            OpError::InvalidRatingToken => ApiError::new(StatusCode::FORBIDDEN, "invalid_rating_token", message),
            OpError::NotFinished => ApiError::new(StatusCode::CONFLICT, "not_finished", message),
            OpError::Transition(t) => {
                let status = if t.is_bad_input() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::CONFLICT };
                ApiError::new(status, t.code(), message)
            }
            OpError::UnknownAgency => ApiError::unprocessable("unknown_agency", message),
            OpError::IdempotencyKeyReused => ApiError::unprocessable("idempotency_key_reused", message),
            OpError::UnknownStaff => ApiError::unprocessable("unknown_staff", message),
            OpError::InvalidComplaintText => ApiError::unprocessable("invalid_text", message),
            OpError::Store(s) => s.into(),
        }
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)?
}
