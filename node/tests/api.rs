//! The REST API as a client sees it: auth, JSON errors with stable codes,
//! body limits, nothing learnt from a refused request, OpenAPI document.

#![allow(clippy::unwrap_used)]

mod common;

use common::{http, http_raw, wait_for, Node};

fn samples_seen(n: &Node) -> u64 {
    n.status()["model"]["samples_seen"].as_u64().unwrap()
}

#[test]
fn api_validates_authorizes_and_documents_itself() {
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(dir.path(), &["--api-token", "s3cret", "--model", "nb"]);
    let (code, v) = n.get("/v1/health");
    assert_eq!((code, v["status"].as_str()), (200, Some("ok")));

    let good = r#"{"samples":[{"x":[1.0,2.0],"y":"a"},{"x":[2.0,1.0],"y":"b"}]}"#;
    // No token / wrong token: 401 and nothing learnt.
    let (code, v) = n.post("/v1/learn", good, None);
    assert_eq!(code, 401, "{v}");
    assert_eq!(v["error"]["code"], "unauthorized");
    let (code, _) = n.post("/v1/learn", good, Some("nope"));
    assert_eq!(code, 401);
    assert_eq!(samples_seen(&n), 0);
    let (code, v) = n.post("/v1/tasks", "{}", None);
    assert_eq!(code, 401, "{v}");

    // With the token: learnt.
    let (code, v) = n.post("/v1/learn", good, Some("s3cret"));
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["accepted"], 2);
    assert_eq!(samples_seen(&n), 2);

    // Malformed JSON: 400; wrong shape: 422; wrong feature count: 422.
    let (code, v) = n.post("/v1/learn", "{\"samples\": [", Some("s3cret"));
    assert_eq!(code, 400, "{v}");
    assert_eq!(v["error"]["code"], "bad_request");
    let (code, v) = n.post(
        "/v1/learn",
        r#"{"samples":[{"x":"no","y":"a"}]}"#,
        Some("s3cret"),
    );
    assert_eq!(code, 422, "{v}");
    let bad = r#"{"samples":[{"x":[1.0,2.0],"y":"a"},{"x":[1.0,2.0,3.0],"y":"a"}]}"#;
    let (code, v) = n.post("/v1/learn", bad, Some("s3cret"));
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["error"]["code"], "feature_count");
    // Oversized body: 413 JSON.
    let big = format!(
        r#"{{"samples":[{}]}}"#,
        "{\"x\":[1.0,2.0],\"y\":\"a\"},".repeat(80_000)
    );
    let (code, v) = n.post("/v1/learn", &big, Some("s3cret"));
    assert_eq!(code, 413, "{v}");
    assert_eq!(v["error"]["code"], "payload_too_large");
    // None of the refused calls learnt anything (all or nothing).
    assert_eq!(samples_seen(&n), 2);

    // Predict needs no token; wrong width is 422.
    let (code, v) = n.post("/v1/predict", r#"{"x":[1.0,2.0]}"#, None);
    assert_eq!(code, 200, "{v}");
    let label = v["predictions"][0]["label"].as_str().unwrap();
    assert!(label == "a" || label == "b");
    let (code, v) = n.post("/v1/predict", r#"{"samples":[[1.0,2.0],[2.0,1.0]]}"#, None);
    assert_eq!(code, 200);
    assert_eq!(v["predictions"].as_array().unwrap().len(), 2);
    let (code, v) = n.post("/v1/predict", r#"{"x":[1.0]}"#, None);
    assert_eq!(code, 422, "{v}");

    // Tasks: ledger listing, a body that is no task is refused and
    // changes nothing, unknown id 404.
    let (code, v) = n.get("/v1/tasks");
    assert_eq!(code, 200);
    assert!(v["tasks"].as_array().unwrap().is_empty());
    let (code, v) = n.post("/v1/tasks", "{}", Some("s3cret"));
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["error"]["code"], "unprocessable");
    let (_, v) = n.get("/v1/tasks");
    assert!(v["tasks"].as_array().unwrap().is_empty());
    let (code, _) = n.get("/v1/tasks/00ff");
    assert_eq!(code, 400, "a malformed task id is a bad request");
    let (code, _) = n.get(&format!("/v1/tasks/{}", "0".repeat(32)));
    assert_eq!(code, 404, "an unknown task id is not found");
    let (code, v) = n.get("/v1/nope");
    assert_eq!(
        (code, v["error"]["code"].as_str()),
        (404, Some("not_found"))
    );

    // Metrics in Prometheus text, with ours and libp2p's.
    let (code, body) = http_raw(&n.api, "GET", "/metrics", None, None);
    assert_eq!(code, 200);
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("shoal_samples_seen"), "{text}");
    assert!(text.contains("libp2p"), "libp2p metrics missing");

    // A snapshot appears (10 s timer) and downloads.
    wait_for("a snapshot", || {
        (n.status()["model"]["version"].as_u64()? >= 1).then_some(())
    });
    let (code, bytes) = http_raw(&n.api, "GET", "/v1/model/snapshot", None, None);
    assert_eq!(code, 200);
    assert!(!bytes.is_empty());

    // OpenAPI: 3.x, and every documented GET route answers (not the 404
    // fallback) — the route table itself is compared in a unit test.
    let (code, doc) = n.get("/openapi.json");
    assert_eq!(code, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/v1/health",
        "/v1/status",
        "/v1/peers",
        "/v1/mesh",
        "/v1/model",
        "/v1/model/snapshot",
        "/v1/model/pull",
        "/v1/blobs",
        "/v1/blobs/pull",
        "/v1/learn",
        "/v1/predict",
        "/v1/tasks",
        "/v1/tasks/{id}",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(paths.contains_key(p), "{p} missing from OpenAPI");
    }
    for (p, ops) in paths {
        if ops.get("get").is_some() && !p.contains('{') {
            let (code, v) = http(&n.api, "GET", p, None, None);
            assert_ne!(v["error"]["code"], "not_found", "{p} -> {code}");
        }
    }
}
