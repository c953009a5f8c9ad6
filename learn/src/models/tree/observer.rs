//! Attribute observers: the per-leaf statistics of one feature that let a
//! leaf propose splits on it and score it for naive Bayes.
//!
//! Numeric features use River's `GaussianSplitter`: per class a weighted
//! running mean and variance (Welford) plus the minimum and maximum, with
//! candidate thresholds evenly spaced between the overall minimum and
//! maximum and the class weights on each side estimated from the normal
//! CDF. Nominal features keep per-category class weights
//! (`NominalSplitterClassif`). Both are dense vectors indexed by class (and
//! category): no maps and no allocation when updating.

use serde::{Deserialize, Serialize};

use super::split::{nominal_index, SplitCriterion, SplitTest, Suggestion};
use crate::classifier::vec_bytes;

/// Weighted running statistics of one feature for one class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GaussStat {
    /// Total weight seen (0 = this class never seen).
    pub n: f64,
    mean: f64,
    /// Sum of weighted squared deviations.
    m2: f64,
    min: f64,
    max: f64,
}

/// `0.5 * ln(2π)`, the same double as River's `_HALF_LOG_TAU`.
const HALF_LN_TAU: f64 = 0.918_938_533_204_672_7;

impl GaussStat {
    #[inline]
    fn update(&mut self, x: f64, w: f64) {
        if self.n <= 0.0 {
            self.min = x;
            self.max = x;
        } else {
            if x < self.min {
                self.min = x;
            }
            if x > self.max {
                self.max = x;
            }
        }
        self.n += w;
        let old = self.mean;
        self.mean += (w / self.n) * (x - old);
        self.m2 += w * (x - old) * (x - self.mean);
    }

    /// Sample variance (`ddof = 1`), 0 with one observation or less.
    #[inline]
    fn variance(&self) -> f64 {
        if self.n > 1.0 {
            (self.m2 / (self.n - 1.0)).max(0.0)
        } else {
            0.0
        }
    }

    /// Normal log-density at `x`; `-inf` when the variance is zero.
    #[inline]
    pub fn log_pdf(&self, x: f64) -> f64 {
        let v = self.variance();
        if v > 0.0 {
            let d = x - self.mean;
            d * d / (-2.0 * v) - HALF_LN_TAU - 0.5 * v.ln()
        } else {
            f64::NEG_INFINITY
        }
    }

    /// Normal CDF at `x`; 0 when the standard deviation is zero (as River).
    /// Evaluated in River's order of operations (`sigma = var^0.5`,
    /// `z = (x - mu) / sigma`, `erf(z / sqrt 2)`) so that split thresholds
    /// and branch weights agree with River to the last bit.
    fn cdf(&self, x: f64) -> f64 {
        let sd = self.variance().powf(0.5);
        if sd > 0.0 {
            let z = (x - self.mean) / sd;
            0.5 * (1.0 + erf(z / std::f64::consts::SQRT_2))
        } else {
            0.0
        }
    }
}

/// The error function. Where the platform C library is linked (every
/// target with an OS) this is its `erf`, the same function CPython's
/// `math.erf` calls: a last-bit difference in a branch weight can move a
/// later split attempt by one sample and make a tree drift away from
/// River's, so bit-equality matters more than elegance here.
#[cfg(not(target_family = "wasm"))]
pub fn erf(x: f64) -> f64 {
    extern "C" {
        #[link_name = "erf"]
        fn c_erf(x: f64) -> f64;
    }
    // SAFETY: `erf` from the C math library is a pure function of one
    // double, defined for every input (NaN in, NaN out), with no state.
    unsafe { c_erf(x) }
}

/// The error function without a C library: same value as the C `erf` to
/// within a few units in the last place.
#[cfg(target_family = "wasm")]
pub fn erf(x: f64) -> f64 {
    erf_series(x)
}

