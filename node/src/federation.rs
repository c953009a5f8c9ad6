//! Federation: asynchronous merge rounds with the mesh.
//!
//! One task drives `shoal-protocol`'s [`MergeScheduler`] with real time:
//! every second it feeds it our latest digest and the digests peers
//! announced over gossip; when the scheduler asks for a pull it fetches the
//! snapshot over request-response (in its own task, so a slow or departed
//! peer blocks no one), decodes it within the size limit and hands it to the
//! learner, which checks it (`shoal_learn::merge`: kind, NaN/Inf, norm,
//! accuracy on recent local samples) and merges it. The outcome goes back to
//! the scheduler, which keeps each peer's score; peers whose score falls
//! below the scheduler's floor are no longer pulled from, and below
//! [`BAN_SCORE`] after [`BAN_REJECTIONS`] refusals they are disconnected.
//! There is no barrier: each pull is independent.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use libp2p::PeerId;
use serde::Serialize;
use shoal_protocol::merge::{MergeConfig, MergeScheduler, PullOutcome};
use shoal_protocol::{Action, Millis, ModelDigest, ModelKind, NodeId};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::learner::{decode_snapshot, LearnerClient, MergeOutcome};
use crate::net::fetch::fetch_model;
use crate::net::Client;

/// Largest peer snapshot fetched, bytes.
pub const MAX_SNAPSHOT: u64 = 64 << 20;
/// Score below which a peer that keeps failing the checks is disconnected.
/// It is also the merge scheduler's `min_score`: a peer below it is no
/// longer pulled from, so a lower ban score could never be reached (the
/// last refusal is the one that takes the peer below it).
pub const BAN_SCORE: f64 = -0.5;
/// Refusals before a low-scoring peer is disconnected. Two: from a fresh
/// score of 0, two refusals in a row (score EWMA, alpha 0.3) take a peer
/// below [`BAN_SCORE`], after which it is no longer pulled from, so no third
/// refusal could ever be counted. One refusal alone never bans.
pub const BAN_REJECTIONS: u32 = 2;
/// Period of the driver loop.
const TICK: Duration = Duration::from_secs(1);

/// What a hostile test node does to the model it publishes
/// (`--byzantine`, for experiments only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Byzantine {
    /// Learn `(y + 1) mod C` instead of `y`.
    FlipLabels,
    /// Publish parameters times 1000.
    Scale,
    /// Publish a snapshot with a NaN parameter.
    Nan,
}

/// Per-peer federation view, for `GET /v1/peers` and `/metrics`.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct PeerFederation {
    /// Merge score in [-1, 1] (EWMA of +1 merged / -1 rejected).
    pub score: f64,
    pub merged: u64,
    pub rejected: u64,
    pub failed: u64,
    /// Last version taken from this peer.
    pub version: Option<u64>,
    /// Disconnected for failing the checks.
    pub banned: bool,
    /// Last reason a model of this peer was refused.
    pub last_rejection: Option<String>,
}

/// Counters of the whole node.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct FederationStats {
    pub pulls: u64,
    pub merged: u64,
    pub rejected: u64,
    pub failed: u64,
    pub bytes_pulled: u64,
    pub peers: BTreeMap<String, PeerFederation>,
}

/// Shared, read-mostly view of the federation state.
#[derive(Clone, Default)]
pub struct FederationHandle(Arc<Mutex<FederationStats>>);

