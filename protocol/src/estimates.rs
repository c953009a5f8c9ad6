//! What this node has measured about its peers and itself: round-trip time,
//! bandwidth per direction, and compute speed per task kind.
//!
//! Every estimate is an exponentially weighted moving average of real
//! observations (pings, completed transfers, task runtimes). An estimate
//! that has not been refreshed for `stale_after_ms` decays toward its prior
//! with half-life `half_life_ms`: a link measured an hour ago says little
//! about the link now, and the market should not keep trusting it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::msg::{NodeStatus, SpeedClass, TaskKind};
use crate::types::{Millis, NodeId};

/// Tuning of [`PeerEstimates`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EstimatesConfig {
    /// Peers tracked at most; the least recently seen is evicted.
    pub max_peers: usize,
    /// EWMA weight of a new RTT sample.
    pub rtt_alpha: f64,
    /// EWMA weight of a new bandwidth sample.
    pub bandwidth_alpha: f64,
    /// EWMA weight of a new speed sample.
    pub speed_alpha: f64,
    /// RTT assumed before any ping, ms.
    pub prior_rtt_ms: f64,
    /// Bandwidth assumed before any transfer, bytes per ms (1000 = 1 MB/s).
    pub prior_bandwidth: f64,
    /// Transfers smaller than this say more about latency than bandwidth and
    /// are ignored.
    pub min_transfer_bytes: u64,
    /// An estimate older than this starts decaying toward its prior, ms.
    pub stale_after_ms: u64,
    /// Half-life of that decay, ms.
    pub half_life_ms: u64,
}

impl Default for EstimatesConfig {
    fn default() -> Self {
        EstimatesConfig {
            max_peers: 256,
            rtt_alpha: 0.2,
            bandwidth_alpha: 0.3,
            speed_alpha: 0.3,
            prior_rtt_ms: 50.0,
            prior_bandwidth: 1000.0,
            min_transfer_bytes: 64 * 1024,
            stale_after_ms: 60_000,
            half_life_ms: 120_000,
        }
    }
}

/// Direction of a transfer, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Peer → us.
    Inbound,
    /// Us → peer.
    Outbound,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
struct Ewma {
    value: f64,
    updated: Millis,
}

impl Ewma {
    fn update(slot: &mut Option<Ewma>, sample: f64, alpha: f64, now: Millis) {
        *slot = Some(match *slot {
            None => Ewma {
                value: sample,
                updated: now,
            },
            Some(e) => Ewma {
                value: e.value + alpha * (sample - e.value),
                updated: now,
            },
        });
    }

    /// Value at `now`, decayed toward `prior` once stale.
    fn at(slot: &Option<Ewma>, prior: f64, now: Millis, cfg: &EstimatesConfig) -> f64 {
        let Some(e) = slot else { return prior };
        let age = now.since(e.updated);
        if age <= cfg.stale_after_ms {
            return e.value;
        }
        let halves = (age - cfg.stale_after_ms) as f64 / cfg.half_life_ms.max(1) as f64;
        let w = 0.5f64.powf(halves);
        prior + (e.value - prior) * w
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PeerEntry {
    last_seen: Millis,
    rtt: Option<Ewma>,
    bw_in: Option<Ewma>,
    bw_out: Option<Ewma>,
    speed: [Option<Ewma>; 4],
    speed_prior: f64,
    free_slots: Option<u16>,
    free_memory: Option<u64>,
    /// When the last status arrived (not persisted: after a restart a
    /// status is only trusted once a new one has come).
    #[serde(skip)]
    status_at: Option<Millis>,
}

impl PeerEntry {
    fn new(now: Millis) -> Self {
        PeerEntry {
            last_seen: now,
            rtt: None,
            bw_in: None,
            bw_out: None,
            speed: [None; 4],
            speed_prior: SpeedClass::Small.nominal_speed(),
            free_slots: None,
            free_memory: None,
            status_at: None,
        }
    }
}

fn kind_index(k: TaskKind) -> usize {
    match k {
        TaskKind::Train => 0,
        TaskKind::Evaluate => 1,
        TaskKind::Predict => 2,
        TaskKind::Select => 3,
    }
}

// Speeds outside this range are measurement noise or lies.
const MIN_SPEED: f64 = 1e-3;
const MAX_SPEED: f64 = 1e4;

/// Per-peer RTT, bandwidth and speed estimates, plus this node's own speed.
/// Serializable so the node can persist it across restarts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerEstimates {
    cfg: EstimatesConfig,
    peers: BTreeMap<NodeId, PeerEntry>,
    local_speed: [Option<Ewma>; 4],
    local_speed_prior: f64,
    /// How long a task would wait for a slot here now (set by the node
    /// from its executor; not persisted, it is only true right now).
    #[serde(skip)]
    local_wait_ms: u64,
    /// Inbound transfers running or waiting their turn here (set with
    /// the wait; not persisted either).
    #[serde(skip)]
    local_inbound: usize,
}

impl PeerEstimates {
    /// Empty estimates; `local_class` seeds our own speed prior.
    pub fn new(cfg: EstimatesConfig, local_class: SpeedClass) -> Self {
        PeerEstimates {
            cfg,
            peers: BTreeMap::new(),
            local_speed: [None; 4],
            local_speed_prior: local_class.nominal_speed(),
            local_wait_ms: 0,
            local_inbound: 0,
        }
    }

