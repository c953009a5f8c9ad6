//! `shoal-node`: command line of the Shoal daemon.
//!
//! `shoal-node init` creates the data dir, the identity key and a commented
//! config file; `shoal-node run` runs the node. Settings come from the TOML
//! file (`--config`), then `SHOAL_*` environment variables, then flags.
//! Logs go to stderr (`RUST_LOG`); stdout carries one line scripts can read:
//! `shoal-node <peer_id> api=http://<addr> listen=[<multiaddr>,...]`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use shoal_node::config::Config;

#[derive(Parser)]
#[command(name = "shoal-node", version, about = "The Shoal mesh daemon")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the data dir, the identity key and a commented config file.
    Init {
        /// Data directory.
        #[arg(long, env = "SHOAL_DATA_DIR", default_value = "shoal-data")]
        data_dir: PathBuf,
        /// Config file to write (default: <data-dir>/shoal.toml).
        #[arg(long, env = "SHOAL_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Run the node until SIGINT/SIGTERM.
    Run(Box<RunArgs>),
    /// Ask a running node's API whether it is healthy: exits 0 iff
    /// `GET /v1/health` answers 200 within the timeout. Made for container
    /// healthchecks (a FROM-scratch image has no curl).
    Health {
        /// The node's API address host:port (0.0.0.0 means this host).
        #[arg(long, env = "SHOAL_API", default_value = "127.0.0.1:7070")]
        api: String,
        /// Path to GET instead of /v1/health; its body is printed on stdout.
        #[arg(long, default_value = "/v1/health")]
        path: String,
        /// Seconds to wait for the answer.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
    },
}

