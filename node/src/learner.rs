//! The learner: one task that owns the model and learns test-then-train
//! from the stream source and from `POST /v1/learn`, keeps prequential
//! metrics, and snapshots the model to the store.
//!
//! Others talk to it through a [`LearnerClient`]: commands over a bounded
//! channel (learn, predict) and two `watch` channels it publishes
//! ([`LearnerStatus`] for the API and status gossip, [`Published`] — the
//! latest snapshot and its manifest — for peers fetching the model).
//!
//! Durability: an HTTP batch is appended to the store's learn log (committed)
//! before it is applied and acknowledged; a snapshot commits the model, the
//! source offset and the removal of the log entries it covers in one
//! transaction. On start the newest snapshot is loaded and the log replayed.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use shoal_learn::classifier::argmax;
use shoal_learn::merge::{Accepted, Federated, MergeConfig as FedConfig, Origin, Update};
use shoal_learn::{Classifier, Model, Sample, Schema};
use shoal_protocol::{Hash, Manifest, ModelDigest, ModelKind};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, info, warn};

use crate::federation::Byzantine;
use crate::metrics::NodeMetrics;
use crate::source::{SourceHandle, SourceSample};
use crate::store::{Store, StoreError};

/// Most features a sample may have.
pub const MAX_FEATURES: usize = 4096;
/// Most classes a model may learn (bounds memory a client can cause).
pub const MAX_CLASSES: usize = 256;
/// Longest class label, bytes.
pub const MAX_LABEL_LEN: usize = 128;
/// Window of the recent accuracy and kappa.
pub const WINDOW: usize = 1000;
/// Recent samples packed into one data blob.
const BLOB_SAMPLES: usize = 1000;
/// Commands queued for the learner.
const COMMANDS: usize = 64;
/// Pacing tick.
const TICK: Duration = Duration::from_millis(20);
/// Samples per tick when `rate` is 0 (as fast as possible, still yielding).
const UNPACED_BATCH: usize = 2000;
/// Recent samples peer updates are validated on.
const VALIDATION: usize = 500;

/// A labelled sample as clients send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LabeledSample {
    /// Feature values (`null` is not allowed; use NaN-free numbers).
    pub x: Vec<f64>,
    /// Class label.
    pub y: String,
}

/// A model snapshot as stored and as served to peers.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub version: u64,
    pub model_spec: String,
    pub model: Model,
    pub schema: Schema,
    pub samples_seen: u64,
    pub correct: u64,
    pub ingest_offset: u64,
    pub merges: u64,
    pub created_unix_ms: u64,
}

/// Borrowing twin of [`Snapshot`]: encodes to the same bytes without
/// cloning the model.
#[derive(Serialize)]
struct SnapshotRef<'a> {
    version: u64,
    model_spec: &'a str,
    model: &'a Model,
    schema: &'a Schema,
    samples_seen: u64,
    correct: u64,
    ingest_offset: u64,
    merges: u64,
    created_unix_ms: u64,
}

/// Decodes snapshot bytes (ours, or a peer's after verification).
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, postcard::Error> {
    postcard::from_bytes(bytes)
}

/// The latest snapshot, ready to be served to peers chunk by chunk.
#[derive(Debug)]
pub struct Published {
    pub digest: ModelDigest,
    pub manifest: Manifest,
    pub bytes: Arc<Vec<u8>>,
}

impl Published {
    fn new(bytes: Vec<u8>, kind: &str, version: u64, samples: u64, accuracy: f64) -> Option<Self> {
        let manifest = match Manifest::of(&bytes) {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "snapshot too large to publish");
                return None;
            }
        };
        let kind = ModelKind::try_new(kind)
            .or_else(|_| ModelKind::try_new("other"))
            .ok()?;
        Some(Published {
            digest: ModelDigest {
                kind,
                version,
                hash: manifest.root(),
                size: bytes.len() as u64,
                samples,
                accuracy_bp: accuracy_bp(accuracy),
            },
            manifest,
            bytes: Arc::new(bytes),
        })
    }
}