    /// Records how long a new task would wait for a slot here now.
    pub fn set_local_wait_ms(&mut self, ms: u64) {
        self.local_wait_ms = ms;
    }

    /// How long a new task would wait for a slot here, as last recorded.
    pub fn local_wait_ms(&self) -> u64 {
        self.local_wait_ms
    }

    /// Records the inbound transfers running or waiting their turn here,
    /// which a fetch for a task kept here would share the downlink with.
    pub fn set_local_inbound(&mut self, transfers: usize) {
        self.local_inbound = transfers;
    }

    /// Inbound transfers here, as last recorded.
    pub fn local_inbound(&self) -> usize {
        self.local_inbound
    }

    /// The configuration.
    pub fn config(&self) -> &EstimatesConfig {
        &self.cfg
    }

    fn entry(&mut self, peer: NodeId, now: Millis) -> &mut PeerEntry {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.cfg.max_peers.max(1) {
            // Evict the least recently seen (the smallest id among equals);
            // O(n), n is small and bounded.
            if let Some(old) = self
                .peers
                .iter()
                .min_by(|a, b| a.1.last_seen.cmp(&b.1.last_seen).then_with(|| a.0.cmp(b.0)))
                .map(|(id, _)| *id)
            {
                self.peers.remove(&old);
            }
        }
        let e = self
            .peers
            .entry(peer)
            .or_insert_with(|| PeerEntry::new(now));
        if now > e.last_seen {
            e.last_seen = now;
        }
        e
    }

    /// Marks `peer` as seen (connected, gossiped) without a measurement.
    pub fn on_seen(&mut self, peer: NodeId, now: Millis) {
        self.entry(peer, now);
    }

    /// Forgets `peer` (disconnected for good, or banned).
    pub fn remove(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }

    /// A ping round trip of `rtt_ms`.
    pub fn on_ping(&mut self, peer: NodeId, rtt_ms: u64, now: Millis) {
        let alpha = self.cfg.rtt_alpha;
        let e = self.entry(peer, now);
        Ewma::update(&mut e.rtt, rtt_ms as f64, alpha, now);
    }

    /// A completed transfer of `bytes` in `duration_ms`. Transfers below
    /// `min_transfer_bytes` only mark the peer as seen.
    pub fn on_transfer(
        &mut self,
        peer: NodeId,
        dir: Direction,
        bytes: u64,
        duration_ms: u64,
        now: Millis,
    ) {
        let (min, alpha) = (self.cfg.min_transfer_bytes, self.cfg.bandwidth_alpha);
        let e = self.entry(peer, now);
        if bytes < min {
            return;
        }
        let bw = bytes as f64 / duration_ms.max(1) as f64;
        let slot = match dir {
            Direction::Inbound => &mut e.bw_in,
            Direction::Outbound => &mut e.bw_out,
        };
        Ewma::update(slot, bw, alpha, now);
    }

    /// `peer` ran a task of `kind` and `cost` reference-ms in `runtime_ms`.
    pub fn on_runtime(
        &mut self,
        peer: NodeId,
        kind: TaskKind,
        cost: u64,
        runtime_ms: u64,
        now: Millis,
    ) {
        let alpha = self.cfg.speed_alpha;
        let e = self.entry(peer, now);
        if let Some(s) = speed_sample(cost, runtime_ms) {
            Ewma::update(&mut e.speed[kind_index(kind)], s, alpha, now);
        }
    }

    /// This node ran a task of `kind` and `cost` in `runtime_ms`.
    pub fn on_local_runtime(&mut self, kind: TaskKind, cost: u64, runtime_ms: u64, now: Millis) {
        if let Some(s) = speed_sample(cost, runtime_ms) {
            Ewma::update(
                &mut self.local_speed[kind_index(kind)],
                s,
                self.cfg.speed_alpha,
                now,
            );
        }
    }

