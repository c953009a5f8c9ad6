//! Prequential classification metrics, cumulative ([`Metrics`]) and over a
//! sliding window of the last `w` samples ([`WindowMetrics`]).
//!
//! Both take one `(true class, predicted probabilities)` pair per sample and
//! report accuracy, balanced accuracy, Cohen's kappa, Kappa-M (against the
//! majority class), Kappa-T (against predicting the previous label), macro
//! F1, log loss and ROC AUC (one-vs-rest macro average for more than two
//! classes). Classes may appear at any time.
//!
//! Costs per update: O(1) besides growing to new classes for the counts;
//! AUC is O(1) per class for the cumulative version (scores are binned on a
//! logit scale, [`AUC_BINS`] bins, so ties within one bin count as half) and
//! O(1) for the windowed one, which keeps the window's scores and sorts them
//! when asked: the prequential AUC of Brzezinski & Stefanowski 2017
//! ("Prequential AUC: properties of the area under the ROC curve for data
//! streams with concept drift"), O(w log w) per query.
//!
//! Definitions follow River where it has the metric: kappa is 0 when chance
//! agreement is 1; Kappa-M uses the majority class of the samples seen (or
//! of the window); macro F1 averages over every class seen as truth or
//! prediction; log loss clips probabilities to `[1e-15, 1]`; a sample with no
//! prediction (an untrained model) counts as wrong.

use std::collections::VecDeque;

use crate::classifier::argmax;

/// Bins of the cumulative AUC histograms (on the logit of the score).
pub const AUC_BINS: usize = 1024;
/// Logit range covered by the bins; scores beyond fall in the end bins.
const LOGIT_RANGE: f64 = 16.0;
const EPS: f64 = 1e-15;

