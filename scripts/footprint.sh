#!/usr/bin/env bash
# Measures shoal-node's footprint for docs/footprint.md:
#
#   1. idle: one node, no stream, no peers (mDNS off) — RSS and CPU over
#      IDLE_S seconds, from /proc/<pid>/status and /proc/<pid>/stat;
#   2. learning: 11 nodes (`shoal-testnet up --nodes 11 --model ht`), so
#      each has 10 peers and an `ht` model learning 100 samples/s — RSS and
#      CPU of node0 over the last LOAD_S seconds of the run;
#   3. binary sizes of the release binary given (stripped copy included).
#
#   ./scripts/footprint.sh [path/to/shoal-node]     # default target/release
#
# Builds nothing: run `cargo build --release -p shoal-node -p shoal-testnet`
# first. Prints one `key value` line per figure.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${CARGO_TARGET_DIR:-target}/release
NODE=${1:-$OUT/shoal-node}
TESTNET=$OUT/shoal-testnet
IDLE_S=${IDLE_S:-60}
LOAD_S=${LOAD_S:-60}
TICK=$(getconf CLK_TCK)
DIR=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$DIR"
}
trap cleanup EXIT

# CPU ticks (user + system) of a process.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# A field of /proc/<pid>/status in kB.
kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }

# Measure pid $1 over $2 seconds; print RSS now, peak RSS, CPU %.
measure() {
    local pid=$1 secs=$2 t0 t1
    t0=$(ticks "$pid")
    sleep "$secs"
    t1=$(ticks "$pid")
    echo "$3_rss_kb $(kb "$pid" VmRSS)"
    echo "$3_peak_rss_kb $(kb "$pid" VmHWM)"
    echo "$3_cpu_percent $(awk -v d=$((t1 - t0)) -v s="$secs" -v h="$TICK" 'BEGIN {printf "%.2f", 100 * d / h / s}')"
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# 1. Idle.
"$NODE" run --data-dir "$DIR/idle" --api "127.0.0.1:$(free_port)" \
    --listen /ip4/127.0.0.1/tcp/0 --no-mdns >"$DIR/idle.out" 2>"$DIR/idle.log" &
IDLE=$!
PIDS+=("$IDLE")
sleep 10
measure "$IDLE" "$IDLE_S" idle
kill "$IDLE"
wait "$IDLE" 2>/dev/null || true

# 2. Eleven nodes learning with `ht`.
RUN_S=$((LOAD_S + 45))
"$TESTNET" up --nodes 11 --model ht --duration "${RUN_S}s" --bin "$NODE" \
    --out "$DIR/mesh" --live off >"$DIR/mesh.out" 2>"$DIR/mesh.err" &
MESH=$!
PIDS+=("$MESH")
pid=
for _ in $(seq 1 60); do
    pid=$(pgrep -f -- "--data-dir $DIR/mesh/node0/data" | head -n 1 || true)
    [ -n "$pid" ] && break
    sleep 1
done
[ -n "$pid" ] || { echo "footprint: node0 did not start" >&2; exit 1; }
sleep 30
measure "$pid" "$LOAD_S" learning_ht_10_peers
wait "$MESH" || true
grep -E "node0|mesh:" "$DIR/mesh.out" | sed 's/^/mesh_summary /'

# 3. Binary size.
echo "binary_bytes $(stat -c %s "$NODE")"
strip -o "$DIR/shoal-node.stripped" "$NODE"
echo "binary_stripped_bytes $(stat -c %s "$DIR/shoal-node.stripped")"
file -b "$NODE" | sed 's/^/binary_kind /'
