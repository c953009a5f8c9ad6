//! The task owner's side of the market: announce, collect sealed bids, award
//! a lease, watch it, re-auction, commit exactly one result.
//!
//! ```text
//!  submit ──► Bidding ──window closes──► Awarding ──ack──► Leased ──result──► Committed
//!               │  no usable bid            │ no ack / declined   │ lease expired
//!               ▼                           ▼ (runner-up)         ▼ (epoch + 1)
//!          Local or Backoff            Awarding / Bidding       Bidding
//!   any non-terminal phase ──deadline──► Failed
//! ```
//!
//! Every announce and every award takes a fresh, larger [`Epoch`]. A lease is
//! `(task, epoch, holder)`; only a result carrying the current epoch *from the
//! current holder* commits. Anything older is answered with a `Cancel`, so
//! duplicate executions (possible when a partitioned holder keeps working
//! after its lease was given away) never produce a second commit; they are
//! counted in [`OwnerStats::lease_expiries`] and [`OwnerStats::stale_results`].
//!
//! The whole [`Owner`] is `serde`: the node persists it (in the same
//! transaction as any `Commit`/`Fail` it emitted) and after a crash calls
//! [`Owner::resume`] on the restored value.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::{Action, FailReason};
use crate::estimates::{Direction, PeerEstimates};
use crate::msg::{Bid, CancelReason, Request, TaskOutput, TaskResult, TaskSpec};
use crate::types::{Epoch, Millis, NodeId, TaskId};

/// Tuning of an [`Owner`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OwnerConfig {
    /// Candidates invited per auction (top-k by estimates).
    pub fanout: usize,
    /// How long bids are collected, ms.
    pub bid_window_ms: u64,
    /// How long a winner has to acknowledge an award, ms.
    pub ack_timeout_ms: u64,
    /// How often an unacknowledged award is re-sent, ms.
    pub award_resend_ms: u64,
    /// Lease length; every heartbeat renews it. Should be a few heartbeat
    /// intervals of the bidders.
    pub lease_ms: u64,
    /// Weight of non-local bytes in the score (see [`bid_score`]). The
    /// default, 20, prices a megabyte moved at 20 s at the 1 MB/s reference
    /// bandwidth: more than its transfer time, because a transfer also
    /// takes uplink share and energy from everyone on the path, which its
    /// own time does not show. Swept in the simulator at 200 nodes
    /// (docs/market.md): against 10, 5-11 % fewer bytes for 1-2 s more
    /// mean completion; past 30 the bytes fall slowly while the queues at
    /// the data grow (lan at load 0.6: 1.49x data_locality's bytes and
    /// 7.1 s at 30, 1.35x and 32.2 s at 200).
    pub lambda: f64,
    /// Bandwidth that converts bytes into ms in the score, bytes per ms.
    pub reference_bandwidth: f64,
    /// Pause before re-auctioning when nobody bid, ms.
    pub retry_backoff_ms: u64,
    /// Run a task here when nobody bids and the deadline allows.
    pub run_locally: bool,
    /// Tasks held at most (active and recently finished).
    pub max_tasks: usize,
    /// How long a finished task is remembered to answer late results, ms.
    pub tombstone_ms: u64,
}

impl Default for OwnerConfig {
    fn default() -> Self {
        OwnerConfig {
            fanout: 4,
            bid_window_ms: 500,
            ack_timeout_ms: 1_500,
            award_resend_ms: 400,
            lease_ms: 4_000,
            lambda: 20.0,
            reference_bandwidth: 1000.0,
            retry_backoff_ms: 2_000,
            run_locally: true,
            max_tasks: 1024,
            tombstone_ms: 600_000,
        }
    }
}

/// Peers past the best by estimate among which the remaining invitations
/// of an auction are drawn at random (see `Owner::candidates`). Measured in
/// the simulator (docs/market.md): on a 1000-node LAN the auction's mean
/// completion went from 19.2 s to 3.6 s against inviting the top four.
pub const EXPLORE_POOL: usize = 32;

/// A direct award (see `Owner::direct_holder`) needs the holder's estimate
/// to beat every other invitee's floor this many times over, so that a
/// queue the owner cannot see (its last status is seconds old) would not
/// have changed the winner either.
pub const DIRECT_MARGIN: f64 = 5.0;

/// A status older than this does not show a peer free for a direct award.
pub const DIRECT_FRESH_MS: u64 = 15_000;

/// A small deterministic random stream (SplitMix64) seeded by the owner,
/// the task and the time: the state machine stays a pure function of its
/// inputs.
struct Draw(u64);

impl Draw {
    fn new(me: &NodeId, task: TaskId, now: Millis) -> Draw {
        let mut seed = 0x5151_7a1e_u64;
        for b in me.as_bytes() {
            seed = seed.rotate_left(8) ^ u64::from(*b);
            seed = Draw::mix(seed);
        }
        seed ^= Draw::mix(task.0 as u64) ^ Draw::mix((task.0 >> 64) as u64 ^ now.0);
        Draw(seed)
    }

    fn mix(mut z: u64) -> u64 {
        z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0; the modulo bias is negligible here).
    fn below(&mut self, n: usize) -> usize {
        self.0 = Draw::mix(self.0);
        (self.0 % n.max(1) as u64) as usize
    }
}

/// Score of a bid; lower wins: `bid_time + lambda * non_local_bytes / reference_bandwidth`.
pub fn bid_score(bid: &Bid, cfg: &OwnerConfig) -> f64 {
    bid.total_ms() as f64
        + cfg.lambda * bid.non_local_bytes as f64 / cfg.reference_bandwidth.max(1e-9)
}

/// Counters an operator (and the simulator) cares about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerStats {
    /// Tasks accepted by [`Owner::submit`].
    pub submitted: u64,
    /// Tasks committed.
    pub committed: u64,
    /// Tasks failed.
    pub failed: u64,
    /// Auction rounds started.
    pub auctions: u64,
    /// Awards made (first choice or runner-up).
    pub awards: u64,
    /// Awards given up for lack of an ack, or declined (then the runner-up
    /// gets it, or a new auction starts). An award whose ack was lost may
    /// have started a run: a possible duplicate execution.
    pub fallbacks: u64,
    /// Leases that expired: the holder may still be running, so each one is
    /// a possible duplicate execution.
    pub lease_expiries: u64,
    /// Local runs started.
    pub local_runs: u64,
    /// Local runs restarted by [`Owner::resume`] (a duplicate execution).
    pub local_restarts: u64,
    /// Results ignored because of an old epoch or a non-leaseholder sender.
    pub stale_results: u64,
    /// Results that arrived again after the commit (answered, not applied).
    pub duplicate_results: u64,
}

