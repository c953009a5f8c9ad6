//! When to announce our model, and whom to pull peers' models from.
//!
//! * Announce: our [`ModelDigest`] on every change (at most once per
//!   `min_announce_gap_ms`) and at least every `announce_interval_ms`.
//! * Pull: from peers whose announced version is newer than what we last
//!   took from them, whose digest is fresh (`max_digest_age_ms`), who are not
//!   backing off, at most `fanout` pulls at once, best-scored peers first.
//! * Score: an EWMA of merge outcomes per peer (+1 merged, -1 rejected by
//!   validation). Peers below `min_score` are not pulled from: their updates
//!   keep failing the checks, whatever the reason.
//! * Backoff: a failed or rejected pull doubles the peer's pause, from
//!   `backoff_base_ms` up to `backoff_max_ms`; a merge resets it.
//!
//! What the merge itself accepts is `shoal-learn`'s business; this module
//! only decides when and from whom.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::Action;
use crate::msg::{GossipMessage, ModelDigest, ModelKind};
use crate::types::{Hash, Millis, NodeId};

/// Tuning of the [`MergeScheduler`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeConfig {
    /// Announce at least this often, ms.
    pub announce_interval_ms: u64,
    /// Announce at most this often, ms.
    pub min_announce_gap_ms: u64,
    /// Concurrent pulls at most.
    pub fanout: usize,
    /// Digests older than this are too stale to pull, ms.
    pub max_digest_age_ms: u64,
    /// Pull from one peer at most this often, ms.
    pub min_pull_interval_ms: u64,
    /// A pull not reported within this is counted as failed, ms.
    pub pull_timeout_ms: u64,
    /// First backoff after a failure, ms.
    pub backoff_base_ms: u64,
    /// Longest backoff, ms.
    pub backoff_max_ms: u64,
    /// Peers tracked at most (least recently heard is evicted).
    pub max_peers: usize,
    /// EWMA weight of a merge outcome in a peer's score.
    pub score_alpha: f64,
    /// Peers scoring below this are not pulled from.
    pub min_score: f64,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            announce_interval_ms: 30_000,
            min_announce_gap_ms: 2_000,
            fanout: 2,
            max_digest_age_ms: 120_000,
            min_pull_interval_ms: 10_000,
            pull_timeout_ms: 60_000,
            backoff_base_ms: 2_000,
            backoff_max_ms: 300_000,
            max_peers: 128,
            score_alpha: 0.3,
            min_score: -0.5,
        }
    }
}

/// How a pull ended.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum PullOutcome {
    /// Fetched, validated and merged.
    Merged,
    /// Fetched but refused by validation (limits, NaN, norm, local score).
    Rejected,
    /// The transfer failed (timeout, not found, bad chunks).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PeerModel {
    digest: ModelDigest,
    heard: Millis,
    taken_version: Option<u64>,
    last_pull: Option<Millis>,
    in_flight: Option<(Hash, Millis)>,
    failures: u32,
    backoff_until: Millis,
    score: f64,
}

/// Counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergeStats {
    /// Announces broadcast.
    pub announces: u64,
    /// Pulls started.
    pub pulls: u64,
    /// Pulls merged.
    pub merged: u64,
    /// Pulls rejected by validation.
    pub rejected: u64,
    /// Pulls failed or timed out.
    pub failed: u64,
}

/// The merge scheduler of one node and one model kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MergeScheduler {
    me: NodeId,
    kind: ModelKind,
    cfg: MergeConfig,
    local: Option<ModelDigest>,
    last_announce: Option<Millis>,
    dirty: bool,
    peers: BTreeMap<NodeId, PeerModel>,
    stats: MergeStats,
    #[serde(skip)]
    last_timer: Option<Millis>,
}

impl MergeScheduler {
    /// A scheduler for models of `kind`.
    pub fn new(me: NodeId, kind: ModelKind, cfg: MergeConfig) -> Self {
        MergeScheduler {
            me,
            kind,
            cfg,
            local: None,
            last_announce: None,
            dirty: false,
            peers: BTreeMap::new(),
            stats: MergeStats::default(),
            last_timer: None,
        }
    }

    /// Counters.
    pub fn stats(&self) -> &MergeStats {
        &self.stats
    }

