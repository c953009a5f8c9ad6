//! Gaussian naive Bayes for streams, following River's
//! `naive_bayes.GaussianNB` for numeric features, plus Laplace-smoothed value
//! counts for nominal ones.
//!
//! Each class keeps, per feature, a weighted Welford mean and variance
//! (West 1979, "Updating mean and variance estimates: an improved method").
//! The statistics live in plain `Vec<f64>`s so that two models merge exactly
//! ([`GaussianNB::merge`], Chan, Golub & LeVeque 1979), which is what
//! federated merging of sufficient statistics builds on.
//!
//! Behaviour, matching River where River defines it:
//! - the class prior is the class's share of the total sample weight;
//! - a numeric feature contributes `ln(1e-9 + pdf(x))`, where `pdf` is the
//!   normal density with the class's mean and sample variance (`ddof = 1`);
//!   with no variance yet (weight ≤ 1 or all values equal) `pdf` is 0, so the
//!   term is `ln(1e-9)` — River's floor, which also keeps one far-off value
//!   from vetoing a class;
//! - probabilities are the softmax of the joint log-likelihoods.
//!
//! One option River lacks, `var_smoothing` (0, River's behaviour, by
//! default): as in scikit-learn's `GaussianNB`, `var_smoothing` times the
//! largest variance of any numeric feature over all classes is added to
//! every class variance that has an estimate (weight above 1). A feature
//! that is constant within a class then gives that class a sharp density
//! instead of the floor — on data with many binary columns, such as
//! covertype's 44, River's rule makes those columns carry no information
//! and the model falls back to the majority class. The largest variance is
//! pooled from the class statistics at prediction time, so merging stays
//! exact.
//!
//! Where River defines nothing:
//! - nominal features (per the schema's nominal mask given at build time)
//!   contribute `ln((n_cv + 1) / (n_c + V))`: the class's weight of value `v`
//!   with Laplace smoothing over the `V` values known (schema cardinality or
//!   the largest index seen, whichever is more);
//! - missing values (`NaN`) and infinities are skipped when learning and
//!   ignored when predicting; a numeric value whose statistics would overflow
//!   `f64` is skipped too, so the state always stays finite (and serialisable
//!   as JSON);
//! - a nominal value that is not a non-negative integer below
//!   [`MAX_NOMINAL_VALUES`] is treated as missing;
//! - samples with a weight that is not finite and positive are ignored;
//! - classes and features grow as they appear; classes never taught get
//!   probability 0.

use serde::{Deserialize, Serialize};

use crate::classifier::{feature, normalize, vec_bytes, Classifier};
use crate::schema::Schema;

/// River's additive floor inside the log of each numeric density.
const PDF_FLOOR: f64 = 1e-9;

/// Largest class index a model accepts (a sample with a larger label is
/// ignored), so that a hostile label cannot make the model allocate without
/// bound.
pub const MAX_CLASSES: usize = 1 << 16;

/// Nominal values at or past this index are treated as missing, for the
/// same reason.
pub const MAX_NOMINAL_VALUES: usize = 1 << 16;

/// Per-feature weighted mean and variance of one class (Welford), as three
/// parallel vectors indexed by feature. For a nominal feature only `weight`
/// is used (its total observed weight).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Gaussians {
    /// Sum of the weights of the non-missing values seen.
    pub weight: Vec<f64>,
    /// Weighted mean.
    pub mean: Vec<f64>,
    /// Weighted sum of squared deviations from the mean.
    pub m2: Vec<f64>,
}

impl Gaussians {
    fn grow(&mut self, n: usize) {
        if self.weight.len() < n {
            self.weight.resize(n, 0.0);
            self.mean.resize(n, 0.0);
            self.m2.resize(n, 0.0);
        }
    }

    /// Features with statistics.
    pub fn len(&self) -> usize {
        self.weight.len()
    }

    /// Whether no feature has statistics yet.
    pub fn is_empty(&self) -> bool {
        self.weight.is_empty()
    }

    /// Sample variance (`ddof = 1`, weights as frequencies, like River's
    /// `stats.Var`); 0 while the weight is at most 1.
    #[inline]
    pub fn variance(&self, i: usize) -> f64 {
        let w = self.weight[i];
        if w > 1.0 {
            self.m2[i] / (w - 1.0)
        } else {
            0.0
        }
    }

