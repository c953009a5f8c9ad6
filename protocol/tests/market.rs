//! The market under a simulated network: one owner, several bidders, a
//! network that loses, duplicates, reorders and delays messages, bidders
//! that crash, and an owner that restarts from its last persisted state.
//!
//! Guarantees checked: no accepted task is lost, none is committed twice,
//! every task ends committed (before its deadline) or explicitly failed (at
//! its deadline, or when the owner comes back if it was down then).
//!
//! Case counts are low for the 2-core CI box; run more with
//! `PROPTEST_CASES=2000 cargo test -p shoal-protocol --test market`.
#![allow(clippy::unwrap_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use proptest::prelude::*;
use shoal_protocol::*;

const OWNER: u64 = 0;

/// splitmix64: deterministic randomness for the network, seeded by proptest.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    Deliver {
        from: u64,
        to: u64,
        frame: Vec<u8>,
    },
    Timer {
        node: u64,
        at: Millis,
    },
    LocalDone {
        node: u64,
        incarnation: u64,
        task: TaskId,
        epoch: Epoch,
    },
    Submit {
        seq: u64,
    },
    OwnerCrash {
        down_ms: u64,
    },
    OwnerRestart,
    BidderCrash {
        node: u64,
        down_ms: u64,
    },
    BidderRestart {
        node: u64,
    },
}

#[derive(Debug, Clone)]
struct NetConfig {
    loss_pct: u64,
    dup_pct: u64,
    max_delay_ms: u64,
}

struct Node {
    up: bool,
    incarnation: u64,
    timer: Option<Millis>,
    est: PeerEstimates,
    /// Local runs in progress: (task, epoch).
    running: BTreeSet<(TaskId, Epoch)>,
    /// Cut off from everyone (but still running) in [from, until).
    partitioned: (Millis, Millis),
}

#[derive(Debug, Default)]
struct Outcome {
    commits: Vec<(Millis, Epoch, NodeId, TaskOutput)>,
    fails: Vec<(Millis, FailReason)>,
}

struct Sim {
    rng: Rng,
    net: NetConfig,
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Reverse<(Millis, u64, Ev)>>,
    owner: Option<Owner>,
    snapshot: Vec<u8>,
    bidders: BTreeMap<u64, Bidder>,
    bidder_cfg: BidderConfig,
    nodes: BTreeMap<u64, Node>,
    /// Specs waiting to be submitted, by seq.
    to_submit: BTreeMap<u64, TaskSpec>,
    /// Accepted tasks and their absolute deadlines.
    accepted: BTreeMap<TaskId, Millis>,
    outcomes: BTreeMap<TaskId, Outcome>,
    /// Owner down intervals.
    downtime: Vec<(Millis, Millis)>,
    /// Local executions started, per task (duplicates included).
    executions: BTreeMap<TaskId, u64>,
}

fn nid(n: u64) -> NodeId {
    NodeId::from_u64(n)
}

fn expected_output(task: TaskId) -> TaskOutput {
    TaskOutput::Inline(BoundedBytes::try_from_slice(&task.0.to_le_bytes()).unwrap())
}

impl Sim {
    fn new(
        seed: u64,
        bidders: u64,
        net: NetConfig,
        owner_cfg: OwnerConfig,
        bidder_cfg: BidderConfig,
    ) -> Sim {
        let mut nodes = BTreeMap::new();
        for n in 0..=bidders {
            let mut est = PeerEstimates::new(EstimatesConfig::default(), SpeedClass::Small);
            for m in 0..=bidders {
                if m != n {
                    est.on_seen(nid(m), Millis(0));
                }
            }
            nodes.insert(
                n,
                Node {
                    up: true,
                    incarnation: 0,
                    timer: None,
                    est,
                    running: BTreeSet::new(),
                    partitioned: (Millis(0), Millis(0)),
                },
            );
        }
        let bidders = (1..=bidders)
            .map(|n| (n, Bidder::new(nid(n), bidder_cfg.clone())))
            .collect();
        let owner = Owner::new(nid(OWNER), owner_cfg.clone());
        let snapshot = owner.encode_state();
        Sim {
            rng: Rng(seed),
            net,
            now: Millis(0),
            seq: 0,
            queue: BinaryHeap::new(),
            owner: Some(owner),

            snapshot,
            bidders,
            bidder_cfg,
            nodes,
            to_submit: BTreeMap::new(),
            accepted: BTreeMap::new(),
            outcomes: BTreeMap::new(),
            downtime: Vec::new(),
            executions: BTreeMap::new(),
        }
    }

