//! The kiosk's side of the sync protocol as store operations: which
//! documents to push and from which base, and applying the server's answer
//! in one transaction (acks, fallback messages, pulled changes, cursors).
//!
//! Invariants:
//! - `acked_seq` (meta) only moves after the server acknowledged every
//!   document written up to it, and in the same transaction that records
//!   the acknowledgement;
//! - `server_cursor` (meta) only moves in the transaction that stores the
//!   pulled changes up to it;
//! - the base of a push (`doc_sync.server_heads`) only names heads this
//!   kiosk's document contains (pitfall 1 of AUTOMERGE_NOTES: `save_after`
//!   with unknown heads silently sends the whole history);
//! - pulled changes never make a document pending: they came from the server.

use automerge::sync::SyncDoc;
use automerge::{AutoCommit, ChangeHash};
use loket_node::now_ms;
use loket_node::sqlite::{meta_get, meta_set};
use loket_shared::chunks;
use loket_shared::complaint;
use loket_shared::reference;
use loket_shared::request;
use loket_shared::summary::Summary;
use loket_shared::sync::{DocType, Hash, PROTOCOL_VERSION, PushDoc, PushOutcome, SyncRequest, SyncResponse};
use loket_shared::workflow;
use loket_shared::{DocId, KelurahanCode, KioskCode};
use rusqlite::{Connection, OptionalExtension, params};

use super::writer::Writer;
use super::{
    DocStore, OpError, StoreError, corrupt, heads_column, load_doc, load_doc_raw, load_raw_bytes, local_date,
    project_complaint, project_request,
};

/// What enrollment gave this kiosk.
#[derive(Debug, Clone)]
pub struct Enrollment {
    pub server_url: String,
    pub token: String,
    pub kiosk_id: String,
    pub ca_pem: String,
}

/// A push about to be sent, and what it claimed per document.
#[derive(Debug)]
pub struct PushPlan {
    pub request: SyncRequest,
    pub sent: Vec<Sent>,
    /// Highest change sequence covered by this push.
    pub max_seq: i64,
}

#[derive(Debug, Clone)]
pub struct Sent {
    pub doc_id: String,
    pub seq: i64,
    pub heads: Vec<Hash>,
}

#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SyncSummary {
    pub pushed: usize,
    pub pulled: usize,
    pub fallbacks: usize,
    /// Documents the server put off (see `PushOutcome::Deferred`).
    pub deferred: usize,
    /// Documents the server refused in this run, now in quarantine.
    pub quarantined: usize,
    /// Pulled documents this kiosk refused (unreadable, or too large when
    /// decoded): not applied, logged with their id.
    pub refused: usize,
    pub more: bool,
    /// Request/response exchanges this sync run took.
    pub exchanges: usize,
    /// Sync message bytes sent and received in this run.
    pub wire_bytes: usize,
}

fn hashes(heads: &[ChangeHash]) -> Vec<Hash> {
    heads.iter().map(|h| h.0).collect()
}

fn change_hashes(heads: &[Hash]) -> Vec<ChangeHash> {
    heads.iter().map(|h| ChangeHash(*h)).collect()
}

fn blob_heads(blob: &[u8]) -> Vec<Hash> {
    blob.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect()
}

fn sorted(mut h: Vec<Hash>) -> Vec<Hash> {
    h.sort();
    h
}

fn meta_i64(conn: &Connection, key: &str) -> Result<i64, StoreError> {
    Ok(meta_get(conn, key)?.and_then(|v| v.parse().ok()).unwrap_or(0))
}

fn fresh_sync_message(doc: &mut AutoCommit) -> Vec<u8> {
    let mut state = automerge::sync::State::new();
    doc.sync().generate_sync_message(&mut state).map(|m| m.encode()).unwrap_or_default()
}