/// The error function to near double precision (a few ulps): a
/// positive-term series below 3, the Laplace continued fraction for `erfc`
/// above.
pub fn erf_series(x: f64) -> f64 {
    if x.is_nan() {
        return f64::NAN;
    }
    let a = x.abs();
    let r = if a < 3.0 {
        // erf(a) = 2/√π · e^{-a²} · Σ (2a²)^n a / (1·3·…·(2n+1))
        let a2 = a * a;
        let mut term = a;
        let mut sum = a;
        let mut k = 1.0;
        while term > sum * 1e-17 {
            term *= 2.0 * a2 / (2.0 * k + 1.0);
            sum += term;
            k += 1.0;
        }
        2.0 / std::f64::consts::PI.sqrt() * (-a2).exp() * sum
    } else if a > 27.0 {
        1.0
    } else {
        // erfc(a) = e^{-a²}/√π · 1/(a + (1/2)/(a + 1/(a + (3/2)/(a + …))))
        let mut f = a;
        for k in (1..60).rev() {
            f = a + (k as f64 / 2.0) / f;
        }
        1.0 - (-a * a).exp() / (std::f64::consts::PI.sqrt() * f)
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// Gaussian observer of a numeric feature.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct GaussianObserver {
    per_class: Vec<GaussStat>,
    /// Classes in the order this observer first saw them.
    order: Vec<u32>,
}

impl GaussianObserver {
    #[inline]
    fn update(&mut self, x: f64, y: usize, w: f64) {
        if y >= self.per_class.len() {
            self.per_class.resize(y + 1, GaussStat::default());
        }
        // Values so large that the running moments would overflow (1e300
        // squared) are skipped like missing ones: the state stays finite, so
        // a snapshot survives formats without infinities (JSON).
        let mut g = self.per_class[y];
        g.update(x, w);
        if !(g.n.is_finite() && g.mean.is_finite() && g.m2.is_finite()) {
            return;
        }
        if self.per_class[y].n <= 0.0 && !self.order.contains(&(y as u32)) {
            self.order.push(y as u32);
        }
        self.per_class[y] = g;
    }

    /// Log-likelihood of `x` under class `c`, `-inf` when unknown.
    #[inline]
    pub fn log_proba(&self, x: f64, c: usize) -> f64 {
        match self.per_class.get(c) {
            Some(g) if g.n > 0.0 => g.log_pdf(x),
            _ => f64::NEG_INFINITY,
        }
    }

    fn range(&self) -> Option<(f64, f64)> {
        let mut lo = f64::INFINITY;
        let mut hi = f64::NEG_INFINITY;
        for g in &self.per_class {
            if g.n > 0.0 {
                lo = lo.min(g.min);
                hi = hi.max(g.max);
            }
        }
        (lo < f64::INFINITY).then_some((lo, hi))
    }

    /// Class weights left (`<= t`) and right of threshold `t` into `out`
    /// (`2 * nc` long).
    fn split_dists(&self, t: f64, nc: usize, out: &mut [f64]) {
        out.iter_mut().for_each(|v| *v = 0.0);
        for (k, g) in self.per_class.iter().enumerate().take(nc) {
            if g.n <= 0.0 {
                continue;
            }
            if t < g.min {
                out[nc + k] = g.n;
            } else if t >= g.max {
                out[k] = g.n;
            } else {
                let l = g.cdf(t) * g.n;
                out[k] = l;
                out[nc + k] = g.n - l;
            }
        }
    }

    fn best_split(
        &self,
        feature: usize,
        pre: &[f64],
        criterion: SplitCriterion,
        min_branch_fraction: f64,
        n_splits: usize,
    ) -> Suggestion {
        let mut best = Suggestion::null();
        let Some((lo, hi)) = self.range() else {
            return best;
        };
        let nc = pre.len().max(self.per_class.len());
        let mut pre_buf;
        let pre = if pre.len() < nc {
            pre_buf = pre.to_vec();
            pre_buf.resize(nc, 0.0);
            &pre_buf[..]
        } else {
            pre
        };
        let mut post = vec![0.0; 2 * nc];
        let bin = (hi - lo) / (n_splits as f64 + 1.0);
        let mut best_t = None;
        for i in 0..n_splits {
            let t = lo + bin * (i as f64 + 1.0);
            if !(lo < t && t < hi) {
                continue;
            }
            self.split_dists(t, nc, &mut post);
            let m = criterion.merit(pre, &post, nc, min_branch_fraction);
            if m > best.merit {
                best.merit = m;
                best_t = Some(t);
            }
        }
        if let Some(t) = best_t {
            self.split_dists(t, nc, &mut post);
            best.test = Some(SplitTest::NumericBinary {
                feature,
                threshold: t,
            });
            best.children = vec![post[..nc].to_vec(), post[nc..].to_vec()];
            let present = |c: u32| self.per_class.get(c as usize).filter(|g| g.n > 0.0);
            let left = self.order.iter().copied();
            best.children_keys = vec![
                left.filter(|&c| present(c).is_some_and(|g| t >= g.min))
                    .collect(),
                self.order
                    .iter()
                    .copied()
                    .filter(|&c| present(c).is_some_and(|g| t < g.max))
                    .collect(),
            ];
        }
        best
    }

    fn heap_bytes(&self) -> usize {
        vec_bytes(&self.per_class) + vec_bytes(&self.order)
    }
}

/// Observer of a nominal feature: class weights per category.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NominalObserver {
    /// `counts[v][c]`: weight of class `c` with category `v`; an empty
    /// vector is a category never seen.
    counts: Vec<Vec<f64>>,
    /// Weight per class over all categories.
    class_totals: Vec<f64>,
    /// Classes in the order this observer first saw them.
    order: Vec<u32>,
}

