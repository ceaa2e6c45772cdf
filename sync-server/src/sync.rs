//! The sync endpoint (DESIGN.md §4): `POST /api/sync` with a binary
//! `loket_shared::sync` message, authenticated as a kiosk.
//!
//! One exchange runs in one write transaction: kiosk health, the push
//! (each document merged, checked and projected), then the pull. Nothing
//! of a refused batch is stored. A document whose pushed changes lack
//! dependencies is answered with Automerge's sync protocol for that one
//! document instead (`PushOutcome::Fallback`), and nothing of it is stored
//! until the exchange completes.

use std::time::Instant;

use automerge::AutoCommit;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use loket_shared::DocId;
use loket_shared::sync::{
    BATCH_DOCS_MAX, DocType, PROTOCOL_VERSION, PullDoc, PushAck, PushDoc, PushOutcome, SyncRequest, SyncResponse,
    WireError,
};
use rusqlite::{Connection, params};
use serde_json::json;

use crate::auth::KioskAuth;
use crate::store::StoreError;
use crate::store::docs::{self, Stored, from_hashes, to_hashes};
use crate::web::AppState;

pub const CONTENT_TYPE: &str = "application/x-loket-sync";
/// Bytes of changes one pull answer carries at most (more follows).
const PULL_BYTES_MAX: usize = 4 * 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/sync", post(sync))
}

/// Why a whole sync batch was refused.
#[derive(Debug)]
pub enum Refusal {
    Wire(WireError),
    Forbidden(String),
    InvalidChanges(String),
    InvalidDocument(String),
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Store(e)
    }
}

impl From<rusqlite::Error> for Refusal {
    fn from(e: rusqlite::Error) -> Refusal {
        Refusal::Store(e.into())
    }
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Wire(WireError::Version { .. }) => "unsupported_protocol_version",
            Refusal::Wire(WireError::TooLarge(_)) => "batch_too_large",
            Refusal::Wire(WireError::Limit(_)) => "batch_limit",
            Refusal::Wire(_) => "invalid_sync_message",
            Refusal::Forbidden(_) => "forbidden_document",
            Refusal::InvalidChanges(_) => "invalid_changes",
            Refusal::InvalidDocument(_) => "invalid_document",
            Refusal::Store(_) => "internal",
        }
    }

    fn status(&self) -> StatusCode {
        match self {
            Refusal::Wire(WireError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            Refusal::Wire(_) | Refusal::InvalidChanges(_) => StatusCode::BAD_REQUEST,
            Refusal::Forbidden(_) => StatusCode::FORBIDDEN,
            Refusal::InvalidDocument(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Refusal::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::Wire(e) => format!("pesan sinkronisasi ditolak / sync message refused: {e}"),
            Refusal::Forbidden(m) => format!("dokumen ini bukan milik kiosk ini / not this kiosk's document: {m}"),
            Refusal::InvalidChanges(m) => format!("perubahan tidak dapat dibaca / changes cannot be read: {m}"),
            Refusal::InvalidDocument(m) => {
                format!("dokumen tidak sah setelah digabung / document invalid after merge: {m}")
            }
            Refusal::Store(_) => "kesalahan server / server error".into(),
        }
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        if let Refusal::Store(e) = &self {
            tracing::error!(error = %e, "sync failed");
        } else {
            tracing::warn!(code = self.code(), message = %self.message(), "sync refused");
        }
        (self.status(), Json(json!({ "error": { "code": self.code(), "message": self.message() } }))).into_response()
    }
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
    let started = Instant::now();
    let bytes_in = body.len();
    let db = st.db.clone();
    let kiosk_code = kiosk.code.clone();
    let span = tracing::info_span!("sync", kiosk = %kiosk.code, kelurahan = %kiosk.kelurahan);
    let result = tokio::task::spawn_blocking(move || {
        let _entered = span.entered();
        let req = SyncRequest::decode(&body).map_err(Refusal::Wire)?;
        let now = now_ms();
        db.write(|tx| handle(tx, &kiosk, &req, now))
    })
    .await;
    let metrics = &st.metrics;
    match result {
        Ok(Ok((resp, stats))) => {
            let encoded = resp.encode();
            metrics.record_sync(true, bytes_in, encoded.len(), stats.docs_in, stats.docs_out, started.elapsed());
            tracing::info!(
                kiosk = %kiosk_code, docs_in = stats.docs_in, docs_out = stats.docs_out, bytes_in,
                bytes_out = encoded.len(), elapsed_ms = started.elapsed().as_millis() as u64, "synced"
            );
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], encoded).into_response()
        }
        Ok(Err(refusal)) => {
            metrics.record_refusal(refusal.code());
            metrics.record_sync(false, bytes_in, 0, 0, 0, started.elapsed());
            refusal.into_response()
        }
        Err(join) => Refusal::Store(StoreError::Invalid(format!("sync task: {join}"))).into_response(),
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub docs_in: usize,
    pub docs_out: usize,
}

