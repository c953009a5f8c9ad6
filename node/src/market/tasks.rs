//! Task requests as clients send them, task parameters as workers read
//! them, and the ledger entry (`tasks` table) the API shows.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most candidate models in one `select` task.
pub const MAX_CANDIDATES: usize = 16;
/// Most tasks in one `POST /v1/tasks` batch.
pub const MAX_BATCH: usize = 256;
/// Longest model spec, bytes.
pub const MAX_SPEC_LEN: usize = 256;
/// Longest deadline a task may ask for, seconds.
pub const MAX_DEADLINE_S: u64 = 3600;
/// Most bids remembered per task in the ledger.
pub const MAX_BIDS_SHOWN: usize = 16;

/// What a worker needs besides the data: travels as the task's first input
/// blob (held by the owner), so the wire `TaskSpec` stays unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TaskParams {
    /// Fit `model` test-then-train; the result is the model.
    Train { model: String },
    /// Prequential metrics, or holdout on the last `holdout` fraction.
    Evaluate { model: String, holdout: Option<f64> },
    /// Predict every sample with a model produced by a train/select task
    /// (`model` = that result's blob hash, the second input).
    Predict { model: String },
    /// Race the candidate specs; the result is the best model and the
    /// leaderboard.
    Select { models: Vec<String> },
}

/// Where a task's data comes from.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InputBlob {
    /// Root hash of a data blob, 64 hex characters.
    pub hash: String,
    /// Peer ids known to hold it (this node is added when it holds it).
    #[serde(default)]
    pub holders: Vec<String>,
}

/// One task as submitted.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRequest {
    /// `train`, `evaluate`, `predict` or `select`.
    pub kind: String,
    /// Data blobs (at most 14).
    #[serde(default)]
    pub inputs: Vec<InputBlob>,
    /// Or: the newest data blobs of this node covering this many samples.
    pub recent: Option<u64>,
    /// Model spec (train, evaluate), e.g. `ht` or `nb`.
    pub model: Option<String>,
    /// Candidate specs (select).
    #[serde(default)]
    pub models: Vec<String>,
    /// Evaluate on the last fraction (0 < f < 1) instead of prequentially.
    pub holdout: Option<f64>,
    /// Predict: the result blob hash of a committed train/select task
    /// held by this node (`result.blob` in `GET /v1/tasks/{id}`).
    pub model_blob: Option<String>,
    /// Seconds until the task fails if not committed (default 120).
    pub deadline_s: Option<u64>,
}

/// `POST /v1/tasks` body: one task, or a batch under `tasks`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SubmitBody {
    Batch { tasks: Vec<TaskRequest> },
    One(TaskRequest),
}

/// A bid as the ledger shows it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BidView {
    pub bidder: String,
    pub epoch: u32,
    pub total_ms: u64,
    pub wait_ms: u64,
    pub compute_ms: u64,
    pub transfer_in_ms: u64,
    pub transfer_out_ms: u64,
    pub non_local_bytes: u64,
}

/// A task as the owner's ledger holds it (JSON in the `tasks` table).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct TaskRecord {
    /// Task id, 32 hex characters.
    pub id: String,
    pub kind: String,
    /// Placement policy it was submitted under.
    pub placement: String,
    /// `pending`, `bidding`, `awarding`, `leased`, `local`, `backoff`,
    /// `committed` or `failed`.
    pub state: String,
    pub epoch: u32,
    /// Peer id that computed the committed result.
    pub winner: Option<String>,
    /// Peer id the policy chose (baselines), if any.
    pub target: Option<String>,
    /// Bids received (latest rounds, at most 16).
    pub bids: Vec<BidView>,
    /// Input blobs: hash, size, holders.
    pub inputs: Vec<InputView>,
    /// Data bytes the worker did not hold (its fetches) plus the result
    /// brought back to the owner.
    pub bytes_moved: u64,
    pub input_bytes: u64,
    pub compute_cost: u64,
    pub submitted_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    /// Submission to commit or failure, ms.
    pub completion_ms: Option<u64>,
    pub fail_reason: Option<String>,
    /// Result summary (JSON from the worker) and its blob.
    pub result: Option<ResultView>,
}

/// An input of a task.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct InputView {
    pub hash: String,
    pub size: u64,
    pub holders: Vec<String>,
    /// The task's parameter blob (not data).
    pub params: bool,
}

/// A committed result.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ResultView {
    /// Root hash of the result body stored here (download with
    /// `GET /v1/tasks/{id}/result`); `null` until fetched.
    pub blob: Option<String>,
    pub size: u64,
    /// Bytes the result took over the network (0 when computed here).
    pub transferred: u64,
    /// Worker's runtime of the compute part, ms (measured by the worker).
    pub runtime_ms: Option<u64>,
    pub summary: serde_json::Value,
}

