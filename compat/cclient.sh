#!/usr/bin/env bash
# The ZooKeeper C client (Debian zookeeper-bin: cli_mt, load_gen, on
# libzookeeper-mt2) against HOST:PORT.
#
# cli_mt reads commands on stdin and runs them asynchronously on one session,
# so replies arrive in request order; it prints everything on stderr. A
# session ends with a sentinel request; we wait for its reply before "quit".
# Note cli_mt's `create` always stores the 3 bytes "new" and takes the rest of
# the line as the path; data is written with `set`.
set -u
trap "" PIPE
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 HOST:PORT" >&2; exit 2; }
SERVER="$1"
CLI_MT=/usr/lib/zookeeper/bin/cli_mt
LOAD_GEN=/usr/lib/zookeeper/bin/load_gen
R="/compat-c-$$"
T=$'\t'

compat_run_dir
work="$COMPAT_RUN_DIR/cclient"
rm -rf "$work"
mkdir -p "$work"

for tool in "$CLI_MT" "$LOAD_GEN"; do
    if [ ! -x "$tool" ]; then
        fail "c.tools" "$tool missing (zookeeper-bin not installed?)"
        exit 0
    fi
done

# cli_session NAME COMMANDS WAIT_LINE: run COMMANDS, wait (<= 30 s) for WAIT_LINE, quit.
cli_session() {
    local name="$1" cmds="$2" wait_line="$3" pid i
    local out="$work/$name.out"
    mkfifo "$work/$name.in"
    timeout 60 stdbuf -oL -eL "$CLI_MT" "$SERVER" <"$work/$name.in" >"$out" 2>&1 &
    pid=$!
    exec 3>"$work/$name.in"
    printf '%s\n' "$cmds" >&3
    for i in $(seq 1 300); do
        grep -qF -- "$wait_line" "$out" && break
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    echo quit >&3 2>/dev/null
    exec 3>&-
    wait "$pid" 2>/dev/null
    grep -qF -- "$wait_line" "$out"
}

# has_line NAME FILE TEXT...: every TEXT occurs in the output. Not whole-line
# matches: cli_mt prints from two threads, so lines can run into each other.
has_line() {
    local name="$1" file="$2" l
    shift 2
    for l in "$@"; do
        if ! grep -qF -- "$l" "$file"; then
            fail "$name" "no line '$(printf %q "$l")' in cli_mt output ($(grep -v -e '^Creating \[' -e '^time = ' "$file" | head -c 400 | tr '\n\t' '| '))"
            return
        fi
    done
    pass "$name"
}

