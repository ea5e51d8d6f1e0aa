#!/usr/bin/env bash
# The audit log (audit.enable=true) against the real ZooKeeper 3.8: the same
# zkCli session (creates of each mode, a failed create, setData, setAcl, a
# failed delete, addauth, then quit, which deletes the session's ephemeral)
# is run against a fresh ZooKeeper and a fresh paddock, and the audit lines
# each wrote are compared, session ids aside: ZooKeeper's come from its log
# (Slf4jAuditLogger), paddock's from its log's `audit` target. ZooKeeper
# keeps a session's identities and ephemerals in hash sets, so the order of
# the users in a line and of the ephemerals' deletions is its hash order:
# compared sorted. (ZooKeeper 3.8 leaves TTL creates out; paddock writes
# them, so the session makes none.)
# Prints PASS/FAIL lines; exits 1 if any FAIL. Every process it starts is
# stopped by PID on exit.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="$(compat_paddock_bin)" || exit 2
compat_ensure_debs >&2 || { echo "FAIL audit.setup: Debian packages"; exit 1; }

work="$(mktemp -d)"
pid=""
cleanup() {
    "$here/zookeeper.sh" stop "$work/zk" >/dev/null 2>&1 || true
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT
mapfile -t ports < <(compat_free_ports 1)

session() {
    printf '%s\n' "create /a x" "create /a x" "set /a y" "setAcl /a world:anyone:cdrwa" \
        "create -e /a/e x" "create -s /a/s x" "create -c /c" "create -e -s /a/es x" "delete /nope" \
        "addauth digest alice:secret" "create /b x" "set /b z" "delete /b" quit |
        timeout 60 "$ZK_CLI" -server "$1" >"$work/zkcli-$2.out" 2>&1
}
# The audit lines of client sessions, made comparable (compat/audit_lines.py).
client_lines() { grep -o 'session=0x[0-9a-f]*	.*result=[a-z]*' "$1" | python3 "$here/audit_lines.py"; }

ZK_EXTRA_CFG="audit.enable=true" "$here/zookeeper.sh" start "$work/zk" "${ports[0]}" >&2 || { echo "FAIL audit.setup: ZooKeeper did not start"; exit 1; }
session "127.0.0.1:${ports[0]}" zk || { echo "FAIL audit.setup: zkCli against ZooKeeper"; exit 1; }
sleep 1
"$here/zookeeper.sh" stop "$work/zk" >&2
client_lines "$work/zk/zookeeper.log" >"$work/zk.audit"

printf 'audit.enable=true\n' >"$work/zoo.cfg"
"$bin" --bind 127.0.0.1 --config "$work/zoo.cfg" --port 0 --admin-port 0 --data-dir "$work/data" >"$work/stdout" 2>"$work/stderr" &
pid=$!
addr=""
for _ in $(seq 1 300); do
    addr="$(sed -n 's/^paddock listening on //p' "$work/stdout" | head -1)"
    [[ -n "$addr" ]] && break
    sleep 0.1
done
[[ -n "$addr" ]] || { echo "FAIL audit.setup: paddock did not start"; exit 1; }
session "$addr" paddock || { echo "FAIL audit.setup: zkCli against paddock"; exit 1; }
sleep 1
kill "$pid" && wait "$pid"
pid=""
# The log without its colours.
sed 's/\x1b\[[0-9;]*m//g' "$work/stderr" >"$work/paddock.log"
client_lines "$work/paddock.log" >"$work/paddock.audit"

failed=0
if [[ -s "$work/zk.audit" ]] && diff "$work/zk.audit" "$work/paddock.audit" >"$work/diff"; then
    echo "PASS audit.same-lines-as-zookeeper ($(wc -l <"$work/zk.audit") lines)"
else
    echo "FAIL audit.same-lines-as-zookeeper: $(head -c 600 "$work/diff" | tr '\n\t' '| ')"
    failed=1
fi
for op in serverStart serverStop; do
    if grep -q "audit: user=[^	]*	operation=$op	result=" "$work/paddock.log"; then
        echo "PASS audit.$op"
    else
        echo "FAIL audit.$op: no line"
        failed=1
    fi
done
[ "$failed" = 0 ]