/// Accuracy in basis points, clamped.
pub fn accuracy_bp(acc: f64) -> u16 {
    if acc.is_finite() {
        (acc.clamp(0.0, 1.0) * 10_000.0).round() as u16
    } else {
        0
    }
}

/// What the learner reports after every batch.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LearnerStatus {
    pub kind: String,
    pub spec: String,
    pub version: u64,
    pub samples_seen: u64,
    pub accuracy: f64,
    pub window_accuracy: f64,
    pub kappa: f64,
    pub merges: u64,
    pub n_features: usize,
    pub classes: Vec<String>,
    pub memory_bytes: usize,
    pub ingest_offset: u64,
    pub source: Option<String>,
    pub source_exhausted: bool,
    pub snapshots_written: u64,
    pub pending_log_batches: u64,
}

/// Why a learn or predict call was refused.
#[derive(Debug, thiserror::Error)]
pub enum LearnError {
    #[error("sample {index} has {got} features, the model expects {expected}")]
    FeatureCount {
        index: usize,
        got: usize,
        expected: usize,
    },
    #[error("sample {index}: {why}")]
    Invalid { index: usize, why: String },
    #[error("too many classes: the model holds at most {MAX_CLASSES}")]
    TooManyClasses,
    #[error("storage: {0}")]
    Store(#[from] StoreError),
    #[error("the learner is shutting down")]
    Gone,
}

/// Accepted learn batch.
#[derive(Debug, Clone, Serialize)]
pub struct LearnAck {
    pub accepted: usize,
    pub samples_seen: u64,
    pub model_version: u64,
}

/// One prediction.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Prediction {
    /// Most probable label, `null` before anything was learnt.
    pub label: Option<String>,
    /// Probability of each known label.
    pub probabilities: std::collections::BTreeMap<String, f64>,
}

enum Command {
    Learn {
        samples: Vec<LabeledSample>,
        reply: oneshot::Sender<Result<LearnAck, LearnError>>,
    },
    Predict {
        xs: Vec<Vec<f64>>,
        reply: oneshot::Sender<Result<Vec<Prediction>, LearnError>>,
    },
    Merge {
        origin: Origin,
        snap: Box<Snapshot>,
        reply: oneshot::Sender<MergeOutcome>,
    },
}

/// What became of a peer's snapshot handed to [`LearnerClient::merge`].
#[derive(Debug, Clone, PartialEq)]
pub enum MergeOutcome {
    /// Checked and merged.
    Merged,
    /// Not newer than what this peer already gave.
    Stale,
    /// Refused by the checks (why).
    Rejected(String),
}

/// Cheap handle to the learner.
#[derive(Clone)]
pub struct LearnerClient {
    tx: mpsc::Sender<Command>,
    status: watch::Receiver<LearnerStatus>,
    published: watch::Receiver<Option<Arc<Published>>>,
}

impl LearnerClient {
    /// Durably logs and learns `samples`; all or nothing.
    pub async fn learn(&self, samples: Vec<LabeledSample>) -> Result<LearnAck, LearnError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Learn { samples, reply })
            .await
            .map_err(|_| LearnError::Gone)?;
        rx.await.map_err(|_| LearnError::Gone)?
    }

    /// Predicts each row of `xs`.
    pub async fn predict(&self, xs: Vec<Vec<f64>>) -> Result<Vec<Prediction>, LearnError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Predict { xs, reply })
            .await
            .map_err(|_| LearnError::Gone)?;
        rx.await.map_err(|_| LearnError::Gone)?
    }

    /// Checks a peer's snapshot and merges it into the model
    /// (`shoal_learn::merge`).
    pub async fn merge(&self, origin: Origin, snap: Snapshot) -> Result<MergeOutcome, LearnError> {
        let (reply, rx) = oneshot::channel();
        self.tx
            .send(Command::Merge {
                origin,
                snap: Box::new(snap),
                reply,
            })
            .await
            .map_err(|_| LearnError::Gone)?;
        rx.await.map_err(|_| LearnError::Gone)
    }

    /// Current status.
    pub fn status(&self) -> LearnerStatus {
        self.status.borrow().clone()
    }

    /// Watch of the status.
    pub fn status_watch(&self) -> watch::Receiver<LearnerStatus> {
        self.status.clone()
    }

    /// Latest published snapshot.
    pub fn published(&self) -> Option<Arc<Published>> {
        self.published.borrow().clone()
    }

    /// Watch of the published snapshot.
    pub fn published_watch(&self) -> watch::Receiver<Option<Arc<Published>>> {
        self.published.clone()
    }
}

