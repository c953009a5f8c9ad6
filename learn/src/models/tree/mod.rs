//! Hoeffding trees: the Very Fast Decision Tree ([`HoeffdingTree`],
//! Domingos & Hulten 2000), the Hoeffding Adaptive Tree
//! ([`HoeffdingAdaptiveTree`], Bifet & Gavaldà 2009) and the Extremely Fast
//! Decision Tree ([`Efdt`], Manapragada, Webb & Salehi 2018), following
//! River's `tree.HoeffdingTreeClassifier`,
//! `tree.HoeffdingAdaptiveTreeClassifier` and
//! `tree.ExtremelyFastDecisionTreeClassifier` (0.21+) so that accuracies
//! can be compared one to one.
//!
//! Beyond the algorithm, the details that decide River's ties are kept too:
//! class weights are summed and compared in the order River's dictionaries
//! hold them, the normal CDF is the C library's `erf` (as CPython's), and
//! split candidates rank stably. With these the trees take the same
//! decisions as River's on the same stream, not just similar ones. One
//! difference remains by design: a final prediction tie goes to the lower
//! class index, where River picks the smaller label.
//!
//! Both keep their nodes in an arena (`Vec` of nodes, children by index):
//! no pointers, cheap to serialize, and the heap footprint is the sum of the
//! vectors' capacities. Missing values are `NaN`: observers skip them, and a
//! sample whose split feature is missing follows the child that has seen the
//! most weight.
//!
//! Parameters and defaults (River's), shared by `ht`, `hat` and `efdt`
//! (`efdt` adds `min_samples_reevaluate`, 20; it ignores `merit_preprune`
//! and `remove_poor_attrs`, as River's EFDT does):
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `grace_period` | 200 | weight a leaf sees between split attempts |
//! | `max_depth` | none | deepest level a leaf may split at |
//! | `split_criterion` | `info_gain` | `info_gain`, `gini` or `hellinger` |
//! | `delta` | 1e-7 | confidence of the Hoeffding bound |
//! | `tau` | 0.05 | bound below which a tie is broken by splitting |
//! | `leaf` | `nba` | leaf prediction: `mc`, `nb` or `nba` (adaptive) |
//! | `nb_threshold` | 0 | weight a leaf needs before `nb` predicts |
//! | `n_splits` | 10 | candidate thresholds of the Gaussian observer |
//! | `nominal_split` | `multiway` | `binary` allows only binary splits (River's `binary_split`) |
//! | `min_branch_fraction` | 0.01 | a split needs two branches above this share of the weight |
//! | `max_share_to_split` | 0.99 | no split while one class holds more than this share |
//! | `max_size` | 100 | memory limit in MiB; least promising leaves are deactivated above it |
//! | `memory_estimate_period` | 1000000 | weight between memory checks |
//! | `stop_mem_management` | false | stop growing once the limit is hit |
//! | `remove_poor_attrs` | false | drop features far behind the best (majority-class leaves) |
//! | `merit_preprune` | true | the null split is a candidate |

pub mod efdt;
pub mod hat;
pub mod hoeffding_tree;
pub mod leaf;
pub mod mersenne;
pub mod observer;
pub mod split;

pub use efdt::{Efdt, EfdtParams};
pub use hat::{HatParams, HoeffdingAdaptiveTree};
pub use hoeffding_tree::HoeffdingTree;
pub use split::SplitCriterion;

use serde::{Deserialize, Serialize};

use crate::classifier::vec_bytes;
use crate::schema::Schema;
use crate::spec::{ParamDoc, ParamReader, Spec, SpecError};

/// How a leaf predicts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LeafPrediction {
    /// Class weights seen at the leaf (`mc`).
    MajorityClass,
    /// Naive Bayes over the leaf's observers (`nb`).
    NaiveBayes,
    /// Naive Bayes when it has been at least as accurate as the majority
    /// class on the samples this leaf learnt from (`nba`, River's default).
    NaiveBayesAdaptive,
}

