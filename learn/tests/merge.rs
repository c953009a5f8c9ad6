//! Properties of federated merging (`shoal_learn::merge`):
//!
//! - exact merge (naive Bayes): the merged model does not depend on the
//!   order updates arrive in (commutative, associative), a duplicate or an
//!   older version changes nothing (idempotent), and the result equals one
//!   model trained on every sample;
//! - aggregators: the mean, median and trimmed mean do not depend on the
//!   order of their inputs, aggregating copies of one value gives it back,
//!   and the weighted mean is associative when partial means carry their
//!   weights;
//! - averaging keeps parameters finite and within the inputs' range, and
//!   refuses NaN, oversized and accuracy-destroying updates;
//! - memory stays bounded: origins and committee seats never exceed the
//!   configured caps, whatever arrives.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use shoal_learn::merge::{Aggregator, Federated, MergeConfig, MergeError, Origin, Update};
use shoal_learn::rng::Rng;
use shoal_learn::schema::Sample;
use shoal_learn::{build_str, Classifier, Model, Schema};

fn schema() -> Schema {
    Schema::numeric(3, &["a", "b", "c"])
}

/// A small labelled stream: class = which of three centres is nearest.
fn stream(seed: u64, n: usize) -> Vec<Sample> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let y = (rng.next_u64() % 3) as usize;
            let x = (0..3)
                .map(|i| if i == y { 2.0 } else { 0.0 } + rng.next_f64() - 0.5)
                .collect();
            Sample { x, y }
        })
        .collect()
}

fn trained(spec: &str, data: &[Sample]) -> Model {
    let mut m = build_str(spec, &schema()).unwrap();
    for s in data {
        m.learn_one(&s.x, s.y, 1.0);
    }
    m
}

fn probes() -> Vec<Vec<f64>> {
    stream(999, 20).into_iter().map(|s| s.x).collect()
}