# ---- session 1 -------------------------------------------------------------
s1="create $R
create +e $R/eph
create +s $R/seq-
create +s $R/seq-
create $R
set $R hello
get $R
ls $R
exists $R/nope
get $R/nope
delete $R
delete $R/seq-0000000001
wexists $R/w
create $R/w
create2 $R/c2
create $R/done"
if cli_session s1 "$s1" "[$R/done]: rc = 0"; then pass c.cli_mt_session; else fail c.cli_mt_session "no reply to the sentinel create within 30 s"; fi
o="$work/s1.out"
has_line c.connect "$o" "Watcher SESSION_EVENT state = CONNECTED_STATE"
if grep -Eq '^Got a new session id: 0x[0-9a-f]+$' "$o"; then pass c.session_id; else fail c.session_id "no 'Got a new session id' line"; fi
has_line c.create "$o" "[$R]: rc = 0" "${T}name = $R"
has_line c.create_ephemeral "$o" "[$R/eph]: rc = 0" "${T}name = $R/eph"
has_line c.create_sequential "$o" "${T}name = $R/seq-0000000001" "${T}name = $R/seq-0000000002"
has_line c.create_existing "$o" "[$R]: rc = -110"
if grep -A8 -F "$R: rc = 0 Stat:" "$o" | grep -qF "${T}version=1${T}aversion=0"; then pass c.set; else fail c.set "no '$R: rc = 0 Stat:' block with version=1"; fi
# cli_mt prints from two threads, so another command's output may land
# between the length and the value, or on the value's line.
if grep -A3 -F ' value_len = 5' "$o" | grep -qF hello; then pass c.get; else fail c.get "no value_len = 5 / hello"; fi
kids="$(grep -E "^${T}[^ =]+\$" "$o" | tr -d '\t' | sort | tr '\n' ' ')"
if [ "$kids" == "eph seq-0000000001 seq-0000000002 " ]; then pass c.ls; else fail c.ls "children '$kids'"; fi
if grep -qF -- "Error -101 for $R/nope" "$o"; then pass c.exists_missing; else fail c.exists_missing "no 'Error -101 for $R/nope'"; fi
has_line c.get_missing "$o" "$R/nope: rc = -101"
has_line c.delete_not_empty "$o" "$R: rc = -111"
has_line c.delete "$o" "$R/seq-0000000001: rc = 0"
has_line c.watch_created "$o" "Watcher CREATED_EVENT state = CONNECTED_STATE for path $R/w"
if grep -A8 -F "[$R/c2]: rc = 0" "$o" | grep -qF "${T}version=0${T}aversion=0"; then pass c.create2_stat; else fail c.create2_stat "no create2 reply with a stat"; fi
# replies come back in request order: the sentinel is the last reply line
last="$(grep -E '^\[|: rc = ' "$o" | tail -1)"
if [[ "$last" == *"[$R/done]: rc = 0" ]]; then pass c.reply_order; else fail c.reply_order "last reply '$last'"; fi

if ! grep -qF "Watcher SESSION_EVENT state = CONNECTED_STATE" "$o"; then
    # the server cannot be reached: fail the rest fast
    for n in c.ephemeral_gone_after_quit c.cleanup c.load_gen c.load_gen_clean; do
        fail "$n" "skipped: cli_mt never connected to $SERVER"
    done
    exit 0
fi

# ---- session 2: ephemeral gone, then clean up -------------------------------
s2="ls $R
create $R-load
delete $R/seq-0000000002
delete $R/w
delete $R/c2
delete $R/done
delete $R
exists $R"
cli_session s2 "$s2" "Error -101 for $R" || true
o="$work/s2.out"
kids="$(grep -E "^${T}[^ =]+\$" "$o" | tr -d '\t' | sort | tr '\n' ' ')"
if [ "$kids" == "c2 done seq-0000000002 w " ]; then pass c.ephemeral_gone_after_quit; else fail c.ephemeral_gone_after_quit "children '$kids'"; fi
has_line c.cleanup "$o" "$R: rc = 0" "Error -101 for $R"

# ---- load_gen: create/set/get/delete cycles for a few seconds, then clean ------
secs="${LOAD_GEN_SECONDS:-4}"
timeout -s INT "$secs" "$LOAD_GEN" "$SERVER" "$R-load" 20 >"$work/load.out" 2>&1
cycles="$(grep -c 'Starting the delete cycle' "$work/load.out")"
errs="$(grep -E 'Invalid read|Failed|ZOO_ERROR' "$work/load.out" | head -3 | tr '\n' '|')"
if [ "$cycles" -ge 3 ] && [ -z "$errs" ]; then
    pass c.load_gen
else
    fail c.load_gen "$cycles full cycles in ${secs} s; errors: ${errs:-none}"
fi
echo "c.load_gen: $cycles create/set/get/delete cycles of 20 znodes in ${secs} s" >&2
timeout 30 "$LOAD_GEN" "$SERVER" "$R-load" clean >"$work/clean.out" 2>&1
if grep -Eq "Successfully deleted a subtree starting at $R-load \\([0-9]+ nodes\\)" "$work/clean.out"; then
    pass c.load_gen_clean
else
    fail c.load_gen_clean "$(grep -E 'ZOO_ERROR|Failed|Success' "$work/clean.out" | head -2 | tr '\n' '|')"
fi
