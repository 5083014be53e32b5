#!/usr/bin/env bash
# The SQLite benchmarks of docs/BENCHMARKS.md: one `mfad serve` on its default SQLite store
# and the load generator, together on this machine. Prints the load generator's tables.
#
#   scripts/bench-sqlite.sh [RUNS]
#
# Environment: CONNECTIONS (default 64), SECONDS_PER_RUN (default 10), PREPARE (verify
# challenges per run, default 100000), PORT (default 8091), MFAD_BIN / LOADGEN_BIN
# (default target/release/…). Needs: cargo build --release -p mfad-server -p mfad-loadgen
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
SECS="${SECONDS_PER_RUN:-10}"
PREPARE="${PREPARE:-100000}"
PORT="${PORT:-8091}"
MFAD="${MFAD_BIN:-target/release/mfad}"
LOADGEN="${LOADGEN_BIN:-target/release/mfad-loadgen}"

DATA="$(mktemp -d "${TMPDIR:-/tmp}/mfad-bench.XXXXXX")"
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$DATA"; }
trap cleanup EXIT

export MFAD_DATA_DIR="$DATA" RUST_LOG=warn
KEY="$("$MFAD" api-key create --tenant bench 2>/dev/null | tail -n 1)"
MFAD_LISTEN="127.0.0.1:$PORT" "$MFAD" serve 2>"$DATA/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

run() {
    echo "### $*"
    "$LOADGEN" --url "http://127.0.0.1:$PORT" --api-key "$KEY" --connections "$CONNECTIONS" \
        --seconds "$SECS" --threads 1 --server-pid "$SERVER" "$@" 2>&1 | sed -n '/^measured/,$p'
}

for i in $(seq 1 "$RUNS"); do
    run --scenario health
    run --scenario verify --prepare "$PREPARE"
    run --scenario enroll-totp
done
run --scenario verify-totp --factors 30000
run --scenario flow
echo "### server: $(grep -E 'VmHWM|VmRSS' /proc/$SERVER/status | tr -s ' ' | tr '\n' ' ')"
