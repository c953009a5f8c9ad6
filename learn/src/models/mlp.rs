//! Online multilayer perceptron (`mlp`): standardised inputs, configurable
//! hidden layers, a softmax output over a growing class set, trained one
//! sample (or one small mini-batch) at a time by SGD or Adam (Kingma & Ba
//! 2015).
//!
//! It is the parameter-averaging family of the mesh: [`Mlp::params`] returns
//! every learnt number as one flat `Vec<f32>` with the sample count, and
//! [`Mlp::set_params`] puts an averaged vector back.
//!
//! Robustness: inputs are standardised with running means and variances
//! (Welford 1962); a missing or non-finite input reads as 0 after
//! standardisation, standardised values are clipped to ±[`CLIP_INPUT`], an
//! update whose gradient is not finite is skipped, and weights are clipped
//! to ±[`CLIP_WEIGHT`], so no weight ever becomes non-finite.
//!
//! The arithmetic runs on plain `Vec<f32>`; see
//! `docs/decisions/003-mlp-backend.md` for why not on a tensor library.

use serde::{Deserialize, Serialize};

use crate::classifier::{normalize, vec_bytes, Classifier};
use crate::rng::Rng;
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

/// Standardised inputs are clipped to this magnitude.
pub const CLIP_INPUT: f32 = 8.0;
/// Weights are clipped to this magnitude.
pub const CLIP_WEIGHT: f32 = 1e4;
/// Raw inputs beyond this magnitude are clamped before they reach the
/// running statistics, so one absurd value cannot poison the scaler.
const CLAMP_RAW: f64 = 1e12;
/// A sample weight counts at most this much.
const MAX_WEIGHT: f32 = 100.0;
/// At most this many hidden layers, and units per layer.
const MAX_LAYERS: usize = 8;
const MAX_UNITS: usize = 4096;

/// Parameters of `mlp`, for `shoal-bench models`.
pub const MLP_PARAMS: &[ParamDoc] = &[
    ParamDoc {
        name: "hidden",
        default: "32",
        help: "units per hidden layer, `-` separated (e.g. 64-32); 0 = no hidden layer",
    },
    ParamDoc {
        name: "lr",
        default: "0.01",
        help: "learning rate (SGD step, or Adam's alpha)",
    },
    ParamDoc {
        name: "optimizer",
        default: "adam",
        help: "sgd | adam",
    },
    ParamDoc {
        name: "l2",
        default: "0",
        help: "L2 penalty on the weights",
    },
    ParamDoc {
        name: "activation",
        default: "relu",
        help: "relu | tanh",
    },
    ParamDoc {
        name: "batch",
        default: "1",
        help: "samples per update (gradients are averaged over a mini-batch)",
    },
    ParamDoc {
        name: "seed",
        default: "42",
        help: "seed of the weight initialisation",
    },
];

/// Running mean and variance of one feature (Welford).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
struct Moments {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }

    fn var(&self) -> f64 {
        if self.n > 1.0 {
            (self.m2 / self.n).max(0.0)
        } else {
            0.0
        }
    }
}

/// Update rule.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Optimizer {
    Sgd,
    Adam,
}

/// Hidden activation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Activation {
    Relu,
    Tanh,
}

/// One dense layer: `out = W · in + b`, `W` row-major `n_out × n_in`.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Layer {
    n_in: usize,
    n_out: usize,
    w: Vec<f32>,
    b: Vec<f32>,
    /// Accumulated gradient of the current mini-batch.
    gw: Vec<f32>,
    gb: Vec<f32>,
    /// Adam's first and second moments (empty under SGD).
    mw: Vec<f32>,
    vw: Vec<f32>,
    mb: Vec<f32>,
    vb: Vec<f32>,
}

