#![no_main]
//! The sync message decoders: `cargo fuzz run sync_decode` (see README).

libfuzzer_sys::fuzz_target!(|data: &[u8]| loket_sync_server::fuzzing::sync_decode(data));
