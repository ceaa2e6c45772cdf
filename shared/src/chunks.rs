//! A bounded look at Automerge bytes from outside, before Automerge sees
//! them (STYLE.md, "Hostile input").
//!
//! Automerge trusts the sizes its storage format declares: a compressed
//! change chunk and every DEFLATE column of a document or bundle chunk
//! inflate without limit, and a run-length column declares how many rows
//! it holds in a few bytes (`2^60` copies of one value is ten bytes).
//! Automerge decodes both fully, so 847 bytes of push could drive the
//! server past 12 GiB. [`inspect`] walks the chunk headers and column
//! metadata of the format (automerge 0.12: `storage/chunk.rs`,
//! `storage/document.rs`, `storage/change.rs`, `storage/bundle`), inflates
//! compressed parts into buffers it caps, and counts the rows of every
//! column without materialising them, charging both to a [`Budget`].
//! Bytes that pass are whole chunks of known types with consistent
//! lengths whose decoded size is bounded; Automerge then parses them for
//! real (checksums, ops) and may still refuse them.
//!
//! The same walk covers the changes inside an Automerge sync message
//! ([`inspect_sync_message`]), whose bloom filters also declare a probe
//! count Automerge allocates for.
//!
//! Pure: no IO. Everything here is `Result`, never a panic, on any input
//! (fuzzed through the sync server's `ingest` target).

use std::io::Read;

use thiserror::Error;

/// Bytes that start every Automerge chunk.
const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;
const CHUNK_BUNDLE: u8 = 3;
/// Bit of a column specification that marks a DEFLATE-compressed column.
const COLUMN_DEFLATE: u32 = 0b1000;
/// Most chunks one blob may hold (a document's snapshot plus its
/// incremental saves, or a batch of changes).
const CHUNKS_MAX: usize = 10_000;
/// Most columns one chunk may declare (Automerge writes about 20).
const COLUMNS_MAX: u64 = 64;
/// Most probes a sync message's bloom filter may ask for (Automerge uses 7).
const BLOOM_PROBES_MAX: u64 = 32;

/// What foreign Automerge bytes may cost once decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes all compressed parts may inflate to, together.
    pub inflated_bytes_max: usize,
    /// Rows (operations, changes) any one column may hold.
    pub column_rows_max: u64,
    /// Rows of all columns together.
    pub rows_max: u64,
}

/// The default bound for one document's pushed or pulled bytes.
///
/// A request's whole life is a few hundred operations; the sync server
/// allows 2,000 changes per pushed document (`CHANGES_PER_DOC_MAX`), a
/// few tens of thousands of operations (a catalog a few tens of kilobytes). 100,000 rows per column and 4 MiB
/// inflated keep one document's decoded size in the tens of megabytes.
pub const DOC_LIMITS: Limits =
    Limits { inflated_bytes_max: 4 * 1024 * 1024, column_rows_max: 100_000, rows_max: 2_000_000 };

/// The default bound for one whole exchange (every document of a batch).
pub const EXCHANGE_LIMITS: Limits =
    Limits { inflated_bytes_max: 64 * 1024 * 1024, column_rows_max: 100_000, rows_max: 20_000_000 };

/// What is left to spend; one per document and one per exchange, charged
/// together with [`Budget::charge_both`].
#[derive(Debug, Clone)]
pub struct Budget {
    limits: Limits,
    inflated_bytes: usize,
    rows: u64,
}

impl Budget {
    pub fn new(limits: Limits) -> Budget {
        Budget { limits, inflated_bytes: 0, rows: 0 }
    }

    /// Bytes inflated so far.
    pub fn inflated_bytes(&self) -> usize {
        self.inflated_bytes
    }

    /// Rows counted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Adds what `part` spent to this budget, refusing when it is over.
    pub fn absorb(&mut self, part: &Budget) -> Result<(), ChunkError> {
        self.inflated_bytes = self.inflated_bytes.saturating_add(part.inflated_bytes);
        self.rows = self.rows.saturating_add(part.rows);
        self.check()
    }

