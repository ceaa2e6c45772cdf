//! Compaction of stored documents (issue 18, item 2).
//!
//! A document is stored as a snapshot plus one chunk per commit that
//! changed it (`docs.snapshot`, `chunks`): cheap to write, but every chunk
//! repeats what Automerge's whole-document format shares (actor ids, keys,
//! column headers), so a worked request weighs several times its saved
//! size. Compaction folds a document's chunks into one new snapshot
//! (`save_nocompress()`), packed (`loket_node::at_rest`). A new document
//! is stored as the kiosk sent it, as its first chunk, and folded the same
//! way. Snapshots stored before packing existed are packed by `sync-server
//! compact`, chunks or not.
//!
//! Invariants:
//! - the document does not change: the new snapshot loads to the same
//!   heads, checked before it is written, and the write happens only if
//!   the stored heads and chunk count are still those read (a commit in
//!   between wins; the document is compacted at a later step). So
//!   compaction needs no lock against sync, on one instance or several;
//! - `last_seq` (the pull cursor) is not touched: nothing new to send;
//! - each document is compacted in its own short write transaction, and
//!   a step stops after its time budget, so sync never waits long behind it.

use std::time::{Duration, Instant};

use loket_node::at_rest;

use super::StoreError;
use super::engine::{blob_heads, heads_blob};
use super::sql::Sql;
use crate::args;
use crate::store::docs::{load_raw, to_hashes};

/// Documents a step looks at, at most (written in one transaction).
pub const STEP_DOCS: usize = 200;

/// The time a background step may spend folding documents (the write
/// after it is one transaction of at most [`STEP_DOCS`] rows).
pub const STEP_BUDGET: Duration = Duration::from_millis(50);

/// What one step or run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    /// Documents folded into one snapshot.
    pub documents: u64,
    /// Stored bytes before and after, of those documents.
    pub bytes_before: u64,
    pub bytes_after: u64,
    /// Documents left alone because a commit changed them meanwhile.
    pub raced: u64,
}

impl Compacted {
    fn add(&mut self, other: Compacted) {
        self.documents += other.documents;
        self.bytes_before += other.bytes_before;
        self.bytes_after += other.bytes_after;
        self.raced += other.raced;
    }
}

/// Documents with chunks to fold (`docs_to_compact`), the longest
/// unchanged first (a request
/// worked on last week will not change again soon; one filed a minute ago
/// may), after `after` in `(last_seq, doc_id)` order.
fn candidates(db: &mut dyn Sql, after: &(i64, String), limit: usize) -> Result<Vec<(i64, String)>, StoreError> {
    db.query(
        &format!(
            "SELECT last_seq, doc_id FROM docs WHERE chunk_count > 0 AND (last_seq, doc_id) > (?, ?)
             ORDER BY last_seq, doc_id LIMIT {limit}"
        ),
        args![after.0, after.1.as_str()],
    )?
    .into_iter()
    .map(|r| Ok((r.get(0)?, r.get(1)?)))
    .collect()
}

/// A document folded in memory, to be written if it has not changed.
pub(super) struct Folded {
    doc_id: String,
    /// The stored heads and chunk count it was read with.
    heads: Vec<u8>,
    chunks: i64,
    /// Its heads as the new snapshot has them (for rows without heads).
    new_heads: Vec<u8>,
    snapshot: Vec<u8>,
    bytes_before: u64,
}

/// Reads one document and folds its chunks into a new packed snapshot
/// that loads to the same heads; `None` if it has no chunks (any more)
/// and its snapshot is packed.
pub(super) fn fold(db: &super::Db, doc_id: &str) -> Result<Option<Folded>, StoreError> {
    let Some(stored) = db.read(|c| load_raw(c, doc_id))? else { return Ok(None) };
    if stored.chunks.is_empty() && stored.snapshot_packed() {
        return Ok(None);
    }
    let corrupt = |reason: String| StoreError::Corrupt { what: doc_id.to_owned(), reason };
    let mut doc = stored.open(doc_id)?;
    // Uncompressed: Automerge's DEFLATE would hide from the dictionary
    // what this document shares with every other (at_rest).
    let snapshot = doc.save_nocompress();
    // The new snapshot must be the same document.
    let reloaded = automerge::AutoCommit::load(&snapshot).map_err(|e| corrupt(format!("compacted: {e}")))?.get_heads();
    let new_heads = heads_blob(&to_hashes(&reloaded));
    if !stored.heads.is_empty() {
        blob_heads(&stored.heads)?;
        if stored.heads != new_heads {
            return Err(corrupt("stored heads differ from the document's".into()));
        }
    }
    Ok(Some(Folded {
        doc_id: doc_id.to_owned(),
        bytes_before: stored.stored_len() as u64,
        chunks: stored.chunks.len() as i64,
        heads: stored.heads,
        new_heads,
        snapshot: at_rest::pack(&snapshot),
    }))
}