/// Learner settings.
#[derive(Debug, Clone)]
pub struct LearnerConfig {
    pub model_spec: String,
    pub source: Option<String>,
    pub rate: f64,
    pub snapshot_every: u64,
    pub snapshot_secs: u64,
    pub blob_budget_bytes: u64,
    /// Test-only: publish poisoned models (`--byzantine`).
    pub byzantine: Option<Byzantine>,
}

/// Prequential metrics: test-then-train accuracy over everything, and
/// accuracy and Cohen's kappa over the last [`WINDOW`] samples.
#[derive(Debug, Default)]
struct Prequential {
    seen: u64,
    correct: u64,
    /// (predicted class or `u32::MAX` for none, true class)
    window: VecDeque<(u32, u32)>,
    window_correct: usize,
}

impl Prequential {
    fn record(&mut self, pred: Option<usize>, y: usize) {
        let hit = pred == Some(y);
        self.seen += 1;
        self.correct += u64::from(hit);
        if self.window.len() == WINDOW {
            if let Some((p, t)) = self.window.pop_front() {
                self.window_correct -= usize::from(p == t);
            }
        }
        let p = pred.map_or(u32::MAX, |p| p as u32);
        self.window.push_back((p, y as u32));
        self.window_correct += usize::from(hit);
    }

    fn accuracy(&self) -> f64 {
        if self.seen == 0 {
            0.0
        } else {
            self.correct as f64 / self.seen as f64
        }
    }

    fn window_accuracy(&self) -> f64 {
        if self.window.is_empty() {
            0.0
        } else {
            self.window_correct as f64 / self.window.len() as f64
        }
    }

    /// Cohen's kappa over the window: (p0 - pe) / (1 - pe), where pe is the
    /// agreement expected by chance from the marginals.
    fn kappa(&self, n_classes: usize) -> f64 {
        let n = self.window.len();
        if n == 0 || n_classes == 0 {
            return 0.0;
        }
        let mut pred = vec![0usize; n_classes + 1];
        let mut truth = vec![0usize; n_classes + 1];
        for &(p, t) in &self.window {
            let p = (p as usize).min(n_classes);
            pred[p] += 1;
            truth[(t as usize).min(n_classes)] += 1;
        }
        let nf = n as f64;
        let pe: f64 = pred
            .iter()
            .zip(&truth)
            .map(|(&a, &b)| (a as f64 / nf) * (b as f64 / nf))
            .sum();
        let p0 = self.window_accuracy();
        if (1.0 - pe).abs() < 1e-12 {
            0.0
        } else {
            (p0 - pe) / (1.0 - pe)
        }
    }
}

struct Learner {
    store: Store,
    cfg: LearnerConfig,
    metrics: NodeMetrics,
    model: Option<Federated>,
    model_spec: String,
    schema: Schema,
    pre: Prequential,
    version: u64,
    merges: u64,
    offset: u64,
    since_snapshot: u64,
    last_snapshot: Instant,
    last_log_seq: Option<u64>,
    pending_log_batches: u64,
    snapshots_written: u64,
    recent: Vec<Sample>,
    /// The last [`VALIDATION`] samples, to check peer updates on.
    validation: VecDeque<Sample>,
    proba: Vec<f64>,
    status_tx: watch::Sender<LearnerStatus>,
    published_tx: watch::Sender<Option<Arc<Published>>>,
}