    fn check(&self) -> Result<(), ChunkError> {
        if self.inflated_bytes > self.limits.inflated_bytes_max {
            return Err(ChunkError::TooLarge(format!(
                "inflates to more than {} bytes",
                self.limits.inflated_bytes_max
            )));
        }
        if self.rows > self.limits.rows_max {
            return Err(ChunkError::TooLarge(format!("more than {} rows in all", self.limits.rows_max)));
        }
        Ok(())
    }

    fn inflate_room(&self) -> usize {
        self.limits.inflated_bytes_max.saturating_sub(self.inflated_bytes)
    }

    fn add_rows(&mut self, column: u64) -> Result<(), ChunkError> {
        if column > self.limits.column_rows_max {
            return Err(ChunkError::TooLarge(format!("a column of more than {} rows", self.limits.column_rows_max)));
        }
        self.rows = self.rows.saturating_add(column);
        self.check()
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// Not Automerge's storage format, or lengths that do not add up.
    #[error("malformed Automerge data: {0}")]
    Malformed(&'static str),
    /// Well formed, but would decode to more than the limits allow.
    #[error("Automerge data too large when decoded: {0}")]
    TooLarge(String),
}

/// What a walk found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub chunks: usize,
    pub document_chunks: usize,
}

/// Walks `bytes` as a sequence of whole Automerge chunks (what `save`,
/// `save_after` and `save_incremental` produce, and their concatenation),
/// charging what they decode to against `budget`. Empty input is fine.
pub fn inspect(bytes: &[u8], budget: &mut Budget) -> Result<Summary, ChunkError> {
    let mut input = Input(bytes);
    let mut summary = Summary::default();
    while !input.0.is_empty() {
        if summary.chunks >= CHUNKS_MAX {
            return Err(ChunkError::TooLarge(format!("more than {CHUNKS_MAX} chunks")));
        }
        let magic = input.take(4)?;
        if magic != MAGIC {
            return Err(ChunkError::Malformed("not an Automerge chunk"));
        }
        input.take(4)?; // checksum: Automerge checks it
        let kind = input.take(1)?[0];
        let len = input.uleb_usize()?;
        let data = input.take(len)?;
        match kind {
            CHUNK_DOCUMENT => {
                document(data, budget)?;
                summary.document_chunks += 1;
            }
            CHUNK_CHANGE => change(data, budget)?,
            CHUNK_COMPRESSED => {
                let inflated = inflate(data, budget)?;
                change(&inflated, budget)?;
            }
            CHUNK_BUNDLE => bundle(data, budget)?,
            _ => return Err(ChunkError::Malformed("unknown chunk type")),
        }
        summary.chunks += 1;
    }
    Ok(summary)
}

/// The change chunks of `bytes` (what `save_after` produces), each whole
/// with its header, when every chunk is a change or a compressed change;
/// `None` for anything else (a document chunk, a bundle, bytes that do
/// not parse). Call it on bytes [`inspect`] passed: it does not bound what
/// they decode to.
pub fn change_chunks(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    let mut input = Input(bytes);
    let mut out = Vec::new();
    while !input.0.is_empty() {
        let rest = input.0;
        let header = (|| {
            if input.take(4)? != MAGIC {
                return Err(ChunkError::Malformed("not an Automerge chunk"));
            }
            input.take(4)?;
            let kind = input.take(1)?[0];
            let len = input.uleb_usize()?;
            input.take(len)?;
            Ok(kind)
        })();
        match header {
            Ok(CHUNK_CHANGE | CHUNK_COMPRESSED) => out.push(&rest[..rest.len() - input.0.len()]),
            _ => return None,
        }
    }
    Some(out)
}

/// The heads a document chunk declares, when `bytes` are exactly one
/// document chunk whose checksum holds (what `save` writes); `None` for
/// anything else. Reads only the chunk's header and its heads: what the
/// columns hold is Automerge's to check, on bytes [`inspect`] passed.
pub fn document_heads(bytes: &[u8]) -> Option<Vec<[u8; 32]>> {
    use sha2::Digest;
    let mut input = Input(bytes);
    if input.take(4).ok()? != MAGIC {
        return None;
    }
    let checksum = input.take(4).ok()?;
    let header_start = input.0;
    if input.take(1).ok()?[0] != CHUNK_DOCUMENT {
        return None;
    }
    let len = input.uleb_usize().ok()?;
    let header = &header_start[..header_start.len() - input.0.len()];
    let data = input.take(len).ok()?;
    if !input.0.is_empty() {
        return None; // more than one chunk
    }
    // Automerge's checksum: the first bytes of SHA-256 over the chunk's
    // type, length and data.
    let digest = sha2::Sha256::new().chain_update(header).chain_update(data).finalize();
    if digest[..4] != *checksum {
        return None;
    }
    let mut i = Input(data);
    for _ in 0..i.uleb().ok()? {
        i.length_prefixed_bytes().ok()?;
    }
    let count = usize::try_from(i.uleb().ok()?).ok()?;
    let hashes = i.take(count.checked_mul(32)?).ok()?;
    Some(hashes.chunks_exact(32).map(|h| h.try_into().expect("32 bytes")).collect())
}

/// Walks an Automerge sync message (`automerge::sync::Message` encoding):
/// its bloom filters' declared sizes and every change it carries.
pub fn inspect_sync_message(bytes: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let mut input = Input(bytes);
    let version = input.take(1)?[0];
    if version != 0x42 && version != 0x43 {
        return Err(ChunkError::Malformed("unknown sync message type"));
    }
    input.hashes()?; // heads
    input.hashes()?; // need
    let haves = input.uleb()?;
    for _ in 0..haves {
        input.hashes()?; // last_sync
        let bloom_len = input.uleb_usize()?;
        let bloom = input.take(bloom_len)?;
        if !bloom.is_empty() {
            let mut b = Input(bloom);
            b.uleb()?; // entries
            b.uleb()?; // bits per entry
            if b.uleb()? > BLOOM_PROBES_MAX {
                return Err(ChunkError::TooLarge(format!("a bloom filter of more than {BLOOM_PROBES_MAX} probes")));
            }
        }
    }
    let changes = input.uleb()?;
    for _ in 0..changes {
        let len = input.uleb_usize()?;
        inspect(input.take(len)?, budget)?;
    }
    // What follows is the flags field, which Automerge reads as bytes.
    Ok(())
}

/// A change chunk's body (after its header).
fn change(data: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let mut i = Input(data);
    i.hashes()?; // dependencies
    i.length_prefixed_bytes()?; // actor
    i.uleb()?; // seq
    i.uleb()?; // start op
    i.uleb()?; // time (signed; skipping reads it the same)
    i.length_prefixed_bytes()?; // message
    let others = i.uleb()?;
    for _ in 0..others {
        i.length_prefixed_bytes()?;
    }
    let columns = i.columns()?;
    if columns.iter().any(|c| c.spec & COLUMN_DEFLATE != 0) {
        // Automerge refuses these in a change; refuse before it does.
        return Err(ChunkError::Malformed("compressed columns in a change"));
    }
    column_data(&mut i, &columns, budget)?;
    Ok(())
}

/// A document chunk's body: actors, heads, change and op column metadata,
/// their data, then the heads' indices.
fn document(data: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let mut i = Input(data);
    let actors = i.uleb()?;
    for _ in 0..actors {
        i.length_prefixed_bytes()?;
    }
    let heads = i.hashes()?;
    let change_columns = i.columns()?;
    let op_columns = i.columns()?;
    column_data(&mut i, &change_columns, budget)?;
    column_data(&mut i, &op_columns, budget)?;
    if !i.0.is_empty() {
        for _ in 0..heads {
            i.uleb()?;
        }
    }
    if !i.0.is_empty() {
        return Err(ChunkError::Malformed("data left over in a document chunk"));
    }
    Ok(())
}

/// A bundle chunk's body: dependencies, actors, change columns and data,
/// op columns and data.
fn bundle(data: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let mut i = Input(data);
    i.hashes()?;
    let actors = i.uleb()?;
    for _ in 0..actors {
        i.length_prefixed_bytes()?;
    }
    let change_columns = i.columns()?;
    column_data(&mut i, &change_columns, budget)?;
    let op_columns = i.columns()?;
    column_data(&mut i, &op_columns, budget)?;
    Ok(())
}

#[derive(Debug, Clone, Copy)]
struct Column {
    spec: u32,
    len: usize,
}

/// Takes the data of `columns` from `i`, inflating compressed ones, and
/// charges their row counts.
fn column_data(i: &mut Input<'_>, columns: &[Column], budget: &mut Budget) -> Result<(), ChunkError> {
    for c in columns {
        let raw = i.take(c.len)?;
        let rows = if c.spec & COLUMN_DEFLATE != 0 {
            let inflated = inflate(raw, budget)?;
            rows(c.spec, &inflated)?
        } else {
            rows(c.spec, raw)?
        };
        budget.add_rows(rows)?;
    }
    Ok(())
}

/// Inflates DEFLATE data into a buffer no larger than the budget allows.
fn inflate(data: &[u8], budget: &mut Budget) -> Result<Vec<u8>, ChunkError> {
    let room = budget.inflate_room();
    let mut out = Vec::new();
    let limit = u64::try_from(room).unwrap_or(u64::MAX).saturating_add(1);
    flate2::bufread::DeflateDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| ChunkError::Malformed("compressed data that does not inflate"))?;
    budget.inflated_bytes = budget.inflated_bytes.saturating_add(out.len());
    budget.check()?;
    Ok(out)
}

