#!/usr/bin/env bash
# Compare Shoal with River on the same files: sets up River in a virtualenv
# under .cache/venv (git-ignored), builds shoal-bench in release mode, runs
# bench/compare_river.py and writes docs/benchmarks.md (the comparison
# section) and docs/benchmarks-river.json. Extra arguments go to the Python
# script, e.g. `--streams electricity,sea --models nb,ht --limit 20000`.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cache/venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import river" 2>/dev/null; then
    "$venv/bin/pip" install --quiet river
fi
cargo build --release -p shoal-bench
exec "$venv/bin/python" bench/compare_river.py --shoal target/release/shoal-bench "$@"
