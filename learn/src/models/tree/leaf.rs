//! A Hoeffding-tree leaf: class weights, one attribute observer per
//! feature, and the counters of the adaptive naive Bayes prediction.
//! Shared by [`super::HoeffdingTree`] and [`super::HoeffdingAdaptiveTree`].

use serde::{Deserialize, Serialize};

use super::observer::Observer;
use super::split::{hoeffding_bound, Suggestion};
use super::{LeafPrediction, TreeParams};
use crate::classifier::{feature, vec_bytes};

/// A learning leaf.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Leaf {
    /// Class weights seen here (initialised from the split that made it).
    pub stats: Vec<f64>,
    /// Classes that have an entry in `stats`, in the order River's leaf
    /// dictionary holds them: sums run and ties resolve in this order.
    pub keys: Vec<u32>,
    /// Observers by feature index; empty while inactive.
    pub observers: Vec<Observer>,
    /// Inactive leaves keep predicting but stop collecting statistics.
    pub active: bool,
    /// Features dropped by `remove_poor_attrs` (never observed again).
    pub disabled: Vec<usize>,
    pub depth: usize,
    /// Total weight when a split was last attempted.
    pub last_split_attempt_at: f64,
    /// Weight the majority class / naive Bayes would have got right here.
    pub mc_correct: f64,
    pub nb_correct: f64,
}

/// What a split attempt decided.
pub enum SplitOutcome {
    /// Keep the leaf as it is.
    Keep,
    /// The null split won: deactivate the leaf (River's pre-pruning).
    PrePrune,
    /// Replace the leaf by this split.
    Split(Suggestion),
}

impl Leaf {
    /// A leaf starting with class weights `stats`, whose classes present
    /// are `keys` in that order.
    pub fn new(stats: Vec<f64>, keys: Vec<u32>, depth: usize) -> Self {
        let mut leaf = Leaf {
            stats,
            keys,
            observers: Vec::new(),
            active: true,
            disabled: Vec::new(),
            depth,
            last_split_attempt_at: 0.0,
            mc_correct: 0.0,
            nb_correct: 0.0,
        };
        leaf.keys.retain(|&c| (c as usize) < leaf.stats.len());
        leaf.last_split_attempt_at = leaf.total_weight();
        leaf
    }

    /// Class keys all index `stats` (checked on snapshots from elsewhere).
    pub fn is_consistent(&self) -> bool {
        self.keys.iter().all(|&c| (c as usize) < self.stats.len())
    }

    /// Sum of the class weights, added in key order (as River's `sum`).
    #[inline]
    pub fn total_weight(&self) -> f64 {
        let mut t = 0.0;
        for &c in &self.keys {
            t += self.stats[c as usize];
        }
        t
    }

    #[inline]
    fn add_weight(&mut self, y: usize, w: f64) {
        if y >= self.stats.len() {
            self.stats.resize(y + 1, 0.0);
        }
        if self.stats[y] == 0.0 && !self.keys.contains(&(y as u32)) {
            self.keys.push(y as u32);
        }
        self.stats[y] += w;
    }

    pub fn deactivate(&mut self) {
        self.active = false;
        self.observers = Vec::new();
    }

    /// Reactivate; observers restart empty (as in River).
    pub fn activate(&mut self) {
        if !self.active {
            self.active = true;
            self.observers = Vec::new();
        }
    }

    /// Fewer than two classes with weight.
    pub fn is_pure(&self) -> bool {
        self.stats.iter().filter(|&&w| w != 0.0).take(2).count() < 2
    }

    /// How much a split could help: weight not in the majority class.
    pub fn promise(&self) -> f64 {
        let total = self.total_weight();
        if total > 0.0 {
            total - self.stats.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        } else {
            0.0
        }
    }

    /// Majority class, first in key order on ties; `None` when empty.
    pub fn majority_class(&self) -> Option<usize> {
        argmax_in(&self.stats, &self.keys)
    }

