//! The `Classifier` trait: River's small surface, typed.

/// A streaming classifier, trained one sample at a time (test-then-train).
///
/// Features are a dense slice of `f64`; `NaN` is a missing value, nominal
/// features carry their category index. Classes are indices `0..` and grow as
/// new ones are learnt. Implementations must never panic on NaN or infinite
/// values, on an unseen class, or when the number of features changes between
/// calls (extra features are ignored or grown into, missing ones read as NaN).
pub trait Classifier {
    /// Learn from one sample with weight `weight` (1.0 is an ordinary sample).
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64);

    /// Write class probabilities into `out` (resized to `n_classes()`; all
    /// zero when nothing has been learnt yet). Probabilities sum to 1 when
    /// there is at least one class.
    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>);

    /// Number of classes this model knows of.
    fn n_classes(&self) -> usize;

    /// Heap bytes this model owns, measured from its actual allocations
    /// (capacities, not lengths), plus its own inline size.
    fn memory_bytes(&self) -> usize;

    /// Class probabilities as a fresh vector.
    fn predict_proba_one(&self, x: &[f64]) -> Vec<f64> {
        let mut out = Vec::new();
        self.predict_proba_into(x, &mut out);
        out
    }

    /// Most probable class, or `None` before any class was seen.
    fn predict_one(&self, x: &[f64]) -> Option<usize> {
        argmax(&self.predict_proba_one(x))
    }
}

/// Index of the largest finite value (first one on ties); `None` if empty or
/// if every value is zero, NaN or negative infinity.
pub fn argmax(v: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &p) in v.iter().enumerate() {
        if p.is_nan() {
            continue;
        }
        match best {
            Some((_, b)) if p <= b => {}
            _ => best = Some((i, p)),
        }
    }
    match best {
        Some((i, p)) if p > 0.0 => Some(i),
        Some((i, _)) if v.len() == 1 => Some(i),
        _ => None,
    }
}

/// Normalise `v` in place to sum to one; a vector of zeros (or non-finite
/// sum) becomes uniform.
pub fn normalize(v: &mut [f64]) {
    for p in v.iter_mut() {
        if !p.is_finite() || *p < 0.0 {
            *p = 0.0;
        }
    }
    let s: f64 = v.iter().sum();
    if s > 0.0 && s.is_finite() {
        for p in v.iter_mut() {
            *p /= s;
        }
    } else if !v.is_empty() {
        let u = 1.0 / v.len() as f64;
        for p in v.iter_mut() {
            *p = u;
        }
    }
}

/// Heap bytes of a vector's buffer (capacity, not length).
pub fn vec_bytes<T>(v: &Vec<T>) -> usize {
    v.capacity() * std::mem::size_of::<T>()
}

/// A value read from a feature slice, NaN when the index is past the end
/// (the feature count changed) — so models never index out of bounds.
#[inline]
pub fn feature(x: &[f64], i: usize) -> f64 {
    x.get(i).copied().unwrap_or(f64::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argmax_ignores_nan_and_prefers_first() {
        assert_eq!(argmax(&[0.2, f64::NAN, 0.5, 0.5]), Some(2));
        assert_eq!(argmax(&[]), None);
        assert_eq!(argmax(&[0.0, 0.0]), None);
    }

    #[test]
    fn normalize_handles_zeros_and_nan() {
        let mut v = vec![0.0, 0.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.5, 0.5]);
        let mut v = vec![1.0, f64::NAN, 3.0];
        normalize(&mut v);
        assert_eq!(v, vec![0.25, 0.0, 0.75]);
    }
}
