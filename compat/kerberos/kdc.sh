#!/usr/bin/env bash
# A throwaway Kerberos realm (MIT krb5kdc) for the Kerberos checks, in a
# directory of its own on a port of its own: nothing under /etc is read or
# written (krb5.conf and kdc.conf are the directory's, through KRB5_CONFIG
# and KRB5_KDC_PROFILE).
#   kdc.sh start DIR PORT   create realm PADDOCK.TEST in DIR, its KDC on
#                           127.0.0.1:PORT (TCP and UDP), and a keytab per
#                           principal below: DIR/<name>.keytab
#   kdc.sh stop DIR         stop that KDC (by the PID it wrote)
# Principals: zookeeper/localhost (the server; zookeeper/otherhost, which
# no server holds), client, other, admin and svc/localhost (clients);
# zkquorum/localhost and member for members authenticating each other
# (and DIR/zkquorum-localhost-stale.keytab, a key since replaced).
set -euo pipefail
REALM=PADDOCK.TEST
cmd="${1:?start|stop}"
dir="$(mkdir -p "${2:?DIR}" && cd "$2" && pwd)"
case "$cmd" in
start)
    port="${3:?PORT}"
    cat >"$dir/krb5.conf" <<CONF
[libdefaults]
    default_realm = $REALM
    dns_lookup_kdc = false
    dns_lookup_realm = false
    rdns = false
    udp_preference_limit = 1
[realms]
    $REALM = {
        kdc = 127.0.0.1:$port
    }
CONF
    cat >"$dir/kdc.conf" <<CONF
[kdcdefaults]
    kdc_ports = $port
    kdc_tcp_listen = $port
[realms]
    $REALM = {
        database_name = $dir/principal
        key_stash_file = $dir/stash
        acl_file = $dir/kadm5.acl
        max_life = 1h
    }
[logging]
    kdc = FILE:$dir/kdc.log
CONF
    : >"$dir/kadm5.acl"
    export KRB5_CONFIG="$dir/krb5.conf" KRB5_KDC_PROFILE="$dir/kdc.conf"
    kdb5_util create -s -r "$REALM" -P kdc-master-password >"$dir/setup.log" 2>&1
    for p in zookeeper/localhost zookeeper/otherhost client other admin svc/localhost zkquorum/localhost member; do
        kadmin.local -q "addprinc -randkey $p@$REALM" >>"$dir/setup.log" 2>&1
        kadmin.local -q "ktadd -k $dir/${p//\//-}.keytab $p@$REALM" >>"$dir/setup.log" 2>&1
    done
    # A stale copy of the quorum service's key: kept, then the key changed.
    cp "$dir/zkquorum-localhost.keytab" "$dir/zkquorum-localhost-stale.keytab"
    kadmin.local -q "ktadd -k $dir/zkquorum-localhost.keytab zkquorum/localhost@$REALM" >>"$dir/setup.log" 2>&1
    krb5kdc -n -P "$dir/kdc.pid" >>"$dir/kdc.out" 2>&1 &
    echo $! >"$dir/kdc.pid.shell"
    for _ in $(seq 1 100); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && { echo "kdc for $REALM on 127.0.0.1:$port" >&2; exit 0; }
        sleep 0.1
    done
    echo "krb5kdc did not listen on $port; see $dir/kdc.out $dir/kdc.log" >&2
    exit 1
    ;;
stop)
    [ -f "$dir/kdc.pid.shell" ] && kill "$(cat "$dir/kdc.pid.shell")" 2>/dev/null || true
    ;;
*) echo "usage: kdc.sh start DIR PORT | stop DIR" >&2; exit 2 ;;
esac
