//! LED display digits (Breiman et al. 1984, "Classification and Regression
//! Trees"), with MOA's drifting variant: seven segments of the digit, each
//! flipped with probability `noise`, optionally followed by 17 random
//! binary features; with drift, `n_drift_features` segments trade places
//! with irrelevant features. Features are 0/1 numbers.

use super::{numeric_schema, Generator};
use crate::rng::Rng;
use crate::schema::{Sample, Schema};
use crate::spec::{ParamReader, SpecError};

/// Segments lit for digits 0-9 (top, top-left, top-right, middle,
/// bottom-left, bottom-right, bottom).
const SEGMENTS: [[u8; 7]; 10] = [
    [1, 1, 1, 0, 1, 1, 1],
    [0, 0, 1, 0, 0, 1, 0],
    [1, 0, 1, 1, 1, 0, 1],
    [1, 0, 1, 1, 0, 1, 1],
    [0, 1, 1, 1, 0, 1, 0],
    [1, 1, 0, 1, 0, 1, 1],
    [1, 1, 0, 1, 1, 1, 1],
    [1, 0, 1, 0, 0, 1, 0],
    [1, 1, 1, 1, 1, 1, 1],
    [1, 1, 1, 1, 0, 1, 1],
];
const RELEVANT: usize = 7;
const IRRELEVANT: usize = 17;

/// The LED generator.
pub struct Led {
    schema: Schema,
    rng: Rng,
    noise: f64,
    /// Output position of each generated feature.
    position: Vec<usize>,
}

impl Led {
    pub fn new(noise: f64, irrelevant: bool, n_drift: usize, seed: u64) -> Self {
        let n = if irrelevant {
            RELEVANT + IRRELEVANT
        } else {
            RELEVANT
        };
        let mut rng = Rng::new(seed);
        let mut position: Vec<usize> = (0..n).collect();
        if irrelevant && n_drift > 0 {
            let start = rng.below(RELEVANT);
            let offset = rng.below(IRRELEVANT);
            for i in 0..n_drift.min(RELEVANT) {
                let a = (i + start) % RELEVANT;
                let b = RELEVANT + (i + offset) % IRRELEVANT;
                position.swap(a, b);
            }
        }
        Led {
            schema: numeric_schema(n, 10),
            rng,
            noise,
            position,
        }
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let noise = r.f64_in("noise", 0.1, 0.0, 1.0)?;
        let irrelevant = r.bool("irrelevant", true)?;
        let n_drift = r.usize_in("n_drift_features", 0, 0, RELEVANT)?;
        Ok(Led::new(noise, irrelevant, n_drift, seed))
    }
}

impl Generator for Led {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        let y = self.rng.below(10);
        let mut x = vec![0.0; self.position.len()];
        for i in 0..self.position.len() {
            let v = if i < RELEVANT {
                let lit = SEGMENTS[y][i];
                if self.noise > 0.0 && self.rng.chance(self.noise) {
                    1 - lit
                } else {
                    lit
                }
            } else {
                self.rng.below(2) as u8
            };
            x[self.position[i]] = f64::from(v);
        }
        Sample { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_free_segments_show_the_digit() {
        let mut g = Led::new(0.0, true, 0, 1);
        for _ in 0..500 {
            let s = g.generate();
            let seg: Vec<u8> = s.x[..7].iter().map(|&v| v as u8).collect();
            assert_eq!(seg, SEGMENTS[s.y]);
        }
    }

    #[test]
    fn drift_moves_segments() {
        let g = Led::new(0.0, true, 3, 1);
        let moved = (0..7).filter(|&i| g.position[i] >= 7).count();
        assert_eq!(moved, 3);
    }
}
