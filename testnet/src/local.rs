//! A testnet of `shoal-node` processes on loopback: start them, wire them
//! together, poll them, let a [`Scenario`](crate::scenario::Scenario) break
//! things, and stop everything at the end.
//!
//! Every node gets fixed loopback ports picked at start, so a node restarted
//! by a scenario comes back at the address its peers already know.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::data;
use crate::live::{Live, LiveMode};
use crate::node::{log_tail, NodeProcess, NodeSpec};
use crate::report::{self, Report};
use crate::scenario::{self, ScenarioKind};
use crate::status::Status;
use crate::util::{unix_now, PortPicker, SmallRng};

/// How long a node may take to answer its first `/v1/status`.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Time between two polls of every node.
const POLL_EVERY: Duration = Duration::from_secs(1);
/// Points kept per node for the plots; older points are thinned out.
const MAX_POINTS: usize = 2000;

/// What `shoal-testnet up` was asked to do.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    pub nodes: usize,
    pub scenario: ScenarioKind,
    pub duration_s: f64,
    pub out: PathBuf,
    pub bin: PathBuf,
    pub data: Option<String>,
    pub model: Option<String>,
    /// Samples per second per node.
    pub rate: f64,
    /// Seed of the scenario's random choices (churn victims).
    pub seed: u64,
    /// Seconds between two kills in `churn`.
    pub churn_every_s: f64,
    /// `report.json` of a run without attackers, for `byzantine`.
    pub baseline: Option<PathBuf>,
    #[serde(skip)]
    pub live: LiveMode,
}

/// The run state of a node as the testnet sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Started, not answering yet.
    Starting,
    Up,
    /// Running but its API did not answer the last poll.
    Unreachable,
    /// Stopped on purpose by the scenario.
    Down,
    /// Exited without being asked to.
    Crashed,
}

impl NodeState {
    pub fn label(self) -> &'static str {
        match self {
            NodeState::Starting => "starting",
            NodeState::Up => "up",
            NodeState::Unreachable => "no reply",
            NodeState::Down => "down",
            NodeState::Crashed => "crashed",
        }
    }
}

/// One point of a node's time series.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Point {
    pub t: f64,
    pub samples_seen: u64,
    pub accuracy: Option<f64>,
    pub model_version: u64,
    pub peers: u64,
    pub merges: u64,
    /// First point after the node was (re)started by the scenario: the
    /// plots break the line here instead of joining across the downtime.
    pub restarted: bool,
}

/// A node of the testnet and everything observed about it.
pub struct Member {
    pub spec: NodeSpec,
    pub process: Option<NodeProcess>,
    pub state: NodeState,
    /// The identity seen at the first successful poll.
    pub peer_id: Option<String>,
    pub last: Option<Status>,
    /// Samples per second over the last poll interval.
    pub rate: f64,
    pub restarts: u32,
    pub crashes: u32,
    pub series: Vec<Point>,
    /// Keep one point in `stride` (doubles whenever `series` fills up).
    stride: usize,
    polls: usize,
    last_poll: Option<(f64, u64)>,
    /// Set by a restart, cleared by the next recorded point.
    gap: bool,
}

impl Member {
    fn new(spec: NodeSpec) -> Self {
        Member {
            spec,
            process: None,
            state: NodeState::Down,
            peer_id: None,
            last: None,
            rate: 0.0,
            restarts: 0,
            crashes: 0,
            series: Vec::new(),
            stride: 1,
            polls: 0,
            last_poll: None,
            gap: false,
        }
    }

    fn record(&mut self, t: f64, s: &Status) {
        self.rate = match self.last_poll {
            Some((t0, n0)) if t > t0 && s.samples_seen >= n0 => {
                (s.samples_seen - n0) as f64 / (t - t0)
            }
            _ => 0.0,
        };
        self.last_poll = Some((t, s.samples_seen));
        self.polls += 1;
        if !self.gap && !self.polls.is_multiple_of(self.stride) {
            return;
        }
        self.series.push(Point {
            t,
            samples_seen: s.samples_seen,
            accuracy: s.accuracy,
            model_version: s.model_version,
            peers: s.peers,
            merges: s.merges,
            restarted: std::mem::take(&mut self.gap),
        });
        if self.series.len() >= MAX_POINTS {
            // Keep every other point: the plots stay the same shape, memory
            // stays bounded however long the run.
            let kept: Vec<Point> = self.series.iter().step_by(2).copied().collect();
            self.series = kept;
            self.stride *= 2;
        }
    }
}

/// Something that happened, for the live view and the report.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub t: f64,
    pub node: Option<usize>,
    pub text: String,
}

/// A running loopback testnet.
pub struct Testnet {
    pub opts: Options,
    pub members: Vec<Member>,
    pub events: Vec<Event>,
    pub started: Instant,
    pub started_unix: f64,
    pub rng: SmallRng,
    pub sources_description: String,
    /// First time every node saw all the others.
    pub full_mesh_at: Option<f64>,
    stop: Arc<AtomicBool>,
}