impl DocStore {
    /// The enrollment of the store at `path`, read without opening a store
    /// (a serving kiosk may hold it).
    pub fn read_enrollment(path: &std::path::Path) -> Result<Option<Enrollment>, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(loket_node::sqlite::BUSY_TIMEOUT)?;
        let get = |k: &str| meta_get(&conn, k);
        let (Some(server_url), Some(token), Some(kiosk_id), Some(ca_pem)) =
            (get("server_url")?, get("server_token")?, get("kiosk_id")?, get("server_ca")?)
        else {
            return Ok(None);
        };
        Ok(Some(Enrollment { server_url, token, kiosk_id, ca_pem }))
    }

    /// Stores a rotated credential (a serving kiosk picks it up at its next
    /// sync, whose first use retires the old one on the server).
    pub fn store_credential(path: &std::path::Path, token: &str) -> Result<(), StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(loket_node::sqlite::BUSY_TIMEOUT)?;
        meta_set(&conn, "server_token", token)?;
        Ok(())
    }

    /// Records an enrollment in an existing store: the server's kiosk code
    /// replaces the local one for new tickets, and the locally authored
    /// catalog and roster give way to the server's at the first sync.
    pub fn record_enrollment(
        path: &std::path::Path,
        enrollment: &Enrollment,
        kiosk: &KioskCode,
        kelurahan: &KelurahanCode,
    ) -> Result<(), StoreError> {
        let mut conn = Connection::open(path)?;
        super::schema::configure(&conn)?;
        super::schema::migrate(&conn)?;
        let tx = conn.transaction()?;
        if let Some(existing) = meta_get(&tx, "kelurahan")?
            && existing != kelurahan.as_str()
        {
            return Err(StoreError::Invalid(format!(
                "this kiosk serves kelurahan {existing}, but the enrollment code is for {kelurahan}"
            )));
        }
        meta_set(&tx, "kiosk_code", kiosk.as_str())?;
        meta_set(&tx, "kelurahan", kelurahan.as_str())?;
        meta_set(&tx, "server_url", &enrollment.server_url)?;
        meta_set(&tx, "server_token", &enrollment.token)?;
        meta_set(&tx, "kiosk_id", &enrollment.kiosk_id)?;
        meta_set(&tx, "server_ca", &enrollment.ca_pem)?;
        meta_set(&tx, "server_cursor", "0")?;
        // The server owns reference data from now on; citizens' documents
        // (requests, complaints) stay and are pushed.
        const REFERENCE: &str = "SELECT doc_id FROM docs WHERE doc_type NOT IN ('request', 'complaint')";
        for table in ["chunks", "doc_sync", "change_log"] {
            tx.execute(&format!("DELETE FROM {table} WHERE doc_id IN ({REFERENCE})"), [])?;
        }
        tx.execute("DELETE FROM docs WHERE doc_type NOT IN ('request', 'complaint')", [])?;
        tx.commit()?;
        Ok(())
    }

    pub fn enrollment(&self) -> Result<Option<Enrollment>, StoreError> {
        let conn = self.reader()?;
        let (Some(server_url), Some(token), Some(kiosk_id), Some(ca_pem)) = (
            meta_get(&conn, "server_url")?,
            meta_get(&conn, "server_token")?,
            meta_get(&conn, "kiosk_id")?,
            meta_get(&conn, "server_ca")?,
        ) else {
            return Ok(None);
        };
        Ok(Some(Enrollment { server_url, token, kiosk_id, ca_pem }))
    }

    /// The documents written since the server's last acknowledgement (and
    /// those in fallback), oldest first, at most `limit`.
    pub fn plan_push(&self, limit: usize) -> Result<PushPlan, StoreError> {
        let conn = self.reader()?;
        let acked = meta_i64(&conn, "acked_seq")?;
        let cursor = meta_i64(&conn, "server_cursor")?;
        // Two queries, each on an index or a small table: written since
        // the acknowledgement (a range of `docs_by_seq`, in order, so the
        // limit stops it early), and in fallback from before it (a scan of
        // `doc_sync`, whose rows are small; `CROSS JOIN` keeps it the outer
        // loop, which SQLite's planner would otherwise put on `docs` by
        // `last_seq`). One query with an `OR` of both
        // walked every document row in order: a kiosk holding thousands
        // of documents read them all on every exchange (issue 17).
        let map = |r: &rusqlite::Row<'_>| -> rusqlite::Result<PushRow> {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?))
        };
        let mut rows: Vec<PushRow> = conn
            .prepare_cached(
                "SELECT d.doc_id, d.last_seq, s.server_heads, coalesce(s.fallback, 0), s.fallback_msg, d.doc_type,
                        d.heads
                 FROM docs d LEFT JOIN doc_sync s USING (doc_id)
                 WHERE d.last_seq > ?1 AND d.doc_type IN ('request', 'complaint')
                   AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.doc_id = d.doc_id)
                   AND NOT EXISTS (SELECT 1 FROM evicted e WHERE e.doc_id = d.doc_id)
                 ORDER BY d.last_seq LIMIT ?2",
            )?
            .query_map(params![acked, limit as i64], map)?
            .collect::<Result<_, _>>()?;
        let fallbacks = conn
            .prepare_cached(
                "SELECT d.doc_id, d.last_seq, s.server_heads, 1, s.fallback_msg, d.doc_type, d.heads
                 FROM doc_sync s CROSS JOIN docs d USING (doc_id)
                 WHERE s.fallback = 1 AND d.last_seq <= ?1 AND d.doc_type IN ('request', 'complaint')
                   AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.doc_id = d.doc_id)
                   AND NOT EXISTS (SELECT 1 FROM evicted e WHERE e.doc_id = d.doc_id)",
            )?
            .query_map(params![acked], map)?
            .collect::<Result<Vec<_>, _>>()?;
        if !fallbacks.is_empty() {
            rows.extend(fallbacks);
            rows.sort_by_key(|r| r.1);
            rows.truncate(limit);
        }
        let mut push = Vec::with_capacity(rows.len());
        let mut sent = Vec::with_capacity(rows.len());
        let mut max_seq = acked;
        for (doc_id, seq, server_heads, fallback, fallback_msg, doc_type, known_heads) in rows {
            // Only what this kiosk writes is pushed: requests and complaints.
            let doc_type = match doc_type.as_str() {
                "complaint" => DocType::Complaint,
                _ => DocType::Request,
            };
            let id: DocId = doc_id.parse().map_err(|e| corrupt(&doc_id, e))?;
            // The server has none of it and we know its heads: the stored
            // bytes as they are, without loading the document (the first
            // push of every document: issue 17). The server loads them
            // strictly and refuses bytes that do not.
            if server_heads.is_none()
                && !fallback
                && let Some(heads) = known_heads.filter(|h| !h.is_empty()).map(|h| blob_heads(&h))
                && let Some(raw) = load_raw_bytes(&conn, &doc_id)?
            {
                push.push(PushDoc {
                    doc: id.to_bytes(),
                    doc_type,
                    base: Vec::new(),
                    changes: raw,
                    heads: heads.clone(),
                    fallback: None,
                });
                sent.push(Sent { doc_id, seq, heads });
                max_seq = max_seq.max(seq);
                continue;
            }
            let Some((_, mut doc, raw)) = load_doc_raw(&conn, &doc_id)? else { continue };
            let heads = doc.get_heads();
            let base = server_heads.map(|b| blob_heads(&b)).unwrap_or_default();
            let base_known = doc.get_missing_deps(&change_hashes(&base)).is_empty();
            let (base, changes, fallback_msg) = if fallback {
                // Our answer to the server's last message (it carries the
                // changes the server lacks), or an opening message.
                let msg = fallback_msg.filter(|m| !m.is_empty()).unwrap_or_else(|| fresh_sync_message(&mut doc));
                (Vec::new(), Vec::new(), Some(msg))
            } else if base_known && !base.is_empty() {
                let changes = doc.save_after(&change_hashes(&base));
                (base, changes, None)
            } else {
                // The server has none of it: the stored bytes are the whole
                // document already (no second save).
                (Vec::new(), raw, None)
            };
            push.push(PushDoc {
                doc: id.to_bytes(),
                doc_type,
                base,
                changes,
                heads: hashes(&heads),
                fallback: fallback_msg,
            });
            sent.push(Sent { doc_id, seq, heads: hashes(&heads) });
            max_seq = max_seq.max(seq);
        }
        let pending: i64 = conn.query_row("SELECT count(*) FROM change_log WHERE seq > ?1", [max_seq], |r| r.get(0))?;
        Ok(PushPlan {
            request: SyncRequest {
                version: PROTOCOL_VERSION,
                client: env!("CARGO_PKG_VERSION").into(),
                push,
                pull_after: u64::try_from(cursor).unwrap_or(0),
                acked: u64::try_from(acked).unwrap_or(0),
                through: u64::try_from(max_seq).unwrap_or(0),
                pending: u64::try_from(pending).unwrap_or(0),
            },
            sent,
            max_seq,
        })
    }

    /// Applies the server's answer to a push, durably, in one transaction.
    pub async fn apply_sync(&self, plan: PushPlan, response: SyncResponse) -> Result<SyncSummary, OpError> {
        self.submit(|reply| super::Job::Sync { plan, response, reply }).await
    }

    /// Quarantines a document the server refused, with the server's code
    /// and message; it is no longer pushed until released.
    pub async fn quarantine(&self, doc_id: String, code: String, message: String) -> Result<(), OpError> {
        self.submit(|reply| super::Job::Quarantine { doc_id, reason: Some((code, message)), reply }).await
    }

    /// Releases a quarantined document: it is pushed again at the next sync.
    pub async fn release(&self, doc_id: String) -> Result<(), OpError> {
        self.submit(|reply| super::Job::Quarantine { doc_id, reason: None, reply }).await
    }

    /// The documents in quarantine: id, the server's code and message, when.
    pub fn quarantined(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached("SELECT doc_id, code, message, at_ms FROM quarantine ORDER BY at_ms")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// When the last sync succeeded (unix ms), if ever.
    pub fn last_sync_ok_ms(&self) -> Result<Option<i64>, StoreError> {
        let conn = self.reader()?;
        Ok(meta_get(&conn, "last_sync_ok_ms")?.and_then(|v| v.parse().ok()))
    }
}

