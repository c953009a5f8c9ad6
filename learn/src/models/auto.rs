//! Online model selection (`auto`): a pool of configured learners raced
//! prequentially, pruned by successive halving with Hoeffding-bound
//! elimination, re-explored when ADWIN sees the error rise, predicting with
//! a weighted vote of the best few. The algorithm, its lineage and measured
//! results are in `docs/automl.md`.
//!
//! Every candidate is a spec string built through [`crate::model::build_str`],
//! so any registered model (ensembles included) can join the pool; a spec
//! that does not build is skipped.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::classifier::{argmax, normalize, vec_bytes, Classifier};
use crate::drift::Adwin;
use crate::model::{build_str, Model};
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

/// Parameters of `auto`, for `shoal-bench models`.
pub const AUTO_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "pool",
        default: "default",
        help: "default | fast | full, or specs separated by `;` (inner commas as `|`)",
    },
    ParamDoc {
        name: "max_active",
        default: "2",
        help: "learners kept training once the race is over (compute budget)",
    },
    ParamDoc {
        name: "top_k",
        default: "2",
        help: "learners that vote (1 = the champion alone)",
    },
    ParamDoc {
        name: "window",
        default: "500",
        help: "horizon of the exponentially weighted accuracy of each learner",
    },
    ParamDoc {
        name: "round",
        default: "500",
        help: "samples in the first racing round (rounds double)",
    },
    ParamDoc {
        name: "delta",
        default: "0.05",
        help: "confidence of the Hoeffding elimination",
    },
    ParamDoc {
        name: "drift_delta",
        default: "0.002",
        help: "ADWIN confidence on the vote's error (re-exploration trigger)",
    },
    ParamDoc {
        name: "buffer",
        default: "500",
        help: "recent samples kept to warm-start re-explored learners",
    },
    ParamDoc {
        name: "max_mb",
        default: "256",
        help: "memory budget in MiB; the worst learners are dropped past it",
    },
];

/// The cheap, diverse pool.
const POOL_FAST: &[&str] = &[
    "nb",
    "ht",
    "ht:grace_period=50|split_criterion=gini",
    "hat",
    "knn:window_size=300",
    "lr:scale=true|lr=0.05",
    "mlp:hidden=16",
];

/// The fast pool plus the ensembles (skipped if not registered).
const POOL_DEFAULT: &[&str] = &[
    "nb",
    "ht",
    "ht:grace_period=50|split_criterion=gini",
    "hat",
    "knn:window_size=300",
    "lr:scale=true|lr=0.05",
    "mlp:hidden=16",
    "arf:n_models=5",
    "lb:n_models=5",
    "srp:n_models=5",
];

/// Everything, with more hyperparameter variants.
const POOL_FULL: &[&str] = &[
    "nb",
    "ht",
    "ht:grace_period=50|split_criterion=gini",
    "ht:grace_period=100|leaf=nb|split_criterion=hellinger",
    "hat",
    "hat:grace_period=50",
    "efdt",
    "knn:window_size=300",
    "knn:window_size=1000|n_neighbors=10",
    "lr:scale=true|lr=0.05",
    "pa:scale=true",
    "mlp:hidden=16",
    "mlp:hidden=64-32|lr=0.005",
    "arf",
    "arf:n_models=5",
    "lb",
    "lb:n_models=5",
    "srp",
    "srp:n_models=5",
];

/// One racing learner.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Member {
    /// Index into `Auto::specs`.
    spec: usize,
    model: Model,
    /// Exponentially weighted prequential accuracy.
    acc: f64,
    /// Samples scored.
    n: u64,
}

/// Predictions of every member for the last `x` predicted, so that
/// `learn_one` right after `predict_proba_into` on the same sample (the
/// prequential loop) does not predict twice. Never serialized.
#[derive(Debug, Default)]
struct Cache(Mutex<Option<Cached>>);

/// Bit patterns of the features, and each member's probabilities.
type Cached = (Vec<u64>, Vec<Vec<f64>>);

impl Clone for Cache {
    fn clone(&self) -> Self {
        Cache::default()
    }
}

