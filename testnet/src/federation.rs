//! The federation experiment: what merging buys, measured.
//!
//! One stream is cut into N per-node slices (`iid`, `label_skew`: each node
//! sees two classes, `drift`: node `i` meets each concept `i` lags later)
//! plus a held-out set drawn from every slice (every 10th sample, at most
//! 5000). Three arms learn from the same slices:
//!
//! - **isolated**: every node learns its slice alone;
//! - **mesh**: every node learns its slice and, every `round` samples,
//!   pulls the latest published model of `fanout` random peers, checks it
//!   on its last 500 samples and merges it with `shoal_learn::merge`
//!   (exactly the code `shoal-node` runs), optionally with `byzantine`
//!   nodes publishing poisoned models;
//! - **centralized**: one model learns all slices interleaved.
//!
//! This runs in-process: the mesh arm is a simulation of the merge rounds
//! (same merge code, same checks, snapshots really encoded with postcard so
//! the bytes moved are real), not libp2p processes.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use shoal_learn::classifier::argmax;
use shoal_learn::merge::{Aggregator, Federated, MergeConfig, Origin, Update};
use shoal_learn::models::linear::LinearModel;
use shoal_learn::rng::Rng;
use shoal_learn::schema::Sample;
use shoal_learn::{build_str, Classifier, Model, Schema};

use crate::status::Status;
use crate::svg;

/// How the stream is cut between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    Iid,
    #[value(name = "label_skew", alias = "label-skew")]
    LabelSkew,
    Drift,
}

/// What a poisoning node publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attack {
    /// Learns `(y + 1) mod C` instead of `y`.
    #[value(name = "flip_labels", alias = "flip-labels")]
    FlipLabels,
    /// Publishes its parameters (or statistics' weights) times 1000.
    Scale,
    /// Publishes a snapshot whose first parameter is NaN.
    Nan,
}

/// `shoal-testnet federation` arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct FederationArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 8)]
    pub nodes: usize,
    /// How the stream is cut.
    #[arg(long, value_enum, default_value = "iid")]
    pub split: Split,
    /// Model spec (comma-free specs, e.g. `nb`, `lr:lr=0.05`, `ht`).
    #[arg(long, default_value = "nb")]
    pub model: String,
    /// The stream: a CSV/ARFF file or a generator spec.
    #[arg(long)]
    pub data: String,
    /// Samples read from the stream at most.
    #[arg(long, default_value_t = 100_000)]
    pub samples: usize,
    /// Samples each node learns between two merge rounds.
    #[arg(long, default_value_t = 250)]
    pub round: usize,
    /// Peers pulled from per round.
    #[arg(long, default_value_t = 2)]
    pub fanout: usize,
    /// Parameter aggregator: mean, median, trimmed:0.2.
    #[arg(long, default_value = "mean")]
    pub aggregator: String,
    /// Nodes (the first ones) that publish poisoned models.
    #[arg(long, default_value_t = 0)]
    pub byzantine: usize,
    /// Which nodes publish poisoned models (e.g. `2,5`), instead of the
    /// first `--byzantine` ones; under label skew it decides which classes
    /// the poison touches.
    #[arg(long, value_delimiter = ',', conflicts_with = "byzantine")]
    pub byzantine_nodes: Vec<usize>,
    /// The poison.
    #[arg(long, value_enum, default_value = "flip_labels")]
    pub attack: Attack,
    /// Seed of peer choices (and of `--shuffle`).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Shuffle the rows read before cutting them, so that every slice and
    /// the held-out set are random samples of the same distribution (the
    /// usual IID partition in federated learning). Without it the slices
    /// keep the stream's order: on a time-ordered file such as covertype
    /// the class mix then moves along every slice.
    #[arg(long)]
    pub shuffle: bool,
    /// Write SVG plots and results.json here.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
    /// Run the isolated and mesh arms as real `shoal-node` processes on
    /// loopback (libp2p gossip + request-response) instead of in-process.
    #[arg(long)]
    pub processes: bool,
    /// `--processes`: the `shoal-node` executable (default: next to this
    /// binary).
    #[arg(long)]
    pub node_bin: Option<PathBuf>,
    /// `--processes`: samples per second each node reads.
    #[arg(long, default_value_t = 400.0)]
    pub rate: f64,
    /// `--processes`: seconds to let merges settle after every node has
    /// read its slice.
    #[arg(long, default_value_t = 20)]
    pub settle: u64,
}

