//! Replays the committed fuzz corpus (`sync-server/fuzz/corpus/`) through
//! the same entry points the fuzz targets use, so every input the fuzzer
//! ever found interesting keeps being checked by `cargo test`, without
//! libFuzzer or a nightly toolchain.

use std::path::Path;

fn replay(target: &str, run: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut n = 0;
    for entry in entries {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| run(&bytes));
        assert!(outcome.is_ok(), "{} panics on {}", target, path.display());
        n += 1;
    }
    n
}

#[test]
fn the_sync_decoder_corpus_replays_clean() {
    let n = replay("sync_decode", loket_sync_server::fuzzing::sync_decode);
    assert!(n >= 2, "the sync_decode corpus is missing (found {n} inputs)");
}

#[test]
fn the_ingest_corpus_replays_clean() {
    let n = replay("ingest", loket_sync_server::fuzzing::ingest);
    assert!(n >= 2, "the ingest corpus is missing (found {n} inputs)");
}

#[test]
fn the_chunks_corpus_replays_clean() {
    let n = replay("chunks", loket_sync_server::fuzzing::chunks);
    assert!(n >= 2, "the chunks corpus is missing (found {n} inputs)");
}
