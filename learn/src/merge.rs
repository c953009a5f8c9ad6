//! Federated merging: how a model takes in what peers learnt.
//!
//! Every model family declares a [`Strategy`]:
//!
//! - [`Strategy::Exact`] — sufficient statistics (naive Bayes). The local
//!   model keeps only what *this* node learnt; the latest statistics of each
//!   peer are kept per origin and the model used for predictions is
//!   `local + Σ latest(origin)`. A duplicated, replayed or reordered update
//!   is a no-op (only a newer version of an origin replaces the older), so
//!   nothing is ever counted twice: the per-origin table is a
//!   last-writer-wins map, whose merge is commutative, associative and
//!   idempotent.
//! - [`Strategy::Average`] — parameter models (logistic / softmax
//!   regression, perceptron, passive-aggressive): a round replaces the local
//!   parameters by an [`Aggregator`] over the local model and the peer
//!   models received since the last round — the sample-weighted mean
//!   (FedAvg, McMahan et al. 2017; gossip learning, Ormándi, Hegedűs &
//!   Jelasity 2013), or, when peers may be hostile, the coordinate-wise
//!   median or trimmed mean (Yin, Chen, Ramchandran & Bartlett 2018). Each
//!   unit (class row) is aggregated over the models that were taught that
//!   class only, so a node that never saw a class does not drag that class's
//!   weights to zero — this matters when nodes see different classes.
//! - [`Strategy::Committee`] — models that cannot be averaged (Hoeffding
//!   trees, HAT, k-NN, baselines, and any family added later): a bounded
//!   committee of the latest peer models, each weighted by its recent
//!   prequential accuracy on the *local* stream, voting with the local model.
//!
//! [`Federated`] wraps a local [`Model`] and applies the strategy of its
//! kind. Every update goes through [`Federated::check`] first: same kind,
//! finite numbers, parameter norm within `max_norm_ratio` of the local
//! model's, and no more than `max_accuracy_drop` lost on a validation window
//! of recent local samples. The caller (the node) turns a refusal into a
//! lower score for the sender.
//!
//! Classes are numbered in the order each node first saw them; an update
//! carries a class map (peer class → local class) and is renumbered before
//! it merges.
//!
//! ```
//! use shoal_learn::merge::{Federated, MergeConfig, Origin, Update};
//! use shoal_learn::{build_str, Classifier, Schema};
//!
//! let schema = Schema::numeric(2, &["a", "b"]);
//! let mut mine = Federated::new(build_str("nb", &schema).unwrap(), MergeConfig::default());
//! let mut theirs = build_str("nb", &schema).unwrap();
//! theirs.learn_one(&[1.0, 2.0], 1, 1.0);
//! let update = Update::new(Origin(7), 1, 1, theirs);
//! mine.accept(update.clone(), &[]).unwrap();
//! mine.accept(update, &[]).unwrap(); // a duplicate changes nothing
//! assert_eq!(mine.origins().count(), 1);
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::classifier::{argmax, normalize, Classifier};
use crate::model::Model;
use crate::models::linear::{LinearModel, LinearParams};
use crate::models::mlp::{Mlp, MlpParams};
use crate::models::naive_bayes::{ClassStats, GaussianNB};
use crate::schema::Sample;

/// Who an update comes from (a hash of the peer id; the learner does not
/// know about the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Origin(pub u64);

/// How a model family merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Strategy {
    /// Exact merge of sufficient statistics, per origin.
    Exact,
    /// Aggregate parameters (mean, median or trimmed mean).
    Average,
    /// Weighted committee of peer models.
    Committee,
}

impl Strategy {
    /// Short name, for status pages.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Exact => "exact",
            Strategy::Average => "average",
            Strategy::Committee => "committee",
        }
    }
}

/// The strategy of `model`'s family.
pub fn strategy(model: &Model) -> Strategy {
    match model {
        Model::NaiveBayes(_) => Strategy::Exact,
        Model::Logistic(_) | Model::Perceptron(_) | Model::PassiveAggressive(_) | Model::Mlp(_) => {
            Strategy::Average
        }
        _ => Strategy::Committee,
    }
}

/// How parameter vectors are combined, coordinate by coordinate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Aggregator {
    /// Sample-weighted mean (FedAvg).
    Mean,
    /// Coordinate-wise median (weights ignored).
    Median,
    /// Coordinate-wise mean after dropping the `trim` share of the lowest
    /// and of the highest values (weights ignored), `0 <= trim < 0.5`.
    TrimmedMean {
        /// Share dropped at each end.
        trim: f64,
    },
}

impl Aggregator {
    /// Parse `mean`, `median` or `trimmed:0.2`.
    pub fn parse(s: &str) -> Option<Aggregator> {
        match s {
            "mean" => Some(Aggregator::Mean),
            "median" => Some(Aggregator::Median),
            _ => {
                let t: f64 = s.strip_prefix("trimmed:")?.parse().ok()?;
                (0.0..0.5)
                    .contains(&t)
                    .then_some(Aggregator::TrimmedMean { trim: t })
            }
        }
    }

