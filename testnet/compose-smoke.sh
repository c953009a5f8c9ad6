#!/usr/bin/env bash
# Compose smoke test: five Shoal nodes in containers, one killed and one cut
# off the network, both brought back.
#
#   testnet/compose-smoke.sh
#
# Steps: build the static binary and the FROM-scratch image; start the
# five nodes (they bootstrap by service name); wait until every node sees
# the four others, node1's /v1/mesh lists them and every node has merged
# a peer's model at least once; `docker kill` node5 and
# `docker network disconnect` node4; check that the others keep learning;
# `docker start` node5 and reconnect node4; check that both come back (same
# peer id, model version not older, full mesh again); tear everything down
# (`down -v`) whatever happened, and check that no container, network or
# volume of the project is left.
#
# Needs docker and docker compose (v2 plugin or docker-compose 1.27+) and
# python3 (to read JSON). Exits non-zero with a message on the first
# failure. After the build every wait is bounded; the checks take at most
# about 6 minutes (about 2 when all goes well).
#
# SHOAL_SMOKE_SKIP_BUILD=1 reuses the binary already in target/ (CI builds
# it once); SHOAL_SMOKE_MERGES=0 skips the wait for merges.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=shoal-smoke
TARGET=x86_64-unknown-linux-gnu
LOGS=out/compose-smoke
mkdir -p "$LOGS"

say() { printf '\n== %s\n' "$*" >&2; }
fail() {
    printf '\ncompose-smoke: FAIL: %s\n' "$*" >&2
    exit 1
}

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose -p "$PROJECT")
elif command -v docker-compose >/dev/null 2>&1; then
    COMPOSE=(docker-compose -p "$PROJECT")
else
    fail "neither 'docker compose' nor 'docker-compose' is installed"
fi
command -v python3 >/dev/null || fail "python3 is needed to read the nodes' JSON"

cleanup() {
    local code=$?
    # Keep the nodes' last words for a post-mortem, then remove everything.
    if [ "$code" -ne 0 ]; then
        # Who sees whom, for the post-mortem.
        for n in node1 node2 node3 node4 node5; do
            echo "-- $n /v1/peers" >>"$LOGS/peers.txt"
            api "$n" /v1/peers >>"$LOGS/peers.txt" 2>&1 || echo "(no answer)" >>"$LOGS/peers.txt"
            printf '%s: ' "$n" >&2
            api "$n" /v1/peers 2>/dev/null | python3 -c 'import json,sys; d=json.load(sys.stdin); c=[p["id"][-6:] for p in d["peers"] if p.get("connected")]; print("connected to", len(c), ",".join(c))' >&2 || echo "no answer" >&2
        done
    fi
    "${COMPOSE[@]}" logs --no-color --tail=200 >"$LOGS/compose.log" 2>&1 || true
    "${COMPOSE[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
    local left
    left=$(leftovers)
    if [ -n "$left" ]; then
        echo "compose-smoke: left behind after down -v:" >&2
        echo "$left" >&2
        code=1
    fi
    if [ "$code" -ne 0 ]; then
        echo "compose-smoke: node logs in $LOGS/compose.log" >&2
    fi
    exit "$code"
}
# Containers, networks and volumes of this compose project still present.
leftovers() {
    local f="label=com.docker.compose.project=$PROJECT"
    docker ps -aq --filter "$f" | sed 's/^/container /'
    docker network ls -q --filter "$f" | sed 's/^/network /'
    docker volume ls -q --filter "$f" | sed 's/^/volume /'
}
trap cleanup EXIT
trap 'exit 130' INT TERM
"${COMPOSE[@]}" down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true

if [ "${SHOAL_SMOKE_SKIP_BUILD:-0}" != 1 ]; then
    say "building the static binary (cargo build --release --target $TARGET)"
    # nice: the release build is long and shares the machine.
    RUSTFLAGS="-C target-feature=+crt-static" nice -n 10 cargo build --release \
        --target "$TARGET" -p shoal-node --bin shoal-node
fi
BIN="target/$TARGET/release/shoal-node"
[ -x "$BIN" ] || fail "$BIN is missing"
file "$BIN" 2>/dev/null | grep -Eq 'static(ally|-pie) linked' ||
    ldd "$BIN" 2>&1 | grep -q 'not a dynamic executable' ||
    fail "$BIN is not statically linked"

say "building the image shoal-node:local (FROM scratch)"
docker build -q -t shoal-node:local . >/dev/null

SMOKE_START=$SECONDS

# ---- helpers ---------------------------------------------------------------

cid() { "${COMPOSE[@]}" ps -q "$1"; }

# GET a path of a node's API from inside its container (no port needed).
api() {
    local c
    c=$(cid "$1") || return 1
    [ -n "$c" ] || return 1
    docker exec "$c" /shoal-node health --path "$2" 2>/dev/null
}

# jq-like access with python: `json EXPR` reads JSON on stdin, EXPR uses d.
json() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

status_of() { api "$1" /v1/status | json "$2"; }

# Expectations that, when missed, do not stop the run (so that the rest,
# recovery above all, is still exercised) but still fail it at the end.
SOFT_FAILURES=()

# soft_wait_for SECONDS DESCRIPTION COMMAND...: like wait_for, but a miss is
# recorded instead of ending the run.
soft_wait_for() {
    local limit=$1 what=$2
    shift 2
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        if [ "$SECONDS" -ge "$end" ]; then
            echo "MISSED: $what: not within ${limit}s (continuing)" >&2
            SOFT_FAILURES+=("$what: not within ${limit}s")
            return 0
        fi
        sleep 2
    done
    echo "ok: $what ($((SECONDS - SMOKE_START))s since start)" >&2
}