/// Writes folded documents in one transaction, each only if its stored
/// heads and chunk count are still those it was read with.
pub(super) fn write(db: &super::Db, folded: &[Folded]) -> Result<Compacted, StoreError> {
    db.write(|tx| {
        let mut out = Compacted::default();
        for f in folded {
            // Rows from before `docs.heads` have none: they get them now.
            let n = if f.heads.is_empty() {
                tx.execute(
                    "UPDATE docs SET snapshot = ?, chunk_count = 0, heads = ?
                     WHERE doc_id = ? AND chunk_count = ? AND heads IS NULL",
                    args![f.snapshot.as_slice(), f.new_heads.as_slice(), f.doc_id.as_str(), f.chunks],
                )?
            } else {
                tx.execute(
                    "UPDATE docs SET snapshot = ?, chunk_count = 0 WHERE doc_id = ? AND chunk_count = ? AND heads = ?",
                    args![f.snapshot.as_slice(), f.doc_id.as_str(), f.chunks, f.heads.as_slice()],
                )?
            };
            if n == 1 {
                tx.execute("DELETE FROM chunks WHERE doc_id = ?", args![f.doc_id.as_str()])?;
                out.documents += 1;
                out.bytes_before += f.bytes_before;
                out.bytes_after += f.snapshot.len() as u64;
            } else {
                out.raced += 1;
            }
        }
        Ok(out)
    })
}

/// Where a run of steps has got to.
#[derive(Debug, Default, Clone)]
pub struct Cursor {
    after: (i64, String),
    /// Whether the last step reached the end of the candidates.
    pub done: bool,
}

/// One step: compacts documents from `cursor` on until `budget` is spent
/// or [`STEP_DOCS`] were looked at; the cursor moves past them. At the end
/// of the candidates the cursor starts over (`done` is set).
pub fn step(db: &super::Db, cursor: &mut Cursor, budget: Duration) -> Result<Compacted, StoreError> {
    let started = Instant::now();
    let list = db.read(|c| candidates(c, &cursor.after, STEP_DOCS))?;
    cursor.done = list.len() < STEP_DOCS;
    let mut folded = Vec::new();
    for (seq, doc_id) in list {
        if started.elapsed() >= budget {
            cursor.done = false;
            break;
        }
        match fold(db, &doc_id) {
            Ok(f) => folded.extend(f),
            // One unreadable document must not stop compaction of the rest.
            Err(e @ StoreError::Corrupt { .. }) => {
                tracing::error!(doc = %doc_id, error = %e, "a stored document does not read back: not compacted");
            }
            Err(e) => return Err(e),
        }
        cursor.after = (seq, doc_id);
    }
    if cursor.done {
        cursor.after = (0, String::new());
    }
    if folded.is_empty() { Ok(Compacted::default()) } else { write(db, &folded) }
}

/// Compacts every document that has chunks, then packs every snapshot
/// stored before packing (`loket_node::at_rest`) (`sync-server compact`);
/// `progress` gets the documents compacted so far. The background steps
/// leave those old snapshots alone: finding them reads every row.
pub fn all(db: &super::Db, progress: &mut dyn FnMut(u64)) -> Result<Compacted, StoreError> {
    let mut cursor = Cursor::default();
    let mut out = Compacted::default();
    loop {
        out.add(step(db, &mut cursor, Duration::from_secs(3600))?);
        progress(out.documents);
        if cursor.done {
            break;
        }
    }
    let mut after = String::new();
    loop {
        let list = db.read(|c| unpacked(c, &after, STEP_DOCS))?;
        let Some(last) = list.last().cloned() else { return Ok(out) };
        let mut folded = Vec::new();
        for doc_id in &list {
            match fold(db, doc_id) {
                Ok(f) => folded.extend(f),
                Err(e @ StoreError::Corrupt { .. }) => {
                    tracing::error!(doc = %doc_id, error = %e, "a stored document does not read back: not compacted");
                }
                Err(e) => return Err(e),
            }
        }
        if !folded.is_empty() {
            out.add(write(db, &folded)?);
        }
        progress(out.documents);
        after = last;
    }
}

/// Documents after `after` (by id) whose snapshot is stored as Automerge
/// bytes, not packed.
fn unpacked(db: &mut dyn Sql, after: &str, limit: usize) -> Result<Vec<String>, StoreError> {
    db.query(
        &format!(
            "SELECT doc_id FROM docs WHERE doc_id > ? AND substr(snapshot, 1, 4) <> ? ORDER BY doc_id LIMIT {limit}"
        ),
        args![after, &at_rest::PACKED_MAGIC[..]],
    )?
    .into_iter()
    .map(|r| r.get(0))
    .collect()
}
