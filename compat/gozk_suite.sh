#!/usr/bin/env bash
# go-zookeeper's own test suite (github.com/samuel/go-zookeeper/zk, from
# Debian's golang-github-samuel-go-zookeeper-dev) against servers it starts
# itself: single servers, and 3-member ensembles whose members it kills
# (SIGKILL) and restarts.
#
#   compat/gozk_suite.sh             # paddock (PADDOCK_BIN, or the release build)
#   compat/gozk_suite.sh zookeeper   # the real ZooKeeper 3.8, for reference
#   GOZK_SUITE_TESTS='TestLock TestNoQuorum' compat/gozk_suite.sh   # a subset
#
# go-zookeeper is a Go client written from the protocol (Prometheus, Vitess,
# Mesos-era tools use it or its fork). Its tests start servers through two
# helper files of the package, which run `java -jar <ZooKeeper fat jar>` and
# check start-up with a srvr parser that no 3.5+ server matches. `go test
# -overlay` lays compat/gozk/server_help.go and server_java.go over those two
# (the client's own code is the Debian package's, unchanged): they run
# $GOZK_SERVER with each member's zoo.cfg, on free ports, and wait for srvr's
# Mode: line. The tests run are listed in compat/gozk/tests.txt, with the
# reasons for those left out.
#
# Prints PASS/FAIL/SKIP lines and a summary; exits 1 if a test failed.
# Every server it started is killed by PID at the end. About a minute.
set -u
. "$(dirname "$0")/lib.sh"
compat_run_dir
work="$COMPAT_RUN_DIR/gozk"
mkdir -p "$work"

case "${1:-paddock}" in
paddock)
    bin="$(compat_paddock_bin)" || exit 2
    server="$bin --config"
    ;;
zookeeper)
    compat_ensure_debs || exit 1
    server="$COMPAT_DIR/zookeeper.sh run"
    ;;
*)
    echo "usage: $0 [paddock|zookeeper]" >&2
    exit 2
    ;;
esac

pkg=github.com/samuel/go-zookeeper/zk
src=/usr/share/gocode/src/$pkg
if ! command -v go >/dev/null || [ ! -d "$src" ]; then
    echo "compat: installing golang-go and golang-github-samuel-go-zookeeper-dev" >&2
    compat_apt_install golang-go golang-github-samuel-go-zookeeper-dev || {
        fail gozk-suite.install "could not install Go and go-zookeeper from apt"
        exit 1
    }
fi

cleanup() {
    local pid
    for pid in $(cat "$work/pids" 2>/dev/null); do
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$work"/cluster*
}
trap cleanup EXIT

printf '{"Replace": {"%s": "%s", "%s": "%s"}}\n' \
    "$src/server_help.go" "$COMPAT_DIR/gozk/server_help.go" \
    "$src/server_java.go" "$COMPAT_DIR/gozk/server_java.go" >"$work/overlay.json"
export GOPATH=/usr/share/gocode GO111MODULE=off GOFLAGS= GOCACHE="$HOME/.cache/paddock/go-build"
if ! (cd "$work" && timeout 600 go test -c -overlay "$work/overlay.json" -o "$work/zk.test" "$pkg") >"$work/build.log" 2>&1; then
    fail gozk-suite.build "go test -c failed: $(tail -3 "$work/build.log" | tr '\n' '|')"
    exit 1
fi

tests="${GOZK_SUITE_TESTS:-$(grep -v '^#' "$COMPAT_DIR/gozk/tests.txt" | tr -s ' \n' ' ')}"
# shellcheck disable=SC2086
pattern="^($(echo $tests | tr ' ' '|'))\$"
log="$COMPAT_RUN_DIR/gozk-suite.log"
t0=$(date +%s)
(cd "$work" && GOZK_WORK="$work" GOZK_SERVER="$server" \
    timeout -k 10 "${GOZK_SUITE_TIMEOUT:-600}" ./zk.test -test.v -test.timeout 570s -test.run "$pattern") >"$log" 2>&1
rc=$?

# One line per test. A failure's reason is the first t.Fatalf/t.Errorf line of
# that test (servers' own output, prefixed [ZKERR], is not one).
report="$(awk '
    /^=== (RUN|CONT) / { cur = $3 }
    /^    [a-z_]+\.go:[0-9]+: / && !/\[ZKERR\]/ && cur != "" && !(cur in why) { sub(/^    /, ""); why[cur] = substr($0, 1, 200) }
    /^--- (PASS|FAIL|SKIP): / {
        name = $3
        if ($2 == "PASS:") print "PASS gozk-suite." name
        else if ($2 == "SKIP:") print "SKIP gozk-suite." name ": " (name in why ? why[name] : "skipped")
        else print "FAIL gozk-suite." name ": " (name in why ? why[name] : "failed")
    }' "$log")"
[ -n "$report" ] && echo "$report"
for t in $tests; do
    grep -q "^[A-Z]* gozk-suite\.$t\b" <<<"$report" ||
        fail "gozk-suite.$t" "no result (the run ended early: exit $rc; see $log)"
done | tee "$work/missing"
failed=$(($(grep -c '^FAIL ' <<<"$report") + $(grep -c . "$work/missing")))
echo "gozk-suite: $(grep -c '^PASS ' <<<"$report") passed, $failed failed, $(grep -c '^SKIP ' <<<"$report") skipped" \
    "against ${1:-paddock} ($(($(date +%s) - t0)) s; log: $log)"
[ "$failed" = 0 ]
