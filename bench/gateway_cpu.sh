#!/usr/bin/env bash
# Gateway CPU per cached image, against a standalone node's (issue 9's
# "gateway CPU per request at most 2x a standalone node's", with no
# gateway cache: GATEWAY_CACHE_BYTES=0).
#
# Starts on loopback a local origin (127.0.0.2) serving one ~42 KB JPEG,
# then either 1 gateway + 1 worker or one standalone node, asks once
# (the worker caches the image), and measures the node that answers users:
#
#   gateway_cpu.sh callgrind MODE [N]   instructions per request of the
#       gateway (MODE=gateway) or the standalone node (MODE=standalone)
#       under valgrind's callgrind, over N (2000) sequential keep-alive
#       requests; counters zeroed after warm-up, so start-up is not counted.
#       Stable under load, unlike time. Leaves the profile in $OUT
#       (callgrind_annotate it).
#   gateway_cpu.sh wrk ROUNDS BIN_A [BIN_B]   wrk -t1 -c32 -d5s against a
#       standalone node and a gateway (+ worker) of each binary, rounds
#       interleaved; prints req/s and the serving process's CPU (utime +
#       stime from /proc) per request, and the gateway/standalone ratio.
#
# Env: BIN (target/release/img-proxy), OUT (/tmp/gateway-cpu), PHOTO (a JPEG;
# default: one made from docs/smart-crop with `img-proxy transform`),
# NODE_ENV (more settings for every node, e.g. "IO_THREADS=1").
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
BIN=${BIN:-$ROOT/target/release/img-proxy}
OUT=${OUT:-/tmp/gateway-cpu}
mkdir -p "$OUT/origin"
SECRET=bench-secret-0123456789abcdef
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

port() { python3 -c 'import socket,sys; s=socket.socket(type=int(sys.argv[1])); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' "${1:-1}"; }

if [ -z "${PHOTO:-}" ]; then
    PHOTO=$OUT/origin/photo.jpg
    [ -f "$PHOTO" ] || "$BIN" transform -W 900 -q 92 -o "$PHOTO" "$ROOT/docs/smart-crop/onestandsout-whole.jpg"
else
    cp "$PHOTO" "$OUT/origin/photo.jpg"
fi
OPORT=$(port)
python3 -m http.server --bind 127.0.0.2 --directory "$OUT/origin" "$OPORT" >/dev/null 2>&1 &
PIDS+=($!)
SRC="http://127.0.0.2:$OPORT/photo.jpg"
PATH_Q="/image?url=$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$SRC")"

common_env() {
    echo "ALLOWED_SOURCE_NETWORKS=127.0.0.2/32 CLUSTER_SECRET=$SECRET GOSSIP_INTERVAL=200ms"
}

# start NAME ROLE HTTP_PORT GOSSIP_PORT SEED WRAP... ; echoes the pid
start() {
    local name=$1 role=$2 hp=$3 gp=$4 seed=$5; shift 5
    env $(common_env) ${NODE_ENV:-} NAME="$name" HTTP_ADDR="127.0.0.1:$hp" GOSSIP_ADDR="127.0.0.1:$gp" \
        KNOWN_HOSTS="$seed" GATEWAY_CACHE_BYTES=0 \
        "$@" "$BIN" "$role" >"$OUT/$name.log" 2>&1 &
    echo $!
}

wait_200() {
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$PATH_Q")" = 200 ] && return 0
        sleep 0.1
    done
    echo "no 200 from :$1 (logs in $OUT)" >&2; exit 1
}

