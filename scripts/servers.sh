#!/usr/bin/env bash
# Both local servers at once: Kafka (scripts/kafka.sh) and PostgreSQL
# (scripts/postgres.sh).
#
#   scripts/servers.sh up|down|status|pause|resume [kafka|postgres]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
action="${1:-}"
which="${2:-all}"
case "$action" in up|down|status|pause|resume) ;; *) echo "usage: scripts/servers.sh up|down|status|pause|resume [kafka|postgres]" >&2; exit 2 ;; esac
rc=0
if [ "$which" = all ] || [ "$which" = postgres ]; then "$here/postgres.sh" "$action" || rc=$?; fi
if [ "$which" = all ] || [ "$which" = kafka ]; then "$here/kafka.sh" "$action" || rc=$?; fi
exit $rc
