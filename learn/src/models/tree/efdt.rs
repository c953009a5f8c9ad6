//! The Extremely Fast Decision Tree, or Hoeffding Anytime Tree
//! (Manapragada, Webb & Salehi 2018, "Extremely fast decision tree"), as
//! River's `ExtremelyFastDecisionTreeClassifier`.
//!
//! Where the Hoeffding tree waits until the best split beats the second
//! best, EFDT splits a leaf as soon as the best split beats *not splitting*
//! (a merit of 0) by more than the Hoeffding bound. That is quicker, and
//! sometimes wrong, so EFDT revisits its choices: every branch keeps
//! learning the class weights and attribute observers of the samples that
//! pass through it, and once it has seen `min_samples_reevaluate` more
//! weight it ranks the splits again. If the null split (merit 0) beats the
//! best split by more than the bound, the subtree is replaced by a leaf
//! (which inherits the branch's statistics); with information gain, whose
//! merits are not negative, this needs a best candidate that is invalid
//! for a nominal feature (merit `-inf`). If another feature beats the current one by the bound (or
//! the bound fell below `tau`) the subtree is replaced by a split on it
//! with fresh leaves; if the current feature is still best but the bound is
//! below `tau`, the branch takes the new test (a new threshold) and keeps
//! its children.
//!
//! Leaves, observers, split criteria and split tests are the Hoeffding
//! tree's ([`super::leaf::Leaf`] also holds a branch's statistics). The
//! parameters are `ht`'s (River's defaults, see the [module docs](super))
//! plus `min_samples_reevaluate` (20).
//!
//! River behaviours kept so that accuracies compare one to one:
//! - A leaf's candidates are only the observers' best splits; the leaf is
//!   deactivated (pre-pruned) when the best of them is a null suggestion,
//!   e.g. while one class holds more than `max_share_to_split`, and only
//!   the memory check after another split reactivates it (so a lone root
//!   pre-pruned early stays a single inactive leaf).
//! - A branch's re-evaluation counter restarts only when its split
//!   changes, so a branch whose split survives is re-evaluated on every
//!   later sample, not every `min_samples_reevaluate`. This is most of
//!   EFDT's cost (River's docs note it is slower than a Hoeffding tree).
//! - A subtree replaced by a leaf, or by a split on another feature, stops
//!   the sample there: the branches and leaf below do not see it again.
//! - When a branch takes a new test on its own feature, River builds a new
//!   branch object but finishes the sample with the old one, so a split,
//!   collapse or replacement of one of its children decided on that same
//!   sample is lost (the child's bookkeeping, a pre-pruning and the memory
//!   check still happen). Reproduced here: with the same decisions the
//!   trees stay identical.
//!
//! One deliberate difference: when a multiway nominal branch is re-evaluated
//! and its own feature is still best, River re-creates the branch with the
//! new suggestion's category order over the old children (which may
//! mismatch); here the branch keeps its test.

use serde::{Deserialize, Serialize};

use super::leaf::Leaf;
use super::split::{hoeffding_bound, Route, SplitTest, Suggestion};
use super::{LeafPrediction, TreeParams};
use crate::classifier::{vec_bytes, Classifier};
use crate::schema::Schema;
use crate::spec::{ParamReader, SpecError};

/// A branch that keeps learning: its test, its children, and the class
/// weights and observers of every sample that passed through it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Branch {
    test: SplitTest,
    children: Vec<u32>,
    depth: usize,
    /// Statistics of the samples seen here (always active).
    stats: Leaf,
    /// Weight seen here when the split was last made or changed.
    last_reevaluation_at: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum Node {
    Leaf(Leaf),
    Branch(Branch),
    /// A freed arena slot, reused by the next allocation.
    Free,
}

impl Node {
    /// River's `total_weight`: an EFDT branch counts its own statistics.
    fn weight(&self) -> f64 {
        match self {
            Node::Leaf(l) => l.total_weight(),
            Node::Branch(b) => b.stats.total_weight(),
            Node::Free => 0.0,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Node::Leaf(l) => l.heap_bytes(),
            Node::Branch(b) => b.test.heap_bytes() + vec_bytes(&b.children) + b.stats.heap_bytes(),
            Node::Free => 0,
        }
    }
}

