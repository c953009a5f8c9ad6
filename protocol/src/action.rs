//! What the state machines ask the node (or the simulator) to do.

use serde::{Deserialize, Serialize};

use crate::msg::{GossipMessage, ModelDigest, Request, TaskOutput, TaskSpec};
use crate::types::{Epoch, Millis, NodeId, TaskId};

/// An effect requested by a state machine. The driver performs them in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a request to one peer (its response is not needed by the machine).
    Send {
        /// Destination.
        to: NodeId,
        /// Message.
        msg: Request,
    },
    /// Publish on gossip ([`GossipMessage::topic`]).
    Broadcast {
        /// Message.
        msg: GossipMessage,
    },
    /// Run `task` on this node under lease `epoch`; report with
    /// `on_local_done` / `on_local_failed` of the machine that asked.
    StartLocal {
        /// The task.
        task: TaskSpec,
        /// Epoch it runs under.
        epoch: Epoch,
    },
    /// Stop running `task` locally (superseded, cancelled or past deadline).
    Abort {
        /// Task.
        task: TaskId,
        /// Epoch that was running.
        epoch: Epoch,
    },
    /// The task's result is final. Emitted exactly once per task; the node
    /// must persist it together with the owner state that emitted it.
    Commit {
        /// Task.
        task: TaskId,
        /// Epoch the result was computed under.
        epoch: Epoch,
        /// Who computed it.
        by: NodeId,
        /// The output.
        output: TaskOutput,
    },
    /// The task failed for good. Emitted at most once per task, never
    /// together with `Commit`.
    Fail {
        /// Task.
        task: TaskId,
        /// Why.
        reason: FailReason,
    },
    /// Fetch and merge `digest` from `from` (model manifest, then chunks);
    /// report with [`MergeScheduler::on_pull_done` (merge module)].
    FetchModel {
        /// Peer to pull from.
        from: NodeId,
        /// What to pull.
        digest: ModelDigest,
    },
    /// Call the machine's `on_tick` at (or soon after) `at`.
    SetTimer {
        /// When.
        at: Millis,
    },
}

/// Why a task failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FailReason {
    /// The deadline passed without a result.
    DeadlineExceeded,
    /// The owner's own attempt failed and no time is left to retry.
    ExecutionFailed,
    /// The owner cancelled it ([`Owner::cancel` (auction owner)]).
    Cancelled,
}

impl std::fmt::Display for FailReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            FailReason::DeadlineExceeded => "deadline exceeded",
            FailReason::ExecutionFailed => "execution failed",
            FailReason::Cancelled => "cancelled",
        })
    }
}
