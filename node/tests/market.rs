//! The task market across real `shoal-node` processes on loopback: tasks
//! submitted over HTTP are auctioned, run on real data blobs and committed
//! with real results; the free node holding all the data gets the task
//! without a round, and a task over two nodes' data goes through a round
//! of sealed bids; bad requests get a
//! JSON 4xx; an owner killed with `kill -9` after acknowledging a task still
//! knows it after a restart and ends it exactly once.

#![allow(clippy::unwrap_used)]

mod common;

use common::{wait_for, Node};
use serde_json::{json, Value};

/// A node that learns `source` at full speed and keeps its recent samples
/// as data blobs (one per 1000 samples).
fn data_node(dir: &std::path::Path, source: &str) -> Node {
    data_node_with(dir, source, &[])
}

/// [`data_node`] with more flags.
fn data_node_with(dir: &std::path::Path, source: &str, more: &[&str]) -> Node {
    let mut args = vec![
        "--source",
        source,
        "--rate",
        "0",
        "--snapshot-every",
        "1000",
    ];
    args.extend_from_slice(more);
    Node::start(dir, &args)
}

fn mesh_slots(n: &Node, peer: &str) -> bool {
    let (code, v) = n.get("/v1/mesh");
    code == 200
        && v["nodes"].as_array().is_some_and(|a| {
            a.iter()
                .any(|e| e["peer_id"] == peer && e["task_slots"].as_u64() >= Some(1))
        })
}

fn first_blob(n: &Node) -> Option<String> {
    let (_, v) = n.get("/v1/blobs");
    v["blobs"][0]["hash"].as_str().map(str::to_string)
}

/// Waits until task `id` on `owner` is committed or failed.
fn finished(owner: &Node, id: &str) -> Value {
    wait_for(&format!("task {id} to finish"), || {
        let (code, v) = owner.get(&format!("/v1/tasks/{id}"));
        (code == 200 && (v["state"] == "committed" || v["state"] == "failed")).then_some(v)
    })
}

fn submit(owner: &Node, body: &Value) -> Vec<Value> {
    let (code, v) = owner.post("/v1/tasks", &body.to_string(), None);
    assert_eq!(code, 201, "{v}");
    v["tasks"].as_array().unwrap().clone()
}

