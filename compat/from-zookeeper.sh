#!/usr/bin/env bash
# Moving from ZooKeeper: fills a real ZooKeeper 3.8 (compat/zookeeper.sh,
# with a small snapCount so its logs and snapshots roll), stops it with a
# session still open, and starts paddock with --import-zookeeper on its data
# directory: single node, then again (a restart must not import twice), then
# a 3-node ensemble with two members started to import (one does, through
# the leader; the other waits for it), and from the same data restarted
# with compressed snapshots (gz, snappy). compat/from_zookeeper.py checks that paddock serves the same
# tree, stat for stat, that zxids and sequence numbers go on from
# ZooKeeper's, and that the open session resumes with its ephemeral.
# Then back (--export-zookeeper): a paddock filled by the same clients, and
# the 3-node ensemble above, are stopped and exported, and a real ZooKeeper
# started on each export serves the same tree, stat for stat, with the
# digest it checks as it loads, and goes on from it.
# Prints PASS/FAIL lines; exits 1 if any FAIL. Every process it starts is
# stopped by PID on exit.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="$(compat_paddock_bin)" || exit 2
compat_ensure_debs >&2 || { echo "FAIL import.setup: Debian packages"; exit 1; }
compat_ensure_venv >&2 || { echo "FAIL import.setup: kazoo venv"; exit 1; }
py="$COMPAT_VENV/bin/python"
check="$here/from_zookeeper.py"

