# Shared helpers for the compat/ runners. Source it: . "$(dirname "$0")/lib.sh"
# Everything here is idempotent and quick when the tools are already present.

COMPAT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COMPAT_BUILD="$COMPAT_DIR/.build"
COMPAT_VENV="$COMPAT_DIR/.venv"
COMPAT_TMP="$COMPAT_DIR/tmp"

KAZOO_VERSION="${KAZOO_VERSION:-2.11.0}"

COMPAT_DEBS="zookeeper zookeeper-bin libcurator-recipes-java libcurator-framework-java libcurator-client-java krb5-kdc krb5-admin-server"

ZK_JAVA_DIR=/usr/share/java
ZK_CLI=/usr/share/zookeeper/bin/zkCli.sh

# Per-run scratch directory. run.sh exports COMPAT_RUN_DIR so its suites share
# one; a suite run alone gets its own. Concurrent runs never share files.
compat_run_dir() {
    if [ -z "${COMPAT_RUN_DIR:-}" ]; then
        mkdir -p "$COMPAT_TMP"
        COMPAT_RUN_DIR="$(mktemp -d "$COMPAT_TMP/run-$(date +%Y%m%d-%H%M%S)-XXXXXX")"
        export COMPAT_RUN_DIR
    fi
    mkdir -p "$COMPAT_RUN_DIR"
}

# Keep only the newest $1 (default 10) run directories.
compat_prune_runs() {
    local keep="${1:-10}"
    # shellcheck disable=SC2012
    ls -1dt "$COMPAT_TMP"/run-* 2>/dev/null | tail -n +"$((keep + 1))" | xargs -r rm -rf
}

# Serialise set-up steps between concurrent runs: compat_lock NAME / compat_unlock.
compat_lock() {
    mkdir -p "$COMPAT_TMP"
    exec 9>"$COMPAT_TMP/$1.lock"
    flock -w 900 9 || true
}
compat_unlock() { exec 9>&-; }

# Install the Debian packages the runners need, if any is missing.
# apt-get update is run only when a plain install fails (stale or empty lists).
compat_ensure_debs() {
    local missing=() p
    for p in $COMPAT_DEBS; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "compat: installing Debian packages: ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 900 $sudo apt-get install -y -q "${missing[@]}" >&2; then
        timeout 600 $sudo apt-get update -q >&2 || true
        timeout 900 $sudo apt-get install -y -q "${missing[@]}" >&2 || {
            echo "compat: apt-get install failed" >&2
            return 1
        }
    fi
}

# Create compat/.venv with a pinned kazoo, if not already there.
compat_ensure_venv() {
    compat_lock venv
    _compat_ensure_venv
    local rc=$?
    compat_unlock
    return $rc
}

_compat_ensure_venv() {
    if [ -x "$COMPAT_VENV/bin/python" ] &&
        "$COMPAT_VENV/bin/python" -c "import kazoo, sys; from importlib.metadata import version; sys.exit(version('kazoo') != '$KAZOO_VERSION')" 2>/dev/null; then
        return 0
    fi
    echo "compat: creating $COMPAT_VENV with kazoo==$KAZOO_VERSION" >&2
    local py
    py="$(command -v python3.11 || command -v python3)"
    rm -rf "$COMPAT_VENV"
    "$py" -m venv "$COMPAT_VENV" >&2 || {
        # Debian's python3 needs python3-venv for ensurepip.
        rm -rf "$COMPAT_VENV"
        compat_apt_install python3-venv && "$py" -m venv "$COMPAT_VENV" >&2
    } || return 1
    timeout 600 "$COMPAT_VENV/bin/pip" install -q --disable-pip-version-check "kazoo==$KAZOO_VERSION" >&2
}

# Add what kazoo's own test suite needs (compat/kazoo_suite_requirements.txt,
# pinned, wheels only) to compat/.venv; a stamp in the venv records the
# installed list. pyjks goes in without its dependencies: they are in the
# requirements file except twofish, a C extension without wheels that
# kazoo.testing.common never reaches (pyjks imports it lazily). pure-sasl
# (kazoo's SASL library; without it test_sasl.py skips) has no dependencies
# and no wheel, only a pure-Python sdist, so it goes in here too.
KAZOO_SUITE_NODEPS="pyjks==20.0.0 pure-sasl==0.6.2"
compat_ensure_kazoo_suite_deps() {
    compat_pip_requirements "$COMPAT_DIR/kazoo_suite_requirements.txt" kazoo-suite "$KAZOO_SUITE_NODEPS"
}

# Add what aiozk's shipped test suite needs (compat/aiozk_suite_requirements.txt:
# aiozk itself and pytest-asyncio, on top of kazoo-suite's pytest) to compat/.venv.
compat_ensure_aiozk_suite_deps() {
    compat_ensure_kazoo_suite_deps || return 1
    compat_pip_requirements "$COMPAT_DIR/aiozk_suite_requirements.txt" aiozk-suite ""
}

# compat_shipped_tests NAME ENSURE MODULE: for a client's shipped pytest
# suite, runs ENSURE (the lib.sh function installing its requirements) and sets
# `py` (the venv's python) and `tests` (MODULE's directory). On failure prints
# NAME's FAIL line and returns 1.
compat_shipped_tests() {
    if ! "$2"; then
        fail "$1.venv" "could not install its requirements into $COMPAT_VENV"
        return 1
    fi
    py="$COMPAT_VENV/bin/python"
    tests="$("$py" -c "import os, $3; print(os.path.dirname($3.__file__))")" || {
        fail "$1.tests" "$3 is not importable from $COMPAT_VENV"
        return 1
    }
}