/// Quarantines (`Some((code, message))`) or releases (`None`) a document.
/// A released document gets a fresh change-sequence entry: `acked_seq` may
/// have moved past it while it sat in quarantine.
pub(super) fn set_quarantine(
    conn: &Connection,
    doc_id: &str,
    reason: Option<(String, String)>,
) -> Result<(), StoreError> {
    match reason {
        Some((code, message)) => {
            let exists: bool = conn.query_row("SELECT count(*) FROM docs WHERE doc_id = ?1", [doc_id], |r| r.get(0))?;
            if !exists {
                return Err(StoreError::Invalid(format!("no document {doc_id}")));
            }
            let message: String = message.chars().take(500).collect();
            conn.execute(
                "INSERT INTO quarantine (doc_id, code, message, at_ms) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (doc_id) DO UPDATE SET code = excluded.code, message = excluded.message, at_ms = excluded.at_ms",
                params![doc_id, code, message, now_ms()],
            )?;
            tracing::warn!(doc = %doc_id, %code, "document quarantined: the server refused it");
        }
        None => {
            if conn.execute("DELETE FROM quarantine WHERE doc_id = ?1", [doc_id])? > 0 {
                conn.execute("INSERT INTO change_log (doc_id, at_ms) VALUES (?1, ?2)", params![doc_id, now_ms()])?;
                conn.execute(
                    "UPDATE docs SET last_seq = ?2 WHERE doc_id = ?1",
                    params![doc_id, conn.last_insert_rowid()],
                )?;
                tracing::info!(doc = %doc_id, "document released from quarantine");
            }
        }
    }
    Ok(())
}

