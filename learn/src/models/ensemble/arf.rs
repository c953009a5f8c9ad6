//! Adaptive Random Forest (Gomes et al. 2017, "Adaptive random forests for
//! evolving data stream classification"), as River's `forest.ARFClassifier`.
//!
//! Each of `n_models` trees ([`RandomTree`]) learns every sample with a
//! Poisson(`lambda`) weight and watches a random subset of `max_features`
//! features at each leaf. Per tree, two ADWIN detectors watch its 0/1 error
//! (measured before it learns): when the warning detector fires a
//! background tree starts learning alongside; when the drift detector
//! fires the background tree replaces the member (or a fresh tree does, if
//! there is none) and the member's accuracy restarts. As in River the
//! detectors only see samples the tree trained on (Poisson count > 0), and
//! the vote weighs each tree's class probabilities by its prequential
//! accuracy (unweighted while that is still 0).

use serde::{Deserialize, Serialize};

use super::arf_tree::RandomTree;
use super::Accuracy;
use super::{add_scaled, finish_vote, for_each_par, read_delta_opt, read_jobs, read_n_models};
use crate::classifier::{argmax, Classifier};
use crate::drift::Adwin;
use crate::models::tree::TreeParams;
use crate::rng::Rng;
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

/// How many features a leaf watches, resolved against the feature count
/// of the first sample (River's `max_features`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum MaxFeatures {
    /// `round(sqrt(M))` (River's default; MOA uses `sqrt(M) + 1`).
    Sqrt,
    /// `round(log2(M))`.
    Log2,
    /// All `M` features (no feature sampling).
    All,
    /// A count; negative means `M + n`.
    Count(i64),
    /// A fraction of `M` (truncated).
    Fraction(f64),
}

impl MaxFeatures {
    /// Parse `sqrt`, `log2`, `none`, an integer or a fraction in (0, 1].
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sqrt" => Some(MaxFeatures::Sqrt),
            "log2" => Some(MaxFeatures::Log2),
            "none" | "all" => Some(MaxFeatures::All),
            t if t.contains('.') => match t.parse::<f64>() {
                Ok(f) if f > 0.0 && f <= 1.0 => Some(MaxFeatures::Fraction(f)),
                _ => None,
            },
            t => t
                .parse::<i64>()
                .ok()
                .filter(|n| n.unsigned_abs() < 1 << 32)
                .map(MaxFeatures::Count),
        }
    }

    /// Features per leaf for `n` features (between 1 and `n`).
    pub fn resolve(self, n: usize) -> usize {
        let nf = n as f64;
        let mut k = match self {
            MaxFeatures::Sqrt => nf.sqrt().round() as i64,
            MaxFeatures::Log2 => {
                if n == 0 {
                    0
                } else {
                    nf.log2().round() as i64
                }
            }
            MaxFeatures::All => n as i64,
            MaxFeatures::Count(c) => c,
            MaxFeatures::Fraction(f) => (f * nf) as i64,
        };
        if k < 0 {
            k += n as i64;
        }
        (k.max(1) as usize).min(n.max(1))
    }
}

/// ARF parameters; `Default` is River's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArfParams {
    pub n_models: usize,
    pub max_features: MaxFeatures,
    /// Poisson rate of online bagging (6).
    pub lambda: f64,
    /// ADWIN delta of the drift detector (0.001); `None` disables drift
    /// handling (and background trees).
    pub drift_delta: Option<f64>,
    /// ADWIN delta of the warning detector (0.01); `None` disables
    /// background trees.
    pub warning_delta: Option<f64>,
    /// Weigh votes by each tree's accuracy (true).
    pub weighted_vote: bool,
    pub seed: u64,
    /// Threads used to train the trees (1).
    pub jobs: usize,
    /// Tree parameters: `ht`'s with `grace_period` 50 and `delta` 0.01.
    pub tree: TreeParams,
}

