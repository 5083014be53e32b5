#!/usr/bin/env bash
# FusionAuth client-compatibility suite: drives the official FusionAuth clients, unmodified
# (Python fusionauth-client 1.69.0, Node @fusionauth/typescript-client 1.69.0), plus every
# request shape of the Elixir fusion_auth 0.3.0 TwoFactor module over raw HTTP, against a
# real `mfad serve`. SMS goes through mfad's Twilio provider to the local Twilio stand-in
# (../twilio_standin.py); email goes through mfad's SMTP provider to a real SMTP server on
# loopback (smtp_sink.py, aiosmtpd).
#
# Usage: tests/compat/fusionauth/run.sh [path-to-mfad-binary]
#   default binary: target/release/mfad if present, else target/debug/mfad (repo root relative)
#
# Environment:
#   MFAD_DATABASE_URL   passed through to mfad if set (e.g. to run against PostgreSQL);
#                       otherwise mfad uses its default store in a fresh temp data dir.
#   COMPAT_KEEP_LOGS=1  keep the temp dir (server, stand-in and sink logs) after the run.
#   PYTEST_ADDOPTS      extra pytest options (e.g. "-k elixir -x").
#
# Exit status: 0 only if the Node and the Python suites all pass.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPAT="$(cd "$HERE/.." && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"

# shellcheck source=../common.sh
source "$COMPAT/common.sh"
compat_binary fusionauth-compat "$ROOT" "${1:-}"
compat_install fusionauth-compat "$HERE"