/// Results of one arm.
#[derive(Debug, Clone, Serialize)]
pub struct ArmResult {
    /// Mean over (honest) nodes of the accuracy on the held-out set.
    pub holdout_accuracy: f64,
    /// Mean over (honest) nodes of the prequential accuracy on their slice.
    pub prequential_accuracy: f64,
    /// Per node: held-out accuracy.
    pub node_holdout: Vec<f64>,
    /// Per node: prequential accuracy.
    pub node_prequential: Vec<f64>,
    /// Mean over nodes of the prequential accuracy curve (cumulative), one
    /// point per round: (samples per node, accuracy).
    pub curve: Vec<(usize, f64)>,
    /// Mesh: updates merged, refused (all nodes), bytes sent per node per
    /// round (mean).
    pub merges: u64,
    pub rejected: u64,
    pub bytes_per_node_round: f64,
    /// `auto` only: samples times learners training, summed over honest
    /// nodes (the compute its races cost), and learners dropped on peers'
    /// advice (`Auto::take_advice`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_learner_updates: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_pruned_by_peers: Option<u64>,
}

/// The whole experiment.
#[derive(Debug, Clone, Serialize)]
pub struct FederationResult {
    pub split: Split,
    pub model: String,
    pub strategy: &'static str,
    pub data: String,
    pub nodes: usize,
    pub samples_per_node: usize,
    pub holdout_size: usize,
    /// Rows shuffled before the cut (`--shuffle`).
    pub shuffled: bool,
    pub byzantine: usize,
    /// Which nodes were byzantine.
    pub byzantine_nodes: Vec<usize>,
    pub attack: Option<Attack>,
    pub aggregator: String,
    pub mode: &'static str,
    pub arms: std::collections::BTreeMap<&'static str, ArmResult>,
    /// Samples per node the mesh needed to reach the isolated arm's final
    /// prequential accuracy, as a share of the slice (None: never).
    pub mesh_share_to_isolated_final: Option<f64>,
}

/// Which nodes are honest: all but `--byzantine-nodes`, or all but the
/// first `--byzantine`.
fn honest_nodes(args: &FederationArgs) -> Result<Vec<bool>> {
    let honest: Vec<bool> = if args.byzantine_nodes.is_empty() {
        (0..args.nodes).map(|i| i >= args.byzantine).collect()
    } else {
        if let Some(bad) = args.byzantine_nodes.iter().find(|&&i| i >= args.nodes) {
            bail!(
                "--byzantine-nodes: node {bad} does not exist (nodes are 0 to {})",
                args.nodes - 1
            );
        }
        (0..args.nodes)
            .map(|i| !args.byzantine_nodes.contains(&i))
            .collect()
    };
    if !honest.contains(&true) {
        bail!("--byzantine must leave at least one honest node");
    }
    Ok(honest)
}