fn assert_same(a: &dyn Classifier, b: &dyn Classifier) {
    for x in probes() {
        let (pa, pb) = (a.predict_proba_one(&x), b.predict_proba_one(&x));
        assert_eq!(pa.len(), pb.len());
        for (u, v) in pa.iter().zip(&pb) {
            assert!((u - v).abs() < 1e-9, "{pa:?} vs {pb:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Any order of arrival, with duplicates and stale versions mixed in,
    /// gives the same model as learning everything in one place.
    #[test]
    fn exact_merge_is_order_free_and_never_double_counts(
        seed in 0u64..1000,
        order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
        dups in proptest::collection::vec(0usize..6, 0..6),
    ) {
        let local_data = stream(seed, 40);
        // Three origins, two versions each (v2 extends v1).
        let peer_data: Vec<Vec<Sample>> = (0..3).map(|o| stream(seed + 1 + o, 60)).collect();
        let updates: Vec<Update> = (0..6)
            .map(|i| {
                let (o, v) = (i / 2, i % 2 + 1);
                let n = if v == 1 { 30 } else { 60 };
                Update::new(Origin(o as u64), v as u64, n as u64, trained("nb", &peer_data[o][..n]))
            })
            .collect();
        let mut fed = Federated::new(trained("nb", &local_data), MergeConfig::default());
        for &i in order.iter().chain(&dups) {
            fed.accept(updates[i].clone(), &[]).unwrap();
        }
        let mut all = local_data.clone();
        for d in &peer_data {
            all.extend_from_slice(d);
        }
        let central = trained("nb", &all);
        assert_same(&fed, &central);
        prop_assert_eq!(fed.origins().count(), 3);
        prop_assert!(fed.origins().all(|c| c.version == 2));
    }

    #[test]
    fn aggregators_are_symmetric_and_idempotent(
        vals in proptest::collection::vec(-1e6f64..1e6, 1..12),
        seed in 0u64..1000,
        v in -1e6f64..1e6,
    ) {
        let weights: Vec<f64> = vals.iter().enumerate().map(|(i, _)| 1.0 + (i % 3) as f64).collect();
        let mut idx: Vec<usize> = (0..vals.len()).collect();
        let mut rng = Rng::new(seed);
        for i in (1..idx.len()).rev() {
            idx.swap(i, (rng.next_u64() % (i as u64 + 1)) as usize);
        }
        let pv: Vec<f64> = idx.iter().map(|&i| vals[i]).collect();
        let pw: Vec<f64> = idx.iter().map(|&i| weights[i]).collect();
        for agg in [Aggregator::Mean, Aggregator::Median, Aggregator::TrimmedMean { trim: 0.2 }] {
            let a = agg.combine(&vals, &weights);
            let b = agg.combine(&pv, &pw);
            prop_assert!((a - b).abs() <= 1e-6 * (1.0 + a.abs()), "{:?}: {} vs {}", agg, a, b);
            let lo = vals.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = vals.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(a >= lo - 1e-9 && a <= hi + 1e-9);
            let same = vec![v; vals.len()];
            prop_assert!((agg.combine(&same, &weights) - v).abs() <= 1e-9 * (1.0 + v.abs()));
        }
    }

    /// Weighted mean: mean(mean(a, b) with weight wa + wb, c) = mean(a, b, c).
    #[test]
    fn weighted_mean_is_associative(
        a in -1e3f64..1e3, b in -1e3f64..1e3, c in -1e3f64..1e3,
        wa in 0.1f64..100.0, wb in 0.1f64..100.0, wc in 0.1f64..100.0,
    ) {
        let m = Aggregator::Mean;
        let ab = m.combine(&[a, b], &[wa, wb]);
        let left = m.combine(&[ab, c], &[wa + wb, wc]);
        let bc = m.combine(&[b, c], &[wb, wc]);
        let right = m.combine(&[a, bc], &[wa, wb + wc]);
        let flat = m.combine(&[a, b, c], &[wa, wb, wc]);
        prop_assert!((left - flat).abs() < 1e-9 * (1.0 + flat.abs()));
        prop_assert!((right - flat).abs() < 1e-9 * (1.0 + flat.abs()));
    }

    /// Whatever arrives from however many origins, the memory held stays
    /// within the caps.
    #[test]
    fn memory_is_bounded(origins in proptest::collection::vec(0u64..200, 1..60), spec_i in 0usize..3) {
        let spec = ["nb", "lr", "ht:grace_period=20"][spec_i];
        let cfg = MergeConfig { max_peers: 5, committee_size: 2, ..MergeConfig::default() };
        let mut fed = Federated::new(trained(spec, &stream(1, 50)), cfg);
        let peer = trained(spec, &stream(2, 50));
        for (v, o) in origins.iter().enumerate() {
            let _ = fed.accept(Update::new(Origin(*o), v as u64 + 1, 50, peer.clone()), &[]);
            fed.round();
            prop_assert!(fed.origins().count() <= 5);
            prop_assert!(fed.origins().filter(|c| c.active && c.score.is_some()).count() <= 2);
        }
    }
}

#[test]
fn averaging_lands_between_the_models_and_is_idempotent() {
    let a = trained("lr", &stream(1, 300));
    let mut fed = Federated::new(a.clone(), MergeConfig::default());
    // Averaging a model with copies of itself gives it back.
    for o in 0..3 {
        fed.accept(Update::new(Origin(o), 1, 300, a.clone()), &[])
            .unwrap();
    }
    assert_eq!(fed.round(), 3);
    assert_same(&fed, &a);
    // A second round with nothing new changes nothing.
    assert_eq!(fed.round(), 0);
    assert_same(&fed, &a);
}

#[test]
fn averaging_takes_in_classes_only_peers_saw() {
    // Local node sees classes 0 and 1 only; the peer sees all three.
    let data = stream(3, 900);
    let local: Vec<Sample> = data.iter().filter(|s| s.y < 2).cloned().collect();
    let mut fed = Federated::new(trained("lr:lr=0.1", &local), MergeConfig::default());
    let peer = trained("lr:lr=0.1", &data);
    fed.accept(Update::new(Origin(1), 1, 900, peer), &[])
        .unwrap();
    fed.round();
    let c2: Vec<&Sample> = data.iter().filter(|s| s.y == 2).collect();
    let hits = c2
        .iter()
        .filter(|s| fed.predict_one(&s.x) == Some(2))
        .count();
    assert!(
        hits * 10 >= c2.len() * 8,
        "class 2 learnt from the peer: {hits}/{}",
        c2.len()
    );
}

#[test]
fn hostile_updates_are_refused_and_change_nothing() {
    let data = stream(4, 400);
    let local = trained("lr:lr=0.1", &data);
    let mut fed = Federated::new(local.clone(), MergeConfig::default());
    let window = &data[300..];

    // Scaled parameters: norm far beyond ours.
    let json = serde_json::to_string(&local).unwrap();
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let scaled = scale_numbers(v, 1e6);
    let big: Model = serde_json::from_value(scaled).unwrap();
    let err = fed
        .accept(Update::new(Origin(1), 1, 400, big), window)
        .unwrap_err();
    assert!(matches!(err, MergeError::NormTooLarge { .. }), "{err}");

    // Flipped labels: the model learnt class (y + 1) % 3.
    let flipped: Vec<Sample> = data
        .iter()
        .map(|s| Sample {
            x: s.x.clone(),
            y: (s.y + 1) % 3,
        })
        .collect();
    let bad = trained("lr:lr=0.1", &flipped);
    let err = fed
        .accept(Update::new(Origin(2), 1, 400, bad), window)
        .unwrap_err();
    assert!(matches!(err, MergeError::WorseOnLocal { .. }), "{err}");

    // Another kind of model.
    let err = fed
        .accept(Update::new(Origin(3), 1, 400, trained("nb", &data)), window)
        .unwrap_err();
    assert!(matches!(err, MergeError::KindMismatch { .. }), "{err}");

    assert_eq!(fed.pending(), 0);
    assert_eq!(fed.round(), 0);
    assert_same(&fed, &local);
}

#[test]
fn non_finite_parameters_are_refused() {
    use shoal_learn::models::linear::LinearModel;
    let m = trained("lr", &stream(5, 50));
    let Model::Logistic(mut l) = m else {
        panic!("lr builds a logistic regression")
    };
    let before = l.params();
    let mut p = before.clone();
    p.weights[0] = f64::NAN;
    assert!(l.set_params(p).is_err());
    assert_eq!(l.params(), before);
}

#[test]
fn exact_merge_refuses_inflated_statistics() {
    let data = stream(6, 200);
    let mut fed = Federated::new(trained("nb", &data), MergeConfig::default());
    let mut big = build_str("nb", &schema()).unwrap();
    for s in &data {
        big.learn_one(&s.x, s.y, 1e3);
    }
    let err = fed
        .accept(Update::new(Origin(1), 1, 200, big), &[])
        .unwrap_err();
    assert!(matches!(err, MergeError::NormTooLarge { .. }), "{err}");
    assert_eq!(fed.origins().count(), 0);
}

#[test]
fn committee_listens_to_the_peer_that_predicts_the_local_stream() {
    let data = stream(7, 2000);
    // The local tree has seen one class only; the peer's tree everything.
    let only0: Vec<Sample> = data
        .iter()
        .filter(|s| s.y == 0)
        .take(100)
        .cloned()
        .collect();
    let local = trained("ht:grace_period=50", &only0);
    let peer = trained("ht:grace_period=50", &data);
    let mut fed = Federated::new(local.clone(), MergeConfig::default());
    fed.accept(Update::new(Origin(1), 1, 2000, peer), &data[1000..1200])
        .unwrap();
    let test = stream(8, 300);
    let acc = |m: &dyn Classifier| {
        test.iter()
            .filter(|s| m.predict_one(&s.x) == Some(s.y))
            .count() as f64
            / test.len() as f64
    };
    assert!(
        acc(&fed) > acc(&local) + 0.1,
        "{} vs {}",
        acc(&fed),
        acc(&local)
    );
}

#[test]
fn classes_are_renumbered_before_merging() {
    // The peer saw the labels in another order: its class 0 is our 2.
    let data = stream(9, 300);
    let perm = [2usize, 0, 1];
    let theirs: Vec<Sample> = data
        .iter()
        .map(|s| Sample {
            x: s.x.clone(),
            y: perm.iter().position(|&p| p == s.y).unwrap(),
        })
        .collect();
    let empty = build_str("nb", &schema()).unwrap();
    let mut fed = Federated::new(empty, MergeConfig::default());
    let mut u = Update::new(Origin(1), 1, 300, trained("nb", &theirs));
    u.class_map = perm.to_vec();
    fed.accept(u, &[]).unwrap();
    assert_same(&fed, &trained("nb", &data));
}

fn scale_numbers(v: serde_json::Value, k: f64) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(key, val)| {
                    if key == "weights" || key == "bias" {
                        (key, scale_numbers(val, k))
                    } else {
                        (key, scale_numbers_inner(val, k))
                    }
                })
                .collect(),
        ),
        other => scale_numbers_inner(other, k),
    }
}

