#!/usr/bin/env bash
# Thumbnail benchmark: img-proxy's pipeline vs libvips' vipsthumbnail on
# real photos (KDE Plasma wallpapers: 2560x1600 and 5120x2880 JPEGs).
#
# Why this shape: the proxy's hot path is "big JPEG in, small image out";
# vipsthumbnail is the fastest widely used tool for exactly that, so it is
# the bar. Runs are interleaved (ours, vips, ours, vips, ...) so drift in
# machine load hits both sides alike, and the median wall time per side is
# compared. This is a benchmark, not a test: it never fails on a ratio.
#
# Usage: bench/thumbnails.sh [ROUNDS]     (default 7)
# Env:   BENCH_CACHE (default ~/.cache/img-proxy-bench): photos are kept here
#        IMG_PROXY_BIN: binary to run instead of target/release/img-proxy
#        (e.g. an older build, to compare two versions against vips)
#        BENCH_CPUS: also run both pinned to these CPUs (taskset list, e.g.
#        "0"), which compares work per core: the batch mode of our CLI uses
#        every core, vipsthumbnail mostly one (default: "0")
#        BENCH_ONLY: "vips" (ours against vipsthumbnail) or "gravity" (our
#        gravity=smart 300x300 cover crop against gravity=center); default both;
#        or "info": GET /info against GET /image?w=300 on the 5120x2880
#        Flow photo, through a standalone node and a local origin (not run
#        by default)
set -euo pipefail

ROUNDS="${1:-7}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${BENCH_CACHE:-$HOME/.cache/img-proxy-bench}"
OUT="$ROOT/bench/out"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
mkdir -p "$CACHE" "$OUT"

# --- photos -----------------------------------------------------------------
if [ ! -d "$CACHE/photos" ] || [ "$(ls "$CACHE/photos" | wc -l)" -lt 12 ]; then
    echo "fetching plasma-workspace-wallpapers ..." >&2
    (cd "$CACHE" && rm -f plasma-workspace-wallpapers_*.deb \
        && apt-get download plasma-workspace-wallpapers >/dev/null)
    rm -rf "$CACHE/pkg" && dpkg -x "$CACHE"/plasma-workspace-wallpapers_*.deb "$CACHE/pkg"
    mkdir -p "$CACHE/photos"
    # Eight 2560x1600 and four 5120x2880 (sorted: a stable pick).
    for spec in 2560x1600:8 5120x2880:4; do
        size="${spec%%:*}"
        find "$CACHE/pkg" -path "*/images/$size.jpg" | sort | head -"${spec##*:}" | while read -r f; do
            name="$(basename "$(dirname "$(dirname "$(dirname "$f")")")")"
            cp "$f" "$CACHE/photos/${name}_$size.jpg"
        done
    done
