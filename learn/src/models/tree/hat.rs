//! The Hoeffding Adaptive Tree (Bifet & Gavaldà 2009, "Adaptive learning
//! from evolving data streams"), as River's
//! `HoeffdingAdaptiveTreeClassifier`.
//!
//! Every node watches its own 0/1 error with ADWIN. When a branch's error
//! rises significantly it starts an alternate tree; once both have seen more
//! than `drift_window_threshold` samples, the alternate replaces the branch
//! if its error is lower by more than a Hoeffding-style bound at
//! `switch_significance`, or is dropped if it is worse by that much.
//! Prediction adds the leaves reached in the main tree and in the alternates
//! on the way, each weighted by `1 / error²`.
//!
//! Defaults are River's (and the shared tree parameters of the
//! [module docs](super)): `bootstrap_sampling` true, `drift_window_threshold`
//! 300, `switch_significance` 0.05, ADWIN with `delta` 0.002. River's seed
//! defaults to none (a fresh random stream); here it is 42 so that runs
//! repeat. The bootstrap generator is CPython's Mersenne Twister
//! ([`super::mersenne`]), so `hat:seed=S` makes the same draws as River's
//! `seed=S` and, with the rest below, the same predictions.
//!
//! River behaviours reproduced that a reader of the paper would not expect:
//! - Bootstrap weights are Poisson(1) draws, but a draw of 0 keeps weight 1.
//! - An alternate tree learns with its main branch's parent link, so the
//!   alternate's first split replaces the main branch at once instead of
//!   growing a separate subtree first.
//! - When a branch's ADWIN fires while its error went down, the branch only
//!   resets its error estimate.
//! - A replaced subtree (switched out, or overtaken by its alternate's
//!   split) still passes the current sample down before it is dropped, and
//!   a switched-out subtree loses its own alternates first; both only matter
//!   for the bootstrap draws they consume.

use serde::{Deserialize, Serialize};

use super::leaf::{argmax_in, Leaf, SplitOutcome};
use super::mersenne::PyRandom;
use super::split::{Route, SplitTest};
use super::TreeParams;
use crate::classifier::{vec_bytes, Classifier};
use crate::drift::Adwin;
use crate::schema::Schema;

/// Running mean of the 0/1 error (River's `stats.Mean`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
struct ErrorMean {
    n: f64,
    mean: f64,
}