pub fn now_ms() -> i64 {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// One exchange, inside the caller's transaction.
pub fn handle(
    tx: &Connection,
    kiosk: &KioskAuth,
    req: &SyncRequest,
    now: i64,
) -> Result<(SyncResponse, Stats), Refusal> {
    tx.execute(
        "UPDATE kiosks SET last_seen_at_ms = ?2, version = ?3, pending_known = ?4 WHERE id = ?1",
        params![kiosk.id, now, req.client, i64::try_from(req.pending).unwrap_or(i64::MAX)],
    )?;
    docs::promote_sent(tx, &kiosk.id, req.pull_after)?;
    let mut stats = Stats::default();
    let mut acks = Vec::with_capacity(req.push.len());
    for p in &req.push {
        acks.push(apply_push(tx, kiosk, p, now)?);
        stats.docs_in += 1;
    }
    let (pull, pull_next, more) = pull(tx, kiosk, req.pull_after)?;
    stats.docs_out = pull.len();
    tx.execute("UPDATE kiosks SET last_sync_ok_at_ms = ?2 WHERE id = ?1", params![kiosk.id, now])?;
    Ok((SyncResponse { version: PROTOCOL_VERSION, acks, pull, pull_next, more }, stats))
}

fn apply_push(tx: &Connection, kiosk: &KioskAuth, p: &PushDoc, now: i64) -> Result<PushAck, Refusal> {
    let id = DocId::from_bytes(p.doc);
    let doc_id = id.to_string();
    let _span = tracing::debug_span!("push", doc = %doc_id).entered();
    if p.doc_type != DocType::Request {
        return Err(Refusal::Forbidden(format!("{doc_id}: kiosks may not write {} documents", p.doc_type.as_str())));
    }
    let (mut stored, is_new) = match docs::load(tx, &doc_id)? {
        Some(s) => {
            if s.doc_type != DocType::Request || s.kelurahan.as_deref() != Some(kiosk.kelurahan.as_str()) {
                return Err(Refusal::Forbidden(doc_id));
            }
            (s, false)
        }
        None => (
            Stored { doc_type: DocType::Request, kelurahan: Some(kiosk.kelurahan.to_string()), doc: AutoCommit::new() },
            true,
        ),
    };
    let heads_before = stored.doc.get_heads();
    if !p.changes.is_empty() {
        stored.doc.load_incremental(&p.changes).map_err(|e| Refusal::InvalidChanges(format!("{doc_id}: {e}")))?;
    }
    let mut reply = None;
    if let Some(msg) = &p.fallback {
        reply = Some(
            docs::receive_fallback(&mut stored.doc, msg)
                .map_err(|e| Refusal::InvalidChanges(format!("{doc_id}: {e}")))?,
        );
    }
    if !stored.doc.get_missing_deps(&[]).is_empty() {
        // The kiosk's base was wrong. Store nothing of it; answer with our
        // sync message so the kiosk sends exactly what we lack.
        let mut clean = match docs::load(tx, &doc_id)? {
            Some(s) => s.doc,
            None => AutoCommit::new(),
        };
        tracing::info!(kiosk = %kiosk.code, doc = %doc_id, "missing dependencies: falling back to the sync protocol");
        return Ok(PushAck {
            doc: p.doc,
            outcome: PushOutcome::Fallback { fallback: docs::fallback_message(&mut clean) },
        });
    }
    let heads_after = stored.doc.get_heads();
    if heads_after != heads_before {
        let (view, derived) =
            docs::read_request(&stored.doc).map_err(|e| Refusal::InvalidDocument(format!("{doc_id}: {e}")))?;
        if view.id != id || view.kelurahan != kiosk.kelurahan {
            return Err(Refusal::Forbidden(format!("{doc_id}: belongs to {}", view.kelurahan)));
        }
        let incoming = (is_new && p.fallback.is_none()).then_some(p.changes.as_slice());
        docs::save(tx, &doc_id, &mut stored, &heads_before, is_new, incoming, now)?;
        docs::record_receipts(tx, &doc_id, &mut stored.doc, &heads_before, Some(&kiosk.id), now)?;
        docs::project_request(tx, &view, &derived)?;
    }
    // What the kiosk holds now: its own heads, once we have all of them.
    if stored.doc.get_missing_deps(&from_hashes(&p.heads)).is_empty() {
        docs::set_kiosk_heads(tx, &kiosk.id, &doc_id, &p.heads)?;
    }
    let outcome = match reply {
        Some(fallback) => PushOutcome::Fallback { fallback },
        None => PushOutcome::Applied { heads: to_hashes(&heads_after) },
    };
    Ok(PushAck { doc: p.doc, outcome })
}

/// Candidate rows one pull looks at, at most. Documents the kiosk already
/// holds are skipped cheaply (no load), so a pull may pass over many of
/// them to move the kiosk's cursor in one exchange; this bounds that scan.
const PULL_SCAN_MAX: usize = 20_000;

fn pull(tx: &Connection, kiosk: &KioskAuth, after: u64) -> Result<(Vec<PullDoc>, u64, bool), Refusal> {
    let candidates = docs::changed_since(tx, &kiosk.id, &kiosk.kelurahan, after, PULL_SCAN_MAX)?;
    let more_docs = candidates.len() > PULL_SCAN_MAX;
    let mut out = Vec::new();
    let mut next = after;
    let mut bytes = 0usize;
    let mut cut_short = false;
    for candidate in candidates.into_iter().take(PULL_SCAN_MAX) {
        if bytes >= PULL_BYTES_MAX || out.len() >= BATCH_DOCS_MAX {
            cut_short = true;
            break;
        }
        let docs::Candidate { doc_id, seq, heads, kiosk_heads } = candidate;
        if heads.is_some() && heads == kiosk_heads {
            // The kiosk holds exactly what we hold (typically: it just
            // pushed it): skip without loading the document.
            next = u64::try_from(seq).unwrap_or(next);
            continue;
        }
        let Some(mut stored) = docs::load(tx, &doc_id)? else {
            return Err(Refusal::Store(StoreError::Corrupt { what: doc_id, reason: "listed but not stored".into() }));
        };
        let server_heads = stored.doc.get_heads();
        let mut sorted_server = to_hashes(&server_heads);
        sorted_server.sort();
        let known = docs::kiosk_heads(tx, &kiosk.id, &doc_id)?;
        let changes = match known {
            Some(mut h) if stored.doc.get_missing_deps(&from_hashes(&h)).is_empty() => {
                h.sort();
                if h == sorted_server {
                    next = u64::try_from(seq).unwrap_or(next);
                    continue; // the kiosk has it all (typically: it just pushed it)
                }
                stored.doc.save_after(&from_hashes(&h))
            }
            _ => stored.doc.save(),
        };
        docs::note_sent(tx, &kiosk.id, &doc_id, seq, &sorted_server)?;
        bytes += changes.len();
        let doc = doc_id
            .parse::<DocId>()
            .map_err(|_| StoreError::Corrupt { what: doc_id.clone(), reason: "bad id".into() })?;
        out.push(PullDoc { doc: doc.to_bytes(), doc_type: stored.doc_type, changes, heads: sorted_server });
        next = u64::try_from(seq).unwrap_or(next);
    }
    Ok((out, next, more_docs || cut_short))
}