/// Where a task is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Phase {
    /// Collecting bids until `until`.
    Bidding {
        /// Bid window end.
        until: Millis,
        /// Candidates asked.
        invited: Vec<NodeId>,
        /// Bids received.
        bids: Vec<Bid>,
    },
    /// Awarded to `to`, waiting for the ack.
    Awarding {
        /// Winner.
        to: NodeId,
        /// Give up on the ack at.
        ack_by: Millis,
        /// Re-send the award at.
        resend_at: Millis,
        /// Remaining bids, best first.
        runners: Vec<Bid>,
    },
    /// `holder` is running it.
    Leased {
        /// Leaseholder.
        holder: NodeId,
        /// Lease expiry (renewed by heartbeats).
        expiry: Millis,
    },
    /// Running on this node.
    Local,
    /// Nobody bid; next auction at `until`.
    Backoff {
        /// When to retry.
        until: Millis,
    },
    /// Done: result committed.
    Committed {
        /// Who computed it.
        by: NodeId,
        /// Under which epoch.
        epoch: Epoch,
        /// When.
        at: Millis,
    },
    /// Done: failed.
    Failed {
        /// Why.
        reason: FailReason,
        /// When.
        at: Millis,
    },
}

impl Phase {
    /// Committed or failed.
    pub fn is_terminal(&self) -> bool {
        matches!(self, Phase::Committed { .. } | Phase::Failed { .. })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    spec: TaskSpec,
    deadline: Millis,
    epoch: Epoch,
    phase: Phase,
}

/// Why [`Owner::submit`] refused a task.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubmitError {
    /// The spec names another owner.
    #[error("task {task} names owner {owner}, not this node")]
    NotOwner {
        /// Task.
        task: TaskId,
        /// Owner in the spec.
        owner: NodeId,
    },
    /// The id is already in use.
    #[error("task {0} already submitted")]
    Duplicate(TaskId),
    /// Too many tasks held.
    #[error("owner holds {0} tasks, the limit")]
    Full(usize),
}

/// The owner state machine for all tasks this node owns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Owner {
    me: NodeId,
    cfg: OwnerConfig,
    tasks: BTreeMap<TaskId, Entry>,
    stats: OwnerStats,
    // Not persisted: after a restore the timer must be set again anyway.
    #[serde(skip)]
    last_timer: Option<Millis>,
}

impl Owner {
    /// An owner with no tasks.
    pub fn new(me: NodeId, cfg: OwnerConfig) -> Self {
        Owner {
            me,
            cfg,
            tasks: BTreeMap::new(),
            stats: OwnerStats::default(),
            last_timer: None,
        }
    }

    /// This node.
    pub fn id(&self) -> NodeId {
        self.me
    }

    /// Counters.
    pub fn stats(&self) -> &OwnerStats {
        &self.stats
    }

    /// Phase of `task`, if held.
    pub fn phase(&self, task: &TaskId) -> Option<&Phase> {
        self.tasks.get(task).map(|e| &e.phase)
    }

    /// Current epoch of `task`, if held.
    pub fn epoch(&self, task: &TaskId) -> Option<Epoch> {
        self.tasks.get(task).map(|e| e.epoch)
    }

