//! The task market of a node: the `shoal-protocol` auction owner and bidder
//! driven by real messages, a real clock and the durable task ledger, an
//! executor with a fixed number of task slots, and the placement policies
//! the testnet compares.
//!
//! * [`auction`]: one task ([`auction::MarketLoop`]) owns the [`Owner`],
//!   the [`Bidder`], the [`PeerEstimates`] and the in-memory ledger. It is
//!   fed by the network loop (auction requests, pings, status gossip), the
//!   API (submissions) and the executor (finished runs), and ticks every
//!   50 ms. The owner state and the ledger rows it touched are written in
//!   one redb transaction before anything the owner asked for is sent, so
//!   `kill -9` never loses an acknowledged task nor commits one twice.
//! * [`executor`]: the task kinds (`train`, `evaluate`, `predict`,
//!   `select`) over data blobs with `shoal-learn`.
//! * [`tasks`]: request, parameter and ledger types.
//! * [`api`]: `POST /v1/tasks`, `GET /v1/tasks`, `GET /v1/tasks/{id}`.
//!
//! A task's parameters (model spec, ...) travel as its first input blob,
//! held by the owner, so the wire `TaskSpec` is unchanged; workers fetch
//! inputs over request-response in verified chunks. A run fetches the
//! inputs its node lacks before it takes a slot, while it waits for one (4
//! runs fetch at once; fetched inputs waiting for a slot hold at most the
//! blob budget in memory), so a slot never sits idle during a transfer.
//!
//! [`Owner`]: shoal_protocol::Owner
//! [`Bidder`]: shoal_protocol::Bidder
//! [`PeerEstimates`]: shoal_protocol::PeerEstimates

pub mod api;
pub mod auction;
pub mod executor;
pub mod tasks;

use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use libp2p::PeerId;
use serde::Serialize;
use shoal_protocol::{NodeStatus, Request};
use tokio::sync::{mpsc, oneshot, watch};

pub use auction::spawn;
use tasks::TaskRecord;

/// Where a node places the tasks it owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Placement {
    /// Sealed-bid auction among the best candidates (the protocol's rule).
    #[default]
    Auction,
    /// Always run here.
    Local,
    /// A uniformly random node (this one included).
    Random,
    /// The next node in id order (this one included).
    RoundRobin,
    /// The node with the fewest busy or queued slots, from status gossip
    /// plus what this node assigned since.
    LeastLoaded,
    /// The node holding the most input bytes (as Ray's locality-aware
    /// scheduling), the least loaded when no candidate holds any.
    DataLocality,
}

impl Placement {
    /// Name as in config and flags.
    pub fn name(self) -> &'static str {
        match self {
            Placement::Auction => "auction",
            Placement::Local => "local",
            Placement::Random => "random",
            Placement::RoundRobin => "round_robin",
            Placement::LeastLoaded => "least_loaded",
            Placement::DataLocality => "data_locality",
        }
    }
}

impl FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auction" => Placement::Auction,
            "local" => Placement::Local,
            "random" => Placement::Random,
            "round_robin" | "round-robin" => Placement::RoundRobin,
            "least_loaded" | "least-loaded" => Placement::LeastLoaded,
            "data_locality" | "data-locality" => Placement::DataLocality,
            other => {
                return Err(format!(
                    "placement `{other}`: use auction, local, random, round_robin, least_loaded or data_locality"
                ))
            }
        })
    }
}

/// Settings of the market.
#[derive(Debug, Clone)]
pub struct MarketConfig {
    /// Tasks that run at once here.
    pub task_slots: u16,
    /// Placement policy for tasks this node owns.
    pub placement: Placement,
    /// Largest input or result blob accepted, bytes.
    pub blob_budget_bytes: u64,
}

/// What the network loop tells the market.
#[derive(Debug)]
pub enum NetEvent {
    /// An auction request (announce, bid, award, ack, heartbeat, result,
    /// cancel) from an authenticated peer.
    Request { peer: PeerId, request: Request },
    /// A ping round trip.
    Ping { peer: PeerId, rtt: Duration },
    /// A status gossip message (its author was checked).
    Status { peer: PeerId, status: NodeStatus },
}

/// Handed to the network loop ([`crate::net::Client::set_market`]).
#[derive(Clone)]
pub struct MarketHook {
    /// Bounded; the network loop answers `Busy` when it is full.
    pub events: mpsc::Sender<NetEvent>,
    /// Task slots offered.
    pub slots: u16,
    /// Tasks accepted here and not finished (running or queued).
    pub load: Arc<AtomicUsize>,
}

impl MarketHook {
    /// Slots not taken by running or queued tasks.
    pub fn free_slots(&self) -> u16 {
        let load = self.load.load(Ordering::Relaxed);
        self.slots
            .saturating_sub(u16::try_from(load).unwrap_or(u16::MAX))
    }
}

/// Counters for `GET /v1/status`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct MarketCounts {
    /// Placement policy.
    pub placement: String,
    pub task_slots: u16,
    /// Tasks running or queued here (own and leased from peers).
    pub load: usize,
    /// Tasks owned here, by state.
    pub submitted: u64,
    pub committed: u64,
    pub failed: u64,
    pub active: u64,
    /// Leases taken for peers' tasks.
    pub leases_taken: u64,
    /// Bids sent for peers' tasks.
    pub bids_sent: u64,
    /// Runs that finished here.
    pub runs_done: u64,
    /// Bytes fetched for task inputs and results.
    pub bytes_fetched: u64,
    /// Duplicate-execution counters of the owner (lease expiries,
    /// fallbacks, local restarts, stale results).
    pub lease_expiries: u64,
    pub fallbacks: u64,
    pub local_restarts: u64,
    pub stale_results: u64,
}

/// A prepared submission: everything but the id.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub kind: shoal_protocol::TaskKind,
    pub inputs: Vec<shoal_protocol::BlobRef>,
    pub params_blob: shoal_protocol::Hash,
    pub input_bytes: u64,
    pub deadline_ms: u64,
    pub cost_factor: u64,
}

/// Why the market refused a submission.
#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("the market is shutting down")]
    Gone,
    #[error("the owner refused: {0}")]
    Refused(String),
    #[error("storage: {0}")]
    Store(String),
}

pub(crate) enum Cmd {
    Submit {
        tasks: Vec<Prepared>,
        reply: oneshot::Sender<Result<Vec<TaskRecord>, MarketError>>,
    },
}

/// Cheap handle to the market loop.
#[derive(Clone)]
pub struct MarketClient {
    tx: mpsc::Sender<Cmd>,
    counts: watch::Receiver<MarketCounts>,
    hook: MarketHook,
}

impl MarketClient {
    /// Submits tasks; they are durable in the ledger when this returns Ok.
    pub async fn submit(&self, tasks: Vec<Prepared>) -> Result<Vec<TaskRecord>, MarketError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Submit { tasks, reply })
            .await
            .map_err(|_| MarketError::Gone)?;
        rx.await.map_err(|_| MarketError::Gone)?
    }

    /// Current counters.
    pub fn counts(&self) -> MarketCounts {
        self.counts.borrow().clone()
    }

    /// The hook to hand to the network loop.
    pub fn hook(&self) -> MarketHook {
        self.hook.clone()
    }
}