    fn at(&mut self, t: Millis, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse((t, self.seq, ev)));
    }

    fn submit_at(&mut self, t: Millis, spec: TaskSpec) {
        let seq = self.to_submit.len() as u64;
        self.to_submit.insert(seq, spec);
        self.at(t, Ev::Submit { seq });
    }

    fn reachable(&self, a: u64, b: u64) -> bool {
        let now = self.now;
        let ok = |n: u64| {
            self.nodes
                .get(&n)
                .is_some_and(|x| x.up && !(x.partitioned.0 <= now && now < x.partitioned.1))
        };
        ok(a) && ok(b)
    }

    fn send(&mut self, from: u64, to: u64, msg: &Request) {
        // Everything crosses the real codec.
        let frame = encode(msg).unwrap();
        if !self.reachable(from, to) || self.rng.chance(self.net.loss_pct) {
            return;
        }
        let copies = if self.rng.chance(self.net.dup_pct) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let d = 1 + self.rng.below(self.net.max_delay_ms);
            let t = self.now.plus(d);
            self.at(
                t,
                Ev::Deliver {
                    from,
                    to,
                    frame: frame.clone(),
                },
            );
        }
    }

    fn apply(&mut self, node: u64, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, msg } => {
                    let to = u64::from_be_bytes(to.as_bytes().try_into().unwrap());
                    self.send(node, to, &msg);
                }
                Action::StartLocal { task, epoch } => {
                    *self.executions.entry(task.id).or_default() += 1;
                    let n = self.nodes.get_mut(&node).unwrap();
                    n.running.insert((task.id, epoch));
                    let inc = n.incarnation;
                    // Real runtimes scatter around the estimate.
                    let runtime = task.compute_cost * (80 + self.rng.below(70)) / 100;
                    let t = self.now.plus(runtime);
                    self.at(
                        t,
                        Ev::LocalDone {
                            node,
                            incarnation: inc,
                            task: task.id,
                            epoch,
                        },
                    );
                }
                Action::Abort { task, epoch } => {
                    self.nodes
                        .get_mut(&node)
                        .unwrap()
                        .running
                        .remove(&(task, epoch));
                }
                Action::Commit {
                    task,
                    epoch,
                    by,
                    output,
                } => {
                    assert_eq!(node, OWNER);
                    self.outcomes
                        .entry(task)
                        .or_default()
                        .commits
                        .push((self.now, epoch, by, output));
                }
                Action::Fail { task, reason } => {
                    assert_eq!(node, OWNER);
                    self.outcomes
                        .entry(task)
                        .or_default()
                        .fails
                        .push((self.now, reason));
                }
                Action::SetTimer { at } => {
                    self.nodes.get_mut(&node).unwrap().timer = Some(at);
                    self.at(at, Ev::Timer { node, at });
                }
                Action::Broadcast { .. } | Action::FetchModel { .. } => {}
            }
        }
        if node == OWNER {
            // Durable before acknowledged: persist after every step, in the
            // same "transaction" as the Commit/Fail it emitted.
            if let Some(o) = &self.owner {
                self.snapshot = o.encode_state();
            }
        }
    }

    fn step(&mut self, ev: Ev) {
        match ev {
            Ev::Deliver { from, to, frame } => {
                if !self.reachable(from, to) {
                    return;
                }
                let msg = decode_request(&frame).unwrap();
                let now = self.now;
                let acts = if to == OWNER {
                    let est = &self.nodes[&OWNER].est;
                    self.owner
                        .as_mut()
                        .unwrap()
                        .on_request(nid(from), &msg, now, est)
                } else {
                    let est = &self.nodes[&to].est;
                    let has = |h: &Hash| h.0[0] as u64 == to; // node n holds blobs tagged n
                    let ctx = BidContext {
                        estimates: est,
                        has_blob: &has,
                        inbound_transfers: 0,
                    };
                    self.bidders
                        .get_mut(&to)
                        .unwrap()
                        .on_request(nid(from), &msg, now, &ctx)
                };
                self.apply(to, acts);
            }
            Ev::Timer { node, at } => {
                let n = &self.nodes[&node];
                if !n.up || n.timer != Some(at) {
                    return;
                }
                let now = self.now;
                let acts = if node == OWNER {
                    let est = &self.nodes[&OWNER].est;
                    self.owner.as_mut().unwrap().on_tick(now, est)
                } else {
                    self.bidders.get_mut(&node).unwrap().on_tick(now)
                };
                self.apply(node, acts);
            }
            Ev::LocalDone {
                node,
                incarnation,
                task,
                epoch,
            } => {
                let n = self.nodes.get_mut(&node).unwrap();
                if !n.up || n.incarnation != incarnation || !n.running.remove(&(task, epoch)) {
                    return;
                }
                let now = self.now;
                let out = expected_output(task);
                let acts = if node == OWNER {
                    self.owner
                        .as_mut()
                        .unwrap()
                        .on_local_done(task, epoch, out, now)
                } else {
                    self.bidders
                        .get_mut(&node)
                        .unwrap()
                        .on_local_done(task, epoch, out, now)
                };
                self.apply(node, acts);
            }
            Ev::Submit { seq } => {
                if !self.nodes[&OWNER].up {
                    // The caller retries once the owner is back.
                    let t = self.now.plus(500);
                    self.at(t, Ev::Submit { seq });
                    return;
                }
                let spec = self.to_submit[&seq].clone();
                let deadline = self.now.plus(spec.deadline_in_ms);
                let now = self.now;
                let est = &self.nodes[&OWNER].est;
                let acts = self
                    .owner
                    .as_mut()
                    .unwrap()
                    .submit(spec.clone(), now, est)
                    .unwrap();
                self.accepted.insert(spec.id, deadline);
                self.apply(OWNER, acts);
            }
            Ev::OwnerCrash { down_ms } => {
                if self.owner.is_none() {
                    return;
                }
                self.owner = None;
                let n = self.nodes.get_mut(&OWNER).unwrap();
                n.up = false;
                n.incarnation += 1;
                n.running.clear();
                n.timer = None;
                let back = self.now.plus(down_ms);
                self.downtime.push((self.now, back));
                self.at(back, Ev::OwnerRestart);
            }
            Ev::OwnerRestart => {
                let mut o = Owner::decode_state(&self.snapshot).unwrap();
                self.nodes.get_mut(&OWNER).unwrap().up = true;
                let now = self.now;
                let acts = o.resume(now, &self.nodes[&OWNER].est);
                self.owner = Some(o);
                self.apply(OWNER, acts);
            }
            Ev::BidderCrash { node, down_ms } => {
                let n = self.nodes.get_mut(&node).unwrap();
                if !n.up {
                    return;
                }
                n.up = false;
                n.incarnation += 1;
                n.running.clear();
                n.timer = None;
                let t = self.now.plus(down_ms);
                self.at(t, Ev::BidderRestart { node });
            }
            Ev::BidderRestart { node } => {
                // State is lost with the process: a fresh bidder.
                self.nodes.get_mut(&node).unwrap().up = true;
                self.bidders
                    .insert(node, Bidder::new(nid(node), self.bidder_cfg.clone()));
            }
        }
    }

    fn run_until(&mut self, end: Millis) {
        while let Some(Reverse((t, _, _))) = self.queue.peek() {
            if *t > end {
                break;
            }
            let Some(Reverse((t, _, ev))) = self.queue.pop() else {
                break;
            };
            self.now = t;
            self.step(ev);
        }
        self.now = end;
    }

    fn owner_down_at(&self, t: Millis) -> Option<Millis> {
        self.downtime
            .iter()
            .find(|(a, b)| *a <= t && t < *b)
            .map(|(_, b)| *b)
    }

    /// The guarantees.
    fn check(&self) {
        for (task, deadline) in &self.accepted {
            let o = self.outcomes.get(task);
            let (c, f) = o.map_or((0, 0), |o| (o.commits.len(), o.fails.len()));
            assert!(
                c + f == 1,
                "task {task}: {c} commits, {f} fails (exactly one outcome expected)"
            );
            let o = &self.outcomes[task];
            if let Some((t, _, _, out)) = o.commits.first() {
                assert!(
                    t < deadline,
                    "task {task} committed at {t}, deadline {deadline}"
                );
                assert_eq!(out, &expected_output(*task));
            }
            if let Some((t, reason)) = o.fails.first() {
                assert_eq!(*reason, FailReason::DeadlineExceeded);
                let due = self.owner_down_at(*deadline).unwrap_or(*deadline);
                assert!(
                    t >= deadline,
                    "task {task} failed early at {t}, deadline {deadline}"
                );
                assert!(*t <= due, "task {task} failed at {t}, due by {due}");
            }
        }
        assert_eq!(
            self.accepted.len(),
            self.to_submit.len(),
            "every submitted task accepted"
        );
    }
}