/// Settings of [`Auto`].
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AutoConfig {
    pub max_active: usize,
    pub top_k: usize,
    pub window: usize,
    pub round: u64,
    pub delta: f64,
    pub drift_delta: f64,
    pub buffer: usize,
    pub max_bytes: usize,
}

impl Default for AutoConfig {
    fn default() -> Self {
        AutoConfig {
            max_active: 2,
            top_k: 2,
            window: 500,
            round: 500,
            delta: 0.05,
            drift_delta: 0.002,
            buffer: 500,
            max_bytes: 256 << 20,
        }
    }
}

/// The model-selection classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Auto {
    cfg: AutoConfig,
    schema: Schema,
    /// Candidate specs that built.
    specs: Vec<String>,
    /// Last windowed accuracy of each spec (None: never scored).
    scores: Vec<Option<f64>>,
    members: Vec<Member>,
    n_classes: usize,
    /// Samples learnt.
    t: u64,
    /// While racing: the sample count of the next halving, and the round
    /// length.
    racing: bool,
    next_check: u64,
    round_len: u64,
    adwin: Adwin,
    last_explore: u64,
    explorations: u64,
    /// Recent samples `(x as f64 bit patterns, y, weight)`, oldest first,
    /// at most `cfg.buffer`. Bits, so that NaN and infinities survive a JSON
    /// snapshot.
    buffer: std::collections::VecDeque<(Vec<u64>, usize, f64)>,
    /// Per spec: the peers (by the origin number the caller gives) whose
    /// own race eliminated it, at most [`MAX_ADVISERS`] of them.
    #[serde(default)]
    peer_losses: Vec<Vec<u64>>,
    /// Configurations dropped on peers' advice.
    #[serde(default)]
    pruned_by_peers: u64,
    #[serde(skip)]
    cache: Cache,
}

/// Peers remembered per configuration as having eliminated it.
pub const MAX_ADVISERS: usize = 16;

/// Peers that must have eliminated a configuration before a racing `auto`
/// drops it on their word.
pub const ADVICE_QUORUM: usize = 2;

impl Auto {
    /// Build from a spec (`auto:pool=fast,max_active=3`).
    pub fn from_spec(spec: &Spec, schema: &Schema) -> Result<Auto, SpecError> {
        let mut r = spec.reader();
        let pool = r.string("pool", "default");
        let d = AutoConfig::default();
        let cfg = AutoConfig {
            max_active: r.usize_in("max_active", d.max_active, 1, 64)?,
            top_k: r.usize_in("top_k", d.top_k, 1, 64)?,
            window: r.usize_in("window", d.window, 10, 1_000_000)?,
            round: r.usize_in("round", d.round as usize, 10, 10_000_000)? as u64,
            delta: r.f64_in("delta", d.delta, 1e-12, 0.5)?,
            drift_delta: r.f64_in("drift_delta", d.drift_delta, 1e-12, 0.5)?,
            buffer: r.usize_in("buffer", d.buffer, 0, 100_000)?,
            max_bytes: r.usize_in("max_mb", d.max_bytes >> 20, 1, 1 << 20)? << 20,
        };
        r.finish()?;
        let list: Vec<String> = match pool.as_str() {
            "default" => POOL_DEFAULT.iter().map(|s| s.to_string()).collect(),
            "fast" => POOL_FAST.iter().map(|s| s.to_string()).collect(),
            "full" => POOL_FULL.iter().map(|s| s.to_string()).collect(),
            other => other
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
        };
        let auto = Auto::new(&list, cfg, schema);
        if auto.specs.is_empty() {
            return Err(SpecError::BadValue {
                name: spec.name.clone(),
                param: "pool".into(),
                value: pool,
                why: "no spec in the pool builds".into(),
            });
        }
        Ok(auto)
    }

