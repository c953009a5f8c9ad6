//! Fuzz `decode_gossip`: must never panic; accepted frames must round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shoal_protocol::fuzzing::fuzz_gossip(data);
});