work="$(mktemp -d)"
pids=()
cleanup() {
    for z in zk zk-back zk-ens; do "$here/zookeeper.sh" stop "$work/$z" >/dev/null 2>&1 || true; done
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT
failed=0
run() { "$@" || failed=1; }

mapfile -t ports < <(compat_free_ports 8)

zk="127.0.0.1:${ports[0]}"
ZK_EXTRA_CFG="snapCount=300" "$here/zookeeper.sh" start "$work/zk" "${ports[0]}" >&2 || { echo "FAIL import.setup: ZooKeeper did not start"; exit 1; }
"$py" "$check" populate "$zk" "$work/state.json" || { echo "FAIL import.setup: populating ZooKeeper"; exit 1; }
# Quota, a container and a TTL node: what kazoo cannot create, zkCli can.
extras() {
    printf '%s\n' "setquota -n 1000 /app" "create -c /cont" "create /cont/child c" "create -t 600000 /ttl t" quit |
        timeout 60 "$ZK_CLI" -server "$1" >"$work/zkcli.out" 2>&1
}
extras "$zk" || { echo "FAIL import.setup: zkCli"; exit 1; }
"$py" "$check" record "$zk" "$work/state.json" || { echo "FAIL import.setup: reading ZooKeeper"; exit 1; }
"$here/zookeeper.sh" stop "$work/zk" "${ports[0]}" >&2
echo "ZooKeeper's files: $(ls "$work/zk/data/version-2" | tr '\n' ' ')" >&2

# start_paddock NAME ARGS...: starts paddock, waits for its client port, sets $addr.
start_paddock() {
    local name="$1"
    shift
    "$bin" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    local pid=$!
    addr=""
    for _ in $(seq 1 600); do
        addr="$(sed -n 's/^paddock listening on //p' "$work/$name.out" | head -1)"
        [[ -n "$addr" ]] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo "FAIL import.$name-start: paddock did not serve; $(tail -3 "$work/$name.err" | tr '\n' ' ')"
    failed=1
    return 1
}
# refused CHECK MESSAGE COMMAND...: passes if COMMAND fails saying MESSAGE.
refused() {
    local name="$1" message="$2"
    shift 2
    if timeout 60 "$@" >/dev/null 2>"$work/$name.err"; then
        echo "FAIL $name: it succeeded"
        failed=1
    elif grep -q "$message" "$work/$name.err"; then
        echo "PASS $name"
    else
        echo "FAIL $name: $(tail -1 "$work/$name.err")"
        failed=1
    fi
}
stop_last() {
    local pid="${pids[-1]}"
    kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    unset 'pids[-1]'
}

single=(--port 0 --data-dir "$work/single" --import-zookeeper "$work/zk/data")
if start_paddock single "${single[@]}"; then
    grep -o "import: [0-9]* znodes.*" "$work/single.err" >&2
    run "$py" "$check" same "$addr" "$work/state.json"
    stop_last
    if start_paddock single-again "${single[@]}"; then
        grep -q "not importing again" "$work/single-again.err" && echo "PASS import.restart-does-not-import-again" ||
            { echo "FAIL import.restart-does-not-import-again: no note in the log"; failed=1; }
        run "$py" "$check" verify "$addr" "$work/state.json"
        stop_last
    fi
fi

# A paddock that has served a write refuses the import (and the checks
# above would have failed on it).
if start_paddock other --port 0 --data-dir "$work/other"; then
    printf '%s\n' "create /x" quit | timeout 60 "$ZK_CLI" -server "$addr" >/dev/null 2>&1
    if "$py" "$check" same "$addr" "$work/state.json" >"$work/other-same.out"; then
        echo "FAIL import.checks-can-fail: a paddock without the import passed them"
        failed=1
    else
        echo "PASS import.checks-can-fail"
    fi
    stop_last
    refused import.refuses-non-empty "already holds znodes of its own" \
        "$bin" --port 0 --data-dir "$work/other" --import-zookeeper "$work/zk/data"
fi

# Snapshots ZooKeeper compressed (zookeeper.snapshot.compression.method):
# the same data directory, restarted once with gz, then with snappy, ends
# with a compressed snapshot of the whole tree (ZooKeeper snapshots as it
# starts); paddock imports from that one.
for method in gz snappy; do
    mkdir -p "$work/zk-$method"
    cp -r "$work/zk/data" "$work/zk-$method/"
    if ZK_JVMFLAGS="-Dzookeeper.snapshot.compression.method=$method" "$here/zookeeper.sh" start "$work/zk-$method" "${ports[1]}" >&2; then
        "$here/zookeeper.sh" stop "$work/zk-$method" >&2
        if start_paddock "import-$method" --port 0 --data-dir "$work/p-$method" --import-zookeeper "$work/zk-$method/data"; then
            if grep -q "from .*/snapshot\.[0-9a-f]*\.$method plus" "$work/import-$method.err"; then
                echo "PASS import.snapshot-$method"
            else
                echo "FAIL import.snapshot-$method: $(grep -o 'import: .*' "$work/import-$method.err" | head -1)"
                failed=1
            fi
            run "$py" "$check" same "$addr" "$work/state.json"
            stop_last
        fi
    else
        echo "FAIL import.snapshot-$method: ZooKeeper did not start with it"
        failed=1
    fi
done

# export_and_start NAME DATA_DIR: exports a stopped paddock's data into
# $work/NAME/data, starts a real ZooKeeper there (on ports[1]) and checks
# it loaded the snapshot and agreed with its digest; sets $back.
export_and_start() {
    local name="$1" data="$2"
    back=""
    if ! "$bin" --data-dir "$data" --export-zookeeper "$work/$name/data" >"$work/$name.out" 2>"$work/$name.err"; then
        echo "FAIL $name.written: $(tail -1 "$work/$name.err")"
        failed=1
        return 1
    fi
    echo "PASS $name.written"
    sed 's/^/  /' "$work/$name.out" >&2
    if ! "$here/zookeeper.sh" start "$work/$name" "${ports[1]}" >&2; then
        echo "FAIL $name.zookeeper-starts: $(tail -3 "$work/$name/zookeeper.log" | tr '\n' ' ')"
        failed=1
        return 1
    fi
    back="127.0.0.1:${ports[1]}"
    # ZooKeeper 3.8 compares the digest in the snapshot with the tree it
    # loaded, and counts a mismatch.
    local zxid mntr
    zxid="$(sed -n 's/.* at zxid \(0x[0-9a-f]*\) .*/\1/p' "$work/$name.out")"
    mntr="$(compat_4lw "$back" mntr)"
    if [[ -n "$zxid" ]] && grep -q "digest in the snapshot has digest version of 2, with zxid as $zxid," "$work/$name/zookeeper.log" &&
        grep -q "^zk_digest_mismatches_count[[:space:]]*0$" <<<"$mntr"; then
        echo "PASS $name.digest-checked"
    else
        echo "FAIL $name.digest-checked: $(grep -i digest "$work/$name/zookeeper.log" | tail -2 | tr '\n' ' ')"
        failed=1
    fi
}

# Back to ZooKeeper: a paddock filled by the clients that filled ZooKeeper.
if start_paddock native --port 0 --data-dir "$work/native"; then
    if "$py" "$check" populate "$addr" "$work/native.json" && extras "$addr" &&
        "$py" "$check" record "$addr" "$work/native.json" >&2; then
        # The export needs the data directory alone.
        refused zk-back.refused-while-running "stop paddock first" \
            "$bin" --data-dir "$work/native" --export-zookeeper "$work/early"
        stop_last
        if export_and_start zk-back "$work/native"; then
            run "$py" "$check" back "$back" "$work/native.json" zk-back
            "$here/zookeeper.sh" stop "$work/zk-back" >&2
        fi
    else
        echo "FAIL zk-back.setup: filling paddock"
        failed=1
        stop_last
    fi
fi

# A 3-node ensemble: members 2 and 3 started with the flag (one imports,
# the other waits for it; neither serves before the tree is in), member 1
# (which bootstraps the ensemble) without.
servers=""
for id in 1 2 3; do
    servers+="server.$id=127.0.0.1:${ports[$((id * 2))]}:${ports[$((id * 2 + 1))]}"$'\n'
done
for id in 1 2 3; do
    compat_member "$work" "$id" 0 "$servers"
done
"$bin" --config "$work/zoo3.cfg" --import-zookeeper "$work/zk/data" >"$work/n3.out" 2>"$work/n3.err" &
pids+=($!)
if start_paddock n1 --config "$work/zoo1.cfg" && n1="$addr" &&
    start_paddock n2 --config "$work/zoo2.cfg" --import-zookeeper "$work/zk/data"; then
    run "$py" "$check" same "$addr" "$work/state.json"
    run "$py" "$check" same "$n1" "$work/state.json"
    n3=""
    for _ in $(seq 1 300); do
        n3="$(sed -n 's/^paddock listening on //p' "$work/n3.out" | head -1)"
        [[ -n "$n3" ]] && break
        sleep 0.1
    done
    if [[ -n "$n3" ]]; then
        run "$py" "$check" same "$n3" "$work/state.json"
    else
        echo "FAIL import.n3-start: the second importing member did not serve; $(tail -3 "$work/n3.err" | tr '\n' ' ')"
        failed=1
    fi
    grep -h "import:" "$work/n2.err" "$work/n3.err" | grep -v waiting | sed 's/^.*import:/  import:/' >&2
    # And back: the ensemble stopped, two members exported (the same
    # tree at the same zxid), ZooKeeper started from one.
    if "$py" "$check" record "$n1" "$work/ensemble.json" >&2; then
        for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
        for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
        pids=()
        if export_and_start zk-ens "$work/n1"; then
            run "$py" "$check" same "$back" "$work/ensemble.json" zk-ens
            run "$py" "$check" resume "$back" "$work/state.json" zk-ens
            "$here/zookeeper.sh" stop "$work/zk-ens" >&2
        fi
        local_sum() { grep -o 'at zxid .* (ZooKeeper digest [0-9-]*)' "$1"; }
        if "$bin" --data-dir "$work/n3" --export-zookeeper "$work/n3-back" >"$work/n3-back.out" 2>&1 &&
            [[ -n "$(local_sum "$work/zk-ens.out")" && "$(local_sum "$work/n3-back.out")" == "$(local_sum "$work/zk-ens.out")" ]]; then
            echo "PASS zk-ens.members-agree"
        else
            echo "FAIL zk-ens.members-agree: $(head -1 "$work/n3-back.out") against $(head -1 "$work/zk-ens.out")"
            failed=1
        fi
    else
        echo "FAIL zk-ens.setup: reading the ensemble"
        failed=1
    fi
fi
[ "$failed" = 0 ]
