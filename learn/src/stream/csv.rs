//! CSV and gzipped CSV reader.
//!
//! The first line is a header. The class column is named by
//! [`OpenOptions::target`](super::OpenOptions) or is the last column. A
//! column is nominal when it is declared so, or when most of its non-missing
//! values in the first [`DETECT_ROWS`] data rows do not parse as numbers;
//! nominal values are indexed in the order they appear. A value that is not
//! a number in a numeric column makes its row bad ([`StreamError::Parse`]
//! with the line number); the stream goes on with the next row. Empty, `?`, `NA` and `NaN`
//! fields are missing (NaN). Fields may be quoted (`"a, b"`, `""` for a
//! quote), but a quoted field may not span lines. The delimiter is `,`, or
//! `;` / tab when the header holds no comma.
//!
//! The file is read line by line; only the first [`DETECT_ROWS`] rows are
//! held at once, for type detection.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::BufRead;

use super::{is_missing, open_reader, OpenOptions, Stream, StreamError};
use crate::schema::{Feature, FeatureKind, Sample, Schema};

/// Rows read ahead to decide which columns are nominal.
pub const DETECT_ROWS: usize = 1000;

/// FNV-1a: nominal values and class labels are short strings looked up
/// once per field, where SipHash's set-up cost dominates. The maps are
/// bounded by the file's distinct values; a file crafted to collide only
/// slows its own reading down.
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}

type FastMap = HashMap<String, usize, BuildHasherDefault<Fnv>>;

/// A CSV file as a stream of samples.
pub struct CsvStream {
    path: String,
    reader: Box<dyn BufRead + Send>,
    delimiter: u8,
    schema: Schema,
    n_cols: usize,
    target_col: usize,
    /// Per column: index into `schema.features`, or `usize::MAX` for the class.
    feature_of_col: Vec<usize>,
    /// Per feature: value → index, for nominal features only.
    nominal_index: Vec<Option<FastMap>>,
    class_index: FastMap,
    /// Rows read during type detection, with their line numbers.
    ahead: VecDeque<(u64, String)>,
    line_no: u64,
    raw: Vec<u8>,
    scratch: String,
    bounds: Vec<(usize, usize)>,
    /// Column and byte range of the nominal fields and the class of the
    /// row [`CsvStream::fast_row`] is reading.
    named: Vec<(usize, usize, usize)>,
    /// Try [`CsvStream::fast_row`] first (always, but for the test that
    /// checks it against the general path).
    fast_path: bool,
}

impl CsvStream {
    /// Open `path` (gunzipped if it ends in `.gz`), read the header and
    /// detect column kinds.
    pub fn open(path: &str, options: &OpenOptions) -> Result<Self, StreamError> {
        let reader = open_reader(path)?;
        Self::from_reader(path, reader, options)
    }

