//! The sync endpoint (DESIGN.md §4): `POST /api/sync` with a binary
//! `loket_shared::sync` message, authenticated as a kiosk.
//!
//! One exchange is merged in memory, outside any lock (each pushed
//! document loaded, merged, checked and projected; the pull planned), and
//! then committed in one transaction with kiosk health, optimistically: if
//! a document changed since it was read, the exchange is merged again
//! (see `store::engine`). Nothing of a refused batch is stored. A document
//! whose pushed changes lack dependencies is answered with Automerge's
//! sync protocol for that one document instead (`PushOutcome::Fallback`),
//! and nothing of it is stored until the exchange completes.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet};

use automerge::AutoCommit;
use loket_shared::chunks::{self, Budget, ChunkError};
use loket_shared::complaint::{self, ComplaintView, StepKind};
use loket_shared::reference::{self, Catalog, Roster};
use loket_shared::request::{self, Rating, RequestView};
use loket_shared::structure::{self, StructureError};
use loket_shared::summary::Summary;
use loket_shared::sync::{
    BATCH_DOCS_MAX, DocType, PROTOCOL_VERSION, PROTOCOL_VERSION_OLDEST, PullDoc, PushAck, PushDoc, PushOutcome,
    SyncRequest, SyncResponse, WireError,
};
use loket_shared::workflow::{self, Event, EventKind};
use loket_shared::{DocId, KelurahanCode, StaffId, Status};

use super::auth::KioskAuth;
use super::seal::SealKey;
use crate::store::StoreError;
use crate::store::complaints;
use crate::store::docs::{self, from_hashes, to_hashes};
use crate::store::engine::{
    Candidate, Commit, CommitOutcome, DocBytes, DocEngine, DocWrite, KioskActors, KioskWrite, Packed, Projection,
    StoredDoc, blob_heads, heads_blob,
};

pub const CONTENT_TYPE: &str = "application/x-loket-sync";
/// Bytes of changes one pull answer carries at most (more follows).
const PULL_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Why a whole sync batch was refused.
#[derive(Debug)]
pub enum Refusal {
    Wire(WireError),
    Forbidden(String),
    /// A change the kiosk may not make (another actor, a central field).
    ForbiddenChange(String),
    InvalidChanges(String),
    InvalidDocument(String),
    /// Foreign Automerge bytes that would decode to more than the limits
    /// allow (`shared::chunks`): refused before Automerge inflates them.
    TooLarge(String),
    /// The document's objects were replaced, rewritten or given keys the
    /// layout does not have (`shared::structure`).
    InvalidStructure(String),
    /// A kiosk event the workflow does not allow from what it saw, with
    /// the rule book's code (`workflow::TransitionError::code`) or
    /// `unknown_agency` / `unknown_staff`.
    Workflow(&'static str, String),
    /// A document this server stores but cannot read back: refused by id,
    /// so the kiosk sets it aside and syncs the rest.
    Unreadable(String),
    /// Other writers kept changing the same documents: try again later.
    Busy,
    Store(StoreError),
}

impl From<StoreError> for Refusal {
    fn from(e: StoreError) -> Refusal {
        Refusal::Store(e)
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
            Refusal::ForbiddenChange(_) => "forbidden_change",
            Refusal::InvalidChanges(_) => "invalid_changes",
            Refusal::InvalidDocument(_) => "invalid_document",
            Refusal::TooLarge(_) => "changes_too_large",
            Refusal::InvalidStructure(_) => "invalid_structure",
            Refusal::Workflow(code, _) => code,
            Refusal::Unreadable(_) => "unreadable_document",
            Refusal::Busy => "busy",
            Refusal::Store(_) => "internal",
        }
    }

