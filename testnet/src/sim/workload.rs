//! What the nodes are asked to do: blobs born on devices (Pareto sizes) and
//! tasks arriving as a Poisson process, with their lower bounds.

use shoal_protocol::TaskKind;

use super::rng::Rng;
use super::topology::Topology;

/// 1 MB.
pub const MB: f64 = 1_000_000.0;

/// A data blob and the device it was born on.
#[derive(Debug, Clone)]
pub struct Blob {
    /// Node holding it.
    pub holder: u32,
    /// Size in bytes.
    pub size: u64,
}

/// One task of the workload.
#[derive(Debug, Clone)]
pub struct TaskDef {
    /// Arrival time, ms.
    pub arrival: f64,
    /// Node that submits (owns) it.
    pub owner: u32,
    /// Kind.
    pub kind: TaskKind,
    /// Input blobs (indices into [`Workload::blobs`]).
    pub inputs: Vec<u32>,
    /// Compute cost, reference-ms.
    pub cost: u64,
    /// Peak memory, bytes.
    pub memory: u64,
    /// Output size, bytes.
    pub output: u64,
    /// Deadline, ms after arrival.
    pub deadline: f64,
    /// Lower bound on its completion time: the best node with every link to
    /// itself free, ms.
    pub lb_ms: f64,
    /// Fewest bytes any placement moves.
    pub lb_bytes: u64,
}

/// Knobs of the workload.
#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Tasks.
    pub tasks: usize,
    /// Offered compute load as a fraction of total capacity (speed x slots).
    pub load: f64,
    /// How much data a task carries against how much it computes.
    pub shape: Shape,
}

/// How heavy the data and the compute of a task are. The default is the
/// workload every result in docs/market.md was measured on; the knobs move
/// it towards data-heavy (larger blobs, cheaper compute) or compute-heavy
/// tasks, to see where a placement's trade between time and bytes holds.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Shape {
    /// Scale of the Pareto blob sizes (their minimum), bytes.
    pub blob_min_bytes: f64,
    /// Multiplies every task kind's base compute cost.
    pub compute_scale: f64,
    /// Multiplies every task kind's compute cost per input megabyte.
    pub per_mb_scale: f64,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            blob_min_bytes: 0.25 * MB,
            compute_scale: 1.0,
            per_mb_scale: 1.0,
        }
    }
}

impl Shape {
    /// Checks the knobs, naming the flag at fault.
    pub fn check(&self) -> anyhow::Result<()> {
        let ok = |x: f64, lo: f64, hi: f64| x.is_finite() && (lo..=hi).contains(&x);
        if !ok(self.blob_min_bytes, 1_000.0, BLOB_CAP) {
            anyhow::bail!(
                "--blob-kb must be in 1..={}, got {}",
                BLOB_CAP / 1_000.0,
                self.blob_min_bytes / 1_000.0
            );
        }
        if !ok(self.compute_scale, 0.001, 1_000.0) {
            anyhow::bail!(
                "--compute-scale must be in 0.001..=1000, got {}",
                self.compute_scale
            );
        }
        if !ok(self.per_mb_scale, 0.0, 1_000.0) {
            anyhow::bail!(
                "--per-mb-scale must be in 0..=1000, got {}",
                self.per_mb_scale
            );
        }
        Ok(())
    }
}

/// Largest blob, bytes.
pub const BLOB_CAP: f64 = 64.0 * MB;

/// Blobs and tasks.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Every blob.
    pub blobs: Vec<Blob>,
    /// Every task, in arrival order.
    pub tasks: Vec<TaskDef>,
    /// Mean inter-arrival time, ms.
    pub mean_gap_ms: f64,
}

