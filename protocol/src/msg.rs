//! Wire messages.
//!
//! Three families, each with its own decoder and transport:
//!
//! * [`GossipMessage`]: small digests published on gossipsub topics
//!   ([`crate::codec::TOPIC_STATUS`], [`crate::codec::TOPIC_MODEL`]).
//! * [`Request`]: directed messages over request-response
//!   ([`crate::codec::PROTOCOL_REQ`]): the auction, leases, results and
//!   fetches of manifests and chunks.
//! * [`Response`]: the answer to each request. Auction messages are answered
//!   with [`Response::Ack`]; the auction itself is driven by further requests
//!   (a bid is a request from bidder to owner), so no state machine ever waits
//!   on a response.
//!
//! Durations are relative (`*_ms` fields): two nodes' clocks do not agree,
//! so absolute times never travel.

use serde::{Deserialize, Serialize};

use crate::blob::{Manifest, CHUNK_SIZE};
use crate::bounded::{BoundedBytes, BoundedString, BoundedVec};
use crate::types::{Epoch, Hash, NodeId, TaskId};

/// At most this many listen addresses in a status message.
pub const MAX_ADDRS: usize = 8;
/// Longest listen address (multiaddr as text), in bytes.
pub const MAX_ADDR_LEN: usize = 256;
/// Longest model kind name (`"hoeffding-tree"`), in bytes.
pub const MAX_MODEL_KIND_LEN: usize = 32;
/// At most this many input blobs per task.
pub const MAX_INPUTS: usize = 16;
/// At most this many holders listed per input blob.
pub const MAX_HOLDERS: usize = 8;
/// Largest result carried inline in [`TaskResult`]; larger results are
/// stored as a blob and referenced by hash.
pub const MAX_INLINE_RESULT: usize = 32 * 1024;

/// Name of a model family/kind, e.g. `"naive-bayes"`, `"hoeffding-tree"`.
pub type ModelKind = BoundedString<MAX_MODEL_KIND_LEN>;
/// A listen address as text (a multiaddr).
pub type Addr = BoundedString<MAX_ADDR_LEN>;

/// Coarse device speed. The market learns real speeds from runtimes
/// ([`crate::PeerEstimates`]); the class only seeds the prior.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SpeedClass {
    /// Microcontroller-class or Pi Zero.
    Embedded,
    /// Raspberry Pi 4/5 class.
    Small,
    /// Laptop/desktop.
    Desktop,
    /// Server.
    Server,
}

impl SpeedClass {
    /// Prior compute speed relative to the reference device (a Pi 4 = 1.0),
    /// in cost units per millisecond.
    pub fn nominal_speed(self) -> f64 {
        match self {
            SpeedClass::Embedded => 0.25,
            SpeedClass::Small => 1.0,
            SpeedClass::Desktop => 4.0,
            SpeedClass::Server => 8.0,
        }
    }
}

/// Digest of a model snapshot: enough to decide whether to pull it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelDigest {
    /// Model family/kind; only the same kind merges.
    pub kind: ModelKind,
    /// The publisher's monotonically increasing snapshot version.
    pub version: u64,
    /// Root hash of the snapshot blob (fetch it with [`Request::ModelFetch`]).
    pub hash: Hash,
    /// Snapshot size in bytes.
    pub size: u64,
    /// Samples the model has learned from.
    pub samples: u64,
    /// Prequential accuracy in basis points (0..=10000). Integer so that a
    /// hostile NaN cannot poison sorting.
    pub accuracy_bp: u16,
}

/// A node's periodic status/capabilities, published on
/// [`crate::codec::TOPIC_STATUS`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The publisher (must match the gossip source; the node checks).
    pub node: NodeId,
    /// Device speed class.
    pub speed_class: SpeedClass,
    /// Memory available to tasks, bytes.
    pub memory_bytes: u64,
    /// Memory not reserved by current leases, bytes.
    pub free_memory_bytes: u64,
    /// Task slots in total.
    pub task_slots: u16,
    /// Task slots not in use.
    pub free_slots: u16,
    /// The current model, if any.
    pub model: Option<ModelDigest>,
    /// Samples seen from the local stream.
    pub samples_seen: u64,
    /// Prequential accuracy in basis points.
    pub accuracy_bp: u16,
    /// Where the node listens (multiaddrs as text).
    pub listen_addrs: BoundedVec<Addr, MAX_ADDRS>,
}

/// Gossip: small digests, published to everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// Status and capabilities.
    Status(NodeStatus),
    /// A new model snapshot is available.
    ModelAnnounce {
        /// Publisher.
        node: NodeId,
        /// What is available.
        digest: ModelDigest,
    },
}

/// What a task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum TaskKind {
    /// Train a model on the inputs.
    Train,
    /// Evaluate a model on the inputs.
    Evaluate,
    /// Predict for the inputs.
    Predict,
    /// One model-selection trial.
    Select,
}

impl TaskKind {
    /// All kinds, for iteration.
    pub const ALL: [TaskKind; 4] = [
        TaskKind::Train,
        TaskKind::Evaluate,
        TaskKind::Predict,
        TaskKind::Select,
    ];
}

/// An input blob of a task and who holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobRef {
    /// Root hash of the blob.
    pub hash: Hash,
    /// Size in bytes.
    pub size: u64,
    /// Nodes known to hold it.
    pub holders: BoundedVec<NodeId, MAX_HOLDERS>,
}

