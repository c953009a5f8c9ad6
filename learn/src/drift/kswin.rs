//! KSWIN, Kolmogorov-Smirnov windowing (Raab, Heusinger & Schleif 2020,
//! "Reactive soft prototype computing for concept drift streams"), as
//! River's `drift.KSWIN`.
//!
//! It keeps the last `window_size` values. Once the window is full, every
//! update compares the newest `stat_size` values `R` with `stat_size` values
//! drawn without replacement from the older part `W`, by a two-sample
//! Kolmogorov-Smirnov test; a drift is a p-value at most `alpha` with a
//! statistic above 0.1. The p-value is exact — both samples have the same
//! size `n`, so `P(D ≥ h/n)` has the closed form
//! `2 Σ_{j≥1} (−1)^{j+1} C(2n, n − jh) / C(2n, n)` (Gnedenko & Korolyuk
//! 1951), which is what SciPy's `ks_2samp(method="exact")` computes for
//! equal sizes.
//!
//! After a drift the window keeps only `R`, the newest values (the paper's
//! rule; River's code sets this too, then clears the window on the next
//! update). The random draws come from a seeded generator kept in the state,
//! so a restored detector continues identically. `NaN` and infinities are
//! ignored (the update returns `Stable` and changes nothing).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::{DriftDetector, DriftState};
use crate::rng::Rng;

/// KSWIN. Defaults are River's: `alpha` 0.005, `window_size` 100,
/// `stat_size` 30; the seed defaults to 0 (River's default is unseeded).
/// Snapshots are checked when deserialised (sizes consistent, values
/// finite).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "KswinState")]
pub struct Kswin {
    alpha: f64,
    window_size: usize,
    stat_size: usize,
    seed: u64,
    rng: Rng,
    window: VecDeque<f64>,
    p_value: f64,
    drift: bool,
    /// Scratch for the draw and the two sorted samples.
    #[serde(skip)]
    idx: Vec<usize>,
    #[serde(skip)]
    a: Vec<f64>,
    #[serde(skip)]
    b: Vec<f64>,
}

impl Default for Kswin {
    fn default() -> Self {
        Kswin::new(0.005, 100, 30, 0)
    }
}

impl Kswin {
    /// A detector. `stat_size` is kept between 1 and `window_size / 2`
    /// (the older part must hold enough values to draw from).
    pub fn new(alpha: f64, window_size: usize, stat_size: usize, seed: u64) -> Self {
        let window_size = window_size.max(2);
        let stat_size = stat_size.clamp(1, window_size / 2);
        Kswin {
            alpha,
            window_size,
            stat_size,
            seed,
            rng: Rng::new(seed),
            window: VecDeque::with_capacity(window_size),
            p_value: 1.0,
            drift: false,
            idx: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
        }
    }

    /// p-value of the last test (1 before the window first filled).
    pub fn p_value(&self) -> f64 {
        self.p_value
    }

    /// Heap bytes held.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.window.capacity() * std::mem::size_of::<f64>()
            + self.idx.capacity() * std::mem::size_of::<usize>()
            + (self.a.capacity() + self.b.capacity()) * std::mem::size_of::<f64>()
    }
}

/// The serialised form of [`Kswin`], checked before it becomes one.
#[derive(Deserialize)]
struct KswinState {
    alpha: f64,
    window_size: usize,
    stat_size: usize,
    seed: u64,
    rng: Rng,
    window: VecDeque<f64>,
    p_value: f64,
    drift: bool,
}

impl TryFrom<KswinState> for Kswin {
    type Error = String;

    fn try_from(s: KswinState) -> Result<Self, String> {
        let ok = s.window_size >= 2
            && (1..=s.window_size / 2).contains(&s.stat_size)
            && s.window.len() <= s.window_size
            && s.window.iter().all(|v| v.is_finite())
            && s.alpha.is_finite()
            && s.p_value.is_finite();
        if !ok {
            return Err("kswin: snapshot is malformed".into());
        }
        Ok(Kswin {
            alpha: s.alpha,
            window_size: s.window_size,
            stat_size: s.stat_size,
            seed: s.seed,
            rng: s.rng,
            window: s.window,
            p_value: s.p_value,
            drift: s.drift,
            idx: Vec::new(),
            a: Vec::new(),
            b: Vec::new(),
        })
    }
}

/// Two-sided KS statistic of two sorted samples of equal size `n`, as the
/// integer `h = n · D`.
fn ks_h(a: &[f64], b: &[f64]) -> usize {
    let n = a.len();
    let (mut i, mut j, mut h) = (0, 0, 0);
    while i < n && j < n {
        let v = a[i].min(b[j]);
        while i < n && a[i] == v {
            i += 1;
        }
        while j < n && b[j] == v {
            j += 1;
        }
        h = h.max(i.abs_diff(j));
    }
    h
}

