//! ADWIN, adaptive windowing (Bifet & Gavaldà 2007, "Learning from
//! time-changing data with adaptive windowing", the ADWIN2 variant).
//!
//! The window is summarised by an exponential histogram: row `i` holds up
//! to `max_buckets` buckets of `2^i` values each (sum and variance), so a
//! window of `W` values costs `O(max_buckets · log W)` memory. Every `clock`
//! values the detector tries every cut between buckets into an older part
//! `W0` and a newer part `W1`; when their means differ by more than
//!
//! ```text
//! ε = sqrt(2 · m · σ² · δ') + 2/3 · δ' · m,   δ' = ln(2 ln(W) / δ),
//! m = 1/(n0 − L + 1) + 1/(n1 − L + 1)          (L = min_window_length)
//! ```
//!
//! (σ² the variance of the whole window) the oldest bucket is dropped and
//! the scan restarts, until no cut is significant.
//!
//! Behaviour follows River's `drift.ADWIN` (0.21+), including two of its
//! choices: only cuts with at least `min_window_length` values on both sides
//! are tested, and the update *after* a detected drift starts from an empty
//! window (River's `DriftDetector` resets itself then).

use serde::{Deserialize, Serialize};

use super::{DriftDetector, DriftState};
use crate::classifier::vec_bytes;

/// One bucket: the sum of its values and their variance sum (`Σ(x-μ)²`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Bucket {
    total: f64,
    variance: f64,
}

/// ADWIN drift detector. Defaults are River's: `delta` 0.002, `clock` 32,
/// `max_buckets` 5, `min_window_length` 5, `grace_period` 10.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "AdwinSnapshot")]
pub struct Adwin {
    /// Confidence: smaller means fewer false alarms and slower detection.
    delta: f64,
    /// Check for change every `clock` values.
    clock: u32,
    /// Buckets of one size kept before the two oldest merge.
    max_buckets: usize,
    /// Smallest size of either side of a tested cut.
    min_window_length: f64,
    /// No check until the window holds more than this many values.
    grace_period: f64,
    total: f64,
    /// Sum of squared deviations over the whole window.
    variance: f64,
    width: f64,
    tick: u64,
    n_detections: u64,
    drift_detected: bool,
    /// `rows[i]` holds buckets of `2^i` values, oldest first.
    rows: Vec<Vec<Bucket>>,
}

/// The serialized form of [`Adwin`], checked before use so that a corrupt
/// snapshot is an error instead of a later panic.
#[derive(Deserialize)]
struct AdwinSnapshot {
    delta: f64,
    clock: u32,
    max_buckets: usize,
    min_window_length: f64,
    grace_period: f64,
    total: f64,
    variance: f64,
    width: f64,
    tick: u64,
    n_detections: u64,
    drift_detected: bool,
    rows: Vec<Vec<Bucket>>,
}

impl TryFrom<AdwinSnapshot> for Adwin {
    type Error = String;

    fn try_from(s: AdwinSnapshot) -> Result<Self, String> {
        if s.clock == 0 || s.max_buckets == 0 || !(s.delta > 0.0 && s.delta <= 1.0) {
            return Err("adwin: clock, max_buckets and delta must be positive".into());
        }
        if s.rows.iter().any(|r| r.len() > s.max_buckets) {
            return Err("adwin: a bucket row holds more than max_buckets".into());
        }
        Ok(Adwin {
            delta: s.delta,
            clock: s.clock,
            max_buckets: s.max_buckets,
            min_window_length: s.min_window_length,
            grace_period: s.grace_period,
            total: s.total,
            variance: s.variance,
            width: s.width,
            tick: s.tick,
            n_detections: s.n_detections,
            drift_detected: s.drift_detected,
            rows: s.rows,
        })
    }
}

impl Default for Adwin {
    fn default() -> Self {
        Adwin::new(0.002)
    }
}

impl Adwin {
    /// ADWIN with confidence `delta` and River's other defaults.
    pub fn new(delta: f64) -> Self {
        Adwin::with_params(delta, 32, 5, 5, 10)
    }

    /// ADWIN with every parameter given. Out-of-range values are clamped
    /// (`clock` and `max_buckets` to at least 1, `delta` into `(0, 1]`).
    pub fn with_params(
        delta: f64,
        clock: u32,
        max_buckets: usize,
        min_window_length: usize,
        grace_period: usize,
    ) -> Self {
        let delta = if delta.is_finite() && delta > 0.0 {
            delta.min(1.0)
        } else {
            0.002
        };
        Adwin {
            delta,
            clock: clock.max(1),
            max_buckets: max_buckets.max(1),
            min_window_length: min_window_length as f64,
            grace_period: grace_period as f64,
            total: 0.0,
            variance: 0.0,
            width: 0.0,
            tick: 0,
            n_detections: 0,
            drift_detected: false,
            rows: Vec::new(),
        }
    }