    /// A racer over the candidate `specs` (inner parameters separated by
    /// `|`); specs that do not build, and nested `auto`, are skipped.
    pub fn new(specs: &[String], cfg: AutoConfig, schema: &Schema) -> Auto {
        let mut kept = Vec::new();
        let mut members = Vec::new();
        for s in specs {
            let s = s.replace('|', ",");
            if Spec::parse(&s).map(|p| p.name == "auto").unwrap_or(true) {
                continue;
            }
            if let Ok(model) = build_str(&s, schema) {
                if kept.contains(&s) {
                    continue;
                }
                members.push(Member {
                    spec: kept.len(),
                    model,
                    acc: 0.0,
                    n: 0,
                });
                kept.push(s);
            }
        }
        let racing = members.len() > cfg.max_active;
        let n_specs = kept.len();
        Auto {
            scores: vec![None; kept.len()],
            specs: kept,
            members,
            n_classes: schema.n_classes(),
            t: 0,
            racing,
            next_check: cfg.round,
            round_len: cfg.round,
            adwin: Adwin::new(cfg.drift_delta),
            last_explore: 0,
            explorations: 0,
            buffer: Default::default(),
            peer_losses: vec![Vec::new(); n_specs],
            pruned_by_peers: 0,
            schema: schema.clone(),
            cfg,
            cache: Cache::default(),
        }
    }

    /// Candidate specs (those that built).
    pub fn specs(&self) -> &[String] {
        &self.specs
    }

    /// Specs of the learners currently training, best first.
    pub fn active(&self) -> Vec<&str> {
        self.ranked()
            .into_iter()
            .map(|i| self.specs[self.members[i].spec].as_str())
            .collect()
    }

    /// The current champion's spec.
    pub fn champion(&self) -> Option<&str> {
        self.ranked()
            .first()
            .map(|&i| self.specs[self.members[i].spec].as_str())
    }

    /// Every candidate spec with its windowed prequential accuracy: live
    /// for active learners, the last one seen for pruned ones, `None` if
    /// never scored. Best first.
    pub fn leaderboard(&self) -> Vec<(String, Option<f64>)> {
        let mut s = self.scores.clone();
        for m in &self.members {
            if m.n > 0 {
                s[m.spec] = Some(m.acc);
            }
        }
        let mut out: Vec<(String, Option<f64>)> = self.specs.iter().cloned().zip(s).collect();
        out.sort_by(|a, b| {
            b.1.unwrap_or(-1.0)
                .partial_cmp(&a.1.unwrap_or(-1.0))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        out
    }

    /// The configurations this learner's own races eliminated (scored, not
    /// active): what it tells its peers.
    pub fn eliminated(&self) -> Vec<&str> {
        (0..self.specs.len())
            .filter(|&i| self.scores[i].is_some() && !self.members.iter().any(|m| m.spec == i))
            .map(|i| self.specs[i].as_str())
            .collect()
    }

    /// Configurations dropped because peers had eliminated them.
    pub fn pruned_by_peers(&self) -> u64 {
        self.pruned_by_peers
    }

    /// Take a peer's leaderboard as advice: remember which configurations
    /// `peer` (an origin number of the caller's choosing, so that a peer
    /// counts once however often it reports) eliminated in its own race.
    /// While this learner is racing, a configuration that at least
    /// [`ADVICE_QUORUM`] peers eliminated, and that is not among this
    /// learner's own best `max_active`, is dropped at once, as if the race
    /// had eliminated it; the race never goes below `max_active` learners,
    /// and a drift's re-exploration brings every configuration back. A peer
    /// whose data differ (label skew, another concept) can thus only
    /// shorten the race among configurations that are already not leading
    /// here. Returns how many were dropped.
    pub fn take_advice(&mut self, peer: u64, peer_board: &Auto) -> usize {
        if self.peer_losses.len() != self.specs.len() {
            self.peer_losses.resize(self.specs.len(), Vec::new());
        }
        for spec in peer_board.eliminated() {
            if let Some(i) = self.specs.iter().position(|s| s == spec) {
                let who = &mut self.peer_losses[i];
                if !who.contains(&peer) && who.len() < MAX_ADVISERS {
                    who.push(peer);
                }
            }
        }
        if !self.racing {
            return 0;
        }
        let ranked = self.ranked();
        let protected: Vec<usize> = ranked.iter().take(self.cfg.max_active).copied().collect();
        let mut keep: Vec<usize> = Vec::new();
        let mut dropped = 0;
        let mut left = ranked.len();
        for &i in ranked.iter().rev() {
            let spec = self.members[i].spec;
            let condemned = self.peer_losses[spec].len() >= ADVICE_QUORUM;
            if condemned && !protected.contains(&i) && left > self.cfg.max_active {
                dropped += 1;
                left -= 1;
            } else {
                keep.push(i);
            }
        }
        if dropped > 0 {
            self.pruned_by_peers += dropped as u64;
            self.retain(&keep);
            if self.members.len() <= self.cfg.max_active {
                self.racing = false;
            }
        }
        dropped
    }

    /// Whether the initial (or a re-exploration) race is still running.
    pub fn is_racing(&self) -> bool {
        self.racing
    }

    /// Times a drift triggered re-exploration.
    pub fn explorations(&self) -> u64 {
        self.explorations
    }

    /// Member indices, best windowed accuracy first (ties: older first).
    fn ranked(&self) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..self.members.len()).collect();
        idx.sort_by(|&a, &b| {
            let (ma, mb) = (&self.members[a], &self.members[b]);
            mb.acc
                .partial_cmp(&ma.acc)
                .unwrap_or(std::cmp::Ordering::Equal)
                .then(mb.n.cmp(&ma.n))
        });
        idx
    }

