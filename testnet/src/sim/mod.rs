//! `shoal-testnet sim`: a seeded discrete-event simulator of the task market.
//!
//! Simulated nodes run the real `shoal-protocol` state machines ([`Owner`],
//! [`Bidder`], [`PeerEstimates`]) over a flow-level network with max-min fair
//! bandwidth sharing ([`net`]) and per-link latency, in one of three settings
//! ([`topology`]), on a workload of Pareto-sized blobs born on devices and
//! Poisson task arrivals ([`workload`]), with optional node churn. The same
//! workload and churn run under the auction and under eight baselines; the
//! report compares them with per-metric lower bounds.
//!
//! ```no_run
//! use shoal_testnet::sim::{run, Policy, SimConfig};
//! use shoal_testnet::sim::topology::TopologyKind;
//!
//! let cfg = SimConfig {
//!     nodes: 50,
//!     tasks: 2_000,
//!     topology: TopologyKind::Urban,
//!     churn: 0.3,
//!     ..SimConfig::default()
//! };
//! let report = run(&cfg, &[Policy::Auction, Policy::DataLocality]).unwrap();
//! for p in &report.policies {
//!     println!("{} {:.1} s", p.policy, p.mean_completion_s);
//! }
//! ```
//!
//! [`Owner`]: shoal_protocol::Owner
//! [`Bidder`]: shoal_protocol::Bidder
//! [`PeerEstimates`]: shoal_protocol::PeerEstimates

pub mod bound;
pub mod engine;
pub mod net;
pub mod plot;
pub mod rng;
pub mod topology;
pub mod workload;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{bail, Result};
use serde::Serialize;

use engine::{Outage, RunStats, Setup, Sim};
use rng::Rng;
use topology::{Topology, TopologyKind};
use workload::{Shape, Workload, WorkloadConfig};

/// A placement policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum Policy {
    /// The market: sealed bids, leases, epochs (`shoal-protocol`).
    Auction,
    /// Uniformly random among known live peers and the owner.
    Random,
    /// Each owner cycles through its known peers.
    RoundRobin,
    /// Fewest tasks per slot, from gossiped status.
    LeastLoaded,
    /// Sparrow: reservations on two random peers, late binding.
    PowerOfTwo,
    /// The node holding the most input bytes (Ray-style locality).
    DataLocality,
    /// Ray's default scheduler: locality among nodes with a free slot,
    /// otherwise a free node (packed, then spread), else wait in a queue
    /// until a slot frees anywhere.
    Spillback,
    /// Skippy-style weighted scoring.
    Skippy,
    /// Centralised greedy with full knowledge of queues and links.
    Omniscient,
}

impl Policy {
    /// Every policy, auction first.
    pub const ALL: [Policy; 9] = [
        Policy::Auction,
        Policy::Random,
        Policy::RoundRobin,
        Policy::LeastLoaded,
        Policy::PowerOfTwo,
        Policy::DataLocality,
        Policy::Spillback,
        Policy::Skippy,
        Policy::Omniscient,
    ];

    /// The simulator's random stream of the policy: fixed per policy, so
    /// that adding one does not change the others' runs for a seed.
    pub fn stream(self) -> u64 {
        match self {
            Policy::Auction => 0,
            Policy::Random => 1,
            Policy::RoundRobin => 2,
            Policy::LeastLoaded => 3,
            Policy::PowerOfTwo => 4,
            Policy::DataLocality => 5,
            Policy::Skippy => 6,
            Policy::Omniscient => 7,
            Policy::Spillback => 8,
        }
    }

    /// Name in reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Auction => "auction",
            Policy::Random => "random",
            Policy::RoundRobin => "round_robin",
            Policy::LeastLoaded => "least_loaded",
            Policy::PowerOfTwo => "power_of_two",
            Policy::DataLocality => "data_locality",
            Policy::Spillback => "spillback",
            Policy::Skippy => "skippy",
            Policy::Omniscient => "omniscient",
        }
    }

    /// Parses a comma-separated list (`auction,random`, or `all`).
    pub fn parse_list(s: &str) -> Result<Vec<Policy>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part == "all" {
                for p in Policy::ALL {
                    if !out.contains(&p) {
                        out.push(p);
                    }
                }
                continue;
            }
            let Some(p) = Policy::ALL.into_iter().find(|p| p.name() == part) else {
                let names: Vec<&str> = Policy::ALL.iter().map(|p| p.name()).collect();
                bail!("unknown policy {part:?}; known: {}", names.join(", "));
            };
            if !out.contains(&p) {
                out.push(p);
            }
        }
        if out.is_empty() {
            bail!("no policy given");
        }
        Ok(out)
    }
}

