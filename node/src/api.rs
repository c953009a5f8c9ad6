//! The REST API (axum): status, peers, mesh, model, learn, predict, tasks,
//! Prometheus `/metrics` and the OpenAPI document `/openapi.json`.
//!
//! Conventions: JSON everywhere; errors are
//! `{"error":{"code":"bad_request","message":"..."}}` with a stable `code`;
//! request bodies are capped at [`MAX_BODY`] (413 otherwise); mutating calls
//! (`POST /v1/learn`, `POST /v1/tasks`, `POST /v1/model/pull`,
//! `POST /v1/blobs/pull`) need
//! `Authorization: Bearer <token>` when the node has an API token.
//!
//! The router is built from [`routes`], the same table the OpenAPI test
//! compares with the generated document, so the two cannot drift apart.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, MethodRouter};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

use crate::learner::{LabeledSample, LearnError, LearnerClient, Prediction};
use crate::metrics::NodeMetrics;
use crate::net::fetch::{fetch_blob, fetch_model, FetchError};
use crate::net::{self, DigestView, MeshView, PeerView};
use crate::store::Store;

/// Largest request body, bytes.
pub const MAX_BODY: usize = 1024 * 1024;
/// Most rows in one learn or predict call.
pub const MAX_ROWS: usize = 10_000;
/// Largest peer snapshot `POST /v1/model/pull` accepts.
pub const MAX_PEER_MODEL: u64 = 64 * 1024 * 1024;
/// How long an API call waits for the network event loop.
const NET_TIMEOUT: Duration = Duration::from_secs(5);

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    pub learner: LearnerClient,
    pub net: net::Client,
    pub store: Store,
    pub registry: Arc<prometheus_client::registry::Registry>,
    pub metrics: NodeMetrics,
    pub peer_id: String,
    pub started: Instant,
    pub api_token: Option<String>,
    /// Total bytes of data blobs kept (oldest evicted first).
    pub blob_budget_bytes: u64,
    /// The task market.
    pub market: crate::market::MarketClient,
    /// Federation counters and per-peer merge scores.
    pub federation: crate::federation::FederationHandle,
}

impl AppState {
    pub fn new(inner: Inner) -> Self {
        AppState(Arc::new(inner))
    }

    /// What the handlers share.
    pub fn inner(&self) -> &Inner {
        &self.0
    }
}

/// An API error: HTTP status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    /// The same error with `prefix` before its message.
    pub(crate) fn prefixed(mut self, prefix: &str) -> Self {
        self.message = format!("{prefix}{}", self.message);
        self
    }
    pub(crate) fn bad_request(m: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", m)
    }
    fn internal(m: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", m)
    }
    fn unavailable(m: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", m)
    }
}

/// Body of every error response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

/// The error itself.
#[derive(Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable machine-readable code: `bad_request`, `unauthorized`,
    /// `not_found`, `method_not_allowed`, `payload_too_large`,
    /// `unprocessable`, `feature_count`, `not_implemented`, `peer_error`,
    /// `unavailable`, `internal`.
    code: String,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<LearnError> for ApiError {
    fn from(e: LearnError) -> Self {
        match e {
            LearnError::FeatureCount { .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "feature_count",
                e.to_string(),
            ),
            LearnError::Invalid { .. } | LearnError::TooManyClasses => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                e.to_string(),
            ),
            LearnError::Store(_) => ApiError::internal(e.to_string()),
            LearnError::Gone => ApiError::unavailable(e.to_string()),
        }
    }
}

impl From<net::NetError> for ApiError {
    fn from(e: net::NetError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}

/// A request body, read up to the body limit. Never rejects by itself, so
/// that handlers check authorization before complaining about the body.
pub struct RawBody(Result<Bytes, ApiError>);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Infallible> {
        Ok(RawBody(Bytes::from_request(req, state).await.map_err(
            |r| {
                let status = r.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "bad_request"
                };
                ApiError::new(status, code, r.body_text())
            },
        )))
    }
}

impl RawBody {
    /// Parses the body as JSON: syntax errors are 400, a well-formed body
    /// of the wrong shape is 422.
    pub(crate) fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, ApiError> {
        let bytes = self.0?;
        serde_json::from_slice(&bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                e.to_string(),
            ),
            _ => ApiError::bad_request(format!("malformed JSON: {e}")),
        })
    }
}

pub(crate) fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = state.0.api_token.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Compare without an early exit so timing does not reveal the prefix.
    let a = given.as_bytes();
    let b = token.as_bytes();
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        diff |= usize::from(a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0));
    }
    if diff == 0 {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        ))
    }
}