/// Parameters shared by the Hoeffding trees; `Default` is River's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeParams {
    /// Weight a leaf must see between split attempts (200).
    pub grace_period: f64,
    /// Leaves at this depth stop splitting (`None`: unlimited).
    pub max_depth: Option<usize>,
    /// Split criterion (information gain).
    pub split_criterion: SplitCriterion,
    /// One minus the confidence of the Hoeffding bound (1e-7).
    pub delta: f64,
    /// Tie threshold (0.05).
    pub tau: f64,
    /// Leaf prediction (`nba`).
    pub leaf_prediction: LeafPrediction,
    /// Weight a leaf needs before `nb` uses naive Bayes (0).
    pub nb_threshold: f64,
    /// Candidate thresholds per numeric feature (10).
    pub n_splits: usize,
    /// Only binary splits, also for nominal features (false).
    pub binary_split: bool,
    /// Minimum share of weight in at least two branches (0.01).
    pub min_branch_fraction: f64,
    /// Do not split while the majority class holds more than this (0.99).
    pub max_share_to_split: f64,
    /// Memory limit in MiB (100).
    pub max_size: f64,
    /// Weight between memory estimates (1e6).
    pub memory_estimate_period: u64,
    /// Stop growing once the memory limit is hit (false).
    pub stop_mem_management: bool,
    /// Drop attributes far behind the best (false).
    pub remove_poor_attrs: bool,
    /// The null split is a split candidate (true).
    pub merit_preprune: bool,
    /// Which features are nominal (from the schema); features past the end
    /// are numeric.
    pub nominal: Vec<bool>,
}

impl Default for TreeParams {
    fn default() -> Self {
        TreeParams {
            grace_period: 200.0,
            max_depth: None,
            split_criterion: SplitCriterion::InfoGain,
            delta: 1e-7,
            tau: 0.05,
            leaf_prediction: LeafPrediction::NaiveBayesAdaptive,
            nb_threshold: 0.0,
            n_splits: 10,
            binary_split: false,
            min_branch_fraction: 0.01,
            max_share_to_split: 0.99,
            max_size: 100.0,
            memory_estimate_period: 1_000_000,
            stop_mem_management: false,
            remove_poor_attrs: false,
            merit_preprune: true,
            nominal: Vec::new(),
        }
    }
}

impl TreeParams {
    /// River's defaults with the nominal features of `schema`.
    pub fn for_schema(schema: &Schema) -> Self {
        TreeParams {
            nominal: schema.nominal_mask(),
            ..TreeParams::default()
        }
    }

    #[inline]
    pub fn is_nominal(&self, i: usize) -> bool {
        self.nominal.get(i).copied().unwrap_or(false)
    }

    pub(crate) fn max_depth_or_max(&self) -> usize {
        self.max_depth.unwrap_or(usize::MAX)
    }

    pub(crate) fn max_bytes(&self) -> f64 {
        self.max_size * 1024.0 * 1024.0
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        vec_bytes(&self.nominal)
    }

    /// Read the shared parameters from a spec (see [`HT_PARAMS`]).
    pub fn from_reader(r: &mut ParamReader<'_>, schema: &Schema) -> Result<Self, SpecError> {
        let d = TreeParams::for_schema(schema);
        let grace_period = r.usize_in("grace_period", 200, 1, 1 << 40)? as f64;
        let max_depth = match r.string("max_depth", "none").to_ascii_lowercase().as_str() {
            "none" | "" => None,
            _ => Some(r.usize_in("max_depth", 0, 0, 1 << 20)?),
        };
        let split_criterion = match r.choice(
            "split_criterion",
            "info_gain",
            &["info_gain", "gini", "hellinger"],
        )? {
            "gini" => SplitCriterion::Gini,
            "hellinger" => SplitCriterion::Hellinger,
            _ => SplitCriterion::InfoGain,
        };
        let delta = r.f64_in("delta", d.delta, f64::MIN_POSITIVE, 1.0)?;
        let tau = r.f64_in("tau", d.tau, 0.0, 1e9)?;
        let leaf_prediction = match r.choice("leaf", "nba", &["mc", "nb", "nba"])? {
            "mc" => LeafPrediction::MajorityClass,
            "nb" => LeafPrediction::NaiveBayes,
            _ => LeafPrediction::NaiveBayesAdaptive,
        };
        let nb_threshold = r.f64_in("nb_threshold", 0.0, 0.0, 1e18)?;
        let n_splits = r.usize_in("n_splits", d.n_splits, 1, 10_000)?;
        let binary_split =
            r.choice("nominal_split", "multiway", &["multiway", "binary"])? == "binary";
        let binary_split = r.bool("binary_split", binary_split)?;
        let min_branch_fraction =
            r.f64_in("min_branch_fraction", d.min_branch_fraction, 0.0, 1.0)?;
        let max_share_to_split = r.f64_in("max_share_to_split", d.max_share_to_split, 0.0, 1.0)?;
        let max_size = r.f64_in("max_size", d.max_size, 0.0, 1e9)?;
        let memory_estimate_period =
            r.usize_in("memory_estimate_period", 1_000_000, 1, usize::MAX)? as u64;
        let stop_mem_management = r.bool("stop_mem_management", false)?;
        let remove_poor_attrs = r.bool("remove_poor_attrs", false)?;
        let merit_preprune = r.bool("merit_preprune", true)?;
        Ok(TreeParams {
            grace_period,
            max_depth,
            split_criterion,
            delta,
            tau,
            leaf_prediction,
            nb_threshold,
            n_splits,
            binary_split,
            min_branch_fraction,
            max_share_to_split,
            max_size,
            memory_estimate_period,
            stop_mem_management,
            remove_poor_attrs,
            merit_preprune,
            nominal: d.nominal,
        })
    }
}

