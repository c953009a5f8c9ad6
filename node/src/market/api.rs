//! Task routes of the REST API: submit (one or a batch), list, show.
//!
//! A submission is validated completely (kind, model specs, inputs
//! resolvable: held here, or a holder that serves its manifest) before
//! anything is stored; then its parameter blob is stored and the market
//! commits the task to the ledger, and only then answers 201.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use libp2p::PeerId;
use serde::{Deserialize, Serialize};
use shoal_protocol::{BlobRef, BoundedVec, Hash, Manifest, NodeId, Request, Response};
use utoipa::ToSchema;

use super::executor::{self, decode_samples, is_market_blob};
use super::tasks::{validate, SubmitBody, TaskParams, TaskRecord, TaskRequest, MAX_BATCH};
use super::{MarketError, Prepared};
use crate::api::{authorize, ApiError, AppState, RawBody};

/// Default deadline of a task, seconds.
const DEFAULT_DEADLINE_S: u64 = 120;
/// Most tasks `GET /v1/tasks` returns.
const MAX_LIST: usize = 1000;

/// `POST /v1/tasks` answer.
#[derive(Serialize, ToSchema)]
pub struct Submitted {
    /// The accepted tasks, durable in the ledger.
    tasks: Vec<TaskRecord>,
}

/// `GET /v1/tasks` answer.
#[derive(Serialize, ToSchema)]
pub struct TaskList {
    /// Newest first.
    tasks: Vec<TaskRecord>,
    /// Tasks in the ledger.
    total: usize,
}

/// `GET /v1/tasks` query.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// Most tasks to return (default 100, at most 1000).
    limit: Option<usize>,
    /// Only tasks in this state (`committed`, `failed`, `leased`, ...).
    state: Option<String>,
}

fn unprocessable(m: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "unprocessable", m)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

fn parse_hash(s: &str) -> Option<Hash> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(Hash(out))
}

fn node_of(p: &PeerId) -> Option<NodeId> {
    NodeId::from_bytes(&p.to_bytes()).ok()
}

