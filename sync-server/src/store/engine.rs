//! The document engine: everything the sync endpoint needs from storage,
//! as a trait over plain data, so that a PostgreSQL engine can stand beside
//! the SQLite one (`Db`) without the merge logic changing.
//!
//! The merge is optimistic. Automerge work (opening documents, applying a
//! kiosk's changes, validating, projecting, computing what to pull) runs
//! outside any lock, on documents read with [`DocEngine::load`]; the result
//! is one [`Commit`] that names, for every document it writes, the heads
//! it was computed from (`base`). [`DocEngine::commit`] applies it in one
//! transaction if every base still holds, and otherwise changes nothing
//! and answers [`CommitOutcome::Stale`]: the caller recomputes from the
//! newer documents and tries again. Two kiosks syncing at once therefore
//! merge on both cores and only queue for the short SQL part.
//!
//! Invariants an engine keeps:
//! - a commit is all or nothing, durable when `commit` returns;
//! - every document write gets a new, strictly larger server sequence, and
//!   `pull_candidates` lists documents in that order;
//! - a document's stored heads are exactly the heads of its stored bytes.

use automerge::AutoCommit;
use loket_node::at_rest;
use loket_shared::KelurahanCode;
use loket_shared::request::RequestView;
use loket_shared::summary::Summary;
use loket_shared::sync::{DocType, Hash};
use loket_shared::workflow::Derived;

use super::StoreError;
pub use super::kiosks::KioskActors;

/// A document as stored, not yet opened: its bytes packed as the store
/// holds them (`loket_node::at_rest`), unpacked only when used, so a
/// damaged document fails where its reader already handles a document
/// that does not load.
#[derive(Debug, Clone)]
pub struct StoredDoc {
    pub doc_type: DocType,
    pub kelurahan: Option<String>,
    pub snapshot: Option<Vec<u8>>,
    /// Incremental saves after the snapshot, oldest first.
    pub chunks: Vec<Vec<u8>>,
    /// The document's heads, sorted and concatenated (see [`heads_blob`]).
    pub heads: Vec<u8>,
}

impl StoredDoc {
    /// Automerge bytes: the snapshot and every chunk, unpacked (as the
    /// frames state it; bytes kept as they are count as they are).
    pub fn saved_len(&self) -> usize {
        self.pieces().map(at_rest::unpacked_len).sum()
    }

    /// Bytes as stored: the snapshot and every chunk.
    pub fn stored_len(&self) -> usize {
        self.pieces().map(<[u8]>::len).sum()
    }

    /// Whether the snapshot is stored packed (or there is none).
    pub fn snapshot_packed(&self) -> bool {
        self.snapshot.as_deref().is_none_or(at_rest::is_packed)
    }

    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        self.snapshot.as_deref().into_iter().chain(self.chunks.iter().map(Vec::as_slice))
    }

    /// The snapshot and chunks unpacked and concatenated: the document's
    /// whole history as Automerge loads it.
    pub fn automerge_bytes(&self, doc_id: &str) -> Result<Vec<u8>, StoreError> {
        let mut out = Vec::with_capacity(self.saved_len());
        for piece in self.pieces() {
            out.extend(unpack(doc_id, piece)?);
        }
        Ok(out)
    }

    /// Opens the document; stored bytes that do not unpack or load, or
    /// that lack dependencies, are corruption.
    pub fn open(&self, doc_id: &str) -> Result<AutoCommit, StoreError> {
        let corrupt = |reason: String| StoreError::Corrupt { what: doc_id.to_owned(), reason };
        let mut doc = match &self.snapshot {
            Some(bytes) => AutoCommit::load(&unpack(doc_id, bytes)?).map_err(|e| corrupt(e.to_string()))?,
            None => AutoCommit::new(),
        };
        for chunk in &self.chunks {
            doc.load_incremental(&unpack(doc_id, chunk)?).map_err(|e| corrupt(e.to_string()))?;
        }
        if !doc.get_missing_deps(&[]).is_empty() {
            return Err(corrupt("stored changes with missing dependencies".into()));
        }
        Ok(doc)
    }
}

fn unpack(doc_id: &str, stored: &[u8]) -> Result<Vec<u8>, StoreError> {
    at_rest::unpack(stored.to_vec()).map_err(|e| StoreError::Corrupt { what: doc_id.to_owned(), reason: e.to_string() })
}

/// Heads sorted and concatenated: equal blobs mean equal heads.
pub fn heads_blob(heads: &[Hash]) -> Vec<u8> {
    let mut h = heads.to_vec();
    h.sort_unstable();
    h.concat()
}

/// The heads in a blob made by [`heads_blob`].
pub fn blob_heads(blob: &[u8]) -> Result<Vec<Hash>, StoreError> {
    if !blob.len().is_multiple_of(32) {
        return Err(StoreError::Corrupt { what: "heads".into(), reason: "length is not a multiple of 32".into() });
    }
    Ok(blob.chunks_exact(32).map(|c| c.try_into().expect("32 bytes")).collect())
}