fn spec(seq: u64, cost: u64, deadline_ms: u64, inputs: Vec<BlobRef>) -> TaskSpec {
    TaskSpec {
        id: TaskId::derive(&nid(OWNER), seq),
        owner: nid(OWNER),
        kind: TaskKind::Train,
        inputs: BoundedVec::try_from_vec(inputs).unwrap(),
        compute_cost: cost,
        memory_bytes: 1 << 20,
        output_bytes: 8,
        deadline_in_ms: deadline_ms,
    }
}

/// A blob held by `holder` (the simulator's `has_blob` reads the first byte).
fn blob(holder: u64, size: u64) -> BlobRef {
    let mut h = [0u8; 32];
    h[0] = holder as u8;
    h[1] = 0xb1;
    BlobRef {
        hash: Hash(h),
        size,
        holders: BoundedVec::try_from_vec(vec![nid(holder)]).unwrap(),
    }
}

fn calm() -> NetConfig {
    NetConfig {
        loss_pct: 0,
        dup_pct: 0,
        max_delay_ms: 20,
    }
}

#[test]
fn calm_network_commits_every_task_once_and_prefers_data_holders() {
    let mut sim = Sim::new(
        1,
        3,
        calm(),
        OwnerConfig::default(),
        BidderConfig::default(),
    );
    for i in 0..4 {
        // 50 MB input held by node 2: moving it costs far more than computing.
        sim.submit_at(
            Millis(i * 10),
            spec(i, 1_000, 60_000, vec![blob(2, 50_000_000)]),
        );
    }
    sim.run_until(Millis(120_000));
    sim.check();
    for o in sim.outcomes.values() {
        assert_eq!(o.commits.len(), 1);
    }
    let by_holder = sim
        .outcomes
        .values()
        .filter(|o| o.commits[0].2 == nid(2))
        .count();
    assert!(
        by_holder >= 2,
        "the holder of the input wins while it has slots"
    );
    assert!(
        sim.executions.values().all(|n| *n == 1),
        "no duplicate runs in a calm network"
    );
    let st = sim.owner.as_ref().unwrap().stats();
    assert_eq!((st.committed, st.failed, st.lease_expiries), (4, 0, 0));
}

