#!/usr/bin/env bash
# Starts a fresh paddock (release build) on a free port with a throwaway data
# dir, runs compat/run.sh against it, and stops it by PID.
# Its zoo.cfg sets a 1 s container/TTL sweep (znode.container.checkIntervalMs,
# default 60 s; PADDOCK_CONTAINER_CHECK_MS overrides) so the TTL and container
# checks see nodes vanish within seconds, as compat/zookeeper.sh does for the
# reference ZooKeeper. It also names compat/jaas-server.conf as the JAAS file
# (jaasLoginConfig) for the SASL DIGEST-MD5 checks, as compat/zookeeper.sh
# does for ZooKeeper. And a TLS client port (--secure-port 0) with
# compat/tls/'s test certificates, for the tls suite.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="$(compat_paddock_bin)" || exit 2

work="$(mktemp -d)"
pid=""
cleanup() {
  [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# maxClientCnxns=0 as compat/zookeeper.sh gives ZooKeeper: kazoo's own suite
# leaves more than the default 60 connections open at times.
printf 'znode.container.checkIntervalMs=%s\njaasLoginConfig=%s\nmaxClientCnxns=0\n' \
  "${PADDOCK_CONTAINER_CHECK_MS:-1000}" "$here/jaas-server.conf" >"$work/zoo.cfg"
printf 'ssl.keyStore.location=%s\nssl.keyStore.type=PEM\nssl.trustStore.location=%s\nssl.trustStore.type=PEM\n' \
  "$here/tls/server.pem" "$here/tls/ca.pem" >>"$work/zoo.cfg"
"$bin" --bind 127.0.0.1 --config "$work/zoo.cfg" --port 0 --secure-port 0 --admin-port 0 --data-dir "$work/data" >"$work/stdout" 2>"$work/stderr" &
pid=$!
addr=""
for _ in $(seq 1 300); do
  addr="$(sed -n 's/^paddock listening on //p' "$work/stdout" | head -1)"
  [[ -n "$addr" ]] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
  sleep 0.1
done
[[ -n "$addr" ]] || { echo "paddock did not start" >&2; exit 1; }
secure="$(sed -n 's/^paddock secure client port listening on //p' "$work/stdout" | head -1)"
echo "paddock (pid $pid) on $addr, TLS on $secure"
COMPAT_TLS_SERVER="$secure" "$here/run.sh" "$addr"
