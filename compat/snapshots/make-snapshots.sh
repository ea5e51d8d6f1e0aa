#!/usr/bin/env bash
# Writes the compressed ZooKeeper snapshots that src/import/files.rs's tests
# read: a real ZooKeeper 3.8 (compat/zookeeper.sh) with
# zookeeper.snapshot.compression.method=gz, then snappy, holding /a ("hello")
# and /a/b ("x"); restarted once so that it snapshots the tree
# (snapshot.4.gz, snapshot.4.snappy). The checked-in files came from it.
set -euo pipefail
cd "$(dirname "$0")"
here="$(pwd)"
. ../lib.sh
port="$(compat_free_ports 1)"
for method in gz snappy; do
    work="$(mktemp -d)"
    ZK_JVMFLAGS="-Dzookeeper.snapshot.compression.method=$method" ../zookeeper.sh start "$work" "$port"
    printf 'create /a hello\ncreate /a/b x\nquit\n' | "$ZK_CLI" -server "127.0.0.1:$port" >/dev/null 2>&1
    ../zookeeper.sh stop "$work"
    ZK_JVMFLAGS="-Dzookeeper.snapshot.compression.method=$method" ../zookeeper.sh start "$work" "$port"
    ../zookeeper.sh stop "$work"
    cp "$work/data/version-2/snapshot.4.$method" "$here/"
    rm -rf "$work"
done
ls -l "$here"/snapshot.*
