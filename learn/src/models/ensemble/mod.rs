//! Online ensembles: Adaptive Random Forest ([`Arf`]), Streaming Random
//! Patches ([`Srp`]), Leveraging Bagging ([`LeveragingBagging`]), Oza
//! bagging and boosting ([`OzaBagging`], [`OzaBoosting`]) and ADWIN bagging
//! ([`AdwinBagging`]). Semantics and defaults follow River's
//! `forest.ARFClassifier`, `ensemble.SRPClassifier`,
//! `ensemble.LeveragingBaggingClassifier`, `ensemble.BaggingClassifier`,
//! `ensemble.AdaBoostClassifier` and `ensemble.ADWINBaggingClassifier`;
//! `docs/ensembles.md` lists every default and where MOA differs.
//!
//! Shared design:
//!
//! - Online bagging draws a Poisson count `k` per member and sample and
//!   trains the member once with weight `k` (River calls `learn_one` `k`
//!   times for LB, SRP and Oza bagging; for a Hoeffding tree the two are
//!   the same statistics up to float rounding and the order of split
//!   checks, and one weighted update is `k` times cheaper).
//! - Every member owns its random generator, seeded from the ensemble's
//!   seed. A member's whole update (predict, draw, train, detectors) then
//!   depends on nothing but the sample, so members can train on several
//!   threads (`jobs`) with results identical to `jobs=1`.
//! - Members of the bagging-style ensembles are built from a base spec
//!   (`model=ht`, any non-ensemble model with its defaults); ensembles do
//!   not nest, which also keeps snapshots from a peer shallow.

pub mod adwin_bagging;
pub mod arf;
pub mod arf_tree;
pub mod leveraging;
pub mod oza;
pub mod srp;

pub use adwin_bagging::AdwinBagging;
pub use arf::Arf;
pub use leveraging::LeveragingBagging;
pub use oza::{OzaBagging, OzaBoosting};
pub use srp::Srp;

use serde::{Deserialize, Serialize};

use crate::classifier::Classifier;
use crate::model::{self, Model};
use crate::schema::Schema;
use crate::spec::{ParamReader, Spec, SpecError};

/// Most threads an ensemble may use for one update.
pub const MAX_JOBS: usize = 64;

/// Run `f` on every item, on up to `jobs` scoped threads (in place when
/// `jobs <= 1`). Threads take items one at a time from a shared queue and
/// this thread drains it too, so if the OS refuses a thread nothing is
/// skipped.
pub(crate) fn for_each_par<T, F>(items: &mut [T], jobs: usize, f: F)
where
    T: Send,
    F: Fn(&mut T) + Sync,
{
    if jobs <= 1 || items.len() < 2 {
        items.iter_mut().for_each(f);
        return;
    }
    let items_len = items.len();
    let queue = std::sync::Mutex::new(items.iter_mut());
    let work = || loop {
        let next = match queue.lock() {
            Ok(mut q) => q.next(),
            Err(_) => None,
        };
        match next {
            Some(item) => f(item),
            None => break,
        }
    };
    std::thread::scope(|s| {
        for _ in 1..jobs.min(MAX_JOBS).min(items_len) {
            // A refused thread only means less parallelism.
            let _ = std::thread::Builder::new().spawn_scoped(s, work);
        }
        work();
    });
}

/// Prequential accuracy of one member (River's `metrics.Accuracy`), the
/// weight of its vote.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub correct: f64,
    pub seen: f64,
}

impl Accuracy {
    pub fn update(&mut self, right: bool) {
        self.seen += 1.0;
        if right {
            self.correct += 1.0;
        }
    }

    pub fn get(&self) -> f64 {
        if self.seen > 0.0 {
            self.correct / self.seen
        } else {
            0.0
        }
    }
}

/// Add `w * p` into `out` (extended to `p`'s length).
pub(crate) fn add_scaled(out: &mut Vec<f64>, p: &[f64], w: f64) {
    if out.len() < p.len() {
        out.resize(p.len(), 0.0);
    }
    for (o, &v) in out.iter_mut().zip(p) {
        if v.is_finite() {
            *o += w * v;
        }
    }
}

