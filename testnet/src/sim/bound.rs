//! The fewest bytes a placement must move when every node has to finish
//! its share of the work within a horizon.
//!
//! The plain bytes lower bound (run each task where most of its inputs
//! are) ignores capacity: when the devices holding the data cannot do all
//! of its work in time, some of it has to move. For a horizon `H`, a
//! placement `x` (task → node) can only finish by `H` if every node `j`
//! gets at most `C_j = speed_j · slots_j · H` reference-ms of work. The
//! fewest bytes over such placements is an integer program; its
//! Lagrangian relaxation gives, for any prices `μ_j ≥ 0` per reference-ms,
//!
//! `L(μ) = Σ_t min_j (bytes_tj + μ_j · work_t) − Σ_j μ_j · C_j ≤ OPT`
//!
//! (weak duality), so the best `L` found by a few hundred projected
//! subgradient steps is a valid lower bound, and `μ = 0` gives back the
//! plain one. Arrival times are relaxed away, which only lowers the bound.

use super::topology::Topology;
use super::workload::Workload;

/// Subgradient steps.
const STEPS: usize = 100;
/// Step size, as a fraction of a typical task's bytes per reference-ms;
/// larger steps oscillate (on the 50-node lan, 100 steps reach 98 % of
/// what 2000 do).
const STEP: f64 = 0.25;

/// One task as the bound sees it.
struct Item {
    work: f64,
    owner: u32,
    /// Bytes moved when run on a node that holds none of the inputs and
    /// is not the owner.
    far: f64,
    output: f64,
    /// `(holder, input bytes it holds)`, one entry per holder.
    held: Vec<(u32, f64)>,
}

impl Item {
    /// Bytes moved when the task runs on node `j`.
    fn bytes_on(&self, j: u32) -> f64 {
        let here = self
            .held
            .iter()
            .find(|(h, _)| *h == j)
            .map_or(0.0, |(_, b)| *b);
        self.far - here - if j == self.owner { self.output } else { 0.0 }
    }

    /// The holder or owner (the nodes where the task moves fewer than
    /// `far` bytes) accepted by `ok` where it moves the fewest bytes, the
    /// lowest id among equals, with those bytes.
    fn nearest(&self, mut ok: impl FnMut(u32) -> bool) -> Option<(f64, u32)> {
        let mut best: Option<(f64, u32)> = None;
        for j in self.held.iter().map(|(h, _)| *h).chain([self.owner]) {
            if !ok(j) {
                continue;
            }
            let b = self.bytes_on(j);
            if best.is_none_or(|(bb, bj)| b < bb || (b == bb && j < bj)) {
                best = Some((b, j));
            }
        }
        best
    }
}

/// Reference-ms of work each node of `topo` does within `horizon_ms`.
fn capacities(topo: &Topology, horizon_ms: f64) -> Vec<f64> {
    topo.nodes
        .iter()
        .map(|d| d.speed * f64::from(d.slots) * horizon_ms.max(0.0))
        .collect()
}

/// Lower bound on the bytes moved by any placement in which every node
/// finishes its work within a horizon: the tasks as the bound sees them,
/// prepared once for bounds at several horizons ([`BytesBound::within`]).
pub struct BytesBound {
    items: Vec<Item>,
    mean_work: f64,
    // Price scale: bytes per reference-ms of a typical task.
    scale: f64,
}

impl BytesBound {
    /// Prepares the tasks of `work`.
    pub fn new(work: &Workload) -> BytesBound {
        let items: Vec<Item> = work
            .tasks
            .iter()
            .map(|t| {
                let mut held: Vec<(u32, f64)> = Vec::with_capacity(t.inputs.len());
                let mut total = 0.0;
                for b in &t.inputs {
                    let blob = &work.blobs[*b as usize];
                    total += blob.size as f64;
                    match held.iter_mut().find(|(h, _)| *h == blob.holder) {
                        Some(e) => e.1 += blob.size as f64,
                        None => held.push((blob.holder, blob.size as f64)),
                    }
                }
                Item {
                    work: t.cost as f64,
                    owner: t.owner,
                    far: total + t.output as f64,
                    output: t.output as f64,
                    held,
                }
            })
            .collect();
        let len = items.len().max(1) as f64;
        let mean_bytes = items.iter().map(|i| i.far).sum::<f64>() / len;
        let mean_work = items.iter().map(|i| i.work).sum::<f64>() / len;
        BytesBound {
            items,
            mean_work,
            scale: mean_bytes / mean_work.max(1.0),
        }
    }

