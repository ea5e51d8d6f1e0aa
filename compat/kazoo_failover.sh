#!/usr/bin/env bash
# kazoo's own tests that stop and restart a server, against an ensemble whose
# members can be stopped and started: the ones compat/kazoo_deselected.txt
# drops for a single server ("Stop cluster[0] ...").
#
#   KAZOO_EXTERNAL_CONTROL="compat/ensemble_ctl.sh WORK" \
#       compat/kazoo_failover.sh FIRST:PORT,SECOND:PORT,THIRD:PORT
#
# The first address is the member the tests stop (cluster[0]); the clients of
# test_update_host_list fail over to the others. compat/against-ensemble.sh
# runs it. Prints PASS/FAIL lines as compat/kazoo_suite.sh does.
#
# With them TestReadOnlyMode, which stops the other two members and expects
# the first to serve its read-only session reads and refuse its writes
# (compat/against-ensemble.sh sets readonlymode.enabled=true); and
# TestReconfig, which changes the membership as the harness's super user
# (the ensemble sets reconfigEnabled=true and superDigest for super:test).
set -u
here="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 1 ] || { echo "usage: KAZOO_EXTERNAL_CONTROL=... $0 HOST:PORT,HOST:PORT,..." >&2; exit 2; }
[ -n "${KAZOO_EXTERNAL_CONTROL:-}" ] || { echo "$0: KAZOO_EXTERNAL_CONTROL is not set" >&2; exit 2; }
none="$(mktemp)"
trap 'rm -f "$none"' EXIT
KAZOO_SUITE_DESELECT="$none" KAZOO_SUITE_TIMEOUT="${KAZOO_SUITE_TIMEOUT:-240}" \
    "$here/kazoo_suite.sh" "$1" -k "test_update_host_list or test_request_queuing_session or TestReadOnlyMode or TestReconfig"
