#!/usr/bin/env bash
# Runs kazoo's own test suite (compat/kazoo_suite.sh, same selection) against
# a fresh real ZooKeeper 3.8 (compat/zookeeper.sh) and a fresh paddock (release
# build), one after the other, and writes the committed results:
#
#   compat/results/kazoo-zookeeper.txt   one line per test: PASS/FAIL/SKIP/DESELECTED
#   compat/results/kazoo-paddock.txt
#   compat/results/README.md             side-by-side summary (generated)
#
#   compat/kazoo_compare.sh [OUT_DIR]    # default compat/results
#
# Exit status 0 only when every test that passes on ZooKeeper passes on paddock.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
out="${1:-$here/results}"
bin="$(compat_paddock_bin)" || exit 2
mkdir -p "$out"

work="$(mktemp -d)"
pid=""
cleanup() {
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
    "$here/zookeeper.sh" stop "$work/zk" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# One suite run; $1 = label, $2 = HOST:PORT. Keeps the result lines without
# the "kazoo-suite." prefix, sorted by test id, and the suite's summary line.
run_suite() {
    local label="$1" addr="$2" t0
    t0=$(date +%s)
    echo "kazoo-compare: $label on $addr" >&2
    "$here/kazoo_suite.sh" "$addr" >"$work/$label.out" 2>"$work/$label.err" || true
    grep -E '^(PASS|FAIL|SKIP|DESELECTED) kazoo-suite\.' "$work/$label.out" |
        sed -E 's/^([A-Z]+) kazoo-suite\./\1 /' |
        awk '{ id = $2; sub(/:$/, "", id); print id "\t" $0 }' | sort -t$'\t' -k1,1 | cut -f2- >"$work/$label.lines"
    grep '^kazoo-suite: ' "$work/$label.out" | tail -1 >"$work/$label.summary" || true
    echo $(($(date +%s) - t0)) >"$work/$label.secs"
}

# "Zookeeper version: 3.8.0-<git id>, built on ..." -> "3.8.0-<git id>"
version_of() { compat_4lw "$1" srvr | sed -n 's/^Zookeeper version: //p' | head -1 | sed 's/,.*//'; }

# Real ZooKeeper 3.8
zk_port="$(free_port)"
"$here/zookeeper.sh" start "$work/zk" "$zk_port" >&2
zk_version="$(version_of "127.0.0.1:$zk_port" | sed 's/-.*//')"  # Debian's build says 3.8.0-${mvngit.commit.id}
run_suite zookeeper "127.0.0.1:$zk_port"
"$here/zookeeper.sh" stop "$work/zk" >&2

# paddock
mkdir -p "$work/paddock"
# SASL users from the same JAAS file compat/zookeeper.sh gives ZooKeeper.
printf 'jaasLoginConfig=%s\nmaxClientCnxns=0\n' "$here/jaas-server.conf" >"$work/paddock/zoo.cfg"
"$bin" --bind 127.0.0.1 --config "$work/paddock/zoo.cfg" --port 0 --admin-port 0 --data-dir "$work/paddock/data" \
    >"$work/paddock/stdout" 2>"$work/paddock/stderr" &
pid=$!
addr=""
for _ in $(seq 1 300); do
    addr="$(sed -n 's/^paddock listening on //p' "$work/paddock/stdout" | head -1)"
    [[ -n "$addr" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/paddock/stderr" >&2; exit 1; }
    sleep 0.1
done
[[ -n "$addr" ]] || { echo "paddock did not start" >&2; exit 1; }
pd_version="$(version_of "$addr")"
run_suite paddock "$addr"
kill "$pid" && wait "$pid" 2>/dev/null || true
pid=""

kazoo_version="$("$COMPAT_VENV/bin/python" -c 'from importlib.metadata import version; print(version("kazoo"))')"
py_version="$("$COMPAT_VENV/bin/python" -c 'import platform; print(platform.python_version())')"
stamp="$(date -u +%Y-%m-%d)"

write_results() {
    local label="$1" name="$2" version="$3"
    {
        echo "# kazoo $kazoo_version's own test suite (kazoo/tests) against $name ($version),"
        echo "# standalone on 127.0.0.1, run by compat/kazoo_compare.sh on $stamp (Python $py_version)."
        echo "# Selection: all of kazoo/tests minus compat/kazoo_deselected.txt. One line per test:"
        echo "# PASS / FAIL: reason / SKIP: reason (pytest skip) / DESELECTED: reason."
        echo "# $(cat "$work/$label.summary")" | sed -E 's/; log: [^)]*\)/)/'
        cat "$work/$label.lines"
    } >"$out/kazoo-$label.txt"
}
write_results zookeeper "Apache ZooKeeper" "$zk_version"
write_results paddock "paddock" "$pd_version"

# Side by side: per test module, and every test whose status differs.
python3 - "$work/zookeeper.lines" "$work/paddock.lines" "$out/README.md" \
    "$zk_version" "$pd_version" "$kazoo_version" "$py_version" "$stamp" \
    "$(cat "$work/zookeeper.secs")" "$(cat "$work/paddock.secs")" <<'EOF'
import collections, sys

zk_file, pd_file, readme, zk_ver, pd_ver, kazoo_ver, py_ver, stamp, zk_secs, pd_secs = sys.argv[1:]

def load(path):
    res = {}
    for line in open(path):
        status, rest = line.rstrip("\n").split(" ", 1)
        test_id, _, reason = rest.partition(": ")
        res[test_id.rstrip(":")] = (status, reason)
    return res

zk, pd = load(zk_file), load(pd_file)
# Test ids have "::"; the rest (cleanup, complete) are the suite's own checks.
ids = sorted(i for i in set(zk) | set(pd) if "::" in i)
checks = sorted(i for i in set(zk) | set(pd) if "::" not in i)
STATUSES = ["PASS", "FAIL", "SKIP", "DESELECTED"]

def counts(res, keys):
    c = collections.Counter(res.get(k, ("MISSING", ""))[0] for k in keys)
    return c

by_module = collections.OrderedDict()
for i in ids:
    by_module.setdefault(i.split("::")[0], []).append(i)

def cell(c):
    return " / ".join(str(c.get(s, 0)) for s in STATUSES)

lines = []
w = lines.append
w("# kazoo's own test suite: real ZooKeeper 3.8 and paddock, side by side")
w("")
w("Generated by `compat/kazoo_compare.sh` on %s; the per-test results are in" % stamp)
w("[kazoo-zookeeper.txt](kazoo-zookeeper.txt) and [kazoo-paddock.txt](kazoo-paddock.txt).")
w("")
w("- Client: kazoo %s from PyPI, its shipped tests (`kazoo/tests`) run by pytest" % kazoo_ver)
w("  (Python %s) through `compat/kazoo_suite.sh`, pointed at one running standalone" % py_ver)
w("  server by `compat/kazoo_external.py`; dependencies pinned in")
w("  `compat/kazoo_suite_requirements.txt` (gevent and eventlet included, so the")
w("  handler variants of the client, lock and semaphore tests run too).")
w("- ZooKeeper: %s, Debian package, started by `compat/zookeeper.sh`" % zk_ver)
w("  (NettyServerCnxnFactory, forceSync=yes, 4lw whitelist `*`, extended types,")
w("  SASL users from `compat/jaas-server.conf` with SASLAuthenticationProvider).")
w("- paddock: %s, release build, single node, fresh data directory, the same" % pd_ver)
w("  JAAS file (zoo.cfg `jaasLoginConfig`).")
w("- Same selection on both: every test except those listed, each with its reason,")
w("  in `compat/kazoo_deselected.txt` (server restarts, multi-server ensembles, TLS,")
w("  reconfig, SASL GSSAPI). Per-test timeout 60 s.")
w("")
w("## Totals")
w("")
w("| | tests | pass | fail | skip | deselected | wall time |")
w("|---|---:|---:|---:|---:|---:|---:|")
for name, res, secs in (("ZooKeeper 3.8", zk, zk_secs), ("paddock", pd, pd_secs)):
    c = counts(res, ids)
    w("| %s | %d | %d | %d | %d | %d | %s s |" % (name, len(ids), c["PASS"], c["FAIL"], c["SKIP"], c["DESELECTED"], secs))
w("")
w("Suite checks (not kazoo tests): " + ", ".join(
    "`%s` ZooKeeper %s, paddock %s" % (c, zk.get(c, ("MISSING",))[0], pd.get(c, ("MISSING",))[0]) for c in checks) + ".")
w("")
w("## Per module (pass / fail / skip / deselected)")
w("")
w("| module | tests | ZooKeeper 3.8 | paddock |")
w("|---|---:|---|---|")
for mod, keys in by_module.items():
    w("| `%s` | %d | %s | %s |" % (mod, len(keys), cell(counts(zk, keys)), cell(counts(pd, keys))))
w("")
w("## Tests whose outcome differs")
w("")
diff = [i for i in ids + checks if zk.get(i, ("MISSING",))[0] != pd.get(i, ("MISSING",))[0]]
if not diff:
    w("None: every test has the same outcome on both servers.")
else:
    w("| test | ZooKeeper 3.8 | paddock |")
    w("|---|---|---|")
    for i in diff:
        z, p = zk.get(i, ("MISSING", "")), pd.get(i, ("MISSING", ""))
        fmt = lambda r: r[0] + (": " + r[1].replace("|", "/") if r[1] else "")
        w("| `%s` | %s | %s |" % (i, fmt(z), fmt(p)))
w("")
regress = [i for i in ids if zk.get(i, ("",))[0] == "PASS" and pd.get(i, ("",))[0] != "PASS"]
w("Tests that pass on ZooKeeper but not on paddock: %d. (The paddock bugs this" % len(regress))
w("suite found, and their fixes, are listed in compat/README.md, section kazoo-suite.)")
w("")
w("## Deselected (same list for both servers)")
w("")
for i in ids:
    s = zk.get(i, ("", ""))
    if s[0] == "DESELECTED":
        w("- `%s`: %s" % (i, s[1]))
w("")
w("## Rerun")
w("")
w("    cargo build --release            # CARGO_TARGET_DIR=~/.cache/paddock/target")
w("    compat/kazoo_compare.sh          # ~3-4 min: both servers, rewrites this directory")
w("    compat/kazoo_suite.sh HOST:PORT  # the suite alone against any server")
w("")
open(readme, "w").write("\n".join(lines))
sys.exit(1 if regress else 0)
EOF