    /// The document a refusal is about: every per-document refusal names
    /// it first (`"{doc_id}: ..."` or just the id).
    pub fn doc(&self) -> Option<DocId> {
        let m = match self {
            Refusal::Forbidden(m)
            | Refusal::ForbiddenChange(m)
            | Refusal::InvalidChanges(m)
            | Refusal::InvalidDocument(m)
            | Refusal::TooLarge(m)
            | Refusal::InvalidStructure(m)
            | Refusal::Workflow(_, m)
            | Refusal::Unreadable(m) => m,
            _ => return None,
        };
        m.split(':').next().and_then(|id| id.trim().parse().ok())
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Wire(WireError::Version { got }) if *got < PROTOCOL_VERSION_OLDEST => format!(
                "kiosk ini memakai protokol sinkronisasi {got}, server memakai {PROTOCOL_VERSION_OLDEST} sampai \
                 {PROTOCOL_VERSION}: perbarui kiosk ke rilis terbaru; sementara itu kiosk tetap melayani tanpa \
                 sinkronisasi / this kiosk speaks sync protocol {got}, the server {PROTOCOL_VERSION_OLDEST} to \
                 {PROTOCOL_VERSION}: update the kiosk to the current release; it keeps serving offline meanwhile"
            ),
            Refusal::Wire(WireError::Version { got }) => format!(
                "kiosk ini memakai protokol sinkronisasi {got}, lebih baru dari server ({PROTOCOL_VERSION}): perbarui \
                 server lebih dahulu / this kiosk speaks sync protocol {got}, newer than the server's \
                 ({PROTOCOL_VERSION}): update the server first"
            ),
            Refusal::Wire(e) => format!("pesan sinkronisasi ditolak / sync message refused: {e}"),
            Refusal::Forbidden(m) => format!("dokumen ini bukan milik kiosk ini / not this kiosk's document: {m}"),
            Refusal::ForbiddenChange(m) => {
                format!("perubahan ini tidak diizinkan untuk kiosk ini / change not allowed for this kiosk: {m}")
            }
            Refusal::InvalidChanges(m) => format!("perubahan tidak dapat dibaca / changes cannot be read: {m}"),
            Refusal::InvalidDocument(m) => {
                format!("dokumen tidak sah setelah digabung / document invalid after merge: {m}")
            }
            Refusal::TooLarge(m) => {
                format!("perubahan terlalu besar setelah dibuka / changes too large once decoded: {m}")
            }
            Refusal::InvalidStructure(m) => {
                format!("susunan dokumen diubah / the document's structure was changed: {m}")
            }
            Refusal::Workflow(_, m) => {
                format!("langkah ini tidak diizinkan alur kerja / the workflow does not allow this step: {m}")
            }
            Refusal::Unreadable(m) => format!(
                "dokumen di server tidak dapat dibaca; disisihkan / the server cannot read this document; set aside: {m}"
            ),
            Refusal::Busy => "server sibuk, coba lagi / server busy, try again".into(),
            Refusal::Store(_) => "kesalahan server / server error".into(),
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub docs_in: usize,
    pub docs_out: usize,
    /// Stored documents the pull skipped because they do not read back.
    pub unreadable: usize,
    /// Commits found stale (another writer changed a document this
    /// exchange merged) and merged again before this one held.
    pub stale_commits: usize,
    /// Pushed stored requests checked whole: their changes did more than
    /// append (`structure::appended`); the kiosks' usual push never does.
    pub full_checks: usize,
}

/// The server's clock (`store::now_ms`), also reachable here for the
/// examples that drive an exchange.
pub use crate::store::now_ms;

/// Changes one pushed document may bring at once. A request's whole life
/// is a few dozen; a kiosk offline for weeks stays far below this.
pub const CHANGES_PER_DOC_MAX: usize = 2_000;

/// How often an exchange is recomputed when documents it read changed
/// before it could commit (another kiosk or a central edit won the race).
const COMMIT_ATTEMPTS: usize = 8;

/// One exchange: merge the push and plan the pull outside any lock, then
/// commit it all at once; recompute if a document changed meanwhile.
pub fn exchange(
    engine: &dyn DocEngine,
    seal: &SealKey,
    kiosk: &KioskAuth,
    req: &SyncRequest,
    now: i64,
) -> Result<(SyncResponse, Stats), Refusal> {
    let mut seen = HashSet::with_capacity(req.push.len());
    if let Some(dup) = req.push.iter().find(|p| !seen.insert(p.doc)) {
        return Err(Refusal::InvalidChanges(format!("{} is pushed twice in one batch", DocId::from_bytes(dup.doc))));
    }
    inspect_push(req)?;
    // A kiosk that claims more than this server recorded is talking to a
    // server restored from a backup: pull again from what we handed out,
    // and have it push again from what we hold.
    let marks = engine.kiosk_marks(&kiosk.id)?;
    let actors =
        if req.push.is_empty() { KioskActors::default() } else { engine.kiosk_actors(&kiosk.kelurahan, &kiosk.id)? };
    // No marks: the kiosk never synced with this database (it was restored
    // from before the kiosk's first sync), so it holds nothing of it.
    let pull_after = req.pull_after.min(marks.pull_given.unwrap_or(0));
    let through = marks.through.unwrap_or(0);
    // A cursor ahead of what we handed out means the kiosk may also hold
    // changes it pulled from us that we have lost since (a central event):
    // it must push everything again too, not only its own writes.
    let rewind_acked = (req.acked > through || pull_after < req.pull_after).then_some(through.min(req.acked));
    if pull_after != req.pull_after || rewind_acked.is_some() {
        tracing::warn!(
            kiosk = %kiosk.code, claimed_cursor = req.pull_after, cursor = pull_after, claimed_acked = req.acked,
            ?rewind_acked, "kiosk is ahead of this server (restored from a backup?): rewinding it"
        );
    }
    let refs = References::new(engine, &kiosk.kelurahan);
    // Each pushed document's merge, kept across attempts: a stale commit
    // names the documents another writer changed, and only those (and
    // any whose outcome depended on what was stored without a write to
    // check it against) are merged again. The rest were computed from
    // bases the next commit checks again.
    let mut prepared: Vec<Option<Prepared>> = req.push.iter().map(|_| None).collect();
    let mut full_checks = 0;
    for attempt in 1..=COMMIT_ATTEMPTS {
        // What is stored of the documents to merge, read in one read: a
        // read each cost a pooled connection and a transaction apiece.
        let to_merge: Vec<String> = prepared
            .iter()
            .zip(&req.push)
            .filter(|(slot, _)| slot.is_none())
            .map(|(_, p)| DocId::from_bytes(p.doc).to_string())
            .collect();
        let ids: Vec<&str> = to_merge.iter().map(String::as_str).collect();
        let mut stored = engine.load_many(&ids)?.into_iter();
        for (slot, p) in prepared.iter_mut().zip(&req.push) {
            if slot.is_none() {
                let stored = stored.next().expect("one read for each document to merge");
                let merged = prepare_push(engine, seal, kiosk, &actors, &refs, p, stored)?;
                full_checks += usize::from(merged.full_check);
                *slot = Some(merged);
            }
        }
        let mut commit = Commit {
            now_ms: now,
            kiosk: Some(KioskWrite {
                kiosk_id: kiosk.id.clone(),
                client: req.client.clone(),
                pending: req.pending,
                pull_after,
                ..KioskWrite::default()
            }),
            docs: Vec::new(),
        };
        let k = commit.kiosk.as_mut().expect("set above");
        let mut all_applied = true;
        // Which slot each of `commit.docs` came from, to put it back if
        // the commit is stale.
        let mut written = Vec::new();
        for (i, slot) in prepared.iter_mut().enumerate() {
            let merged = slot.as_mut().expect("every slot merged above");
            all_applied &= matches!(merged.ack.outcome, PushOutcome::Applied { .. });
            k.holds.extend(merged.holds.clone());
            if let Some(w) = merged.write.take() {
                written.push(i);
                commit.docs.push(w);
            }
        }
        // The kiosk moves its `acked` to `through` exactly when every
        // document was applied; record the same (unless rewinding it).
        k.through = (all_applied && rewind_acked.is_none()).then_some(req.through.max(req.acked));
        let mut unreadable = Vec::new();
        // A kiosk of protocol 2 gets no summaries.
        let mut summaries = (req.version >= 3).then(Vec::new);
        let (pull, pull_next, more) =
            plan_pull(engine, kiosk, pull_after, &mut k.sent, &mut unreadable, summaries.as_mut())?;
        k.pull_given = pull_next;
        let stats = Stats {
            docs_in: req.push.len(),
            docs_out: pull.len(),
            unreadable: unreadable.len(),
            stale_commits: attempt - 1,
            full_checks,
        };
        match engine.commit(&commit)? {
            CommitOutcome::Committed => {
                let mut acks = Vec::with_capacity(req.push.len());
                for merged in prepared.into_iter().flatten() {
                    acks.push(merged.ack);
                    // What was just stored, kept open for the next push
                    // or pull of it (the partner kiosk's, typically).
                    if let Some((doc_id, heads, doc, saved)) = merged.keep {
                        engine.keep_open(&doc_id, heads, doc, saved);
                    }
                    if let Some((doc_id, heads, summary)) = merged.summary {
                        engine.keep_summary(&doc_id, heads, summary);
                    }
                }
                let more = more || rewind_acked.is_some();
                let resp = SyncResponse {
                    version: req.version,
                    acks,
                    pull,
                    pull_next,
                    more,
                    rewind_acked,
                    summaries: summaries.unwrap_or_default(),
                };
                return Ok((resp, stats));
            }
            CommitOutcome::Stale(docs) => {
                tracing::debug!(attempt, stale = docs.len(), "documents changed during the merge: merging again");
                let stale: HashSet<String> = docs.into_iter().collect();
                for (i, w) in written.into_iter().zip(commit.docs) {
                    prepared[i].as_mut().expect("merged").write = Some(w);
                }
                for slot in &mut prepared {
                    let merged = slot.as_ref().expect("merged");
                    let redo = match &merged.write {
                        Some(w) => stale.contains(&w.doc_id),
                        // A deferral or a fallback was decided from what
                        // was stored, which no commit checks.
                        None => !matches!(merged.ack.outcome, PushOutcome::Applied { .. }),
                    };
                    if redo {
                        *slot = None;
                    }
                }
            }
        }
    }
    Err(Refusal::Busy)
}

/// Bounds what the pushed bytes decode to before Automerge sees any of
/// them (`shared::chunks`): each document on its own, and the exchange in
/// all. The refusal names the document where a limit was crossed.
fn inspect_push(req: &SyncRequest) -> Result<(), Refusal> {
    let mut exchange = Budget::new(chunks::EXCHANGE_LIMITS);
    for p in &req.push {
        let doc_id = DocId::from_bytes(p.doc);
        let refuse = |e: ChunkError| match e {
            ChunkError::TooLarge(m) => Refusal::TooLarge(format!("{doc_id}: {m}")),
            ChunkError::Malformed(m) => Refusal::InvalidChanges(format!("{doc_id}: {m}")),
        };
        let mut budget = Budget::new(chunks::DOC_LIMITS);
        chunks::inspect(&p.changes, &mut budget).map_err(refuse)?;
        if let Some(message) = &p.fallback {
            chunks::inspect_sync_message(message, &mut budget).map_err(refuse)?;
        }
        exchange.absorb(&budget).map_err(refuse)?;
    }
    Ok(())
}

/// A pushed document merged in memory: the answer for the kiosk and what
/// to write.
struct Prepared {
    ack: PushAck,
    write: Option<DocWrite>,
    holds: Option<(String, Vec<u8>)>,
    /// The merged document to keep open once the commit holds: `(id,
    /// heads blob, document, stored size)`.
    keep: Option<(String, Vec<u8>, AutoCommit, usize)>,
    /// What a kiosk's lists need of the merged request, to keep beside it
    /// once the commit holds: `(id, heads blob, summary)`.
    summary: Option<(String, Vec<u8>, Summary)>,
    /// A stored request checked whole (`Stats::full_checks`).
    full_check: bool,
}

fn prepare_push(
    engine: &dyn DocEngine,
    seal: &SealKey,
    kiosk: &KioskAuth,
    actors: &KioskActors,
    refs: &References<'_>,
    p: &PushDoc,
    stored: Option<StoredDoc>,
) -> Result<Prepared, Refusal> {
    let id = DocId::from_bytes(p.doc);
    let doc_id = id.to_string();
    let _span = tracing::debug_span!("push", doc = %doc_id).entered();
    if !matches!(p.doc_type, DocType::Request | DocType::Complaint) {
        return Err(Refusal::Forbidden(format!("{doc_id}: kiosks may not write {} documents", p.doc_type.as_str())));
    }
    let unreadable = |e: &dyn std::fmt::Display| {
        tracing::error!(doc = %doc_id, error = %e, "a stored document does not read back: refused by id");
        Refusal::Unreadable(doc_id.clone())
    };
    let (mut doc, base) = match &stored {
        Some(s) => {
            if s.doc_type != p.doc_type || s.kelurahan.as_deref() != Some(kiosk.kelurahan.as_str()) {
                return Err(Refusal::Forbidden(doc_id));
            }
            (engine.open(&doc_id, s).map_err(|e| unreadable(&e))?, Some(s.heads.clone()))
        }
        None => (AutoCommit::new(), None),
    };
    let heads_before = doc.get_heads();
    // A request's push is normally checked from its changes alone
    // (`structure::appended`); the document as it was is read only when
    // they do more than append.
    let mut view_before = match (&stored, p.doc_type) {
        (None, _) | (Some(_), DocType::Request) => None,
        (Some(_), DocType::Complaint) => {
            Some(Before::Complaint(Box::new(complaints::read_complaint(&doc).map_err(|e| unreadable(&e))?.0)))
        }
        (Some(_), _) => Some(Before::Request(Box::new(docs::read_request(&doc).map_err(|e| unreadable(&e))?.0))),
    };
    // What is stored is what loaded, saved again (below): a lenient load
    // skips what it cannot parse, and bytes kept as they came would fail
    // every reader.
    if !p.changes.is_empty() {
        if stored.is_none()
            && let Ok(loaded) = AutoCommit::load(&p.changes)
        {
            doc = loaded;
        } else {
            doc.load_incremental(&p.changes).map_err(|e| Refusal::InvalidChanges(format!("{doc_id}: {e}")))?;
        }
        let changes = doc.get_changes_meta(&heads_before).len();
        if changes > CHANGES_PER_DOC_MAX {
            return Err(Refusal::Wire(WireError::Limit(format!(
                "{doc_id}: {changes} changes in one document (at most {CHANGES_PER_DOC_MAX})"
            ))));
        }
    }
    let mut reply = None;
    if let Some(msg) = &p.fallback {
        reply =
            Some(docs::receive_fallback(&mut doc, msg).map_err(|e| Refusal::InvalidChanges(format!("{doc_id}: {e}")))?);
    }
    if !doc.get_missing_deps(&[]).is_empty() {
        // The kiosk's base was wrong. Store nothing of it; answer with our
        // sync message so the kiosk sends exactly what we lack.
        tracing::info!(kiosk = %kiosk.code, doc = %doc_id, "missing dependencies: falling back to the sync protocol");
        return Ok(Prepared {
            ack: PushAck { doc: p.doc, outcome: fallback_from(&stored, &doc_id)? },
            write: None,
            holds: None,
            keep: None,
            summary: None,
            full_check: false,
        });
    }
    let heads_after = doc.get_heads();
    let mut write = None;
    let mut keep = None;
    let mut summary = None;
    let mut full_check = false;
    if heads_after != heads_before {
        let policy = Policy { seal, kiosk, actors, refs };
        // A stored document keeps what it had (`structure::check` with `before`).
        let before_heads = stored.is_some().then_some(heads_before.as_slice());
        let (authorized, projection, read) = if p.doc_type == DocType::Complaint {
            let (view, derived) =
                complaints::read_complaint(&doc).map_err(|e| Refusal::InvalidDocument(format!("{doc_id}: {e}")))?;
            if view.id != id || view.kelurahan != kiosk.kelurahan {
                return Err(Refusal::Forbidden(format!("{doc_id}: belongs to another kelurahan")));
            }
            structure::check_complaint(&doc, before_heads)
                .map_err(|e| Refusal::InvalidStructure(format!("{doc_id}: {e}")))?;
            let before = match &view_before {
                Some(Before::Complaint(b)) => Some(b.as_ref()),
                _ => None,
            };
            let authorized = policy.authorize_complaint(&doc_id, &mut doc, &heads_before, before, &view)?;
            (authorized, Projection::Complaint(Box::new((view, derived))), None)
        } else {
            // Hydrated once: read from it, and for a new request also
            // checked from it (`structure::check_tree`).
            let tree = request::hydrate(&doc).map_err(|e| e.to_string());
            let (view, derived) = match tree.as_ref().map_err(Clone::clone).and_then(docs::read_request_tree) {
                Ok(read) => read,
                Err(e) => {
                    // Ours or the push's fault? A stored request that does
                    // not read back is refused by id (`Unreadable`).
                    if let Some(s) = &stored {
                        let old = engine.open(&doc_id, s).map_err(|e| unreadable(&e))?;
                        docs::read_request(&old).map_err(|e| unreadable(&e))?;
                    }
                    return Err(Refusal::InvalidDocument(format!("{doc_id}: {e}")));
                }
            };
            if view.id != id || view.kelurahan != kiosk.kelurahan {
                return Err(Refusal::Forbidden(format!("{doc_id}: belongs to another kelurahan")));
            }
            let invalid = |e: StructureError| Refusal::InvalidStructure(format!("{doc_id}: {e}"));
            let appended = match (&stored, p.fallback.is_none()) {
                (Some(_), true) => match pushed_changes(&p.changes, &doc.get_changes_meta(&heads_before)) {
                    Some(changes) => structure::appended(&doc, &changes).map_err(invalid)?,
                    None => None,
                },
                _ => None,
            };
            let seen = match &appended {
                Some(appended) => Seen::Appended(appended),
                None => {
                    full_check = stored.is_some();
                    if let (Some(s), None) = (&stored, &view_before) {
                        tracing::debug!(doc = %doc_id, "the push does more than append: full check");
                        // Read again as it was stored: `doc` has the push in it.
                        let old = engine.open(&doc_id, s).map_err(|e| unreadable(&e))?;
                        let view = docs::read_request(&old).map_err(|e| unreadable(&e))?.0;
                        view_before = Some(Before::Request(Box::new(view)));
                    }
                    match (&tree, before_heads) {
                        (Ok(tree), None) => structure::check_tree(tree).map_err(invalid)?,
                        _ => structure::check(&doc, before_heads).map_err(invalid)?,
                    }
                    match &view_before {
                        Some(Before::Request(b)) => Seen::Before(b),
                        _ => Seen::New,
                    }
                }
            };
            let authorized = policy.authorize(&doc_id, &mut doc, &heads_before, seen, (&view, &derived))?;
            let read = Summary::of(&view, &derived);
            (authorized, Projection::Request(Box::new((view, derived))), Some(read))
        };
        if authorized == Authorized::Defer {
            tracing::info!(kiosk = %kiosk.code, doc = %doc_id, "carries another kiosk's changes we lack: deferred");
            return Ok(Prepared {
                ack: PushAck { doc: p.doc, outcome: PushOutcome::Deferred },
                write: None,
                holds: None,
                keep: None,
                summary: None,
                full_check: false,
            });
        }
        // Saved whole (6 µs), whatever form the kiosk sent: every later
        // reader then loads one snapshot (`DocBytes::Whole`).
        let whole = doc.save_nocompress();
        let saved = whole.len();
        let bytes = match &stored {
            None => DocBytes::Snapshot(Packed::new(&whole)),
            Some(_) => DocBytes::Whole(Packed::new(&whole)),
        };
        let receipts = doc.get_changes_meta(&heads_before).iter().map(|c| c.hash.0).collect();
        // A changed document is kept open: its partner kiosk pulls it next
        // (a `save_after` its heads). A new one is pulled as stored bytes,
        // with no Automerge work, so keeping it would only cost a clone.
        let heads_after_blob = heads_blob(&to_hashes(&heads_after));
        if stored.is_some() {
            keep = Some((doc_id.clone(), heads_after_blob.clone(), saved));
        }
        // A kiosk that does not hold it yet (the partner, for a new one)
        // gets this beside the stored bytes, and stores them unread.
        summary = read.map(|s| (doc_id.clone(), heads_after_blob.clone(), s));
        write = Some(DocWrite {
            doc_id: doc_id.clone(),
            doc_type: p.doc_type,
            kelurahan: Some(kiosk.kelurahan.to_string()),
            base,
            bytes,
            heads: heads_after_blob,
            receipts,
            projection: Some(projection),
        });
    }
    // What the kiosk holds now: its own heads, once we have all of them.
    let holds = doc.get_missing_deps(&from_hashes(&p.heads)).is_empty().then(|| (doc_id, heads_blob(&p.heads)));
    let outcome = match reply {
        Some(fallback) => PushOutcome::Fallback { fallback },
        None => PushOutcome::Applied { heads: to_hashes(&heads_after) },
    };
    let keep = keep.map(|(id, heads, saved)| (id, heads, doc, saved));
    Ok(Prepared { ack: PushAck { doc: p.doc, outcome }, write, holds, keep, summary, full_check })
}

/// A stored document as it read before the push.
enum Before {
    Request(Box<RequestView>),
    Complaint(Box<ComplaintView>),
}

/// What the authorization of a request knows of it before the push.
#[derive(Clone, Copy)]
enum Seen<'a> {
    /// Nothing: the push creates it.
    New,
    /// The request as it read before.
    Before(&'a RequestView),
    /// The push only appended these events and ratings; nothing that was
    /// there changed (`structure::appended`).
    Appended(&'a structure::Appended),
}

/// The changes a push brought (those the document did not hold, `new`),
/// decoded, when the pushed bytes are change chunks that hold them all;
/// `None` otherwise (a whole document, a fallback), and the full check
/// runs instead.
fn pushed_changes(bytes: &[u8], new: &[automerge::ChangeMetadata<'_>]) -> Option<Vec<automerge::ExpandedChange>> {
    let wanted: HashSet<automerge::ChangeHash> = new.iter().map(|c| c.hash).collect();
    let mut out = Vec::with_capacity(wanted.len());
    for chunk in chunks::change_chunks(bytes)? {
        let change = automerge::Change::try_from(chunk).ok()?;
        if !wanted.contains(&change.hash()) {
            continue; // held already
        }
        // automerge 0.12's decoder unwraps actor indices, and I could not
        // show that its parser checks them first: should a forged change
        // panic there, it takes the full check; it never takes the server
        // down.
        out.push(std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| change.decode())).ok()?);
    }
    (out.len() == wanted.len()).then_some(out)
}

/// Our sync message for a document, from what we store of it: the
/// kiosk answers with exactly what we lack.
fn fallback_from(stored: &Option<StoredDoc>, doc_id: &str) -> Result<PushOutcome, Refusal> {
    let mut clean = match stored {
        Some(s) => s.open(doc_id).map_err(|_| Refusal::Unreadable(doc_id.to_owned()))?,
        None => AutoCommit::new(),
    };
    Ok(PushOutcome::Fallback { fallback: docs::fallback_message(&mut clean) })
}

/// Change-level authorization (DESIGN.md §5), before anything is stored:
/// what a kiosk adds to a document must be its own work.
///
/// - every change the server does not hold yet is by the kiosk's registered
///   actor, or by one of this server's own actors (a kiosk carrying central
///   events back after a restore);
/// - the header (ids, ticket, service, applicant, creation, the digest of
///   the receipt's rating code) is the creator's and never changes; a new
///   document is this kiosk's;
/// - events and ratings already stored are still there, unchanged;
/// - a new event is either this kiosk's (its node, never a resolve, which
///   only admins write, never an agency's take) or a central event
///   carrying this server's seal; a new rating is this kiosk's;
/// - a new kiosk event is one the workflow allows from what it saw: the
///   events it names as parents (and theirs) are folded and the same
///   `workflow::check_transition` the kiosk runs decides, as
///   `Actor::Kelurahan`; it names the status it saw (`from`) and that
///   frontier truly; a hand-off goes to an agency the catalog lists for
///   the service; `by` is on the kelurahan's roster (the citizen files
///   only); every string is bounded (`structure::check_event`).
///
/// The document's objects are checked before this (`structure::check`).
struct Policy<'a> {
    seal: &'a SealKey,
    kiosk: &'a KioskAuth,
    /// The kiosk's own actors and those of the other kiosks of the
    /// kelurahan.
    actors: &'a KioskActors,
    refs: &'a References<'a>,
}

