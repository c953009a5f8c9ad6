//! ADWIN bagging (Bifet et al. 2009, "New ensemble methods for evolving
//! data streams"), as River's `ensemble.ADWINBaggingClassifier`: Oza
//! bagging (Poisson(1) weights) with an ADWIN detector (delta 0.002) per
//! member; when one fires with a rising error, the member with the highest
//! estimated error is replaced by a fresh one.
//!
//! One deliberate difference: River feeds each detector the member's
//! correctness (1 when right) while comparing it as an error; here the
//! detector watches the 0/1 error, as the paper and MOA do, so it is the
//! worst member that gets replaced.

use serde::{Deserialize, Serialize};

use super::leveraging::{Bag, JOBS_DOC, MODEL_DOC};
use super::{read_jobs, read_n_models, Base};
use crate::classifier::Classifier;
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

/// ADWIN bagging classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdwinBagging {
    bag: Bag,
}

impl AdwinBagging {
    pub fn new(base: Base, n_models: usize, adwin_delta: f64, seed: u64, jobs: usize) -> Self {
        AdwinBagging {
            bag: Bag::new(base, n_models, 1.0, adwin_delta, seed, jobs),
        }
    }

    /// Members replaced after a detected change.
    pub fn n_changes(&self) -> u64 {
        self.bag.n_changes
    }
}

impl Classifier for AdwinBagging {
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

/// Parameters of `adwin_bag`.
pub const ADWIN_BAG_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "n_models",
        default: "10",
        help: "members",
    },
    MODEL_DOC,
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

/// Build `adwin_bag` from a spec such as `adwin_bag:model=nb`.
pub fn build_adwin_bag(spec: &Spec, schema: &Schema) -> Result<AdwinBagging, SpecError> {
    let mut r = spec.reader();
    let n_models = read_n_models(&mut r, 10)?;
    let base = Base::from_reader(&mut r, &spec.name, schema)?;
    let adwin_delta = r.f64_in("adwin_delta", 0.002, 1e-12, 1.0)?;
    let seed = r.u64("seed", 42)?;
    let jobs = read_jobs(&mut r)?;
    r.finish()?;
    Ok(AdwinBagging::new(base, n_models, adwin_delta, seed, jobs))
}
