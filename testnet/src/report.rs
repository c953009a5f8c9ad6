//! The end of a run: `report.json` (everything), `report.md` (for people),
//! SVG plots, and the one-line JSON summary that `--json` prints last.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::local::{Event, NodeState, Point, Testnet};
use crate::scenario::{Lost, Outcome, ScenarioKind};
use crate::svg::{self, Chart, Line, Marker};
use crate::util::{human_secs, stamp_iso};

/// One node at the end of the run.
#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary {
    pub node: String,
    pub peer_id: Option<String>,
    pub state: NodeState,
    pub api: String,
    pub peers: u64,
    pub samples_seen: u64,
    pub accuracy: Option<f64>,
    pub model_version: u64,
    pub merges: u64,
    pub model_kind: String,
    pub restarts: u32,
    pub crashes: u32,
    pub tasks: serde_json::Value,
}

/// The short summary: printed as the last stdout line with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub nodes: usize,
    pub scenario: ScenarioKind,
    pub duration_s: f64,
    /// True when the run was cut short by Ctrl-C / SIGTERM.
    pub interrupted: bool,
    /// True when every check passed.
    pub ok: bool,
    pub full_mesh_at_s: Option<f64>,
    pub per_node: Vec<NodeSummary>,
    pub lost: Lost,
    pub checks_passed: usize,
    pub checks_total: usize,
    pub out: String,
}

/// Everything about a run, as written to `report.json`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub started_at: String,
    pub node_version: Option<String>,
    pub data: String,
    pub model: Option<String>,
    pub rate_per_node: f64,
    pub summary: Summary,
    pub outcome: Outcome,
    pub events: Vec<Event>,
    pub timeline: Vec<NodeTimeline>,
}

/// A node's time series.
#[derive(Debug, Clone, Serialize)]
pub struct NodeTimeline {
    pub node: String,
    pub points: Vec<Point>,
}

/// Assemble the report from the state at the end of the run.
pub fn build(net: &Testnet, outcome: Outcome, out: &Path, interrupted: bool) -> Report {
    let per_node: Vec<NodeSummary> = net
        .members
        .iter()
        .map(|m| {
            let s = m.last.as_ref();
            NodeSummary {
                node: m.spec.name.clone(),
                peer_id: m.peer_id.clone(),
                state: m.state,
                api: m.spec.api_base(),
                peers: s.map(|s| s.peers).unwrap_or(0),
                samples_seen: s.map(|s| s.samples_seen).unwrap_or(0),
                accuracy: s.and_then(|s| s.accuracy),
                model_version: s.map(|s| s.model_version).unwrap_or(0),
                merges: s.map(|s| s.merges).unwrap_or(0),
                model_kind: s.map(|s| s.model_kind.clone()).unwrap_or_default(),
                restarts: m.restarts,
                crashes: m.crashes,
                tasks: s.map(|s| s.tasks.clone()).unwrap_or_default(),
            }
        })
        .collect();
    let passed = outcome.checks.iter().filter(|c| c.ok).count();
    let summary = Summary {
        nodes: net.members.len(),
        scenario: net.opts.scenario,
        duration_s: (net.now() * 10.0).round() / 10.0,
        interrupted,
        ok: passed == outcome.checks.len() && !interrupted,
        full_mesh_at_s: net.full_mesh_at.map(|t| (t * 10.0).round() / 10.0),
        per_node,
        lost: outcome.lost.clone(),
        checks_passed: passed,
        checks_total: outcome.checks.len(),
        out: out.display().to_string(),
    };
    Report {
        tool: format!("shoal-testnet {}", env!("CARGO_PKG_VERSION")),
        started_at: stamp_iso(net.started_unix),
        node_version: net
            .members
            .iter()
            .find_map(|m| m.last.as_ref().map(|s| s.version.clone())),
        data: net.sources_description.clone(),
        model: net.opts.model.clone(),
        rate_per_node: net.opts.rate,
        summary,
        outcome,
        events: net.events.clone(),
        timeline: net
            .members
            .iter()
            .map(|m| NodeTimeline {
                node: m.spec.name.clone(),
                points: m.series.clone(),
            })
            .collect(),
    }
}

/// Write `report.json`, `report.md` and the plots into `out`.
pub fn write(report: &Report, net: &Testnet, out: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report).context("encoding report.json")?;
    write_file(&out.join("report.json"), &json)?;
    let plots = plots(net);
    for (name, svg) in &plots {
        write_file(&out.join(name), svg)?;
    }
    write_file(&out.join("report.md"), &markdown(report, &plots))?;
    Ok(())
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Markers for the plots: kills, stops and partition events.
fn markers(events: &[Event]) -> Vec<Marker> {
    events
        .iter()
        .filter(|e| e.text.starts_with("kill -9") || e.text.starts_with("partition:"))
        .take(50)
        .map(|e| Marker {
            x: e.t,
            label: e
                .text
                .split(" (pid")
                .next()
                .unwrap_or_default()
                .chars()
                .take(40)
                .collect(),
        })
        .collect()
}