#[test]
fn tasks_run_where_the_data_is_and_commit_real_results() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // B holds the data: it learns a stream and keeps recent samples as blobs.
    let b = data_node(dirs[1].path(), "sea:seed=5,n=4000");
    let boot = b.bootstrap_addr();
    let a = Node::start(dirs[0].path(), &["--bootstrap", &boot]);
    let c = data_node_with(dirs[2].path(), "sea:seed=6,n=4000", &["--bootstrap", &boot]);
    let blob = wait_for("a data blob on B", || first_blob(&b));
    for p in [&b.peer_id, &c.peer_id] {
        wait_for("A sees B and C offering task slots", || {
            mesh_slots(&a, p).then_some(())
        });
    }

    // A owns a train task on B's blob: B holds the data and is free, and
    // C would have to fetch it, so B gets the task and moves no input
    // bytes (directly or through a round: see the end of this test).
    let t = submit(
        &a,
        &json!({"kind": "train", "model": "nb",
                "inputs": [{"hash": blob, "holders": [b.peer_id]}], "deadline_s": 60}),
    );
    let id = t[0]["id"].as_str().unwrap().to_string();
    let done = finished(&a, &id);
    assert_eq!(done["state"], "committed", "{done}");
    assert_eq!(done["winner"], b.peer_id.as_str(), "{done}");
    // It fetched only the tiny parameter blob from A, not the data.
    let fetched = done["result"]["summary"]["fetched_bytes"].as_u64().unwrap();
    assert!(fetched < 1000, "{done}");
    let bids = done["bids"].as_array().unwrap();
    let bid_of = |p: &str| bids.iter().find(|x| x["bidder"] == p).cloned();
    if let (Some(bb), Some(cb)) = (bid_of(&b.peer_id), bid_of(&c.peer_id)) {
        assert!(cb["non_local_bytes"].as_u64() > bb["non_local_bytes"].as_u64());
    }
    assert!(done["result"]["summary"]["samples"].as_u64().unwrap() > 0);
    let model_blob = wait_for("the model result stored on A", || {
        let (_, v) = a.get(&format!("/v1/tasks/{id}"));
        v["result"]["blob"].as_str().map(str::to_string)
    });

    // A batch of the other kinds, one of them predicting with that model.
    let inputs = json!([{"hash": blob, "holders": [b.peer_id]}]);
    let batch = submit(
        &a,
        &json!({"tasks": [
            {"kind": "evaluate", "model": "ht", "holdout": 0.25, "inputs": inputs},
            {"kind": "select", "models": ["majority", "nb", "ht"], "inputs": inputs},
            {"kind": "predict", "model_blob": model_blob, "inputs": inputs},
        ]}),
    );
    assert_eq!(batch.len(), 3);
    let ev = finished(&a, batch[0]["id"].as_str().unwrap());
    assert_eq!(ev["state"], "committed", "{ev}");
    assert_eq!(ev["result"]["summary"]["mode"], "holdout");
    assert!(
        ev["result"]["summary"]["metrics"]["accuracy"]
            .as_f64()
            .unwrap()
            > 0.5
    );
    let sel = finished(&a, batch[1]["id"].as_str().unwrap());
    assert_eq!(sel["state"], "committed", "{sel}");
    assert_eq!(
        sel["result"]["summary"]["leaderboard"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_ne!(sel["result"]["summary"]["best"], "majority", "{sel}");
    let pr = finished(&a, batch[2]["id"].as_str().unwrap());
    assert_eq!(pr["state"], "committed", "{pr}");
    assert!(pr["result"]["summary"]["accuracy"].as_f64().unwrap() > 0.5);

    // The ledger lists all four; the status counts them.
    let (_, list) = a.get("/v1/tasks");
    assert_eq!(list["total"], 4, "{list}");
    let st = a.status();
    assert_eq!(st["tasks"]["committed"], 4, "{st}");
    assert_eq!(st["tasks"]["placement"], "auction");

    // A task over B's and C's data: neither holds all of it, so A holds a
    // round. The holders bid, each pricing the blob it lacks, and the
    // winner fetches that blob.
    let c_blob = wait_for("a data blob on C", || first_blob(&c));
    let t = submit(
        &a,
        &json!({"kind": "evaluate", "model": "nb",
                "inputs": [{"hash": blob, "holders": [b.peer_id]},
                           {"hash": c_blob, "holders": [c.peer_id]}]}),
    );
    let done = finished(&a, t[0]["id"].as_str().unwrap());
    assert_eq!(done["state"], "committed", "{done}");
    assert!(
        done["epoch"].as_u64() >= Some(2),
        "a round, then an award: {done}"
    );
    let bids = done["bids"].as_array().unwrap();
    assert!(!bids.is_empty(), "{done}");
    for bid in bids {
        assert!(bid["non_local_bytes"].as_u64() > Some(0), "{done}");
    }
    let winner = done["winner"].as_str().unwrap();
    assert!(winner == b.peer_id || winner == c.peer_id, "{done}");
    let fetched = done["result"]["summary"]["fetched_bytes"].as_u64().unwrap();
    assert!(
        fetched > 1000,
        "the winner fetched the other's blob: {done}"
    );

    // Bad requests: a JSON error, nothing stored.
    let (code, v) = a.post("/v1/tasks", r#"{"kind":"dance","recent":5}"#, None);
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["error"]["code"], "unprocessable");
    let (code, v) = a.post("/v1/tasks", "{not json", None);
    assert_eq!(code, 400, "{v}");
    let nobody = json!({"kind": "train", "model": "nb",
        "inputs": [{"hash": "00".repeat(32), "holders": [b.peer_id]}]});
    let (code, v) = a.post("/v1/tasks", &nobody.to_string(), None);
    assert_eq!(code, 422, "{v}");
    let (code, v) = a.post(
        "/v1/tasks",
        r#"{"kind":"train","model":"nope","recent":10}"#,
        None,
    );
    assert_eq!(code, 422, "{v}");
    let (code, _) = a.get(&format!("/v1/tasks/{}", "ab".repeat(16)));
    assert_eq!(code, 404);
    let (_, list) = a.get("/v1/tasks");
    assert_eq!(list["total"], 5, "the bad requests stored nothing");

    // With B's fresh status at hand (free slot), A gives B a small task on
    // B's data without a round: one award, epoch 1, no bids. C's floor (the
    // bytes it would fetch, at the byte weight) is far above B's estimate.
    // A's first view of B's status may still be on its way, so a few tries.
    let direct = (0..5).find_map(|_| {
        let t = submit(
            &a,
            &json!({"kind": "train", "model": "nb",
                    "inputs": [{"hash": blob, "holders": [b.peer_id]}]}),
        );
        let d = finished(&a, t[0]["id"].as_str().unwrap());
        assert_eq!(d["state"], "committed", "{d}");
        assert_eq!(d["winner"], b.peer_id.as_str(), "{d}");
        (d["epoch"] == 1 && d["bids"].as_array().is_some_and(Vec::is_empty)).then_some(d)
    });
    assert!(direct.is_some(), "no task on B's data was awarded directly");
}

#[test]
fn owner_killed_after_acknowledging_ends_the_task_exactly_once() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let b = data_node(dirs[1].path(), "sea:seed=9,n=3000");
    let boot = b.bootstrap_addr();
    let mut a = Node::start(dirs[0].path(), &["--bootstrap", &boot]);
    let blob = wait_for("a data blob on B", || first_blob(&b));
    wait_for("A sees B offering a slot", || {
        mesh_slots(&a, &b.peer_id).then_some(())
    });
    let tasks = submit(
        &a,
        &json!({"tasks": [
            {"kind": "select", "models": ["nb", "ht", "knn", "lr"],
             "inputs": [{"hash": blob, "holders": [b.peer_id]}], "deadline_s": 90},
            {"kind": "evaluate", "model": "ht",
             "inputs": [{"hash": blob, "holders": [b.peer_id]}], "deadline_s": 90},
        ]}),
    );
    // Acknowledged: now the owner dies without warning.
    a.kill9();
    let a = Node::start(dirs[0].path(), &["--bootstrap", &boot]);
    for t in &tasks {
        let id = t["id"].as_str().unwrap();
        let (code, v) = a.get(&format!("/v1/tasks/{id}"));
        assert_eq!(code, 200, "task {id} lost after kill -9: {v}");
        let done = finished(&a, id);
        assert!(
            done["state"] == "committed" || done["fail_reason"].is_string(),
            "{done}"
        );
    }
    // Exactly once: the ledger holds each task once and the owner's
    // counters add up (a commit or a failure per task, never both).
    let (_, list) = a.get("/v1/tasks");
    assert_eq!(list["total"], 2, "{list}");
    let st = a.status();
    let c = st["tasks"]["committed"].as_u64().unwrap();
    let f = st["tasks"]["failed"].as_u64().unwrap();
    assert_eq!(c + f, 2, "{st}");
    let committed = list["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["state"] == "committed")
        .count() as u64;
    assert_eq!(committed, c, "{list}");
}

#[test]
fn a_queued_task_fetches_its_inputs_while_it_waits_for_a_slot() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let b = data_node(dirs[1].path(), "sea:seed=11,n=8000");
    let boot = b.bootstrap_addr();
    // A runs every task it owns itself, one at a time, on B's data.
    let a = Node::start(
        dirs[0].path(),
        &[
            "--bootstrap",
            &boot,
            "--placement",
            "local",
            "--task-slots",
            "1",
        ],
    );
    let blobs = wait_for("three data blobs on B", || {
        let (_, v) = b.get("/v1/blobs");
        let hs: Vec<String> = v["blobs"]
            .as_array()?
            .iter()
            .filter_map(|x| x["hash"].as_str().map(str::to_string))
            .collect();
        (hs.len() >= 3).then_some(hs)
    });
    wait_for("A connected to B", || {
        let (_, v) = a.get("/v1/peers");
        (v.to_string().contains(&b.peer_id)).then_some(())
    });
    let inputs: Vec<Value> = blobs
        .iter()
        .take(3)
        .map(|h| json!({"hash": h, "holders": [b.peer_id]}))
        .collect();
    let select = json!({"kind": "select", "models": ["knn", "ht", "nb", "lr"],
                        "inputs": inputs, "deadline_s": 120});
    let tasks = submit(&a, &json!({"tasks": [select, select, select]}));
    let mut waited = 0;
    for t in &tasks {
        let done = finished(&a, t["id"].as_str().unwrap());
        assert_eq!(done["state"], "committed", "{done}");
        let s = &done["result"]["summary"];
        // B's data crossed the network, all of it before the slot...
        let bytes = s["fetched_bytes"].as_u64().unwrap();
        assert!(bytes > 10_000, "{done}");
        assert_eq!(s["prefetched_bytes"].as_u64(), Some(bytes), "{done}");
        assert_eq!(s["leaderboard"].as_array().unwrap().len(), 4, "{done}");
        // ...and before the task took it, never while holding it.
        let fetched = s["fetched_after_ms"].as_u64().unwrap();
        let slot = s["slot_after_ms"].as_u64().unwrap();
        assert!(fetched <= slot, "{done}");
        if slot > fetched {
            waited += 1;
        }
    }
    // With one slot, the tasks that queued had their inputs in hand while
    // they waited.
    assert!(waited >= 1, "no task waited for the slot: {tasks:?}");
}