/// Read the stream, cut it, run the three arms.
pub fn run(args: &FederationArgs) -> Result<FederationResult> {
    if args.nodes < 2 || args.nodes > 64 {
        bail!("--nodes must be 2 to 64");
    }
    honest_nodes(args)?;
    let aggregator = Aggregator::parse(&args.aggregator).with_context(|| {
        format!(
            "--aggregator {}: use mean, median or trimmed:F",
            args.aggregator
        )
    })?;
    let (schema, mut data) = load(&args.data, args.samples)?;
    if args.shuffle {
        Rng::new(args.seed ^ 0x5348_5546).shuffle(&mut data);
    }
    let n_classes = schema.n_classes().max(1);
    let (slices, holdout) = cut(&data, args.nodes, args.split, n_classes);
    let shortest = slices.iter().map(Vec::len).min().unwrap_or(0);
    if shortest < 10 {
        bail!("a node's slice holds only {shortest} samples");
    }
    // Every node reads its whole slice in the same number of rounds (a
    // node with a longer slice simply reads faster).
    let per_node = slices.iter().map(Vec::len).sum::<usize>() / slices.len();
    let rounds = (per_node / args.round.max(1)).max(1);
    let probe = build_str(&args.model, &schema).map_err(|e| anyhow::anyhow!("--model: {e}"))?;
    let strategy = shoal_learn::merge::strategy(&probe);
    let cfg = MergeConfig {
        aggregator,
        ..MergeConfig::default()
    };
    let honest = honest_nodes(args)?;
    let isolated = run_arm(args, &schema, &slices, &holdout, &honest, rounds, None)?;
    let mesh = run_arm(
        args,
        &schema,
        &slices,
        &holdout,
        &honest,
        rounds,
        Some(&cfg),
    )?;
    let centralized = run_central(args, &schema, &slices, &holdout, rounds)?;
    let share = {
        let target = isolated.prequential_accuracy;
        mesh.curve
            .iter()
            .find(|(_, a)| *a >= target)
            .map(|(t, _)| *t as f64 / per_node.max(1) as f64)
    };
    let mut arms = std::collections::BTreeMap::new();
    arms.insert("isolated", isolated);
    arms.insert("mesh", mesh);
    arms.insert("centralized", centralized);
    let res = FederationResult {
        split: args.split,
        model: args.model.clone(),
        strategy: strategy.name(),
        data: args.data.clone(),
        nodes: args.nodes,
        samples_per_node: per_node,
        shuffled: args.shuffle,
        holdout_size: holdout.len(),
        byzantine: honest.iter().filter(|h| !**h).count(),
        byzantine_nodes: (0..args.nodes).filter(|i| !honest[*i]).collect(),
        attack: honest.contains(&false).then_some(args.attack),
        aggregator: args.aggregator.clone(),
        mode: "in-process simulation of shoal_learn::merge rounds",
        arms,
        mesh_share_to_isolated_final: share,
    };
    if let Some(out) = &args.out {
        write_outputs(out, &res)?;
    }
    Ok(res)
}

fn load(source: &str, limit: usize) -> Result<(Schema, Vec<Sample>)> {
    let mut s = shoal_learn::stream::open(source).with_context(|| format!("opening {source}"))?;
    let mut data = Vec::new();
    while data.len() < limit {
        match s.next_sample() {
            Ok(Some(x)) => data.push(x),
            Ok(None) => break,
            Err(e) if e.is_recoverable() => continue,
            Err(e) => return Err(e).with_context(|| format!("reading {source}")),
        }
    }
    if data.is_empty() {
        bail!("{source} holds no samples");
    }
    Ok((s.schema().clone(), data))
}

/// Cut `data` into per-node slices and a held-out set.
fn cut(
    data: &[Sample],
    n: usize,
    split: Split,
    n_classes: usize,
) -> (Vec<Vec<Sample>>, Vec<Sample>) {
    let mut holdout = Vec::new();
    let mut rest = Vec::new();
    for (i, s) in data.iter().enumerate() {
        if i % 10 == 9 && holdout.len() < 5000 {
            holdout.push(s.clone());
        } else {
            rest.push(s.clone());
        }
    }
    let mut slices: Vec<Vec<Sample>> = vec![Vec::new(); n];
    match split {
        Split::Iid | Split::Drift => {
            for (i, s) in rest.into_iter().enumerate() {
                slices[i % n].push(s);
            }
        }
        Split::LabelSkew => {
            // Node i owns classes i and i+1 (mod C); a sample goes to the
            // owners of its class in turn.
            let owners: Vec<Vec<usize>> = (0..n_classes)
                .map(|c| {
                    (0..n)
                        .filter(|&i| i % n_classes == c || (i + 1) % n_classes == c)
                        .collect()
                })
                .collect();
            let mut turn = vec![0usize; n_classes];
            for s in rest {
                let Some(o) = owners.get(s.y) else { continue };
                if o.is_empty() {
                    continue;
                }
                let k = o[turn[s.y] % o.len()];
                turn[s.y] += 1;
                slices[k].push(s);
            }
        }
    }
    if split == Split::Drift {
        // Node i stays on the start of the stream `lag_i` samples longer:
        // its first lag_i samples are replayed, the end is cut.
        for (i, sl) in slices.iter_mut().enumerate() {
            let lag = sl.len() * i / (4 * n);
            let mut v: Vec<Sample> = sl[..lag].to_vec();
            v.extend_from_slice(&sl[..sl.len() - lag]);
            *sl = v;
        }
    }
    (slices, holdout)
}