/// How many rows a column's data holds, without materialising them.
fn rows(spec: u32, data: &[u8]) -> Result<u64, ChunkError> {
    const GROUP: u32 = 0;
    const BOOLEAN: u32 = 4;
    const STRING: u32 = 5;
    const VALUE: u32 = 7;
    let mut i = Input(data);
    let mut rows: u64 = 0;
    match spec & 0b111 {
        // Raw bytes; their lengths sit in the metadata column.
        VALUE => return Ok(0),
        BOOLEAN => {
            while !i.0.is_empty() {
                rows = rows.saturating_add(i.uleb()?);
            }
        }
        kind => {
            // Run-length encoding: a positive count and one value, a
            // negative count and that many values, or zero and a count of
            // nulls. Values are LEB128 numbers, strings length-prefixed.
            let _ = GROUP;
            while !i.0.is_empty() {
                let count = i.sleb()?;
                if count > 0 {
                    rows = rows.saturating_add(count.unsigned_abs());
                    i.rle_value(kind == STRING)?;
                } else if count < 0 {
                    for _ in 0..count.unsigned_abs() {
                        i.rle_value(kind == STRING)?;
                    }
                    rows = rows.saturating_add(count.unsigned_abs());
                } else {
                    rows = rows.saturating_add(i.uleb()?);
                }
            }
        }
    }
    Ok(rows)
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ChunkError> {
        if n > self.0.len() {
            return Err(ChunkError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn uleb(&mut self) -> Result<u64, ChunkError> {
        let mut value: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(ChunkError::Malformed("LEB128 number too large"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(ChunkError::Malformed("LEB128 number too large"))
    }

    fn sleb(&mut self) -> Result<i64, ChunkError> {
        let mut value: i64 = 0;
        let mut shift = 0;
        loop {
            let byte = self.take(1)?[0];
            if shift >= 64 {
                return Err(ChunkError::Malformed("LEB128 number too large"));
            }
            value |= i64::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                if shift < 64 && byte & 0x40 != 0 {
                    value |= -1i64 << shift;
                }
                return Ok(value);
            }
        }
    }

    fn uleb_usize(&mut self) -> Result<usize, ChunkError> {
        usize::try_from(self.uleb()?).map_err(|_| ChunkError::Malformed("length too large"))
    }

    fn length_prefixed_bytes(&mut self) -> Result<&'a [u8], ChunkError> {
        let len = self.uleb_usize()?;
        self.take(len)
    }

    /// A count of 32-byte hashes and the hashes; returns the count.
    fn hashes(&mut self) -> Result<u64, ChunkError> {
        let count = self.uleb()?;
        let bytes = usize::try_from(count).ok().and_then(|c| c.checked_mul(32));
        self.take(bytes.ok_or(ChunkError::Malformed("too many hashes"))?)?;
        Ok(count)
    }

    fn columns(&mut self) -> Result<Vec<Column>, ChunkError> {
        let count = self.uleb()?;
        if count > COLUMNS_MAX {
            return Err(ChunkError::Malformed("too many columns"));
        }
        let mut columns = Vec::with_capacity(count as usize);
        let mut total: usize = 0;
        for _ in 0..count {
            let spec = u32::try_from(self.uleb()?).map_err(|_| ChunkError::Malformed("column specification"))?;
            let len = self.uleb_usize()?;
            total = total.checked_add(len).ok_or(ChunkError::Malformed("column lengths overflow"))?;
            if total > self.0.len() {
                return Err(ChunkError::Malformed("column data longer than the chunk"));
            }
            columns.push(Column { spec, len });
        }
        Ok(columns)
    }

    fn rle_value(&mut self, string: bool) -> Result<(), ChunkError> {
        if string {
            self.length_prefixed_bytes()?;
        } else {
            self.uleb()?;
        }
        Ok(())
    }
}

/// Hostile inputs that decode to far more than they weigh: what
/// [`inspect`] exists to refuse. Built here once for the unit tests, the
/// attack suite, the fuzz seeds and `examples/bomb_rss`.
pub mod bombs {
    use std::io::Write;

    use super::{CHUNK_COMPRESSED, CHUNK_DOCUMENT, COLUMN_DEFLATE, MAGIC};

    /// One hostile input and where it travels.
    pub struct Bomb {
        pub name: &'static str,
        pub bytes: Vec<u8>,
        /// An Automerge sync message (a push's `fallback`), not changes.
        pub sync_message: bool,
    }

    /// Every kind: a compressed change and a document's DEFLATE column of
    /// `mib` MiB of zeros, a run-length column of 2^40 rows, a sync
    /// message carrying the first, and one whose bloom filter asks for
    /// four billion probes.
    pub fn all(mib: usize) -> Vec<Bomb> {
        let zeros = deflated_zeros(mib);
        let compressed = compressed_change(&zeros);
        let bomb = |name, bytes, sync_message| Bomb { name, bytes, sync_message };
        vec![
            bomb("compressed-change", compressed.clone(), false),
            bomb("deflate-column", deflate_column(&zeros), false),
            bomb("run-length", run_length(1 << 40), false),
            bomb("sync-message", sync_message_with(&compressed), true),
            bomb("bloom-probes", bloom_probes(u64::from(u32::MAX)), true),
        ]
    }

    /// `mib` MiB of zeros, DEFLATE-compressed (about 1,000 to 1).
    pub fn deflated_zeros(mib: usize) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        let block = vec![0u8; 1024 * 1024];
        for _ in 0..mib {
            e.write_all(&block).expect("writing to memory");
        }
        e.finish().expect("writing to memory")
    }

    /// A compressed change chunk whose body is `deflated`.
    pub fn compressed_change(deflated: &[u8]) -> Vec<u8> {
        chunk(CHUNK_COMPRESSED, deflated)
    }

    /// A document chunk with one change column, DEFLATE-compressed.
    pub fn deflate_column(deflated: &[u8]) -> Vec<u8> {
        let mut body = Vec::new();
        // No actors, no heads, one integer column (id 1), no op columns.
        for v in [0, 0, 1, (1 << 4) | u64::from(COLUMN_DEFLATE) | 2, deflated.len() as u64, 0] {
            leb(&mut body, v);
        }
        body.extend(deflated);
        chunk(CHUNK_DOCUMENT, &body)
    }

    /// A document chunk with one op column holding one run of `rows`
    /// copies of a value: a handful of bytes.
    pub fn run_length(rows: u64) -> Vec<u8> {
        let mut column = Vec::new();
        leb(&mut column, rows); // a positive signed LEB128 while bit 6 of its last byte is clear
        leb(&mut column, 1);
        let mut body = Vec::new();
        for v in [0, 0, 0, 1, (2 << 4) | 2, column.len() as u64] {
            leb(&mut body, v);
        }
        body.extend(&column);
        chunk(CHUNK_DOCUMENT, &body)
    }

    /// A sync message (format 0x42) carrying `change`.
    pub fn sync_message_with(change: &[u8]) -> Vec<u8> {
        let mut message = vec![0x42, 0, 0, 0, 1];
        leb(&mut message, change.len() as u64);
        message.extend(change);
        message
    }

    /// A sync message whose one bloom filter asks for `probes` probes.
    pub fn bloom_probes(probes: u64) -> Vec<u8> {
        let mut bloom = Vec::new();
        for v in [1, 10, probes] {
            leb(&mut bloom, v);
        }
        bloom.extend([0u8; 2]);
        let mut message = vec![0x42, 0, 0, 1, 0];
        leb(&mut message, bloom.len() as u64);
        message.extend(&bloom);
        message.push(0);
        message
    }

    /// A chunk header (any checksum: nothing checks it before inflating).
    pub fn chunk(kind: u8, data: &[u8]) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend([0, 0, 0, 0, kind]);
        leb(&mut out, data.len() as u64);
        out.extend(data);
        out
    }

    pub fn leb(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(byte);
                return;
            }
            out.push(byte | 0x80);
        }
    }
}

