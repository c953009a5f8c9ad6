//! The discrete-event core: one run of one placement policy over a
//! topology, a workload and a churn schedule.
//!
//! Events sit in a binary heap ordered by time, then by insertion order, so
//! a seed gives one run. Nodes hold the real `shoal-protocol` [`Owner`],
//! [`Bidder`] and [`PeerEstimates`] for the `auction` policy; every message
//! they emit crosses the real codec (its encoded size is what is counted)
//! and arrives after the path latency plus its serialisation time. Data
//! moves as flows of the max-min fair [`Net`].
//!
//! The executor of a node is shared by every policy: inputs are fetched as
//! soon as a task is placed (in parallel, from the blob's holder, retried
//! every 2 s while the holder is down), compute needs one of the node's
//! slots, the output then travels back to the owner. Fetched inputs are
//! scratch space, deleted after the run, so the bytes lower bound holds.

use std::cmp::Ordering;
use std::collections::{BinaryHeap, VecDeque};

use shoal_protocol::{
    encode, Action, BidContext, Bidder, BidderConfig, BlobRef, BoundedVec, Direction, Epoch,
    EstimatesConfig, Hash, Millis, NodeId, NodeStatus, Owner, OwnerConfig, PeerEstimates, Request,
    TaskId, TaskOutput, TaskSpec,
};

use super::net::{Completion, CompletionQueue, Due, FlowId, Net, MAX_PATH};
use super::rng::Rng;
use super::topology::Topology;
use super::workload::Workload;
use super::Policy;

/// How long a worker's death goes unnoticed by a baseline owner, ms (the
/// auction's lease, for a like-for-like failure detector).
const DETECT_MS: f64 = 4_000.0;
/// Pause before a fetch from a holder that is down is tried again, ms.
const FETCH_RETRY_MS: f64 = 2_000.0;
/// Result re-send interval of a baseline worker whose owner is down, ms.
const RESULT_RETRY_MS: f64 = 1_000.0;
/// Status gossip period, ms.
const GOSSIP_MS: f64 = 5_000.0;
/// Link estimates refresh period (pings, background transfers), ms.
const REFRESH_MS: f64 = 30_000.0;
/// Inbound transfers a node runs at once; more wait in a FIFO (the node
/// bounds concurrent transfers too).
const MAX_INBOUND: usize = 4;
/// Input index that marks a flow carrying a task's output.
const OUTPUT_INPUT: u8 = u8::MAX;

/// A node's failures: crash at `down`, back at `up` (ms).
#[derive(Debug, Clone, Copy)]
pub struct Outage {
    /// Node.
    pub node: u32,
    /// Crash time.
    pub down: f64,
    /// Restart time.
    pub up: f64,
}

/// Everything shared by the runs of all policies.
pub struct Setup<'a> {
    /// The network and devices.
    pub topo: &'a Topology,
    /// Blobs and tasks.
    pub work: &'a Workload,
    /// Crashes and restarts.
    pub outages: &'a [Outage],
    /// Peers each node knows (its estimates' peer set).
    pub known: &'a [Vec<u32>],
    /// Seed of the policy's own random choices.
    pub seed: u64,
    /// Override of the auction's `lambda`.
    pub lambda: Option<f64>,
    /// How often flow rates are brought back to max-min fairness, ms; 0:
    /// at every flow start and stop (see [`Net::deferred`]).
    pub rate_interval_ms: f64,
}