fn holdout_acc(m: &dyn Classifier, holdout: &[Sample]) -> f64 {
    if holdout.is_empty() {
        return 0.0;
    }
    let mut buf = Vec::new();
    let hits = holdout
        .iter()
        .filter(|s| {
            m.predict_proba_into(&s.x, &mut buf);
            argmax(&buf) == Some(s.y)
        })
        .count();
    hits as f64 / holdout.len() as f64
}

fn mean(v: impl Iterator<Item = f64>) -> f64 {
    let (s, n) = v.fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        s / n as f64
    }
}

/// What a node publishes: its model, poisoned if it is hostile.
fn publish(model: &Model, attack: Option<Attack>) -> Vec<u8> {
    let mut m = model.clone();
    if attack == Some(Attack::Scale) {
        match &mut m {
            Model::NaiveBayes(nb) => {
                for _ in 0..10 {
                    let c = nb.clone();
                    nb.merge(&c);
                }
            }
            Model::Logistic(l) => scale(l, 1000.0),
            Model::Perceptron(l) => scale(l, 1000.0),
            Model::PassiveAggressive(l) => scale(l, 1000.0),
            Model::Mlp(mlp) => {
                let mut p = mlp.params();
                p.flat.iter_mut().for_each(|w| *w *= 1000.0);
                let _ = mlp.set_params(&p);
            }
            _ => {}
        }
    }
    let mut bytes = postcard::to_allocvec(&m).unwrap_or_default();
    if attack == Some(Attack::Nan) {
        poison_nan(&m, &mut bytes);
    }
    bytes
}

fn scale(l: &mut dyn LinearModel, k: f64) {
    let mut p = l.params();
    for w in p.weights.iter_mut().chain(p.bias.iter_mut()) {
        *w *= k;
    }
    let _ = l.set_params(p);
}

