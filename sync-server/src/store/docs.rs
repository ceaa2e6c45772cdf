//! Documents as stored (a snapshot and the incremental saves after it,
//! with their heads), the pull cursor, and what each kiosk is known to
//! hold: the storage half of the sync engine (`engine.rs`), over the seam.
//!
//! The pull cursor is partitioned by kelurahan. Every write of a document
//! takes the next number of its kelurahan's counter (`seq_counters`) and
//! records it on the document's row (`docs.last_seq`, read in order
//! through `docs_by_kelurahan_seq`); the catalog, which has no kelurahan
//! and which every kiosk pulls, takes a number in every partition, kept in
//! `doc_seq`. A kiosk pulls its partition in sequence order: both, merged. The counter row is taken first in the writing transaction and
//! held until it ends (PostgreSQL row lock; SQLite's single writer), so
//! within a partition numbers are handed out in commit order: a write that
//! commits later always has the higher number, and no kiosk can move its
//! cursor past a number that is still to commit (the visibility pitfall
//! of serial ids as cursors).
//!
//! Invariants:
//! - a document's stored heads are exactly the heads of its stored bytes;
//! - `kiosk_heads` only ever names heads the server holds: it comes from a
//!   kiosk's push (after applying it) or from a pull the kiosk has
//!   acknowledged by moving its cursor past it (`kiosk_sent`);
//! - every row is keyed by kelurahan, document or kiosk, so the tables can
//!   be distributed by region (ARCHITECTURE.md).

use automerge::sync::SyncDoc;
use automerge::{AutoCommit, ChangeHash};
use loket_node::at_rest;
use loket_shared::reference;
use loket_shared::request::{self, RequestView};
use loket_shared::sync::{DocType, Hash};
use loket_shared::workflow::{self, Derived};
use loket_shared::{DocId, KelurahanCode};

use super::StoreError;
use super::engine::{
    Candidate, Commit, CommitOutcome, DocBytes, KioskMarks, Packed, Projection, StoredDoc, heads_blob,
};
use super::sql::{Dialect, Sql, scalar};
use crate::args;

fn corrupt(what: impl ToString, reason: impl ToString) -> StoreError {
    StoreError::Corrupt { what: what.to_string(), reason: reason.to_string() }
}

pub fn to_hashes(heads: &[ChangeHash]) -> Vec<Hash> {
    heads.iter().map(|h| h.0).collect()
}

pub fn from_hashes(heads: &[Hash]) -> Vec<ChangeHash> {
    heads.iter().map(|h| ChangeHash(*h)).collect()
}

/// A stored document with its type and kelurahan.
pub struct Stored {
    pub doc_type: DocType,
    pub kelurahan: Option<String>,
    pub doc: AutoCommit,
}

/// A stored document's rows, not yet opened.
pub fn load_raw(db: &mut dyn Sql, doc_id: &str) -> Result<Option<StoredDoc>, StoreError> {
    let Some(row) = db.query_opt(
        "SELECT doc_type, kelurahan, snapshot, heads, chunk_count FROM docs WHERE doc_id = ?",
        args![doc_id],
    )?
    else {
        return Ok(None);
    };
    let doc_type: String = row.get(0)?;
    let doc_type = DocType::parse(&doc_type).ok_or_else(|| corrupt(doc_id, "unknown doc_type"))?;
    // Documents are stored whole: only those of an older store, not yet
    // rewritten or compacted, have chunks (`chunk_count` moves with them
    // in every writer's transaction).
    let chunks = if row.get::<i64>(4)? > 0 {
        db.query("SELECT data FROM chunks WHERE doc_id = ? ORDER BY id", args![doc_id])?
            .into_iter()
            .map(|r| r.get::<Vec<u8>>(0))
            .collect::<Result<Vec<_>, _>>()?
    } else {
        Vec::new()
    };
    Ok(Some(StoredDoc {
        doc_type,
        kelurahan: row.get(1)?,
        snapshot: row.get(2)?,
        chunks,
        heads: row.get::<Option<Vec<u8>>>(3)?.unwrap_or_default(),
    }))
}