/// The catalog and the kelurahan's roster, loaded at most once per
/// exchange and only when a new kiosk event needs them.
struct References<'a> {
    engine: &'a dyn DocEngine,
    kelurahan: &'a KelurahanCode,
    catalog: OnceCell<Option<Catalog>>,
    roster: OnceCell<Option<Roster>>,
}

impl<'a> References<'a> {
    fn new(engine: &'a dyn DocEngine, kelurahan: &'a KelurahanCode) -> References<'a> {
        References { engine, kelurahan, catalog: OnceCell::new(), roster: OnceCell::new() }
    }

    fn catalog(&self) -> Result<Option<&Catalog>, Refusal> {
        if self.catalog.get().is_none() {
            let catalog = self.read(DocType::Catalog, None, reference::read_catalog)?;
            let _ = self.catalog.set(catalog);
        }
        Ok(self.catalog.get().and_then(Option::as_ref))
    }

    fn roster(&self) -> Result<Option<&Roster>, Refusal> {
        if self.roster.get().is_none() {
            let roster = self.read(DocType::Roster, Some(self.kelurahan.as_str()), reference::read_roster)?;
            let _ = self.roster.set(roster);
        }
        Ok(self.roster.get().and_then(Option::as_ref))
    }

    fn read<T>(
        &self,
        doc_type: DocType,
        kelurahan: Option<&str>,
        read: impl Fn(&AutoCommit) -> Result<T, loket_shared::request::SchemaError>,
    ) -> Result<Option<T>, Refusal> {
        let Some(stored) = self.engine.reference(doc_type, kelurahan)? else { return Ok(None) };
        let doc = stored.open(doc_type.as_str())?;
        let value = read(&doc)
            .map_err(|e| StoreError::Corrupt { what: doc_type.as_str().to_owned(), reason: e.to_string() })?;
        Ok(Some(value))
    }
}

