//! `shoal-protocol`: the wire messages of the Shoal mesh, their codec, and the
//! *sans-IO* state machines that decide who runs what and whom to merge from.
//!
//! Nothing here touches a socket, a clock or an async runtime. Time is an
//! argument ([`Millis`]), peers are opaque [`NodeId`]s, and state machines
//! return [`Action`]s for the driver (the node's event loop or the simulator)
//! to perform. The node maps libp2p `PeerId`s to `NodeId::from_bytes`, the
//! simulator uses `NodeId::from_u64`.
//!
//! What is where:
//!
//! * [`msg`]: [`GossipMessage`] (digests on gossipsub), [`Request`] and
//!   [`Response`] (request-response), and their payload types.
//! * [`codec`]: [`encode`] / [`decode_gossip`] / [`decode_request`] /
//!   [`decode_response`], per-kind size limits checked before decoding,
//!   [`DecodeError`], the protocol ids ([`PROTOCOL_REQ`], [`TOPIC_STATUS`],
//!   [`TOPIC_MODEL`]) and [`check_version`].
//! * [`blob`]: chunked transfer with BLAKE3: [`Manifest`], [`chunk_of`],
//!   [`BlobAssembler`].
//! * [`bounded`]: the length-bounded collections every message uses.
//!
//! State machines (inputs: a message or a timer, plus `now`; output: a
//! `Vec<Action>`; each emits [`Action::SetTimer`] when its next wake-up
//! changes, replacing the previous one):
//!
//! * [`PeerEstimates`]: RTT, bandwidth per direction, speed per task kind.
//! * [`Owner`]: the auction, leases with epochs, re-auction, exactly-once
//!   commit. `serde`, so the node persists it and [`Owner::resume`]s it.
//! * [`Bidder`]: prices tasks, holds leases, heartbeats, delivers results.
//! * [`MergeScheduler`]: when to announce our model and whom to pull from.
//!
//! Driving them, in the node or the simulator:
//!
//! ```no_run
//! use shoal_protocol::*;
//!
//! let me = NodeId::from_u64(1);
//! let est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
//! let mut owner = Owner::new(me, OwnerConfig::default());
//! let spec = TaskSpec {
//!     id: TaskId::derive(&me, 0),
//!     owner: me,
//!     kind: TaskKind::Train,
//!     inputs: BoundedVec::new(),
//!     compute_cost: 5_000,
//!     memory_bytes: 64 << 20,
//!     output_bytes: 1_000,
//!     deadline_in_ms: 60_000,
//! };
//! let now = Millis(0);
//! for action in owner.submit(spec, now, &est)? {
//!     match action {
//!         Action::Send { to, msg } => { let _frame = encode(&msg)?; /* send to `to` */ }
//!         Action::StartLocal { task, epoch } => { /* run it, then owner.on_local_done(..) */ }
//!         Action::Commit { task, output, .. } => { /* persist with owner.encode_state() */ }
//!         Action::SetTimer { at } => { /* call owner.on_tick(at, &est) then */ }
//!         _ => {}
//!     }
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Size limits and the full message table are in `docs/protocol.md`.
//!
//! ```no_run
//! use shoal_protocol::{
//!     chunk_of, decode_request, encode, BlobAssembler, Hash, Manifest, Request, Response,
//! };
//!
//! // Serving side: a blob is named by its manifest's root hash.
//! let body = vec![7u8; 200_000];
//! let manifest = Manifest::of(&body)?;
//! let root = manifest.root();
//!
//! // Requesting side: frames are version byte + postcard, limits enforced.
//! let frame = encode(&Request::ChunkFetch { hash: root, index: 0 })?;
//! let Request::ChunkFetch { hash, index } = decode_request(&frame)? else { unreachable!() };
//! let reply = Response::Chunk(chunk_of(&body, hash, index).expect("in range"));
//!
//! // Receiving side: verify the manifest against the root, then each chunk.
//! let mut asm = BlobAssembler::new(root, manifest, 1 << 20)?;
//! if let Response::Chunk(c) = reply {
//!     asm.insert(&c)?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod action;
pub mod bidder;
pub mod blob;
pub mod bounded;
pub mod codec;
pub mod estimates;
pub mod fuzzing;
pub mod merge;
pub mod msg;
pub mod owner;
pub mod types;

pub use action::{Action, FailReason};
pub use bidder::{BidContext, Bidder, BidderConfig, BidderStats, NoBid};
pub use blob::{
    chunk_count, chunk_of, BlobAssembler, BlobError, Manifest, Progress, CHUNK_SIZE,
    MAX_BLOB_BYTES, MAX_CHUNKS,
};
pub use bounded::{BoundedBytes, BoundedString, BoundedVec, CapacityError};
pub use codec::{
    check_version, decode, decode_gossip, decode_request, decode_response, encode, peek_kind,
    DecodeError, EncodeError, Family, MessageKind, WireMessage, IDENTIFY_PROTOCOL_VERSION,
    MAX_GOSSIP_BYTES, MAX_REQUEST_BYTES, MAX_RESPONSE_BYTES, PROTOCOL_REQ, TOPIC_MODEL,
    TOPIC_STATUS, WIRE_VERSION,
};
pub use estimates::{Direction, EstimatesConfig, PeerEstimates, PeerRef};
pub use merge::{MergeConfig, MergeScheduler, MergeStats, PullOutcome};
pub use msg::{
    Addr, Bid, BlobRef, CancelReason, Chunk, GossipMessage, ModelDigest, ModelKind, NodeStatus,
    RejectReason, Request, Response, SpeedClass, TaskKind, TaskOutput, TaskResult, TaskSpec,
};
pub use owner::{bid_score, Owner, OwnerConfig, OwnerStats, Phase, SubmitError};
pub use types::{Epoch, Hash, Millis, NodeId, NodeIdError, TaskId, MAX_NODE_ID_LEN};