/// Overwrite the encoding of one non-zero parameter with NaN.
fn poison_nan(m: &Model, bytes: &mut [u8]) {
    let value = match m {
        Model::NaiveBayes(nb) => nb
            .class_stats()
            .iter()
            .flat_map(|c| c.gaussians.mean.iter())
            .copied()
            .find(|v| *v != 0.0),
        Model::Logistic(l) => l.params().weights.into_iter().find(|v| *v != 0.0),
        Model::Perceptron(l) => l.params().weights.into_iter().find(|v| *v != 0.0),
        Model::PassiveAggressive(l) => l.params().weights.into_iter().find(|v| *v != 0.0),
        _ => None,
    };
    let Some(v) = value else {
        // Trees: truncate instead, which decoding refuses just the same.
        let n = bytes.len();
        if n > 8 {
            bytes[n / 2..].fill(0xff);
        }
        return;
    };
    let pat = v.to_le_bytes();
    if let Some(pos) = bytes.windows(8).position(|w| w == pat) {
        bytes[pos..pos + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    }
}

fn run_arm(
    args: &FederationArgs,
    schema: &Schema,
    slices: &[Vec<Sample>],
    holdout: &[Sample],
    honest: &[bool],
    rounds_total: usize,
    merge: Option<&MergeConfig>,
) -> Result<ArmResult> {
    let n = slices.len();
    let build = || build_str(&args.model, schema).map_err(|e| anyhow::anyhow!("--model: {e}"));
    let mut nodes: Vec<Federated> = (0..n)
        .map(|_| Ok(Federated::new(build()?, merge.cloned().unwrap_or_default())))
        .collect::<Result<_>>()?;
    let mut correct = vec![0u64; n];
    let mut version = vec![0u64; n];
    let mut rng = Rng::new(args.seed);
    let mut curve = Vec::new();
    let (mut merges, mut rejected, mut bytes_sent) = (0u64, 0u64, vec![0u64; n]);
    let mut rounds = 0u64;
    let mut auto_updates = 0u64;
    let mut buf = Vec::new();
    let lens: Vec<usize> = slices.iter().map(Vec::len).collect();
    let mean_len = lens.iter().sum::<usize>() / n;
    for r in 1..=rounds_total {
        let bound = |i: usize, r: usize| lens[i] * r / rounds_total;
        for (i, node) in nodes.iter_mut().enumerate() {
            for s in &slices[i][bound(i, r - 1)..bound(i, r)] {
                if let (true, Model::Auto(a)) = (honest[i], node.local()) {
                    auto_updates += a.active().len() as u64;
                }
                node.predict_proba_into(&s.x, &mut buf);
                correct[i] += u64::from(argmax(&buf) == Some(s.y));
                let y = if !honest[i] && args.attack == Attack::FlipLabels {
                    (s.y + 1) % schema.n_classes().max(1)
                } else {
                    s.y
                };
                node.learn_one(&s.x, y, 1.0);
            }
        }
        let honest_acc = mean(
            (0..n)
                .filter(|&i| honest[i])
                .map(|i| correct[i] as f64 / bound(i, r).max(1) as f64),
        );
        curve.push((mean_len * r / rounds_total, honest_acc));
        if merge.is_none() || r == rounds_total {
            continue;
        }
        rounds += 1;
        // Publish: every node's snapshot of this round.
        let published: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                version[i] += 1;
                let attack = (!honest[i]).then_some(args.attack);
                publish(nodes[i].local(), attack)
            })
            .collect();
        for i in 0..n {
            if !honest[i] {
                continue;
            }
            let t = bound(i, r);
            let window = &slices[i][t.saturating_sub(500)..t];
            for _ in 0..args.fanout.min(n - 1) {
                let mut j = rng.below(n - 1);
                if j >= i {
                    j += 1;
                }
                bytes_sent[j] += published[j].len() as u64;
                let model: Model = match postcard::from_bytes(&published[j]) {
                    Ok(m) => m,
                    Err(_) => {
                        rejected += 1;
                        continue;
                    }
                };
                let update = Update::new(Origin(j as u64), version[j], bound(j, r) as u64, model);
                match nodes[i].accept(update, window) {
                    Ok(_) => merges += 1,
                    Err(_) => rejected += 1,
                }
            }
            nodes[i].round();
        }
    }
    let node_holdout: Vec<f64> = nodes.iter().map(|m| holdout_acc(m, holdout)).collect();
    let node_prequential: Vec<f64> = correct
        .iter()
        .zip(&lens)
        .map(|(&c, &l)| c as f64 / l.max(1) as f64)
        .collect();
    let pick = |v: &[f64]| mean(v.iter().zip(honest).filter(|(_, h)| **h).map(|(a, _)| *a));
    Ok(ArmResult {
        holdout_accuracy: pick(&node_holdout),
        prequential_accuracy: pick(&node_prequential),
        node_holdout,
        node_prequential,
        curve,
        merges,
        rejected,
        bytes_per_node_round: if rounds == 0 {
            0.0
        } else {
            mean(bytes_sent.iter().map(|&b| b as f64)) / rounds as f64
        },
        auto_learner_updates: matches!(nodes.first().map(Federated::local), Some(Model::Auto(_)))
            .then_some(auto_updates),
        auto_pruned_by_peers: matches!(nodes.first().map(Federated::local), Some(Model::Auto(_)))
            .then(|| {
                nodes
                    .iter()
                    .zip(honest)
                    .filter(|(_, h)| **h)
                    .map(|(m, _)| match m.local() {
                        Model::Auto(a) => a.pruned_by_peers(),
                        _ => 0,
                    })
                    .sum()
            }),
    })
}

fn run_central(
    args: &FederationArgs,
    schema: &Schema,
    slices: &[Vec<Sample>],
    holdout: &[Sample],
    rounds_total: usize,
) -> Result<ArmResult> {
    let mut m = build_str(&args.model, schema).map_err(|e| anyhow::anyhow!("--model: {e}"))?;
    let (mut correct, mut seen) = (0u64, 0u64);
    let mut curve = Vec::new();
    let mut buf = Vec::new();
    let n = slices.len();
    let mean_len = slices.iter().map(Vec::len).sum::<usize>() / n.max(1);
    let bound = |i: usize, r: usize| slices[i].len() * r / rounds_total;
    for r in 1..=rounds_total {
        // The nodes' chunks of this round, interleaved.
        let longest = (0..n)
            .map(|i| bound(i, r) - bound(i, r - 1))
            .max()
            .unwrap_or(0);
        for k in 0..longest {
            for (i, sl) in slices.iter().enumerate() {
                let at = bound(i, r - 1) + k;
                if at >= bound(i, r) {
                    continue;
                }
                let s = &sl[at];
                m.predict_proba_into(&s.x, &mut buf);
                correct += u64::from(argmax(&buf) == Some(s.y));
                seen += 1;
                m.learn_one(&s.x, s.y, 1.0);
            }
        }
        curve.push((
            mean_len * r / rounds_total,
            correct as f64 / seen.max(1) as f64,
        ));
    }
    let _ = args;
    let h = holdout_acc(&m, holdout);
    let p = correct as f64 / seen.max(1) as f64;
    Ok(ArmResult {
        holdout_accuracy: h,
        prequential_accuracy: p,
        node_holdout: vec![h],
        node_prequential: vec![p],
        curve,
        merges: 0,
        rejected: 0,
        bytes_per_node_round: 0.0,
        auto_learner_updates: None,
        auto_pruned_by_peers: None,
    })
}

