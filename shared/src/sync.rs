//! The sync protocol's wire types (DESIGN.md §4). Only these types are
//! serialised for the network; every message carries the protocol version.
//!
//! A sync is one request/response exchange, repeated while either side has
//! more to send:
//!
//! - **push**: the kiosk sends, for each document written since the cursor
//!   the server last acknowledged, the Automerge changes since the heads it
//!   knows the server has (`base`), and its own heads after them;
//! - **pull**: the kiosk sends the server cursor it holds; the server
//!   answers with changes to the documents this kiosk may see, made after
//!   that cursor, that the kiosk does not have yet.
//!
//! Applying is idempotent (changes are content-addressed), so any message
//! may be lost, repeated or reordered; cursors only move after a durable
//! write. When a side cannot apply a document's changes because
//! dependencies are missing (`base` was wrong: a restored backup, a lost
//! write), the document falls back to Automerge's own sync protocol for
//! that one document, carried in the same exchange (`fallback`).
//!
//! Encoding: postcard, then zstd; a frame starts with a magic and the
//! protocol version so a peer of another version is refused clearly
//! before anything is decoded. Byte fields go through `serde_bytes`:
//! postcard writes a `Vec<u8>` the same either way (its length, then its
//! bytes), but as a sequence it passed them one call a byte, on both
//! sides (issue 17).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use std::ops::RangeInclusive;

use crate::summary::Summary;

/// 2: `SyncRequest::{acked, through}` and `SyncResponse::rewind_acked`
/// (recovery after the server was restored from a backup).
/// 3: `SyncResponse::summaries` (issue 17). A request is the same as in
/// 2; a server answers a kiosk of 2 in 2, with no summaries.
pub const PROTOCOL_VERSION: u16 = 3;
/// The oldest protocol a server still answers: a kiosk of the release
/// before keeps syncing until it is updated.
pub const PROTOCOL_VERSION_OLDEST: u16 = 2;
const MAGIC: &[u8; 4] = b"LKT1";

/// Most documents in one push or one pull.
pub const BATCH_DOCS_MAX: usize = 500;
/// Largest encoded (compressed) message accepted.
pub const MESSAGE_BYTES_MAX: usize = 8 * 1024 * 1024;
/// Largest decoded message accepted (guards against compression bombs).
pub const DECODED_BYTES_MAX: usize = 32 * 1024 * 1024;
/// Most heads one document may report (concurrent branches).
pub const HEADS_MAX: usize = 64;

/// A change hash (Automerge `ChangeHash`).
pub type Hash = [u8; 32];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocType {
    Request,
    Catalog,
    Roster,
    /// A citizen's complaint (pengaduan): filed at a kiosk, handled
    /// centrally (`crate::complaint`).
    Complaint,
}