    /// Read CSV from any buffered reader; `path` is only used in messages.
    pub fn from_reader(
        path: &str,
        reader: Box<dyn BufRead + Send>,
        options: &OpenOptions,
    ) -> Result<Self, StreamError> {
        let mut s = CsvStream {
            path: path.to_string(),
            reader,
            delimiter: b',',
            schema: Schema::default(),
            n_cols: 0,
            target_col: 0,
            feature_of_col: Vec::new(),
            nominal_index: Vec::new(),
            class_index: FastMap::default(),
            ahead: VecDeque::new(),
            line_no: 0,
            raw: Vec::new(),
            scratch: String::new(),
            bounds: Vec::new(),
            named: Vec::new(),
            fast_path: true,
        };
        let header = loop {
            match s.read_line()? {
                None => return Err(s.parse_err(1, "empty file: no header line".into())),
                Some(l) if l.trim().is_empty() => continue,
                // Spreadsheet exports often start with a byte-order mark.
                Some(l) => break l.trim_start_matches('\u{feff}').to_string(),
            }
        };
        if !header.contains(',') {
            if header.contains(';') {
                s.delimiter = b';';
            } else if header.contains('\t') {
                s.delimiter = b'\t';
            }
        }
        let header_line = s.line_no;
        split_line(&header, s.delimiter, &mut s.scratch, &mut s.bounds)
            .map_err(|p| s.parse_err(header_line, p))?;
        let names: Vec<String> = s
            .bounds
            .iter()
            .map(|&(a, b)| s.scratch[a..b].to_string())
            .collect();
        if names.len() < 2 {
            return Err(s.parse_err(
                header_line,
                format!(
                    "header has {} column(s); need at least one feature and a class",
                    names.len()
                ),
            ));
        }
        s.n_cols = names.len();
        s.target_col = match &options.target {
            None => names.len() - 1,
            Some(t) => names.iter().position(|n| n == t).ok_or_else(|| {
                s.parse_err(
                    header_line,
                    format!("no column named `{t}` (columns: {})", names.join(", ")),
                )
            })?,
        };
        for d in &options.nominal {
            if !names.contains(d) {
                return Err(s.parse_err(
                    header_line,
                    format!(
                        "nominal column `{d}` not in header (columns: {})",
                        names.join(", ")
                    ),
                ));
            }
        }

        // Read ahead to detect nominal columns.
        // Per column: non-missing values that parse as numbers, and that don't.
        let mut numbers = vec![0usize; names.len()];
        let mut words = vec![0usize; names.len()];
        while s.ahead.len() < DETECT_ROWS {
            let Some(line) = s.read_line()? else { break };
            if line.trim().is_empty() {
                continue;
            }
            // Malformed rows are kept and reported when they are reached.
            if split_line(&line, s.delimiter, &mut s.scratch, &mut s.bounds).is_ok()
                && s.bounds.len() == names.len()
            {
                for (c, &(a, b)) in s.bounds.iter().enumerate() {
                    let f = &s.scratch[a..b];
                    if !is_missing(f) {
                        if parse_f64(f).is_some() {
                            numbers[c] += 1;
                        } else {
                            words[c] += 1;
                        }
                    }
                }
            }
            s.ahead.push_back((s.line_no, line));
        }

        s.schema.target = names[s.target_col].clone();
        for (c, name) in names.iter().enumerate() {
            if c == s.target_col {
                s.feature_of_col.push(usize::MAX);
                continue;
            }
            s.feature_of_col.push(s.schema.features.len());
            // A column is nominal when most of its values are not numbers, so
            // that one typo in a numeric column is a bad row, not a new kind.
            if words[c] <= numbers[c] && !options.nominal.contains(name) {
                s.schema.features.push(Feature::numeric(name.clone()));
                s.nominal_index.push(None);
            } else {
                s.schema
                    .features
                    .push(Feature::nominal(name.clone(), Vec::new()));
                s.nominal_index.push(Some(FastMap::default()));
            }
        }
        Ok(s)
    }

    fn parse_err(&self, line: u64, problem: String) -> StreamError {
        StreamError::Parse {
            path: self.path.clone(),
            line,
            problem,
        }
    }

    /// Next physical line (without its line ending), or `None` at the end.
    fn read_line(&mut self) -> Result<Option<String>, StreamError> {
        if !self.read_raw()? {
            return Ok(None);
        }
        match std::str::from_utf8(&self.raw) {
            Ok(s) => Ok(Some(s.to_string())),
            Err(e) => Err(self.parse_err(self.line_no, format!("not valid UTF-8: {e}"))),
        }
    }

