//! One error type for a node's HTTP API: a stable machine-readable code, a
//! human message ("Bahasa Indonesia / English") and the right status.
//!
//! Invariants:
//! - The body is always `{"error": {"code": CODE, "message": MESSAGE}}`;
//!   clients branch on `code`, people read `message`.
//! - Internal detail is logged, never sent: a 5xx says only that the node
//!   hit an error.
//! - A refusal of a body, query string or form names where it did not fit
//!   (a field of ours, a list index, a line and column), never what was
//!   there: serde's own messages quote the value (`invalid type: integer
//!   `1271010101900003``) and unknown keys, which may be a NIK or a
//!   password typed into the wrong field, so they are not passed on.
//! - `Retry-After` is whole seconds, rounded up, at least 1.
//!
//! What differs between the binaries stays with them: their extra codes
//! (as functions returning an `ApiError`) and the conversions of their own
//! errors (`impl From<StoreError> for ApiError` is allowed in the binary,
//! since `StoreError` is its type).

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{FormRejection, JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

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

    /// 422 `missing_field`, naming the field (ours, never input).
    pub fn missing(field: &str) -> ApiError {
        ApiError::unprocessable("missing_field", format!("kolom {field} wajib diisi / field {field} is required"))
    }

    pub fn not_found() -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", "tidak ditemukan / not found")
    }

    /// 500 `internal`: `detail` goes to the log; the client learns only
    /// that `node` (`kiosk`, `server`) hit an error.
    pub fn internal(node: &str, detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!("terjadi kesalahan pada {node}, silakan coba lagi / the {node} hit an error, please try again"),
        )
    }

    /// 429 `too_many_attempts` (failed logins, wrong codes): the wait in
    /// minutes for people and in `Retry-After` for programs.
    pub fn too_many_attempts(wait: Duration) -> ApiError {
        let minutes = wait.as_secs().div_ceil(60).max(1);
        ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            format!(
                "terlalu banyak percobaan gagal; coba lagi dalam {minutes} menit / too many failed attempts; try again in {minutes} minutes"
            ),
        )
        .with_retry_after(wait)
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
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => body_too_large(),
            other => ApiError::new(
                other.status(),
                "invalid_body",
                "isi permintaan tidak dapat dibaca / the request body cannot be read",
            ),
        }
    }
}

fn body_too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        "isi permintaan terlalu besar / the request body is too large",
    )
}

/// A form that cannot be read: 413 `body_too_large`, else `invalid_form`
/// with axum's status (415 without the form content type, 400/422 for
/// what does not fit). Forms answer people, who get no field names: the
/// page they filled in is the one that sent it.
impl From<FormRejection> for ApiError {
    fn from(rejection: FormRejection) -> ApiError {
        let status = rejection.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return body_too_large();
        }
        ApiError::new(status, "invalid_form", "isian formulir tidak dapat dibaca / the form could not be read")
    }
}

