#!/usr/bin/env bash
# Starts a 3-node paddock ensemble from ZooKeeper-style zoo.cfg files
# (server.N=127.0.0.1:peer:election;client lines, myid in each dataDir, free
# ports, throwaway data), and runs compat/run.sh through a FOLLOWER, where
# every write is forwarded to the leader and every read is served locally;
# then the quicker suites (COMPAT_LEADER_SUITES, default "zkcli java
# cclient") through the leader. Stops every server by PID on exit.
# Same extras as compat/against-paddock.sh: a 1 s container/TTL sweep and
# compat/jaas-server.conf for the SASL checks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="${PADDOCK_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/paddock/target}/release/paddock}"
[[ -x "$bin" ]] || { echo "no paddock binary at $bin (run: cargo build --release)" >&2; exit 2; }

work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

# Nine distinct free ports: a client, peer and election port per server.
mapfile -t ports < <(python3 -c '
import socket
socks = []
for _ in range(9):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
')
servers=""
for id in 1 2 3; do
    i=$(( (id - 1) * 3 ))
    servers+="server.$id=127.0.0.1:${ports[$((i + 1))]}:${ports[$((i + 2))]};${ports[$i]}"$'\n'
done
for id in 1 2 3; do
    mkdir -p "$work/n$id"
    echo "$id" >"$work/n$id/myid"
    {
        echo "tickTime=2000"
        echo "initLimit=10"
        echo "syncLimit=5"
        echo "dataDir=$work/n$id"
        echo "clientPort=${ports[$(( (id - 1) * 3 ))]}"
        echo "clientPortAddress=127.0.0.1"
        echo "znode.container.checkIntervalMs=${PADDOCK_CONTAINER_CHECK_MS:-1000}"
        echo "jaasLoginConfig=$here/jaas-server.conf"
        printf %s "$servers"
    } >"$work/zoo$id.cfg"
    "$bin" --config "$work/zoo$id.cfg" >"$work/n$id.stdout" 2>"$work/n$id.stderr" &
    pids+=($!)
done

addr() { echo "127.0.0.1:${ports[$(( ($1 - 1) * 3 ))]}"; }
mode() { compat_4lw "$(addr "$1")" srvr | sed -n 's/^Mode: //p'; }
leader="" follower=""
for _ in $(seq 1 600); do
    leader="" follower=""
    for id in 1 2 3; do
        case "$(mode "$id")" in
        leader) leader=$id ;;
        follower) follower=${follower:-$id} ;;
        esac
    done
    [[ -n "$leader" && -n "$follower" ]] && break
    for i in 0 1 2; do
        kill -0 "${pids[$i]}" 2>/dev/null || { echo "server $((i + 1)) exited:" >&2; tail -5 "$work/n$((i + 1)).stderr" >&2; exit 1; }
    done
    sleep 0.1
done
[[ -n "$leader" && -n "$follower" ]] || { echo "the ensemble elected no leader within 60 s" >&2; exit 1; }
echo "paddock ensemble: leader $leader on $(addr "$leader"), follower $follower on $(addr "$follower") (pids ${pids[*]})"

rc=0
echo "== through follower $follower"
"$here/run.sh" "$(addr "$follower")" || rc=1
# The leader may have changed under the load; ask again.
for id in 1 2 3; do [[ "$(mode "$id")" == leader ]] && leader=$id; done
echo
echo "== through leader $leader"
COMPAT_SUITES="${COMPAT_LEADER_SUITES:-zkcli java cclient}" "$here/run.sh" "$(addr "$leader")" || rc=1
exit $rc
