//! One error type for the HTTP API: a stable machine-readable code, a
//! human message (Bahasa Indonesia / English), and the right status.
//! Internal detail is logged, never sent.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::ops::{OpError, Refusal};
use crate::store::StoreError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Sent as `Retry-After` (whole seconds, at least 1).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl std::fmt::Display) -> ApiError {
        ApiError { status, code, message: message.to_string(), retry_after: None }
    }

    pub fn with_retry_after(mut self, wait: Duration) -> ApiError {
        self.retry_after = Some(wait);
        self
    }

    pub fn bad_request(code: &'static str, message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unprocessable(code: &'static str, message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
    }

    pub fn missing(field: &str) -> ApiError {
        ApiError::unprocessable("missing_field", format!("kolom {field} wajib diisi / field {field} is required"))
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "tidak ditemukan / not found")
    }

    pub fn unauthorized() -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "silakan masuk terlebih dahulu / please log in")
    }

    pub fn forbidden() -> ApiError {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "peran Anda tidak diizinkan melakukan ini / your role may not do this",
        )
    }

    pub fn unknown_kiosk() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unknown_kiosk",
            "kiosk tidak dikenal; daftarkan ulang / unknown kiosk; enroll it again",
        )
    }

    pub fn too_many_attempts(wait: Duration) -> ApiError {
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "terlalu banyak percobaan gagal, coba lagi nanti / too many failed attempts, try again later",
        )
        .with_retry_after(wait)
    }

    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "terjadi kesalahan pada server, silakan coba lagi / the server hit an error, please try again",
        )
    }

    pub fn overloaded() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "server sedang sibuk, coba lagi sebentar / the server is busy, try again shortly",
        )
        .with_retry_after(Duration::from_secs(1))
    }

    pub fn timeout() -> ApiError {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "timeout",
            "permintaan terlalu lama diproses / the request took too long",
        )
        .with_retry_after(Duration::from_secs(1))
    }
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
                let error = ApiError::new(status, code, message);
                match kind {
                    Refusal::TooMany(wait) => error.with_retry_after(wait),
                    _ => error,
                }
            }
            OpError::Store(e) => ApiError::from(e),
            OpError::Internal(detail) => ApiError::internal(detail),
        }
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
        let mut response = (self.status, Json(body)).into_response();
        if let Some(wait) = self.retry_after {
            let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
        }
        response
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
            JsonRejection::JsonSyntaxError(e) => {
                let at = find_cause::<serde_json::Error>(&e)
                    .or_else(|| find_cause::<serde_path_to_error::Error<serde_json::Error>>(&e).map(|p| p.inner()))
                    .map(|j| (j.line(), j.column()));
                let message = match at {
                    Some((line, column)) => format!(
                        "JSON tidak valid di baris {line} kolom {column} / invalid JSON at line {line} column {column}"
                    ),
                    None => "JSON tidak valid / invalid JSON".to_owned(),
                };
                ApiError::bad_request("invalid_json", message)
            }
            JsonRejection::JsonDataError(e) => {
                let (id, en) = find_cause::<serde_path_to_error::Error<serde_json::Error>>(&e)
                    .map(|p| misfit(p.path(), &p.inner().to_string()))
                    .unwrap_or_default();
                ApiError::unprocessable(
                    "invalid_body",
                    format!("isi permintaan tidak sesuai{id} / the body does not fit{en}"),
                )
            }
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                "isi permintaan terlalu besar / the request body is too large",
            ),
            other => ApiError::new(
                other.status(),
                "invalid_body",
                "isi permintaan tidak dapat dibaca / the request body cannot be read",
            ),
        }
    }
}

// Refusals of a body or a query string name where it did not fit, never
// what was there: serde's own messages quote the value (`invalid type:
// integer `1271010101900003``) and unknown keys, which may be a NIK or a
// password typed into the wrong field. So they are not passed on.

/// The first error of type `E` in `e`'s chain of causes.
fn find_cause<'a, E: std::error::Error + 'static>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a E> {
    let mut next = Some(e);
    while let Some(err) = next {
        if let Some(found) = err.downcast_ref::<E>() {
            return Some(found);
        }
        next = err.source();
    }
    None
}

/// Where a value did not fit, in Indonesian and English (`: kolom
/// `password``, `: field `password``), from its path and serde's message,
/// without the value. Only names that look like our own field names are
/// repeated (a map key is input).
fn misfit(path: &serde_path_to_error::Path, serde_message: &str) -> (String, String) {
    use serde_path_to_error::Segment;
    let ours = |s: &str| {
        (1..=40).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let segments: Vec<String> = path
        .iter()
        .map(|segment| match segment {
            Segment::Seq { index } => format!("[{index}]"),
            Segment::Map { key } if ours(key) => key.clone(),
            Segment::Enum { variant } if ours(variant) => variant.clone(),
            _ => "?".to_owned(),
        })
        .collect();
    let join = |segments: &[String]| segments.join(".").replace(".[", "[");
    // serde's wording for a field the struct lacks or misses; the name in
    // `missing field `x`` is the struct's own. An unknown key is the last
    // segment of the path: it is input, so it is left out.
    if serde_message.starts_with("unknown field") {
        let parent = join(&segments[..segments.len().saturating_sub(1)]);
        return if parent.is_empty() {
            (": ada kolom yang tidak dikenal".to_owned(), ": a field is not known here".to_owned())
        } else {
            (format!(": ada kolom yang tidak dikenal di `{parent}`"), format!(": a field in `{parent}` is not known"))
        };
    }
    if let Some(name) = serde_message.strip_prefix("missing field `").and_then(|r| r.split('`').next())
        && ours(name)
    {
        return (format!(": kolom `{name}` wajib diisi"), format!(": field `{name}` is required"));
    }
    match join(&segments) {
        field if field.is_empty() => (String::new(), String::new()),
        field => (format!(": kolom `{field}`"), format!(": field `{field}`")),
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> ApiError {
        ApiError::not_found()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        let (id, en) = find_cause::<serde_path_to_error::Error<serde_urlencoded::de::Error>>(&rejection)
            .map(|p| misfit(p.path(), &p.inner().to_string()))
            .unwrap_or_default();
        ApiError::bad_request("invalid_query", format!("parameter tidak sesuai{id} / the query does not fit{en}"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        if matches!(e, StoreError::Busy(_) | StoreError::Unavailable(_)) {
            tracing::warn!(error = %e, "database busy");
            return ApiError::overloaded();
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
        ApiError::internal(e)
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> ApiError {
        ApiError::internal(e)
    }
}