/// Default of `--rate-interval-ms`.
pub const DEFAULT_RATE_INTERVAL_MS: f64 = 20.0;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Nodes (2 to 100 000).
    pub nodes: usize,
    /// Tasks.
    pub tasks: usize,
    /// Setting.
    pub topology: TopologyKind,
    /// Seed of everything random.
    pub seed: u64,
    /// Fraction of nodes that crash and restart during the run.
    pub churn: f64,
    /// Offered compute load (fraction of speed x slots).
    pub load: f64,
    /// Worker threads (policies run in parallel).
    pub threads: usize,
    /// Weight of non-local bytes in the auction score (`OwnerConfig::lambda`);
    /// `None` keeps the protocol default.
    pub lambda: Option<f64>,
    /// How often flow rates are brought back to max-min fairness, ms (0:
    /// at every flow start and stop).
    pub rate_interval_ms: f64,
    /// How heavy a task's data and compute are.
    pub shape: Shape,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 200,
            tasks: 20_000,
            topology: TopologyKind::Urban,
            seed: 1,
            churn: 0.0,
            load: 0.6,
            threads: std::thread::available_parallelism().map_or(2, |n| n.get()),
            lambda: None,
            rate_interval_ms: DEFAULT_RATE_INTERVAL_MS,
            shape: Shape::default(),
        }
    }
}

impl SimConfig {
    fn check(&self) -> Result<()> {
        if !(2..=100_000).contains(&self.nodes) {
            bail!("--nodes must be 2..=100000, got {}", self.nodes);
        }
        if !(1..=10_000_000).contains(&self.tasks) {
            bail!("--tasks must be 1..=10000000, got {}", self.tasks);
        }
        if !(0.0..=1.0).contains(&self.churn) {
            bail!("--churn must be a fraction in 0..=1, got {}", self.churn);
        }
        if self.lambda.is_some_and(|l| !(l.is_finite() && l >= 0.0)) {
            bail!("--lambda must be a finite number >= 0");
        }
        if !(self.rate_interval_ms.is_finite() && (0.0..=10_000.0).contains(&self.rate_interval_ms))
        {
            bail!(
                "--rate-interval-ms must be in 0..=10000, got {}",
                self.rate_interval_ms
            );
        }
        if !(self.load > 0.0 && self.load <= 2.0) {
            bail!("--load must be in (0, 2], got {}", self.load);
        }
        self.shape.check()?;
        Ok(())
    }
}

/// Results of one policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyReport {
    /// Policy name.
    pub policy: String,
    /// Mean completion time (arrival to commit), s. Failed tasks count
    /// with their deadline.
    pub mean_completion_s: f64,
    /// 95th percentile of the same, s.
    pub p95_completion_s: f64,
    /// First arrival to last commit, s.
    pub makespan_s: f64,
    /// Committed after the deadline, or failed at it.
    pub deadline_misses: u64,
    /// Failed at the deadline (the auction gives up; baselines never do).
    pub failed: u64,
    /// Committed tasks.
    pub committed: u64,
    /// Bytes moved over the network (inputs and outputs).
    pub bytes_moved: f64,
    /// Of those, bytes over cell uplinks.
    pub uplink_bytes: f64,
    /// Control messages per task (auction, assignment, probes, results,
    /// status gossip).
    pub control_msgs_per_task: f64,
    /// Control bytes per task.
    pub control_bytes_per_task: f64,
    /// Jain's fairness index of per-node utilisation (busy slot time / slots).
    pub jain_fairness: f64,
    /// Tasks neither committed nor failed when the run ended, and that no
    /// live node was still working on (see `unfinished`).
    pub lost: u64,
    /// Tasks neither committed nor failed when the simulation stopped (4 h
    /// after the last arrival) but still queued or running at a live node:
    /// a policy too slow for the workload, not a lost task.
    pub unfinished: u64,
    /// Commits beyond the first, summed over tasks.
    pub committed_twice: u64,
    /// Executions started beyond the first, summed over tasks.
    pub duplicate_executions: u64,
    /// Messages dropped because the receiver was down.
    pub dropped_messages: u64,
    /// mean_completion_s / lower bound.
    pub mean_ratio_to_lb: f64,
    /// p95_completion_s / lower bound.
    pub p95_ratio_to_lb: f64,
    /// makespan_s / lower bound.
    pub makespan_ratio_to_lb: f64,
    /// bytes_moved / lower bound.
    pub bytes_ratio_to_lb: f64,
    /// Fewest bytes any placement moves in which every node finishes its
    /// work within this policy's makespan (see [`bound`]): how many of its
    /// bytes its speed required.
    pub bytes_bound_at_makespan: f64,
    /// bytes_moved / bytes_bound_at_makespan.
    pub bytes_ratio_to_bound_at_makespan: f64,
    /// Events processed.
    pub events: u64,
    /// Wall-clock time of this policy's run, s.
    pub wall_s: f64,
    /// Completion times, s, sorted (for plots; not serialised).
    #[serde(skip)]
    pub sorted_completion_s: Vec<f64>,
}