/// How many of `n` leaves may stay active under `max_bytes`, given the
/// estimated bytes of an active and an inactive leaf and the overhead
/// factor (Kirkby 2007's rule, as River's `_enforce_size_limit`).
pub(crate) fn max_active_leaves(
    n: usize,
    active_leaf_bytes: f64,
    inactive_leaf_bytes: f64,
    overhead_fraction: f64,
    max_bytes: f64,
) -> usize {
    let mut max_active = 0;
    while max_active < n {
        max_active += 1;
        let est = (max_active as f64 * active_leaf_bytes
            + (n - max_active) as f64 * inactive_leaf_bytes)
            * overhead_fraction;
        if est > max_bytes {
            max_active -= 1;
            break;
        }
    }
    max_active
}

/// Kirkby's running size estimates, shared by the trees: from `counted`,
/// the (number, total bytes) of the active and of the inactive leaves,
/// update the mean bytes of an active and an inactive leaf (kept while
/// a kind has no leaf) and the overhead factor between the tree's `actual`
/// size and what the leaves alone account for.
pub(crate) fn update_size_estimates(
    counted: [(usize, usize); 2],
    actual: f64,
    leaf_bytes: [&mut f64; 2],
    overhead_fraction: &mut f64,
) {
    let mut estimated = 0.0;
    for ((n, bytes), mean) in counted.into_iter().zip(leaf_bytes) {
        if bytes > 0 && n > 0 {
            *mean = bytes as f64 / n as f64;
        }
        estimated += n as f64 * *mean;
    }
    if estimated > 0.0 {
        *overhead_fraction = actual / estimated;
    }
}

/// The parameter docs every Hoeffding tree shares, followed by `$extra`.
macro_rules! tree_param_docs {
    ($($extra:expr),* $(,)?) => {
        &[
            ParamDoc {
                name: "grace_period",
                default: "200",
                help: "weight a leaf sees between split attempts",
            },
            ParamDoc {
                name: "max_depth",
                default: "none",
                help: "depth at which leaves stop splitting (none = unlimited)",
            },
            ParamDoc {
                name: "split_criterion",
                default: "info_gain",
                help: "info_gain | gini | hellinger",
            },
            ParamDoc {
                name: "delta",
                default: "1e-7",
                help: "significance of the Hoeffding bound (smaller = more evidence before a split)",
            },
            ParamDoc {
                name: "tau",
                default: "0.05",
                help: "tie threshold: split anyway once the Hoeffding bound is below it",
            },
            ParamDoc {
                name: "leaf",
                default: "nba",
                help: "leaf prediction: mc (majority class) | nb (naive Bayes) | nba (adaptive)",
            },
            ParamDoc {
                name: "nb_threshold",
                default: "0",
                help: "weight a leaf needs before nb leaves use naive Bayes",
            },
            ParamDoc {
                name: "n_splits",
                default: "10",
                help: "candidate thresholds per numeric feature (Gaussian observer)",
            },
            ParamDoc {
                name: "nominal_split",
                default: "multiway",
                help: "multiway | binary (binary = River's binary_split=True)",
            },
            ParamDoc {
                name: "binary_split",
                default: "false",
                help: "River's name for nominal_split=binary",
            },
            ParamDoc {
                name: "min_branch_fraction",
                default: "0.01",
                help: "a split needs two branches with more than this share of the weight",
            },
            ParamDoc {
                name: "max_share_to_split",
                default: "0.99",
                help: "no split while the majority class holds more than this share",
            },
            ParamDoc {
                name: "max_size",
                default: "100",
                help: "memory limit in MiB; least promising leaves are deactivated above it",
            },
            ParamDoc {
                name: "memory_estimate_period",
                default: "1000000",
                help: "weight seen between memory checks",
            },
            ParamDoc {
                name: "stop_mem_management",
                default: "false",
                help: "stop growing as soon as the memory limit is hit",
            },
            ParamDoc {
                name: "remove_poor_attrs",
                default: "false",
                help: "stop observing features far behind the best (mc leaves only, as River)",
            },
            ParamDoc {
                name: "merit_preprune",
                default: "true",
                help: "count the null split as a candidate",
            },
            $($extra),*
        ]
    };
}