fn write_outputs(out: &Path, res: &FederationResult) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let json = serde_json::to_string_pretty(res)?;
    std::fs::write(out.join("results.json"), json)?;
    let lines: Vec<svg::Line> = res
        .arms
        .iter()
        .map(|(name, a)| svg::Line {
            label: (*name).to_string(),
            points: a.curve.iter().map(|&(t, y)| Some((t as f64, y))).collect(),
        })
        .collect();
    let title = format!(
        "{} / {:?} split / {} nodes: prequential accuracy",
        res.model, res.split, res.nodes
    );
    let chart = svg::Chart {
        title: &title,
        x_label: "samples per node",
        y_label: "accuracy",
        lines: &lines,
        markers: &[],
        y_range: Some((0.0, 1.0)),
        y_fmt: |y| format!("{:.0}%", y * 100.0),
        integer_y: false,
    };
    std::fs::write(out.join("prequential.svg"), svg::render(&chart))?;
    Ok(())
}

/// Human summary.
pub fn print_human(r: &FederationResult) {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "federation: {} nodes, split {:?}, model {} ({}), {} samples/node, holdout {} ({})",
        r.nodes, r.split, r.model, r.strategy, r.samples_per_node, r.holdout_size, r.mode
    );
    for (name, a) in &r.arms {
        let _ = writeln!(
            s,
            "  {name:<12} holdout {:6.2}%  prequential {:6.2}%  merges {} rejected {} bytes/node/round {:.0}",
            a.holdout_accuracy * 100.0,
            a.prequential_accuracy * 100.0,
            a.merges,
            a.rejected,
            a.bytes_per_node_round
        );
        if let (Some(u), Some(p)) = (a.auto_learner_updates, a.auto_pruned_by_peers) {
            let _ = writeln!(
                s,
                "  {:<12} auto: {u} learner updates, {p} learners dropped on peers' advice",
                ""
            );
        }
    }
    if let Some(sh) = r.mesh_share_to_isolated_final {
        let _ = writeln!(
            s,
            "  mesh reached the isolated final prequential accuracy after {:.1}% of the slice",
            sh * 100.0
        );
    }
    eprint!("{s}");
}

/// One arm of the multi-process run.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessArm {
    /// Mean over honest nodes of the accuracy on the held-out set, asked
    /// of each node over `POST /v1/predict` after its stream ended.
    pub holdout_accuracy: f64,
    /// Mean over honest nodes of the prequential accuracy the node reports.
    pub prequential_accuracy: f64,
    pub node_holdout: Vec<f64>,
    pub node_prequential: Vec<f64>,
    /// Merges each node reports in `/v1/status`.
    pub node_merges: Vec<u64>,
    /// Snapshots each node refused (from `/v1/peers`' federation stats).
    pub node_rejected: Vec<u64>,
    /// Connected peers at the end.
    pub node_peers: Vec<u64>,
    /// Wall-clock seconds of the arm.
    pub seconds: f64,
}

/// `shoal-testnet federation --processes`.
#[derive(Debug, Clone, Serialize)]
pub struct ProcessResult {
    pub split: Split,
    pub model: String,
    pub data: String,
    pub nodes: usize,
    pub samples_per_node: usize,
    pub holdout_size: usize,
    pub byzantine: usize,
    /// Which nodes were byzantine.
    pub byzantine_nodes: Vec<usize>,
    pub attack: Option<Attack>,
    pub rate: f64,
    pub mode: &'static str,
    pub arms: std::collections::BTreeMap<&'static str, ProcessArm>,
}