impl Policy<'_> {
    fn authorize(
        &self,
        doc_id: &str,
        doc: &mut AutoCommit,
        heads_before: &[automerge::ChangeHash],
        seen: Seen<'_>,
        (after, derived): (&RequestView, &workflow::Derived),
    ) -> Result<Authorized, Refusal> {
        let Policy { seal, kiosk, actors, .. } = *self;
        let forbidden = |what: String| Refusal::ForbiddenChange(format!("{doc_id}: {what}"));
        let mut partners_changes = false;
        for change in doc.get_changes_meta(heads_before) {
            let (actor, hex) = (change.actor.to_bytes(), change.actor.to_hex_string());
            if actors.own.contains(&hex) || seal.is_server_actor(actor) {
                continue;
            }
            if actors.partners.contains(&hex) {
                partners_changes = true;
            } else {
                return Err(forbidden("a change by an actor that is not this kiosk's".into()));
            }
        }
        if partners_changes {
            // Another kiosk of this kelurahan wrote it and we lost it (a
            // restore): that kiosk sends it again itself. Until then, store
            // nothing of this document (a forged one is never stored: the real
            // kiosk cannot send a change with that hash).
            return Ok(Authorized::Defer);
        }
        let header = |v: &RequestView| {
            let h = (v.id, v.ticket.clone(), v.kelurahan.clone(), v.kiosk.clone(), v.service.clone(), v.created_at_ms);
            (h, v.hlc, v.rating_key.clone())
        };
        // Appended: the header, the applicant and every event and rating
        // that was there are untouched (`structure::appended`).
        let before = match seen {
            Seen::Before(b) => Some(b),
            _ => None,
        };
        match seen {
            Seen::Before(b) if header(b) != header(after) || b.applicant != after.applicant => {
                return Err(forbidden("the request's header or applicant was changed".into()));
            }
            Seen::New if after.kiosk != kiosk.code => {
                return Err(forbidden("a new request filed as another kiosk".into()));
            }
            _ => {}
        }
        let old_events: HashMap<&str, &Event> =
            before.map(|b| b.events.iter().map(|e| (e.id.as_str(), e)).collect()).unwrap_or_default();
        let is_new_event = |e: &Event| match seen {
            Seen::Appended(a) => a.events.contains(&e.id),
            _ => !old_events.contains_key(e.id.as_str()),
        };
        let new_events: HashMap<&str, &Event> = after.events.iter().map(|e| (e.id.as_str(), e)).collect();
        if old_events.iter().any(|(id, e)| new_events.get(id) != Some(e)) || after.events.len() != new_events.len() {
            return Err(forbidden("an event was changed, removed or duplicated".into()));
        }
        let invalid = |e: StructureError| Refusal::InvalidStructure(format!("{doc_id}: {e}"));
        // Events are named by their place in the list, never by what a
        // kiosk wrote in them (an id is free text to a forger).
        for (place, e) in after.events.iter().enumerate().filter(|(_, e)| is_new_event(e)) {
            let place = place + 1;
            structure::check_event(e)
                .map_err(|err| Refusal::InvalidStructure(format!("{doc_id}: event {place}: {err}")))?;
            // A kiosk names an agency only when handing off; taking a
            // request for an agency is that agency's, written centrally.
            let kiosk_event = actors.own.contains(&e.node)
                && e.kind != EventKind::Resolve
                && e.seal.is_none()
                && (e.agency.is_none() || e.to == Status::HandedOff);
            if kiosk_event {
                self.check_kiosk_event(doc_id, place, e, matches!(seen, Seen::New), after)?;
            } else if !seal.verify(doc_id, e) {
                return Err(forbidden(format!("event {place} is neither this kiosk's nor sealed by the server")));
            }
        }
        let creates = after.events.iter().filter(|e| e.kind == EventKind::Create).count();
        if creates != 1 {
            return Err(Refusal::Workflow("forbidden_transition", format!("{doc_id}: {creates} create events")));
        }
        let old_ratings: HashMap<&str, &Rating> =
            before.map(|b| b.ratings.iter().map(|r| (r.id.as_str(), r)).collect()).unwrap_or_default();
        let is_new_rating = |r: &Rating| match seen {
            Seen::Appended(a) => a.ratings.contains(&r.id),
            _ => !old_ratings.contains_key(r.id.as_str()),
        };
        let new_ratings: HashMap<&str, &Rating> = after.ratings.iter().map(|r| (r.id.as_str(), r)).collect();
        if old_ratings.iter().any(|(id, r)| new_ratings.get(id) != Some(r)) || after.ratings.len() != new_ratings.len()
        {
            return Err(forbidden("a rating was changed, removed or duplicated".into()));
        }
        // The merged events' fold, made when the request was read.
        let finished = matches!(derived.status, Status::Completed | Status::Rejected) || derived.has_conflict();
        for (place, r) in after.ratings.iter().enumerate().filter(|(_, r)| is_new_rating(r)) {
            if !actors.own.contains(&r.node) {
                return Err(forbidden(format!("rating {} is not this kiosk's", place + 1)));
            }
            structure::check_rating(r).map_err(invalid)?;
            // The kiosk's rule: a rating follows a completed or rejected
            // request (issue 14). The kiosk rated what it held, so the
            // merged events include the finish it saw.
            if !finished {
                return Err(Refusal::Workflow(
                    "not_finished",
                    format!("{doc_id}: rating {} before the finish", place + 1),
                ));
            }
        }
        Ok(Authorized::Yes)
    }

    /// What a kiosk may add to a complaint (issue 16): it files one, as
    /// itself, in its own kelurahan, with the `file` step only; after
    /// that every step is central, so a later push may only bring back
    /// steps this server sealed (a kiosk carrying them after a restore).
    /// The filed fields never change. See SECURITY.md.
    fn authorize_complaint(
        &self,
        doc_id: &str,
        doc: &mut AutoCommit,
        heads_before: &[automerge::ChangeHash],
        before: Option<&ComplaintView>,
        after: &ComplaintView,
    ) -> Result<Authorized, Refusal> {
        let Policy { seal, kiosk, actors, .. } = *self;
        let forbidden = |what: String| Refusal::ForbiddenChange(format!("{doc_id}: {what}"));
        let (mut own_changes, mut partners_changes) = (false, false);
        for change in doc.get_changes_meta(heads_before) {
            let (actor, hex) = (change.actor.to_bytes(), change.actor.to_hex_string());
            if actors.own.contains(&hex) {
                own_changes = true;
            } else if seal.is_server_actor(actor) {
                continue;
            } else if actors.partners.contains(&hex) {
                partners_changes = true;
            } else {
                return Err(forbidden("a change by an actor that is not this kiosk's".into()));
            }
        }
        let header = |v: &ComplaintView| {
            (v.id, v.ticket.clone(), v.kelurahan.clone(), v.kiosk.clone(), v.created_at_ms, v.hlc, v.about.clone())
        };
        match before {
            Some(_) if own_changes => {
                return Err(forbidden("a kiosk writes nothing to a complaint after filing it".into()));
            }
            Some(b) if header(b) != header(after) || b.complainant != after.complainant || b.text != after.text => {
                return Err(forbidden("the complaint's filed fields were changed".into()));
            }
            None if after.kiosk != kiosk.code => {
                return Err(forbidden("a new complaint filed as another kiosk".into()));
            }
            _ => {}
        }
        if partners_changes {
            // Filed at another kiosk of the office and lost by a restored
            // server: that kiosk sends it again itself (as for requests).
            return Ok(Authorized::Defer);
        }
        let old: HashMap<&str, &complaint::Step> =
            before.map(|b| b.steps.iter().map(|s| (s.id.as_str(), s)).collect()).unwrap_or_default();
        let new: HashMap<&str, &complaint::Step> = after.steps.iter().map(|s| (s.id.as_str(), s)).collect();
        if old.iter().any(|(id, s)| new.get(id) != Some(s)) || after.steps.len() != new.len() {
            return Err(forbidden("a step was changed, removed or duplicated".into()));
        }
        // Steps are named by their place in the list, never by their
        // (kiosk-written) id or contents.
        for (place, s) in after.steps.iter().enumerate().filter(|(_, s)| !old.contains_key(s.id.as_str())) {
            let place = place + 1;
            structure::check_complaint_step(s)
                .map_err(|e| Refusal::InvalidStructure(format!("{doc_id}: step {place}: {e}")))?;
            if s.kind != StepKind::File {
                if !seal.verify_step(doc_id, s) {
                    return Err(forbidden(format!(
                        "step {place} ({}) is not sealed by the server: a kiosk only files complaints",
                        s.kind.as_str()
                    )));
                }
                continue;
            }
            let plain = s.class.is_none() && s.unit.is_none() && s.days.is_none() && s.lapor.is_none();
            if before.is_some()
                || !actors.own.contains(&s.node)
                || s.by != "citizen"
                || !s.parents.is_empty()
                || s.seal.is_some()
                || !plain
            {
                return Err(forbidden(format!("step {place} is not a file step this kiosk may write")));
            }
        }
        let files = after.steps.iter().filter(|s| s.kind == StepKind::File).count();
        if files != 1 {
            return Err(Refusal::Workflow("forbidden_step", format!("{doc_id}: {files} file steps")));
        }
        Ok(Authorized::Yes)
    }

    /// A new event by this kiosk: allowed by the workflow from what it saw,
    /// by someone on the roster, handed to an agency that takes the service.
    fn check_kiosk_event(
        &self,
        doc_id: &str,
        place: usize,
        e: &Event,
        new_doc: bool,
        after: &RequestView,
    ) -> Result<(), Refusal> {
        let refuse =
            |code: &'static str, what: String| Refusal::Workflow(code, format!("{doc_id}: event {place}: {what}"));
        if e.kind == EventKind::Create {
            if !new_doc || !e.parents.is_empty() || e.to != Status::Submitted || e.from.is_some() {
                return Err(refuse("forbidden_transition", "a create event on a request that exists".into()));
            }
            return match e.by.as_str() {
                "citizen" => Ok(()),
                _ => self.check_staff(e, &refuse),
            };
        }
        // What the writer saw: the events it names and all they descend from.
        let by_id: HashMap<&str, &Event> = after.events.iter().map(|e| (e.id.as_str(), e)).collect();
        let mut seen: HashMap<&str, &Event> = HashMap::new();
        let mut stack: Vec<&str> = e.parents.iter().map(String::as_str).collect();
        while let Some(id) = stack.pop() {
            if seen.contains_key(id) {
                continue;
            }
            let Some(parent) = by_id.get(id) else {
                return Err(Refusal::InvalidStructure(format!(
                    "{doc_id}: event {place} names a parent the document does not hold"
                )));
            };
            if parent.id == e.id {
                return Err(Refusal::InvalidStructure(format!("{doc_id}: event {place} is its own ancestor")));
            }
            seen.insert(id, parent);
            stack.extend(parent.parents.iter().map(String::as_str));
        }
        let seen: Vec<Event> = seen.into_values().cloned().collect();
        let derived = workflow::fold(&seen).map_err(|err| refuse("forbidden_transition", err.to_string()))?;
        let mut parents = e.parents.clone();
        parents.sort_unstable();
        let mut frontier = derived.frontier.clone();
        frontier.sort_unstable();
        if parents != frontier || e.from != Some(derived.status) {
            return Err(refuse("forbidden_transition", "does not name what it saw".into()));
        }
        workflow::check_transition(&derived, workflow::Actor::Kelurahan, &workflow::Proposal::of(e))
            .map_err(|t| refuse(t.code(), t.to_string()))?;
        if e.to == Status::HandedOff {
            let agency = e.agency.as_deref().unwrap_or_default();
            let takes_it = self.refs.catalog()?.is_some_and(|c| {
                c.agency(agency).is_some()
                    && c.service(after.service.as_str()).is_some_and(|s| s.handoff.iter().any(|a| a.as_str() == agency))
            });
            if !takes_it {
                return Err(refuse("unknown_agency", "handed to an agency that does not take this service".into()));
            }
        }
        self.check_staff(e, &refuse)
    }

    /// `by` is a member of the kelurahan's roster (past members too: an
    /// event written before a revocation syncs later). Before the server
    /// holds a roster for the kelurahan (a kiosk that started with its own
    /// roster file), a well-formed NIP.
    fn check_staff(&self, e: &Event, refuse: &dyn Fn(&'static str, String) -> Refusal) -> Result<(), Refusal> {
        let Ok(staff) = e.by.parse::<StaffId>() else {
            return Err(refuse("unknown_staff", "not by a staff member or the citizen".into()));
        };
        match self.refs.roster()? {
            Some(roster) if !roster.staff.iter().any(|m| m.id == staff) => {
                Err(refuse("unknown_staff", "by someone not on the kelurahan's roster".into()))
            }
            _ => Ok(()),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Authorized {
    Yes,
    /// Not now: it carries another kiosk's changes that we do not hold.
    Defer,
}

/// Candidate rows one pull looks at, at most. Documents the kiosk already
/// holds are skipped cheaply (no load), so a pull may pass over many of
/// them to move the kiosk's cursor in one exchange; this bounds that scan.
const PULL_SCAN_MAX: usize = 20_000;
/// Documents a pull reads from the store at once (one read each window).
const LOAD_WINDOW: usize = 64;

/// The documents to send a kiosk after `after`, noting each in `sent`;
/// returns them, the next cursor and whether more is waiting. With
/// `summaries` (protocol 3), a request sent whole gets the summary kept
/// of it at the same heads, when there is one.
fn plan_pull(
    engine: &dyn DocEngine,
    kiosk: &KioskAuth,
    after: u64,
    sent: &mut Vec<(String, i64, Vec<u8>)>,
    unreadable: &mut Vec<String>,
    mut summaries: Option<&mut Vec<Summary>>,
) -> Result<(Vec<PullDoc>, u64, bool), Refusal> {
    let candidates = engine.pull_candidates(&kiosk.id, &kiosk.kelurahan, after, PULL_SCAN_MAX)?;
    let more_docs = candidates.len() > PULL_SCAN_MAX;
    let mut out = Vec::new();
    let mut next = after;
    let mut bytes = 0usize;
    let mut cut_short = false;
    let mut candidates: Vec<Candidate> = candidates.into_iter().take(PULL_SCAN_MAX).collect();
    // The kiosk holds exactly what we hold (typically: it just pushed
    // it): skipped without loading the document.
    let held = |c: &Candidate| c.heads.is_some() && c.heads == c.kiosk_heads;
    // Documents are read a window at a time, each window in one read.
    let mut loaded: HashMap<String, Option<StoredDoc>> = HashMap::new();
    for at in 0..candidates.len() {
        if bytes >= PULL_BYTES_MAX || out.len() >= BATCH_DOCS_MAX {
            cut_short = true;
            break;
        }
        let seq_cursor = u64::try_from(candidates[at].seq).unwrap_or(next);
        if held(&candidates[at]) {
            next = seq_cursor;
            continue;
        }
        if !loaded.contains_key(&candidates[at].doc_id) {
            let window: Vec<&str> =
                candidates[at..].iter().filter(|c| !held(c)).take(LOAD_WINDOW).map(|c| c.doc_id.as_str()).collect();
            loaded = window.iter().map(|id| (*id).to_owned()).zip(engine.load_many(&window)?).collect();
        }
        let seq = candidates[at].seq;
        let doc_id = std::mem::take(&mut candidates[at].doc_id);
        let kiosk_heads = candidates[at].kiosk_heads.take();
        // A document this server cannot read back is skipped (logged with
        // its id, counted by the caller): one bad document must never stop
        // a kiosk's whole pull, nor any other kiosk's.
        let skip = |why: &dyn std::fmt::Display| {
            tracing::error!(doc = %doc_id, error = %why, "a stored document does not read back: not sent");
        };
        let Some(stored) = loaded.remove(&doc_id).flatten() else {
            skip(&"listed but not stored");
            unreadable.push(doc_id);
            next = seq_cursor;
            continue;
        };
        let known = match kiosk_heads.as_deref().filter(|b| !b.is_empty()).map(blob_heads).transpose() {
            Ok(known) => known,
            Err(e) => {
                skip(&e);
                unreadable.push(doc_id);
                next = seq_cursor;
                continue;
            }
        };
        let (changes, server_heads) = match known {
            // The kiosk has none of it: the stored bytes as they are, with
            // no Automerge work (rows from before `docs.heads` excepted).
            None if !stored.heads.is_empty() => match stored.automerge_bytes(&doc_id) {
                Ok(raw) => {
                    if stored.doc_type == DocType::Request
                        && let Some(out) = summaries.as_deref_mut()
                        && let Some(summary) = engine.summary(&doc_id, &stored.heads)
                    {
                        out.push(summary);
                    }
                    (raw, blob_heads(&stored.heads)?)
                }
                Err(e) => {
                    skip(&e);
                    unreadable.push(doc_id);
                    next = seq_cursor;
                    continue;
                }
            },
            known => {
                let mut doc = match engine.open(&doc_id, &stored) {
                    Ok(doc) => doc,
                    Err(e) => {
                        skip(&e);
                        unreadable.push(doc_id);
                        next = seq_cursor;
                        continue;
                    }
                };
                let server_heads = to_hashes(&doc.get_heads());
                let changes = match known.map(|h| from_hashes(&h)) {
                    Some(h) if doc.get_missing_deps(&h).is_empty() => {
                        if heads_blob(&to_hashes(&h)) == heads_blob(&server_heads) {
                            next = seq_cursor;
                            continue; // the kiosk has it all
                        }
                        doc.save_after(&h)
                    }
                    _ => doc.save(),
                };
                (changes, server_heads)
            }
        };
        let server_blob = heads_blob(&server_heads);
        bytes += changes.len();
        let doc = doc_id
            .parse::<DocId>()
            .map_err(|_| StoreError::Corrupt { what: doc_id.clone(), reason: "bad id".into() })?;
        let mut sorted = server_heads;
        sorted.sort_unstable();
        out.push(PullDoc { doc: doc.to_bytes(), doc_type: stored.doc_type, changes, heads: sorted });
        sent.push((doc_id, seq, server_blob));
        next = seq_cursor;
    }
    Ok((out, next, more_docs || cut_short))
}