/// Parses a task kind.
pub fn parse_kind(s: &str) -> Option<shoal_protocol::TaskKind> {
    use shoal_protocol::TaskKind;
    match s {
        "train" => Some(TaskKind::Train),
        "evaluate" => Some(TaskKind::Evaluate),
        "predict" => Some(TaskKind::Predict),
        "select" => Some(TaskKind::Select),
        _ => None,
    }
}

/// Lower-case name of a task kind.
pub fn kind_name(k: shoal_protocol::TaskKind) -> &'static str {
    use shoal_protocol::TaskKind;
    match k {
        TaskKind::Train => "train",
        TaskKind::Evaluate => "evaluate",
        TaskKind::Predict => "predict",
        TaskKind::Select => "select",
    }
}

fn check_spec(spec: &str) -> Result<(), String> {
    if spec.is_empty() || spec.len() > MAX_SPEC_LEN {
        return Err(format!("model spec must be 1 to {MAX_SPEC_LEN} bytes"));
    }
    let schema = shoal_learn::Schema::numeric(2, &["0", "1"]);
    shoal_learn::build_str(spec, &schema)
        .map(|_| ())
        .map_err(|e| format!("model spec `{spec}`: {e}"))
}

/// Checks a request and derives its parameters (without the inputs).
pub fn validate(req: &TaskRequest) -> Result<(shoal_protocol::TaskKind, TaskParams), String> {
    let kind = parse_kind(&req.kind).ok_or_else(|| {
        format!(
            "unknown kind `{}`: use train, evaluate, predict or select",
            req.kind
        )
    })?;
    if req.inputs.is_empty() == req.recent.is_none() {
        return Err("give exactly one of `inputs` (blob hashes) or `recent` (samples)".into());
    }
    if req.inputs.len() > 14 {
        return Err("at most 14 input blobs".into());
    }
    if req.recent == Some(0) {
        return Err("`recent` must be at least 1".into());
    }
    if let Some(d) = req.deadline_s {
        if d == 0 || d > MAX_DEADLINE_S {
            return Err(format!("deadline_s must be 1 to {MAX_DEADLINE_S}"));
        }
    }
    let model = || {
        req.model
            .clone()
            .ok_or_else(|| format!("{} needs `model`", req.kind))
    };
    let params = match kind {
        shoal_protocol::TaskKind::Train => {
            let m = model()?;
            check_spec(&m)?;
            TaskParams::Train { model: m }
        }
        shoal_protocol::TaskKind::Evaluate => {
            let m = model()?;
            check_spec(&m)?;
            if let Some(h) = req.holdout {
                if !(h > 0.0 && h < 1.0) {
                    return Err("holdout must be a fraction strictly between 0 and 1".into());
                }
            }
            TaskParams::Evaluate {
                model: m,
                holdout: req.holdout,
            }
        }
        shoal_protocol::TaskKind::Predict => {
            let m = req
                .model_blob
                .clone()
                .ok_or("predict needs `model_blob` (the result blob of a train task)")?;
            if m.len() != 64 || !m.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err("model_blob must be 64 hex characters".into());
            }
            TaskParams::Predict { model: m }
        }
        shoal_protocol::TaskKind::Select => {
            if req.models.is_empty() || req.models.len() > MAX_CANDIDATES {
                return Err(format!(
                    "select needs `models` with 1 to {MAX_CANDIDATES} specs"
                ));
            }
            for m in &req.models {
                check_spec(m)?;
            }
            TaskParams::Select {
                models: req.models.clone(),
            }
        }
    };
    Ok((kind, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(json: &str) -> TaskRequest {
        match serde_json::from_str::<SubmitBody>(json).unwrap() {
            SubmitBody::One(r) => r,
            SubmitBody::Batch { .. } => panic!("not one"),
        }
    }

    #[test]
    fn validation_explains_what_is_wrong() {
        assert!(validate(&req(r#"{"kind":"train","recent":100,"model":"nb"}"#)).is_ok());
        let e = validate(&req(r#"{"kind":"dance","recent":100}"#)).unwrap_err();
        assert!(e.contains("unknown kind"), "{e}");
        let e = validate(&req(r#"{"kind":"train","recent":100,"model":"nope"}"#)).unwrap_err();
        assert!(e.contains("nope"), "{e}");
        assert!(validate(&req(r#"{"kind":"train","model":"nb"}"#)).is_err());
        assert!(validate(&req(
            r#"{"kind":"evaluate","recent":5,"model":"nb","holdout":1.5}"#
        ))
        .is_err());
        assert!(validate(&req(r#"{"kind":"select","recent":5,"models":[]}"#)).is_err());
        assert!(validate(&req(r#"{"kind":"predict","recent":5,"model_blob":"xyz"}"#)).is_err());
        let b: SubmitBody =
            serde_json::from_str(r#"{"tasks":[{"kind":"train","recent":1,"model":"nb"}]}"#)
                .unwrap();
        assert!(matches!(b, SubmitBody::Batch { tasks } if tasks.len() == 1));
    }
}
