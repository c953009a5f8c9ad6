//! Sine concepts (Gama et al. 2004, "Learning with drift detection"): two
//! features uniform in `[0, 1)`; SINE1 gives class 1 below `x0 < sin(x1)`,
//! SINE2 below `x0 < 0.5 + 0.3 sin(3 pi x1)`; functions 1 and 3 reverse
//! them. Two irrelevant uniform features may be added.

use super::{numeric_schema, Balancer, Generator};
use crate::rng::Rng;
use crate::schema::{Sample, Schema};
use crate::spec::{ParamReader, SpecError};

/// The Sine generator.
pub struct Sine {
    schema: Schema,
    rng: Rng,
    function: usize,
    irrelevant: bool,
    balance: Balancer,
}

/// Class of (x0, x1) under `function` (0-3).
fn label(function: usize, x0: f64, x1: f64) -> usize {
    let below = match function {
        0 | 1 => x0 < x1.sin(),
        _ => x0 < 0.5 + 0.3 * (3.0 * std::f64::consts::PI * x1).sin(),
    };
    let reversed = function == 1 || function == 3;
    usize::from(below != reversed)
}

impl Sine {
    pub fn new(function: usize, balance: bool, irrelevant: bool, seed: u64) -> Self {
        Sine {
            schema: numeric_schema(if irrelevant { 4 } else { 2 }, 2),
            rng: Rng::new(seed),
            function: function.min(3),
            irrelevant,
            balance: Balancer::new(balance),
        }
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let function = r.usize_in("function", 0, 0, 3)?;
        let balance = r.bool("balance", false)?;
        let irrelevant = r.bool("irrelevant", false)?;
        Ok(Sine::new(function, balance, irrelevant, seed))
    }
}

impl Generator for Sine {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        let (x0, x1, y) = loop {
            let (x0, x1) = (self.rng.next_f64(), self.rng.next_f64());
            let y = label(self.function, x0, x1);
            if self.balance.accept(y) {
                break (x0, x1, y);
            }
        };
        let mut x = vec![x0, x1];
        if self.irrelevant {
            x.push(self.rng.next_f64());
            x.push(self.rng.next_f64());
        }
        Sample { x, y }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reversed_functions_swap_labels() {
        for (a, b) in [(0.1, 0.9), (0.9, 0.1), (0.4, 0.5)] {
            assert_ne!(label(0, a, b), label(1, a, b));
            assert_ne!(label(2, a, b), label(3, a, b));
        }
        assert_eq!(label(0, 0.1, 0.9), 1); // 0.1 < sin(0.9)
    }
}
