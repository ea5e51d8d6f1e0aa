#!/usr/bin/env bash
# Starts a 3-node paddock ensemble and an observer (server.4=...:observer)
# from ZooKeeper-style zoo.cfg files (server.N=127.0.0.1:peer:election;client
# lines, myid in each dataDir, free ports, throwaway data), and runs
# compat/run.sh through a FOLLOWER, where every write is forwarded to the
# leader and every read is served locally; then the quicker suites
# (COMPAT_LEADER_SUITES, default "zkcli java cclient") through the leader and
# through the observer; then kazoo's failover tests, which stop and
# restart a member (compat/kazoo_failover.sh; COMPAT_FAILOVER=0 skips them,
# COMPAT_FAILOVER_MEMBER=leader stops the leader instead of that follower).
# Members are started and stopped by compat/ensemble_ctl.sh, which keeps each
# one's PID in a file; the exit trap stops every one of them by that PID.
# Same extras as compat/against-paddock.sh: a 1 s container/TTL sweep and
# compat/jaas-server.conf for the SASL checks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="$(compat_paddock_bin)" || exit 2
bin="$(realpath "$bin")"   # restarts run from kazoo's scratch directory

work="$(mktemp -d)"
ctl() { "$here/ensemble_ctl.sh" "$work" "$@"; }
cleanup() {
    for id in 1 2 3 4; do ctl stop "$id" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
echo "$bin" >"$work/bin"

# Twelve distinct free ports: a client, peer and election port per server.
mapfile -t ports < <(compat_free_ports 12)
servers=""
for id in 1 2 3 4; do
    i=$(( (id - 1) * 3 ))
    role=""
    [ "$id" = 4 ] && role=":observer"
    servers+="server.$id=127.0.0.1:${ports[$((i + 1))]}:${ports[$((i + 2))]}$role;${ports[$i]}"$'\n'
done
for id in 1 2 3 4; do
    # maxClientCnxns=0 as compat/zookeeper.sh: kazoo's suite exceeds 60 at
    # times; read-only mode for kazoo's TestReadOnlyMode, and reconfig with
    # kazoo's harness's super user (super:test) for its TestReconfig
    # (kazoo_failover.sh).
    compat_member "$work" "$id" "${ports[$(( (id - 1) * 3 ))]}" "$servers" \
        "maxClientCnxns=0" \
        "readonlymode.enabled=true" \
        "reconfigEnabled=true" \
        "superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=" \
        "znode.container.checkIntervalMs=${PADDOCK_CONTAINER_CHECK_MS:-1000}" \
        "jaasLoginConfig=$here/jaas-server.conf"
    echo "127.0.0.1:${ports[$(( (id - 1) * 3 ))]}" >"$work/n$id.addr"
    ctl spawn "$id"
done

addr() { cat "$work/n$1.addr"; }
mode() { compat_4lw "$(addr "$1")" srvr | sed -n 's/^Mode: //p'; }
leader="" follower="" observer=""
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
    leader="" follower="" observer=""
    for id in 1 2 3 4; do
        case "$(mode "$id")" in
        leader) leader=$id ;;
        follower) follower=${follower:-$id} ;;
        observer) observer=$id ;;
        esac
    done
    [[ -n "$leader" && -n "$follower" && "$observer" == 4 ]] && break
    for id in 1 2 3 4; do
        kill -0 "$(cat "$work/n$id.pid")" 2>/dev/null || { echo "server $id exited:" >&2; tail -5 "$work/n$id.stderr" >&2; exit 1; }
    done
    sleep 0.1
done
[[ -n "$leader" && -n "$follower" ]] || { echo "the ensemble elected no leader within 60 s" >&2; exit 1; }
[[ "$observer" == 4 ]] || { echo "server 4 is not serving as an observer within 60 s" >&2; exit 1; }
echo "paddock ensemble: leader $leader on $(addr "$leader"), follower $follower on $(addr "$follower"), observer 4 on $(addr 4) (pids $(cat "$work"/n[1234].pid | tr '\n' ' '))"

rc=0
echo "== through follower $follower"
"$here/run.sh" "$(addr "$follower")" || rc=1
# The leader may have changed under the load; ask again.
for id in 1 2 3; do [[ "$(mode "$id")" == leader ]] && leader=$id; done
echo
echo "== through leader $leader"
COMPAT_SUITES="${COMPAT_LEADER_SUITES:-zkcli java cclient}" "$here/run.sh" "$(addr "$leader")" || rc=1
echo
echo "== through observer 4"
COMPAT_SUITES="${COMPAT_LEADER_SUITES:-zkcli java cclient}" "$here/run.sh" "$(addr 4)" || rc=1

if [ "${COMPAT_FAILOVER:-1}" != 0 ]; then
    # The member the tests stop is the first address: by default the follower
    # the whole suite ran through (COMPAT_FAILOVER_MEMBER=leader: the leader).
    # Clients that know all three fail over to the others.
    victim=$follower
    [ "${COMPAT_FAILOVER_MEMBER:-follower}" = leader ] && victim=$leader
    others=""
    for id in 1 2 3; do [ "$id" != "$victim" ] && others+=",$(addr "$id")"; done
    echo
    echo "== kazoo failover: stopping and restarting ${COMPAT_FAILOVER_MEMBER:-follower} $victim"
    t0=$SECONDS
    out="$work/failover.txt"
    KAZOO_EXTERNAL_CONTROL="$(printf "%q %q" "$here/ensemble_ctl.sh" "$work")" \
        timeout -k 10 300 "$here/kazoo_failover.sh" "$(addr "$victim")$others" | tee "$out" || true
    p=$(grep -c '^PASS ' "$out" || true)
    f=$(grep -c '^FAIL ' "$out" || true)
    [ $((p + f)) -gt 0 ] || { echo "FAIL kazoo-failover.no_results: the failover tests printed no results"; f=1; }
    echo "-- kazoo-failover: $p passed, $f failed ($((SECONDS - t0)) s)"
    [ "$f" -eq 0 ] || rc=1
fi
exit $rc