/// Raw outcome of one run.
#[derive(Debug, Clone, Default)]
pub struct RunStats {
    /// Completion time per task, ms (None: not committed).
    pub completion: Vec<Option<f64>>,
    /// Commits per task.
    pub commits: Vec<u32>,
    /// Whether the task failed (deadline).
    pub failed: Vec<bool>,
    /// Executions started per task.
    pub starts: Vec<u32>,
    /// Bytes moved over the network (inputs and outputs).
    pub bytes_moved: f64,
    /// Of those, bytes that crossed a cell uplink.
    pub uplink_bytes: f64,
    /// Control messages sent (auction traffic, assignments, probes,
    /// results, status gossip deliveries).
    pub control_msgs: u64,
    /// Their bytes.
    pub control_bytes: u64,
    /// Busy slot time per node, ms.
    pub busy_ms: Vec<f64>,
    /// Time of the last commit or failure, ms.
    pub end_ms: f64,
    /// Events processed.
    pub events: u64,
    /// Messages dropped because the receiver was down.
    pub dropped_msgs: u64,
    /// Per task, whether it was still in progress when the run stopped: a
    /// live node holds a run of it (queued, fetching, computing, sending
    /// its result), or its owner is down with it waiting to be submitted.
    pub in_progress: Vec<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// The auction owner runs its own task (no bid).
    OwnerLocal(Epoch),
    /// The auction bidder runs a lease.
    Lease(Epoch),
    /// A baseline assignment.
    Base(u32),
    /// A power-of-two reservation (late binding), not yet bound.
    Reservation(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum JobState {
    Fetching,
    Ready,
    Binding,
    Computing,
    Pushing,
    Delivering,
    Done,
    Dead,
}

#[derive(Debug, Clone)]
struct Job {
    task: u32,
    node: u32,
    origin: Origin,
    pending: u8,
    holds_slot: bool,
    state: JobState,
    flows: Vec<FlowId>,
    compute_ms: f64,
}

#[derive(Debug, Clone, Copy)]
struct FlowMeta {
    job: u32,
    input: u8,
    src: u32,
    dst: u32,
    bytes: f64,
    started: f64,
}

#[derive(Debug, Clone)]
enum Msg {
    Proto(Box<Request>),
    Assign { task: u32, attempt: u32 },
    Result { task: u32, attempt: u32, job: u32 },
    Reserve { task: u32, attempt: u32 },
    GetTask { task: u32, attempt: u32, job: u32 },
    Reply { job: u32, give: bool },
}

#[derive(Debug, Clone)]
enum Ev {
    Arrive(u32),
    Deliver {
        to: u32,
        from: u32,
        msg: Msg,
    },
    OwnerTimer {
        node: u32,
        gen: u64,
    },
    BidderTimer {
        node: u32,
        gen: u64,
    },
    FlowDone {
        flow: FlowId,
        version: u32,
    },
    Fetched {
        job: u32,
    },
    FetchRetry {
        job: u32,
        input: u8,
    },
    ComputeDone {
        job: u32,
    },
    Crash(u32),
    Restart(u32),
    Gossip(u32),
    Refresh(u32),
    Detect {
        task: u32,
        attempt: u32,
    },
    ResultRetry {
        job: u32,
    },
    RateTick,
    /// Spillback: place the tasks waiting for a free slot anywhere.
    Drain,
}

struct Entry {
    at: f64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.total_cmp(&self.at).then(o.seq.cmp(&self.seq))
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Snapshot {
    load: u32,
    free_slots: u16,
    mem_used: u64,
}

/// Tells the owner's estimates how long a task would wait for a slot
/// here, from the node's own bidder (the owner quotes itself with it).
fn sync_local_wait(n: &mut Node, now: Millis) {
    let inbound = n.inbound_backlog();
    if let (Some(b), Some(est)) = (n.bidder.as_ref(), n.est.as_mut()) {
        est.set_local_wait_ms(b.queue_wait_ms(now));
        est.set_local_inbound(inbound);
    }
}

struct Node {
    up: bool,
    owner: Option<Owner>,
    bidder: Option<Bidder>,
    est: Option<PeerEstimates>,
    owner_gen: u64,
    bidder_gen: u64,
    busy: u16,
    ready: VecDeque<u32>,
    jobs: Vec<u32>,
    inbound: usize,
    backlog: f64,
    mem_used: u64,
    waiting: Vec<u32>,
    fetch_queue: VecDeque<(u32, u8)>,
    rr: usize,
}

impl Node {
    /// Inbound transfers running and waiting their turn: a new fetch
    /// lands behind all of them (what bids and the own quote price).
    fn inbound_backlog(&self) -> usize {
        self.inbound + self.fetch_queue.len()
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct BaseTask {
    attempt: u32,
    worker: u32,
    bound: bool,
    outstanding: u8,
    committed: bool,
    submitted: bool,
}

/// One simulation run.
pub struct Sim<'a> {
    s: &'a Setup<'a>,
    policy: Policy,
    now: f64,
    seq: u64,
    heap: BinaryHeap<Entry>,
    // Flow completions, kept apart from `heap` (see `CompletionQueue`).
    due: CompletionQueue,
    changed: Vec<Completion>,
    net: Net,
    nodes: Vec<Node>,
    jobs: Vec<Job>,
    flow_meta: Vec<Option<FlowMeta>>,
    snap: Vec<Snapshot>,
    base: Vec<BaseTask>,
    owned: Vec<Vec<u32>>,
    runtime: Vec<f64>,
    rng: Rng,
    st: RunStats,
    finished: usize,
    base_msg_bytes: u64,
    owner_cfg: OwnerConfig,
    tick_pending: bool,
    /// Spillback: tasks (and their attempt) waiting until some node has a
    /// free slot, oldest first, as in a raylet's queue.
    pending: VecDeque<(u32, u32)>,
    drain_pending: bool,
    /// Assignments sent to each node and not yet arrived.
    inflight: Vec<u32>,
}

fn nid(i: u32) -> NodeId {
    NodeId::from_u64(u64::from(i))
}

fn idx(n: &NodeId) -> Option<u32> {
    let b = n.as_bytes();
    if b.len() != 8 {
        return None;
    }
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    u32::try_from(u64::from_be_bytes(a)).ok()
}

fn blob_hash(b: u32) -> Hash {
    let mut h = [0u8; 32];
    h[..4].copy_from_slice(&b.to_le_bytes());
    h[31] = 0xb1;
    Hash(h)
}

fn blob_of(h: &Hash) -> Option<u32> {
    if h.0[31] != 0xb1 {
        return None;
    }
    let mut a = [0u8; 4];
    a.copy_from_slice(&h.0[..4]);
    Some(u32::from_le_bytes(a))
}

impl<'a> Sim<'a> {
    /// Prepares a run of `policy`.
    pub fn new(s: &'a Setup<'a>, policy: Policy) -> Sim<'a> {
        let n = s.topo.len();
        let t = s.work.tasks.len();
        let auction = policy == Policy::Auction;
        let mut owner_cfg = OwnerConfig::default();
        if let Some(l) = s.lambda {
            owner_cfg.lambda = l;
        }
        let nodes = (0..n)
            .map(|i| {
                let d = &s.topo.nodes[i];
                Node {
                    up: true,
                    owner: auction.then(|| Owner::new(nid(i as u32), owner_cfg.clone())),
                    bidder: auction.then(|| Bidder::new(nid(i as u32), bidder_cfg(s.topo, i))),
                    est: auction.then(|| PeerEstimates::new(EstimatesConfig::default(), d.class)),
                    owner_gen: 0,
                    bidder_gen: 0,
                    busy: 0,
                    ready: VecDeque::new(),
                    jobs: Vec::new(),
                    inbound: 0,
                    backlog: 0.0,
                    mem_used: 0,
                    waiting: Vec::new(),
                    fetch_queue: VecDeque::new(),
                    rr: 0,
                }
            })
            .collect();
        let mut owned = vec![Vec::new(); n];
        for (i, task) in s.work.tasks.iter().enumerate() {
            owned[task.owner as usize].push(i as u32);
        }
        // A baseline assignment carries the same spec an award does.
        let base_msg_bytes = s
            .work
            .tasks
            .first()
            .map(|_| {
                let spec = spec_of(s, 0, 0.0);
                encode(&Request::Award {
                    spec,
                    epoch: Epoch(1),
                    lease_ms: 4_000,
                })
                .map_or(200, |v| v.len() as u64)
            })
            .unwrap_or(200);
        let mut sim = Sim {
            s,
            policy,
            now: 0.0,
            seq: 0,
            heap: BinaryHeap::new(),
            due: CompletionQueue::default(),
            changed: Vec::new(),
            net: if s.rate_interval_ms > 0.0 {
                Net::deferred(s.topo.capacity.clone())
            } else {
                Net::new(s.topo.capacity.clone())
            },
            nodes,
            jobs: Vec::new(),
            flow_meta: Vec::new(),
            snap: vec![Snapshot::default(); n],
            base: vec![BaseTask::default(); t],
            owned,
            runtime: vec![0.0; t],
            rng: Rng::fork(s.seed, 1_000 + policy.stream()),
            st: RunStats {
                completion: vec![None; t],
                commits: vec![0; t],
                failed: vec![false; t],
                starts: vec![0; t],
                busy_ms: vec![0.0; n],
                ..Default::default()
            },
            finished: 0,
            base_msg_bytes,
            owner_cfg,
            tick_pending: false,
            pending: VecDeque::new(),
            drain_pending: false,
            inflight: vec![0; n],
        };
        for i in 0..n {
            sim.snap[i] = Snapshot {
                load: 0,
                free_slots: s.topo.nodes[i].slots,
                mem_used: 0,
            };
        }
        if auction {
            for i in 0..n {
                sim.seed_estimates(i as u32);
            }
        }
        for (i, task) in s.work.tasks.iter().enumerate() {
            sim.push(task.arrival, Ev::Arrive(i as u32));
        }
        for o in s.outages {
            sim.push(o.down, Ev::Crash(o.node));
            sim.push(o.up, Ev::Restart(o.node));
        }
        for i in 0..n {
            let phase = sim.rng.range(0.0, GOSSIP_MS);
            sim.push(phase, Ev::Gossip(i as u32));
            if auction {
                let phase = sim.rng.range(0.0, REFRESH_MS);
                sim.push(phase, Ev::Refresh(i as u32));
            }
        }
        sim
    }

    fn push(&mut self, at: f64, ev: Ev) {
        self.seq += 1;
        self.heap.push(Entry {
            at: at.max(self.now),
            seq: self.seq,
            ev,
        });
    }

    fn ms(&self) -> Millis {
        Millis(self.now.max(0.0) as u64)
    }

    /// Runs until every task is committed or failed (or nothing is left to
    /// happen, or `horizon_ms` passes); returns the counters.
    pub fn run(mut self, horizon_ms: f64) -> RunStats {
        let total = self.s.work.tasks.len();
        loop {
            // The next event is the earlier of the two queues' heads, by
            // time then sequence number, as if they were one heap.
            let flow_first = match (self.heap.peek(), self.due.peek()) {
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(e), Some(d)) => d.at.total_cmp(&e.at).then(d.seq.cmp(&e.seq)).is_lt(),
            };
            let (at, ev) = if flow_first {
                let Some(d) = self.due.pop() else { break };
                (
                    d.at,
                    Ev::FlowDone {
                        flow: d.flow,
                        version: d.version,
                    },
                )
            } else {
                let Some(e) = self.heap.pop() else { break };
                (e.at, e.ev)
            };
            if at > horizon_ms {
                break;
            }
            self.now = at;
            self.st.events += 1;
            self.handle(ev);
            if self.finished >= total {
                break;
            }
        }
        let mut in_progress = vec![false; total];
        let live = self
            .jobs
            .iter()
            .filter(|x| !matches!(x.state, JobState::Dead | JobState::Done))
            .map(|x| x.task);
        let waiting = self.nodes.iter().flat_map(|n| n.waiting.iter().copied());
        let queued = self
            .pending
            .iter()
            .filter(|(t, a)| self.still_waiting(*t, *a))
            .map(|(t, _)| *t);
        for t in live.chain(waiting).chain(queued) {
            if let Some(p) = in_progress.get_mut(t as usize) {
                *p = true;
            }
        }
        self.st.in_progress = in_progress;
        self.st
    }

    fn handle(&mut self, ev: Ev) {
        // A finished computation or a node back up frees a slot.
        let frees = matches!(ev, Ev::ComputeDone { .. } | Ev::Restart(_));
        match ev {
            Ev::Arrive(t) => self.arrive(t),
            Ev::RateTick => {
                self.tick_pending = false;
                self.net.flush(self.now);
                self.schedule_flows();
            }
            Ev::Deliver { to, from, msg } => self.deliver(to, from, msg),
            Ev::OwnerTimer { node, gen } => {
                let now = self.ms();
                let n = &mut self.nodes[node as usize];
                if n.up && n.owner_gen == gen {
                    sync_local_wait(n, now);
                    if let (Some(o), Some(est)) = (n.owner.as_mut(), n.est.as_ref()) {
                        let a = o.on_tick(now, est);
                        self.apply(node, true, a);
                    }
                }
            }
            Ev::BidderTimer { node, gen } => {
                let now = self.ms();
                let n = &mut self.nodes[node as usize];
                if n.up && n.bidder_gen == gen {
                    if let Some(b) = n.bidder.as_mut() {
                        let a = b.on_tick(now);
                        self.apply(node, false, a);
                    }
                }
            }
            Ev::FlowDone { flow, version } => self.flow_done(flow, version),
            Ev::Fetched { job } => self.fetched(job),
            Ev::FetchRetry { job, input } => self.fetch(job, input),
            Ev::ComputeDone { job } => self.compute_done(job),
            Ev::Crash(node) => self.crash(node),
            Ev::Restart(node) => self.restart(node),
            Ev::Gossip(node) => self.gossip(node),
            Ev::Refresh(node) => self.refresh(node),
            Ev::Detect { task, attempt } => self.detect(task, attempt),
            Ev::ResultRetry { job } => self.base_deliver(job),
            Ev::Drain => self.drain(),
        }
        if frees && !self.pending.is_empty() && !self.drain_pending {
            self.drain_pending = true;
            self.push(self.now, Ev::Drain);
        }
    }

    // ---------------------------------------------------------------- tasks

    fn arrive(&mut self, t: u32) {
        let owner = self.s.work.tasks[t as usize].owner;
        if !self.nodes[owner as usize].up {
            // The submitter is down: the task is submitted when it is back
            // (its completion time still counts from the arrival).
            self.nodes[owner as usize].waiting.push(t);
            return;
        }
        self.submit(t);
    }

    fn submit(&mut self, t: u32) {
        let owner = self.s.work.tasks[t as usize].owner;
        if self.policy == Policy::Auction {
            self.refresh_status_view(owner, t);
            let spec = spec_of(self.s, t, self.now - self.s.work.tasks[t as usize].arrival);
            let now = self.ms();
            let n = &mut self.nodes[owner as usize];
            // The owner may keep the task on its own quote without an
            // auction, as the node does after refreshing its queue wait.
            sync_local_wait(n, now);
            if let (Some(o), Some(est)) = (n.owner.as_mut(), n.est.as_ref()) {
                match o.submit(spec, now, est) {
                    Ok(a) => self.apply(owner, true, a),
                    // Only a full owner refuses (1024 tasks held); the user
                    // would retry, so does the simulation.
                    Err(_) => self.push(self.now + 1_000.0, Ev::Arrive(t)),
                }
            }
        } else {
            self.base[t as usize].submitted = true;
            self.dispatch(t);
        }
    }

    fn commit(&mut self, t: u32) {
        let i = t as usize;
        self.st.commits[i] += 1;
        if self.st.commits[i] == 1 && !self.st.failed[i] {
            self.st.completion[i] = Some(self.now - self.s.work.tasks[i].arrival);
            self.finished += 1;
            self.st.end_ms = self.st.end_ms.max(self.now);
        }
    }

    fn fail(&mut self, t: u32) {
        let i = t as usize;
        if !self.st.failed[i] && self.st.commits[i] == 0 {
            self.st.failed[i] = true;
            self.finished += 1;
            self.st.end_ms = self.st.end_ms.max(self.now);
        }
    }

    // ------------------------------------------------------------- messages

    fn send(&mut self, from: u32, to: u32, msg: Msg, bytes: u64) {
        self.st.control_msgs += 1;
        self.st.control_bytes += bytes;
        let (a, b) = (from as usize, to as usize);
        let delay = if a == b {
            0.0
        } else {
            self.s.topo.latency(a, b) + bytes as f64 / self.s.topo.path_capacity(a, b)
        };
        self.push(self.now + delay, Ev::Deliver { to, from, msg });
    }

    fn deliver(&mut self, to: u32, from: u32, msg: Msg) {
        if let Msg::Assign { .. } = msg {
            let f = &mut self.inflight[to as usize];
            *f = f.saturating_sub(1);
        }
        if !self.nodes[to as usize].up {
            self.st.dropped_msgs += 1;
            self.dropped(to, from, msg);
            return;
        }
        match msg {
            Msg::Proto(req) => self.deliver_proto(to, from, &req),
            Msg::Assign { task, attempt } => {
                self.start_job(to, task, Origin::Base(attempt));
            }
            Msg::Result { task, attempt, job } => {
                // The acknowledgement travels back (counted, not simulated).
                self.st.control_msgs += 1;
                self.st.control_bytes += 32;
                if let Some(j) = self.jobs.get_mut(job as usize) {
                    if j.state == JobState::Delivering {
                        j.state = JobState::Done;
                        // The worker forgets the run once acknowledged.
                        self.forget_job(job);
                    }
                }
                self.base_result(task, attempt);
            }
            Msg::Reserve { task, attempt } => {
                let j = self.new_job(to, task, Origin::Reservation(attempt));
                self.jobs[j as usize].state = JobState::Ready;
                self.nodes[to as usize].ready.push_back(j);
                self.try_run(to);
            }
            Msg::GetTask { task, attempt, job } => {
                let b = &mut self.base[task as usize];
                b.outstanding = b.outstanding.saturating_sub(1);
                let give = !b.committed && !b.bound && b.attempt == attempt;
                if give {
                    b.bound = true;
                    b.worker = from;
                }
                let retry = !give && !b.bound && b.outstanding == 0 && !b.committed;
                let bytes = if give { self.base_msg_bytes } else { 32 };
                self.send(to, from, Msg::Reply { job, give }, bytes);
                if retry {
                    self.push(self.now, Ev::Detect { task, attempt });
                }
            }
            Msg::Reply { job, give } => self.bind(job, give),
        }
    }

    /// A message reached a node that is down.
    fn dropped(&mut self, to: u32, from: u32, msg: Msg) {
        match msg {
            Msg::Assign { task, attempt } => {
                self.push(self.now + DETECT_MS, Ev::Detect { task, attempt })
            }
            Msg::Result { job, .. } => {
                if self.job_alive(job) {
                    self.push(self.now + RESULT_RETRY_MS, Ev::ResultRetry { job });
                }
            }
            Msg::Reserve { task, attempt } => {
                let b = &mut self.base[task as usize];
                b.outstanding = b.outstanding.saturating_sub(1);
                if b.outstanding == 0 && !b.bound {
                    self.push(self.now + DETECT_MS, Ev::Detect { task, attempt });
                }
            }
            Msg::GetTask { task, job, .. } => {
                // Connection refused: the worker moves on at once.
                let b = &mut self.base[task as usize];
                b.outstanding = b.outstanding.saturating_sub(1);
                let _ = from;
                self.bind(job, false);
            }
            Msg::Reply { job, give: true } => self.binding_lost(job),
            Msg::Reply { .. } | Msg::Proto(_) => {}
        }
        let _ = to;
    }

    fn deliver_proto(&mut self, to: u32, from: u32, req: &Request) {
        let now = self.ms();
        let me = to as usize;
        match req {
            Request::Bid(_) | Request::AwardAck { .. } | Request::Heartbeat { .. } => {
                let n = &mut self.nodes[me];
                // A bid can close an auction and a declined award can start
                // one; both may weigh the owner's own quote (as the node).
                if matches!(req, Request::Bid(_) | Request::AwardAck { .. }) {
                    sync_local_wait(n, now);
                }
                if let (Some(o), Some(est)) = (n.owner.as_mut(), n.est.as_ref()) {
                    let a = o.on_request(nid(from), req, now, est);
                    self.apply(to, true, a);
                }
            }
            Request::Result(r) => {
                // The result carries its run time (as GET /v1/tasks shows
                // it): the owner learns the worker's speed.
                if let Ok(t) = u32::try_from(r.task.0) {
                    let rt = self.runtime.get(t as usize).copied().unwrap_or(0.0);
                    let task = &self.s.work.tasks[t as usize];
                    if rt > 0.0 {
                        if let Some(est) = self.nodes[me].est.as_mut() {
                            est.on_runtime(nid(from), task.kind, task.cost, rt as u64, now);
                        }
                    }
                }
                let n = &mut self.nodes[me];
                if let (Some(o), Some(est)) = (n.owner.as_mut(), n.est.as_ref()) {
                    let a = o.on_request(nid(from), req, now, est);
                    self.apply(to, true, a);
                }
            }
            Request::TaskAnnounce { .. } | Request::Award { .. } | Request::Cancel { .. } => {
                let blobs = &self.s.work.blobs;
                let has = |h: &Hash| blob_of(h).is_some_and(|b| blobs[b as usize].holder == to);
                let n = &mut self.nodes[me];
                let inbound = n.inbound_backlog();
                if let (Some(b), Some(est)) = (n.bidder.as_mut(), n.est.as_ref()) {
                    let ctx = BidContext {
                        estimates: est,
                        has_blob: &has,
                        inbound_transfers: inbound,
                    };
                    let a = b.on_request(nid(from), req, now, &ctx);
                    self.apply(to, false, a);
                }
            }
            _ => {}
        }
    }

    /// Performs what a state machine of `node` asked for.
    fn apply(&mut self, node: u32, owner: bool, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, msg } => {
                    let Some(to) = idx(&to) else { continue };
                    if to as usize >= self.nodes.len() {
                        continue;
                    }
                    let bytes = encode(&msg).map_or(0, |v| v.len() as u64);
                    self.send(node, to, Msg::Proto(Box::new(msg)), bytes);
                }
                Action::StartLocal { task, epoch } => {
                    let Ok(t) = u32::try_from(task.id.0) else {
                        continue;
                    };
                    let origin = if owner {
                        Origin::OwnerLocal(epoch)
                    } else {
                        Origin::Lease(epoch)
                    };
                    self.start_job(node, t, origin);
                }
                Action::Abort { task, .. } => {
                    let Ok(t) = u32::try_from(task.0) else {
                        continue;
                    };
                    let ids: Vec<u32> = self.nodes[node as usize]
                        .jobs
                        .iter()
                        .copied()
                        .filter(|j| {
                            let job = &self.jobs[*j as usize];
                            job.task == t
                                && matches!(
                                    (owner, job.origin),
                                    (true, Origin::OwnerLocal(_)) | (false, Origin::Lease(_))
                                )
                        })
                        .collect();
                    for j in ids {
                        self.kill_job(j);
                    }
                }
                Action::Commit { task, .. } => {
                    if let Ok(t) = u32::try_from(task.0) {
                        self.commit(t);
                    }
                }
                Action::Fail { task, .. } => {
                    if let Ok(t) = u32::try_from(task.0) {
                        self.fail(t);
                    }
                }
                Action::SetTimer { at } => {
                    let n = &mut self.nodes[node as usize];
                    let gen = if owner {
                        n.owner_gen += 1;
                        Ev::OwnerTimer {
                            node,
                            gen: n.owner_gen,
                        }
                    } else {
                        n.bidder_gen += 1;
                        Ev::BidderTimer {
                            node,
                            gen: n.bidder_gen,
                        }
                    };
                    self.push(at.0 as f64, gen);
                }
                Action::Broadcast { .. } | Action::FetchModel { .. } => {}
            }
        }
    }

    // ------------------------------------------------------------- executor

    fn new_job(&mut self, node: u32, task: u32, origin: Origin) -> u32 {
        let j = self.jobs.len() as u32;
        self.jobs.push(Job {
            task,
            node,
            origin,
            pending: 0,
            holds_slot: false,
            state: JobState::Fetching,
            flows: Vec::new(),
            compute_ms: 0.0,
        });
        self.nodes[node as usize].jobs.push(j);
        j
    }

    fn job_alive(&self, j: u32) -> bool {
        self.jobs
            .get(j as usize)
            .is_some_and(|x| !matches!(x.state, JobState::Dead | JobState::Done))
    }

    fn start_job(&mut self, node: u32, task: u32, origin: Origin) {
        // A repeated assignment of the same attempt is not run twice.
        let dup = self.nodes[node as usize].jobs.iter().any(|j| {
            let x = &self.jobs[*j as usize];
            x.task == task && x.origin == origin && self.job_alive(*j)
        });
        if dup {
            return;
        }
        let j = self.new_job(node, task, origin);
        self.begin(j);
    }

    /// Counts the execution and starts fetching the missing inputs.
    fn begin(&mut self, j: u32) {
        let (task, node) = {
            let x = &self.jobs[j as usize];
            (x.task, x.node)
        };
        let def = &self.s.work.tasks[task as usize];
        self.st.starts[task as usize] += 1;
        let n = &mut self.nodes[node as usize];
        n.backlog += def.cost as f64;
        n.mem_used += def.memory;
        let missing: Vec<u8> = def
            .inputs
            .iter()
            .enumerate()
            .filter(|(_, b)| self.s.work.blobs[**b as usize].holder != node)
            .map(|(i, _)| i as u8)
            .collect();
        self.jobs[j as usize].pending = missing.len() as u8;
        self.jobs[j as usize].state = JobState::Fetching;
        if missing.is_empty() {
            self.inputs_ready(j);
        }
        for i in missing {
            self.fetch(j, i);
        }
    }

    fn fetch(&mut self, j: u32, input: u8) {
        if !self.job_alive(j) {
            return;
        }
        let (task, node) = {
            let x = &self.jobs[j as usize];
            (x.task, x.node)
        };
        let b = self.s.work.tasks[task as usize].inputs[input as usize];
        let blob = &self.s.work.blobs[b as usize];
        let holder = blob.holder;
        if !self.nodes[holder as usize].up {
            self.push(self.now + FETCH_RETRY_MS, Ev::FetchRetry { job: j, input });
            return;
        }
        if self.nodes[node as usize].inbound >= MAX_INBOUND {
            self.nodes[node as usize].fetch_queue.push_back((j, input));
            return;
        }
        self.start_flow(j, input, holder, node, blob.size as f64);
    }

    /// An inbound transfer of `node` ended: start the next waiting one.
    fn next_fetch(&mut self, node: u32) {
        while self.nodes[node as usize].up && self.nodes[node as usize].inbound < MAX_INBOUND {
            let Some((j, input)) = self.nodes[node as usize].fetch_queue.pop_front() else {
                break;
            };
            self.fetch(j, input);
        }
    }

    fn start_flow(&mut self, j: u32, input: u8, src: u32, dst: u32, bytes: f64) {
        let mut p = [0; MAX_PATH];
        let k = self.s.topo.path(src as usize, dst as usize, &mut p);
        let f = self.net.start(self.now, &p[..k], bytes);
        if self.flow_meta.len() <= f as usize {
            self.flow_meta.resize(f as usize + 1, None);
        }
        self.flow_meta[f as usize] = Some(FlowMeta {
            job: j,
            input,
            src,
            dst,
            bytes,
            started: self.now,
        });
        self.jobs[j as usize].flows.push(f);
        if input != OUTPUT_INPUT {
            self.nodes[dst as usize].inbound += 1;
        }
        self.schedule_flows();
    }

    fn schedule_flows(&mut self) {
        let mut changed = std::mem::take(&mut self.changed);
        self.net.take_changed_into(&mut changed);
        for c in changed.drain(..) {
            // Numbered and clamped as `push` does for other events.
            self.seq += 1;
            self.due.set(Due {
                at: c.at.max(self.now),
                seq: self.seq,
                flow: c.flow,
                version: c.version,
            });
        }
        self.changed = changed;
        if self.net.is_dirty() && !self.tick_pending {
            // Rates are brought back to max-min fairness on a fixed grid
            // of instants, so changes close in time share one recompute.
            let q = self.s.rate_interval_ms;
            let at = ((self.now / q).floor() + 1.0) * q;
            self.tick_pending = true;
            self.push(at, Ev::RateTick);
        }
    }

    fn stop_flow(&mut self, f: FlowId) -> Option<FlowMeta> {
        let meta = self.flow_meta.get_mut(f as usize)?.take()?;
        let left = self.net.stop(self.now, f).unwrap_or(0.0);
        self.due.remove(f);
        let moved = (meta.bytes - left).max(0.0);
        self.count_bytes(meta.src, meta.dst, moved);
        if let Some(job) = self.jobs.get_mut(meta.job as usize) {
            job.flows.retain(|x| *x != f);
        }
        self.schedule_flows();
        if meta.input != OUTPUT_INPUT {
            let n = &mut self.nodes[meta.dst as usize];
            n.inbound = n.inbound.saturating_sub(1);
            self.next_fetch(meta.dst);
        }
        Some(meta)
    }

    fn count_bytes(&mut self, src: u32, dst: u32, bytes: f64) {
        self.st.bytes_moved += bytes;
        if self.s.topo.crosses_uplink(src as usize, dst as usize) {
            self.st.uplink_bytes += bytes;
        }
    }

    fn flow_done(&mut self, f: FlowId, version: u32) {
        if !self.net.is_current(f, version) {
            return;
        }
        let Some(meta) = self.stop_flow(f) else {
            return;
        };
        let dur = (self.now - meta.started).max(1.0);
        // Both ends measured a real transfer.
        let now = self.ms();
        if let Some(est) = self.nodes[meta.dst as usize].est.as_mut() {
            est.on_transfer(
                nid(meta.src),
                Direction::Inbound,
                meta.bytes as u64,
                dur as u64,
                now,
            );
        }
        if let Some(est) = self.nodes[meta.src as usize].est.as_mut() {
            est.on_transfer(
                nid(meta.dst),
                Direction::Outbound,
                meta.bytes as u64,
                dur as u64,
                now,
            );
        }
        // The request went out one latency before the first byte, the last
        // byte lands one latency after it left.
        let lat = self.s.topo.latency(meta.src as usize, meta.dst as usize);
        if meta.input == OUTPUT_INPUT {
            self.push(
                self.now + lat,
                Ev::Fetched {
                    job: meta.job | (1 << 31),
                },
            );
        } else {
            self.push(self.now + 2.0 * lat, Ev::Fetched { job: meta.job });
        }
    }

    fn fetched(&mut self, j: u32) {
        if j & (1 << 31) != 0 {
            let j = j & !(1 << 31);
            if self.job_alive(j) && self.jobs[j as usize].state == JobState::Pushing {
                self.deliver_result(j);
            }
            return;
        }
        if !self.job_alive(j) || self.jobs[j as usize].state != JobState::Fetching {
            return;
        }
        let x = &mut self.jobs[j as usize];
        x.pending = x.pending.saturating_sub(1);
        if x.pending == 0 {
            self.inputs_ready(j);
        }
    }

    fn inputs_ready(&mut self, j: u32) {
        let x = &mut self.jobs[j as usize];
        let node = x.node;
        if x.holds_slot {
            self.start_compute(j);
        } else {
            x.state = JobState::Ready;
            self.nodes[node as usize].ready.push_back(j);
            self.try_run(node);
        }
    }

    fn try_run(&mut self, node: u32) {
        let slots = self.s.topo.nodes[node as usize].slots;
        while self.nodes[node as usize].busy < slots {
            let Some(j) = self.nodes[node as usize].ready.pop_front() else {
                break;
            };
            if !self.job_alive(j) || self.jobs[j as usize].state != JobState::Ready {
                continue;
            }
            self.nodes[node as usize].busy += 1;
            self.jobs[j as usize].holds_slot = true;
            match self.jobs[j as usize].origin {
                Origin::Reservation(attempt) => {
                    // Late binding: ask the owner for the task now.
                    self.jobs[j as usize].state = JobState::Binding;
                    let task = self.jobs[j as usize].task;
                    let owner = self.s.work.tasks[task as usize].owner;
                    self.send(
                        node,
                        owner,
                        Msg::GetTask {
                            task,
                            attempt,
                            job: j,
                        },
                        32,
                    );
                }
                _ => self.start_compute(j),
            }
        }
    }

    fn release_slot(&mut self, j: u32) {
        let x = &mut self.jobs[j as usize];
        if x.holds_slot {
            x.holds_slot = false;
            let n = &mut self.nodes[x.node as usize];
            n.busy = n.busy.saturating_sub(1);
        }
    }

    fn start_compute(&mut self, j: u32) {
        let (task, node) = {
            let x = &self.jobs[j as usize];
            (x.task, x.node)
        };
        let cost = self.s.work.tasks[task as usize].cost as f64;
        let ms = cost / self.s.topo.nodes[node as usize].speed;
        let x = &mut self.jobs[j as usize];
        x.state = JobState::Computing;
        x.compute_ms = ms;
        self.push(self.now + ms, Ev::ComputeDone { job: j });
    }

    fn compute_done(&mut self, j: u32) {
        if !self.job_alive(j) || self.jobs[j as usize].state != JobState::Computing {
            return;
        }
        let (task, node, ms) = {
            let x = &self.jobs[j as usize];
            (x.task, x.node, x.compute_ms)
        };
        self.release_slot(j);
        self.st.busy_ms[node as usize] += ms;
        let def = &self.s.work.tasks[task as usize];
        let n = &mut self.nodes[node as usize];
        n.backlog = (n.backlog - def.cost as f64).max(0.0);
        n.mem_used = n.mem_used.saturating_sub(def.memory);
        self.runtime[task as usize] = ms;
        let now = self.ms();
        if let Some(est) = self.nodes[node as usize].est.as_mut() {
            est.on_local_runtime(def.kind, def.cost, ms as u64, now);
        }
        let owner = def.owner;
        let out = def.output as f64;
        if owner != node && out > 0.0 && self.nodes[owner as usize].up {
            self.jobs[j as usize].state = JobState::Pushing;
            self.start_flow(j, OUTPUT_INPUT, node, owner, out);
        } else {
            self.deliver_result(j);
        }
        self.try_run(node);
    }

    /// The output is at the owner (or stays here while the owner is down):
    /// report to the machine that started the run.
    fn deliver_result(&mut self, j: u32) {
        let (task, node, origin) = {
            let x = &self.jobs[j as usize];
            (x.task, x.node, x.origin)
        };
        let now = self.ms();
        let def = &self.s.work.tasks[task as usize];
        let output = TaskOutput::Blob {
            hash: blob_hash(u32::MAX - task),
            size: def.output,
        };
        match origin {
            Origin::OwnerLocal(epoch) => {
                self.jobs[j as usize].state = JobState::Done;
                self.forget_job(j);
                let n = &mut self.nodes[node as usize];
                if let Some(o) = n.owner.as_mut() {
                    let a = o.on_local_done(TaskId(u128::from(task)), epoch, output, now);
                    self.apply(node, true, a);
                }
            }
            Origin::Lease(epoch) => {
                self.jobs[j as usize].state = JobState::Done;
                self.forget_job(j);
                let n = &mut self.nodes[node as usize];
                if let Some(b) = n.bidder.as_mut() {
                    let a = b.on_local_done(TaskId(u128::from(task)), epoch, output, now);
                    self.apply(node, false, a);
                }
            }
            Origin::Base(_) => {
                self.jobs[j as usize].state = JobState::Delivering;
                self.base_deliver(j);
            }
            Origin::Reservation(_) => {}
        }
    }

    fn forget_job(&mut self, j: u32) {
        let node = self.jobs[j as usize].node;
        let jobs = &mut self.nodes[node as usize].jobs;
        if let Some(i) = jobs.iter().position(|x| *x == j) {
            jobs.swap_remove(i);
        }
    }

    fn kill_job(&mut self, j: u32) {
        if !self.job_alive(j) {
            return;
        }
        let flows = std::mem::take(&mut self.jobs[j as usize].flows);
        for f in flows {
            self.stop_flow(f);
        }
        let x = &self.jobs[j as usize];
        let (task, node, state) = (x.task, x.node, x.state);
        if !matches!(state, JobState::Pushing | JobState::Delivering)
            && !matches!(x.origin, Origin::Reservation(_))
        {
            let def = &self.s.work.tasks[task as usize];
            let n = &mut self.nodes[node as usize];
            n.backlog = (n.backlog - def.cost as f64).max(0.0);
            n.mem_used = n.mem_used.saturating_sub(def.memory);
        }
        self.release_slot(j);
        self.jobs[j as usize].state = JobState::Dead;
        self.forget_job(j);
        if self.nodes[node as usize].up {
            self.try_run(node);
        }
    }

    // ------------------------------------------------------------ baselines

    fn dispatch(&mut self, t: u32) {
        let owner = self.s.work.tasks[t as usize].owner;
        if !self.nodes[owner as usize].up || self.base[t as usize].committed {
            return;
        }
        let b = &mut self.base[t as usize];
        b.attempt += 1;
        b.bound = false;
        b.outstanding = 0;
        let attempt = b.attempt;
        if self.policy == Policy::PowerOfTwo {
            let c = self.candidates(owner, t);
            let first = c[self.rng.below(c.len())];
            let mut second = first;
            if c.len() > 1 {
                while second == first {
                    second = c[self.rng.below(c.len())];
                }
            }
            let probes = if second == first {
                vec![first]
            } else {
                vec![first, second]
            };
            self.base[t as usize].outstanding = probes.len() as u8;
            for w in probes {
                self.send(owner, w, Msg::Reserve { task: t, attempt }, 48);
            }
            return;
        }
        // Under spillback a task does not overtake those already waiting.
        let waiting = self.policy == Policy::Spillback && !self.pending.is_empty();
        match if waiting { None } else { self.choose(owner, t) } {
            Some(w) => self.assign(owner, t, w, attempt),
            None => {
                // Spillback, no free slot anywhere: the task waits.
                self.base[t as usize].worker = owner;
                self.pending.push_back((t, attempt));
            }
        }
    }

    /// Spillback: places waiting tasks, oldest first, while some node has
    /// a free slot. A task whose owner is down waits for the owner's
    /// restart, which re-dispatches it.
    fn drain(&mut self) {
        self.drain_pending = false;
        while let Some(&(t, attempt)) = self.pending.front() {
            if !self.still_waiting(t, attempt) {
                self.pending.pop_front();
                continue;
            }
            let owner = self.s.work.tasks[t as usize].owner;
            let Some(w) = self.spillback(owner, t) else {
                break;
            };
            self.pending.pop_front();
            self.assign(owner, t, w, attempt);
        }
    }

    /// Whether the waiting entry `(t, attempt)` is still the task's current
    /// attempt, uncommitted, with its owner up (else the owner's restart
    /// or a newer attempt has taken over).
    fn still_waiting(&self, t: u32, attempt: u32) -> bool {
        let b = &self.base[t as usize];
        let owner = self.s.work.tasks[t as usize].owner;
        b.attempt == attempt && !b.committed && self.nodes[owner as usize].up
    }

    fn assign(&mut self, owner: u32, t: u32, w: u32, attempt: u32) {
        self.base[t as usize].worker = w;
        if w == owner {
            self.start_job(w, t, Origin::Base(attempt));
        } else {
            self.inflight[w as usize] += 1;
            let bytes = self.base_msg_bytes;
            self.send(owner, w, Msg::Assign { task: t, attempt }, bytes);
        }
    }

    /// The reservation `j` at the head of its queue heard from the owner.
    fn bind(&mut self, j: u32, give: bool) {
        if !self.job_alive(j) || self.jobs[j as usize].state != JobState::Binding {
            if give {
                self.binding_lost(j);
            }
            return;
        }
        let Origin::Reservation(attempt) = self.jobs[j as usize].origin else {
            return;
        };
        if give {
            // Keep the slot, turn the reservation into the run.
            self.jobs[j as usize].origin = Origin::Base(attempt);
            self.begin(j);
        } else {
            let node = self.jobs[j as usize].node;
            self.release_slot(j);
            self.jobs[j as usize].state = JobState::Done;
            self.forget_job(j);
            self.try_run(node);
        }
    }

    /// The owner gave its task to reservation `j`, which died in the
    /// meantime (its node crashed after asking, before the answer came):
    /// the task is bound to a run that will not happen. The owner's
    /// failure detector notices, as for any worker lost mid-run.
    fn binding_lost(&mut self, j: u32) {
        let Some(x) = self.jobs.get(j as usize) else {
            return;
        };
        if let Origin::Reservation(attempt) = x.origin {
            let task = x.task;
            self.push(self.now + DETECT_MS, Ev::Detect { task, attempt });
        }
    }

    fn base_deliver(&mut self, j: u32) {
        if !self.job_alive(j) || self.jobs[j as usize].state != JobState::Delivering {
            return;
        }
        let (task, node, origin) = {
            let x = &self.jobs[j as usize];
            (x.task, x.node, x.origin)
        };
        let Origin::Base(attempt) = origin else {
            return;
        };
        let owner = self.s.work.tasks[task as usize].owner;
        if owner == node {
            self.jobs[j as usize].state = JobState::Done;
            self.forget_job(j);
            self.base_result(task, attempt);
        } else {
            self.send(
                node,
                owner,
                Msg::Result {
                    task,
                    attempt,
                    job: j,
                },
                64,
            );
        }
    }

    fn base_result(&mut self, t: u32, attempt: u32) {
        let b = &mut self.base[t as usize];
        if b.committed || b.attempt != attempt {
            // Stale or repeated: ignored (the run was a duplicate).
            return;
        }
        b.committed = true;
        self.commit(t);
    }

    fn detect(&mut self, t: u32, attempt: u32) {
        let b = self.base[t as usize];
        if b.committed || b.attempt != attempt {
            return;
        }
        // While the owner is down its restart re-dispatches.
        self.dispatch(t);
    }

    fn candidates(&self, owner: u32, t: u32) -> Vec<u32> {
        let mut c: Vec<u32> = self.s.known[owner as usize]
            .iter()
            .copied()
            .filter(|p| self.nodes[*p as usize].up)
            .collect();
        c.push(owner);
        if matches!(self.policy, Policy::DataLocality | Policy::Skippy) {
            for b in &self.s.work.tasks[t as usize].inputs {
                let h = self.s.work.blobs[*b as usize].holder;
                if self.nodes[h as usize].up && !c.contains(&h) {
                    c.push(h);
                }
            }
        }
        c
    }

    /// Where `t` runs; `None` only under spillback when every slot is taken.
    fn choose(&mut self, owner: u32, t: u32) -> Option<u32> {
        let topo = self.s.topo;
        let load = |s: &Snapshot, n: usize| f64::from(s.load) / f64::from(topo.nodes[n].slots);
        Some(match self.policy {
            Policy::Random => {
                let c = self.candidates(owner, t);
                c[self.rng.below(c.len())]
            }
            Policy::RoundRobin => {
                let c = self.candidates(owner, t);
                let n = &mut self.nodes[owner as usize];
                n.rr = n.rr.wrapping_add(1);
                c[n.rr % c.len()]
            }
            Policy::LeastLoaded => {
                let c = self.candidates(owner, t);
                let start = self.rng.below(c.len());
                let mut best = c[start];
                let mut bl = f64::INFINITY;
                for k in 0..c.len() {
                    let p = c[(start + k) % c.len()];
                    let l = load(&self.snap[p as usize], p as usize);
                    if l < bl {
                        bl = l;
                        best = p;
                    }
                }
                best
            }
            Policy::DataLocality => match self.most_bytes_holder(t) {
                Some(h) => h,
                None => {
                    // Every holder is down: least loaded.
                    let c = self.candidates(owner, t);
                    let mut best = c[0];
                    let mut bl = f64::INFINITY;
                    for p in c {
                        let l = load(&self.snap[p as usize], p as usize);
                        if l < bl {
                            bl = l;
                            best = p;
                        }
                    }
                    best
                }
            },
            Policy::Spillback => return self.spillback(owner, t),
            Policy::Skippy => self.skippy(owner, t),
            Policy::Omniscient => self.omniscient(t),
            Policy::Auction | Policy::PowerOfTwo => owner,
        })
    }

    /// The live node holding the most of `t`'s input bytes (lowest id on
    /// a tie), if any holder is up.
    fn most_bytes_holder(&self, t: u32) -> Option<u32> {
        let mut per: Vec<(u32, u64)> = Vec::new();
        for b in &self.s.work.tasks[t as usize].inputs {
            let blob = &self.s.work.blobs[*b as usize];
            if !self.nodes[blob.holder as usize].up {
                continue;
            }
            match per.iter_mut().find(|x| x.0 == blob.holder) {
                Some(x) => x.1 += blob.size,
                None => per.push((blob.holder, blob.size)),
            }
        }
        per.into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|(h, _)| h)
    }

    /// Ray's default scheduling, as its documentation describes it: a task
    /// goes to an *available* node (a free slot now), preferring the one
    /// holding most of its input bytes; when that holder is busy, the
    /// hybrid policy takes the owner while it is under half used, else a
    /// random one of the least used available nodes (the fifth of the
    /// cluster with the lowest use, use under half counting as zero);
    /// `None` when no node is available (the task then waits in a queue
    /// until a slot frees anywhere). The view of who is available is the
    /// true one, assignments still on their way included.
    fn spillback(&mut self, owner: u32, t: u32) -> Option<u32> {
        let topo = self.s.topo;
        let used = |j: usize| {
            (self.demand(j) + self.inflight[j] as usize) as f64 / f64::from(topo.nodes[j].slots)
        };
        let preferred = self.most_bytes_holder(t).unwrap_or(owner);
        if self.nodes[preferred as usize].up && used(preferred as usize) < 1.0 {
            return Some(preferred);
        }
        let o = owner as usize;
        if used(o) < 0.5 {
            return Some(owner);
        }
        let mut avail: Vec<(f64, u32)> = (0..topo.len())
            .filter(|j| self.nodes[*j].up)
            .filter_map(|j| {
                let u = used(j);
                (u < 1.0).then_some((if u < 0.5 { 0.0 } else { u }, j as u32))
            })
            .collect();
        if avail.is_empty() {
            return None;
        }
        let k = (topo.len() / 5).max(1);
        if avail.len() > k {
            avail.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            // Ties at the cut stay in: every node under half used is equal.
            let cut = avail[k - 1].0;
            let mut rest = avail.split_off(k);
            rest.retain(|x| x.0 <= cut);
            avail.append(&mut rest);
            // In node order, so that the draw does not depend on how the
            // selection left them.
            avail.sort_unstable_by_key(|x| x.1);
        }
        Some(avail[self.rng.below(avail.len())].1)
    }

    /// Runs at node `j` that hold or wait for one of its slots (fetching,
    /// queued or computing): what a scheduler tracking its own leases
    /// counts against the node's slots.
    fn demand(&self, j: usize) -> usize {
        self.nodes[j]
            .jobs
            .iter()
            .filter(|x| {
                matches!(
                    self.jobs[**x as usize].state,
                    JobState::Fetching | JobState::Ready | JobState::Binding | JobState::Computing
                )
            })
            .count()
    }

    /// Nominal time to bring `t`'s missing inputs to `j`, ms.
    fn nominal_fetch(&self, t: u32, j: usize, contention: bool) -> f64 {
        let topo = self.s.topo;
        let mut worst: f64 = 0.0;
        let mut p = [0; MAX_PATH];
        for b in &self.s.work.tasks[t as usize].inputs {
            let blob = &self.s.work.blobs[*b as usize];
            let h = blob.holder as usize;
            if h == j {
                continue;
            }
            let k = topo.path(h, j, &mut p);
            let mut bw = f64::INFINITY;
            for l in &p[..k] {
                let cap = topo.capacity[*l as usize];
                let share = if contention {
                    cap / (1 + self.net.load(*l)) as f64
                } else {
                    cap
                };
                bw = bw.min(share);
            }
            let x = 2.0 * topo.latency(h, j) + blob.size as f64 / bw;
            worst = worst.max(x);
        }
        worst
    }

    /// Skippy-style scoring (Rausch et al. 2021): balanced resources, least
    /// requested, data locality (time to fetch the inputs over the nominal
    /// topology) and capability (speed), each in [0, 1], summed.
    fn skippy(&mut self, owner: u32, t: u32) -> u32 {
        let topo = self.s.topo;
        let def = &self.s.work.tasks[t as usize];
        let c = self.candidates(owner, t);
        let fetch: Vec<f64> = c
            .iter()
            .map(|j| self.nominal_fetch(t, *j as usize, false))
            .collect();
        let max_fetch = fetch.iter().copied().fold(1e-9, f64::max);
        let max_speed = c
            .iter()
            .map(|j| topo.nodes[*j as usize].speed)
            .fold(1e-9, f64::max);
        let mut best = (f64::NEG_INFINITY, owner);
        for (k, j) in c.iter().enumerate() {
            let d = &topo.nodes[*j as usize];
            let s = &self.snap[*j as usize];
            let cpu = (f64::from(s.load) / f64::from(d.slots)).min(1.0);
            let mem = ((s.mem_used + def.memory) as f64 / d.memory as f64).min(1.0);
            let score = (1.0 - (cpu - mem).abs())
                + ((1.0 - cpu) + (1.0 - mem)) / 2.0
                + (1.0 - fetch[k] / max_fetch)
                + d.speed / max_speed;
            if score > best.0 {
                best = (score, *j);
            }
        }
        best.1
    }

    /// Centralised greedy with full knowledge: the node with the earliest
    /// estimated finish given true queues, speeds and link loads.
    fn omniscient(&mut self, t: u32) -> u32 {
        let topo = self.s.topo;
        let def = &self.s.work.tasks[t as usize];
        let o = def.owner as usize;
        let mut best = (f64::INFINITY, def.owner);
        for j in 0..topo.len() {
            let n = &self.nodes[j];
            if !n.up {
                continue;
            }
            let d = &topo.nodes[j];
            let wait = if self.demand(j) < usize::from(d.slots) {
                0.0
            } else {
                n.backlog / (d.speed * f64::from(d.slots))
            };
            let fetch = self.nominal_fetch(t, j, true);
            let out = if j == o {
                0.0
            } else {
                topo.latency(j, o) + def.output as f64 / topo.path_capacity(j, o)
            };
            let finish = wait.max(fetch) + def.cost as f64 / d.speed + out;
            if finish < best.0 {
                best = (finish, j as u32);
            }
        }
        best.1
    }

    // ------------------------------------------------------ churn, gossip

    fn crash(&mut self, node: u32) {
        let i = node as usize;
        if !self.nodes[i].up {
            return;
        }
        self.nodes[i].up = false;
        // Timers die with the process.
        self.nodes[i].owner_gen += 1;
        self.nodes[i].bidder_gen += 1;
        let jobs = std::mem::take(&mut self.nodes[i].jobs);
        for j in &jobs {
            let x = self.jobs[*j as usize].clone();
            if let (Origin::Base(attempt) | Origin::Reservation(attempt), true) =
                (x.origin, self.job_alive(*j))
            {
                let b = &mut self.base[x.task as usize];
                if let Origin::Reservation(_) = x.origin {
                    if x.state != JobState::Binding || !b.bound {
                        b.outstanding = b.outstanding.saturating_sub(1);
                        if !b.bound && b.outstanding == 0 && !b.committed {
                            self.push(
                                self.now + DETECT_MS,
                                Ev::Detect {
                                    task: x.task,
                                    attempt,
                                },
                            );
                        }
                        self.nodes[i].jobs.push(*j);
                        self.kill_job(*j);
                        continue;
                    }
                }
                if !b.committed && b.attempt == attempt {
                    self.push(
                        self.now + DETECT_MS,
                        Ev::Detect {
                            task: x.task,
                            attempt,
                        },
                    );
                }
            }
            self.nodes[i].jobs.push(*j);
            self.kill_job(*j);
        }
        // Transfers from this node stop; their receivers try again later.
        let from_here: Vec<(FlowId, FlowMeta)> = self
            .flow_meta
            .iter()
            .enumerate()
            .filter_map(|(f, m)| {
                m.filter(|m| m.src == node || m.dst == node)
                    .map(|m| (f as FlowId, m))
            })
            .collect();
        for (f, m) in from_here {
            self.stop_flow(f);
            if m.input == OUTPUT_INPUT {
                // The owner went down while the output was on its way: the
                // worker keeps it and reports; the result waits for the owner.
                if self.job_alive(m.job) && self.jobs[m.job as usize].state == JobState::Pushing {
                    self.deliver_result(m.job);
                }
            } else if self.job_alive(m.job) {
                self.push(
                    self.now + FETCH_RETRY_MS,
                    Ev::FetchRetry {
                        job: m.job,
                        input: m.input,
                    },
                );
            }
        }
        let n = &mut self.nodes[i];
        n.ready.clear();
        n.fetch_queue.clear();
        n.busy = 0;
        n.inbound = 0;
        n.backlog = 0.0;
        n.mem_used = 0;
        // The bidder's leases and pending bids lived in memory; the owner's
        // state and the estimates are persisted.
        if self.policy == Policy::Auction {
            n.bidder = Some(Bidder::new(nid(node), bidder_cfg(self.s.topo, i)));
        }
    }

    fn restart(&mut self, node: u32) {
        let i = node as usize;
        if self.nodes[i].up {
            return;
        }
        self.nodes[i].up = true;
        let now = self.ms();
        if self.policy == Policy::Auction {
            let n = &mut self.nodes[i];
            if let (Some(o), Some(est)) = (n.owner.as_mut(), n.est.as_ref()) {
                let a = o.resume(now, est);
                self.apply(node, true, a);
            }
        } else {
            let mine = self.owned[i].clone();
            for t in mine {
                let b = self.base[t as usize];
                if !b.submitted || b.committed {
                    continue;
                }
                let lost = if b.bound || b.outstanding == 0 {
                    !self.nodes[b.worker as usize].up || self.worker_lost(t, b.worker, b.attempt)
                } else {
                    false
                };
                if lost || (!b.bound && b.outstanding == 0 && self.policy == Policy::PowerOfTwo) {
                    self.dispatch(t);
                }
            }
        }
        let waiting = std::mem::take(&mut self.nodes[i].waiting);
        for t in waiting {
            self.submit(t);
        }
    }

    /// Whether the worker no longer runs attempt `attempt` of `t` (it crashed
    /// since): the owner's failure detector would have said so.
    fn worker_lost(&self, t: u32, worker: u32, attempt: u32) -> bool {
        !self.nodes[worker as usize].jobs.iter().any(|j| {
            let x = &self.jobs[*j as usize];
            x.task == t && x.origin == Origin::Base(attempt)
        })
    }

    fn gossip(&mut self, node: u32) {
        let i = node as usize;
        if self.nodes[i].up {
            let load = self.demand(i) as u32;
            let n = &self.nodes[i];
            let slots = self.s.topo.nodes[i].slots;
            self.snap[i] = Snapshot {
                load,
                free_slots: if n.ready.is_empty() {
                    slots.saturating_sub(n.busy)
                } else {
                    0
                },
                mem_used: n.mem_used,
            };
            if matches!(
                self.policy,
                Policy::Auction | Policy::LeastLoaded | Policy::Skippy | Policy::Spillback
            ) {
                // A status message reaches every peer that tracks the node.
                let bytes = status_bytes();
                let receivers = self.s.known[i].len() as u64;
                self.st.control_msgs += receivers;
                self.st.control_bytes += receivers * bytes;
            }
        }
        self.push(self.now + GOSSIP_MS, Ev::Gossip(node));
    }

    /// The owner's view of its peers' status, as the last gossip told it.
    fn refresh_status_view(&mut self, owner: u32, t: u32) {
        let now = self.ms();
        let o = owner as usize;
        // The owner dials the holders of the inputs (if it did not know
        // them): identify, status and a ping come with the connection.
        let holders: Vec<u32> = self.s.work.tasks[t as usize]
            .inputs
            .iter()
            .map(|b| self.s.work.blobs[*b as usize].holder)
            .filter(|h| *h != owner)
            .collect();
        for h in holders {
            let unknown = self.nodes[o]
                .est
                .as_ref()
                .is_some_and(|e| e.last_seen(&nid(h)).is_none());
            if unknown && self.nodes[h as usize].up {
                self.seed_peer(owner, h);
            }
        }
        // Every known peer's status, in one pass over the estimates.
        let mut est = self.nodes[o].est.take();
        if let Some(e) = est.as_mut() {
            e.on_status_each(now, |p| idx(p).map(|pi| self.status_of(pi)));
        }
        self.nodes[o].est = est;
    }

    fn status_of(&self, p: u32) -> NodeStatus {
        let d = &self.s.topo.nodes[p as usize];
        let s = &self.snap[p as usize];
        NodeStatus {
            node: nid(p),
            speed_class: d.class,
            memory_bytes: d.memory,
            free_memory_bytes: d.memory.saturating_sub(s.mem_used),
            task_slots: d.slots,
            free_slots: s.free_slots,
            model: None,
            samples_seen: 0,
            accuracy_bp: 0,
            listen_addrs: BoundedVec::new(),
        }
    }

    /// What node `me` measures of `p` right now: the RTT, and the share of
    /// the path a new transfer would get.
    fn measure(&mut self, me: u32, p: u32) {
        let now = self.ms();
        let (a, b) = (me as usize, p as usize);
        let topo = self.s.topo;
        let rtt = 2.0 * topo.latency(a, b);
        let share = |src: usize, dst: usize, net: &Net| {
            let mut path = [0; MAX_PATH];
            let k = topo.path(src, dst, &mut path);
            path[..k]
                .iter()
                .map(|l| net.capacity(*l) / (1 + net.load(*l)) as f64)
                .fold(f64::INFINITY, f64::min)
        };
        let bw_in = share(b, a, &self.net);
        let bw_out = share(a, b, &self.net);
        const PROBE: u64 = 1 << 20;
        if let Some(est) = self.nodes[a].est.as_mut() {
            est.on_ping(nid(p), rtt.round() as u64, now);
            est.on_transfer(
                nid(p),
                Direction::Inbound,
                PROBE,
                (PROBE as f64 / bw_in).ceil() as u64,
                now,
            );
            est.on_transfer(
                nid(p),
                Direction::Outbound,
                PROBE,
                (PROBE as f64 / bw_out).ceil() as u64,
                now,
            );
        }
    }

    fn seed_peer(&mut self, me: u32, p: u32) {
        let now = self.ms();
        let st = self.status_of(p);
        if let Some(est) = self.nodes[me as usize].est.as_mut() {
            est.on_status(&st, now);
        }
        self.measure(me, p);
    }

    fn seed_estimates(&mut self, me: u32) {
        let known = self.s.known[me as usize].clone();
        for p in known {
            self.seed_peer(me, p);
        }
    }

    /// Pings and the background traffic of merges keep link estimates
    /// fresh: every `REFRESH_MS` each node re-measures the peers it tracks.
    fn refresh(&mut self, node: u32) {
        if self.nodes[node as usize].up {
            let peers: Vec<u32> = self.nodes[node as usize]
                .est
                .as_ref()
                .map(|e| e.peers().filter_map(|p| idx(&p)).collect())
                .unwrap_or_default();
            for p in peers {
                if (p as usize) < self.nodes.len() {
                    self.measure(node, p);
                }
            }
        }
        self.push(self.now + REFRESH_MS, Ev::Refresh(node));
    }

    /// The owner configuration in use.
    pub fn owner_config(&self) -> &OwnerConfig {
        &self.owner_cfg
    }
}

