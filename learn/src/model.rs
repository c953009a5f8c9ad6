//! Every classifier by name: building one from a spec
//! (`ht:grace_period=100,leaf=nb`), listing them with their parameters, and
//! the serializable [`Model`] enum that wraps them all, so that a model of any
//! kind can be snapshotted, sent to a peer and restored.

use serde::{Deserialize, Serialize};

use crate::classifier::Classifier;
use crate::models::auto::{self, Auto};
use crate::models::baseline::{Majority, NoChange};
use crate::models::ensemble::{
    adwin_bagging, arf, leveraging, oza, srp, AdwinBagging, Arf, LeveragingBagging, OzaBagging,
    OzaBoosting, Srp,
};
use crate::models::knn::Knn;
use crate::models::linear::{LogisticRegression, PassiveAggressive, Perceptron};
use crate::models::mlp::{self, Mlp};
use crate::models::naive_bayes::GaussianNB;
use crate::models::tree::{self, Efdt, HoeffdingAdaptiveTree, HoeffdingTree};
use crate::schema::Schema;
use crate::spec::{ParamDoc, Spec, SpecError};

/// Description of a model kind for `shoal-bench models`.
#[derive(Debug, Clone, Copy)]
pub struct ModelInfo {
    pub name: &'static str,
    pub summary: &'static str,
    pub params: &'static [ParamDoc],
}

/// All model kinds, in the order `shoal-bench models` shows them.
pub const MODELS: &[ModelInfo] = &[
    ModelInfo {
        name: "majority",
        summary: "majority class seen so far",
        params: &[],
    },
    ModelInfo {
        name: "no_change",
        summary: "predicts the last label seen",
        params: &[],
    },
    ModelInfo {
        name: "nb",
        summary: "Gaussian naive Bayes (River GaussianNB); nominal features by smoothed counts",
        params: &[ParamDoc {
            name: "var_smoothing",
            default: "0",
            help: "add this share of the largest feature variance to every class variance \
                   (scikit-learn's var_smoothing, 1e-9 there; 0 = River's GaussianNB)",
        }],
    },
    ModelInfo {
        name: "lr",
        summary: "logistic regression (2 classes) or softmax regression (more), SGD",
        params: LINEAR_PARAMS_LR,
    },
    ModelInfo {
        name: "perceptron",
        summary: "perceptron (River Perceptron), one-vs-rest beyond 2 classes",
        params: &[
            ParamDoc {
                name: "lr",
                default: "1",
                help: "learning rate of weights and bias",
            },
            ParamDoc {
                name: "l2",
                default: "0",
                help: "L2 penalty (lr*l2 must be <= 1)",
            },
            ParamDoc {
                name: "scale",
                default: "false",
                help: "online standard scaling of the inputs",
            },
        ],
    },
    ModelInfo {
        name: "pa",
        summary: "passive-aggressive classifier (River PAClassifier), one-vs-rest beyond 2 classes",
        params: &[
            ParamDoc {
                name: "c",
                default: "1.0",
                help: "aggressiveness bound C",
            },
            ParamDoc {
                name: "mode",
                default: "1",
                help: "0 = PA, 1 = PA-I, 2 = PA-II",
            },
            ParamDoc {
                name: "scale",
                default: "false",
                help: "online standard scaling of the inputs",
            },
        ],
    },
    ModelInfo {
        name: "knn",
        summary: "k nearest neighbours over a sliding window (River KNNClassifier, exact search)",
        params: &[
            ParamDoc {
                name: "n_neighbors",
                default: "5",
                help: "neighbours that vote",
            },
            ParamDoc {
                name: "window_size",
                default: "1000",
                help: "samples kept (most recent)",
            },
            ParamDoc {
                name: "p",
                default: "2",
                help: "Minkowski exponent of the distance",
            },
            ParamDoc {
                name: "weighted",
                default: "true",
                help: "votes weighted by 1/distance",
            },
        ],
    },
    ModelInfo {
        name: "ht",
        summary: "Hoeffding tree / VFDT (River HoeffdingTreeClassifier defaults)",
        params: tree::HT_PARAMS,
    },
    ModelInfo {
        name: "hat",
        summary: "Hoeffding adaptive tree: ADWIN per node, alternate subtrees (River defaults)",
        params: tree::HAT_PARAMS,
    },
    ModelInfo {
        name: "efdt",
        summary: "Extremely Fast Decision Tree / Hoeffding anytime tree: splits once better than not splitting, re-evaluates splits (River defaults)",
        params: tree::EFDT_PARAMS,
    },
    ModelInfo {
        name: "arf",
        summary: "Adaptive Random Forest: Poisson(6) bagging, random features per leaf, ADWIN warning/drift with background trees (River defaults)",
        params: arf::ARF_PARAMS,
    },
    ModelInfo {
        name: "srp",
        summary: "Streaming Random Patches: random subspaces + Poisson(6) bagging of Hoeffding trees, ADWIN warning/drift (River defaults)",
        params: srp::SRP_PARAMS,
    },
    ModelInfo {
        name: "lb",
        summary: "Leveraging Bagging: Poisson(6) bagging, ADWIN per member, worst member reset on change (River defaults)",
        params: leveraging::LB_PARAMS,
    },
    ModelInfo {
        name: "oza_bag",
        summary: "Oza online bagging: Poisson(1) weights (River BaggingClassifier)",
        params: oza::OZA_BAG_PARAMS,
    },
    ModelInfo {
        name: "oza_boost",
        summary: "Oza online boosting (River AdaBoostClassifier)",
        params: oza::OZA_BOOST_PARAMS,
    },
    ModelInfo {
        name: "adwin_bag",
        summary: "ADWIN bagging: Oza bagging with an ADWIN error detector per member",
        params: adwin_bagging::ADWIN_BAG_PARAMS,
    },
    ModelInfo {
        name: "mlp",
        summary: "online multilayer perceptron: standardised inputs, softmax over growing classes, SGD or Adam",
        params: mlp::MLP_PARAMS,
    },
    ModelInfo {
        name: "auto",
        summary: "online model selection: races a pool of learners (successive halving, Hoeffding elimination), re-explores on drift, top-k vote",
        params: auto::AUTO_PARAMS,
    },
];

