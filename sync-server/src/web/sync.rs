//! `POST /api/sync` over HTTP: the body, the per-kiosk rate, metrics,
//! and each refusal as a status and a JSON error naming the document. The
//! exchange itself is `ops::sync`.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use loket_shared::sync::{SyncRequest, WireError};
use serde_json::json;

use super::AppState;
use crate::ops::auth::KioskAuth;
use crate::ops::sync::{CONTENT_TYPE, Refusal, exchange};
use crate::store::{StoreError, now_ms};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/sync", post(sync))
}

fn status(r: &Refusal) -> StatusCode {
    match r {
        Refusal::Wire(WireError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Wire(_) | Refusal::InvalidChanges(_) => StatusCode::BAD_REQUEST,
        Refusal::Forbidden(_) | Refusal::ForbiddenChange(_) => StatusCode::FORBIDDEN,
        Refusal::InvalidDocument(_) | Refusal::InvalidStructure(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Refusal::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Refusal::Workflow(..) => StatusCode::FORBIDDEN,
        Refusal::Unreadable(_) => StatusCode::CONFLICT,
        Refusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Refusal::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refusal_response(r: Refusal) -> Response {
    if let Refusal::Store(e) = &r {
        tracing::error!(error = %e, "sync failed");
    } else {
        tracing::warn!(code = r.code(), message = %r.message(), "sync refused");
    }
    let mut error = json!({ "code": r.code(), "message": r.message() });
    if let Refusal::Wire(WireError::Version { .. }) = &r {
        // What the kiosk must speak: its release says whether an update helps.
        error["server_protocol"] = json!(loket_shared::sync::PROTOCOL_VERSION);
    }
    if let Some(doc) = r.doc() {
        // The kiosk quarantines exactly this document and syncs the rest.
        error["doc"] = json!(doc.to_string());
    }
    (status(&r), Json(json!({ "error": error }))).into_response()
}

async fn sync(
    State(st): State<AppState>,
    kiosk: KioskAuth,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    let body = match body {
        Ok(b) => b,
        Err(rejection) => {
            let too_large = rejection.status() == StatusCode::PAYLOAD_TOO_LARGE;
            let code = if too_large { "body_too_large" } else { "invalid_sync_message" };
            st.metrics.record_refusal(code);
            let message = if too_large {
                "batch terlalu besar / the batch is too large"
            } else {
                "isi permintaan tidak terbaca / the request body could not be read"
            };
            tracing::warn!(kiosk = %kiosk.code, code, "sync refused");
            return (rejection.status(), Json(json!({ "error": { "code": code, "message": message } })))
                .into_response();
        }
    };
    if let Err(wait) = st.limits.check_kiosk(&kiosk.id) {
        st.metrics.record_refusal("rate_limited");
        tracing::warn!(kiosk = %kiosk.code, "sync rate limited");
        return super::ratelimit::too_many(wait).into_response();
    }
    let started = Instant::now();
    let bytes_in = body.len();
    let db = st.db.clone();
    let seal = st.seal.clone();
    let kiosk_code = kiosk.code.clone();
    let span = tracing::info_span!("sync", kiosk = %kiosk.code, kelurahan = %kiosk.kelurahan);
    // Never closed: the state owns the semaphore for the server's life.
    let Ok(permit) = st.merging.clone().acquire_owned().await else {
        return refusal_response(Refusal::Store(StoreError::Invalid("the server is stopping".into())));
    };
    let result = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let _entered = span.entered();
        let req = SyncRequest::decode(&body).map_err(Refusal::Wire)?;
        exchange(&db, &seal, &kiosk, &req, now_ms())
    })
    .await;
    let metrics = &st.metrics;
    match result {
        Ok(Ok((resp, stats))) => {
            let encoded = resp.encode();
            metrics.record_sync(true, bytes_in, encoded.len(), stats.docs_in, stats.docs_out, started.elapsed());
            for _ in 0..stats.unreadable {
                metrics.record_refusal("unreadable_document");
            }
            metrics.stale_commits.inc_by(stats.stale_commits as u64);
            metrics.full_checks.inc_by(stats.full_checks as u64);
            tracing::info!(
                kiosk = %kiosk_code, docs_in = stats.docs_in, docs_out = stats.docs_out, bytes_in,
                bytes_out = encoded.len(), elapsed_ms = started.elapsed().as_millis() as u64, "synced"
            );
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], encoded).into_response()
        }
        Ok(Err(refusal)) => {
            metrics.record_refusal(refusal.code());
            metrics.record_sync(false, bytes_in, 0, 0, 0, started.elapsed());
            refusal_response(refusal)
        }
        Err(join) => refusal_response(Refusal::Store(StoreError::Invalid(format!("sync task: {join}")))),
    }
}
