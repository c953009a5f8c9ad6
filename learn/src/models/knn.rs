//! k nearest neighbours over a sliding window, as River's
//! `neighbors.KNNClassifier` with its exact `LazySearch` engine (the
//! classic lazy learner; see Bifet et al. 2018, "Machine Learning for Data
//! Streams", ch. 6). River's default engine is the approximate SWINN graph
//! (exact for its first 500 samples); this one is always exact.
//!
//! The window is a ring buffer of the last `window_size` samples, stored
//! flat in one `Vec<f64>` (row = sample); prediction is a linear scan. At
//! River's window of 1000 a scan is a few microseconds, so no index is kept.
//!
//! Parameters (spec `knn`), River's defaults:
//! - `n_neighbors = 5`; with fewer samples in the window, all of them vote;
//! - `window_size = 1000`;
//! - `p = 2`: Minkowski exponent, distance `(Σ |a_i - b_i|^p)^(1/p)`. At
//!   `p = 2` this is River 0.26's Euclidean distance, root included (older
//!   River versions left the root out, which changes the inverse-distance
//!   weights);
//! - `weighted = true`: a neighbour votes `1 / distance` (else 1). If the
//!   nearest neighbour is an exact match (distance 0) its class gets
//!   probability 1, as in River. Votes are normalised by their sum
//!   (River's `softmax=False`).
//!
//! Matching River 0.26 sample for sample (checked with
//! `bench/compare_river.sh --models knn`):
//! - neighbours are ordered by distance, ties by age (older first), as
//!   River's sort by `(distance, position in the window)`;
//! - a missing (`NaN`) numeric value counts as 0, as an absent key of
//!   River's feature dicts does: it adds the other side's value to the
//!   distance; missing on both sides adds nothing. The terms are summed in
//!   River's order (the query's present features first, then the ones only
//!   the stored sample has), so even ties come out the same;
//! - every class learnt so far is in the output, with 0 when no neighbour
//!   votes for it.
//!
//! Where River defines nothing: a nominal feature (per the schema's nominal
//! mask) contributes 0 when equal and 1 when not (River cannot take text
//! in a distance); an infinite value is stored as missing. When every
//! neighbour is infinitely far (huge values) the votes fall back to uniform
//! weights.

use serde::{Deserialize, Serialize};

use crate::classifier::{feature, normalize, vec_bytes, Classifier};
use crate::models::naive_bayes::MAX_CLASSES;
use crate::schema::Schema;

/// Exact-match threshold: a distance this small would overflow `1 / d`.
const TINY: f64 = 1e-300;

/// k-NN over a sliding window. See the module docs for parameters.
/// Snapshots are checked when deserialised (shapes agree, parameters in
/// the ranges the spec accepts), so a malformed one is an error.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "KnnState")]
pub struct Knn {
    n_neighbors: usize,
    window_size: usize,
    p: f64,
    weighted: bool,
    /// Which features are nominal; features past the end are numeric.
    nominal: Vec<bool>,
    /// Features per stored row; grows with the stream.
    stride: usize,
    /// `len × stride` values, missing values stored as `NaN` (written as
    /// `null` in JSON).
    #[serde(with = "nan_as_none")]
    data: Vec<f64>,
    labels: Vec<u32>,
    /// Next row to overwrite once the window is full.
    head: usize,
    n_classes: usize,
}

impl Knn {
    /// A k-NN for `schema`'s features (its nominal mask).
    pub fn new(
        schema: &Schema,
        n_neighbors: usize,
        window_size: usize,
        p: f64,
        weighted: bool,
    ) -> Self {
        Knn {
            n_neighbors: n_neighbors.max(1),
            window_size: window_size.max(1),
            p,
            weighted,
            nominal: schema.nominal_mask(),
            stride: 0,
            data: Vec::new(),
            labels: Vec::new(),
            head: 0,
            n_classes: 0,
        }
    }

    /// Number of samples in the window.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the window is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Widen every stored row to `stride` features (new ones missing).
    fn widen(&mut self, stride: usize) {
        let old = self.stride;
        let mut data = Vec::with_capacity(self.len() * stride);
        for row in 0..self.len() {
            data.extend_from_slice(&self.data[row * old..(row + 1) * old]);
            data.resize((row + 1) * stride, f64::NAN);
        }
        self.data = data;
        self.stride = stride;
    }