impl Writer {
    pub(super) fn apply_sync(
        &mut self,
        conn: &Connection,
        plan: PushPlan,
        resp: SyncResponse,
    ) -> Result<SyncSummary, OpError> {
        if resp.acks.len() != plan.sent.len() {
            return Err(StoreError::Invalid(format!(
                "server answered {} acknowledgements for {} documents",
                resp.acks.len(),
                plan.sent.len()
            ))
            .into());
        }
        let mut summary =
            SyncSummary { pushed: plan.sent.len(), pulled: 0, fallbacks: 0, more: resp.more, ..SyncSummary::default() };
        let mut all_applied = true;
        for (sent, ack) in plan.sent.iter().zip(&resp.acks) {
            let id: DocId = sent.doc_id.parse().map_err(|e| corrupt(&sent.doc_id, e))?;
            if ack.doc != id.to_bytes() {
                return Err(StoreError::Invalid("acknowledgements out of order".into()).into());
            }
            match &ack.outcome {
                PushOutcome::Applied { .. } => set_doc_sync(conn, &sent.doc_id, &sent.heads, false)?,
                PushOutcome::Deferred => {
                    all_applied = false;
                    summary.deferred += 1;
                }
                PushOutcome::Fallback { fallback } => {
                    all_applied = false;
                    summary.fallbacks += 1;
                    // Like a pulled document: a message this kiosk cannot
                    // take is refused for that document alone.
                    let doc_id = &sent.doc_id;
                    if let Some(e) = refusable(conn, || self.continue_fallback(conn, doc_id, fallback))? {
                        tracing::error!(doc = %doc_id, error = %e, "the server's sync message refused: not applied");
                        summary.refused += 1;
                    }
                }
            }
        }
        if let Some(rewind) = resp.rewind_acked {
            // The server was restored from a backup and lacks changes it
            // once acknowledged: push again from where it stands, as full
            // documents (the heads it had are no longer a safe base).
            tracing::warn!(rewind, "the server holds less than it acknowledged: pushing again from there");
            meta_set(conn, "acked_seq", &rewind.to_string())?;
            conn.execute("UPDATE doc_sync SET server_heads = x''", [])?;
            // Every request and complaint goes again, whole: the server may
            // also have lost changes we only pulled from it (a central
            // event, another kiosk's step), which no local write would send back.
            let ids: Vec<String> = conn
                .prepare("SELECT doc_id FROM docs WHERE doc_type IN ('request', 'complaint') ORDER BY last_seq")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            let now = now_ms();
            for id in &ids {
                conn.execute("INSERT INTO change_log (doc_id, at_ms) VALUES (?1, ?2)", params![id, now])?;
                conn.execute("UPDATE docs SET last_seq = ?2 WHERE doc_id = ?1", params![id, conn.last_insert_rowid()])?;
            }
        } else if all_applied && plan.max_seq > 0 {
            let acked = meta_i64(conn, "acked_seq")?;
            if plan.max_seq > acked {
                meta_set(conn, "acked_seq", &plan.max_seq.to_string())?;
            }
        }
        // What the server read of requests we do not hold yet, by id.
        let summaries: std::collections::HashMap<[u8; 16], &Summary> =
            resp.summaries.iter().map(|s| (s.doc, s)).collect();
        for pulled in &resp.pull {
            // A document that cannot be read or is too large when decoded
            // is refused by id and the rest of the exchange applies (never
            // wedged by what it did not write).
            let read_by_server = summaries.get(&pulled.doc).copied();
            match refusable(conn, || self.apply_pulled(conn, pulled, read_by_server))? {
                None => summary.pulled += 1,
                Some(e) => {
                    tracing::error!(doc = %DocId::from_bytes(pulled.doc), error = %e, "pulled document refused: not applied");
                    summary.refused += 1;
                }
            }
        }
        meta_set(conn, "server_cursor", &resp.pull_next.to_string())?;
        meta_set(conn, "last_sync_ok_ms", &now_ms().to_string())?;
        Ok(summary)
    }