impl ErrorMean {
    fn update(&mut self, x: f64) {
        self.n += 1.0;
        self.mean += (x - self.mean) / self.n;
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AdaLeaf {
    leaf: Leaf,
    adwin: Adwin,
    error: ErrorMean,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct AdaBranch {
    test: SplitTest,
    children: Vec<u32>,
    depth: usize,
    adwin: Adwin,
    error: ErrorMean,
    alternate: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Leaf(AdaLeaf),
    Branch(AdaBranch),
    /// A freed arena slot, reused by the next allocation.
    Free,
}

impl Node {
    fn heap_bytes(&self) -> usize {
        match self {
            Node::Leaf(l) => l.leaf.heap_bytes() + l.adwin.memory_bytes(),
            Node::Branch(b) => {
                b.test.heap_bytes() + vec_bytes(&b.children) + b.adwin.memory_bytes()
            }
            Node::Free => 0,
        }
    }
}

/// Where a node hangs: a parent's child slot, or the root.
type Slot = Option<(u32, usize)>;

/// Parameters of [`HoeffdingAdaptiveTree`] beyond the shared ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HatParams {
    /// Poisson(1) bootstrap weights at the leaves (true).
    pub bootstrap_sampling: bool,
    /// Samples both trees must see before they are compared (300).
    pub drift_window_threshold: f64,
    /// Significance of the switch test (0.05).
    pub switch_significance: f64,
    /// ADWIN delta of every node (0.002).
    pub adwin_delta: f64,
    /// Seed of the bootstrap generator (42).
    pub seed: u64,
}

impl Default for HatParams {
    fn default() -> Self {
        HatParams {
            bootstrap_sampling: true,
            drift_window_threshold: 300.0,
            switch_significance: 0.05,
            adwin_delta: 0.002,
            seed: 42,
        }
    }
}

/// Hoeffding Adaptive Tree classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "HatSnapshot")]
pub struct HoeffdingAdaptiveTree {
    params: TreeParams,
    hat: HatParams,
    /// Bootstrap generator: CPython's Mersenne Twister, so that `seed`
    /// reproduces River's draws.
    rng: PyRandom,
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: Option<u32>,
    n_classes: usize,
    weight_seen: f64,
    growth_allowed: bool,
    active_leaf_bytes: f64,
    inactive_leaf_bytes: f64,
    overhead_fraction: f64,
    n_alternate_trees: u64,
    n_pruned_alternate_trees: u64,
    n_switch_alternate_trees: u64,
    #[serde(skip)]
    scratch: Vec<f64>,
}

/// The serialized form of [`HoeffdingAdaptiveTree`], checked before it
/// becomes a tree: every node reachable from the root (children and
/// alternates) exists, is live and is reached once; free slots are free and
/// listed once. A corrupt snapshot is an error, never a panic or a cycle.
#[derive(Deserialize)]
struct HatSnapshot {
    params: TreeParams,
    hat: HatParams,
    rng: PyRandom,
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: Option<u32>,
    n_classes: usize,
    weight_seen: f64,
    growth_allowed: bool,
    active_leaf_bytes: f64,
    inactive_leaf_bytes: f64,
    overhead_fraction: f64,
    n_alternate_trees: u64,
    n_pruned_alternate_trees: u64,
    n_switch_alternate_trees: u64,
}

impl TryFrom<HatSnapshot> for HoeffdingAdaptiveTree {
    type Error = String;

    fn try_from(s: HatSnapshot) -> Result<Self, String> {
        let n = s.nodes.len();
        let mut seen = vec![false; n];
        let mut stack: Vec<u32> = s.root.into_iter().collect();
        while let Some(i) = stack.pop() {
            let i = i as usize;
            if i >= n || seen[i] {
                return Err(format!("hat: node {i} is missing or shared"));
            }
            seen[i] = true;
            match &s.nodes[i] {
                Node::Free => return Err(format!("hat: reachable node {i} is free")),
                Node::Leaf(l) => {
                    if !l.leaf.is_consistent() {
                        return Err(format!("hat: leaf {i} is inconsistent"));
                    }
                }
                Node::Branch(b) => {
                    if !b.test.is_consistent(b.children.len()) {
                        return Err(format!("hat: branch {i} has a bad split test"));
                    }
                    stack.extend(b.children.iter().copied());
                    stack.extend(b.alternate);
                }
            }
        }
        let mut listed = vec![false; n];
        for &f in &s.free {
            let f = f as usize;
            if f >= n || listed[f] || !matches!(s.nodes[f], Node::Free) {
                return Err(format!("hat: free slot {f} is not free"));
            }
            listed[f] = true;
        }
        Ok(HoeffdingAdaptiveTree {
            params: s.params,
            hat: s.hat,
            rng: s.rng,
            nodes: s.nodes,
            free: s.free,
            root: s.root,
            n_classes: s.n_classes,
            weight_seen: s.weight_seen,
            growth_allowed: s.growth_allowed,
            active_leaf_bytes: s.active_leaf_bytes,
            inactive_leaf_bytes: s.inactive_leaf_bytes,
            overhead_fraction: s.overhead_fraction,
            n_alternate_trees: s.n_alternate_trees,
            n_pruned_alternate_trees: s.n_pruned_alternate_trees,
            n_switch_alternate_trees: s.n_switch_alternate_trees,
            scratch: Vec::new(),
        })
    }
}

impl HoeffdingAdaptiveTree {
    pub fn new(params: TreeParams, hat: HatParams) -> Self {
        HoeffdingAdaptiveTree {
            params,
            rng: PyRandom::new(hat.seed),
            hat,
            nodes: Vec::new(),
            free: Vec::new(),
            root: None,
            n_classes: 0,
            weight_seen: 0.0,
            growth_allowed: true,
            active_leaf_bytes: 0.0,
            inactive_leaf_bytes: 0.0,
            overhead_fraction: 1.0,
            n_alternate_trees: 0,
            n_pruned_alternate_trees: 0,
            n_switch_alternate_trees: 0,
            scratch: Vec::new(),
        }
    }

    /// River's defaults, with the nominal features of `schema`.
    pub fn for_schema(schema: &Schema) -> Self {
        Self::new(TreeParams::for_schema(schema), HatParams::default())
    }

    /// Alternate trees started, dropped, and swapped in so far.
    pub fn alternate_counts(&self) -> (u64, u64, u64) {
        (
            self.n_alternate_trees,
            self.n_pruned_alternate_trees,
            self.n_switch_alternate_trees,
        )
    }

    /// Live nodes in the main tree and its alternates.
    pub fn n_nodes(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    fn new_leaf(&self, stats: Vec<f64>, keys: Vec<u32>, depth: usize) -> Node {
        Node::Leaf(AdaLeaf {
            leaf: Leaf::new(stats, keys, depth),
            adwin: Adwin::new(self.hat.adwin_delta),
            error: ErrorMean::default(),
        })
    }

    fn alloc(&mut self, node: Node) -> u32 {
        if let Some(i) = self.free.pop() {
            self.nodes[i as usize] = node;
            i
        } else {
            self.nodes.push(node);
            (self.nodes.len() - 1) as u32
        }
    }

    /// Free a node, its descendants and their alternates.
    fn free_subtree(&mut self, idx: u32) {
        let mut stack = vec![idx];
        while let Some(i) = stack.pop() {
            let node = std::mem::replace(&mut self.nodes[i as usize], Node::Free);
            match node {
                Node::Free => continue,
                Node::Branch(b) => {
                    stack.extend(b.children.iter().copied());
                    stack.extend(b.alternate);
                }
                Node::Leaf(_) => {}
            }
            self.free.push(i);
        }
    }

    fn slot(&self, s: Slot) -> Option<u32> {
        match s {
            None => self.root,
            Some((p, k)) => match &self.nodes[p as usize] {
                Node::Branch(b) => b.children.get(k).copied(),
                _ => None,
            },
        }
    }

    fn set_slot(&mut self, s: Slot, idx: u32) {
        match s {
            None => self.root = Some(idx),
            Some((p, k)) => {
                if let Node::Branch(b) = &mut self.nodes[p as usize] {
                    if let Some(c) = b.children.get_mut(k) {
                        *c = idx;
                    }
                }
            }
        }
    }

    /// Total leaf weight under `idx` in the main tree (River's branch
    /// `total_weight`, computed on demand: only missing values need it).
    fn subtree_weight(&self, idx: u32) -> f64 {
        match &self.nodes[idx as usize] {
            Node::Leaf(l) => l.leaf.total_weight(),
            Node::Branch(b) => b.children.iter().map(|&c| self.subtree_weight(c)).sum(),
            Node::Free => 0.0,
        }
    }

    /// Position of the heaviest child (first on ties, left for binary).
    fn most_common_child(&self, b: &AdaBranch) -> usize {
        let mut best = 0;
        let mut best_w = f64::NEG_INFINITY;
        for (k, &c) in b.children.iter().enumerate() {
            let w = self.subtree_weight(c);
            if w > best_w {
                best = k;
                best_w = w;
            }
        }
        best
    }

    /// Leaf reached from `idx` following the main tree only.
    fn main_leaf(&self, mut idx: u32, x: &[f64]) -> u32 {
        loop {
            match &self.nodes[idx as usize] {
                Node::Branch(b) => {
                    let k = match b.test.route(x) {
                        Route::Child(c) => c,
                        Route::Missing | Route::NewValue(_) => self.most_common_child(b),
                    };
                    idx = b.children[k];
                }
                _ => return idx,
            }
        }
    }

    /// A leaf's prediction, scaled by `1 / (sum · error²)` as River (left
    /// unscaled while the error is zero), added into `out`. False when the
    /// leaf has seen nothing.
    fn add_leaf_prediction(
        &self,
        idx: u32,
        x: &[f64],
        out: &mut [f64],
        heap_buf: &mut Vec<f64>,
    ) -> bool {
        let Node::Leaf(l) = &self.nodes[idx as usize] else {
            return false;
        };
        // Up to 32 classes the leaf's distribution lives on the stack, so
        // predicting allocates nothing.
        let n = l.leaf.stats.len();
        let mut stack_buf = [0.0f64; 32];
        let buf: &mut [f64] = if n <= stack_buf.len() {
            &mut stack_buf[..n]
        } else {
            heap_buf.clear();
            heap_buf.resize(n, 0.0);
            &mut heap_buf[..]
        };
        if !l
            .leaf
            .distribution(x, self.params.leaf_prediction, &self.params, buf)
        {
            return false;
        }
        let mut sum = 0.0;
        for &c in &l.leaf.keys {
            sum += buf[c as usize];
        }
        let e = l.error.mean;
        let factor = sum * e * e;
        let scale = if factor != 0.0 && !factor.is_nan() {
            1.0 / factor
        } else {
            1.0
        };
        for (o, &p) in out.iter_mut().zip(buf.iter()) {
            *o += p * scale;
        }
        true
    }

    /// Class predicted by leaf `idx` (River's argmax over the leaf's dict).
    fn leaf_vote(&mut self, idx: u32, x: &[f64]) -> Option<usize> {
        let mut buf = std::mem::take(&mut self.scratch);
        let Node::Leaf(l) = &self.nodes[idx as usize] else {
            self.scratch = buf;
            return None;
        };
        buf.clear();
        buf.resize(l.leaf.stats.len(), 0.0);
        let vote = if l
            .leaf
            .distribution(x, self.params.leaf_prediction, &self.params, &mut buf)
        {
            argmax_in(&buf, &l.leaf.keys)
        } else {
            None
        };
        self.scratch = buf;
        vote
    }

    fn learn_node(&mut self, idx: u32, x: &[f64], y: usize, w: f64, slot: Slot) {
        match &self.nodes[idx as usize] {
            Node::Leaf(_) => self.learn_leaf(idx, x, y, w, slot),
            Node::Branch(_) => self.learn_branch(idx, x, y, w, slot),
            Node::Free => {}
        }
    }

    fn learn_leaf(&mut self, idx: u32, x: &[f64], y: usize, mut w: f64, slot: Slot) {
        if self.hat.bootstrap_sampling {
            let k = self.rng.poisson(1.0);
            if k > 0 {
                w *= f64::from(k);
            }
        }
        let wrong = if self.leaf_vote(idx, x) == Some(y) {
            0.0
        } else {
            1.0
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        let max_depth = self.params.max_depth_or_max();
        let mut attempt_at = None;
        if let Node::Leaf(l) = &mut self.nodes[idx as usize] {
            let old_error = l.error.mean;
            let drift = l.adwin.add(wrong);
            l.error.update(wrong);
            if drift && old_error > l.error.mean {
                l.error = ErrorMean::default();
            }
            l.leaf.learn(x, y, w, &self.params, true, &mut scratch);
            let seen = l.leaf.total_weight();
            if seen - l.leaf.last_split_attempt_at >= self.params.grace_period {
                if l.leaf.depth >= max_depth {
                    l.leaf.deactivate();
                } else if l.leaf.active {
                    attempt_at = Some(seen);
                }
            }
        }
        self.scratch = scratch;
        if let Some(seen) = attempt_at {
            self.attempt_to_split(idx, slot);
            if let Node::Leaf(l) = &mut self.nodes[idx as usize] {
                l.leaf.last_split_attempt_at = seen;
            }
        }
    }

    fn attempt_to_split(&mut self, idx: u32, slot: Slot) {
        let Node::Leaf(l) = &mut self.nodes[idx as usize] else {
            return;
        };
        match l.leaf.attempt_split(&self.params, false) {
            SplitOutcome::Keep => {}
            SplitOutcome::PrePrune => {
                l.leaf.deactivate();
                self.enforce_size_limit();
            }
            SplitOutcome::Split(s) => {
                let Some(test) = s.test else { return };
                if s.children.is_empty() {
                    return;
                }
                let depth = l.leaf.depth;
                let mut children = Vec::with_capacity(s.children.len());
                let mut keys = s.children_keys.into_iter();
                for mut stats in s.children {
                    if stats.len() < self.n_classes {
                        stats.resize(self.n_classes, 0.0);
                    }
                    let leaf = self.new_leaf(stats, keys.next().unwrap_or_default(), depth + 1);
                    children.push(self.alloc(leaf));
                }
                let branch = self.alloc(Node::Branch(AdaBranch {
                    test,
                    children,
                    depth,
                    adwin: Adwin::new(self.hat.adwin_delta),
                    error: ErrorMean::default(),
                    alternate: None,
                }));
                let old = self.slot(slot);
                self.set_slot(slot, branch);
                // An alternate leaf's slot holds its main branch, which the
                // caller frees; an ordinary leaf is freed here.
                if old == Some(idx) {
                    self.free_subtree(idx);
                }
                self.enforce_size_limit();
            }
        }
    }

    fn learn_branch(&mut self, idx: u32, x: &[f64], y: usize, w: f64, slot: Slot) {
        let leaf = self.main_leaf(idx, x);
        let wrong = if self.leaf_vote(leaf, x) == Some(y) {
            0.0
        } else {
            1.0
        };
        let thr = self.hat.drift_window_threshold;
        let sig = self.hat.switch_significance;
        let depth;
        let mut start_alternate = false;
        let mut switch = false;
        let mut prune = None;
        {
            let alt_error = match &self.nodes[idx as usize] {
                Node::Branch(b) => b.alternate.and_then(|a| match &self.nodes[a as usize] {
                    Node::Leaf(l) => Some(l.error),
                    Node::Branch(ab) => Some(ab.error),
                    Node::Free => None,
                }),
                _ => return,
            };
            let Node::Branch(b) = &mut self.nodes[idx as usize] else {
                return;
            };
            depth = b.depth;
            let old_error = b.error.mean;
            let mut change = b.adwin.add(wrong);
            b.error.update(wrong);
            if change && old_error > b.error.mean {
                // The error went down: nothing to adapt to.
                b.error = ErrorMean::default();
                change = false;
            }
            if change {
                b.error = ErrorMean::default();
                start_alternate = true;
            } else if let (Some(a), Some(ae)) = (b.alternate, alt_error) {
                if ae.n > thr && b.error.n > thr {
                    let old_rate = b.error.mean;
                    let alt_rate = ae.mean;
                    let n = 1.0 / ae.n + 1.0 / b.error.n;
                    let bound = (2.0 * old_rate * (1.0 - old_rate) * (2.0 / sig).ln() * n).sqrt();
                    if bound < old_rate - alt_rate {
                        switch = true;
                    } else if bound < alt_rate - old_rate {
                        b.alternate = None;
                        prune = Some(a);
                    }
                }
            }
        }
        if let Some(a) = prune {
            self.free_subtree(a);
            self.n_pruned_alternate_trees += 1;
        }
        if start_alternate {
            // The alternate starts at this branch's depth, so that it does
            // not skip a level when it replaces the branch.
            let leaf = self.new_leaf(Vec::new(), Vec::new(), depth);
            let a = self.alloc(leaf);
            if let Node::Branch(b) = &mut self.nodes[idx as usize] {
                if let Some(old) = b.alternate.replace(a) {
                    self.free_subtree(old);
                }
            }
            self.n_alternate_trees += 1;
        }
        let alternate = match &self.nodes[idx as usize] {
            Node::Branch(b) => b.alternate,
            _ => None,
        };
        // A branch that lost its place (to its alternate, or to the split of
        // its alternate) still passes the sample down its old subtree before
        // it is freed, as River does: the leaves there draw bootstrap weights,
        // which keeps the random stream in step with River's.
        let mut detached = false;
        if switch {
            if let Some(a) = alternate {
                if let Node::Branch(b) = &mut self.nodes[idx as usize] {
                    b.alternate = None;
                }
                self.set_slot(slot, a);
                self.n_switch_alternate_trees += 1;
                self.drop_descendant_alternates(idx);
                // River lets the new subtree learn this sample only when it
                // became the root.
                if slot.is_none() {
                    self.learn_node(a, x, y, w, None);
                }
                detached = true;
            }
        } else if let Some(a) = alternate {
            self.learn_node(a, x, y, w, slot);
            // The alternate split and took this branch's place.
            detached = self.slot(slot) != Some(idx);
        }
        self.learn_children(idx, x, y, w);
        if detached {
            self.free_subtree(idx);
        }
    }

    /// Drop the alternates of every branch below `idx` (River's
    /// `kill_tree_children` on a replaced subtree).
    fn drop_descendant_alternates(&mut self, idx: u32) {
        let mut stack: Vec<u32> = match &self.nodes[idx as usize] {
            Node::Branch(b) => b.children.clone(),
            _ => return,
        };
        while let Some(i) = stack.pop() {
            let alt = match &mut self.nodes[i as usize] {
                Node::Branch(b) => {
                    stack.extend(b.children.iter().copied());
                    b.alternate.take()
                }
                _ => None,
            };
            if let Some(a) = alt {
                self.free_subtree(a);
                self.n_pruned_alternate_trees += 1;
            }
        }
    }

    /// Pass a sample from branch `idx` to the child it routes to (a new
    /// child for a new category, the heaviest one for a missing value).
    fn learn_children(&mut self, idx: u32, x: &[f64], y: usize, w: f64) {
        let (route, depth) = match &self.nodes[idx as usize] {
            Node::Branch(b) => (b.test.route(x), b.depth),
            _ => return,
        };
        let k = match route {
            Route::Child(c) => c,
            Route::NewValue(v) => {
                let leaf = self.new_leaf(Vec::new(), Vec::new(), depth + 1);
                let c = self.alloc(leaf);
                let Node::Branch(b) = &mut self.nodes[idx as usize] else {
                    return;
                };
                b.test.add_slot(v, b.children.len());
                b.children.push(c);
                b.children.len() - 1
            }
            Route::Missing => match &self.nodes[idx as usize] {
                Node::Branch(b) => self.most_common_child(b),
                _ => return,
            },
        };
        let child = match &self.nodes[idx as usize] {
            Node::Branch(b) => b.children[k],
            _ => return,
        };
        self.learn_node(child, x, y, w, Some((idx, k)));
    }

    /// Leaves for memory management, left to right, with the alternates of
    /// non-root branches (River's `iter_leaves`).
    fn leaves_in_order(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let Some(root) = self.root else { return out };
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            match &self.nodes[i as usize] {
                Node::Leaf(_) => out.push(i),
                Node::Branch(b) => {
                    for &c in b.children.iter().rev() {
                        if let Node::Branch(cb) = &self.nodes[c as usize] {
                            if let Some(a) = cb.alternate {
                                stack.push(a);
                            }
                        }
                        stack.push(c);
                    }
                }
                Node::Free => {}
            }
        }
        out
    }

    fn enforce_size_limit(&mut self) {
        let leaves = self.leaves_in_order();
        let n_inactive = leaves
            .iter()
            .filter(|&&i| matches!(&self.nodes[i as usize], Node::Leaf(l) if !l.leaf.active))
            .count();
        let max_bytes = self.params.max_bytes();
        let tree_size = self.overhead_fraction
            * (self.active_leaf_bytes + n_inactive as f64 * self.inactive_leaf_bytes);
        if (n_inactive > 0 || tree_size > max_bytes) && self.params.stop_mem_management {
            self.growth_allowed = false;
            return;
        }
        let mut ranked: Vec<(f64, u32)> = leaves
            .iter()
            .map(|&i| match &self.nodes[i as usize] {
                Node::Leaf(l) => (l.leaf.promise(), i),
                _ => (0.0, i),
            })
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let n = ranked.len();
        let cutoff = n - super::max_active_leaves(
            n,
            self.active_leaf_bytes,
            self.inactive_leaf_bytes,
            self.overhead_fraction,
            max_bytes,
        );
        let max_depth = self.params.max_depth_or_max();
        for (k, &(_, i)) in ranked.iter().enumerate() {
            if let Node::Leaf(l) = &mut self.nodes[i as usize] {
                if k < cutoff {
                    if l.leaf.active {
                        l.leaf.deactivate();
                    }
                } else if !l.leaf.active && l.leaf.depth < max_depth {
                    l.leaf.activate();
                }
            }
        }
    }

    fn estimate_model_size(&mut self) {
        let (mut n_active, mut n_inactive) = (0usize, 0usize);
        let (mut active_bytes, mut inactive_bytes) = (0usize, 0usize);
        for i in self.leaves_in_order() {
            if let Node::Leaf(l) = &self.nodes[i as usize] {
                let b = std::mem::size_of::<Node>() + self.nodes[i as usize].heap_bytes();
                if l.leaf.active {
                    n_active += 1;
                    active_bytes += b;
                } else {
                    n_inactive += 1;
                    inactive_bytes += b;
                }
            }
        }
        let actual = self.memory_bytes() as f64;
        super::update_size_estimates(
            [(n_active, active_bytes), (n_inactive, inactive_bytes)],
            actual,
            [&mut self.active_leaf_bytes, &mut self.inactive_leaf_bytes],
            &mut self.overhead_fraction,
        );
        if actual > self.params.max_bytes() {
            self.enforce_size_limit();
        }
    }
}

impl Classifier for HoeffdingAdaptiveTree {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        // Leaf weights are at most `weight_seen` times a bootstrap draw (in
        // practice below 20): this margin keeps every sum finite.
        if !(weight > 0.0 && ((self.weight_seen + weight) * 1e3).is_finite()) {
            return;
        }
        self.n_classes = self.n_classes.max(y + 1);
        self.weight_seen += weight;
        let root = match self.root {
            Some(r) => r,
            None => {
                let leaf = self.new_leaf(Vec::new(), Vec::new(), 0);
                let r = self.alloc(leaf);
                self.root = Some(r);
                r
            }
        };
        self.learn_node(root, x, y, weight, None);
        let period = self.params.memory_estimate_period as f64;
        if self.weight_seen % period == 0.0 {
            self.estimate_model_size();
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.resize(self.n_classes, 0.0);
        let Some(mut idx) = self.root else { return };
        let mut buf = Vec::new();
        // Walk the main tree; every alternate met on the way votes too.
        loop {
            match &self.nodes[idx as usize] {
                Node::Branch(b) => {
                    if let Some(a) = b.alternate {
                        let leaf = self.main_leaf(a, x);
                        self.add_leaf_prediction(leaf, x, out, &mut buf);
                    }
                    let k = match b.test.route(x) {
                        Route::Child(c) => c,
                        Route::Missing | Route::NewValue(_) => self.most_common_child(b),
                    };
                    idx = b.children[k];
                }
                Node::Leaf(_) => {
                    self.add_leaf_prediction(idx, x, out, &mut buf);
                    break;
                }
                Node::Free => break,
            }
        }
        crate::classifier::normalize(out);
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.params.heap_bytes()
            + vec_bytes(&self.nodes)
            + self.nodes.iter().map(Node::heap_bytes).sum::<usize>()
            + vec_bytes(&self.free)
            + vec_bytes(&self.scratch)
            + self.rng.heap_bytes()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Two-feature threshold concept; `swapped` flips the labels.
    fn sample(rng: &mut Rng, swapped: bool) -> ([f64; 2], usize) {
        let x = [rng.next_f64(), rng.next_f64()];
        let y = usize::from(x[0] + 0.5 * x[1] > 0.7);
        (x, if swapped { 1 - y } else { y })
    }

    #[test]
    fn recovers_after_an_abrupt_concept_swap() {
        let mut hat = HoeffdingAdaptiveTree::new(TreeParams::default(), HatParams::default());
        let mut ht = super::super::HoeffdingTree::new(TreeParams::default());
        let mut rng = Rng::new(3);
        for _ in 0..10_000 {
            let (x, y) = sample(&mut rng, false);
            hat.learn_one(&x, y, 1.0);
            ht.learn_one(&x, y, 1.0);
        }
        // Labels flip; score the window from 1000 to 3000 samples after.
        let (mut right_hat, mut right_ht) = (0, 0);
        for i in 0..3000 {
            let (x, y) = sample(&mut rng, true);
            if i >= 1000 {
                right_hat += usize::from(hat.predict_one(&x) == Some(y));
                right_ht += usize::from(ht.predict_one(&x) == Some(y));
            }
            hat.learn_one(&x, y, 1.0);
            ht.learn_one(&x, y, 1.0);
        }
        eprintln!("after the swap: HAT {right_hat}/2000, HT {right_ht}/2000");
        assert!(
            right_hat > 1700,
            "HAT accuracy after the swap: {right_hat}/2000"
        );
        assert!(
            right_hat > right_ht + 200,
            "HAT {right_hat} vs HT {right_ht}"
        );
        let (started, _, _) = hat.alternate_counts();
        assert!(started > 0);
    }

    #[test]
    fn serde_round_trip_keeps_predictions_and_randomness() {
        let schema = Schema::numeric(2, &["0", "1"]);
        let mut m = crate::model::build_str("hat:grace_period=50,seed=5", &schema).unwrap();
        let mut rng = Rng::new(8);
        for i in 0..3000 {
            let (x, y) = sample(&mut rng, i > 1500);
            m.learn_one(&x, y, 1.0);
        }
        let bytes = postcard::to_allocvec(&m).unwrap();
        let mut back: crate::Model = postcard::from_bytes(&bytes).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back_json: crate::Model = serde_json::from_str(&json).unwrap();
        for _ in 0..300 {
            let (x, _) = sample(&mut rng, true);
            let p = m.predict_proba_one(&x);
            assert_eq!(back.predict_proba_one(&x), p);
            // serde_json may round a float's last bit; postcard is exact.
            let pj = back_json.predict_proba_one(&x);
            assert!(pj.iter().zip(&p).all(|(a, b)| (a - b).abs() < 1e-9));
        }
        // Learning (bootstrap draws included) continues identically.
        for _ in 0..1000 {
            let (x, y) = sample(&mut rng, true);
            m.learn_one(&x, y, 1.0);
            back.learn_one(&x, y, 1.0);
            assert_eq!(back.predict_proba_one(&x), m.predict_proba_one(&x));
        }
    }

    #[test]
    fn survives_bad_input_and_frees_nodes() {
        let mut t = HoeffdingAdaptiveTree::new(
            TreeParams {
                grace_period: 30.0,
                nominal: vec![false, true],
                ..TreeParams::default()
            },
            HatParams::default(),
        );
        let mut rng = Rng::new(4);
        for i in 0..6000 {
            let swapped = (i / 1500) % 2 == 1;
            let (x, y) = sample(&mut rng, swapped);
            let mut v = vec![x[0], (x[1] * 4.0).floor(), rng.next_f64()];
            if i % 9 == 0 {
                v[0] = f64::NAN;
            }
            if i % 10 == 0 {
                v[1] = 2.5; // not a category code: missing
            }
            v.truncate(1 + i % 3);
            let y = if i == 4000 { 5 } else { y };
            let p = t.predict_proba_one(&v);
            assert!(p.iter().all(|q| q.is_finite()));
            t.learn_one(&v, y, 1.0);
        }
        assert_eq!(t.n_classes(), 6);
        assert_eq!(t.predict_proba_one(&[]).len(), 6);
        let (started, _, _) = t.alternate_counts();
        assert!(started > 0, "the label swaps should start alternates");
        // Every live node is reachable from the root (no leaked slots) and
        // no reachable node is free.
        let mut seen = 0;
        let mut stack: Vec<u32> = t.root.into_iter().collect();
        while let Some(i) = stack.pop() {
            seen += 1;
            match &t.nodes[i as usize] {
                Node::Branch(b) => {
                    stack.extend(b.children.iter().copied());
                    stack.extend(b.alternate);
                }
                Node::Leaf(_) => {}
                Node::Free => panic!("reachable node {i} is free"),
            }
        }
        assert_eq!(seen, t.n_nodes());
        assert!(t.memory_bytes() > std::mem::size_of::<HoeffdingAdaptiveTree>());
    }
}
