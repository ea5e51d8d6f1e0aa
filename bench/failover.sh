#!/usr/bin/env bash
# Leader failover side by side: paddock and the real ZooKeeper 3.8 (Debian
# package), each a 3-node ensemble at zoo.cfg defaults; kill -9 (or SIGTERM) the leader,
# time the next successful write through a survivor (kazoo). Writes
# docs/failover.md.
#
#   bench/failover.sh [--rounds N] [--tick-times "2000 1000"] [--signals "KILL TERM"] [--out FILE]
#                       # a few seconds per round, tickTime and signal (about two minutes)
#
# Environment: PADDOCK_BIN (default $CARGO_TARGET_DIR/release/paddock, built
# with cargo build --release). Traffic stays on 127.0.0.1; every process
# started is stopped by its PID.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/paddock/target}"
. "$repo/compat/lib.sh"

PADDOCK_BIN="${PADDOCK_BIN:-$CARGO_TARGET_DIR/release/paddock}"
[ -x "$PADDOCK_BIN" ] || { echo "no paddock binary at $PADDOCK_BIN: run make build" >&2; exit 1; }
compat_ensure_debs
compat_ensure_venv
exec "$COMPAT_VENV/bin/python" "$here/failover.py" --paddock-bin "$PADDOCK_BIN" "$@"