    /// The bound when every node of `topo` must finish within `horizon_ms`.
    pub fn within(&self, topo: &Topology, horizon_ms: f64) -> f64 {
        let n = topo.len();
        let items = &self.items;
        if n == 0 || items.is_empty() {
            return 0.0;
        }
        let cap = capacities(topo, horizon_ms);
        let mut mu = vec![0.0f64; n];
        let mut best = f64::NEG_INFINITY;
        let mut load = vec![0.0f64; n];
        let mut order: Vec<u32> = (0..n as u32).collect();
        for step in 0..STEPS {
            order.sort_by(|a, b| mu[*a as usize].total_cmp(&mu[*b as usize]).then(a.cmp(b)));
            load.iter_mut().for_each(|x| *x = 0.0);
            let mut value = 0.0;
            for it in items {
                // The cheapest node that is neither a holder nor the owner.
                let generic = order
                    .iter()
                    .copied()
                    .find(|j| *j != it.owner && !it.held.iter().any(|(h, _)| h == j));
                let mut pick: Option<(f64, u32)> =
                    generic.map(|j| (it.far + mu[j as usize] * it.work, j));
                for j in it.held.iter().map(|(h, _)| *h).chain([it.owner]) {
                    let v = it.bytes_on(j) + mu[j as usize] * it.work;
                    if pick.is_none_or(|(best, bj)| v < best || (v == best && j < bj)) {
                        pick = Some((v, j));
                    }
                }
                if let Some((v, j)) = pick {
                    value += v;
                    load[j as usize] += it.work;
                }
            }
            value -= mu.iter().zip(&cap).map(|(m, c)| m * c).sum::<f64>();
            best = best.max(value);
            // Raise the price where the node is over its capacity, lower it
            // (not below 0) where it is under.
            // Where nothing is over capacity at zero prices, the plain bound
            // is the answer and the prices would stay at zero.
            if step == 0 && load.iter().zip(&cap).all(|(l, c)| l <= c) {
                break;
            }
            let eta = STEP * self.scale / ((step + 1) as f64).sqrt();
            for j in 0..n {
                let g = (load[j] - cap[j]) / cap[j].max(self.mean_work);
                mu[j] = (mu[j] + eta * g).max(0.0);
            }
        }
        best.max(0.0)
    }