    /// A status message from `status.node`: seeds the speed prior from its
    /// class and records free slots and memory.
    pub fn on_status(&mut self, status: &NodeStatus, now: Millis) {
        let e = self.entry(status.node, now);
        e.speed_prior = status.speed_class.nominal_speed();
        e.free_slots = Some(status.free_slots);
        e.free_memory = Some(status.free_memory_bytes);
        e.status_at = Some(now);
    }

    /// [`Self::on_status`] for every tracked peer that `status` has a
    /// status of, in one pass over the peers (no lookup, no eviction: only
    /// peers already tracked are touched). A status whose `node` is not
    /// the peer it was asked for is ignored.
    pub fn on_status_each(
        &mut self,
        now: Millis,
        mut status: impl FnMut(&NodeId) -> Option<NodeStatus>,
    ) {
        for (id, e) in self.peers.iter_mut() {
            let Some(st) = status(id) else { continue };
            if st.node != *id {
                continue;
            }
            if now > e.last_seen {
                e.last_seen = now;
            }
            e.speed_prior = st.speed_class.nominal_speed();
            e.free_slots = Some(st.free_slots);
            e.free_memory = Some(st.free_memory_bytes);
            e.status_at = Some(now);
        }
    }

    /// RTT to `peer`, ms.
    pub fn rtt_ms(&self, peer: &NodeId, now: Millis) -> f64 {
        self.rtt_of(self.peers.get(peer), now)
    }

    fn rtt_of(&self, e: Option<&PeerEntry>, now: Millis) -> f64 {
        let prior = self.cfg.prior_rtt_ms;
        e.map_or(prior, |e| Ewma::at(&e.rtt, prior, now, &self.cfg))
    }

    /// Bandwidth with `peer` in direction `dir`, bytes per ms.
    pub fn bandwidth(&self, peer: &NodeId, dir: Direction, now: Millis) -> f64 {
        self.bandwidth_of(self.peers.get(peer), dir, now)
    }

    fn bandwidth_of(&self, e: Option<&PeerEntry>, dir: Direction, now: Millis) -> f64 {
        let prior = self.cfg.prior_bandwidth;
        let v = e.map_or(prior, |e| {
            let slot = match dir {
                Direction::Inbound => &e.bw_in,
                Direction::Outbound => &e.bw_out,
            };
            Ewma::at(slot, prior, now, &self.cfg)
        });
        v.max(1e-3)
    }

    /// Time to move `bytes` with `peer`, ms: one RTT plus bytes / bandwidth.
    pub fn transfer_ms(&self, peer: &NodeId, dir: Direction, bytes: u64, now: Millis) -> f64 {
        self.rtt_ms(peer, now) + bytes as f64 / self.bandwidth(peer, dir, now)
    }

    /// Compute speed of `peer` for `kind`, reference-ms per ms.
    pub fn speed(&self, peer: &NodeId, kind: TaskKind, now: Millis) -> f64 {
        self.speed_of(self.peers.get(peer), kind, now)
    }

    fn speed_of(&self, e: Option<&PeerEntry>, kind: TaskKind, now: Millis) -> f64 {
        e.map_or(SpeedClass::Small.nominal_speed(), |e| {
            Ewma::at(&e.speed[kind_index(kind)], e.speed_prior, now, &self.cfg)
        })
    }

    /// This node's compute speed for `kind`.
    pub fn local_speed(&self, kind: TaskKind, now: Millis) -> f64 {
        Ewma::at(
            &self.local_speed[kind_index(kind)],
            self.local_speed_prior,
            now,
            &self.cfg,
        )
        .clamp(MIN_SPEED, MAX_SPEED)
    }

    /// Free slots last reported by `peer`, if it reported.
    pub fn free_slots(&self, peer: &NodeId) -> Option<u16> {
        self.peers.get(peer).and_then(|e| e.free_slots)
    }

    /// Free memory last reported by `peer`, if it reported.
    pub fn free_memory(&self, peer: &NodeId) -> Option<u64> {
        self.peers.get(peer).and_then(|e| e.free_memory)
    }

    /// When the last status of `peer` arrived, if one did since this
    /// node started (statuses are not persisted).
    pub fn status_at(&self, peer: &NodeId) -> Option<Millis> {
        self.peers.get(peer).and_then(|e| e.status_at)
    }

    /// Peers currently tracked.
    pub fn peers(&self) -> impl Iterator<Item = NodeId> + '_ {
        self.peers.keys().copied()
    }

    /// Peers currently tracked, in the order of [`Self::peers`], each with
    /// its estimates at hand: the same answers as the by-id getters,
    /// without a map lookup per question (an owner scores every peer for
    /// every auction).
    pub fn peer_refs(&self) -> impl Iterator<Item = PeerRef<'_>> + '_ {
        self.peers.iter().map(move |(id, e)| PeerRef {
            est: self,
            id: *id,
            e,
        })
    }

