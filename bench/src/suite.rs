//! `shoal-bench suite`: every model on every stream, prequentially, with the
//! results appended to `OUT/results.jsonl` one line per finished job (so an
//! interrupted run resumes where it stopped) and a report with rank
//! statistics and figures written at the end (see [`crate::report`]).
//!
//! The streams are the data sets of a directory with a `manifest.json`
//! (`../shared/datasets` by default) plus drifting generator streams, abrupt
//! and gradual (MOA's concept-drift joins of SEA, Agrawal, STAGGER, SINE and
//! LED; rotating hyperplanes; random RBF with moving centroids).

use std::collections::{HashSet, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use shoal_learn::eval::{self, EvalConfig, EvalReport};
use shoal_learn::model::{self, MODELS};
use shoal_learn::spec::Spec;
use shoal_learn::stream;

/// Rows per stream under `--quick`.
pub const QUICK_ROWS: u64 = 20_000;
/// Length of a generator stream when no `--limit` caps it.
pub const GENERATOR_ROWS: u64 = 100_000;
/// Registered models left out of the default list: baselines that only
/// anchor the scale (ask for them with `--models`).
pub const SKIPPED_BY_DEFAULT: &[&str] = &["majority", "no_change"];
/// Models also left out under `--quick` (too slow for its 10-minute budget
/// on two cores).
pub const SKIPPED_WHEN_QUICK: &[&str] = &[];

/// Options of `shoal-bench suite`.
#[derive(clap::Args, Debug, Clone)]
pub struct SuiteArgs {
    /// At most 20000 rows per stream (unless --limit says otherwise) and the
    /// quick model list: finishes in minutes.
    #[arg(long)]
    pub quick: bool,
    /// Directory of data sets with a manifest.json (name, file, rows).
    #[arg(long, default_value = "../shared/datasets")]
    pub datasets: PathBuf,
    /// Comma-separated model specs (default: every registered model but the
    /// trivial baselines). Parameters may follow: `ht:grace_period=100,leaf=nb,nb`.
    #[arg(long)]
    pub models: Option<String>,
    /// Comma-separated streams: names from the catalogue (`shoal-bench suite
    /// --list`), `all`, `files`, `generators`, a data file or a generator spec.
    #[arg(long, default_value = "all")]
    pub streams: String,
    /// Rows per stream (files are cut, generators generate this many).
    #[arg(long)]
    pub limit: Option<u64>,
    /// (model, stream) jobs run in parallel. 1 (the default) gives the most
    /// reliable throughput figures; 2 halves the wall time on two cores.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Output directory (results.jsonl, report.md, SVG figures).
    #[arg(long, default_value = "out/suite")]
    pub out: PathBuf,
    /// List the streams and models that would run, then stop.
    #[arg(long)]
    pub list: bool,
}

/// One stream of the suite.
#[derive(Debug, Clone)]
pub struct StreamDef {
    /// Short name, the `dataset` field of a result.
    pub name: String,
    /// A file path or a generator spec.
    pub source: String,
    /// Rows expected (for the ETA), if known.
    pub rows: Option<u64>,
    /// `file` or `generator`.
    pub kind: &'static str,
    pub note: String,
}

/// One line of `results.jsonl`: the fields of `eval --json` plus `dataset`
/// and the row cap the run used.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultLine {
    pub dataset: String,
    pub model: String,
    pub data: String,
    pub limit: Option<u64>,
    #[serde(flatten)]
    pub report: EvalReport,
}

impl ResultLine {
    fn key(&self) -> (String, String, Option<u64>) {
        (self.dataset.clone(), self.model.clone(), self.limit)
    }
}

#[derive(Debug, Deserialize)]
struct ManifestEntry {
    name: String,
    file: String,
    #[serde(default)]
    rows: Option<u64>,
    #[serde(default)]
    note: Option<String>,
}