/// Bin of a probability on a logit scale, so that scores near 0 and 1 keep
/// their order.
fn auc_bin(p: f64) -> usize {
    let p = if p.is_finite() {
        p.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let logit = (p.max(EPS) / (1.0 - p).max(EPS)).ln();
    let u = (logit + LOGIT_RANGE) / (2.0 * LOGIT_RANGE);
    ((u * AUC_BINS as f64) as isize).clamp(0, AUC_BINS as isize - 1) as usize
}

/// Counts behind every metric but AUC, for samples that can be added and
/// removed (a window removes its oldest).
#[derive(Clone, Debug, Default)]
struct Counts {
    n: f64,
    correct: f64,
    /// Samples whose label equals the previous one (Kappa-T's no-change).
    no_change_correct: f64,
    log_loss: f64,
    /// Per class: times it was the truth, the prediction, and both.
    truth: Vec<f64>,
    predicted: Vec<f64>,
    hit: Vec<f64>,
}

/// One evaluated sample, as a window remembers it.
#[derive(Clone, Debug)]
struct Entry {
    y: usize,
    pred: Option<usize>,
    no_change_correct: bool,
    loss: f64,
}

impl Counts {
    fn grow(&mut self, k: usize) {
        if self.truth.len() < k {
            self.truth.resize(k, 0.0);
            self.predicted.resize(k, 0.0);
            self.hit.resize(k, 0.0);
        }
    }

    fn apply(&mut self, e: &Entry, sign: f64) {
        let k = e.y.max(e.pred.unwrap_or(0)) + 1;
        self.grow(k);
        self.n += sign;
        self.log_loss += sign * e.loss;
        self.truth[e.y] += sign;
        if e.no_change_correct {
            self.no_change_correct += sign;
        }
        if let Some(p) = e.pred {
            self.predicted[p] += sign;
            if p == e.y {
                self.correct += sign;
                self.hit[p] += sign;
            }
        }
    }

    fn accuracy(&self) -> f64 {
        ratio(self.correct, self.n)
    }

    fn kappa(&self) -> f64 {
        if self.n <= 0.0 {
            return 0.0;
        }
        let p0 = self.correct / self.n;
        let pe: f64 = self
            .truth
            .iter()
            .zip(&self.predicted)
            .map(|(t, p)| t * p)
            .sum::<f64>()
            / (self.n * self.n);
        kappa_of(p0, pe)
    }

    fn kappa_m(&self) -> f64 {
        if self.n <= 0.0 {
            return 0.0;
        }
        let majority = self.truth.iter().copied().fold(0.0, f64::max) / self.n;
        kappa_of(self.accuracy(), majority)
    }

    fn kappa_t(&self) -> f64 {
        if self.n <= 0.0 {
            return 0.0;
        }
        kappa_of(self.accuracy(), self.no_change_correct / self.n)
    }

    fn balanced_accuracy(&self) -> f64 {
        let (sum, k) = self
            .truth
            .iter()
            .zip(&self.hit)
            .filter(|(t, _)| **t > 0.0)
            .fold((0.0, 0usize), |(s, k), (t, h)| (s + h / t, k + 1));
        ratio(sum, k as f64)
    }

    fn macro_f1(&self) -> f64 {
        let mut sum = 0.0;
        let mut k = 0usize;
        for c in 0..self.truth.len() {
            let denom = self.truth[c] + self.predicted[c];
            if denom > 0.0 {
                sum += 2.0 * self.hit[c] / denom;
                k += 1;
            }
        }
        ratio(sum, k as f64)
    }

    fn log_loss(&self) -> f64 {
        ratio(self.log_loss, self.n)
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// `(p0 - pe) / (1 - pe)`, 0 when `pe` is 1.
fn kappa_of(p0: f64, pe: f64) -> f64 {
    if (1.0 - pe).abs() < 1e-12 {
        0.0
    } else {
        (p0 - pe) / (1.0 - pe)
    }
}

/// Builds the [`Entry`] of a sample and remembers the previous label.
#[derive(Clone, Debug, Default)]
struct Tracker {
    last_y: Option<usize>,
}

impl Tracker {
    fn entry(&mut self, y: usize, proba: &[f64]) -> Entry {
        let p_true = proba.get(y).copied().unwrap_or(0.0);
        let p_true = if p_true.is_finite() {
            p_true.clamp(EPS, 1.0)
        } else {
            EPS
        };
        let e = Entry {
            y,
            pred: argmax(proba),
            no_change_correct: self.last_y == Some(y),
            loss: -p_true.ln(),
        };
        self.last_y = Some(y);
        e
    }
}

/// A snapshot of every metric, as reported.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub n: u64,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub kappa: f64,
    pub kappa_m: f64,
    pub kappa_t: f64,
    pub macro_f1: f64,
    pub log_loss: f64,
    /// ROC AUC (macro one-vs-rest for more than two classes); `None` until
    /// a class has both positive and negative samples.
    pub auc: Option<f64>,
}

/// Cumulative metrics over every sample seen.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    counts: Counts,
    tracker: Tracker,
    /// Per class: histograms of that class's score for its positives and
    /// for its negatives.
    pos: Vec<Vec<f64>>,
    neg: Vec<Vec<f64>>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// Add one sample: its true class and the predicted probabilities.
    pub fn update(&mut self, y: usize, proba: &[f64]) {
        let e = self.tracker.entry(y, proba);
        self.counts.apply(&e, 1.0);
        let k = self.counts.truth.len().max(proba.len());
        while self.pos.len() < k {
            // A class appearing late had score 0 on every earlier sample,
            // all negatives for it.
            let mut neg = vec![0.0; AUC_BINS];
            neg[auc_bin(0.0)] = self.counts.n - 1.0;
            self.pos.push(vec![0.0; AUC_BINS]);
            self.neg.push(neg);
        }
        for c in 0..k {
            let bin = auc_bin(proba.get(c).copied().unwrap_or(0.0));
            if c == y {
                self.pos[c][bin] += 1.0;
            } else {
                self.neg[c][bin] += 1.0;
            }
        }
    }

    pub fn n(&self) -> u64 {
        self.counts.n as u64
    }

    pub fn accuracy(&self) -> f64 {
        self.counts.accuracy()
    }

    pub fn kappa(&self) -> f64 {
        self.counts.kappa()
    }

    pub fn kappa_m(&self) -> f64 {
        self.counts.kappa_m()
    }

    pub fn kappa_t(&self) -> f64 {
        self.counts.kappa_t()
    }

    pub fn balanced_accuracy(&self) -> f64 {
        self.counts.balanced_accuracy()
    }

    pub fn macro_f1(&self) -> f64 {
        self.counts.macro_f1()
    }

    pub fn log_loss(&self) -> f64 {
        self.counts.log_loss()
    }

    /// ROC AUC: for two classes, the AUC of class 1's score; for more, the
    /// mean one-vs-rest AUC over classes with positives and negatives.
    pub fn auc(&self) -> Option<f64> {
        let one = |c: usize| histogram_auc(&self.pos[c], &self.neg[c]);
        if self.pos.len() == 2 {
            return one(1);
        }
        mean((0..self.pos.len()).filter_map(one))
    }

    pub fn summary(&self) -> Summary {
        summary(&self.counts, self.auc())
    }
}

fn summary(c: &Counts, auc: Option<f64>) -> Summary {
    Summary {
        n: c.n as u64,
        accuracy: c.accuracy(),
        balanced_accuracy: c.balanced_accuracy(),
        kappa: c.kappa(),
        kappa_m: c.kappa_m(),
        kappa_t: c.kappa_t(),
        macro_f1: c.macro_f1(),
        log_loss: c.log_loss(),
        auc,
    }
}

fn mean(it: impl Iterator<Item = f64>) -> Option<f64> {
    let (s, k) = it.fold((0.0, 0usize), |(s, k), v| (s + v, k + 1));
    (k > 0).then(|| s / k as f64)
}

/// AUC from score histograms: P(positive scores above negative) + half the
/// ties.
fn histogram_auc(pos: &[f64], neg: &[f64]) -> Option<f64> {
    let (np, nn): (f64, f64) = (pos.iter().sum(), neg.iter().sum());
    if np <= 0.0 || nn <= 0.0 {
        return None;
    }
    let mut below = 0.0; // negatives in lower bins
    let mut area = 0.0;
    for (p, n) in pos.iter().zip(neg) {
        area += p * (below + 0.5 * n);
        below += n;
    }
    Some(area / (np * nn))
}

/// Exact AUC of `(score, is_positive)` pairs, ties counted as half.
fn exact_auc(pairs: &mut [(f64, bool)]) -> Option<f64> {
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let np = pairs.iter().filter(|p| p.1).count() as f64;
    let nn = pairs.len() as f64 - np;
    if np == 0.0 || nn == 0.0 {
        return None;
    }
    let (mut below, mut area, mut i) = (0.0, 0.0, 0);
    while i < pairs.len() {
        let mut j = i;
        let (mut tp, mut tn) = (0.0, 0.0);
        while j < pairs.len() && pairs[j].0 == pairs[i].0 {
            if pairs[j].1 {
                tp += 1.0;
            } else {
                tn += 1.0;
            }
            j += 1;
        }
        area += tp * (below + 0.5 * tn);
        below += tn;
        i = j;
    }
    Some(area / (np * nn))
}

/// Metrics over the last `window` samples.
#[derive(Clone, Debug)]
pub struct WindowMetrics {
    window: usize,
    counts: Counts,
    tracker: Tracker,
    entries: VecDeque<Entry>,
    /// Scores of each window sample, aligned with `entries`.
    scores: VecDeque<Vec<f64>>,
}

impl WindowMetrics {
    /// A window of `window` samples (at least 1).
    pub fn new(window: usize) -> Self {
        let window = window.max(1);
        WindowMetrics {
            window,
            counts: Counts::default(),
            tracker: Tracker::default(),
            entries: VecDeque::with_capacity(window),
            scores: VecDeque::with_capacity(window),
        }
    }

    pub fn window(&self) -> usize {
        self.window
    }

    /// Add one sample, forgetting the oldest when the window is full.
    pub fn update(&mut self, y: usize, proba: &[f64]) {
        if self.entries.len() == self.window {
            if let Some(old) = self.entries.pop_front() {
                self.counts.apply(&old, -1.0);
            }
            // Reuse the evicted buffer for the new scores.
            let mut buf = self.scores.pop_front().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(proba);
            self.scores.push_back(buf);
        } else {
            self.scores.push_back(proba.to_vec());
        }
        let e = self.tracker.entry(y, proba);
        self.counts.apply(&e, 1.0);
        self.entries.push_back(e);
    }

    pub fn n(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn accuracy(&self) -> f64 {
        self.counts.accuracy()
    }

    pub fn kappa(&self) -> f64 {
        self.counts.kappa()
    }

    pub fn kappa_m(&self) -> f64 {
        self.counts.kappa_m()
    }

    pub fn kappa_t(&self) -> f64 {
        self.counts.kappa_t()
    }

    pub fn balanced_accuracy(&self) -> f64 {
        self.counts.balanced_accuracy()
    }

    pub fn macro_f1(&self) -> f64 {
        self.counts.macro_f1()
    }

    pub fn log_loss(&self) -> f64 {
        self.counts.log_loss()
    }

    /// Prequential AUC over the window (binary: class 1's score; more
    /// classes: mean one-vs-rest AUC).
    pub fn auc(&self) -> Option<f64> {
        let k = self
            .entries
            .iter()
            .map(|e| e.y + 1)
            .chain(self.scores.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        let mut pairs = Vec::with_capacity(self.entries.len());
        let mut one = |c: usize| {
            pairs.clear();
            pairs.extend(
                self.entries
                    .iter()
                    .zip(&self.scores)
                    .map(|(e, s)| (s.get(c).copied().unwrap_or(0.0), e.y == c)),
            );
            exact_auc(&mut pairs)
        };
        if k == 2 {
            return one(1);
        }
        mean((0..k).filter_map(one))
    }

    pub fn summary(&self) -> Summary {
        summary(&self.counts, self.auc())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    /// Three classes; truth and predictions (one-hot-ish probabilities).
    fn feed(m: &mut Metrics, w: &mut WindowMetrics, data: &[(usize, usize)]) {
        for &(y, p) in data {
            let mut proba = vec![0.1; 3];
            proba[p] = 0.8;
            m.update(y, &proba);
            w.update(y, &proba);
        }
    }

    #[test]
    fn hand_computed_multiclass_values() {
        // truth: 0 0 0 1 1 2 ; pred: 0 0 1 1 2 2
        let data = [(0, 0), (0, 0), (0, 1), (1, 1), (1, 2), (2, 2)];
        let mut m = Metrics::new();
        let mut w = WindowMetrics::new(100);
        feed(&mut m, &mut w, &data);
        // accuracy 4/6
        assert!(close(m.accuracy(), 4.0 / 6.0));
        // truth counts (3,2,1), pred counts (2,2,2): pe = (6+4+2)/36 = 1/3
        // kappa = (2/3 - 1/3) / (2/3) = 0.5
        assert!(close(m.kappa(), 0.5));
        // majority share 3/6: kappa_m = (2/3 - 1/2) / (1/2) = 1/3
        assert!(close(m.kappa_m(), 1.0 / 3.0));
        // no-change correct: (0,0) (0,0) (1,1) = 3 of 6 -> 1/3
        assert!(close(m.kappa_t(), 1.0 / 3.0));
        // recalls 2/3, 1/2, 1 -> mean 13/18
        assert!(close(m.balanced_accuracy(), 13.0 / 18.0));
        // F1: class0 2*2/(3+2)=0.8, class1 2*1/(2+2)=0.5, class2 2*1/(1+2)=2/3
        assert!(close(m.macro_f1(), (0.8 + 0.5 + 2.0 / 3.0) / 3.0));
        // log loss: 4 samples with p=0.8, 2 with p=0.1
        let ll = (4.0 * -(0.8f64.ln()) + 2.0 * -(0.1f64.ln())) / 6.0;
        assert!(close(m.log_loss(), ll));
        // The window holds everything: same values.
        assert_eq!(
            (m.accuracy(), m.kappa(), m.kappa_t()),
            (w.accuracy(), w.kappa(), w.kappa_t())
        );
    }

    #[test]
    fn window_forgets_old_samples() {
        let mut m = Metrics::new();
        let mut w = WindowMetrics::new(2);
        feed(&mut m, &mut w, &[(0, 1), (0, 1), (1, 1), (0, 0)]);
        assert!(close(m.accuracy(), 0.5));
        assert!(close(w.accuracy(), 1.0));
        assert_eq!(w.n(), 2);
        // Window: truth (1, 0), pred (1, 0): pe = 1/2, kappa 1.
        assert!(close(w.kappa(), 1.0));
    }

    #[test]
    fn binary_auc_matches_hand_count() {
        // Scores of class 1 with labels: positives 0.9, 0.6, 0.4; negatives 0.7, 0.2.
        // Pairs pos>neg: 0.9>0.7,0.9>0.2,0.6>0.2,0.4>0.2 = 4 of 6.
        let data = [(0.9, 1), (0.7, 0), (0.6, 1), (0.4, 1), (0.2, 0)];
        let mut m = Metrics::new();
        let mut w = WindowMetrics::new(10);
        for &(s, y) in &data {
            m.update(y, &[1.0 - s, s]);
            w.update(y, &[1.0 - s, s]);
        }
        assert!(close(m.auc().expect("both classes"), 4.0 / 6.0));
        assert!(close(w.auc().expect("both classes"), 4.0 / 6.0));
        // Ties count half.
        let mut w = WindowMetrics::new(10);
        w.update(1, &[0.5, 0.5]);
        w.update(0, &[0.5, 0.5]);
        assert!(close(w.auc().expect("both"), 0.5));
    }

    #[test]
    fn windowed_auc_follows_the_window() {
        let mut w = WindowMetrics::new(4);
        // First a perfectly wrong ranking, then a perfect one.
        for &(s, y) in &[(0.9, 0), (0.1, 1), (0.8, 0), (0.2, 1)] {
            w.update(y, &[1.0 - s, s]);
        }
        assert!(close(w.auc().expect("both"), 0.0));
        for &(s, y) in &[(0.9, 1), (0.1, 0), (0.8, 1), (0.2, 0)] {
            w.update(y, &[1.0 - s, s]);
        }
        assert!(close(w.auc().expect("both"), 1.0));
    }

    #[test]
    fn multiclass_auc_is_one_vs_rest_mean() {
        let mut m = Metrics::new();
        let mut w = WindowMetrics::new(10);
        // Perfect ranking for every class.
        for (y, p) in [
            (0, [0.8, 0.1, 0.1]),
            (1, [0.1, 0.8, 0.1]),
            (2, [0.1, 0.1, 0.8]),
        ] {
            m.update(y, &p);
            w.update(y, &p);
        }
        assert!(close(m.auc().expect("three classes"), 1.0));
        assert!(close(w.auc().expect("three classes"), 1.0));
    }

    #[test]
    fn untrained_predictions_count_as_wrong_and_classes_grow() {
        let mut m = Metrics::new();
        m.update(0, &[]);
        m.update(3, &[1.0]);
        m.update(3, &[0.0, 0.0, 0.0, 1.0]);
        assert!(close(m.accuracy(), 1.0 / 3.0));
        assert!(m.log_loss() > 10.0);
        assert!(m.kappa().is_finite() && m.auc().is_some());
        let empty = Metrics::new();
        assert_eq!(empty.accuracy(), 0.0);
        assert_eq!(empty.auc(), None);
    }
}
