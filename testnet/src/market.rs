//! `shoal-testnet market`: the same task workload on a real loopback
//! testnet under each placement policy, compared on bytes moved and
//! completion time.
//!
//! For every policy a fresh mesh of `--nodes` processes starts: node0
//! submits every task and holds no data; the others learn a generated
//! stream and keep its recent samples as data blobs (the same blobs in every
//! run: same seeds, `--rate 0`, fixed snapshot size). Task `i` reads two
//! blobs of one holder (holders in turn) and is a train, evaluate or select
//! task; tasks arrive every `--gap` at node0, which places them by its
//! `--placement`. Bytes moved and completion times come from node0's task
//! ledger (`GET /v1/tasks`), fetch counters from every node's status.
//!
//! `--repeat N` runs every policy N times (fresh mesh each time) and prints
//! the medians. `--churn F` kills `ceil(F * nodes)` processes (at least 2,
//! node0 the owner among them, the rest data holders and workers) with
//! `kill -9` while the tasks run and restarts each on the same data dir
//! after `--down-s`; tasks go to another live node while node0 is down.
//! At the end every acknowledged task is queried over REST at its owner and
//! counted committed / failed / lost; a task whose committed winner or epoch
//! changed, or whose owner logged its commit twice, is committed twice;
//! executions are counted from every node's `market run started` log lines
//! (duplicates: runs beyond the first of a task). Lost or committed twice
//! makes the command exit non-zero.
//!
//! ```text
//! cargo build --release -p shoal-node -p shoal-testnet
//! target/release/shoal-testnet market --nodes 5 --tasks 32 --policies auction,random,round_robin
//! target/release/shoal-testnet market --nodes 8 --tasks 60 --policies auction --churn 0.3
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{json, Value};

use crate::http::Client;
use crate::node::{NodeProcess, NodeSpec};
use crate::util::PortPicker;

/// Options of a market comparison.
#[derive(Debug, Clone, clap::Args)]
pub struct MarketArgs {
    /// Nodes per mesh (node0 submits, the others hold data).
    #[arg(long, default_value_t = 5)]
    pub nodes: usize,
    /// Tasks in the workload.
    #[arg(long, default_value_t = 32)]
    pub tasks: usize,
    /// Milliseconds between two submissions.
    #[arg(long, default_value_t = 150)]
    pub gap_ms: u64,
    /// Policies to compare, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "auction,random,round_robin,least_loaded"
    )]
    pub policies: Vec<String>,
    /// Features of the generated data (blob size grows with it).
    #[arg(long, default_value_t = 40)]
    pub features: usize,
    /// Task slots per node.
    #[arg(long, default_value_t = 1)]
    pub slots: u16,
    /// Holders' `--snapshot-every`: samples between two data blobs (each
    /// blob keeps at most the node's newest 1000 samples; the stream is 6
    /// snapshots long).
    #[arg(long, default_value_t = 1000)]
    pub snapshot_every: u64,
    /// Runs of every policy (fresh mesh each); medians are reported.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
    /// Fraction of the nodes killed with `kill -9` and restarted during
    /// each run (0: none; otherwise at least 2 nodes, node0 included).
    #[arg(long, default_value_t = 0.0)]
    pub churn: f64,
    /// Seconds a killed node stays down before its restart.
    #[arg(long, default_value_t = 3.0)]
    pub down_s: f64,
    /// Output folder for logs and `market.json`.
    #[arg(long, default_value = "out/market")]
    pub out: PathBuf,
    /// The shoal-node binary (default: next to this executable).
    #[arg(long)]
    pub bin: Option<PathBuf>,
}

/// Result of one policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyResult {
    pub policy: String,
    pub tasks: usize,
    pub committed: usize,
    pub failed: usize,
    pub mean_completion_ms: f64,
    pub p95_completion_ms: f64,
    pub makespan_ms: u64,
    /// Sum over tasks of input bytes the worker fetched plus the result
    /// brought back to the owner (node0's ledger).
    pub bytes_moved: u64,
    /// Bytes fetched for tasks by all nodes (their status counters).
    pub bytes_fetched_all_nodes: u64,
    /// Tasks that ran on a node holding their data.
    pub ran_on_holder: usize,
    /// What the crashes did (runs with `--churn`).
    pub churn: Option<ChurnResult>,
}

