//! What a task does: the four task kinds over data blobs, with
//! `shoal-learn`, as plain blocking functions (the market runs them on
//! tokio's blocking pool, one per task slot).
//!
//! A data blob is a postcard `Vec<Sample>` (what the learner stores as its
//! recent samples). Its schema is not stored with it: features are numeric,
//! classes are the indices `0..=max(y)`. Every run checks a cancellation
//! flag every few hundred samples so that an aborted lease stops promptly.

use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use shoal_learn::classifier::argmax;
use shoal_learn::metrics::{Metrics, Summary};
use shoal_learn::{build_str, Classifier, Model, Sample, Schema};

use super::tasks::{TaskParams, MAX_CANDIDATES};

/// Prefix of a task's parameter blob.
pub const PARAMS_MAGIC: &[u8] = b"SHOALTASK1";
/// Prefix of a task's result body.
pub const RESULT_MAGIC: &[u8] = b"SHOALRES1";
/// Most samples one task reads (all inputs together).
pub const MAX_SAMPLES: usize = 1_000_000;
/// Most features per sample in task data.
pub const MAX_FEATURES: usize = 4096;
/// Most classes in task data.
pub const MAX_CLASSES: usize = 256;
/// Samples between two looks at the cancellation flag.
const CHECK_EVERY: usize = 256;

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("input {index} is not a data blob: {why}")]
    BadInput { index: usize, why: String },
    #[error("task parameters: {0}")]
    BadParams(String),
    #[error("model spec `{spec}`: {why}")]
    BadSpec { spec: String, why: String },
    #[error("the inputs hold no samples")]
    NoSamples,
    #[error("aborted")]
    Aborted,
}

/// A trained model as a result artifact (train, select).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainedModel {
    pub spec: String,
    pub schema: Schema,
    pub model: Model,
    pub samples: u64,
}

/// What a run produces: a JSON summary for the ledger and an optional
/// artifact (a model, the predictions).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultBody {
    /// JSON text of the summary.
    pub summary: String,
    /// postcard bytes of a [`TrainedModel`] (train, select) or of the
    /// predicted class indices (`Vec<u32>`, predict).
    pub artifact: Option<Vec<u8>>,
}

impl ResultBody {
    /// `RESULT_MAGIC ++ postcard(self)`.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = RESULT_MAGIC.to_vec();
        out.extend(postcard::to_allocvec(self).unwrap_or_default());
        out
    }

    /// Inverse of [`ResultBody::encode`].
    pub fn decode(bytes: &[u8]) -> Option<ResultBody> {
        let body = bytes.strip_prefix(RESULT_MAGIC)?;
        postcard::from_bytes(body).ok()
    }

    /// The summary as JSON.
    pub fn summary_json(&self) -> serde_json::Value {
        serde_json::from_str(&self.summary).unwrap_or(serde_json::Value::Null)
    }
}

/// Encodes task parameters as a blob body.
pub fn encode_params(p: &TaskParams) -> Vec<u8> {
    let mut out = PARAMS_MAGIC.to_vec();
    out.extend(serde_json::to_vec(p).unwrap_or_default());
    out
}

/// Decodes a parameter blob.
pub fn decode_params(bytes: &[u8]) -> Result<TaskParams, ExecError> {
    let body = bytes
        .strip_prefix(PARAMS_MAGIC)
        .ok_or_else(|| ExecError::BadParams("not a task parameter blob".into()))?;
    serde_json::from_slice(body).map_err(|e| ExecError::BadParams(e.to_string()))
}

/// True for blobs the market wrote itself (parameters, results): they are
/// not sample data.
pub fn is_market_blob(bytes: &[u8]) -> bool {
    bytes.starts_with(PARAMS_MAGIC) || bytes.starts_with(RESULT_MAGIC)
}

/// Decodes a data blob, checking the limits.
pub fn decode_samples(index: usize, bytes: &[u8]) -> Result<Vec<Sample>, ExecError> {
    if is_market_blob(bytes) {
        return Err(ExecError::BadInput {
            index,
            why: "a task parameter or result blob".into(),
        });
    }
    let v: Vec<Sample> = postcard::from_bytes(bytes).map_err(|e| ExecError::BadInput {
        index,
        why: e.to_string(),
    })?;
    for s in &v {
        if s.x.len() > MAX_FEATURES || s.y >= MAX_CLASSES {
            return Err(ExecError::BadInput {
                index,
                why: format!(
                    "a sample with {} features or class {} is over the limits",
                    s.x.len(),
                    s.y
                ),
            });
        }
    }
    Ok(v)
}

/// The schema a set of samples implies: numeric features, classes `0..=max y`.
pub fn schema_of(samples: &[Sample]) -> Schema {
    let nf = samples.iter().map(|s| s.x.len()).max().unwrap_or(0);
    let nc = samples.iter().map(|s| s.y + 1).max().unwrap_or(1);
    let names: Vec<String> = (0..nc).map(|i| i.to_string()).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    Schema::numeric(nf, &refs)
}

