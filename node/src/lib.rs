//! `shoal-node`: the Shoal daemon.
//!
//! One process per device. It owns:
//!
//! * [`net`]: the libp2p swarm (TCP/QUIC, noise, yamux, optional pnet,
//!   identify, ping, mDNS, Kademlia, gossipsub, request-response), driven by
//!   one [`net::EventLoop`]; everything else talks to it through a cheap
//!   [`net::Client`].
//! * [`store`]: the redb database under `--data-dir` (identity key, model
//!   snapshots with their ingest offset, the `POST /v1/learn` log, data blobs,
//!   the task ledger).
//! * [`learner`]: the test-then-train loop over a `shoal-learn` model, fed by
//!   [`source`] (CSV files, generators) and by the REST API.
//! * [`api`]: the REST API (axum) with its OpenAPI document and `/metrics`.
//! * [`market`]: the task market: the protocol's auction owner and bidder on
//!   real messages and a durable ledger, the executor's task slots, and the
//!   placement policies.
//! * [`config`]: TOML config, environment and flags.
//!
//! It does not decide who runs what or what a merge accepts: those rules are
//! `shoal-protocol`'s and `shoal-learn`'s.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! let config = shoal_node::config::Config::default();
//! shoal_node::node::run(config).await?;
//! # Ok(()) }
//! ```

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod config;
pub mod federation;
pub mod learner;
pub mod market;
pub mod metrics;
pub mod net;
pub mod node;
pub mod source;
pub mod store;