/// A bare HTTP/1.0 GET on loopback-class addresses: returns the status code
/// and the body. Enough for a healthcheck, with no HTTP client dependency.
fn http_get(api: &str, path: &str, timeout: Duration) -> anyhow::Result<(u16, String)> {
    use std::io::{Read, Write};
    use std::net::{TcpStream, ToSocketAddrs};
    let api = api.trim_start_matches("http://").trim_end_matches('/');
    let target = match api.strip_prefix("0.0.0.0:") {
        Some(port) => format!("127.0.0.1:{port}"),
        None => api.replace("[::]:", "[::1]:"),
    };
    let addr = target
        .to_socket_addrs()
        .with_context(|| format!("resolving {target}"))?
        .next()
        .with_context(|| format!("no address for {target}"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("connecting to {target}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: {target}\r\nConnection: close\r\n\r\n"
    )?;
    let mut buf = Vec::new();
    // Bounded: a health or status answer is small.
    s.take(4 << 20).read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse::<u16>().ok())
        .with_context(|| format!("not an HTTP answer from {target}"))?;
    Ok((code, body.to_string()))
}

#[derive(Args)]
struct RunArgs {
    /// TOML config file.
    #[arg(long, env = "SHOAL_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (identity key, snapshots, blobs).
    #[arg(long, env = "SHOAL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// libp2p listen multiaddr (repeatable; default TCP and QUIC on any port).
    #[arg(long, env = "SHOAL_LISTEN", value_delimiter = ',')]
    listen: Vec<String>,
    /// REST API address host:port (default 127.0.0.1:7070).
    #[arg(long, env = "SHOAL_API")]
    api: Option<String>,
    /// Bootstrap peer multiaddr ending in /p2p/<peer id> (repeatable).
    #[arg(long, env = "SHOAL_BOOTSTRAP", value_delimiter = ',')]
    bootstrap: Vec<String>,
    /// Model spec (shoal-learn), e.g. `ht` or `ht:grace_period=100`.
    #[arg(long, env = "SHOAL_MODEL")]
    model: Option<String>,
    /// Source: CSV/CSV.gz/ARFF path or generator spec like `sea:seed=3,n=100000`.
    #[arg(long, env = "SHOAL_SOURCE")]
    source: Option<String>,
    /// Keep reading the source file as it grows.
    #[arg(long, env = "SHOAL_FOLLOW")]
    follow: bool,
    /// Samples per second from the source (0 = as fast as possible).
    #[arg(long, env = "SHOAL_RATE")]
    rate: Option<f64>,
    /// Snapshot every N samples.
    #[arg(long, env = "SHOAL_SNAPSHOT_EVERY")]
    snapshot_every: Option<u64>,
    /// Snapshot at least every S seconds while learning.
    #[arg(long, env = "SHOAL_SNAPSHOT_SECS")]
    snapshot_secs: Option<u64>,
    /// Pre-shared network key file (pnet; forces TCP only).
    #[arg(long, env = "SHOAL_NETWORK_KEY")]
    network_key: Option<PathBuf>,
    /// Bearer token required by mutating API calls.
    #[arg(long, env = "SHOAL_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Disable mDNS discovery.
    #[arg(long, env = "SHOAL_NO_MDNS")]
    no_mdns: bool,
    /// Only allow these peer ids to connect (repeatable).
    #[arg(long, env = "SHOAL_ALLOW_PEER", value_delimiter = ',')]
    allow_peer: Vec<String>,
    /// Most established connections.
    #[arg(long, env = "SHOAL_MAX_CONNECTIONS")]
    max_connections: Option<u32>,
    /// Log format.
    #[arg(long, env = "SHOAL_LOG_FORMAT", value_parser = ["human", "json"])]
    log_format: Option<String>,
    /// Market tasks that run at once here (default 1).
    #[arg(long, env = "SHOAL_TASK_SLOTS")]
    task_slots: Option<u16>,
    /// Placement of owned tasks (default auction).
    #[arg(long, env = "SHOAL_PLACEMENT", value_parser = ["auction", "local", "random", "round_robin", "least_loaded", "data_locality"])]
    placement: Option<String>,
    /// Do not merge peers' models (federation off).
    #[arg(long, env = "SHOAL_NO_FEDERATION")]
    no_federation: bool,
    /// TEST ONLY: publish poisoned models (flip_labels, scale, nan), for
    /// defence experiments.
    #[arg(long, hide = true, value_parser = ["flip_labels", "scale", "nan"])]
    byzantine: Option<String>,
}

impl RunArgs {
    /// File (or defaults), then env and flags (clap merged those two).
    fn into_config(self) -> anyhow::Result<Config> {
        let mut c = match &self.config {
            Some(p) => Config::load(p)?,
            None => Config::default(),
        };
        if let Some(v) = self.data_dir {
            c.data_dir = v;
        }
        if !self.listen.is_empty() {
            c.listen = self.listen;
        }
        if let Some(v) = self.api {
            c.api = v;
        }
        if !self.bootstrap.is_empty() {
            c.bootstrap = self.bootstrap;
        }
        if let Some(v) = self.model {
            c.model = v;
        }
        if let Some(v) = self.source {
            c.source = Some(v);
        }
        c.follow |= self.follow;
        if let Some(v) = self.rate {
            c.rate = v;
        }
        if let Some(v) = self.snapshot_every {
            c.snapshot_every = v;
        }
        if let Some(v) = self.snapshot_secs {
            c.snapshot_secs = v;
        }
        if let Some(v) = self.network_key {
            c.network_key = Some(v);
        }
        if let Some(v) = self.api_token {
            c.api_token = Some(v);
        }
        if self.no_mdns {
            c.mdns = false;
        }
        if !self.allow_peer.is_empty() {
            c.allow_peers = self.allow_peer;
        }
        if let Some(v) = self.max_connections {
            c.max_connections = v;
        }
        if let Some(v) = self.log_format {
            c.log_format = v;
        }
        if let Some(v) = self.task_slots {
            c.task_slots = v;
        }
        if let Some(v) = self.placement {
            c.placement = v;
        }
        if self.no_federation {
            c.federation = false;
        }
        if let Some(v) = self.byzantine {
            c.byzantine = Some(v);
        }
        Ok(c)
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,libp2p_mdns=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Init { data_dir, config } => {
            init_logging("human");
            let config = config.unwrap_or_else(|| data_dir.join("shoal.toml"));
            let peer = shoal_node::node::init(&data_dir, &config)?;
            println!("{peer}");
            eprintln!(
                "data dir {}, config {}",
                data_dir.display(),
                config.display()
            );
            Ok(())
        }
        Cmd::Health { api, path, timeout } => {
            let timeout = Duration::from_secs(timeout.max(1));
            match http_get(&api, &path, timeout) {
                Ok((200, body)) => {
                    println!("{}", body.trim_end());
                    Ok(())
                }
                Ok((code, body)) => {
                    eprintln!("{api}{path}: HTTP {code}: {}", body.trim_end());
                    std::process::exit(1)
                }
                Err(e) => {
                    eprintln!("{api}{path}: {e:#}");
                    std::process::exit(1)
                }
            }
        }
        Cmd::Run(args) => {
            let config = args.into_config().context("reading configuration")?;
            init_logging(&config.log_format);
            shoal_node::node::run(config).await
        }
    }
}
