//! The composed behaviour and the transport stack.
//!
//! Gossipsub is tuned for small meshes (a handful of Raspberry Pis): the
//! defaults (`mesh_n` 6, `mesh_n_low` 5) would leave a 3-node mesh forever
//! "under-subscribed" and gossip-only. Here `mesh_n_low` 1, `mesh_n` 3,
//! `mesh_n_high` 6, `mesh_outbound_min` 1 and a 1 s heartbeat. Peer scoring is
//! on with default weights except IP colocation, which would punish every
//! node of a testnet running on one host.

use std::time::Duration;

use libp2p::core::upgrade;
use libp2p::gossipsub::{self, MessageAuthenticity};
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, identify, kad, mdns, noise, ping, tcp, yamux,
    StreamProtocol, Swarm, SwarmBuilder, Transport,
};
use shoal_protocol::{IDENTIFY_PROTOCOL_VERSION, MAX_GOSSIP_BYTES, PROTOCOL_REQ};

use super::codec::ShoalCodec;
use super::{NetConfig, NetError};

/// Kademlia protocol id: a Shoal-only DHT, not the public IPFS one.
pub const KAD_PROTOCOL: StreamProtocol = StreamProtocol::new("/shoal/kad/1.0.0");

/// One field per protocol.
#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub limits: connection_limits::Behaviour,
    pub allow: Toggle<allow_block_list::Behaviour<allow_block_list::AllowedPeers>>,
    pub identify: identify::Behaviour,
    pub ping: ping::Behaviour,
    pub mdns: Toggle<mdns::tokio::Behaviour>,
    pub kad: kad::Behaviour<kad::store::MemoryStore>,
    pub gossipsub: gossipsub::Behaviour,
    pub rr: request_response::Behaviour<ShoalCodec>,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn behaviour(key: &libp2p::identity::Keypair, cfg: &NetConfig) -> Result<Behaviour, BoxError> {
    let local = key.public().to_peer_id();
    let limits = connection_limits::Behaviour::new(
        connection_limits::ConnectionLimits::default()
            .with_max_established(Some(cfg.max_connections))
            .with_max_established_per_peer(Some(2))
            .with_max_pending_incoming(Some(32))
            .with_max_pending_outgoing(Some(32)),
    );
    let allow = if cfg.allow.is_empty() {
        Toggle::from(None)
    } else {
        let mut b = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
        for p in &cfg.allow {
            b.allow_peer(*p);
        }
        Toggle::from(Some(b))
    };
    let identify = identify::Behaviour::new(
        identify::Config::new(IDENTIFY_PROTOCOL_VERSION.to_string(), key.public())
            .with_agent_version(format!("shoal-node/{}", env!("CARGO_PKG_VERSION"))),
    );
    // Ping every 5 s with a 10 s timeout: the event loop closes a connection
    // after two failures in a row, so a dead link is noticed within ~30 s.
    let ping = ping::Behaviour::new(
        ping::Config::new()
            .with_interval(Duration::from_secs(5))
            .with_timeout(Duration::from_secs(10)),
    );
    let mdns = if cfg.mdns {
        Toggle::from(Some(mdns::tokio::Behaviour::new(
            mdns::Config::default(),
            local,
        )?))
    } else {
        Toggle::from(None)
    };
    let mut kcfg = kad::Config::new(KAD_PROTOCOL);
    kcfg.set_query_timeout(Duration::from_secs(30));
    let mut kad = kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), kcfg);
    kad.set_mode(Some(kad::Mode::Server));
    let gcfg = gossipsub::ConfigBuilder::default()
        .mesh_n_low(1)
        .mesh_n(3)
        .mesh_n_high(6)
        .mesh_outbound_min(1)
        .gossip_lazy(3)
        .heartbeat_interval(Duration::from_secs(1))
        .validation_mode(gossipsub::ValidationMode::Strict)
        // Room for the signature and protobuf framing around our frames.
        .max_transmit_size(MAX_GOSSIP_BYTES + 1024)
        .build()
        .map_err(|e| format!("gossipsub config: {e}"))?;
    let mut gossipsub = gossipsub::Behaviour::new(MessageAuthenticity::Signed(key.clone()), gcfg)
        .map_err(|e| format!("gossipsub: {e}"))?;
    let params = gossipsub::PeerScoreParams {
        ip_colocation_factor_weight: 0.0,
        ..Default::default()
    };
    gossipsub
        .with_peer_score(params, gossipsub::PeerScoreThresholds::default())
        .map_err(|e| format!("gossipsub scoring: {e}"))?;
    let rr = request_response::Behaviour::with_codec(
        ShoalCodec,
        [(StreamProtocol::new(PROTOCOL_REQ), ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(Duration::from_secs(20))
            .with_max_concurrent_streams(64),
    );
    Ok(Behaviour {
        limits,
        allow,
        identify,
        ping,
        mdns,
        kad,
        gossipsub,
        rr,
    })
}

/// Builds the swarm: TCP + QUIC, or TCP under pnet when a key is set.
pub fn build(
    keypair: libp2p::identity::Keypair,
    cfg: &NetConfig,
    registry: &mut prometheus_client::registry::Registry,
) -> Result<Swarm<Behaviour>, NetError> {
    let err = |e: &dyn std::fmt::Display| NetError::Build(e.to_string());
    let idle = Duration::from_secs(120);
    let swarm = match cfg.psk {
        None => SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| err(&e))?
            .with_quic()
            .with_dns()
            .map_err(|e| err(&e))?
            .with_bandwidth_metrics(registry)
            .with_behaviour(|key| behaviour(key, cfg))
            .map_err(|e| err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build(),
        Some(psk) => SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_other_transport(|key| -> Result<_, BoxError> {
                let noise = noise::Config::new(key)?;
                Ok(
                    tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                        .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                        .upgrade(upgrade::Version::V1Lazy)
                        .authenticate(noise)
                        .multiplex(yamux::Config::default()),
                )
            })
            .map_err(|e| err(&e))?
            .with_dns()
            .map_err(|e| err(&e))?
            .with_bandwidth_metrics(registry)
            .with_behaviour(|key| behaviour(key, cfg))
            .map_err(|e| err(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
            .build(),
    };
    Ok(swarm)
}

/// A network key failed to parse.
#[derive(Debug, thiserror::Error)]
#[error("network key: {0}")]
pub struct KeyError(String);

/// Parses a pre-shared key: either the go-ipfs / libp2p key file format
///
/// ```text
/// /key/swarm/psk/1.0.0/
/// /base16/
/// <64 hex characters>
/// ```
///
/// or just the 64 hex characters (surrounding whitespace ignored).
pub fn parse_psk(text: &str) -> Result<PreSharedKey, KeyError> {
    let t = text.trim();
    if t.starts_with("/key/swarm/psk/") {
        return t
            .parse::<PreSharedKey>()
            .map_err(|e| KeyError(e.to_string()));
    }
    if t.len() != 64 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(KeyError(
            "expected 64 hex characters or a /key/swarm/psk/1.0.0/ file".into(),
        ));
    }
    let mut key = [0u8; 32];
    for (i, out) in key.iter_mut().enumerate() {
        *out = u8::from_str_radix(&t[2 * i..2 * i + 2], 16).map_err(|e| KeyError(e.to_string()))?;
    }
    Ok(PreSharedKey::new(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_formats_agree() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let a = parse_psk(hex).unwrap();
        let b = parse_psk(&format!("/key/swarm/psk/1.0.0/\n/base16/\n{hex}\n")).unwrap();
        assert_eq!(a.fingerprint().to_string(), b.fingerprint().to_string());
        assert!(parse_psk("abc").is_err());
        assert!(parse_psk(&"zz".repeat(32)).is_err());
    }
}
