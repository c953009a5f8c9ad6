//! Prequential (test-then-train) evaluation of any [`Classifier`] over any
//! [`Stream`]: each sample is first predicted, scored, then learnt.
//!
//! ```no_run
//! use shoal_learn::{eval, model, stream};
//!
//! let mut s = stream::open("sea:n=10000").expect("valid spec");
//! let mut m = model::build_str("majority", s.schema()).expect("known model");
//! let report = eval::prequential(&mut m, &mut s, &eval::EvalConfig::default(), |_| {})
//!     .expect("generators do not fail");
//! println!("accuracy {:.4}", report.accuracy);
//! ```
//!
//! Time is wall-clock over the whole loop, reading and parsing included, so
//! throughput is what a user sees end to end; `model_seconds` is the part
//! spent inside the model, measured on every [`MODEL_TIME_EVERY`]th sample
//! and scaled up (reading the clock twice per sample would cost a few
//! percent of the loop on fast models). Bad records (parse errors) are
//! counted and skipped; an I/O error ends the evaluation.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::classifier::Classifier;
use crate::metrics::{Metrics, Summary, WindowMetrics};
use crate::stream::{Stream, StreamError};

/// `model_seconds` times one sample in this many and scales the sum up.
pub const MODEL_TIME_EVERY: u64 = 8;

/// How to run an evaluation.
#[derive(Debug, Clone)]
pub struct EvalConfig {
    /// Stop after this many samples.
    pub limit: Option<u64>,
    /// Record a learning-curve row every this many samples (0: none).
    pub checkpoint: u64,
    /// Window of the windowed metrics in checkpoints.
    pub window: usize,
    /// Sample the model's memory every this many samples (0: only at the
    /// end) to report the largest size seen.
    pub memory_every: u64,
    /// Call the progress callback every this many samples (0: never).
    pub progress_every: u64,
    /// Give up after this many bad records (0: never).
    pub max_bad: u64,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            limit: None,
            checkpoint: 0,
            window: 1000,
            memory_every: 10_000,
            progress_every: 10_000,
            max_bad: 0,
        }
    }
}

/// One learning-curve row.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    /// Samples evaluated so far.
    pub n: u64,
    /// Seconds since the start.
    pub seconds: f64,
    pub model_bytes: usize,
    /// Metrics over every sample so far.
    pub cumulative: Summary,
    /// Metrics over the last `window` samples.
    pub window: Summary,
}

/// Where an evaluation is, for progress reports.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub n: u64,
    pub bad_rows: u64,
    pub seconds: f64,
    pub accuracy: f64,
}

/// Result of an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EvalReport {
    /// Samples evaluated (bad records excluded).
    pub n: u64,
    /// Bad records skipped.
    pub bad_rows: u64,
    /// First bad record's message, if any.
    pub first_bad_row: Option<String>,
    pub n_classes: usize,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub kappa: f64,
    pub kappa_m: f64,
    pub kappa_t: f64,
    pub macro_f1: f64,
    pub log_loss: f64,
    pub auc: Option<f64>,
    /// Wall seconds of the whole loop (reading included).
    pub seconds: f64,
    /// Seconds inside `predict_proba_into` and `learn_one` (estimated from
    /// every [`MODEL_TIME_EVERY`]th sample).
    pub model_seconds: f64,
    /// Samples per wall second.
    pub throughput: f64,
    /// `memory_bytes()` of the final model.
    pub model_bytes: usize,
    /// Largest `memory_bytes()` seen when sampled.
    pub max_model_bytes: usize,
    pub checkpoints: Vec<Checkpoint>,
}