    /// One step of Automerge's sync protocol for a document whose base the
    /// server could not use. Ends when both sides report the same heads.
    fn continue_fallback(&mut self, conn: &Connection, doc_id: &str, message: &[u8]) -> Result<(), OpError> {
        if super::evict::is_evicted(conn, doc_id)? {
            return Ok(()); // finished and evicted here: the server keeps it
        }
        let Some((doc_type, mut doc)) = load_doc(conn, doc_id)? else { return Ok(()) };
        chunks::inspect_sync_message(message, &mut chunks::Budget::new(chunks::DOC_LIMITS))
            .map_err(|e| corrupt(doc_id, e))?;
        let msg = automerge::sync::Message::decode(message).map_err(|e| corrupt(doc_id, e))?;
        let server_heads: Vec<Hash> = sorted(hashes(&msg.heads));
        let heads_before = doc.get_heads();
        let mut state = automerge::sync::State::new();
        doc.sync().receive_sync_message(&mut state, msg).map_err(|e| corrupt(doc_id, e))?;
        if !doc.get_missing_deps(&[]).is_empty() {
            // Keep what we had; the next round asks again.
            set_doc_sync_fallback(conn, doc_id)?;
            return Ok(());
        }
        if doc.get_heads() != heads_before {
            let remote = self.read_remote(doc_id, &doc_type, &doc)?;
            self.store_remote(conn, doc_id, remote, &mut doc)?;
        }
        let ours = sorted(hashes(&doc.get_heads()));
        if ours == server_heads {
            set_doc_sync(conn, doc_id, &ours, false)?;
        } else {
            // The state that took in the server's message knows what the
            // server has: its next message carries what the server lacks.
            // Keep it for the next push (a fresh state would only announce).
            let reply = doc.sync().generate_sync_message(&mut state).map(|m| m.encode());
            set_doc_sync_fallback(conn, doc_id)?;
            conn.execute("UPDATE doc_sync SET fallback_msg = ?2 WHERE doc_id = ?1", params![doc_id, reply])?;
        }
        Ok(())
    }

