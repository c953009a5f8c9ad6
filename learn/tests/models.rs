//! Properties every classifier in `shoal_learn::MODELS` must have. The tests
//! iterate the table, so a model added there is covered without touching
//! this file:
//!
//! - a snapshot (postcard and JSON) restores a model that predicts exactly
//!   as the original, after any stream, including NaN / infinite / huge
//!   values, classes appearing late and a changing feature count;
//! - adversarial inputs never panic, and probabilities stay finite and sum
//!   to one;
//! - every learner (baselines excepted) learns an easy linear concept.

#![allow(clippy::unwrap_used)]

use proptest::prelude::*;
use shoal_learn::rng::Rng;
use shoal_learn::{model, Classifier, Feature, Model, Schema, Spec, MODELS};

/// The models under test: all of `MODELS`, or only the comma-separated
/// names in `SHOAL_TEST_MODELS` (to debug one model).
fn models() -> Vec<&'static shoal_learn::model::ModelInfo> {
    let only = std::env::var("SHOAL_TEST_MODELS").ok();
    MODELS
        .iter()
        .filter(|m| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|n| n.trim() == m.name))
        })
        .collect()
}

/// Models that do not learn from features, so are excused from (c).
const BASELINES: &[&str] = &["majority", "no_change"];

/// The spec used for `name`: defaults, except that a model with a
/// `grace_period` gets a small one so that short streams exercise splits.
fn spec_for(name: &str, grace: usize) -> Spec {
    let info = MODELS.iter().find(|m| m.name == name).unwrap();
    let mut spec = Spec::parse(name).unwrap();
    if info.params.iter().any(|p| p.name == "grace_period") {
        spec.params.push(("grace_period".into(), grace.to_string()));
    }
    spec
}

/// Two numeric features, or a nominal one (3 values) and a numeric one.
fn schema(nominal: bool, n_classes: usize) -> Schema {
    let classes: Vec<String> = (0..n_classes).map(|c| format!("c{c}")).collect();
    let refs: Vec<&str> = classes.iter().map(String::as_str).collect();
    let mut s = Schema::numeric(2, &refs);
    if nominal {
        s.features[0] = Feature::nominal("colour", vec!["r".into(), "g".into(), "b".into()]);
    }
    s
}

fn assert_probabilities(name: &str, p: &[f64], n_classes: usize, learnt: bool) {
    assert_eq!(p.len(), n_classes, "{name}: {p:?}");
    assert!(
        p.iter()
            .all(|v| v.is_finite() && (0.0..=1.0 + 1e-12).contains(v)),
        "{name}: {p:?}"
    );
    let sum: f64 = p.iter().sum();
    if learnt && n_classes > 0 {
        assert!((sum - 1.0).abs() < 1e-9, "{name}: sum {sum} of {p:?}");
    } else {
        assert!(sum == 0.0 || (sum - 1.0).abs() < 1e-9, "{name}: {p:?}");
    }
}

/// Whether serde_json parses every `f64` back to the same bits. Without
/// its `float_roundtrip` feature it may be one ULP off, which a large
/// score (weights times inputs near the `1e12` clamp) turns into a visible
/// change in probabilities.
fn json_floats_are_exact() -> bool {
    static EXACT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *EXACT.get_or_init(|| {
        let mut rng = Rng::new(99);
        (0..2000).all(|_| {
            let v = f64::from_bits(rng.next_u64());
            if !v.is_finite() {
                return true;
            }
            let back: f64 = serde_json::from_str(&serde_json::to_string(&v).unwrap()).unwrap();
            back.to_bits() == v.to_bits()
        })
    })
}

fn same_predictions(name: &str, how: &str, a: &Model, b: &Model, probes: &[Vec<f64>]) {
    assert_eq!(a.kind(), b.kind());
    assert_eq!(a.n_classes(), b.n_classes(), "{name} via {how}");
    for x in probes {
        let (pa, pb) = (a.predict_proba_one(x), b.predict_proba_one(x));
        assert_eq!(pa.len(), pb.len(), "{name} via {how} on {x:?}");
        for (u, v) in pa.iter().zip(&pb) {
            let same = u.to_bits() == v.to_bits() || (u - v).abs() <= 1e-12;
            assert!(same, "{name} via {how} on {x:?}: {pa:?} vs {pb:?}");
        }
    }
}

