//! What each node of a testnet learns from.
//!
//! * Nothing given: the built-in SEA generator with a different seed per
//!   node, so nodes see the same concept through different samples, which
//!   is the situation federation is for.
//! * A generator spec: the same, with `seed` set per node.
//! * A CSV file (`.csv` or `.csv.gz`): split into disjoint per-node files
//!   under `OUT/data/`, row `i` going to node `i mod N`. Interleaving (not
//!   contiguous blocks) keeps every node on the whole time span of the
//!   stream, so a drift hits all nodes at the same moment, as it would for
//!   devices watching the same phenomenon.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

/// The default stream: SEA concepts (Street & Kim 2001), long enough for
/// any testnet run.
pub const DEFAULT_GENERATOR: &str = "sea:variant=0,noise=0.1,n=100000000";

/// Longest CSV line accepted when splitting.
const MAX_LINE: usize = 1 << 20;

/// Per-node sources and a sentence saying what they are.
#[derive(Debug, Clone)]
pub struct Sources {
    pub per_node: Vec<String>,
    pub description: String,
}

/// Decide each node's source. `rows_per_node` bounds how much of a CSV is
/// copied (a run at a fixed rate cannot use more).
pub fn plan(
    data: Option<&str>,
    nodes: usize,
    out: &Path,
    rows_per_node: Option<u64>,
) -> Result<Sources> {
    match data {
        None => Ok(Sources {
            per_node: (0..nodes)
                .map(|i| with_seed(DEFAULT_GENERATOR, i as u64 + 1))
                .collect(),
            description: format!("built-in generator `{DEFAULT_GENERATOR}`, seed = node index + 1"),
        }),
        Some(src) if is_file_source(src) => {
            let lower = src.to_ascii_lowercase();
            if !(lower.ends_with(".csv") || lower.ends_with(".csv.gz")) {
                bail!("--data {src}: only .csv and .csv.gz files can be split between nodes");
            }
            let dir = out.join("data");
            let files = split_csv(Path::new(src), nodes, &dir, rows_per_node)?;
            Ok(Sources {
                per_node: files.iter().map(|f| f.display().to_string()).collect(),
                description: format!(
                    "`{src}` split row by row into {nodes} disjoint slices (row i → node i mod {nodes}){}",
                    rows_per_node
                        .map(|r| format!(", at most {r} rows each"))
                        .unwrap_or_default()
                ),
            })
        }
        Some(spec) => Ok(Sources {
            per_node: (0..nodes).map(|i| with_seed(spec, i as u64 + 1)).collect(),
            description: format!("generator `{spec}`, seed = node index + 1"),
        }),
    }
}

/// A source is a file if it exists or looks like a path; otherwise it is a
/// generator spec (the same rule as `shoal_learn::stream::open`).
fn is_file_source(src: &str) -> bool {
    let lower = src.to_ascii_lowercase();
    Path::new(src).is_file()
        || [".csv", ".gz", ".arff"].iter().any(|e| lower.ends_with(e))
        || (!src.contains(':') && src.contains('/'))
}

/// `spec` with its top-level `seed` parameter set to `seed`.
pub fn with_seed(spec: &str, seed: u64) -> String {
    let Some((name, params)) = spec.split_once(':') else {
        return format!("{spec}:seed={seed}");
    };
    // Only top-level parameters: nested specs (drift's `stream=...`) use `|`
    // between their own parameters, so splitting on `,` is safe.
    let mut parts: Vec<String> = params
        .split(',')
        .filter(|p| !p.is_empty() && !p.starts_with("seed="))
        .map(str::to_string)
        .collect();
    parts.push(format!("seed={seed}"));
    format!("{name}:{}", parts.join(","))
}