/// Exact `P(D ≥ h/n)` for two samples of size `n` under the null.
fn ks_p_value(n: usize, h: usize) -> f64 {
    if h == 0 || n == 0 {
        return 1.0;
    }
    // ratio_t = C(2n, n - t) / C(2n, n), built up term by term.
    let (mut ratio, mut sum, mut sign) = (1.0, 0.0, 1.0);
    let mut t = 0;
    for j in 1..=n / h {
        while t < j * h {
            ratio *= (n - t) as f64 / (n + t + 1) as f64;
            t += 1;
        }
        sum += sign * ratio;
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

impl DriftDetector for Kswin {
    fn update(&mut self, x: f64) -> DriftState {
        if !x.is_finite() {
            return DriftState::Stable;
        }
        if self.drift {
            // Keep only the newest `stat_size` values (see module docs).
            let excess = self.window.len().saturating_sub(self.stat_size);
            self.window.drain(..excess);
            self.drift = false;
        }
        if self.window.len() == self.window_size {
            self.window.pop_front();
        }
        self.window.push_back(x);
        if self.window.len() < self.window_size {
            return DriftState::Stable;
        }
        let (r, older) = (self.stat_size, self.window_size - self.stat_size);
        // Partial Fisher-Yates: `r` distinct indices among the older part.
        self.idx.clear();
        self.idx.extend(0..older);
        for i in 0..r {
            let j = i + self.rng.below(older - i);
            self.idx.swap(i, j);
        }
        self.a.clear();
        self.a.extend(self.idx[..r].iter().map(|&i| self.window[i]));
        self.b.clear();
        self.b.extend(self.window.range(older..).copied());
        self.a.sort_by(f64::total_cmp);
        self.b.sort_by(f64::total_cmp);
        let h = ks_h(&self.a, &self.b);
        self.p_value = ks_p_value(r, h);
        let statistic = h as f64 / r as f64;
        self.drift = self.p_value <= self.alpha && statistic > 0.1;
        if self.drift {
            DriftState::Drift
        } else {
            DriftState::Stable
        }
    }

    fn reset(&mut self) {
        *self = Kswin::new(self.alpha, self.window_size, self.stat_size, self.seed);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SEED: u64 = 1;

    fn drifts(d: &mut Kswin, rng: &mut Rng, n: usize, lo: f64) -> Vec<usize> {
        (0..n)
            .filter(|_| d.update(rng.uniform(lo, lo + 1.0)) == DriftState::Drift)
            .collect()
    }

    #[test]
    fn exact_p_values_match_scipy() {
        // scipy.stats.ks_2samp(a, a + h, method="exact") with a = 0..30.
        assert!((ks_p_value(30, 15) - 0.000_899_577_684_017_68).abs() < 1e-15);
        assert!((ks_p_value(30, 10) - 0.070_887_987_871_144_39).abs() < 1e-14);
        assert_eq!(ks_p_value(30, 0), 1.0);
        // h = n: both samples fully separated, 2 / C(2n, n).
        assert!((ks_p_value(3, 3) - 0.1).abs() < 1e-12);
        assert_eq!(ks_h(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0]), 0);
        assert_eq!(ks_h(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]), 3);
    }

    #[test]
    fn quiet_on_a_stationary_stream_then_detects_a_jump() {
        // The test runs at every value, so a stationary stream still alarms
        // now and then: at the default alpha 0.005 about 1.3 alarms per 1000
        // values, at 0.0001 (River's docstring example) about 0.06
        // (measured over 50 seeds). This seed is quiet at 0.0001.
        let mut rng = Rng::new(SEED);
        let mut d = Kswin::new(0.0001, 100, 30, SEED);
        assert!(drifts(&mut d, &mut rng, 1000, 0.0).is_empty());
        let after = drifts(&mut d, &mut rng, 100, 0.7);
        assert!(!after.is_empty() && after[0] < 30, "{after:?}");
        // Defaults catch the jump too.
        let mut d = Kswin::default();
        drifts(&mut d, &mut rng, 100, 0.0);
        d.reset();
        drifts(&mut d, &mut rng, 99, 0.0);
        let after = drifts(&mut d, &mut rng, 100, 0.7);
        assert!(!after.is_empty() && after[0] < 30, "{after:?}");
    }

    #[test]
    fn restored_detector_continues_identically() {
        let mut rng = Rng::new(4);
        let mut d = Kswin::default();
        drifts(&mut d, &mut rng, 150, 0.0);
        let json = serde_json::to_string(&d).unwrap();
        let mut back: Kswin = serde_json::from_str(&json).unwrap();
        for t in 0..200 {
            let v = rng.uniform(0.0, 1.0) + if t > 100 { 0.6 } else { 0.0 };
            assert_eq!(d.update(v), back.update(v));
            assert_eq!(d.p_value(), back.p_value());
        }
        assert_eq!(d.update(f64::NAN), DriftState::Stable);
    }
}