/// An unusable path parameter is a page that does not exist.
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::Router;
    use axum::body::Body;
    use axum::extract::{Form, Json as JsonBody, Query};
    use axum::http::Request;
    use axum::routing::post;
    use serde::Deserialize;
    use tower::ServiceExt;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body1 {
        service: Option<String>,
        applicant: Option<Applicant>,
        scores: Option<BTreeMap<String, u8>>,
        items: Option<Vec<u8>>,
        id2: Option<u32>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Applicant {
        name: String,
        nik: String,
    }

    async fn post_json(body: &'static str) -> (StatusCode, serde_json::Value) {
        let app = Router::new().route(
            "/",
            post(|b: Result<JsonBody<Body1>, JsonRejection>| async move {
                match b {
                    Ok(_) => StatusCode::NO_CONTENT.into_response(),
                    Err(e) => ApiError::from(e).into_response(),
                }
            }),
        );
        let req = Request::post("/").header("content-type", "application/json").body(Body::from(body)).unwrap();
        let resp = app.oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    /// Each case: a body, and the code and message it is refused with. The
    /// values sent (a NIK, a password, a map key) never come back.
    #[tokio::test]
    async fn json_refusals_name_the_field_or_the_position_never_the_value() {
        let cases: &[(&str, &str, &str)] = &[
            (
                r#"{"applicant": {"name": "Rina", "nik": 1271015507880042}}"#,
                "invalid_body",
                "isi permintaan tidak sesuai: kolom `applicant.nik` / the body does not fit: field `applicant.nik`",
            ),
            (
                r#"{"1271015507880042": 1}"#,
                "invalid_body",
                "isi permintaan tidak sesuai: ada kolom yang tidak dikenal / the body does not fit: a field is not known here",
            ),
            (
                r#"{"applicant": {"name": "Rina", "nik": "x", "Kucing": 1}}"#,
                "invalid_body",
                "isi permintaan tidak sesuai: ada kolom yang tidak dikenal di `applicant` / the body does not fit: a field in `applicant` is not known",
            ),
            (
                r#"{"applicant": {"nik": "1271015507880042"}}"#,
                "invalid_body",
                "isi permintaan tidak sesuai: kolom `name` wajib diisi / the body does not fit: field `name` is required",
            ),
            (
                r#"{"scores": {"Kucing Oranye": "rahasia"}}"#,
                "invalid_body",
                "isi permintaan tidak sesuai: kolom `scores.?` / the body does not fit: field `scores.?`",
            ),
            (
                r#"{"items": [1, 2, "rahasia"]}"#,
                "invalid_body",
                "isi permintaan tidak sesuai: kolom `items[2]` / the body does not fit: field `items[2]`",
            ),
            (
                r#"{"id2": "98765432109876"}"#,
                "invalid_body",
                "isi permintaan tidak sesuai: kolom `id2` / the body does not fit: field `id2`",
            ),
            (r#""1271015507880042""#, "invalid_body", "isi permintaan tidak sesuai / the body does not fit"),
            (
                r#"[1271015507880042]"#,
                "invalid_body",
                "isi permintaan tidak sesuai: kolom `[0]` / the body does not fit: field `[0]`",
            ),
            (
                "{\"service\": \"SKD\",\n \"applicant\": {\"nik\" \"1271015507880042\"}}",
                "invalid_json",
                "JSON tidak valid di baris 2 kolom 22 / invalid JSON at line 2 column 22",
            ),
            (
                r#"{"service": "SKD""#,
                "invalid_json",
                "JSON tidak valid di baris 1 kolom 17 / invalid JSON at line 1 column 17",
            ),
        ];
        for (body, code, message) in cases {
            let (status, v) = post_json(body).await;
            assert_eq!(v["error"]["code"], *code, "{body}");
            assert_eq!(v["error"]["message"], *message, "{body}");
            let want = if *code == "invalid_json" { StatusCode::BAD_REQUEST } else { StatusCode::UNPROCESSABLE_ENTITY };
            assert_eq!(status, want, "{body}");
            for secret in ["1271015507880042", "98765432109876", "Kucing", "rahasia"] {
                assert!(!v.to_string().contains(secret), "{body} echoed {secret}");
            }
        }
    }

    #[tokio::test]
    async fn json_without_its_content_type_and_queries_and_forms() {
        let app = Router::new()
            .route(
                "/json",
                post(|b: Result<JsonBody<Body1>, JsonRejection>| async move {
                    b.map(|_| StatusCode::NO_CONTENT).map_err(ApiError::from)
                }),
            )
            .route(
                "/query",
                post(|q: Result<Query<Body1>, QueryRejection>| async move {
                    q.map(|_| StatusCode::NO_CONTENT).map_err(ApiError::from)
                }),
            )
            .route(
                "/form",
                post(|f: Result<Form<Applicant>, FormRejection>| async move {
                    f.map(|_| StatusCode::NO_CONTENT).map_err(ApiError::from)
                }),
            )
            .layer(axum::extract::DefaultBodyLimit::max(64));
        let call = |req: Request<Body>| {
            let app = app.clone();
            async move {
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status();
                let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
                (status, serde_json::from_slice::<serde_json::Value>(&bytes).unwrap_or_default())
            }
        };
        let (status, v) = call(Request::post("/json").body(Body::from("{}")).unwrap()).await;
        assert_eq!(
            (status, v["error"]["code"].as_str()),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("unsupported_media_type"))
        );

        let big = format!(r#"{{"service": "{}"}}"#, "x".repeat(100));
        let req = Request::post("/json").header("content-type", "application/json").body(Body::from(big)).unwrap();
        let (status, v) = call(req).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")));

        let (status, v) = call(Request::post("/query?id2=98765432109876x").body(Body::empty()).unwrap()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["error"]["code"], "invalid_query");
        assert_eq!(v["error"]["message"], "parameter tidak sesuai: kolom `id2` / the query does not fit: field `id2`");
        let (_, v) = call(Request::post("/query?rahasia=1").body(Body::empty()).unwrap()).await;
        assert_eq!(v["error"]["code"], "invalid_query");
        assert!(!v.to_string().contains("rahasia"), "{v}");

        let form = |body: String| {
            Request::post("/form")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap()
        };
        let (status, v) = call(form("name=Rina".into())).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_form")));
        assert_eq!(v["error"]["message"], "isian formulir tidak dapat dibaca / the form could not be read");
        let (status, v) = call(form(format!("name={}", "x".repeat(100)))).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large")));
        let (status, v) = call(Request::post("/form").body(Body::from("name=Rina&nik=1")).unwrap()).await;
        assert_eq!((status, v["error"]["code"].as_str()), (StatusCode::UNSUPPORTED_MEDIA_TYPE, Some("invalid_form")));
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_internal_detail_stays_in_the_log() {
        let header = |wait: Duration| {
            ApiError::too_many_attempts(wait).into_response().headers()[header::RETRY_AFTER]
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(header(Duration::from_millis(1)), "1");
        assert_eq!(header(Duration::from_millis(1500)), "2");
        assert_eq!(header(Duration::from_secs(900)), "900");
        let e = ApiError::too_many_attempts(Duration::from_secs(61));
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(e.message.contains("dalam 2 menit") && e.message.contains("in 2 minutes"), "{}", e.message);

        let e = ApiError::internal("kiosk", "disk I/O error at /var/lib/loket/kiosk.db");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.code, "internal");
        assert_eq!(
            e.message,
            "terjadi kesalahan pada kiosk, silakan coba lagi / the kiosk hit an error, please try again"
        );
        assert!(ApiError::internal("server", "x").message.contains("the server hit an error"));
        assert!(ApiError::not_found().into_response().headers().get(header::RETRY_AFTER).is_none());
    }
}