    fn apply_pulled(
        &mut self,
        conn: &Connection,
        pulled: &loket_shared::sync::PullDoc,
        read_by_server: Option<&Summary>,
    ) -> Result<(), OpError> {
        let id = DocId::from_bytes(pulled.doc);
        let doc_id = id.to_string();
        if super::evict::is_evicted(conn, &doc_id)? {
            // Evicted here: applying would bring the personal data back.
            tracing::debug!(doc = %doc_id, "pulled changes for an evicted request: not applied");
            return Ok(());
        }
        // Bounded before Automerge inflates anything (`shared::chunks`).
        let shape = chunks::inspect(&pulled.changes, &mut chunks::Budget::new(chunks::DOC_LIMITS))
            .map_err(|e| corrupt(&doc_id, e))?;
        let existing = load_doc(conn, &doc_id)?;
        let is_new = existing.is_none();
        if is_new
            && let Some(summary) = read_by_server
            && unread_is_whole(pulled, &shape, summary)
        {
            // The server read it at exactly these heads (`shared::summary`):
            // kept as it came, unread, and projected from what it read.
            conn.prepare_cached(
                "INSERT INTO docs (doc_id, doc_type, snapshot, chunk_count, last_seq, heads) VALUES (?1, ?2, ?3, 0, 0, ?4)",
            )?
            .execute(params![doc_id, DocType::Request.as_str(), pulled.changes, sorted(pulled.heads.clone()).concat()])?;
            self.project_summary(conn, summary)?;
            set_doc_sync(conn, &doc_id, &pulled.heads, false)?;
            return Ok(());
        }
        let (doc_type, mut doc) = existing.unwrap_or_else(|| (pulled.doc_type.as_str().to_owned(), AutoCommit::new()));
        if doc_type != pulled.doc_type.as_str() {
            return Err(corrupt(&doc_id, "server sent a different document type").into());
        }
        let heads_before = doc.get_heads();
        // A new document is loaded strictly if it can be, else leniently;
        // either way only what loaded is saved.
        let mut strict_new = false;
        if is_new && let Ok(loaded) = AutoCommit::load(&pulled.changes) {
            doc = loaded;
            strict_new = true;
        }
        if (!strict_new && doc.load_incremental(&pulled.changes).is_err()) || !doc.get_missing_deps(&[]).is_empty() {
            // The server assumed we had more than we do: fall back for
            // this document (a fresh load drops the partial merge).
            tracing::info!(doc = %doc_id, "pulled changes lack dependencies: falling back to the sync protocol");
            if !is_new {
                set_doc_sync_fallback(conn, &doc_id)?;
            }
            return Ok(());
        }
        if doc.get_heads() != heads_before || is_new {
            // Read once: the check and the projection share it.
            let remote = self.read_remote(&doc_id, &doc_type, &doc)?;
            if is_new {
                // Whole: one document chunk that loaded strictly is kept
                // as it came (saving it again gives the same document);
                // anything else, such as chunks from an older store (they
                // load 2.7× slower), is saved whole here.
                let whole = shape.chunks == 1 && shape.document_chunks == 1 && strict_new;
                let saved;
                let snapshot: &[u8] = if whole {
                    &pulled.changes
                } else {
                    saved = doc.save_nocompress();
                    &saved
                };
                conn.prepare_cached(
                    "INSERT INTO docs (doc_id, doc_type, snapshot, chunk_count, last_seq, heads) VALUES (?1, ?2, ?3, 0, 0, ?4)",
                )?
                .execute(params![doc_id, doc_type, snapshot, heads_column(&mut doc)])?;
                self.project_remote(conn, remote)?;
            } else {
                self.store_remote(conn, &doc_id, remote, &mut doc)?;
            }
        }
        // The server's heads are in our document now: the base of our next push.
        if doc.get_missing_deps(&change_hashes(&pulled.heads)).is_empty() {
            set_doc_sync(conn, &doc_id, &pulled.heads, false)?;
        }
        Ok(())
    }