#[cfg(test)]
mod tests {

    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    use super::*;

    fn sample() -> AutoCommit {
        let mut doc = AutoCommit::new();
        doc.put(ROOT, "type", "request").unwrap();
        let list = doc.put_object(ROOT, "events", ObjType::List).unwrap();
        for i in 0..200 {
            let m = doc.insert_object(&list, i, ObjType::Map).unwrap();
            doc.put(&m, "note", format!("catatan nomor {i} yang cukup panjang untuk dikompresi")).unwrap();
            doc.commit();
        }
        doc
    }

    fn budget() -> Budget {
        Budget::new(DOC_LIMITS)
    }

    #[test]
    fn what_automerge_writes_passes() {
        let mut doc = sample();
        let saved = doc.save();
        let summary = inspect(&saved, &mut budget()).unwrap();
        assert_eq!(summary, Summary { chunks: 1, document_chunks: 1 });
        let heads = doc.get_heads();
        doc.put(ROOT, "extra", "x").unwrap();
        doc.commit();
        let mut both = saved.clone();
        both.extend(doc.save_after(&heads));
        let mut b = budget();
        assert_eq!(inspect(&both, &mut b).unwrap().chunks, 2);
        assert!(b.rows() > 200, "rows are counted: {}", b.rows());
        for change in doc.get_changes(&[]) {
            inspect(change.raw_bytes(), &mut budget()).unwrap();
        }
        assert_eq!(inspect(&[], &mut budget()).unwrap().chunks, 0);
    }

