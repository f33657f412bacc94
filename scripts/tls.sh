#!/usr/bin/env bash
# Throw-away TLS material for the local servers, made with openssl: a CA, a
# server certificate for 127.0.0.1/localhost (Kafka's TLS listeners and
# PostgreSQL), a client certificate for mutual TLS, and the certificates the
# tests use to prove the wrong ones are refused (another CA, an expired
# server certificate, one for the wrong host). Never for production.
#
#   scripts/tls.sh up       make them (once; again when missing or expiring)
#   scripts/tls.sh status   say where they are and until when they are valid
#   scripts/tls.sh down     delete them (the next `up` makes new ones)
#
# Everything lives under .local/tls (git-ignored).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
name="tls.sh"
# shellcheck source=lib/server.sh
. "$here/lib/server.sh"

dir="${TLS_DIR:-$root/.local/tls}"
# The PKCS#12 keystore's password: a throw-away key on loopback, and Kafka
# needs one for the format.
store_password="changeit"
days=825

# cert NAME SUBJECT SAN [CA] [EXTRA openssl x509 args...]: a key and a
# certificate signed by CA (default: the CA), as NAME.key / NAME.pem.
cert() {
  local cert_name=$1 subject=$2 san=$3 ca=${4:-ca}
  shift 4 || shift $#
  openssl req -new -newkey rsa:2048 -nodes -keyout "$dir/$cert_name.key" -subj "$subject" \
    -out "$dir/$cert_name.csr" 2>>"$dir/openssl.log"
  printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$san" >"$dir/$cert_name.ext"
  openssl x509 -req -in "$dir/$cert_name.csr" -CA "$dir/$ca.pem" -CAkey "$dir/$ca.key" -CAcreateserial \
    -extfile "$dir/$cert_name.ext" -out "$dir/$cert_name.pem" "${@:---days=$days}" 2>>"$dir/openssl.log"
  rm -f "$dir/$cert_name.csr" "$dir/$cert_name.ext"
  chmod 600 "$dir/$cert_name.key"
}

ca() {
  openssl req -x509 -new -newkey rsa:2048 -nodes -keyout "$dir/$1.key" -subj "/CN=$2" \
    -days "$days" -out "$dir/$1.pem" 2>>"$dir/openssl.log"
  chmod 600 "$dir/$1.key"
}

valid() { [ -f "$dir/server.pem" ] && openssl x509 -checkend 86400 -noout -in "$dir/server.pem" >/dev/null 2>&1; }

up() {
  command -v openssl >/dev/null || fail "openssl is not installed (apt-get install openssl)"
  if valid && [ -f "$dir/.complete" ]; then say "certificates in $dir"; return 0; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  ca ca "revocation-projection local CA"
  # localhost for the scripts' servers; kafka-tls for docker-compose's `tls` profile.
  cert server "/CN=localhost" "DNS:localhost,IP:127.0.0.1,DNS:kafka-tls"
  cert client "/CN=projector" "DNS:projector"
  # Refused on purpose by the tests:
  ca other-ca "some other CA"
  cert wrong-host "/CN=elsewhere.example" "DNS:elsewhere.example"
  # Expired a day ago (OpenSSL 3.0 has no -not_after; -1 days ends it before now).
  cert expired "/CN=localhost" "DNS:localhost,IP:127.0.0.1" ca -days -1
  # Kafka reads its keys from PKCS#12 keystores.
  for k in server expired wrong-host; do
    openssl pkcs12 -export -in "$dir/$k.pem" -inkey "$dir/$k.key" -certfile "$dir/ca.pem" -name "$k" \
      -out "$dir/$k.p12" -passout "pass:$store_password" 2>>"$dir/openssl.log"
  done
  echo "$store_password" >"$dir/keystore-password"
  touch "$dir/.complete"
  say "made a throw-away CA and certificates in $dir"
}

case "${1:-}" in
  up) up ;;
  status) if valid; then say "certificates in $dir, server certificate valid until $(openssl x509 -enddate -noout -in "$dir/server.pem" | cut -d= -f2)"; else say "none (run scripts/tls.sh up)"; exit 3; fi ;;
  down) rm -rf "$dir"; say "deleted $dir" ;;
  *) echo "usage: scripts/tls.sh up|status|down" >&2; exit 2 ;;
esac
