//! Runs the real `shoal-bench` binary: export a generated stream, evaluate
//! on it, and check the errors a user sees for bad input.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal-bench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-bench-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "failed: {}", stderr(o));
    serde_json::from_str(stdout(o).trim()).expect("one JSON object")
}

#[test]
fn export_then_eval_reads_the_same_stream() {
    let dir = scratch("export");
    let csv = dir.join("sea.csv");
    let csv = csv.to_str().expect("utf-8 path");
    let spec = "sea:variant=2,noise=0.05,seed=11,n=3000";
    let o = bench(&["export", "--data", spec, "--out", csv, "--limit", "2000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(csv).expect("written");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("x0,x1,x2,class"));
    assert_eq!(text.lines().count(), 2001);

    // The file and the generator give the same evaluation.
    let from_file = json(&bench(&[
        "eval",
        "--model",
        "no_change",
        "--data",
        csv,
        "--json",
    ]));
    let from_spec = json(&bench(&[
        "eval",
        "--model",
        "no_change",
        "--data",
        spec,
        "--limit",
        "2000",
        "--json",
    ]));
    for key in ["model", "n", "accuracy", "kappa", "kappa_t"] {
        assert_eq!(from_file[key], from_spec[key], "{key}");
    }
    // Class indices follow the order labels appear in a file, so the
    // untrained first predictions score a little differently.
    let auc = |v: &serde_json::Value| v["auc"].as_f64().expect("auc");
    assert!((auc(&from_file) - auc(&from_spec)).abs() < 0.01);
    assert_eq!(from_file["n"], 2000);
    for key in [
        "data",
        "seconds",
        "throughput",
        "model_bytes",
        "kappa_m",
        "log_loss",
    ] {
        assert!(!from_file[key].is_null(), "{key} missing");
    }
    let acc = from_file["accuracy"].as_f64().expect("number");
    assert!(acc > 0.4 && acc < 0.8, "{acc}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoints_give_a_learning_curve() {
    let o = bench(&[
        "eval",
        "--model",
        "majority",
        "--data",
        "agrawal:function=1,n=5000",
        "--checkpoint",
        "1000",
        "--json",
    ]);
    let v = json(&o);
    let rows = v["checkpoints"].as_array().expect("array");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[4]["n"], 5000);
    assert!(rows[0]["window"]["accuracy"].as_f64().is_some());
}

#[test]
fn malformed_csv_rows_are_skipped_and_named() {
    let dir = scratch("bad");
    let path = dir.join("bad.csv");
    std::fs::write(&path, "a,b,class\n1,2,x\n3,4,y\n5,oops,x\n6\n7,8,y\n").expect("write");
    let p = path.to_str().expect("utf-8 path");
    let v = json(&bench(&[
        "eval", "--model", "majority", "--data", p, "--json",
    ]));
    assert_eq!(v["n"], 3);
    assert_eq!(v["bad_rows"], 2);
    let first = v["first_bad_row"].as_str().expect("message");
    assert!(first.contains("bad.csv:4"), "{first}");
    assert!(first.contains("`oops` is not a number"), "{first}");

    // A file with no valid row at all is an error naming the line.
    let all_bad = dir.join("all_bad.csv");
    std::fs::write(&all_bad, "a,b,class\n1,2\n").expect("write");
    let o = bench(&[
        "eval",
        "--model",
        "majority",
        "--data",
        all_bad.to_str().expect("utf-8"),
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("all_bad.csv:2: expected 3 fields, found 2"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn user_errors_name_what_is_wrong() {
    let o = bench(&["eval", "--model", "no_such_model", "--data", "sea:n=10"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("no_such_model") && err.contains("majority"),
        "{err}"
    );

    let o = bench(&[
        "eval",
        "--model",
        "majority",
        "--data",
        "missing/file.csv.gz",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("missing/file.csv.gz"), "{}", stderr(&o));

    let o = bench(&["eval", "--model", "majority", "--data", "sea:variant=9"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("variant"), "{}", stderr(&o));
}

#[test]
fn models_and_streams_are_listed() {
    let o = bench(&["models"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.contains("majority") && out.contains("no_change"),
        "{out}"
    );
    let o = bench(&["streams"]);
    let out = stdout(&o);
    for g in ["sea", "agrawal", "hyperplane", "rbf_drift", "led", "drift"] {
        assert!(out.contains(g), "{g} missing");
    }
}
