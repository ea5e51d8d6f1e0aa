#!/usr/bin/env bash
# aiozk's own test suite (aiozk/test, shipped in the PyPI package: client,
# watchers, sessions, transactions and its recipes) against a running server.
#
#   compat/aiozk_suite.sh HOST:PORT [pytest args...]   # e.g. -k test_lock
#
# aiozk is an asyncio client written from the protocol, not on kazoo or the C
# client. Its tests run in the chroot /test_aiozk, which they empty first and
# delete at the end, so two runs must not share a server at once. Prints one
# line per test: PASS / FAIL (counted by run.sh) or SKIP. Every test has
# AIOZK_SUITE_TEST_TIMEOUT s (default 60), the whole run AIOZK_SUITE_TIMEOUT s
# (default 400; it takes about 50 s).
set -u
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 HOST:PORT [pytest args...]" >&2; exit 2; }
SERVER="$1"; shift
compat_run_dir

compat_shipped_tests aiozk-suite compat_ensure_aiozk_suite_deps aiozk.test || exit 1

# Probe first: against a server that does not answer, every test would wait
# out its own timeout.
if ! probe="$(timeout 40 "$py" -c '
import asyncio, sys
from aiozk import ZKClient
async def main():
    c = ZKClient(sys.argv[1])
    await asyncio.wait_for(c.start(), 20)
    await c.get_children("/")
    await c.close()
asyncio.run(main())
' "$SERVER" 2>&1)"; then
    fail aiozk-suite.connect "aiozk cannot connect to $SERVER: $(echo "$probe" | tail -1)"
    exit 1
fi

log="$COMPAT_RUN_DIR/aiozk-suite.pytest.log"
xml="$COMPAT_RUN_DIR/aiozk-suite.junit.xml"
t0=$(date +%s)
# The run happens in the scratch dir so no ini file or cache of the checkout
# is picked up; the rootdir is aiozk/test so test ids are "test_x.py::...".
(
    cd "$COMPAT_RUN_DIR" &&
        ZK_HOST="${SERVER%:*}" ZK_PORT="${SERVER##*:}" \
        timeout -k 10 "${AIOZK_SUITE_TIMEOUT:-400}" "$py" -m pytest \
        -p no:cacheprovider -o asyncio_mode=auto -o asyncio_default_fixture_loop_scope=function \
        --rootdir "$tests" --timeout "${AIOZK_SUITE_TEST_TIMEOUT:-60}" --timeout-method signal \
        -q -rfE --junitxml "$xml" "$tests" "$@" >"$log" 2>&1
)
rc=$?
# pytest exits 0 (all passed) or 1 (some failed); anything else means it did
# not run to the end (timeout: 124, interrupted: 2, internal error: 3, ...).
if [ "$rc" != 0 ] && [ "$rc" != 1 ]; then
    fail aiozk-suite.complete "pytest did not finish (exit $rc; $(tail -3 "$log" | tr '\n' '|'))"
fi
[ -s "$xml" ] && "$py" - "$xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET

for case in ET.parse(sys.argv[1]).getroot().iter("testcase"):
    name = "aiozk-suite.%s::%s" % (case.get("classname", "").rsplit(".", 1)[-1] + ".py", case.get("name"))
    bad = next(iter(case.findall("failure") + case.findall("error")), None)
    skipped = case.find("skipped")
    if bad is not None:
        print("FAIL %s: %s" % (name, ((bad.get("message") or "failed").splitlines() or ["failed"])[0][:200]))
    elif skipped is not None:
        print("SKIP %s: %s" % (name, skipped.get("message", "")))
    else:
        print("PASS %s" % name)
EOF
echo "aiozk-suite: pytest: $(grep -E '(passed|failed|error).* in [0-9.]+s' "$log" | tail -1 | tr -d '=' | sed 's/^ *//')" \
    "($(($(date +%s) - t0)) s; log: $log)"
