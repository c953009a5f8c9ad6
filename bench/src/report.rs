//! `report.md` of a suite run: tables of accuracy, kappa-T, AUC, throughput
//! and memory (streams x models, best in bold), average ranks, the Friedman
//! test with the Iman-Davenport correction, the Nemenyi critical difference
//! (Demšar 2006) with critical-difference diagrams, and an
//! accuracy-versus-throughput scatter.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::plot;
use crate::stats;
use crate::suite::{fmt_duration, ResultLine, RunInfo};

/// Significance level of the tests.
pub const ALPHA: f64 = 0.05;

/// A metric of the tables.
#[derive(Clone, Copy)]
struct Metric {
    key: &'static str,
    title: &'static str,
    higher_is_better: bool,
    get: fn(&ResultLine) -> Option<f64>,
    fmt: fn(f64) -> String,
}

const METRICS: &[Metric] = &[
    Metric {
        key: "accuracy",
        title: "Accuracy (%)",
        higher_is_better: true,
        get: |r| Some(r.report.accuracy),
        fmt: |v| format!("{:.2}", 100.0 * v),
    },
    Metric {
        key: "kappa_t",
        title: "Kappa-T (%)",
        higher_is_better: true,
        get: |r| Some(r.report.kappa_t),
        fmt: |v| format!("{:.2}", 100.0 * v),
    },
    Metric {
        key: "auc",
        title: "AUC",
        higher_is_better: true,
        get: |r| r.report.auc,
        fmt: |v| format!("{v:.4}"),
    },
    Metric {
        key: "throughput",
        title: "Throughput (samples/s, reading included)",
        higher_is_better: true,
        get: |r| Some(r.report.throughput),
        fmt: fmt_rate,
    },
    Metric {
        key: "memory",
        title: "Memory (largest model size seen)",
        higher_is_better: false,
        get: |r| Some(r.report.max_model_bytes as f64),
        fmt: fmt_bytes,
    },
];

pub fn fmt_rate(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2}M", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

pub fn fmt_bytes(v: f64) -> String {
    if v >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", v / (1024.0 * 1024.0))
    } else if v >= 1024.0 {
        format!("{:.1} KiB", v / 1024.0)
    } else {
        format!("{v:.0} B")
    }
}

/// Results of this run's grid: `cells[stream][model]`.
pub struct Grid<'a> {
    pub streams: Vec<String>,
    pub models: Vec<String>,
    pub cells: Vec<Vec<Option<&'a ResultLine>>>,
}

impl<'a> Grid<'a> {
    pub fn new(info: &RunInfo, results: &'a [ResultLine]) -> Self {
        let mut by_key: HashMap<(&str, &str), &ResultLine> = HashMap::new();
        for r in results.iter().filter(|r| r.limit == info.limit) {
            // The latest line wins if a job was recorded twice.
            by_key.insert((r.dataset.as_str(), r.model.as_str()), r);
        }
        let streams: Vec<String> = info.streams.iter().map(|s| s.name.clone()).collect();
        let models = info.models.clone();
        let cells = streams
            .iter()
            .map(|s| {
                models
                    .iter()
                    .map(|m| by_key.get(&(s.as_str(), m.as_str())).copied())
                    .collect()
            })
            .collect();
        Grid {
            streams,
            models,
            cells,
        }
    }

    /// The metric for every model on each stream where all models have a
    /// finite value (the complete blocks the rank tests need).
    fn complete_rows(&self, m: &Metric) -> Vec<Vec<f64>> {
        self.cells
            .iter()
            .filter_map(|row| {
                row.iter()
                    .map(|c| c.and_then(m.get).filter(|v| v.is_finite()))
                    .collect::<Option<Vec<f64>>>()
            })
            .collect()
    }
}

/// The rank statistics of one metric.
pub struct RankTest {
    pub n: usize,
    pub avg_ranks: Vec<f64>,
    pub friedman: Option<stats::Friedman>,
    pub cd: f64,
}

fn rank_test(grid: &Grid<'_>, m: &Metric) -> RankTest {
    let rows = grid.complete_rows(m);
    let avg_ranks = if rows.is_empty() {
        vec![f64::NAN; grid.models.len()]
    } else {
        stats::average_ranks(&rows, m.higher_is_better)
    };
    RankTest {
        n: rows.len(),
        friedman: stats::friedman(&avg_ranks, rows.len()),
        cd: stats::nemenyi_cd(grid.models.len(), rows.len(), ALPHA),
        avg_ranks,
    }
}

