//! Codec properties: every message kind round-trips, maximal messages fit
//! their limits, and truncated, oversized or random input is an error, not a
//! panic and not a big allocation.
//!
//! Case counts are kept low for the 2-core CI box; run more with
//! `PROPTEST_CASES=5000 cargo test -p shoal-protocol --test codec_props`.
#![allow(clippy::unwrap_used)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use shoal_protocol::*;

/// Counts the largest single allocation, to check decoders never reserve
/// more than the frame they were given could justify.
/// Only allocations of the thread that set `TRACK` count, so concurrently
/// running tests do not disturb the measurement.
struct Counting;
static LARGEST: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static TRACK: Cell<bool> = const { Cell::new(false) };
}
fn note(size: usize) {
    if TRACK.with(|t| t.get()) {
        LARGEST.fetch_max(size, Ordering::Relaxed);
    }
}
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        note(l.size());
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        note(n);
        unsafe { System.realloc(p, l, n) }
    }
}
#[global_allocator]
static A: Counting = Counting;

fn node_id() -> impl Strategy<Value = NodeId> {
    prop::collection::vec(any::<u8>(), 1..=64).prop_map(|b| NodeId::from_bytes(&b).unwrap())
}
fn hash() -> impl Strategy<Value = Hash> {
    any::<[u8; 32]>().prop_map(Hash)
}
fn bstring<const N: usize>() -> impl Strategy<Value = BoundedString<N>> {
    "[a-z0-9/.:-]{0,40}".prop_map(|s| {
        let s: String = s.chars().take(N).collect();
        BoundedString::try_new(&s).unwrap()
    })
}
fn bvec<T: std::fmt::Debug, const N: usize>(
    s: impl Strategy<Value = T>,
    max: usize,
) -> impl Strategy<Value = BoundedVec<T, N>> {
    prop::collection::vec(s, 0..=max.min(N)).prop_map(|v| BoundedVec::try_from_vec(v).unwrap())
}
fn digest() -> impl Strategy<Value = ModelDigest> {
    (
        bstring::<32>(),
        any::<u64>(),
        hash(),
        any::<u64>(),
        any::<u64>(),
        0u16..=10000,
    )
        .prop_map(
            |(kind, version, hash, size, samples, accuracy_bp)| ModelDigest {
                kind,
                version,
                hash,
                size,
                samples,
                accuracy_bp,
            },
        )
}
fn speed() -> impl Strategy<Value = SpeedClass> {
    prop_oneof![
        Just(SpeedClass::Embedded),
        Just(SpeedClass::Small),
        Just(SpeedClass::Desktop),
        Just(SpeedClass::Server)
    ]
}
fn gossip() -> impl Strategy<Value = GossipMessage> {
    prop_oneof![
        (
            node_id(),
            speed(),
            any::<(u64, u64, u16, u16)>(),
            prop::option::of(digest()),
            any::<u64>(),
            any::<u16>(),
            bvec::<Addr, 8>(bstring::<256>(), 8)
        )
            .prop_map(
                |(node, speed_class, (m, fm, s, fs), model, samples_seen, acc, addrs)| {
                    GossipMessage::Status(NodeStatus {
                        node,
                        speed_class,
                        memory_bytes: m,
                        free_memory_bytes: fm,
                        task_slots: s,
                        free_slots: fs,
                        model,
                        samples_seen,
                        accuracy_bp: acc,
                        listen_addrs: addrs,
                    })
                }
            ),
        (node_id(), digest())
            .prop_map(|(node, digest)| GossipMessage::ModelAnnounce { node, digest }),
    ]
}
fn task_kind() -> impl Strategy<Value = TaskKind> {
    prop::sample::select(TaskKind::ALL.to_vec())
}
fn spec() -> impl Strategy<Value = TaskSpec> {
    let input = (hash(), any::<u64>(), bvec::<NodeId, 8>(node_id(), 3)).prop_map(
        |(hash, size, holders)| BlobRef {
            hash,
            size,
            holders,
        },
    );
    (
        any::<u128>(),
        node_id(),
        task_kind(),
        bvec::<BlobRef, 16>(input, 4),
        any::<(u64, u64, u64, u64)>(),
    )
        .prop_map(|(id, owner, kind, inputs, (c, m, o, d))| TaskSpec {
            id: TaskId(id),
            owner,
            kind,
            inputs,
            compute_cost: c,
            memory_bytes: m,
            output_bytes: o,
            deadline_in_ms: d,
        })
}
fn output() -> impl Strategy<Value = TaskOutput> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|v| TaskOutput::Inline(BoundedBytes::try_from_vec(v).unwrap())),
        (hash(), any::<u64>()).prop_map(|(hash, size)| TaskOutput::Blob { hash, size }),
    ]
}
fn epoch() -> impl Strategy<Value = Epoch> {
    any::<u32>().prop_map(Epoch)
}
fn request() -> impl Strategy<Value = Request> {
    let tid = any::<u128>().prop_map(TaskId);
    prop_oneof![
        (spec(), epoch(), any::<u64>()).prop_map(|(spec, epoch, w)| Request::TaskAnnounce {
            spec,
            epoch,
            bid_window_ms: w
        }),
        (
            tid.clone(),
            epoch(),
            node_id(),
            any::<(u64, u64, u64, u64, u64)>()
        )
            .prop_map(|(task, epoch, bidder, (a, b, c, d, e))| Request::Bid(Bid {
                task,
                epoch,
                bidder,
                wait_ms: a,
                compute_ms: b,
                transfer_in_ms: c,
                transfer_out_ms: d,
                non_local_bytes: e
            })),
        (spec(), epoch(), any::<u64>()).prop_map(|(spec, epoch, l)| Request::Award {
            spec,
            epoch,
            lease_ms: l
        }),
        (tid.clone(), epoch(), any::<bool>()).prop_map(|(task, epoch, accepted)| {
            Request::AwardAck {
                task,
                epoch,
                accepted,
            }
        }),
        (tid.clone(), epoch(), any::<u16>()).prop_map(|(task, epoch, p)| Request::Heartbeat {
            task,
            epoch,
            progress_permille: p
        }),
        (tid.clone(), epoch(), output()).prop_map(|(task, epoch, output)| Request::Result(
            TaskResult {
                task,
                epoch,
                output
            }
        )),
        (
            tid,
            epoch(),
            prop_oneof![
                Just(CancelReason::Committed),
                Just(CancelReason::Superseded),
                Just(CancelReason::Failed)
            ]
        )
            .prop_map(|(task, epoch, reason)| Request::Cancel {
                task,
                epoch,
                reason
            }),
        hash().prop_map(|hash| Request::ModelFetch { hash }),
        hash().prop_map(|hash| Request::ManifestFetch { hash }),
        (hash(), any::<u32>()).prop_map(|(hash, index)| Request::ChunkFetch { hash, index }),
    ]
}
fn manifest() -> impl Strategy<Value = Manifest> {
    (any::<u64>(), bvec::<Hash, MAX_CHUNKS>(hash(), 20))
        .prop_map(|(size, chunks)| Manifest { size, chunks })
}
fn response() -> impl Strategy<Value = Response> {
    prop_oneof![
        Just(Response::Ack),
        prop_oneof![
            Just(RejectReason::Busy),
            Just(RejectReason::UnknownTask),
            Just(RejectReason::Unsupported),
            Just(RejectReason::Invalid)
        ]
        .prop_map(|reason| Response::Rejected { reason }),
        hash().prop_map(|hash| Response::NotFound { hash }),
        manifest().prop_map(Response::Manifest),
        (digest(), manifest())
            .prop_map(|(digest, manifest)| Response::ModelManifest { digest, manifest }),
        (
            hash(),
            any::<u32>(),
            prop::collection::vec(any::<u8>(), 0..2000)
        )
            .prop_map(|(hash, index, d)| Response::Chunk(Chunk {
                hash,
                index,
                data: BoundedBytes::try_from_vec(d).unwrap()
            })),
    ]
}

