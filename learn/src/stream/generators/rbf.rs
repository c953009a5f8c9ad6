//! Random radial basis functions (MOA's RandomRBFGenerator and
//! RandomRBFGeneratorDrift; Bifet et al. 2010, "MOA: Massive Online
//! Analysis"). Centroids get a random centre in `[0, 1)^d`, class, standard
//! deviation and weight; a sample picks a centroid by weight and moves away
//! from its centre in a random direction by a Gaussian length. With drift,
//! the first `n_drift_centroids` centroids move `change_speed` per sample
//! along a random unit direction, bouncing off the unit cube.

use super::{numeric_schema, Generator};
use crate::rng::Rng;
use crate::schema::{Sample, Schema};
use crate::spec::{ParamReader, SpecError};

struct Centroid {
    centre: Vec<f64>,
    class: usize,
    std_dev: f64,
    speed: Vec<f64>,
}

/// The random RBF generator, with or without drift.
pub struct RandomRbf {
    schema: Schema,
    rng: Rng,
    centroids: Vec<Centroid>,
    /// Cumulative weights, for picking a centroid by binary search.
    cumulative: Vec<f64>,
    change_speed: f64,
    n_drift: usize,
}

impl RandomRbf {
    pub fn new(
        n_classes: usize,
        n_features: usize,
        n_centroids: usize,
        model_seed: u64,
        seed: u64,
        change_speed: f64,
        n_drift: usize,
    ) -> Self {
        let mut model = Rng::new(model_seed);
        let mut centroids = Vec::with_capacity(n_centroids);
        let mut cumulative = Vec::with_capacity(n_centroids);
        let mut total = 0.0;
        for _ in 0..n_centroids {
            let centre = (0..n_features).map(|_| model.next_f64()).collect();
            let class = model.below(n_classes);
            let std_dev = model.next_f64();
            total += model.next_f64();
            cumulative.push(total);
            centroids.push(Centroid {
                centre,
                class,
                std_dev,
                speed: Vec::new(),
            });
        }
        let n_drift = n_drift.min(n_centroids);
        for c in centroids.iter_mut().take(n_drift) {
            let mut v: Vec<f64> = (0..n_features).map(|_| model.next_f64()).collect();
            let norm = v
                .iter()
                .map(|a| a * a)
                .sum::<f64>()
                .sqrt()
                .max(f64::MIN_POSITIVE);
            v.iter_mut().for_each(|a| *a /= norm);
            c.speed = v;
        }
        RandomRbf {
            schema: numeric_schema(n_features, n_classes),
            rng: Rng::new(seed),
            centroids,
            cumulative,
            change_speed,
            n_drift: if change_speed > 0.0 { n_drift } else { 0 },
        }
    }

    pub(crate) fn from_params(
        r: &mut ParamReader<'_>,
        seed: u64,
        drift: bool,
    ) -> Result<Self, SpecError> {
        let n_classes = r.usize_in("n_classes", 2, 2, 10_000)?;
        let n_features = r.usize_in("n_features", 10, 1, 10_000)?;
        let n_centroids = r.usize_in("n_centroids", 50, 1, 1_000_000)?;
        let model_seed = r.u64("model_seed", seed)?;
        let (speed, n_drift) = if drift {
            (
                r.f64_in("change_speed", 0.0, 0.0, 1.0)?,
                r.usize_in("n_drift_centroids", 50.min(n_centroids), 0, n_centroids)?,
            )
        } else {
            (0.0, 0)
        };
        Ok(RandomRbf::new(
            n_classes,
            n_features,
            n_centroids,
            model_seed,
            seed,
            speed,
            n_drift,
        ))
    }
}

impl Generator for RandomRbf {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn generate(&mut self) -> Sample {
        for c in self.centroids.iter_mut().take(self.n_drift) {
            for (x, v) in c.centre.iter_mut().zip(c.speed.iter_mut()) {
                *x += *v * self.change_speed;
                if !(0.0..=1.0).contains(x) {
                    *x = x.clamp(0.0, 1.0);
                    *v = -*v;
                }
            }
        }
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        let u = self.rng.next_f64() * total;
        let i = self
            .cumulative
            .partition_point(|&c| c <= u)
            .min(self.centroids.len() - 1);
        let c = &self.centroids[i];
        let mut dir: Vec<f64> = (0..c.centre.len())
            .map(|_| self.rng.uniform(-1.0, 1.0))
            .collect();
        let norm = dir
            .iter()
            .map(|a| a * a)
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE);
        let scale = self.rng.normal() * c.std_dev / norm;
        for (d, centre) in dir.iter_mut().zip(&c.centre) {
            *d = centre + *d * scale;
        }
        Sample { x: dir, y: c.class }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_come_from_their_centroid() {
        let mut g = RandomRbf::new(3, 2, 5, 1, 2, 0.0, 0);
        let classes: Vec<usize> = g.centroids.iter().map(|c| c.class).collect();
        for _ in 0..1000 {
            let s = g.generate();
            assert!(classes.contains(&s.y));
        }
    }

    #[test]
    fn drifting_centroids_move_and_stay_in_the_cube() {
        let mut g = RandomRbf::new(2, 3, 4, 1, 2, 0.05, 2);
        let before = g.centroids[0].centre.clone();
        let still = g.centroids[3].centre.clone();
        for _ in 0..100 {
            g.generate();
        }
        assert_ne!(g.centroids[0].centre, before);
        assert_eq!(g.centroids[3].centre, still);
        assert!(g.centroids[0]
            .centre
            .iter()
            .all(|v| (0.0..=1.0).contains(v)));
    }
}
