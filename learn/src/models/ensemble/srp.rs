//! Streaming Random Patches (Gomes, Read & Bifet 2019, "Streaming random
//! patches for evolving data stream classification"), as River's
//! `ensemble.SRPClassifier`.
//!
//! Each of `n_models` Hoeffding trees sees a random subspace of the
//! features (fixed per tree) and, with `training_method=patches`, a
//! Poisson(`lam`) weight per sample: random patches. Subspaces are chosen
//! as River does: with at most 20 features, the first `n_models`
//! k-combinations in lexicographic order (cycled), dealt to the trees in a
//! shuffled order; with more, random subsets. Per tree, ADWIN warning and
//! drift detectors watch its 0/1 error measured right after it trained on
//! the sample (River's order); a warning starts a background tree on a new
//! random subspace of the same size, a drift swaps it in (or restarts the
//! tree on a new subspace). Votes are weighted by each tree's prequential
//! accuracy.

use serde::{Deserialize, Serialize};

use super::arf::read_forest_tree;
use super::{add_scaled, finish_vote, for_each_par, read_jobs, read_n_models, Accuracy};
use crate::classifier::{argmax, feature, vec_bytes, Classifier};
use crate::drift::Adwin;
use crate::models::tree::{HoeffdingTree, TreeParams};
use crate::rng::Rng;
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

/// How members are trained (River's `training_method`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TrainingMethod {
    /// Random subspaces and Poisson weights (default).
    Patches,
    /// Random subspaces, every sample with weight 1.
    Subspaces,
    /// All features, Poisson weights (online bagging).
    Resampling,
}

/// Subspace size (River's `subspace_size`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum SubspaceSize {
    /// A share of the features, `round(M * f)` (0.6).
    Fraction(f64),
    /// A count; negative means `M + n`.
    Count(i64),
    /// `round(sqrt(M)) + 1`.
    Sqrt,
}

/// SRP parameters; `Default` is River's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SrpParams {
    pub n_models: usize,
    pub subspace_size: SubspaceSize,
    pub training_method: TrainingMethod,
    pub lam: f64,
    /// ADWIN delta of the drift detector (1e-5); `None` disables.
    pub drift_delta: Option<f64>,
    /// ADWIN delta of the warning detector (1e-4); `None` disables.
    pub warning_delta: Option<f64>,
    pub weighted_vote: bool,
    pub seed: u64,
    pub jobs: usize,
    /// Base tree: `ht` with `grace_period` 50 and `delta` 0.01. `nominal`
    /// is over all features; each tree gets its subspace's part.
    pub tree: TreeParams,
}

impl Default for SrpParams {
    fn default() -> Self {
        let tree = TreeParams {
            grace_period: 50.0,
            delta: 0.01,
            ..TreeParams::default()
        };
        SrpParams {
            n_models: 10,
            subspace_size: SubspaceSize::Fraction(0.6),
            training_method: TrainingMethod::Patches,
            lam: 6.0,
            drift_delta: Some(1e-5),
            warning_delta: Some(1e-4),
            weighted_vote: true,
            seed: 42,
            jobs: 1,
            tree,
        }
    }
}

/// A tree on a subspace with its detectors and accuracy.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Learner {
    tree: HoeffdingTree,
    /// Feature indices this tree sees, in order; `None`: all.
    features: Option<Vec<usize>>,
    drift: Option<Adwin>,
    warning: Option<Adwin>,
    accuracy: Accuracy,
}

impl Learner {
    fn new(p: &SrpParams, features: Option<Vec<usize>>) -> Self {
        let mut tp = p.tree.clone();
        if let Some(f) = &features {
            tp.nominal = f.iter().map(|&i| p.tree.is_nominal(i)).collect();
        }
        Learner {
            tree: HoeffdingTree::new(tp),
            features,
            drift: p.drift_delta.map(Adwin::new),
            warning: p.drift_delta.and(p.warning_delta).map(Adwin::new),
            accuracy: Accuracy::default(),
        }
    }