/// Per-metric lower bounds.
#[derive(Debug, Clone, Serialize)]
pub struct LowerBound {
    /// Mean over tasks of the best node's transfer + compute with free links.
    pub mean_completion_s: f64,
    /// 95th percentile of the same.
    pub p95_completion_s: f64,
    /// Total work over total capacity, or the last arrival plus its own
    /// bound, whichever is later.
    pub makespan_s: f64,
    /// Sum over tasks of the fewest bytes any placement moves.
    pub bytes_moved: f64,
    /// Fewest bytes any placement moves in which every node finishes its
    /// work within the arrival span (keeps up with the arrivals), from
    /// the capacity-aware bound of [`bound`].
    pub bytes_keeping_up: f64,
    /// Bytes of one placement that does keep up (every node's work within
    /// the arrival span, arrival times relaxed away), found greedily: the
    /// fewest bytes of such placements lie between `bytes_keeping_up` and
    /// this, so when the two are close the bound is tight. `None` when the
    /// greedy finds no such placement.
    pub bytes_keeping_up_placement: Option<f64>,
    /// The same bound when every node may take longer: the fewest bytes
    /// any placement moves that finishes all work within
    /// [`SPAN_MULTIPLES`] times the arrival span.
    pub bytes_within_span_multiple: Vec<SpanBound>,
}

/// Multiples of the arrival span at which the capacity-aware bytes bound
/// is reported: how much longer than the arrivals a run must be allowed to
/// last before few bytes suffice.
pub const SPAN_MULTIPLES: [f64; 5] = [1.25, 1.5, 2.0, 3.0, 5.0];

/// The capacity-aware bytes bound at one horizon.
#[derive(Debug, Clone, Serialize)]
pub struct SpanBound {
    /// Horizon as a multiple of the arrival span.
    pub span_multiple: f64,
    /// Fewest bytes moved.
    pub bytes: f64,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct SimReport {
    /// Setting.
    pub topology: TopologyKind,
    /// Nodes.
    pub nodes: usize,
    /// Tasks.
    pub tasks: usize,
    /// Seed.
    pub seed: u64,
    /// Churn fraction.
    pub churn: f64,
    /// Offered load.
    pub load: f64,
    /// Blob sizes and compute costs of the workload.
    pub shape: Shape,
    /// Nodes that crashed (and restarted).
    pub crashed_nodes: usize,
    /// Simulated span of arrivals, s.
    pub arrival_span_s: f64,
    /// One entry per policy, in the order asked.
    pub policies: Vec<PolicyReport>,
    /// Lower bounds.
    pub lower_bound: LowerBound,
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Peers each node tracks, at most `max_peers - 1` of them: servers and
/// cloudlets (they advertise widely), then its own cell (mDNS), then others
/// found through the DHT.
pub fn known_peers(topo: &Topology, max: usize, r: &mut Rng) -> Vec<Vec<u32>> {
    let n = topo.len();
    let members = topo.members();
    let servers: Vec<u32> = (0..n as u32)
        .filter(|i| topo.nodes[*i as usize].class == shoal_protocol::SpeedClass::Server)
        .collect();
    let shuffle = |v: &mut Vec<u32>, r: &mut Rng| {
        for i in (1..v.len()).rev() {
            let j = r.below(i + 1);
            v.swap(i, j);
        }
    };
    (0..n as u32)
        .map(|me| {
            let mut out: Vec<u32> = servers.iter().copied().filter(|s| *s != me).collect();
            out.truncate(max / 4);
            let mut cell: Vec<u32> = members[topo.nodes[me as usize].cell as usize]
                .iter()
                .copied()
                .filter(|p| *p != me && !out.contains(p))
                .collect();
            shuffle(&mut cell, r);
            out.extend(cell);
            out.truncate(max);
            if out.len() < max {
                let mut need = max - out.len();
                let mut tries = 0;
                while need > 0 && tries < 20 * max {
                    tries += 1;
                    let p = r.below(n) as u32;
                    if p != me && !out.contains(&p) {
                        out.push(p);
                        need -= 1;
                    }
                }
            }
            out
        })
        .collect()
}

/// Runs `policies` on one generated scenario.
pub fn run(cfg: &SimConfig, policies: &[Policy]) -> Result<SimReport> {
    cfg.check()?;
    let mut r = Rng::fork(cfg.seed, 1);
    let topo = Topology::build(cfg.topology, cfg.nodes, &mut r);
    let mut rw = Rng::fork(cfg.seed, 2);
    let work = Workload::generate(
        &topo,
        &WorkloadConfig {
            tasks: cfg.tasks,
            load: cfg.load,
            shape: cfg.shape,
        },
        &mut rw,
    );
    let mut rk = Rng::fork(cfg.seed, 3);
    let max_peers = shoal_protocol::EstimatesConfig::default().max_peers;
    let known = known_peers(&topo, max_peers.saturating_sub(1).max(1), &mut rk);
    let span = work.tasks.last().map_or(0.0, |t| t.arrival);
    let mut rc = Rng::fork(cfg.seed, 4);
    let crashed = (cfg.churn * cfg.nodes as f64).round() as usize;
    let mut victims: Vec<u32> = (0..cfg.nodes as u32).collect();
    for i in (1..victims.len()).rev() {
        let j = rc.below(i + 1);
        victims.swap(i, j);
    }
    victims.truncate(crashed);
    let outages: Vec<Outage> = victims
        .iter()
        .map(|v| {
            let down = rc.range(0.05, 0.7) * span;
            Outage {
                node: *v,
                down,
                up: down + rc.range(10_000.0, 60_000.0),
            }
        })
        .collect();
    let setup = Setup {
        topo: &topo,
        work: &work,
        outages: &outages,
        known: &known,
        seed: cfg.seed,
        lambda: cfg.lambda,
        rate_interval_ms: cfg.rate_interval_ms,
    };
    let horizon = span + 4.0 * 3_600_000.0;
    let results: Mutex<Vec<Option<(RunStats, f64, f64)>>> = Mutex::new(vec![None; policies.len()]);
    let next = AtomicUsize::new(0);
    let threads = cfg.threads.clamp(1, policies.len().max(1));
    let bytes_bound = bound::BytesBound::new(&work);
    let lb = std::thread::scope(|sc| {
        // The lower bounds (seven capacity-aware bytes bounds) alongside
        // the runs.
        let lb = sc.spawn(|| lower_bound(&topo, &work, &bytes_bound, span));
        for _ in 0..threads {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(p) = policies.get(i) else { break };
                let t0 = Instant::now();
                let stats = Sim::new(&setup, *p).run(horizon);
                let wall = t0.elapsed().as_secs_f64();
                // The capacity-aware bytes bound at this run's makespan, in
                // the same worker (it is not part of the run's wall time).
                let first = work.tasks.first().map_or(0.0, |t| t.arrival);
                let bound = bytes_bound.within(&topo, (stats.end_ms - first).max(0.0));
                if let Ok(mut g) = results.lock() {
                    g[i] = Some((stats, wall, bound));
                }
            });
        }
        lb.join()
    })
    .map_err(|_| anyhow::anyhow!("the lower-bound thread panicked"))?;
    let results = results
        .into_inner()
        .map_err(|_| anyhow::anyhow!("a simulation thread panicked"))?;
    let mut reports = Vec::new();
    for (p, res) in policies.iter().zip(results) {
        let Some((stats, wall, bound)) = res else {
            bail!("the {} run did not finish", p.name());
        };
        let mut r = summarise(*p, &work, &stats, wall, &lb);
        r.bytes_bound_at_makespan = bound.max(lb.bytes_moved);
        r.bytes_ratio_to_bound_at_makespan = if r.bytes_bound_at_makespan > 0.0 {
            r.bytes_moved / r.bytes_bound_at_makespan
        } else {
            0.0
        };
        reports.push(r);
    }
    Ok(SimReport {
        topology: cfg.topology,
        nodes: cfg.nodes,
        tasks: cfg.tasks,
        seed: cfg.seed,
        churn: cfg.churn,
        load: cfg.load,
        shape: cfg.shape,
        crashed_nodes: outages.len(),
        arrival_span_s: span / 1000.0,
        policies: reports,
        lower_bound: lb,
    })
}