#[test]
fn nobody_bids_so_the_owner_runs_it_locally() {
    // Bidders with too little memory never bid.
    let small = BidderConfig {
        memory_bytes: 1024,
        ..BidderConfig::default()
    };
    let mut sim = Sim::new(2, 2, calm(), OwnerConfig::default(), small);
    sim.submit_at(Millis(0), spec(0, 500, 10_000, vec![]));
    sim.run_until(Millis(30_000));
    sim.check();
    let o = &sim.outcomes[&TaskId::derive(&nid(OWNER), 0)];
    assert_eq!(o.commits[0].2, nid(OWNER));
}

#[test]
fn impossible_deadline_fails_explicitly_at_the_deadline() {
    let cfg = OwnerConfig {
        run_locally: false,
        ..OwnerConfig::default()
    };
    let mut sim = Sim::new(3, 2, calm(), cfg, BidderConfig::default());
    // 20 s of compute, 5 s deadline: nobody bids, and local is off.
    sim.submit_at(Millis(100), spec(0, 20_000, 5_000, vec![]));
    sim.run_until(Millis(30_000));
    sim.check();
    let o = &sim.outcomes[&TaskId::derive(&nid(OWNER), 0)];
    assert_eq!(o.fails, vec![(Millis(5_100), FailReason::DeadlineExceeded)]);
}

