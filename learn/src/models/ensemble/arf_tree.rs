//! The member tree of the Adaptive Random Forest: a Hoeffding tree whose
//! every leaf watches only a random subset of the features, drawn when the
//! leaf first learns (River's `ARFHoeffdingTreeClassifier` with its
//! `RandomLeaf` nodes). Splits, leaf predictions and missing-value routing
//! are the Hoeffding tree's ([`crate::models::tree`]), reusing its leaves:
//! a feature outside the subset is an absent, disabled observer, so it is
//! neither observed, nor split on, nor used by naive Bayes.
//!
//! The parameters ([`TreeParams`]) live in the forest and are passed in, so
//! ten trees do not hold ten copies. Memory management (`max_size`) is not
//! applied to forest members: River's forest default checks it every 2
//! million samples against 100 MiB per tree, which the benchmark streams
//! never reach.

use serde::{Deserialize, Serialize};

use crate::classifier::{normalize, vec_bytes};
use crate::models::tree::leaf::{Leaf, SplitOutcome};
use crate::models::tree::observer::Observer;
use crate::models::tree::split::{Route, SplitTest};
use crate::models::tree::{LeafPrediction, TreeParams};
use crate::rng::Rng;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Branch {
    test: SplitTest,
    children: Vec<u32>,
    depth: usize,
    weight: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Leaf(Leaf),
    Branch(Branch),
}

impl Node {
    fn weight(&self) -> f64 {
        match self {
            Node::Leaf(l) => l.total_weight(),
            Node::Branch(b) => b.weight,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Node::Leaf(l) => l.heap_bytes(),
            Node::Branch(b) => b.test.heap_bytes() + vec_bytes(&b.children),
        }
    }
}

/// A Hoeffding tree with a random feature subset per leaf.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "RandomTreeSnapshot")]
pub struct RandomTree {
    /// Features each leaf watches (at most; fewer when `x` is shorter).
    max_features: usize,
    nodes: Vec<Node>,
    n_classes: usize,
    weight_seen: f64,
    rng: Rng,
    #[serde(skip)]
    scratch: Vec<f64>,
    #[serde(skip)]
    path: Vec<u32>,
}

/// Serialized form, checked like the Hoeffding tree's (children after their
/// parent and in range, consistent tests and leaves).
#[derive(Deserialize)]
struct RandomTreeSnapshot {
    max_features: usize,
    nodes: Vec<Node>,
    n_classes: usize,
    weight_seen: f64,
    rng: Rng,
}

impl TryFrom<RandomTreeSnapshot> for RandomTree {
    type Error = String;

    fn try_from(s: RandomTreeSnapshot) -> Result<Self, String> {
        for (i, node) in s.nodes.iter().enumerate() {
            match node {
                Node::Branch(b) => {
                    if !b.test.is_consistent(b.children.len()) {
                        return Err(format!("arf tree: branch {i} has a bad split test"));
                    }
                    if b.children
                        .iter()
                        .any(|&c| c as usize <= i || c as usize >= s.nodes.len())
                    {
                        return Err(format!("arf tree: branch {i} has a child out of order"));
                    }
                }
                Node::Leaf(l) => {
                    if !l.is_consistent() {
                        return Err(format!("arf tree: leaf {i} is inconsistent"));
                    }
                }
            }
        }
        Ok(RandomTree {
            max_features: s.max_features,
            nodes: s.nodes,
            n_classes: s.n_classes,
            weight_seen: s.weight_seen,
            rng: s.rng,
            scratch: Vec::new(),
            path: Vec::new(),
        })
    }
}

impl RandomTree {
    pub fn new(max_features: usize, seed: u64) -> Self {
        RandomTree {
            max_features: max_features.max(1),
            nodes: Vec::new(),
            n_classes: 0,
            weight_seen: 0.0,
            rng: Rng::new(seed),
            scratch: Vec::new(),
            path: Vec::new(),
        }
    }

    pub fn n_nodes(&self) -> usize {
        self.nodes.len()
    }

    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn most_common_child(&self, b: &Branch) -> u32 {
        let mut best = b.children[0];
        let mut best_w = self.nodes[best as usize].weight();
        for &c in &b.children[1..] {
            let w = self.nodes[c as usize].weight();
            if w > best_w {
                best = c;
                best_w = w;
            }
        }
        best
    }

    fn sort_to_leaf(&self, x: &[f64]) -> Option<&Leaf> {
        let mut idx = 0usize;
        loop {
            match self.nodes.get(idx)? {
                Node::Leaf(l) => return Some(l),
                Node::Branch(b) => {
                    idx = match b.test.route(x) {
                        Route::Child(c) => b.children[c] as usize,
                        Route::Missing | Route::NewValue(_) => self.most_common_child(b) as usize,
                    }
                }
            }
        }
    }

    /// Class probabilities into `out` (resized to the classes seen; all
    /// zero before anything was learnt).
    pub fn predict_proba_into(&self, x: &[f64], p: &TreeParams, out: &mut Vec<f64>) {
        out.clear();
        out.resize(self.n_classes, 0.0);
        let Some(leaf) = self.sort_to_leaf(x) else {
            return;
        };
        if !leaf.distribution(x, p.leaf_prediction, p, out) {
            normalize(out);
        }
    }

    /// Draw the leaf's feature subset: `max_features` of the `n` features
    /// of `x`; the others become disabled observers.
    fn choose_subset(leaf: &mut Leaf, n: usize, k: usize, rng: &mut Rng) {
        if n == 0 {
            return;
        }
        let mut watch = vec![false; n];
        for i in rng.sample_indices(n, k.min(n)) {
            watch[i] = true;
        }
        leaf.observers = vec![Observer::Absent; n];
        leaf.disabled = (0..n).filter(|&i| !watch[i]).collect();
    }