fi
mapfile -t PHOTOS < <(ls "$CACHE"/photos/*.jpg)
echo "photos: ${#PHOTOS[@]} ($(du -sh "$CACHE/photos" | cut -f1))" >&2

# --- tools ------------------------------------------------------------------
ONLY="${BENCH_ONLY-}"
if [ "$ONLY" != "gravity" ] && [ "$ONLY" != "info" ] && ! command -v vipsthumbnail >/dev/null; then
    echo "installing libvips-tools ..." >&2
    (apt-get install -y libvips-tools >/dev/null 2>&1) \
        || (apt-get update >/dev/null && apt-get install -y libvips-tools >/dev/null)
fi
if [ -z "${IMG_PROXY_BIN:-}" ]; then
    (cd "$ROOT" && cargo build --release --quiet)
    BIN="$TARGET/release/img-proxy"
    SUBCMD="transform"
else
    BIN="$IMG_PROXY_BIN"
    SUBCMD="${IMG_PROXY_SUBCMD-transform}"
fi
echo "ours: $BIN $SUBCMD; vips: $(vipsthumbnail --vips-version 2>/dev/null | head -1)" >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); $(date -u +%F)" >&2

now() { date +%s.%N; }
# time_cmd OUTDIR CMD... -> prints seconds; fails loudly if the command
# fails or does not write one output per photo (e.g. the `transform`
# subcommand is not wired into the binary yet).
time_cmd() {
    local dir="$1"; shift
    rm -rf "$dir" && mkdir -p "$dir"
    local t0 t1
    t0=$(now)
    if ! "$@" >"$OUT/last.log" 2>&1; then
        echo "command failed: $*" >&2; tail -5 "$OUT/last.log" >&2; exit 1
    fi
    t1=$(now)
    if [ "$(ls "$dir" | wc -l)" -ne "${#PHOTOS[@]}" ]; then
        echo "expected ${#PHOTOS[@]} outputs in $dir from: $*" >&2; tail -5 "$OUT/last.log" >&2; exit 1
    fi
    echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

PIN=()
bench() {
    local label="$1" ours_args="$2" vips_args="$3" ext="$4"
    local ours=() vips=()
    for ((r = 0; r < ROUNDS; r++)); do
        # shellcheck disable=SC2086
        ours+=("$(time_cmd "$OUT/ours" "${PIN[@]}" $BIN $SUBCMD "${PHOTOS[@]}" $ours_args -o "$OUT/ours/")")
        # shellcheck disable=SC2086
        vips+=("$(time_cmd "$OUT/vips" "${PIN[@]}" vipsthumbnail "${PHOTOS[@]}" $vips_args -o "$OUT/vips/%s.$ext[Q=80]")")
    done
    local mo mv
    mo=$(printf '%s\n' "${ours[@]}" | median)
    mv=$(printf '%s\n' "${vips[@]}" | median)
    printf '%-22s ours %.3fs  vips %.3fs  ratio ours/vips %.2f  (load %s)\n' "$label" "$mo" "$mv" \
        "$(echo "$mo / $mv" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
    # sanity: same number of outputs, and a size comparison
    printf '%-22s outputs: ours %s files %s, vips %s files %s\n' "" \
        "$(ls "$OUT/ours" | wc -l)" "$(du -sk "$OUT/ours" | cut -f1)K" \
        "$(ls "$OUT/vips" | wc -l)" "$(du -sk "$OUT/vips" | cut -f1)K"
}

# Our own two variants interleaved: what `gravity=smart` (the attention
# measure on a small copy, then the same resize) costs over the default
# centred crop, for a 300x300 cover thumbnail.
gravity_bench() {
    local label="$1" cover="--width 300 --height 300 --fit cover --quality 80"
    local centre=() smart=()
    for ((r = 0; r < ROUNDS; r++)); do
        # shellcheck disable=SC2086
        centre+=("$(time_cmd "$OUT/centre" "${PIN[@]}" $BIN $SUBCMD "${PHOTOS[@]}" $cover --gravity center -o "$OUT/centre/")")
        # shellcheck disable=SC2086
        smart+=("$(time_cmd "$OUT/smart" "${PIN[@]}" $BIN $SUBCMD "${PHOTOS[@]}" $cover --gravity smart -o "$OUT/smart/")")
    done
    local mc ms
    mc=$(printf '%s\n' "${centre[@]}" | median)
    ms=$(printf '%s\n' "${smart[@]}" | median)
    printf '%-22s centre %.3fs  smart %.3fs  ratio smart/centre %.2f  (load %s)\n' "$label" "$mc" "$ms" \
        "$(echo "$ms / $mc" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
}

# GET /info against a 300 px thumbnail of the same photo, through a
# standalone node (release build) fetching from a local origin: both are
# cache misses with a new URL each round (the origin ignores the query),
# interleaved; then, on a URL whose original the node already holds, the
# same two without the fetch. Prints median wall times and the node's CPU
# time per request (utime+stime from /proc, summed over the rounds).
info_bench() {
    local photo="$CACHE/photos/Flow_5120x2880.jpg" oport=18391 nport=18392
    local oip=127.0.0.2
    python3 -m http.server "$oport" --bind "$oip" --directory "$CACHE/photos" >"$OUT/origin.log" 2>&1 &
    local origin=$!
    env -i PATH="$PATH" HTTP_ADDR="127.0.0.1:$nport" ALLOWED_SOURCE_NETWORKS="$oip/32" \
        RUST_LOG=warn "${PIN[@]}" "$BIN" standalone >"$OUT/node.log" 2>&1 &
    local node=$!
    # shellcheck disable=SC2064
    trap "kill $node $origin 2>/dev/null" EXIT
    local src="http://$oip:$oport/$(basename "$photo")" base="http://127.0.0.1:$nport"
    for _ in $(seq 100); do
        curl -sf "$base/ready" >/dev/null && curl -sfI "$src" >/dev/null && break
        sleep 0.1
    done
    cpu() { awk '{print $14 + $15}' "/proc/$node/stat"; }
    # ask PATH_AND_QUERY -> prints "seconds cpu_ticks"; fails on a non-200
    ask() {
        local c0 c1 t
        c0=$(cpu)
        t=$(curl -s -o "$OUT/info.out" -w '%{http_code} %{time_total}' "$base$1")
        c1=$(cpu)
        [ "${t%% *}" = 200 ] || { echo "$1 answered ${t%% *}" >&2; tail -3 "$OUT/node.log" >&2; exit 1; }
        echo "${t#* } $((c1 - c0))"
    }
    local case info=() thumb=() ci=0 ct=0 r line
    for case in miss cached; do
        info=() thumb=() ci=0 ct=0
        for ((r = 0; r < ROUNDS; r++)); do
            local u="$src?$case-$r-$RANDOM" ui ut
            if [ "$case" = cached ]; then ask "/image?url=$u&w=64" >/dev/null; fi
            ui="$u" ut="$u"
            if [ "$case" = miss ]; then ut="$u-thumb"; fi
            # Each goes first every other round (right after the warm-up or
            # the other's miss, the node may still be busy storing).
            if ((r % 2 == 1)); then
                line=$(ask "/image?url=$ut&w=300"); thumb+=("${line% *}"); ct=$((ct + ${line#* }))
            fi
            line=$(ask "/info?url=$ui"); info+=("${line% *}"); ci=$((ci + ${line#* }))
            if ((r % 2 == 0)); then
                line=$(ask "/image?url=$ut&w=300"); thumb+=("${line% *}"); ct=$((ct + ${line#* }))
            fi
        done
        local mi mt
        mi=$(printf '%s\n' "${info[@]}" | median)
        mt=$(printf '%s\n' "${thumb[@]}" | median)
        printf '%-22s /info %.3fs  w=300 %.3fs  ratio %.2f  cpu/request %.0f ms vs %.0f ms  (load %s)\n' \
            "info $case" "$mi" "$mt" "$(echo "$mi / $mt" | bc -l)" \
            "$(echo "$ci * 1000 / $(getconf CLK_TCK) / $ROUNDS" | bc -l)" \
            "$(echo "$ct * 1000 / $(getconf CLK_TCK) / $ROUNDS" | bc -l)" "$(cut -d' ' -f1 /proc/loadavg)"
    done
    kill "$node" "$origin" 2>/dev/null
    wait "$node" "$origin" 2>/dev/null || true
    trap - EXIT
}

# Warm the page cache for both.
cat "${PHOTOS[@]}" >/dev/null
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews both sides)" >&2
if [ "$ONLY" = "info" ]; then
    info_bench
    exit 0
fi
if [ "$ONLY" != "gravity" ]; then
    bench "jpeg 300px q80" "--width 300 --quality 80" "-s 300" jpg
    bench "webp 800px q80" "--width 800 --format webp --quality 80" "-s 800" webp
fi
if [ "$ONLY" != "vips" ]; then
    gravity_bench "cover 300x300 smart"
fi
CPUS="${BENCH_CPUS-0}"
if [ -n "$CPUS" ] && command -v taskset >/dev/null; then
    PIN=(taskset -c "$CPUS")
    if [ "$ONLY" != "gravity" ]; then
        bench "jpeg 300px q80 cpu $CPUS" "--width 300 --quality 80" "-s 300" jpg
        bench "webp 800px q80 cpu $CPUS" "--width 800 --format webp --quality 80" "-s 800" webp
    fi
    if [ "$ONLY" != "vips" ]; then
        gravity_bench "cover 300x300 smart cpu $CPUS"
    fi
fi
