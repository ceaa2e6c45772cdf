#![no_main]
//! Foreign Automerge bytes through `shared::chunks` and then Automerge
//! itself; run with a memory limit (README, "Fuzzing").

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_sync_server::fuzzing::chunks(data));
