//! Fault scenarios: what a run does to the mesh, what it expects, and what
//! it measured.
//!
//! * `demo`: nothing breaks; shows the mesh forming and learning.
//! * `churn`: every ~20 s (`--churn-every`) a random node is killed with
//!   `kill -9` and restarted 2 s later on the same data dir. Expected: same
//!   peer id, model version never going backwards, back in the mesh, no
//!   acknowledged sample and no accepted task lost. One node (the
//!   *witness*) has no stream of its own: the testnet feeds it through
//!   `POST /v1/learn` and counts what the node acknowledged, so that after
//!   each of its restarts `samples_seen` must equal the acknowledged count
//!   exactly (less is a lost sample, more a duplicate). Every third kill
//!   hits the witness. Evaluate tasks are submitted to the other nodes
//!   while they churn and looked up in their owners' ledgers at the end.
//! * `partition`: a minority of nodes is moved to a different pre-shared
//!   network key (pnet) for the middle third of the run, then moved back.
//!   On loopback there is no link to cut, so the cut is emulated by
//!   restarting the minority with another key: nodes holding different
//!   keys cannot complete a handshake, which is exactly a partition for
//!   libp2p. The compose smoke test cuts real links with
//!   `docker network disconnect`.
//! * `byzantine`: the last 2n/5 nodes run with the hidden
//!   `shoal-node --byzantine flip_labels|scale|nan` flag and publish
//!   poisoned models. Expected: honest nodes refuse them, the attackers'
//!   scores in the honest nodes' `GET /v1/peers` go negative (and they get
//!   banned), and the honest nodes' accuracy stays close to a run without
//!   attackers (`--baseline` takes that run's `report.json`).
//!
//! Scenarios only measure what the nodes report. Tasks are only counted
//! when the nodes' API has the market (`lost.tasks_measured`).

use anyhow::{Context, Result};
use serde::Serialize;

use crate::local::{NodeState, Testnet};
use crate::status::Status;
use crate::util::unix_now;

/// The scenarios `up --scenario` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum ScenarioKind {
    Demo,
    Churn,
    Partition,
    Byzantine,
}

impl ScenarioKind {
    /// The name as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ScenarioKind::Demo => "demo",
            ScenarioKind::Churn => "churn",
            ScenarioKind::Partition => "partition",
            ScenarioKind::Byzantine => "byzantine",
        }
    }
}

/// One named expectation and whether the run met it.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// Work lost or redone, as far as the nodes let us see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Lost {
    /// Samples a node had counted before a kill and no longer counted when
    /// it came back (its model rolled back to the last snapshot). The node
    /// re-reads them from its source, so this is redone work, not lost data.
    pub samples_rolled_back: u64,
    /// Restarts after which the model version was older than before.
    pub model_version_regressions: u32,
    /// Restarts after which the node had a different peer id.
    pub identity_changes: u32,
    /// Restarted nodes that never answered again.
    pub nodes_not_back: u32,
    /// Nodes that exited without being asked to.
    pub crashes: u32,
    /// Polls at which a node showed a lower model version than it had
    /// shown before (restarts included).
    pub model_version_drops: u32,
    /// Samples the churn witness acknowledged (`POST /v1/learn` → 200).
    pub acked_samples: u64,
    /// Acknowledged samples missing from the witness after a restart or at
    /// the end.
    pub acked_samples_lost: u64,
    /// Samples the witness counted beyond what it acknowledged.
    pub acked_samples_duplicated: u64,
    /// Accepted tasks (201) whose owner no longer had them at the end.
    pub tasks_lost: u64,
    /// Tasks accepted by the nodes during the run.
    pub tasks_submitted: u64,
    pub tasks_committed: u64,
    pub tasks_failed: u64,
    /// Still pending or running at the end of the run.
    pub tasks_open: u64,
    /// False when no task could be submitted (a build without the market).
    pub tasks_measured: bool,
}

/// One kill (or stop) and restart of a node, as observed.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub node: String,
    pub how: String,
    pub stopped_at_s: f64,
    pub restarted_at_s: f64,
    /// Seconds from restart to the first `/v1/status` answer.
    pub answered_after_s: Option<f64>,
    /// Seconds from restart until it had a peer again.
    pub rejoined_after_s: Option<f64>,
    pub peer_id_before: Option<String>,
    pub peer_id_after: Option<String>,
    pub model_version_before: Option<u64>,
    pub model_version_after: Option<u64>,
    pub samples_before: Option<u64>,
    pub samples_after: Option<u64>,
}

impl Restart {
    fn same_identity(&self) -> Option<bool> {
        Some(self.peer_id_before.as_ref()? == self.peer_id_after.as_ref()?)
    }

    fn version_kept(&self) -> Option<bool> {
        Some(self.model_version_after? >= self.model_version_before?)
    }

    fn rolled_back(&self) -> u64 {
        match (self.samples_before, self.samples_after) {
            (Some(b), Some(a)) => b.saturating_sub(a),
            _ => 0,
        }
    }
}

/// What a scenario expected and what it measured.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub scenario: ScenarioKind,
    pub expected: Vec<String>,
    pub measured: Vec<String>,
    pub checks: Vec<Check>,
    pub lost: Lost,
    pub restarts: Vec<Restart>,
}

/// A scenario drives a running [`Testnet`] once per poll.
pub trait Scenario {
    fn kind(&self) -> ScenarioKind;
    /// What a healthy mesh should show.
    fn expected(&self, net: &Testnet) -> Vec<String>;
    /// Called after every poll with the seconds since start.
    fn tick(&mut self, net: &mut Testnet, t: f64) -> Result<()>;
    /// One line for the live view: what the scenario is doing now.
    fn status_line(&self, net: &Testnet) -> String;
    /// Measurements and checks at the end of the run.
    fn finish(&mut self, net: &Testnet) -> Outcome;
}

/// Build the scenario and let it adjust the node specs before start.
pub fn build(kind: ScenarioKind, net: &mut Testnet) -> Result<Box<dyn Scenario>> {
    Ok(match kind {
        ScenarioKind::Demo => Box::new(Demo),
        ScenarioKind::Churn => Box::new(Churn::new(net)),
        ScenarioKind::Partition => Box::new(Partition::new(net)?),
        ScenarioKind::Byzantine => Box::new(Byzantine::new(net)?),
    })
}

/// Checks every scenario shares, judged on the final poll.
fn common(net: &Testnet, out: &mut Outcome) {
    common_except(net, out, &[]);
}

