#!/usr/bin/env bash
# Makes PostgreSQL available for mfad's tests on a Debian machine: a server on
# 127.0.0.1:$PGPORT that trusts local TCP connections, with a database `test`. Idempotent:
# it installs PostgreSQL only when it is missing (apt), starts the cluster only when it is
# down, and adds the trust rule and the database only when they are absent.
#
# Tests then use MFAD_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/test
# (the default under CI). Trust authentication is for throwaway CI and dev machines only.
#
# Environment: PGPORT (default 5432) and PG_CLUSTER (default main) select the cluster.
# Needs root (or the postgres user's rights) to install, start and configure.
set -euo pipefail

PORT="${PGPORT:-5432}"
CLUSTER="${PG_CLUSTER:-main}"
HOST=127.0.0.1

log() { echo "ensure-postgres: $*" >&2; }

ready() { pg_isready -q -h "$HOST" -p "$PORT" 2>/dev/null; }

# The installed major version (the newest, if several): /etc/postgresql/<version>.
installed_version() {
    ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1
}

if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(installed_version)" ]; then
    log "PostgreSQL is not installed; installing it with apt"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q postgresql
fi

VERSION="$(installed_version)"
[ -n "$VERSION" ] || { log "no PostgreSQL version under /etc/postgresql after installing"; exit 1; }
if [ ! -d "/etc/postgresql/$VERSION/$CLUSTER" ]; then
    log "creating cluster $VERSION/$CLUSTER on port $PORT"
    pg_createcluster "$VERSION" "$CLUSTER" --port "$PORT"
fi
CONF_DIR="/etc/postgresql/$VERSION/$CLUSTER"
HBA="$CONF_DIR/pg_hba.conf"

# Trust TCP connections from this machine. pg_hba.conf is read top-down and the first
# matching line decides, so the rule goes first.
MARK="# mfad: trust local TCP (scripts/ensure-postgres.sh)"
hba_changed=no
if ! grep -qF "$MARK" "$HBA"; then
    log "adding a trust rule for $HOST to $HBA"
    tmp="$(mktemp)"
    {
        echo "$MARK"
        echo "host    all    all    127.0.0.1/32    trust"
        echo "host    all    all    ::1/128         trust"
        cat "$HBA"
    } >"$tmp"
    cat "$tmp" >"$HBA" # keeps the file's owner and mode
    rm -f "$tmp"
    hba_changed=yes
fi

if ! ready; then
    log "starting cluster $VERSION/$CLUSTER"
    # --skip-systemctl-redirect: containers and CI machines often run without systemd.
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" start || true
elif [ "$hba_changed" = yes ]; then
    pg_ctlcluster --skip-systemctl-redirect "$VERSION" "$CLUSTER" reload
fi

for _ in $(seq 1 60); do
    ready && break
    sleep 0.5
done
ready || { log "PostgreSQL did not become ready on $HOST:$PORT"; tail -n 20 "/var/log/postgresql/postgresql-$VERSION-$CLUSTER.log" >&2 || true; exit 1; }

psql_tcp() { psql -X -q -h "$HOST" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
if ! psql_tcp -tAc "SELECT 1" >/dev/null 2>&1; then
    log "cannot log in as postgres over TCP without a password; check $HBA"
    exit 1
fi
if [ "$(psql_tcp -tAc "SELECT 1 FROM pg_database WHERE datname = 'test'")" != 1 ]; then
    log "creating database test"
    psql_tcp -c "CREATE DATABASE test"
fi

log "ready: postgres://postgres@$HOST:$PORT/test (PostgreSQL $VERSION)"
