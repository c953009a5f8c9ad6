//! Stable stand-in for the cargo-fuzz targets in `protocol/fuzz` (which need
//! nightly): runs the same target functions over seeded random and mutated
//! inputs. Every input must be handled without a panic.
//!
//! `FUZZ_ITERS=1000000 cargo test -p shoal-protocol --release --test fuzz_like`
//! for a longer run.
#![allow(clippy::unwrap_used)]

use shoal_protocol::fuzzing::{fuzz_blob, fuzz_gossip, fuzz_request, fuzz_response};
use shoal_protocol::*;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn iters() -> usize {
    std::env::var("FUZZ_ITERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000)
}

/// Valid frames of every family, to mutate from.
fn seeds() -> Vec<Vec<u8>> {
    let node = NodeId::from_u64(3);
    let h = Hash([9; 32]);
    let spec = TaskSpec {
        id: TaskId(77),
        owner: node,
        kind: TaskKind::Predict,
        inputs: BoundedVec::try_from_vec(vec![BlobRef {
            hash: h,
            size: 1 << 20,
            holders: BoundedVec::try_from_vec(vec![node, NodeId::from_u64(4)]).unwrap(),
        }])
        .unwrap(),
        compute_cost: 500,
        memory_bytes: 1 << 20,
        output_bytes: 100,
        deadline_in_ms: 9_000,
    };
    let digest = ModelDigest {
        kind: "nb".try_into().unwrap(),
        version: 3,
        hash: h,
        size: 1000,
        samples: 50,
        accuracy_bp: 8000,
    };
    let body = vec![5u8; 70_000];
    let m = Manifest::of(&body).unwrap();
    let mut out = vec![
        encode(&GossipMessage::Status(NodeStatus {
            node,
            speed_class: SpeedClass::Small,
            memory_bytes: 1 << 30,
            free_memory_bytes: 1 << 29,
            task_slots: 2,
            free_slots: 1,
            model: Some(digest.clone()),
            samples_seen: 10,
            accuracy_bp: 9000,
            listen_addrs: BoundedVec::try_from_vec(vec!["/ip4/10.0.0.1/tcp/4001"
                .try_into()
                .unwrap()])
            .unwrap(),
        }))
        .unwrap(),
        encode(&GossipMessage::ModelAnnounce {
            node,
            digest: digest.clone(),
        })
        .unwrap(),
        encode(&Request::TaskAnnounce {
            spec: spec.clone(),
            epoch: Epoch(1),
            bid_window_ms: 500,
        })
        .unwrap(),
        encode(&Request::Award {
            spec,
            epoch: Epoch(2),
            lease_ms: 4000,
        })
        .unwrap(),
        encode(&Request::Heartbeat {
            task: TaskId(77),
            epoch: Epoch(2),
            progress_permille: 10,
        })
        .unwrap(),
        encode(&Request::Result(TaskResult {
            task: TaskId(77),
            epoch: Epoch(2),
            output: TaskOutput::Inline(BoundedBytes::try_from_slice(b"hello").unwrap()),
        }))
        .unwrap(),
        encode(&Request::ChunkFetch { hash: h, index: 1 }).unwrap(),
        encode(&Response::Manifest(m.clone())).unwrap(),
        encode(&Response::ModelManifest {
            digest,
            manifest: m.clone(),
        })
        .unwrap(),
        encode(&Response::Chunk(chunk_of(&body, m.root(), 1).unwrap())).unwrap(),
    ];
    out.push(vec![WIRE_VERSION]);
    out
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] = [0, 0x7f, 0x80, 0xff][rng.below(4)];
            }
            2 => v.truncate(rng.below(v.len() + 1)),
            3 => {
                let i = rng.below(v.len() + 1);
                // A run of 0xff: a huge varint length.
                let n = 1 + rng.below(10);
                v.splice(i..i, std::iter::repeat_n(0xff, n));
            }
            4 => {
                let n = rng.below(64);
                v.extend((0..n).map(|_| rng.next() as u8));
            }
            _ => {
                if v.len() > 2 {
                    let i = rng.below(v.len() - 1);
                    v.swap(i, i + 1);
                }
            }
        }
    }
    v
}

fn run(target: fn(&[u8]), salt: u64) {
    let seeds = seeds();
    let mut rng = Rng(0x5eed ^ salt);
    for i in 0..iters() {
        let input = if i % 4 == 0 {
            let n = rng.below(300);
            (0..n).map(|_| rng.next() as u8).collect()
        } else {
            let s = &seeds[rng.below(seeds.len())];
            mutate(&mut rng, s)
        };
        target(&input);
    }
}

#[test]
fn gossip_decoder_survives_fuzzing() {
    run(fuzz_gossip, 1);
}

#[test]
fn request_decoder_survives_fuzzing() {
    run(fuzz_request, 2);
}

#[test]
fn response_decoder_survives_fuzzing() {
    run(fuzz_response, 3);
}

#[test]
fn blob_assembler_survives_fuzzing() {
    // Bodies here are up to 4 chunks: fewer iterations keep debug runs short.
    let seeds = seeds();
    let mut rng = Rng(4);
    for _ in 0..iters() / 20 {
        let s = &seeds[rng.below(seeds.len())];
        let mut input = mutate(&mut rng, s);
        input.truncate(200);
        fuzz_blob(&input);
    }
}
