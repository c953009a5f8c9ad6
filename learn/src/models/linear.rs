//! Online linear classifiers with River's defaults: logistic / softmax
//! regression (SGD), the perceptron (Rosenblatt 1958), and the
//! passive-aggressive classifier (Crammer, Dekel, Keshet, Shalev-Shwartz &
//! Singer 2006, "Online Passive-Aggressive Algorithms", JMLR 7).
//!
//! All three share one dense core: a row of weights and a bias per *unit*.
//! With at most two classes a model has one unit whose score speaks for
//! class 1 against class 0 (River's binary models, `True` = class 1). When a
//! third class appears the model turns multiclass — softmax regression for
//! [`LogisticRegression`], one-vs-rest for [`Perceptron`] and
//! [`PassiveAggressive`] — carrying over what the binary unit had learnt.
//! A schema that declares three or more classes starts multiclass. As in
//! River, a multiclass model only knows the classes it was taught: a class
//! index never seen (say 1, when 0 and 2 were) has probability 0 and its
//! unit learns nothing until the class appears.
//!
//! Inputs, common to the three:
//! - a missing (`NaN`) or infinite feature reads as 0 (with `scale=true`,
//!   as the running mean, i.e. 0 after scaling);
//! - values are clamped to `±1e12` after scaling, and the loss gradient is
//!   clipped to `±1e12` as River does, so weights stay finite on extreme
//!   inputs (River clips only the loss gradient);
//! - `scale=true` puts an online standard scaler in front of the model, as
//!   River's `preprocessing.StandardScaler() | model` pipeline does: the
//!   scaler learns the sample first, then the model learns the scaled
//!   sample; `(x - mean) / std` with the population variance, 0 where the
//!   variance is 0. Default `false`, River's plain model.
//!
//! Features and classes grow as they appear; features past the ones learnt
//! are ignored when predicting and a shorter sample reads the rest as 0.
//!
//! Checked against River 0.21.2 on the same 3000-sample streams (5 numeric
//! features; 2 and 4 classes): once every class has been seen, the
//! probabilities of `lr`, `lr:scale=true`, `perceptron` and `pa` (binary)
//! and of `lr:intercept_lr=0` (softmax, classes declared in the schema)
//! equal River's to within 1e-13. Before that they differ only in shape:
//! River reports the classes it has seen, this crate `n_classes()` of them.
//! A stream whose schema declares no classes starts binary, so on
//! multiclass data it matches River's `SoftmaxRegression` only when the
//! schema lists the classes up front.

use serde::{Deserialize, Serialize};

use crate::classifier::{feature, normalize, vec_bytes, Classifier};
use crate::models::naive_bayes::MAX_CLASSES;

/// Largest magnitude of an input value and of a loss gradient (River's
/// `clip_gradient` default).
pub const CLIP: f64 = 1e12;

/// An online standard scaler: per-feature Welford mean and population
/// variance, kept with `1/std` so that predicting needs no square root.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
struct Scaler {
    count: Vec<f64>,
    mean: Vec<f64>,
    m2: Vec<f64>,
    inv_std: Vec<f64>,
}

impl Scaler {
    fn learn(&mut self, x: &[f64]) {
        if self.count.len() < x.len() {
            let n = x.len();
            self.count.resize(n, 0.0);
            self.mean.resize(n, 0.0);
            self.m2.resize(n, 0.0);
            self.inv_std.resize(n, 0.0);
        }
        for (i, &xi) in x.iter().enumerate() {
            if !xi.is_finite() {
                continue;
            }
            let n = self.count[i] + 1.0;
            let d = xi - self.mean[i];
            let mean = self.mean[i] + d / n;
            let m2 = self.m2[i] + d * (xi - mean);
            if !(mean.is_finite() && m2.is_finite()) {
                continue;
            }
            self.count[i] = n;
            self.mean[i] = mean;
            self.m2[i] = m2;
            let var = m2 / n;
            self.inv_std[i] = if var > 0.0 { 1.0 / var.sqrt() } else { 0.0 };
            if !self.inv_std[i].is_finite() {
                self.inv_std[i] = 0.0;
            }
        }
    }

    #[inline]
    fn transform(&self, i: usize, xi: f64) -> f64 {
        match (self.mean.get(i), self.inv_std.get(i)) {
            // A feature with no spread carries no signal; and a value far
            // outside the range seen (`MAX - (-1e300)` overflows) must not
            // turn into NaN or infinity in the weights.
            (Some(&m), Some(&s)) if s > 0.0 => {
                let z = (xi - m) * s;
                if z.is_nan() {
                    0.0
                } else {
                    z.clamp(-CLIP, CLIP)
                }
            }
            _ => 0.0,
        }
    }

