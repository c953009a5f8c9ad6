#!/usr/bin/env bash
# The auction's trade between completion time and bytes, against the two
# targets of the market issue: a lower mean completion than every other
# non-omniscient policy (power_of_two is the closest in every run of the
# acceptance grid) and no more than 1.1x data_locality's bytes. Sweeps the
# offered load and the auction's lambda (seconds of score per MB at the
# reference bandwidth) at one size, every topology. Prints one markdown row
# per run; "both" marks a run that meets both targets.
#
#   scripts/market-frontier.sh [nodes, default 200] [extra sim options]
#
# JSON reports land in out/market-frontier/. Needs a release build of
# shoal-testnet (built here if missing). About 5 minutes at 200 nodes on
# two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
nodes=${1:-200}
shift || true
bin=./target/release/shoal-testnet
[ -x "$bin" ] || cargo build --release -p shoal-testnet
out=out/market-frontier
mkdir -p "$out"
echo "| load | lambda | topology | auction mean s | power_of_two mean s | auction / data_locality bytes | keeping-up bound / data_locality | both targets |"
echo "|---|---|---|---|---|---|---|---|"
for load in 0.15 0.3 0.6; do
  for lambda in 20 30 50 100 200; do
    for topo in lan urban iiot; do
      f="$out/$topo-$nodes-load$load-lambda$lambda.json"
      "$bin" sim --topology "$topo" --nodes "$nodes" --load "$load" --lambda "$lambda" \
        --policies auction,power_of_two,data_locality --json "$@" >"$f" 2>/dev/null
      python3 - "$f" "$load" "$lambda" "$topo" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
p = {x["policy"]: x for x in r["policies"]}
a, p2, dl = p["auction"], p["power_of_two"], p["data_locality"]["bytes_moved"]
both = a["mean_completion_s"] < p2["mean_completion_s"] and a["bytes_moved"] <= 1.1 * dl
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {a['mean_completion_s']:.2f} | "
      f"{p2['mean_completion_s']:.2f} | {a['bytes_moved'] / dl:.2f}x | "
      f"{r['lower_bound']['bytes_keeping_up'] / dl:.2f}x | {'both' if both else ''} |")
PY
    done
  done
done