    /// Score of `peer` (0 when unknown), in [-1, 1].
    pub fn score(&self, peer: &NodeId) -> f64 {
        self.peers.get(peer).map_or(0.0, |p| p.score)
    }

    /// Pulls in flight.
    pub fn in_flight(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.in_flight.is_some())
            .count()
    }

    /// Our model changed.
    pub fn set_local(&mut self, digest: ModelDigest, now: Millis) -> Vec<Action> {
        if self.local.as_ref() != Some(&digest) {
            self.local = Some(digest);
            self.dirty = true;
        }
        self.on_tick(now)
    }

    /// A peer announced `digest`.
    pub fn on_announce(&mut self, from: NodeId, digest: &ModelDigest, now: Millis) -> Vec<Action> {
        if from != self.me && digest.kind == self.kind {
            self.note(from, digest, now);
        }
        self.on_tick(now)
    }

    fn note(&mut self, from: NodeId, digest: &ModelDigest, now: Millis) {
        if let Some(p) = self.peers.get_mut(&from) {
            // Versions only move forward; an older digest is a replay.
            if digest.version >= p.digest.version {
                p.digest = digest.clone();
                p.heard = now;
            }
            return;
        }
        if self.peers.len() >= self.cfg.max_peers.max(1) {
            let victim = self
                .peers
                .iter()
                .filter(|(_, p)| p.in_flight.is_none())
                .min_by_key(|(id, p)| (p.heard, **id))
                .map(|(id, _)| *id);
            match victim {
                Some(v) => {
                    self.peers.remove(&v);
                }
                None => return,
            }
        }
        self.peers.insert(
            from,
            PeerModel {
                digest: digest.clone(),
                heard: now,
                taken_version: None,
                last_pull: None,
                in_flight: None,
                failures: 0,
                backoff_until: Millis::ZERO,
                score: 0.0,
            },
        );
    }

    /// The pull of `hash` from `from` ended.
    pub fn on_pull_done(
        &mut self,
        from: NodeId,
        hash: Hash,
        outcome: PullOutcome,
        now: Millis,
    ) -> Vec<Action> {
        let matches = self
            .peers
            .get(&from)
            .and_then(|p| p.in_flight)
            .is_some_and(|(h, _)| h == hash);
        if matches {
            self.finish_pull(from, outcome, now);
        }
        self.on_tick(now)
    }

    fn finish_pull(&mut self, from: NodeId, outcome: PullOutcome, now: Millis) {
        let cfg = &self.cfg;
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        let Some((hash, _)) = p.in_flight.take() else {
            return;
        };
        let sample = match outcome {
            PullOutcome::Merged => 1.0,
            PullOutcome::Rejected => -1.0,
            PullOutcome::Failed => p.score, // transport trouble says nothing about the model
        };
        p.score += cfg.score_alpha * (sample - p.score);
        match outcome {
            PullOutcome::Merged => {
                self.stats.merged += 1;
                p.failures = 0;
                p.backoff_until = now;
            }
            PullOutcome::Rejected | PullOutcome::Failed => {
                if outcome == PullOutcome::Rejected {
                    self.stats.rejected += 1;
                } else {
                    self.stats.failed += 1;
                }
                p.failures = p.failures.saturating_add(1);
                let exp = p.failures.saturating_sub(1).min(30);
                let pause = cfg
                    .backoff_base_ms
                    .saturating_mul(1u64 << exp)
                    .min(cfg.backoff_max_ms);
                p.backoff_until = now.plus(pause);
            }
        }
        // Merged or refused, this version is done with; a failed transfer
        // may be retried after the backoff.
        if outcome != PullOutcome::Failed && p.digest.hash == hash {
            p.taken_version = Some(p.digest.version);
        }
    }

    /// Announces and pulls that are due at `now`.
    pub fn on_tick(&mut self, now: Millis) -> Vec<Action> {
        let mut out = Vec::new();
        // The driver's timer fired (or it polls): always re-arm it.
        self.last_timer = None;
        // Pulls that never reported are failures.
        let timeout = self.cfg.pull_timeout_ms;
        let stuck: Vec<NodeId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.in_flight.is_some_and(|(_, t)| now >= t.plus(timeout)))
            .map(|(id, _)| *id)
            .collect();
        for id in stuck {
            self.finish_pull(id, PullOutcome::Failed, now);
        }
        if let Some(at) = self.announce_due() {
            if now >= at {
                if let Some(d) = &self.local {
                    out.push(Action::Broadcast {
                        msg: GossipMessage::ModelAnnounce {
                            node: self.me,
                            digest: d.clone(),
                        },
                    });
                    self.stats.announces += 1;
                    self.last_announce = Some(now);
                    self.dirty = false;
                }
            }
        }
        self.start_pulls(now, &mut out);
        let next = self.next_timeout(now);
        if next != self.last_timer {
            self.last_timer = next;
            if let Some(at) = next {
                out.push(Action::SetTimer { at });
            }
        }
        out
    }

    fn announce_due(&self) -> Option<Millis> {
        self.local.as_ref()?;
        Some(match self.last_announce {
            None => Millis::ZERO,
            Some(t) if self.dirty => t.plus(self.cfg.min_announce_gap_ms),
            Some(t) => t.plus(self.cfg.announce_interval_ms),
        })
    }

    fn eligible(&self, p: &PeerModel, now: Millis) -> bool {
        p.in_flight.is_none()
            && p.taken_version.is_none_or(|v| p.digest.version > v)
            && now.since(p.heard) <= self.cfg.max_digest_age_ms
            && now >= p.backoff_until
            && p.last_pull
                .is_none_or(|t| now >= t.plus(self.cfg.min_pull_interval_ms))
            && p.score >= self.cfg.min_score
    }

    fn start_pulls(&mut self, now: Millis, out: &mut Vec<Action>) {
        let free = self.cfg.fanout.saturating_sub(self.in_flight());
        if free == 0 {
            return;
        }
        let mut cands: Vec<(&NodeId, &PeerModel)> = self
            .peers
            .iter()
            .filter(|(_, p)| self.eligible(p, now))
            .collect();
        cands.sort_by(|a, b| {
            b.1.score
                .total_cmp(&a.1.score)
                .then(b.1.digest.accuracy_bp.cmp(&a.1.digest.accuracy_bp))
                .then(b.1.digest.samples.cmp(&a.1.digest.samples))
                .then(a.0.cmp(b.0))
        });
        let chosen: Vec<NodeId> = cands.into_iter().take(free).map(|(id, _)| *id).collect();
        for id in chosen {
            if let Some(p) = self.peers.get_mut(&id) {
                p.in_flight = Some((p.digest.hash, now));
                p.last_pull = Some(now);
                self.stats.pulls += 1;
                out.push(Action::FetchModel {
                    from: id,
                    digest: p.digest.clone(),
                });
            }
        }
    }

    fn next_timeout(&self, now: Millis) -> Option<Millis> {
        let announce = self.announce_due();
        let timeouts = self
            .peers
            .values()
            .filter_map(|p| p.in_flight.map(|(_, t)| t.plus(self.cfg.pull_timeout_ms)));
        // Peers waiting out a backoff or the pull interval become eligible
        // later; wake up then (only when a pull slot would be free).
        let waits = self
            .peers
            .values()
            .filter(|p| {
                p.in_flight.is_none() && p.taken_version.is_none_or(|v| p.digest.version > v)
            })
            .filter(|p| p.score >= self.cfg.min_score)
            .map(|p| {
                let after_pull = p
                    .last_pull
                    .map_or(Millis::ZERO, |t| t.plus(self.cfg.min_pull_interval_ms));
                p.backoff_until.max(after_pull)
            })
            .filter(|t| *t > now);
        announce.into_iter().chain(timeouts).chain(waits).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(version: u64, acc: u16) -> ModelDigest {
        ModelDigest {
            kind: "nb".try_into().unwrap(),
            version,
            hash: Hash([version as u8; 32]),
            size: 100,
            samples: 10 * version,
            accuracy_bp: acc,
        }
    }

    fn fetches(a: &[Action]) -> Vec<NodeId> {
        a.iter()
            .filter_map(|x| {
                if let Action::FetchModel { from, .. } = x {
                    Some(*from)
                } else {
                    None
                }
            })
            .collect()
    }

    fn sched() -> MergeScheduler {
        MergeScheduler::new(
            NodeId::from_u64(0),
            "nb".try_into().unwrap(),
            MergeConfig::default(),
        )
    }

    #[test]
    fn announces_on_change_rate_limited() {
        let mut s = sched();
        let a = s.set_local(digest(1, 0), Millis(0));
        assert!(a.iter().any(|x| matches!(x, Action::Broadcast { .. })));
        let a = s.set_local(digest(2, 0), Millis(500));
        assert!(!a.iter().any(|x| matches!(x, Action::Broadcast { .. })));
        let a = s.on_tick(Millis(2_000));
        assert!(a.iter().any(|x| matches!(x, Action::Broadcast { .. })));
        assert!(!s
            .on_tick(Millis(3_000))
            .iter()
            .any(|x| matches!(x, Action::Broadcast { .. })));
        assert!(s
            .on_tick(Millis(32_000))
            .iter()
            .any(|x| matches!(x, Action::Broadcast { .. })));
    }

    #[test]
    fn pulls_newer_versions_with_limited_fanout_best_first() {
        let mut s = sched();
        let (a, b, c) = (
            NodeId::from_u64(1),
            NodeId::from_u64(2),
            NodeId::from_u64(3),
        );
        s.note(a, &digest(1, 5000), Millis(0));
        s.note(b, &digest(1, 9000), Millis(0));
        s.note(c, &digest(1, 9500), Millis(0));
        assert_eq!(
            fetches(&s.on_tick(Millis(0))),
            vec![c, b],
            "fan-out 2, most accurate first"
        );
        // The freed slot goes to a; c's version was taken already.
        let next = s.on_pull_done(c, digest(1, 0).hash, PullOutcome::Merged, Millis(1));
        assert_eq!(fetches(&next), vec![a]);
        assert!(fetches(&s.on_announce(c, &digest(1, 9500), Millis(2))).is_empty());
        assert_eq!(s.in_flight(), 2);
        assert!(s.score(&c) > 0.0);
    }

    #[test]
    fn failures_back_off_exponentially_and_rejections_lower_score() {
        let mut s = sched();
        let p = NodeId::from_u64(1);
        assert_eq!(
            fetches(&s.on_announce(p, &digest(1, 0), Millis(0))).len(),
            1
        );
        s.on_pull_done(p, digest(1, 0).hash, PullOutcome::Failed, Millis(0));
        // Backoff 2 s, but also the 10 s pull interval.
        assert!(fetches(&s.on_tick(Millis(9_999))).is_empty());
        assert_eq!(fetches(&s.on_tick(Millis(10_000))).len(), 1);
        s.on_pull_done(p, digest(1, 0).hash, PullOutcome::Failed, Millis(10_000));
        s.on_announce(p, &digest(2, 0), Millis(10_000));
        assert_eq!(fetches(&s.on_tick(Millis(20_000))).len(), 1);
        let mut t = Millis(20_000);
        for i in 0..4 {
            s.on_pull_done(p, digest(2 + i, 0).hash, PullOutcome::Rejected, t);
            t = t.plus(1_000_000);
            s.on_announce(p, &digest(3 + i, 0), t);
        }
        assert!(s.score(&p) < -0.5);
        assert!(fetches(&s.on_announce(p, &digest(99, 0), t.plus(1_000_000))).is_empty());
    }

    #[test]
    fn ignores_other_kinds_self_and_stale_digests() {
        let mut s = sched();
        let mut d = digest(1, 0);
        d.kind = "tree".try_into().unwrap();
        assert!(fetches(&s.on_announce(NodeId::from_u64(1), &d, Millis(0))).is_empty());
        assert!(fetches(&s.on_announce(NodeId::from_u64(0), &digest(1, 0), Millis(0))).is_empty());
        s.fanout_zero_check();
    }

    impl MergeScheduler {
        fn fanout_zero_check(&mut self) {
            let p = NodeId::from_u64(5);
            self.cfg.fanout = 0;
            self.on_announce(p, &digest(1, 0), Millis(0));
            self.cfg.fanout = 2;
            // Heard at 0, too old at 200 s.
            assert!(fetches(&self.on_tick(Millis(200_000))).is_empty());
        }
    }
}