    /// Read the next physical line into `self.raw` (line ending removed);
    /// false at the end.
    fn read_raw(&mut self) -> Result<bool, StreamError> {
        self.raw.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.raw)
            .map_err(|source| StreamError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(false);
        }
        self.line_no += 1;
        while matches!(self.raw.last(), Some(b'\n' | b'\r')) {
            self.raw.pop();
        }
        Ok(true)
    }

    /// Parse one data line into `x` (resized to the feature count) and
    /// return its class. Lines without quotes are split in place; quoted
    /// ones are unquoted into `self.scratch` first.
    fn parse_row(
        &mut self,
        line_no: u64,
        line: &str,
        x: &mut Vec<f64>,
    ) -> Result<usize, StreamError> {
        if self.fast_path {
            if let Some(y) = self.fast_row(line, x) {
                return Ok(y);
            }
        }
        let quoted = line.as_bytes().contains(&b'"');
        let mut scratch = std::mem::take(&mut self.scratch);
        let split = if quoted {
            split_line(line, self.delimiter, &mut scratch, &mut self.bounds)
        } else {
            split_plain(line, self.delimiter, &mut self.bounds);
            Ok(())
        };
        let text: &str = if quoted { &scratch } else { line };
        let result = split
            .map_err(|p| self.parse_err(line_no, p))
            .and_then(|()| self.fields_to_sample(line_no, text, x));
        self.scratch = scratch;
        result
    }

    /// One pass over a plain row: each numeric field is parsed where it
    /// starts and must end at the delimiter, nominal fields and the class
    /// are looked up in place. `None` when the row has anything the fast
    /// path does not take (quotes, blanks around a field, a missing class,
    /// a field that is not a number, the wrong field count); the general
    /// path then reads the row again and gives the same result or the
    /// error. Values taken here are exactly those of the general path: the
    /// number parser is correctly rounded like `str::parse`, and nominal
    /// values and classes are indexed in the same column order.
    fn fast_row(&mut self, line: &str, x: &mut Vec<f64>) -> Option<usize> {
        let bytes = line.as_bytes();
        let delim = self.delimiter;
        x.clear();
        x.resize(self.schema.features.len(), f64::NAN);
        // Nominal fields and the class, looked up once the whole row has
        // been read: a row the general path refuses adds nothing.
        let mut named = std::mem::take(&mut self.named);
        named.clear();
        let mut i = 0;
        let mut ok = true;
        for c in 0..self.n_cols {
            let fi = self.feature_of_col[c];
            let numeric = fi != usize::MAX && self.nominal_index[fi].is_none();
            let end = if numeric && bytes.get(i).is_some_and(|&b| b != delim) {
                match fast_float2::parse_partial::<f64, _>(&bytes[i..]) {
                    Ok((v, n)) => {
                        x[fi] = v;
                        i + n
                    }
                    Err(_) => {
                        ok = false;
                        break;
                    }
                }
            } else {
                let end = bytes[i..]
                    .iter()
                    .position(|&b| b == delim)
                    .map_or(bytes.len(), |p| i + p);
                let fb = &bytes[i..end];
                if fb.contains(&b'"')
                    || fb.first().is_some_and(u8::is_ascii_whitespace)
                    || fb.last().is_some_and(u8::is_ascii_whitespace)
                {
                    ok = false;
                    break;
                }
                if !numeric {
                    named.push((c, i, end));
                }
                end
            };
            let last = c + 1 == self.n_cols;
            match bytes.get(end) {
                None if last => {}
                Some(&b) if b == delim && !last => i = end + 1,
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        let y = if ok {
            self.intern_named(line, &named, x)
        } else {
            None
        };
        self.named = named;
        y
    }

    /// The second half of [`CsvStream::fast_row`]: index the row's nominal
    /// values and its class, in column order. `None` (nothing added) when
    /// the class is missing.
    fn intern_named(
        &mut self,
        line: &str,
        named: &[(usize, usize, usize)],
        x: &mut [f64],
    ) -> Option<usize> {
        let mut y = None;
        for &(c, a, b) in named {
            // `a` and `b` sit next to the ASCII delimiter or the line's
            // ends: char boundaries.
            let field = line.get(a..b)?;
            let fi = self.feature_of_col[c];
            if fi == usize::MAX {
                if is_missing(field) {
                    return None;
                }
            } else if is_missing(field) {
                continue;
            }
            if fi == usize::MAX {
                y = Some(match self.class_index.get(field) {
                    Some(&k) => k,
                    None => {
                        let k = self.schema.class_index(field);
                        self.class_index.insert(field.to_string(), k);
                        k
                    }
                });
                continue;
            }
            let map = self.nominal_index[fi].as_mut()?;
            x[fi] = match map.get(field) {
                Some(&k) => k as f64,
                None => {
                    let k = map.len();
                    map.insert(field.to_string(), k);
                    if let FeatureKind::Nominal { values } = &mut self.schema.features[fi].kind {
                        values.push(field.to_string());
                    }
                    k as f64
                }
            };
        }
        y
    }

    fn fields_to_sample(
        &mut self,
        line_no: u64,
        text: &str,
        x: &mut Vec<f64>,
    ) -> Result<usize, StreamError> {
        if self.bounds.len() != self.n_cols {
            return Err(self.parse_err(
                line_no,
                format!(
                    "expected {} fields, found {}",
                    self.n_cols,
                    self.bounds.len()
                ),
            ));
        }
        x.clear();
        x.resize(self.schema.features.len(), f64::NAN);
        let mut y = 0;
        for c in 0..self.n_cols {
            let (a, b) = self.bounds[c];
            let field = &text[a..b];
            let fi = self.feature_of_col[c];
            if fi == usize::MAX {
                if is_missing(field) {
                    return Err(self.parse_err(line_no, "missing class label".into()));
                }
                y = match self.class_index.get(field) {
                    Some(&i) => i,
                    None => {
                        let i = self.schema.class_index(field);
                        self.class_index.insert(field.to_string(), i);
                        i
                    }
                };
                continue;
            }
            if is_missing(field) {
                continue;
            }
            x[fi] = match &mut self.nominal_index[fi] {
                None => match parse_f64(field) {
                    Some(v) => v,
                    None => {
                        let problem = format!(
                            "column `{}`: `{field}` is not a number",
                            self.schema.features[fi].name
                        );
                        return Err(self.parse_err(line_no, problem));
                    }
                },
                Some(map) => match map.get(field) {
                    Some(&i) => i as f64,
                    None => {
                        let i = map.len();
                        map.insert(field.to_string(), i);
                        if let FeatureKind::Nominal { values } = &mut self.schema.features[fi].kind
                        {
                            values.push(field.to_string());
                        }
                        i as f64
                    }
                },
            };
        }
        Ok(y)
    }

    /// The next sample into `x`, reusing its buffer; `Ok(None)` at the end.
    fn next_into(&mut self, x: &mut Vec<f64>) -> Result<Option<usize>, StreamError> {
        if let Some((line_no, line)) = self.ahead.pop_front() {
            return self.parse_row(line_no, &line, x).map(Some);
        }
        loop {
            if !self.read_raw()? {
                return Ok(None);
            }
            let raw = std::mem::take(&mut self.raw);
            let result = match std::str::from_utf8(&raw) {
                Err(e) => Err(self.parse_err(self.line_no, format!("not valid UTF-8: {e}"))),
                Ok(l) if l.trim().is_empty() => {
                    self.raw = raw;
                    continue;
                }
                Ok(l) => {
                    let line_no = self.line_no;
                    self.parse_row(line_no, l, x).map(Some)
                }
            };
            self.raw = raw;
            return result;
        }
    }
}

impl Stream for CsvStream {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, StreamError> {
        let mut x = Vec::new();
        Ok(self.next_into(&mut x)?.map(|y| Sample { x, y }))
    }

    fn next_sample_into(&mut self, x: &mut Vec<f64>) -> Result<Option<usize>, StreamError> {
        self.next_into(x)
    }
}

/// [`split_line`] for a line without quotes: `bounds` index into `line`
/// itself, with the same trimming (leading blanks, trailing whitespace).
fn split_plain(line: &str, delim: u8, bounds: &mut Vec<(usize, usize)>) {
    bounds.clear();
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        while i < bytes.len() && (bytes[i] == b' ' || (bytes[i] == b'\t' && delim != b'\t')) {
            i += 1;
        }
        let end = bytes[i..]
            .iter()
            .position(|&b| b == delim)
            .map_or(bytes.len(), |p| i + p);
        // `i` and `end` sit next to ASCII bytes, so they are char boundaries.
        let field = line[i..end].trim_end();
        bounds.push((i, i + field.len()));
        if end >= bytes.len() {
            return;
        }
        i = end + 1;
    }
}

