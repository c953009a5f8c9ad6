//! Leveraging Bagging (Bifet, Holmes & Pfahringer 2010, "Leveraging
//! bagging for evolving data streams"), as River's
//! `ensemble.LeveragingBaggingClassifier` with `bagging_method="bag"`.
//!
//! Online bagging with a heavier resampling weight, Poisson(`w`) with `w`
//! 6, and one ADWIN detector per member on its 0/1 error, measured right
//! after the member trained on the sample (River's order). When a
//! detector fires with a rising error, the member with the highest
//! estimated error is replaced by a fresh one. The output-code variant of
//! the paper (and MOA's `-o`) is not used, as in River, which has none.
//! The vote is the normalised sum of the members' class probabilities.

use serde::{Deserialize, Serialize};

use super::{add_scaled, finish_vote, for_each_par, read_jobs, read_n_models, Base};
use crate::classifier::{vec_bytes, Classifier};
use crate::drift::Adwin;
use crate::rng::Rng;
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Member {
    pub model: Base,
    pub detector: Adwin,
    pub rng: Rng,
    /// Set by the last update: the detector fired with a rising error.
    #[serde(skip)]
    pub changed: bool,
}

impl Member {
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.model.memory_bytes() + self.detector.memory_bytes()
            - std::mem::size_of::<Base>()
            - std::mem::size_of::<Adwin>()
    }

    /// Train with a Poisson(`lambda`) weight, then feed the detector the
    /// member's 0/1 error on this sample.
    pub fn step(&mut self, x: &[f64], y: usize, lambda: f64, buf: &mut Vec<f64>) {
        let k = self.rng.poisson(lambda);
        if k > 0 {
            self.model.learn_one(x, y, f64::from(k));
        }
        self.model.predict_proba_into(x, buf);
        self.changed = false;
        if let Some(pred) = crate::classifier::argmax(buf) {
            let before = self.detector.estimation();
            let err = if pred == y { 0.0 } else { 1.0 };
            if self.detector.add(err) && self.detector.estimation() > before {
                self.changed = true;
            }
        }
    }
}

/// Members of a bagging ensemble, their template and shared bookkeeping.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Bag {
    pub template: Base,
    pub members: Vec<Member>,
    pub lambda: f64,
    pub adwin_delta: f64,
    pub jobs: usize,
    pub n_classes: usize,
    pub n_changes: u64,
    #[serde(skip)]
    pub buf: Vec<f64>,
}

impl Bag {
    pub fn new(
        template: Base,
        n_models: usize,
        lambda: f64,
        adwin_delta: f64,
        seed: u64,
        jobs: usize,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let members = (0..n_models)
            .map(|_| Member {
                model: template.clone(),
                detector: Adwin::new(adwin_delta),
                rng: Rng::new(rng.next_u64()),
                changed: false,
            })
            .collect();
        Bag {
            template,
            members,
            lambda,
            adwin_delta,
            jobs,
            n_classes: 0,
            n_changes: 0,
            buf: Vec::new(),
        }
    }

    /// One update of every member, then the replacement of the worst one
    /// if any detector saw the error rise.
    pub fn learn(&mut self, x: &[f64], y: usize) {
        self.n_classes = self.n_classes.max(y + 1);
        let lambda = self.lambda;
        if self.jobs <= 1 {
            let buf = &mut self.buf;
            for m in &mut self.members {
                m.step(x, y, lambda, buf);
            }
        } else {
            for_each_par(&mut self.members, self.jobs, |m| {
                let mut buf = Vec::new();
                m.step(x, y, lambda, &mut buf);
            });
        }
        if self.members.iter().any(|m| m.changed) {
            self.n_changes += 1;
            // The first member with the highest estimated error (Python's max).
            let mut worst = 0;
            for (i, m) in self.members.iter().enumerate() {
                if m.detector.estimation() > self.members[worst].detector.estimation() {
                    worst = i;
                }
            }
            let m = &mut self.members[worst];
            m.model = self.template.clone();
            m.detector = Adwin::new(self.adwin_delta);
        }
    }

