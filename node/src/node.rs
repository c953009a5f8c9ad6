//! Wiring: opens the store, loads the identity, starts the source, the
//! learner, the network event loop and the API, prints the one-line banner
//! scripts read, and shuts everything down in order on SIGINT/SIGTERM
//! (the learner writes a final snapshot before the process exits).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use libp2p::identity::Keypair;
use libp2p::{Multiaddr, PeerId};
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::learner::{self, LearnerConfig};
use crate::metrics::NodeMetrics;
use crate::net::{self, NetConfig};
use crate::store::Store;
use crate::{api, source};

/// Loads (or creates and stores) the node's ed25519 identity.
pub fn identity(store: &Store) -> anyhow::Result<Keypair> {
    let bytes = store
        .identity_or_create(|| {
            Keypair::generate_ed25519()
                .to_protobuf_encoding()
                .unwrap_or_default()
        })
        .context("loading the node identity")?;
    Keypair::from_protobuf_encoding(&bytes).context("decoding the stored identity key")
}

/// `shoal-node init`: creates the data dir and key, writes a commented
/// config file (unless one exists), and returns the peer id.
pub fn init(data_dir: &Path, config_path: &Path) -> anyhow::Result<PeerId> {
    let store = Store::open(data_dir)
        .with_context(|| format!("opening data dir {}", data_dir.display()))?;
    let key = identity(&store)?;
    if config_path.exists() {
        info!(path = %config_path.display(), "config exists; left unchanged");
    } else {
        if let Some(parent) = config_path.parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
        }
        std::fs::write(config_path, crate::config::commented_toml(data_dir))
            .with_context(|| format!("writing {}", config_path.display()))?;
    }
    Ok(key.public().to_peer_id())
}

fn parse_addrs(what: &str, list: &[String]) -> anyhow::Result<Vec<Multiaddr>> {
    list.iter()
        .map(|s| {
            s.parse::<Multiaddr>()
                .with_context(|| format!("{what} address `{s}` is not a multiaddr"))
        })
        .collect()
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// `shoal-node run`: runs until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = Store::open(&config.data_dir)
        .with_context(|| format!("opening data dir {}", config.data_dir.display()))?;
    let keypair = identity(&store)?;
    let peer_id = keypair.public().to_peer_id();

    let psk = match &config.network_key {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading network key {}", path.display()))?;
            Some(net::swarm::parse_psk(&text).with_context(|| path.display().to_string())?)
        }
        None => None,
    };
    let allow = config
        .allow_peers
        .iter()
        .map(|p| {
            p.parse::<PeerId>()
                .with_context(|| format!("allow_peers: `{p}` is not a peer id"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let net_cfg = NetConfig {
        listen: parse_addrs("listen", &config.listen)?,
        bootstrap: parse_addrs("bootstrap", &config.bootstrap)?,
        psk,
        mdns: config.mdns,
        allow,
        max_connections: config.max_connections.max(1),
        status_interval: Duration::from_secs(config.status_interval_secs.max(1)),
    };
    if !config.rate.is_finite() || config.rate < 0.0 {
        bail!("rate must be a number >= 0, got {}", config.rate);
    }

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = NodeMetrics::register(&mut registry);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);

    let source = match &config.source {
        Some(src) => {
            let offset = learner::start_offset(&store).context("reading the ingest offset")?;
            let handle = source::start(src, offset, config.follow)
                .with_context(|| format!("opening source `{src}`"))?;
            info!(source = %src, offset, "source opened");
            Some(handle)
        }
        None => None,
    };
    let (learner_client, learner_task) = learner::spawn(
        store.clone(),
        LearnerConfig {
            model_spec: config.model.clone(),
            source: config.source.clone(),
            rate: config.rate,
            snapshot_every: config.snapshot_every,
            snapshot_secs: config.snapshot_secs,
            blob_budget_bytes: config.blob_budget_bytes,
            byzantine: crate::federation::parse_byzantine(config.byzantine.as_deref())?,
        },
        metrics.clone(),
        source,
        shutdown_rx.clone(),
    )
    .context("starting the learner")?;

    let (net_client, event_loop) = net::new(
        keypair,
        net_cfg,
        learner_client.clone(),
        store.clone(),
        &mut registry,
        metrics.clone(),
    )
    .context("starting the network")?;
    let net_task = tokio::spawn(event_loop.run(shutdown_rx.clone()));

    let placement: crate::market::Placement = config
        .placement
        .parse()
        .map_err(|e: String| anyhow::anyhow!(e))?;
    let (market, market_task) = crate::market::spawn(
        peer_id,
        crate::market::MarketConfig {
            task_slots: config.task_slots.max(1),
            placement,
            blob_budget_bytes: config.blob_budget_bytes,
        },
        store.clone(),
        net_client.clone(),
        shutdown_rx.clone(),
    )
    .context("starting the task market")?;
    net_client
        .set_market(market.hook())
        .await
        .context("connecting the market to the network")?;

    let federation = crate::federation::FederationHandle::default();
    let federation_task = if config.federation {
        crate::federation::spawn(
            peer_id,
            net_client.clone(),
            learner_client.clone(),
            crate::federation::scheduler_config(),
            federation.clone(),
            shutdown_rx.clone(),
        )
    } else {
        None
    };

    // Give the listeners a moment to report their addresses for the banner.
    let mut listen = Vec::new();
    for _ in 0..50 {
        if let Ok(info) = net_client.info().await {
            listen = info.listen_addrs;
            if !listen.is_empty() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let listener = tokio::net::TcpListener::bind(&config.api)
        .await
        .with_context(|| format!("binding the API to {}", config.api))?;
    let api_addr = listener.local_addr().context("API local address")?;
    let state = api::AppState::new(api::Inner {
        learner: learner_client,
        net: net_client,
        store,
        registry: Arc::new(registry),
        metrics,
        peer_id: peer_id.to_string(),
        started,
        api_token: config.api_token.clone().filter(|t| !t.is_empty()),
        blob_budget_bytes: config.blob_budget_bytes,
        market,
        federation,
    });
    if config.api_token.is_none() && !api_addr.ip().is_loopback() {
        tracing::warn!(%api_addr, "API exposed beyond loopback without --api-token");
    }
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "shoal-node {peer_id} api=http://{api_addr} listen=[{}]",
            listen.join(",")
        );
        let _ = out.flush();
    }
    info!(%peer_id, %api_addr, "node started");

    let mut api_shutdown = shutdown_rx.clone();
    let server = axum::serve(listener, api::router(state)).with_graceful_shutdown(async move {
        let _ = api_shutdown.wait_for(|v| *v).await;
    });
    let server_task = tokio::spawn(async move { server.await });

    shutdown_signal().await;
    info!("shutting down: draining and writing a final snapshot");
    let _ = shutdown_tx.send(true);
    if let Err(e) = learner_task.await {
        tracing::error!(error = %e, "learner task failed");
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), net_task).await;
    let _ = tokio::time::timeout(Duration::from_secs(5), market_task).await;
    if let Some(t) = federation_task {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    let _ = tokio::time::timeout(Duration::from_secs(5), server_task).await;
    Ok(())
}