    /// Hoeffding radius of a member's accuracy estimate.
    fn radius(&self, m: &Member) -> f64 {
        let n = (m.n as f64).min(self.cfg.window as f64).max(1.0);
        ((2.0 / self.cfg.delta).ln() / (2.0 * n)).sqrt()
    }

    fn member_predictions(&self, x: &[f64]) -> Vec<Vec<f64>> {
        let key: Vec<u64> = x.iter().map(|v| v.to_bits()).collect();
        if let Ok(guard) = self.cache.0.lock() {
            if let Some((k, p)) = guard.as_ref() {
                if *k == key && p.len() == self.members.len() {
                    return p.clone();
                }
            }
        }
        let preds: Vec<Vec<f64>> = self
            .members
            .iter()
            .map(|m| m.model.predict_proba_one(x))
            .collect();
        if let Ok(mut guard) = self.cache.0.lock() {
            *guard = Some((key, preds.clone()));
        }
        preds
    }

    /// Weighted vote of the top `top_k` members: weight = accuracy over
    /// the chance level of the member's own errors, squared.
    fn vote(&self, preds: &[Vec<f64>], out: &mut Vec<f64>) {
        out.clear();
        out.resize(self.n_classes(), 0.0);
        let ranked = self.ranked();
        let k = self.cfg.top_k.min(ranked.len());
        let mut any = false;
        for &i in ranked.iter().take(k) {
            let m = &self.members[i];
            let p = &preds[i];
            let s: f64 = p.iter().filter(|v| v.is_finite()).sum();
            if s <= 0.0 {
                continue;
            }
            let w = if m.n == 0 {
                1e-6
            } else {
                let err = (1.0 - m.acc).max(0.0);
                1.0 / (err + 0.02).powi(2)
            };
            if out.len() < p.len() {
                out.resize(p.len(), 0.0);
            }
            for (o, v) in out.iter_mut().zip(p) {
                if v.is_finite() && *v > 0.0 {
                    *o += w * v / s;
                }
            }
            any = true;
        }
        if any {
            normalize(out);
        } else {
            out.iter_mut().for_each(|v| *v = 0.0);
        }
    }

    /// Successive halving with Hoeffding elimination.
    fn race_step(&mut self) {
        let ranked = self.ranked();
        let Some(&best) = ranked.first() else {
            return;
        };
        let lead = &self.members[best];
        let floor = lead.acc - self.radius(lead);
        let mut keep: Vec<usize> = ranked
            .iter()
            .copied()
            .filter(|&i| {
                let m = &self.members[i];
                i == best || m.acc + self.radius(m) >= floor
            })
            .collect();
        if keep.len() > self.cfg.max_active {
            let half = keep.len().div_ceil(2).max(self.cfg.max_active);
            keep.truncate(half);
        }
        self.retain(&keep);
        if self.members.len() <= self.cfg.max_active {
            self.racing = false;
        } else {
            self.round_len = self.round_len.saturating_mul(2);
            self.next_check = self.t + self.round_len;
        }
    }