/// Resolves one request into blob references (params first), storing the
/// parameter blob.
async fn prepare(s: &AppState, req: &TaskRequest) -> Result<Prepared, ApiError> {
    let (kind, params) = validate(req).map_err(unprocessable)?;
    let inner = s.inner();
    let me_peer: PeerId = inner
        .peer_id
        .parse()
        .map_err(|e| internal(format!("own peer id: {e}")))?;
    let me = node_of(&me_peer).ok_or_else(|| internal("own peer id too long"))?;
    let store = inner.store.clone();
    let budget = inner.blob_budget_bytes;
    let mut inputs: Vec<BlobRef> = Vec::new();
    let here = |h: Hash, size: u64| -> Result<BlobRef, ApiError> {
        Ok(BlobRef {
            hash: h,
            size,
            holders: BoundedVec::try_from_vec(vec![me]).map_err(internal)?,
        })
    };
    // The model input of predict: a result blob held here.
    if let TaskParams::Predict { model } = &params {
        let h = parse_hash(model).ok_or_else(|| unprocessable("model_blob must be 64 hex"))?;
        let st = store.clone();
        let body = tokio::task::spawn_blocking(move || st.get_blob(&h))
            .await
            .map_err(internal)?
            .map_err(internal)?
            .ok_or_else(|| unprocessable(format!("model_blob {model} is not held by this node")))?;
        let ok = executor::ResultBody::decode(&body)
            .and_then(|b| b.artifact)
            .and_then(|a| postcard::from_bytes::<executor::TrainedModel>(&a).ok())
            .is_some();
        if !ok {
            return Err(unprocessable(format!(
                "model_blob {model} is not the result of a train or select task"
            )));
        }
        inputs.push(here(h, body.len() as u64)?);
    }
    let mut input_bytes = 0u64;
    if let Some(n) = req.recent {
        // The newest sample blobs here covering `n` samples.
        let st = store.clone();
        let picked = tokio::task::spawn_blocking(move || {
            let mut got = 0u64;
            let mut picked = Vec::new();
            for (h, size) in st.blob_list(1000)? {
                if got >= n || picked.len() >= 14 {
                    break;
                }
                let Some(body) = st.get_blob(&h)? else {
                    continue;
                };
                if is_market_blob(&body) {
                    continue;
                }
                if let Ok(s) = decode_samples(0, &body) {
                    got += s.len() as u64;
                    picked.push((h, size));
                }
            }
            Ok::<_, crate::store::StoreError>((picked, got))
        })
        .await
        .map_err(internal)?
        .map_err(internal)?;
        if picked.0.is_empty() {
            return Err(unprocessable(
                "this node holds no sample blobs yet (it keeps recent samples after a snapshot)",
            ));
        }
        for (h, size) in picked.0 {
            input_bytes += size;
            inputs.push(here(h, size)?);
        }
    }
    for (i, b) in req.inputs.iter().enumerate() {
        let h = parse_hash(&b.hash)
            .ok_or_else(|| unprocessable(format!("inputs[{i}].hash must be 64 hex characters")))?;
        if b.holders.len() > 7 {
            return Err(unprocessable(format!("inputs[{i}]: at most 7 holders")));
        }
        let mut holders = Vec::new();
        for p in &b.holders {
            let peer: PeerId = p
                .parse()
                .map_err(|e| unprocessable(format!("inputs[{i}].holders: `{p}`: {e}")))?;
            if let Some(n) = node_of(&peer) {
                holders.push((peer, n));
            }
        }
        let st = store.clone();
        let local = tokio::task::spawn_blocking(move || st.get_blob(&h))
            .await
            .map_err(internal)?
            .map_err(internal)?;
        let size = match local {
            Some(body) => {
                if decode_samples(i, &body).is_err() {
                    return Err(unprocessable(format!(
                        "inputs[{i}] {} is not a sample blob",
                        b.hash
                    )));
                }
                body.len() as u64
            }
            None => {
                // Ask a holder for the manifest: proves it exists there and
                // gives its size.
                let mut size = None;
                for (peer, _) in &holders {
                    let r = tokio::time::timeout(
                        std::time::Duration::from_secs(5),
                        inner.net.request(*peer, Request::ManifestFetch { hash: h }),
                    )
                    .await;
                    if let Ok(Ok(Response::Manifest(m))) = r {
                        if m.verify(&h).is_ok() && m.size <= budget {
                            size = Some(m.size);
                            break;
                        }
                    }
                }
                size.ok_or_else(|| {
                    unprocessable(format!(
                        "inputs[{i}] {} is not held here and no listed holder serves it",
                        b.hash
                    ))
                })?
            }
        };
        let mut hs: Vec<NodeId> = holders.iter().map(|(_, n)| *n).collect();
        if local_has(&store, h).await {
            hs.insert(0, me);
        }
        hs.dedup();
        input_bytes += size;
        inputs.push(BlobRef {
            hash: h,
            size,
            holders: BoundedVec::try_from_vec(hs).map_err(internal)?,
        });
    }
    // The parameters travel as the first input, held here.
    let pbytes = executor::encode_params(&params);
    let m = Manifest::of(&pbytes).map_err(internal)?;
    let proot = m.root();
    let st = store.clone();
    let pb = pbytes.clone();
    tokio::task::spawn_blocking(move || st.put_blob(&proot, &pb, budget))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    inputs.insert(0, here(proot, pbytes.len() as u64)?);
    let cost_factor = match &params {
        TaskParams::Select { models } => (models.len() as u64).div_ceil(2).max(1),
        _ => 1,
    };
    Ok(Prepared {
        kind,
        inputs,
        params_blob: proot,
        input_bytes,
        deadline_ms: req.deadline_s.unwrap_or(DEFAULT_DEADLINE_S) * 1000,
        cost_factor,
    })
}

async fn local_has(store: &crate::store::Store, h: Hash) -> bool {
    let st = store.clone();
    tokio::task::spawn_blocking(move || st.has_blob(&h).unwrap_or(false))
        .await
        .unwrap_or(false)
}

