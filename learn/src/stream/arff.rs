//! ARFF reader (Weka's Attribute-Relation File Format), plain or gzipped.
//!
//! Understands `@relation`, `@attribute NAME numeric|real|integer|{a,b,..}`
//! (`string` and `date` attributes are read as nominal values that grow),
//! `@data`, `%` comments and `?` for a missing value. The class is the last
//! attribute, or the one named by [`OpenOptions::target`](super::OpenOptions);
//! a nominal class keeps its declared value order as class indices. Sparse
//! rows (`{0 1, 3 2}`) are not supported and are reported as bad rows. The
//! data section is read line by line.

use std::collections::HashMap;
use std::io::BufRead;

use super::csv::split_fields;
use super::{is_missing, open_reader, OpenOptions, Stream, StreamError};
use crate::schema::{Feature, FeatureKind, Sample, Schema};

/// How one ARFF attribute is read.
enum Column {
    Numeric {
        feature: usize,
    },
    Nominal {
        feature: usize,
        index: HashMap<String, usize>,
    },
    Class {
        index: HashMap<String, usize>,
    },
}

/// An ARFF file as a stream of samples.
pub struct ArffStream {
    path: String,
    reader: Box<dyn BufRead + Send>,
    schema: Schema,
    relation: String,
    columns: Vec<Column>,
    line_no: u64,
    raw: Vec<u8>,
    scratch: String,
    bounds: Vec<(usize, usize)>,
}

impl ArffStream {
    /// Open `path` (gunzipped if it ends in `.gz`) and read its header.
    pub fn open(path: &str, options: &OpenOptions) -> Result<Self, StreamError> {
        let reader = open_reader(path)?;
        Self::from_reader(path, reader, options)
    }

    /// Read ARFF from any buffered reader; `path` is only used in messages.
    pub fn from_reader(
        path: &str,
        reader: Box<dyn BufRead + Send>,
        options: &OpenOptions,
    ) -> Result<Self, StreamError> {
        let mut s = ArffStream {
            path: path.to_string(),
            reader,
            schema: Schema::default(),
            relation: String::new(),
            columns: Vec::new(),
            line_no: 0,
            raw: Vec::new(),
            scratch: String::new(),
            bounds: Vec::new(),
        };
        // (name, declared nominal values or None for numeric)
        let mut attrs: Vec<(String, Option<Vec<String>>)> = Vec::new();
        loop {
            let Some(line) = s.read_line()? else {
                return Err(s.err("no @data section".into()));
            };
            let t = line.trim();
            if t.is_empty() || t.starts_with('%') {
                continue;
            }
            let lower = t.to_ascii_lowercase();
            if lower.starts_with("@relation") {
                s.relation = unquote(t["@relation".len()..].trim()).to_string();
            } else if lower.starts_with("@attribute") {
                let rest = t["@attribute".len()..].trim();
                let (name, ty) =
                    split_name(rest).ok_or_else(|| s.err("attribute without a type".into()))?;
                let ty_lower = ty.to_ascii_lowercase();
                let kind = if ty.starts_with('{') {
                    let inner = ty
                        .strip_prefix('{')
                        .and_then(|r| r.trim_end().strip_suffix('}'))
                        .ok_or_else(|| s.err(format!("attribute `{name}`: unclosed {{")))?;
                    split_fields(inner, b',', true, &mut s.scratch, &mut s.bounds)
                        .map_err(|p| s.err(format!("attribute `{name}`: {p}")))?;
                    Some(
                        s.bounds
                            .iter()
                            .map(|&(a, b)| s.scratch[a..b].to_string())
                            .filter(|v| !v.is_empty())
                            .collect(),
                    )
                } else if ["numeric", "real", "integer"]
                    .iter()
                    .any(|k| ty_lower.starts_with(k))
                {
                    None
                } else if ty_lower.starts_with("string") || ty_lower.starts_with("date") {
                    Some(Vec::new())
                } else {
                    return Err(s.err(format!("attribute `{name}`: unsupported type `{ty}`")));
                };
                attrs.push((name, kind));
            } else if lower.starts_with("@data") {
                break;
            } else {
                return Err(s.err(format!("unexpected header line `{t}`")));
            }
        }
        if attrs.len() < 2 {
            return Err(s.err(format!(
                "{} attribute(s); need at least one feature and a class",
                attrs.len()
            )));
        }
        let target = match &options.target {
            None => attrs.len() - 1,
            Some(t) => attrs.iter().position(|(n, _)| n == t).ok_or_else(|| {
                let names: Vec<&str> = attrs.iter().map(|(n, _)| n.as_str()).collect();
                s.err(format!(
                    "no attribute named `{t}` (attributes: {})",
                    names.join(", ")
                ))
            })?,
        };
        for (i, (name, kind)) in attrs.into_iter().enumerate() {
            let values = kind.unwrap_or_default();
            let index: HashMap<String, usize> = values
                .iter()
                .enumerate()
                .map(|(i, v)| (v.clone(), i))
                .collect();
            if i == target {
                s.schema.target = name;
                s.schema.classes = values;
                s.columns.push(Column::Class { index });
            } else {
                let feature = s.schema.features.len();
                let nominal = !index.is_empty() || options.nominal.contains(&name);
                if nominal {
                    s.schema.features.push(Feature::nominal(name, values));
                    s.columns.push(Column::Nominal { feature, index });
                } else {
                    s.schema.features.push(Feature::numeric(name));
                    s.columns.push(Column::Numeric { feature });
                }
            }
        }
        Ok(s)
    }

