#!/usr/bin/env bash
# Side-by-side benchmark: paddock against the real ZooKeeper 3.8 (Debian
# package, NettyServerCnxnFactory, fsync on), single node and 3-node
# ensembles, same client, same machine, same run; writes docs/benchmarks.md
# and its plot, docs/benchmarks.svg (drawn by `paddock bench-plot`).
#
#   bench/compare.sh            # full run, about 18 minutes (26 with --rounds 3)
#   bench/compare.sh --quick    # smoke run, about 2 minutes
#
# Options:
#   --quick              one round of short windows (2 s), 10,000 znodes for memory
#   --duration S         measured seconds per run (default 10)
#   --warmup S           warm-up seconds per run (default 2)
#   --sessions N         sessions (default 16)
#   --depth D            outstanding requests per session (default 32)
#   --value-size B       bytes per value (default 100)
#   --keys K             key set of set/get/mixed (default 1000)
#   --znodes Z           znodes for the memory measurement (default 100000)
#   --large-znodes Z     the memory measurement again at this scale, on fresh
#                        servers (default 1000000; 0 skips it, as --quick does)
#   --rounds R           repeat every run R times, alternating; the best is reported (default 2)
#   --workloads "a b"    subset of: create set get mixed create-seq-ephemeral multi watch lock
#   --topologies "1 3"   single node (1) and/or 3-node ensembles (3) (default both)
#   --out FILE           where to write the report (default docs/benchmarks.md;
#                        the plot goes beside it, FILE with .svg)
#   --keep DIR           keep the raw JSON results and server logs in DIR
#   --no-build           do not run cargo build (use the existing binary)
#
# Environment: PADDOCK_BIN (default $CARGO_TARGET_DIR/release/paddock, built
# with cargo build --release), ZK_JVMFLAGS (extra JVM flags for ZooKeeper).
# Needs: python3 (renders the report), the Debian zookeeper package
# (installed by compat/zookeeper.sh if missing). Traffic stays on 127.0.0.1;
# every process started here is stopped by its PID, also on error.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/paddock/target}"
# ZooKeeper as shipped: the default 60 s container/TTL sweep (compat/ shortens it).
export ZK_CONTAINER_CHECK_MS="${ZK_CONTAINER_CHECK_MS:-60000}"

duration=10 warmup=2 sessions=16 depth=32 value_size=100 keys=1000 znodes=100000 large_znodes=1000000 rounds=2 settle_max=60 idle_percent=5
workloads="create set get mixed create-seq-ephemeral multi watch lock"
out="$repo/docs/benchmarks.md" keep="" build=1 quick=0 topologies="1 3"
cmdline="bench/compare.sh $*"
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) quick=1 duration=2 warmup=0.5 znodes=10000 large_znodes=0 rounds=1 settle_max=5 ;;
    --duration) duration="$2"; shift ;;
    --warmup) warmup="$2"; shift ;;
    --sessions) sessions="$2"; shift ;;
    --depth) depth="$2"; shift ;;
    --value-size) value_size="$2"; shift ;;
    --keys) keys="$2"; shift ;;
    --znodes) znodes="$2"; shift ;;
    --large-znodes) large_znodes="$2"; shift ;;
    --rounds) rounds="$2"; shift ;;
    --workloads) workloads="$2"; shift ;;
    --out) out="$2"; shift ;;
    --topologies) topologies="$2"; shift ;;
    --keep) keep="$2"; shift ;;
    --no-build) build=0 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

command -v python3 >/dev/null || { echo "compare.sh: python3 is needed to render the report" >&2; exit 2; }
if [ -z "${PADDOCK_BIN:-}" ]; then
    PADDOCK_BIN="$CARGO_TARGET_DIR/release/paddock"
    if [ "$build" = 1 ]; then
        (cd "$repo" && cargo build --release --bin paddock) >&2
    fi
fi
[ -x "$PADDOCK_BIN" ] || { echo "compare.sh: no paddock binary at $PADDOCK_BIN" >&2; exit 2; }

work="$(mktemp -d "${TMPDIR:-/tmp}/paddock-bench.XXXXXX")"
results="$work/results"
mkdir -p "$results"
paddock_pid="" zk_dir="" zk_port="" paddock_ens_pids="" zk_ens_dirs="" zk_version=""
zk_pid="" paddock3_pid="" zk3_pid=""

