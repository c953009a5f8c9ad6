//! Hand-written SVG figures for the suite report: the critical-difference
//! diagram of Demšar (2006) and an accuracy-versus-throughput scatter with a
//! logarithmic x axis. No plotting dependency: each figure is a few lines,
//! circles and labels and opens in any browser.

use std::fmt::Write as _;

use crate::stats;

/// Escape text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Colour-blind-friendly palette (Okabe & Ito 2008), cycled.
const PALETTE: &[&str] = &[
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#999999",
];

fn color(i: usize) -> &'static str {
    PALETTE[i % PALETTE.len()]
}

const FONT: &str = "font-family=\"Helvetica, Arial, sans-serif\"";

/// A critical-difference diagram: an axis of average ranks 1..k (best on the
/// left), each model hanging from its rank to a label on either side, a bar
/// of length CD above the axis, and thick bars joining the groups the
/// Nemenyi test cannot tell apart.
pub fn cd_diagram(title: &str, names: &[String], avg_ranks: &[f64], cd: f64) -> String {
    let k = names.len().max(2);
    let mut order: Vec<usize> = (0..names.len().min(avg_ranks.len())).collect();
    order.sort_by(|&a, &b| avg_ranks[a].total_cmp(&avg_ranks[b]));
    let sorted: Vec<f64> = order.iter().map(|&i| avg_ranks[i]).collect();
    let groups = stats::cliques(&sorted, cd);

    let label_w = 12.0 + 7.0 * names.iter().map(|n| n.len()).max().unwrap_or(4) as f64;
    let width = 760.0_f64.max(2.0 * label_w + 360.0);
    let (left, right) = (label_w + 70.0, width - label_w - 70.0);
    let axis_y = 80.0;
    let x_of = |r: f64| left + (r - 1.0) / (k as f64 - 1.0) * (right - left);
    let half = order.len().div_ceil(2);
    let row_h = 20.0;
    let group_top = axis_y + 14.0;
    let first_label = group_top + 10.0 * groups.len() as f64 + 18.0;
    let height = first_label + row_h * half as f64 + 20.0;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" {FONT} font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{:.1}\" y=\"20\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        width / 2.0,
        esc(title)
    );
    // CD bar.
    let cd_len = cd / (k as f64 - 1.0) * (right - left);
    let _ = writeln!(
        s,
        "<line x1=\"{left:.1}\" y1=\"40\" x2=\"{:.1}\" y2=\"40\" stroke=\"black\" stroke-width=\"2\"/>\
         <line x1=\"{left:.1}\" y1=\"35\" x2=\"{left:.1}\" y2=\"45\" stroke=\"black\"/>\
         <line x1=\"{:.1}\" y1=\"35\" x2=\"{:.1}\" y2=\"45\" stroke=\"black\"/>\
         <text x=\"{:.1}\" y=\"32\" text-anchor=\"middle\">CD = {cd:.2}</text>",
        left + cd_len,
        left + cd_len,
        left + cd_len,
        left + cd_len / 2.0
    );
    // Axis and ticks.
    let _ = writeln!(
        s,
        "<line x1=\"{left:.1}\" y1=\"{axis_y}\" x2=\"{right:.1}\" y2=\"{axis_y}\" stroke=\"black\"/>"
    );
    let tick_every = if k > 15 { 2 } else { 1 };
    for r in 1..=k {
        let x = x_of(r as f64);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{:.1}\" x2=\"{x:.1}\" y2=\"{axis_y}\" stroke=\"black\"/>",
            axis_y - 6.0
        );
        if (r - 1) % tick_every == 0 || r == k {
            let _ = writeln!(
                s,
                "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{r}</text>",
                axis_y - 10.0
            );
        }
    }
    // Models: the better half to the left, the rest to the right.
    for (pos, &i) in order.iter().enumerate() {
        let x = x_of(avg_ranks[i]);
        let (row, left_side) = if pos < half {
            (pos, true)
        } else {
            (order.len() - 1 - pos, false)
        };
        let y = first_label + row_h * row as f64;
        let (lx, anchor) = if left_side {
            (left - 10.0, "end")
        } else {
            (right + 10.0, "start")
        };
        let _ = writeln!(
            s,
            "<polyline points=\"{x:.1},{axis_y} {x:.1},{y:.1} {lx:.1},{y:.1}\" fill=\"none\" stroke=\"black\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\">{} ({:.2})</text>",
            if left_side { lx - 4.0 } else { lx + 4.0 },
            y + 4.0,
            esc(&names[i]),
            avg_ranks[i]
        );
    }
    // Groups with no significant difference.
    for (g, &(a, b)) in groups.iter().enumerate() {
        let y = group_top + 10.0 * g as f64;
        let _ = writeln!(
            s,
            "<line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"black\" stroke-width=\"4\"/>",
            x_of(sorted[a]) - 4.0,
            x_of(sorted[b]) + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

/// One point of the scatter.
pub struct Point {
    pub label: String,
    /// Samples per second (> 0; drawn on a log scale).
    pub x: f64,
    pub y: f64,
}

/// A scatter of mean accuracy against throughput, x on a log10 scale.
pub fn scatter_log_x(title: &str, x_label: &str, y_label: &str, points: &[Point]) -> String {
    let (width, height) = (820.0, 520.0);
    let (left, right, top, bottom) = (70.0, 170.0, 40.0, 55.0);
    let xs: Vec<f64> = points
        .iter()
        .filter(|p| p.x > 0.0 && p.x.is_finite())
        .map(|p| p.x.log10())
        .collect();
    let ys: Vec<f64> = points
        .iter()
        .filter(|p| p.y.is_finite())
        .map(|p| p.y)
        .collect();
    let lo_x = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi_x = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo_x, hi_x) = if lo_x.is_finite() {
        (lo_x.floor(), hi_x.ceil().max(lo_x.floor() + 1.0))
    } else {
        (0.0, 1.0)
    };
    let lo_y = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let hi_y = ys.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo_y, hi_y) = if lo_y.is_finite() {
        let pad = ((hi_y - lo_y) * 0.08).max(0.005);
        (lo_y - pad, hi_y + pad)
    } else {
        (0.0, 1.0)
    };
    let pw = width - left - right;
    let ph = height - top - bottom;
    let px = |lx: f64| left + (lx - lo_x) / (hi_x - lo_x) * pw;
    let py = |y: f64| top + ph - (y - lo_y) / (hi_y - lo_y) * ph;

    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         viewBox=\"0 0 {width:.0} {height:.0}\" {FONT} font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{:.1}\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">{}</text>\n",
        left + pw / 2.0,
        esc(title)
    );
    // Frame.
    let _ = writeln!(
        s,
        "<rect x=\"{left}\" y=\"{top}\" width=\"{pw}\" height=\"{ph}\" fill=\"none\" stroke=\"black\"/>"
    );
    // Decades on x, with minor ticks at 2..9.
    let mut d = lo_x as i32;
    while d as f64 <= hi_x {
        let x = px(d as f64);
        let _ = writeln!(
            s,
            "<line x1=\"{x:.1}\" y1=\"{top}\" x2=\"{x:.1}\" y2=\"{:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            top + ph,
            top + ph + 16.0,
            decade_label(d)
        );
        if (d as f64) < hi_x {
            for m in 2..10 {
                let xm = px(d as f64 + (m as f64).log10());
                let _ = writeln!(
                    s,
                    "<line x1=\"{xm:.1}\" y1=\"{:.1}\" x2=\"{xm:.1}\" y2=\"{:.1}\" stroke=\"black\"/>",
                    top + ph - 4.0,
                    top + ph
                );
            }
        }
        d += 1;
    }
    // Five y ticks.
    for t in 0..=5 {
        let y = lo_y + (hi_y - lo_y) * t as f64 / 5.0;
        let yy = py(y);
        let _ = writeln!(
            s,
            "<line x1=\"{left}\" y1=\"{yy:.1}\" x2=\"{:.1}\" y2=\"{yy:.1}\" stroke=\"#eee\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{y:.3}</text>",
            left + pw,
            left - 6.0,
            yy + 4.0
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\
         <text transform=\"translate(18,{:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        left + pw / 2.0,
        height - 14.0,
        esc(x_label),
        top + ph / 2.0,
        esc(y_label)
    );
    for (i, p) in points.iter().enumerate() {
        if !(p.x > 0.0 && p.x.is_finite() && p.y.is_finite()) {
            continue;
        }
        let (x, y) = (px(p.x.log10()), py(p.y));
        let _ = writeln!(
            s,
            "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"5\" fill=\"{}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
            color(i),
            x + 7.0,
            y - 5.0,
            esc(&p.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

fn decade_label(d: i32) -> String {
    match d {
        0 => "1".into(),
        1 => "10".into(),
        2 => "100".into(),
        3 => "1k".into(),
        4 => "10k".into(),
        5 => "100k".into(),
        6 => "1M".into(),
        7 => "10M".into(),
        _ => format!("1e{d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cd_diagram_names_every_model_and_escapes() {
        let names = vec!["a<b".to_string(), "ht".to_string(), "nb".to_string()];
        let svg = cd_diagram("accuracy", &names, &[1.2, 2.0, 2.8], 1.0);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("a&lt;b (1.20)"));
        assert!(svg.contains("ht (2.00)") && svg.contains("nb (2.80)"));
        assert!(svg.contains("CD = 1.00"));
        // Two overlapping groups: (a<b, ht) and (ht, nb).
        assert_eq!(svg.matches("stroke-width=\"4\"").count(), 2);
    }

    #[test]
    fn scatter_draws_each_point() {
        let pts = vec![
            Point {
                label: "nb".into(),
                x: 1.5e6,
                y: 0.8,
            },
            Point {
                label: "arf".into(),
                x: 2.0e4,
                y: 0.9,
            },
        ];
        let svg = scatter_log_x("t", "samples/s", "accuracy", &pts);
        assert_eq!(svg.matches("<circle").count(), 2);
        assert!(svg.contains(">10k<") && svg.contains(">1M<"));
    }
}
