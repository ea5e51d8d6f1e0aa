#!/usr/bin/env bash
# Drive a running ZooKeeper-protocol server with real third-party clients.
#
#   compat/run.sh HOST:PORT
#
# Suites (each prints "PASS name" / "FAIL name: reason" lines):
#   zkcli    compat/zkcli.sh    zkCli.sh (ZooKeeper 3.8 CLI)
#   java     compat/java.sh     ZooKeeper 3.8 Java client + Curator 5.4 recipes
#   kazoo    compat/kazoo.sh    kazoo (PyPI) in compat/.venv
#   cclient  compat/cclient.sh  C client: cli_mt and load_gen
#   node     compat/node.sh     node-zookeeper-client (npm) in compat/node
#   rust     compat/rust.sh     zookeeper-client (crates.io) in compat/rust
#   kazoo-suite  compat/kazoo_suite.sh  kazoo's own pytest suite (minus
#                compat/kazoo_deselected.txt), one PASS/FAIL line per test
#   aiozk-suite  compat/aiozk_suite.sh  aiozk's own pytest suite, one line per test
#   tls      compat/tls.sh      kazoo and the Java client over TLS; runs by
#                default when COMPAT_TLS_SERVER names the secure client port
# COMPAT_SUITES="zkcli kazoo" runs a subset. The last line is "N passed, M failed";
# the exit status is 0 only when M is 0. Installs what it needs when missing.
set -u
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 HOST:PORT" >&2; exit 2; }
SERVER="$1"
SUITES="${COMPAT_SUITES:-zkcli java kazoo cclient node rust kazoo-suite aiozk-suite${COMPAT_TLS_SERVER:+ tls}}"

t_start=$(date +%s)
compat_prune_runs 10
compat_run_dir
results="$COMPAT_RUN_DIR"
ln -sfn "$(basename "$results")" "$COMPAT_TMP/last"

setup_fail=""
compat_ensure_debs || setup_fail="Debian packages ($COMPAT_DEBS)"
case " $SUITES " in *" kazoo "* | *" kazoo-suite "* | *" aiozk-suite "* | *" tls "*) compat_ensure_venv || setup_fail="${setup_fail:+$setup_fail, }kazoo venv" ;; esac

echo "compat: server $SERVER"
ok="$(compat_4lw "$SERVER" ruok)"
echo "compat: ruok -> ${ok:-<no answer>}"

total_pass=0
total_fail=0
if [ -n "$setup_fail" ]; then
    echo "FAIL compat.setup: could not install $setup_fail"
    total_fail=$((total_fail + 1))
fi

for suite in $SUITES; do
    script="$here/${suite//-/_}.sh"   # kazoo-suite -> kazoo_suite.sh
    out="$results/$suite.txt"
    echo
    echo "== $suite"
    s0=$(date +%s)
    if [ -x "$script" ]; then
        # every suite bounds its own client calls; this is the backstop
        timeout -k 10 900 "$script" "$SERVER" 2>"$results/$suite.stderr" | tee "$out"
    else
        echo "FAIL $suite.missing: $script not found" | tee "$out"
    fi
    p=$(grep -c '^PASS ' "$out")
    f=$(grep -c '^FAIL ' "$out")
    if [ $((p + f)) -eq 0 ]; then
        echo "FAIL $suite.no_results: the suite printed no results; stderr: $(tail -3 "$results/$suite.stderr" | tr '\n' '|')" | tee -a "$out"
        f=1
    fi
    echo "-- $suite: $p passed, $f failed ($(($(date +%s) - s0)) s)"
    total_pass=$((total_pass + p))
    total_fail=$((total_fail + f))
done

echo
echo "compat: $SUITES against $SERVER in $(($(date +%s) - t_start)) s (details: $results)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