/// Parameters of [`Efdt`] beyond the shared tree ones.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EfdtParams {
    /// Weight a branch sees before its split is re-evaluated (20).
    pub min_samples_reevaluate: f64,
}

impl Default for EfdtParams {
    fn default() -> Self {
        EfdtParams {
            min_samples_reevaluate: 20.0,
        }
    }
}

impl EfdtParams {
    pub(crate) fn from_reader(r: &mut ParamReader<'_>) -> Result<Self, SpecError> {
        Ok(EfdtParams {
            min_samples_reevaluate: r.usize_in("min_samples_reevaluate", 20, 1, 1 << 40)? as f64,
        })
    }
}

/// Extremely Fast Decision Tree classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "EfdtSnapshot")]
pub struct Efdt {
    params: TreeParams,
    efdt: EfdtParams,
    /// Arena; freed slots (replaced subtrees) are listed in `free`.
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: Option<u32>,
    n_classes: usize,
    weight_seen: f64,
    growth_allowed: bool,
    active_leaf_bytes: f64,
    inactive_leaf_bytes: f64,
    overhead_fraction: f64,
    #[serde(skip)]
    scratch: Vec<f64>,
}

/// The serialized form of [`Efdt`], checked before it becomes a tree:
/// every node reachable from the root exists, is live and is reached once;
/// free slots are free and listed once. A corrupt snapshot from a peer is
/// an error, never a panic or a cycle.
#[derive(Deserialize)]
struct EfdtSnapshot {
    params: TreeParams,
    efdt: EfdtParams,
    nodes: Vec<Node>,
    free: Vec<u32>,
    root: Option<u32>,
    n_classes: usize,
    weight_seen: f64,
    growth_allowed: bool,
    active_leaf_bytes: f64,
    inactive_leaf_bytes: f64,
    overhead_fraction: f64,
}

impl TryFrom<EfdtSnapshot> for Efdt {
    type Error = String;

    fn try_from(s: EfdtSnapshot) -> Result<Self, String> {
        let n = s.nodes.len();
        let mut seen = vec![false; n];
        let mut stack: Vec<u32> = s.root.into_iter().collect();
        while let Some(i) = stack.pop() {
            let i = i as usize;
            if i >= n || seen[i] {
                return Err(format!("efdt: node {i} is missing or shared"));
            }
            seen[i] = true;
            match &s.nodes[i] {
                Node::Free => return Err(format!("efdt: reachable node {i} is free")),
                Node::Leaf(l) => {
                    if !l.is_consistent() {
                        return Err(format!("efdt: leaf {i} is inconsistent"));
                    }
                }
                Node::Branch(b) => {
                    if !b.test.is_consistent(b.children.len()) || !b.stats.is_consistent() {
                        return Err(format!("efdt: branch {i} is inconsistent"));
                    }
                    stack.extend(b.children.iter().copied());
                }
            }
        }
        let mut listed = vec![false; n];
        for &f in &s.free {
            let f = f as usize;
            if f >= n || listed[f] || !matches!(s.nodes[f], Node::Free) {
                return Err(format!("efdt: free slot {f} is not free"));
            }
            listed[f] = true;
        }
        Ok(Efdt {
            params: s.params,
            efdt: s.efdt,
            nodes: s.nodes,
            free: s.free,
            root: s.root,
            n_classes: s.n_classes,
            weight_seen: s.weight_seen,
            growth_allowed: s.growth_allowed,
            active_leaf_bytes: s.active_leaf_bytes,
            inactive_leaf_bytes: s.inactive_leaf_bytes,
            overhead_fraction: s.overhead_fraction,
            scratch: Vec::new(),
        })
    }
}

/// What re-evaluating a branch decided.
enum Reevaluation {
    /// Keep the branch as it is: go on down.
    Keep,
    /// The branch took a new test on the same feature: go on down, but
    /// (as in River) changes to its children on this sample are lost.
    Retested,
    /// The subtree was replaced (or the null split won): stop here.
    Stop,
}