/// Parse a decimal number as `str::parse::<f64>` does, with a fast path
/// for the plain `[-+]digits[.digits]` form of at most 19 digits whose
/// digits fit in 53 bits: the value is then `m / 10^e` with both exact, so
/// one correctly rounded division gives the same result as the full
/// parser (Clinger's fast path). Anything else goes to the full parser.
pub(crate) fn parse_f64(s: &str) -> Option<f64> {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let b = s.as_bytes();
    let (neg, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut m: u64 = 0;
    let mut digits = 0usize;
    let mut frac = 0usize;
    let mut dot = false;
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_digit() {
            m = m.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            digits += 1;
            if dot {
                frac += 1;
            }
        } else if c == b'.' && !dot {
            dot = true;
        } else {
            return s.parse().ok();
        }
        i += 1;
    }
    if digits == 0 || digits > 19 || m > (1u64 << 53) || frac >= POW10.len() {
        return s.parse().ok();
    }
    let v = m as f64 / POW10[frac];
    Some(if neg { -v } else { v })
}

/// Split one line into fields: their unquoted text is written to `out`, and
/// `bounds` gets each field's byte range in `out`. Unquoted fields are
/// trimmed.
pub(crate) fn split_line(
    line: &str,
    delim: u8,
    out: &mut String,
    bounds: &mut Vec<(usize, usize)>,
) -> Result<(), String> {
    split_fields(line, delim, false, out, bounds)
}

