#!/usr/bin/env bash
# Client-compatibility suite: drives the official WorkOS SDKs (Node @workos-inc/node 11.0.0,
# Python workos 10.6.0), unmodified, against a real `mfad serve`, with SMS going through
# mfad's Twilio provider to a local Twilio stand-in, and webhook deliveries going to a local
# receiver whose captures the SDKs' signature checks verify.
#
# Usage: tests/compat/run.sh [path-to-mfad-binary]
#   default binary: target/release/mfad if present, else target/debug/mfad (repo root relative)
#
# Environment:
#   MFAD_DATABASE_URL   passed through to mfad if set (e.g. to run against PostgreSQL);
#                       otherwise mfad uses its default store in a fresh temp data dir.
#   COMPAT_KEEP_LOGS=1  keep the temp dir (server and stand-in logs) after the run.
#
# Exit status: 0 only if both the Node and the Python suites pass.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"

# shellcheck source=common.sh
source "$HERE/common.sh"
compat_binary compat "$ROOT" "${1:-}"
compat_install compat "$HERE"

# ---------------------------------------------------------------- cleanup
TMP="$(mktemp -d "${TMPDIR:-/tmp}/mfad-compat.XXXXXX")"
STANDIN_PID=""
RECEIVER_PID=""
SERVER_PID=""
cleanup() {
  local rc=$?
  for pid in "$SERVER_PID" "$RECEIVER_PID" "$STANDIN_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  if [[ "${COMPAT_KEEP_LOGS:-}" == "1" ]]; then
    echo "compat: logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

# ---------------------------------------------------------------- Twilio stand-in
TWILIO_SID="AC$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
TWILIO_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
TWILIO_FROM="+15005550006"

"$VENV/bin/python" -u "$HERE/twilio_standin.py" --port 0 --sid "$TWILIO_SID" --token "$TWILIO_TOKEN" \
  > "$TMP/standin.out" 2> "$TMP/standin.log" &
STANDIN_PID=$!
STANDIN_PORT=""
for _ in $(seq 1 100); do
  STANDIN_PORT="$(sed -n 's/^PORT=\([0-9]*\)$/\1/p' "$TMP/standin.out" | head -n1)"
  [[ -n "$STANDIN_PORT" ]] && break
  kill -0 "$STANDIN_PID" 2>/dev/null || { echo "compat: Twilio stand-in died:" >&2; cat "$TMP/standin.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$STANDIN_PORT" ]] || { echo "compat: Twilio stand-in did not report its port" >&2; exit 1; }
TWILIO_STANDIN_URL="http://127.0.0.1:$STANDIN_PORT"
echo "compat: Twilio stand-in on $TWILIO_STANDIN_URL"

# ---------------------------------------------------------------- mfad
DATA_DIR="$TMP/data"
mkdir -p "$DATA_DIR"
export MFAD_DATA_DIR="$DATA_DIR"
if [[ -n "${MFAD_DATABASE_URL:-}" ]]; then
  export MFAD_DATABASE_URL
  echo "compat: MFAD_DATABASE_URL is set; passing it through"
fi

create_key() {
  local out
  if ! out="$("$BIN" api-key create --tenant "$1" 2> "$TMP/api-key-$1.err")"; then
    echo "compat: 'mfad api-key create --tenant $1' failed:" >&2
    cat "$TMP/api-key-$1.err" >&2
    exit 1
  fi
  local key
  key="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n1 | tr -d '[:space:]')"
  if [[ "$key" != sk_* ]]; then
    echo "compat: last stdout line of 'mfad api-key create --tenant $1' is not an sk_ key: '$key'" >&2
    exit 1
  fi
  printf '%s' "$key"
}
MFAD_API_KEY="$(create_key acme)"
MFAD_OTHER_TENANT_KEY="$(create_key other)"
echo "compat: created API keys for tenants acme and other"