    /// One term of the distance sum for `|a - b|`.
    #[inline]
    /// Whether a query can take the Euclidean fast path of
    /// [`Knn::distance`]: p = 2, no nominal feature, and a complete query
    /// exactly as wide as the stored rows.
    fn plain_query(&self, x: &[f64], x_complete: bool) -> bool {
        x_complete && self.p == 2.0 && x.len() == self.stride && !self.nominal.contains(&true)
    }

    fn term(&self, diff: f64) -> f64 {
        if self.p == 2.0 {
            diff * diff
        } else if self.p == 1.0 {
            diff
        } else {
            diff.powf(self.p)
        }
    }

    /// Distance from stored `row` to query `x`; `x_complete` says that no
    /// feature of `x` (up to the stride) is missing, which skips River's
    /// second pass; `plain` (see [`Knn::plain_query`]) takes the one-loop
    /// Euclidean path.
    #[inline]
    fn distance(&self, row: &[f64], x: &[f64], x_complete: bool, plain: bool) -> f64 {
        if plain {
            // The common case in one tight loop: the same terms, added in
            // the same order, as the general passes below.
            let mut d = 0.0;
            for (&a, &b) in row.iter().zip(x) {
                let a = if a.is_finite() { a } else { 0.0 };
                let t = b - a;
                d += t * t;
            }
            return d.sqrt();
        }
        let mut d = 0.0;
        // River's first pass: the query's present features, in order; a
        // stored value that is missing counts as 0.
        for (i, &a) in row.iter().enumerate() {
            let b = feature(x, i);
            if !b.is_finite() {
                continue;
            }
            if self.nominal.get(i).copied().unwrap_or(false) {
                if a.is_finite() && a != b {
                    d += 1.0;
                }
                continue;
            }
            let a = if a.is_finite() { a } else { 0.0 };
            d += self.term((b - a).abs());
        }
        // Query features the window has not seen yet: stored as 0.
        for (i, &b) in x.iter().enumerate().skip(row.len()) {
            if b.is_finite() && !self.nominal.get(i).copied().unwrap_or(false) {
                d += self.term(b.abs());
            }
        }
        // Second pass: features only the stored sample has.
        if !x_complete {
            for (i, &a) in row.iter().enumerate() {
                if feature(x, i).is_finite()
                    || !a.is_finite()
                    || self.nominal.get(i).copied().unwrap_or(false)
                {
                    continue;
                }
                d += self.term(a.abs());
            }
        }
        if self.p == 2.0 {
            d.sqrt()
        } else if self.p == 1.0 {
            d
        } else {
            d.powf(1.0 / self.p)
        }
    }
}

impl Classifier for Knn {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        // River's k-NN has no sample weights; a sample is stored or not.
        if !(weight.is_finite() && weight > 0.0) || y >= MAX_CLASSES {
            return;
        }
        if x.len() > self.stride {
            self.widen(x.len());
        }
        self.n_classes = self.n_classes.max(y + 1);
        let s = self.stride;
        let row = (0..s).map(|i| {
            let v = feature(x, i);
            if v.is_finite() {
                v
            } else {
                f64::NAN
            }
        });
        if self.len() < self.window_size {
            self.data.extend(row);
            self.labels.push(y as u32);
        } else {
            let at = self.head;
            for (dst, v) in self.data[at * s..(at + 1) * s].iter_mut().zip(row) {
                *dst = v;
            }
            self.labels[at] = y as u32;
            self.head = (at + 1) % self.window_size;
        }
    }

    /// `out` doubles as scratch: the k best `(distance, label)` pairs live
    /// past the class slots while scanning, so no allocation happens once
    /// `out` has grown.
    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        let nc = self.n_classes;
        out.clear();
        out.resize(nc, 0.0);
        let k = self.n_neighbors.min(self.len());
        if k == 0 {
            return;
        }
        // Rows are scanned oldest first so that ties go to the older sample,
        // as River's stable sort over its deque does.
        let s = self.stride;
        let n = self.len();
        let start = if n < self.window_size { 0 } else { self.head };
        let x_complete = (0..s).all(|i| feature(x, i).is_finite());
        let plain = self.plain_query(x, x_complete);
        let mut found = 0usize;
        for j in 0..n {
            let r = (start + j) % n;
            let d = self.distance(&self.data[r * s..(r + 1) * s], x, x_complete, plain);
            let label = self.labels[r] as f64;
            if found < k {
                out.push(d);
                out.push(label);
                found += 1;
            } else if d < out[nc + 2 * (k - 1)] {
                out[nc + 2 * (k - 1)] = d;
                out[nc + 2 * (k - 1) + 1] = label;
            } else {
                continue;
            }
            // Insertion step keeps the pairs sorted by distance (stable).
            let mut at = found - 1;
            while at > 0 && out[nc + 2 * at] < out[nc + 2 * (at - 1)] {
                out.swap(nc + 2 * at, nc + 2 * (at - 1));
                out.swap(nc + 2 * at + 1, nc + 2 * (at - 1) + 1);
                at -= 1;
            }
        }
        let nearest = out[nc];
        if nearest <= TINY {
            let y = out[nc + 1] as usize;
            out.truncate(nc);
            out.iter_mut().for_each(|o| *o = 0.0);
            if let Some(o) = out.get_mut(y) {
                *o = 1.0;
            }
            return;
        }
        let mut all_far = self.weighted;
        for j in 0..k {
            let d = out[nc + 2 * j];
            let y = out[nc + 2 * j + 1] as usize;
            let vote = if self.weighted { 1.0 / d } else { 1.0 };
            if vote > 0.0 {
                all_far = false;
            }
            if y < nc {
                out[y] += vote;
            }
        }
        if all_far {
            for j in 0..k {
                let y = out[nc + 2 * j + 1] as usize;
                if y < nc {
                    out[y] += 1.0;
                }
            }
        }
        out.truncate(nc);
        normalize(out);
    }

    fn n_classes(&self) -> usize {
        self.n_classes
    }

    fn memory_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + vec_bytes(&self.nominal)
            + vec_bytes(&self.data)
            + vec_bytes(&self.labels)
    }
}

