#!/usr/bin/env bash
# Make a local PostgreSQL available for the tests, idempotently:
#   install the server (apt) if missing, create a cluster if there is none, start it, wait for it,
#   ensure role `opsbot` (password `opsbot`, LOGIN CREATEDB CREATEROLE: the tests make owner and runtime roles) and database `opsbot_test` owned by it.
# Prints the SQLAlchemy URL on stdout (and nothing else); progress goes to stderr, so
#   export OPSBOT_TEST_PG_URL="$(scripts/pg-up.sh)"
# works. Needs root or passwordless sudo for the steps that change the machine; the cluster is left running.
set -euo pipefail

ROLE=opsbot
PASSWORD=opsbot
DATABASE=opsbot_test
CLUSTER=main

log() { printf 'pg-up: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n "$@" || die "needs root (or passwordless sudo) to run: $*"
  else
    die "needs root (or passwordless sudo) to run: $*"
  fi
}

as_postgres() {
  if [ "$(id -un)" = postgres ]; then
    "$@"
  elif [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo -n -u postgres "$@" || die "needs to run as the postgres user (passwordless sudo): $*"
  else
    die "needs to run as the postgres user: $*"
  fi
}

# The postgres user may not be able to enter the caller's directory.
cd /

installed_versions() {
  local bin
  for bin in /usr/lib/postgresql/*/bin/postgres; do
    if [ -x "$bin" ]; then basename "$(dirname "$(dirname "$bin")")"; fi
  done | sort -V
}

# 1. Server binaries.
if [ -z "$(installed_versions)" ] || ! command -v pg_lsclusters >/dev/null 2>&1; then
  log "no PostgreSQL server installed; installing it with apt"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update >&2
  as_root env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8 \
    apt-get install -y --no-install-recommends postgresql >&2
  [ -n "$(installed_versions)" ] || die "apt-get install postgresql did not install a server"
fi

# 2. A cluster named $CLUSTER: the newest installed version that has one, else create one.
version=""
for v in $(installed_versions); do
  if pg_lsclusters -h 2>/dev/null | awk -v v="$v" -v c="$CLUSTER" '$1 == v && $2 == c {f=1} END {exit !f}'; then
    version=$v
  fi
done
if [ -z "$version" ]; then
  version=$(installed_versions | tail -n 1)
  log "creating cluster $version/$CLUSTER"
  as_root env LANG=C.UTF-8 LC_ALL=C.UTF-8 pg_createcluster --encoding UTF8 --locale C.UTF-8 \
    "$version" "$CLUSTER" >&2
fi

cluster_field() { # $1: column of pg_lsclusters (3 port, 4 status)
  pg_lsclusters -h | awk -v v="$version" -v c="$CLUSTER" -v f="$1" '$1 == v && $2 == c {print $f}'
}

# 3. Running and accepting connections.
port=$(cluster_field 3)
[ -n "$port" ] || die "cannot read the port of cluster $version/$CLUSTER from pg_lsclusters"
case "$(cluster_field 4)" in
  online*) ;;
  *)
    log "starting cluster $version/$CLUSTER on port $port"
    as_root pg_ctlcluster "$version" "$CLUSTER" start >&2 || {
      tail -n 20 "/var/log/postgresql/postgresql-$version-$CLUSTER.log" >&2 2>/dev/null || true
      die "pg_ctlcluster $version $CLUSTER start failed"
    }
    ;;
esac
for _ in $(seq 1 60); do
  pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 0.5
done
pg_isready -h 127.0.0.1 -p "$port" >&2 || die "PostgreSQL on 127.0.0.1:$port is not ready after 30s"

# 4. Role and database (re-asserting password and attributes is harmless).
as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$port" -d postgres >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB CREATEROLE PASSWORD '$PASSWORD';
  ELSE
    ALTER ROLE $ROLE LOGIN CREATEDB CREATEROLE PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SELECT 'CREATE DATABASE $DATABASE OWNER $ROLE'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DATABASE') \gexec
ALTER DATABASE $DATABASE OWNER TO $ROLE;
SQL

# 5. The tests connect over TCP with the password: check exactly that.
PGPASSWORD=$PASSWORD PGCONNECT_TIMEOUT=5 \
  psql -X -q -At -h 127.0.0.1 -p "$port" -U "$ROLE" -d "$DATABASE" -c 'select 1' >/dev/null \
  || die "cannot log in as $ROLE to $DATABASE on 127.0.0.1:$port (check pg_hba.conf allows password auth)"

log "ready: cluster $version/$CLUSTER on 127.0.0.1:$port"
echo "postgresql+psycopg://$ROLE:$PASSWORD@127.0.0.1:$port/$DATABASE"
