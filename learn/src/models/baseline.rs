//! Baselines every benchmark needs: the majority class and "no change"
//! (predict the last label seen, strong on streams with temporal
//! dependence such as electricity; Žliobaitė et al. 2015).

use serde::{Deserialize, Serialize};

use crate::classifier::{normalize, vec_bytes, Classifier};

/// Predicts the class distribution seen so far (weighted counts).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Majority {
    counts: Vec<f64>,
}

impl Majority {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Classifier for Majority {
    fn learn_one(&mut self, _x: &[f64], y: usize, weight: f64) {
        if !weight.is_finite() || weight <= 0.0 {
            return;
        }
        if y >= self.counts.len() {
            self.counts.resize(y + 1, 0.0);
        }
        self.counts[y] += weight;
    }

    fn predict_proba_into(&self, _x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.extend_from_slice(&self.counts);
        if self.counts.iter().any(|&c| c > 0.0) {
            normalize(out);
        }
    }

    fn n_classes(&self) -> usize {
        self.counts.len()
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + vec_bytes(&self.counts)
    }
}

/// Predicts the last class it was taught.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NoChange {
    last: Option<usize>,
    n_classes: usize,
}

impl NoChange {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Classifier for NoChange {
    fn learn_one(&mut self, _x: &[f64], y: usize, _weight: f64) {
        self.last = Some(y);
        self.n_classes = self.n_classes.max(y + 1);
    }

    fn predict_proba_into(&self, _x: &[f64], out: &mut Vec<f64>) {
        out.clear();
        out.resize(self.n_classes, 0.0);
        if let Some(y) = self.last {
            out[y] = 1.0;
        }
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_follows_counts_and_grows_classes() {
        let mut m = Majority::new();
        assert_eq!(m.predict_one(&[]), None);
        m.learn_one(&[], 2, 1.0);
        m.learn_one(&[], 0, 1.0);
        m.learn_one(&[], 2, 1.0);
        assert_eq!(m.n_classes(), 3);
        assert_eq!(m.predict_one(&[1.0]), Some(2));
        m.learn_one(&[], 0, f64::NAN); // ignored, no panic
        assert_eq!(m.predict_one(&[]), Some(2));
    }

    #[test]
    fn no_change_predicts_last_label() {
        let mut m = NoChange::new();
        m.learn_one(&[], 1, 1.0);
        m.learn_one(&[], 4, 1.0);
        assert_eq!(m.predict_one(&[]), Some(4));
        assert_eq!(m.n_classes(), 5);
    }
}