    fn bytes(&self) -> usize {
        vec_bytes(&self.count)
            + vec_bytes(&self.mean)
            + vec_bytes(&self.m2)
            + vec_bytes(&self.inv_std)
    }
}

/// How a binary unit becomes the per-class units when a third class shows up.
#[derive(Clone, Copy)]
enum Widen {
    /// Softmax: class 0 scores 0, class 1 keeps the binary score; predictions
    /// are unchanged (`softmax([0, s]) = sigmoid(s)`).
    Softmax,
    /// One-vs-rest: class 1 keeps the binary unit, class 0 its mirror.
    OneVsRest,
}

/// Weights, biases, scaler and scratch buffers shared by the linear models.
/// Snapshots are checked when deserialised (see [`CoreState`]).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "CoreState")]
struct Core {
    n_classes: usize,
    /// `false`: a single unit scoring class 1 against class 0.
    multi: bool,
    /// Which classes were taught (multiclass units of the others idle).
    seen: Vec<bool>,
    n_features: usize,
    /// `units × n_features`, row-major.
    weights: Vec<f64>,
    /// One bias per unit.
    bias: Vec<f64>,
    scaler: Option<Scaler>,
    /// The current sample, transformed (learning only).
    #[serde(skip)]
    xbuf: Vec<f64>,
    /// Per-unit scratch (learning only).
    #[serde(skip)]
    gbuf: Vec<f64>,
}

impl Core {
    fn new(scale: bool, n_classes_hint: usize) -> Self {
        // Classes still start at 0 (nothing learnt predicts nothing); the
        // hint only picks the multiclass form from the start.
        Core {
            multi: n_classes_hint > 2,
            scaler: scale.then(Scaler::default),
            ..Core::default()
        }
    }

    fn units(&self) -> usize {
        self.bias.len()
    }

    /// Re-lay the weight matrix out for `units × n_features`, keeping what
    /// is learnt. Rare (only when the stream grows), so a copy is fine.
    fn resize(&mut self, units: usize, n_features: usize) {
        let (old_u, old_f) = (self.units(), self.n_features);
        if units == old_u && n_features == old_f {
            return;
        }
        let mut w = vec![0.0; units * n_features];
        for u in 0..old_u.min(units) {
            let keep = old_f.min(n_features);
            w[u * n_features..u * n_features + keep]
                .copy_from_slice(&self.weights[u * old_f..u * old_f + keep]);
        }
        self.weights = w;
        self.bias.resize(units, 0.0);
        self.n_features = n_features;
    }

    /// Grow classes and features for a sample of class `y` with `n` features.
    fn grow(&mut self, y: usize, n: usize, widen: Widen) {
        let n_features = self.n_features.max(n);
        if y >= self.n_classes {
            self.n_classes = y + 1;
            self.seen.resize(self.n_classes, false);
        }
        self.seen[y] = true;
        if !self.multi && self.n_classes > 2 {
            // Binary → per-class units, carrying the binary unit over.
            let f = self.n_features;
            let w1: Vec<f64> = self.weights.get(..f).unwrap_or(&[]).to_vec();
            let b1 = self.bias.first().copied().unwrap_or(0.0);
            self.multi = true;
            self.weights = vec![0.0; 2 * f];
            self.bias = vec![0.0; 2];
            self.weights[f..2 * f].copy_from_slice(&w1);
            self.bias[1] = b1;
            if let Widen::OneVsRest = widen {
                for (a, b) in self.weights[..f].iter_mut().zip(&w1) {
                    *a = -b;
                }
                self.bias[0] = -b1;
            }
        }
        let units = if self.multi { self.n_classes } else { 1 };
        self.resize(units, n_features);
    }

    /// Prepare to learn `x`: grow, let the scaler learn, fill `xbuf`.
    fn prepare(&mut self, x: &[f64], y: usize, widen: Widen) {
        self.grow(y, x.len(), widen);
        if let Some(s) = &mut self.scaler {
            s.learn(x);
        }
        let mut buf = std::mem::take(&mut self.xbuf);
        buf.clear();
        buf.extend((0..self.n_features).map(|i| self.input(x, i)));
        self.xbuf = buf;
    }

    /// Feature `i` of `x` as the model sees it.
    #[inline]
    fn input(&self, x: &[f64], i: usize) -> f64 {
        let v = feature(x, i);
        if !v.is_finite() {
            return 0.0;
        }
        let v = match &self.scaler {
            Some(s) => s.transform(i, v),
            None => v,
        };
        v.clamp(-CLIP, CLIP)
    }