/// [`common`], with the nodes in `attackers` left out of the merge check:
/// an attacker refusing the honest models is the defence working on its
/// side, not a failure of the mesh.
fn common_except(net: &Testnet, out: &mut Outcome, attackers: &[usize]) {
    let n = net.members.len();
    let up = net
        .members
        .iter()
        .filter(|m| m.state == NodeState::Up)
        .count();
    out.checks.push(Check {
        what: "every node answers its API at the end".into(),
        ok: up == n,
        detail: format!("{up} of {n} up"),
    });
    let learned = net
        .members
        .iter()
        .filter(|m| m.last.as_ref().is_some_and(|s| s.samples_seen > 0))
        .count();
    out.checks.push(Check {
        what: "every node learned from its stream".into(),
        ok: learned == n,
        detail: format!("{learned} of {n} have samples_seen > 0"),
    });
    if n > 1 {
        out.checks.push(Check {
            what: format!("full mesh: every node saw the {} others", n - 1),
            ok: net.full_mesh_at.is_some(),
            detail: net
                .full_mesh_at
                .map(|t| format!("first reached {t:.1} s after start"))
                .unwrap_or_else(|| "never reached".into()),
        });
    }
    let crashes: u32 = net.members.iter().map(|m| m.crashes).sum();
    out.lost.crashes = crashes;
    out.checks.push(Check {
        what: "no node exited on its own".into(),
        ok: crashes == 0,
        detail: format!("{crashes} unexpected exits"),
    });
    if let Some(t) = net.full_mesh_at {
        out.measured
            .push(format!("full mesh reached {t:.1} s after start"));
    }
    let merges: u64 = net
        .members
        .iter()
        .filter_map(|m| m.last.as_ref().map(|s| s.merges))
        .sum();
    let merged = net
        .members
        .iter()
        .filter(|m| m.last.as_ref().is_some_and(|s| s.merges > 0))
        .count();
    out.measured.push(format!(
        "{merges} model merges in total; {merged} of {n} nodes merged at least one peer's model"
    ));
    let honest = n - attackers.len();
    if honest > 1 {
        let honest_merged = net
            .members
            .iter()
            .enumerate()
            .filter(|(i, m)| {
                !attackers.contains(i) && m.last.as_ref().is_some_and(|s| s.merges > 0)
            })
            .count();
        let who = if attackers.is_empty() {
            "node"
        } else {
            "honest node"
        };
        out.checks.push(Check {
            what: format!("every {who} merged a peer's model at least once"),
            ok: honest_merged == honest,
            detail: format!("{honest_merged} of {honest} nodes, {merges} merges in total"),
        });
    }
}

fn outcome(kind: ScenarioKind, expected: Vec<String>) -> Outcome {
    Outcome {
        scenario: kind,
        expected,
        measured: Vec::new(),
        checks: Vec::new(),
        lost: Lost::default(),
        restarts: Vec::new(),
    }
}

fn fill_restart_losses(out: &mut Outcome) {
    for r in &out.restarts {
        out.lost.samples_rolled_back += r.rolled_back();
        if r.version_kept() == Some(false) {
            out.lost.model_version_regressions += 1;
        }
        if r.same_identity() == Some(false) {
            out.lost.identity_changes += 1;
        }
        if r.answered_after_s.is_none() {
            out.lost.nodes_not_back += 1;
        }
    }
}

// ---------------------------------------------------------------- demo

struct Demo;

impl Scenario for Demo {
    fn kind(&self) -> ScenarioKind {
        ScenarioKind::Demo
    }

    fn expected(&self, net: &Testnet) -> Vec<String> {
        let n = net.members.len();
        vec![
            format!(
                "every node finds the {} others through the two bootstrap nodes",
                n.saturating_sub(1)
            ),
            "every node learns from its own stream (samples_seen grows, accuracy above chance)"
                .into(),
            "every node merges its peers' models (federation), so the summary shows merges > 0"
                .into(),
        ]
    }

    fn tick(&mut self, _net: &mut Testnet, _t: f64) -> Result<()> {
        Ok(())
    }

    fn status_line(&self, net: &Testnet) -> String {
        match net.full_mesh_at {
            Some(t) => format!("demo: full mesh since {t:.0}s; watching the nodes learn"),
            None => "demo: waiting for every node to see all the others".into(),
        }
    }

    fn finish(&mut self, net: &Testnet) -> Outcome {
        let mut out = outcome(self.kind(), self.expected(net));
        common(net, &mut out);
        out
    }
}

// ---------------------------------------------------------------- churn

enum ChurnPhase {
    Idle,
    Down { victim: usize, since: f64 },
    Back { victim: usize, since: f64 },
}

struct Churn {
    every: f64,
    next_kill: f64,
    phase: ChurnPhase,
    restarts: Vec<Restart>,
    kills: u32,
    witness: Option<Witness>,
    tasks: TaskProbe,
    /// Highest model version each node has shown.
    max_version: Vec<u64>,
    version_drops: u32,
}

/// Samples per `POST /v1/learn` to the witness, one batch per poll.
const WITNESS_BATCH: usize = 20;
/// Seconds a restarted witness has to count every acknowledged sample.
const WITNESS_WITHIN: f64 = 30.0;
/// Seconds between two task submissions.
const TASK_EVERY: f64 = 5.0;

/// The churn node fed only through `POST /v1/learn`, with the count of what
/// it acknowledged.
struct Witness {
    node: usize,
    acked: u64,
    rejected: u64,
    rng: crate::util::SmallRng,
    /// After a restart: the acknowledged count to find again, and since when.
    /// No batch is sent meanwhile, so new samples cannot mask a loss.
    checking: Option<(u64, f64)>,
    lost: u64,
    duplicated: u64,
    restarts_checked: u32,
    log: Vec<String>,
}

impl Witness {
    /// SEA concept 0 (Street & Kim 2001): three features in [0, 10), the
    /// class says whether the first two sum to at most 8.
    fn batch(&mut self) -> serde_json::Value {
        let mut samples = Vec::with_capacity(WITNESS_BATCH);
        for _ in 0..WITNESS_BATCH {
            let x: Vec<f64> = (0..3)
                .map(|_| (self.rng.next_u64() % 10_000) as f64 / 1000.0)
                .collect();
            let y = if x[0] + x[1] <= 8.0 { "1" } else { "0" };
            samples.push(serde_json::json!({ "x": x, "y": y }));
        }
        serde_json::json!({ "samples": samples })
    }

