//! Hand-written SVG line charts for the report: one line per node, dashed
//! vertical markers for scenario events. No plotting dependency: a chart is
//! a few polylines, axes and labels, and opens in any browser.

use std::fmt::Write as _;

/// One line of a chart. Points are `(x, y)`; `None` breaks the line (the
/// node was down).
pub struct Line {
    pub label: String,
    pub points: Vec<Option<(f64, f64)>>,
}

/// A vertical marker at `x` with a short label.
pub struct Marker {
    pub x: f64,
    pub label: String,
}

/// What to draw.
pub struct Chart<'a> {
    pub title: &'a str,
    pub x_label: &'a str,
    pub y_label: &'a str,
    pub lines: &'a [Line],
    pub markers: &'a [Marker],
    /// Fixed y range, or `None` to fit the data (from 0).
    pub y_range: Option<(f64, f64)>,
    /// Format y tick labels.
    pub y_fmt: fn(f64) -> String,
    /// Ticks on whole numbers only (counts).
    pub integer_y: bool,
}

const W: f64 = 820.0;
const H: f64 = 380.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 130.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// Colour-blind-friendly palette (Okabe & Ito 2008), then greys.
const PALETTE: &[&str] = &[
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

fn color(i: usize) -> &'static str {
    PALETTE.get(i).copied().unwrap_or("#888888")
}

/// Escape text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 times a power of ten) for `span / n`.
fn nice_step(span: f64, n: f64) -> f64 {
    if !(span.is_finite() && span > 0.0) {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

/// Render a chart to an SVG document.
pub fn render(c: &Chart) -> String {
    let all = c.lines.iter().flat_map(|l| l.points.iter().flatten());
    let (mut x_max, mut y_max) = (1.0f64, 0.0f64);
    for &(x, y) in all {
        if x.is_finite() {
            x_max = x_max.max(x);
        }
        if y.is_finite() {
            y_max = y_max.max(y);
        }
    }
    let (y_lo, y_hi) = c
        .y_range
        .unwrap_or((0.0, if y_max > 0.0 { y_max * 1.05 } else { 1.0 }));
    let x_hi = x_max;
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let sx = |x: f64| LEFT + (x / x_hi).clamp(0.0, 1.0) * pw;
    let sy = |y: f64| TOP + ph - ((y - y_lo) / (y_hi - y_lo)).clamp(0.0, 1.0) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r##"<rect width="100%" height="100%" fill="#ffffff"/>"##);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="15" font-weight="bold">{}</text>"#,
        esc(c.title)
    );

    // Grid and ticks.
    let mut ystep = nice_step(y_hi - y_lo, 5.0);
    if c.integer_y {
        ystep = ystep.max(1.0).round();
    }
    let mut y = (y_lo / ystep).ceil() * ystep;
    while y <= y_hi + ystep * 1e-9 {
        let py = sy(y);
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e5e5e5"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{}</text>"##,
            LEFT + pw,
            LEFT - 6.0,
            py + 4.0,
            esc(&(c.y_fmt)(y))
        );
        y += ystep;
    }
    let xstep = nice_step(x_hi, 8.0);
    let mut x = 0.0;
    while x <= x_hi + xstep * 1e-9 {
        let px = sx(x);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#f0f0f0"/><text x="{px:.1}" y="{:.1}" text-anchor="middle" fill="#555">{}</text>"##,
            TOP + ph,
            TOP + ph + 16.0,
            x
        );
        x += xstep;
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#999"/>"##
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">{}</text>"##,
        LEFT + pw / 2.0,
        H - 12.0,
        esc(c.x_label)
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(16 {:.1}) rotate(-90)" text-anchor="middle" fill="#333">{}</text>"##,
        TOP + ph / 2.0,
        esc(c.y_label)
    );

    // Event markers.
    for m in c.markers {
        let px = sx(m.x);
        let _ = writeln!(
            s,
            r##"<line x1="{px:.1}" y1="{TOP}" x2="{px:.1}" y2="{:.1}" stroke="#b00" stroke-dasharray="4 3" stroke-width="1"/><text x="{:.1}" y="{:.1}" fill="#b00" font-size="10" text-anchor="end" transform="rotate(-90 {:.1} {:.1})">{}</text>"##,
            TOP + ph,
            px - 3.0,
            TOP + 6.0,
            px - 3.0,
            TOP + 6.0,
            esc(&m.label)
        );
    }

    // Lines, broken where the node was down.
    for (i, line) in c.lines.iter().enumerate() {
        let col = color(i);
        for run in line.points.split(Option::is_none) {
            let pts: Vec<String> = run
                .iter()
                .flatten()
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
                .collect();
            if pts.len() == 1 {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{}" r="2" fill="{col}"/>"#,
                    pts[0].replacen(',', r#"" cy=""#, 1)
                );
            } else if pts.len() > 1 {
                let _ = writeln!(
                    s,
                    r#"<polyline fill="none" stroke="{col}" stroke-width="1.8" points="{}"/>"#,
                    pts.join(" ")
                );
            }
        }
        let ly = TOP + 10.0 + i as f64 * 18.0;
        let lx = LEFT + pw + 14.0;
        let _ = writeln!(
            s,
            r#"<line x1="{lx}" y1="{ly}" x2="{:.1}" y2="{ly}" stroke="{col}" stroke-width="3"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            lx + 18.0,
            lx + 24.0,
            ly + 4.0,
            esc(&line.label)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_lines_gaps_markers_and_escapes_text() {
        let lines = vec![
            Line {
                label: "node0 <a&b>".into(),
                points: vec![
                    Some((0.0, 0.5)),
                    Some((1.0, 0.6)),
                    None,
                    Some((3.0, 0.7)),
                    Some((4.0, 0.8)),
                ],
            },
            Line {
                label: "node1".into(),
                points: vec![],
            },
        ];
        let markers = vec![Marker {
            x: 2.0,
            label: "kill node0".into(),
        }];
        let svg = render(&Chart {
            title: "accuracy",
            x_label: "seconds",
            y_label: "accuracy",
            lines: &lines,
            markers: &markers,
            y_range: Some((0.0, 1.0)),
            y_fmt: |y| format!("{:.0}%", y * 100.0),
            integer_y: false,
        });
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(
            svg.matches("<polyline").count(),
            2,
            "the gap splits the line"
        );
        assert!(svg.contains("kill node0"));
        assert!(svg.contains("node0 &lt;a&amp;b&gt;"));
        assert!(svg.contains("100%"));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(1.0, 5.0), 0.2);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }
}
