#!/usr/bin/env bash
# Kerberos (SASL GSSAPI) with the real Java client, against the real
# ZooKeeper 3.8 and paddock, configured alike: a throwaway realm
# (compat/kerberos/kdc.sh: MIT krb5kdc on a free port), the server logging in
# with Krb5LoginModule from a keytab (JAAS `Server` section), clients with
# their own keytabs (JAAS `Client` section), as Kafka- and HBase-era
# deployments set it up. Each check runs zkCli against both servers; it
# passes when both print the same and that is what a user expects:
#   whoami            the principal is the sasl identity (client, svc/host)
#   acl               a node with ACL sasl:client@REALM: its owner reads it,
#                     another principal and a client without Kerberos do not
#   super             superUser=admin@REALM gains super
#   wrong-principal   a ticket for a principal the server has no key for:
#                     AuthFailed
#   mapped            with auth_to_local rules and removeRealmFromPrincipal
#                     (both servers restarted so)
#   required          with sessionRequireClientSASLAuth=true (restarted so):
#                     a Kerberos client is served, one without is not
# and, paddock only (a ZooKeeper server cannot join a paddock ensemble),
#   quorum            a 3-member ensemble whose members log in to each other
#                     with Kerberos (quorum.auth.*, QuorumServer/QuorumLearner
#                     sections) replicates; a member with a stale service
#                     key refuses the others, saying why
# Prints PASS/FAIL lines; exits 1 if any FAIL. Every process it starts is
# stopped by PID on exit.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/lib.sh"
bin="$(compat_paddock_bin)" || exit 2
compat_ensure_debs >&2 || { echo "FAIL kerberos.setup: Debian packages"; exit 1; }

