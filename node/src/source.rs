//! Stream sources: a reader thread over `shoal_learn::stream::open` (CSV,
//! CSV.gz, ARFF, generator specs) that feeds the learner through a bounded
//! channel.
//!
//! Reading is blocking file I/O and decompression, so it runs on its own OS
//! thread rather than on the async runtime. The learner paces consumption
//! (`--rate`); the bounded channel applies back-pressure to the reader.
//!
//! Positions are counted in *samples* (records that parsed), so a restart
//! re-opens the source and skips exactly the samples the last snapshot
//! covers. Generators are seeded, so skipping replays the same sequence.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shoal_learn::stream::{open, Stream, StreamError};
use shoal_learn::Schema;
use tokio::sync::mpsc;

/// Samples buffered between the reader thread and the learner.
const CHANNEL: usize = 1024;
/// How often a followed file is checked for growth.
const FOLLOW_POLL: Duration = Duration::from_secs(1);

/// One sample from a source, with its label as text so the learner can map
/// it into its own (persisted) class list.
#[derive(Debug, Clone)]
pub struct SourceSample {
    pub x: Vec<f64>,
    pub label: String,
}

/// The learner's end of a running source.
pub struct SourceHandle {
    /// Samples in source order.
    pub rx: mpsc::Receiver<SourceSample>,
    /// The source's schema when opened (features and known classes).
    pub schema: Schema,
    /// Set once the source has no more samples (and is not followed).
    pub exhausted: Arc<AtomicBool>,
}

/// Opens `source`, skips `skip` samples and starts the reader thread.
pub fn start(source: &str, skip: u64, follow: bool) -> Result<SourceHandle, StreamError> {
    let stream = open(source)?;
    let schema = stream.schema().clone();
    let (tx, rx) = mpsc::channel(CHANNEL);
    let exhausted = Arc::new(AtomicBool::new(false));
    let done = exhausted.clone();
    let name = source.to_string();
    std::thread::Builder::new()
        .name("shoal-source".into())
        .spawn(move || {
            let reader = Reader {
                source: name,
                follow,
                tx,
            };
            reader.run(stream, skip);
            done.store(true, Ordering::Release);
        })
        .map_err(|source| StreamError::Io {
            path: "<thread>".into(),
            source,
        })?;
    Ok(SourceHandle {
        rx,
        schema,
        exhausted,
    })
}

struct Reader {
    source: String,
    follow: bool,
    tx: mpsc::Sender<SourceSample>,
}

enum Outcome {
    /// The source ended after this many samples in total.
    End(u64),
    /// The learner went away (shutdown) or the source failed for good.
    Stop,
}

impl Reader {
    fn run(&self, stream: Box<dyn Stream + Send>, skip: u64) {
        let mut position = match self.read(stream, skip) {
            Outcome::End(n) => n,
            Outcome::Stop => return,
        };
        tracing::info!(source = %self.source, samples = position, "source exhausted");
        if !self.follow {
            return;
        }
        let mut last_len = file_len(&self.source);
        loop {
            std::thread::sleep(FOLLOW_POLL);
            if self.tx.is_closed() {
                return;
            }
            let len = file_len(&self.source);
            if len == last_len {
                continue;
            }
            last_len = len;
            // Re-open and skip what was read: simple, and correct for
            // compressed files too, at the cost of re-reading the prefix.
            let stream = match open(&self.source) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(source = %self.source, error = %e, "re-opening followed source");
                    continue;
                }
            };
            position = match self.read(stream, position) {
                Outcome::End(n) => n,
                Outcome::Stop => return,
            };
        }
    }

    /// Skips `skip` samples, then sends the rest; returns the total count.
    fn read(&self, mut stream: Box<dyn Stream + Send>, skip: u64) -> Outcome {
        let mut n: u64 = 0;
        let mut errors: u64 = 0;
        loop {
            match stream.next_sample() {
                Ok(Some(s)) => {
                    n += 1;
                    if n <= skip {
                        continue;
                    }
                    let label = stream
                        .schema()
                        .classes
                        .get(s.y)
                        .cloned()
                        .unwrap_or_else(|| s.y.to_string());
                    if self
                        .tx
                        .blocking_send(SourceSample { x: s.x, label })
                        .is_err()
                    {
                        return Outcome::Stop;
                    }
                }
                Ok(None) => return Outcome::End(n),
                Err(e) if e.is_recoverable() => {
                    errors += 1;
                    // Log the first few bad records, then every 1000th.
                    if errors <= 5 || errors.is_multiple_of(1000) {
                        tracing::warn!(source = %self.source, error = %e, errors, "skipping bad record");
                    }
                }
                Err(e) => {
                    tracing::error!(source = %self.source, error = %e, "source failed");
                    return Outcome::Stop;
                }
            }
        }
    }
}

fn file_len(path: &str) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}