impl Default for ArfParams {
    fn default() -> Self {
        ArfParams {
            n_models: 10,
            max_features: MaxFeatures::Sqrt,
            lambda: 6.0,
            drift_delta: Some(0.001),
            warning_delta: Some(0.01),
            weighted_vote: true,
            seed: 42,
            jobs: 1,
            tree: forest_tree_params(TreeParams::default()),
        }
    }
}

/// River's forest trees: `grace_period` 50, `delta` 0.01, the rest `ht`'s.
fn forest_tree_params(mut p: TreeParams) -> TreeParams {
    p.grace_period = 50.0;
    p.delta = 0.01;
    p
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Member {
    tree: RandomTree,
    background: Option<RandomTree>,
    drift: Option<Adwin>,
    warning: Option<Adwin>,
    accuracy: Accuracy,
    rng: Rng,
    n_warnings: u64,
    n_drifts: u64,
}

impl Member {
    fn new(p: &ArfParams, k: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let tree = RandomTree::new(k, rng.next_u64());
        Member {
            tree,
            background: None,
            drift: p.drift_delta.map(Adwin::new),
            warning: p.drift_delta.and(p.warning_delta).map(Adwin::new),
            accuracy: Accuracy::default(),
            rng,
            n_warnings: 0,
            n_drifts: 0,
        }
    }

    /// One test-then-train step of this tree (River's loop body).
    fn step(&mut self, x: &[f64], y: usize, p: &ArfParams, k_features: usize, buf: &mut Vec<f64>) {
        self.tree.predict_proba_into(x, &p.tree, buf);
        let y_pred = argmax(buf);
        let right = y_pred == Some(y);
        self.accuracy.update(right);
        let k = self.rng.poisson(p.lambda);
        if k == 0 {
            return;
        }
        let w = f64::from(k);
        if let Some(bg) = &mut self.background {
            bg.learn(x, y, w, &p.tree);
        }
        self.tree.learn(x, y, w, &p.tree);
        let err = if right { 0.0 } else { 1.0 };
        if let (Some(wd), Some(delta)) = (&mut self.warning, p.warning_delta) {
            if wd.add(err) {
                self.background = Some(RandomTree::new(k_features, self.rng.next_u64()));
                *wd = Adwin::new(delta);
                self.n_warnings += 1;
            }
        }
        if let (Some(dd), Some(delta)) = (&mut self.drift, p.drift_delta) {
            if dd.add(err) {
                self.tree = match self.background.take() {
                    Some(bg) => bg,
                    None => RandomTree::new(k_features, self.rng.next_u64()),
                };
                *dd = Adwin::new(delta);
                if let (Some(wd), Some(wdelta)) = (&mut self.warning, p.warning_delta) {
                    *wd = Adwin::new(wdelta);
                }
                self.accuracy = Accuracy::default();
                self.n_drifts += 1;
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.tree.memory_bytes()
            + self.background.as_ref().map_or(0, RandomTree::memory_bytes)
            + self.drift.as_ref().map_or(0, Adwin::memory_bytes)
            + self.warning.as_ref().map_or(0, Adwin::memory_bytes)
    }
}

/// Adaptive Random Forest classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Arf {
    params: ArfParams,
    /// Features per leaf, fixed at the first sample (0 before it).
    k_features: usize,
    /// Empty until the first sample (River builds the forest then).
    members: Vec<Member>,
    n_classes: usize,
    #[serde(skip)]
    buf: Vec<f64>,
}

impl Arf {
    pub fn new(params: ArfParams) -> Self {
        Arf {
            params,
            k_features: 0,
            members: Vec::new(),
            n_classes: 0,
            buf: Vec::new(),
        }
    }

    pub fn params(&self) -> &ArfParams {
        &self.params
    }

    /// Drifts detected so far, over all trees.
    pub fn n_drifts(&self) -> u64 {
        self.members.iter().map(|m| m.n_drifts).sum()
    }

    /// Warnings detected so far, over all trees.
    pub fn n_warnings(&self) -> u64 {
        self.members.iter().map(|m| m.n_warnings).sum()
    }

    fn init(&mut self, n_features: usize) {
        self.k_features = self.params.max_features.resolve(n_features);
        let mut rng = Rng::new(self.params.seed);
        self.members = (0..self.params.n_models)
            .map(|_| Member::new(&self.params, self.k_features, rng.next_u64()))
            .collect();
    }
}

impl Classifier for Arf {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        // Bagging draws its own weights; a sample with no weight is skipped.
        if !(weight > 0.0 && weight.is_finite()) {
            return;
        }
        if self.members.is_empty() {
            self.init(x.len());
        }
        self.n_classes = self.n_classes.max(y + 1);
        let p = &self.params;
        let k = self.k_features;
        if p.jobs <= 1 {
            let buf = &mut self.buf;
            for m in &mut self.members {
                m.step(x, y, p, k, buf);
            }
        } else {
            for_each_par(&mut self.members, p.jobs, |m| {
                let mut buf = Vec::new();
                m.step(x, y, p, k, &mut buf);
            });
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        let mut p = Vec::new();
        for m in &self.members {
            m.tree.predict_proba_into(x, &self.params.tree, &mut p);
            let acc = m.accuracy.get();
            let w = if self.params.weighted_vote && acc > 0.0 {
                acc
            } else {
                1.0
            };
            add_scaled(out, &p, w);
        }
        finish_vote(out, self.n_classes);
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.params.tree.heap_bytes()
            + crate::classifier::vec_bytes(&self.members)
            + self.members.iter().map(Member::memory_bytes).sum::<usize>()
            + crate::classifier::vec_bytes(&self.buf)
    }
}

/// Parameters of `arf`, as `shoal-bench models` shows them.
pub const ARF_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "n_models",
        default: "10",
        help: "trees in the forest (MOA: 100)",
    },
    ParamDoc {
        name: "max_features",
        default: "sqrt",
        help: "features per leaf: sqrt | log2 | none | count | fraction (MOA: sqrt(M)+1)",
    },
    ParamDoc {
        name: "lambda",
        default: "6",
        help: "Poisson rate of online bagging",
    },
    ParamDoc {
        name: "drift_delta",
        default: "0.001",
        help: "ADWIN delta of each tree's drift detector; none disables (MOA: 1e-5)",
    },
    ParamDoc {
        name: "warning_delta",
        default: "0.01",
        help: "ADWIN delta of the warning detector (background trees); none disables (MOA: 1e-4)",
    },
    ParamDoc {
        name: "weighted_vote",
        default: "true",
        help: "weigh each tree's vote by its accuracy",
    },
    ParamDoc {
        name: "grace_period",
        default: "50",
        help: "tree: weight a leaf sees between split attempts",
    },
    ParamDoc {
        name: "delta",
        default: "0.01",
        help: "tree: significance of the Hoeffding bound",
    },
    ParamDoc {
        name: "tau",
        default: "0.05",
        help: "tree: tie threshold",
    },
    ParamDoc {
        name: "leaf",
        default: "nba",
        help: "tree: leaf prediction mc | nb | nba (other ht parameters are accepted too)",
    },
    ParamDoc {
        name: "seed",
        default: "42",
        help: "seed of the bagging weights and feature subsets",
    },
    ParamDoc {
        name: "jobs",
        default: "1",
        help: "threads that train the trees (results do not depend on it)",
    },
];

