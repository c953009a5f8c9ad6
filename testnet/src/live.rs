//! The live view on stderr: a table redrawn in place on a terminal, or a
//! line per node every few seconds when stderr is a file or a pipe (CI
//! logs stay readable). stdout is left alone for the summary.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::local::{NodeState, Testnet};
use crate::scenario::Scenario;
use crate::util::human_secs;

/// How the live view is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LiveMode {
    /// Table on a terminal, lines otherwise.
    #[default]
    Auto,
    Table,
    Lines,
    Off,
}

/// Draws the live view.
pub struct Live {
    mode: LiveMode,
    color: bool,
    /// Lines drawn last time, to move the cursor back over them.
    drawn: usize,
    last_lines: Option<Instant>,
    events_shown: usize,
}

const LINES_EVERY: Duration = Duration::from_secs(5);
/// Events shown under the table.
const RECENT_EVENTS: usize = 6;

impl Live {
    pub fn new(mode: LiveMode) -> Self {
        let tty = std::io::stderr().is_terminal();
        let mode = match mode {
            LiveMode::Auto if tty => LiveMode::Table,
            LiveMode::Auto => LiveMode::Lines,
            m => m,
        };
        Live {
            mode,
            color: tty && std::env::var_os("NO_COLOR").is_none(),
            drawn: 0,
            last_lines: None,
            events_shown: 0,
        }
    }

    /// A progress note before the table starts.
    pub fn note(&mut self, text: &str) {
        if self.mode != LiveMode::Off {
            eprintln!("{text}");
        }
    }

    /// Redraw (table) or print (lines) the current state.
    pub fn render(&mut self, net: &Testnet, scenario: &dyn Scenario) {
        match self.mode {
            LiveMode::Table => self.table(net, scenario),
            LiveMode::Lines => self.lines(net, scenario, false),
            LiveMode::Off | LiveMode::Auto => {}
        }
    }

    /// Last draw at the end of the run.
    pub fn finish(&mut self, net: &Testnet, scenario: &dyn Scenario) {
        match self.mode {
            LiveMode::Table => self.table(net, scenario),
            LiveMode::Lines => self.lines(net, scenario, true),
            LiveMode::Off | LiveMode::Auto => {}
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    fn table(&mut self, net: &Testnet, scenario: &dyn Scenario) {
        let mut out = Vec::new();
        let n = net.members.len();
        out.push(format!(
            "{}  {} · {n} nodes · {} / {} · {}",
            self.paint("1", "shoal testnet"),
            net.opts.scenario.name(),
            human_secs(net.now().min(net.opts.duration_s)),
            human_secs(net.opts.duration_s),
            shown_path(&net.opts.out)
        ));
        out.push(format!("  {}", scenario.status_line(net)));
        out.push(String::new());
        out.push(self.paint(
            "2",
            &format!(
                "  {:<6} {:<14} {:<9} {:>5} {:>9} {:>7} {:>8} {:>7} {:>6}  {}",
                "node",
                "peer id",
                "state",
                "peers",
                "samples",
                "rate/s",
                "accuracy",
                "model v",
                "merges",
                "tasks"
            ),
        ));
        for m in &net.members {
            let state = match m.state {
                NodeState::Up => self.paint("32", &format!("{:<9}", m.state.label())),
                NodeState::Starting | NodeState::Unreachable => {
                    self.paint("33", &format!("{:<9}", m.state.label()))
                }
                NodeState::Down | NodeState::Crashed => {
                    self.paint("31", &format!("{:<9}", m.state.label()))
                }
            };
            let id = m
                .peer_id
                .as_deref()
                .map(short_id)
                .unwrap_or_else(|| "?".into());
            match &m.last {
                Some(s) => out.push(format!(
                    "  {:<6} {:<14} {state} {:>5} {:>9} {:>7.0} {:>8} {:>7} {:>6}  {}",
                    m.spec.name,
                    id,
                    format!("{}/{}", s.peers, n.saturating_sub(1)),
                    thousands(s.samples_seen),
                    m.rate,
                    s.accuracy
                        .map(|a| format!("{:.1}%", a * 100.0))
                        .unwrap_or_else(|| "-".into()),
                    s.model_version,
                    s.merges,
                    s.tasks_brief()
                )),
                None => out.push(format!("  {:<6} {:<14} {state}", m.spec.name, id)),
            }
        }
        out.push(String::new());
        let recent: Vec<_> = net
            .events
            .iter()
            .rev()
            .take(RECENT_EVENTS)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        out.push(self.paint("2", "  recent events"));
        for e in recent {
            let first = e.text.lines().next().unwrap_or_default();
            out.push(format!("  {:>6}  {first}", human_secs(e.t)));
        }
        out.push(self.paint("2", "  Ctrl-C stops every node and writes the report"));

        let mut err = std::io::stderr().lock();
        let mut buf = String::new();
        if self.drawn > 0 {
            // Back to the top of the previous drawing, clear to the end.
            buf.push_str(&format!("\x1b[{}F\x1b[J", self.drawn));
        }
        for line in &out {
            buf.push_str(line);
            buf.push_str("\x1b[K\n");
        }
        let _ = err.write_all(buf.as_bytes());
        let _ = err.flush();
        self.drawn = out.len();
    }

    fn lines(&mut self, net: &Testnet, scenario: &dyn Scenario, last: bool) {
        let mut err = std::io::stderr().lock();
        // Events as they happen, in full.
        for e in net.events.iter().skip(self.events_shown) {
            let _ = writeln!(err, "[{:>6}] event: {}", human_secs(e.t), e.text);
        }
        self.events_shown = net.events.len();
        if !last && self.last_lines.is_some_and(|t| t.elapsed() < LINES_EVERY) {
            return;
        }
        self.last_lines = Some(Instant::now());
        let _ = writeln!(
            err,
            "[{:>6}] {}",
            human_secs(net.now()),
            scenario.status_line(net)
        );
        for m in &net.members {
            let line = match &m.last {
                Some(s) => format!(
                    "[{:>6}] {} {} {} peers={} samples={} rate={:.0}/s accuracy={} model_v={} merges={} tasks={}",
                    human_secs(net.now()),
                    m.spec.name,
                    m.state.label(),
                    m.peer_id.as_deref().map(short_id).unwrap_or_default(),
                    s.peers,
                    s.samples_seen,
                    m.rate,
                    s.accuracy.map(|a| format!("{a:.4}")).unwrap_or_else(|| "-".into()),
                    s.model_version,
                    s.merges,
                    s.tasks_brief()
                ),
                None => format!(
                    "[{:>6}] {} {}",
                    human_secs(net.now()),
                    m.spec.name,
                    m.state.label()
                ),
            };
            let _ = writeln!(err, "{line}");
        }
    }
}

/// `path` relative to the current directory when it is below it (shorter
/// in the header), as is otherwise.
pub fn shown_path(path: &std::path::Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|d| path.strip_prefix(d).ok().map(|p| p.display().to_string()))
        .unwrap_or_else(|| path.display().to_string())
}

/// `12D3KooW…abcdef`: enough to tell peers apart in a table.
pub fn short_id(id: &str) -> String {
    let chars: Vec<char> = id.chars().collect();
    if chars.len() <= 14 {
        return id.to_string();
    }
    let tail: String = chars[chars.len() - 6..].iter().collect();
    format!("…{tail}")
}

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_ids_are_short_and_readable() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1234), "1,234");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(short_id("12D3KooWAbCdEfGhIjKlMn"), "…IjKlMn");
        assert_eq!(short_id("short"), "short");
    }
}