async fn with_timeout<T>(
    f: impl std::future::Future<Output = Result<T, net::NetError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout(NET_TIMEOUT, f).await {
        Ok(r) => r.map_err(ApiError::from),
        Err(_) => Err(ApiError::unavailable(
            "network event loop did not answer in time",
        )),
    }
}

// ---------- response types ----------

/// `GET /v1/health`.
#[derive(Serialize, ToSchema)]
pub struct Health {
    status: &'static str,
}

/// The model part of the status.
#[derive(Serialize, ToSchema)]
pub struct ModelSummary {
    kind: String,
    spec: String,
    /// Latest snapshot version (0 before the first snapshot).
    version: u64,
    samples_seen: u64,
    /// Prequential (test-then-train) accuracy over all samples.
    accuracy: f64,
    /// Prequential accuracy over the last 1000 samples.
    window_accuracy: f64,
    /// Cohen's kappa over the last 1000 samples.
    kappa: f64,
    /// Peer models merged in (federation has not landed: 0).
    merges: u64,
    memory_bytes: u64,
}

/// Ingest progress.
#[derive(Serialize, ToSchema)]
pub struct IngestSummary {
    source: Option<String>,
    /// Samples consumed from the source.
    offset: u64,
    exhausted: bool,
    /// `POST /v1/learn` batches logged but not yet in a snapshot.
    pending_log_batches: u64,
}

/// Task summary: ledger size and the market's counters.
#[derive(Serialize, ToSchema)]
pub struct TaskSummary {
    /// Tasks in this node's ledger (owned here).
    ledger: u64,
    #[serde(flatten)]
    counts: crate::market::MarketCounts,
}

/// Storage summary.
#[derive(Serialize, ToSchema)]
pub struct StorageSummary {
    snapshots: u64,
    blobs: u64,
    blob_bytes: u64,
    peer_models: u64,
}

/// `GET /v1/status`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    peer_id: String,
    version: &'static str,
    uptime_s: f64,
    /// Connected peers.
    peers: usize,
    listen_addrs: Vec<String>,
    /// Nodes known from status gossip.
    mesh_nodes: usize,
    model: ModelSummary,
    ingest: IngestSummary,
    tasks: TaskSummary,
    storage: StorageSummary,
}

/// `GET /v1/peers`.
#[derive(Serialize, ToSchema)]
pub struct Peers {
    peers: Vec<PeerView>,
    /// Federation: per-peer merge score, merged / rejected / failed pulls,
    /// banned peers.
    federation: crate::federation::FederationStats,
}

/// `GET /v1/mesh`.
#[derive(Serialize, ToSchema)]
pub struct Mesh {
    /// This node.
    peer_id: String,
    /// Every other node heard of on status gossip, with its last status.
    nodes: Vec<MeshView>,
}

/// `GET /v1/model`.
#[derive(Serialize, ToSchema)]
pub struct ModelInfo {
    #[serde(flatten)]
    summary: ModelSummary,
    n_features: usize,
    classes: Vec<String>,
    /// Digest of the latest snapshot (what peers can fetch).
    digest: Option<DigestView>,
    /// Who contributed: per peer, the last version merged and counts.
    federation: crate::federation::FederationStats,
}

/// `POST /v1/learn` body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LearnRequest {
    samples: Vec<LabeledSample>,
}

/// `POST /v1/learn` answer.
#[derive(Serialize, ToSchema)]
pub struct LearnResponse {
    accepted: usize,
    samples_seen: u64,
    model_version: u64,
}

/// `POST /v1/predict` body: one row in `x` or many in `samples`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PredictRequest {
    x: Option<Vec<f64>>,
    samples: Option<Vec<Vec<f64>>>,
}

/// `POST /v1/predict` answer, one prediction per row.
#[derive(Serialize, ToSchema)]
pub struct PredictResponse {
    predictions: Vec<Prediction>,
}

/// `POST /v1/model/pull` query.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct PullQuery {
    /// Peer id to pull from.
    peer: String,
}

/// `POST /v1/model/pull` answer.
#[derive(Serialize, ToSchema)]
pub struct PullResponse {
    peer: String,
    digest: DigestView,
    /// Samples the fetched model learnt from, as stored in the snapshot.
    samples_seen: u64,
    elapsed_ms: f64,
    bytes_per_s: f64,
}

/// One stored data blob.
#[derive(Serialize, ToSchema)]
pub struct BlobInfo {
    /// Root hash (BLAKE3 over the chunk manifest), hex.
    hash: String,
    size: u64,
}

