//! Learn from a stream with `shoal-learn` alone: no node, no network.
//!
//! ```text
//! cargo run --release -p shoal-testnet --example learn_csv                       # a generated SEA stream
//! cargo run --release -p shoal-testnet --example learn_csv -- ../shared/datasets/electricity.csv.gz nb
//! ```
//!
//! The first argument is a CSV / CSV.gz / ARFF file or a generator spec
//! (`sea:noise=0.1,n=20000`), the second a model spec (`nb`, `lr`,
//! `perceptron`, ...). Every sample is first predicted, then learnt
//! (prequential, "test-then-train"), which is how every Shoal node scores
//! its model on its own stream.

use anyhow::{Context, Result};
use shoal_learn::{eval, model, stream};

/// Used when no source is given: 20,000 samples of SEA concepts with 10 %
/// label noise, so the best possible accuracy is about 90 %.
const DEFAULT_SOURCE: &str = "sea:variant=0,noise=0.1,seed=7,n=20000";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let source = args.next().unwrap_or_else(|| DEFAULT_SOURCE.to_string());
    let spec = args.next().unwrap_or_else(|| "nb".to_string());

    let mut s = stream::open(&source).with_context(|| format!("opening {source}"))?;
    let mut m =
        model::build_str(&spec, s.schema()).with_context(|| format!("building model {spec:?}"))?;
    println!(
        "learning {source} with {spec}: {} features, {} classes known at start",
        s.schema().n_features(),
        s.schema().n_classes()
    );

    let config = eval::EvalConfig {
        progress_every: 5_000,
        ..eval::EvalConfig::default()
    };
    let report = eval::prequential(&mut m, &mut s, &config, |p| {
        println!(
            "  {:>8} samples  accuracy {:6.2}%  ({:.1} s)",
            p.n,
            p.accuracy * 100.0,
            p.seconds
        );
    })
    .with_context(|| format!("reading {source}"))?;

    println!(
        "done: {} samples, prequential accuracy {:.2}%, kappa {:.3}, {:.0} samples/s, model {} bytes",
        report.n,
        report.accuracy * 100.0,
        report.kappa,
        report.throughput,
        report.model_bytes
    );
    if report.bad_rows > 0 {
        println!(
            "skipped {} bad rows; first: {}",
            report.bad_rows,
            report.first_bad_row.as_deref().unwrap_or("?")
        );
    }
    Ok(())
}