    fn tick(&mut self, net: &mut Testnet, t: f64) {
        let m = &net.members[self.node];
        if m.state != NodeState::Up {
            return;
        }
        if let Some((want, since)) = self.checking {
            let Some(seen) = m.last.as_ref().map(|s| s.samples_seen) else {
                return;
            };
            if seen < want && t - since < WITNESS_WITHIN {
                return;
            }
            self.checking = None;
            self.restarts_checked += 1;
            self.lost += want.saturating_sub(seen);
            self.duplicated += seen.saturating_sub(want);
            let text = format!(
                "witness {} after restart: {seen} samples counted, {want} acknowledged before the kill{}",
                m.spec.name,
                if seen == want { " (none lost)" } else { " (MISMATCH)" }
            );
            self.log.push(text.clone());
            net.event(Some(self.node), text);
            return;
        }
        let Some(p) = m.process.as_ref() else {
            return;
        };
        let body = self.batch();
        match p.api().post_json("/v1/learn", &body) {
            Ok(r) if r.is_success() => {
                let n = r
                    .json()
                    .ok()
                    .and_then(|v| v.get("accepted").and_then(|a| a.as_u64()))
                    .unwrap_or(0);
                self.acked += n;
            }
            // Not acknowledged: the node owes nothing for these.
            _ => self.rejected += 1,
        }
    }

    /// The final count must equal everything acknowledged.
    fn finish(&mut self, net: &Testnet) -> Option<u64> {
        let seen = net.members[self.node].last.as_ref()?.samples_seen;
        if self.checking.is_none() {
            self.lost += self.acked.saturating_sub(seen);
            self.duplicated += seen.saturating_sub(self.acked);
        }
        Some(seen)
    }
}

/// Tasks submitted during the run, looked up in their owners' ledgers at the
/// end.
#[derive(Default)]
struct TaskProbe {
    next_at: f64,
    /// (owner node, task id)
    accepted: Vec<(usize, String)>,
    /// The market answered 501: not in this build.
    unsupported: bool,
    refused: u64,
}

impl TaskProbe {
    fn tick(&mut self, net: &mut Testnet, t: f64, skip: Option<usize>) {
        if self.unsupported || t < self.next_at || t > net.opts.duration_s - QUIET_END * 2.0 {
            return;
        }
        self.next_at = t + TASK_EVERY;
        // Owners with a snapshot (their recent samples are blobs by then).
        let ready: Vec<usize> = (0..net.members.len())
            .filter(|&i| Some(i) != skip && net.members[i].state == NodeState::Up)
            .filter(|&i| {
                net.members[i]
                    .last
                    .as_ref()
                    .is_some_and(|s| s.model_version >= 1)
            })
            .collect();
        if ready.is_empty() {
            return;
        }
        let owner = ready[net.rng.below(ready.len())];
        let Some(p) = net.members[owner].process.as_ref() else {
            return;
        };
        let task = serde_json::json!({
            "kind": "evaluate", "recent": 500, "model": "nb", "deadline_s": 120
        });
        match p.api().post_json("/v1/tasks", &task) {
            Ok(r) if r.is_success() => {
                let id = r.json().ok().and_then(|v| {
                    v.pointer("/tasks/0/id")
                        .and_then(|i| i.as_str())
                        .map(str::to_string)
                });
                if let Some(id) = id {
                    self.accepted.push((owner, id));
                }
            }
            Ok(r) if r.status == 501 || r.status == 404 || r.status == 405 => {
                self.unsupported = true;
            }
            _ => self.refused += 1,
        }
    }

    fn finish(&self, net: &Testnet, lost: &mut Lost) -> Vec<String> {
        let mut notes = Vec::new();
        if self.unsupported || self.accepted.is_empty() {
            lost.tasks_measured = false;
            notes.push(if self.unsupported {
                "tasks: the nodes have no task market (HTTP 501); none submitted".into()
            } else {
                format!(
                    "tasks: none accepted ({} submissions refused)",
                    self.refused
                )
            });
            return notes;
        }
        lost.tasks_measured = true;
        lost.tasks_submitted = self.accepted.len() as u64;
        let mut unknown = 0u64;
        for (owner, id) in &self.accepted {
            let Some(p) = net.members[*owner].process.as_ref() else {
                unknown += 1;
                continue;
            };
            match p.api().get(&format!("/v1/tasks/{id}")) {
                Ok(r) if r.status == 404 => {
                    lost.tasks_lost += 1;
                    notes.push(format!(
                        "task {id} accepted by {} is gone from its ledger",
                        net.members[*owner].spec.name
                    ));
                }
                Ok(r) if r.is_success() => {
                    let state = r
                        .json()
                        .ok()
                        .and_then(|v| v.get("state").and_then(|s| s.as_str()).map(str::to_string))
                        .unwrap_or_default();
                    match state.as_str() {
                        "committed" => lost.tasks_committed += 1,
                        "failed" => lost.tasks_failed += 1,
                        _ => lost.tasks_open += 1,
                    }
                }
                _ => unknown += 1,
            }
        }
        notes.push(format!(
            "tasks: {} accepted while nodes churned ({} refused); at the end {} committed, {} failed, {} still open, {} lost{}",
            lost.tasks_submitted,
            self.refused,
            lost.tasks_committed,
            lost.tasks_failed,
            lost.tasks_open,
            lost.tasks_lost,
            if unknown > 0 {
                format!(", {unknown} owners did not answer")
            } else {
                String::new()
            }
        ));
        notes
    }
}

/// Seconds a killed node stays down.
const DOWN_FOR: f64 = 2.0;
/// Seconds a restarted node has to answer and find a peer.
const BACK_WITHIN: f64 = 60.0;
/// No kill this close to the end: the comeback must be observable.
const QUIET_END: f64 = 15.0;

impl Churn {
    /// The last node becomes the witness (no stream of its own) when there
    /// are at least two.
    fn new(net: &mut Testnet) -> Self {
        let every = net.opts.churn_every_s.max(5.0);
        let n = net.members.len();
        let witness = (n >= 2).then(|| {
            let node = n - 1;
            net.members[node].spec.source = None;
            Witness {
                node,
                acked: 0,
                rejected: 0,
                rng: crate::util::SmallRng::new(net.opts.seed ^ 0x5EA),
                checking: None,
                lost: 0,
                duplicated: 0,
                restarts_checked: 0,
                log: Vec::new(),
            }
        });
        Churn {
            every,
            next_kill: every,
            phase: ChurnPhase::Idle,
            restarts: Vec::new(),
            kills: 0,
            witness,
            tasks: TaskProbe::default(),
            max_version: vec![0; n],
            version_drops: 0,
        }
    }

    /// Model versions must never go backwards, across restarts too.
    fn watch_versions(&mut self, net: &mut Testnet) {
        for i in 0..net.members.len() {
            let Some(v) = net.members[i].last.as_ref().map(|s| s.model_version) else {
                continue;
            };
            if v < self.max_version[i] {
                self.version_drops += 1;
                let text = format!(
                    "{} model version went back from v{} to v{v}",
                    net.members[i].spec.name, self.max_version[i]
                );
                net.event(Some(i), text);
            }
            self.max_version[i] = self.max_version[i].max(v);
        }
    }
}

