#!/usr/bin/env bash
# Local Kafka Connect (standalone worker, the broker's Kafka version) with the
# Debezium Postgres connector (pgoutput), built from jars on Maven Central. It
# carries the change events of public.user_sessions into the topic
# revocation.public.user_sessions (and heartbeats into
# __debezium-heartbeat.revocation). Needs scripts/kafka.sh and
# scripts/postgres.sh up (postgres.sh turns logical decoding on).
#
#   scripts/connect.sh up       fetch jars (once), start the worker, wait for its REST API
#   scripts/connect.sh register register the connector of deploy/debezium-connector.json
#                               (public.user_sessions) and wait until it runs
#   scripts/connect.sh down     stop the worker (SIGTERM, then SIGKILL after 30 s)
#   scripts/connect.sh status   say whether the worker and the connector run
#   scripts/connect.sh pause    freeze the worker (SIGSTOP): no change events, no heartbeats
#   scripts/connect.sh resume   thaw it (SIGCONT)
#   (a single connector pauses over Connect's REST API: PUT /connectors/NAME/pause)
#   scripts/connect.sh kill     SIGKILL the worker, for fault tests; `up` restarts it
#   scripts/connect.sh drop-slot  stop the worker and drop its replication slot (a slot left
#                               behind keeps WAL forever); the next `up` snapshots the table again
#
# Everything lives under .local/connect (git-ignored): jars/, logs/, offsets, connect.pid.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
name="connect.sh"
# shellcheck source=lib/server.sh
. "$here/lib/server.sh"
state="${CONNECT_STATE_DIR:-$root/.local/connect}"
jars="$state/jars"
logs="$state/logs"
pidfile="$state/connect.pid"
rest="http://127.0.0.1:8083"
connector="revocation-sessions"
config="$root/deploy/debezium-connector.json"
slot="revocation_sessions"

pid() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }
answers() { curl -fsS "$rest/" >/dev/null 2>&1; }
connector_state() {
  curl -fsS "$rest/connectors/$connector/status" 2>/dev/null \
    | python3 -c 'import json,sys; s=json.load(sys.stdin); t=s.get("tasks") or [{}]; print(s["connector"]["state"], t[0].get("state","NONE"))' 2>/dev/null \
    || echo "ABSENT NONE"
}
running() { [ "$(connector_state)" = "RUNNING RUNNING" ]; }

fetch_jars() { fetch_maven_jars "$here/connect/pom.xml" "$jars" "$logs/mvn.log" "Kafka Connect and Debezium"; }

# The worker's configuration, written at every start.
write_config() {
  mkdir -p "$state" "$logs"
  cat >"$state/worker.properties" <<PROPERTIES
bootstrap.servers=127.0.0.1:9092
listeners=http://127.0.0.1:8083
offset.storage.file.filename=$state/offsets
offset.flush.interval.ms=1000
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
# The broker does not create topics on its own; the connector asks for them.
topic.creation.enable=true
plugin.discovery=only_scan
PROPERTIES
}

register() {
  # Connect echoes the configuration back, database password included: the
  # log keeps the answer with every password redacted.
  (set -o pipefail
   curl -fsS -X PUT -H "Content-Type: application/json" --data @"$config" \
     "$rest/connectors/$connector/config" 2>&1 \
     | sed -E 's/("[^"]*password[^"]*" *: *")[^"]*"/\1[redacted]"/g' >"$logs/register.log") \
    || fail "Connect refused the connector configuration" "$logs/register.log"
}

up() {
  "$here/kafka.sh" status >/dev/null 2>&1 || fail "Kafka is not up; start it with scripts/kafka.sh up"
  "$here/postgres.sh" status >/dev/null 2>&1 || fail "PostgreSQL is not up; start it with scripts/postgres.sh up"
  fetch_jars
  if ! pid >/dev/null; then
    write_config
    say "starting the Connect worker; log in $logs/connect.log"
    nohup java -Xmx512m -cp "$jars/*" -Dlog4j2.configurationFile="$here/connect/log4j2.properties" \
      -Dconnect.logs.dir="$logs" org.apache.kafka.connect.cli.ConnectStandalone "$state/worker.properties" \
      >"$logs/stdout.log" 2>&1 &
    echo $! >"$pidfile"
  fi
  wait_until 120 "the Connect REST API did not answer" "$logs/connect.log" answers
  say "up (pid $(pid)) on $rest"
}

# The connector of deploy/debezium-connector.json (public.user_sessions →
# revocation.public.user_sessions); tests register connectors of their own.
register_connector() {
  answers || fail "Connect is not up; start it with scripts/connect.sh up"
  # The heartbeat rows need no setup: the connector's heartbeat.action.query
  # upserts one per partition (`projector cdc-heartbeat-query`, docs/cdc.md).
  register
  wait_until 120 "the connector did not run" "$logs/connect.log" running
  say "connector $connector running: $rest/connectors/$connector/status"
}

down() {
  local p
  p="$(pid)" || { say "down"; return 0; }
  kill -CONT "$p" 2>/dev/null || true
  kill "$p"
  for _ in $(seq 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$p" 2>/dev/null && kill -9 "$p"
  rm -f "$pidfile"
  say "down"
}

case "${1:-}" in
  up) up ;;
  register) register_connector ;;
  down) down ;;
  status)
    if pid >/dev/null && answers; then say "up (pid $(pid)) on $rest"; else say "down"; exit 1; fi ;;
  pause) p="$(pid)" && kill -STOP "$p" && say "paused (pid $p)" || say "not running" ;;
  resume) p="$(pid)" && kill -CONT "$p" && say "resumed (pid $p)" || say "not running" ;;
  kill) p="$(pid)" && kill -9 "$p" && rm -f "$pidfile" && say "killed (pid $p)" || say "not running" ;;
  drop-slot)
    down
    rm -f "$state/offsets"
    PGPASSWORD=revocation psql -h 127.0.0.1 -U revocation -d revocation -qAt \
      -c "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" \
      -c "DROP PUBLICATION IF EXISTS $slot" >/dev/null \
      && say "replication slot $slot dropped" ;;
  *) echo "usage: scripts/connect.sh up|register|down|status|pause|resume|kill|drop-slot" >&2; exit 2 ;;
esac