    /// Number of values in the current window.
    pub fn width(&self) -> f64 {
        self.width
    }

    /// Mean of the current window (0 when empty).
    pub fn estimation(&self) -> f64 {
        if self.width > 0.0 {
            self.total / self.width
        } else {
            0.0
        }
    }

    /// Changes detected since creation.
    pub fn n_detections(&self) -> u64 {
        self.n_detections
    }

    /// Whether the last update detected a change.
    pub fn drift_detected(&self) -> bool {
        self.drift_detected
    }

    /// Heap bytes plus inline size.
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + vec_bytes(&self.rows)
            + self.rows.iter().map(vec_bytes).sum::<usize>()
    }

    /// Add one value; true when a change was detected. Non-finite values
    /// are ignored.
    pub fn add(&mut self, x: f64) -> bool {
        if self.drift_detected {
            self.clear_window();
        }
        if !x.is_finite() {
            self.drift_detected = false;
            return false;
        }
        self.insert(x);
        self.drift_detected = self.detect_change();
        self.drift_detected
    }

    /// Empties the window but keeps the detection count.
    fn clear_window(&mut self) {
        self.total = 0.0;
        self.variance = 0.0;
        self.width = 0.0;
        self.tick = 0;
        self.drift_detected = false;
        self.rows.clear();
    }

    fn insert(&mut self, x: f64) {
        if self.rows.is_empty() {
            self.rows.push(Vec::with_capacity(self.max_buckets + 1));
        }
        self.rows[0].push(Bucket {
            total: x,
            variance: 0.0,
        });
        self.width += 1.0;
        if self.width > 1.0 {
            let d = x - self.total / (self.width - 1.0);
            self.variance += (self.width - 1.0) * d * d / self.width;
        }
        self.total += x;
        self.compress();
    }

    /// Merge the two oldest buckets of any row that overflowed into one
    /// bucket of the next row, cascading upwards.
    fn compress(&mut self) {
        let mut i = 0;
        while i < self.rows.len() && self.rows[i].len() > self.max_buckets {
            let n = (1u64 << i.min(62)) as f64;
            let (a, b) = (self.rows[i][0], self.rows[i][1]);
            let d = a.total / n - b.total / n;
            let merged = Bucket {
                total: a.total + b.total,
                variance: a.variance + b.variance + n * 0.5 * d * d,
            };
            self.rows[i].drain(..2);
            if i + 1 == self.rows.len() {
                self.rows.push(Vec::with_capacity(self.max_buckets + 1));
            }
            self.rows[i + 1].push(merged);
            i += 1;
        }
    }

    /// Drop the oldest bucket; returns how many values it held.
    fn delete_oldest(&mut self) -> f64 {
        let Some(last) = self.rows.len().checked_sub(1) else {
            return 0.0;
        };
        let Some(&b) = self.rows[last].first() else {
            self.rows.pop();
            return 0.0;
        };
        let n = (1u64 << last.min(62)) as f64;
        self.width -= n;
        self.total -= b.total;
        if self.width > 0.0 {
            let mu = b.total / n;
            let mu_w = self.total / self.width;
            self.variance -=
                b.variance + n * self.width * (mu - mu_w) * (mu - mu_w) / (n + self.width);
        } else {
            self.variance = 0.0;
            self.total = 0.0;
            self.width = 0.0;
        }
        self.rows[last].remove(0);
        if self.rows[last].is_empty() {
            self.rows.pop();
        }
        n
    }

    fn detect_change(&mut self) -> bool {
        self.tick += 1;
        if !self.tick.is_multiple_of(u64::from(self.clock)) || self.width <= self.grace_period {
            return false;
        }
        let mut detected = false;
        loop {
            let mut cut = false;
            let (mut n0, mut n1) = (0.0, self.width);
            let (mut u0, mut u1) = (0.0, self.total);
            // Scan cuts from the oldest bucket to the newest; the last
            // bucket is never moved into W0 (W1 would be empty).
            'scan: for i in (0..self.rows.len()).rev() {
                let size = (1u64 << i.min(62)) as f64;
                let len = self.rows[i].len();
                for k in 0..len {
                    let t = self.rows[i][k].total;
                    n0 += size;
                    n1 -= size;
                    u0 += t;
                    u1 -= t;
                    if i == 0 && k + 1 == len {
                        break 'scan;
                    }
                    if n0 >= self.min_window_length
                        && n1 >= self.min_window_length
                        && self.cut_is_significant(n0, n1, u0 / n0 - u1 / n1)
                    {
                        cut = true;
                        break 'scan;
                    }
                }
            }
            if !cut || self.width <= 0.0 {
                break;
            }
            detected = true;
            self.delete_oldest();
        }
        if detected {
            self.n_detections += 1;
        }
        detected
    }

    fn cut_is_significant(&self, n0: f64, n1: f64, delta_mean: f64) -> bool {
        let delta_prime = (2.0 * self.width.ln() / self.delta).ln();
        let m =
            1.0 / (n0 - self.min_window_length + 1.0) + 1.0 / (n1 - self.min_window_length + 1.0);
        let var = (self.variance / self.width).max(0.0);
        let eps = (2.0 * m * var * delta_prime).sqrt() + 2.0 / 3.0 * delta_prime * m;
        delta_mean.abs() > eps
    }
}

