//! The market loop: drives the protocol's [`Owner`] and [`Bidder`] with
//! real messages and a wall clock, runs tasks on the executor, and keeps
//! the durable ledger.
//!
//! Time is wall-clock milliseconds since the Unix epoch, so the owner state
//! restored after a crash keeps meaningful deadlines and lease expiries.
//!
//! Durability rule (`docs/protocol.md`, section 6): after every call into
//! the owner that returned an action other than `SetTimer` (or changed a
//! task's phase, epoch or bids), the owner state and the ledger rows of the
//! tasks concerned are committed in one redb transaction *before* any of
//! those actions is carried out. A submission is answered only after that
//! commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use libp2p::PeerId;
use shoal_learn::rng::Rng;
use shoal_protocol::{
    Action, BidContext, Bidder, BidderConfig, BlobRef, BoundedBytes, BoundedVec, Direction, Epoch,
    EstimatesConfig, Hash, Manifest, Millis, NodeId, Owner, OwnerConfig, PeerEstimates, Phase,
    Request, SpeedClass, TaskId, TaskKind, TaskOutput, TaskSpec,
};
use tokio::sync::{mpsc, watch, Semaphore};
use tracing::{debug, info, info_span, warn, Instrument};

use super::executor::{self, ResultBody};
use super::tasks::{kind_name, BidView, InputView, ResultView, TaskRecord, MAX_BIDS_SHOWN};
use super::{
    Cmd, MarketClient, MarketConfig, MarketCounts, MarketError, MarketHook, NetEvent, Placement,
    Prepared,
};
use crate::net::fetch::fetch_blob;
use crate::net::Client as NetClient;
use crate::store::Store;

/// Events queued from the network loop.
const NET_EVENTS: usize = 1024;
/// Commands queued from the API.
const COMMANDS: usize = 64;
/// Internal events (finished runs, fetches).
const INTERNAL: usize = 256;
/// Outbound auction messages in flight at once; more are dropped (every
/// auction message is safe to lose: the state machines re-send). The
/// bidder heartbeats every lease (up to `slots + max_queued`, 66 on a
/// two-slot node) each second, and a send to an unreachable owner holds
/// its permit for `SEND_TIMEOUT`: 1024 leaves room for bids and results
/// while one owner is gone.
const MAX_SENDS: usize = 1024;
/// Runs fetching their missing inputs at once (each fetches its inputs
/// one after the other); more wait their turn, oldest first.
const MAX_FETCHING: usize = 4;
/// How often a run waiting for a slot, memory or its fetch turn checks
/// whether it was cancelled.
const ABORT_POLL: Duration = Duration::from_millis(200);
/// How often the timers are checked.
const TICK: Duration = Duration::from_millis(50);
/// Ledger records kept in memory (the store keeps them all).
const MAX_RECORDS: usize = 4096;
/// A peer is a placement candidate while its status is this fresh.
const STATUS_FRESH: Duration = Duration::from_secs(15);
/// Reference-ms of compute per this many input bytes (calibrated by the
/// measured speeds: a wrong constant only scales every estimate).
const BYTES_PER_COST_MS: u64 = 256;
/// How long one auction message may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> Millis {
    Millis(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    )
}

fn node_of(p: &PeerId) -> Option<NodeId> {
    NodeId::from_bytes(&p.to_bytes()).ok()
}

fn peer_of(n: &NodeId) -> Option<PeerId> {
    PeerId::from_bytes(n.as_bytes()).ok()
}

fn peer_str(n: &NodeId) -> String {
    peer_of(n).map_or_else(|| n.to_string(), |p| p.to_string())
}

/// Hex of a task id (32 characters), the ledger key's text form.
pub fn task_hex(t: &TaskId) -> String {
    format!("{:032x}", t.0)
}

/// Who runs a task here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Owner,
    Bidder,
}

enum Internal {
    Done {
        task: TaskId,
        epoch: Epoch,
        role: Role,
        kind: TaskKind,
        cost: u64,
        outcome: Result<ResultBody, String>,
    },
    Transfer {
        peer: PeerId,
        bytes: u64,
        elapsed: Duration,
    },
    ResultFetched {
        task: TaskId,
        body: Vec<u8>,
    },
}

struct Run {
    epoch: Epoch,
    abort: Arc<AtomicBool>,
}

/// State of the market loop.
pub struct MarketLoop {
    me: NodeId,
    cfg: MarketConfig,
    store: Store,
    net: NetClient,
    owner: Owner,
    bidder: Bidder,
    est: PeerEstimates,
    records: BTreeMap<TaskId, TaskRecord>,
    runs: HashMap<TaskId, Run>,
    slots: Arc<Semaphore>,
    load: Arc<AtomicUsize>,
    inbound: Arc<AtomicUsize>,
    fetching: Arc<Semaphore>,
    prefetch: Arc<Semaphore>,
    sends: Arc<Semaphore>,
    internal_tx: mpsc::Sender<Internal>,
    counts_tx: watch::Sender<MarketCounts>,
    owner_due: Option<Millis>,
    bidder_due: Option<Millis>,
    seq: u64,
    rng: Rng,
    rr_next: usize,
    status_seen: HashMap<NodeId, (Instant, u16)>,
    assigned: HashMap<NodeId, u32>,
    runs_done: u64,
    bytes_fetched: u64,
}

fn speed_class() -> SpeedClass {
    if cfg!(any(target_arch = "arm", target_arch = "aarch64")) {
        SpeedClass::Small
    } else {
        SpeedClass::Desktop
    }
}

