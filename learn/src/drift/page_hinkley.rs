//! The Page-Hinkley test (Page 1954, "Continuous inspection schemes"), as
//! River's `drift.PageHinkley`.
//!
//! With `x̄` the running mean, it accumulates
//! `U_t = α U_{t-1} + (x_t − x̄_t − δ)` (for increases) and
//! `L_t = α L_{t-1} + (x_t − x̄_t + δ)` (for decreases), and signals a drift
//! when `U_t − min U > λ` or `max L − L_t > λ` (per `mode`), once at least
//! `min_instances` values were seen. It never warns.
//!
//! `NaN`, infinities and values beyond `±1e100` are ignored (the update
//! returns `Stable` and changes nothing), which keeps the sums finite. As
//! in River, the update after a drift starts from scratch.

use serde::{Deserialize, Serialize};

use super::{DriftDetector, DriftState};

/// Which direction of change to look for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PhMode {
    Up,
    Down,
    Both,
}

/// Page-Hinkley. Defaults are River's: `min_instances` 30, `delta` 0.005,
/// `threshold` (λ) 50, `alpha` 1 − 0.0001, mode both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PageHinkley {
    min_instances: u64,
    delta: f64,
    threshold: f64,
    alpha: f64,
    mode: PhMode,
    n: u64,
    mean: f64,
    sum_increase: f64,
    sum_decrease: f64,
    /// Smallest `sum_increase` seen (`None` before the first value).
    min_increase: Option<f64>,
    /// Largest `sum_decrease` seen; -1 at start, as River.
    max_decrease: f64,
    drift: bool,
}

impl Default for PageHinkley {
    fn default() -> Self {
        PageHinkley::new(30, 0.005, 50.0, 1.0 - 0.0001, PhMode::Both)
    }
}

impl PageHinkley {
    /// A detector: `delta` is the magnitude of change tolerated, `threshold`
    /// (λ) the alarm level, `alpha` the forgetting factor of the sums.
    pub fn new(min_instances: u64, delta: f64, threshold: f64, alpha: f64, mode: PhMode) -> Self {
        PageHinkley {
            min_instances,
            delta,
            threshold,
            alpha,
            mode,
            n: 0,
            mean: 0.0,
            sum_increase: 0.0,
            sum_decrease: 0.0,
            min_increase: None,
            max_decrease: -1.0,
            drift: false,
        }
    }
}

impl DriftDetector for PageHinkley {
    fn update(&mut self, x: f64) -> DriftState {
        if !(x.is_finite() && x.abs() <= 1e100) {
            return DriftState::Stable;
        }
        if self.drift {
            self.reset();
        }
        self.n += 1;
        self.mean += (x - self.mean) / self.n as f64;
        let dev = x - self.mean;
        self.sum_increase = self.alpha * self.sum_increase + dev - self.delta;
        self.sum_decrease = self.alpha * self.sum_decrease + dev + self.delta;
        let min_inc = match self.min_increase {
            Some(m) if m <= self.sum_increase => m,
            _ => self.sum_increase,
        };
        self.min_increase = Some(min_inc);
        self.max_decrease = self.max_decrease.max(self.sum_decrease);
        if self.n >= self.min_instances {
            let up = self.sum_increase - min_inc > self.threshold;
            let down = self.max_decrease - self.sum_decrease > self.threshold;
            self.drift = match self.mode {
                PhMode::Up => up,
                PhMode::Down => down,
                PhMode::Both => up || down,
            };
        }
        if self.drift {
            DriftState::Drift
        } else {
            DriftState::Stable
        }
    }

    fn reset(&mut self) {
        *self = PageHinkley::new(
            self.min_instances,
            self.delta,
            self.threshold,
            self.alpha,
            self.mode,
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn drifts(d: &mut PageHinkley, rng: &mut Rng, n: usize, mu: f64) -> Vec<usize> {
        (0..n)
            .filter(|_| d.update(rng.gaussian(mu, 1.0)) == DriftState::Drift)
            .collect()
    }

    #[test]
    fn quiet_on_a_stationary_stream_then_detects_a_jump() {
        let mut rng = Rng::new(1);
        let mut d = PageHinkley::default();
        assert!(drifts(&mut d, &mut rng, 3000, 0.0).is_empty());
        let up = drifts(&mut d, &mut rng, 200, 3.0);
        assert!(!up.is_empty() && up[0] < 50, "{up:?}");
        // Both directions by default: a drop is caught too.
        let mut d = PageHinkley::default();
        drifts(&mut d, &mut rng, 500, 0.0);
        let down = drifts(&mut d, &mut rng, 200, -3.0);
        assert!(!down.is_empty() && down[0] < 50, "{down:?}");
        // Mode `up` ignores the drop.
        let mut d = PageHinkley::new(30, 0.005, 50.0, 0.9999, PhMode::Up);
        drifts(&mut d, &mut rng, 500, 0.0);
        assert!(drifts(&mut d, &mut rng, 200, -3.0).is_empty());
    }

    #[test]
    fn ignores_extreme_values_and_round_trips() {
        let mut d = PageHinkley::default();
        for v in [f64::NAN, f64::INFINITY, 1e300, 1.0] {
            d.update(v);
        }
        let json = serde_json::to_string(&d).unwrap();
        let back: PageHinkley = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        assert_eq!(back.n, 1);
    }
}