    /// A document from the server must read back as its type says; what
    /// it reads as is kept for the projection (reading a request costs as
    /// much as loading it: once per pulled document, not three times).
    fn read_remote(&self, doc_id: &str, doc_type: &str, doc: &AutoCommit) -> Result<Remote, OpError> {
        let read = match doc_type {
            "request" => request::read(doc)
                .map_err(|e| e.to_string())
                .and_then(|view| workflow::fold(&view.events).map(|d| (view, d)).map_err(|e| e.to_string()))
                .map(|r| Remote::Request(Box::new(r))),
            "catalog" => reference::read_catalog(doc).map(|c| Remote::Catalog(Box::new(c))).map_err(|e| e.to_string()),
            "roster" => reference::read_roster(doc).map(Remote::Roster).map_err(|e| e.to_string()),
            // This office's only, with its `file` step (the fold needs it).
            "complaint" => complaint::read(doc).map_err(|e| e.to_string()).and_then(|view| {
                if &view.kelurahan != self.kelurahan() {
                    return Err("a complaint of another kelurahan".to_owned());
                }
                complaint::fold(&view.steps).map(|d| Remote::Complaint(Box::new((view, d)))).map_err(|e| e.to_string())
            }),
            other => Err(format!("unknown type {other}")),
        };
        read.map_err(|e| corrupt(doc_id, format!("server document does not read back: {e}")).into())
    }

    /// Stores remote changes to an existing document (not a local write:
    /// the change sequence does not move).
    fn store_remote(
        &mut self,
        conn: &Connection,
        doc_id: &str,
        remote: Remote,
        doc: &mut AutoCommit,
    ) -> Result<(), OpError> {
        super::replace_snapshot(conn, doc_id, doc, None)?;
        self.project_remote(conn, remote)
    }

    fn project_remote(&mut self, conn: &Connection, remote: Remote) -> Result<(), OpError> {
        match remote {
            Remote::Request(r) => self.project_summary(conn, &Summary::of(&r.0, &r.1))?,
            Remote::Catalog(catalog) => {
                super::project_catalog(conn, &catalog)?;
                self.set_catalog(*catalog);
            }
            Remote::Roster(roster) => super::project_roster(conn, &roster)?,
            Remote::Complaint(c) => {
                let (view, derived) = *c;
                // Our next write (a complaint's or a request's) sorts after
                // the server's steps.
                if let Some(latest) = derived.ordered.iter().map(|s| s.hlc).max() {
                    self.observe_hlc(latest);
                }
                let day = local_date(view.created_at_ms, self.utc_offset()).to_string();
                project_complaint(conn, &view, &derived, &day)?;
                self.keep_ticket_numbers_above(conn, &view.kiosk, view.ticket.as_str(), &day)?;
            }
        }
        Ok(())
    }
}

impl Writer {
    /// Projects a request from the server: its row, our clock past its
    /// latest event (our next event sorts after it), and our ticket
    /// numbers past it if it is ours.
    fn project_summary(&mut self, conn: &Connection, summary: &Summary) -> Result<(), OpError> {
        if let Some(latest) = summary.latest_hlc() {
            self.observe_hlc(latest);
        }
        let day = local_date(summary.created_at_ms, self.utc_offset()).to_string();
        project_request(conn, summary, &day)?;
        self.keep_ticket_numbers_above(conn, &summary.kiosk, summary.ticket.as_str(), &day)?;
        Ok(())
    }