/// `GET /v1/blobs`.
#[derive(Serialize, ToSchema)]
pub struct Blobs {
    /// Newest first, at most 1000.
    blobs: Vec<BlobInfo>,
    count: u64,
    total_bytes: u64,
}

/// `POST /v1/blobs/pull` query.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct BlobPullQuery {
    /// Peer id to pull from.
    peer: String,
    /// Root hash of the blob, 64 hex characters.
    hash: String,
}

/// `POST /v1/blobs/pull` answer.
#[derive(Serialize, ToSchema)]
pub struct BlobPullResponse {
    peer: String,
    hash: String,
    size: u64,
    elapsed_ms: f64,
    bytes_per_s: f64,
}

// ---------- handlers ----------

/// Liveness: 200 as soon as the API serves.
#[utoipa::path(get, path = "/v1/health", responses((status = 200, body = Health)))]
async fn health() -> Json<Health> {
    Json(Health { status: "ok" })
}

fn model_summary(st: &crate::learner::LearnerStatus) -> ModelSummary {
    ModelSummary {
        kind: st.kind.clone(),
        spec: st.spec.clone(),
        version: st.version,
        samples_seen: st.samples_seen,
        accuracy: st.accuracy,
        window_accuracy: st.window_accuracy,
        kappa: st.kappa,
        merges: st.merges,
        memory_bytes: st.memory_bytes as u64,
    }
}

/// Node status: identity, mesh, model, ingest, storage.
#[utoipa::path(get, path = "/v1/status", responses((status = 200, body = Status), (status = 503, body = ErrorBody)))]
async fn status(State(s): State<AppState>) -> Result<Json<Status>, ApiError> {
    let info = with_timeout(s.0.net.info()).await?;
    let st = s.0.learner.status();
    let store = s.0.store.clone();
    let (snapshots, (blobs, blob_bytes), peer_models, ledger) =
        tokio::task::spawn_blocking(move || {
            Ok::<_, crate::store::StoreError>((
                store.snapshot_count()?,
                store.blob_stats()?,
                store.peer_model_count()?,
                store.tasks(100_000)?.len() as u64,
            ))
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(Status {
        peer_id: s.0.peer_id.clone(),
        version: env!("CARGO_PKG_VERSION"),
        uptime_s: s.0.started.elapsed().as_secs_f64(),
        peers: info.peers,
        listen_addrs: info.listen_addrs,
        mesh_nodes: info.mesh_nodes,
        model: model_summary(&st),
        ingest: IngestSummary {
            source: st.source.clone(),
            offset: st.ingest_offset,
            exhausted: st.source_exhausted,
            pending_log_batches: st.pending_log_batches,
        },
        tasks: TaskSummary {
            ledger,
            counts: s.0.market.counts(),
        },
        storage: StorageSummary {
            snapshots,
            blobs,
            blob_bytes,
            peer_models,
        },
    }))
}

/// Peers this node knows: addresses, RTT, bandwidth, model version, score.
#[utoipa::path(get, path = "/v1/peers", responses((status = 200, body = Peers)))]
async fn peers(State(s): State<AppState>) -> Result<Json<Peers>, ApiError> {
    let peers = with_timeout(s.0.net.peers()).await?;
    Ok(Json(Peers {
        peers,
        federation: s.0.federation.stats(),
    }))
}

/// The mesh as seen from status gossip: every node's last status.
#[utoipa::path(get, path = "/v1/mesh", responses((status = 200, body = Mesh)))]
async fn mesh(State(s): State<AppState>) -> Result<Json<Mesh>, ApiError> {
    let nodes = with_timeout(s.0.net.mesh()).await?;
    Ok(Json(Mesh {
        peer_id: s.0.peer_id.clone(),
        nodes,
    }))
}

/// The local model: kind, version, metrics, classes, snapshot digest.
#[utoipa::path(get, path = "/v1/model", responses((status = 200, body = ModelInfo)))]
async fn model(State(s): State<AppState>) -> Json<ModelInfo> {
    let st = s.0.learner.status();
    let digest = s.0.learner.published().map(|p| DigestView::from(&p.digest));
    Json(ModelInfo {
        summary: model_summary(&st),
        n_features: st.n_features,
        classes: st.classes.clone(),
        digest,
        federation: s.0.federation.stats(),
    })
}

/// The latest snapshot (postcard bytes, the same ones peers fetch).
#[utoipa::path(get, path = "/v1/model/snapshot", responses(
    (status = 200, description = "snapshot bytes", content_type = "application/octet-stream"),
    (status = 404, body = ErrorBody)))]
