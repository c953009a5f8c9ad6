//! The libp2p mesh: one [`EventLoop`] owns the `Swarm`; everything else
//! holds a cheap [`Client`] and sends [`Command`]s over a bounded channel,
//! with a `oneshot` for the reply (the shape of rust-libp2p's file-sharing
//! example).
//!
//! Protocols: TCP and QUIC (TCP only with a pre-shared network key: pnet
//! wraps a byte stream, QUIC has its own encryption underneath that pnet
//! cannot wrap), noise, yamux, identify, ping, mDNS (optional), Kademlia in
//! server mode, gossipsub for small digests (`shoal-protocol`'s status and
//! model announce), request-response carrying `shoal-protocol` frames
//! ([`codec::ShoalCodec`]) for manifests and chunks of model snapshots and
//! data blobs, connection limits and an optional allow-list.
//!
//! Every map here is bounded: peers, mesh view, pending requests, inbound
//! work in flight.

pub mod codec;
pub mod fetch;
pub mod swarm;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use libp2p::gossipsub::{self, IdentTopic};
use libp2p::metrics::{Metrics, Recorder};
use libp2p::request_response::{self, OutboundRequestId, ResponseChannel};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{ConnectionId, SwarmEvent};
use libp2p::{identify, kad, mdns, multiaddr::Protocol, Multiaddr, PeerId, Swarm};
use serde::Serialize;
use shoal_protocol::{
    chunk_of, decode_gossip, encode, Addr, BoundedVec, GossipMessage, Hash, Manifest, ModelDigest,
    NodeId, NodeStatus, RejectReason, Request, Response, SpeedClass, IDENTIFY_PROTOCOL_VERSION,
    TOPIC_MODEL, TOPIC_STATUS,
};
use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tracing::{debug, info, info_span, warn};

use crate::learner::{accuracy_bp, LearnerClient, Published};
use crate::metrics::NodeMetrics;
use crate::store::Store;
use swarm::{Behaviour, BehaviourEvent};

/// Commands queued for the event loop.
const COMMANDS: usize = 256;
/// Outbound requests awaiting a response.
const MAX_PENDING: usize = 256;
/// Peers remembered (connected or recently seen).
const MAX_PEERS: usize = 1024;
/// Nodes remembered from status gossip.
const MAX_MESH: usize = 4096;
/// Addresses remembered per peer.
const MAX_ADDRS_PER_PEER: usize = 8;
/// Inbound requests that need the store, served concurrently.
const INBOUND_SLOTS: usize = 8;
/// Published snapshots kept servable (peers may be mid-fetch of the previous).
const KEEP_PUBLISHED: usize = 2;
/// Keep dialing known peers until this many are connected.
const TARGET_PEERS: usize = 8;
/// Smoothing of bandwidth estimates.
const EWMA_ALPHA: f64 = 0.3;
/// Consecutive failed pings after which a connection is taken for dead and
/// closed. A cut link sends no FIN or RST, and libp2p's ping no longer
/// closes connections itself.
const MAX_PING_FAILURES: u32 = 2;
/// A connected peer not heard from (ping, gossip, identify, chunks) for this
/// long is disconnected, as a backstop to the ping failures.
const IDLE_LIMIT: Duration = Duration::from_secs(45);
/// How often liveness is checked and bootstrap peers are redialed.
const LIVENESS_TICK: Duration = Duration::from_secs(2);
/// Backoff between redials of a bootstrap address: doubles from the first to
/// the last value, back to the first once connected.
const REDIAL_MIN: Duration = Duration::from_secs(2);
const REDIAL_MAX: Duration = Duration::from_secs(30);

/// A network failure as seen by a caller.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("the network event loop has stopped")]
    Gone,
    #[error("too many requests in flight")]
    Busy,
    #[error("request to {peer} failed: {why}")]
    Request { peer: PeerId, why: String },
    #[error("dial {addr}: {why}")]
    Dial { addr: String, why: String },
    #[error("building the swarm: {0}")]
    Build(String),
}

/// What `GET /v1/peers` shows of one peer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PeerView {
    pub id: String,
    pub connected: bool,
    pub addresses: Vec<String>,
    pub agent: Option<String>,
    /// Last ping round-trip time.
    pub rtt_ms: Option<f64>,
    /// Download bandwidth from this peer, measured on chunk transfers (EWMA).
    pub bandwidth_in_bytes_per_s: Option<f64>,
    /// Bytes received from this peer in chunk transfers.
    pub bytes_in: u64,
    /// Seconds since we last heard from this peer.
    pub last_seen_s: f64,
    /// Model version from its last gossip.
    pub model_version: Option<u64>,
    /// Gossipsub peer score.
    pub score: Option<f64>,
}