    /// Combine `values` (with `weights`, same length, all positive).
    /// Empty input gives 0. Every result lies within the range of the
    /// values, so finite inputs give a finite output.
    pub fn combine(self, values: &[f64], weights: &[f64]) -> f64 {
        if values.is_empty() {
            return 0.0;
        }
        match self {
            Aggregator::Mean => {
                let total: f64 = weights.iter().sum();
                if !(total > 0.0 && total.is_finite()) {
                    return values.iter().sum::<f64>() / values.len() as f64;
                }
                let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
                let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                let m = values
                    .iter()
                    .zip(weights)
                    .map(|(v, w)| v * (w / total))
                    .sum::<f64>();
                m.clamp(lo, hi)
            }
            Aggregator::Median => {
                let mut v = values.to_vec();
                v.sort_by(f64::total_cmp);
                let n = v.len();
                if n % 2 == 1 {
                    v[n / 2]
                } else {
                    (v[n / 2 - 1] + v[n / 2]) / 2.0
                }
            }
            Aggregator::TrimmedMean { trim } => {
                let mut v = values.to_vec();
                v.sort_by(f64::total_cmp);
                let n = v.len();
                let k = ((n as f64) * trim.clamp(0.0, 0.49)).floor() as usize;
                let kept = &v[k..n - k];
                kept.iter().sum::<f64>() / kept.len() as f64
            }
        }
    }
}

/// Tuning of [`Federated`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeConfig {
    /// Origins remembered at most (least recently updated is forgotten).
    pub max_peers: usize,
    /// Peer models in a committee at most.
    pub committee_size: usize,
    /// How parameter models combine.
    pub aggregator: Aggregator,
    /// Largest ratio of a peer's parameter norm (or total sample weight,
    /// for statistics) to the local model's; the local value is floored at
    /// `norm_floor` so a fresh model can still take updates.
    pub max_norm_ratio: f64,
    /// Floor of the local parameter norm in the ratio above.
    pub norm_floor: f64,
    /// Floor of the largest total sample weight known (local or any
    /// origin) in the ratio above, for statistics.
    pub weight_floor: f64,
    /// Largest drop of accuracy on the local validation window an update
    /// may cause (0.05 = 5 points). Needs at least `min_validation` samples.
    pub max_accuracy_drop: f64,
    /// Validation window size below which the accuracy check is skipped.
    pub min_validation: usize,
    /// Exact (naive Bayes): largest shift, in pooled standard deviations,
    /// of any feature's class-conditional mean between an update and the
    /// local statistics of the same class, when both hold at least
    /// `min_class_weight` samples of it. An honest peer drawing from the
    /// same distribution stays far below; statistics of another class
    /// sent under this label (label flipping) do not.
    pub max_class_shift: f64,
    /// Samples of a class both sides need before the shift is checked.
    pub min_class_weight: f64,
    /// EWMA weight of one sample in a committee member's accuracy.
    pub score_alpha: f64,
    /// Sharpness of committee weights: `exp(sharpness · (acc - best))`.
    pub sharpness: f64,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            max_peers: 32,
            committee_size: 4,
            aggregator: Aggregator::Mean,
            max_norm_ratio: 10.0,
            norm_floor: 10.0,
            weight_floor: 1000.0,
            max_accuracy_drop: 0.05,
            min_validation: 50,
            max_class_shift: 0.75,
            min_class_weight: 200.0,
            score_alpha: 0.01,
            sharpness: 30.0,
        }
    }
}

/// A peer's model, as received.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Update {
    /// Who sent it.
    pub origin: Origin,
    /// The sender's snapshot version (increasing).
    pub version: u64,
    /// Samples the sender learnt from its own stream (its weight).
    pub samples: u64,
    /// Peer class index → local class index; empty means identical order.
    pub class_map: Vec<usize>,
    /// The model.
    pub model: Model,
}

impl Update {
    /// An update whose classes are already in local order.
    pub fn new(origin: Origin, version: u64, samples: u64, model: Model) -> Self {
        Update {
            origin,
            version,
            samples,
            class_map: Vec::new(),
            model,
        }
    }
}

/// Why an update was refused. Nothing changed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MergeError {
    #[error("update is a {theirs} model, ours is {ours}")]
    KindMismatch {
        ours: &'static str,
        theirs: &'static str,
    },
    #[error("update holds non-finite or malformed parameters: {0}")]
    Malformed(String),
    #[error("update's norm is {ratio:.1}x ours (at most {max}x)")]
    NormTooLarge { ratio: f64, max: f64 },
    #[error("update costs {drop:.3} accuracy on {n} local samples (at most {max})")]
    WorseOnLocal { drop: f64, max: f64, n: usize },
    #[error("class map: {0}")]
    ClassMap(String),
    #[error("update's statistics of class {class} contradict the local samples of that class (shift {shift:.2} sd, at most {max})")]
    ClassConflict { class: usize, shift: f64, max: f64 },
    #[error("update's statistics of class {class} contradict those of a source this node trusts")]
    Distrusted { class: usize },
}

/// What [`Federated::accept`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// A new version, merged or queued for the next round.
    New,
    /// Not newer than what this origin already gave: ignored.
    Stale,
}

/// One remembered origin.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Peer {
    version: u64,
    samples: u64,
    /// Latest model (Exact: its statistics; Committee: the member; Average:
    /// kept only until the next round).
    model: Option<Model>,
    /// Class map of `model` (Committee only; others are renumbered).
    class_map: Vec<usize>,
    /// Recent accuracy on the local stream (Committee).
    score: f64,
    /// Accept counter when last updated (for eviction).
    touched: u64,
}

/// A contribution, for `GET /v1/model`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub origin: Origin,
    pub version: u64,
    pub samples: u64,
    /// Committee weight, or the recent accuracy; `None` for other strategies.
    pub score: Option<f64>,
    /// Whether its model currently takes part (Average: merged already).
    pub active: bool,
}

