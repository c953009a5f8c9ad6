//! STAGGER concepts (Schlimmer & Granger 1986, "Incremental learning from
//! noisy data"): three nominal features (size, color, shape) and three
//! boolean concepts: 0 = small and red, 1 = green or circle, 2 = medium or
//! large. Class 1 when the concept holds.

use super::{Balancer, Generator};
use crate::rng::Rng;
use crate::schema::{Feature, Sample, Schema};
use crate::spec::{ParamReader, SpecError};

/// The STAGGER generator.
pub struct Stagger {
    schema: Schema,
    rng: Rng,
    function: usize,
    balance: Balancer,
}

fn values(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

impl Stagger {
    pub fn new(function: usize, balance: bool, seed: u64) -> Self {
        let schema = Schema {
            features: vec![
                Feature::nominal("size", values(&["small", "medium", "large"])),
                Feature::nominal("color", values(&["red", "blue", "green"])),
                Feature::nominal("shape", values(&["circle", "square", "triangle"])),
            ],
            classes: values(&["0", "1"]),
            target: "class".into(),
        };
        Stagger {
            schema,
            rng: Rng::new(seed),
            function: function.min(2),
            balance: Balancer::new(balance),
        }
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let function = r.usize_in("function", 0, 0, 2)?;
        let balance = r.bool("balance", false)?;
        Ok(Stagger::new(function, balance, seed))
    }
}

/// Whether the concept `function` holds for (size, color, shape).
fn concept(function: usize, size: usize, color: usize, shape: usize) -> bool {
    match function {
        0 => size == 0 && color == 0,
        1 => color == 2 || shape == 0,
        _ => size == 1 || size == 2,
    }
}

impl Generator for Stagger {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        loop {
            let (size, color, shape) = (self.rng.below(3), self.rng.below(3), self.rng.below(3));
            let y = usize::from(concept(self.function, size, color, shape));
            if self.balance.accept(y) {
                return Sample {
                    x: vec![size as f64, color as f64, shape as f64],
                    y,
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_concept() {
        for f in 0..3 {
            let mut g = Stagger::new(f, false, 8);
            for _ in 0..300 {
                let s = g.generate();
                let (a, b, c) = (s.x[0] as usize, s.x[1] as usize, s.x[2] as usize);
                assert_eq!(s.y == 1, concept(f, a, b, c));
            }
        }
    }
}