impl FederationHandle {
    /// A copy of the current counters.
    pub fn stats(&self) -> FederationStats {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn update(&self, f: impl FnOnce(&mut FederationStats)) {
        if let Ok(mut s) = self.0.lock() {
            f(&mut s);
        }
    }

    /// Prometheus text lines.
    pub fn metrics_text(&self) -> String {
        let s = self.stats();
        let mut out = String::new();
        for (name, v) in [
            ("shoal_federation_pulls_total", s.pulls),
            ("shoal_federation_merged_total", s.merged),
            ("shoal_federation_rejected_total", s.rejected),
            ("shoal_federation_failed_total", s.failed),
            ("shoal_federation_bytes_pulled_total", s.bytes_pulled),
        ] {
            out.push_str(&format!("# TYPE {name} counter\n{name} {v}\n"));
        }
        out.push_str("# TYPE shoal_federation_peer_score gauge\n");
        for (peer, p) in &s.peers {
            out.push_str(&format!(
                "shoal_federation_peer_score{{peer=\"{peer}\"}} {}\n",
                p.score
            ));
        }
        out
    }
}

fn node_id(p: &PeerId) -> Option<NodeId> {
    NodeId::from_bytes(&p.to_bytes()).ok()
}

enum Done {
    Pulled {
        peer: PeerId,
        digest: ModelDigest,
        outcome: PullOutcome,
        bytes: u64,
        why: Option<String>,
    },
}

/// Start the federation driver.
pub fn spawn(
    me: PeerId,
    net: Client,
    learner: LearnerClient,
    cfg: MergeConfig,
    handle: FederationHandle,
    mut shutdown: watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    let me_id = node_id(&me)?;
    Some(tokio::spawn(async move {
        let started = Instant::now();
        let now = || Millis(started.elapsed().as_millis() as u64);
        let kind = learner.status().kind;
        let kind = ModelKind::try_new(&kind)
            .unwrap_or_else(|_| ModelKind::try_new("other").unwrap_or_default());
        let mut sched = MergeScheduler::new(me_id, kind, cfg);
        let mut peers: HashMap<NodeId, PeerId> = HashMap::new();
        let (tx, mut rx) = mpsc::channel::<Done>(16);
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let actions = tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                Some(done) = rx.recv() => {
                    let Done::Pulled { peer, digest, outcome, bytes, why } = done;
                    let key = peer.to_string();
                    let Some(id) = node_id(&peer) else { continue };
                    let acts = sched.on_pull_done(id, digest.hash, outcome, now());
                    let score = sched.score(&id);
                    let mut ban = false;
                    handle.update(|s| {
                        s.bytes_pulled += bytes;
                        let p = s.peers.entry(key.clone()).or_default();
                        p.score = score;
                        match outcome {
                            PullOutcome::Merged => {
                                s.merged += 1;
                                p.merged += 1;
                                p.version = Some(digest.version);
                            }
                            PullOutcome::Rejected => {
                                s.rejected += 1;
                                p.rejected += 1;
                                p.last_rejection = why.clone();
                                if score < BAN_SCORE && p.rejected >= u64::from(BAN_REJECTIONS) && !p.banned {
                                    p.banned = true;
                                    ban = true;
                                }
                            }
                            PullOutcome::Failed => {
                                s.failed += 1;
                                p.failed += 1;
                            }
                        }
                    });
                    if ban {
                        warn!(peer = %key, score, "peer keeps sending rejected models: disconnecting");
                        let _ = net.disconnect(peer).await;
                    }
                    acts
                }
                _ = tick.tick() => {
                    let mut acts = Vec::new();
                    if let Some(p) = learner.published() {
                        acts.extend(sched.set_local(p.digest.clone(), now()));
                    }
                    if let Ok(mesh) = net.mesh().await {
                        for m in mesh {
                            let Ok(peer) = m.peer_id.parse::<PeerId>() else { continue };
                            if peer == me || m.model.is_none() {
                                continue;
                            }
                            let banned = handle.stats().peers.get(&m.peer_id).is_some_and(|p| p.banned);
                            if banned {
                                continue;
                            }
                            let Some(id) = node_id(&peer) else { continue };
                            if let Ok(Some(d)) = net.peer_digest(peer).await {
                                if peers.len() < 1024 || peers.contains_key(&id) {
                                    peers.insert(id, peer);
                                }
                                acts.extend(sched.on_announce(id, &d, now()));
                            }
                        }
                    }
                    acts.extend(sched.on_tick(now()));
                    acts
                }
            };
            for a in actions {
                // Announcing is the network loop's job (it gossips every
                // new snapshot); only pulls are acted on here.
                if let Action::FetchModel { from, digest } = a {
                    let Some(peer) = peers.get(&from).copied() else {
                        continue;
                    };
                    handle.update(|s| s.pulls += 1);
                    let (net, learner, tx) = (net.clone(), learner.clone(), tx.clone());
                    tokio::spawn(async move {
                        let done = pull(&net, &learner, peer, digest).await;
                        let _ = tx.send(done).await;
                    });
                }
            }
        }
        info!(
            merged = sched.stats().merged,
            rejected = sched.stats().rejected,
            "federation stopped"
        );
    }))
}