    /// Tasks not yet committed or failed.
    pub fn active(&self) -> impl Iterator<Item = TaskId> + '_ {
        self.tasks
            .iter()
            .filter(|(_, e)| !e.phase.is_terminal())
            .map(|(id, _)| *id)
    }

    /// Serializes the state for the durable ledger (postcard).
    pub fn encode_state(&self) -> Vec<u8> {
        // Serializing plain data to a Vec cannot fail.
        postcard::to_allocvec(self).unwrap_or_default()
    }

    /// Restores a state written by [`Owner::encode_state`]; call
    /// [`Owner::resume`] next.
    pub fn decode_state(bytes: &[u8]) -> Result<Owner, postcard::Error> {
        postcard::from_bytes(bytes)
    }

    /// The tuning in force.
    pub fn config(&self) -> &OwnerConfig {
        &self.cfg
    }

    /// Replaces the tuning. The tuning is stored with the state; a node
    /// restoring its state applies its current tuning with this, so that a
    /// new default (or a changed setting) takes effect after a restart.
    pub fn reconfigure(&mut self, cfg: OwnerConfig) {
        self.cfg = cfg;
    }

    /// Accepts a new task (`spec.deadline_in_ms` counts from `now`) and
    /// starts its first auction.
    pub fn submit(
        &mut self,
        spec: TaskSpec,
        now: Millis,
        est: &PeerEstimates,
    ) -> Result<Vec<Action>, SubmitError> {
        if spec.owner != self.me {
            return Err(SubmitError::NotOwner {
                task: spec.id,
                owner: spec.owner,
            });
        }
        if self.tasks.contains_key(&spec.id) {
            return Err(SubmitError::Duplicate(spec.id));
        }
        if self.tasks.len() >= self.cfg.max_tasks {
            self.prune_oldest_terminal();
            if self.tasks.len() >= self.cfg.max_tasks {
                return Err(SubmitError::Full(self.tasks.len()));
            }
        }
        let id = spec.id;
        let deadline = now.plus(spec.deadline_in_ms);
        let entry = Entry {
            spec,
            deadline,
            epoch: Epoch(0),
            phase: Phase::Backoff { until: now },
        };
        self.tasks.insert(id, entry);
        self.stats.submitted += 1;
        let mut out = Vec::new();
        self.start_auction(id, now, est, &mut out, true);
        self.set_timer(&mut out);
        Ok(out)
    }

    /// Gives up on `task` (user request).
    pub fn cancel(&mut self, task: TaskId, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        self.fail(task, FailReason::Cancelled, now, &mut out);
        self.set_timer(&mut out);
        out
    }

    /// A request from `from` (an authenticated peer). Only auction traffic
    /// matters here; other requests are ignored.
    pub fn on_request(
        &mut self,
        from: NodeId,
        msg: &Request,
        now: Millis,
        est: &PeerEstimates,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match msg {
            Request::Bid(bid) => self.on_bid(from, bid, now, est, &mut out),
            Request::AwardAck {
                task,
                epoch,
                accepted,
            } => self.on_ack(from, *task, *epoch, *accepted, now, est, &mut out),
            Request::Heartbeat { task, epoch, .. } => {
                self.on_heartbeat(from, *task, *epoch, now, &mut out)
            }
            Request::Result(r) => self.on_result(from, r, now, &mut out),
            _ => {}
        }
        self.set_timer(&mut out);
        out
    }

    /// The local run of `task` under `epoch` finished.
    pub fn on_local_done(
        &mut self,
        task: TaskId,
        epoch: Epoch,
        output: TaskOutput,
        now: Millis,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.check_deadline(task, now, &mut out) {
            if let Some(e) = self.tasks.get(&task) {
                if e.phase == Phase::Local && e.epoch == epoch {
                    let me = self.me;
                    self.commit(task, epoch, me, output, now, &mut out);
                }
            }
        }
        self.set_timer(&mut out);
        out
    }

    /// The local run of `task` under `epoch` failed; retry after a backoff.
    pub fn on_local_failed(&mut self, task: TaskId, epoch: Epoch, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.check_deadline(task, now, &mut out) {
            let backoff = self.cfg.retry_backoff_ms;
            if let Some(e) = self.tasks.get_mut(&task) {
                if e.phase == Phase::Local && e.epoch == epoch {
                    e.phase = Phase::Backoff {
                        until: now.plus(backoff).min(e.deadline),
                    };
                }
            }
        }
        self.set_timer(&mut out);
        out
    }

    /// Fires every timer due at `now`.
    pub fn on_tick(&mut self, now: Millis, est: &PeerEstimates) -> Vec<Action> {
        let mut out = Vec::new();
        // The driver's timer fired (or it polls): always re-arm it.
        self.last_timer = None;
        let ids: Vec<TaskId> = self.tasks.keys().copied().collect();
        for id in ids {
            self.tick_task(id, now, est, &mut out);
        }
        self.set_timer(&mut out);
        out
    }

    /// After a restart from persisted state: re-arms what the crash
    /// interrupted. Leases get a fresh expiry (we could not hear heartbeats
    /// while down), unacknowledged awards are re-sent, and local runs, which
    /// died with the process, start again under a new epoch.
    pub fn resume(&mut self, now: Millis, est: &PeerEstimates) -> Vec<Action> {
        self.last_timer = None;
        let mut out = Vec::new();
        let (lease, ack, resend) = (
            self.cfg.lease_ms,
            self.cfg.ack_timeout_ms,
            self.cfg.award_resend_ms,
        );
        let ids: Vec<TaskId> = self.active().collect();
        for id in ids {
            if self.check_deadline(id, now, &mut out) {
                continue;
            }
            let Some(e) = self.tasks.get_mut(&id) else {
                continue;
            };
            match &mut e.phase {
                Phase::Leased { expiry, .. } => *expiry = (*expiry).max(now.plus(lease)),
                Phase::Awarding {
                    to,
                    ack_by,
                    resend_at,
                    ..
                } => {
                    *ack_by = (*ack_by).max(now.plus(ack));
                    *resend_at = now.plus(resend);
                    let msg = Request::Award {
                        spec: spec_at(&e.spec, e.deadline, now),
                        epoch: e.epoch,
                        lease_ms: lease,
                    };
                    out.push(Action::Send { to: *to, msg });
                }
                Phase::Local => {
                    self.stats.local_restarts += 1;
                    e.epoch = e.epoch.next();
                    out.push(Action::StartLocal {
                        task: spec_at(&e.spec, e.deadline, now),
                        epoch: e.epoch,
                    });
                }
                Phase::Bidding { .. } | Phase::Backoff { .. } => {}
                Phase::Committed { .. } | Phase::Failed { .. } => {}
            }
        }
        out.extend(self.on_tick(now, est));
        self.set_timer(&mut out);
        out
    }

    /// Earliest time `on_tick` has something to do.
    pub fn next_timeout(&self) -> Option<Millis> {
        let tomb = self.cfg.tombstone_ms;
        self.tasks
            .values()
            .map(|e| match &e.phase {
                Phase::Bidding { until, .. } | Phase::Backoff { until } => (*until).min(e.deadline),
                Phase::Awarding {
                    ack_by, resend_at, ..
                } => (*ack_by).min(*resend_at).min(e.deadline),
                Phase::Leased { expiry, .. } => (*expiry).min(e.deadline),
                Phase::Local => e.deadline,
                Phase::Committed { at, .. } | Phase::Failed { at, .. } => at.plus(tomb),
            })
            .min()
    }

    fn set_timer(&mut self, out: &mut Vec<Action>) {
        let next = self.next_timeout();
        if next != self.last_timer {
            self.last_timer = next;
            if let Some(at) = next {
                out.push(Action::SetTimer { at });
            }
        }
    }

    fn prune_oldest_terminal(&mut self) {
        let oldest = self
            .tasks
            .iter()
            .filter_map(|(id, e)| match e.phase {
                Phase::Committed { at, .. } | Phase::Failed { at, .. } => Some((at, *id)),
                _ => None,
            })
            .min();
        if let Some((_, id)) = oldest {
            self.tasks.remove(&id);
        }
    }

    /// Ranks candidates: RTT + compute time at their speed + the inputs they
    /// lack over the link we measured to them. A proxy (we cannot see the
    /// links between them and the holders); their bids price it exactly.
    fn candidates(&self, spec: &TaskSpec, now: Millis, est: &PeerEstimates) -> Vec<NodeId> {
        // Bytes of the task's inputs each peer already holds.
        let held = |p: &NodeId| -> u64 {
            spec.inputs
                .iter()
                .filter(|b| b.holders.contains(p))
                .map(|b| b.size)
                .fold(0u64, u64::saturating_add)
        };
        let total: u64 = spec
            .inputs
            .iter()
            .map(|b| b.size)
            .fold(0u64, u64::saturating_add);
        let mut scored: Vec<(f64, u64, NodeId)> = est
            .peer_refs()
            .filter(|p| p.id() != self.me)
            // A peer without a free slot or the memory free is only worth
            // asking when it holds data: it can queue the task, and its bid
            // then weighs that wait against the transfer.
            .filter_map(|p| {
                let h = held(&p.id());
                let busy = p.free_slots() == Some(0)
                    || p.free_memory().is_some_and(|m| m < spec.memory_bytes);
                if h == 0 && busy {
                    return None;
                }
                let missing = total.saturating_sub(h);
                let s = p.rtt_ms(now)
                    + spec.compute_cost as f64 / p.speed(spec.kind, now)
                    + missing as f64 / p.bandwidth(Direction::Outbound, now);
                Some((s, h, p.id()))
            })
            .collect();
        scored.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.2.cmp(&b.2)));
        // Data gravity: up to half the invitations (at least one) go to the
        // peers holding the most of the inputs, so that the auction always
        // hears from where the data is; the rest go by estimated time.
        let reserved = self.cfg.fanout.div_ceil(2).max(1);
        let mut holders: Vec<&(f64, u64, NodeId)> = scored.iter().filter(|c| c.1 > 0).collect();
        holders.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.total_cmp(&b.0)).then(a.2.cmp(&b.2)));
        let mut out: Vec<NodeId> = holders.iter().take(reserved).map(|c| c.2).collect();
        // Then the best peer by estimate, and the rest drawn at random from
        // the next best. Every owner ranks its peers alike, from statuses
        // seconds old: inviting the same top few from every owner piles
        // the tasks there while faster peers sit idle (the herd effect of
        // stale load information). A random draw spreads the invitations;
        // each invited peer's bid still tells its real wait.
        let mut pool: Vec<NodeId> = scored
            .iter()
            .map(|c| c.2)
            .filter(|p| !out.contains(p))
            .take(EXPLORE_POOL + 1)
            .collect();
        if out.len() < self.cfg.fanout && !pool.is_empty() {
            out.push(pool.remove(0));
        }
        let mut draw = Draw::new(&self.me, spec.id, now);
        while out.len() < self.cfg.fanout && !pool.is_empty() {
            let i = draw.below(pool.len());
            out.push(pool.swap_remove(i));
        }
        out
    }

    /// Starts a round for `id`, or skips it when its outcome is known:
    /// the owner's own quote beats what any candidate could bid, or
    /// (`direct`, a task's first placement only) the holder of all its
    /// data is free and no other candidate could come near it.
    fn start_auction(
        &mut self,
        id: TaskId,
        now: Millis,
        est: &PeerEstimates,
        out: &mut Vec<Action>,
        direct: bool,
    ) {
        let Some(e) = self.tasks.get(&id) else { return };
        let invited = self.candidates(&e.spec, now, est);
        // When the owner's own quote beats what any candidate could bid
        // (see `decided`), asking them would only delay the same outcome.
        let own = own_quote(self.me, &self.cfg, &e.spec, now, est);
        if let Some((score, time_ms)) = own {
            if time_ms <= e.deadline.since(now) && below_floors(score, &invited, &e.spec, &self.cfg)
            {
                self.run_here(id, now, out);
                return;
            }
        }
        if direct {
            if let Some(h) = self.direct_holder(&e.spec, e.deadline, &invited, own, now, est) {
                self.award(id, h, Vec::new(), now, out);
                return;
            }
        }
        if invited.is_empty() {
            self.no_bids(id, now, est, out);
            return;
        }
        let window = self.cfg.bid_window_ms;
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        e.epoch = e.epoch.next();
        self.stats.auctions += 1;
        let spec = spec_at(&e.spec, e.deadline, now);
        for p in &invited {
            out.push(Action::Send {
                to: *p,
                msg: Request::TaskAnnounce {
                    spec: spec.clone(),
                    epoch: e.epoch,
                    bid_window_ms: window,
                },
            });
        }
        e.phase = Phase::Bidding {
            until: now.plus(window),
            invited,
            bids: Vec::new(),
        };
    }

    /// The peer a task can be awarded to without a round: the first
    /// invitee (the one holding the most input bytes) when it holds every
    /// input this node does not (the inputs here, such as a task's
    /// parameters, go to any worker alike), its last status (at most
    /// [`DIRECT_FRESH_MS`] old) shows a free slot and the memory the task
    /// needs, and its estimated score (round trip, the inputs from here,
    /// compute at its speed, the output back, and the bytes of both) is
    /// [`DIRECT_MARGIN`] times below the floor of every other invitee and
    /// below the owner's own quote. The round would only have confirmed
    /// it, a round trip later. If the holder declines or does not answer,
    /// the fallback holds a full round.
    fn direct_holder(
        &self,
        spec: &TaskSpec,
        deadline: Millis,
        invited: &[NodeId],
        own: Option<(f64, u64)>,
        now: Millis,
        est: &PeerEstimates,
    ) -> Option<NodeId> {
        let h = *invited.first()?;
        let mut from_here = 0u64;
        let mut held = false;
        for b in spec.inputs.iter() {
            if b.holders.contains(&h) {
                held = true;
            } else if b.holders.contains(&self.me) {
                from_here = from_here.saturating_add(b.size);
            } else {
                return None;
            }
        }
        if !held
            || est.free_slots(&h)? == 0
            || est.free_memory(&h)? < spec.memory_bytes
            || now.since(est.status_at(&h)?) > DIRECT_FRESH_MS
        {
            return None;
        }
        let time = est.transfer_ms(&h, Direction::Outbound, from_here, now)
            + spec.compute_cost as f64 / est.speed(&h, spec.kind, now)
            + est.transfer_ms(&h, Direction::Inbound, spec.output_bytes, now);
        if !time.is_finite() || time > deadline.since(now) as f64 {
            return None;
        }
        let moved = from_here.saturating_add(spec.output_bytes);
        let score = time + self.cfg.lambda * moved as f64 / self.cfg.reference_bandwidth.max(1e-9);
        let guarded = score * DIRECT_MARGIN;
        if own.is_some_and(|(own, _)| own <= guarded) {
            return None;
        }
        below_floors(guarded, invited.iter().skip(1), spec, &self.cfg).then_some(h)
    }

    fn no_bids(&mut self, id: TaskId, now: Millis, est: &PeerEstimates, out: &mut Vec<Action>) {
        let (run_locally, backoff) = (self.cfg.run_locally, self.cfg.retry_backoff_ms);
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        let local_ms = (e.spec.compute_cost as f64 / est.local_speed(e.spec.kind, now)).ceil();
        if run_locally && now.0 as f64 + local_ms <= e.deadline.0 as f64 {
            self.run_here(id, now, out);
        } else {
            // Nobody can do it now; try again later, and fail at the deadline.
            e.phase = Phase::Backoff {
                until: now.plus(backoff).min(e.deadline),
            };
        }
    }

    fn on_bid(
        &mut self,
        from: NodeId,
        bid: &Bid,
        now: Millis,
        est: &PeerEstimates,
        out: &mut Vec<Action>,
    ) {
        if bid.bidder != from || self.check_deadline(bid.task, now, out) {
            return;
        }
        let Some(e) = self.tasks.get_mut(&bid.task) else {
            return;
        };
        let Phase::Bidding { invited, bids, .. } = &mut e.phase else {
            return;
        };
        // Sealed bids answer an invitation: uninvited, late-epoch or repeated
        // bids are dropped, which also bounds `bids` by the fanout.
        if bid.epoch != e.epoch || !invited.contains(&from) || bids.iter().any(|b| b.bidder == from)
        {
            return;
        }
        bids.push(bid.clone());
        if bids.len() == invited.len() || self.decided(bid.task, now, est) {
            self.close_auction(bid.task, now, est, out);
        }
    }

    /// Whether the auction of `id` can close before every invited peer has
    /// answered: the best offer so far (a usable bid, or the owner's own
    /// quote) scores below the least any silent invitee could score. That
    /// floor is the bytes it must move (the inputs the spec does not list
    /// it as holding, and the output) at the byte weight, with no time at
    /// all; so waiting could not change the winner, only delay it. Its
    /// bid would only beat the floor if it held an input the spec does not
    /// list.
    fn decided(&self, id: TaskId, now: Millis, est: &PeerEstimates) -> bool {
        let Some(e) = self.tasks.get(&id) else {
            return false;
        };
        let Phase::Bidding { invited, bids, .. } = &e.phase else {
            return false;
        };
        let remaining = e.deadline.since(now);
        let best_bid = bids
            .iter()
            .filter(|b| b.total_ms() <= remaining)
            .map(|b| bid_score(b, &self.cfg))
            .min_by(f64::total_cmp);
        let own = own_quote(self.me, &self.cfg, &e.spec, now, est)
            .filter(|(_, time_ms)| *time_ms <= remaining)
            .map(|(score, _)| score);
        let Some(best) = [best_bid, own].into_iter().flatten().min_by(f64::total_cmp) else {
            return false;
        };
        let silent = invited
            .iter()
            .filter(|p| !bids.iter().any(|b| b.bidder == **p));
        below_floors(best, silent, &e.spec, &self.cfg)
    }

    fn close_auction(
        &mut self,
        id: TaskId,
        now: Millis,
        est: &PeerEstimates,
        out: &mut Vec<Action>,
    ) {
        let cfg = self.cfg.clone();
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        let Phase::Bidding { bids, .. } = &mut e.phase else {
            return;
        };
        let remaining = e.deadline.since(now);
        let mut usable: Vec<Bid> = bids
            .drain(..)
            .filter(|b| b.total_ms() <= remaining)
            .collect();
        usable.sort_by(|a, b| {
            bid_score(a, &cfg)
                .total_cmp(&bid_score(b, &cfg))
                .then(a.non_local_bytes.cmp(&b.non_local_bytes))
                .then(a.bidder.cmp(&b.bidder))
        });
        // The owner is a bidder too when it holds some of the data: its own
        // quote goes against the best bid on the same score.
        if let Some((score, time_ms)) = own_quote(self.me, &cfg, &e.spec, now, est) {
            let beats = usable.first().is_none_or(|b| score < bid_score(b, &cfg));
            if beats && time_ms <= remaining {
                self.run_here(id, now, out);
                return;
            }
        }
        if usable.is_empty() {
            self.no_bids(id, now, est, out);
        } else {
            let best = usable.remove(0);
            self.award(id, best.bidder, usable, now, out);
        }
    }

    /// Runs `id` here (its own quote won, or nobody else can).
    fn run_here(&mut self, id: TaskId, now: Millis, out: &mut Vec<Action>) {
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        e.epoch = e.epoch.next();
        e.phase = Phase::Local;
        self.stats.local_runs += 1;
        out.push(Action::StartLocal {
            task: spec_at(&e.spec, e.deadline, now),
            epoch: e.epoch,
        });
    }

    fn award(
        &mut self,
        id: TaskId,
        to: NodeId,
        runners: Vec<Bid>,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let cfg = &self.cfg;
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        e.epoch = e.epoch.next();
        self.stats.awards += 1;
        out.push(Action::Send {
            to,
            msg: Request::Award {
                spec: spec_at(&e.spec, e.deadline, now),
                epoch: e.epoch,
                lease_ms: cfg.lease_ms,
            },
        });
        e.phase = Phase::Awarding {
            to,
            ack_by: now.plus(cfg.ack_timeout_ms),
            resend_at: now.plus(cfg.award_resend_ms),
            runners,
        };
    }

    /// The winner did not take the award: try the runner-up, else re-auction.
    fn fallback(&mut self, id: TaskId, now: Millis, est: &PeerEstimates, out: &mut Vec<Action>) {
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        let Phase::Awarding { to, runners, .. } = &mut e.phase else {
            return;
        };
        // The award may have arrived and only the ack got lost.
        out.push(Action::Send {
            to: *to,
            msg: Request::Cancel {
                task: id,
                epoch: e.epoch,
                reason: CancelReason::Superseded,
            },
        });
        let remaining = e.deadline.since(now);
        let mut rest = std::mem::take(runners);
        rest.retain(|b| b.total_ms() <= remaining);
        self.stats.fallbacks += 1;
        if rest.is_empty() {
            self.start_auction(id, now, est, out, false);
        } else {
            let next = rest.remove(0);
            self.award(id, next.bidder, rest, now, out);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ack(
        &mut self,
        from: NodeId,
        task: TaskId,
        epoch: Epoch,
        accepted: bool,
        now: Millis,
        est: &PeerEstimates,
        out: &mut Vec<Action>,
    ) {
        if self.check_deadline(task, now, out) {
            return;
        }
        let lease = self.cfg.lease_ms;
        let Some(e) = self.tasks.get_mut(&task) else {
            return;
        };
        if e.epoch != epoch {
            return;
        }
        match e.phase {
            Phase::Awarding { to, .. } if to == from => {
                if accepted {
                    e.phase = Phase::Leased {
                        holder: from,
                        expiry: now.plus(lease),
                    };
                } else {
                    self.fallback(task, now, est, out);
                }
            }
            // A holder that cannot finish releases the lease early.
            Phase::Leased { holder, .. } if holder == from && !accepted => {
                self.start_auction(task, now, est, out, false);
            }
            _ => {}
        }
    }

    fn on_heartbeat(
        &mut self,
        from: NodeId,
        task: TaskId,
        epoch: Epoch,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        if self.check_deadline(task, now, out) {
            return;
        }
        let lease = self.cfg.lease_ms;
        let Some(e) = self.tasks.get_mut(&task) else {
            return;
        };
        if e.epoch != epoch {
            return;
        }
        match &mut e.phase {
            Phase::Leased { holder, expiry } if *holder == from => *expiry = now.plus(lease),
            // The ack was lost but the winner is clearly working.
            Phase::Awarding { to, .. } if *to == from => {
                e.phase = Phase::Leased {
                    holder: from,
                    expiry: now.plus(lease),
                }
            }
            _ => {}
        }
    }

    fn on_result(&mut self, from: NodeId, r: &TaskResult, now: Millis, out: &mut Vec<Action>) {
        self.check_deadline(r.task, now, out);
        let Some(e) = self.tasks.get(&r.task) else {
            return;
        };
        let cancel = |reason| Action::Send {
            to: from,
            msg: Request::Cancel {
                task: r.task,
                epoch: r.epoch,
                reason,
            },
        };
        match &e.phase {
            Phase::Committed { .. } => {
                // Idempotent: tell the sender to stop re-sending, apply nothing.
                self.stats.duplicate_results += 1;
                out.push(cancel(CancelReason::Committed));
            }
            Phase::Failed { .. } => out.push(cancel(CancelReason::Failed)),
            Phase::Leased { holder: h, .. } | Phase::Awarding { to: h, .. }
                if *h == from && r.epoch == e.epoch =>
            {
                self.commit(r.task, r.epoch, from, r.output.clone(), now, out);
            }
            _ => {
                self.stats.stale_results += 1;
                out.push(cancel(CancelReason::Superseded));
            }
        }
    }

    fn commit(
        &mut self,
        id: TaskId,
        epoch: Epoch,
        by: NodeId,
        output: TaskOutput,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        if e.phase.is_terminal() {
            return;
        }
        e.phase = Phase::Committed { by, epoch, at: now };
        self.stats.committed += 1;
        out.push(Action::Commit {
            task: id,
            epoch,
            by,
            output,
        });
        if by != self.me {
            out.push(Action::Send {
                to: by,
                msg: Request::Cancel {
                    task: id,
                    epoch,
                    reason: CancelReason::Committed,
                },
            });
        }
    }

    /// Fails `id` if `now` is at or past its deadline; true when it is
    /// (or already was) terminal.
    fn check_deadline(&mut self, id: TaskId, now: Millis, out: &mut Vec<Action>) -> bool {
        let Some(e) = self.tasks.get(&id) else {
            return true;
        };
        if e.phase.is_terminal() {
            return true;
        }
        if now >= e.deadline {
            self.fail(id, FailReason::DeadlineExceeded, now, out);
            return true;
        }
        false
    }

    fn fail(&mut self, id: TaskId, reason: FailReason, now: Millis, out: &mut Vec<Action>) {
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        match &e.phase {
            Phase::Committed { .. } | Phase::Failed { .. } => return,
            Phase::Leased { holder: to, .. } | Phase::Awarding { to, .. } => {
                out.push(Action::Send {
                    to: *to,
                    msg: Request::Cancel {
                        task: id,
                        epoch: e.epoch,
                        reason: CancelReason::Failed,
                    },
                })
            }
            Phase::Local => out.push(Action::Abort {
                task: id,
                epoch: e.epoch,
            }),
            Phase::Bidding { .. } | Phase::Backoff { .. } => {}
        }
        e.phase = Phase::Failed { reason, at: now };
        self.stats.failed += 1;
        out.push(Action::Fail { task: id, reason });
    }

    fn tick_task(&mut self, id: TaskId, now: Millis, est: &PeerEstimates, out: &mut Vec<Action>) {
        let tomb = self.cfg.tombstone_ms;
        let Some(e) = self.tasks.get(&id) else { return };
        match &e.phase {
            Phase::Committed { at, .. } | Phase::Failed { at, .. } => {
                if now >= at.plus(tomb) {
                    self.tasks.remove(&id);
                }
                return;
            }
            _ => {}
        }
        if self.check_deadline(id, now, out) {
            return;
        }
        let (lease, resend) = (self.cfg.lease_ms, self.cfg.award_resend_ms);
        let Some(e) = self.tasks.get_mut(&id) else {
            return;
        };
        match &mut e.phase {
            Phase::Bidding { until, .. } if now >= *until => self.close_auction(id, now, est, out),
            Phase::Backoff { until } if now >= *until => {
                self.start_auction(id, now, est, out, false)
            }
            Phase::Awarding { ack_by, .. } if now >= *ack_by => self.fallback(id, now, est, out),
            Phase::Awarding { to, resend_at, .. } if now >= *resend_at => {
                *resend_at = now.plus(resend);
                let to = *to;
                let msg = Request::Award {
                    spec: spec_at(&e.spec, e.deadline, now),
                    epoch: e.epoch,
                    lease_ms: lease,
                };
                out.push(Action::Send { to, msg });
            }
            Phase::Leased { holder, expiry } if now >= *expiry => {
                // Heartbeats stopped: the holder crashed or is cut off. It may
                // still be running (counted), but its epoch is now stale.
                self.stats.lease_expiries += 1;
                out.push(Action::Send {
                    to: *holder,
                    msg: Request::Cancel {
                        task: id,
                        epoch: e.epoch,
                        reason: CancelReason::Superseded,
                    },
                });
                self.start_auction(id, now, est, out, false);
            }
            _ => {}
        }
    }
}

/// What running `spec` here would score (as [`bid_score`]) and take,
/// ms, when this node holds some of its inputs; `None` otherwise, or
/// when it must not run tasks itself.
fn own_quote(
    me: NodeId,
    cfg: &OwnerConfig,
    spec: &TaskSpec,
    now: Millis,
    est: &PeerEstimates,
) -> Option<(f64, u64)> {
    if !cfg.run_locally || !spec.inputs.iter().any(|b| b.holders.contains(&me)) {
        return None;
    }
    let missing_inputs: Vec<_> = spec
        .inputs
        .iter()
        .filter(|b| !b.holders.contains(&me))
        .collect();
    // Priced as a bidder prices it: the fetches share this node's
    // downlink with those running or waiting here.
    let share = (est.local_inbound() + missing_inputs.len()).max(1) as f64;
    let (transfer, missing) =
        crate::bidder::fetch_estimate(me, missing_inputs.into_iter(), est, now, share).ok()?;
    let time = (est.local_wait_ms() as f64).max(transfer)
        + spec.compute_cost as f64 / est.local_speed(spec.kind, now);
    let score = time + cfg.lambda * missing as f64 / cfg.reference_bandwidth.max(1e-9);
    Some((score, time.ceil() as u64))
}

/// Whether `score` is below the least [`bid_score`] any of `peers` could
/// bid for `spec`: the bytes each must move (the inputs the spec does not
/// list it as holding, and the output, which always goes back to the
/// owner) at the byte weight, with no time at all.
fn below_floors<'a>(
    score: f64,
    peers: impl IntoIterator<Item = &'a NodeId>,
    spec: &TaskSpec,
    cfg: &OwnerConfig,
) -> bool {
    peers.into_iter().all(|p| {
        let missing = spec
            .inputs
            .iter()
            .filter(|b| !b.holders.contains(p))
            .map(|b| b.size)
            .fold(spec.output_bytes, u64::saturating_add);
        score < cfg.lambda * missing as f64 / cfg.reference_bandwidth.max(1e-9)
    })
}