    /// Keep only the members at the given indices, remembering the scores
    /// of the others.
    fn retain(&mut self, keep: &[usize]) {
        let old = std::mem::take(&mut self.members);
        for (i, m) in old.into_iter().enumerate() {
            if keep.contains(&i) {
                self.members.push(m);
            } else if m.n > 0 {
                self.scores[m.spec] = Some(m.acc);
            }
        }
        if let Ok(mut g) = self.cache.0.lock() {
            *g = None;
        }
    }

    /// Drop the worst learners while over the memory budget (never the
    /// last one).
    fn enforce_memory(&mut self) {
        while self.members.len() > 1 && self.memory_bytes() > self.cfg.max_bytes {
            let ranked = self.ranked();
            let keep = &ranked[..ranked.len() - 1];
            self.retain(keep);
        }
    }

    /// Re-instantiate every pruned candidate, warm-started on the buffer
    /// (predict-then-learn, so it arrives with an accuracy estimate), and
    /// race again.
    fn re_explore(&mut self) {
        // Peers' eliminations describe the old concept.
        self.peer_losses.iter_mut().for_each(Vec::clear);
        self.explorations += 1;
        self.last_explore = self.t;
        for (i, s) in self.specs.clone().iter().enumerate() {
            if self.members.iter().any(|m| m.spec == i) {
                continue;
            }
            let Ok(model) = build_str(s, &self.schema) else {
                continue;
            };
            // Warm start, prequentially: the learner arrives trained on
            // the recent past and with an accuracy estimate from it.
            let mut m = Member {
                spec: i,
                model,
                acc: 0.0,
                n: 0,
            };
            for (bits, y, w) in &self.buffer {
                let x: Vec<f64> = bits.iter().map(|b| f64::from_bits(*b)).collect();
                let x = &x[..];
                let hit = if m.model.predict_one(x) == Some(*y) {
                    1.0
                } else {
                    0.0
                };
                m.n += 1;
                let alpha = (1.0 / m.n as f64).max(1.0 / self.cfg.window as f64);
                m.acc += alpha * (hit - m.acc);
                m.model.learn_one(x, *y, *w);
            }
            self.members.push(m);
        }
        // Old members' estimates describe the old concept: shrink their
        // horizon so the race is decided on the new one.
        for m in &mut self.members {
            m.n = m.n.min(self.cfg.window as u64 / 4);
        }
        if self.members.len() > self.cfg.max_active {
            self.racing = true;
            self.round_len = self.cfg.round;
            self.next_check = self.t + self.round_len;
        }
        if let Ok(mut g) = self.cache.0.lock() {
            *g = None;
        }
    }
}

impl Classifier for Auto {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !(weight.is_finite() && weight > 0.0) {
            return;
        }
        if y >= self.n_classes {
            self.n_classes = y + 1;
        }
        let preds = self.member_predictions(x);
        let mut vote = Vec::new();
        self.vote(&preds, &mut vote);
        let err = if argmax(&vote) == Some(y) { 0.0 } else { 1.0 };
        let before = self.adwin.estimation();
        let drift = self.adwin.add(err) && self.adwin.estimation() > before;
        let window = self.cfg.window as f64;
        for (m, p) in self.members.iter_mut().zip(&preds) {
            let hit = if argmax(p) == Some(y) { 1.0 } else { 0.0 };
            m.n += 1;
            let alpha = (1.0 / m.n as f64).max(1.0 / window);
            m.acc += alpha * (hit - m.acc);
            m.model.learn_one(x, y, weight);
        }
        if let Ok(mut g) = self.cache.0.lock() {
            *g = None;
        }
        if self.cfg.buffer > 0 {
            // Reuse the oldest entry's allocation once the buffer is full.
            let mut bits = if self.buffer.len() >= self.cfg.buffer {
                self.buffer.pop_front().map(|e| e.0).unwrap_or_default()
            } else {
                Vec::new()
            };
            bits.clear();
            bits.extend(x.iter().map(|v| v.to_bits()));
            self.buffer.push_back((bits, y, weight));
        }
        self.t += 1;
        if self.racing && self.t >= self.next_check {
            self.race_step();
        }
        if self.t.is_multiple_of(1000) {
            self.enforce_memory();
        }
        if drift && self.t >= self.last_explore + 2 * self.cfg.round {
            self.re_explore();
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        let preds = self.member_predictions(x);
        self.vote(&preds, out);
        if out.len() < self.n_classes {
            out.resize(self.n_classes, 0.0);
        }
    }