impl NominalObserver {
    #[inline]
    fn update(&mut self, v: usize, y: usize, w: f64) {
        if v >= self.counts.len() {
            self.counts.resize_with(v + 1, Vec::new);
        }
        let row = &mut self.counts[v];
        if y >= row.len() {
            row.resize(y + 1, 0.0);
        }
        row[y] += w;
        if y >= self.class_totals.len() {
            self.class_totals.resize(y + 1, 0.0);
        }
        if self.class_totals[y] <= 0.0 && !self.order.contains(&(y as u32)) {
            self.order.push(y as u32);
        }
        self.class_totals[y] += w;
    }

    /// `P(x = v | c)` by counting (no smoothing, as River), 0 if unknown.
    #[inline]
    pub fn proba(&self, v: usize, c: usize) -> f64 {
        let total = self.class_totals.get(c).copied().unwrap_or(0.0);
        let n = self
            .counts
            .get(v)
            .and_then(|r| r.get(c))
            .copied()
            .unwrap_or(0.0);
        if total > 0.0 {
            n / total
        } else {
            0.0
        }
    }

    fn best_split(
        &self,
        feature: usize,
        pre: &[f64],
        criterion: SplitCriterion,
        min_branch_fraction: f64,
        binary_only: bool,
    ) -> Suggestion {
        let nc = pre.len().max(self.class_totals.len());
        let mut pre_v = pre.to_vec();
        pre_v.resize(nc, 0.0);
        let seen: Vec<usize> = (0..self.counts.len())
            .filter(|&v| !self.counts[v].is_empty())
            .collect();
        let dense = |row: &Vec<f64>| {
            let mut d = row.clone();
            d.resize(nc, 0.0);
            d
        };
        let mut best = Suggestion::null();
        if !binary_only {
            let children: Vec<Vec<f64>> = seen.iter().map(|&v| dense(&self.counts[v])).collect();
            let flat: Vec<f64> = children.iter().flatten().copied().collect();
            let mut slots = Vec::new();
            for (i, &v) in seen.iter().enumerate() {
                if slots.len() <= v {
                    slots.resize(v + 1, u32::MAX);
                }
                slots[v] = i as u32;
            }
            // River sorts each branch's classes.
            let children_keys = children
                .iter()
                .map(|d| (0..nc as u32).filter(|&c| d[c as usize] > 0.0).collect())
                .collect();
            best = Suggestion {
                merit: criterion.merit(&pre_v, &flat, nc, min_branch_fraction),
                test: Some(SplitTest::NominalMultiway { feature, slots }),
                children,
                children_keys,
            };
        }
        let mut post = vec![0.0; 2 * nc];
        for &v in &seen {
            let eq = dense(&self.counts[v]);
            for c in 0..nc {
                post[c] = eq[c];
                post[nc + c] = self.class_totals.get(c).copied().unwrap_or(0.0) - eq[c];
            }
            let m = criterion.merit(&pre_v, &post, nc, min_branch_fraction);
            if m > best.merit {
                let other = |c: u32| {
                    self.counts
                        .iter()
                        .enumerate()
                        .any(|(u, r)| u != v && r.get(c as usize).is_some_and(|&n| n > 0.0))
                };
                best = Suggestion {
                    merit: m,
                    test: Some(SplitTest::NominalBinary { feature, value: v }),
                    children: vec![post[..nc].to_vec(), post[nc..].to_vec()],
                    children_keys: vec![
                        self.order
                            .iter()
                            .copied()
                            .filter(|&c| eq.get(c as usize).is_some_and(|&n| n > 0.0))
                            .collect(),
                        self.order.iter().copied().filter(|&c| other(c)).collect(),
                    ],
                };
            }
        }
        best
    }

    fn heap_bytes(&self) -> usize {
        vec_bytes(&self.counts)
            + self.counts.iter().map(vec_bytes).sum::<usize>()
            + vec_bytes(&self.class_totals)
            + vec_bytes(&self.order)
    }
}