/// Round trip, and every strict prefix is refused (never a panic).
fn check<M: WireMessage + PartialEq + std::fmt::Debug>(msg: &M) -> Result<(), TestCaseError> {
    let frame = encode(msg).unwrap();
    prop_assert!(frame.len() <= msg.kind().limit());
    prop_assert_eq!(peek_kind(M::FAMILY, &frame).unwrap(), msg.kind());
    prop_assert_eq!(&decode::<M>(&frame).unwrap(), msg);
    // A sample of prefixes (all of them would be quadratic for big chunks).
    let step = (frame.len() / 40).max(1);
    for cut in (0..frame.len()).step_by(step) {
        prop_assert!(
            decode::<M>(&frame[..cut]).is_err(),
            "prefix {} accepted",
            cut
        );
    }
    Ok(())
}

/// Case count: `default`, or `PROPTEST_CASES` when set (an explicit `cases`
/// in the config would otherwise override the environment).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), .. ProptestConfig::default() })]

    #[test]
    fn gossip_round_trips(m in gossip()) { check(&m)?; }

    #[test]
    fn requests_round_trip(m in request()) { check(&m)?; }

    #[test]
    fn responses_round_trip(m in response()) { check(&m)?; }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512), tag in 0u8..12) {
        let mut f = vec![WIRE_VERSION, tag];
        f.extend(bytes);
        let _ = decode_gossip(&f);
        let _ = decode_request(&f);
        let _ = decode_response(&f);
    }

    #[test]
    fn frames_over_their_kind_limit_are_refused(m in request(), extra in 1usize..70_000) {
        let mut f = encode(&m).unwrap();
        let limit = m.kind().limit();
        f.resize(limit + extra.min(MAX_REQUEST_BYTES + 1 - limit).max(1), 0);
        let too_large = matches!(decode_request(&f), Err(DecodeError::TooLarge { size, .. }) if size == f.len());
        prop_assert!(too_large);
    }

    #[test]
    fn wrong_version_is_refused(m in request(), v in any::<u8>()) {
        prop_assume!(v != WIRE_VERSION);
        let mut f = encode(&m).unwrap();
        f[0] = v;
        prop_assert_eq!(decode_request(&f), Err(DecodeError::UnknownVersion { got: v, supported: WIRE_VERSION }));
    }
}

