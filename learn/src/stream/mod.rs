//! Streams of labelled samples: file readers (CSV, CSV.gz, ARFF) and seeded
//! synthetic generators, all behind one trait.
//!
//! [`open`] takes either a file path or a generator spec:
//!
//! ```no_run
//! use shoal_learn::stream::{open, Stream};
//!
//! let mut s = open("sea:variant=1,noise=0.1,seed=7,n=1000").expect("valid spec");
//! while let Some(sample) = s.next_sample().expect("generators do not fail") {
//!     let _ = (sample.x, sample.y);
//! }
//! let _file = open("../shared/datasets/electricity.csv.gz");
//! ```
//!
//! A source names a file when it exists or ends in `.csv`, `.csv.gz`,
//! `.arff` or `.arff.gz`; anything else is parsed as a generator spec (see
//! [`generators::GENERATORS`] for the list).

pub mod ahead;
pub mod arff;
pub mod csv;
pub mod generators;

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use crate::schema::{Sample, Schema};

/// An error reading a stream, naming where and what.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {problem}")]
    Parse {
        path: String,
        line: u64,
        problem: String,
    },
    #[error(transparent)]
    Spec(#[from] crate::spec::SpecError),
}

impl StreamError {
    /// True for a bad record that was skipped: the stream can go on.
    /// I/O and spec errors are fatal.
    pub fn is_recoverable(&self) -> bool {
        matches!(self, StreamError::Parse { .. })
    }
}

/// A source of labelled samples. The schema may grow while reading (new
/// classes, new nominal values); read it again after each sample if needed.
pub trait Stream {
    /// What the samples look like so far.
    fn schema(&self) -> &Schema;

    /// The next sample, `Ok(None)` at the end, `Err` for a bad record (the
    /// stream may be continued after an error; the bad record is skipped).
    fn next_sample(&mut self) -> Result<Option<Sample>, StreamError>;

    /// [`next_sample`](Stream::next_sample) into a reused buffer: the
    /// features go to `x` (replacing its contents), the class is returned.
    /// Readers override it to avoid one allocation per sample.
    fn next_sample_into(&mut self, x: &mut Vec<f64>) -> Result<Option<usize>, StreamError> {
        Ok(self.next_sample()?.map(|s| {
            *x = s.x;
            s.y
        }))
    }
}

impl<S: Stream + ?Sized> Stream for Box<S> {
    fn schema(&self) -> &Schema {
        (**self).schema()
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, StreamError> {
        (**self).next_sample()
    }

    fn next_sample_into(&mut self, x: &mut Vec<f64>) -> Result<Option<usize>, StreamError> {
        (**self).next_sample_into(x)
    }
}

/// How to read a file source. Generators ignore these.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Name of the class column; `None` means the last column (CSV) or the
    /// last attribute (ARFF).
    pub target: Option<String>,
    /// CSV columns to treat as nominal even when their values look numeric.
    pub nominal: Vec<String>,
}

/// Open a file (`.csv`, `.csv.gz`, `.arff`, `.arff.gz`) or a generator spec
/// such as `sea:variant=1,noise=0.1,seed=7,n=100000`.
pub fn open(source: &str) -> Result<Box<dyn Stream + Send>, StreamError> {
    open_with(source, &OpenOptions::default())
}

/// [`open`] with reader options (class column, nominal columns).
pub fn open_with(
    source: &str,
    options: &OpenOptions,
) -> Result<Box<dyn Stream + Send>, StreamError> {
    if looks_like_file(source) {
        let lower = source.to_ascii_lowercase();
        if lower.ends_with(".arff") || lower.ends_with(".arff.gz") {
            Ok(Box::new(arff::ArffStream::open(source, options)?))
        } else {
            Ok(Box::new(csv::CsvStream::open(source, options)?))
        }
    } else {
        generators::from_spec_str(source)
    }
}

/// A source is a file when it exists, has a data file's extension, or
/// contains a path separator; otherwise it is a generator spec.
fn looks_like_file(source: &str) -> bool {
    let lower = source.to_ascii_lowercase();
    Path::new(source).is_file()
        || [".csv", ".csv.gz", ".arff", ".arff.gz", ".gz"]
            .iter()
            .any(|ext| lower.ends_with(ext))
        || (!source.contains(':') && source.contains('/'))
}

/// A buffered reader over a file, transparently gunzipped when the name ends
/// in `.gz`.
pub(crate) fn open_reader(path: &str) -> Result<Box<dyn BufRead + Send>, StreamError> {
    let file = File::open(path).map_err(|source| StreamError::Io {
        path: path.to_string(),
        source,
    })?;
    if path.to_ascii_lowercase().ends_with(".gz") {
        let gz = flate2::read::MultiGzDecoder::new(BufReader::with_capacity(1 << 16, file));
        return Ok(Box::new(InflateAhead::spawn(gz)));
    }
    Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
}

/// Size of the chunks [`InflateAhead`] hands over.
const INFLATE_CHUNK: usize = 1 << 17;
/// Chunks inflated ahead of the reader, at most (bounds the memory to
/// `INFLATE_AHEAD * INFLATE_CHUNK` bytes).
const INFLATE_AHEAD: usize = 4;

/// Inflates a gzip stream on its own thread, a few chunks ahead of the
/// reader, so that decompression overlaps parsing and learning. Reading a
/// compressed file is otherwise mostly inflation. Dropping the reader stops
/// the thread (its next send fails).
struct InflateAhead {
    rx: std::sync::mpsc::Receiver<std::io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    pos: usize,
    done: bool,
}