/// Outcome of a run with crashes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChurnResult {
    /// Nodes killed with `kill -9` (and restarted on the same data dir).
    pub killed: Vec<String>,
    /// Tasks acknowledged with 201.
    pub acknowledged: usize,
    /// Acknowledged tasks submitted to another node while node0 was down.
    pub owned_elsewhere: usize,
    pub committed: usize,
    pub failed: usize,
    /// Acknowledged tasks the owner no longer knew (404) or that were not
    /// committed or failed when the wait ended.
    pub lost: usize,
    /// Tasks whose committed winner or epoch changed between two looks, or
    /// whose owner logged the commit more than once.
    pub committed_twice: usize,
    /// Executions started for acknowledged tasks (all nodes' logs).
    pub executions: usize,
    /// Executions beyond the first of their task.
    pub duplicate_executions: usize,
    /// Tasks executed more than once.
    pub tasks_run_twice: usize,
    /// Owner counters summed over nodes at the end (since their last start).
    pub lease_expiries: u64,
    pub fallbacks: u64,
    pub local_restarts: u64,
    pub stale_results: u64,
}

impl ChurnResult {
    /// Zero lost and zero committed twice.
    pub fn ok(&self) -> bool {
        self.lost == 0 && self.committed_twice == 0
    }
}

struct Mesh {
    procs: Vec<NodeProcess>,
    specs: Vec<NodeSpec>,
    apis: Vec<Client>,
    peers: Vec<String>,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        for p in &mut self.procs {
            p.stop(Duration::from_secs(5));
        }
    }
}

fn start_mesh(args: &MarketArgs, bin: &Path, policy: &str, run: &str) -> Result<Mesh> {
    let dir = args.out.join(run);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let mut ports = PortPicker::default();
    let mut procs = Vec::new();
    let mut apis = Vec::new();
    let mut peers = Vec::new();
    let mut specs = Vec::new();
    let mut boot: Option<String> = None;
    for i in 0..args.nodes {
        let ndir = dir.join(format!("node{i}"));
        let mut spec = NodeSpec::loopback(
            &format!("node{i}"),
            bin,
            &ndir,
            ports.pick()?,
            ports.pick()?,
        );
        if let Some(b) = &boot {
            spec.bootstrap.push(b.clone());
        }
        if i > 0 {
            spec.source = Some(format!(
                "hyperplane:n_features={},seed={i},n={}",
                args.features,
                args.snapshot_every.max(1) * 6
            ));
            spec.rate = Some(0.0);
        }
        spec.extra_args = vec![
            "--placement".into(),
            policy.into(),
            "--task-slots".into(),
            args.slots.to_string(),
            "--snapshot-every".into(),
            args.snapshot_every.max(1).to_string(),
        ];
        let mut p = NodeProcess::spawn(&spec)?;
        let st = p.wait_ready(Duration::from_secs(60), &|| false)?;
        if boot.is_none() {
            boot = Some(spec.dial_addr(&st.peer_id));
        }
        apis.push(Client::new(&spec.api_base())?.with_timeout(Duration::from_secs(30)));
        peers.push(st.peer_id);
        procs.push(p);
        specs.push(spec);
    }
    Ok(Mesh {
        procs,
        specs,
        apis,
        peers,
    })
}