/// Run test-then-train over `stream` (at most `config.limit` samples),
/// calling `progress` every `config.progress_every` samples.
pub fn prequential<C, S>(
    model: &mut C,
    stream: &mut S,
    config: &EvalConfig,
    mut progress: impl FnMut(&Progress),
) -> Result<EvalReport, StreamError>
where
    C: Classifier + ?Sized,
    S: Stream + ?Sized,
{
    let start = Instant::now();
    let mut metrics = Metrics::new();
    let mut window = WindowMetrics::new(config.window);
    let mut proba = Vec::new();
    let mut x = Vec::new();
    let mut timed = 0u64;
    let mut n = 0u64;
    let mut bad = 0u64;
    let mut first_bad = None;
    let mut model_time = 0.0;
    let mut max_bytes = model.memory_bytes();
    let mut checkpoints = Vec::new();
    let limit = config.limit.unwrap_or(u64::MAX);

    while n < limit {
        let y = match stream.next_sample_into(&mut x) {
            Ok(Some(y)) => y,
            Ok(None) => break,
            Err(e) if e.is_recoverable() => {
                bad += 1;
                if first_bad.is_none() {
                    first_bad = Some(e.to_string());
                }
                if config.max_bad > 0 && bad >= config.max_bad {
                    return Err(e);
                }
                continue;
            }
            Err(e) => return Err(e),
        };
        if n.is_multiple_of(MODEL_TIME_EVERY) {
            let t0 = Instant::now();
            model.predict_proba_into(&x, &mut proba);
            model.learn_one(&x, y, 1.0);
            model_time += t0.elapsed().as_secs_f64();
            timed += 1;
        } else {
            model.predict_proba_into(&x, &mut proba);
            model.learn_one(&x, y, 1.0);
        }
        metrics.update(y, &proba);
        if config.checkpoint > 0 {
            window.update(y, &proba);
        }
        n += 1;

        if config.memory_every > 0 && n.is_multiple_of(config.memory_every) {
            max_bytes = max_bytes.max(model.memory_bytes());
        }
        if config.checkpoint > 0 && n.is_multiple_of(config.checkpoint) {
            let bytes = model.memory_bytes();
            max_bytes = max_bytes.max(bytes);
            checkpoints.push(Checkpoint {
                n,
                seconds: start.elapsed().as_secs_f64(),
                model_bytes: bytes,
                cumulative: metrics.summary(),
                window: window.summary(),
            });
        }
        if config.progress_every > 0 && n.is_multiple_of(config.progress_every) {
            progress(&Progress {
                n,
                bad_rows: bad,
                seconds: start.elapsed().as_secs_f64(),
                accuracy: metrics.accuracy(),
            });
        }
    }

    let seconds = start.elapsed().as_secs_f64();
    let model_bytes = model.memory_bytes();
    let s = metrics.summary();
    Ok(EvalReport {
        n,
        bad_rows: bad,
        first_bad_row: first_bad,
        n_classes: stream.schema().n_classes().max(model.n_classes()),
        accuracy: s.accuracy,
        balanced_accuracy: s.balanced_accuracy,
        kappa: s.kappa,
        kappa_m: s.kappa_m,
        kappa_t: s.kappa_t,
        macro_f1: s.macro_f1,
        log_loss: s.log_loss,
        auc: s.auc,
        seconds,
        model_seconds: if timed > 0 {
            model_time * n as f64 / timed as f64
        } else {
            0.0
        },
        throughput: if seconds > 0.0 {
            n as f64 / seconds
        } else {
            0.0
        },
        model_bytes,
        max_model_bytes: max_bytes.max(model_bytes),
        checkpoints,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::baseline::{Majority, NoChange};
    use crate::stream::csv::CsvStream;
    use crate::stream::{open, OpenOptions};

    #[test]
    fn no_change_on_a_constant_stream_is_perfect_after_the_first() {
        let mut text = String::from("a,class\n");
        for i in 0..100 {
            text.push_str(&format!("{i},x\n"));
        }
        text.push_str("1,2,3\n"); // a bad row, skipped
        let mut s = CsvStream::from_reader(
            "c.csv",
            Box::new(std::io::Cursor::new(text.into_bytes())),
            &OpenOptions::default(),
        )
        .expect("valid");
        let mut m = NoChange::new();
        let mut calls = 0;
        let cfg = EvalConfig {
            checkpoint: 25,
            progress_every: 10,
            ..Default::default()
        };
        let r = prequential(&mut m, &mut s, &cfg, |_| calls += 1).expect("runs");
        assert_eq!(r.n, 100);
        assert_eq!(r.bad_rows, 1);
        assert!(r
            .first_bad_row
            .as_deref()
            .unwrap_or("")
            .contains("c.csv:102"));
        assert!((r.accuracy - 0.99).abs() < 1e-12);
        assert_eq!(r.checkpoints.len(), 4);
        assert_eq!(r.checkpoints[3].n, 100);
        assert_eq!(calls, 10);
        assert!(r.model_bytes > 0);
    }

    #[test]
    fn limit_and_majority_on_sea() {
        let mut s = open("sea:n=5000,seed=3").expect("valid");
        let mut m = Majority::new();
        let cfg = EvalConfig {
            limit: Some(2000),
            ..Default::default()
        };
        let r = prequential(&mut m, &mut s, &cfg, |_| {}).expect("runs");
        assert_eq!(r.n, 2000);
        // SEA variant 0: 68% of labels are 1 (x0 + x1 > 8).
        assert!(r.accuracy > 0.6 && r.accuracy < 0.75, "{}", r.accuracy);
        assert!(r.kappa.abs() < 0.05);
    }
}