fn build(spec: &str, schema: &Schema) -> Result<Model, ExecError> {
    build_str(spec, schema).map_err(|e| ExecError::BadSpec {
        spec: spec.to_string(),
        why: e.to_string(),
    })
}

fn check(i: usize, abort: &AtomicBool) -> Result<(), ExecError> {
    if i.is_multiple_of(CHECK_EVERY) && abort.load(Ordering::Relaxed) {
        return Err(ExecError::Aborted);
    }
    Ok(())
}

/// Test-then-train over `samples`; returns the metrics.
fn prequential(
    model: &mut Model,
    samples: &[Sample],
    abort: &AtomicBool,
) -> Result<Summary, ExecError> {
    let mut m = Metrics::new();
    let mut proba = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        check(i, abort)?;
        model.predict_proba_into(&s.x, &mut proba);
        m.update(s.y, &proba);
        model.learn_one(&s.x, s.y, 1.0);
    }
    Ok(m.summary())
}

fn summary_json(s: &Summary) -> serde_json::Value {
    serde_json::to_value(s).unwrap_or(serde_json::Value::Null)
}

/// Runs a task: `params` and the decoded data samples (all inputs, in
/// order), plus the model artifact for `predict`.
pub fn run(
    params: &TaskParams,
    samples: &[Sample],
    model_artifact: Option<&[u8]>,
    abort: &AtomicBool,
) -> Result<ResultBody, ExecError> {
    if samples.is_empty() {
        return Err(ExecError::NoSamples);
    }
    let schema = schema_of(samples);
    match params {
        TaskParams::Train { model } => {
            let mut m = build(model, &schema)?;
            let s = prequential(&mut m, samples, abort)?;
            let trained = TrainedModel {
                spec: model.clone(),
                schema,
                samples: samples.len() as u64,
                model: m,
            };
            let summary = serde_json::json!({
                "samples": samples.len(),
                "model": model,
                "model_kind": trained.model.kind(),
                "memory_bytes": trained.model.memory_bytes(),
                "prequential": summary_json(&s),
            });
            Ok(ResultBody {
                summary: summary.to_string(),
                artifact: postcard::to_allocvec(&trained).ok(),
            })
        }
        TaskParams::Evaluate { model, holdout } => {
            let mut m = build(model, &schema)?;
            let (mode, s) = match holdout {
                None => ("prequential", prequential(&mut m, samples, abort)?),
                Some(f) => {
                    let n_test = ((samples.len() as f64) * f).round() as usize;
                    let n_test = n_test.clamp(1, samples.len());
                    let (train, test) = samples.split_at(samples.len() - n_test);
                    for (i, s) in train.iter().enumerate() {
                        check(i, abort)?;
                        m.learn_one(&s.x, s.y, 1.0);
                    }
                    let mut metrics = Metrics::new();
                    let mut proba = Vec::new();
                    for (i, s) in test.iter().enumerate() {
                        check(i, abort)?;
                        m.predict_proba_into(&s.x, &mut proba);
                        metrics.update(s.y, &proba);
                    }
                    ("holdout", metrics.summary())
                }
            };
            let summary = serde_json::json!({
                "samples": samples.len(),
                "model": model,
                "mode": mode,
                "metrics": summary_json(&s),
            });
            Ok(ResultBody {
                summary: summary.to_string(),
                artifact: None,
            })
        }
        TaskParams::Predict { .. } => {
            let bytes = model_artifact
                .ok_or_else(|| ExecError::BadParams("predict needs a model input".into()))?;
            let body = ResultBody::decode(bytes)
                .and_then(|b| b.artifact)
                .ok_or_else(|| ExecError::BadParams("the model input is not a result".into()))?;
            let trained: TrainedModel = postcard::from_bytes(&body)
                .map_err(|e| ExecError::BadParams(format!("the model input: {e}")))?;
            let mut preds: Vec<u32> = Vec::with_capacity(samples.len());
            let mut correct = 0u64;
            let mut proba = Vec::new();
            for (i, s) in samples.iter().enumerate() {
                check(i, abort)?;
                trained.model.predict_proba_into(&s.x, &mut proba);
                let p = argmax(&proba);
                correct += u64::from(p == Some(s.y));
                preds.push(p.map_or(u32::MAX, |p| p as u32));
            }
            let summary = serde_json::json!({
                "samples": samples.len(),
                "model": trained.spec,
                "accuracy": correct as f64 / samples.len() as f64,
                "first_predictions": preds.iter().take(20).collect::<Vec<_>>(),
            });
            Ok(ResultBody {
                summary: summary.to_string(),
                artifact: postcard::to_allocvec(&preds).ok(),
            })
        }
        TaskParams::Select { models } => select(models, samples, schema, abort),
    }
}