/// What `GET /v1/mesh` shows of one node (from its last status gossip).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MeshView {
    pub peer_id: String,
    pub samples_seen: u64,
    pub accuracy: f64,
    pub speed_class: String,
    pub task_slots: u16,
    pub free_slots: u16,
    pub listen_addrs: Vec<String>,
    pub model: Option<DigestView>,
    /// Seconds since this status arrived.
    pub age_s: f64,
}

/// A model digest in JSON.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DigestView {
    pub kind: String,
    pub version: u64,
    pub hash: String,
    pub size: u64,
    pub samples: u64,
    pub accuracy: f64,
}

impl From<&ModelDigest> for DigestView {
    fn from(d: &ModelDigest) -> Self {
        DigestView {
            kind: d.kind.to_string(),
            version: d.version,
            hash: d.hash.to_hex(),
            size: d.size,
            samples: d.samples,
            accuracy: f64::from(d.accuracy_bp) / 10_000.0,
        }
    }
}

/// Summary of the network side for `GET /v1/status`.
#[derive(Debug, Clone, Serialize)]
pub struct NetInfo {
    pub peers: usize,
    pub listen_addrs: Vec<String>,
    pub mesh_nodes: usize,
}

/// Requests to the event loop.
pub enum Command {
    Request {
        peer: PeerId,
        request: Request,
        reply: oneshot::Sender<Result<Response, NetError>>,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerView>>,
    },
    Mesh {
        reply: oneshot::Sender<Vec<MeshView>>,
    },
    Info {
        reply: oneshot::Sender<NetInfo>,
    },
    /// The newest model digest a peer announced.
    PeerDigest {
        peer: PeerId,
        reply: oneshot::Sender<Option<ModelDigest>>,
    },
    /// Routes auction requests, pings and status gossip to the market.
    SetMarket(crate::market::MarketHook),
    /// Close every connection to a peer (federation: persistent offender).
    Disconnect {
        peer: PeerId,
    },
}

/// Cheap, cloneable handle to the event loop.
#[derive(Clone)]
pub struct Client {
    tx: mpsc::Sender<Command>,
}

impl Client {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, NetError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(make(reply))
            .await
            .map_err(|_| NetError::Gone)?;
        rx.await.map_err(|_| NetError::Gone)
    }

    /// Sends `request` to `peer` and waits for its response.
    pub async fn request(&self, peer: PeerId, request: Request) -> Result<Response, NetError> {
        self.ask(|reply| Command::Request {
            peer,
            request,
            reply,
        })
        .await?
    }

    pub async fn peers(&self) -> Result<Vec<PeerView>, NetError> {
        self.ask(|reply| Command::Peers { reply }).await
    }

    pub async fn mesh(&self) -> Result<Vec<MeshView>, NetError> {
        self.ask(|reply| Command::Mesh { reply }).await
    }

    pub async fn info(&self) -> Result<NetInfo, NetError> {
        self.ask(|reply| Command::Info { reply }).await
    }

    pub async fn peer_digest(&self, peer: PeerId) -> Result<Option<ModelDigest>, NetError> {
        self.ask(|reply| Command::PeerDigest { peer, reply }).await
    }

    /// Closes every connection to `peer` (it may dial back; federation
    /// then ignores it).
    pub async fn disconnect(&self, peer: PeerId) -> Result<(), NetError> {
        self.tx
            .send(Command::Disconnect { peer })
            .await
            .map_err(|_| NetError::Gone)
    }

    /// Connects the task market (auction traffic, pings, status gossip).
    pub async fn set_market(&self, hook: crate::market::MarketHook) -> Result<(), NetError> {
        self.tx
            .send(Command::SetMarket(hook))
            .await
            .map_err(|_| NetError::Gone)
    }
}

/// Settings of the network layer.
#[derive(Debug, Clone)]
pub struct NetConfig {
    pub listen: Vec<Multiaddr>,
    pub bootstrap: Vec<Multiaddr>,
    pub psk: Option<libp2p::pnet::PreSharedKey>,
    pub mdns: bool,
    pub allow: Vec<PeerId>,
    pub max_connections: u32,
    pub status_interval: Duration,
}

#[derive(Debug)]
struct PeerState {
    connected: bool,
    addrs: VecDeque<Multiaddr>,
    agent: Option<String>,
    rtt: Option<Duration>,
    bandwidth: Option<f64>,
    bytes_in: u64,
    last_seen: Instant,
}

impl PeerState {
    fn new() -> Self {
        PeerState {
            connected: false,
            addrs: VecDeque::new(),
            agent: None,
            rtt: None,
            bandwidth: None,
            bytes_in: 0,
            last_seen: Instant::now(),
        }
    }