impl Layer {
    fn new(n_in: usize, n_out: usize, adam: bool, rng: &mut Rng, zero: bool) -> Layer {
        // He / Glorot-style uniform init; the output layer starts at zero so
        // that an untrained class scores exactly 0.
        let bound = (6.0 / (n_in + n_out).max(1) as f64).sqrt();
        let w = (0..n_in * n_out)
            .map(|_| {
                if zero {
                    0.0
                } else {
                    rng.uniform(-bound, bound) as f32
                }
            })
            .collect();
        let moments = |n: usize| if adam { vec![0.0; n] } else { Vec::new() };
        Layer {
            n_in,
            n_out,
            w,
            b: vec![0.0; n_out],
            gw: vec![0.0; n_in * n_out],
            gb: vec![0.0; n_out],
            mw: moments(n_in * n_out),
            vw: moments(n_in * n_out),
            mb: moments(n_out),
            vb: moments(n_out),
        }
    }

    /// Append output rows (zero weights), keeping everything learnt.
    fn grow_out(&mut self, n_out: usize) {
        if n_out <= self.n_out {
            return;
        }
        let extra = n_out - self.n_out;
        let adam = !self.mw.is_empty();
        self.w.resize(n_out * self.n_in, 0.0);
        self.gw.resize(n_out * self.n_in, 0.0);
        self.b.resize(n_out, 0.0);
        self.gb.resize(n_out, 0.0);
        if adam {
            self.mw.resize(n_out * self.n_in, 0.0);
            self.vw.resize(n_out * self.n_in, 0.0);
            self.mb.resize(n_out, 0.0);
            self.vb.resize(n_out, 0.0);
        }
        let _ = extra;
        self.n_out = n_out;
    }

    /// Widen the input by zero columns, so outputs do not change.
    fn grow_in(&mut self, n_in: usize) {
        if n_in <= self.n_in {
            return;
        }
        let widen = |v: &mut Vec<f32>, old: usize, rows: usize| {
            if v.is_empty() {
                return;
            }
            let mut out = vec![0.0; rows * n_in];
            for r in 0..rows {
                out[r * n_in..r * n_in + old].copy_from_slice(&v[r * old..(r + 1) * old]);
            }
            *v = out;
        };
        let (old, rows) = (self.n_in, self.n_out);
        widen(&mut self.w, old, rows);
        widen(&mut self.gw, old, rows);
        widen(&mut self.mw, old, rows);
        widen(&mut self.vw, old, rows);
        self.n_in = n_in;
    }

    fn forward(&self, input: &[f32], out: &mut [f32]) {
        for (o, (row, b)) in out
            .iter_mut()
            .zip(self.w.chunks_exact(self.n_in.max(1)).zip(&self.b))
        {
            let mut s = *b;
            for (w, x) in row.iter().zip(input) {
                s += w * x;
            }
            *o = s;
        }
        if self.n_in == 0 {
            out.copy_from_slice(&self.b);
        }
    }

    fn bytes(&self) -> usize {
        vec_bytes(&self.w)
            + vec_bytes(&self.b)
            + vec_bytes(&self.gw)
            + vec_bytes(&self.gb)
            + vec_bytes(&self.mw)
            + vec_bytes(&self.vw)
            + vec_bytes(&self.mb)
            + vec_bytes(&self.vb)
    }
}

/// Every learnt number of an [`Mlp`], for federated averaging.
///
/// `flat` holds, layer after layer (input side first), the weights
/// (row-major `n_out × n_in`) and then the biases. The layer sizes are
/// `[n_features, hidden..., n_classes]`. The scaler's statistics come along
/// (`mean`, `var`, one per feature) because the weights only mean something
/// relative to them; average them with the same sample weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct MlpParams {
    pub n_features: usize,
    pub n_classes: usize,
    pub hidden: Vec<usize>,
    /// Samples learnt (the weight of this model in a sample-weighted mean).
    pub samples: u64,
    pub flat: Vec<f32>,
    pub mean: Vec<f64>,
    pub var: Vec<f64>,
}

impl MlpParams {
    /// Sizes of the layers, input first.
    pub fn sizes(&self) -> Vec<usize> {
        let mut s = vec![self.n_features];
        s.extend(&self.hidden);
        s.push(self.n_classes);
        s
    }

    /// Length `flat` must have for these sizes.
    pub fn expected_len(&self) -> usize {
        self.sizes().windows(2).map(|w| w[0] * w[1] + w[1]).sum()
    }

