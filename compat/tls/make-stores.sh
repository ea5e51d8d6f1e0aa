#!/usr/bin/env bash
# Writes the PKCS#12 and JKS forms of this directory's PEM test fixtures,
# as ZooKeeper deployments keep them (password "paddock-test"):
#   server.p12      server key + certificate, by OpenSSL 3 (PBES2, AES-256-CBC)
#   server-java.p12 the same, rewritten by Java 17's keytool
#   server.jks      the same as a JKS key store (keytool)
#   ca.p12, ca.jks  the test CA as a trust store (keytool trusted entries)
#   server-legacy.p12  3DES-encrypted, as Java 8's keytool wrote them (refused)
#   server-encrypted.pem  server key (PKCS#8, PBES2 AES-256-CBC) + certificate
# The checked-in files came from this script; the tests read them.
set -euo pipefail
cd "$(dirname "$0")"
pass=paddock-test
rm -f server.p12 server-java.p12 server.jks ca.p12 ca.jks server-legacy.p12 server-encrypted.pem
openssl pkcs12 -export -name server -inkey server.key -in server.crt -certfile ca.pem \
    -passout "pass:$pass" -out server.p12
keytool -importkeystore -noprompt -srckeystore server.p12 -srcstoretype PKCS12 -srcstorepass "$pass" \
    -destkeystore server-java.p12 -deststoretype PKCS12 -deststorepass "$pass" >/dev/null
keytool -importkeystore -noprompt -srckeystore server.p12 -srcstoretype PKCS12 -srcstorepass "$pass" \
    -destkeystore server.jks -deststoretype JKS -deststorepass "$pass" 2>&1 | grep -v -i warning >/dev/null || true
for type in PKCS12 JKS; do
    ext=$([ "$type" = JKS ] && echo jks || echo p12)
    keytool -importcert -noprompt -alias ca -file ca.pem -keystore "ca.$ext" -storetype "$type" \
        -storepass "$pass" >/dev/null 2>&1
done
openssl pkcs12 -export -name server -inkey server.key -in server.crt -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES \
    -macalg sha1 -passout "pass:$pass" -out server-legacy.p12
{ openssl pkcs8 -topk8 -in server.key -v2 aes-256-cbc -v2prf hmacWithSHA256 -passout "pass:$pass"; cat server.crt; } \
    > server-encrypted.pem
chmod 644 ./*.p12 ./*.jks server-encrypted.pem
ls -l server-legacy.p12 server.p12 server-java.p12 server.jks ca.p12 ca.jks server-encrypted.pem