fn lower_bound(
    topo: &Topology,
    work: &Workload,
    bytes: &bound::BytesBound,
    span_ms: f64,
) -> LowerBound {
    let mut lbs: Vec<f64> = work.tasks.iter().map(|t| t.lb_ms / 1000.0).collect();
    lbs.sort_by(f64::total_cmp);
    let first = work.tasks.first().map_or(0.0, |t| t.arrival);
    let by_arrival = work
        .tasks
        .iter()
        .map(|t| t.arrival + t.lb_ms)
        .fold(0.0, f64::max);
    let work_ms: f64 = work.tasks.iter().map(|t| t.cost as f64).sum();
    let by_work = first + work_ms / topo.capacity_total();
    LowerBound {
        mean_completion_s: lbs.iter().sum::<f64>() / lbs.len().max(1) as f64,
        p95_completion_s: percentile(&lbs, 0.95),
        makespan_s: (by_arrival.max(by_work) - first) / 1000.0,
        bytes_moved: work.tasks.iter().map(|t| t.lb_bytes as f64).sum(),
        bytes_keeping_up: bytes.within(topo, span_ms),
        bytes_keeping_up_placement: bytes.placement_within(topo, span_ms),
        bytes_within_span_multiple: SPAN_MULTIPLES
            .iter()
            .map(|m| SpanBound {
                span_multiple: *m,
                bytes: bytes.within(topo, span_ms * m),
            })
            .collect(),
    }
}