/// Run the isolated (`--no-federation`) and mesh arms as real `shoal-node`
/// processes on loopback. Each node reads its slice (written as CSV) at
/// `--rate`; once all have read it and `--settle` seconds passed, the
/// held-out set is predicted by every node over its HTTP API.
pub fn run_processes(args: &FederationArgs) -> Result<ProcessResult> {
    if args.nodes < 2 || args.nodes > 32 {
        bail!("--processes: --nodes must be 2 to 32");
    }
    honest_nodes(args)?;
    let (schema, mut data) = load(&args.data, args.samples)?;
    if args.shuffle {
        Rng::new(args.seed ^ 0x5348_5546).shuffle(&mut data);
    }
    if schema.features.iter().any(|f| f.is_nominal()) {
        bail!("--processes writes numeric CSV slices; this stream has nominal features");
    }
    let n_classes = schema.n_classes().max(1);
    let (slices, holdout) = cut(&data, args.nodes, args.split, n_classes);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("out/federation-processes"));
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let mut files = Vec::new();
    for (i, sl) in slices.iter().enumerate() {
        let path = out.join(format!("slice{i}.csv"));
        write_csv(&path, &schema, sl)?;
        files.push(path);
    }
    let bin = match &args.node_bin {
        Some(b) => b.clone(),
        None => crate::node::default_node_bin()?,
    };
    let honest = honest_nodes(args)?;
    let mut arms = std::collections::BTreeMap::new();
    for (name, federate) in [("isolated", false), ("mesh", true)] {
        let arm = process_arm(
            args,
            &bin,
            &out.join(name),
            &files,
            &slices,
            &holdout,
            &schema,
            &honest,
            federate,
        )
        .with_context(|| format!("arm {name}"))?;
        eprintln!(
            "  {name:<9} holdout {:6.2}%  prequential {:6.2}%  merges {:?}",
            arm.holdout_accuracy * 100.0,
            arm.prequential_accuracy * 100.0,
            arm.node_merges
        );
        arms.insert(name, arm);
    }
    let res = ProcessResult {
        split: args.split,
        model: args.model.clone(),
        data: args.data.clone(),
        nodes: args.nodes,
        samples_per_node: slices.iter().map(Vec::len).sum::<usize>() / slices.len(),
        holdout_size: holdout.len(),
        byzantine: honest.iter().filter(|h| !**h).count(),
        byzantine_nodes: (0..args.nodes).filter(|i| !honest[*i]).collect(),
        attack: honest.contains(&false).then_some(args.attack),
        rate: args.rate,
        mode: "shoal-node processes on loopback (libp2p)",
        arms,
    };
    std::fs::write(
        out.join("results.json"),
        serde_json::to_string_pretty(&res)?,
    )?;
    Ok(res)
}

