//! Split criteria, split suggestions and the tests branches apply.

use serde::{Deserialize, Serialize};

use crate::classifier::vec_bytes;

/// How good a split is, as River's `InfoGainSplitCriterion`,
/// `GiniSplitCriterion` and `HellingerDistanceCriterion` compute it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SplitCriterion {
    /// Entropy before minus weighted entropy after (bits); range `log2(c)`.
    InfoGain,
    /// One minus the weighted Gini impurity after the split; range 1.
    Gini,
    /// Hellinger distance between the branch distributions of classes 0
    /// and 1 (meant for imbalanced binary problems); range `log2(c)`.
    Hellinger,
}

impl SplitCriterion {
    /// Merit of splitting `pre` (class weights at the leaf) into the
    /// branches of `post`, stored flat: branch `b` is
    /// `post[b*nc .. (b+1)*nc]`. `-inf` when fewer than two branches carry
    /// more than `min_branch_fraction` of the weight.
    pub fn merit(self, pre: &[f64], post: &[f64], nc: usize, min_branch_fraction: f64) -> f64 {
        if nc == 0 || post.len() < nc {
            return f64::NEG_INFINITY;
        }
        // Branch sums first, then their total: River's order of additions.
        let mut total = 0.0;
        for b in post.chunks_exact(nc) {
            total += b.iter().sum::<f64>();
        }
        let mut big = 0;
        if total > 0.0 {
            for b in post.chunks_exact(nc) {
                if b.iter().sum::<f64>() / total > min_branch_fraction {
                    big += 1;
                }
            }
        }
        if big < 2 {
            return f64::NEG_INFINITY;
        }
        match self {
            SplitCriterion::InfoGain => {
                let mut after = 0.0;
                for b in post.chunks_exact(nc) {
                    let w: f64 = b.iter().sum();
                    after += w * entropy(b);
                }
                entropy(pre) - after / total
            }
            SplitCriterion::Gini => {
                let mut g = 0.0;
                for b in post.chunks_exact(nc) {
                    let w: f64 = b.iter().sum();
                    g += (w / total) * gini(b, w);
                }
                1.0 - g
            }
            SplitCriterion::Hellinger => {
                if nc < 2 || post.len() < 2 * nc {
                    return 0.0;
                }
                let (ln, lp, rn, rp) = (post[0], post[1], post[nc], post[nc + 1]);
                // River reads classes 0 and 1 of the first two branches and
                // scores 0 when one of them is absent.
                if ln <= 0.0 || lp <= 0.0 || rn <= 0.0 || rp <= 0.0 {
                    return 0.0;
                }
                let (tn, tp) = (ln + rn, lp + rp);
                let h = ((ln / tn).sqrt() - (lp / tp).sqrt()).powi(2)
                    + ((rn / tn).sqrt() - (rp / tp).sqrt()).powi(2);
                h.sqrt()
            }
        }
    }

    /// Range of the merit, for the Hoeffding bound; `classes_seen` is the
    /// number of classes with weight at the leaf.
    pub fn range(self, classes_seen: usize) -> f64 {
        match self {
            SplitCriterion::Gini => 1.0,
            SplitCriterion::InfoGain | SplitCriterion::Hellinger => {
                (classes_seen.max(2) as f64).log2()
            }
        }
    }
}

/// Entropy in bits of a weight vector.
fn entropy(dist: &[f64]) -> f64 {
    let mut h = 0.0;
    let mut sum = 0.0;
    for &d in dist {
        if d > 0.0 {
            h -= d * d.log2();
            sum += d;
        }
    }
    if sum > 0.0 {
        (h + sum * sum.log2()) / sum
    } else {
        0.0
    }
}

fn gini(dist: &[f64], sum: f64) -> f64 {
    let mut g = 1.0;
    if sum != 0.0 {
        for &d in dist {
            let f = d / sum;
            g -= f * f;
        }
    }
    g
}

/// The Hoeffding bound `sqrt(R² ln(1/δ) / 2n)`: with probability `1-δ` the
/// true mean of a variable of range `R` is within it of the mean of `n`
/// observations.
pub fn hoeffding_bound(range: f64, delta: f64, n: f64) -> f64 {
    (range * range * (1.0 / delta).ln() / (2.0 * n)).sqrt()
}

/// The test a branch applies to route a sample to a child.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SplitTest {
    /// `x[feature] <= threshold` goes to child 0, else child 1.
    NumericBinary { feature: usize, threshold: f64 },
    /// `x[feature] == value` goes to child 0, else child 1.
    NominalBinary { feature: usize, value: usize },
    /// One child per category; `slots[value]` is the child index
    /// (`u32::MAX` for a category not seen when the split was made).
    NominalMultiway { feature: usize, slots: Vec<u32> },
}

/// Largest nominal category index the trees accept; larger or non-integer
/// codes read as missing (they would otherwise size dense tables).
pub const MAX_NOMINAL_VALUE: usize = 1 << 16;

/// A nominal code as an index, `None` if missing or not a valid code.
#[inline]
pub fn nominal_index(v: f64) -> Option<usize> {
    if v.is_finite() && v >= 0.0 && v.fract() == 0.0 && v < MAX_NOMINAL_VALUE as f64 {
        Some(v as usize)
    } else {
        None
    }
}

