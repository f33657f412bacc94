# Helpers shared by the server scripts (kafka.sh, postgres.sh). Source it
# after setting `name` (the script's name, which prefixes every message).

# Says something, as the script.
say() { echo "$name: $*"; }

# fail MESSAGE [LOG]: says what went wrong (and which log to read), exits 1.
fail() {
  echo "$name: $1" >&2
  [ -n "${2:-}" ] && echo "$name: read $2" >&2
  exit 1
}

# wait_until SECONDS WHAT LOG COMMAND...: runs COMMAND every half second
# until it succeeds; fails with "WHAT within SECONDS s" when time runs out.
wait_until() {
  local limit=$1 what=$2 log=$3
  shift 3
  local deadline=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || fail "$what within $limit s" "$log"
    sleep 0.5
  done
}

# is_paused PID: whether the process is stopped (SIGSTOP).
is_paused() { [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" = "T" ]; }

# port_taken PORT: whether something listens on 127.0.0.1:PORT.
port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# fetch_maven_jars POM DEST LOG WHAT: copies the runtime dependencies of POM
# into DEST with Maven (once: DEST/.complete marks a finished fetch).
fetch_maven_jars() {
  local pom=$1 dest=$2 log=$3 what=$4
  [ -f "$dest/.complete" ] && return 0
  command -v mvn >/dev/null || fail "mvn is not installed; install Maven (apt-get install maven)"
  command -v java >/dev/null || fail "java is not installed; install a JDK 17+ (apt-get install openjdk-17-jre-headless)"
  say "fetching $what from Maven Central (once) into $dest"
  mkdir -p "$dest" "$(dirname "$log")"
  mvn -q -B -f "$pom" dependency:copy-dependencies -DoutputDirectory="$dest" -DincludeScope=runtime >"$log" 2>&1 \
    || fail "fetching $what with mvn failed" "$log"
  touch "$dest/.complete"
}
