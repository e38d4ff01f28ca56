#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for SECONDS each (default 60)
# and prints how many inputs each one executed. SECURITY.md ("Fuzzing")
# lists the targets and what they check.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET ...]
#
# Stable Rust: RUSTC_BOOTSTRAP=1 (for cargo fuzz only) enables its -Z flags.
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`, done here when
# missing) and a C++ compiler for libFuzzer (Debian: g++). Seeds come from
# the test fixtures (test-support/examples/fuzz_seeds.rs); the corpora grow
# in fuzz/corpus/ and crashers land in fuzz/artifacts/TARGET/ (both
# ignored by git): a crasher is kept as a unit test beside the code it
# broke. Exits non-zero if any target fails to build or finds a crash.
# FUZZ_SANITIZER picks cargo fuzz's sanitizer (default `address`; `none`
# builds faster); FUZZ_PROFILE=dev builds the targets in the dev profile
# (fuzz/Cargo.toml: opt-level 2 for the codec crates only) instead of
# release: less CPU to build, fewer executions per second.
# .ci/run uses both to keep the targets building; see SECURITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(query_options source_url complete transform avif_container)
fi
sanitizer="${FUZZ_SANITIZER:-address}"
case "${FUZZ_PROFILE:-release}" in
    release) profile_flag=() profile_dir=release ;;
    dev) profile_flag=(--dev) profile_dir=debug ;;
    *) echo "FUZZ_PROFILE must be release or dev" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# Without RUSTC_BOOTSTRAP: cargo fingerprints it, so setting it here would
# rebuild every root dependency `cargo test` has just built.
cargo run -q -p img-proxy-test-support --example fuzz_seeds -- fuzz/corpus

cd fuzz
# Stable Rust with the -Z flags cargo fuzz passes.
RUSTC_BOOTSTRAP=1 cargo fuzz build --sanitizer "$sanitizer" "${profile_flag[@]}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
mkdir -p logs
status=0
for t in "${targets[@]}"; do
    log="logs/$t.log"
    mkdir -p "artifacts/$t" "corpus/$t"
    # The built binary, run directly: `cargo fuzz run` would take cargo's
    # lock for a no-op build. -rss_limit_mb: a decode that needs more is a
    # finding (the transform target's pixel budget is 4 MP). -timeout: one
    # input taking over 10 s is a finding (a hang, or quadratic work).
    if "target/$triple/$profile_dir/$t" -artifact_prefix="artifacts/$t/" \
        -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 "corpus/$t" >"$log" 2>&1; then
        result=ok
    else
        result="CRASH (see fuzz/$log and fuzz/artifacts/$t/)"
        status=1
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    corpus=$(find "corpus/$t" -type f | wc -l)
    printf '%-14s %6ss  %10s executions  corpus %5s  %s\n' \
        "$t" "$secs" "${runs:-?}" "$corpus" "$result"
done
exit "$status"