    #[test]
    fn change_chunks_splits_what_save_after_writes_and_nothing_else() {
        let mut doc = sample();
        let after = doc.save_after(&[]);
        let chunks = change_chunks(&after).unwrap();
        let changes = doc.get_changes(&[]);
        assert_eq!(chunks.len(), changes.len());
        for (chunk, change) in chunks.iter().zip(&changes) {
            assert_eq!(automerge::Change::try_from(*chunk).unwrap().hash(), change.hash());
        }
        assert_eq!(change_chunks(&[]), Some(Vec::new()));
        // A whole document, or a document followed by changes, is not a
        // run of changes; neither is anything cut short or foreign.
        let saved = doc.save();
        assert_eq!(change_chunks(&saved), None);
        let mut both = after.clone();
        both.extend(&saved);
        assert_eq!(change_chunks(&both), None);
        assert_eq!(change_chunks(&after[..after.len() - 1]), None);
        assert_eq!(change_chunks(b"hello"), None);
    }

    #[test]
    fn a_document_chunk_declares_its_heads_and_nothing_else_does() {
        let mut doc = sample();
        let saved = doc.save_nocompress();
        let heads: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
        assert_eq!(document_heads(&saved), Some(heads.clone()));
        assert_eq!(document_heads(&doc.save()), Some(heads), "DEFLATEd columns: the heads are not compressed");
        // Two writers: two heads, as Automerge lists them.
        let mut other = doc.fork();
        other.put(ROOT, "b", 1).unwrap();
        doc.put(ROOT, "a", 1).unwrap();
        doc.merge(&mut other).unwrap();
        let two: Vec<[u8; 32]> = doc.get_heads().iter().map(|h| h.0).collect();
        assert_eq!(two.len(), 2);
        assert_eq!(document_heads(&doc.save()), Some(two));
        // Changes, a document with changes after it, a flipped byte (the
        // checksum), anything cut short: none declares the heads.
        assert_eq!(document_heads(&doc.save_after(&[])), None);
        let mut both = saved.clone();
        both.extend(doc.save_after(&[]));
        assert_eq!(document_heads(&both), None);
        let mut flipped = saved.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert_eq!(document_heads(&flipped), None);
        assert_eq!(document_heads(&saved[..saved.len() - 1]), None);
        assert_eq!(document_heads(&[]), None);
        assert_eq!(document_heads(b"hello"), None);
    }