pub fn load(db: &mut dyn Sql, doc_id: &str) -> Result<Option<Stored>, StoreError> {
    let Some(raw) = load_raw(db, doc_id)? else { return Ok(None) };
    let doc = raw.open(doc_id)?;
    Ok(Some(Stored { doc_type: raw.doc_type, kelurahan: raw.kelurahan, doc }))
}

// ------------------------------------------------------------------ the cursor

/// Takes the counter rows of `partitions` (sorted, so two writers never
/// wait on each other in a circle) before anything else is read, so the
/// writing transaction holds them to its end. `None` means every
/// partition (a catalog write). SQLite's writer is alone anyway.
pub fn lock_partitions(db: &mut dyn Sql, partitions: Option<&[&str]>) -> Result<(), StoreError> {
    if db.dialect() != Dialect::Postgres {
        return Ok(());
    }
    match partitions {
        None => {
            db.query("SELECT kelurahan FROM seq_counters ORDER BY kelurahan FOR UPDATE", args![])?;
        }
        Some(list) => {
            let mut list = list.to_vec();
            list.sort_unstable();
            list.dedup();
            for k in list {
                db.query("SELECT seq FROM seq_counters WHERE kelurahan = ? FOR UPDATE", args![k])?;
            }
        }
    }
    Ok(())
}

/// Takes the partition of an existing document (every partition for the
/// catalog) before it is read for a change: see [`lock_partitions`].
pub fn lock_doc(db: &mut dyn Sql, doc_id: &str) -> Result<(), StoreError> {
    if db.dialect() != Dialect::Postgres {
        return Ok(());
    }
    match db.query_opt("SELECT kelurahan FROM docs WHERE doc_id = ?", args![doc_id])? {
        None => Ok(()),
        Some(row) => match row.get::<Option<String>>(0)? {
            Some(k) => lock_partitions(db, Some(&[k.as_str()])),
            None => lock_partitions(db, None),
        },
    }
}

/// Makes sure `kelurahan` has a partition. A new one starts above every
/// number handed out anywhere (no kiosk can hold a cursor beyond it) and
/// gets the catalog.
pub fn ensure_partition(db: &mut dyn Sql, kelurahan: &str) -> Result<(), StoreError> {
    let start = scalar::<i64>(db, "SELECT coalesce(max(seq), 0) FROM seq_counters", args![])?.unwrap_or(0);
    let created = db.execute(
        "INSERT INTO seq_counters (kelurahan, seq) VALUES (?, ?) ON CONFLICT (kelurahan) DO NOTHING",
        args![kelurahan, start],
    )?;
    if created == 1
        && let Some(catalog) = scalar::<String>(
            db,
            "SELECT doc_id FROM docs WHERE doc_type = 'catalog' AND doc_type != 'request' ORDER BY last_seq LIMIT 1",
            args![],
        )?
    {
        let seq = bump(db, kelurahan)?;
        record_in_partition(db, kelurahan, &catalog, seq)?;
    }
    Ok(())
}

fn bump(db: &mut dyn Sql, kelurahan: &str) -> Result<i64, StoreError> {
    scalar::<i64>(db, "UPDATE seq_counters SET seq = seq + 1 WHERE kelurahan = ? RETURNING seq", args![kelurahan])?
        .ok_or_else(|| corrupt(format!("partition {kelurahan}"), "missing"))
}

/// The next number of `kelurahan`'s partition (created if missing).
pub fn next_seq(db: &mut dyn Sql, kelurahan: &str) -> Result<i64, StoreError> {
    if let Some(seq) =
        scalar::<i64>(db, "UPDATE seq_counters SET seq = seq + 1 WHERE kelurahan = ? RETURNING seq", args![kelurahan])?
    {
        return Ok(seq);
    }
    ensure_partition(db, kelurahan)?;
    bump(db, kelurahan)
}

fn record_in_partition(db: &mut dyn Sql, kelurahan: &str, doc_id: &str, seq: i64) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO doc_seq (kelurahan, doc_id, seq) VALUES (?, ?, ?)
         ON CONFLICT (kelurahan, doc_id) DO UPDATE SET seq = excluded.seq",
        args![kelurahan, doc_id, seq],
    )?;
    Ok(())
}