/// Documentation of the parameters of `ht`.
pub const HT_PARAMS: &[ParamDoc] = tree_param_docs!();

/// Documentation of the parameters of `hat` (the shared ones, then its own).
pub const HAT_PARAMS: &[ParamDoc] = tree_param_docs!(
    ParamDoc {
        name: "bootstrap_sampling",
        default: "true",
        help: "weight each sample at each leaf by a Poisson(1) draw",
    },
    ParamDoc {
        name: "drift_window_threshold",
        default: "300",
        help: "samples both a subtree and its alternate must see before they are compared",
    },
    ParamDoc {
        name: "switch_significance",
        default: "0.05",
        help: "significance of the test that swaps in (or drops) an alternate subtree",
    },
    ParamDoc {
        name: "adwin_delta",
        default: "0.002",
        help: "delta of the ADWIN detector on each node's error (River: drift_detector=ADWIN())",
    },
    ParamDoc {
        name: "seed",
        default: "42",
        help: "bootstrap seed; CPython's Mersenne Twister, so seed=S draws as River's seed=S",
    },
);

/// Documentation of the parameters of `efdt` (the shared ones, then its own).
pub const EFDT_PARAMS: &[ParamDoc] = tree_param_docs!(ParamDoc {
    name: "min_samples_reevaluate",
    default: "20",
    help: "weight a branch sees before its split is re-evaluated (then every sample until the split changes, as River)",
},);

/// Build `efdt` from a spec such as `efdt:min_samples_reevaluate=50`.
pub fn build_efdt(spec: &Spec, schema: &Schema) -> Result<Efdt, SpecError> {
    let mut r = spec.reader();
    let params = TreeParams::from_reader(&mut r, schema)?;
    let efdt = EfdtParams::from_reader(&mut r)?;
    r.finish()?;
    Ok(Efdt::new(params, efdt))
}

/// Build `ht` from a spec such as `ht:grace_period=100,leaf=nb`.
pub fn build_ht(spec: &Spec, schema: &Schema) -> Result<HoeffdingTree, SpecError> {
    let mut r = spec.reader();
    let params = TreeParams::from_reader(&mut r, schema)?;
    r.finish()?;
    Ok(HoeffdingTree::new(params))
}

/// Build `hat` from a spec such as `hat:seed=7,bootstrap_sampling=false`.
pub fn build_hat(spec: &Spec, schema: &Schema) -> Result<HoeffdingAdaptiveTree, SpecError> {
    let mut r = spec.reader();
    let params = TreeParams::from_reader(&mut r, schema)?;
    let d = HatParams::default();
    let hat = HatParams {
        bootstrap_sampling: r.bool("bootstrap_sampling", d.bootstrap_sampling)?,
        drift_window_threshold: r.usize_in("drift_window_threshold", 300, 0, 1 << 40)? as f64,
        switch_significance: r.f64_in("switch_significance", d.switch_significance, 1e-12, 1.0)?,
        adwin_delta: r.f64_in("adwin_delta", d.adwin_delta, 1e-12, 1.0)?,
        seed: r.u64("seed", d.seed)?,
    };
    r.finish()?;
    Ok(HoeffdingAdaptiveTree::new(params, hat))
}