# ---------------------------------------------------------------- webhook receiver + endpoint
# A receiver on loopback records every delivery; acme gets a WorkOS-format endpoint posting
# to it (--allow-insecure: http to loopback), added before the server starts.
"$VENV/bin/python" -u "$HERE/webhook_receiver.py" --port 0 > "$TMP/receiver.out" 2> "$TMP/receiver.log" &
RECEIVER_PID=$!
RECEIVER_PORT=""
for _ in $(seq 1 100); do
  RECEIVER_PORT="$(sed -n 's/^PORT=\([0-9]*\)$/\1/p' "$TMP/receiver.out" | head -n1)"
  [[ -n "$RECEIVER_PORT" ]] && break
  kill -0 "$RECEIVER_PID" 2>/dev/null || { echo "compat: webhook receiver died:" >&2; cat "$TMP/receiver.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$RECEIVER_PORT" ]] || { echo "compat: webhook receiver did not report its port" >&2; exit 1; }
WEBHOOK_RECEIVER_URL="http://127.0.0.1:$RECEIVER_PORT"
WEBHOOK_WORKOS_PATH="/workos"
WEBHOOK_EVENTS="authentication_factor.created,authentication_challenge.created,authentication.mfa_failed,authentication.mfa_succeeded,authentication_factor.deleted"
if ! out="$("$BIN" webhook add --tenant acme --url "$WEBHOOK_RECEIVER_URL$WEBHOOK_WORKOS_PATH" \
    --events "$WEBHOOK_EVENTS" --format workos --allow-insecure 2> "$TMP/webhook-add.err")"; then
  echo "compat: 'mfad webhook add' failed:" >&2
  cat "$TMP/webhook-add.err" >&2
  exit 1
fi
# The signing secret is the last line (shown once).
WEBHOOK_WORKOS_SECRET="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n1 | tr -d '[:space:]')"
[[ -n "$WEBHOOK_WORKOS_SECRET" ]] || { echo "compat: no signing secret from 'mfad webhook add'" >&2; exit 1; }
echo "compat: webhook receiver on $WEBHOOK_RECEIVER_URL, acme's WorkOS-format endpoint added"

PORT="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
MFAD_URL="http://127.0.0.1:$PORT"

MFAD_LISTEN="127.0.0.1:$PORT" \
MFAD_SMS_PROVIDER=twilio \
MFAD_TWILIO_ACCOUNT_SID="$TWILIO_SID" \
MFAD_TWILIO_AUTH_TOKEN="$TWILIO_TOKEN" \
MFAD_TWILIO_FROM="$TWILIO_FROM" \
MFAD_TWILIO_BASE_URL="$TWILIO_STANDIN_URL" \
  "$BIN" serve > "$TMP/mfad.log" 2>&1 &
SERVER_PID=$!

healthy=""
for _ in $(seq 1 300); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "compat: mfad serve exited early:" >&2
    tail -n 50 "$TMP/mfad.log" >&2
    exit 1
  fi
  if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$MFAD_URL/health" || true)" == "200" ]]; then
    healthy=1
    break
  fi
  sleep 0.1
done
[[ -n "$healthy" ]] || { echo "compat: mfad did not answer GET /health with 200 within 30 s" >&2; tail -n 50 "$TMP/mfad.log" >&2; exit 1; }
echo "compat: mfad serving on $MFAD_URL"

export MFAD_URL MFAD_API_KEY MFAD_OTHER_TENANT_KEY TWILIO_STANDIN_URL
export WEBHOOK_RECEIVER_URL WEBHOOK_WORKOS_PATH WEBHOOK_WORKOS_SECRET
export MFAD_TWILIO_FROM="$TWILIO_FROM"

# ---------------------------------------------------------------- suites
status=0

echo
echo "=== Node: @workos-inc/node 11.0.0 (node --test) ==="
if (cd "$HERE" && node --test --test-reporter=spec workos_node.test.mjs workos_webhooks.test.mjs); then
  node_result="passed"
else
  node_result="FAILED"
  status=1
fi

echo
echo "=== Python: workos 10.6.0 (pytest) ==="
if (cd "$HERE" && "$VENV/bin/python" -m pytest -q --tb=short -p no:cacheprovider test_workos_python.py test_workos_webhooks.py); then
  py_result="passed"
else
  py_result="FAILED"
  status=1
fi

echo
echo "compat: Node suite $node_result; Python suite $py_result"
if [[ $status -ne 0 ]]; then
  echo "compat: last 40 lines of the mfad log:"
  tail -n 40 "$TMP/mfad.log" || true
fi
exit $status
