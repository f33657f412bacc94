#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one broker + controller) on 127.0.0.1:9092, built
# from its jars on Maven Central. No tarball, no Docker.
#
#   scripts/kafka.sh up       fetch jars (once), format storage (once), start, wait for metadata
#   scripts/kafka.sh down     stop the broker (SIGTERM, then SIGKILL after 30 s)
#   scripts/kafka.sh status   say whether it runs and answers
#   scripts/kafka.sh pause    freeze the broker process (SIGSTOP): clients see a dead broker
#   scripts/kafka.sh resume   thaw it (SIGCONT)
#   scripts/kafka.sh kill     SIGKILL, for fault tests; `up` restarts it on the same data
#
# Everything lives under .local/kafka (git-ignored): jars/, data/, logs/, kafka.pid.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
name="kafka.sh"
# shellcheck source=lib/server.sh
. "$here/lib/server.sh"
state="${KAFKA_STATE_DIR:-$root/.local/kafka}"
jars="$state/jars"
data="$state/data"
logs="$state/logs"
pidfile="$state/kafka.pid"
bootstrap="127.0.0.1:9092"

classpath() { echo "$jars/*"; }
pid() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }

# Answers, or has exited (then fails at once rather than waiting it out).
started() {
  pid >/dev/null || fail "the broker exited during start" "$logs/server.log and $logs/stdout.log"
  answers
}

answers() {
  timeout 30 java -cp "$(classpath)" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$logs/tools" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$bootstrap" --list >/dev/null 2>>"$logs/healthcheck.log"
}

fetch_jars() {
  [ -f "$jars/.complete" ] && return 0
  command -v mvn >/dev/null || fail "mvn is not installed; install Maven (apt-get install maven)"
  command -v java >/dev/null || fail "java is not installed; install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  say "fetching the Kafka jars from Maven Central (once) into $jars"
  mkdir -p "$jars" "$logs"
  mvn -q -B -f "$here/kafka/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$jars" -DincludeScope=runtime >"$logs/mvn.log" 2>&1 \
    || fail "fetching the Kafka jars with mvn failed" "$logs/mvn.log"
  touch "$jars/.complete"
}

format_storage() {
  [ -f "$data/meta.properties" ] && return 0
  mkdir -p "$data" "$logs"
  cp "$here/kafka/server.properties" "$state/server.properties"
  echo "log.dirs=$data" >>"$state/server.properties"
  local cluster_id
  cluster_id="$(java -cp "$(classpath)" kafka.tools.StorageTool random-uuid 2>>"$logs/format.log")" \
    || fail "could not generate a cluster id" "$logs/format.log"
  java -cp "$(classpath)" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$logs" kafka.tools.StorageTool format \
    -t "$cluster_id" -c "$state/server.properties" >>"$logs/format.log" 2>&1 \
    || fail "formatting the KRaft storage failed" "$logs/format.log"
}

up() {
  if pid >/dev/null; then
    if is_paused "$(pid)"; then kill -CONT "$(pid)"; fi
    answers && { say "up (pid $(pid)) on $bootstrap"; return 0; }
  fi
  fetch_jars
  format_storage
  if ! pid >/dev/null && port_taken 9092; then
    fail "port 9092 is taken by a process this script did not start ($(command -v ss >/dev/null && ss -ltnpH 'sport = :9092' | grep -o 'pid=[0-9]*' | head -1)); stop it first"
  fi
  if ! pid >/dev/null; then
    say "starting the broker; log in $logs/server.log"
    # Its own session: Ctrl-C on whatever ran `up` (scripts/demo, say) must not reach the broker.
    setsid nohup java -Xms512m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true \
      -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -Dkafka.logs.dir="$logs" \
      -cp "$(classpath)" kafka.Kafka "$state/server.properties" \
      >"$logs/stdout.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
  fi
  wait_until 120 "the broker did not answer a metadata request" "$logs/server.log" started
  say "up (pid $(pid)) on $bootstrap"
}

down() {
  local p; p="$(pid)" || { say "not running"; rm -f "$pidfile"; return 0; }
  kill -CONT "$p" 2>/dev/null || true
  kill -TERM "$p"
  local deadline=$((SECONDS + 30))
  while kill -0 "$p" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { kill -KILL "$p"; break; }
    sleep 0.5
  done
  rm -f "$pidfile"
  say "stopped"
}

status() {
  local p; p="$(pid)" || { say "down"; return 3; }
  if is_paused "$p"; then say "paused (pid $p)"; return 0; fi
  if answers; then say "up (pid $p) on $bootstrap"; else say "running (pid $p) but not answering"; return 1; fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  pause) p="$(pid)" || fail "not running"; kill -STOP "$p"; say "paused (pid $p)" ;;
  resume) p="$(pid)" || fail "not running"; kill -CONT "$p"; say "resumed (pid $p)" ;;
  kill) p="$(pid)" || fail "not running"; kill -KILL "$p"; rm -f "$pidfile"; say "killed (pid $p)" ;;
  *) echo "usage: scripts/kafka.sh up|down|status|pause|resume|kill" >&2; exit 2 ;;
esac
