//! `shoal-bench`: prequential evaluation of stream classifiers.
//!
//! ```text
//! shoal-bench eval --model ht --data ../shared/datasets/electricity.csv.gz --json
//! shoal-bench eval --model nb --data sea:variant=1,noise=0.1,n=50000 --checkpoint 5000
//! shoal-bench models                      # every model, its parameters and defaults
//! shoal-bench streams                     # every generator and its parameters
//! shoal-bench export --data rbf_drift:change_speed=0.001 --out rbf.csv --limit 100000
//! shoal-bench suite --quick --out out/suite-quick  # every model on every stream
//! ```
//!
//! `--data` is a file (`.csv`, `.csv.gz`, `.arff`, `.arff.gz`) or a generator
//! spec; `--model` is a model spec (`ht:grace_period=100`). The JSON of
//! `eval --json` is one object whose field names are stable: scripts such as
//! `bench/compare_river.py` read it.

mod plot;
mod report;
mod stats;
mod suite;

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::Serialize;

use shoal_learn::eval::{self, EvalConfig, EvalReport};
use shoal_learn::model::{self, MODELS};
use shoal_learn::spec::Spec;
use shoal_learn::stream::generators::GENERATORS;
use shoal_learn::stream::{self, OpenOptions, Stream};
use shoal_learn::{Classifier, FeatureKind};

#[derive(Parser)]
#[command(
    name = "shoal-bench",
    version,
    about = "Benchmark of stream classifiers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct DataArgs {
    /// A file (.csv, .csv.gz, .arff, .arff.gz) or a generator spec such as
    /// `sea:variant=1,noise=0.1,seed=7,n=100000`.
    #[arg(long)]
    data: String,
    /// Class column of a file (default: the last one).
    #[arg(long)]
    target: Option<String>,
    /// Comma-separated CSV columns to read as nominal.
    #[arg(long, value_delimiter = ',')]
    nominal: Vec<String>,
    /// Stop after this many samples.
    #[arg(long)]
    limit: Option<u64>,
}