    /// Whether unit `u` takes part: every unit of a binary model, the units
    /// of taught classes in a multiclass one.
    #[inline]
    fn active(&self, u: usize) -> bool {
        !self.multi || self.seen.get(u).copied().unwrap_or(false)
    }

    /// Score of unit `u` on the prepared sample.
    #[inline]
    fn score_buf(&self, u: usize) -> f64 {
        let f = self.n_features;
        let row = &self.weights[u * f..(u + 1) * f];
        self.bias[u] + row.iter().zip(&self.xbuf).map(|(w, x)| w * x).sum::<f64>()
    }

    /// SGD step on unit `u`: `w -= lr (g x + l2 w)`, `b -= intercept_lr g`.
    #[inline]
    fn sgd(&mut self, u: usize, g: f64, lr: f64, l2: f64, intercept_lr: f64) {
        let f = self.n_features;
        let row = &mut self.weights[u * f..(u + 1) * f];
        if l2 == 0.0 {
            for (w, x) in row.iter_mut().zip(&self.xbuf) {
                *w -= lr * g * x;
            }
        } else {
            for (w, x) in row.iter_mut().zip(&self.xbuf) {
                *w -= lr * (g * x + l2 * *w);
            }
        }
        self.bias[u] -= intercept_lr * g;
    }

    /// Raw scores of every unit for `x`, written into `out`.
    fn scores_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&self.bias);
        let (f, units) = (self.n_features, self.units());
        for i in 0..f.min(x.len()) {
            let v = self.input(x, i);
            if v == 0.0 {
                continue;
            }
            for (u, o) in out.iter_mut().enumerate().take(units) {
                *o += self.weights[u * f + i] * v;
            }
        }
    }

    /// Class probabilities: sigmoid of the binary score, or softmax of the
    /// per-class scores.
    fn proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        match self.n_classes {
            0 => out.clear(),
            1 => {
                out.clear();
                out.push(1.0);
            }
            _ if !self.multi => {
                self.scores_into(x, out);
                let p1 = sigmoid(out.first().copied().unwrap_or(0.0));
                out.clear();
                out.extend_from_slice(&[1.0 - p1, p1]);
            }
            _ => {
                self.scores_into(x, out);
                for (o, &seen) in out.iter_mut().zip(&self.seen) {
                    if !seen {
                        *o = f64::NEG_INFINITY;
                    }
                }
                softmax(out);
            }
        }
    }

    fn bytes(&self) -> usize {
        vec_bytes(&self.weights)
            + vec_bytes(&self.bias)
            + vec_bytes(&self.seen)
            + vec_bytes(&self.xbuf)
            + vec_bytes(&self.gbuf)
            + self.scaler.as_ref().map_or(0, Scaler::bytes)
    }
}

/// The serialised form of [`Core`]: shapes must agree and every number be
/// finite, or the snapshot is refused.
#[derive(Deserialize)]
struct CoreState {
    n_classes: usize,
    multi: bool,
    seen: Vec<bool>,
    n_features: usize,
    weights: Vec<f64>,
    bias: Vec<f64>,
    scaler: Option<Scaler>,
}

impl TryFrom<CoreState> for Core {
    type Error = String;

    fn try_from(s: CoreState) -> Result<Self, String> {
        let finite = |v: &[f64]| v.iter().all(|x| x.is_finite());
        let units_ok = if s.multi {
            s.bias.len() == s.n_classes
        } else {
            s.bias.len() <= 1
        };
        let shape_ok = s.n_classes <= MAX_CLASSES
            && s.seen.len() == s.n_classes
            && units_ok
            && s.bias.len().checked_mul(s.n_features) == Some(s.weights.len());
        if !shape_ok || !finite(&s.weights) || !finite(&s.bias) {
            return Err("linear model: weights are malformed".into());
        }
        if let Some(sc) = &s.scaler {
            let n = sc.count.len();
            let ok = sc.mean.len() == n
                && sc.m2.len() == n
                && sc.inv_std.len() == n
                && [&sc.count, &sc.mean, &sc.m2, &sc.inv_std]
                    .iter()
                    .all(|v| finite(v));
            if !ok {
                return Err("linear model: scaler statistics are malformed".into());
            }
        }
        Ok(Core {
            n_classes: s.n_classes,
            multi: s.multi,
            seen: s.seen,
            n_features: s.n_features,
            weights: s.weights,
            bias: s.bias,
            scaler: s.scaler,
            xbuf: Vec::new(),
            gbuf: Vec::new(),
        })
    }
}

/// A learning rate or penalty read from a snapshot: finite, within the
/// range the spec accepts.
fn rate_ok(v: f64) -> bool {
    v.is_finite() && (0.0..=100.0).contains(&v)
}