/// [`split_line`], also accepting `'single quoted'` fields when `single` (ARFF).
pub(crate) fn split_fields(
    line: &str,
    delim: u8,
    single: bool,
    out: &mut String,
    bounds: &mut Vec<(usize, usize)>,
) -> Result<(), String> {
    out.clear();
    bounds.clear();
    let bytes = line.as_bytes();
    let mut i = 0;
    loop {
        // Skip leading blanks of the field.
        while i < bytes.len() && (bytes[i] == b' ' || (bytes[i] == b'\t' && delim != b'\t')) {
            i += 1;
        }
        let start = out.len();
        if i < bytes.len() && (bytes[i] == b'"' || (single && bytes[i] == b'\'')) {
            let q = bytes[i];
            i += 1;
            loop {
                let Some(rel) = bytes[i..].iter().position(|&b| b == q) else {
                    return Err(format!("unterminated quote in field {}", bounds.len() + 1));
                };
                out.push_str(&line[i..i + rel]);
                i += rel + 1;
                if i < bytes.len() && bytes[i] == q {
                    out.push(q as char);
                    i += 1;
                } else {
                    break;
                }
            }
            bounds.push((start, out.len()));
            while i < bytes.len() && bytes[i] != delim {
                if bytes[i] != b' ' && bytes[i] != b'\t' {
                    return Err(format!(
                        "unexpected text after closing quote in field {}",
                        bounds.len()
                    ));
                }
                i += 1;
            }
        } else {
            let end = bytes[i..]
                .iter()
                .position(|&b| b == delim)
                .map_or(bytes.len(), |p| i + p);
            out.push_str(line[i..end].trim_end());
            bounds.push((start, out.len()));
            i = end;
        }
        if i >= bytes.len() {
            return Ok(());
        }
        i += 1; // the delimiter
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::Cursor;

    fn stream(text: &str, options: &OpenOptions) -> Result<CsvStream, StreamError> {
        CsvStream::from_reader(
            "t.csv",
            Box::new(Cursor::new(text.as_bytes().to_vec())),
            options,
        )
    }

    fn fields(line: &str) -> Vec<String> {
        let mut out = String::new();
        let mut b = Vec::new();
        split_line(line, b',', &mut out, &mut b).expect("valid line");
        b.iter().map(|&(s, e)| out[s..e].to_string()).collect()
    }

    #[test]
    fn splits_quotes_and_blanks() {
        assert_eq!(fields("a, b ,c"), vec!["a", "b", "c"]);
        assert_eq!(
            fields(r#""x, y","say ""hi""",,"#),
            vec!["x, y", r#"say "hi""#, "", ""]
        );
        let mut out = String::new();
        let mut b = Vec::new();
        assert!(split_line(r#"a,"open"#, b',', &mut out, &mut b).is_err());
    }

    #[test]
    fn reads_numeric_nominal_missing_and_classes() {
        let mut s = stream(
            "a,color,b,label\n1.5,red,?,yes\n2,blue,NA,no\n,red,3,yes\n",
            &OpenOptions::default(),
        )
        .expect("valid csv");
        let schema = s.schema().clone();
        assert_eq!(schema.target, "label");
        assert_eq!(schema.nominal_mask(), vec![false, true, false]);
        let r1 = s.next_sample().expect("ok").expect("row");
        assert_eq!(r1.x[0], 1.5);
        assert_eq!(r1.x[1], 0.0);
        assert!(r1.x[2].is_nan());
        assert_eq!(r1.y, 0);
        let r2 = s.next_sample().expect("ok").expect("row");
        assert_eq!((r2.x[1], r2.y), (1.0, 1));
        let r3 = s.next_sample().expect("ok").expect("row");
        assert!(r3.x[0].is_nan());
        assert_eq!((r3.x[1], r3.x[2], r3.y), (0.0, 3.0, 0));
        assert!(s.next_sample().expect("ok").is_none());
        assert_eq!(s.schema().classes, vec!["yes", "no"]);
    }

    #[test]
    fn target_by_name_and_declared_nominal() {
        let opts = OpenOptions {
            target: Some("y".into()),
            nominal: vec!["z".into()],
        };
        let mut s = stream("y,z,w\n1,5,0.5\n0,7,0.25\n", &opts).expect("valid");
        assert_eq!(s.schema().features.len(), 2);
        assert!(s.schema().features[0].is_nominal());
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!(r.x, vec![0.0, 0.5]);
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!((r.x.clone(), r.y), (vec![1.0, 0.25], 1));
        let err = stream("a,b\n1,2\n", &opts).err().expect("no column y");
        assert!(err.to_string().contains("no column named `y`"), "{err}");
    }

    #[test]
    fn bad_rows_name_their_line_and_the_stream_goes_on() {
        let mut text = String::from("a,b,class\n");
        for _ in 0..DETECT_ROWS + 5 {
            text.push_str("1,2,x\n");
        }
        text.push_str("1,2\n"); // line DETECT_ROWS + 7
        text.push_str("1,oops,x\n");
        text.push_str("3,4,y\n");
        let mut s = stream(&text, &OpenOptions::default()).expect("valid");
        for _ in 0..DETECT_ROWS + 5 {
            s.next_sample().expect("ok").expect("row");
        }
        let e = s.next_sample().expect_err("short row");
        let want = format!("t.csv:{}: expected 3 fields, found 2", DETECT_ROWS + 7);
        assert_eq!(e.to_string(), want);
        let e = s.next_sample().expect_err("bad number");
        assert!(e.to_string().contains("`oops` is not a number"), "{e}");
        assert!(e.is_recoverable());
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!((r.x, r.y), (vec![3.0, 4.0], 1));
    }

    #[test]
    fn byte_order_mark_and_crlf_are_ignored() {
        let mut s = stream("\u{feff}a;b;c\r\n1;2;x\r\n", &OpenOptions::default()).expect("valid");
        assert_eq!(s.schema().features[0].name, "a");
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!(r.x, vec![1.0, 2.0]);
        assert_eq!(s.schema().classes, vec!["x"]);
    }

    proptest::proptest! {
        /// The one-pass row reader gives, row by row, the same samples,
        /// classes, nominal values and errors as the general path.
        #[test]
        fn fast_rows_read_as_the_general_path_does(
            rows in proptest::collection::vec(
                proptest::collection::vec(
                    proptest::prop_oneof![
                        proptest::num::f64::ANY.prop_map(|v| v.to_string()),
                        (-1000i64..1000).prop_map(|v| v.to_string()),
                        (-1e6f64..1e6).prop_map(|v| format!("{v:.3}")),
                        (0u32..40).prop_map(|v| format!("{}e-{v}", v + 1)),
                        proptest::sample::select(vec![
                            "", "?", "NA", "NaN", "nan", "inf", "-inf", "1e", "1.5.2",
                            " 2", "3 ", "\"4\"", "\"a,b\"", "red", "blue", "x y",
                            "+.5", "5.", "-0", "1_0", "0x1f",
                        ]).prop_map(String::from),
                    ],
                    5..6,
                ),
                1..40,
            ),
            extra in proptest::collection::vec(0usize..40, 0..3),
        ) {
            let mut text = String::from("a,b,c,d,label\n");
            for (r, row) in rows.iter().enumerate() {
                let mut row = row.clone();
                if extra.contains(&r) {
                    row.push("9".into());
                }
                text.push_str(&row.join(","));
                text.push('\n');
            }
            let options = OpenOptions {
                nominal: vec!["c".into()],
                ..OpenOptions::default()
            };
            let fast = stream(&text, &options);
            let general = stream(&text, &options);
            let (mut fast, mut general) = match (fast, general) {
                (Ok(f), Ok(g)) => (f, g),
                (f, g) => {
                    prop_assert_eq!(f.err().map(|e| e.to_string()), g.err().map(|e| e.to_string()));
                    return Ok(());
                }
            };
            general.fast_path = false;
            prop_assert_eq!(fast.schema(), general.schema());
            let (mut xf, mut xg) = (Vec::new(), Vec::new());
            loop {
                let f = fast.next_sample_into(&mut xf).map_err(|e| e.to_string());
                let g = general.next_sample_into(&mut xg).map_err(|e| e.to_string());
                prop_assert_eq!(&f, &g);
                if let Ok(Some(_)) = f {
                    let bits = |x: &[f64]| {
                        x.iter()
                            .map(|v| if v.is_nan() { u64::MAX } else { v.to_bits() })
                            .collect::<Vec<_>>()
                    };
                    prop_assert_eq!(bits(&xf), bits(&xg));
                }
                prop_assert_eq!(fast.schema(), general.schema());
                if matches!(f, Ok(None)) {
                    break;
                }
            }
        }
    }

    #[test]
    fn fast_number_parsing_agrees_with_the_standard_parser() {
        let cases = [
            "0",
            "-0",
            "+3",
            "1.",
            ".5",
            "0.056443",
            "-12.5e3",
            "1e-7",
            "inf",
            "-inf",
            "123456789012345678",
            "1234567890123456789",
            "12345678901234567890",
            "9007199254740993",
            "0.1000000000000000055511151231257827",
            "3.14159",
            "00017.250",
            "1.2.3",
            ".",
            "-",
            "",
            "1,5",
            "0x10",
            " 1",
            "NaN",
        ];
        for c in cases {
            let want = c.parse::<f64>().ok();
            let got = parse_f64(c);
            assert_eq!(
                got.map(f64::to_bits),
                want.map(f64::to_bits),
                "{c}: {got:?} vs {want:?}"
            );
        }
        let mut x = 0.000_123_f64;
        for _ in 0..2000 {
            let text = format!("{x}");
            assert_eq!(parse_f64(&text), Some(x), "{text}");
            let short = format!("{x:.6}");
            assert_eq!(parse_f64(&short), short.parse().ok(), "{short}");
            x = x * 1.37 + 0.011;
            if x > 1e12 {
                x = -x / 1e13;
            }
        }
    }

    #[test]
    fn plain_and_quoted_lines_split_alike() {
        for line in ["a, b ,c", " 1 ,2\t, 3 ,", ",,", "x", "é,ü ,z"] {
            let mut bounds = Vec::new();
            split_plain(line, b',', &mut bounds);
            let plain: Vec<&str> = bounds.iter().map(|&(a, b)| &line[a..b]).collect();
            assert_eq!(plain, fields(line), "{line}");
        }
        let mut s = stream(
            "a,b,class\n\"1\",2,x\n3, 4 ,\"y\"\n",
            &OpenOptions::default(),
        )
        .expect("valid");
        let mut x = vec![9.0; 7];
        assert_eq!(s.next_sample_into(&mut x).expect("ok"), Some(0));
        assert_eq!(x, vec![1.0, 2.0]);
        assert_eq!(s.next_sample_into(&mut x).expect("ok"), Some(1));
        assert_eq!(x, vec![3.0, 4.0]);
        assert_eq!(s.next_sample_into(&mut x).expect("ok"), None);
    }

    #[test]
    fn empty_file_is_an_error() {
        assert!(stream("", &OpenOptions::default()).is_err());
    }
}