impl Efdt {
    pub fn new(params: TreeParams, efdt: EfdtParams) -> Self {
        Efdt {
            params,
            efdt,
            nodes: Vec::new(),
            free: Vec::new(),
            root: None,
            n_classes: 0,
            weight_seen: 0.0,
            growth_allowed: true,
            active_leaf_bytes: 0.0,
            inactive_leaf_bytes: 0.0,
            overhead_fraction: 1.0,
            scratch: Vec::new(),
        }
    }

    /// River's defaults, with the nominal features of `schema`.
    pub fn for_schema(schema: &Schema) -> Self {
        Self::new(TreeParams::for_schema(schema), EfdtParams::default())
    }

    /// Live nodes (branches and leaves).
    pub fn n_nodes(&self) -> usize {
        self.nodes.len() - self.free.len()
    }

    /// Number of leaves.
    pub fn n_leaves(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| matches!(n, Node::Leaf(_)))
            .count()
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

    /// Free the given nodes and everything below them.
    fn free_subtrees(&mut self, roots: Vec<u32>) {
        let mut stack = roots;
        while let Some(i) = stack.pop() {
            match std::mem::replace(&mut self.nodes[i as usize], Node::Free) {
                Node::Free => continue,
                Node::Branch(b) => stack.extend(b.children),
                Node::Leaf(_) => {}
            }
            self.free.push(i);
        }
    }

    /// Position of the heaviest child (first on ties, left for binary).
    fn most_common_child(&self, b: &Branch) -> usize {
        let mut best = 0;
        let mut best_w = f64::NEG_INFINITY;
        for (k, &c) in b.children.iter().enumerate() {
            let w = self.nodes[c as usize].weight();
            if w > best_w {
                best = k;
                best_w = w;
            }
        }
        best
    }

    /// Child position `x` takes at branch `b` (the heaviest child when the
    /// feature is missing or the category new).
    fn child_for(&self, b: &Branch, x: &[f64]) -> usize {
        match b.test.route(x) {
            Route::Child(c) => c,
            Route::Missing | Route::NewValue(_) => self.most_common_child(b),
        }
    }

    /// Fresh leaves for the branches of `s`, one level below `depth`.
    fn new_children(&mut self, s: Suggestion, depth: usize) -> Vec<u32> {
        let mut children = Vec::with_capacity(s.children.len());
        let mut keys = s.children_keys.into_iter();
        for mut stats in s.children {
            if stats.len() < self.n_classes {
                stats.resize(self.n_classes, 0.0);
            }
            let leaf = Leaf::new(stats, keys.next().unwrap_or_default(), depth + 1);
            children.push(self.alloc(Node::Leaf(leaf)));
        }
        children
    }

    /// Sort `x` to a leaf, growing a child for a new category of a
    /// multiway split, and train that leaf.
    fn train_leaf(&mut self, root: u32, x: &[f64], y: usize, w: f64) {
        let mut idx = root;
        loop {
            let next = match &self.nodes[idx as usize] {
                Node::Leaf(_) | Node::Free => break,
                Node::Branch(b) => match b.test.route(x) {
                    Route::Child(c) => b.children[c],
                    Route::Missing => b.children[self.most_common_child(b)],
                    Route::NewValue(v) => {
                        let depth = b.depth + 1;
                        let child =
                            self.alloc(Node::Leaf(Leaf::new(Vec::new(), Vec::new(), depth)));
                        if let Node::Branch(b) = &mut self.nodes[idx as usize] {
                            b.test.add_slot(v, b.children.len());
                            b.children.push(child);
                        }
                        child
                    }
                },
            };
            idx = next;
        }
        let count_nba = self.params.leaf_prediction == LeafPrediction::NaiveBayesAdaptive;
        let Self {
            nodes,
            params,
            scratch,
            ..
        } = self;
        if let Node::Leaf(leaf) = &mut nodes[idx as usize] {
            leaf.learn(x, y, w, params, count_nba, scratch);
        }
    }