/// Normalise a vote to sum to one, leaving an all-zero vote at zero (no
/// member has learnt anything yet).
pub(crate) fn finish_vote(out: &mut Vec<f64>, n_classes: usize) {
    out.resize(n_classes, 0.0);
    let s: f64 = out.iter().filter(|v| v.is_finite()).sum();
    if s > 0.0 && s.is_finite() {
        for v in out.iter_mut() {
            *v = if v.is_finite() { *v / s } else { 0.0 };
        }
    } else {
        out.iter_mut().for_each(|v| *v = 0.0);
    }
}

/// A member of a bagging-style ensemble: any model that is not itself an
/// ensemble (so snapshots cannot nest without bound).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "Model", into = "Model")]
pub struct Base(Box<Model>);

impl TryFrom<Model> for Base {
    type Error = String;

    fn try_from(m: Model) -> Result<Self, String> {
        if m.is_ensemble() {
            Err(format!("an ensemble ({}) cannot be a base model", m.kind()))
        } else {
            Ok(Base(Box::new(m)))
        }
    }
}

impl From<Base> for Model {
    fn from(b: Base) -> Model {
        *b.0
    }
}

impl Base {
    /// Build the base model named by parameter `model` (default `ht`) of a
    /// reader, e.g. `lb:model=nb`. Only the name: the base gets its own
    /// defaults (for `ht`, `grace_period` and `delta` may be passed to the
    /// ensemble and are forwarded).
    pub fn from_reader(
        r: &mut ParamReader<'_>,
        owner: &str,
        schema: &Schema,
    ) -> Result<Base, SpecError> {
        let name = r.string("model", "ht");
        let spec = Spec::parse(&name)?;
        if !spec.params.is_empty() {
            return Err(SpecError::BadValue {
                name: owner.into(),
                param: "model".into(),
                value: name,
                why: "give only a model name; the base model uses its defaults".into(),
            });
        }
        let m = model::build(&spec, schema)?;
        Base::try_from(m).map_err(|why| SpecError::BadValue {
            name: owner.into(),
            param: "model".into(),
            value: name,
            why,
        })
    }

    pub fn model(&self) -> &Model {
        &self.0
    }
}

impl Classifier for Base {
    #[inline]
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        self.0.learn_one(x, y, weight)
    }

    #[inline]
    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        self.0.predict_proba_into(x, out)
    }

    fn n_classes(&self) -> usize {
        self.0.n_classes()
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.0.memory_bytes()
    }
}

/// Read `jobs` (default 1).
pub(crate) fn read_jobs(r: &mut ParamReader<'_>) -> Result<usize, SpecError> {
    r.usize_in("jobs", 1, 1, MAX_JOBS)
}

/// Read the number of members (default `default`).
pub(crate) fn read_n_models(r: &mut ParamReader<'_>, default: usize) -> Result<usize, SpecError> {
    r.usize_in("n_models", default, 1, 1000)
}

/// Read an optional ADWIN delta: a number in (0, 1], or `none` to disable.
pub(crate) fn read_delta_opt(
    r: &mut ParamReader<'_>,
    owner: &str,
    key: &'static str,
    default: f64,
) -> Result<Option<f64>, SpecError> {
    let s = r.string(key, &default.to_string());
    if s.eq_ignore_ascii_case("none") || s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v <= 1.0 => Ok(Some(v)),
        _ => Err(SpecError::BadValue {
            name: owner.into(),
            param: key.into(),
            value: s,
            why: "a number in (0, 1], or none".into(),
        }),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parallel_for_each_visits_every_item_once() {
        for jobs in [1, 2, 3, 8] {
            let mut v: Vec<u32> = (0..10).collect();
            for_each_par(&mut v, jobs, |x| *x += 100);
            assert_eq!(v, (100..110).collect::<Vec<_>>());
        }
    }

    #[test]
    fn base_refuses_ensembles_and_parameters() {
        let schema = Schema::numeric(2, &["a", "b"]);
        assert!(model::build_str("lb:model=nb", &schema).is_ok());
        assert!(model::build_str("lb:model=arf", &schema).is_err());
        assert!(model::build_str("lb:model=lb", &schema).is_err());
        assert!(model::build_str("lb:model=nosuch", &schema).is_err());
    }
}