REALM=PADDOCK.TEST
work="$(mktemp -d)"
kdc="$work/kdc"
pid=""
members=()
cleanup() {
    "$here/zookeeper.sh" stop "$work/zk" >/dev/null 2>&1 || true
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
    for m in "${members[@]}"; do kill "$m" 2>/dev/null && wait "$m" 2>/dev/null; done
    "$here/kerberos/kdc.sh" stop "$kdc" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
mapfile -t ports < <(compat_free_ports 2)

"$here/kerberos/kdc.sh" start "$kdc" "${ports[0]}" || { echo "FAIL kerberos.setup: KDC"; exit 1; }

# JAAS sections: the server's login, and one Client section per principal.
jaas() { # jaas SECTION PRINCIPAL KEYTAB
    printf '%s {\n  com.sun.security.auth.module.Krb5LoginModule required\n  useKeyTab=true\n  keyTab="%s"\n  storeKey=true\n  useTicketCache=false\n  principal="%s";\n};\n' \
        "$1" "$3" "$2@$REALM"
}
jaas Server zookeeper/localhost "$kdc/zookeeper-localhost.keytab" >"$work/server-jaas.conf"
for p in client other admin svc/localhost; do
    jaas Client "$p" "$kdc/${p//\//-}.keytab" >"$work/client-${p//\//-}.conf"
done

SUPER="admin@$REALM"
# zoo.cfg lines both servers take (ZooKeeper sets a key it does not know
# as the system property zookeeper.<key>).
MAPPED=$'security.auth_to_local=RULE:[2:$1](svc)s/.*/mapped/ DEFAULT\nkerberos.removeRealmFromPrincipal=true\n'

# zkCli as PRINCIPAL (a file name from above, or "none" for no Kerberos) at
# ADDR; SERVICE is the server principal the client asks a ticket for.
cli() { # cli WHO ADDR [SERVICE] -- zkCli arguments
    local who="$1" addr="$2" service="zookeeper/localhost@$REALM"
    shift 2
    [[ "$1" != "--" ]] && { service="$1"; shift; }
    shift
    local flags="-Djava.security.krb5.conf=$kdc/krb5.conf -Dzookeeper.server.principal=$service"
    [[ "$who" != none ]] && flags="$flags -Djava.security.auth.login.config=$work/client-$who.conf"
    CLIENT_JVMFLAGS="$flags" timeout 60 "$ZK_CLI" -server "$addr" "$@" 2>&1
}
# What each check shows: identities sorted (ZooKeeper's are in hash order),
# a command's last line, or the session's authentication events.
ids() { grep -E '^(sasl|super|ip|digest): ' | sed 's/ *$//' | sort | tr '\n' ' '; }
last() { grep -vE '^\s*$|^(WATCHER::|WatchedEvent|SLF4J|[0-9]{4}-)|^\s+at ' | tail -1; }
auth_events() { grep -oE 'state:(SaslAuthenticated|AuthFailed)' | sort -u | tr '\n' ' '; }

# run_checks NAME ADDR: every check's output, one "check<TAB>output" line each.
run_checks() {
    local a="$2"
    {
        printf 'whoami\t%s\n' "$(cli client "$a" -- whoami | ids)"
        printf 'whoami-host\t%s\n' "$(cli svc-localhost "$a" -- whoami | ids)"
        printf 'acl-create\t%s\n' "$(cli client "$a" -- create /k data "sasl:client@$REALM:cdrwa" | last)"
        printf 'acl-owner\t%s\n' "$(cli client "$a" -- get /k | last)"
        printf 'acl-other\t%s\n' "$(cli other "$a" -- get /k | last)"
        printf 'acl-no-kerberos\t%s\n' "$(cli none "$a" -- get /k | last)"
        printf 'super\t%s\n' "$(cli admin "$a" -- whoami | ids)"
        printf 'wrong-principal\t%s\n' "$(cli client "$a" "zookeeper/otherhost@$REALM" -- whoami | auth_events)"
    } >"$work/$1.out"
}
run_mapped() {
    {
        printf 'mapped-whoami\t%s\n' "$(cli client "$2" -- whoami | ids)"
        printf 'mapped-whoami-host\t%s\n' "$(cli svc-localhost "$2" -- whoami | ids)"
    } >"$work/$1.out"
}
run_required() {
    {
        printf 'required-kerberos\t%s\n' "$(cli client "$2" -- whoami | ids)"
        printf 'required-no-kerberos\t%s\n' "$(cli none "$2" -- ls / | last)"
    } >"$work/$1.out"
}

start_zk() { # start_zk EXTRA_ZOO_CFG_LINES
    rm -rf "$work/zk"
    ZK_EXTRA_CFG="superUser=$SUPER"$'\n'"$1" \
        ZK_JVMFLAGS="-Djava.security.auth.login.config=$work/server-jaas.conf -Djava.security.krb5.conf=$kdc/krb5.conf" \
        "$here/zookeeper.sh" start "$work/zk" "${ports[1]}" >&2
}
start_paddock() { # start_paddock EXTRA_ZOO_CFG_LINES
    printf 'jaasLoginConfig=%s\njava.security.krb5.conf=%s\nsuperUser=%s\n%s' "$work/server-jaas.conf" "$kdc/krb5.conf" "$SUPER" "$1" >"$work/zoo.cfg"
    rm -rf "$work/data"
    "$bin" --bind 127.0.0.1 --config "$work/zoo.cfg" --port 0 --admin-port 0 --data-dir "$work/data" >"$work/stdout" 2>"$work/stderr" &
    pid=$!
    paddock_addr=""
    for _ in $(seq 1 300); do
        paddock_addr="$(sed -n 's/^paddock listening on //p' "$work/stdout" | head -1)"
        [[ -n "$paddock_addr" ]] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/\x1b\[[0-9;]*m//g' "$work/stderr" | tail -5 >&2
    return 1
}
stop_paddock() { kill "$pid" && wait "$pid"; pid=""; }

start_zk "" || { echo "FAIL kerberos.setup: ZooKeeper did not start"; exit 1; }
run_checks zk "127.0.0.1:${ports[1]}"
"$here/zookeeper.sh" stop "$work/zk" >&2
start_paddock "" || { echo "FAIL kerberos.setup: paddock did not start"; exit 1; }
run_checks paddock "$paddock_addr"
stop_paddock

start_zk "$MAPPED" ||
    { echo "FAIL kerberos.setup: ZooKeeper did not start (mapped)"; exit 1; }
run_mapped zk-mapped "127.0.0.1:${ports[1]}"
"$here/zookeeper.sh" stop "$work/zk" >&2
start_paddock "$MAPPED" ||
    { echo "FAIL kerberos.setup: paddock did not start (mapped)"; exit 1; }
run_mapped paddock-mapped "$paddock_addr"
stop_paddock

REQUIRED=$'sessionRequireClientSASLAuth=true\n'
start_zk "$REQUIRED" || { echo "FAIL kerberos.setup: ZooKeeper did not start (required)"; exit 1; }
run_required zk-required "127.0.0.1:${ports[1]}"
"$here/zookeeper.sh" stop "$work/zk" >&2
start_paddock "$REQUIRED" || { echo "FAIL kerberos.setup: paddock did not start (required)"; exit 1; }
run_required paddock-required "$paddock_addr"
stop_paddock

# Members logging in to each other with Kerberos: three paddocks, the third
# with a stale copy of the service key in its QuorumServer keytab.
mapfile -t qp < <(compat_free_ports 9)
servers=""
for id in 1 2 3; do
    i=$(( (id - 1) * 3 ))
    servers+="server.$id=127.0.0.1:${qp[$((i + 1))]}:${qp[$((i + 2))]};${qp[$i]}"$'\n'
done
start_member() { # start_member ID SERVICE_KEYTAB
    local id="$1" q="$work/q$1"
    mkdir -p "$q/data"
    echo "$id" >"$q/data/myid"
    { jaas QuorumServer zkquorum/localhost "$2"; jaas QuorumLearner member "$kdc/member.keytab"; } >"$q/jaas.conf"
    {
        echo "dataDir=$q/data"
        echo "clientPort=${qp[$(( (id - 1) * 3 ))]}"
        echo "clientPortAddress=127.0.0.1"
        echo "admin.enableServer=false"
        echo "jaasLoginConfig=$q/jaas.conf"
        echo "java.security.krb5.conf=$kdc/krb5.conf"
        echo "quorum.auth.enableSasl=true"
        echo "quorum.auth.learnerRequireSasl=true"
        echo "quorum.auth.serverRequireSasl=true"
        echo "quorum.auth.kerberos.servicePrincipal=zkquorum/localhost@$REALM"
        printf %s "$servers"
    } >"$q/zoo.cfg"
    # The KDC's address comes from java.security.krb5.conf in zoo.cfg.
    env -u KRB5_CONFIG setsid "$bin" --config "$q/zoo.cfg" >"$q/stdout" 2>"$q/stderr" </dev/null &
    members+=($!)
}
serving() { compat_4lw "127.0.0.1:${qp[$(( ($1 - 1) * 3 ))]}" srvr | grep -cE '^Mode: (leader|follower)'; }
# The third starts once the first two have a leader: it could otherwise win
# the first election (its own dials succeed) and lead members that cannot
# reach it.
start_member 1 "$kdc/zkquorum-localhost.keytab"
start_member 2 "$kdc/zkquorum-localhost.keytab"
quorum_says=""
for _ in $(seq 1 300); do
    [[ "$(serving 1)$(serving 2)" == 11 ]] && break
    sleep 0.1
done
start_member 3 "$kdc/zkquorum-localhost-stale.keytab"
if [[ "$(serving 1)$(serving 2)" == 11 ]]; then
    cli none "127.0.0.1:${qp[0]}" -- create /quorum over-kerberos >/dev/null
    quorum_says="$(cli none "127.0.0.1:${qp[3]}" -- get /quorum | last)"
fi
sleep 1
refusal="$(sed 's/\x1b\[[0-9;]*m//g' "$work/q3/stderr" | grep -o 'refused a peer connection from .*quorum SASL.*' | head -1)"
if [[ "$quorum_says" == over-kerberos && "$refusal" == *"zkquorum/localhost"* ]]; then
    echo "PASS kerberos.quorum (member 3 logged: ${refusal:0:200})"
    quorum_failed=0
else
    echo "FAIL kerberos.quorum: members 1 and 2 gave [$quorum_says]; member 3 with the stale key logged [$refusal]"
    quorum_failed=1
fi

# What a user expects of each check, whichever server answers.
declare -A expect=(
    [whoami]="ip: 127.0.0.1 sasl: client@$REALM "
    [whoami-host]="ip: 127.0.0.1 sasl: svc/localhost@$REALM "
    [acl-create]="Created /k"
    [acl-owner]="data"
    [acl-other]="Insufficient permission : /k"
    [acl-no-kerberos]="Insufficient permission : /k"
    [super]="ip: 127.0.0.1 sasl: admin@$REALM super: "
    [wrong-principal]="state:AuthFailed "
    [mapped-whoami]="ip: 127.0.0.1 sasl: client "
    [mapped-whoami-host]="ip: 127.0.0.1 sasl: mapped/localhost "
    [required-kerberos]="ip: 127.0.0.1 sasl: client@$REALM "
    [required-no-kerberos]="KeeperErrorCode = Session closed because client failed to authenticate for /"
)
failed=0
cat "$work/zk.out" "$work/zk-mapped.out" "$work/zk-required.out" >"$work/zk.all"
cat "$work/paddock.out" "$work/paddock-mapped.out" "$work/paddock-required.out" >"$work/paddock.all"
while IFS=$'\t' read -r check zk_says; do
    paddock_says="$(awk -F'\t' -v c="$check" '$1 == c { print $2 }' "$work/paddock.all")"
    if [[ "$zk_says" == "${expect[$check]}" && "$paddock_says" == "$zk_says" ]]; then
        echo "PASS kerberos.$check"
    else
        echo "FAIL kerberos.$check: expected [${expect[$check]}], ZooKeeper [$zk_says], paddock [$paddock_says]"
        failed=1
    fi
done <"$work/zk.all"
[ "$failed" = 0 ] && [ "$quorum_failed" = 0 ]