#[inline]
fn sigmoid(s: f64) -> f64 {
    if s >= 0.0 {
        1.0 / (1.0 + (-s).exp())
    } else {
        let e = s.exp();
        e / (1.0 + e)
    }
}

/// In-place softmax; non-finite scores fall back to uniform.
fn softmax(v: &mut [f64]) {
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        normalize(v);
        return;
    }
    for p in v.iter_mut() {
        *p = (*p - max).exp();
    }
    normalize(v);
}

/// A sample weight usable for learning.
#[inline]
fn usable(weight: f64, y: usize) -> bool {
    weight.is_finite() && weight > 0.0 && y < MAX_CLASSES
}

/// Logistic regression trained by SGD on the log loss (River's
/// `linear_model.LogisticRegression`) for two classes, softmax regression on
/// the cross-entropy (River's `linear_model.SoftmaxRegression`) for more.
///
/// Parameters (spec `lr`), River's defaults:
/// - `lr = 0.01`: SGD learning rate of the weights;
/// - `l2 = 0`: L2 penalty, gradient `l2 · w` as in River;
/// - `intercept_lr = 0.01`: learning rate of the bias(es); 0 freezes them;
/// - `scale = false`: online standard scaling of the inputs.
///
/// Differences from River: the softmax model learns a bias per class at
/// `intercept_lr` (River's `SoftmaxRegression` has none; `intercept_lr=0`
/// reproduces it); sample weights also scale the softmax gradient (River's
/// `SoftmaxRegression` takes none).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "LrState")]
pub struct LogisticRegression {
    lr: f64,
    l2: f64,
    intercept_lr: f64,
    core: Core,
}

#[derive(Deserialize)]
struct LrState {
    lr: f64,
    l2: f64,
    intercept_lr: f64,
    core: Core,
}

impl TryFrom<LrState> for LogisticRegression {
    type Error = String;

    fn try_from(s: LrState) -> Result<Self, String> {
        if !(rate_ok(s.lr) && rate_ok(s.l2) && rate_ok(s.intercept_lr) && s.lr * s.l2 <= 1.0) {
            return Err("lr: learning rates out of range".into());
        }
        Ok(LogisticRegression {
            lr: s.lr,
            l2: s.l2,
            intercept_lr: s.intercept_lr,
            core: s.core,
        })
    }
}

impl LogisticRegression {
    /// A model; `n_classes_hint` (the schema's class count) picks softmax
    /// from the start when it is above 2.
    pub fn new(lr: f64, l2: f64, intercept_lr: f64, scale: bool, n_classes_hint: usize) -> Self {
        LogisticRegression {
            lr,
            l2,
            intercept_lr,
            core: Core::new(scale, n_classes_hint),
        }
    }

    /// Whether the model is in softmax (multiclass) mode.
    pub fn is_softmax(&self) -> bool {
        self.core.multi
    }
}

impl Classifier for LogisticRegression {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !usable(weight, y) {
            return;
        }
        // River predicts before it adds a new class, so a class taught for
        // the first time has probability 0 in its own gradient.
        let known = self.core.seen.get(y).copied().unwrap_or(false);
        self.core.prepare(x, y, Widen::Softmax);
        let (lr, l2, ilr) = (self.lr, self.l2, self.intercept_lr);
        if !self.core.multi {
            // d(log loss)/d(score) = sigmoid(score) - y, for y in {0, 1}.
            let target = if y == 1 { 1.0 } else { 0.0 };
            let g = ((sigmoid(self.core.score_buf(0)) - target) * weight).clamp(-CLIP, CLIP);
            self.core.sgd(0, g, lr, l2, ilr);
            return;
        }
        let units = self.core.units();
        let mut g = std::mem::take(&mut self.core.gbuf);
        g.clear();
        g.extend((0..units).map(|u| {
            if self.core.active(u) && (u != y || known) {
                self.core.score_buf(u)
            } else {
                f64::NEG_INFINITY
            }
        }));
        softmax(&mut g);
        for (u, gu) in g.iter().enumerate() {
            if !self.core.active(u) {
                continue;
            }
            // River clamps probabilities to [1e-15, 1 - 1e-15] in the gradient.
            let p = if u == y && !known { 0.0 } else { *gu };
            let p = p.clamp(1e-15, 1.0 - 1e-15);
            let target = if u == y { 1.0 } else { 0.0 };
            let grad = ((p - target) * weight).clamp(-CLIP, CLIP);
            self.core.sgd(u, grad, lr, l2, ilr);
        }
        self.core.gbuf = g;
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        self.core.proba_into(x, out);
    }

    fn n_classes(&self) -> usize {
        self.core.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.core.bytes()
    }
}