/// Starts the market: restores the owner state from the store (resuming
/// interrupted tasks), registers with the network loop and spawns the loop.
pub fn spawn(
    me: PeerId,
    cfg: MarketConfig,
    store: Store,
    net: NetClient,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<(MarketClient, tokio::task::JoinHandle<()>)> {
    let me = node_of(&me).ok_or_else(|| anyhow::anyhow!("peer id too long for a node id"))?;
    let slots = cfg.task_slots.max(1);
    let owner = match store.market_state()? {
        Some(bytes) => match Owner::decode_state(&bytes) {
            Ok(mut o) if o.id() == me => {
                // The stored tuning may predate this build's.
                o.reconfigure(OwnerConfig::default());
                o
            }
            Ok(_) => anyhow::bail!("stored market state belongs to another node id"),
            Err(e) => anyhow::bail!("stored market state does not decode: {e}"),
        },
        None => Owner::new(me, OwnerConfig::default()),
    };
    let bidder = Bidder::new(
        me,
        BidderConfig {
            slots,
            // Busy nodes still bid (their wait is in the price).
            ..BidderConfig::default()
        },
    );
    let mut records = BTreeMap::new();
    for (_, v) in store.tasks(100_000)? {
        if let Ok(r) = serde_json::from_slice::<TaskRecord>(&v) {
            if let Ok(id) = u128::from_str_radix(&r.id, 16) {
                if owner.phase(&TaskId(id)).is_some_and(|p| !p.is_terminal()) {
                    records.insert(TaskId(id), r);
                }
            }
        }
    }
    let (events_tx, events_rx) = mpsc::channel(NET_EVENTS);
    let (cmd_tx, cmd_rx) = mpsc::channel(COMMANDS);
    let (internal_tx, internal_rx) = mpsc::channel(INTERNAL);
    let (counts_tx, counts_rx) = watch::channel(MarketCounts::default());
    let load = Arc::new(AtomicUsize::new(0));
    let hook = MarketHook {
        events: events_tx,
        slots,
        load: load.clone(),
    };
    let seed = now_ms().0
        ^ u64::from_le_bytes(
            blake3::hash(me.as_bytes()).as_bytes()[..8]
                .try_into()
                .unwrap_or([0; 8]),
        );
    let mut m = MarketLoop {
        me,
        cfg: MarketConfig {
            task_slots: slots,
            ..cfg
        },
        store,
        net,
        owner,
        bidder,
        est: PeerEstimates::new(EstimatesConfig::default(), speed_class()),
        records,
        runs: HashMap::new(),
        slots: Arc::new(Semaphore::new(usize::from(slots))),
        load,
        inbound: Arc::new(AtomicUsize::new(0)),
        fetching: Arc::new(Semaphore::new(MAX_FETCHING)),
        prefetch: Arc::new(Semaphore::new(kib(cfg.blob_budget_bytes) as usize)),
        sends: Arc::new(Semaphore::new(MAX_SENDS)),
        internal_tx,
        counts_tx,
        owner_due: None,
        bidder_due: None,
        seq: 0,
        rng: Rng::new(seed),
        rr_next: 0,
        status_seen: HashMap::new(),
        assigned: HashMap::new(),
        runs_done: 0,
        bytes_fetched: 0,
    };
    let client = MarketClient {
        tx: cmd_tx,
        counts: counts_rx,
        hook,
    };
    let handle = tokio::spawn(async move {
        let now = now_ms();
        let actions = m.owner.resume(now, &m.est);
        let resumed = m.owner.active().count();
        if resumed > 0 {
            info!(tasks = resumed, "market: resuming tasks from the ledger");
        }
        m.after_owner(actions, &[], now);
        m.run(events_rx, cmd_rx, internal_rx, shutdown).await;
    });
    Ok((client, handle))
}

impl MarketLoop {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<NetEvent>,
        mut cmds: mpsc::Receiver<Cmd>,
        mut internal: mpsc::Receiver<Internal>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(ev) = internal.recv() => self.on_internal(ev),
                Some(cmd) = cmds.recv() => self.on_cmd(cmd),
                Some(ev) = events.recv() => self.on_net(ev),
                _ = tick.tick() => self.on_tick(),
            }
            self.publish_counts();
        }
        for r in self.runs.values() {
            r.abort.store(true, Ordering::Relaxed);
        }
        info!("market loop stopped");
    }

    fn publish_counts(&self) {
        let st = self.owner.stats();
        let bs = self.bidder.stats();
        self.counts_tx.send_if_modified(|c| {
            let n = MarketCounts {
                placement: self.cfg.placement.name().to_string(),
                task_slots: self.cfg.task_slots,
                load: self.load.load(Ordering::Relaxed),
                submitted: st.submitted,
                committed: st.committed,
                failed: st.failed,
                active: self.owner.active().count() as u64,
                leases_taken: bs.leases,
                bids_sent: bs.bids,
                runs_done: self.runs_done,
                bytes_fetched: self.bytes_fetched,
                lease_expiries: st.lease_expiries,
                fallbacks: st.fallbacks,
                local_restarts: st.local_restarts,
                stale_results: st.stale_results,
            };
            let changed = serde_json::to_value(&*c).ok() != serde_json::to_value(&n).ok();
            *c = n;
            changed
        });
    }

    fn on_tick(&mut self) {
        let now = now_ms();
        if self.owner_due.is_some_and(|t| now >= t) {
            self.owner_due = None;
            self.sync_local_wait(now);
            let a = self.owner.on_tick(now, &self.est);
            self.after_owner(a, &[], now);
        }
        if self.bidder_due.is_some_and(|t| now >= t) {
            self.bidder_due = None;
            let a = self.bidder.on_tick(now);
            self.after_bidder(a);
        }
    }

    fn on_net(&mut self, ev: NetEvent) {
        let now = now_ms();
        match ev {
            NetEvent::Ping { peer, rtt } => {
                if let Some(n) = node_of(&peer) {
                    self.est.on_ping(n, rtt.as_millis() as u64, now);
                }
            }
            NetEvent::Status { peer, status } => {
                if let Some(n) = node_of(&peer) {
                    self.est.on_status(&status, now);
                    self.status_seen
                        .insert(n, (Instant::now(), status.task_slots));
                    self.assigned.remove(&n);
                }
            }
            NetEvent::Request { peer, request } => {
                let Some(from) = node_of(&peer) else { return };
                self.est.on_seen(from, now);
                match &request {
                    Request::Bid(_)
                    | Request::AwardAck { .. }
                    | Request::Heartbeat { .. }
                    | Request::Result(_) => {
                        let task = match &request {
                            Request::Bid(b) => Some(b.task),
                            Request::AwardAck { task, .. } | Request::Heartbeat { task, .. } => {
                                Some(*task)
                            }
                            Request::Result(r) => Some(r.task),
                            _ => None,
                        };
                        if let Request::Bid(b) = &request {
                            self.note_bid(from, b);
                        }
                        // A bid can close an auction and a declined award
                        // (or a released lease) can start one: both may
                        // weigh the owner's own quote, so its queue wait
                        // must be current. Heartbeats and results cannot.
                        if matches!(request, Request::Bid(_) | Request::AwardAck { .. }) {
                            self.sync_local_wait(now);
                        }
                        let a = self.owner.on_request(from, &request, now, &self.est);
                        let touched: Vec<TaskId> = task.into_iter().collect();
                        self.after_owner(a, &touched, now);
                    }
                    Request::TaskAnnounce { .. }
                    | Request::Award { .. }
                    | Request::Cancel { .. } => {
                        let store = self.store.clone();
                        let has = move |h: &Hash| store.has_blob(h).unwrap_or(false);
                        let ctx = BidContext {
                            estimates: &self.est,
                            has_blob: &has,
                            inbound_transfers: self.inbound.load(Ordering::Relaxed),
                        };
                        let a = self.bidder.on_request(from, &request, now, &ctx);
                        self.after_bidder(a);
                    }
                    _ => {}
                }
            }
        }
    }

    fn on_internal(&mut self, ev: Internal) {
        let now = now_ms();
        match ev {
            Internal::Transfer {
                peer,
                bytes,
                elapsed,
            } => {
                self.bytes_fetched += bytes;
                if let Some(n) = node_of(&peer) {
                    self.est.on_transfer(
                        n,
                        Direction::Inbound,
                        bytes,
                        elapsed.as_millis() as u64,
                        now,
                    );
                }
            }
            Internal::Done {
                task,
                epoch,
                role,
                kind,
                cost,
                outcome,
            } => {
                self.runs.remove(&task);
                self.runs_done += 1;
                match outcome {
                    Ok(body) => {
                        self.est
                            .on_local_runtime(kind, cost, body_runtime(&body), now);
                        let output = match self.output_of(&body) {
                            Ok(o) => o,
                            Err(e) => {
                                warn!(task = %task, error = %e, "storing a result failed");
                                self.failed_run(task, epoch, role, now);
                                return;
                            }
                        };
                        match role {
                            Role::Owner => {
                                let a = self.owner.on_local_done(task, epoch, output, now);
                                self.after_owner(a, &[task], now);
                            }
                            Role::Bidder => {
                                let a = self.bidder.on_local_done(task, epoch, output, now);
                                self.after_bidder(a);
                            }
                        }
                    }
                    Err(e) => {
                        warn!(task = %task, %epoch, error = %e, "run failed");
                        self.failed_run(task, epoch, role, now);
                    }
                }
            }
            Internal::ResultFetched { task, body } => {
                self.attach_result(task, &body, body.len() as u64);
                if let Some(r) = self.records.get(&task).cloned() {
                    self.persist_rows(&[r]);
                }
            }
        }
    }

    fn failed_run(&mut self, task: TaskId, epoch: Epoch, role: Role, now: Millis) {
        match role {
            Role::Owner => {
                let a = self.owner.on_local_failed(task, epoch, now);
                self.after_owner(a, &[task], now);
            }
            Role::Bidder => {
                let a = self.bidder.on_local_failed(task, epoch, now);
                self.after_bidder(a);
            }
        }
    }

    /// Inline when small, else stored as a blob here for the owner to fetch.
    fn output_of(&self, body: &ResultBody) -> Result<TaskOutput, String> {
        let bytes = body.encode();
        if let Ok(b) = BoundedBytes::try_from_vec(bytes.clone()) {
            return Ok(TaskOutput::Inline(b));
        }
        let m = Manifest::of(&bytes).map_err(|e| e.to_string())?;
        let root = m.root();
        tokio::task::block_in_place(|| {
            self.store
                .put_blob(&root, &bytes, self.cfg.blob_budget_bytes)
        })
        .map_err(|e| e.to_string())?;
        Ok(TaskOutput::Blob {
            hash: root,
            size: bytes.len() as u64,
        })
    }

    fn on_cmd(&mut self, cmd: Cmd) {
        match cmd {
            Cmd::Submit { tasks, reply } => {
                let r = self.submit(tasks);
                let _ = reply.send(r);
            }
        }
    }

    /// Members for the baseline policies: this node and peers whose status
    /// is fresh and that offer slots, in id order.
    fn members(&self) -> Vec<NodeId> {
        let mut v: Vec<NodeId> = self
            .status_seen
            .iter()
            .filter(|(_, (t, slots))| t.elapsed() < STATUS_FRESH && *slots > 0)
            .map(|(n, _)| *n)
            .collect();
        v.push(self.me);
        v.sort();
        v.dedup();
        v
    }

    fn load_of(&self, n: &NodeId) -> u64 {
        if *n == self.me {
            return self.load.load(Ordering::Relaxed) as u64;
        }
        let slots = self.status_seen.get(n).map_or(1, |s| s.1);
        let free = self.est.free_slots(n).unwrap_or(slots);
        u64::from(slots.saturating_sub(free)) + u64::from(*self.assigned.get(n).unwrap_or(&0))
    }

    /// The node a baseline policy picks for `p`, or None for the auction.
    fn pick(&mut self, p: &Prepared) -> Option<NodeId> {
        let members = self.members();
        let chosen = match self.cfg.placement {
            Placement::Auction => return None,
            Placement::Local => self.me,
            Placement::Random => members
                .get(self.rng.below(members.len()))
                .copied()
                .unwrap_or(self.me),
            Placement::RoundRobin => {
                let i = self.rr_next % members.len().max(1);
                self.rr_next = self.rr_next.wrapping_add(1);
                members.get(i).copied().unwrap_or(self.me)
            }
            Placement::LeastLoaded => {
                let start = self.rng.below(members.len());
                let n = members.len().max(1);
                (0..n)
                    .filter_map(|k| members.get((start + k) % n).copied())
                    .min_by_key(|m| self.load_of(m))
                    .unwrap_or(self.me)
            }
            Placement::DataLocality => {
                // Input bytes each member holds (the parameter blob, tiny
                // and always the owner's, does not count).
                let held = |m: &NodeId| {
                    p.inputs
                        .iter()
                        .filter(|b| b.hash != p.params_blob && b.holders.contains(m))
                        .fold(0u64, |a, b| a.saturating_add(b.size))
                };
                members
                    .iter()
                    .max_by_key(|m| {
                        (
                            held(m),
                            std::cmp::Reverse(self.load_of(m)),
                            std::cmp::Reverse(**m),
                        )
                    })
                    .copied()
                    .unwrap_or(self.me)
            }
        };
        if chosen != self.me {
            *self.assigned.entry(chosen).or_insert(0) += 1;
        }
        Some(chosen)
    }

    /// Lets the owner quote itself: how long a task would wait for a slot
    /// here now, from the bidder's queue, and the transfers its fetches
    /// would share the downlink with.
    fn sync_local_wait(&mut self, now: Millis) {
        self.est.set_local_wait_ms(self.bidder.queue_wait_ms(now));
        self.est
            .set_local_inbound(self.inbound.load(Ordering::Relaxed));
    }

    /// Estimates as the owner sees them for one submission: all of them for
    /// the auction; for a baseline only the chosen peer (so it is the one
    /// candidate), or none (so the task runs here).
    fn view_for(&self, target: Option<NodeId>, now: Millis) -> PeerEstimates {
        let mut v = self.est.clone();
        if let Some(t) = target {
            // A baseline placement decides alone: the owner must not keep
            // the task on its own quote.
            v.set_local_wait_ms(u64::MAX);
            let all: Vec<NodeId> = v.peers().collect();
            for p in all {
                v.remove(&p);
            }
            if t != self.me {
                v.on_seen(t, now);
            }
        }
        v
    }

    fn submit(&mut self, tasks: Vec<Prepared>) -> Result<Vec<TaskRecord>, MarketError> {
        let now = now_ms();
        // A submission may keep the task here on the owner's own quote
        // without an auction: the quote needs the current queue wait.
        self.sync_local_wait(now);
        let before = self.owner.clone();
        let mut all_actions = Vec::new();
        let mut new_records = Vec::new();
        for p in tasks {
            self.seq += 1;
            let id = TaskId::derive(
                &self.me,
                now.0.wrapping_mul(1_000_000).wrapping_add(self.seq),
            );
            let cost = (p.input_bytes / BYTES_PER_COST_MS)
                .max(1)
                .saturating_mul(p.cost_factor);
            let inputs = BoundedVec::try_from_vec(p.inputs.clone())
                .map_err(|e| MarketError::Refused(e.to_string()))?;
            let spec = TaskSpec {
                id,
                owner: self.me,
                kind: p.kind,
                inputs,
                compute_cost: cost,
                memory_bytes: (p.input_bytes.saturating_mul(8)).max(16 << 20),
                output_bytes: 4096,
                deadline_in_ms: p.deadline_ms,
            };
            let target = self.pick(&p);
            let view = self.view_for(target, now);
            let actions = match self.owner.submit(spec, now, &view) {
                Ok(a) => a,
                Err(e) => {
                    self.owner = before;
                    return Err(MarketError::Refused(e.to_string()));
                }
            };
            let record = TaskRecord {
                id: task_hex(&id),
                kind: kind_name(p.kind).to_string(),
                placement: self.cfg.placement.name().to_string(),
                state: "pending".into(),
                epoch: 0,
                winner: None,
                target: target.map(|t| peer_str(&t)),
                bids: Vec::new(),
                inputs: p
                    .inputs
                    .iter()
                    .map(|b| InputView {
                        hash: b.hash.to_hex(),
                        size: b.size,
                        holders: b.holders.iter().map(peer_str).collect(),
                        params: b.hash == p.params_blob,
                    })
                    .collect(),
                bytes_moved: 0,
                input_bytes: p.input_bytes,
                compute_cost: cost,
                submitted_unix_ms: now.0,
                finished_unix_ms: None,
                completion_ms: None,
                fail_reason: None,
                result: None,
            };
            self.records.insert(id, record);
            new_records.push(id);
            all_actions.extend(actions);
        }
        for id in &new_records {
            self.refresh(*id);
        }
        // Durable before acknowledged: the owner state and the new rows in
        // one transaction, before anything is sent.
        let rows: Vec<TaskRecord> = new_records
            .iter()
            .filter_map(|id| self.records.get(id).cloned())
            .collect();
        if let Err(e) = self.persist(&rows) {
            self.owner = before;
            for id in &new_records {
                self.records.remove(id);
            }
            return Err(MarketError::Store(e));
        }
        for id in &new_records {
            debug!(task = %id, "task accepted");
        }
        self.execute(all_actions, Role::Owner, now);
        self.prune_records();
        Ok(rows)
    }

    fn prune_records(&mut self) {
        while self.records.len() > MAX_RECORDS {
            let victim = self
                .records
                .iter()
                .filter(|(id, _)| self.owner.phase(id).is_none_or(Phase::is_terminal))
                .min_by_key(|(_, r)| r.submitted_unix_ms)
                .map(|(id, _)| *id);
            match victim {
                Some(v) => {
                    self.records.remove(&v);
                }
                None => break,
            }
        }
    }

    /// Shows a bid in the ledger when it is one the owner will consider:
    /// from the bidder itself, for the current round, while bidding.
    fn note_bid(&mut self, from: NodeId, b: &shoal_protocol::Bid) {
        let current = matches!(self.owner.phase(&b.task), Some(Phase::Bidding { invited, .. }) if invited.contains(&from))
            && self.owner.epoch(&b.task) == Some(b.epoch);
        if !current || b.bidder != from {
            return;
        }
        let Some(r) = self.records.get_mut(&b.task) else {
            return;
        };
        let bidder = peer_str(&b.bidder);
        if r.bids
            .iter()
            .any(|v| v.epoch == b.epoch.0 && v.bidder == bidder)
        {
            return;
        }
        if r.bids.len() >= MAX_BIDS_SHOWN {
            r.bids.remove(0);
        }
        r.bids.push(BidView {
            bidder,
            epoch: b.epoch.0,
            total_ms: b.total_ms(),
            wait_ms: b.wait_ms,
            compute_ms: b.compute_ms,
            transfer_in_ms: b.transfer_in_ms,
            transfer_out_ms: b.transfer_out_ms,
            non_local_bytes: b.non_local_bytes,
        });
    }

    /// Copies phase and epoch from the owner into the record; true if
    /// anything changed.
    fn refresh(&mut self, id: TaskId) -> bool {
        let (Some(phase), Some(epoch)) = (self.owner.phase(&id).cloned(), self.owner.epoch(&id))
        else {
            return false;
        };
        let Some(r) = self.records.get_mut(&id) else {
            return false;
        };
        let before = (r.state.clone(), r.epoch, r.bids.len(), r.winner.clone());
        r.epoch = epoch.0;
        r.state = match &phase {
            Phase::Bidding { .. } => "bidding",
            Phase::Awarding { to, .. } => {
                r.winner = Some(peer_str(to));
                "awarding"
            }
            Phase::Leased { holder, .. } => {
                r.winner = Some(peer_str(holder));
                "leased"
            }
            Phase::Local => {
                r.winner = Some(peer_str(&self.me));
                "local"
            }
            Phase::Backoff { .. } => "backoff",
            Phase::Committed { by, at, .. } => {
                r.winner = Some(peer_str(by));
                r.finished_unix_ms = Some(at.0);
                r.completion_ms = Some(at.0.saturating_sub(r.submitted_unix_ms));
                "committed"
            }
            Phase::Failed { reason, at } => {
                r.fail_reason = Some(reason.to_string());
                r.finished_unix_ms = Some(at.0);
                r.completion_ms = Some(at.0.saturating_sub(r.submitted_unix_ms));
                "failed"
            }
        }
        .to_string();
        before != (r.state.clone(), r.epoch, r.bids.len(), r.winner.clone())
    }

    fn persist(&self, rows: &[TaskRecord]) -> Result<(), String> {
        let state = self.owner.encode_state();
        let rows: Vec<(Vec<u8>, Vec<u8>)> = rows
            .iter()
            .filter_map(|r| {
                let key = u128::from_str_radix(&r.id, 16).ok()?.to_be_bytes().to_vec();
                Some((key, serde_json::to_vec(r).ok()?))
            })
            .collect();
        tokio::task::block_in_place(|| self.store.commit_market(Some(&state), &rows))
            .map_err(|e| e.to_string())
    }

    fn persist_rows(&self, rows: &[TaskRecord]) {
        let rows: Vec<(Vec<u8>, Vec<u8>)> = rows
            .iter()
            .filter_map(|r| {
                let key = u128::from_str_radix(&r.id, 16).ok()?.to_be_bytes().to_vec();
                Some((key, serde_json::to_vec(r).ok()?))
            })
            .collect();
        if let Err(e) = tokio::task::block_in_place(|| self.store.commit_market(None, &rows)) {
            warn!(error = %e, "updating the task ledger");
        }
    }

    /// After a call into the owner: update the records, persist (owner
    /// state + rows, one transaction) when anything happened, then act.
    fn after_owner(&mut self, actions: Vec<Action>, touched: &[TaskId], now: Millis) {
        let mut ids: Vec<TaskId> = touched.to_vec();
        let mut significant = false;
        for a in &actions {
            match a {
                Action::SetTimer { .. } => {}
                Action::Send { msg, .. } => {
                    significant = true;
                    if let Some(t) = task_of(msg) {
                        ids.push(t);
                    }
                }
                Action::StartLocal { task, .. } => {
                    significant = true;
                    ids.push(task.id);
                }
                Action::Abort { task, .. } | Action::Fail { task, .. } => {
                    significant = true;
                    ids.push(*task);
                }
                Action::Commit { task, .. } => {
                    significant = true;
                    ids.push(*task);
                }
                _ => significant = true,
            }
        }
        // On commit, note the result in the record (same transaction).
        for a in &actions {
            if let Action::Commit {
                task, by, output, ..
            } = a
            {
                self.on_commit(*task, *by, output);
            }
        }
        ids.sort();
        ids.dedup();
        let mut changed = Vec::new();
        for id in &ids {
            let c = self.refresh(*id);
            let committed_now = actions
                .iter()
                .any(|a| matches!(a, Action::Commit { task, .. } | Action::Fail { task, .. } if task == id));
            if c || committed_now || significant {
                if let Some(r) = self.records.get(id) {
                    changed.push(r.clone());
                }
            }
        }
        if significant || !changed.is_empty() {
            if let Err(e) = self.persist(&changed) {
                // Not durable: act on nothing. The state machine re-sends
                // on its timers; a commit not persisted is re-derived from
                // the worker's re-sent result after a restart.
                warn!(error = %e, "persisting the owner state failed; actions dropped");
                return;
            }
        }
        for a in &actions {
            if let Action::Commit {
                task,
                by,
                output: TaskOutput::Blob { hash, .. },
                ..
            } = a
            {
                if *by != self.me {
                    self.fetch_result(*task, *by, *hash);
                }
            }
        }
        self.execute(actions, Role::Owner, now);
    }

    fn on_commit(&mut self, task: TaskId, by: NodeId, output: &TaskOutput) {
        let kind_cost = self
            .records
            .get(&task)
            .and_then(|r| super::tasks::parse_kind(&r.kind).map(|k| (k, r.compute_cost)));
        match output {
            TaskOutput::Inline(b) => {
                let transferred = if by == self.me { 0 } else { b.len() as u64 };
                if let Some(body) = ResultBody::decode(b) {
                    if by != self.me {
                        if let Some((k, c)) = kind_cost {
                            self.est.on_runtime(by, k, c, body_runtime(&body), now_ms());
                        }
                    }
                }
                if let Ok(m) = Manifest::of(b) {
                    let root = m.root();
                    let _ = tokio::task::block_in_place(|| {
                        self.store.put_blob(&root, b, self.cfg.blob_budget_bytes)
                    });
                }
                self.attach_result(task, b, transferred);
            }
            TaskOutput::Blob { hash, size } => {
                if by == self.me {
                    if let Ok(Some(body)) =
                        tokio::task::block_in_place(|| self.store.get_blob(hash))
                    {
                        self.attach_result(task, &body, 0);
                    }
                } else if let Some(r) = self.records.get_mut(&task) {
                    r.result = Some(ResultView {
                        blob: None,
                        size: *size,
                        transferred: 0,
                        runtime_ms: None,
                        summary: serde_json::Value::Null,
                    });
                }
            }
        }
    }

    fn attach_result(&mut self, task: TaskId, body: &[u8], transferred: u64) {
        let Some(r) = self.records.get_mut(&task) else {
            return;
        };
        let decoded = ResultBody::decode(body);
        let root = Manifest::of(body).ok().map(|m| m.root().to_hex());
        let (fetched, runtime, summary) = match &decoded {
            Some(b) => (body_fetched(b), Some(body_runtime(b)), b.summary_json()),
            None => (0, None, serde_json::Value::Null),
        };
        r.bytes_moved = fetched + transferred;
        r.result = Some(ResultView {
            blob: root,
            size: body.len() as u64,
            transferred,
            runtime_ms: runtime,
            summary,
        });
    }

    fn fetch_result(&self, task: TaskId, by: NodeId, hash: Hash) {
        let Some(peer) = peer_of(&by) else { return };
        let net = self.net.clone();
        let store = self.store.clone();
        let tx = self.internal_tx.clone();
        let budget = self.cfg.blob_budget_bytes;
        tokio::spawn(
            async move {
                for attempt in 0..5u32 {
                    match fetch_blob(&net, peer, hash, budget).await {
                        Ok((body, elapsed)) => {
                            let _ = tx
                                .send(Internal::Transfer {
                                    peer,
                                    bytes: body.len() as u64,
                                    elapsed,
                                })
                                .await;
                            let b2 = body.clone();
                            let _ = tokio::task::spawn_blocking(move || {
                                store.put_blob(&hash, &b2, budget)
                            })
                            .await;
                            let _ = tx.send(Internal::ResultFetched { task, body }).await;
                            return;
                        }
                        Err(e) => {
                            debug!(attempt, error = %e, "result fetch failed");
                            tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
                        }
                    }
                }
                warn!("result blob could not be fetched from the worker");
            }
            .instrument(info_span!("result_fetch", task = %task, peer = %peer)),
        );
    }

    fn after_bidder(&mut self, actions: Vec<Action>) {
        let now = now_ms();
        self.execute(actions, Role::Bidder, now);
    }

    /// Carries out actions of the owner or the bidder.
    fn execute(&mut self, actions: Vec<Action>, role: Role, now: Millis) {
        for a in actions {
            match a {
                Action::Send { to, msg } => self.send(to, msg),
                Action::SetTimer { at } => match role {
                    Role::Owner => self.owner_due = Some(at),
                    Role::Bidder => self.bidder_due = Some(at),
                },
                Action::StartLocal { task, epoch } => self.start(task, epoch, role, now),
                Action::Abort { task, epoch } => {
                    if let Some(r) = self.runs.get(&task) {
                        if r.epoch <= epoch {
                            r.abort.store(true, Ordering::Relaxed);
                        }
                    }
                }
                Action::Commit {
                    task, epoch, by, ..
                } => {
                    info!(task = %task, id = %task_hex(&task), %epoch, by = %peer_str(&by), "task committed");
                }
                Action::Fail { task, reason } => {
                    info!(task = %task, %reason, "task failed");
                }
                Action::Broadcast { .. } | Action::FetchModel { .. } => {}
            }
        }
    }

    fn send(&self, to: NodeId, msg: Request) {
        let Some(peer) = peer_of(&to) else { return };
        let Ok(permit) = self.sends.clone().try_acquire_owned() else {
            debug!("too many auction messages in flight; one dropped");
            return;
        };
        let net = self.net.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(SEND_TIMEOUT, net.request(peer, msg)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => debug!(%peer, error = %e, "auction message not delivered"),
                Err(_) => debug!(%peer, "auction message timed out"),
            }
            drop(permit);
        });
    }

    /// Starts a run: fetches the inputs it lacks (each from its first
    /// reachable holder, verified chunk by chunk) while it waits for a
    /// slot, computes on the blocking pool and reports back.
    fn start(&mut self, spec: TaskSpec, epoch: Epoch, role: Role, _now: Millis) {
        if let Some(r) = self.runs.get_mut(&spec.id) {
            // Same work under a newer epoch: rebind, do not restart.
            r.epoch = r.epoch.max(epoch);
            return;
        }
        let abort = Arc::new(AtomicBool::new(false));
        self.runs.insert(
            spec.id,
            Run {
                epoch,
                abort: abort.clone(),
            },
        );
        let ctx = RunCtx {
            me: self.me,
            store: self.store.clone(),
            net: self.net.clone(),
            slots: self.slots.clone(),
            load: self.load.clone(),
            inbound: self.inbound.clone(),
            fetching: self.fetching.clone(),
            prefetch: self.prefetch.clone(),
            tx: self.internal_tx.clone(),
            budget: self.cfg.blob_budget_bytes,
            holders_rank: rank_holders(&self.est, &spec),
        };
        // One line per execution started here (the testnet counts
        // duplicate executions from these).
        info!(id = %task_hex(&spec.id), %epoch, ?role, "market run started");
        let span = info_span!("task", task = %spec.id, %epoch);
        tokio::spawn(ctx.run(spec, epoch, role, abort).instrument(span));
    }
}