/// The drifting generator streams, each `n` samples long with its drift
/// centred at `n / 2` (gradual ones over `n / 10` samples).
pub fn generator_streams(n: u64) -> Vec<StreamDef> {
    let mid = n / 2;
    let wide = (n / 10).max(1);
    let drift = |a: &str, b: &str, width: u64| {
        format!("drift:stream={a},drift_stream={b},position={mid},width={width},n={n}")
    };
    let list: Vec<(&str, String, &str)> = vec![
        (
            "sea_abrupt",
            drift("sea:variant=0|noise=0.1", "sea:variant=2|noise=0.1", 1),
            "SEA threshold 8 to 7, 10% label noise, abrupt",
        ),
        (
            "sea_gradual",
            drift("sea:variant=1|noise=0.1", "sea:variant=3|noise=0.1", wide),
            "SEA threshold 9 to 9.5, 10% label noise, gradual",
        ),
        (
            "agrawal_abrupt",
            drift("agrawal:function=0", "agrawal:function=2", 1),
            "Agrawal function 1 to 3, abrupt",
        ),
        (
            "agrawal_gradual",
            drift(
                "agrawal:function=3|perturbation=0.05",
                "agrawal:function=5|perturbation=0.05",
                wide,
            ),
            "Agrawal function 4 to 6, 5% perturbation, gradual",
        ),
        (
            "stagger_abrupt",
            drift("stagger:function=0", "stagger:function=1", 1),
            "STAGGER concept 1 to 2, abrupt",
        ),
        (
            "stagger_gradual",
            drift("stagger:function=1", "stagger:function=2", wide),
            "STAGGER concept 2 to 3, gradual",
        ),
        (
            "sine_abrupt",
            drift("sine:function=0", "sine:function=1", 1),
            "SINE1 reversed, abrupt",
        ),
        (
            "sine_gradual",
            drift(
                "sine:function=2|irrelevant=true",
                "sine:function=3|irrelevant=true",
                wide,
            ),
            "SINE2 reversed with 2 noise features, gradual",
        ),
        (
            "led_abrupt",
            drift("led:n_drift_features=0", "led:n_drift_features=7", 1),
            "LED, 7 segments swapped with irrelevant features, abrupt",
        ),
        (
            "led_gradual",
            drift("led:n_drift_features=1", "led:n_drift_features=5", wide),
            "LED, 1 then 5 segments swapped, gradual",
        ),
        (
            "hyperplane_slow",
            format!("hyperplane:mag_change=0.001,n_drift_features=2,noise=0.05,n={n}"),
            "rotating hyperplane, 10 features, 2 drifting by 0.001",
        ),
        (
            "hyperplane_fast",
            format!("hyperplane:mag_change=0.01,n_drift_features=5,noise=0.05,n={n}"),
            "rotating hyperplane, 10 features, 5 drifting by 0.01",
        ),
        (
            "rbf_moderate",
            format!("rbf_drift:n_classes=5,n_centroids=50,change_speed=0.0001,n={n}"),
            "random RBF, 5 classes, 50 centroids moving at 0.0001 (incremental)",
        ),
        (
            "rbf_fast",
            format!("rbf_drift:n_classes=5,n_centroids=50,change_speed=0.001,n={n}"),
            "random RBF, 5 classes, 50 centroids moving at 0.001 (incremental)",
        ),
        (
            "random_tree",
            format!("random_tree:n={n}"),
            "random tree concept, stationary",
        ),
    ];
    list.into_iter()
        .map(|(name, source, note)| StreamDef {
            name: name.to_string(),
            source,
            rows: Some(n),
            kind: "generator",
            note: note.to_string(),
        })
        .collect()
}