/// The perceptron as River defines it: SGD with learning rate `lr` on the
/// hinge loss with threshold 0 (a unit updates when `y · score ≤ 0`), bias
/// learnt at the same rate (River's `linear_model.Perceptron`). Multiclass by
/// one-vs-rest: one unit per class, each trained with its class as +1.
/// Probabilities are the sigmoid of the binary score, or the softmax of the
/// one-vs-rest scores.
///
/// Parameters (spec `perceptron`), River's defaults:
/// - `lr = 1`: learning rate of weights and bias (fixed at 1 in River);
/// - `l2 = 0`: L2 penalty, applied every step as in River;
/// - `scale = false`: online standard scaling of the inputs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "PerceptronState")]
pub struct Perceptron {
    lr: f64,
    l2: f64,
    core: Core,
}

#[derive(Deserialize)]
struct PerceptronState {
    lr: f64,
    l2: f64,
    core: Core,
}

impl TryFrom<PerceptronState> for Perceptron {
    type Error = String;

    fn try_from(s: PerceptronState) -> Result<Self, String> {
        if !(rate_ok(s.lr) && rate_ok(s.l2) && s.lr * s.l2 <= 1.0) {
            return Err("perceptron: learning rates out of range".into());
        }
        Ok(Perceptron {
            lr: s.lr,
            l2: s.l2,
            core: s.core,
        })
    }
}

impl Perceptron {
    pub fn new(lr: f64, l2: f64, scale: bool, n_classes_hint: usize) -> Self {
        Perceptron {
            lr,
            l2,
            core: Core::new(scale, n_classes_hint),
        }
    }
}

impl Classifier for Perceptron {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !usable(weight, y) {
            return;
        }
        self.core.prepare(x, y, Widen::OneVsRest);
        let (lr, l2) = (self.lr, self.l2);
        for u in 0..self.core.units() {
            if !self.core.active(u) {
                continue;
            }
            let positive = if self.core.multi { u == y } else { y == 1 };
            let t = if positive { 1.0 } else { -1.0 };
            let s = self.core.score_buf(u);
            let g = if t * s <= 0.0 {
                (-t * weight).clamp(-CLIP, CLIP)
            } else {
                0.0
            };
            if g != 0.0 || l2 != 0.0 {
                self.core.sgd(u, g, lr, l2, lr);
            }
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        self.core.proba_into(x, out);
    }

    fn n_classes(&self) -> usize {
        self.core.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.core.bytes()
    }
}

/// Passive-aggressive classifier (River's `linear_model.PAClassifier`): on a
/// hinge loss `ℓ = max(0, 1 - y · score)` the unit moves by
/// `τ y x` (bias by `τ y`), with `τ = ℓ / ‖x‖²` (mode 0, PA),
/// `min(C, ℓ / ‖x‖²)` (mode 1, PA-I) or `ℓ / (‖x‖² + 1 / 2C)` (mode 2,
/// PA-II). Multiclass by one-vs-rest; probabilities as for [`Perceptron`].
///
/// Parameters (spec `pa`), River's defaults:
/// - `c = 1.0`: aggressiveness bound `C`;
/// - `mode = 1`: PA-I;
/// - `scale = false`: online standard scaling of the inputs.
///
/// River ignores sample weights here; a weight `w` scales `C` to `w·C` (a
/// weight-2 sample may move twice as far), and τ is capped at `1e12` so
/// that mode 0 cannot overflow on a near-zero input.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "PaState")]
pub struct PassiveAggressive {
    c: f64,
    mode: u8,
    core: Core,
}

#[derive(Deserialize)]
struct PaState {
    c: f64,
    mode: u8,
    core: Core,
}

impl TryFrom<PaState> for PassiveAggressive {
    type Error = String;

    fn try_from(s: PaState) -> Result<Self, String> {
        if !(s.c.is_finite() && s.c > 0.0 && s.c <= CLIP && s.mode <= 2) {
            return Err("pa: C or mode out of range".into());
        }
        Ok(PassiveAggressive {
            c: s.c,
            mode: s.mode,
            core: s.core,
        })
    }
}

impl PassiveAggressive {
    /// `mode` is 0, 1 or 2 (anything else reads as 1).
    pub fn new(c: f64, mode: u8, scale: bool, n_classes_hint: usize) -> Self {
        PassiveAggressive {
            c,
            mode: if mode > 2 { 1 } else { mode },
            core: Core::new(scale, n_classes_hint),
        }
    }
}