    /// Bytes moved by one placement that does fit every node's work within
    /// `horizon_ms` (arrival times relaxed away, as in [`BytesBound::within`]),
    /// or `None` when the greedy below finds none. Any such placement moves
    /// at least [`BytesBound::within`] bytes, so the two bracket the fewest
    /// possible: when they are close, the lower bound is tight.
    ///
    /// Start from the fewest bytes for every task; then, over the tasks of
    /// overloaded nodes in order of extra bytes per reference-ms moved
    /// (cheapest first), move each one whose node is still over capacity to
    /// the cheapest node with room: another holder or the owner when they
    /// have it, otherwise the node with the most room left.
    pub fn placement_within(&self, topo: &Topology, horizon_ms: f64) -> Option<f64> {
        let n = topo.len();
        let items = &self.items;
        if n == 0 {
            return Some(0.0);
        }
        let cap = capacities(topo, horizon_ms);
        // Every task where it moves the fewest bytes (the owner always
        // qualifies, so there is one).
        let mut at: Vec<u32> = Vec::with_capacity(items.len());
        let mut load = vec![0.0f64; n];
        let mut total = 0.0;
        for it in items {
            let (b, j) = it
                .nearest(|_| true)
                .unwrap_or_else(|| (it.bytes_on(it.owner), it.owner));
            at.push(j);
            load[j as usize] += it.work;
            total += b;
        }
        // Moving off node `j` costs at least `far - bytes_on(j)` when no
        // nearer node has room; order by that per reference-ms.
        let mut movable: Vec<(f64, usize)> = items
            .iter()
            .enumerate()
            .filter(|(t, _)| {
                let j = at[*t] as usize;
                load[j] > cap[j]
            })
            .map(|(t, it)| ((it.far - it.bytes_on(at[t])) / it.work.max(1.0), t))
            .collect();
        movable.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        // Nodes by room left, most first, for tasks with no near node free;
        // an entry is current while its node's version is unchanged.
        let room_of = |load: &[f64], j: u32| (cap[j as usize] - load[j as usize]).max(0.0) as u64;
        let mut version = vec![0u32; n];
        let mut by_room: std::collections::BinaryHeap<(u64, u32, u32)> =
            (0..n as u32).map(|j| (room_of(&load, j), j, 0)).collect();
        for (_, t) in movable {
            let it = &items[t];
            let from = at[t];
            if load[from as usize] <= cap[from as usize] {
                continue;
            }
            let here = it.bytes_on(from);
            let mut best =
                it.nearest(|j| j != from && cap[j as usize] - load[j as usize] >= it.work);
            if best.is_none() {
                while let Some(&(room, j, v)) = by_room.peek() {
                    if v != version[j as usize] {
                        by_room.pop();
                        continue;
                    }
                    if (room as f64) < it.work {
                        return None;
                    }
                    best = Some((it.bytes_on(j), j));
                    break;
                }
            }
            let (b, to) = best?;
            load[from as usize] -= it.work;
            load[to as usize] += it.work;
            for j in [from, to] {
                version[j as usize] += 1;
                by_room.push((room_of(&load, j), j, version[j as usize]));
            }
            at[t] = to;
            total += b - here;
        }
        Some(total)
    }
}

#[cfg(test)]
mod tests {
    use super::super::rng::Rng;
    use super::super::topology::{Topology, TopologyKind};
    use super::super::workload::{Workload, WorkloadConfig};
    use super::*;

    #[test]
    fn less_time_means_more_bytes_and_never_below_the_plain_bound() {
        let mut r = Rng::new(3);
        let topo = Topology::build(TopologyKind::Urban, 40, &mut r);
        let work = Workload::generate(
            &topo,
            &WorkloadConfig {
                tasks: 800,
                load: 0.6,
                shape: Default::default(),
            },
            &mut r,
        );
        let plain: f64 = work.tasks.iter().map(|t| t.lb_bytes as f64).sum();
        let span = work.tasks.last().map_or(0.0, |t| t.arrival);
        let bound = BytesBound::new(&work);
        let loose = bound.within(&topo, 1e12);
        let tight = bound.within(&topo, span);
        // With all the time in the world the plain bound is the answer.
        assert!((loose - plain).abs() <= 1e-6 * plain, "{loose} vs {plain}");
        // Finishing with the arrivals forces data off the slow devices.
        assert!(tight > 1.05 * plain, "{tight} vs {plain}");
        // Never more than moving every input and output.
        let all: f64 = work
            .tasks
            .iter()
            .map(|t| {
                t.inputs
                    .iter()
                    .map(|b| work.blobs[*b as usize].size as f64)
                    .sum::<f64>()
                    + t.output as f64
            })
            .sum();
        assert!(tight <= all);
        // A placement that keeps up exists and moves at least the bound,
        // and with all the time in the world it is the plain one.
        let placed = bound
            .placement_within(&topo, span)
            .expect("a placement that keeps up");
        assert!(
            placed >= tight * (1.0 - 1e-9) && placed <= all,
            "{placed} vs {tight}"
        );
        let relaxed = bound.placement_within(&topo, 1e12).expect("a placement");
        assert!(
            (relaxed - plain).abs() <= 1e-6 * plain,
            "{relaxed} vs {plain}"
        );
        // No placement fits in no time.
        assert_eq!(bound.placement_within(&topo, 1.0), None);
    }
}
