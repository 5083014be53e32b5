#!/usr/bin/env bash
# Verification throughput and latency of one mfad node on PostgreSQL, with a chosen number
# of factors (and as many old challenges) already in the database. Used for the
# "PostgreSQL" section of docs/BENCHMARKS.md.
#
#   scripts/bench-postgres.sh [SEED_FACTORS] [RUNS]
#
# Environment: PG_ADMIN_URL (default postgres://postgres@127.0.0.1:5432/test), POOL (the
# node's MFAD_DB_MAX_CONNECTIONS, default 16), CONNECTIONS (load generator, default 64),
# SECONDS_PER_RUN (default 8), PREPARE (challenges per run, default 30000), PORT (8090),
# SSLMODE (default disable: the server is local), MFAD_BIN and LOADGEN_BIN (default
# target/release/…), and any MFAD_* setting for the node.
# Needs release builds: cargo build --release -p mfad-server -p mfad-loadgen
#
# Each run reports the load generator's table plus the CPU seconds that mfad, all postgres
# processes and the whole machine used during the measured phase (from /proc), so results
# on a shared machine can be read against what else was running.
set -euo pipefail
cd "$(dirname "$0")/.."

SEED="${1:-10000}"
RUNS="${2:-3}"
ADMIN="${PG_ADMIN_URL:-postgres://postgres@127.0.0.1:5432/test}"
POOL="${POOL:-16}"
CONNECTIONS="${CONNECTIONS:-64}"
SECS="${SECONDS_PER_RUN:-8}"
PREPARE="${PREPARE:-30000}"
PORT="${PORT:-8090}"
MFAD="${MFAD_BIN:-target/release/mfad}"
LOADGEN="${LOADGEN_BIN:-target/release/mfad-loadgen}"
DB="mfad_bench_${SEED}"
BASE="${ADMIN%/*}"
URL="$BASE/$DB?sslmode=${SSLMODE:-disable}"
WORK="$(mktemp -d)"
trap 'kill "${PID:-0}" 2>/dev/null || true; rm -rf "$WORK"' EXIT

psql -X -q "$ADMIN" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
export MFAD_DATABASE_URL="$URL" MFAD_DATA_DIR="$WORK/data" MFAD_DB_MAX_CONNECTIONS="$POOL"
export MFAD_LISTEN="127.0.0.1:$PORT" RUST_LOG=warn
# One key drives the whole load: the per-key request limit would measure itself.
export MFAD_RATE_LIMIT_PER_KEY=0
mkdir -p "$MFAD_DATA_DIR"
"$MFAD" migrate
KEY="$("$MFAD" api-key create --tenant bench 2>/dev/null | tail -n 1)"

# Generic factors with random ids spread over the key space (ULIDs would append on the
# right of the indexes; random ids are the harder case), one expired challenge each.
echo "seeding $SEED factors and $SEED challenges"
psql -X -q "$BASE/$DB" -v ON_ERROR_STOP=1 -v n="$SEED" <<'SQL'
SELECT id AS tenant FROM tenants WHERE name = 'bench' \gset
INSERT INTO factors (id, tenant_id, user_id, type, created_at, updated_at)
SELECT 'auth_factor_' || upper(substr(md5(i::text), 1, 26)), :'tenant', 'user_' || i,
       'generic_otp', 1700000000000 + i, 1700000000000 + i
FROM generate_series(1, :n) AS i;
INSERT INTO challenges (id, tenant_id, factor_id, code_digest, expires_at, attempts, verified_at, created_at)
SELECT 'auth_challenge_' || upper(substr(md5('c' || i), 1, 26)), :'tenant',
       'auth_factor_' || upper(substr(md5(i::text), 1, 26)),
       decode(md5('d' || i) || md5('e' || i), 'hex'), 1700000600000 + i, 0, NULL, 1700000000000 + i
FROM generate_series(1, :n) AS i;
VACUUM ANALYZE;
SELECT count(*) AS factors, pg_size_pretty(pg_database_size(current_database())) AS size FROM factors;
SQL

"$MFAD" serve >"$WORK/server.log" 2>&1 &
PID=$!
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done

tick=$(getconf CLK_TCK)
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
pg_cpu() { local s=0 v; for p in $(pgrep -u postgres); do v=$(cpu_of "$p"); s=$((s + v)); done; echo "$s"; }
machine() { head -1 /proc/stat | awk '{print $2+$3+$4+$5+$6+$7+$8+$9, $5+$6}'; }
secs() { echo "scale=2; $1 / $tick" | bc; }

for run in $(seq "$RUNS"); do
    echo "== run $run: $SEED seeded factors, pool $POOL, $CONNECTIONS connections; $(uptime | sed 's/.*load/load/')"
    "$LOADGEN" --url "http://127.0.0.1:$PORT" --api-key "$KEY" --scenario verify \
        --connections "$CONNECTIONS" --seconds "$SECS" --prepare "$PREPARE" --server-pid "$PID" \
        >"$WORK/out" 2>"$WORK/err" &
    LG=$!
    until grep -q "measuring" "$WORK/err" 2>/dev/null || ! kill -0 "$LG" 2>/dev/null; do sleep 0.05; done
    m0=$(cpu_of "$PID"); p0=$(pg_cpu); read -r t0 i0 < <(machine)
    wait "$LG"
    m1=$(cpu_of "$PID"); p1=$(pg_cpu); read -r t1 i1 < <(machine)
    sed -n '/^measured/,/^$/p' "$WORK/out" "$WORK/err"
    echo "CPU during the measured phase: mfad $(secs $((m1 - m0)))s, postgres $(secs $((p1 - p0)))s," \
        "machine busy $(secs $(((t1 - t0) - (i1 - i0))))s of $(secs $((t1 - t0)))s"
done
