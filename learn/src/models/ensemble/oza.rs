//! Oza bagging and boosting (Oza & Russell 2001, "Online bagging and
//! boosting"), as River's `ensemble.BaggingClassifier` and
//! `ensemble.AdaBoostClassifier`.
//!
//! Bagging trains each member with a Poisson(1) weight and votes with the
//! normalised sum of the members' probabilities. Boosting passes each
//! sample down the chain of members with a Poisson(lambda) weight, where
//! lambda starts at 1 and grows after a member errs and shrinks after it is
//! right (by the member's running weighted error); a member votes with
//! weight `ln((1 - e) / e)` of its error `e` (1 when `e` is 0 or above
//! one half).

use serde::{Deserialize, Serialize};

use super::leveraging::{Bag, JOBS_DOC, MODEL_DOC};
use super::{add_scaled, finish_vote, read_jobs, read_n_models, Base};
use crate::classifier::{argmax, vec_bytes, Classifier};
use crate::rng::Rng;
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

/// Oza bagging classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OzaBagging {
    bag: Bag,
}

impl OzaBagging {
    pub fn new(base: Base, n_models: usize, seed: u64, jobs: usize) -> Self {
        OzaBagging {
            bag: Bag::new(base, n_models, 1.0, 0.002, seed, jobs),
        }
    }
}

impl Classifier for OzaBagging {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !(weight > 0.0 && weight.is_finite()) {
            return;
        }
        let bag = &mut self.bag;
        bag.n_classes = bag.n_classes.max(y + 1);
        super::for_each_par(&mut bag.members, bag.jobs, |m| {
            let k = m.rng.poisson(1.0);
            if k > 0 {
                m.model.learn_one(x, y, f64::from(k));
            }
        });
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        self.bag.predict(x, out)
    }

    fn n_classes(&self) -> usize {
        self.bag.n_classes
    }

    fn memory_bytes(&self) -> usize {
        // The unused detectors are counted too: they are allocated.
        std::mem::size_of::<Self>() + self.bag.memory_bytes()
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Booster {
    model: Base,
    correct: f64,
    wrong: f64,
}

/// Oza boosting classifier (River's `AdaBoostClassifier`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OzaBoosting {
    members: Vec<Booster>,
    rng: Rng,
    n_classes: usize,
    #[serde(skip)]
    buf: Vec<f64>,
}

impl OzaBoosting {
    pub fn new(base: Base, n_models: usize, seed: u64) -> Self {
        OzaBoosting {
            members: (0..n_models)
                .map(|_| Booster {
                    model: base.clone(),
                    correct: 0.0,
                    wrong: 0.0,
                })
                .collect(),
            rng: Rng::new(seed),
            n_classes: 0,
            buf: Vec::new(),
        }
    }
}

impl Classifier for OzaBoosting {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !(weight > 0.0 && weight.is_finite()) {
            return;
        }
        self.n_classes = self.n_classes.max(y + 1);
        let mut lambda = 1.0f64;
        for m in &mut self.members {
            let k = self.rng.poisson(lambda);
            if k > 0 {
                m.model.learn_one(x, y, f64::from(k));
            }
            m.model.predict_proba_into(x, &mut self.buf);
            if argmax(&self.buf) == Some(y) {
                m.correct += lambda;
                lambda *= (m.correct + m.wrong) / (2.0 * m.correct);
            } else {
                m.wrong += lambda;
                lambda *= (m.correct + m.wrong) / (2.0 * m.wrong);
            }
            // Poisson draws beyond ~700 would underflow exp(-lambda).
            if !lambda.is_finite() || lambda > 100.0 {
                lambda = 100.0;
            }
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        let mut p = Vec::new();
        for m in &self.members {
            let e = (m.wrong + 1e-16) / (m.correct + m.wrong + 1e-16);
            let w = if e == 0.0 || e > 0.5 {
                1.0
            } else {
                let beta_inv = (1.0 - e) / e;
                if beta_inv != 0.0 {
                    beta_inv.ln()
                } else {
                    0.0
                }
            };
            m.model.predict_proba_into(x, &mut p);
            add_scaled(out, &p, w);
        }
        finish_vote(out, self.n_classes);
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + vec_bytes(&self.members)
            + self
                .members
                .iter()
                .map(|m| m.model.memory_bytes() - std::mem::size_of::<Base>())
                .sum::<usize>()
            + vec_bytes(&self.buf)
    }
}

/// Parameters of `oza_bag`.
pub const OZA_BAG_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "n_models",
        default: "10",
        help: "members",
    },
    MODEL_DOC,
    ParamDoc {
        name: "seed",
        default: "42",
        help: "seed of the resampling weights",
    },
    JOBS_DOC,
];

/// Parameters of `oza_boost`.
pub const OZA_BOOST_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "n_models",
        default: "10",
        help: "members",
    },
    MODEL_DOC,
    ParamDoc {
        name: "seed",
        default: "42",
        help: "seed of the resampling weights",
    },
];

/// Build `oza_bag` from a spec such as `oza_bag:model=nb,n_models=5`.
pub fn build_oza_bag(spec: &Spec, schema: &Schema) -> Result<OzaBagging, SpecError> {
    let mut r = spec.reader();
    let n_models = read_n_models(&mut r, 10)?;
    let base = Base::from_reader(&mut r, &spec.name, schema)?;
    let seed = r.u64("seed", 42)?;
    let jobs = read_jobs(&mut r)?;
    r.finish()?;
    Ok(OzaBagging::new(base, n_models, seed, jobs))
}

/// Build `oza_boost` from a spec such as `oza_boost:model=ht`.
pub fn build_oza_boost(spec: &Spec, schema: &Schema) -> Result<OzaBoosting, SpecError> {
    let mut r = spec.reader();
    let n_models = read_n_models(&mut r, 10)?;
    let base = Base::from_reader(&mut r, &spec.name, schema)?;
    let seed = r.u64("seed", 42)?;
    r.finish()?;
    Ok(OzaBoosting::new(base, n_models, seed))
}