/// One feature value: mostly ordinary, sometimes hostile.
fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        8 => -10.0..10.0f64,
        2 => (0u8..4).prop_map(f64::from),
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => prop_oneof![Just(1e300), Just(-1e300), Just(f64::MAX), Just(1e-300), Just(-0.0)],
    ]
}

#[derive(Debug, Clone)]
struct Row {
    x: Vec<f64>,
    y: usize,
    weight: f64,
}

/// A small stream: 2 features mostly, sometimes 0..=5; labels 0..2 in the
/// first half, 0..6 later (new classes appear late).
fn stream() -> impl Strategy<Value = Vec<Row>> {
    let row = |max_class: usize| {
        (
            prop_oneof![8 => Just(2usize), 1 => 0usize..=5],
            0..max_class,
            prop_oneof![9 => Just(1.0f64), 1 => prop_oneof![Just(0.0), Just(2.5), Just(f64::NAN), Just(1e300)]],
            prop::collection::vec(value(), 5),
        )
            .prop_map(|(n, y, weight, vals)| Row {
                x: vals[..n].to_vec(),
                y,
                weight,
            })
    };
    (
        prop::collection::vec(row(2), 0..40),
        prop::collection::vec(row(6), 0..40),
    )
        .prop_map(|(mut a, b)| {
            a.extend(b);
            a
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// (a) postcard and JSON snapshots predict exactly like the original.
    #[test]
    fn snapshots_predict_identically(
        rows in stream(),
        probes in prop::collection::vec(prop::collection::vec(value(), 0..5), 1..8),
        nominal in any::<bool>(),
        declared in 0usize..4,
    ) {
        let schema = schema(nominal, declared);
        // Without exact float parsing a JSON snapshot cannot predict
        // exactly; `json_snapshots_need_exact_float_parsing` reports that.
        let json_exact = json_floats_are_exact();
        for info in models() {
            let mut m = model::build(&spec_for(info.name, 5), &schema).unwrap();
            for r in &rows {
                let _ = m.predict_proba_one(&r.x);
                m.learn_one(&r.x, r.y, r.weight);
            }
            let bytes = postcard::to_allocvec(&m).unwrap();
            let from_postcard: Model = postcard::from_bytes(&bytes)
                .unwrap_or_else(|e| panic!("{}: from postcard: {e}", info.name));
            same_predictions(info.name, "postcard", &m, &from_postcard, &probes);
            let json = serde_json::to_string(&m)
                .unwrap_or_else(|e| panic!("{}: to JSON: {e}", info.name));
            let from_json: Model = serde_json::from_str(&json)
                .unwrap_or_else(|e| panic!("{}: from JSON: {e}", info.name));
            if json_exact {
                same_predictions(info.name, "json", &m, &from_json, &probes);
            }
            // A restored model also keeps learning like the original.
            let (mut a, mut b) = (m, from_postcard);
            for r in rows.iter().take(10) {
                a.learn_one(&r.x, r.y, r.weight);
                b.learn_one(&r.x, r.y, r.weight);
            }
            same_predictions(info.name, "postcard, then learning", &a, &b, &probes);
        }
    }
}

/// A JSON snapshot restores exactly only if serde_json parses every float
/// back to its bits, which needs serde_json's `float_roundtrip` feature
/// (enabled in the workspace `Cargo.toml`). Without it, models whose
/// scores are large differences of large numbers (a one-vs-rest perceptron
/// near the input clamp) change their probabilities by up to 1e-4.
#[test]
fn json_snapshots_need_exact_float_parsing() {
    assert!(
        json_floats_are_exact(),
        "serde_json does not round-trip f64 exactly: enable its `float_roundtrip` \
         feature in the workspace Cargo.toml"
    );
}

/// (b) Hostile inputs: no panic, probabilities finite and summing to 1.
#[test]
fn adversarial_inputs_never_break_a_model() {
    let hostile: Vec<Vec<f64>> = vec![
        vec![],
        vec![f64::NAN; 3],
        vec![f64::INFINITY, f64::NEG_INFINITY],
        vec![f64::MAX, f64::MIN, f64::MIN_POSITIVE],
        vec![1e300, -1e300, 1e-300, 5e-324],
        vec![0.0; 40],
        (0..40)
            .map(|i| if i % 2 == 0 { 1e200 } else { f64::NAN })
            .collect(),
        vec![-1.5, 2.5],
        vec![1e12, -1e12],
    ];
    let weights = [1.0, 0.0, -1.0, f64::NAN, f64::INFINITY, 1e300, 1e-300];
    for nominal in [false, true] {
        for declared in [0, 2, 5] {
            let schema = schema(nominal, declared);
            for info in models() {
                let name = info.name;
                let mut m = model::build(&spec_for(name, 5), &schema).unwrap();
                for x in &hostile {
                    assert_probabilities(name, &m.predict_proba_one(x), m.n_classes(), false);
                }
                let mut rng = Rng::new(17);
                for t in 0..300 {
                    let x = &hostile[t % hostile.len()];
                    let y = if t % 50 == 49 {
                        40 + t / 50
                    } else {
                        rng.below(3)
                    };
                    m.learn_one(x, y, weights[t % weights.len()]);
                    // Ordinary samples in between, so that models learn.
                    m.learn_one(
                        &[rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0)],
                        rng.below(3),
                        1.0,
                    );
                    let p = m.predict_proba_one(&hostile[(t * 7) % hostile.len()]);
                    assert_probabilities(name, &p, m.n_classes(), true);
                }
                for x in &hostile {
                    assert_probabilities(name, &m.predict_proba_one(x), m.n_classes(), true);
                }
                let mut out = vec![f64::NAN; 100];
                m.predict_proba_into(&[0.1, 0.2], &mut out);
                assert_probabilities(name, &out, m.n_classes(), true);
                assert!(m.memory_bytes() > 0, "{name}");
            }
        }
    }
}

/// (c) Every learner learns a linearly separable 2-D concept (margin 0.1)
/// to more than 90% prequential accuracy: 500 samples, or 2000 for models
/// with a grace period (trees need samples before their first split; they
/// get a small grace period).
#[test]
fn every_learner_learns_an_easy_concept() {
    let schema = schema(false, 2);
    for info in models()
        .into_iter()
        .filter(|m| !BASELINES.contains(&m.name))
    {
        let is_tree = info.params.iter().any(|p| p.name == "grace_period");
        let n = if is_tree { 2000 } else { 500 };
        let mut m = model::build(&spec_for(info.name, 50), &schema).unwrap();
        let mut rng = Rng::new(2024);
        let mut hits = 0;
        let mut seen = 0;
        while seen < n {
            let (a, b) = (rng.uniform(-1.0, 1.0), rng.uniform(-1.0, 1.0));
            let s = 2.0 * a + b - 0.2;
            if s.abs() < 0.1 {
                continue;
            }
            let y = usize::from(s > 0.0);
            hits += usize::from(m.predict_one(&[a, b]) == Some(y));
            m.learn_one(&[a, b], y, 1.0);
            seen += 1;
        }
        let acc = hits as f64 / n as f64;
        assert!(
            acc > 0.9,
            "{}: prequential accuracy {acc:.3} on {n} samples",
            info.name
        );
    }
}

/// Memory grows with what a model stores.
#[test]
fn memory_is_reported_from_real_allocations() {
    let schema = schema(false, 3);
    for info in models() {
        let mut m = model::build(&spec_for(info.name, 50), &schema).unwrap();
        let empty = m.memory_bytes();
        let mut rng = Rng::new(8);
        for _ in 0..1000 {
            let x: Vec<f64> = (0..10).map(|_| rng.normal()).collect();
            m.learn_one(&x, rng.below(3), 1.0);
        }
        let full = m.memory_bytes();
        assert!(full >= empty, "{}: {empty} -> {full}", info.name);
        if !BASELINES.contains(&info.name) {
            // At least the 10 per-feature statistics of 3 classes (or the
            // weights of a linear model) are held somewhere.
            assert!(full >= empty + 10 * 8, "{}: {empty} -> {full}", info.name);
        }
    }
}

/// Every documented parameter is accepted with its documented default, and
/// a misspelt one is refused, so `shoal-bench models` never lies.
#[test]
fn documented_parameters_are_accepted() {
    let schema = schema(false, 2);
    for info in models() {
        for p in info.params {
            let spec = format!("{}:{}={}", info.name, p.name, p.default);
            if let Err(e) = model::build_str(&spec, &schema) {
                panic!("`{spec}` (the documented default) is refused: {e}");
            }
        }
        let typo = format!("{}:no_such_param=1", info.name);
        assert!(model::build_str(&typo, &schema).is_err(), "{typo} accepted");
    }
    for bad in [
        "lr:lr=2,l2=1",
        "perceptron:l2=2",
        "pa:mode=3",
        "knn:n_neighbors=0",
    ] {
        assert!(model::build_str(bad, &schema).is_err(), "{bad} accepted");
    }
}