/// A document a kiosk may need to pull, with what the server and the kiosk
/// are known to hold (heads blobs), so that documents the kiosk already has
/// are skipped without loading them.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub doc_id: String,
    pub seq: i64,
    pub heads: Option<Vec<u8>>,
    pub kiosk_heads: Option<Vec<u8>>,
}

/// A document saved whole and packed for storage (`loket_node::at_rest`).
/// Packed where the write is prepared, so the zstd work is not done
/// while the commit holds the write lock (issue 17).
#[derive(Debug, Clone)]
pub struct Packed(Vec<u8>);

impl Packed {
    /// Packs `saved` (a document's `save` or `save_nocompress`).
    pub fn new(saved: &[u8]) -> Packed {
        Packed(at_rest::pack(saved))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What a write adds to a document.
#[derive(Debug, Clone)]
pub enum DocBytes {
    /// A new document, saved whole.
    Snapshot(Packed),
    /// An existing document saved whole after the write, in place of its
    /// snapshot and any chunks. Whole rather than a chunk appended per
    /// write: a request stored as a snapshot and a chunk per later write
    /// loads 2.7× slower than the same request saved whole, and every
    /// later reader (the partner kiosk's pull, the next push) pays that;
    /// saving whole costs 6 µs (`examples/merge_profile`, issue 17).
    Whole(Packed),
}

/// One document's part of a commit.
#[derive(Debug, Clone)]
pub struct DocWrite {
    pub doc_id: String,
    pub doc_type: DocType,
    pub kelurahan: Option<String>,
    /// The heads blob the write was computed from; `None`: the document
    /// must not exist yet.
    pub base: Option<Vec<u8>>,
    pub bytes: DocBytes,
    /// The heads blob after the write.
    pub heads: Vec<u8>,
    /// Changes new to the server in this write: when there are any, the
    /// document's last receipt moves to now (its first stays).
    pub receipts: Vec<Hash>,
    /// The document's projection rows after the write.
    pub projection: Option<Projection>,
}

/// What a document write projects, by document type.
#[derive(Debug, Clone)]
pub enum Projection {
    Request(Box<(RequestView, Derived)>),
    Complaint(Box<(loket_shared::complaint::ComplaintView, loket_shared::complaint::Derived)>),
}

/// A kiosk's side of a sync exchange.
#[derive(Debug, Clone, Default)]
pub struct KioskWrite {
    pub kiosk_id: String,
    /// Its software version and pending-change count (kiosk health).
    pub client: String,
    pub pending: u64,
    /// The kiosk's `pull_after`: it holds everything sent up to there.
    pub pull_after: u64,
    /// Documents the kiosk is now known to hold, with their heads blobs.
    pub holds: Vec<(String, Vec<u8>)>,
    /// Documents pulled in this exchange: id, server sequence, heads blob.
    pub sent: Vec<(String, i64, Vec<u8>)>,
    /// The kiosk's `through`, when this push moves its `acked` there.
    pub through: Option<u64>,
    /// The cursor this exchange hands the kiosk (`pull_next`).
    pub pull_given: u64,
}

/// What the server last recorded of a kiosk's cursors (`None`: nothing
/// yet). A kiosk claiming more than this is talking to a server restored
/// from a backup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KioskMarks {
    /// The kiosk change sequence up to which the server holds everything.
    pub through: Option<u64>,
    /// The last cursor handed to the kiosk.
    pub pull_given: Option<u64>,
}

/// Everything one exchange (or one central edit) writes.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub now_ms: i64,
    pub kiosk: Option<KioskWrite>,
    pub docs: Vec<DocWrite>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitOutcome {
    Committed,
    /// These documents changed since they were read: nothing was written.
    Stale(Vec<String>),
}

/// The storage of documents and of what kiosks hold.
pub trait DocEngine: Send + Sync {
    fn load(&self, doc_id: &str) -> Result<Option<StoredDoc>, StoreError>;

    /// [`DocEngine::load`] of several documents, in order. The store's
    /// engine reads them in one transaction on one connection: a pull
    /// loaded each in its own, and taking a pooled connection, beginning
    /// and ending a transaction cost as much as the read (issue 17).
    fn load_many(&self, doc_ids: &[&str]) -> Result<Vec<Option<StoredDoc>>, StoreError> {
        doc_ids.iter().map(|id| self.load(id)).collect()
    }

