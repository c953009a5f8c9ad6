//! `shoal-testnet`: launch and drive meshes of `shoal-node` processes.
//!
//! [`local`] starts N nodes on loopback with their own ports and data dirs,
//! wires them through bootstrap addresses, polls `GET /v1/status`, lets a
//! [`scenario`] break things (`kill -9`, network partitions), and writes a
//! report with plots ([`report`], [`svg`]). [`node`] is the handle on one
//! child process and [`http`] a tiny bounded HTTP/1.1 client for the API.
//! Docker compose lives at the top of the workspace (`docker-compose.yml`,
//! `testnet/compose-smoke.sh`).
//!
//! This crate builds nothing: it runs the `shoal-node` binary it is given.
//!
//! ```no_run
//! use std::time::Duration;
//! use shoal_testnet::node::{default_node_bin, NodeProcess, NodeSpec};
//!
//! # fn main() -> anyhow::Result<()> {
//! let bin = default_node_bin()?;
//! let spec = NodeSpec::loopback("node0", &bin, "out/one".as_ref(), 4001, 7070);
//! let mut node = NodeProcess::spawn(&spec)?;
//! let status = node.wait_ready(Duration::from_secs(30), &|| false)?;
//! println!("{} is up", status.peer_id);
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod data;
pub mod federation;
pub mod http;
pub mod live;
pub mod local;
pub mod market;
pub mod node;
pub mod report;
pub mod scenario;
pub mod sim;
pub mod status;
pub mod svg;
pub mod util;