fn status_bytes() -> u64 {
    let st = NodeStatus {
        node: nid(1),
        speed_class: shoal_protocol::SpeedClass::Small,
        memory_bytes: 1 << 32,
        free_memory_bytes: 1 << 31,
        task_slots: 2,
        free_slots: 1,
        model: None,
        samples_seen: 1 << 20,
        accuracy_bp: 9000,
        listen_addrs: BoundedVec::new(),
    };
    encode(&shoal_protocol::GossipMessage::Status(st)).map_or(64, |v| v.len() as u64)
}

/// The bidder configuration a node of this device uses: as the node daemon
/// sets it (its slots, its memory, the default queue beyond the slots).
fn bidder_cfg(topo: &Topology, i: usize) -> BidderConfig {
    let d = &topo.nodes[i];
    BidderConfig {
        slots: d.slots,
        memory_bytes: d.memory,
        ..BidderConfig::default()
    }
}

/// The spec of task `t`, submitted `late_ms` after its arrival.
fn spec_of(s: &Setup<'_>, t: u32, late_ms: f64) -> TaskSpec {
    let def = &s.work.tasks[t as usize];
    let inputs: Vec<BlobRef> = def
        .inputs
        .iter()
        .map(|b| {
            let blob = &s.work.blobs[*b as usize];
            BlobRef {
                hash: blob_hash(*b),
                size: blob.size,
                holders: BoundedVec::truncating(vec![nid(blob.holder)]),
            }
        })
        .collect();
    TaskSpec {
        id: TaskId(u128::from(t)),
        owner: nid(def.owner),
        kind: def.kind,
        inputs: BoundedVec::truncating(inputs),
        compute_cost: def.cost,
        memory_bytes: def.memory,
        output_bytes: def.output,
        deadline_in_ms: (def.deadline - late_ms).max(1.0) as u64,
    }
}
