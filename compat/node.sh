#!/usr/bin/env bash
# node-zookeeper-client (npm; a JavaScript client written from the protocol)
# against HOST:PORT: compat/node/check.js.
#   compat/node.sh HOST:PORT
set -u
. "$(dirname "$0")/lib.sh"
[ $# -eq 1 ] || { echo "usage: $0 HOST:PORT" >&2; exit 2; }
compat_run_dir
if ! compat_ensure_node; then
    fail node.setup "could not install node, npm or compat/node's packages"
    exit 1
fi
cd "$COMPAT_DIR/node" || exit 1
timeout 300 node check.js "$1" 2>"$COMPAT_RUN_DIR/node.stderr"
rc=$?
[ $rc -eq 124 ] && fail node.complete "check.js did not finish in 300 s"
exit $rc