# up MODE BIN WRAP... : starts the nodes; sets SERVE_PORT, SERVE_PID, NODE_PIDS
up() {
    local mode=$1; BIN=$2; shift 2
    NODE_PIDS=()
    if [ "$mode" = standalone ]; then
        SERVE_PORT=$(port)
        SERVE_PID=$(start standalone standalone "$SERVE_PORT" "$(port 2)" "" "$@")
        NODE_PIDS+=("$SERVE_PID")
    else
        local wp wg gp gg
        wp=$(port); wg=$(port 2); gp=$(port); gg=$(port 2)
        NODE_PIDS+=("$(start worker worker "$wp" "$wg" "127.0.0.1:$gg")")
        SERVE_PORT=$gp
        SERVE_PID=$(start gateway gateway "$gp" "$gg" "127.0.0.1:$wg" "$@")
        NODE_PIDS+=("$SERVE_PID")
    fi
    PIDS+=("${NODE_PIDS[@]}")
    wait_200 "$SERVE_PORT"
}

down() {
    for p in "${NODE_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${NODE_PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
}

# Sequential keep-alive GETs: N of them, each must be a 200.
client() {
    python3 - "$1" "$2" "$PATH_Q" <<'EOF'
import http.client, sys
port, n, path = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
for _ in range(n):
    c.request("GET", path)
    r = c.getresponse()
    r.read()
    assert r.status == 200, r.status
EOF
}

latest() { sleep 1; ls -t "$1"* | head -1; }
total_of() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}'; }

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

case "${1:-}" in
callgrind)
    mode=${2:?MODE: gateway or standalone}; n=${3:-2000}
    prof="$OUT/callgrind.$mode.out"
    up "$mode" "$BIN" valgrind --tool=callgrind --callgrind-out-file="$prof.%p"
    client "$SERVE_PORT" 50
    # Background work (gossip, timers) runs per second, not per request:
    # measured idle, then subtracted for the request run's duration.
    callgrind_control -z "$SERVE_PID" >/dev/null
    sleep 10
    callgrind_control -d "$SERVE_PID" >/dev/null
    idle=$(total_of "$(latest "$prof.$SERVE_PID")")
    callgrind_control -z "$SERVE_PID" >/dev/null
    t0=$(date +%s.%N)
    client "$SERVE_PORT" "$n"
    t1=$(date +%s.%N)
    callgrind_control -d "$SERVE_PID" >/dev/null
    cp "$(latest "$prof.$SERVE_PID")" "$prof"
    down
    total=$(total_of "$prof")
    python3 -c "
idle, total, n, secs = $idle / 10, $total, $n, $t1 - $t0
print(f'$mode: {total} instructions over {n} requests in {secs:.1f} s = {total // n} per request; '
      f'minus idle background ({idle:.0f}/s): {(total - idle * secs) / n:.0f} per request')"
    echo "($(uptime | sed 's/.*load/load/')); profile $prof"
    ;;
wrk)
    rounds=${2:-3}; shift 2
    bins=("$@"); [ ${#bins[@]} -gt 0 ] || bins=("$BIN")
    hz=$(getconf CLK_TCK)
    for r in $(seq "$rounds"); do
        for b in "${bins[@]}"; do
            for mode in standalone gateway; do
                up "$mode" "$b"
                wrk -t1 -c32 -d1s "http://127.0.0.1:$SERVE_PORT$PATH_Q" >/dev/null
                t0=$(cpu_ticks "$SERVE_PID")
                line=$(wrk -t1 -c32 -d5s "http://127.0.0.1:$SERVE_PORT$PATH_Q")
                t1=$(cpu_ticks "$SERVE_PID")
                reqs=$(echo "$line" | awk '/requests in/ {print $1}')
                bad=$(echo "$line" | awk '/Non-2xx/ {print $NF}')
                rate=$(echo "$line" | awk '/Requests\/sec/ {print $2}')
                us=$(python3 -c "print(round(($t1-$t0)/$hz/$reqs*1e6,1))")
                echo "round $r $(basename "$(dirname "$(dirname "$b")")")/$(basename "$b") $mode: ${rate} req/s, ${us} us CPU/request, non-2xx ${bad:-0}, $(uptime | sed 's/.*load/load/')"
                down
            done
        done
    done
    ;;
*)
    sed -n 2,22p "$0"; exit 2 ;;
esac