    fn bytes(&self) -> usize {
        vec_bytes(&self.weight) + vec_bytes(&self.mean) + vec_bytes(&self.m2)
    }
}

/// Everything one class has learnt.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ClassStats {
    /// Total weight of the samples of this class.
    pub weight: f64,
    /// Numeric statistics, indexed by feature.
    pub gaussians: Gaussians,
    /// Nominal value weights, indexed by feature then value; empty for
    /// numeric features.
    pub counts: Vec<Vec<f64>>,
}

impl ClassStats {
    fn bytes(&self) -> usize {
        self.gaussians.bytes()
            + vec_bytes(&self.counts)
            + self.counts.iter().map(vec_bytes).sum::<usize>()
    }
}

/// Gaussian naive Bayes. One parameter, `var_smoothing` (0 = River's
/// `GaussianNB`, which has none).
///
/// A snapshot is checked when deserialised (vector lengths agree, every
/// statistic finite and non-negative where it must be), so a malformed or
/// hostile snapshot is an error, not a model that panics later.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "GaussianNbState")]
pub struct GaussianNB {
    /// Which features are nominal; features past the end are numeric.
    nominal: Vec<bool>,
    /// Number of values known per feature (0 for numeric features).
    n_values: Vec<usize>,
    classes: Vec<ClassStats>,
    total_weight: f64,
    /// Share of the largest pooled feature variance added to every class
    /// variance (0: none, as River).
    #[serde(default)]
    var_smoothing: f64,
}

/// A nominal value as an index, or `None` when it must be read as missing.
#[inline]
fn nominal_index(v: f64) -> Option<usize> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < MAX_NOMINAL_VALUES as f64 {
        Some(v as usize)
    } else {
        None
    }
}

impl GaussianNB {
    /// A model for `schema`'s features: its nominal mask and the cardinality
    /// of each nominal feature seed the smoothing.
    pub fn new(schema: &Schema) -> Self {
        let nominal = schema.nominal_mask();
        let n_values = schema
            .features
            .iter()
            .map(|f| match &f.kind {
                crate::schema::FeatureKind::Nominal { values } => values.len(),
                crate::schema::FeatureKind::Numeric => 0,
            })
            .collect();
        GaussianNB {
            nominal,
            n_values,
            classes: Vec::new(),
            total_weight: 0.0,
            var_smoothing: 0.0,
        }
    }

    /// Add `share` times the largest feature variance to every class
    /// variance (scikit-learn's `var_smoothing`); non-finite or negative
    /// values mean 0.
    pub fn with_var_smoothing(mut self, share: f64) -> Self {
        self.var_smoothing = if share.is_finite() && share > 0.0 {
            share
        } else {
            0.0
        };
        self
    }

    /// `var_smoothing` times the largest variance of a numeric feature over
    /// all classes pooled (Chan et al.'s combination of the class
    /// statistics); 0 when smoothing is off.
    fn variance_epsilon(&self) -> f64 {
        if self.var_smoothing <= 0.0 {
            return 0.0;
        }
        let n = self
            .classes
            .iter()
            .map(|c| c.gaussians.weight.len())
            .max()
            .unwrap_or(0);
        let mut largest = 0.0f64;
        for i in (0..n).filter(|&i| !self.is_nominal(i)) {
            let (mut w, mut mean, mut m2) = (0.0f64, 0.0f64, 0.0f64);
            for c in &self.classes {
                let g = &c.gaussians;
                let (Some(&wc), Some(&mc), Some(&sc)) =
                    (g.weight.get(i), g.mean.get(i), g.m2.get(i))
                else {
                    continue;
                };
                if wc <= 0.0 {
                    continue;
                }
                let total = w + wc;
                let d = mc - mean;
                mean += d * wc / total;
                m2 += sc + d * d * w * wc / total;
                w = total;
            }
            if w > 1.0 {
                let v = m2 / (w - 1.0);
                if v.is_finite() {
                    largest = largest.max(v);
                }
            }
        }
        self.var_smoothing * largest
    }

    /// The per-class statistics, indexed by class.
    pub fn class_stats(&self) -> &[ClassStats] {
        &self.classes
    }

    /// Total weight learnt.
    pub fn total_weight(&self) -> f64 {
        self.total_weight
    }