/// Everything a bidder needs to price and run a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSpec {
    /// Task id.
    pub id: TaskId,
    /// The node that owns the task and commits its result.
    pub owner: NodeId,
    /// What to do.
    pub kind: TaskKind,
    /// Input blobs.
    pub inputs: BoundedVec<BlobRef, MAX_INPUTS>,
    /// Compute cost in reference-milliseconds: the runtime on a device of
    /// speed 1.0 ([`SpeedClass::Small`]).
    pub compute_cost: u64,
    /// Peak memory the task needs, bytes.
    pub memory_bytes: u64,
    /// Estimated output size, bytes.
    pub output_bytes: u64,
    /// Time left until the deadline when the message was sent, ms.
    pub deadline_in_ms: u64,
}

/// A task's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskOutput {
    /// Small outputs travel inline.
    Inline(BoundedBytes<MAX_INLINE_RESULT>),
    /// Larger ones are a blob the owner fetches.
    Blob {
        /// Root hash.
        hash: Hash,
        /// Size in bytes.
        size: u64,
    },
}

/// Why an owner tells a worker to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CancelReason {
    /// A result was committed (also the acknowledgement of a result).
    Committed,
    /// The lease moved on to a newer epoch.
    Superseded,
    /// The task failed (deadline) or the owner gave up on it.
    Failed,
}

/// A sealed bid. The times are the bidder's own estimates, in ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bid {
    /// Task bid on.
    pub task: TaskId,
    /// Auction round bid in.
    pub epoch: Epoch,
    /// Bidder.
    pub bidder: NodeId,
    /// Wait for a free slot.
    pub wait_ms: u64,
    /// Compute time.
    pub compute_ms: u64,
    /// Time to fetch missing inputs.
    pub transfer_in_ms: u64,
    /// Time to send the output to the owner.
    pub transfer_out_ms: u64,
    /// Bytes the bidder would move over the network (missing inputs + output).
    pub non_local_bytes: u64,
}

impl Bid {
    /// Estimated completion time, ms (saturating): the inputs are
    /// fetched while the task waits for a slot, then it computes and sends
    /// its output back.
    pub fn total_ms(&self) -> u64 {
        self.wait_ms
            .max(self.transfer_in_ms)
            .saturating_add(self.compute_ms)
            .saturating_add(self.transfer_out_ms)
    }
}

/// Result of a task, tagged with the lease epoch it was computed under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskResult {
    /// Task.
    pub task: TaskId,
    /// Epoch of the lease.
    pub epoch: Epoch,
    /// Output.
    pub output: TaskOutput,
}

/// Directed messages (request-response, [`crate::codec::PROTOCOL_REQ`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Request {
    /// Owner → candidate: call for bids on `spec` in round `epoch`.
    TaskAnnounce {
        /// The task.
        spec: TaskSpec,
        /// Auction round.
        epoch: Epoch,
        /// Bids must arrive within this many ms.
        bid_window_ms: u64,
    },
    /// Candidate → owner.
    Bid(Bid),
    /// Owner → winner: lease the task for `lease_ms`, renewed by heartbeats.
    /// Carries the spec again so a winner that lost the announce can run it.
    Award {
        /// The task.
        spec: TaskSpec,
        /// Epoch of the lease.
        epoch: Epoch,
        /// Lease length; a heartbeat renews it.
        lease_ms: u64,
    },
    /// Winner → owner: the award was taken (`accepted`) or declined.
    AwardAck {
        /// Task.
        task: TaskId,
        /// Epoch of the award.
        epoch: Epoch,
        /// false: the winner can no longer run it.
        accepted: bool,
    },
    /// Leaseholder → owner: still working; renews the lease.
    Heartbeat {
        /// Task.
        task: TaskId,
        /// Epoch of the lease.
        epoch: Epoch,
        /// Progress in permille (0..=1000).
        progress_permille: u16,
    },
    /// Leaseholder → owner. Repeated until the owner answers with
    /// [`Request::Cancel`] (reason `Committed`).
    Result(TaskResult),
    /// Owner → worker: stop working on `task` for every epoch up to `epoch`.
    Cancel {
        /// Task.
        task: TaskId,
        /// Newest epoch the cancel applies to.
        epoch: Epoch,
        /// Why.
        reason: CancelReason,
    },
    /// Ask for the manifest of a model snapshot announced by digest.
    ModelFetch {
        /// Root hash from the [`ModelDigest`].
        hash: Hash,
    },
    /// Ask for the manifest of any blob.
    ManifestFetch {
        /// Root hash.
        hash: Hash,
    },
    /// Ask for one chunk of a blob (model snapshot or data).
    ChunkFetch {
        /// Root hash of the blob.
        hash: Hash,
        /// Chunk index, from 0.
        index: u32,
    },
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RejectReason {
    /// Too many requests or transfers in flight.
    Busy,
    /// The task or lease is unknown here.
    UnknownTask,
    /// The request is not supported by this node.
    Unsupported,
    /// The request was malformed or violated a limit.
    Invalid,
}

/// One chunk of a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Root hash of the blob.
    pub hash: Hash,
    /// Chunk index.
    pub index: u32,
    /// The bytes (all chunks but the last are exactly [`CHUNK_SIZE`]).
    pub data: BoundedBytes<CHUNK_SIZE>,
}

/// Answers to [`Request`]s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Received (auction messages).
    Ack,
    /// Refused.
    Rejected {
        /// Why.
        reason: RejectReason,
    },
    /// The blob or model is not held here.
    NotFound {
        /// What was asked for.
        hash: Hash,
    },
    /// Answer to [`Request::ManifestFetch`].
    Manifest(Manifest),
    /// Answer to [`Request::ModelFetch`].
    ModelManifest {
        /// The model's digest.
        digest: ModelDigest,
        /// Its manifest.
        manifest: Manifest,
    },
    /// Answer to [`Request::ChunkFetch`].
    Chunk(Chunk),
}
