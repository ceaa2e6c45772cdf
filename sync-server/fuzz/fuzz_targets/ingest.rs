#![no_main]
//! Automerge bytes pushed by a kiosk, through the server merge and checks.

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_sync_server::fuzzing::ingest(data));
