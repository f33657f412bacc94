#!/usr/bin/env bash
# nginx and Caddy from Debian's packages, and a demo of each in front of the
# projector, run from the snippets in deploy/ (the ones the tests run):
#   nginx  on 127.0.0.1:8088 (deploy/nginx/forward-auth.conf)
#   Caddy  on 127.0.0.1:8089 (deploy/caddy/Caddyfile)
# both asking the projector on 127.0.0.1:8080 and proxying to a tiny
# upstream on 127.0.0.1:9000 (nginx answering "hello <user>, session <sid>").
#
#   scripts/gateways.sh install  install nginx and caddy with apt (if missing)
#   scripts/gateways.sh up       install, start both (idempotent), wait until they listen
#   scripts/gateways.sh down     stop both
#   scripts/gateways.sh status   say whether each listens
#   scripts/gateways.sh pause    freeze both (SIGSTOP)
#   scripts/gateways.sh resume   thaw them (SIGCONT)
#   scripts/gateways.sh kill     SIGKILL both, for fault drills; `up` restarts them
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
name="gateways.sh"
# shellcheck source=lib/server.sh
. "$here/lib/server.sh"
root="$(cd "$here/.." && pwd)"
dir="$root/.local/gateways"
nginx_bin=/usr/sbin/nginx
caddy_bin=/usr/bin/caddy

install() {
  [ -x "$nginx_bin" ] && [ -x "$caddy_bin" ] && return 0
  say "installing nginx and caddy with apt"
  { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nginx caddy; } \
    >/tmp/gateways-install.log 2>&1 || fail "apt could not install nginx and caddy" /tmp/gateways-install.log
  # The packages may start a system nginx on :80; the demo and tests run their own.
  pkill -x nginx 2>/dev/null || true
  "$nginx_bin" -V 2>&1 | grep -q http_auth_request_module || fail "this nginx lacks the auth_request module"
}

pid_of() { [ -f "$dir/$1.pid" ] && cat "$dir/$1.pid"; }
alive() { local p; p="$(pid_of "$1")" && [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

start_nginx() {
  alive nginx && return 0
  mkdir -p "$dir/nginx/logs"
  cp "$root/deploy/nginx/forward-auth.conf" "$dir/nginx/forward-auth.conf"
  cat >"$dir/nginx/nginx.conf" <<CONF
pid $dir/nginx.pid;
error_log $dir/nginx/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $dir/nginx/body;
  proxy_temp_path $dir/nginx/proxy;
  fastcgi_temp_path $dir/nginx/fastcgi;
  uwsgi_temp_path $dir/nginx/uwsgi;
  scgi_temp_path $dir/nginx/scgi;
  include $dir/nginx/forward-auth.conf;
  # The demo's upstream: says who the gateway said the caller is.
  server {
    listen 127.0.0.1:9000;
    default_type text/plain;
    location / { return 200 "hello \$http_x_auth_user, session \$http_x_auth_session\n"; }
  }
}
CONF
  "$nginx_bin" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" 2>"$dir/nginx/logs/start.log" \
    || fail "nginx did not start" "$dir/nginx/logs/start.log"
}

start_caddy() {
  alive caddy && return 0
  mkdir -p "$dir/caddy"
  { printf '{\n\tadmin off\n}\n\n'; cat "$root/deploy/caddy/Caddyfile"; } >"$dir/caddy/Caddyfile"
  HOME="$dir/caddy" XDG_DATA_HOME="$dir/caddy/data" XDG_CONFIG_HOME="$dir/caddy/config" \
    nohup "$caddy_bin" run --adapter caddyfile --config "$dir/caddy/Caddyfile" >"$dir/caddy/caddy.log" 2>&1 &
  echo $! >"$dir/caddy.pid"
}

up() {
  install
  mkdir -p "$dir"
  for g in nginx caddy; do p="$(pid_of $g)" && kill -CONT "$p" 2>/dev/null || true; done
  start_nginx
  start_caddy
  wait_until 15 "nginx did not listen on 8088" "$dir/nginx/logs/error.log" port_taken 8088
  wait_until 15 "Caddy did not listen on 8089" "$dir/caddy/caddy.log" port_taken 8089
  say "up: nginx on http://127.0.0.1:8088, Caddy on http://127.0.0.1:8089 (forward-auth at the projector on 127.0.0.1:8080; upstream 127.0.0.1:9000)"
}

down() {
  for g in nginx caddy; do
    if alive $g; then
      p="$(pid_of $g)"
      kill -CONT "$p" 2>/dev/null || true
      kill -TERM "$p" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    fi
    rm -f "$dir/$g.pid"
  done
  say "down"
}

status() {
  local rc=0
  if port_taken 8088; then say "nginx listens on 8088"; else say "nginx is down"; rc=1; fi
  if port_taken 8089; then say "Caddy listens on 8089"; else say "Caddy is down"; rc=1; fi
  return $rc
}

signal_all() {
  # nginx's workers too: pause must freeze the process that answers.
  for g in nginx caddy; do
    p="$(pid_of $g)" || continue
    # The master frozen first, then its workers, then itself: a running
    # master respawns killed workers, and a worker outliving its master
    # keeps the port.
    [ "$1" = CONT ] || kill -STOP "$p" 2>/dev/null || true
    pkill "-$1" -P "$p" 2>/dev/null || true
    kill "-$1" "$p" 2>/dev/null || true
  done
}

case "${1:-}" in
  install) install; say "nginx $("$nginx_bin" -v 2>&1 | sed 's|.*/||'), caddy $("$caddy_bin" version | cut -d' ' -f1)" ;;
  up) up ;;
  down) down ;;
  status) status ;;
  pause) signal_all STOP; say "paused" ;;
  resume) signal_all CONT; say "resumed" ;;
  kill) signal_all KILL; rm -f "$dir"/*.pid; say "killed" ;;
  *) echo "usage: scripts/gateways.sh install|up|down|status|pause|resume|kill" >&2; exit 2 ;;
esac
