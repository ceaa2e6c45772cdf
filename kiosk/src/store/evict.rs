//! Eviction of personal data (UU 27/2022: keep it no longer than needed).
//!
//! A request whose status is final (completed, rejected, cancelled), with
//! no conflict waiting, last changed before the retention cutoff, and held
//! by the server exactly as here (no local change pending, no fallback or
//! quarantine, the server's acknowledged heads equal to ours) loses its
//! document on this kiosk: the snapshot and chunks are deleted and the
//! projection row keeps ticket, service, status and times but no name or
//! NIK. The server keeps everything. With `secure_delete` on and the WAL
//! truncated afterwards, the bytes do not linger in the database files.
//!
//! An evicted document is never pushed again, and changes the server may
//! still send for it are not applied (that would bring the data back).
//!
//! The idempotency rows of an evicted request go with it (their
//! fingerprints and first answers derive from what the citizen typed), and
//! every call prunes the rows older than `IDEMPOTENCY_TTL` anyway.

use loket_node::now_ms;
use loket_node::sqlite::meta_get;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{IDEMPOTENCY_TTL, StoreError, load_doc};
use crate::store::parse_status;

/// Documents evicted per call at most (the caller repeats while it gets some).
const PER_CALL: i64 = 200;

pub(crate) fn is_evicted(conn: &Connection, doc_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM evicted WHERE doc_id = ?1")?
        .query_row([doc_id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(super) fn evict(conn: &mut Connection, cutoff_ms: i64) -> Result<usize, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let ttl_ms = i64::try_from(IDEMPOTENCY_TTL.as_millis()).unwrap_or(i64::MAX);
    let pruned = tx.execute("DELETE FROM idempotency WHERE at_ms < ?1", [now_ms().saturating_sub(ttl_ms)])?;
    if pruned > 0 {
        tracing::debug!(pruned, "idempotency rows older than a day pruned");
    }
    let acked: i64 = meta_get(&tx, "acked_seq")?.and_then(|v| v.parse().ok()).unwrap_or(0);
    let rows: Vec<(String, String, Vec<u8>)> = tx
        .prepare(
            "SELECT r.doc_id, r.status, s.server_heads FROM requests r
             JOIN docs d USING (doc_id) JOIN doc_sync s USING (doc_id)
             WHERE r.conflict = 0 AND r.updated_at_ms <= ?1 AND d.last_seq <= ?2 AND s.fallback = 0
               AND d.snapshot IS NOT NULL
               AND NOT EXISTS (SELECT 1 FROM evicted e WHERE e.doc_id = r.doc_id)
               AND NOT EXISTS (SELECT 1 FROM quarantine q WHERE q.doc_id = r.doc_id)
             ORDER BY r.updated_at_ms LIMIT ?3",
        )?
        .query_map(params![cutoff_ms, acked, PER_CALL], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    let mut evicted = 0;
    for (doc_id, status, server_heads) in rows {
        if !parse_status(&status)?.is_terminal() {
            continue;
        }
        let Some((_, mut doc)) = load_doc(&tx, &doc_id)? else { continue };
        let mut ours: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
        ours.sort_unstable();
        let mut theirs: Vec<&[u8]> = server_heads.chunks(32).collect();
        theirs.sort_unstable();
        if ours.iter().map(|h| &h[..]).ne(theirs.iter().copied()) {
            continue; // the server may not hold all of it yet
        }
        tx.execute("UPDATE docs SET snapshot = NULL, chunk_count = 0 WHERE doc_id = ?1", [&doc_id])?;
        tx.execute("DELETE FROM chunks WHERE doc_id = ?1", [&doc_id])?;
        tx.execute("DELETE FROM idempotency WHERE doc_id = ?1", [&doc_id])?;
        tx.execute("UPDATE requests SET applicant_name = '', nik_masked = '' WHERE doc_id = ?1", [&doc_id])?;
        tx.execute("INSERT INTO evicted (doc_id, at_ms) VALUES (?1, ?2)", params![doc_id, now_ms()])?;
        evicted += 1;
    }
    tx.commit()?;
    if evicted > 0 {
        // Old page images of the evicted rows sit in the WAL until a
        // checkpoint; fold them in and empty it.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        tracing::info!(evicted, "personal data of finished requests evicted");
    }
    Ok(evicted)
}
