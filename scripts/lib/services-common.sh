# Shell functions shared by scripts/services (one instance of each service on loopback) and
# scripts/zones (three zones in network namespaces): logging, PID bookkeeping, the PostgreSQL
# binaries, apt installs and the cached Kafka jars. Sourced, not run.
#
# The sourcing script sets, before sourcing: log_tag (the prefix of its log lines) and HES_CACHE.

HES_CACHE="${HES_CACHE:-$HOME/.cache/hes}"
kafka_version="${HES_KAFKA_VERSION:-4.1.2}"
kafka_home="$HES_CACHE/kafka"
kafka_lib="$kafka_home/$kafka_version/lib"
# The small, quick-starting JVM for Kafka's command-line tools.
tool_jvm=(-Xms32m -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto
  -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.logFile=System.err)

now_ms() { date +%s%3N; }
t_start=$(now_ms)
log() {
  local ms=$(($(now_ms) - t_start))
  printf '%s [%d.%01ds]: %s\n' "${log_tag:-hes}" $((ms / 1000)) $((ms % 1000 / 100)) "$*" >&2
}
die() { log "error: $*"; exit 1; }

# True when something accepts TCP connections on $2 (default 127.0.0.1), port $1.
port_open() { timeout 2 bash -c "exec 9<>/dev/tcp/${2:-127.0.0.1}/$1" 2>/dev/null; }
# True when process $1 exists and is not a zombie (an orphaned daemon that has exited stays a
# zombie until init reaps it, which takes over a second in some sandboxes).
alive() {
  local state
  kill -0 "$1" 2>/dev/null || return 1
  state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}
# True when process $1 is alive and its command line contains $2 (guards against reused PIDs).
pid_is() {
  local cmd
  [ -n "$1" ] && alive "$1" && cmd=$(tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null) &&
    [[ $cmd == *"$2"* ]]
}
read_pid() { if [ -f "$1" ]; then head -n1 "$1" | tr -dc '0-9'; fi; }
# Sends SIGTERM to $1, waits up to $2 s, then SIGKILL.
stop_pid() {
  local pid=$1 wait_s=$2 i
  kill "$pid" 2>/dev/null || return 0
  for ((i = 0; i < wait_s * 10; i++)); do alive "$pid" || return 0; sleep 0.1; done
  log "pid $pid did not stop within ${wait_s}s, killing it"
  kill -9 "$pid" 2>/dev/null || true
}

# The directory of the newest PostgreSQL's binaries (Debian: /usr/lib/postgresql/N/bin).
pg_bin() {
  { find /usr/lib/postgresql -maxdepth 3 -path '*/bin/initdb' 2>/dev/null || true; } | sort -V | tail -n1 | xargs -r dirname
}
# Commands on a cluster run as the postgres user when we are root (PostgreSQL refuses root).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# Where a PostgreSQL data directory wanted at $1 can live: $1 itself when the postgres user can
# reach it, else a directory under /tmp named after $1 (root's home is private, so a cache under
# /root is out of the postgres user's reach). $2 names the fallback ("hes-pg" by default).
pg_reachable_dir() {
  local want=$1 parent
  parent=$(dirname "$want")
  mkdir -p "$parent"
  if [ "$(id -u)" != 0 ] || runuser -u postgres -- test -x "$parent" 2>/dev/null; then
    echo "$want"
  else
    echo "${TMPDIR:-/tmp}/${2:-hes-pg}-$(printf %s "$want" | cksum | cut -d' ' -f1)"
  fi
}

# apt-get install of the packages given, as root or through sudo; nothing when none are given.
apt_install() {
  [ $# = 0 ] && return
  log "installing $* (apt)"
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" apt-get update -qq >&2
  # Without recommends: Debian's prometheus would bring a node exporter and start it.
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >&2
}

# The Kafka jars (broker, storage tool, command-line tools) from Maven Central, once, into
# $kafka_lib.
kafka_install() {
  [ -f "$kafka_lib/.complete" ] && return
  command -v mvn >/dev/null || die "Maven (mvn) is needed to fetch Kafka from Maven Central"
  local work="$kafka_home/$kafka_version" t0
  t0=$(now_ms)
  log "kafka: fetching Apache Kafka $kafka_version jars from Maven Central into $kafka_lib"
  mkdir -p "$work"
  # kafka_2.13 is the broker (and the storage tool); kafka-tools holds the command-line tools
  # (topics, console producer and consumer); slf4j-simple makes the broker log to its log file.
  cat >"$work/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.hes</groupId>
  <artifactId>kafka-runtime</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>$kafka_version</version></dependency>
    <dependency><groupId>org.apache.kafka</groupId><artifactId>kafka-tools</artifactId><version>$kafka_version</version></dependency>
    <dependency><groupId>org.slf4j</groupId><artifactId>slf4j-simple</artifactId><version>1.7.36</version></dependency>
  </dependencies>
</project>
EOF
  rm -rf "$kafka_lib.tmp"
  (cd "$work" && mvn -B -Dstyle.color=never -Dmaven.repo.local="$kafka_home/m2" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$kafka_lib.tmp") >"$work/mvn.log" 2>&1 ||
    { tail -n 30 "$work/mvn.log" >&2; die "could not fetch Kafka $kafka_version from Maven Central (log: $work/mvn.log)"; }
  [ -f "$kafka_lib.tmp/kafka_2.13-$kafka_version.jar" ] || die "kafka_2.13-$kafka_version.jar missing after download"
  rm -rf "$kafka_lib"
  mv "$kafka_lib.tmp" "$kafka_lib"
  touch "$kafka_lib/.complete"
  log "kafka: $(find "$kafka_lib" -name "*.jar" | wc -l) jars, $(du -sh "$kafka_lib" | cut -f1), in $(($(now_ms) - t0)) ms"
}

kafka_tool() { java "${tool_jvm[@]}" -cp "$kafka_lib/*" "$@"; }
# A new KRaft cluster id: 16 random bytes in unpadded URL-safe base64, not starting with '-'
# (the storage tool would read it as an option, and format nothing).
kafka_cluster_id() {
  local id=-
  while [[ $id == -* ]]; do id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
  echo "$id"
}
