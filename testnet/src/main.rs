//! `shoal-testnet`: run a local Shoal mesh and watch it learn.
//!
//! ```text
//! cargo build --release -p shoal-node
//! cargo run --release -p shoal-testnet -- up --nodes 5 --scenario churn --duration 2m
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use shoal_testnet::live::LiveMode;
use shoal_testnet::local::{self, Options};
use shoal_testnet::node::default_node_bin;
use shoal_testnet::report;
use shoal_testnet::scenario::ScenarioKind;
use shoal_testnet::util::{parse_duration, unix_now};

#[derive(Parser)]
#[command(
    name = "shoal-testnet",
    version,
    about = "Run a local Shoal mesh and watch it learn"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start N nodes on loopback, run a scenario, write a report.
    Up(UpArgs),
    /// The same task workload under each placement policy, compared.
    Market(shoal_testnet::market::MarketArgs),
    /// Simulate the task market and its baselines at scale (discrete events).
    Sim(shoal_testnet::sim::SimArgs),
    /// Isolated nodes vs the mesh vs one central model, on slices of one
    /// stream (iid, label-skewed, drift-shifted).
    Federation(shoal_testnet::federation::FederationArgs),
}

#[derive(clap::Args)]
struct UpArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 5)]
    nodes: usize,
    /// What to do to the mesh while it runs. `federation` and `market` run
    /// `shoal-testnet federation --processes` and `shoal-testnet market`
    /// with this command's --nodes, --model, --data, --seed, --out, --json
    /// (their own flags are on those commands).
    #[arg(long, value_enum, default_value = "demo")]
    scenario: UpScenario,
    /// How long to run: 90s, 2m, 1h30m.
    #[arg(long, default_value = "90s", value_parser = parse_secs)]
    duration: f64,
    /// Output folder (default: out/testnet-<UTC timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Print the summary as JSON on the last line of stdout.
    #[arg(long)]
    json: bool,
    /// The shoal-node binary (default: next to this executable).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// What nodes learn from: a CSV/CSV.gz file split between the nodes, or
    /// a generator spec given a per-node seed (default: SEA concepts).
    #[arg(long)]
    data: Option<String>,
    /// Model spec passed to every node (default: the node's own default).
    #[arg(long)]
    model: Option<String>,
    /// Samples per second per node.
    #[arg(long, default_value_t = 100.0)]
    rate: f64,
    /// Seed of the scenario's random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Seconds between two kills in the churn scenario.
    #[arg(long, default_value = "20s", value_parser = parse_secs)]
    churn_every: f64,
    /// The byzantine scenario: `report.json` of a run without attackers
    /// (same --nodes, --seed, --duration and --model) to compare with.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Live view on stderr.
    #[arg(long, value_enum, default_value = "auto")]
    live: LiveMode,
    /// Exit with status 1 when a check of the scenario fails.
    #[arg(long)]
    strict: bool,
}

/// The scenarios of `up`: four run inside `up`, two are the `federation`
/// and `market` commands run with `up`'s common flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum UpScenario {
    Demo,
    Federation,
    Market,
    Churn,
    Partition,
    Byzantine,
}

/// The equivalent command line of `up --scenario federation|market`.
fn delegated(args: &UpArgs) -> Option<Vec<String>> {
    let mut v = vec!["shoal-testnet".to_string()];
    match args.scenario {
        UpScenario::Federation => {
            v.extend(["federation", "--processes", "--split", "label_skew"].map(String::from));
            v.extend([
                "--model".into(),
                args.model.clone().unwrap_or_else(|| "nb".into()),
            ]);
            // A stationary generator by default, so that a fresh clone needs
            // no dataset: 8 classes of RandomRBF.
            v.extend([
                "--data".into(),
                args.data
                    .clone()
                    .unwrap_or_else(|| "rbf:n_classes=8,n_features=10,seed=7".into()),
            ]);
            v.extend(["--samples".into(), "40000".into()]);
            v.extend(["--seed".into(), args.seed.to_string()]);
            if let Some(b) = &args.bin {
                v.extend(["--node-bin".into(), b.display().to_string()]);
            }
        }
        UpScenario::Market => {
            // The workload docs/market.md measures: 2 x 1.6 MB inputs a task.
            v.extend(
                [
                    "market",
                    "--tasks",
                    "60",
                    "--features",
                    "200",
                    "--gap-ms",
                    "100",
                ]
                .map(String::from),
            );
            if let Some(b) = &args.bin {
                v.extend(["--bin".into(), b.display().to_string()]);
            }
        }
        _ => return None,
    }
    v.extend(["--nodes".into(), args.nodes.to_string()]);
    if let Some(o) = &args.out {
        v.extend(["--out".into(), o.display().to_string()]);
    }
    if args.json && args.scenario == UpScenario::Federation {
        v.push("--json".into());
    }
    Some(v)
}

fn parse_secs(s: &str) -> Result<f64, String> {
    parse_duration(s)
        .map(|d| d.as_secs_f64())
        .map_err(|e| e.to_string())
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("shoal-testnet: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<ExitCode> {
    run_cli(Cli::parse())
}

fn run_cli(cli: Cli) -> Result<ExitCode> {
    let args = match cli.command {
        Command::Up(args) => match delegated(&args) {
            Some(argv) => {
                eprintln!("shoal-testnet: running `{}`", argv[1..].join(" "));
                let cli = Cli::try_parse_from(&argv).context("the scenario's command line")?;
                return run_cli(cli);
            }
            None => args,
        },
        Command::Federation(f) if f.processes => {
            let r = shoal_testnet::federation::run_processes(&f)?;
            if f.json {
                println!(
                    "{}",
                    serde_json::to_string(&r).context("encoding the result")?
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Federation(f) => {
            let r = shoal_testnet::federation::run(&f)?;
            shoal_testnet::federation::print_human(&r);
            if f.json {
                println!(
                    "{}",
                    serde_json::to_string(&r).context("encoding the result")?
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
        Command::Sim(a) => {
            shoal_testnet::sim::main(&a)?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Market(m) => {
            let bin = match &m.bin {
                Some(b) => b.clone(),
                None => default_node_bin()?,
            };
            let r = shoal_testnet::market::run(&m, &bin)?;
            return Ok(if r.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            });
        }
    };

    // Ctrl-C and SIGTERM only raise a flag: the main loop then stops every
    // node and still writes the report.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("installing signal handlers")?;
    }

    let bin = match args.bin {
        Some(b) => b,
        None => default_node_bin()?,
    };
    let opts = Options {
        nodes: args.nodes,
        scenario: match args.scenario {
            UpScenario::Demo => ScenarioKind::Demo,
            UpScenario::Churn => ScenarioKind::Churn,
            UpScenario::Partition => ScenarioKind::Partition,
            UpScenario::Byzantine => ScenarioKind::Byzantine,
            UpScenario::Federation | UpScenario::Market => {
                anyhow::bail!("internal: {:?} is delegated", args.scenario)
            }
        },
        duration_s: args.duration,
        out: args.out.unwrap_or_else(|| local::default_out(unix_now())),
        bin,
        data: args.data,
        model: args.model,
        rate: args.rate,
        seed: args.seed,
        churn_every_s: args.churn_every,
        baseline: args.baseline,
        live: if args.json && args.live == LiveMode::Auto {
            // Machine-readable runs keep stderr to plain lines.
            LiveMode::Lines
        } else {
            args.live
        },
    };
    let report = local::run(opts, stop)?;
    report::print_human(&report);
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report.summary).context("encoding the summary")?
        );
    }
    Ok(if args.strict && !report.summary.ok {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