    fn add_addr(&mut self, a: Multiaddr) {
        if self.addrs.contains(&a) {
            return;
        }
        if self.addrs.len() >= MAX_ADDRS_PER_PEER {
            self.addrs.pop_front();
        }
        self.addrs.push_back(a);
    }
}

struct MeshEntry {
    status: NodeStatus,
    received: Instant,
}

/// One bootstrap address and its redial schedule. An address without
/// `/p2p/<id>` (e.g. `/dns4/node1/tcp/4001`) learns its peer id from the
/// first connection it yields.
struct Bootstrap {
    addr: Multiaddr,
    peer: Option<PeerId>,
    /// The connection of the last dial made without a known peer id.
    dialing: Option<ConnectionId>,
    next_try: Instant,
    backoff: Duration,
}

impl Bootstrap {
    fn new(addr: Multiaddr) -> Self {
        Bootstrap {
            peer: peer_of(&addr),
            addr,
            dialing: None,
            next_try: Instant::now(),
            backoff: REDIAL_MIN,
        }
    }
}

/// An established connection as the liveness checks see it.
struct Conn {
    peer: PeerId,
    ping_failures: u32,
    /// Closing was requested; it no longer counts as a peer.
    closing: bool,
}

struct Pending {
    peer: PeerId,
    started: Instant,
    reply: oneshot::Sender<Result<Response, NetError>>,
}

/// Owns the swarm. Run it with [`EventLoop::run`].
pub struct EventLoop {
    swarm: Swarm<Behaviour>,
    local: PeerId,
    node_id: Option<NodeId>,
    commands: mpsc::Receiver<Command>,
    responses_tx: mpsc::Sender<(ResponseChannel<Response>, Response)>,
    responses: mpsc::Receiver<(ResponseChannel<Response>, Response)>,
    pending: HashMap<OutboundRequestId, Pending>,
    peers: HashMap<PeerId, PeerState>,
    mesh: HashMap<PeerId, MeshEntry>,
    published: VecDeque<Arc<Published>>,
    learner: LearnerClient,
    store: Store,
    libp2p_metrics: Metrics,
    metrics: NodeMetrics,
    cfg: NetConfig,
    bootstrap_peers: HashSet<PeerId>,
    boot: Vec<Bootstrap>,
    conns: HashMap<ConnectionId, Conn>,
    listen_addrs: Vec<Multiaddr>,
    inbound_slots: Arc<Semaphore>,
    status_topic: IdentTopic,
    model_topic: IdentTopic,
    market: Option<crate::market::MarketHook>,
}

/// Builds the swarm, starts listening and dialing, and returns the loop and
/// its client.
pub fn new(
    keypair: libp2p::identity::Keypair,
    cfg: NetConfig,
    learner: LearnerClient,
    store: Store,
    registry: &mut prometheus_client::registry::Registry,
    metrics: NodeMetrics,
) -> Result<(Client, EventLoop), NetError> {
    let local = keypair.public().to_peer_id();
    let mut swarm = swarm::build(keypair, &cfg, registry)?;
    let libp2p_metrics = Metrics::new(registry);
    let status_topic = IdentTopic::new(TOPIC_STATUS);
    let model_topic = IdentTopic::new(TOPIC_MODEL);
    for t in [&status_topic, &model_topic] {
        swarm
            .behaviour_mut()
            .gossipsub
            .subscribe(t)
            .map_err(|e| NetError::Build(format!("subscribing {t}: {e}")))?;
    }
    for addr in &cfg.listen {
        let is_quic = addr.iter().any(|p| matches!(p, Protocol::QuicV1));
        if is_quic && cfg.psk.is_some() {
            warn!(%addr, "network key set: QUIC cannot run under pnet, not listening on it");
            continue;
        }
        swarm
            .listen_on(addr.clone())
            .map_err(|e| NetError::Build(format!("listen on {addr}: {e}")))?;
    }
    let mut bootstrap_peers = HashSet::new();
    let mut boot = Vec::new();
    for addr in &cfg.bootstrap {
        match peer_of(addr) {
            Some(peer) if peer == local => {}
            Some(peer) => {
                swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
                bootstrap_peers.insert(peer);
                boot.push(Bootstrap::new(addr.clone()));
            }
            // Dialed without a peer id; the connection tells who answered.
            None => boot.push(Bootstrap::new(addr.clone())),
        }
    }
    let (tx, commands) = mpsc::channel(COMMANDS);
    let (responses_tx, responses) = mpsc::channel(INBOUND_SLOTS * 2);
    let node_id = NodeId::from_bytes(&local.to_bytes()).ok();
    Ok((
        Client { tx },
        EventLoop {
            swarm,
            local,
            node_id,
            commands,
            responses_tx,
            responses,
            pending: HashMap::new(),
            peers: HashMap::new(),
            mesh: HashMap::new(),
            published: VecDeque::new(),
            learner,
            store,
            libp2p_metrics,
            metrics,
            cfg,
            bootstrap_peers,
            boot,
            conns: HashMap::new(),
            listen_addrs: Vec::new(),
            inbound_slots: Arc::new(Semaphore::new(INBOUND_SLOTS)),
            status_topic,
            model_topic,
            market: None,
        },
    ))
}