impl InflateAhead {
    fn spawn<R: Read + Send + 'static>(mut inner: R) -> InflateAhead {
        let (tx, rx) = std::sync::mpsc::sync_channel(INFLATE_AHEAD);
        let spawned = std::thread::Builder::new()
            .name("inflate".into())
            .spawn(move || loop {
                let mut buf = vec![0u8; INFLATE_CHUNK];
                let mut filled = 0;
                // Fill the whole chunk (or reach the end) before handing it
                // over: small reads would cost a channel hop each.
                let res = loop {
                    match inner.read(&mut buf[filled..]) {
                        Ok(0) => break Ok(()),
                        Ok(n) => {
                            filled += n;
                            if filled == buf.len() {
                                break Ok(());
                            }
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => break Err(e),
                    }
                };
                buf.truncate(filled);
                let last = filled == 0 || res.is_err();
                let msg = match res {
                    Ok(()) => Ok(buf),
                    Err(e) if filled > 0 => {
                        // Hand over what was read; the error comes next.
                        if tx.send(Ok(buf)).is_err() {
                            return;
                        }
                        Err(e)
                    }
                    Err(e) => Err(e),
                };
                if tx.send(msg).is_err() || last {
                    return;
                }
            });
        let rx = match spawned {
            Ok(_) => rx,
            Err(e) => {
                // No thread: report the failure on the first read.
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let _ = tx.send(Err(e));
                rx
            }
        };
        InflateAhead {
            rx,
            chunk: Vec::new(),
            pos: 0,
            done: false,
        }
    }
}

impl Read for InflateAhead {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for InflateAhead {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        while self.pos >= self.chunk.len() && !self.done {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    if chunk.is_empty() {
                        self.done = true;
                    }
                    self.chunk = chunk;
                    self.pos = 0;
                }
                Ok(Err(e)) => {
                    self.done = true;
                    return Err(e);
                }
                // The thread ended without an empty chunk: it already sent
                // an error or the end.
                Err(_) => self.done = true,
            }
        }
        if self.pos >= self.chunk.len() {
            return Ok(&[]);
        }
        Ok(&self.chunk[self.pos..])
    }

    fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.chunk.len());
    }
}

/// Is this field a missing value (`""`, `?`, `NA`, `NaN`)?
pub(crate) fn is_missing(field: &str) -> bool {
    matches!(field, "" | "?" | "NA" | "na" | "NaN" | "nan" | "N/A")
}

/// Stops a stream after `limit` samples.
pub struct Take<S> {
    inner: S,
    left: u64,
}

impl<S: Stream> Take<S> {
    pub fn new(inner: S, limit: u64) -> Self {
        Take { inner, left: limit }
    }
}

impl<S: Stream> Stream for Take<S> {
    fn schema(&self) -> &Schema {
        self.inner.schema()
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, StreamError> {
        if self.left == 0 {
            return Ok(None);
        }
        let s = self.inner.next_sample()?;
        if s.is_some() {
            self.left -= 1;
        }
        Ok(s)
    }

    fn next_sample_into(&mut self, x: &mut Vec<f64>) -> Result<Option<usize>, StreamError> {
        if self.left == 0 {
            return Ok(None);
        }
        let y = self.inner.next_sample_into(x)?;
        if y.is_some() {
            self.left -= 1;
        }
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn inflate_ahead_hands_over_every_byte_in_order() {
        use std::io::Write;
        let data: Vec<u8> = (0..600_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&data).unwrap();
        let gz = enc.finish().unwrap();
        let mut r = InflateAhead::spawn(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(
            gz.clone(),
        )));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        // A truncated file is an error, not a silent short read.
        let cut = gz[..gz.len() / 2].to_vec();
        let mut r =
            InflateAhead::spawn(flate2::read::MultiGzDecoder::new(std::io::Cursor::new(cut)));
        let mut out = Vec::new();
        assert!(r.read_to_end(&mut out).is_err());
    }

    #[test]
    fn sources_are_told_apart() {
        assert!(looks_like_file("data/x.csv"));
        assert!(looks_like_file("x.arff.gz"));
        assert!(!looks_like_file("sea:variant=1"));
        assert!(!looks_like_file("agrawal"));
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = open("no/such/file.csv").err().expect("must fail");
        assert!(err.to_string().contains("no/such/file.csv"), "{err}");
    }

    #[test]
    fn gzipped_csv_and_arff_are_read_by_extension() {
        use std::io::Write;
        let dir = std::env::temp_dir().join(format!("shoal-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let gz = dir.join("t.csv.gz");
        let mut enc = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).expect("create"),
            flate2::Compression::fast(),
        );
        enc.write_all(b"a,b,class\n1,2,x\n3,4,y\n").expect("write");
        enc.finish().expect("finish");
        let arff = dir.join("t.arff");
        std::fs::write(
            &arff,
            "@relation r\n@attribute a real\n@attribute c {p,q}\n@data\n1,q\n",
        )
        .expect("write");
        let mut s = open(gz.to_str().expect("utf-8")).expect("opens");
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!((r.x, r.y), (vec![1.0, 2.0], 0));
        assert_eq!(s.schema().classes, vec!["x"]);
        let mut s = open(arff.to_str().expect("utf-8")).expect("opens");
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!((r.x, r.y), (vec![1.0], 1));
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn take_stops_early() {
        let s = open("sea:n=100").expect("valid");
        let mut t = Take::new(s, 10);
        let mut n = 0;
        while t.next_sample().expect("no error").is_some() {
            n += 1;
        }
        assert_eq!(n, 10);
    }
}
