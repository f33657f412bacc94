#!/usr/bin/env bash
# The local servers at once: PostgreSQL (scripts/postgres.sh), Kafka
# (scripts/kafka.sh) and Kafka Connect with Debezium (scripts/connect.sh),
# started in that order and stopped in the reverse one.
#
#   scripts/servers.sh up|down|status|pause|resume [kafka|postgres|connect]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
action="${1:-}"
which="${2:-all}"
case "$action" in up|down|status|pause|resume) ;; *) echo "usage: scripts/servers.sh up|down|status|pause|resume [kafka|postgres|connect]" >&2; exit 2 ;; esac
order=(postgres kafka connect)
[ "$action" = down ] && order=(connect kafka postgres)
rc=0
for server in "${order[@]}"; do
  if [ "$which" = all ] || [ "$which" = "$server" ]; then "$here/$server.sh" "$action" || rc=$?; fi
done
exit $rc
