//! Submit a compute task to a node's market over the REST API and wait for
//! its result.
//!
//! ```text
//! cargo run -p shoal-testnet --example submit_task -- http://127.0.0.1:7070 [TOKEN]
//! ```
//!
//! The task evaluates a naive Bayes model prequentially over the node's most
//! recent 1,000 samples (kept as content-addressed blobs). The node
//! auctions it to its peers (or runs it itself when alone), and the program
//! polls `GET /v1/tasks/{id}` until the task is committed or failed.
//!
//! A node whose market is switched off answers `POST /v1/tasks` with
//! `501 not_implemented`; the example then says so and exits with status 2
//! (`scripts/examples.sh` counts that as a failure).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use shoal_testnet::http::{truncate, Client};

/// Give up waiting for the result after this long.
const WAIT: Duration = Duration::from_secs(120);

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let base = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:7070".to_string());
    let token = args
        .next()
        .or_else(|| std::env::var("SHOAL_API_TOKEN").ok());
    let api = Client::new(&base)?
        .with_timeout(Duration::from_secs(10))
        .with_token(token);

    // An evaluation over data the node already holds: the smallest task
    // that needs no data blob to be uploaded first.
    let task = serde_json::json!({
        "kind": "evaluate",
        "recent": 1000,
        "model": "nb",
        "deadline_s": 60
    });
    println!("POST {base}/v1/tasks {task}");
    let resp = api.post_json("/v1/tasks", &task)?;
    match resp.status {
        200..=299 => {}
        501 => {
            eprintln!(
                "the node answered 501 Not Implemented: its task market is not running, \
                 so no task can be submitted."
            );
            std::process::exit(2);
        }
        401 => bail!("401 Unauthorized: pass the node's API token as the second argument"),
        s => bail!("POST /v1/tasks: HTTP {s}: {}", truncate(&resp.text(), 300)),
    }
    let body = resp.json()?;
    let id = body
        .pointer("/tasks/0/id")
        .or_else(|| body.get("id"))
        .and_then(|v| v.as_str())
        .context("the reply names no task id")?
        .to_string();
    println!("task {id} accepted; waiting for its result");

    let start = Instant::now();
    loop {
        let entry = api.get_json(&format!("/v1/tasks/{id}"))?;
        let state = entry
            .get("state")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown");
        println!("  {:>5.1} s  {state}", start.elapsed().as_secs_f64());
        match state {
            "committed" | "done" => {
                println!(
                    "result: {} (winner {}, epoch {})",
                    entry.get("result").unwrap_or(&entry),
                    entry.get("winner").unwrap_or(&serde_json::Value::Null),
                    entry.get("epoch").unwrap_or(&serde_json::Value::Null)
                );
                return Ok(());
            }
            "failed" => bail!("task {id} failed: {entry}"),
            _ => {}
        }
        if start.elapsed() > WAIT {
            bail!("task {id} had no result after {} s", WAIT.as_secs());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}