    #[inline]
    fn is_nominal(&self, i: usize) -> bool {
        self.nominal.get(i).copied().unwrap_or(false)
    }

    /// Add `other`'s statistics to this model's, exactly as if this model had
    /// also learnt `other`'s samples (up to rounding). Nominal masks are
    /// taken from `self`; a feature nominal in one and numeric in the other
    /// merges only the statistics of `self`'s kind.
    pub fn merge(&mut self, other: &GaussianNB) {
        if self.classes.len() < other.classes.len() {
            self.classes
                .resize_with(other.classes.len(), ClassStats::default);
        }
        if self.n_values.len() < other.n_values.len() {
            self.n_values.resize(other.n_values.len(), 0);
        }
        for (i, &v) in other.n_values.iter().enumerate() {
            self.n_values[i] = self.n_values[i].max(v);
        }
        for (c, theirs) in other.classes.iter().enumerate() {
            if theirs.weight <= 0.0 {
                continue;
            }
            let ours = &mut self.classes[c];
            ours.weight += theirs.weight;
            let n = theirs.gaussians.weight.len();
            ours.gaussians.grow(n);
            for i in 0..n {
                let wb = theirs.gaussians.weight[i];
                if wb <= 0.0 {
                    continue;
                }
                let g = &mut ours.gaussians;
                let wa = g.weight[i];
                let w = wa + wb;
                let d = theirs.gaussians.mean[i] - g.mean[i];
                let mean = g.mean[i] + d * (wb / w);
                let m2 = (g.m2[i] + theirs.gaussians.m2[i] + d * d * (wa * wb / w)).max(0.0);
                if mean.is_finite() && m2.is_finite() && w.is_finite() {
                    g.weight[i] = w;
                    g.mean[i] = mean;
                    g.m2[i] = m2;
                }
            }
            if ours.counts.len() < theirs.counts.len() {
                ours.counts.resize_with(theirs.counts.len(), Vec::new);
            }
            for (i, tc) in theirs.counts.iter().enumerate() {
                let oc = &mut ours.counts[i];
                if oc.len() < tc.len() {
                    oc.resize(tc.len(), 0.0);
                }
                for (a, b) in oc.iter_mut().zip(tc) {
                    *a += b;
                }
            }
        }
        self.total_weight += other.total_weight;
    }

    /// Renumber classes: class `c` becomes `map[c]` (one-to-one), so that a
    /// peer's statistics line up with the local label order before
    /// [`GaussianNB::merge`].
    pub fn remap_classes(&mut self, map: &[usize]) -> Result<(), String> {
        if map.len() < self.classes.len() {
            return Err("nb: class map shorter than the model's classes".into());
        }
        let n = map
            .iter()
            .take(self.classes.len())
            .map(|&c| c + 1)
            .max()
            .unwrap_or(0);
        if n > MAX_CLASSES {
            return Err("nb: class map goes past the class limit".into());
        }
        let mut taken = vec![false; n];
        for &to in map.iter().take(self.classes.len()) {
            if std::mem::replace(&mut taken[to], true) {
                return Err("nb: class map is not one-to-one".into());
            }
        }
        let mut out: Vec<Option<ClassStats>> = vec![None; n];
        for (c, st) in std::mem::take(&mut self.classes).into_iter().enumerate() {
            out[map[c]] = Some(st);
        }
        self.classes = out.into_iter().map(Option::unwrap_or_default).collect();
        Ok(())
    }
}

/// The serialised form of [`GaussianNB`], checked before it becomes one.
#[derive(Deserialize)]
struct GaussianNbState {
    nominal: Vec<bool>,
    n_values: Vec<usize>,
    classes: Vec<ClassStats>,
    total_weight: f64,
    #[serde(default)]
    var_smoothing: f64,
}

impl TryFrom<GaussianNbState> for GaussianNB {
    type Error = String;

