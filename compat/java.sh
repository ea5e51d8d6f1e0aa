#!/usr/bin/env bash
# Java checks (ZooKeeper 3.8 Java client + Curator 5.4) against HOST:PORT.
#   compat/java.sh HOST:PORT [check-name-prefix...]
# Compiles compat/java/*.java into compat/.build/java when the sources changed.
set -u
. "$(dirname "$0")/lib.sh"

[ $# -ge 1 ] || { echo "usage: $0 HOST:PORT [check-prefix...]" >&2; exit 2; }
SERVER="$1"; shift

cp="$(compat_java_classpath)"
out="$COMPAT_BUILD/java"
stamp="$out/.stamp"
compat_run_dir
mkdir -p "$out"
compat_lock javac
if [ ! -f "$stamp" ] || [ -n "$(find "$COMPAT_DIR/java" -name '*.java' -newer "$stamp")" ]; then
    if ! timeout 300 javac -nowarn -encoding UTF-8 -d "$out" -cp "$cp" "$COMPAT_DIR"/java/*.java >"$COMPAT_RUN_DIR/javac.log" 2>&1; then
        fail java.compile "javac failed: $(head -c 600 "$COMPAT_RUN_DIR/javac.log" | tr '\n' '|')"
        exit 1
    fi
    touch "$stamp"
fi
compat_unlock

log="$COMPAT_RUN_DIR/java.stderr"
timeout "${JAVA_SUITE_TIMEOUT:-600}" java -Xss1m -Xmx256m \
    -Dzookeeper.request.timeout=20000 \
    -Djava.security.auth.login.config="$COMPAT_DIR/jaas-client.conf" \
    -cp "$out:$cp" Compat "$SERVER" "$@" 2>"$log" | tee "$COMPAT_RUN_DIR/java.stdout" | grep -v '^DONE$'
rc=${PIPESTATUS[0]}
if ! grep -qx DONE "$COMPAT_RUN_DIR/java.stdout"; then
    fail java.complete "the check program did not finish (exit $rc); stderr tail: $(grep -v '^SLF4J' "$log" | tail -5 | tr '\n' '|')"
fi