impl DocType {
    pub fn as_str(self) -> &'static str {
        match self {
            DocType::Request => "request",
            DocType::Catalog => "catalog",
            DocType::Roster => "roster",
            DocType::Complaint => "complaint",
        }
    }

    pub fn parse(s: &str) -> Option<DocType> {
        match s {
            "request" => Some(DocType::Request),
            "catalog" => Some(DocType::Catalog),
            "roster" => Some(DocType::Roster),
            "complaint" => Some(DocType::Complaint),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub version: u16,
    /// The kiosk software version, for kiosk health.
    pub client: String,
    pub push: Vec<PushDoc>,
    /// The server cursor up to which the kiosk has applied everything.
    pub pull_after: u64,
    /// The kiosk's own change sequence up to which the server has
    /// acknowledged everything, as the kiosk believes.
    pub acked: u64,
    /// Where `acked` moves once every document of this push is applied.
    pub through: u64,
    /// Changes the kiosk still holds unsent after this push.
    pub pending: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushDoc {
    /// Document id (UUID bytes).
    pub doc: [u8; 16],
    pub doc_type: DocType,
    /// Heads the kiosk believes the server has: the base of `changes`.
    pub base: Vec<Hash>,
    /// Automerge changes after `base` (`save_after(base)`), may be empty
    /// when only `fallback` is sent.
    #[serde(with = "serde_bytes")]
    pub changes: Vec<u8>,
    /// The kiosk's heads once `changes` are applied.
    pub heads: Vec<Hash>,
    /// An Automerge sync message for this document, when it is in fallback.
    #[serde(with = "serde_bytes")]
    pub fallback: Option<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub version: u16,
    /// One per pushed document, in the same order.
    pub acks: Vec<PushAck>,
    pub pull: Vec<PullDoc>,
    /// The cursor to send as `pull_after` next time.
    pub pull_next: u64,
    /// More to pull: sync again.
    pub more: bool,
    /// The server holds less than the kiosk's `acked` says (it was restored
    /// from a backup): the kiosk sets `acked` to this, forgets which heads
    /// the server had, and pushes again from there.
    pub rewind_acked: Option<u64>,
    /// Protocol 3: what the server read of some pulled requests the kiosk
    /// does not hold yet, each at exactly the pulled heads
    /// (`crate::summary`). Last, so that a kiosk of protocol 2 reads the
    /// rest of a response of 2 as it always did (postcard stops at the
    /// fields it knows); always empty in such a response.
    pub summaries: Vec<Summary>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushAck {
    pub doc: [u8; 16],
    pub outcome: PushOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PushOutcome {
    /// Stored durably; the server now has at least `heads`.
    Applied { heads: Vec<Hash> },
    /// The server lacked dependencies of the changes: nothing of this
    /// document was stored. `fallback` is the server's Automerge sync
    /// message to continue with.
    Fallback {
        #[serde(with = "serde_bytes")]
        fallback: Vec<u8>,
    },
    /// Not taken now, nothing stored: the document carries changes by
    /// another kiosk that the server lacks (after a restore). Push it again
    /// at the next sync; that kiosk will have sent them by then.
    Deferred,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PullDoc {
    pub doc: [u8; 16],
    pub doc_type: DocType,
    /// Changes the kiosk does not have yet, by the server's knowledge.
    #[serde(with = "serde_bytes")]
    pub changes: Vec<u8>,
    /// The server's heads for the document.
    pub heads: Vec<Hash>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("not a Loket sync message")]
    BadMagic,
    #[error("protocol version {got} is not supported (this side speaks {PROTOCOL_VERSION})")]
    Version { got: u16 },
    #[error("message larger than {0} bytes")]
    TooLarge(usize),
    #[error("message is corrupt: {0}")]
    Corrupt(String),
    #[error("message breaks a limit: {0}")]
    Limit(String),
}

/// zstd level of the wire. 1 rather than 3: half the CPU on both sides
/// for a frame a few percent larger (issue 17; `wire_over_change_bytes`
/// in the reconnect benchmark stays far under its 0.5).
const WIRE_LEVEL: i32 = 1;

fn encode<T: Serialize>(msg: &T, version: u16) -> Vec<u8> {
    let raw = postcard::to_allocvec(msg).expect("wire types always serialise");
    // A context for each message, not one kept a thread: the server codes
    // on its blocking pool's threads, dozens under load, and kept
    // contexts held most of a megabyte each (the 50-kiosk benchmark's
    // peak RSS went over its limit).
    let packed = zstd::bulk::compress(&raw, WIRE_LEVEL).expect("compressing in memory does not fail");
    let mut out = Vec::with_capacity(6 + packed.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&packed);
    out
}

/// Decodes a frame of a version in `versions`.
fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], versions: RangeInclusive<u16>) -> Result<T, WireError> {
    if bytes.len() > MESSAGE_BYTES_MAX {
        return Err(WireError::TooLarge(MESSAGE_BYTES_MAX));
    }
    if bytes.len() < 6 || &bytes[..4] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let version = u16::from_be_bytes([bytes[4], bytes[5]]);
    if !versions.contains(&version) {
        return Err(WireError::Version { got: version });
    }
    let frame = &bytes[6..];
    // The output is sized by what the frame says it holds (every frame
    // `encode` writes says), never above the bomb limit, and decoding
    // fails if the frame holds more than it said; a frame that does not
    // say gets the limit. Not the limit each time: 32 MB to allocate for
    // every small message, and pages kept resident by the allocator.
    let capacity = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(n)) if n > DECODED_BYTES_MAX as u64 => return Err(WireError::TooLarge(DECODED_BYTES_MAX)),
        Ok(Some(n)) => n as usize,
        Ok(None) => DECODED_BYTES_MAX,
        Err(_) => return Err(WireError::Corrupt("not a zstd frame".into())),
    };
    let raw = zstd::bulk::decompress(frame, capacity).map_err(|e| WireError::Corrupt(e.to_string()))?;
    postcard::from_bytes(&raw).map_err(|e| WireError::Corrupt(e.to_string()))
}