fn task_of(msg: &Request) -> Option<TaskId> {
    match msg {
        Request::TaskAnnounce { spec, .. } | Request::Award { spec, .. } => Some(spec.id),
        Request::Bid(b) => Some(b.task),
        Request::AwardAck { task, .. }
        | Request::Heartbeat { task, .. }
        | Request::Cancel { task, .. } => Some(*task),
        Request::Result(r) => Some(r.task),
        _ => None,
    }
}

/// Inputs a run still has to fetch, counted in the node's inbound
/// transfers (which its bids price) until fetched or the run ends.
struct Pending<'a> {
    count: &'a AtomicUsize,
    left: usize,
}

impl<'a> Pending<'a> {
    fn new(count: &'a AtomicUsize, n: usize) -> Self {
        count.fetch_add(n, Ordering::Relaxed);
        Pending { count, left: n }
    }

    fn done_one(&mut self) {
        if self.left > 0 {
            self.left -= 1;
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        self.count.fetch_sub(self.left, Ordering::Relaxed);
    }
}

/// `n` permits of `sem`, waiting in turn (oldest first), or an error once
/// the run is aborted: a cancelled run gives up its place and what it
/// holds instead of waiting on.
async fn acquire(
    sem: &Arc<Semaphore>,
    n: u32,
    abort: &AtomicBool,
) -> Result<tokio::sync::OwnedSemaphorePermit, String> {
    let wait = sem.clone().acquire_many_owned(n);
    tokio::pin!(wait);
    loop {
        if abort.load(Ordering::Relaxed) {
            return Err("aborted while waiting".into());
        }
        tokio::select! {
            p = &mut wait => return p.map_err(|_| "executor closed".to_string()),
            () = tokio::time::sleep(ABORT_POLL) => {}
        }
    }
}

/// Bytes in KiB, rounded up, as semaphore permits (at most 256 GiB: a
/// semaphore holds fewer permits on a 32-bit device).
fn kib(bytes: u64) -> u32 {
    u32::try_from(bytes.div_ceil(1024))
        .unwrap_or(u32::MAX)
        .clamp(1, u32::MAX >> 4)
}

fn body_runtime(b: &ResultBody) -> u64 {
    b.summary_json()["runtime_ms"].as_u64().unwrap_or(0)
}

fn body_fetched(b: &ResultBody) -> u64 {
    b.summary_json()["fetched_bytes"].as_u64().unwrap_or(0)
}

/// Holders of each input, best first by RTT + size / bandwidth.
fn rank_holders(est: &PeerEstimates, spec: &TaskSpec) -> Vec<Vec<NodeId>> {
    let now = now_ms();
    spec.inputs
        .iter()
        .map(|b| {
            let mut hs: Vec<(f64, NodeId)> = b
                .holders
                .iter()
                .map(|h| (est.transfer_ms(h, Direction::Inbound, b.size, now), *h))
                .collect();
            hs.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            hs.into_iter().map(|(_, h)| h).collect()
        })
        .collect()
}

struct RunCtx {
    me: NodeId,
    store: Store,
    net: NetClient,
    slots: Arc<Semaphore>,
    load: Arc<AtomicUsize>,
    inbound: Arc<AtomicUsize>,
    fetching: Arc<Semaphore>,
    prefetch: Arc<Semaphore>,
    tx: mpsc::Sender<Internal>,
    budget: u64,
    holders_rank: Vec<Vec<NodeId>>,
}

impl RunCtx {
    async fn run(self, spec: TaskSpec, epoch: Epoch, role: Role, abort: Arc<AtomicBool>) {
        self.load.fetch_add(1, Ordering::Relaxed);
        let outcome = self.run_inner(&spec, &abort).await;
        self.load.fetch_sub(1, Ordering::Relaxed);
        let _ = self
            .tx
            .send(Internal::Done {
                task: spec.id,
                epoch,
                role,
                kind: spec.kind,
                cost: spec.compute_cost,
                outcome,
            })
            .await;
    }