/// Loads the newest snapshot, replays the learn log and returns the client
/// and the task to spawn. `source` is started by the caller from
/// [`start_offset`] so that it resumes where the snapshot stopped.
pub fn spawn(
    store: Store,
    cfg: LearnerConfig,
    metrics: NodeMetrics,
    source: Option<SourceHandle>,
    shutdown: watch::Receiver<bool>,
) -> Result<(LearnerClient, tokio::task::JoinHandle<()>), LearnError> {
    let (status_tx, status_rx) = watch::channel(LearnerStatus::default());
    let (published_tx, published_rx) = watch::channel(None);
    let (tx, rx) = mpsc::channel(COMMANDS);
    let mut learner = Learner {
        store,
        model_spec: cfg.model_spec.clone(),
        cfg,
        metrics,
        model: None,
        schema: Schema::default(),
        pre: Prequential::default(),
        version: 0,
        merges: 0,
        offset: 0,
        since_snapshot: 0,
        last_snapshot: Instant::now(),
        last_log_seq: None,
        pending_log_batches: 0,
        snapshots_written: 0,
        recent: Vec::new(),
        validation: VecDeque::new(),
        proba: Vec::new(),
        status_tx,
        published_tx,
    };
    learner.restore(source.as_ref().map(|s| &s.schema))?;
    let handle = tokio::spawn(learner.run(rx, source, shutdown));
    Ok((
        LearnerClient {
            tx,
            status: status_rx,
            published: published_rx,
        },
        handle,
    ))
}

