//! Automerge bytes at rest: each stored document (or chunk of changes) is
//! one zstd frame compressed with a dictionary trained on Loket's own
//! documents.
//!
//! Automerge compresses only columns over 256 bytes, so a request is
//! mostly the same keys, strings and column headers as every other
//! request, and zstd alone finds little to share inside one small
//! document. With the dictionary it shares them with every other: a
//! worked and rated request saved whole (uncompressed, so that DEFLATE
//! does not hide what it shares) packs from ~1,750 to ~320 bytes, and
//! changes as a kiosk sent them from ~2,030 to ~490.
//!
//! Stored bytes say what they are by their first four bytes:
//! - a zstd frame (`28 b5 2f fd`) names its dictionary in its header, and
//!   is unpacked with that dictionary;
//! - anything else is kept as it is: Automerge bytes stored before
//!   packing (they start with Automerge's own magic `85 6f 4a 83`) and
//!   chunks too small to gain.
//!
//! So a store written before packing reads unchanged, and compaction
//! packs its documents as it meets them. A dictionary, once shipped, is
//! never changed or removed: a later one is added under a new id, and
//! [`DICTIONARIES`] keeps every id ever written.

use std::sync::LazyLock;

use zstd::dict::{DecoderDictionary, EncoderDictionary};

/// The dictionaries this build reads, by their zstd dictionary id; the
/// last one is the one it writes with.
///
/// `request-v1.dict`: 32 KiB, trained with `cargo run --release -p
/// loket-sync-server --example train_dictionary` on 4,000 documents of a
/// `loket-bench-reconnect` store (requests with their events and ratings,
/// rosters, the catalog), in both forms the store packs: whole documents
/// as compaction saves them and changes as kiosks send them.
const DICTIONARIES: &[&[u8]] = &[include_bytes!("at_rest/request-v1.dict")];

/// The zstd level: measured on request documents, levels above 3 save
/// under 2 % for twice the time.
const LEVEL: i32 = 3;

/// The largest unpacked size accepted: bytes a frame claims beyond this
/// are corruption (or a bomb), not a document. The sync protocol caps a
/// decoded message at 32 MiB, so no stored document is larger.
pub const UNPACKED_BYTES_MAX: usize = 64 * 1024 * 1024;

/// Below this, packing does not pay for the frame's header.
const PACK_FROM: usize = 64;

/// The first four bytes of every packed frame (zstd's magic number).
pub const PACKED_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

struct Dictionary {
    id: u32,
    encoder: EncoderDictionary<'static>,
    decoder: DecoderDictionary<'static>,
}

static LOADED: LazyLock<Vec<Dictionary>> = LazyLock::new(|| {
    DICTIONARIES
        .iter()
        .map(|bytes| Dictionary {
            id: dictionary_id(bytes).expect("a shipped dictionary has zstd's header"),
            encoder: EncoderDictionary::copy(bytes, LEVEL),
            decoder: DecoderDictionary::copy(bytes),
        })
        .collect()
});

/// A zstd dictionary's id, from its header (RFC 8878, section 5: the
/// magic `37 a4 30 ec`, then the id, little-endian).
fn dictionary_id(dict: &[u8]) -> Option<u32> {
    match dict {
        [0x37, 0xa4, 0x30, 0xec, a, b, c, d, ..] => Some(u32::from_le_bytes([*a, *b, *c, *d])),
        _ => None,
    }
}

// One compressor and one decompressor a thread, made once: making a
// zstd context costs more than packing a request.
thread_local! {
    static COMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Compressor<'static>>> =
        const { std::cell::RefCell::new(None) };
    static DECOMPRESSOR: std::cell::RefCell<Option<(u32, zstd::bulk::Decompressor<'static>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Why stored bytes could not be unpacked: the store is corrupt.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackError {
    #[error("packed with dictionary {0}, which this build does not have")]
    UnknownDictionary(u32),
    #[error("packed frame does not state a size of at most {UNPACKED_BYTES_MAX} bytes")]
    TooLarge,
    #[error("packed frame does not decompress: {0}")]
    Corrupt(String),
}

/// `bytes` as stored: a zstd frame with the current dictionary, or the
/// bytes themselves if that is not smaller.
pub fn pack(bytes: &[u8]) -> Vec<u8> {
    if bytes.len() < PACK_FROM {
        return bytes.to_vec();
    }
    let packed = COMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let compressor = match cell.as_mut() {
            Some(c) => c,
            None => {
                let dict = LOADED.last().expect("at least one dictionary");
                cell.insert(
                    zstd::bulk::Compressor::with_prepared_dictionary(&dict.encoder)
                        .expect("a compressor with a prepared dictionary"),
                )
            }
        };
        compressor.compress(bytes).expect("compressing in memory does not fail")
    });
    if packed.len() < bytes.len() { packed } else { bytes.to_vec() }
}

