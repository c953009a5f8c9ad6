//! Fuzz the chunk decoder and `BlobAssembler`: must never panic; whatever
//! completes must equal the original body.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    shoal_protocol::fuzzing::fuzz_blob(data);
});