impl Classifier for PassiveAggressive {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !usable(weight, y) {
            return;
        }
        self.core.prepare(x, y, Widen::OneVsRest);
        let norm: f64 = self.core.xbuf.iter().map(|v| v * v).sum();
        let c = (self.c * weight).min(CLIP);
        for u in 0..self.core.units() {
            if !self.core.active(u) {
                continue;
            }
            let positive = if self.core.multi { u == y } else { y == 1 };
            let t = if positive { 1.0 } else { -1.0 };
            let loss = (1.0 - t * self.core.score_buf(u)).max(0.0);
            if loss <= 0.0 {
                continue;
            }
            let tau = match self.mode {
                0 if norm > 0.0 => loss / norm,
                2 => loss / (norm + 0.5 / c),
                1 if norm > 0.0 => c.min(loss / norm),
                _ => 0.0,
            };
            let tau = if tau.is_finite() {
                tau.clamp(0.0, CLIP)
            } else {
                0.0
            };
            if tau > 0.0 {
                // τ y is a step *against* the gradient: sgd subtracts.
                self.core.sgd(u, -tau * t, 1.0, 0.0, 1.0);
            }
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        self.core.proba_into(x, out);
    }

    fn n_classes(&self) -> usize {
        self.core.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.core.bytes()
    }
}

/// The learnt parameters of a linear model in a form federated merging can
/// average (see `crate::merge`): one row of weights and a bias per unit,
/// and which classes were taught.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearParams {
    /// Classes known.
    pub n_classes: usize,
    /// `false`: a single unit scoring class 1 against class 0.
    pub multi: bool,
    /// Which classes were taught.
    pub seen: Vec<bool>,
    /// Features per unit.
    pub n_features: usize,
    /// `units × n_features`, row-major.
    pub weights: Vec<f64>,
    /// One bias per unit.
    pub bias: Vec<f64>,
}

impl LinearParams {
    /// Units (rows).
    pub fn units(&self) -> usize {
        self.bias.len()
    }

    /// Whether unit `u` carries anything learnt: every unit of a binary
    /// model, the units of taught classes in a multiclass one.
    pub fn active(&self, u: usize) -> bool {
        !self.multi || self.seen.get(u).copied().unwrap_or(false)
    }

    /// Every number finite and the shape consistent.
    pub fn is_valid(&self) -> bool {
        let units_ok = if self.multi {
            self.bias.len() == self.n_classes
        } else {
            self.bias.len() <= 1
        };
        self.n_classes <= MAX_CLASSES
            && self.seen.len() == self.n_classes
            && units_ok
            && self.bias.len().checked_mul(self.n_features) == Some(self.weights.len())
            && self.weights.iter().chain(&self.bias).all(|v| v.is_finite())
    }

    /// Euclidean norm of weights and biases.
    pub fn norm(&self) -> f64 {
        self.weights
            .iter()
            .chain(&self.bias)
            .map(|v| v * v)
            .sum::<f64>()
            .sqrt()
    }
}

impl Core {
    fn params(&self) -> LinearParams {
        LinearParams {
            n_classes: self.n_classes,
            multi: self.multi,
            seen: self.seen.clone(),
            n_features: self.n_features,
            weights: self.weights.clone(),
            bias: self.bias.clone(),
        }
    }

    /// Replace the learnt parameters (the scaler and rates stay); refused
    /// unless the shape is consistent and every number finite.
    fn set_params(&mut self, p: LinearParams) -> Result<(), String> {
        if !p.is_valid() {
            return Err("linear model: parameters are malformed".into());
        }
        self.n_classes = p.n_classes;
        self.multi = p.multi;
        self.seen = p.seen;
        self.n_features = p.n_features;
        self.weights = p.weights;
        self.bias = p.bias;
        Ok(())
    }

    /// Grow to at least `n_classes` classes (multiclass when `multi`) and
    /// `n_features` features, keeping what is learnt.
    fn reshape(&mut self, n_classes: usize, n_features: usize, multi: bool, widen: Widen) {
        if n_classes > self.n_classes {
            self.n_classes = n_classes;
            self.seen.resize(n_classes, false);
        }
        if multi && !self.multi {
            // The same widening as when a third class is taught.
            let f = self.n_features;
            let w1: Vec<f64> = self.weights.get(..f).unwrap_or(&[]).to_vec();
            let b1 = self.bias.first().copied().unwrap_or(0.0);
            self.multi = true;
            self.weights = vec![0.0; 2 * f];
            self.bias = vec![0.0; 2];
            if w1.len() == f {
                self.weights[f..2 * f].copy_from_slice(&w1);
            }
            self.bias[1] = b1;
            if let Widen::OneVsRest = widen {
                for (a, b) in self.weights[..f].iter_mut().zip(&w1) {
                    *a = -b;
                }
                self.bias[0] = -b1;
            }
            // A binary model that learnt anything saw both classes.
            if b1 != 0.0 || w1.iter().any(|w| *w != 0.0) {
                for s in self.seen.iter_mut().take(2) {
                    *s = true;
                }
            }
        }
        let units = if self.multi {
            self.n_classes
        } else {
            self.bias
                .len()
                .max(usize::from(self.n_classes > 0 || n_features > 0))
        };
        self.resize(units, n_features.max(self.n_features));
    }