/// Read the `ht` parameters with River's forest defaults (`grace_period`
/// 50, `delta` 0.01) where the spec does not set them.
pub(crate) fn read_forest_tree(
    spec: &Spec,
    r: &mut crate::spec::ParamReader<'_>,
    schema: &Schema,
) -> Result<TreeParams, SpecError> {
    let mut tree = TreeParams::from_reader(r, schema)?;
    if spec.get("grace_period").is_none() {
        tree.grace_period = 50.0;
    }
    if spec.get("delta").is_none() {
        tree.delta = 0.01;
    }
    Ok(tree)
}

/// Build `arf` from a spec such as `arf:n_models=20,max_features=0.5`.
pub fn build_arf(spec: &Spec, schema: &Schema) -> Result<Arf, SpecError> {
    let mut r = spec.reader();
    let d = ArfParams::default();
    let n_models = read_n_models(&mut r, d.n_models)?;
    let mf = r.string("max_features", "sqrt");
    let max_features = MaxFeatures::parse(&mf).ok_or_else(|| SpecError::BadValue {
        name: spec.name.clone(),
        param: "max_features".into(),
        value: mf.clone(),
        why: "sqrt, log2, none, an integer or a fraction in (0, 1]".into(),
    })?;
    let lambda = r.f64_in("lambda", d.lambda, 0.0, 100.0)?;
    let drift_delta = read_delta_opt(&mut r, &spec.name, "drift_delta", 0.001)?;
    let warning_delta = read_delta_opt(&mut r, &spec.name, "warning_delta", 0.01)?;
    let weighted_vote = r.bool("weighted_vote", true)?;
    let seed = r.u64("seed", d.seed)?;
    let jobs = read_jobs(&mut r)?;
    let tree = read_forest_tree(spec, &mut r, schema)?;
    r.finish()?;
    Ok(Arf::new(ArfParams {
        n_models,
        max_features,
        lambda,
        drift_delta,
        warning_delta,
        weighted_vote,
        seed,
        jobs,
        tree,
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn max_features_resolves_like_river() {
        assert_eq!(MaxFeatures::Sqrt.resolve(3), 2);
        assert_eq!(MaxFeatures::Sqrt.resolve(54), 7);
        assert_eq!(MaxFeatures::Sqrt.resolve(8), 3);
        assert_eq!(MaxFeatures::Log2.resolve(8), 3);
        assert_eq!(MaxFeatures::Count(-2).resolve(8), 6);
        assert_eq!(MaxFeatures::Count(100).resolve(8), 8);
        assert_eq!(MaxFeatures::Fraction(0.5).resolve(9), 4);
        assert_eq!(MaxFeatures::All.resolve(0), 1);
        assert_eq!(MaxFeatures::parse("0.5"), Some(MaxFeatures::Fraction(0.5)));
        assert_eq!(MaxFeatures::parse("x"), None);
    }

    /// SEA-like stream with an abrupt concept change half way.
    fn drifting(rng: &mut Rng, i: usize) -> ([f64; 3], usize) {
        let x = [
            rng.uniform(0.0, 10.0),
            rng.uniform(0.0, 10.0),
            rng.uniform(0.0, 10.0),
        ];
        let t = if i < 10_000 { 8.0 } else { 13.0 };
        (x, usize::from(x[0] + x[1] <= t))
    }

    #[test]
    fn recovers_from_drift_and_jobs_do_not_change_results() {
        let schema = Schema::numeric(3, &["0", "1"]);
        let mut one = build_arf(&Spec::parse("arf").unwrap(), &schema).unwrap();
        let mut two = build_arf(&Spec::parse("arf:jobs=2").unwrap(), &schema).unwrap();
        let mut rng = Rng::new(5);
        let mut right_after = 0;
        for i in 0..20_000 {
            let (x, y) = drifting(&mut rng, i);
            let p1 = one.predict_proba_one(&x);
            assert_eq!(p1, two.predict_proba_one(&x));
            if i >= 15_000 {
                right_after += usize::from(argmax(&p1) == Some(y));
            }
            one.learn_one(&x, y, 1.0);
            two.learn_one(&x, y, 1.0);
        }
        assert!(one.n_drifts() > 0);
        let acc = right_after as f64 / 5000.0;
        assert!(acc > 0.9, "{acc}");
    }
}