/// Split a CSV into `nodes` gzipped files under `dir`, each with the header.
fn split_csv(
    src: &Path,
    nodes: usize,
    dir: &Path,
    rows_per_node: Option<u64>,
) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let file = File::open(src).with_context(|| format!("opening --data {}", src.display()))?;
    let raw: Box<dyn Read> = if src.to_string_lossy().to_ascii_lowercase().ends_with(".gz") {
        Box::new(MultiGzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(file)
    };
    let mut reader = BufReader::with_capacity(1 << 16, raw);

    let mut header = Vec::new();
    while header.iter().all(u8::is_ascii_whitespace) {
        header.clear();
        if read_line(&mut reader, &mut header, src)? == 0 {
            bail!("--data {}: the file is empty", src.display());
        }
    }

    let paths: Vec<PathBuf> = (0..nodes)
        .map(|i| dir.join(format!("node{i}.csv.gz")))
        .collect();
    let mut writers = Vec::with_capacity(nodes);
    for p in &paths {
        let f = File::create(p).with_context(|| format!("creating {}", p.display()))?;
        let mut w = GzEncoder::new(BufWriter::new(f), Compression::fast());
        w.write_all(&header)?;
        writers.push(w);
    }

    let limit = rows_per_node.map(|r| r.saturating_mul(nodes as u64));
    let mut line = Vec::new();
    let mut row = 0u64;
    loop {
        if limit.is_some_and(|l| row >= l) {
            break;
        }
        line.clear();
        if read_line(&mut reader, &mut line, src)? == 0 {
            break;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let w = &mut writers[(row % nodes as u64) as usize];
        w.write_all(&line)?;
        row += 1;
    }
    if row < nodes as u64 {
        bail!(
            "--data {}: {row} rows cannot be shared between {nodes} nodes",
            src.display()
        );
    }
    for (w, p) in writers.into_iter().zip(&paths) {
        w.finish()
            .and_then(|mut b| b.flush())
            .with_context(|| format!("writing {}", p.display()))?;
    }
    Ok(paths)
}

/// Read one line including its `\n` (one is added at end of file).
fn read_line(r: &mut impl BufRead, buf: &mut Vec<u8>, src: &Path) -> Result<usize> {
    let n = r
        .by_ref()
        .take(MAX_LINE as u64 + 1)
        .read_until(b'\n', buf)
        .with_context(|| format!("reading --data {}", src.display()))?;
    if buf.len() > MAX_LINE {
        bail!(
            "--data {}: a line is longer than {MAX_LINE} bytes",
            src.display()
        );
    }
    if n > 0 && buf.last() != Some(&b'\n') {
        buf.push(b'\n');
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_set_per_node() {
        assert_eq!(with_seed("sea", 3), "sea:seed=3");
        assert_eq!(with_seed("sea:seed=9,n=10", 2), "sea:n=10,seed=2");
        assert_eq!(
            with_seed("agrawal:function=2,seed=5", 1),
            "agrawal:function=2,seed=1"
        );
    }

    #[test]
    fn csv_is_split_into_disjoint_interleaved_slices() {
        let dir = std::env::temp_dir().join(format!("shoal-testnet-split-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("tmp dir");
        let src = dir.join("in.csv");
        let mut text = String::from("a,b,class\n");
        for i in 0..10 {
            text.push_str(&format!("{i},{i},c{}\n", i % 2));
        }
        std::fs::write(&src, text).expect("write csv");
        let sources = plan(Some(&src.display().to_string()), 3, &dir, None).expect("split");
        let mut seen = Vec::new();
        for (n, path) in sources.per_node.iter().enumerate() {
            let mut s = String::new();
            MultiGzDecoder::new(File::open(path).expect("slice"))
                .read_to_string(&mut s)
                .expect("gzip");
            let mut lines = s.lines();
            assert_eq!(
                lines.next(),
                Some("a,b,class"),
                "every slice has the header"
            );
            for l in lines {
                let i: usize = l
                    .split(',')
                    .next()
                    .and_then(|x| x.parse().ok())
                    .expect("row");
                assert_eq!(i % 3, n, "row {i} went to node {n}");
                seen.push(i);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..10).collect::<Vec<_>>(), "every row exactly once");
        let capped = plan(Some(&src.display().to_string()), 2, &dir, Some(2)).expect("split");
        assert_eq!(capped.per_node.len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