impl Scenario for Churn {
    fn kind(&self) -> ScenarioKind {
        ScenarioKind::Churn
    }

    fn expected(&self, _net: &Testnet) -> Vec<String> {
        vec![
            format!(
                "every ~{:.0} s a random node is killed with kill -9 and restarted {DOWN_FOR:.0} s later on the same data dir",
                self.every
            ),
            "a restarted node keeps its peer id (its key is in the data dir)".into(),
            "its model version is not older than before the kill (snapshots survive kill -9)"
                .into(),
            "samples learned after the last snapshot are re-learned from the source, not lost"
                .into(),
            format!("it answers and rejoins the mesh within {BACK_WITHIN:.0} s"),
            "no node's model version ever goes backwards".into(),
            "the witness (fed by POST /v1/learn) counts exactly the samples it acknowledged, after every restart and at the end".into(),
            "every task a node accepted (201) is still in its ledger at the end".into(),
        ]
    }

    fn tick(&mut self, net: &mut Testnet, t: f64) -> Result<()> {
        self.watch_versions(net);
        if let Some(w) = self.witness.as_mut() {
            w.tick(net, t);
        }
        self.tasks
            .tick(net, t, self.witness.as_ref().map(|w| w.node));
        match self.phase {
            ChurnPhase::Idle => {
                if t < self.next_kill || t > net.opts.duration_s - QUIET_END {
                    return Ok(());
                }
                let up: Vec<usize> = (0..net.members.len())
                    .filter(|&i| net.members[i].state == NodeState::Up)
                    .collect();
                if up.is_empty() {
                    return Ok(());
                }
                // Every third kill hits the witness (while it is not still
                // being checked from its last restart).
                let witness = self
                    .witness
                    .as_ref()
                    .filter(|w| w.checking.is_none() && up.contains(&w.node))
                    .map(|w| w.node);
                self.kills += 1;
                let victim = match witness {
                    Some(w) if self.kills % 3 == 2 => w,
                    _ => up[net.rng.below(up.len())],
                };
                if let Some(w) = self.witness.as_mut().filter(|w| w.node == victim) {
                    w.checking = Some((w.acked, f64::INFINITY));
                }
                let before: Option<Status> = net.members[victim].last.clone();
                net.kill_node(victim);
                self.restarts.push(Restart {
                    node: net.members[victim].spec.name.clone(),
                    how: "kill -9".into(),
                    stopped_at_s: t,
                    restarted_at_s: 0.0,
                    answered_after_s: None,
                    rejoined_after_s: None,
                    peer_id_before: before.as_ref().map(|s| s.peer_id.clone()),
                    peer_id_after: None,
                    model_version_before: before.as_ref().map(|s| s.model_version),
                    model_version_after: None,
                    samples_before: before.as_ref().map(|s| s.samples_seen),
                    samples_after: None,
                });
                self.phase = ChurnPhase::Down { victim, since: t };
            }
            ChurnPhase::Down { victim, since } => {
                if t - since < DOWN_FOR {
                    return Ok(());
                }
                net.start_node(victim)
                    .with_context(|| format!("restarting node{victim}"))?;
                net.members[victim].restarts += 1;
                if let Some(r) = self.restarts.last_mut() {
                    r.restarted_at_s = t;
                }
                if let Some(w) = self.witness.as_mut().filter(|w| w.node == victim) {
                    if let Some((want, _)) = w.checking {
                        w.checking = Some((want, t));
                    }
                }
                self.phase = ChurnPhase::Back { victim, since: t };
            }
            ChurnPhase::Back { victim, since } => {
                let m = &net.members[victim];
                let Some(r) = self.restarts.last_mut() else {
                    self.phase = ChurnPhase::Idle;
                    return Ok(());
                };
                if let (Some(s), None) = (&m.last, r.answered_after_s) {
                    r.answered_after_s = Some(t - since);
                    r.peer_id_after = Some(s.peer_id.clone());
                    r.model_version_after = Some(s.model_version);
                    r.samples_after = Some(s.samples_seen);
                    let same = r.same_identity() == Some(true);
                    let text = format!(
                        "{} back after {:.0}s: {} peer id, model v{} → v{}, samples {} → {}",
                        r.node,
                        t - since,
                        if same { "same" } else { "DIFFERENT" },
                        opt(r.model_version_before),
                        s.model_version,
                        opt(r.samples_before),
                        s.samples_seen
                    );
                    net.event(Some(victim), text);
                    return Ok(());
                }
                let m = &net.members[victim];
                let rejoined = m.last.as_ref().is_some_and(|s| s.peers > 0);
                let failed = m.state == NodeState::Crashed;
                if rejoined && r.answered_after_s.is_some() {
                    r.rejoined_after_s = Some(t - since);
                }
                if rejoined || failed || t - since > BACK_WITHIN {
                    if !rejoined {
                        let text = format!("{} did not rejoin the mesh", r.node);
                        net.event(Some(victim), text);
                    }
                    self.phase = ChurnPhase::Idle;
                    self.next_kill = (r.stopped_at_s + self.every).max(t + 5.0);
                }
            }
        }
        Ok(())
    }

    fn status_line(&self, net: &Testnet) -> String {
        let done = self.restarts.len();
        match self.phase {
            ChurnPhase::Idle => {
                let left = self.next_kill - net.now();
                if net.now() > net.opts.duration_s - QUIET_END {
                    format!("churn: {done} kills so far; no more kills this close to the end")
                } else {
                    format!(
                        "churn: {done} kills so far; next kill -9 in {:.0}s",
                        left.max(0.0)
                    )
                }
            }
            ChurnPhase::Down { victim, .. } => {
                format!("churn: node{victim} is down (kill -9), restarting it shortly")
            }
            ChurnPhase::Back { victim, .. } => {
                format!("churn: node{victim} restarted, waiting for it to rejoin")
            }
        }
    }

