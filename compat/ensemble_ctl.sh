#!/usr/bin/env bash
# Starts and stops one member of the throwaway ensemble that
# compat/against-ensemble.sh lays out in WORK:
#
#   compat/ensemble_ctl.sh WORK start ID|HOST:PORT   start it, wait until it serves
#   compat/ensemble_ctl.sh WORK spawn ID|HOST:PORT   start it, do not wait (a first
#                                                    member serves only with a quorum)
#   compat/ensemble_ctl.sh WORK stop  ID|HOST:PORT   SIGTERM, then SIGKILL after 5 s
#
# WORK holds zoo<ID>.cfg, n<ID>/ (dataDir with myid), n<ID>.addr (its client
# address) and bin (the paddock binary's path). The member's PID is kept in
# n<ID>.pid, which against-ensemble.sh's exit trap reads to stop it by PID.
# The server runs in its own session (setsid), so this script returns at
# once and no job-control or timeout process group takes the server with it.
# kazoo's failover tests call this through KAZOO_EXTERNAL_CONTROL.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
[ $# -eq 3 ] || { echo "usage: $0 WORK start|spawn|stop ID|HOST:PORT" >&2; exit 2; }
work="$1" action="$2" who="$3"

id=""
for f in "$work"/n*.addr; do
    n="$(basename "$f" .addr)"
    n="${n#n}"
    [[ "$who" == "$n" || "$who" == "$(cat "$f")" ]] && id="$n"
done
[ -n "$id" ] || { echo "$0: no member $who in $work" >&2; exit 2; }
pidfile="$work/n$id.pid"

alive() { [ -n "$1" ] && [ -e "/proc/$1" ] && ! grep -q '^[^)]*) Z' "/proc/$1/stat" 2>/dev/null; }

case "$action" in
start | spawn)
    if alive "$(cat "$pidfile" 2>/dev/null || true)"; then
        echo "$0: member $id already runs" >&2
        exit 1
    fi
    setsid "$(cat "$work/bin")" --config "$work/zoo$id.cfg" >>"$work/n$id.stdout" 2>>"$work/n$id.stderr" </dev/null &
    echo $! >"$pidfile"
    [ "$action" = spawn ] && exit 0
    addr="$(cat "$work/n$id.addr")"
    deadline=$((SECONDS + 30))
    while [ $SECONDS -lt $deadline ]; do
        case "$(compat_4lw "$addr" srvr | sed -n 's/^Mode: //p')" in
        leader | follower) exit 0 ;;
        esac
        alive "$(cat "$pidfile")" || { echo "$0: member $id exited: $(tail -3 "$work/n$id.stderr")" >&2; exit 1; }
        sleep 0.1
    done
    echo "$0: member $id does not serve 30 s after starting" >&2
    exit 1
    ;;
stop)
    pid="$(cat "$pidfile" 2>/dev/null || true)"
    alive "$pid" || exit 0
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || exit 0; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    ;;
*)
    echo "usage: $0 WORK start|spawn|stop ID|HOST:PORT" >&2
    exit 2
    ;;
esac
