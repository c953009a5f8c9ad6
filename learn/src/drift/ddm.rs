//! DDM, the drift detection method (Gama, Medas, Castillo & Rodrigues 2004,
//! "Learning with drift detection"), as River's `drift.binary.DDM`.
//!
//! It watches a learner's error indicator (1 = mistake, 0 = right). With
//! `p` the running error rate and `s = sqrt(p (1 - p) / n)` its standard
//! deviation, it remembers `p_min`, `s_min` where `p + s` was lowest, and
//! flags a warning when `p + s > p_min + 2 s_min` and a drift when
//! `p + s > p_min + 3 s_min` — only after more than `warm_start` values.
//!
//! Inputs are clamped to `[0, 1]`; `NaN` and infinities are ignored (the
//! update returns `Stable` and changes nothing). As in River, the update
//! after a drift starts from scratch.

use serde::{Deserialize, Serialize};

use super::{DriftDetector, DriftState};

/// DDM. Defaults are River's: `warm_start` 30, `warning_threshold` 2.0,
/// `drift_threshold` 3.0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Ddm {
    warm_start: u64,
    warning_threshold: f64,
    drift_threshold: f64,
    n: u64,
    /// Running error rate.
    p: f64,
    /// `(p_min, s_min)` where `p + s` was lowest after the warm start.
    min: Option<(f64, f64)>,
    warning: bool,
    drift: bool,
}

impl Default for Ddm {
    fn default() -> Self {
        Ddm::new(30, 2.0, 3.0)
    }
}

impl Ddm {
    /// A detector with the given warm start (values seen before any signal)
    /// and thresholds in standard deviations (`warning ≤ drift` expected).
    pub fn new(warm_start: u64, warning_threshold: f64, drift_threshold: f64) -> Self {
        Ddm {
            warm_start,
            warning_threshold,
            drift_threshold,
            n: 0,
            p: 0.0,
            min: None,
            warning: false,
            drift: false,
        }
    }

    /// Running error rate since the last reset.
    pub fn error_rate(&self) -> f64 {
        self.p
    }
}

impl DriftDetector for Ddm {
    fn update(&mut self, x: f64) -> DriftState {
        if !x.is_finite() {
            return DriftState::Stable;
        }
        if self.drift {
            self.reset();
        }
        let x = x.clamp(0.0, 1.0);
        self.n += 1;
        let n = self.n as f64;
        self.p += (x - self.p) / n;
        let p = self.p;
        let s = (p * (1.0 - p) / n).max(0.0).sqrt();
        if self.n > self.warm_start {
            let (p_min, s_min) = match self.min {
                Some((pm, sm)) if p + s > pm + sm => (pm, sm),
                _ => {
                    self.min = Some((p, s));
                    (p, s)
                }
            };
            self.warning = p + s > p_min + self.warning_threshold * s_min;
            if p + s > p_min + self.drift_threshold * s_min {
                self.drift = true;
                self.warning = false;
            }
        }
        if self.drift {
            DriftState::Drift
        } else if self.warning {
            DriftState::Warning
        } else {
            DriftState::Stable
        }
    }

    fn reset(&mut self) {
        *self = Ddm::new(
            self.warm_start,
            self.warning_threshold,
            self.drift_threshold,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn run(d: &mut Ddm, rng: &mut Rng, n: usize, p: f64) -> (usize, usize, Option<usize>) {
        let (mut warnings, mut drifts, mut first) = (0, 0, None);
        for t in 0..n {
            match d.update(f64::from(u8::from(rng.chance(p)))) {
                DriftState::Warning => warnings += 1,
                DriftState::Drift => {
                    drifts += 1;
                    first.get_or_insert(t);
                }
                DriftState::Stable => {}
            }
        }
        (warnings, drifts, first)
    }

    #[test]
    fn quiet_on_a_stationary_stream_then_detects_a_jump() {
        let mut rng = Rng::new(7);
        let mut d = Ddm::default();
        let (_, drifts, _) = run(&mut d, &mut rng, 2000, 0.2);
        assert_eq!(drifts, 0);
        let (warnings, drifts, first) = run(&mut d, &mut rng, 1000, 0.6);
        assert!(drifts >= 1 && warnings >= 1);
        assert!(first.unwrap() < 200, "{first:?}");
    }

    #[test]
    fn ignores_nan_and_round_trips() {
        let mut d = Ddm::default();
        for t in 0..50 {
            d.update(if t % 4 == 0 { 1.0 } else { 0.0 });
        }
        assert_eq!(d.update(f64::NAN), DriftState::Stable);
        let json = serde_json::to_string(&d).unwrap();
        let back: Ddm = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
    }
}