    #[test]
    fn trailing_junk_and_garbage_are_refused() {
        let mut saved = sample().save();
        saved.push(0);
        assert!(matches!(inspect(&saved, &mut budget()), Err(ChunkError::Malformed(_))));
        for junk in [&b"hello"[..], &[0x85, 0x6f, 0x4a, 0x83, 0, 0, 0, 0, 9, 0][..], &[0x85, 0x6f, 0x4a][..]] {
            assert!(inspect(junk, &mut budget()).is_err(), "{junk:?}");
        }
    }

    use super::bombs::{self, leb};

    #[test]
    fn every_bomb_is_refused_before_it_inflates() {
        for bomb in bombs::all(80) {
            assert!(bomb.bytes.len() < 100 * 1024, "{}: {} bytes", bomb.name, bomb.bytes.len());
            let mut b = budget();
            let outcome = if bomb.sync_message {
                inspect_sync_message(&bomb.bytes, &mut b).map(|()| Summary::default())
            } else {
                inspect(&bomb.bytes, &mut b)
            };
            assert!(outcome.is_err(), "{}", bomb.name);
            assert!(b.inflated_bytes() <= DOC_LIMITS.inflated_bytes_max + 1, "{}", bomb.name);
        }
        assert!(matches!(inspect(&bombs::run_length(1 << 40), &mut budget()), Err(ChunkError::TooLarge(_))));
    }

