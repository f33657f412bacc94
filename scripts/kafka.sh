#!/usr/bin/env bash
# Local Apache Kafka (KRaft, one broker + controller), built from its jars on
# Maven Central. No tarball, no Docker. Three client listeners, configured the
# way managed clusters are (certificates from scripts/tls.sh):
#
#   127.0.0.1:9092  PLAINTEXT
#   127.0.0.1:9094  SASL_SSL: PLAIN, SCRAM-SHA-256/512 (user projector, password
#                   projector-secret) and OAUTHBEARER (unsecured JWTs)
#   127.0.0.1:9095  SSL with client certificates required (mutual TLS)
#   127.0.0.1:9096  SSL presenting an expired certificate   } for the tests that
#   127.0.0.1:9097  SSL presenting another host's certificate } prove they are refused
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
tls="${TLS_DIR:-$root/.local/tls}"
# The throw-away SASL user of the local broker (tests and docs use it too).
sasl_user="projector"
sasl_password="projector-secret"

classpath() { echo "$jars/*"; }
pid() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null && cat "$pidfile"; }

# Answers, or has exited (then fails at once rather than waiting it out).
started() {
  pid >/dev/null || fail "the broker exited during start" "$logs/server.log and $logs/stdout.log"
  answers
}

# Both TLS listeners accept connections.
tls_listeners() { port_taken 9094 && port_taken 9095; }

answers() {
  timeout 30 java -cp "$(classpath)" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
    -Dkafka.logs.dir="$logs/tools" org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$bootstrap" --list >/dev/null 2>>"$logs/healthcheck.log"
}

fetch_jars() { fetch_maven_jars "$here/kafka/pom.xml" "$jars" "$logs/mvn.log" "the Kafka jars"; }

# The broker's configuration: the checked-in template, where the data lives,
# and the TLS and SASL listeners. Written at every start, so a broker started
# by an older version of this script gains the listeners when restarted.
write_config() {
  mkdir -p "$state"
  {
    cat "$here/kafka/server.properties"
    echo "log.dirs=$data"
    cat <<PROPERTIES
listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,SASL_SSL://127.0.0.1:9094,SSL://127.0.0.1:9095,EXPIRED://127.0.0.1:9096,WRONG_HOST://127.0.0.1:9097
advertised.listeners=PLAINTEXT://127.0.0.1:9092,SASL_SSL://127.0.0.1:9094,SSL://127.0.0.1:9095,EXPIRED://127.0.0.1:9096,WRONG_HOST://127.0.0.1:9097
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,EXPIRED:SSL,WRONG_HOST:SSL
sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512,OAUTHBEARER
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$sasl_user="$sasl_password";
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="$sasl_user";
ssl.keystore.type=PKCS12
ssl.keystore.location=$tls/server.p12
ssl.keystore.password=$(cat "$tls/keystore-password")
ssl.key.password=$(cat "$tls/keystore-password")
ssl.truststore.type=PEM
ssl.truststore.location=$tls/ca.pem
listener.name.ssl.ssl.client.auth=required
listener.name.expired.ssl.keystore.location=$tls/expired.p12
listener.name.wrong_host.ssl.keystore.location=$tls/wrong-host.p12
PROPERTIES
  } >"$state/server.properties"
}

# SCRAM credentials live in the cluster's metadata; setting them again is a
# no-op. One mechanism per request (the broker refuses two in one).
add_scram_user() {
  local mechanism
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    java -cp "$(classpath)" -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" \
      -Dkafka.logs.dir="$logs/tools" kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter \
      --add-config "$mechanism=[password=$sasl_password]" \
      --entity-type users --entity-name "$sasl_user" >>"$logs/scram.log" 2>&1 \
      || fail "could not create the $mechanism user $sasl_user" "$logs/scram.log"
  done
}

format_storage() {
  [ -f "$data/meta.properties" ] && return 0
  mkdir -p "$data" "$logs"
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
    answers && tls_listeners && { say "up (pid $(pid)) on $bootstrap, 9094 (SASL_SSL), 9095 (mutual TLS)"; return 0; }
    tls_listeners || fail "the broker (pid $(pid)) runs without the TLS listeners (started by an older version of this script?); run scripts/kafka.sh down, then up"
  fi
  fetch_jars
  "$here/tls.sh" up >/dev/null
  write_config
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
  add_scram_user
  say "up (pid $(pid)) on $bootstrap (PLAINTEXT), 127.0.0.1:9094 (SASL_SSL), 127.0.0.1:9095 (mutual TLS)"
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