/// The `/p2p/<id>` of a multiaddr.
pub fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    addr.iter().find_map(|p| match p {
        Protocol::P2p(id) => Some(id),
        _ => None,
    })
}

impl EventLoop {
    /// Runs until `shutdown` turns true.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut status_tick = tokio::time::interval(self.cfg.status_interval);
        status_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut maintenance = tokio::time::interval(Duration::from_secs(10));
        maintenance.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut published = self.learner.published_watch();
        let mut kad_bootstrapped = false;
        let mut liveness = tokio::time::interval(LIVENESS_TICK);
        liveness.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd),
                    None => break,
                },
                Some((channel, response)) = self.responses.recv() => {
                    if self.swarm.behaviour_mut().rr.send_response(channel, response).is_err() {
                        debug!("peer went away before its response");
                    }
                }
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                Ok(()) = published.changed() => {
                    let latest = published.borrow_and_update().clone();
                    if let Some(p) = latest {
                        self.publish_model(p);
                    }
                }
                _ = status_tick.tick() => self.publish_status(),
                _ = liveness.tick() => {
                    self.close_idle();
                    self.redial_bootstrap();
                }
                _ = maintenance.tick() => {
                    self.maintain();
                    if !kad_bootstrapped || self.connected_count() < TARGET_PEERS {
                        kad_bootstrapped = self.swarm.behaviour_mut().kad.bootstrap().is_ok();
                    }
                }
            }
        }
        info!("network event loop stopped");
    }

    /// Peers with at least one connection that is not being closed.
    fn connected_count(&self) -> usize {
        self.live_peers().len()
    }

    fn live_peers(&self) -> HashSet<PeerId> {
        self.conns
            .values()
            .filter(|c| !c.closing)
            .map(|c| c.peer)
            .collect()
    }

    /// Starts closing a connection taken for dead and stops counting it.
    fn close_dead(&mut self, id: ConnectionId, why: &str) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.closing {
            return;
        }
        c.closing = true;
        let peer = c.peer;
        warn!(%peer, why, "closing a dead connection");
        self.swarm.close_connection(id);
        if !self.live_peers().contains(&peer) {
            if let Some(s) = self.peers.get_mut(&peer) {
                s.connected = false;
            }
        }
    }

    /// Closes the connections of peers not heard from for [`IDLE_LIMIT`].
    fn close_idle(&mut self) {
        let idle: Vec<ConnectionId> = self
            .conns
            .iter()
            .filter(|(_, c)| !c.closing)
            .filter(|(_, c)| {
                self.peers
                    .get(&c.peer)
                    .is_some_and(|s| s.last_seen.elapsed() > IDLE_LIMIT)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            self.close_dead(id, "idle");
        }
    }

    /// Dials every bootstrap address whose peer is not connected, with
    /// exponential backoff per address, so that a node cut off or restarted
    /// finds the mesh again once the network is back.
    fn redial_bootstrap(&mut self) {
        let live = self.live_peers();
        let now = Instant::now();
        for b in &mut self.boot {
            if b.peer.is_some_and(|p| live.contains(&p)) {
                b.backoff = REDIAL_MIN;
                b.next_try = now;
                continue;
            }
            if now < b.next_try {
                continue;
            }
            b.next_try = now + b.backoff;
            b.backoff = (b.backoff * 2).min(REDIAL_MAX);
            // Without /p2p/ in the address, whoever answers is accepted
            // (a bootstrap node whose data dir was reset gets a new id).
            let opts = match peer_of(&b.addr) {
                Some(p) => DialOpts::peer_id(p).addresses(vec![b.addr.clone()]).build(),
                None => DialOpts::unknown_peer_id().address(b.addr.clone()).build(),
            };
            let id = opts.connection_id();
            debug!(addr = %b.addr, "dialing bootstrap peer");
            match self.swarm.dial(opts) {
                Ok(()) => {
                    if peer_of(&b.addr).is_none() {
                        b.dialing = Some(id);
                    }
                }
                Err(e) => debug!(addr = %b.addr, error = %e, "dialing bootstrap peer"),
            }
        }
    }

    fn peer_mut(&mut self, peer: PeerId) -> &mut PeerState {
        if !self.peers.contains_key(&peer) && self.peers.len() >= MAX_PEERS {
            // Forget the disconnected peer heard from longest ago.
            let victim = self
                .peers
                .iter()
                .filter(|(_, s)| !s.connected)
                .min_by_key(|(_, s)| s.last_seen)
                .map(|(p, _)| *p);
            if let Some(v) = victim {
                self.peers.remove(&v);
            }
        }
        self.peers.entry(peer).or_insert_with(PeerState::new)
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Request {
                peer,
                request,
                reply,
            } => {
                if self.pending.len() >= MAX_PENDING {
                    let _ = reply.send(Err(NetError::Busy));
                    return;
                }
                let id = self.swarm.behaviour_mut().rr.send_request(&peer, request);
                self.pending.insert(
                    id,
                    Pending {
                        peer,
                        started: Instant::now(),
                        reply,
                    },
                );
            }
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_views());
            }
            Command::Mesh { reply } => {
                let _ = reply.send(self.mesh_views());
            }
            Command::Info { reply } => {
                let _ = reply.send(NetInfo {
                    peers: self.connected_count(),
                    listen_addrs: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
                    mesh_nodes: self.mesh.len(),
                });
            }
            Command::PeerDigest { peer, reply } => {
                let d = self.mesh.get(&peer).and_then(|e| e.status.model.clone());
                let _ = reply.send(d);
            }
            Command::SetMarket(hook) => self.market = Some(hook),
            Command::Disconnect { peer } => {
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    fn peer_views(&self) -> Vec<PeerView> {
        let gs = &self.swarm.behaviour().gossipsub;
        let mut v: Vec<PeerView> = self
            .peers
            .iter()
            .map(|(id, s)| PeerView {
                id: id.to_string(),
                connected: s.connected,
                addresses: s.addrs.iter().map(|a| a.to_string()).collect(),
                agent: s.agent.clone(),
                rtt_ms: s.rtt.map(|d| d.as_secs_f64() * 1000.0),
                bandwidth_in_bytes_per_s: s.bandwidth,
                bytes_in: s.bytes_in,
                last_seen_s: s.last_seen.elapsed().as_secs_f64(),
                model_version: self
                    .mesh
                    .get(id)
                    .and_then(|e| e.status.model.as_ref().map(|m| m.version)),
                score: gs.peer_score(id),
            })
            .collect();
        v.sort_by(|a, b| b.connected.cmp(&a.connected).then(a.id.cmp(&b.id)));
        v
    }

    fn mesh_views(&self) -> Vec<MeshView> {
        let mut v: Vec<MeshView> = self
            .mesh
            .iter()
            .map(|(id, e)| MeshView {
                peer_id: id.to_string(),
                samples_seen: e.status.samples_seen,
                accuracy: f64::from(e.status.accuracy_bp) / 10_000.0,
                speed_class: format!("{:?}", e.status.speed_class),
                task_slots: e.status.task_slots,
                free_slots: e.status.free_slots,
                listen_addrs: e
                    .status
                    .listen_addrs
                    .iter()
                    .map(|a| a.to_string())
                    .collect(),
                model: e.status.model.as_ref().map(DigestView::from),
                age_s: e.received.elapsed().as_secs_f64(),
            })
            .collect();
        v.sort_by(|a, b| a.peer_id.cmp(&b.peer_id));
        v
    }

    fn publish(&mut self, msg: &GossipMessage) {
        let topic = match msg {
            GossipMessage::Status(_) => self.status_topic.clone(),
            GossipMessage::ModelAnnounce { .. } => self.model_topic.clone(),
        };
        let frame = match encode(msg) {
            Ok(f) => f,
            Err(e) => {
                warn!(error = %e, "encoding gossip");
                return;
            }
        };
        if let Err(e) = self.swarm.behaviour_mut().gossipsub.publish(topic, frame) {
            // No subscribed peers yet is normal while the mesh forms.
            debug!(error = %e, "gossip not published");
        }
    }

    fn own_status(&self) -> Option<NodeStatus> {
        let node = self.node_id?;
        let st = self.learner.status();
        let model = self.published.back().map(|p| p.digest.clone());
        let mut addrs: BoundedVec<Addr, { shoal_protocol::msg::MAX_ADDRS }> = BoundedVec::new();
        for a in &self.listen_addrs {
            if let Ok(s) = Addr::try_new(&a.to_string()) {
                if addrs.try_push(s).is_err() {
                    break;
                }
            }
        }
        let (mem_total, mem_free) = memory_info();
        Some(NodeStatus {
            node,
            speed_class: speed_class(),
            memory_bytes: mem_total,
            free_memory_bytes: mem_free,
            task_slots: self.market.as_ref().map_or(0, |m| m.slots),
            free_slots: self.market.as_ref().map_or(0, |m| m.free_slots()),
            model,
            samples_seen: st.samples_seen,
            accuracy_bp: accuracy_bp(st.accuracy),
            listen_addrs: addrs,
        })
    }

    fn publish_status(&mut self) {
        if let Some(st) = self.own_status() {
            self.publish(&GossipMessage::Status(st));
        }
        let peers = self.connected_count();
        self.metrics.peers.set(peers as i64);
        self.metrics.mesh_nodes.set(self.mesh.len() as i64);
    }

    fn publish_model(&mut self, p: Arc<Published>) {
        if self
            .published
            .back()
            .is_some_and(|q| q.digest.hash == p.digest.hash)
        {
            return;
        }
        if self.published.len() >= KEEP_PUBLISHED {
            self.published.pop_front();
        }
        let digest = p.digest.clone();
        self.published.push_back(p);
        if let Some(node) = self.node_id {
            self.publish(&GossipMessage::ModelAnnounce { node, digest });
        }
    }

    fn find_published(&self, hash: &Hash) -> Option<&Arc<Published>> {
        self.published.iter().rev().find(|p| p.digest.hash == *hash)
    }

    /// Tops up connections from Kademlia (bootstrap peers are redialed by
    /// [`Self::redial_bootstrap`]).
    fn maintain(&mut self) {
        let connected = self.live_peers();
        if connected.len() >= TARGET_PEERS {
            return;
        }
        let mut candidates = Vec::new();
        for bucket in self.swarm.behaviour_mut().kad.kbuckets() {
            for entry in bucket.iter() {
                let p = *entry.node.key.preimage();
                if !connected.contains(&p) {
                    candidates.push(p);
                }
            }
        }
        for p in candidates
            .into_iter()
            .take(TARGET_PEERS.saturating_sub(connected.len()))
        {
            let _ = self.swarm.dial(p);
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        self.libp2p_metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!(%address, "listening");
                if !self.listen_addrs.contains(&address) {
                    self.listen_addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| a != &address);
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                let _span = info_span!("peer", peer = %peer_id).entered();
                debug!(addr = %endpoint.get_remote_address(), "connected");
                self.conns.insert(
                    connection_id,
                    Conn {
                        peer: peer_id,
                        ping_failures: 0,
                        closing: false,
                    },
                );
                if let Some(b) = self
                    .boot
                    .iter_mut()
                    .find(|b| b.dialing == Some(connection_id))
                {
                    b.dialing = None;
                    if b.peer != Some(peer_id) {
                        info!(addr = %b.addr, peer = %peer_id, "bootstrap address answered");
                        b.peer = Some(peer_id);
                    }
                    let addr = b.addr.clone();
                    self.bootstrap_peers.insert(peer_id);
                    self.swarm.behaviour_mut().kad.add_address(&peer_id, addr);
                }
                let s = self.peer_mut(peer_id);
                s.connected = true;
                s.last_seen = Instant::now();
                if endpoint.is_dialer() {
                    s.add_addr(endpoint.get_remote_address().clone());
                }
                if self.bootstrap_peers.contains(&peer_id) {
                    let _ = self.swarm.behaviour_mut().kad.bootstrap();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                connection_id,
                ..
            } => {
                self.conns.remove(&connection_id);
                if !self.live_peers().contains(&peer_id) {
                    debug!(peer = %peer_id, "disconnected");
                    if let Some(s) = self.peers.get_mut(&peer_id) {
                        s.connected = false;
                    }
                }
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id,
                error,
                connection_id,
            } => {
                debug!(peer = ?peer_id, error = %error, "dial failed");
                for b in &mut self.boot {
                    if b.dialing == Some(connection_id) {
                        b.dialing = None;
                    }
                }
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!(error = %error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(ev) => self.on_behaviour_event(ev),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, ev: BehaviourEvent) {
        match ev {
            BehaviourEvent::Identify(e) => {
                self.libp2p_metrics.record(&e);
                if let identify::Event::Received { peer_id, info, .. } = e {
                    if info.protocol_version != IDENTIFY_PROTOCOL_VERSION {
                        warn!(peer = %peer_id, version = %info.protocol_version, "not a compatible Shoal peer; disconnecting");
                        let _ = self.swarm.disconnect_peer_id(peer_id);
                        return;
                    }
                    let speaks_kad = info.protocols.contains(&swarm::KAD_PROTOCOL);
                    let addrs: Vec<Multiaddr> = info
                        .listen_addrs
                        .into_iter()
                        .take(MAX_ADDRS_PER_PEER)
                        .collect();
                    for a in &addrs {
                        if speaks_kad {
                            self.swarm
                                .behaviour_mut()
                                .kad
                                .add_address(&peer_id, a.clone());
                        }
                    }
                    let s = self.peer_mut(peer_id);
                    s.agent = Some(info.agent_version.chars().take(64).collect());
                    s.last_seen = Instant::now();
                    for a in addrs {
                        s.add_addr(a);
                    }
                }
            }
            BehaviourEvent::Ping(e) => {
                self.libp2p_metrics.record(&e);
                match &e.result {
                    Ok(_) => {
                        if let Some(c) = self.conns.get_mut(&e.connection) {
                            c.ping_failures = 0;
                        }
                    }
                    // A peer that does not speak ping is not dead.
                    Err(libp2p::ping::Failure::Unsupported) => {}
                    Err(err) => {
                        debug!(peer = %e.peer, error = %err, "ping failed");
                        let dead = self.conns.get_mut(&e.connection).is_some_and(|c| {
                            c.ping_failures += 1;
                            c.ping_failures >= MAX_PING_FAILURES
                        });
                        if dead {
                            self.close_dead(e.connection, "ping failures");
                        }
                    }
                }
                if let Ok(rtt) = e.result {
                    if let Some(m) = &self.market {
                        let _ = m
                            .events
                            .try_send(crate::market::NetEvent::Ping { peer: e.peer, rtt });
                    }
                    let s = self.peer_mut(e.peer);
                    s.rtt = Some(rtt);
                    s.last_seen = Instant::now();
                }
            }
            BehaviourEvent::Mdns(e) => {
                if let mdns::Event::Discovered(list) = e {
                    for (peer, addr) in list.into_iter().take(64) {
                        if peer == self.local {
                            continue;
                        }
                        self.swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&peer, addr.clone());
                        if !self.swarm.is_connected(&peer) {
                            let _ = self.swarm.dial(addr.with_p2p(peer).unwrap_or_else(|a| a));
                        }
                    }
                }
            }
            BehaviourEvent::Kad(e) => {
                self.libp2p_metrics.record(&e);
                if let kad::Event::RoutingUpdated { peer, .. } = e {
                    debug!(%peer, "kademlia routing updated");
                }
            }
            BehaviourEvent::Gossipsub(e) => {
                self.libp2p_metrics.record(&e);
                if let gossipsub::Event::Message { message, .. } = e {
                    self.on_gossip(message);
                }
            }
            BehaviourEvent::Rr(e) => self.on_rr_event(e),
            BehaviourEvent::Limits(v) => match v {},
            BehaviourEvent::Allow(v) => match v {},
        }
    }

    fn on_gossip(&mut self, message: gossipsub::Message) {
        let Some(source) = message.source else {
            return;
        };
        if source == self.local {
            return;
        }
        let msg = match decode_gossip(&message.data) {
            Ok(m) => m,
            Err(e) => {
                debug!(peer = %source, error = %e, "undecodable gossip");
                return;
            }
        };
        let source_bytes = source.to_bytes();
        match msg {
            GossipMessage::Status(st) => {
                // The signed author must be the node the status speaks for.
                if st.node.as_bytes() != source_bytes.as_slice() {
                    debug!(peer = %source, "status for another node; ignored");
                    return;
                }
                if let Some(m) = &self.market {
                    let _ = m.events.try_send(crate::market::NetEvent::Status {
                        peer: source,
                        status: st.clone(),
                    });
                }
                if !self.mesh.contains_key(&source) && self.mesh.len() >= MAX_MESH {
                    let oldest = self
                        .mesh
                        .iter()
                        .min_by_key(|(_, e)| e.received)
                        .map(|(p, _)| *p);
                    if let Some(o) = oldest {
                        self.mesh.remove(&o);
                    }
                }
                self.mesh.insert(
                    source,
                    MeshEntry {
                        status: st,
                        received: Instant::now(),
                    },
                );
            }
            GossipMessage::ModelAnnounce { node, digest } => {
                if node.as_bytes() != source_bytes.as_slice() {
                    return;
                }
                if let Some(e) = self.mesh.get_mut(&source) {
                    let newer = e
                        .status
                        .model
                        .as_ref()
                        .is_none_or(|m| m.version <= digest.version);
                    if newer {
                        e.status.model = Some(digest);
                    }
                }
            }
        }
        if let Some(s) = self.peers.get_mut(&source) {
            s.last_seen = Instant::now();
        }
    }

    fn on_rr_event(&mut self, e: request_response::Event<Request, Response>) {
        match e {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    let Some(p) = self.pending.remove(&request_id) else {
                        return;
                    };
                    if let Response::Chunk(c) = &response {
                        let bytes = c.data.len() as u64;
                        let secs = p.started.elapsed().as_secs_f64().max(1e-4);
                        let s = self.peer_mut(p.peer);
                        s.bytes_in += bytes;
                        let rate = bytes as f64 / secs;
                        s.bandwidth = Some(match s.bandwidth {
                            Some(b) => b + EWMA_ALPHA * (rate - b),
                            None => rate,
                        });
                        s.last_seen = Instant::now();
                    }
                    let _ = p.reply.send(Ok(response));
                }
            },
            request_response::Event::OutboundFailure {
                request_id,
                error,
                peer,
                ..
            } => {
                if let Some(p) = self.pending.remove(&request_id) {
                    let _ = p.reply.send(Err(NetError::Request {
                        peer,
                        why: error.to_string(),
                    }));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                debug!(%peer, error = %error, "inbound request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_request(&mut self, peer: PeerId, request: Request, channel: ResponseChannel<Response>) {
        self.metrics.inbound_requests.inc();
        let _span = info_span!("request", peer = %peer).entered();
        let immediate = match &request {
            Request::ModelFetch { hash } => Some(match self.find_published(hash) {
                Some(p) => Response::ModelManifest {
                    digest: p.digest.clone(),
                    manifest: p.manifest.clone(),
                },
                None => Response::NotFound { hash: *hash },
            }),
            Request::ManifestFetch { hash } => self
                .find_published(hash)
                .map(|p| Response::Manifest(p.manifest.clone())),
            Request::ChunkFetch { hash, index } => self.find_published(hash).map(|p| {
                chunk_of(&p.bytes, *hash, *index).map_or(
                    Response::Rejected {
                        reason: RejectReason::Invalid,
                    },
                    Response::Chunk,
                )
            }),
            // Auction traffic goes to the market; it is one-way, so the
            // answer is a bare Ack (or Busy when the market is swamped).
            Request::TaskAnnounce { .. }
            | Request::Bid(_)
            | Request::Award { .. }
            | Request::AwardAck { .. }
            | Request::Heartbeat { .. }
            | Request::Result(_)
            | Request::Cancel { .. } => Some(match &self.market {
                Some(m) => match m.events.try_send(crate::market::NetEvent::Request {
                    peer,
                    request: request.clone(),
                }) {
                    Ok(()) => Response::Ack,
                    Err(_) => Response::Rejected {
                        reason: RejectReason::Busy,
                    },
                },
                None => Response::Rejected {
                    reason: RejectReason::Unsupported,
                },
            }),
        };
        if let Some(resp) = immediate {
            let _ = self.swarm.behaviour_mut().rr.send_response(channel, resp);
            return;
        }
        // A data blob: read it off the event loop, bounded in concurrency.
        let Ok(permit) = self.inbound_slots.clone().try_acquire_owned() else {
            let _ = self.swarm.behaviour_mut().rr.send_response(
                channel,
                Response::Rejected {
                    reason: RejectReason::Busy,
                },
            );
            return;
        };
        let store = self.store.clone();
        let tx = self.responses_tx.clone();
        tokio::spawn(async move {
            let resp = tokio::task::spawn_blocking(move || serve_blob(&store, &request))
                .await
                .unwrap_or(Response::Rejected {
                    reason: RejectReason::Busy,
                });
            drop(permit);
            if tx.send((channel, resp)).await.is_err() {
                debug!("event loop gone before blob response");
            }
        });
    }
}

/// Answers a manifest or chunk request for a stored data blob.
fn serve_blob(store: &Store, request: &Request) -> Response {
    let hash = match request {
        Request::ManifestFetch { hash } | Request::ChunkFetch { hash, .. } => *hash,
        _ => {
            return Response::Rejected {
                reason: RejectReason::Unsupported,
            }
        }
    };
    let body = match store.get_blob(&hash) {
        Ok(Some(b)) => b,
        Ok(None) => return Response::NotFound { hash },
        Err(e) => {
            warn!(error = %e, "reading blob");
            return Response::Rejected {
                reason: RejectReason::Busy,
            };
        }
    };
    match request {
        Request::ManifestFetch { .. } => match Manifest::of(&body) {
            Ok(m) => Response::Manifest(m),
            Err(_) => Response::NotFound { hash },
        },
        Request::ChunkFetch { index, .. } => chunk_of(&body, hash, *index).map_or(
            Response::Rejected {
                reason: RejectReason::Invalid,
            },
            Response::Chunk,
        ),
        _ => Response::Rejected {
            reason: RejectReason::Unsupported,
        },
    }
}

/// Coarse speed class of this machine, seeding peers' priors.
fn speed_class() -> SpeedClass {
    if cfg!(any(target_arch = "arm", target_arch = "aarch64")) {
        SpeedClass::Small
    } else {
        SpeedClass::Desktop
    }
}

/// (total, available) memory in bytes from /proc/meminfo; zeros elsewhere.
fn memory_info() -> (u64, u64) {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return (0, 0);
    };
    let field = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("MemTotal:"), field("MemAvailable:"))
}
