//! Runs `shoal-bench suite` on two tiny generator streams and two cheap
//! models: results.jsonl gets one line per job, report.md the tables and
//! tests, and a second run resumes without repeating a job.

use std::path::PathBuf;
use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shoal-bench"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("shoal-suite-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn lines(path: &PathBuf) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .expect("results written")
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

const ARGS: &[&str] = &[
    "suite",
    "--streams",
    "sea_abrupt,stagger_gradual",
    "--models",
    "nb,ht:grace_period=50,leaf=mc",
    "--limit",
    "600",
];

#[test]
fn suite_writes_results_and_report_then_resumes() {
    let dir = scratch("resume");
    let out = dir.join("out");
    let out_s = out.to_str().expect("utf-8 path");
    let mut args = ARGS.to_vec();
    args.extend(["--out", out_s, "--jobs", "2"]);

    let o = bench(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    let results = out.join("results.jsonl");
    let first = lines(&results);
    assert_eq!(first.len(), 4, "2 streams x 2 models");
    for r in &first {
        // The fields of `eval --json`, plus dataset and limit.
        for field in [
            "dataset",
            "model",
            "data",
            "n",
            "accuracy",
            "kappa_t",
            "throughput",
        ] {
            assert!(r.get(field).is_some(), "missing {field} in {r}");
        }
        assert_eq!(r["n"], 600);
        assert_eq!(r["limit"], 600);
        let acc = r["accuracy"].as_f64().expect("number");
        assert!(acc > 0.5 && acc <= 1.0, "{r}");
    }
    let models: Vec<&str> = first.iter().filter_map(|r| r["model"].as_str()).collect();
    assert!(models.contains(&"ht:grace_period=50,leaf=mc"), "{models:?}");

    let report = std::fs::read_to_string(out.join("report.md")).expect("report written");
    for want in [
        "## Average ranks",
        "Friedman test on accuracy",
        "Iman-Davenport",
        "Nemenyi critical difference",
        "### Accuracy (%)",
        "### Kappa-T (%)",
        "### AUC",
        "### Throughput",
        "### Memory",
        "| sea_abrupt |",
        "| stagger_gradual |",
        "by the Nemenyi test",
    ] {
        assert!(report.contains(want), "report lacks `{want}`:\n{report}");
    }
    for svg in ["cd-accuracy.svg", "accuracy-throughput.svg"] {
        let text = std::fs::read_to_string(out.join(svg)).expect("figure written");
        assert!(text.starts_with("<svg"), "{svg}");
    }

    // A killed run leaves a truncated line: the next run drops it and
    // resumes without repeating the finished jobs.
    let mut text = std::fs::read_to_string(&results).expect("read");
    text.push_str("{\"dataset\":\"sea_ab");
    std::fs::write(&results, text).expect("write");
    let o = bench(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("4 already in"), "{}", stderr(&o));
    let second = lines(&results);
    assert_eq!(second, first, "nothing re-run, nothing duplicated");

    // Adding a model runs only the new jobs.
    let mut more = args.clone();
    let models_at = more.iter().position(|a| *a == "--models").expect("present") + 1;
    more[models_at] = "nb,ht:grace_period=50,leaf=mc,perceptron";
    let o = bench(&more);
    assert!(o.status.success(), "{}", stderr(&o));
    let third = lines(&results);
    assert_eq!(third.len(), 6);
    assert_eq!(third[..4], first[..]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_input_is_refused_with_a_clear_error() {
    let dir = scratch("bad");
    let out = dir.join("out");
    let out_s = out.to_str().expect("utf-8 path");

    let o = bench(&[
        "suite",
        "--models",
        "nope",
        "--streams",
        "sea_abrupt",
        "--out",
        out_s,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("nope"), "{}", stderr(&o));

    let missing = dir.join("no-such-dir");
    let o = bench(&[
        "suite",
        "--datasets",
        missing.to_str().expect("utf-8"),
        "--out",
        out_s,
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("datasets directory"), "{}", stderr(&o));
    // Nothing was written for a refused run.
    assert!(!out.join("results.jsonl").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
