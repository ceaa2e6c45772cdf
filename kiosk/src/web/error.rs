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

    /// Too many failures (logins, rating codes): `429` with the wait.
    pub fn too_many_attempts(wait: std::time::Duration) -> ApiError {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "terlalu banyak percobaan gagal; coba lagi dalam {minutes} menit / too many failed attempts; try again in {minutes} minutes"
            ),
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
            // serde's messages quote what was sent ("invalid type: integer
            // `1271…`", "unknown field `…`"): only the position, or the path
            // of a known field, goes back.
            JsonRejection::JsonSyntaxError(e) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                match position(&e.body_text()) {
                    Some((line, column)) => format!(
                        "JSON tidak valid (baris {line}, kolom {column}) / invalid JSON (line {line}, column {column})"
                    ),
                    None => "JSON tidak valid / invalid JSON".to_owned(),
                },
            ),
            JsonRejection::JsonDataError(e) => ApiError::unprocessable(
                "invalid_body",
                match field_path(&e.body_text()) {
                    Some(field) => format!("isi kolom {field} tidak sesuai / the field {field} does not fit"),
                    None => "isi permintaan tidak sesuai / the body does not fit".to_owned(),
                },
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "isi permintaan terlalu besar / the request body is too large",
            ),
            other => ApiError::new(
                other.status(),
                "invalid_body",
                "isi permintaan tidak dapat dibaca / the request body could not be read",
            ),
        }
    }
}

/// The path of the field a JSON data error is about (`applicant.nik`), if
/// the message has one made only of field names (never a value or a key
/// someone sent: an unknown key is reported without its name).
fn field_path(message: &str) -> Option<&str> {
    let path = message.split(": ").nth(1)?;
    let ok = (1..=64).contains(&path.len())
        && path.split('.').all(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
    ok.then_some(path)
}

/// `line N column M` at the end of a JSON syntax error.
fn position(message: &str) -> Option<(u64, u64)> {
    let rest = &message[message.rfind(" at line ")? + " at line ".len()..];
    let (line, column) = rest.split_once(" column ")?;
    Some((line.parse().ok()?, column.parse().ok()?))
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> ApiError {
        ApiError::not_found()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> ApiError {
        // The rejection's text quotes what was sent.
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_query",
            "parameter alamat tidak sesuai / the query parameters do not fit",
        )
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
            OpError::InvalidRatingToken => ApiError::new(StatusCode::FORBIDDEN, "invalid_rating_token", message),
            OpError::Transition(t) => {
                use loket_shared::workflow::TransitionError as T;
                let status = match t {
                    T::AgencyRequired | T::AgencyNotExpected => StatusCode::UNPROCESSABLE_ENTITY,
                    _ => StatusCode::CONFLICT,
                };
                ApiError::new(status, t.code(), message)
            }
            OpError::UnknownAgency => ApiError::unprocessable("unknown_agency", message),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_field_or_the_position_never_the_value() {
        let prefix = "Failed to deserialize the JSON body into the target type: ";
        let cases: &[(&str, Option<&str>)] = &[
            (
                "applicant.nik: invalid type: integer `1271015507880042`, expected a string at line 1 column 9",
                Some("applicant.nik"),
            ),
            (
                "password: invalid type: integer `98765432109876`, expected a string at line 1 column 2",
                Some("password"),
            ),
            ("unknown field `1271015507880042`, expected `service` or `applicant` at line 1 column 9", None),
            ("applicant: unknown field `Kucing`, expected one of `name`, `nik`, `phone`", Some("applicant")),
            ("invalid type: sequence, expected struct NewRequestBody at line 1 column 0", None),
            ("scores.Kucing Oranye: invalid type", None),
            ("scores.1271015507880042: invalid type", None),
        ];
        for (message, want) in cases {
            assert_eq!(field_path(&format!("{prefix}{message}")), *want, "{message}");
        }
        assert_eq!(position("Failed to parse: EOF while parsing an object at line 1 column 18"), Some((1, 18)));
        assert_eq!(position("expected value"), None);
    }
}