    /// Learn one sample. With `count_nba` the majority-class and naive
    /// Bayes predictions are scored first (River's NBA leaf); `scratch` is a
    /// reusable buffer.
    pub fn learn(
        &mut self,
        x: &[f64],
        y: usize,
        w: f64,
        p: &TreeParams,
        count_nba: bool,
        scratch: &mut Vec<f64>,
    ) {
        if count_nba && self.active {
            // An empty leaf counts as right for the majority class (River).
            if self.keys.is_empty() || self.majority_class() == Some(y) {
                self.mc_correct += w;
            }
            scratch.clear();
            scratch.resize(self.stats.len(), 0.0);
            if self.naive_bayes(x, scratch) && argmax_in(scratch, &self.keys) == Some(y) {
                self.nb_correct += w;
            }
        }
        self.add_weight(y, w);
        if self.active {
            let n = x.len();
            if self.observers.len() < n {
                self.observers.resize_with(n, Observer::default);
            }
            for (i, (o, &v)) in self.observers.iter_mut().zip(x).enumerate() {
                if matches!(o, Observer::Absent)
                    && !self.disabled.is_empty()
                    && self.disabled.contains(&i)
                {
                    continue;
                }
                o.update(v, p.is_nominal(i), y, w);
            }
        }
    }

    /// Naive Bayes class probabilities into `out[..stats.len()]` (River's
    /// `do_naive_bayes_prediction`); false when the leaf has no weight.
    /// Classes without an entry get probability 0. As in River, a class
    /// whose entry holds zero weight (a split's normal CDF rounded to
    /// exactly 0 or 1) gets a log-vote of 0 instead of a likelihood.
    pub fn naive_bayes(&self, x: &[f64], out: &mut [f64]) -> bool {
        let total = self.total_weight();
        if total <= 0.0 || out.len() < self.stats.len() || self.keys.is_empty() {
            return false;
        }
        let mut max = f64::NEG_INFINITY;
        for &c in &self.keys {
            let c = c as usize;
            let wc = self.stats[c];
            let v = if wc > 0.0 {
                let mut v = (wc / total).ln();
                for (i, o) in self.observers.iter().enumerate() {
                    if let Some(l) = o.log_likelihood(feature(x, i), c) {
                        v += l;
                    }
                }
                v
            } else {
                0.0
            };
            out[c] = v;
            if v > max {
                max = v;
            }
        }
        if !max.is_finite() {
            // Nothing usable (overflowing likelihoods): the class weights.
            for &c in &self.keys {
                out[c as usize] = self.stats[c as usize] / total;
            }
            return true;
        }
        // Log-sum-exp, in River's order of operations.
        let mut sum = 0.0;
        for &c in &self.keys {
            sum += (out[c as usize] - max).exp();
        }
        let lse = max + sum.ln();
        for &c in &self.keys {
            let o = &mut out[c as usize];
            *o = (*o - lse).exp();
        }
        true
    }

    /// The leaf's class distribution into `out[..stats.len()]` (the caller
    /// zeroes `out`), by `mode`: majority class, naive Bayes, or adaptive.
    /// Returns false when the leaf has seen nothing.
    pub fn distribution(
        &self,
        x: &[f64],
        mode: LeafPrediction,
        p: &TreeParams,
        out: &mut [f64],
    ) -> bool {
        let use_nb = self.active
            && match mode {
                LeafPrediction::MajorityClass => false,
                LeafPrediction::NaiveBayes => self.total_weight() >= p.nb_threshold,
                LeafPrediction::NaiveBayesAdaptive => self.nb_correct >= self.mc_correct,
            };
        if use_nb && self.naive_bayes(x, out) {
            return true;
        }
        let total = self.total_weight();
        if total <= 0.0 || out.len() < self.stats.len() {
            return false;
        }
        // River scales by the reciprocal; kept for bit-equal probabilities.
        let inv = 1.0 / total;
        for &c in &self.keys {
            out[c as usize] = self.stats[c as usize] * inv;
        }
        true
    }

    /// Candidate splits: the null split (with `merit_preprune`) and each
    /// observer's best, or only the null split when one class already holds
    /// more than `max_share_to_split` of the weight.
    fn suggestions(&self, p: &TreeParams) -> Vec<Suggestion> {
        let total = self.total_weight();
        let maj = self.stats.iter().copied().fold(0.0, f64::max);
        if maj > 0.0 && maj / total > p.max_share_to_split {
            return vec![Suggestion::null()];
        }
        let mut out = Vec::with_capacity(self.observers.len() + 1);
        if p.merit_preprune {
            out.push(Suggestion::null());
        }
        self.push_observer_suggestions(p, &mut out);
        out
    }

