//! `shoal-learn`: streaming classification for small devices.
//!
//! Everything here learns test-then-train, one sample at a time, in bounded
//! memory, and is `serde` (de)serializable so that a model can be snapshotted
//! to disk or sent to a peer. It holds classifiers ([`models`], built by name
//! through [`model::build_str`]), drift detectors, metrics, prequential
//! evaluation, and stream readers and generators.
//!
//! It must not depend on tokio, libp2p or any I/O beyond reading files.
//!
//! ```no_run
//! use shoal_learn::{model, Classifier, Schema};
//!
//! let schema = Schema::numeric(2, &["a", "b"]);
//! let mut m = model::build_str("majority", &schema).expect("known model");
//! let x = [0.5, 1.0];
//! let _before = m.predict_one(&x); // test ...
//! m.learn_one(&x, 1, 1.0); // ... then train
//! ```

pub mod classifier;
pub mod drift;
pub mod eval;
pub mod merge;
pub mod metrics;
pub mod model;
pub mod models;
pub mod rng;
pub mod schema;
pub mod spec;
pub mod stream;

pub use classifier::Classifier;
pub use model::{build, build_str, Model, MODELS};
pub use schema::{Feature, FeatureKind, Sample, Schema};
pub use spec::{Spec, SpecError};
pub use stream::{Stream, StreamError};