    /// The `@relation` name.
    pub fn relation(&self) -> &str {
        &self.relation
    }

    fn err(&self, problem: String) -> StreamError {
        StreamError::Parse {
            path: self.path.clone(),
            line: self.line_no,
            problem,
        }
    }

    fn read_line(&mut self) -> Result<Option<String>, StreamError> {
        self.raw.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.raw)
            .map_err(|source| StreamError::Io {
                path: self.path.clone(),
                source,
            })?;
        if n == 0 {
            return Ok(None);
        }
        self.line_no += 1;
        match std::str::from_utf8(&self.raw) {
            Ok(s) => Ok(Some(s.trim_end_matches(['\n', '\r']).to_string())),
            Err(e) => Err(self.err(format!("not valid UTF-8: {e}"))),
        }
    }

    fn parse_row(&mut self, line: &str) -> Result<Sample, StreamError> {
        if line.starts_with('{') {
            return Err(self.err("sparse ARFF rows are not supported".into()));
        }
        split_fields(line, b',', true, &mut self.scratch, &mut self.bounds)
            .map_err(|p| self.err(p))?;
        if self.bounds.len() != self.columns.len() {
            return Err(self.err(format!(
                "expected {} fields, found {}",
                self.columns.len(),
                self.bounds.len()
            )));
        }
        let mut x = vec![f64::NAN; self.schema.features.len()];
        let mut y = None;
        for (c, &(a, b)) in self.bounds.iter().enumerate() {
            let field = &self.scratch[a..b];
            match &mut self.columns[c] {
                Column::Class { index } => {
                    if is_missing(field) {
                        return Err(StreamError::Parse {
                            path: self.path.clone(),
                            line: self.line_no,
                            problem: "missing class label".into(),
                        });
                    }
                    y = Some(match index.get(field) {
                        Some(&i) => i,
                        None => {
                            let i = self.schema.class_index(field);
                            index.insert(field.to_string(), i);
                            i
                        }
                    });
                }
                _ if is_missing(field) => {}
                Column::Numeric { feature } => match field.parse::<f64>() {
                    Ok(v) => x[*feature] = v,
                    Err(_) => {
                        let name = &self.schema.features[*feature].name;
                        return Err(StreamError::Parse {
                            path: self.path.clone(),
                            line: self.line_no,
                            problem: format!("attribute `{name}`: `{field}` is not a number"),
                        });
                    }
                },
                Column::Nominal { feature, index } => {
                    x[*feature] = match index.get(field) {
                        Some(&i) => i as f64,
                        None => {
                            // Undeclared value: grow rather than drop the row.
                            let i = index.len();
                            index.insert(field.to_string(), i);
                            if let FeatureKind::Nominal { values } =
                                &mut self.schema.features[*feature].kind
                            {
                                values.push(field.to_string());
                            }
                            i as f64
                        }
                    };
                }
            }
        }
        let y = y.ok_or_else(|| self.err("missing class label".into()))?;
        Ok(Sample { x, y })
    }
}

