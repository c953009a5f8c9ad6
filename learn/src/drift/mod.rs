//! Concept-drift detectors: they watch a stream of numbers (usually a
//! model's 0/1 error) and say when its distribution has changed.

pub mod adwin;
pub mod ddm;
pub mod eddm;
pub mod kswin;
pub mod page_hinkley;

pub use adwin::Adwin;
pub use ddm::Ddm;
pub use eddm::Eddm;
pub use kswin::Kswin;
pub use page_hinkley::{PageHinkley, PhMode};

/// What a detector concluded after one more value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriftState {
    /// No evidence of change.
    Stable,
    /// Change is likely but not yet confirmed (not every detector warns).
    Warning,
    /// The distribution changed.
    Drift,
}

/// A detector fed one value at a time.
pub trait DriftDetector {
    /// Add one value and report the state after it.
    fn update(&mut self, x: f64) -> DriftState;

    /// Forget everything seen so far (parameters are kept).
    fn reset(&mut self);
}
