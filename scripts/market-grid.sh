#!/usr/bin/env bash
# The market's acceptance grid: every topology at 50, 200 and 1000 nodes
# (100 tasks per node), every policy, one seed. Prints one markdown row
# per run: the auction's mean completion against the best other of the
# issue's non-omniscient baselines, its bytes against data_locality's and
# against the fewest bytes any placement keeping up with the arrivals
# moves, where that fewest lies against data_locality's bytes (between
# the lower bound and the bytes of one placement that keeps up), and
# spillback (Ray's default scheduling with an exact view of every node's
# slots), mean completion and bytes against data_locality's.
#
#   scripts/market-grid.sh [extra sim options, e.g. --lambda 30 --seed 2]
#
# JSON reports land in out/market-grid/. Needs a release build of
# shoal-testnet (built here if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=./target/release/shoal-testnet
[ -x "$bin" ] || cargo build --release -p shoal-testnet
out=out/market-grid
mkdir -p "$out"
echo "| topology | nodes | auction mean s | best other (mean s) | auction / data_locality bytes | auction / keeping-up bound | keeping up needs (x data_locality) | spillback mean s / bytes | sim wall s |"
echo "|---|---|---|---|---|---|---|---|---|"
for nodes in 50 200 1000; do
  for topo in lan urban iiot; do
    f="$out/$topo-$nodes.json"
    start=$EPOCHREALTIME
    "$bin" sim --topology "$topo" --nodes "$nodes" --json "$@" >"$f" 2>/dev/null
    wall=$(python3 -c "print($EPOCHREALTIME - $start)")
    python3 - "$f" "$topo" "$nodes" "$wall" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
p = {x["policy"]: x for x in r["policies"]}
a = p["auction"]
others = [x for k, x in p.items() if k not in ("auction", "omniscient", "spillback")]
best = min(others, key=lambda x: x["mean_completion_s"])
dl = p["data_locality"]["bytes_moved"]
keep = r["lower_bound"]["bytes_keeping_up"]
placed = r["lower_bound"].get("bytes_keeping_up_placement")
needs = f"{keep / dl:.2f}-{placed / dl:.2f}" if placed else f">= {keep / dl:.2f}"
s = p.get("spillback")
sb = f"{s['mean_completion_s']:.2f} / {s['bytes_moved'] / dl:.2f}x" if s else "-"
print(f"| {sys.argv[2]} | {sys.argv[3]} | {a['mean_completion_s']:.2f} | "
      f"{best['policy']} ({best['mean_completion_s']:.2f}) | "
      f"{a['bytes_moved'] / dl:.2f}x | {a['bytes_moved'] / keep:.2f}x | {needs} | "
      f"{sb} | {float(sys.argv[4]):.1f} |")
EOF
  done
done