/// "p = 0.0123", "p = 2.4e-57", or "p < FLOOR" below the precision of the
/// tail (the chi-square tail is 1 - P and loses digits below 1e-15; the F
/// tail is computed directly).
fn fmt_p(p: f64, floor: f64) -> String {
    if p < floor || p <= 0.0 {
        format!("p < {floor:.0e}")
    } else if p < 1e-4 {
        format!("p = {p:.1e}")
    } else {
        format!("p = {p:.4}")
    }
}

/// The paragraph on one metric's tests, and whether the leader's lead is
/// significant.
fn tests_paragraph(out: &mut String, what: &str, grid: &Grid<'_>, t: &RankTest) {
    let k = grid.models.len();
    let Some(f) = &t.friedman else {
        let _ = writeln!(
            out,
            "Not enough complete streams ({}) or models ({k}) for the Friedman test on {what}.\n",
            t.n
        );
        return;
    };
    let _ = writeln!(
        out,
        "Friedman test on {what} over N = {} streams and k = {k} models: \
         chi2_F = {:.3} ({} df, {}); Iman-Davenport F_F = {:.3} with ({}, {}) df, {}. \
         {}",
        t.n,
        f.chi2,
        f.df1,
        fmt_p(f.chi2_p, 1e-15),
        f.f,
        f.df1,
        f.df2,
        fmt_p(f.f_p, 1e-300),
        if f.f_p < ALPHA {
            format!("The models differ significantly (p < {ALPHA}).")
        } else {
            format!(
                "The null hypothesis that all models are equivalent is not rejected at {ALPHA}."
            )
        }
    );
    let _ = writeln!(
        out,
        "\nNemenyi critical difference at alpha = {ALPHA}: CD = q_alpha sqrt(k(k+1)/(6N)) = {:.3} \
         sqrt({}·{}/(6·{})) = **{:.3}**.",
        stats::nemenyi_q(k, ALPHA),
        k,
        k + 1,
        t.n,
        t.cd
    );
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| t.avg_ranks[a].total_cmp(&t.avg_ranks[b]));
    if let [best, second, ..] = order[..] {
        let d = t.avg_ranks[second] - t.avg_ranks[best];
        let significant = d > t.cd && f.f_p < ALPHA;
        let _ = writeln!(
            out,
            "\nBest average rank on {what}: **{}** ({:.2}); runner-up {} ({:.2}). \
             The lead of {d:.2} ranks is {} by the Nemenyi test at {ALPHA} (CD {:.2}){}.",
            grid.models[best],
            t.avg_ranks[best],
            grid.models[second],
            t.avg_ranks[second],
            if significant {
                "**significant**"
            } else {
                "**not significant**"
            },
            t.cd,
            if d > t.cd && f.f_p >= ALPHA {
                " (the difference exceeds CD, but the Friedman test did not reject equivalence)"
            } else {
                ""
            }
        );
        let beaten: Vec<&str> = order
            .iter()
            .filter(|&&j| t.avg_ranks[j] - t.avg_ranks[best] > t.cd)
            .map(|&j| grid.models[j].as_str())
            .collect();
        if !beaten.is_empty() && f.f_p < ALPHA {
            let _ = writeln!(
                out,
                "{} is significantly better than: {}.",
                grid.models[best],
                beaten.join(", ")
            );
        }
    }
    out.push('\n');
}