/// Where a sample goes at a branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    /// To this child index.
    Child(usize),
    /// The feature is missing (NaN, past the end, or an invalid code).
    Missing,
    /// A category the multiway split has no child for yet.
    NewValue(usize),
}

impl SplitTest {
    pub fn feature(&self) -> usize {
        match self {
            SplitTest::NumericBinary { feature, .. }
            | SplitTest::NominalBinary { feature, .. }
            | SplitTest::NominalMultiway { feature, .. } => *feature,
        }
    }

    /// Route of `x` through this test.
    #[inline]
    pub fn route(&self, x: &[f64]) -> Route {
        match self {
            SplitTest::NumericBinary { feature, threshold } => {
                let v = crate::classifier::feature(x, *feature);
                if v.is_nan() {
                    Route::Missing
                } else if v <= *threshold {
                    Route::Child(0)
                } else {
                    Route::Child(1)
                }
            }
            SplitTest::NominalBinary { feature, value } => {
                match nominal_index(crate::classifier::feature(x, *feature)) {
                    None => Route::Missing,
                    Some(v) if v == *value => Route::Child(0),
                    Some(_) => Route::Child(1),
                }
            }
            SplitTest::NominalMultiway { feature, slots } => {
                match nominal_index(crate::classifier::feature(x, *feature)) {
                    None => Route::Missing,
                    Some(v) => match slots.get(v) {
                        Some(&s) if s != u32::MAX => Route::Child(s as usize),
                        _ => Route::NewValue(v),
                    },
                }
            }
        }
    }

    /// Give category `value` of a multiway split the child `child`.
    pub fn add_slot(&mut self, value: usize, child: usize) {
        if let SplitTest::NominalMultiway { slots, .. } = self {
            if slots.len() <= value {
                slots.resize(value + 1, u32::MAX);
            }
            slots[value] = child as u32;
        }
    }

    /// Whether this test can route into `n_children` children (checked on
    /// snapshots from elsewhere).
    pub fn is_consistent(&self, n_children: usize) -> bool {
        match self {
            SplitTest::NumericBinary { .. } | SplitTest::NominalBinary { .. } => n_children == 2,
            SplitTest::NominalMultiway { slots, .. } => {
                n_children > 0
                    && slots
                        .iter()
                        .all(|&s| s == u32::MAX || (s as usize) < n_children)
            }
        }
    }

    pub fn heap_bytes(&self) -> usize {
        match self {
            SplitTest::NominalMultiway { slots, .. } => vec_bytes(slots),
            _ => 0,
        }
    }
}

/// A candidate split of a leaf: its merit, the test, and the class weights
/// each branch would start with. The null suggestion (no split) has no test.
#[derive(Clone, Debug)]
pub struct Suggestion {
    pub merit: f64,
    pub test: Option<SplitTest>,
    /// Class weights per branch (dense, one vector per child).
    pub children: Vec<Vec<f64>>,
    /// Per branch, the classes River's branch dictionary would hold, in its
    /// key order (it decides ties between equally weighted classes).
    pub children_keys: Vec<Vec<u32>>,
}

impl Suggestion {
    /// "Do not split", with River's merit of `-inf`.
    pub fn null() -> Self {
        Suggestion {
            merit: f64::NEG_INFINITY,
            test: None,
            children: Vec::new(),
            children_keys: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_gain_of_a_perfect_split_is_the_entropy() {
        let pre = [50.0, 50.0];
        let post = [50.0, 0.0, 0.0, 50.0];
        let m = SplitCriterion::InfoGain.merit(&pre, &post, 2, 0.01);
        assert!((m - 1.0).abs() < 1e-12);
        let g = SplitCriterion::Gini.merit(&pre, &post, 2, 0.01);
        assert!((g - 1.0).abs() < 1e-12);
        // One branch with nearly everything: not a valid split.
        let lopsided = [50.0, 50.0, 0.0, 0.5];
        assert_eq!(
            SplitCriterion::InfoGain.merit(&pre, &lopsided, 2, 0.01),
            f64::NEG_INFINITY
        );
    }

    #[test]
    fn routes_missing_and_new_values() {
        let t = SplitTest::NumericBinary {
            feature: 1,
            threshold: 0.5,
        };
        assert_eq!(t.route(&[9.0, 0.5]), Route::Child(0));
        assert_eq!(t.route(&[9.0, f64::INFINITY]), Route::Child(1));
        assert_eq!(t.route(&[9.0, f64::NAN]), Route::Missing);
        assert_eq!(t.route(&[9.0]), Route::Missing);
        let mut m = SplitTest::NominalMultiway {
            feature: 0,
            slots: vec![0, u32::MAX, 1],
        };
        assert_eq!(m.route(&[2.0]), Route::Child(1));
        assert_eq!(m.route(&[1.0]), Route::NewValue(1));
        assert_eq!(m.route(&[7.0]), Route::NewValue(7));
        assert_eq!(m.route(&[-1.0]), Route::Missing);
        assert_eq!(m.route(&[0.5]), Route::Missing);
        m.add_slot(7, 2);
        assert_eq!(m.route(&[7.0]), Route::Child(2));
    }
}