impl Testnet {
    /// Seconds since the testnet started.
    pub fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// True once SIGINT/SIGTERM asked everything to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Log an event (kept bounded: the report needs the story, not a flood).
    pub fn event(&mut self, node: Option<usize>, text: impl Into<String>) {
        if self.events.len() < 10_000 {
            let t = self.now();
            self.events.push(Event {
                t,
                node,
                text: text.into(),
            });
        }
    }

    /// `libp2p` address of node `i`, once its peer id is known.
    pub fn dial_addr(&self, i: usize) -> Option<String> {
        let m = self.members.get(i)?;
        m.peer_id.as_ref().map(|id| m.spec.dial_addr(id))
    }

    /// Start node `i` from its spec (used for the first start and restarts).
    pub fn start_node(&mut self, i: usize) -> Result<()> {
        let spec = self.members[i].spec.clone();
        let process = NodeProcess::spawn(&spec)?;
        let pid = process.pid();
        let m = &mut self.members[i];
        m.process = Some(process);
        m.state = NodeState::Starting;
        m.last = None;
        m.last_poll = None;
        m.rate = 0.0;
        m.gap = !m.series.is_empty();
        let name = spec.name.clone();
        self.event(Some(i), format!("started {name} (pid {pid})"));
        Ok(())
    }

    /// Wait until node `i` answers `/v1/status`.
    pub fn wait_ready(&mut self, i: usize) -> Result<Status> {
        let stop = self.stop.clone();
        let m = &mut self.members[i];
        let Some(p) = m.process.as_mut() else {
            bail!("{} is not running", m.spec.name);
        };
        let s = p.wait_ready(START_TIMEOUT, &|| stop.load(Ordering::SeqCst))?;
        if m.peer_id.is_none() {
            m.peer_id = Some(s.peer_id.clone());
        }
        m.state = NodeState::Up;
        Ok(s)
    }