    /// Shape consistent and every number finite.
    pub fn is_valid(&self) -> bool {
        self.flat.len() == self.expected_len()
            && self.mean.len() == self.n_features
            && self.var.len() == self.n_features
            && self.flat.iter().all(|v| v.is_finite())
            && self.mean.iter().all(|v| v.is_finite())
            && self.var.iter().all(|v| v.is_finite() && *v >= 0.0)
    }
}

/// The online MLP classifier.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Mlp {
    hidden: Vec<usize>,
    lr: f32,
    l2: f32,
    optimizer: Optimizer,
    activation: Activation,
    batch: usize,
    rng: Rng,
    n_features: usize,
    /// Classes known (output units); grows.
    n_classes: usize,
    scaler: Vec<Moments>,
    /// Empty until the first sample fixes the input width.
    layers: Vec<Layer>,
    /// Samples in the current (unapplied) mini-batch, and their weight.
    pending: usize,
    pending_weight: f32,
    /// Updates applied (Adam's step counter).
    steps: u64,
    samples: u64,
    /// Updates skipped because their gradient was not finite.
    skipped: u64,
}

impl Mlp {
    /// A network with the given hidden layer sizes.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        schema: &Schema,
        hidden: Vec<usize>,
        lr: f64,
        optimizer: Optimizer,
        activation: Activation,
        l2: f64,
        batch: usize,
        seed: u64,
    ) -> Mlp {
        Mlp {
            hidden,
            lr: lr as f32,
            l2: l2 as f32,
            optimizer,
            activation,
            batch: batch.max(1),
            rng: Rng::new(seed),
            n_features: 0,
            n_classes: schema.n_classes(),
            scaler: Vec::new(),
            layers: Vec::new(),
            pending: 0,
            pending_weight: 0.0,
            steps: 0,
            samples: 0,
            skipped: 0,
        }
    }

    /// Build from a spec (`mlp:hidden=64-32,lr=0.005,optimizer=sgd`).
    pub fn from_spec(spec: &Spec, schema: &Schema) -> Result<Mlp, SpecError> {
        let mut r = spec.reader();
        let hidden_s = r.string("hidden", "32");
        let lr = r.f64_in("lr", 0.01, 1e-9, 10.0)?;
        let optimizer = match r.choice("optimizer", "adam", &["sgd", "adam"])? {
            "sgd" => Optimizer::Sgd,
            _ => Optimizer::Adam,
        };
        let l2 = r.f64_in("l2", 0.0, 0.0, 1.0)?;
        let activation = match r.choice("activation", "relu", &["relu", "tanh"])? {
            "tanh" => Activation::Tanh,
            _ => Activation::Relu,
        };
        let batch = r.usize_in("batch", 1, 1, 4096)?;
        let seed = r.u64("seed", 42)?;
        r.finish()?;
        let bad = |why: &str| SpecError::BadValue {
            name: spec.name.clone(),
            param: "hidden".into(),
            value: hidden_s.clone(),
            why: why.into(),
        };
        let mut hidden = Vec::new();
        for part in hidden_s.split(['-', '/', ' ']).filter(|p| !p.is_empty()) {
            let n: usize = part
                .parse()
                .map_err(|_| bad("expected sizes like 32 or 64-32"))?;
            if n > MAX_UNITS {
                return Err(bad(&format!("at most {MAX_UNITS} units per layer")));
            }
            if n > 0 {
                hidden.push(n);
            }
        }
        if hidden.len() > MAX_LAYERS {
            return Err(bad(&format!("at most {MAX_LAYERS} hidden layers")));
        }
        Ok(Mlp::new(
            schema, hidden, lr, optimizer, activation, l2, batch, seed,
        ))
    }

    /// Hidden layer sizes.
    pub fn hidden(&self) -> &[usize] {
        &self.hidden
    }

    /// Samples learnt.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// Updates skipped because they were not finite.
    pub fn skipped_updates(&self) -> u64 {
        self.skipped
    }

    /// Build the layers for `n_features` inputs (on the first sample).
    fn init(&mut self, n_features: usize) {
        self.n_features = n_features;
        self.scaler = vec![Moments::default(); n_features];
        let adam = self.optimizer == Optimizer::Adam;
        let mut sizes = vec![n_features];
        sizes.extend(&self.hidden);
        sizes.push(self.n_classes);
        let last = sizes.len() - 2;
        self.layers = sizes
            .windows(2)
            .enumerate()
            .map(|(i, w)| Layer::new(w[0], w[1], adam, &mut self.rng, i == last))
            .collect();
    }

    /// Grow to at least `n_classes` outputs and `n_features` inputs, keeping
    /// what is learnt (predictions of known classes over known features do
    /// not change).
    pub fn reshape(&mut self, n_classes: usize, n_features: usize) {
        if self.layers.is_empty() {
            self.n_classes = self.n_classes.max(n_classes);
            if n_features > 0 {
                self.init(n_features);
            }
            return;
        }
        if n_classes > self.n_classes {
            self.n_classes = n_classes;
            if let Some(l) = self.layers.last_mut() {
                l.grow_out(n_classes);
            }
        }
        if n_features > self.n_features {
            self.n_features = n_features;
            self.scaler.resize(n_features, Moments::default());
            if let Some(l) = self.layers.first_mut() {
                l.grow_in(n_features);
            }
        }
    }

    /// Standardised input, 0 for missing / non-finite values.
    fn standardise(&self, x: &[f64], out: &mut Vec<f32>) {
        out.clear();
        for (i, m) in self.scaler.iter().enumerate() {
            let v = x.get(i).copied().unwrap_or(f64::NAN);
            let z = if v.is_finite() {
                let v = v.clamp(-CLAMP_RAW, CLAMP_RAW);
                let sd = m.var().sqrt();
                let z = if sd > 1e-12 { (v - m.mean) / sd } else { 0.0 };
                (z as f32).clamp(-CLIP_INPUT, CLIP_INPUT)
            } else {
                0.0
            };
            out.push(if z.is_finite() { z } else { 0.0 });
        }
    }

    fn activate(&self, v: &mut [f32]) {
        match self.activation {
            Activation::Relu => v.iter_mut().for_each(|a| *a = a.max(0.0)),
            Activation::Tanh => v.iter_mut().for_each(|a| *a = a.tanh()),
        }
    }

    /// Forward pass; `acts[0]` is the input, `acts[i+1]` the output of
    /// layer `i` (activated for hidden layers, raw logits for the last).
    fn forward(&self, acts: &mut Vec<Vec<f32>>) {
        acts.resize(self.layers.len() + 1, Vec::new());
        let last = self.layers.len().saturating_sub(1);
        for (i, layer) in self.layers.iter().enumerate() {
            let (before, after) = acts.split_at_mut(i + 1);
            let out = &mut after[0];
            out.clear();
            out.resize(layer.n_out, 0.0);
            layer.forward(&before[i], out);
            if i < last {
                self.activate(out);
            }
        }
    }

    /// Softmax of logits in f64, into `out`.
    fn softmax(logits: &[f32], out: &mut Vec<f64>) {
        out.clear();
        let max = logits
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(f32::NEG_INFINITY, f32::max);
        for &z in logits {
            let z = if z.is_finite() { z } else { max };
            out.push(f64::from(z - max).exp());
        }
        normalize(out);
    }

    /// One sample's gradient, added to the mini-batch accumulators.
    /// Returns `false` (and adds nothing) if it is not finite.
    fn accumulate(&mut self, acts: &[Vec<f32>], y: usize, w: f32) -> bool {
        let n = self.layers.len();
        let mut probs = Vec::new();
        Self::softmax(&acts[n], &mut probs);
        // delta of the output layer: p - onehot(y), times the sample weight.
        let mut delta: Vec<f32> = probs
            .iter()
            .enumerate()
            .map(|(c, p)| (*p as f32 - if c == y { 1.0 } else { 0.0 }) * w)
            .collect();
        // Gradients are computed into scratch first so a non-finite one
        // leaves the accumulators untouched.
        let mut grads: Vec<(Vec<f32>, Vec<f32>)> = Vec::with_capacity(n);
        for i in (0..n).rev() {
            let layer = &self.layers[i];
            let input = &acts[i];
            let mut gw = vec![0.0f32; layer.n_in * layer.n_out];
            for (o, d) in delta.iter().enumerate() {
                if *d == 0.0 {
                    continue;
                }
                let row = &mut gw[o * layer.n_in..(o + 1) * layer.n_in];
                for (g, x) in row.iter_mut().zip(input) {
                    *g = d * x;
                }
            }
            let gb = delta.clone();
            if i > 0 {
                let mut prev = vec![0.0f32; layer.n_in];
                for (o, d) in delta.iter().enumerate() {
                    if *d == 0.0 {
                        continue;
                    }
                    let row = &layer.w[o * layer.n_in..(o + 1) * layer.n_in];
                    for (p, wv) in prev.iter_mut().zip(row) {
                        *p += d * wv;
                    }
                }
                // derivative of the activation at the hidden output acts[i]
                for (p, a) in prev.iter_mut().zip(input) {
                    *p *= match self.activation {
                        Activation::Relu => {
                            if *a > 0.0 {
                                1.0
                            } else {
                                0.0
                            }
                        }
                        Activation::Tanh => 1.0 - a * a,
                    };
                }
                delta = prev;
            }
            grads.push((gw, gb));
        }
        if !grads
            .iter()
            .all(|(gw, gb)| gw.iter().chain(gb).all(|v| v.is_finite()))
        {
            return false;
        }
        for (layer, (gw, gb)) in self.layers.iter_mut().rev().zip(grads) {
            layer.gw.iter_mut().zip(gw).for_each(|(a, g)| *a += g);
            layer.gb.iter_mut().zip(gb).for_each(|(a, g)| *a += g);
        }
        true
    }

    /// Apply the accumulated mini-batch gradient and clear it.
    fn apply(&mut self) {
        // A mini-batch applies the mean of its (sample-weighted) gradients.
        let scale = 1.0 / self.pending.max(1) as f32;
        self.steps += 1;
        let (lr, l2) = (self.lr, self.l2);
        let t = self.steps.min(1_000_000) as i32;
        let (b1, b2, eps) = (0.9f32, 0.999f32, 1e-8f32);
        let (c1, c2) = (1.0 - b1.powi(t), 1.0 - b2.powi(t));
        for layer in &mut self.layers {
            match self.optimizer {
                Optimizer::Sgd => {
                    for (w, g) in layer.w.iter_mut().zip(&mut layer.gw) {
                        let step = lr * (*g * scale + l2 * *w);
                        *w = (*w - step).clamp(-CLIP_WEIGHT, CLIP_WEIGHT);
                        *g = 0.0;
                    }
                    for (b, g) in layer.b.iter_mut().zip(&mut layer.gb) {
                        *b = (*b - lr * *g * scale).clamp(-CLIP_WEIGHT, CLIP_WEIGHT);
                        *g = 0.0;
                    }
                }
                Optimizer::Adam => {
                    let upd = |w: &mut f32, g: &mut f32, m: &mut f32, v: &mut f32, reg: f32| {
                        let gg = *g * scale + reg * *w;
                        *m = b1 * *m + (1.0 - b1) * gg;
                        *v = b2 * *v + (1.0 - b2) * gg * gg;
                        let step = lr * (*m / c1) / ((*v / c2).sqrt() + eps);
                        if step.is_finite() {
                            *w = (*w - step).clamp(-CLIP_WEIGHT, CLIP_WEIGHT);
                        }
                        if !m.is_finite() || !v.is_finite() {
                            *m = 0.0;
                            *v = 0.0;
                        }
                        *g = 0.0;
                    };
                    for (((w, g), m), v) in layer
                        .w
                        .iter_mut()
                        .zip(&mut layer.gw)
                        .zip(&mut layer.mw)
                        .zip(&mut layer.vw)
                    {
                        upd(w, g, m, v, l2);
                    }
                    for (((b, g), m), v) in layer
                        .b
                        .iter_mut()
                        .zip(&mut layer.gb)
                        .zip(&mut layer.mb)
                        .zip(&mut layer.vb)
                    {
                        upd(b, g, m, v, 0.0);
                    }
                }
            }
        }
        self.pending = 0;
        self.pending_weight = 0.0;
    }

    /// Every learnt number as one flat vector, with the sample count.
    pub fn params(&self) -> MlpParams {
        let mut flat = Vec::new();
        for l in &self.layers {
            flat.extend_from_slice(&l.w);
            flat.extend_from_slice(&l.b);
        }
        MlpParams {
            n_features: self.n_features,
            n_classes: if self.layers.is_empty() {
                0
            } else {
                self.n_classes
            },
            hidden: self.hidden.clone(),
            samples: self.samples,
            flat,
            mean: self.scaler.iter().map(|m| m.mean).collect(),
            var: self.scaler.iter().map(Moments::var).collect(),
        }
    }

    /// Replace the learnt numbers (weights, biases, scaler) by `p`. The
    /// model first grows to `p`'s classes and features; `p` must then have
    /// exactly this model's shape (same hidden layers) and be finite, or
    /// nothing changes. The optimiser state and sample count are kept.
    pub fn set_params(&mut self, p: &MlpParams) -> Result<(), String> {
        if !p.is_valid() {
            return Err("mlp: parameters are malformed or not finite".into());
        }
        if p.hidden != self.hidden {
            return Err(format!(
                "mlp: hidden layers {:?} do not match this model's {:?}",
                p.hidden, self.hidden
            ));
        }
        if p.n_features < self.n_features || p.n_classes < self.n_classes {
            return Err(format!(
                "mlp: parameters for {} features / {} classes are smaller than this model ({} / {}); reshape them first",
                p.n_features, p.n_classes, self.n_features, self.n_classes
            ));
        }
        if p.n_features == 0 {
            return Ok(());
        }
        self.reshape(p.n_classes, p.n_features);
        let mut at = 0;
        for l in &mut self.layers {
            let (nw, nb) = (l.w.len(), l.b.len());
            l.w.copy_from_slice(&p.flat[at..at + nw]);
            at += nw;
            l.b.copy_from_slice(&p.flat[at..at + nb]);
            at += nb;
        }
        for (m, (mean, var)) in self.scaler.iter_mut().zip(p.mean.iter().zip(&p.var)) {
            let n = m.n.max(2.0);
            *m = Moments {
                n,
                mean: *mean,
                m2: var * n,
            };
        }
        Ok(())
    }
}

