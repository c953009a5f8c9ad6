//! Concept drift by joining two streams (MOA's ConceptDriftStream; Bifet et
//! al. 2009, "New ensemble methods for evolving data streams"): sample `t`
//! comes from the drift stream with probability
//! `1 / (1 + exp(-4 (t - position) / width))`, a sigmoid centred on
//! `position` whose slope spans about `width` samples.

use super::{build_nested, Generator};
use crate::rng::Rng;
use crate::schema::{Sample, Schema};
use crate::spec::{ParamReader, SpecError};

/// Two generators with a sigmoid transition between them.
pub struct ConceptDrift {
    schema: Schema,
    rng: Rng,
    before: Box<dyn Generator>,
    after: Box<dyn Generator>,
    position: f64,
    width: f64,
    t: u64,
}

impl ConceptDrift {
    /// Join `before` and `after`; they must have the same number of features.
    pub fn new(
        before: Box<dyn Generator>,
        after: Box<dyn Generator>,
        position: u64,
        width: u64,
        seed: u64,
    ) -> Result<Self, String> {
        let (a, b) = (before.schema(), after.schema());
        if a.n_features() != b.n_features() {
            return Err(format!(
                "streams have {} and {} features",
                a.n_features(),
                b.n_features()
            ));
        }
        let mut schema = a.clone();
        if b.n_classes() > a.n_classes() {
            schema.classes = b.classes.clone();
        }
        Ok(ConceptDrift {
            schema,
            rng: Rng::new(seed),
            before,
            after,
            position: position as f64,
            width: width.max(1) as f64,
            t: 0,
        })
    }

    pub(crate) fn from_params(r: &mut ParamReader<'_>, seed: u64) -> Result<Self, SpecError> {
        let a = r.string("stream", "sea:variant=0");
        let b = r.string("drift_stream", "sea:variant=2");
        let position = r.u64("position", 50_000)?;
        let width = r.u64("width", 1000)?;
        // Distinct default seeds, so the two sides are not the same draws.
        let before = build_nested(&a, seed.wrapping_add(1))?;
        let after = build_nested(&b, seed.wrapping_add(2))?;
        ConceptDrift::new(before, after, position, width, seed).map_err(|why| SpecError::BadValue {
            name: "drift".into(),
            param: "drift_stream".into(),
            value: b,
            why,
        })
    }

    /// Probability that sample `t` (1-based) comes from the drift stream.
    pub fn drift_probability(&self, t: u64) -> f64 {
        1.0 / (1.0 + (-4.0 * (t as f64 - self.position) / self.width).exp())
    }
}

impl Generator for ConceptDrift {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        self.t += 1;
        let p = self.drift_probability(self.t);
        if self.rng.next_f64() > p {
            self.before.generate()
        } else {
            self.after.generate()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sea::Sea;
    use super::*;

    #[test]
    fn switches_concept_around_the_position() {
        let mut g = ConceptDrift::new(
            Box::new(Sea::new(0, 0.0, 1)),
            Box::new(Sea::new(3, 0.0, 2)),
            1000,
            10,
            3,
        )
        .expect("same features");
        // Points with 8 < x0 + x1 <= 9.5 are 1 before the drift, 0 after.
        let mut early = (0, 0);
        let mut late = (0, 0);
        for t in 1..=2000 {
            let s = g.generate();
            let sum = s.x[0] + s.x[1];
            if sum > 8.0 && sum <= 9.5 {
                let slot = if t < 950 {
                    &mut early
                } else if t > 1050 {
                    &mut late
                } else {
                    continue;
                };
                slot.0 += 1;
                slot.1 += s.y;
            }
        }
        assert_eq!(early.1, early.0, "all ones before");
        assert_eq!(late.1, 0, "all zeros after");
        assert!((g.drift_probability(1000) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn mismatched_streams_are_refused() {
        let r = ConceptDrift::new(
            Box::new(Sea::new(0, 0.0, 1)),
            Box::new(super::super::Waveform::new(false, 1)),
            10,
            10,
            1,
        );
        assert!(r.is_err());
    }
}