/// Submits one task or a batch (`{"tasks": [...]}`). Every task is
/// validated first; 201 once all are durable in the ledger.
#[utoipa::path(post, path = "/v1/tasks", request_body = SubmitBody, responses(
    (status = 201, body = Submitted), (status = 400, body = crate::api::ErrorBody),
    (status = 401, body = crate::api::ErrorBody), (status = 413, body = crate::api::ErrorBody),
    (status = 422, body = crate::api::ErrorBody), (status = 503, body = crate::api::ErrorBody)))]
pub async fn tasks_submit(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: RawBody,
) -> Result<(StatusCode, Json<Submitted>), ApiError> {
    authorize(&s, &headers)?;
    let body: SubmitBody = body.json()?;
    let reqs = match body {
        SubmitBody::One(r) => vec![r],
        SubmitBody::Batch { tasks } => tasks,
    };
    if reqs.is_empty() || reqs.len() > MAX_BATCH {
        return Err(unprocessable(format!(
            "a batch holds 1 to {MAX_BATCH} tasks"
        )));
    }
    let mut prepared = Vec::with_capacity(reqs.len());
    for (i, r) in reqs.iter().enumerate() {
        let p = prepare(&s, r).await.map_err(|e| {
            if reqs.len() > 1 {
                e.prefixed(&format!("tasks[{i}]: "))
            } else {
                e
            }
        })?;
        prepared.push(p);
    }
    let market = s.inner().market.clone();
    let tasks = market.submit(prepared).await.map_err(|e| match e {
        MarketError::Gone => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
        MarketError::Refused(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            e.to_string(),
        ),
        MarketError::Store(_) => internal(e),
    })?;
    Ok((StatusCode::CREATED, Json(Submitted { tasks })))
}

fn read_all(store: &crate::store::Store) -> Result<Vec<TaskRecord>, ApiError> {
    let rows = store.tasks(100_000).map_err(internal)?;
    let mut v: Vec<TaskRecord> = rows
        .into_iter()
        .filter_map(|(_, v)| serde_json::from_slice(&v).ok())
        .collect();
    v.sort_by(|a, b| {
        b.submitted_unix_ms
            .cmp(&a.submitted_unix_ms)
            .then(b.id.cmp(&a.id))
    });
    Ok(v)
}

/// The task ledger of this node (tasks it owns), newest first.
#[utoipa::path(get, path = "/v1/tasks", params(ListQuery), responses(
    (status = 200, body = TaskList), (status = 400, body = crate::api::ErrorBody)))]
pub async fn tasks_list(
    State(s): State<AppState>,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TaskList>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100).min(MAX_LIST);
    let store = s.inner().store.clone();
    let all = tokio::task::spawn_blocking(move || read_all(&store))
        .await
        .map_err(internal)??;
    let total = all.len();
    let tasks = all
        .into_iter()
        .filter(|r| q.state.as_ref().is_none_or(|st| &r.state == st))
        .take(limit)
        .collect();
    Ok(Json(TaskList { tasks, total }))
}

/// One task: state, winner, epoch, bids, bytes moved, timings, result.
#[utoipa::path(get, path = "/v1/tasks/{id}", params(("id" = String, Path, description = "task id, 32 hex characters")),
    responses((status = 200, body = TaskRecord), (status = 400, body = crate::api::ErrorBody),
    (status = 404, body = crate::api::ErrorBody)))]
pub async fn task_get(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<TaskRecord>, ApiError> {
    let n = u128::from_str_radix(&id, 16)
        .ok()
        .filter(|_| id.len() == 32)
        .ok_or_else(|| ApiError::bad_request("task id must be 32 hex characters"))?;
    let store = s.inner().store.clone();
    let row = tokio::task::spawn_blocking(move || store.task(&n.to_be_bytes()))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let rec = row
        .and_then(|v| serde_json::from_slice::<TaskRecord>(&v).ok())
        .ok_or_else(|| {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no task {id}"))
        })?;
    Ok(Json(rec))
}
