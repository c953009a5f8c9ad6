#!/usr/bin/env bash
# Compare Shoal with River on the same files: sets up River in a virtualenv
# under .cache/venv (git-ignored), builds shoal-bench in release mode, runs
# bench/compare_river.py and writes docs/benchmarks.md (the comparison
# section) and docs/benchmarks-river.json. Extra arguments go to the Python
# script, e.g. `--streams electricity,sea --models nb,ht --limit 20000`, or
# `--models arf,srp,lb --section ensembles` for the ensembles' own section.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.cache/venv
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
# Pinned: the accuracy notes in docs/benchmarks.md refer to this version.
if ! "$venv/bin/python" -c "import river; assert river.__version__ == '0.26.1'" 2>/dev/null; then
    "$venv/bin/pip" install --quiet "river==0.26.1"
fi
cargo build --release -p shoal-bench
exec "$venv/bin/python" bench/compare_river.py --shoal target/release/shoal-bench "$@"
