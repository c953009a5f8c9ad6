//! The classifiers. Each file holds one family; `crate::model` lists them
//! by name for specs.

pub mod auto;
pub mod baseline;
pub mod ensemble;
pub mod knn;
pub mod linear;
pub mod mlp;
pub mod naive_bayes;
pub mod tree;
