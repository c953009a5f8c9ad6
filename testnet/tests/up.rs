//! Runs `shoal-testnet up` for real: a few `shoal-node` processes on
//! loopback, and checks what a user reads in the JSON summary.
//!
//! The node binary comes from the same target dir as this test
//! (`target/debug/shoal-node`): `scripts/test.sh` builds every binary before
//! the tests. When it is missing the tests say so and skip.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `target/<profile>/shoal-node`, next to the `deps/` folder of this test.
fn node_bin() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe
        .parent()?
        .parent()?
        .join(format!("shoal-node{}", std::env::consts::EXE_SUFFIX));
    bin.is_file().then_some(bin)
}

/// Run `shoal-testnet up ARGS --json` to the end and return the summary.
fn up(name: &str, args: &[&str]) -> Option<(Value, PathBuf)> {
    let Some(bin) = node_bin() else {
        eprintln!(
            "SKIPPED: no shoal-node binary next to the test; run `cargo build -p shoal-node` \
             (scripts/test.sh does) and test again"
        );
        return None;
    };
    let out = std::env::temp_dir().join(format!("shoal-testnet-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal-testnet"))
        .arg("up")
        .args(args)
        .arg("--json")
        .arg("--out")
        .arg(&out)
        .arg("--bin")
        .arg(&bin)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start shoal-testnet");
    let mut stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    // Generous: the run itself is short, but a loaded machine starts slowly.
    let deadline = Instant::now() + Duration::from_secs(300);
    let status = loop {
        if let Some(st) = child.try_wait().expect("wait") {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("shoal-testnet did not finish within 300 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stdout = reader.join().expect("reader");
    assert!(status.success(), "shoal-testnet failed: {status}\n{stdout}");
    let last = stdout.lines().last().expect("some output");
    let summary: Value = serde_json::from_str(last).expect("last stdout line is the JSON summary");
    Some((summary, out))
}

#[test]
fn three_nodes_find_each_other_and_learn() {
    let Some((s, out)) = up("three", &["--nodes", "3", "--duration", "20s"]) else {
        return;
    };
    assert_eq!(s["nodes"], 3);
    assert!(s["duration_s"].as_f64().unwrap() >= 19.0);
    let nodes = s["per_node"].as_array().expect("per_node");
    assert_eq!(nodes.len(), 3);
    let mut ids = Vec::new();
    for n in nodes {
        assert!(
            n["peers"].as_u64().unwrap() >= 2,
            "every node sees the two others: {n}"
        );
        assert!(
            n["samples_seen"].as_u64().unwrap() > 0,
            "every node learned: {n}"
        );
        ids.push(n["peer_id"].as_str().expect("peer id").to_string());
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 3, "three distinct identities");
    assert_eq!(
        s["lost"]["tasks_measured"], false,
        "no market yet: tasks not measured"
    );
    for f in [
        "report.json",
        "report.md",
        "accuracy.svg",
        "samples.svg",
        "peers.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} written");
    }
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn a_node_killed_with_sigkill_comes_back_with_its_identity() {
    let Some((s, out)) = up(
        "churn",
        &[
            "--nodes",
            "3",
            "--scenario",
            "churn",
            "--churn-every",
            "8s",
            "--duration",
            "35s",
        ],
    ) else {
        return;
    };
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("report is JSON");
    let restarts = report["outcome"]["restarts"].as_array().expect("restarts");
    assert!(!restarts.is_empty(), "at least one kill -9 happened");
    for r in restarts {
        assert!(r["answered_after_s"].is_number(), "the node came back: {r}");
        assert_eq!(
            r["peer_id_before"], r["peer_id_after"],
            "same identity: {r}"
        );
        assert!(
            r["model_version_after"].as_u64() >= r["model_version_before"].as_u64(),
            "model version did not go back: {r}"
        );
    }
    assert_eq!(s["lost"]["identity_changes"], 0);
    assert_eq!(s["lost"]["nodes_not_back"], 0);
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn honest_nodes_refuse_a_scaling_attacker() {
    // 5 nodes: node3 flips labels, node4 publishes parameters × 1000.
    let Some((s, out)) = up(
        "byzantine",
        &[
            "--nodes",
            "5",
            "--scenario",
            "byzantine",
            "--duration",
            "40s",
        ],
    ) else {
        return;
    };
    assert_eq!(s["scenario"], "byzantine");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("report.json")).expect("report.json"),
    )
    .expect("report is JSON");
    let checks = report["outcome"]["checks"].as_array().expect("checks");
    let refused = checks
        .iter()
        .find(|c| {
            c["what"]
                .as_str()
                .is_some_and(|w| w.starts_with("node4's scale models are refused"))
        })
        .unwrap_or_else(|| panic!("a check on node4's scale models: {checks:?}"));
    assert_eq!(refused["ok"], true, "{refused}");
    let _ = std::fs::remove_dir_all(&out);
}
