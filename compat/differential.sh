#!/usr/bin/env bash
# Differential run: the same random requests, one at a time, to a fresh real
# ZooKeeper 3.8 (compat/zookeeper.sh) and to paddock, with `paddock differ`
# comparing every reply and every watch event (zxids, session ids and times
# named alike; see src/differ/). Three sessions per server (one without
# credentials, two logged in with digest), paths under a fresh root per run
# so that creates, deletes, versions, ACLs, sequential names, multi and
# watches collide. First against a single paddock, then against a 3-node
# paddock ensemble with one session on each member (writes through the
# followers forwarded to the leader; a sync before each step's closing read,
# so every member has applied the step), each with a fresh ZooKeeper.
#
#   compat/differential.sh
#
# DIFFER_SEED (default 1), DIFFER_RUNS (default 6) and DIFFER_STEPS (default
# 1500) choose the scripts; a difference prints the seed that repeats it.
# Container and TTL sweeps are set to a day on both servers, so no node
# vanishes mid-run on one and not the other. Prints PASS/FAIL lines; exits 1
# if any FAIL. Every process it starts is stopped by PID on exit.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="$(compat_paddock_bin)" || exit 2
compat_ensure_debs >&2 || { echo "FAIL differential.setup: Debian packages"; exit 1; }

seed="${DIFFER_SEED:-1}" runs="${DIFFER_RUNS:-6}" steps="${DIFFER_STEPS:-1500}"
sweep_ms=86400000
work="$(mktemp -d)"
pids=()
cleanup() {
    "$here/zookeeper.sh" stop "$work/zk" >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
failed=0

mapfile -t ports < <(compat_free_ports 11)
zk="127.0.0.1:${ports[0]}"

# fresh_zookeeper: a ZooKeeper with no history, so that `/` looks the same
# on both servers.
fresh_zookeeper() {
    "$here/zookeeper.sh" stop "$work/zk" >/dev/null 2>&1 || true
    rm -rf "$work/zk"
    ZK_CONTAINER_CHECK_MS=$sweep_ms "$here/zookeeper.sh" start "$work/zk" "${ports[0]}" >&2
}

# differ NAME CANDIDATE SEED: one comparison, one PASS/FAIL line.
differ() {
    local out="$work/$1.out"
    if "$bin" differ --reference "$zk" --candidate "$2" --seed "$3" --runs "$runs" --steps "$steps" >"$out" 2>&1; then
        echo "PASS differential.$1 ($runs runs of $steps steps from seed $3)"
    else
        echo "FAIL differential.$1: ZooKeeper and paddock answered differently"
        cat "$out"
        failed=1
    fi
}

# wait_for ADDR: until ADDR answers ruok (60 s at most).
wait_for() {
    for _ in $(seq 1 600); do
        compat_4lw "$1" ruok | grep -q imok && return 0
        sleep 0.1
    done
    return 1
}

# A single paddock.
fresh_zookeeper || { echo "FAIL differential.setup: ZooKeeper did not start"; exit 1; }
printf 'znode.container.checkIntervalMs=%s\n' "$sweep_ms" >"$work/single.cfg"
"$bin" --bind 127.0.0.1 --config "$work/single.cfg" --port "${ports[1]}" --data-dir "$work/single" \
    >"$work/single.stdout" 2>"$work/single.stderr" &
pids+=($!)
if wait_for "127.0.0.1:${ports[1]}"; then
    differ single "127.0.0.1:${ports[1]}" "$seed"
else
    echo "FAIL differential.single: paddock did not start"
    tail -5 "$work/single.stderr"
    failed=1
fi

# A 3-node ensemble, through a follower.
fresh_zookeeper || { echo "FAIL differential.setup: ZooKeeper did not start again"; exit 1; }
servers=""
for id in 1 2 3; do
    i=$((2 + (id - 1) * 3))
    servers+="server.$id=127.0.0.1:${ports[$((i + 1))]}:${ports[$((i + 2))]};${ports[$i]}"$'\n'
done
for id in 1 2 3; do
    compat_member "$work" "$id" "${ports[$((2 + (id - 1) * 3))]}" "$servers" "znode.container.checkIntervalMs=$sweep_ms"
    "$bin" --config "$work/zoo$id.cfg" >"$work/n$id.stdout" 2>"$work/n$id.stderr" &
    pids+=($!)
done
members="" serving=0
for id in 1 2 3; do members+="${members:+,}127.0.0.1:${ports[$((2 + (id - 1) * 3))]}"; done
for _ in $(seq 1 600); do
    serving=0
    for a in ${members//,/ }; do
        compat_4lw "$a" srvr | grep -qE '^Mode: (leader|follower)' && serving=$((serving + 1))
    done
    [ "$serving" = 3 ] && break
    sleep 0.1
done
if [ "$serving" = 3 ]; then
    # One session on each member: two through followers, one on the leader.
    differ ensemble "$members" "$((seed + 1000))"
else
    echo "FAIL differential.ensemble: the ensemble did not serve within 60 s"
    failed=1
fi
exit "$failed"