/// Whether `stored` is a packed frame (rather than bytes kept as they are).
pub fn is_packed(stored: &[u8]) -> bool {
    stored.starts_with(&PACKED_MAGIC)
}

/// The length `unpack` will return, as a packed frame states it (its
/// length if it is not packed, 0 if the frame does not say).
pub fn unpacked_len(stored: &[u8]) -> usize {
    if !is_packed(stored) {
        return stored.len();
    }
    match zstd::zstd_safe::get_frame_content_size(stored) {
        Ok(Some(size)) => usize::try_from(size).unwrap_or(0).min(UNPACKED_BYTES_MAX),
        _ => 0,
    }
}

/// The bytes `pack` was given, from what it returned.
pub fn unpack(stored: Vec<u8>) -> Result<Vec<u8>, UnpackError> {
    if !is_packed(&stored) {
        return Ok(stored);
    }
    let id = zstd::zstd_safe::get_dict_id_from_frame(&stored).map_or(0, |id| id.get());
    let dict = LOADED.iter().find(|d| d.id == id).ok_or(UnpackError::UnknownDictionary(id))?;
    let size = match zstd::zstd_safe::get_frame_content_size(&stored) {
        Ok(Some(size)) => usize::try_from(size).ok().filter(|s| *s <= UNPACKED_BYTES_MAX),
        _ => None,
    }
    .ok_or(UnpackError::TooLarge)?;
    let out = DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match cell.as_mut() {
            Some((for_id, d)) if *for_id == id => d,
            _ => {
                let d = zstd::bulk::Decompressor::with_prepared_dictionary(&dict.decoder)
                    .map_err(|e| UnpackError::Corrupt(e.to_string()))?;
                &mut cell.insert((id, d)).1
            }
        };
        decompressor.decompress(&stored, size).map_err(|e| UnpackError::Corrupt(e.to_string()))
    })?;
    if out.len() != size {
        return Err(UnpackError::Corrupt(format!("{} bytes where the frame said {size}", out.len())));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request-like document: what the dictionary was trained on.
    fn request_doc(seed: u64) -> Vec<u8> {
        use automerge::transaction::Transactable;
        let mut doc = automerge::AutoCommit::new();
        doc.put(automerge::ROOT, "schema", 1_i64).unwrap();
        doc.put(automerge::ROOT, "ticket", format!("SKD-{seed:04}")).unwrap();
        doc.put(automerge::ROOT, "service", "SKD").unwrap();
        doc.put(automerge::ROOT, "kelurahan", "12.71.01.1009").unwrap();
        let events = doc.put_object(automerge::ROOT, "events", automerge::ObjType::Map).unwrap();
        for i in 0..4 {
            let e = doc
                .put_object(&events, format!("01a2426e-bf5{i}-75d0-80d0-af5087ef{seed:04}"), automerge::ObjType::Map)
                .unwrap();
            doc.put(&e, "to", "in_progress").unwrap();
            doc.put(&e, "at_ms", 1_796_410_883_923_i64 + i).unwrap();
        }
        doc.save()
    }

    #[test]
    fn packs_a_document_smaller_and_unpacks_it_exactly() {
        let doc = request_doc(7);
        let packed = pack(&doc);
        assert!(is_packed(&packed));
        assert_eq!(unpacked_len(&packed), doc.len());
        assert!(packed.len() < doc.len(), "{} of {} bytes", packed.len(), doc.len());
        assert_eq!(unpack(packed).unwrap(), doc);
    }

    #[test]
    fn bytes_stored_before_packing_read_as_they_are() {
        let doc = request_doc(8);
        assert!(!is_packed(&doc));
        assert_eq!(unpack(doc.clone()).unwrap(), doc);
        let tiny = vec![0x85, 0x6f, 0x4a, 0x83, 1, 2, 3];
        assert_eq!(pack(&tiny), tiny, "too small to gain");
    }

    #[test]
    fn a_frame_with_another_dictionary_or_a_false_size_is_corruption() {
        // Packed without any dictionary: dictionary id 0, not ours.
        let plain = zstd::bulk::compress(&request_doc(9), 3).unwrap();
        assert_eq!(unpack(plain), Err(UnpackError::UnknownDictionary(0)));
        // A frame claiming more than the cap, as a bomb would.
        let mut c = zstd::bulk::Compressor::with_prepared_dictionary(&LOADED[0].encoder).unwrap();
        let big = c.compress(&vec![0u8; UNPACKED_BYTES_MAX + 1]).unwrap();
        assert_eq!(unpack(big), Err(UnpackError::TooLarge));
        // A damaged frame.
        let mut damaged = pack(&request_doc(10));
        let n = damaged.len();
        damaged[n / 2..].iter_mut().for_each(|b| *b ^= 0x5a);
        assert!(matches!(unpack(damaged), Err(UnpackError::Corrupt(_))));
    }
}
