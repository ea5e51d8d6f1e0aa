#!/usr/bin/env bash
# kazoo checks (compat/kazoo_basic.py) against HOST:PORT, in compat/.venv.
#   compat/kazoo.sh HOST:PORT [check-name-prefix...]
set -u
. "$(dirname "$0")/lib.sh"
[ $# -ge 1 ] || { echo "usage: $0 HOST:PORT [check-prefix...]" >&2; exit 2; }
compat_run_dir
if ! compat_ensure_venv; then
    fail kazoo.venv "could not create $COMPAT_VENV with kazoo==$KAZOO_VERSION"
    exit 1
fi
timeout "${KAZOO_SUITE_TIMEOUT:-400}" "$COMPAT_VENV/bin/python" "$COMPAT_DIR/kazoo_basic.py" "$@" \
    2>"$COMPAT_RUN_DIR/kazoo.stderr" | tee "$COMPAT_RUN_DIR/kazoo.stdout" | grep -v '^DONE$'
rc=${PIPESTATUS[0]}
if ! grep -qx DONE "$COMPAT_RUN_DIR/kazoo.stdout"; then
    fail kazoo.complete "kazoo_basic.py did not finish (exit $rc); stderr tail: $(tail -5 "$COMPAT_RUN_DIR/kazoo.stderr" | tr '\n' '|')"
fi
