//! Trains the zstd dictionary that Automerge bytes are packed with at rest
//! (`loket_node::at_rest`), from a server store's documents and chunks.
//!
//! ```sh
//! LOKET_BENCH_KEEP=1 target/release/loket-bench-reconnect --idle-docs 1000
//! cargo run --release -p loket-sync-server --example train_dictionary -- \
//!     /tmp/loket-bench-reconnect-XXXX/server0/server.db shared/node/src/at_rest/request-vN.dict
//! ```
//!
//! A shipped dictionary is never replaced: a new one gets a new file, is
//! appended to `at_rest::DICTIONARIES`, and the old ids stay readable.
//! The store is opened read-only; samples are taken across every
//! kelurahan in it, evenly by document id.
use std::process::ExitCode;

/// 32 KiB: 16 KiB packed request documents 2 % larger, 64 KiB 1 % smaller.
const DICTIONARY_BYTES: usize = 32 * 1024;
const SAMPLES_MAX: i64 = 8_000;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [store, out] = args.as_slice() else {
        eprintln!("usage: train_dictionary SERVER_DB OUT_FILE");
        return ExitCode::from(2);
    };
    match run(store, out) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("train_dictionary: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(store: &str, out: &str) -> anyhow::Result<()> {
    let db = rusqlite::Connection::open_with_flags(store, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    // Every document type, ordered by the random part of its id so the
    // sample spreads over kiosks and time rather than taking the oldest.
    let mut docs = db.prepare("SELECT doc_id, snapshot FROM docs ORDER BY substr(doc_id, 25) LIMIT ?1")?;
    let mut chunks = db.prepare("SELECT data FROM chunks WHERE doc_id = ?1 ORDER BY id")?;
    let rows: Vec<(String, Option<Vec<u8>>)> =
        docs.query_map([SAMPLES_MAX], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<Result<_, _>>()?;
    // Both forms the store packs: documents as compaction saves them
    // (uncompressed), and changes as kiosks send them.
    let (mut documents, mut changes) = (Vec::new(), Vec::new());
    for (doc_id, snapshot) in rows {
        let mut bytes = snapshot.map(loket_node::at_rest::unpack).transpose()?.unwrap_or_default();
        for chunk in chunks.query_map([&doc_id], |r| r.get::<_, Vec<u8>>(0))? {
            bytes.extend(loket_node::at_rest::unpack(chunk?)?);
        }
        let mut doc = automerge::AutoCommit::load(&bytes)?;
        documents.push(doc.save_nocompress());
        let mut log = Vec::new();
        for change in doc.get_changes(&[]) {
            log.extend_from_slice(change.raw_bytes());
        }
        changes.push(log);
    }
    anyhow::ensure!(documents.len() >= 1_000, "{} documents: too few to train on", documents.len());
    // Trained on one half, measured on the other.
    let half = documents.len() / 2;
    let mut samples = documents[..half].to_vec();
    samples.extend_from_slice(&changes[..half]);
    let dict = zstd::dict::from_samples(&samples, DICTIONARY_BYTES)?;
    let mut c = zstd::bulk::Compressor::with_dictionary(3, &dict)?;
    let mut mean = |set: &[Vec<u8>]| -> anyhow::Result<(usize, usize)> {
        let raw: usize = set.iter().map(Vec::len).sum();
        let mut packed = 0;
        for s in set {
            packed += c.compress(s)?.len();
        }
        Ok((raw / set.len(), packed / set.len()))
    };
    let (doc_raw, doc_packed) = mean(&documents[half..])?;
    let (log_raw, log_packed) = mean(&changes[half..])?;
    std::fs::write(out, &dict)?;
    println!(
        "trained on {} samples; held out: documents {doc_raw} -> {doc_packed} bytes, changes {log_raw} -> {log_packed} bytes; dictionary of {} bytes written to {out}",
        samples.len(),
        dict.len(),
    );
    Ok(())
}