fn check_heads(heads: &[Hash], what: &str) -> Result<(), WireError> {
    if heads.len() > HEADS_MAX {
        return Err(WireError::Limit(format!("{what}: more than {HEADS_MAX} heads")));
    }
    Ok(())
}

impl SyncRequest {
    pub fn encode(&self) -> Vec<u8> {
        encode(self, self.version)
    }

    /// Decodes and checks the limits a server relies on. Any protocol
    /// from [`PROTOCOL_VERSION_OLDEST`] on: the request is the same.
    pub fn decode(bytes: &[u8]) -> Result<SyncRequest, WireError> {
        let req: SyncRequest = decode(bytes, PROTOCOL_VERSION_OLDEST..=PROTOCOL_VERSION)?;
        // The frame's version is the message's: the answer is in it.
        if req.version.to_be_bytes() != bytes[4..6] {
            return Err(WireError::Version { got: req.version });
        }
        if req.push.len() > BATCH_DOCS_MAX {
            return Err(WireError::Limit(format!("more than {BATCH_DOCS_MAX} documents in one push")));
        }
        if req.client.len() > 64 {
            return Err(WireError::Limit("client version string too long".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for p in &req.push {
            if !seen.insert(p.doc) {
                return Err(WireError::Limit("a document appears twice in one push".into()));
            }
            check_heads(&p.base, "base")?;
            check_heads(&p.heads, "heads")?;
        }
        Ok(req)
    }
}

impl SyncResponse {
    /// In the response's own version: a response of 2 (to a kiosk of 2)
    /// has no summaries.
    pub fn encode(&self) -> Vec<u8> {
        debug_assert!(self.version >= 3 || self.summaries.is_empty(), "protocol 2 has no summaries");
        encode(self, self.version)
    }

    /// Decodes what a kiosk of this release asked for: protocol
    /// [`PROTOCOL_VERSION`] only.
    pub fn decode(bytes: &[u8]) -> Result<SyncResponse, WireError> {
        let resp: SyncResponse = decode(bytes, PROTOCOL_VERSION..=PROTOCOL_VERSION)?;
        if resp.version != PROTOCOL_VERSION {
            return Err(WireError::Version { got: resp.version });
        }
        if resp.pull.len() > BATCH_DOCS_MAX {
            return Err(WireError::Limit(format!("more than {BATCH_DOCS_MAX} documents in one pull")));
        }
        if resp.summaries.len() > resp.pull.len() {
            return Err(WireError::Limit("more summaries than pulled documents".into()));
        }
        for p in &resp.pull {
            check_heads(&p.heads, "heads")?;
        }
        Ok(resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn byte_fields_are_written_as_they_were_before_serde_bytes() {
        // The same fields as plain sequences of bytes.
        #[derive(Serialize)]
        struct Plain {
            doc: [u8; 16],
            doc_type: DocType,
            changes: Vec<u8>,
            heads: Vec<Hash>,
        }
        let pulled =
            PullDoc { doc: [7; 16], doc_type: DocType::Request, changes: (0..=255).collect(), heads: vec![[1; 32]] };
        let plain = Plain {
            doc: pulled.doc,
            doc_type: pulled.doc_type,
            changes: pulled.changes.clone(),
            heads: pulled.heads.clone(),
        };
        assert_eq!(postcard::to_allocvec(&pulled).unwrap(), postcard::to_allocvec(&plain).unwrap());
        let back: PullDoc = postcard::from_bytes(&postcard::to_allocvec(&plain).unwrap()).unwrap();
        assert_eq!(back, pulled);
        let push = PushDoc {
            doc: [1; 16],
            doc_type: DocType::Request,
            base: vec![],
            changes: vec![1, 2, 3],
            heads: vec![],
            fallback: Some(vec![4; 200]),
        };
        #[derive(Serialize)]
        struct PlainPush {
            doc: [u8; 16],
            doc_type: DocType,
            base: Vec<Hash>,
            changes: Vec<u8>,
            heads: Vec<Hash>,
            fallback: Option<Vec<u8>>,
        }
        let plain = PlainPush {
            doc: push.doc,
            doc_type: push.doc_type,
            base: vec![],
            changes: push.changes.clone(),
            heads: vec![],
            fallback: push.fallback.clone(),
        };
        assert_eq!(postcard::to_allocvec(&push).unwrap(), postcard::to_allocvec(&plain).unwrap());
    }

    fn hash() -> impl Strategy<Value = Hash> {
        any::<[u8; 32]>()
    }

    fn push_doc() -> impl Strategy<Value = PushDoc> {
        (
            any::<[u8; 16]>(),
            prop_oneof![Just(DocType::Request), Just(DocType::Catalog), Just(DocType::Roster)],
            proptest::collection::vec(hash(), 0..4),
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec(hash(), 0..4),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..50)),
        )
            .prop_map(|(doc, doc_type, base, changes, heads, fallback)| PushDoc {
                doc,
                doc_type,
                base,
                changes,
                heads,
                fallback,
            })
    }

    proptest! {
        #[test]
        fn requests_round_trip(push in proptest::collection::vec(push_doc(), 0..8), pull_after in any::<u64>(), pending in any::<u64>(), acked in any::<u64>(), through in any::<u64>()) {
            let mut push = push;
            push.dedup_by_key(|p| p.doc);
            let mut seen = std::collections::HashSet::new();
            push.retain(|p| seen.insert(p.doc));
            let req = SyncRequest { version: PROTOCOL_VERSION, client: "0.1.0".into(), push, pull_after, acked, through, pending };
            prop_assert_eq!(SyncRequest::decode(&req.encode()).unwrap(), req);
        }

        #[test]
        fn responses_round_trip(docs in proptest::collection::vec((any::<[u8; 16]>(), proptest::collection::vec(any::<u8>(), 0..200), proptest::collection::vec(hash(), 0..3)), 0..8), next in any::<u64>(), more in any::<bool>(), rewind_acked in any::<Option<u64>>()) {
            let resp = SyncResponse {
                version: PROTOCOL_VERSION,
                acks: docs.iter().map(|(doc, _, heads)| PushAck { doc: *doc, outcome: PushOutcome::Applied { heads: heads.clone() } }).collect(),
                pull: docs.iter().map(|(doc, changes, heads)| PullDoc { doc: *doc, doc_type: DocType::Request, changes: changes.clone(), heads: heads.clone() }).collect(),
                pull_next: next,
                more,
                rewind_acked,
                summaries: Vec::new(),
            };
            prop_assert_eq!(SyncResponse::decode(&resp.encode()).unwrap(), resp);
        }

        /// Bytes from anywhere: nearly all stop at the magic or the version.
        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = SyncRequest::decode(&bytes);
            let _ = SyncResponse::decode(&bytes);
        }

        /// Garbage behind a header this side accepts reaches the
        /// decompressor, and is refused as corrupt.
        #[test]
        fn garbage_after_the_real_header_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let mut framed = header();
            framed.extend_from_slice(&bytes);
            for refusal in [SyncRequest::decode(&framed).err(), SyncResponse::decode(&framed).err()] {
                prop_assert!(matches!(refusal, Some(WireError::Corrupt(_))), "{:?}", refusal);
            }
        }

        /// Garbage that decompresses reaches the message decoder and the
        /// limit checks behind it.
        #[test]
        fn compressed_garbage_never_panics(raw in proptest::collection::vec(any::<u8>(), 0..512)) {
            let framed = frame(&raw);
            for refusal in [SyncRequest::decode(&framed).err(), SyncResponse::decode(&framed).err()] {
                prop_assert!(!matches!(refusal, Some(WireError::BadMagic | WireError::TooLarge(_))), "{:?}", refusal);
            }
        }

        /// A real request with bytes overwritten, so that decoding goes deep
        /// into the message before it meets them.
        #[test]
        fn damaged_requests_never_panic(
            push in proptest::collection::vec(push_doc(), 0..4),
            damage in proptest::collection::vec((any::<proptest::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let req = SyncRequest { version: PROTOCOL_VERSION, client: "0.1.0".into(), push, pull_after: 7, acked: 3, through: 5, pending: 2 };
            let mut raw = postcard::to_allocvec(&req).unwrap();
            for (at, byte) in damage {
                let at = at.index(raw.len());
                raw[at] = byte;
            }
            let _ = SyncRequest::decode(&frame(&raw));
            let _ = SyncResponse::decode(&frame(&raw));
        }
    }

    /// The magic and the version this side speaks, as `encode` writes them.
    fn header() -> Vec<u8> {
        let mut header = MAGIC.to_vec();
        header.extend_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        header
    }

    /// `raw` framed as `encode` frames a serialised message.
    fn frame(raw: &[u8]) -> Vec<u8> {
        let mut framed = header();
        framed.extend_from_slice(&zstd::bulk::compress(raw, WIRE_LEVEL).unwrap());
        framed
    }

    #[test]
    fn the_test_frame_is_the_real_one() {
        let req = SyncRequest {
            version: PROTOCOL_VERSION,
            client: "x".into(),
            push: vec![],
            pull_after: 1,
            acked: 0,
            through: 0,
            pending: 0,
        };
        assert_eq!(frame(&postcard::to_allocvec(&req).unwrap()), req.encode());
        assert_eq!(SyncRequest::decode(&frame(&postcard::to_allocvec(&req).unwrap())), Ok(req));
    }

    /// The decoder sizes its output by what the frame says it holds: a
    /// frame that says more than the limit is refused before anything is
    /// inflated, one that holds more than it says is refused as corrupt,
    /// and one that does not say (a streaming encoder) still decodes,
    /// within the limit.
    #[test]
    fn frames_are_inflated_only_as_far_as_they_say_and_the_limit_allows() {
        let mut bomb = header();
        bomb.extend_from_slice(&zstd::bulk::compress(&vec![0u8; DECODED_BYTES_MAX + 1], WIRE_LEVEL).unwrap());
        assert!(bomb.len() < 64 * 1024, "a bomb is small on the wire: {}", bomb.len());
        assert_eq!(SyncRequest::decode(&bomb), Err(WireError::TooLarge(DECODED_BYTES_MAX)));

        let req = SyncRequest {
            version: PROTOCOL_VERSION,
            client: "x".into(),
            push: vec![],
            pull_after: 7,
            acked: 0,
            through: 0,
            pending: 0,
        };
        let raw = postcard::to_allocvec(&req).unwrap();
        // A first frame that says it holds the message, then another:
        // more than the first said.
        let mut lying = frame(&raw);
        lying.extend_from_slice(&zstd::bulk::compress(&vec![0u8; 4096], WIRE_LEVEL).unwrap());
        assert!(matches!(SyncRequest::decode(&lying), Err(WireError::Corrupt(_))));

        let mut streamed = header();
        streamed.extend_from_slice(&zstd::stream::encode_all(&raw[..], WIRE_LEVEL).unwrap());
        assert!(matches!(zstd::zstd_safe::get_frame_content_size(&streamed[6..]), Ok(None)), "the stream says no size");
        assert_eq!(SyncRequest::decode(&streamed), Ok(req));
    }

    /// A kiosk of the release before (protocol 2) asks in 2 and reads the
    /// answer with its own types: the response of 2 is the one it knew,
    /// and the summaries' empty list after it is never looked at.
    #[test]
    fn a_kiosk_of_protocol_2_is_still_answered_in_2() {
        #[derive(Debug, PartialEq, Deserialize)]
        struct ResponseOf2 {
            version: u16,
            acks: Vec<PushAck>,
            pull: Vec<PullDoc>,
            pull_next: u64,
            more: bool,
            rewind_acked: Option<u64>,
        }
        let old = SyncRequest {
            version: PROTOCOL_VERSION_OLDEST,
            client: "0.1.0".into(),
            push: vec![],
            pull_after: 4,
            acked: 0,
            through: 0,
            pending: 0,
        };
        let bytes = old.encode();
        assert_eq!(bytes[4..6], 2u16.to_be_bytes(), "a request of 2 as a kiosk of 2 frames it");
        assert_eq!(SyncRequest::decode(&bytes).unwrap().version, 2, "the server takes it");
        let pulled = PullDoc { doc: [5; 16], doc_type: DocType::Roster, changes: vec![1, 2, 3], heads: vec![[9; 32]] };
        let answer = SyncResponse {
            version: old.version,
            acks: vec![PushAck { doc: [1; 16], outcome: PushOutcome::Deferred }],
            pull: vec![pulled.clone()],
            pull_next: 9,
            more: true,
            rewind_acked: Some(3),
            summaries: Vec::new(),
        };
        let framed = answer.encode();
        assert_eq!(framed[4..6], 2u16.to_be_bytes());
        // What a kiosk of 2 does with the frame: its header, zstd, postcard.
        let raw = zstd::bulk::decompress(&framed[6..], DECODED_BYTES_MAX).unwrap();
        let read: ResponseOf2 = postcard::from_bytes(&raw).unwrap();
        assert_eq!(
            read,
            ResponseOf2 {
                version: 2,
                acks: answer.acks.clone(),
                pull: vec![pulled],
                pull_next: 9,
                more: true,
                rewind_acked: Some(3)
            }
        );
        // This release's kiosk asked in 3 and takes only 3.
        assert_eq!(SyncResponse::decode(&framed), Err(WireError::Version { got: 2 }));
        let mut older = old.clone();
        older.version = 1;
        assert_eq!(SyncRequest::decode(&older.encode()), Err(WireError::Version { got: 1 }));
    }

    #[test]
    fn more_summaries_than_pulled_documents_are_refused() {
        let resp = SyncResponse {
            version: PROTOCOL_VERSION,
            acks: vec![],
            pull: vec![],
            pull_next: 0,
            more: false,
            rewind_acked: None,
            summaries: vec![summary_fixture()],
        };
        assert!(matches!(SyncResponse::decode(&resp.encode()), Err(WireError::Limit(_))));
    }

    fn summary_fixture() -> crate::summary::Summary {
        crate::summary::Summary {
            doc: [5; 16],
            ticket: "K07-1128-023".parse().unwrap(),
            kiosk: "K07".parse().unwrap(),
            service: "SKD".parse().unwrap(),
            status: crate::Status::Submitted,
            conflict: false,
            agency: None,
            applicant_name: "Siti Aminah".parse().unwrap(),
            nik: "1271014101900003".parse().unwrap(),
            rated: false,
            created_at_ms: 1,
            updated_at_ms: 1,
            create_node: None,
            latest_hlc: None,
        }
    }

    #[test]
    fn other_versions_are_refused_before_decoding() {
        let req = SyncRequest {
            version: PROTOCOL_VERSION,
            client: "x".into(),
            push: vec![],
            pull_after: 0,
            acked: 0,
            through: 0,
            pending: 0,
        };
        let mut bytes = req.encode();
        bytes[5] = 9;
        assert_eq!(SyncRequest::decode(&bytes), Err(WireError::Version { got: 9 }));
        assert_eq!(SyncRequest::decode(b"GET / HTTP/1.1"), Err(WireError::BadMagic));
        let truncated = &req.encode()[..8];
        assert!(matches!(SyncRequest::decode(truncated), Err(WireError::Corrupt(_))));
    }
}
