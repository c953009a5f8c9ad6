//! What a stream looks like: its features (numeric or nominal) and its
//! classes. Both may grow while the stream runs: a reader that meets a new
//! class label or nominal value appends it, and models grow with it.

use serde::{Deserialize, Serialize};

/// The kind of one feature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FeatureKind {
    /// A real number; `NaN` means missing.
    Numeric,
    /// A category, encoded in samples as its index (`0.0`, `1.0`, ...) into
    /// `values`; `NaN` means missing.
    Nominal { values: Vec<String> },
}

/// One input column.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feature {
    pub name: String,
    pub kind: FeatureKind,
}

impl Feature {
    pub fn numeric(name: impl Into<String>) -> Self {
        Feature {
            name: name.into(),
            kind: FeatureKind::Numeric,
        }
    }

    pub fn nominal(name: impl Into<String>, values: Vec<String>) -> Self {
        Feature {
            name: name.into(),
            kind: FeatureKind::Nominal { values },
        }
    }

    pub fn is_nominal(&self) -> bool {
        matches!(self.kind, FeatureKind::Nominal { .. })
    }
}

/// Features and classes of a stream.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    pub features: Vec<Feature>,
    /// Class labels; a sample's `y` is an index into this list.
    pub classes: Vec<String>,
    /// Name of the target column.
    pub target: String,
}

impl Schema {
    /// A schema of `n` numeric features named `x0..x{n-1}` and the given classes.
    pub fn numeric(n: usize, classes: &[&str]) -> Self {
        Schema {
            features: (0..n).map(|i| Feature::numeric(format!("x{i}"))).collect(),
            classes: classes.iter().map(|c| c.to_string()).collect(),
            target: "class".into(),
        }
    }

    pub fn n_features(&self) -> usize {
        self.features.len()
    }

    pub fn n_classes(&self) -> usize {
        self.classes.len()
    }

    /// Which features are nominal, in column order.
    pub fn nominal_mask(&self) -> Vec<bool> {
        self.features.iter().map(Feature::is_nominal).collect()
    }

    /// Index of `label`, appending it if new (classes grow with the stream).
    pub fn class_index(&mut self, label: &str) -> usize {
        if let Some(i) = self.classes.iter().position(|c| c == label) {
            return i;
        }
        self.classes.push(label.to_string());
        self.classes.len() - 1
    }
}

/// One labelled example: features (NaN = missing) and a class index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub x: Vec<f64>,
    pub y: usize,
}