    /// Renumber classes: class `c` becomes `map[c]`. Multiclass rows move;
    /// a binary model whose two classes swap negates its unit; a binary
    /// model sent past class 1 widens first.
    fn remap_classes(&mut self, map: &[usize], widen: Widen) -> Result<(), String> {
        if map.len() < self.n_classes {
            return Err("class map shorter than the model's classes".into());
        }
        let target = map
            .iter()
            .take(self.n_classes)
            .map(|&c| c + 1)
            .max()
            .unwrap_or(0);
        if target > MAX_CLASSES {
            return Err("class map goes past the class limit".into());
        }
        let mut seen_to = vec![false; target];
        for &to in map.iter().take(self.n_classes) {
            if seen_to[to] {
                return Err("class map is not one-to-one".into());
            }
            seen_to[to] = true;
        }
        if !self.multi {
            let identity = map
                .iter()
                .take(self.n_classes)
                .enumerate()
                .all(|(c, &t)| c == t);
            if identity {
                return Ok(());
            }
            let swap = self.n_classes == 2 && map[0] == 1 && map[1] == 0;
            if swap {
                for w in self.weights.iter_mut().chain(self.bias.iter_mut()) {
                    *w = -*w;
                }
                self.seen.swap(0, 1);
                return Ok(());
            }
            let (c, f) = (self.n_classes.max(3), self.n_features);
            self.reshape(c, f, true, widen);
        }
        let f = self.n_features;
        let n = target.max(self.n_classes);
        let mut weights = vec![0.0; n * f];
        let mut bias = vec![0.0; n];
        let mut seen = vec![false; n];
        for (c, &to) in map.iter().take(self.n_classes).enumerate() {
            weights[to * f..(to + 1) * f].copy_from_slice(&self.weights[c * f..(c + 1) * f]);
            bias[to] = self.bias[c];
            seen[to] = self.seen[c];
        }
        self.n_classes = n;
        self.weights = weights;
        self.bias = bias;
        self.seen = seen;
        Ok(())
    }
}

/// Parameter access for the three linear models, used by federated merging.
pub trait LinearModel {
    /// The learnt parameters.
    fn params(&self) -> LinearParams;
    /// Replace the learnt parameters; refused (nothing changes) unless the
    /// shape is consistent and every number finite.
    fn set_params(&mut self, p: LinearParams) -> Result<(), String>;
    /// Grow to at least `n_classes` classes (multiclass when `multi`) and
    /// `n_features` features, keeping what is learnt (predictions of the
    /// classes known do not change).
    fn reshape(&mut self, n_classes: usize, n_features: usize, multi: bool);
    /// Renumber classes: class `c` becomes `map[c]` (one-to-one).
    fn remap_classes(&mut self, map: &[usize]) -> Result<(), String>;
}

macro_rules! linear_model {
    ($t:ty, $widen:expr) => {
        impl LinearModel for $t {
            fn params(&self) -> LinearParams {
                self.core.params()
            }
            fn set_params(&mut self, p: LinearParams) -> Result<(), String> {
                self.core.set_params(p)
            }
            fn reshape(&mut self, n_classes: usize, n_features: usize, multi: bool) {
                self.core.reshape(n_classes, n_features, multi, $widen)
            }
            fn remap_classes(&mut self, map: &[usize]) -> Result<(), String> {
                self.core.remap_classes(map, $widen)
            }
        }
    };
}

