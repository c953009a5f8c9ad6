//! Textual specs such as `ht:grace_period=100,leaf=nb` or
//! `sea:variant=1,noise=0.1,seed=7`: a name, then `key=value` parameters.
//! Used for models and for generator streams alike.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// A parse or validation error in a spec, naming the offending part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("empty spec")]
    Empty,
    #[error("spec `{spec}`: parameter `{part}` is not of the form key=value")]
    Malformed { spec: String, part: String },
    #[error("unknown name `{name}` (known: {known})")]
    UnknownName { name: String, known: String },
    #[error("`{name}`: unknown parameter `{param}` (known: {known})")]
    UnknownParam {
        name: String,
        param: String,
        known: String,
    },
    #[error("`{name}`: parameter `{param}` = `{value}` is invalid: {why}")]
    BadValue {
        name: String,
        param: String,
        value: String,
        why: String,
    },
}

/// A parsed spec: `name` and ordered `(key, value)` parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub params: Vec<(String, String)>,
}

impl Spec {
    /// Parse `name[:k=v[,k=v...]]`. Whitespace around parts is ignored.
    pub fn parse(s: &str) -> Result<Spec, SpecError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(SpecError::Empty);
        }
        let (name, rest) = match s.split_once(':') {
            Some((n, r)) => (n.trim(), r.trim()),
            None => (s, ""),
        };
        if name.is_empty() {
            return Err(SpecError::Empty);
        }
        let mut params = Vec::new();
        if !rest.is_empty() {
            for part in rest.split(',') {
                let part = part.trim();
                if part.is_empty() {
                    continue;
                }
                match part.split_once('=') {
                    Some((k, v)) if !k.trim().is_empty() => {
                        params.push((k.trim().to_string(), v.trim().to_string()))
                    }
                    _ => {
                        return Err(SpecError::Malformed {
                            spec: s.to_string(),
                            part: part.to_string(),
                        })
                    }
                }
            }
        }
        Ok(Spec {
            name: name.to_string(),
            params,
        })
    }

    /// A reader that hands out typed parameters and rejects unknown ones.
    pub fn reader(&self) -> ParamReader<'_> {
        ParamReader {
            spec: self,
            known: BTreeSet::new(),
        }
    }

    /// Value of a parameter, if given (last one wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

impl FromStr for Spec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Spec::parse(s)
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        for (i, (k, v)) in self.params.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ':' } else { ',' })?;
        }
        Ok(())
    }
}

/// Typed access to a spec's parameters. Every getter records the name as
/// known; `finish()` fails on any parameter that no getter asked for, so a
/// typo like `grace_perod=100` is an error, not silently ignored.
pub struct ParamReader<'a> {
    spec: &'a Spec,
    known: BTreeSet<&'static str>,
}

impl ParamReader<'_> {
    fn bad(&self, param: &str, value: &str, why: impl Into<String>) -> SpecError {
        SpecError::BadValue {
            name: self.spec.name.clone(),
            param: param.to_string(),
            value: value.to_string(),
            why: why.into(),
        }
    }

    /// A parameter parsed with `FromStr`.
    pub fn parse<T: FromStr>(&mut self, key: &'static str, default: T) -> Result<T, SpecError>
    where
        T::Err: fmt::Display,
    {
        self.known.insert(key);
        match self.spec.get(key) {
            None => Ok(default),
            Some(v) => v.parse::<T>().map_err(|e| self.bad(key, v, e.to_string())),
        }
    }

    /// A finite float within `[lo, hi]`.
    pub fn f64_in(
        &mut self,
        key: &'static str,
        default: f64,
        lo: f64,
        hi: f64,
    ) -> Result<f64, SpecError> {
        let v: f64 = self.parse(key, default)?;
        if !v.is_finite() || v < lo || v > hi {
            let raw = self.spec.get(key).unwrap_or_default().to_string();
            return Err(self.bad(key, &raw, format!("must be within [{lo}, {hi}]")));
        }
        Ok(v)
    }

    /// An integer within `[lo, hi]`.
    pub fn usize_in(
        &mut self,
        key: &'static str,
        default: usize,
        lo: usize,
        hi: usize,
    ) -> Result<usize, SpecError> {
        let v: usize = self.parse(key, default)?;
        if v < lo || v > hi {
            let raw = self.spec.get(key).unwrap_or_default().to_string();
            return Err(self.bad(key, &raw, format!("must be within [{lo}, {hi}]")));
        }
        Ok(v)
    }

    /// A `u64` (seeds).
    pub fn u64(&mut self, key: &'static str, default: u64) -> Result<u64, SpecError> {
        self.parse(key, default)
    }

    /// A boolean (`true/false/1/0/yes/no`).
    pub fn bool(&mut self, key: &'static str, default: bool) -> Result<bool, SpecError> {
        self.known.insert(key);
        match self.spec.get(key) {
            None => Ok(default),
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Ok(true),
                "false" | "0" | "no" => Ok(false),
                _ => Err(self.bad(key, v, "expected true or false")),
            },
        }
    }

    /// One of a fixed set of words.
    pub fn choice(
        &mut self,
        key: &'static str,
        default: &'static str,
        choices: &[&'static str],
    ) -> Result<&'static str, SpecError> {
        self.known.insert(key);
        match self.spec.get(key) {
            None => Ok(default),
            Some(v) => choices
                .iter()
                .find(|c| c.eq_ignore_ascii_case(v))
                .copied()
                .ok_or_else(|| self.bad(key, v, format!("expected one of {}", choices.join("|")))),
        }
    }

    /// A free-form string (e.g. a nested spec).
    pub fn string(&mut self, key: &'static str, default: &str) -> String {
        self.known.insert(key);
        self.spec.get(key).unwrap_or(default).to_string()
    }

    /// Fail if the spec holds a parameter no getter asked for.
    pub fn finish(self) -> Result<(), SpecError> {
        for (k, _) in &self.spec.params {
            if !self.known.contains(k.as_str()) {
                return Err(SpecError::UnknownParam {
                    name: self.spec.name.clone(),
                    param: k.clone(),
                    known: self.known.iter().copied().collect::<Vec<_>>().join(", "),
                });
            }
        }
        Ok(())
    }
}

/// Documentation of one parameter, for `shoal-bench models`.
#[derive(Debug, Clone, Copy)]
pub struct ParamDoc {
    pub name: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_name_and_params() {
        let s = Spec::parse("ht:grace_period=100, leaf=nb").expect("valid");
        assert_eq!(s.name, "ht");
        assert_eq!(s.get("grace_period"), Some("100"));
        assert_eq!(s.get("leaf"), Some("nb"));
        assert_eq!(s.to_string(), "ht:grace_period=100,leaf=nb");
    }

    #[test]
    fn rejects_malformed_and_unknown() {
        assert!(matches!(
            Spec::parse("ht:grace_period"),
            Err(SpecError::Malformed { .. })
        ));
        let s = Spec::parse("ht:grace_perod=1").expect("valid syntax");
        let mut r = s.reader();
        assert_eq!(r.usize_in("grace_period", 200, 1, 1_000_000), Ok(200));
        assert!(matches!(r.finish(), Err(SpecError::UnknownParam { .. })));
    }

    #[test]
    fn range_checks_name_the_value() {
        let s = Spec::parse("x:delta=2").expect("valid");
        let err = s.reader().f64_in("delta", 0.1, 0.0, 1.0).unwrap_err();
        assert!(err.to_string().contains("delta"));
    }
}