fn max_node() -> NodeId {
    NodeId::from_bytes(&[0xff; 64]).unwrap()
}
fn max_str<const N: usize>() -> BoundedString<N> {
    BoundedString::try_new(&"x".repeat(N)).unwrap()
}
fn max_digest() -> ModelDigest {
    ModelDigest {
        kind: max_str(),
        version: u64::MAX,
        hash: Hash([0xff; 32]),
        size: u64::MAX,
        samples: u64::MAX,
        accuracy_bp: u16::MAX,
    }
}
fn max_spec() -> TaskSpec {
    let input = BlobRef {
        hash: Hash([0xff; 32]),
        size: u64::MAX,
        holders: BoundedVec::try_from_vec(vec![max_node(); 8]).unwrap(),
    };
    TaskSpec {
        id: TaskId(u128::MAX),
        owner: max_node(),
        kind: TaskKind::Select,
        inputs: BoundedVec::try_from_vec(vec![input; 16]).unwrap(),
        compute_cost: u64::MAX,
        memory_bytes: u64::MAX,
        output_bytes: u64::MAX,
        deadline_in_ms: u64::MAX,
    }
}
fn max_manifest() -> Manifest {
    Manifest {
        size: u64::MAX,
        chunks: BoundedVec::try_from_vec(vec![Hash([0xff; 32]); MAX_CHUNKS]).unwrap(),
    }
}

