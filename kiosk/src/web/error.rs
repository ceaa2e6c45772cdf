//! One error type for the HTTP API: a stable machine-readable code, a
//! human message (Bahasa Indonesia / English), and the right status.
//! Internal detail is logged, never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::{OpError, StoreError};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl std::fmt::Display) -> ApiError {
        ApiError { status, code, message: message.to_string() }
    }

    pub fn unprocessable(code: &'static str, message: impl ToString) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message.to_string())
    }

    pub fn missing(field: &str) -> ApiError {
        ApiError::unprocessable("missing_field", format!("kolom {field} wajib diisi / field {field} is required"))
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "tidak ditemukan / not found")
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "silakan masuk sebagai petugas / please log in as staff",
        )
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "terjadi kesalahan pada kiosk, silakan coba lagi / the kiosk hit an error, please try again",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(code = self.code, status = self.status.as_u16(), "request failed");
        } else {
            tracing::info!(code = self.code, status = self.status.as_u16(), message = %self.message, "request refused");
        }
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> ApiError {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "kirim sebagai application/json / send application/json",
            ),
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("JSON tidak valid / invalid JSON: {}", e.body_text()),
            ),
            JsonRejection::JsonDataError(e) => ApiError::unprocessable(
                "invalid_body",
                format!("isi permintaan tidak sesuai / the body does not fit: {}", e.body_text()),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "isi permintaan terlalu besar / the request body is too large",
            ),
            other => ApiError::new(other.status(), "invalid_body", other.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> ApiError {
        ApiError::not_found()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid_query", rejection.body_text())
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Busy => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "kiosk sedang sibuk, coba lagi sebentar / the kiosk is busy, try again shortly",
            ),
            other => ApiError::internal(other),
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
            OpError::Transition(t) => {
                use loket_shared::workflow::TransitionError as T;
                let status = match t {
                    T::AgencyRequired | T::AgencyNotExpected => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::CONFLICT,
                };
                ApiError::new(status, t.code(), message)
            }
            OpError::UnknownAgency(_) => ApiError::unprocessable("unknown_agency", message),
            OpError::IdempotencyKeyReused => ApiError::unprocessable("idempotency_key_reused", message),
            OpError::Store(s) => s.into(),
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(e)
    }
}
