//! Multi-process tests: real `shoal-node` processes on loopback discover
//! each other through a bootstrap address, exchange status over gossip,
//! fetch a model over request-response, survive `kill -9`, and refuse peers
//! without the network key.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{wait_for, Node};
use serde_json::Value;

fn mesh_ids(n: &Node) -> Vec<String> {
    let (code, v) = n.get("/v1/mesh");
    if code != 200 {
        return Vec::new();
    }
    v["nodes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e["peer_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn three_nodes_gossip_status_and_pull_a_model() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = Node::start(
        dirs[0].path(),
        &[
            "--source",
            "sea:seed=3,n=100000",
            "--rate",
            "2000",
            "--snapshot-every",
            "500",
            "--model",
            "ht",
        ],
    );
    let boot = a.bootstrap_addr();
    let b = Node::start(dirs[1].path(), &["--bootstrap", &boot, "--model", "nb"]);
    let c = Node::start(dirs[2].path(), &["--bootstrap", &boot]);
    let nodes = [&a, &b, &c];

    // Everyone hears everyone else's status on gossip.
    for n in nodes {
        let others: Vec<&str> = nodes
            .iter()
            .filter(|o| o.peer_id != n.peer_id)
            .map(|o| o.peer_id.as_str())
            .collect();
        wait_for("status gossip from every other node", || {
            let ids = mesh_ids(n);
            others
                .iter()
                .all(|o| ids.iter().any(|i| i == o))
                .then_some(())
        });
    }

    // B and C are connected to A; /v1/peers shows them with an RTT.
    let peers = wait_for("A connected to B and C with RTTs", || {
        let (_, v) = a.get("/v1/peers");
        let list = v["peers"].as_array()?.clone();
        let ok = [&b, &c].iter().all(|n| {
            list.iter().any(|p| {
                p["id"] == n.peer_id.as_str() && p["connected"] == true && p["rtt_ms"].is_number()
            })
        });
        ok.then_some(list)
    });
    assert!(peers.len() >= 2);
    assert!(a.status()["peers"].as_u64().unwrap() >= 2);

    // A's model digest reaches B; B pulls the snapshot over request-response.
    wait_for("A's model digest in B's mesh view", || {
        let (_, v) = b.get("/v1/mesh");
        v["nodes"].as_array()?.iter().find(|e| {
            e["peer_id"] == a.peer_id.as_str() && e["model"]["version"].as_u64() > Some(0)
        })?;
        Some(())
    });
    let pulled = wait_for("a model pull from A", || {
        let (code, v) = b.post(&format!("/v1/model/pull?peer={}", a.peer_id), "", None);
        (code == 200).then_some(v)
    });
    assert_eq!(pulled["peer"], a.peer_id.as_str());
    assert_eq!(pulled["digest"]["kind"], "ht");
    assert!(pulled["samples_seen"].as_u64().unwrap() > 0, "{pulled}");
    assert_eq!(b.status()["storage"]["peer_models"], 1);
    // The transfer fed B's bandwidth estimate of A.
    let (_, v) = b.get("/v1/peers");
    let pa = v["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == a.peer_id.as_str())
        .cloned()
        .unwrap_or(Value::Null);
    assert!(pa["bytes_in"].as_u64().unwrap_or(0) > 0, "{pa}");

    // A keeps recent samples as content-addressed blobs; B fetches one.
    let (code, v) = a.get("/v1/blobs");
    assert_eq!(code, 200);
    let blob = v["blobs"][0].clone();
    let hash = blob["hash"].as_str().expect("A holds a blob").to_string();
    let (code, v) = b.post(
        &format!("/v1/blobs/pull?peer={}&hash={hash}", a.peer_id),
        "",
        None,
    );
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["size"], blob["size"]);
    let (_, v) = b.get("/v1/blobs");
    assert!(v["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["hash"] == hash.as_str()));
    // A hash nobody holds is a 404.
    let (code, v) = b.post(
        &format!("/v1/blobs/pull?peer={}&hash={}", a.peer_id, "00".repeat(32)),
        "",
        None,
    );
    assert_eq!(code, 404, "{v}");

    // Pulling from a peer that never announced a model is a 404, not a hang.
    let (code, v) = a.post(&format!("/v1/model/pull?peer={}", c.peer_id), "", None);
    assert_eq!(code, 404, "{v}");
    assert_eq!(v["error"]["code"], "not_found");
}

#[test]
fn kill9_restart_keeps_identity_model_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--source",
        "sea:seed=5,n=1000000",
        "--rate",
        "1000",
        "--snapshot-every",
        "300",
    ];
    let mut n = Node::start(dir.path(), &args);
    let peer_id = n.peer_id.clone();
    wait_for("a few snapshots", || {
        (n.status()["model"]["version"].as_u64()? >= 3).then_some(())
    });
    // Ten acknowledged HTTP samples must survive the crash too.
    let batch: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"x":[{i}.0,1.0,2.0],"y":"1"}}"#))
        .collect();
    let (code, v) = n.post(
        "/v1/learn",
        &format!(r#"{{"samples":[{}]}}"#, batch.join(",")),
        None,
    );
    assert_eq!(code, 200, "{v}");
    let before = n.status();
    n.kill9();

    // Restart with a crawl of a rate so the restored state is what we read.
    let slow = [
        "--source",
        "sea:seed=5,n=1000000",
        "--rate",
        "0.001",
        "--snapshot-every",
        "300",
    ];
    let n = Node::start(dir.path(), &slow);
    assert_eq!(n.peer_id, peer_id, "peer id must survive restarts");
    let after = n.status();
    let v_before = before["model"]["version"].as_u64().unwrap();
    let v_after = after["model"]["version"].as_u64().unwrap();
    assert!(v_after >= v_before, "version {v_after} < {v_before}");
    let seen = after["model"]["samples_seen"].as_u64().unwrap();
    let offset = after["ingest"]["offset"].as_u64().unwrap();
    // Consistent pair: every source sample up to the offset is in the model
    // exactly once, plus the ten acknowledged HTTP samples.
    assert_eq!(seen, offset + 10, "{after}");
    assert!(offset >= 900, "{after}");
    // The model snapshot on disk is served and has that version.
    let (code, m) = n.get("/v1/model");
    assert_eq!(code, 200);
    assert_eq!(m["digest"]["version"].as_u64(), Some(v_after));
}

