#!/usr/bin/env bash
# TLS on the secure client port (secureClientPort) with real clients: kazoo
# (use_ssl), a Python TLS socket (a four-letter word) and ZooKeeper's CLI through
# the Java client's Netty TLS, all with compat/tls/'s test CA and certificates.
#
#   COMPAT_TLS_SERVER=HOST:SECUREPORT compat/tls.sh HOST:PORT
#
# The server must present compat/tls/server.pem and require client
# certificates signed by compat/tls/ca.pem (ZooKeeper's ssl.clientAuth=need).
set -u
trap "" PIPE
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: COMPAT_TLS_SERVER=HOST:SECUREPORT $0 HOST:PORT" >&2; exit 2; }
SERVER="$1"
SECURE="${COMPAT_TLS_SERVER:-}"
TLS="$COMPAT_DIR/tls"
if [ -z "$SECURE" ]; then
    fail tls.setup "COMPAT_TLS_SERVER names no secure client port"
    exit 0
fi
compat_run_dir
work="$COMPAT_RUN_DIR/tls"
mkdir -p "$work"

timeout 400 "$COMPAT_DIR/.venv/bin/python" "$COMPAT_DIR/tls_checks.py" "$SERVER" "$SECURE" "$TLS" 2>"$work/kazoo.stderr" ||
    fail tls.kazoo "tls_checks.py exited $?: $(tail -3 "$work/kazoo.stderr" | tr '\n' '|')"

# ZooKeeper's own CLI (ZooKeeperMain, as zkCli.sh runs it) over TLS: the Java
# client's Netty socket with PEM key and trust stores. zkCli.sh itself is not
# used: Debian's classpath for it lacks netty-handler, which TLS needs.
node="/compat-tls-cli-$$"
printf 'create %s "java over tls"\nget %s\nwhoami\ncreate %s/mine x auth::cdrwa\ngetAcl %s/mine\ndelete %s/mine\ndelete %s\nquit\n' \
    "$node" "$node" "$node" "$node" "$node" "$node" |
    timeout 60 java -cp "$(compat_java_classpath)" \
        -Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty \
        -Dzookeeper.client.secure=true \
        -Dzookeeper.ssl.keyStore.location="$TLS/client.pem" -Dzookeeper.ssl.keyStore.type=PEM \
        -Dzookeeper.ssl.trustStore.location="$TLS/ca.pem" -Dzookeeper.ssl.trustStore.type=PEM \
        org.apache.zookeeper.ZooKeeperMain -server "$SECURE" >"$work/java.out" 2>&1
if grep -q "^Created $node" "$work/java.out" && grep -q "^java over tls$" "$work/java.out"; then
    pass tls.java_cli
else
    fail tls.java_cli "no create/get round trip: $(grep -v '^\s*at ' "$work/java.out" | tail -4 | tr '\n' '|')"
fi
# The client certificate's subject is the session's x509 identity (RFC 2253,
# as ZooKeeper's X509AuthenticationProvider names it), and an `auth` ACL set
# over TLS grants that identity.
if grep -q "^x509: CN=paddock-test-client,O=paddock$" "$work/java.out" &&
    grep -q "^'x509,'CN=paddock-test-client%2CO=paddock$" "$work/java.out"; then
    pass tls.x509_identity
else
    fail tls.x509_identity "whoami/getAcl: $(grep -E "^(x509|ip|'|Auth)" "$work/java.out" | tr '\n' '|')"
fi