# ---------------------------------------------------------------- cleanup
TMP="$(mktemp -d "${TMPDIR:-/tmp}/mfad-fa-compat.XXXXXX")"
STANDIN_PID=""
SINK_PID=""
RECEIVER_PID=""
SERVER_PID=""
SHORT_PID=""
cleanup() {
  local rc=$?
  for pid in "$SHORT_PID" "$SERVER_PID" "$RECEIVER_PID" "$SINK_PID" "$STANDIN_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  if [[ "${COMPAT_KEEP_LOGS:-}" == "1" ]]; then
    echo "fusionauth-compat: logs kept in $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

export NO_PROXY="127.0.0.1,localhost${NO_PROXY:+,$NO_PROXY}"
export no_proxy="$NO_PROXY"

# wait_for_line FILE REGEX PID WHAT: prints the first capture of REGEX in FILE
wait_for_line() {
  local file="$1" re="$2" pid="$3" what="$4" val=""
  for _ in $(seq 1 100); do
    val="$(sed -n "s/$re/\\1/p" "$file" | head -n1)"
    [[ -n "$val" ]] && { printf '%s' "$val"; return 0; }
    kill -0 "$pid" 2>/dev/null || { echo "fusionauth-compat: $what died:" >&2; cat "$file" "$file.err" >&2 2>/dev/null; return 1; }
    sleep 0.1
  done
  echo "fusionauth-compat: $what did not report its port" >&2
  return 1
}

# ---------------------------------------------------------------- Twilio stand-in (shared script, own instance)
TWILIO_SID="AC$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
TWILIO_TOKEN="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
TWILIO_FROM="+15005550006"

"$VENV/bin/python" -u "$COMPAT/twilio_standin.py" --port 0 --sid "$TWILIO_SID" --token "$TWILIO_TOKEN" \
  > "$TMP/standin.out" 2> "$TMP/standin.out.err" &
STANDIN_PID=$!
STANDIN_PORT="$(wait_for_line "$TMP/standin.out" '^PORT=\([0-9]*\)$' "$STANDIN_PID" "Twilio stand-in")"
TWILIO_STANDIN_URL="http://127.0.0.1:$STANDIN_PORT"
echo "fusionauth-compat: Twilio stand-in on $TWILIO_STANDIN_URL"

# ---------------------------------------------------------------- SMTP sink (aiosmtpd)
"$VENV/bin/python" -u "$HERE/smtp_sink.py" --smtp-port 0 --http-port 0 > "$TMP/sink.out" 2> "$TMP/sink.out.err" &
SINK_PID=$!
SMTP_PORT="$(wait_for_line "$TMP/sink.out" '^SMTP_PORT=\([0-9]*\)$' "$SINK_PID" "SMTP sink")"
SINK_HTTP_PORT="$(wait_for_line "$TMP/sink.out" '^HTTP_PORT=\([0-9]*\)$' "$SINK_PID" "SMTP sink")"
SMTP_SINK_URL="http://127.0.0.1:$SINK_HTTP_PORT"
echo "fusionauth-compat: SMTP sink on smtp://127.0.0.1:$SMTP_PORT (messages at $SMTP_SINK_URL/_test/messages)"

# ---------------------------------------------------------------- mfad
DATA_DIR="$TMP/data"
mkdir -p "$DATA_DIR"
export MFAD_DATA_DIR="$DATA_DIR"
if [[ -n "${MFAD_DATABASE_URL:-}" ]]; then
  export MFAD_DATABASE_URL
  echo "fusionauth-compat: MFAD_DATABASE_URL is set; passing it through"
fi

# create_key NAME: sets KEY and TENANT from `mfad api-key create --tenant NAME`
# (first line "tenant: <name> (<tenant id>)", last line the key)
create_key() {
  local out
  if ! out="$("$BIN" api-key create --tenant "$1" 2> "$TMP/api-key-$1.err")"; then
    echo "fusionauth-compat: 'mfad api-key create --tenant $1' failed:" >&2
    cat "$TMP/api-key-$1.err" >&2
    exit 1
  fi
  KEY="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n1 | tr -d '[:space:]')"
  TENANT="$(printf '%s\n' "$out" | sed -n '1s/^tenant:[^(]*(\([^)]*\)).*$/\1/p')"
  if [[ -z "$KEY" || -z "$TENANT" ]]; then
    echo "fusionauth-compat: could not read the key / tenant id from 'mfad api-key create --tenant $1':" >&2
    printf '%s\n' "$out" | sed 's/sk_[A-Za-z0-9_]*/sk_<redacted>/' >&2
    exit 1
  fi
}
create_key acme
MFAD_API_KEY="$KEY"; MFAD_TENANT_ID="$TENANT"
create_key other
MFAD_OTHER_TENANT_KEY="$KEY"; MFAD_OTHER_TENANT_ID="$TENANT"
echo "fusionauth-compat: API keys for tenants acme ($MFAD_TENANT_ID) and other ($MFAD_OTHER_TENANT_ID)"

# ---------------------------------------------------------------- webhook receiver + endpoint
# A receiver on loopback (../webhook_receiver.py) records every delivery; acme gets a
# FusionAuth-format endpoint posting to it (--allow-insecure: http to loopback).
"$VENV/bin/python" -u "$COMPAT/webhook_receiver.py" --port 0 > "$TMP/receiver.out" 2> "$TMP/receiver.out.err" &
RECEIVER_PID=$!
RECEIVER_PORT="$(wait_for_line "$TMP/receiver.out" '^PORT=\([0-9]*\)$' "$RECEIVER_PID" "webhook receiver")"
WEBHOOK_RECEIVER_URL="http://127.0.0.1:$RECEIVER_PORT"
WEBHOOK_FUSIONAUTH_PATH="/fusionauth"
if ! out="$("$BIN" webhook add --tenant acme --url "$WEBHOOK_RECEIVER_URL$WEBHOOK_FUSIONAUTH_PATH" \
    --events two_factor.method_added,two_factor.method_removed,two_factor.login_succeeded,two_factor.login_failed \
    --format fusionauth --allow-insecure 2> "$TMP/webhook-add.err")"; then
  echo "fusionauth-compat: 'mfad webhook add' failed:" >&2
  cat "$TMP/webhook-add.err" >&2
  exit 1
fi
# The signing secret is the last line (shown once).
WEBHOOK_FUSIONAUTH_SECRET="$(printf '%s\n' "$out" | sed '/^[[:space:]]*$/d' | tail -n1 | tr -d '[:space:]')"
[[ -n "$WEBHOOK_FUSIONAUTH_SECRET" ]] || { echo "fusionauth-compat: no signing secret from 'mfad webhook add'" >&2; exit 1; }
echo "fusionauth-compat: webhook receiver on $WEBHOOK_RECEIVER_URL, acme's FusionAuth-format endpoint added"

MFAD_JWT_HS256_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
# An RSA key pair: mfad verifies RS256 tokens with the public half (MFAD_JWT_PUBLIC_KEYS_FILE),
# the tests sign with the private half and also try the public PEM as an HMAC secret.
JWT_RS256_PRIVATE_KEY_FILE="$TMP/jwt-rs256-private.pem"
JWT_RS256_PUBLIC_KEY_FILE="$TMP/jwt-rs256-public.pem"
"$VENV/bin/python" - "$JWT_RS256_PRIVATE_KEY_FILE" "$JWT_RS256_PUBLIC_KEY_FILE" <<'PY'
import sys
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
open(sys.argv[1], "wb").write(k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
open(sys.argv[2], "wb").write(k.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
PY

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }

# start_mfad PORT LOG [VAR=VALUE...]: `mfad serve` on 127.0.0.1:PORT with the test providers
start_mfad() {
  local port="$1" log="$2"; shift 2
  env MFAD_LISTEN="127.0.0.1:$port" \
    MFAD_SMS_PROVIDER=twilio \
    MFAD_TWILIO_ACCOUNT_SID="$TWILIO_SID" \
    MFAD_TWILIO_AUTH_TOKEN="$TWILIO_TOKEN" \
    MFAD_TWILIO_FROM="$TWILIO_FROM" \
    MFAD_TWILIO_BASE_URL="$TWILIO_STANDIN_URL" \
    MFAD_EMAIL_PROVIDER=smtp \
    MFAD_SMTP_URL="smtp://127.0.0.1:$SMTP_PORT" \
    MFAD_SMTP_FROM="mfad@example.com" \
    MFAD_JWT_HS256_SECRET="$MFAD_JWT_HS256_SECRET" \
    MFAD_JWT_PUBLIC_KEYS_FILE="$JWT_RS256_PUBLIC_KEY_FILE" \
    MFAD_JWT_DEFAULT_TENANT=acme \
    "$@" "$BIN" serve > "$log" 2>&1 &
  LAST_PID=$!
}

# wait_healthy PID URL LOG
wait_healthy() {
  for _ in $(seq 1 300); do
    if ! kill -0 "$1" 2>/dev/null; then
      echo "fusionauth-compat: mfad serve exited early:" >&2
      tail -n 50 "$3" >&2
      exit 1
    fi
    if [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$2/health" || true)" == "200" ]]; then
      return 0
    fi
    sleep 0.1
  done
  echo "fusionauth-compat: mfad did not answer GET /health with 200 within 30 s" >&2
  tail -n 50 "$3" >&2
  exit 1
}

PORT="$(free_port)"
MFAD_URL="http://127.0.0.1:$PORT"
# No SMS cooldown and a roomy prefix cap: these flows resend to one phone at once and text
# many +1415 numbers; the per-number hourly limit stays at its default and is tested here.
start_mfad "$PORT" "$TMP/mfad.log" MFAD_SMS_COOLDOWN_SECS=0 MFAD_SMS_PER_PREFIX_HOUR=10000
SERVER_PID=$LAST_PID
wait_healthy "$SERVER_PID" "$MFAD_URL" "$TMP/mfad.log"
echo "fusionauth-compat: mfad serving on $MFAD_URL"

# A second server on the same database whose two-factor logins expire after 2 s, for the
# expired-twoFactorId tests.
SHORT_PORT="$(free_port)"
MFAD_SHORT_TTL_URL="http://127.0.0.1:$SHORT_PORT"
start_mfad "$SHORT_PORT" "$TMP/mfad-short-ttl.log" MFAD_TWO_FACTOR_LOGIN_TTL_SECS=2 \
  MFAD_SMS_COOLDOWN_SECS=0 MFAD_SMS_PER_PREFIX_HOUR=10000
SHORT_PID=$LAST_PID
wait_healthy "$SHORT_PID" "$MFAD_SHORT_TTL_URL" "$TMP/mfad-short-ttl.log"
echo "fusionauth-compat: mfad (2 s twoFactorId lifetime) serving on $MFAD_SHORT_TTL_URL"

# Passkeys: acme's relying party is localhost (a secure context on plain http): soft-webauthn's
# origin, and the page the browser test serves on PAGE_PORT. Set while the servers run: they
# read it at each ceremony.
PAGE_PORT="$(free_port)"
if ! "$BIN" webauthn config --tenant acme --rp-id localhost --rp-name "mfad compat" \
    --origin http://localhost --origin "http://localhost:$PAGE_PORT" > "$TMP/webauthn-config.out" 2>&1; then
  echo "fusionauth-compat: 'mfad webauthn config' failed:" >&2
  cat "$TMP/webauthn-config.out" >&2
  exit 1
fi
export PAGE_PORT
# The browser test's screenshot is kept here.
export WEBAUTHN_ARTIFACT_DIR="${WEBAUTHN_ARTIFACT_DIR:-$ROOT/target/webauthn-browser}"

export MFAD_URL MFAD_API_KEY MFAD_TENANT_ID MFAD_OTHER_TENANT_KEY MFAD_OTHER_TENANT_ID
export MFAD_JWT_HS256_SECRET JWT_RS256_PRIVATE_KEY_FILE JWT_RS256_PUBLIC_KEY_FILE MFAD_SHORT_TTL_URL
export TWILIO_STANDIN_URL SMTP_SINK_URL
export WEBHOOK_RECEIVER_URL WEBHOOK_FUSIONAUTH_PATH WEBHOOK_FUSIONAUTH_SECRET
export MFAD_TWILIO_FROM="$TWILIO_FROM"

# ---------------------------------------------------------------- suites
status=0

echo
echo "=== Node: @fusionauth/typescript-client 1.69.0 (node --test) ==="
if (cd "$HERE" && node --test --test-reporter=spec fusionauth_ts.test.mjs webauthn_browser.test.mjs fusionauth_webhooks.test.mjs); then
  node_result="passed"
else
  node_result="FAILED"
  status=1
fi

echo
echo "=== Python: fusionauth-client 1.69.0 + Elixir 0.3.0 request shapes (pytest) ==="
if (cd "$HERE" && "$VENV/bin/python" -m pytest -q --tb=short -p no:cacheprovider test_fusionauth_python.py test_elixir_shapes.py); then
  py_result="passed"
else
  py_result="FAILED"
  status=1
fi

echo
echo "=== Python: fusionauth-client 1.69.0 + soft-webauthn passkeys (pytest, own venv) ==="
WEBAUTHN_VENV="$HERE/.venv-webauthn"
webauthn_hash="$(sha256sum "$HERE/requirements-webauthn.txt" | cut -c1-16)"
(
  flock 9
  if [[ ! -x "$WEBAUTHN_VENV/bin/python" || "$(cat "$WEBAUTHN_VENV/.compat-hash" 2>/dev/null)" != "$webauthn_hash" ]]; then
    [[ -x "$WEBAUTHN_VENV/bin/python" ]] || python3 -m venv "$WEBAUTHN_VENV"
    "$WEBAUTHN_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements-webauthn.txt"
    echo "$webauthn_hash" > "$WEBAUTHN_VENV/.compat-hash"
  fi
) 9>"$HERE/.install-webauthn.lock"
if (cd "$HERE" && "$WEBAUTHN_VENV/bin/python" -m pytest -q --tb=short -p no:cacheprovider test_webauthn_python.py); then
  :
else
  py_result="FAILED"
  status=1
fi

echo
echo "fusionauth-compat: Node suite $node_result; Python suite $py_result"
if [[ $status -ne 0 ]]; then
  echo "fusionauth-compat: last 40 lines of the mfad log:"
  tail -n 40 "$TMP/mfad.log" || true
fi
exit $status