#[test]
fn wrong_network_key_cannot_connect() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let k1 = dirs[0].path().join("swarm.key");
    std::fs::write(
        &k1,
        "/key/swarm/psk/1.0.0/\n/base16/\n0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n",
    )
    .unwrap();
    let k2 = dirs[2].path().join("swarm.key");
    std::fs::write(
        &k2,
        "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210",
    )
    .unwrap();
    let k1s = k1.to_str().unwrap();
    let a = Node::start(dirs[0].path(), &["--network-key", k1s]);
    // With a key, the node listens on TCP only.
    assert!(
        a.listen.iter().all(|l| l.contains("/tcp/")),
        "{:?}",
        a.listen
    );
    let boot = a.bootstrap_addr();
    let b = Node::start(
        dirs[1].path(),
        &["--network-key", k1s, "--bootstrap", &boot],
    );
    let c = Node::start(
        dirs[2].path(),
        &["--network-key", k2.to_str().unwrap(), "--bootstrap", &boot],
    );
    wait_for("B (same key) connected to A", || {
        (b.status()["peers"].as_u64()? >= 1).then_some(())
    });
    // C keeps dialing A (bootstrap redial) but never gets through.
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        assert_eq!(c.status()["peers"], 0, "wrong key connected");
        let (_, v) = a.get("/v1/peers");
        let connected_c = v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == c.peer_id.as_str() && p["connected"] == true);
        assert!(!connected_c);
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn allow_list_admits_only_listed_peers() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // `init` creates B's key up front, so A can be told to allow it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shoal-node"))
        .arg("init")
        .arg("--data-dir")
        .arg(dirs[1].path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let b_id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(dirs[1].path().join("shoal.toml").exists());

    let a = Node::start(dirs[0].path(), &["--allow-peer", &b_id]);
    let boot = a.bootstrap_addr();
    let b = Node::start(dirs[1].path(), &["--bootstrap", &boot]);
    assert_eq!(b.peer_id, b_id, "run must use the key init created");
    let c = Node::start(dirs[2].path(), &["--bootstrap", &boot]);
    wait_for("listed peer B connected to A", || {
        (b.status()["peers"].as_u64()? >= 1).then_some(())
    });
    let until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < until {
        let (_, v) = a.get("/v1/peers");
        let connected_c = v["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["id"] == c.peer_id.as_str() && p["connected"] == true);
        assert!(!connected_c, "unlisted peer C connected");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn mdns_finds_peers_on_the_lan_without_bootstrap() {
    // Two nodes with no bootstrap address at all: only mDNS on the host's
    // LAN interface can bring them together.
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = Node::start_mdns(dirs[0].path(), &[]);
    let b = Node::start_mdns(dirs[1].path(), &[]);
    for (n, other) in [(&a, &b), (&b, &a)] {
        wait_for("the other node found by mDNS", || {
            let (_, v) = n.get("/v1/peers");
            v["peers"]
                .as_array()?
                .iter()
                .any(|p| p["id"] == other.peer_id.as_str() && p["connected"] == true)
                .then_some(())
        });
    }
}