    /// `kill -9` node `i`; the scenario decides when to bring it back.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            let pid = p.pid();
            p.kill_hard();
            let name = self.members[i].spec.name.clone();
            self.event(Some(i), format!("kill -9 {name} (pid {pid})"));
        }
        self.members[i].state = NodeState::Down;
    }

    /// Stop node `i` gently (SIGTERM, then SIGKILL after 5 s).
    pub fn stop_node(&mut self, i: usize) {
        if let Some(mut p) = self.members[i].process.take() {
            p.stop(Duration::from_secs(5));
        }
        self.members[i].state = NodeState::Down;
    }

    /// Poll every running node once, in parallel, and update what we know.
    pub fn poll(&mut self) {
        let t = self.now();
        let results: Vec<Option<Result<Status>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .members
                .iter()
                .map(|m| {
                    m.process.as_ref().map(|p| {
                        let api = p.api().clone();
                        scope.spawn(move || {
                            api.get_json("/v1/status")
                                .and_then(|v| Status::from_json(&v))
                        })
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.map(|h| {
                        h.join()
                            .unwrap_or_else(|_| Err(anyhow::anyhow!("poll thread panicked")))
                    })
                })
                .collect()
        });

        for (i, result) in results.into_iter().enumerate() {
            let Some(result) = result else { continue };
            let running = self.members[i]
                .process
                .as_mut()
                .is_some_and(NodeProcess::is_running);
            if !running && self.stopping() {
                // Ctrl-C reaches the nodes too (same process group): an exit
                // now is the stop we asked for, not a crash.
                self.members[i].process = None;
                self.members[i].state = NodeState::Down;
                continue;
            }
            if !running {
                let m = &mut self.members[i];
                m.process = None;
                m.state = NodeState::Crashed;
                m.crashes += 1;
                let tail = log_tail(&m.spec.log_path, 5);
                let name = m.spec.name.clone();
                self.event(
                    Some(i),
                    format!("{name} exited on its own; last log lines:\n{tail}"),
                );
                continue;
            }
            match result {
                Ok(s) => {
                    let m = &mut self.members[i];
                    if m.peer_id.is_none() {
                        m.peer_id = Some(s.peer_id.clone());
                    }
                    m.state = NodeState::Up;
                    m.record(t, &s);
                    m.last = Some(s);
                }
                Err(_) => {
                    let m = &mut self.members[i];
                    if m.state == NodeState::Up {
                        m.state = NodeState::Unreachable;
                    }
                }
            }
        }

        let n = self.members.len() as u64;
        if self.full_mesh_at.is_none()
            && self.members.iter().all(|m| {
                m.state == NodeState::Up && m.last.as_ref().is_some_and(|s| s.peers + 1 >= n)
            })
        {
            self.full_mesh_at = Some(t);
            self.event(
                None,
                format!("full mesh: every node sees the {} others", n - 1),
            );
        }
    }

    /// Stop every node: SIGTERM to all at once, then SIGKILL stragglers.
    pub fn shutdown(&mut self) {
        for m in &mut self.members {
            if let Some(p) = m.process.as_mut() {
                p.request_stop();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(8);
        for m in &mut self.members {
            if let Some(mut p) = m.process.take() {
                let left = deadline.saturating_duration_since(Instant::now());
                p.stop(left);
            }
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Run a whole testnet: start, drive the scenario, stop, report.
pub fn run(opts: Options, stop: Arc<AtomicBool>) -> Result<Report> {
    if opts.nodes < 1 || opts.nodes > 64 {
        bail!("--nodes must be between 1 and 64 (got {})", opts.nodes);
    }
    if !opts.bin.is_file() {
        bail!(
            "node binary {} not found: build it first with `cargo build --release -p shoal-node` (or pass --bin PATH)",
            opts.bin.display()
        );
    }
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("creating output folder {}", opts.out.display()))?;
    let out = opts
        .out
        .canonicalize()
        .with_context(|| format!("resolving {}", opts.out.display()))?;

    // A fixed-rate run cannot use more rows than this; no need to copy more.
    let rows_per_node =
        (opts.rate > 0.0).then(|| (opts.rate * (opts.duration_s + 60.0) * 1.5) as u64 + 1000);
    let sources = data::plan(opts.data.as_deref(), opts.nodes, &out, rows_per_node)?;

    let mut ports = PortPicker::default();
    let mut members = Vec::with_capacity(opts.nodes);
    for (i, source) in sources.per_node.iter().enumerate() {
        let dir = out.join(format!("node{i}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut spec = NodeSpec::loopback(
            &format!("node{i}"),
            &opts.bin,
            &dir,
            ports.pick()?,
            ports.pick()?,
        );
        spec.source = Some(source.clone());
        spec.model = opts.model.clone();
        spec.rate = Some(opts.rate);
        members.push(Member::new(spec));
    }

    let mut opts = opts;
    opts.out = out.clone();
    let mut net = Testnet {
        rng: SmallRng::new(opts.seed),
        opts,
        members,
        events: Vec::new(),
        started: Instant::now(),
        started_unix: unix_now(),
        sources_description: sources.description,
        full_mesh_at: None,
        stop,
    };
    let mut scenario = scenario::build(net.opts.scenario, &mut net)?;
    let mut live = Live::new(net.opts.live);

    bring_up(&mut net, &mut live)?;
    net.event(
        None,
        format!("all {} nodes answer their API", net.members.len()),
    );

    let end = net.opts.duration_s;
    let mut next_poll = Instant::now();
    loop {
        if net.stopping() {
            net.event(None, "interrupted: stopping every node");
            break;
        }
        if Instant::now() >= next_poll {
            next_poll += POLL_EVERY;
            net.poll();
            let t = net.now();
            if t >= end {
                break;
            }
            scenario.tick(&mut net, t)?;
            live.render(&net, scenario.as_ref());
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    let interrupted = net.stopping();
    live.finish(&net, scenario.as_ref());
    let result = scenario.finish(&net);
    let report = report::build(&net, result, &out, interrupted);
    net.shutdown();
    report::write(&report, &net, &out)?;
    Ok(report)
}

/// Start node 0, learn its peer id, then start the rest bootstrapping to it
/// (and to node 1, so the mesh does not hang on a single node).
fn bring_up(net: &mut Testnet, live: &mut Live) -> Result<()> {
    let n = net.members.len();
    net.start_node(0)?;
    live.note(&format!(
        "starting node0 ({})",
        net.members[0].spec.api_base()
    ));
    net.wait_ready(0)?;
    let first = net.dial_addr(0).context("node0 has no peer id")?;
    if n > 1 {
        live.note("starting node1 bootstrapping to node0");
        net.members[1].spec.bootstrap = vec![first.clone()];
        net.start_node(1)?;
        net.wait_ready(1)?;
    }
    let second = if n > 1 { net.dial_addr(1) } else { None };
    let mut both = vec![first.clone()];
    both.extend(second.clone());
    for i in 2..n {
        net.members[i].spec.bootstrap = both.clone();
        net.start_node(i)?;
    }
    if n > 2 {
        live.note(&format!(
            "starting node2..node{} bootstrapping to node0 and node1",
            n - 1
        ));
    }
    for i in 2..n {
        net.wait_ready(i)?;
    }
    // From now on a restarted node 0 must find the mesh too.
    if let Some(second) = second {
        net.members[0].spec.bootstrap = vec![second];
    }
    if n > 2 {
        if let Some(third) = net.dial_addr(2) {
            net.members[1].spec.bootstrap = vec![first, third];
        }
    }
    Ok(())
}

/// Name of the default output folder.
pub fn default_out(now_unix: f64) -> PathBuf {
    Path::new("out").join(format!("testnet-{}", crate::util::stamp_for_path(now_unix)))
}