/// Records that a document changed: a new number in its partition (every
/// partition for the catalog, recorded in `doc_seq`). Returns the highest
/// number taken, which the caller stores as the document's `last_seq`.
pub fn log_change(db: &mut dyn Sql, doc_id: &str, kelurahan: Option<&str>) -> Result<i64, StoreError> {
    match kelurahan {
        // Recorded by the caller, as the document's `last_seq`.
        Some(k) => next_seq(db, k),
        None => {
            let partitions: Vec<String> = db
                .query("SELECT kelurahan FROM seq_counters ORDER BY kelurahan", args![])?
                .into_iter()
                .map(|r| r.get(0))
                .collect::<Result<_, _>>()?;
            let mut last = 0;
            for k in &partitions {
                let seq = bump(db, k)?;
                record_in_partition(db, k, doc_id, seq)?;
                last = last.max(seq);
            }
            Ok(last)
        }
    }
}

/// Writes a document that changed (saved whole, [`DocBytes::Whole`]) or
/// is new, logs the change and returns its sequence number. The caller took the partition first ([`lock_partitions`]).
pub fn save(
    db: &mut dyn Sql,
    doc_id: &str,
    stored: &mut Stored,
    is_new: bool,
    _now_ms: i64,
) -> Result<i64, StoreError> {
    let seq = log_change(db, doc_id, stored.kelurahan.as_deref())?;
    let heads = heads_blob(&to_hashes(&stored.doc.get_heads()));
    if is_new {
        let snapshot = at_rest::pack(&stored.doc.save_nocompress());
        db.execute(
            "INSERT INTO docs (doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads)
             VALUES (?, ?, ?, ?, 0, ?, ?)",
            args![doc_id, stored.doc_type.as_str(), stored.kelurahan.as_deref(), snapshot, seq, heads],
        )?;
    } else {
        replace_snapshot(db, doc_id, &Packed::new(&stored.doc.save_nocompress()), seq, &heads)?;
    }
    Ok(seq)
}

/// Replaces an existing document's stored bytes with `whole` (the
/// document saved whole), dropping the chunks a store written before
/// documents were stored whole may have ([`DocBytes::Whole`]).
fn replace_snapshot(db: &mut dyn Sql, doc_id: &str, whole: &Packed, seq: i64, heads: &[u8]) -> Result<(), StoreError> {
    let updated = db.execute(
        "UPDATE docs SET snapshot = ?, chunk_count = 0, last_seq = ?, heads = ? WHERE doc_id = ?",
        args![whole.as_bytes(), seq, heads, doc_id],
    )?;
    if updated != 1 {
        return Err(StoreError::Invalid(format!("{doc_id}: writing a document that is not stored")));
    }
    db.execute("DELETE FROM chunks WHERE doc_id = ?", args![doc_id])?;
    Ok(())
}

/// Records that the server received changes of `doc` it did not have
/// (those after `heads_before`), if there are any: SLA statistics correct
/// implausible kiosk clocks with the first and last such moment.
pub fn record_receipts(
    db: &mut dyn Sql,
    doc_id: &str,
    doc: &mut AutoCommit,
    heads_before: &[ChangeHash],
    now_ms: i64,
) -> Result<(), StoreError> {
    if !doc.get_changes_meta(heads_before).is_empty() {
        receipt(db, doc_id, now_ms)?;
    }
    Ok(())
}

/// The document's first receipt becomes `now_ms` if earlier (another
/// instance's clock), its last if later: two columns of its `docs` row
/// (schema version 16), not a row per change, since nothing reads one
/// change's time. The document is written first, in the same transaction.
fn receipt(db: &mut dyn Sql, doc_id: &str, now_ms: i64) -> Result<(), StoreError> {
    let updated = db.execute(
        "UPDATE docs SET
             first_received_ms = CASE WHEN first_received_ms IS NULL OR ? < first_received_ms
                                      THEN ? ELSE first_received_ms END,
             last_received_ms = CASE WHEN last_received_ms IS NULL OR ? > last_received_ms
                                     THEN ? ELSE last_received_ms END
         WHERE doc_id = ?",
        args![now_ms, now_ms, now_ms, now_ms, doc_id],
    )?;
    if updated != 1 {
        return Err(StoreError::Invalid(format!("{doc_id}: a receipt of a document that is not stored")));
    }
    Ok(())
}

