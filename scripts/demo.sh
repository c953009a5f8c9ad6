#!/usr/bin/env bash
# The newcomer's first command: build the release binaries, then run a
# five-node Shoal mesh on loopback with a live table, and write a report
# (report.md, report.json, SVG plots) under out/testnet-<timestamp>/.
#
#   ./scripts/demo.sh                         # 5 nodes, 90 s, demo scenario
#   ./scripts/demo.sh --scenario churn --duration 2m
#
# Arguments go to `shoal-testnet up` (see `--help`). Ctrl-C stops every node
# and still writes the report.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p shoal-node -p shoal-testnet
# Honour CARGO_TARGET_DIR: cargo put the binaries there.
exec "${CARGO_TARGET_DIR:-target}/release/shoal-testnet" up "$@"