fn write_csv(path: &Path, schema: &Schema, samples: &[Sample]) -> Result<()> {
    use std::io::Write as _;
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let mut head: Vec<&str> = schema.features.iter().map(|f| f.name.as_str()).collect();
    head.push(&schema.target);
    writeln!(w, "{}", head.join(","))?;
    let mut line = String::new();
    for s in samples {
        line.clear();
        for v in &s.x {
            let _ = write!(line, "{v},");
        }
        let Some(label) = schema.classes.get(s.y) else {
            continue;
        };
        line.push_str(label);
        writeln!(w, "{line}")?;
    }
    w.flush()?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn process_arm(
    args: &FederationArgs,
    bin: &Path,
    dir: &Path,
    files: &[PathBuf],
    slices: &[Vec<Sample>],
    holdout: &[Sample],
    schema: &Schema,
    honest: &[bool],
    federate: bool,
) -> Result<ProcessArm> {
    use crate::node::{NodeProcess, NodeSpec};
    use std::time::{Duration, Instant};
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let started = Instant::now();
    let mut ports = crate::util::PortPicker::default();
    let mut specs = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let d = dir.join(format!("node{i}"));
        let mut spec =
            NodeSpec::loopback(&format!("node{i}"), bin, &d, ports.pick()?, ports.pick()?);
        spec.model = Some(args.model.clone());
        spec.source = Some(file.to_string_lossy().into_owned());
        spec.rate = Some(args.rate);
        spec.extra_args = vec![
            "--snapshot-every".into(),
            args.round.to_string(),
            "--snapshot-secs".into(),
            "1".into(),
        ];
        if !federate {
            spec.extra_args.push("--no-federation".into());
        } else if !honest[i] {
            let attack = match args.attack {
                Attack::FlipLabels => "flip_labels",
                Attack::Scale => "scale",
                Attack::Nan => "nan",
            };
            spec.extra_args.push("--byzantine".into());
            spec.extra_args.push(attack.into());
        }
        specs.push(spec);
    }
    // Node 0 first; the others bootstrap to it.
    let never = || false;
    let mut procs: Vec<NodeProcess> = Vec::new();
    let mut first = NodeProcess::spawn(&specs[0])?;
    let st = first.wait_ready(Duration::from_secs(60), &never)?;
    let boot = specs[0].dial_addr(&st.peer_id);
    procs.push(first);
    for spec in specs.iter_mut().skip(1) {
        spec.bootstrap = vec![boot.clone()];
        let mut p = NodeProcess::spawn(spec)?;
        p.wait_ready(Duration::from_secs(60), &never)?;
        procs.push(p);
    }
    // Wait until every node has read its slice.
    let longest = slices.iter().map(Vec::len).max().unwrap_or(0) as f64;
    let deadline = Instant::now() + Duration::from_secs_f64(120.0 + 4.0 * longest / args.rate);
    loop {
        let mut done = true;
        for (p, sl) in procs.iter().zip(slices) {
            let seen = p
                .api()
                .get_json("/v1/status")
                .ok()
                .and_then(|v| Status::from_json(&v).ok())
                .map_or(0, |s| s.samples_seen);
            if seen < sl.len() as u64 {
                done = false;
            }
        }
        if done {
            break;
        }
        if Instant::now() >= deadline {
            bail!(
                "nodes did not read their slices in time; see the logs under {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    if federate {
        std::thread::sleep(Duration::from_secs(args.settle));
    }
    let mut arm = ProcessArm {
        holdout_accuracy: 0.0,
        prequential_accuracy: 0.0,
        node_holdout: Vec::new(),
        node_prequential: Vec::new(),
        node_merges: Vec::new(),
        node_rejected: Vec::new(),
        node_peers: Vec::new(),
        seconds: 0.0,
    };
    for p in &procs {
        let client = p.api().clone().with_timeout(Duration::from_secs(60));
        let st = Status::from_json(&client.get_json("/v1/status")?)?;
        arm.node_prequential.push(st.accuracy.unwrap_or(0.0));
        arm.node_merges.push(st.merges);
        arm.node_peers.push(st.peers);
        let rejected = client
            .get_json("/v1/peers")
            .ok()
            .map(|v| count_rejected(&v))
            .unwrap_or(0);
        arm.node_rejected.push(rejected);
        let mut hits = 0usize;
        for chunk in holdout.chunks(2000) {
            let xs: Vec<&Vec<f64>> = chunk.iter().map(|s| &s.x).collect();
            let resp = client.post_json("/v1/predict", &serde_json::json!({ "samples": xs }))?;
            if !resp.is_success() {
                bail!("POST /v1/predict: HTTP {}: {}", resp.status, resp.text());
            }
            let v = resp.json()?;
            let preds = v
                .get("predictions")
                .and_then(serde_json::Value::as_array)
                .context("predict answer has no predictions")?;
            for (s, p) in chunk.iter().zip(preds) {
                let label = p.get("label").and_then(serde_json::Value::as_str);
                if label.is_some() && label == schema.classes.get(s.y).map(String::as_str) {
                    hits += 1;
                }
            }
        }
        arm.node_holdout
            .push(hits as f64 / holdout.len().max(1) as f64);
    }
    for p in &mut procs {
        p.stop(Duration::from_secs(5));
    }
    let pick = |v: &[f64]| mean(v.iter().zip(honest).filter(|(_, h)| **h).map(|(a, _)| *a));
    arm.holdout_accuracy = pick(&arm.node_holdout);
    arm.prequential_accuracy = pick(&arm.node_prequential);
    arm.seconds = started.elapsed().as_secs_f64();
    Ok(arm)
}

/// Refused snapshots, from a `/v1/peers` answer's federation counters.
fn count_rejected(v: &serde_json::Value) -> u64 {
    v.get("federation")
        .and_then(|f| f.get("rejected"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}