    fn n_classes(&self) -> usize {
        self.n_classes.max(
            self.members
                .iter()
                .map(|m| m.model.n_classes())
                .max()
                .unwrap_or(0),
        )
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + vec_bytes(&self.specs)
            + self.specs.iter().map(String::capacity).sum::<usize>()
            + vec_bytes(&self.scores)
            + vec_bytes(&self.members)
            + self
                .members
                .iter()
                .map(|m| m.model.memory_bytes())
                .sum::<usize>()
            + self.adwin.memory_bytes()
            + self.buffer.capacity() * std::mem::size_of::<(Vec<u64>, usize, f64)>()
            + self
                .buffer
                .iter()
                .map(|(x, _, _)| vec_bytes(x))
                .sum::<usize>()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn auto(spec: &str) -> Auto {
        Auto::from_spec(
            &Spec::parse(spec).unwrap(),
            &Schema::numeric(2, &["a", "b"]),
        )
        .unwrap()
    }

    /// A linear concept; `flip` swaps the labels (an abrupt drift).
    fn sample(rng: &mut Rng, flip: bool) -> ([f64; 2], usize) {
        let (a, b) = (rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0));
        let y = usize::from((a + b > 0.0) != flip);
        ([a, b], y)
    }

    #[test]
    fn peers_leaderboards_cut_the_race_short() {
        let spec = "auto:pool=majority;no_change;lr:scale=true;nb,max_active=2,round=100";
        let trained = |seed: u64| {
            let mut m = auto(spec);
            let mut rng = Rng::new(seed);
            for _ in 0..3000 {
                let (x, y) = sample(&mut rng, false);
                m.learn_one(&x, y, 1.0);
            }
            assert!(!m.is_racing());
            m
        };
        let (p1, p2) = (trained(1), trained(2));
        let mut losers = p1.eliminated();
        losers.sort_unstable();
        assert_eq!(losers, vec!["majority", "no_change"]);

        // A newcomer, a few samples in, still racing all four.
        let mut fresh = auto(spec);
        let mut rng = Rng::new(9);
        for _ in 0..50 {
            let (x, y) = sample(&mut rng, false);
            fresh.learn_one(&x, y, 1.0);
        }
        assert!(fresh.is_racing());
        // One peer is not a quorum, and the same peer twice counts once.
        assert_eq!(fresh.take_advice(1, &p1), 0);
        assert_eq!(fresh.take_advice(1, &p1), 0);
        assert_eq!(fresh.active().len(), 4);
        // A second peer agrees: the two losers go, the race is over.
        assert_eq!(fresh.take_advice(2, &p2), 2);
        assert!(!fresh.is_racing());
        let mut active = fresh.active();
        active.sort_unstable();
        assert_eq!(active, vec!["lr:scale=true", "nb"]);
        assert_eq!(fresh.pruned_by_peers(), 2);

        // Advice never removes what leads here: two peers that claim to
        // have eliminated the two good learners change nothing while those
        // lead the local race.
        let mut other = auto(spec);
        for _ in 0..60 {
            let (x, y) = sample(&mut rng, false);
            other.learn_one(&x, y, 1.0);
        }
        let mut top: Vec<&str> = other.active().into_iter().take(2).collect();
        top.sort_unstable();
        assert_eq!(top, vec!["lr:scale=true", "nb"]);
        let mut liar = auto(spec);
        liar.scores = vec![None, None, Some(0.1), Some(0.1)];
        liar.members.retain(|m| m.spec < 2);
        assert_eq!(liar.eliminated(), vec!["lr:scale=true", "nb"]);
        assert_eq!(other.take_advice(7, &liar), 0);
        assert_eq!(other.take_advice(8, &liar), 0);
        assert_eq!(other.active().len(), 4);
    }