#[derive(Subcommand)]
enum Command {
    /// Prequential (test-then-train) evaluation of one model on one stream.
    Eval {
        /// Model spec, e.g. `ht` or `ht:grace_period=100`.
        #[arg(long)]
        model: String,
        #[command(flatten)]
        data: DataArgs,
        /// Print one JSON object instead of a readable summary.
        #[arg(long)]
        json: bool,
        /// Record a learning-curve row every N samples.
        #[arg(long, default_value_t = 0)]
        checkpoint: u64,
        /// Window of the windowed metrics in learning-curve rows.
        #[arg(long, default_value_t = 1000)]
        window: usize,
        /// Also write the learning curve as CSV to this file.
        #[arg(long)]
        curve: Option<PathBuf>,
        /// No progress on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// List every model with its parameters and defaults.
    Models,
    /// List every stream generator with its parameters and defaults.
    Streams,
    /// Write a stream (generator or file) as CSV with a header, class last.
    Export {
        #[command(flatten)]
        data: DataArgs,
        /// Output CSV file.
        #[arg(long)]
        out: PathBuf,
        /// Write nominal features as their index (0, 1, ...) rather than
        /// their value name, so the file reads as all-numeric.
        #[arg(long)]
        nominal_index: bool,
    },
    /// Every model on every stream (data sets and drifting generators),
    /// resumable, with a report of rank statistics and figures.
    Suite(suite::SuiteArgs),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Eval {
            model,
            data,
            json,
            checkpoint,
            window,
            curve,
            quiet,
        } => run_eval(&model, &data, json, checkpoint, window, curve, quiet),
        Command::Models => {
            print_models();
            Ok(())
        }
        Command::Streams => {
            print_streams();
            Ok(())
        }
        Command::Export {
            data,
            out,
            nominal_index,
        } => run_export(&data, &out, nominal_index),
        Command::Suite(args) => suite::run(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

fn open_data(data: &DataArgs) -> Result<Box<dyn Stream + Send>> {
    let options = OpenOptions {
        target: data.target.clone(),
        nominal: data.nominal.clone(),
    };
    let s = stream::open_with(&data.data, &options)
        .map_err(flat)
        .with_context(|| format!("cannot open data `{}`", data.data))?;
    // Parse on a second thread while the model learns (docs/benchmarks.md,
    // "What is timed").
    Ok(Box::new(stream::ahead::ReadAhead::spawn(s).map_err(flat)?))
}

/// A stream error as one message: its text already names the I/O cause, so
/// keeping it as a source too would print the cause twice.
fn flat(e: stream::StreamError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// What `eval --json` prints.
#[derive(Serialize)]
struct EvalOutput<'a> {
    model: &'a str,
    data: &'a str,
    #[serde(flatten)]
    report: &'a EvalReport,
}

fn run_eval(
    model_spec: &str,
    data: &DataArgs,
    json: bool,
    checkpoint: u64,
    window: usize,
    curve: Option<PathBuf>,
    quiet: bool,
) -> Result<()> {
    let spec = Spec::parse(model_spec).with_context(|| format!("bad model spec `{model_spec}`"))?;
    let mut stream = open_data(data)?;
    let mut model = model::build(&spec, stream.schema())
        .with_context(|| format!("cannot build model `{model_spec}`"))?;
    let config = EvalConfig {
        limit: data.limit,
        checkpoint,
        window,
        ..EvalConfig::default()
    };
    let show = !quiet && std::io::stderr().is_terminal();
    let report = eval::prequential(&mut model, &mut stream, &config, |p| {
        if show {
            eprint!(
                "\r{} samples, {:.1} s, accuracy {:.4}   ",
                p.n, p.seconds, p.accuracy
            );
        }
    })
    .map_err(flat)
    .with_context(|| format!("evaluating `{model_spec}` on `{}`", data.data))?;
    if show {
        eprintln!();
    }
    if report.n == 0 {
        match &report.first_bad_row {
            Some(first) => bail!(
                "no valid sample in `{}`: {} bad row(s), first: {first}",
                data.data,
                report.bad_rows
            ),
            None => bail!("no sample in `{}`", data.data),
        }
    }
    if let Some(path) = curve {
        write_curve(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        let out = EvalOutput {
            model: model_spec,
            data: &data.data,
            report: &report,
        };
        println!("{}", serde_json::to_string(&out)?);
    } else {
        print_summary(model_spec, &data.data, &report, &model);
    }
    Ok(())
}

fn print_summary(model: &str, data: &str, r: &EvalReport, m: &impl Classifier) {
    let auc = r.auc.map_or("n/a".to_string(), |a| format!("{a:.4}"));
    println!("model              {model}");
    println!("data               {data}");
    println!(
        "samples            {} ({} classes)",
        r.n,
        r.n_classes.max(m.n_classes())
    );
    if r.bad_rows > 0 {
        println!(
            "bad rows skipped   {} (first: {})",
            r.bad_rows,
            r.first_bad_row.as_deref().unwrap_or("")
        );
    }
    println!("accuracy           {:.4}", r.accuracy);
    println!("balanced accuracy  {:.4}", r.balanced_accuracy);
    println!("kappa              {:.4}", r.kappa);
    println!("kappa_m            {:.4}", r.kappa_m);
    println!("kappa_t            {:.4}", r.kappa_t);
    println!("macro F1           {:.4}", r.macro_f1);
    println!("log loss           {:.4}", r.log_loss);
    println!("AUC                {auc}");
    println!(
        "time               {:.3} s ({:.3} s in the model)",
        r.seconds, r.model_seconds
    );
    println!("throughput         {:.0} samples/s", r.throughput);
    println!(
        "model bytes        {} (max seen {})",
        r.model_bytes, r.max_model_bytes
    );
}

fn write_curve(path: &PathBuf, r: &EvalReport) -> Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    writeln!(
        w,
        "n,seconds,model_bytes,accuracy,kappa,kappa_t,auc,window_accuracy,window_kappa,window_kappa_t,window_auc"
    )?;
    let opt = |v: Option<f64>| v.map_or(String::new(), |a| a.to_string());
    for c in &r.checkpoints {
        writeln!(
            w,
            "{},{},{},{},{},{},{},{},{},{},{}",
            c.n,
            c.seconds,
            c.model_bytes,
            c.cumulative.accuracy,
            c.cumulative.kappa,
            c.cumulative.kappa_t,
            opt(c.cumulative.auc),
            c.window.accuracy,
            c.window.kappa,
            c.window.kappa_t,
            opt(c.window.auc)
        )?;
    }
    w.flush()?;
    Ok(())
}

fn print_models() {
    for m in MODELS {
        println!("{:<12} {}", m.name, m.summary);
        for p in m.params {
            println!("    {:<22} default {:<10} {}", p.name, p.default, p.help);
        }
    }
}

fn print_streams() {
    println!("every generator also takes seed (default 1) and n (samples, default 100000)");
    for g in GENERATORS {
        println!("{:<12} {}", g.name, g.summary);
        for p in g.params {
            println!("    {:<22} default {:<14} {}", p.name, p.default, p.help);
        }
    }
}

/// Quote a CSV field when it needs it.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) || s != s.trim() {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Where `export` writes: the file itself, or gzip into it.
enum Sink {
    Plain(File),
    Gz(flate2::write::GzEncoder<File>),
}

impl Sink {
    /// Flush everything, the gzip trailer included, to the file.
    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Plain(mut f) => f.flush(),
            Sink::Gz(g) => g.finish().and_then(|mut f| f.flush()),
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Plain(f) => f.write(buf),
            Sink::Gz(g) => g.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Plain(f) => f.flush(),
            Sink::Gz(g) => g.flush(),
        }
    }
}

fn run_export(data: &DataArgs, out: &PathBuf, nominal_index: bool) -> Result<()> {
    let mut stream = open_data(data)?;
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    // A `.gz` name gets gzip, as the readers expect of it.
    let gz = out.extension().is_some_and(|e| e == "gz");
    let sink = if gz {
        Sink::Gz(flate2::write::GzEncoder::new(
            file,
            flate2::Compression::default(),
        ))
    } else {
        Sink::Plain(file)
    };
    let mut w = BufWriter::with_capacity(1 << 16, sink);
    let header: Vec<String> = stream
        .schema()
        .features
        .iter()
        .map(|f| csv_field(&f.name))
        .chain(std::iter::once(csv_field(&stream.schema().target)))
        .collect();
    let write_err = || format!("writing {}", out.display());
    writeln!(w, "{}", header.join(",")).with_context(write_err)?;
    let limit = data.limit.unwrap_or(u64::MAX);
    let (mut n, mut bad) = (0u64, 0u64);
    let mut line = String::new();
    while n < limit {
        let sample = match stream.next_sample() {
            Ok(Some(s)) => s,
            Ok(None) => break,
            Err(e) if e.is_recoverable() => {
                bad += 1;
                eprintln!("skipping bad row: {e}");
                continue;
            }
            Err(e) => return Err(flat(e)).context("reading the stream"),
        };
        line.clear();
        let schema = stream.schema();
        for (i, f) in schema.features.iter().enumerate() {
            let v = sample.x.get(i).copied().unwrap_or(f64::NAN);
            if !v.is_nan() {
                match &f.kind {
                    FeatureKind::Nominal { values } if !nominal_index => {
                        match values.get(v as usize) {
                            Some(name) => line.push_str(&csv_field(name)),
                            None => line.push_str(&(v as usize).to_string()),
                        }
                    }
                    FeatureKind::Nominal { .. } => line.push_str(&(v as usize).to_string()),
                    FeatureKind::Numeric => line.push_str(&v.to_string()),
                }
            }
            line.push(',');
        }
        match schema.classes.get(sample.y) {
            Some(c) => line.push_str(&csv_field(c)),
            None => line.push_str(&sample.y.to_string()),
        }
        writeln!(w, "{line}").with_context(write_err)?;
        n += 1;
    }
    w.into_inner()
        .map_err(|e| e.into_error())
        .and_then(Sink::finish)
        .with_context(write_err)?;
    eprintln!(
        "wrote {n} samples to {}{}",
        out.display(),
        if bad > 0 {
            format!(" ({bad} bad rows skipped)")
        } else {
            String::new()
        }
    );
    Ok(())
}