/// The observer of one feature at one leaf.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum Observer {
    /// Not created yet (the feature was never seen at this leaf) or
    /// disabled as a poor attribute.
    #[default]
    Absent,
    Gaussian(GaussianObserver),
    Nominal(NominalObserver),
}

impl Observer {
    /// Update with value `v` of a feature that is `nominal` or not. Missing
    /// values (NaN, infinities, invalid category codes) are skipped.
    #[inline]
    pub fn update(&mut self, v: f64, nominal: bool, y: usize, w: f64) {
        if nominal {
            let Some(i) = nominal_index(v) else { return };
            match self {
                Observer::Nominal(o) => o.update(i, y, w),
                Observer::Absent => {
                    let mut o = NominalObserver::default();
                    o.update(i, y, w);
                    *self = Observer::Nominal(o);
                }
                // The schema changed kind under us: keep the old observer.
                Observer::Gaussian(_) => {}
            }
        } else {
            if !v.is_finite() {
                return;
            }
            match self {
                Observer::Gaussian(o) => o.update(v, y, w),
                Observer::Absent => {
                    let mut o = GaussianObserver::default();
                    o.update(v, y, w);
                    *self = Observer::Gaussian(o);
                }
                Observer::Nominal(_) => {}
            }
        }
    }

    /// Log-likelihood contribution of value `v` for class `c`, or `None`
    /// when it carries no information (missing value, zero variance, an
    /// unseen category) — River skips such terms.
    #[inline]
    pub fn log_likelihood(&self, v: f64, c: usize) -> Option<f64> {
        match self {
            Observer::Absent => None,
            Observer::Gaussian(o) => {
                if v.is_nan() {
                    return None;
                }
                let lp = o.log_proba(v, c);
                (lp > f64::NEG_INFINITY).then_some(lp)
            }
            Observer::Nominal(o) => {
                let p = o.proba(nominal_index(v)?, c);
                (p > 0.0).then(|| p.ln())
            }
        }
    }

    /// Best split this observer proposes, River's
    /// `best_evaluated_split_suggestion`.
    pub fn best_split(
        &self,
        feature: usize,
        pre: &[f64],
        criterion: SplitCriterion,
        min_branch_fraction: f64,
        n_splits: usize,
        binary_only: bool,
    ) -> Option<Suggestion> {
        match self {
            Observer::Absent => None,
            Observer::Gaussian(o) => {
                Some(o.best_split(feature, pre, criterion, min_branch_fraction, n_splits))
            }
            Observer::Nominal(o) => {
                Some(o.best_split(feature, pre, criterion, min_branch_fraction, binary_only))
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            Observer::Absent => 0,
            Observer::Gaussian(o) => o.heap_bytes(),
            Observer::Nominal(o) => o.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erf_matches_known_values() {
        let cases = [
            (0.0, 0.0),
            (0.5, 0.520_499_877_813_046_5),
            (1.0, 0.842_700_792_949_714_9),
            (2.0, 0.995_322_265_018_952_7),
            (3.5, 0.999_999_256_901_627_7),
            (-1.0, -0.842_700_792_949_714_9),
        ];
        for (x, want) in cases {
            assert!((erf(x) - want).abs() < 1e-15, "erf({x}) = {}", erf(x));
            let s = erf_series(x);
            assert!((s - want).abs() < 1e-14, "erf_series({x}) = {s}");
        }
        assert_eq!(erf(40.0), 1.0);
        assert_eq!(erf_series(40.0), 1.0);
        assert!(erf(f64::NAN).is_nan());
        let mut worst: f64 = 0.0;
        for i in 0..2000 {
            let x = -7.0 + 14.0 * f64::from(i) / 2000.0;
            worst = worst.max((erf(x) - erf_series(x)).abs());
        }
        assert!(worst < 1e-14, "{worst}");
    }

    #[test]
    fn gaussian_observer_finds_the_separating_threshold() {
        let mut o = Observer::Absent;
        for i in 0..100 {
            let v = i as f64 / 100.0;
            o.update(v, false, usize::from(v > 0.5), 1.0);
        }
        o.update(f64::NAN, false, 0, 1.0); // skipped
        let pre = [51.0, 49.0];
        let s = o
            .best_split(3, &pre, SplitCriterion::InfoGain, 0.01, 10, false)
            .expect("observer exists");
        match s.test {
            Some(SplitTest::NumericBinary { feature, threshold }) => {
                assert_eq!(feature, 3);
                assert!((threshold - 0.54).abs() < 0.1, "threshold {threshold}");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(s.merit > 0.5);
        assert_eq!(s.children.len(), 2);
    }
}
