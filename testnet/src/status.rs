//! What the testnet reads from a node's `GET /v1/status`, parsed leniently.
//!
//! The node's API grows while the testnet is in use, so a missing or
//! renamed field shows as "unknown" instead of failing the whole run; only
//! `peer_id` is required, because without it nothing can be attributed.

use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One snapshot of a node, as polled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub peer_id: String,
    pub version: String,
    pub uptime_s: f64,
    /// Connected peers.
    pub peers: u64,
    pub listen_addrs: Vec<String>,
    pub model_kind: String,
    pub model_version: u64,
    pub samples_seen: u64,
    /// Prequential accuracy; `None` before the first sample.
    pub accuracy: Option<f64>,
    pub merges: u64,
    /// The node's task counters as it reports them (empty until the market
    /// lands).
    pub tasks: Value,
}

impl Status {
    /// Parse a `/v1/status` reply.
    pub fn from_json(v: &Value) -> Result<Status> {
        let peer_id = v
            .get("peer_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| anyhow!("status has no peer_id"))?
            .to_string();
        let model = v.get("model").cloned().unwrap_or(Value::Null);
        let peers = match v.get("peers") {
            Some(Value::Array(a)) => a.len() as u64,
            Some(p) => p.as_u64().unwrap_or(0),
            None => 0,
        };
        let listen_addrs = v
            .get("listen_addrs")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .take(32)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Status {
            peer_id,
            version: str_field(v, "version"),
            uptime_s: v.get("uptime_s").and_then(Value::as_f64).unwrap_or(0.0),
            peers,
            listen_addrs,
            model_kind: str_field(&model, "kind"),
            model_version: u64_field(&model, "version"),
            samples_seen: u64_field(&model, "samples_seen"),
            accuracy: model
                .get("accuracy")
                .and_then(Value::as_f64)
                .filter(|a| a.is_finite()),
            merges: u64_field(&model, "merges"),
            tasks: v.get("tasks").cloned().unwrap_or(Value::Null),
        })
    }

    /// A short form of the task counters for the live table: numeric
    /// fields as `key=value`, or `-` when there are none.
    pub fn tasks_brief(&self) -> String {
        let Some(obj) = self.tasks.as_object() else {
            return "-".into();
        };
        let parts: Vec<String> = obj
            .iter()
            .filter_map(|(k, v)| v.as_u64().map(|n| format!("{k}={n}")))
            .take(4)
            .collect();
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(" ")
        }
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .chars()
        .take(200)
        .collect()
}

fn u64_field(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(|x| x.as_u64().or_else(|| x.as_f64().map(|f| f.max(0.0) as u64)))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_shape() {
        let v = serde_json::json!({
            "peer_id": "12D3KooWabc", "version": "0.1.0", "uptime_s": 12.5, "peers": 4,
            "listen_addrs": ["/ip4/127.0.0.1/tcp/4001"],
            "model": {"kind": "ht", "version": 7, "samples_seen": 1200, "accuracy": 0.81, "merges": 3},
            "tasks": {"queued": 0, "running": 1}
        });
        let s = Status::from_json(&v).expect("valid");
        assert_eq!(s.peers, 4);
        assert_eq!(s.model_version, 7);
        assert_eq!(s.samples_seen, 1200);
        assert_eq!(s.accuracy, Some(0.81));
        assert_eq!(s.tasks_brief(), "queued=0 running=1");
    }

    #[test]
    fn tolerates_missing_fields_but_not_a_missing_peer_id() {
        let s = Status::from_json(&serde_json::json!({"peer_id": "x", "peers": ["a", "b"]}))
            .expect("lenient");
        assert_eq!(s.peers, 2);
        assert_eq!(s.accuracy, None);
        assert_eq!(s.tasks_brief(), "-");
        assert!(Status::from_json(&serde_json::json!({"peers": 1})).is_err());
    }
}