    fn try_from(s: GaussianNbState) -> Result<Self, String> {
        let ok = |v: f64| v.is_finite() && v >= 0.0;
        if !ok(s.total_weight) {
            return Err(format!("nb: total weight {} is invalid", s.total_weight));
        }
        if s.classes.len() > MAX_CLASSES {
            return Err(format!("nb: {} classes is too many", s.classes.len()));
        }
        for (c, st) in s.classes.iter().enumerate() {
            let g = &st.gaussians;
            let n = g.weight.len();
            let valid = ok(st.weight)
                && g.mean.len() == n
                && g.m2.len() == n
                && g.weight.iter().all(|&w| ok(w))
                && g.m2.iter().all(|&m| ok(m))
                && g.mean.iter().all(|m| m.is_finite())
                && st.counts.iter().flatten().all(|&v| ok(v));
            if !valid {
                return Err(format!("nb: statistics of class {c} are malformed"));
            }
        }
        if !(s.var_smoothing.is_finite() && (0.0..=1.0).contains(&s.var_smoothing)) {
            return Err(format!("nb: var_smoothing {} is invalid", s.var_smoothing));
        }
        Ok(GaussianNB {
            nominal: s.nominal,
            n_values: s.n_values,
            classes: s.classes,
            total_weight: s.total_weight,
            var_smoothing: s.var_smoothing,
        })
    }
}