    #[test]
    fn a_clearly_better_learner_becomes_champion() {
        let mut m = auto("auto:pool=majority;no_change;lr:scale=true,max_active=1,round=100");
        assert_eq!(m.specs().len(), 3);
        assert!(m.is_racing());
        let mut rng = Rng::new(1);
        for _ in 0..2000 {
            let (x, y) = sample(&mut rng, false);
            m.learn_one(&x, y, 1.0);
        }
        assert!(!m.is_racing(), "the race must end once one learner is left");
        assert_eq!(m.active(), vec!["lr:scale=true"]);
        assert_eq!(m.champion(), Some("lr:scale=true"));
        let board = m.leaderboard();
        assert_eq!(board.len(), 3);
        assert_eq!(board[0].0, "lr:scale=true");
        assert!(board[0].1.unwrap() > 0.9, "{board:?}");
        // Pruned learners keep their last score on the leaderboard.
        assert!(
            board[1..].iter().all(|(_, s)| s.unwrap() < 0.7),
            "{board:?}"
        );
    }

    #[test]
    fn hoeffding_elimination_keeps_learners_that_are_not_clearly_worse() {
        // Two copies of the same learner cannot be told apart: with room
        // for both, neither is pruned.
        let mut m = auto("auto:pool=nb;lr:scale=true;majority,max_active=2,round=200");
        let mut rng = Rng::new(2);
        for _ in 0..3000 {
            let (x, y) = sample(&mut rng, false);
            m.learn_one(&x, y, 1.0);
        }
        let active = m.active();
        assert_eq!(active.len(), 2, "{active:?}");
        assert!(!active.contains(&"majority"), "{active:?}");
    }

    #[test]
    fn a_drift_triggers_re_exploration_and_recovery() {
        // After the race only nb is left; flipping the labels makes its
        // error jump, ADWIN fires, and the pruned configs come back,
        // warm-started on the recent (post-drift) buffer.
        let mut m = auto("auto:pool=nb;knn:window_size=200;majority,max_active=1,round=100");
        let mut rng = Rng::new(3);
        for _ in 0..4000 {
            let (x, y) = sample(&mut rng, false);
            m.learn_one(&x, y, 1.0);
        }
        assert_eq!(m.active().len(), 1);
        assert_eq!(m.explorations(), 0);
        let mut hits = 0;
        for t in 0..4000 {
            let (x, y) = sample(&mut rng, true);
            if t >= 3000 {
                hits += usize::from(m.predict_one(&x) == Some(y));
            }
            m.learn_one(&x, y, 1.0);
        }
        assert!(m.explorations() >= 1, "no re-exploration after the drift");
        assert!(hits > 850, "accuracy after the drift {hits}/1000");
    }

    #[test]
    fn memory_budget_drops_the_worst_learners() {
        let mut m = auto("auto:pool=knn:window_size=5000;nb;majority,max_active=3,max_mb=1");
        let mut rng = Rng::new(4);
        for _ in 0..6000 {
            let x: Vec<f64> = (0..20).map(|_| rng.normal()).collect();
            m.learn_one(&x, usize::from(x[0] > 0.0), 1.0);
        }
        assert!(m.memory_bytes() <= 1 << 20 || m.active().len() == 1);
        assert!(m.active().len() < 3, "{:?}", m.active());
    }

    #[test]
    fn pools_that_do_not_build_are_refused_and_bad_specs_skipped() {
        let s = Schema::numeric(2, &["a", "b"]);
        let p = |t: &str| Spec::parse(t).unwrap();
        assert!(Auto::from_spec(&p("auto:pool=nosuch;alsonot"), &s).is_err());
        let m = Auto::from_spec(&p("auto:pool=nosuch;nb;auto;ht:grace_period=0"), &s).unwrap();
        assert_eq!(m.specs(), &["nb".to_string()]);
        assert!(Auto::from_spec(&p("auto:top_k=0"), &s).is_err());
    }
}