impl Classifier for Mlp {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !(weight.is_finite() && weight > 0.0) || y >= 1 << 20 {
            return;
        }
        let w = (weight as f32).min(MAX_WEIGHT);
        if self.layers.is_empty() {
            self.n_classes = self.n_classes.max(y + 1);
            self.init(x.len());
        }
        self.reshape(y + 1, x.len());
        for (m, &v) in self.scaler.iter_mut().zip(x) {
            if v.is_finite() {
                m.add(v.clamp(-CLAMP_RAW, CLAMP_RAW));
            }
        }
        self.samples += 1;
        let mut acts = vec![Vec::new()];
        self.standardise(x, &mut acts[0]);
        self.forward(&mut acts);
        if self.accumulate(&acts, y, w) {
            self.pending += 1;
            self.pending_weight += w;
        } else {
            self.skipped += 1;
        }
        if self.pending >= self.batch {
            self.apply();
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        if self.layers.is_empty() || self.samples == 0 {
            out.resize(self.n_classes, 0.0);
            return;
        }
        let mut acts = vec![Vec::new()];
        self.standardise(x, &mut acts[0]);
        self.forward(&mut acts);
        Self::softmax(&acts[self.layers.len()], out);
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + vec_bytes(&self.hidden)
            + vec_bytes(&self.scaler)
            + vec_bytes(&self.layers)
            + self.layers.iter().map(Layer::bytes).sum::<usize>()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mlp(spec: &str, classes: usize) -> Mlp {
        let names: Vec<String> = (0..classes).map(|c| c.to_string()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        Mlp::from_spec(&Spec::parse(spec).unwrap(), &Schema::numeric(2, &refs)).unwrap()
    }

    fn xor_accuracy(m: &mut Mlp, n: usize) -> f64 {
        let mut rng = Rng::new(5);
        let mut hits = 0;
        for t in 0..n {
            let (a, b) = (rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0));
            let y = usize::from((a > 0.0) != (b > 0.0));
            if t >= n / 2 {
                hits += usize::from(m.predict_one(&[a, b]) == Some(y));
            }
            m.learn_one(&[a, b], y, 1.0);
        }
        hits as f64 / (n / 2) as f64
    }

    #[test]
    fn learns_xor_which_no_linear_model_can() {
        let mut m = mlp("mlp:hidden=16,lr=0.01", 2);
        assert!(xor_accuracy(&mut m, 6000) > 0.9);
        let mut sgd = mlp("mlp:hidden=16,lr=0.05,optimizer=sgd,activation=tanh", 2);
        assert!(xor_accuracy(&mut sgd, 12000) > 0.85);
        let mut batched = mlp("mlp:hidden=16,lr=0.01,batch=8", 2);
        assert!(xor_accuracy(&mut batched, 12000) > 0.85);
    }

    #[test]
    fn grows_classes_and_features_keeping_predictions() {
        let mut m = mlp("mlp:hidden=8", 0);
        for t in 0..200 {
            m.learn_one(&[t as f64 % 3.0, 1.0], t % 2, 1.0);
        }
        assert_eq!(m.n_classes(), 2);
        let before = m.predict_proba_one(&[1.0, 1.0]);
        m.reshape(2, 4);
        let after = m.predict_proba_one(&[1.0, 1.0]);
        assert_eq!(before, after);
        m.learn_one(&[0.0, 0.0, 5.0], 4, 1.0);
        assert_eq!(m.n_classes(), 5);
        let p = m.predict_proba_one(&[0.0, 0.0, 5.0]);
        assert_eq!(p.len(), 5);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn params_round_trip_and_refuse_bad_shapes() {
        let mut a = mlp("mlp:hidden=4-3", 3);
        for t in 0..300 {
            a.learn_one(&[t as f64 % 5.0, (t % 7) as f64], t % 3, 1.0);
        }
        let p = a.params();
        assert!(p.is_valid());
        assert_eq!(p.samples, 300);
        assert_eq!(p.sizes(), vec![2, 4, 3, 3]);
        let mut b = mlp("mlp:hidden=4-3,seed=9", 3);
        b.learn_one(&[0.0, 0.0], 0, 1.0);
        b.set_params(&p).unwrap();
        for x in [[0.0, 1.0], [3.0, 2.0], [f64::NAN, 9.0]] {
            assert_eq!(a.predict_proba_one(&x), b.predict_proba_one(&x));
        }
        let mut bad = p.clone();
        bad.flat[0] = f32::NAN;
        assert!(b.set_params(&bad).is_err());
        let mut other = mlp("mlp:hidden=5", 3);
        assert!(other.set_params(&p).is_err());
    }

    #[test]
    fn hostile_inputs_keep_weights_finite() {
        let mut m = mlp("mlp:hidden=8,lr=1", 2);
        let hostile = [
            vec![f64::NAN, f64::INFINITY],
            vec![1e300, -1e300],
            vec![f64::MAX, 0.0],
            vec![],
        ];
        for t in 0..500 {
            m.learn_one(&hostile[t % hostile.len()], t % 2, 1e300);
            m.learn_one(&[(t % 3) as f64, 1.0], t % 2, 1.0);
        }
        assert!(m.params().flat.iter().all(|v| v.is_finite()));
        let p = m.predict_proba_one(&[1.0, 2.0]);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-9);
    }

    #[test]
    fn rejects_bad_specs() {
        let s = Schema::numeric(2, &["a", "b"]);
        for bad in [
            "mlp:hidden=x",
            "mlp:hidden=99999",
            "mlp:lr=0",
            "mlp:optimizer=rmsprop",
            "mlp:hidden=1-1-1-1-1-1-1-1-1",
        ] {
            assert!(
                Mlp::from_spec(&Spec::parse(bad).unwrap(), &s).is_err(),
                "{bad}"
            );
        }
    }
}
