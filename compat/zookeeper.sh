#!/usr/bin/env bash
# Start or stop a real standalone Apache ZooKeeper 3.8 (Debian package) as the
# reference server for paddock's compat runs and benchmarks.
#
#   compat/zookeeper.sh start DIR PORT   # conf, data and log go in DIR; PID in DIR/zk.pid
#   compat/zookeeper.sh stop  DIR [PORT]
#   compat/zookeeper.sh status DIR [PORT]
#
# Set-up: NettyServerCnxnFactory, fsync on (forceSync=yes), all four-letter
# words allowed, extended types (TTL nodes) enabled, AdminServer off, and a
# 1 s container/TTL sweep (the JVM property znode.container.checkIntervalMs;
# ZooKeeper's default of 60 s would make the compat TTL/container checks wait
# a minute). ZK_CONTAINER_CHECK_MS overrides it (60000 restores the default).
# SASL: DIGEST-MD5 users from compat/jaas-server.conf and the sasl ACL scheme
# (SASLAuthenticationProvider), as kazoo's own test harness sets them up.
# Extra JVM flags: ZK_JVMFLAGS (e.g. "-Xmx1g"). Extra zoo.cfg lines: ZK_EXTRA_CFG
# (e.g. server.N lines, with DIR/data/myid written beforehand, for an
# ensemble member; then set ZK_WAIT=0, since a member serves only once a
# quorum of members has started).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 start|stop|status DIR [PORT] | run ZOO_CFG" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd="$1"
dir="$2"
port="${3:-}"

# zk_exec_java CFG: the server JVM for the zoo.cfg CFG, with its log4j file
# and log in $dir, in place of this shell (its PID is the server's).
zk_exec_java() {
    cat >"$dir/log4j.properties" <<EOF
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$dir/zookeeper.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n
EOF
    # zookeeper.jar's manifest Class-Path brings most dependencies, but Debian's
    # omits netty-codec/netty-resolver, which NettyServerCnxnFactory needs.
    local cp="$ZK_JAVA_DIR/zookeeper.jar" j
    for j in netty-codec netty-resolver netty-transport-native-unix-common slf4j-log4j12 log4j-1.2; do
        cp="$cp:$ZK_JAVA_DIR/$j.jar"
    done
    # shellcheck disable=SC2086
    exec java \
        -Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory \
        -Dzookeeper.extendedTypesEnabled=true \
        -Dzookeeper.4lw.commands.whitelist='*' \
        -Dzookeeper.admin.enableServer=false \
        -Dznode.container.checkIntervalMs="${ZK_CONTAINER_CHECK_MS:-1000}" \
        -Djava.security.auth.login.config="$COMPAT_DIR/jaas-server.conf" \
        -Dlog4j.configuration="file:$dir/log4j.properties" \
        -Dzookeeper.log.dir="$dir" \
        ${ZK_JVMFLAGS:-} \
        -cp "$cp" org.apache.zookeeper.server.quorum.QuorumPeerMain "$1"
}

zk_alive() { [ -f "$dir/zk.pid" ] && kill -0 "$(cat "$dir/zk.pid")" 2>/dev/null; }

case "$cmd" in
start)
    [ -n "$port" ] || usage
    compat_ensure_debs
    mkdir -p "$dir/data"
    dir="$(cd "$dir" && pwd)"
    if zk_alive; then
        echo "zookeeper already running, pid $(cat "$dir/zk.pid")" >&2
        exit 1
    fi
    if compat_4lw "127.0.0.1:$port" ruok | grep -q imok; then
        echo "port $port is already serving ZooKeeper" >&2
        exit 1
    fi
    cat >"$dir/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/data
clientPort=$port
clientPortAddress=127.0.0.1
maxClientCnxns=0
forceSync=yes
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
4lw.commands.whitelist=*
extendedTypesEnabled=true
admin.enableServer=false
autopurge.purgeInterval=0
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
${ZK_EXTRA_CFG:-}
EOF
    setsid nohup "$0" run "$dir/zoo.cfg" >"$dir/zk.out" 2>&1 </dev/null &
    echo $! >"$dir/zk.pid"
    if [ "${ZK_WAIT:-1}" = 0 ]; then
        echo "zookeeper starting on 127.0.0.1:$port, pid $(cat "$dir/zk.pid")" >&2
        exit 0
    fi
    # Ready when srvr shows a Mode: line (ruok answers before requests are served).
    for _ in $(seq 1 150); do
        if ! zk_alive; then
            echo "zookeeper exited during start-up; see $dir/zk.out and $dir/zookeeper.log" >&2
            tail -20 "$dir/zk.out" >&2 || true
            exit 1
        fi
        if compat_4lw "127.0.0.1:$port" srvr | grep -q '^Mode:'; then
            echo "zookeeper started on 127.0.0.1:$port, pid $(cat "$dir/zk.pid")" >&2
            exit 0
        fi
        sleep 0.2
    done
    echo "zookeeper did not become ready within 30 s" >&2
    kill "$(cat "$dir/zk.pid")" 2>/dev/null || true
    exit 1
    ;;
run)
    # In the foreground, for a harness that starts servers itself from zoo.cfg
    # files it wrote (compat/gozk_suite.sh): the second argument is the
    # zoo.cfg, and the log goes beside it. This PID becomes the server's.
    [ -f "$dir" ] || usage
    cfg="$(cd "$(dirname "$dir")" && pwd)/$(basename "$dir")"
    dir="$(dirname "$cfg")"
    zk_exec_java "$cfg"
    ;;
stop)
    if ! zk_alive; then
        echo "zookeeper not running in $dir" >&2
        rm -f "$dir/zk.pid"
        exit 0
    fi
    pid="$(cat "$dir/zk.pid")"
    kill "$pid"
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$dir/zk.pid"
    echo "zookeeper stopped (pid $pid)" >&2
    ;;
status)
    if zk_alive; then
        echo "running, pid $(cat "$dir/zk.pid")"
        [ -n "$port" ] && compat_4lw "127.0.0.1:$port" srvr
        exit 0
    fi
    echo "not running"
    exit 1
    ;;
*) usage ;;
esac