const LINEAR_PARAMS_LR: &[ParamDoc] = &[
    ParamDoc {
        name: "lr",
        default: "0.01",
        help: "SGD learning rate of the weights",
    },
    ParamDoc {
        name: "l2",
        default: "0",
        help: "L2 penalty (lr*l2 must be <= 1)",
    },
    ParamDoc {
        name: "intercept_lr",
        default: "0.01",
        help: "learning rate of the bias(es); 0 = River's bias-free softmax",
    },
    ParamDoc {
        name: "scale",
        default: "false",
        help: "online standard scaling of the inputs",
    },
];

/// A model of any kind. `#[serde]` snapshots carry the kind and the whole
/// state, so a restored model predicts exactly as the original did.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Model {
    Majority(Majority),
    NoChange(NoChange),
    NaiveBayes(GaussianNB),
    Logistic(LogisticRegression),
    Perceptron(Perceptron),
    PassiveAggressive(PassiveAggressive),
    Knn(Knn),
    Ht(HoeffdingTree),
    Hat(HoeffdingAdaptiveTree),
    Efdt(Efdt),
    Arf(Arf),
    Srp(Srp),
    Lb(LeveragingBagging),
    OzaBag(OzaBagging),
    OzaBoost(OzaBoosting),
    AdwinBag(AdwinBagging),
    Mlp(Mlp),
    Auto(Auto),
}

/// Delegates a method call to the wrapped model, whatever its kind.
macro_rules! each_model {
    ($self:expr, $m:ident => $body:expr) => {
        match $self {
            Model::Majority($m) => $body,
            Model::NoChange($m) => $body,
            Model::NaiveBayes($m) => $body,
            Model::Logistic($m) => $body,
            Model::Perceptron($m) => $body,
            Model::PassiveAggressive($m) => $body,
            Model::Knn($m) => $body,
            Model::Ht($m) => $body,
            Model::Hat($m) => $body,
            Model::Efdt($m) => $body,
            Model::Arf($m) => $body,
            Model::Srp($m) => $body,
            Model::Lb($m) => $body,
            Model::OzaBag($m) => $body,
            Model::OzaBoost($m) => $body,
            Model::AdwinBag($m) => $body,
            Model::Mlp($m) => $body,
            Model::Auto($m) => $body,
        }
    };
}

impl Model {
    /// Short kind name (`ht`, `nb`, ...), as used in specs.
    pub fn kind(&self) -> &'static str {
        match self {
            Model::Majority(_) => "majority",
            Model::NoChange(_) => "no_change",
            Model::NaiveBayes(_) => "nb",
            Model::Logistic(_) => "lr",
            Model::Perceptron(_) => "perceptron",
            Model::PassiveAggressive(_) => "pa",
            Model::Knn(_) => "knn",
            Model::Ht(_) => "ht",
            Model::Hat(_) => "hat",
            Model::Efdt(_) => "efdt",
            Model::Arf(_) => "arf",
            Model::Srp(_) => "srp",
            Model::Lb(_) => "lb",
            Model::OzaBag(_) => "oza_bag",
            Model::OzaBoost(_) => "oza_boost",
            Model::AdwinBag(_) => "adwin_bag",
            Model::Mlp(_) => "mlp",
            Model::Auto(_) => "auto",
        }
    }

    /// Whether this model holds other models (an ensemble or model
    /// selection); such models cannot be members of bagging ensembles.
    pub fn is_ensemble(&self) -> bool {
        matches!(
            self.kind(),
            "arf" | "srp" | "lb" | "oza_bag" | "oza_boost" | "adwin_bag" | "auto"
        )
    }
}

