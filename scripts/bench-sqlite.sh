#!/usr/bin/env bash
# The SQLite benchmarks of docs/BENCHMARKS.md: one `mfad serve` on its default SQLite store
# and two load generators, mfad-loadgen (right codes) and wrk (wrong TOTP codes, the
# judge-and-count path an attacker drives), together on this machine. Prints each tool's
# figures, then the verify/health ratios of this run.
#
#   scripts/bench-sqlite.sh [RUNS]
#
# Environment: CONNECTIONS (default 64), SECONDS_PER_RUN (default 10), PREPARE (verify
# challenges per run, default 100000), PORT (default 8091), MFAD_BIN / LOADGEN_BIN
# (default target/release/…), WRK_CHALLENGES (wrong-code challenges, default 8000: at
# most 100 attempts each, enough for a 10 s run at 80,000/s),
# EVENTS (default on; `off` runs the server with MFAD_EVENTS=off, no audit events, to
# measure what recording them costs: docs/BENCHMARKS.md, issue 12), QUICK (1: only the
# health and verify runs and their ratios, for latency against CONNECTIONS), WEBHOOK
# (1: one WorkOS-format webhook endpoint of the tenant subscribed to the verification
# events, so each is fanned out into the outbox in its transaction and delivered to a
# receiver on this host that answers 200: issue 12's figure with a webhook).
# Needs: cargo build --release -p mfad-server -p mfad-loadgen; installs wrk if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${1:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
SECS="${SECONDS_PER_RUN:-10}"
PREPARE="${PREPARE:-100000}"
PORT="${PORT:-8091}"
MFAD="${MFAD_BIN:-target/release/mfad}"
LOADGEN="${LOADGEN_BIN:-target/release/mfad-loadgen}"

WRK_CHALLENGES="${WRK_CHALLENGES:-8000}"
if ! command -v wrk >/dev/null; then
    echo "installing wrk" >&2
    apt-get install -y -qq wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
fi

DATA="$(mktemp -d "${TMPDIR:-/tmp}/mfad-bench.XXXXXX")"
SERVER=""
RECEIVER=""
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null
    [ -n "$RECEIVER" ] && kill "$RECEIVER" 2>/dev/null
    wait 2>/dev/null
    rm -rf "$DATA"
}
trap cleanup EXIT

# Wrong codes must keep exercising the judge-and-count path for the whole run, so the
# attempt limit is at its highest (100) and spread over WRK_CHALLENGES challenges (each
# wrong code is judged and counted; wrk reports any non-2xx, such as an exhausted
# challenge), the per-factor throttle is off (its load-test switch), and so is the
# per-key request limit (one key drives the whole load).
export MFAD_DATA_DIR="$DATA" RUST_LOG=warn MFAD_CHALLENGE_MAX_ATTEMPTS=100
export MFAD_THROTTLE=off MFAD_RATE_LIMIT_PER_KEY=0
# Events run mode (issue 12): on by default, as in production.
export MFAD_EVENTS="${EVENTS:-on}"
echo "### audit events: $MFAD_EVENTS"
KEY="$("$MFAD" api-key create --tenant bench 2>/dev/null | tail -n 1)"
if [ "${WEBHOOK:-0}" = 1 ]; then
    HOOK_PORT=$((PORT + 1))
    python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
' "$HOOK_PORT" &
    RECEIVER=$!
    "$MFAD" webhook add --tenant bench --url "http://127.0.0.1:$HOOK_PORT/hook" --allow-insecure \
        --events authentication.mfa_succeeded,authentication.mfa_failed >/dev/null
    echo "### webhook: one endpoint, receiver on 127.0.0.1:$HOOK_PORT"
fi
MFAD_LISTEN="127.0.0.1:$PORT" "$MFAD" serve 2>"$DATA/serve.log" &
SERVER=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

BASE="http://127.0.0.1:$PORT"
api() { curl -sf -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' "$@"; }
FACTOR="$(api -d '{"type":"totp","totp_issuer":"bench","totp_user":"wrk@example.com"}' \
    "$BASE/auth/factors/enroll" | sed -E 's/.*"id":"(auth_factor_[^"]+)".*/\1/')"
# One curl per few thousand (one connection, one JSON object per line).
seq 1 "$WRK_CHALLENGES" | sed "s|.*|$BASE/auth/factors/$FACTOR/challenge|" | xargs \
    curl -sf -H "Authorization: Bearer $KEY" -X POST -w '\n' |
    sed -E 's/.*"id":"(auth_challenge_[^"]+)".*/\1/' >"$DATA/challenges.txt"

wrk_run() { # NAME URL [wrk options] [-- script args]: prints wrk's report, records requests/s in $DATA/NAME
    local name="$1" url="$2" opts=()
    shift 2
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do opts+=("$1"); shift; done
    echo "### wrk $name"
    # wrk takes the URL after its options and before the script's arguments.
    MFAD_API_KEY="$KEY" wrk -t1 -c"$CONNECTIONS" -d"${SECS}s" --latency "${opts[@]}" "$url" "$@" |
        tee "$DATA/$name.out"
    awk '/^Requests\/sec/ {print $2}' "$DATA/$name.out" >"$DATA/$name"
}

run() {
    echo "### $*"
    "$LOADGEN" --url "http://127.0.0.1:$PORT" --api-key "$KEY" --connections "$CONNECTIONS" \
        --seconds "$SECS" --threads 1 --server-pid "$SERVER" "$@" 2>&1 | sed -n '/^measured/,$p'
}

ratio() { awk -v a="$(cat "$DATA/$1")" -v b="$(cat "$DATA/$2")" 'BEGIN { printf "%.3f", a / b }'; }
# ops/s of the first operation measured (fields counted from the end: names hold spaces).
loadgen_rate() { awk '/^measured/ {m=1; next} m && $1 == "op" {getline; print $(NF-5); exit}' "$DATA/$1.out"; }

for i in $(seq 1 "$RUNS"); do
    echo "### load: $(uptime)"
    run --scenario health | tee "$DATA/lg-health.out"
    run --scenario verify --prepare "$PREPARE" | tee "$DATA/lg-verify.out"
    wrk_run health "$BASE/health"
    wrk_run verify-wrong "$BASE/" -s scripts/wrk-verify.lua -- "$DATA/challenges.txt"
    loadgen_rate lg-health >"$DATA/lg-health"
    loadgen_rate lg-verify >"$DATA/lg-verify"
    echo "### run $i ratios: loadgen verify(right)/health $(ratio lg-verify lg-health)," \
        "wrk verify(wrong TOTP)/health $(ratio verify-wrong health)"
    [ "${QUICK:-0}" = 1 ] || run --scenario enroll-totp
done
if [ "${QUICK:-0}" != 1 ]; then
    run --scenario verify-totp --factors 30000
    run --scenario flow
fi
echo "### server: $(grep -E 'VmHWM|VmRSS' /proc/$SERVER/status | tr -s ' ' | tr '\n' ' ')"
if [ -n "$RECEIVER" ] && command -v sqlite3 >/dev/null; then
    echo "### webhook outbox by state: $(sqlite3 "$DATA/mfad.db" \
        "SELECT group_concat(state || ' ' || n, ', ') FROM (SELECT state, count(*) n FROM webhook_outbox GROUP BY state)")"
fi