    #[test]
    fn run_lengths_are_counted_without_materialising() {
        // Null runs count too.
        let mut nulls = vec![0];
        leb(&mut nulls, 1 << 50);
        assert_eq!(rows(2, &nulls).unwrap(), 1 << 50);
        // Booleans: alternating run lengths.
        let mut bools = Vec::new();
        leb(&mut bools, 3);
        leb(&mut bools, 1 << 33);
        assert_eq!(rows(4, &bools).unwrap(), 3 + (1 << 33));
        // A document of a hundred thousand rows passes, one more does not.
        assert!(inspect(&bombs::run_length(100_000), &mut budget()).is_ok());
        assert!(inspect(&bombs::run_length(100_001), &mut budget()).is_err());
    }

    #[test]
    fn the_exchange_budget_adds_up_documents() {
        let saved = sample().save();
        let mut exchange =
            Budget::new(Limits { inflated_bytes_max: usize::MAX, column_rows_max: 100_000, rows_max: 5_000 });
        let mut refused = false;
        for _ in 0..100 {
            let mut doc = budget();
            inspect(&saved, &mut doc).unwrap();
            if exchange.absorb(&doc).is_err() {
                refused = true;
                break;
            }
        }
        assert!(refused, "100 documents exceed 5,000 rows in all");
    }

    #[test]
    fn sync_messages_are_walked() {
        use automerge::sync::{State, SyncDoc};
        let mut doc = sample();
        let mut state = State::new();
        let msg = doc.sync().generate_sync_message(&mut state).unwrap().encode();
        inspect_sync_message(&msg, &mut budget()).unwrap();
        // Answered by an empty peer: the message carries every change.
        let mut empty = AutoCommit::new();
        let mut peer = State::new();
        let ask = empty.sync().generate_sync_message(&mut peer).unwrap();
        doc.sync().receive_sync_message(&mut state, ask).unwrap();
        let full = doc.sync().generate_sync_message(&mut state).unwrap().encode();
        let mut b = budget();
        inspect_sync_message(&full, &mut b).unwrap();
        assert!(b.rows() > 0);
        // A change that is a bomb inside a message, and four billion probes.
        let bomb = bombs::sync_message_with(&bombs::compressed_change(&bombs::deflated_zeros(80)));
        assert!(matches!(inspect_sync_message(&bomb, &mut budget()), Err(ChunkError::TooLarge(_))));
        assert!(inspect_sync_message(&bombs::bloom_probes(u64::from(u32::MAX)), &mut budget()).is_err());
    }
}
