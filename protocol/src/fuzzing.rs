//! Fuzz targets, shared by the cargo-fuzz crate (`protocol/fuzz`, nightly)
//! and the stable randomized test (`tests/fuzz_like.rs`).
//!
//! Each target must never panic, whatever the input; the `assert!`s inside
//! are invariants that would reveal a codec bug.

use crate::blob::{chunk_of, BlobAssembler, Manifest, Progress, CHUNK_SIZE};
use crate::codec::{decode, encode, WireMessage};
use crate::msg::{GossipMessage, Request, Response};

/// Anything the decoder accepts re-encodes and decodes to the same value.
fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(msg) = decode::<M>(data) {
        // The decoder accepted a frame within the kind's limit, so the
        // canonical re-encoding (never longer) must be accepted too.
        let again = encode(&msg);
        assert!(again.is_ok(), "re-encoding {msg:?} failed: {again:?}");
        if let Ok(frame) = again {
            assert_eq!(decode::<M>(&frame).ok().as_ref(), Some(&msg));
        }
    }
}

/// Target `decode_gossip`.
pub fn fuzz_gossip(data: &[u8]) {
    round_trip::<GossipMessage>(data);
}

/// Target `decode_request`.
pub fn fuzz_request(data: &[u8]) {
    round_trip::<Request>(data);
}

/// Target `decode_response`.
pub fn fuzz_response(data: &[u8]) {
    round_trip::<Response>(data);
}

/// Target the blob assembler: builds a small body from the input, then
/// replays chunks (possibly decoded from the input itself, duplicated,
/// reordered or corrupted) into an assembler. Whatever finishes must equal
/// the body.
pub fn fuzz_blob(data: &[u8]) {
    // Frames the input might contain go straight to the chunk path too.
    if let Ok(Response::Chunk(c)) = decode::<Response>(data) {
        if let Ok(m) = Manifest::of(&[]) {
            if let Ok(mut a) = BlobAssembler::new(m.root(), m, 0) {
                assert!(a.insert(&c).is_err());
            }
        }
    }
    let Some((&head, rest)) = data.split_first() else {
        return;
    };
    // Body of 0..=3 chunks plus a tail, derived from the input.
    let len = usize::from(head % 4) * CHUNK_SIZE + rest.len().min(CHUNK_SIZE);
    let body: Vec<u8> = (0..len)
        .map(|i| rest.get(i % rest.len().max(1)).copied().unwrap_or(0))
        .collect();
    let Ok(manifest) = Manifest::of(&body) else {
        return;
    };
    let root = manifest.root();
    let Ok(mut asm) = BlobAssembler::new(root, manifest.clone(), body.len() as u64) else {
        return;
    };
    let mut complete = false;
    for (step, &op) in rest.iter().enumerate().take(64) {
        let index = u32::from(op % 8);
        let Some(mut c) = chunk_of(&body, root, index) else {
            assert!(asm.manifest().chunk_len(index).is_none());
            continue;
        };
        if op & 0x80 != 0 && !c.data.is_empty() {
            // Corrupt one byte: must be refused.
            let mut d = c.data.to_vec();
            let at = step % d.len();
            d[at] ^= 0x5a;
            if let Ok(b) = crate::bounded::BoundedBytes::try_from_vec(d) {
                c.data = b;
            }
            assert!(asm.insert(&c).is_err());
            continue;
        }
        match asm.insert(&c) {
            Ok(Progress::Complete) => complete = true,
            Ok(Progress::Partial { .. }) | Err(_) => {}
        }
    }
    if complete {
        let out = asm.finish();
        assert_eq!(out.ok().as_deref(), Some(&body[..]));
    } else if !body.is_empty() {
        assert!(asm.finish().is_err());
    }
}