# wait_for SECONDS DESCRIPTION COMMAND...: retry every 2 s.
wait_for() {
    local limit=$1 what=$2
    shift 2
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$end" ] || fail "$what: not within ${limit}s"
        sleep 2
    done
    echo "ok: $what ($((SECONDS - SMOKE_START))s since start)" >&2
}

peers_at_least() { [ "$(status_of "$1" "d['peers']")" -ge "$2" ]; }
peers_at_most() { [ "$(status_of "$1" "d['peers']")" -le "$2" ]; }
samples() { status_of "$1" "d['model']['samples_seen']"; }
grew() { [ "$(samples "$1")" -gt "$2" ]; }
merged() { [ "$(status_of "$1" "d['model'].get('merges', 0)")" -ge 1 ]; }
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "$(cid "$1")")" = healthy ]; }
mesh_lists() { [ "$(api node1 /v1/mesh | json "len(d['nodes'])")" -ge "$1" ]; }
host_api_ok() {
    python3 -c 'import urllib.request,sys; sys.exit(0 if urllib.request.urlopen("http://127.0.0.1:7070/v1/health", timeout=3).status == 200 else 1)'
}

NODES=(node1 node2 node3 node4 node5)
all_peers_at_least() {
    local n
    for n in "${NODES[@]}"; do peers_at_least "$n" "$1" || return 1; done
}
all_healthy() {
    local n
    for n in "${NODES[@]}"; do healthy "$n" || return 1; done
}
all_merged() {
    local n
    for n in "${NODES[@]}"; do merged "$n" || return 1; done
}

# ---- start -----------------------------------------------------------------

: >"$LOGS/peers.txt"

say "starting five nodes"
"${COMPOSE[@]}" up -d

wait_for 60 "node1's API answers on the host at 127.0.0.1:7070" host_api_ok
wait_for 90 "every node sees the 4 others" all_peers_at_least 4
wait_for 60 "node1's /v1/mesh lists the 4 others" mesh_lists 4
for n in "${NODES[@]}"; do
    echo "$n is …$(status_of "$n" "d['peer_id'][-6:]")" >&2
done
wait_for 60 "every node is healthy (docker healthcheck)" all_healthy
if [ "${SHOAL_SMOKE_MERGES:-1}" != 0 ]; then
    wait_for 120 "every node has merged a peer's model at least once" all_merged
fi

# ---- break -----------------------------------------------------------------

say "kill node5, cut node4 off the network"
NET=$(docker inspect -f '{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}' "$(cid node4)" | awk '{print $1}')
[ -n "$NET" ] || fail "cannot find node4's network"
ID5=$(status_of node5 "d['peer_id']") || fail "cannot read node5's status"
V5=$(status_of node5 "d['model']['version']") || fail "cannot read node5's status"
declare -A BEFORE
for n in node1 node2 node3 node4; do
    BEFORE[$n]=$(samples "$n") || fail "cannot read $n's status"
done
docker kill "$(cid node5)" >/dev/null
docker network disconnect "$NET" "$(cid node4)"
echo "node5 killed (peer $ID5, model v$V5); node4 disconnected from $NET" >&2

wait_for 60 "node1 notices: at most 3 peers" peers_at_most node1 3
for n in node1 node2 node3; do
    wait_for 30 "$n keeps learning" grew "$n" "${BEFORE[$n]}"
done
wait_for 30 "node4 keeps learning alone" grew node4 "${BEFORE[node4]}"
# A cut link sends no FIN or RST: only the node's own liveness checks
# (ping failures, idle timeouts) can notice it.
wait_for 60 "node4 notices the cut and counts no peers" peers_at_most node4 0

# ---- heal ------------------------------------------------------------------

say "restart node5, reconnect node4"
docker start "$(cid node5)" >/dev/null
docker network connect --alias node4 "$NET" "$(cid node4)"
wait_for 60 "node5 answers again" api node5 /v1/health
ID5_AFTER=$(status_of node5 "d['peer_id']") || fail "cannot read node5's status"
[ "$ID5_AFTER" = "$ID5" ] || fail "node5 came back with a different peer id ($ID5_AFTER, was $ID5)"
V5_AFTER=$(status_of node5 "d['model']['version']") || fail "cannot read node5's status"
[ "$V5_AFTER" -ge "$V5" ] || fail "node5's model went back from v$V5 to v$V5_AFTER"
echo "node5 is back with the same peer id, model v$V5 -> v$V5_AFTER" >&2
wait_for 120 "every node sees the 4 others again" all_peers_at_least 4

say "summary"
for n in "${NODES[@]}"; do
    api "$n" /v1/status | python3 -c 'import json,sys; d=json.load(sys.stdin); m=d["model"]; print("  %s peers=%d samples=%d accuracy=%s model_v=%d merges=%d" % (sys.argv[1], d["peers"], m["samples_seen"], m.get("accuracy"), m["version"], m.get("merges", 0)))' "$n"
done
if [ "${#SOFT_FAILURES[@]}" -gt 0 ]; then
    printf 'compose-smoke: missed expectations:\n' >&2
    printf '  - %s\n' "${SOFT_FAILURES[@]}" >&2
    fail "${#SOFT_FAILURES[@]} expectation(s) missed (everything else passed)"
fi
echo "compose-smoke: PASS in $((SECONDS - SMOKE_START))s after the build" >&2
