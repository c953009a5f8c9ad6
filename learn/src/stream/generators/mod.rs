//! Seeded synthetic streams with the semantics of River and MOA (where the
//! two differ, the choice is documented on the generator).
//!
//! Every generator is built from a spec such as
//! `sea:variant=1,noise=0.1,seed=7,n=100000`. All take `seed` (default 1)
//! and `n`, the number of samples (default 100 000); the same spec always
//! yields the same stream.
//!
//! The concept-drift wrapper nests two specs. Inside a nested spec, `|`
//! separates parameters (a `,` would end the outer parameter):
//!
//! ```text
//! drift:stream=sea:variant=0|noise=0.1,drift_stream=sea:variant=2,position=50000,width=1000
//! ```
//!
//! Nesting is one level deep: a nested spec cannot itself be a `drift`.

mod agrawal;
mod drift;
mod hyperplane;
mod led;
mod random_tree;
mod rbf;
mod sea;
mod sine;
mod stagger;
mod waveform;

pub use agrawal::Agrawal;
pub use drift::ConceptDrift;
pub use hyperplane::Hyperplane;
pub use led::Led;
pub use random_tree::RandomTree;
pub use rbf::RandomRbf;
pub use sea::Sea;
pub use sine::Sine;
pub use stagger::Stagger;
pub use waveform::Waveform;

use super::{Stream, StreamError};
use crate::schema::{Sample, Schema};
use crate::spec::{ParamDoc, ParamReader, Spec, SpecError};

/// Samples when `n` is not given.
pub const DEFAULT_N: u64 = 100_000;

/// An endless, seeded source of samples.
pub trait Generator: Send {
    /// Features and classes; fixed for a generator.
    fn schema(&self) -> &Schema;
    /// The next sample.
    fn generate(&mut self) -> Sample;
}

/// A generator cut to `n` samples, as a [`Stream`].
pub struct GeneratorStream {
    generator: Box<dyn Generator>,
    left: u64,
}

impl GeneratorStream {
    pub fn new(generator: Box<dyn Generator>, n: u64) -> Self {
        GeneratorStream { generator, left: n }
    }
}

impl Stream for GeneratorStream {
    fn schema(&self) -> &Schema {
        self.generator.schema()
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, StreamError> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        Ok(Some(self.generator.generate()))
    }
}

/// Description of a generator for `shoal-bench streams`.
#[derive(Debug, Clone, Copy)]
pub struct GeneratorInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamDoc],
}

const fn p(name: &'static str, default: &'static str, help: &'static str) -> ParamDoc {
    ParamDoc {
        name,
        default,
        help,
    }
}

/// Every generator, with its parameters (besides `seed` and `n`).
pub const GENERATORS: &[GeneratorInfo] = &[
    GeneratorInfo {
        name: "sea",
        summary: "SEA concepts: 3 features in [0,10), class = x0 + x1 > threshold",
        params: &[
            p("variant", "0", "0-3: threshold 8, 9, 7, 9.5"),
            p("noise", "0", "probability of flipping the label"),
        ],
    },
    GeneratorInfo {
        name: "agrawal",
        summary: "Agrawal loan applications: 6 numeric + 3 nominal features, 10 functions",
        params: &[
            p("function", "0", "classification function 0-9"),
            p(
                "perturbation",
                "0",
                "fraction of each numeric range used as noise",
            ),
            p("balance", "false", "alternate classes"),
        ],
    },
    GeneratorInfo {
        name: "hyperplane",
        summary: "rotating hyperplane: class = sum w_i x_i >= sum w_i / 2",
        params: &[
            p("n_features", "10", "features in [0,1)"),
            p("n_drift_features", "2", "weights that drift"),
            p("mag_change", "0", "weight change per sample"),
            p("sigma", "0.1", "probability of reversing a drift direction"),
            p("noise", "0.05", "probability of flipping the label"),
        ],
    },
    GeneratorInfo {
        name: "rbf",
        summary: "random radial basis functions: Gaussian clouds around labelled centroids",
        params: &[
            p("n_classes", "2", "classes"),
            p("n_features", "10", "features"),
            p("n_centroids", "50", "centroids"),
            p("model_seed", "seed", "seed of the centroids"),
        ],
    },
    GeneratorInfo {
        name: "rbf_drift",
        summary: "random RBF whose centroids move (incremental drift)",
        params: &[
            p("n_classes", "2", "classes"),
            p("n_features", "10", "features"),
            p("n_centroids", "50", "centroids"),
            p("model_seed", "seed", "seed of the centroids"),
            p(
                "change_speed",
                "0",
                "distance a moving centroid travels per sample",
            ),
            p("n_drift_centroids", "50", "centroids that move"),
        ],
    },
    GeneratorInfo {
        name: "led",
        summary: "seven-segment LED digits with flipped segments; optional drift",
        params: &[
            p("noise", "0.1", "probability of flipping each segment"),
            p(
                "irrelevant",
                "true",
                "add 17 random binary features (24 in all)",
            ),
            p(
                "n_drift_features",
                "0",
                "segments swapped with irrelevant features (0-7)",
            ),
        ],
    },
    GeneratorInfo {
        name: "stagger",
        summary: "STAGGER concepts over size, color and shape",
        params: &[
            p(
                "function",
                "0",
                "0: small and red, 1: green or circle, 2: medium or large",
            ),
            p("balance", "false", "alternate classes"),
        ],
    },
    GeneratorInfo {
        name: "sine",
        summary: "SINE1/SINE2 boundaries over two features in [0,1)",
        params: &[
            p(
                "function",
                "0",
                "0: SINE1, 1: reversed SINE1, 2: SINE2, 3: reversed SINE2",
            ),
            p("balance", "false", "alternate classes"),
            p("irrelevant", "false", "add 2 uniform noise features"),
        ],
    },
    GeneratorInfo {
        name: "waveform",
        summary: "Breiman's waveforms: 21 noisy features, 3 classes",
        params: &[p(
            "irrelevant",
            "false",
            "add 19 Gaussian noise features (40 in all)",
        )],
    },
    GeneratorInfo {
        name: "random_tree",
        summary: "labels from a random decision tree over numeric and nominal features",
        params: &[
            p("n_classes", "2", "classes"),
            p("n_num", "5", "numeric features in [0,1)"),
            p("n_cat", "5", "nominal features"),
            p("n_categories", "5", "values per nominal feature"),
            p("depth", "5", "maximum tree depth"),
            p(
                "first_leaf_level",
                "3",
                "shallowest level that may hold leaves",
            ),
            p(
                "leaf_fraction",
                "0.15",
                "chance a node at or below first_leaf_level is a leaf",
            ),
            p("model_seed", "seed", "seed of the tree"),
        ],
    },
    GeneratorInfo {
        name: "drift",
        summary: "concept drift: `stream` turning into `drift_stream` along a sigmoid",
        params: &[
            p(
                "stream",
                "sea:variant=0",
                "spec before the drift (`|` between its params)",
            ),
            p("drift_stream", "sea:variant=2", "spec after the drift"),
            p("position", "50000", "sample at the centre of the change"),
            p("width", "1000", "length of the change"),
        ],
    },
];