    /// EFDT's split attempt at leaf `idx`: split when the best candidate's
    /// merit beats 0 by more than the Hoeffding bound (or the bound is
    /// below `tau`); pre-prune when the best candidate is the null split.
    /// Without `apply` a split is decided but not made (see the module
    /// docs on retested parents).
    fn attempt_to_split(&mut self, idx: u32, apply: bool) {
        let Node::Leaf(leaf) = &mut self.nodes[idx as usize] else {
            return;
        };
        if leaf.is_pure() {
            return;
        }
        let mut cands = leaf.efdt_candidates(&self.params, true);
        // Stable: on equal merit the later candidate ranks higher, as River.
        cands.sort_by(|a, b| a.merit.total_cmp(&b.merit));
        let Some(best) = cands.pop() else { return };
        let total = leaf.total_weight();
        let range = self.params.split_criterion.range(leaf.keys.len());
        let bound = hoeffding_bound(range, self.params.delta, total);
        let Some(test) = best.test.clone() else {
            leaf.deactivate();
            return;
        };
        if !(best.merit > bound || bound < self.params.tau) || best.children.is_empty() {
            return;
        }
        if !apply {
            self.enforce_size_limit();
            return;
        }
        let depth = leaf.depth;
        let children = self.new_children(best, depth);
        let Node::Leaf(stats) = std::mem::replace(&mut self.nodes[idx as usize], Node::Free) else {
            return;
        };
        self.nodes[idx as usize] = Node::Branch(Branch {
            test,
            children,
            depth,
            stats,
            last_reevaluation_at: total,
        });
        self.enforce_size_limit();
    }

    /// Re-rank the splits of branch `idx` (River's
    /// `_reevaluate_best_split`). Without `apply` the decision is taken but
    /// the tree is left as it is.
    fn reevaluate(&mut self, idx: u32, apply: bool) -> Reevaluation {
        let Node::Branch(b) = &mut self.nodes[idx as usize] else {
            return Reevaluation::Keep;
        };
        if b.stats.is_pure() {
            return Reevaluation::Keep;
        }
        let mut cands = b.stats.efdt_candidates(&self.params, false);
        cands.sort_by(|a, b| a.merit.total_cmp(&b.merit));
        let Some(best) = cands.last() else {
            return Reevaluation::Keep;
        };
        let Some(best_test) = &best.test else {
            return Reevaluation::Stop;
        };
        let total = b.stats.total_weight();
        let range = self.params.split_criterion.range(b.stats.keys.len());
        let bound = hoeffding_bound(range, self.params.delta, total);
        if 0.0 - best.merit > bound {
            if !apply {
                self.enforce_size_limit();
                return Reevaluation::Stop;
            }
            // Splitting no longer pays: the branch becomes a leaf with its
            // statistics, which tries to split on the next sample.
            let Node::Branch(b) = std::mem::replace(&mut self.nodes[idx as usize], Node::Free)
            else {
                return Reevaluation::Stop;
            };
            let mut leaf = b.stats;
            leaf.depth = b.depth;
            leaf.active = true;
            leaf.last_split_attempt_at = 0.0;
            leaf.mc_correct = 0.0;
            leaf.nb_correct = 0.0;
            self.nodes[idx as usize] = Node::Leaf(leaf);
            self.free_subtrees(b.children);
            self.enforce_size_limit();
            return Reevaluation::Stop;
        }
        let current_feature = b.test.feature();
        let Some(current) = cands.iter().find(|s| {
            s.test
                .as_ref()
                .is_some_and(|t| t.feature() == current_feature)
        }) else {
            return Reevaluation::Keep;
        };
        if !(best.merit - current.merit > bound || bound < self.params.tau) {
            return Reevaluation::Keep;
        }
        if best_test.feature() != current_feature {
            if !apply {
                self.enforce_size_limit();
                return Reevaluation::Stop;
            }
            let depth = b.depth;
            let Some(best) = cands.pop() else {
                return Reevaluation::Keep;
            };
            let Some(test) = best.test.clone() else {
                return Reevaluation::Keep;
            };
            if best.children.is_empty() {
                return Reevaluation::Keep;
            }
            let children = self.new_children(best, depth);
            let old = if let Node::Branch(b) = &mut self.nodes[idx as usize] {
                b.test = test;
                b.last_reevaluation_at = total;
                std::mem::replace(&mut b.children, children)
            } else {
                Vec::new()
            };
            self.free_subtrees(old);
            self.enforce_size_limit();
            return Reevaluation::Stop;
        }
        if !apply {
            return Reevaluation::Keep;
        }
        // Same feature: take the new test (a threshold or value that moved)
        // over the same children, when it has as many branches.
        let new_test = best_test.clone();
        let keep_multiway = matches!(b.test, SplitTest::NominalMultiway { .. });
        if !keep_multiway && new_test.is_consistent(b.children.len()) {
            b.test = new_test;
        }
        b.last_reevaluation_at = total;
        Reevaluation::Retested
    }

