//! SEA concepts (Street & Kim 2001, "A streaming ensemble algorithm (SEA)
//! for large-scale classification"): three features uniform in `[0, 10)`,
//! class 1 when `x0 + x1 > threshold`; the third feature is irrelevant.

use super::{numeric_schema, Generator};
use crate::rng::Rng;
use crate::schema::{Sample, Schema};
use crate::spec::{ParamReader, SpecError};

/// Thresholds of the four SEA concepts (as in River and MOA).
pub const THRESHOLDS: [f64; 4] = [8.0, 9.0, 7.0, 9.5];

/// The SEA generator.
pub struct Sea {
    schema: Schema,
    rng: Rng,
    threshold: f64,
    noise: f64,
}

impl Sea {
    pub fn new(variant: usize, noise: f64, seed: u64) -> Self {
        Sea {
            schema: numeric_schema(3, 2),
            rng: Rng::new(seed),
            threshold: THRESHOLDS[variant.min(3)],
            noise,
        }
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let variant = r.usize_in("variant", 0, 0, 3)?;
        let noise = r.f64_in("noise", 0.0, 0.0, 1.0)?;
        Ok(Sea::new(variant, noise, seed))
    }
}

impl Generator for Sea {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        let x: Vec<f64> = (0..3).map(|_| self.rng.uniform(0.0, 10.0)).collect();
        let mut y = usize::from(x[0] + x[1] > self.threshold);
        if self.noise > 0.0 && self.rng.chance(self.noise) {
            y = 1 - y;
        }
        Sample { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_threshold_rule() {
        for (variant, &threshold) in THRESHOLDS.iter().enumerate() {
            let mut g = Sea::new(variant, 0.0, 3);
            for _ in 0..5000 {
                let s = g.generate();
                assert!(s.x.iter().all(|v| (0.0..10.0).contains(v)));
                assert_eq!(s.y == 1, s.x[0] + s.x[1] > threshold);
            }
        }
    }

    #[test]
    fn noise_flips_about_that_share() {
        let mut g = Sea::new(0, 0.2, 9);
        let n = 20_000;
        let flipped = (0..n)
            .filter(|_| {
                let s = g.generate();
                (s.y == 1) != (s.x[0] + s.x[1] > 8.0)
            })
            .count();
        let share = flipped as f64 / n as f64;
        assert!((share - 0.2).abs() < 0.015, "{share}");
    }
}