# compat_pip_requirements FILE NAME "NODEPS...": installs FILE's pinned wheels
# (and NODEPS without their dependencies) into compat/.venv, unless the stamp
# .NAME-requirements there says that exact list is in already.
compat_pip_requirements() {
    local req="$1" stamp="$COMPAT_VENV/.$2-requirements" nodeps="$3" rc=0
    compat_ensure_venv || return 1
    compat_lock venv
    if ! { cat "$req"; echo "# --no-deps $nodeps"; } | cmp -s - "$stamp"; then
        echo "compat: installing $(basename "$req") into $COMPAT_VENV" >&2
        if timeout 900 "$COMPAT_VENV/bin/pip" install -q --disable-pip-version-check --only-binary :all: -r "$req" >&2 &&
            { [ -z "$nodeps" ] || timeout 300 "$COMPAT_VENV/bin/pip" install -q --disable-pip-version-check --no-deps $nodeps >&2; }; then
            { cat "$req"; echo "# --no-deps $nodeps"; } >"$stamp"
        else
            rc=1
        fi
    fi
    compat_unlock
    return $rc
}

# node and npm (Debian: nodejs, npm), and compat/node's pinned packages
# (package-lock.json) in compat/node/node_modules, installed by `npm ci` once
# per version of the lock file (a copy of it in node_modules is the stamp).
compat_ensure_node() {
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
        echo "compat: installing nodejs and npm" >&2
        compat_apt_install nodejs npm || return 1
    fi
    compat_lock node
    local dir="$COMPAT_DIR/node" rc=0
    if ! cmp -s "$dir/package-lock.json" "$dir/node_modules/.compat-lock"; then
        echo "compat: npm ci in $dir" >&2
        if (cd "$dir" && timeout 600 npm ci --no-audit --no-fund --loglevel=error >&2); then
            cp "$dir/package-lock.json" "$dir/node_modules/.compat-lock"
        else
            rc=1
        fi
    fi
    compat_unlock
    return $rc
}

compat_apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    timeout 900 apt-get install -y -q "$@" >&2 || {
        timeout 600 apt-get update -q >&2 || true
        timeout 900 apt-get install -y -q "$@" >&2
    }
}

# Java client classpath: ZooKeeper client + Curator + their runtime deps, no
# logging binding (slf4j falls back to NOP) unless COMPAT_JAVA_LOG=1.
compat_java_classpath() {
    local j cp=""
    for j in zookeeper zookeeper-jute curator-client curator-framework curator-recipes \
        guava slf4j-api netty-buffer netty-codec netty-common netty-handler netty-resolver \
        netty-transport netty-transport-native-epoll netty-transport-native-unix-common \
        commons-io commons-cli metrics-core snappy-java jackson-databind jackson-core jackson-annotations; do
        [ -e "$ZK_JAVA_DIR/$j.jar" ] && cp="$cp:$ZK_JAVA_DIR/$j.jar"
    done
    if [ "${COMPAT_JAVA_LOG:-0}" = 1 ]; then
        cp="$cp:$ZK_JAVA_DIR/slf4j-simple.jar"
    fi
    echo "${cp#:}"
}

# Split HOST:PORT (HOST may be a bracketed IPv6 literal).
# compat_free_ports N: N distinct free ports on 127.0.0.1, one per line
# (all held open while they are picked, so none repeats).
compat_free_ports() {
    python3 -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
for s in socks: print(s.getsockname()[1])
' "$1"
}

compat_host() { local a="$1"; echo "${a%:*}" | tr -d '[]'; }
compat_port() { local a="$1"; echo "${a##*:}"; }

# Send a four-letter word and print the answer (bounded).
compat_4lw() {
    local host port
    host="$(compat_host "$1")"
    port="$(compat_port "$1")"
    timeout 5 bash -c 'exec 3<>"/dev/tcp/$0/$1" || exit 1; printf %s "$2" >&3; cat <&3' "$host" "$port" "$2" 2>/dev/null
}

# compat_member WORK ID CLIENT_PORT SERVERS [SETTING...]: an ensemble
# member's files as a ZooKeeper operator writes them: WORK/nID (its data
# directory, holding myid) and WORK/zooID.cfg, with SERVERS (the server.N
# lines) and each SETTING as one more line.
compat_member() {
    local work="$1" id="$2" port="$3" servers="$4"
    shift 4
    mkdir -p "$work/n$id"
    echo "$id" >"$work/n$id/myid"
    {
        printf 'tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir=%s\nclientPort=%s\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n' \
            "$work/n$id" "$port"
        if [ $# -gt 0 ]; then printf '%s\n' "$@"; fi
        printf %s "$servers"
    } >"$work/zoo$id.cfg"
}

# Per-check output helpers; each suite prints PASS/FAIL lines only.
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; }

# compat_paddock_bin: prints the release paddock binary to test
# (PADDOCK_BIN overrides); fails, saying how to build it, if there is none.
compat_paddock_bin() {
    local bin="${PADDOCK_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/paddock/target}/release/paddock}"
    [[ -x "$bin" ]] || { echo "no paddock binary at $bin (run: cargo build --release)" >&2; return 2; }
    echo "$bin"
}