stop_paddock() {
    if [ -n "$paddock_pid" ]; then
        kill "$paddock_pid" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$paddock_pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$paddock_pid" 2>/dev/null || true
        wait "$paddock_pid" 2>/dev/null || true
        paddock_pid=""
    fi
}
stop_zk() {
    if [ -n "$zk_dir" ]; then
        "$repo/compat/zookeeper.sh" stop "$zk_dir" "$zk_port" 2>/dev/null || true
        zk_dir="" zk_pid=""
    fi
}
stop_ensembles() {
    for p in $paddock_ens_pids; do kill "$p" 2>/dev/null || true; done
    for p in $paddock_ens_pids; do
        for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    paddock_ens_pids="" paddock3_pid=""
    for d in $zk_ens_dirs; do "$repo/compat/zookeeper.sh" stop "$d" 2>/dev/null || true; done
    zk_ens_dirs="" zk3_pid=""
}
cleanup() {
    stop_paddock
    stop_zk
    stop_ensembles
    if [ -n "$keep" ]; then
        mkdir -p "$keep" && cp -r "$work"/. "$keep"/ 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A TCP port nothing listens on (the kernel's choice), never 2181.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_paddock NAME: a fresh single node with its own data directory.
start_paddock() {
    local dir="$work/$1"
    mkdir -p "$dir"
    "$PADDOCK_BIN" --port 0 --bind 127.0.0.1 --admin-port 0 --data-dir "$dir/data" >"$dir/stdout" 2>"$dir/stderr" &
    paddock_pid=$!
    paddock_addr=""
    for _ in $(seq 1 300); do
        paddock_addr="$(sed -n 's/^paddock listening on //p' "$dir/stdout" | head -1)"
        [ -n "$paddock_addr" ] && break
        kill -0 "$paddock_pid" 2>/dev/null || { tail -20 "$dir/stderr" >&2; echo "paddock exited during start-up" >&2; exit 1; }
        sleep 0.1
    done
    [ -n "$paddock_addr" ] || { echo "paddock did not start within 30 s" >&2; exit 1; }
    echo "paddock pid $paddock_pid on $paddock_addr" >&2
}

# start_zk NAME: a fresh standalone ZooKeeper on a free port.
start_zk() {
    zk_dir="$work/$1"
    zk_port="$(free_port)"
    "$repo/compat/zookeeper.sh" start "$zk_dir" "$zk_port" >&2
    zk_pid="$(cat "$zk_dir/zk.pid")"
    zk_addr="127.0.0.1:$zk_port"
}

# 4lw WORD HOST:PORT: a four-letter word's answer (bounded).
fourlw() { timeout 5 bash -c 'exec 3<>"/dev/tcp/${0%:*}/${0##*:}"; printf %s "$1" >&3; cat <&3' "$2" "$1" 2>/dev/null || true; }

# wait_modes ADDRS: until each of the comma-separated servers reports a Mode.
wait_modes() {
    local a
    for _ in $(seq 1 600); do
        local all=1
        for a in ${1//,/ }; do fourlw srvr "$a" | grep -q '^Mode:' || all=0; done
        [ "$all" = 1 ] && return 0
        sleep 0.1
    done
    echo "the ensemble $1 did not serve within 60 s" >&2
    exit 1
}

# ens_servers: three server.N lines on free ports; sets ens_client_ports.
ens_servers() {
    ens_lines="" ens_client_ports=""
    for id in 1 2 3; do
        local c
        c="$(free_port)"
        ens_lines+="server.$id=127.0.0.1:$(free_port):$(free_port);127.0.0.1:$c"$'\n'
        ens_client_ports+="$c "
    done
}

# start_ensemble NAME MEMBER: three members on free ports, each started by
# MEMBER DIR ID CLIENT_PORT (which sets member_pid); waits until all serve and
# sets ens_addr and ens_pid (comma-separated, as paddock bench takes them).
start_ensemble() {
    ens_servers
    local id=1 c
    ens_addr="" ens_pid=""
    for c in $ens_client_ports; do
        "$2" "$work/$1/n$id" "$id" "$c"
        ens_pid+="${ens_pid:+,}$member_pid" ens_addr+="${ens_addr:+,}127.0.0.1:$c"
        id=$((id + 1))
    done
    wait_modes "$ens_addr"
    echo "$1: pids $ens_pid on $ens_addr" >&2
}

# A paddock member: its zoo.cfg and myid, as a ZooKeeper operator writes them.
paddock_member() {
    mkdir -p "$1"
    echo "$2" >"$1/myid"
    printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n%s' \
        "$1" "$3" "$ens_lines" >"$1/zoo.cfg"
    "$PADDOCK_BIN" --config "$1/zoo.cfg" >"$1/stdout" 2>"$1/stderr" &
    member_pid=$! paddock_ens_pids+=" $!"
}

# A ZooKeeper member, set up as the standalone one (compat/zookeeper.sh).
zk_member() {
    mkdir -p "$1/data"
    echo "$2" >"$1/data/myid"
    ZK_WAIT=0 ZK_EXTRA_CFG="$ens_lines" "$repo/compat/zookeeper.sh" start "$1" "$3" >&2
    member_pid="$(cat "$1/zk.pid")" zk_ens_dirs+=" $1"
}

# cpu_ticks PIDS: clock ticks of user + system time the processes (comma-
# or space-separated; gone ones count 0) have used so far.
cpu_ticks() {
    local p stat total=0 fields
    for p in ${1//,/ }; do
        stat="$(cat "/proc/$p/stat" 2>/dev/null)" || continue
        # After "PID (command) " the fields start at the 3rd; utime and stime are the 14th and 15th.
        read -r -a fields <<<"${stat##*) }"
        total=$((total + fields[11] + fields[12]))
    done
    echo "$total"
}

# settle: waits until the servers started here are idle together (below
# $idle_percent% of a core over a second; at most $settle_max seconds), so that what
# one server still does after its run (a snapshot, a garbage collection, a
# compaction) does not land in the other's measured window.
settle() {
    local pids="$paddock_pid $zk_pid $paddock3_pid $zk3_pid" hz before after waited=0
    hz="$(getconf CLK_TCK)"
    while [ "$waited" -lt "$settle_max" ]; do
        before="$(cpu_ticks "$pids")"
        sleep 1
        after="$(cpu_ticks "$pids")"
        [ $(((after - before) * 100)) -lt $((idle_percent * hz)) ] && break
        waited=$((waited + 1))
    done
    if [ "$waited" -gt 0 ]; then echo "   waited $waited s for the servers to go idle" >&2; fi
}

# bench SERVER_NAME ADDR PID WORKLOAD TAG [KEYS [KEY]]: one run, JSON in
# results/ under KEY (default the workload's name).
bench() {
    local name="$1" addr="$2" pid="$3" workload="$4" tag="$5" run_keys="${6:-$keys}" key="${7:-$4}"
    local json="$results/$key.$name.$tag.json"
    settle
    echo "== $workload on $name ($addr), $tag" >&2
    if ! "$PADDOCK_BIN" bench --server "$addr" --server-pid "$pid" --workload "$workload" \
        --sessions "$sessions" --depth "$depth" --duration "$duration" --warmup "$warmup" \
        --value-size "$value_size" --keys "$run_keys" --label "$name" --json "$json" \
        >"$results/$key.$name.$tag.txt" 2>"$results/$key.$name.$tag.err"; then
        echo "   run reported a failure: $(tail -1 "$results/$key.$name.$tag.err")" >&2
    fi
    cat "$results/$key.$name.$tag.txt" >&2 || true
}

started="$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
# The commit measured: read now, as commits made during a run are not in its binary.
revision="$(cd "$repo" && git describe --always --dirty 2>/dev/null || echo unknown)"
t0=$(date +%s)

case " $topologies " in *" 1 "*)
    # Memory first, on fresh servers: RSS growth for $znodes znodes.
    start_paddock paddock
    bench paddock "$paddock_addr" "$paddock_pid" memory r1 "$znodes"
    start_zk zookeeper
    bench zookeeper "$zk_addr" "$zk_pid" memory r1 "$znodes"
    zk_version="$(fourlw srvr "$zk_addr" | sed -n 's/^Zookeeper version: //p' | head -1)"

    # Then every workload, alternating the servers run by run.
    for round in $(seq 1 "$rounds"); do
        for w in $workloads; do
            bench paddock "$paddock_addr" "$paddock_pid" "$w" "r$round"
            bench zookeeper "$zk_addr" "$zk_pid" "$w" "r$round"
        done
    done
    stop_paddock
    stop_zk

    # Memory again at a larger scale, each server fresh and running alone.
    if [ "$large_znodes" -gt 0 ]; then
        start_paddock paddock-large
        bench paddock "$paddock_addr" "$paddock_pid" memory r1 "$large_znodes" memory-large
        stop_paddock
        start_zk zookeeper-large
        bench zookeeper "$zk_addr" "$zk_pid" memory r1 "$large_znodes" memory-large
        stop_zk
    fi
    ;;
esac

case " $topologies " in *" 3 "*)
    # 3-node ensembles, both running, alternating run by run.
    start_ensemble paddock3 paddock_member
    paddock3_addr="$ens_addr" paddock3_pid="$ens_pid"
    start_ensemble zookeeper3 zk_member
    zk3_addr="$ens_addr" zk3_pid="$ens_pid"
    zk_version="${zk_version:-$(fourlw srvr "${zk3_addr%%,*}" | sed -n 's/^Zookeeper version: //p' | head -1)}"
    for round in $(seq 1 "$rounds"); do
        for w in $workloads; do
            bench paddock3 "$paddock3_addr" "$paddock3_pid" "$w" "r$round"
            bench zookeeper3 "$zk3_addr" "$zk3_pid" "$w" "r$round"
        done
    done
    stop_ensembles
    ;;
esac

load_after="$(cut -d' ' -f1-3 /proc/loadavg)"
elapsed=$(($(date +%s) - t0))
mkdir -p "$(dirname "$out")"
python3 "$here/render.py" "$results" "$out" \
    --command "$cmdline" --started "$started" --elapsed "$elapsed" \
    --load "$load_before -> $load_after" \
    --machine "$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), $(awk '/MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM, Linux $(uname -r)" \
    --paddock "$revision" \
    --zookeeper "${zk_version:-3.8 (Debian)}" \
    --params "$sessions sessions x $depth outstanding, $value_size-byte values, $keys keys, ${duration} s measured after ${warmup} s warm-up, $rounds round(s)" \
    --settle "below $idle_percent% of a core together, waiting at most $settle_max s" \
    --quick "$quick" --plot "$(basename "${out%.md}").svg"
"$PADDOCK_BIN" bench-plot --results "$results" --out "${out%.md}.svg"
echo "wrote $out and ${out%.md}.svg (${elapsed} s)" >&2