/// The data sets listed in `dir/manifest.json`.
pub fn file_streams(dir: &Path, limit: Option<u64>) -> Result<Vec<StreamDef>> {
    if !dir.is_dir() {
        bail!(
            "datasets directory `{}` not found: run from the repository root (the default is \
             ../shared/datasets), pass --datasets DIR, or --streams generators",
            dir.display()
        );
    }
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_str(&text).with_context(|| format!("bad {}", path.display()))?;
    let mut out = Vec::new();
    for e in entries {
        if e.file.contains('/') || e.file.contains('\\') || e.file.starts_with('.') {
            bail!(
                "{}: file `{}` is not a plain file name",
                path.display(),
                e.file
            );
        }
        let file = dir.join(&e.file);
        if !file.is_file() {
            bail!(
                "{}: data set `{}` has no file {}",
                path.display(),
                e.name,
                file.display()
            );
        }
        out.push(StreamDef {
            name: e.name,
            source: file.to_string_lossy().into_owned(),
            rows: match (e.rows, limit) {
                (Some(r), Some(l)) => Some(r.min(l)),
                (r, l) => r.or(l),
            },
            kind: "file",
            note: e.note.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Split a comma-separated list of specs where a spec's own parameters also
/// use commas: a piece with `=` but no `:` continues the previous spec
/// (`ht:grace_period=100,leaf=nb,nb` is `ht:grace_period=100,leaf=nb` and `nb`).
pub fn split_specs(list: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let continues = piece.contains('=') && !piece.contains(':');
        match out.last_mut() {
            Some(last) if continues => {
                last.push(',');
                last.push_str(piece);
            }
            _ => out.push(piece.to_string()),
        }
    }
    out
}

/// The default model list: every registered model but the baselines (and,
/// under `--quick`, the slowest).
pub fn default_models(quick: bool) -> Vec<String> {
    MODELS
        .iter()
        .map(|m| m.name)
        .filter(|n| !SKIPPED_BY_DEFAULT.contains(n))
        .filter(|n| !(quick && SKIPPED_WHEN_QUICK.contains(n)))
        .map(str::to_string)
        .collect()
}

/// Resolve `--streams` into stream definitions.
fn select_streams(args: &SuiteArgs, limit: Option<u64>) -> Result<Vec<StreamDef>> {
    let generators = generator_streams(limit.unwrap_or(GENERATOR_ROWS));
    let mut files: Option<Vec<StreamDef>> = None;
    let load_files = |files: &mut Option<Vec<StreamDef>>| -> Result<Vec<StreamDef>> {
        if files.is_none() {
            *files = Some(file_streams(&args.datasets, limit)?);
        }
        Ok(files.clone().unwrap_or_default())
    };
    let mut out: Vec<StreamDef> = Vec::new();
    for item in split_specs(&args.streams) {
        match item.as_str() {
            "all" => {
                out.extend(load_files(&mut files)?);
                out.extend(generators.iter().cloned());
            }
            "files" => out.extend(load_files(&mut files)?),
            "generators" => out.extend(generators.iter().cloned()),
            name => {
                if let Some(g) = generators.iter().find(|g| g.name == name) {
                    out.push(g.clone());
                    continue;
                }
                let is_path = Path::new(name).is_file() || name.contains('/');
                if !is_path && !name.contains(':') && args.datasets.is_dir() {
                    if let Some(f) = load_files(&mut files)?.into_iter().find(|f| f.name == name) {
                        out.push(f);
                        continue;
                    }
                }
                // A file or a generator spec of the user's own.
                let stem = Path::new(name)
                    .file_name()
                    .and_then(|f| f.to_str())
                    .map(|f| f.split('.').next().unwrap_or(f).to_string());
                out.push(StreamDef {
                    name: if is_path {
                        stem.unwrap_or_else(|| name.to_string())
                    } else {
                        name.to_string()
                    },
                    source: name.to_string(),
                    rows: limit,
                    kind: if is_path { "file" } else { "generator" },
                    note: String::new(),
                });
            }
        }
    }
    let mut seen = HashSet::new();
    out.retain(|s| seen.insert(s.name.clone()));
    if out.is_empty() {
        bail!("no stream selected by --streams `{}`", args.streams);
    }
    // Check every source opens now rather than failing job by job later.
    for s in &out {
        stream::open(&s.source)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("stream `{}` does not open", s.name))?;
    }
    Ok(out)
}

/// Resolve and check `--models`.
fn select_models(args: &SuiteArgs) -> Result<Vec<String>> {
    let models = match &args.models {
        Some(list) => split_specs(list),
        None => default_models(args.quick),
    };
    if models.is_empty() {
        bail!("no model selected");
    }
    let mut seen = HashSet::new();
    let schema = shoal_learn::Schema::numeric(2, &["0", "1"]);
    for m in &models {
        if !seen.insert(m.clone()) {
            bail!("model `{m}` is listed twice");
        }
        let spec = Spec::parse(m).with_context(|| format!("bad model spec `{m}`"))?;
        model::build(&spec, &schema).with_context(|| format!("cannot build model `{m}`"))?;
    }
    Ok(models)
}

/// Read the results already in `path`, dropping a truncated last line (a
/// run killed mid-write) from the file so that appends start on a fresh line.
pub fn load_results(path: &Path) -> Result<Vec<ResultLine>> {
    let mut text = String::new();
    match File::open(path) {
        Ok(mut f) => {
            f.read_to_string(&mut text)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot open {}", path.display())),
    }
    let complete = text.rfind('\n').map_or(0, |i| i + 1);
    if complete < text.len() {
        eprintln!(
            "{}: dropping a truncated last line ({} bytes)",
            path.display(),
            text.len() - complete
        );
        let f = OpenOptions::new()
            .write(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        f.set_len(complete as u64)
            .with_context(|| format!("cannot truncate {}", path.display()))?;
    }
    let mut out = Vec::new();
    for (i, line) in text[..complete].lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<ResultLine>(line) {
            Ok(r) => out.push(r),
            Err(e) => eprintln!(
                "{}:{}: skipping unreadable line: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

struct Job {
    stream: StreamDef,
    model: String,
}

/// What a worker is doing, for the progress line.
#[derive(Default)]
struct Slot {
    what: Mutex<Option<String>>,
    n: AtomicU64,
}

/// Run one job: build the model for the stream's schema and evaluate.
fn run_job(job: &Job, limit: Option<u64>, slot: &Slot) -> Result<ResultLine> {
    let mut s = stream::open(&job.stream.source)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .with_context(|| format!("cannot open `{}`", job.stream.source))?;
    let spec =
        Spec::parse(&job.model).with_context(|| format!("bad model spec `{}`", job.model))?;
    let mut m = model::build(&spec, s.schema())
        .with_context(|| format!("cannot build model `{}`", job.model))?;
    let config = EvalConfig {
        limit,
        checkpoint: 0,
        progress_every: 1000,
        ..EvalConfig::default()
    };
    let report = eval::prequential(&mut m, &mut s, &config, |p| {
        slot.n.store(p.n, Ordering::Relaxed);
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    if report.n == 0 {
        bail!("no valid sample");
    }
    Ok(ResultLine {
        dataset: job.stream.name.clone(),
        model: job.model.clone(),
        data: job.stream.source.clone(),
        limit,
        report,
    })
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

pub fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s / 60 % 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// Everything the report needs about the run.
pub struct RunInfo {
    pub streams: Vec<StreamDef>,
    pub models: Vec<String>,
    pub limit: Option<u64>,
    pub jobs: usize,
    pub quick: bool,
    pub failures: Vec<String>,
    pub seconds: f64,
    pub ran: usize,
    pub resumed: usize,
}

/// `shoal-bench suite`.
pub fn run(args: &SuiteArgs) -> Result<()> {
    let limit = args
        .limit
        .or(if args.quick { Some(QUICK_ROWS) } else { None });
    if limit == Some(0) {
        bail!("--limit must be at least 1");
    }
    if args.jobs == 0 || args.jobs > 256 {
        bail!("--jobs must be between 1 and 256");
    }
    let streams = select_streams(args, limit)?;
    let models = select_models(args)?;
    if args.list {
        for s in &streams {
            println!("{:<18} {:<9} {}", s.name, s.kind, s.source);
        }
        println!("models: {}", models.join(" "));
        return Ok(());
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let results_path = args.out.join("results.jsonl");
    let mut results = load_results(&results_path)?;
    let done: HashSet<_> = results.iter().map(ResultLine::key).collect();

    let mut queue = VecDeque::new();
    let mut resumed = 0;
    for s in &streams {
        for m in &models {
            if done.contains(&(s.name.clone(), m.clone(), limit)) {
                resumed += 1;
            } else {
                queue.push_back(Job {
                    stream: s.clone(),
                    model: m.clone(),
                });
            }
        }
    }
    let total = queue.len();
    eprintln!(
        "suite: {} streams x {} models = {} jobs, {} already in {}, {} to run on {} thread(s)",
        streams.len(),
        models.len(),
        streams.len() * models.len(),
        resumed,
        results_path.display(),
        total,
        args.jobs
    );

    let start = Instant::now();
    let mut failures = Vec::new();
    if total > 0 {
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&results_path)
            .with_context(|| format!("cannot open {}", results_path.display()))?;
        let rows_of = |j: &Job| j.stream.rows.unwrap_or(GENERATOR_ROWS) as f64;
        let total_rows: f64 = queue.iter().map(rows_of).sum();
        let jobs: Vec<Job> = queue.into_iter().collect();
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        let slots: Vec<Slot> = (0..args.jobs.min(total)).map(|_| Slot::default()).collect();
        let (tx, rx) = mpsc::channel::<(usize, Result<ResultLine>)>();
        let tty = std::io::stderr().is_terminal();

        std::thread::scope(|scope| -> Result<()> {
            for slot in &slots {
                let tx = tx.clone();
                let (jobs, next, stop) = (&jobs, &next, &stop);
                scope.spawn(move || loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(job) = jobs.get(i) else { break };
                    slot.n.store(0, Ordering::Relaxed);
                    if let Ok(mut w) = slot.what.lock() {
                        *w = Some(format!("{} on {}", job.model, job.stream.name));
                    }
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        run_job(job, limit, slot)
                    }))
                    .unwrap_or_else(|p| Err(anyhow::anyhow!("panicked: {}", panic_text(&*p))));
                    if let Ok(mut w) = slot.what.lock() {
                        *w = None;
                    }
                    if tx.send((i, r)).is_err() {
                        break;
                    }
                });
            }
            drop(tx);

            let mut finished = 0usize;
            let mut done_rows = 0.0;
            let mut last_draw = Instant::now() - Duration::from_secs(1);
            while finished < total {
                let msg = rx.recv_timeout(Duration::from_millis(250));
                match msg {
                    Ok((i, r)) => {
                        finished += 1;
                        let job = &jobs[i];
                        done_rows += rows_of(job);
                        let summary = match r {
                            Ok(line) => {
                                let text = serde_json::to_string(&line)?;
                                let written = writeln!(file, "{text}").and_then(|()| file.flush());
                                if let Err(e) = written {
                                    stop.store(true, Ordering::Relaxed);
                                    return Err(e).with_context(|| {
                                        format!("cannot append to {}", results_path.display())
                                    });
                                }
                                let s = format!(
                                    "accuracy {:.4}, {:.0} samples/s",
                                    line.report.accuracy, line.report.throughput
                                );
                                results.push(line);
                                s
                            }
                            Err(e) => {
                                let s =
                                    format!("{} on {} failed: {e:#}", job.model, job.stream.name);
                                failures.push(s.clone());
                                s
                            }
                        };
                        if tty {
                            eprint!("\r\x1b[2K");
                        }
                        let elapsed = start.elapsed().as_secs_f64();
                        let eta = elapsed * (total_rows - done_rows).max(0.0) / done_rows.max(1.0);
                        eprintln!(
                            "[{finished}/{total}] {} on {}: {summary} (eta {})",
                            job.model,
                            job.stream.name,
                            fmt_duration(eta)
                        );
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                if tty && last_draw.elapsed() >= Duration::from_millis(250) {
                    last_draw = Instant::now();
                    let mut running_rows = 0.0;
                    let mut running = Vec::new();
                    for slot in &slots {
                        if let Ok(w) = slot.what.lock() {
                            if let Some(what) = w.as_ref() {
                                let n = slot.n.load(Ordering::Relaxed);
                                running_rows += n as f64;
                                running.push(format!("{what} {n}"));
                            }
                        }
                    }
                    let elapsed = start.elapsed().as_secs_f64();
                    let progress = done_rows + running_rows;
                    let eta = if progress > 0.0 {
                        fmt_duration(elapsed * (total_rows - progress).max(0.0) / progress)
                    } else {
                        "?".into()
                    };
                    let pct = 100.0 * progress / total_rows.max(1.0);
                    let bar_w = 20usize;
                    let fill = ((pct / 100.0) * bar_w as f64).round() as usize;
                    let mut line = format!(
                        "[{}{}] {finished}/{total} {pct:.0}% {} eta {eta} | {}",
                        "#".repeat(fill.min(bar_w)),
                        "-".repeat(bar_w - fill.min(bar_w)),
                        fmt_duration(elapsed),
                        running.join("; ")
                    );
                    if line.len() > 150 {
                        let mut cut = 150;
                        while !line.is_char_boundary(cut) {
                            cut -= 1;
                        }
                        line.truncate(cut);
                    }
                    eprint!("\r\x1b[2K{line}");
                }
            }
            if tty {
                eprint!("\r\x1b[2K");
            }
            Ok(())
        })?;
    }
    let seconds = start.elapsed().as_secs_f64();
    if !failures.is_empty() {
        eprintln!(
            "{} job(s) failed; they run again on the next start",
            failures.len()
        );
    }
    let info = RunInfo {
        streams,
        models,
        limit,
        jobs: args.jobs,
        quick: args.quick,
        failures,
        seconds,
        ran: total,
        resumed,
    };
    let written = crate::report::write(&args.out, &info, &results)?;
    eprintln!(
        "suite done in {}: {}",
        fmt_duration(seconds),
        written
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_with_parameters_split_on_the_right_commas() {
        assert_eq!(
            split_specs("ht:grace_period=100,leaf=nb, nb,knn:n_neighbors=3"),
            vec!["ht:grace_period=100,leaf=nb", "nb", "knn:n_neighbors=3"]
        );
        assert_eq!(split_specs("a,,b"), vec!["a", "b"]);
    }

    #[test]
    fn every_generator_stream_opens_and_drifts_mid_way() {
        let g = generator_streams(1000);
        assert!(g.len() >= 14);
        for s in &g {
            let mut st = stream::open(&s.source).expect("catalogue specs are valid");
            let mut n = 0;
            while let Ok(Some(_)) = st.next_sample() {
                n += 1;
            }
            assert_eq!(n, 1000, "{}", s.name);
        }
        assert!(g[0].source.contains("position=500"));
    }

    #[test]
    fn truncated_last_line_is_dropped() {
        let dir = std::env::temp_dir().join(format!("shoal-suite-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("results.jsonl");
        std::fs::write(&path, "{\"not\": \"a result\"}\n{\"dataset\":\"x\",\"mod").expect("write");
        let r = load_results(&path).expect("readable");
        assert!(r.is_empty());
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, "{\"not\": \"a result\"}\n");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