impl Classifier for Model {
    fn learn_one(&mut self, x: &[f64], y: usize, weight: f64) {
        each_model!(self, m => m.learn_one(x, y, weight))
    }

    fn predict_proba_into(&self, x: &[f64], out: &mut Vec<f64>) {
        each_model!(self, m => m.predict_proba_into(x, out))
    }

    fn n_classes(&self) -> usize {
        each_model!(self, m => m.n_classes())
    }

    fn memory_bytes(&self) -> usize {
        each_model!(self, m => m.memory_bytes())
    }
}

/// Build a model from a spec string, e.g. `"ht:grace_period=100"`.
pub fn build_str(spec: &str, schema: &Schema) -> Result<Model, SpecError> {
    build(&Spec::parse(spec)?, schema)
}

/// Build a model from a parsed spec. `schema` tells which features are
/// nominal; models grow past it if the stream grows.
pub fn build(spec: &Spec, schema: &Schema) -> Result<Model, SpecError> {
    let model = match spec.name.as_str() {
        "majority" => {
            spec.reader().finish()?;
            Model::Majority(Majority::new())
        }
        "no_change" => {
            spec.reader().finish()?;
            Model::NoChange(NoChange::new())
        }
        "nb" => {
            let mut r = spec.reader();
            let var_smoothing = r.f64_in("var_smoothing", 0.0, 0.0, 1.0)?;
            r.finish()?;
            Model::NaiveBayes(GaussianNB::new(schema).with_var_smoothing(var_smoothing))
        }
        "lr" => {
            let mut r = spec.reader();
            let lr = r.f64_in("lr", 0.01, 0.0, 100.0)?;
            let l2 = r.f64_in("l2", 0.0, 0.0, 100.0)?;
            let intercept_lr = r.f64_in("intercept_lr", 0.01, 0.0, 100.0)?;
            let scale = r.bool("scale", false)?;
            r.finish()?;
            check_shrink(spec, lr, l2)?;
            Model::Logistic(LogisticRegression::new(
                lr,
                l2,
                intercept_lr,
                scale,
                schema.n_classes(),
            ))
        }
        "perceptron" => {
            let mut r = spec.reader();
            let lr = r.f64_in("lr", 1.0, 0.0, 100.0)?;
            let l2 = r.f64_in("l2", 0.0, 0.0, 100.0)?;
            let scale = r.bool("scale", false)?;
            r.finish()?;
            check_shrink(spec, lr, l2)?;
            Model::Perceptron(Perceptron::new(lr, l2, scale, schema.n_classes()))
        }
        "pa" => {
            let mut r = spec.reader();
            let c = r.f64_in("c", 1.0, 1e-12, 1e12)?;
            let mode = r.usize_in("mode", 1, 0, 2)?;
            let scale = r.bool("scale", false)?;
            r.finish()?;
            Model::PassiveAggressive(PassiveAggressive::new(
                c,
                mode as u8,
                scale,
                schema.n_classes(),
            ))
        }
        "knn" => {
            let mut r = spec.reader();
            let k = r.usize_in("n_neighbors", 5, 1, 1000)?;
            let window = r.usize_in("window_size", 1000, 1, 1_000_000)?;
            let p = r.f64_in("p", 2.0, 1e-3, 100.0)?;
            let weighted = r.bool("weighted", true)?;
            r.finish()?;
            Model::Knn(Knn::new(schema, k, window, p, weighted))
        }
        "ht" => Model::Ht(tree::build_ht(spec, schema)?),
        "hat" => Model::Hat(tree::build_hat(spec, schema)?),
        "efdt" => Model::Efdt(tree::build_efdt(spec, schema)?),
        "arf" => Model::Arf(arf::build_arf(spec, schema)?),
        "srp" => Model::Srp(srp::build_srp(spec, schema)?),
        "lb" => Model::Lb(leveraging::build_lb(spec, schema)?),
        "oza_bag" => Model::OzaBag(oza::build_oza_bag(spec, schema)?),
        "oza_boost" => Model::OzaBoost(oza::build_oza_boost(spec, schema)?),
        "adwin_bag" => Model::AdwinBag(adwin_bagging::build_adwin_bag(spec, schema)?),
        "mlp" => Model::Mlp(Mlp::from_spec(spec, schema)?),
        "auto" => Model::Auto(Auto::from_spec(spec, schema)?),
        other => {
            return Err(SpecError::UnknownName {
                name: other.to_string(),
                known: MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", "),
            })
        }
    };
    Ok(model)
}

/// SGD with L2 multiplies each weight by `1 - lr·l2` per step; past 1 the
/// weights would flip sign and grow without bound.
fn check_shrink(spec: &Spec, lr: f64, l2: f64) -> Result<(), SpecError> {
    if lr * l2 > 1.0 {
        return Err(SpecError::BadValue {
            name: spec.name.clone(),
            param: "l2".into(),
            value: l2.to_string(),
            why: format!("lr * l2 = {} must be at most 1", lr * l2),
        });
    }
    Ok(())
}