    /// Normalised sum of the members' probabilities.
    pub fn predict(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        let mut p = Vec::new();
        for m in &self.members {
            m.model.predict_proba_into(x, &mut p);
            add_scaled(out, &p, 1.0);
        }
        finish_vote(out, self.n_classes);
    }

    pub fn memory_bytes(&self) -> usize {
        self.template.memory_bytes()
            + vec_bytes(&self.members)
            + self.members.iter().map(Member::memory_bytes).sum::<usize>()
            + vec_bytes(&self.buf)
    }
}

/// Leveraging Bagging classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeveragingBagging {
    bag: Bag,
}

impl LeveragingBagging {
    /// `n_models` copies of `base`, Poisson(`w`) weights, ADWIN(`adwin_delta`).
    pub fn new(base: Base, n_models: usize, w: f64, adwin_delta: f64, seed: u64) -> Self {
        LeveragingBagging {
            bag: Bag::new(base, n_models, w, adwin_delta, seed, 1),
        }
    }

    /// Members replaced after a detected change.
    pub fn n_changes(&self) -> u64 {
        self.bag.n_changes
    }
}

impl Classifier for LeveragingBagging {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if weight > 0.0 && weight.is_finite() {
            self.bag.learn(x, y);
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        self.bag.predict(x, out)
    }

    fn n_classes(&self) -> usize {
        self.bag.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.bag.memory_bytes()
    }
}

pub(crate) const MODEL_DOC: ParamDoc = ParamDoc {
    name: "model",
    default: "ht",
    help: "base model name (any non-ensemble model, with its defaults)",
};

pub(crate) const JOBS_DOC: ParamDoc = ParamDoc {
    name: "jobs",
    default: "1",
    help: "threads that train the members (results do not depend on it)",
};

/// Parameters of `lb`.
pub const LB_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "n_models",
        default: "10",
        help: "members",
    },
    MODEL_DOC,
    ParamDoc {
        name: "w",
        default: "6",
        help: "Poisson rate of the resampling weights",
    },
    ParamDoc {
        name: "adwin_delta",
        default: "0.002",
        help: "ADWIN delta of each member's error detector",
    },
    ParamDoc {
        name: "seed",
        default: "42",
        help: "seed of the resampling weights",
    },
    JOBS_DOC,
];

/// Build `lb` from a spec such as `lb:n_models=10,model=ht`.
pub fn build_lb(spec: &Spec, schema: &Schema) -> Result<LeveragingBagging, SpecError> {
    let mut r = spec.reader();
    let n_models = read_n_models(&mut r, 10)?;
    let base = Base::from_reader(&mut r, &spec.name, schema)?;
    let w = r.f64_in("w", 6.0, 0.0, 100.0)?;
    let adwin_delta = r.f64_in("adwin_delta", 0.002, 1e-12, 1.0)?;
    let seed = r.u64("seed", 42)?;
    let jobs = read_jobs(&mut r)?;
    r.finish()?;
    let mut m = LeveragingBagging::new(base, n_models, w, adwin_delta, seed);
    m.bag.jobs = jobs;
    Ok(m)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn replaces_a_member_after_drift_and_recovers() {
        let schema = Schema::numeric(2, &["0", "1"]);
        let mut m = build_lb(&Spec::parse("lb:jobs=2").unwrap(), &schema).unwrap();
        let mut rng = Rng::new(4);
        let mut right = 0;
        for i in 0..12_000 {
            let x = [rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0)];
            let c = x[0] > 0.5;
            let y = usize::from(if i < 6000 { c } else { !c });
            if i >= 9000 {
                right += usize::from(m.predict_one(&x) == Some(y));
            }
            m.learn_one(&x, y, 1.0);
        }
        assert!(m.n_changes() > 0);
        assert!(right > 2700, "{right}/3000");
    }
}