/// Races `specs` prequentially over `samples` in rounds: after each quarter
/// of the data the worse half of the survivors (by prequential accuracy so
/// far) is eliminated, so compute goes to the promising candidates
/// (successive halving). The winner is the best survivor at the end.
fn select(
    specs: &[String],
    samples: &[Sample],
    schema: Schema,
    abort: &AtomicBool,
) -> Result<ResultBody, ExecError> {
    if specs.is_empty() || specs.len() > MAX_CANDIDATES {
        return Err(ExecError::BadParams(format!(
            "select needs 1 to {MAX_CANDIDATES} candidate models"
        )));
    }
    struct Cand {
        spec: String,
        model: Model,
        metrics: Metrics,
        eliminated_at: Option<usize>,
    }
    let mut cands = specs
        .iter()
        .map(|s| {
            Ok(Cand {
                spec: s.clone(),
                model: build(s, &schema)?,
                metrics: Metrics::new(),
                eliminated_at: None,
            })
        })
        .collect::<Result<Vec<_>, ExecError>>()?;
    let n = samples.len();
    let rounds = 4usize;
    let mut proba = Vec::new();
    for r in 0..rounds {
        let (lo, hi) = (n * r / rounds, n * (r + 1) / rounds);
        for c in cands.iter_mut().filter(|c| c.eliminated_at.is_none()) {
            for (i, s) in samples[lo..hi].iter().enumerate() {
                check(i, abort)?;
                c.model.predict_proba_into(&s.x, &mut proba);
                c.metrics.update(s.y, &proba);
                c.model.learn_one(&s.x, s.y, 1.0);
            }
        }
        if r + 1 < rounds {
            let mut alive: Vec<(f64, usize)> = cands
                .iter()
                .enumerate()
                .filter(|(_, c)| c.eliminated_at.is_none())
                .map(|(i, c)| (c.metrics.accuracy(), i))
                .collect();
            alive.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let keep = alive.len().div_ceil(2);
            for (_, i) in alive.into_iter().skip(keep) {
                if let Some(c) = cands.get_mut(i) {
                    c.eliminated_at = Some(hi);
                }
            }
        }
    }
    let mut board: Vec<&Cand> = cands.iter().collect();
    board.sort_by(|a, b| {
        a.eliminated_at
            .is_some()
            .cmp(&b.eliminated_at.is_some())
            .then(b.eliminated_at.cmp(&a.eliminated_at))
            .then(b.metrics.accuracy().total_cmp(&a.metrics.accuracy()))
    });
    let leaderboard: Vec<serde_json::Value> = board
        .iter()
        .map(|c| {
            serde_json::json!({
                "model": c.spec,
                "accuracy": c.metrics.accuracy(),
                "kappa": c.metrics.kappa(),
                "samples": c.metrics.n(),
                "eliminated_at": c.eliminated_at,
            })
        })
        .collect();
    let best = board.first().ok_or(ExecError::NoSamples)?;
    let trained = TrainedModel {
        spec: best.spec.clone(),
        schema,
        model: best.model.clone(),
        samples: n as u64,
    };
    let summary = serde_json::json!({
        "samples": n,
        "best": best.spec,
        "best_accuracy": best.metrics.accuracy(),
        "leaderboard": leaderboard,
    });
    Ok(ResultBody {
        summary: summary.to_string(),
        artifact: postcard::to_allocvec(&trained).ok(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize) -> Vec<Sample> {
        // Class 1 iff x0 > 0.5: easy for every model.
        (0..n)
            .map(|i| {
                let x0 = (i * 37 % 100) as f64 / 100.0;
                Sample {
                    x: vec![x0, (i % 7) as f64],
                    y: usize::from(x0 > 0.5),
                }
            })
            .collect()
    }

    #[test]
    fn train_then_predict_round_trips_the_model() {
        let no = AtomicBool::new(false);
        let d = data(2000);
        let r = run(&TaskParams::Train { model: "nb".into() }, &d, None, &no).unwrap();
        let enc = r.encode();
        let p = TaskParams::Predict { model: "00".into() };
        let out = run(&p, &d, Some(&enc), &no).unwrap();
        let acc = out.summary_json()["accuracy"].as_f64().unwrap();
        assert!(acc > 0.8, "{acc}");
    }

    #[test]
    fn select_ranks_a_real_model_above_the_baseline() {
        let no = AtomicBool::new(false);
        let d = data(2000);
        let p = TaskParams::Select {
            models: vec!["majority".into(), "ht".into(), "nb".into()],
        };
        let out = run(&p, &d, None, &no).unwrap();
        let s = out.summary_json();
        assert_ne!(s["best"], "majority", "{s}");
        assert_eq!(s["leaderboard"].as_array().unwrap().len(), 3);
    }

    #[test]
    fn holdout_and_abort_and_bad_input() {
        let no = AtomicBool::new(false);
        let d = data(1000);
        let p = TaskParams::Evaluate {
            model: "nb".into(),
            holdout: Some(0.25),
        };
        let out = run(&p, &d, None, &no).unwrap();
        assert_eq!(out.summary_json()["metrics"]["n"], 250);
        let yes = AtomicBool::new(true);
        assert!(matches!(run(&p, &d, None, &yes), Err(ExecError::Aborted)));
        assert!(decode_samples(0, b"SHOALTASK1{}").is_err());
        assert!(decode_samples(0, &[0xff, 0xff, 0xff]).is_err());
        assert!(matches!(run(&p, &[], None, &no), Err(ExecError::NoSamples)));
    }
}