/// When the server first and last received changes of a document.
pub fn received_span(db: &mut dyn Sql, doc_id: &str) -> Result<(Option<i64>, Option<i64>), StoreError> {
    let row = db.query_opt("SELECT first_received_ms, last_received_ms FROM docs WHERE doc_id = ?", args![doc_id])?;
    match row {
        Some(r) => Ok((r.get(0)?, r.get(1)?)),
        None => Ok((None, None)),
    }
}

/// Reads and folds a request document, as the schema requires.
pub fn read_request(doc: &AutoCommit) -> Result<(RequestView, Derived), String> {
    read_request_tree(&request::hydrate(doc).map_err(|e| e.to_string())?)
}

/// [`read_request`] of a document `request::hydrate`d already (a new
/// request's push reads it and checks its structure from one tree).
pub fn read_request_tree(tree: &automerge::hydrate::Map) -> Result<(RequestView, Derived), String> {
    let view = request::read_tree(tree).map_err(|e| e.to_string())?;
    let derived = workflow::fold(&view.events).map_err(|e| e.to_string())?;
    Ok((view, derived))
}

/// A kiosk's code (`K001`: unique, never reused), which keys what it
/// holds (`kiosk_heads`, schema version 20) in 4 bytes instead of its id's 36.
fn kiosk_code(db: &mut dyn Sql, kiosk_id: &str) -> Result<String, StoreError> {
    scalar::<String>(db, "SELECT code FROM kiosks WHERE id = ?", args![kiosk_id])?
        .ok_or_else(|| StoreError::Invalid(format!("kiosk {kiosk_id} is not enrolled")))
}

/// A kiosk that asks for changes after `cursor` has durably applied every
/// pull up to it: what we sent it up to there, it now holds.
pub fn promote_sent(db: &mut dyn Sql, kiosk_id: &str, cursor: u64) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO kiosk_heads (kiosk, doc_id, heads)
             SELECT k.code, s.doc_id, s.heads FROM kiosk_sent s JOIN kiosks k ON k.id = s.kiosk_id
             WHERE s.kiosk_id = ? AND s.seq <= ?
         ON CONFLICT (kiosk, doc_id) DO UPDATE SET heads = excluded.heads",
        args![kiosk_id, cursor],
    )?;
    db.execute("DELETE FROM kiosk_sent WHERE kiosk_id = ? AND seq <= ?", args![kiosk_id, cursor])?;
    Ok(())
}

/// Documents a kiosk of `kelurahan` may see (its partition), changed
/// after `after`, in sequence order, at most `limit` (+1 to tell whether
/// there is more).
pub fn changed_since(
    db: &mut dyn Sql,
    kiosk_id: &str,
    kelurahan: &KelurahanCode,
    after: u64,
    limit: usize,
) -> Result<Vec<Candidate>, StoreError> {
    // The partition's own documents and the catalog's numbers in it, each
    // read in order as far as the limit, then merged.
    let n = limit + 1;
    let k = kelurahan.as_str();
    db.query(
        "SELECT doc_id, seq, heads, kiosk_heads FROM (
             SELECT d.doc_id, d.last_seq AS seq, d.heads, k.heads AS kiosk_heads FROM docs d
             LEFT JOIN kiosk_heads k ON k.kiosk = (SELECT code FROM kiosks WHERE id = ?) AND k.doc_id = d.doc_id
             WHERE d.kelurahan = ? AND d.last_seq > ?
             ORDER BY d.last_seq LIMIT ?
         ) AS own
         UNION ALL
         SELECT doc_id, seq, heads, kiosk_heads FROM (
             SELECT s.doc_id, s.seq, d.heads, k.heads AS kiosk_heads FROM doc_seq s
             JOIN docs d ON d.doc_id = s.doc_id
             LEFT JOIN kiosk_heads k ON k.kiosk = (SELECT code FROM kiosks WHERE id = ?) AND k.doc_id = s.doc_id
             WHERE s.kelurahan = ? AND s.seq > ?
             ORDER BY s.seq LIMIT ?
         ) AS everyones
         ORDER BY seq LIMIT ?",
        args![kiosk_id, k, after, n, kiosk_id, k, after, n, n],
    )?
    .into_iter()
    .map(|r| Ok(Candidate { doc_id: r.get(0)?, seq: r.get(1)?, heads: r.get(2)?, kiosk_heads: r.get(3)? }))
    .collect()
}