    /// `x` restricted to this learner's subspace (or `x` itself).
    fn view<'a>(&self, x: &'a [f64], buf: &'a mut Vec<f64>) -> &'a [f64] {
        match &self.features {
            None => x,
            Some(f) => {
                buf.clear();
                buf.extend(f.iter().map(|&i| feature(x, i)));
                buf
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.tree.memory_bytes()
            + self.features.as_ref().map_or(0, vec_bytes)
            + self.drift.as_ref().map_or(0, Adwin::memory_bytes)
            + self.warning.as_ref().map_or(0, Adwin::memory_bytes)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Member {
    main: Learner,
    background: Option<Learner>,
    rng: Rng,
    n_warnings: u64,
    n_drifts: u64,
}

/// A random subspace of `k` of the `n` features, sorted.
fn random_subspace(rng: &mut Rng, n: usize, k: usize) -> Vec<usize> {
    let mut f = rng.sample_indices(n, k);
    f.sort_unstable();
    f
}

impl Member {
    fn step(&mut self, x: &[f64], y: usize, p: &SrpParams, xs: &mut Vec<f64>, pr: &mut Vec<f64>) {
        {
            let v = self.main.view(x, xs);
            self.main.tree.predict_proba_into(v, pr);
        }
        if let Some(pred) = argmax(pr) {
            self.main.accuracy.update(pred == y);
        }
        let k = match p.training_method {
            TrainingMethod::Subspaces => 1,
            _ => self.rng.poisson(p.lam),
        };
        if k == 0 {
            return;
        }
        let w = f64::from(k);
        let v = self.main.view(x, xs);
        self.main.tree.learn_one(v, y, w);
        if let Some(bg) = &mut self.background {
            let mut bxs = Vec::new();
            let v = bg.view(x, &mut bxs);
            bg.tree.learn_one(v, y, w);
        }
        if self.main.drift.is_none() {
            return;
        }
        let v = self.main.view(x, xs);
        self.main.tree.predict_proba_into(v, pr);
        let err = if argmax(pr) == Some(y) { 0.0 } else { 1.0 };
        let n = x.len();
        let k_sub = self.main.features.as_ref().map(Vec::len);
        if let (Some(wd), Some(delta)) = (&mut self.main.warning, p.warning_delta) {
            if wd.add(err) {
                self.n_warnings += 1;
                let sub = k_sub.map(|k| random_subspace(&mut self.rng, n, k));
                self.background = Some(Learner::new(p, sub));
                *wd = Adwin::new(delta);
            }
        }
        let drifted = match &mut self.main.drift {
            Some(dd) => dd.add(err),
            None => false,
        };
        if drifted {
            self.n_drifts += 1;
            match self.background.take() {
                Some(bg) => self.main = bg,
                None => {
                    let sub = k_sub.map(|k| random_subspace(&mut self.rng, n, k));
                    let warning = self.main.warning.take();
                    self.main = Learner::new(p, sub);
                    // River keeps the warning detector on a plain reset.
                    if warning.is_some() {
                        self.main.warning = warning;
                    }
                }
            }
        }
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.main.memory_bytes()
            + self.background.as_ref().map_or(0, Learner::memory_bytes)
    }
}

/// Streaming Random Patches classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Srp {
    params: SrpParams,
    /// Empty until the first sample.
    members: Vec<Member>,
    n_classes: usize,
    #[serde(skip)]
    xs: Vec<f64>,
    #[serde(skip)]
    pr: Vec<f64>,
}

/// The first `count` k-combinations of `0..n` in lexicographic order,
/// starting over when they run out (Python's
/// `cycle(combinations(range(n), k))`).
fn lex_combinations(n: usize, k: usize, count: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::with_capacity(count);
    if k == 0 || k > n {
        return out;
    }
    let mut c: Vec<usize> = (0..k).collect();
    while out.len() < count {
        out.push(c.clone());
        // Next combination: rightmost index that can still grow.
        let mut i = k;
        loop {
            if i == 0 {
                c = (0..k).collect();
                break;
            }
            i -= 1;
            if c[i] < n - k + i {
                c[i] += 1;
                for j in i + 1..k {
                    c[j] = c[j - 1] + 1;
                }
                break;
            }
        }
    }
    out
}

impl Srp {
    pub fn new(params: SrpParams) -> Self {
        Srp {
            params,
            members: Vec::new(),
            n_classes: 0,
            xs: Vec::new(),
            pr: Vec::new(),
        }
    }

    pub fn params(&self) -> &SrpParams {
        &self.params
    }

    pub fn n_drifts(&self) -> u64 {
        self.members.iter().map(|m| m.n_drifts).sum()
    }

    /// Subspace size for `n` features, or `None` to train on all of them.
    fn subspace_k(&self, n: usize) -> Option<usize> {
        if self.params.training_method == TrainingMethod::Resampling {
            return None;
        }
        let nf = n as f64;
        let mut k = match self.params.subspace_size {
            SubspaceSize::Fraction(f) => {
                let k = (nf * f).round() as i64;
                if k < 2 {
                    k + 1
                } else {
                    k
                }
            }
            SubspaceSize::Count(c) => c,
            SubspaceSize::Sqrt => nf.sqrt().round() as i64 + 1,
        };
        if k < 0 {
            k += n as i64;
        }
        if k <= 0 || k as usize >= n {
            return None;
        }
        Some(k as usize)
    }

    fn init(&mut self, n: usize) {
        let mut rng = Rng::new(self.params.seed);
        let m = self.params.n_models;
        let subspaces: Vec<Option<Vec<usize>>> = match self.subspace_k(n) {
            None => vec![None; m],
            Some(mut k) => {
                if n <= 20 || k < 2 {
                    if k == 1 && n > 2 {
                        k = 2;
                    }
                    lex_combinations(n, k, m).into_iter().map(Some).collect()
                } else {
                    (0..m)
                        .map(|_| Some(random_subspace(&mut rng, n, k)))
                        .collect()
                }
            }
        };
        let mut order: Vec<usize> = (0..m).collect();
        if self.params.training_method != TrainingMethod::Resampling {
            rng.shuffle(&mut order);
        }
        self.members = order
            .into_iter()
            .map(|i| Member {
                main: Learner::new(&self.params, subspaces.get(i).cloned().flatten()),
                background: None,
                rng: Rng::new(rng.next_u64()),
                n_warnings: 0,
                n_drifts: 0,
            })
            .collect();
    }
}

impl Classifier for Srp {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !(weight > 0.0 && weight.is_finite()) {
            return;
        }
        if self.members.is_empty() {
            self.init(x.len());
        }
        self.n_classes = self.n_classes.max(y + 1);
        let p = &self.params;
        if p.jobs <= 1 {
            let (xs, pr) = (&mut self.xs, &mut self.pr);
            for m in &mut self.members {
                m.step(x, y, p, xs, pr);
            }
        } else {
            for_each_par(&mut self.members, p.jobs, |m| {
                let (mut xs, mut pr) = (Vec::new(), Vec::new());
                m.step(x, y, p, &mut xs, &mut pr);
            });
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        let (mut xs, mut p) = (Vec::new(), Vec::new());
        for m in &self.members {
            let v = m.main.view(x, &mut xs);
            m.main.tree.predict_proba_into(v, &mut p);
            let acc = m.main.accuracy.get();
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
            + vec_bytes(&self.members)
            + self.members.iter().map(Member::memory_bytes).sum::<usize>()
            + vec_bytes(&self.xs)
            + vec_bytes(&self.pr)
    }
}

/// Parameters of `srp`, as `shoal-bench models` shows them.
pub const SRP_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "n_models",
        default: "10",
        help: "trees in the ensemble (MOA: 100)",
    },
    ParamDoc {
        name: "subspace_size",
        default: "0.6",
        help: "features per tree: a fraction, a count (negative = M - n) or sqrt",
    },
    ParamDoc {
        name: "training_method",
        default: "patches",
        help: "patches | subspaces (no bagging) | resampling (all features)",
    },
    ParamDoc {
        name: "lam",
        default: "6",
        help: "Poisson rate of online bagging",
    },
    ParamDoc {
        name: "drift_delta",
        default: "1e-5",
        help: "ADWIN delta of each tree's drift detector; none disables",
    },
    ParamDoc {
        name: "warning_delta",
        default: "1e-4",
        help: "ADWIN delta of the warning detector (background trees); none disables",
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
        help: "tree: significance of the Hoeffding bound (other ht parameters are accepted too)",
    },
    ParamDoc {
        name: "seed",
        default: "42",
        help: "seed of the subspaces and bagging weights",
    },
    ParamDoc {
        name: "jobs",
        default: "1",
        help: "threads that train the trees (results do not depend on it)",
    },
];

/// Build `srp` from a spec such as `srp:subspace_size=0.5,n_models=20`.
pub fn build_srp(spec: &Spec, schema: &Schema) -> Result<Srp, SpecError> {
    let mut r = spec.reader();
    let d = SrpParams::default();
    let n_models = read_n_models(&mut r, d.n_models)?;
    let ss = r.string("subspace_size", "0.6");
    let bad = |why: &str| SpecError::BadValue {
        name: spec.name.clone(),
        param: "subspace_size".into(),
        value: ss.clone(),
        why: why.into(),
    };
    let subspace_size = if ss.eq_ignore_ascii_case("sqrt") {
        SubspaceSize::Sqrt
    } else if ss.contains('.') || ss.contains('e') {
        match ss.parse::<f64>() {
            Ok(f) if f > 0.0 && f <= 1.0 => SubspaceSize::Fraction(f),
            _ => return Err(bad("a fraction must be in (0, 1]")),
        }
    } else {
        match ss.parse::<i64>() {
            Ok(c) if c != 0 && c.unsigned_abs() < 1 << 32 => SubspaceSize::Count(c),
            _ => return Err(bad("sqrt, a fraction or a non-zero count")),
        }
    };
    let training_method = match r.choice(
        "training_method",
        "patches",
        &["patches", "subspaces", "resampling"],
    )? {
        "subspaces" => TrainingMethod::Subspaces,
        "resampling" => TrainingMethod::Resampling,
        _ => TrainingMethod::Patches,
    };
    let lam = r.f64_in("lam", d.lam, 0.0, 100.0)?;
    let drift_delta = super::read_delta_opt(&mut r, &spec.name, "drift_delta", 1e-5)?;
    let warning_delta = super::read_delta_opt(&mut r, &spec.name, "warning_delta", 1e-4)?;
    let weighted_vote = r.bool("weighted_vote", true)?;
    let seed = r.u64("seed", d.seed)?;
    let jobs = read_jobs(&mut r)?;
    let tree = read_forest_tree(spec, &mut r, schema)?;
    r.finish()?;
    Ok(Srp::new(SrpParams {
        n_models,
        subspace_size,
        training_method,
        lam,
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
    fn combinations_are_lexicographic_and_cycle() {
        let c = lex_combinations(3, 2, 5);
        assert_eq!(
            c,
            vec![vec![0, 1], vec![0, 2], vec![1, 2], vec![0, 1], vec![0, 2]]
        );
        assert_eq!(lex_combinations(8, 5, 10)[4], vec![0, 1, 2, 4, 5]);
    }

    #[test]
    fn subspaces_follow_river_sizes() {
        let schema = Schema::numeric(8, &["0", "1"]);
        let mut m = build_srp(&Spec::parse("srp").unwrap(), &schema).unwrap();
        m.learn_one(&[0.0; 8], 0, 1.0);
        for mem in &m.members {
            assert_eq!(mem.main.features.as_ref().unwrap().len(), 5);
        }
        let mut m = build_srp(
            &Spec::parse("srp:training_method=resampling").unwrap(),
            &schema,
        )
        .unwrap();
        m.learn_one(&[0.0; 8], 0, 1.0);
        assert!(m.members.iter().all(|mem| mem.main.features.is_none()));
    }

    #[test]
    fn learns_and_jobs_do_not_change_results() {
        let schema = Schema::numeric(4, &["0", "1"]);
        let mut one = build_srp(&Spec::parse("srp").unwrap(), &schema).unwrap();
        let mut two = build_srp(&Spec::parse("srp:jobs=2").unwrap(), &schema).unwrap();
        let mut rng = Rng::new(1);
        let mut right = 0;
        for i in 0..6000 {
            let x: Vec<f64> = (0..4).map(|_| rng.uniform(0.0, 1.0)).collect();
            let y = usize::from(x[0] + x[1] > 1.0);
            let p = one.predict_proba_one(&x);
            assert_eq!(p, two.predict_proba_one(&x));
            if i >= 3000 {
                right += usize::from(argmax(&p) == Some(y));
            }
            one.learn_one(&x, y, 1.0);
            two.learn_one(&x, y, 1.0);
        }
        assert!(right > 2700, "{right}/3000");
    }
}
