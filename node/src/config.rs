//! Node configuration: a `serde` struct with defaults, read from TOML
//! (`--config`), then overridden by `SHOAL_*` environment variables and
//! flags (clap does both, see `main.rs`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Everything a node needs to run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory of the redb database (identity key, snapshots, blobs).
    pub data_dir: PathBuf,
    /// libp2p listen multiaddrs.
    pub listen: Vec<String>,
    /// REST API address, `host:port`.
    pub api: String,
    /// Bootstrap peers: multiaddrs ending in `/p2p/<peer id>`.
    pub bootstrap: Vec<String>,
    /// Model spec for `shoal_learn::build_str`, e.g. `ht` or `nb`.
    pub model: String,
    /// Stream source: a CSV/CSV.gz/ARFF path or a generator spec
    /// (`sea:seed=3,n=100000`). None: learn only from `POST /v1/learn`.
    pub source: Option<String>,
    /// Keep reading the source file as it grows.
    pub follow: bool,
    /// Samples per second taken from the source; 0 = as fast as possible.
    pub rate: f64,
    /// Snapshot after this many new samples...
    pub snapshot_every: u64,
    /// ...or after this many seconds with new samples.
    pub snapshot_secs: u64,
    /// Pre-shared network key file (pnet). Forces TCP only.
    pub network_key: Option<PathBuf>,
    /// Bearer token required by mutating API calls.
    pub api_token: Option<String>,
    /// Local peer discovery with mDNS.
    pub mdns: bool,
    /// Only these peer ids may connect (empty: anyone with the network key).
    pub allow_peers: Vec<String>,
    /// Most established connections in total.
    pub max_connections: u32,
    /// Total bytes of data blobs kept (oldest evicted first).
    pub blob_budget_bytes: u64,
    /// Seconds between status gossip messages.
    pub status_interval_secs: u64,
    /// `human` or `json`.
    pub log_format: String,
    /// Market tasks that run at once on this node.
    pub task_slots: u16,
    /// Placement of the tasks this node owns: `auction`, `local`, `random`,
    /// `round_robin`, `least_loaded` or `data_locality`.
    pub placement: String,
    /// Federation: merge peers' models (asynchronous pull rounds).
    pub federation: bool,
    /// Test-only: publish poisoned models (`flip_labels`, `scale`, `nan`),
    /// so that defence experiments run on real nodes. Never in production.
    pub byzantine: Option<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("shoal-data"),
            listen: vec![
                "/ip4/0.0.0.0/tcp/0".into(),
                "/ip4/0.0.0.0/udp/0/quic-v1".into(),
            ],
            api: "127.0.0.1:7070".into(),
            bootstrap: Vec::new(),
            model: "ht".into(),
            source: None,
            follow: false,
            rate: 200.0,
            snapshot_every: 1000,
            snapshot_secs: 10,
            network_key: None,
            api_token: None,
            mdns: true,
            allow_peers: Vec::new(),
            max_connections: 128,
            blob_budget_bytes: 64 * 1024 * 1024,
            status_interval_secs: 2,
            log_format: "human".into(),
            task_slots: 1,
            placement: "auction".into(),
            federation: true,
            byzantine: None,
        }
    }
}

/// A config file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading config {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("parsing config {path}: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: Box<toml::de::Error>,
    },
}

impl Config {
    /// Reads a TOML file; missing keys take their defaults, unknown keys are
    /// an error (a typo should not be silently ignored).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_path_buf(),
            source: Box::new(source),
        })
    }
}

/// The commented config file that `shoal-node init` writes.
pub fn commented_toml(data_dir: &Path) -> String {
    let d = Config::default();
    format!(
        r#"# Shoal node configuration. Every key is optional; shown are the defaults.
# Environment variables SHOAL_<KEY> and command-line flags override this file.

# Where the node keeps its identity key, model snapshots and data blobs.
data_dir = {data_dir:?}

# libp2p listen addresses (TCP and QUIC; port 0 = any free port).
listen = ["/ip4/0.0.0.0/tcp/0", "/ip4/0.0.0.0/udp/0/quic-v1"]

# REST API address. Keep it on 127.0.0.1 unless you set api_token.
api = "{api}"

# Peers to join: multiaddrs ending in /p2p/<peer id>.
bootstrap = []

# Streaming classifier (shoal-learn spec), e.g. "ht", "ht:grace_period=100".
model = "{model}"

# Stream source: a CSV / CSV.gz / ARFF path or a generator spec such as
# "sea:seed=3,n=100000". Unset: learn only from POST /v1/learn.
# source = "sea:seed=3"
follow = false

# Samples per second taken from the source (0 = as fast as possible).
rate = {rate:?}

# Snapshot the model every N samples or S seconds, whichever comes first.
snapshot_every = {every}
snapshot_secs = {secs}

# Private network: a pre-shared key file (/key/swarm/psk/1.0.0/ format or 64
# hex characters). With a key the node speaks TCP only: pnet wraps a byte
# stream, and QUIC brings its own encryption that pnet cannot wrap.
# network_key = "swarm.key"

# Bearer token required by POST /v1/learn and POST /v1/tasks.
# api_token = "change-me"

# Find peers on the local network with mDNS.
mdns = true

# Only these peer ids may connect (empty = anyone who has the network key).
allow_peers = []

max_connections = {maxc}
blob_budget_bytes = {blobs}
status_interval_secs = {status}

# "human" or "json". Filter with RUST_LOG, e.g. RUST_LOG=shoal_node=debug.
log_format = "human"

# Market: tasks that run at once here, and where this node places the tasks
# it owns: "auction" (sealed bids), "local", "random", "round_robin",
# "least_loaded" or "data_locality" (baselines for comparison).
task_slots = {slots}
placement = "{placement}"
"#,
        data_dir = data_dir.display().to_string(),
        api = d.api,
        model = d.model,
        rate = d.rate,
        every = d.snapshot_every,
        secs = d.snapshot_secs,
        maxc = d.max_connections,
        blobs = d.blob_budget_bytes,
        status = d.status_interval_secs,
        slots = d.task_slots,
        placement = d.placement,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commented_file_parses_to_defaults() {
        let text = commented_toml(Path::new("/tmp/x"));
        let c: Config = toml::from_str(&text).unwrap();
        let d = Config {
            data_dir: PathBuf::from("/tmp/x"),
            ..Config::default()
        };
        assert_eq!(c, d);
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(toml::from_str::<Config>("modle = \"ht\"").is_err());
    }
}
