//! Start two `shoal-node` processes from one program and watch them find
//! each other.
//!
//! ```text
//! cargo build --release -p shoal-node
//! cargo run --release -p shoal-testnet --example two_nodes
//! ```
//!
//! The first node starts alone; the second bootstraps to it with the
//! address `/ip4/127.0.0.1/tcp/PORT/p2p/PEER_ID`. Both learn from their own
//! seeded generator. The program polls `GET /v1/status` of both until each
//! sees the other, then prints both models for a few seconds (and, once
//! federation is in the build, the merge counter going up). Both processes
//! are stopped when the program ends, also on error.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use shoal_testnet::node::{default_node_bin, NodeProcess, NodeSpec};
use shoal_testnet::status::Status;
use shoal_testnet::util::PortPicker;

fn main() -> Result<()> {
    let bin = default_node_bin()?;
    let dir = std::env::temp_dir().join(format!("shoal-two-nodes-{}", std::process::id()));
    let mut ports = PortPicker::default();

    let mut a = NodeSpec::loopback("a", &bin, &dir.join("a"), ports.pick()?, ports.pick()?);
    a.source = Some("sea:noise=0.1,seed=1,n=1000000".into());
    a.rate = Some(200.0);
    std::fs::create_dir_all(dir.join("a"))?;
    let mut node_a = NodeProcess::spawn(&a)?;
    let status_a = node_a.wait_ready(Duration::from_secs(60), &|| false)?;
    println!("a is up: {} (api {})", status_a.peer_id, a.api_base());

    let mut b = NodeSpec::loopback("b", &bin, &dir.join("b"), ports.pick()?, ports.pick()?);
    b.source = Some("sea:noise=0.1,seed=2,n=1000000".into());
    b.rate = Some(200.0);
    b.bootstrap = vec![a.dial_addr(&status_a.peer_id)];
    std::fs::create_dir_all(dir.join("b"))?;
    let mut node_b = NodeProcess::spawn(&b)?;
    let status_b = node_b.wait_ready(Duration::from_secs(60), &|| false)?;
    println!(
        "b is up: {}, bootstrapping to {}",
        status_b.peer_id, b.bootstrap[0]
    );

    let poll =
        |n: &NodeProcess| -> Result<Status> { Status::from_json(&n.api().get_json("/v1/status")?) };
    let start = Instant::now();
    loop {
        let (sa, sb) = (poll(&node_a)?, poll(&node_b)?);
        if sa.peers >= 1 && sb.peers >= 1 {
            println!(
                "connected after {:.1} s: a sees {} peer(s), b sees {}",
                start.elapsed().as_secs_f64(),
                sa.peers,
                sb.peers
            );
            break;
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!(
                "the two nodes did not find each other within 60 s; logs in {}",
                dir.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }

    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(2));
        for (name, node) in [("a", &node_a), ("b", &node_b)] {
            let s = poll(node).with_context(|| format!("polling {name}"))?;
            println!(
                "  {name}: {} samples, accuracy {}, model v{}, {} merges",
                s.samples_seen,
                s.accuracy
                    .map(|x| format!("{:.1}%", x * 100.0))
                    .unwrap_or_else(|| "-".into()),
                s.model_version,
                s.merges
            );
        }
    }
    node_a.stop(Duration::from_secs(5));
    node_b.stop(Duration::from_secs(5));
    let _ = std::fs::remove_dir_all(&dir);
    println!("stopped both nodes");
    Ok(())
}
