//! Waveforms (Breiman et al. 1984, "Classification and Regression Trees"):
//! each class mixes two of three triangular base waves with a random weight,
//! plus unit Gaussian noise on each of 21 features; optionally 19 more pure
//! noise features.

use super::{numeric_schema, Generator};
use crate::rng::Rng;
use crate::schema::{Sample, Schema};
use crate::spec::{ParamReader, SpecError};

const BASE: usize = 21;
const NOISE: usize = 19;

/// Height of triangular base wave `wave` (0-2) at position `i` (0-20): a
/// peak of 6 centred at 6, 14 and 10.
fn wave(wave: usize, i: usize) -> f64 {
    let centre: i64 = [6, 14, 10][wave];
    (6 - (i as i64 - centre).abs()).max(0) as f64
}

/// The Waveform generator.
pub struct Waveform {
    schema: Schema,
    rng: Rng,
    irrelevant: bool,
}

impl Waveform {
    pub fn new(irrelevant: bool, seed: u64) -> Self {
        Waveform {
            schema: numeric_schema(if irrelevant { BASE + NOISE } else { BASE }, 3),
            rng: Rng::new(seed),
            irrelevant,
        }
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let irrelevant = r.bool("irrelevant", false)?;
        Ok(Waveform::new(irrelevant, seed))
    }
}

impl Generator for Waveform {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        let y = self.rng.below(3);
        // Class 0 mixes waves 0 and 1, class 1 waves 0 and 2, class 2 waves 1 and 2.
        let (a, b) = [(0, 1), (0, 2), (1, 2)][y];
        let m = self.rng.next_f64();
        let n = if self.irrelevant { BASE + NOISE } else { BASE };
        let mut x = Vec::with_capacity(n);
        for i in 0..BASE {
            x.push(m * wave(a, i) + (1.0 - m) * wave(b, i) + self.rng.normal());
        }
        for _ in BASE..n {
            x.push(self.rng.normal());
        }
        Sample { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_waves_peak_where_expected() {
        assert_eq!(wave(0, 6), 6.0);
        assert_eq!(wave(1, 14), 6.0);
        assert_eq!(wave(2, 10), 6.0);
        assert_eq!(wave(0, 20), 0.0);
    }

    #[test]
    fn class_means_differ() {
        let mut g = Waveform::new(false, 3);
        let mut sum = [[0.0; BASE]; 3];
        let mut count = [0.0; 3];
        for _ in 0..6000 {
            let s = g.generate();
            count[s.y] += 1.0;
            for (acc, v) in sum[s.y].iter_mut().zip(&s.x) {
                *acc += v;
            }
        }
        // Class 0 (waves 0 and 1) has low mean at position 10 only through
        // wave 1; class 2 (waves 1 and 2) is high at 10.
        let mean = |c: usize, i: usize| sum[c][i] / count[c];
        assert!(mean(2, 10) > mean(0, 10) + 1.0);
    }
}