/// The spec as sent at `now`: the deadline travels as time left.
fn spec_at(spec: &TaskSpec, deadline: Millis, now: Millis) -> TaskSpec {
    TaskSpec {
        deadline_in_ms: deadline.since(now),
        ..spec.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounded::BoundedVec;
    use crate::estimates::EstimatesConfig;
    use crate::msg::{BlobRef, SpeedClass, TaskKind};
    use crate::types::Hash;

    fn n(i: u64) -> NodeId {
        NodeId::from_u64(i)
    }

    fn bid(task: TaskId, epoch: Epoch, bidder: u64, total: u64, bytes: u64) -> Request {
        Request::Bid(Bid {
            task,
            epoch,
            bidder: n(bidder),
            wait_ms: 0,
            compute_ms: total,
            transfer_in_ms: 0,
            transfer_out_ms: 0,
            non_local_bytes: bytes,
        })
    }

    fn setup() -> (Owner, PeerEstimates, TaskId) {
        let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
        for i in 1..=3 {
            est.on_seen(n(i), Millis(0));
        }
        let mut o = Owner::new(n(0), OwnerConfig::default());
        let spec = TaskSpec {
            id: TaskId(7),
            owner: n(0),
            kind: TaskKind::Evaluate,
            inputs: BoundedVec::new(),
            compute_cost: 100,
            memory_bytes: 1,
            output_bytes: 1,
            deadline_in_ms: 10_000,
        };
        let a = o.submit(spec, Millis(0), &est).unwrap();
        assert_eq!(
            a.iter()
                .filter(|x| matches!(
                    x,
                    Action::Send {
                        msg: Request::TaskAnnounce { .. },
                        ..
                    }
                ))
                .count(),
            3
        );
        (o, est, TaskId(7))
    }

    fn awarded_to(a: &[Action]) -> Option<NodeId> {
        a.iter().find_map(|x| match x {
            Action::Send {
                to,
                msg: Request::Award { .. },
            } => Some(*to),
            _ => None,
        })
    }

    /// A task of node 0 reading one `size`-byte blob that `holder` holds.
    fn one_input_task(
        id: u128,
        kind: TaskKind,
        compute_cost: u64,
        deadline_in_ms: u64,
        holder: u64,
        size: u64,
    ) -> TaskSpec {
        let mut holders = BoundedVec::new();
        assert!(holders.try_push(n(holder)).is_ok());
        let mut inputs = BoundedVec::new();
        let blob = BlobRef {
            hash: Hash([1; 32]),
            size,
            holders,
        };
        assert!(inputs.try_push(blob).is_ok());
        TaskSpec {
            id: TaskId(id),
            owner: n(0),
            kind,
            inputs,
            compute_cost,
            memory_bytes: 1,
            output_bytes: 1,
            deadline_in_ms,
        }
    }

    #[test]
    fn the_data_holder_is_always_invited() {
        // Eight peers; the one holding the input (peer 8) looks the worst by
        // time (slow link, and the input is tiny), so ranking by time alone
        // would leave it out of the four invitations.
        let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
        for i in 1..=8 {
            est.on_seen(n(i), Millis(0));
            est.on_ping(n(i), if i == 8 { 5_000 } else { 1 }, Millis(0));
        }
        let mut o = Owner::new(n(0), OwnerConfig::default());
        let spec = one_input_task(9, TaskKind::Evaluate, 100, 60_000, 8, 10);
        let got = invited(&o.submit(spec, Millis(0), &est).unwrap());
        assert_eq!(got.len(), OwnerConfig::default().fanout);
        assert!(got.contains(&n(8)), "{got:?}");
    }

    fn invited(a: &[Action]) -> Vec<NodeId> {
        a.iter()
            .filter_map(|x| match x {
                Action::Send {
                    to,
                    msg: Request::TaskAnnounce { .. },
                } => Some(*to),
                _ => None,
            })
            .collect()
    }

    fn status(node: u64, free_slots: u16, free_memory_bytes: u64) -> crate::msg::NodeStatus {
        crate::msg::NodeStatus {
            node: n(node),
            speed_class: SpeedClass::Small,
            memory_bytes: 1 << 30,
            free_memory_bytes,
            task_slots: 2,
            free_slots,
            model: None,
            samples_seen: 0,
            accuracy_bp: 0,
            listen_addrs: BoundedVec::new(),
        }
    }

    #[test]
    fn a_busy_holder_is_invited_and_a_busy_peer_without_the_data_is_not() {
        // Peer 1 holds the input, peer 2 does not; both reported no free
        // slot and little memory. The holder can queue the task and its bid
        // weighs that wait against moving the data; the other is skipped.
        let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
        for i in 1..=6 {
            est.on_seen(n(i), Millis(0));
            est.on_ping(n(i), 1, Millis(0));
        }
        est.on_status(&status(1, 0, 10), Millis(0));
        est.on_status(&status(2, 0, 10), Millis(0));
        let mut o = Owner::new(n(0), OwnerConfig::default());
        let mut spec = one_input_task(3, TaskKind::Train, 100, 60_000, 1, 1_000);
        spec.memory_bytes = 1_000;
        let got = invited(&o.submit(spec, Millis(0), &est).unwrap());
        assert!(got.contains(&n(1)), "{got:?}");
        assert!(!got.contains(&n(2)), "{got:?}");
    }

    #[test]
    fn invitations_spread_over_good_peers_and_always_include_the_best() {
        // 60 idle peers, peer i at i ms: every owner ranks them alike. The
        // best is always asked; the rest are drawn from the next best, so
        // that owners do not all pile their tasks on the same four.
        let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
        for i in 1..=60 {
            est.on_seen(n(i), Millis(0));
            est.on_ping(n(i), i * 10, Millis(0));
        }
        let mut seen = std::collections::BTreeSet::new();
        for owner in 100..110 {
            let mut o = Owner::new(n(owner), OwnerConfig::default());
            for t in 0..5 {
                let spec = TaskSpec {
                    id: TaskId(owner as u128 * 1_000 + t),
                    owner: n(owner),
                    kind: TaskKind::Evaluate,
                    inputs: BoundedVec::new(),
                    compute_cost: 100,
                    memory_bytes: 1,
                    output_bytes: 1,
                    deadline_in_ms: 60_000,
                };
                let got = invited(&o.submit(spec, Millis(t as u64), &est).unwrap());
                assert_eq!(got.len(), OwnerConfig::default().fanout);
                assert!(got.contains(&n(1)), "{got:?}");
                for p in &got {
                    assert!(
                        *p <= n(1 + EXPLORE_POOL as u64),
                        "{p:?} is not among the good"
                    );
                }
                seen.extend(got);
            }
        }
        assert!(seen.len() > 20, "only {} peers ever invited", seen.len());
    }

    #[test]
    fn the_owner_keeps_a_task_whose_data_it_holds_unless_its_queue_is_long() {
        // The owner holds the task's 1 MB input; peer 1 bids 1 ms of work
        // but would fetch the megabyte (20 s of score at lambda 20).
        let run = |wait_ms: u64| {
            let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Desktop);
            est.on_seen(n(1), Millis(0));
            est.set_local_wait_ms(wait_ms);
            let mut o = Owner::new(n(0), OwnerConfig::default());
            let spec = one_input_task(5, TaskKind::Train, 400, 600_000, 0, 1_000_000);
            let mut out = o.submit(spec, Millis(0), &est).unwrap();
            let e = o.epoch(&TaskId(5)).unwrap();
            out.extend(o.on_request(n(1), &bid(TaskId(5), e, 1, 1, 1_000_000), Millis(1), &est));
            out
        };
        // Its own quote beats anything peer 1 could bid (it would have to
        // fetch the megabyte): the task runs here without an auction.
        let here = run(0);
        assert!(
            here.iter().any(|a| matches!(a, Action::StartLocal { .. })),
            "{here:?}"
        );
        assert!(
            !here.iter().any(|a| matches!(
                a,
                Action::Send {
                    msg: Request::TaskAnnounce { .. },
                    ..
                }
            )),
            "{here:?}"
        );
        assert_eq!(awarded_to(&here), None);
        // A minute of queue here is worth more than moving the megabyte.
        let away = run(60_000);
        assert_eq!(awarded_to(&away), Some(n(1)), "{away:?}");
    }

    #[test]
    fn the_auction_closes_once_no_silent_peer_could_beat_the_best_bid() {
        // Peer 1 holds the 1 MB input; peers 2 and 3 would have to fetch it,
        // 20 s of score at lambda 20 before any time.
        let est = est_of(3);
        let run = |holder_total_ms: u64| {
            let mut o = Owner::new(n(0), OwnerConfig::default());
            let spec = one_input_task(6, TaskKind::Train, 400, 600_000, 1, 1_000_000);
            let got = invited(&o.submit(spec, Millis(0), &est).unwrap());
            assert_eq!(got.len(), 3);
            let e = o.epoch(&TaskId(6)).unwrap();
            let a = o.on_request(
                n(1),
                &bid(TaskId(6), e, 1, holder_total_ms, 1),
                Millis(1),
                &est,
            );
            (o, a)
        };
        // A 0.1 s bid from the holder: nobody else can come near it.
        let (_, a) = run(100);
        assert_eq!(awarded_to(&a), Some(n(1)), "{a:?}");
        // A 30 s bid (a long queue at the holder): peers 2 and 3 might bid
        // less, so the owner waits for them or for the window's end.
        let (mut o, a) = run(30_000);
        assert_eq!(awarded_to(&a), None, "{a:?}");
        let e = o.epoch(&TaskId(6)).unwrap();
        o.on_request(n(2), &bid(TaskId(6), e, 2, 500, 1_000_001), Millis(2), &est);
        let a = o.on_request(n(3), &bid(TaskId(6), e, 3, 900, 1_000_001), Millis(3), &est);
        assert_eq!(awarded_to(&a), Some(n(2)), "{a:?}");
    }

    fn est_of(peers: u64) -> PeerEstimates {
        let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
        for i in 1..=peers {
            est.on_seen(n(i), Millis(0));
        }
        est
    }

    #[test]
    fn best_score_wins_ties_go_to_fewer_bytes_then_lower_id() {
        let (mut o, est, t) = setup();
        let e = o.epoch(&t).unwrap();
        // lambda 20, reference 1000 B/ms: 1000 bytes cost 20 ms.
        o.on_request(n(3), &bid(t, e, 3, 100, 0), Millis(1), &est);
        o.on_request(n(1), &bid(t, e, 1, 80, 1_000), Millis(1), &est);
        // Uninvited or wrong-epoch bids do not count.
        assert!(o
            .on_request(n(9), &bid(t, e, 9, 1, 0), Millis(1), &est)
            .is_empty());
        o.on_request(n(2), &bid(t, e.next(), 2, 1, 0), Millis(1), &est);
        let a = o.on_tick(Millis(500), &est);
        assert_eq!(awarded_to(&a), Some(n(3)), "equal scores: fewer bytes wins");
    }

    #[test]
    fn a_free_holder_of_all_the_data_gets_the_task_without_a_round() {
        // Four peers; peer 4 holds the task's 2 MB input and last said it
        // had a free slot; the owner holds its small parameter blob. Any
        // other peer must move 2 MB too (40 s at the byte weight) against
        // a 100 ms run at the holder: the round could only confirm the
        // holder, so the owner awards it at once.
        let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
        for i in 1..=4 {
            est.on_seen(n(i), Millis(0));
            est.on_status(&status(i, 1, 1 << 30), Millis(0));
        }
        let mut o = Owner::new(n(0), OwnerConfig::default());
        let mut spec = one_input_task(9, TaskKind::Evaluate, 100, 60_000, 4, 2_000_000);
        let mut here = BoundedVec::new();
        assert!(here.try_push(n(0)).is_ok());
        let params = BlobRef {
            hash: Hash([2; 32]),
            size: 40,
            holders: here,
        };
        assert!(spec.inputs.try_push(params).is_ok());
        let a = o.submit(spec, Millis(0), &est).unwrap();
        assert!(invited(&a).is_empty(), "no round: {a:?}");
        assert_eq!(awarded_to(&a), Some(n(4)));
        assert_eq!(o.stats().auctions, 0);
        // The holder declines (its queue filled since its last status):
        // the owner holds a full round, where its bid tells its real wait.
        let t = TaskId(9);
        let e = o.epoch(&t).unwrap();
        let decline = Request::AwardAck {
            task: t,
            epoch: e,
            accepted: false,
        };
        let a = o.on_request(n(4), &decline, Millis(5), &est);
        assert_eq!(invited(&a).len(), 4, "{a:?}");
        assert!(invited(&a).contains(&n(4)));
        assert!(awarded_to(&a).is_none());
        // A busy holder, a small input that others could fetch cheaply, or
        // a holder whose last status is too old to vouch for a free slot
        // (though a ping came since) gets a round from the start.
        est.on_status(&status(4, 0, 1 << 30), Millis(0));
        let spec = one_input_task(10, TaskKind::Evaluate, 100, 60_000, 4, 2_000_000);
        assert_eq!(invited(&o.submit(spec, Millis(0), &est).unwrap()).len(), 4);
        est.on_status(&status(4, 1, 1 << 30), Millis(0));
        let spec = one_input_task(11, TaskKind::Evaluate, 100, 60_000, 4, 1_000);
        assert_eq!(invited(&o.submit(spec, Millis(0), &est).unwrap()).len(), 4);
        let later = Millis(DIRECT_FRESH_MS + 1);
        est.on_ping(n(4), 1, later);
        let spec = one_input_task(12, TaskKind::Evaluate, 100, 60_000, 4, 2_000_000);
        assert_eq!(invited(&o.submit(spec, later, &est).unwrap()).len(), 4);
        est.on_status(&status(4, 1, 1 << 30), later);
        let spec = one_input_task(13, TaskKind::Evaluate, 100, 60_000, 4, 2_000_000);
        assert_eq!(
            awarded_to(&o.submit(spec, later, &est).unwrap()),
            Some(n(4))
        );
    }

    #[test]
    fn unacknowledged_award_falls_back_to_the_runner_up() {
        let (mut o, est, t) = setup();
        let e = o.epoch(&t).unwrap();
        for (i, total) in [(1, 10), (2, 20), (3, 30)] {
            o.on_request(n(i), &bid(t, e, i, total, 0), Millis(1), &est);
        }
        // All invited bid: the auction closes at once.
        assert!(matches!(o.phase(&t), Some(Phase::Awarding { to, .. }) if *to == n(1)));
        let a = o.on_tick(Millis(1_600), &est);
        assert_eq!(awarded_to(&a), Some(n(2)));
        assert_eq!(o.stats().fallbacks, 1);
        // The first winner's late ack is for a superseded epoch.
        o.on_request(
            n(1),
            &Request::AwardAck {
                task: t,
                epoch: e.next(),
                accepted: true,
            },
            Millis(1_700),
            &est,
        );
        assert!(matches!(o.phase(&t), Some(Phase::Awarding { to, .. }) if *to == n(2)));
    }

    #[test]
    fn extreme_peer_values_do_not_overflow() {
        let (mut o, est, t) = setup();
        let e = o.epoch(&t).unwrap();
        let huge = Request::Bid(Bid {
            task: t,
            epoch: e,
            bidder: n(1),
            wait_ms: u64::MAX,
            compute_ms: u64::MAX,
            transfer_in_ms: u64::MAX,
            transfer_out_ms: u64::MAX,
            non_local_bytes: u64::MAX,
        });
        o.on_request(n(1), &huge, Millis(1), &est);
        o.on_tick(Millis(600), &est);
        o.on_request(
            n(1),
            &Request::Heartbeat {
                task: t,
                epoch: Epoch(u32::MAX),
                progress_permille: u16::MAX,
            },
            Millis(u64::MAX),
            &est,
        );
        o.on_tick(Millis(u64::MAX), &est);
        assert_eq!(o.stats().failed, 1);
        assert_eq!(o.active().count(), 0);
    }

    #[test]
    fn state_survives_serialization() {
        let (o, _, t) = setup();
        let back = Owner::decode_state(&o.encode_state()).unwrap();
        // Everything but the driver's timer (re-armed by `resume`) survives.
        assert_eq!(back.encode_state(), o.encode_state());
        assert!(matches!(back.phase(&t), Some(Phase::Bidding { .. })));
    }

    #[test]
    fn a_restored_owner_runs_with_the_tuning_it_is_given() {
        // State written under an older tuning keeps its tasks and takes
        // the current one.
        let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
        est.on_seen(n(1), Millis(0));
        let old = OwnerConfig {
            lambda: 1.0,
            ..OwnerConfig::default()
        };
        let mut o = Owner::new(n(0), old);
        let spec = one_input_task(4, TaskKind::Train, 100, 60_000, 1, 1_000);
        o.submit(spec, Millis(0), &est).unwrap();
        let mut back = Owner::decode_state(&o.encode_state()).unwrap();
        assert_eq!(back.config().lambda, 1.0);
        back.reconfigure(OwnerConfig::default());
        assert_eq!(back.config(), &OwnerConfig::default());
        assert!(back.phase(&TaskId(4)).is_some());
    }
}