/// A streams x models table of one metric, the best of each row in bold,
/// with mean and average-rank rows.
fn metric_table(out: &mut String, grid: &Grid<'_>, m: &Metric) {
    let _ = writeln!(out, "### {}\n", m.title);
    let _ = writeln!(out, "| stream | {} |", grid.models.join(" | "));
    let _ = writeln!(out, "|---|{}", "---:|".repeat(grid.models.len()));
    let mut sums = vec![(0.0, 0usize); grid.models.len()];
    for (s, row) in grid.streams.iter().zip(&grid.cells) {
        let vals: Vec<Option<f64>> = row
            .iter()
            .map(|c| c.and_then(m.get).filter(|v| v.is_finite()))
            .collect();
        let best = vals.iter().flatten().copied().reduce(|a, b| {
            if m.higher_is_better {
                a.max(b)
            } else {
                a.min(b)
            }
        });
        let cells: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(j, v)| match v {
                Some(v) => {
                    sums[j].0 += v;
                    sums[j].1 += 1;
                    let text = (m.fmt)(*v);
                    if Some(*v) == best {
                        format!("**{text}**")
                    } else {
                        text
                    }
                }
                None => "–".to_string(),
            })
            .collect();
        let _ = writeln!(out, "| {s} | {} |", cells.join(" | "));
    }
    let means: Vec<String> = sums
        .iter()
        .map(|&(s, n)| {
            if n > 0 {
                (m.fmt)(s / n as f64)
            } else {
                "–".into()
            }
        })
        .collect();
    let _ = writeln!(out, "| *mean* | {} |", means.join(" | "));
    let t = rank_test(grid, m);
    let ranks: Vec<String> = t
        .avg_ranks
        .iter()
        .map(|r| {
            if r.is_finite() {
                format!("{r:.2}")
            } else {
                "–".into()
            }
        })
        .collect();
    let _ = writeln!(out, "| *avg rank* | {} |\n", ranks.join(" | "));
}

/// Write `report.md` and the figures into `dir`; returns the paths written.
pub fn write(dir: &Path, info: &RunInfo, results: &[ResultLine]) -> Result<Vec<PathBuf>> {
    let grid = Grid::new(info, results);
    let (md, figures) = render(info, &grid);
    let mut written = Vec::new();
    for (name, svg) in figures {
        let p = dir.join(name);
        std::fs::write(&p, svg).with_context(|| format!("cannot write {}", p.display()))?;
        written.push(p);
    }
    let p = dir.join("report.md");
    std::fs::write(&p, md).with_context(|| format!("cannot write {}", p.display()))?;
    written.insert(0, p);
    Ok(written)
}