    /// Input `i`: read here, or fetched (counted in the inbound transfers
    /// while it lasts).
    async fn input(&self, i: usize, b: &BlobRef, fetched: &mut u64) -> Result<Vec<u8>, String> {
        let store = self.store.clone();
        let hash = b.hash;
        let local = tokio::task::spawn_blocking(move || store.get_blob(&hash))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())?;
        if let Some(body) = local {
            return Ok(body);
        }
        let _pending = Pending::new(&self.inbound, 1);
        self.fetch(i, b, fetched).await
    }

    /// Input `i` from its first reachable holder, verified chunk by chunk.
    async fn fetch(&self, i: usize, b: &BlobRef, fetched: &mut u64) -> Result<Vec<u8>, String> {
        let holders = self.holders_rank.get(i).cloned().unwrap_or_default();
        let mut last = format!("input {} has no holder", b.hash);
        for h in holders.iter().filter(|h| **h != self.me) {
            let Some(peer) = peer_of(h) else { continue };
            let r = fetch_blob(&self.net, peer, b.hash, self.budget.min(b.size.max(1))).await;
            match r {
                Ok((body, elapsed)) => {
                    *fetched += body.len() as u64;
                    let _ = self
                        .tx
                        .send(Internal::Transfer {
                            peer,
                            bytes: body.len() as u64,
                            elapsed,
                        })
                        .await;
                    return Ok(body);
                }
                Err(e) => last = format!("fetching input {} from {peer}: {e}", b.hash),
            }
        }
        Err(last)
    }