linear_model!(LogisticRegression, Widen::Softmax);
linear_model!(Perceptron, Widen::OneVsRest);
linear_model!(PassiveAggressive, Widen::OneVsRest);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Prequential accuracy on a linearly separable 2-D concept with
    /// `k` classes split by angle.
    fn prequential<M: Classifier>(m: &mut M, k: usize, n: usize) -> f64 {
        let mut rng = Rng::new(11);
        let mut hits = 0;
        for _ in 0..n {
            let (a, b) = (rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0));
            let y = if k == 2 {
                usize::from(a + b > 0.0)
            } else {
                let ang = b.atan2(a) + std::f64::consts::PI;
                ((ang / std::f64::consts::TAU * k as f64) as usize).min(k - 1)
            };
            if m.predict_one(&[a, b]) == Some(y) {
                hits += 1;
            }
            m.learn_one(&[a, b], y, 1.0);
        }
        hits as f64 / n as f64
    }

    #[test]
    fn logistic_matches_a_hand_computed_step() {
        let mut m = LogisticRegression::new(0.01, 0.0, 0.01, false, 2);
        m.learn_one(&[2.0, -1.0], 1, 1.0);
        // Score 0 → sigmoid 0.5, gradient -0.5: w = 0.01·0.5·x, b = 0.005.
        let s: f64 = 0.005 + 0.01 * 2.0 + 0.005 * 1.0;
        let p = m.predict_proba_one(&[2.0, -1.0]);
        assert!((p[1] - 1.0 / (1.0 + (-s).exp())).abs() < 1e-15);
        assert!(!m.is_softmax());
    }

    #[test]
    fn every_linear_model_learns_a_separable_concept() {
        let mut lr = LogisticRegression::new(0.5, 0.0, 0.5, false, 0);
        assert!(prequential(&mut lr, 2, 1000) > 0.9);
        let mut p = Perceptron::new(1.0, 0.0, false, 0);
        assert!(prequential(&mut p, 2, 1000) > 0.9);
        let mut pa = PassiveAggressive::new(1.0, 1, false, 0);
        assert!(prequential(&mut pa, 2, 1000) > 0.9);
    }

    #[test]
    fn widening_to_softmax_keeps_predictions() {
        let mut m = LogisticRegression::new(0.1, 0.0, 0.1, true, 0);
        let mut rng = Rng::new(2);
        for _ in 0..200 {
            let a = rng.uniform(-1.0, 1.0);
            m.learn_one(&[a], usize::from(a > 0.0), 1.0);
        }
        let before = m.predict_proba_one(&[0.7]);
        m.grow_for_test(2);
        let after = m.predict_proba_one(&[0.7]);
        assert!(m.is_softmax());
        assert_eq!(after.len(), 3);
        let (b1, a1) = (before[1] / before[0], after[1] / after[0]);
        assert!((b1 - a1).abs() < 1e-9 * b1.abs());
        assert!(
            prequential(
                &mut LogisticRegression::new(0.5, 0.0, 0.5, true, 3),
                3,
                2000
            ) > 0.8
        );
    }

    #[test]
    fn one_vs_rest_learns_three_classes() {
        let mut p = Perceptron::new(1.0, 0.0, false, 0);
        assert!(prequential(&mut p, 3, 3000) > 0.8);
        let mut pa = PassiveAggressive::new(1.0, 1, false, 3);
        assert!(prequential(&mut pa, 3, 3000) > 0.8);
    }

    #[test]
    fn extreme_inputs_keep_weights_finite() {
        let models: Vec<Box<dyn Classifier>> = vec![
            Box::new(LogisticRegression::new(0.01, 0.0, 0.01, false, 0)),
            Box::new(LogisticRegression::new(0.01, 0.1, 0.01, true, 4)),
            Box::new(Perceptron::new(1.0, 0.0, false, 0)),
            Box::new(PassiveAggressive::new(1.0, 0, false, 0)),
            Box::new(PassiveAggressive::new(1.0, 2, true, 5)),
        ];
        for mut m in models {
            let xs = [
                vec![1e308, -1e308],
                vec![f64::NAN, f64::INFINITY],
                vec![1e-300, 0.0, 5.0],
                vec![f64::NEG_INFINITY],
            ];
            for (t, x) in xs.iter().cycle().take(40).enumerate() {
                m.learn_one(x, t % 3, if t % 5 == 0 { 1e300 } else { 1.0 });
            }
            for x in &xs {
                let p = m.predict_proba_one(x);
                assert!(p.iter().all(|v| v.is_finite()), "{p:?}");
                assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn malformed_snapshots_are_refused() {
        let mut m = LogisticRegression::new(0.01, 0.0, 0.01, false, 0);
        m.learn_one(&[1.0, 2.0], 1, 1.0);
        let good = serde_json::to_string(&m).unwrap();
        let back: LogisticRegression = serde_json::from_str(&good).unwrap();
        assert_eq!(
            back.predict_proba_one(&[1.0, 2.0]),
            m.predict_proba_one(&[1.0, 2.0])
        );
        let wide = good.replacen("\"n_features\":2", "\"n_features\":3", 1);
        assert_ne!(wide, good);
        assert!(serde_json::from_str::<LogisticRegression>(&wide).is_err());
        let fast = good.replacen("\"lr\":0.01", "\"lr\":1e300", 1);
        assert!(serde_json::from_str::<LogisticRegression>(&fast).is_err());
    }

    impl LogisticRegression {
        fn grow_for_test(&mut self, y: usize) {
            self.core.grow(y, 0, Widen::Softmax);
        }
    }
}