/// The largest value of every kind encodes within its limit, so a node never
/// builds a message its peers must refuse.
#[test]
fn maximal_messages_fit_their_limits() {
    let e = Epoch(u32::MAX);
    let t = TaskId(u128::MAX);
    let gossip = [
        GossipMessage::Status(NodeStatus {
            node: max_node(),
            speed_class: SpeedClass::Server,
            memory_bytes: u64::MAX,
            free_memory_bytes: u64::MAX,
            task_slots: u16::MAX,
            free_slots: u16::MAX,
            model: Some(max_digest()),
            samples_seen: u64::MAX,
            accuracy_bp: u16::MAX,
            listen_addrs: BoundedVec::try_from_vec(vec![max_str(); MAX_ADDRS_]).unwrap(),
        }),
        GossipMessage::ModelAnnounce {
            node: max_node(),
            digest: max_digest(),
        },
    ];
    let requests = [
        Request::TaskAnnounce {
            spec: max_spec(),
            epoch: e,
            bid_window_ms: u64::MAX,
        },
        Request::Bid(Bid {
            task: t,
            epoch: e,
            bidder: max_node(),
            wait_ms: u64::MAX,
            compute_ms: u64::MAX,
            transfer_in_ms: u64::MAX,
            transfer_out_ms: u64::MAX,
            non_local_bytes: u64::MAX,
        }),
        Request::Award {
            spec: max_spec(),
            epoch: e,
            lease_ms: u64::MAX,
        },
        Request::AwardAck {
            task: t,
            epoch: e,
            accepted: true,
        },
        Request::Heartbeat {
            task: t,
            epoch: e,
            progress_permille: u16::MAX,
        },
        Request::Result(TaskResult {
            task: t,
            epoch: e,
            output: TaskOutput::Inline(
                BoundedBytes::try_from_vec(vec![0xff; msg::MAX_INLINE_RESULT]).unwrap(),
            ),
        }),
        Request::Cancel {
            task: t,
            epoch: e,
            reason: CancelReason::Superseded,
        },
        Request::ModelFetch {
            hash: Hash([0xff; 32]),
        },
        Request::ManifestFetch {
            hash: Hash([0xff; 32]),
        },
        Request::ChunkFetch {
            hash: Hash([0xff; 32]),
            index: u32::MAX,
        },
    ];
    let responses = [
        Response::Ack,
        Response::Rejected {
            reason: RejectReason::Unsupported,
        },
        Response::NotFound {
            hash: Hash([0xff; 32]),
        },
        Response::Manifest(max_manifest()),
        Response::ModelManifest {
            digest: max_digest(),
            manifest: max_manifest(),
        },
        Response::Chunk(Chunk {
            hash: Hash([0xff; 32]),
            index: u32::MAX,
            data: BoundedBytes::try_from_vec(vec![0xff; CHUNK_SIZE]).unwrap(),
        }),
    ];
    let mut seen = std::collections::HashSet::new();
    for m in &gossip {
        let f = encode(m).unwrap();
        assert_eq!(&decode_gossip(&f).unwrap(), m);
        seen.insert(m.kind());
    }
    for m in &requests {
        let f = encode(m).unwrap();
        assert_eq!(&decode_request(&f).unwrap(), m);
        seen.insert(m.kind());
    }
    for m in &responses {
        let f = encode(m).unwrap();
        assert_eq!(&decode_response(&f).unwrap(), m);
        seen.insert(m.kind());
    }
    assert_eq!(seen.len(), 18, "every kind covered");
}
const MAX_ADDRS_: usize = msg::MAX_ADDRS;

/// Frames declaring enormous collections fail and allocate no more than a
/// small multiple of the frame itself.
#[test]
fn huge_declared_lengths_do_not_allocate() {
    let huge_varint = [0xff, 0xff, 0xff, 0xff, 0x0f];
    let mut frames: Vec<(Family, Vec<u8>)> = Vec::new();
    // Manifest response declaring 2^32-1 chunk hashes.
    let mut f = vec![WIRE_VERSION, 3, 1];
    f.extend(huge_varint);
    frames.push((Family::Response, f));
    // Status with a 2^32-1 byte node id.
    let mut f = vec![WIRE_VERSION, 0];
    f.extend(huge_varint);
    frames.push((Family::Gossip, f));
    // Status with a valid prefix and 2^32-1 listen addresses.
    let mut f = vec![WIRE_VERSION, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    f.extend(huge_varint);
    frames.push((Family::Gossip, f));
    // Task announce with 2^32-1 inputs.
    let mut f = vec![WIRE_VERSION, 0, 0, 1, 9, 0];
    f.extend(huge_varint);
    frames.push((Family::Request, f));
    // Result with an inline output declaring 2^32-1 bytes (padded to 4 KiB).
    let mut f = vec![WIRE_VERSION, 5, 0, 0, 0];
    f.extend(huge_varint);
    f.resize(4096, 0);
    frames.push((Family::Request, f));
    // Sanity: the counter sees this thread's allocations. (postcard 1.1
    // itself drops the size hint when the input is shorter than the declared
    // length; the bounded types are the second line of defence and also cap
    // inputs that really are that long.)
    LARGEST.store(0, Ordering::Relaxed);
    TRACK.with(|t| t.set(true));
    let probe = std::hint::black_box(vec![0u8; 100_000]);
    TRACK.with(|t| t.set(false));
    drop(probe);
    assert!(
        LARGEST.load(Ordering::Relaxed) >= 100_000,
        "counting allocator is live"
    );
    for (family, f) in frames {
        LARGEST.store(0, Ordering::Relaxed);
        TRACK.with(|t| t.set(true));
        let r = match family {
            Family::Gossip => decode_gossip(&f).map(|_| ()),
            Family::Request => decode_request(&f).map(|_| ()),
            Family::Response => decode_response(&f).map(|_| ()),
        };
        TRACK.with(|t| t.set(false));
        let largest = LARGEST.load(Ordering::Relaxed);
        assert!(r.is_err(), "{family:?} frame {f:?} accepted");
        assert!(
            largest <= f.len() + 1024,
            "{family:?}: allocated {largest} bytes"
        );
    }
}