async fn model_snapshot(State(s): State<AppState>) -> Result<Response, ApiError> {
    let Some(p) = s.0.learner.published() else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no snapshot yet",
        ));
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", p.digest.hash.to_hex())) {
        headers.insert(header::ETAG, v);
    }
    if let Ok(v) = HeaderValue::from_str(&p.digest.version.to_string()) {
        headers.insert("x-shoal-model-version", v);
    }
    Ok((headers, p.bytes.as_ref().clone()).into_response())
}

/// Fetches the newest snapshot a peer announced, over request-response, and
/// stores it (federation will merge it).
#[utoipa::path(post, path = "/v1/model/pull", params(PullQuery), responses(
    (status = 200, body = PullResponse), (status = 401, body = ErrorBody),
    (status = 404, body = ErrorBody), (status = 502, body = ErrorBody)))]
async fn model_pull(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PullResponse>, ApiError> {
    authorize(&s, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let peer: libp2p::PeerId = q
        .peer
        .parse()
        .map_err(|e| ApiError::bad_request(format!("peer id `{}`: {e}", q.peer)))?;
    let fetched = fetch_model(&s.0.net, peer, MAX_PEER_MODEL)
        .await
        .map_err(|e| match e {
            FetchError::NoDigest(_) | FetchError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            other => ApiError::new(StatusCode::BAD_GATEWAY, "peer_error", other.to_string()),
        })?;
    let snap = crate::learner::decode_snapshot(&fetched.bytes).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            "peer_error",
            format!("peer snapshot does not decode: {e}"),
        )
    })?;
    let store = s.0.store.clone();
    let key = peer.to_string();
    let bytes = fetched.bytes;
    let size = bytes.len();
    tokio::task::spawn_blocking(move || store.put_peer_model(&key, &bytes))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    s.0.metrics.model_fetches.inc();
    let secs = fetched.elapsed.as_secs_f64().max(1e-6);
    Ok(Json(PullResponse {
        peer: peer.to_string(),
        digest: DigestView::from(&fetched.digest),
        samples_seen: snap.samples_seen,
        elapsed_ms: secs * 1000.0,
        bytes_per_s: size as f64 / secs,
    }))
}

/// Learns labelled samples (test-then-train). Durable before 200: the batch
/// is committed to the node's learn log first. All or nothing.
#[utoipa::path(post, path = "/v1/learn", request_body = LearnRequest, responses(
    (status = 200, body = LearnResponse), (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
    (status = 422, body = ErrorBody)))]
async fn learn(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<Json<LearnResponse>, ApiError> {
    authorize(&s, &headers)?;
    let req: LearnRequest = body.json()?;
    if req.samples.len() > MAX_ROWS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            format!("at most {MAX_ROWS} samples per call"),
        ));
    }
    let ack = s.0.learner.learn(req.samples).await?;
    Ok(Json(LearnResponse {
        accepted: ack.accepted,
        samples_seen: ack.samples_seen,
        model_version: ack.model_version,
    }))
}

/// Predicts class labels and probabilities.
#[utoipa::path(post, path = "/v1/predict", request_body = PredictRequest, responses(
    (status = 200, body = PredictResponse), (status = 400, body = ErrorBody),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn predict(
    State(s): State<AppState>,
    body: RawBody,
) -> Result<Json<PredictResponse>, ApiError> {
    let req: PredictRequest = body.json()?;
    let xs = match (req.x, req.samples) {
        (Some(x), None) => vec![x],
        (None, Some(xs)) => xs,
        _ => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unprocessable",
                "give exactly one of `x` or `samples`",
            ))
        }
    };
    if xs.len() > MAX_ROWS {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            format!("at most {MAX_ROWS} rows per call"),
        ));
    }
    let predictions = s.0.learner.predict(xs).await?;
    Ok(Json(PredictResponse { predictions }))
}

/// Data blobs held here (recent samples, content-addressed).
#[utoipa::path(get, path = "/v1/blobs", responses((status = 200, body = Blobs)))]
async fn blobs(State(s): State<AppState>) -> Result<Json<Blobs>, ApiError> {
    let store = s.0.store.clone();
    let (list, (count, total_bytes)) = tokio::task::spawn_blocking(move || {
        Ok::<_, crate::store::StoreError>((store.blob_list(1000)?, store.blob_stats()?))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(Blobs {
        blobs: list
            .into_iter()
            .map(|(h, size)| BlobInfo {
                hash: h.to_hex(),
                size,
            })
            .collect(),
        count,
        total_bytes,
    }))
}

/// Fetches a data blob from a peer over request-response (verified chunk
/// by chunk) and stores it here.
#[utoipa::path(post, path = "/v1/blobs/pull", params(BlobPullQuery), responses(
    (status = 200, body = BlobPullResponse), (status = 400, body = ErrorBody),
    (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
    (status = 502, body = ErrorBody)))]