    /// Leaves, left to right.
    fn leaves_in_order(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let Some(root) = self.root else { return out };
        let mut stack = vec![root];
        while let Some(i) = stack.pop() {
            match &self.nodes[i as usize] {
                Node::Leaf(_) => out.push(i),
                Node::Branch(b) => stack.extend(b.children.iter().rev().copied()),
                Node::Free => {}
            }
        }
        out
    }

    /// Kirkby's memory management, as the other Hoeffding trees.
    fn enforce_size_limit(&mut self) {
        let leaves = self.leaves_in_order();
        let n_inactive = leaves
            .iter()
            .filter(|&&i| matches!(&self.nodes[i as usize], Node::Leaf(l) if !l.active))
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
                Node::Leaf(l) => (l.promise(), i),
                _ => (0.0, i),
            })
            .collect();
        ranked.sort_by(|a, b| a.0.total_cmp(&b.0));
        let cutoff = ranked.len()
            - super::max_active_leaves(
                ranked.len(),
                self.active_leaf_bytes,
                self.inactive_leaf_bytes,
                self.overhead_fraction,
                max_bytes,
            );
        let max_depth = self.params.max_depth_or_max();
        for (k, &(_, i)) in ranked.iter().enumerate() {
            if let Node::Leaf(l) = &mut self.nodes[i as usize] {
                if k < cutoff {
                    if l.active {
                        l.deactivate();
                    }
                } else if !l.active && l.depth < max_depth {
                    l.activate();
                }
            }
        }
    }

    fn estimate_model_size(&mut self) {
        let (mut n_active, mut n_inactive) = (0usize, 0usize);
        let (mut active_bytes, mut inactive_bytes) = (0usize, 0usize);
        for i in self.leaves_in_order() {
            if let Node::Leaf(l) = &self.nodes[i as usize] {
                let b = std::mem::size_of::<Node>() + l.heap_bytes();
                if l.active {
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

impl Classifier for Efdt {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        // Every weight sum in the tree is at most `weight_seen`: keeping it
        // finite keeps the whole state finite.
        if !(weight > 0.0 && (self.weight_seen + weight).is_finite()) {
            return;
        }
        self.n_classes = self.n_classes.max(y + 1);
        self.weight_seen += weight;
        let root = match self.root {
            Some(r) => r,
            None => {
                let r = self.alloc(Node::Leaf(Leaf::new(Vec::new(), Vec::new(), 0)));
                self.root = Some(r);
                r
            }
        };
        // As River: the leaf learns first, then the path is walked again
        // from the root, each branch learning and being re-evaluated.
        self.train_leaf(root, x, y, weight);
        let period = self.params.memory_estimate_period as f64;
        if self.weight_seen % period == 0.0 {
            self.estimate_model_size();
        }
        let Some(mut idx) = self.root else { return };
        let max_depth = self.params.max_depth_or_max();
        // Whether the parent of `idx` was retested on this sample.
        let mut parent_retested = false;
        loop {
            let Self {
                nodes,
                params,
                scratch,
                ..
            } = self;
            match &mut nodes[idx as usize] {
                Node::Free => return,
                Node::Branch(b) => {
                    b.stats.learn(x, y, weight, params, false, scratch);
                    let due = b.stats.total_weight() - b.last_reevaluation_at
                        >= self.efdt.min_samples_reevaluate;
                    // The child is chosen by the test as it was before a
                    // re-evaluation moved it (River routes with the old node).
                    let Node::Branch(b) = &self.nodes[idx as usize] else {
                        return;
                    };
                    let next = b.children[self.child_for(b, x)];
                    let mut retested = false;
                    if due {
                        match self.reevaluate(idx, !parent_retested) {
                            Reevaluation::Stop => return,
                            Reevaluation::Retested => retested = true,
                            Reevaluation::Keep => {}
                        }
                    }
                    parent_retested = retested;
                    idx = next;
                }
                Node::Leaf(leaf) => {
                    if !(self.growth_allowed && leaf.active) {
                        return;
                    }
                    if leaf.depth >= max_depth {
                        leaf.deactivate();
                        return;
                    }
                    let seen = leaf.total_weight();
                    if seen - leaf.last_split_attempt_at >= self.params.grace_period {
                        self.attempt_to_split(idx, !parent_retested);
                        if let Node::Leaf(leaf) = &mut self.nodes[idx as usize] {
                            leaf.last_split_attempt_at = seen;
                        }
                    }
                    return;
                }
            }
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.resize(self.n_classes, 0.0);
        let Some(mut idx) = self.root else { return };
        loop {
            match &self.nodes[idx as usize] {
                Node::Branch(b) => idx = b.children[self.child_for(b, x)],
                Node::Leaf(leaf) => {
                    if !leaf.distribution(x, self.params.leaf_prediction, &self.params, out) {
                        // A leaf that has seen nothing yet (a new category's branch).
                        crate::classifier::normalize(out);
                    }
                    return;
                }
                Node::Free => return,
            }
        }
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
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::models::tree::HoeffdingTree;
    use crate::rng::Rng;
    use crate::schema::Feature;

    fn root_feature(t: &Efdt) -> Option<usize> {
        match &t.nodes[t.root? as usize] {
            Node::Branch(b) => Some(b.test.feature()),
            _ => None,
        }
    }

    #[test]
    fn splits_as_soon_as_a_split_beats_not_splitting() {
        // Both features matter equally: the Hoeffding tree waits for a tie
        // (thousands of samples); EFDT splits at the first attempts.
        let mut e = Efdt::new(TreeParams::default(), EfdtParams::default());
        let mut h = HoeffdingTree::new(TreeParams::default());
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let x = [rng.next_f64(), rng.next_f64()];
            let y = usize::from(x[0] + x[1] > 1.0);
            e.learn_one(&x, y, 1.0);
            h.learn_one(&x, y, 1.0);
        }
        assert_eq!(h.n_leaves(), 1);
        assert!(e.n_leaves() >= 2, "{}", e.n_leaves());
    }

    #[test]
    fn learns_a_threshold_concept() {
        let mut t = Efdt::new(TreeParams::default(), EfdtParams::default());
        let mut rng = Rng::new(1);
        for _ in 0..5000 {
            let x = [rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)];
            t.learn_one(&x, usize::from(x[1] > 0.3), 1.0);
        }
        let mut right = 0;
        for _ in 0..1000 {
            let x = [rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)];
            right += usize::from(t.predict_one(&x) == Some(usize::from(x[1] > 0.3)));
        }
        assert!(right > 950, "{right}/1000");
        assert_eq!(root_feature(&t), Some(1));
    }

    #[test]
    fn reevaluation_replaces_a_split_that_stopped_being_best() {
        // The concept moves from feature 0 to feature 1: the root keeps
        // learning, and once feature 1 wins by the bound it is re-split.
        let mut t = Efdt::new(TreeParams::default(), EfdtParams::default());
        let mut rng = Rng::new(8);
        for i in 0..30_000 {
            let x = [rng.next_f64(), rng.next_f64()];
            let f = usize::from(i >= 2000);
            t.learn_one(&x, usize::from(x[f] > 0.5), 1.0);
            if i == 1999 {
                assert_eq!(root_feature(&t), Some(0));
            }
        }
        assert_eq!(root_feature(&t), Some(1));
        let mut right = 0;
        for _ in 0..1000 {
            let x = [rng.next_f64(), rng.next_f64()];
            right += usize::from(t.predict_one(&x) == Some(usize::from(x[1] > 0.5)));
        }
        assert!(right > 950, "{right}/1000");
        // Replaced subtrees go to the free list and are reused.
        assert_eq!(
            t.n_nodes(),
            t.nodes.iter().filter(|n| !matches!(n, Node::Free)).count()
        );
    }

    #[test]
    fn grows_multiway_nominal_splits_and_new_categories() {
        let schema = Schema {
            features: vec![
                Feature::nominal("v", (0..6).map(|i| i.to_string()).collect()),
                Feature::numeric("noise"),
            ],
            classes: vec!["0".into(), "1".into(), "2".into()],
            target: "class".into(),
        };
        let mut t = Efdt::for_schema(&schema);
        let mut rng = Rng::new(5);
        for _ in 0..3000 {
            let v = rng.below(6);
            t.learn_one(&[v as f64, rng.next_f64()], v % 3, 1.0);
        }
        assert_eq!(root_feature(&t), Some(0));
        for v in 0..6 {
            assert_eq!(t.predict_one(&[v as f64, 0.5]), Some(v % 3));
        }
        let before = t.n_nodes();
        t.learn_one(&[9.0, 0.5], 0, 1.0);
        assert_eq!(t.n_nodes(), before + 1);
    }

    #[test]
    fn snapshot_round_trip_and_corrupt_snapshots_refused() {
        let mut t = Efdt::new(
            TreeParams {
                grace_period: 50.0,
                ..TreeParams::default()
            },
            EfdtParams::default(),
        );
        let mut rng = Rng::new(2);
        for i in 0..4000 {
            let x = [rng.normal(), rng.normal(), rng.normal()];
            let f = usize::from(i >= 1500);
            t.learn_one(&x, usize::from(x[f] > 0.2) + usize::from(x[2] > 1.0), 1.0);
        }
        let bytes = postcard::to_allocvec(&t).unwrap();
        let mut back: Efdt = postcard::from_bytes(&bytes).unwrap();
        for _ in 0..500 {
            let x = [rng.normal(), rng.normal(), rng.normal()];
            assert_eq!(back.predict_proba_one(&x), t.predict_proba_one(&x));
            let y = usize::from(x[1] > 0.2);
            t.learn_one(&x, y, 1.0);
            back.learn_one(&x, y, 1.0);
        }
        assert_eq!(back.n_nodes(), t.n_nodes());
        let mut bad = t.clone();
        let root = bad.root.unwrap() as usize;
        if let Node::Branch(b) = &mut bad.nodes[root] {
            b.children[0] = root as u32;
        } else {
            panic!("no split");
        }
        let bytes = postcard::to_allocvec(&bad).unwrap();
        assert!(postcard::from_bytes::<Efdt>(&bytes).is_err());
    }

    #[test]
    fn memory_counts_branch_statistics() {
        let mut t = Efdt::new(TreeParams::default(), EfdtParams::default());
        let empty = t.memory_bytes();
        let mut rng = Rng::new(4);
        for _ in 0..20_000 {
            let x = [rng.next_f64(), rng.next_f64(), rng.next_f64()];
            // Feature 0 dominates, so the root split stays (a symmetric
            // concept makes EFDT swap its root back and forth).
            t.learn_one(&x, usize::from(x[0] + 0.3 * x[1] > 0.6), 1.0);
        }
        assert!(t.n_leaves() > 2, "{} leaves", t.n_leaves());
        let leaves: usize = t
            .nodes
            .iter()
            .map(|n| match n {
                Node::Leaf(l) => l.heap_bytes(),
                _ => 0,
            })
            .sum();
        // Branches keep observers too, so the tree owns more than its leaves.
        assert!(t.memory_bytes() > empty + leaves);
    }
}
