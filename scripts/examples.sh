#!/usr/bin/env bash
# Runs every program of examples/ the way a newcomer would, quickly (CI runs
# this after the tests, which already built them in the dev profile):
#
#   learn_csv     shoal-learn alone on a generated stream
#   two_nodes     two shoal-node processes that find each other
#   submit_task   a task submitted over the REST API of a node started here
#
# Every example must succeed. submit_task exits 2 when the node answers 501
# (no task market in the build): the market is part of shoal-node now, so
# that is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q -p shoal-node --bin shoal-node
cargo build -q -p shoal-testnet --examples
EX=${CARGO_TARGET_DIR:-target}/debug/examples
NODE=${CARGO_TARGET_DIR:-target}/debug/shoal-node

echo "== example learn_csv"
"$EX/learn_csv" "sea:variant=0,noise=0.1,seed=7,n=5000" nb

echo "== example two_nodes"
"$EX/two_nodes"

echo "== example submit_task"
DIR=$(mktemp -d)
NODE_PID=
cleanup() {
    if [ -n "$NODE_PID" ]; then
        kill "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    rm -rf "$DIR"
}
trap cleanup EXIT
# A free port for the API: bind port 0 and read what the kernel chose.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
TOKEN=examples-token
"$NODE" run --data-dir "$DIR/node" --api "127.0.0.1:$PORT" \
    --listen /ip4/127.0.0.1/tcp/0 --no-mdns --api-token "$TOKEN" \
    --source "sea:variant=0,noise=0.1,seed=3,n=1000000" --rate 500 --snapshot-every 500 \
    >"$DIR/node.out" 2>"$DIR/node.log" &
NODE_PID=$!
for _ in $(seq 1 60); do
    "$NODE" health --api "127.0.0.1:$PORT" >/dev/null 2>&1 && break
    kill -0 "$NODE_PID" 2>/dev/null || {
        cat "$DIR/node.log" >&2
        echo "examples: the node for submit_task exited" >&2
        exit 1
    }
    sleep 0.5
done
# The task evaluates the node's recent samples: wait for a snapshot (its
# samples become blobs) and a little more.
for _ in $(seq 1 60); do
    v=$("$NODE" health --api "127.0.0.1:$PORT" --path /v1/status 2>/dev/null |
        python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["model"]["samples_seen"] if d["model"]["version"] >= 1 else 0)' ||
        echo 0)
    [ "$v" -ge 1500 ] && break
    sleep 0.5
done
code=0
"$EX/submit_task" "http://127.0.0.1:$PORT" "$TOKEN" || code=$?
case $code in
0) echo "submit_task: the task was committed" ;;
2)
    tail -n 30 "$DIR/node.log" >&2
    echo "examples: submit_task: the node answered 501 (no task market): failure" >&2
    exit 1
    ;;
*)
    tail -n 30 "$DIR/node.log" >&2
    echo "examples: submit_task failed with status $code" >&2
    exit "$code"
    ;;
esac
echo "examples: all ran"