async fn blob_pull(
    State(s): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<BlobPullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<BlobPullResponse>, ApiError> {
    authorize(&s, &headers)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let peer: libp2p::PeerId = q
        .peer
        .parse()
        .map_err(|e| ApiError::bad_request(format!("peer id `{}`: {e}", q.peer)))?;
    let root = unhex(&q.hash)
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .map(shoal_protocol::Hash)
        .ok_or_else(|| ApiError::bad_request("hash must be 64 hex characters"))?;
    let budget = s.0.blob_budget_bytes;
    let (bytes, elapsed) = fetch_blob(&s.0.net, peer, root, budget)
        .await
        .map_err(|e| match e {
            FetchError::NoDigest(_) | FetchError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
            }
            other => ApiError::new(StatusCode::BAD_GATEWAY, "peer_error", other.to_string()),
        })?;
    let size = bytes.len() as u64;
    let store = s.0.store.clone();
    tokio::task::spawn_blocking(move || store.put_blob(&root, &bytes, budget))
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let secs = elapsed.as_secs_f64().max(1e-6);
    Ok(Json(BlobPullResponse {
        peer: peer.to_string(),
        hash: root.to_hex(),
        size,
        elapsed_ms: secs * 1000.0,
        bytes_per_s: size as f64 / secs,
    }))
}

/// Prometheus metrics (text exposition format), libp2p's included.
#[utoipa::path(get, path = "/metrics", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> Result<Response, ApiError> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &s.0.registry)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let fed = s.0.federation.metrics_text();
    match out.rfind("# EOF") {
        Some(at) => out.insert_str(at, &fed),
        None => out.push_str(&fed),
    }
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        out,
    )
        .into_response())
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "OpenAPI 3.1 document")))]
async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// The OpenAPI document of the node API.
#[derive(OpenApi)]
#[openapi(
    info(title = "shoal-node API", description = "REST API of a Shoal node"),
    paths(
        health,
        status,
        peers,
        mesh,
        model,
        model_snapshot,
        blobs,
        blob_pull,
        model_pull,
        learn,
        predict,
        crate::market::api::tasks_list,
        crate::market::api::tasks_submit,
        crate::market::api::task_get,
        metrics,
        openapi
    )
)]
pub struct ApiDoc;

/// Every route: path, methods, handler. The router and the OpenAPI test
/// both read this table.
pub fn routes() -> Vec<(
    &'static str,
    &'static [&'static str],
    MethodRouter<AppState>,
)> {
    vec![
        ("/v1/health", &["get"], get(health)),
        ("/v1/status", &["get"], get(status)),
        ("/v1/peers", &["get"], get(peers)),
        ("/v1/mesh", &["get"], get(mesh)),
        ("/v1/model", &["get"], get(model)),
        ("/v1/model/snapshot", &["get"], get(model_snapshot)),
        ("/v1/model/pull", &["post"], post(model_pull)),
        ("/v1/blobs", &["get"], get(blobs)),
        ("/v1/blobs/pull", &["post"], post(blob_pull)),
        ("/v1/learn", &["post"], post(learn)),
        ("/v1/predict", &["post"], post(predict)),
        (
            "/v1/tasks",
            &["get", "post"],
            get(crate::market::api::tasks_list).post(crate::market::api::tasks_submit),
        ),
        (
            "/v1/tasks/{id}",
            &["get"],
            get(crate::market::api::task_get),
        ),
        ("/metrics", &["get"], get(metrics)),
        ("/openapi.json", &["get"], get(openapi)),
    ]
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let mut r = Router::new();
    for (path, _, handler) in routes() {
        r = r.route(path, handler);
    }
    r.fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "method not allowed on this route",
            )
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

#[cfg_attr(not(test), allow(dead_code))]
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 128 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn openapi_lists_every_route_and_method() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        let mut documented = BTreeSet::new();
        for (p, ops) in paths {
            for m in ops.as_object().unwrap().keys() {
                documented.insert((p.clone(), m.clone()));
            }
        }
        let served: BTreeSet<(String, String)> = routes()
            .into_iter()
            .flat_map(|(p, ms, _)| ms.iter().map(move |m| (p.to_string(), m.to_string())))
            .collect();
        assert_eq!(served, documented);
    }

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(&[0, 255, 16])).unwrap(), vec![0, 255, 16]);
        assert!(unhex("zz").is_none());
        assert!(unhex("abc").is_none());
    }
}