async fn pull(net: &Client, learner: &LearnerClient, peer: PeerId, digest: ModelDigest) -> Done {
    let fail = |why: String, bytes: u64, outcome: PullOutcome| Done::Pulled {
        peer,
        digest: digest.clone(),
        outcome,
        bytes,
        why: Some(why),
    };
    let fetched = match fetch_model(net, peer, MAX_SNAPSHOT).await {
        Ok(f) => f,
        Err(e) => {
            debug!(peer = %peer, error = %e, "model pull failed");
            return fail(e.to_string(), 0, PullOutcome::Failed);
        }
    };
    let bytes = fetched.bytes.len() as u64;
    // A snapshot that does not decode (limits, NaN, malformed) is the
    // sender's fault: it counts against its score.
    let snap = match decode_snapshot(&fetched.bytes) {
        Ok(s) => s,
        Err(e) => {
            return fail(
                format!("snapshot does not decode: {e}"),
                bytes,
                PullOutcome::Rejected,
            )
        }
    };
    let origin = crate::federation::origin_of(&peer);
    match learner.merge(origin, snap).await {
        Ok(MergeOutcome::Merged) | Ok(MergeOutcome::Stale) => Done::Pulled {
            peer,
            digest: fetched.digest,
            outcome: PullOutcome::Merged,
            bytes,
            why: None,
        },
        Ok(MergeOutcome::Rejected(why)) => fail(why, bytes, PullOutcome::Rejected),
        Err(e) => fail(e.to_string(), bytes, PullOutcome::Failed),
    }
}

/// The merge origin of a peer: a stable 64-bit hash of its id.
pub fn origin_of(peer: &PeerId) -> shoal_learn::merge::Origin {
    let h = blake3::hash(&peer.to_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    shoal_learn::merge::Origin(u64::from_le_bytes(b))
}

/// Test-only: the model a `--byzantine scale|nan` node publishes.
pub fn poisoned(b: Byzantine, model: &shoal_learn::Model) -> shoal_learn::Model {
    use shoal_learn::models::linear::LinearModel;
    use shoal_learn::Model;
    let mut m = model.clone();
    if b == Byzantine::Scale {
        let scale = |l: &mut dyn LinearModel| {
            let mut p = l.params();
            for w in p.weights.iter_mut().chain(p.bias.iter_mut()) {
                *w *= 1000.0;
            }
            let _ = l.set_params(p);
        };
        match &mut m {
            Model::NaiveBayes(nb) => {
                for _ in 0..10 {
                    let c = nb.clone();
                    nb.merge(&c);
                }
            }
            Model::Logistic(l) => scale(l),
            Model::Perceptron(l) => scale(l),
            Model::PassiveAggressive(l) => scale(l),
            _ => {}
        }
    }
    m
}

/// Test-only: overwrite the encoding of one non-zero parameter of `m`
/// inside `bytes` with NaN (a snapshot honest decoders must refuse).
pub fn nan_bytes(m: &shoal_learn::Model, bytes: &mut [u8]) {
    use shoal_learn::models::linear::LinearModel;
    use shoal_learn::Model;
    let value = match m {
        Model::NaiveBayes(nb) => nb
            .class_stats()
            .iter()
            .flat_map(|c| c.gaussians.mean.iter())
            .copied()
            .find(|v| *v != 0.0),
        Model::Logistic(l) => l.params().weights.into_iter().find(|v| *v != 0.0),
        Model::Perceptron(l) => l.params().weights.into_iter().find(|v| *v != 0.0),
        Model::PassiveAggressive(l) => l.params().weights.into_iter().find(|v| *v != 0.0),
        _ => None,
    };
    match value {
        Some(v) => {
            let pat = v.to_le_bytes();
            if let Some(pos) = bytes.windows(8).position(|w| w == pat) {
                bytes[pos..pos + 8].copy_from_slice(&f64::NAN.to_le_bytes());
            }
        }
        None => {
            let n = bytes.len();
            if n > 8 {
                bytes[n / 2..].fill(0xff);
            }
        }
    }
}

/// The `--byzantine` value, checked.
pub fn parse_byzantine(v: Option<&str>) -> anyhow::Result<Option<Byzantine>> {
    Ok(match v {
        None | Some("") => None,
        Some("flip_labels") => Some(Byzantine::FlipLabels),
        Some("scale") => Some(Byzantine::Scale),
        Some("nan") => Some(Byzantine::Nan),
        Some(other) => anyhow::bail!("byzantine `{other}`: use flip_labels, scale or nan"),
    })
}

/// Merge scheduling for a node: pull soon after a peer announces, a few
/// peers at once, at most every 5 s from one peer.
pub fn scheduler_config() -> MergeConfig {
    MergeConfig {
        announce_interval_ms: 10_000,
        min_announce_gap_ms: 1_000,
        fanout: 3,
        max_digest_age_ms: 60_000,
        min_pull_interval_ms: 5_000,
        pull_timeout_ms: 30_000,
        backoff_base_ms: 2_000,
        backoff_max_ms: 120_000,
        max_peers: 128,
        score_alpha: 0.3,
        min_score: BAN_SCORE,
    }
}
