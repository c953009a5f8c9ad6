//! [`ReadAhead`]: run a stream on its own thread, a few batches ahead.
//!
//! Reading a CSV file is mostly inflating and parsing text; the fast models
//! learn in a fraction of that time. On a machine with a second core, the
//! reader can parse the next samples while the model learns the current
//! ones. The schema the reader grows (new classes, new nominal values)
//! travels with the batch that first needed it and applies from that
//! batch's first record: a consumer may learn of a class a few samples
//! before its first sample, never after.
//!
//! Meant for finite sources (files, generators): a batch is handed over
//! when full or at the end, so a slowly growing file would be read with a
//! delay.

use std::sync::mpsc::{sync_channel, Receiver};

use super::{Stream, StreamError};
use crate::schema::{Sample, Schema};

/// Samples per batch.
const BATCH: usize = 256;
/// Batches read ahead, at most (bounds memory to `AHEAD * BATCH` samples).
const AHEAD: usize = 4;

/// One record of a batch: the sample's features are `x[start..start+len]`.
enum Item {
    Sample { start: usize, len: usize, y: usize },
    Bad(StreamError),
}

struct Batch {
    x: Vec<f64>,
    items: Vec<Item>,
    /// The schema after this batch, when it changed.
    schema: Option<Schema>,
}

/// A [`Stream`] whose records are read by another thread. Dropping it stops
/// the thread at its next hand-over.
pub struct ReadAhead {
    rx: Receiver<Batch>,
    schema: Schema,
    /// The schema that applies once the current batch is consumed.
    next_schema: Option<Schema>,
    cur: Batch,
    pos: usize,
    done: bool,
}

impl ReadAhead {
    /// Start reading `inner` on a thread named `read-ahead`.
    pub fn spawn<S: Stream + Send + 'static>(inner: S) -> Result<ReadAhead, StreamError> {
        let schema = inner.schema().clone();
        let (tx, rx) = sync_channel::<Batch>(AHEAD);
        let mut inner = inner;
        let mut last = schema.clone();
        std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || {
                let mut x = Vec::new();
                loop {
                    let mut batch = Batch {
                        x: Vec::with_capacity(BATCH * last.features.len().max(1)),
                        items: Vec::with_capacity(BATCH),
                        schema: None,
                    };
                    let mut end = false;
                    while batch.items.len() < BATCH {
                        match inner.next_sample_into(&mut x) {
                            Ok(Some(y)) => {
                                let start = batch.x.len();
                                batch.x.extend_from_slice(&x);
                                batch.items.push(Item::Sample {
                                    start,
                                    len: x.len(),
                                    y,
                                });
                            }
                            Ok(None) => {
                                end = true;
                                break;
                            }
                            Err(e) => {
                                let fatal = !e.is_recoverable();
                                batch.items.push(Item::Bad(e));
                                if fatal {
                                    end = true;
                                    break;
                                }
                            }
                        }
                    }
                    if inner.schema() != &last {
                        last = inner.schema().clone();
                        batch.schema = Some(last.clone());
                    }
                    if tx.send(batch).is_err() || end {
                        return;
                    }
                }
            })
            .map_err(|source| StreamError::Io {
                path: "read-ahead thread".into(),
                source,
            })?;
        Ok(ReadAhead {
            rx,
            schema,
            next_schema: None,
            cur: Batch {
                x: Vec::new(),
                items: Vec::new(),
                schema: None,
            },
            pos: 0,
            done: false,
        })
    }

    /// The next record, `None` at the end.
    fn next_item(&mut self) -> Option<Item> {
        loop {
            if self.pos < self.cur.items.len() {
                let i = self.pos;
                self.pos += 1;
                // Swap out the record; the slot is never read again.
                let placeholder = Item::Sample {
                    start: 0,
                    len: 0,
                    y: 0,
                };
                let item = std::mem::replace(&mut self.cur.items[i], placeholder);
                // The schema of a batch is the one after its last record;
                // it applies from the batch's first record on.
                if let Some(s) = self.next_schema.take() {
                    self.schema = s;
                }
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.rx.recv() {
                Ok(mut batch) => {
                    self.next_schema = batch.schema.take();
                    self.cur = batch;
                    self.pos = 0;
                }
                Err(_) => self.done = true,
            }
        }
    }
}

impl Stream for ReadAhead {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, StreamError> {
        let mut x = Vec::new();
        Ok(self.next_sample_into(&mut x)?.map(|y| Sample { x, y }))
    }

    fn next_sample_into(&mut self, x: &mut Vec<f64>) -> Result<Option<usize>, StreamError> {
        match self.next_item() {
            None => Ok(None),
            Some(Item::Bad(e)) => Err(e),
            Some(Item::Sample { start, len, y }) => {
                x.clear();
                x.extend_from_slice(&self.cur.x[start..start + len]);
                Ok(Some(y))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::stream;

    #[test]
    fn reads_the_same_samples_and_schema_as_the_stream_itself() {
        let spec = "led:noise=0.1,seed=3,n=3000";
        let mut plain = stream::open(spec).unwrap();
        let mut ahead = ReadAhead::spawn(stream::open(spec).unwrap()).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut n = 0;
        loop {
            let ya = plain.next_sample_into(&mut a).unwrap();
            let yb = ahead.next_sample_into(&mut b).unwrap();
            assert_eq!(ya, yb);
            if ya.is_none() {
                break;
            }
            assert_eq!(a, b);
            n += 1;
        }
        assert_eq!(n, 3000);
        assert_eq!(plain.schema(), ahead.schema());
    }

    #[test]
    fn bad_rows_arrive_in_order_with_their_line() {
        let dir = std::env::temp_dir().join(format!("shoal-ahead-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("bad.csv");
        let mut text = String::from("a,b,class\n");
        for i in 0..1000 {
            if i == 700 {
                text.push_str("1,oops,x\n");
            } else {
                text.push_str(&format!(
                    "{i},{},{}\n",
                    i % 7,
                    if i < 900 { "x" } else { "y" }
                ));
            }
        }
        std::fs::write(&path, text).unwrap();
        let p = path.to_string_lossy().to_string();
        let mut ahead = ReadAhead::spawn(stream::open(&p).unwrap()).unwrap();
        let mut x = Vec::new();
        let (mut ok, mut bad) = (0, Vec::new());
        loop {
            match ahead.next_sample_into(&mut x) {
                Ok(Some(_)) => ok += 1,
                Ok(None) => break,
                Err(e) => bad.push((ok, e.to_string())),
            }
        }
        assert_eq!(ok, 999);
        assert_eq!(bad.len(), 1);
        assert_eq!(bad[0].0, 700, "the bad row comes after the 700 good ones");
        assert!(bad[0].1.contains(":702:"), "{}", bad[0].1);
        assert_eq!(ahead.schema().n_classes(), 2);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