/// The server's Automerge sync message for a document, from a fresh sync
/// state (the fallback is stateless: every message carries heads and a
/// bloom filter of what the sender has).
pub fn fallback_message(doc: &mut AutoCommit) -> Vec<u8> {
    let mut state = automerge::sync::State::new();
    doc.sync().generate_sync_message(&mut state).map(|m| m.encode()).unwrap_or_default()
}

/// Applies a peer's Automerge sync message to `doc`; returns our reply.
pub fn receive_fallback(doc: &mut AutoCommit, message: &[u8]) -> Result<Vec<u8>, String> {
    let msg = automerge::sync::Message::decode(message).map_err(|e| e.to_string())?;
    let mut state = automerge::sync::State::new();
    doc.sync().receive_sync_message(&mut state, msg).map_err(|e| e.to_string())?;
    Ok(doc.sync().generate_sync_message(&mut state).map(|m| m.encode()).unwrap_or_default())
}

/// The id of the catalog document and of a kelurahan's roster document.
pub fn reference_doc(
    db: &mut dyn Sql,
    doc_type: DocType,
    kelurahan: Option<&str>,
) -> Result<Option<String>, StoreError> {
    scalar(
        db,
        "SELECT doc_id FROM docs WHERE doc_type = ? AND doc_type != 'request' AND kelurahan IS NOT DISTINCT FROM ?
         ORDER BY last_seq LIMIT 1",
        args![doc_type.as_str(), kelurahan],
    )
}

/// Creates a reference document (catalog or a kelurahan's roster).
pub fn create_reference(
    db: &mut dyn Sql,
    doc_type: DocType,
    kelurahan: Option<&str>,
    doc: AutoCommit,
    now_ms: i64,
    random: [u8; 10],
) -> Result<String, StoreError> {
    let id = DocId::new_v7(u64::try_from(now_ms).unwrap_or(0), random).to_string();
    let mut stored = Stored { doc_type, kelurahan: kelurahan.map(str::to_owned), doc };
    lock_partitions(db, kelurahan.map(|k| vec![k]).as_deref())?;
    save(db, &id, &mut stored, true, now_ms)?;
    Ok(id)
}

/// Checks a reference document reads back (used after central edits).
pub fn check_reference(doc: &AutoCommit, doc_type: DocType) -> Result<(), String> {
    match doc_type {
        DocType::Catalog => reference::read_catalog(doc).map(|_| ()).map_err(|e| e.to_string()),
        DocType::Roster => reference::read_roster(doc).map(|_| ()).map_err(|e| e.to_string()),
        DocType::Request => read_request(doc).map(|_| ()),
        DocType::Complaint => loket_shared::complaint::read(doc).map(|_| ()).map_err(|e| e.to_string()),
    }
}

