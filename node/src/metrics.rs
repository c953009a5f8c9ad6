//! Prometheus metrics of the node (`GET /metrics`): learner, storage and
//! mesh gauges registered here, plus libp2p's own metrics (registered into
//! the same registry by the swarm builder and `libp2p::metrics`).

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The node's own metrics. Cheap to update from any task (atomics).
#[derive(Default, Clone)]
pub struct NodeMetrics {
    pub samples_seen: Gauge,
    pub accuracy: Gauge<f64, AtomicU64>,
    pub window_accuracy: Gauge<f64, AtomicU64>,
    pub model_version: Gauge,
    pub model_bytes: Gauge,
    pub snapshots: Counter,
    pub peers: Gauge,
    pub mesh_nodes: Gauge,
    pub learn_requests: Counter,
    pub model_fetches: Counter,
    pub inbound_requests: Counter,
}

impl NodeMetrics {
    /// Creates the metrics and registers them under the `shoal` prefix.
    pub fn register(registry: &mut Registry) -> NodeMetrics {
        let m = NodeMetrics::default();
        let r = registry.sub_registry_with_prefix("shoal");
        r.register(
            "samples_seen",
            "Samples learnt by the local model",
            m.samples_seen.clone(),
        );
        r.register(
            "accuracy",
            "Prequential accuracy over all samples",
            m.accuracy.clone(),
        );
        r.register(
            "window_accuracy",
            "Prequential accuracy over the recent window",
            m.window_accuracy.clone(),
        );
        r.register(
            "model_version",
            "Version of the latest model snapshot",
            m.model_version.clone(),
        );
        r.register(
            "model_bytes",
            "Memory of the model, bytes",
            m.model_bytes.clone(),
        );
        r.register("snapshots", "Model snapshots written", m.snapshots.clone());
        r.register("peers", "Connected peers", m.peers.clone());
        r.register(
            "mesh_nodes",
            "Nodes known from status gossip",
            m.mesh_nodes.clone(),
        );
        r.register(
            "learn_requests",
            "Accepted POST /v1/learn batches",
            m.learn_requests.clone(),
        );
        r.register(
            "model_fetches",
            "Model snapshots fetched from peers",
            m.model_fetches.clone(),
        );
        r.register(
            "inbound_requests",
            "Request-response requests served",
            m.inbound_requests.clone(),
        );
        m
    }
}