    /// Documents a kiosk of `kelurahan` may see (its kelurahan's and the
    /// catalog), changed after `after`, in server-sequence order, at most
    /// `limit + 1` (to tell whether there is more).
    fn pull_candidates(
        &self,
        kiosk_id: &str,
        kelurahan: &KelurahanCode,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Candidate>, StoreError>;

    fn kiosk_marks(&self, kiosk_id: &str) -> Result<KioskMarks, StoreError>;

    /// The Automerge actors (hex) of the kiosks enrolled in `kelurahan`,
    /// `kiosk_id`'s own apart from the others'.
    fn kiosk_actors(&self, kelurahan: &KelurahanCode, kiosk_id: &str) -> Result<KioskActors, StoreError>;

    /// The reference document of a type (the catalog: `kelurahan` None; a
    /// kelurahan's roster), as stored, if there is one.
    fn reference(&self, doc_type: DocType, kelurahan: Option<&str>) -> Result<Option<StoredDoc>, StoreError>;

    /// Applies `commit` in one durable transaction if every document's base
    /// still holds; otherwise writes nothing.
    fn commit(&self, commit: &Commit) -> Result<CommitOutcome, StoreError>;

    /// Opens a stored document: [`StoredDoc::open`], or a copy of the same
    /// document kept open at the same heads.
    fn open(&self, doc_id: &str, stored: &StoredDoc) -> Result<AutoCommit, StoreError> {
        stored.open(doc_id)
    }

    /// Offers a document as committed at `heads` (a blob) to keep open;
    /// `saved_bytes` is its stored size. An engine may ignore it.
    fn keep_open(&self, _doc_id: &str, _heads: Vec<u8>, _doc: AutoCommit, _saved_bytes: usize) {}

    /// Offers what a kiosk's lists need of a request committed at `heads`
    /// (a blob), to send with it to a kiosk that does not hold it yet. An
    /// engine may ignore it.
    fn keep_summary(&self, _doc_id: &str, _heads: Vec<u8>, _summary: Summary) {}

    /// The summary kept of `doc_id` at exactly `heads`, if any.
    fn summary(&self, _doc_id: &str, _heads: &[u8]) -> Option<Summary> {
        None
    }
}

/// The document engine over either database: reads on a read connection,
/// the commit in one write transaction.
impl DocEngine for super::Db {
    fn load(&self, doc_id: &str) -> Result<Option<StoredDoc>, StoreError> {
        self.read(|c| super::docs::load_raw(c, doc_id))
    }

    fn load_many(&self, doc_ids: &[&str]) -> Result<Vec<Option<StoredDoc>>, StoreError> {
        self.read(|c| doc_ids.iter().map(|id| super::docs::load_raw(c, id)).collect())
    }

    fn open(&self, doc_id: &str, stored: &StoredDoc) -> Result<AutoCommit, StoreError> {
        if !stored.heads.is_empty()
            && let Some(doc) = self.hot().get(doc_id, &stored.heads)
        {
            return Ok(doc);
        }
        stored.open(doc_id)
    }

    fn keep_open(&self, doc_id: &str, heads: Vec<u8>, doc: AutoCommit, saved_bytes: usize) {
        self.hot().put(doc_id, heads, doc, saved_bytes);
    }

    fn keep_summary(&self, doc_id: &str, heads: Vec<u8>, summary: Summary) {
        self.hot().put_summary(doc_id, heads, summary);
    }

    fn summary(&self, doc_id: &str, heads: &[u8]) -> Option<Summary> {
        self.hot().summary(doc_id, heads)
    }

    fn pull_candidates(
        &self,
        kiosk_id: &str,
        kelurahan: &KelurahanCode,
        after: u64,
        limit: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        self.read(|c| super::docs::changed_since(c, kiosk_id, kelurahan, after, limit))
    }

    fn kiosk_marks(&self, kiosk_id: &str) -> Result<KioskMarks, StoreError> {
        self.read(|c| super::docs::kiosk_marks(c, kiosk_id))
    }

    fn kiosk_actors(&self, kelurahan: &KelurahanCode, kiosk_id: &str) -> Result<KioskActors, StoreError> {
        self.read(|c| super::kiosks::kelurahan_actors(c, kelurahan.as_str(), kiosk_id))
    }

    fn reference(&self, doc_type: DocType, kelurahan: Option<&str>) -> Result<Option<StoredDoc>, StoreError> {
        self.read(|c| match super::docs::reference_doc(c, doc_type, kelurahan)? {
            Some(id) => super::docs::load_raw(c, &id),
            None => Ok(None),
        })
    }

    fn commit(&self, commit: &Commit) -> Result<CommitOutcome, StoreError> {
        /// Why the transaction rolled back: a stale base is an answer, not a failure.
        enum Abort {
            Stale(Vec<String>),
            Store(StoreError),
        }
        impl From<StoreError> for Abort {
            fn from(e: StoreError) -> Abort {
                Abort::Store(e)
            }
        }
        let outcome = self.write(|tx| match super::docs::commit_tx(tx, commit)? {
            CommitOutcome::Committed => Ok(()),
            CommitOutcome::Stale(ids) => Err(Abort::Stale(ids)),
        });
        match outcome {
            Ok(()) => Ok(CommitOutcome::Committed),
            Err(Abort::Stale(ids)) => Ok(CommitOutcome::Stale(ids)),
            Err(Abort::Store(e)) => Err(e),
        }
    }
}