/// A local model and what peers contributed to it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Federated {
    cfg: MergeConfig,
    strategy: Strategy,
    /// What this node learnt itself (Exact), or the current averaged model
    /// (Average), or the local member (Committee).
    local: Model,
    /// Exact only: `local` plus the latest statistics of every origin.
    view: Option<Model>,
    peers: BTreeMap<Origin, Peer>,
    local_samples: u64,
    local_score: f64,
    /// Updates taken in (new versions).
    merges: u64,
    /// Averaging rounds done.
    rounds: u64,
    clock: u64,
}

/// Parameter vector of a linear model, for norm checks.
fn linear_params(m: &Model) -> Option<LinearParams> {
    match m {
        Model::Logistic(l) => Some(l.params()),
        Model::Perceptron(l) => Some(l.params()),
        Model::PassiveAggressive(l) => Some(l.params()),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn linear_mut(m: &mut Model) -> Option<&mut dyn LinearModel> {
    match m {
        Model::Logistic(l) => Some(l),
        Model::Perceptron(l) => Some(l),
        Model::PassiveAggressive(l) => Some(l),
        #[allow(unreachable_patterns)]
        _ => None,
    }
}

fn nb(m: &Model) -> Option<&GaussianNB> {
    match m {
        Model::NaiveBayes(n) => Some(n),
        _ => None,
    }
}

/// Renumber `model`'s classes with `map` when the family supports it.
fn remap(model: &mut Model, map: &[usize]) -> Result<(), MergeError> {
    if map.iter().enumerate().all(|(i, &c)| i == c) {
        return Ok(());
    }
    let kind = model.kind();
    match model {
        Model::NaiveBayes(n) => n.remap_classes(map).map_err(MergeError::ClassMap),
        Model::Mlp(m) => remap_mlp(m, map),
        other => match linear_mut(other) {
            Some(l) => l.remap_classes(map).map_err(MergeError::ClassMap),
            None => Err(MergeError::ClassMap(format!(
                "{kind} models cannot be renumbered"
            ))),
        },
    }
}

/// Renumber an MLP's output units: peer class `i` becomes local class
/// `map[i]`; local classes the peer never had get zero weights.
fn remap_mlp(m: &mut Mlp, map: &[usize]) -> Result<(), MergeError> {
    let p = m.params();
    if p.n_features == 0 {
        return Ok(());
    }
    if map.len() != p.n_classes {
        return Err(MergeError::ClassMap(format!(
            "map of {} classes for an mlp of {}",
            map.len(),
            p.n_classes
        )));
    }
    let c = map
        .iter()
        .copied()
        .max()
        .map_or(0, |x| x + 1)
        .max(p.n_classes);
    if c > crate::models::naive_bayes::MAX_CLASSES {
        return Err(MergeError::ClassMap("too many classes".into()));
    }
    let sizes = p.sizes();
    let n_in = sizes[sizes.len() - 2];
    let body = p.flat.len() - (p.n_classes * n_in + p.n_classes);
    let (w_old, b_old) = p.flat[body..].split_at(p.n_classes * n_in);
    let mut w = vec![0.0f32; c * n_in];
    let mut b = vec![0.0f32; c];
    for (i, &to) in map.iter().enumerate() {
        w[to * n_in..(to + 1) * n_in].copy_from_slice(&w_old[i * n_in..(i + 1) * n_in]);
        b[to] = b_old[i];
    }
    let mut q = p.clone();
    q.flat.truncate(body);
    q.flat.extend_from_slice(&w);
    q.flat.extend_from_slice(&b);
    q.n_classes = c;
    let mut fresh = m.clone();
    fresh.reshape(c, p.n_features);
    fresh.set_params(&q).map_err(MergeError::ClassMap)?;
    *m = fresh;
    Ok(())
}

fn mlp_params(m: &Model) -> Option<MlpParams> {
    match m {
        Model::Mlp(m) => Some(m.params()),
        _ => None,
    }
}

fn mlp_norm(p: &MlpParams) -> f64 {
    p.flat
        .iter()
        .map(|v| f64::from(*v) * f64::from(*v))
        .sum::<f64>()
        .sqrt()
}

/// Sample-weighted (or robust) aggregate of MLP parameters, all brought to
/// the largest shape first (`target`'s hidden layers). Models that learnt
/// nothing yet take no part.
fn average_mlp(
    target: &mut Mlp,
    sets: &[(MlpParams, f64)],
    agg: Aggregator,
) -> Result<(), MergeError> {
    let sets: Vec<&(MlpParams, f64)> = sets.iter().filter(|(p, _)| p.n_features > 0).collect();
    let Some(c) = sets.iter().map(|(p, _)| p.n_classes).max() else {
        return Ok(());
    };
    let f = sets.iter().map(|(p, _)| p.n_features).max().unwrap_or(0);
    let mut aligned = Vec::with_capacity(sets.len());
    for (p, w) in sets {
        let mut m = target.clone();
        m.reshape(p.n_classes, p.n_features);
        m.set_params(p).map_err(MergeError::Malformed)?;
        m.reshape(c, f);
        aligned.push((m.params(), *w));
    }
    let first = &aligned[0].0;
    if aligned
        .iter()
        .any(|(p, _)| p.flat.len() != first.flat.len() || p.hidden != first.hidden)
    {
        return Err(MergeError::Malformed("mlp shapes do not line up".into()));
    }
    let ws: Vec<f64> = aligned.iter().map(|(_, w)| w.max(1e-12)).collect();
    let mut out = first.clone();
    let mut vals = Vec::with_capacity(aligned.len());
    for (k, v) in out.flat.iter_mut().enumerate() {
        vals.clear();
        vals.extend(aligned.iter().map(|(p, _)| f64::from(p.flat[k])));
        *v = agg.combine(&vals, &ws) as f32;
    }
    for k in 0..out.mean.len() {
        vals.clear();
        vals.extend(aligned.iter().map(|(p, _)| p.mean[k]));
        out.mean[k] = Aggregator::Mean.combine(&vals, &ws);
        vals.clear();
        vals.extend(aligned.iter().map(|(p, _)| p.var[k]));
        out.var[k] = Aggregator::Mean.combine(&vals, &ws).max(0.0);
    }
    target.reshape(c, f);
    target.set_params(&out).map_err(MergeError::Malformed)
}

/// The largest shift of a class-conditional mean between `ours` and
/// `theirs` (same class numbering), in pooled standard deviations, over
/// the classes and numeric features both hold at least `min_weight`
/// samples of; with the class it occurs in. `None` when no class qualifies.
pub fn class_shift(
    ours: &GaussianNB,
    theirs: &GaussianNB,
    min_weight: f64,
) -> Option<(usize, f64)> {
    let mut worst: Option<(usize, f64)> = None;
    for (c, (a, b)) in ours
        .class_stats()
        .iter()
        .zip(theirs.class_stats())
        .enumerate()
    {
        if let Some(shift) = stats_shift(a, b, min_weight) {
            if worst.is_none_or(|(_, w)| shift > w) {
                worst = Some((c, shift));
            }
        }
    }
    worst
}

/// The largest shift of one class's numeric means between two sources, in
/// pooled standard deviations; `None` unless both hold `min_weight`
/// samples of the class and of some feature.
fn stats_shift(a: &ClassStats, b: &ClassStats, min_weight: f64) -> Option<f64> {
    if a.weight < min_weight || b.weight < min_weight {
        return None;
    }
    let (ga, gb) = (&a.gaussians, &b.gaussians);
    let mut worst: Option<f64> = None;
    for i in 0..ga.len().min(gb.len()) {
        if ga.weight[i] < min_weight || gb.weight[i] < min_weight {
            continue;
        }
        let d = (ga.mean[i] - gb.mean[i]).abs();
        let pooled = 0.5 * (ga.variance(i) + gb.variance(i));
        let shift = if pooled > 1e-12 {
            d / pooled.sqrt()
        } else if d > 1e-9 {
            f64::INFINITY
        } else {
            0.0
        };
        if worst.is_none_or(|w| shift > w) {
            worst = Some(shift);
        }
    }
    worst
}

/// How two sources' statistics relate: the first class they contradict
/// each other on (`Err`), or whether some class shows them agreeing.
fn relation(
    a: &GaussianNB,
    b: &GaussianNB,
    min_weight: f64,
    max_shift: f64,
) -> Result<bool, usize> {
    let mut agree = false;
    for (c, (x, y)) in a.class_stats().iter().zip(b.class_stats()).enumerate() {
        if let Some(shift) = stats_shift(x, y, min_weight) {
            if shift.is_nan() || shift > max_shift {
                return Err(c);
            }
            agree = true;
        }
    }
    Ok(agree)
}

/// Trust among statistics sources, anchored in the local samples
/// (`sources[0]`): a source is trusted when it agrees on some class with a
/// trusted source and contradicts none, breadth first from the local one.
/// Returns, per source, `Some(class)` when it contradicts a trusted source
/// on that class (it is left out), `None` otherwise (trusted, or with no
/// class in common with anyone trusted: no evidence either way).
///
/// Under label skew most nodes never see the class a label-flipping peer
/// lies about, so comparing with the local samples alone cannot catch it,
/// and two flippers lying about the same class outvote its one honest
/// holder. A chain of agreeing honest nodes, each checked on the classes it
/// shares with the previous one, reaches a node that holds the class and
/// exposes the lie.
fn distrust(sources: &[&GaussianNB], min_weight: f64, max_shift: f64) -> Vec<Option<usize>> {
    let n = sources.len();
    let mut rel = vec![Ok(false); n * n];
    for i in 0..n {
        for j in (i + 1)..n {
            let r = relation(sources[i], sources[j], min_weight, max_shift);
            rel[i * n + j] = r;
            rel[j * n + i] = r;
        }
    }
    let mut trusted = vec![false; n];
    let mut out: Vec<Option<usize>> = vec![None; n];
    if n == 0 {
        return out;
    }
    trusted[0] = true;
    let mut frontier = vec![0usize];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for j in 0..n {
            if trusted[j] || out[j].is_some() {
                continue;
            }
            let conflict = (0..n)
                .filter(|&t| trusted[t])
                .find_map(|t| rel[t * n + j].err());
            if let Some(c) = conflict {
                out[j] = Some(c);
            } else if frontier.iter().any(|&t| rel[t * n + j] == Ok(true)) {
                next.push(j);
            }
        }
        for &j in &next {
            trusted[j] = true;
        }
        frontier = next;
    }
    // A source first met beside trusted ones may contradict one trusted
    // later in the search.
    for j in 0..n {
        if !trusted[j] && out[j].is_none() {
            out[j] = (0..n)
                .filter(|&t| trusted[t])
                .find_map(|t| rel[t * n + j].err());
        }
    }
    out
}

/// Accuracy of `predict` on `window`, choosing only among the classes the
/// window holds: local samples can testify about the classes this node
/// sees, not about the others, so an honest peer that knows more classes
/// (label skew) is not refused for it, while a model that confuses the
/// local classes is.
fn accuracy_on(window: &[Sample], predict: impl Fn(&[f64], &mut Vec<f64>)) -> f64 {
    if window.is_empty() {
        return 0.0;
    }
    let n = window.iter().map(|s| s.y + 1).max().unwrap_or(0);
    let mut present = vec![false; n];
    for s in window {
        present[s.y] = true;
    }
    let mut buf = Vec::new();
    let hits = window
        .iter()
        .filter(|s| {
            predict(&s.x, &mut buf);
            for (i, p) in buf.iter_mut().enumerate() {
                if !present.get(i).copied().unwrap_or(false) {
                    *p = 0.0;
                }
            }
            argmax(&buf) == Some(s.y)
        })
        .count();
    hits as f64 / window.len() as f64
}

/// Aggregate linear parameter sets (local first) into one, unit by unit
/// over the models that were taught each unit's class. `None` if `sets` is
/// empty.
pub fn aggregate_linear(
    sets: &[(LinearParams, f64)],
    agg: Aggregator,
    widen: impl Fn(&mut LinearParams, usize, usize, bool),
) -> Option<LinearParams> {
    let n_classes = sets.iter().map(|(p, _)| p.n_classes).max()?;
    let n_features = sets.iter().map(|(p, _)| p.n_features).max()?;
    let multi = n_classes > 2 || sets.iter().any(|(p, _)| p.multi);
    let aligned: Vec<(LinearParams, f64)> = sets
        .iter()
        .map(|(p, w)| {
            let mut p = p.clone();
            widen(&mut p, n_classes, n_features, multi);
            (p, *w)
        })
        .collect();
    let first = &aligned.first()?.0;
    let units = first.units();
    if aligned
        .iter()
        .any(|(p, _)| p.units() != units || p.n_features != n_features)
    {
        return None;
    }
    let mut out = first.clone();
    for s in out.seen.iter_mut().enumerate() {
        *s.1 = aligned.iter().any(|(p, _)| p.seen.get(s.0) == Some(&true));
    }
    let mut vals = Vec::with_capacity(aligned.len());
    let mut ws = Vec::with_capacity(aligned.len());
    for u in 0..units {
        let members: Vec<&(LinearParams, f64)> =
            aligned.iter().filter(|(p, _)| p.active(u)).collect();
        if members.is_empty() {
            continue;
        }
        for j in 0..=n_features {
            vals.clear();
            ws.clear();
            for (p, w) in &members {
                let v = if j < n_features {
                    p.weights[u * n_features + j]
                } else {
                    p.bias[u]
                };
                vals.push(v);
                ws.push(w.max(1e-12));
            }
            let v = agg.combine(&vals, &ws);
            if j < n_features {
                out.weights[u * n_features + j] = v;
            } else {
                out.bias[u] = v;
            }
        }
    }
    Some(out)
}

impl Federated {
    /// Wrap `local`.
    pub fn new(local: Model, cfg: MergeConfig) -> Self {
        let strategy = strategy(&local);
        let view = (strategy == Strategy::Exact).then(|| local.clone());
        Federated {
            cfg,
            strategy,
            local,
            view,
            peers: BTreeMap::new(),
            local_samples: 0,
            local_score: 0.0,
            merges: 0,
            rounds: 0,
            clock: 0,
        }
    }

    /// The strategy in use.
    pub fn strategy(&self) -> Strategy {
        self.strategy
    }

    /// Settings.
    pub fn config(&self) -> &MergeConfig {
        &self.cfg
    }

    /// Change the settings (e.g. the aggregator).
    pub fn set_config(&mut self, cfg: MergeConfig) {
        self.cfg = cfg;
        self.trim();
    }

    /// The model to publish to peers: what this node learnt itself (Exact,
    /// Committee: peers pull each origin directly, so nothing is counted
    /// twice and committees do not nest), or the averaged model (Average).
    pub fn local(&self) -> &Model {
        &self.local
    }

    /// Replace the local model (e.g. restored from a snapshot).
    pub fn set_local(&mut self, model: Model) {
        self.strategy = strategy(&model);
        self.local = model;
        self.rebuild_view();
    }

    /// Updates taken in (new versions accepted).
    pub fn merges(&self) -> u64 {
        self.merges
    }

    /// Averaging rounds done.
    pub fn rounds(&self) -> u64 {
        self.rounds
    }

    /// Averaging updates waiting for the next [`Federated::round`].
    pub fn pending(&self) -> usize {
        if self.strategy != Strategy::Average {
            return 0;
        }
        self.peers.values().filter(|p| p.model.is_some()).count()
    }

    /// Origins remembered, with what each contributed.
    pub fn origins(&self) -> impl Iterator<Item = Contribution> + '_ {
        let weights = self.committee_weights();
        let out = self.distrusted();
        self.peers.iter().map(move |(o, p)| Contribution {
            origin: *o,
            version: p.version,
            samples: p.samples,
            score: match self.strategy {
                Strategy::Committee => {
                    Some(weights.iter().find(|(w, _)| w == o).map_or(0.0, |x| x.1))
                }
                _ => None,
            },
            active: match self.strategy {
                Strategy::Average => p.model.is_none(),
                _ => p.model.is_some() && !out.contains(o),
            },
        })
    }

    /// Latest version taken from `origin`.
    pub fn version_of(&self, origin: Origin) -> Option<u64> {
        self.peers.get(&origin).map(|p| p.version)
    }

    /// Forget `origin` (a departed or banned peer); its statistics or
    /// committee seat go away with it.
    pub fn forget(&mut self, origin: Origin) {
        if self.peers.remove(&origin).is_some() {
            self.rebuild_view();
        }
    }

    /// Check `update` without taking it: kind, finite parameters, norm
    /// relative to ours, and the accuracy on `window` (recent local
    /// samples). Returns the update renumbered into local classes.
    pub fn check(&self, update: &Update, window: &[Sample]) -> Result<Model, MergeError> {
        let (ours, theirs) = (self.local.kind(), update.model.kind());
        if ours != theirs {
            return Err(MergeError::KindMismatch { ours, theirs });
        }
        let mut model = update.model.clone();
        if self.strategy != Strategy::Committee && !update.class_map.is_empty() {
            remap(&mut model, &update.class_map)?;
        }
        match self.strategy {
            Strategy::Average if matches!(model, Model::Mlp(_)) => {
                let p = mlp_params(&model)
                    .ok_or_else(|| MergeError::Malformed("no parameters".into()))?;
                if !p.is_valid() {
                    return Err(MergeError::Malformed("shape or non-finite".into()));
                }
                let ours = mlp_params(&self.local).map_or(0.0, |p| mlp_norm(&p));
                let ratio = mlp_norm(&p) / ours.max(self.cfg.norm_floor);
                if !(ratio.is_finite() && ratio <= self.cfg.max_norm_ratio) {
                    return Err(MergeError::NormTooLarge {
                        ratio,
                        max: self.cfg.max_norm_ratio,
                    });
                }
                if window.len() >= self.cfg.min_validation {
                    let mut cand = self.local.clone();
                    self.average_into(&mut cand, &[(&model, update.samples)])?;
                    self.check_drop(window, &self.local, &cand)?;
                }
            }
            Strategy::Average => {
                let p = linear_params(&model)
                    .ok_or_else(|| MergeError::Malformed("no parameters".into()))?;
                if !p.is_valid() {
                    return Err(MergeError::Malformed("shape or non-finite".into()));
                }
                let ours = linear_params(&self.local).map_or(0.0, |p| p.norm());
                let ratio = p.norm() / ours.max(self.cfg.norm_floor);
                if !(ratio.is_finite() && ratio <= self.cfg.max_norm_ratio) {
                    return Err(MergeError::NormTooLarge {
                        ratio,
                        max: self.cfg.max_norm_ratio,
                    });
                }
                if window.len() >= self.cfg.min_validation {
                    let mut cand = self.local.clone();
                    self.average_into(&mut cand, &[(&model, update.samples)])?;
                    self.check_drop(window, &self.local, &cand)?;
                }
            }
            Strategy::Exact => {
                let theirs = nb(&model).ok_or_else(|| MergeError::Malformed("not nb".into()))?;
                let total = theirs.total_weight();
                if !total.is_finite() {
                    return Err(MergeError::Malformed("weight".into()));
                }
                // A peer claiming far more data than anyone is a lever for
                // outweighing everyone else.
                let biggest = self
                    .peers
                    .values()
                    .filter_map(|p| p.model.as_ref().and_then(nb))
                    .map(GaussianNB::total_weight)
                    .chain(nb(&self.local).map(GaussianNB::total_weight))
                    .fold(0.0, f64::max);
                let ratio = total / biggest.max(self.cfg.weight_floor);
                if ratio > self.cfg.max_norm_ratio {
                    return Err(MergeError::NormTooLarge {
                        ratio,
                        max: self.cfg.max_norm_ratio,
                    });
                }
                if let Some(ours) = nb(&self.local) {
                    if let Some((class, shift)) =
                        class_shift(ours, theirs, self.cfg.min_class_weight)
                    {
                        if shift > self.cfg.max_class_shift {
                            return Err(MergeError::ClassConflict {
                                class,
                                shift,
                                max: self.cfg.max_class_shift,
                            });
                        }
                    }
                }
                let mut all: Vec<&GaussianNB> = self.sources(Some(update.origin)).collect();
                all.push(theirs);
                if let Some(Some(class)) =
                    distrust(&all, self.cfg.min_class_weight, self.cfg.max_class_shift).pop()
                {
                    return Err(MergeError::Distrusted { class });
                }
                if window.len() >= self.cfg.min_validation {
                    let out = self.distrusted();
                    let cand = self.merged_stats(Some(update.origin), Some(&model), &out);
                    let cur = self.merged_stats(Some(update.origin), None, &out);
                    self.check_drop(window, &cur, &cand)?;
                }
            }
            Strategy::Committee => {
                // Trees and the rest check their own shape on decoding; the
                // committee weight (accuracy on the local stream) does the
                // rest, so a bad member simply gets no say.
            }
        }
        Ok(model)
    }

    fn check_drop(&self, window: &[Sample], cur: &Model, cand: &Model) -> Result<(), MergeError> {
        let before = accuracy_on(window, |x, o| cur.predict_proba_into(x, o));
        let after = accuracy_on(window, |x, o| cand.predict_proba_into(x, o));
        let drop = before - after;
        if drop > self.cfg.max_accuracy_drop {
            return Err(MergeError::WorseOnLocal {
                drop,
                max: self.cfg.max_accuracy_drop,
                n: window.len(),
            });
        }
        Ok(())
    }

    /// Check and take `update`. A version not newer than the one held for
    /// its origin is ignored ([`Accepted::Stale`]), so duplicates and
    /// reordering are harmless. Exact merges at once; Average waits for
    /// [`Federated::round`]; Committee seats the model (replacing the
    /// origin's older one, or the weakest member when full).
    pub fn accept(&mut self, update: Update, window: &[Sample]) -> Result<Accepted, MergeError> {
        if self
            .peers
            .get(&update.origin)
            .is_some_and(|p| p.version >= update.version)
        {
            return Ok(Accepted::Stale);
        }
        let model = self.check(&update, window)?;
        self.clock += 1;
        let score = match self.strategy {
            Strategy::Committee if !window.is_empty() => {
                // A new member starts from its accuracy on the recent
                // local samples; the EWMA takes over from there.
                let map = &update.class_map;
                accuracy_on(window, |x, o| {
                    model.predict_proba_into(x, o);
                    remap_proba(o, map);
                })
            }
            _ => 0.0,
        };
        // `auto` shares its leaderboard: what the peer's race eliminated
        // can shorten the local race (`Auto::take_advice`).
        if let (Model::Auto(mine), Model::Auto(theirs)) = (&mut self.local, &model) {
            mine.take_advice(update.origin.0, theirs);
        }
        let peer = Peer {
            version: update.version,
            samples: update.samples,
            model: Some(model),
            class_map: update.class_map,
            score,
            touched: self.clock,
        };
        self.peers.insert(update.origin, peer);
        self.merges += 1;
        self.trim();
        if self.strategy == Strategy::Exact {
            self.rebuild_view();
        }
        Ok(Accepted::New)
    }

    /// Average: combine the local model with every update received since
    /// the last round (a no-op when none is pending). Returns how many peer
    /// models took part.
    pub fn round(&mut self) -> usize {
        if self.strategy != Strategy::Average {
            return 0;
        }
        let pending: Vec<(Origin, Model, u64)> = self
            .peers
            .iter_mut()
            .filter_map(|(o, p)| p.model.take().map(|m| (*o, m, p.samples)))
            .collect();
        if pending.is_empty() {
            return 0;
        }
        let refs: Vec<(&Model, u64)> = pending.iter().map(|(_, m, s)| (m, *s)).collect();
        let mut local = self.local.clone();
        if self.average_into(&mut local, &refs).is_ok() {
            self.local = local;
            self.rounds += 1;
        }
        pending.len()
    }

    /// Replace `target`'s parameters by the aggregate of `target` (weighted
    /// by the local sample count) and `others`.
    fn average_into(&self, target: &mut Model, others: &[(&Model, u64)]) -> Result<(), MergeError> {
        if let Model::Mlp(t) = target {
            let mut sets = vec![(t.params(), self.local_samples.max(1) as f64)];
            for (m, s) in others {
                if let Some(p) = mlp_params(m) {
                    sets.push((p, (*s).max(1) as f64));
                }
            }
            return average_mlp(t, &sets, self.cfg.aggregator);
        }
        let mut sets = Vec::with_capacity(others.len() + 1);
        let mine = linear_params(target).ok_or_else(|| MergeError::Malformed("local".into()))?;
        sets.push((mine, self.local_samples.max(1) as f64));
        for (m, s) in others {
            if let Some(p) = linear_params(m) {
                sets.push((p, (*s).max(1) as f64));
            }
        }
        let proto = target.clone();
        let widen = |p: &mut LinearParams, c: usize, f: usize, multi: bool| {
            let mut m = proto.clone();
            if let Some(l) = linear_mut(&mut m) {
                if l.set_params(p.clone()).is_ok() {
                    l.reshape(c, f, multi);
                    *p = l.params();
                }
            }
        };
        let agg = aggregate_linear(&sets, self.cfg.aggregator, widen)
            .ok_or_else(|| MergeError::Malformed("shapes do not line up".into()))?;
        let l = linear_mut(target).ok_or_else(|| MergeError::Malformed("local".into()))?;
        l.set_params(agg).map_err(MergeError::Malformed)
    }

    /// Local statistics plus every origin's latest, with `origin` replaced
    /// by `with` (or left out when `None`).
    /// Statistics of the local model and of every seated peer but `skip`.
    fn sources(&self, skip: Option<Origin>) -> impl Iterator<Item = &GaussianNB> + '_ {
        nb(&self.local).into_iter().chain(
            self.peers
                .iter()
                .filter(move |(o, _)| Some(**o) != skip)
                .filter_map(|(_, p)| p.model.as_ref().and_then(nb)),
        )
    }

    /// Exact: seated peers left out of the view because their statistics
    /// contradict a source this node trusts (see [`distrust`]); they stay
    /// seated and come back if the evidence changes.
    pub fn distrusted(&self) -> Vec<Origin> {
        if self.strategy != Strategy::Exact {
            return Vec::new();
        }
        let seated: Vec<(Origin, &GaussianNB)> = self
            .peers
            .iter()
            .filter_map(|(o, p)| Some((*o, p.model.as_ref().and_then(nb)?)))
            .collect();
        let Some(local) = nb(&self.local) else {
            return Vec::new();
        };
        let all: Vec<&GaussianNB> = std::iter::once(local)
            .chain(seated.iter().map(|x| x.1))
            .collect();
        distrust(&all, self.cfg.min_class_weight, self.cfg.max_class_shift)
            .into_iter()
            .skip(1)
            .zip(&seated)
            .filter_map(|(d, (o, _))| d.map(|_| *o))
            .collect()
    }

    /// The local statistics merged with every seated peer's except
    /// `skip`'s and the distrusted ones (`out`), and `with` on top.
    fn merged_stats(&self, skip: Option<Origin>, with: Option<&Model>, out: &[Origin]) -> Model {
        let mut v = self.local.clone();
        if let Model::NaiveBayes(acc) = &mut v {
            for (o, p) in &self.peers {
                if Some(*o) == skip || out.contains(o) {
                    continue;
                }
                if let Some(n) = p.model.as_ref().and_then(nb) {
                    acc.merge(n);
                }
            }
            if let Some(n) = with.and_then(nb) {
                acc.merge(n);
            }
        }
        v
    }

    fn rebuild_view(&mut self) {
        self.view = (self.strategy == Strategy::Exact)
            .then(|| self.merged_stats(None, None, &self.distrusted()));
    }

    /// Forget the least recently updated origins past `max_peers`, and
    /// unseat the weakest committee members past `committee_size`.
    fn trim(&mut self) {
        while self.peers.len() > self.cfg.max_peers.max(1) {
            let Some(victim) = self
                .peers
                .iter()
                .min_by_key(|(o, p)| (p.touched, **o))
                .map(|(o, _)| *o)
            else {
                break;
            };
            self.peers.remove(&victim);
            self.rebuild_view();
        }
        if self.strategy == Strategy::Committee {
            loop {
                let seated: Vec<(Origin, f64, u64)> = self
                    .peers
                    .iter()
                    .filter(|(_, p)| p.model.is_some())
                    .map(|(o, p)| (*o, p.score, p.touched))
                    .collect();
                if seated.len() <= self.cfg.committee_size {
                    break;
                }
                let Some(weakest) = seated
                    .iter()
                    .min_by(|a, b| a.1.total_cmp(&b.1).then(a.2.cmp(&b.2)))
                    .map(|x| x.0)
                else {
                    break;
                };
                // Keep the version (so the same model is not pulled back in)
                // but drop the model.
                if let Some(p) = self.peers.get_mut(&weakest) {
                    p.model = None;
                }
            }
        }
    }

    /// `(origin, weight)` of every seated member, normalised together with
    /// the local model's weight (origin `None` is not listed).
    fn committee_weights(&self) -> Vec<(Origin, f64)> {
        if self.strategy != Strategy::Committee {
            return Vec::new();
        }
        let best = self
            .peers
            .values()
            .filter(|p| p.model.is_some())
            .map(|p| p.score)
            .fold(self.local_score, f64::max);
        let w = |s: f64| (self.cfg.sharpness * (s - best)).exp();
        let total: f64 = w(self.local_score)
            + self
                .peers
                .values()
                .filter(|p| p.model.is_some())
                .map(|p| w(p.score))
                .sum::<f64>();
        self.peers
            .iter()
            .filter(|(_, p)| p.model.is_some())
            .map(|(o, p)| (*o, w(p.score) / total))
            .collect()
    }

    /// The model predictions come from, when it is a single model.
    pub fn view(&self) -> &Model {
        self.view.as_ref().unwrap_or(&self.local)
    }
}

