#!/usr/bin/env bash
# A single-node Apache Kafka broker (KRaft, combined broker+controller) for the tests.
#
#   tests/kafka/broker.sh start    assemble (first time), format, start; returns when it answers
#   tests/kafka/broker.sh stop     stop the broker this script started on $KAFKA_PORT
#   tests/kafka/broker.sh status   exit 0 when it is running and answers
#   tests/kafka/broker.sh clean    stop, then remove its state (topics, offsets)
#
# Environment: KAFKA_PORT (default 9092), KAFKA_CONTROLLER_PORT (default KAFKA_PORT+1),
# KAFKA_HEAP (default 512m), KAFKA_START_TIMEOUT seconds (default 90).
# The jars come once from Maven Central through tests/kafka/pom.xml (kafka_2.13 3.9.1 plus a
# reload4j binding for slf4j) into tests/kafka/lib/; each port's state lives in
# tests/kafka/run/<port>/ (log dir, server.properties, broker.log, broker.pid). Both are
# git-ignored. Topics are auto-created (3 partitions) when a producer first asks for them.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
LIB=$HERE/lib
PORT=${KAFKA_PORT:-9092}
CPORT=${KAFKA_CONTROLLER_PORT:-$((PORT + 1))}
HEAP=${KAFKA_HEAP:-512m}
TIMEOUT=${KAFKA_START_TIMEOUT:-90}
RUN=$HERE/run/$PORT
PIDFILE=$RUN/broker.pid
LOG=$RUN/broker.log
BOOT=127.0.0.1:$PORT

die() { echo "broker.sh: $*" >&2; exit 1; }

need() { command -v "$1" >/dev/null 2>&1 || die "$1 not found (install: $2)"; }

# The jars, fetched once (again when pom.xml changes). A lock keeps two concurrent first starts from racing.
assemble() {
    local want
    want=$(sha256sum "$HERE/pom.xml" | cut -d' ' -f1)
    [ "$(cat "$LIB/.complete" 2>/dev/null)" = "$want" ] && return 0
    need mvn maven
    need java openjdk-17-jre-headless
    mkdir -p "$HERE/run"
    exec 9>"$HERE/run/.assemble.lock"
    flock 9
    if [ "$(cat "$LIB/.complete" 2>/dev/null)" != "$want" ]; then
        echo "broker.sh: fetching Kafka jars into $LIB (first time only)" >&2
        rm -rf "$LIB.tmp"
        (cd "$HERE" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
            -DoutputDirectory="$LIB.tmp") >&2 || die "mvn could not fetch the Kafka jars"
        rm -rf "$LIB"
        mv "$LIB.tmp" "$LIB"
        echo "$want" >"$LIB/.complete"
    fi
    flock -u 9
}

# Is pid the broker of this port's run directory?
ours() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "kafka.Kafka $RUN/server.properties"
}

# True when this port's broker runs. A broker of this run directory whose PID file was lost
# (two scripts racing) is found by its command line and its PID file rewritten.
running() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    ours "$pid" && return 0
    for pid in $(pgrep -f "kafka.Kafka $RUN/server.properties" 2>/dev/null); do
        if ours "$pid"; then
            echo "$pid" >"$PIDFILE"
            return 0
        fi
    done
    return 1
}

answers() { kcat -b "$BOOT" -L -m 3 >/dev/null 2>&1; }

write_config() {
    mkdir -p "$RUN/data"
    cat >"$RUN/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CPORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$RUN/data
num.partitions=3
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=2
log.retention.hours=24
log.segment.bytes=16777216
EOF
    cat >"$RUN/log4j.properties" <<EOF
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.clients=WARN
EOF
}

java_cmd() {
    java -Xmx"$HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true -Dlog4j.configuration="file:$RUN/log4j.properties" \
        -cp "$LIB/*" "$@"
}

start() {
    need kcat kcat
    if running; then
        local i
        for ((i = 0; i < TIMEOUT; i++)); do
            answers && { echo "broker.sh: already running on $BOOT (pid $(cat "$PIDFILE"))"; return 0; }
            sleep 1
        done
        die "broker pid $(cat "$PIDFILE") runs but $BOOT does not answer"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
        die "something else already answers on $BOOT; choose another KAFKA_PORT"
    fi
    assemble
    write_config
    if [ ! -f "$RUN/data/meta.properties" ]; then
        local id
        id=$(java_cmd kafka.tools.StorageTool random-uuid 2>>"$LOG" | tail -n 1)
        [ -n "$id" ] || die "StorageTool random-uuid failed: $(tail -n 20 "$LOG")"
        java_cmd kafka.tools.StorageTool format --ignore-formatted -t "$id" \
            -c "$RUN/server.properties" >>"$LOG" 2>&1 ||
            die "StorageTool format failed: $(tail -n 20 "$LOG")"
    fi
    local t0=$SECONDS
    # setsid: the broker outlives this shell and its process group; its PID is $!. It must
    # not inherit a lock (ours on fd 8, or a caller's): close fds 3-9.
    setsid java -Xmx"$HEAP" -Xms128m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true -Dlog4j.configuration="file:$RUN/log4j.properties" \
        -cp "$LIB/*" kafka.Kafka "$RUN/server.properties" >>"$LOG" 2>&1 </dev/null \
        3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&- &
    echo $! >"$PIDFILE"
    while ((SECONDS - t0 < TIMEOUT)); do
        if ! running; then
            rm -f "$PIDFILE"
            echo "broker.sh: broker exited during start-up; last lines of $LOG:" >&2
            tail -n 40 "$LOG" >&2
            exit 1
        fi
        if answers; then
            echo "broker.sh: Kafka up on $BOOT (pid $(cat "$PIDFILE"), $((SECONDS - t0)) s)"
            return 0
        fi
        sleep 0.5
    done
    echo "broker.sh: no answer on $BOOT after ${TIMEOUT}s; last lines of $LOG:" >&2
    tail -n 40 "$LOG" >&2
    stop >/dev/null 2>&1 || true
    exit 1
}

stop() {
    if ! running; then
        rm -f "$PIDFILE"
        echo "broker.sh: not running on port $PORT"
        return 0
    fi
    local pid i
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid"
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "broker.sh: pid $pid ignored SIGTERM for 30 s; killing" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PIDFILE"
    echo "broker.sh: stopped (pid $pid)"
}

# One start/stop at a time per port.
mkdir -p "$RUN"
exec 8>"$RUN.lock"
flock 8

case "${1:-}" in
start) start ;;
stop) stop ;;
status) running && answers ;;
clean) stop; rm -rf "$RUN" ;;
*) echo "usage: $0 start|stop|status|clean" >&2; exit 2 ;;
esac
