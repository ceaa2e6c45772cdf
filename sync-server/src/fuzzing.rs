//! Entry points for the fuzz targets in `sync-server/fuzz/` and for the
//! ordinary test that replays their corpus (`tests/fuzz_corpus.rs`):
//! whatever the bytes, these must return, never panic, and never accept
//! what the rules refuse.

use std::sync::LazyLock;

use automerge::AutoCommit;
use loket_shared::sync::{DocType, PROTOCOL_VERSION, PushDoc, SyncRequest, SyncResponse};

use crate::auth::KioskAuth;
use crate::seal::SealKey;
use crate::store::StoreError;
use crate::store::engine::{Candidate, Commit, CommitOutcome, DocEngine, KioskActors, KioskMarks, StoredDoc};

/// A store that holds nothing and accepts every commit: the merge and the
/// checks run for real, without disk.
struct Nothing;

impl DocEngine for Nothing {
    fn load(&self, _: &str) -> Result<Option<StoredDoc>, StoreError> {
        Ok(None)
    }
    fn pull_candidates(
        &self,
        _: &str,
        _: &loket_shared::KelurahanCode,
        _: u64,
        _: usize,
    ) -> Result<Vec<Candidate>, StoreError> {
        Ok(Vec::new())
    }
    fn kiosk_marks(&self, _: &str) -> Result<KioskMarks, StoreError> {
        Ok(KioskMarks::default())
    }
    fn kiosk_actors(&self, _: &loket_shared::KelurahanCode, _: &str) -> Result<KioskActors, StoreError> {
        Ok(KioskActors { own: vec![KIOSK.actor.clone()], partners: Vec::new() })
    }
    fn reference(&self, _: DocType, _: Option<&str>) -> Result<Option<StoredDoc>, StoreError> {
        Ok(None)
    }
    fn commit(&self, _: &Commit) -> Result<CommitOutcome, StoreError> {
        Ok(CommitOutcome::Committed)
    }
}

static KIOSK: LazyLock<KioskAuth> = LazyLock::new(|| KioskAuth {
    id: "fuzz".into(),
    code: "K001".parse().expect("code"),
    kelurahan: "12.71.01.1001".parse().expect("kelurahan"),
    actor: "07".repeat(16),
});

/// The sync message decoders (both directions).
pub fn sync_decode(data: &[u8]) {
    if let Ok(req) = SyncRequest::decode(data) {
        // What decodes re-encodes to something that decodes the same.
        assert_eq!(SyncRequest::decode(&req.encode()).ok().as_ref(), Some(&req));
    }
    let _ = SyncResponse::decode(data);
}

/// Automerge bytes pushed by a kiosk as a new request document, through the
/// whole server merge (load, limits, schema, change-level authorization).
pub fn ingest(data: &[u8]) {
    let seal = SealKey::from_bytes([3; 32]);
    let push = PushDoc {
        doc: [1; 16],
        doc_type: DocType::Request,
        base: vec![],
        changes: data.to_vec(),
        heads: vec![],
        fallback: None,
    };
    let req = SyncRequest {
        version: PROTOCOL_VERSION,
        client: "fuzz".into(),
        push: vec![push],
        pull_after: 0,
        acked: 0,
        through: 0,
        pending: 0,
    };
    let _ = crate::sync::exchange(&Nothing, &seal, &KIOSK, &req, 0);
    // And as a fallback message, which goes through Automerge's sync
    // protocol once the exchange has bounded it.
    let mut req = req;
    req.push[0].changes = Vec::new();
    req.push[0].fallback = Some(data.to_vec());
    let _ = crate::sync::exchange(&Nothing, &seal, &KIOSK, &req, 0);
}

/// Foreign Automerge bytes through the bound (`shared::chunks`) and, where
/// it lets them pass, through Automerge itself, as a document, as changes
/// and as a sync message. Run under a memory limit
/// (`-rss_limit_mb=256 -malloc_limit_mb=128`): whatever the walker lets
/// through must not make Automerge allocate beyond it.
pub fn chunks(data: &[u8]) {
    use loket_shared::chunks::{Budget, DOC_LIMITS, inspect, inspect_sync_message};
    if inspect(data, &mut Budget::new(DOC_LIMITS)).is_ok() {
        let _ = AutoCommit::load(data);
        let _ = AutoCommit::new().load_incremental(data);
    }
    if inspect_sync_message(data, &mut Budget::new(DOC_LIMITS)).is_ok()
        && let Ok(msg) = automerge::sync::Message::decode(data)
    {
        use automerge::sync::SyncDoc;
        let mut doc = AutoCommit::new();
        let _ = doc.sync().receive_sync_message(&mut automerge::sync::State::new(), msg);
    }
}