    fn finish(&mut self, net: &Testnet) -> Outcome {
        let mut out = outcome(self.kind(), self.expected(net));
        out.restarts = self.restarts.clone();
        common(net, &mut out);
        fill_restart_losses(&mut out);
        self.finish_extra(net, &mut out);
        let n = out.restarts.len();
        let observed: Vec<&Restart> = out
            .restarts
            .iter()
            .filter(|r| r.answered_after_s.is_some())
            .collect();
        out.measured.push(format!(
            "{n} kill -9 + restart cycles, {} came back and answered",
            observed.len()
        ));
        if n > 0 {
            let same = observed
                .iter()
                .filter(|r| r.same_identity() == Some(true))
                .count();
            let kept = observed
                .iter()
                .filter(|r| r.version_kept() == Some(true))
                .count();
            let rejoined = out
                .restarts
                .iter()
                .filter(|r| r.rejoined_after_s.is_some())
                .count();
            out.measured.push(format!(
                "{same} of {n} came back with the same peer id; {kept} of {n} with a model version ≥ the one before; {rejoined} of {n} rejoined the mesh"
            ));
            out.measured.push(format!(
                "{} samples rolled back in total (re-learned from the source after restart). \
                 A lower bound: 'before' is the last poll, up to 1 s before the kill, and \
                 'after' the first answer after the restart, by when the node may have \
                 re-learned up to a second of samples",
                out.lost.samples_rolled_back
            ));
            out.checks.push(Check {
                what: "restarted nodes keep their peer id".into(),
                ok: same == n,
                detail: format!("{same} of {n}"),
            });
            out.checks.push(Check {
                what: "restarted nodes keep a model version ≥ the one before the kill".into(),
                ok: kept == n,
                detail: format!("{kept} of {n}"),
            });
            out.checks.push(Check {
                what: format!("restarted nodes rejoin the mesh within {BACK_WITHIN:.0} s"),
                ok: rejoined == n,
                detail: format!("{rejoined} of {n}"),
            });
        } else {
            out.measured.push(format!(
                "no kill happened: the run must last more than {:.0} s for the first one",
                self.every + QUIET_END
            ));
            out.checks.push(Check {
                what: "at least one kill -9 and restart happened".into(),
                ok: false,
                detail: format!("run longer than {:.0} s", self.every + QUIET_END),
            });
        }
        out
    }
}

impl Churn {
    /// Version watch, witness and task checks.
    fn finish_extra(&mut self, net: &Testnet, out: &mut Outcome) {
        out.lost.model_version_drops = self.version_drops;
        out.measured.push(format!(
            "model versions: {} drop(s) seen over all polls of all nodes",
            self.version_drops
        ));
        out.checks.push(Check {
            what: "no model version ever went backwards".into(),
            ok: self.version_drops == 0,
            detail: format!("{} drop(s)", self.version_drops),
        });
        if let Some(w) = self.witness.as_mut() {
            let seen = w.finish(net);
            let name = net.members[w.node].spec.name.clone();
            out.lost.acked_samples = w.acked;
            out.lost.acked_samples_lost = w.lost;
            out.lost.acked_samples_duplicated = w.duplicated;
            out.measured.push(format!(
                "witness {name}: {} samples acknowledged ({} batches not acknowledged), {} counted at the end; {} restart(s) checked; {} lost, {} duplicated",
                w.acked,
                w.rejected,
                seen.map_or_else(|| "?".into(), |s| s.to_string()),
                w.restarts_checked,
                w.lost,
                w.duplicated
            ));
            out.measured.extend(w.log.iter().cloned());
            out.checks.push(Check {
                what: "no acknowledged sample lost or duplicated (witness)".into(),
                ok: seen.is_some() && w.lost == 0 && w.duplicated == 0 && w.acked > 0,
                detail: format!(
                    "{} acknowledged, {} lost, {} duplicated, {} restart(s) of the witness checked",
                    w.acked, w.lost, w.duplicated, w.restarts_checked
                ),
            });
        }
        let notes = self.tasks.finish(net, &mut out.lost);
        out.measured.extend(notes);
        if out.lost.tasks_measured {
            out.checks.push(Check {
                what: "no accepted task lost".into(),
                ok: out.lost.tasks_lost == 0,
                detail: format!(
                    "{} accepted, {} lost",
                    out.lost.tasks_submitted, out.lost.tasks_lost
                ),
            });
        }
    }
}