impl Workload {
    /// Generates a workload for `topo`.
    pub fn generate(topo: &Topology, cfg: &WorkloadConfig, r: &mut Rng) -> Workload {
        let n = topo.len();
        let members = topo.members();
        // Data is born on sensing devices, not on servers.
        let devices: Vec<u32> = (0..n as u32)
            .filter(|i| topo.nodes[*i as usize].class != shoal_protocol::SpeedClass::Server)
            .collect();
        let devices = if devices.is_empty() {
            (0..n as u32).collect()
        } else {
            devices
        };
        let mut blobs = Vec::new();
        let shape = cfg.shape;
        let size = |r: &mut Rng| r.pareto(shape.blob_min_bytes, 1.5, BLOB_CAP).round() as u64;
        for d in &devices {
            for _ in 0..3 {
                let s = size(r);
                blobs.push(Blob {
                    holder: *d,
                    size: s,
                });
            }
        }
        let mut tasks = Vec::with_capacity(cfg.tasks);
        for _ in 0..cfg.tasks {
            let owner = r.below(n) as u32;
            let kind = match r.f64() {
                x if x < 0.4 => TaskKind::Train,
                x if x < 0.65 => TaskKind::Evaluate,
                x if x < 0.9 => TaskKind::Predict,
                _ => TaskKind::Select,
            };
            let count = match r.f64() {
                x if x < 0.5 => 1,
                x if x < 0.8 => 2,
                _ => 3,
            };
            let mut inputs = Vec::with_capacity(count);
            for _ in 0..count {
                if r.chance(0.6) || blobs.is_empty() {
                    // Fresh data, usually from a device near the owner.
                    let cell = &members[topo.nodes[owner as usize].cell as usize];
                    let local: Vec<u32> = cell
                        .iter()
                        .copied()
                        .filter(|i| devices.binary_search(i).is_ok())
                        .collect();
                    let holder = if r.chance(0.7) && !local.is_empty() {
                        local[r.below(local.len())]
                    } else {
                        devices[r.below(devices.len())]
                    };
                    blobs.push(Blob {
                        holder,
                        size: size(r),
                    });
                    inputs.push((blobs.len() - 1) as u32);
                } else {
                    let b = r.below(blobs.len()) as u32;
                    if !inputs.contains(&b) {
                        inputs.push(b);
                    }
                }
            }
            let in_mb: f64 = inputs
                .iter()
                .map(|b| blobs[*b as usize].size as f64 / MB)
                .sum();
            let (base, per_mb) = match kind {
                TaskKind::Train => (8_000.0, 400.0),
                TaskKind::Evaluate => (3_000.0, 200.0),
                TaskKind::Predict => (1_500.0, 100.0),
                TaskKind::Select => (15_000.0, 600.0),
            };
            let cost = (r.lognormal(base * shape.compute_scale, 0.5)
                + per_mb * shape.per_mb_scale * in_mb)
                .round()
                .max(1.0) as u64;
            let memory = ((128.0 * MB + 2.0 * in_mb * MB) as u64).min(400 << 20);
            let output = match kind {
                TaskKind::Train => r.range(0.02, 0.5) * MB,
                TaskKind::Evaluate => 2_000.0,
                TaskKind::Predict => (in_mb * MB * 0.02).max(1_000.0),
                TaskKind::Select => 50_000.0,
            } as u64;
            tasks.push(TaskDef {
                arrival: 0.0,
                owner,
                kind,
                inputs,
                cost,
                memory,
                output,
                deadline: 0.0,
                lb_ms: 0.0,
                lb_bytes: 0,
            });
        }
        // Poisson arrivals at the rate that offers `load` of the capacity.
        let mean_cost =
            tasks.iter().map(|t| t.cost as f64).sum::<f64>() / tasks.len().max(1) as f64;
        let rate = cfg.load.max(1e-3) * topo.capacity_total() / mean_cost.max(1.0);
        let mean_gap_ms = 1.0 / rate;
        let mut t = 0.0;
        for task in &mut tasks {
            t += r.exp(mean_gap_ms);
            task.arrival = t;
        }
        let mut w = Workload {
            blobs,
            tasks,
            mean_gap_ms,
        };
        w.lower_bounds(topo);
        w
    }

    /// Fills in each task's lower bounds and deadline.
    fn lower_bounds(&mut self, topo: &Topology) {
        let n = topo.len();
        // Fastest first: a node's time is at least its compute time, so the
        // scan stops at the first node too slow to beat the best so far.
        let mut by_speed: Vec<usize> = (0..n).collect();
        by_speed.sort_by(|a, b| topo.nodes[*b].speed.total_cmp(&topo.nodes[*a].speed));
        for t in &mut self.tasks {
            let mut best_ms = f64::INFINITY;
            for &j in &by_speed {
                let d = &topo.nodes[j];
                if t.cost as f64 / d.speed >= best_ms {
                    break;
                }
                let mut fetch: f64 = 0.0;
                for b in &t.inputs {
                    let blob = &self.blobs[*b as usize];
                    let h = blob.holder as usize;
                    if h != j {
                        let x =
                            2.0 * topo.latency(h, j) + blob.size as f64 / topo.path_capacity(h, j);
                        fetch = fetch.max(x);
                    }
                }
                let o = t.owner as usize;
                let out = if o == j {
                    0.0
                } else {
                    topo.latency(j, o) + t.output as f64 / topo.path_capacity(j, o)
                };
                best_ms = best_ms.min(fetch + t.cost as f64 / d.speed + out);
            }
            // Bytes: a holder or the owner moves less than any other node,
            // which moves every input and the output.
            let bytes_on = |j: usize| -> u64 {
                let inputs: u64 = t
                    .inputs
                    .iter()
                    .map(|b| &self.blobs[*b as usize])
                    .filter(|blob| blob.holder as usize != j)
                    .map(|blob| blob.size)
                    .sum();
                inputs + if j == t.owner as usize { 0 } else { t.output }
            };
            let mut near: Vec<usize> = t
                .inputs
                .iter()
                .map(|b| self.blobs[*b as usize].holder as usize)
                .chain([t.owner as usize])
                .filter(|j| *j < n)
                .collect();
            near.sort_unstable();
            near.dedup();
            let mut best_bytes = near.iter().map(|j| bytes_on(*j)).min().unwrap_or(u64::MAX);
            if near.len() < n {
                // Some node is neither a holder nor the owner.
                best_bytes = best_bytes.min(bytes_on(usize::MAX));
            }
            t.lb_ms = best_ms;
            t.lb_bytes = best_bytes;
            // Generous: queues are expected, but not forever.
            t.deadline = 300_000.0 + 20.0 * best_ms;
        }
    }
}