/// Source offset of the newest snapshot: where a restarted source resumes.
pub fn start_offset(store: &Store) -> Result<u64, StoreError> {
    store.ingest_offset()
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Learner {
    fn restore(&mut self, source_schema: Option<&Schema>) -> Result<(), LearnError> {
        if let Some(stored) = self.store.latest_snapshot()? {
            let snap = decode_snapshot(&stored.bytes).map_err(|e| {
                LearnError::Store(StoreError::Corrupt {
                    what: "snapshot",
                    why: e.to_string(),
                })
            })?;
            if snap.model_spec != self.cfg.model_spec {
                warn!(
                    stored = %snap.model_spec,
                    configured = %self.cfg.model_spec,
                    "data dir holds a model of another spec; keeping it (use a fresh --data-dir to change models)"
                );
            }
            self.model_spec = snap.model_spec;
            self.model = Some(Federated::new(snap.model, FedConfig::default()));
            self.schema = snap.schema;
            self.pre.seen = snap.samples_seen;
            self.pre.correct = snap.correct;
            self.version = snap.version;
            self.merges = snap.merges;
            self.offset = snap.ingest_offset;
            self.snapshots_written = self.store.snapshot_count()?;
            let acc = self.pre.accuracy();
            let kind = self.model.as_ref().map_or("none", |m| m.local().kind());
            let published = Published::new(stored.bytes, kind, self.version, self.pre.seen, acc);
            self.published_tx.send_replace(published.map(Arc::new));
            info!(
                version = self.version,
                samples_seen = self.pre.seen,
                offset = self.offset,
                "restored model snapshot"
            );
        }
        if self.schema.features.is_empty() {
            if let Some(s) = source_schema {
                self.schema.features = s.features.clone();
                self.schema.target = s.target.clone();
            }
        }
        if self.model.is_none() && !self.schema.features.is_empty() {
            self.build_model()?;
        }
        // Replay batches acknowledged after the snapshot.
        let log = self.store.learn_log()?;
        let mut replayed = 0usize;
        for (seq, bytes) in log {
            match postcard::from_bytes::<Vec<LabeledSample>>(&bytes) {
                Ok(batch) => {
                    if self.validate(&batch).is_ok() {
                        replayed += batch.len();
                        self.apply(&batch);
                    } else {
                        warn!(seq, "skipping learn-log batch that no longer validates");
                    }
                }
                Err(e) => warn!(seq, error = %e, "skipping undecodable learn-log batch"),
            }
            self.last_log_seq = Some(seq);
            self.pending_log_batches += 1;
        }
        if replayed > 0 {
            info!(samples = replayed, "replayed learn log");
        }
        self.publish_status(false);
        Ok(())
    }

    fn build_model(&mut self) -> Result<(), LearnError> {
        let model = shoal_learn::build_str(&self.model_spec, &self.schema).map_err(|e| {
            LearnError::Invalid {
                index: 0,
                why: format!("model spec `{}`: {e}", self.model_spec),
            }
        })?;
        self.model = Some(Federated::new(model, FedConfig::default()));
        Ok(())
    }

    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Command>,
        mut source: Option<SourceHandle>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tokens = 0.0f64;
        let mut last = Instant::now();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.changed() => break,
                cmd = cmds.recv() => match cmd {
                    Some(Command::Learn { samples, reply }) => {
                        let r = self.learn_http(samples);
                        // Status first, so a client that reads it after the
                        // reply sees its own samples.
                        self.publish_status(false);
                        let _ = reply.send(r);
                    }
                    Some(Command::Predict { xs, reply }) => {
                        let _ = reply.send(self.predict(&xs));
                    }
                    Some(Command::Merge { origin, snap, reply }) => {
                        let r = self.merge(origin, *snap);
                        self.publish_status(false);
                        let _ = reply.send(r);
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let now = Instant::now();
                    let dt = now.duration_since(last).as_secs_f64();
                    last = now;
                    let budget = if self.cfg.rate > 0.0 {
                        // Token bucket, at most one second of burst.
                        tokens = (tokens + self.cfg.rate * dt).min(self.cfg.rate.max(1.0));
                        tokens.floor() as usize
                    } else {
                        UNPACED_BATCH
                    };
                    let mut exhausted = false;
                    if let Some(src) = source.as_mut() {
                        let mut n = 0;
                        while n < budget {
                            match src.rx.try_recv() {
                                Ok(s) => {
                                    self.learn_source(s);
                                    n += 1;
                                }
                                Err(_) => break,
                            }
                        }
                        if self.cfg.rate > 0.0 {
                            tokens -= n as f64;
                        }
                        exhausted = src.exhausted.load(Ordering::Acquire) && src.rx.is_empty();
                    }
                    self.maybe_snapshot();
                    self.publish_status(exhausted);
                }
            }
        }
        // Samples still queued from the source are not counted in the offset,
        // so a restart re-reads them: only the final snapshot matters here.
        if self.since_snapshot > 0 || self.pending_log_batches > 0 {
            self.snapshot();
        }
        info!(
            version = self.version,
            samples_seen = self.pre.seen,
            "learner stopped"
        );
    }

    fn learn_source(&mut self, s: SourceSample) {
        if self.schema.classes.len() >= MAX_CLASSES
            && !self.schema.classes.iter().any(|c| c == &s.label)
        {
            // Counted as consumed so the offset stays in step with the source.
            self.offset += 1;
            return;
        }
        if self.model.is_none() {
            if self.schema.features.is_empty() {
                self.schema.features = Schema::numeric(s.x.len(), &[]).features;
            }
            if let Err(e) = self.build_model() {
                warn!(error = %e, "cannot build model");
                self.offset += 1;
                return;
            }
        }
        self.learn_one(s.x, &s.label);
        self.offset += 1;
    }

    fn validate(&self, samples: &[LabeledSample]) -> Result<(), LearnError> {
        let expected = if self.schema.features.is_empty() {
            samples.first().map_or(0, |s| s.x.len())
        } else {
            self.schema.n_features()
        };
        let mut new_labels: Vec<&str> = Vec::new();
        for (index, s) in samples.iter().enumerate() {
            if s.x.is_empty() || s.x.len() > MAX_FEATURES {
                return Err(LearnError::Invalid {
                    index,
                    why: format!("x must have 1 to {MAX_FEATURES} features"),
                });
            }
            if s.x.len() != expected {
                return Err(LearnError::FeatureCount {
                    index,
                    got: s.x.len(),
                    expected,
                });
            }
            if s.y.is_empty() || s.y.len() > MAX_LABEL_LEN {
                return Err(LearnError::Invalid {
                    index,
                    why: format!("label must be 1 to {MAX_LABEL_LEN} bytes"),
                });
            }
            if !self.schema.classes.iter().any(|c| c == &s.y) && !new_labels.contains(&&*s.y) {
                new_labels.push(&s.y);
            }
        }
        if self.schema.classes.len() + new_labels.len() > MAX_CLASSES {
            return Err(LearnError::TooManyClasses);
        }
        Ok(())
    }

    fn learn_http(&mut self, samples: Vec<LabeledSample>) -> Result<LearnAck, LearnError> {
        self.validate(&samples)?;
        if samples.is_empty() {
            return Ok(self.ack(0));
        }
        if self.model.is_none() {
            if self.schema.features.is_empty() {
                self.schema.features = Schema::numeric(samples[0].x.len(), &[]).features;
            }
            self.build_model()?;
        }
        let bytes = postcard::to_allocvec(&samples).map_err(|e| LearnError::Invalid {
            index: 0,
            why: e.to_string(),
        })?;
        // Durable before acknowledged: committed to the log first.
        let store = self.store.clone();
        let seq = tokio::task::block_in_place(|| store.append_learn_log(&bytes))?;
        self.last_log_seq = Some(seq);
        self.pending_log_batches += 1;
        self.apply(&samples);
        self.metrics.learn_requests.inc();
        self.maybe_snapshot();
        Ok(self.ack(samples.len()))
    }

    fn ack(&self, accepted: usize) -> LearnAck {
        LearnAck {
            accepted,
            samples_seen: self.pre.seen,
            model_version: self.version,
        }
    }

    fn apply(&mut self, samples: &[LabeledSample]) {
        if self.model.is_none() {
            if self.schema.features.is_empty() {
                if let Some(first) = samples.first() {
                    self.schema.features = Schema::numeric(first.x.len(), &[]).features;
                }
            }
            if let Err(e) = self.build_model() {
                warn!(error = %e, "cannot build model");
                return;
            }
        }
        for s in samples {
            self.learn_one(s.x.clone(), &s.y);
        }
    }

    /// Test-then-train on one sample.
    fn learn_one(&mut self, x: Vec<f64>, label: &str) {
        let y = self.schema.class_index(label);
        let Some(model) = self.model.as_mut() else {
            return;
        };
        model.predict_proba_into(&x, &mut self.proba);
        let pred = argmax(&self.proba);
        // Test-only poisoner: learns the wrong labels.
        let taught = match self.cfg.byzantine {
            Some(Byzantine::FlipLabels) => (y + 1) % self.schema.n_classes().max(2),
            _ => y,
        };
        model.learn_one(&x, taught, 1.0);
        self.pre.record(pred, y);
        self.since_snapshot += 1;
        if self.validation.len() == VALIDATION {
            self.validation.pop_front();
        }
        self.validation.push_back(Sample { x: x.clone(), y });
        if self.recent.len() < BLOB_SAMPLES {
            self.recent.push(Sample { x, y });
        }
    }

    fn predict(&self, xs: &[Vec<f64>]) -> Result<Vec<Prediction>, LearnError> {
        let expected = self.schema.n_features();
        let mut out = Vec::with_capacity(xs.len());
        let mut proba = Vec::new();
        for (index, x) in xs.iter().enumerate() {
            if expected > 0 && x.len() != expected {
                return Err(LearnError::FeatureCount {
                    index,
                    got: x.len(),
                    expected,
                });
            }
            if x.is_empty() || x.len() > MAX_FEATURES {
                return Err(LearnError::Invalid {
                    index,
                    why: format!("x must have 1 to {MAX_FEATURES} features"),
                });
            }
            let Some(model) = self.model.as_ref() else {
                out.push(Prediction {
                    label: None,
                    probabilities: Default::default(),
                });
                continue;
            };
            model.predict_proba_into(x, &mut proba);
            let label = argmax(&proba).and_then(|i| self.schema.classes.get(i).cloned());
            let probabilities = proba
                .iter()
                .enumerate()
                .filter_map(|(i, p)| self.schema.classes.get(i).map(|c| (c.clone(), *p)))
                .collect();
            out.push(Prediction {
                label,
                probabilities,
            });
        }
        Ok(out)
    }

    /// Checks and merges a peer's snapshot; its classes are renumbered
    /// into ours by label.
    fn merge(&mut self, origin: Origin, snap: Snapshot) -> MergeOutcome {
        let Some(fed) = self.model.as_mut() else {
            return MergeOutcome::Rejected("no local model yet".into());
        };
        if snap.schema.classes.len() > MAX_CLASSES {
            return MergeOutcome::Rejected("too many classes".into());
        }
        let mut new_labels: Vec<&String> = Vec::new();
        let mut class_map = Vec::with_capacity(snap.schema.classes.len());
        for label in &snap.schema.classes {
            let i = match self.schema.classes.iter().position(|c| c == label) {
                Some(i) => i,
                None => match new_labels.iter().position(|c| *c == label) {
                    Some(k) => self.schema.classes.len() + k,
                    None => {
                        new_labels.push(label);
                        self.schema.classes.len() + new_labels.len() - 1
                    }
                },
            };
            class_map.push(i);
        }
        if self.schema.classes.len() + new_labels.len() > MAX_CLASSES {
            return MergeOutcome::Rejected("too many classes".into());
        }
        let update = Update {
            origin,
            version: snap.version,
            samples: snap.samples_seen,
            class_map,
            model: snap.model,
        };
        let window: Vec<Sample> = self.validation.iter().cloned().collect();
        match fed.accept(update, &window) {
            Ok(Accepted::New) => {
                let labels: Vec<String> = new_labels.into_iter().cloned().collect();
                self.schema.classes.extend(labels);
                fed.round();
                self.merges += 1;
                self.since_snapshot += 1;
                MergeOutcome::Merged
            }
            Ok(Accepted::Stale) => MergeOutcome::Stale,
            Err(e) => MergeOutcome::Rejected(e.to_string()),
        }
    }

    fn maybe_snapshot(&mut self) {
        let due_count = self.since_snapshot >= self.cfg.snapshot_every.max(1);
        let due_time = (self.since_snapshot > 0 || self.pending_log_batches > 0)
            && self.last_snapshot.elapsed() >= Duration::from_secs(self.cfg.snapshot_secs.max(1));
        if due_count || due_time {
            self.snapshot();
        }
    }

    /// Writes a snapshot (model + offset + log trim in one transaction),
    /// stores the recent samples as a blob and publishes the new digest.
    fn snapshot(&mut self) {
        let Some(model) = self.model.as_ref() else {
            return;
        };
        let version = self.version + 1;
        let snap = SnapshotRef {
            version,
            model_spec: &self.model_spec,
            model: model.local(),
            schema: &self.schema,
            samples_seen: self.pre.seen,
            correct: self.pre.correct,
            ingest_offset: self.offset,
            merges: self.merges,
            created_unix_ms: now_unix_ms(),
        };
        let bytes = match postcard::to_allocvec(&snap) {
            Ok(b) => b,
            Err(e) => {
                warn!(error = %e, "encoding snapshot");
                return;
            }
        };
        let store = self.store.clone();
        let (offset, upto) = (self.offset, self.last_log_seq);
        let recent = std::mem::take(&mut self.recent);
        let budget = self.cfg.blob_budget_bytes;
        let written = tokio::task::block_in_place(|| {
            store.commit_snapshot(version, &bytes, offset, upto)?;
            if !recent.is_empty() {
                if let Ok(blob) = postcard::to_allocvec(&recent) {
                    if let Ok(m) = Manifest::of(&blob) {
                        let root: Hash = m.root();
                        if let Err(e) = store.put_blob(&root, &blob, budget) {
                            debug!(error = %e, "recent samples not kept as blob");
                        }
                    }
                }
            }
            Ok::<_, StoreError>(())
        });
        if let Err(e) = written {
            // Not acknowledged to anyone: the previous snapshot stays valid
            // and the log still holds the batches. Try again next time.
            warn!(error = %e, "writing snapshot failed");
            return;
        }
        self.version = version;
        self.since_snapshot = 0;
        self.pending_log_batches = 0;
        self.last_snapshot = Instant::now();
        self.snapshots_written += 1;
        self.metrics.snapshots.inc();
        let kind = model.local().kind();
        let bytes = match self.cfg.byzantine {
            Some(b @ (Byzantine::Scale | Byzantine::Nan)) => {
                let bad = crate::federation::poisoned(b, model.local());
                let mut out = postcard::to_allocvec(&SnapshotRef {
                    model: &bad,
                    ..snap
                })
                .unwrap_or_default();
                if b == Byzantine::Nan {
                    crate::federation::nan_bytes(&bad, &mut out);
                }
                out
            }
            _ => bytes,
        };
        let published = Published::new(bytes, kind, version, self.pre.seen, self.pre.accuracy());
        self.published_tx.send_replace(published.map(Arc::new));
        debug!(
            version,
            samples_seen = self.pre.seen,
            offset,
            "snapshot written"
        );
    }

    fn publish_status(&mut self, source_exhausted: bool) {
        let (kind, memory) = match &self.model {
            Some(m) => (m.local().kind().to_string(), m.memory_bytes()),
            None => ("none".to_string(), 0),
        };
        let status = LearnerStatus {
            kind,
            spec: self.model_spec.clone(),
            version: self.version,
            samples_seen: self.pre.seen,
            accuracy: self.pre.accuracy(),
            window_accuracy: self.pre.window_accuracy(),
            kappa: self.pre.kappa(self.schema.n_classes()),
            merges: self.merges,
            n_features: self.schema.n_features(),
            classes: self.schema.classes.clone(),
            memory_bytes: memory,
            ingest_offset: self.offset,
            source: self.cfg.source.clone(),
            source_exhausted,
            snapshots_written: self.snapshots_written,
            pending_log_batches: self.pending_log_batches,
        };
        self.metrics.samples_seen.set(status.samples_seen as i64);
        self.metrics.accuracy.set(status.accuracy);
        self.metrics.window_accuracy.set(status.window_accuracy);
        self.metrics.model_version.set(status.version as i64);
        self.metrics.model_bytes.set(status.memory_bytes as i64);
        self.status_tx.send_replace(status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_is_zero_for_chance_and_one_for_perfect() {
        let mut p = Prequential::default();
        for i in 0..100 {
            p.record(Some(i % 2), i % 2);
        }
        assert!((p.kappa(2) - 1.0).abs() < 1e-9);
        assert!((p.window_accuracy() - 1.0).abs() < 1e-9);
        let mut q = Prequential::default();
        for i in 0..100 {
            q.record(Some(0), i % 2);
        }
        assert!(q.kappa(2).abs() < 1e-9);
        assert!((q.accuracy() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn window_is_bounded() {
        let mut p = Prequential::default();
        for _ in 0..(WINDOW * 3) {
            p.record(None, 0);
        }
        assert_eq!(p.window.len(), WINDOW);
        assert_eq!(p.seen, (WINDOW * 3) as u64);
    }
}