    /// Each observer's best split, in feature order (River's
    /// `best_evaluated_split_suggestion` per splitter); an observer with no
    /// valid threshold contributes a null suggestion, as in River.
    fn push_observer_suggestions(&self, p: &TreeParams, out: &mut Vec<Suggestion>) {
        for (i, o) in self.observers.iter().enumerate() {
            if let Some(s) = o.best_split(
                i,
                &self.stats,
                p.split_criterion,
                p.min_branch_fraction,
                p.n_splits,
                p.binary_split,
            ) {
                out.push(s);
            }
        }
    }

    /// The candidates the Extremely Fast Decision Tree ranks: every
    /// observer's best split and no explicit null split (EFDT compares the
    /// best against a merit of 0 instead). With `check_share` (leaves, not
    /// branches) only the null split is offered while one class holds more
    /// than `max_share_to_split` of the weight.
    pub fn efdt_candidates(&self, p: &TreeParams, check_share: bool) -> Vec<Suggestion> {
        if check_share {
            let total = self.total_weight();
            let maj = self.stats.iter().copied().fold(0.0, f64::max);
            if maj > 0.0 && maj / total > p.max_share_to_split {
                return vec![Suggestion::null()];
            }
        }
        let mut out = Vec::with_capacity(self.observers.len());
        self.push_observer_suggestions(p, &mut out);
        out
    }

    /// River's `_attempt_to_split` decision: split when the best candidate
    /// beats the second by more than the Hoeffding bound, or when the bound
    /// fell below `tau` (a tie). With `disable_poor` (majority-class leaves
    /// and `remove_poor_attrs`) features far behind the best are dropped.
    pub fn attempt_split(&mut self, p: &TreeParams, disable_poor: bool) -> SplitOutcome {
        if self.is_pure() {
            return SplitOutcome::Keep;
        }
        let mut s = self.suggestions(p);
        // Stable: on equal merit the later candidate ranks higher, as River.
        s.sort_by(|a, b| a.merit.total_cmp(&b.merit));
        let should_split = if s.len() < 2 {
            !s.is_empty()
        } else {
            let seen = self.stats.iter().filter(|&&w| w != 0.0).count();
            let bound =
                hoeffding_bound(p.split_criterion.range(seen), p.delta, self.total_weight());
            let best = s[s.len() - 1].merit;
            let second = s[s.len() - 2].merit;
            if disable_poor && p.remove_poor_attrs {
                for sug in &s {
                    if let Some(t) = &sug.test {
                        if best - sug.merit > bound {
                            self.disable(t.feature());
                        }
                    }
                }
            }
            best - second > bound || bound < p.tau
        };
        if !should_split {
            return SplitOutcome::Keep;
        }
        match s.pop() {
            Some(best) if best.test.is_some() => SplitOutcome::Split(best),
            _ => SplitOutcome::PrePrune,
        }
    }

    fn disable(&mut self, f: usize) {
        if let Some(o) = self.observers.get_mut(f) {
            if !matches!(o, Observer::Absent) {
                *o = Observer::Absent;
                self.disabled.push(f);
            }
        }
    }

    /// Heap bytes owned by this leaf.
    pub fn heap_bytes(&self) -> usize {
        vec_bytes(&self.stats)
            + vec_bytes(&self.keys)
            + vec_bytes(&self.observers)
            + self
                .observers
                .iter()
                .map(Observer::heap_bytes)
                .sum::<usize>()
            + vec_bytes(&self.disabled)
    }
}

/// Index of the largest of `v` over `keys`, the first in key order on ties
/// (River's `max(dict, key=dict.get)`); `None` when `keys` is empty.
pub fn argmax_in(v: &[f64], keys: &[u32]) -> Option<usize> {
    let (&first, rest) = keys.split_first()?;
    let value = |c: u32| v.get(c as usize).copied().unwrap_or(0.0);
    let mut best = (first as usize, value(first));
    for &c in rest {
        let p = value(c);
        if p > best.1 {
            best = (c as usize, p);
        }
    }
    Some(best.0)
}