    /// Number of peers tracked.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// No peer tracked.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// When `peer` was last seen.
    pub fn last_seen(&self, peer: &NodeId) -> Option<Millis> {
        self.peers.get(peer).map(|e| e.last_seen)
    }
}

/// One tracked peer and its estimates (see [`PeerEstimates::peer_refs`]).
#[derive(Debug, Clone, Copy)]
pub struct PeerRef<'a> {
    est: &'a PeerEstimates,
    id: NodeId,
    e: &'a PeerEntry,
}

impl PeerRef<'_> {
    /// The peer.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// As [`PeerEstimates::rtt_ms`].
    pub fn rtt_ms(&self, now: Millis) -> f64 {
        self.est.rtt_of(Some(self.e), now)
    }

    /// As [`PeerEstimates::bandwidth`].
    pub fn bandwidth(&self, dir: Direction, now: Millis) -> f64 {
        self.est.bandwidth_of(Some(self.e), dir, now)
    }

    /// As [`PeerEstimates::speed`].
    pub fn speed(&self, kind: TaskKind, now: Millis) -> f64 {
        self.est.speed_of(Some(self.e), kind, now)
    }

    /// As [`PeerEstimates::free_slots`].
    pub fn free_slots(&self) -> Option<u16> {
        self.e.free_slots
    }

    /// As [`PeerEstimates::free_memory`].
    pub fn free_memory(&self) -> Option<u64> {
        self.e.free_memory
    }
}

fn speed_sample(cost: u64, runtime_ms: u64) -> Option<f64> {
    if cost == 0 {
        return None;
    }
    Some((cost as f64 / runtime_ms.max(1) as f64).clamp(MIN_SPEED, MAX_SPEED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn est() -> PeerEstimates {
        PeerEstimates::new(
            EstimatesConfig {
                max_peers: 3,
                ..Default::default()
            },
            SpeedClass::Small,
        )
    }

    #[test]
    fn rtt_is_smoothed() {
        let mut e = est();
        let p = NodeId::from_u64(1);
        assert_eq!(e.rtt_ms(&p, Millis(0)), 50.0);
        e.on_ping(p, 10, Millis(0));
        assert_eq!(e.rtt_ms(&p, Millis(0)), 10.0);
        e.on_ping(p, 110, Millis(1));
        let r = e.rtt_ms(&p, Millis(1));
        assert!(r > 10.0 && r < 110.0, "{r}");
    }

    #[test]
    fn small_transfers_are_ignored_and_stale_estimates_decay() {
        let mut e = est();
        let p = NodeId::from_u64(1);
        e.on_transfer(p, Direction::Inbound, 1000, 1, Millis(0));
        assert_eq!(e.bandwidth(&p, Direction::Inbound, Millis(0)), 1000.0);
        e.on_transfer(p, Direction::Inbound, 1_000_000, 100, Millis(0));
        assert_eq!(e.bandwidth(&p, Direction::Inbound, Millis(0)), 10_000.0);
        assert_eq!(e.bandwidth(&p, Direction::Outbound, Millis(0)), 1000.0);
        let fresh = e.bandwidth(&p, Direction::Inbound, Millis(60_000));
        let half = e.bandwidth(&p, Direction::Inbound, Millis(180_000));
        let old = e.bandwidth(&p, Direction::Inbound, Millis(10_000_000));
        assert_eq!(fresh, 10_000.0);
        assert!((half - 5_500.0).abs() < 1.0, "{half}");
        assert!((old - 1000.0).abs() < 1.0, "{old}");
    }

    #[test]
    fn speed_per_kind() {
        let mut e = est();
        let p = NodeId::from_u64(1);
        e.on_runtime(p, TaskKind::Train, 1000, 250, Millis(0));
        assert_eq!(e.speed(&p, TaskKind::Train, Millis(0)), 4.0);
        assert_eq!(e.speed(&p, TaskKind::Predict, Millis(0)), 1.0);
        e.on_local_runtime(TaskKind::Train, 100, 0, Millis(0));
        assert_eq!(e.local_speed(TaskKind::Train, Millis(0)), 100.0);
    }

    #[test]
    fn evicts_least_recently_seen() {
        let mut e = est();
        for i in 0..3 {
            e.on_seen(NodeId::from_u64(i), Millis(i));
        }
        e.on_seen(NodeId::from_u64(0), Millis(10));
        e.on_seen(NodeId::from_u64(9), Millis(11));
        let left: Vec<_> = e.peers().collect();
        assert_eq!(
            left,
            vec![
                NodeId::from_u64(0),
                NodeId::from_u64(2),
                NodeId::from_u64(9)
            ]
        );
    }
}
