//! Rotating hyperplane (Hulten, Spencer & Domingos 2001, "Mining
//! time-changing data streams"): features uniform in `[0, 1)`, class 1 when
//! `sum w_i x_i >= sum w_i / 2`. After each sample the first
//! `n_drift_features` weights move by `mag_change` in their direction, which
//! reverses with probability `sigma`. Labels flip with probability `noise`
//! (River tests `0.01 + u <= noise`; this is the plain Bernoulli draw).

use super::{numeric_schema, Generator};
use crate::rng::Rng;
use crate::schema::{Sample, Schema};
use crate::spec::{ParamReader, SpecError};

/// The rotating hyperplane generator.
pub struct Hyperplane {
    schema: Schema,
    rng: Rng,
    weights: Vec<f64>,
    direction: Vec<f64>,
    n_drift: usize,
    mag_change: f64,
    sigma: f64,
    noise: f64,
}

impl Hyperplane {
    pub fn new(
        n_features: usize,
        n_drift: usize,
        mag_change: f64,
        sigma: f64,
        noise: f64,
        seed: u64,
    ) -> Self {
        let mut rng = Rng::new(seed);
        let weights = (0..n_features).map(|_| rng.next_f64()).collect();
        Hyperplane {
            schema: numeric_schema(n_features, 2),
            rng,
            weights,
            direction: vec![1.0; n_features],
            n_drift: n_drift.min(n_features),
            mag_change,
            sigma,
            noise,
        }
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let n_features = r.usize_in("n_features", 10, 2, 10_000)?;
        let n_drift = r.usize_in("n_drift_features", 2, 0, n_features)?;
        let mag_change = r.f64_in("mag_change", 0.0, 0.0, 1.0)?;
        let sigma = r.f64_in("sigma", 0.1, 0.0, 1.0)?;
        let noise = r.f64_in("noise", 0.05, 0.0, 1.0)?;
        Ok(Hyperplane::new(
            n_features, n_drift, mag_change, sigma, noise, seed,
        ))
    }
}

impl Generator for Hyperplane {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        let x: Vec<f64> = (0..self.weights.len())
            .map(|_| self.rng.next_f64())
            .collect();
        let dot: f64 = x.iter().zip(&self.weights).map(|(a, w)| a * w).sum();
        let total: f64 = self.weights.iter().sum();
        let mut y = usize::from(dot >= 0.5 * total);
        if self.noise > 0.0 && self.rng.chance(self.noise) {
            y = 1 - y;
        }
        for i in 0..self.n_drift {
            self.weights[i] += self.direction[i] * self.mag_change;
            if self.rng.chance(self.sigma) {
                self.direction[i] = -self.direction[i];
            }
        }
        Sample { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_free_labels_follow_the_plane_and_are_balanced() {
        let mut g = Hyperplane::new(5, 0, 0.0, 0.0, 0.0, 2);
        let w = g.weights.clone();
        let total: f64 = w.iter().sum();
        let mut ones = 0;
        for _ in 0..4000 {
            let s = g.generate();
            let dot: f64 = s.x.iter().zip(&w).map(|(a, b)| a * b).sum();
            assert_eq!(s.y == 1, dot >= total / 2.0);
            ones += s.y;
        }
        assert!((1600..2400).contains(&ones), "{ones}");
    }

    #[test]
    fn weights_drift_when_asked() {
        let mut g = Hyperplane::new(4, 2, 0.01, 0.0, 0.0, 2);
        let before = g.weights.clone();
        for _ in 0..10 {
            g.generate();
        }
        assert!((g.weights[0] - before[0] - 0.1).abs() < 1e-9);
        assert_eq!(g.weights[3], before[3]);
    }
}