/// The serialised form of [`Knn`], checked before it becomes one.
#[derive(Deserialize)]
struct KnnState {
    n_neighbors: usize,
    window_size: usize,
    p: f64,
    weighted: bool,
    nominal: Vec<bool>,
    stride: usize,
    #[serde(with = "nan_as_none")]
    data: Vec<f64>,
    labels: Vec<u32>,
    head: usize,
    n_classes: usize,
}

impl TryFrom<KnnState> for Knn {
    type Error = String;

    fn try_from(s: KnnState) -> Result<Self, String> {
        let params_ok = (1..=1000).contains(&s.n_neighbors)
            && (1..=1_000_000).contains(&s.window_size)
            && s.p.is_finite()
            && (1e-3..=100.0).contains(&s.p);
        let shape_ok = s.labels.len() <= s.window_size
            && s.labels.len().checked_mul(s.stride) == Some(s.data.len())
            && s.head < s.window_size
            && (s.head == 0 || s.labels.len() == s.window_size)
            && s.n_classes <= MAX_CLASSES
            && s.labels.iter().all(|&y| (y as usize) < s.n_classes)
            && s.data.iter().all(|v| !v.is_infinite());
        if !(params_ok && shape_ok) {
            return Err("knn: snapshot is malformed".into());
        }
        Ok(Knn {
            n_neighbors: s.n_neighbors,
            window_size: s.window_size,
            p: s.p,
            weighted: s.weighted,
            nominal: s.nominal,
            stride: s.stride,
            data: s.data,
            labels: s.labels,
            head: s.head,
            n_classes: s.n_classes,
        })
    }
}