#[test]
fn partitioned_holder_is_replaced_its_late_result_ignored_and_the_duplicate_counted() {
    let mut sim = Sim::new(
        4,
        2,
        calm(),
        OwnerConfig::default(),
        BidderConfig::default(),
    );
    // Input on node 1 only, so node 1 wins; then cut node 1 off for 10 s
    // while it keeps computing.
    sim.submit_at(Millis(0), spec(0, 8_000, 60_000, vec![blob(1, 20_000_000)]));
    sim.run_until(Millis(2_000));
    let task = TaskId::derive(&nid(OWNER), 0);
    assert!(
        matches!(sim.owner.as_ref().unwrap().phase(&task), Some(Phase::Leased { holder, .. }) if *holder == nid(1))
    );
    sim.nodes.get_mut(&1).unwrap().partitioned = (Millis(2_000), Millis(12_000));
    sim.run_until(Millis(120_000));
    sim.check();
    let o = &sim.outcomes[&task];
    assert_eq!(o.commits.len(), 1);
    let st = sim.owner.as_ref().unwrap().stats();
    assert!(
        st.lease_expiries >= 1,
        "the lease of the cut-off node expired"
    );
    assert_eq!(sim.executions[&task], 2, "it ran twice");
    assert!(o.commits[0].1 > Epoch(2), "committed under a later epoch");
}

#[test]
fn owner_restart_resumes_from_persisted_state() {
    let mut sim = Sim::new(
        5,
        3,
        calm(),
        OwnerConfig::default(),
        BidderConfig::default(),
    );
    for i in 0..3 {
        sim.submit_at(Millis(i), spec(i, 3_000, 60_000, vec![]));
    }
    sim.at(Millis(1_500), Ev::OwnerCrash { down_ms: 2_000 });
    sim.run_until(Millis(120_000));
    sim.check();
    assert!(sim.outcomes.values().all(|o| o.commits.len() == 1));
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
    #![proptest_config(ProptestConfig { cases: cases(1024), .. ProptestConfig::default() })]

    #[test]
    fn no_task_lost_none_committed_twice(
        seed in any::<u64>(),
        bidders in 1u64..5,
        tasks in prop::collection::vec((100u64..6_000, 2_000u64..40_000, 0u64..5_000, 0u64..4), 1..6),
        loss_pct in 0u64..35,
        dup_pct in 0u64..25,
        max_delay_ms in 1u64..400,
        owner_crashes in prop::collection::vec((0u64..40_000, 100u64..8_000), 0..3),
        bidder_crashes in prop::collection::vec((1u64..5, 0u64..40_000, 100u64..15_000), 0..4),
        partitions in prop::collection::vec((1u64..5, 0u64..40_000, 100u64..15_000), 0..3),
    ) {
        let net = NetConfig { loss_pct, dup_pct, max_delay_ms };
        let mut sim = Sim::new(seed, bidders, net, OwnerConfig::default(), BidderConfig::default());
        for (i, (cost, deadline, at, holder)) in tasks.iter().enumerate() {
            let inputs = if *holder == 0 || *holder > bidders { vec![] } else { vec![blob(*holder, 2_000_000)] };
            sim.submit_at(Millis(*at), spec(i as u64, *cost, *deadline, inputs));
        }
        for (at, down) in owner_crashes {
            sim.at(Millis(at), Ev::OwnerCrash { down_ms: down });
        }
        for (node, at, down) in bidder_crashes {
            if node <= bidders {
                sim.at(Millis(at), Ev::BidderCrash { node, down_ms: down });
            }
        }
        for (node, at, len) in partitions {
            if node <= bidders {
                // A cut, not a crash: the node keeps its state and its work.
                sim.nodes.get_mut(&node).unwrap().partitioned = (Millis(at), Millis(at + len));
            }
        }
        sim.run_until(Millis(200_000));
        sim.check();
        if std::env::var("SIM_DEBUG").is_ok() {
            let st = sim.owner.as_ref().map(|o| o.stats().clone());
            eprintln!("tasks {} execs {:?} stats {:?}", sim.accepted.len(), sim.executions.values().collect::<Vec<_>>(), st);
        }
    }
}