/// The markdown and the SVG figures (file name, content).
pub fn render(info: &RunInfo, grid: &Grid<'_>) -> (String, Vec<(String, String)>) {
    let mut out = String::new();
    let mut figures = Vec::new();
    let k = grid.models.len();
    let done = grid.cells.iter().flatten().filter(|c| c.is_some()).count();
    let _ = writeln!(out, "# Stream-classification suite\n");
    let _ = writeln!(
        out,
        "{} streams x {} models, {} of {} jobs with a result; rows per stream: {}. \
         Prequential (test-then-train) evaluation over the whole stream; \
         throughput is samples per wall second, reading and parsing included, \
         with {} job(s) in parallel{}. Memory is the largest model size seen \
         (sampled every 10000 samples and at the end).\n",
        grid.streams.len(),
        k,
        done,
        grid.streams.len() * k,
        info.limit
            .map_or("all (generators 100000)".to_string(), |l| format!(
                "at most {l}"
            )),
        info.jobs,
        if info.quick { " (`--quick`)" } else { "" }
    );
    let _ = writeln!(
        out,
        "This run: {} job(s) evaluated in {}, {} taken from an earlier run's results.jsonl.\n",
        info.ran,
        fmt_duration(info.seconds),
        info.resumed
    );

    let tests: Vec<RankTest> = METRICS.iter().map(|m| rank_test(grid, m)).collect();

    // Average ranks, models sorted by accuracy rank.
    let _ = writeln!(out, "## Average ranks\n");
    let _ = writeln!(
        out,
        "Rank 1 is best on each stream (ties share the average rank); averaged over the \
         streams where every model has a value ({}).\n",
        METRICS
            .iter()
            .zip(&tests)
            .map(|(m, t)| format!("{}: N = {}", m.key, t.n))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let _ = writeln!(
        out,
        "| model | accuracy | kappa-T | AUC | throughput | memory | mean accuracy (%) | suite throughput |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by(|&a, &b| tests[0].avg_ranks[a].total_cmp(&tests[0].avg_ranks[b]));
    let mut points = Vec::new();
    for &j in &order {
        let rs: Vec<String> = tests
            .iter()
            .map(|t| {
                let r = t.avg_ranks.get(j).copied().unwrap_or(f64::NAN);
                if r.is_finite() {
                    format!("{r:.2}")
                } else {
                    "–".into()
                }
            })
            .collect();
        let col: Vec<&ResultLine> = grid.cells.iter().filter_map(|row| row[j]).collect();
        let mean_acc = if col.is_empty() {
            f64::NAN
        } else {
            col.iter().map(|r| r.report.accuracy).sum::<f64>() / col.len() as f64
        };
        let (n, secs) = col.iter().fold((0.0, 0.0), |(n, s), r| {
            (n + r.report.n as f64, s + r.report.seconds)
        });
        let rate = if secs > 0.0 { n / secs } else { f64::NAN };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {:.2} | {} |",
            grid.models[j],
            rs[0],
            rs[1],
            rs[2],
            rs[3],
            rs[4],
            100.0 * mean_acc,
            if rate.is_finite() {
                fmt_rate(rate)
            } else {
                "–".into()
            }
        );
        points.push(plot::Point {
            label: grid.models[j].clone(),
            x: rate,
            y: mean_acc,
        });
    }
    let _ = writeln!(
        out,
        "\nSuite throughput is all samples over all seconds of the model's jobs.\n"
    );

    let _ = writeln!(out, "## Statistical tests\n");
    let _ = writeln!(out, "### Accuracy\n");
    tests_paragraph(&mut out, "accuracy", grid, &tests[0]);
    if tests[0].n > 0 && k >= 2 {
        let svg = plot::cd_diagram(
            &format!(
                "Accuracy: average ranks, Nemenyi CD at {ALPHA} (N = {})",
                tests[0].n
            ),
            &grid.models,
            &tests[0].avg_ranks,
            tests[0].cd,
        );
        figures.push(("cd-accuracy.svg".to_string(), svg));
        let _ = writeln!(
            out,
            "![Critical-difference diagram, accuracy](cd-accuracy.svg)\n\n\
             Models joined by a thick bar are not significantly different (their average \
             ranks differ by less than CD).\n"
        );
    }
    let _ = writeln!(out, "### Kappa-T\n");
    tests_paragraph(&mut out, "kappa-T", grid, &tests[1]);
    if tests[1].n > 0 && k >= 2 {
        let svg = plot::cd_diagram(
            &format!(
                "Kappa-T: average ranks, Nemenyi CD at {ALPHA} (N = {})",
                tests[1].n
            ),
            &grid.models,
            &tests[1].avg_ranks,
            tests[1].cd,
        );
        figures.push(("cd-kappa_t.svg".to_string(), svg));
        let _ = writeln!(
            out,
            "![Critical-difference diagram, kappa-T](cd-kappa_t.svg)\n"
        );
    }

    let _ = writeln!(out, "## Accuracy against throughput\n");
    figures.push((
        "accuracy-throughput.svg".to_string(),
        plot::scatter_log_x(
            "Mean accuracy against suite throughput",
            "samples per second (log scale)",
            "mean accuracy over the streams",
            &points,
        ),
    ));
    let _ = writeln!(
        out,
        "![Mean accuracy against throughput](accuracy-throughput.svg)\n"
    );

    let _ = writeln!(out, "## Per stream\n");
    let _ = writeln!(out, "Best of each row in bold.\n");
    for m in METRICS {
        metric_table(&mut out, grid, m);
    }

    let _ = writeln!(out, "## Streams\n");
    let _ = writeln!(out, "| stream | kind | rows | source | note |");
    let _ = writeln!(out, "|---|---|---:|---|---|");
    for (s, row) in info.streams.iter().zip(&grid.cells) {
        let rows = row
            .iter()
            .flatten()
            .map(|r| r.report.n)
            .max()
            .map_or("–".to_string(), |n| n.to_string());
        let source = if s.kind == "file" {
            Path::new(&s.source)
                .file_name()
                .map_or(s.source.clone(), |f| f.to_string_lossy().into_owned())
        } else {
            s.source.clone()
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | `{}` | {} |",
            s.name,
            s.kind,
            rows,
            source.replace('|', "\\|"),
            s.note
        );
    }
    out.push('\n');
    if !info.failures.is_empty() {
        let _ = writeln!(out, "## Failed jobs\n");
        for f in &info.failures {
            let _ = writeln!(out, "- {}", f.replace('\n', " "));
        }
        out.push('\n');
    }
    (out, figures)
}