fn opt(v: Option<u64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------- partition

enum PartPhase {
    Joined,
    Cut { since: f64 },
    Healed { since: f64 },
}

struct Partition {
    side_b: Vec<usize>,
    key_a: std::path::PathBuf,
    key_b: std::path::PathBuf,
    cut_at: f64,
    heal_at: f64,
    phase: PartPhase,
    /// Largest number of peers seen on each side while the cut had settled.
    max_peers_a: u64,
    max_peers_b: u64,
    /// Samples per side when the cut had settled, and at the heal.
    samples_at_cut: Option<(u64, u64)>,
    samples_at_heal: Option<(u64, u64)>,
    healed_after: Option<f64>,
    restarts: Vec<Restart>,
}

/// Seconds for connections across the cut to die before isolation is judged.
const SETTLE: f64 = 10.0;

fn write_key(path: &std::path::Path, seed: u64) -> Result<()> {
    let mut rng = crate::util::SmallRng::new(seed);
    let hex: String = (0..4).map(|_| format!("{:016x}", rng.next_u64())).collect();
    // The pnet key file format of libp2p / IPFS private networks.
    std::fs::write(path, format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n"))
        .with_context(|| format!("writing {}", path.display()))
}

impl Partition {
    fn new(net: &mut Testnet) -> Result<Self> {
        let n = net.members.len();
        anyhow::ensure!(n >= 2, "the partition scenario needs at least 2 nodes");
        let keys = net.opts.out.join("keys");
        std::fs::create_dir_all(&keys).with_context(|| format!("creating {}", keys.display()))?;
        // Test-only keys, fresh per run: they protect nothing but the cut.
        let seed = net.opts.seed ^ unix_now().to_bits();
        let key_a = keys.join("side-a.key");
        let key_b = keys.join("side-b.key");
        write_key(&key_a, seed)?;
        write_key(&key_b, seed.rotate_left(17) ^ 0x5555)?;
        for m in &mut net.members {
            m.spec.network_key = Some(key_a.clone());
        }
        let a = n.div_ceil(2);
        let d = net.opts.duration_s;
        Ok(Partition {
            side_b: (a..n).collect(),
            key_a,
            key_b,
            cut_at: (d * 0.3).max(15.0),
            heal_at: (d * 0.65).max(15.0 + 2.0 * SETTLE),
            phase: PartPhase::Joined,
            max_peers_a: 0,
            max_peers_b: 0,
            samples_at_cut: None,
            samples_at_heal: None,
            healed_after: None,
            restarts: Vec::new(),
        })
    }

    fn side_samples(&self, net: &Testnet) -> (u64, u64) {
        let mut a = 0;
        let mut b = 0;
        for (i, m) in net.members.iter().enumerate() {
            let s = m.last.as_ref().map(|s| s.samples_seen).unwrap_or(0);
            if self.side_b.contains(&i) {
                b += s;
            } else {
                a += s;
            }
        }
        (a, b)
    }

    /// Restart every node of side B with `key` and `bootstrap`.
    fn move_side_b(&mut self, net: &mut Testnet, t: f64, to_b: bool) -> Result<()> {
        let first_b = self.side_b.first().copied();
        let to_a_bootstrap: Vec<String> = [0, 1]
            .iter()
            .filter(|i| !self.side_b.contains(i))
            .filter_map(|&i| net.dial_addr(i))
            .collect();
        for (k, &i) in self.side_b.iter().enumerate() {
            let before = net.members[i].last.clone();
            net.stop_node(i);
            let b_bootstrap: Vec<String> = match first_b {
                Some(f) if k > 0 => net.dial_addr(f).into_iter().collect(),
                _ => Vec::new(),
            };
            let spec = &mut net.members[i].spec;
            if to_b {
                spec.network_key = Some(self.key_b.clone());
                spec.bootstrap = b_bootstrap;
            } else {
                spec.network_key = Some(self.key_a.clone());
                spec.bootstrap = to_a_bootstrap.clone();
            }
            net.start_node(i)?;
            net.members[i].restarts += 1;
            self.restarts.push(Restart {
                node: net.members[i].spec.name.clone(),
                how: if to_b {
                    "stop, restart on key B"
                } else {
                    "stop, restart on key A"
                }
                .into(),
                stopped_at_s: t,
                restarted_at_s: net.now(),
                answered_after_s: None,
                rejoined_after_s: None,
                peer_id_before: before.as_ref().map(|s| s.peer_id.clone()),
                peer_id_after: None,
                model_version_before: before.as_ref().map(|s| s.model_version),
                model_version_after: None,
                samples_before: before.as_ref().map(|s| s.samples_seen),
                samples_after: None,
            });
        }
        Ok(())
    }

    /// Fill in the restart records from the first answers after a restart.
    fn observe_restarts(&mut self, net: &Testnet, t: f64) {
        for r in &mut self.restarts {
            let Some(i) = net.members.iter().position(|m| m.spec.name == r.node) else {
                continue;
            };
            let Some(s) = net.members[i].last.as_ref() else {
                continue;
            };
            if r.answered_after_s.is_none() {
                r.answered_after_s = Some(t - r.restarted_at_s);
                r.peer_id_after = Some(s.peer_id.clone());
                r.model_version_after = Some(s.model_version);
                r.samples_after = Some(s.samples_seen);
            }
            if r.rejoined_after_s.is_none() && s.peers > 0 {
                r.rejoined_after_s = Some(t - r.restarted_at_s);
            }
        }
    }
}

impl Scenario for Partition {
    fn kind(&self) -> ScenarioKind {
        ScenarioKind::Partition
    }

    fn expected(&self, net: &Testnet) -> Vec<String> {
        let n = net.members.len();
        let b = self.side_b.len();
        vec![
            format!(
                "from {:.0} s to {:.0} s nodes {} ({b} of {n}) are cut off: restarted with a different network key",
                self.cut_at,
                self.heal_at,
                names(&self.side_b)
            ),
            format!(
                "during the cut each side sees only its own nodes (≤ {} and ≤ {} peers) and keeps learning",
                n - b - 1,
                b.saturating_sub(1)
            ),
            "after the heal (restart on the common key) every node sees all the others again"
                .into(),
            "a gentle stop loses nothing: no samples rolled back, same peer ids".into(),
        ]
    }

    fn tick(&mut self, net: &mut Testnet, t: f64) -> Result<()> {
        self.observe_restarts(net, t);
        match self.phase {
            PartPhase::Joined if t >= self.cut_at => {
                net.event(
                    None,
                    format!("partition: moving {} to network key B", names(&self.side_b)),
                );
                self.move_side_b(net, t, true)?;
                self.phase = PartPhase::Cut { since: net.now() };
            }
            PartPhase::Cut { since } => {
                if t >= since + SETTLE {
                    if self.samples_at_cut.is_none() {
                        self.samples_at_cut = Some(self.side_samples(net));
                    }
                    for (i, m) in net.members.iter().enumerate() {
                        let peers = m.last.as_ref().map(|s| s.peers).unwrap_or(0);
                        if self.side_b.contains(&i) {
                            self.max_peers_b = self.max_peers_b.max(peers);
                        } else {
                            self.max_peers_a = self.max_peers_a.max(peers);
                        }
                    }
                }
                if t >= self.heal_at {
                    self.samples_at_heal = Some(self.side_samples(net));
                    net.event(None, "partition: healing, side B back on key A");
                    self.move_side_b(net, t, false)?;
                    self.phase = PartPhase::Healed { since: net.now() };
                }
            }
            PartPhase::Healed { since } if self.healed_after.is_none() => {
                let n = net.members.len() as u64;
                if net.members.iter().all(|m| {
                    m.state == NodeState::Up && m.last.as_ref().is_some_and(|s| s.peers + 1 >= n)
                }) {
                    self.healed_after = Some(t - since);
                    net.event(
                        None,
                        format!("partition healed: full mesh again after {:.0}s", t - since),
                    );
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn status_line(&self, net: &Testnet) -> String {
        let now = net.now();
        match self.phase {
            PartPhase::Joined => format!(
                "partition: mesh joined; cutting {} off in {:.0}s",
                names(&self.side_b),
                (self.cut_at - now).max(0.0)
            ),
            PartPhase::Cut { .. } => format!(
                "partition: {} cut off (network key B); healing in {:.0}s",
                names(&self.side_b),
                (self.heal_at - now).max(0.0)
            ),
            PartPhase::Healed { .. } => match self.healed_after {
                Some(h) => format!("partition: healed, full mesh again after {h:.0}s"),
                None => "partition: healing, waiting for the full mesh".into(),
            },
        }
    }

    fn finish(&mut self, net: &Testnet) -> Outcome {
        let mut out = outcome(self.kind(), self.expected(net));
        out.restarts = self.restarts.clone();
        common(net, &mut out);
        fill_restart_losses(&mut out);
        let n = net.members.len() as u64;
        let b = self.side_b.len() as u64;
        let (cut_ok, heal_seen) = match (self.samples_at_cut, self.samples_at_heal) {
            (Some(c), Some(h)) => (
                true,
                Some((h.0.saturating_sub(c.0), h.1.saturating_sub(c.1))),
            ),
            _ => (false, None),
        };
        if !cut_ok {
            out.measured.push(format!(
                "the cut never settled: run longer (cut at {:.0} s, heal at {:.0} s, settle {SETTLE:.0} s)",
                self.cut_at, self.heal_at
            ));
            out.checks.push(Check {
                what: "the partition happened and was observed".into(),
                ok: false,
                detail: "run too short".into(),
            });
            return out;
        }
        let isolated = self.max_peers_a < n - b && self.max_peers_b < b;
        out.measured.push(format!(
            "during the cut: side A saw at most {} peers, side B at most {}",
            self.max_peers_a, self.max_peers_b
        ));
        out.checks.push(Check {
            what: "no connection across the cut".into(),
            ok: isolated,
            detail: format!(
                "max peers A={} (limit {}), B={} (limit {})",
                self.max_peers_a,
                n - b - 1,
                self.max_peers_b,
                b - 1
            ),
        });
        if let Some((ga, gb)) = heal_seen {
            out.measured.push(format!(
                "during the cut side A learned {ga} samples, side B {gb}"
            ));
            out.checks.push(Check {
                what: "both sides kept learning during the cut".into(),
                ok: ga > 0 && gb > 0,
                detail: format!("A +{ga}, B +{gb}"),
            });
        }
        out.measured.push(match self.healed_after {
            Some(h) => format!("full mesh again {h:.1} s after the heal"),
            None => "the mesh did not become full again before the end".into(),
        });
        out.checks.push(Check {
            what: "the mesh heals after the cut".into(),
            ok: self.healed_after.is_some(),
            detail: self
                .healed_after
                .map(|h| format!("{h:.1} s"))
                .unwrap_or_else(|| "not within the run".into()),
        });
        out.measured.push(format!(
            "{} samples rolled back over {} gentle restarts",
            out.lost.samples_rolled_back,
            out.restarts.len()
        ));
        out
    }
}

fn names(ids: &[usize]) -> String {
    ids.iter()
        .map(|i| format!("node{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

// ---------------------------------------------------------------- byzantine

/// The poisonings `shoal-node --byzantine` knows, handed out in turn.
const BYZANTINE_MODES: [&str; 3] = ["flip_labels", "scale", "nan"];
/// How far below the baseline the honest nodes' mean accuracy may fall.
const BYZANTINE_TOLERANCE: f64 = 0.02;

/// Honest nodes' accuracy in a run without attackers (`--baseline`).
struct Baseline {
    path: String,
    model: Option<String>,
    /// Node name → final prequential accuracy.
    accuracy: std::collections::BTreeMap<String, f64>,
}

impl Baseline {
    fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the baseline {}", path.display()))?;
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("parsing the baseline {}", path.display()))?;
        let mut accuracy = std::collections::BTreeMap::new();
        for n in v
            .pointer("/summary/per_node")
            .and_then(|p| p.as_array())
            .into_iter()
            .flatten()
        {
            let (Some(name), Some(acc)) = (
                n.get("node").and_then(|x| x.as_str()),
                n.get("accuracy").and_then(|x| x.as_f64()),
            ) else {
                continue;
            };
            accuracy.insert(name.to_string(), acc);
        }
        anyhow::ensure!(
            !accuracy.is_empty(),
            "the baseline {} has no per-node accuracy (use a report.json of `up`)",
            path.display()
        );
        Ok(Baseline {
            path: path.display().to_string(),
            model: v.get("model").and_then(|m| m.as_str()).map(str::to_string),
            accuracy,
        })
    }
}

/// What the honest nodes say about one attacker.
#[derive(Default)]
struct Verdict {
    merged: u64,
    rejected: u64,
    lowest_score: Option<f64>,
    banned_by: usize,
    connected_to: usize,
    seen_by: usize,
    last_rejection: Option<String>,
}

struct Byzantine {
    /// (node, `--byzantine` mode)
    attackers: Vec<(usize, &'static str)>,
    model: String,
    baseline: Option<Baseline>,
}

impl Byzantine {
    /// The last `2n/5` nodes (at least one, never a majority) poison; every
    /// node runs `nb` unless `--model` says otherwise, because `scale` only
    /// has parameters to blow up in Naive Bayes and linear models.
    fn new(net: &mut Testnet) -> Result<Self> {
        let n = net.members.len();
        anyhow::ensure!(n >= 3, "the byzantine scenario needs at least 3 nodes");
        let k = (n * 2 / 5).max(1);
        let model = net.opts.model.clone().unwrap_or_else(|| "nb".into());
        for m in &mut net.members {
            m.spec.model = Some(model.clone());
        }
        let attackers: Vec<(usize, &'static str)> = (n - k..n)
            .enumerate()
            .map(|(j, i)| (i, BYZANTINE_MODES[j % BYZANTINE_MODES.len()]))
            .collect();
        for &(i, mode) in &attackers {
            net.members[i]
                .spec
                .extra_args
                .extend(["--byzantine".to_string(), mode.to_string()]);
        }
        let baseline = match &net.opts.baseline {
            Some(p) => Some(Baseline::load(p)?),
            None => None,
        };
        Ok(Byzantine {
            attackers,
            model,
            baseline,
        })
    }

    fn is_attacker(&self, i: usize) -> bool {
        self.attackers.iter().any(|&(a, _)| a == i)
    }

    fn honest(&self, net: &Testnet) -> Vec<usize> {
        (0..net.members.len())
            .filter(|&i| !self.is_attacker(i))
            .collect()
    }

    /// Ask every honest node's `/v1/peers` about one attacker.
    fn verdict(&self, net: &Testnet, attacker: usize) -> Verdict {
        let mut v = Verdict::default();
        let Some(id) = net.members[attacker].peer_id.clone() else {
            return v;
        };
        for i in self.honest(net) {
            let Some(p) = net.members[i].process.as_ref() else {
                continue;
            };
            let Ok(peers) = p.api().get_json("/v1/peers") else {
                continue;
            };
            let connected = peers
                .get("peers")
                .and_then(|a| a.as_array())
                .into_iter()
                .flatten()
                .any(|p| {
                    p.get("id").and_then(|x| x.as_str()) == Some(id.as_str())
                        && p.get("connected").and_then(|c| c.as_bool()) != Some(false)
                });
            if connected {
                v.connected_to += 1;
            }
            let Some(f) = peers.pointer(&format!("/federation/peers/{id}")) else {
                continue;
            };
            v.seen_by += 1;
            v.merged += f.get("merged").and_then(|x| x.as_u64()).unwrap_or(0);
            v.rejected += f.get("rejected").and_then(|x| x.as_u64()).unwrap_or(0);
            if let Some(s) = f.get("score").and_then(|x| x.as_f64()) {
                v.lowest_score = Some(v.lowest_score.map_or(s, |l: f64| l.min(s)));
            }
            if f.get("banned").and_then(|b| b.as_bool()) == Some(true) {
                v.banned_by += 1;
            }
            if let Some(r) = f.get("last_rejection").and_then(|x| x.as_str()) {
                v.last_rejection = Some(r.to_string());
            }
        }
        v
    }
}

impl Scenario for Byzantine {
    fn kind(&self) -> ScenarioKind {
        ScenarioKind::Byzantine
    }

    fn expected(&self, net: &Testnet) -> Vec<String> {
        let n = net.members.len();
        let list: Vec<String> = self
            .attackers
            .iter()
            .map(|(i, m)| format!("node{i} `--byzantine {m}`"))
            .collect();
        let mut e = vec![
            format!(
                "{} of {n} nodes publish poisoned models: {}; all run the `{}` model",
                self.attackers.len(),
                list.join(", "),
                self.model
            ),
            "honest nodes check every model they pull (kind, NaN/Inf, parameter norm, accuracy on their own recent samples) and refuse the poisoned ones".into(),
            "in each honest node's GET /v1/peers, a scale or nan attacker's federation entry shows refusals and a negative score (and `banned` once the node disconnects it)".into(),
            "a flip_labels attacker is refused only when merging its model costs more than the accuracy limit on the honest node's recent samples; otherwise its harm shows in the honest nodes' accuracy".into(),
            "no honest node merges a NaN model".into(),
        ];
        e.push(match &self.baseline {
            Some(b) => format!(
                "honest nodes' mean accuracy is within {:.0} points of the same nodes in the run without attackers ({})",
                BYZANTINE_TOLERANCE * 100.0,
                b.path
            ),
            None => "honest nodes keep learning (compare with a run without attackers: pass its report.json as --baseline)".into(),
        });
        e
    }

    fn tick(&mut self, _net: &mut Testnet, _t: f64) -> Result<()> {
        Ok(())
    }

    fn status_line(&self, net: &Testnet) -> String {
        let names: Vec<String> = self
            .attackers
            .iter()
            .map(|(i, m)| format!("node{i}={m}"))
            .collect();
        let merges: u64 = self
            .honest(net)
            .iter()
            .filter_map(|&i| net.members[i].last.as_ref().map(|s| s.merges))
            .sum();
        format!(
            "byzantine: attackers {}; honest nodes merged {merges} models so far",
            names.join(" ")
        )
    }

    fn finish(&mut self, net: &Testnet) -> Outcome {
        let mut out = outcome(self.kind(), self.expected(net));
        let attackers: Vec<usize> = self.attackers.iter().map(|&(i, _)| i).collect();
        common_except(net, &mut out, &attackers);
        for &(a, mode) in &self.attackers {
            let v = self.verdict(net, a);
            let honest_n = self.honest(net).len();
            out.measured.push(format!(
                "node{a} ({mode}): known to {} of {honest_n} honest nodes; their models merged {} times, refused {} times; lowest score {}; banned by {}, still connected to {}{}",
                v.seen_by,
                v.merged,
                v.rejected,
                v.lowest_score.map_or_else(|| "-".into(), |s| format!("{s:.2}")),
                v.banned_by,
                v.connected_to,
                v.last_rejection
                    .as_ref()
                    .map(|r| format!("; last refusal: {r}"))
                    .unwrap_or_default()
            ));
            if mode == "flip_labels" {
                // A label-flipping node's statistics are one origin among
                // n in an exact naive Bayes merge (and a committee member
                // weighted by its accuracy for other models): the merged
                // model may stay within the accuracy limit of the check.
                // What matters then is the harm, measured against the
                // baseline below.
                out.measured.push(format!(
                    "node{a} (flip_labels) is only caught when merging its model costs an honest node more than the accuracy limit on its own recent samples; here {} of {} pulls were refused; its harm is the accuracy difference to the run without attackers",
                    v.rejected,
                    v.rejected + v.merged
                ));
            } else {
                out.checks.push(Check {
                    what: format!("node{a}'s {mode} models are refused more often than merged"),
                    ok: v.rejected > v.merged,
                    detail: format!("{} refused, {} merged", v.rejected, v.merged),
                });
                out.checks.push(Check {
                    what: format!(
                        "node{a} ({mode}) has a negative score at every honest node that knows it"
                    ),
                    ok: v.seen_by > 0 && v.lowest_score.is_some_and(|s| s < 0.0),
                    detail: format!(
                        "lowest {}, banned by {} of {}",
                        v.lowest_score
                            .map_or_else(|| "-".into(), |s| format!("{s:.2}")),
                        v.banned_by,
                        v.seen_by
                    ),
                });
            }
            if mode == "nan" {
                out.checks.push(Check {
                    what: format!("no honest node merged node{a}'s NaN model"),
                    ok: v.merged == 0,
                    detail: format!("{} merged", v.merged),
                });
            }
        }
        let honest = self.honest(net);
        let acc = |i: usize| net.members[i].last.as_ref().and_then(|s| s.accuracy);
        let measured: Vec<(String, f64)> = honest
            .iter()
            .filter_map(|&i| acc(i).map(|a| (net.members[i].spec.name.clone(), a)))
            .collect();
        let mean = |v: &[f64]| {
            if v.is_empty() {
                None
            } else {
                Some(v.iter().sum::<f64>() / v.len() as f64)
            }
        };
        let here: Vec<f64> = measured.iter().map(|(_, a)| *a).collect();
        let attackers_acc: Vec<f64> = self.attackers.iter().filter_map(|&(a, _)| acc(a)).collect();
        out.measured.push(format!(
            "honest nodes' prequential accuracy: mean {} ({}); attackers' own: mean {}",
            mean(&here).map_or_else(|| "-".into(), |m| format!("{:.2}%", m * 100.0)),
            measured
                .iter()
                .map(|(n, a)| format!("{n} {:.2}%", a * 100.0))
                .collect::<Vec<_>>()
                .join(", "),
            mean(&attackers_acc).map_or_else(|| "-".into(), |m| format!("{:.2}%", m * 100.0)),
        ));
        if let Some(b) = &self.baseline {
            let pairs: Vec<(f64, f64)> = measured
                .iter()
                .filter_map(|(n, a)| b.accuracy.get(n).map(|r| (*a, *r)))
                .collect();
            let with: Vec<f64> = pairs.iter().map(|p| p.0).collect();
            let without: Vec<f64> = pairs.iter().map(|p| p.1).collect();
            if let (Some(w), Some(r)) = (mean(&with), mean(&without)) {
                out.measured.push(format!(
                    "same {} honest nodes without attackers (baseline, model {}): mean {:.2}% → with attackers {:.2}% ({:+.2} points)",
                    pairs.len(),
                    b.model.as_deref().unwrap_or("node default"),
                    r * 100.0,
                    w * 100.0,
                    (w - r) * 100.0
                ));
                if b.model.as_deref() != Some(self.model.as_str()) {
                    out.measured.push(format!(
                        "note: the baseline ran model {:?}, this run `{}`: not comparable",
                        b.model, self.model
                    ));
                }
                out.checks.push(Check {
                    what: format!(
                        "honest nodes within {:.0} points of the run without attackers",
                        BYZANTINE_TOLERANCE * 100.0
                    ),
                    ok: w >= r - BYZANTINE_TOLERANCE,
                    detail: format!("{:+.2} points", (w - r) * 100.0),
                });
            } else {
                out.measured
                    .push("the baseline has none of this run's honest nodes".into());
            }
        }
        out
    }
}