    async fn run_inner(
        &self,
        spec: &TaskSpec,
        abort: &Arc<AtomicBool>,
    ) -> Result<ResultBody, String> {
        let begun = Instant::now();
        // The inputs held elsewhere are fetched first, while the task
        // waits for a slot: a slot never sits idle during a transfer, and
        // a queued task starts computing as soon as one frees. Fetched
        // inputs waiting for a slot hold at most the blob budget between
        // them (a run needing more takes it all).
        let mut fetched = 0u64;
        let mut bodies: Vec<Option<Vec<u8>>> = vec![None; spec.inputs.len()];
        let (store, hashes) = (
            self.store.clone(),
            spec.inputs.iter().map(|b| b.hash).collect::<Vec<_>>(),
        );
        let missing: Vec<usize> = tokio::task::spawn_blocking(move || {
            (0..hashes.len())
                .filter(|i| {
                    !hashes
                        .get(*i)
                        .is_some_and(|h| store.has_blob(h).unwrap_or(false))
                })
                .collect()
        })
        .await
        .map_err(|e| e.to_string())?;
        let mut fetched_ms = 0u64;
        let waiting_memory = if missing.is_empty() {
            None
        } else {
            let bytes = missing
                .iter()
                .filter_map(|i| spec.inputs.get(*i))
                .fold(0u64, |a, b| a.saturating_add(b.size));
            // Counted from now for the bids: a new fetch waits behind these.
            let mut pending = Pending::new(&self.inbound, missing.len());
            let memory = acquire(&self.prefetch, kib(bytes).min(kib(self.budget)), abort).await?;
            let _turn = acquire(&self.fetching, 1, abort).await?;
            for i in &missing {
                if abort.load(Ordering::Relaxed) {
                    return Err("aborted while fetching".into());
                }
                if let (Some(b), Some(slot)) = (spec.inputs.get(*i), bodies.get_mut(*i)) {
                    *slot = Some(self.fetch(*i, b, &mut fetched).await?);
                }
                pending.done_one();
            }
            fetched_ms = begun.elapsed().as_millis() as u64;
            Some(memory)
        };
        let prefetched = fetched;
        let _permit = acquire(&self.slots, 1, abort).await?;
        // Running now: its inputs no longer count as waiting.
        drop(waiting_memory);
        if abort.load(Ordering::Relaxed) {
            return Err("aborted before start".into());
        }
        let slot_ms = begun.elapsed().as_millis() as u64;
        let mut all = Vec::with_capacity(bodies.len());
        for (i, (b, body)) in spec.inputs.iter().zip(bodies).enumerate() {
            match body {
                Some(x) => all.push(x),
                // Held here (or evicted since: then fetched now).
                None => all.push(self.input(i, b, &mut fetched).await?),
            }
        }
        let mut it = all.into_iter();
        let params_bytes = it.next().ok_or("a task needs its parameter blob")?;
        let params = executor::decode_params(&params_bytes).map_err(|e| e.to_string())?;
        let model = match params {
            super::tasks::TaskParams::Predict { .. } => {
                Some(it.next().ok_or("predict needs its model input")?)
            }
            _ => None,
        };
        let data: Vec<Vec<u8>> = it.collect();
        let abort2 = abort.clone();
        let started = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            let mut samples = Vec::new();
            for (i, d) in data.iter().enumerate() {
                let mut s = executor::decode_samples(i, d)?;
                if samples.len() + s.len() > executor::MAX_SAMPLES {
                    return Err(executor::ExecError::BadParams(format!(
                        "more than {} samples",
                        executor::MAX_SAMPLES
                    )));
                }
                samples.append(&mut s);
            }
            executor::run(&params, &samples, model.as_deref(), &abort2)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
        let runtime = started.elapsed().as_millis() as u64;
        // The worker's measurements travel inside the summary.
        let mut summary = result.summary_json();
        if let Some(o) = summary.as_object_mut() {
            o.insert("runtime_ms".into(), runtime.into());
            o.insert("fetched_bytes".into(), fetched.into());
            o.insert("prefetched_bytes".into(), prefetched.into());
            o.insert("fetched_after_ms".into(), fetched_ms.into());
            o.insert("slot_after_ms".into(), slot_ms.into());
            o.insert("worker".into(), peer_str(&self.me).into());
        }
        Ok(ResultBody {
            summary: summary.to_string(),
            artifact: result.artifact,
        })
    }
}