impl DriftDetector for Adwin {
    fn update(&mut self, x: f64) -> DriftState {
        if self.add(x) {
            DriftState::Drift
        } else {
            DriftState::Stable
        }
    }

    fn reset(&mut self) {
        self.clear_window();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    #[test]
    fn keeps_exact_window_statistics() {
        let mut a = Adwin::default();
        for v in [1.0, 2.0, 3.0, 4.0, 5.0] {
            assert_eq!(a.update(v), DriftState::Stable);
        }
        assert_eq!(a.width(), 5.0);
        assert!((a.estimation() - 3.0).abs() < 1e-12);
        assert!((a.variance - 10.0).abs() < 1e-9);
        // Many values: buckets merge but the totals stay exact.
        for _ in 0..1000 {
            a.update(1.0);
        }
        assert_eq!(a.width(), 1005.0);
        assert!((a.total - 1015.0).abs() < 1e-9);
    }

    #[test]
    fn detects_an_abrupt_mean_change_and_shrinks_the_window() {
        let mut rng = Rng::new(7);
        let mut a = Adwin::default();
        for _ in 0..2000 {
            a.update(if rng.chance(0.2) { 1.0 } else { 0.0 });
        }
        assert_eq!(a.n_detections(), 0);
        let mut detected_at = None;
        for i in 0..2000 {
            if a.update(if rng.chance(0.8) { 1.0 } else { 0.0 }) == DriftState::Drift {
                detected_at = Some(i);
                break;
            }
        }
        let at = detected_at.expect("a jump from 0.2 to 0.8 must be detected");
        assert!(at < 300, "detected only after {at} values");
        // The window after the drift holds (mostly) the new concept.
        for _ in 0..200 {
            a.update(if rng.chance(0.8) { 1.0 } else { 0.0 });
        }
        assert!(a.estimation() > 0.6, "estimate {}", a.estimation());
    }

    #[test]
    fn rarely_alarms_on_a_stationary_bernoulli_stream() {
        let mut rng = Rng::new(11);
        let mut a = Adwin::default();
        let n = 100_000;
        let mut alarms = 0;
        for _ in 0..n {
            if a.update(if rng.chance(0.3) { 1.0 } else { 0.0 }) == DriftState::Drift {
                alarms += 1;
            }
        }
        // delta = 0.002 bounds false alarms; a handful over 100k values at most.
        assert!(alarms <= 5, "{alarms} false alarms");
        assert!(a.width() > 1000.0);
    }

    #[test]
    fn ignores_non_finite_and_survives_serde() {
        let mut a = Adwin::default();
        for i in 0..500 {
            a.update(f64::from(i % 2));
            a.update(f64::NAN);
            a.update(f64::INFINITY);
        }
        assert_eq!(a.width(), 500.0);
        let json = serde_json::to_string(&a).expect("serialize");
        let mut b: Adwin = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(a, b);
        let mut a2 = a.clone();
        for i in 0..300 {
            let v = f64::from((i / 100) % 2);
            assert_eq!(a2.update(v), b.update(v));
        }
        b.reset();
        assert_eq!(b.width(), 0.0);
        // A corrupt snapshot is refused, not a panic later.
        let bad = json.replace("\"max_buckets\":5", "\"max_buckets\":0");
        assert!(serde_json::from_str::<Adwin>(&bad).is_err());
        assert!(a.memory_bytes() > std::mem::size_of::<Adwin>());
    }
}