impl Classifier for GaussianNB {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        if !(weight.is_finite() && weight > 0.0) || y >= MAX_CLASSES {
            return;
        }
        if !(self.total_weight + weight).is_finite() {
            return;
        }
        if y >= self.classes.len() {
            self.classes.resize_with(y + 1, ClassStats::default);
        }
        if self.n_values.len() < x.len() {
            self.n_values.resize(x.len(), 0);
        }
        self.total_weight += weight;
        let nominal = &self.nominal;
        let n_values = &mut self.n_values;
        let stats = &mut self.classes[y];
        stats.weight += weight;
        stats.gaussians.grow(x.len());
        for (i, &xi) in x.iter().enumerate() {
            if nominal.get(i).copied().unwrap_or(false) {
                let Some(v) = nominal_index(xi) else { continue };
                if stats.counts.len() <= i {
                    stats.counts.resize_with(i + 1, Vec::new);
                }
                let counts = &mut stats.counts[i];
                if counts.len() <= v {
                    counts.resize(v + 1, 0.0);
                }
                counts[v] += weight;
                stats.gaussians.weight[i] += weight;
                n_values[i] = n_values[i].max(v + 1);
                continue;
            }
            if !xi.is_finite() {
                continue;
            }
            let g = &mut stats.gaussians;
            let w = g.weight[i] + weight;
            let d = xi - g.mean[i];
            let mean = g.mean[i] + d * (weight / w);
            // Rounding can leave `xi - mean` a hair on the wrong side of 0.
            let m2 = (g.m2[i] + weight * d * (xi - mean)).max(0.0);
            // A value so large that its square overflows would poison the
            // statistics for good; skip it like a missing value.
            if mean.is_finite() && m2.is_finite() {
                g.weight[i] = w;
                g.mean[i] = mean;
                g.m2[i] = m2;
            }
        }
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.resize(self.classes.len(), 0.0);
        if self.total_weight <= 0.0 {
            return;
        }
        let ln_floor = PDF_FLOOR.ln();
        let eps = self.variance_epsilon();
        let mut max = f64::NEG_INFINITY;
        for (c, stats) in self.classes.iter().enumerate() {
            if stats.weight <= 0.0 {
                out[c] = f64::NEG_INFINITY;
                continue;
            }
            let mut jll = (stats.weight / self.total_weight).ln();
            let g = &stats.gaussians;
            for i in 0..x.len() {
                let xi = feature(x, i);
                if self.is_nominal(i) {
                    let Some(v) = nominal_index(xi) else { continue };
                    let known = self.n_values.get(i).copied().unwrap_or(0).max(v + 1);
                    let total = g.weight.get(i).copied().unwrap_or(0.0);
                    let count = stats
                        .counts
                        .get(i)
                        .and_then(|cs| cs.get(v))
                        .copied()
                        .unwrap_or(0.0);
                    jll += ((count + 1.0) / (total + known as f64)).ln();
                    continue;
                }
                if !xi.is_finite() {
                    continue;
                }
                if i >= g.weight.len() {
                    jll += ln_floor;
                    continue;
                }
                let var = if g.weight[i] > 1.0 {
                    g.variance(i) + eps
                } else {
                    0.0
                };
                let pdf = if var > 0.0 {
                    let d = xi - g.mean[i];
                    (-(d * d) / (2.0 * var)).exp() / (std::f64::consts::TAU * var).sqrt()
                } else {
                    0.0
                };
                jll += (PDF_FLOOR + pdf).ln();
            }
            out[c] = jll;
            if jll > max {
                max = jll;
            }
        }
        if !max.is_finite() {
            // Every class at -inf (or an overflow): fall back to the prior.
            for (o, s) in out.iter_mut().zip(&self.classes) {
                *o = s.weight;
            }
        } else {
            for o in out.iter_mut() {
                *o = (*o - max).exp();
            }
        }
        normalize(out);
    }

    fn n_classes(&self) -> usize {
        self.classes.len()
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + vec_bytes(&self.nominal)
            + vec_bytes(&self.n_values)
            + vec_bytes(&self.classes)
            + self.classes.iter().map(ClassStats::bytes).sum::<usize>()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::schema::Feature;

    fn numeric(n: usize) -> GaussianNB {
        GaussianNB::new(&Schema::numeric(n, &[]))
    }

    #[test]
    fn matches_river_doc_example() {
        // River's GaussianNB docstring: 6 points, predicts class 1 for (-0.8, -1).
        let mut m = numeric(2);
        let xs = [
            [-1., -1.],
            [-2., -1.],
            [-3., -2.],
            [1., 1.],
            [2., 1.],
            [3., 2.],
        ];
        let ys = [0, 0, 0, 1, 1, 1];
        for (x, &y) in xs.iter().zip(&ys) {
            m.learn_one(x, y, 1.0);
        }
        assert_eq!(m.predict_one(&[-0.8, -1.0]), Some(0));
        let p = m.predict_proba_one(&[-0.8, -1.0]);
        // Hand-computed from River's formula: class 0 has means (-2, -4/3),
        // variances (1, 1/3); class 1 means (2, 4/3).
        let lp = |x: f64, mu: f64, var: f64| {
            let pdf =
                (-(x - mu) * (x - mu) / (2.0 * var)).exp() / (std::f64::consts::TAU * var).sqrt();
            (1e-9 + pdf).ln()
        };
        let j0 = 0.5f64.ln() + lp(-0.8, -2.0, 1.0) + lp(-1.0, -4.0 / 3.0, 1.0 / 3.0);
        let j1 = 0.5f64.ln() + lp(-0.8, 2.0, 1.0) + lp(-1.0, 4.0 / 3.0, 1.0 / 3.0);
        let want0 = 1.0 / (1.0 + (j1 - j0).exp());
        assert!((p[0] - want0).abs() < 1e-12, "{} vs {want0}", p[0]);
    }

    #[test]
    fn missing_and_infinite_values_are_ignored() {
        let mut m = numeric(2);
        m.learn_one(&[1.0, f64::NAN], 0, 1.0);
        m.learn_one(&[2.0, f64::INFINITY], 0, 1.0);
        m.learn_one(&[1e300, 0.0], 1, 1.0);
        m.learn_one(&[-1e300, 0.0], 1, 1.0); // its square would overflow: skipped
        let g = &m.class_stats()[0].gaussians;
        assert_eq!(g.weight, vec![2.0, 0.0]);
        assert_eq!(g.mean[0], 1.5);
        for x in [[f64::NAN, f64::NAN], [f64::INFINITY, 1e308], [1.0, -1e308]] {
            let p = m.predict_proba_one(&x);
            assert_eq!(p.len(), 2);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{p:?}");
        }
    }

    #[test]
    fn nominal_features_use_smoothed_counts() {
        let schema = Schema {
            features: vec![Feature::nominal(
                "colour",
                vec!["red".into(), "green".into(), "blue".into()],
            )],
            classes: vec![],
            target: "y".into(),
        };
        let mut m = GaussianNB::new(&schema);
        for _ in 0..8 {
            m.learn_one(&[0.0], 0, 1.0);
            m.learn_one(&[1.0], 1, 1.0);
        }
        m.learn_one(&[1.0], 0, 1.0);
        let p = m.predict_proba_one(&[0.0]);
        // class 0: prior 9/17, P(red|0) = (8+1)/(9+3); class 1: 8/17, (0+1)/(8+3)
        let a = 9.0 / 17.0 * 9.0 / 12.0;
        let b = 8.0 / 17.0 * 1.0 / 11.0;
        assert!((p[0] - a / (a + b)).abs() < 1e-12);
        // A value never seen, or not a valid index, does not panic.
        assert_eq!(m.predict_proba_one(&[7.0]).len(), 2);
        assert_eq!(m.predict_proba_one(&[-3.5]).len(), 2);
        m.learn_one(&[1e12], 1, 1.0);
        assert!(m.memory_bytes() < 10_000);
    }

    #[test]
    fn classes_and_features_grow() {
        let mut m = numeric(1);
        m.learn_one(&[0.0], 3, 1.0);
        assert_eq!(m.n_classes(), 4);
        let p = m.predict_proba_one(&[0.0]);
        assert_eq!(p, vec![0.0, 0.0, 0.0, 1.0]);
        m.learn_one(&[0.0, 5.0, 6.0], 1, 1.0);
        m.learn_one(&[0.0, 5.5, 6.5], 1, 1.0);
        assert_eq!(m.predict_one(&[0.0, 5.2, 6.2]), Some(1));
        m.learn_one(&[1.0], usize::MAX, 1.0); // hostile label: ignored
        assert_eq!(m.n_classes(), 4);
    }

    #[test]
    fn malformed_snapshots_are_refused() {
        let mut m = numeric(2);
        m.learn_one(&[1.0, 2.0], 0, 1.0);
        m.learn_one(&[2.0, 3.0], 0, 1.0);
        let good = serde_json::to_string(&m).unwrap();
        assert_eq!(serde_json::from_str::<GaussianNB>(&good).unwrap(), m);
        let short = good.replacen("\"mean\":[1.5,2.5]", "\"mean\":[1.5]", 1);
        assert_ne!(short, good);
        assert!(serde_json::from_str::<GaussianNB>(&short).is_err());
        let negative = good.replacen("\"total_weight\":2.0", "\"total_weight\":-2.0", 1);
        assert!(serde_json::from_str::<GaussianNB>(&negative).is_err());
    }

    #[test]
    fn var_smoothing_lets_a_constant_binary_column_separate_classes() {
        // Column 0 is noise shared by both classes; column 1 is 0 for class
        // 0 and 1 for class 1, constant within each class. River's rule gives
        // a constant column no density (the floor), so only the prior
        // speaks: the majority class 0 wins everywhere.
        let train = |m: &mut GaussianNB| {
            for t in 0..300 {
                let noise = (t % 17) as f64;
                let y = usize::from(t % 3 == 0);
                m.learn_one(&[noise, y as f64], y, 1.0);
            }
        };
        let mut river = numeric(2);
        train(&mut river);
        assert_eq!(river.predict_one(&[5.0, 1.0]), Some(0));
        let mut smooth = numeric(2).with_var_smoothing(1e-9);
        train(&mut smooth);
        assert_eq!(smooth.predict_one(&[5.0, 1.0]), Some(1));
        assert_eq!(smooth.predict_one(&[5.0, 0.0]), Some(0));
        // The option travels with the model.
        let bytes = postcard::to_allocvec(&smooth).unwrap();
        let back: GaussianNB = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(
            back.predict_proba_one(&[5.0, 1.0]),
            smooth.predict_proba_one(&[5.0, 1.0])
        );
    }

    #[test]
    fn merge_equals_learning_everything() {
        let mut rng = Rng::new(5);
        let (mut a, mut b, mut all) = (numeric(3), numeric(3), numeric(3));
        for t in 0..400 {
            let y = rng.below(3);
            let x = [
                rng.gaussian(y as f64, 1.0),
                rng.gaussian(-(y as f64), 2.0),
                rng.next_f64(),
            ];
            let w = 0.5 + rng.next_f64();
            all.learn_one(&x, y, w);
            if t % 3 == 0 { &mut a } else { &mut b }.learn_one(&x, y, w);
        }
        a.merge(&b);
        for (sa, sall) in a.class_stats().iter().zip(all.class_stats()) {
            assert!((sa.weight - sall.weight).abs() < 1e-9);
            for i in 0..3 {
                assert!((sa.gaussians.mean[i] - sall.gaussians.mean[i]).abs() < 1e-9);
                assert!((sa.gaussians.variance(i) - sall.gaussians.variance(i)).abs() < 1e-9);
            }
        }
        let probe = [0.5, -0.5, 0.5];
        let (pa, pall) = (a.predict_proba_one(&probe), all.predict_proba_one(&probe));
        for (u, v) in pa.iter().zip(&pall) {
            assert!((u - v).abs() < 1e-9);
        }
    }
}