#[test]
fn data_locality_placement_sends_a_task_to_its_data() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let b = data_node(dirs[1].path(), "sea:seed=13,n=2000");
    let boot = b.bootstrap_addr();
    let a = Node::start(
        dirs[0].path(),
        &["--bootstrap", &boot, "--placement", "data_locality"],
    );
    let c = Node::start(dirs[2].path(), &["--bootstrap", &boot]);
    let blob = wait_for("a data blob on B", || first_blob(&b));
    for p in [&b.peer_id, &c.peer_id] {
        wait_for("A sees B and C offering task slots", || {
            mesh_slots(&a, p).then_some(())
        });
    }
    let tasks = submit(
        &a,
        &json!({"tasks": [
            {"kind": "train", "model": "nb",
             "inputs": [{"hash": blob, "holders": [b.peer_id]}]},
            {"kind": "evaluate", "model": "ht",
             "inputs": [{"hash": blob, "holders": [b.peer_id]}]},
        ]}),
    );
    for t in &tasks {
        assert_eq!(t["placement"], "data_locality", "{t}");
        assert_eq!(t["target"], b.peer_id.as_str(), "{t}");
        let done = finished(&a, t["id"].as_str().unwrap());
        assert_eq!(done["state"], "committed", "{done}");
        assert_eq!(done["winner"], b.peer_id.as_str(), "{done}");
        // Only the tiny parameter blob moved to B, not the data.
        let fetched = done["result"]["summary"]["fetched_bytes"].as_u64().unwrap();
        assert!(fetched < 1000, "{done}");
    }
}