/// JSON has no NaN: missing values travel as `null`.
mod nan_as_none {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[f64], s: S) -> Result<S::Ok, S::Error> {
        let opt: Vec<Option<f64>> = v.iter().map(|&x| x.is_finite().then_some(x)).collect();
        opt.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
        let opt = Vec::<Option<f64>>::deserialize(d)?;
        Ok(opt.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use crate::schema::Feature;

    fn knn(k: usize, window: usize) -> Knn {
        Knn::new(&Schema::numeric(2, &[]), k, window, 2.0, true)
    }

    #[test]
    fn euclidean_fast_path_gives_the_general_distance() {
        let mut m = Knn::new(&Schema::numeric(6, &[]), 3, 10, 2.0, true);
        m.learn_one(&[0.0; 6], 0, 1.0);
        let mut rng = Rng::new(11);
        for _ in 0..2000 {
            let row: Vec<f64> = (0..6)
                .map(|_| {
                    if rng.next_f64() < 0.2 {
                        f64::NAN
                    } else {
                        (rng.next_f64() - 0.5) * 1e3
                    }
                })
                .collect();
            let x: Vec<f64> = (0..6).map(|_| (rng.next_f64() - 0.5) * 1e3).collect();
            assert!(m.plain_query(&x, true));
            let fast = m.distance(&row, &x, true, true);
            let general = m.distance(&row, &x, true, false);
            assert_eq!(fast.to_bits(), general.to_bits(), "{row:?} {x:?}");
        }
    }

    #[test]
    fn votes_by_inverse_distance() {
        let mut m = knn(3, 100);
        m.learn_one(&[0.0, 0.0], 0, 1.0);
        m.learn_one(&[1.0, 0.0], 1, 1.0);
        m.learn_one(&[3.0, 0.0], 1, 1.0);
        m.learn_one(&[9.0, 0.0], 2, 1.0);
        let p = m.predict_proba_one(&[0.5, 0.0]);
        // Distances 0.5, 0.5, 2.5 → votes 2 and 2 + 0.4.
        let total = 2.0 + 2.0 + 0.4;
        assert!((p[0] - 2.0 / total).abs() < 1e-12);
        assert!((p[1] - 2.4 / total).abs() < 1e-12);
        assert_eq!(p[2], 0.0);
        // Exact match wins outright.
        assert_eq!(m.predict_proba_one(&[9.0, 0.0]), vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn window_forgets_old_samples() {
        let mut m = knn(1, 3);
        for y in [0, 0, 0, 1, 1, 1] {
            m.learn_one(&[y as f64 * 0.01, 0.0], y, 1.0);
        }
        assert_eq!(m.len(), 3);
        assert_eq!(m.predict_one(&[0.0, 0.0]), Some(1));
    }

    #[test]
    fn missing_nominal_and_growing_features() {
        let schema = Schema {
            features: vec![
                Feature::nominal("c", vec!["a".into(), "b".into()]),
                Feature::numeric("v"),
            ],
            classes: vec![],
            target: "y".into(),
        };
        let mut m = Knn::new(&schema, 1, 10, 2.0, true);
        m.learn_one(&[0.0, 10.0], 0, 1.0);
        m.learn_one(&[1.0, 10.5], 1, 1.0);
        // Nominal mismatch costs 1, the numeric gap 0.5: class 1 is nearer.
        assert_eq!(m.predict_one(&[1.0, 10.0]), Some(1));
        m.learn_one(&[0.0, f64::NAN, 7.0], 2, 1.0);
        assert_eq!(m.predict_one(&[0.0, 0.5, 7.1]), Some(2));
        // A missing value counts as 0, as River's absent keys do: the
        // query's 99 is 99 away from the third sample, which makes the
        // second one (88.5 and 7.1 apart, nominal mismatch 1) the nearest.
        assert_eq!(m.predict_one(&[0.0, 99.0, 7.1]), Some(1));
        // Missing in the query: the stored values count in full, so the
        // third sample (7 away) beats the first (10 away).
        let p = m.predict_proba_one(&[0.0, f64::NAN, f64::NAN]);
        assert_eq!(p, vec![0.0, 0.0, 1.0]);
        for x in [vec![f64::INFINITY; 3], vec![1e300, -1e300], vec![]] {
            let p = m.predict_proba_one(&x);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{p:?}");
        }
    }

    #[test]
    fn snapshots_round_trip_and_malformed_ones_are_refused() {
        let mut m = knn(2, 3);
        for t in 0..5 {
            m.learn_one(&[t as f64, f64::NAN], t % 2, 1.0);
        }
        let good = serde_json::to_string(&m).unwrap();
        let back: Knn = serde_json::from_str(&good).unwrap();
        assert_eq!(
            back.predict_proba_one(&[1.2, 0.0]),
            m.predict_proba_one(&[1.2, 0.0])
        );
        let bad = good.replacen("\"stride\":2", "\"stride\":3", 1);
        assert_ne!(bad, good);
        assert!(serde_json::from_str::<Knn>(&bad).is_err());
    }

    #[test]
    fn learns_a_separable_concept() {
        let mut m = knn(5, 1000);
        let mut rng = Rng::new(3);
        let mut hits = 0;
        for _ in 0..1000 {
            let (a, b) = (rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0));
            let y = usize::from(a > b);
            hits += usize::from(m.predict_one(&[a, b]) == Some(y));
            m.learn_one(&[a, b], y, 1.0);
        }
        assert!(hits > 900, "{hits}");
    }
}