fn summarise(
    p: Policy,
    work: &Workload,
    st: &RunStats,
    wall: f64,
    lb: &LowerBound,
) -> PolicyReport {
    let n = work.tasks.len();
    let mut times = Vec::with_capacity(n);
    let (mut misses, mut failed, mut committed, mut lost, mut twice, mut dups) =
        (0u64, 0u64, 0u64, 0u64, 0u64, 0u64);
    let mut unfinished = 0u64;
    for (i, t) in work.tasks.iter().enumerate() {
        if let Some(c) = st.completion[i] {
            committed += 1;
            times.push(c / 1000.0);
            if c > t.deadline {
                misses += 1;
            }
        } else if st.failed[i] {
            failed += 1;
            misses += 1;
            times.push(t.deadline / 1000.0);
        } else if st.in_progress.get(i).copied().unwrap_or(false) {
            unfinished += 1;
        } else {
            lost += 1;
        }
        twice += u64::from(st.commits[i].saturating_sub(1));
        dups += u64::from(st.starts[i].saturating_sub(1));
    }
    times.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len().max(1) as f64;
    let p95 = percentile(&times, 0.95);
    let first = work.tasks.first().map_or(0.0, |t| t.arrival);
    let makespan = ((st.end_ms - first) / 1000.0).max(0.0);
    let util: Vec<f64> = st.busy_ms.to_vec();
    let sum: f64 = util.iter().sum();
    let sq: f64 = util.iter().map(|x| x * x).sum();
    let jain = if sq > 0.0 {
        sum * sum / (util.len() as f64 * sq)
    } else {
        1.0
    };
    let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { 0.0 };
    PolicyReport {
        policy: p.name().to_string(),
        mean_completion_s: mean,
        p95_completion_s: p95,
        makespan_s: makespan,
        deadline_misses: misses,
        failed,
        committed,
        bytes_moved: st.bytes_moved,
        uplink_bytes: st.uplink_bytes,
        control_msgs_per_task: st.control_msgs as f64 / n.max(1) as f64,
        control_bytes_per_task: st.control_bytes as f64 / n.max(1) as f64,
        jain_fairness: jain,
        lost,
        unfinished,
        committed_twice: twice,
        duplicate_executions: dups,
        dropped_messages: st.dropped_msgs,
        mean_ratio_to_lb: ratio(mean, lb.mean_completion_s),
        p95_ratio_to_lb: ratio(p95, lb.p95_completion_s),
        makespan_ratio_to_lb: ratio(makespan, lb.makespan_s),
        bytes_ratio_to_lb: ratio(st.bytes_moved, lb.bytes_moved),
        bytes_bound_at_makespan: 0.0,
        bytes_ratio_to_bound_at_makespan: 0.0,
        events: st.events,
        wall_s: wall,
        sorted_completion_s: times,
    }
}

fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else {
        format!("{:.0} kB", b / 1e3)
    }
}

/// The report as a plain-text table.
pub fn table(r: &SimReport) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "topology {} | {} nodes | {} tasks | load {:.2} | churn {:.2} ({} nodes crashed) | seed {} | arrivals over {:.0} s",
        r.topology.name(),
        r.nodes,
        r.tasks,
        r.load,
        r.churn,
        r.crashed_nodes,
        r.seed,
        r.arrival_span_s
    );
    if r.shape != Shape::default() {
        let _ = writeln!(
            s,
            "workload: blobs from {:.0} kB, base compute x{}, compute per MB x{}",
            r.shape.blob_min_bytes / 1e3,
            r.shape.compute_scale,
            r.shape.per_mb_scale
        );
    }
    let _ = writeln!(
        s,
        "{:<14} {:>9} {:>9} {:>10} {:>7} {:>11} {:>11} {:>8} {:>9} {:>6} {:>5} {:>6} {:>6} {:>6} {:>7}",
        "policy",
        "mean s",
        "p95 s",
        "makespan s",
        "misses",
        "bytes",
        "uplink",
        "msgs/t",
        "B/task",
        "jain",
        "lost",
        "unfin",
        "twice",
        "dups",
        "wall s"
    );
    for p in &r.policies {
        let _ = writeln!(
            s,
            "{:<14} {:>9.2} {:>9.2} {:>10.1} {:>7} {:>11} {:>11} {:>8.1} {:>9.0} {:>6.3} {:>5} {:>6} {:>6} {:>6} {:>7.2}",
            p.policy,
            p.mean_completion_s,
            p.p95_completion_s,
            p.makespan_s,
            p.deadline_misses,
            human_bytes(p.bytes_moved),
            human_bytes(p.uplink_bytes),
            p.control_msgs_per_task,
            p.control_bytes_per_task,
            p.jain_fairness,
            p.lost,
            p.unfinished,
            p.committed_twice,
            p.duplicate_executions,
            p.wall_s
        );
    }
    let lb = &r.lower_bound;
    let _ = writeln!(
        s,
        "{:<14} {:>9.2} {:>9.2} {:>10.1} {:>7} {:>11}",
        "lower bound",
        lb.mean_completion_s,
        lb.p95_completion_s,
        lb.makespan_s,
        "",
        human_bytes(lb.bytes_moved)
    );
    let _ = writeln!(
        s,
        "ratios to the lower bound (mean, p95, makespan, bytes), and bytes against the \
         fewest any placement finishing within the same makespan moves:"
    );
    for p in &r.policies {
        let _ = writeln!(
            s,
            "  {:<14} {:>6.2} {:>6.2} {:>6.2} {:>6.2}   {:>6.2} of {}",
            p.policy,
            p.mean_ratio_to_lb,
            p.p95_ratio_to_lb,
            p.makespan_ratio_to_lb,
            p.bytes_ratio_to_lb,
            p.bytes_ratio_to_bound_at_makespan,
            human_bytes(p.bytes_bound_at_makespan)
        );
    }
    let _ = writeln!(
        s,
        "bytes any placement moves to finish all work within the arrival span: {} (one such placement moves {})",
        human_bytes(lb.bytes_keeping_up),
        lb.bytes_keeping_up_placement
            .map_or_else(|| "?: none found".to_string(), human_bytes)
    );
    let longer: Vec<String> = lb
        .bytes_within_span_multiple
        .iter()
        .map(|b| format!("{}x {}", b.span_multiple, human_bytes(b.bytes)))
        .collect();
    let _ = writeln!(s, "  within longer spans: {}", longer.join(", "));
    s
}

