//! The worker's side of the market: price announced tasks, take awards,
//! heartbeat, deliver results, and drop work that was given to someone else.
//!
//! A bid is `max(wait, transfer-in) + compute + transfer-out` (see
//! [`Bidder::price`]): the inputs are fetched while the task waits for a
//! slot. The bidder does not bid when it cannot meet the
//! deadline or hold the task in memory.
//!
//! ```text
//!  announce ──price──► (Bid sent) ──award──► Running ──done──► Done ──Cancel(Committed)──► gone
//!                                              │ heartbeats       │ re-sends Result
//!   Cancel / newer epoch / deadline ───────────┴──────────────────┴──► Abort, gone
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::estimates::{Direction, PeerEstimates};
use crate::msg::{Bid, BlobRef, CancelReason, Request, TaskOutput, TaskResult, TaskSpec};
use crate::types::{Epoch, Hash, Millis, NodeId, TaskId};

/// Tuning of a [`Bidder`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BidderConfig {
    /// Memory available to tasks, bytes.
    pub memory_bytes: u64,
    /// Tasks that run at once.
    pub slots: u16,
    /// Leases accepted beyond `slots` (they wait in the executor's queue).
    /// The wait they cause is in every bid and the deadline check bounds it
    /// in time; this bounds the lease records. The default, 64, was 16:
    /// with short tasks 16 queued leases are a few seconds of work, and a
    /// data holder that declined for a full queue sent its tasks to nodes
    /// that had to fetch everything (docs/market.md, sixth session).
    pub max_queued: u16,
    /// Heartbeat interval, ms (keep it well under the owners' lease).
    pub heartbeat_ms: u64,
    /// Re-send interval of an unacknowledged result, ms.
    pub result_resend_ms: u64,
    /// Outstanding bids remembered at most.
    pub max_pending: usize,
    /// Cancelled tasks remembered at most (to ignore their late awards).
    pub max_cancelled: usize,
}

impl Default for BidderConfig {
    fn default() -> Self {
        BidderConfig {
            memory_bytes: 1 << 30,
            slots: 2,
            max_queued: 64,
            heartbeat_ms: 1_000,
            result_resend_ms: 1_000,
            max_pending: 64,
            max_cancelled: 1024,
        }
    }
}

/// What the bidder needs to know about its node when pricing.
pub struct BidContext<'a> {
    /// Measured links and speeds.
    pub estimates: &'a PeerEstimates,
    /// Whether a blob is held locally.
    pub has_blob: &'a dyn Fn(&Hash) -> bool,
    /// Inbound transfers in progress or waiting to start; a new one
    /// shares the downlink with them (or waits behind them).
    pub inbound_transfers: usize,
}

