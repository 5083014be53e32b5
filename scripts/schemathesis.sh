#!/usr/bin/env bash
# Fuzzes the real `mfad` binary from its own OpenAPI document with schemathesis (issue 11
# §1): starts `mfad serve` on a fresh SQLite data dir with an API key, then runs
# schemathesis against GET /openapi.json, bounded in examples and time. Fails on any 5xx
# (not_a_server_error), any status, body or content type the document does not declare
# (status_code_conformance, response_schema_conformance, content_type_conformance).
#
#   bash scripts/schemathesis.sh            # debug binary (built if missing)
#   MFAD_BIN=target/release/mfad bash scripts/schemathesis.sh
#   MFAD_ST_MAX_EXAMPLES=50 MFAD_ST_MAX_TIME=120 MFAD_ST_SEED=7 bash scripts/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${MFAD_BIN:-target/debug/mfad}"
MAX_EXAMPLES="${MFAD_ST_MAX_EXAMPLES:-30}"
MAX_TIME="${MFAD_ST_MAX_TIME:-180}"
SEED="${MFAD_ST_SEED:-1101}"

if [ ! -x "$BIN" ]; then
    cargo build -p mfad-server --bin mfad
fi

work="$(mktemp -d)"
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
export MFAD_DATA_DIR="$work/data"
export MFAD_LISTEN="127.0.0.1:$port"
# The fuzzer sends thousands of requests from one address with one key, and texts the
# same generated numbers again and again: the request and send limits would answer most
# of them 429 (documented, but then nothing else would be exercised).
export MFAD_RATE_LIMIT_PER_KEY=0 MFAD_RATE_LIMIT_PER_ADDRESS=0
export MFAD_SMS_COOLDOWN_SECS=0 MFAD_SMS_PER_NUMBER_HOUR=100000 MFAD_SMS_PER_NUMBER_DAY=100000
export MFAD_SMS_PROVIDER=console MFAD_EMAIL_PROVIDER=console
export RUST_LOG=warn

MFAD_ST_KEY="$("$BIN" api-key create --tenant fuzz | tail -n 1 | tr -d '[:space:]')"
export MFAD_ST_KEY
"$BIN" serve >"$work/server.log" 2>&1 &
pid=$!

for _ in $(seq 1 100); do
    if python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
        "http://$MFAD_LISTEN/health" 2>/dev/null; then break; fi
    if ! kill -0 "$pid" 2>/dev/null; then cat "$work/server.log"; exit 1; fi
    sleep 0.1
done

status=0
schemathesis --config-file scripts/schemathesis.toml run "http://$MFAD_LISTEN/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing,stateful \
    --max-examples "$MAX_EXAMPLES" --max-time "$MAX_TIME" --seed "$SEED" \
    --workers 2 --request-timeout 10 --no-color \
    --suppress-health-check all --generation-database none \
    || status=$?

if [ "$status" -ne 0 ]; then
    echo "== server log (last 50 lines)"
    tail -n 50 "$work/server.log"
fi
if ! kill -0 "$pid" 2>/dev/null; then
    echo "mfad died during the run"
    status=1
fi
exit "$status"