/// Points as plot lines, broken where polls were missing for a while.
fn lines(net: &Testnet, y: fn(&Point) -> Option<f64>, nudge: f64) -> Vec<Line> {
    net.members
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut pts = Vec::with_capacity(m.series.len());
            let mut prev_t: Option<f64> = None;
            // Typical spacing grows as the series is thinned; a gap is much
            // longer than that.
            let spacing = if m.series.len() > 1 {
                let first = m.series.first().map(|p| p.t).unwrap_or(0.0);
                let last = m.series.last().map(|p| p.t).unwrap_or(0.0);
                (last - first) / (m.series.len() - 1) as f64
            } else {
                1.0
            };
            for p in &m.series {
                if p.restarted || prev_t.is_some_and(|t0| p.t - t0 > (4.0 * spacing).max(4.0)) {
                    pts.push(None);
                }
                prev_t = Some(p.t);
                pts.push(y(p).map(|v| (p.t, v + nudge * i as f64)));
            }
            Line {
                label: m.spec.name.clone(),
                points: pts,
            }
        })
        .collect()
}

fn plots(net: &Testnet) -> Vec<(String, String)> {
    let marks = markers(&net.events);
    let acc = lines(net, |p| p.accuracy, 0.0);
    let samples = lines(net, |p| Some(p.samples_seen as f64), 0.0);
    // Peer counts are small integers shared by many nodes: nudge each line
    // a little so that equal lines do not hide each other.
    let peers = lines(net, |p| Some(p.peers as f64), 0.04);
    vec![
        (
            "accuracy.svg".into(),
            svg::render(&Chart {
                title: "Prequential accuracy per node",
                x_label: "seconds since start",
                y_label: "accuracy",
                lines: &acc,
                markers: &marks,
                y_range: Some((0.0, 1.0)),
                y_fmt: |y| format!("{:.0}%", y * 100.0),
                integer_y: false,
            }),
        ),
        (
            "samples.svg".into(),
            svg::render(&Chart {
                title: "Samples learned per node",
                x_label: "seconds since start",
                y_label: "samples_seen",
                lines: &samples,
                markers: &marks,
                y_range: None,
                y_fmt: |y| crate::live::thousands(y.max(0.0) as u64),
                integer_y: true,
            }),
        ),
        (
            "peers.svg".into(),
            svg::render(&Chart {
                title: "Connected peers per node (lines nudged apart)",
                x_label: "seconds since start",
                y_label: "peers",
                lines: &peers,
                markers: &marks,
                y_range: Some((0.0, net.members.len().max(2) as f64 - 1.0 + 0.5)),
                y_fmt: |y| format!("{y:.0}"),
                integer_y: true,
            }),
        ),
    ]
}