/// Build a stream from a generator spec string.
pub fn from_spec_str(source: &str) -> Result<Box<dyn Stream + Send>, StreamError> {
    let spec = Spec::parse(source)?;
    let (generator, n) = build(&spec)?;
    Ok(Box::new(GeneratorStream::new(generator, n)))
}

/// Build a generator and its sample count `n` from a spec.
pub fn build(spec: &Spec) -> Result<(Box<dyn Generator>, u64), SpecError> {
    let mut r = spec.reader();
    let n = r.u64("n", DEFAULT_N)?;
    let g = build_with(spec, &mut r, true)?;
    r.finish()?;
    Ok((g, n))
}

/// Build the generator named by `spec`, reading its parameters from `r`.
fn build_with(
    spec: &Spec,
    r: &mut ParamReader<'_>,
    allow_drift: bool,
) -> Result<Box<dyn Generator>, SpecError> {
    let seed = r.u64("seed", 1)?;
    Ok(match spec.name.as_str() {
        "sea" => Box::new(Sea::from_params(r, seed)?),
        "agrawal" => Box::new(Agrawal::from_params(r, seed)?),
        "hyperplane" => Box::new(Hyperplane::from_params(r, seed)?),
        "rbf" => Box::new(RandomRbf::from_params(r, seed, false)?),
        "rbf_drift" => Box::new(RandomRbf::from_params(r, seed, true)?),
        "led" => Box::new(Led::from_params(r, seed)?),
        "stagger" => Box::new(Stagger::from_params(r, seed)?),
        "sine" => Box::new(Sine::from_params(r, seed)?),
        "waveform" => Box::new(Waveform::from_params(r, seed)?),
        "random_tree" => Box::new(RandomTree::from_params(r, seed)?),
        "drift" if allow_drift => Box::new(ConceptDrift::from_params(r, seed)?),
        other => {
            return Err(SpecError::UnknownName {
                name: other.to_string(),
                known: GENERATORS
                    .iter()
                    .map(|g| g.name)
                    .filter(|&g| allow_drift || g != "drift")
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    })
}

/// Build a nested spec (`sea:variant=0|noise=0.1`) with `default_seed` when
/// it names no seed of its own.
pub(crate) fn build_nested(
    nested: &str,
    default_seed: u64,
) -> Result<Box<dyn Generator>, SpecError> {
    let mut spec = Spec::parse(&nested.replace('|', ","))?;
    if spec.get("seed").is_none() {
        spec.params.push(("seed".into(), default_seed.to_string()));
    }
    let mut r = spec.reader();
    // A nested `n` has no meaning (the outer one counts); accept and ignore it.
    let _ = r.u64("n", DEFAULT_N)?;
    let g = build_with(&spec, &mut r, false)?;
    r.finish()?;
    Ok(g)
}

/// Alternates classes 1, 0, 1, ... when `balance` is on (River and MOA's
/// `balance_classes`): draws are repeated until the wanted class comes up.
#[derive(Debug, Clone, Default)]
pub(crate) struct Balancer {
    on: bool,
    next_zero: bool,
}

impl Balancer {
    pub(crate) fn new(on: bool) -> Self {
        Balancer {
            on,
            next_zero: false,
        }
    }

    /// Whether a draw of class `y` is kept.
    pub(crate) fn accept(&mut self, y: usize) -> bool {
        if !self.on {
            return true;
        }
        let want = if self.next_zero { 0 } else { 1 };
        if y == want {
            self.next_zero = !self.next_zero;
            true
        } else {
            false
        }
    }
}

/// Names `x0..x{n-1}` as numeric features with classes `0..k-1`.
pub(crate) fn numeric_schema(n_features: usize, n_classes: usize) -> Schema {
    let classes: Vec<String> = (0..n_classes).map(|c| c.to_string()).collect();
    let refs: Vec<&str> = classes.iter().map(String::as_str).collect();
    Schema::numeric(n_features, &refs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(spec: &str) -> Vec<Sample> {
        let mut s = from_spec_str(spec).expect("valid spec");
        let mut out = Vec::new();
        while let Some(x) = s.next_sample().expect("generators do not fail") {
            out.push(x);
        }
        out
    }

    fn class_shares(samples: &[Sample], k: usize) -> Vec<f64> {
        let mut c = vec![0.0; k];
        for s in samples {
            c[s.y] += 1.0;
        }
        c.iter().map(|v| v / samples.len() as f64).collect()
    }

    const ALL: &[&str] = &[
        "sea:variant=1,noise=0.1",
        "agrawal:function=3,perturbation=0.05",
        "agrawal:function=9,balance=true",
        "hyperplane:mag_change=0.001",
        "rbf:n_classes=3,n_features=4",
        "rbf_drift:change_speed=0.001,n_drift_centroids=10",
        "rbf_drift:change_speed=0.01,n_centroids=5",
        "led:n_drift_features=3",
        "stagger:function=1,balance=true",
        "sine:function=2,irrelevant=true",
        "waveform:irrelevant=true",
        "random_tree:n_classes=3",
        "drift:stream=agrawal:function=0,drift_stream=agrawal:function=2|perturbation=0.1,position=500,width=50",
    ];

    #[test]
    fn every_generator_is_deterministic_and_well_formed() {
        for spec in ALL {
            let a = collect(&format!("{spec},n=2000,seed=5"));
            let b = collect(&format!("{spec},n=2000,seed=5"));
            let c = collect(&format!("{spec},n=2000,seed=6"));
            assert_eq!(a.len(), 2000, "{spec}");
            assert_eq!(a, b, "{spec}: same seed, same stream");
            assert_ne!(a, c, "{spec}: other seed, other stream");
            let s = from_spec_str(spec).expect("valid");
            let schema = s.schema();
            for x in &a {
                assert_eq!(x.x.len(), schema.n_features(), "{spec}");
                assert!(x.y < schema.n_classes(), "{spec}");
                assert!(x.x.iter().all(|v| v.is_finite()), "{spec}");
            }
            // No generator is degenerate: every class shows up.
            let shares = class_shares(&a, schema.n_classes());
            assert!(shares.iter().all(|&s| s > 0.0), "{spec}: {shares:?}");
        }
    }

    #[test]
    fn balance_gives_equal_classes() {
        for spec in [
            "agrawal:function=1",
            "stagger:function=0",
            "sine:function=0",
        ] {
            let a = collect(&format!("{spec},balance=true,n=1000"));
            assert_eq!(class_shares(&a, 2), vec![0.5, 0.5], "{spec}");
        }
    }

    #[test]
    fn unknown_names_and_params_are_errors() {
        assert!(from_spec_str("nope:n=3").is_err());
        let e = from_spec_str("sea:varaint=1").err().expect("typo");
        assert!(e.to_string().contains("varaint"), "{e}");
        assert!(from_spec_str("sea:variant=4").is_err());
        assert!(from_spec_str("drift:stream=drift").is_err());
    }

    #[test]
    fn nominal_features_stay_in_range() {
        let s = from_spec_str("random_tree:n_cat=3,n_categories=4,n=500").expect("valid");
        let mask = s.schema().nominal_mask();
        assert_eq!(mask.iter().filter(|&&m| m).count(), 3);
        for x in collect("random_tree:n_cat=3,n_categories=4,n=500") {
            for (v, &nominal) in x.x.iter().zip(&mask) {
                if nominal {
                    assert!((0.0..4.0).contains(v) && v.fract() == 0.0);
                }
            }
        }
    }
}
