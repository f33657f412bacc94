#!/usr/bin/env bash
# Local PostgreSQL (Debian's cluster) on 127.0.0.1:5432 with the role and database
# the tests and the demo use: postgres://revocation:revocation@127.0.0.1:5432/revocation
# TLS is on, with a server certificate from scripts/tls.sh's CA (clients may
# use sslmode=verify-full&sslrootcert=.local/tls/ca.pem, or plain connections).
#
#   scripts/postgres.sh up       install (if missing), start, create role + database, wait
#   scripts/postgres.sh down     stop the cluster
#   scripts/postgres.sh status   say whether it accepts connections
#   scripts/postgres.sh pause    freeze every server process (SIGSTOP)
#   scripts/postgres.sh resume   thaw them (SIGCONT)
#   scripts/postgres.sh kill     SIGKILL the postmaster, for fault tests; `up` restarts it
#   scripts/postgres.sh clean    drop the schemas, replication slots and publications earlier
#                                test runs and benchmarks left (t_*, e2e_*, fault_*, bench_*,
#                                slow_* followed by a uuid)
# Logical decoding is on (wal_level=logical) for scripts/connect.sh (Debezium).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="postgres.sh"
# shellcheck source=lib/server.sh
. "$here/lib/server.sh"

version="${PG_VERSION:-15}"
cluster="${PG_CLUSTER:-main}"
role="revocation"
database="revocation"
password="revocation"
log="/var/log/postgresql/postgresql-$version-$cluster.log"
root="$(cd "$here/.." && pwd)"
tls="${TLS_DIR:-$root/.local/tls}"

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
ctl() { pg_ctlcluster --skip-systemctl-redirect "$version" "$cluster" "$@"; }
accepts() { pg_isready -q -h 127.0.0.1 -p 5432 -t 2; }
# Starts the server unless its postmaster is alive, then asks whether it
# accepts. Retried by `up`: after a kill, the old server's children may hold
# its shared memory for a moment and a start is refused until they are gone.
start_if_down() {
  local p
  p="$(postmaster)" && [ -d "/proc/$p" ] && [ "$(ps -o stat= -p "$p" | cut -c1)" != Z ] || ctl start >/dev/null 2>&1 || true
  accepts
}
pids() { pgrep -u postgres -f "postgres" || true; }
postmaster() { local f="/var/lib/postgresql/$version/$cluster/postmaster.pid"; [ -f "$f" ] && head -1 "$f"; }

install_server() {
  command -v pg_ctlcluster >/dev/null && [ -x "/usr/lib/postgresql/$version/bin/postgres" ] && return 0
  say "installing postgresql-$version with apt"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "postgresql-$version"; } \
    >/tmp/postgres-install.log 2>&1 || fail "apt could not install postgresql-$version" /tmp/postgres-install.log
}

up() {
  install_server
  pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version $cluster" \
    || { pg_createcluster "$version" "$cluster" >/dev/null || fail "could not create cluster $version/$cluster"; }
  # Resume if paused, start if down.
  for p in $(pids); do kill -CONT "$p" 2>/dev/null || true; done
  accepts || wait_until 60 "PostgreSQL did not accept connections" "$log" start_if_down
  as_postgres psql -qAt -v ON_ERROR_STOP=1 <<SQL >/dev/null || fail "could not create role $role / database $database"
SELECT 'CREATE ROLE $role LOGIN PASSWORD ''$password'' CREATEDB'
  WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') \gexec
SELECT 'CREATE DATABASE $database OWNER $role'
  WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$database') \gexec
SQL
  enable_tls
  enable_logical_decoding
  say "up on 127.0.0.1:5432 (postgres://$role:$password@127.0.0.1:5432/$database)"
}

# The server certificate of scripts/tls.sh, installed where the server (not
# only root) can read its key, and TLS switched on; a reload applies it.
enable_tls() {
  "$here/tls.sh" up >/dev/null
  local dest="/var/lib/postgresql/$version/$cluster/revocation-tls"
  install -d -o postgres -g postgres -m 700 "$dest"
  install -o postgres -g postgres -m 600 "$tls/server.pem" "$dest/server.crt"
  install -o postgres -g postgres -m 600 "$tls/server.key" "$dest/server.key"
  as_postgres psql -qAt -v ON_ERROR_STOP=1 <<SQL >/dev/null || fail "could not switch TLS on" "$log"
ALTER SYSTEM SET ssl = on;
ALTER SYSTEM SET ssl_cert_file = '$dest/server.crt';
ALTER SYSTEM SET ssl_key_file = '$dest/server.key';
SELECT pg_reload_conf();
SQL
}

# Change data capture (Debezium, scripts/connect.sh) reads the WAL through a
# logical replication slot: wal_level=logical (a restart, once) and a role
# allowed to replicate. Replication slots left by tests are dropped by `clean`.
enable_logical_decoding() {
  if [ "$(as_postgres psql -qAt -c 'SHOW wal_level')" != logical ]; then
    say "turning on logical decoding (wal_level=logical; restarts the server once)"
    as_postgres psql -qAt -v ON_ERROR_STOP=1 <<SQL >/dev/null || fail "could not set wal_level" "$log"
ALTER SYSTEM SET wal_level = logical;
ALTER SYSTEM SET max_replication_slots = 20;
ALTER SYSTEM SET max_wal_senders = 20;
SQL
    ctl restart || fail "pg_ctlcluster could not restart $version/$cluster" "$log"
    wait_until 60 "PostgreSQL did not accept connections after the restart" "$log" accepts
  fi
  as_postgres psql -qAt -v ON_ERROR_STOP=1 -c "ALTER ROLE $role REPLICATION" >/dev/null \
    || fail "could not let $role replicate"
}

# Each test makes its own schema and leaves it for inspection when it fails;
# scripts/test drops the previous run's before it starts.
clean() {
  accepts || fail "not running; run scripts/postgres.sh up"
  local pattern="'^(t|e2e|fault|bench|slow)_[0-9a-f]{32}\$'" count
  count=$(as_postgres psql -qAt -v ON_ERROR_STOP=1 -d "$database" <<SQL
SET client_min_messages = warning;
SELECT count(*) FROM pg_namespace WHERE nspname ~ $pattern;
SELECT format('DROP SCHEMA %I CASCADE', nspname) FROM pg_namespace WHERE nspname ~ $pattern \gexec
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name ~ $pattern AND NOT active;
SELECT format('DROP PUBLICATION %I', pubname) FROM pg_publication WHERE pubname ~ $pattern \gexec
SQL
  ) || fail "could not drop the test schemas"
  say "dropped ${count%%$'\n'*} schema(s) left by earlier test runs"
}

case "${1:-}" in
  up) up ;;
  down) if accepts || [ -n "$(pids)" ]; then for p in $(pids); do kill -CONT "$p" 2>/dev/null || true; done; ctl stop -m fast; fi; say "stopped" ;;
  status) if accepts; then say "up on 127.0.0.1:5432"; elif [ -n "$(pids)" ]; then say "running but not answering (paused?)"; exit 1; else say "down"; exit 3; fi ;;
  pause) [ -n "$(pids)" ] || fail "not running"; for p in $(pids); do kill -STOP "$p"; done; say "paused" ;;
  resume) for p in $(pids); do kill -CONT "$p"; done; say "resumed" ;;
  kill) p="$(postmaster)" || fail "not running"; kill -KILL "$p"; say "killed the postmaster (pid $p)" ;;
  clean) clean ;;
  *) echo "usage: scripts/postgres.sh up|down|status|pause|resume|kill|clean" >&2; exit 2 ;;
esac