fn scale_numbers_inner(v: serde_json::Value, k: f64) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Object(_) => scale_numbers(v, k),
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|x| match x {
                    Value::Number(n) if n.is_f64() => {
                        serde_json::json!(n.as_f64().unwrap() * k * 10.0)
                    }
                    other => scale_numbers_inner(other, k),
                })
                .collect(),
        ),
        other => other,
    }
}

#[test]
fn mlp_merges_by_averaging_and_copies_average_to_themselves() {
    let a = trained("mlp", &stream(1, 300));
    assert_eq!(
        shoal_learn::merge::strategy(&a),
        shoal_learn::merge::Strategy::Average
    );
    let mut fed = Federated::new(a.clone(), MergeConfig::default());
    for o in 0..3 {
        fed.accept(Update::new(Origin(o), 1, 300, a.clone()), &[])
            .unwrap();
    }
    assert_eq!(fed.round(), 3);
    let (Model::Mlp(x), Model::Mlp(y)) = (fed.local(), &a) else {
        panic!("not an mlp");
    };
    let (px, py) = (x.params(), y.params());
    assert_eq!(px.flat.len(), py.flat.len());
    for (u, v) in px.flat.iter().zip(&py.flat) {
        assert!((u - v).abs() < 1e-5, "{u} vs {v}");
    }
}