    /// A pulled request or complaint filed at this kiosk (one it filed
    /// after the copy it was restored from, typically): the next ticket
    /// of that day is numbered after it.
    fn keep_ticket_numbers_above(
        &self,
        conn: &Connection,
        kiosk: &KioskCode,
        ticket: &str,
        day: &str,
    ) -> Result<(), StoreError> {
        match super::restore::ticket_number(ticket) {
            Some(n) if kiosk == self.kiosk() => super::restore::raise_ticket_counter(conn, day, n),
            _ => Ok(()),
        }
    }
}

/// A pulled document as it read: what the projection needs.
enum Remote {
    Request(Box<(request::RequestView, workflow::Derived)>),
    Catalog(Box<reference::Catalog>),
    Roster(reference::Roster),
    Complaint(Box<(complaint::ComplaintView, complaint::Derived)>),
}

/// Runs `f` in a savepoint. Data from the server that this kiosk cannot
/// read, or that is too large once decoded (`Corrupt`, `Automerge`), rolls
/// back just that and comes back as refused; any other error rolls back
/// and fails the exchange.
fn refusable(conn: &Connection, f: impl FnOnce() -> Result<(), OpError>) -> Result<Option<StoreError>, OpError> {
    // Once per pulled document: cached, not parsed each time.
    conn.prepare_cached("SAVEPOINT remote")?.execute([])?;
    match f() {
        Ok(()) => {
            conn.prepare_cached("RELEASE remote")?.execute([])?;
            Ok(None)
        }
        Err(OpError::Store(e @ (StoreError::Corrupt { .. } | StoreError::Automerge(_)))) => {
            conn.execute_batch("ROLLBACK TO remote; RELEASE remote")?;
            Ok(Some(e))
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO remote; RELEASE remote")?;
            Err(e)
        }
    }
}

/// `(doc_id, last_seq, server_heads, fallback, fallback_msg, doc_type, heads)`
type PushRow = (String, i64, Option<Vec<u8>>, bool, Option<Vec<u8>>, String, Option<Vec<u8>>);

/// Whether a pulled request may be stored unread with the server's
/// summary: it is a request, the summary is its own and checks, and the
/// bytes are one document chunk whose checksum holds and whose heads are
/// the pulled heads (the base of our next push must be in what we store).
fn unread_is_whole(pulled: &loket_shared::sync::PullDoc, shape: &chunks::Summary, summary: &Summary) -> bool {
    pulled.doc_type == DocType::Request
        && summary.doc == pulled.doc
        && summary.check()
        && shape.chunks == 1
        && shape.document_chunks == 1
        && chunks::document_heads(&pulled.changes).is_some_and(|heads| sorted(heads) == sorted(pulled.heads.clone()))
}

fn set_doc_sync(conn: &Connection, doc_id: &str, heads: &[Hash], fallback: bool) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO doc_sync (doc_id, server_heads, fallback, fallback_msg) VALUES (?1, ?2, ?3, NULL)
         ON CONFLICT (doc_id) DO UPDATE SET server_heads = excluded.server_heads, fallback = excluded.fallback,
             fallback_msg = NULL",
    )?
    .execute(params![doc_id, heads.concat(), fallback])?;
    Ok(())
}

fn set_doc_sync_fallback(conn: &Connection, doc_id: &str) -> Result<(), StoreError> {
    let existing: Option<i64> =
        conn.query_row("SELECT 1 FROM doc_sync WHERE doc_id = ?1", [doc_id], |r| r.get(0)).optional()?;
    if existing.is_some() {
        conn.execute("UPDATE doc_sync SET fallback = 1 WHERE doc_id = ?1", [doc_id])?;
    } else {
        conn.execute("INSERT INTO doc_sync (doc_id, server_heads, fallback) VALUES (?1, x'', 1)", [doc_id])?;
    }
    Ok(())
}