fn wait<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if start.elapsed() > Duration::from_secs(secs) {
            bail!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn blobs_of(api: &Client) -> Vec<String> {
    let Ok(v) = api.get_json("/v1/blobs") else {
        return Vec::new();
    };
    let mut out: Vec<String> = v["blobs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|b| b["size"].as_u64().unwrap_or(0) > 10_000)
                .filter_map(|b| b["hash"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // Same order in every run: by hash.
    out.sort();
    out
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Crash schedule of one run: who is killed when, who is down until when.
struct Churn {
    /// (seconds after the first submission, node index), in time order.
    plan: Vec<(f64, usize)>,
    down: Vec<Option<Instant>>,
    down_for: Duration,
    killed: Vec<String>,
    /// Since when the next kill waits for its victim to be busy.
    postponed: Option<Instant>,
}

/// Longest wait for a worker to be busy before killing it anyway, seconds.
const MAX_POSTPONE_S: f64 = 5.0;

impl Churn {
    fn new(args: &MarketArgs) -> Churn {
        let n = args.nodes;
        let mut plan = Vec::new();
        if args.churn > 0.0 && n >= 2 {
            let k = ((args.churn * n as f64).ceil() as usize).clamp(2, n);
            // node0 (the owner) and data holders spread over the others.
            let holders = n - 1;
            let mut victims = vec![0usize];
            for j in 1..k {
                let v = 1 + ((j - 1) * holders) / (k - 1).max(1);
                if !victims.contains(&v) {
                    victims.push(v);
                }
            }
            // Kills spread over the submission window (at least 12 s).
            let window = (args.tasks as f64 * args.gap_ms as f64 / 1000.0).max(12.0);
            let m = victims.len();
            for (j, v) in victims.into_iter().enumerate() {
                let at = window * (0.15 + 0.6 * j as f64 / (m.max(2) - 1) as f64);
                plan.push((at, v));
            }
        }
        Churn {
            plan,
            down: vec![None; n],
            down_for: Duration::from_secs_f64(args.down_s.max(0.1)),
            killed: Vec::new(),
            postponed: None,
        }
    }

    fn active(&self) -> bool {
        !self.plan.is_empty() || self.down.iter().any(Option::is_some)
    }

    fn is_up(&self, i: usize) -> bool {
        self.down.get(i).is_some_and(Option::is_none)
    }

    /// Carries out the kills and restarts that are due.
    fn step(&mut self, mesh: &mut Mesh, start: Instant) -> Result<()> {
        let t = start.elapsed().as_secs_f64();
        while self.plan.first().is_some_and(|(at, _)| *at <= t) {
            let v = self.plan[0].1;
            // A worker is killed while it runs or queues a task (waiting
            // up to MAX_POSTPONE_S for one), so the crash hits a lease.
            let busy = mesh.apis[v]
                .get_json("/v1/status")
                .ok()
                .and_then(|s| s["tasks"]["load"].as_u64())
                .is_some_and(|l| l > 0);
            let since = *self.postponed.get_or_insert_with(Instant::now);
            if v != 0 && !busy && since.elapsed().as_secs_f64() < MAX_POSTPONE_S {
                break;
            }
            self.postponed = None;
            self.plan.remove(0);
            eprintln!(
                "market: kill -9 node{v} at {:.1} s ({})",
                start.elapsed().as_secs_f64(),
                if busy { "busy" } else { "idle" }
            );
            mesh.procs[v].kill_hard();
            self.down[v] = Some(Instant::now() + self.down_for);
            self.killed.push(format!("node{v}"));
        }
        for v in 0..self.down.len() {
            if self.down[v].is_some_and(|until| Instant::now() >= until) {
                let mut p = NodeProcess::spawn(&mesh.specs[v])?;
                p.wait_ready(Duration::from_secs(60), &|| false)
                    .with_context(|| format!("restarting node{v}"))?;
                eprintln!(
                    "market: node{v} restarted on its data dir at {:.1} s",
                    start.elapsed().as_secs_f64()
                );
                mesh.procs[v] = p;
                self.down[v] = None;
            }
        }
        Ok(())
    }
}

/// What was seen committed for each task: (winner, epoch).
type Seen = HashMap<String, (String, u64)>;

/// Reads the ledgers of the live owners and notes every commit; returns the
/// tasks whose committed winner or epoch changed (or left `committed`).
fn observe(mesh: &Mesh, churn: &Churn, owners: &[usize], seen: &mut Seen, twice: &mut Vec<String>) {
    for &o in owners {
        if !churn.is_up(o) {
            continue;
        }
        let Ok(v) = mesh.apis[o].get_json("/v1/tasks?limit=1000") else {
            continue;
        };
        for r in v["tasks"].as_array().into_iter().flatten() {
            let Some(id) = r["id"].as_str() else { continue };
            let now = (r["state"] == "committed").then(|| {
                (
                    r["winner"].as_str().unwrap_or("").to_string(),
                    r["epoch"].as_u64().unwrap_or(0),
                )
            });
            match (seen.get(id), now) {
                (Some(before), Some(now)) if *before != now => twice.push(id.to_string()),
                (Some(_), None) => twice.push(id.to_string()),
                (None, Some(now)) => {
                    seen.insert(id.to_string(), now);
                }
                _ => {}
            }
        }
    }
}

/// Drops ANSI colour sequences (the node logs in colour).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Counts, per full task id, the log lines of `log` holding `marker`.
fn count_log(log: &Path, marker: &str, into: &mut HashMap<String, usize>) {
    let Ok(text) = std::fs::read_to_string(log) else {
        return;
    };
    for line in text.lines() {
        let line = strip_ansi(line);
        if !line.contains(marker) {
            continue;
        }
        if let Some(i) = line.find(" id=") {
            let id: String = line[i + 4..].chars().take(32).collect();
            if id.len() == 32 {
                *into.entry(id).or_default() += 1;
            }
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Runs the workload under `policy` on a fresh mesh (`run` names its
/// folder).
pub fn run_policy(args: &MarketArgs, bin: &Path, policy: &str, run: &str) -> Result<PolicyResult> {
    let mut mesh = start_mesh(args, bin, policy, run)?;
    let holders = args.nodes.saturating_sub(1).max(1);
    // Every holder has learned its whole stream and kept >= 3 blobs.
    let mut blobs: Vec<Vec<String>> = Vec::new();
    for i in 1..args.nodes {
        let b = wait("data blobs on every holder", 180, || {
            let b = blobs_of(&mesh.apis[i]);
            (b.len() >= 3).then_some(b)
        })?;
        blobs.push(b);
    }
    {
        let owner = &mesh.apis[0];
        wait("node0 sees every node offering task slots", 60, || {
            let v = owner.get_json("/v1/mesh").ok()?;
            let ok = mesh.peers[1..].iter().all(|p| {
                v["nodes"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|e| e["peer_id"] == p.as_str() && e["task_slots"].as_u64() >= Some(1))
                })
            });
            ok.then_some(())
        })?;
    }
    // Let every node hear everyone's status before placing anything.
    std::thread::sleep(Duration::from_secs(3));
    let mut churn = Churn::new(args);
    let churning = churn.active();
    let mut seen = Seen::new();
    let mut twice = Vec::new();
    let mut last_look = Instant::now();
    // (owner index, task id) of every acknowledged task.
    let mut ids: Vec<(usize, String)> = Vec::new();
    let mut holder_of = Vec::new();
    let start = Instant::now();
    for t in 0..args.tasks {
        let h = t % holders;
        let hb = &blobs[h];
        let k = (t / holders) * 2;
        let inputs: Vec<Value> = (0..2)
            .map(|j| json!({"hash": hb[(k + j) % hb.len()], "holders": [mesh.peers[h + 1]]}))
            .collect();
        let mut task = match t % 4 {
            0 => json!({"kind": "train", "model": "ht", "inputs": inputs}),
            1 => json!({"kind": "evaluate", "model": "nb", "holdout": 0.3, "inputs": inputs}),
            2 => json!({"kind": "select", "models": ["nb", "ht", "lr"], "inputs": inputs}),
            _ => json!({"kind": "train", "model": "nb", "inputs": inputs}),
        };
        task["deadline_s"] = json!(300);
        let mut tries = 0;
        let (o, id) = loop {
            churn.step(&mut mesh, start)?;
            // node0 owns the tasks; while it is down, the first live node.
            let o = (0..args.nodes).find(|&i| churn.is_up(i)).unwrap_or(0);
            let got = match mesh.apis[o].post_json("/v1/tasks", &task) {
                Ok(r) if r.status == 201 => Some(r.json()?),
                Ok(r) if !churning => bail!("submit: HTTP {}: {}", r.status, r.text()),
                Err(e) if !churning => return Err(e.context("submitting a task")),
                // Under churn a listed holder may be down: try again.
                Ok(_) | Err(_) => None,
            };
            if let Some(v) = got {
                let id = v["tasks"][0]["id"]
                    .as_str()
                    .context("no task id")?
                    .to_string();
                break (o, id);
            }
            tries += 1;
            if tries > 120 {
                bail!("task {t} could not be submitted to any live node");
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        ids.push((o, id));
        holder_of.push(mesh.peers[h + 1].clone());
        let until = Instant::now() + Duration::from_millis(args.gap_ms);
        loop {
            churn.step(&mut mesh, start)?;
            if churning && last_look.elapsed() > Duration::from_secs(1) {
                let owners: Vec<usize> = (0..args.nodes).collect();
                observe(&mesh, &churn, &owners, &mut seen, &mut twice);
                last_look = Instant::now();
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let mut owners: Vec<usize> = ids.iter().map(|(o, _)| *o).collect();
    owners.sort_unstable();
    owners.dedup();
    // Crashes still planned happen; everything finishes or the wait ends.
    let wait_start = Instant::now();
    let limit = Duration::from_secs(600);
    loop {
        churn.step(&mut mesh, start)?;
        if churning {
            observe(&mesh, &churn, &owners, &mut seen, &mut twice);
        }
        let mut all_done = !churn.active();
        if all_done {
            for (o, id) in &ids {
                let ok = mesh.apis[*o]
                    .get_json(&format!("/v1/tasks/{id}"))
                    .ok()
                    .is_some_and(|v| v["state"] == "committed" || v["state"] == "failed");
                if !ok {
                    all_done = false;
                    break;
                }
            }
        }
        if all_done {
            break;
        }
        if wait_start.elapsed() > limit {
            if !churning {
                bail!("timed out waiting for every task to finish");
            }
            eprintln!(
                "market: not every task finished within {} s",
                limit.as_secs()
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // Late result fetches settle within a second or two.
    std::thread::sleep(Duration::from_secs(2));
    let mut records: Vec<Value> = Vec::new();
    let mut unknown = 0usize;
    for (o, id) in &ids {
        match mesh.apis[*o].get(&format!("/v1/tasks/{id}")) {
            Ok(r) if r.status == 200 => records.push(r.json()?),
            Ok(r) if r.status == 404 => {
                unknown += 1;
                records.push(json!({"id": id, "state": "unknown"}));
            }
            Ok(r) => bail!("GET task {id}: HTTP {}", r.status),
            Err(e) => return Err(e.context(format!("GET task {id}"))),
        }
    }
    if churning {
        observe(&mesh, &churn, &owners, &mut seen, &mut twice);
    }
    let mut completions: Vec<f64> = records
        .iter()
        .filter(|r| r["state"] == "committed")
        .filter_map(|r| r["completion_ms"].as_f64())
        .collect();
    completions.sort_by(f64::total_cmp);
    let first = records
        .iter()
        .filter_map(|r| r["submitted_unix_ms"].as_u64())
        .min()
        .unwrap_or(0);
    let last = records
        .iter()
        .filter_map(|r| r["finished_unix_ms"].as_u64())
        .max()
        .unwrap_or(0);
    let statuses: Vec<Value> = mesh
        .apis
        .iter()
        .filter_map(|a| a.get_json("/v1/status").ok())
        .collect();
    let bytes_fetched_all_nodes = statuses
        .iter()
        .filter_map(|s| s["tasks"]["bytes_fetched"].as_u64())
        .sum();
    let committed = records.iter().filter(|r| r["state"] == "committed").count();
    let failed = records.iter().filter(|r| r["state"] == "failed").count();
    let churn_result = churning.then(|| {
        let mut starts = HashMap::new();
        let mut commits = HashMap::new();
        for (i, spec) in mesh.specs.iter().enumerate() {
            count_log(&spec.log_path, "market run started", &mut starts);
            if owners.contains(&i) {
                count_log(&spec.log_path, "task committed", &mut commits);
            }
        }
        let mut twice_ids: Vec<String> = twice.clone();
        let mut executions = 0;
        let mut duplicate_executions = 0;
        let mut tasks_run_twice = 0;
        for (_, id) in &ids {
            if commits.get(id).copied().unwrap_or(0) > 1 {
                twice_ids.push(id.clone());
            }
            let n = starts.get(id).copied().unwrap_or(0);
            executions += n;
            duplicate_executions += n.saturating_sub(1);
            tasks_run_twice += usize::from(n > 1);
        }
        twice_ids.sort();
        twice_ids.dedup();
        for id in &twice_ids {
            eprintln!("market: task {id} committed twice");
        }
        let sum = |k: &str| -> u64 { statuses.iter().filter_map(|s| s["tasks"][k].as_u64()).sum() };
        ChurnResult {
            killed: churn.killed.clone(),
            acknowledged: ids.len(),
            owned_elsewhere: ids.iter().filter(|(o, _)| *o != 0).count(),
            committed,
            failed,
            lost: unknown + records.len().saturating_sub(committed + failed + unknown),
            committed_twice: twice_ids.len(),
            executions,
            duplicate_executions,
            tasks_run_twice,
            lease_expiries: sum("lease_expiries"),
            fallbacks: sum("fallbacks"),
            local_restarts: sum("local_restarts"),
            stale_results: sum("stale_results"),
        }
    });
    let result = PolicyResult {
        policy: policy.to_string(),
        tasks: records.len(),
        committed,
        failed,
        mean_completion_ms: if completions.is_empty() {
            0.0
        } else {
            completions.iter().sum::<f64>() / completions.len() as f64
        },
        p95_completion_ms: percentile(&completions, 0.95),
        makespan_ms: last.saturating_sub(first),
        bytes_moved: records
            .iter()
            .filter_map(|r| r["bytes_moved"].as_u64())
            .sum(),
        bytes_fetched_all_nodes,
        ran_on_holder: records
            .iter()
            .zip(&holder_of)
            .filter(|(r, h)| r["winner"].as_str() == Some(h.as_str()))
            .count(),
        churn: churn_result,
    };
    let dump = serde_json::to_vec_pretty(&records).unwrap_or_default();
    let _ = std::fs::write(args.out.join(format!("{run}-tasks.json")), dump);
    drop(mesh);
    Ok(result)
}

/// Medians over the runs of one policy.
#[derive(Debug, Clone, Serialize)]
pub struct PolicyMedian {
    pub policy: String,
    pub runs: usize,
    pub mean_completion_ms: f64,
    pub p95_completion_ms: f64,
    pub makespan_ms: f64,
    pub bytes_moved: f64,
    pub ran_on_holder: f64,
}

/// Every run and the medians per policy.
#[derive(Debug, Clone, Serialize)]
pub struct MarketReport {
    pub runs: Vec<PolicyResult>,
    pub medians: Vec<PolicyMedian>,
}

impl MarketReport {
    /// False when a run with crashes lost a task or committed one twice.
    pub fn ok(&self) -> bool {
        self.runs
            .iter()
            .all(|r| r.churn.as_ref().is_none_or(ChurnResult::ok))
    }
}

/// Runs every policy in turn (`--repeat` times) and prints and writes the
/// comparison.
pub fn run(args: &MarketArgs, bin: &Path) -> Result<MarketReport> {
    if args.nodes < 2 {
        bail!("a market comparison needs at least 2 nodes");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let reps = args.repeat.max(1);
    let mut results = Vec::new();
    for rep in 0..reps {
        for p in &args.policies {
            let name = if reps == 1 {
                p.clone()
            } else {
                format!("{p}.{rep}")
            };
            eprintln!(
                "market: run {}/{reps}: {} tasks under `{p}`",
                rep + 1,
                args.tasks
            );
            let r = run_policy(args, bin, p, &name)?;
            eprintln!(
                "market: {p}: {} committed, mean {:.0} ms, {} bytes moved",
                r.committed, r.mean_completion_ms, r.bytes_moved
            );
            if let Some(c) = &r.churn {
                eprintln!("market: {p}: churn {}", serde_json::to_string(c)?);
            }
            results.push(r);
        }
    }
    println!(
        "{:<13} {:>5} {:>9} {:>6} {:>10} {:>10} {:>11} {:>12} {:>13} {:>8}",
        "policy",
        "tasks",
        "committed",
        "failed",
        "mean_ms",
        "p95_ms",
        "makespan_ms",
        "bytes_moved",
        "bytes_fetched",
        "on_data"
    );
    for r in &results {
        println!(
            "{:<13} {:>5} {:>9} {:>6} {:>10.0} {:>10.0} {:>11} {:>12} {:>13} {:>8}",
            r.policy,
            r.tasks,
            r.committed,
            r.failed,
            r.mean_completion_ms,
            r.p95_completion_ms,
            r.makespan_ms,
            r.bytes_moved,
            r.bytes_fetched_all_nodes,
            r.ran_on_holder
        );
    }
    let mut medians = Vec::new();
    for p in &args.policies {
        let rs: Vec<&PolicyResult> = results.iter().filter(|r| &r.policy == p).collect();
        let m = |f: &dyn Fn(&PolicyResult) -> f64| median(rs.iter().map(|r| f(r)).collect());
        medians.push(PolicyMedian {
            policy: p.clone(),
            runs: rs.len(),
            mean_completion_ms: m(&|r| r.mean_completion_ms),
            p95_completion_ms: m(&|r| r.p95_completion_ms),
            makespan_ms: m(&|r| r.makespan_ms as f64),
            bytes_moved: m(&|r| r.bytes_moved as f64),
            ran_on_holder: m(&|r| r.ran_on_holder as f64),
        });
    }
    if reps > 1 {
        println!("medians over {reps} runs:");
        println!(
            "{:<13} {:>10} {:>10} {:>11} {:>12} {:>8}",
            "policy", "mean_ms", "p95_ms", "makespan_ms", "bytes_moved", "on_data"
        );
        for m in &medians {
            println!(
                "{:<13} {:>10.0} {:>10.0} {:>11.0} {:>12.0} {:>8.1}",
                m.policy,
                m.mean_completion_ms,
                m.p95_completion_ms,
                m.makespan_ms,
                m.bytes_moved,
                m.ran_on_holder
            );
        }
    }
    let mut bad = false;
    for r in &results {
        if let Some(c) = &r.churn {
            println!(
                "churn {:<13} killed {:?}: acknowledged {} committed {} failed {} lost {} committed_twice {} executions {} duplicate_executions {} (tasks run twice {}; lease expiries {}, fallbacks {}, local restarts {}, stale results {})",
                r.policy,
                c.killed,
                c.acknowledged,
                c.committed,
                c.failed,
                c.lost,
                c.committed_twice,
                c.executions,
                c.duplicate_executions,
                c.tasks_run_twice,
                c.lease_expiries,
                c.fallbacks,
                c.local_restarts,
                c.stale_results
            );
            bad |= !c.ok();
        }
    }
    if bad {
        println!("churn check FAILED: a task was lost or committed twice");
    }
    let report = MarketReport {
        runs: results,
        medians,
    };
    let doc = json!({"nodes": args.nodes, "tasks": args.tasks, "gap_ms": args.gap_ms,
        "features": args.features, "snapshot_every": args.snapshot_every, "slots": args.slots,
        "churn": args.churn, "down_s": args.down_s, "report": report});
    std::fs::write(
        args.out.join("market.json"),
        serde_json::to_vec_pretty(&doc).unwrap_or_default(),
    )
    .context("writing market.json")?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runs_per_full_task_id_in_coloured_logs() {
        let dir = std::env::temp_dir().join(format!("shoal-market-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("node.log");
        let id = "0123456789abcdef0123456789abcdef";
        let line = format!(
            "\u{1b}[2m2026-11-23T07:20:32Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m shoal_node::market::auction: market run started \u{1b}[3mid\u{1b}[0m\u{1b}[2m=\u{1b}[0m{id} \u{1b}[3mepoch\u{1b}[0m=e2 role=Bidder\n"
        );
        let other = "INFO task committed task=t01234567 id=ffffffffffffffffffffffffffffffff\n";
        std::fs::write(&log, format!("{line}{other}{line}")).expect("write log");
        let mut starts = HashMap::new();
        count_log(&log, "market run started", &mut starts);
        assert_eq!(starts.get(id), Some(&2));
        assert_eq!(starts.len(), 1);
        let mut commits = HashMap::new();
        count_log(&log, "task committed", &mut commits);
        assert_eq!(commits.len(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn median_of_even_and_odd_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }
}