impl Stream for ArffStream {
    fn schema(&self) -> &Schema {
        &self.schema
    }

    fn next_sample(&mut self) -> Result<Option<Sample>, StreamError> {
        loop {
            let Some(line) = self.read_line()? else {
                return Ok(None);
            };
            let t = line.trim();
            if t.is_empty() || t.starts_with('%') {
                continue;
            }
            return self.parse_row(t).map(Some);
        }
    }
}

/// Split `name type` where the name may be quoted.
fn split_name(rest: &str) -> Option<(String, &str)> {
    let rest = rest.trim();
    let first = rest.chars().next()?;
    if first == '\'' || first == '"' {
        let end = rest[1..].find(first)? + 1;
        Some((rest[1..end].to_string(), rest[end + 1..].trim()))
    } else {
        let end = rest.find(|c: char| c.is_whitespace() || c == '{')?;
        Some((rest[..end].to_string(), rest[end..].trim()))
    }
}

fn unquote(s: &str) -> &str {
    s.trim_matches(|c| c == '\'' || c == '"')
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const WEATHER: &str = "% a comment\n@relation 'weather'\n\n@attribute outlook {sunny, overcast, rainy}\n@attribute temperature real\n@ATTRIBUTE 'wind speed' numeric\n@attribute play {yes,no}\n\n@data\nsunny,85,?,no\n% comment in data\novercast,83,3.5,yes\n?,70,1,yes\n";

    fn stream(text: &str, options: &OpenOptions) -> Result<ArffStream, StreamError> {
        ArffStream::from_reader(
            "w.arff",
            Box::new(Cursor::new(text.as_bytes().to_vec())),
            options,
        )
    }

    #[test]
    fn reads_header_and_rows() {
        let mut s = stream(WEATHER, &OpenOptions::default()).expect("valid arff");
        assert_eq!(s.relation(), "weather");
        assert_eq!(s.schema().classes, vec!["yes", "no"]);
        assert_eq!(s.schema().features[1].name, "temperature");
        assert_eq!(s.schema().features[2].name, "wind speed");
        assert_eq!(s.schema().nominal_mask(), vec![true, false, false]);
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!(r.x[..2], [0.0, 85.0]);
        assert!(r.x[2].is_nan());
        assert_eq!(r.y, 1);
        let r = s.next_sample().expect("ok").expect("row");
        assert_eq!((r.x.clone(), r.y), (vec![1.0, 83.0, 3.5], 0));
        let r = s.next_sample().expect("ok").expect("row");
        assert!(r.x[0].is_nan());
        assert!(s.next_sample().expect("ok").is_none());
    }

    #[test]
    fn named_class_and_bad_rows() {
        let opts = OpenOptions {
            target: Some("outlook".into()),
            ..Default::default()
        };
        let s = stream(WEATHER, &opts).expect("valid");
        assert_eq!(s.schema().classes.len(), 3);
        let bad = WEATHER.replace("overcast,83", "overcast,hot");
        let mut s = stream(&bad, &OpenOptions::default()).expect("valid header");
        s.next_sample().expect("ok");
        let e = s.next_sample().expect_err("bad number");
        assert!(e.to_string().starts_with("w.arff:12:"), "{e}");
        assert!(s.next_sample().expect("continues").is_some());
    }
}