    /// Learn one sample with weight `w` (the Poisson count of bagging).
    pub fn learn(&mut self, x: &[f64], y: usize, w: f64, p: &TreeParams) {
        if !(w > 0.0 && (self.weight_seen + w).is_finite()) {
            return;
        }
        self.n_classes = self.n_classes.max(y + 1);
        self.weight_seen += w;
        if self.nodes.is_empty() {
            self.nodes
                .push(Node::Leaf(Leaf::new(Vec::new(), Vec::new(), 0)));
        }
        self.path.clear();
        let mut idx = 0usize;
        let mut stuck = false;
        loop {
            let next = match &self.nodes[idx] {
                Node::Leaf(_) => break,
                Node::Branch(b) => match b.test.route(x) {
                    Route::Child(c) => b.children[c] as usize,
                    Route::Missing => {
                        stuck = true;
                        self.most_common_child(b) as usize
                    }
                    Route::NewValue(v) => {
                        stuck = true;
                        let depth = b.depth + 1;
                        let child = self.nodes.len();
                        self.nodes
                            .push(Node::Leaf(Leaf::new(Vec::new(), Vec::new(), depth)));
                        if let Node::Branch(b) = &mut self.nodes[idx] {
                            b.test.add_slot(v, b.children.len());
                            b.children.push(child as u32);
                        }
                        child
                    }
                },
            };
            self.path.push(idx as u32);
            idx = next;
        }
        let count_nba = p.leaf_prediction == LeafPrediction::NaiveBayesAdaptive;
        let k = self.max_features;
        let Self {
            nodes,
            scratch,
            path,
            rng,
            ..
        } = self;
        for &b in path.iter() {
            if let Node::Branch(b) = &mut nodes[b as usize] {
                b.weight += w;
            }
        }
        let mut attempt_at = None;
        if let Node::Leaf(leaf) = &mut nodes[idx] {
            if leaf.active && leaf.observers.is_empty() {
                Self::choose_subset(leaf, x.len(), k, rng);
            }
            leaf.learn(x, y, w, p, count_nba, scratch);
            if !stuck && leaf.active {
                if leaf.depth >= p.max_depth.unwrap_or(usize::MAX) {
                    leaf.deactivate();
                } else {
                    let seen = leaf.total_weight();
                    if seen - leaf.last_split_attempt_at >= p.grace_period {
                        attempt_at = Some(seen);
                    }
                }
            }
        }
        if let Some(seen) = attempt_at {
            self.attempt_to_split(idx, p);
            if let Node::Leaf(leaf) = &mut self.nodes[idx] {
                leaf.last_split_attempt_at = seen;
            }
        }
    }

    fn attempt_to_split(&mut self, idx: usize, p: &TreeParams) {
        let disable_poor = p.leaf_prediction == LeafPrediction::MajorityClass;
        let Node::Leaf(leaf) = &mut self.nodes[idx] else {
            return;
        };
        match leaf.attempt_split(p, disable_poor) {
            SplitOutcome::Keep => {}
            SplitOutcome::PrePrune => leaf.deactivate(),
            SplitOutcome::Split(s) => {
                let Some(test) = s.test else { return };
                if s.children.is_empty() {
                    return;
                }
                let old_w = leaf.total_weight();
                let depth = leaf.depth;
                let mut children = Vec::with_capacity(s.children.len());
                let mut new_w = 0.0;
                let mut keys = s.children_keys.into_iter();
                for mut stats in s.children {
                    if stats.len() < self.n_classes {
                        stats.resize(self.n_classes, 0.0);
                    }
                    let leaf = Leaf::new(stats, keys.next().unwrap_or_default(), depth + 1);
                    new_w += leaf.total_weight();
                    children.push(self.nodes.len() as u32);
                    self.nodes.push(Node::Leaf(leaf));
                }
                self.nodes[idx] = Node::Branch(Branch {
                    test,
                    children,
                    depth,
                    weight: new_w,
                });
                let dw = new_w - old_w;
                for &b in &self.path {
                    if let Node::Branch(b) = &mut self.nodes[b as usize] {
                        b.weight += dw;
                    }
                }
            }
        }
    }

    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + vec_bytes(&self.nodes)
            + self.nodes.iter().map(Node::heap_bytes).sum::<usize>()
            + vec_bytes(&self.scratch)
            + vec_bytes(&self.path)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn leaves_watch_only_their_subset() {
        let p = TreeParams {
            grace_period: 50.0,
            delta: 0.01,
            ..TreeParams::default()
        };
        let mut t = RandomTree::new(2, 7);
        let mut rng = Rng::new(3);
        for _ in 0..3000 {
            let x: Vec<f64> = (0..6).map(|_| rng.uniform(0.0, 1.0)).collect();
            let y = usize::from(x[0] + x[1] + x[2] > 1.5);
            t.learn(&x, y, 1.0 + rng.below(3) as f64, &p);
        }
        assert!(t.n_nodes() > 1);
        for n in &t.nodes {
            if let Node::Leaf(l) = n {
                let watched = l
                    .observers
                    .iter()
                    .filter(|o| !matches!(o, Observer::Absent))
                    .count();
                assert!(watched <= 2, "{watched}");
            }
        }
        let mut out = Vec::new();
        t.predict_proba_into(&[0.9, 0.9, 0.9, 0.5, 0.5, 0.5], &p, &mut out);
        assert!(out[1] > 0.5, "{out:?}");
    }
}
