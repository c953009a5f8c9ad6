//! The classifiers. Each file holds one family; `crate::model` lists them
//! by name for specs.

pub mod baseline;
pub mod knn;
pub mod linear;
pub mod naive_bayes;
pub mod tree;
