#!/usr/bin/env bash
# kazoo's own test suite (kazoo/tests, shipped in the PyPI package) against a
# running server at HOST:PORT, through compat/kazoo_external.py.
#
#   compat/kazoo_suite.sh HOST:PORT [pytest args...]   # e.g. -k test_lock
#
# Prints one line per test: PASS / FAIL (counted by run.sh), SKIP and
# DESELECTED (not counted; tests listed in compat/kazoo_deselected.txt, each
# with its reason). Every test has KAZOO_SUITE_TEST_TIMEOUT s (default 60), the
# whole run KAZOO_SUITE_TIMEOUT s (default 600). Tests run under
# /kazootests-<tag>-<uuid> chroots, which are deleted afterwards.
# KAZOO_SUITE_DESELECT overrides the deselect file (compat/kazoo_failover.sh).
# With COMPAT_TLS_SERVER (the server's TLS client port, as compat/run.sh gets
# it) kazoo's TestSSLClient runs too, with compat/tls/'s client certificate.
set -u
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 HOST:PORT [pytest args...]" >&2; exit 2; }
SERVER="$1"; shift
compat_run_dir

compat_shipped_tests kazoo-suite compat_ensure_kazoo_suite_deps kazoo.tests || exit 1

# Probe first: against a server that does not answer, every test would spend
# its set-up retrying, and the run would only end at the overall timeout.
if ! probe="$(timeout 40 "$py" -c '
import sys
from kazoo.client import KazooClient
c = KazooClient(sys.argv[1], timeout=10)
c.start(timeout=20)
c.get_children("/")
c.stop()
c.close()
' "$SERVER" 2>&1)"; then
    fail kazoo-suite.connect "kazoo cannot connect to $SERVER: $(echo "$probe" | tail -1)"
    exit 1
fi

tag="-$(hostname -s 2>/dev/null | tr -cd 'a-zA-Z0-9' | head -c 12)$$-"
log="$COMPAT_RUN_DIR/kazoo-suite.pytest.log"
report="$COMPAT_RUN_DIR/kazoo-suite.results"
t0=$(date +%s)

# pytest's own output goes to $log; the plugin writes result lines on fd 3.
# The run happens in the scratch dir so no ini file or cache of the checkout
# is picked up; the rootdir is kazoo/tests so test ids are "test_x.py::...".
(
    cd "$COMPAT_RUN_DIR" &&
        KAZOO_EXTERNAL_SERVERS="$SERVER" \
        KAZOO_EXTERNAL_SECURE_SERVERS="${COMPAT_TLS_SERVER:-}" \
        KAZOO_EXTERNAL_TLS_DIR="$COMPAT_DIR/tls" \
        KAZOO_SUITE_TAG="$tag" \
        KAZOO_SUITE_DESELECT="${KAZOO_SUITE_DESELECT:-$COMPAT_DIR/kazoo_deselected.txt}" \
        KAZOO_SUITE_REPORT_FD=3 \
        PYTHONPATH="$COMPAT_DIR${PYTHONPATH:+:$PYTHONPATH}" \
        timeout -k 10 "${KAZOO_SUITE_TIMEOUT:-600}" "$py" -m pytest \
        -p kazoo_external -p no:cacheprovider \
        --rootdir "$tests" --timeout "${KAZOO_SUITE_TEST_TIMEOUT:-60}" --timeout-method signal \
        -q -rfE --durations 10 "$tests" "$@" \
        3>&1 >"$log" 2>&1
    echo "$?" >"$COMPAT_RUN_DIR/kazoo-suite.rc"
) | tee "$report"
rc="$(cat "$COMPAT_RUN_DIR/kazoo-suite.rc" 2>/dev/null || echo 1)"
summary="$(grep -E '(passed|failed|error|skipped|deselected).* in [0-9.]+s' "$log" | tail -1 | tr -d '=' | sed 's/^ *//; s/ *$//')"
# pytest exits 0 (all passed) or 1 (some failed); anything else means it did
# not run to the end (timeout: 124, interrupted: 2, internal error: 3, ...).
if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
    fail kazoo-suite.complete "pytest did not finish (exit $rc; $(tail -3 "$log" | tr '\n' '|'))"
fi

left="$(timeout 90 "$py" "$COMPAT_DIR/kazoo_external.py" --cleanup "$SERVER" "$tag" 2>"$COMPAT_RUN_DIR/kazoo-suite.cleanup.stderr")"
if [ "$(echo "$left" | head -1)" = "left 0" ]; then
    pass kazoo-suite.cleanup
else
    fail kazoo-suite.cleanup "znodes /kazootests$tag* not all deleted: ${left:-no answer} $(tail -2 "$COMPAT_RUN_DIR/kazoo-suite.cleanup.stderr" | tr '\n' '|')"
fi

echo "kazoo-suite: $(grep -c '^PASS ' "$report") pass, $(grep -c '^FAIL ' "$report") fail," \
    "$(grep -c '^SKIP ' "$report") skip, $(grep -c '^DESELECTED ' "$report") deselected;" \
    "pytest: ${summary:-no summary} ($(($(date +%s) - t0)) s; log: $log)"