/// Writes `sim.json`, `sim.txt` and the SVG plots into `dir`.
pub fn write_outputs(r: &SimReport, dir: &std::path::Path) -> Result<()> {
    use anyhow::Context as _;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(r).context("encoding the report")?;
    std::fs::write(dir.join("sim.json"), json).context("writing sim.json")?;
    std::fs::write(dir.join("sim.txt"), table(r)).context("writing sim.txt")?;
    for (name, svg) in plot::charts(r) {
        std::fs::write(dir.join(&name), svg).with_context(|| format!("writing {name}"))?;
    }
    Ok(())
}

/// Command-line arguments of `shoal-testnet sim`.
#[derive(clap::Args, Debug, Clone)]
pub struct SimArgs {
    /// Simulated nodes.
    #[arg(long, default_value_t = 200)]
    pub nodes: usize,
    /// Tasks (default: 100 per node).
    #[arg(long)]
    pub tasks: Option<usize>,
    /// Setting: flat LAN, urban sensing cells, industrial IoT premises.
    #[arg(long, value_enum, default_value = "urban")]
    pub topology: TopologyKind,
    /// Seed of everything random (same seed, same run).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Fraction of nodes that crash (and restart 10-60 s later) during the run.
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Offered compute load, as a fraction of the total speed x slots.
    #[arg(long, default_value_t = 0.6)]
    pub load: f64,
    /// Policies to compare, comma-separated (auction, random, round_robin,
    /// least_loaded, power_of_two, data_locality, spillback, skippy, omniscient) or `all`.
    #[arg(long, default_value = "all")]
    pub policies: String,
    /// Print the report as JSON on stdout (the table goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// Write sim.json, sim.txt and SVG plots into this folder.
    #[arg(long)]
    pub out: Option<std::path::PathBuf>,
    /// Policies simulated in parallel (default: the number of cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Weight of non-local bytes in the auction's bid score (default: the
    /// protocol's `OwnerConfig::default().lambda`).
    #[arg(long)]
    pub lambda: Option<f64>,
    /// How often flow rates are brought back to max-min fairness, ms: the
    /// time congestion control takes to settle on a new fair share. In
    /// between, a new flow takes what its path has spare. 0 recomputes at
    /// every flow start and stop (exact, and slow with thousands of
    /// flows over saturated uplinks).
    #[arg(long, default_value_t = DEFAULT_RATE_INTERVAL_MS)]
    pub rate_interval_ms: f64,
    /// Smallest blob, kB: the scale of the Pareto blob sizes (shape 1.5,
    /// at most 64 MB; the mean is about three times this).
    #[arg(long, default_value_t = 250.0)]
    pub blob_kb: f64,
    /// Multiplies every task kind's base compute cost (median train 8 s,
    /// evaluate 3 s, predict 1.5 s, select 15 s on a reference device).
    #[arg(long, default_value_t = 1.0)]
    pub compute_scale: f64,
    /// Multiplies every task kind's compute cost per input MB (train 0.4 s,
    /// evaluate 0.2 s, predict 0.1 s, select 0.6 s on a reference device).
    #[arg(long, default_value_t = 1.0)]
    pub per_mb_scale: f64,
}