/// Applies a commit inside the caller's transaction (see
/// [`super::engine::DocEngine::commit`]). On `Stale` nothing was written,
/// but the caller must still roll back.
pub fn commit_tx(db: &mut dyn Sql, commit: &Commit) -> Result<CommitOutcome, StoreError> {
    // The partitions first: held to the end, they order this commit's
    // numbers after every commit before it and make the base check below
    // race-free against other instances.
    if commit.docs.iter().any(|w| w.kelurahan.is_none()) {
        lock_partitions(db, None)?;
    } else {
        let partitions: Vec<&str> = commit.docs.iter().filter_map(|w| w.kelurahan.as_deref()).collect();
        lock_partitions(db, Some(&partitions))?;
    }
    let mut stale = Vec::new();
    for w in &commit.docs {
        if current_heads(db, &w.doc_id)? != w.base {
            stale.push(w.doc_id.clone());
        }
    }
    if !stale.is_empty() {
        return Ok(CommitOutcome::Stale(stale));
    }
    let now = commit.now_ms;
    if let Some(k) = &commit.kiosk {
        db.execute(
            "UPDATE kiosks SET last_seen_at_ms = ?, version = ?, pending_known = ? WHERE id = ?",
            args![now, k.client.as_str(), k.pending, k.kiosk_id.as_str()],
        )?;
        promote_sent(db, &k.kiosk_id, k.pull_after)?;
    }
    let mut projector = super::projection::Projector::default();
    for w in &commit.docs {
        let seq = log_change(db, &w.doc_id, w.kelurahan.as_deref())?;
        match &w.bytes {
            DocBytes::Snapshot(bytes) => {
                db.execute(
                    "INSERT INTO docs (doc_id, doc_type, kelurahan, snapshot, chunk_count, last_seq, heads)
                     VALUES (?, ?, ?, ?, 0, ?, ?)",
                    args![
                        w.doc_id.as_str(),
                        w.doc_type.as_str(),
                        w.kelurahan.as_deref(),
                        bytes.as_bytes(),
                        seq,
                        &w.heads
                    ],
                )?;
            }
            DocBytes::Whole(bytes) => replace_snapshot(db, &w.doc_id, bytes, seq, &w.heads)?,
        }
        if !w.receipts.is_empty() {
            receipt(db, &w.doc_id, now)?;
        }
        match &w.projection {
            Some(Projection::Request(p)) => projector.request(db, &p.0, &p.1)?,
            Some(Projection::Complaint(p)) => super::complaints::project_complaint(db, &p.0, &p.1)?,
            None => {}
        }
    }
    projector.finish(db)?;
    if let Some(k) = &commit.kiosk {
        if !k.holds.is_empty() {
            let code = kiosk_code(db, &k.kiosk_id)?;
            for (doc_id, heads) in &k.holds {
                db.execute(
                    "INSERT INTO kiosk_heads (kiosk, doc_id, heads) VALUES (?, ?, ?)
                     ON CONFLICT (kiosk, doc_id) DO UPDATE SET heads = excluded.heads",
                    args![code.as_str(), doc_id.as_str(), heads],
                )?;
            }
        }
        for (doc_id, seq, heads) in &k.sent {
            db.execute(
                "INSERT INTO kiosk_sent (kiosk_id, doc_id, seq, heads) VALUES (?, ?, ?, ?)
                 ON CONFLICT (kiosk_id, doc_id) DO UPDATE SET seq = excluded.seq, heads = excluded.heads",
                args![k.kiosk_id.as_str(), doc_id.as_str(), *seq, heads],
            )?;
        }
        db.execute("UPDATE kiosks SET last_sync_ok_at_ms = ? WHERE id = ?", args![now, k.kiosk_id.as_str()])?;
        db.execute(
            "INSERT INTO kiosk_marks (kiosk_id, through, pull_given) VALUES (?, ?, ?)
             ON CONFLICT (kiosk_id) DO UPDATE SET
                 through = CASE
                     WHEN excluded.through IS NULL THEN kiosk_marks.through
                     WHEN kiosk_marks.through IS NULL OR excluded.through > kiosk_marks.through THEN excluded.through
                     ELSE kiosk_marks.through END,
                 pull_given = excluded.pull_given",
            args![k.kiosk_id.as_str(), k.through, k.pull_given],
        )?;
    }
    Ok(CommitOutcome::Committed)
}

pub fn kiosk_marks(db: &mut dyn Sql, kiosk_id: &str) -> Result<KioskMarks, StoreError> {
    let row = db.query_opt("SELECT through, pull_given FROM kiosk_marks WHERE kiosk_id = ?", args![kiosk_id])?;
    let (through, pull_given): (Option<i64>, Option<i64>) = match row {
        Some(r) => (r.get(0)?, r.get(1)?),
        None => (None, None),
    };
    let u = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0));
    Ok(KioskMarks { through: u(through), pull_given: u(pull_given) })
}

/// A document's stored heads blob, `None` if there is no such document.
fn current_heads(db: &mut dyn Sql, doc_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(db
        .query_opt("SELECT heads FROM docs WHERE doc_id = ?", args![doc_id])?
        .map(|r| r.get::<Option<Vec<u8>>>(0))
        .transpose()?
        .map(Option::unwrap_or_default))
}

/// Every request document's id, in id order (re-projection).
pub fn request_ids(db: &mut dyn Sql) -> Result<Vec<String>, StoreError> {
    db.query("SELECT doc_id FROM docs WHERE doc_type = 'request' ORDER BY doc_id", args![])?
        .into_iter()
        .map(|r| r.get(0))
        .collect()
}