#[test]
fn flipped_class_statistics_are_refused_where_the_class_is_seen() {
    let data = stream(3, 3000);
    let local = trained("nb", &data);
    let honest = trained("nb", &stream(4, 3000));
    let flipped: Vec<Sample> = stream(5, 3000)
        .into_iter()
        .map(|s| Sample {
            x: s.x,
            y: (s.y + 1) % 3,
        })
        .collect();
    let liar = trained("nb", &flipped);
    let mut fed = Federated::new(local, MergeConfig::default());
    let window = &data[data.len() - 500..];
    assert!(fed
        .accept(Update::new(Origin(1), 1, 3000, honest), window)
        .is_ok());
    assert!(matches!(
        fed.accept(Update::new(Origin(2), 1, 3000, liar), window),
        Err(MergeError::ClassConflict { .. })
    ));
}

/// Samples of `stream(seed, n)` whose class is in `keep`, relabelled by
/// `label`.
fn slice(seed: u64, keep: &[usize], label: impl Fn(usize) -> usize) -> Vec<Sample> {
    stream(seed, 6000)
        .into_iter()
        .filter(|s| keep.contains(&s.y))
        .map(|s| Sample {
            y: label(s.y),
            x: s.x,
        })
        .collect()
}

#[test]
fn label_flippers_are_left_out_even_where_the_class_is_not_seen() {
    // Label skew: this node sees class 0 only. Honest peers see {0, 1} and
    // {1, 2}; two flippers send class-1 data labelled 2, so on class 2
    // they outnumber its one honest holder, and nothing local can tell.
    let local = trained("nb", &slice(1, &[0], |y| y));
    let a = trained("nb", &slice(2, &[0, 1], |y| y));
    let b = trained("nb", &slice(3, &[1, 2], |y| y));
    let liar = |seed| trained("nb", &slice(seed, &[1], |_| 2));
    let mut fed = Federated::new(local, MergeConfig::default());
    // The flippers come first, while nothing contradicts them.
    for o in [10, 11] {
        assert!(fed
            .accept(Update::new(Origin(o), 1, 2000, liar(o)), &[])
            .is_ok());
    }
    fed.accept(Update::new(Origin(1), 1, 4000, a), &[]).unwrap();
    fed.accept(Update::new(Origin(2), 1, 4000, b), &[]).unwrap();
    // Peer 1 agrees with the local class 0, peer 2 with peer 1 on class 1,
    // and peer 2's class 2 exposes the flippers.
    assert_eq!(fed.distrusted(), vec![Origin(10), Origin(11)]);
    let inactive: Vec<Origin> = fed
        .origins()
        .filter(|c| !c.active)
        .map(|c| c.origin)
        .collect();
    assert_eq!(inactive, vec![Origin(10), Origin(11)]);
    assert!(matches!(
        fed.accept(Update::new(Origin(10), 2, 3000, liar(12)), &[]),
        Err(MergeError::Distrusted { class: 2 })
    ));
    // The merged view tells classes 1 and 2 apart.
    let test = stream(7, 600);
    let hits = test
        .iter()
        .filter(|s| {
            s.y > 0 && shoal_learn::classifier::argmax(&fed.predict_proba_one(&s.x)) == Some(s.y)
        })
        .count();
    let n = test.iter().filter(|s| s.y > 0).count();
    assert!(hits as f64 > 0.9 * n as f64, "{hits} of {n}");
    // Without the one honest holder of class 2 nothing contradicts the
    // flippers: no evidence, no exclusion.
    fed.forget(Origin(2));
    assert!(fed.distrusted().is_empty());
}