/// Why no bid was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NoBid {
    /// Not enough free memory.
    #[error("needs {need} bytes of memory, {free} free")]
    Memory {
        /// Required.
        need: u64,
        /// Free.
        free: u64,
    },
    /// Running and queued leases fill every slot and the queue.
    #[error("slots and queue are full")]
    QueueFull,
    /// A missing input has no holder to fetch it from.
    #[error("input {0} has no reachable holder")]
    NoHolder(Hash),
    /// The estimate does not fit before the deadline.
    #[error("estimate {estimate_ms} ms exceeds the {left_ms} ms left")]
    Deadline {
        /// Estimated completion.
        estimate_ms: u64,
        /// Time left.
        left_ms: u64,
    },
    /// Own task, or a task whose owner is not the sender.
    #[error("not a task to bid on")]
    NotApplicable,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidderStats {
    /// Bids sent.
    pub bids: u64,
    /// Announces not bid on.
    pub declined: u64,
    /// Awards taken.
    pub leases: u64,
    /// Awards refused.
    pub refused_awards: u64,
    /// Leases dropped because a newer epoch or a cancel arrived.
    pub dropped: u64,
    /// Leases dropped at their deadline.
    pub expired: u64,
    /// Results delivered and acknowledged.
    pub acknowledged: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum LeaseState {
    Running {
        next_heartbeat: Millis,
    },
    Done {
        output: TaskOutput,
        next_send: Millis,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Lease {
    spec: TaskSpec,
    epoch: Epoch,
    deadline: Millis,
    started: Millis,
    estimate_ms: u64,
    state: LeaseState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pending {
    owner: NodeId,
    epoch: Epoch,
    expires: Millis,
}

/// The bidder state machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Bidder {
    me: NodeId,
    cfg: BidderConfig,
    pending: BTreeMap<TaskId, Pending>,
    leases: BTreeMap<TaskId, Lease>,
    /// Task → lowest epoch still acceptable (after a cancel).
    floors: BTreeMap<TaskId, (Epoch, Millis)>,
    stats: BidderStats,
    #[serde(skip)]
    last_timer: Option<Millis>,
}

impl Bidder {
    /// A bidder with no leases.
    pub fn new(me: NodeId, cfg: BidderConfig) -> Self {
        Bidder {
            me,
            cfg,
            pending: BTreeMap::new(),
            leases: BTreeMap::new(),
            floors: BTreeMap::new(),
            stats: BidderStats::default(),
            last_timer: None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &BidderStats {
        &self.stats
    }

    /// Leases held: task and epoch.
    pub fn leases(&self) -> impl Iterator<Item = (TaskId, Epoch)> + '_ {
        self.leases.iter().map(|(t, l)| (*t, l.epoch))
    }

    /// Memory the held leases can need at once: at most `slots` tasks run
    /// together, so the peak is the sum of the `slots - 1` largest held
    /// leases plus the new one (queued tasks wait for a slot; the inputs
    /// they fetched meanwhile are bounded by the executor, not here).
    fn reserved_memory(&self) -> u64 {
        let mut m: Vec<u64> = self.leases.values().map(|l| l.spec.memory_bytes).collect();
        m.sort_unstable_by(|a, b| b.cmp(a));
        m.iter()
            .take(usize::from(self.cfg.slots.max(1)) - 1)
            .fold(0, |a, b| a.saturating_add(*b))
    }

    /// Time until a slot is free for a new task: list-schedules the held
    /// leases (running ones for their remaining estimate, queued ones in full)
    /// onto `slots`.
    pub fn queue_wait_ms(&self, now: Millis) -> u64 {
        let slots = usize::from(self.cfg.slots.max(1));
        let mut free = vec![now; slots];
        let mut held: Vec<&Lease> = self
            .leases
            .values()
            .filter(|l| matches!(l.state, LeaseState::Running { .. }))
            .collect();
        held.sort_by_key(|l| l.started);
        for (i, l) in held.iter().enumerate() {
            let left = if i < slots {
                l.started.plus(l.estimate_ms).since(now)
            } else {
                l.estimate_ms
            };
            if let Some(slot) = free.iter_mut().min() {
                *slot = slot.plus(left);
            }
        }
        free.iter().min().map_or(0, |t| t.since(now))
    }

    /// Prices `spec`: `max(wait, transfer_in) + compute + transfer_out`
    /// ([`Bid::total_ms`]; the executor fetches while the task waits).
    ///
    /// * wait: until a slot frees up (see above);
    /// * compute: `compute_cost / local speed` for the task kind;
    /// * transfer-in: the slowest missing input, each fetched from its best
    ///   holder (RTT + size / bandwidth, the bandwidth shared with the
    ///   inbound transfers running or waiting here and this task's others),
    ///   overlapping the wait;
    /// * transfer-out: the output to the owner.
    pub fn price(&self, spec: &TaskSpec, now: Millis, ctx: &BidContext<'_>) -> Result<Bid, NoBid> {
        if spec.owner == self.me {
            return Err(NoBid::NotApplicable);
        }
        let held = self.leases.len();
        if held >= usize::from(self.cfg.slots) + usize::from(self.cfg.max_queued) {
            return Err(NoBid::QueueFull);
        }
        let free = self.cfg.memory_bytes.saturating_sub(self.reserved_memory());
        if spec.memory_bytes > free {
            return Err(NoBid::Memory {
                need: spec.memory_bytes,
                free,
            });
        }
        let est = ctx.estimates;
        let wait_ms = self.queue_wait_ms(now);
        let compute_ms = (spec.compute_cost as f64 / est.local_speed(spec.kind, now)).ceil() as u64;
        let missing: Vec<_> = spec
            .inputs
            .iter()
            .filter(|b| !(ctx.has_blob)(&b.hash))
            .collect();
        let share = (ctx.inbound_transfers + missing.len()).max(1) as f64;
        let (transfer_in, mut non_local) =
            fetch_estimate(self.me, missing.iter().copied(), est, now, share)
                .map_err(NoBid::NoHolder)?;
        let transfer_out =
            est.transfer_ms(&spec.owner, Direction::Outbound, spec.output_bytes, now);
        non_local = non_local.saturating_add(spec.output_bytes);
        let bid = Bid {
            task: spec.id,
            epoch: Epoch(0),
            bidder: self.me,
            wait_ms,
            compute_ms,
            transfer_in_ms: transfer_in.ceil() as u64,
            transfer_out_ms: transfer_out.ceil() as u64,
            non_local_bytes: non_local,
        };
        let left_ms = spec.deadline_in_ms;
        if bid.total_ms() > left_ms {
            return Err(NoBid::Deadline {
                estimate_ms: bid.total_ms(),
                left_ms,
            });
        }
        Ok(bid)
    }

    fn floor(&self, task: &TaskId) -> Epoch {
        self.floors.get(task).map_or(Epoch(0), |f| f.0)
    }

    /// A request from `from` (an authenticated peer).
    pub fn on_request(
        &mut self,
        from: NodeId,
        msg: &Request,
        now: Millis,
        ctx: &BidContext<'_>,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        match msg {
            Request::TaskAnnounce {
                spec,
                epoch,
                bid_window_ms,
            } => self.on_announce(from, spec, *epoch, *bid_window_ms, now, ctx, &mut out),
            Request::Award {
                spec,
                epoch,
                lease_ms: _,
            } => self.on_award(from, spec, *epoch, now, ctx, &mut out),
            Request::Cancel {
                task,
                epoch,
                reason,
            } => self.on_cancel(from, *task, *epoch, *reason, now, &mut out),
            _ => {}
        }
        self.set_timer(&mut out);
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn on_announce(
        &mut self,
        from: NodeId,
        spec: &TaskSpec,
        epoch: Epoch,
        window_ms: u64,
        now: Millis,
        ctx: &BidContext<'_>,
        out: &mut Vec<Action>,
    ) {
        if spec.owner != from || epoch < self.floor(&spec.id) {
            return;
        }
        // A new round for a task we hold: our lease was given away.
        if let Some(l) = self.leases.get(&spec.id) {
            if l.epoch >= epoch {
                return;
            }
            self.drop_lease(spec.id, out);
        }
        match self.price(spec, now, ctx) {
            Ok(mut bid) => {
                bid.epoch = epoch;
                if self.pending.len() >= self.cfg.max_pending {
                    let oldest = self
                        .pending
                        .iter()
                        .min_by_key(|(_, p)| p.expires)
                        .map(|(t, _)| *t);
                    if let Some(t) = oldest {
                        self.pending.remove(&t);
                    }
                }
                // Remember the bid a little longer than the window: the award
                // may be a runner-up award after an ack timeout.
                let keep = window_ms.saturating_mul(4).min(spec.deadline_in_ms);
                self.pending.insert(
                    spec.id,
                    Pending {
                        owner: from,
                        epoch,
                        expires: now.plus(keep),
                    },
                );
                self.stats.bids += 1;
                out.push(Action::Send {
                    to: from,
                    msg: Request::Bid(bid),
                });
            }
            Err(_) => self.stats.declined += 1,
        }
    }

    fn on_award(
        &mut self,
        from: NodeId,
        spec: &TaskSpec,
        epoch: Epoch,
        now: Millis,
        ctx: &BidContext<'_>,
        out: &mut Vec<Action>,
    ) {
        if spec.owner != from || spec.owner == self.me || epoch < self.floor(&spec.id) {
            return;
        }
        let ack = |accepted| Action::Send {
            to: from,
            msg: Request::AwardAck {
                task: spec.id,
                epoch,
                accepted,
            },
        };
        if let Some(l) = self.leases.get_mut(&spec.id) {
            if l.epoch > epoch {
                return;
            }
            // Same task again under a newer epoch (we won the re-auction, or
            // a runner-up award reached us late): keep the work, rebind it.
            l.epoch = epoch;
            if let LeaseState::Done { next_send, .. } = &mut l.state {
                *next_send = now;
            }
            out.push(ack(true));
            self.tick_lease(spec.id, now, out);
            return;
        }
        // Capacity may have changed since the bid. The deadline is the
        // owner's call: it awarded, so we try.
        match self.price(spec, now, ctx) {
            Ok(_) | Err(NoBid::Deadline { .. }) => {}
            Err(_) => {
                self.stats.refused_awards += 1;
                out.push(ack(false));
                return;
            }
        }
        self.pending.remove(&spec.id);
        let compute =
            (spec.compute_cost as f64 / ctx.estimates.local_speed(spec.kind, now)).ceil() as u64;
        self.leases.insert(
            spec.id,
            Lease {
                spec: spec.clone(),
                epoch,
                deadline: now.plus(spec.deadline_in_ms),
                started: now,
                estimate_ms: compute,
                state: LeaseState::Running {
                    next_heartbeat: now.plus(self.cfg.heartbeat_ms),
                },
            },
        );
        self.stats.leases += 1;
        out.push(ack(true));
        out.push(Action::StartLocal {
            task: spec.clone(),
            epoch,
        });
    }

    fn on_cancel(
        &mut self,
        from: NodeId,
        task: TaskId,
        epoch: Epoch,
        reason: CancelReason,
        now: Millis,
        out: &mut Vec<Action>,
    ) {
        let owner = self
            .leases
            .get(&task)
            .map(|l| l.spec.owner)
            .or_else(|| self.pending.get(&task).map(|p| p.owner));
        if owner.is_some_and(|o| o != from) {
            return;
        }
        // Finished tasks never come back; a superseded epoch might (we may
        // win the next round), so only epochs up to `epoch` are barred.
        let floor = match reason {
            CancelReason::Committed | CancelReason::Failed => Epoch(u32::MAX),
            CancelReason::Superseded => epoch.next(),
        };
        if owner.is_some() || reason != CancelReason::Superseded {
            self.note_floor(task, floor, now);
        }
        if self.pending.get(&task).is_some_and(|p| p.epoch <= epoch) {
            self.pending.remove(&task);
        }
        if let Some(l) = self.leases.get(&task) {
            if l.epoch <= epoch {
                if reason == CancelReason::Committed && matches!(l.state, LeaseState::Done { .. }) {
                    self.stats.acknowledged += 1;
                    self.leases.remove(&task);
                } else {
                    self.drop_lease(task, out);
                }
            }
        }
    }

    fn note_floor(&mut self, task: TaskId, floor: Epoch, now: Millis) {
        if !self.floors.contains_key(&task) && self.floors.len() >= self.cfg.max_cancelled.max(1) {
            let oldest = self.floors.iter().min_by_key(|(_, f)| f.1).map(|(t, _)| *t);
            if let Some(t) = oldest {
                self.floors.remove(&t);
            }
        }
        let f = self.floors.entry(task).or_insert((Epoch(0), now));
        f.0 = f.0.max(floor);
        f.1 = now;
    }

    fn drop_lease(&mut self, task: TaskId, out: &mut Vec<Action>) {
        if let Some(l) = self.leases.remove(&task) {
            self.stats.dropped += 1;
            if matches!(l.state, LeaseState::Running { .. }) {
                out.push(Action::Abort {
                    task,
                    epoch: l.epoch,
                });
            }
        }
    }

    /// The local run of `task` under `epoch` finished: deliver the result
    /// (re-sent until the owner confirms with a `Cancel(Committed)`).
    pub fn on_local_done(
        &mut self,
        task: TaskId,
        epoch: Epoch,
        output: TaskOutput,
        now: Millis,
    ) -> Vec<Action> {
        let mut out = Vec::new();
        if let Some(l) = self.leases.get_mut(&task) {
            // A rebind may have moved the lease to a newer epoch meanwhile;
            // the work is the same, so it is delivered under the current one.
            if epoch <= l.epoch && matches!(l.state, LeaseState::Running { .. }) {
                l.state = LeaseState::Done {
                    output,
                    next_send: now,
                };
                self.tick_lease(task, now, &mut out);
            }
        }
        self.set_timer(&mut out);
        out
    }

    /// The local run failed: release the lease so the owner re-auctions now
    /// rather than at lease expiry.
    pub fn on_local_failed(&mut self, task: TaskId, epoch: Epoch, _now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        if self.leases.get(&task).is_some_and(|l| epoch <= l.epoch) {
            if let Some(l) = self.leases.remove(&task) {
                out.push(Action::Send {
                    to: l.spec.owner,
                    msg: Request::AwardAck {
                        task,
                        epoch: l.epoch,
                        accepted: false,
                    },
                });
            }
        }
        self.set_timer(&mut out);
        out
    }

    fn tick_lease(&mut self, task: TaskId, now: Millis, out: &mut Vec<Action>) {
        let (hb, resend) = (self.cfg.heartbeat_ms, self.cfg.result_resend_ms);
        let Some(l) = self.leases.get_mut(&task) else {
            return;
        };
        if now >= l.deadline {
            let l = self.leases.remove(&task);
            self.stats.expired += 1;
            if let Some(Lease {
                state: LeaseState::Running { .. },
                epoch,
                ..
            }) = l
            {
                out.push(Action::Abort { task, epoch });
            }
            return;
        }
        let owner = l.spec.owner;
        match &mut l.state {
            LeaseState::Running { next_heartbeat } if now >= *next_heartbeat => {
                *next_heartbeat = now.plus(hb);
                // u128: the estimate derives from a peer-supplied cost.
                let total = u128::from(l.estimate_ms.max(1));
                let done = u128::from(now.since(l.started)).min(total);
                let progress = u16::try_from(done * 999 / total).unwrap_or(999);
                out.push(Action::Send {
                    to: owner,
                    msg: Request::Heartbeat {
                        task,
                        epoch: l.epoch,
                        progress_permille: progress,
                    },
                });
            }
            LeaseState::Done { output, next_send } if now >= *next_send => {
                *next_send = now.plus(resend);
                out.push(Action::Send {
                    to: owner,
                    msg: Request::Result(TaskResult {
                        task,
                        epoch: l.epoch,
                        output: output.clone(),
                    }),
                });
            }
            _ => {}
        }
    }

    /// Fires heartbeats, result re-sends and deadline drops due at `now`.
    pub fn on_tick(&mut self, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        // The driver's timer fired (or it polls): always re-arm it.
        self.last_timer = None;
        let ids: Vec<TaskId> = self.leases.keys().copied().collect();
        for id in ids {
            self.tick_lease(id, now, &mut out);
        }
        self.pending.retain(|_, p| p.expires > now);
        self.set_timer(&mut out);
        out
    }

    /// Earliest time `on_tick` has something to do.
    pub fn next_timeout(&self) -> Option<Millis> {
        let leases = self.leases.values().map(|l| match &l.state {
            LeaseState::Running { next_heartbeat } => (*next_heartbeat).min(l.deadline),
            LeaseState::Done { next_send, .. } => (*next_send).min(l.deadline),
        });
        let pending = self.pending.values().map(|p| p.expires);
        leases.chain(pending).min()
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
}

/// Fetching `missing` inputs to `me`, each from its best holder (RTT +
/// size × `share` / inbound bandwidth, `share` the transfers splitting the
/// downlink): the slowest fetch, ms, and the bytes; or the hash of an
/// input no other node holds.
pub(crate) fn fetch_estimate<'a>(
    me: NodeId,
    missing: impl Iterator<Item = &'a BlobRef>,
    est: &PeerEstimates,
    now: Millis,
    share: f64,
) -> Result<(f64, u64), Hash> {
    let mut slowest = 0f64;
    let mut bytes: u64 = 0;
    for b in missing {
        let best = b
            .holders
            .iter()
            .filter(|h| **h != me)
            .map(|h| {
                est.rtt_ms(h, now)
                    + b.size as f64 * share / est.bandwidth(h, Direction::Inbound, now)
            })
            .min_by(f64::total_cmp)
            .ok_or(b.hash)?;
        slowest = slowest.max(best);
        bytes = bytes.saturating_add(b.size);
    }
    Ok((slowest, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounded::BoundedVec;
    use crate::estimates::EstimatesConfig;
    use crate::msg::{BlobRef, SpeedClass, TaskKind};

    fn n(i: u64) -> NodeId {
        NodeId::from_u64(i)
    }

    fn spec(id: u128, inputs: Vec<BlobRef>) -> TaskSpec {
        TaskSpec {
            id: TaskId(id),
            owner: n(0),
            kind: TaskKind::Train,
            inputs: BoundedVec::try_from_vec(inputs).unwrap(),
            compute_cost: 1_000,
            memory_bytes: 100,
            output_bytes: 0,
            deadline_in_ms: 100_000,
        }
    }

    fn blob(tag: u8, size: u64, holders: &[u64]) -> BlobRef {
        BlobRef {
            hash: Hash([tag; 32]),
            size,
            holders: BoundedVec::try_from_vec(holders.iter().map(|h| n(*h)).collect()).unwrap(),
        }
    }

    fn est() -> PeerEstimates {
        let mut e = PeerEstimates::new(
            EstimatesConfig {
                prior_rtt_ms: 0.0,
                ..Default::default()
            },
            SpeedClass::Desktop,
        );
        // Node 2 delivers 10x faster than node 3.
        e.on_transfer(n(2), Direction::Inbound, 1_000_000, 100, Millis(0));
        e.on_transfer(n(3), Direction::Inbound, 1_000_000, 1_000, Millis(0));
        e
    }

    fn ctx<'a>(
        e: &'a PeerEstimates,
        has: &'a dyn Fn(&Hash) -> bool,
        inbound: usize,
    ) -> BidContext<'a> {
        BidContext {
            estimates: e,
            has_blob: has,
            inbound_transfers: inbound,
        }
    }

    #[test]
    fn prices_compute_and_the_best_holder() {
        let b = Bidder::new(n(1), BidderConfig::default());
        let e = est();
        let none = |_: &Hash| false;
        let bid = b
            .price(&spec(1, vec![]), Millis(0), &ctx(&e, &none, 0))
            .unwrap();
        // Desktop prior: 4 reference-ms per ms.
        assert_eq!(
            (
                bid.wait_ms,
                bid.compute_ms,
                bid.transfer_in_ms,
                bid.non_local_bytes
            ),
            (0, 250, 0, 0)
        );
        let s = spec(2, vec![blob(7, 1_000_000, &[3, 2])]);
        let bid = b.price(&s, Millis(0), &ctx(&e, &none, 0)).unwrap();
        assert_eq!(bid.transfer_in_ms, 100, "fetched from the faster holder");
        assert_eq!(bid.non_local_bytes, 1_000_000);
        let busy = b.price(&s, Millis(0), &ctx(&e, &none, 1)).unwrap();
        assert_eq!(
            busy.transfer_in_ms, 200,
            "the downlink is shared with a running transfer"
        );
        let held = |h: &Hash| h.0[0] == 7;
        let local = b.price(&s, Millis(0), &ctx(&e, &held, 0)).unwrap();
        assert_eq!((local.transfer_in_ms, local.non_local_bytes), (0, 0));
    }

    /// Bidder 1 with a single task slot.
    fn one_slot_bidder() -> Bidder {
        Bidder::new(
            n(1),
            BidderConfig {
                slots: 1,
                ..Default::default()
            },
        )
    }

    #[test]
    fn the_inputs_arrive_while_the_task_waits_for_a_slot() {
        // One slot, busy for 250 ms with a task of its own.
        let mut b = one_slot_bidder();
        let e = est();
        let none = |_: &Hash| false;
        let award = Request::Award {
            spec: spec(1, vec![]),
            epoch: Epoch(1),
            lease_ms: 4_000,
        };
        b.on_request(n(0), &award, Millis(0), &ctx(&e, &none, 0));
        // A 100 ms fetch fits in that wait: it adds nothing.
        let s = spec(2, vec![blob(7, 1_000_000, &[2])]);
        let bid = b.price(&s, Millis(0), &ctx(&e, &none, 0)).unwrap();
        assert_eq!((bid.wait_ms, bid.transfer_in_ms), (250, 100));
        assert_eq!(bid.total_ms(), 250 + bid.compute_ms + bid.transfer_out_ms);
        // Behind four transfers waiting their turn it takes 500 ms, and
        // the task waits for its inputs rather than for the slot.
        let queued = b.price(&s, Millis(0), &ctx(&e, &none, 4)).unwrap();
        assert_eq!(queued.transfer_in_ms, 500);
        assert_eq!(
            queued.total_ms(),
            500 + queued.compute_ms + queued.transfer_out_ms
        );
    }

    #[test]
    fn refuses_what_it_cannot_do() {
        let b = Bidder::new(
            n(1),
            BidderConfig {
                memory_bytes: 50,
                ..Default::default()
            },
        );
        let e = est();
        let none = |_: &Hash| false;
        let c = ctx(&e, &none, 0);
        assert!(matches!(
            b.price(&spec(1, vec![]), Millis(0), &c),
            Err(NoBid::Memory {
                need: 100,
                free: 50
            })
        ));
        let b = Bidder::new(n(1), BidderConfig::default());
        let mut tight = spec(1, vec![]);
        tight.deadline_in_ms = 100;
        assert!(matches!(
            b.price(&tight, Millis(0), &c),
            Err(NoBid::Deadline {
                estimate_ms: 250,
                left_ms: 100
            })
        ));
        let orphan = spec(2, vec![blob(9, 10, &[1])]);
        assert!(matches!(
            b.price(&orphan, Millis(0), &c),
            Err(NoBid::NoHolder(_))
        ));
    }

    #[test]
    fn queued_tasks_do_not_hold_memory() {
        // Two slots and room for two 100-byte tasks at once: queued leases
        // wait for a slot, so a full queue of small tasks does not lock out
        // the node, while a task that could not run beside the largest
        // held one is refused.
        let mut b = Bidder::new(
            n(1),
            BidderConfig {
                slots: 2,
                max_queued: 8,
                memory_bytes: 250,
                ..Default::default()
            },
        );
        let e = est();
        let none = |_: &Hash| false;
        let c = ctx(&e, &none, 0);
        for id in 1..=4 {
            let award = Request::Award {
                spec: spec(id, vec![]),
                epoch: Epoch(1),
                lease_ms: 4_000,
            };
            let a = b.on_request(n(0), &award, Millis(0), &c);
            assert!(a.iter().any(|x| matches!(
                x,
                Action::Send {
                    msg: Request::AwardAck { accepted: true, .. },
                    ..
                }
            )));
        }
        assert!(b.price(&spec(5, vec![]), Millis(0), &c).is_ok());
        let mut big = spec(6, vec![]);
        big.memory_bytes = 200;
        assert!(matches!(
            b.price(&big, Millis(0), &c),
            Err(NoBid::Memory {
                need: 200,
                free: 150
            })
        ));
    }

    #[test]
    fn leases_heartbeat_and_drop_on_newer_epoch_or_cancel() {
        let mut b = one_slot_bidder();
        let e = est();
        let none = |_: &Hash| false;
        let c = ctx(&e, &none, 0);
        let s = spec(1, vec![]);
        let award = Request::Award {
            spec: s.clone(),
            epoch: Epoch(2),
            lease_ms: 4_000,
        };
        let a = b.on_request(n(0), &award, Millis(0), &c);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::StartLocal {
                epoch: Epoch(2),
                ..
            }
        )));
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Send {
                msg: Request::AwardAck { accepted: true, .. },
                ..
            }
        )));
        // A re-sent award is acknowledged again but not started twice.
        let a = b.on_request(n(0), &award, Millis(10), &c);
        assert!(!a.iter().any(|x| matches!(x, Action::StartLocal { .. })));
        // The only slot is busy: a second task waits for it.
        let bid = b.price(&spec(2, vec![]), Millis(100), &c).unwrap();
        assert_eq!(bid.wait_ms, 150);
        let a = b.on_tick(Millis(1_000));
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Send {
                msg: Request::Heartbeat {
                    epoch: Epoch(2),
                    ..
                },
                ..
            }
        )));
        // Awards from anyone but the owner are ignored.
        assert!(b
            .on_request(
                n(5),
                &Request::Cancel {
                    task: s.id,
                    epoch: Epoch(9),
                    reason: CancelReason::Failed
                },
                Millis(1_001),
                &c
            )
            .is_empty());
        // A new round for our task: we lost the lease.
        let ann = Request::TaskAnnounce {
            spec: s.clone(),
            epoch: Epoch(3),
            bid_window_ms: 100,
        };
        let a = b.on_request(n(0), &ann, Millis(1_100), &c);
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Abort {
                epoch: Epoch(2),
                ..
            }
        )));
        assert_eq!(b.leases().count(), 0);
        // A stale award after a cancel is ignored.
        b.on_request(
            n(0),
            &Request::Cancel {
                task: s.id,
                epoch: Epoch(3),
                reason: CancelReason::Superseded,
            },
            Millis(1_200),
            &c,
        );
        assert!(b
            .on_request(
                n(0),
                &Request::Award {
                    spec: s,
                    epoch: Epoch(3),
                    lease_ms: 1
                },
                Millis(1_300),
                &c
            )
            .is_empty());
    }

    #[test]
    fn extreme_peer_values_do_not_overflow() {
        let mut b = Bidder::new(
            n(1),
            BidderConfig {
                memory_bytes: u64::MAX,
                ..Default::default()
            },
        );
        let e = est();
        let none = |_: &Hash| false;
        let c = ctx(&e, &none, 0);
        let mut s = spec(1, vec![blob(3, u64::MAX, &[2, 3])]);
        s.compute_cost = u64::MAX;
        s.memory_bytes = u64::MAX;
        s.output_bytes = u64::MAX;
        s.deadline_in_ms = u64::MAX;
        let _ = b.price(&s, Millis(u64::MAX - 1), &c);
        b.on_request(
            n(0),
            &Request::Award {
                spec: s.clone(),
                epoch: Epoch(u32::MAX),
                lease_ms: u64::MAX,
            },
            Millis(5),
            &c,
        );
        b.on_tick(Millis(u64::MAX));
        b.on_tick(Millis(1_000_000));
        b.on_local_done(
            s.id,
            Epoch(u32::MAX),
            TaskOutput::Blob {
                hash: Hash([0; 32]),
                size: u64::MAX,
            },
            Millis(u64::MAX),
        );
    }

    #[test]
    fn results_are_resent_until_acknowledged() {
        let mut b = Bidder::new(n(1), BidderConfig::default());
        let e = est();
        let none = |_: &Hash| false;
        let c = ctx(&e, &none, 0);
        let s = spec(1, vec![]);
        b.on_request(
            n(0),
            &Request::Award {
                spec: s.clone(),
                epoch: Epoch(1),
                lease_ms: 4_000,
            },
            Millis(0),
            &c,
        );
        let out = TaskOutput::Blob {
            hash: Hash([1; 32]),
            size: 5,
        };
        let a = b.on_local_done(s.id, Epoch(1), out.clone(), Millis(300));
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Send {
                msg: Request::Result(_),
                ..
            }
        )));
        let a = b.on_tick(Millis(1_300));
        assert!(a.iter().any(|x| matches!(
            x,
            Action::Send {
                msg: Request::Result(_),
                ..
            }
        )));
        b.on_request(
            n(0),
            &Request::Cancel {
                task: s.id,
                epoch: Epoch(1),
                reason: CancelReason::Committed,
            },
            Millis(1_400),
            &c,
        );
        assert_eq!(b.leases().count(), 0);
        assert_eq!(b.stats().acknowledged, 1);
        assert_eq!(b.next_timeout(), None);
    }
}