fn markdown(r: &Report, plots: &[(String, String)]) -> String {
    let s = &r.summary;
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# Shoal testnet: `{}` scenario, {} nodes\n",
        s.scenario.name(),
        s.nodes
    );
    let _ = writeln!(
        m,
        "Started {} · ran {}{} · {} · {}\n",
        r.started_at,
        human_secs(s.duration_s),
        if s.interrupted { " (interrupted)" } else { "" },
        r.node_version
            .as_ref()
            .map(|v| format!("shoal-node {v}"))
            .unwrap_or_else(|| "shoal-node version unknown".into()),
        r.tool
    );
    let _ = writeln!(
        m,
        "**Result: {}** ({} of {} checks passed).\n",
        if s.ok {
            "all checks passed"
        } else {
            "some checks failed"
        },
        s.checks_passed,
        s.checks_total
    );
    let _ = writeln!(m, "- Data: {}", r.data);
    let _ = writeln!(
        m,
        "- Model: {}",
        r.model.as_deref().unwrap_or("the node's default")
    );
    let _ = writeln!(m, "- Rate: {} samples/s per node\n", r.rate_per_node);

    let _ = writeln!(m, "## Nodes at the end\n");
    let _ = writeln!(
        m,
        "| node | peer id | state | peers | samples | accuracy | model version | merges | restarts |"
    );
    let _ = writeln!(m, "|---|---|---|---:|---:|---:|---:|---:|---:|");
    for n in &s.per_node {
        let _ = writeln!(
            m,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |",
            n.node,
            n.peer_id.as_deref().unwrap_or("?"),
            n.state.label(),
            n.peers,
            crate::live::thousands(n.samples_seen),
            n.accuracy
                .map(|a| format!("{:.2}%", a * 100.0))
                .unwrap_or_else(|| "-".into()),
            n.model_version,
            n.merges,
            n.restarts
        );
    }

    let o = &r.outcome;
    let _ = writeln!(m, "\n## What was expected\n");
    for e in &o.expected {
        let _ = writeln!(m, "- {e}");
    }
    let _ = writeln!(m, "\n## What was measured\n");
    for e in &o.measured {
        let _ = writeln!(m, "- {e}");
    }
    let _ = writeln!(m, "\n## Checks\n");
    for c in &o.checks {
        let _ = writeln!(
            m,
            "- {} {} — {}",
            if c.ok { "✅" } else { "❌" },
            c.what,
            c.detail
        );
    }

    let l = &o.lost;
    let _ = writeln!(m, "\n## Lost or redone work\n");
    let _ = writeln!(m, "| what | count |\n|---|---:|");
    let _ = writeln!(
        m,
        "| samples rolled back by restarts (re-learned from the source) | {} |",
        l.samples_rolled_back
    );
    let _ = writeln!(
        m,
        "| restarts with an older model version | {} |",
        l.model_version_regressions
    );
    let _ = writeln!(
        m,
        "| restarts with a new peer id | {} |",
        l.identity_changes
    );
    let _ = writeln!(
        m,
        "| restarted nodes that never answered | {} |",
        l.nodes_not_back
    );
    let _ = writeln!(m, "| unexpected exits | {} |", l.crashes);
    let _ = writeln!(
        m,
        "| model version drops seen over all polls | {} |",
        l.model_version_drops
    );
    if l.acked_samples > 0 {
        let _ = writeln!(
            m,
            "| acknowledged samples (witness) lost / duplicated | {} / {} of {} |",
            l.acked_samples_lost, l.acked_samples_duplicated, l.acked_samples
        );
    }
    let _ = writeln!(
        m,
        "| tasks lost | {} |",
        if l.tasks_measured {
            format!(
                "{} of {} accepted ({} committed, {} failed, {} open at the end)",
                l.tasks_lost, l.tasks_submitted, l.tasks_committed, l.tasks_failed, l.tasks_open
            )
        } else {
            "not measured (no task submitted in this scenario, or no market in this build)".into()
        }
    );

    if !o.restarts.is_empty() {
        let _ = writeln!(m, "\n## Restarts\n");
        let _ = writeln!(
            m,
            "| node | how | at | answered after | rejoined after | same peer id | model version | samples |"
        );
        let _ = writeln!(m, "|---|---|---:|---:|---:|---|---|---|");
        for x in &o.restarts {
            let secs = |v: Option<f64>| {
                v.map(|v| format!("{v:.1} s"))
                    .unwrap_or_else(|| "never".into())
            };
            let num = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
            let same = match (&x.peer_id_before, &x.peer_id_after) {
                (Some(a), Some(b)) if a == b => "yes",
                (Some(_), Some(_)) => "**no**",
                _ => "?",
            };
            let _ = writeln!(
                m,
                "| {} | {} | {:.0} s | {} | {} | {} | {} → {} | {} → {} |",
                x.node,
                x.how,
                x.stopped_at_s,
                secs(x.answered_after_s),
                secs(x.rejoined_after_s),
                same,
                num(x.model_version_before),
                num(x.model_version_after),
                num(x.samples_before),
                num(x.samples_after)
            );
        }
    }

    let _ = writeln!(m, "\n## Plots\n");
    for (name, _) in plots {
        let _ = writeln!(m, "![{name}]({name})\n");
    }

    let _ = writeln!(m, "## Events\n\n```");
    for e in r.events.iter().take(500) {
        let first = e.text.lines().next().unwrap_or_default();
        let _ = writeln!(m, "{:>7.1} s  {first}", e.t);
    }
    let _ = writeln!(m, "```\n");
    let _ = writeln!(
        m,
        "Each node's log is in `nodeN/node.log`, its data dir in `nodeN/data`; \
         `report.json` holds every number above plus the time series."
    );
    m
}

/// The human summary printed on stdout at the end.
pub fn print_human(r: &Report) {
    let s = &r.summary;
    println!();
    println!(
        "shoal testnet · {} · {} nodes · {}{}",
        s.scenario.name(),
        s.nodes,
        human_secs(s.duration_s),
        if s.interrupted { " (interrupted)" } else { "" }
    );
    for n in &s.per_node {
        println!(
            "  {:<6} {:<9} peers {:>2}  samples {:>9}  accuracy {:>7}  model v{:<5} merges {}",
            n.node,
            n.state.label(),
            n.peers,
            crate::live::thousands(n.samples_seen),
            n.accuracy
                .map(|a| format!("{:.2}%", a * 100.0))
                .unwrap_or_else(|| "-".into()),
            n.model_version,
            n.merges
        );
    }
    let with_peers = s.per_node.iter().filter(|n| n.peers > 0).count();
    let min_peers = s.per_node.iter().map(|n| n.peers).min().unwrap_or(0);
    let samples: u64 = s.per_node.iter().map(|n| n.samples_seen).sum();
    let merges: u64 = s.per_node.iter().map(|n| n.merges).sum();
    println!(
        "  mesh: {with_peers} of {} nodes found peers (each at least {min_peers}) · {} samples learned · {merges} model merges",
        s.nodes,
        crate::live::thousands(samples),
    );
    for c in &r.outcome.checks {
        println!(
            "  {} {} ({})",
            if c.ok { "ok  " } else { "FAIL" },
            c.what,
            c.detail
        );
    }
    println!(
        "  report: {}",
        crate::live::shown_path(&Path::new(&s.out).join("report.md"))
    );
}
