#!/usr/bin/env bash
# zkCli.sh (ZooKeeper 3.8's own CLI) against HOST:PORT.
#
# The Debian package ships no jline, so zkCli.sh reads commands from stdin,
# one per line, and runs them in order in one session. To tell the outputs of
# the commands apart, every command is followed by a marker command
# (`ls /<root>-mark-<label>`) whose "Node does not exist" line closes that
# command's output. stdout and stderr are merged: zkCli prints some results
# ("Created /x") on stderr and others (data, stat) on stdout.
set -u
. "$(dirname "$0")/lib.sh"

[ $# -eq 1 ] || { echo "usage: $0 HOST:PORT" >&2; exit 2; }
SERVER="$1"
ROOT="/compat-zkcli-$$"
MARK="$ROOT-mark-"
SESSION_TIMEOUT="${ZKCLI_TIMEOUT:-60}"

compat_run_dir
work="$COMPAT_RUN_DIR/zkcli"
rm -rf "$work"
mkdir -p "$work"

zkcli() {
    timeout "$SESSION_TIMEOUT" "$ZK_CLI" -server "$SERVER" "$@" 2>&1 | grep -v '^SLF4J:'
    return "${PIPESTATUS[0]}"
}

# zkCli's event thread prints each event as two lines of their own,
# "\nWATCHER::" and "\nWatchedEvent ...", while the main thread prints an
# answer piece by piece, so an event can land inside one of its lines
# ("[config" WATCHER:: ... ", quota]"). This takes the event lines out of
# zkCli's output wherever they landed, joining what they split.
without_events() {
    sed -z 's/\nWATCHER::\n//g; s/\nWatchedEvent [^\n]*\n//g'
}

# --- script building -------------------------------------------------------
script=""
step() { # step LABEL COMMAND
    script+="$2"$'\n'"ls $MARK$1"$'\n'
}

# Run the built script in one zkCli session; split output into $work/<session>/<label>.
run_session() { # run_session NAME
    local name="$1"
    mkdir -p "$work/$name"
    printf '%squit\n' "$script" | zkcli >"$work/$name.raw"
    grep '^WatchedEvent ' "$work/$name.raw" >"$work/$name/_events"
    without_events <"$work/$name.raw" | awk -v dir="$work/$name" -v mark="Node does not exist: $MARK" '
        /^$/ { next }
        index($0, mark) == 1 {
            label = substr($0, length(mark) + 1)
            printf "%s", buf > (dir "/" label); close(dir "/" label)
            buf = ""; next
        }
        { buf = buf $0 "\n" }
        END { printf "%s", buf > (dir "/_tail") }
    '
    script=""
}

# --- assertions ---------------------------------------------------------------
S=s1
out() { cat "$work/$S/$1" 2>/dev/null; }
has() { [ -f "$work/$S/$1" ]; }
show() { out "$1" | head -c 300 | tr '\n' '|'; }

# check_exact NAME LABEL EXPECTED  -- whole output (possibly empty) equals EXPECTED
check_exact() {
    if ! has "$2"; then fail "$1" "no output section for '$2' (session died?)"; return; fi
    local got; got="$(out "$2")"
    if [ "$got" == "$3" ]; then pass "$1"; else fail "$1" "expected '$3', got '$(show "$2")'"; fi
}
# check_line NAME LABEL LINE  -- output contains exactly this line
check_line() {
    if ! has "$2"; then fail "$1" "no output section for '$2' (session died?)"; return; fi
    if out "$2" | grep -qxF -- "$3"; then pass "$1"; else fail "$1" "expected line '$3', got '$(show "$2")'"; fi
}
# check_list NAME LABEL "a b c"  -- first line is a [x, y] list with these names (any order)
check_list() {
    if ! has "$2"; then fail "$1" "no output section for '$2' (session died?)"; return; fi
    local got want
    got="$(out "$2" | head -1 | tr -d '[]' | tr ',' '\n' | tr -d ' ' | grep -v '^$' | sort | tr '\n' ' ')"
    want="$(echo "$3" | tr ' ' '\n' | grep -v '^$' | sort | tr '\n' ' ')"
    if [ "$got" == "$want" ]; then pass "$1"; else fail "$1" "expected children [$want], got '$(show "$2")'"; fi
}
# check_paths NAME LABEL "p1 p2"  -- first line is a [p1, p2] list of exactly these (any order)
check_paths() { check_list "$@"; }
# check_whoami NAME LABEL "digest: user1"...  -- whoami lists "Auth scheme: User", an "ip: ADDR"
# line and exactly the given extra lines, in any order (ZooKeeper's order is a hash order)
check_whoami() {
    local name="$1" label="$2"; shift 2
    if ! has "$label"; then fail "$name" "no output section for '$label' (session died?)"; return; fi
    local got want l
    got="$(out "$label" | sed -E 's/^ip: [0-9a-fA-F.:]+$/ip: ADDR/' | sort)"
    want="$( { echo "Auth scheme: User"; echo "ip: ADDR"; for l in "$@"; do echo "$l"; done; } | sort)"
    if [ "$got" == "$want" ]; then pass "$name"; else fail "$name" "expected lines '$(echo "$want" | tr '\n' '|')' (any order), got '$(show "$label")'"; fi
}
# Watch events of a session, "TYPE PATH" per line in arrival order, for paths under $2
events_under() { # events_under SESSION PREFIX
    sed -n 's/^WatchedEvent state:SyncConnected type:\([A-Za-z]*\) path:\(.*\)$/\1 \2/p' "$work/$1/_events" 2>/dev/null |
        awk -v p="$2" '{ if ($2 == p || index($2, p "/") == 1) print }'
}
# check_events NAME SESSION PREFIX EXPECTED  -- the events under PREFIX are exactly EXPECTED (in order)
check_events() {
    local got; got="$(events_under "$2" "$3")"
    if [ "$got" == "$4" ]; then pass "$1"; else fail "$1" "expected events '$(echo "$4" | tr '\n' '|')', got '$(echo "$got" | tr '\n' '|')'"; fi
}
stat_field() { out "$1" | sed -n "s/^$2 = //p" | head -1; }
# check_stat NAME LABEL FIELD VALUE
check_stat() {
    if ! has "$2"; then fail "$1" "no output section for '$2' (session died?)"; return; fi
    local v; v="$(stat_field "$2" "$3")"
    if [ "$v" == "$4" ]; then pass "$1"; else fail "$1" "expected $3 = $4, got '${v}' in '$(show "$2")'"; fi
}

# --- session 1 -----------------------------------------------------------------
R="$ROOT"
step start ""
step create_root "create $R rootdata"
step create_dup "create $R again"
step create_child "create $R/child \"hello world\""
step get_child "get $R/child"
step create_nodata "create $R/nodata"
step get_nodata "get $R/nodata"
step create_eph "create -e $R/eph ephdata"
step stat_eph "stat $R/eph"
step create_eph_child "create $R/eph/c"
step create_noparent "create $R/a/b"
step create_badpath "create $R/trailing/"
step create_seqparent "create $R/seq"
step create_seq1 "create -s $R/seq/n- a"
step create_plain "create $R/seq/x"
step delete_plain "delete $R/seq/x"
step create_seq2 "create -s $R/seq/n- b"
step ls_seq "ls $R/seq"
step ls_s_seq "ls -s $R/seq"
step ls_root "ls $R"
step ls_s_root "ls -s $R"
step get_root "get $R"
step get_s_root "get -s $R"
step set_root "set $R v1"
step set_v_ok "set -v 1 $R v2"
step set_v_bad "set -v 7 $R bad"
step get_after_set "get $R"
step stat_root "stat $R"
step stat_missing "stat $R/missing"
step delete_nonempty "delete $R"
step delete_missing "delete $R/missing"
step delete_badversion "delete -v 5 $R/child"
step delete_child "delete -v 0 $R/child"
step get_deleted "get $R/child"
step tree1 "create $R/tree"
step tree2 "create $R/tree/a x"
step tree3 "create $R/tree/a/b y"
step tree4 "create $R/tree/c"
step ls_r_tree "ls -R $R/tree"
step children_number "getAllChildrenNumber $R/tree"
step deleteall "deleteall $R/tree"
step ls_deleted_tree "ls $R/tree"
step getacl "getAcl $R"
step ro_create "create $R/ro x"
step ro_setacl "setAcl $R/ro world:anyone:r"
step ro_getacl "getAcl $R/ro"
step ro_set "set $R/ro y"
step ro_get "get $R/ro"
step ro_delete "delete $R/ro"
step container "create -c $R/con"
step stat_container "stat $R/con"
step ttl "create -t 600000 $R/ttl tdata"
step stat_ttl "stat $R/ttl"
step sync "sync $R"
step ls_zookeeper "ls /zookeeper"
step stat_zookeeper "stat /zookeeper"
step ls_slash "ls /"
# who am I, ephemerals of this session
step whoami_anon "whoami"
step ephs "create $R/ephs"
step ephs_a "create -e $R/ephs/a"
step ephs_b "create -e -s $R/ephs/b- x"
step getephemerals_dir "getEphemerals $R/ephs"
step getephemerals_root "getEphemerals $R"
step getephemerals_prefix "getEphemerals $R/ep"
step getephemerals_all "getEphemerals"
step getephemerals_none "getEphemerals $R/seq"
# persistent watches: recursive on $R/w, plain persistent on $R/p, then removed
step w "create $R/w"
step p "create $R/p"
step addwatch_rec "addWatch $R/w"
step addwatch_pers "addWatch -m PERSISTENT $R/p"
step w1 "create $R/w/a"
step w2 "create $R/w/a/b"
step w3 "set $R/w/a/b 1"
step w4 "set $R/w/a/b 2"
step w5 "delete $R/w/a/b"
step w6 "set $R/w top"
step p1 "create $R/p/k"
step p2 "create $R/p/k/g"
step p3 "set $R/p/k kd"
step p4 "set $R/p v1"
step p5 "set $R/p v2"
step removewatches_rec "removewatches $R/w"
step removewatches_pers "removewatches $R/p"
step removewatches_none "removewatches $R/w"
step w7 "create $R/w/after"
step p6 "set $R/p v3"
# digest auth: addauth, an auth:: ACL, whoami
step auth_create "create $R/auth secret"
step addauth "addauth digest user1:pass1"
step whoami_auth "whoami"
step auth_setacl "setAcl $R/auth auth::cdrwa"
step auth_getacl "getAcl $R/auth"
step auth_get "get $R/auth"
# ZooKeeper takes digest credentials without a colon (the whole text is the
# user) and an ip auth (it adds the connection's own address, held already)
step addauth_nocolon "addauth digest blah"
step addauth_ip "addauth ip 10.1.2.3"
step whoami_nocolon "whoami"
# quotas: the server keeps the usage that listquota shows
step q_root "create $R/qt abc"
step q_child "create $R/qt/a 12345"
step setquota "setquota -n 10 $R/qt"
step listquota_set "listquota $R/qt"
step q_create "create $R/qt/b xy"
step q_set "set $R/qt/a 1"
step q_delete "delete $R/qt/b"
step listquota_after "listquota $R/qt"
step delquota "delquota $R/qt"
step listquota_gone "listquota $R/qt"
run_session s1
S=s1

if grep -q 'state:SyncConnected' "$work/s1/_events" 2>/dev/null; then pass "zkcli.connect"; else fail "zkcli.connect" "no SyncConnected event: $(head -c 300 "$work/s1.raw" | tr '\n' '|')"; fi
check_exact zkcli.create "create_root" "Created $R"
check_exact zkcli.create_existing "create_dup" "Node already exists: $R"
check_exact zkcli.create_quoted_data "create_child" "Created $R/child"
check_exact zkcli.get_quoted_data "get_child" "hello world"
check_exact zkcli.create_without_data "create_nodata" "Created $R/nodata"
check_exact zkcli.get_null_data "get_nodata" "null"
check_exact zkcli.create_ephemeral "create_eph" "Created $R/eph"
eo="$(stat_field stat_eph ephemeralOwner)"
if [ -n "$eo" ] && [ "$eo" != "0x0" ]; then pass zkcli.ephemeral_owner; else fail zkcli.ephemeral_owner "ephemeralOwner '$eo' in '$(show stat_eph)'"; fi
check_exact zkcli.ephemeral_no_children "create_eph_child" "Ephemerals cannot have children: $R/eph/c"
check_exact zkcli.create_no_parent "create_noparent" "Node does not exist: $R/a/b"
check_exact zkcli.create_bad_path "create_badpath" "Path must not end with / character"
check_exact zkcli.create_sequential "create_seq1" "Created $R/seq/n-0000000000"
check_exact zkcli.create_sequential_after_delete "create_seq2" "Created $R/seq/n-0000000002"
check_list zkcli.ls_sequential "ls_seq" "n-0000000000 n-0000000002"
check_stat zkcli.cversion_counts_deletes "ls_s_seq" cversion 4
check_list zkcli.ls "ls_root" "child eph nodata seq"
check_list zkcli.ls_s_children "ls_s_root" "child eph nodata seq"
check_stat zkcli.ls_s_numChildren "ls_s_root" numChildren 4
check_exact zkcli.get "get_root" "rootdata"
check_line zkcli.get_s_data "get_s_root" "rootdata"
check_stat zkcli.get_s_dataVersion "get_s_root" dataVersion 0
check_stat zkcli.get_s_dataLength "get_s_root" dataLength 8
check_exact zkcli.set "set_root" ""
check_exact zkcli.set_version_ok "set_v_ok" ""
check_exact zkcli.set_version_bad "set_v_bad" "version No is not valid : $R"
check_exact zkcli.get_after_set "get_after_set" "v2"
check_stat zkcli.stat_dataVersion "stat_root" dataVersion 2
check_stat zkcli.stat_numChildren "stat_root" numChildren 4
check_stat zkcli.stat_ephemeralOwner "stat_root" ephemeralOwner 0x0
check_stat zkcli.stat_dataLength "stat_root" dataLength 2
check_stat zkcli.stat_aclVersion "stat_root" aclVersion 0
cz="$(stat_field stat_root cZxid)"; mz="$(stat_field stat_root mZxid)"; pz="$(stat_field stat_root pZxid)"
if [[ "$cz" =~ ^0x[0-9a-f]+$ && "$mz" =~ ^0x[0-9a-f]+$ && "$pz" =~ ^0x[0-9a-f]+$ ]] && ((mz > cz && pz > cz)); then
    pass zkcli.stat_zxids
else
    fail zkcli.stat_zxids "want mZxid > cZxid and pZxid > cZxid, got cZxid=$cz mZxid=$mz pZxid=$pz"
fi
if out stat_root | grep -Eq '^ctime = [A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9][0-9] [0-9:]{8} [A-Z]+ 2[0-9]{3}$'; then pass zkcli.stat_ctime; else fail zkcli.stat_ctime "ctime line: '$(out stat_root | grep ctime)'"; fi
check_exact zkcli.stat_missing "stat_missing" "Node does not exist: $R/missing"
check_exact zkcli.delete_not_empty "delete_nonempty" "Node not empty: $R"
check_exact zkcli.delete_missing "delete_missing" "Node does not exist: $R/missing"
check_exact zkcli.delete_bad_version "delete_badversion" "version No is not valid : $R/child"
check_exact zkcli.delete_version "delete_child" ""
check_exact zkcli.get_deleted "get_deleted" "Node does not exist: $R/child"
check_exact zkcli.ls_recursive "ls_r_tree" "$R/tree
$R/tree/a
$R/tree/c
$R/tree/a/b"
check_exact zkcli.getAllChildrenNumber "children_number" "3"
check_exact zkcli.deleteall "deleteall" ""
check_exact zkcli.deleteall_gone "ls_deleted_tree" "Node does not exist: $R/tree"
check_exact zkcli.getAcl "getacl" "'world,'anyone
: cdrwa"
check_exact zkcli.setAcl "ro_setacl" ""
check_exact zkcli.getAcl_after_setAcl "ro_getacl" "'world,'anyone
: r"
check_exact zkcli.set_no_write_permission "ro_set" "Insufficient permission : $R/ro"
check_exact zkcli.get_read_permission "ro_get" "x"
check_exact zkcli.delete_readonly_node "ro_delete" ""
check_exact zkcli.create_container "container" "Created $R/con"
check_stat zkcli.container_ephemeralOwner "stat_container" ephemeralOwner 0x0
check_exact zkcli.create_ttl "ttl" "Created $R/ttl"
check_stat zkcli.ttl_ephemeralOwner "stat_ttl" ephemeralOwner 0x0
check_exact zkcli.sync "sync" "Sync is OK"
check_list zkcli.zookeeper_children "ls_zookeeper" "config quota"
check_stat zkcli.zookeeper_numChildren "stat_zookeeper" numChildren 2
if out ls_slash | head -1 | tr -d '[] ' | tr ',' '\n' | grep -qx zookeeper &&
    out ls_slash | head -1 | tr -d '[] ' | tr ',' '\n' | grep -qx "${ROOT#/}"; then
    pass zkcli.ls_slash
else
    fail zkcli.ls_slash "want zookeeper and ${ROOT#/} in '$(show ls_slash)'"
fi

check_whoami zkcli.whoami "whoami_anon"
check_exact zkcli.create_ephemeral_sequential "ephs_b" "Created $R/ephs/b-0000000001"
check_paths zkcli.getEphemerals_path "getephemerals_dir" "$R/ephs/a $R/ephs/b-0000000001"
check_paths zkcli.getEphemerals_subtree "getephemerals_root" "$R/eph $R/ephs/a $R/ephs/b-0000000001"
# ZooKeeper matches the argument as a string prefix of the path, not as a subtree
check_paths zkcli.getEphemerals_string_prefix "getephemerals_prefix" "$R/eph $R/ephs/a $R/ephs/b-0000000001"
check_paths zkcli.getEphemerals_all "getephemerals_all" "$R/eph $R/ephs/a $R/ephs/b-0000000001"
check_exact zkcli.getEphemerals_none "getephemerals_none" "[]"
check_exact zkcli.addWatch "addwatch_rec" ""
check_exact zkcli.addWatch_persistent "addwatch_pers" ""
check_exact zkcli.removewatches "removewatches_rec" ""
check_exact zkcli.removewatches_no_watcher "removewatches_none" "KeeperErrorCode = No such watcher for $R/w"
check_events zkcli.addWatch_recursive_events s1 "$R/w" "NodeCreated $R/w/a
NodeCreated $R/w/a/b
NodeDataChanged $R/w/a/b
NodeDataChanged $R/w/a/b
NodeDeleted $R/w/a/b
NodeDataChanged $R/w
PersistentWatchRemoved $R/w"
check_events zkcli.addWatch_persistent_events s1 "$R/p" "NodeChildrenChanged $R/p
NodeDataChanged $R/p
NodeDataChanged $R/p
PersistentWatchRemoved $R/p"
check_exact zkcli.addauth "addauth" ""
check_whoami zkcli.whoami_after_addauth "whoami_auth" "digest: user1"
check_exact zkcli.setAcl_auth "auth_setacl" ""
# digest id: user1:base64(sha1("user1:pass1"))
check_exact zkcli.getAcl_digest "auth_getacl" "'digest,'user1:+7K83PhyQ3ijGj0ADmljf0quVwQ=
: cdrwa"
check_exact zkcli.get_with_auth "auth_get" "secret"
check_exact zkcli.addauth_without_colon "addauth_nocolon" ""
check_exact zkcli.addauth_ip "addauth_ip" ""
check_whoami zkcli.whoami_after_addauth_without_colon "whoami_nocolon" "digest: user1" "digest: blah"
check_line zkcli.setquota "listquota_set" "Output quota for $R/qt count=10,bytes=-1=;byteHardLimit=-1;countHardLimit=-1"
# the subtree's znodes (itself included) and data bytes when the quota was set
check_line zkcli.listquota_usage "listquota_set" "Output stat for $R/qt count=2,bytes=8"
# then +1 znode +2 bytes, -4 bytes, -1 znode -2 bytes
check_line zkcli.listquota_usage_tracked "listquota_after" "Output stat for $R/qt count=2,bytes=4"
check_line zkcli.delquota "listquota_gone" "quota for $R/qt does not exist."

if ! grep -q 'state:SyncConnected' "$work/s1/_events" 2>/dev/null; then
    # the server cannot be reached: fail the rest fast
    for n in ephemeral_gone_after_close ephemeral_stat_gone ephemerals_gone getEphemerals_new_session \
        get_without_auth getAcl_without_auth set_without_auth addauth_wrong_password addauth_in_new_session \
        cleanup cmdline_ok cmdline_error_status; do
        fail "zkcli.$n" "skipped: zkCli.sh never connected to $SERVER"
    done
    exit 0
fi

# --- session 2: the first session's ephemeral is gone; clean up --------------
step start ""
step ls_root "ls $R"
step stat_eph "stat $R/eph"
step ls_ephs "ls $R/ephs"
step getephemerals "getEphemerals $R"
step noauth_get "get $R/auth"
step noauth_getacl "getAcl $R/auth"
step noauth_set "set $R/auth x"
step badauth "addauth digest user1:wrong"
step badauth_get "get $R/auth"
step goodauth "addauth digest user1:pass1"
step goodauth_get "get $R/auth"
step deleteall_root "deleteall $R"
step ls_gone "ls $R"
run_session s2
S=s2
check_list zkcli.ephemeral_gone_after_close "ls_root" "auth con ephs nodata p qt seq ttl w"
check_exact zkcli.ephemeral_stat_gone "stat_eph" "Node does not exist: $R/eph"
check_exact zkcli.ephemerals_gone "ls_ephs" "[]"
check_exact zkcli.getEphemerals_new_session "getephemerals" "[]"
check_exact zkcli.get_without_auth "noauth_get" "Insufficient permission : $R/auth"
check_exact zkcli.getAcl_without_auth "noauth_getacl" "Insufficient permission : $R/auth"
check_exact zkcli.set_without_auth "noauth_set" "Insufficient permission : $R/auth"
if [ "$(out badauth)" == "" ] && [ "$(out badauth_get)" == "Insufficient permission : $R/auth" ]; then
    pass zkcli.addauth_wrong_password
else
    fail zkcli.addauth_wrong_password "expected '' then 'Insufficient permission : $R/auth', got '$(show badauth)' then '$(show badauth_get)'"
fi
if [ "$(out goodauth)" == "" ] && [ "$(out goodauth_get)" == "secret" ]; then
    pass zkcli.addauth_in_new_session
else
    fail zkcli.addauth_in_new_session "expected '' then 'secret', got '$(show goodauth)' then '$(show goodauth_get)'"
fi
check_exact zkcli.cleanup "ls_gone" "Node does not exist: $R"

# --- command-line mode: one command per JVM, exit status --------------------
# The answer without the connection's event (see without_events), and
# zkCli's exit status.
zkcli_cmd() {
    zkcli "$@" | without_events
    return "${PIPESTATUS[0]}"
}
o="$(zkcli_cmd ls /zookeeper)"; rc=$?
if [ $rc -eq 0 ] && echo "$o" | grep -qxF '[config, quota]'; then pass zkcli.cmdline_ok; else fail zkcli.cmdline_ok "rc=$rc out='$(echo "$o" | tail -3 | tr '\n' '|')'"; fi
o="$(zkcli_cmd get "$R/none")"; rc=$?
if [ $rc -eq 1 ] && echo "$o" | grep -qxF "Node does not exist: $R/none"; then pass zkcli.cmdline_error_status; else fail zkcli.cmdline_error_status "rc=$rc out='$(echo "$o" | tail -3 | tr '\n' '|')'"; fi