/// Runs `shoal-testnet sim`.
pub fn main(args: &SimArgs) -> Result<()> {
    let policies = Policy::parse_list(&args.policies)?;
    let mut cfg = SimConfig {
        nodes: args.nodes,
        tasks: args.tasks.unwrap_or(args.nodes.saturating_mul(100)),
        topology: args.topology,
        seed: args.seed,
        churn: args.churn,
        load: args.load,
        lambda: args.lambda,
        rate_interval_ms: args.rate_interval_ms,
        shape: Shape {
            blob_min_bytes: args.blob_kb * 1_000.0,
            compute_scale: args.compute_scale,
            per_mb_scale: args.per_mb_scale,
        },
        ..SimConfig::default()
    };
    if let Some(t) = args.threads {
        cfg.threads = t.max(1);
    }
    let report = run(&cfg, &policies)?;
    if args.json {
        eprint!("{}", table(&report));
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report));
    }
    if let Some(dir) = &args.out {
        write_outputs(&report, dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(topology: TopologyKind, churn: f64, seed: u64) -> SimConfig {
        SimConfig {
            nodes: 30,
            tasks: 600,
            topology,
            seed,
            churn,
            load: 0.6,
            threads: 2,
            lambda: None,
            rate_interval_ms: DEFAULT_RATE_INTERVAL_MS,
            shape: Shape::default(),
        }
    }

    #[test]
    fn same_seed_same_report() {
        let cfg = small(TopologyKind::Urban, 0.2, 7);
        let ps = [Policy::Auction, Policy::PowerOfTwo, Policy::Random];
        let a = run(&cfg, &ps).unwrap();
        let b = run(&cfg, &ps).unwrap();
        for (x, y) in a.policies.iter().zip(&b.policies) {
            assert_eq!(x.mean_completion_s, y.mean_completion_s, "{}", x.policy);
            assert_eq!(x.bytes_moved, y.bytes_moved, "{}", x.policy);
            assert_eq!(x.events, y.events, "{}", x.policy);
            assert_eq!(x.control_bytes_per_task, y.control_bytes_per_task);
        }
        let c = run(&small(TopologyKind::Urban, 0.2, 8), &ps).unwrap();
        assert_ne!(a.policies[0].events, c.policies[0].events);
    }

    #[test]
    fn churn_loses_no_task_and_commits_none_twice() {
        for topo in [TopologyKind::Lan, TopologyKind::Urban, TopologyKind::Iiot] {
            let r = run(&small(topo, 0.3, 3), &Policy::ALL).unwrap();
            assert_eq!(r.crashed_nodes, 9);
            for p in &r.policies {
                assert_eq!(p.lost, 0, "{} lost tasks on {topo:?}", p.policy);
                assert_eq!(p.committed_twice, 0, "{} on {topo:?}", p.policy);
                assert_eq!(p.committed + p.failed, 600, "{} on {topo:?}", p.policy);
            }
            // Crashes interrupt runs: somebody re-executed something.
            let auction = &r.policies[0];
            assert!(auction.duplicate_executions > 0, "{auction:?}");
        }
    }

    #[test]
    fn a_reservation_that_dies_before_its_task_is_given_to_it_loses_nothing() {
        // On this run a power-of-two worker crashed after asking the owner
        // for its task and before the answer came back: the owner bound
        // the task to a run that would never happen, and nothing noticed.
        let cfg = SimConfig {
            nodes: 50,
            tasks: 5000,
            ..small(TopologyKind::Iiot, 0.3, 1)
        };
        let r = run(&cfg, &[Policy::PowerOfTwo]).unwrap();
        let p = &r.policies[0];
        assert_eq!((p.lost, p.committed_twice), (0, 0), "{p:?}");
        assert_eq!(p.committed + p.failed, 5000);
    }

    #[test]
    fn recomputing_rates_every_few_milliseconds_changes_little() {
        // The default rate interval against a recomputation at every flow
        // start and stop, on the topology with the most contention. A
        // baseline's placements do not depend on timing, so its figures
        // barely move; the auction's bids do, so one run drifts apart
        // (either way) and the comparison is over several seeds.
        let ps = [Policy::Auction, Policy::Random, Policy::DataLocality];
        let rel = |u: f64, v: f64| (u - v).abs() / u.abs().max(1e-9);
        let (mut auction_exact, mut auction_ticked) = (0.0, 0.0);
        for seed in 1..=4 {
            let exact = SimConfig {
                rate_interval_ms: 0.0,
                ..small(TopologyKind::Urban, 0.0, seed)
            };
            let a = run(&exact, &ps).unwrap();
            let b = run(&small(TopologyKind::Urban, 0.0, seed), &ps).unwrap();
            for (x, y) in a.policies.iter().zip(&b.policies) {
                assert_eq!(x.committed, y.committed, "{}", x.policy);
                assert!(rel(x.bytes_moved, y.bytes_moved) < 0.05, "{}", x.policy);
                if x.policy == "auction" {
                    auction_exact += x.mean_completion_s;
                    auction_ticked += y.mean_completion_s;
                } else {
                    assert!(
                        rel(x.mean_completion_s, y.mean_completion_s) < 0.01,
                        "{}: {} s exact, {} s",
                        x.policy,
                        x.mean_completion_s,
                        y.mean_completion_s
                    );
                }
            }
        }
        assert!(
            rel(auction_exact, auction_ticked) < 0.05,
            "auction: {auction_exact} s exact, {auction_ticked} s"
        );
    }

    #[test]
    fn the_workload_shape_is_checked_and_moves_the_data() {
        let bad = SimConfig {
            shape: Shape {
                blob_min_bytes: 10.0,
                ..Shape::default()
            },
            ..small(TopologyKind::Lan, 0.0, 1)
        };
        let e = run(&bad, &[Policy::DataLocality]).unwrap_err().to_string();
        assert!(e.contains("--blob-kb"), "{e}");
        let bad = SimConfig {
            shape: Shape {
                compute_scale: f64::NAN,
                ..Shape::default()
            },
            ..small(TopologyKind::Lan, 0.0, 1)
        };
        let e = run(&bad, &[Policy::DataLocality]).unwrap_err().to_string();
        assert!(e.contains("--compute-scale"), "{e}");
        // Four times larger blobs: data_locality moves about four times
        // the bytes (the inputs it lacks and predict's outputs scale).
        let base = run(&small(TopologyKind::Lan, 0.0, 1), &[Policy::DataLocality]).unwrap();
        let heavy = SimConfig {
            shape: Shape {
                blob_min_bytes: 4.0 * Shape::default().blob_min_bytes,
                ..Shape::default()
            },
            ..small(TopologyKind::Lan, 0.0, 1)
        };
        let h = run(&heavy, &[Policy::DataLocality]).unwrap();
        let ratio = h.policies[0].bytes_moved / base.policies[0].bytes_moved;
        assert!((2.5..5.0).contains(&ratio), "{ratio}");
        assert_eq!(h.shape, heavy.shape);
    }

    #[test]
    fn spillback_leaves_the_data_only_when_its_holder_is_busy() {
        let ps = [Policy::DataLocality, Policy::Spillback];
        let brief = |p: &PolicyReport| (p.policy.clone(), p.mean_completion_s, p.bytes_moved);
        let quiet = SimConfig {
            load: 0.02,
            ..small(TopologyKind::Lan, 0.0, 2)
        };
        let q = run(&quiet, &ps).unwrap();
        let r = run(&small(TopologyKind::Lan, 0.0, 2), &ps).unwrap();
        let (q_dl, q_sb) = (&q.policies[0], &q.policies[1]);
        let (dl, sb) = (&r.policies[0], &r.policies[1]);
        // Nearly idle, the holders are mostly free: it moves little more
        // than data_locality; busy, it spills far more.
        let quiet_extra = q_sb.bytes_moved / q_dl.bytes_moved;
        let busy_extra = sb.bytes_moved / dl.bytes_moved;
        assert!(
            quiet_extra < busy_extra && busy_extra > 1.5,
            "{:?} {:?} {:?} {:?}",
            brief(q_dl),
            brief(q_sb),
            brief(dl),
            brief(sb)
        );
        // And so stops the queues at the data from growing without bound.
        assert!(
            sb.mean_completion_s * 5.0 < dl.mean_completion_s,
            "{:?} {:?}",
            brief(dl),
            brief(sb)
        );
        assert_eq!((sb.committed, sb.lost), (600, 0));
    }

    #[test]
    fn policy_lists_parse() {
        assert_eq!(Policy::parse_list("all").unwrap().len(), 9);
        assert_eq!(
            Policy::parse_list("auction, data_locality").unwrap(),
            vec![Policy::Auction, Policy::DataLocality]
        );
        assert!(Policy::parse_list("fastest").is_err());
        assert!(Policy::parse_list("").is_err());
        let bad = SimConfig {
            churn: 1.5,
            ..small(TopologyKind::Lan, 0.0, 1)
        };
        assert!(run(&bad, &[Policy::Auction]).is_err());
        let bad = SimConfig {
            rate_interval_ms: -1.0,
            ..small(TopologyKind::Lan, 0.0, 1)
        };
        assert!(run(&bad, &[Policy::Auction]).is_err());
    }

    #[test]
    fn reports_have_lower_bounds_below_every_policy() {
        let r = run(&small(TopologyKind::Iiot, 0.0, 5), &Policy::ALL).unwrap();
        for p in &r.policies {
            assert!(
                p.mean_completion_s >= r.lower_bound.mean_completion_s,
                "{p:?}"
            );
            assert!(p.bytes_moved + 1.0 >= r.lower_bound.bytes_moved, "{p:?}");
            // The capacity-aware bound holds for the policy's own makespan.
            assert!(
                p.bytes_moved * (1.0 + 1e-9) + 1.0 >= p.bytes_bound_at_makespan,
                "{p:?}"
            );
            assert!(
                p.makespan_s + 1e-6 >= r.lower_bound.makespan_s * 0.999,
                "{p:?}"
            );
        }
        // More time, fewer bytes needed, never below the plain bound.
        let lb = &r.lower_bound;
        let mut prev = lb.bytes_keeping_up;
        for b in &lb.bytes_within_span_multiple {
            assert!(b.bytes <= prev * (1.0 + 1e-9) + 1.0, "{lb:?}");
            assert!(b.bytes + 1.0 >= lb.bytes_moved, "{lb:?}");
            prev = b.bytes;
        }
        let svgs = plot::charts(&r);
        assert_eq!(svgs.len(), 3);
        assert!(svgs.iter().all(|(_, s)| s.starts_with("<svg")));
    }
}
