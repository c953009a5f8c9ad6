//! SVG plots of a simulation report: bars per policy with the lower bound
//! as a dashed line, and the distribution of completion times.

use std::fmt::Write as _;

use super::SimReport;
use crate::svg::{render, Chart, Line};

const W: f64 = 760.0;
const H: f64 = 360.0;
const LEFT: f64 = 80.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 80.0;
const RIGHT: f64 = 20.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A bar chart of `values` (one per label) with a dashed line at `bound`.
pub fn bars(title: &str, unit: &str, labels: &[String], values: &[f64], bound: f64) -> String {
    let top = values
        .iter()
        .copied()
        .chain([bound])
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
        .max(1e-12)
        * 1.1;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sy = |v: f64| TOP + ph - (v / top).clamp(0.0, 1.0) * ph;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for k in 0..=4 {
        let v = top * f64::from(k) / 4.0;
        let y = sy(v);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            y + 4.0,
            esc(&fmt_value(v, unit))
        );
    }
    let n = values.len().max(1) as f64;
    let slot = pw / n;
    for (i, (l, v)) in labels.iter().zip(values).enumerate() {
        let x = LEFT + slot * i as f64 + slot * 0.15;
        let y = sy(*v);
        let colour = if l == "auction" { "#0072B2" } else { "#999999" };
        let _ = writeln!(
            s,
            r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{colour}"/>"#,
            slot * 0.7,
            (TOP + ph - y).max(0.0)
        );
        let cx = x + slot * 0.35;
        let _ = writeln!(
            s,
            r##"<text x="{cx:.1}" y="{:.1}" text-anchor="middle" fill="#333" font-size="10">{}</text>"##,
            y - 4.0,
            esc(&fmt_value(*v, unit))
        );
        let _ = writeln!(
            s,
            r##"<text transform="translate({cx:.1},{:.1}) rotate(30)" fill="#333">{}</text>"##,
            TOP + ph + 14.0,
            esc(l)
        );
    }
    if bound.is_finite() && bound > 0.0 {
        let y = sy(bound);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#D55E00" stroke-dasharray="6 4"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#D55E00">lower bound</text>"##,
            LEFT + pw,
            LEFT + pw,
            y - 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

fn fmt_value(v: f64, unit: &str) -> String {
    match unit {
        "bytes" if v >= 1e9 => format!("{:.1} GB", v / 1e9),
        "bytes" => format!("{:.0} MB", v / 1e6),
        _ if v >= 100.0 => format!("{v:.0} {unit}"),
        _ => format!("{v:.1} {unit}"),
    }
}

/// File name and SVG of each chart.
pub fn charts(r: &SimReport) -> Vec<(String, String)> {
    let tag = format!("{}-{}", r.topology.name(), r.nodes);
    let labels: Vec<String> = r.policies.iter().map(|p| p.policy.clone()).collect();
    let mean: Vec<f64> = r.policies.iter().map(|p| p.mean_completion_s).collect();
    let bytes: Vec<f64> = r.policies.iter().map(|p| p.bytes_moved).collect();
    let mut out = vec![
        (
            format!("sim-{tag}-completion.svg"),
            bars(
                &format!(
                    "Mean completion time, {} nodes, {}",
                    r.nodes,
                    r.topology.name()
                ),
                "s",
                &labels,
                &mean,
                r.lower_bound.mean_completion_s,
            ),
        ),
        (
            format!("sim-{tag}-bytes.svg"),
            bars(
                &format!("Bytes moved, {} nodes, {}", r.nodes, r.topology.name()),
                "bytes",
                &labels,
                &bytes,
                r.lower_bound.bytes_moved,
            ),
        ),
    ];
    // Completion-time distribution: fraction of tasks done within x s.
    let lines: Vec<Line> = r
        .policies
        .iter()
        .map(|p| {
            let n = p.sorted_completion_s.len().max(1);
            let step = (n / 200).max(1);
            let mut pts: Vec<Option<(f64, f64)>> = p
                .sorted_completion_s
                .iter()
                .enumerate()
                .filter(|(i, _)| i % step == 0 || *i + 1 == n)
                .map(|(i, t)| Some((*t, (i + 1) as f64 / n as f64)))
                .collect();
            if pts.is_empty() {
                pts.push(Some((0.0, 0.0)));
            }
            Line {
                label: p.policy.clone(),
                points: pts,
            }
        })
        .collect();
    let title = format!(
        "Completion time CDF, {} nodes, {}",
        r.nodes,
        r.topology.name()
    );
    out.push((
        format!("sim-{tag}-cdf.svg"),
        render(&Chart {
            title: &title,
            x_label: "completion time (s)",
            y_label: "fraction of tasks",
            lines: &lines,
            markers: &[],
            y_range: Some((0.0, 1.0)),
            y_fmt: |y| format!("{y:.1}"),
            integer_y: false,
        }),
    ));
    out
}
