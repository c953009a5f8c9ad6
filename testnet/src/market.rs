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
//! ```text
//! cargo build --release -p shoal-node -p shoal-testnet
//! target/release/shoal-testnet market --nodes 5 --tasks 32 --policies auction,random,round_robin
//! ```

use std::path::PathBuf;
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
}

struct Mesh {
    procs: Vec<NodeProcess>,
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

fn start_mesh(args: &MarketArgs, bin: &std::path::Path, policy: &str) -> Result<Mesh> {
    let dir = args.out.join(policy);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let mut ports = PortPicker::default();
    let mut procs = Vec::new();
    let mut apis = Vec::new();
    let mut peers = Vec::new();
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
                "hyperplane:n_features={},seed={i},n=6000",
                args.features
            ));
            spec.rate = Some(0.0);
        }
        spec.extra_args = vec![
            "--placement".into(),
            policy.into(),
            "--task-slots".into(),
            args.slots.to_string(),
            "--snapshot-every".into(),
            "1000".into(),
        ];
        let mut p = NodeProcess::spawn(&spec)?;
        let st = p.wait_ready(Duration::from_secs(60), &|| false)?;
        if boot.is_none() {
            boot = Some(spec.dial_addr(&st.peer_id));
        }
        apis.push(Client::new(&spec.api_base())?.with_timeout(Duration::from_secs(30)));
        peers.push(st.peer_id);
        procs.push(p);
    }
    Ok(Mesh { procs, apis, peers })
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

/// Runs the workload under `policy` on a fresh mesh.
pub fn run_policy(args: &MarketArgs, bin: &std::path::Path, policy: &str) -> Result<PolicyResult> {
    let mesh = start_mesh(args, bin, policy)?;
    let holders = args.nodes.saturating_sub(1).max(1);
    // Every holder has learned its whole stream and kept >= 4 blobs.
    let mut blobs: Vec<Vec<String>> = Vec::new();
    for i in 1..args.nodes {
        let b = wait("data blobs on every holder", 120, || {
            let b = blobs_of(&mesh.apis[i]);
            (b.len() >= 3).then_some(b)
        })?;
        blobs.push(b);
    }
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
    // Let every node hear everyone's status before placing anything.
    std::thread::sleep(Duration::from_secs(3));
    let mut ids = Vec::new();
    let mut holder_of = Vec::new();
    for t in 0..args.tasks {
        let h = t % holders;
        let hb = &blobs[h];
        let k = (t / holders) * 2;
        let inputs: Vec<Value> = (0..2)
            .map(|j| json!({"hash": hb[(k + j) % hb.len()], "holders": [mesh.peers[h + 1]]}))
            .collect();
        let task = match t % 4 {
            0 => json!({"kind": "train", "model": "ht", "inputs": inputs}),
            1 => json!({"kind": "evaluate", "model": "nb", "holdout": 0.3, "inputs": inputs}),
            2 => json!({"kind": "select", "models": ["nb", "ht", "lr"], "inputs": inputs}),
            _ => json!({"kind": "train", "model": "nb", "inputs": inputs}),
        };
        let mut task = task;
        task["deadline_s"] = json!(300);
        let r = owner.post_json("/v1/tasks", &task)?;
        if r.status != 201 {
            bail!("submit: HTTP {}: {}", r.status, r.text());
        }
        let v = r.json()?;
        ids.push(
            v["tasks"][0]["id"]
                .as_str()
                .context("no task id")?
                .to_string(),
        );
        holder_of.push(mesh.peers[h + 1].clone());
        std::thread::sleep(Duration::from_millis(args.gap_ms));
    }
    wait("every task to finish", 600, || {
        for id in &ids {
            let v = owner.get_json(&format!("/v1/tasks/{id}")).ok()?;
            if v["state"] != "committed" && v["state"] != "failed" {
                return None;
            }
        }
        Some(())
    })?;
    // Late result fetches settle within a second or two.
    std::thread::sleep(Duration::from_secs(2));
    let records: Vec<Value> = ids
        .iter()
        .filter_map(|id| owner.get_json(&format!("/v1/tasks/{id}")).ok())
        .collect();
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
    let bytes_fetched_all_nodes = mesh
        .apis
        .iter()
        .filter_map(|a| a.get_json("/v1/status").ok())
        .filter_map(|s| s["tasks"]["bytes_fetched"].as_u64())
        .sum();
    let result = PolicyResult {
        policy: policy.to_string(),
        tasks: records.len(),
        committed: records.iter().filter(|r| r["state"] == "committed").count(),
        failed: records.iter().filter(|r| r["state"] == "failed").count(),
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
    };
    let dump = serde_json::to_vec_pretty(&records).unwrap_or_default();
    let _ = std::fs::write(args.out.join(format!("{policy}-tasks.json")), dump);
    drop(mesh);
    Ok(result)
}

/// Runs every policy in turn and prints and writes the comparison.
pub fn run(args: &MarketArgs, bin: &std::path::Path) -> Result<Vec<PolicyResult>> {
    if args.nodes < 2 {
        bail!("a market comparison needs at least 2 nodes");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut results = Vec::new();
    for p in &args.policies {
        eprintln!("market: running {} tasks under `{p}`", args.tasks);
        let r = run_policy(args, bin, p)?;
        eprintln!(
            "market: {p}: {} committed, mean {:.0} ms, {} bytes moved",
            r.committed, r.mean_completion_ms, r.bytes_moved
        );
        results.push(r);
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
    let doc = json!({"nodes": args.nodes, "tasks": args.tasks, "gap_ms": args.gap_ms,
        "features": args.features, "slots": args.slots, "policies": results});
    std::fs::write(
        args.out.join("market.json"),
        serde_json::to_vec_pretty(&doc).unwrap_or_default(),
    )
    .context("writing market.json")?;
    Ok(results)
}