/// Move class probabilities from a peer's numbering to ours.
fn remap_proba(out: &mut Vec<f64>, map: &[usize]) {
    if map.is_empty() || map.iter().enumerate().all(|(i, &c)| i == c) {
        return;
    }
    let n = map.iter().map(|&c| c + 1).max().unwrap_or(0).max(out.len());
    let mut v = vec![0.0; n];
    for (i, p) in out.iter().enumerate() {
        if let Some(&to) = map.get(i) {
            v[to] += p;
        }
    }
    *out = v;
}

impl Classifier for Federated {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if self.strategy == Strategy::Committee && !self.peers.is_empty() {
            let a = self.cfg.score_alpha;
            let mut buf = Vec::new();
            self.local.predict_proba_into(x, &mut buf);
            let hit = f64::from(u8::from(argmax(&buf) == Some(y)));
            self.local_score += a * (hit - self.local_score);
            for p in self.peers.values_mut() {
                if let Some(m) = &p.model {
                    m.predict_proba_into(x, &mut buf);
                    remap_proba(&mut buf, &p.class_map);
                    let hit = f64::from(u8::from(argmax(&buf) == Some(y)));
                    p.score += a * (hit - p.score);
                }
            }
        }
        self.local.learn_one(x, y, weight);
        if let Some(v) = &mut self.view {
            v.learn_one(x, y, weight);
        }
        self.local_samples += 1;
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        if self.strategy != Strategy::Committee {
            return self.view().predict_proba_into(x, out);
        }
        let weights = self.committee_weights();
        self.local.predict_proba_into(x, out);
        if weights.is_empty() {
            return;
        }
        let local_w = 1.0 - weights.iter().map(|w| w.1).sum::<f64>();
        for p in out.iter_mut() {
            *p *= local_w;
        }
        let mut buf = Vec::new();
        for (o, w) in &weights {
            if let Some(m) = self
                .peers
                .get(o)
                .and_then(|p| p.model.as_ref().map(|m| (m, p)))
            {
                m.0.predict_proba_into(x, &mut buf);
                remap_proba(&mut buf, &m.1.class_map);
                if out.len() < buf.len() {
                    out.resize(buf.len(), 0.0);
                }
                for (a, b) in out.iter_mut().zip(&buf) {
                    *a += w * b;
                }
            }
        }
        normalize(out);
    }

    fn n_classes(&self) -> usize {
        let peers = self
            .peers
            .values()
            .filter_map(|p| p.model.as_ref().map(|m| (m, p)))
            .map(|(m, p)| {
                if p.class_map.is_empty() {
                    m.n_classes()
                } else {
                    p.class_map.iter().map(|&c| c + 1).max().unwrap_or(0)
                }
            })
            .max()
            .unwrap_or(0);
        self.view().n_classes().max(peers)
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.local.memory_bytes()
            + self.view.as_ref().map_or(0, |v| v.memory_bytes())
            + self
                .peers
                .values()
                .map(|p| {
                    std::mem::size_of::<Peer>()
                        + p.model.as_ref().map_or(0, |m| m.memory_bytes())
                        + p.class_map.capacity() * std::mem::size_of::<usize>()
                })
                .sum::<usize>()
    }
}
